//! cubechat's client benchmark against a private ejabberd (`bench/run.sh`, `make bench`).
//!
//! ```text
//! cubechat-bench [perf] [--store on|off] [--connect-n 50] [--msgs 20000] [--window 1000]
//!                [--rtt-n 1000] [--warmup 2] [--phases connect,throughput,rtt]
//!                [--deadline 240] [--phase-timeout 120] [--user-base 0]
//! cubechat-bench memory [--clients 1,100,1000]
//! cubechat-bench resume [--cuts 20]
//! ```
//!
//! Ports, domain, CA file and the server's pid come from `$EJD_*` / `$EJABBERD_PID`
//! (`bench/ejabberd/start.sh` writes them), like the peers' scripts. Users are cubechat's
//! `{id}-{app}@domain` (app 7, ids `user_base+1..`, password `pw`), registered by the driver.
//!
//! `perf` prints the same JSON line as the peer benchmarks (`bench/peers/common.py` defines every
//! figure): 50 logins, 20,000 messages A→B (100-byte body, a delivery-marker request, window 1000
//! with hysteresis 500), 1000 ping-pongs. A and B are two clients in this process, so client CPU
//! covers sending and receiving. `--store on`: every client keeps its local store in a file
//! (`Config::store_dir` in a temporary directory, opened with `open_store`), so every message
//! is persisted; `--store off`: the default configuration, whose store is in memory (the engine
//! has no send path without a store).
//!
//! `memory` connects 1, then 100, then 1000 clients in this process and reports the resident
//! memory at each level. `resume` measures the time from a forced cut (an in-process TCP proxy
//! severs the connection; ejabberd stays reachable) to `Connected` again, and from
//! `set_network_available(true)` (after `false`) to `Connected`.
//!
//! Every loop is bounded in count and in time (`--phase-timeout`, `--deadline`); on a failure
//! the program prints `{"lib":"cubechat","error":...}` and exits with status 2.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cubechat_core::{
    ChatAuth, ChatEvent, ChatEvents, Client, Config, ConnectionState, ConnectionStates,
    OutgoingMessage,
};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::timeout;

type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The message body: exactly 100 ASCII bytes, as in the peers' scripts.
fn body() -> String {
    "benchmark payload ".repeat(8)[..100].to_owned()
}
/// The dialog every benchmark message names.
const DIALOG: &str = "bench";
/// Linux USER_HZ: the unit of utime/stime in `/proc/*/stat`.
const CLK_TCK: f64 = 100.0;

