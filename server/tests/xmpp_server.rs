//! cubeserver's XMPP side end to end: the binary as a process, driven by a small raw client
//! (tokio-xmpp's xmlstream initiator + rustls trusting the ready line's CA) and by REST.
#![allow(clippy::unwrap_used, dead_code)]

include!("support/raw_client.rs");

#[tokio::test]
async fn login_binding_and_auth_failures() {
    let s = start().await;
    let a = s.user("alice").await;
    // STARTTLS + password, with the bare JID as authzid.
    let mut c1 = s.login(true, &s.jid(&a), &a, PASSWORD).await.unwrap();
    let jid1 = c1.bind(None).await;
    assert!(jid1.starts_with(&format!("{}/", s.jid(&a))), "{jid1}");
    assert!(jid1.contains("-cubeserver-"), "{jid1}");
    // Direct TLS + session token; the requested resource is honoured when free.
    let mut c2 = s.login(false, "", &a, &a.token).await.unwrap();
    assert_eq!(c2.bind(Some("phone")).await, format!("{}/phone", s.jid(&a)));
    // ... and replaced by a unique one when taken.
    let mut c3 = s.login(false, "", &a, PASSWORD).await.unwrap();
    let jid3 = c3.bind(Some("phone")).await;
    assert_ne!(jid3, format!("{}/phone", s.jid(&a)));
    assert_ne!(jid3, jid1);
    // Bad secrets, wrong user in the authzid.
    assert_eq!(
        s.login(true, "", &a, "wrong-password")
            .await
            .err()
            .as_deref(),
        Some("NotAuthorized")
    );
    assert_eq!(
        s.login(false, "", &a, "0123456789abcdef0123456789abcdef01234567")
            .await
            .err()
            .as_deref(),
        Some("NotAuthorized")
    );
    assert_eq!(
        s.login(false, "99-7@chat.test", &a, PASSWORD)
            .await
            .err()
            .as_deref(),
        Some("NotAuthorized")
    );
    // Ping and an unknown iq (service-unavailable echoing the child).
    let pong = c1.iq_set("<ping xmlns='urn:xmpp:ping'/>").await;
    assert_eq!(pong.attr("type"), Some("result"));
    let err = c1.iq_set("<query xmlns='urn:example:unknown'/>").await;
    assert_eq!(err.attr("type"), Some("error"));
    assert!(err.get_child("query", "urn:example:unknown").is_some());
    let e = child(&err, "error").unwrap();
    assert!(child(e, "service-unavailable").is_some());
    // SASL before STARTTLS: a loopback peer (this one) is offered PLAIN with an optional
    // <starttls/>, and a wrong then a right password get failure then success. (Any other
    // peer gets a required <starttls/> only: session.rs' unit tests.)
    let tcp = TcpStream::connect(("127.0.0.1", s.xmpp_port))
        .await
        .unwrap();
    let (features, mut xs) =
        initiate_stream(BufStream::new(tcp), NS, s.header(), Timeouts::tight())
            .await
            .unwrap()
            .recv_features::<XmppStreamElement>()
            .await
            .unwrap();
    assert!(features.sasl_mechanisms.contains("PLAIN"));
    assert!(features.starttls.as_ref().is_some_and(|t| !t.required));
    for (secret, ok) in [("wrong-password", false), (PASSWORD, true)] {
        xs.send(&XmppStreamElement::Sasl(sasl::Nonza::Auth(sasl::Auth {
            mechanism: Mechanism::Plain,
            data: format!("\0{}-{APP}\0{secret}", a.id).into_bytes(),
        })))
        .await
        .unwrap();
        let answer = tokio::time::timeout(WAIT, xs.next()).await.unwrap();
        assert_eq!(
            matches!(
                answer,
                Some(Ok(XmppStreamElement::Sasl(sasl::Nonza::Success(_))))
            ),
            ok,
            "{answer:?}"
        );
    }
    c1.close().await;
    c2.close().await;
    c3.close().await;
}

