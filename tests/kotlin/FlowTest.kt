// JUnit 5 tests of the hand-written Kotlin layer (android/src/main/kotlin/io/cubechat): event
// families as Flows against cubeserver. A slow collector delays neither another subscription
// nor another client's send; cancelling or finishing a collection cancels the engine-side
// subscription; a throwing collector ends only itself and a throwing listener keeps
// receiving; CubeChat (AutoCloseable, Long ids, StateFlow) and the describe() texts.
package io.cubechat.tests

import io.cubechat.*
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.async
import kotlinx.coroutines.cancel
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.onEach
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.*
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import java.util.UUID
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class FlowTest {
    private lateinit var server: Cubeserver
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.IO)

    @BeforeAll
    fun start() {
        server = Cubeserver()
    }

    @AfterAll
    fun stop() {
        scope.cancel()
        server.close()
    }

    /** A signed-up, logged-in, connected CubeChat. */
    private suspend fun online(): CubeChat {
        val chat = CubeChat(server.config())
        val login = "kf" + UUID.randomUUID().toString().replace("-", "").take(10)
        chat.client.signUp(NewUser(login = login), PASSWORD)
        chat.logIn(login, PASSWORD)
        chat.connect()
        // One IQ round trip: cubeserver has read the initial presence, so messages go live.
        chat.client.privacyListNames()
        return chat
    }

    /**
     * Repeats [action] every 200 ms (at most 50 times) until [done] holds: a flow subscribes
     * when its collector starts, which the test cannot observe, so it sends until one arrives.
     */
    private suspend fun repeatUntil(what: String, action: suspend () -> Unit, done: () -> Boolean) {
        repeat(50) {
            action()
            try {
                withTimeout(200) { while (!done()) kotlinx.coroutines.delay(10) }
                return
            } catch (e: kotlinx.coroutines.TimeoutCancellationException) {
                // not yet: again
            }
        }
        fail<Unit>("not in time: $what")
    }

    @Test
    fun slowCollectorDelaysNeitherAnotherSubscriptionNorAnotherClientsSend() = runBlocking {
        online().use { alice ->
            online().use { bob ->
                val aliceId = alice.userId!!
                val bobId = bob.userId!!
                val dialog = alice.privateDialog(bobId)
                val arrived = ConcurrentHashMap<String, Long>()
                val fast = scope.launch { bob.messages().collect { arrived[it.id] = System.nanoTime() } }

                // Send one message; its send time and its delivery time to bob's other flow (ms).
                suspend fun roundTrip(i: Int): Pair<Double, Double> {
                    val t0 = System.nanoTime()
                    val id = alice.sendText(dialog.id, bobId, "round trip $i")
                    val sent = System.nanoTime()
                    eventually("message $i reaches bob") { arrived.containsKey(id) }
                    return (sent - t0) / 1e6 to (arrived.getValue(id) - t0) / 1e6
                }
                repeatUntil("bob's flow subscribed", { alice.sendText(dialog.id, bobId, "warm-up") }) { arrived.isNotEmpty() }
                val baseline = (1..5).map { roundTrip(it) }

                // Two collectors of bob's typing that sleep 3 s per event.
                val asleep = ConcurrentHashMap.newKeySet<Int>()
                val woke = AtomicInteger()
                val slow = List(2) { n ->
                    scope.launch {
                        bob.typing().collect {
                            asleep.add(n)
                            Thread.sleep(3_000)
                            woke.incrementAndGet()
                        }
                    }
                }
                var composing = false
                repeatUntil("both slow collectors asleep", {
                    composing = !composing
                    alice.sendTyping(dialog.id, bobId, composing)
                }) { asleep.size == 2 }
                val loaded = (1..5).map { roundTrip(it + 5) }
                // Both still in their first sleep: every measured send happened while they slept.
                val overlapped = woke.get() == 0
                slow.forEach { it.cancelAndJoin() }
                fast.cancelAndJoin()

                // Medians of five: one scheduling hiccup of a loaded 2-core machine is not a stall
                // (a stall behind a 3 s sleep would show in every sample).
                fun median(xs: List<Double>) = xs.sorted()[xs.size / 2]
                val (baseSend, baseDelivery) = median(baseline.map { it.first }) to median(baseline.map { it.second })
                val (send, delivery) = median(loaded.map { it.first }) to median(loaded.map { it.second })
                fun ms(xs: List<Pair<Double, Double>>, f: (Pair<Double, Double>) -> Double) = xs.map { "%.1f".format(f(it)) }
                println("flow latency (ms): baseline send ${ms(baseline) { it.first }} delivery ${ms(baseline) { it.second }}; " +
                    "with 2 collectors sleeping 3 s: send ${ms(loaded) { it.first }} delivery ${ms(loaded) { it.second }}")
                assertTrue(overlapped, "the measured sends ran while the slow collectors slept")
                assertTrue(send <= baseSend + 100, "alice's send took $send ms (median; baseline $baseSend ms)")
                assertTrue(delivery <= baseDelivery + 100, "bob's other flow got it after $delivery ms (median; baseline $baseDelivery ms)")
                assertEquals(aliceId, alice.userId)
            }
        }
    }

    @Test
    fun endingACollectionCancelsTheEngineSubscription() = runBlocking {
        online().use { alice ->
            online().use { bob ->
                val dialog = alice.privateDialog(bob.userId!!)

                // A collection that finishes (first()) cancels its handle.
                val handle = AtomicReference<SubscriptionHandle?>()
                val activeWhileCollecting = CompletableDeferred<Boolean>()
                val firstMessage = scope.async {
                    subscriptionFlow<ReceivedMessage> {
                        bob.client.subscribeMessages(object : MessageListener {
                            override fun onMessage(message: ReceivedMessage) { trySend(message) }
                        }).also { handle.set(it) }
                    }.onEach { activeWhileCollecting.complete(handle.get()!!.isActive()) }.first()
                }
                eventually("subscribed") { handle.get() != null }
                val id = alice.sendText(dialog.id, bob.userId, "first")
                assertEquals(id, withTimeout(10_000) { firstMessage.await() }.id)
                assertTrue(activeWhileCollecting.await())
                eventually("first() cancelled the subscription") { !handle.get()!!.isActive() }

                // A cancelled collector cancels its handle.
                val second = AtomicReference<SubscriptionHandle?>()
                val job = scope.launch {
                    subscriptionFlow<TypingEvent> {
                        bob.client.subscribeTyping(object : TypingListener {
                            override fun onTyping(dialogId: String?, userId: ULong, composing: Boolean) {
                                trySend(TypingEvent(dialogId, userId.toLong(), composing))
                            }
                        }).also { second.set(it) }
                    }.collect { }
                }
                eventually("second subscribed") { second.get()?.isActive() == true }
                job.cancelAndJoin()
                eventually("cancel() cancelled the subscription") { !second.get()!!.isActive() }

                // Closing the CubeChat completes the flows collected from it.
                val got = CopyOnWriteArrayList<String>()
                val collectors = listOf(
                    scope.launch { bob.messages().collect { got.add(it.id) } },
                    scope.launch { bob.connection.collect { } },
                )
                repeatUntil("bob's flow subscribed", { alice.sendText(dialog.id, bob.userId, "before close") }) { got.isNotEmpty() }
                bob.close()
                withTimeout(10_000) { collectors[0].join() }
                assertFalse(collectors[0].isCancelled, "the messages flow completed normally")
                collectors[1].cancelAndJoin() // a StateFlow never completes; it just stops changing
                bob.close() // idempotent
            }
        }
    }

    @Test
    fun throwingCollectorEndsOnlyItselfAndThrowingListenerKeepsReceiving() = runBlocking {
        online().use { alice ->
            online().use { bob ->
                val dialog = alice.privateDialog(bob.userId!!)
                val handle = AtomicReference<SubscriptionHandle?>()
                val thrower = scope.async {
                    runCatching {
                        subscriptionFlow<ReceivedMessage> {
                            bob.client.subscribeMessages(object : MessageListener {
                                override fun onMessage(message: ReceivedMessage) { trySend(message) }
                            }).also { handle.set(it) }
                        }.collect { throw IllegalStateException("collector failed on purpose") }
                    }.exceptionOrNull()
                }
                val flowGot = CopyOnWriteArrayList<String>()
                val steady = scope.launch { bob.messages().collect { flowGot.add(it.id) } }
                val listenerCalls = CopyOnWriteArrayList<String>()
                val raw = bob.client.subscribeMessages(object : MessageListener {
                    override fun onMessage(message: ReceivedMessage) {
                        listenerCalls.add(message.id)
                        throw IllegalStateException("listener failed on purpose")
                    }
                })
                repeatUntil("bob's flow subscribed", { alice.sendText(dialog.id, bob.userId, "warm-up") }) { flowGot.isNotEmpty() }
                assertNotNull(handle.get())
                val ids = listOf(alice.sendText(dialog.id, bob.userId, "one"), alice.sendText(dialog.id, bob.userId, "two"))

                val failure = withTimeout(10_000) { thrower.await() }
                assertEquals("collector failed on purpose", failure?.message)
                eventually("the throwing collector's subscription ended") { !handle.get()!!.isActive() }
                eventually("the other flow got both") { flowGot.containsAll(ids) }
                eventually("the throwing listener was called for both") { listenerCalls.containsAll(ids) }
                assertTrue(raw.isActive())
                raw.cancel()
                steady.cancelAndJoin()
            }
        }
    }

    @Test
    fun cubeChatLongIdsStateFlowAndDescriptions() = runBlocking {
        online().use { alice ->
            val bob = online()
            assertEquals(ConnectionState.Connected, alice.connection.value)
            assertEquals("Connected", alice.connection.value.describe())
            val bobId = bob.userId!!
            assertTrue(bobId > 0)
            val typing = CompletableDeferred<TypingEvent>()
            val job = scope.launch { bob.typing().collect { typing.complete(it) } }
            val got = CompletableDeferred<ReceivedMessage>()
            val messages = scope.launch { bob.messages().collect { got.complete(it) } }
            val dialog = alice.privateDialog(bobId)
            assertEquals(listOf(alice.userId!!, bobId).sorted(), dialog.occupantsIds.map { it.toLong() }.sorted())
            // The flows subscribe when their collectors start; resend until the first arrives.
            withTimeout(10_000) {
                while (!typing.isCompleted) { alice.sendTyping(dialog.id, bobId, true); kotlinx.coroutines.delay(100) }
            }
            assertEquals(TypingEvent(dialog.id, alice.userId!!, true), typing.await())
            val sent = CopyOnWriteArrayList<String>()
            repeatUntil("bob's messages flow subscribed", { sent.add(alice.sendText(dialog.id, bobId, "a body that stays out of logs")) }) { got.isCompleted }
            val message = got.await()
            val id = message.id
            assertTrue(id in sent)
            messages.cancelAndJoin()
            val text = message.describe()
            assertTrue(text.contains(id) && text.contains("<29 chars>") && !text.contains("stays out"), text)
            assertTrue(alice.lastActivity(bobId) >= 0)
            job.cancelAndJoin()

            val dropped = CompletableDeferred<ConnectionState>()
            val watcher = scope.launch { bob.connection.collect { if (it !is ConnectionState.Connected) dropped.complete(it) } }
            bob.client.disconnectChat()
            assertTrue(withTimeout(10_000) { dropped.await() } is ConnectionState.Disconnected)
            assertTrue(bob.connection.value.describe().startsWith("Disconnected(reason="), bob.connection.value.describe())
            watcher.cancelAndJoin()
            bob.close()

            val notConnected = runCatching { bob.sendTyping(dialog.id, alice.userId, true) }.exceptionOrNull()
            assertNotNull(notConnected)
            assertThrows(IllegalArgumentException::class.java) { runBlocking { alice.sendRead(dialog.id, id, -1) } }
            assertEquals("Queued", MessageState.Queued.describe())
            assertEquals("ChatNotConnected(chat is not connected)", ChatException.ChatNotConnected().describe())
        }
    }
}
