//! Offline-first chat for apps: the local store, live views and the persistent send queue.
//!
//! - [`ChatClient::watch_dialogs`] and [`ChatClient::watch_timeline`] answer from the store at
//!   once ([`DialogListEvent::Reset`], [`TimelineEvent::Reset`]), then report every change
//!   by position to a [`DialogListListener`] / [`TimelineListener`].
//! - [`ChatClient::enqueue_message`] stores a message ([`TimelineMessage`], state
//!   [`MessageState::Queued`]) and sends it whenever chat is connected, also after a restart.
//!
//! Thin wrappers over `cubechat_core::local`: conversions and delivery loops only. Calls that
//! may open the store run inside the runtime's context, so its sync and queue tasks start.

use std::collections::HashMap;
use std::sync::Arc;

use cubechat_core as core;
use cubechat_core::local as local_core;

use crate::chat::{Attachment, Dialog, Reactions};
use crate::client::ChatClient;
use crate::error::ChatError;
use crate::handle::SubscriptionHandle;
use crate::realtime::OutgoingMessage;
use crate::runtime::{rt, run};

/// Where a message of a timeline stands.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum MessageState {
    /// Written locally, waiting in the send queue or on its way (not yet acknowledged).
    Queued,
    /// Acknowledged by the server.
    Sent,
    /// Delivered to at least one recipient.
    Delivered,
    /// Read by at least one recipient.
    Read,
    /// Not sent: `retry_message` queues it again, `cancel_message` drops it.
    Failed {
        /// Why it failed (no message body).
        reason: String,
    },
    /// A message from another user (or from another device of this user).
    Received,
}

impl From<core::MessageState> for MessageState {
    fn from(s: core::MessageState) -> Self {
        match s {
            core::MessageState::Queued => Self::Queued,
            core::MessageState::Sent => Self::Sent,
            core::MessageState::Delivered => Self::Delivered,
            core::MessageState::Read => Self::Read,
            core::MessageState::Failed { reason } => Self::Failed { reason },
            core::MessageState::Received => Self::Received,
        }
    }
}

/// A message of a timeline from the local store: received, sent, or still queued.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct TimelineMessage {
    /// The message id (final already while queued).
    pub id: String,
    /// The dialog's id.
    pub dialog_id: String,
    /// The sender's user id.
    pub sender_id: u64,
    /// The addressee in private dialogs; `None` in groups.
    pub recipient_id: Option<u64>,
    /// The text.
    pub body: String,
    /// The attachments.
    pub attachments: Vec<Attachment>,
    /// Custom parameters.
    pub custom: HashMap<String, String>,
    /// Unix seconds.
    pub date_sent: i64,
    /// Where the message is on its way (queued, sending, sent, failed, ...).
    pub state: MessageState,
    /// Sent by this user (from this device or another).
    pub outgoing: bool,
    /// The body was edited.
    pub edited: bool,
    /// The ids of the users who read it.
    pub read_ids: Vec<u64>,
    /// The ids of the users it was delivered to.
    pub delivered_ids: Vec<u64>,
    /// This user's reactions and the count per reaction.
    pub reactions: Reactions,
    /// Local order among messages of the same second (larger = later). Timelines are
    /// ordered by `(date_sent, seq)`.
    pub seq: i64,
}

impl From<core::LocalMessage> for TimelineMessage {
    fn from(m: core::LocalMessage) -> Self {
        Self {
            id: m.id,
            dialog_id: m.dialog_id,
            sender_id: m.sender_id,
            recipient_id: m.recipient_id,
            body: m.body,
            attachments: m.attachments.into_iter().map(Into::into).collect(),
            custom: m.custom.into_iter().collect(),
            date_sent: m.date_sent,
            state: m.state.into(),
            outgoing: m.outgoing,
            edited: m.edited,
            read_ids: m.read_ids,
            delivered_ids: m.delivered_ids,
            reactions: m.reactions.into(),
            seq: m.seq,
        }
    }
}

fn messages(v: Vec<core::LocalMessage>) -> Vec<TimelineMessage> {
    v.into_iter().map(Into::into).collect()
}

fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// A change of the live dialog list, by position: apply it to the list as it is. The list
/// is ordered by last activity, newest first. The first event is always `Reset` with the
/// snapshot from the store; applying every later one in order keeps the list equal to what
/// the store holds, nothing twice and nothing missed.
// Passed by value across the FFI, where a variant cannot be boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum DialogListEvent {
    /// Replace the whole list (the snapshot, or many changes at once).
    Reset {
        /// The whole list, in order.
        dialogs: Vec<Dialog>,
    },
    /// Append a dialog.
    PushBack {
        /// The dialog appended.
        dialog: Dialog,
    },
    /// Put a dialog first.
    PushFront {
        /// The dialog put first.
        dialog: Dialog,
    },
    /// Insert a dialog at `index` (later ones move down).
    Insert {
        /// Where the dialog goes (0 = first).
        index: u32,
        /// The dialog inserted.
        dialog: Dialog,
    },
    /// The dialog at `index` changed in place (name, photo, unread count, ...).
    Set {
        /// The position of the changed dialog.
        index: u32,
        /// The dialog as it is now.
        dialog: Dialog,
    },
    /// Remove the dialog at `index` (gone, or moved: then it is inserted elsewhere next).
    Remove {
        /// The position of the dialog removed.
        index: u32,
    },
}

impl From<local_core::DialogsEvent> for DialogListEvent {
    fn from(e: local_core::DialogsEvent) -> Self {
        use core::VectorDiff as V;
        match e {
            V::Reset { values } => Self::Reset {
                dialogs: values.into_iter().map(Into::into).collect(),
            },
            V::PushBack { value } => Self::PushBack {
                dialog: value.into(),
            },
            V::PushFront { value } => Self::PushFront {
                dialog: value.into(),
            },
            V::Insert { index: i, value } => Self::Insert {
                index: index(i),
                dialog: value.into(),
            },
            V::Set { index: i, value } => Self::Set {
                index: index(i),
                dialog: value.into(),
            },
            V::Remove { index: i } => Self::Remove { index: index(i) },
        }
    }
}

/// A change of one dialog's live timeline, by position: apply it to the list as it is.
/// Messages are ordered by `(date_sent, seq)`, oldest first (this user's unsent messages in
/// send order). The first event is always `Reset` with the snapshot from the store; applying
/// every later one in order keeps the list equal to what the store holds, nothing twice and
/// nothing missed.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum TimelineEvent {
    /// Replace the whole list (the snapshot, or many changes at once).
    Reset {
        /// The whole list, oldest first.
        messages: Vec<TimelineMessage>,
    },
    /// Append a message (the newest).
    PushBack {
        /// The message appended.
        message: TimelineMessage,
    },
    /// Put a message first (the oldest).
    PushFront {
        /// The message put first.
        message: TimelineMessage,
    },
    /// Insert a message at `index` (later ones move down).
    Insert {
        /// Where the message goes (0 = first).
        index: u32,
        /// The message inserted.
        message: TimelineMessage,
    },
    /// The message at `index` changed in place: state, body (edit), reactions,
    /// delivered/read users, attachments of a queued message after their upload.
    Set {
        /// The position of the changed message.
        index: u32,
        /// The message as it is now.
        message: TimelineMessage,
    },
    /// Remove the message at `index` (deleted, or cancelled from the queue).
    Remove {
        /// The position of the message removed.
        index: u32,
    },
}

impl From<local_core::TimelineEvent> for TimelineEvent {
    fn from(e: local_core::TimelineEvent) -> Self {
        use core::VectorDiff as V;
        match e {
            V::Reset { values } => Self::Reset {
                messages: messages(values),
            },
            V::PushBack { value } => Self::PushBack {
                message: value.into(),
            },
            V::PushFront { value } => Self::PushFront {
                message: value.into(),
            },
            V::Insert { index: i, value } => Self::Insert {
                index: index(i),
                message: value.into(),
            },
            V::Set { index: i, value } => Self::Set {
                index: index(i),
                message: value.into(),
            },
            V::Remove { index: i } => Self::Remove { index: index(i) },
        }
    }
}

/// A file to attach to a queued message: uploaded (once online) before the message is sent,
/// then it becomes an attachment. The file must stay at `path` until then.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct QueuedFile {
    /// Path of a local file.
    pub path: String,
    /// File name to store; default: the file's own name.
    #[uniffi(default)]
    pub name: Option<String>,
    /// MIME type; default: guessed from the name.
    #[uniffi(default)]
    pub content_type: Option<String>,
    /// Public blob (readable by URL without a session).
    #[uniffi(default = false)]
    pub public: bool,
}

impl From<QueuedFile> for cubechat_core::QueuedFile {
    fn from(f: QueuedFile) -> Self {
        Self {
            path: f.path.into(),
            name: f.name,
            content_type: f.content_type,
            public: f.public,
        }
    }
}

