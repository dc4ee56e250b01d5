// JUnit 5 tests of the Kotlin bindings against a real cubeserver: the same flow as the
// Python tests (sign up, log in, session, log callbacks, typed errors, no panic escapes).
package io.cubechat.tests

import io.cubechat.*
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.*
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import kotlin.test.assertFailsWith
import java.io.BufferedReader
import java.io.InputStreamReader
import java.nio.file.Files
import java.util.UUID
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit

const val APP_ID = 7uL
const val AUTH_KEY = "key-7"
const val AUTH_SECRET = "secret-7"
const val PASSWORD = "correct-horse-9"

/** A cubeserver process on free ports; [apiUrl] comes from its ready line. */
class Cubeserver : AutoCloseable {
    private val process: Process
    val apiUrl: String
    /** The ready line, for the other fields (ports, chat domain, CA path). */
    val readyLine: String

    init {
        val bin = System.getenv("CUBESERVER_BIN") ?: error("CUBESERVER_BIN is not set")
        val certs = Files.createTempDirectory("cubeserver-kt")
        process = ProcessBuilder(bin, "--api-port", "0", "--db", ":memory:", "--cert-dir", certs.toString(),
            "--app", "$APP_ID:$AUTH_KEY:$AUTH_SECRET")
            .redirectError(ProcessBuilder.Redirect.DISCARD).start()
        val reader = BufferedReader(InputStreamReader(process.inputStream))
        val line = java.util.concurrent.Executors.newSingleThreadExecutor().submit<String?> { reader.readLine() }
            .get(20, TimeUnit.SECONDS) ?: error("cubeserver printed no ready line")
        apiUrl = Regex("\"api_url\"\\s*:\\s*\"([^\"]+)\"").find(line)?.groupValues?.get(1)
            ?: error("no api_url in ready line")
        readyLine = line
    }

    /** A string field of the ready line. */
    fun field(name: String): String? = Regex("\"$name\"\\s*:\\s*\"([^\"]*)\"").find(readyLine)?.groupValues?.get(1)

    /** A number field of the ready line. */
    fun number(name: String): Int? = Regex("\"$name\"\\s*:\\s*(\\d+)").find(readyLine)?.groupValues?.get(1)?.toInt()

    /** A client config for this server, chat included (trusting its CA). */
    fun config(): ClientConfig = ClientConfig(
        appId = APP_ID, authKey = AUTH_KEY, authSecret = AUTH_SECRET, apiUrl = apiUrl,
        chatDomain = field("chat_domain"), chatHost = "127.0.0.1",
        chatPort = (number("xmpp_port") ?: 5222).toUShort(), chatTlsPort = (number("xmpp_tls_port") ?: 5223).toUShort(),
        extraCaPem = field("ca_cert")?.let { java.io.File(it).readText() },
    )