#[tokio::test]
async fn one_to_one_online_offline_and_carbons() {
    let s = start().await;
    let (a, b) = (s.user("alice").await, s.user("bob").await);
    let mut a1 = s.online(&a).await;
    let mut a2 = s.online(&a).await;
    let mut b1 = s.online(&b).await;

    let id = a1
        .chat(
            &s.jid(&b),
            "hello bob",
            "<save_to_history>1</save_to_history><colour>blue</colour>",
        )
        .await;
    let got = b1.expect("chat", is_chat_with("hello bob")).await;
    assert_eq!(got.attr("from"), Some(a1.jid.as_str()), "from is stamped");
    assert_eq!(got.attr("id"), Some(id.as_str()));
    let dialog = extra(&got, "dialog_id").expect("dialog id added");
    assert!(extra(&got, "date_sent").is_some());
    // sent carbon to alice's other resource, unwrapped through sent/forwarded/message
    let carbon = a2
        .expect("sent carbon", |e| {
            e.get_child("sent", "urn:xmpp:carbons:2").is_some()
        })
        .await;
    assert_eq!(carbon.attr("type"), None);
    let inner = cubechat_wire::stanza::unwrap_carbon(&carbon).unwrap().0;
    assert_eq!(inner.attr("id"), Some(id.as_str()));
    // the sending resource gets no copy
    assert!(a1
        .drain(Duration::from_millis(300))
        .await
        .iter()
        .all(|e| body_of(e).is_none()));
    // stored via db::messages::create, visible to REST with the custom parameter
    let h = s.history(&b, &dialog).await;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["_id"], id.as_str());
    assert_eq!(h[0]["message"], "hello bob");
    assert_eq!(h[0]["colour"], "blue");
    assert_eq!(h[0]["recipient_id"], b.id);

    // bob goes offline; two messages wait for him
    b1.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    a1.chat(&s.jid(&b), "offline one", "").await;
    a1.chat(&s.jid(&b), "offline two", "").await;
    // typing is not stored
    a1.send(&format!(
        "<message xmlns='jabber:client' type='chat' to='{}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        s.jid(&b)
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut b2 = s.login(false, "", &b, PASSWORD).await.unwrap();
    b2.bind(None).await;
    // nothing before the initial presence
    assert!(b2.drain(Duration::from_millis(300)).await.is_empty());
    b2.send("<presence xmlns='jabber:client'/>").await;
    let got = b2.bodies(2).await;
    let bodies: Vec<String> = got.iter().filter_map(body_of).collect();
    assert_eq!(bodies, ["offline one", "offline two"]);
    assert!(got
        .iter()
        .all(|e| e.get_child("delay", "urn:xmpp:delay").is_some()));
    assert!(got.iter().all(|e| child(e, "composing").is_none()));
    b2.close().await;
    // delivered exactly once
    let mut b3 = s.online(&b).await;
    assert!(b3
        .drain(Duration::from_millis(500))
        .await
        .iter()
        .all(|e| body_of(e).is_none()));

    // a full-JID address reaches one resource; the others get a received carbon
    let mut b4 = s.online(&b).await;
    let to = b3.jid.clone();
    a1.chat(&to, "just b3", "").await;
    b3.expect("direct", is_chat_with("just b3")).await;
    let rc = b4
        .expect("received carbon", |e| {
            e.get_child("received", "urn:xmpp:carbons:2").is_some()
        })
        .await;
    assert_eq!(rc.attr("type"), None);

    // unknown recipient bounces with the legacy code
    let bad = a1
        .chat(&format!("99999-{APP}@{}", s.domain), "nobody", "")
        .await;
    let err = a1
        .expect("error", |e| e.attr("type") == Some("error"))
        .await;
    assert_eq!(err.attr("id"), Some(bad.as_str()));
    assert_eq!(child(&err, "error").unwrap().attr("code"), Some("503"));
    for c in [a1, a2, b3, b4] {
        c.close().await;
    }
}

/// Issue 12 item 5: a resource that is bound but has not sent its initial presence gets no
/// live message, so nothing overtakes the offline messages flushed at that presence.
#[tokio::test]
async fn live_messages_wait_behind_offline_ones_until_initial_presence() {
    let s = start().await;
    let (a, b) = (s.user("alice").await, s.user("bob").await);
    let mut a1 = s.online(&a).await;
    a1.chat(&s.jid(&b), "one", "").await;
    a1.chat(&s.jid(&b), "two", "").await;
    // alice's stanzas are routed in order: once this ping is answered, both are stored
    a1.iq_set("<ping xmlns='urn:xmpp:ping'/>").await;
    // bob reconnects (e.g. after a server restart): bound, carbons on, no presence yet
    let mut b1 = s.login(false, "", &b, PASSWORD).await.unwrap();
    let full = b1.bind(None).await;
    b1.iq_set("<enable xmlns='urn:xmpp:carbons:2'/>").await;
    a1.chat(&s.jid(&b), "three", "<save_to_history>1</save_to_history>")
        .await;
    a1.chat(&full, "four", "").await;
    a1.iq_set("<ping xmlns='urn:xmpp:ping'/>").await;
    let early: Vec<String> = b1
        .drain(Duration::from_millis(300))
        .await
        .iter()
        .filter_map(body_of)
        .collect();
    assert!(early.is_empty(), "delivered before presence: {early:?}");
    b1.send("<presence xmlns='jabber:client'/>").await;
    let got = b1.bodies(4).await;
    let bodies: Vec<String> = got.iter().filter_map(body_of).collect();
    assert_eq!(bodies, ["one", "two", "three", "four"]);
    // once available, live messages go straight through (to the bare and the full JID)
    a1.chat(&s.jid(&b), "five", "").await;
    a1.chat(&full, "six", "").await;
    let live: Vec<String> = b1.bodies(2).await.iter().filter_map(body_of).collect();
    assert_eq!(live, ["five", "six"]);
    a1.close().await;
    b1.close().await;
}

#[tokio::test]
async fn groupchat_fan_out_muc_and_storage() {
    let s = start().await;
    let (a, b, c, d) = (
        s.user("alice").await,
        s.user("bob").await,
        s.user("carol").await,
        s.user("dave").await,
    );
    let (dialog_id, room) = s.group(&a, &[&b, &c]).await;
    let (mut ca, mut cb, mut cc, mut cd) = (
        s.online(&a).await,
        s.online(&b).await,
        s.online(&c).await,
        s.online(&d).await,
    );

    // join (optional) with the JS self-presence quirk
    ca.send(&format!(
        "<presence xmlns='jabber:client' id='j1:join' to='{room}/{}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>",
        a.id
    ))
    .await;
    let me = ca.expect("self presence", |e| e.name() == "presence").await;
    assert_eq!(me.attr("id"), Some("j1:join"));
    let x = me
        .get_child("x", "http://jabber.org/protocol/muc#user")
        .unwrap();
    assert!(x
        .children()
        .any(|c| c.name() == "status" && c.attr("code") == Some("110")));
    assert_eq!(
        child(child(x, "xmlns").unwrap(), "code").unwrap().text(),
        "110"
    );

    // online occupants
    let id = format!("d:{}", ca.next_id());
    ca.send(&format!(
        "<iq xmlns='jabber:client' type='get' id='{id}' to='{room}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"
    ))
    .await;
    let items = ca
        .expect("disco items", |e| e.attr("id") == Some(id.as_str()))
        .await;
    assert_eq!(child(&items, "query").unwrap().children().count(), 3);

    let mid = ca.next_id();
    ca.send(&format!(
        "<message xmlns='jabber:client' type='groupchat' to='{room}' id='{mid}'><body>hi team</body><extraParams xmlns='jabber:client'><save_to_history>1</save_to_history></extraParams></message>"
    ))
    .await;
    for client in [&mut ca, &mut cb, &mut cc] {
        let got = client.expect("groupchat", is_chat_with("hi team")).await;
        assert_eq!(got.attr("from"), Some(format!("{room}/{}", a.id).as_str()));
        assert_eq!(got.attr("id"), Some(mid.as_str()));
        assert_eq!(got.attr("type"), Some("groupchat"));
        assert_eq!(
            extra(&got, "dialog_id").as_deref(),
            Some(dialog_id.as_str())
        );
    }
    assert!(cd
        .drain(Duration::from_millis(300))
        .await
        .iter()
        .all(|e| body_of(e).is_none()));
    let h = s.history(&c, &dialog_id).await;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["_id"], mid.as_str());
    assert_eq!(h[0]["sender_id"], a.id);

    // not an occupant: 403 with the legacy code
    let bad = cd.next_id();
    cd.send(&format!(
        "<message xmlns='jabber:client' type='groupchat' to='{room}' id='{bad}'><body>let me in</body></message>"
    ))
    .await;
    let err = cd
        .expect("error", |e| e.attr("type") == Some("error"))
        .await;
    assert_eq!(err.attr("id"), Some(bad.as_str()));
    assert_eq!(child(&err, "error").unwrap().attr("code"), Some("403"));
    assert!(cb
        .drain(Duration::from_millis(300))
        .await
        .iter()
        .all(|e| body_of(e).is_none()));

    // leave
    ca.send(&format!(
        "<presence xmlns='jabber:client' type='unavailable' to='{room}/{}'/>",
        a.id
    ))
    .await;
    let left = ca.expect("leave", |e| e.name() == "presence").await;
    assert_eq!(left.attr("type"), Some("unavailable"));
    for cl in [ca, cb, cc, cd] {
        cl.close().await;
    }
}

