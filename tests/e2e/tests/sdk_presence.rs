//! cubechat-core's privacy lists, last activity (and its subscription), active/inactive
//! with the push rules, and group presence, end to end against a real cubeserver process
//! (issue 5): each rule of the issue is one test below.
//!
//! Pushes are read from the server's outbox (`GET /_admin/pushes?user_id=N`). A rule that
//! says "no push" is proven by sending a message that must not push, then one that must,
//! and checking that the outbox holds exactly the second one (the router handles a
//! sender's messages in order), so no test relies on a sleep to prove an absence.
//!
//! Every wait is bounded ([`STEP`]); "nothing more arrives" is checked over [`QUIET`].
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use cubechat_core::chat::{DialogUpdate, ListParams};
use cubechat_core::{
    ChatEvent, Error, OutgoingMessage, PrivacyAction, PrivacyList, PrivacyListItem,
    PrivacyListNames,
};
use serde_json::Value;

use cubechat_e2e as common;

use common::{start, Server};

/// The longest any single expected event may take.
const STEP: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Fixtures

/// The default privacy list `name` of `u`, made of `items`.
async fn block_by_default(u: &U, name: &str, items: Vec<PrivacyListItem>) {
    u.c.chat()
        .create_privacy_list(&PrivacyList {
            name: name.into(),
            items,
        })
        .await
        .unwrap();
    u.c.chat()
        .set_default_privacy_list(Some(name))
        .await
        .unwrap();
}

/// The push outbox of `user_id`: `(dialog_id, message_id, sender_id)`, oldest first.
async fn pushes(s: &Server, user_id: u64) -> Vec<(String, String, u64)> {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/_admin/pushes?user_id={user_id}", s.api_url))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["recipient_id"].as_u64(), Some(user_id), "{p}");
            assert!(p["created_at"].as_i64().unwrap() > 0, "{p}");
            (
                p["dialog_id"].as_str().unwrap().to_owned(),
                p["message_id"].as_str().unwrap().to_owned(),
                p["sender_id"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Polls the outbox of `user_id` until it holds `n` pushes (bounded by [`STEP`]).
async fn pushes_n(s: &Server, user_id: u64, n: usize) -> Vec<(String, String, u64)> {
    let deadline = Instant::now() + STEP;
    loop {
        let p = pushes(s, user_id).await;
        if p.len() >= n || Instant::now() > deadline {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Waiting

use cubechat_e2e::events::*;
use cubechat_e2e::users::*;

fn errors(events: &[ChatEvent]) -> Vec<&ChatEvent> {
    events
        .iter()
        .filter(|e| matches!(e, ChatEvent::MessageError { .. }))
        .collect()
}

fn activities(events: &[ChatEvent]) -> Vec<(u64, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::LastActivity { user_id, seconds } => Some((*user_id, *seconds)),
            _ => None,
        })
        .collect()
}

fn occupant_events(events: &[ChatEvent]) -> Vec<&ChatEvent> {
    events
        .iter()
        .filter(|e| {
            matches!(
                e,
                ChatEvent::OccupantJoined { .. }
                    | ChatEvent::OccupantLeft { .. }
                    | ChatEvent::Kicked { .. }
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Privacy lists

/// B blocks A one way (default list): A's message to B bounces back to A as a
/// `MessageError` with the numeric code 503, and B receives nothing; B can still write to
/// A. A message of A sent later to a third user still arrives (the block is per user). The
/// blocked message is not stored (history, offline) and, to an offline blocker, not pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_block_bounces_the_blocked_sender_only() {
    let s = start().await;
    let a = user(&s, "ann").await;
    let b = user(&s, "bea").await;
    let c = user(&s, "cat").await;
    let d = private_dialog(&a, &b).await;
    let dc = private_dialog(&a, &c).await;
    let mut a_ev = online(&a).await;
    let mut b_ev = online(&b).await;
    let mut c_ev = online(&c).await;
    block_by_default(&b, "blocked", vec![PrivacyListItem::block(a.id)]).await;

    let blocked =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "you blocked me"))
            .unwrap()
            .id()
            .to_owned();
    let (code, text) = a_ev.error(&blocked).await;
    assert_eq!(code, 503, "{text}");

    // The blocker can still write; the blocked user receives it.
    let reply =
        b.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(a.id), "I still can write"))
            .unwrap()
            .id()
            .to_owned();
    let got = a_ev.message("blocker's message", |m| m.id == reply).await;
    assert_eq!(
        (got.sender_id, got.body.as_str()),
        (b.id, "I still can write")
    );
    b_ev.sent(&reply).await;

    // The block is per user: A still reaches C.
    let to_c =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&dc, Some(c.id), "hi c"))
            .unwrap()
            .id()
            .to_owned();
    c_ev.message("A's message to C", |m| m.id == to_c).await;

    let b_rest = b_ev.settle().await;
    assert!(
        !message_ids(&b_rest).contains(&blocked),
        "blocked message delivered: {b_rest:?}"
    );
    assert!(errors(&b_rest).is_empty(), "{b_rest:?}");
    let a_rest = a_ev.settle().await;
    assert!(errors(&a_rest).is_empty(), "more errors: {a_rest:?}");
    // Not stored: absent from the history, which holds the blocker's reply.
    let h: Vec<String> =
        a.c.messages()
            .history(&d, &ListParams::default(), false)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|m| m.id)
            .collect();
    assert_eq!(h, vec![reply.clone()], "history");
    // Not stored offline either: B reconnecting afresh does not get it.
    b.c.chat().disconnect_chat().await;
    let (_, mut b_states) = b.c.chat().subscribe_connection();
    b.c.chat().reconnect_now().await;
    connected(&mut b_states, "B back").await;
    let b_rest = b_ev.settle().await;
    assert!(
        !message_ids(&b_rest).contains(&blocked),
        "blocked message delivered later: {b_rest:?}"
    );

    // B offline: the blocked message still bounces and creates no push (C's does).
    b.c.chat().disconnect_chat().await;
    let blocked_offline =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "while you're away"))
            .unwrap()
            .id()
            .to_owned();
    assert_eq!(a_ev.error(&blocked_offline).await.0, 503);
    let dcb = private_dialog(&c, &b).await;
    let from_c =
        c.c.send_queue()
            .send_message(OutgoingMessage::new(&dcb, Some(b.id), "from c"))
            .unwrap()
            .id()
            .to_owned();
    c_ev.sent(&from_c).await;
    assert_eq!(pushes_n(&s, b.id, 1).await, vec![(dcb, from_c, c.id)]);
}

