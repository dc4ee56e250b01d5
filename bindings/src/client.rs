//! [`ChatClient`]: the exported client. Each method converts its arguments, runs the engine
//! call on the shared runtime and converts the result; nothing else.

use std::sync::Arc;

use cubechat_core as core;

use crate::convert::{ClientConfig, LoginId, NewUser, Session, SessionEvent, User};
use crate::error::ChatError;
use crate::handle::SubscriptionHandle;
use crate::runtime::run;

/// Receives session events: the current session first, then every change, in order.
///
/// Threads: called on this subscription's own thread (`cubechat-deliver`), one event at a
/// time, in order; never on the engine's threads, so a slow or blocking call delays only
/// this subscription. Events wait, none skipped, until the call returns; a subscription
/// 65,536 events behind ends (see `SubscriptionHandle`). Calling the client from here is
/// allowed.
#[uniffi::export(foreign)]
pub trait SessionListener: Send + Sync {
    /// One session event. An error or exception raised here is logged (the first one of
    /// a subscription); later events are still delivered.
    fn on_session_event(&self, event: SessionEvent) -> Result<(), ChatError>;
}

/// The cubechat client for one application and at most one logged-in user.
///
/// Thread-safe; every call may be made from any thread. Async calls are Kotlin `suspend`,
/// Swift `async` and Python `async` functions; cancelling one aborts its request.
#[derive(uniffi::Object)]
pub struct ChatClient {
    inner: Arc<core::Client>,
}

impl ChatClient {
    /// The engine handle, for facade modules.
    pub(crate) fn core(&self) -> Arc<core::Client> {
        self.inner.clone()
    }
}

#[uniffi::export]
impl ChatClient {
    /// Validates the config and builds a client. No network traffic happens here.
    ///
    /// Errors: `InvalidInput` for an unusable config (empty auth key, bad URL, plain http
    /// to a remote host, invalid CA PEM, zero timeouts, bad reconnect policy).
    #[uniffi::constructor]
    pub fn new(config: ClientConfig) -> Result<Arc<Self>, ChatError> {
        crate::runtime::rt()?;
        Ok(Arc::new(Self {
            inner: core::Client::new(config.into())?,
        }))
    }

    /// Creates an application session (no user), needed before `sign_up`; `log_in`
    /// creates one by itself when missing.
    ///
    /// Errors: `ApplicationRejected` (unknown app or auth key), `SignatureRejected`,
    /// `Network`, `Protocol`.
    pub async fn create_session(&self) -> Result<Session, ChatError> {
        let c = self.inner.clone();
        run(async move { c.auth().create_session().await })
            .await
            .map(Into::into)
    }

    /// Creates a user session in one request. The server answers 401 for both an unknown
    /// application and a wrong password here, reported as `InvalidCredentials`; use
    /// `log_in` when the two must be told apart.
    pub async fn create_user_session(
        &self,
        login: LoginId,
        password: String,
    ) -> Result<Session, ChatError> {
        let c = self.inner.clone();
        run(async move { c.auth().create_user_session(login.into(), &password).await })
            .await
            .map(Into::into)
    }

    /// Signs up a new user (creating an application session first when needed). Does not
    /// log the user in.
    ///
    /// Errors: `InvalidInput` (no login/email, empty password), `Server` 422 (login taken,
    /// password too short), `ApplicationRejected`, `Network`.
    pub async fn sign_up(&self, user: NewUser, password: String) -> Result<User, ChatError> {
        let c = self.inner.clone();
        run(async move { c.auth().sign_up(user.into_params(password)).await })
            .await
            .map(Into::into)
    }

    /// Logs a user in with login or e-mail and password. The client keeps the credentials
    /// in memory to renew the session when it expires.
    ///
    /// Errors: `InvalidCredentials`, `ApplicationRejected`, `SignatureRejected`, `Network`.
    pub async fn log_in(&self, login: LoginId, password: String) -> Result<User, ChatError> {
        let c = self.inner.clone();
        run(async move { c.auth().log_in(login.into(), &password).await })
            .await
            .map(Into::into)
    }

    /// Adopts an existing session token after checking it with the server. Such a session
    /// cannot be renewed automatically. Errors: `SessionExpired`, `InvalidInput`, `Network`.
    pub async fn use_token(&self, token: String) -> Result<Session, ChatError> {
        let c = self.inner.clone();
        run(async move { c.auth().use_token(&token).await })
            .await
            .map(Into::into)
    }

    /// Fetches the current session from the server. Errors: `NotLoggedIn`,
    /// `SessionExpired`, `Network`.
    pub async fn get_session(&self) -> Result<Session, ChatError> {
        let c = self.inner.clone();
        run(async move { c.auth().get_session().await })
            .await
            .map(Into::into)
    }

    /// The session as last seen, without a network call; `None` without a session.
    pub fn current_session(&self) -> Option<Session> {
        self.inner.current_session().map(Into::into)
    }

    /// The current session token (for the chat login or the app's own backend). A secret:
    /// never log it.
    pub fn session_token(&self) -> Option<String> {
        self.inner.session_token()
    }

    /// Logs the user out; the application session stays.
    pub async fn log_out(&self) -> Result<(), ChatError> {
        let c = self.inner.clone();
        run(async move { c.auth().log_out().await }).await
    }

    /// Destroys the session on the server and forgets it. Idempotent.
    pub async fn destroy_session(&self) -> Result<(), ChatError> {
        let c = self.inner.clone();
        run(async move { c.auth().destroy_session().await }).await
    }

    /// Delivers `SessionEvent::Current` first, then every later session event in order.
    pub fn subscribe_session(
        &self,
        listener: Arc<dyn SessionListener>,
    ) -> Result<Arc<SubscriptionHandle>, ChatError> {
        let (snapshot, rx) = self.inner.subscribe_session();
        let current = SessionEvent::Current {
            user_id: snapshot.map(|s| s.user_id),
        };
        SubscriptionHandle::forward("SessionListener", current, rx, move |e| {
            listener.on_session_event(e)
        })
    }
}