/// Command-line options (same names and defaults as the peers' scripts).
#[derive(Debug, Clone)]
struct Args {
    mode: String,
    host: String,
    port: u16,
    tls_port: u16,
    domain: String,
    password: String,
    app_id: u64,
    user_base: u64,
    ca_file: Option<String>,
    server_pid: Option<u32>,
    store: bool,
    connect_n: usize,
    msgs: u64,
    window: u64,
    rtt_n: usize,
    warmup: usize,
    phases: String,
    deadline: f64,
    phase_timeout: Duration,
    clients: Vec<usize>,
    cuts: usize,
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

fn parse_args() -> AnyResult<Args> {
    let mut a = Args {
        mode: "perf".into(),
        host: "127.0.0.1".into(),
        port: env_or("EJD_C2S_PORT", "15222").parse()?,
        tls_port: env_or("EJD_C2S_TLS_PORT", "15223").parse()?,
        domain: env_or("EJD_DOMAIN", "localhost"),
        password: env_or("EJD_PASSWORD", "pw"),
        app_id: 7,
        user_base: 0,
        ca_file: std::env::var("EJD_CA_FILE").ok(),
        server_pid: std::env::var("EJABBERD_PID")
            .ok()
            .and_then(|p| p.parse().ok()),
        store: false,
        connect_n: 50,
        msgs: 20_000,
        window: 1000,
        rtt_n: 1000,
        warmup: 2,
        phases: "connect,throughput,rtt".into(),
        deadline: 240.0,
        phase_timeout: Duration::from_secs(120),
        clients: vec![1, 100, 1000],
        cuts: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        if !arg.starts_with("--") {
            a.mode = arg;
            continue;
        }
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) => (k[2..].to_owned(), v.to_owned()),
            None => {
                let v = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
                (arg[2..].to_owned(), v)
            }
        };
        match key.as_str() {
            "host" => a.host = value,
            "port" => a.port = value.parse()?,
            "tls-port" => a.tls_port = value.parse()?,
            "domain" => a.domain = value,
            "password" => a.password = value,
            "app-id" => a.app_id = value.parse()?,
            "user-base" => a.user_base = value.parse()?,
            "ca-file" => a.ca_file = Some(value),
            "server-pid" => a.server_pid = Some(value.parse()?),
            "sm" if value == "on" => {}
            "sm" => return Err("cubechat always enables stream management (--sm on)".into()),
            "store" => a.store = value == "on",
            "connect-n" => a.connect_n = value.parse()?,
            "msgs" => a.msgs = value.parse()?,
            "window" => a.window = value.parse()?,
            "rtt-n" => a.rtt_n = value.parse()?,
            "warmup" => a.warmup = value.parse()?,
            "phases" => a.phases = value,
            "deadline" => a.deadline = value.parse()?,
            "phase-timeout" => a.phase_timeout = Duration::from_secs_f64(value.parse()?),
            "clients" => {
                a.clients = value.split(',').map(str::parse).collect::<Result<_, _>>()?;
            }
            "cuts" => a.cuts = value.parse()?,
            _ => return Err(format!("unknown option --{key}").into()),
        }
    }
    if !["perf", "memory", "resume"].contains(&a.mode.as_str()) {
        return Err(format!("unknown mode {}", a.mode).into());
    }
    Ok(a)
}

// ---- measurement ------------------------------------------------------------------------

/// CPU seconds of this process, all threads (also those that ended).
fn cpu_self() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// user+sys CPU seconds of another process, from `/proc/PID/stat`.
fn cpu_proc(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let u: f64 = fields.get(11)?.parse().ok()?;
    let s: f64 = fields.get(12)?.parse().ok()?;
    Some((u + s) / CLK_TCK)
}

/// Busy CPU seconds of the whole machine (all cores), from `/proc/stat`.
fn cpu_machine() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    Some((v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7)?) / CLK_TCK)
}

