// Real-time chat between two clients through the Swift bindings and the stream layer against
// cubeserver's XMPP side: the connection state (current value + stream), a private message
// with every field, sent / delivered / read statuses, typing, edit and delete, a group
// message, a REST reaction pushed as an event, a system message, a message that waits
// offline until the user reconnects, stream ordering and cancellation, typed errors.
import Foundation
import Testing

@testable import CubeChat

@Suite struct RealtimeTests {
    let server: Cubeserver
    init() throws { server = try Cubeserver() }

    @Test func connectionStateAsCurrentValueAndStream() async throws {
        let me = try await member(server, config: server.config())
        let c = me.client
        #expect(c.connectionState() == .idle)
        let states = Recorder(try c.connectionStates())
        try await eventually("current state first") { states.all.first == .idle }
        try await c.connectChat(auth: .sessionToken)
        #expect(c.connectionState() == .connected)
        try await eventually("connected") { states.all.last == .connected }
        try await c.disconnectChat()
        guard case .disconnected = c.connectionState() else {
            Issue.record("\(c.connectionState())")
            return
        }
        try await eventually("disconnected") {
            if case .disconnected = states.all.last { return true } else { return false }
        }
        // Idle → Connecting → Connected → Disconnected, in this order, each once.
        let seen = states.all.map { state -> String in
            switch state {
            case .idle: "idle"
            case .connecting: "connecting"
            case .connected: "connected"
            case .disconnected: "disconnected"
            case .reconnecting: "reconnecting"
            case .authFailed: "authFailed"
            }
        }
        #expect(seen == ["idle", "connecting", "connected", "disconnected"])
        // A late subscriber hears the current value first.
        let late = Recorder(try c.connectionStates())
        try await eventually("late subscriber") { !late.all.isEmpty }
        #expect(late.all.first == c.connectionState())
        try await c.destroyChat()
        #expect(c.connectionState() == .idle)
    }

    @Test func privateMessageWithStatusesTypingEditAndDelete() async throws {
        let alice = try await online(server)
        let bob = try await online(server)
        #expect(alice.events.states.all.first == .idle)
        try await eventually("alice connected event") { alice.events.states.all.last == .connected }

        let dialog = try await alice.client.createDialog(dialog: NewDialog(kind: .private, occupantsIds: [bob.id]))
        let attachment = Attachment(
            kind: "file", uid: String(repeating: "a", count: 32), name: "notes.txt", size: 12,
            contentType: "text/plain")
        let id = try await alice.client.sendMessage(message: OutgoingMessage(
            dialogId: dialog.id, recipientId: bob.id, body: "hi from swift", attachments: [attachment],
            custom: ["k": "v"], dateSent: 1_700_000_123))
        #expect(id.count == 24)
        try await eventually("bob receives") { bob.events.messages.contains { $0.id == id } }
        let got = try #require(bob.events.messages.all.first { $0.id == id })
        #expect(got.dialogId == dialog.id && got.senderId == alice.id && got.recipientId == bob.id)
        #expect(got.body == "hi from swift" && got.custom == ["k": "v"] && got.dateSent == 1_700_000_123)
        #expect(got.attachments == [attachment])
        #expect(!got.group && !got.carbon && !got.delayed)

        try await eventually("sent") { alice.events.statuses.contains(.sent(messageId: id)) }
        try await eventually("delivered") {
            alice.events.statuses.contains(.delivered(messageId: id, dialogId: dialog.id, userId: bob.id))
        }
        try await bob.client.sendRead(dialogId: dialog.id, messageId: id, senderId: alice.id)
        try await eventually("read") {
            alice.events.statuses.contains(.read(messageId: id, dialogId: dialog.id, userId: bob.id))
        }

        try await alice.client.sendTyping(dialogId: dialog.id, recipientId: bob.id, composing: true)
        try await eventually("typing") {
            bob.events.typing.contains(TypingEvent(dialogId: dialog.id, userId: alice.id, composing: true))
        }
        try await alice.client.sendTyping(dialogId: dialog.id, recipientId: bob.id, composing: false)
        try await eventually("paused") {
            bob.events.typing.contains(TypingEvent(dialogId: dialog.id, userId: alice.id, composing: false))
        }

        _ = try await alice.client.sendEdit(
            dialogId: dialog.id, recipientId: bob.id, messageId: id, body: "edited", last: true)
        try await eventually("edited") {
            bob.events.changes.contains {
                if case .edited(let m, _, let u, let body, _) = $0 { m == id && u == alice.id && body == "edited" } else { false }
            }
        }
        _ = try await alice.client.sendDelete(dialogId: dialog.id, recipientId: bob.id, messageId: id)
        try await eventually("deleted") {
            bob.events.changes.contains {
                if case .deleted(let m, _, let u) = $0 { m == id && u == alice.id } else { false }
            }
        }
        #expect(bob.events.messages.all.filter { $0.id == id }.count == 1)
        try await alice.client.destroyChat()
        try await bob.client.destroyChat()
    }

    @Test func groupReactionSystemMessageAndOfflineDelivery() async throws {
        let alice = try await online(server)
        let bob = try await online(server)
        let group = try await alice.client.createDialog(
            dialog: NewDialog(kind: .group, name: "SW", occupantsIds: [bob.id]))
        let id = try await alice.client.sendMessage(message: OutgoingMessage(dialogId: group.id, body: "group hello"))
        try await eventually("group message") { bob.events.messages.contains { $0.id == id } }
        let got = try #require(bob.events.messages.all.first { $0.id == id })
        #expect(got.group && got.dialogId == group.id)
        #expect(try await bob.client.history(dialogId: group.id, params: ListParams(), markAsRead: false)
            .map(\.dialogId) == [group.id])

