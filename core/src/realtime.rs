//! The real-time chat API of [`Client`](crate::Client) ([`ChatSession`], `client.chat()`): a thin layer over
//! the XMPP session ([`crate::xmpp`]), which knows nothing of the client, the store or the
//! REST chat API. The client (`client.rs`) is the session's `ChatHost`: it hands it the
//! current user and token, renews a token the chat login rejected and opens the store when a
//! session starts. Chat events are
//! live only: what was missed during a gap reaches the app through the store (its sync runs
//! on every (re)connection, see [`Timeline::sync_local`]).

use std::sync::Arc;

use crate::error::Result;
use crate::xmpp::{
    ChatAuth, ChatEvents, ChatShared, ConnectionState, ConnectionStates, OutgoingMessage,
    PrivacyList, PrivacyListNames,
};

/// The real-time chat session (`client.chat()`): connection, markers, typing, edits and
/// deletions over chat, rooms, presence and privacy lists. A feature object over the XMPP
/// session handle; cheap to clone. Chat messages go out through the send queue
/// (`client.send_queue()`).
#[derive(Clone)]
pub struct ChatSession {
    shared: Arc<ChatShared>,
}

impl std::fmt::Debug for ChatSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatSession").finish_non_exhaustive()
    }
}

impl ChatSession {
    pub(crate) fn new(shared: Arc<ChatShared>) -> Self {
        Self { shared }
    }

    // ---- connection and messages

    /// Connects to chat and resolves once online (bound, stream management and carbons
    /// enabled, presence sent). Afterwards the connection is kept alive and re-established
    /// by the reconnection policy until [`ChatSession::disconnect_chat`] or
    /// [`ChatSession::destroy_chat`].
    ///
    /// Errors: `InvalidCredentials` (SASL rejected; no retry), `Network` (TCP, TLS, or a
    /// server without STARTTLS: plain text is refused unless
    /// `ChatEndpoint::insecure_plaintext`), `NotLoggedIn` (no user id or token to use),
    /// `InvalidInput` (already connected, bad TLS options).
    ///
    /// Cancel-safe: dropping the future before it resolves (a cancelled task or coroutine)
    /// abandons the attempt. The half-made connection is closed, nothing reconnects, the
    /// state becomes `Disconnected`, and `connect_chat` can be called again at once.
    pub async fn connect_chat(&self, auth: ChatAuth) -> Result<()> {
        self.shared.connect_chat(auth).await
    }

    /// Closes the chat connection gracefully and stops reconnecting. Joined rooms and the
    /// credentials are kept: [`ChatSession::reconnect_now`] connects again. Idempotent.
    pub async fn disconnect_chat(&self) {
        self.shared.disconnect_chat().await
    }

    /// Closes the chat connection, stops reconnecting and forgets the credentials and joined
    /// rooms; the state returns to `Idle`. Idempotent.
    pub async fn destroy_chat(&self) {
        self.shared.destroy_chat().await
    }

    /// Reconnects at once: skips the backoff delay, retries after an auth failure or after
    /// giving up, drops and resumes a live connection (e.g. after a network change), or
    /// starts a new session after `disconnect_chat` or a failed `connect_chat`.
    pub async fn reconnect_now(&self) {
        self.shared.reconnect_now().await
    }

    /// Tells the engine whether the device has a network. `false`: stop trying and report
    /// `Disconnected { reason: "network unavailable" }` (a live connection is dropped and
    /// resumed later); `true`: reconnect immediately.
    pub fn set_network_available(&self, available: bool) {
        self.shared.set_network_available(available);
    }

    /// The current connection state and every later change, in order.
    pub fn subscribe_connection(&self) -> (ConnectionState, ConnectionStates) {
        self.shared.subscribe_connection()
    }

    /// The full JID (`{userId}-{appId}@{domain}/{resource}`) of the current chat session.
    pub fn chat_jid(&self) -> Option<String> {
        self.shared.chat_jid()
    }

