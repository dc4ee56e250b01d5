// Every event family of a ChatClient as an AsyncStream: the thin, hand-written layer over the
// generated `subscribe*` calls. Glue only: the engine delivers the events in order, on its own
// threads; each stream buffers them (unbounded, none is dropped) until the app reads them.
//
// Lifetime: the subscription is cancelled when the Task iterating the stream is cancelled, or
// when the stream is released (e.g. after leaving `for await m in try client.messages()`).
// When the engine ends a source (e.g. the store is closed under a live view) the stream
// finishes. Events that arrive between creating a stream and iterating it are kept.
import Foundation

/// A typing notification: `composing` is true when the user starts typing, false on pause.
public struct TypingEvent: Equatable, Hashable, Sendable {
    /// The dialog, when the sender said (private chats may omit it).
    public let dialogId: String?
    /// Who is typing.
    public let userId: UInt64
    /// True when the user started typing, false when they paused.
    public let composing: Bool

    /// A typing notification.
    public init(dialogId: String?, userId: UInt64, composing: Bool) {
        self.dialogId = dialogId
        self.userId = userId
        self.composing = composing
    }
}

/// A message the server bounced (e.g. the recipient blocked this user).
public struct BouncedMessage: Equatable, Hashable, Sendable {
    /// The id of the message that was sent.
    public let messageId: String
    /// The server's error code.
    public let code: UInt16
    /// The server's error text (for logs, not meant to be parsed).
    public let text: String

    /// A bounced message.
    public init(messageId: String, code: UInt16, text: String) {
        self.messageId = messageId
        self.code = code
        self.text = text
    }
}

/// Hands every event it hears to one stream. When the engine releases it (the subscription
/// was cancelled or its source ended), the stream finishes.
final class StreamRelay<Element: Sendable>: @unchecked Sendable {
    let continuation: AsyncStream<Element>.Continuation
    init(_ continuation: AsyncStream<Element>.Continuation) { self.continuation = continuation }
    func send(_ element: Element) { continuation.yield(element) }
    deinit { continuation.finish() }
}

extension StreamRelay: SessionListener where Element == SessionEvent {
    func onSessionEvent(event: SessionEvent) throws { send(event) }
}

extension StreamRelay: ConnectionListener where Element == ConnectionState {
    func onState(state: ConnectionState) throws { send(state) }
}

extension StreamRelay: MessageListener where Element == ReceivedMessage {
    func onMessage(message: ReceivedMessage) throws { send(message) }
}

extension StreamRelay: StatusListener where Element == MessageStatus {
    func onStatus(status: MessageStatus) throws { send(status) }
}

extension StreamRelay: TypingListener where Element == TypingEvent {
    func onTyping(dialogId: String?, userId: UInt64, composing: Bool) throws {
        send(TypingEvent(dialogId: dialogId, userId: userId, composing: composing))
    }
}

extension StreamRelay: MessageChangeListener where Element == MessageChange {
    func onChange(change: MessageChange) throws { send(change) }
}

extension StreamRelay: SystemMessageListener where Element == SystemMessage {
    func onSystemMessage(message: SystemMessage) throws { send(message) }
}

extension StreamRelay: MessageErrorListener where Element == BouncedMessage {
    func onMessageError(messageId: String, code: UInt16, text: String) throws {
        send(BouncedMessage(messageId: messageId, code: code, text: text))
    }
}

extension StreamRelay: PresenceListener where Element == PresenceEvent {
    func onPresence(event: PresenceEvent) throws { send(event) }
}

extension StreamRelay: LastActivityListener where Element == UInt64 {
    func onLastActivity(userId: UInt64, seconds: UInt64) throws { send(seconds) }
}

extension StreamRelay: TimelineListener where Element == TimelineEvent {
    func onTimelineEvent(event: TimelineEvent) throws { send(event) }
}

extension StreamRelay: DialogListListener where Element == DialogListEvent {
    func onDialogListEvent(event: DialogListEvent) throws { send(event) }
}

