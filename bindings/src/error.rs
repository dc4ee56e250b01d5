//! The one error type apps see (`ChatException` in Kotlin, `ChatError` in Swift and Python).
//! Each variant is something an app would handle differently; messages never carry a
//! password, a token or a message body.

use cubechat_core::Error as CoreError;

/// An error from any cubechat call.
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum ChatError {
    /// The app passed something unusable (empty or oversized value, bad config). Nothing was
    /// sent; fix the input.
    #[error("invalid input: {message}")]
    InvalidInput { message: String },
    /// The server could not be reached, or the connection broke or timed out. Retry later.
    #[error("network: {message}")]
    Network { message: String },
    /// Wrong login or password. Ask the user again.
    #[error("invalid credentials: {message}")]
    InvalidCredentials { message: String },
    /// The application id or auth key was rejected. A configuration error.
    #[error("application rejected: {message}")]
    ApplicationRejected { message: String },
    /// The session signature was rejected: wrong auth secret, or the device clock is far off.
    #[error("signature rejected: {message}")]
    SignatureRejected { message: String },
    /// The session expired and could not be renewed. Log in again.
    #[error("session expired: {message}")]
    SessionExpired { message: String },
    /// The call needs a logged-in session and there is none.
    #[error("not logged in")]
    NotLoggedIn,
    /// Not allowed for this user.
    #[error("forbidden: {message}")]
    Forbidden { message: String },
    /// The thing asked for does not exist.
    #[error("not found: {message}")]
    NotFound { message: String },
    /// Any other error status from the server (validation, rate limit, 5xx).
    #[error("server {code}: {message}")]
    Server { code: u16, message: String },
    /// The server's answer was malformed. Usually a server or proxy problem.
    #[error("protocol: {message}")]
    Protocol { message: String },
    /// A bug in cubechat (including a caught panic) or in a listener. Report it.
    #[error("internal: {message}")]
    Internal { message: String },
}

impl From<CoreError> for ChatError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::InvalidInput(message) => Self::InvalidInput { message },
            CoreError::Network(message) => Self::Network { message },
            CoreError::InvalidCredentials(message) => Self::InvalidCredentials { message },
            CoreError::ApplicationRejected(message) => Self::ApplicationRejected { message },
            CoreError::SignatureRejected(message) => Self::SignatureRejected { message },
            CoreError::SessionExpired(message) => Self::SessionExpired { message },
            CoreError::NotLoggedIn => Self::NotLoggedIn,
            CoreError::Forbidden(message) => Self::Forbidden { message },
            CoreError::NotFound(message) => Self::NotFound { message },
            CoreError::Server { status, message } => Self::Server {
                code: status,
                message,
            },
            CoreError::Protocol(message) => Self::Protocol { message },
        }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for ChatError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Internal {
            message: format!("listener failed: {}", e.reason),
        }
    }
}
