//! ConnectyCube wire types shared by the cubechat engine (`cubechat-core`) and the local
//! backend (`cubeserver`).
//!
//! Everything here is plain data plus the few pure rules both sides must agree on: JSON
//! shapes of sessions, users and errors ([`auth`], [`error`]), the legacy HMAC-SHA1 session
//! signature ([`signature`]), and time formats ([`time`]); users, the address book and push
//! ([`users`], [`address_book`], [`push`]). The official JS SDK tests against
//! cubeserver keep the two sides from agreeing on a mistake.

#![warn(missing_docs)]

pub mod address_book;
pub mod auth;
pub mod chat;
pub mod error;
pub mod push;
pub mod signature;
pub mod stanza;
pub mod time;
pub mod users;
pub mod xmlguard;