/// A stream and the subscription feeding it (the handle is for tests and diagnostics; the
/// stream cancels it when its iteration ends).
struct Subscribed<Element: Sendable>: Sendable {
    let stream: AsyncStream<Element>
    let handle: SubscriptionHandle
}

/// Opens a subscription whose events go into a new stream; ending the stream's iteration
/// cancels the subscription. If subscribing fails, the stream is finished and the error thrown.
func subscribed<Element: Sendable>(
    _ subscribe: (StreamRelay<Element>) throws -> SubscriptionHandle
) throws -> Subscribed<Element> {
    let (stream, continuation) = AsyncStream.makeStream(of: Element.self)
    let handle = try subscribe(StreamRelay(continuation))
    continuation.onTermination = { _ in handle.cancel() }
    return Subscribed(stream: stream, handle: handle)
}

/// The async variant of `subscribed` (for subscriptions that talk to the server first).
func subscribedAsync<Element: Sendable>(
    _ subscribe: (StreamRelay<Element>) async throws -> SubscriptionHandle
) async throws -> Subscribed<Element> {
    let (stream, continuation) = AsyncStream.makeStream(of: Element.self)
    let handle = try await subscribe(StreamRelay(continuation))
    continuation.onTermination = { _ in handle.cancel() }
    return Subscribed(stream: stream, handle: handle)
}

extension ChatClient {
    func sessionEventsSubscription() throws -> Subscribed<SessionEvent> {
        try subscribed { try subscribeSession(listener: $0) }
    }

    func connectionStatesSubscription() throws -> Subscribed<ConnectionState> {
        try subscribed { try subscribeConnection(listener: $0) }
    }

    func messagesSubscription() throws -> Subscribed<ReceivedMessage> {
        try subscribed { try subscribeMessages(listener: $0) }
    }

    /// The session events: `current` first, then every later event (started, logged out,
    /// expired…) in order.
    public func sessionEvents() throws -> AsyncStream<SessionEvent> {
        try sessionEventsSubscription().stream
    }

    /// The chat connection's state: the current one first (the value `connectionState()`
    /// returns), then every change in order.
    public func connectionStates() throws -> AsyncStream<ConnectionState> {
        try connectionStatesSubscription().stream
    }

    /// New messages received over chat (each id once), in the order they arrived.
    public func messages() throws -> AsyncStream<ReceivedMessage> {
        try messagesSubscription().stream
    }

    /// Sent / failed / delivered / read statuses of messages.
    public func statuses() throws -> AsyncStream<MessageStatus> {
        try subscribed { try subscribeStatuses(listener: $0) }.stream
    }

    /// Typing notifications (started / paused).
    public func typing() throws -> AsyncStream<TypingEvent> {
        try subscribed { try subscribeTyping(listener: $0) }.stream
    }

    /// Edits, deletions and reaction changes of messages.
    public func messageChanges() throws -> AsyncStream<MessageChange> {
        try subscribed { try subscribeMessageChanges(listener: $0) }.stream
    }

    /// System messages.
    public func systemMessages() throws -> AsyncStream<SystemMessage> {
        try subscribed { try subscribeSystemMessages(listener: $0) }.stream
    }

    /// Messages the server bounced (e.g. the recipient blocked this user).
    public func bouncedMessages() throws -> AsyncStream<BouncedMessage> {
        try subscribed { try subscribeMessageErrors(listener: $0) }.stream
    }

    /// Last-activity pushes, room occupants joining and leaving, and kicks.
    public func presenceEvents() throws -> AsyncStream<PresenceEvent> {
        try subscribed { try subscribePresence(listener: $0) }.stream
    }

    /// One user's logins (0) and logouts (seconds since last seen), kept across reconnects.
    /// Subscribes on the server first; ending the iteration stops the stream (call
    /// `unsubscribeLastActivity` to end the server subscription too).
    public func lastActivity(of userId: UInt64) async throws -> AsyncStream<UInt64> {
        try await subscribedAsync { try await watchLastActivity(userId: userId, listener: $0) }.stream
    }
}
