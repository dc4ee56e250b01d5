//! `cubechat-core`: the cubechat engine, written once and shipped to every platform through
//! the `cubechat-ffi` facade.
//!
//! It speaks the ConnectyCube wire protocol. This crate is plain async Rust: it knows
//! nothing of FFI. Its main types are:
//! - [`Config`]: everything a [`Client`] needs, validated up front;
//! - [`Client`]: the entry point, a small set of accessors to feature objects: the REST
//!   session ([`Api`]) and over it sessions and users ([`Auth`], `client.auth()`), dialogs
//!   and messages ([`Dialogs`], [`Messages`]: the chat REST API) and cloud files for
//!   attachments ([`Files`]);
//! - [`model`]: how wire fields read for apps (tags as a list, `read` as a flag, custom
//!   parameters as text, absent counters as 0);
//! - [`Error`]: precise errors, never carrying a secret or a message body;
//! - [`SessionEvent`]: what happens to the session (created, renewed, expired, ended);
//! - [`EventStream`]: the one subscription type (unbounded, in order, lossless) every
//!   `subscribe_*`/`watch_*` method returns next to its snapshot;
//! - [`store`] and [`local`]: the offline-first local store, live dialog list and timelines
//!   ([`Timeline`]; changes by position: [`VectorDiff`], [`view`]) and the persistent send
//!   queue ([`SendQueue`], [`LocalMessage`], [`Sending`]: every outgoing message goes through
//!   it);
//! - feature objects over the client's session: [`users::Users`] (`client.users()`: lookups,
//!   the own profile, online users, users kept in the store with a live view),
//!   [`address_book::AddressBook`] (`client.contacts()`) and [`push::Push`] (`client.push()`),
//!   plus [`push::parse_chat_push`] and [`push::PushSenderLookup`], which need no client;
//! - [`xmpp`]: the real-time chat connection ([`ChatSession`], `client.chat()`; [`ChatAuth`],
//!   [`ConnectionState`], [`ChatEvent`]).

#![warn(missing_docs)]

pub mod address_book;
pub mod api;
pub mod auth;
#[doc(hidden)]
pub mod bench_support;
pub mod chat;
pub mod client;
pub mod config;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod local;
pub mod model;
pub mod push;
mod realtime;
pub mod rest;
pub mod storage;
pub mod store;
pub mod stream;
pub mod users;
pub mod view;
pub mod xmpp;

pub use api::{Api, LoginId, SessionEvent};
pub use auth::Auth;
pub use chat::{Dialogs, Messages};
pub use client::Client;
pub use config::{ChatEndpoint, ChatOptions, Config, ReconnectPolicy, Timeouts, TlsOptions};
pub use cubechat_wire::auth::{Session, User, UserParams};
pub use error::{Error, Result};
pub use local::{DialogsEvent, SendQueue, Sending, Timeline, TimelineEvent};
pub use model::{DialogModel, MessageModel, UserModel};
pub use realtime::ChatSession;
pub use storage::Files;
pub use store::{LocalMessage, MessageState, QueuedFile, Store};
pub use stream::EventStream;
pub use view::VectorDiff;
pub use xmpp::{
    ChatAuth, ChatEvent, ChatEvents, ChatMessage, ConnectionState, ConnectionStates,
    OutgoingMessage, PrivacyAction, PrivacyList, PrivacyListItem, PrivacyListNames, SystemMessage,
};
