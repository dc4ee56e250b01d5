//! Chaos runs: cubechat-core against a real cubeserver process, the chat connections going
//! through the fault-injecting proxy of `cubechat-faults` (TCP level: TLS passes through and
//! still verifies).
//!
//! - [`messages_survive_cuts_truncations_and_stalls`] (part of `cargo test`, reduced size):
//!   two clients send to each other, half with `send_message`, half through the persistent
//!   queue (`enqueue_message`), while a seeded random plan cuts, truncates, stalls and slows
//!   their connections. Every message must arrive exactly once (as a live event or, missed
//!   during a reconnection gap, through the store's sync into the receiver's live timeline:
//!   chat events are live only; never twice as an event), in order per sender (both paths
//!   are one send queue; in the events and in the receiver's stored timeline), reach `Sent`
//!   in the sender's live timeline, and each
//!   `send_message` must resolve with its id. Twice (`CHAOS_LONG_STALLS`) both connections hang for longer
//!   than the clients' ping and timeout while messages are sent: the clients must give them
//!   up and resume on new ones. Size from the environment: `CHAOS_MESSAGES` (default
//!   1,000), `CHAOS_CUTS` (default 50), `CHAOS_SEED` (default 12), `CHAOS_STALL_MS` (longest
//!   random stall, default 2,500); `make chaos` runs 10,000 / 200 / 10,000 ms / 4 long stalls.
//! - [`clients_come_back_after_a_server_restart`] (`make chaos` only: ignored otherwise):
//!   `CHAOS_CLIENTS` (default 200) clients connected in one process, cubeserver stopped and
//!   started again on the same database, cert dir and ports after they stayed up
//!   `CHAOS_UP_S` (default 31 s); every client must be connected again, and the reconnect
//!   times are printed as a histogram. It needs a cubeserver that keeps its CA in
//!   `--cert-dir` (issue 12 item 6) and says so when it does not.
//!
//! Every wait is bounded; the figures are printed (run with `--nocapture` to see them).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::IntoFuture;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cubechat_core::{
    ChatEvent, ChatEvents, ConnectionState, ConnectionStates, LocalMessage, MessageState,
    OutgoingMessage, VectorDiff,
};
use cubechat_faults::proxy::{Fault, Faults, Proxy, ProxyHandle, RandomFaults};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

use cubechat_e2e as common;

use common::{Server, APP};

/// The longest any single expected event may take.
const STEP: Duration = Duration::from_secs(30);
/// How long "nothing else arrives" is watched for.
const QUIET: Duration = Duration::from_millis(1500);
/// A stall the clients take for a dead connection (ping 2 s + connect timeout 5 s).
const LONG_STALL: Duration = Duration::from_secs(10);
/// Messages sent during a long stall.
const BURST: usize = 20;

use cubechat_e2e::events::*;
use cubechat_e2e::users::*;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How a message was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Path {
    /// `send_message`.
    Direct,
    /// `enqueue_message` (the persistent queue).
    Queue,
}

/// One message the test sent.
#[derive(Clone, Debug)]
struct Sent {
    sender: u64,
    path: Path,
    /// Its rank among the messages of the same sender (both paths).
    seq: usize,
}

/// What a client heard: messages (id, sender) in arrival order, `Sent` and `Failed` ids.
#[derive(Default)]
struct Heard {
    messages: Vec<(String, u64)>,
    sent: HashMap<String, usize>,
    failed: Vec<(String, String)>,
    reconnects: usize,
}

/// Records the chat events and connection states of a client into `heard`.
fn listen(mut rx: ChatEvents, mut states: ConnectionStates, heard: Arc<Mutex<Heard>>) {
    let h = heard.clone();
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            let mut h = h.lock().unwrap();
            match e {
                ChatEvent::Message(m) => h.messages.push((m.id, m.sender_id)),
                ChatEvent::Sent { message_id } => *h.sent.entry(message_id).or_default() += 1,
                ChatEvent::Failed { message_id, reason } => h.failed.push((message_id, reason)),
                ChatEvent::MessageError {
                    message_id, code, ..
                } => h.failed.push((message_id, format!("MessageError {code}"))),
                _ => {}
            }
        }
    });
    tokio::spawn(async move {
        while let Some(s) = states.recv().await {
            if matches!(s, ConnectionState::Reconnecting { .. }) {
                heard.lock().unwrap().reconnects += 1;
            }
        }
    });
}

