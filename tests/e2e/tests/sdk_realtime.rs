//! cubechat-core's real-time chat (core/src/xmpp) end to end against a real cubeserver
//! process: STARTTLS and direct TLS logins, connection states, 1-1 and group messages with
//! every field, markers, typing, edits and deletes (over chat and their effect on the REST
//! history), the REST pushes (reactions, forced deletes, system messages), bounces,
//! carbons, offline storage, stream resumption through a severable TCP proxy, a fresh login
//! whose missed group messages reach the timeline by the store's sync, network changes, and
//! the lifecycle calls.
//!
//! Every wait is bounded ([`STEP`]); "nothing more arrives" is checked over [`QUIET`].
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cubechat_core::chat::{ListParams, NewMessage};
use cubechat_core::xmpp::Attachment;
use cubechat_core::{
    ChatAuth, ChatEvent, ChatMessage, Client, ConnectionState, Error, LocalMessage, LoginId,
    MessageState, OutgoingMessage, SessionEvent,
};
use cubechat_wire::chat::Message;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use cubechat_e2e as common;

use common::{start, APP, PASSWORD};

/// The longest any single expected event may take.
const STEP: Duration = Duration::from_secs(10);
/// How long "nothing else arrives" is watched for.
const QUIET: Duration = Duration::from_millis(1200);

// ---------------------------------------------------------------------------------------
// Fixtures

fn pw(u: &U) -> ChatAuth {
    ChatAuth::Password {
        user_id: Some(u.id),
        password: PASSWORD.into(),
    }
}

/// Subscribes to events and connects with the session token.
/// The whole REST history of a dialog as `u` sees it (without marking it read).
async fn history(u: &U, dialog_id: &str) -> Vec<Message> {
    u.c.messages()
        .history(dialog_id, &ListParams::default(), false)
        .await
        .unwrap()
        .items
}

async fn stored(u: &U, dialog_id: &str, message_id: &str) -> Option<Message> {
    history(u, dialog_id)
        .await
        .into_iter()
        .find(|m| m.id == message_id)
}

// ---------------------------------------------------------------------------------------
// Waiting

use cubechat_e2e::events::*;
use cubechat_e2e::live::*;
use cubechat_e2e::users::*;

/// Everything queued now.
fn drain<T>(rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>) -> Vec<T> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

/// Everything that arrives within [`QUIET`].
async fn settle<T>(rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>) -> Vec<T> {
    tokio::time::sleep(QUIET).await;
    drain(rx)
}

fn count(ids: &[String], id: &str) -> usize {
    ids.iter().filter(|i| *i == id).count()
}

// ---------------------------------------------------------------------------------------
// A TCP proxy whose live connections can be severed (as in core/tests/ejabberd.rs), and
// which counts the connections it accepted.

struct Proxy {
    port: u16,
    cut: tokio::sync::watch::Sender<u64>,
    /// While set, new connections are accepted and dropped at once.
    refuse: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
}

impl Proxy {
    fn sever(&self) {
        self.cut.send_modify(|v| *v += 1);
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn proxy(target: u16) -> Proxy {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (cut, _) = tokio::sync::watch::channel(0u64);
    let cut2 = cut.clone();
    let refuse = Arc::new(AtomicBool::new(false));
    let refuse2 = refuse.clone();
    let accepted = Arc::new(AtomicUsize::new(0));
    let accepted2 = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = l.accept().await {
            accepted2.fetch_add(1, Ordering::SeqCst);
            if refuse2.load(Ordering::SeqCst) {
                continue;
            }
            let mut cut_rx = cut2.subscribe();
            tokio::spawn(async move {
                let Ok(mut out) = TcpStream::connect(("127.0.0.1", target)).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                    _ = cut_rx.changed() => {} // dropping both ends severs the link
                }
            });
        }
    });
    Proxy {
        port,
        cut,
        refuse,
        accepted,
    }
}

// ---------------------------------------------------------------------------------------
// Login

/// STARTTLS and direct TLS, each with the session token and with the password (implicit
/// and explicit user id). The unused port is set to 1 (nothing listens there), so each
/// login provably went through the intended listener; a chat system message to oneself
/// (acknowledged, then received) proves the authenticated stream carries stanzas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_over_starttls_and_direct_tls_by_token_and_by_password() {
    let s = start().await;
    sign_up(&s, "alice").await;
    let implicit = ChatAuth::Password {
        user_id: None,
        password: PASSWORD.into(),
    };
    for (direct, auth) in [
        (false, ChatAuth::SessionToken),
        (false, implicit.clone()),
        (true, ChatAuth::SessionToken),
        (true, implicit),
    ] {
        let what = format!("direct_tls={direct} {auth:?}");
        let u = log_in(&s, "alice", |c| {
            if direct {
                c.chat.direct_tls = true;
                c.chat.port = 1;
            } else {
                c.chat.tls_port = 1;
            }
        })
        .await;
        let auth = match auth {
            ChatAuth::Password { user_id: None, .. } if direct => pw(&u),
            other => other,
        };
        let mut ev = Ev::new(u.c.chat().subscribe_chat());
        u.c.chat()
            .connect_chat(auth)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        assert_eq!(
            u.c.chat().connection_state(),
            ConnectionState::Connected,
            "{what}"
        );
        let jid = u.c.chat().chat_jid().unwrap();
        let prefix = format!("{}-{}@{}/", u.id, APP.0, s.chat_domain);
        assert!(jid.starts_with(&prefix), "{what}: {jid}");
        assert!(jid.len() > prefix.len(), "{what}: no resource in {jid}");
        let params = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
        let id =
            u.c.chat()
                .send_chat_system_message(u.id, "ping", params.clone())
                .unwrap();
        ev.sent(&id).await;
        let ChatEvent::System(sys) = ev
            .next(
                "own system message",
                |e| matches!(e, ChatEvent::System(m) if m.id == id),
            )
            .await
        else {
            unreachable!()
        };
        assert_eq!(
            (sys.sender_id, sys.body.as_str(), &sys.custom),
            (u.id, "ping", &params)
        );
        u.c.chat().destroy_chat().await;
        assert_eq!(
            u.c.chat().connection_state(),
            ConnectionState::Idle,
            "{what}"
        );
    }
}