    /// The current connection state.
    pub fn connection_state(&self) -> ConnectionState {
        self.shared.connection_state()
    }

    /// Every chat event from now on, in arrival order, without loss (unbounded: drain it).
    pub fn subscribe_chat(&self) -> ChatEvents {
        self.shared.subscribe_chat()
    }

    /// Checks a message the way `send_message` does, without sending it.
    pub(crate) fn check_outgoing(&self, m: &OutgoingMessage) -> Result<()> {
        self.shared.check_outgoing(m)
    }

    /// Sends a checked message under a given id (the send queue keeps its ids).
    pub(crate) fn send_message_as(&self, id: &str, m: OutgoingMessage) -> Result<()> {
        self.shared.send_message_as(id, m)
    }

    /// Sends a delivered marker for `message_id` to its sender.
    pub fn send_delivered(&self, dialog_id: &str, message_id: &str, sender_id: u64) -> Result<()> {
        self.shared.send_delivered(dialog_id, message_id, sender_id)
    }

    /// Sends a read marker for `message_id` to its sender.
    pub fn send_read(&self, dialog_id: &str, message_id: &str, sender_id: u64) -> Result<()> {
        self.shared.send_read(dialog_id, message_id, sender_id)
    }

    /// Sends `composing` (or `paused`). After `composing`, `paused` follows by itself once
    /// `ChatOptions::typing_idle` passes without another call.
    pub fn send_typing(
        &self,
        dialog_id: &str,
        recipient_id: Option<u64>,
        composing: bool,
    ) -> Result<()> {
        self.shared.send_typing(dialog_id, recipient_id, composing)
    }

    /// Sends a correction of `message_id` (`last` = it is the dialog's newest message) and
    /// returns the id of the correction stanza.
    pub fn send_edit(
        &self,
        dialog_id: &str,
        recipient_id: Option<u64>,
        message_id: &str,
        body: &str,
        last: bool,
    ) -> Result<String> {
        self.shared
            .send_edit(dialog_id, recipient_id, message_id, body, last)
    }

    /// `send_edit` under a given stanza id.
    pub(crate) fn send_edit_as(
        &self,
        id: &str,
        dialog_id: &str,
        recipient_id: Option<u64>,
        message_id: &str,
        body: &str,
        last: bool,
    ) -> Result<()> {
        self.shared
            .send_edit_as(id, dialog_id, recipient_id, message_id, body, last)
    }

    /// Sends a deletion of `message_id` over chat; returns the id of the stanza.
    pub fn send_delete(
        &self,
        dialog_id: &str,
        recipient_id: Option<u64>,
        message_id: &str,
    ) -> Result<String> {
        self.shared.send_delete(dialog_id, recipient_id, message_id)
    }

    /// `send_delete` under a given stanza id.
    pub(crate) fn send_delete_as(
        &self,
        id: &str,
        dialog_id: &str,
        recipient_id: Option<u64>,
        message_id: &str,
    ) -> Result<()> {
        self.shared
            .send_delete_as(id, dialog_id, recipient_id, message_id)
    }

    /// Sends a system message (headline, `SystemNotifications`) to a user; returns its id.
    pub fn send_chat_system_message(
        &self,
        user_id: u64,
        body: &str,
        custom: std::collections::BTreeMap<String, String>,
    ) -> Result<String> {
        self.shared.send_chat_system_message(user_id, body, custom)
    }

    /// Joins a group dialog's room (optional on ConnectyCube, needed on standard servers)
    /// and waits for the server's confirmation. Joined rooms are re-joined after a reconnect.
    pub async fn join_room(&self, dialog_id: &str) -> Result<()> {
        self.shared.join_room(dialog_id).await
    }

    /// Leaves a group dialog's room.
    pub fn leave_room(&self, dialog_id: &str) -> Result<()> {
        self.shared.leave_room(dialog_id)
    }

