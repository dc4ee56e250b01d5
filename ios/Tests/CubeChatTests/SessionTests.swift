// Sessions through the Swift bindings against a real cubeserver: sign up, log in, session,
// log out; log records from a background thread; the session event stream; typed errors
// (credentials, application, signature, network, bad config, server, malformed JSON); no
// Rust panic crosses the FFI.
import Foundation
import Testing

@testable import CubeChat

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Collects log records and the threads they arrived on.
final class LogCollector: LogSink, @unchecked Sendable {
    private let lock = NSLock()
    private var records: [(onMainThread: Bool, record: LogRecord)] = []
    func log(record: LogRecord) throws {
        let main = Thread.isMainThread
        lock.locked { records.append((main, record)) }
    }
    var all: [(onMainThread: Bool, record: LogRecord)] { lock.locked { records } }
}

@Suite struct SessionTests {
    let server: Cubeserver
    init() throws { server = try Cubeserver() }

    @Test func signUpLogInSessionAndLogOut() async throws {
        let c = try ChatClient(config: server.restConfig())
        #expect(c.currentSession() == nil)
        let me = try await member(server, config: server.restConfig())
        let s = try await me.client.getSession()
        #expect(s.userId == me.id)
        #expect(s.applicationId == appId)
        let token = try #require(me.client.sessionToken())
        #expect(!String(describing: s).contains(token))
        #expect(!String(describing: me.client.currentSession() as Any).contains(token))
        try await me.client.logOut()
        #expect(try await me.client.getSession().userId == 0)
        try await me.client.destroySession()
        await expectChatError("NotLoggedIn") { try await me.client.getSession() }
    }

    @Test func logRecordsArriveFromABackgroundThread() async throws {
        let sink = LogCollector()
        try initPlatform(config: LogConfig(level: .info), sink: sink)
        do {
            _ = try await member(server)
        } catch {
            try? initPlatform(config: LogConfig(), sink: nil)
            throw error
        }
        try initPlatform(config: LogConfig(), sink: nil)
        let records = sink.all
        let loggedIn = records.filter { $0.record.message.contains("logged in") }
        #expect(!loggedIn.isEmpty, "\(records.map(\.record.message))")
        #expect(loggedIn.allSatisfy { !$0.onMainThread })
        #expect(records.allSatisfy { !$0.record.message.contains(password) })
    }

    @Test func sessionEventsStream() async throws {
        let c = try ChatClient(config: server.restConfig())
        let events = Recorder(try c.sessionEvents())
        let login = unique("sw")
        _ = try await c.signUp(user: NewUser(login: login), password: password)
        let me = try await c.logIn(login: .login(login: login), password: password)
        try await c.logOut()
        try await eventually("logged out event") { events.contains(.loggedOut) }
        let all = events.all
        #expect(all.first == .current(userId: nil))
        #expect(all.contains(.started(userId: me.id)), "\(all)")
        // Session events come in order: started before logged out.
        let started = try #require(all.firstIndex(of: .started(userId: me.id)))
        let out = try #require(all.firstIndex(of: .loggedOut))
        #expect(started < out)
    }

    @Test func typedErrors() async throws {
        let me = try await member(server)
        await expectChatError("InvalidCredentials") {
            try await ChatClient(config: server.restConfig()).logIn(
                login: .login(login: me.login), password: "wrong-password")
        }
        await expectChatError("ApplicationRejected") {
            try await ChatClient(config: server.restConfig(appId: 999)).logIn(
                login: .login(login: me.login), password: password)
        }
        await expectChatError("SignatureRejected") {
            try await ChatClient(config: server.restConfig(authSecret: "bad")).logIn(
                login: .login(login: me.login), password: password)
        }
        await expectChatError("Network") {
            try await ChatClient(config: ClientConfig(
                appId: appId, authKey: authKey, authSecret: authSecret, apiUrl: "http://127.0.0.1:1")
            ).createSession()
        }
        // Bad config: a typed error before any network traffic.
        await expectChatError("InvalidInput") {
            try ChatClient(config: ClientConfig(
                appId: appId, authKey: authKey, authSecret: authSecret, apiUrl: "http://example.com"))
        }
        await expectChatError("InvalidInput") {
            try ChatClient(config: ClientConfig(
                appId: 0, authKey: "k", authSecret: nil, apiUrl: "https://api.example.com"))
        }
        let taken = await expectChatError("Server") {
            try await ChatClient(config: server.restConfig()).signUp(
                user: NewUser(login: me.login), password: password)
        }
        if case .Server(let code, _)? = taken { #expect(code == 422) } else { Issue.record("\(String(describing: taken))") }
        // No secret in an error's text.
        let wrong = await expectChatError("InvalidCredentials") {
            try await ChatClient(config: server.restConfig()).logIn(
                login: .login(login: me.login), password: "secret-password-42")
        }
        #expect(!String(describing: wrong as Any).contains("secret-password-42"))
    }

    @Test func malformedServerJsonIsAProtocolError() async throws {
        let garbage = try GarbageServer()
        defer { garbage.stop() }
        let c = try ChatClient(config: ClientConfig(
            appId: appId, authKey: authKey, authSecret: authSecret,
            apiUrl: "http://127.0.0.1:\(garbage.port)"))
        await expectChatError("Protocol") { try await c.createSession() }
    }

    @Test func noPanicCrossesTheFfi() async throws {
        // The synchronous `triggerTestPanic` is generated as a non-throwing Swift function
        // (`try!`): a panic there would end the process, so only the async one is exercised.
        await expectChatError("Internal") { try await triggerTestPanicAsync() }
        // The library stays usable.
        let session = try await ChatClient(config: server.restConfig()).createSession()
        #expect(session.applicationId == appId)
    }
}

/// An HTTP server on 127.0.0.1 that answers every request with a truncated JSON body.
final class GarbageServer: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32
    private let thread: Thread

    init() throws {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw Failure("socket failed") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        guard bound == 0, listen(fd, 8) == 0 else { throw Failure("bind/listen failed") }
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        self.fd = fd
        port = UInt16(bigEndian: addr.sin_port)
        thread = Thread {
            let listener = fd
            // Serves until the socket is shut down (accept fails); each connection gets one reply.
            while true {
                let conn = accept(listener, nil, nil)
                if conn < 0 { return }
                var buf = [UInt8](repeating: 0, count: 8192)
                _ = read(conn, &buf, buf.count)
                let body = "{\"session\": {\"id\": 1, \"token\": "
                let reply = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
                _ = reply.withCString { write(conn, $0, strlen($0)) }
                close(conn)
            }
        }
        thread.start()
    }

    /// Stops accepting (the thread ends) and closes the socket.
    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}
