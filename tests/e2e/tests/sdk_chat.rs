//! cubechat-core's chat REST API end to end against a real cubeserver process: every dialog
//! and message operation of `core/src/chat.rs`, every permission rule the server implements
//! (owner, admin, occupant, stranger), the `last_message*` and unread bookkeeping, and
//! client-side validation that never reaches the network (checked through a byte-counting
//! proxy).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cubechat_core::chat::{
    Attachment, DialogType, DialogUpdate, Filter, FilterOp, ListParams, NewDialog, NewMessage,
    ReactionsSummary, SearchQuery, MAX_BODY, MAX_IDS, SEARCH_MAX_RANGE_SECS,
};
use cubechat_core::{Client, Config, Error, LoginId, UserParams};
use cubechat_wire::chat::{is_object_id, DeleteResult, Dialog, Ids, Message};
use cubechat_wire::time::parse_iso8601;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use cubechat_e2e as common;

use common::{start, Server, APP, PASSWORD};

/// A well-formed id no server object has.
const MISSING: &str = "0000000000000000000000aa";

// ---------------------------------------------------------------------------------------
// Fixtures

/// A logged-in user.
struct U {
    c: Arc<Client>,
    id: u64,
}

trait Fixtures {
    fn client_at(&self, api_url: &str) -> Arc<Client>;
    async fn user(&self, login: &str) -> U;
    async fn user_full(&self, login: &str, full_name: &str, api_url: &str) -> U;
}

impl Fixtures for Server {
    fn client_at(&self, api_url: &str) -> Arc<Client> {
        let mut cfg = Config::new(APP.0, APP.1, api_url);
        cfg.auth_secret = Some(APP.2.into());
        cfg.timeouts.request = Duration::from_secs(20);
        Client::new(cfg).unwrap()
    }

    async fn user(&self, login: &str) -> U {
        self.user_full(login, "Rust Tester", &self.api_url).await
    }

