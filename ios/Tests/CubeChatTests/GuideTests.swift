// The Swift column of docs/guide/chat.md: each `[guide:NAME]` region below is copied into the
// guide by scripts/snippets.py, and these tests run them against cubeserver, so a snippet that
// stops working fails `make test`.
import Foundation
import Testing

@testable import CubeChat

/// A logged-in, connected client for `login` (the guide's "connect" snippet).
func guideOnline(_ server: Cubeserver, _ login: String, reconnect: ReconnectConfig? = nil) async throws -> (ChatClient, User) {
    var config = server.config()  // ClientConfig(appId:authKey:authSecret:apiUrl:…) with cubeserver's chat host and CA
    config.reconnect = reconnect
    // [guide:connect]
    let client = try ChatClient(config: config)
    let me = try await client.logIn(login: .login(login: login), password: password)
    try await client.connectChat(auth: .sessionToken)  // or .password(userId:password:)
    #expect(client.connectionState() == .connected)
    // [/guide]
    _ = try await client.privacyListNames()  // one round trip: the server has read the initial presence
    return (client, me)
}

/// A login that exists on the server.
func guideSignedUp(_ server: Cubeserver) async throws -> String {
    try await member(server).login
}

@Suite struct GuideTests {
    let server: Cubeserver
    init() throws { server = try Cubeserver() }

    @Test func connectionStatesAndReconnection() async throws {
        let login = try await guideSignedUp(server)
        let server = self.server
        try await withTimeout("connection", seconds: 60) {
            let (client, _) = try await guideOnline(server, login, reconnect: ReconnectConfig(
                enabled: true, initialDelayMs: 200, maxDelayMs: 5000, multiplier: 2.0, jitter: 0.1, maxAttempts: nil))
            // [guide:states]
            for await state in try client.connectionStates() {  // the state now, then every change
                print("chat is \(state)")
                if state == .connected { break }  // leaving the loop ends the subscription
            }
            // [/guide]
            let states = try client.connectionStates()
            // [guide:reconnect]
            try await client.setNetworkAvailable(available: false)  // e.g. from NWPathMonitor (see ChatLifecycle)
            try await client.setNetworkAvailable(available: true)   // reconnects at once, no backoff wait
            try await client.reconnectNow()                         // or ask for it yourself
            // [/guide]
            // The stream starts with the current state (connected): the connection really went
            // down and came back only if a disconnected/reconnecting comes before the next connected.
            var wentDown = false
            waiting: for await state in states {
                switch state {
                case .disconnected, .reconnecting: wentDown = true
                case .connected where wentDown: break waiting
                default: continue
                }
            }
            #expect(wentDown)
            // [guide:disconnect]
            try await client.disconnectChat()  // until connectChat or reconnectNow
            try await client.destroyChat()     // for good: the connection and its reconnection end
            try await client.logOut()
            // [/guide]
        }
    }

    @Test func dialogsHistoryAndMessages() async throws {
        let (aliceLogin, bobLogin) = (try await guideSignedUp(server), try await guideSignedUp(server))
        let server = self.server
        try await withTimeout("messages", seconds: 60) {
            let (alice, _) = try await guideOnline(server, aliceLogin)
            let (bob, b) = try await guideOnline(server, bobLogin)
            let bobMessages = try bob.messages()
            let bobTyping = try bob.typing()
            let statuses = try alice.statuses()
            // [guide:dialogs]
            let chat = try await alice.createDialog(dialog: NewDialog(kind: .private, occupantsIds: [b.id]))
            var group = try await alice.createDialog(dialog: NewDialog(
                kind: .group, name: "Weekend", occupantsIds: [b.id], extensions: ["location": "Sun bar"]))
            group = try await alice.updateDialog(dialogId: group.id, update: DialogUpdate(name: "Long weekend"))
            let changed = try await alice.listDialogs(params: ListParams(
                filters: [Filter(field: "updated_at", op: .gt, value: "1700000000")], limit: 50))
            // [/guide]
            #expect(Set(changed.items.map(\.id)).isSuperset(of: [chat.id, group.id]))
            // [guide:send]
            let messageId = try await alice.sendMessage(message: OutgoingMessage(
                dialogId: chat.id, recipientId: b.id, body: "How are you today?", custom: ["mood": "sunny"]))
            // returns once the server has acknowledged it; it is in alice's local store from the start
            // [/guide]
            // [guide:receive]
            for await message in bobMessages {
                print("\(message.senderId) says \(message.body)")
                if let dialogId = message.dialogId { try await bob.sendRead(dialogId: dialogId, messageId: message.id, senderId: message.senderId) }
                break
            }
            // [/guide]
            // [guide:statuses]
            for await status in statuses {
                if case .read(let id, _, _) = status, id == messageId { break }  // .sent, then .delivered, then .read
            }
            // [/guide]
            // [guide:typing]
            try await alice.sendTyping(dialogId: chat.id, recipientId: b.id, composing: true)  // "stopped" follows after 30 s idle
            for await typing in bobTyping where typing.composing {
                print("\(typing.userId) is typing in \(typing.dialogId ?? "a private chat")")
                break
            }
            try await alice.sendTyping(dialogId: chat.id, recipientId: b.id, composing: false)
            // [/guide]
            // [guide:history]
            let page = try await bob.history(
                dialogId: chat.id, params: ListParams(limit: 50, sortBy: "date_sent", sortDescending: true),
                markAsRead: true)  // true: mark what it returns as read
            // [/guide]
            #expect(page.first?.id == messageId)
            // [guide:silent]
            _ = try await alice.sendMessage(message: OutgoingMessage(
                dialogId: group.id, body: "no push for this one", silent: true))
            // [/guide]
            try await alice.destroyChat()
            try await bob.destroyChat()
        }
    }

