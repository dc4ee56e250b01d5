// JUnit 5 tests of users, the address book and push through the Kotlin bindings against a
// real cubeserver: lookups and search, the own profile, a watched user in the store, contacts
// with typed rejections, push subscriptions and events, a message to an offline user in the
// push outbox parsed without a client (sender's name from the receiver's store); typed
// bad-input errors before any request.
package io.cubechat.tests

import io.cubechat.*
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.*
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import kotlin.test.assertFailsWith
import java.net.URI
import java.nio.file.Files
import java.util.UUID
import java.util.concurrent.CopyOnWriteArrayList

/** Records every copy of a watched user. */
class UserRecorder : UserListener {
    val seen = CopyOnWriteArrayList<User?>()
    override fun onUser(user: User?) {
        seen.add(user)
    }

    /** Waits (bounded: 500 × 20 ms) until [n] copies arrived. */
    suspend fun awaitCount(n: Int) {
        repeat(500) {
            if (seen.size >= n) return
            delay(20)
        }
        fail<Unit>("only ${seen.size} of $n copies arrived")
    }
}

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class UsersTest {
    private lateinit var server: Cubeserver

    @BeforeAll
    fun start() {
        server = Cubeserver()
    }

    @AfterAll
    fun stop() = server.close()

    private fun unique(prefix: String) = prefix + UUID.randomUUID().toString().replace("-", "").take(10)

    private suspend fun user(prefix: String, storeDir: String? = null): Pair<ChatClient, User> {
        val c = ChatClient(server.config().copy(storeDir = storeDir))
        val login = unique(prefix)
        c.signUp(NewUser(login = login), PASSWORD)
        return c to c.logIn(LoginId.Login(login), PASSWORD)
    }

    /** cubeserver's push outbox of one user, as raw JSON text. */
    private fun outbox(userId: ULong): String =
        URI("${server.apiUrl}/_admin/push_outbox?user_id=$userId").toURL().readText()

    /** The top-level objects of the first JSON array in [json] after [from], as text. */
    private fun objects(json: String, from: Int): List<String> {
        val out = mutableListOf<String>()
        var depth = 0
        var inString = false
        var escaped = false
        var start = -1
        for (i in from until json.length) {
            val c = json[i]
            if (inString) {
                if (escaped) escaped = false else if (c == '\\') escaped = true else if (c == '"') inString = false
                continue
            }
            when (c) {
                '"' -> inString = true
                '{' -> { if (depth == 0) start = i; depth++ }
                '}' -> { depth--; if (depth == 0) out.add(json.substring(start, i + 1)) }
                ']' -> if (depth == 0) return out
            }
        }
        return out
    }

    /** The `payload` objects of the outbox items of [kind], cut out of the JSON text. */
    private fun payloads(json: String, kind: String): List<String> =
        objects(json, json.indexOf('[') + 1).filter { it.contains("\"kind\":\"$kind\"") }.map { item ->
            val key = "\"payload\":"
            objects(item.substring(item.indexOf(key) + key.length), 0).first()
        }

    @Test
    fun lookupsSearchAndAWatchedUser(): Unit = runBlocking {
        val (alice, a) = user("ka")
        val (bob, b) = user("kb")
        val tag = unique("t")
        val me = alice.users().updateProfile(ProfileUpdate(fullName = "Ann $tag", email = "$tag@example.com", tags = listOf(tag)))
        assertEquals("Ann $tag", me.fullName)

        val users = bob.users()
        val rec = UserRecorder()
        val handle = users.watch(a.id, rec)
        rec.awaitCount(1)
        assertNull(rec.seen[0])
        val ids = (1..150).map { (1_000_000 + it).toULong() } + listOf(a.id, b.id)
        assertEquals(listOf(a.id, b.id), users.getByIds(ids).map { it.id })
        rec.awaitCount(2)
        assertEquals("Ann $tag", rec.seen[1]?.fullName)
        assertEquals(a.id, users.getByLogin(a.login!!)?.id)
        assertEquals(a.id, users.getByEmail("$tag@example.com")?.id)
        assertEquals(listOf(a.id), users.searchByFullName(tag, 1uL, 10uL).users.map { it.id })
        assertEquals(listOf(a.id), users.searchByTags(listOf(tag), 1uL, 10uL).users.map { it.id })
        assertEquals("Ann $tag", users.cached(a.id)?.fullName)
        handle.cancel()

        assertFailsWith<ChatException.InvalidInput> { users.getByIds(emptyList()) }
        assertFailsWith<ChatException.InvalidInput> { users.updateProfile(ProfileUpdate()) }
    }

    @Test
    fun contactsWithTypedRejections(): Unit = runBlocking {
        val phone = "+1555" + (1_000_000..9_999_999).random()
        val (friend, f) = user("ke")
        friend.users().updateProfile(ProfileUpdate(phone = phone, fullName = "Eve"))
        val (me, _) = user("kf")
        val book = me.contacts()
        assertFailsWith<ChatException.InvalidInput> {
            book.upload(listOf(Contact(name = "X", phone = "call me")), null, UploadMode.MERGE)
        }
        val r = book.upload(listOf(Contact(name = "Eve", phone = phone), Contact(name = "Short", phone = "12")), "kt-1", UploadMode.MERGE)
        assertEquals(1uL, r.created)
        assertEquals(listOf(1uL), r.rejected.map { it.index })
        assertEquals("12", r.rejected[0].contact?.phone)
        assertEquals(listOf("Eve"), book.get("kt-1").map { it.name })
        val reg = book.registeredUsers("kt-1", false)
        assertEquals(listOf(f.id), reg.map { it.user.id })
        assertEquals("Eve", reg[0].addressBookName)
    }

    @Test
    fun pushToAnOfflineUserAndTheClientLessParser(): Unit = runBlocking {
        val dir = Files.createTempDirectory("cubechat-kt-push").toString()
        val (alice, a) = user("kg")
        alice.users().updateProfile(ProfileUpdate(fullName = "Alice Kt"))
        val (bob, b) = user("kh", dir)
        val push = bob.push()
        fun sub(channel: String, udid: String) = NewSubscription(
            channel = channel, environment = PushEnvironment.DEVELOPMENT, token = "$udid-token", udid = udid)
        assertFailsWith<ChatException.InvalidInput> { push.subscribe(sub("pager", "d1")) }
        val apns = push.subscribe(sub("apns", "d1"))
        val fcm = push.subscribe(sub("fcm", "d2"))
        assertEquals("gcm", fcm[0].channel)
        assertEquals(setOf(apns[0].id, fcm[0].id), push.subscriptions().map { it.id }.toSet())
        bob.users().get(a.id)

        val dialog = alice.createDialog(NewDialog(kind = DialogType.PRIVATE, occupantsIds = listOf(b.id)))
        val m = alice.createMessage(NewMessage(dialogId = dialog.id, body = "tea?", sendToChat = true))
        val found = payloads(outbox(b.id), "message")
        assertEquals(2, found.size, found.toString())
        val lookup = PushSenderLookup(dir, APP_ID, b.id)
        for (payload in found) {
            val p = parseChatPush(payload)
            assertEquals(dialog.id, p.dialogId)
            assertEquals(m.id, p.messageId)
            assertEquals(a.id, p.senderId)
            assertEquals("tea?", p.text)
            assertEquals("Alice Kt", lookup.senderName(p.senderId))
        }
        assertFailsWith<ChatException.NotChatPush> { parseChatPush("{\"aps\":{\"alert\":\"x\"}}") }

        val sent = alice.push().sendEvent(PushEvent(userIds = listOf(b.id), message = "ping", environment = PushEnvironment.DEVELOPMENT))
        assertEquals(1, sent.size)
        assertEquals(2, payloads(outbox(b.id), "event").size)
        assertFailsWith<ChatException.InvalidInput> {
            alice.push().sendEvent(PushEvent(userIds = emptyList(), message = "x", environment = PushEnvironment.PRODUCTION))
        }
        push.unsubscribe(fcm[0].id)
        assertEquals(listOf(apns[0].id), push.subscriptions().map { it.id })
    }
}