/// B blocks A two ways: A's message to B and B's message to A both bounce to their
/// sender with a `MessageError`, and neither is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_way_block_stops_both_directions() {
    let s = start().await;
    let a = user(&s, "abe").await;
    let b = user(&s, "bob").await;
    let d = private_dialog(&a, &b).await;
    let mut a_ev = online(&a).await;
    let mut b_ev = online(&b).await;
    block_by_default(&b, "mutual", vec![PrivacyListItem::block_mutual(a.id)]).await;

    let from_a =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "a to b"))
            .unwrap()
            .id()
            .to_owned();
    let (code, _) = a_ev.error(&from_a).await;
    assert_eq!(code, 503);
    let from_b =
        b.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(a.id), "b to a"))
            .unwrap()
            .id()
            .to_owned();
    let (code, _) = b_ev.error(&from_b).await;
    assert_eq!(code, 503);

    let a_rest = a_ev.settle().await;
    let b_rest = b_ev.settle().await;
    assert!(message_ids(&a_rest).is_empty(), "{a_rest:?}");
    assert!(message_ids(&b_rest).is_empty(), "{b_rest:?}");
    assert!(errors(&a_rest).is_empty() && errors(&b_rest).is_empty());

    // Declining the default list lifts the block both ways.
    b.c.chat().set_default_privacy_list(None).await.unwrap();
    let again =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "unblocked"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.message("message after unblocking", |m| m.id == again)
        .await;
    let back =
        b.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(a.id), "unblocked too"))
            .unwrap()
            .id()
            .to_owned();
    a_ev.message("reply after unblocking", |m| m.id == back)
        .await;
}

