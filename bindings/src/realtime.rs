//! Real-time chat for apps: connect/disconnect, the connection state, sending messages,
//! statuses, typing, edits, deletes and system messages, and one listener per event family.
//! Each `subscribe_*` call returns a [`SubscriptionHandle`]; events arrive in order, none is
//! dropped, on a cubechat thread (return quickly).

use std::collections::HashMap;
use std::sync::Arc;

use cubechat_core::xmpp as core;

use crate::chat::Attachment;
use crate::client::ChatClient;
use crate::error::ChatError;
use crate::handle::SubscriptionHandle;
use crate::runtime::{rt, run};

/// What the chat login authenticates with. Printing it never shows the password.
#[derive(Clone, uniffi::Enum)]
#[uniffi::export(Display, Debug)]
pub enum ChatAuth {
    /// The current REST session's token (log in over REST first). Renewed sessions keep
    /// working across reconnects.
    SessionToken,
    /// The user's password; `user_id` defaults to the logged-in REST user.
    Password {
        /// The user; `None` = the user of the current REST session.
        user_id: Option<u64>,
        /// The password. Kept in memory for reconnects only, never logged.
        password: String,
    },
}

impl std::fmt::Debug for ChatAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SessionToken => f.write_str("SessionToken"),
            Self::Password { user_id, .. } => f
                .debug_struct("Password")
                .field("user_id", user_id)
                .field("password", &cubechat_core::config::Redacted)
                .finish(),
        }
    }
}

impl std::fmt::Display for ChatAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl From<ChatAuth> for core::ChatAuth {
    fn from(a: ChatAuth) -> Self {
        match a {
            ChatAuth::SessionToken => Self::SessionToken,
            ChatAuth::Password { user_id, password } => Self::Password { user_id, password },
        }
    }
}

/// The chat connection's state.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum ConnectionState {
    /// Never connected, or destroyed.
    Idle,
    /// The first connection is being established.
    Connecting,
    /// Online.
    Connected,
    /// The connection dropped; attempt `attempt` starts in `next_delay_ms`. `Connected`
    /// follows when an attempt succeeds, `Disconnected` when they run out.
    Reconnecting {
        /// The attempt about to start, from 1 (back to 1 after a connection that stayed up,
        /// or after `reconnect_now`).
        attempt: u32,
        /// Milliseconds until it starts: 0 for the first attempt after a cut, after
        /// `reconnect_now` or when the network comes back; after a failed attempt, the
        /// policy's backoff with jitter.
        next_delay_ms: u64,
    },
    /// Offline and not trying (closed by the app, network unavailable, reconnection disabled
    /// or given up); `reconnect_now` tries again.
    Disconnected {
        /// Why, for logs and diagnostics (e.g. "disconnected by the app", "network
        /// unavailable"); not meant to be parsed.
        reason: String,
    },
    /// The server rejected the credentials; no retries until `reconnect_now` or a new
    /// `connect_chat`.
    AuthFailed,
}

impl From<core::ConnectionState> for ConnectionState {
    fn from(s: core::ConnectionState) -> Self {
        match s {
            core::ConnectionState::Idle => Self::Idle,
            core::ConnectionState::Connecting => Self::Connecting,
            core::ConnectionState::Connected => Self::Connected,
            core::ConnectionState::Reconnecting {
                attempt,
                next_delay,
            } => Self::Reconnecting {
                attempt,
                next_delay_ms: u64::try_from(next_delay.as_millis()).unwrap_or(u64::MAX),
            },
            core::ConnectionState::Disconnected { reason } => Self::Disconnected { reason },
            core::ConnectionState::AuthFailed => Self::AuthFailed,
        }
    }
}

/// A message received over chat.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ReceivedMessage {
    /// The message id.
    pub id: String,
    /// The dialog (from the room in groups, from the message in private chats).
    pub dialog_id: Option<String>,
    /// The sender's user id (0 if it cannot be read).
    pub sender_id: u64,
    /// The addressee in private chats; `None` in groups.
    pub recipient_id: Option<u64>,
    /// The text; may be empty when the message carries attachments.
    pub body: String,
    /// The files or links attached (uploaded to storage beforehand by the sender).
    pub attachments: Vec<Attachment>,
    /// Custom parameters; nested values are JSON object strings.
    pub custom: HashMap<String, String>,
    /// Unix seconds: when the sender sent it (else when the server stored it, else when it
    /// arrived).
    pub date_sent: i64,
    /// The server stores it in the dialog's history.
    pub save_to_history: bool,
    /// The sender asked for delivery markers.
    pub markable: bool,
    /// Delivered late: from the server's offline storage.
    pub delayed: bool,
    /// A copy of a message sent or received on another device of this user.
    pub carbon: bool,
    /// A group dialog message.
    pub group: bool,
}