/// Hears the dialog list: the snapshot first, then every change, in order.
///
/// Threads: called on this subscription's own thread (`cubechat-deliver`), one event at a
/// time, in order; never on the engine's threads, so a slow or blocking call delays only
/// this subscription. Events wait, none skipped, until the call returns; a subscription
/// 65,536 events behind ends (see `SubscriptionHandle`). Calling the client from here is
/// allowed.
#[uniffi::export(foreign)]
pub trait DialogListListener: Send + Sync {
    /// One dialog-list event. An error or exception raised here is logged (the first one of
    /// a subscription); later events are still delivered.
    fn on_dialog_list_event(&self, event: DialogListEvent) -> Result<(), ChatError>;
}

/// Hears one dialog's timeline: the snapshot first, then every change, in order.
///
/// Threads: called on this subscription's own thread (`cubechat-deliver`), one event at a
/// time, in order; never on the engine's threads, so a slow or blocking call delays only
/// this subscription. Events wait, none skipped, until the call returns; a subscription
/// 65,536 events behind ends (see `SubscriptionHandle`). Calling the client from here is
/// allowed.
#[uniffi::export(foreign)]
pub trait TimelineListener: Send + Sync {
    /// One timeline event. An error or exception raised here is logged (the first one of
    /// a subscription); later events are still delivered.
    fn on_timeline_event(&self, event: TimelineEvent) -> Result<(), ChatError>;
}

impl ChatClient {
    /// Runs a short synchronous store call inside the runtime's context (opening the store
    /// on first use starts its tasks there).
    fn with_store<T>(
        &self,
        f: impl FnOnce(&core::Client) -> core::Result<T>,
    ) -> Result<T, ChatError> {
        let rt = rt()?;
        let _g = rt.enter();
        f(&self.core()).map_err(Into::into)
    }
}

#[uniffi::export]
impl ChatClient {
    /// Opens the local store of `user_id` (a file in `ClientConfig.store_dir`, or memory) and
    /// starts its sync and send-queue tasks. The logged-in user's store opens by itself on
    /// first use; call this to show cached data before logging in (offline start). Opening
    /// another user's store closes the current one.
    ///
    /// Errors: `StoreCorrupt` and `StoreTooNew` (the file is left untouched), `Store`,
    /// `InvalidInput` (user id 0).
    pub fn open_store(&self, user_id: u64) -> Result<(), ChatError> {
        self.with_store(|c| c.open_store(user_id))
    }

    /// Closes the local store; live views end. Queued messages stay in the file and are sent
    /// after the next open.
    pub fn close_store(&self) {
        let _ = self.with_store(|c| {
            c.close_store();
            Ok(())
        });
    }

    /// Watches the dialog list: delivers `Reset` (the first `limit` dialogs from the store,
    /// newest activity first) at once, then every change by position, and starts a sync with
    /// the server in the background. The view covers the list down to the last dialog of a
    /// full first page (further pages: `dialogs_page`), else the whole list. Cancel the
    /// handle to stop. Errors: `NotLoggedIn` (no store open), store errors.
    pub fn watch_dialogs(
        &self,
        limit: u32,
        listener: Arc<dyn DialogListListener>,
    ) -> Result<Arc<SubscriptionHandle>, ChatError> {
        let (snapshot, rx) = self.with_store(|c| c.timeline().watch_dialogs(limit))?;
        let first = local_core::DialogsEvent::Reset { values: snapshot }.into();
        SubscriptionHandle::forward("DialogListListener", first, rx, move |e| {
            listener.on_dialog_list_event(e)
        })
    }

    /// A further page of the dialog list from the store: `after_dialog_id` = the id of the
    /// last dialog of the previous page (`None` = the first page). Newest activity first.
    /// Errors: `NotFound` (that dialog is not in the store), store errors.
    pub fn dialogs_page(
        &self,
        limit: u32,
        after_dialog_id: Option<String>,
    ) -> Result<Vec<Dialog>, ChatError> {
        self.with_store(|c| {
            c.timeline()
                .dialogs_page_after_id(limit, after_dialog_id.as_deref())
        })
        .map(|v| v.into_iter().map(Into::into).collect())
    }

    /// Watches one dialog's timeline: delivers `Reset` (the newest `limit` cached messages,
    /// oldest first) at once, then every change by position. The view covers the messages
    /// from the oldest of the snapshot on (an empty snapshot: all, so pages `load_older`
    /// stores arrive in it too); older messages: `load_older`. Cancel the handle to stop.
    /// Errors: `InvalidInput` (bad dialog id), `NotLoggedIn`, store errors.
    pub fn watch_timeline(
        &self,
        dialog_id: String,
        limit: u32,
        listener: Arc<dyn TimelineListener>,
    ) -> Result<Arc<SubscriptionHandle>, ChatError> {
        let (snapshot, rx) = self.with_store(|c| c.timeline().watch_timeline(&dialog_id, limit))?;
        let first = local_core::TimelineEvent::Reset { values: snapshot }.into();
        SubscriptionHandle::forward("TimelineListener", first, rx, move |e| {
            listener.on_timeline_event(e)
        })
    }