    override fun close() {
        process.destroy() // SIGTERM
        if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly()
    }
}

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AuthTest {
    private lateinit var server: Cubeserver

    @BeforeAll
    fun start() {
        server = Cubeserver()
        initPlatform(LogConfig(level = LogLevel.INFO), null)
    }

    @AfterAll
    fun stop() = server.close()

    private fun client(
        appId: ULong = APP_ID,
        authSecret: String? = AUTH_SECRET,
        apiUrl: String = server.apiUrl,
    ) = ChatClient(ClientConfig(appId = appId, authKey = AUTH_KEY, authSecret = authSecret, apiUrl = apiUrl))

    private fun unique(prefix: String) = prefix + UUID.randomUUID().toString().replace("-", "").take(10)

    private suspend fun signUpAndLogIn(c: ChatClient): Pair<String, User> {
        val login = unique("kt")
        val created = c.signUp(NewUser(login = login, fullName = "Kotlin Tester"), PASSWORD)
        val me = c.logIn(LoginId.Login(login), PASSWORD)
        assertEquals(created.id, me.id)
        return login to me
    }

    @Test
    fun signUpLogInSessionAndLogOut() = runBlocking {
        val c = client()
        assertNull(c.currentSession())
        val (_, me) = signUpAndLogIn(c)
        val s = c.getSession()
        assertEquals(me.id, s.userId)
        assertEquals(APP_ID, s.applicationId)
        val token = c.sessionToken()!!
        assertFalse(s.toString().contains(token))
        c.logOut()
        assertEquals(0uL, c.getSession().userId)
        c.destroySession()
        assertFailsWith<ChatException.NotLoggedIn> { runBlocking { c.getSession() } }
        Unit
    }

    @Test
    fun logRecordsArriveFromABackgroundThread() = runBlocking {
        val records = CopyOnWriteArrayList<Pair<String, LogRecord>>()
        val sink = object : LogSink {
            override fun log(record: LogRecord) {
                records.add(Thread.currentThread().name to record)
            }
        }
        initPlatform(LogConfig(level = LogLevel.INFO), sink)
        try {
            signUpAndLogIn(client())
        } finally {
            initPlatform(LogConfig(), null)
        }
        val loggedIn = records.filter { it.second.message.contains("logged in") }
        assertTrue(loggedIn.isNotEmpty(), records.toString())
        assertTrue(loggedIn.all { it.first != "main" && it.first != Thread.currentThread().name })
        assertTrue(records.none { it.second.message.contains(PASSWORD) })
    }

    @Test
    fun sessionListenerHearsEvents() = runBlocking {
        val events = CopyOnWriteArrayList<SessionEvent>()
        val c = client()
        val handle = c.subscribeSession(object : SessionListener {
            override fun onSessionEvent(event: SessionEvent) { events.add(event) }
        })
        val (_, me) = signUpAndLogIn(c)
        c.logOut()
        val deadline = System.currentTimeMillis() + 5000
        while (events.none { it is SessionEvent.LoggedOut } && System.currentTimeMillis() < deadline) Thread.sleep(20)
        assertEquals(SessionEvent.Current(null), events.first())
        assertTrue(events.contains(SessionEvent.Started(me.id)), events.toString())
        assertTrue(events.contains(SessionEvent.LoggedOut), events.toString())
        handle.cancel()
        assertFalse(handle.isActive())
    }

    @Test
    fun typedErrors() = runBlocking {
        val (login, _) = signUpAndLogIn(client())
        assertFailsWith<ChatException.InvalidCredentials> { runBlocking { client().logIn(LoginId.Login(login), "wrong-password") } }
        assertFailsWith<ChatException.ApplicationRejected> { runBlocking { client(appId = 999uL).logIn(LoginId.Login(login), PASSWORD) } }
        assertFailsWith<ChatException.SignatureRejected> { runBlocking { client(authSecret = "bad").logIn(LoginId.Login(login), PASSWORD) } }
        assertFailsWith<ChatException.Network> { runBlocking { client(apiUrl = "http://127.0.0.1:1").createSession() } }
        assertFailsWith<ChatException.InvalidInput> { client(apiUrl = "http://example.com") }
        val taken = assertFailsWith<ChatException.Server> { runBlocking { client().signUp(NewUser(login = login), PASSWORD) } }
        assertEquals(422.toUShort(), taken.code)
    }

    @Test
    fun malformedServerJsonIsAProtocolError() = runBlocking {
        val garbage = com.sun.net.httpserver.HttpServer.create(java.net.InetSocketAddress("127.0.0.1", 0), 0)
        garbage.createContext("/") { ex ->
            val body = "{\"session\": {\"id\": 1, \"token\": ".toByteArray()
            ex.responseHeaders.add("Content-Type", "application/json")
            ex.sendResponseHeaders(201, body.size.toLong())
            ex.responseBody.use { it.write(body) }
        }
        garbage.start()
        try {
            val c = client(apiUrl = "http://127.0.0.1:${garbage.address.port}")
            assertFailsWith<ChatException.Protocol> { runBlocking { c.createSession() } }
        } finally {
            garbage.stop(0)
        }
        Unit
    }

    @Test
    fun noPanicCrossesTheFfi() = runBlocking {
        assertFailsWith<InternalException> { triggerTestPanic() }
        assertFailsWith<ChatException.Internal> { runBlocking { triggerTestPanicAsync() } }
        client().createSession()
        Unit
    }
}
