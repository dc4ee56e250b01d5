//! A fault-injecting TCP proxy for tests, on 127.0.0.1 only.
//!
//! [`Proxy::start`] listens on a free loopback port and forwards every accepted connection to
//! a loopback target, byte for byte (TLS passes through untouched, so certificates still
//! verify end to end). Faults act on the live connections:
//!
//! - [`Fault::Cut`]: both sides are closed at once;
//! - [`Fault::Stall`]: nothing is forwarded, either way, for a while (data waits in the proxy
//!   and in the kernel buffers; nothing is lost);
//! - [`Fault::Truncate`]: the next chunk read from either side is forwarded only in part,
//!   then both sides are closed (a stanza cut in the middle);
//! - [`Fault::Slow`]: both directions are throttled to a number of bytes per second for a
//!   while.
//!
//! Faults come from a plan ([`Faults`]: none, a fixed schedule, or random with a seed, so a
//! run can be repeated) and from [`ProxyHandle::inject`] (now). [`ProxyHandle::counters`]
//! tells how many connections each fault reached.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How much one read takes from a socket (one "chunk").
const CHUNK: usize = 16 * 1024;
/// The pace of a throttled connection: one write per tick.
const SLOW_TICK: Duration = Duration::from_millis(50);

/// One fault, applied to live connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Close both sides of the connection now.
    Cut,
    /// Forward nothing, either way, for this long (then carry on; nothing is lost).
    Stall(Duration),
    /// Forward at most `keep` bytes of the next chunk read from either side (always fewer
    /// than the chunk), then close both sides.
    Truncate {
        /// The most bytes of the chunk that pass.
        keep: usize,
    },
    /// Throttle both directions to `bytes_per_sec` for `duration`.
    Slow {
        /// The rate (at least 1 byte per tick is written).
        bytes_per_sec: u64,
        /// How long the throttle lasts.
        duration: Duration,
    },
}

/// A plan of faults the proxy applies by itself.
#[derive(Clone, Debug, Default)]
pub enum Faults {
    /// No faults (only [`ProxyHandle::inject`]).
    #[default]
    None,
    /// Each fault after its delay (counted from the previous one), on every live connection.
    Schedule(Vec<(Duration, Fault)>),
    /// Faults drawn from a seeded generator (see [`RandomFaults`]).
    Random(RandomFaults),
}

/// Random faults: the same seed gives the same sequence of delays, faults and targets.
#[derive(Clone, Debug)]
pub struct RandomFaults {
    /// The generator's seed.
    pub seed: u64,
    /// Delay before each fault: uniform in this range (inclusive).
    pub gap: (Duration, Duration),
    /// Relative weights of cut, stall, truncate and slow (all 0 = cuts only).
    pub weights: [u32; 4],
    /// Length of a stall: uniform in this range.
    pub stall: (Duration, Duration),
    /// Bytes kept by a truncation: uniform in this range.
    pub keep: (usize, usize),
    /// Throttle rate of a slowdown (bytes/s): uniform in this range.
    pub slow_rate: (u64, u64),
    /// Length of a slowdown: uniform in this range.
    pub slow_for: (Duration, Duration),
    /// Each fault hits one live connection drawn at random (else every live connection).
    pub one_connection: bool,
    /// Stop after this many faults (`None` = never).
    pub limit: Option<usize>,
}

impl RandomFaults {
    /// Mostly cuts, some stalls, truncations and slowdowns, every 0.5–2 s, one connection at
    /// a time; stalls of 0.2–3 s, slowdowns of 1–4 KB/s for 0.5–2 s.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            gap: (Duration::from_millis(500), Duration::from_millis(2000)),
            weights: [70, 10, 15, 5],
            stall: (Duration::from_millis(200), Duration::from_millis(3000)),
            keep: (1, 200),
            slow_rate: (1024, 4096),
            slow_for: (Duration::from_millis(500), Duration::from_millis(2000)),
            one_connection: true,
            limit: None,
        }
    }

    /// The plan as a sequence: `(delay, fault, pick)`, where `pick` chooses the connection
    /// (index modulo the number of live ones) when [`RandomFaults::one_connection`] is set.
    pub fn iter(&self) -> impl Iterator<Item = (Duration, Fault, usize)> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let p = self.clone();
        let total: u32 = p.weights.iter().sum();
        (0..p.limit.unwrap_or(usize::MAX)).map(move |_| {
            let gap = between(&mut rng, p.gap);
            let kind = if total == 0 {
                0
            } else {
                let mut x = rng.gen_range(0..total);
                let mut k = 0;
                while x >= p.weights[k] {
                    x -= p.weights[k];
                    k += 1;
                }
                k
            };
            let fault = match kind {
                0 => Fault::Cut,
                1 => Fault::Stall(between(&mut rng, p.stall)),
                2 => Fault::Truncate {
                    keep: rng.gen_range(p.keep.0..=p.keep.1.max(p.keep.0)),
                },
                _ => Fault::Slow {
                    bytes_per_sec: rng.gen_range(p.slow_rate.0..=p.slow_rate.1.max(p.slow_rate.0)),
                    duration: between(&mut rng, p.slow_for),
                },
            };
            (gap, fault, rng.gen_range(0..usize::MAX))
        })
    }
}

