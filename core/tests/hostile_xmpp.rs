//! The chat engine against the hostile XMPP server of `cubechat-faults`: deep nesting, huge
//! stanzas, malformed XML and floods, before and after bind, over plain TCP and TLS. Each case
//! asserts that the process survives, that the error is typed (a `Protocol` error from
//! `connect_chat` when the attack comes during the handshake), and that the client
//! reconnects as usual and receives the next, ordinary message.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cubechat_core::{ChatAuth, ChatEvent, Client, Config, ConnectionState, Error};
use cubechat_faults::xmpp::{Attack, HostileXmppServer, ALIVE_BODY, DOMAIN};
use tokio::time::timeout;

fn client(server: &HostileXmppServer) -> Arc<Client> {
    let mut c = Config::new(7, "key", "http://127.0.0.1:9");
    c.chat.host = "127.0.0.1".into();
    c.chat.domain = DOMAIN.into();
    if let Some(pem) = server.ca_pem() {
        c.chat.tls_port = server.port();
        c.chat.direct_tls = true;
        c.tls.extra_ca_pem = Some(pem.to_owned());
    } else {
        c.chat.port = server.port();
        c.chat.insecure_plaintext = true;
    }
    c.timeouts.connect = Duration::from_secs(5);
    c.reconnect.initial_delay = Duration::from_millis(50);
    c.reconnect.max_delay = Duration::from_millis(200);
    Client::new(c).unwrap()
}

fn auth() -> ChatAuth {
    ChatAuth::Password {
        user_id: Some(5),
        password: "pw".into(),
    }
}

/// Connects, lets the server run its attack on the first connection, and waits until the
/// client, reconnected, receives the ordinary message of a behaving connection. Returns the
/// bodies received before it.
async fn survives_after_bind(server: HostileXmppServer) -> Vec<String> {
    let c = client(&server);
    let mut events = c.chat().subscribe_chat();
    c.chat().connect_chat(auth()).await.unwrap();
    let mut bodies = Vec::new();
    timeout(Duration::from_secs(60), async {
        loop {
            if let ChatEvent::Message(m) = events.recv().await.unwrap() {
                if m.body == ALIVE_BODY {
                    break;
                }
                bodies.push(m.body);
            }
        }
    })
    .await
    .expect("the client never received the ordinary message after the attack");
    assert_eq!(server.stats().attacks.load(Ordering::SeqCst), 1);
    // The attacked stream was dropped and a new one bound.
    assert!(server.stats().binds.load(Ordering::SeqCst) >= 2);
    assert_eq!(c.chat().connection_state(), ConnectionState::Connected);
    c.chat().destroy_chat().await;
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_nesting_after_bind_drops_the_stream_not_the_app() {
    let server = HostileXmppServer::start(vec![Attack::DeepNesting { depth: 20_000 }])
        .await
        .unwrap();
    let before = survives_after_bind(server).await;
    assert!(before.is_empty(), "{before:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_nesting_over_tls_drops_the_stream_not_the_app() {
    let server = HostileXmppServer::start_tls(vec![Attack::DeepNesting { depth: 20_000 }])
        .await
        .unwrap();
    survives_after_bind(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_stanza_is_refused_before_it_is_held() {
    let server = HostileXmppServer::start(vec![Attack::HugeStanza {
        bytes: 8 * 1024 * 1024,
    }])
    .await
    .unwrap();
    let before = survives_after_bind(server).await;
    // The 8 MiB body was never delivered.
    assert!(before.is_empty(), "{} bodies", before.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_xml_drops_the_stream() {
    let server = HostileXmppServer::start(vec![Attack::Malformed])
        .await
        .unwrap();
    let before = survives_after_bind(server).await;
    assert_eq!(before, vec!["before the garbage".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_delivered_in_order() {
    let server = HostileXmppServer::start(vec![Attack::Flood { count: 5_000 }, Attack::Behave])
        .await
        .unwrap();
    let c = client(&server);
    let mut events = c.chat().subscribe_chat();
    c.chat().connect_chat(auth()).await.unwrap();
    let mut n = 0;
    timeout(Duration::from_secs(60), async {
        loop {
            if let ChatEvent::Message(m) = events.recv().await.unwrap() {
                if m.body == ALIVE_BODY {
                    break;
                }
                assert_eq!(m.body, format!("flood {n}"));
                n += 1;
            }
        }
    })
    .await
    .expect("flood not delivered");
    assert_eq!(n, 5_000);
    assert_eq!(c.chat().connection_state(), ConnectionState::Connected);
    c.chat().destroy_chat().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_features_fail_connect_chat_with_a_protocol_error() {
    let server = HostileXmppServer::start(vec![Attack::DeepFeatures { depth: 20_000 }])
        .await
        .unwrap();
    let c = client(&server);
    let err = c.chat().connect_chat(auth()).await.unwrap_err();
    match &err {
        Error::Protocol(m) => assert!(m.contains("nested deeper than"), "{m}"),
        other => panic!("expected Protocol, got {other:?}"),
    }
    assert!(!err.to_string().contains("urn:hostile"));
    // The client is usable afterwards: the next connection behaves.
    c.chat().connect_chat(auth()).await.unwrap();
    assert_eq!(c.chat().connection_state(), ConnectionState::Connected);
    c.chat().destroy_chat().await;
}
