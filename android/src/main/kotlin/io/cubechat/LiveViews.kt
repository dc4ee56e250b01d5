// Live views as Kotlin Flows: the thin, hand-written layer over the generated bindings
// (`watchTimeline` / `watchDialogs` and their positional events; threads and buffering as
// in Flows.kt). Glue only: the order of the lists and the diffs come from the engine.
package io.cubechat

import kotlinx.coroutines.channels.SendChannel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow

/** Applies one timeline event to this list, as a UI list applies it (`Reset` replaces all). */
fun MutableList<TimelineMessage>.applyEvent(event: TimelineEvent) {
    when (event) {
        is TimelineEvent.Reset -> { clear(); addAll(event.messages) }
        is TimelineEvent.PushBack -> add(event.message)
        is TimelineEvent.PushFront -> add(0, event.message)
        is TimelineEvent.Insert -> add(event.index.toInt(), event.message)
        is TimelineEvent.Set -> set(event.index.toInt(), event.message)
        is TimelineEvent.Remove -> removeAt(event.index.toInt())
    }
}

/** Applies one dialog-list event to this list, as a UI list applies it (`Reset` replaces all). */
fun MutableList<Dialog>.applyEvent(event: DialogListEvent) {
    when (event) {
        is DialogListEvent.Reset -> { clear(); addAll(event.dialogs) }
        is DialogListEvent.PushBack -> add(event.dialog)
        is DialogListEvent.PushFront -> add(0, event.dialog)
        is DialogListEvent.Insert -> add(event.index.toInt(), event.dialog)
        is DialogListEvent.Set -> set(event.index.toInt(), event.dialog)
        is DialogListEvent.Remove -> removeAt(event.index.toInt())
    }
}

/**
 * The events of one dialog's live timeline: `Reset` with the newest `limit` cached messages
 * first, then one positional diff per change (for RecyclerView-style item updates).
 * Collecting opens the view; cancelling the collector closes it.
 */
fun ChatClient.timelineEvents(dialogId: String, limit: UInt): Flow<TimelineEvent> =
    subscriptionFlow(timelineEventsSource(dialogId, limit))

/** The listener registration behind [timelineEvents]. */
internal fun ChatClient.timelineEventsSource(dialogId: String, limit: UInt): suspend SendChannel<TimelineEvent>.() -> SubscriptionHandle = {
    watchTimeline(dialogId, limit, object : TimelineListener {
        override fun onTimelineEvent(event: TimelineEvent) { trySend(event) }
    })
}

/** One dialog's live timeline as whole lists (oldest first): the snapshot, then the list after each change. */
fun ChatClient.timeline(dialogId: String, limit: UInt): Flow<List<TimelineMessage>> = timelineLists(timelineEvents(dialogId, limit))

/** The lists [events] describe, one per event. */
internal fun timelineLists(events: Flow<TimelineEvent>): Flow<List<TimelineMessage>> = flow {
    val list = ArrayList<TimelineMessage>()
    events.collect { list.applyEvent(it); emit(list.toList()) }
}

/**
 * The events of the live dialog list: `Reset` with the first `limit` dialogs (newest activity
 * first), then one positional diff per change. Collecting opens the view (and starts a sync
 * with the server); cancelling the collector closes it.
 */
fun ChatClient.dialogListEvents(limit: UInt): Flow<DialogListEvent> = subscriptionFlow(dialogListEventsSource(limit))

/** The listener registration behind [dialogListEvents]. */
internal fun ChatClient.dialogListEventsSource(limit: UInt): suspend SendChannel<DialogListEvent>.() -> SubscriptionHandle = {
    watchDialogs(limit, object : DialogListListener {
        override fun onDialogListEvent(event: DialogListEvent) { trySend(event) }
    })
}

/** The live dialog list as whole lists (newest activity first): the snapshot, then the list after each change. */
fun ChatClient.dialogList(limit: UInt): Flow<List<Dialog>> = dialogLists(dialogListEvents(limit))

/** The lists [events] describe, one per event. */
internal fun dialogLists(events: Flow<DialogListEvent>): Flow<List<Dialog>> = flow {
    val list = ArrayList<Dialog>()
    events.collect { list.applyEvent(it); emit(list.toList()) }
}
