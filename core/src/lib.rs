//! `cubechat-core`: the cubechat engine, written once and shipped to every platform through
//! the `cubechat-ffi` facade.
//!
//! It speaks the ConnectyCube wire protocol. This crate is plain async Rust: it knows
//! nothing of FFI. Its main types are:
//! - [`Config`]: everything a [`Client`] needs, validated up front;
//! - [`Client`]: sessions, sign-up and log-in over REST ([`auth`]), the chat REST API
//!   ([`chat`]) and cloud storage for attachments ([`storage`]);
//! - [`model`]: how wire fields read for apps (tags as a list, `read` as a flag, custom
//!   parameters as text, absent counters as 0);
//! - [`Error`]: precise errors, never carrying a secret or a message body;
//! - [`SessionEvent`]: what happens to the session (created, renewed, expired, ended);
//! - [`EventStream`]: the one subscription type (unbounded, in order, lossless) every
//!   `subscribe_*`/`watch_*` method returns next to its snapshot;
//! - [`store`] and [`local`]: the offline-first local store, live dialog list and timelines
//!   (changes by position: [`VectorDiff`], [`view`]) and the persistent send queue
//!   ([`LocalMessage`], [`Sending`]: every outgoing message goes through it);
//! - feature objects over the client's session: [`users::Users`] (`client.users()`: lookups,
//!   the own profile, online users, users kept in the store with a live view),
//!   [`address_book::AddressBook`] (`client.contacts()`) and [`push::Push`] (`client.push()`),
//!   plus [`push::parse_chat_push`] and [`push::PushSenderLookup`], which need no client;
//! - [`xmpp`]: the real-time chat connection ([`ChatAuth`], [`ConnectionState`], [`ChatEvent`]).

#![warn(missing_docs)]

pub mod address_book;
pub mod api;
pub mod auth;
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

pub use auth::{LoginId, SessionEvent};
pub use client::Client;
pub use config::{ChatEndpoint, ChatOptions, Config, ReconnectPolicy, Timeouts, TlsOptions};
pub use cubechat_wire::auth::{Session, User, UserParams};
pub use error::{Error, Result};
pub use local::{DialogsEvent, Sending, TimelineEvent};
pub use model::{DialogModel, MessageModel, UserModel};
pub use store::{LocalMessage, MessageState, QueuedFile, Store};
pub use stream::EventStream;
pub use view::VectorDiff;
pub use xmpp::{
    ChatAuth, ChatEvent, ChatEvents, ChatMessage, ConnectionState, ConnectionStates,
    OutgoingMessage, PrivacyAction, PrivacyList, PrivacyListItem, PrivacyListNames, SystemMessage,
};