/// In a group of A, B and C where B blocks C one way: C's group message reaches A but not
/// B, and C gets no error (silently dropped for B). A's message reaches B (ordering
/// witness: after it nothing of C's arrives at B). B's own group message still reaches C.
/// Made two-way, B's group messages skip C too, still silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_messages_of_a_blocked_user_silently_skip_the_blocker() {
    let s = start().await;
    let a = user(&s, "ada").await;
    let b = user(&s, "bel").await;
    let c = user(&s, "cid").await;
    let g = group_dialog(&a, &[&b, &c]).await;
    let mut a_ev = online(&a).await;
    let mut b_ev = online(&b).await;
    let mut c_ev = online(&c).await;
    for u in [&a, &b, &c] {
        u.c.chat().join_room(&g).await.unwrap();
    }
    block_by_default(&b, "no-cid", vec![PrivacyListItem::block(c.id)]).await;

    let from_c =
        c.c.send_queue()
            .send_message(OutgoingMessage::new(&g, None, "from the blocked one"))
            .unwrap()
            .id()
            .to_owned();
    let got = a_ev
        .message("C's group message at A", |m| m.id == from_c)
        .await;
    assert!(got.group, "{got:?}");
    c_ev.sent(&from_c).await;
    let from_a =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&g, None, "from a"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.message("A's group message at B", |m| m.id == from_a)
        .await;
    let from_b =
        b.c.send_queue()
            .send_message(OutgoingMessage::new(&g, None, "from the blocker"))
            .unwrap()
            .id()
            .to_owned();
    c_ev.message("B's group message at C", |m| m.id == from_b)
        .await;

    let b_rest = b_ev.settle().await;
    assert!(
        !message_ids(&b_rest).contains(&from_c),
        "blocked group message reached the blocker: {b_rest:?}"
    );
    let c_rest = c_ev.settle().await;
    assert!(errors(&c_rest).is_empty(), "not silent: {c_rest:?}");

    // Two-way: B's group messages no longer reach C either (A still gets them), and C's
    // still skip B; nobody gets an error.
    b.c.chat()
        .update_privacy_list(&PrivacyList {
            name: "no-cid".into(),
            items: vec![PrivacyListItem::block_mutual(c.id)],
        })
        .await
        .unwrap();
    let from_b2 =
        b.c.send_queue()
            .send_message(OutgoingMessage::new(&g, None, "blocker, two-way"))
            .unwrap()
            .id()
            .to_owned();
    a_ev.message("B's two-way-blocked group message at A", |m| {
        m.id == from_b2
    })
    .await;
    let from_c2 =
        c.c.send_queue()
            .send_message(OutgoingMessage::new(&g, None, "blocked, two-way"))
            .unwrap()
            .id()
            .to_owned();
    a_ev.message("C's group message at A", |m| m.id == from_c2)
        .await;
    let from_a2 =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&g, None, "from a again"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.message("A's message at B", |m| m.id == from_a2).await;
    c_ev.message("A's message at C", |m| m.id == from_a2).await;
    let b_rest = b_ev.settle().await;
    let c_rest = c_ev.settle().await;
    assert!(!message_ids(&b_rest).contains(&from_c2), "{b_rest:?}");
    assert!(!message_ids(&c_rest).contains(&from_b2), "{c_rest:?}");
    assert!(errors(&b_rest).is_empty() && errors(&c_rest).is_empty());
}

