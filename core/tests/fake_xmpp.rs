//! The chat engine against an in-process XMPP server built on tokio-xmpp's responder API
//! (plain TCP on 127.0.0.1 with `insecure_plaintext`): cases a real server does not produce
//! on demand. `<sm:failed/>` without `h` (xmpp-parsers 0.23 cannot parse it) must not turn
//! into an endless resume loop, and a silent server must be detected by the keep-alive.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cubechat_core::{
    ChatAuth, ChatEvent, Client, Config, ConnectionState, ConnectionStates, OutgoingMessage,
};
use futures_util::{SinkExt, StreamExt};
use tokio::io::BufStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::time::timeout;
use tokio_xmpp::{
    jid::BareJid,
    parsers::{
        bind::{BindFeature, BindQuery, BindResponse},
        iq::Iq,
        ns,
        sasl::{self, DefinedCondition as SaslCond},
        sm,
        stanza_error::DefinedCondition,
        stream_features::StreamFeatures,
    },
    xmlstream::{
        accept_stream, FallibleStreamElement, ReadError, StreamHeader, Timeouts, XmlStream,
        XmppStreamElement,
    },
    Stanza,
};

#[derive(Default)]
struct Server {
    /// Drop every live connection (without a stream footer).
    kill: Option<broadcast::Sender<()>>,
    /// Resumption always fails, with `<failed/>` lacking `h`.
    failed_without_h: AtomicBool,
    /// Resumption always fails, with `<failed h='0'/>` (the session is forgotten).
    forget_sessions: AtomicBool,
    /// Stop answering (and reading) on live connections, keeping TCP open.
    silent: AtomicBool,
    /// Do not answer `<r/>`: nothing gets acknowledged.
    no_acks: AtomicBool,
    binds: AtomicU32,
    resumes: AtomicU32,
    sm_enables: AtomicU32,
    parked: Mutex<HashMap<String, u32>>,
    ctr: AtomicU32,
    /// Payloads of the get/set iqs received (serialised), and ids of the results received.
    iqs: Mutex<Vec<String>>,
    results: Mutex<Vec<String>>,
    /// Stanzas to send on every live connection.
    push: Option<broadcast::Sender<minidom::Element>>,
    /// Drop every session once it is up: after the initial presence of a fresh bind, or
    /// right after `<resumed/>` (not parked: the next login binds afresh).
    drop_when_up: AtomicBool,
    /// Sessions dropped by `drop_when_up`.
    dropped: AtomicU32,
    /// TCP connections accepted.
    accepted: AtomicU32,
    /// The next connection waits this long before the server reads or answers anything.
    slow_next: Mutex<Option<Duration>>,
}

type Xs = XmlStream<BufStream<TcpStream>, FallibleStreamElement>;
type R<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

impl Server {
    fn id(&self) -> String {
        format!("s{}", self.ctr.fetch_add(1, Ordering::SeqCst))
    }
}

async fn start() -> (u16, Arc<Server>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let st = Arc::new(Server {
        kill: Some(broadcast::channel(4).0),
        push: Some(broadcast::channel(16).0),
        ..Default::default()
    });
    let st2 = st.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let st = st2.clone();
            st.accepted.fetch_add(1, Ordering::SeqCst);
            let slow = st.slow_next.lock().unwrap().take();
            tokio::spawn(async move {
                if let Some(d) = slow {
                    tokio::time::sleep(d).await;
                }
                let _ = serve(tcp, &st).await;
            });
        }
    });
    (port, st)
}

async fn header(
    st: &Server,
    a: tokio_xmpp::xmlstream::AcceptedStream<BufStream<TcpStream>>,
    f: StreamFeatures,
) -> R<Xs> {
    let hdr = StreamHeader {
        from: Some("localhost".into()),
        to: None,
        id: Some(st.id().into()),
    };
    Ok(a.send_header(hdr).await?.send_features(&f).await?)
}