    // ---- presence (last activity, active/inactive, room occupants)

    /// A user's last activity in seconds: 0 = online now, else seconds since they were last
    /// online. Errors: `NotFound` (never seen), `Forbidden`/`Server` (the server refuses,
    /// e.g. a standard server without a presence subscription), `Network` (no answer).
    pub async fn last_activity(&self, user_id: u64) -> Result<u64> {
        self.shared.last_activity(user_id).await
    }

    /// Subscribes to a user's activity: `ChatEvent::LastActivity` arrives when they come
    /// online (0) or go offline. The subscription is remembered and sent again after every
    /// reconnect, also when this call fails for lack of a connection; a server refusal
    /// (`Server`, `Forbidden`, `NotFound`) forgets it.
    pub async fn subscribe_last_activity(&self, user_id: u64) -> Result<()> {
        self.shared.subscribe_last_activity(user_id).await
    }

    /// Ends a [`ChatSession::subscribe_last_activity`] subscription (forgotten even if the call
    /// fails).
    pub async fn unsubscribe_last_activity(&self, user_id: u64) -> Result<()> {
        self.shared.unsubscribe_last_activity(user_id).await
    }

    /// The users whose activity this client is subscribed to.
    pub fn last_activity_subscriptions(&self) -> Vec<u64> {
        self.shared.last_activity_subscriptions()
    }

    /// Marks this client active (app in the foreground): the server stops treating it as
    /// away for push notifications. Remembered and re-applied after every reconnect; sent
    /// at once when connected (no answer is awaited).
    pub fn mark_active(&self) -> Result<()> {
        self.shared.mark_active()
    }

    /// Marks this client inactive (app in the background): the server sends pushes while
    /// it stays online. Remembered and re-applied after every reconnect.
    pub fn mark_inactive(&self) -> Result<()> {
        self.shared.mark_inactive()
    }

    /// The users online in a group dialog's room (disco#items on the room). Standard
    /// servers may require this user to be an occupant (see [`ChatSession::join_room`]).
    pub async fn room_occupants(&self, dialog_id: &str) -> Result<Vec<u64>> {
        self.shared.room_occupants(dialog_id).await
    }

    // ---- privacy lists

    /// Creates or replaces the privacy list `list.name` (at least one item). The list takes
    /// effect once it is the default ([`ChatSession::set_default_privacy_list`]); ConnectyCube
    /// refuses edits to the default list while it is in use, so edit it through
    /// [`ChatSession::update_privacy_list`].
    pub async fn create_privacy_list(&self, list: &PrivacyList) -> Result<()> {
        self.shared.create_privacy_list(list).await
    }

    /// The names of this user's privacy lists (active, default, all).
    pub async fn privacy_list_names(&self) -> Result<PrivacyListNames> {
        self.shared.privacy_list_names().await
    }

    /// The privacy list `name`: its users with their action and direction. Errors:
    /// `NotFound` if there is no such list.
    pub async fn privacy_list(&self, name: &str) -> Result<PrivacyList> {
        self.shared.privacy_list(name).await
    }

    /// Makes `name` the default (enforced) list; `None` declines the default list.
    pub async fn set_default_privacy_list(&self, name: Option<&str>) -> Result<()> {
        self.shared.set_default_privacy_list(name).await
    }

    /// Replaces the list `list.name` with `list`, also when it is the default list in use:
    /// then the default is declined, the list replaced and set as default again (the
    /// documented sequence, in one call). If replacing fails the default is restored and
    /// the replace error returned; if restoring fails too, `Server { status: 409, .. }`
    /// says that the list is no longer the default.
    pub async fn update_privacy_list(&self, list: &PrivacyList) -> Result<()> {
        self.shared.update_privacy_list(list).await
    }

