//! The real-time chat engine (protocol reference §6): one XMPP connection per [`Client`],
//! secured with STARTTLS or direct TLS, authenticated with SASL PLAIN as `{userId}-{appId}`,
//! kept alive, resumed (XEP-0198) or re-established by our own reconnection manager.
//!
//! Main types:
//! - [`ChatAuth`]: what `connect_chat` authenticates with;
//! - [`ConnectionState`]: subscribe with [`ChatSession::subscribe_connection`] (snapshot first);
//! - [`ChatEvent`]: every incoming message, marker, typing, edit, delete, reaction, system
//!   message and send status; subscribe with [`ChatSession::subscribe_chat`] (lossless, in order);
//! - [`OutgoingMessage`]: what [`SendQueue::send_message`] sends.
//! - privacy (block) lists, XEP-0016 with ConnectyCube semantics: [`PrivacyList`],
//!   [`ChatSession::create_privacy_list`], [`ChatSession::update_privacy_list`] and friends;
//! - last activity (XEP-0012) and its subscription ([`ChatSession::last_activity`],
//!   [`ChatSession::subscribe_last_activity`], [`ChatEvent::LastActivity`]), active/inactive
//!   ([`ChatSession::mark_inactive`]) and group presence ([`ChatEvent::OccupantJoined`],
//!   [`ChatSession::room_occupants`], [`ChatEvent::Kicked`]).
//!
//! Delivery guarantees: a resumed stream resends what was not acknowledged (repeats are
//! dropped by id); when resumption fails (or after a fresh login following a drop) joined
//! rooms are re-joined. This session emits live events only: what was missed during a gap
//! (group messages, which the server does not store offline) is not replayed as events;
//! the local store's sync (`Timeline::sync_local`, on every `Connected`) fetches it from REST
//! history into the store, where live views see it.
//!
//! # The layer and its imports
//!
//! This module is the XMPP session and nothing above it: the connection, its stanzas, the
//! reconnection state (`reconnect`), subscribers, iq requests, presence and privacy lists.
//! It may import `crate::config`, `crate::error`, `cubechat_wire` and third-party crates,
//! and never `crate::client`, `crate::store`, `crate::local`, `crate::chat` or `crate::auth`.
//! What it needs from above comes through `ChatHost` (the current user and token, a renewed
//! token after a rejected login, "the session is starting"),
//! handed in when the client is built. The public API (`ChatSession::connect_chat`,
//! `SendQueue::send_message`, ...) is a thin layer above, in `crate::realtime`, over the
//! session handle `ChatShared`.
//!
//! [`Client`]: crate::Client
//! [`ChatSession::create_privacy_list`]: crate::ChatSession::create_privacy_list
//! [`ChatSession::last_activity`]: crate::ChatSession::last_activity
//! [`ChatSession::mark_inactive`]: crate::ChatSession::mark_inactive
//! [`ChatSession::room_occupants`]: crate::ChatSession::room_occupants
//! [`SendQueue::send_message`]: crate::SendQueue::send_message
//! [`ChatSession::subscribe_chat`]: crate::ChatSession::subscribe_chat
//! [`ChatSession::subscribe_connection`]: crate::ChatSession::subscribe_connection
//! [`ChatSession::subscribe_last_activity`]: crate::ChatSession::subscribe_last_activity
//! [`ChatSession::update_privacy_list`]: crate::ChatSession::update_privacy_list

mod connector;
mod engine;
mod inbound;
mod iq;
mod presence;
mod privacy;
pub(crate) mod reconnect;
mod util;

use std::collections::BTreeMap;
use std::time::Duration;

pub use cubechat_wire::chat::Attachment;

pub(crate) use engine::{bench_inbound, bench_marker, bench_outbound, new_id, ChatShared, NoHost};
#[cfg(feature = "fuzzing")]
pub(crate) use engine::{check_message_content, message_stanza};
pub(crate) use util::{
    check_attachments, check_params_size, check_params_text, check_text, now_unix,
};
pub use util::{
    is_xml_char, MAX_ATTACHMENTS, MAX_ATTACHMENT_BYTES, MAX_BODY, MAX_CUSTOM_BYTES,
    MAX_CUSTOM_PARAMS,
};

