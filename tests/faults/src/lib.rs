//! Cubechat's own fault suite (test support, never shipped).
//!
//! - [`proxy`]: a fault-injecting TCP proxy on 127.0.0.1 (cut, stall, truncate, slow; on a
//!   schedule or at random with a seed).
//! - [`xmpp`]: a hostile XMPP server for the engine's tests (malformed XML, deep nesting, huge
//!   stanzas, floods).
//! - [`rest`]: a hostile REST server for the engine's tests (wrong JSON types, truncated bodies,
//!   HTML error pages, 429 with Retry-After, redirect loops, slowloris).
//! - [`client`]: a hostile XMPP client for cubeserver.

pub mod client;
pub mod proxy;
pub mod rest;
pub mod xmpp;