impl From<core::ChatMessage> for ReceivedMessage {
    fn from(m: core::ChatMessage) -> Self {
        Self {
            id: m.id,
            dialog_id: m.dialog_id,
            sender_id: m.sender_id,
            recipient_id: m.recipient_id,
            body: m.body,
            attachments: m.attachments.into_iter().map(Into::into).collect(),
            custom: m.custom.into_iter().collect(),
            date_sent: m.date_sent,
            save_to_history: m.save_to_history,
            markable: m.markable,
            delayed: m.delayed,
            carbon: m.carbon,
            group: m.group,
        }
    }
}

/// A message to send over chat.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct OutgoingMessage {
    /// The dialog to send to.
    pub dialog_id: String,
    /// The opponent for a private dialog; `None` for group and public dialogs.
    #[uniffi(default)]
    pub recipient_id: Option<u64>,
    /// The text, at most 64 KB (UTF-8); may be empty only when there are attachments.
    #[uniffi(default = "")]
    pub body: String,
    /// Files or links to attach (upload files to storage first), at most 32.
    #[uniffi(default)]
    pub attachments: Vec<Attachment>,
    /// Custom parameters (keys must be XML names, not reserved).
    #[uniffi(default)]
    pub custom: HashMap<String, String>,
    /// Store in the dialog's history.
    #[uniffi(default = true)]
    pub save_to_history: bool,
    /// Unix seconds; `None` = now.
    #[uniffi(default)]
    pub date_sent: Option<i64>,
    /// Ask recipients for delivery markers.
    #[uniffi(default = true)]
    pub markable: bool,
    /// No push notification to offline recipients.
    #[uniffi(default = false)]
    pub silent: bool,
}

impl From<OutgoingMessage> for core::OutgoingMessage {
    fn from(m: OutgoingMessage) -> Self {
        Self {
            dialog_id: m.dialog_id,
            recipient_id: m.recipient_id,
            body: m.body,
            attachments: m.attachments.into_iter().map(Into::into).collect(),
            custom: m.custom.into_iter().collect(),
            save_to_history: m.save_to_history,
            date_sent: m.date_sent,
            markable: m.markable,
            silent: m.silent,
        }
    }
}

/// What happened to a message this client sent: sent (acknowledged by the server), failed
/// (lost with its connection), delivered to or read by a user.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum MessageStatus {
    /// The server acknowledged a message this client sent (also an edit, a delete or a
    /// system message sent over chat).
    Sent {
        /// The id of the message acknowledged.
        message_id: String,
    },
    /// A message this client sent was lost with its connection. Messages of `send_message`
    /// are sent again by the send queue; edits, deletes and system messages are not.
    Failed {
        /// The id of the message lost.
        message_id: String,
        /// Why, for logs and diagnostics (e.g. "lost with the connection"); not meant to
        /// be parsed.
        reason: String,
    },
    /// `user_id` received this user's message `message_id`.
    Delivered {
        /// The id of this user's message.
        message_id: String,
        /// The dialog, as the marker's sender gave it; `None` if they gave none.
        dialog_id: Option<String>,
        /// Who received it.
        user_id: u64,
    },
    /// `user_id` read this user's message `message_id`.
    Read {
        /// The id of this user's message.
        message_id: String,
        /// The dialog, as the marker's sender gave it; `None` if they gave none.
        dialog_id: Option<String>,
        /// Who read it.
        user_id: u64,
    },
}

