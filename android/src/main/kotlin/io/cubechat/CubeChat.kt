// CubeChat: an AutoCloseable owner of one ChatClient with `Long` ids for the common calls,
// the connection state as a StateFlow and every event family as a Flow that also ends when
// the client is closed. Glue only: every call goes to the generated ChatClient, reachable as
// `client` for everything not repeated here.
package io.cubechat

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.StateFlow
import java.util.concurrent.atomic.AtomicBoolean

/**
 * A [ClientConfig] with the application id as a `Long` (ConnectyCube's ids fit); every other
 * setting keeps its default and can be changed on the returned value.
 */
fun clientConfig(appId: Long, authKey: String, authSecret: String?, apiUrl: String): ClientConfig {
    require(appId > 0) { "appId must be positive" }
    return ClientConfig(appId = appId.toULong(), authKey = authKey, authSecret = authSecret, apiUrl = apiUrl)
}

/**
 * One chat client and everything it subscribed for the app. `close()` ends every flow
 * obtained from it (their collectors complete normally), stops the connection state, and
 * releases the engine client (which ends the chat connection). Use it with `use { }`.
 *
 * Thread-safe; the flows follow the rules described in Flows.kt (the engine thread only
 * hands events over; collectors run in their own context, unbounded buffer by default).
 */
class CubeChat(
    /** The generated client, for every call this class does not repeat. */
    val client: ChatClient,
) : AutoCloseable {
    /** A client for [config]; no network traffic happens here. */
    constructor(config: ClientConfig) : this(ChatClient(config))

    private val closed = Job()
    private val closing = AtomicBoolean(false)
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)

    /** The connection state: `value` is the current one; it follows the engine until [close]. */
    val connection: StateFlow<ConnectionState> = client.connectionStateFlow(scope)

    /** The current user's id, or null before login. */
    val userId: Long? get() = client.currentSession()?.userId?.toLong()?.takeIf { it != 0L }

    /** New messages; see [ChatClient.messages]. */
    fun messages(): Flow<ReceivedMessage> = subscriptionFlow(closed, client.messagesSource())

    /** Message statuses; see [ChatClient.statuses]. */
    fun statuses(): Flow<MessageStatus> = subscriptionFlow(closed, client.statusesSource())

    /** Typing notifications; see [ChatClient.typing]. */
    fun typing(): Flow<TypingEvent> = subscriptionFlow(closed, client.typingSource())

    /** Edits, deletions and reaction changes; see [ChatClient.messageChanges]. */
    fun messageChanges(): Flow<MessageChange> = subscriptionFlow(closed, client.messageChangesSource())

    /** System messages; see [ChatClient.systemMessages]. */
    fun systemMessages(): Flow<SystemMessage> = subscriptionFlow(closed, client.systemMessagesSource())

    /** Bounced messages; see [ChatClient.messageErrors]. */
    fun messageErrors(): Flow<MessageErrorEvent> = subscriptionFlow(closed, client.messageErrorsSource())

    /** Presence events; see [ChatClient.presence]. */
    fun presence(): Flow<PresenceEvent> = subscriptionFlow(closed, client.presenceSource())

    /** Session events; see [ChatClient.sessionEvents]. */
    fun sessionEvents(): Flow<SessionEvent> = subscriptionFlow(closed, client.sessionEventsSource())

    /** One user's last activity; see [ChatClient.lastActivityOf]. */
    fun lastActivityOf(userId: Long): Flow<LastActivityEvent> = subscriptionFlow(closed, client.lastActivityOfSource(userId))

    /** One dialog's live timeline as whole lists; see [ChatClient.timeline]. */
    fun timeline(dialogId: String, limit: Int): Flow<List<TimelineMessage>> =
        timelineLists(subscriptionFlow(closed, client.timelineEventsSource(dialogId, count(limit))))

    /** The live dialog list as whole lists; see [ChatClient.dialogList]. */
    fun dialogList(limit: Int): Flow<List<Dialog>> = dialogLists(subscriptionFlow(closed, client.dialogListEventsSource(count(limit))))

    /** Logs in with a login name and returns the user. */
    suspend fun logIn(login: String, password: String): User = client.logIn(LoginId.Login(login), password)

    /** Connects to chat with the current session's token and returns once online. */
    suspend fun connect() = client.connectChat(ChatAuth.SessionToken)

    /** Creates (or returns the existing) private dialog with [userId]. */
    suspend fun privateDialog(userId: Long): Dialog =
        client.createDialog(NewDialog(kind = DialogType.PRIVATE, occupantsIds = listOf(id(userId))))

    /** Creates a group dialog named [name] with [occupantIds]. */
    suspend fun groupDialog(name: String, occupantIds: List<Long>): Dialog =
        client.createDialog(NewDialog(kind = DialogType.GROUP, name = name, occupantsIds = occupantIds.map(::id)))

    /**
     * Sends a text message into [dialogId] over chat and returns its id; [recipientId] is the
     * other user of a private dialog, null for a group dialog.
     */
    suspend fun sendText(dialogId: String, recipientId: Long?, body: String): String =
        client.sendMessage(OutgoingMessage(dialogId = dialogId, recipientId = recipientId?.let(::id), body = body))

    /** Tells [recipientId] (null in a group dialog) that this user started or paused typing. */
    suspend fun sendTyping(dialogId: String, recipientId: Long?, composing: Boolean) =
        client.sendTyping(dialogId, recipientId?.let(::id), composing)

    /** Marks [messageId] from [senderId] read. */
    suspend fun sendRead(dialogId: String, messageId: String, senderId: Long) =
        client.sendRead(dialogId, messageId, id(senderId))

    /** Seconds since [userId] was last seen (0 = online now). */
    suspend fun lastActivity(userId: Long): Long = client.lastActivity(id(userId)).toLong()

    /** Sends a system message to [recipientId] and returns its id. */
    suspend fun sendSystemMessage(recipientId: Long, params: Map<String, String>): String =
        client.sendSystemMessage(id(recipientId), params)

    /** Ends every flow of this client, the connection state, and the engine client. Idempotent. */
    override fun close() {
        if (!closing.compareAndSet(false, true)) return
        closed.complete()
        scope.cancel()
        client.close()
    }

    private companion object {
        fun id(value: Long): ULong {
            require(value > 0) { "ids are positive" }
            return value.toULong()
        }

        fun count(value: Int): UInt {
            require(value > 0) { "limit must be positive" }
            return value.toUInt()
        }
    }
}
