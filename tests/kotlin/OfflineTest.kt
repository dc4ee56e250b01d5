// JUnit 5 tests of the offline-first glue through the Kotlin bindings against cubeserver:
// a message queued offline shows as Queued in the live timeline, goes out once chat connects
// (bob receives it, the timeline shows it Sent in place); the live dialog list delivers its
// snapshot first, then positional changes; the Flow layer (android/.../LiveViews.kt) gives
// the same views as Flows; a damaged store file is a typed error and stays untouched.
package io.cubechat.tests

import io.cubechat.*
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.onEach
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.*
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import kotlin.test.assertFailsWith
import java.nio.file.Files
import java.util.UUID
import java.util.concurrent.CopyOnWriteArrayList

/**
 * A dialog list and a timeline kept up to date from their events, as an app applies them
 * (callbacks come on cubechat threads), plus every event received.
 */
class Views : DialogListListener, TimelineListener {
    val dialogEvents = CopyOnWriteArrayList<DialogListEvent>()
    val timelineEvents = CopyOnWriteArrayList<TimelineEvent>()
    private val dialogList = ArrayList<Dialog>()
    private val timelineList = ArrayList<TimelineMessage>()
    override fun onDialogListEvent(event: DialogListEvent) {
        synchronized(this) { dialogEvents.add(event); dialogList.applyEvent(event) }
    }
    override fun onTimelineEvent(event: TimelineEvent) {
        synchronized(this) { timelineEvents.add(event); timelineList.applyEvent(event) }
    }
    fun dialogs(): List<Dialog> = synchronized(this) { dialogList.toList() }
    fun timeline(): List<TimelineMessage> = synchronized(this) { timelineList.toList() }
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
        eventually("dialog snapshot") { views.dialogEvents.isNotEmpty() }
        assertEquals(DialogListEvent.Reset(emptyList()), views.dialogEvents.first())
        eventually("dialog synced") { views.dialogs().any { it.id == dialog.id } }

        val timelineHandle = alice.watchTimeline(dialog.id, 50u, views)
        eventually("timeline snapshot") { views.timelineEvents.isNotEmpty() }
        assertEquals(TimelineEvent.Reset(emptyList()), views.timelineEvents.first())

        val queued = alice.enqueueMessage(OutgoingMessage(dialogId = dialog.id, recipientId = b.id, body = "from the queue"), emptyList())
        assertEquals(MessageState.Queued, queued.state)
        eventually("added as queued") { views.timeline() == listOf(queued) }
        assertEquals(TimelineEvent.PushBack(queued), views.timelineEvents[1])
        eventually("dialog list hears it") {
            views.dialogs().any { it.id == dialog.id && it.lastMessage == "from the queue" }
        }
        assertEquals(listOf(queued.id), alice.pendingMessages().map { it.id })

        alice.connectChat(ChatAuth.SessionToken)
        eventually("bob receives") { bobEvents.messages.any { it.id == queued.id } }
        assertEquals("from the queue", bobEvents.messages.single { it.id == queued.id }.body)
        // Sent (the server's ack) normally comes first; bob's receipt may beat it (Delivered).
        val done = setOf(MessageState.Sent, MessageState.Delivered, MessageState.Read)
        eventually("sent in place") { views.timeline().single().state in done }
        assertEquals(listOf(queued.id), views.timeline().map { it.id })
        assertEquals(emptyList<TimelineMessage>(), alice.pendingMessages())

        dialogsHandle.cancel()
        timelineHandle.cancel()
        assertFalse(dialogsHandle.isActive() || timelineHandle.isActive())
        bobHandles.forEach { it.cancel() }
        alice.destroyChat()
        bob.destroyChat()
    }

    @Test
    fun liveViewsAsFlows() = runBlocking {
        val (alice, _) = user()
        val (_, b) = user()
        val dialog = alice.createDialog(NewDialog(kind = DialogType.PRIVATE, occupantsIds = listOf(b.id)))
        alice.syncLocal()
        val first = alice.enqueueMessage(OutgoingMessage(dialogId = dialog.id, recipientId = b.id, body = "one"), emptyList())
        val second = alice.enqueueMessage(OutgoingMessage(dialogId = dialog.id, recipientId = b.id, body = "two"), emptyList())
        // The snapshot first, then one positional diff per change.
        val events = withTimeout(10_000) {
            alice.timelineEvents(dialog.id, 10u)
                .onEach { if (it is TimelineEvent.Reset) alice.cancelMessage(first.id) }
                .take(2)
                .toList()
        }
        assertEquals(listOf(TimelineEvent.Reset(listOf(first, second)), TimelineEvent.Remove(0u)), events)
        assertEquals(listOf(second), withTimeout(10_000) { alice.timeline(dialog.id, 10u).first() })
        assertEquals(alice.dialogsPage(10u, null), withTimeout(10_000) { alice.dialogList(10u).first() })
        alice.destroyChat()
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