/// A wrong password fails with `InvalidCredentials`, leaves the state at `AuthFailed`, and
/// makes exactly one connection (counted by the proxy and by the states): no reconnection
/// loop. The same for an expired session token. `reconnect_now` retries exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_once_without_reconnection_loop() {
    let s = start().await;
    let px = proxy(s.xmpp_port()).await;
    sign_up(&s, "bob").await;
    let u = log_in(&s, "bob", |c| c.chat.port = px.port).await;
    let (snap, mut states) = u.c.chat().subscribe_connection();
    assert_eq!(snap, ConnectionState::Idle);
    let r =
        u.c.chat()
            .connect_chat(ChatAuth::Password {
                user_id: Some(u.id),
                password: "wrong-password".into(),
            })
            .await;
    assert!(matches!(r, Err(Error::InvalidCredentials(_))), "{r:?}");
    assert_eq!(u.c.chat().connection_state(), ConnectionState::AuthFailed);
    assert!(u.c.chat().chat_jid().is_none());
    let seen = settle(&mut states).await;
    assert_eq!(
        seen,
        vec![ConnectionState::Connecting, ConnectionState::AuthFailed],
        "one attempt, then nothing"
    );
    assert_eq!(px.accepted(), 1, "connections made");
    assert!(matches!(
        u.c.send_queue()
            .send_message(OutgoingMessage::new("x", Some(1), "x")),
        Err(Error::ChatNotConnected)
    ));

    // reconnect_now retries with the same (wrong) credentials: one more attempt only.
    u.c.chat().reconnect_now().await;
    state(&mut states, "AuthFailed again", |s| {
        *s == ConnectionState::AuthFailed
    })
    .await;
    let seen = settle(&mut states).await;
    assert!(seen.is_empty(), "kept trying: {seen:?}");
    assert_eq!(px.accepted(), 2, "connections made");
    u.c.chat().destroy_chat().await;
    assert_eq!(u.c.chat().connection_state(), ConnectionState::Idle);
    drain(&mut states);

    // An expired session token with a login stored: renewed once, then connected.
    s.expire_all_sessions().await;
    u.c.chat()
        .connect_chat(ChatAuth::SessionToken)
        .await
        .unwrap();
    let seen = settle(&mut states).await;
    assert_eq!(
        seen,
        vec![ConnectionState::Connecting, ConnectionState::Connected]
    );
    assert_eq!(px.accepted(), 4, "the rejected attempt and the renewed one");
    u.c.chat().destroy_chat().await;
    drain(&mut states);

    // An expired token cannot be adopted, and chat then has no token to log in with.
    let token = u.c.session_token().unwrap();
    s.expire_all_sessions().await;
    let mut cfg = s.chat_config();
    cfg.chat.port = px.port;
    let adopted = Client::new(cfg).unwrap();
    let r = adopted.auth().use_token(&token).await;
    assert!(matches!(r, Err(Error::SessionExpired(_))), "{r:?}");
    let r = adopted.chat().connect_chat(ChatAuth::SessionToken).await;
    assert!(matches!(r, Err(Error::NotLoggedIn)), "{r:?}");
    assert_eq!(adopted.chat().connection_state(), ConnectionState::Idle);
    assert_eq!(px.accepted(), 4, "no attempt without a token");
}

/// States: the snapshot comes first, then exactly Connecting → Connected; a second
/// `connect_chat` is refused; disconnect and destroy are idempotent (one state change
/// each); everything that sends refuses with `ChatNotConnected` before a connection and
/// after a disconnect; `reconnect_now` after a disconnect starts a new session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_states_idempotent_close_and_not_connected() {
    let s = start().await;
    let u = user(&s, "carol").await;
    let peer = user(&s, "dave").await;
    let d = private_dialog(&u, &peer).await;

    let not_connected = |c: &Client| {
        let results = [
            c.send_queue()
                .send_message(OutgoingMessage::new(&d, Some(peer.id), "x"))
                .map(|_| ()),
            c.chat().send_typing(&d, Some(peer.id), true),
            c.chat()
                .send_delivered(&d, "5f00000000000000000000aa", peer.id),
            c.chat().send_read(&d, "5f00000000000000000000aa", peer.id),
            c.chat()
                .send_edit(&d, Some(peer.id), "5f00000000000000000000aa", "y", true)
                .map(|_| ()),
            c.chat()
                .send_delete(&d, Some(peer.id), "5f00000000000000000000aa")
                .map(|_| ()),
            c.chat()
                .send_chat_system_message(peer.id, "sys", BTreeMap::new())
                .map(|_| ()),
            c.chat().leave_room(&d),
        ];
        for r in results {
            assert!(matches!(r, Err(Error::ChatNotConnected)), "{r:?}");
        }
    };
    not_connected(&u.c);
    let r = u.c.chat().join_room(&d).await;
    assert!(matches!(r, Err(Error::ChatNotConnected)), "{r:?}");

    let (snap, mut states) = u.c.chat().subscribe_connection();
    assert_eq!(snap, ConnectionState::Idle);
    assert!(u.c.chat().chat_jid().is_none());
    u.c.chat()
        .connect_chat(ChatAuth::SessionToken)
        .await
        .unwrap();
    let r = u.c.chat().connect_chat(ChatAuth::SessionToken).await;
    assert!(matches!(r, Err(Error::InvalidInput(_))), "{r:?}");
    assert_eq!(
        settle(&mut states).await,
        vec![ConnectionState::Connecting, ConnectionState::Connected]
    );
    let (snap, _late) = u.c.chat().subscribe_connection();
    assert_eq!(
        snap,
        ConnectionState::Connected,
        "a late subscriber's snapshot"
    );
    let first_jid = u.c.chat().chat_jid().unwrap();

    u.c.chat().disconnect_chat().await;
    u.c.chat().disconnect_chat().await;
    let gone = ConnectionState::Disconnected {
        reason: "disconnected by the app".into(),
    };
    assert_eq!(settle(&mut states).await, vec![gone.clone()]);
    assert_eq!(u.c.chat().connection_state(), gone);
    assert!(u.c.chat().chat_jid().is_none());
    not_connected(&u.c);

    u.c.chat().reconnect_now().await; // a new session with the kept credentials
    connected(&mut states, "Connected after disconnect").await;
    let second_jid = u.c.chat().chat_jid().unwrap();
    assert_ne!(first_jid, second_jid, "a fresh session after a disconnect");

    u.c.chat().destroy_chat().await;
    u.c.chat().destroy_chat().await;
    assert_eq!(settle(&mut states).await, vec![ConnectionState::Idle]);
    not_connected(&u.c);
    // Destroyed: the credentials are forgotten, reconnect_now does nothing.
    u.c.chat().reconnect_now().await;
    assert!(settle(&mut states).await.is_empty());
    assert_eq!(u.c.chat().connection_state(), ConnectionState::Idle);
    // disconnect after destroy only reports Disconnected.
    u.c.chat().disconnect_chat().await;
    assert!(matches!(
        u.c.chat().connection_state(),
        ConnectionState::Disconnected { .. }
    ));
}

// ---------------------------------------------------------------------------------------
// 1-1 messages

