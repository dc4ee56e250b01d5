//! `cubechat-ffi`: the thin UniFFI facade over `cubechat-core`, and the only library that
//! apps link (Kotlin/Android, Swift/iOS, Python).
//!
//! It owns the single tokio runtime (`runtime`), logging setup (`logging`), the flat
//! [`ChatError`], conversions between core and exported types (`convert`), listeners and
//! their [`SubscriptionHandle`]s, chat REST (`chat`), cloud storage (`storage`),
//! real-time chat (`realtime`), presence: privacy lists, last activity, groups
//! (`presence`), and offline-first chat: the local store, live dialog list and timelines,
//! the persistent send queue (`local`), users and the address book (`users`), and push
//! subscriptions, events and the client-less push parser (`push`).
//! No protocol logic lives here.

#![warn(missing_docs)]

uniffi::setup_scaffolding!();

mod chat;
mod client;
mod convert;
mod error;
mod handle;
mod local;
mod logging;
mod presence;
mod push;
mod realtime;
mod runtime;
mod storage;
mod users;

pub use chat::{
    Attachment, ChatMessage, DeleteResult, Dialog, DialogPage, DialogType, DialogUpdate, Filter,
    FilterOp, ListParams, NewDialog, NewMessage, Reactions, SearchQuery, SearchResults,
    UnreadCounts,
};
pub use client::{ChatClient, SessionListener};
pub use convert::{ClientConfig, LoginId, NewUser, ReconnectConfig, Session, SessionEvent, User};
pub use error::ChatError;
#[cfg(feature = "test-hooks")]
pub use handle::live_subscription_count;
pub use handle::SubscriptionHandle;
pub use local::{
    DialogListEvent, DialogListListener, MessageState, QueuedFile, TimelineEvent, TimelineListener,
    TimelineMessage,
};
pub use logging::{init_platform, LogConfig, LogLevel, LogRecord, LogSink};
pub use presence::{
    LastActivityListener, PresenceEvent, PresenceListener, PrivacyList, PrivacyListItem,
    PrivacyListNames,
};
pub use push::{
    parse_chat_push, ChatPush, DevicePlatform, NewSubscription, Push, PushEnvironment, PushEvent,
    PushSenderLookup, SentPushEvent, Subscription,
};
pub use realtime::{
    ChatAuth, ConnectionListener, ConnectionState, MessageChange, MessageChangeListener,
    MessageErrorListener, MessageListener, MessageStatus, OutgoingMessage, ReceivedMessage,
    StatusListener, SystemMessage, SystemMessageListener, TypingListener,
};
pub use runtime::shutdown;
#[cfg(feature = "test-hooks")]
pub use runtime::{trigger_test_panic, trigger_test_panic_async};
pub use storage::{
    attachment_from_blob, Blob, BlobPage, CancelToken, TransferListener, UploadOptions,
};
pub use users::{
    AddressBook, Contact, ProfileUpdate, RegisteredContact, RejectedContact, UploadMode,
    UploadResult, UserListener, UserSearchPage, Users,
};