/// A change to an existing message.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum MessageChange {
    /// New body; `last` = it is the dialog's newest message.
    Edited {
        /// The id of the message edited.
        message_id: String,
        /// The dialog: the room in groups; in private chats as the sender gave it (`None`
        /// if they gave none).
        dialog_id: Option<String>,
        /// Who edited it.
        user_id: u64,
        /// The new text.
        body: String,
        /// The sender says the message edited is the dialog's newest one.
        last: bool,
    },
    /// `user_id` deleted `message_id`.
    Deleted {
        /// The id of the message deleted.
        message_id: String,
        /// The dialog: the room in groups; in private chats as the sender gave it (`None`
        /// if they gave none).
        dialog_id: Option<String>,
        /// Who deleted it.
        user_id: u64,
    },
    /// `user_id` added and/or removed reactions.
    Reactions {
        /// The id of the message reacted to.
        message_id: String,
        /// The dialog: the room in groups; in private chats as the sender gave it (`None`
        /// if they gave none).
        dialog_id: Option<String>,
        /// Who reacted (0 if the server did not say).
        user_id: u64,
        /// The reactions added (e.g. emoji), possibly empty.
        add: Vec<String>,
        /// The reactions removed, possibly empty.
        remove: Vec<String>,
    },
}

/// A system message (sent to users only).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SystemMessage {
    /// The message id (empty if the sender gave none); a repeated id is not reported twice.
    pub id: String,
    /// The sender; 0 when the server sent it.
    pub sender_id: u64,
    /// The text (may be empty: the parameters often carry everything).
    pub body: String,
    /// Custom parameters, including `dialog_id` when the server sends one (e.g. for a new
    /// dialog); nested values are JSON object strings.
    pub custom: HashMap<String, String>,
}

/// Hears the connection state: the current one first, then every change.
///
/// Threads: called on this subscription's own thread (`cubechat-deliver`), one event at a
/// time, in order; never on the engine's threads, so a slow or blocking call delays only
/// this subscription. Events wait, none skipped, until the call returns; a subscription
/// 65,536 events behind ends (see `SubscriptionHandle`). Calling the client from here is
/// allowed.
#[uniffi::export(foreign)]
pub trait ConnectionListener: Send + Sync {
    /// An error or exception raised here is logged (the first one of a subscription, with
    /// its traceback when the language layer supplies it); later events are still delivered.
    fn on_state(&self, state: ConnectionState) -> Result<(), ChatError>;
}

/// Hears new messages (each id once).
///
/// Threads: called on this subscription's own thread (`cubechat-deliver`), one event at a
/// time, in order; never on the engine's threads, so a slow or blocking call delays only
/// this subscription. Events wait, none skipped, until the call returns; a subscription
/// 65,536 events behind ends (see `SubscriptionHandle`). Calling the client from here is
/// allowed.
#[uniffi::export(foreign)]
pub trait MessageListener: Send + Sync {
    /// An error or exception raised here is logged (the first one of a subscription, with
    /// its traceback when the language layer supplies it); later events are still delivered.
    fn on_message(&self, message: ReceivedMessage) -> Result<(), ChatError>;
}

/// Hears sent / failed / delivered / read statuses.
///
/// Threads: called on this subscription's own thread (`cubechat-deliver`), one event at a
/// time, in order; never on the engine's threads, so a slow or blocking call delays only
/// this subscription. Events wait, none skipped, until the call returns; a subscription
/// 65,536 events behind ends (see `SubscriptionHandle`). Calling the client from here is
/// allowed.
#[uniffi::export(foreign)]
pub trait StatusListener: Send + Sync {
    /// An error or exception raised here is logged (the first one of a subscription, with
    /// its traceback when the language layer supplies it); later events are still delivered.
    fn on_status(&self, status: MessageStatus) -> Result<(), ChatError>;
}

/// Hears typing: `composing` true when a user starts, false when they pause.
///
/// Threads: called on this subscription's own thread (`cubechat-deliver`), one event at a
/// time, in order; never on the engine's threads, so a slow or blocking call delays only
/// this subscription. Events wait, none skipped, until the call returns; a subscription
/// 65,536 events behind ends (see `SubscriptionHandle`). Calling the client from here is
/// allowed.
#[uniffi::export(foreign)]
pub trait TypingListener: Send + Sync {
    /// An error or exception raised here is logged (the first one of a subscription, with
    /// its traceback when the language layer supplies it); later events are still delivered.
    fn on_typing(
        &self,
        dialog_id: Option<String>,
        user_id: u64,
        composing: bool,
    ) -> Result<(), ChatError>;
}

/// Hears edits, deletions and reaction changes.
///
/// Threads: called on this subscription's own thread (`cubechat-deliver`), one event at a
/// time, in order; never on the engine's threads, so a slow or blocking call delays only
/// this subscription. Events wait, none skipped, until the call returns; a subscription
/// 65,536 events behind ends (see `SubscriptionHandle`). Calling the client from here is
/// allowed.
#[uniffi::export(foreign)]
pub trait MessageChangeListener: Send + Sync {
    /// An error or exception raised here is logged (the first one of a subscription, with
    /// its traceback when the language layer supplies it); later events are still delivered.
    fn on_change(&self, change: MessageChange) -> Result<(), ChatError>;
}