/// Every field of a 1-1 message both ways, `Sent` from the server's acks, the automatic
/// delivered marker and an explicit read marker (as events, and in the REST history's
/// `delivered_ids`/`read_ids`), and the stored message with the same id and fields.
/// `save_to_history=false` arrives flagged so and is not stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_messages_with_every_field_both_ways_and_markers() {
    let s = start().await;
    let a = user(&s, "erin").await;
    let b = user(&s, "frank").await;
    let d = private_dialog(&a, &b).await;
    let mut a_ev = online(&a).await;
    let mut b_ev = online(&b).await;

    let mut m = OutgoingMessage::new(&d, Some(b.id), "hello <b> & ünïcode \"q\"");
    m.attachments.push(Attachment {
        kind: "image".into(),
        uid: Some("uid-1".into()),
        url: Some("https://example.com/a.png".into()),
        name: Some("a.png".into()),
        size: Some(1234),
        content_type: Some("image/png".into()),
        ..Default::default()
    });
    m.custom.insert("mood".into(), "sunny".into());
    m.custom.insert("n".into(), "42".into());
    m.markable = true;
    m.date_sent = Some(1_700_000_123);
    let id =
        a.c.send_queue()
            .send_message(m.clone())
            .unwrap()
            .id()
            .to_owned();
    assert_eq!(id.len(), 24);
    a_ev.sent(&id).await;
    let got = b_ev.message("message", |_| true).await;
    assert_eq!(
        got,
        ChatMessage {
            id: id.clone(),
            dialog_id: Some(d.clone()),
            sender_id: a.id,
            recipient_id: Some(b.id),
            body: m.body.clone(),
            attachments: m.attachments.clone(),
            custom: m.custom.clone(),
            date_sent: 1_700_000_123,
            save_to_history: true,
            markable: true,
            delayed: false,
            carbon: false,
            group: false,
        }
    );
    // b's client sent the delivered marker by itself; a reads it.
    a_ev.next("automatic delivered", |e| {
        *e == ChatEvent::Delivered {
            message_id: id.clone(),
            dialog_id: Some(d.clone()),
            user_id: b.id,
        }
    })
    .await;
    b.c.chat().send_read(&d, &id, a.id).unwrap();
    a_ev.next("read", |e| {
        *e == ChatEvent::Read {
            message_id: id.clone(),
            dialog_id: Some(d.clone()),
            user_id: b.id,
        }
    })
    .await;
    let h = stored(&a, &d, &id).await.expect("stored in the history");
    assert_eq!(h.chat_dialog_id, d);
    assert_eq!(h.message.as_deref(), Some(m.body.as_str()));
    assert_eq!((h.sender_id, h.recipient_id), (a.id, b.id));
    assert_eq!(h.date_sent, 1_700_000_123);
    assert_eq!(h.attachments, m.attachments);
    assert_eq!(h.custom.get("mood"), Some(&serde_json::json!("sunny")));
    assert_eq!(h.custom.get("n"), Some(&serde_json::json!("42")));
    // The sender counts as having read and received its own message.
    assert_eq!(h.delivered_ids, vec![a.id, b.id], "{h:?}");
    assert_eq!(h.read_ids, vec![a.id, b.id], "{h:?}");

    // The other way, with other fields; not markable: no automatic marker comes back.
    let mut back = OutgoingMessage::new(&d, Some(a.id), "");
    back.attachments.push(Attachment {
        kind: "file".into(),
        id: Some("77".into()),
        ..Default::default()
    });
    back.custom.insert("reply".into(), "yes".into());
    back.date_sent = Some(1_700_000_200);
    let back_id =
        b.c.send_queue()
            .send_message(back.clone())
            .unwrap()
            .id()
            .to_owned();
    b_ev.sent(&back_id).await;
    let got = a_ev.message("reply", |_| true).await;
    assert_eq!(
        got,
        ChatMessage {
            id: back_id.clone(),
            dialog_id: Some(d.clone()),
            sender_id: b.id,
            recipient_id: Some(a.id),
            body: String::new(),
            attachments: back.attachments.clone(),
            custom: back.custom.clone(),
            date_sent: 1_700_000_200,
            save_to_history: true,
            markable: false,
            delayed: false,
            carbon: false,
            group: false,
        }
    );
    let h = stored(&b, &d, &back_id).await.expect("reply stored");
    assert_eq!((h.sender_id, h.recipient_id), (b.id, a.id));
    assert_eq!(h.attachments, back.attachments);
    assert_eq!((h.delivered_ids, h.read_ids), (vec![b.id], vec![b.id]));

    // Not saved to history.
    let mut ephemeral = OutgoingMessage::new(&d, Some(b.id), "not stored");
    ephemeral.save_to_history = false;
    let eph =
        a.c.send_queue()
            .send_message(ephemeral)
            .unwrap()
            .id()
            .to_owned();
    let got = b_ev.message("ephemeral", |m| m.id == eph).await;
    assert!(!got.save_to_history, "{got:?}");
    assert!(stored(&a, &d, &eph).await.is_none());

    // Nothing duplicated anywhere.
    let b_rest = b_ev.settle().await;
    assert!(message_ids(&b_rest).is_empty(), "{b_rest:?}");
    let a_rest = a_ev.settle().await;
    assert!(message_ids(&a_rest).is_empty(), "{a_rest:?}");
    assert!(
        !a_rest
            .iter()
            .any(|e| matches!(e, ChatEvent::Delivered { .. })),
        "{a_rest:?}"
    );
}

/// `composing` arrives, then the automatic `paused` once the configured `typing_idle`
/// (500 ms) passed without another call, and not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_composing_then_automatic_paused() {
    let s = start().await;
    let a = user(&s, "gina").await;
    let b = user(&s, "hank").await;
    let d = private_dialog(&a, &b).await;
    let _a_ev = online(&a).await;
    let mut b_ev = online(&b).await;
    let typing = |composing| ChatEvent::Typing {
        dialog_id: Some(d.clone()),
        user_id: a.id,
        composing,
    };
    a.c.chat().send_typing(&d, Some(b.id), true).unwrap();
    let t0 = Instant::now();
    b_ev.next("composing", |e| *e == typing(true)).await;
    b_ev.next("automatic paused", |e| *e == typing(false)).await;
    let idle = t0.elapsed();
    assert!(idle >= Duration::from_millis(450), "paused after {idle:?}");
    assert!(b_ev.settle().await.is_empty());

    // Another composing restarts the idle timer; an explicit paused cancels it.
    a.c.chat().send_typing(&d, Some(b.id), true).unwrap();
    b_ev.next("composing again", |e| *e == typing(true)).await;
    a.c.chat().send_typing(&d, Some(b.id), false).unwrap();
    b_ev.next("explicit paused", |e| *e == typing(false)).await;
    let rest = b_ev.settle().await;
    assert!(rest.is_empty(), "a second paused followed: {rest:?}");
}

/// An edit and a delete over chat reach the peer as events and change the REST history:
/// the body is replaced, then the message is gone. Another user's edit of a message is
/// not applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_and_delete_over_chat_update_the_history() {
    let s = start().await;
    let a = user(&s, "ivy").await;
    let b = user(&s, "jack").await;
    let d = private_dialog(&a, &b).await;
    let mut a_ev = online(&a).await;
    let mut b_ev = online(&b).await;

    let id =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "original"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.message("original", |m| m.id == id).await;

    let edit =
        a.c.chat()
            .send_edit(&d, Some(b.id), &id, "edited", true)
            .unwrap();
    a_ev.sent(&edit).await;
    b_ev.next("edit", |e| {
        *e == ChatEvent::Edited {
            message_id: id.clone(),
            dialog_id: Some(d.clone()),
            user_id: a.id,
            body: "edited".into(),
            last: true,
        }
    })
    .await;
    let h = stored(&a, &d, &id).await.unwrap();
    assert_eq!(h.message.as_deref(), Some("edited"));

    // b may not edit a's message: delivered as an event, the history keeps a's body.
    let forged =
        b.c.chat()
            .send_edit(&d, Some(a.id), &id, "forged", true)
            .unwrap();
    b_ev.sent(&forged).await;
    a_ev.next(
        "forged edit event",
        |e| matches!(e, ChatEvent::Edited { body, .. } if body == "forged"),
    )
    .await;
    assert_eq!(
        stored(&a, &d, &id).await.unwrap().message.as_deref(),
        Some("edited")
    );

    let del = a.c.chat().send_delete(&d, Some(b.id), &id).unwrap();
    a_ev.sent(&del).await;
    b_ev.next("delete", |e| {
        *e == ChatEvent::Deleted {
            message_id: id.clone(),
            dialog_id: Some(d.clone()),
            user_id: a.id,
        }
    })
    .await;
    assert!(stored(&a, &d, &id).await.is_none(), "deleted for a");
    assert!(stored(&b, &d, &id).await.is_none(), "deleted for b");
}

// ---------------------------------------------------------------------------------------
// Group chat

