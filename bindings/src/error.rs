//! The one error type apps see (`ChatException` in Kotlin, `ChatError` in Swift and Python).
//! Each variant is something an app would handle differently; messages never carry a
//! password, a token or a message body.

use cubechat_core::Error as CoreError;

/// An error from any cubechat call.
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum ChatError {
    /// The app passed something unusable (empty or oversized value, bad config). Nothing was
    /// sent; fix the input.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What was wrong with the input.
        reason: String,
    },
    /// The server could not be reached, or the connection broke or timed out. Retry later.
    #[error("network: {reason}")]
    Network {
        /// What went wrong, in words (no secret, no message body).
        reason: String,
    },
    /// Wrong login or password. Ask the user again.
    #[error("invalid credentials: {reason}")]
    InvalidCredentials {
        /// What went wrong, in words (no secret, no message body).
        reason: String,
    },
    /// The application id or auth key was rejected. A configuration error.
    #[error("application rejected: {reason}")]
    ApplicationRejected {
        /// What went wrong, in words (no secret, no message body).
        reason: String,
    },
    /// The session signature was rejected: wrong auth secret, or the device clock is far off.
    #[error("signature rejected: {reason}")]
    SignatureRejected {
        /// What went wrong, in words (no secret, no message body).
        reason: String,
    },
    /// The session expired and could not be renewed. Log in again.
    #[error("session expired: {reason}")]
    SessionExpired {
        /// What went wrong, in words (no secret, no message body).
        reason: String,
    },
    /// The call needs the chat connection: call `connect_chat` first (or again after
    /// `disconnect_chat`/`destroy_chat`).
    #[error("chat is not connected")]
    ChatNotConnected,
    /// The call needs a logged-in session and there is none.
    #[error("not logged in")]
    NotLoggedIn,
    /// Not allowed for this user.
    #[error("forbidden: {reason}")]
    Forbidden {
        /// What went wrong, in words (no secret, no message body).
        reason: String,
    },
    /// The thing asked for does not exist.
    #[error("not found: {reason}")]
    NotFound {
        /// What went wrong, in words (no secret, no message body).
        reason: String,
    },
    /// Any other error status from the server (validation, rate limit, 5xx).
    #[error("server {code}: {reason}")]
    Server {
        /// The HTTP status.
        code: u16,
        /// The server's error message (no secret).
        reason: String,
    },
    /// The server asks the app to slow down (HTTP 429); `retry_after_ms` is the wait it
    /// advised, when it gave one. Idempotent calls were already retried (at most twice, for
    /// advised waits up to 30 s); try again after the advised wait.
    #[error("rate limited by the server")]
    RateLimited {
        /// How long the server asked to wait before retrying, in milliseconds, when it said.
        retry_after_ms: Option<u64>,
    },
    /// The server is temporarily unavailable (HTTP 503); `retry_after_ms` is the wait it
    /// advised, when it gave one. Idempotent calls were already retried; try again later.
    #[error("server busy")]
    ServerBusy {
        /// How long the server asked to wait before retrying, in milliseconds, when it said.
        retry_after_ms: Option<u64>,
    },
    /// The server's answer was malformed. Usually a server or proxy problem.
    #[error("protocol: {reason}")]
    Protocol {
        /// What went wrong, in words (no secret, no message body).
        reason: String,
    },
    /// The app cancelled the operation (a `CancelToken`, or the calling task was cancelled).
    #[error("cancelled")]
    Cancelled,
    /// A push payload is not a ConnectyCube chat push (`parse_chat_push`): not JSON, too
    /// large or deep, or without dialog id and sender. Show the push as it is.
    #[error("not a chat push: {reason}")]
    NotChatPush {
        /// What is missing (never the payload).
        reason: String,
    },
    /// The local store could not be read or written (disk full, no permission). Nothing was
    /// half-written; retry once the device has space.
    #[error("local store: {reason}")]
    Store {
        /// What went wrong, in words (no secret, no message body).
        reason: String,
    },
    /// The local store file is damaged or not a database. It was left untouched: the app may
    /// move it aside (or delete it) and open a fresh store, which re-syncs from the server
    /// (messages still queued in the damaged file are lost then).
    #[error("local store is corrupt: {reason}")]
    StoreCorrupt {
        /// What went wrong, in words (no secret, no message body).
        reason: String,
    },
    /// The local store was written by a newer cubechat (schema `found` > `supported`). It was
    /// left untouched; update the app.
    #[error("local store schema {found} is newer than supported {supported}")]
    StoreTooNew {
        /// The schema version found in the store file.
        found: u32,
        /// The newest schema version this library knows.
        supported: u32,
    },
    /// A bug in cubechat (including a caught panic) or in a listener. Report it.
    #[error("internal: {reason}")]
    Internal {
        /// What went wrong, in words (no secret, no message body).
        reason: String,
    },
}

impl From<CoreError> for ChatError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::InvalidInput(message) => Self::InvalidInput { reason: message },
            CoreError::Network(message) => Self::Network { reason: message },
            CoreError::InvalidCredentials(message) => Self::InvalidCredentials { reason: message },
            CoreError::ApplicationRejected(message) => {
                Self::ApplicationRejected { reason: message }
            }
            CoreError::SignatureRejected(message) => Self::SignatureRejected { reason: message },
            CoreError::SessionExpired(message) => Self::SessionExpired { reason: message },
            CoreError::NotLoggedIn => Self::NotLoggedIn,
            CoreError::ChatNotConnected => Self::ChatNotConnected,
            CoreError::Cancelled => Self::Cancelled,
            CoreError::Forbidden(message) => Self::Forbidden { reason: message },
            CoreError::NotFound(message) => Self::NotFound { reason: message },
            CoreError::Server { status, message } => Self::Server {
                code: status,
                reason: message,
            },
            CoreError::RateLimited { retry_after } => Self::RateLimited {
                retry_after_ms: retry_after
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            },
            CoreError::ServerBusy { retry_after } => Self::ServerBusy {
                retry_after_ms: retry_after
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            },
            CoreError::Protocol(message) => Self::Protocol { reason: message },
            CoreError::NotChatPush(message) => Self::NotChatPush { reason: message },
            CoreError::Store(message) => Self::Store { reason: message },
            CoreError::StoreCorrupt(message) => Self::StoreCorrupt { reason: message },
            CoreError::StoreTooNew { found, supported } => Self::StoreTooNew { found, supported },
        }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for ChatError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Internal {
            reason: format!("{}{}", crate::handle::LISTENER_FAILED, e.reason),
        }
    }
}