    /// Up to `limit` (1–100) messages older than `before_message_id` (`None` = the newest),
    /// oldest first: from the store, then from the server's history (stored on the way).
    /// Fewer than `limit` means the start of the dialog was reached. Errors: `InvalidInput`,
    /// `NotFound` (that message is not in the store), `Network`, store errors.
    pub async fn load_older(
        &self,
        dialog_id: String,
        before_message_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<TimelineMessage>, ChatError> {
        let c = self.core();
        run(async move {
            c.timeline()
                .load_older(&dialog_id, before_message_id.as_deref(), limit)
                .await
        })
        .await
        .map(messages)
    }

    /// Brings the store up to date with the server (dialogs updated since the last sync and
    /// the messages missed meanwhile). Runs by itself on every (re)connection and when the
    /// dialog list is watched; live views hear the changes. Errors: `Network`, `NotLoggedIn`,
    /// store errors.
    pub async fn sync_local(&self) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.timeline().sync_local().await }).await
    }

    /// Marks every message of a dialog read on the server and sets its unread count to 0 in
    /// the store (the dialog list hears it). Errors: `Network`, `NotFound`, store
    /// errors.
    pub async fn mark_dialog_read(&self, dialog_id: String) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.timeline().mark_dialog_read(&dialog_id).await }).await
    }

    /// Stores a message and its place in the send queue in one step and returns it (state
    /// `Queued`, with its final id); its timeline hears it at once. It is sent as soon as chat is
    /// connected, in order with the other queued messages, also after the app restarts;
    /// `files` are uploaded first and become attachments. Works offline.
    /// Errors: `InvalidInput` (empty or oversized, bad custom keys; nothing is stored),
    /// `NotLoggedIn`, store errors.
    pub fn enqueue_message(
        &self,
        message: OutgoingMessage,
        files: Vec<QueuedFile>,
    ) -> Result<TimelineMessage, ChatError> {
        let files = files.into_iter().map(Into::into).collect();
        self.with_store(|c| c.send_queue().enqueue_message(message.into(), files))
            .map(Into::into)
    }

    /// Queues a failed message again, at the end of the queue. Errors: `NotFound`,
    /// `InvalidInput` (the message is not failed).
    pub fn retry_message(&self, message_id: String) -> Result<TimelineMessage, ChatError> {
        self.with_store(|c| c.send_queue().retry_message(&message_id))
            .map(Into::into)
    }

    /// Drops a queued or failed message (never acknowledged by the server); it leaves its
    /// timeline. Errors: `NotFound`, `InvalidInput` (already sent or being sent:
    /// delete it instead).
    pub fn cancel_message(&self, message_id: String) -> Result<(), ChatError> {
        self.with_store(|c| c.send_queue().cancel_message(&message_id))
    }

    /// Edits one of this user's messages. Queued or failed: the message itself changes and
    /// is sent once with the new body. Sent: the local copy changes now and the edit is
    /// queued (sent over chat in order, also after a restart). Returns the changed message.
    /// Errors: `InvalidInput` (empty body), `NotFound`, `Forbidden` (not this user's).
    pub fn edit_local_message(
        &self,
        message_id: String,
        body: String,
    ) -> Result<TimelineMessage, ChatError> {
        self.with_store(|c| c.send_queue().edit_local_message(&message_id, &body))
            .map(Into::into)
    }

    /// Deletes one of this user's messages. Queued or failed: it is dropped and never sent.
    /// Sent: the local copy goes now and the deletion is queued (sent over chat, for
    /// everyone). It leaves its timeline at once. Errors: `NotFound`, `Forbidden`.
    pub fn delete_local_message(&self, message_id: String) -> Result<(), ChatError> {
        self.with_store(|c| c.send_queue().delete_local_message(&message_id))
    }

    /// This user's messages not yet acknowledged by the server (queued or failed), in send
    /// order. Errors: `NotLoggedIn`, store errors (`StoreCorrupt` for a damaged file).
    pub fn pending_messages(&self) -> Result<Vec<TimelineMessage>, ChatError> {
        self.with_store(|c| c.send_queue().pending_messages())
            .map(messages)
    }
}