    @Test func editDeleteReactUnreadSearch() async throws {
        let (aliceLogin, bobLogin) = (try await guideSignedUp(server), try await guideSignedUp(server))
        let server = self.server
        try await withTimeout("changes", seconds: 60) {
            let (alice, _) = try await guideOnline(server, aliceLogin)
            let (bob, b) = try await guideOnline(server, bobLogin)
            let chat = try await alice.createDialog(dialog: NewDialog(kind: .private, occupantsIds: [b.id]))
            let changes = try bob.messageChanges()
            let messageId = try await alice.sendMessage(message: OutgoingMessage(
                dialogId: chat.id, recipientId: b.id, body: "see you at 5"))
            // [guide:edit]
            _ = try await alice.sendEdit(dialogId: chat.id, recipientId: b.id, messageId: messageId,
                                         body: "see you at 6", last: true)  // last: it is the newest message
            // [/guide]
            // [guide:changes]
            for await change in changes {
                if case .edited(let id, _, _, let body, _) = change {
                    print("\(id) now reads \(body)")
                    break
                }
            }
            // [/guide]
            // [guide:reactions]
            try await bob.addReaction(messageId: messageId, reaction: "🔥")
            let reactions = try await alice.reactions(messageId: messageId)  // ["🔥": [bob's id]]
            // [/guide]
            #expect(reactions == ["🔥": [b.id]])
            // [guide:unread]
            let counts = try await bob.unreadCounts(dialogIds: [chat.id])
            print(counts.total, counts.perDialog[chat.id] ?? 0)
            try await bob.markAllRead(dialogId: chat.id)
            // [/guide]
            #expect((counts.perDialog[chat.id] ?? 0) >= 1)
            #expect(try await bob.unreadCounts(dialogIds: [chat.id]).perDialog[chat.id] == 0)
            // [guide:search]
            let found = try await bob.search(query: SearchQuery(text: "see you", dialogIds: [chat.id]))
            // [/guide]
            #expect(found.messages.map(\.id) == [messageId])
            let otherId = try await alice.sendMessage(message: OutgoingMessage(dialogId: chat.id, recipientId: b.id, body: "ok"))
            // [guide:delete]
            _ = try await alice.sendDelete(dialogId: chat.id, recipientId: b.id, messageId: messageId)  // for everyone, over chat
            let result = try await bob.deleteMessages(messageIds: [otherId], force: false)  // only from bob's history
            // [/guide]
            #expect(result.deleted == [otherId])
            try await alice.destroyChat()
            try await bob.destroyChat()
        }
    }

