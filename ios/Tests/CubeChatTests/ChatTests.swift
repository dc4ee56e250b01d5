// The chat REST API through the Swift bindings against a real cubeserver: a group's life
// (create, rename, add an occupant), 250 messages paged by date_sent in both directions,
// custom parameters, edits, reactions, unread counts, search, delete for me / for everyone,
// and the typed errors an app handles (Forbidden, NotFound, Server, InvalidInput before any
// network traffic).
import Foundation
import Testing

@testable import CubeChat

@Suite struct ChatTests {
    let server: Cubeserver
    init() throws { server = try Cubeserver() }

    private func byId(_ id: String) -> ListParams {
        ListParams(filters: [Filter(field: "_id", op: .eq, value: id)])
    }

    private func group(_ owner: Member, _ name: String, _ others: Member...) async throws -> Dialog {
        try await owner.client.createDialog(
            dialog: NewDialog(kind: .group, name: name, occupantsIds: others.map(\.id)))
    }

    /// One message from `from`, with a distinct date_sent and its index as a custom parameter.
    @discardableResult
    private func post(_ from: Member, _ dialogId: String, _ body: String, _ dateSent: Int64, _ seq: Int)
        async throws -> ChatMessage
    {
        try await from.client.createMessage(message: NewMessage(
            dialogId: dialogId, body: body, custom: ["seq": String(seq)], dateSent: dateSent))
    }