fn between(rng: &mut StdRng, (lo, hi): (Duration, Duration)) -> Duration {
    let lo_ms = u64::try_from(lo.as_millis()).unwrap_or(u64::MAX);
    let hi_ms = u64::try_from(hi.as_millis()).unwrap_or(u64::MAX).max(lo_ms);
    Duration::from_millis(rng.gen_range(lo_ms..=hi_ms))
}

/// What the proxy did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections accepted.
    pub accepted: u64,
    /// Faults injected (by the plan or [`ProxyHandle::inject`]), whether or not a live
    /// connection was there to take them.
    pub injected: u64,
    /// Connections closed by [`Fault::Cut`].
    pub cuts: u64,
    /// Connections closed in the middle of a chunk by [`Fault::Truncate`].
    pub truncations: u64,
    /// Connections stalled by [`Fault::Stall`].
    pub stalls: u64,
    /// Connections throttled by [`Fault::Slow`].
    pub slowdowns: u64,
    /// Throttled writes (one per tick of a slowed connection).
    pub paced_writes: u64,
    /// Bytes forwarded from clients to the target.
    pub bytes_up: u64,
    /// Bytes forwarded from the target to clients.
    pub bytes_down: u64,
}

#[derive(Default)]
struct AtomicCounters {
    accepted: AtomicU64,
    injected: AtomicU64,
    cuts: AtomicU64,
    truncations: AtomicU64,
    stalls: AtomicU64,
    slowdowns: AtomicU64,
    paced_writes: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// The fault state of one connection, shared by its two pumps.
#[derive(Clone, Debug, Default)]
struct Ctl {
    cut: bool,
    stall_until: Option<Instant>,
    truncate: Option<usize>,
    slow: Option<(u64, Instant)>,
}

struct Inner {
    target: SocketAddr,
    next_id: AtomicU64,
    conns: Mutex<BTreeMap<u64, Arc<watch::Sender<Ctl>>>>,
    counters: AtomicCounters,
    plan: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A handle to a running [`Proxy`]: inject faults now, change the plan, read the counters.
#[derive(Clone)]
pub struct ProxyHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ProxyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyHandle")
            .field("target", &self.inner.target)
            .field("counters", &self.counters())
            .finish()
    }
}

impl ProxyHandle {
    /// Applies `fault` to every live connection now; returns how many it reached.
    pub fn inject(&self, fault: Fault) -> usize {
        apply(&self.inner, &fault, None)
    }

    /// Applies `fault` to one live connection (`pick` modulo the number of live ones, in
    /// order of acceptance); returns 1, or 0 when none is live.
    pub fn inject_one(&self, fault: Fault, pick: usize) -> usize {
        apply(&self.inner, &fault, Some(pick))
    }

    /// Ends every stall and slowdown now (pending truncations stay armed).
    pub fn resume(&self) {
        for c in live(&self.inner) {
            c.send_modify(|s| {
                s.stall_until = None;
                s.slow = None;
            });
        }
    }

    /// Replaces the running plan (`Faults::None` stops it).
    pub fn set_faults(&self, faults: Faults) {
        let weak = Arc::downgrade(&self.inner);
        let task = tokio::spawn(run_plan(weak, faults));
        if let Some(old) = lock(&self.inner.plan).replace(task) {
            old.abort();
        }
    }

    /// Connections open now.
    pub fn live(&self) -> usize {
        live(&self.inner).len()
    }

