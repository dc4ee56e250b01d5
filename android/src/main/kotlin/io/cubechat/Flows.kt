// Every event family of ChatClient as a cold Kotlin Flow, and the connection state as a
// StateFlow: the thin, hand-written layer over the generated `subscribe*` listeners. Glue
// only; the events, their order and their meaning come from the engine.
//
// Threads and buffering, for every flow here:
// - The engine calls the listener behind a flow on one of its own threads; that call only
//   hands the event to the flow's channel (`trySend`) and returns at once, so a slow
//   collector never holds an engine thread, another subscription or another client's send.
// - The collector runs in the collector's own coroutine context (e.g. `Dispatchers.Main`
//   under `lifecycleScope`), one event at a time, in the engine's order.
// - The channel is unbounded: a collector that does not keep up loses nothing and the
//   backlog grows in memory. To bound it, apply `.buffer(n, BufferOverflow.DROP_OLDEST)` or
//   `.conflate()` after the flow.
// - `collect` subscribes before it suspends for the first time (no coroutine is started for
//   it), so `launch(start = CoroutineStart.UNDISPATCHED) { flow.collect { … } }` has
//   subscribed when `launch` returns: nothing sent after that is missed. The collector
//   ending (completion, cancellation, or an exception it throws) cancels the
//   SubscriptionHandle. A flow holds its handle while collected, so nothing is lost to
//   garbage collection (unlike a `subscribe*` handle the app drops).
package io.cubechat

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.SendChannel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.SharingStarted
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.flow.stateIn

/** A typing notification: [userId] started ([composing] true) or paused typing in [dialogId]. */
data class TypingEvent(
    /** The dialog, or null for a 1:1 chat the sender named no dialog for. */
    val dialogId: String?,
    /** Who is typing (a ConnectyCube user id). */
    val userId: Long,
    /** True when the user started typing, false when they paused. */
    val composing: Boolean,
)

/** A message the server bounced (e.g. the recipient blocked this user). */
data class MessageErrorEvent(
    /** The id of the bounced message. */
    val messageId: String,
    /** The XMPP error code. */
    val code: Int,
    /** The server's error text (never a message body). */
    val text: String,
)

/** A last-activity update of one watched user: [seconds] since last seen, 0 = online now. */
data class LastActivityEvent(
    /** The watched user. */
    val userId: Long,
    /** Seconds since the user was last seen; 0 when the user just came online. */
    val seconds: Long,
)

/**
 * The building block of every flow here: collecting it calls [subscribe] (which registers a
 * listener that `trySend`s into the given channel and returns its handle) at once, then
 * emits what arrives; the collector ending cancels the handle. Use it for a listener this
 * file does not wrap.
 */
fun <T> subscriptionFlow(subscribe: suspend SendChannel<T>.() -> SubscriptionHandle): Flow<T> = subscriptionFlow(null, subscribe)

/** [subscriptionFlow] that also completes (normally) when [until] completes, if given. */
internal fun <T> subscriptionFlow(until: Job?, subscribe: suspend SendChannel<T>.() -> SubscriptionHandle): Flow<T> = flow {
    val channel = Channel<T>(Channel.UNLIMITED)
    val handle = channel.subscribe()
    val stop = until?.invokeOnCompletion { channel.close() }
    try {
        for (event in channel) emit(event)
    } finally {
        stop?.dispose()
        handle.cancel()
        channel.close()
    }
}

/** The connection state: the current one first, then every change. */
fun ChatClient.connectionStates(): Flow<ConnectionState> = subscriptionFlow(connectionStatesSource())

/** The listener registration behind [connectionStates]. */
internal fun ChatClient.connectionStatesSource(): suspend SendChannel<ConnectionState>.() -> SubscriptionHandle = {
    subscribeConnection(object : ConnectionListener {
        override fun onState(state: ConnectionState) { trySend(state) }
    })
}

/**
 * The connection state as a StateFlow in [scope]: `value` is always the current state (read
 * at once, no suspension); it follows the engine until [scope] is cancelled.
 */
fun ChatClient.connectionStateFlow(scope: CoroutineScope): StateFlow<ConnectionState> =
    connectionStates().stateIn(scope, SharingStarted.Eagerly, connectionState())

/** New chat messages, private and group (each message id once). */
fun ChatClient.messages(): Flow<ReceivedMessage> = subscriptionFlow(messagesSource())