/// Without joining (ConnectyCube style) a group message fans out to every occupant,
/// carries the dialog id, is stored, and does not echo back to the sender; with
/// `join_room` the same holds (each copy once); after `leave_room` the room still
/// delivers to occupants. Group typing reaches the others only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_chat_with_and_without_join() {
    let s = start().await;
    let a = user(&s, "kate").await;
    let b = user(&s, "liam").await;
    let c = user(&s, "mona").await;
    let d = group_dialog(&a, &[&b, &c]).await;
    let mut a_ev = online(&a).await;
    let mut b_ev = online(&b).await;
    let mut c_ev = online(&c).await;

    let check = |m: &ChatMessage, id: &str, body: &str| {
        assert_eq!(m.id, id);
        assert_eq!(m.dialog_id.as_deref(), Some(d.as_str()));
        assert_eq!(m.sender_id, a.id);
        assert_eq!(m.recipient_id, None);
        assert_eq!(m.body, body);
        assert!(m.group && !m.carbon && !m.delayed, "{m:?}");
    };

    // Without join.
    let mut out = OutgoingMessage::new(&d, None, "hi all");
    out.custom.insert("topic".into(), "standup".into());
    out.date_sent = Some(1_700_001_000);
    let g1 = a.c.send_queue().send_message(out).unwrap().id().to_owned();
    a_ev.sent(&g1).await;
    for ev in [&mut b_ev, &mut c_ev] {
        let m = ev.message("group message", |_| true).await;
        check(&m, &g1, "hi all");
        assert_eq!(m.date_sent, 1_700_001_000);
        assert_eq!(m.custom.get("topic").map(String::as_str), Some("standup"));
    }
    let h = stored(&b, &d, &g1).await.expect("group message stored");
    assert_eq!((h.sender_id, h.message.as_deref()), (a.id, Some("hi all")));
    assert_eq!(h.date_sent, 1_700_001_000);

    // Typing in the group: the others get it, the sender does not.
    a.c.chat().send_typing(&d, None, true).unwrap();
    for ev in [&mut b_ev, &mut c_ev] {
        ev.next("group typing", |e| {
            *e == ChatEvent::Typing {
                dialog_id: Some(d.clone()),
                user_id: a.id,
                composing: true,
            }
        })
        .await;
    }
    a.c.chat().send_typing(&d, None, false).unwrap();

    // With join.
    for u in [&a, &b, &c] {
        u.c.chat().join_room(&d).await.unwrap();
    }
    let g2 =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, None, "joined now"))
            .unwrap()
            .id()
            .to_owned();
    a_ev.sent(&g2).await;
    for ev in [&mut b_ev, &mut c_ev] {
        let m = ev.message("group message after join", |m| m.id == g2).await;
        check(&m, &g2, "joined now");
    }
    assert!(stored(&c, &d, &g2).await.is_some());

    // Replies from b reach a and c once.
    b.c.chat().leave_room(&d).unwrap();
    let g3 =
        b.c.send_queue()
            .send_message(OutgoingMessage::new(&d, None, "from b"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.sent(&g3).await;
    for ev in [&mut a_ev, &mut c_ev] {
        let m = ev.message("b's group message", |m| m.id == g3).await;
        assert_eq!((m.sender_id, m.group), (b.id, true));
    }

    for (name, ev) in [("a", &mut a_ev), ("b", &mut b_ev), ("c", &mut c_ev)] {
        let rest = message_ids(&ev.settle().await);
        assert!(
            rest.is_empty(),
            "{name} got a copy again or its own echo: {rest:?}"
        );
    }
}

/// A message to a group the sender does not belong to bounces with a `MessageError`
/// (403) and reaches nobody; to a dialog that does not exist, 503. Joining such a room
/// fails with `Forbidden`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_to_foreign_or_missing_rooms_bounce() {
    let s = start().await;
    let a = user(&s, "nina").await;
    let b = user(&s, "omar").await;
    let outsider = user(&s, "pete").await;
    let d = group_dialog(&a, &[&b]).await;
    let _a_ev = online(&a).await;
    let mut b_ev = online(&b).await;
    let mut o_ev = online(&outsider).await;

    // The server acknowledges the message (send_message returns its id), then bounces it:
    // a MessageError, and the stored message turns Failed.
    let sending = outsider
        .c
        .send_queue()
        .send_message(OutgoingMessage::new(&d, None, "let me in"))
        .unwrap();
    let id = sending.id().to_owned();
    let acked = timeout(STEP, sending.into_future())
        .await
        .expect("acknowledged in time");
    assert_eq!(acked.as_ref(), Ok(&id));
    let e = o_ev
        .next(
            "MessageError",
            |e| matches!(e, ChatEvent::MessageError { message_id, .. } if *message_id == id),
        )
        .await;
    let ChatEvent::MessageError { code, text, .. } = e else {
        unreachable!()
    };
    assert_eq!(code, 403, "{text}");
    assert!(!text.is_empty());
    let store = outsider.c.store().unwrap();
    timeout(STEP, async {
        while !matches!(
            store.message(&id).unwrap().map(|m| m.state),
            Some(MessageState::Failed { .. })
        ) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the bounced message is Failed in the store");
    assert!(stored(&a, &d, &id).await.is_none());

    let missing = "5f00000000000000000000ff";
    let id2 = outsider
        .c
        .send_queue()
        .send_message(OutgoingMessage::new(missing, None, "anyone?"))
        .unwrap()
        .id()
        .to_owned();
    let e = o_ev
        .next(
            "MessageError (missing)",
            |e| matches!(e, ChatEvent::MessageError { message_id, .. } if *message_id == id2),
        )
        .await;
    assert!(
        matches!(e, ChatEvent::MessageError { code: 503, .. }),
        "{e:?}"
    );

    let r = outsider.c.chat().join_room(&d).await;
    assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");

    let got = b_ev.settle().await;
    assert!(
        message_ids(&got).is_empty(),
        "the bounced message leaked: {got:?}"
    );
}

// ---------------------------------------------------------------------------------------
// REST pushes

/// What the REST API pushes over chat: a reaction (`Reactions`), an edit (`Edited`), a
/// forced delete (`Deleted`), a message created with `send_to_chat` (`Message`), and a
/// system message (`System`); plus a chat system message sent by a client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_pushes_and_system_messages() {
    let s = start().await;
    let a = user(&s, "quinn").await;
    let b = user(&s, "rosa").await;
    let d = private_dialog(&a, &b).await;
    let mut a_ev = online(&a).await;
    let mut b_ev = online(&b).await;

    let id =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "react to me"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.message("message", |m| m.id == id).await;

    b.c.messages().react(&id, Some("+1"), None).await.unwrap();
    a_ev.next("reactions", |e| {
        *e == ChatEvent::Reactions {
            message_id: id.clone(),
            dialog_id: Some(d.clone()),
            user_id: b.id,
            add: vec!["+1".into()],
            remove: vec![],
        }
    })
    .await;
    b.c.messages()
        .react(&id, Some("heart"), Some("+1"))
        .await
        .unwrap();
    a_ev.next("reactions swap", |e| {
        *e == ChatEvent::Reactions {
            message_id: id.clone(),
            dialog_id: Some(d.clone()),
            user_id: b.id,
            add: vec!["heart".into()],
            remove: vec!["+1".into()],
        }
    })
    .await;

    a.c.messages()
        .edit_message(&d, &id, "edited over REST")
        .await
        .unwrap();
    b_ev.next("REST edit", |e| {
        matches!(e, ChatEvent::Edited { message_id, body, user_id, .. }
            if *message_id == id && body == "edited over REST" && *user_id == a.id)
    })
    .await;

    let r =
        a.c.messages()
            .delete_messages(std::slice::from_ref(&id), true)
            .await
            .unwrap();
    assert_eq!(r.deleted.ids, vec![id.clone()], "{r:?}");
    b_ev.next("forced delete", |e| {
        *e == ChatEvent::Deleted {
            message_id: id.clone(),
            dialog_id: Some(d.clone()),
            user_id: a.id,
        }
    })
    .await;

    let created =
        a.c.messages()
            .create_message(NewMessage {
                dialog_id: d.clone(),
                body: "over REST".into(),
                send_to_chat: true,
                markable: true,
                ..Default::default()
            })
            .await
            .unwrap();
    let got = b_ev.message("REST message", |m| m.id == created.id).await;
    assert_eq!(
        (got.body.as_str(), got.sender_id, got.dialog_id.as_deref()),
        ("over REST", a.id, Some(d.as_str()))
    );
    assert!(got.markable && !got.group, "{got:?}");

    let params = BTreeMap::from([
        ("body".to_owned(), "dialog/NEW".to_owned()),
        ("dialog_id".to_owned(), d.clone()),
    ]);
    let sys_id =
        a.c.messages()
            .send_system_message(b.id, params)
            .await
            .unwrap();
    let ChatEvent::System(sys) = b_ev
        .next("REST system message", |e| matches!(e, ChatEvent::System(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(sys.id, sys_id);
    assert_eq!((sys.sender_id, sys.body.as_str()), (a.id, "dialog/NEW"));
    assert_eq!(sys.custom.get("dialog_id"), Some(&d));

    let params = BTreeMap::from([("photo_uid".to_owned(), "p1".to_owned())]);
    let chat_sys =
        a.c.chat()
            .send_chat_system_message(b.id, "dialog/UPDATE", params.clone())
            .unwrap();
    a_ev.sent(&chat_sys).await;
    let ChatEvent::System(sys) = b_ev
        .next("chat system message", |e| matches!(e, ChatEvent::System(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(sys.id, chat_sys);
    assert_eq!(
        (sys.sender_id, sys.body.as_str(), &sys.custom),
        (a.id, "dialog/UPDATE", &params)
    );
    let rest = b_ev.settle().await;
    assert!(
        !rest
            .iter()
            .any(|e| matches!(e, ChatEvent::System(_) | ChatEvent::Message(_))),
        "{rest:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Several devices, offline, resumption

/// A second client of the same user gets carbon copies of what the first one sends
/// (flagged `carbon`, sender and recipient intact); a message to the user reaches both
/// devices once each, neither as a carbon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carbons_reach_the_second_device() {
    let s = start().await;
    let a1 = user(&s, "sam").await;
    let a2 = log_in(&s, "sam", |_| {}).await;
    let b = user(&s, "tess").await;
    let d = private_dialog(&a1, &b).await;
    let mut a1_ev = online(&a1).await;
    let mut a2_ev = online(&a2).await;
    let mut b_ev = online(&b).await;
    assert_ne!(a1.c.chat().chat_jid(), a2.c.chat().chat_jid());

    let mut m = OutgoingMessage::new(&d, Some(b.id), "from device 1");
    m.custom.insert("k".into(), "v".into());
    let id = a1.c.send_queue().send_message(m).unwrap().id().to_owned();
    let copy = a2_ev.message("carbon", |m| m.id == id).await;
    assert!(copy.carbon && !copy.delayed && !copy.group, "{copy:?}");
    assert_eq!((copy.sender_id, copy.recipient_id), (a1.id, Some(b.id)));
    assert_eq!(copy.body, "from device 1");
    assert_eq!(copy.dialog_id.as_deref(), Some(d.as_str()));
    assert_eq!(copy.custom.get("k").map(String::as_str), Some("v"));
    b_ev.message("original", |m| m.id == id).await;

    let reply =
        b.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(a1.id), "to both"))
            .unwrap()
            .id()
            .to_owned();
    for ev in [&mut a1_ev, &mut a2_ev] {
        let got = ev.message("reply", |m| m.id == reply).await;
        assert!(!got.carbon, "{got:?}");
        assert_eq!((got.sender_id, got.recipient_id), (b.id, Some(a1.id)));
    }
    for (name, ev) in [("a1", &mut a1_ev), ("a2", &mut a2_ev), ("b", &mut b_ev)] {
        let ids = message_ids(&ev.settle().await);
        assert!(ids.is_empty(), "{name} got more: {ids:?}");
    }
}

/// Messages sent while the recipient is offline arrive exactly once when it comes back,
/// flagged `delayed`, with their fields: first on a first `connect_chat` (offline
/// storage), then after `disconnect_chat` + `reconnect_now` (offline storage has them, the
/// store's sync puts them in the timeline too: still one event each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_messages_arrive_once_flagged_delayed() {
    let s = start().await;
    let a = user(&s, "uma").await;
    let b = user(&s, "vic").await;
    let d = private_dialog(&a, &b).await;
    let mut a_ev = online(&a).await;

    let mut m = OutgoingMessage::new(&d, Some(b.id), "while you were out");
    m.date_sent = Some(1_700_002_000);
    m.markable = true;
    let id1 = a.c.send_queue().send_message(m).unwrap().id().to_owned();
    a_ev.sent(&id1).await;

    let mut b_ev = online(&b).await;
    let got = b_ev.message("offline message", |m| m.id == id1).await;
    assert!(got.delayed && !got.carbon, "{got:?}");
    assert_eq!(
        (got.body.as_str(), got.date_sent, got.sender_id),
        ("while you were out", 1_700_002_000, a.id)
    );
    assert_eq!(got.dialog_id.as_deref(), Some(d.as_str()));
    a_ev.next("delivered for the offline message", |e| {
        matches!(e, ChatEvent::Delivered { message_id, user_id, .. } if *message_id == id1 && *user_id == b.id)
    })
    .await;
    let ids = message_ids(&b_ev.settle().await);
    assert_eq!(count(&ids, &id1), 0, "delivered twice: {ids:?}");

    // Away again: disconnect, two messages, come back with reconnect_now.
    b.c.chat().disconnect_chat().await;
    let mut ids_away = Vec::new();
    for i in 0..2 {
        let id =
            a.c.send_queue()
                .send_message(OutgoingMessage::new(&d, Some(b.id), format!("away {i}")))
                .unwrap()
                .id()
                .to_owned();
        a_ev.sent(&id).await;
        ids_away.push(id);
    }
    let (_, mut b_states) = b.c.chat().subscribe_connection();
    b.c.chat().reconnect_now().await;
    connected(&mut b_states, "back").await;
    for id in &ids_away {
        let got = b_ev
            .message("message sent while away", |m| m.id == *id)
            .await;
        assert!(got.delayed, "{got:?}");
    }
    let ids = message_ids(&b_ev.settle().await);
    for id in ids_away.iter().chain([&id1]) {
        assert_eq!(count(&ids, id), 0, "{id} delivered twice: {ids:?}");
    }
    assert!(ids.is_empty(), "unexpected messages: {ids:?}");
}

/// B chats through a proxy that is severed with messages in flight both ways: the stream
/// is resumed (same JID), every message reaches the other side exactly once, B's message
/// queued while cut is sent and acknowledged, and the history holds each message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connection_resumes_without_loss_or_duplicates() {
    let s = start().await;
    let a = user(&s, "walt").await;
    sign_up(&s, "xena").await;
    let px = proxy(s.xmpp_port()).await;
    let b = log_in(&s, "xena", |c| c.chat.port = px.port).await;
    let d = private_dialog(&a, &b).await;
    let mut a_ev = online(&a).await;
    let (_, mut b_states) = b.c.chat().subscribe_connection();
    let mut b_ev = online(&b).await;
    let jid = b.c.chat().chat_jid().unwrap();

    let before =
        b.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(a.id), "before cut"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.sent(&before).await;
    a_ev.message("before cut", |m| m.id == before).await;

    let mut to_b = Vec::new();
    let mut to_a = Vec::new();
    for i in 0..3 {
        to_b.push(
            a.c.send_queue()
                .send_message(OutgoingMessage::new(&d, Some(b.id), format!("a{i}")))
                .unwrap()
                .id()
                .to_owned(),
        );
        to_a.push(
            b.c.send_queue()
                .send_message(OutgoingMessage::new(&d, Some(a.id), format!("b{i}")))
                .unwrap()
                .id()
                .to_owned(),
        );
    }
    // Cut at once: some of these are in flight, some not yet acknowledged.
    px.sever();
    for i in 3..6 {
        to_b.push(
            a.c.send_queue()
                .send_message(OutgoingMessage::new(&d, Some(b.id), format!("a{i}")))
                .unwrap()
                .id()
                .to_owned(),
        );
        to_a.push(
            b.c.send_queue()
                .send_message(OutgoingMessage::new(&d, Some(a.id), format!("b{i}")))
                .unwrap()
                .id()
                .to_owned(),
        );
    }
    state(&mut b_states, "Reconnecting", |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    connected(&mut b_states, "Connected again").await;
    assert_eq!(
        b.c.chat().chat_jid().unwrap(),
        jid,
        "resumed, not a new session"
    );
    assert_eq!(px.accepted(), 2);

    for id in &to_b {
        b_ev.message("message to b", |m| m.id == *id).await;
    }
    for id in &to_a {
        a_ev.message("message to a", |m| m.id == *id).await;
    }
    let b_rest = b_ev.settle().await;
    let a_rest = a_ev.settle().await;
    assert!(
        message_ids(&b_rest).is_empty(),
        "duplicates at b: {b_rest:?}"
    );
    assert!(
        message_ids(&a_rest).is_empty(),
        "duplicates at a: {a_rest:?}"
    );
    // None of what b sent failed (the acknowledgements are checked in the next test).
    assert!(
        !b_rest.iter().any(|e| matches!(e, ChatEvent::Failed { .. })),
        "{b_rest:?}"
    );
    let h = history(&a, &d).await;
    for id in to_a.iter().chain(&to_b).chain([&before]) {
        assert_eq!(
            h.iter().filter(|m| m.id == *id).count(),
            1,
            "{id} in history"
        );
    }
    assert_eq!(h.len(), 13);
}

/// `Sent` arrives for each message b sent across a cut, none `Failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_across_a_cut_are_acknowledged() {
    let s = start().await;
    let a = user(&s, "yara").await;
    sign_up(&s, "zane").await;
    let px = proxy(s.xmpp_port()).await;
    let b = log_in(&s, "zane", |c| c.chat.port = px.port).await;
    let d = private_dialog(&a, &b).await;
    let mut a_ev = online(&a).await;
    let (_, mut b_states) = b.c.chat().subscribe_connection();
    let mut b_ev = online(&b).await;
    px.sever();
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            b.c.send_queue()
                .send_message(OutgoingMessage::new(&d, Some(a.id), format!("q{i}")))
                .unwrap()
                .id()
                .to_owned(),
        );
    }
    connected(&mut b_states, "Connected again").await;
    let mut acked = Vec::new();
    timeout(STEP, async {
        while !ids.iter().all(|id| acked.contains(id)) {
            match b_ev.rx.recv().await.unwrap() {
                ChatEvent::Sent { message_id } => acked.push(message_id),
                ChatEvent::Failed { message_id, reason } => {
                    panic!("{message_id} failed: {reason}")
                }
                _ => {}
            }
        }
    })
    .await
    .expect("every message acknowledged");
    let mut arrived = Vec::new();
    while arrived.len() < ids.len() {
        arrived.push(
            a_ev.message("queued message", |m| ids.contains(&m.id))
                .await
                .id,
        );
    }
    assert_eq!(arrived, ids, "arrival order");
    // Each acknowledged once; the order of the Sent events across a resumption is not
    // guaranteed (observed: the stanza written to the dead connection is reported last),
    // the delivery order is (checked above).
    acked.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(acked, expected, "Sent events");
    let late = b_ev.settle().await;
    assert!(
        !late
            .iter()
            .any(|e| matches!(e, ChatEvent::Sent { .. } | ChatEvent::Failed { .. })),
        "{late:?}"
    );
    assert!(message_ids(&a_ev.settle().await).is_empty());
}

/// After `disconnect_chat`, group messages (which the server does not store offline) and a
/// private one are sent; `reconnect_now` logs in afresh (new JID). The one sync (the store's,
/// on every connection) brings the missed group messages into the open group timeline, each
/// once and in send order after the message delivered before the gap; no `ChatEvent::Message`
/// replays them (chat events are live only). The private message comes from the server's
/// offline storage, once, flagged `delayed`. The joined room is re-joined and live group
/// messages keep arriving once, as events and in the timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_login_syncs_missed_group_messages_into_the_timeline_once() {
    let s = start().await;
    let a = user(&s, "abby").await;
    let b = user(&s, "ben").await;
    let c = user(&s, "cody").await;
    let g = group_dialog(&a, &[&b, &c]).await;
    let p = private_dialog(&a, &b).await;
    let mut a_ev = online(&a).await;
    let (_, mut b_states) = b.c.chat().subscribe_connection();
    let mut b_ev = online(&b).await;
    b.c.chat().join_room(&g).await.unwrap();
    let jid = b.c.chat().chat_jid().unwrap();
    drain(&mut b_states);
    let mut tl = Live::new(b.c.timeline().watch_timeline(&g, 50).unwrap());

    let live =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&g, None, "live"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.message("live group message", |m| m.id == live).await;
    tl.until("the live message in the timeline", |l| {
        find(l, &live).is_some()
    })
    .await;

    b.c.chat().disconnect_chat().await;
    let mut away = Vec::new();
    for i in 0..3 {
        let id =
            a.c.send_queue()
                .send_message(OutgoingMessage::new(&g, None, format!("group {i}")))
                .unwrap()
                .id()
                .to_owned();
        a_ev.sent(&id).await;
        away.push(id);
    }
    let priv_id =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&p, Some(b.id), "private while away"))
            .unwrap()
            .id()
            .to_owned();
    a_ev.sent(&priv_id).await;
    // c (never joined, connected) posts too.
    let mut c_ev = online(&c).await;
    let from_c =
        c.c.send_queue()
            .send_message(OutgoingMessage::new(&g, None, "from c"))
            .unwrap()
            .id()
            .to_owned();
    c_ev.sent(&from_c).await;
    away.push(from_c.clone());
    // Nothing of it reached b's timeline while away.
    tl.drain();
    assert_eq!(ids_of(&tl.list), [live.as_str()]);

    b.c.chat().reconnect_now().await;
    connected(&mut b_states, "fresh login").await;
    assert_ne!(b.c.chat().chat_jid().unwrap(), jid, "a fresh session");
    let expected: Vec<String> = std::iter::once(live.clone())
        .chain(away.iter().cloned())
        .collect();
    let list = tl
        .until("the missed group messages in the timeline", |l| {
            away.iter().all(|id| find(l, id).is_some())
        })
        .await;
    assert_eq!(ids_of(&list), expected, "once each, in send order");
    for id in &away {
        let m = find(&list, id).unwrap();
        assert_eq!(m.dialog_id, g);
        assert!(!m.outgoing, "{m:?}");
    }
    let m = b_ev
        .message("private message while away (offline storage)", |m| {
            m.id == priv_id
        })
        .await;
    assert!(m.delayed && !m.group, "{m:?}");
    let ids = message_ids(&b_ev.settle().await);
    assert!(ids.is_empty(), "replayed as events: {ids:?}");
    tl.drain();
    assert_eq!(ids_of(&tl.list), expected, "the timeline changed again");

    // Live again (the room was re-joined; the server fans out to occupants anyway).
    let again =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&g, None, "live again"))
            .unwrap()
            .id()
            .to_owned();
    let m = b_ev
        .message("live group message after", |m| m.id == again)
        .await;
    assert!(!m.delayed, "{m:?}");
    let list = tl
        .until("the live message after in the timeline", |l| {
            find(l, &again).is_some()
        })
        .await;
    let mut expected = expected;
    expected.push(again.clone());
    assert_eq!(ids_of(&list), expected);
    let ids = message_ids(&b_ev.settle().await);
    assert!(ids.is_empty(), "repeated: {ids:?}");
}

