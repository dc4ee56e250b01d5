// The Kotlin column of docs/guide/chat.md: each `[guide:NAME]` region below is copied into the
// guide by scripts/snippets.py, and these tests run them against cubeserver, so a snippet that
// stops working fails `make test`.
package io.cubechat.tests

import io.cubechat.*
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.*
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import java.nio.file.Files
import java.util.UUID

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class GuideTest {
    private lateinit var server: Cubeserver

    @BeforeAll
    fun start() {
        server = Cubeserver()
    }

    @AfterAll
    fun stop() = server.close()

    /** A login that exists on the server. */
    private suspend fun signedUp(): String {
        val login = "kg" + UUID.randomUUID().toString().replace("-", "").take(10)
        ChatClient(server.config()).use { it.signUp(NewUser(login = login), PASSWORD) }
        return login
    }

    /** The guide's "connect" snippet: a logged-in, connected client and its user. */
    private suspend fun online(login: String, reconnect: ReconnectConfig? = null): Pair<ChatClient, User> {
        val config = server.config().copy(reconnect = reconnect) // ClientConfig(appId, authKey, authSecret, apiUrl, …) with cubeserver's chat host and CA
        val password = PASSWORD
        // [guide:connect]
        val client = ChatClient(config)
        val me = client.logIn(LoginId.Login(login), password)
        client.connectChat(ChatAuth.SessionToken) // or ChatAuth.Password(userId, password)
        check(client.connectionState() == ConnectionState.Connected)
        // [/guide]
        client.privacyListNames() // one round trip: the server has read the initial presence
        return client to me
    }

    /** Runs [body] with a 60 s bound. */
    private fun guide(body: suspend CoroutineScope.() -> Unit) = runBlocking { withTimeout(60_000) { body() } }

    @Test
    fun connectionStatesAndReconnection() = guide {
        val (client, _) = online(signedUp(), ReconnectConfig(
            enabled = true, initialDelayMs = 200u, maxDelayMs = 5000u, multiplier = 2.0, jitter = 0.1, maxAttempts = null))
        // [guide:states]
        client.connectionStates() // the state now, then every change
            .first { state -> println("chat is ${state.describe()}"); state == ConnectionState.Connected }
        // first { } ends the collection, and with it the subscription
        // [/guide]
        val connected = async(start = CoroutineStart.UNDISPATCHED) {
            client.connectionStates().first { it is ConnectionState.Reconnecting || it is ConnectionState.Disconnected }
            client.connectionStates().first { it == ConnectionState.Connected }
        }
        // [guide:reconnect]
        client.setNetworkAvailable(false) // e.g. from ConnectivityManager (see ChatLifecycle)
        client.setNetworkAvailable(true) // reconnects at once, no backoff wait
        client.reconnectNow() // or ask for it yourself
        // [/guide]
        connected.await()
        // [guide:disconnect]
        client.disconnectChat() // until connectChat or reconnectNow
        client.destroyChat() // for good: the connection and its reconnection end
        client.logOut()
        // [/guide]
        client.close()
    }

    @Test
    fun dialogsHistoryAndMessages() = guide {
        val (alice, _) = online(signedUp())
        val (bob, b) = online(signedUp())
        // [guide:receive]
        val inbox = launch(start = CoroutineStart.UNDISPATCHED) { // subscribed once launch returns
            bob.messages().collect { message ->
                println("${message.senderId} says ${message.describe()}")
                message.dialogId?.let { bob.sendRead(it, message.id, message.senderId) }
            }
        }
        // [/guide]
        val typingSeen = async(start = CoroutineStart.UNDISPATCHED) { bob.typing().first { it.composing } }
        // [guide:dialogs]
        val chat = alice.createDialog(NewDialog(kind = DialogType.PRIVATE, occupantsIds = listOf(b.id)))
        var group = alice.createDialog(NewDialog(
            kind = DialogType.GROUP, name = "Weekend", occupantsIds = listOf(b.id), extensions = mapOf("location" to "Sun bar")))
        group = alice.updateDialog(group.id, DialogUpdate(name = "Long weekend"))
        val changed = alice.listDialogs(ListParams(
            filters = listOf(Filter(field = "updated_at", op = FilterOp.GT, value = "1700000000")), limit = 50u))
        // [/guide]
        assertTrue(changed.items.map { it.id }.containsAll(listOf(chat.id, group.id)))
        // [guide:statuses]
        val read = async(start = CoroutineStart.UNDISPATCHED) { // Sent, then Delivered, then Read
            alice.statuses().first { it is MessageStatus.Read }
        }
        // [/guide]
        // [guide:send]
        val messageId = alice.sendMessage(OutgoingMessage(
            dialogId = chat.id, recipientId = b.id, body = "How are you today?", custom = mapOf("mood" to "sunny")))
        // returns once the server has acknowledged it; it is in alice's local store from the start
        // [/guide]
        assertEquals(messageId, (read.await() as MessageStatus.Read).messageId)
        inbox.cancel()
        // [guide:typing]
        alice.sendTyping(chat.id, b.id, true) // "stopped" follows by itself after 30 s idle
        val typing = typingSeen.await() // bob: bob.typing().first { it.composing }
        println("${typing.userId} is typing in ${typing.dialogId}")
        alice.sendTyping(chat.id, b.id, false)
        // [/guide]
        // [guide:history]
        val page = bob.history(chat.id, ListParams(limit = 50u, sortBy = "date_sent", sortDescending = true),
            true) // true: mark what it returns as read
        // [/guide]
        assertEquals(messageId, page.first().id)
        // [guide:silent]
        alice.sendMessage(OutgoingMessage(dialogId = group.id, body = "no push for this one", silent = true))
        // [/guide]
        alice.destroyChat()
        bob.destroyChat()
        alice.close()
        bob.close()
    }

    @Test
    fun editDeleteReactUnreadSearch() = guide {
        val (alice, _) = online(signedUp())
        val (bob, b) = online(signedUp())
        val chat = alice.createDialog(NewDialog(kind = DialogType.PRIVATE, occupantsIds = listOf(b.id)))
        // [guide:changes]
        val edited = async(start = CoroutineStart.UNDISPATCHED) {
            bob.messageChanges().first { it is MessageChange.Edited } // also Deleted, Reactions
        }
        // [/guide]
        val messageId = alice.sendMessage(OutgoingMessage(dialogId = chat.id, recipientId = b.id, body = "see you at 5"))
        // [guide:edit]
        alice.sendEdit(chat.id, b.id, messageId, "see you at 6", true) // true: it is the newest message
        // [/guide]
        assertEquals(messageId, (edited.await() as MessageChange.Edited).messageId)
        // [guide:reactions]
        bob.addReaction(messageId, "🔥")
        val reactions = alice.reactions(messageId) // {"🔥": [bob's id]}
        // [/guide]
        assertEquals(mapOf("🔥" to listOf(b.id)), reactions)
        // [guide:unread]
        val counts = bob.unreadCounts(listOf(chat.id))
        println("${counts.total} ${counts.perDialog[chat.id]}")
        bob.markAllRead(chat.id)
        // [/guide]
        assertTrue((counts.perDialog[chat.id] ?: 0uL) >= 1uL)
        assertEquals(0uL, bob.unreadCounts(listOf(chat.id)).perDialog[chat.id])
        // [guide:search]
        val found = bob.search(SearchQuery(text = "see you", dialogIds = listOf(chat.id)))
        // [/guide]
        assertEquals(listOf(messageId), found.messages.map { it.id })
        val otherId = alice.sendMessage(OutgoingMessage(dialogId = chat.id, recipientId = b.id, body = "ok"))
        // [guide:delete]
        alice.sendDelete(chat.id, b.id, messageId) // for everyone, over chat
        val result = bob.deleteMessages(listOf(otherId), false) // only from bob's history, over REST
        // [/guide]
        assertEquals(listOf(otherId), result.deleted)
        alice.destroyChat()
        bob.destroyChat()
        alice.close()
        bob.close()
    }

    @Test
    fun attachmentsSystemMessagesPresence() = guide {
        val (alice, _) = online(signedUp())
        val (bob, b) = online(signedUp())
        val chat = alice.createDialog(NewDialog(kind = DialogType.PRIVATE, occupantsIds = listOf(b.id)))
        val dir = Files.createTempDirectory("cubechat-kt-guide")
        val photo = dir.resolve("photo.jpg").also { Files.write(it, ByteArray(1002).also { b -> b[0] = -1; b[1] = -40 }) }.toString()
        val received = dir.resolve("received.jpg").toString()
        // [guide:attachments]
        val progress = object : TransferListener {
            override fun onProgress(done: ULong, total: ULong) = println("$done/$total bytes")
        }
        val blob = alice.uploadFile(photo, UploadOptions(contentType = "image/jpeg"), progress, null)
        alice.sendMessage(OutgoingMessage(dialogId = chat.id, recipientId = b.id, attachments = listOf(attachmentFromBlob(blob))))
        // the receiver: download by uid (or hand blobUrl(uid, true) to an image loader)
        bob.downloadFile(blob.uid, received, null, null)
        // [/guide]
        assertArrayEquals(Files.readAllBytes(java.nio.file.Path.of(photo)), Files.readAllBytes(java.nio.file.Path.of(received)))
        // [guide:system]
        val system = async(start = CoroutineStart.UNDISPATCHED) { bob.systemMessages().first() }
        alice.sendChatSystemMessage(b.id, "dialog/UPDATE", mapOf("photo" to "new.png"))
        println(system.await().describe())
        // [/guide]
        // [guide:active]
        alice.markInactive() // the app went to the background: offline pushes resume
        alice.markActive() // back in the foreground (ChatLifecycle does both from the process lifecycle)
        // [/guide]
        // [guide:privacy]
        alice.createPrivacyList(PrivacyList(name = "blocked", items = listOf(PrivacyListItem(userId = b.id))))
        alice.setDefaultPrivacyList("blocked") // a list applies once it is the default
        alice.setDefaultPrivacyList(null)
        alice.deletePrivacyList("blocked")
        // [/guide]
        // [guide:last-activity]
        val seconds = alice.lastActivity(b.id) // 0 while bob is online
        alice.subscribeLastActivity(b.id)
        // [/guide]
        assertEquals(0uL, seconds)
        // [guide:last-activity-events]
        val seen = async(start = CoroutineStart.UNDISPATCHED) {
            alice.presence().first { it is PresenceEvent.LastActivity && it.userId == b.id } as PresenceEvent.LastActivity
        }
        bob.disconnectChat()
        println("bob was last seen ${seen.await().seconds} s ago")
        // [/guide]
        alice.destroyChat()
        bob.destroyChat()
        alice.close()
        bob.close()
    }

    @Test
    fun offlineStoreAndQueue() = guide {
        val aliceLogin = signedUp()
        val (bob, b) = online(signedUp())
        val storeDir = Files.createTempDirectory("cubechat-kt-guide-store").toString()
        val base = server.config() // ClientConfig(appId, authKey, authSecret, apiUrl, …)
        // [guide:store]
        val client = ChatClient(base.copy(storeDir = storeDir)) // one SQLite file per user
        client.logIn(LoginId.Login(aliceLogin), PASSWORD) // opens the user's store
        client.syncLocal() // dialogs and messages changed since the last sync
        val dialogs = client.dialogsPage(20u, null) // from the store, no network
        // [/guide]
        assertTrue(dialogs.isEmpty())
        val chat = client.createDialog(NewDialog(kind = DialogType.PRIVATE, occupantsIds = listOf(b.id)))
        client.syncLocal()
        // [guide:queue]
        val echo = client.enqueueMessage(OutgoingMessage(dialogId = chat.id, recipientId = b.id,
            body = "sent when we are back online"), emptyList())
        check(echo.state == MessageState.Queued) // saved; survives a restart of the app
        println("${client.pendingMessages().size} waiting")
        // [/guide]
        // [guide:live-timeline]
        val sent = async(start = CoroutineStart.UNDISPATCHED) {
            client.timeline(chat.id, 50u).first { messages -> // the whole list first, then after each change
                println(messages.map { it.describe() })
                messages.lastOrNull()?.state.let { it == MessageState.Sent || it == MessageState.Delivered }
            }
        }
        client.connectChat(ChatAuth.SessionToken) // the queue drains once connected
        sent.await()
        // [/guide]
        client.destroyChat()
        bob.destroyChat()
        client.close()
        bob.close()
    }
}
