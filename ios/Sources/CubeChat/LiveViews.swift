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

/// Whole lists from a stream of events: the snapshot, then the list after each change.
/// Ending the iteration of the lists ends the iteration of the events (and so the view).
private func lists<Event: Sendable, Item: Sendable>(
    _ events: AsyncStream<Event>, apply: @escaping @Sendable (inout [Item], Event) -> Void
) -> AsyncStream<[Item]> {
    let (stream, continuation) = AsyncStream.makeStream(of: [Item].self)
    let task = Task {
        var list: [Item] = []
        for await event in events {
            apply(&list, event)
            continuation.yield(list)
        }
        continuation.finish()
    }
    continuation.onTermination = { _ in task.cancel() }
    return stream
}

extension ChatClient {
    func timelineEventsSubscription(dialogId: String, limit: UInt32) throws -> Subscribed<TimelineEvent> {
        try subscribed { try watchTimeline(dialogId: dialogId, limit: limit, listener: $0) }
    }

    func dialogListEventsSubscription(limit: UInt32) throws -> Subscribed<DialogListEvent> {
        try subscribed { try watchDialogs(limit: limit, listener: $0) }
    }

    /// The events of one dialog's live timeline: `reset` with the newest `limit` cached
    /// messages first, then one positional diff per change. Ending the iteration closes the view;
    /// closing the store ends the stream.
    public func timelineEvents(dialogId: String, limit: UInt32) throws -> AsyncStream<TimelineEvent> {
        try timelineEventsSubscription(dialogId: dialogId, limit: limit).stream
    }

    /// One dialog's live timeline as whole lists (oldest first): the snapshot, then the list
    /// after each change.
    public func timeline(dialogId: String, limit: UInt32) throws -> AsyncStream<[TimelineMessage]> {
        lists(try timelineEvents(dialogId: dialogId, limit: limit)) { $0.apply($1) }
    }

    /// The events of the live dialog list: `reset` with the first `limit` dialogs (newest
    /// activity first), then one positional diff per change. Ending the iteration closes the view.
    public func dialogListEvents(limit: UInt32) throws -> AsyncStream<DialogListEvent> {
        try dialogListEventsSubscription(limit: limit).stream
    }

    /// The live dialog list as whole lists (newest activity first): the snapshot, then the
    /// list after each change.
    public func dialogList(limit: UInt32) throws -> AsyncStream<[Dialog]> {
        lists(try dialogListEvents(limit: limit)) { $0.apply($1) }
    }
}