/// `reconnect_now` on a live connection drops it and resumes (same JID, nothing lost);
/// `set_network_available(false)` reports `Disconnected("network unavailable")` and makes
/// no connection attempt while down; a message sent meanwhile arrives once after
/// `set_network_available(true)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_now_and_network_availability() {
    let s = start().await;
    let a = user(&s, "dina").await;
    sign_up(&s, "eli").await;
    let px = proxy(s.xmpp_port()).await;
    let b = log_in(&s, "eli", |c| c.chat.port = px.port).await;
    let d = private_dialog(&a, &b).await;
    let mut a_ev = online(&a).await;
    let (_, mut b_states) = b.c.chat().subscribe_connection();
    let mut b_ev = online(&b).await;
    let jid = b.c.chat().chat_jid().unwrap();
    drain(&mut b_states);

    b.c.chat().reconnect_now().await;
    state(
        &mut b_states,
        "Reconnecting (now)",
        |s| matches!(s, ConnectionState::Reconnecting { next_delay, .. } if next_delay.is_zero()),
    )
    .await;
    connected(&mut b_states, "Connected (now)").await;
    assert_eq!(b.c.chat().chat_jid().unwrap(), jid, "resumed");
    assert_eq!(px.accepted(), 2);
    let after =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "after reconnect_now"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.message("message after reconnect_now", |m| m.id == after)
        .await;

    b.c.chat().set_network_available(false);
    state(&mut b_states, "Disconnected (network)", |s| {
        *s == ConnectionState::Disconnected {
            reason: "network unavailable".into(),
        }
    })
    .await;
    let while_down =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "while down"))
            .unwrap()
            .id()
            .to_owned();
    a_ev.sent(&while_down).await;
    let seen = settle(&mut b_states).await;
    assert!(
        seen.is_empty(),
        "tried while the network was down: {seen:?}"
    );
    assert_eq!(px.accepted(), 2, "no connection attempt while down");
    assert!(message_ids(&b_ev.take()).is_empty());

    b.c.chat().set_network_available(true);
    connected(&mut b_states, "Connected (network back)").await;
    assert_eq!(px.accepted(), 3);
    let got = b_ev
        .message("message sent while down", |m| m.id == while_down)
        .await;
    assert_eq!(got.body, "while down");
    let ids = message_ids(&b_ev.settle().await);
    assert!(ids.is_empty(), "repeated: {ids:?}");
    b.c.chat().destroy_chat().await;
    a.c.chat().destroy_chat().await;
}