/// The future of [`ChatHost::renewed_token`].
pub(crate) type HostFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + Send + 'a>>;

/// What the chat session needs from the layer above it (the client), handed in when the
/// client is built and held weakly.
pub(crate) trait ChatHost: Send + Sync {
    /// The user of the current REST session, if any.
    fn user_id(&self) -> Option<u64>;
    /// The current REST session token, if any (re-read before every token login).
    fn session_token(&self) -> Option<String>;
    /// A token for a chat login the server just rejected with `stale`, if a newer one can
    /// be had (the REST session is renewed from the stored login).
    fn renewed_token<'a>(&'a self, stale: &'a str) -> HostFuture<'a>;
    /// A session for `user_id` is starting (its send queue should be ready to drain).
    fn chat_starting(&self, user_id: u64);
}

/// Checks a dialog id the way every chat call does.
pub(crate) fn check_dialog(id: &str) -> crate::Result<()> {
    util::check_dialog_id(id)
}

/// Checks a message body (text required, size limit) the way `send_message` does.
pub(crate) fn check_body(body: &str) -> crate::Result<()> {
    util::check_content(body, false)
}
pub use privacy::{PrivacyAction, PrivacyList, PrivacyListItem, PrivacyListNames};

/// What the chat login authenticates with (SASL PLAIN, authcid `{userId}-{appId}`).
#[derive(Clone, PartialEq)]
pub enum ChatAuth {
    /// The user's password. `user_id` defaults to the current REST session's user.
    Password {
        /// The user; `None` = the user of the current REST session.
        user_id: Option<u64>,
        /// The password. Kept in memory for reconnects only, never logged.
        password: String,
    },
    /// The current REST session token (re-read before every reconnect, so a renewed
    /// session keeps working).
    SessionToken,
}

impl std::fmt::Debug for ChatAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password { user_id, .. } => f
                .debug_struct("Password")
                .field("user_id", user_id)
                .field("password", &crate::config::Redacted)
                .finish(),
            Self::SessionToken => f.write_str("SessionToken"),
        }
    }
}

impl std::fmt::Display for ChatAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password { user_id, .. } => write!(
                f,
                "Password(user_id={user_id:?}, password={})",
                crate::config::REDACTED
            ),
            Self::SessionToken => f.write_str("SessionToken"),
        }
    }
}

/// The chat connection's state.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionState {
    /// Never connected, or destroyed.
    Idle,
    /// The first connection of `connect_chat` is being established.
    Connecting,
    /// Online: bound, carbons and presence sent.
    Connected,
    /// The connection dropped; attempt number `attempt` starts after `next_delay`.
    /// `Connected` follows when an attempt succeeds, `Disconnected` when they run out.
    Reconnecting {
        /// The attempt about to start, from 1 (back to 1 after a connection that stayed
        /// up, or after `reconnect_now`).
        attempt: u32,
        /// How long until it starts: zero for the first attempt after a cut, after
        /// `reconnect_now` or when the network comes back; after a failed attempt, the
        /// policy's backoff with jitter.
        next_delay: Duration,
    },
    /// Offline and not trying (closed by the app, network unavailable, reconnection disabled
    /// or given up). `reconnect_now` tries again.
    Disconnected {
        /// Why, for logs and diagnostics (e.g. "disconnected by the app", "network
        /// unavailable", "gave up after 5 attempts: ..."); not meant to be parsed.
        reason: String,
    },
    /// The server rejected the credentials; no reconnection until `reconnect_now` or a new
    /// `connect_chat`.
    AuthFailed,
}

