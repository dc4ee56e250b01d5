//! Privacy lists (mod_privacy), last activity (mod_last) and group presence (mod_muc) of
//! cubechat-core against a real ejabberd (Debian package) on 127.0.0.1, started by
//! `scripts/ejabberd.sh`: the standard subset of ConnectyCube's §6.7–6.10 (see
//! `support/ejabberd.rs`: without ejabberd these tests fail unless `CUBECHAT_SKIP_EJABBERD=1`).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use cubechat_core::{
    ChatAuth, ChatEvent, ChatEvents, Client, Config, Error, OutgoingMessage, PrivacyList,
    PrivacyListItem,
};
use tokio::time::timeout;

const APP: u64 = 7;
const STEP: Duration = Duration::from_secs(10);

mod support;
use support::ejabberd::{ctl, Ejabberd};

fn start_ejabberd() -> Option<Ejabberd> {
    support::ejabberd::start("presence", &["5-7:pw5", "6-7:pw6", "8-7:pw8"])
}

fn config(e: &Ejabberd) -> Config {
    let mut c = Config::new(APP, "key", "http://127.0.0.1:9");
    c.chat.host = "127.0.0.1".into();
    c.chat.domain = "localhost".into();
    c.chat.port = e.c2s;
    c.chat.tls_port = e.tls;
    c.tls.extra_ca_pem = Some(e.ca.clone());
    c.timeouts.connect = Duration::from_secs(5);
    c.timeouts.request = Duration::from_secs(5);
    c.reconnect.initial_delay = Duration::from_millis(100);
    c.reconnect.max_delay = Duration::from_secs(1);
    c
}

async fn connect(e: &Ejabberd, user: u64) -> (Arc<Client>, ChatEvents) {
    let c = Client::new(config(e)).unwrap();
    let ev = c.chat().subscribe_chat();
    c.chat()
        .connect_chat(ChatAuth::Password {
            user_id: Some(user),
            password: format!("pw{user}"),
        })
        .await
        .unwrap();
    (c, ev)
}