    /// What the proxy did so far.
    pub fn counters(&self) -> Counters {
        let c = &self.inner.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counters {
            accepted: g(&c.accepted),
            injected: g(&c.injected),
            cuts: g(&c.cuts),
            truncations: g(&c.truncations),
            stalls: g(&c.stalls),
            slowdowns: g(&c.slowdowns),
            paced_writes: g(&c.paced_writes),
            bytes_up: g(&c.bytes_up),
            bytes_down: g(&c.bytes_down),
        }
    }
}

/// The proxy: listens on `127.0.0.1:<free port>` until dropped; dropping it stops the plan
/// and closes every connection.
pub struct Proxy {
    addr: SocketAddr,
    handle: ProxyHandle,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("handle", &self.handle)
            .finish()
    }
}

impl std::ops::Deref for Proxy {
    type Target = ProxyHandle;
    fn deref(&self) -> &ProxyHandle {
        &self.handle
    }
}

impl Proxy {
    /// Starts a proxy to `target` (a loopback address) running `faults`.
    ///
    /// Errors: `InvalidInput` for a target that is not loopback; the bind error otherwise.
    pub async fn start(target: SocketAddr, faults: Faults) -> io::Result<Proxy> {
        if !target.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the fault proxy only forwards to loopback addresses",
            ));
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            target,
            next_id: AtomicU64::new(0),
            conns: Mutex::new(BTreeMap::new()),
            counters: AtomicCounters::default(),
            plan: Mutex::new(None),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::downgrade(&inner)));
        let handle = ProxyHandle { inner };
        handle.set_faults(faults);
        Ok(Proxy {
            addr,
            handle,
            accept,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A handle that other tasks can keep.
    pub fn handle(&self) -> ProxyHandle {
        self.handle.clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        if let Some(plan) = lock(&self.handle.inner.plan).take() {
            plan.abort();
        }
        for c in lock(&self.handle.inner.conns).values() {
            c.send_modify(|s| s.cut = true);
        }
    }
}

fn live(inner: &Inner) -> Vec<Arc<watch::Sender<Ctl>>> {
    lock(&inner.conns)
        .values()
        .filter(|c| !c.borrow().cut)
        .cloned()
        .collect()
}

fn apply(inner: &Inner, fault: &Fault, pick: Option<usize>) -> usize {
    bump(&inner.counters.injected, 1);
    let mut conns = live(inner);
    if let Some(p) = pick {
        if conns.is_empty() {
            return 0;
        }
        let one = conns.swap_remove(p % conns.len());
        conns = vec![one];
    }
    let now = Instant::now();
    let c = &inner.counters;
    for conn in &conns {
        match fault {
            Fault::Cut => {
                conn.send_modify(|s| s.cut = true);
                bump(&c.cuts, 1);
            }
            Fault::Stall(d) => {
                conn.send_modify(|s| s.stall_until = Some(now + *d));
                bump(&c.stalls, 1);
            }
            Fault::Truncate { keep } => conn.send_modify(|s| s.truncate = Some(*keep)),
            Fault::Slow {
                bytes_per_sec,
                duration,
            } => {
                conn.send_modify(|s| s.slow = Some(((*bytes_per_sec).max(1), now + *duration)));
                bump(&c.slowdowns, 1);
            }
        }
    }
    conns.len()
}

async fn run_plan(inner: Weak<Inner>, faults: Faults) {
    let steps: Box<dyn Iterator<Item = (Duration, Fault, Option<usize>)> + Send> = match faults {
        Faults::None => return,
        Faults::Schedule(steps) => Box::new(steps.into_iter().map(|(d, f)| (d, f, None))),
        Faults::Random(r) => {
            let one = r.one_connection;
            Box::new(r.iter().map(move |(d, f, p)| (d, f, one.then_some(p))))
        }
    };
    for (delay, fault, pick) in steps {
        tokio::time::sleep(delay).await;
        let Some(inner) = inner.upgrade() else { return };
        apply(&inner, &fault, pick);
    }
}

async fn accept_loop(listener: TcpListener, inner: Weak<Inner>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // E.g. out of file descriptors: do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Some(inner) = inner.upgrade() else { return };
        bump(&inner.counters.accepted, 1);
        tokio::spawn(connection(client, inner));
    }
}