async fn serve(tcp: TcpStream, st: &Server) -> R<()> {
    let t = Timeouts::tight();
    let a = accept_stream(BufStream::new(tcp), ns::JABBER_CLIENT, t).await?;
    let features = StreamFeatures {
        sasl_mechanisms: ["PLAIN".to_owned()].into(),
        ..Default::default()
    };
    let mut xs = header(st, a, features).await?;
    match xs.next().await {
        Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Sasl(sasl::Nonza::Auth(a)))))
            if a.data == b"\x005-7\x00pw" => {}
        _ => {
            let f = sasl::Failure {
                defined_condition: SaslCond::NotAuthorized,
                texts: BTreeMap::new(),
            };
            xs.send(&XmppStreamElement::Sasl(sasl::Nonza::Failure(f)))
                .await?;
            return Ok(());
        }
    }
    let success = XmppStreamElement::Sasl(sasl::Nonza::Success(sasl::Success { data: vec![] }));
    let a = xs.accept_reset(&success).await?;
    let features = StreamFeatures {
        bind: Some(BindFeature { required: true }),
        stream_management: Some(sm::StreamManagement { optional: false }),
        ..Default::default()
    };
    let mut xs = header(st, a, features).await?;
    let bare = BareJid::new("5-7@localhost")?;
    let mut kill = st.kill.as_ref().unwrap().subscribe();
    let mut push = st.push.as_ref().unwrap().subscribe();
    let mut sm_state: Option<(String, u32)> = None;
    loop {
        let item = tokio::select! {
            item = xs.next(), if !st.silent.load(Ordering::SeqCst) => item,
            _ = kill.recv() => {
                if let Some((id, h)) = sm_state.take() {
                    st.parked.lock().unwrap().insert(id, h);
                }
                return Ok(());
            }
            _ = tokio::time::sleep(Duration::from_millis(50)), if st.silent.load(Ordering::SeqCst) => continue,
            Ok(el) = push.recv() => {
                xs.send(&el).await?;
                continue;
            }
        };
        let el = match item {
            Some(Ok(FallibleStreamElement::Ok(el))) => el,
            Some(Ok(FallibleStreamElement::Err(_))) | Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Err(ReadError::StreamFooterReceived)) => {
                let _ = xs.shutdown().await;
                return Ok(());
            }
            _ => {
                if let Some((id, h)) = sm_state.take() {
                    st.parked.lock().unwrap().insert(id, h);
                }
                return Ok(());
            }
        };
        match el {
            XmppStreamElement::Stanza(stanza) => {
                if let Some((_, h)) = sm_state.as_mut() {
                    *h = h.wrapping_add(1);
                }
                match stanza {
                    Stanza::Iq(Iq::Set { id, payload, .. }) if payload.is("bind", ns::BIND) => {
                        BindQuery::try_from(payload)?;
                        st.binds.fetch_add(1, Ordering::SeqCst);
                        let jid = bare.with_resource_str(&st.id())?;
                        xs.send(&Stanza::Iq(Iq::from_result(id, Some(BindResponse { jid }))))
                            .await?;
                    }
                    Stanza::Iq(Iq::Set { id, payload, .. })
                    | Stanza::Iq(Iq::Get { id, payload, .. }) => {
                        st.iqs.lock().unwrap().push(String::from(&payload));
                        xs.send(&Stanza::Iq(Iq::from_result(id, None::<BindResponse>)))
                            .await?;
                    }
                    Stanza::Iq(Iq::Result { id, .. }) | Stanza::Iq(Iq::Error { id, .. }) => {
                        st.results.lock().unwrap().push(id);
                    }
                    Stanza::Presence(p)
                        if p.to.is_none() && st.drop_when_up.load(Ordering::SeqCst) =>
                    {
                        st.dropped.fetch_add(1, Ordering::SeqCst);
                        return Ok(());
                    }
                    _ => {}
                }
            }
            XmppStreamElement::SM(sm::Nonza::Enable(e)) => {
                st.sm_enables.fetch_add(1, Ordering::SeqCst);
                let id = st.id();
                sm_state = Some((id.clone(), 0));
                xs.send(&XmppStreamElement::SM(sm::Nonza::Enabled(sm::Enabled {
                    id: Some(sm::StreamId(id)),
                    location: None,
                    max: None,
                    resume: e.resume,
                })))
                .await?;
            }
            XmppStreamElement::SM(sm::Nonza::Resume(r)) => {
                st.resumes.fetch_add(1, Ordering::SeqCst);
                let parked = st.parked.lock().unwrap().remove(&r.previd.0);
                match parked {
                    Some(h)
                        if !st.failed_without_h.load(Ordering::SeqCst)
                            && !st.forget_sessions.load(Ordering::SeqCst) =>
                    {
                        sm_state = Some((r.previd.0.clone(), h));
                        xs.send(&XmppStreamElement::SM(sm::Nonza::Resumed(sm::Resumed {
                            h,
                            previd: r.previd,
                        })))
                        .await?;
                        if st.drop_when_up.load(Ordering::SeqCst) {
                            st.dropped.fetch_add(1, Ordering::SeqCst);
                            return Ok(());
                        }
                    }
                    _ => {
                        let f = sm::Failed {
                            h: (!st.failed_without_h.load(Ordering::SeqCst)).then_some(0),
                            error: Some(DefinedCondition::ItemNotFound),
                        };
                        xs.send(&XmppStreamElement::SM(sm::Nonza::Failed(f)))
                            .await?;
                    }
                }
            }
            XmppStreamElement::SM(sm::Nonza::Req(_)) if !st.no_acks.load(Ordering::SeqCst) => {
                if let Some((_, h)) = &sm_state {
                    xs.send(&XmppStreamElement::SM(sm::Nonza::Ack(sm::A { h: *h })))
                        .await?;
                }
            }
            _ => {}
        }
    }
}