/// Names and lists round trip; the default list in use cannot be edited or deleted (typed
/// `Server { status: 409 }`); `update_privacy_list` replaces it (decline → replace →
/// default) and the new content is enforced at once; declined, it can be deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_list_round_trip_default_in_use_and_update() {
    let s = start().await;
    let a = user(&s, "al").await;
    let b = user(&s, "bo").await;
    let c = user(&s, "cy").await;
    let d = private_dialog(&a, &b).await;
    let dc = private_dialog(&c, &b).await;
    let mut a_ev = online(&a).await;
    let mut b_ev = online(&b).await;
    let mut c_ev = online(&c).await;

    assert_eq!(
        b.c.chat().privacy_list_names().await.unwrap(),
        PrivacyListNames::default()
    );
    let r = b.c.chat().privacy_list("nope").await;
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
    let r =
        b.c.chat()
            .create_privacy_list(&PrivacyList {
                name: "empty".into(),
                items: vec![],
            })
            .await;
    assert!(matches!(r, Err(Error::InvalidInput(_))), "{r:?}");

    let first = PrivacyList {
        name: "first".into(),
        items: vec![
            PrivacyListItem::block(a.id),
            PrivacyListItem::block_mutual(c.id),
        ],
    };
    let other = PrivacyList {
        name: "other".into(),
        items: vec![PrivacyListItem {
            user_id: c.id,
            action: PrivacyAction::Allow,
            mutual_block: false,
        }],
    };
    b.c.chat().create_privacy_list(&first).await.unwrap();
    b.c.chat().create_privacy_list(&other).await.unwrap();
    assert_eq!(b.c.chat().privacy_list("first").await.unwrap(), first);
    assert_eq!(b.c.chat().privacy_list("other").await.unwrap(), other);
    let mut names = b.c.chat().privacy_list_names().await.unwrap();
    names.names.sort();
    assert_eq!(
        names,
        PrivacyListNames {
            active: None,
            default: None,
            names: vec!["first".into(), "other".into()],
        }
    );
    // A list that is not the default is editable and deletable.
    b.c.chat().create_privacy_list(&other).await.unwrap();
    b.c.chat().delete_privacy_list("other").await.unwrap();
    let r = b.c.chat().privacy_list("other").await;
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");

    b.c.chat()
        .set_default_privacy_list(Some("first"))
        .await
        .unwrap();
    let names = b.c.chat().privacy_list_names().await.unwrap();
    assert_eq!(names.default.as_deref(), Some("first"));
    assert_eq!(names.names, vec!["first".to_owned()]);

    // The default list in use is refused both ways, and stays as it was.
    let second = PrivacyList {
        name: "first".into(),
        items: vec![PrivacyListItem::block(c.id)],
    };
    let r = b.c.chat().create_privacy_list(&second).await;
    assert!(matches!(r, Err(Error::Server { status: 409, .. })), "{r:?}");
    let r = b.c.chat().delete_privacy_list("first").await;
    assert!(matches!(r, Err(Error::Server { status: 409, .. })), "{r:?}");
    assert_eq!(b.c.chat().privacy_list("first").await.unwrap(), first);
    let blocked =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "still blocked"))
            .unwrap()
            .id()
            .to_owned();
    assert_eq!(a_ev.error(&blocked).await.0, 503);

    // update_privacy_list does the documented sequence: the new content, still default.
    b.c.chat().update_privacy_list(&second).await.unwrap();
    assert_eq!(b.c.chat().privacy_list("first").await.unwrap(), second);
    assert_eq!(
        b.c.chat()
            .privacy_list_names()
            .await
            .unwrap()
            .default
            .as_deref(),
        Some("first")
    );
    // Enforced at once: A gets through, C (now one-way blocked) bounces.
    let freed =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "free now"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.message("A's message after the update", |m| m.id == freed)
        .await;
    let from_c =
        c.c.send_queue()
            .send_message(OutgoingMessage::new(&dc, Some(b.id), "now blocked"))
            .unwrap()
            .id()
            .to_owned();
    assert_eq!(c_ev.error(&from_c).await.0, 503);
    let b_rest = b_ev.settle().await;
    assert!(!message_ids(&b_rest).contains(&from_c), "{b_rest:?}");
    assert!(!message_ids(&b_rest).contains(&blocked), "{b_rest:?}");

    // Declined, the list can be deleted.
    b.c.chat().set_default_privacy_list(None).await.unwrap();
    assert_eq!(b.c.chat().privacy_list_names().await.unwrap().default, None);
    b.c.chat().delete_privacy_list("first").await.unwrap();
    assert_eq!(
        b.c.chat().privacy_list_names().await.unwrap(),
        PrivacyListNames::default()
    );
}

// ---------------------------------------------------------------------------------------
// Pushes

