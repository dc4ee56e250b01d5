// JUnit 5 tests of real-time chat through the Kotlin bindings against cubeserver's XMPP side:
// connection states, a private message with every field, sent/delivered/read statuses, typing,
// edit and delete events, a group message, a REST reaction pushed as an event, a system
// message, and a message that waits offline until the user reconnects.
package io.cubechat.tests

import io.cubechat.*
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.*
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import kotlin.test.assertFailsWith
import java.util.UUID
import java.util.concurrent.CopyOnWriteArrayList

/** Records every event family of one client (callbacks come on cubechat threads). */
class Events : ConnectionListener, MessageListener, StatusListener, TypingListener, MessageChangeListener,
    SystemMessageListener, MessageErrorListener {
    val states = CopyOnWriteArrayList<ConnectionState>()
    val messages = CopyOnWriteArrayList<ReceivedMessage>()
    val statuses = CopyOnWriteArrayList<MessageStatus>()
    val typing = CopyOnWriteArrayList<Triple<String?, ULong, Boolean>>()
    val changes = CopyOnWriteArrayList<MessageChange>()
    val system = CopyOnWriteArrayList<SystemMessage>()
    val errors = CopyOnWriteArrayList<String>()
    override fun onState(state: ConnectionState) { states.add(state) }
    override fun onMessage(message: ReceivedMessage) { messages.add(message) }
    override fun onStatus(status: MessageStatus) { statuses.add(status) }
    override fun onTyping(dialogId: String?, userId: ULong, composing: Boolean) { typing.add(Triple(dialogId, userId, composing)) }
    override fun onChange(change: MessageChange) { changes.add(change) }
    override fun onSystemMessage(message: SystemMessage) { system.add(message) }
    override fun onMessageError(messageId: String, code: UShort, text: String) { errors.add(messageId) }

    fun subscribe(c: ChatClient): List<SubscriptionHandle> = listOf(
        c.subscribeConnection(this), c.subscribeMessages(this), c.subscribeStatuses(this), c.subscribeTyping(this),
        c.subscribeMessageChanges(this), c.subscribeSystemMessages(this), c.subscribeMessageErrors(this))
}