/// Hears system messages.
///
/// Threads: called on this subscription's own thread (`cubechat-deliver`), one event at a
/// time, in order; never on the engine's threads, so a slow or blocking call delays only
/// this subscription. Events wait, none skipped, until the call returns; a subscription
/// 65,536 events behind ends (see `SubscriptionHandle`). Calling the client from here is
/// allowed.
#[uniffi::export(foreign)]
pub trait SystemMessageListener: Send + Sync {
    /// An error or exception raised here is logged (the first one of a subscription, with
    /// its traceback when the language layer supplies it); later events are still delivered.
    fn on_system_message(&self, message: SystemMessage) -> Result<(), ChatError>;
}

/// Hears messages the server bounced (e.g. the recipient blocked this user).
///
/// Threads: called on this subscription's own thread (`cubechat-deliver`), one event at a
/// time, in order; never on the engine's threads, so a slow or blocking call delays only
/// this subscription. Events wait, none skipped, until the call returns; a subscription
/// 65,536 events behind ends (see `SubscriptionHandle`). Calling the client from here is
/// allowed.
#[uniffi::export(foreign)]
pub trait MessageErrorListener: Send + Sync {
    /// An error or exception raised here is logged (the first one of a subscription, with
    /// its traceback when the language layer supplies it); later events are still delivered.
    fn on_message_error(
        &self,
        message_id: String,
        code: u16,
        text: String,
    ) -> Result<(), ChatError>;
}

impl ChatClient {
    /// A subscription over the chat events, calling the listener call `f` maps each event to
    /// (on the subscription's own delivery thread, see `handle`). The event receiver is taken
    /// before this returns, so nothing after the call is missed.
    pub(crate) fn subscribe_events(
        &self,
        what: &'static str,
        f: impl Fn(core::ChatEvent) -> Option<Box<dyn FnOnce() -> Result<(), ChatError> + Send>>
            + Send
            + 'static,
    ) -> Result<Arc<SubscriptionHandle>, ChatError> {
        let rx = self.core().chat().subscribe_chat();
        SubscriptionHandle::deliver(what, None, rx, f)
    }
}

