//! Handler tests of users v1/online, the address book, push subscriptions and events, and
//! the push outbox rules (protocol reference §3.3–3.7).

#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};

use super::tests::{app_token, call, test_state, user_token, Reply};
use crate::state::AppState;

async fn req(state: &AppState, token: &str, method: &str, uri: &str, body: Option<Value>) -> Reply {
    call(state, method, uri, &[("CB-Token", token)], body).await
}

fn b64(text: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(
                    A[usize::try_from((n >> (18 - 6 * i)) & 63).unwrap()],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn subscription(channel: &str, udid: &str, env: &str) -> Value {
    json!({
        "notification_channel": channel,
        "push_token": {"environment": env, "client_identification_sequence": format!("token-{udid}-{channel}"),
                       "bundle_identifier": "com.example.chat"},
        "device": {"platform": if channel == "gcm" { "android" } else { "ios" }, "udid": udid},
    })
}

async fn subscribe(s: &AppState, token: &str, body: Value) -> u64 {
    let r = req(s, token, "POST", "/subscriptions.json", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()[0]["subscription"]["id"].as_u64().unwrap()
}

async fn outbox(s: &AppState, user: u64) -> Vec<Value> {
    let r = call(
        s,
        "GET",
        &format!("/_admin/push_outbox?user_id={user}"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn subscriptions_create_list_replace_delete() {
    let s = test_state();
    let (a, a_id) = user_token(&s, "alice").await;
    let (b, _) = user_token(&s, "bob").await;
    let r = req(
        &s,
        &a,
        "POST",
        "/subscriptions",
        Some(subscription("apns", "dev-1", "development")),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let first = r.json()[0]["subscription"].clone();
    assert_eq!(first["notification_channel"], json!({"name": "apns"}));
    assert_eq!(
        first["device"],
        json!({"udid": "dev-1", "platform": {"name": "ios"}})
    );
    let voip = subscribe(&s, &a, subscription("apns_voip", "dev-1", "production")).await;
    let fcm = subscribe(&s, &a, subscription("fcm", "dev-2", "production")).await;
    let web = subscribe(&s, &a, json!({"notification_channel": "web",
        "push_token": {"environment": "production", "web_endpoint": "https://push.example/x", "web_auth": "au", "web_p256dh": "pk"},
        "device": {"platform": "web", "udid": "browser-1"}})).await;
    let r = req(&s, &a, "GET", "/subscriptions.json", None).await;
    let channels: Vec<Value> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["subscription"]["notification_channel"]["name"].clone())
        .collect();
    assert_eq!(
        channels,
        vec![
            json!("apns"),
            json!("apns_voip"),
            json!("gcm"),
            json!("web")
        ]
    );
    // The same device and channel again: replaced, same id.
    let again = subscribe(&s, &a, subscription("apns", "dev-1", "production")).await;
    assert_eq!(again, first["id"].as_u64().unwrap());
    assert_eq!(
        req(&s, &a, "GET", "/subscriptions", None)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        4
    );
    // Bob cannot delete Alice's; Alice can, once.
    let r = req(&s, &b, "DELETE", &format!("/subscriptions/{voip}"), None).await;
    assert_eq!(r.status, 404);
    let r = req(
        &s,
        &a,
        "DELETE",
        &format!("/subscriptions/{voip}.json"),
        None,
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    let r = req(&s, &a, "DELETE", &format!("/subscriptions/{voip}"), None).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        req(&s, &b, "GET", "/subscriptions", None).await.json(),
        json!([])
    );
    // Bad input: typed 422s naming the field.
    for (body, field) in [
        (
            subscription("sms", "d", "development"),
            "notification_channel",
        ),
        (subscription("apns", "d", "staging"), "environment"),
        (
            json!({"notification_channel": "apns", "push_token": {"environment": "development"}, "device": {"udid": "d"}}),
            "client_identification_sequence",
        ),
        (
            json!({"notification_channel": "apns", "push_token": {"environment": "development", "client_identification_sequence": "t"}, "device": {}}),
            "udid",
        ),
        (
            json!({"notification_channel": "web", "push_token": {"environment": "development"}, "device": {"udid": "d"}}),
            "web_endpoint",
        ),
    ] {
        let r = req(&s, &a, "POST", "/subscriptions", Some(body)).await;
        assert_eq!(r.status, 422, "{field}: {}", r.text);
        assert!(r.json()["errors"][field].is_array(), "{field}: {}", r.text);
    }
    // An application session cannot subscribe; no session at all: 401.
    let app = app_token(&s).await;
    assert_eq!(
        req(&s, &app, "GET", "/subscriptions", None).await.status,
        403
    );
    assert_eq!(
        call(&s, "GET", "/subscriptions", &[], None).await.status,
        401
    );
    // Deleting the account deletes its subscriptions.
    let r = req(&s, &a, "DELETE", &format!("/users/{a_id}"), None).await;
    assert_eq!(r.status, 200);
    let left: i64 =
        s.db.with(|c| c.query_row("SELECT COUNT(*) FROM push_subscriptions", [], |r| r.get(0)))
            .unwrap();
    assert_eq!(left, 0, "{fcm} {web}");
}

#[tokio::test]
async fn events_reach_matching_subscriptions() {
    let s = test_state();
    let (a, a_id) = user_token(&s, "alice").await;
    let (b, b_id) = user_token(&s, "bob").await;
    let (c, c_id) = user_token(&s, "carol").await;
    let b_apns = subscribe(&s, &b, subscription("apns", "b-phone", "development")).await;
    let b_gcm = subscribe(&s, &b, subscription("gcm", "b-tablet", "development")).await;
    subscribe(&s, &b, subscription("apns_voip", "b-phone", "development")).await;
    subscribe(&s, &b, subscription("apns", "b-old", "production")).await;
    let c_apns = subscribe(&s, &c, subscription("apns", "c-phone", "development")).await;
    let payload = json!({"message": "Hello", "ios_badge": 2, "kind": "greeting"}).to_string();
    let r = req(
        &s,
        &a,
        "POST",
        "/events.json",
        Some(json!({"event": {
        "notification_type": "push", "environment": "development", "event_type": "one_shot",
        "message": b64(&payload), "user": {"ids": format!("{b_id},{c_id},999999")}}})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let ev = r.json()["event"].clone();
    assert_eq!(
        (
            ev["user_id"].clone(),
            ev["environment"].clone(),
            ev["kind"].clone()
        ),
        (json!(a_id), json!("development"), json!("API"))
    );
    let event_id = ev["id"].as_u64().unwrap();
    let ob = outbox(&s, b_id).await;
    let subs: Vec<u64> = ob
        .iter()
        .map(|d| d["subscription_id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        subs,
        vec![b_apns, b_gcm],
        "development only, no VoIP: {ob:?}"
    );
    let apns = &ob[0];
    assert_eq!(
        (
            apns["kind"].clone(),
            apns["event_id"].clone(),
            apns["sender_id"].clone()
        ),
        (json!("event"), json!(event_id), json!(a_id))
    );
    assert_eq!(apns["token"], "token-b-phone-apns");
    assert_eq!(apns["environment"], "development");
    assert_eq!(apns["bundle_identifier"], "com.example.chat");
    assert_eq!(apns["payload"]["aps"]["alert"]["body"], "Hello");
    assert_eq!(apns["payload"]["aps"]["badge"], 2);
    assert_eq!(apns["payload"]["kind"], "greeting");
    assert_eq!(
        ob[1]["payload"],
        json!({"data": {"message": "Hello", "ios_badge": "2", "kind": "greeting"}})
    );
    assert_eq!(outbox(&s, c_id).await[0]["subscription_id"], c_apns);
    // push_type picks one channel; ios_voip=1 picks VoIP; plain text becomes {"message"}.
    let ev = |body: Value| {
        let s = s.clone();
        let a = a.clone();
        async move { req(&s, &a, "POST", "/events", Some(json!({"event": body}))).await }
    };
    let r = ev(
        json!({"notification_type": "push", "environment": "development", "push_type": "gcm",
        "message": b64("just text"), "user": {"ids": [b_id]}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = ev(json!({"notification_type": "push", "environment": "development",
        "message": b64(&json!({"message": "call", "ios_voip": 1}).to_string()), "user": {"ids": b_id}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let ob = outbox(&s, b_id).await;
    assert_eq!(ob.len(), 4);
    assert_eq!(ob[2]["payload"], json!({"data": {"message": "just text"}}));
    assert_eq!(ob[3]["channel"], "apns_voip");
    // A deleted subscription gets nothing.
    req(&s, &c, "DELETE", &format!("/subscriptions/{c_apns}"), None).await;
    ev(json!({"notification_type": "push", "environment": "development", "message": b64("x"), "user": {"ids": c_id}})).await;
    assert_eq!(outbox(&s, c_id).await.len(), 1);
    // Bad input.
    for (body, field) in [
        (
            json!({"notification_type": "email", "environment": "development", "message": b64("x"), "user": {"ids": "1"}}),
            "notification_type",
        ),
        (
            json!({"notification_type": "push", "environment": "dev", "message": b64("x"), "user": {"ids": "1"}}),
            "environment",
        ),
        (
            json!({"notification_type": "push", "environment": "development", "push_type": "sms", "message": b64("x"), "user": {"ids": "1"}}),
            "push_type",
        ),
        (
            json!({"notification_type": "push", "environment": "development", "message": "not base64!", "user": {"ids": "1"}}),
            "message",
        ),
        (
            json!({"notification_type": "push", "environment": "development", "message": b64("x"), "user": {"ids": ""}}),
            "user_ids",
        ),
        (
            json!({"notification_type": "push", "environment": "development", "message": b64("x"), "user": {"ids": "1,x"}}),
            "user_ids",
        ),
        (
            json!({"notification_type": "push", "environment": "development", "message": b64("x")}),
            "user_ids",
        ),
    ] {
        let r = ev(body).await;
        assert_eq!(r.status, 422, "{field}: {}", r.text);
        assert!(r.json()["errors"][field].is_array(), "{field}: {}", r.text);
    }
}

/// Chat messages: offline recipients get one delivery per subscription (no VoIP), with the
/// universal chat fields; silent messages, muted dialogs, privacy blocks and deleted
/// subscriptions get none.
#[tokio::test]
async fn chat_messages_fill_the_outbox_by_the_rules() {
    let s = test_state();
    let (a, a_id) = user_token(&s, "alice").await;
    let (b, b_id) = user_token(&s, "bob").await;
    req(
        &s,
        &a,
        "PUT",
        &format!("/users/{a_id}"),
        Some(json!({"user": {"full_name": "Alice A"}})),
    )
    .await;
    let apns = subscribe(&s, &b, subscription("apns", "b-phone", "production")).await;
    let gcm = subscribe(&s, &b, subscription("gcm", "b-tablet", "development")).await;
    subscribe(&s, &b, subscription("apns_voip", "b-phone", "production")).await;
    let r = req(
        &s,
        &a,
        "POST",
        "/chat/Dialog",
        Some(json!({"type": 3, "occupants_ids": b_id.to_string()})),
    )
    .await;
    let dialog = r.json()["_id"].as_str().unwrap().to_owned();
    let send = |text: &str, extra: Value| {
        let (s, a, dialog) = (s.clone(), a.clone(), dialog.clone());
        let mut body = json!({"chat_dialog_id": dialog, "message": text, "send_to_chat": 1});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        async move {
            let r = req(&s, &a, "POST", "/chat/Message", Some(body)).await;
            assert_eq!(r.status, 201, "{}", r.text);
            r.json()["_id"].as_str().unwrap().to_owned()
        }
    };
    let m1 = send("hello bob", json!({"mood": "happy"})).await;
    let ob = outbox(&s, b_id).await;
    assert_eq!(
        ob.iter()
            .map(|d| d["subscription_id"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![apns, gcm]
    );
    for d in &ob {
        assert_eq!(
            (
                d["kind"].clone(),
                d["message_id"].clone(),
                d["dialog_id"].clone(),
                d["sender_id"].clone()
            ),
            (json!("message"), json!(m1), json!(dialog), json!(a_id))
        );
    }
    assert_eq!(
        ob[0]["payload"]["aps"]["alert"],
        json!({"title": "Alice A", "body": "hello bob"})
    );
    assert_eq!(ob[0]["payload"]["dialog_id"], json!(dialog));
    assert_eq!(ob[0]["payload"]["user_id"], json!(a_id.to_string()));
    assert_eq!(ob[0]["payload"]["mood"], "happy");
    assert_eq!(
        ob[1]["payload"],
        json!({"data": {"message": "hello bob", "dialog_id": dialog, "message_id": m1,
        "user_id": a_id.to_string(), "title": "Alice A", "mood": "happy"}})
    );
    assert!(outbox(&s, a_id).await.is_empty(), "never the sender");
    // What cubechat's parser (no client, no connection) reads from each delivered payload.
    for d in &ob {
        let p = cubechat_wire::push::parse_chat_push(&d["payload"].to_string()).unwrap();
        assert_eq!(
            (
                p.dialog_id.as_str(),
                p.message_id.as_deref(),
                p.sender_id,
                p.text.as_deref()
            ),
            (dialog.as_str(), Some(m1.as_str()), a_id, Some("hello bob")),
            "{}",
            d["channel"]
        );
        assert_eq!(p.custom.get("mood").map(String::as_str), Some("happy"));
    }

    // Silent: nothing.
    send("psst", json!({"silent": 1})).await;
    assert_eq!(outbox(&s, b_id).await.len(), 2);
    // Dialog notifications off: nothing; on again: a delivery.
    let r = req(
        &s,
        &b,
        "PUT",
        &format!("/chat/Dialog/{dialog}/notifications"),
        Some(json!({"enabled": 0})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    send("muted", json!({})).await;
    assert_eq!(outbox(&s, b_id).await.len(), 2);
    req(
        &s,
        &b,
        "PUT",
        &format!("/chat/Dialog/{dialog}/notifications"),
        Some(json!({"enabled": 1})),
    )
    .await;
    send("unmuted", json!({})).await;
    assert_eq!(outbox(&s, b_id).await.len(), 4);
    // Bob blocks Alice (his default privacy list): nothing.
    let alice_jid = s.xmpp.user_jid((7, a_id));
    s.db.with(|c| {
        let list = cubechat_wire::stanza::PrivacyList {
            name: "block".into(),
            items: vec![cubechat_wire::stanza::PrivacyItem::deny_jid(
                &alice_jid, 1, false,
            )],
        };
        crate::db::privacy::put(c, 7, b_id, &list, 0)?;
        crate::db::privacy::set_default(c, 7, b_id, Some("block"))
    })
    .unwrap();
    send("blocked", json!({})).await;
    assert_eq!(outbox(&s, b_id).await.len(), 4);
    s.db.with(|c| crate::db::privacy::set_default(c, 7, b_id, None))
        .unwrap();
    // Deleted subscriptions: only the one left gets it.
    req(&s, &b, "DELETE", &format!("/subscriptions/{apns}"), None).await;
    let m = send("one left", json!({})).await;
    let ob = outbox(&s, b_id).await;
    assert_eq!(ob.len(), 5);
    assert_eq!(
        (
            ob[4]["subscription_id"].clone(),
            ob[4]["message_id"].clone()
        ),
        (json!(gcm), json!(m))
    );
    // Online and active: nothing.
    let core = s.xmpp.bind((7, b_id), Some("phone"));
    s.xmpp.presence_changed((7, b_id), "phone", true);
    send("online now", json!({})).await;
    assert_eq!(outbox(&s, b_id).await.len(), 5);
    s.xmpp.end(core);
    // The admin route answers loopback peers only (the test peer is 127.0.0.1) and lists all.
    let all = call(&s, "GET", "/_admin/push_outbox", &[], None)
        .await
        .json();
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn address_book_upload_read_registered() {
    let s = test_state();
    let (a, a_id) = user_token(&s, "alice").await;
    let (b, b_id) = user_token(&s, "bob").await;
    let (c, c_id) = user_token(&s, "carol").await;
    req(
        &s,
        &b,
        "PUT",
        &format!("/users/{b_id}"),
        Some(json!({"user": {"phone": "+1 555 010 2030", "full_name": "Bob B"}})),
    )
    .await;
    req(
        &s,
        &c,
        "PUT",
        &format!("/users/{c_id}"),
        Some(json!({"user": {"phone": "380671234567"}})),
    )
    .await;
    let up = |body: Value| {
        let (s, a) = (s.clone(), a.clone());
        async move { req(&s, &a, "POST", "/address_book.json", Some(body)).await }
    };
    let r = up(json!({"contacts": [
        {"name": "Bobby", "phone": "+1 (555) 010-2030"},
        {"name": "Nobody", "phone": "12ab"},
        {"name": "Carol", "phone": "380-67-123-4567"},
        {"name": "Dan", "phone": "+44 20 7946 0000"},
    ]}))
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"created": 3, "updated": 0, "deleted": 0, "rejected": {"1": ["phone is invalid"]}})
    );
    let r = req(&s, &a, "GET", "/address_book", None).await;
    assert_eq!(
        r.json(),
        json!([
            {"name": "Bobby", "phone": "+15550102030"},
            {"name": "Dan", "phone": "+442079460000"},
            {"name": "Carol", "phone": "380671234567"},
        ])
    );
    let r = req(
        &s,
        &a,
        "GET",
        "/address_book/registered_users.json?compact=1",
        None,
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"items": [
            {"id": b_id, "phone": "+1 555 010 2030", "address_book_name": "Bobby"},
            {"id": c_id, "phone": "380671234567", "address_book_name": "Carol"},
        ]})
    );
    let r = req(
        &s,
        &a,
        "GET",
        "/address_book/registered_users?compact=0",
        None,
    )
    .await;
    assert_eq!(r.json()["items"][0]["full_name"], "Bob B");
    assert_eq!(r.json()["items"][0]["address_book_name"], "Bobby");
    assert_eq!(r.json()["items"][0]["login"], "bob");
    // Merge: rename one, destroy one.
    let r = up(json!({"contacts": [{"name": "Robert", "phone": "+15550102030"}, {"name": "x", "phone": "380671234567", "destroy": 1}]})).await;
    assert_eq!(
        r.json(),
        json!({"created": 0, "updated": 1, "deleted": 1, "rejected": {}})
    );
    // A device book, replaced with force.
    up(json!({"udid": "phone-1", "contacts": [{"name": "A", "phone": "+1111111"}, {"name": "B", "phone": "+2222222"}]})).await;
    let r = up(
        json!({"udid": "phone-1", "force": 1, "contacts": [{"name": "B2", "phone": "+2222222"}]}),
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"created": 0, "updated": 1, "deleted": 1, "rejected": {}})
    );
    let r = req(&s, &a, "GET", "/address_book?udid=phone-1", None).await;
    assert_eq!(r.json(), json!([{"name": "B2", "phone": "+2222222"}]));
    let r = req(
        &s,
        &a,
        "GET",
        "/address_book/registered_users?compact=1&udid=phone-1",
        None,
    )
    .await;
    assert_eq!(r.json(), json!({"items": []}));
    // Without udid: every book.
    let r = req(&s, &a, "GET", "/address_book", None).await;
    assert_eq!(r.json().as_array().unwrap().len(), 3);
    // Bad input.
    for body in [
        json!({}),
        json!({"contacts": "x"}),
        json!({"contacts": vec![json!({"name": "n", "phone": "+1234567"}); 1001]}),
    ] {
        let r = up(body).await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert!(r.json()["errors"]["contacts"].is_array());
    }
    let app = app_token(&s).await;
    assert_eq!(
        req(&s, &app, "GET", "/address_book", None).await.status,
        403
    );
    let _ = a_id;
}

#[tokio::test]
async fn users_v1_lookups_and_online() {
    let s = test_state();
    let mut ids = Vec::new();
    for (login, name, tags) in [
        ("ann", "Ann Lee", "red,blue"),
        ("andy", "Andy Lee", "blue"),
        ("bert", "Bert", "green"),
        ("carl", "carl", ""),
    ] {
        let (t, id) = user_token(&s, login).await;
        let r = req(&s, &t, "PUT", &format!("/users/{id}"), Some(json!({"user": {"full_name": name, "tag_list": tags.split(',').filter(|t| !t.is_empty()).collect::<Vec<_>>(), "email": format!("{login}@x.io")}}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        ids.push(id);
    }
    let app = app_token(&s).await;
    let get = |uri: String| {
        let (s, app) = (s.clone(), app.clone());
        async move { req(&s, &app, "GET", &uri, None).await }
    };
    let r = get("/users/by_login.json?login=andy".into()).await;
    assert_eq!(r.json()["user"]["id"], ids[1]);
    assert_eq!(get("/users/by_login?login=nobody".into()).await.status, 404);
    assert_eq!(get("/users/by_login".into()).await.status, 422);
    let r = get("/users/by_email?email=bert%40x.io".into()).await;
    assert_eq!(r.json()["user"]["login"], "bert");
    let logins = |v: &Value| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["user"]["login"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let r = get("/users/by_full_name?full_name=lee".into()).await;
    assert_eq!(logins(&r.json()), vec!["ann", "andy"]);
    assert_eq!(
        (
            r.json()["current_page"].clone(),
            r.json()["per_page"].clone(),
            r.json()["total_entries"].clone()
        ),
        (json!(1), json!(10), json!(2))
    );
    let r = get("/users/by_tags?tags=blue,green&per_page=2&page=2".into()).await;
    assert_eq!(logins(&r.json()), vec!["bert"]);
    assert_eq!(r.json()["total_entries"], 3);
    assert_eq!(r.json()["user"], Value::Null);
    let r = get("/users/by_tags?tags=blu".into()).await;
    assert_eq!(r.json()["total_entries"], 0, "whole tags only");
    assert_eq!(r.json()["items"][0]["user"]["user_tags"], Value::Null);
    let r = get(format!(
        "/users?filter[]=number+id+in+{}%2C{}&order=desc+number+id",
        ids[0], ids[2]
    ))
    .await;
    assert_eq!(logins(&r.json()), vec!["bert", "ann"]);
    let r = get("/users?filter[]=string+login+eq+carl".into()).await;
    assert_eq!(logins(&r.json()), vec!["carl"]);
    let r = get(format!("/users?id[in]={},{}", ids[1], ids[3])).await;
    assert_eq!(logins(&r.json()), vec!["andy", "carl"]);
    for bad in [
        "/users?filter[]=number+id+in+x",
        "/users?filter[]=number+nope+eq+1",
        "/users?filter[]=id+in",
        "/users?filter[]=blob+id+eq+1",
    ] {
        assert_eq!(get(bad.into()).await.status, 422, "{bad}");
    }
    let r = get(format!("/users/{}", ids[0])).await;
    assert_eq!(r.json()["user"]["user_tags"], "red,blue");
    // Online: users with an XMPP resource.
    assert_eq!(
        get("/users/online?count=true".into()).await.json(),
        json!({"count": 0})
    );
    let core = s.xmpp.bind((7, ids[2]), Some("r"));
    s.xmpp.presence_changed((7, ids[2]), "r", true);
    assert_eq!(
        get("/users/online.json?count=1".into()).await.json(),
        json!({"count": 1})
    );
    let r = get("/users/online?limit=10&offset=0".into()).await;
    assert_eq!(r.json()["users"][0]["login"], "bert");
    assert_eq!(
        get("/users/online?offset=1".into()).await.json(),
        json!({"users": []})
    );
    s.xmpp.end(core);
    assert_eq!(
        call(&s, "GET", "/users/online", &[], None).await.status,
        401
    );
}
