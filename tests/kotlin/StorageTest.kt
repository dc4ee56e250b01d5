// JUnit 5 tests of cloud storage through the Kotlin bindings against a real cubeserver:
// a 5 MB attachment uploaded and downloaded with progress events, sent in a message and
// fetched by another user; cancellation by token and by coroutine; typed bad-input errors.
package io.cubechat.tests

import io.cubechat.*
import kotlinx.coroutines.async
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.*
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import kotlin.test.assertFailsWith
import java.net.HttpURLConnection
import java.net.URI
import java.nio.file.Files
import java.util.UUID
import java.util.concurrent.CopyOnWriteArrayList

/** Records progress events; optionally cancels [token] once [cancelAt] of the total is done. */
class Recorder(private val cancelAt: Double? = null, private val token: CancelToken? = null) : TransferListener {
    val events = CopyOnWriteArrayList<Pair<ULong, ULong>>()
    override fun onProgress(done: ULong, total: ULong) {
        events.add(done to total)
        if (cancelAt != null && total > 0uL && done.toDouble() >= total.toDouble() * cancelAt) token?.cancel()
    }

    fun assertComplete(total: ULong) {
        assertEquals(0uL to total, events.first())
        assertEquals(total to total, events.last())
        val dones = events.map { it.first }
        assertEquals(dones.distinct().sorted(), dones, "progress only grows")
        assertTrue(events.size in 3..102, "${events.size} events")
    }
}

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class StorageTest {
    private lateinit var server: Cubeserver

    @BeforeAll
    fun start() {
        server = Cubeserver()
    }

    @AfterAll
    fun stop() = server.close()

    private suspend fun user(): Pair<ChatClient, User> {
        val c = ChatClient(ClientConfig(appId = APP_ID, authKey = AUTH_KEY, authSecret = AUTH_SECRET, apiUrl = server.apiUrl))
        val login = "ks" + UUID.randomUUID().toString().replace("-", "").take(10)
        c.signUp(NewUser(login = login), PASSWORD)
        return c to c.logIn(LoginId.Login(login), PASSWORD)
    }

    @Test
    fun fiveMegabyteAttachmentRoundTrip() = runBlocking {
        val (alice, _) = user()
        val (bob, b) = user()
        val dir = Files.createTempDirectory("cubechat-kt-storage")
        val data = ByteArray(5 * 1024 * 1024) { (it * 31 % 251).toByte() }
        val src = dir.resolve("clip.mp4")
        Files.write(src, data)
        val size = data.size.toULong()

        val up = Recorder()
        val blob = alice.uploadFile(src.toString(), UploadOptions(), up, null)
        assertEquals(size, blob.size)
        assertEquals("clip.mp4", blob.name)
        assertEquals("video/mp4", blob.contentType)
        assertFalse(blob.public)
        up.assertComplete(size)

        val group = alice.createDialog(NewDialog(kind = DialogType.GROUP, name = "Clips", occupantsIds = listOf(b.id)))
        val attachment = attachmentFromBlob(blob)
        assertEquals("video", attachment.kind)
        alice.createMessage(NewMessage(dialogId = group.id, body = "", attachments = listOf(attachment.copy(duration = 12uL))))
        val got = bob.history(group.id, ListParams(), false).single().attachments.single()
        assertEquals(listOf(blob.uid, "clip.mp4", "video/mp4"), listOf(got.uid, got.name, got.contentType))
        assertEquals(size, got.size)
        assertEquals(12uL, got.duration)

        val down = Recorder()
        val dest = dir.resolve("copy.mp4")
        assertEquals(size, bob.downloadFile(got.uid!!, dest.toString(), down, null))
        assertArrayEquals(data, Files.readAllBytes(dest))
        down.assertComplete(size)

        // The private URL carries bob's token and works for a plain HTTP client.
        val private = bob.blobUrl(blob.uid, true)
        val conn = URI(private).toURL().openConnection() as HttpURLConnection
        assertEquals(200, conn.responseCode)
        assertEquals(data.size, conn.inputStream.use { it.readBytes() }.size)
        val public = URI(bob.blobUrl(blob.uid, false)).toURL().openConnection() as HttpURLConnection
        assertEquals(401, public.responseCode)

        assertFailsWith<ChatException.Forbidden> { bob.renameBlob(blob.id, "x.mp4") }
        assertEquals("final.mp4", alice.renameBlob(blob.id, "final.mp4").name)
        assertEquals(listOf(blob.uid), alice.listBlobs(1uL, 10uL).items.map { it.uid })
        alice.deleteBlob(blob.id)
        assertFailsWith<ChatException.NotFound> { bob.downloadFile(blob.uid, dir.resolve("gone").toString(), null, null) }
        assertFalse(Files.exists(dir.resolve("gone")))
    }

    @Test
    fun cancellationLeavesNothingBehind() = runBlocking {
        val (alice, _) = user()
        val data = ByteArray(2 * 1024 * 1024) { it.toByte() }
        val token = CancelToken()
        assertFailsWith<ChatException.Cancelled> {
            alice.uploadBytes(data, UploadOptions(name = "a.bin"), Recorder(0.25, token), token)
        }
        assertTrue(token.isCancelled())
        assertEquals(0uL, alice.listBlobs(1uL, 10uL).totalEntries)

        val blob = alice.uploadBytes(data, UploadOptions(name = "a.bin", public = true), null, null)
        val dir = Files.createTempDirectory("cubechat-kt-cancel")
        val token2 = CancelToken()
        assertFailsWith<ChatException.Cancelled> {
            alice.downloadFile(blob.uid, dir.resolve("half.bin").toString(), Recorder(0.5, token2), token2)
        }
        assertEquals(0, Files.list(dir).use { it.count() }.toInt())

        // Cancelling the coroutine stops the transfer too; no partial file stays.
        val job = async(Dispatchers.IO, start = CoroutineStart.UNDISPATCHED) {
            alice.downloadFile(blob.uid, dir.resolve("job.bin").toString(), null, null)
        }
        job.cancelAndJoin()
        Thread.sleep(100)
        val left = Files.list(dir).use { s -> s.map { it.fileName.toString() }.toList() }
        assertTrue(left.isEmpty() || (left == listOf("job.bin") && Files.readAllBytes(dir.resolve("job.bin")).contentEquals(data)), "$left")
    }

    @Test
    fun badInputIsTyped() = runBlocking {
        val (alice, _) = user()
        val dir = Files.createTempDirectory("cubechat-kt-bad")
        assertFailsWith<ChatException.InvalidInput> { alice.uploadFile(dir.resolve("missing").toString(), UploadOptions(), null, null) }
        assertFailsWith<ChatException.InvalidInput> { alice.uploadBytes(ByteArray(0), UploadOptions(), null, null) }
        assertFailsWith<ChatException.InvalidInput> { alice.downloadFile("../etc", dir.resolve("x").toString(), null, null) }
        assertFailsWith<ChatException.NotFound> { alice.blobByUid("0".repeat(32)) }
        assertEquals(0uL, alice.listBlobs(1uL, 10uL).totalEntries)
    }
}