/// The REST session expires while chat is connected over its token, and the connection
/// drops. The client logged in with a password, so the rejected reconnect renews the session
/// from the stored login and connects at once with the new token: no `AuthFailed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_on_reconnect_renews_from_the_stored_login() {
    let s = start().await;
    sign_up(&s, "fran").await;
    let px = proxy(s.xmpp_port()).await;
    let u = log_in(&s, "fran", |c| c.chat.port = px.port).await;
    let (_, mut sessions) = u.c.subscribe_session();
    let (_, mut states) = u.c.chat().subscribe_connection();
    u.c.chat()
        .connect_chat(ChatAuth::SessionToken)
        .await
        .unwrap();
    drain(&mut states);
    let before = u.c.session_token().unwrap();
    s.expire_all_sessions().await;
    px.sever();
    let mut seen = Vec::new();
    timeout(STEP, async {
        loop {
            let st = states.recv().await.unwrap();
            let done = st == ConnectionState::Connected;
            seen.push(st);
            if done {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not connected again; saw {seen:?}"));
    assert!(
        !seen.contains(&ConnectionState::AuthFailed),
        "renewal should hide the rejection: {seen:?}"
    );
    assert_ne!(u.c.session_token().unwrap(), before, "a new token");
    let renewed = timeout(STEP, async {
        loop {
            if let SessionEvent::Renewed { user_id } = sessions.recv().await.unwrap() {
                return user_id;
            }
        }
    })
    .await
    .expect("SessionEvent::Renewed");
    assert_eq!(renewed, u.id);
    let later = settle(&mut states).await;
    assert!(later.is_empty(), "not stable: {later:?}");
    u.c.chat().destroy_chat().await;
}

/// The same with a session adopted from a token (no login stored, so nothing to renew
/// from): the reconnect is rejected, `AuthFailed` once, no retry loop. After a new REST
/// login, `reconnect_now` connects with the renewed token (re-read per attempt).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_adopted_token_on_reconnect_is_auth_failed_then_renewed() {
    let s = start().await;
    sign_up(&s, "fred").await;
    let px = proxy(s.xmpp_port()).await;
    let token = log_in(&s, "fred", |_| {}).await.c.session_token().unwrap();
    let mut cfg = s.chat_config();
    cfg.chat.port = px.port;
    let c = Client::new(cfg).unwrap();
    c.auth().use_token(&token).await.unwrap();
    let (_, mut states) = c.chat().subscribe_connection();
    c.chat().connect_chat(ChatAuth::SessionToken).await.unwrap();
    drain(&mut states);
    s.expire_all_sessions().await;
    px.sever();
    state(&mut states, "AuthFailed on reconnect", |s| {
        *s == ConnectionState::AuthFailed
    })
    .await;
    let attempts = px.accepted();
    let later = settle(&mut states).await;
    assert!(later.is_empty(), "kept trying: {later:?}");
    assert_eq!(px.accepted(), attempts, "no more connection attempts");

    c.auth()
        .log_in(LoginId::Login("fred".into()), PASSWORD)
        .await
        .unwrap();
    c.chat().reconnect_now().await;
    connected(&mut states, "Connected with the renewed token").await;
    assert_eq!(px.accepted(), attempts + 1);
    c.chat().destroy_chat().await;
}

/// With the server unreachable, the first attempt goes at once, then the delays grow (100,
/// 200 ms without jitter),
/// `max_attempts` gives up with `Disconnected`, nothing is tried after that, and
/// `reconnect_now` recovers once the server is reachable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_gives_up_then_reconnect_now_recovers() {
    let s = start().await;
    sign_up(&s, "gail").await;
    let px = proxy(s.xmpp_port()).await;
    let u = log_in(&s, "gail", |c| {
        c.chat.port = px.port;
        c.reconnect.jitter = 0.0;
        c.reconnect.max_attempts = Some(3);
    })
    .await;
    let (_, mut states) = u.c.chat().subscribe_connection();
    u.c.chat()
        .connect_chat(ChatAuth::SessionToken)
        .await
        .unwrap();
    drain(&mut states);
    px.refuse.store(true, Ordering::SeqCst);
    px.sever();
    let mut seen = Vec::new();
    timeout(STEP, async {
        loop {
            match states.recv().await.unwrap() {
                ConnectionState::Reconnecting {
                    attempt,
                    next_delay,
                } => seen.push((attempt, next_delay)),
                ConnectionState::Disconnected { reason } => {
                    assert!(reason.contains("gave up after 3 attempts"), "{reason}");
                    break;
                }
                other => panic!("unexpected state {other:?}"),
            }
        }
    })
    .await
    .expect("did not give up");
    let ms = Duration::from_millis;
    assert_eq!(seen, vec![(1, ms(0)), (2, ms(100)), (3, ms(200))]);
    assert_eq!(px.accepted(), 4, "the first connection and three attempts");
    assert!(
        settle(&mut states).await.is_empty(),
        "kept trying after giving up"
    );
    assert_eq!(px.accepted(), 4);
    px.refuse.store(false, Ordering::SeqCst);
    u.c.chat().reconnect_now().await;
    connected(&mut states, "Connected after reconnect_now").await;
    u.c.chat().destroy_chat().await;
}

/// Issue 16: a cut while the server is reachable is repaired at once, whatever the backoff.
/// With `initial_delay` at 30 s, the first attempt after a cut goes without waiting (the
/// stream resumes within [`STEP`], far below 30 s); only an attempt that failed makes the
/// next one wait, and `set_network_available(true)` ends that wait at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_reconnects_at_once_whatever_the_initial_delay() {
    let s = start().await;
    sign_up(&s, "ivo").await;
    let px = proxy(s.xmpp_port()).await;
    let long = Duration::from_secs(30);
    let u = log_in(&s, "ivo", |c| {
        c.chat.port = px.port;
        c.reconnect.initial_delay = long;
        c.reconnect.max_delay = long * 2;
        c.reconnect.jitter = 0.0;
        // Every connection that came up counts as stable, so each cut below is a first
        // attempt (by default one cut within 30 s of a reconnection is a failed attempt).
        c.reconnect.stable_after = Duration::ZERO;
    })
    .await;
    let (_, mut states) = u.c.chat().subscribe_connection();
    let _ev = online(&u).await;
    let jid = u.c.chat().chat_jid().unwrap();
    drain(&mut states);

    // Three cuts in a row (each after the connection came back): each goes at once.
    for round in 1..=3 {
        let cut = Instant::now();
        px.sever();
        state(&mut states, "Reconnecting at once", |s| {
            *s == ConnectionState::Reconnecting {
                attempt: 1,
                next_delay: Duration::ZERO,
            }
        })
        .await;
        connected(&mut states, "Connected again without waiting").await;
        // Not asserted (no timed assertions): what it took, for the report.
        println!(
            "cut {round}: Connected again after {:.1} ms",
            cut.elapsed().as_secs_f64() * 1e3
        );
        assert_eq!(u.c.chat().chat_jid().unwrap(), jid, "resumed");
    }
    assert_eq!(px.accepted(), 4, "one attempt per cut");
    // Cut with the server refused: the first attempt (at once) fails, so the next one waits
    // the full initial delay...
    drain(&mut states);
    px.refuse.store(true, Ordering::SeqCst);
    px.sever();
    state(
        &mut states,
        "the attempt after a failed one waits",
        |s| matches!(s, ConnectionState::Reconnecting { next_delay, .. } if *next_delay >= long),
    )
    .await;
    // ...unless the network comes back: at once.
    px.refuse.store(false, Ordering::SeqCst);
    let woken = Instant::now();
    u.c.chat().set_network_available(true);
    connected(&mut states, "Connected after set_network_available(true)").await;
    println!(
        "set_network_available(true): Connected after {:.1} ms",
        woken.elapsed().as_secs_f64() * 1e3
    );
    u.c.chat().destroy_chat().await;
}

