//! cubeserver's privacy lists, last activity and its subscription, mobile mode with the push
//! outbox, and group presence (protocol reference §6.7–6.10), end to end: the binary as a
//! process, driven by the raw client of `support/raw_client.rs` (tokio-xmpp's xmlstream initiator +
//! rustls trusting the ready line's CA) and by REST.
#![allow(clippy::unwrap_used, dead_code)]

include!("support/raw_client.rs");

const NS_PRIVACY: &str = "jabber:iq:privacy";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_STREAMING: &str = "https://connectycube.com/protocol/status_streaming";

impl Server {
    /// `GET /_admin/pushes?user_id=N` → the recorded pushes' message ids.
    async fn pushes(&self, u: &User) -> Vec<Value> {
        let v: Value = self
            .http
            .get(format!("{}/_admin/pushes?user_id={}", self.api, u.id))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["items"].as_array().unwrap().clone()
    }
}

impl Client {
    async fn iq(&mut self, kind: &str, to: Option<&str>, payload: &str) -> Element {
        let id = format!("iq{}", self.next_id());
        let to = to.map(|t| format!(" to='{t}'")).unwrap_or_default();
        self.send(&format!(
            "<iq xmlns='jabber:client' type='{kind}' id='{id}'{to}>{payload}</iq>"
        ))
        .await;
        self.expect("iq answer", |e| e.attr("id") == Some(id.as_str()))
            .await
    }

    async fn privacy(&mut self, kind: &str, inner: &str) -> Element {
        self.iq(
            kind,
            None,
            &format!("<query xmlns='{NS_PRIVACY}'>{inner}</query>"),
        )
        .await
    }

    async fn groupchat(&mut self, room: &str, body: &str) -> String {
        let id = self.next_id();
        self.send(&format!(
            "<message xmlns='jabber:client' type='groupchat' to='{room}' id='{id}'><body>{body}</body></message>"
        ))
        .await;
        id
    }

    /// Nothing with a body (and no error) arrives for a short while.
    async fn quiet(&mut self) {
        let got = self.drain(Duration::from_millis(400)).await;
        assert!(
            got.iter()
                .all(|e| body_of(e).is_none() && e.attr("type") != Some("error")),
            "{} got {:?}",
            self.jid,
            got.iter().map(String::from).collect::<Vec<_>>()
        );
    }

    async fn join(&mut self, room: &str, uid: u64) -> Element {
        self.send(&format!(
            "<presence xmlns='jabber:client' id='j:join' to='{room}/{uid}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
        ))
        .await;
        self.expect("self presence", |e| {
            e.name() == "presence" && e.attr("id") == Some("j:join")
        })
        .await
    }
}

fn error_code(e: &Element) -> Option<String> {
    child(e, "error")
        .and_then(|e| e.attr("code"))
        .map(str::to_owned)
}

fn seconds(e: &Element) -> u64 {
    child(e, "query")
        .and_then(|q| q.attr("seconds"))
        .unwrap()
        .parse()
        .unwrap()
}

fn block_items(s: &Server, one_way: &User, two_way: &User) -> String {
    let four = "<message/><presence-in/><presence-out/><iq/>";
    format!(
        "<list name='blocked'>\
         <item type='jid' value='{}' action='deny' order='1'>{four}</item>\
         <item type='jid' value='muc.{}/{}' action='deny' order='2'>{four}</item>\
         <item type='jid' value='{}' action='deny' order='3'/>\
         <item type='jid' value='muc.{}/{}' action='deny' order='4'/>\
         </list>",
        s.jid(one_way),
        s.domain,
        one_way.id,
        s.jid(two_way),
        s.domain,
        two_way.id
    )
}