    async fn user_full(&self, login: &str, full_name: &str, api_url: &str) -> U {
        let c = self.client_at(api_url);
        let created = c
            .auth()
            .sign_up(UserParams {
                login: Some(login.into()),
                password: Some(PASSWORD.into()),
                full_name: Some(full_name.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let me = c
            .auth()
            .log_in(LoginId::Login(login.into()), PASSWORD)
            .await
            .unwrap();
        assert_eq!(me.id, created.id);
        U { c, id: me.id }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn new_dialog(kind: DialogType, name: Option<&str>, occupants: &[u64]) -> NewDialog {
    NewDialog {
        kind,
        name: name.map(String::from),
        occupants_ids: occupants.to_vec(),
        photo: None,
        description: None,
        extensions: BTreeMap::new(),
    }
}

async fn group(owner: &U, name: &str, occupants: &[u64]) -> Dialog {
    owner
        .c
        .dialogs()
        .create_dialog(new_dialog(DialogType::Group, Some(name), occupants))
        .await
        .unwrap()
}

async fn public(owner: &U, name: &str) -> Dialog {
    owner
        .c
        .dialogs()
        .create_dialog(new_dialog(DialogType::Public, Some(name), &[]))
        .await
        .unwrap()
}

async fn private(owner: &U, other: u64) -> Dialog {
    owner
        .c
        .dialogs()
        .create_dialog(new_dialog(DialogType::Private, None, &[other]))
        .await
        .unwrap()
}

fn msg(dialog: &str, body: &str) -> NewMessage {
    NewMessage {
        dialog_id: dialog.into(),
        body: body.into(),
        ..Default::default()
    }
}

async fn send(u: &U, dialog: &str, body: &str) -> Message {
    u.c.messages()
        .create_message(msg(dialog, body))
        .await
        .unwrap()
}

async fn send_at(u: &U, dialog: &str, body: &str, date_sent: i64) -> Message {
    u.c.messages()
        .create_message(NewMessage {
            date_sent: Some(date_sent),
            ..msg(dialog, body)
        })
        .await
        .unwrap()
}

fn filter(field: &str, op: FilterOp, value: impl ToString) -> Filter {
    Filter {
        field: field.into(),
        op,
        value: value.to_string(),
    }
}

fn filtered(filters: Vec<Filter>) -> ListParams {
    ListParams {
        filters,
        ..Default::default()
    }
}

/// The dialog as `u` sees it in their list, if it is there.
async fn view(u: &U, id: &str) -> Option<Dialog> {
    let page =
        u.c.dialogs()
            .list_dialogs(&filtered(vec![filter("_id", FilterOp::Eq, id)]))
            .await
            .unwrap();
    assert_eq!(page.total_entries as usize, page.items.len());
    assert!(page.items.len() <= 1);
    page.items.into_iter().next()
}

async fn seen(u: &U, id: &str) -> Dialog {
    view(u, id).await.expect("dialog in the list")
}

async fn occupants(u: &U, id: &str) -> Vec<u64> {
    seen(u, id).await.occupants_ids
}

/// The whole history as `u` sees it, without marking anything read.
async fn history(u: &U, dialog: &str) -> Vec<Message> {
    u.c.messages()
        .history(dialog, &ListParams::default(), false)
        .await
        .unwrap()
        .items
}

async fn bodies(u: &U, dialog: &str) -> Vec<String> {
    history(u, dialog)
        .await
        .into_iter()
        .map(|m| m.message.unwrap_or_default())
        .collect()
}

fn names(page: &[Dialog]) -> Vec<String> {
    page.iter()
        .map(|d| d.name.clone().unwrap_or_default())
        .collect()
}

fn ids(messages: &[&Message]) -> Vec<String> {
    messages.iter().map(|m| m.id.clone()).collect()
}

fn result(deleted: &[&str], not_found: &[&str], wrong: &[&str]) -> DeleteResult {
    let ids = |v: &[&str]| Ids {
        ids: v.iter().map(|s| s.to_string()).collect(),
    };
    DeleteResult {
        deleted: ids(deleted),
        not_found: ids(not_found),
        wrong_permissions: ids(wrong),
    }
}

#[track_caller]
fn error<T: Debug>(r: Result<T, Error>) -> Error {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn forbidden<T: Debug>(r: Result<T, Error>) {
    let e = error(r);
    assert!(matches!(e, Error::Forbidden(_)), "{e:?}");
}

#[track_caller]
fn not_found<T: Debug>(r: Result<T, Error>) {
    let e = error(r);
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
}

/// A 422 whose message contains `needle`.
#[track_caller]
fn unprocessable<T: Debug>(r: Result<T, Error>, needle: &str) {
    match error(r) {
        Error::Server { status, message } => {
            assert_eq!(status, 422, "{message}");
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
        e => panic!("expected a 422, got {e:?}"),
    }
}

/// A TCP proxy in front of the server that counts the bytes clients send through it.
struct CountingProxy {
    url: String,
    sent: Arc<AtomicU64>,
}

async fn counting_proxy(upstream: &str) -> CountingProxy {
    let target = upstream.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let (target, counter) = (target.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(outbound) = TcpStream::connect(&target).await else {
                    return;
                };
                let (mut from_client, mut to_client) = inbound.into_split();
                let (mut from_server, mut to_server) = outbound.into_split();
                let up = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = from_client.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        counter.fetch_add(n as u64, Ordering::SeqCst);
                        if to_server.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown().await;
                };
                let down = async {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                    let _ = to_client.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    CountingProxy { url, sent }
}

// ---------------------------------------------------------------------------------------
// Validation

#[tokio::test]
async fn bad_input_is_rejected_before_anything_is_sent() {
    let server = start().await;
    let proxy = counting_proxy(&server.api_url).await;
    let u = server.user_full("val", "Val Idator", &proxy.url).await;
    let other = server.user("other").await;
    let c = &u.c;
    let g = group(&u, "Valid", &[other.id]).await.id;
    let m = send(&u, &g, "hello").await.id;
    let before = proxy.sent.load(Ordering::SeqCst);
    assert!(before > 0, "the proxy counts traffic");

    let bad = "not-an-id".to_owned();
    let too_many = vec![m.clone(); MAX_IDS + 1];
    let named = |kind, name: Option<&str>, occ: &[u64]| new_dialog(kind, name, occ);
    let list = |p: ListParams| async move { c.dialogs().list_dialogs(&p).await.map(drop) };
    let hist = |p: ListParams| {
        let g = g.clone();
        async move { c.messages().history(&g, &p, false).await.map(drop) }
    };
    let search = |q: SearchQuery| async move { c.messages().search(&q).await.map(drop) };
    let text = |t: &str| SearchQuery {
        text: t.into(),
        ..Default::default()
    };
    let results: Vec<(&str, Result<(), Error>)> = vec![
        // Dialog creation.
        (
            "private with no opponent",
            c.dialogs()
                .create_dialog(named(DialogType::Private, None, &[]))
                .await
                .map(drop),
        ),
        (
            "private with two opponents",
            c.dialogs()
                .create_dialog(named(DialogType::Private, None, &[other.id, 99]))
                .await
                .map(drop),
        ),
        (
            "group without name",
            c.dialogs()
                .create_dialog(named(DialogType::Group, None, &[other.id]))
                .await
                .map(drop),
        ),
        (
            "group with blank name",
            c.dialogs()
                .create_dialog(named(DialogType::Group, Some("  "), &[other.id]))
                .await
                .map(drop),
        ),
        (
            "public without name",
            c.dialogs()
                .create_dialog(named(DialogType::Public, None, &[]))
                .await
                .map(drop),
        ),
        (
            "broadcast without name",
            c.dialogs()
                .create_dialog(named(DialogType::Broadcast, None, &[]))
                .await
                .map(drop),
        ),
        (
            "group with user 0",
            c.dialogs()
                .create_dialog(named(DialogType::Group, Some("x"), &[0]))
                .await
                .map(drop),
        ),
        // Dialog lists.
        (
            "limit 0",
            list(ListParams {
                limit: Some(0),
                ..Default::default()
            })
            .await,
        ),
        (
            "limit 101",
            list(ListParams {
                limit: Some(101),
                ..Default::default()
            })
            .await,
        ),
        (
            "sort by name",
            list(ListParams {
                sort: Some(("name".into(), true)),
                ..Default::default()
            })
            .await,
        ),
        (
            "unknown filter field",
            list(filtered(vec![filter("bogus", FilterOp::Gt, 1)])).await,
        ),
        // Dialog updates and the rest of the dialog calls.
        (
            "update malformed id",
            c.dialogs()
                .update_dialog(
                    &bad,
                    DialogUpdate {
                        name: Some("x".into()),
                        ..Default::default()
                    },
                )
                .await
                .map(drop),
        ),
        (
            "empty update",
            c.dialogs()
                .update_dialog(&g, DialogUpdate::default())
                .await
                .map(drop),
        ),
        (
            "update with blank name",
            c.dialogs()
                .update_dialog(
                    &g,
                    DialogUpdate {
                        name: Some(" ".into()),
                        ..Default::default()
                    },
                )
                .await
                .map(drop),
        ),
        (
            "add user 0",
            c.dialogs()
                .update_dialog(
                    &g,
                    DialogUpdate {
                        add_occupants: vec![0],
                        ..Default::default()
                    },
                )
                .await
                .map(drop),
        ),
        (
            "remove user 0",
            c.dialogs()
                .update_dialog(
                    &g,
                    DialogUpdate {
                        remove_occupants: vec![0],
                        ..Default::default()
                    },
                )
                .await
                .map(drop),
        ),
        (
            "pin malformed message id",
            c.dialogs()
                .update_dialog(
                    &g,
                    DialogUpdate {
                        pin_messages: vec![bad.clone()],
                        ..Default::default()
                    },
                )
                .await
                .map(drop),
        ),
        (
            "delete no dialogs",
            c.dialogs().delete_dialogs(&[], false).await.map(drop),
        ),
        (
            "delete too many dialogs",
            c.dialogs()
                .delete_dialogs(&vec![g.clone(); MAX_IDS + 1], true)
                .await
                .map(drop),
        ),
        (
            "delete malformed dialog id",
            c.dialogs()
                .delete_dialogs(&[g.clone(), bad.clone()], false)
                .await
                .map(drop),
        ),
        (
            "clear malformed",
            c.dialogs().clear_history(&bad, false).await,
        ),
        (
            "subscribe malformed",
            c.dialogs().subscribe_dialog(&bad).await.map(drop),
        ),
        (
            "unsubscribe malformed",
            c.dialogs().unsubscribe_dialog(&bad).await,
        ),
        (
            "occupants limit 0",
            c.dialogs().public_occupants(&g, 0, 0).await.map(drop),
        ),
        (
            "occupants limit 101",
            c.dialogs().public_occupants(&g, 101, 0).await.map(drop),
        ),
        (
            "occupants malformed",
            c.dialogs().public_occupants(&bad, 10, 0).await.map(drop),
        ),
        (
            "no admins",
            c.dialogs().set_admins(&g, &[], true).await.map(drop),
        ),
        (
            "admin 0",
            c.dialogs()
                .set_admins(&g, &[other.id, 0], false)
                .await
                .map(drop),
        ),
        (
            "six admins",
            c.dialogs()
                .set_admins(&g, &[1, 2, 3, 4, 5, 6], true)
                .await
                .map(drop),
        ),
        (
            "admins malformed",
            c.dialogs()
                .set_admins(&bad, &[other.id], true)
                .await
                .map(drop),
        ),
        (
            "get notifications malformed",
            c.dialogs().notifications_enabled(&bad).await.map(drop),
        ),
        (
            "set notifications malformed",
            c.dialogs().set_notifications(&bad, false).await.map(drop),
        ),
        // History.
        (
            "history malformed",
            c.messages()
                .history(&bad, &ListParams::default(), true)
                .await
                .map(drop),
        ),
        (
            "history unknown filter",
            hist(filtered(vec![filter("chat_dialog_id", FilterOp::Eq, &g)])).await,
        ),
        (
            "history limit 101",
            hist(ListParams {
                limit: Some(101),
                ..Default::default()
            })
            .await,
        ),
        (
            "history sort by sender",
            hist(ListParams {
                sort: Some(("sender_id".into(), false)),
                ..Default::default()
            })
            .await,
        ),
        // Messages.
        (
            "message to malformed dialog",
            c.messages().create_message(msg(&bad, "x")).await.map(drop),
        ),
        (
            "message without body or attachment",
            c.messages().create_message(msg(&g, "")).await.map(drop),
        ),
        (
            "message with blank body",
            c.messages().create_message(msg(&g, " \n ")).await.map(drop),
        ),
        (
            "message too long",
            c.messages()
                .create_message(msg(&g, &"x".repeat(MAX_BODY + 1)))
                .await
                .map(drop),
        ),
        (
            "reserved custom key _id",
            c.messages()
                .create_message(NewMessage {
                    custom: BTreeMap::from([("_id".into(), m.clone())]),
                    ..msg(&g, "x")
                })
                .await
                .map(drop),
        ),
        (
            "reserved custom key sender_id",
            c.messages()
                .create_message(NewMessage {
                    custom: BTreeMap::from([("sender_id".into(), other.id.to_string())]),
                    ..msg(&g, "x")
                })
                .await
                .map(drop),
        ),
        (
            "reserved custom key date_sent",
            c.messages()
                .create_message(NewMessage {
                    custom: BTreeMap::from([("date_sent".into(), "5".into())]),
                    ..msg(&g, "x")
                })
                .await
                .map(drop),
        ),
        (
            "edit malformed",
            c.messages().edit_message(&g, &bad, "x").await,
        ),
        ("edit to empty", c.messages().edit_message(&g, &m, "").await),
        (
            "edit in malformed dialog",
            c.messages().edit_message(&bad, &m, "x").await,
        ),
        (
            "mark nothing",
            c.messages().mark_messages(&g, &[], true, false).await,
        ),
        (
            "mark too many",
            c.messages().mark_messages(&g, &too_many, true, false).await,
        ),
        (
            "mark malformed",
            c.messages()
                .mark_messages(&g, &[m.clone(), bad.clone()], false, true)
                .await,
        ),
        ("mark all malformed", c.messages().mark_all_read(&bad).await),
        (
            "delete no messages",
            c.messages().delete_messages(&[], false).await.map(drop),
        ),
        (
            "delete too many messages",
            c.messages()
                .delete_messages(&too_many, true)
                .await
                .map(drop),
        ),
        (
            "delete malformed message",
            c.messages()
                .delete_messages(std::slice::from_ref(&bad), false)
                .await
                .map(drop),
        ),
        (
            "unread malformed",
            c.messages()
                .unread_counts(&[g.clone(), bad.clone()])
                .await
                .map(drop),
        ),
        (
            "unread too many",
            c.messages()
                .unread_counts(&vec![g.clone(); MAX_IDS + 1])
                .await
                .map(drop),
        ),
        // Reactions.
        (
            "react with nothing",
            c.messages().react(&m, None, None).await,
        ),
        ("react blank", c.messages().react(&m, Some(" "), None).await),
        (
            "react too long",
            c.messages().react(&m, None, Some(&"x".repeat(65))).await,
        ),
        (
            "react malformed",
            c.messages().react(&bad, Some("👍"), None).await,
        ),
        (
            "reactions malformed",
            c.messages().reactions(&bad).await.map(drop),
        ),
        // Search.
        ("search 4 chars", search(text("abcd")).await),
        (
            "search start only",
            search(SearchQuery {
                start_date: Some(now()),
                ..text("hello")
            })
            .await,
        ),
        (
            "search end only",
            search(SearchQuery {
                end_date: Some(now()),
                ..text("hello")
            })
            .await,
        ),
        (
            "search end before start",
            search(SearchQuery {
                start_date: Some(now()),
                end_date: Some(now() - 1),
                ..text("hello")
            })
            .await,
        ),
        (
            "search range over 3 months",
            search(SearchQuery {
                start_date: Some(now() - SEARCH_MAX_RANGE_SECS - 1),
                end_date: Some(now()),
                ..text("hello")
            })
            .await,
        ),
        (
            "search 11 dialogs",
            search(SearchQuery {
                dialog_ids: vec![g.clone(); 11],
                ..text("hello")
            })
            .await,
        ),
        (
            "search malformed dialog",
            search(SearchQuery {
                dialog_ids: vec![bad.clone()],
                ..text("hello")
            })
            .await,
        ),
        (
            "search limit 0",
            search(SearchQuery {
                limit: Some(0),
                ..text("hello")
            })
            .await,
        ),
        (
            "search limit 101",
            search(SearchQuery {
                limit: Some(101),
                ..text("hello")
            })
            .await,
        ),
        (
            "system message to 0",
            c.messages()
                .send_system_message(0, BTreeMap::new())
                .await
                .map(drop),
        ),
    ];
    for (what, r) in results {
        assert!(matches!(r, Err(Error::InvalidInput(_))), "{what}: {r:?}");
    }
    assert_eq!(
        proxy.sent.load(Ordering::SeqCst),
        before,
        "a rejected call reached the network"
    );
    // The boundaries themselves are accepted (and do go out).
    search(SearchQuery {
        start_date: Some(now() - SEARCH_MAX_RANGE_SECS),
        end_date: Some(now()),
        dialog_ids: vec![g.clone(); 10],
        limit: Some(100),
        ..text("hello")
    })
    .await
    .unwrap();
    c.dialogs().public_occupants(&g, 100, 0).await.unwrap();
    assert!(proxy.sent.load(Ordering::SeqCst) > before);
}

// ---------------------------------------------------------------------------------------
// Dialogs

#[tokio::test]
async fn dialogs_of_every_type_are_created_and_read_back() {
    let server = start().await;
    let o = server.user("owner").await;
    let p1 = server.user("p1").await;
    let p2 = server.user("p2").await;

    // Group (type 2), with every optional field.
    let g =
        o.c.dialogs()
            .create_dialog(NewDialog {
                photo: Some("photo-uid".into()),
                description: Some("about us".into()),
                extensions: BTreeMap::from([("location".into(), "Sun bar".into())]),
                ..new_dialog(DialogType::Group, Some("Team"), &[p1.id, p2.id])
            })
            .await
            .unwrap();
    assert!(is_object_id(&g.id), "{}", g.id);
    assert_eq!(g.kind, 2);
    assert_eq!(g.user_id, o.id);
    assert_eq!(g.name.as_deref(), Some("Team"));
    assert_eq!(g.photo.as_deref(), Some("photo-uid"));
    assert_eq!(g.description.as_deref(), Some("about us"));
    assert_eq!(
        g.extensions,
        Some(BTreeMap::from([("location".into(), "Sun bar".into())]))
    );
    assert_eq!(g.occupants_ids, vec![o.id, p1.id, p2.id]);
    assert_eq!(g.occupants_count, None);
    assert!(g.admins_ids.is_empty());
    assert!(g.pinned_messages_ids.is_empty());
    assert_eq!(
        g.xmpp_room_jid,
        Some(format!("{}_{}@muc.{}", APP.0, g.id, server.chat_domain))
    );
    assert_eq!(
        (
            &g.last_message,
            &g.last_message_id,
            g.last_message_user_id,
            g.last_message_date_sent,
            &g.last_message_status
        ),
        (&None, &None, None, None, &None)
    );
    assert_eq!(g.unread_messages_count, Some(0));
    let created = parse_iso8601(g.created_at.as_deref().unwrap()).unwrap();
    assert!((created - now()).abs() <= 5, "{created}");
    assert_eq!(g.updated_at, g.created_at);
    // Occupants see exactly the same object.
    assert_eq!(seen(&p1, &g.id).await, g);
    assert_eq!(seen(&p2, &g.id).await, g);

    // Private (type 3): the name is ignored, no room JID, and the opponent creating it
    // again gets the same dialog.
    let p =
        o.c.dialogs()
            .create_dialog(new_dialog(DialogType::Private, Some("ignored"), &[p1.id]))
            .await
            .unwrap();
    assert_eq!(p.kind, 3);
    assert_eq!(p.user_id, o.id);
    assert_eq!(p.name, None);
    assert_eq!(p.occupants_ids, vec![o.id, p1.id]);
    assert_eq!(p.xmpp_room_jid, None);
    let again = private(&p1, o.id).await;
    assert_eq!((again.id.as_str(), again.user_id), (p.id.as_str(), o.id));
    assert_eq!(private(&o, p1.id).await.id, p.id);
    assert_ne!(private(&o, p2.id).await.id, p.id);
    unprocessable(
        o.c.dialogs()
            .create_dialog(new_dialog(DialogType::Private, None, &[o.id]))
            .await,
        "exactly one other occupant",
    );
    unprocessable(
        o.c.dialogs()
            .create_dialog(new_dialog(DialogType::Private, None, &[999_999]))
            .await,
        "unknown user ids: 999999",
    );

    // Public (type 4): a subscriber count instead of a list; the creator is subscribed.
    let pb =
        o.c.dialogs()
            .create_dialog(new_dialog(DialogType::Public, Some("Lobby"), &[p1.id]))
            .await
            .unwrap();
    assert_eq!(pb.kind, 4);
    assert_eq!(pb.name.as_deref(), Some("Lobby"));
    assert!(pb.occupants_ids.is_empty());
    assert_eq!(pb.occupants_count, Some(1));
    assert_eq!(
        pb.xmpp_room_jid,
        Some(format!("{}_{}@muc.{}", APP.0, pb.id, server.chat_domain))
    );
    assert_eq!(seen(&o, &pb.id).await, pb);
    assert_eq!(view(&p1, &pb.id).await, None, "not subscribed");

    // Broadcast (type 1): only the admin panel creates them.
    forbidden(
        o.c.dialogs()
            .create_dialog(new_dialog(DialogType::Broadcast, Some("News"), &[]))
            .await,
    );

    // Unknown occupants are refused and nothing is created.
    unprocessable(
        o.c.dialogs()
            .create_dialog(new_dialog(
                DialogType::Group,
                Some("Ghosts"),
                &[p1.id, 424_242],
            ))
            .await,
        "unknown user ids: 424242",
    );
    let all =
        o.c.dialogs()
            .list_dialogs(&ListParams::default())
            .await
            .unwrap();
    assert_eq!(all.total_entries, 4, "{:?}", names(&all.items));
    let p1_all =
        p1.c.dialogs()
            .list_dialogs(&ListParams::default())
            .await
            .unwrap();
    assert_eq!(p1_all.total_entries, 2);
}

#[tokio::test]
async fn list_dialogs_filters_sorting_paging_and_total() {
    let server = start().await;
    let o = server.user("owner").await;
    let p = server.user("peer").await;
    let base = now() - 10_000;

    let d0 = group(&o, "Alpha one", &[p.id]).await;
    let d1 =
        o.c.dialogs()
            .create_dialog(NewDialog {
                extensions: BTreeMap::from([("location".into(), "Sun bar".into())]),
                ..new_dialog(DialogType::Group, Some("Alpha two"), &[])
            })
            .await
            .unwrap();
    let d2 = group(&o, "Beta three", &[]).await;
    let d3 = public(&o, "Alpha public").await;
    let d4 = private(&o, p.id).await;
    for (d, at) in [(&d0, 10), (&d1, 30), (&d2, 20), (&d3, 40), (&d4, 50)] {
        send_at(&o, &d.id, &format!("at {at}"), base + at).await;
    }
    let list = |p: ListParams| {
        let c = o.c.clone();
        async move { c.dialogs().list_dialogs(&p).await.unwrap() }
    };
    let ids_of = |items: &[Dialog]| items.iter().map(|d| d.id.clone()).collect::<Vec<_>>();
    let want = |ds: &[&Dialog]| ds.iter().map(|d| d.id.clone()).collect::<Vec<_>>();

    // Default: newest last message first, everything, default limit 100.
    let all = list(ListParams::default()).await;
    assert_eq!((all.total_entries, all.skip, all.limit), (5, 0, 100));
    assert_eq!(ids_of(&all.items), want(&[&d4, &d3, &d1, &d2, &d0]));
    let d0_seen = &all.items[4];
    assert_eq!(d0_seen.last_message.as_deref(), Some("at 10"));
    assert_eq!(d0_seen.last_message_date_sent, Some(base + 10));
    assert_eq!(d0_seen.last_message_user_id, Some(o.id));
    assert_eq!(d0_seen.last_message_status.as_deref(), Some("sent"));
    assert_eq!(d0_seen.unread_messages_count, Some(0));

    // Paging keeps the total.
    for (skip, expect) in [
        (0, want(&[&d4, &d3])),
        (2, want(&[&d1, &d2])),
        (4, want(&[&d0])),
        (6, vec![]),
    ] {
        let page = list(ListParams {
            limit: Some(2),
            skip: Some(skip),
            ..Default::default()
        })
        .await;
        assert_eq!(
            (page.total_entries, page.skip, page.limit),
            (5, skip as u64, 2)
        );
        assert_eq!(ids_of(&page.items), expect, "skip {skip}");
    }

    // Sorting.
    let sorted = |field: &str, desc| ListParams {
        sort: Some((field.into(), desc)),
        ..Default::default()
    };
    assert_eq!(
        ids_of(&list(sorted("last_message_date_sent", false)).await.items),
        want(&[&d0, &d2, &d1, &d3, &d4])
    );
    assert_eq!(
        ids_of(&list(sorted("created_at", false)).await.items),
        want(&[&d0, &d1, &d2, &d3, &d4])
    );
    assert_eq!(
        ids_of(&list(sorted("created_at", true)).await.items),
        want(&[&d4, &d3, &d2, &d1, &d0])
    );

    // Filters, each with its total.
    let cases: Vec<(Vec<Filter>, Vec<String>)> = vec![
        (
            vec![filter("type", FilterOp::In, "2,4")],
            want(&[&d3, &d1, &d2, &d0]),
        ),
        (vec![filter("type", FilterOp::Eq, 3)], want(&[&d4])),
        (vec![filter("type", FilterOp::Nin, "2,3")], want(&[&d3])),
        (vec![filter("type", FilterOp::Ne, 2)], want(&[&d4, &d3])),
        (
            vec![filter("name", FilterOp::Ctn, "Alpha")],
            want(&[&d3, &d1, &d0]),
        ),
        (
            vec![filter("name", FilterOp::Eq, "Beta three")],
            want(&[&d2]),
        ),
        (
            vec![filter("_id", FilterOp::In, format!("{},{}", d0.id, d2.id))],
            want(&[&d2, &d0]),
        ),
        (
            vec![filter("last_message_date_sent", FilterOp::Gt, base + 20)],
            want(&[&d4, &d3, &d1]),
        ),
        (
            vec![filter("last_message_date_sent", FilterOp::Lte, base + 20)],
            want(&[&d2, &d0]),
        ),
        (
            vec![
                filter("last_message_date_sent", FilterOp::Gte, base + 20),
                filter("last_message_date_sent", FilterOp::Lt, base + 50),
            ],
            want(&[&d3, &d1, &d2]),
        ),
        (
            vec![
                filter("name", FilterOp::Ctn, "Alpha"),
                filter("type", FilterOp::Eq, 2),
            ],
            want(&[&d1, &d0]),
        ),
        (
            vec![filter("extensions[location]", FilterOp::Eq, "Sun bar")],
            want(&[&d1]),
        ),
        (vec![filter("name", FilterOp::Eq, "Nobody")], vec![]),
    ];
    for (filters, expect) in cases {
        let page = list(filtered(filters.clone())).await;
        assert_eq!(ids_of(&page.items), expect, "{filters:?}");
        assert_eq!(page.total_entries as usize, expect.len(), "{filters:?}");
    }
    let page = list(ListParams {
        filters: vec![filter("name", FilterOp::Ctn, "Alpha")],
        limit: Some(1),
        skip: Some(1),
        sort: Some(("last_message_date_sent".into(), false)),
    })
    .await;
    assert_eq!((page.total_entries, ids_of(&page.items)), (3, want(&[&d1])));

    // updated_at: the server keeps milliseconds and renders whole seconds (protocol
    // reference §2.3), so every update so far happened before `boundary`, the next whole
    // second after the newest rendered one. Wait for the clock to reach it, then touch d2.
    let newest = all
        .items
        .iter()
        .map(|d| parse_iso8601(d.updated_at.as_deref().unwrap()).unwrap())
        .max()
        .unwrap();
    let boundary = newest + 1;
    tokio::time::timeout(Duration::from_secs(5), async {
        while now() < boundary {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    let renamed =
        o.c.dialogs()
            .update_dialog(
                &d2.id,
                DialogUpdate {
                    name: Some("Beta renamed".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    assert!(parse_iso8601(renamed.updated_at.as_deref().unwrap()).unwrap() >= boundary);
    let page = list(filtered(vec![filter(
        "updated_at",
        FilterOp::Gte,
        boundary,
    )]))
    .await;
    assert_eq!(
        (page.total_entries, names(&page.items)),
        (1, vec!["Beta renamed".into()])
    );
    let page = list(filtered(vec![filter("updated_at", FilterOp::Lt, boundary)])).await;
    assert_eq!(ids_of(&page.items), want(&[&d4, &d3, &d1, &d0]));
    assert_eq!(
        ids_of(&list(sorted("updated_at", true)).await.items)[0],
        d2.id
    );

    // The peer sees only their own dialogs, with their own unread counts.
    let theirs =
        p.c.dialogs()
            .list_dialogs(&ListParams::default())
            .await
            .unwrap();
    assert_eq!(theirs.total_entries, 2);
    assert_eq!(ids_of(&theirs.items), want(&[&d4, &d0]));
    assert_eq!(
        theirs
            .items
            .iter()
            .map(|d| (d.unread_messages_count, d.last_message_status.clone()))
            .collect::<Vec<_>>(),
        vec![(Some(1), None), (Some(1), None)]
    );
}

#[tokio::test]
async fn group_rules_for_owner_admin_occupant_and_stranger() {
    let server = start().await;
    let o = server.user("owner").await;
    let a = server.user("admin").await;
    let m = server.user("member").await;
    let m2 = server.user("member2").await;
    let n = server.user("newcomer").await;
    let s = server.user("stranger").await;
    let g = group(&o, "Team", &[a.id, m.id, m2.id]).await.id;
    let with_admin = o.c.dialogs().set_admins(&g, &[a.id], true).await.unwrap();
    assert_eq!(with_admin.admins_ids, vec![a.id]);
    let hello = send(&o, &g, "hello").await;

    // Any occupant renames, sets the photo and description, and pins.
    let renamed =
        m.c.dialogs()
            .update_dialog(
                &g,
                DialogUpdate {
                    name: Some("Renamed by member".into()),
                    photo: Some("new-photo".into()),
                    description: Some("new description".into()),
                    pin_messages: vec![hello.id.clone()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    assert_eq!(renamed.name.as_deref(), Some("Renamed by member"));
    assert_eq!(renamed.photo.as_deref(), Some("new-photo"));
    assert_eq!(renamed.description.as_deref(), Some("new description"));
    assert_eq!(renamed.pinned_messages_ids, vec![hello.id.clone()]);
    assert_eq!(renamed.user_id, o.id, "renaming does not change the owner");
    let cleared =
        m.c.dialogs()
            .update_dialog(
                &g,
                DialogUpdate {
                    description: Some(String::new()),
                    unpin_messages: vec![hello.id.clone()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    assert_eq!(cleared.description, None);
    assert!(cleared.pinned_messages_ids.is_empty());
    assert_eq!(
        cleared.photo.as_deref(),
        Some("new-photo"),
        "left as it was"
    );
    let ext =
        m.c.dialogs()
            .update_dialog(
                &g,
                DialogUpdate {
                    extensions: Some(BTreeMap::from([("location".into(), "Moon".into())])),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    assert_eq!(
        ext.extensions,
        Some(BTreeMap::from([("location".into(), "Moon".into())]))
    );
    let owner_view = seen(&o, &g).await;
    assert_eq!(owner_view.name.as_deref(), Some("Renamed by member"));
    assert_eq!(owner_view.description, None);

    // Any occupant adds occupants; unknown users are refused.
    let added =
        m.c.dialogs()
            .update_dialog(
                &g,
                DialogUpdate {
                    add_occupants: vec![n.id],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    assert_eq!(added.occupants_ids, vec![o.id, a.id, m.id, m2.id, n.id]);
    assert_eq!(seen(&n, &g).await.occupants_ids, added.occupants_ids);
    unprocessable(
        m.c.dialogs()
            .update_dialog(
                &g,
                DialogUpdate {
                    add_occupants: vec![777_777],
                    ..Default::default()
                },
            )
            .await,
        "unknown user ids",
    );

    // Only the owner removes others: not an occupant, not an admin.
    let remove = |who: u64| DialogUpdate {
        remove_occupants: vec![who],
        ..Default::default()
    };
    forbidden(m.c.dialogs().update_dialog(&g, remove(m2.id)).await);
    forbidden(a.c.dialogs().update_dialog(&g, remove(m2.id)).await);
    forbidden(
        m.c.dialogs()
            .update_dialog(
                &g,
                DialogUpdate {
                    remove_occupants: vec![m.id, m2.id],
                    ..Default::default()
                },
            )
            .await,
    );
    assert_eq!(occupants(&o, &g).await, vec![o.id, a.id, m.id, m2.id, n.id]);
    let without =
        o.c.dialogs()
            .update_dialog(&g, remove(m2.id))
            .await
            .unwrap();
    assert_eq!(without.occupants_ids, vec![o.id, a.id, m.id, n.id]);

    // Anyone removes themselves.
    let left = n.c.dialogs().update_dialog(&g, remove(n.id)).await.unwrap();
    assert_eq!(left.occupants_ids, vec![o.id, a.id, m.id]);

    // Former occupants and strangers: no access at all, and the dialog is not in their list.
    for outsider in [&m2, &n, &s] {
        assert_eq!(view(outsider, &g).await, None);
        forbidden(
            outsider
                .c
                .dialogs()
                .update_dialog(
                    &g,
                    DialogUpdate {
                        name: Some("hijack".into()),
                        ..Default::default()
                    },
                )
                .await,
        );
        forbidden(
            outsider
                .c
                .dialogs()
                .update_dialog(&g, remove(outsider.id))
                .await,
        );
        forbidden(
            outsider
                .c
                .messages()
                .history(&g, &ListParams::default(), true)
                .await,
        );
        forbidden(
            outsider
                .c
                .messages()
                .create_message(msg(&g, "let me in"))
                .await,
        );
        forbidden(
            outsider
                .c
                .messages()
                .edit_message(&g, &hello.id, "mine now")
                .await,
        );
        forbidden(
            outsider
                .c
                .messages()
                .mark_messages(&g, std::slice::from_ref(&hello.id), true, false)
                .await,
        );
        forbidden(outsider.c.messages().mark_all_read(&g).await);
        forbidden(outsider.c.dialogs().notifications_enabled(&g).await);
        forbidden(outsider.c.dialogs().set_notifications(&g, false).await);
        forbidden(outsider.c.dialogs().public_occupants(&g, 10, 0).await);
        forbidden(
            outsider
                .c
                .dialogs()
                .set_admins(&g, &[outsider.id], true)
                .await,
        );
        forbidden(outsider.c.dialogs().clear_history(&g, false).await);
        forbidden(outsider.c.dialogs().clear_history(&g, true).await);
        forbidden(
            outsider
                .c
                .messages()
                .react(&hello.id, Some("👀"), None)
                .await,
        );
        forbidden(outsider.c.messages().reactions(&hello.id).await);
        let u = outsider
            .c
            .messages()
            .unread_counts(std::slice::from_ref(&g))
            .await
            .unwrap();
        assert_eq!((u.total, u.dialogs.len()), (0, 0));
        assert_eq!(
            outsider
                .c
                .dialogs()
                .delete_dialogs(std::slice::from_ref(&g), true)
                .await
                .unwrap(),
            result(&[], &[], &[&g])
        );
        assert_eq!(
            outsider
                .c
                .messages()
                .delete_messages(std::slice::from_ref(&hello.id), false)
                .await
                .unwrap(),
            result(&[], &[], &[&hello.id])
        );
    }
    // Nothing the outsiders tried changed anything.
    let after = seen(&o, &g).await;
    assert_eq!(after.name.as_deref(), Some("Renamed by member"));
    assert_eq!(after.occupants_ids, vec![o.id, a.id, m.id]);
    assert_eq!(after.admins_ids, vec![a.id]);
    assert_eq!(bodies(&o, &g).await, vec!["hello"]);
    assert!(o.c.dialogs().notifications_enabled(&g).await.unwrap());

    // Unknown dialogs are 404 for everyone.
    not_found(
        o.c.dialogs()
            .update_dialog(
                MISSING,
                DialogUpdate {
                    name: Some("x".into()),
                    ..Default::default()
                },
            )
            .await,
    );
    not_found(
        o.c.messages()
            .history(MISSING, &ListParams::default(), true)
            .await,
    );
    not_found(o.c.messages().create_message(msg(MISSING, "x")).await);
    not_found(o.c.dialogs().notifications_enabled(MISSING).await);
    not_found(o.c.dialogs().set_admins(MISSING, &[a.id], true).await);
    not_found(o.c.dialogs().public_occupants(MISSING, 10, 0).await);

    // Removing an admin from the occupants also ends their admin role.
    let gone = o.c.dialogs().update_dialog(&g, remove(a.id)).await.unwrap();
    assert_eq!(gone.occupants_ids, vec![o.id, m.id]);
    assert!(gone.admins_ids.is_empty());
}

#[tokio::test]
async fn admins_are_set_by_the_creator_only_and_capped_at_five() {
    let server = start().await;
    let o = server.user("owner").await;
    let mut us = Vec::new();
    for i in 0..6 {
        us.push(server.user(&format!("user{i}")).await);
    }
    let m = server.user("member").await;
    let s = server.user("stranger").await;
    let ids: Vec<u64> = us.iter().map(|u| u.id).collect();
    let mut all = ids.clone();
    all.push(m.id);
    let g = group(&o, "Admins", &all).await.id;

    let five = o.c.dialogs().set_admins(&g, &ids[..5], true).await.unwrap();
    assert_eq!(five.admins_ids, ids[..5].to_vec());
    assert_eq!(seen(&m, &g).await.admins_ids, ids[..5].to_vec());
    // A sixth is refused by the server, and nothing changes.
    unprocessable(
        o.c.dialogs().set_admins(&g, &ids[5..], true).await,
        "at most 5 admins",
    );
    assert_eq!(seen(&o, &g).await.admins_ids, ids[..5].to_vec());
    // Adding an admin again, or the owner, changes nothing.
    let same =
        o.c.dialogs()
            .set_admins(&g, &[ids[0], o.id], true)
            .await
            .unwrap();
    assert_eq!(same.admins_ids, ids[..5].to_vec());
    // Only the creator: not an admin, not an occupant, not a stranger.
    forbidden(us[0].c.dialogs().set_admins(&g, &[m.id], true).await);
    forbidden(us[0].c.dialogs().set_admins(&g, &[ids[1]], false).await);
    forbidden(m.c.dialogs().set_admins(&g, &[m.id], true).await);
    forbidden(s.c.dialogs().set_admins(&g, &[s.id], true).await);
    // Admins must be occupants.
    let removed =
        o.c.dialogs()
            .set_admins(&g, &[ids[0]], false)
            .await
            .unwrap();
    assert_eq!(removed.admins_ids, ids[1..5].to_vec());
    unprocessable(
        o.c.dialogs().set_admins(&g, &[s.id], true).await,
        &format!("user {} is not an occupant", s.id),
    );
    // With a free slot the sixth fits.
    let swapped = o.c.dialogs().set_admins(&g, &ids[5..], true).await.unwrap();
    assert_eq!(swapped.admins_ids, ids[1..].to_vec());
    // Removing several at once; removing a non-admin is a no-op.
    let fewer =
        o.c.dialogs()
            .set_admins(&g, &[ids[1], ids[2], m.id], false)
            .await
            .unwrap();
    assert_eq!(fewer.admins_ids, ids[3..].to_vec());
    assert_eq!(seen(&us[3], &g).await.admins_ids, ids[3..].to_vec());

    // Admins of a public dialog must be subscribers; then they may rename it.
    let pb = public(&o, "Stage").await.id;
    unprocessable(
        o.c.dialogs().set_admins(&pb, &[m.id], true).await,
        "not an occupant",
    );
    m.c.dialogs().subscribe_dialog(&pb).await.unwrap();
    let rename = |name: &str| DialogUpdate {
        name: Some(name.into()),
        ..Default::default()
    };
    forbidden(m.c.dialogs().update_dialog(&pb, rename("By member")).await);
    assert_eq!(
        o.c.dialogs()
            .set_admins(&pb, &[m.id], true)
            .await
            .unwrap()
            .admins_ids,
        vec![m.id]
    );
    let by_admin =
        m.c.dialogs()
            .update_dialog(&pb, rename("By admin"))
            .await
            .unwrap();
    assert_eq!(by_admin.name.as_deref(), Some("By admin"));
}

#[tokio::test]
async fn delete_dialogs_for_self_and_for_everyone_with_per_id_results() {
    let server = start().await;
    let o = server.user("owner").await;
    let a = server.user("admin").await;
    let m = server.user("member").await;
    let s = server.user("stranger").await;
    let g1 = group(&o, "One", &[a.id, m.id]).await.id;
    o.c.dialogs().set_admins(&g1, &[a.id], true).await.unwrap();
    let g2 = group(&o, "Two", &[m.id]).await.id;
    let g3 = group(&s, "Theirs", &[]).await.id;
    send(&o, &g1, "in one").await;

    // An occupant cannot delete for everyone; per-id results in input order.
    assert_eq!(
        m.c.dialogs()
            .delete_dialogs(&[g1.clone(), MISSING.into(), g2.clone(), g3.clone()], true)
            .await
            .unwrap(),
        result(&[], &[MISSING], &[&g1, &g2, &g3])
    );
    assert_eq!(occupants(&o, &g1).await, vec![o.id, a.id, m.id]);
    // A single id gets the same shape.
    assert_eq!(
        o.c.dialogs()
            .delete_dialogs(std::slice::from_ref(&g3), false)
            .await
            .unwrap(),
        result(&[], &[], &[&g3])
    );
    assert_eq!(
        o.c.dialogs()
            .delete_dialogs(&[MISSING.into()], false)
            .await
            .unwrap(),
        result(&[], &[MISSING], &[])
    );

    // Without force an occupant leaves the group; the others keep it.
    assert_eq!(
        m.c.dialogs()
            .delete_dialogs(std::slice::from_ref(&g1), false)
            .await
            .unwrap(),
        result(&[&g1], &[], &[])
    );
    assert_eq!(view(&m, &g1).await, None);
    forbidden(
        m.c.messages()
            .history(&g1, &ListParams::default(), false)
            .await,
    );
    assert_eq!(occupants(&o, &g1).await, vec![o.id, a.id]);
    assert_eq!(bodies(&a, &g1).await, vec!["in one"]);

    // An admin deletes for everyone.
    assert_eq!(
        a.c.dialogs()
            .delete_dialogs(std::slice::from_ref(&g1), true)
            .await
            .unwrap(),
        result(&[&g1], &[], &[])
    );
    assert_eq!(view(&o, &g1).await, None);
    not_found(
        o.c.messages()
            .history(&g1, &ListParams::default(), false)
            .await,
    );
    assert_eq!(
        o.c.dialogs()
            .delete_dialogs(&[g1.clone(), g2.clone()], true)
            .await
            .unwrap(),
        result(&[&g2], &[&g1], &[]),
        "the owner deletes for everyone"
    );
    assert_eq!(view(&m, &g2).await, None);
    not_found(
        m.c.messages()
            .history(&g2, &ListParams::default(), false)
            .await,
    );

    // The last occupant leaving removes a group.
    assert_eq!(
        s.c.dialogs()
            .delete_dialogs(std::slice::from_ref(&g3), false)
            .await
            .unwrap(),
        result(&[&g3], &[], &[])
    );
    assert_eq!(
        s.c.dialogs()
            .delete_dialogs(std::slice::from_ref(&g3), false)
            .await
            .unwrap(),
        result(&[], &[&g3], &[])
    );

    // Private: deleting for oneself hides it until the next message; either side may delete
    // it for everyone.
    let p = private(&o, m.id).await.id;
    send(&o, &p, "one").await;
    assert_eq!(
        m.c.dialogs()
            .delete_dialogs(std::slice::from_ref(&p), false)
            .await
            .unwrap(),
        result(&[&p], &[], &[])
    );
    assert_eq!(view(&m, &p).await, None);
    assert_eq!(seen(&o, &p).await.occupants_ids, vec![o.id, m.id]);
    assert_eq!(m.c.messages().unread_counts(&[]).await.unwrap().total, 0);
    send(&o, &p, "two").await;
    let back = seen(&m, &p).await;
    assert_eq!(
        (back.unread_messages_count, back.last_message.as_deref()),
        (Some(2), Some("two"))
    );
    assert_eq!(m.c.messages().unread_counts(&[]).await.unwrap().total, 2);
    // Hidden again, then brought back by "creating" it again.
    m.c.dialogs()
        .delete_dialogs(std::slice::from_ref(&p), false)
        .await
        .unwrap();
    assert_eq!(view(&m, &p).await, None);
    assert_eq!(private(&m, o.id).await.id, p);
    assert_eq!(seen(&m, &p).await.unread_messages_count, Some(2));
    assert_eq!(
        s.c.dialogs()
            .delete_dialogs(std::slice::from_ref(&p), true)
            .await
            .unwrap(),
        result(&[], &[], &[&p])
    );
    assert_eq!(
        m.c.dialogs()
            .delete_dialogs(std::slice::from_ref(&p), true)
            .await
            .unwrap(),
        result(&[&p], &[], &[])
    );
    assert_eq!(view(&o, &p).await, None);
    // A new private dialog between the same users is a fresh one.
    let p2 = private(&o, m.id).await;
    assert_ne!(p2.id, p);
    assert!(p2.last_message.is_none());

    // Public: without force a subscriber unsubscribes; a non-subscriber has no permission;
    // the owner deletes it for everyone.
    let pb = public(&o, "Open").await.id;
    m.c.dialogs().subscribe_dialog(&pb).await.unwrap();
    assert_eq!(seen(&o, &pb).await.occupants_count, Some(2));
    assert_eq!(
        m.c.dialogs()
            .delete_dialogs(std::slice::from_ref(&pb), false)
            .await
            .unwrap(),
        result(&[&pb], &[], &[])
    );
    assert_eq!(seen(&o, &pb).await.occupants_count, Some(1));
    assert_eq!(
        m.c.dialogs()
            .delete_dialogs(std::slice::from_ref(&pb), true)
            .await
            .unwrap(),
        result(&[], &[], &[&pb])
    );
    m.c.dialogs().subscribe_dialog(&pb).await.unwrap();
    assert_eq!(
        m.c.dialogs()
            .delete_dialogs(std::slice::from_ref(&pb), true)
            .await
            .unwrap(),
        result(&[], &[], &[&pb])
    );
    assert_eq!(
        o.c.dialogs()
            .delete_dialogs(std::slice::from_ref(&pb), true)
            .await
            .unwrap(),
        result(&[&pb], &[], &[])
    );
    not_found(m.c.dialogs().subscribe_dialog(&pb).await);
}

#[tokio::test]
async fn clear_history_for_self_and_for_everyone() {
    let server = start().await;
    let o = server.user("owner").await;
    let a = server.user("admin").await;
    let m = server.user("member").await;
    let s = server.user("stranger").await;
    let g = group(&o, "Chatty", &[a.id, m.id]).await.id;
    o.c.dialogs().set_admins(&g, &[a.id], true).await.unwrap();
    send(&o, &g, "one").await;
    send(&a, &g, "two").await;
    assert_eq!(seen(&m, &g).await.unread_messages_count, Some(2));

    // For oneself: the others keep the history; later messages show up.
    m.c.dialogs().clear_history(&g, false).await.unwrap();
    assert!(bodies(&m, &g).await.is_empty());
    assert_eq!(seen(&m, &g).await.unread_messages_count, Some(0));
    assert_eq!(bodies(&o, &g).await, vec!["one", "two"]);
    send(&o, &g, "three").await;
    assert_eq!(bodies(&m, &g).await, vec!["three"]);
    assert_eq!(seen(&m, &g).await.unread_messages_count, Some(1));
    assert_eq!(bodies(&a, &g).await, vec!["one", "two", "three"]);

    // For everyone: owner or admin only.
    forbidden(m.c.dialogs().clear_history(&g, true).await);
    forbidden(s.c.dialogs().clear_history(&g, false).await);
    not_found(o.c.dialogs().clear_history(MISSING, false).await);
    assert_eq!(bodies(&o, &g).await, vec!["one", "two", "three"]);
    a.c.dialogs().clear_history(&g, true).await.unwrap();
    for u in [&o, &a, &m] {
        assert!(bodies(u, &g).await.is_empty());
        let d = seen(u, &g).await;
        assert_eq!(
            (
                &d.last_message,
                &d.last_message_id,
                d.last_message_user_id,
                d.last_message_date_sent,
                &d.last_message_status,
                d.unread_messages_count
            ),
            (&None, &None, None, None, &None, Some(0))
        );
    }
    send(&m, &g, "fresh").await;
    assert_eq!(bodies(&o, &g).await, vec!["fresh"]);
    o.c.dialogs().clear_history(&g, true).await.unwrap();
    assert!(bodies(&m, &g).await.is_empty());

    // Private: either participant clears for everyone.
    let p = private(&o, m.id).await.id;
    send(&o, &p, "secret").await;
    m.c.dialogs().clear_history(&p, true).await.unwrap();
    assert!(bodies(&o, &p).await.is_empty());
    assert_eq!(seen(&o, &p).await.last_message, None);
}

#[tokio::test]
async fn public_dialogs_subscribe_unsubscribe_and_page_occupants() {
    let server = start().await;
    let o = server.user("owner").await;
    let mut subs = Vec::new();
    for i in 0..4 {
        subs.push(server.user(&format!("sub{i}")).await);
    }
    let s = server.user("stranger").await;
    let pb = public(&o, "Lobby").await.id;

    for (i, u) in subs.iter().enumerate() {
        let d = u.c.dialogs().subscribe_dialog(&pb).await.unwrap();
        assert_eq!((d.id.as_str(), d.kind), (pb.as_str(), 4));
        assert_eq!(d.occupants_count, Some(i as u64 + 2));
        assert!(d.occupants_ids.is_empty());
    }
    // Subscribing twice changes nothing.
    assert_eq!(
        subs[0]
            .c
            .dialogs()
            .subscribe_dialog(&pb)
            .await
            .unwrap()
            .occupants_count,
        Some(5)
    );
    assert_eq!(seen(&subs[3], &pb).await.occupants_count, Some(5));
    assert_eq!(view(&s, &pb).await, None);

    // Anyone may page through the subscribers, in joining order.
    let page = |limit, skip| {
        let c = s.c.clone();
        let pb = pb.clone();
        async move {
            c.dialogs()
                .public_occupants(&pb, limit, skip)
                .await
                .unwrap()
                .into_iter()
                .map(|u| u.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(2, 0).await, vec![o.id, subs[0].id]);
    assert_eq!(page(2, 2).await, vec![subs[1].id, subs[2].id]);
    assert_eq!(page(2, 4).await, vec![subs[3].id]);
    assert_eq!(page(100, 5).await, Vec::<u64>::new());
    let everyone = o.c.dialogs().public_occupants(&pb, 100, 0).await.unwrap();
    assert_eq!(everyone.len(), 5);
    assert_eq!(everyone[1].login.as_deref(), Some("sub0"));
    assert_eq!(everyone[1].full_name.as_deref(), Some("Rust Tester"));

    // Subscribers post and read; strangers do neither.
    let hi = send(&subs[0], &pb, "hi all").await;
    assert_eq!(hi.recipient_id, 0);
    assert_eq!(bodies(&subs[1], &pb).await, vec!["hi all"]);
    forbidden(s.c.messages().create_message(msg(&pb, "me too")).await);
    forbidden(
        s.c.messages()
            .history(&pb, &ListParams::default(), false)
            .await,
    );
    // Unread counts: public dialogs are not in the total, but can be asked for.
    let u = subs[2].c.messages().unread_counts(&[]).await.unwrap();
    assert_eq!((u.total, u.dialogs.len()), (0, 0));
    let u = subs[2]
        .c
        .messages()
        .unread_counts(std::slice::from_ref(&pb))
        .await
        .unwrap();
    assert_eq!((u.total, u.dialogs), (1, BTreeMap::from([(pb.clone(), 1)])));
    assert_eq!(seen(&subs[2], &pb).await.unread_messages_count, Some(1));

    // Only the owner and admins edit a public dialog; nobody adds occupants; subscribers
    // remove only themselves.
    forbidden(
        subs[0]
            .c
            .dialogs()
            .update_dialog(
                &pb,
                DialogUpdate {
                    name: Some("Mine".into()),
                    ..Default::default()
                },
            )
            .await,
    );
    forbidden(
        subs[0]
            .c
            .dialogs()
            .update_dialog(
                &pb,
                DialogUpdate {
                    add_occupants: vec![s.id],
                    ..Default::default()
                },
            )
            .await,
    );
    forbidden(
        o.c.dialogs()
            .update_dialog(
                &pb,
                DialogUpdate {
                    add_occupants: vec![s.id],
                    ..Default::default()
                },
            )
            .await,
    );
    forbidden(
        subs[1]
            .c
            .dialogs()
            .update_dialog(
                &pb,
                DialogUpdate {
                    remove_occupants: vec![subs[2].id],
                    ..Default::default()
                },
            )
            .await,
    );
    forbidden(
        o.c.dialogs()
            .update_dialog(
                &pb,
                DialogUpdate {
                    remove_occupants: vec![subs[2].id],
                    ..Default::default()
                },
            )
            .await,
    );
    let owner_edit =
        o.c.dialogs()
            .update_dialog(
                &pb,
                DialogUpdate {
                    name: Some("Big lobby".into()),
                    description: Some("everyone welcome".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    assert_eq!(owner_edit.name.as_deref(), Some("Big lobby"));
    let left = subs[1]
        .c
        .dialogs()
        .update_dialog(
            &pb,
            DialogUpdate {
                remove_occupants: vec![subs[1].id],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(left.occupants_count, Some(4));
    assert_eq!(view(&subs[1], &pb).await, None);

    // Unsubscribe.
    subs[2].c.dialogs().unsubscribe_dialog(&pb).await.unwrap();
    assert_eq!(view(&subs[2], &pb).await, None);
    forbidden(
        subs[2]
            .c
            .messages()
            .history(&pb, &ListParams::default(), false)
            .await,
    );
    assert_eq!(page(100, 0).await, vec![o.id, subs[0].id, subs[3].id]);
    assert_eq!(seen(&o, &pb).await.occupants_count, Some(3));
    not_found(s.c.dialogs().unsubscribe_dialog(MISSING).await);

    // Private dialogs cannot be (un)subscribed; a group can be joined this way (§4.3).
    let p = private(&o, subs[0].id).await.id;
    forbidden(s.c.dialogs().subscribe_dialog(&p).await);
    forbidden(subs[0].c.dialogs().unsubscribe_dialog(&p).await);
    let g = group(&o, "Club", &[]).await.id;
    assert_eq!(
        s.c.dialogs()
            .subscribe_dialog(&g)
            .await
            .unwrap()
            .occupants_ids,
        vec![o.id, s.id]
    );
    s.c.dialogs().unsubscribe_dialog(&g).await.unwrap();
    assert_eq!(occupants(&o, &g).await, vec![o.id]);
}

#[tokio::test]
async fn notification_settings_are_per_user() {
    let server = start().await;
    let o = server.user("owner").await;
    let m = server.user("member").await;
    let s = server.user("stranger").await;
    let g = group(&o, "Quiet", &[m.id]).await.id;
    assert!(m.c.dialogs().notifications_enabled(&g).await.unwrap());
    assert!(!m.c.dialogs().set_notifications(&g, false).await.unwrap());
    assert!(!m.c.dialogs().notifications_enabled(&g).await.unwrap());
    assert!(
        o.c.dialogs().notifications_enabled(&g).await.unwrap(),
        "only mine"
    );
    assert!(
        !m.c.dialogs().set_notifications(&g, false).await.unwrap(),
        "idempotent"
    );
    assert!(m.c.dialogs().set_notifications(&g, true).await.unwrap());
    assert!(m.c.dialogs().notifications_enabled(&g).await.unwrap());
    forbidden(s.c.dialogs().notifications_enabled(&g).await);
    forbidden(s.c.dialogs().set_notifications(&g, true).await);
    not_found(o.c.dialogs().set_notifications(MISSING, true).await);
    // Private dialogs too.
    let p = private(&o, m.id).await.id;
    assert!(!o.c.dialogs().set_notifications(&p, false).await.unwrap());
    assert!(!o.c.dialogs().notifications_enabled(&p).await.unwrap());
    assert!(m.c.dialogs().notifications_enabled(&p).await.unwrap());
}

// ---------------------------------------------------------------------------------------
// Messages

#[tokio::test]
async fn history_pages_by_date_sent_and_marks_read_only_when_asked() {
    let server = start().await;
    let o = server.user("owner").await;
    let m = server.user("member").await;
    let g = group(&o, "Log", &[m.id]).await.id;
    let base = now() - 10_000;
    let mut sent = Vec::new();
    // Sent out of order: history sorts by date_sent, not by arrival.
    for i in [3, 0, 9, 5, 1, 7, 2, 8, 4, 6] {
        sent.push(send_at(&o, &g, &format!("m{i}"), base + i).await);
    }
    sent.sort_by_key(|x| x.date_sent);
    let first = &sent[0];
    assert_eq!(first.chat_dialog_id, g);
    assert_eq!((first.sender_id, first.recipient_id), (o.id, 0));
    assert_eq!(
        (first.read_ids.clone(), first.delivered_ids.clone()),
        (vec![o.id], vec![o.id])
    );
    assert_eq!(first.read, 1, "the sender has read their own message");
    let newest = seen(&m, &g).await;
    assert_eq!(newest.last_message.as_deref(), Some("m9"));
    assert_eq!(newest.last_message_id.as_deref(), Some(sent[9].id.as_str()));
    assert_eq!(newest.last_message_date_sent, Some(base + 9));
    assert_eq!(newest.unread_messages_count, Some(10));

    let page = |p: ListParams| {
        let c = m.c.clone();
        let g = g.clone();
        async move {
            let page = c.messages().history(&g, &p, false).await.unwrap();
            (
                page.skip,
                page.limit,
                page.items
                    .into_iter()
                    .map(|x| x.message.unwrap())
                    .collect::<Vec<_>>(),
            )
        }
    };
    let words = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Default: ascending date_sent, limit 100.
    assert_eq!(
        page(ListParams::default()).await,
        (
            0,
            100,
            words(&["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"])
        )
    );
    // Newest first, paged backwards with date_sent[lt].
    let before = |t: i64| ListParams {
        filters: vec![filter("date_sent", FilterOp::Lt, t)],
        limit: Some(3),
        sort: Some(("date_sent".into(), true)),
        ..Default::default()
    };
    assert_eq!(
        page(before(base + 5)).await,
        (0, 3, words(&["m4", "m3", "m2"]))
    );
    assert_eq!(page(before(base + 2)).await, (0, 3, words(&["m1", "m0"])));
    assert_eq!(page(before(base)).await.2, Vec::<String>::new());
    // Forwards with date_sent[gt], and ranges.
    assert_eq!(
        page(filtered(vec![filter("date_sent", FilterOp::Gt, base + 7)]))
            .await
            .2,
        words(&["m8", "m9"])
    );
    assert_eq!(
        page(filtered(vec![
            filter("date_sent", FilterOp::Gte, base + 2),
            filter("date_sent", FilterOp::Lte, base + 4),
        ]))
        .await
        .2,
        words(&["m2", "m3", "m4"])
    );
    // limit/skip.
    assert_eq!(
        page(ListParams {
            limit: Some(3),
            skip: Some(3),
            ..Default::default()
        })
        .await,
        (3, 3, words(&["m3", "m4", "m5"]))
    );
    assert_eq!(
        page(ListParams {
            limit: Some(4),
            skip: Some(8),
            sort: Some(("date_sent".into(), false)),
            ..Default::default()
        })
        .await,
        (8, 4, words(&["m8", "m9"]))
    );
    // Other filter fields.
    assert_eq!(
        page(filtered(vec![filter("message", FilterOp::Eq, "m7")]))
            .await
            .2,
        words(&["m7"])
    );
    assert_eq!(
        page(filtered(vec![filter(
            "_id",
            FilterOp::In,
            format!("{},{}", sent[6].id, sent[1].id)
        )]))
        .await
        .2,
        words(&["m1", "m6"])
    );
    assert_eq!(
        page(filtered(vec![filter("sender_id", FilterOp::Eq, m.id)]))
            .await
            .2,
        Vec::<String>::new()
    );

    // None of that marked anything read.
    assert_eq!(seen(&m, &g).await.unread_messages_count, Some(10));
    assert!(history(&m, &g)
        .await
        .iter()
        .all(|x| x.read == 0 && x.read_ids == vec![o.id]));
    // Listing with mark_as_read marks exactly the returned page.
    let read_page =
        m.c.messages()
            .history(
                &g,
                &ListParams {
                    limit: Some(4),
                    ..Default::default()
                },
                true,
            )
            .await
            .unwrap();
    assert_eq!(read_page.items.len(), 4);
    for x in &read_page.items {
        assert_eq!((x.read, x.read_ids.clone()), (1, vec![o.id, m.id]));
        assert_eq!(x.delivered_ids, vec![o.id, m.id]);
    }
    assert_eq!(seen(&m, &g).await.unread_messages_count, Some(6));
    let all = history(&m, &g).await;
    assert_eq!(
        all.iter().map(|x| x.read).collect::<Vec<_>>(),
        vec![1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    );
    // The owner sees the member in read_ids, with read = 1 for themselves everywhere.
    let owner_view = history(&o, &g).await;
    assert_eq!(owner_view[3].read_ids, vec![o.id, m.id]);
    assert_eq!(owner_view[4].read_ids, vec![o.id]);
    assert!(owner_view.iter().all(|x| x.read == 1));
    // The last message is not read yet, so the owner's status is still "sent".
    assert_eq!(
        seen(&o, &g).await.last_message_status.as_deref(),
        Some("sent")
    );

    // A member's own message shows with sender filtering; it is not unread for them.
    let mine = send_at(&m, &g, "from member", base + 100).await;
    assert_eq!(
        page(filtered(vec![filter("sender_id", FilterOp::Eq, m.id)]))
            .await
            .2,
        words(&["from member"])
    );
    assert_eq!(mine.read_ids, vec![m.id]);
    assert_eq!(seen(&m, &g).await.unread_messages_count, Some(6));
    assert_eq!(seen(&o, &g).await.unread_messages_count, Some(1));
}

#[tokio::test]
async fn create_message_custom_parameters_attachments_and_edit_rules() {
    let server = start().await;
    let o = server.user("owner").await;
    let a = server.user("admin").await;
    let m = server.user("member").await;
    let g = group(&o, "Posts", &[a.id, m.id]).await.id;
    o.c.dialogs().set_admins(&g, &[a.id], true).await.unwrap();

    // Stored only, and stored plus sent to chat: both land in history as given.
    let custom = BTreeMap::from([
        ("field_one".to_owned(), "value one".to_owned()),
        ("count".to_owned(), "5".to_owned()),
        ("emoji".to_owned(), "🔥 ok".to_owned()),
    ]);
    let stored =
        o.c.messages()
            .create_message(NewMessage {
                custom: custom.clone(),
                markable: true,
                ..msg(&g, "stored only")
            })
            .await
            .unwrap();
    assert!(is_object_id(&stored.id));
    assert_eq!(stored.message.as_deref(), Some("stored only"));
    assert!(
        (stored.date_sent - now()).abs() <= 5,
        "{}",
        stored.date_sent
    );
    let want_custom: BTreeMap<String, Value> = custom
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    assert_eq!(stored.custom, want_custom);
    let chat =
        o.c.messages()
            .create_message(NewMessage {
                send_to_chat: true,
                date_sent: Some(1_700_000_000_123), // milliseconds become seconds
                ..msg(&g, "sent to chat")
            })
            .await
            .unwrap();
    assert_eq!(chat.date_sent, 1_700_000_000);
    assert!(chat.custom.is_empty(), "{:?}", chat.custom);
    let h = history(&m, &g).await;
    assert_eq!(
        ids(&h.iter().collect::<Vec<_>>()),
        vec![chat.id.clone(), stored.id.clone()]
    );
    assert_eq!(
        h[1].custom, want_custom,
        "custom parameters come back from history"
    );
    assert_eq!(h[1].sender_id, o.id);
    // The older date_sent did not move the dialog's last message.
    let d = seen(&m, &g).await;
    assert_eq!(d.last_message_id.as_deref(), Some(stored.id.as_str()));
    assert_eq!(d.last_message.as_deref(), Some("stored only"));

    // An attachment alone is a message.
    let att = Attachment {
        kind: "image".into(),
        uid: Some("blob-uid-1".into()),
        name: Some("cat.png".into()),
        size: Some(2048),
        content_type: Some("image/png".into()),
        width: Some(640),
        height: Some(480),
        url: Some("https://example.com/cat.png".into()),
        ..Default::default()
    };
    let pic =
        m.c.messages()
            .create_message(NewMessage {
                attachments: vec![att.clone()],
                ..msg(&g, "")
            })
            .await
            .unwrap();
    assert_eq!(pic.attachments, vec![att.clone()]);
    assert_eq!(pic.message, None);
    let last = history(&o, &g).await.pop().unwrap();
    assert_eq!(
        (last.id.as_str(), last.attachments.clone()),
        (pic.id.as_str(), vec![att])
    );
    let d = seen(&o, &g).await;
    assert_eq!(
        (
            d.last_message_id.as_deref(),
            d.last_message.as_deref(),
            d.last_message_user_id
        ),
        (Some(pic.id.as_str()), None, Some(m.id))
    );
    let filtered_by_type =
        o.c.messages()
            .history(
                &g,
                &filtered(vec![filter("attachments.type", FilterOp::Eq, "image")]),
                false,
            )
            .await
            .unwrap();
    assert_eq!(
        ids(&filtered_by_type.items.iter().collect::<Vec<_>>()),
        vec![pic.id.clone()]
    );

    // Edit: the sender only, not the owner, not an admin; unknown ids are 404.
    let text = send(&m, &g, "typo hre").await;
    o.c.messages()
        .edit_message(&g, &stored.id, "stored, edited")
        .await
        .unwrap();
    m.c.messages()
        .edit_message(&g, &text.id, "typo here")
        .await
        .unwrap();
    forbidden(
        o.c.messages()
            .edit_message(&g, &text.id, "owner's words")
            .await,
    );
    forbidden(
        a.c.messages()
            .edit_message(&g, &text.id, "admin's words")
            .await,
    );
    forbidden(
        m.c.messages()
            .edit_message(&g, &stored.id, "member's words")
            .await,
    );
    not_found(m.c.messages().edit_message(&g, MISSING, "nothing").await);
    let other = group(&m, "Elsewhere", &[]).await.id;
    not_found(
        m.c.messages()
            .edit_message(&other, &text.id, "wrong dialog")
            .await,
    );
    let h = history(&a, &g).await;
    assert_eq!(
        h.iter()
            .map(|x| x.message.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        vec!["sent to chat", "stored, edited", "", "typo here"]
    );
    assert_eq!(h[1].custom, want_custom, "editing keeps custom parameters");
    // Editing the last message updates the dialog's last_message.
    let d = seen(&o, &g).await;
    assert_eq!(
        (d.last_message_id.as_deref(), d.last_message.as_deref()),
        (Some(text.id.as_str()), Some("typo here"))
    );

    // Private dialogs: the recipient is the other participant.
    let p = private(&o, m.id).await.id;
    assert_eq!(send(&o, &p, "to m").await.recipient_id, m.id);
    assert_eq!(send(&m, &p, "to o").await.recipient_id, o.id);
    forbidden(a.c.messages().create_message(msg(&p, "third wheel")).await);
    assert_eq!(seen(&o, &p).await.last_message_status.as_deref(), None);
    assert_eq!(
        seen(&m, &p).await.last_message_status.as_deref(),
        Some("sent")
    );
    // Neither participant can add or remove anyone.
    forbidden(
        o.c.dialogs()
            .update_dialog(
                &p,
                DialogUpdate {
                    add_occupants: vec![a.id],
                    ..Default::default()
                },
            )
            .await,
    );
    forbidden(
        m.c.dialogs()
            .update_dialog(
                &p,
                DialogUpdate {
                    remove_occupants: vec![o.id],
                    ..Default::default()
                },
            )
            .await,
    );
    forbidden(o.c.dialogs().set_admins(&p, &[m.id], true).await);
    assert_eq!(occupants(&m, &p).await, vec![o.id, m.id]);
}

#[tokio::test]
async fn read_and_delivered_marks_drive_status_and_unread_counts() {
    let server = start().await;
    let o = server.user("owner").await;
    let m = server.user("member").await;
    let m2 = server.user("member2").await;
    let s = server.user("stranger").await;
    let g = group(&o, "Marks", &[m.id, m2.id]).await.id;
    let m1 = send(&o, &g, "first").await;
    let last = send(&o, &g, "second").await;
    let status = |u: &U| {
        let c = u.c.clone();
        let g = g.clone();
        async move {
            let d = c
                .dialogs()
                .list_dialogs(&filtered(vec![filter("_id", FilterOp::Eq, &g)]))
                .await
                .unwrap()
                .items
                .remove(0);
            (d.last_message_status, d.unread_messages_count)
        }
    };
    assert_eq!(status(&o).await, (Some("sent".into()), Some(0)));
    assert_eq!(status(&m).await, (None, Some(2)));

    // Delivered only.
    m.c.messages()
        .mark_messages(&g, std::slice::from_ref(&last.id), false, true)
        .await
        .unwrap();
    assert_eq!(status(&o).await, (Some("delivered".into()), Some(0)));
    assert_eq!(status(&m).await, (None, Some(2)), "delivered is not read");
    let h = history(&o, &g).await;
    assert_eq!(
        (h[1].read_ids.clone(), h[1].delivered_ids.clone()),
        (vec![o.id], vec![o.id, m.id])
    );
    assert_eq!(h[0].delivered_ids, vec![o.id]);

    // Read (one message, not the last): unread goes down, status stays.
    m.c.messages()
        .mark_messages(&g, std::slice::from_ref(&m1.id), true, false)
        .await
        .unwrap();
    assert_eq!(status(&m).await, (None, Some(1)));
    assert_eq!(status(&o).await, (Some("delivered".into()), Some(0)));
    let h = history(&m, &g).await;
    assert_eq!((h[0].read, h[0].read_ids.clone()), (1, vec![o.id, m.id]));
    assert_eq!(
        h[0].delivered_ids,
        vec![o.id, m.id],
        "read implies delivered"
    );
    assert_eq!(h[1].read, 0);

    // Mark all read: every message; the last one read makes the status "read".
    m2.c.messages().mark_all_read(&g).await.unwrap();
    assert_eq!(status(&m2).await, (None, Some(0)));
    assert_eq!(status(&o).await, (Some("read".into()), Some(0)));
    assert_eq!(status(&m).await, (None, Some(1)));
    let h = history(&o, &g).await;
    assert_eq!(h[1].read_ids, vec![o.id, m2.id]);
    assert_eq!(h[1].delivered_ids, vec![o.id, m.id, m2.id]);
    // Several ids at once; marking twice is harmless.
    m.c.messages()
        .mark_messages(&g, &[m1.id.clone(), last.id.clone()], true, true)
        .await
        .unwrap();
    assert_eq!(status(&m).await, (None, Some(0)));
    assert_eq!(history(&o, &g).await[1].read_ids, vec![o.id, m2.id, m.id]);

    // A new message resets the sender's status.
    let newer = send(&o, &g, "third").await;
    assert_eq!(status(&o).await, (Some("sent".into()), Some(0)));
    assert_eq!(status(&m).await, (None, Some(1)));

    // Unknown ids, ids of another dialog, strangers.
    not_found(
        m.c.messages()
            .mark_messages(&g, &[MISSING.into()], true, false)
            .await,
    );
    let other = group(&m, "Other", &[]).await.id;
    let elsewhere = send(&m, &other, "elsewhere").await;
    not_found(
        m.c.messages()
            .mark_messages(&g, std::slice::from_ref(&elsewhere.id), true, false)
            .await,
    );
    forbidden(
        s.c.messages()
            .mark_messages(&g, std::slice::from_ref(&newer.id), true, false)
            .await,
    );
    forbidden(s.c.messages().mark_all_read(&g).await);
    not_found(s.c.messages().mark_all_read(MISSING).await);
    assert_eq!(status(&o).await, (Some("sent".into()), Some(0)));
    assert_eq!(history(&o, &g).await[2].read_ids, vec![o.id]);
}

#[tokio::test]
async fn delete_messages_for_self_and_for_everyone() {
    let server = start().await;
    let o = server.user("owner").await;
    let a = server.user("admin").await;
    let m = server.user("member").await;
    let m2 = server.user("member2").await;
    let s = server.user("stranger").await;
    let g = group(&o, "Deletes", &[a.id, m.id, m2.id]).await.id;
    o.c.dialogs().set_admins(&g, &[a.id], true).await.unwrap();
    let by_o = send(&o, &g, "by owner").await;
    let by_m = send(&m, &g, "by member").await;
    let by_m2a = send(&m2, &g, "by member2 a").await;
    let by_m2b = send(&m2, &g, "by member2 b").await;
    let by_a = send(&a, &g, "by admin").await;
    let everyone = [
        "by owner",
        "by member",
        "by member2 a",
        "by member2 b",
        "by admin",
    ];
    assert_eq!(seen(&m, &g).await.unread_messages_count, Some(4));

    // For oneself: hidden for the caller only, and no longer unread for them.
    assert_eq!(
        m.c.messages()
            .delete_messages(&[by_m2a.id.clone(), by_o.id.clone()], false)
            .await
            .unwrap(),
        result(&[&by_m2a.id, &by_o.id], &[], &[])
    );
    assert_eq!(
        bodies(&m, &g).await,
        vec!["by member", "by member2 b", "by admin"]
    );
    assert_eq!(seen(&m, &g).await.unread_messages_count, Some(2));
    assert_eq!(bodies(&o, &g).await, everyone);

    // For everyone: an occupant only their own; strangers nothing.
    assert_eq!(
        m.c.messages()
            .delete_messages(&[by_m2b.id.clone(), MISSING.into(), by_o.id.clone()], true)
            .await
            .unwrap(),
        result(&[], &[MISSING], &[&by_m2b.id, &by_o.id])
    );
    assert_eq!(
        s.c.messages()
            .delete_messages(&[by_m.id.clone(), by_a.id.clone()], true)
            .await
            .unwrap(),
        result(&[], &[], &[&by_m.id, &by_a.id])
    );
    assert_eq!(bodies(&o, &g).await, everyone);

    // The admin deletes the last message: the dialog falls back to the previous one.
    assert_eq!(
        seen(&o, &g).await.last_message_id.as_deref(),
        Some(by_a.id.as_str())
    );
    assert_eq!(
        a.c.messages()
            .delete_messages(&[by_a.id.clone(), by_m2a.id.clone()], true)
            .await
            .unwrap(),
        result(&[&by_a.id, &by_m2a.id], &[], &[])
    );
    let d = seen(&m2, &g).await;
    assert_eq!(
        (
            d.last_message_id.as_deref(),
            d.last_message.as_deref(),
            d.last_message_user_id,
            d.last_message_date_sent,
            d.last_message_status.as_deref()
        ),
        (
            Some(by_m2b.id.as_str()),
            Some("by member2 b"),
            Some(m2.id),
            Some(by_m2b.date_sent),
            Some("sent")
        )
    );
    // The owner deletes someone else's; the sender deletes their own.
    assert_eq!(
        o.c.messages()
            .delete_messages(std::slice::from_ref(&by_m2b.id), true)
            .await
            .unwrap(),
        result(&[&by_m2b.id], &[], &[])
    );
    assert_eq!(
        m.c.messages()
            .delete_messages(std::slice::from_ref(&by_m.id), true)
            .await
            .unwrap(),
        result(&[&by_m.id], &[], &[])
    );
    assert_eq!(bodies(&o, &g).await, vec!["by owner"]);
    assert_eq!(
        bodies(&m, &g).await,
        Vec::<String>::new(),
        "by owner was hidden for m"
    );
    // Deleted ids are gone for every later call.
    assert_eq!(
        o.c.messages()
            .delete_messages(&[by_m.id.clone(), by_a.id.clone()], false)
            .await
            .unwrap(),
        result(&[], &[&by_m.id, &by_a.id], &[])
    );
    not_found(o.c.messages().edit_message(&g, &by_m.id, "ghost").await);
    not_found(o.c.messages().react(&by_m.id, Some("👻"), None).await);
    not_found(o.c.messages().reactions(&by_m.id).await);
    // Deleting the only message leaves the dialog without a last message.
    o.c.messages()
        .delete_messages(std::slice::from_ref(&by_o.id), true)
        .await
        .unwrap();
    let d = seen(&a, &g).await;
    assert_eq!(
        (
            d.last_message,
            d.last_message_id,
            d.last_message_date_sent,
            d.unread_messages_count
        ),
        (None, None, None, Some(0))
    );
}

#[tokio::test]
async fn unread_counts_total_and_per_dialog() {
    let server = start().await;
    let o = server.user("owner").await;
    let m = server.user("member").await;
    let g1 = group(&o, "G1", &[m.id]).await.id;
    let g2 = group(&o, "G2", &[m.id]).await.id;
    let p = private(&o, m.id).await.id;
    let pb = public(&o, "Pub").await.id;
    m.c.dialogs().subscribe_dialog(&pb).await.unwrap();
    for (d, n) in [(&g1, 2), (&g2, 1), (&p, 3), (&pb, 1)] {
        for i in 0..n {
            send(&o, d, &format!("{i}")).await;
        }
    }
    let counts = |u: &U, ids: &[&String]| {
        let c = u.c.clone();
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        async move {
            let r = c.messages().unread_counts(&ids).await.unwrap();
            (r.total, r.dialogs.into_iter().collect::<Vec<_>>())
        }
    };
    // Without ids: the total over group and private dialogs only.
    assert_eq!(counts(&m, &[]).await, (6, vec![]));
    assert_eq!(
        counts(&o, &[]).await,
        (0, vec![]),
        "own messages are never unread"
    );
    let mut want = vec![(g1.clone(), 2), (p.clone(), 3)];
    want.sort();
    assert_eq!(counts(&m, &[&g1, &p]).await, (5, want));
    assert_eq!(counts(&m, &[&pb]).await, (1, vec![(pb.clone(), 1)]));
    let missing = MISSING.to_owned();
    assert_eq!(
        counts(&m, &[&g2, &missing]).await,
        (1, vec![(g2.clone(), 1)]),
        "unknown ids are left out"
    );
    for (d, n) in [(&g1, 2), (&g2, 1), (&p, 3), (&pb, 1)] {
        assert_eq!(seen(&m, d).await.unread_messages_count, Some(n));
    }

    // Reading through history lowers them.
    m.c.messages()
        .history(&g1, &ListParams::default(), true)
        .await
        .unwrap();
    assert_eq!(counts(&m, &[]).await, (4, vec![]));
    assert_eq!(counts(&m, &[&g1]).await, (0, vec![(g1.clone(), 0)]));
    // A hidden private dialog leaves the total until its next message.
    m.c.dialogs()
        .delete_dialogs(std::slice::from_ref(&p), false)
        .await
        .unwrap();
    assert_eq!(counts(&m, &[]).await, (1, vec![]));
    send(&o, &p, "again").await;
    assert_eq!(counts(&m, &[]).await, (5, vec![]));
    m.c.messages().mark_all_read(&p).await.unwrap();
    m.c.messages().mark_all_read(&g2).await.unwrap();
    assert_eq!(counts(&m, &[]).await, (0, vec![]));
    assert_eq!(counts(&m, &[&pb]).await, (1, vec![(pb.clone(), 1)]));
}

#[tokio::test]
async fn reactions_one_type_per_user_add_remove_replace() {
    let server = start().await;
    let o = server.user("owner").await;
    let m = server.user("member").await;
    let m2 = server.user("member2").await;
    let s = server.user("stranger").await;
    let g = group(&o, "Reacts", &[m.id, m2.id]).await.id;
    let x = send(&o, &g, "react to me").await;
    assert_eq!(x.reactions, None);
    let list = |u: &U| {
        let c = u.c.clone();
        let id = x.id.clone();
        // Users of one reaction come in no particular order.
        async move {
            let mut all = c.messages().reactions(&id).await.unwrap();
            all.values_mut().for_each(|users| users.sort_unstable());
            all
        }
    };
    let summary = |u: &U| {
        let c = u.c.clone();
        let g = g.clone();
        async move {
            c.messages()
                .history(&g, &ListParams::default(), false)
                .await
                .unwrap()
                .items
                .remove(0)
                .reactions
        }
    };
    let by = |pairs: &[(&str, &[u64])]| {
        pairs
            .iter()
            .map(|(r, us)| {
                let mut us = us.to_vec();
                us.sort_unstable();
                (r.to_string(), us)
            })
            .collect::<BTreeMap<_, _>>()
    };
    let sum = |own: &[&str], total: &[(&str, u64)]| {
        Some(ReactionsSummary {
            own: own.iter().map(|s| s.to_string()).collect(),
            total: total.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
        })
    };
    assert_eq!(list(&o).await, by(&[]));

    m.c.messages().react(&x.id, Some("👍"), None).await.unwrap();
    m2.c.messages()
        .react(&x.id, Some("👍"), None)
        .await
        .unwrap();
    assert_eq!(list(&o).await, by(&[("👍", &[m.id, m2.id])]));
    assert_eq!(summary(&m).await, sum(&["👍"], &[("👍", 2)]));
    assert_eq!(summary(&o).await, sum(&[], &[("👍", 2)]));
    // Adding another reaction replaces the user's previous one.
    m.c.messages().react(&x.id, Some("🔥"), None).await.unwrap();
    assert_eq!(list(&m2).await, by(&[("👍", &[m2.id]), ("🔥", &[m.id])]));
    assert_eq!(summary(&m).await, sum(&["🔥"], &[("👍", 1), ("🔥", 1)]));
    // Removing a reaction that is not yours changes nothing.
    m.c.messages().react(&x.id, None, Some("👍")).await.unwrap();
    assert_eq!(list(&o).await, by(&[("👍", &[m2.id]), ("🔥", &[m.id])]));
    // Add and remove in one call.
    m.c.messages()
        .react(&x.id, Some("🚀"), Some("🔥"))
        .await
        .unwrap();
    assert_eq!(list(&o).await, by(&[("👍", &[m2.id]), ("🚀", &[m.id])]));
    // The sender may react to their own message too.
    o.c.messages().react(&x.id, Some("🚀"), None).await.unwrap();
    assert_eq!(
        list(&o).await,
        by(&[("👍", &[m2.id]), ("🚀", &[m.id, o.id])])
    );
    assert_eq!(summary(&o).await, sum(&["🚀"], &[("👍", 1), ("🚀", 2)]));
    // Removing.
    m.c.messages().react(&x.id, None, Some("🚀")).await.unwrap();
    o.c.messages().react(&x.id, None, Some("🚀")).await.unwrap();
    m2.c.messages()
        .react(&x.id, None, Some("👍"))
        .await
        .unwrap();
    assert_eq!(list(&m).await, by(&[]));
    assert_eq!(summary(&m).await, None);

    // Strangers and unknown messages.
    forbidden(s.c.messages().react(&x.id, Some("👎"), None).await);
    forbidden(s.c.messages().reactions(&x.id).await);
    not_found(m.c.messages().react(MISSING, Some("👍"), None).await);
    not_found(m.c.messages().reactions(MISSING).await);
    assert_eq!(list(&o).await, by(&[]));
}

#[tokio::test]
async fn search_finds_dialogs_messages_and_users_within_reach() {
    let server = start().await;
    let o = server
        .user_full("owner", "Searcher Owner", &server.api_url)
        .await;
    let m = server
        .user_full("member", "Searcher Member", &server.api_url)
        .await;
    let s = server
        .user_full("stranger", "Someone Else", &server.api_url)
        .await;
    let base = now() - 100_000;
    let g = group(&o, "Project Falcon", &[m.id]).await.id;
    let g2 = group(&o, "Other", &[]).await.id;
    let theirs = group(&s, "Falcon secret", &[]).await.id;
    let hello = send_at(&o, &g, "hello falcon team", base).await;
    send_at(&m, &g, "nothing to see", base + 10).await;
    let other = send_at(&o, &g2, "falcon in other", base + 20).await;
    send_at(&s, &theirs, "falcon secret stuff", base + 30).await;
    let q = |text: &str| SearchQuery {
        text: text.into(),
        ..Default::default()
    };
    let run = |u: &U, query: SearchQuery| {
        let c = u.c.clone();
        async move {
            let r = c.messages().search(&query).await.unwrap().results;
            (
                names(&r.dialogs),
                r.messages.iter().map(|x| x.id.clone()).collect::<Vec<_>>(),
                r.users.iter().map(|x| x.id).collect::<Vec<_>>(),
            )
        }
    };
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // Case-sensitive: "falcon" matches message bodies, not the name "Project Falcon".
    assert_eq!(
        run(&o, q("falcon")).await,
        (vec![], vec![other.id.clone(), hello.id.clone()], vec![])
    );
    assert_eq!(
        run(&o, q("Falcon")).await,
        (strings(&["Project Falcon"]), vec![], vec![])
    );
    // Limited to the given dialogs, to a date range, to a count.
    assert_eq!(
        run(
            &o,
            SearchQuery {
                dialog_ids: vec![g.clone()],
                ..q("falcon")
            }
        )
        .await
        .1,
        vec![hello.id.clone()]
    );
    assert_eq!(
        run(
            &o,
            SearchQuery {
                start_date: Some(base + 5),
                end_date: Some(base + 25),
                ..q("falcon")
            }
        )
        .await
        .1,
        vec![other.id.clone()]
    );
    assert_eq!(
        run(
            &o,
            SearchQuery {
                limit: Some(1),
                ..q("falcon")
            }
        )
        .await
        .1,
        vec![other.id.clone()]
    );
    // Users by full name or login.
    assert_eq!(run(&s, q("Searcher")).await.2, vec![o.id, m.id]);
    assert_eq!(run(&o, q("strang")).await.2, vec![s.id]);
    // Other people's dialogs stay out of reach, even when named.
    assert_eq!(
        run(
            &m,
            SearchQuery {
                dialog_ids: vec![theirs.clone(), g2.clone()],
                ..q("falcon")
            }
        )
        .await,
        (vec![], vec![], vec![])
    );
    assert_eq!(run(&m, q("falcon")).await.1, vec![hello.id.clone()]);
    assert_eq!(
        run(&s, q("falcon")).await.1.len(),
        1,
        "the stranger finds only their own message"
    );
}

#[tokio::test]
async fn system_messages_need_a_real_recipient() {
    let server = start().await;
    let o = server.user("owner").await;
    let m = server.user("member").await;
    let id =
        o.c.messages()
            .send_system_message(
                m.id,
                BTreeMap::from([
                    ("param1".to_owned(), "value1".to_owned()),
                    ("moduleIdentifier".to_owned(), "calls".to_owned()),
                ]),
            )
            .await
            .unwrap();
    assert!(is_object_id(&id), "{id}");
    let again =
        o.c.messages()
            .send_system_message(m.id, BTreeMap::new())
            .await
            .unwrap();
    assert_ne!(again, id);
    unprocessable(
        o.c.messages()
            .send_system_message(999_999, BTreeMap::new())
            .await,
        "recipientId not found",
    );
    // System messages never show up as chat history.
    assert_eq!(
        m.c.dialogs()
            .list_dialogs(&ListParams::default())
            .await
            .unwrap()
            .total_entries,
        0
    );
}