/// A line of `/proc/self/status` in MB (`VmRSS`, `VmHWM`).
fn status_mb(key: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Wall clock, own CPU, server CPU and everybody else's CPU over one phase.
struct Meter {
    server_pid: Option<u32>,
    t0: Instant,
    c0: f64,
    s0: Option<f64>,
    m0: Option<f64>,
}

/// What a [`Meter`] measured.
struct Measured {
    wall: f64,
    cpu: f64,
    server: Option<f64>,
    other_pct: Option<f64>,
}

impl Meter {
    fn start(server_pid: Option<u32>) -> Self {
        let m0 = cpu_machine();
        Self {
            server_pid,
            t0: Instant::now(),
            c0: cpu_self(),
            s0: cpu_proc(server_pid),
            m0,
        }
    }

    fn stop(self) -> Measured {
        let wall = self.t0.elapsed().as_secs_f64();
        let cpu = cpu_self() - self.c0;
        let server = match (self.s0, cpu_proc(self.server_pid)) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let other_pct = match (self.m0, cpu_machine()) {
            (Some(a), Some(b)) if wall > 0.0 => {
                Some(((b - a) - cpu - server.unwrap_or(0.0)).max(0.0) / (wall * cores) * 100.0)
            }
            _ => None,
        };
        Measured {
            wall,
            cpu,
            server,
            other_pct,
        }
    }
}

/// Nearest-rank percentile of a non-empty list.
fn pct(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let k = ((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[k]
}

fn rnd(x: f64, digits: i32) -> Value {
    let f = 10f64.powi(digits);
    json!((x * f).round() / f)
}

fn rnd_opt(x: Option<f64>, digits: i32) -> Value {
    x.map_or(Value::Null, |x| rnd(x, digits))
}

fn per(total: Option<f64>, n: usize, scale: f64) -> Option<f64> {
    total.filter(|_| n > 0).map(|t| t / n as f64 * scale)
}

// ---- clients ----------------------------------------------------------------------------

struct Bench {
    args: Args,
    body: String,
    ca: Option<String>,
    store_root: Option<std::path::PathBuf>,
}

impl Bench {
    fn user(&self, i: u64) -> u64 {
        self.args.user_base + i
    }

    fn config(&self, port: u16) -> Config {
        let a = &self.args;
        // No REST server: chat-only logins by password.
        let mut c = Config::new(a.app_id, "bench", "http://127.0.0.1:9");
        c.chat.host = a.host.clone();
        c.chat.domain = a.domain.clone();
        c.chat.port = port;
        c.chat.tls_port = a.tls_port;
        c.tls.extra_ca_pem = self.ca.clone();
        // The peers do not answer receipt requests either.
        c.chat_options.auto_send_delivered = false;
        c.store_dir = self.store_root.clone();
        c
    }

    /// A new client for `user`; with `--store on` its store (a file) is open.
    fn client(&self, user: u64, port: u16) -> AnyResult<Arc<Client>> {
        let c = Client::new(self.config(port))?;
        if self.store_root.is_some() {
            c.open_store(user)?;
        }
        Ok(c)
    }

    fn auth(&self, user: u64) -> ChatAuth {
        ChatAuth::Password {
            user_id: Some(user),
            password: self.args.password.clone(),
        }
    }

    async fn login(&self, c: &Client, user: u64) -> AnyResult<()> {
        timeout(
            self.args.phase_timeout,
            c.chat().connect_chat(self.auth(user)),
        )
        .await
        .map_err(|_| "login timed out")??;
        Ok(())
    }
}

async fn logout(c: &Client) {
    let _ = timeout(Duration::from_secs(5), c.chat().disconnect_chat()).await;
}

/// The next event of `rx` that `pred` accepts, within `limit`.
async fn next_event<T>(
    rx: &mut cubechat_core::EventStream<T>,
    limit: Duration,
    what: &str,
    mut pred: impl FnMut(&T) -> bool,
) -> AnyResult<T> {
    timeout(limit, async {
        while let Some(e) = rx.recv().await {
            if pred(&e) {
                return Ok(e);
            }
        }
        Err(format!("stream ended waiting for {what}").into())
    })
    .await
    .map_err(|_| format!("timed out waiting for {what}"))?
}

fn chat_message(to: u64, markable: bool, body: &str) -> OutgoingMessage {
    let mut m = OutgoingMessage::new(DIALOG, Some(to), body);
    m.markable = markable;
    m
}

// ---- perf: connect, throughput, rtt -----------------------------------------------------

async fn phase_connect(b: &Bench) -> AnyResult<Value> {
    let n = b.args.connect_n;
    let port = b.args.port;
    for i in 0..b.args.warmup {
        let user = b.user(50 - i as u64);
        let c = b.client(user, port)?;
        b.login(&c, user).await?;
        logout(&c).await;
    }
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let user = b.user(1 + (i % 50) as u64);
        clients.push((user, b.client(user, port)?));
    }
    let mut lat_ms = Vec::with_capacity(n);
    let meter = Meter::start(b.args.server_pid);
    for (user, c) in &clients {
        let t0 = Instant::now();
        b.login(c, *user).await?;
        lat_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        logout(c).await;
    }
    let m = meter.stop();
    drop(clients);
    Ok(json!({
        "n": n, "p50_ms": rnd(pct(&lat_ms, 50.0), 2), "p95_ms": rnd(pct(&lat_ms, 95.0), 2),
        "min_ms": rnd(pct(&lat_ms, 0.0), 2), "max_ms": rnd(pct(&lat_ms, 100.0), 2),
        "mean_ms": rnd(lat_ms.iter().sum::<f64>() / n as f64, 2),
        "client_cpu_ms_per_login": rnd_opt(per(Some(m.cpu), n, 1e3), 2),
        "server_cpu_ms_per_login": rnd_opt(per(m.server, n, 1e3), 2),
        "other_cpu_pct": rnd_opt(m.other_pct, 0),
    }))
}

/// Flow control between A's sends and B's receptions (the peers' window with hysteresis).
#[derive(Default)]
struct Flow {
    sent: AtomicU64,
    recv: AtomicU64,
    target: AtomicU64,
    window: u64,
    wake: Notify,
    done: Notify,
    t_last: Mutex<Option<Instant>>,
}

impl Flow {
    fn on_received(&self) {
        let r = self.recv.fetch_add(1, Ordering::SeqCst) + 1;
        if r >= self.target.load(Ordering::SeqCst) {
            if let Ok(mut t) = self.t_last.lock() {
                *t = Some(Instant::now());
            }
            self.done.notify_one();
        } else if self.window > 0
            && self.sent.load(Ordering::SeqCst).saturating_sub(r) <= self.window / 2
        {
            self.wake.notify_one();
        }
    }

    fn in_flight(&self) -> u64 {
        self.sent
            .load(Ordering::SeqCst)
            .saturating_sub(self.recv.load(Ordering::SeqCst))
    }
}

/// Sends `count` messages A→B within the window and waits until B received them all.
async fn blast(b: &Bench, a: &Client, to: u64, flow: &Flow, count: u64) -> AnyResult<()> {
    // Like the peers: each wait is bounded by --phase-timeout (the whole run by --deadline).
    let limit = b.args.phase_timeout;
    flow.target
        .store(flow.recv.load(Ordering::SeqCst) + count, Ordering::SeqCst);
    for _ in 0..count {
        while flow.window > 0 && flow.in_flight() >= flow.window {
            timeout(limit, flow.wake.notified())
                .await
                .map_err(|_| "throughput: window wait timed out")?;
        }
        // The returned `Sending` is not awaited: the acknowledgement is the engine's business.
        drop(
            a.send_queue()
                .send_message(chat_message(to, true, &b.body))?,
        );
        flow.sent.fetch_add(1, Ordering::SeqCst);
    }
    while flow.recv.load(Ordering::SeqCst) < flow.target.load(Ordering::SeqCst) {
        timeout(limit, flow.done.notified())
            .await
            .map_err(|_| "throughput: not all messages arrived in time")?;
    }
    Ok(())
}

async fn phase_throughput(b: &Bench) -> AnyResult<Value> {
    let (ua, ub) = (b.user(51), b.user(52));
    let a = b.client(ua, b.args.port)?;
    let bc = b.client(ub, b.args.port)?;
    let mut b_rx = bc.chat().subscribe_chat();
    let (ra, rb) = tokio::join!(b.login(&a, ua), b.login(&bc, ub));
    ra?;
    rb?;
    let flow = Arc::new(Flow {
        window: b.args.window,
        ..Flow::default()
    });
    let f2 = flow.clone();
    let receiver = tokio::spawn(async move {
        while let Some(e) = b_rx.recv().await {
            if let ChatEvent::Message(m) = e {
                if !m.body.is_empty() {
                    f2.on_received();
                }
            }
        }
    });
    let warm = (b.args.warmup * 50) as u64;
    blast(b, &a, ub, &flow, warm).await?;
    let n = b.args.msgs;
    let meter = Meter::start(b.args.server_pid);
    let t0 = Instant::now();
    blast(b, &a, ub, &flow, n).await?;
    let m = meter.stop();
    let t_last = flow
        .t_last
        .lock()
        .map_err(|_| "poisoned")?
        .unwrap_or_else(Instant::now);
    let wall = t_last.duration_since(t0).as_secs_f64();
    tokio::join!(logout(&a), logout(&bc));
    receiver.abort();
    let received = flow.recv.load(Ordering::SeqCst) - warm;
    let nn = n as usize;
    Ok(json!({
        "n": n, "window": b.args.window, "received": received, "send_errors": 0,
        "wall_s": rnd(wall, 3), "msgs_per_s": rnd(n as f64 / wall, 0),
        "client_cpu_s": rnd(m.cpu, 3),
        "client_cpu_us_per_msg": rnd_opt(per(Some(m.cpu), nn, 1e6), 1),
        "server_cpu_s": rnd_opt(m.server, 2),
        "server_cpu_us_per_msg": rnd_opt(per(m.server, nn, 1e6), 1),
        "other_cpu_pct": rnd_opt(m.other_pct, 0),
        "measured_wall_s": rnd(m.wall, 3),
    }))
}

/// One ping-pong: A sends, B's echo arrives at A; microseconds.
async fn ping(a: &Client, a_rx: &mut ChatEvents, to: u64, body: &str) -> AnyResult<f64> {
    let t0 = Instant::now();
    drop(a.send_queue().send_message(chat_message(to, true, body))?);
    next_event(
        a_rx,
        Duration::from_secs(10),
        "pong",
        |e| matches!(e, ChatEvent::Message(m) if !m.body.is_empty()),
    )
    .await?;
    Ok(t0.elapsed().as_secs_f64() * 1e6)
}

async fn phase_rtt(b: &Bench) -> AnyResult<Value> {
    let (ua, ub) = (b.user(53), b.user(54));
    let a = b.client(ua, b.args.port)?;
    let bc = b.client(ub, b.args.port)?;
    let mut a_rx = a.chat().subscribe_chat();
    let mut b_rx = bc.chat().subscribe_chat();
    let (ra, rb) = tokio::join!(b.login(&a, ua), b.login(&bc, ub));
    ra?;
    rb?;
    // B echoes every chat message back to A.
    let b2 = bc.clone();
    let (echoed, echo_errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (echoed2, echo_errors2) = (echoed.clone(), echo_errors.clone());
    let echo = tokio::spawn(async move {
        while let Some(e) = b_rx.recv().await {
            if let ChatEvent::Message(m) = e {
                if !m.body.is_empty() {
                    let r = b2
                        .send_queue()
                        .send_message(chat_message(ua, false, &m.body));
                    match r {
                        Ok(_) => echoed2.fetch_add(1, Ordering::SeqCst),
                        Err(_) => echo_errors2.fetch_add(1, Ordering::SeqCst),
                    };
                }
            }
        }
    });
    // A lost pong says where it was lost: how far B got, and both connection states.
    let lost = |i: usize,
                e: Box<dyn std::error::Error + Send + Sync>|
     -> Box<dyn std::error::Error + Send + Sync> {
        format!(
            "{e} (ping {i}: B received and echoed {}, echo errors {}; A {:?}, B {:?})",
            echoed.load(Ordering::SeqCst),
            echo_errors.load(Ordering::SeqCst),
            a.chat().connection_state(),
            bc.chat().connection_state()
        )
        .into()
    };
    let warm = b.args.warmup * 25;
    for i in 0..warm {
        ping(&a, &mut a_rx, ub, &b.body)
            .await
            .map_err(|e| lost(i, e))?;
    }
    let n = b.args.rtt_n;
    let mut rtts = Vec::with_capacity(n);
    let meter = Meter::start(b.args.server_pid);
    for i in 0..n {
        rtts.push(
            ping(&a, &mut a_rx, ub, &b.body)
                .await
                .map_err(|e| lost(warm + i, e))?,
        );
    }
    let m = meter.stop();
    tokio::join!(logout(&a), logout(&bc));
    echo.abort();
    Ok(json!({
        "n": n, "p50_us": rnd(pct(&rtts, 50.0), 0), "p99_us": rnd(pct(&rtts, 99.0), 0),
        "mean_us": rnd(rtts.iter().sum::<f64>() / n as f64, 0),
        "client_cpu_us_per_rt": rnd_opt(per(Some(m.cpu), n, 1e6), 1),
        "server_cpu_us_per_rt": rnd_opt(per(m.server, n, 1e6), 1),
        "other_cpu_pct": rnd_opt(m.other_pct, 0),
    }))
}

// ---- memory -----------------------------------------------------------------------------

async fn mode_memory(b: &Bench) -> AnyResult<Value> {
    let mut levels = b.args.clients.clone();
    levels.sort_unstable();
    let base_mb = status_mb("VmRSS").unwrap_or(0.0);
    let mut clients = Vec::new();
    let mut out = BTreeMap::new();
    let t0 = Instant::now();
    for &level in &levels {
        while clients.len() < level {
            // Logins in small concurrent batches (the server's cost, not ours, is the limit).
            let start = clients.len();
            let end = level.min(start + 20);
            let mut batch = Vec::new();
            for i in start..end {
                let user = b.user(1 + i as u64);
                batch.push((user, b.client(user, b.args.port)?));
            }
            let logins = batch.iter().map(|(u, c)| b.login(c, *u));
            for r in futures_util::future::join_all(logins).await {
                r?;
            }
            clients.extend(batch.into_iter().map(|(_, c)| c));
        }
        let connected = clients
            .iter()
            .filter(|c| c.chat().connection_state() == ConnectionState::Connected)
            .count();
        if connected != level {
            return Err(format!("only {connected} of {level} clients connected").into());
        }
        out.insert(level.to_string(), rnd(status_mb("VmRSS").unwrap_or(0.0), 2));
    }
    let rss = |n: usize| -> Option<f64> {
        out.get(&n.to_string())
            .and_then(Value::as_f64)
            .filter(|_| levels.contains(&n))
    };
    let (lo, hi) = (levels[0], levels[levels.len() - 1]);
    let per_extra_kb = match (rss(lo), rss(hi)) {
        (Some(a), Some(z)) if hi > lo => Some((z - a) * 1024.0 / (hi - lo) as f64),
        _ => None,
    };
    let connect_s = t0.elapsed().as_secs_f64();
    for c in &clients {
        logout(c).await;
    }
    Ok(json!({
        "store": if b.store_root.is_some() { "file" } else { "memory" },
        "baseline_rss_mb": rnd(base_mb, 2),
        "rss_mb": out,
        "per_extra_client_kb": rnd_opt(per_extra_kb, 1),
        "connect_all_s": rnd(connect_s, 2),
    }))
}

// ---- resume -----------------------------------------------------------------------------

/// A TCP proxy to the server whose live connections can be severed.
struct Proxy {
    port: u16,
    cut: watch::Sender<u64>,
}

async fn proxy(target: u16) -> AnyResult<Proxy> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let port = l.local_addr()?.port();
    let (cut, _) = watch::channel(0u64);
    let cut2 = cut.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = l.accept().await {
            let mut cut_rx = cut2.subscribe();
            tokio::spawn(async move {
                let Ok(mut out) = TcpStream::connect(("127.0.0.1", target)).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = out.set_nodelay(true);
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                    _ = cut_rx.changed() => {} // dropping both ends severs the link
                }
            });
        }
    });
    Ok(Proxy { port, cut })
}

