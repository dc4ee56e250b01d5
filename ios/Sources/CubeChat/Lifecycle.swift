// The app lifecycle, told to a ChatClient: the scene phase (foreground → `markActive`,
// background → `markInactive`) and the network path (`NWPathMonitor` →
// `setNetworkAvailable`). Built where SwiftUI / Network exist (iOS, macOS); left out on Linux.
#if canImport(Network)
import Foundation
import Network
#if canImport(SwiftUI)
import SwiftUI
#endif

/// Tells a client what the app and the network do, in order: one Task applies the changes
/// one after another, so a quick background → foreground never lands in the wrong order.
///
/// ```swift
/// let lifecycle = ChatLifecycle(client: client)
/// lifecycle.startNetworkMonitor()            // network available / lost → reconnect policy
/// .onChange(of: scenePhase) { lifecycle.scenePhaseChanged($0) }   // SwiftUI
/// ```
public final class ChatLifecycle: @unchecked Sendable {
    private enum Change: Sendable {
        case active(Bool)
        case network(Bool)
    }

    private let lock = NSLock()
    private let changes: AsyncStream<Change>.Continuation
    private let worker: Task<Void, Never>
    private var monitor: NWPathMonitor?
    private var lastNetwork: Bool?

    /// A helper for `client`. Errors of the calls it makes are ignored (they only fail when
    /// chat is not connected, and the engine applies the state on the next connection).
    public init(client: ChatClient) {
        let (stream, continuation) = AsyncStream.makeStream(of: Change.self)
        changes = continuation
        worker = Task {
            for await change in stream {
                switch change {
                case .active(true): try? await client.markActive()
                case .active(false): try? await client.markInactive()
                case .network(let up): try? await client.setNetworkAvailable(available: up)
                }
            }
        }
    }

    deinit {
        stopNetworkMonitor()
        changes.finish()
        worker.cancel()
    }

    /// The app came to the foreground (true) or left it (false).
    public func appActive(_ active: Bool) {
        changes.yield(.active(active))
    }

    /// Starts watching the network path: each change of "a usable path exists" is passed to
    /// `setNetworkAvailable`. Idempotent.
    public func startNetworkMonitor() {
        lock.lock()
        defer { lock.unlock() }
        guard monitor == nil else { return }
        let m = NWPathMonitor()
        m.pathUpdateHandler = { [weak self] path in self?.networkChanged(path.status == .satisfied) }
        m.start(queue: DispatchQueue(label: "cubechat.network-monitor"))
        monitor = m
    }

    /// Stops watching the network path.
    public func stopNetworkMonitor() {
        lock.lock()
        let m = monitor
        monitor = nil
        lock.unlock()
        m?.cancel()
    }

    private func networkChanged(_ available: Bool) {
        lock.lock()
        let changed = lastNetwork != available
        lastNetwork = available
        lock.unlock()
        if changed { changes.yield(.network(available)) }
    }
}

#if canImport(SwiftUI) && canImport(UIKit)
extension ChatLifecycle {
    /// Passes a SwiftUI scene phase on: `.active` → active, `.background` → inactive
    /// (`.inactive`, a passing state such as the app switcher, changes nothing).
    public func scenePhaseChanged(_ phase: ScenePhase) {
        switch phase {
        case .active: appActive(true)
        case .background: appActive(false)
        default: break
        }
    }
}
#endif
#endif