async fn connection(client: TcpStream, inner: Arc<Inner>) {
    let Ok(server) = TcpStream::connect(inner.target).await else {
        return; // dropping the client closes it: the target is down
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
    let ctl = Arc::new(watch::Sender::new(Ctl::default()));
    lock(&inner.conns).insert(id, ctl.clone());
    let (crd, cwr) = client.into_split();
    let (srd, swr) = server.into_split();
    let up = pump(crd, swr, ctl.clone(), inner.clone(), true);
    let down = pump(srd, cwr, ctl.clone(), inner.clone(), false);
    tokio::join!(up, down);
    lock(&inner.conns).remove(&id);
}

/// Waits until the connection is cut.
async fn cut(rx: &mut watch::Receiver<Ctl>) {
    let _ = rx.wait_for(|s| s.cut).await;
}

/// Waits out a stall; `false` when the connection is cut meanwhile.
async fn unstalled(rx: &mut watch::Receiver<Ctl>) -> bool {
    loop {
        let s = rx.borrow_and_update().clone();
        if s.cut {
            return false;
        }
        match s.stall_until {
            Some(t) if t > Instant::now() => {
                tokio::select! {
                    _ = tokio::time::sleep_until(t) => {}
                    r = rx.changed() => if r.is_err() { return false },
                }
            }
            _ => return true,
        }
    }
}

/// Forwards one direction until EOF, an error or a cut.
async fn pump(
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    ctl: Arc<watch::Sender<Ctl>>,
    inner: Arc<Inner>,
    up: bool,
) {
    let mut rx = ctl.subscribe();
    let mut buf = vec![0u8; CHUNK];
    let bytes = if up {
        &inner.counters.bytes_up
    } else {
        &inner.counters.bytes_down
    };
    loop {
        let n = tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) => {
                    // A clean half-close: pass it on, the other way carries on.
                    let _ = wr.shutdown().await;
                    return;
                }
                Ok(n) => n,
                Err(_) => break,
            },
            _ = cut(&mut rx) => break,
        };
        let mut keep = None;
        ctl.send_if_modified(|s| match s.truncate.take() {
            Some(k) => {
                keep = Some(k.min(n - 1));
                true
            }
            None => false,
        });
        let data = &buf[..keep.unwrap_or(n)];
        if !forward(&mut wr, data, &mut rx, &inner, bytes).await {
            break;
        }
        if keep.is_some() {
            bump(&inner.counters.truncations, 1);
            break;
        }
    }
    // Any way out but a clean EOF takes the whole connection down.
    ctl.send_modify(|s| s.cut = true);
}