/// `send_message` across a cut. One message goes out as the link is cut, one is sent while
/// it is down: both echoes are in the sender's timeline at once and stay there (`Queued`,
/// pending) while its `Sending`s wait; after the reconnection each is delivered once, in
/// order, turns `Sent`, and each `Sending` resolves with its id. Then chat is stopped while
/// a `Sending` waits: it resolves with `ChatNotConnected`, the message stays queued and is
/// delivered once on the next connection (one cancelled meanwhile resolves with `Cancelled`
/// and is never sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_message_across_a_cut_keeps_the_echo_and_delivers_once() {
    let s = start().await;
    let a = user(&s, "sc_anna").await;
    sign_up(&s, "sc_bert").await;
    let px = proxy(s.xmpp_port()).await;
    let b = log_in(&s, "sc_bert", |c| c.chat.port = px.port).await;
    let d = private_dialog(&a, &b).await;
    let mut a_ev = online(&a).await;
    let (_, mut b_states) = b.c.chat().subscribe_connection();
    let _b_ev = online(&b).await;
    let mut tl = Live::new(b.c.timeline().watch_timeline(&d, 50).unwrap());
    // Sent, or beyond (a's client may mark it delivered).
    let is_sent = |id: &str, l: &[LocalMessage]| {
        find(l, id).is_some_and(|m| {
            matches!(
                m.state,
                MessageState::Sent | MessageState::Delivered | MessageState::Read
            )
        })
    };

    // Mid-send: acknowledged before the cut or not, whichever comes first.
    let first =
        b.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(a.id), "mid-send"))
            .unwrap();
    px.refuse.store(true, Ordering::SeqCst);
    px.sever();
    let first_id = first.id().to_owned();
    let first = tokio::spawn(first.into_future());
    state(&mut b_states, "Reconnecting", |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    // While the link is down (new connections refused): no acknowledgement can come.
    let second =
        b.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(a.id), "while cut"))
            .unwrap();
    let second_id = second.id().to_owned();
    let second = tokio::spawn(second.into_future());
    // Both echoes at once, in order; the one sent while down is still Queued.
    tl.drain();
    assert_eq!(ids_of(&tl.list), [first_id.clone(), second_id.clone()]);
    assert_eq!(
        find(&tl.list, &second_id).unwrap().state,
        MessageState::Queued
    );
    assert!(!second.is_finished(), "resolved without a connection");
    let pending: Vec<_> =
        b.c.send_queue()
            .pending_messages()
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
    assert!(pending.contains(&second_id), "{pending:?}");
    assert_eq!(
        b.c.store()
            .unwrap()
            .message(&second_id)
            .unwrap()
            .unwrap()
            .state,
        MessageState::Queued
    );

    px.refuse.store(false, Ordering::SeqCst);
    b.c.chat().reconnect_now().await;
    connected(&mut b_states, "Connected again").await;
    for (h, id) in [(first, &first_id), (second, &second_id)] {
        let got = timeout(STEP, h).await.expect("resolved in time").unwrap();
        assert_eq!(got.as_ref(), Ok(id));
    }
    tl.until("while cut: Sent", |l| is_sent(&second_id, l))
        .await;
    let m1 = a_ev.message("mid-send", |m| m.id == first_id).await;
    let m2 = a_ev.message("while cut", |m| m.id == second_id).await;
    assert_eq!(
        (m1.body.as_str(), m2.body.as_str()),
        ("mid-send", "while cut")
    );
    let again = message_ids(&a_ev.settle().await);
    assert!(again.is_empty(), "delivered twice: {again:?}");
    assert!(b.c.send_queue().pending_messages().unwrap().is_empty());

    // Chat stopped while a Sending waits: it does not wait forever.
    px.refuse.store(true, Ordering::SeqCst);
    px.sever();
    state(&mut b_states, "Reconnecting (2)", |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    let third =
        b.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(a.id), "before stop"))
            .unwrap();
    let third_id = third.id().to_owned();
    let third = tokio::spawn(third.into_future());
    // Cancelled while it waits: resolves with Cancelled, never sent.
    let dropped =
        b.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(a.id), "cancelled"))
            .unwrap();
    b.c.send_queue().cancel_message(dropped.id()).unwrap();
    let got = timeout(STEP, dropped.into_future())
        .await
        .expect("resolved in time");
    assert_eq!(got, Err(Error::Cancelled));
    b.c.chat().disconnect_chat().await;
    let got = timeout(STEP, third)
        .await
        .expect("resolved in time")
        .unwrap();
    assert_eq!(got, Err(Error::ChatNotConnected));
    let pending: Vec<_> =
        b.c.send_queue()
            .pending_messages()
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
    assert_eq!(pending, std::slice::from_ref(&third_id));
    px.refuse.store(false, Ordering::SeqCst);
    b.c.chat().reconnect_now().await;
    connected(&mut b_states, "Connected after the stop").await;
    a_ev.message("before stop", |m| m.id == third_id).await;
    tl.until("before stop: Sent", |l| is_sent(&third_id, l))
        .await;
    let again = message_ids(&a_ev.settle().await);
    assert!(again.is_empty(), "delivered twice: {again:?}");
}
