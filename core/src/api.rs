//! [`Api`]: the REST session. It owns the HTTP transport (`Rest`), the session state and
//! the stored login, and runs every authenticated call through `Api::call`, which renews
//! an expired session once (one renewal at a time) and retries. The REST feature objects
//! (authentication, dialogs and messages, files) are thin typed endpoints over it.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use cubechat_wire::auth::{Credentials, Session, SessionEnvelope};
use cubechat_wire::signature;
use rand::Rng;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::rest::{decode, Auth, Rest};
use crate::stream::{EventStream, Subscribers};

/// How a user identifies at log-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginId {
    /// The user's login name.
    Login(String),
    /// The user's e-mail address.
    Email(String),
}

/// Something that happened to the session.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// A new session was created or adopted. `user_id` is 0 for an application session.
    Started {
        /// The logged-in user's id (0 for an application session).
        user_id: u64,
    },
    /// An expired session was replaced by a fresh one transparently.
    Renewed {
        /// The logged-in user's id (0 for an application session).
        user_id: u64,
    },
    /// The user logged out; an application session remains.
    LoggedOut,
    /// The session expired and could not be renewed: the app must log in again.
    Expired {
        /// Why the session ended (no secret).
        reason: String,
    },
    /// The session was destroyed on request.
    Destroyed,
}

/// A login kept in memory to renew an expired session. Never logged or printed.
#[derive(Clone)]
pub(crate) struct StoredLogin {
    pub(crate) id: LoginId,
    pub(crate) password: String,
}

impl std::fmt::Debug for StoredLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredLogin(<redacted>)")
    }
}

impl LoginId {
    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            LoginId::Login(l) if l.trim().is_empty() => {
                Err(Error::InvalidInput("login is empty".into()))
            }
            LoginId::Email(e) if !e.contains('@') => {
                Err(Error::InvalidInput("email is not an e-mail address".into()))
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn credentials(&self, password: &str) -> Credentials {
        let (login, email) = match self {
            LoginId::Login(l) => (Some(l.clone()), None),
            LoginId::Email(e) => (None, Some(e.clone())),
        };
        Credentials {
            login,
            email,
            password: Some(password.to_owned()),
        }
    }
}

/// Mutable session state, guarded by one lock that is never held across an await.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) session: Option<Session>,
    /// Kept in memory only, to renew an expired user session without asking the app.
    pub(crate) login: Option<StoredLogin>,
}

/// Called synchronously with every session event before subscribers hear it (the client
/// opens and closes the user's store with it).
pub(crate) type SessionHook = Box<dyn Fn(&SessionEvent) + Send + Sync>;

/// The REST session of one application and at most one logged-in user: the transport, the
/// session and its renewal. Shared (`Arc<Api>`) by the client and its REST feature objects.
pub struct Api {
    cfg: Config,
    rest: Rest,
    state: Mutex<State>,
    /// Serialises session renewals so concurrent 401s renew once.
    renewal: tokio::sync::Mutex<()>,
    /// The session subscribers. Lock order: `state` before this one, never the reverse.
    subscribers: Mutex<Subscribers<SessionEvent>>,
    hook: OnceLock<SessionHook>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("app_id", &self.cfg.app_id)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// Validates the config and builds the session object. No network traffic happens here.
    pub fn new(cfg: Config) -> Result<Arc<Self>> {
        let base = cfg.validate()?;
        let rest = Rest::new(&cfg, base)?;
        Ok(Arc::new(Self {
            cfg,
            rest,
            state: Mutex::new(State::default()),
            renewal: tokio::sync::Mutex::new(()),
            subscribers: Mutex::default(),
            hook: OnceLock::new(),
        }))
    }

    /// The configuration this session was built with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The HTTP transport.
    pub(crate) fn rest(&self) -> &Rest {
        &self.rest
    }

    /// Installs the session hook (once; later calls are ignored).
    pub(crate) fn set_hook(&self, hook: SessionHook) {
        // Set once by the client that owns this session; a second hook is a no-op.
        let _ = self.hook.set(hook);
    }

    /// The session as last seen, without a network call.
    pub fn current_session(&self) -> Option<Session> {
        self.state().session.clone()
    }

