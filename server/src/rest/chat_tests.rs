//! Handler tests of the chat REST API (dialogs, messages, reactions, unread, search).

#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};

use super::tests::{app_token, call, test_state, user_token, Reply};
use crate::state::AppState;

async fn req(state: &AppState, token: &str, method: &str, uri: &str, body: Option<Value>) -> Reply {
    call(state, method, uri, &[("CB-Token", token)], body).await
}

struct Users {
    tokens: Vec<String>,
    ids: Vec<u64>,
}

async fn users(state: &AppState, n: usize) -> Users {
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let (t, id) = user_token(state, &format!("user{i}")).await;
        tokens.push(t);
        ids.push(id);
    }
    Users { tokens, ids }
}

async fn group(state: &AppState, owner: &str, occupants: &[u64]) -> String {
    let list: Vec<String> = occupants.iter().map(u64::to_string).collect();
    let r = req(
        state,
        owner,
        "POST",
        "/chat/Dialog.json",
        Some(json!({"type": 2, "name": "Team", "occupants_ids": list.join(", ")})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["_id"].as_str().unwrap().to_owned()
}

async fn send(state: &AppState, token: &str, dialog: &str, text: &str) -> Value {
    let r = req(
        state,
        token,
        "POST",
        "/chat/Message.json",
        Some(json!({"chat_dialog_id": dialog, "message": text})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()
}

#[tokio::test]
async fn dialog_create_rules() {
    let s = test_state();
    let u = users(&s, 3).await;
    let (a, b) = (&u.tokens[0], &u.tokens[1]);

    // App-only session.
    let app = app_token(&s).await;
    let r = req(&s, &app, "GET", "/chat/Dialog", None).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["errors"]["base"][0], "Forbidden. Need user.");

    // Group: creator added, id list as string, room jid.
    let r = req(
        &s,
        a,
        "POST",
        "/chat/Dialog",
        Some(
            json!({"type": 2, "name": "G", "occupants_ids": format!("{}, {}", u.ids[1], u.ids[2]),
                    "extensions": {"k": 5}, "permissions": {"allow_preview": true}}),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let d = r.json();
    let id = d["_id"].as_str().unwrap();
    assert!(cubechat_wire::chat::is_object_id(id));
    assert_eq!(d["user_id"], u.ids[0]);
    assert_eq!(d["occupants_ids"], json!([u.ids[0], u.ids[1], u.ids[2]]));
    assert_eq!(d["xmpp_room_jid"], format!("7_{id}@muc.127.0.0.1"));
    assert_eq!(d["extensions"], json!({"k": "5"}));
    assert_eq!(d["permissions"], json!({"allow_preview": true}));
    assert_eq!(d["unread_messages_count"], 0);

    // Validation.
    for (body, field) in [
        (json!({"type": 2, "occupants_ids": [u.ids[1]]}), "name"),
        (
            json!({"type": 3, "occupants_ids": [u.ids[1], u.ids[2]]}),
            "occupants_ids",
        ),
        (json!({"type": 3}), "occupants_ids"),
        (
            json!({"type": 2, "name": "x", "occupants_ids": [99999]}),
            "occupants_ids",
        ),
        (json!({"type": 9, "name": "x"}), "type"),
    ] {
        let r = req(&s, a, "POST", "/chat/Dialog", Some(body.clone())).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert!(r.json()["errors"][field].is_array(), "{}", r.text);
    }
    let r = req(
        &s,
        a,
        "POST",
        "/chat/Dialog",
        Some(json!({"type": 1, "name": "B"})),
    )
    .await;
    assert_eq!(r.status, 403);

    // Private: dedupe from either side, no room jid.
    let r = req(
        &s,
        a,
        "POST",
        "/chat/Dialog",
        Some(json!({"type": 3, "occupants_ids": [u.ids[1]]})),
    )
    .await;
    assert_eq!(r.status, 201);
    let p = r.json();
    assert_eq!(p["xmpp_room_jid"], Value::Null);
    let r = req(
        &s,
        b,
        "POST",
        "/chat/Dialog",
        Some(json!({"type": 3, "occupants_ids": u.ids[0].to_string()})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["_id"], p["_id"]);

    // Public: no occupant list, a count.
    let r = req(
        &s,
        a,
        "POST",
        "/chat/dialog",
        Some(json!({"type": 4, "name": "P", "occupants_ids": [u.ids[1]]})),
    )
    .await;
    assert_eq!(r.status, 201);
    let pb = r.json();
    assert_eq!(pb["occupants_ids"], json!([]));
    assert_eq!(pb["occupants_count"], 1);
    let pid = pb["_id"].as_str().unwrap();
    let r = req(
        &s,
        b,
        "POST",
        &format!("/chat/Dialog/{pid}/subscribe"),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["occupants_count"], 2);
    let r = req(
        &s,
        a,
        "GET",
        &format!("/chat/Dialog/{pid}/occupants.json?limit=1&skip=1"),
        None,
    )
    .await;
    assert_eq!(r.json()["items"][0]["id"], u.ids[1]);
    let r = req(
        &s,
        b,
        "DELETE",
        &format!("/chat/dialog/{pid}/subscribe"),
        None,
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));

    // The list: only my dialogs.
    let r = req(&s, &u.tokens[2], "GET", "/chat/Dialog.json", None).await;
    assert_eq!(r.json()["total_entries"], 1);
    let r = req(&s, a, "GET", "/chat/Dialog?count=1", None).await;
    assert_eq!(r.json(), json!({"items_count": 3}));
    let r = req(&s, a, "GET", "/chat/Dialog/zzz/occupants", None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn dialog_list_filters_and_paging() {
    let s = test_state();
    let u = users(&s, 2).await;
    let a = &u.tokens[0];
    let g1 = group(&s, a, &[u.ids[1]]).await;
    let g2 = group(&s, a, &[]).await;
    let r = req(
        &s,
        a,
        "POST",
        "/chat/Dialog",
        Some(json!({"type": 4, "name": "Sun bar"})),
    )
    .await;
    let p = r.json()["_id"].as_str().unwrap().to_owned();
    send(&s, a, &g2, "hello").await;

    let ids = |r: &Reply| -> Vec<String> {
        r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["_id"].as_str().unwrap().to_owned())
            .collect()
    };
    // Default: the one with a message first.
    let r = req(&s, a, "GET", "/chat/Dialog", None).await;
    assert_eq!(ids(&r)[0], g2);
    assert_eq!(r.json()["limit"], 100);
    let r = req(&s, a, "GET", "/chat/Dialog?type=4", None).await;
    assert_eq!(ids(&r), vec![p.clone()]);
    let r = req(
        &s,
        a,
        "GET",
        "/chat/Dialog?type[in]=2%2C4&sort_asc=created_at&limit=2&skip=1",
        None,
    )
    .await;
    assert_eq!(r.json()["total_entries"], 3);
    assert_eq!(r.json()["skip"], 1);
    assert_eq!(ids(&r).len(), 2);
    let r = req(
        &s,
        a,
        "GET",
        &format!("/chat/Dialog?type[nin]=4&_id[ne]={g1}"),
        None,
    )
    .await;
    assert_eq!(ids(&r), vec![g2.clone()]);
    let r = req(&s, a, "GET", "/chat/Dialog?name[ctn]=bar", None).await;
    assert_eq!(ids(&r), vec![p.clone()]);
    let r = req(&s, a, "GET", "/chat/Dialog?name[ctn]=BAR", None).await;
    assert_eq!(ids(&r).len(), 0, "ctn is case-sensitive");
    let r = req(
        &s,
        a,
        "GET",
        "/chat/Dialog?last_message_date_sent[gt]=0",
        None,
    )
    .await;
    assert_eq!(ids(&r), vec![g2.clone()]);
    let r = req(
        &s,
        a,
        "GET",
        "/chat/Dialog?updated_at[gt]=2000-01-01T00:00:00Z&created_at[lt]=4000000000",
        None,
    )
    .await;
    assert_eq!(r.json()["total_entries"], 3);
    let r = req(
        &s,
        a,
        "GET",
        &format!("/chat/Dialog?occupants_ids[all]={}", u.ids[1]),
        None,
    )
    .await;
    assert_eq!(ids(&r), vec![g1.clone()]);
    let r = req(&s, a, "GET", "/chat/Dialog?type[gt]=x", None).await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn dialog_update_permissions() {
    let s = test_state();
    let u = users(&s, 9).await;
    let (owner, occ, stranger) = (&u.tokens[0], &u.tokens[1], &u.tokens[8]);
    let g = group(&s, owner, &[u.ids[1], u.ids[2]]).await;
    let path = format!("/chat/Dialog/{g}");

    // An occupant renames and adds occupants.
    let r = req(
        &s,
        occ,
        "PUT",
        &path,
        Some(json!({"name": "New", "push_all": {"occupants_ids": [u.ids[3]]}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["name"], "New");
    assert_eq!(
        r.json()["occupants_ids"],
        json!([u.ids[0], u.ids[1], u.ids[2], u.ids[3]])
    );
    // ...but cannot remove others, nor change admins.
    let r = req(
        &s,
        occ,
        "PUT",
        &path,
        Some(json!({"pull_all": {"occupants_ids": [u.ids[2]]}})),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["errors"]["base"][0],
        "You don't have appropriate permissions to perform this operation"
    );
    let r = req(
        &s,
        occ,
        "PUT",
        &format!("{path}/admins"),
        Some(json!({"push_all": {"admins_ids": [u.ids[2]]}})),
    )
    .await;
    assert_eq!(r.status, 403);
    // A stranger: 403; an unknown dialog: 404.
    let r = req(&s, stranger, "PUT", &path, Some(json!({"name": "x"}))).await;
    assert_eq!(r.status, 403);
    let r = req(
        &s,
        owner,
        "PUT",
        "/chat/Dialog/5f0c0c0c0c0c0c0c0c0c0c0c",
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = req(
        &s,
        owner,
        "PUT",
        "/chat/Dialog/not-an-id",
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(r.status, 404);
    // Self-removal is fine.
    let r = req(
        &s,
        &u.tokens[3],
        "PUT",
        &path,
        Some(json!({"pull_all": {"occupants_ids": [u.ids[3]]}})),
    )
    .await;
    assert_eq!(r.status, 200);

    // Admins: owner only, must be occupants, at most 5.
    let r = req(
        &s,
        owner,
        "PUT",
        &path,
        Some(json!({"push_all": {"admins_ids": [u.ids[7]]}})),
    )
    .await;
    assert_eq!(r.status, 422);
    let all: Vec<u64> = u.ids[1..8].to_vec();
    let r = req(
        &s,
        owner,
        "PUT",
        &path,
        Some(json!({"push_all": {"occupants_ids": all}})),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = req(
        &s,
        owner,
        "PUT",
        &format!("{path}/admins"),
        Some(json!({"push_all": {"admins_ids": &u.ids[1..7]}})),
    )
    .await;
    assert_eq!(r.status, 422, "6 admins");
    let r = req(
        &s,
        owner,
        "PUT",
        &format!("{path}/admins"),
        Some(json!({"push_all": {"admins_ids": &u.ids[1..6]}})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["admins_ids"].as_array().unwrap().len(), 5);
    let r = req(
        &s,
        owner,
        "PUT",
        &format!("{path}/admins"),
        Some(json!({"pull_all": {"admins_ids": [u.ids[5]]}})),
    )
    .await;
    assert_eq!(r.json()["admins_ids"].as_array().unwrap().len(), 4);
    // The owner removes others; extensions null resets; updated_at moves.
    let r = req(
        &s,
        owner,
        "PUT",
        &path,
        Some(
            json!({"pull_all": {"occupants_ids": [u.ids[7]]}, "extensions": null,
        "push_all": {"pinned_messages_ids": ["5f0c0c0c0c0c0c0c0c0c0c0c"]}}),
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(!r.json()["occupants_ids"]
        .as_array()
        .unwrap()
        .contains(&json!(u.ids[7])));
    assert_eq!(
        r.json()["pinned_messages_ids"],
        json!(["5f0c0c0c0c0c0c0c0c0c0c0c"])
    );
    assert_eq!(r.json()["extensions"], Value::Null);

    // Private dialogs keep their occupants.
    let r = req(
        &s,
        owner,
        "POST",
        "/chat/Dialog",
        Some(json!({"type": 3, "occupants_ids": [u.ids[1]]})),
    )
    .await;
    let p = r.json()["_id"].as_str().unwrap().to_owned();
    let r = req(
        &s,
        owner,
        "PUT",
        &format!("/chat/Dialog/{p}"),
        Some(json!({"push_all": {"occupants_ids": [u.ids[2]]}})),
    )
    .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn dialog_delete_and_clear_history() {
    let s = test_state();
    let u = users(&s, 4).await;
    let (owner, admin, occ) = (&u.tokens[0], &u.tokens[1], &u.tokens[2]);
    let g1 = group(&s, owner, &[u.ids[1], u.ids[2]]).await;
    let g2 = group(&s, owner, &[u.ids[1], u.ids[2]]).await;
    req(
        &s,
        owner,
        "PUT",
        &format!("/chat/Dialog/{g1}/admins"),
        Some(json!({"push_all": {"admins_ids": [u.ids[1]]}})),
    )
    .await;

    // An occupant cannot force-delete; the multi form reports it.
    let missing = "5f0c0c0c0c0c0c0c0c0c0c0c";
    let r = call(
        &s,
        "DELETE",
        &format!("/chat/Dialog/{g1},{g2},{missing}"),
        &[
            ("CB-Token", occ),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(Value::String("force=1".into())),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"SuccessfullyDeleted": {"ids": []}, "NotFound": {"ids": [missing]}, "WrongPermissions": {"ids": [g1, g2]}})
    );
    let r = req(
        &s,
        occ,
        "DELETE",
        &format!("/chat/Dialog/{g1}?force=1"),
        None,
    )
    .await;
    assert_eq!(r.status, 403);
    let r = req(&s, occ, "DELETE", &format!("/chat/Dialog/{missing}"), None).await;
    assert_eq!(r.status, 404);
    // Without force: the occupant leaves.
    let r = req(&s, occ, "DELETE", &format!("/chat/Dialog/{g2}"), None).await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    let r = req(&s, owner, "GET", "/chat/Dialog", None).await;
    let d = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["_id"] == g2.as_str())
        .unwrap()
        .clone();
    assert_eq!(d["occupants_ids"], json!([u.ids[0], u.ids[1]]));
    // An admin force-deletes for everyone.
    let r = call(
        &s,
        "DELETE",
        &format!("/chat/Dialog/{g1}"),
        &[("CB-Token", admin)],
        Some(Value::String("force=1".into())),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = req(&s, owner, "GET", "/chat/Dialog?count=1", None).await;
    assert_eq!(r.json()["items_count"], 1);

    // Private: hidden for the caller until a new message.
    let r = req(
        &s,
        owner,
        "POST",
        "/chat/Dialog",
        Some(json!({"type": 3, "occupants_ids": [u.ids[3]]})),
    )
    .await;
    let p = r.json()["_id"].as_str().unwrap().to_owned();
    send(&s, owner, &p, "one").await;
    req(
        &s,
        &u.tokens[3],
        "DELETE",
        &format!("/chat/Dialog/{p}"),
        None,
    )
    .await;
    let r = req(&s, &u.tokens[3], "GET", "/chat/Dialog?count=1", None).await;
    assert_eq!(r.json()["items_count"], 0);
    send(&s, owner, &p, "two").await;
    let r = req(&s, &u.tokens[3], "GET", "/chat/Dialog", None).await;
    assert_eq!(r.json()["items"][0]["unread_messages_count"], 2);

    // Clear history for me, then for everyone (owner only).
    let r = req(
        &s,
        &u.tokens[3],
        "DELETE",
        &format!("/chat/Dialog/clearHistory/{p}"),
        None,
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    let r = req(
        &s,
        &u.tokens[3],
        "GET",
        &format!("/chat/Message?chat_dialog_id={p}"),
        None,
    )
    .await;
    assert_eq!(r.json()["items"], json!([]));
    let r = req(
        &s,
        owner,
        "GET",
        &format!("/chat/Message?chat_dialog_id={p}&mark_as_read=0"),
        None,
    )
    .await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 2);
    let g3 = group(&s, owner, &[u.ids[2]]).await;
    send(&s, owner, &g3, "x").await;
    let r = call(
        &s,
        "DELETE",
        &format!("/chat/Dialog/clearHistory/{g3}"),
        &[("CB-Token", occ)],
        Some(Value::String("force=1".into())),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = call(
        &s,
        "DELETE",
        &format!("/chat/Dialog/clearHistory/{g3}"),
        &[("CB-Token", owner)],
        Some(Value::String("force=1".into())),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = req(
        &s,
        occ,
        "GET",
        &format!("/chat/Message?chat_dialog_id={g3}"),
        None,
    )
    .await;
    assert_eq!(r.json()["items"], json!([]));
    let r = req(&s, owner, "GET", "/chat/Dialog?type=2", None).await;
    assert_eq!(r.json()["items"][0]["last_message"], Value::Null);
}

#[tokio::test]
async fn notifications_setting() {
    let s = test_state();
    let u = users(&s, 2).await;
    let g = group(&s, &u.tokens[0], &[]).await;
    let path = format!("/chat/Dialog/{g}/notifications");
    let r = req(&s, &u.tokens[0], "GET", &path, None).await;
    assert_eq!(r.json(), json!({"notifications": {"enabled": 1}}));
    let r = req(
        &s,
        &u.tokens[0],
        "PUT",
        &path,
        Some(json!({"enabled": "0"})),
    )
    .await;
    assert_eq!(r.json(), json!({"notifications": {"enabled": 0}}));
    let r = req(&s, &u.tokens[0], "GET", &path, None).await;
    assert_eq!(r.json()["notifications"]["enabled"], 0);
    s.db.with(|c| crate::db::dialogs::notifications_enabled(c, &g, u.ids[0]))
        .map(|e| assert!(!e))
        .unwrap();
    let r = req(&s, &u.tokens[1], "PUT", &path, Some(json!({"enabled": 1}))).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn messages_send_list_and_unread() {
    let s = test_state();
    let u = users(&s, 3).await;
    let (a, b) = (&u.tokens[0], &u.tokens[1]);
    let g = group(&s, a, &[u.ids[1]]).await;

    // Validation and permissions.
    let r = req(
        &s,
        a,
        "POST",
        "/chat/Message",
        Some(json!({"chat_dialog_id": g})),
    )
    .await;
    assert_eq!(r.status, 422);
    let r = req(
        &s,
        &u.tokens[2],
        "POST",
        "/chat/Message",
        Some(json!({"chat_dialog_id": g, "message": "x"})),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = req(
        &s,
        &u.tokens[2],
        "GET",
        &format!("/chat/Message?chat_dialog_id={g}"),
        None,
    )
    .await;
    assert_eq!(r.status, 403);

    // Custom keys, attachments as an object, ms date_sent.
    let r = req(&s, a, "POST", "/chat/Message.json", Some(json!({
        "chat_dialog_id": g, "message": "first", "date_sent": 1_700_000_000_123_i64, "send_to_chat": 1,
        "attachments": {"0": {"type": "image", "uid": "u1", "size": "12"}}, "field_one": "v", "n": 5
    }))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let m = r.json();
    assert_eq!(m["date_sent"], 1_700_000_000);
    assert_eq!(m["field_one"], "v");
    assert_eq!(m["n"], "5");
    assert_eq!(m["attachments"][0]["size"], 12);
    assert_eq!(m["read_ids"], json!([u.ids[0]]));
    assert_eq!(m["read"], 1);
    assert_eq!(m["recipient_id"], 0);
    // Attachment-only is fine.
    let r = req(&s, a, "POST", "/chat/Message", Some(json!({"chat_dialog_id": g, "attachments": [{"type": "audio"}], "date_sent": 1_700_000_100}))).await;
    assert_eq!(r.status, 201);
    send(&s, a, &g, "third").await;

    // The dialog: last message, unread counts.
    let r = req(&s, b, "GET", "/chat/Dialog", None).await;
    let d = &r.json()["items"][0];
    assert_eq!(d["last_message"], "third");
    assert_eq!(d["unread_messages_count"], 3);
    assert_eq!(d["last_message_status"], Value::Null);
    let r = req(&s, a, "GET", "/chat/Dialog", None).await;
    assert_eq!(r.json()["items"][0]["last_message_status"], "sent");
    let r = req(
        &s,
        b,
        "GET",
        &format!("/chat/Message/unread?chat_dialog_ids={g}"),
        None,
    )
    .await;
    assert_eq!(r.json(), json!({"total": 3, g.clone(): 3}));

    // Filters; mark_as_read=0 leaves them unread.
    let r = req(
        &s,
        b,
        "GET",
        &format!("/chat/Message?chat_dialog_id={g}&mark_as_read=0&attachments.type=audio"),
        None,
    )
    .await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.json()["items"][0]["read"], 0);
    let r = req(&s, b, "GET", &format!("/chat/Message?chat_dialog_id={g}&mark_as_read=0&date_sent[lte]=1700000050&message[ctn]=irs"), None).await;
    assert_eq!(r.json()["items"][0]["message"], "first");
    let r = req(&s, b, "GET", "/chat/Message/unread", None).await;
    assert_eq!(r.json(), json!({"total": 3}));

    // Listing marks the page read.
    let r = req(
        &s,
        b,
        "GET",
        &format!("/chat/Message?chat_dialog_id={g}&limit=2&sort_desc=date_sent"),
        None,
    )
    .await;
    let items = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(items[0]["message"], "third");
    assert_eq!(items[0]["read"], 1);
    assert_eq!(r.json()["limit"], 2);
    let r = req(&s, b, "GET", "/chat/Message/unread", None).await;
    assert_eq!(r.json()["total"], 1);
    let r = req(&s, a, "GET", "/chat/Dialog", None).await;
    assert_eq!(r.json()["items"][0]["last_message_status"], "read");
    // Default order ascending.
    let r = req(
        &s,
        b,
        "GET",
        &format!("/chat/Message?chat_dialog_id={g}&mark_as_read=0"),
        None,
    )
    .await;
    let bodies: Vec<Value> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].clone())
        .collect();
    assert_eq!(bodies, vec![json!("first"), Value::Null, json!("third")]);
    assert_eq!(r.json()["items"][0]["read"], 0);
    // Mark all read.
    let r = req(
        &s,
        b,
        "PUT",
        "/chat/Message",
        Some(json!({"read": 1, "chat_dialog_id": g})),
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    let r = req(&s, b, "GET", "/chat/Message/unread", None).await;
    assert_eq!(r.json()["total"], 0);
}

#[tokio::test]
async fn private_auto_create_edit_and_delete() {
    let s = test_state();
    let u = users(&s, 3).await;
    let (a, b) = (&u.tokens[0], &u.tokens[1]);
    let r = req(
        &s,
        a,
        "POST",
        "/chat/Message",
        Some(json!({"recipient_id": u.ids[1], "message": "hi"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let m1 = r.json();
    assert_eq!(m1["recipient_id"], u.ids[1]);
    let r = req(
        &s,
        b,
        "POST",
        "/chat/Message",
        Some(json!({"recipient_id": u.ids[0].to_string(), "message": "yo"})),
    )
    .await;
    let m2 = r.json();
    assert_eq!(
        m1["chat_dialog_id"], m2["chat_dialog_id"],
        "one private dialog"
    );
    assert_eq!(m2["recipient_id"], u.ids[0]);
    let d = m1["chat_dialog_id"].as_str().unwrap().to_owned();
    let r = req(
        &s,
        a,
        "POST",
        "/chat/Message",
        Some(json!({"recipient_id": 99999, "message": "x"})),
    )
    .await;
    assert_eq!(r.status, 422);
    // A private dialog has no admins, not even by its creator.
    for path in [
        format!("/chat/Dialog/{d}/admins"),
        format!("/chat/Dialog/{d}"),
    ] {
        let r = req(
            &s,
            a,
            "PUT",
            &path,
            Some(json!({"push_all": {"admins_ids": [u.ids[1]]}})),
        )
        .await;
        assert_eq!(r.status, 403, "{path}: {}", r.text);
    }

    // Edit: sender only. Mark delivered/read: occupants.
    let (id1, id2) = (m1["_id"].as_str().unwrap(), m2["_id"].as_str().unwrap());
    let r = req(
        &s,
        b,
        "PUT",
        &format!("/chat/Message/{id1}"),
        Some(json!({"chat_dialog_id": d, "message": "edited"})),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = req(
        &s,
        a,
        "PUT",
        &format!("/chat/Message/{id1}"),
        Some(json!({"chat_dialog_id": d, "message": "edited"})),
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    let r = req(
        &s,
        b,
        "PUT",
        &format!("/chat/Message/{id1}"),
        Some(json!({"delivered": 1})),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = req(&s, a, "GET", "/chat/Dialog", None).await;
    assert_eq!(r.json()["items"][0]["last_message"], "yo");
    let r = req(
        &s,
        a,
        "GET",
        &format!("/chat/Message?chat_dialog_id={d}&mark_as_read=0"),
        None,
    )
    .await;
    let first = r.json()["items"][0].clone();
    assert_eq!(first["message"], "edited");
    assert_eq!(first["delivered_ids"], json!([u.ids[0], u.ids[1]]));
    let r = req(
        &s,
        &u.tokens[2],
        "PUT",
        &format!("/chat/Message/{id1}"),
        Some(json!({"read": 1})),
    )
    .await;
    assert_eq!(r.status, 403);

    // Delete: b cannot force-delete a's message; hiding works; sender force-deletes.
    let missing = "5f0c0c0c0c0c0c0c0c0c0c0c";
    let r = call(
        &s,
        "DELETE",
        &format!("/chat/Message/{id1},{missing}"),
        &[("CB-Token", b)],
        Some(Value::String("force=1".into())),
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"SuccessfullyDeleted": {"ids": []}, "NotFound": {"ids": [missing]}, "WrongPermissions": {"ids": [id1]}})
    );
    let r = req(&s, b, "DELETE", &format!("/chat/Message/{id1}"), None).await;
    assert_eq!(r.json()["SuccessfullyDeleted"]["ids"], json!([id1]));
    let r = req(
        &s,
        b,
        "GET",
        &format!("/chat/Message?chat_dialog_id={d}"),
        None,
    )
    .await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 1);
    let r = req(
        &s,
        a,
        "GET",
        &format!("/chat/Message?chat_dialog_id={d}"),
        None,
    )
    .await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 2);
    // Deleting the last message recomputes the dialog's last message.
    let r = req(
        &s,
        b,
        "DELETE",
        &format!("/chat/Message/{id2}?force=1"),
        None,
    )
    .await;
    assert_eq!(r.json()["SuccessfullyDeleted"]["ids"], json!([id2]));
    let r = req(&s, a, "GET", "/chat/Dialog", None).await;
    assert_eq!(r.json()["items"][0]["last_message"], "edited");
    assert_eq!(r.json()["items"][0]["last_message_id"], id1);
}

#[tokio::test]
async fn owner_and_admin_delete_others_messages() {
    let s = test_state();
    let u = users(&s, 4).await;
    let g = group(&s, &u.tokens[0], &[u.ids[1], u.ids[2], u.ids[3]]).await;
    req(
        &s,
        &u.tokens[0],
        "PUT",
        &format!("/chat/Dialog/{g}/admins"),
        Some(json!({"push_all": {"admins_ids": [u.ids[1]]}})),
    )
    .await;
    let m1 = send(&s, &u.tokens[3], &g, "a").await;
    let m2 = send(&s, &u.tokens[3], &g, "b").await;
    let m3 = send(&s, &u.tokens[3], &g, "c").await;
    for (token, m, ok) in [
        (&u.tokens[2], &m1, false),
        (&u.tokens[1], &m1, true),
        (&u.tokens[0], &m2, true),
        (&u.tokens[3], &m3, true),
    ] {
        let id = m["_id"].as_str().unwrap();
        let r = req(
            &s,
            token,
            "DELETE",
            &format!("/chat/Message/{id}?force=1"),
            None,
        )
        .await;
        let key = if ok {
            "SuccessfullyDeleted"
        } else {
            "WrongPermissions"
        };
        assert_eq!(r.json()[key]["ids"], json!([id]), "{}", r.text);
    }
}

#[tokio::test]
async fn reactions_replace() {
    let s = test_state();
    let u = users(&s, 3).await;
    let g = group(&s, &u.tokens[0], &[u.ids[1]]).await;
    let m = send(&s, &u.tokens[0], &g, "react to me").await;
    let id = m["_id"].as_str().unwrap();
    let path = format!("/chat/Message/{id}/reactions");
    let r = req(&s, &u.tokens[0], "PUT", &path, Some(json!({"add": "👍"}))).await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    req(&s, &u.tokens[1], "PUT", &path, Some(json!({"add": "👍"}))).await;
    // Adding another replaces the user's previous one.
    req(&s, &u.tokens[1], "PUT", &path, Some(json!({"add": "🔥"}))).await;
    let r = req(&s, &u.tokens[1], "GET", &path, None).await;
    assert_eq!(r.json(), json!({"👍": [u.ids[0]], "🔥": [u.ids[1]]}));
    let r = req(
        &s,
        &u.tokens[1],
        "GET",
        &format!("/chat/Message?chat_dialog_id={g}"),
        None,
    )
    .await;
    assert_eq!(
        r.json()["items"][0]["reactions"],
        json!({"own": ["🔥"], "total": {"👍": 1, "🔥": 1}})
    );
    req(
        &s,
        &u.tokens[1],
        "PUT",
        &path,
        Some(json!({"remove": "🔥"})),
    )
    .await;
    let r = req(&s, &u.tokens[1], "GET", &path, None).await;
    assert_eq!(r.json(), json!({"👍": [u.ids[0]]}));
    // Strangers, bad bodies, unknown messages.
    let r = req(&s, &u.tokens[2], "PUT", &path, Some(json!({"add": "👍"}))).await;
    assert_eq!(r.status, 403);
    let r = req(&s, &u.tokens[0], "PUT", &path, Some(json!({}))).await;
    assert_eq!(r.status, 422);
    let r = req(
        &s,
        &u.tokens[0],
        "GET",
        "/chat/Message/5f0c0c0c0c0c0c0c0c0c0c0c/reactions",
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    let r = req(
        &s,
        &u.tokens[0],
        "GET",
        "/chat/Message/nope/reactions",
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    let r = req(
        &s,
        &u.tokens[0],
        "GET",
        &format!("/chat/Message?chat_dialog_id={g}"),
        None,
    )
    .await;
    assert_eq!(r.json()["items"][0]["reactions"]["own"], json!(["👍"]));
}

#[tokio::test]
async fn search_rules_and_results() {
    let s = test_state();
    let u = users(&s, 3).await;
    let a = &u.tokens[0];
    let r = req(
        &s,
        a,
        "POST",
        "/chat/Dialog",
        Some(json!({"type": 2, "name": "Hello world club", "occupants_ids": [u.ids[1]]})),
    )
    .await;
    let g = r.json()["_id"].as_str().unwrap().to_owned();
    send(&s, a, &g, "say Hello there").await;
    send(&s, a, &g, "say hello there").await;
    let other = group(&s, &u.tokens[2], &[]).await;
    send(&s, &u.tokens[2], &other, "Hello from elsewhere").await;

    for bad in [
        "search_text=Hell".to_owned(),
        "search_text=Hello&start_date=2024-01-01T00:00:00.000Z".to_owned(),
        "search_text=Hello&start_date=2024-01-01T00:00:00.000Z&end_date=2024-06-01T00:00:00.000Z"
            .to_owned(),
        "search_text=Hello&limit=101".to_owned(),
        format!(
            "search_text=Hello&chat_dialog_ids={}",
            [g.as_str(); 11]
                .iter()
                .enumerate()
                .map(|(i, _)| format!("{i:024x}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
    ] {
        let r = req(&s, a, "GET", &format!("/chat/search?{bad}"), None).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
    }
    let r = req(&s, a, "GET", "/chat/search.json?search_text=Hello", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let res = &r.json()["results"];
    assert_eq!(res["dialogs"].as_array().unwrap().len(), 1);
    assert_eq!(
        res["messages"].as_array().unwrap().len(),
        1,
        "case-sensitive, own dialogs only"
    );
    assert_eq!(res["messages"][0]["message"], "say Hello there");
    assert_eq!(res["users"], json!([]));
    let now = crate::db::now();
    let r = req(
        &s,
        a,
        "GET",
        &format!(
            "/chat/search?search_text=user1&start_date={}&end_date={}&chat_dialog_ids={g}",
            now - 100,
            now + 100
        ),
        None,
    )
    .await;
    assert_eq!(r.json()["results"]["users"][0]["login"], "user1");
    let r = req(
        &s,
        a,
        "GET",
        &format!(
            "/chat/search?search_text=Hello&start_date={}&end_date={}",
            now + 100,
            now + 200
        ),
        None,
    )
    .await;
    assert_eq!(r.json()["results"]["messages"], json!([]));
}

#[tokio::test]
async fn system_messages() {
    let s = test_state();
    let u = users(&s, 2).await;
    let r = req(
        &s,
        &u.tokens[0],
        "POST",
        "/chat/Message/system",
        Some(json!({"recipientId": u.ids[1], "param1": "v", "n": 2})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert!(cubechat_wire::chat::is_object_id(
        v["messageId"].as_str().unwrap()
    ));
    assert_eq!(v["recipientId"], u.ids[1]);
    assert_eq!(v["extensionParams"], json!({"param1": "v", "n": "2"}));
    let r = req(
        &s,
        &u.tokens[0],
        "POST",
        "/chat/Message/system",
        Some(json!({"param1": "v"})),
    )
    .await;
    assert_eq!(r.status, 422);
    let r = req(
        &s,
        &u.tokens[0],
        "POST",
        "/chat/Message/system",
        Some(json!({"recipientId": 99999})),
    )
    .await;
    assert_eq!(r.status, 422);
}

#[test]
fn db_create_is_reusable() {
    use crate::db::{dialogs, messages, Db};
    let db = Db::open(":memory:").unwrap();
    db.with(|c| {
        let (d, created) = dialogs::find_or_create_private(c, 7, 1, 2, 100)?;
        assert!(created);
        let (d2, created) = dialogs::find_or_create_private(c, 7, 2, 1, 100)?;
        assert!(!created);
        assert_eq!(d.id, d2.id);
        let new = messages::NewMessage {
            id: Some("5f0c0c0c0c0c0c0c0c0c0c0c".into()),
            dialog_id: d.id.clone(),
            sender_id: 1,
            body: Some("hi".into()),
            date_sent: Some(1_700_000_000_000),
            ..Default::default()
        };
        let m = messages::create(c, &new, 200)?;
        assert_eq!((m.recipient_id, m.date_sent), (2, 1_700_000_000));
        // The same id again is idempotent.
        let again = messages::create(c, &new, 300)?;
        assert_eq!(again.seq, m.seq);
        assert_eq!(dialogs::unread_count(c, &d.id, 2, 0)?, 1);
        assert_eq!(dialogs::unread_count(c, &d.id, 1, 0)?, 0);
        Ok(())
    })
    .unwrap();
    let a = crate::db::object_id();
    let b = crate::db::object_id();
    assert!(a < b && cubechat_wire::chat::is_object_id(&a));
}

/// Times are kept in milliseconds (rendered in whole seconds): a dialog changed in the same
/// second as an `updated_at[gt]=T` value is found, and sub-second filter values split a
/// second the way the platform's millisecond timestamps do.
#[tokio::test]
async fn time_filters_see_changes_within_a_second() {
    let s = test_state();
    let u = users(&s, 2).await;
    let a = &u.tokens[0];
    let early = group(&s, a, &[u.ids[1]]).await;
    let late = group(&s, a, &[u.ids[1]]).await;
    let t: i64 = 1_700_000_000;
    s.db.with(|c| {
        c.execute(
            "UPDATE dialogs SET updated_at = ?2 WHERE id = ?1",
            rusqlite::params![early, t * 1000 + 200],
        )?;
        c.execute(
            "UPDATE dialogs SET updated_at = ?2 WHERE id = ?1",
            rusqlite::params![late, t * 1000 + 700],
        )
    })
    .unwrap();
    let list = |filter: String| {
        let s = s.clone();
        let a = a.clone();
        async move {
            let r = req(
                &s,
                &a,
                "GET",
                &format!("/chat/Dialog?{filter}&sort_asc=updated_at"),
                None,
            )
            .await;
            assert_eq!(r.status, 200, "{filter}: {}", r.text);
            let items = r.json()["items"].as_array().unwrap().clone();
            items
                .iter()
                .map(|d| d["_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    // Whole-second storage would have kept both at T and `gt T` would miss them.
    assert_eq!(
        list(format!("updated_at[gt]={t}")).await,
        vec![early.clone(), late.clone()]
    );
    assert_eq!(
        list(format!("updated_at[gt]={t}.5")).await,
        vec![late.clone()]
    );
    assert_eq!(
        list(format!("updated_at[gte]={t}.7")).await,
        vec![late.clone()]
    );
    assert_eq!(
        list(format!("updated_at[gt]={t}.7")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(format!("updated_at[lt]={t}.5")).await,
        vec![early.clone()]
    );
    assert_eq!(
        list(format!("updated_at[lte]={t}")).await,
        Vec::<String>::new()
    );
    let iso = cubechat_wire::time::iso8601(t).replace('Z', ".500Z");
    assert_eq!(
        list(format!("updated_at[gt]={iso}")).await,
        vec![late.clone()]
    );
    assert_eq!(
        list(format!("updated_at[lt]={iso}")).await,
        vec![early.clone()]
    );
    // Rendered as the platform renders it: whole seconds, `…Z`.
    let r = req(&s, a, "GET", "/chat/Dialog?sort_asc=updated_at", None).await;
    let rendered: Vec<Value> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["updated_at"].clone())
        .collect();
    let whole = json!(cubechat_wire::time::iso8601(t));
    assert_eq!(rendered, vec![whole.clone(), whole]);

    // `date_sent` is whole Unix seconds; a fractional filter value still splits correctly.
    let m = send(&s, a, &late, "hello there").await;
    s.db.with(|c| {
        c.execute(
            "UPDATE messages SET date_sent = ?2 WHERE id = ?1",
            rusqlite::params![m["_id"].as_str().unwrap(), t],
        )
    })
    .unwrap();
    for (filter, found) in [
        (format!("date_sent[lt]={t}.5"), true),
        (format!("date_sent[gt]={t}.5"), false),
        (format!("date_sent[gte]={t}"), true),
        (format!("date_sent[lt]={t}"), false),
    ] {
        let r = req(
            &s,
            a,
            "GET",
            &format!("/chat/Message?chat_dialog_id={late}&{filter}&mark_as_read=0"),
            None,
        )
        .await;
        assert_eq!(
            r.json()["items"].as_array().unwrap().len(),
            usize::from(found),
            "{filter}: {}",
            r.text
        );
    }
}
