//! cubechat-core's offline-first layer (core/src/local.rs, core/src/store.rs) end to end
//! against a real cubeserver process: the send queue (100 messages queued offline arrive
//! once and in order; a process killed with SIGKILL while holding 100 queued messages, or
//! while draining them, delivers each exactly once after a restart on the same store; a
//! resend after a lost acknowledgement is not duplicated; attachments upload first; cancel,
//! edit, delete and retry), the live dialog list and timeline (snapshot, delta sync, live
//! changes, backward pagination, gaps filled after time offline).
//!
//! Every wait is bounded ([`STEP`]); "nothing more arrives" is checked over [`QUIET`].
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::time::Duration;

use cubechat_core::chat::{DialogType, DialogUpdate, ListParams, NewDialog, NewMessage};
use cubechat_core::store::{Payload, QueuedFile};
use cubechat_core::xmpp::{PrivacyAction, PrivacyList, PrivacyListItem};
use cubechat_core::{
    ChatAuth, ChatEvent, ChatMessage, Client, ConnectionStates, Error, MessageState,
    OutgoingMessage,
};
use cubechat_wire::chat::Dialog;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::timeout;

use cubechat_e2e as common;

use common::{start, Server};

const STEP: Duration = Duration::from_secs(15);
const QUIET: Duration = Duration::from_millis(1500);
/// How many messages the queue tests send.
const N: usize = 100;

use cubechat_e2e::events::*;
use cubechat_e2e::live::*;
use cubechat_e2e::users::*;

// ---------------------------------------------------------------------------------------
// Fixtures

fn text(dialog: &str, to: u64, body: &str) -> OutgoingMessage {
    OutgoingMessage::new(dialog, Some(to), body)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn body_n(i: usize) -> String {
    format!("m{i:03}")
}

/// `n` messages from `ev` that satisfy `pred`, in arrival order.
async fn messages(ev: &mut Ev, n: usize, pred: impl Fn(&ChatMessage) -> bool) -> Vec<ChatMessage> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(ev.message(&format!("message {i}"), &pred).await);
    }
    out
}

/// No further message of `dialog` arrives within [`QUIET`].
async fn no_more_messages(ev: &mut Ev, dialog: &str) {
    let extra: Vec<_> = ev
        .settle()
        .await
        .into_iter()
        .filter(|e| matches!(e, ChatEvent::Message(m) if m.dialog_id.as_deref() == Some(dialog)))
        .collect();
    assert!(extra.is_empty(), "duplicates or strays: {extra:?}");
}

async fn history_bodies(u: &U, dialog: &str) -> Vec<String> {
    let p = ListParams {
        limit: Some(100),
        ..Default::default()
    };
    u.c.messages()
        .history(dialog, &p, false)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|m| m.message.unwrap_or_default())
        .collect()
}

fn dialog_in<'a>(list: &'a [Dialog], id: &str) -> Option<&'a Dialog> {
    list.iter().find(|d| d.id == id)
}

