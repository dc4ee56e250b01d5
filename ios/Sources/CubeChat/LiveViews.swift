// Live views as Swift AsyncStreams: the thin, hand-written layer over the generated bindings
// (`watchTimeline` / `watchDialogs` and their positional events). Glue only: the order of the
// lists and the diffs come from the engine.
import Foundation

extension Array where Element == TimelineMessage {
    /// Applies one timeline event, as a UI list applies it (`reset` replaces all).
    public mutating func apply(_ event: TimelineEvent) {
        switch event {
        case .reset(let messages): self = messages
        case .pushBack(let message): append(message)
        case .pushFront(let message): insert(message, at: 0)
        case .insert(let index, let message): insert(message, at: Int(index))
        case .set(let index, let message): self[Int(index)] = message
        case .remove(let index): remove(at: Int(index))
        }
    }
}

extension Array where Element == Dialog {
    /// Applies one dialog-list event, as a UI list applies it (`reset` replaces all).
    public mutating func apply(_ event: DialogListEvent) {
        switch event {
        case .reset(let dialogs): self = dialogs
        case .pushBack(let dialog): append(dialog)
        case .pushFront(let dialog): insert(dialog, at: 0)
        case .insert(let index, let dialog): insert(dialog, at: Int(index))
        case .set(let index, let dialog): self[Int(index)] = dialog
        case .remove(let index): remove(at: Int(index))
        }
    }
}

private final class TimelineRelay: TimelineListener, @unchecked Sendable {
    private let onEvent: (TimelineEvent) -> Void
    init(_ onEvent: @escaping (TimelineEvent) -> Void) { self.onEvent = onEvent }
    func onTimelineEvent(event: TimelineEvent) throws { onEvent(event) }
}

private final class DialogListRelay: DialogListListener, @unchecked Sendable {
    private let onEvent: (DialogListEvent) -> Void
    init(_ onEvent: @escaping (DialogListEvent) -> Void) { self.onEvent = onEvent }
    func onDialogListEvent(event: DialogListEvent) throws { onEvent(event) }
}

/// Whole lists from a stream of events: the snapshot, then the list after each change.
private func lists<Event, Item>(
    _ events: AsyncStream<Event>, apply: @escaping (inout [Item], Event) -> Void
) -> AsyncStream<[Item]> {
    AsyncStream { continuation in
        let task = Task {
            var list: [Item] = []
            for await event in events {
                apply(&list, event)
                continuation.yield(list)
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
    }
}

extension ChatClient {
    /// The events of one dialog's live timeline: `reset` with the newest `limit` cached
    /// messages first, then one positional diff per change. Ending the iteration closes the view.
    public func timelineEvents(dialogId: String, limit: UInt32) throws -> AsyncStream<TimelineEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: TimelineEvent.self)
        let handle = try watchTimeline(
            dialogId: dialogId, limit: limit,
            listener: TimelineRelay { continuation.yield($0) })
        continuation.onTermination = { _ in handle.cancel() }
        return stream
    }

    /// One dialog's live timeline as whole lists (oldest first): the snapshot, then the list
    /// after each change.
    public func timeline(dialogId: String, limit: UInt32) throws -> AsyncStream<[TimelineMessage]> {
        lists(try timelineEvents(dialogId: dialogId, limit: limit)) { $0.apply($1) }
    }

    /// The events of the live dialog list: `reset` with the first `limit` dialogs (newest
    /// activity first), then one positional diff per change. Ending the iteration closes the view.
    public func dialogListEvents(limit: UInt32) throws -> AsyncStream<DialogListEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: DialogListEvent.self)
        let handle = try watchDialogs(
            limit: limit, listener: DialogListRelay { continuation.yield($0) })
        continuation.onTermination = { _ in handle.cancel() }
        return stream
    }

    /// The live dialog list as whole lists (newest activity first): the snapshot, then the
    /// list after each change.
    public func dialogList(limit: UInt32) throws -> AsyncStream<[Dialog]> {
        lists(try dialogListEvents(limit: limit)) { $0.apply($1) }
    }
}
