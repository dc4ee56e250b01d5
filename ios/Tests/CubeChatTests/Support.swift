// Test support: a cubeserver process per test (CUBESERVER_BIN, free ports, in-memory db),
// users, bounded waits, and a recorder that drains an AsyncStream in the background.
import Foundation
import Testing

@testable import CubeChat

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let appId: UInt64 = 7
let authKey = "key-7"
let authSecret = "secret-7"
let password = "correct-horse-9"

extension NSLock {
    /// Runs `body` holding the lock.
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A test failure outside an expectation (setup that cannot go on).
struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A cubeserver child process on free ports. Started with SIGTERM unblocked and at its
/// default action (the test runner's threads may block it), stopped by `stop()` or deinit.
final class Cubeserver: @unchecked Sendable {
    let pid: pid_t
    /// The ready line (one JSON object).
    let readyLine: String
    let apiUrl: String
    private let lock = NSLock()
    private var stopped = false

    init() throws {
        guard let bin = ProcessInfo.processInfo.environment["CUBESERVER_BIN"] else {
            throw Failure("CUBESERVER_BIN is not set")
        }
        let certs = FileManager.default.temporaryDirectory
            .appendingPathComponent("cubeserver-swift-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: certs, withIntermediateDirectories: true)
        let args = [
            bin, "--api-port", "0", "--db", ":memory:", "--cert-dir", certs.path,
            "--app", "\(appId):\(authKey):\(authSecret)",
        ]

        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw Failure("pipe failed: \(errno)") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        defer { close(fds[0]) }

        #if canImport(Glibc)
        var actions = posix_spawn_file_actions_t()
        var attr = posix_spawnattr_t()
        #else
        var actions: posix_spawn_file_actions_t? = nil
        var attr: posix_spawnattr_t? = nil
        #endif
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attr, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGPIPE] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, bin, &actions, &attr, &cargs, environ)
        close(fds[1])
        guard rc == 0 else { throw Failure("cannot start \(bin): \(String(cString: strerror(rc)))") }
        pid = child

        // The ready line, within 20 s (bounded: at most 400 polls of 50 ms).
        var line = [UInt8]()
        var pfd = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
        var buf = [UInt8](repeating: 0, count: 4096)
        reading: for _ in 0..<400 {
            if poll(&pfd, 1, 50) > 0 {
                let n = read(fds[0], &buf, buf.count)
                if n <= 0 { break }
                for b in buf[0..<n] {
                    if b == UInt8(ascii: "\n") { break reading }
                    line.append(b)
                }
            }
        }
        readyLine = String(decoding: line, as: UTF8.self)
        guard let url = Cubeserver.field("api_url", in: readyLine) else {
            kill(child, SIGKILL)
            var status: Int32 = 0
            waitpid(child, &status, 0)
            throw Failure("cubeserver printed no ready line: \(readyLine)")
        }
        apiUrl = url
    }

    deinit { stop() }

    private static func field(_ name: String, in line: String) -> String? {
        guard let data = line.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        switch object[name] {
        case let s as String: return s
        case let n as NSNumber: return n.stringValue
        default: return nil
        }
    }

    /// A field of the ready line.
    func field(_ name: String) -> String? { Cubeserver.field(name, in: readyLine) }

    /// A REST-only client config.
    func restConfig(appId: UInt64 = appId, authSecret: String? = authSecret, storeDir: String? = nil)
        -> ClientConfig
    {
        ClientConfig(appId: appId, authKey: authKey, authSecret: authSecret, apiUrl: apiUrl, storeDir: storeDir)
    }

    /// A client config with chat (trusting the server's CA).
    func config(storeDir: String? = nil) -> ClientConfig {
        let ca = field("ca_cert").flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }
        return ClientConfig(
            appId: appId, authKey: authKey, authSecret: authSecret, apiUrl: apiUrl,
            chatDomain: field("chat_domain"), chatHost: "127.0.0.1",
            chatPort: UInt16(field("xmpp_port") ?? "") ?? 5222,
            chatTlsPort: UInt16(field("xmpp_tls_port") ?? "") ?? 5223,
            extraCaPem: ca, storeDir: storeDir)
    }

    /// SIGTERM, a bounded wait (10 s), then SIGKILL. Idempotent.
    func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<200 {
            if waitpid(pid, &status, WNOHANG) == pid { return }
            usleep(50_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
    }
}

/// A unique login.
func unique(_ prefix: String) -> String {
    prefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(10).lowercased()
}

/// A fresh temporary directory.
func tempDir(_ prefix: String) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// A signed-up, logged-in client and its user.
struct Member: Sendable {
    let client: ChatClient
    let user: User
    let login: String
    var id: UInt64 { user.id }
}

