//! The push outbox end to end (protocol reference §3.6–3.7): the binary as a process, messages
//! sent over XMPP by the raw client of `support/raw_client.rs`, subscriptions and the outbox
//! over REST. A ping answered on the sender's stream means its earlier messages were routed
//! (one session's stanzas are handled in order), so no test waits on a timer.
#![allow(clippy::unwrap_used, dead_code)]

include!("support/raw_client.rs");

impl Server {
    async fn outbox(&self, u: &User) -> Vec<Value> {
        let v: Value = self
            .http
            .get(format!("{}/_admin/push_outbox?user_id={}", self.api, u.id))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["items"].as_array().unwrap().clone()
    }

    async fn subscribe(&self, u: &User, channel: &str, udid: &str) -> u64 {
        let v = self
            .rest(
                u,
                reqwest::Method::POST,
                "/subscriptions",
                json!({"notification_channel": channel,
                       "push_token": {"environment": "production", "client_identification_sequence": format!("{udid}-token")},
                       "device": {"platform": "ios", "udid": udid}}),
            )
            .await;
        v[0]["subscription"]["id"].as_u64().unwrap()
    }
}

impl Client {
    /// A ping round trip: everything sent before it has been routed.
    async fn settle(&mut self) {
        let pong = self.iq_set("<ping xmlns='urn:xmpp:ping'/>").await;
        assert_eq!(pong.attr("type"), Some("result"));
    }
}

#[tokio::test]
async fn xmpp_messages_to_offline_users_reach_their_subscriptions() {
    let s = start().await;
    let (a, b, c) = (
        s.user("alice").await,
        s.user("bob").await,
        s.user("carol").await,
    );
    let b_phone = s.subscribe(&b, "apns", "b-phone").await;
    s.subscribe(&b, "apns_voip", "b-phone").await;
    let c_phone = s.subscribe(&c, "gcm", "c-phone").await;
    let mut ca = s.online(&a).await;
    let save = "<save_to_history>1</save_to_history>";

    // 1-1 to offline b: one APNs delivery (no VoIP); silent: none.
    let m1 = ca
        .chat(&s.jid(&b), "hi bob", &format!("{save}<mood>ok</mood>"))
        .await;
    ca.chat(&s.jid(&b), "quiet", &format!("{save}<silent>1</silent>"))
        .await;
    ca.settle().await;
    let ob = s.outbox(&b).await;
    assert_eq!(ob.len(), 1, "{ob:?}");
    let d = &ob[0];
    assert_eq!(
        (
            d["subscription_id"].clone(),
            d["channel"].clone(),
            d["token"].clone(),
            d["kind"].clone(),
            d["message_id"].clone(),
            d["sender_id"].clone()
        ),
        (
            json!(b_phone),
            json!("apns"),
            json!("b-phone-token"),
            json!("message"),
            json!(m1),
            json!(a.id)
        )
    );
    assert_eq!(d["payload"]["aps"]["alert"]["body"], "hi bob");
    assert_eq!(d["payload"]["mood"], "ok");
    assert_eq!(d["payload"]["user_id"], json!(a.id.to_string()));
    let dialog = d["dialog_id"].as_str().unwrap().to_owned();
    assert_eq!(d["payload"]["dialog_id"], json!(dialog));

    // Group: offline b and c get one each, online active a (the sender) none.
    let (gid, room) = s.group(&a, &[&b, &c]).await;
    let g1 = ca.groupchat_message(&room, "group hi").await;
    ca.settle().await;
    let last = |v: Vec<Value>| v.last().cloned().unwrap();
    let (db, dc) = (last(s.outbox(&b).await), last(s.outbox(&c).await));
    assert_eq!(
        (db["message_id"].clone(), db["dialog_id"].clone()),
        (json!(g1), json!(gid))
    );
    assert_eq!(
        (
            dc["subscription_id"].clone(),
            dc["payload"]["data"]["message"].clone()
        ),
        (json!(c_phone), json!("group hi"))
    );
    assert!(s.outbox(&a).await.is_empty());

    // b online and active: no more deliveries; b deletes the subscription and goes offline:
    // none either.
    let mut cb = s.online(&b).await;
    ca.chat(&s.jid(&b), "you are here", save).await;
    cb.expect("message", |e| {
        e.get_child("body", NS)
            .is_some_and(|x| x.text() == "you are here")
    })
    .await;
    s.http
        .delete(format!("{}/subscriptions/{b_phone}", s.api))
        .header("CB-Token", &b.token)
        .send()
        .await
        .unwrap();
    cb.close().await;
    ca.chat(&s.jid(&b), "after unsubscribe", save).await;
    ca.settle().await;
    assert_eq!(s.outbox(&b).await.len(), 2);
    ca.close().await;
}

impl Client {
    async fn groupchat_message(&mut self, room: &str, body: &str) -> String {
        let id = self.next_id();
        self.send(&format!(
            "<message xmlns='jabber:client' type='groupchat' to='{room}' id='{id}'><body>{body}</body></message>"
        ))
        .await;
        id
    }
}