/// A message received over chat.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    /// The message id (24 hex for ConnectyCube clients).
    pub id: String,
    /// The dialog: from the room JID in group chats, from `extraParams` in private chats
    /// (`None` if the sender gave none).
    pub dialog_id: Option<String>,
    /// The sender's user id (the room nickname in group chats; 0 if it cannot be read).
    pub sender_id: u64,
    /// The addressee in private chats; `None` in group chats.
    pub recipient_id: Option<u64>,
    /// The text; may be empty when the message carries attachments.
    pub body: String,
    /// The files or links attached (uploaded to storage beforehand by the sender).
    pub attachments: Vec<Attachment>,
    /// Custom parameters; nested values are JSON object strings.
    pub custom: BTreeMap<String, String>,
    /// Unix seconds: `date_sent` of the message, else the `<delay>` stamp, else now.
    pub date_sent: i64,
    /// Stored by the server (`save_to_history`).
    pub save_to_history: bool,
    /// The sender asked for delivery markers.
    pub markable: bool,
    /// Delivered late: from the server's offline storage (`<delay>`).
    pub delayed: bool,
    /// A carbon copy: a message of this user sent from another device, or received there.
    pub carbon: bool,
    /// True for group chat messages.
    pub group: bool,
}

/// A system message (`headline`, module `SystemNotifications`).
#[derive(Debug, Clone, PartialEq)]
pub struct SystemMessage {
    /// The message id (empty if the sender gave none); a repeated id is not reported twice.
    pub id: String,
    /// The sender, 0 if the server sent it.
    pub sender_id: u64,
    /// The text (may be empty: the parameters often carry everything).
    pub body: String,
    /// Custom parameters, including `dialog_id` when the server sends one (e.g. for a new
    /// dialog); nested values are JSON object strings.
    pub custom: BTreeMap<String, String>,
}

/// Everything the chat connection reports, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// A new message (never twice the same id).
    Message(ChatMessage),
    /// The server acknowledged (XEP-0198) a message this client sent (also an edit, a
    /// delete or a system message sent over chat).
    Sent {
        /// The id of the message acknowledged.
        message_id: String,
    },
    /// A message this client sent was lost with its session and must be sent again (the
    /// send queue does so by itself for messages of `send_message`).
    Failed {
        /// The id of the message lost.
        message_id: String,
        /// Why, for logs and diagnostics (e.g. "lost with the connection"); not meant to
        /// be parsed.
        reason: String,
    },
    /// `user_id` received `message_id`.
    Delivered {
        /// The id of this user's message.
        message_id: String,
        /// The dialog, as the marker's sender gave it; `None` if they gave none.
        dialog_id: Option<String>,
        /// Who received it.
        user_id: u64,
    },
    /// `user_id` read `message_id`.
    Read {
        /// The id of this user's message.
        message_id: String,
        /// The dialog, as the marker's sender gave it; `None` if they gave none.
        dialog_id: Option<String>,
        /// Who read it.
        user_id: u64,
    },
    /// `user_id` started (`composing`) or stopped typing.
    Typing {
        /// The dialog: the room in group chats; in private chats as the sender gave it
        /// (`None` if they gave none).
        dialog_id: Option<String>,
        /// Who types.
        user_id: u64,
        /// `true` when they start typing, `false` when they stop (or pause).
        composing: bool,
    },
    /// `message_id` got a new body; `last` = it is the dialog's newest message.
    Edited {
        /// The id of the message edited.
        message_id: String,
        /// The dialog: the room in group chats; in private chats as the sender gave it
        /// (`None` if they gave none).
        dialog_id: Option<String>,
        /// Who edited it.
        user_id: u64,
        /// The new text.
        body: String,
        /// The sender says the message edited is the dialog's newest one.
        last: bool,
    },
    /// `message_id` was deleted by `user_id`.
    Deleted {
        /// The id of the message deleted.
        message_id: String,
        /// The dialog: the room in group chats; in private chats as the sender gave it
        /// (`None` if they gave none).
        dialog_id: Option<String>,
        /// Who deleted it.
        user_id: u64,
    },
    /// `user_id` changed reactions on `message_id`.
    Reactions {
        /// The id of the message reacted to.
        message_id: String,
        /// The dialog: the room in group chats; in private chats as the sender gave it
        /// (`None` if they gave none).
        dialog_id: Option<String>,
        /// Who reacted (0 if the stanza did not say).
        user_id: u64,
        /// The reactions added (e.g. emoji), possibly empty.
        add: Vec<String>,
        /// The reactions removed, possibly empty.
        remove: Vec<String>,
    },
    /// A system message.
    System(SystemMessage),
    /// The server bounced a message (e.g. the recipient blocked this user).
    MessageError {
        /// The id of the message bounced (empty if the server gave none).
        message_id: String,
        /// The error code the server sent (e.g. 503 for a blocked recipient; 0 if none).
        code: u16,
        /// The error text, empty if the server sent none.
        text: String,
    },
    /// A user this client subscribed to ([`ChatSession::subscribe_last_activity`]) came online
    /// (`seconds` = 0) or went offline (seconds since last seen; cubeserver reports at least 1, so
    /// 0 always means online).
    ///
    /// [`ChatSession::subscribe_last_activity`]: crate::ChatSession::subscribe_last_activity
    LastActivity {
        /// The user whose activity changed.
        user_id: u64,
        /// 0 = online now; otherwise seconds since the user was last seen.
        seconds: u64,
    },
    /// Another user joined a room this client is in (also reported for the occupants present
    /// when this client joins).
    OccupantJoined {
        /// The group dialog whose room it is.
        dialog_id: String,
        /// Who joined.
        user_id: u64,
    },
    /// Another user left a room this client is in.
    OccupantLeft {
        /// The group dialog whose room it is.
        dialog_id: String,
        /// Who left.
        user_id: u64,
    },
    /// This client was removed from a room (status 301 ban/kick or 307 kick);
    /// `initiator_id` is the user who did it, when the server says.
    Kicked {
        /// The group dialog whose room this client was removed from (it is not re-joined
        /// after a reconnect).
        dialog_id: String,
        /// Who removed this client; `None` when the server does not say.
        initiator_id: Option<u64>,
    },
}