/// Signs a new user up and logs in.
func member(_ server: Cubeserver, _ name: String = "Swift Tester", config: ClientConfig? = nil) async throws
    -> Member
{
    let client = try ChatClient(config: config ?? server.restConfig())
    let login = unique("sw")
    let created = try await client.signUp(user: NewUser(login: login, fullName: name), password: password)
    let me = try await client.logIn(login: .login(login: login), password: password)
    #expect(created.id == me.id)
    return Member(client: client, user: me, login: login)
}

/// Waits (at most `seconds`, polling every 20 ms) until `check` holds; records a failure
/// naming `what` otherwise.
func eventually(
    _ what: String, seconds: Double = 10, sourceLocation: SourceLocation = #_sourceLocation,
    _ check: () throws -> Bool
) async throws {
    let polls = Int(seconds * 50)
    for _ in 0..<polls {
        if try check() { return }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    if try check() { return }
    Issue.record("not in time: \(what)", sourceLocation: sourceLocation)
    throw Failure("not in time: \(what)")
}

/// Runs `body`, failing with `what` if it has not finished within `seconds` (the body is
/// cancelled then; a `for await` loop over an AsyncStream ends on cancellation).
func withTimeout<T: Sendable>(
    _ what: String, seconds: Double = 10, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw Failure("not in time: \(what)")
        }
        return value
    }
}

/// The name of an error's case (`ChatError.Forbidden(reason: …)` → "Forbidden").
func caseName(_ error: Error) -> String {
    String(String(describing: error).prefix { $0 != "(" })
}

/// Expects `body` to throw `ChatError.<kind>`; returns the error.
@discardableResult
func expectChatError<T>(
    _ kind: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T
) async -> ChatError? {
    do {
        let value = try await body()
        Issue.record("expected ChatError.\(kind), got \(value)", sourceLocation: sourceLocation)
    } catch let error as ChatError {
        #expect(caseName(error) == kind, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected ChatError.\(kind), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Drains a stream into a list in the background (the stream layer under test); `all` is
/// what arrived so far, in order. Cancelling (or releasing) it ends the iteration.
final class Recorder<Element: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Element] = []
    private var finished = false
    private var task: Task<Void, Never>?

    init(_ stream: AsyncStream<Element>) {
        task = Task { [weak self] in
            for await item in stream {
                guard let self else { return }
                self.lock.locked { self.items.append(item) }
            }
            self?.lock.locked { self?.finished = true }
        }
    }

    deinit { task?.cancel() }

    /// Everything received so far.
    var all: [Element] { lock.locked { items } }
    /// Whether the stream finished.
    var ended: Bool { lock.locked { finished } }
    func contains(where match: (Element) -> Bool) -> Bool { all.contains(where: match) }
    func cancel() { task?.cancel() }
}

extension Recorder where Element: Equatable {
    func contains(_ element: Element) -> Bool { all.contains(element) }
}

/// Every event family of one client as recorded streams.
final class Events: Sendable {
    let states: Recorder<ConnectionState>
    let messages: Recorder<ReceivedMessage>
    let statuses: Recorder<MessageStatus>
    let typing: Recorder<TypingEvent>
    let changes: Recorder<MessageChange>
    let system: Recorder<SystemMessage>
    let bounced: Recorder<BouncedMessage>
    let presence: Recorder<PresenceEvent>

    init(_ client: ChatClient) throws {
        states = Recorder(try client.connectionStates())
        messages = Recorder(try client.messages())
        statuses = Recorder(try client.statuses())
        typing = Recorder(try client.typing())
        changes = Recorder(try client.messageChanges())
        system = Recorder(try client.systemMessages())
        bounced = Recorder(try client.bouncedMessages())
        presence = Recorder(try client.presenceEvents())
    }
}

/// A logged-in client with chat connected and every event family recorded.
struct Online: Sendable {
    let member: Member
    let events: Events
    var client: ChatClient { member.client }
    var id: UInt64 { member.id }
}

/// Signs up, logs in, records every stream, connects chat.
func online(_ server: Cubeserver, storeDir: String? = nil) async throws -> Online {
    let m = try await member(server, config: server.config(storeDir: storeDir))
    let events = try Events(m.client)
    try await m.client.connectChat(auth: .sessionToken)
    #expect(m.client.connectionState() == .connected)
    // Connected = initial presence sent; one IQ round trip proves cubeserver read it, so a
    // message sent right after is routed live (not stored and flushed as delayed).
    _ = try await m.client.privacyListNames()
    return Online(member: m, events: events)
}