/// Writes `data`, honouring stalls and slowdowns; `false` when cut or on a write error.
async fn forward(
    wr: &mut OwnedWriteHalf,
    mut data: &[u8],
    rx: &mut watch::Receiver<Ctl>,
    inner: &Inner,
    bytes: &AtomicU64,
) -> bool {
    while !data.is_empty() {
        if !unstalled(rx).await {
            return false;
        }
        let slow = rx
            .borrow()
            .slow
            .filter(|(_, until)| *until > Instant::now());
        let piece = match slow {
            Some((rate, _)) => {
                let per_tick = rate.saturating_mul(SLOW_TICK.as_millis() as u64) / 1000;
                usize::try_from(per_tick.max(1))
                    .unwrap_or(usize::MAX)
                    .min(data.len())
            }
            None => data.len(),
        };
        let ok = tokio::select! {
            r = wr.write_all(&data[..piece]) => r.is_ok(),
            _ = cut(rx) => false,
        };
        if !ok {
            return false;
        }
        bump(bytes, piece as u64);
        data = &data[piece..];
        if slow.is_some() {
            bump(&inner.counters.paced_writes, 1);
            tokio::select! {
                _ = tokio::time::sleep(SLOW_TICK) => {}
                _ = cut(rx) => return false,
            }
        }
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Bound of every wait in these tests.
    const STEP: Duration = Duration::from_secs(10);

    /// An echo server on loopback; returns its address.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn connect(p: &Proxy) -> TcpStream {
        let s = TcpStream::connect(p.addr()).await.unwrap();
        // The proxy has registered the connection once it is live.
        tokio::time::timeout(STEP, async {
            while p.live() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
        s
    }

    /// Reads until EOF (or error); everything read.
    async fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        tokio::time::timeout(STEP, async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await
        .expect("EOF in time");
        out
    }

    async fn read_exact(s: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        tokio::time::timeout(STEP, s.read_exact(&mut buf))
            .await
            .expect("bytes in time")
            .unwrap();
        buf
    }

    #[tokio::test]
    async fn forwards_both_ways_and_counts_bytes() {
        let p = Proxy::start(echo().await, Faults::None).await.unwrap();
        let mut s = connect(&p).await;
        let msg: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (mut r, mut w) = s.split();
        let (_, back) = tokio::join!(async { w.write_all(&msg).await.unwrap() }, async {
            let mut buf = vec![0u8; msg.len()];
            tokio::time::timeout(STEP, r.read_exact(&mut buf))
                .await
                .unwrap()
                .unwrap();
            buf
        });
        assert_eq!(back, msg);
        let c = p.counters();
        assert_eq!(
            (c.accepted, c.bytes_up, c.bytes_down),
            (1, 100_000, 100_000)
        );
        assert_eq!((c.cuts, c.truncations, c.stalls, c.injected), (0, 0, 0, 0));
    }

    #[tokio::test]
    async fn cut_closes_the_connection_and_later_ones_work() {
        let p = Proxy::start(echo().await, Faults::None).await.unwrap();
        let mut s = connect(&p).await;
        s.write_all(b"ping").await.unwrap();
        assert_eq!(read_exact(&mut s, 4).await, b"ping");
        assert_eq!(p.inject(Fault::Cut), 1);
        assert!(read_to_end(&mut s).await.is_empty());
        assert_eq!(p.counters().cuts, 1);
        // Nothing live: the next cut reaches nobody.
        tokio::time::timeout(STEP, async {
            while p.live() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(p.inject(Fault::Cut), 0);
        assert_eq!(p.counters().cuts, 1);
        assert_eq!(p.counters().injected, 2);
        let mut s2 = connect(&p).await;
        s2.write_all(b"again").await.unwrap();
        assert_eq!(read_exact(&mut s2, 5).await, b"again");
        assert_eq!(p.counters().accepted, 2);
    }

    #[tokio::test]
    async fn inject_one_hits_a_single_connection() {
        let p = Proxy::start(echo().await, Faults::None).await.unwrap();
        let mut a = connect(&p).await;
        let mut b = TcpStream::connect(p.addr()).await.unwrap();
        tokio::time::timeout(STEP, async {
            while p.live() < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
        // Acceptance order: index 1 is b.
        assert_eq!(p.inject_one(Fault::Cut, 1), 1);
        assert!(read_to_end(&mut b).await.is_empty());
        a.write_all(b"alive").await.unwrap();
        assert_eq!(read_exact(&mut a, 5).await, b"alive");
        assert_eq!(p.live(), 1);
    }

    #[tokio::test]
    async fn truncate_forwards_a_prefix_then_cuts() {
        let target = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = target.local_addr().unwrap();
        let p = Proxy::start(addr, Faults::None).await.unwrap();
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let (mut server, _) = tokio::time::timeout(STEP, target.accept())
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(STEP, async {
            while p.live() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(p.inject(Fault::Truncate { keep: 7 }), 1);
        s.write_all(b"<message>hello</message>").await.unwrap();
        assert_eq!(read_to_end(&mut server).await, b"<messag");
        assert!(read_to_end(&mut s).await.is_empty());
        let c = p.counters();
        assert_eq!((c.truncations, c.bytes_up, c.cuts), (1, 7, 0));
    }

    #[tokio::test]
    async fn truncate_never_forwards_the_whole_chunk() {
        let target = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = target.local_addr().unwrap();
        let p = Proxy::start(addr, Faults::None).await.unwrap();
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let (mut server, _) = target.accept().await.unwrap();
        tokio::time::timeout(STEP, async {
            while p.live() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
        p.inject(Fault::Truncate { keep: 1000 });
        server.write_all(b"abc").await.unwrap();
        assert_eq!(read_to_end(&mut s).await, b"ab");
    }

    #[tokio::test]
    async fn stall_holds_data_until_resumed() {
        let p = Proxy::start(echo().await, Faults::None).await.unwrap();
        let mut s = connect(&p).await;
        assert_eq!(p.inject(Fault::Stall(Duration::from_secs(3600))), 1);
        s.write_all(b"held").await.unwrap();
        let mut buf = [0u8; 4];
        // Nothing passes while stalled (watched for a while).
        assert!(
            tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf))
                .await
                .is_err(),
            "data passed a stalled connection"
        );
        assert_eq!(p.counters().bytes_up, 0);
        p.resume();
        assert_eq!(read_exact(&mut s, 4).await, b"held");
        assert_eq!(p.counters().stalls, 1);
    }

    #[tokio::test]
    async fn a_cut_ends_a_stall() {
        let p = Proxy::start(echo().await, Faults::None).await.unwrap();
        let mut s = connect(&p).await;
        p.inject(Fault::Stall(Duration::from_secs(3600)));
        s.write_all(b"held").await.unwrap();
        p.inject(Fault::Cut);
        assert!(read_to_end(&mut s).await.is_empty());
        assert_eq!(p.counters().bytes_down, 0);
    }

    #[tokio::test]
    async fn slow_throttles_in_paced_writes_and_delivers_everything() {
        let p = Proxy::start(echo().await, Faults::None).await.unwrap();
        let mut s = connect(&p).await;
        // 2,000 B/s = 100 bytes per 50 ms tick: 1,000 bytes take 10 paced writes upstream.
        p.inject(Fault::Slow {
            bytes_per_sec: 2000,
            duration: Duration::from_secs(3600),
        });
        let msg = vec![b'x'; 1000];
        s.write_all(&msg).await.unwrap();
        assert_eq!(read_exact(&mut s, 1000).await, msg);
        let c = p.counters();
        assert_eq!(c.slowdowns, 1);
        // Upstream 10 writes; downstream at least as many (the echo may split chunks).
        assert!(c.paced_writes >= 20, "{c:?}");
        p.resume();
        s.write_all(&msg).await.unwrap();
        assert_eq!(read_exact(&mut s, 1000).await, msg);
    }

    #[test]
    fn random_plans_repeat_with_their_seed() {
        let mut plan = RandomFaults::new(42);
        plan.limit = Some(200);
        let a: Vec<_> = plan.iter().collect();
        let b: Vec<_> = plan.iter().collect();
        assert_eq!(a.len(), 200);
        assert_eq!(a, b);
        let other: Vec<_> = RandomFaults { seed: 43, ..plan }.iter().collect();
        assert_ne!(a, other);
        // Every kind occurs with the default weights, within the configured ranges.
        let kinds = |f: &Fault| match f {
            Fault::Cut => 0,
            Fault::Stall(d) => {
                assert!(*d >= plan.stall.0 && *d <= plan.stall.1);
                1
            }
            Fault::Truncate { keep } => {
                assert!(*keep >= plan.keep.0 && *keep <= plan.keep.1);
                2
            }
            Fault::Slow { .. } => 3,
        };
        let mut seen = [0; 4];
        for (gap, f, _) in &a {
            assert!(*gap >= plan.gap.0 && *gap <= plan.gap.1);
            seen[kinds(f)] += 1;
        }
        assert!(seen.iter().all(|n| *n > 0), "{seen:?}");
        assert!(seen[0] > seen[1] + seen[2] + seen[3], "{seen:?}");
    }

    #[tokio::test]
    async fn a_random_plan_runs_by_itself_and_can_be_stopped() {
        let mut plan = RandomFaults::new(7);
        plan.gap = (Duration::from_millis(1), Duration::from_millis(20));
        plan.weights = [1, 0, 0, 0];
        plan.limit = Some(5);
        let p = Proxy::start(echo().await, Faults::Random(plan))
            .await
            .unwrap();
        tokio::time::timeout(STEP, async {
            while p.counters().injected < 5 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the plan runs");
        assert_eq!(p.counters().injected, 5);
        p.set_faults(Faults::None);
        let mut s = connect(&p).await;
        s.write_all(b"calm").await.unwrap();
        assert_eq!(read_exact(&mut s, 4).await, b"calm");
    }

    #[tokio::test]
    async fn a_schedule_cuts_live_connections() {
        let p = Proxy::start(echo().await, Faults::None).await.unwrap();
        let mut s = connect(&p).await;
        p.set_faults(Faults::Schedule(vec![(
            Duration::from_millis(10),
            Fault::Cut,
        )]));
        assert!(read_to_end(&mut s).await.is_empty());
        assert_eq!(p.counters().cuts, 1);
    }

    #[tokio::test]
    async fn refuses_a_target_off_loopback_and_closes_when_the_target_is_down() {
        let err = Proxy::start("192.0.2.1:5222".parse().unwrap(), Faults::None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        // A target that does not listen: the client is closed.
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let dead = l.local_addr().unwrap();
        drop(l);
        let p = Proxy::start(dead, Faults::None).await.unwrap();
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert!(read_to_end(&mut s).await.is_empty());
        assert_eq!(p.counters().accepted, 1);
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_its_connections() {
        let p = Proxy::start(echo().await, Faults::None).await.unwrap();
        let mut s = connect(&p).await;
        drop(p);
        assert!(read_to_end(&mut s).await.is_empty());
    }
}