/// B offline: A's message creates one push for B with the dialog, the message and the
/// sender; a silent message creates none; after B turns the dialog's notifications off,
/// none either (another dialog still pushes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_pushes_unless_silent_or_notifications_off() {
    let s = start().await;
    let a = user(&s, "ari").await;
    let b = user(&s, "bex").await;
    let c = user(&s, "cal").await;
    let d = private_dialog(&a, &b).await;
    let d2 = private_dialog(&c, &b).await;
    let mut a_ev = online(&a).await;
    let mut c_ev = online(&c).await;
    assert!(pushes(&s, b.id).await.is_empty());

    let silent = {
        let mut m = OutgoingMessage::new(&d, Some(b.id), "silent");
        m.silent = true;
        a.c.send_queue().send_message(m).unwrap().id().to_owned()
    };
    a_ev.sent(&silent).await;
    let loud =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "loud"))
            .unwrap()
            .id()
            .to_owned();
    a_ev.sent(&loud).await;
    let p = pushes_n(&s, b.id, 1).await;
    assert_eq!(p, vec![(d.clone(), loud.clone(), a.id)], "silent pushed?");

    // Notifications off for d (B's setting): no push from d, d2 still pushes.
    assert!(!b.c.dialogs().set_notifications(&d, false).await.unwrap());
    let muted =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "muted"))
            .unwrap()
            .id()
            .to_owned();
    a_ev.sent(&muted).await;
    let other =
        c.c.send_queue()
            .send_message(OutgoingMessage::new(&d2, Some(b.id), "other dialog"))
            .unwrap()
            .id()
            .to_owned();
    c_ev.sent(&other).await;
    let p = pushes_n(&s, b.id, 2).await;
    assert_eq!(
        p,
        vec![
            (d.clone(), loud.clone(), a.id),
            (d2.clone(), other.clone(), c.id)
        ],
        "muted dialog pushed?"
    );

    // Notifications back on: pushes again.
    assert!(b.c.dialogs().set_notifications(&d, true).await.unwrap());
    let unmuted =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "unmuted"))
            .unwrap()
            .id()
            .to_owned();
    a_ev.sent(&unmuted).await;
    // A's later message orders the muted one before this check: exactly three pushes.
    let p = pushes_n(&s, b.id, 3).await;
    assert_eq!(
        p,
        vec![
            (d.clone(), loud, a.id),
            (d2.clone(), other, c.id),
            (d.clone(), unmuted, a.id)
        ],
        "muted message pushed?"
    );
    assert!(!p.iter().any(|(_, m, _)| *m == muted), "{p:?}");
    // Nothing to the sender's outbox.
    assert!(pushes(&s, a.id).await.is_empty());
}

/// B online and active: no push (the message is delivered live). `mark_inactive` while
/// online: the next message pushes *and* is delivered live. `mark_active`: no push again.
/// Group messages follow the same rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_while_online_pushes_active_does_not() {
    let s = start().await;
    let a = user(&s, "avi").await;
    let b = user(&s, "bay").await;
    let d = private_dialog(&a, &b).await;
    let g = group_dialog(&a, &[&b]).await;
    let mut a_ev = online(&a).await;
    let mut b_ev = online(&b).await;

    let active =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "while active"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.message("message while active", |m| m.id == active)
        .await;
    let group_active =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&g, None, "group while active"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.message("group message while active", |m| m.id == group_active)
        .await;

    b.c.chat().mark_inactive().unwrap();
    // mark_inactive awaits no answer: an iq round trip on the same stream orders it.
    b.c.chat().privacy_list_names().await.unwrap();
    let inactive =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "while inactive"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.message("message while inactive (still delivered)", |m| {
        m.id == inactive
    })
    .await;
    let group_inactive =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&g, None, "group while inactive"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.message("group message while inactive", |m| m.id == group_inactive)
        .await;
    let p = pushes_n(&s, b.id, 2).await;
    assert_eq!(
        p,
        vec![
            (d.clone(), inactive.clone(), a.id),
            (g.clone(), group_inactive.clone(), a.id)
        ],
        "pushes while online but inactive (and none while active)"
    );

    b.c.chat().mark_active().unwrap();
    b.c.chat().privacy_list_names().await.unwrap();
    let again =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "active again"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.message("message when active again", |m| m.id == again)
        .await;
    a_ev.sent(&again).await;
    // Witness: B goes offline; the next message pushes, and the outbox must then hold
    // exactly the two inactive ones and the witness.
    b.c.chat().disconnect_chat().await;
    let offline =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "offline"))
            .unwrap()
            .id()
            .to_owned();
    a_ev.sent(&offline).await;
    let p = pushes_n(&s, b.id, 3).await;
    assert_eq!(
        p,
        vec![
            (d.clone(), inactive, a.id),
            (g.clone(), group_inactive, a.id),
            (d.clone(), offline, a.id),
        ],
        "a push while active again"
    );
}

