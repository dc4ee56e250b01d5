// The offline-first glue through the Swift bindings and the stream layer against cubeserver:
// a message queued offline shows as queued in the live timeline and goes out once chat
// connects; a queue survives a restart of the client (a new ChatClient on the same store);
// the live views as AsyncStreams (snapshot first, then positional diffs; closing the store
// ends them); a damaged store file is a typed error and stays untouched.
import Foundation
import Testing

@testable import CubeChat

@Suite struct OfflineTests {
    let server: Cubeserver
    init() throws { server = try Cubeserver() }

    private let done: Set<String> = ["sent", "delivered", "read"]
    private func stateName(_ s: MessageState) -> String {
        switch s {
        case .queued: "queued"
        case .sent: "sent"
        case .delivered: "delivered"
        case .read: "read"
        case .failed: "failed"
        case .received: "received"
        }
    }

    @Test func queuedOfflineThenSentAndLiveDialogList() async throws {
        let store = try tempDir("cubechat-swift-store")
        let alice = try await member(server, config: server.config(storeDir: store.path))
        let bob = try await online(server)
        // Created by bob: alice's store learns of it from the sync that watching starts.
        let dialog = try await bob.client.createDialog(dialog: NewDialog(kind: .private, occupantsIds: [alice.id]))

        let dialogEvents = Recorder(try alice.client.dialogListEvents(limit: 20))
        let dialogs = Recorder(try alice.client.dialogList(limit: 20))
        try await eventually("dialog snapshot") { !dialogEvents.all.isEmpty }
        #expect(dialogEvents.all.first == .reset(dialogs: []))
        try await eventually("dialog synced") { dialogs.all.last?.contains { $0.id == dialog.id } == true }

        let timelineEvents = Recorder(try alice.client.timelineEvents(dialogId: dialog.id, limit: 50))
        let timeline = Recorder(try alice.client.timeline(dialogId: dialog.id, limit: 50))
        try await eventually("timeline snapshot") { !timelineEvents.all.isEmpty }
        #expect(timelineEvents.all.first == .reset(messages: []))

        let queued = try alice.client.enqueueMessage(
            message: OutgoingMessage(dialogId: dialog.id, recipientId: bob.id, body: "from the queue"), files: [])
        #expect(queued.state == .queued)
        try await eventually("added as queued") { timeline.all.last == [queued] }
        try await eventually("push-back event") { timelineEvents.all.count >= 2 }
        #expect(timelineEvents.all.dropFirst().first == .pushBack(message: queued))
        try await eventually("dialog list hears it") {
            dialogs.all.last?.contains { $0.id == dialog.id && $0.lastMessage == "from the queue" } == true
        }
        #expect(try alice.client.pendingMessages().map(\.id) == [queued.id])

        try await alice.client.connectChat(auth: .sessionToken)
        try await eventually("bob receives") { bob.events.messages.contains { $0.id == queued.id } }
        #expect(bob.events.messages.all.first { $0.id == queued.id }?.body == "from the queue")
        // Sent (the server's ack) normally comes first; bob's receipt may beat it (delivered).
        try await eventually("sent in place") {
            (timeline.all.last?.map { stateName($0.state) }).map { $0.count == 1 && done.contains($0[0]) } == true
        }
        #expect(timeline.all.last?.map(\.id) == [queued.id])
        #expect(try alice.client.pendingMessages() == [])
        try await alice.client.destroyChat()
        try await bob.client.destroyChat()
    }

