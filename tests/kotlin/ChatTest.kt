// JUnit 5 tests of the chat REST API through the Kotlin bindings against a real cubeserver:
// a group's life (create, rename, add an occupant), 250 messages paged by date_sent in both
// directions, custom parameters, edits, reactions, unread counts, mark all read, search,
// delete for everyone, and the typed errors an app handles (Forbidden, NotFound, InvalidInput).
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

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ChatTest {
    private lateinit var server: Cubeserver

    /** A logged-in client and its user. */
    private data class Member(val client: ChatClient, val user: User) {
        val id: ULong get() = user.id
    }

    @BeforeAll
    fun start() {
        server = Cubeserver()
        initPlatform(LogConfig(level = LogLevel.INFO), null)
    }

    @AfterAll
    fun stop() = server.close()

    private fun client(apiUrl: String = server.apiUrl) =
        ChatClient(ClientConfig(appId = APP_ID, authKey = AUTH_KEY, authSecret = AUTH_SECRET, apiUrl = apiUrl))

    private fun unique(prefix: String) = prefix + UUID.randomUUID().toString().replace("-", "").take(10)

    private suspend fun member(name: String): Member {
        val c = client()
        val login = unique("ktchat")
        c.signUp(NewUser(login = login, fullName = name), PASSWORD)
        return Member(c, c.logIn(LoginId.Login(login), PASSWORD))
    }

    private fun lt(v: Long) = Filter(field = "date_sent", op = FilterOp.LT, value = v.toString())
    private fun gt(v: Long) = Filter(field = "date_sent", op = FilterOp.GT, value = v.toString())

    private suspend fun group(owner: Member, name: String, vararg others: Member): Dialog =
        owner.client.createDialog(NewDialog(kind = DialogType.GROUP, name = name, occupantsIds = others.map { it.id }))

    /** One message from [from], with a distinct date_sent and its index as a custom parameter. */
    private suspend fun post(from: Member, dialogId: String, body: String, dateSent: Long, seq: Int): ChatMessage =
        from.client.createMessage(NewMessage(dialogId = dialogId, body = body, dateSent = dateSent, custom = mapOf("seq" to seq.toString())))

    @Test
    fun groupIsCreatedRenamedAndGrows() = runBlocking {
        val alice = member("Alice")
        val bob = member("Bob")
        val carol = member("Carol")

        val created = group(alice, "Team", bob)
        assertEquals(DialogType.GROUP, created.kind)
        assertEquals(alice.id, created.ownerId)
        assertEquals("Team", created.name)
        assertEquals(setOf(alice.id, bob.id), created.occupantsIds.toSet())
        assertEquals(2, created.occupantsIds.size)
        assertEquals(emptyList<ULong>(), created.adminsIds)
        // cubeserver's chat domain defaults to the API host.
        assertEquals("${APP_ID}_${created.id}@muc.${java.net.URI(server.apiUrl).host}", created.roomJid)
        assertNull(created.lastMessage)
        assertEquals(0uL, created.unreadCount)
        assertTrue(Regex("^[0-9a-f]{24}$").matches(created.id), created.id)

        // An occupant (not the owner) renames the group and adds a third user.
        val renamed = bob.client.updateDialog(created.id, DialogUpdate(name = "Team 2", addOccupants = listOf(carol.id)))
        assertEquals("Team 2", renamed.name)
        assertEquals(setOf(alice.id, bob.id, carol.id), renamed.occupantsIds.toSet())
        assertEquals(alice.id, renamed.ownerId)

        // Every occupant's list shows the same dialog; filtering by _id finds exactly it.
        for (m in listOf(alice, bob, carol)) {
            val page = m.client.listDialogs(ListParams(filters = listOf(Filter("_id", FilterOp.EQ, created.id))))
            assertEquals(1uL, page.total)
            val d = page.items.single()
            assertEquals("Team 2", d.name)
            assertEquals(renamed.occupantsIds.toSet(), d.occupantsIds.toSet())
            assertEquals(created.roomJid, d.roomJid)
        }

        // Description, photo and extensions round trip.
        val described = alice.client.updateDialog(created.id, DialogUpdate(description = "Our team", photo = "photo-uid", extensions = mapOf("location" to "Sun bar")))
        assertEquals("Our team", described.description)
        assertEquals("photo-uid", described.photo)
        assertEquals(mapOf("location" to "Sun bar"), described.extensions)
        val byExt = carol.client.listDialogs(ListParams(filters = listOf(Filter("extensions[location]", FilterOp.EQ, "Sun bar"))))
        assertEquals(listOf(created.id), byExt.items.map { it.id })

        // Only the owner removes others; anyone removes themselves.
        assertFailsWith<ChatException.Forbidden> { runBlocking { bob.client.updateDialog(created.id, DialogUpdate(removeOccupants = listOf(carol.id))) } }
        val left = carol.client.updateDialog(created.id, DialogUpdate(removeOccupants = listOf(carol.id)))
        assertEquals(setOf(alice.id, bob.id), left.occupantsIds.toSet())
        assertEquals(0uL, carol.client.listDialogs(ListParams(filters = listOf(Filter("_id", FilterOp.EQ, created.id)))).total)

        // Delete for everyone (owner): gone from every list.
        assertEquals(DeleteResult(listOf(created.id), listOf(), listOf()), alice.client.deleteDialogs(listOf(created.id), true))
        assertEquals(0uL, bob.client.listDialogs(ListParams(filters = listOf(Filter("_id", FilterOp.EQ, created.id)))).total)
    }

    @Test
    fun historyOf250MessagesPagesByDateSentInBothDirections() = runBlocking {
        val alice = member("Alice")
        val bob = member("Bob")
        val dialog = group(alice, "History", bob)
        val base = 1_700_000_000L
        val sent = (0 until 250).map { i -> post(alice, dialog.id, "message number $i", base + i, i) }
        assertEquals(250, sent.map { it.id }.toSet().size)
        sent.forEachIndexed { i, m ->
            assertEquals(dialog.id, m.dialogId)
            assertEquals(base + i, m.dateSent)
            assertEquals(alice.id, m.senderId)
            assertEquals(0uL, m.recipientId)
        }

        // The dialog's last message is the newest one.
        val d = bob.client.listDialogs(ListParams(filters = listOf(Filter("_id", FilterOp.EQ, dialog.id)))).items.single()
        assertEquals("message number 249", d.lastMessage)
        assertEquals(sent.last().id, d.lastMessageId)
        assertEquals(alice.id, d.lastMessageUserId)
        assertEquals(base + 249, d.lastMessageDateSent)
        assertEquals(250uL, d.unreadCount)
        assertNull(d.lastMessageStatus, "bob did not send the last message")

        // Backwards: newest first, 100 + 100 + 50, then nothing.
        val backwards = mutableListOf<List<ChatMessage>>()
        var before: Long? = null
        while (true) {
            val filters = before?.let { listOf(lt(it)) } ?: listOf()
            val page = bob.client.history(dialog.id, ListParams(filters = filters, limit = 100u, sortBy = "date_sent", sortDescending = true), false)
            if (page.isEmpty()) break
            backwards.add(page)
            before = page.last().dateSent
            assertTrue(backwards.size <= 3, "more pages than messages")
        }
        assertEquals(listOf(100, 100, 50), backwards.map { it.size })
        val newestFirst = backwards.flatten()
        assertEquals(sent.reversed().map { it.id }, newestFirst.map { it.id })
        assertEquals((249 downTo 0).map { "message number $it" }, newestFirst.map { it.body })
        assertEquals((249 downTo 0).map { it.toString() }, newestFirst.map { it.custom["seq"] })

        // Forwards: oldest first with gt, default (ascending) order.
        val forwards = mutableListOf<ChatMessage>()
        var after = base - 1
        repeat(3) {
            val page = bob.client.history(dialog.id, ListParams(filters = listOf(gt(after)), limit = 100u), false)
            forwards.addAll(page)
            after = page.last().dateSent
        }
        assertEquals(sent.map { it.id }, forwards.map { it.id })
        assertEquals(listOf<ChatMessage>(), bob.client.history(dialog.id, ListParams(filters = listOf(gt(after))), false))

        // A window: 100 < i < 111 is exactly ten messages, ascending.
        val window = bob.client.history(dialog.id, ListParams(filters = listOf(gt(base + 100), lt(base + 111))), false)
        assertEquals((101..110).map { base + it }, window.map { it.dateSent })
        // skip pages too.
        val skipped = bob.client.history(dialog.id, ListParams(limit = 5u, skip = 245u), false)
        assertEquals(sent.takeLast(5).map { it.id }, skipped.map { it.id })

        // Nothing was marked read while paging with markAsRead = false.
        assertEquals(UnreadCounts(250uL, mapOf(dialog.id to 250uL)), bob.client.unreadCounts(listOf(dialog.id)))
        assertTrue(newestFirst.none { it.read })
        assertEquals(listOf(alice.id), newestFirst.first().readIds)

        // Listing with markAsRead marks exactly the returned page.
        val oldest10 = bob.client.history(dialog.id, ListParams(limit = 10u), true)
        assertEquals(sent.take(10).map { it.id }, oldest10.map { it.id })
        assertEquals(240uL, bob.client.unreadCounts(listOf(dialog.id)).perDialog[dialog.id])
        val again = bob.client.history(dialog.id, ListParams(limit = 11u), false)
        assertEquals(List(10) { true } + false, again.map { it.read })
        assertEquals(listOf(alice.id, bob.id), again.first().readIds)

        // Marking two messages read by id.
        bob.client.markMessages(dialog.id, listOf(sent[200].id, sent[201].id), read = true, delivered = false)
        assertEquals(238uL, bob.client.unreadCounts(listOf(dialog.id)).perDialog[dialog.id])

        // Mark all read.
        bob.client.markAllRead(dialog.id)
        assertEquals(UnreadCounts(0uL, mapOf(dialog.id to 0uL)), bob.client.unreadCounts(listOf(dialog.id)))
        val status = alice.client.listDialogs(ListParams(filters = listOf(Filter("_id", FilterOp.EQ, dialog.id)))).items.single()
        assertEquals("read", status.lastMessageStatus)
        assertEquals(0uL, status.unreadCount, "the sender has her own messages read")
    }

    @Test
    fun customParametersEditsAndReactions() = runBlocking {
        val alice = member("Alice")
        val bob = member("Bob")
        val carol = member("Carol")
        val dialog = group(alice, "Reactions", bob, carol)

        val custom = mapOf("kind" to "poll", "emoji" to "🦀 ok", "nested" to "{\"a\":[1,2]}", "empty" to "")
        val m = alice.client.createMessage(NewMessage(dialogId = dialog.id, body = "What's for lunch?", custom = custom, markable = true))
        assertEquals(custom, m.custom)
        val seen = bob.client.history(dialog.id, ListParams(), false).single()
        assertEquals(m.id, seen.id)
        assertEquals(custom, seen.custom)
        assertEquals("What's for lunch?", seen.body)
        assertNull(seen.reactions)

        // Edit: the sender may, others may not.
        alice.client.editMessage(dialog.id, m.id, "What's for dinner?")
        assertEquals("What's for dinner?", carol.client.history(dialog.id, ListParams(), false).single().body)
        assertFailsWith<ChatException.Forbidden> { runBlocking { bob.client.editMessage(dialog.id, m.id, "hijacked") } }
        assertEquals("What's for dinner?", bob.client.history(dialog.id, ListParams(), false).single().body)

        // React, replace, remove. One reaction per user.
        bob.client.addReaction(m.id, "👍")
        carol.client.addReaction(m.id, "🔥")
        alice.client.addReaction(m.id, "❤️")
        assertEquals(mapOf("👍" to listOf(bob.id), "🔥" to listOf(carol.id), "❤️" to listOf(alice.id)), bob.client.reactions(m.id))
        carol.client.replaceReaction(m.id, "👍", "🔥")
        alice.client.removeReaction(m.id, "❤️")
        val who = alice.client.reactions(m.id)
        assertEquals(setOf("👍"), who.keys)
        assertEquals(setOf(bob.id, carol.id), who.getValue("👍").toSet())
        assertEquals(2, who.getValue("👍").size)
        // Adding a second reaction replaces the first.
        bob.client.addReaction(m.id, "🎉")
        assertEquals(mapOf("👍" to listOf(carol.id), "🎉" to listOf(bob.id)), carol.client.reactions(m.id))

        // The history shows the caller's own reactions and the totals.
        val forBob = bob.client.history(dialog.id, ListParams(), false).single().reactions
        assertEquals(Reactions(own = listOf("🎉"), totals = mapOf("👍" to 1uL, "🎉" to 1uL)), forBob)
        val forAlice = alice.client.history(dialog.id, ListParams(), false).single().reactions
        assertEquals(Reactions(own = listOf(), totals = mapOf("👍" to 1uL, "🎉" to 1uL)), forAlice)
        bob.client.removeReaction(m.id, "🎉")
        carol.client.removeReaction(m.id, "👍")
        assertEquals(mapOf<String, List<ULong>>(), alice.client.reactions(m.id))
        assertNull(alice.client.history(dialog.id, ListParams(), false).single().reactions)

        // Attachments through cloud storage (upload, send in a message, download by uid with
        // progress events) are walked in StorageTest.fiveMegabyteAttachmentRoundTrip.
    }

    @Test
    fun unreadCountsAcrossDialogsAndMarkAllRead() = runBlocking {
        val alice = member("Alice")
        val bob = member("Bob")
        val one = group(alice, "One", bob)
        val two = group(alice, "Two", bob)
        val private = bob.client.createDialog(NewDialog(kind = DialogType.PRIVATE, occupantsIds = listOf(alice.id)))
        assertEquals(DialogType.PRIVATE, private.kind)
        assertNull(private.roomJid)
        assertNull(private.name)
        for (i in 0 until 3) post(alice, one.id, "one $i", 1_700_000_000L + i, i)
        for (i in 0 until 5) post(alice, two.id, "two $i", 1_700_000_000L + i, i)
        val p = post(alice, private.id, "private hello", 1_700_000_000L, 0)
        assertEquals(bob.id, p.recipientId, "a private message is addressed to the other occupant")
        post(bob, private.id, "private reply", 1_700_000_001L, 1)

        assertEquals(UnreadCounts(9uL, mapOf()), bob.client.unreadCounts(listOf()))
        assertEquals(UnreadCounts(8uL, mapOf(one.id to 3uL, two.id to 5uL)), bob.client.unreadCounts(listOf(one.id, two.id)))
        assertEquals(UnreadCounts(1uL, mapOf()), alice.client.unreadCounts(listOf()))

        bob.client.markAllRead(two.id)
        assertEquals(UnreadCounts(3uL, mapOf(one.id to 3uL, two.id to 0uL)), bob.client.unreadCounts(listOf(one.id, two.id)))
        assertEquals(UnreadCounts(4uL, mapOf()), bob.client.unreadCounts(listOf()))
        val listed = bob.client.listDialogs(ListParams()).items.associate { it.id to it.unreadCount }
        assertEquals(mapOf(one.id to 3uL, two.id to 0uL, private.id to 1uL), listed)
    }

    @Test
    fun searchFindsMessagesDialogsAndRespectsFilters() = runBlocking {
        val alice = member("Alice")
        val bob = member("Bob")
        val token = unique("zz")
        val a = group(alice, "Search $token A", bob)
        val b = group(alice, "Search B", bob)
        val now = System.currentTimeMillis() / 1000
        val m1 = post(alice, a.id, "first $token here", now - 10, 1)
        val m2 = post(alice, b.id, "second $token here", now - 5, 2)
        post(alice, b.id, "unrelated text", now - 4, 3)

        val all = bob.client.search(SearchQuery(text = token))
        assertEquals(listOf(m2.id, m1.id), all.messages.map { it.id }, "newest first")
        assertEquals(listOf("second $token here", "first $token here"), all.messages.map { it.body })
        assertEquals(listOf(a.id), all.dialogs.map { it.id })
        assertEquals(listOf<User>(), all.users)

        val onlyB = bob.client.search(SearchQuery(text = token, dialogIds = listOf(b.id)))
        assertEquals(listOf(m2.id), onlyB.messages.map { it.id })
        assertEquals(listOf<Dialog>(), onlyB.dialogs)
        val window = bob.client.search(SearchQuery(text = token, startDate = now - 12, endDate = now - 8))
        assertEquals(listOf(m1.id), window.messages.map { it.id })
        assertEquals(listOf(m2.id), bob.client.search(SearchQuery(text = token, limit = 1u)).messages.map { it.id })

        // A user who is in neither dialog finds nothing; users are found by name.
        val stranger = member("Stranger $token")
        val theirs = stranger.client.search(SearchQuery(text = token))
        assertEquals(listOf<ChatMessage>(), theirs.messages)
        assertEquals(listOf<Dialog>(), theirs.dialogs)
        assertEquals(listOf(stranger.id), theirs.users.map { it.id })
    }

    @Test
    fun deleteForMeAndForEveryone() = runBlocking {
        val alice = member("Alice")
        val bob = member("Bob")
        val carol = member("Carol")
        val dialog = group(alice, "Deletes", bob, carol)
        val msgs = (0 until 4).map { post(alice, dialog.id, "to delete $it", 1_700_000_000L + it, it) }
        val bobs = post(bob, dialog.id, "bob's own", 1_700_000_010L, 10)

        // Not the sender, not an admin: no permission to delete for everyone.
        assertEquals(DeleteResult(listOf(), listOf(), listOf(msgs[3].id)), carol.client.deleteMessages(listOf(msgs[3].id), true))
        // The owner deletes anyone's message for everyone; an unknown id is reported.
        val ghost = "0123456789abcdef01234567"
        val r = alice.client.deleteMessages(listOf(msgs[3].id, bobs.id, ghost), true)
        assertEquals(DeleteResult(listOf(msgs[3].id, bobs.id), listOf(ghost), listOf()), r)
        for (m in listOf(alice, bob, carol)) {
            assertEquals(msgs.take(3).map { it.id }, m.client.history(dialog.id, ListParams(), false).map { it.id })
        }
        // The dialog's last message falls back to the newest remaining one.
        val d = carol.client.listDialogs(ListParams(filters = listOf(Filter("_id", FilterOp.EQ, dialog.id)))).items.single()
        assertEquals("to delete 2", d.lastMessage)
        assertEquals(msgs[2].id, d.lastMessageId)

        // Delete for me: hidden for carol only.
        assertEquals(DeleteResult(listOf(msgs[0].id), listOf(), listOf()), carol.client.deleteMessages(listOf(msgs[0].id), false))
        assertEquals(msgs.drop(1).take(2).map { it.id }, carol.client.history(dialog.id, ListParams(), false).map { it.id })
        assertEquals(msgs.take(3).map { it.id }, bob.client.history(dialog.id, ListParams(), false).map { it.id })

        // Clear history for me.
        bob.client.clearHistory(dialog.id, false)
        assertEquals(listOf<ChatMessage>(), bob.client.history(dialog.id, ListParams(), false))
        assertEquals(3, alice.client.history(dialog.id, ListParams(), false).size)
    }

    @Test
    fun typedErrors() = runBlocking {
        val alice = member("Alice")
        val bob = member("Bob")
        val stranger = member("Mallory")
        val dialog = group(alice, "Private club", bob)
        val m = post(alice, dialog.id, "members only", 1_700_000_000L, 0)
        val missing = "5f0c0c0c0c0c0c0c0c0c0c0c"

        // A user outside the dialog: Forbidden on everything about it.
        assertFailsWith<ChatException.Forbidden> { runBlocking { stranger.client.history(dialog.id, ListParams(), false) } }
        assertFailsWith<ChatException.Forbidden> { runBlocking { stranger.client.updateDialog(dialog.id, DialogUpdate(name = "mine")) } }
        assertFailsWith<ChatException.Forbidden> { runBlocking { stranger.client.createMessage(NewMessage(dialogId = dialog.id, body = "hi")) } }
        assertFailsWith<ChatException.Forbidden> { runBlocking { stranger.client.reactions(m.id) } }
        assertFailsWith<ChatException.Forbidden> { runBlocking { stranger.client.addReaction(m.id, "👎") } }
        assertFailsWith<ChatException.Forbidden> { runBlocking { stranger.client.markAllRead(dialog.id) } }
        assertEquals(DeleteResult(listOf(), listOf(), listOf(dialog.id)), stranger.client.deleteDialogs(listOf(dialog.id), true))
        assertEquals(DeleteResult(listOf(), listOf(), listOf(m.id)), stranger.client.deleteMessages(listOf(m.id), true))
        // ...and does not see it.
        assertEquals(0uL, stranger.client.listDialogs(ListParams()).total)
        assertEquals(mapOf<String, ULong>(), stranger.client.unreadCounts(listOf(dialog.id)).perDialog)
        // Admins: the owner only.
        assertFailsWith<ChatException.Forbidden> { runBlocking { bob.client.addAdmins(dialog.id, listOf(bob.id)) } }
        assertEquals(listOf(bob.id), alice.client.addAdmins(dialog.id, listOf(bob.id)).adminsIds)

        // Well-formed ids that do not exist: NotFound.
        assertFailsWith<ChatException.NotFound> { runBlocking { alice.client.history(missing, ListParams(), false) } }
        assertFailsWith<ChatException.NotFound> { runBlocking { alice.client.updateDialog(missing, DialogUpdate(name = "x")) } }
        assertFailsWith<ChatException.NotFound> { runBlocking { alice.client.reactions(missing) } }
        assertFailsWith<ChatException.NotFound> { runBlocking { alice.client.editMessage(dialog.id, missing, "x") } }
        assertEquals(DeleteResult(listOf(), listOf(missing), listOf()), alice.client.deleteDialogs(listOf(missing), false))

        // Server-side validation: unknown occupants are a 422.
        val unknown = assertFailsWith<ChatException.Server> { runBlocking { group(alice, "Ghosts", Member(alice.client, alice.user.copy(id = 999_999uL))) } }
        assertEquals(422.toUShort(), unknown.code)

        // Bad input never leaves the device: this client points at a port nobody serves and
        // is not logged in, so anything that were sent would fail as Network/NotLoggedIn.
        val offline = client(apiUrl = "http://127.0.0.1:1")
        val badCalls: List<suspend () -> Unit> = listOf(
            { offline.createDialog(NewDialog(kind = DialogType.PRIVATE, occupantsIds = listOf(1uL, 2uL))) },
            { offline.createDialog(NewDialog(kind = DialogType.GROUP, name = "  ", occupantsIds = listOf(1uL))) },
            { offline.updateDialog("not-an-id", DialogUpdate(name = "x")) },
            { offline.updateDialog(missing, DialogUpdate()) },
            { offline.history(missing, ListParams(limit = 0u), false) },
            { offline.history(missing, ListParams(limit = 101u), false) },
            { offline.history(missing, ListParams(filters = listOf(Filter("password", FilterOp.EQ, "x"))), false) },
            { offline.history(missing, ListParams(sortBy = "sender_id"), false) },
            { offline.createMessage(NewMessage(dialogId = missing, body = "   ")) },
            { offline.createMessage(NewMessage(dialogId = missing, body = "x".repeat(64 * 1024 + 1))) },
            { offline.createMessage(NewMessage(dialogId = missing, body = "hi", custom = mapOf("chat_dialog_id" to "x"))) },
            { offline.createMessage(NewMessage(dialogId = "123", body = "hi")) },
            { offline.deleteMessages(listOf(), true) },
            { offline.deleteMessages(List(101) { missing }, true) },
            { offline.addReaction(missing, " ") },
            { offline.addReaction("zz", "👍") },
            { offline.search(SearchQuery(text = "abcd")) },
            { offline.search(SearchQuery(text = "abcde", startDate = 0)) },
            { offline.search(SearchQuery(text = "abcde", startDate = 0, endDate = 93L * 86_400)) },
            { offline.search(SearchQuery(text = "abcde", dialogIds = List(11) { missing })) },
            { offline.search(SearchQuery(text = "abcde", limit = 0u)) },
            { offline.unreadCounts(listOf("nope")) },
            { offline.addAdmins(missing, listOf(1uL, 2uL, 3uL, 4uL, 5uL, 6uL)) },
            { offline.sendSystemMessage(0uL, mapOf()) },
        )
        badCalls.forEachIndexed { i, call ->
            val e = runCatching { runBlocking { call() } }.exceptionOrNull()
            assertTrue(e is ChatException.InvalidInput, "case $i: $e")
        }
        // The same client does reach the network for valid input (so the cases above prove
        // something): a well-formed call fails as NotLoggedIn or Network, not InvalidInput.
        val valid = runCatching { runBlocking { offline.history(missing, ListParams(), false) } }.exceptionOrNull()
        assertTrue(valid is ChatException.NotLoggedIn || valid is ChatException.Network, "$valid")
    }
}