/// `mark_inactive` is remembered: after a fresh session (`disconnect_chat` +
/// `reconnect_now`) B is still inactive for the server, so a message pushes while B is
/// online; `mark_active` then stops the pushes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_is_reapplied_after_a_fresh_session() {
    let s = start().await;
    let a = user(&s, "ava").await;
    let b = user(&s, "bim").await;
    let d = private_dialog(&a, &b).await;
    let mut a_ev = online(&a).await;
    let mut b_ev = online(&b).await;
    b.c.chat().mark_inactive().unwrap();
    b.c.chat().privacy_list_names().await.unwrap();

    let jid = b.c.chat().chat_jid().unwrap();
    let (_, mut b_states) = b.c.chat().subscribe_connection();
    b.c.chat().disconnect_chat().await;
    b.c.chat().reconnect_now().await;
    connected(&mut b_states, "B back").await;
    assert_ne!(b.c.chat().chat_jid().unwrap(), jid, "a fresh session");
    b.c.chat().privacy_list_names().await.unwrap();

    let first =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "to the background"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.message("live while inactive", |m| m.id == first).await;
    let p = pushes_n(&s, b.id, 1).await;
    assert_eq!(p, vec![(d.clone(), first.clone(), a.id)]);

    b.c.chat().mark_active().unwrap();
    b.c.chat().privacy_list_names().await.unwrap();
    let second =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "to the foreground"))
            .unwrap()
            .id()
            .to_owned();
    b_ev.message("live while active", |m| m.id == second).await;
    a_ev.sent(&second).await;
    b.c.chat().disconnect_chat().await;
    let third =
        a.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(b.id), "offline"))
            .unwrap()
            .id()
            .to_owned();
    a_ev.sent(&third).await;
    let p = pushes_n(&s, b.id, 2).await;
    assert_eq!(
        p,
        vec![(d.clone(), first, a.id), (d.clone(), third, a.id)],
        "pushed while active?"
    );
}

// ---------------------------------------------------------------------------------------
// Last activity

/// `last_activity` is 0 while the user is online, and N ≥ 1 seconds after they logged
/// out (waited > 1 s), growing with time; 0 again after they come back. An unknown user
/// is `NotFound`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_activity_zero_online_then_seconds_since_logout() {
    let s = start().await;
    let a = user(&s, "amy").await;
    let b = user(&s, "ben").await;
    let _a_ev = online(&a).await;
    let _b_ev = online(&b).await;
    assert_eq!(a.c.chat().last_activity(b.id).await.unwrap(), 0);
    // Oneself too.
    assert_eq!(a.c.chat().last_activity(a.id).await.unwrap(), 0);

    b.c.chat().disconnect_chat().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let n = a.c.chat().last_activity(b.id).await.unwrap();
    assert!((1..=5).contains(&n), "seconds after logout: {n}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let m = a.c.chat().last_activity(b.id).await.unwrap();
    assert!(m > n && m <= 8, "grows: {n} then {m}");

    let (_, mut b_states) = b.c.chat().subscribe_connection();
    b.c.chat().reconnect_now().await;
    connected(&mut b_states, "B back").await;
    assert_eq!(a.c.chat().last_activity(b.id).await.unwrap(), 0);
    let r = a.c.chat().last_activity(0).await;
    assert!(matches!(r, Err(Error::InvalidInput(_))), "{r:?}");
    let r = a.c.chat().last_activity(b.id + 1000).await;
    assert!(matches!(r, Err(Error::NotFound(_))), "unknown user: {r:?}");
}