/// Waits (bounded) until the proxy has cut `due` connections.
async fn cuts_reach(px: &ProxyHandle, due: u64) {
    timeout(Duration::from_secs(120), async {
        while px.counters().cuts < due {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {:?} after 120 s", px.counters()));
}

/// Two clients, both send paths, through a proxy running a seeded random fault plan; the
/// sending is paced by the cuts so that the faults fall all along the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_survive_cuts_truncations_and_stalls() {
    let total = env_or("CHAOS_MESSAGES", 1000) as usize;
    let cuts = env_or("CHAOS_CUTS", 50);
    let seed = env_or("CHAOS_SEED", 12);
    let stall_ms = env_or("CHAOS_STALL_MS", 2500);
    let started = Instant::now();

    let s = common::start().await;
    let px = Proxy::start(([127, 0, 0, 1], s.xmpp_port()).into(), Faults::None)
        .await
        .unwrap();
    sign_up(&s, "chaos_a").await;
    sign_up(&s, "chaos_b").await;
    let through_proxy = |c: &mut cubechat_core::Config| {
        c.chat.port = px.port();
        c.timeouts.ping_interval = Duration::from_secs(2);
    };
    let a = log_in(&s, "chaos_a", through_proxy).await;
    let b = log_in(&s, "chaos_b", through_proxy).await;
    let d = private_dialog(&a, &b).await;
    let heard: Vec<Arc<Mutex<Heard>>> = (0..2).map(|_| Arc::default()).collect();
    for (u, h) in [&a, &b].into_iter().zip(&heard) {
        let (_, states) = u.c.chat().subscribe_connection();
        listen(u.c.chat().subscribe_chat(), states, h.clone());
        u.c.chat()
            .connect_chat(cubechat_core::ChatAuth::SessionToken)
            .await
            .unwrap();
    }

    // The ids each sender's live timeline showed as Sent (or beyond), and the incoming ids
    // each receiver's live timeline showed: chat events are live only, so a message missed
    // during a reconnection gap reaches the receiver through the store's sync, as a diff.
    let shown_sent: Vec<Arc<Mutex<HashSet<String>>>> = (0..2).map(|_| Arc::default()).collect();
    let shown_in: Vec<Arc<Mutex<HashSet<String>>>> = (0..2).map(|_| Arc::default()).collect();
    for ((u, shown), shown_in) in [&a, &b].into_iter().zip(&shown_sent).zip(&shown_in) {
        let (_, mut rx) = u.c.timeline().watch_timeline(&d, 50).unwrap();
        let shown = shown.clone();
        let shown_in = shown_in.clone();
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                let changed: Vec<LocalMessage> = match e {
                    VectorDiff::Reset { values } => values,
                    e => e.value().cloned().into_iter().collect(),
                };
                for m in changed {
                    if !m.outgoing {
                        shown_in.lock().unwrap().insert(m.id.clone());
                    }
                    if matches!(
                        m.state,
                        MessageState::Sent | MessageState::Delivered | MessageState::Read
                    ) {
                        shown.lock().unwrap().insert(m.id);
                    }
                }
            }
        });
    }

    let mut plan = RandomFaults::new(seed);
    plan.gap = (Duration::from_millis(200), Duration::from_millis(1200));
    // Stalls longer than ping + connect timeout (2 + 5 s) make the client give the
    // connection up and resume on a new one while the old one still hangs.
    plan.stall = (Duration::from_millis(200), Duration::from_millis(stall_ms));
    px.set_faults(Faults::Random(plan.clone()));

    // Message k is sent once the proxy has cut k * cuts / total connections.
    let mut sent: BTreeMap<String, Sent> = BTreeMap::new();
    let mut seqs: HashMap<u64, usize> = HashMap::new();
    let mut call_errors = 0usize;
    // What each `send_message` resolved to (awaited in the background).
    let mut outcomes = Vec::new();
    // Long stalls: the random plan pauses, both connections hang for LONG_STALL (longer than
    // ping + connect timeout) while BURST messages are sent, then the plan goes on.
    let long_stalls = env_or("CHAOS_LONG_STALLS", 2) as usize;
    let long_at: Vec<usize> = (1..=long_stalls)
        .map(|j| total * j / (long_stalls + 1))
        .collect();
    let mut burst = 0usize;
    let (mut long_hung, mut long_new, mut accepted_before) = (0usize, 0u64, 0u64);
    let mut stall_end = Instant::now();
    for k in 0..total {
        if long_at.contains(&k) {
            px.set_faults(Faults::None);
            // Both clients online (or as many as come back within STEP).
            let _ = timeout(STEP, async {
                while px.live() < 2 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await;
            long_hung += px.inject(Fault::Stall(LONG_STALL));
            accepted_before = px.counters().accepted;
            stall_end = Instant::now() + LONG_STALL;
            burst = BURST;
        }
        if burst == 0 {
            cuts_reach(&px, k as u64 * cuts / total as u64).await;
        } else {
            burst -= 1;
            if burst == 0 {
                tokio::time::sleep_until(stall_end.into()).await;
                long_new += px.counters().accepted - accepted_before;
                px.resume();
                plan.seed += 1;
                px.set_faults(Faults::Random(plan.clone()));
            }
        }
        let (from, to) = if k % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let path = if (k / 2) % 2 == 0 {
            Path::Direct
        } else {
            Path::Queue
        };
        let seq = seqs.entry(from.id).or_default();
        let body = format!("chaos {k}");
        let m = OutgoingMessage::new(&d, Some(to.id), body);
        let id = match path {
            // Not awaited here: the echo is queued at the call, the outcome comes later.
            Path::Direct => from.c.send_queue().send_message(m).map(|s| {
                let id = s.id().to_owned();
                outcomes.push((id.clone(), tokio::spawn(s.into_future())));
                id
            }),
            Path::Queue => from
                .c
                .send_queue()
                .enqueue_message(m, Vec::new())
                .map(|l| l.id),
        };
        match id {
            Ok(id) => {
                sent.insert(
                    id,
                    Sent {
                        sender: from.id,
                        path,
                        seq: *seq,
                    },
                );
                *seq += 1;
            }
            // The SDK promises nothing for a call that failed: not counted.
            Err(e) => {
                assert!(path == Path::Direct, "enqueue_message failed: {e:?}");
                call_errors += 1;
            }
        }
    }
    // The last messages are still in flight: the faults go on until the last cut.
    cuts_reach(&px, cuts).await;
    let faults = px.counters();
    px.set_faults(Faults::None);
    px.resume();
    let sending = started.elapsed();

    // Everything arrives and is acknowledged (bounded), then nothing more arrives.
    let receiver = |m: &Sent| if m.sender == a.id { 1 } else { 0 };
    // Received: as a live event, or (missed during a gap) synced into the live timeline.
    let received = |i: usize, id: &str| {
        heard[i]
            .lock()
            .unwrap()
            .messages
            .iter()
            .any(|(m, _)| m == id)
            || shown_in[i].lock().unwrap().contains(id)
    };
    let done = || {
        sent.iter().all(|(id, m)| {
            let got = received(receiver(m), id);
            got && heard[1 - receiver(m)].lock().unwrap().sent.contains_key(id)
        })
    };
    let _ = timeout(Duration::from_secs(120), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    tokio::time::sleep(QUIET).await;
    // Every `send_message` resolved with its id (they are acknowledged by now).
    let mut unresolved = Vec::new();
    for (id, h) in outcomes {
        match timeout(STEP, h).await {
            Ok(Ok(Ok(got))) => assert_eq!(got, id),
            other => unresolved.push(format!("{id}: {other:?}")),
        }
    }

    // Figures.
    let mut lost = Vec::new();
    let mut dup = Vec::new();
    let mut reordered = 0usize;
    let mut synced_only = 0usize;
    let mut not_sent = Vec::new();
    for (i, h) in heard.iter().enumerate() {
        let h = h.lock().unwrap();
        let mut count: HashMap<&str, usize> = HashMap::new();
        let mut last: HashMap<u64, usize> = HashMap::new();
        for (id, _) in &h.messages {
            *count.entry(id.as_str()).or_default() += 1;
            if let Some(m) = sent.get(id) {
                let prev = last.entry(m.sender).or_insert(m.seq);
                if m.seq < *prev {
                    reordered += 1;
                }
                *prev = (*prev).max(m.seq);
            }
        }
        for (id, m) in &sent {
            if receiver(m) != i {
                continue;
            }
            match count.get(id.as_str()).copied().unwrap_or(0) {
                0 if shown_in[i].lock().unwrap().contains(id) => synced_only += 1,
                0 => lost.push(id.clone()),
                1 => {}
                _ => dup.push(id.clone()),
            }
        }
    }
    // The receivers' timelines (the store, as the app reads it) hold each sender's messages
    // in send order too, the synced ones included.
    for u in [&a, &b] {
        let stored =
            u.c.store()
                .unwrap()
                .timeline(&d, None, sent.len() as u32 + 10)
                .unwrap();
        let mut last: HashMap<u64, usize> = HashMap::new();
        for l in stored.iter().filter(|l| !l.outgoing) {
            if let Some(m) = sent.get(&l.id) {
                let prev = last.entry(m.sender).or_insert(m.seq);
                if m.seq < *prev {
                    reordered += 1;
                }
                *prev = (*prev).max(m.seq);
            }
        }
    }
    for (id, m) in &sent {
        let sender = if m.sender == a.id { &a } else { &b };
        let acked = heard[1 - receiver(m)].lock().unwrap().sent.contains_key(id);
        let state = sender
            .c
            .store()
            .unwrap()
            .message(id)
            .unwrap()
            .map(|l| l.state);
        // Both paths: the live timeline showed it Sent, and the store agrees (unless the
        // message has left the cache: a sync that fetches a bounded window trims what lies
        // before it).
        let ok = acked
            && shown_sent[1 - receiver(m)].lock().unwrap().contains(id)
            && matches!(
                state,
                None | Some(MessageState::Sent | MessageState::Delivered | MessageState::Read)
            );
        if !ok {
            let pending = sender
                .c
                .send_queue()
                .pending_messages()
                .unwrap()
                .iter()
                .any(|p| p.id == *id);
            not_sent.push(format!(
                "{id} ({:?} #{}, Sent events {:?}, state {state:?}, pending {pending})",
                m.path,
                m.seq,
                heard[1 - receiver(m)].lock().unwrap().sent.get(id)
            ));
        }
    }
    let failed: Vec<_> = heard
        .iter()
        .flat_map(|h| h.lock().unwrap().failed.clone())
        .collect();
    let reconnects: usize = heard.iter().map(|h| h.lock().unwrap().reconnects).sum();
    let strays: usize = heard
        .iter()
        .map(|h| {
            h.lock()
                .unwrap()
                .messages
                .iter()
                .filter(|(id, _)| !sent.contains_key(id))
                .count()
        })
        .sum();
    println!(
        "chaos: seed {seed}, {} messages ({} send_message, {} queued; {call_errors} calls failed), \
         {} connections, {} cuts, {} truncations, {} stalls, {} slowdowns ({} faults injected), \
         {reconnects} reconnections; {long_stalls} long stalls hung {long_hung} connections, \
         {long_new} new connections meanwhile: lost {}, duplicated {}, reordered {reordered}, synced only {synced_only}, not Sent {}, \
         Failed events {}, strays {strays}; sending {:.1} s, total {:.1} s",
        sent.len(),
        sent.values().filter(|m| m.path == Path::Direct).count(),
        sent.values().filter(|m| m.path == Path::Queue).count(),
        faults.accepted,
        faults.cuts,
        faults.truncations,
        faults.stalls,
        faults.slowdowns,
        faults.injected,
        lost.len(),
        dup.len(),
        not_sent.len(),
        failed.len(),
        sending.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    assert!(faults.cuts >= cuts, "{faults:?}");
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(dup.is_empty(), "duplicated: {dup:?}");
    assert_eq!(reordered, 0, "reordered");
    assert!(not_sent.is_empty(), "not Sent: {not_sent:?}");
    assert!(
        unresolved.is_empty(),
        "send_message did not resolve: {unresolved:?}"
    );
    assert!(failed.is_empty(), "Failed events: {failed:?}");
    assert_eq!(strays, 0, "messages nobody sent");
    assert!(a.c.send_queue().pending_messages().unwrap().is_empty());
    assert!(b.c.send_queue().pending_messages().unwrap().is_empty());
    assert_eq!(sent.len() + call_errors, total);
}

// ---------------------------------------------------------------------------------------
// Server restart

/// A cubeserver process started by this test with `args`; its ready line.
async fn spawn_server(args: &[String]) -> (Child, Value) {
    let mut child = Command::new(common::cubeserver_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("ready line in time")
        .unwrap()
        .expect("a ready line");
    (child, serde_json::from_str(&line).unwrap())
}

/// Stops a server with SIGTERM and waits for it to exit.
async fn stop_server(mut child: Child) {
    let pid = child.id().unwrap().to_string();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("cubeserver stops in time")
        .unwrap();
}

fn port(ready: &Value, key: &str) -> String {
    ready[key].as_u64().unwrap().to_string()
}

/// `CHAOS_CLIENTS` clients (default 200) connected (default reconnection policy, jittered),
/// cubeserver restarted on the same database, cert dir and ports: every client connects
/// again; the times from the restarted server's ready line to each client's `Connected`
/// are printed as a histogram.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "make chaos: 200 clients and a server restart"]
async fn clients_come_back_after_a_server_restart() {
    let n = env_or("CHAOS_CLIENTS", 200) as usize;
    let dir = std::env::temp_dir().join(common::unique("cubechat-chaos-"));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("db.sqlite3").display().to_string();
    let certs = dir.join("certs").display().to_string();
    let app = format!("{}:{}:{}", APP.0, APP.1, APP.2);
    let base = |ports: Option<&Value>| {
        let mut v: Vec<String> = ["--app", &app, "--db", &db, "--cert-dir", &certs]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (api, x, xt) = match ports {
            Some(r) => {
                let api = r["api_url"].as_str().unwrap();
                let api = api.rsplit(':').next().unwrap().to_owned();
                (api, port(r, "xmpp_port"), port(r, "xmpp_tls_port"))
            }
            None => ("0".into(), "0".into(), "0".into()),
        };
        v.extend([
            "--api-port".into(),
            api,
            "--xmpp-port".into(),
            x,
            "--xmpp-tls-port".into(),
            xt,
        ]);
        v
    };
    let (child, ready) = spawn_server(&base(None)).await;
    let s = Server::attach(ready.clone());
    let ca_before = s.ca_pem();

    let t = Instant::now();
    let mut clients = Vec::new();
    let mut all_states = Vec::new();
    for i in 0..n {
        let login = format!("restart_{i}");
        sign_up(&s, &login).await;
        let u = log_in(&s, &login, |c| {
            c.reconnect = cubechat_core::config::ReconnectPolicy::default();
        })
        .await;
        let (_, states) = u.c.chat().subscribe_connection();
        u.c.chat()
            .connect_chat(cubechat_core::ChatAuth::SessionToken)
            .await
            .unwrap();
        clients.push(u);
        all_states.push(states);
    }
    println!(
        "restart: {n} clients signed up, logged in and connected in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Every client records when it is connected again (after having lost the connection).
    let back: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; n]));
    let mut watchers = Vec::new();
    for (i, mut states) in all_states.into_iter().enumerate() {
        let back = back.clone();
        // The states of the first connection are old news.
        while states.try_recv().is_ok() {}
        watchers.push(tokio::spawn(async move {
            let mut lost = false;
            while let Some(s) = states.recv().await {
                match s {
                    ConnectionState::Connected if lost => {
                        back.lock().unwrap()[i] = Some(Instant::now());
                        return;
                    }
                    ConnectionState::Reconnecting { .. } | ConnectionState::Disconnected { .. } => {
                        lost = true
                    }
                    _ => {}
                }
            }
        }));
    }

    // The clients stay up a while first, as before a real restart (a backoff that restarts
    // only after a connection stayed up for a while must see these as stable ones).
    tokio::time::sleep(Duration::from_secs(env_or("CHAOS_UP_S", 31))).await;
    let down = Instant::now();
    stop_server(child).await;
    let (child, ready2) = spawn_server(&base(Some(&ready))).await;
    let up = Instant::now();
    let ca_after = Server::attach(ready2.clone()).ca_pem();
    assert_eq!(
        (ready2["api_url"].clone(), ready2["xmpp_port"].clone()),
        (ready["api_url"].clone(), ready["xmpp_port"].clone()),
        "same ports"
    );
    assert!(
        ca_before == ca_after,
        "the restarted cubeserver made a new CA in the same --cert-dir: no client can trust it \
         (issue 12 item 6; this run depends on that fix)"
    );

    let _ = timeout(Duration::from_secs(180), async {
        while back.lock().unwrap().iter().any(Option::is_none) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let times: Vec<Option<Duration>> = back
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.map(|t| t.saturating_duration_since(up)))
        .collect();
    let missing = times.iter().filter(|t| t.is_none()).count();
    let mut ok: Vec<Duration> = times.into_iter().flatten().collect();
    ok.sort();
    let buckets = [0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 60.0, f64::INFINITY];
    let mut lines = Vec::new();
    let mut lo = 0.0;
    for hi in buckets {
        let c = ok
            .iter()
            .filter(|d| d.as_secs_f64() >= lo && d.as_secs_f64() < hi)
            .count();
        lines.push(format!(
            "  [{lo:>4}, {hi:>4}) s: {c:>4} {}",
            "#".repeat(c.div_ceil(2))
        ));
        lo = hi;
    }
    let pct = |p: f64| {
        ok.get(((ok.len() as f64 * p) as usize).min(ok.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64())
            .unwrap_or(f64::NAN)
    };
    println!(
        "restart: server down {:.2} s; {} of {n} clients connected again (from the restarted \
         server's ready line: median {:.2} s, p90 {:.2} s, max {:.2} s)\n{}",
        up.duration_since(down).as_secs_f64(),
        ok.len(),
        pct(0.5),
        pct(0.9),
        ok.last().map(|d| d.as_secs_f64()).unwrap_or(f64::NAN),
        lines.join("\n")
    );
    assert_eq!(missing, 0, "clients not connected again within 180 s");

    // The reconnected sessions carry messages.
    let (u0, u1) = (&clients[0], &clients[1]);
    let d = private_dialog(u0, u1).await;
    let mut ev = Ev::new(u1.c.chat().subscribe_chat());
    let id =
        u0.c.send_queue()
            .send_message(OutgoingMessage::new(&d, Some(u1.id), "after restart"))
            .unwrap()
            .id()
            .to_owned();
    ev.message("a message after the restart", |m| m.id == id)
        .await;

    for w in watchers {
        w.abort();
    }
    for u in &clients {
        u.c.chat().disconnect_chat().await;
    }
    stop_server(child).await;
    let _ = std::fs::remove_dir_all(&dir);
}