#[tokio::test]
async fn markers_edit_and_delete_update_history() {
    let s = start().await;
    let (a, b) = (s.user("alice").await, s.user("bob").await);
    let (mut ca, mut cb) = (s.online(&a).await, s.online(&b).await);
    let id = ca
        .chat(&s.jid(&b), "first", "<save_to_history>1</save_to_history>")
        .await;
    let got = cb.expect("chat", is_chat_with("first")).await;
    let dialog = extra(&got, "dialog_id").unwrap();

    // read marker from bob: routed to alice and recorded
    cb.send(&format!(
        "<message xmlns='jabber:client' type='chat' to='{}' id='{}'><displayed xmlns='urn:xmpp:chat-markers:0' id='{id}'/><extraParams xmlns='jabber:client'><dialog_id>{dialog}</dialog_id></extraParams></message>",
        s.jid(&a),
        cb.next_id()
    ))
    .await;
    let m = ca
        .expect("marker", |e| child(e, "displayed").is_some())
        .await;
    assert_eq!(m.attr("from"), Some(cb.jid.as_str()));
    let h = s.history(&a, &dialog).await;
    assert!(h[0]["read_ids"].as_array().unwrap().contains(&json!(b.id)));
    assert!(h[0]["delivered_ids"]
        .as_array()
        .unwrap()
        .contains(&json!(b.id)));

    // edits by someone else are routed but not applied
    cb.send(&format!(
        "<message xmlns='jabber:client' type='chat' to='{}' id='{}'><body>hacked</body><replace xmlns='urn:xmpp:message-correct:0' id='{id}' last='true'/><extraParams xmlns='jabber:client'><dialog_id>{dialog}</dialog_id></extraParams></message>",
        s.jid(&a),
        cb.next_id()
    ))
    .await;
    ca.expect("foreign edit", |e| child(e, "replace").is_some())
        .await;
    assert_eq!(s.history(&a, &dialog).await[0]["message"], "first");

    // the sender's edit is applied
    ca.send(&format!(
        "<message xmlns='jabber:client' type='chat' to='{}' id='{}'><body>first (edited)</body><replace xmlns='urn:xmpp:message-correct:0' id='{id}' last='true'/><extraParams xmlns='jabber:client'><dialog_id>{dialog}</dialog_id></extraParams></message>",
        s.jid(&b),
        ca.next_id()
    ))
    .await;
    cb.expect("edit", |e| child(e, "replace").is_some()).await;
    assert_eq!(s.history(&a, &dialog).await[0]["message"], "first (edited)");

    // typing is routed, without storage
    ca.send(&format!(
        "<message xmlns='jabber:client' type='chat' to='{}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        s.jid(&b)
    ))
    .await;
    cb.expect("typing", |e| child(e, "composing").is_some())
        .await;

    // delete
    ca.send(&format!(
        "<message xmlns='jabber:client' type='chat' to='{}' id='{}'><remove xmlns='urn:xmpp:message-delete:0' id='{id}'/><extraParams xmlns='jabber:client'><dialog_id>{dialog}</dialog_id></extraParams></message>",
        s.jid(&b),
        ca.next_id()
    ))
    .await;
    cb.expect("delete", |e| child(e, "remove").is_some()).await;
    assert!(s.history(&a, &dialog).await.is_empty());
    ca.close().await;
    cb.close().await;
}