    @Test func queueSurvivesARestartOfTheClient() async throws {
        let store = try tempDir("cubechat-swift-restart")
        let bob = try await online(server)
        let expected = (0..<20).map { String(format: "m%03d", $0) }

        // The first client queues 20 messages without ever connecting chat, then is released
        // without closing anything (as when the app is killed).
        var ids: [String] = []
        let a: User
        let login: String
        let dialog: Dialog
        do {
            let first = try await member(server, config: server.config(storeDir: store.path))
            (a, login) = (first.user, first.login)
            dialog = try await first.client.createDialog(dialog: NewDialog(kind: .private, occupantsIds: [bob.id]))
            for body in expected {
                ids.append(try first.client.enqueueMessage(
                    message: OutgoingMessage(dialogId: dialog.id, recipientId: bob.id, body: body), files: []).id)
            }
            #expect(try first.client.pendingMessages().count == 20)
        }
        #expect(Set(ids).count == 20)

        // A new client on the same store finds the queue as it was.
        let restarted = try ChatClient(config: server.config(storeDir: store.path))
        _ = try await restarted.logIn(login: .login(login: login), password: password)
        let pending = try restarted.pendingMessages()
        #expect(pending.map(\.body) == expected)
        #expect(pending.map(\.id) == ids)
        #expect(pending.allSatisfy {
            $0.state == .queued && $0.outgoing && $0.dialogId == dialog.id && $0.senderId == a.id && $0.recipientId == bob.id
        })
        #expect(!bob.events.messages.contains { $0.dialogId == dialog.id }, "nothing left before chat was connected")

        // Connecting drains it: bob gets each message once, in order, with its queued id.
        try await restarted.connectChat(auth: .sessionToken)
        try await eventually("bob receives 20", seconds: 30) {
            bob.events.messages.all.filter { $0.dialogId == dialog.id }.count >= 20
        }
        try await eventually("queue drained", seconds: 30) { try restarted.pendingMessages().isEmpty }
        let got = bob.events.messages.all.filter { $0.dialogId == dialog.id }
        #expect(got.map(\.body) == expected)
        #expect(got.map(\.id) == ids)
        try await restarted.destroyChat()
        try await bob.client.destroyChat()
    }

    @Test func liveViewsAsStreams() async throws {
        let alice = try await member(server, config: server.config())
        let bob = try await member(server)
        let dialog = try await alice.client.createDialog(dialog: NewDialog(kind: .private, occupantsIds: [bob.id]))
        try await alice.client.syncLocal()
        let first = try alice.client.enqueueMessage(
            message: OutgoingMessage(dialogId: dialog.id, recipientId: bob.id, body: "one"), files: [])
        let second = try alice.client.enqueueMessage(
            message: OutgoingMessage(dialogId: dialog.id, recipientId: bob.id, body: "two"), files: [])
        // The snapshot first, then one positional diff per change.
        let client = alice.client
        let events = try await withTimeout("two timeline events") {
            var got: [TimelineEvent] = []
            for await event in try client.timelineEvents(dialogId: dialog.id, limit: 10) {
                if case .reset = event { try client.cancelMessage(messageId: first.id) }
                got.append(event)
                if got.count == 2 { break }
            }
            return got
        }
        #expect(events == [.reset(messages: [first, second]), .remove(index: 0)])
        let list = try await withTimeout("timeline list") { () -> [TimelineMessage]? in
            for await list in try client.timeline(dialogId: dialog.id, limit: 10) { return list }
            return nil
        }
        #expect(list == [second])
        let page = try alice.client.dialogsPage(limit: 10, afterDialogId: nil)
        let dialogs = try await withTimeout("dialog list") { () -> [Dialog]? in
            for await list in try client.dialogList(limit: 10) { return list }
            return nil
        }
        #expect(dialogs == page)

        // Closing the store ends the live views: the streams finish.
        let open = Recorder(try alice.client.timelineEvents(dialogId: dialog.id, limit: 10))
        let lists = Recorder(try alice.client.dialogList(limit: 10))
        try await eventually("snapshot") { !open.all.isEmpty && !lists.all.isEmpty }
        alice.client.closeStore()
        try await eventually("timeline stream finished") { open.ended }
        try await eventually("dialog list stream finished") { lists.ended }
        try await alice.client.destroyChat()
    }

    @Test func corruptStoreIsTypedAndUntouched() async throws {
        let dir = try tempDir("cubechat-swift-bad")
        let c = try ChatClient(config: server.config(storeDir: dir.path))
        let login = unique("swc")
        let me = try await c.signUp(user: NewUser(login: login), password: password)
        let file = dir.appendingPathComponent("cubechat-\(appId)-\(me.id).sqlite3")
        let junk = Data(String(repeating: "not a database at all\n", count: 300).utf8)
        try junk.write(to: file)
        _ = try await c.logIn(login: .login(login: login), password: password)
        await expectChatError("StoreCorrupt") { try c.pendingMessages() }
        await expectChatError("StoreCorrupt") { try c.openStore(userId: me.id) }
        await expectChatError("StoreCorrupt") { try c.dialogListEvents(limit: 10) }
        await expectChatError("InvalidInput") {
            try c.enqueueMessage(
                message: OutgoingMessage(dialogId: String(repeating: "0", count: 24), recipientId: me.id, body: ""),
                files: [])
        }
        #expect(try Data(contentsOf: file) == junk)
    }
}
