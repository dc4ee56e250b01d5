// Readable one-line descriptions of the generated records and enums, for logs and debugging.
// The generated `toString` prints objects as `ConnectionState$Connected@68ceda24` and data
// classes with every field, message bodies included; `describe()` names the case, keeps the
// ids and states, and replaces a body by its length. Never a body, token or password.
package io.cubechat

/** The length of a text in place of the text (bodies stay out of logs). */
private fun bodyLength(body: String?): String = if (body == null) "null" else "<${body.length} chars>"

/** `Connected`, `Reconnecting(attempt=2, nextDelayMs=1500)`, `Disconnected(reason=…)`. */
fun ConnectionState.describe(): String = when (this) {
    ConnectionState.Idle -> "Idle"
    ConnectionState.Connecting -> "Connecting"
    ConnectionState.Connected -> "Connected"
    ConnectionState.AuthFailed -> "AuthFailed"
    is ConnectionState.Reconnecting -> "Reconnecting(attempt=$attempt, nextDelayMs=$nextDelayMs)"
    is ConnectionState.Disconnected -> "Disconnected(reason=$reason)"
}

/** `Queued`, `Sent`, `Delivered`, `Read`, `Received`, `Failed(reason=…)`. */
fun MessageState.describe(): String = when (this) {
    MessageState.Queued -> "Queued"
    MessageState.Sent -> "Sent"
    MessageState.Delivered -> "Delivered"
    MessageState.Read -> "Read"
    MessageState.Received -> "Received"
    is MessageState.Failed -> "Failed(reason=$reason)"
}

/** The session event's case and user id. */
fun SessionEvent.describe(): String = when (this) {
    is SessionEvent.Current -> "Current(userId=$userId)"
    is SessionEvent.Started -> "Started(userId=$userId)"
    is SessionEvent.Renewed -> "Renewed(userId=$userId)"
    SessionEvent.LoggedOut -> "LoggedOut"
    is SessionEvent.Expired -> "Expired(reason=$reason)"
    SessionEvent.Destroyed -> "Destroyed"
}

/** The message's ids, time and flags; the body as its length. */
fun ReceivedMessage.describe(): String =
    "ReceivedMessage(id=$id, dialogId=$dialogId, senderId=$senderId, recipientId=$recipientId, " +
        "body=${bodyLength(body)}, attachments=${attachments.size}, dateSent=$dateSent" +
        (if (group) ", group" else "") + (if (delayed) ", delayed" else "") + (if (carbon) ", carbon" else "") + ")"

/** The message's ids, time and read state; the body as its length. */
fun ChatMessage.describe(): String =
    "ChatMessage(id=$id, dialogId=$dialogId, senderId=$senderId, recipientId=$recipientId, " +
        "body=${bodyLength(body)}, attachments=${attachments.size}, dateSent=$dateSent, read=$read)"

/** The message's ids, state and position; the body as its length. */
fun TimelineMessage.describe(): String =
    "TimelineMessage(id=$id, dialogId=$dialogId, senderId=$senderId, state=${state.describe()}, " +
        "outgoing=$outgoing, edited=$edited, body=${bodyLength(body)}, attachments=${attachments.size}, seq=$seq)"

/** The system message's id and sender; the body as its length, the custom keys without values. */
fun SystemMessage.describe(): String =
    "SystemMessage(id=$id, senderId=$senderId, body=${bodyLength(body)}, custom=${custom.keys.sorted()})"

/** The change's case and ids; an edit's new body as its length. */
fun MessageChange.describe(): String = when (this) {
    is MessageChange.Edited -> "Edited(messageId=$messageId, dialogId=$dialogId, userId=$userId, body=${bodyLength(body)}, last=$last)"
    is MessageChange.Deleted -> "Deleted(messageId=$messageId, dialogId=$dialogId, userId=$userId)"
    is MessageChange.Reactions -> "Reactions(messageId=$messageId, dialogId=$dialogId, userId=$userId, add=$add, remove=$remove)"
}

/** The status's case and ids (the generated `toString` already reads well; kept for symmetry). */
fun MessageStatus.describe(): String = when (this) {
    is MessageStatus.Sent -> "Sent(messageId=$messageId)"
    is MessageStatus.Failed -> "Failed(messageId=$messageId, reason=$reason)"
    is MessageStatus.Delivered -> "Delivered(messageId=$messageId, dialogId=$dialogId, userId=$userId)"
    is MessageStatus.Read -> "Read(messageId=$messageId, dialogId=$dialogId, userId=$userId)"
}

/** The timeline event's case, index and message description. */
fun TimelineEvent.describe(): String = when (this) {
    is TimelineEvent.Reset -> "Reset(${messages.size} messages)"
    is TimelineEvent.PushBack -> "PushBack(${message.describe()})"
    is TimelineEvent.PushFront -> "PushFront(${message.describe()})"
    is TimelineEvent.Insert -> "Insert(index=$index, ${message.describe()})"
    is TimelineEvent.Set -> "Set(index=$index, ${message.describe()})"
    is TimelineEvent.Remove -> "Remove(index=$index)"
}

/** The dialog's id, kind, name, occupants and unread count; the last message as its length. */
fun Dialog.describe(): String =
    "Dialog(id=$id, kind=$kind, name=$name, occupants=$occupantsIds, unread=$unreadCount, " +
        "lastMessage=${bodyLength(lastMessage)})"

/** The dialog-list event's case, index and dialog description. */
fun DialogListEvent.describe(): String = when (this) {
    is DialogListEvent.Reset -> "Reset(${dialogs.size} dialogs)"
    is DialogListEvent.PushBack -> "PushBack(${dialog.describe()})"
    is DialogListEvent.PushFront -> "PushFront(${dialog.describe()})"
    is DialogListEvent.Insert -> "Insert(index=$index, ${dialog.describe()})"
    is DialogListEvent.Set -> "Set(index=$index, ${dialog.describe()})"
    is DialogListEvent.Remove -> "Remove(index=$index)"
}

/** The error's case and its fields (`ChatNotConnected` and its like have no message of their own). */
fun ChatException.describe(): String {
    val name = this::class.simpleName ?: "ChatException"
    val text = message
    return when {
        !text.isNullOrEmpty() -> "$name($text)"
        this is ChatException.ChatNotConnected -> "$name(chat is not connected)"
        this is ChatException.NotLoggedIn -> "$name(no user is logged in)"
        this is ChatException.Cancelled -> "$name(the call was cancelled)"
        else -> name
    }
}
