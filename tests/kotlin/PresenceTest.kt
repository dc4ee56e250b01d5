// JUnit 5 tests of privacy lists, last activity and its subscription, active/inactive and group
// presence through the Kotlin bindings against cubeserver: each API once, with its effect.
package io.cubechat.tests

import io.cubechat.*
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.*
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import kotlin.test.assertFailsWith
import java.util.UUID
import java.util.concurrent.CopyOnWriteArrayList

class PresenceEvents : PresenceListener, MessageErrorListener, MessageListener {
    val presence = CopyOnWriteArrayList<PresenceEvent>()
    val errors = CopyOnWriteArrayList<Pair<String, UShort>>()
    val messages = CopyOnWriteArrayList<ReceivedMessage>()
    override fun onPresence(event: PresenceEvent) { presence.add(event) }
    override fun onMessageError(messageId: String, code: UShort, text: String) { errors.add(messageId to code) }
    override fun onMessage(message: ReceivedMessage) { messages.add(message) }
}

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PresenceTest {
    private lateinit var server: Cubeserver

    private class Online(val client: ChatClient, val user: User, val events: PresenceEvents, val handles: List<SubscriptionHandle>) {
        val id: ULong get() = user.id
    }

    @BeforeAll
    fun start() {
        server = Cubeserver()
    }

    @AfterAll
    fun stop() = server.close()

    private suspend fun online(): Online {
        val c = ChatClient(server.config())
        val login = "ktp" + UUID.randomUUID().toString().replace("-", "").take(10)
        c.signUp(NewUser(login = login), PASSWORD)
        val me = c.logIn(LoginId.Login(login), PASSWORD)
        val events = PresenceEvents()
        val handles = listOf(c.subscribePresence(events), c.subscribeMessageErrors(events), c.subscribeMessages(events))
        c.connectChat(ChatAuth.SessionToken)
        return Online(c, me, events, handles)
    }

    @Test
    fun privacyListBlocksTwoWay(): Unit = runBlocking {
        val alice = online()
        val bob = online()
        val dialog = alice.client.createDialog(NewDialog(kind = DialogType.PRIVATE, occupantsIds = listOf(bob.id)))
        alice.client.createPrivacyList(PrivacyList("both", listOf(PrivacyListItem(userId = bob.id, mutualBlock = true))))
        alice.client.setDefaultPrivacyList("both")
        assertEquals("both", alice.client.privacyListNames().default)
        assertEquals(listOf(PrivacyListItem(bob.id, false, true)), alice.client.privacyList("both").items)
        // Two-way: neither side gets through, and both senders hear about it.
        val fromBob = bob.client.sendMessage(OutgoingMessage(dialogId = dialog.id, recipientId = alice.id, body = "hi"))
        val fromAlice = alice.client.sendMessage(OutgoingMessage(dialogId = dialog.id, recipientId = bob.id, body = "hi"))
        eventually("bob's message bounced") { bob.events.errors.any { it.first == fromBob } }
        eventually("alice's message bounced") { alice.events.errors.any { it.first == fromAlice } }
        assertTrue(alice.events.messages.none { it.id == fromBob } && bob.events.messages.none { it.id == fromAlice })
        // Update in one call while the list is the default: now only one-way.
        alice.client.updatePrivacyList(PrivacyList("both", listOf(PrivacyListItem(userId = bob.id, mutualBlock = false))))
        assertEquals("both", alice.client.privacyListNames().default)
        val nowAllowed = alice.client.sendMessage(OutgoingMessage(dialogId = dialog.id, recipientId = bob.id, body = "ok now"))
        eventually("alice can write again") { bob.events.messages.any { it.id == nowAllowed } }
        alice.client.setDefaultPrivacyList(null)
        alice.client.deletePrivacyList("both")
        assertFailsWith<ChatException.NotFound> { alice.client.privacyList("both") }
    }

    @Test
    fun lastActivityActiveInactiveAndRoomPresence(): Unit = runBlocking {
        val alice = online()
        val bob = online()
        assertEquals(0uL, alice.client.lastActivity(bob.id))
        alice.client.subscribeLastActivity(bob.id)
        bob.client.disconnectChat()
        eventually("logout pushed") { alice.events.presence.any { it is PresenceEvent.LastActivity && it.userId == bob.id } }
        assertTrue(alice.client.lastActivity(bob.id) >= 1uL)
        bob.client.reconnectNow()
        eventually("login pushed") { PresenceEvent.LastActivity(bob.id, 0uL) in alice.events.presence }
        alice.client.unsubscribeLastActivity(bob.id)
        // A per-user callback hears only that user.
        val seen = CopyOnWriteArrayList<Pair<ULong, ULong>>()
        val watch = alice.client.watchLastActivity(bob.id, object : LastActivityListener {
            override fun onLastActivity(userId: ULong, seconds: ULong) { seen.add(userId to seconds) }
        })
        bob.client.disconnectChat()
        eventually("watched logout") { seen.size == 1 && seen[0].first == bob.id && seen[0].second >= 1uL }
        bob.client.reconnectNow()
        eventually("watched login") { seen.lastOrNull() == (bob.id to 0uL) }
        watch.cancel()
        alice.client.unsubscribeLastActivity(bob.id)
        bob.client.markInactive()
        bob.client.markActive()

        val group = alice.client.createDialog(NewDialog(kind = DialogType.GROUP, name = "KP", occupantsIds = listOf(bob.id)))
        alice.client.joinRoom(group.id)
        bob.client.joinRoom(group.id)
        eventually("bob joined") { PresenceEvent.OccupantJoined(group.id, bob.id) in alice.events.presence }
        assertEquals(setOf(alice.id, bob.id), alice.client.roomOccupants(group.id).toSet())
        bob.client.leaveRoom(group.id)
        eventually("bob left") { PresenceEvent.OccupantLeft(group.id, bob.id) in alice.events.presence }
    }
}