/** The listener registration behind [messages]. */
internal fun ChatClient.messagesSource(): suspend SendChannel<ReceivedMessage>.() -> SubscriptionHandle = {
    subscribeMessages(object : MessageListener {
        override fun onMessage(message: ReceivedMessage) { trySend(message) }
    })
}

/** Sent / failed / delivered / read statuses of messages. */
fun ChatClient.statuses(): Flow<MessageStatus> = subscriptionFlow(statusesSource())

/** The listener registration behind [statuses]. */
internal fun ChatClient.statusesSource(): suspend SendChannel<MessageStatus>.() -> SubscriptionHandle = {
    subscribeStatuses(object : StatusListener {
        override fun onStatus(status: MessageStatus) { trySend(status) }
    })
}

/** Typing notifications of other users. */
fun ChatClient.typing(): Flow<TypingEvent> = subscriptionFlow(typingSource())

/** The listener registration behind [typing]. */
internal fun ChatClient.typingSource(): suspend SendChannel<TypingEvent>.() -> SubscriptionHandle = {
    subscribeTyping(object : TypingListener {
        override fun onTyping(dialogId: String?, userId: ULong, composing: Boolean) {
            trySend(TypingEvent(dialogId, userId.toLong(), composing))
        }
    })
}

/** Edits, deletions and reaction changes of messages. */
fun ChatClient.messageChanges(): Flow<MessageChange> = subscriptionFlow(messageChangesSource())

/** The listener registration behind [messageChanges]. */
internal fun ChatClient.messageChangesSource(): suspend SendChannel<MessageChange>.() -> SubscriptionHandle = {
    subscribeMessageChanges(object : MessageChangeListener {
        override fun onChange(change: MessageChange) { trySend(change) }
    })
}

/** System messages (ConnectyCube's `extension.moduleIdentifier=SystemNotifications`). */
fun ChatClient.systemMessages(): Flow<SystemMessage> = subscriptionFlow(systemMessagesSource())

/** The listener registration behind [systemMessages]. */
internal fun ChatClient.systemMessagesSource(): suspend SendChannel<SystemMessage>.() -> SubscriptionHandle = {
    subscribeSystemMessages(object : SystemMessageListener {
        override fun onSystemMessage(message: SystemMessage) { trySend(message) }
    })
}

/** Messages the server bounced. */
fun ChatClient.messageErrors(): Flow<MessageErrorEvent> = subscriptionFlow(messageErrorsSource())

/** The listener registration behind [messageErrors]. */
internal fun ChatClient.messageErrorsSource(): suspend SendChannel<MessageErrorEvent>.() -> SubscriptionHandle = {
    subscribeMessageErrors(object : MessageErrorListener {
        override fun onMessageError(messageId: String, code: UShort, text: String) {
            trySend(MessageErrorEvent(messageId, code.toInt(), text))
        }
    })
}

/** Last-activity pushes, room occupants joining and leaving, and kicks. */
fun ChatClient.presence(): Flow<PresenceEvent> = subscriptionFlow(presenceSource())

/** The listener registration behind [presence]. */
internal fun ChatClient.presenceSource(): suspend SendChannel<PresenceEvent>.() -> SubscriptionHandle = {
    subscribePresence(object : PresenceListener {
        override fun onPresence(event: PresenceEvent) { trySend(event) }
    })
}

/** Session events: the current session first, then logins, renewals, logouts, expiry. */
fun ChatClient.sessionEvents(): Flow<SessionEvent> = subscriptionFlow(sessionEventsSource())

/** The listener registration behind [sessionEvents]. */
internal fun ChatClient.sessionEventsSource(): suspend SendChannel<SessionEvent>.() -> SubscriptionHandle = {
    subscribeSession(object : SessionListener {
        override fun onSessionEvent(event: SessionEvent) { trySend(event) }
    })
}

/**
 * One user's last activity: collecting subscribes to the user's logins and logouts on the
 * server (`watchLastActivity`); the collector ending unsubscribes. Fails the collection with
 * a [ChatException] when chat is not connected.
 */
fun ChatClient.lastActivityOf(userId: Long): Flow<LastActivityEvent> = subscriptionFlow(lastActivityOfSource(userId))

/** The listener registration behind [lastActivityOf]. */
internal fun ChatClient.lastActivityOfSource(userId: Long): suspend SendChannel<LastActivityEvent>.() -> SubscriptionHandle = {
    watchLastActivity(userId.toULong(), object : LastActivityListener {
        override fun onLastActivity(userId: ULong, seconds: ULong) {
            trySend(LastActivityEvent(userId.toLong(), seconds.toLong()))
        }
    })
}