    /// The current session token, if any. Treat it as a secret.
    pub fn session_token(&self) -> Option<String> {
        self.state().session.as_ref().map(|s| s.token.clone())
    }

    /// The current session (the snapshot) and an [`EventStream`] of every later
    /// [`SessionEvent`], in order and without loss however slowly it is read; the stream
    /// ends when the session object is dropped. A change is stored before its event is
    /// sent, so the first event may repeat what the snapshot already shows; none is missed.
    pub fn subscribe_session(&self) -> (Option<Session>, EventStream<SessionEvent>) {
        // Subscribe under the state lock so no event falls between snapshot and stream.
        let state = self.state();
        let rx = self.subscribers().subscribe();
        (state.session.clone(), rx)
    }

    fn subscribers(&self) -> MutexGuard<'_, Subscribers<SessionEvent>> {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the plain data half-written in a way
        // that matters more than losing the session, so recover from poisoning.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the hook, then every subscriber.
    pub(crate) fn emit(&self, event: SessionEvent) {
        if let Some(hook) = self.hook.get() {
            hook(&event);
        }
        // No subscriber is fine.
        self.subscribers().emit(&event);
    }

    /// An authenticated call: sends with the current token; on "session does not exist"
    /// renews the session once (see [`Api::renew_session`]) and retries.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<T> {
        let bytes = self.call_raw(method, path, query, body).await?;
        decode(path, &bytes)
    }

    /// Like [`Api::call`] for endpoints whose success body is empty or ignored.
    pub(crate) async fn call_empty(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<()> {
        self.call_raw(method, path, query, body).await.map(drop)
    }

    async fn call_raw(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Vec<u8>> {
        let token = self.session_token().ok_or(Error::NotLoggedIn)?;
        match self
            .rest
            .send(method.clone(), path, query, body, Auth::Token(&token))
            .await
        {
            Err(Error::SessionExpired(_)) => {
                let fresh = self.renew_session(&token).await?;
                self.rest
                    .send(method, path, query, body, Auth::Token(&fresh))
                    .await
            }
            other => other,
        }
    }

    /// Builds the `POST /session` body, signed when an auth secret is configured.
    fn session_body(&self, login: Option<&StoredLogin>) -> Value {
        let mut body = json!({
            "application_id": self.cfg.app_id,
            "auth_key": self.cfg.auth_key,
        });
        if let Some(l) = login {
            body["user"] = json!(l.id.credentials(&l.password));
        }
        if let Some(secret) = &self.cfg.auth_secret {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            body["nonce"] = json!(rand::thread_rng().gen_range(1..u32::MAX));
            body["timestamp"] = json!(now);
            body["signature"] = json!(signature::sign(&body, secret));
        }
        body
    }

    /// `POST /session`, mapping 401/422 to the application, signature or credential error.
    pub(crate) async fn post_session(&self, login: Option<&StoredLogin>) -> Result<Session> {
        let body = self.session_body(login);
        let bytes = self
            .rest
            .send(Method::POST, "session", &[], Some(&body), Auth::None)
            .await
            .map_err(|e| match e {
                Error::InvalidCredentials(m) | Error::SessionExpired(m) => {
                    let lower = m.to_ascii_lowercase();
                    if login.is_some()
                        && !lower.contains("application")
                        && !lower.contains("auth_key")
                    {
                        Error::InvalidCredentials(m)
                    } else {
                        Error::ApplicationRejected(m)
                    }
                }
                Error::Server {
                    status: 422,
                    message,
                } if message.contains("ignature") || message.contains("imestamp") => {
                    Error::SignatureRejected(message)
                }
                Error::NotFound(m) => Error::ApplicationRejected(m),
                other => other,
            })?;
        Ok(decode::<SessionEnvelope>("session", &bytes)?.session)
    }

    /// Makes `session` (and `login`, for renewals) the current one and announces it.
    pub(crate) fn adopt(&self, session: Session, login: Option<StoredLogin>) {
        let user_id = session.user_id;
        {
            let mut st = self.state();
            st.session = Some(session);
            st.login = login;
        }
        self.emit(SessionEvent::Started { user_id });
    }

    /// A token for a chat login that the server just rejected with `stale`: the current
    /// token when the session was already replaced meanwhile, or a renewed one when a login is
    /// stored. `None` when nothing newer can be had (an adopted token, no session, or the
    /// renewal failed), so the rejection stands.
    pub(crate) async fn token_after_chat_rejection(&self, stale: &str) -> Option<String> {
        {
            let st = self.state();
            match st.session.as_ref() {
                None => return None,
                Some(s) if s.token != stale => return Some(s.token.clone()),
                Some(_) if st.login.is_none() => return None,
                Some(_) => {}
            }
        }
        self.renew_session(stale).await.ok()
    }

    /// Replaces an expired session, once, and returns the new token.
    ///
    /// Concurrent callers renew once: whoever comes second finds a token different from its
    /// stale one and uses it. A user session is re-created from the stored login; an
    /// application session is re-created as such; a session adopted from a token cannot be
    /// renewed and ends with [`SessionEvent::Expired`].
    pub(crate) async fn renew_session(&self, stale: &str) -> Result<String> {
        let _guard = self.renewal.lock().await;
        let (current, login, user_id) = {
            let st = self.state();
            let s = st.session.as_ref();
            (
                s.map(|s| s.token.clone()),
                st.login.clone(),
                s.map_or(0, |s| s.user_id),
            )
        };
        match current {
            Some(t) if t != stale => return Ok(t),
            None => return Err(Error::NotLoggedIn),
            Some(_) => {}
        }
        let outcome = match (&login, user_id) {
            (Some(l), _) => self.post_session(Some(l)).await,
            (None, 0) => self.post_session(None).await,
            (None, _) => Err(Error::SessionExpired(
                "the session token expired and no login is stored to renew it".into(),
            )),
        };
        match outcome {
            Ok(session) => {
                let token = session.token.clone();
                let user_id = session.user_id;
                self.state().session = Some(session);
                info!(user_id, "session renewed");
                self.emit(SessionEvent::Renewed { user_id });
                Ok(token)
            }
            // A network failure says nothing about the session: keep it and let the caller retry.
            Err(e @ Error::Network(_)) => Err(e),
            Err(e) => {
                let reason = e.to_string();
                warn!(%reason, "session expired and could not be renewed");
                *self.state() = Default::default();
                self.emit(SessionEvent::Expired {
                    reason: reason.clone(),
                });
                Err(Error::SessionExpired(reason))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_session_subscriber_misses_nothing_and_its_stream_ends_with_the_session() {
        let api = Api::new(Config::new(7, "k", "https://api.example.com")).unwrap();
        let (snapshot, mut rx) = api.subscribe_session();
        assert_eq!(snapshot, None);
        // Far more than the 64 events the old broadcast channel kept for a slow reader.
        for user_id in 0..500 {
            api.emit(SessionEvent::Renewed { user_id });
        }
        drop(api);
        for user_id in 0..500 {
            assert_eq!(rx.recv().await, Some(SessionEvent::Renewed { user_id }));
        }
        assert_eq!(rx.recv().await, None, "the stream ends with the session");
    }

    #[test]
    fn stored_login_debug_is_redacted() {
        let l = StoredLogin {
            id: LoginId::Login("bob".into()),
            password: "pw-123".into(),
        };
        assert!(!format!("{l:?}").contains("pw-123"));
    }

    #[test]
    fn the_hook_hears_an_event_before_subscribers() {
        let api = Api::new(Config::new(7, "k", "https://api.example.com")).unwrap();
        let (_, mut rx) = api.subscribe_session();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let probe = api.subscribe_session().1;
        let probe = Mutex::new(probe);
        api.set_hook(Box::new(move |e| {
            // The subscriber has not been told yet when the hook runs.
            let told = probe.lock().unwrap().try_recv().is_ok();
            s.lock().unwrap().push((e.clone(), told));
        }));
        api.emit(SessionEvent::LoggedOut);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![(SessionEvent::LoggedOut, false)]
        );
        assert_eq!(rx.try_recv().unwrap(), SessionEvent::LoggedOut);
    }
}
