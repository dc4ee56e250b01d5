// Privacy lists, last activity (the presence stream and the per-user stream), active /
// inactive and group-room presence through the Swift bindings against cubeserver.
import Foundation
import Testing

@testable import CubeChat

@Suite struct PresenceTests {
    let server: Cubeserver
    init() throws { server = try Cubeserver() }

    @Test func privacyListBlocksTwoWay() async throws {
        let alice = try await online(server)
        let bob = try await online(server)
        let dialog = try await alice.client.createDialog(dialog: NewDialog(kind: .private, occupantsIds: [bob.id]))
        try await alice.client.createPrivacyList(
            list: PrivacyList(name: "both", items: [PrivacyListItem(userId: bob.id, mutualBlock: true)]))
        try await alice.client.setDefaultPrivacyList(name: "both")
        #expect(try await alice.client.privacyListNames().default == "both")
        #expect(try await alice.client.privacyList(name: "both").items
            == [PrivacyListItem(userId: bob.id, allow: false, mutualBlock: true)])

        // Two-way: neither side gets through, and both senders hear about it.
        let fromBob = try await bob.client.sendMessage(message: OutgoingMessage(
            dialogId: dialog.id, recipientId: alice.id, body: "hi"))
        let fromAlice = try await alice.client.sendMessage(message: OutgoingMessage(
            dialogId: dialog.id, recipientId: bob.id, body: "hi"))
        try await eventually("bob's message bounced") { bob.events.bounced.contains { $0.messageId == fromBob } }
        try await eventually("alice's message bounced") { alice.events.bounced.contains { $0.messageId == fromAlice } }
        #expect(!alice.events.messages.contains { $0.id == fromBob })
        #expect(!bob.events.messages.contains { $0.id == fromAlice })

        // Update in one call while the list is the default: now only one-way.
        try await alice.client.updatePrivacyList(
            list: PrivacyList(name: "both", items: [PrivacyListItem(userId: bob.id, mutualBlock: false)]))
        #expect(try await alice.client.privacyListNames().default == "both")
        let nowAllowed = try await alice.client.sendMessage(message: OutgoingMessage(
            dialogId: dialog.id, recipientId: bob.id, body: "ok now"))
        try await eventually("alice can write again") { bob.events.messages.contains { $0.id == nowAllowed } }
        try await alice.client.setDefaultPrivacyList(name: nil)
        try await alice.client.deletePrivacyList(name: "both")
        await expectChatError("NotFound") { try await alice.client.privacyList(name: "both") }
        try await alice.client.destroyChat()
        try await bob.client.destroyChat()
    }

    @Test func lastActivityAsPresenceEventsAndPerUserStream() async throws {
        let alice = try await online(server)
        let bob = try await online(server)
        #expect(try await alice.client.lastActivity(userId: bob.id) == 0)
        try await alice.client.subscribeLastActivity(userId: bob.id)
        try await bob.client.disconnectChat()
        try await eventually("logout pushed") {
            alice.events.presence.contains {
                if case .lastActivity(let u, _) = $0 { u == bob.id } else { false }
            }
        }
        #expect(try await alice.client.lastActivity(userId: bob.id) >= 1)
        try await bob.client.reconnectNow()
        try await eventually("login pushed") {
            alice.events.presence.contains(.lastActivity(userId: bob.id, seconds: 0))
        }
        try await alice.client.unsubscribeLastActivity(userId: bob.id)

        // The per-user stream hears only that user.
        let seen = Recorder(try await alice.client.lastActivity(of: bob.id))
        try await bob.client.disconnectChat()
        try await eventually("watched logout") { seen.all.count == 1 && seen.all[0] >= 1 }
        try await bob.client.reconnectNow()
        try await eventually("watched login") { seen.all.last == 0 }
        seen.cancel()
        try await alice.client.unsubscribeLastActivity(userId: bob.id)
        try await alice.client.destroyChat()
        try await bob.client.destroyChat()
    }

    @Test func activeInactiveAndRoomPresence() async throws {
        let alice = try await online(server)
        let bob = try await online(server)
        try await bob.client.markInactive()
        try await bob.client.markActive()
        #expect(bob.client.connectionState() == .connected)

        let group = try await alice.client.createDialog(
            dialog: NewDialog(kind: .group, name: "SP", occupantsIds: [bob.id]))
        try await alice.client.joinRoom(dialogId: group.id)
        try await bob.client.joinRoom(dialogId: group.id)
        try await eventually("bob joined") {
            alice.events.presence.contains(.occupantJoined(dialogId: group.id, userId: bob.id))
        }
        #expect(Set(try await alice.client.roomOccupants(dialogId: group.id)) == [alice.id, bob.id])
        try await bob.client.leaveRoom(dialogId: group.id)
        try await eventually("bob left") {
            alice.events.presence.contains(.occupantLeft(dialogId: group.id, userId: bob.id))
        }
        try await alice.client.destroyChat()
        try await bob.client.destroyChat()
    }
}