/// The code of a bounced message with this id, skipping everything else.
async fn bounce_code(c: &mut Client, id: &str) -> String {
    let err = c
        .expect("error", |e| {
            e.attr("type") == Some("error") && e.attr("id") == Some(id)
        })
        .await;
    child(&err, "error")
        .unwrap()
        .attr("code")
        .unwrap()
        .to_owned()
}

/// Nothing with a body and no error arrives for a short while.
async fn quiet(c: &mut Client) {
    let got = c.drain(Duration::from_millis(400)).await;
    assert!(
        got.iter()
            .all(|e| body_of(e).is_none() && e.attr("type") != Some("error")),
        "{:?}",
        got.iter().map(String::from).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn resent_chat_message_is_stored_and_delivered_once() {
    let s = start().await;
    let (a, b, c, m) = (
        s.user("alice").await,
        s.user("bob").await,
        s.user("carol").await,
        s.user("mallory").await,
    );
    let save = "<save_to_history>1</save_to_history>";
    let mut a1 = s.login(false, "", &a, PASSWORD).await.unwrap();
    a1.bind(None).await;
    a1.enable_sm().await;
    a1.send("<presence xmlns='jabber:client'/>").await;
    let mut b1 = s.online(&b).await;

    // online recipient: the same stanza twice on one stream (the first ack was lost);
    // both are acknowledged, neither bounces, bob gets one copy and history has one
    let id = a1.chat(&s.jid(&b), "once", save).await;
    a1.message("chat", &s.jid(&b), &id, "once", save).await;
    a1.send("<r xmlns='urn:xmpp:sm:3'/>").await;
    let ack = a1.expect("ack", |e| e.name() == "a").await;
    assert_eq!(ack.attr("h"), Some("3"), "presence and both copies counted");
    let got = b1.bodies(1).await;
    assert_eq!(got[0].attr("id"), Some(id.as_str()));
    let dialog = extra(&got[0], "dialog_id").unwrap();
    quiet(&mut a1).await;
    assert_eq!(s.history(&b, &dialog).await.len(), 1);

    // offline recipient: sent, then resent from a new connection (a restart)
    let away = a1.chat(&s.jid(&c), "while you were away", save).await;
    drop(a1);
    let mut a2 = s.online(&a).await;
    a2.message("chat", &s.jid(&c), &away, "while you were away", save)
        .await;
    quiet(&mut a2).await;
    let mut c1 = s.online(&c).await;
    let got = c1.bodies(1).await;
    assert_eq!(got[0].attr("id"), Some(away.as_str()));
    assert!(got[0].get_child("delay", "urn:xmpp:delay").is_some());
    let h = s.history(&c, &extra(&got[0], "dialog_id").unwrap()).await;
    assert_eq!(h.len(), 1);

    // without save_to_history: a resend of a recent ObjectId is dropped too
    let unsaved = a2.chat(&s.jid(&b), "not stored", "").await;
    a2.message("chat", &s.jid(&b), &unsaved, "not stored", "")
        .await;
    let got = b1.bodies(1).await;
    assert_eq!(got[0].attr("id"), Some(unsaved.as_str()));

    // a resent edit or deletion (same stanza id) reaches bob once
    let tmp = a2.chat(&s.jid(&b), "to edit", save).await;
    b1.bodies(1).await;
    for el in [
        cubechat_wire::stanza::edit(
            cubechat_wire::stanza::ChatKind::Chat,
            &a2.next_id(),
            &s.jid(&b),
            &tmp,
            "edited",
            true,
            &dialog,
        ),
        cubechat_wire::stanza::delete(
            cubechat_wire::stanza::ChatKind::Chat,
            &a2.next_id(),
            &s.jid(&b),
            &tmp,
            &dialog,
        ),
    ] {
        let xml = String::from(&el);
        a2.send(&xml).await;
        a2.send(&xml).await;
        let got = b1.drain(Duration::from_millis(600)).await;
        let copies = got.iter().filter(|e| e.attr("id") == el.attr("id")).count();
        assert_eq!(copies, 1, "{xml}");
    }

    // the id of a stored message from another sender, or in another dialog, bounces
    let mut m1 = s.online(&m).await;
    m1.message("chat", &s.jid(&b), &id, "not yours", save).await;
    assert_eq!(bounce_code(&mut m1, &id).await, "409");
    a2.message("chat", &s.jid(&c), &id, "other dialog", save)
        .await;
    assert_eq!(bounce_code(&mut a2, &id).await, "409");
    quiet(&mut b1).await;
    quiet(&mut c1).await;
    assert_eq!(s.history(&b, &dialog).await.len(), 1);
    assert_eq!(s.history(&b, &dialog).await[0]["message"], "once");
    for cl in [a2, b1, c1, m1] {
        cl.close().await;
    }
}

#[tokio::test]
async fn resent_groupchat_message_is_stored_and_delivered_once() {
    let s = start().await;
    let (a, b, c) = (
        s.user("alice").await,
        s.user("bob").await,
        s.user("carol").await,
    );
    let (dialog_id, room) = s.group(&a, &[&b, &c]).await;
    let save = "<save_to_history>1</save_to_history>";
    let (mut ca, mut cb) = (s.online(&a).await, s.online(&b).await);

    // twice on one stream: one echo to alice, one copy to bob, one stored message
    let mid = ca.next_id();
    ca.message("groupchat", &room, &mid, "hi team", save).await;
    ca.message("groupchat", &room, &mid, "hi team", save).await;
    for cl in [&mut ca, &mut cb] {
        let got = cl.bodies(1).await;
        assert_eq!(got[0].attr("id"), Some(mid.as_str()));
    }
    quiet(&mut ca).await;

    // again after a restart: nobody gets it
    drop(ca);
    let mut ca = s.online(&a).await;
    ca.message("groupchat", &room, &mid, "hi team", save).await;
    quiet(&mut ca).await;
    quiet(&mut cb).await;

    // carol, offline meanwhile, finds it once in the history (and one unread)
    let mut cc = s.online(&c).await;
    quiet(&mut cc).await;
    let h = s.history(&c, &dialog_id).await;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["_id"], mid.as_str());
    let unread = s
        .rest(
            &c,
            reqwest::Method::GET,
            &format!("/chat/Message/unread?chat_dialog_ids={dialog_id}"),
            json!(null),
        )
        .await;
    assert_eq!(unread["total"], 1);

    // without save_to_history: a resend of a recent ObjectId is dropped too
    let unsaved = ca.next_id();
    ca.message("groupchat", &room, &unsaved, "not stored", "")
        .await;
    ca.message("groupchat", &room, &unsaved, "not stored", "")
        .await;
    for cl in [&mut ca, &mut cb, &mut cc] {
        let got = cl.bodies(1).await;
        assert_eq!(got[0].attr("id"), Some(unsaved.as_str()));
    }

    // another occupant reusing the stored id bounces and reaches nobody
    cb.message("groupchat", &room, &mid, "not yours", save)
        .await;
    assert_eq!(bounce_code(&mut cb, &mid).await, "409");
    quiet(&mut ca).await;
    quiet(&mut cc).await;
    assert_eq!(s.history(&c, &dialog_id).await.len(), 1);
    for cl in [ca, cb, cc] {
        cl.close().await;
    }
}

#[tokio::test]
async fn rest_pushes_reach_xmpp() {
    let s = start().await;
    let (a, b, c) = (
        s.user("alice").await,
        s.user("bob").await,
        s.user("carol").await,
    );
    let mut cb = s.online(&b).await;
    let dialog = s
        .rest(
            &a,
            reqwest::Method::POST,
            "/chat/Dialog",
            json!({"type": 3, "occupants_ids": b.id.to_string()}),
        )
        .await;
    let dialog_id = dialog["_id"].as_str().unwrap().to_owned();

    // POST /chat/Message with send_to_chat=1
    let msg = s
        .rest(
            &a,
            reqwest::Method::POST,
            "/chat/Message",
            json!({"chat_dialog_id": dialog_id, "message": "via rest", "send_to_chat": 1}),
        )
        .await;
    let mid = msg["_id"].as_str().unwrap().to_owned();
    let got = cb.expect("rest message", is_chat_with("via rest")).await;
    assert_eq!(got.attr("id"), Some(mid.as_str()));
    assert_eq!(got.attr("type"), Some("chat"));
    assert_eq!(
        extra(&got, "dialog_id").as_deref(),
        Some(dialog_id.as_str())
    );

    // reaction
    s.rest(
        &a,
        reqwest::Method::PUT,
        &format!("/chat/Message/{mid}/reactions"),
        json!({"add": "👍"}),
    )
    .await;
    let r = cb
        .expect("reactions", |e| child(e, "reactions").is_some())
        .await;
    let reactions = child(&r, "reactions").unwrap();
    assert_eq!(reactions.attr("message_id"), Some(mid.as_str()));
    assert_eq!(reactions.attr("user_id"), Some(a.id.to_string().as_str()));
    assert_eq!(
        child(reactions, "reaction").unwrap().attr("type"),
        Some("👍")
    );

    // edit over REST
    s.rest(
        &a,
        reqwest::Method::PUT,
        &format!("/chat/Message/{mid}"),
        json!({"message": "via rest (edited)"}),
    )
    .await;
    let e = cb
        .expect("replace", |e| child(e, "replace").is_some())
        .await;
    assert_eq!(body_of(&e).as_deref(), Some("via rest (edited)"));

    // forced delete
    s.rest(
        &a,
        reqwest::Method::DELETE,
        &format!("/chat/Message/{mid}?force=1"),
        json!(null),
    )
    .await;
    let d = cb.expect("remove", |e| child(e, "remove").is_some()).await;
    assert_eq!(child(&d, "remove").unwrap().attr("id"), Some(mid.as_str()));

    // system message online, then to an offline user (stored, delivered once with delay)
    s.rest(
        &a,
        reqwest::Method::POST,
        "/chat/Message/system",
        json!({"recipientId": b.id, "topic": "hello"}),
    )
    .await;
    let sys = cb
        .expect("system", |e| e.attr("type") == Some("headline"))
        .await;
    assert_eq!(
        extra(&sys, "moduleIdentifier").as_deref(),
        Some("SystemNotifications")
    );
    assert_eq!(extra(&sys, "topic").as_deref(), Some("hello"));
    assert_eq!(sys.attr("from"), Some(s.jid(&a).as_str()));
    s.rest(
        &a,
        reqwest::Method::POST,
        "/chat/Message/system",
        json!({"recipientId": c.id, "topic": "later"}),
    )
    .await;
    let mut cc = s.online(&c).await;
    let sys = cc
        .expect("stored system", |e| e.attr("type") == Some("headline"))
        .await;
    assert_eq!(extra(&sys, "topic").as_deref(), Some("later"));
    assert!(sys.get_child("delay", "urn:xmpp:delay").is_some());
    cc.close().await;
    let mut cc = s.online(&c).await;
    assert!(cc
        .drain(Duration::from_millis(400))
        .await
        .iter()
        .all(|e| e.attr("type") != Some("headline")));
    cc.close().await;
    cb.close().await;
}

#[tokio::test]
async fn stream_management_acks_and_resumption() {
    let s = start().await;
    let (a, b) = (s.user("alice").await, s.user("bob").await);
    let mut cb = s.online(&b).await;
    let mut ca = s.login(false, "", &a, PASSWORD).await.unwrap();
    ca.bind(None).await;
    let sm_id = ca.enable_sm().await;
    // three inbound stanzas, then a request: h counts them
    ca.iq_set("<enable xmlns='urn:xmpp:carbons:2'/>").await;
    ca.send("<presence xmlns='jabber:client'/>").await;
    ca.chat(&s.jid(&b), "counted", "").await;
    ca.send("<r xmlns='urn:xmpp:sm:3'/>").await;
    let ack = ca.expect("ack", |e| e.name() == "a").await;
    assert_eq!(ack.attr("h"), Some("3"));
    cb.expect("counted", is_chat_with("counted")).await;

    // alice stops acknowledging; bob sends; the link is cut without </stream:stream>
    ca.auto_ack = false;
    let h_before = ca.h;
    let mut sent = Vec::new();
    for body in ["m1", "m2"] {
        sent.push(cb.chat(&s.jid(&a), body, "").await);
    }
    let got = ca.bodies(2).await;
    assert_eq!(
        got.iter().filter_map(body_of).collect::<Vec<_>>(),
        ["m1", "m2"]
    );
    // acknowledge only the first of them
    let h_acked = h_before + 1;
    drop(ca);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // while parked, more messages queue up (not offline storage)
    for body in ["m3", "m4"] {
        sent.push(cb.chat(&s.jid(&a), body, "").await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut ca = s.login(false, "", &a, PASSWORD).await.unwrap();
    ca.send(&format!(
        "<resume xmlns='urn:xmpp:sm:3' previd='{sm_id}' h='{h_acked}'/>"
    ))
    .await;
    let resumed = ca.expect("resumed", |e| e.name() == "resumed").await;
    assert_eq!(
        resumed.attr("h"),
        Some("3"),
        "the server's count of alice's stanzas"
    );
    ca.counting = true;
    let got = ca.bodies(3).await;
    let bodies: Vec<String> = got.iter().filter_map(body_of).collect();
    assert_eq!(bodies, ["m2", "m3", "m4"], "no loss, no duplicate");
    // the resumed session still routes
    ca.chat(&s.jid(&b), "after resume", "").await;
    cb.expect("after resume", is_chat_with("after resume"))
        .await;

    // unknown previd: <failed/> with h
    let mut other = s.login(false, "", &a, PASSWORD).await.unwrap();
    other
        .send("<resume xmlns='urn:xmpp:sm:3' previd='nope' h='0'/>")
        .await;
    let failed = other.expect("failed", |e| e.name() == "failed").await;
    assert!(failed.attr("h").is_some(), "{}", String::from(&failed));
    // a failed resume still allows binding
    other.bind(None).await;

    // JS-style SM (no resumption): stanzas unacked when the link drops go offline
    let c = s.user("carol").await;
    let mut cc = s.login(false, "", &c, PASSWORD).await.unwrap();
    cc.bind(None).await;
    cc.send("<enable xmlns='urn:xmpp:sm:3'/>").await;
    let enabled = cc.expect("enabled", |e| e.name() == "enabled").await;
    assert_eq!(enabled.attr("resume"), None);
    cc.counting = true;
    cc.auto_ack = false;
    cc.send("<presence xmlns='jabber:client'/>").await;
    cb.chat(&s.jid(&c), "never acked", "").await;
    cc.bodies(1).await;
    drop(cc);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut cc = s.online(&c).await;
    let again = cc.bodies(1).await;
    assert_eq!(body_of(&again[0]).as_deref(), Some("never acked"));
    assert!(again[0].get_child("delay", "urn:xmpp:delay").is_some());
    cc.close().await;
    other.close().await;
    ca.close().await;
    cb.close().await;
}

#[tokio::test]
async fn sigterm_closes_streams_and_exits_cleanly() {
    let mut s = start().await;
    let a = s.user("alice").await;
    let mut ca = s.online(&a).await;
    let pid = s.child.id().unwrap().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    // the server closes the stream (footer, then EOF) instead of just vanishing
    let end = tokio::time::timeout(WAIT, ca.xs.next()).await.unwrap();
    assert!(
        matches!(end, Some(Err(ReadError::StreamFooterReceived)) | None),
        "{end:?}"
    );
    let exit = tokio::time::timeout(Duration::from_secs(10), s.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}