async fn next(rx: &mut ChatEvents, what: &str, pred: impl Fn(&ChatEvent) -> bool) -> ChatEvent {
    timeout(STEP, async {
        loop {
            let e = rx.recv().await.expect("event stream ended");
            if pred(&e) {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// No event matching `pred` within `d`.
async fn none(rx: &mut ChatEvents, d: Duration, what: &str, pred: impl Fn(&ChatEvent) -> bool) {
    let r = timeout(d, async {
        loop {
            match rx.recv().await {
                Some(e) if pred(&e) => return e,
                Some(_) => {}
                None => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    assert!(r.is_err(), "{what}: {r:?}");
}

fn got_body(from: u64, body: &'static str) -> impl Fn(&ChatEvent) -> bool {
    move |e| matches!(e, ChatEvent::Message(m) if m.sender_id == from && m.body == body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_privacy_last_activity_and_group_presence() {
    let Some(ejd) = start_ejabberd() else { return };
    timeout(Duration::from_secs(180), scenarios(&ejd))
        .await
        .expect("scenarios timed out");
}

async fn scenarios(ejd: &Ejabberd) {
    let (a, mut a_ev) = connect(ejd, 5).await;
    let (b, mut b_ev) = connect(ejd, 6).await;
    let (c, mut c_ev) = connect(ejd, 8).await;
    privacy(&a, &mut a_ev, &b, &mut b_ev, &c, &mut c_ev).await;
    group_presence(&a, &mut a_ev, &c).await;
    last_activity(ejd, &a, b).await;
}

async fn privacy(
    a: &Client,
    a_ev: &mut ChatEvents,
    b: &Client,
    b_ev: &mut ChatEvents,
    c: &Client,
    c_ev: &mut ChatEvents,
) {
    let names = a.chat().privacy_list_names().await.unwrap();
    assert!(
        names.names.is_empty() && names.default.is_none(),
        "{names:?}"
    );
    // At least one item; nothing is sent otherwise.
    let empty = PrivacyList {
        name: "block".into(),
        items: vec![],
    };
    assert!(matches!(
        a.chat().create_privacy_list(&empty).await,
        Err(Error::InvalidInput(_))
    ));
    // 5 blocks 6 one-way and 8 two-way.
    let list = PrivacyList {
        name: "block".into(),
        items: vec![PrivacyListItem::block(6), PrivacyListItem::block_mutual(8)],
    };
    a.chat().create_privacy_list(&list).await.unwrap();
    let names = a.chat().privacy_list_names().await.unwrap();
    assert_eq!(names.names, ["block"]);
    assert_eq!(names.default, None);
    assert_eq!(a.chat().privacy_list("block").await.unwrap(), list);
    let r = a.chat().privacy_list("nope").await;
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");

    a.chat()
        .set_default_privacy_list(Some("block"))
        .await
        .unwrap();
    let names = a.chat().privacy_list_names().await.unwrap();
    assert_eq!(names.default.as_deref(), Some("block"));

    // One-way: 6's message is not delivered and bounces; 5 can still write to 6.
    let id = b
        .send_queue()
        .send_message(OutgoingMessage::new("d56", Some(5), "blocked hello"))
        .unwrap()
        .id()
        .to_owned();
    let bounced = next(
        b_ev,
        "the bounce of a blocked message",
        |e| matches!(e, ChatEvent::MessageError { message_id, .. } if *message_id == id),
    )
    .await;
    println!("bounce: {bounced:?}");
    none(
        a_ev,
        Duration::from_millis(800),
        "a blocked message was delivered",
        got_body(6, "blocked hello"),
    )
    .await;
    a.send_queue()
        .send_message(OutgoingMessage::new("d56", Some(6), "to 6 anyway"))
        .unwrap();
    next(
        b_ev,
        "5 writes to 6 although blocking them",
        got_body(5, "to 6 anyway"),
    )
    .await;
    // Two-way: 5 cannot write to 8, 8 cannot write to 5.
    a.send_queue()
        .send_message(OutgoingMessage::new("d58", Some(8), "to 8"))
        .unwrap();
    c.send_queue()
        .send_message(OutgoingMessage::new("d58", Some(5), "to 5"))
        .unwrap();
    none(
        c_ev,
        Duration::from_millis(800),
        "two-way block let 5 write to 8",
        got_body(5, "to 8"),
    )
    .await;
    none(
        a_ev,
        Duration::from_millis(100),
        "two-way block let 8 write to 5",
        got_body(8, "to 5"),
    )
    .await;

    // Update the default list in one call: now only 8 is blocked, and it stays the default.
    let list2 = PrivacyList {
        name: "block".into(),
        items: vec![PrivacyListItem::block_mutual(8)],
    };
    a.chat().update_privacy_list(&list2).await.unwrap();
    assert_eq!(a.chat().privacy_list("block").await.unwrap(), list2);
    let names = a.chat().privacy_list_names().await.unwrap();
    assert_eq!(names.default.as_deref(), Some("block"));
    b.send_queue()
        .send_message(OutgoingMessage::new("d56", Some(5), "unblocked hello"))
        .unwrap();
    next(
        a_ev,
        "6 is no longer blocked",
        got_body(6, "unblocked hello"),
    )
    .await;

    // The default list cannot be deleted: a typed conflict. Declined first, it can.
    let r = a.chat().delete_privacy_list("block").await;
    assert!(matches!(r, Err(Error::Server { status: 409, .. })), "{r:?}");
    a.chat().set_default_privacy_list(None).await.unwrap();
    assert_eq!(a.chat().privacy_list_names().await.unwrap().default, None);
    a.chat().delete_privacy_list("block").await.unwrap();
    assert!(a
        .chat()
        .privacy_list_names()
        .await
        .unwrap()
        .names
        .is_empty());
    assert!(matches!(
        a.chat().privacy_list("block").await,
        Err(Error::NotFound(_))
    ));
    c.send_queue()
        .send_message(OutgoingMessage::new("d58", Some(5), "to 5 again"))
        .unwrap();
    next(a_ev, "8 is no longer blocked", got_body(8, "to 5 again")).await;
}

async fn group_presence(a: &Client, a_ev: &mut ChatEvents, c: &Client) {
    a.chat().join_room("pres").await.unwrap();
    c.chat().join_room("pres").await.unwrap();
    next(
        a_ev,
        "8 joined",
        |e| matches!(e, ChatEvent::OccupantJoined { dialog_id, user_id: 8 } if dialog_id == "pres"),
    )
    .await;
    let mut online = a.chat().room_occupants("pres").await.unwrap();
    online.sort_unstable();
    assert_eq!(online, [5, 8]);
    c.chat().leave_room("pres").unwrap();
    next(
        a_ev,
        "8 left",
        |e| matches!(e, ChatEvent::OccupantLeft { dialog_id, user_id: 8 } if dialog_id == "pres"),
    )
    .await;
    // Own presences are no occupant events.
    none(
        a_ev,
        Duration::from_millis(300),
        "own occupant event",
        |e| {
            matches!(
                e,
                ChatEvent::OccupantJoined { user_id: 5, .. }
                    | ChatEvent::OccupantLeft { user_id: 5, .. }
            )
        },
    )
    .await;
    let mut online = a.chat().room_occupants("pres").await.unwrap();
    online.sort_unstable();
    assert_eq!(online, [5]);
    assert!(matches!(
        a.chat().room_occupants("bad room").await,
        Err(Error::InvalidInput(_))
    ));
}

async fn last_activity(ejd: &Ejabberd, a: &Client, b: Arc<Client>) {
    // mod_last answers only users with a presence subscription.
    for (u, v) in [("5-7", "6-7"), ("6-7", "5-7")] {
        ctl(
            &ejd.dir,
            &[
                "add_rosteritem",
                u,
                "localhost",
                v,
                "localhost",
                v,
                "g",
                "both",
            ],
        );
    }
    assert_eq!(a.chat().last_activity(6).await.unwrap(), 0, "6 is online");
    b.chat().disconnect_chat().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let secs = a.chat().last_activity(6).await.unwrap();
    assert!((1..60).contains(&secs), "{secs}");
    assert!(matches!(
        a.chat().last_activity(0).await,
        Err(Error::InvalidInput(_))
    ));
    // Without a subscription, ejabberd refuses; the error is typed, not a timeout.
    let r = a.chat().last_activity(8).await;
    assert!(
        matches!(r, Err(Error::Server { .. } | Error::Forbidden(_))),
        "{r:?}"
    );
    // ConnectyCube's status streaming and Tigase mobile mode are not ejabberd features: the
    // subscription is refused (typed) and forgotten; marks need no answer.
    let r = a.chat().subscribe_last_activity(6).await;
    assert!(
        matches!(r, Err(Error::Server { .. } | Error::Forbidden(_))),
        "{r:?}"
    );
    assert!(a.chat().last_activity_subscriptions().is_empty());
    a.chat().mark_inactive().unwrap();
    a.chat().mark_active().unwrap();
    // Still connected and answering afterwards.
    assert_eq!(a.chat().last_activity(6).await.map(|s| s > 0), Ok(true));
}