/** Waits (bounded) until [check] holds. */
suspend fun eventually(what: String, check: () -> Boolean) {
    try {
        withTimeout(10_000) { while (!check()) delay(20) }
    } catch (e: kotlinx.coroutines.TimeoutCancellationException) {
        fail<Unit>("not in time: $what")
    }
}

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RealtimeTest {
    private lateinit var server: Cubeserver

    private class Online(val client: ChatClient, val user: User, val events: Events, val handles: List<SubscriptionHandle>) {
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
        val login = "kt" + UUID.randomUUID().toString().replace("-", "").take(10)
        c.signUp(NewUser(login = login), PASSWORD)
        val me = c.logIn(LoginId.Login(login), PASSWORD)
        val events = Events()
        val handles = events.subscribe(c)
        c.connectChat(ChatAuth.SessionToken)
        assertEquals(ConnectionState.Connected, c.connectionState())
        // Connected = initial presence sent; one IQ round trip proves cubeserver read it, so a
        // message sent right after is routed live (not stored and flushed as delayed).
        c.privacyListNames()
        return Online(c, me, events, handles)
    }

    @Test
    fun privateMessageWithStatusesTypingEditAndDelete() = runBlocking {
        val alice = online()
        val bob = online()
        assertEquals(ConnectionState.Idle, alice.events.states.first())
        eventually("alice connected event") { alice.events.states.last() == ConnectionState.Connected }

        val dialog = alice.client.createDialog(NewDialog(kind = DialogType.PRIVATE, occupantsIds = listOf(bob.id)))
        val attachment = Attachment(kind = "file", uid = "a".repeat(32), name = "notes.txt", size = 12uL, contentType = "text/plain")
        val id = alice.client.sendMessage(OutgoingMessage(dialogId = dialog.id, recipientId = bob.id, body = "hi from kotlin",
            attachments = listOf(attachment), custom = mapOf("k" to "v"), dateSent = 1_700_000_123L))
        assertEquals(24, id.length)
        eventually("bob receives") { bob.events.messages.any { it.id == id } }
        val got = bob.events.messages.single { it.id == id }
        assertEquals(listOf<Any?>(dialog.id, alice.id, bob.id, "hi from kotlin", mapOf("k" to "v"), 1_700_000_123L, listOf(attachment)),
            listOf<Any?>(got.dialogId, got.senderId, got.recipientId, got.body, got.custom, got.dateSent, got.attachments))
        assertFalse(got.group || got.carbon || got.delayed)

        eventually("sent") { MessageStatus.Sent(id) in alice.events.statuses }
        eventually("delivered") { MessageStatus.Delivered(id, dialog.id, bob.id) in alice.events.statuses }
        bob.client.sendRead(dialog.id, id, alice.id)
        eventually("read") { MessageStatus.Read(id, dialog.id, bob.id) in alice.events.statuses }

        alice.client.sendTyping(dialog.id, bob.id, true)
        eventually("typing") { Triple(dialog.id, alice.id, true) in bob.events.typing }
        alice.client.sendTyping(dialog.id, bob.id, false)
        eventually("paused") { Triple(dialog.id, alice.id, false) in bob.events.typing }

        alice.client.sendEdit(dialog.id, bob.id, id, "edited", true)
        eventually("edited") { bob.events.changes.any { it is MessageChange.Edited && it.messageId == id && it.body == "edited" } }
        alice.client.sendDelete(dialog.id, bob.id, id)
        eventually("deleted") { bob.events.changes.any { it is MessageChange.Deleted && it.messageId == id && it.userId == alice.id } }
        assertEquals(1, bob.events.messages.count { it.id == id })
    }

    @Test
    fun groupReactionSystemMessageAndOfflineDelivery() = runBlocking {
        val alice = online()
        val bob = online()
        val group = alice.client.createDialog(NewDialog(kind = DialogType.GROUP, name = "KT", occupantsIds = listOf(bob.id)))
        val id = alice.client.sendMessage(OutgoingMessage(dialogId = group.id, body = "group hello"))
        eventually("group message") { bob.events.messages.any { it.id == id } }
        val got = bob.events.messages.single { it.id == id }
        assertTrue(got.group)
        assertEquals(group.id, got.dialogId)
        assertEquals(group.id, bob.client.history(group.id, ListParams(), false).single().dialogId)

        bob.client.addReaction(id, "👍")
        eventually("reaction event") {
            alice.events.changes.any { it is MessageChange.Reactions && it.messageId == id && it.add == listOf("👍") && it.userId == bob.id }
        }

        val sys = alice.client.sendChatSystemMessage(bob.id, "ping", mapOf("x" to "1"))
        eventually("system message") { bob.events.system.any { it.id == sys && it.custom == mapOf("x" to "1") } }

        val private = alice.client.createDialog(NewDialog(kind = DialogType.PRIVATE, occupantsIds = listOf(bob.id)))
        bob.client.disconnectChat()
        val late = alice.client.sendMessage(OutgoingMessage(dialogId = private.id, recipientId = bob.id, body = "later"))
        eventually("sent while bob is away") { MessageStatus.Sent(late) in alice.events.statuses }
        bob.client.reconnectNow()
        eventually("offline message arrives") { bob.events.messages.any { it.id == late } }
        assertTrue(bob.events.messages.single { it.id == late }.delayed)

        bob.client.destroyChat()
        bob.client.destroyChat()
        assertEquals(ConnectionState.Idle, bob.client.connectionState())
    }

    @Test
    fun typedErrors() = runBlocking {
        val c = ChatClient(server.config())
        val login = "kte" + UUID.randomUUID().toString().replace("-", "").take(8)
        c.signUp(NewUser(login = login), PASSWORD)
        val me = c.logIn(LoginId.Login(login), PASSWORD)
        assertFailsWith<ChatException.ChatNotConnected> { c.sendMessage(OutgoingMessage(dialogId = "0".repeat(24), body = "x")) }
        val other = ChatClient(server.config())
        assertFailsWith<ChatException.InvalidCredentials> { other.connectChat(ChatAuth.Password(me.id, "wrong-password")) }
        c.connectChat(ChatAuth.SessionToken)
        assertFailsWith<ChatException.InvalidInput> { c.sendMessage(OutgoingMessage(dialogId = "0".repeat(24), body = "")) }
        c.destroyChat()
    }
}