    @Test func groupIsCreatedRenamedAndGrows() async throws {
        let alice = try await member(server, "Alice")
        let bob = try await member(server, "Bob")
        let carol = try await member(server, "Carol")

        let created = try await group(alice, "Team", bob)
        #expect(created.kind == .group)
        #expect(created.ownerId == alice.id)
        #expect(created.name == "Team")
        #expect(Set(created.occupantsIds) == [alice.id, bob.id])
        #expect(created.occupantsIds.count == 2)
        #expect(created.adminsIds == [])
        let host = try #require(URL(string: server.apiUrl)?.host)
        #expect(created.roomJid == "\(appId)_\(created.id)@muc.\(host)")
        #expect(created.lastMessage == nil)
        #expect(created.unreadCount == 0)
        #expect(created.id.count == 24 && created.id.allSatisfy(\.isHexDigit))

        // An occupant (not the owner) renames the group and adds a third user.
        let renamed = try await bob.client.updateDialog(
            dialogId: created.id, update: DialogUpdate(name: "Team 2", addOccupants: [carol.id]))
        #expect(renamed.name == "Team 2")
        #expect(Set(renamed.occupantsIds) == [alice.id, bob.id, carol.id])
        #expect(renamed.ownerId == alice.id)

        // Every occupant's list shows the same dialog; filtering by _id finds exactly it.
        for m in [alice, bob, carol] {
            let page = try await m.client.listDialogs(params: byId(created.id))
            #expect(page.total == 1)
            let d = try #require(page.items.first)
            #expect(d.name == "Team 2")
            #expect(Set(d.occupantsIds) == Set(renamed.occupantsIds))
            #expect(d.roomJid == created.roomJid)
        }

        // Description, photo and extensions round trip.
        let described = try await alice.client.updateDialog(
            dialogId: created.id,
            update: DialogUpdate(photo: "photo-uid", description: "Our team", extensions: ["location": "Sun bar"]))
        #expect(described.description == "Our team")
        #expect(described.photo == "photo-uid")
        #expect(described.extensions == ["location": "Sun bar"])
        let byExt = try await carol.client.listDialogs(params: ListParams(
            filters: [Filter(field: "extensions[location]", op: .eq, value: "Sun bar")]))
        #expect(byExt.items.map(\.id) == [created.id])

        // Only the owner removes others; anyone removes themselves.
        await expectChatError("Forbidden") {
            try await bob.client.updateDialog(dialogId: created.id, update: DialogUpdate(removeOccupants: [carol.id]))
        }
        let left = try await carol.client.updateDialog(
            dialogId: created.id, update: DialogUpdate(removeOccupants: [carol.id]))
        #expect(Set(left.occupantsIds) == [alice.id, bob.id])
        #expect(try await carol.client.listDialogs(params: byId(created.id)).total == 0)

        // Delete for everyone (owner): gone from every list.
        #expect(try await alice.client.deleteDialogs(dialogIds: [created.id], force: true)
            == DeleteResult(deleted: [created.id], notFound: [], noPermission: []))
        #expect(try await bob.client.listDialogs(params: byId(created.id)).total == 0)
    }

    @Test func historyOf250MessagesPagesByDateSentInBothDirections() async throws {
        let alice = try await member(server, "Alice")
        let bob = try await member(server, "Bob")
        let dialog = try await group(alice, "History", bob)
        let base: Int64 = 1_700_000_000
        var sent: [ChatMessage] = []
        for i in 0..<250 { sent.append(try await post(alice, dialog.id, "message number \(i)", base + Int64(i), i)) }
        #expect(Set(sent.map(\.id)).count == 250)
        for (i, m) in sent.enumerated() {
            #expect(m.dialogId == dialog.id && m.dateSent == base + Int64(i))
            #expect(m.senderId == alice.id && m.recipientId == 0)
        }

        // The dialog's last message is the newest one.
        let d = try #require(try await bob.client.listDialogs(params: byId(dialog.id)).items.first)
        #expect(d.lastMessage == "message number 249")
        #expect(d.lastMessageId == sent.last?.id)
        #expect(d.lastMessageUserId == alice.id)
        #expect(d.lastMessageDateSent == base + 249)
        #expect(d.unreadCount == 250)
        #expect(d.lastMessageStatus == nil, "bob did not send the last message")

        // Backwards: newest first, 100 + 100 + 50, then nothing.
        var backwards: [ChatMessage] = []
        var before = Int64.max
        for expected in [100, 100, 50, 0] {
            let filters = before == Int64.max ? [] : [Filter(field: "date_sent", op: .lt, value: String(before))]
            let page = try await bob.client.history(
                dialogId: dialog.id, params: ListParams(filters: filters, limit: 100, sortBy: "date_sent", sortDescending: true),
                markAsRead: false)
            #expect(page.count == expected)
            backwards += page
            if let last = page.last { before = last.dateSent }
        }
        #expect(backwards.map(\.id) == sent.reversed().map(\.id))
        #expect(backwards.map { $0.custom["seq"] } == (0..<250).reversed().map { String($0) })

        // Forwards: oldest first, 100 + 100 + 50.
        var forwards: [ChatMessage] = []
        var after = base - 1
        for expected in [100, 100, 50, 0] {
            let page = try await bob.client.history(
                dialogId: dialog.id,
                params: ListParams(filters: [Filter(field: "date_sent", op: .gt, value: String(after))], limit: 100),
                markAsRead: false)
            #expect(page.count == expected)
            forwards += page
            if let last = page.last { after = last.dateSent }
        }
        #expect(forwards.map(\.id) == sent.map(\.id))

        // A window: 100 < i < 111 is exactly ten messages, ascending; skip pages too.
        let window = try await bob.client.history(
            dialogId: dialog.id,
            params: ListParams(filters: [
                Filter(field: "date_sent", op: .gt, value: String(base + 100)),
                Filter(field: "date_sent", op: .lt, value: String(base + 111)),
            ]), markAsRead: false)
        #expect(window.map(\.dateSent) == (101...110).map { base + Int64($0) })
        let skipped = try await bob.client.history(
            dialogId: dialog.id, params: ListParams(limit: 5, skip: 245), markAsRead: false)
        #expect(skipped.map(\.id) == sent.suffix(5).map(\.id))
        // Nothing was marked read while paging with markAsRead = false.
        #expect(try await bob.client.unreadCounts(dialogIds: [dialog.id])
            == UnreadCounts(total: 250, perDialog: [dialog.id: 250]))
        #expect(backwards.allSatisfy { !$0.read })

        // Reading marks messages read; mark all read clears the count.
        let firstTen = try await bob.client.history(
            dialogId: dialog.id, params: ListParams(limit: 10), markAsRead: true)
        #expect(firstTen.map(\.id) == sent.prefix(10).map(\.id))
        #expect(try await bob.client.unreadCounts(dialogIds: [dialog.id]).perDialog[dialog.id] == 240)
        let again = try await bob.client.history(dialogId: dialog.id, params: ListParams(limit: 11), markAsRead: false)
        #expect(again.map(\.read) == Array(repeating: true, count: 10) + [false])
        #expect(again.first?.readIds == [alice.id, bob.id])
        try await bob.client.markMessages(
            dialogId: dialog.id, messageIds: [sent[200].id, sent[201].id], read: true, delivered: false)
        #expect(try await bob.client.unreadCounts(dialogIds: [dialog.id]).perDialog[dialog.id] == 238)
        try await bob.client.markAllRead(dialogId: dialog.id)
        #expect(try await bob.client.unreadCounts(dialogIds: [dialog.id])
            == UnreadCounts(total: 0, perDialog: [dialog.id: 0]))
        let status = try #require(try await alice.client.listDialogs(params: byId(dialog.id)).items.first)
        #expect(status.lastMessageStatus == "read")
        #expect(status.unreadCount == 0, "the sender has her own messages read")
    }

    @Test func customParametersEditsAndReactions() async throws {
        let alice = try await member(server, "Alice")
        let bob = try await member(server, "Bob")
        let carol = try await member(server, "Carol")
        let dialog = try await group(alice, "Reactions", bob, carol)

        let custom = ["kind": "poll", "emoji": "🦀 ok", "nested": "{\"a\":[1,2]}", "empty": ""]
        let m = try await alice.client.createMessage(message: NewMessage(
            dialogId: dialog.id, body: "What's for lunch?", custom: custom, markable: true))
        #expect(m.custom == custom)
        let seen = try await bob.client.history(dialogId: dialog.id, params: ListParams(), markAsRead: false)
        #expect(seen.map(\.id) == [m.id])
        #expect(seen.first?.custom == custom)
        #expect(seen.first?.body == "What's for lunch?")
        #expect(seen.first?.reactions == nil)

        // Edit: the sender may, others may not.
        try await alice.client.editMessage(dialogId: dialog.id, messageId: m.id, body: "What's for dinner?")
        #expect(try await carol.client.history(dialogId: dialog.id, params: ListParams(), markAsRead: false)
            .first?.body == "What's for dinner?")
        await expectChatError("Forbidden") {
            try await bob.client.editMessage(dialogId: dialog.id, messageId: m.id, body: "hijacked")
        }

        // React, replace, remove. One reaction per user.
        try await bob.client.addReaction(messageId: m.id, reaction: "👍")
        try await carol.client.addReaction(messageId: m.id, reaction: "🔥")
        try await alice.client.addReaction(messageId: m.id, reaction: "❤️")
        #expect(try await bob.client.reactions(messageId: m.id)
            == ["👍": [bob.id], "🔥": [carol.id], "❤️": [alice.id]])
        try await carol.client.replaceReaction(messageId: m.id, add: "👍", remove: "🔥")
        try await alice.client.removeReaction(messageId: m.id, reaction: "❤️")
        let who = try await alice.client.reactions(messageId: m.id)
        #expect(Set(who.keys) == ["👍"])
        #expect(Set(who["👍"] ?? []) == [bob.id, carol.id])
        // Adding a second reaction replaces the first.
        try await bob.client.addReaction(messageId: m.id, reaction: "🎉")
        #expect(try await carol.client.reactions(messageId: m.id) == ["👍": [carol.id], "🎉": [bob.id]])

        // The history shows the caller's own reactions and the totals.
        let forBob = try await bob.client.history(dialogId: dialog.id, params: ListParams(), markAsRead: false)
        #expect(forBob.first?.reactions == Reactions(own: ["🎉"], totals: ["👍": 1, "🎉": 1]))
        let forAlice = try await alice.client.history(dialogId: dialog.id, params: ListParams(), markAsRead: false)
        #expect(forAlice.first?.reactions == Reactions(own: [], totals: ["👍": 1, "🎉": 1]))
        try await bob.client.removeReaction(messageId: m.id, reaction: "🎉")
        try await carol.client.removeReaction(messageId: m.id, reaction: "👍")
        #expect(try await alice.client.reactions(messageId: m.id) == [:])
    }

    @Test func unreadCountsAcrossDialogs() async throws {
        let alice = try await member(server, "Alice")
        let bob = try await member(server, "Bob")
        let one = try await group(alice, "One", bob)
        let two = try await group(alice, "Two", bob)
        let direct = try await bob.client.createDialog(dialog: NewDialog(kind: .private, occupantsIds: [alice.id]))
        #expect(direct.kind == .private)
        #expect(direct.roomJid == nil && direct.name == nil)
        for i in 0..<3 { try await post(alice, one.id, "one \(i)", 1_700_000_000 + Int64(i), i) }
        for i in 0..<5 { try await post(alice, two.id, "two \(i)", 1_700_000_000 + Int64(i), i) }
        let p = try await post(alice, direct.id, "private hello", 1_700_000_000, 0)
        #expect(p.recipientId == bob.id, "a private message is addressed to the other occupant")
        try await post(bob, direct.id, "private reply", 1_700_000_001, 1)

        #expect(try await bob.client.unreadCounts(dialogIds: []) == UnreadCounts(total: 9, perDialog: [:]))
        #expect(try await bob.client.unreadCounts(dialogIds: [one.id, two.id])
            == UnreadCounts(total: 8, perDialog: [one.id: 3, two.id: 5]))
        #expect(try await alice.client.unreadCounts(dialogIds: []) == UnreadCounts(total: 1, perDialog: [:]))

        try await bob.client.markAllRead(dialogId: two.id)
        #expect(try await bob.client.unreadCounts(dialogIds: [one.id, two.id])
            == UnreadCounts(total: 3, perDialog: [one.id: 3, two.id: 0]))
        let listed = try await bob.client.listDialogs(params: ListParams()).items
        #expect(Dictionary(uniqueKeysWithValues: listed.map { ($0.id, $0.unreadCount) })
            == [one.id: 3, two.id: 0, direct.id: 1])
    }

    @Test func searchFindsMessagesDialogsAndUsers() async throws {
        let alice = try await member(server, "Alice")
        let bob = try await member(server, "Bob")
        let token = unique("zz")
        let a = try await group(alice, "Search \(token) A", bob)
        let b = try await group(alice, "Search B", bob)
        let now = Int64(Date().timeIntervalSince1970)
        let m1 = try await post(alice, a.id, "first \(token) here", now - 10, 1)
        let m2 = try await post(alice, b.id, "second \(token) here", now - 5, 2)
        try await post(alice, b.id, "unrelated text", now - 4, 3)

        let all = try await bob.client.search(query: SearchQuery(text: token))
        #expect(all.messages.map(\.id) == [m2.id, m1.id], "newest first")
        #expect(all.dialogs.map(\.id) == [a.id])
        #expect(all.users.isEmpty)
        let onlyB = try await bob.client.search(query: SearchQuery(text: token, dialogIds: [b.id]))
        #expect(onlyB.messages.map(\.id) == [m2.id])
        let window = try await bob.client.search(query: SearchQuery(text: token, startDate: now - 12, endDate: now - 8))
        #expect(window.messages.map(\.id) == [m1.id])
        #expect(try await bob.client.search(query: SearchQuery(text: token, limit: 1)).messages.map(\.id) == [m2.id])

        // A user who is in neither dialog finds nothing; users are found by name.
        let stranger = try await member(server, "Stranger \(token)")
        let theirs = try await stranger.client.search(query: SearchQuery(text: token))
        #expect(theirs.messages.isEmpty && theirs.dialogs.isEmpty)
        #expect(theirs.users.map(\.id) == [stranger.id])
    }

    @Test func deleteForMeAndForEveryone() async throws {
        let alice = try await member(server, "Alice")
        let bob = try await member(server, "Bob")
        let carol = try await member(server, "Carol")
        let dialog = try await group(alice, "Deletes", bob, carol)
        var msgs: [ChatMessage] = []
        for i in 0..<4 { msgs.append(try await post(alice, dialog.id, "to delete \(i)", 1_700_000_000 + Int64(i), i)) }
        let bobs = try await post(bob, dialog.id, "bob's own", 1_700_000_010, 10)
        func ids(_ m: Member) async throws -> [String] {
            try await m.client.history(dialogId: dialog.id, params: ListParams(), markAsRead: false).map(\.id)
        }

        // Not the sender, not an admin: no permission to delete for everyone.
        #expect(try await carol.client.deleteMessages(messageIds: [msgs[3].id], force: true)
            == DeleteResult(deleted: [], notFound: [], noPermission: [msgs[3].id]))
        // The owner deletes anyone's message for everyone; an unknown id is reported.
        let ghost = "0123456789abcdef01234567"
        #expect(try await alice.client.deleteMessages(messageIds: [msgs[3].id, bobs.id, ghost], force: true)
            == DeleteResult(deleted: [msgs[3].id, bobs.id], notFound: [ghost], noPermission: []))
        for m in [alice, bob, carol] { #expect(try await ids(m) == msgs.prefix(3).map(\.id)) }
        let d = try #require(try await carol.client.listDialogs(params: byId(dialog.id)).items.first)
        #expect(d.lastMessage == "to delete 2")

        // Delete for me: hidden for carol only.
        #expect(try await carol.client.deleteMessages(messageIds: [msgs[0].id], force: false)
            == DeleteResult(deleted: [msgs[0].id], notFound: [], noPermission: []))
        #expect(try await ids(carol) == [msgs[1].id, msgs[2].id])
        #expect(try await ids(bob) == msgs.prefix(3).map(\.id))

        // Clear history for me.
        try await bob.client.clearHistory(dialogId: dialog.id, force: false)
        #expect(try await ids(bob) == [])
        #expect(try await ids(alice).count == 3)
    }

    @Test func typedErrors() async throws {
        let alice = try await member(server, "Alice")
        let bob = try await member(server, "Bob")
        let stranger = try await member(server, "Mallory")
        let dialog = try await group(alice, "Private club", bob)
        let m = try await post(alice, dialog.id, "members only", 1_700_000_000, 0)
        let missing = "5f0c0c0c0c0c0c0c0c0c0c0c"
        let s = stranger.client

        // A user outside the dialog: Forbidden on everything about it, and does not see it.
        await expectChatError("Forbidden") { try await s.history(dialogId: dialog.id, params: ListParams(), markAsRead: false) }
        await expectChatError("Forbidden") { try await s.updateDialog(dialogId: dialog.id, update: DialogUpdate(name: "mine")) }
        await expectChatError("Forbidden") { try await s.createMessage(message: NewMessage(dialogId: dialog.id, body: "hi")) }
        await expectChatError("Forbidden") { try await s.reactions(messageId: m.id) }
        await expectChatError("Forbidden") { try await s.addReaction(messageId: m.id, reaction: "👎") }
        await expectChatError("Forbidden") { try await s.markAllRead(dialogId: dialog.id) }
        #expect(try await s.deleteDialogs(dialogIds: [dialog.id], force: true)
            == DeleteResult(deleted: [], notFound: [], noPermission: [dialog.id]))
        #expect(try await s.listDialogs(params: ListParams()).total == 0)
        // Admins: the owner only.
        await expectChatError("Forbidden") { try await bob.client.addAdmins(dialogId: dialog.id, userIds: [bob.id]) }
        #expect(try await alice.client.addAdmins(dialogId: dialog.id, userIds: [bob.id]).adminsIds == [bob.id])

        // Well-formed ids that do not exist: NotFound.
        await expectChatError("NotFound") { try await alice.client.history(dialogId: missing, params: ListParams(), markAsRead: false) }
        await expectChatError("NotFound") { try await alice.client.updateDialog(dialogId: missing, update: DialogUpdate(name: "x")) }
        await expectChatError("NotFound") { try await alice.client.reactions(messageId: missing) }
        await expectChatError("NotFound") { try await alice.client.editMessage(dialogId: dialog.id, messageId: missing, body: "x") }

        // Server-side validation: unknown occupants are a 422.
        let unknown = await expectChatError("Server") {
            try await alice.client.createDialog(dialog: NewDialog(kind: .group, name: "Ghosts", occupantsIds: [999_999]))
        }
        if case .Server(let code, _)? = unknown { #expect(code == 422) } else { Issue.record("\(String(describing: unknown))") }

        // Bad input never leaves the device: this client points at a port nobody serves and is
        // not logged in, so anything that were sent would fail as Network / NotLoggedIn.
        let offline = try ChatClient(config: ClientConfig(
            appId: appId, authKey: authKey, authSecret: authSecret, apiUrl: "http://127.0.0.1:1"))
        let badCalls: [(String, @Sendable () async throws -> Void)] = [
            ("private with 2", { _ = try await offline.createDialog(dialog: NewDialog(kind: .private, occupantsIds: [1, 2])) }),
            ("blank group name", { _ = try await offline.createDialog(dialog: NewDialog(kind: .group, name: "  ", occupantsIds: [1])) }),
            ("bad dialog id", { _ = try await offline.updateDialog(dialogId: "not-an-id", update: DialogUpdate(name: "x")) }),
            ("empty update", { _ = try await offline.updateDialog(dialogId: missing, update: DialogUpdate()) }),
            ("limit 0", { _ = try await offline.history(dialogId: missing, params: ListParams(limit: 0), markAsRead: false) }),
            ("limit 101", { _ = try await offline.history(dialogId: missing, params: ListParams(limit: 101), markAsRead: false) }),
            ("unknown filter", { _ = try await offline.history(dialogId: missing, params: ListParams(filters: [Filter(field: "password", op: .eq, value: "x")]), markAsRead: false) }),
            ("bad sort", { _ = try await offline.history(dialogId: missing, params: ListParams(sortBy: "sender_id"), markAsRead: false) }),
            ("blank body", { _ = try await offline.createMessage(message: NewMessage(dialogId: missing, body: "   ")) }),
            ("huge body", { _ = try await offline.createMessage(message: NewMessage(dialogId: missing, body: String(repeating: "x", count: 64 * 1024 + 1))) }),
            ("reserved custom", { _ = try await offline.createMessage(message: NewMessage(dialogId: missing, body: "hi", custom: ["chat_dialog_id": "x"])) }),
            ("short dialog id", { _ = try await offline.createMessage(message: NewMessage(dialogId: "123", body: "hi")) }),
            ("no ids", { _ = try await offline.deleteMessages(messageIds: [], force: true) }),
            ("101 ids", { _ = try await offline.deleteMessages(messageIds: Array(repeating: missing, count: 101), force: true) }),
            ("blank reaction", { try await offline.addReaction(messageId: missing, reaction: " ") }),
            ("bad message id", { try await offline.addReaction(messageId: "zz", reaction: "👍") }),
            ("short search", { _ = try await offline.search(query: SearchQuery(text: "abcd")) }),
            ("start without end", { _ = try await offline.search(query: SearchQuery(text: "abcde", startDate: 0)) }),
            ("window too long", { _ = try await offline.search(query: SearchQuery(text: "abcde", startDate: 0, endDate: 93 * 86_400)) }),
            ("11 dialogs", { _ = try await offline.search(query: SearchQuery(text: "abcde", dialogIds: Array(repeating: missing, count: 11))) }),
            ("search limit 0", { _ = try await offline.search(query: SearchQuery(text: "abcde", limit: 0)) }),
            ("bad unread id", { _ = try await offline.unreadCounts(dialogIds: ["nope"]) }),
            ("6 admins", { _ = try await offline.addAdmins(dialogId: missing, userIds: [1, 2, 3, 4, 5, 6]) }),
            ("system to 0", { _ = try await offline.sendSystemMessage(recipientId: 0, params: [:]) }),
        ]
        for (what, call) in badCalls {
            do {
                try await call()
                Issue.record("\(what): no error")
            } catch {
                #expect(caseName(error) == "InvalidInput", "\(what): \(error)")
            }
        }
        // The same client does reach the network for valid input (so the cases above prove
        // something): a well-formed call fails as NotLoggedIn or Network, not InvalidInput.
        do {
            _ = try await offline.history(dialogId: missing, params: ListParams(), markAsRead: false)
            Issue.record("no error")
        } catch {
            #expect(["NotLoggedIn", "Network"].contains(caseName(error)), "\(error)")
        }
    }
}
