//! cubeserver against the hostile client of `cubechat-faults`: a logged-in user sends deep
//! nesting, a huge stanza or malformed XML. Each case asserts that the server process
//! survives, that the offending connection is closed (with a `policy-violation` stream error
//! when a limit was crossed), and that other users still chat.
#![allow(clippy::unwrap_used, dead_code)]

include!("support/raw_client.rs");

use cubechat_faults::client::{before_login, HostileClient, Outcome};

async fn hostile(s: &Server, u: &User) -> HostileClient {
    HostileClient::connect(
        s.xmpp_tls_port,
        "127.0.0.1",
        &s.domain,
        s.tls.clone(),
        &format!("{}-{APP}", u.id),
        PASSWORD,
    )
    .await
    .unwrap()
}

/// The server process is running, and alice and bob still chat.
async fn others_still_chat(s: &mut Server, alice: &mut Client, bob: &User) {
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "cubeserver exited: {:?}",
        s.child.try_wait()
    );
    let mut b = s.online(bob).await;
    b.chat(&alice.jid.clone(), "after the attack", "").await;
    let got = alice
        .expect("the message sent after the attack", |e| {
            body_of(e).as_deref() == Some("after the attack")
        })
        .await;
    assert_eq!(got.name(), "message");
    let pong = alice.iq_set("<ping xmlns='urn:xmpp:ping'/>").await;
    assert_eq!(pong.attr("type"), Some("result"));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_nesting_closes_only_the_offending_session() {
    let mut s = start().await;
    let (a, b, m) = (
        s.user("alice").await,
        s.user("bob").await,
        s.user("mallory").await,
    );
    let mut alice = s.online(&a).await;
    let mut h = hostile(&s, &m).await;
    h.deep_message(&alice.jid.clone(), 20_000).await.unwrap();
    assert_eq!(
        h.outcome(Duration::from_secs(10)).await,
        Outcome::Closed {
            stream_error: Some("policy-violation".into())
        }
    );
    // Nothing of it was relayed.
    let relayed: Vec<Element> = alice.drain(Duration::from_millis(300)).await;
    assert!(
        relayed
            .iter()
            .all(|e| body_of(e).as_deref() != Some("deep")),
        "relayed"
    );
    others_still_chat(&mut s, &mut alice, &b).await;
    // The offender can log in again (only the session was closed).
    let mut again = hostile(&s, &m).await;
    assert_eq!(
        again.outcome(Duration::from_millis(300)).await,
        Outcome::StillOpen
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_stanza_closes_the_session_before_it_is_held() {
    let mut s = start().await;
    let (a, b, m) = (
        s.user("alice").await,
        s.user("bob").await,
        s.user("mallory").await,
    );
    let mut alice = s.online(&a).await;
    let mut h = hostile(&s, &m).await;
    h.huge_message(&alice.jid.clone(), 16 * 1024 * 1024)
        .await
        .unwrap();
    assert_eq!(
        h.outcome(Duration::from_secs(10)).await,
        Outcome::Closed {
            stream_error: Some("policy-violation".into())
        }
    );
    others_still_chat(&mut s, &mut alice, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_xml_closes_the_session() {
    let mut s = start().await;
    let (a, b, m) = (
        s.user("alice").await,
        s.user("bob").await,
        s.user("mallory").await,
    );
    let mut alice = s.online(&a).await;
    let mut h = hostile(&s, &m).await;
    h.malformed().await.unwrap();
    assert!(matches!(
        h.outcome(Duration::from_secs(10)).await,
        Outcome::Closed { .. }
    ));
    others_still_chat(&mut s, &mut alice, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_nesting_before_login_is_refused_too() {
    let mut s = start().await;
    let (a, b) = (s.user("alice").await, s.user("bob").await);
    let mut alice = s.online(&a).await;
    let deep = format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}",
        "<x>".repeat(20_000)
    );
    let outcome = before_login(
        s.xmpp_tls_port,
        "127.0.0.1",
        &s.domain,
        s.tls.clone(),
        deep.as_bytes(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert!(matches!(outcome, Outcome::Closed { .. }), "{outcome:?}");
    others_still_chat(&mut s, &mut alice, &b).await;
}