/// A subscribes to B's activity: B's logout sends `LastActivity { B, 1..=2 }` (never 0,
/// which means online) and B's login `LastActivity { B, 0 }`. After A itself reconnects
/// with a fresh session
/// (`disconnect_chat` + `reconnect_now`), the subscription still delivers. After
/// `unsubscribe_last_activity`, nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_activity_subscription_survives_a_fresh_session() {
    let s = start().await;
    let a = user(&s, "ali").await;
    let b = user(&s, "bri").await;
    let mut a_ev = online(&a).await;
    let _b_ev = online(&b).await;
    let (_, mut b_states) = b.c.chat().subscribe_connection();

    a.c.chat().subscribe_last_activity(b.id).await.unwrap();
    assert_eq!(a.c.chat().last_activity_subscriptions(), vec![b.id]);

    b.c.chat().disconnect_chat().await;
    let secs = a_ev.activity("B logged out", b.id).await;
    // At least 1: a logout is never reported as 0 (= online), and it is fresh.
    assert!((1..=2).contains(&secs), "{secs}");
    b.c.chat().reconnect_now().await;
    connected(&mut b_states, "B back").await;
    assert_eq!(a_ev.activity("B logged in", b.id).await, 0);

    // A gets a fresh session (not a resumption): the subscription is sent again.
    let jid = a.c.chat().chat_jid().unwrap();
    let (_, mut a_states) = a.c.chat().subscribe_connection();
    a.c.chat().disconnect_chat().await;
    a.c.chat().reconnect_now().await;
    connected(&mut a_states, "A back").await;
    assert_ne!(a.c.chat().chat_jid().unwrap(), jid, "a fresh session");
    assert_eq!(a.c.chat().last_activity_subscriptions(), vec![b.id]);
    // Let the re-subscription land (an iq round trip on the same stream orders it).
    a.c.chat().privacy_list_names().await.unwrap();
    a_ev.settle().await;

    b.c.chat().disconnect_chat().await;
    let secs = a_ev
        .activity("B logged out (after A's fresh session)", b.id)
        .await;
    // At least 1: a logout is never reported as 0 (= online), and it is fresh.
    assert!((1..=2).contains(&secs), "{secs}");
    b.c.chat().reconnect_now().await;
    connected(&mut b_states, "B back again").await;
    assert_eq!(
        a_ev.activity("B logged in (after A's fresh session)", b.id)
            .await,
        0
    );
    let rest = activities(&a_ev.settle().await);
    assert!(rest.is_empty(), "duplicates: {rest:?}");

    a.c.chat().unsubscribe_last_activity(b.id).await.unwrap();
    assert!(a.c.chat().last_activity_subscriptions().is_empty());
    b.c.chat().disconnect_chat().await;
    b.c.chat().reconnect_now().await;
    connected(&mut b_states, "B back a third time").await;
    let rest = activities(&a_ev.settle().await);
    assert!(rest.is_empty(), "after unsubscribing: {rest:?}");
}

// ---------------------------------------------------------------------------------------
// Group presence

