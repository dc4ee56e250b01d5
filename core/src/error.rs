//! Errors of the engine. Each variant is something a caller can tell apart and act on; none
//! carries a password, a token or a message body.

/// Result alias of the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, as precisely as the engine knows it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The caller gave something unusable (empty or oversized value, bad config, unknown id
    /// format). Nothing was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The server could not be reached, or the connection broke or timed out.
    #[error("network: {0}")]
    Network(String),
    /// The login or password was rejected.
    #[error("invalid credentials: {0}")]
    InvalidCredentials(String),
    /// The application id or auth key was rejected.
    #[error("application rejected: {0}")]
    ApplicationRejected(String),
    /// The session signature was rejected: wrong auth secret, or the clock is far off.
    #[error("signature rejected: {0}")]
    SignatureRejected(String),
    /// The session token expired or is unknown and could not be renewed: log in again.
    #[error("session expired: {0}")]
    SessionExpired(String),
    /// The call needs the chat connection and `connect_chat` was not called (or the chat was
    /// disconnected or destroyed).
    #[error("chat is not connected")]
    ChatNotConnected,
    /// The call needs a session (or a user session) and there is none.
    #[error("not logged in")]
    NotLoggedIn,
    /// The server refused the call for lack of permission.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Any other error status from the server (validation 4xx, 5xx other than 503).
    #[error("server {status}: {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The server's error message (no secret).
        message: String,
    },
    /// The server asks the app to slow down (HTTP 429). `retry_after` is the wait it advised
    /// (`Retry-After`), when it gave one. Idempotent calls were already retried.
    #[error("rate limited by the server{}", after(.retry_after))]
    RateLimited {
        /// How long the server asked to wait before retrying, when it said.
        retry_after: Option<std::time::Duration>,
    },
    /// The server is temporarily unavailable (HTTP 503). `retry_after` is the wait it
    /// advised (`Retry-After`), when it gave one. Idempotent calls were already retried.
    #[error("server busy{}", after(.retry_after))]
    ServerBusy {
        /// How long the server asked to wait before retrying, when it said.
        retry_after: Option<std::time::Duration>,
    },
    /// The operation was cancelled by the app (a cancel token, or its task was cancelled).
    #[error("cancelled")]
    Cancelled,
    /// The server answered with something that is not the expected shape (malformed JSON,
    /// missing fields).
    #[error("protocol: {0}")]
    Protocol(String),
    /// A push payload is not a ConnectyCube chat push (not JSON, too large or deep, or no
    /// dialog id and sender). The text names what is missing, never the payload.
    #[error("not a chat push: {0}")]
    NotChatPush(String),
    /// The local store could not be read or written (disk full, permissions, I/O).
    #[error("local store: {0}")]
    Store(String),
    /// The local store file is not a database or is damaged. It was left as it is.
    #[error("local store is corrupt: {0}")]
    StoreCorrupt(String),
    /// The local store was written by a newer cubechat (schema `found`, this build knows up
    /// to `supported`). It was left as it is.
    #[error("local store schema {found} is newer than supported {supported}")]
    StoreTooNew {
        /// The schema version found in the store file.
        found: u32,
        /// The newest schema version this library knows.
        supported: u32,
    },
}

/// "; retry after N s" for a known advised delay.
fn after(d: &Option<std::time::Duration>) -> String {
    match d {
        Some(d) => format!("; retry after {} s", d.as_secs_f64().ceil() as u64),
        None => String::new(),
    }
}

impl Error {
    /// Maps a reqwest transport error, without its URL (URLs may one day carry a token).
    pub(crate) fn from_transport(e: reqwest::Error) -> Self {
        if e.is_redirect() {
            return Error::Protocol("the server redirected too many times".into());
        }
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else if e.is_body() || e.is_decode() {
            "connection broke while reading the response"
        } else if e.is_request() {
            "request failed"
        } else {
            "transport error"
        };
        let mut detail = String::new();
        let mut source = std::error::Error::source(&e);
        // The innermost cause says the most (e.g. "Connection refused", "invalid peer certificate").
        while let Some(s) = source {
            detail = s.to_string();
            source = s.source();
        }
        if detail.is_empty() {
            Error::Network(kind.to_owned())
        } else {
            Error::Network(format!("{kind}: {detail}"))
        }
    }

    /// Describes a JSON decoding failure by position only: serde's messages may quote values.
    pub(crate) fn malformed_json(what: &str, e: &serde_json::Error) -> Self {
        let kind = match e.classify() {
            serde_json::error::Category::Io => "i/o error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected shape",
            serde_json::error::Category::Eof => "truncated",
        };
        Error::Protocol(format!(
            "malformed JSON in {what}: {kind} at line {} column {}",
            e.line(),
            e.column()
        ))
    }
}
