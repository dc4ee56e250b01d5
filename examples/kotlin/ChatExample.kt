// A small JVM chat program on the cubechat Kotlin layer (CubeChat, Flows, Long ids), built
// against the plain JVM jar (`make jar`) and run by `make test` (`examples/kotlin/run.sh`)
// against a local cubeserver. Two users sign up and connect; Bob listens with Flows, Alice
// types and sends, Bob replies and marks read, Alice sees the statuses, both read history.
// Configuration comes from the environment (CUBECHAT_* below); it prints what it did.
package io.cubechat.examples

import io.cubechat.ConnectionState
import io.cubechat.CubeChat
import io.cubechat.ListParams
import io.cubechat.MessageStatus
import io.cubechat.NewUser
import io.cubechat.ReceivedMessage
import io.cubechat.clientConfig
import io.cubechat.describe
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.filter
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import java.io.File
import java.util.UUID

private fun env(name: String): String = System.getenv(name) ?: error("$name is not set")

/** A client for the server named by the environment. */
private fun newChat(): CubeChat {
    val config = clientConfig(env("CUBECHAT_APP_ID").toLong(), env("CUBECHAT_AUTH_KEY"), env("CUBECHAT_AUTH_SECRET"), env("CUBECHAT_API_URL"))
    config.chatHost = env("CUBECHAT_CHAT_HOST")
    config.chatDomain = env("CUBECHAT_CHAT_DOMAIN")
    config.chatPort = env("CUBECHAT_CHAT_PORT").toUShort()
    config.extraCaPem = System.getenv("CUBECHAT_CA_PEM")?.let { File(it).readText() }
    return CubeChat(config)
}

/** Signs a new user up, logs in, connects to chat; returns the user's id. */
private suspend fun CubeChat.join(name: String): Long {
    val login = name.lowercase() + UUID.randomUUID().toString().take(8)
    val password = UUID.randomUUID().toString()
    client.signUp(NewUser(login = login, fullName = name), password)
    val me = logIn(login, password)
    connect()
    client.privacyListNames() // one round trip: the server has our presence, messages go live
    println("$name: user ${me.id} connected (${connection.value.describe()})")
    return me.id.toLong()
}

fun main() = runBlocking {
    withTimeout(60_000) {
        newChat().use { alice ->
            newChat().use { bob ->
                val aliceId = alice.join("Alice")
                val bobId = bob.join("Bob")
                val dialog = alice.privateDialog(bobId)
                println("Alice: private dialog ${dialog.id} with Bob")

                coroutineScope {
                    val bobGot = CompletableDeferred<List<ReceivedMessage>>()
                    val received = ArrayList<ReceivedMessage>()
                    // UNDISPATCHED: each collector has subscribed when `launch` returns.
                    val bobListens = launch(start = CoroutineStart.UNDISPATCHED) {
                        bob.messages().collect {
                            received.add(it)
                            println("Bob: got ${it.describe()}")
                            if (received.size == 3) bobGot.complete(received.toList())
                        }
                    }
                    val typingSeen = CompletableDeferred<Unit>()
                    val bobTyping = launch(start = CoroutineStart.UNDISPATCHED) {
                        bob.typing().filter { it.userId == aliceId && it.composing }.first()
                        println("Bob: Alice is typing")
                        typingSeen.complete(Unit)
                    }
                    alice.sendTyping(dialog.id, bobId, true)
                    typingSeen.await()
                    alice.sendTyping(dialog.id, bobId, false)
                    bobTyping.join()

                    val readSeen = CompletableDeferred<MessageStatus.Read>()
                    val sentSeen = ArrayList<String>()
                    val aliceStatuses = launch(start = CoroutineStart.UNDISPATCHED) {
                        alice.statuses().collect {
                            println("Alice: status ${it.describe()}")
                            if (it is MessageStatus.Sent) sentSeen.add(it.messageId)
                            if (it is MessageStatus.Read) readSeen.complete(it)
                        }
                    }
                    val sent = listOf("Hi Bob", "How are you?", "Lunch at noon?").map { alice.sendText(dialog.id, bobId, it) }
                    println("Alice: sent ${sent.size} messages")
                    val got = bobGot.await()
                    check(got.map { it.id } == sent) { "Bob got ${got.map { it.id }}, Alice sent $sent" }
                    bob.sendRead(dialog.id, got.last().id, aliceId)
                    val read = readSeen.await()
                    check(read.userId.toLong() == bobId && read.messageId == sent.last())
                    // Statuses come in order: every Sent came before that Read.
                    check(sentSeen == sent) { "Sent statuses for $sentSeen, expected $sent" }
                    bob.sendText(dialog.id, aliceId, "Sure, see you there")
                    bobListens.cancel()
                    aliceStatuses.cancel()
                }

                val history = alice.client.history(dialog.id, ListParams(), false)
                println("Alice: history of ${dialog.id} has ${history.size} messages")
                check(history.size == 4) { "history has ${history.size} messages, expected 4" }
                bob.client.disconnectChat()
                val state = bob.connection.first { it !is ConnectionState.Connected }
                println("Bob: ${state.describe()}")
            }
        }
    }
    println("example: done")
}