fn client(port: u16) -> Arc<Client> {
    let mut c = Config::new(7, "key", "http://127.0.0.1:9");
    c.chat.host = "127.0.0.1".into();
    c.chat.domain = "localhost".into();
    c.chat.port = port;
    c.chat.insecure_plaintext = true;
    c.timeouts.connect = Duration::from_secs(2);
    c.timeouts.ping_interval = Duration::from_secs(1);
    c.reconnect.initial_delay = Duration::from_millis(50);
    c.reconnect.max_delay = Duration::from_millis(200);
    Client::new(c).unwrap()
}

fn auth() -> ChatAuth {
    ChatAuth::Password {
        user_id: Some(5),
        password: "pw".into(),
    }
}

async fn wait_state(rx: &mut ConnectionStates, what: &str, want: ConnectionState) {
    timeout(Duration::from_secs(10), async {
        while rx.recv().await.unwrap() != want {}
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_resumption_without_h_recovers_with_stream_management() {
    let (port, st) = start().await;
    let c = client(port);
    c.chat().connect_chat(auth()).await.unwrap();
    assert_eq!(st.binds.load(Ordering::SeqCst), 1);

    st.failed_without_h.store(true, Ordering::SeqCst);
    let _ = st.kill.as_ref().unwrap().send(());
    // Back online with a fresh bind, and stream management enabled again.
    timeout(Duration::from_secs(15), async {
        loop {
            if c.chat().connection_state() == ConnectionState::Connected
                && st.binds.load(Ordering::SeqCst) >= 2
                && st.sm_enables.load(Ordering::SeqCst) >= 2
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("never recovered from <failed/> without h");
    st.failed_without_h.store(false, Ordering::SeqCst);
    let resumes = st.resumes.load(Ordering::SeqCst);
    assert!(resumes <= 8, "resume loop: {resumes} attempts");
    // Settled: no more reconnects, and acks work (SM is on).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let binds = st.binds.load(Ordering::SeqCst);
    let mut ev = c.chat().subscribe_chat();
    let id = c
        .send_queue()
        .send_message(OutgoingMessage::new("d1", Some(6), "x"))
        .unwrap()
        .id()
        .to_owned();
    timeout(Duration::from_secs(5), async {
        loop {
            if let ChatEvent::Sent { message_id } = ev.recv().await.unwrap() {
                assert_eq!(message_id, id);
                break;
            }
        }
    })
    .await
    .expect("no Sent: stream management is off");
    assert_eq!(st.binds.load(Ordering::SeqCst), binds, "still reconnecting");
    assert_eq!(c.chat().connection_state(), ConnectionState::Connected);
    c.chat().destroy_chat().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_detects_a_silent_server() {
    let (port, st) = start().await;
    let c = client(port);
    let (_, mut states) = c.chat().subscribe_connection();
    c.chat().connect_chat(auth()).await.unwrap();
    st.silent.store(true, Ordering::SeqCst);
    // ping_interval 1 s of silence, then <r/>, then connect timeout (2 s) without an answer.
    timeout(Duration::from_secs(8), async {
        loop {
            if let ConnectionState::Reconnecting { .. } = states.recv().await.unwrap() {
                break;
            }
        }
    })
    .await
    .expect("dead link not detected");
    st.silent.store(false, Ordering::SeqCst);
    wait_state(&mut states, "Connected", ConnectionState::Connected).await;
    c.chat().destroy_chat().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_messages_are_reported_lost_when_resumption_fails() {
    let (port, st) = start().await;
    let c = client(port);
    let mut ev = c.chat().subscribe_chat();
    c.chat().connect_chat(auth()).await.unwrap();
    st.no_acks.store(true, Ordering::SeqCst);
    let id = c
        .send_queue()
        .send_message(OutgoingMessage::new("d1", Some(6), "x"))
        .unwrap()
        .id()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The session is forgotten: <failed h='0'/>, the stanza cannot be accounted for. (The
    // first attempt after the cut goes at once: the server forgets before the cut.)
    st.forget_sessions.store(true, Ordering::SeqCst);
    st.no_acks.store(false, Ordering::SeqCst);
    let _ = st.kill.as_ref().unwrap().send(());
    let e = timeout(Duration::from_secs(10), async {
        loop {
            let e = ev.recv().await.unwrap();
            if matches!(e, ChatEvent::Failed { .. } | ChatEvent::Sent { .. }) {
                return e;
            }
        }
    })
    .await
    .expect("no status for the message");
    assert!(
        matches!(&e, ChatEvent::Failed { message_id, .. } if *message_id == id),
        "{e:?}"
    );
    c.chat().destroy_chat().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_subscriptions_and_the_inactive_mark_survive_a_fresh_session() {
    let (port, st) = start().await;
    let c = client(port);
    let mut ev = c.chat().subscribe_chat();
    c.chat().connect_chat(auth()).await.unwrap();
    c.chat().subscribe_last_activity(9).await.unwrap();
    c.chat().subscribe_last_activity(4).await.unwrap();
    c.chat().unsubscribe_last_activity(4).await.unwrap();
    c.chat().mark_inactive().unwrap();
    assert_eq!(c.chat().last_activity_subscriptions(), [9]);
    // Payloads containing every `&`-separated part.
    let count = |needle: &str| {
        st.iqs
            .lock()
            .unwrap()
            .iter()
            .filter(|p| needle.split('&').all(|n| p.contains(n)))
            .count()
    };
    let sub9 = "status_streaming&user_jid='9-7@localhost'&enable='true'";
    let inactive = "<mobile&xmlns='http://tigase.org/protocol/mobile#v2'&enable='true'";
    timeout(Duration::from_secs(5), async {
        while count(inactive) < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("mark_inactive not sent");
    assert_eq!(count(sub9), 1);
    assert_eq!(count("user_jid='4-7@localhost'&enable='false'"), 1);

    // The session is lost (resumption fails): a fresh bind sends both again.
    st.forget_sessions.store(true, Ordering::SeqCst);
    let _ = st.kill.as_ref().unwrap().send(());
    timeout(Duration::from_secs(10), async {
        while !(st.binds.load(Ordering::SeqCst) >= 2 && count(sub9) >= 2 && count(inactive) >= 2) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("subscription and mark not re-sent after the reset");
    // The subscribe and the unsubscribe, nothing after the reset.
    assert_eq!(count("4-7@localhost"), 2, "an ended subscription came back");

    // Pushes: any iq type from a user with a jabber:iq:last query and seconds. get/set ones
    // are acknowledged with a result (an error would be echoed back: loops).
    for (kind, id, secs) in [("set", "p1", 0), ("result", "p2", 42), ("get", "p3", 7)] {
        let el: minidom::Element = format!(
            "<iq xmlns='jabber:client' type='{kind}' id='{id}' from='9-7@localhost' to='5-7@localhost'>\
             <query xmlns='jabber:iq:last' seconds='{secs}'/></iq>"
        )
        .parse()
        .unwrap();
        let _ = st.push.as_ref().unwrap().send(el);
        let e = timeout(Duration::from_secs(5), async {
            loop {
                let e = ev.recv().await.unwrap();
                if matches!(e, ChatEvent::LastActivity { .. }) {
                    return e;
                }
            }
        })
        .await
        .expect("no LastActivity event");
        assert_eq!(
            e,
            ChatEvent::LastActivity {
                user_id: 9,
                seconds: secs
            }
        );
    }
    // An error iq is never answered.
    let el: minidom::Element =
        "<iq xmlns='jabber:client' type='error' id='p4' from='9-7@localhost'>\
        <query xmlns='jabber:iq:last'/><error type='cancel'>\
        <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
            .parse()
            .unwrap();
    let _ = st.push.as_ref().unwrap().send(el);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let results = st.results.lock().unwrap().clone();
    for id in ["p1", "p3"] {
        assert!(
            results.iter().any(|r| r == id),
            "{id} not acknowledged: {results:?}"
        );
    }
    assert!(
        !results.iter().any(|r| r == "p2" || r == "p4"),
        "{results:?}"
    );
    c.chat().destroy_chat().await;
    assert!(c.chat().last_activity_subscriptions().is_empty());
}

/// Issue 12 item 7: a server that drops every session right after login. The backoff must
/// not restart at each bind: each short-lived connection counts as a failed attempt, so the
/// attempts number up and the delays grow. A connection that stayed up for `stable_after`
/// restarts the backoff at the first attempt (which goes at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_dropping_every_session_after_login_gets_growing_delays() {
    let (port, st) = start().await;
    let initial = Duration::from_millis(40);
    let stable_after = Duration::from_millis(400);
    let mut cfg = Config::new(7, "key", "http://127.0.0.1:9");
    cfg.chat.host = "127.0.0.1".into();
    cfg.chat.domain = "localhost".into();
    cfg.chat.port = port;
    cfg.chat.insecure_plaintext = true;
    cfg.timeouts.connect = Duration::from_secs(2);
    cfg.reconnect.initial_delay = initial;
    cfg.reconnect.max_delay = Duration::from_secs(5);
    cfg.reconnect.multiplier = 2.0;
    cfg.reconnect.jitter = 0.0;
    cfg.reconnect.stable_after = stable_after;
    let c = Client::new(cfg).unwrap();
    let (_, mut states) = c.chat().subscribe_connection();
    c.chat().connect_chat(auth()).await.unwrap();

    st.drop_when_up.store(true, Ordering::SeqCst);
    let _ = st.kill.as_ref().unwrap().send(());
    // Five reconnection attempts, each after a session that came up and was dropped.
    let mut attempts = Vec::new();
    let mut dropped_before = Vec::new();
    timeout(Duration::from_secs(30), async {
        while attempts.len() < 5 {
            if let ConnectionState::Reconnecting {
                attempt,
                next_delay,
            } = states.recv().await.unwrap()
            {
                attempts.push((attempt, next_delay));
                dropped_before.push(st.dropped.load(Ordering::SeqCst));
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("too few attempts: {attempts:?}"));
    st.drop_when_up.store(false, Ordering::SeqCst);
    // Every attempt after the first (the cut of the session connect_chat made) follows a
    // session that was up and then dropped...
    assert!(
        dropped_before.windows(2).all(|w| w[1] > w[0]),
        "{dropped_before:?} {attempts:?}"
    );
    // ...and the backoff went on: attempts 1, 2, 3... with the schedule's delays (the
    // first at once, then the initial delay, doubling).
    for (i, (attempt, delay)) in attempts.iter().enumerate() {
        let n = u32::try_from(i).unwrap() + 1;
        assert_eq!(*attempt, n, "{attempts:?}");
        let want = if n == 1 {
            Duration::ZERO
        } else {
            initial * 2u32.pow(n - 2)
        };
        assert_eq!(*delay, want, "{attempts:?}");
    }

    // A connection that stays up for `stable_after`, then a cut: attempt 1 again, at
    // once. (A session that came up just before the server stopped dropping
    // may still be dropped: wait for one that stays.)
    let mut stayed = false;
    for _ in 0..5 {
        wait_state(&mut states, "Connected", ConnectionState::Connected).await;
        let dropped = st.dropped.load(Ordering::SeqCst);
        tokio::time::sleep(stable_after + Duration::from_millis(100)).await;
        if st.dropped.load(Ordering::SeqCst) == dropped
            && c.chat().connection_state() == ConnectionState::Connected
        {
            stayed = true;
            break;
        }
    }
    assert!(stayed, "no connection stayed up");
    let _ = st.kill.as_ref().unwrap().send(());
    let first = timeout(Duration::from_secs(10), async {
        loop {
            if let ConnectionState::Reconnecting {
                attempt,
                next_delay,
            } = states.recv().await.unwrap()
            {
                return (attempt, next_delay);
            }
        }
    })
    .await
    .expect("no reconnection after the cut");
    assert_eq!(first, (1, Duration::ZERO));
    wait_state(&mut states, "Connected", ConnectionState::Connected).await;
    c.chat().destroy_chat().await;
}

/// Issue 12 item 9: dropping the `connect_chat` future (a cancelled task or coroutine) while
/// the server is slow to answer abandons the attempt: the client does not connect later on
/// its own, reports `Disconnected`, and the next `connect_chat` works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_connect_chat_leaves_the_client_disconnected_and_reusable() {
    let (port, st) = start().await;
    let c = client(port);
    let slow = Duration::from_millis(1500);
    *st.slow_next.lock().unwrap() = Some(slow);
    {
        let connecting = c.chat().connect_chat(auth());
        tokio::pin!(connecting);
        timeout(Duration::from_secs(10), async {
            tokio::select! {
                r = &mut connecting => panic!("connect_chat resolved: {r:?}"),
                () = async {
                    while st.accepted.load(Ordering::SeqCst) == 0 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                } => {}
            }
        })
        .await
        .expect("no connection attempt");
    } // dropped mid-handshake
    assert_eq!(
        c.chat().connection_state(),
        ConnectionState::Disconnected {
            reason: "connect_chat cancelled".into()
        }
    );
    // The slow server answers later: nobody is there to log in any more.
    tokio::time::sleep(slow + Duration::from_millis(1000)).await;
    assert_eq!(
        st.binds.load(Ordering::SeqCst),
        0,
        "connected after the cancel"
    );
    assert_eq!(
        st.accepted.load(Ordering::SeqCst),
        1,
        "reconnected after the cancel"
    );
    assert!(matches!(
        c.chat().connection_state(),
        ConnectionState::Disconnected { .. }
    ));
    c.chat().connect_chat(auth()).await.unwrap();
    assert_eq!(st.binds.load(Ordering::SeqCst), 1);
    assert_eq!(c.chat().connection_state(), ConnectionState::Connected);
    c.chat().destroy_chat().await;
}

/// With `max_attempts`, connections that keep dropping before they are stable use up the
/// attempts like failed logins do: the engine gives up, and `reconnect_now` starts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_keep_dropping_use_up_max_attempts() {
    let (port, st) = start().await;
    let mut cfg = Config::new(7, "key", "http://127.0.0.1:9");
    cfg.chat.host = "127.0.0.1".into();
    cfg.chat.domain = "localhost".into();
    cfg.chat.port = port;
    cfg.chat.insecure_plaintext = true;
    cfg.timeouts.connect = Duration::from_secs(2);
    cfg.reconnect.initial_delay = Duration::from_millis(20);
    cfg.reconnect.max_delay = Duration::from_millis(100);
    cfg.reconnect.max_attempts = Some(3);
    let c = Client::new(cfg).unwrap();
    let (_, mut states) = c.chat().subscribe_connection();
    c.chat().connect_chat(auth()).await.unwrap();
    st.drop_when_up.store(true, Ordering::SeqCst);
    let _ = st.kill.as_ref().unwrap().send(());
    let mut attempts = Vec::new();
    let reason = timeout(Duration::from_secs(15), async {
        loop {
            match states.recv().await.unwrap() {
                ConnectionState::Reconnecting { attempt, .. } => attempts.push(attempt),
                ConnectionState::Disconnected { reason } => return reason,
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never gave up: {attempts:?}"));
    assert!(reason.contains("gave up after 3 attempts"), "{reason}");
    assert_eq!(attempts, [1, 2, 3]);
    let binds = st.binds.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        st.binds.load(Ordering::SeqCst),
        binds,
        "kept trying after giving up"
    );
    st.drop_when_up.store(false, Ordering::SeqCst);
    c.chat().reconnect_now().await;
    wait_state(&mut states, "Connected", ConnectionState::Connected).await;
    c.chat().destroy_chat().await;
}