async fn until_connected(states: &mut ConnectionStates, limit: Duration) -> AnyResult<()> {
    next_event(states, limit, "Connected", |s| {
        *s == ConnectionState::Connected
    })
    .await
    .map(drop)
}

fn summary_ms(v: &[f64]) -> Value {
    if v.is_empty() {
        return Value::Null;
    }
    json!({
        "n": v.len(), "p50_ms": rnd(pct(v, 50.0), 2), "p90_ms": rnd(pct(v, 90.0), 2),
        "min_ms": rnd(pct(v, 0.0), 2), "max_ms": rnd(pct(v, 100.0), 2),
    })
}

/// Drops the states already reported (those of the previous step).
fn drain(states: &mut ConnectionStates) {
    while states.try_recv().is_ok() {}
}

async fn mode_resume(b: &Bench) -> AnyResult<Value> {
    let px = proxy(b.args.port).await?;
    let user = b.user(1);
    let mut cfg = b.config(px.port);
    // Every cut is a first cut: a connection counts as stable at once, so each measurement is
    // the first attempt after a stable connection (the default backoff otherwise).
    cfg.reconnect.stable_after = Duration::ZERO;
    let c = Client::new(cfg)?;
    let (_, mut states) = c.chat().subscribe_connection();
    b.login(&c, user).await?;
    let limit = Duration::from_secs(30);
    let mut cut_ms = Vec::new();
    for i in 0..b.args.cuts {
        drain(&mut states);
        let t0 = Instant::now();
        px.cut.send_replace(i as u64 + 1);
        next_event(&mut states, limit, "Reconnecting", |s| {
            matches!(s, ConnectionState::Reconnecting { .. })
        })
        .await?;
        until_connected(&mut states, limit).await?;
        cut_ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let mut net_ms = Vec::new();
    for _ in 0..b.args.cuts {
        drain(&mut states);
        c.chat().set_network_available(false);
        next_event(&mut states, limit, "Disconnected", |s| {
            matches!(s, ConnectionState::Disconnected { .. })
        })
        .await?;
        let t0 = Instant::now();
        c.chat().set_network_available(true);
        until_connected(&mut states, limit).await?;
        net_ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    logout(&c).await;
    Ok(
        json!({ "cut_to_connected": summary_ms(&cut_ms), "network_back_to_connected": summary_ms(&net_ms) }),
    )
}

// ---- main -------------------------------------------------------------------------------

async fn run(args: Args) -> Value {
    let ca = match &args.ca_file {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(pem) => Some(pem),
            Err(e) => return json!({"lib": "cubechat", "error": format!("CA file: {e}")}),
        },
        None => None,
    };
    let store_root = if args.store {
        let d = std::env::temp_dir().join(format!("cubechat-bench-{}", std::process::id()));
        if let Err(e) = std::fs::create_dir_all(&d) {
            return json!({"lib": "cubechat", "error": format!("store dir: {e}")});
        }
        Some(d)
    } else {
        None
    };
    let b = Bench {
        args: args.clone(),
        body: body(),
        ca,
        store_root: store_root.clone(),
    };
    let mut out = json!({
        "lib": "cubechat", "version": env!("CARGO_PKG_VERSION"), "sm": true,
        "store": if args.store { "file" } else { "memory" },
        "api": "rust",
    });
    let result = async {
        match args.mode.as_str() {
            "memory" => out["memory"] = mode_memory(&b).await?,
            "resume" => out["resume"] = mode_resume(&b).await?,
            _ => {
                for phase in args.phases.split(',') {
                    let r = match phase {
                        "connect" => phase_connect(&b).await,
                        "throughput" => phase_throughput(&b).await,
                        "rtt" => phase_rtt(&b).await,
                        other => Err(format!("unknown phase {other}").into()),
                    };
                    out[phase] = r.map_err(|e| format!("phase {phase}: {e}"))?;
                }
            }
        }
        AnyResult::Ok(())
    }
    .await;
    if let Some(d) = store_root {
        let _ = std::fs::remove_dir_all(d);
    }
    // On a failure the phases measured so far stay in the line, next to the error.
    if let Err(e) = result {
        out["error"] = json!(e.to_string());
    }
    out
}

fn emit(mut v: Value) {
    v["runtime"] = json!(format!("rust, tokio multi-thread ({} workers)", workers()));
    v["max_rss_mb"] = rnd_opt(status_mb("VmHWM"), 1);
    println!("{v}");
}

fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            emit(json!({"lib": "cubechat", "error": e.to_string()}));
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers())
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            emit(json!({"lib": "cubechat", "error": e.to_string()}));
            std::process::exit(2);
        }
    };
    let deadline = Duration::from_secs_f64(args.deadline);
    let r = rt.block_on(async { timeout(deadline, run(args)).await });
    match r {
        Ok(v) if v.get("error").is_none() => emit(v),
        Ok(v) => {
            emit(v);
            std::process::exit(2);
        }
        Err(_) => {
            emit(json!({"lib": "cubechat", "error": "deadline exceeded"}));
            std::process::exit(2);
        }
    }
    rt.shutdown_timeout(Duration::from_secs(2));
}