#[uniffi::export]
impl ChatClient {
    /// Connects to chat and returns once online. Afterwards the connection is kept alive
    /// and re-established by the reconnection policy until `disconnect_chat`/`destroy_chat`.
    /// Errors: `InvalidCredentials` (no retry), `Network` (including a server without TLS),
    /// `NotLoggedIn`, `InvalidInput` (already connected).
    /// Cancelling the call (asyncio task cancel or timeout, Kotlin coroutine cancel) drops
    /// the engine's future, which abandons the attempt: the client is left `Disconnected`
    /// and `connect_chat` can be called again at once. (UniFFI's Swift futures ignore task
    /// cancellation: there, `disconnect_chat` ends a pending attempt.)
    pub async fn connect_chat(&self, auth: ChatAuth) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.chat().connect_chat(auth.into()).await }).await
    }

    /// Closes the connection gracefully and stops reconnecting; `reconnect_now` connects
    /// again. Idempotent.
    pub async fn disconnect_chat(&self) -> Result<(), ChatError> {
        let c = self.core();
        run(async move {
            c.chat().disconnect_chat().await;
            Ok(())
        })
        .await
    }

    /// Closes the connection and forgets the chat credentials and joined rooms. Idempotent.
    pub async fn destroy_chat(&self) -> Result<(), ChatError> {
        let c = self.core();
        run(async move {
            c.chat().destroy_chat().await;
            Ok(())
        })
        .await
    }

    /// Reconnects at once (skipping the backoff delay, or after an auth failure).
    pub async fn reconnect_now(&self) -> Result<(), ChatError> {
        let c = self.core();
        run(async move {
            c.chat().reconnect_now().await;
            Ok(())
        })
        .await
    }

    /// Tells the SDK whether the device has a network: `false` stops reconnect attempts,
    /// `true` reconnects at once.
    pub async fn set_network_available(&self, available: bool) -> Result<(), ChatError> {
        let c = self.core();
        run(async move {
            c.chat().set_network_available(available);
            Ok(())
        })
        .await
    }

    /// The chat connection state now.
    pub fn connection_state(&self) -> ConnectionState {
        self.core().chat().connection_state().into()
    }

    /// Subscribes to connection states: the current state first, then every change.
    pub fn subscribe_connection(
        &self,
        listener: Arc<dyn ConnectionListener>,
    ) -> Result<Arc<SubscriptionHandle>, ChatError> {
        let (now, rx) = self.core().chat().subscribe_connection();
        SubscriptionHandle::forward("ConnectionListener", now.into(), rx, move |s| {
            listener.on_state(s)
        })
    }

    /// Subscribes to new messages.
    pub fn subscribe_messages(
        &self,
        listener: Arc<dyn MessageListener>,
    ) -> Result<Arc<SubscriptionHandle>, ChatError> {
        self.subscribe_events("MessageListener", move |e| match e {
            core::ChatEvent::Message(m) => {
                let l = listener.clone();
                Some(Box::new(move || l.on_message(m.into())))
            }
            _ => None,
        })
    }

    /// Subscribes to sent / failed / delivered / read statuses.
    pub fn subscribe_statuses(
        &self,
        listener: Arc<dyn StatusListener>,
    ) -> Result<Arc<SubscriptionHandle>, ChatError> {
        self.subscribe_events("StatusListener", move |e| {
            let status = match e {
                core::ChatEvent::Sent { message_id } => MessageStatus::Sent { message_id },
                core::ChatEvent::Failed { message_id, reason } => {
                    MessageStatus::Failed { message_id, reason }
                }
                core::ChatEvent::Delivered {
                    message_id,
                    dialog_id,
                    user_id,
                } => MessageStatus::Delivered {
                    message_id,
                    dialog_id,
                    user_id,
                },
                core::ChatEvent::Read {
                    message_id,
                    dialog_id,
                    user_id,
                } => MessageStatus::Read {
                    message_id,
                    dialog_id,
                    user_id,
                },
                _ => return None,
            };
            let l = listener.clone();
            Some(Box::new(move || l.on_status(status)))
        })
    }

    /// Subscribes to typing notifications.
    pub fn subscribe_typing(
        &self,
        listener: Arc<dyn TypingListener>,
    ) -> Result<Arc<SubscriptionHandle>, ChatError> {
        self.subscribe_events("TypingListener", move |e| match e {
            core::ChatEvent::Typing {
                dialog_id,
                user_id,
                composing,
            } => {
                let l = listener.clone();
                Some(Box::new(move || l.on_typing(dialog_id, user_id, composing)))
            }
            _ => None,
        })
    }

    /// Subscribes to edits, deletions and reaction changes.
    pub fn subscribe_message_changes(
        &self,
        listener: Arc<dyn MessageChangeListener>,
    ) -> Result<Arc<SubscriptionHandle>, ChatError> {
        self.subscribe_events("MessageChangeListener", move |e| {
            let change = match e {
                core::ChatEvent::Edited {
                    message_id,
                    dialog_id,
                    user_id,
                    body,
                    last,
                } => MessageChange::Edited {
                    message_id,
                    dialog_id,
                    user_id,
                    body,
                    last,
                },
                core::ChatEvent::Deleted {
                    message_id,
                    dialog_id,
                    user_id,
                } => MessageChange::Deleted {
                    message_id,
                    dialog_id,
                    user_id,
                },
                core::ChatEvent::Reactions {
                    message_id,
                    dialog_id,
                    user_id,
                    add,
                    remove,
                } => MessageChange::Reactions {
                    message_id,
                    dialog_id,
                    user_id,
                    add,
                    remove,
                },
                _ => return None,
            };
            let l = listener.clone();
            Some(Box::new(move || l.on_change(change)))
        })
    }

    /// Subscribes to system messages.
    pub fn subscribe_system_messages(
        &self,
        listener: Arc<dyn SystemMessageListener>,
    ) -> Result<Arc<SubscriptionHandle>, ChatError> {
        self.subscribe_events("SystemMessageListener", move |e| match e {
            core::ChatEvent::System(m) => {
                let l = listener.clone();
                let m = SystemMessage {
                    id: m.id,
                    sender_id: m.sender_id,
                    body: m.body,
                    custom: m.custom.into_iter().collect(),
                };
                Some(Box::new(move || l.on_system_message(m)))
            }
            _ => None,
        })
    }

    /// Subscribes to bounced messages.
    pub fn subscribe_message_errors(
        &self,
        listener: Arc<dyn MessageErrorListener>,
    ) -> Result<Arc<SubscriptionHandle>, ChatError> {
        self.subscribe_events("MessageErrorListener", move |e| match e {
            core::ChatEvent::MessageError {
                message_id,
                code,
                text,
            } => {
                let l = listener.clone();
                Some(Box::new(move || l.on_message_error(message_id, code, text)))
            }
            _ => None,
        })
    }

    /// Sends a message through the send queue and returns its id once the server
    /// acknowledged receiving it (state `Sent`). The message is in the store and its timeline
    /// (state `Queued`, `Added`) when the call starts, in call order with `enqueue_message`.
    /// A cut connection: it keeps waiting while chat reconnects, and the message goes out
    /// once. Chat stopped meanwhile (disconnected, destroyed, reconnection given up): it fails
    /// with `ChatNotConnected` and the message stays queued for the next connection. A bounce
    /// (privacy list, not an occupant) is acknowledged too: it comes as a message error and
    /// turns the state `Failed`. Errors: `InvalidInput` (empty or oversized, bad custom keys;
    /// nothing stored), `ChatNotConnected` (also when chat is not connecting or connected:
    /// nothing stored), `Network` (lost too often), `Cancelled` (`cancel_message`, store
    /// closed).
    pub async fn send_message(&self, message: OutgoingMessage) -> Result<String, ChatError> {
        // The echo is written here, in the runtime's context (its store tasks start).
        let sending = {
            let rt = rt()?;
            let _g = rt.enter();
            self.core().send_queue().send_message(message.into())
        };
        // Waiting for the outcome needs no runtime (a channel and the connection states):
        // the caller's executor polls it directly, no task spawned per message (issue 16).
        // Dropping the call's future drops only this wait; the message stays queued.
        sending?.await.map_err(ChatError::from)
    }

    /// Tells `sender_id` that their message `message_id` was delivered.
    pub async fn send_delivered(
        &self,
        dialog_id: String,
        message_id: String,
        sender_id: u64,
    ) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.chat().send_delivered(&dialog_id, &message_id, sender_id) }).await
    }

    /// Tells `sender_id` that their message `message_id` was read.
    pub async fn send_read(
        &self,
        dialog_id: String,
        message_id: String,
        sender_id: u64,
    ) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.chat().send_read(&dialog_id, &message_id, sender_id) }).await
    }

    /// Sends "typing" (`composing` true) or "stopped typing"; after "typing", "stopped"
    /// follows by itself when no new call comes within the idle time (default 30 s).
    pub async fn send_typing(
        &self,
        dialog_id: String,
        recipient_id: Option<u64>,
        composing: bool,
    ) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.chat().send_typing(&dialog_id, recipient_id, composing) }).await
    }

    /// Edits a message over chat (`last` = it is the dialog's newest message).
    pub async fn send_edit(
        &self,
        dialog_id: String,
        recipient_id: Option<u64>,
        message_id: String,
        body: String,
        last: bool,
    ) -> Result<String, ChatError> {
        let c = self.core();
        run(async move {
            c.chat()
                .send_edit(&dialog_id, recipient_id, &message_id, &body, last)
        })
        .await
    }

    /// Deletes a message over chat.
    pub async fn send_delete(
        &self,
        dialog_id: String,
        recipient_id: Option<u64>,
        message_id: String,
    ) -> Result<String, ChatError> {
        let c = self.core();
        run(async move { c.chat().send_delete(&dialog_id, recipient_id, &message_id) }).await
    }

    /// Sends a system message to a user over chat; returns its id.
    pub async fn send_chat_system_message(
        &self,
        user_id: u64,
        body: String,
        custom: HashMap<String, String>,
    ) -> Result<String, ChatError> {
        let c = self.core();
        run(async move {
            c.chat()
                .send_chat_system_message(user_id, &body, custom.into_iter().collect())
        })
        .await
    }

    /// Joins a group dialog's room (optional for sending and receiving; re-joined after a
    /// reconnect).
    pub async fn join_room(&self, dialog_id: String) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.chat().join_room(&dialog_id).await }).await
    }

    /// Leaves a group dialog's room.
    pub async fn leave_room(&self, dialog_id: String) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.chat().leave_room(&dialog_id) }).await
    }
}