/// `room_occupants` lists the dialog's occupants who are online now, joined or not (joining
/// is optional on ConnectyCube, §6.7). A joins the room, then B: A sees `OccupantJoined(B)`,
/// B sees `OccupantJoined(A)` (the occupants present). B leaves: `OccupantLeft(B)` at A.
/// C joins, then logs out: `OccupantJoined(C)` then `OccupantLeft(C)` at A, and C is no
/// longer listed. No other occupant events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_occupants_and_joined_left_events() {
    let s = start().await;
    let a = user(&s, "axl").await;
    let b = user(&s, "bix").await;
    let c = user(&s, "coy").await;
    let outsider = user(&s, "dex").await;
    let g = group_dialog(&a, &[&b, &c]).await;
    let mut a_ev = online(&a).await;
    let mut b_ev = online(&b).await;
    let _c_ev = online(&c).await;
    let _o_ev = online(&outsider).await;
    let sorted = |mut v: Vec<u64>| {
        v.sort_unstable();
        v
    };
    let all = sorted(vec![a.id, b.id, c.id]);

    // Online occupants of the dialog (the outsider is online but not an occupant).
    assert_eq!(sorted(a.c.chat().room_occupants(&g).await.unwrap()), all);
    a.c.chat().join_room(&g).await.unwrap();
    b.c.chat().join_room(&g).await.unwrap();
    let joined = |d: &str, u: u64| ChatEvent::OccupantJoined {
        dialog_id: d.to_owned(),
        user_id: u,
    };
    let left = |d: &str, u: u64| ChatEvent::OccupantLeft {
        dialog_id: d.to_owned(),
        user_id: u,
    };
    a_ev.next("B joined", |e| *e == joined(&g, b.id)).await;
    b_ev.next("A present when B joined", |e| *e == joined(&g, a.id))
        .await;
    // C, not joined, gets the same answer.
    assert_eq!(sorted(c.c.chat().room_occupants(&g).await.unwrap()), all);

    b.c.chat().leave_room(&g).unwrap();
    a_ev.next("B left", |e| *e == left(&g, b.id)).await;

    c.c.chat().join_room(&g).await.unwrap();
    a_ev.next("C joined", |e| *e == joined(&g, c.id)).await;
    c.c.chat().disconnect_chat().await;
    a_ev.next("C left by logging out", |e| *e == left(&g, c.id))
        .await;
    assert_eq!(
        sorted(a.c.chat().room_occupants(&g).await.unwrap()),
        sorted(vec![a.id, b.id])
    );

    let rest = a_ev.settle().await;
    let extra = occupant_events(&rest);
    assert!(extra.is_empty(), "extra occupant events at A: {extra:?}");
    let b_rest = b_ev.settle().await;
    let extra = occupant_events(&b_rest);
    // B left before C joined: it saw nothing of C.
    assert!(extra.is_empty(), "extra occupant events at B: {extra:?}");
}

/// B is joined when the owner A removes B from the dialog over REST (`update_dialog`
/// `remove_occupants`): B gets `Kicked { dialog, initiator A }`, the joined C sees
/// `OccupantLeft(B)`, the room no longer lists B, and B's group message then bounces (403).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_removing_a_joined_occupant_over_rest_kicks_them() {
    let s = start().await;
    let a = user(&s, "ash").await;
    let b = user(&s, "bud").await;
    let c = user(&s, "cob").await;
    let g = group_dialog(&a, &[&b, &c]).await;
    let _a_ev = online(&a).await;
    let mut b_ev = online(&b).await;
    let mut c_ev = online(&c).await;
    b.c.chat().join_room(&g).await.unwrap();
    c.c.chat().join_room(&g).await.unwrap();
    c_ev.next(
        "B present",
        |e| matches!(e, ChatEvent::OccupantJoined { user_id, .. } if *user_id == b.id),
    )
    .await;

    a.c.dialogs()
        .update_dialog(
            &g,
            DialogUpdate {
                remove_occupants: vec![b.id],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let e = b_ev
        .next("Kicked", |e| matches!(e, ChatEvent::Kicked { .. }))
        .await;
    assert_eq!(
        e,
        ChatEvent::Kicked {
            dialog_id: g.clone(),
            initiator_id: Some(a.id),
        }
    );
    c_ev.next("B left (kicked)", |e| {
        *e == ChatEvent::OccupantLeft {
            dialog_id: g.clone(),
            user_id: b.id,
        }
    })
    .await;
    let mut occ = c.c.chat().room_occupants(&g).await.unwrap();
    occ.sort_unstable();
    let mut want = vec![a.id, c.id];
    want.sort_unstable();
    assert_eq!(occ, want, "B is no longer an occupant");

    // B is out: its group message bounces (not an occupant) and C does not get it.
    let late =
        b.c.send_queue()
            .send_message(OutgoingMessage::new(&g, None, "still here?"))
            .unwrap()
            .id()
            .to_owned();
    let (code, _) = b_ev.error(&late).await;
    assert_eq!(code, 403);
    let b_rest = b_ev.settle().await;
    assert!(
        !b_rest.iter().any(|e| matches!(e, ChatEvent::Kicked { .. })),
        "kicked twice: {b_rest:?}"
    );
    let c_rest = c_ev.settle().await;
    assert!(!message_ids(&c_rest).contains(&late), "{c_rest:?}");
}