/// A message to send over chat.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    /// The dialog to send to (ASCII letters, digits, `_`, `-`, `.`).
    pub dialog_id: String,
    /// `Some(opponent)` for a private dialog (addressed to the opponent's user JID, the
    /// dialog id in `extraParams`); `None` for a group dialog (room JID, `groupchat`).
    pub recipient_id: Option<u64>,
    /// The text, at most [`MAX_BODY`] bytes; may be empty only when there are attachments.
    pub body: String,
    /// Files or links to attach (upload files to storage first), at most
    /// [`MAX_ATTACHMENTS`].
    pub attachments: Vec<Attachment>,
    /// Custom parameters: keys must be XML names and not reserved keys.
    pub custom: BTreeMap<String, String>,
    /// Store in the dialog's history (default true).
    pub save_to_history: bool,
    /// Unix seconds; `None` = now.
    pub date_sent: Option<i64>,
    /// Ask recipients for delivery markers.
    pub markable: bool,
    /// No push notification to offline recipients.
    pub silent: bool,
}

impl OutgoingMessage {
    /// A text message with the defaults (saved to history, sent now).
    pub fn new(
        dialog_id: impl Into<String>,
        recipient_id: Option<u64>,
        body: impl Into<String>,
    ) -> Self {
        Self {
            dialog_id: dialog_id.into(),
            recipient_id,
            body: body.into(),
            attachments: Vec::new(),
            custom: BTreeMap::new(),
            save_to_history: true,
            date_sent: None,
            markable: false,
            silent: false,
        }
    }
}

/// The stream of chat events (an [`EventStream`](crate::stream::EventStream)).
pub type ChatEvents = crate::stream::EventStream<ChatEvent>;
/// The stream of connection states (an [`EventStream`](crate::stream::EventStream)).
pub type ConnectionStates = crate::stream::EventStream<ConnectionState>;
