//! [`Client`]: the engine's entry point. It owns the REST transport and the session state,
//! and runs every authenticated call through `Client::call`, which renews an expired
//! session once and retries.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::auth::{SessionEvent, StoredLogin};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::rest::{decode, Auth, Rest};
use crate::stream::{EventStream, Subscribers};
use cubechat_wire::auth::Session;

/// Mutable session state, guarded by one lock that is never held across an await.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) session: Option<Session>,
    /// Kept in memory only, to renew an expired user session without asking the app.
    pub(crate) login: Option<StoredLogin>,
}

/// The cubechat engine for one application and at most one logged-in user.
///
/// Cheap to share (`Arc<Client>`); every method takes `&self`.
pub struct Client {
    pub(crate) cfg: Config,
    pub(crate) rest: Rest,
    state: Mutex<State>,
    /// Serialises session renewals so concurrent 401s renew once.
    pub(crate) renewal: tokio::sync::Mutex<()>,
    /// The session subscribers. Lock order: `state` before this one, never the reverse.
    subscribers: Mutex<Subscribers<SessionEvent>>,
    /// The chat connection's state, kept across sessions.
    pub(crate) chat: Arc<crate::xmpp::ChatShared>,
    /// This client, weakly: chat tasks use it without keeping it alive.
    pub(crate) me: Weak<Client>,
    /// The local store of the current user and its tasks, once opened.
    pub(crate) local: Mutex<Option<Arc<crate::local::Local>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("app_id", &self.cfg.app_id)
            .finish_non_exhaustive()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // The chat session refers back to the shared chat state; end it so neither leaks.
        self.chat.shutdown();
        if let Some(l) = self.local.lock().unwrap_or_else(|p| p.into_inner()).take() {
            l.close();
        }
    }
}

impl Client {
    /// Validates the config and builds a client. No network traffic happens here.
    pub fn new(cfg: Config) -> Result<Arc<Self>> {
        let base = cfg.validate()?;
        let rest = Rest::new(&cfg, base)?;
        Ok(Arc::new_cyclic(|me| Self {
            chat: crate::realtime::chat_session(&cfg, me.clone()),
            cfg,
            rest,
            state: Mutex::new(State::default()),
            renewal: tokio::sync::Mutex::new(()),
            subscribers: Mutex::default(),
            me: me.clone(),
            local: Mutex::default(),
        }))
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &Config {
        &self.cfg
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
    /// ends when the client is dropped. A change is stored before its event is sent, so
    /// the first event may repeat what the snapshot already shows; none is missed.
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

    pub(crate) fn emit(&self, event: SessionEvent) {
        // No subscriber is fine.
        self.subscribers().emit(&event);
    }

    /// An authenticated call: sends with the current token; on "session does not exist"
    /// renews the session once (see [`Client::renew_session`]) and retries.
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

    /// Like [`Client::call`] for endpoints whose success body is empty or ignored.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_session_subscriber_misses_nothing_and_its_stream_ends_with_the_client() {
        let c = Client::new(Config::new(7, "k", "https://api.example.com")).unwrap();
        let (snapshot, mut rx) = c.subscribe_session();
        assert_eq!(snapshot, None);
        // Far more than the 64 events the old broadcast channel kept for a slow reader.
        for user_id in 0..500 {
            c.emit(SessionEvent::Renewed { user_id });
        }
        drop(c);
        for user_id in 0..500 {
            assert_eq!(rx.recv().await, Some(SessionEvent::Renewed { user_id }));
        }
        assert_eq!(rx.recv().await, None, "the stream ends with the client");
    }
}
