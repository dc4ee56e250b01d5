//! [`Client`]: the engine's entry point. It holds the REST session ([`Api`]) and the chat
//! session, and hands out the feature objects built over them.

use std::sync::{Arc, Mutex, Weak};

use crate::api::{Api, SessionEvent};
use crate::auth::Auth;
use crate::chat::{DialogObserver, Dialogs, Messages};
use crate::config::Config;
use crate::error::Result;
use crate::local::{SendQueue, Timeline};
use crate::realtime::ChatSession;
use crate::storage::Files;
use crate::stream::EventStream;
use crate::xmpp::{ChatHost, ChatShared, HostFuture};
use cubechat_wire::auth::Session;

/// The cubechat engine for one application and at most one logged-in user.
///
/// Cheap to share (`Arc<Client>`); every method takes `&self`.
pub struct Client {
    /// The REST session: transport, session state, renewal, session subscribers.
    pub(crate) api: Arc<Api>,
    /// The chat connection's state, kept across sessions.
    pub(crate) chat: Arc<ChatShared>,
    /// This client, weakly: chat tasks use it without keeping it alive.
    pub(crate) me: Weak<Client>,
    /// The local store of the current user and its tasks, once opened.
    pub(crate) local: Mutex<Option<Arc<crate::local::Local>>>,
    // The feature objects, built once so the accessors hand out references (a future
    // borrowing one never outlives a temporary).
    auth: Auth,
    dialogs: Dialogs,
    messages: Messages,
    files: Files,
    realtime: ChatSession,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("app_id", &self.api.config().app_id)
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
        let api = Api::new(cfg)?;
        Ok(Arc::new_cyclic(|me: &Weak<Client>| {
            let host = me.clone();
            // The user's store opens when a user session starts and closes at log-out.
            api.set_hook(Box::new(move |event| {
                let Some(client) = host.upgrade() else { return };
                match event {
                    SessionEvent::Started { user_id } => {
                        client.open_store_quietly(*user_id);
                        // The own user, when the session carries it, is one the app has seen.
                        if let Some(me) = client.api.current_session().and_then(|s| s.user) {
                            client.users().remember(std::slice::from_ref(&me));
                        }
                    }
                    SessionEvent::LoggedOut => client.close_store(),
                    _ => {}
                }
            }));
            // The chat session's host is this client, weakly.
            let host: Weak<dyn ChatHost> = me.clone();
            let chat = Arc::new(ChatShared::new(api.config().clone(), host));
            let observer: Weak<dyn DialogObserver> = me.clone();
            Self {
                auth: Auth::new(api.clone()),
                dialogs: Dialogs::observed(api.clone(), observer),
                messages: Messages::new(api.clone()),
                files: Files::new(api.clone()),
                realtime: ChatSession::new(chat.clone()),
                chat,
                api,
                me: me.clone(),
                local: Mutex::default(),
            }
        }))
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &Config {
        self.api.config()
    }

    /// The REST session this client's feature objects share.
    pub fn api(&self) -> &Arc<Api> {
        &self.api
    }

    /// The session as last seen, without a network call.
    pub fn current_session(&self) -> Option<Session> {
        self.api.current_session()
    }

    /// Sessions and users: sign-up, log-in, log-out, adopting a token.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Dialogs over REST; what a call changes reaches this client's local store.
    pub fn dialogs(&self) -> &Dialogs {
        &self.dialogs
    }

    /// Messages over REST (history, marks, reactions, search, ...).
    pub fn messages(&self) -> &Messages {
        &self.messages
    }

    /// Cloud files: upload, download and manage blobs.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// The real-time chat session: connection, markers, typing, rooms, presence, privacy.
    pub fn chat(&self) -> &ChatSession {
        &self.realtime
    }

    /// The live dialog list and timelines from the local store, older pages, the sync.
    pub fn timeline(&self) -> Timeline<'_> {
        Timeline::new(self)
    }

    /// The send queue: the one way a chat message goes out (local echo first).
    pub fn send_queue(&self) -> SendQueue<'_> {
        SendQueue::new(self)
    }

    /// The current session token, if any. Treat it as a secret.
    pub fn session_token(&self) -> Option<String> {
        self.api.session_token()
    }

    /// The current session (the snapshot) and an [`EventStream`] of every later
    /// [`SessionEvent`], in order and without loss however slowly it is read; the stream
    /// ends when the client is dropped. A change is stored before its event is sent, so
    /// the first event may repeat what the snapshot already shows; none is missed.
    pub fn subscribe_session(&self) -> (Option<Session>, EventStream<SessionEvent>) {
        self.api.subscribe_session()
    }
}

/// The client is its chat session's host: the current user and token, a renewed token
/// after a rejected chat login, and the user's store opening as a session starts.
impl ChatHost for Client {
    fn user_id(&self) -> Option<u64> {
        self.current_session().map(|s| s.user_id)
    }

    fn session_token(&self) -> Option<String> {
        Client::session_token(self)
    }

    fn renewed_token<'a>(&'a self, stale: &'a str) -> HostFuture<'a> {
        Box::pin(self.api.token_after_chat_rejection(stale))
    }

    fn chat_starting(&self, user_id: u64) {
        // The send queue of this user drains once connected.
        self.open_store_quietly(user_id);
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
            c.api.emit(SessionEvent::Renewed { user_id });
        }
        drop(c);
        for user_id in 0..500 {
            assert_eq!(rx.recv().await, Some(SessionEvent::Renewed { user_id }));
        }
        assert_eq!(rx.recv().await, None, "the stream ends with the client");
    }
}