    @Test func attachmentsSystemMessagesPresence() async throws {
        let (aliceLogin, bobLogin) = (try await guideSignedUp(server), try await guideSignedUp(server))
        let server = self.server
        let dir = try tempDir("cubechat-swift-guide")
        let photo = dir.appendingPathComponent("photo.jpg").path
        let received = dir.appendingPathComponent("received.jpg").path
        try Data([0xff, 0xd8] + [UInt8](repeating: 0, count: 1000)).write(to: URL(fileURLWithPath: photo))
        try await withTimeout("attachments", seconds: 60) {
            let (alice, _) = try await guideOnline(server, aliceLogin)
            let (bob, b) = try await guideOnline(server, bobLogin)
            let chat = try await alice.createDialog(dialog: NewDialog(kind: .private, occupantsIds: [b.id]))
            let system = try bob.systemMessages()
            let presence = try alice.presenceEvents()
            // [guide:attachments]
            let blob = try await alice.upload(file: photo, options: UploadOptions(contentType: "image/jpeg")) { done, total in
                print("\(done)/\(total) bytes")
            }
            _ = try await alice.sendMessage(message: OutgoingMessage(
                dialogId: chat.id, recipientId: b.id, attachments: [attachmentFromBlob(blob: blob)]))
            // the receiver: download by uid (or hand blobUrl(uid:private:) to an image loader)
            _ = try await bob.download(uid: blob.uid, to: received)
            // [/guide]
            #expect(FileManager.default.contents(atPath: received) == FileManager.default.contents(atPath: photo))
            // [guide:system]
            _ = try await alice.sendChatSystemMessage(userId: b.id, body: "dialog/UPDATE", custom: ["photo": "new.png"])
            for await message in system {
                print(message.senderId, message.body, message.custom)
                break
            }
            // [/guide]
            // [guide:active]
            try await alice.markInactive()  // the app went to the background: offline pushes resume
            try await alice.markActive()    // back in the foreground (ChatLifecycle does both from the scene phase)
            // [/guide]
            // [guide:privacy]
            try await alice.createPrivacyList(list: PrivacyList(name: "blocked", items: [PrivacyListItem(userId: b.id)]))
            try await alice.setDefaultPrivacyList(name: "blocked")  // a list applies once it is the default
            try await alice.setDefaultPrivacyList(name: nil)
            try await alice.deletePrivacyList(name: "blocked")
            // [/guide]
            // [guide:last-activity]
            let seconds = try await alice.lastActivity(userId: b.id)  // 0 while bob is online
            try await alice.subscribeLastActivity(userId: b.id)
            // [/guide]
            #expect(seconds == 0)
            try await bob.disconnectChat()
            // [guide:last-activity-events]
            for await event in presence {
                if case .lastActivity(let user, let seconds) = event, user == b.id {
                    print("bob was last seen \(seconds) s ago")
                    break
                }
            }
            // [/guide]
            try await alice.destroyChat()
            try await bob.destroyChat()
        }
    }

    @Test func offlineStoreAndQueue() async throws {
        let (aliceLogin, bobLogin) = (try await guideSignedUp(server), try await guideSignedUp(server))
        let server = self.server
        let storeDir = try tempDir("cubechat-swift-guide-store").path
        try await withTimeout("store", seconds: 60) {
            let (bob, b) = try await guideOnline(server, bobLogin)
            var config = server.config()  // ClientConfig(appId:authKey:authSecret:apiUrl:…)
            // [guide:store]
            config.storeDir = storeDir  // one SQLite file per user
            let client = try ChatClient(config: config)
            _ = try await client.logIn(login: .login(login: aliceLogin), password: password)  // opens the user's store
            try await client.syncLocal()  // dialogs and messages changed since the last sync
            let dialogs = try client.dialogsPage(limit: 20, afterDialogId: nil)  // from the store, no network
            // [/guide]
            #expect(dialogs.isEmpty)
            let chat = try await client.createDialog(dialog: NewDialog(kind: .private, occupantsIds: [b.id]))
            try await client.syncLocal()
            // [guide:queue]
            let echo = try client.enqueueMessage(message: OutgoingMessage(
                dialogId: chat.id, recipientId: b.id, body: "sent when we are back online"), files: [])
            #expect(echo.state == .queued)  // saved; survives a restart of the app
            print(try client.pendingMessages().count, "waiting")
            // [/guide]
            // [guide:live-timeline]
            let timeline = try client.timeline(dialogId: chat.id, limit: 50)
            try await client.connectChat(auth: .sessionToken)  // the queue drains once connected
            for await messages in timeline {  // the whole list first, then the list after each change
                print(messages.map { ($0.body, $0.state) })
                if let last = messages.last, last.state == .sent || last.state == .delivered { break }
            }
            // [/guide]
            try await client.destroyChat()
            try await bob.destroyChat()
        }
    }
}