#[tokio::test]
async fn privacy_lists_block_one_way_two_way_and_in_groups() {
    let s = start().await;
    let (a, b, c) = (
        s.user("alice").await,
        s.user("bob").await,
        s.user("carol").await,
    );
    let (_, room) = s.group(&a, &[&b, &c]).await;
    let (mut ca, mut cb, mut cc) = (s.online(&a).await, s.online(&b).await, s.online(&c).await);

    // a blocks b one way and c two ways, then makes the list the default
    let r = ca.privacy("set", &block_items(&s, &b, &c)).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", String::from(&r));
    let r = ca.privacy("set", "<default name='blocked'/>").await;
    assert_eq!(r.attr("type"), Some("result"));

    // names and the list, items in stored order
    let r = ca.privacy("get", "").await;
    let names: Vec<String> = child(&r, "query")
        .unwrap()
        .children()
        .map(|c| format!("{}={}", c.name(), c.attr("name").unwrap()))
        .collect();
    assert_eq!(names, ["default=blocked", "list=blocked"]);
    let r = ca.privacy("get", "<list name='blocked'/>").await;
    let values: Vec<&str> = child(child(&r, "query").unwrap(), "list")
        .unwrap()
        .children()
        .map(|i| i.attr("value").unwrap())
        .collect();
    assert_eq!(values[0], s.jid(&b));
    assert_eq!(values[2], s.jid(&c));

    // one-way: b's 1-1 message bounces with the legacy code, a can still write to b
    let (aj, bj, cj) = (s.jid(&a), s.jid(&b), s.jid(&c));
    let mid = cb.chat(&aj, "from b", "").await;
    let err = cb
        .expect("error", |e| e.attr("type") == Some("error"))
        .await;
    assert_eq!(err.attr("id"), Some(mid.as_str()));
    assert_eq!(error_code(&err).as_deref(), Some("503"));
    assert!(child(&err, "error")
        .unwrap()
        .get_child("service-unavailable", "urn:ietf:params:xml:ns:xmpp-stanzas")
        .is_some());
    let from_a = ca.chat(&bj, "from a to b", "").await;
    cb.expect("a's message", is_chat_with("from a to b")).await;
    // b's automatic delivered marker and typing to a vanish without an error
    cb.send(&format!(
        "<message xmlns='jabber:client' type='chat' to='{aj}' id='mk1'><received xmlns='urn:xmpp:chat-markers:0' id='{from_a}'/></message>"
    ))
    .await;
    cb.send(&format!(
        "<message xmlns='jabber:client' type='chat' to='{aj}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
    ))
    .await;
    cb.quiet().await;
    assert!(ca
        .drain(Duration::from_millis(300))
        .await
        .iter()
        .all(|e| e.name() != "message"));

    // two-way: neither a nor c can write
    cc.chat(&aj, "from c", "").await;
    assert_eq!(
        error_code(
            &cc.expect("error", |e| e.attr("type") == Some("error"))
                .await
        )
        .as_deref(),
        Some("503")
    );
    ca.chat(&cj, "from a to c", "").await;
    assert_eq!(
        error_code(
            &ca.expect("error", |e| e.attr("type") == Some("error"))
                .await
        )
        .as_deref(),
        Some("503")
    );
    ca.quiet().await;
    cc.quiet().await;

    // groups: b's message silently skips a; a's message skips c (two-way)
    cb.groupchat(&room, "b in group").await;
    cc.expect("b's group message", is_chat_with("b in group"))
        .await;
    cb.expect("own echo", is_chat_with("b in group")).await;
    cb.quiet().await;
    ca.quiet().await;
    ca.groupchat(&room, "a in group").await;
    cb.expect("a's group message", is_chat_with("a in group"))
        .await;
    cc.quiet().await;

    // the default list cannot be edited while in use (the cloud's refusal, as `conflict`)
    let r = ca
        .privacy(
            "set",
            &format!("<list name='blocked'><item type='jid' value='{bj}' action='deny' order='1'/></list>"),
        )
        .await;
    assert_eq!(error_code(&r).as_deref(), Some("409"));
    let text = child(child(&r, "error").unwrap(), "text").unwrap().text();
    assert_eq!(
        text,
        "Can not modify list while being in use by other session"
    );

    // decline → update (unblock c) → default again
    assert_eq!(
        ca.privacy("set", "<default/>").await.attr("type"),
        Some("result")
    );
    cb.chat(&aj, "declined", "").await;
    ca.expect("b's message after decline", is_chat_with("declined"))
        .await;
    let r = ca
        .privacy(
            "set",
            &format!("<list name='blocked'><item type='jid' value='{bj}' action='deny' order='1'><message/><presence-in/><presence-out/><iq/></item></list>"),
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    assert_eq!(
        ca.privacy("set", "<default name='blocked'/>")
            .await
            .attr("type"),
        Some("result")
    );
    cc.chat(&aj, "c again", "").await;
    ca.expect("c's message", is_chat_with("c again")).await;
    cb.chat(&aj, "still blocked", "").await;
    cb.expect("error", |e| e.attr("type") == Some("error"))
        .await;

    // a list needs an item; the default cannot be deleted; others can
    let r = ca.privacy("set", "<default/>").await;
    assert_eq!(r.attr("type"), Some("result"));
    let r = ca.privacy("set", "<list name='blocked'/>").await;
    assert_eq!(r.attr("type"), Some("result"), "deleted");
    let r = ca.privacy("get", "<list name='blocked'/>").await;
    assert_eq!(error_code(&r).as_deref(), Some("404"));
    cb.chat(&aj, "free", "").await;
    ca.expect("b's message", is_chat_with("free")).await;
    for cl in [ca, cb, cc] {
        cl.close().await;
    }
}

#[tokio::test]
async fn last_activity_and_status_streaming() {
    let s = start().await;
    let (a, b) = (s.user("alice").await, s.user("bob").await);
    let bj = s.jid(&b);
    let mut ca = s.online(&a).await;

    // never logged in: counted from sign-up, never 0
    let r = ca
        .iq("get", Some(&bj), "<query xmlns='jabber:iq:last'/>")
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    assert_eq!(r.attr("from"), Some(bj.as_str()));
    assert!(seconds(&r) >= 1);
    let r = ca
        .iq(
            "get",
            Some(&format!("999999-{APP}@{}", s.domain)),
            "<query xmlns='jabber:iq:last'/>",
        )
        .await;
    assert_eq!(error_code(&r).as_deref(), Some("404"));

    // subscribe; b logs in (0) and out (N > 0)
    let sub =
        |on: bool| format!("<subscribe xmlns='{NS_STREAMING}' user_jid='{bj}' enable='{on}'/>");
    assert_eq!(
        ca.iq("set", None, &sub(true)).await.attr("type"),
        Some("result")
    );
    let cb = s.online(&b).await;
    let is_event = |e: &Element| {
        e.name() == "iq" && child(e, "query").is_some_and(|q| q.ns() == "jabber:iq:last")
    };
    let ev = ca.expect("login event", is_event).await;
    assert_eq!(ev.attr("type"), Some("result"));
    assert_eq!(ev.attr("from"), Some(bj.as_str()));
    assert_eq!(seconds(&ev), 0);
    let r = ca
        .iq("get", Some(&bj), "<query xmlns='jabber:iq:last'/>")
        .await;
    assert_eq!(seconds(&r), 0, "online now");
    cb.close().await;
    let ev = ca.expect("logout event", is_event).await;
    assert!(seconds(&ev) >= 1);

    // the JS SDK's error echo of an event is not a query: no answer
    ca.send(&format!(
        "<iq xmlns='jabber:client' type='error' id='echo1' to='{bj}'><query xmlns='jabber:iq:last' seconds='0'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ))
    .await;
    assert!(ca.drain(Duration::from_millis(400)).await.is_empty());

    // seconds grow after the logout
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = ca
        .iq("get", Some(&bj), "<query xmlns='jabber:iq:last'/>")
        .await;
    assert!(seconds(&r) >= 2, "{}", String::from(&r));

    // subscriptions belong to the session: after a reconnect the watcher subscribes again
    ca.close().await;
    let mut ca = s.online(&a).await;
    let cb = s.online(&b).await;
    assert!(
        ca.drain(Duration::from_millis(400)).await.is_empty(),
        "old subscription gone"
    );
    assert_eq!(
        ca.iq("set", None, &sub(true)).await.attr("type"),
        Some("result")
    );
    cb.close().await;
    let ev = ca.expect("logout event after reconnect", is_event).await;
    assert_eq!(ev.attr("from"), Some(bj.as_str()));
    assert_eq!(
        ca.iq("set", None, &sub(false)).await.attr("type"),
        Some("result")
    );
    let cb = s.online(&b).await;
    assert!(
        ca.drain(Duration::from_millis(400)).await.is_empty(),
        "unsubscribed"
    );
    cb.close().await;
    ca.close().await;
}

#[tokio::test]
async fn push_outbox_offline_inactive_silent_and_muted() {
    let s = start().await;
    let (a, b, c) = (
        s.user("alice").await,
        s.user("bob").await,
        s.user("carol").await,
    );
    let bj = s.jid(&b);
    let mut ca = s.online(&a).await;
    let save = "<save_to_history>1</save_to_history>";

    // b offline: a push; silent: none
    let m1 = ca.chat(&bj, "offline", save).await;
    ca.chat(&bj, "silent", &format!("{save}<silent>1</silent>"))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let p = s.pushes(&b).await;
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["message_id"], m1.as_str());
    assert_eq!(p[0]["sender_id"], a.id);
    assert_eq!(p[0]["recipient_id"], b.id);
    let dialog = p[0]["dialog_id"].as_str().unwrap().to_owned();
    assert!(!dialog.is_empty());

    // online and active: none; inactive (mobile mode): a push, but not for typing
    let mut cb = s.online(&b).await;
    ca.chat(&bj, "active", save).await;
    cb.expect("message", is_chat_with("active")).await;
    let mobile =
        |on: bool| format!("<mobile xmlns='http://tigase.org/protocol/mobile#v2' enable='{on}'/>");
    assert_eq!(
        cb.iq("set", None, &mobile(true)).await.attr("type"),
        Some("result")
    );
    let m2 = ca.chat(&bj, "inactive", save).await;
    cb.expect("message while inactive", is_chat_with("inactive"))
        .await;
    ca.send(&format!(
        "<message xmlns='jabber:client' type='chat' to='{bj}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
    ))
    .await;
    assert_eq!(
        cb.iq("set", None, &mobile(false)).await.attr("type"),
        Some("result")
    );
    ca.chat(&bj, "active again", save).await;
    cb.expect("message", is_chat_with("active again")).await;
    let ids: Vec<String> = s
        .pushes(&b)
        .await
        .iter()
        .map(|p| p["message_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [m1.clone(), m2.clone()]);

    // notifications off for the dialog: no push even offline
    s.rest(
        &b,
        reqwest::Method::PUT,
        &format!("/chat/Dialog/{dialog}/notifications"),
        json!({"enabled": 0}),
    )
    .await;
    cb.close().await;
    ca.chat(&bj, "muted", save).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.pushes(&b).await.len(), 2);

    // groups: offline c gets a push, online active b none
    let (gid, room) = s.group(&a, &[&b, &c]).await;
    let mut cb = s.online(&b).await;
    let g1 = ca.groupchat(&room, "group hello").await;
    cb.expect("group message", is_chat_with("group hello"))
        .await;
    let p = s.pushes(&c).await;
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["message_id"], g1.as_str());
    assert_eq!(p[0]["dialog_id"], gid.as_str());
    assert_eq!(s.pushes(&b).await.len(), 2);
    assert!(s.pushes(&a).await.is_empty(), "never for the sender");

    // REST messages sent to chat count too
    let r = s
        .rest(
            &a,
            reqwest::Method::POST,
            "/chat/Message",
            json!({"chat_dialog_id": gid, "message": "via rest", "send_to_chat": 1}),
        )
        .await;
    cb.expect("REST message", is_chat_with("via rest")).await;
    let p = s.pushes(&c).await;
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(p[1]["message_id"], r["_id"]);
    assert_eq!(s.pushes(&b).await.len(), 2);
    cb.close().await;
    ca.close().await;
}

#[tokio::test]
async fn group_presence_join_leave_kick_and_disconnect() {
    let s = start().await;
    let (a, b) = (s.user("alice").await, s.user("bob").await);
    let (dialog_id, room) = s.group(&a, &[&b]).await;
    let (mut ca, mut cb) = (s.online(&a).await, s.online(&b).await);
    let from_b = format!("{room}/{}", b.id);
    let from_a = format!("{room}/{}", a.id);

    let me = ca.join(&room, a.id).await;
    assert_eq!(me.attr("from"), Some(from_a.as_str()));

    // b joins: b first gets a's presence (standard, no quirk), then its own (with the quirk)
    cb.send(&format!(
        "<presence xmlns='jabber:client' id='j:join' to='{room}/{}'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
        b.id
    ))
    .await;
    let first = cb.expect("a's presence", |e| e.name() == "presence").await;
    assert_eq!(first.attr("from"), Some(from_a.as_str()));
    let x = first.get_child("x", NS_MUC_USER).unwrap();
    assert!(child(x, "xmlns").is_none() && child(x, "status").is_none());
    let own = cb.expect("self presence", |e| e.name() == "presence").await;
    assert_eq!(own.attr("id"), Some("j:join"));
    assert!(child(own.get_child("x", NS_MUC_USER).unwrap(), "xmlns").is_some());

    // a sees b join, then leave (standard presences)
    let joined = ca.expect("b joined", |e| e.name() == "presence").await;
    assert_eq!(joined.attr("from"), Some(from_b.as_str()));
    assert_eq!(joined.attr("type"), None);
    assert!(child(joined.get_child("x", NS_MUC_USER).unwrap(), "xmlns").is_none());
    cb.send(&format!(
        "<presence xmlns='jabber:client' type='unavailable' to='{room}/{}'/>",
        b.id
    ))
    .await;
    let left = ca.expect("b left", |e| e.name() == "presence").await;
    assert_eq!(left.attr("from"), Some(from_b.as_str()));
    assert_eq!(left.attr("type"), Some("unavailable"));

    // a removes b from the dialog: b is kicked (301, actor a, with the JS quirks)
    cb.join(&room, b.id).await;
    ca.expect("b joined again", |e| {
        e.name() == "presence" && e.attr("type").is_none()
    })
    .await;
    s.rest(
        &a,
        reqwest::Method::PUT,
        &format!("/chat/Dialog/{dialog_id}"),
        json!({"pull_all": {"occupants_ids": [b.id]}}),
    )
    .await;
    let kicked = cb.expect("kick", |e| e.name() == "presence").await;
    assert_eq!(kicked.attr("type"), Some("unavailable"));
    let x = kicked.get_child("x", NS_MUC_USER).unwrap();
    assert!(x
        .children()
        .any(|c| c.name() == "status" && c.attr("code") == Some("301")));
    assert_eq!(
        child(child(x, "xmlns").unwrap(), "code").unwrap().text(),
        "301"
    );
    let actor = |item: &Element| {
        child(item, "actor")
            .unwrap()
            .attr("jid")
            .unwrap()
            .to_owned()
    };
    assert_eq!(actor(child(x, "item").unwrap()), s.jid(&a));
    assert_eq!(
        actor(child(&kicked, "item").unwrap()),
        s.jid(&a),
        "6.1.2 reads it here"
    );
    let gone = ca.expect("b kicked", |e| e.name() == "presence").await;
    assert_eq!(gone.attr("type"), Some("unavailable"));
    assert!(child(gone.get_child("x", NS_MUC_USER).unwrap(), "xmlns").is_none());
    s.rest(
        &a,
        reqwest::Method::PUT,
        &format!("/chat/Dialog/{dialog_id}"),
        json!({"push_all": {"occupants_ids": [b.id]}}),
    )
    .await;

    // b joins again and disconnects: unavailable
    cb.join(&room, b.id).await;
    ca.expect("b joined again", |e| {
        e.name() == "presence" && e.attr("type").is_none()
    })
    .await;
    cb.close().await;
    let gone = ca.expect("b gone", |e| e.name() == "presence").await;
    assert_eq!(gone.attr("from"), Some(from_b.as_str()));
    assert_eq!(gone.attr("type"), Some("unavailable"));
    ca.close().await;
}
