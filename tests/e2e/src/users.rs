//! Users, connections and dialogs shared by the engine-vs-cubeserver tests.

use crate as common;
use crate::events::Ev;

/// A logged-in user (REST session) with a chat-configured client.
pub struct U {
    /// The user's client (REST session; chat not connected until [`online`]).
    pub c: std::sync::Arc<cubechat_core::Client>,
    /// The user's id.
    pub id: u64,
}

/// Signs up `login` with [`common::PASSWORD`].
pub async fn sign_up(s: &common::Server, login: &str) {
    s.client()
        .auth()
        .sign_up(cubechat_core::UserParams {
            login: Some(login.into()),
            password: Some(common::PASSWORD.into()),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// A new client of the existing user `login`, logged in over REST, with `f` applied to
/// [`common::Server::chat_config`].
pub async fn log_in(
    s: &common::Server,
    login: &str,
    f: impl FnOnce(&mut cubechat_core::Config),
) -> U {
    let mut cfg = s.chat_config();
    f(&mut cfg);
    let c = cubechat_core::Client::new(cfg).unwrap();
    let me = c
        .auth()
        .log_in(
            cubechat_core::LoginId::Login(login.into()),
            common::PASSWORD,
        )
        .await
        .unwrap();
    U { c, id: me.id }
}

/// A new user, logged in.
pub async fn user(s: &common::Server, login: &str) -> U {
    sign_up(s, login).await;
    log_in(s, login, |_| {}).await
}

/// Subscribes to events and connects with the session token.
pub async fn online(u: &U) -> Ev {
    let ev = Ev::new(u.c.chat().subscribe_chat());
    u.c.chat()
        .connect_chat(cubechat_core::ChatAuth::SessionToken)
        .await
        .unwrap();
    assert_eq!(
        u.c.chat().connection_state(),
        cubechat_core::ConnectionState::Connected
    );
    // `Connected` means the initial presence is sent; cubeserver routes live messages only to
    // available resources, so a message sent to this user before the server has read that
    // presence is stored and arrives flushed (`delayed`). One IQ round trip on the same
    // stream proves the presence was read.
    u.c.chat().privacy_list_names().await.unwrap();
    ev
}

/// A new dialog of `kind` named `name` with `occupants`.
pub fn dialog(
    kind: cubechat_core::chat::DialogType,
    name: Option<&str>,
    occupants: &[u64],
) -> cubechat_core::chat::NewDialog {
    cubechat_core::chat::NewDialog {
        kind,
        name: name.map(str::to_owned),
        occupants_ids: occupants.to_vec(),
        photo: None,
        description: None,
        extensions: std::collections::BTreeMap::new(),
    }
}

/// A new private dialog of `a` with `b`: its id.
pub async fn private_dialog(a: &U, b: &U) -> String {
    a.c.dialogs()
        .create_dialog(dialog(
            cubechat_core::chat::DialogType::Private,
            None,
            &[b.id],
        ))
        .await
        .unwrap()
        .id
}

/// A new group dialog "Team" of `owner` with `others`: its id.
pub async fn group_dialog(owner: &U, others: &[&U]) -> String {
    let ids: Vec<u64> = others.iter().map(|u| u.id).collect();
    owner
        .c
        .dialogs()
        .create_dialog(dialog(
            cubechat_core::chat::DialogType::Group,
            Some("Team"),
            &ids,
        ))
        .await
        .unwrap()
        .id
}
