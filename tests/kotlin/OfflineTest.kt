// JUnit 5 tests of the offline-first glue through the Kotlin bindings against cubeserver:
// a message queued offline shows as Queued in the live timeline, goes out once chat connects
// (bob receives it, the timeline hears Updated Sent); the live dialog list delivers its
// snapshot first, then changes; a damaged store file is a typed error and stays untouched.
package io.cubechat.tests

import io.cubechat.*
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.*
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import kotlin.test.assertFailsWith
import java.nio.file.Files
import java.util.UUID
import java.util.concurrent.CopyOnWriteArrayList

/** Records dialog-list and timeline events (callbacks come on cubechat threads). */
class Views : DialogListListener, TimelineListener {
    val dialogs = CopyOnWriteArrayList<DialogListEvent>()
    val timeline = CopyOnWriteArrayList<TimelineEvent>()
    override fun onDialogListEvent(event: DialogListEvent) { dialogs.add(event) }
    override fun onTimelineEvent(event: TimelineEvent) { timeline.add(event) }

    fun updates(id: String): List<TimelineMessage> =
        timeline.filterIsInstance<TimelineEvent.Updated>().map { it.message }.filter { it.id == id }
}

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class OfflineTest {
    /** One server for the class (one instance per class). */
    private val server = Cubeserver()

    @AfterAll
    fun stop() = server.close()

    private suspend fun user(config: ClientConfig = server.config()): Pair<ChatClient, User> {
        val c = ChatClient(config)
        val login = "kto" + UUID.randomUUID().toString().replace("-", "").take(10)
        c.signUp(NewUser(login = login), PASSWORD)
        return c to c.logIn(LoginId.Login(login), PASSWORD)
    }

    @Test
    fun queuedOfflineThenSentAndLiveDialogList() = runBlocking {
        val (alice, a) = user(server.config().copy(storeDir = Files.createTempDirectory("cubechat-kt").toString()))
        val (bob, b) = user()
        val bobEvents = Events()
        val bobHandles = bobEvents.subscribe(bob)
        bob.connectChat(ChatAuth.SessionToken)
        // Created by bob: alice's store learns of it from the sync that watching starts.
        val dialog = bob.createDialog(NewDialog(kind = DialogType.PRIVATE, occupantsIds = listOf(a.id)))

        val views = Views()
        val dialogsHandle = alice.watchDialogs(20u, views)
        eventually("dialog snapshot") { views.dialogs.isNotEmpty() }
        assertEquals(DialogListEvent.Snapshot(emptyList()), views.dialogs.first())
        eventually("dialog synced") { views.dialogs.any { it is DialogListEvent.Changed && it.dialog.id == dialog.id } }

        val timelineHandle = alice.watchTimeline(dialog.id, 50u, views)
        eventually("timeline snapshot") { views.timeline.isNotEmpty() }
        assertEquals(TimelineEvent.Snapshot(emptyList()), views.timeline.first())

        val queued = alice.enqueueMessage(OutgoingMessage(dialogId = dialog.id, recipientId = b.id, body = "from the queue"), emptyList())
        assertEquals(MessageState.Queued, queued.state)
        eventually("added as queued") { TimelineEvent.Added(queued) in views.timeline }
        eventually("dialog list hears it") {
            views.dialogs.any { it is DialogListEvent.Changed && it.dialog.id == dialog.id && it.dialog.lastMessage == "from the queue" }
        }
        assertEquals(listOf(queued.id), alice.pendingMessages().map { it.id })

        alice.connectChat(ChatAuth.SessionToken)
        eventually("bob receives") { bobEvents.messages.any { it.id == queued.id } }
        assertEquals("from the queue", bobEvents.messages.single { it.id == queued.id }.body)
        // Sent (the server's ack) normally comes first; bob's receipt may beat it (Delivered).
        val done = setOf(MessageState.Sent, MessageState.Delivered, MessageState.Read)
        eventually("updated to sent") { views.updates(queued.id).isNotEmpty() }
        assertTrue(views.updates(queued.id).all { it.state in done }, views.updates(queued.id).toString())
        assertEquals(emptyList<TimelineMessage>(), alice.pendingMessages())

        dialogsHandle.cancel()
        timelineHandle.cancel()
        assertFalse(dialogsHandle.isActive() || timelineHandle.isActive())
        bobHandles.forEach { it.cancel() }
        alice.destroyChat()
        bob.destroyChat()
    }

    @Test
    fun corruptStoreIsTypedAndUntouched() = runBlocking {
        val dir = Files.createTempDirectory("cubechat-kt-bad")
        val c = ChatClient(server.config().copy(storeDir = dir.toString()))
        val login = "ktc" + UUID.randomUUID().toString().replace("-", "").take(10)
        val me = c.signUp(NewUser(login = login), PASSWORD)
        val file = dir.resolve("cubechat-$APP_ID-${me.id}.sqlite3")
        val junk = "not a database at all\n".repeat(300).toByteArray()
        Files.write(file, junk)
        c.logIn(LoginId.Login(login), PASSWORD)
        assertFailsWith<ChatException.StoreCorrupt> { c.pendingMessages() }
        assertFailsWith<ChatException.StoreCorrupt> { c.openStore(me.id) }
        assertFailsWith<ChatException.StoreCorrupt> { c.watchDialogs(10u, Views()) }
        assertFailsWith<ChatException.InvalidInput> {
            c.enqueueMessage(OutgoingMessage(dialogId = "0".repeat(24), recipientId = me.id, body = ""), emptyList())
        }
        assertArrayEquals(junk, Files.readAllBytes(file))
    }
}