/// Waits until every message of `ids` reached `Sent` or beyond in the store.
async fn all_sent(u: &U, ids: &[String]) {
    let store = u.c.store().unwrap();
    timeout(STEP, async {
        loop {
            let done = ids.iter().all(|id| {
                matches!(
                    store.message(id).unwrap().map(|m| m.state),
                    Some(MessageState::Sent | MessageState::Delivered | MessageState::Read)
                )
            });
            if done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("every message acknowledged");
    assert!(u.c.send_queue().pending_messages().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// Send queue

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_queued_offline_arrive_once_in_order() {
    let s = start().await;
    let a = user(&s, "q_alice").await;
    let b = user(&s, "q_bob").await;
    let d = private_dialog(&a, &b).await;
    let mut bev = online(&b).await;
    let mut tl = Live::new(a.c.timeline().watch_timeline(&d, 50).unwrap());
    assert!(tl.list.is_empty());
    let mut ids = Vec::new();
    for i in 0..N {
        let m =
            a.c.send_queue()
                .enqueue_message(text(&d, b.id, &body_n(i)), vec![])
                .unwrap();
        assert_eq!(m.state, MessageState::Queued);
        ids.push(m.id);
    }
    // The local echoes, in send order, each once.
    let shown = tl.until("all queued", |l| l.len() >= N).await;
    assert_eq!(ids_of(&shown), ids);
    for (i, m) in shown.iter().enumerate() {
        assert_eq!(m.body, body_n(i));
        assert_eq!(m.state, MessageState::Queued);
    }
    let pending = a.c.send_queue().pending_messages().unwrap();
    assert_eq!(
        pending.iter().map(|m| &m.id).collect::<Vec<_>>(),
        ids.iter().collect::<Vec<_>>()
    );
    // Nothing leaves while offline.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(bev
        .take()
        .iter()
        .all(|e| !matches!(e, ChatEvent::Message(_))));

    let _aev = online(&a).await;
    let got = messages(&mut bev, N, |m| m.dialog_id.as_deref() == Some(d.as_str())).await;
    assert_eq!(got.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(
        got.iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
        (0..N).map(body_n).collect::<Vec<_>>()
    );
    no_more_messages(&mut bev, &d).await;
    all_sent(&a, &ids).await;
    let hist = history_bodies(&b, &d).await;
    assert_eq!(hist, (0..N).map(body_n).collect::<Vec<_>>());
    // The timeline saw each state change in place.
    let shown = tl
        .until("all sent", |l| {
            l.iter().all(|m| m.state != MessageState::Queued)
        })
        .await;
    assert_eq!(ids_of(&shown), ids);
}

/// `send_message` is the send queue plus a wait: each message is in the sender's open
/// timeline (`Added`, `Queued`) the moment the call returns, before anything went out, in
/// call order with `enqueue_message` ones; the receiver gets them once in that order; each
/// `Sending` resolves with its id once acknowledged, and the timeline shows `Sent`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_message_echoes_at_once_in_order_with_queued_ones_then_sent() {
    const K: usize = 8;
    let s = start().await;
    let a = user(&s, "sm_alice").await;
    let b = user(&s, "sm_bob").await;
    let d = private_dialog(&a, &b).await;
    let mut bev = online(&b).await;
    let _aev = online(&a).await;
    let mut tl = Live::new(a.c.timeline().watch_timeline(&d, 50).unwrap());
    assert!(tl.list.is_empty());
    let mut ids = Vec::new();
    let mut sendings = Vec::new();
    for i in 0..K {
        let id = if i % 2 == 0 {
            let sending =
                a.c.send_queue()
                    .send_message(text(&d, b.id, &body_n(i)))
                    .unwrap();
            assert_eq!(sending.message().state, MessageState::Queued);
            let id = sending.id().to_owned();
            sendings.push(tokio::spawn(sending.into_future()));
            id
        } else {
            a.c.send_queue()
                .enqueue_message(text(&d, b.id, &body_n(i)), vec![])
                .unwrap()
                .id
        };
        ids.push(id.clone());
        // Already told, before the call returned: no wait, and in call order.
        tl.drain();
        assert_eq!(ids_of(&tl.list), ids, "message {i}");
        let m = find(&tl.list, &id).unwrap();
        assert_eq!(m.body, body_n(i));
        assert!(m.outgoing);
    }
    // Every send_message resolves with its id once the server acknowledged it.
    for (h, id) in sendings.into_iter().zip(ids.iter().step_by(2)) {
        let got = timeout(STEP, h)
            .await
            .expect("send_message resolved in time")
            .unwrap()
            .unwrap();
        assert_eq!(&got, id);
        let state = a.c.store().unwrap().message(id).unwrap().unwrap().state;
        assert!(
            matches!(
                state,
                MessageState::Sent | MessageState::Delivered | MessageState::Read
            ),
            "{state:?}"
        );
    }
    // The timeline saw each of them turn Sent (or beyond: b's client marks them delivered).
    let list = tl
        .until("every message Sent", |l| {
            l.len() == K && l.iter().all(|m| m.state != MessageState::Queued)
        })
        .await;
    assert_eq!(ids_of(&list), ids);
    assert!(list.iter().all(|m| matches!(
        m.state,
        MessageState::Sent | MessageState::Delivered | MessageState::Read
    )));
    let got = messages(&mut bev, K, |m| m.dialog_id.as_deref() == Some(d.as_str())).await;
    assert_eq!(got.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), ids);
    no_more_messages(&mut bev, &d).await;
    all_sent(&a, &ids).await;
    // A fresh timeline holds each once, in send order.
    let (snap, _) = a.c.timeline().watch_timeline(&d, 50).unwrap();
    assert_eq!(snap.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), ids);
}

/// Chat stopped: `send_message` is refused with `ChatNotConnected` and stores nothing
/// (`enqueue_message` is the way to write while offline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_message_while_chat_is_stopped_stores_nothing() {
    let s = start().await;
    let a = user(&s, "ss_alice").await;
    let b = user(&s, "ss_bob").await;
    let d = private_dialog(&a, &b).await;
    let (_, mut tl) = a.c.timeline().watch_timeline(&d, 10).unwrap();
    assert!(matches!(
        a.c.send_queue()
            .send_message(text(&d, b.id, "never connected")),
        Err(Error::ChatNotConnected)
    ));
    let _aev = online(&a).await;
    a.c.chat().disconnect_chat().await;
    assert!(matches!(
        a.c.send_queue()
            .send_message(text(&d, b.id, "disconnected")),
        Err(Error::ChatNotConnected)
    ));
    assert!(tl.try_recv().is_err(), "nothing told");
    assert!(a.c.send_queue().pending_messages().unwrap().is_empty());
    assert!(a
        .c
        .store()
        .unwrap()
        .timeline(&d, None, 10)
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_ack_resend_is_not_duplicated() {
    let s = start().await;
    let a = user(&s, "la_alice").await;
    let b = user(&s, "la_bob").await;
    let d = private_dialog(&a, &b).await;
    let mut bev = online(&b).await;
    let _aev = online(&a).await;
    let first =
        a.c.send_queue()
            .enqueue_message(text(&d, b.id, "first"), vec![])
            .unwrap();
    bev.message("first", |m| m.id == first.id).await;
    all_sent(&a, std::slice::from_ref(&first.id)).await;
    // The acknowledgement "was lost": the same message (same id) is queued and goes again.
    let store = a.c.store().unwrap();
    let payload = Payload {
        recipient_id: Some(b.id),
        body: "first".into(),
        save_to_history: true,
        date_sent: first.date_sent,
        ..Default::default()
    };
    store.requeue(&first.id, &payload, &d).unwrap();
    let second =
        a.c.send_queue()
            .enqueue_message(text(&d, b.id, "second"), vec![])
            .unwrap();
    bev.message("second", |m| m.id == second.id).await;
    no_more_messages(&mut bev, &d).await;
    all_sent(&a, &[first.id.clone(), second.id.clone()]).await;
    assert_eq!(history_bodies(&b, &d).await, ["first", "second"]);
}

/// Parameters of the child process of the SIGKILL tests, in one environment variable.
const CHILD_ENV: &str = "CUBECHAT_OFFLINE_CHILD";

/// Not a test on its own: the body of the child process that the SIGKILL tests start
/// (this same test binary, `--exact --ignored`). Without its environment variable it
/// returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of the SIGKILL tests"]
async fn offline_child_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let s = Server::attach(spec["ready"].clone());
    let store_dir = std::path::PathBuf::from(spec["store_dir"].as_str().unwrap());
    let a = log_in(&s, spec["login"].as_str().unwrap(), |c| {
        c.store_dir = Some(store_dir.clone())
    })
    .await;
    let d = spec["dialog"].as_str().unwrap();
    let to = spec["to"].as_u64().unwrap();
    for i in 0..N {
        a.c.send_queue()
            .enqueue_message(text(d, to, &body_n(i)), vec![])
            .unwrap();
    }
    println!("CHILD-QUEUED");
    if spec["connect"].as_bool() == Some(true) {
        a.c.chat()
            .connect_chat(ChatAuth::SessionToken)
            .await
            .unwrap();
        println!("CHILD-CONNECTED");
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
}

/// Starts the child, waits for `marker` on its stdout, and kills it with SIGKILL.
async fn run_and_kill(spec: serde_json::Value, marker: &str) {
    let exe = std::env::current_exe().unwrap();
    let mut child = tokio::process::Command::new(exe)
        .args([
            "offline_child_process",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, spec.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    timeout(Duration::from_secs(60), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l.contains(marker) {
                return;
            }
        }
        panic!("child ended before {marker}");
    })
    .await
    .expect("child reached its marker");
    child.start_kill().unwrap(); // SIGKILL
    let status = child.wait().await.unwrap();
    assert!(!status.success());
}

async fn killed_then_restarted(connect_before_kill: bool, tag: &str) {
    let s = start().await;
    let tmp = tempdir(tag);
    let a_login = format!("{tag}_alice");
    sign_up(&s, &a_login).await;
    let a0 = log_in(&s, &a_login, |_| {}).await;
    let b = user(&s, &format!("{tag}_bob")).await;
    let d = private_dialog(&a0, &b).await;
    let mut bev = online(&b).await;
    let spec = serde_json::json!({
        "ready": s.ready, "store_dir": tmp, "login": a_login, "dialog": d, "to": b.id,
        "connect": connect_before_kill,
    });
    run_and_kill(
        spec,
        if connect_before_kill {
            "CHILD-CONNECTED"
        } else {
            "CHILD-QUEUED"
        },
    )
    .await;
    // Restart on the same store. (The draining variant touches no store call before
    // connecting: the store opens at log-in and its queue drains by itself.)
    let a = log_in(&s, &a_login, |c| c.store_dir = Some(tmp.clone())).await;
    if !connect_before_kill {
        let pending = a.c.send_queue().pending_messages().unwrap();
        assert_eq!(
            pending.iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
            (0..N).map(body_n).collect::<Vec<_>>()
        );
        assert!(pending.iter().all(|m| m.state == MessageState::Queued));
    }
    let _aev = online(&a).await;
    let got = messages(&mut bev, N, |m| m.dialog_id.as_deref() == Some(d.as_str())).await;
    assert_eq!(
        got.iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
        (0..N).map(body_n).collect::<Vec<_>>()
    );
    no_more_messages(&mut bev, &d).await;
    assert_eq!(
        history_bodies(&b, &d).await,
        (0..N).map(body_n).collect::<Vec<_>>()
    );
    let ids: Vec<String> = got.into_iter().map(|m| m.id).collect();
    all_sent(&a, &ids).await;
    let _ = std::fs::remove_dir_all(&tmp);
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(common::unique(&format!("cubechat-{tag}-")));
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_100_queued_then_restart_delivers_each_once() {
    killed_then_restarted(false, "kq").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_draining_then_restart_delivers_each_once() {
    killed_then_restarted(true, "kd").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_attachment_uploads_before_the_message_is_sent() {
    let s = start().await;
    let a = user(&s, "at_alice").await;
    let b = user(&s, "at_bob").await;
    let d = private_dialog(&a, &b).await;
    let tmp = tempdir("at");
    let file = tmp.join("photo.png");
    std::fs::write(&file, vec![7u8; 20_000]).unwrap();
    let mut tl = Live::new(a.c.timeline().watch_timeline(&d, 10).unwrap());
    let q =
        a.c.send_queue()
            .enqueue_message(
                text(&d, b.id, "look"),
                vec![QueuedFile {
                    path: file.clone(),
                    name: None,
                    content_type: None,
                    public: false,
                }],
            )
            .unwrap();
    assert!(q.attachments.is_empty());
    let mut bev = online(&b).await;
    let _aev = online(&a).await;
    let m = bev.message("with attachment", |m| m.id == q.id).await;
    assert_eq!(m.attachments.len(), 1);
    let uid = m.attachments[0].uid.clone().expect("uploaded blob uid");
    assert_eq!(m.attachments[0].kind, "image");
    assert_eq!(
        b.c.files().blob_by_uid(&uid).await.unwrap().size,
        Some(20_000)
    );
    tl.until("attachment in place", |l| {
        find(l, &q.id).is_some_and(|m| m.attachments.len() == 1)
    })
    .await;
    // A file that is gone fails the message, with the reason, and the queue goes on.
    let gone =
        a.c.send_queue()
            .enqueue_message(
                text(&d, b.id, "lost file"),
                vec![QueuedFile {
                    path: tmp.join("missing.png"),
                    name: None,
                    content_type: None,
                    public: false,
                }],
            )
            .unwrap();
    let after =
        a.c.send_queue()
            .enqueue_message(text(&d, b.id, "after"), vec![])
            .unwrap();
    bev.message("after", |m| m.id == after.id).await;
    let shown = tl
        .until("failed", |l| {
            find(l, &gone.id).is_some_and(|m| matches!(m.state, MessageState::Failed { .. }))
        })
        .await;
    match &find(&shown, &gone.id).unwrap().state {
        MessageState::Failed { reason } => assert!(reason.contains("upload"), "{reason}"),
        _ => unreachable!(),
    }
    a.c.send_queue().cancel_message(&gone.id).unwrap();
    assert!(a.c.store().unwrap().message(&gone.id).unwrap().is_none());
    let _ = std::fs::remove_dir_all(&tmp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_edit_delete_and_retry() {
    let s = start().await;
    let a = user(&s, "ce_alice").await;
    let b = user(&s, "ce_bob").await;
    let d = private_dialog(&a, &b).await;
    let mut tl = Live::new(a.c.timeline().watch_timeline(&d, 10).unwrap());
    let one =
        a.c.send_queue()
            .enqueue_message(text(&d, b.id, "one"), vec![])
            .unwrap();
    let two =
        a.c.send_queue()
            .enqueue_message(text(&d, b.id, "two"), vec![])
            .unwrap();
    let three =
        a.c.send_queue()
            .enqueue_message(text(&d, b.id, "three"), vec![])
            .unwrap();
    a.c.send_queue().cancel_message(&two.id).unwrap();
    let shown = tl
        .until("two removed", |l| {
            find(l, &three.id).is_some() && find(l, &two.id).is_none()
        })
        .await;
    assert_eq!(ids_of(&shown), [one.id.clone(), three.id.clone()]);
    let edited =
        a.c.send_queue()
            .edit_local_message(&three.id, "three, edited")
            .unwrap();
    assert_eq!(edited.body, "three, edited");
    assert_eq!(edited.state, MessageState::Queued);
    a.c.send_queue().delete_local_message(&one.id).unwrap();
    assert!(a.c.store().unwrap().message(&one.id).unwrap().is_none());
    assert_eq!(a.c.send_queue().pending_messages().unwrap().len(), 1);
    assert!(a
        .c
        .send_queue()
        .enqueue_message(text(&d, b.id, "  "), vec![])
        .is_err());
    assert_eq!(a.c.send_queue().pending_messages().unwrap().len(), 1);

    let mut bev = online(&b).await;
    let _aev = online(&a).await;
    let got = bev.message("three", |m| m.id == three.id).await;
    assert_eq!(got.body, "three, edited");
    no_more_messages(&mut bev, &d).await;
    all_sent(&a, std::slice::from_ref(&three.id)).await;
    // Sent: an edit and a delete are queued and go over chat.
    assert!(a.c.send_queue().cancel_message(&three.id).is_err());
    a.c.send_queue()
        .edit_local_message(&three.id, "three, again")
        .unwrap();
    bev.next("Edited", |e| {
        matches!(e, ChatEvent::Edited { message_id, body, .. } if *message_id == three.id && body == "three, again")
    })
    .await;
    a.c.send_queue().delete_local_message(&three.id).unwrap();
    bev.next(
        "Deleted",
        |e| matches!(e, ChatEvent::Deleted { message_id, .. } if *message_id == three.id),
    )
    .await;
    timeout(STEP, async {
        while !history_bodies(&b, &d).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the deletion reached the history");

    // Bounced (bob blocks alice): Failed with a reason; unblocked: retry sends it.
    b.c.chat()
        .create_privacy_list(&PrivacyList {
            name: "block".into(),
            items: vec![PrivacyListItem {
                user_id: a.id,
                action: PrivacyAction::Deny,
                mutual_block: false,
            }],
        })
        .await
        .unwrap();
    b.c.chat()
        .set_default_privacy_list(Some("block"))
        .await
        .unwrap();
    let bounced =
        a.c.send_queue()
            .enqueue_message(text(&d, b.id, "blocked"), vec![])
            .unwrap();
    tl.until("Failed", |l| {
        find(l, &bounced.id).is_some_and(|m| matches!(m.state, MessageState::Failed { .. }))
    })
    .await;
    b.c.chat().set_default_privacy_list(None).await.unwrap();
    let again = a.c.send_queue().retry_message(&bounced.id).unwrap();
    assert_eq!(again.state, MessageState::Queued);
    bev.message("retried", |m| m.id == bounced.id).await;
    all_sent(&a, std::slice::from_ref(&bounced.id)).await;
}

// ---------------------------------------------------------------------------------------
// Live views

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialog_list_is_served_then_synced_then_live() {
    let s = start().await;
    let tmp = tempdir("dl");
    sign_up(&s, "dl_alice").await;
    let a = log_in(&s, "dl_alice", |c| c.store_dir = Some(tmp.clone())).await;
    let b = user(&s, "dl_bob").await;
    let c = user(&s, "dl_carol").await;
    let p1 = private_dialog(&b, &a).await;
    let g =
        b.c.dialogs()
            .create_dialog(NewDialog {
                kind: DialogType::Group,
                name: Some("Team".into()),
                occupants_ids: vec![a.id, c.id],
                photo: None,
                description: None,
                extensions: BTreeMap::new(),
            })
            .await
            .unwrap()
            .id;
    b.c.messages()
        .create_message(NewMessage {
            dialog_id: g.clone(),
            body: "hello team".into(),
            attachments: vec![],
            custom: BTreeMap::new(),
            send_to_chat: false,
            markable: false,
            // Strictly the newest activity, whatever second the dialogs were created in.
            date_sent: Some(now() + 5),
        })
        .await
        .unwrap();

    let mut dl = Live::new(a.c.timeline().watch_dialogs(50).unwrap());
    assert!(dl.list.is_empty(), "a new store starts empty");
    let shown = dl
        .until("synced", |l| {
            dialog_in(l, &p1).is_some() && dialog_in(l, &g).is_some()
        })
        .await;
    let page = a.c.timeline().dialogs_page(50, None).unwrap();
    assert_eq!(shown, page, "the view is the list");
    assert_eq!(page[0].id, g, "the dialog with the newest message first");
    assert_eq!(page[0].unread_messages_count, Some(1));

    // Live: a message in the private dialog moves it to the top with its unread count.
    let _aev = online(&a).await;
    let _bev = online(&b).await;
    b.c.send_queue()
        .send_message(OutgoingMessage {
            date_sent: Some(now() + 10),
            ..text(&p1, a.id, "psst")
        })
        .unwrap();
    let shown = dl
        .until("last message on top", |l| {
            l.first()
                .is_some_and(|d| d.id == p1 && d.last_message.as_deref() == Some("psst"))
        })
        .await;
    assert_eq!(shown[0].unread_messages_count, Some(1));
    assert_eq!(shown.len(), 2);
    assert_eq!(a.c.timeline().dialogs_page(1, None).unwrap()[0].id, p1);
    let rest =
        a.c.timeline()
            .dialogs_page(10, Some(&a.c.timeline().dialogs_page(1, None).unwrap()[0]))
            .unwrap();
    assert_eq!(
        rest.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        [g.as_str()]
    );
    // The same page, the previous page's last dialog given by id (as apps hold it).
    assert_eq!(
        a.c.timeline().dialogs_page_after_id(10, Some(&p1)).unwrap(),
        rest
    );
    assert!(matches!(
        a.c.timeline()
            .dialogs_page_after_id(10, Some("000000000000000000000000")),
        Err(Error::NotFound(_))
    ));
    a.c.timeline().mark_dialog_read(&p1).await.unwrap();
    dl.until("read", |l| {
        dialog_in(l, &p1).is_some_and(|d| d.unread_messages_count == Some(0))
    })
    .await;

    // Renamed elsewhere, announced with a system message naming the dialog (as the
    // ConnectyCube SDKs do): the list follows.
    b.c.dialogs()
        .update_dialog(
            &g,
            DialogUpdate {
                name: Some("Renamed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut note = BTreeMap::new();
    note.insert("dialog_id".to_owned(), g.clone());
    b.c.messages()
        .send_system_message(a.id, note.clone())
        .await
        .unwrap();
    dl.until("renamed", |l| {
        dialog_in(l, &g).is_some_and(|d| d.name.as_deref() == Some("Renamed"))
    })
    .await;
    // Alice removed from the group: gone from the list.
    b.c.dialogs()
        .update_dialog(
            &g,
            DialogUpdate {
                remove_occupants: vec![a.id],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    b.c.messages()
        .send_system_message(a.id, note)
        .await
        .unwrap();
    dl.until("removed", |l| dialog_in(l, &g).is_none()).await;
    // The app's own deletion.
    a.c.dialogs()
        .delete_dialogs(std::slice::from_ref(&p1), false)
        .await
        .unwrap();
    let shown = dl.until("deleted", |l| dialog_in(l, &p1).is_none()).await;
    dl.drain();
    assert_eq!(dl.list, a.c.timeline().dialogs_page(50, None).unwrap());
    assert_eq!(shown, dl.list);

    // A restart serves the list from the file at once, before any network call (an
    // offline start: no log-in).
    let kept: Vec<String> =
        a.c.timeline()
            .dialogs_page(50, None)
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
    let a_id = a.id;
    a.c.chat().disconnect_chat().await;
    drop(a);
    let again = Client::new({
        let mut cfg = s.chat_config();
        cfg.store_dir = Some(tmp.clone());
        cfg
    })
    .unwrap();
    again.open_store(a_id).unwrap();
    let served: Vec<String> = again
        .timeline()
        .dialogs_page(50, None)
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(served, kept);
    drop(again);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_pages_backwards_and_fills_gaps_after_offline() {
    let s = start().await;
    let a = user(&s, "tl_alice").await;
    let b = user(&s, "tl_bob").await;
    let d = private_dialog(&b, &a).await;
    let base = 1_700_000_000;
    for i in 0..30 {
        b.c.messages()
            .create_message(NewMessage {
                dialog_id: d.clone(),
                body: format!("h{i:02}"),
                attachments: vec![],
                custom: BTreeMap::new(),
                send_to_chat: false,
                markable: false,
                date_sent: Some(base + i),
            })
            .await
            .unwrap();
    }
    a.c.timeline().sync_local().await.unwrap();
    // Nothing cached: the view covers the whole dialog (what load_older stores too).
    let mut tl = Live::new(a.c.timeline().watch_timeline(&d, 10).unwrap());
    assert!(tl.list.is_empty());
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page =
            a.c.timeline()
                .load_older(&d, before.as_deref(), 10)
                .await
                .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        before = Some(page[0].id.clone());
        let mut bodies: Vec<String> = page.into_iter().map(|m| m.body).collect();
        bodies.extend(seen);
        seen = bodies;
        assert!(seen.len() <= 30, "no duplicates: {seen:?}");
    }
    assert_eq!(
        seen,
        (0..30).map(|i| format!("h{i:02}")).collect::<Vec<_>>()
    );
    // Served from the store now, without the server.
    let cached = a.c.timeline().load_older(&d, None, 5).await.unwrap();
    assert_eq!(cached.last().unwrap().body, "h29");

    // Connected, then offline while bob writes: the sync on reconnection fills the gap.
    let _aev = online(&a).await;
    let mut bev = online(&b).await;
    let live =
        b.c.send_queue()
            .send_message(text(&d, a.id, "live"))
            .unwrap()
            .id()
            .to_owned();
    bev.sent(&live).await;
    let shown = tl.until("live", |l| find(l, &live).is_some()).await;
    assert_eq!(shown.len(), 31);
    assert_eq!(shown.last().unwrap().id, live);
    a.c.chat().disconnect_chat().await;
    for i in 0..3 {
        b.c.messages()
            .create_message(NewMessage {
                dialog_id: d.clone(),
                body: format!("missed{i}"),
                attachments: vec![],
                custom: BTreeMap::new(),
                send_to_chat: false,
                markable: false,
                date_sent: None,
            })
            .await
            .unwrap();
    }
    let mut states: ConnectionStates = a.c.chat().subscribe_connection().1;
    a.c.chat().reconnect_now().await;
    connected(&mut states, "reconnected").await;
    let shown = tl.until("gap", |l| l.len() >= 34).await;
    let mut filled: Vec<&str> = shown[31..].iter().map(|m| m.body.as_str()).collect();
    filled.sort();
    assert_eq!(filled, ["missed0", "missed1", "missed2"]);
    // Each once.
    tokio::time::sleep(QUIET).await;
    tl.drain();
    let all = a.c.timeline().load_older(&d, None, 100).await.unwrap();
    assert_eq!(all.len(), 34);
    assert_eq!(tl.list, all);
}

/// A timeline opened the moment a message arrived (as a chat screen opened from a
/// notification does) holds it in its snapshot or gets it in a diff, never both; and the
/// view rebuilt from snapshot and diffs holds each message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_opened_as_a_message_arrives_has_it_once() {
    const TRIES: usize = 30;
    let s = start().await;
    // A store on disk: a write takes as long as in an app.
    let tmp = tempdir("race");
    sign_up(&s, "race_alice").await;
    let a = log_in(&s, "race_alice", |c| c.store_dir = Some(tmp.clone())).await;
    let b = user(&s, "race_bob").await;
    let d = private_dialog(&b, &a).await;
    let mut aev = online(&a).await;
    let _bev = online(&b).await;
    let mut views = Vec::new();
    for i in 0..TRIES {
        let body = format!("race{i:02}");
        let id =
            b.c.send_queue()
                .send_message(text(&d, a.id, &body))
                .unwrap()
                .id()
                .to_owned();
        aev.message(&body, |m| m.id == id).await;
        // At once, as the app would on seeing the message.
        views.push(Live::new(a.c.timeline().watch_timeline(&d, 100).unwrap()));
    }
    // The applier handles events in order: once a view has the end marker, it has every
    // earlier change.
    let end =
        b.c.send_queue()
            .send_message(text(&d, a.id, "end"))
            .unwrap()
            .id()
            .to_owned();
    aev.message("end", |m| m.id == end).await;
    let mut doubled = 0;
    for (n, tl) in views.iter_mut().enumerate() {
        let shown = ids_of(&tl.until("end", |l| find(l, &end).is_some()).await);
        let mut seen = std::collections::BTreeSet::new();
        let twice: Vec<&String> = shown.iter().filter(|id| !seen.insert(*id)).collect();
        if !twice.is_empty() {
            eprintln!("view {n}: seen twice {twice:?}");
            doubled += 1;
        }
    }
    drop(views);
    drop(a);
    let _ = std::fs::remove_dir_all(&tmp);
    assert_eq!(doubled, 0, "{doubled} of {TRIES} views saw a message twice");
}

/// More missed than one sync fetches (over 10 pages of 100): the sync drops the older
/// cached messages to keep the cache contiguous. A live timeline loses them too, this
/// user's unsent message stays, and the dropped ones load again from the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_trim_is_told_to_live_timelines_and_keeps_unsent() {
    const MISSED: i64 = 1050;
    let s = start().await;
    let a = user(&s, "trim_alice").await;
    let b = user(&s, "trim_bob").await;
    let d = private_dialog(&b, &a).await;
    let create = |body: String, date_sent: i64| NewMessage {
        dialog_id: d.clone(),
        body,
        attachments: vec![],
        custom: BTreeMap::new(),
        send_to_chat: false,
        markable: false,
        date_sent: Some(date_sent),
    };
    let old =
        b.c.messages()
            .create_message(create("old".into(), 1_700_000_000))
            .await
            .unwrap();
    a.c.timeline().sync_local().await.unwrap();
    assert_eq!(
        a.c.timeline().load_older(&d, None, 10).await.unwrap().len(),
        1
    );
    // Never connected: stays queued.
    let unsent =
        a.c.send_queue()
            .enqueue_message(
                OutgoingMessage {
                    date_sent: Some(1_700_000_001),
                    ..text(&d, b.id, "unsent")
                },
                vec![],
            )
            .unwrap();
    let mut tl = Live::new(a.c.timeline().watch_timeline(&d, 10).unwrap());
    assert_eq!(ids_of(&tl.list), [old.id.clone(), unsent.id.clone()]);

    let base = now();
    for i in 0..MISSED {
        b.c.messages()
            .create_message(create(format!("n{i:04}"), base + i))
            .await
            .unwrap();
    }
    a.c.timeline().sync_local().await.unwrap();
    assert!(tl.drain() > 0);
    // Ten pages fetched; the trimmed message left the view, the unsent one stayed first.
    assert_eq!(tl.list.len(), 1001);
    assert!(find(&tl.list, &old.id).is_none());
    assert_eq!(tl.list[0].id, unsent.id);
    assert_eq!(tl.list[1].body, format!("n{:04}", MISSED - 1000));
    let store = a.c.store().unwrap();
    assert!(store.message(&old.id).unwrap().is_none());
    let kept = store.message(&unsent.id).unwrap().unwrap();
    assert_eq!(kept.state, MessageState::Queued);

    // Paging back reaches the trimmed history again (the server has it).
    let first = store.oldest(&d).unwrap().unwrap();
    assert_eq!(first.body, format!("n{:04}", MISSED - 1000));
    let mut before = Some(first.id);
    let mut older = Vec::new();
    for _ in 0..10 {
        let page =
            a.c.timeline()
                .load_older(&d, before.as_deref(), 100)
                .await
                .unwrap();
        if page.is_empty() {
            break;
        }
        before = Some(page[0].id.clone());
        let mut bodies: Vec<String> = page.into_iter().map(|m| m.body).collect();
        bodies.append(&mut older);
        older = bodies;
    }
    older.retain(|b| b != "unsent");
    let mut want = vec!["old".to_owned()];
    want.extend((0..MISSED - 1000).map(|i| format!("n{i:04}")));
    assert_eq!(older, want, "the whole of the trimmed stretch, once");
}