    /// Deletes the privacy list `name`. The server refuses (`Server { status: 409, .. }`,
    /// conflict) to delete a list in use; decline it as default first.
    pub async fn delete_privacy_list(&self, name: &str) -> Result<()> {
        self.shared.delete_privacy_list(name).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::xmpp::ChatEvent;
    use crate::Client;

    #[tokio::test]
    async fn validation_comes_before_the_connection_check() {
        let c = Client::new(crate::Config::new(7, "k", "https://api.example.com")).unwrap();
        let bad = [
            OutgoingMessage::new("d1", Some(5), " "),
            OutgoingMessage::new("", Some(5), "x"),
            OutgoingMessage::new("a b", None, "x"),
            OutgoingMessage::new("d1", Some(0), "x"),
            OutgoingMessage::new("d1", Some(5), "x".repeat(crate::xmpp::MAX_BODY + 1)),
        ];
        for m in bad {
            assert!(
                matches!(
                    c.send_queue().send_message(m.clone()),
                    Err(Error::InvalidInput(_))
                ),
                "{m:?}"
            );
        }
        let mut m = OutgoingMessage::new("d1", Some(5), "x");
        m.custom.insert("save_to_history".into(), "1".into());
        assert!(matches!(
            c.send_queue().send_message(m),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            c.send_queue()
                .send_message(OutgoingMessage::new("d1", Some(5), "x")),
            Err(Error::ChatNotConnected)
        ));
        assert_eq!(
            c.chat().send_typing("d1", None, true),
            Err(Error::ChatNotConnected)
        );
        assert_eq!(c.chat().join_room("d1").await, Err(Error::ChatNotConnected));
        assert_eq!(c.chat().connection_state(), ConnectionState::Idle);
        // Without a REST session there is no user id to log in with.
        assert_eq!(
            c.chat().connect_chat(ChatAuth::SessionToken).await,
            Err(Error::NotLoggedIn)
        );
        // Idempotent without a session.
        c.chat().disconnect_chat().await;
        c.chat().destroy_chat().await;
        assert_eq!(c.chat().connection_state(), ConnectionState::Idle);
    }

    #[test]
    fn client_and_its_futures_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>(_: &T) {}
        send_sync::<Client>();
        send_sync::<ChatEvent>();
        let c = Client::new(crate::Config::new(7, "k", "https://api.example.com")).unwrap();
        send(&c.chat().connect_chat(ChatAuth::SessionToken));
        send(&c.chat().join_room("d"));
        send(&c.chat().disconnect_chat());
        send(&c.chat().destroy_chat());
        send(&c.chat().reconnect_now());
    }

    /// Issue 11: the XMPP session imports nothing above it (it gets what it needs through
    /// `ChatHost`). Comments may name those modules; code may not.
    #[test]
    fn the_xmpp_session_imports_nothing_above_it() {
        let sources = [
            ("mod.rs", include_str!("xmpp/mod.rs")),
            ("engine.rs", include_str!("xmpp/engine.rs")),
            ("inbound.rs", include_str!("xmpp/inbound.rs")),
            ("reconnect.rs", include_str!("xmpp/reconnect.rs")),
            ("connector.rs", include_str!("xmpp/connector.rs")),
            ("iq.rs", include_str!("xmpp/iq.rs")),
            ("presence.rs", include_str!("xmpp/presence.rs")),
            ("privacy.rs", include_str!("xmpp/privacy.rs")),
            ("util.rs", include_str!("xmpp/util.rs")),
        ];
        let above = [
            "crate::client",
            "crate::store",
            "crate::local",
            "crate::chat::",
            "crate::chat;",
            "crate::auth",
            "crate::realtime",
            "crate::Client",
            "crate::Store",
        ];
        for (file, src) in sources {
            for (n, line) in src.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                for module in above {
                    assert!(
                        !code.contains(module),
                        "xmpp/{file}:{}: {module}: {line}",
                        n + 1
                    );
                }
            }
        }
        // The check sees what it is meant to see.
        assert!("use crate::client::Client;".contains(above[0]));
    }
}