        try await bob.client.addReaction(messageId: id, reaction: "👍")
        try await eventually("reaction event") {
            alice.events.changes.contains {
                if case .reactions(let m, _, let u, let add, _) = $0 { m == id && u == bob.id && add == ["👍"] } else { false }
            }
        }

        let sys = try await alice.client.sendChatSystemMessage(userId: bob.id, body: "ping", custom: ["x": "1"])
        try await eventually("system message") {
            bob.events.system.contains { $0.id == sys && $0.custom == ["x": "1"] && $0.senderId == alice.id }
        }

        let direct = try await alice.client.createDialog(dialog: NewDialog(kind: .private, occupantsIds: [bob.id]))
        try await bob.client.disconnectChat()
        let late = try await alice.client.sendMessage(message: OutgoingMessage(
            dialogId: direct.id, recipientId: bob.id, body: "later"))
        try await eventually("sent while bob is away") { alice.events.statuses.contains(.sent(messageId: late)) }
        try await bob.client.reconnectNow()
        try await eventually("offline message arrives") { bob.events.messages.contains { $0.id == late } }
        #expect(bob.events.messages.all.first { $0.id == late }?.delayed == true)

        try await bob.client.destroyChat()
        try await bob.client.destroyChat()
        #expect(bob.client.connectionState() == .idle)
        try await alice.client.destroyChat()
    }

    @Test func streamKeepsTheOrderOfMessages() async throws {
        let alice = try await online(server)
        let bob = try await member(server, config: server.config())
        let inbox = try bob.client.messages()
        try await bob.client.connectChat(auth: .sessionToken)
        _ = try await bob.client.privacyListNames()
        let dialog = try await alice.client.createDialog(dialog: NewDialog(kind: .private, occupantsIds: [bob.id]))
        var sent: [String] = []
        for i in 0..<30 {
            sent.append(try await alice.client.sendMessage(message: OutgoingMessage(
                dialogId: dialog.id, recipientId: bob.id, body: "n\(i)")))
        }
        // The first 30 elements of the stream are these messages, in the order sent.
        let received = try await withTimeout("30 messages") {
            var got: [ReceivedMessage] = []
            for await m in inbox {
                got.append(m)
                if got.count == 30 { break }
            }
            return got
        }
        #expect(received.map(\.id) == sent)
        #expect(received.map(\.body) == (0..<30).map { "n\($0)" })
        try await bob.client.destroyChat()
        try await alice.client.destroyChat()
    }

    @Test func endingTheIterationCancelsTheSubscription() async throws {
        let alice = try await online(server)
        let bob = try await member(server, config: server.config())
        try await bob.client.connectChat(auth: .sessionToken)
        _ = try await bob.client.privacyListNames()
        let dialog = try await alice.client.createDialog(dialog: NewDialog(kind: .private, occupantsIds: [bob.id]))

        // Leaving the loop and dropping the stream (the usual `for await m in try
        // client.messages() { … break }`): the handle is cancelled.
        let (client, sender, to) = (bob.client, alice.client, bob.id)
        let (sentId, got, firstHandle) = try await withTimeout("first message") {
            () -> (String, String?, SubscriptionHandle) in
            let sub = try client.messagesSubscription()
            #expect(sub.handle.isActive())
            let id = try await sender.sendMessage(message: OutgoingMessage(
                dialogId: dialog.id, recipientId: to, body: "one"))
            for await m in sub.stream { return (id, m.id, sub.handle) }
            return (id, nil, sub.handle)
        }
        #expect(got == sentId)
        try await eventually("handle cancelled after the loop") { !firstHandle.isActive() }

        // Cancelling the Task that iterates: the handle is cancelled, the loop ends.
        let second = try bob.client.messagesSubscription()
        let secondStream = second.stream
        let task = Task { () -> Int in
            var n = 0
            for await _ in secondStream { n += 1 }
            return n
        }
        task.cancel()
        let count = try await withTimeout("iteration ends") { await task.value }
        #expect(count == 0)
        try await eventually("handle cancelled") { !second.handle.isActive() }

        // Dropping a stream that was never iterated cancels it too.
        var third: Subscribed<ReceivedMessage>? = try bob.client.messagesSubscription()
        let handle = try #require(third?.handle)
        #expect(handle.isActive())
        third = nil
        try await eventually("dropped stream cancels") { !handle.isActive() }

        // A stream still open keeps receiving.
        let fourth = Recorder(try bob.client.messages())
        let next = try await alice.client.sendMessage(message: OutgoingMessage(
            dialogId: dialog.id, recipientId: bob.id, body: "two"))
        try await eventually("open stream receives") { fourth.contains { $0.id == next } }
        try await bob.client.destroyChat()
        try await alice.client.destroyChat()
    }

    @Test func typedErrors() async throws {
        let me = try await member(server, config: server.config())
        await expectChatError("ChatNotConnected") {
            try await me.client.sendMessage(message: OutgoingMessage(dialogId: String(repeating: "0", count: 24), body: "x"))
        }
        let other = try ChatClient(config: server.config())
        await expectChatError("InvalidCredentials") {
            try await other.connectChat(auth: .password(userId: me.id, password: "wrong-password"))
        }
        try await me.client.connectChat(auth: .sessionToken)
        await expectChatError("InvalidInput") {
            try await me.client.sendMessage(message: OutgoingMessage(dialogId: String(repeating: "0", count: 24), body: ""))
        }
        await expectChatError("InvalidInput") { try await me.client.connectChat(auth: .sessionToken) }
        // Printing the auth never shows the password.
        #expect(!String(describing: ChatAuth.password(userId: 1, password: "hunter2-secret")).contains("hunter2-secret"))
        try await me.client.destroyChat()
    }
}
