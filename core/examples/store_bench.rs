//! Store benchmark (reported, not a timed test): how fast a big local store opens and
//! delivers the first dialog page and the first timeline page, and how much disk it takes.
//!
//! ```text
//! cargo run --release -p cubechat-core --example store_bench -- \
//!     [--dialogs 10000] [--messages 1000000] [--dir PATH] [--reps 20] [--cold-reps 5] \
//!     [--keep] [--reuse FILE]
//! ```
//!
//! Phase 1 (populate, untimed): a fresh file in `--dir` (default: the OS temp dir) gets
//! `--dialogs` wire dialogs (private and group) and `--messages` messages written through
//! [`Store::put_messages`] in batches of 10,000 (one transaction each), in the order they
//! were sent: the dialogs take turns as in real life, a few busy dialogs get most messages.
//! The store is then closed, which checkpoints the WAL into the main file.
//!
//! Phase 2 (measured): `--reps` times `Store::open` → `dialogs_page(50)` → `timeline(first
//! dialog of that page, 50)`, each on a freshly opened store (SQLite's own cache is empty
//! every time, the OS page cache is warm). Then `--cold-reps` times the same after evicting
//! the file from the OS page cache (`sync FILE` + `dd iflag=nocache count=0`, checked with
//! `fincore` when present). Finally the size on disk and the query plans.
//!
//! `--keep` leaves the file in place; `--reuse FILE` skips phase 1 and measures that file.
//! The last line of the output is one JSON object with the headline numbers.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cubechat_core::store::{dialog_activity, LocalMessage, MessageState, Store};
use cubechat_wire::chat::{Attachment, Dialog, ReactionsSummary};
use cubechat_wire::time::iso8601;

type AnyResult<T> = Result<T, Box<dyn Error>>;

const PAGE: u32 = 50;
const BATCH: usize = 10_000;
/// The user whose store this is.
const ME: u64 = 10_001;
const USERS: u64 = 5_000;
const APP_ID: u64 = 7_331;
/// Zipf-like exponent of the message share per dialog (0 = even).
const SKEW: f64 = 0.7;
/// Messages span this many days up to now.
const SPAN_DAYS: i64 = 730;

const WORDS: &[&str] = &[
    "hey", "hi", "ok", "sure", "thanks", "see", "you", "tomorrow", "at", "the", "office",
    "meeting", "moved", "to", "three", "pm", "can", "we", "talk", "later", "I", "just", "sent",
    "files", "please", "check", "them", "when", "have", "a", "minute", "sounds", "good", "lunch",
    "today", "where", "are", "running", "late", "traffic", "is", "terrible", "new", "build",
    "works", "on", "my", "phone", "did", "review", "pull", "request", "yes", "no", "maybe",
    "weekend", "plans", "call", "me", "back", "happy", "birthday", "congrats", "release",
    "shipped", "bug", "fixed", "tickets", "for", "concert", "price", "is", "fine", "let's", "do",
    "it", "what", "about", "dinner", "train", "leaves", "in", "ten", "minutes", "photo", "from",
    "trip", "love", "this",
];
const FIRST: &[&str] = &[
    "Anna", "Ben", "Chloe", "Dmytro", "Elena", "Farid", "Grace", "Hiro", "Ivan", "Julia", "Kofi",
    "Lena", "Marco", "Nina", "Oscar", "Priya", "Quinn", "Rosa", "Sven", "Tara",
];
const LAST: &[&str] = &[
    "Kowalski", "Smith", "Müller", "Rossi", "Tanaka", "Novak", "Silva", "Okafor", "Dubois",
    "Larsen", "Petrenko", "Garcia",
];
const GROUPS: &[&str] = &[
    "Team",
    "Family",
    "Project",
    "Book club",
    "Football",
    "Neighbours",
    "Trip",
    "Release",
    "Design",
    "Support",
];
const REACTIONS: &[&str] = &["👍", "❤️", "😂", "🎉"];

// ------------------------------------------------------------------ arguments

struct Args {
    dialogs: usize,
    messages: usize,
    dir: PathBuf,
    reps: usize,
    cold_reps: usize,
    keep: bool,
    reuse: Option<PathBuf>,
}

fn parse_args() -> AnyResult<Args> {
    let mut a = Args {
        dialogs: 10_000,
        messages: 1_000_000,
        dir: std::env::temp_dir(),
        reps: 20,
        cold_reps: 5,
        keep: false,
        reuse: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--dialogs" => a.dialogs = value()?.parse()?,
            "--messages" => a.messages = value()?.parse()?,
            "--dir" => a.dir = PathBuf::from(value()?),
            "--reps" => a.reps = value()?.parse()?,
            "--cold-reps" => a.cold_reps = value()?.parse()?,
            "--keep" => a.keep = true,
            "--reuse" => a.reuse = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!(
                    "store_bench [--dialogs N] [--messages M] [--dir PATH] [--reps R] \
                     [--cold-reps C] [--keep] [--reuse FILE]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other} (see --help)").into()),
        }
    }
    if a.dialogs == 0 || a.reps == 0 {
        return Err("--dialogs and --reps must be at least 1".into());
    }
    Ok(a)
}

// ------------------------------------------------------------------ data

/// SplitMix64: small, fast, reproducible.
struct Rng(u64);

impl Rng {
    fn seeded(seed: u64) -> Self {
        let mut r = Self(seed ^ 0x5eed_cafe_f00d_d00d);
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn user_name(id: u64) -> String {
    let mut r = Rng::seeded(id);
    format!("{} {}", r.pick(FIRST), r.pick(LAST))
}

/// 20–120 characters of chat.
fn body(r: &mut Rng) -> String {
    let target = 20 + r.below(101) as usize;
    let mut s = String::with_capacity(target + 12);
    while s.chars().count() < target {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(r.pick(WORDS));
    }
    let cut: String = s.chars().take(target).collect();
    let mut cut = cut.trim_end().to_owned();
    cut.push(if r.percent(20) { '?' } else { '.' });
    cut
}

/// A 24-hex id in the server's style: seconds, then a counter.
fn object_id(secs: i64, counter: u64) -> String {
    format!("{:08x}{:016x}", secs as u32, counter)
}

struct Corpus {
    dialogs: Vec<Dialog>,
    /// The dialog of each message, in sending order.
    owner: Vec<u32>,
    start: i64,
    span: i64,
    messages: usize,
}

impl Corpus {
    fn new(n_dialogs: usize, n_messages: usize) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1_750_000_000, |d| d.as_secs() as i64);
        let span = SPAN_DAYS * 86_400;
        let start = now - span;
        // Cumulative message share per dialog: dialog i gets about 1 / (i + 1)^SKEW.
        let mut cdf = Vec::with_capacity(n_dialogs);
        let mut sum = 0.0;
        for i in 0..n_dialogs {
            sum += 1.0 / ((i + 1) as f64).powf(SKEW);
            cdf.push(sum);
        }
        let mut r = Rng::seeded(42);
        let owner: Vec<u32> = (0..n_messages)
            .map(|_| {
                let u = r.unit() * sum;
                cdf.partition_point(|c| *c < u).min(n_dialogs - 1) as u32
            })
            .collect();
        let mut last: Vec<Option<usize>> = vec![None; n_dialogs];
        for (k, d) in owner.iter().enumerate() {
            last[*d as usize] = Some(k);
        }
        let mut c = Self {
            dialogs: Vec::with_capacity(n_dialogs),
            owner,
            start,
            span,
            messages: n_messages,
        };
        for i in 0..n_dialogs {
            c.dialogs.push(c.dialog(i));
        }
        for (i, k) in last.into_iter().enumerate() {
            let mut r = Rng::seeded(i as u64 + 7);
            let unread = if r.percent(10) { 1 + r.below(30) } else { 0 };
            let created = c.start - 86_400 - r.below(365 * 86_400) as i64;
            let m = k.map(|k| c.message(k));
            let d = &mut c.dialogs[i];
            d.created_at = Some(iso8601(created));
            d.updated_at = Some(iso8601(m.as_ref().map_or(created, |m| m.date_sent)));
            d.unread_messages_count = Some(unread);
            if let Some(m) = m {
                d.last_message = Some(m.body);
                d.last_message_id = Some(m.id);
                d.last_message_user_id = Some(m.sender_id);
                d.last_message_date_sent = Some(m.date_sent);
                d.last_message_status = m.outgoing.then(|| "read".to_owned());
            }
        }
        c
    }

    /// Dialog `i` without its activity fields (set once its messages are known).
    fn dialog(&self, i: usize) -> Dialog {
        let mut r = Rng::seeded(i as u64 + 1_000_003);
        let id = object_id(self.start - 400 * 86_400 + i as i64 * 60, i as u64);
        let group = r.percent(20);
        let mut d = Dialog {
            kind: if group { 2 } else { 3 },
            ..Dialog::default()
        };
        if group {
            let mut occupants = vec![ME];
            for _ in 0..2 + r.below(38) {
                let u = 20_000 + r.below(USERS);
                if !occupants.contains(&u) {
                    occupants.push(u);
                }
            }
            d.user_id = occupants[r.below(occupants.len() as u64) as usize];
            d.name = Some(format!("{} {}", r.pick(GROUPS), i));
            d.description = r
                .percent(30)
                .then(|| format!("{} chat, be nice", r.pick(GROUPS)));
            d.photo = r.percent(50).then(|| format!("{:032x}", r.next() as u128));
            d.admins_ids = vec![d.user_id];
            d.occupants_count = Some(occupants.len() as u64);
            d.occupants_ids = occupants;
            d.xmpp_room_jid = Some(format!("{APP_ID}_{id}@muc.chat.connectycube.com"));
        } else {
            let other = 20_000 + r.below(USERS);
            d.user_id = if r.percent(50) { ME } else { other };
            d.name = Some(user_name(other));
            d.occupants_ids = vec![ME, other];
        }
        d.id = id;
        d
    }

    /// Message `k` (in sending order), always the same for the same `k`.
    fn message(&self, k: usize) -> LocalMessage {
        let d = &self.dialogs[self.owner[k] as usize];
        let mut r = Rng::seeded(k as u64 ^ 0xa11_ce00_0000);
        let date_sent = self.start + (k as i128 * self.span as i128 / self.messages as i128) as i64;
        let outgoing = r.percent(40);
        let others: Vec<u64> = d
            .occupants_ids
            .iter()
            .copied()
            .filter(|u| *u != ME)
            .collect();
        let other = others[r.below(others.len() as u64) as usize];
        let private = d.kind == 3;
        let sender_id = if outgoing { ME } else { other };
        let mut attachments = Vec::new();
        if r.percent(3) {
            attachments.push(Attachment {
                kind: "image".into(),
                uid: Some(format!("{:032x}", r.next() as u128 * 0x1_0000_0001)),
                name: Some(format!("IMG_{k}.jpg")),
                size: Some(50_000 + r.below(3_000_000)),
                content_type: Some("image/jpeg".into()),
                width: Some(1080),
                height: Some(1920),
                ..Attachment::default()
            });
        }
        let mut custom = BTreeMap::new();
        if r.percent(2) && k > 0 {
            custom.insert("reply_to".into(), object_id(date_sent - 60, k as u64 - 1));
        }
        let mut reactions = ReactionsSummary::default();
        if r.percent(2) {
            reactions
                .total
                .insert(r.pick(REACTIONS).to_owned(), 1 + r.below(3));
        }
        let (state, read_ids) = if outgoing {
            (MessageState::Read, vec![other])
        } else {
            (MessageState::Received, vec![ME])
        };
        LocalMessage {
            id: object_id(date_sent, k as u64),
            dialog_id: d.id.clone(),
            sender_id,
            recipient_id: private.then_some(if outgoing { other } else { ME }),
            body: body(&mut r),
            attachments,
            custom,
            date_sent,
            state,
            outgoing,
            edited: r.percent(1),
            delivered_ids: read_ids.clone(),
            read_ids,
            reactions,
            seq: 0,
        }
    }
}

// ------------------------------------------------------------------ measuring

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[derive(Default)]
struct Samples(Vec<f64>);

impl Samples {
    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }
    /// Nearest-rank percentile.
    fn pct(&self, p: f64) -> f64 {
        let v = self.sorted();
        let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
        v.get(rank - 1).copied().unwrap_or(f64::NAN)
    }
    fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }
    fn row(&self, label: &str) -> String {
        let v = self.sorted();
        format!(
            "  {label:<34} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            v.first().copied().unwrap_or(f64::NAN),
            self.median(),
            self.pct(95.0),
            v.last().copied().unwrap_or(f64::NAN),
        )
    }
}

#[derive(Default)]
struct Run {
    open: Samples,
    dialogs: Samples,
    timeline: Samples,
    open_dialogs: Samples,
    open_timeline: Samples,
    all: Samples,
}

impl Run {
    /// Open → first dialog page → first timeline page of that page's first dialog.
    fn once(&mut self, path: &Path) -> AnyResult<(String, usize)> {
        let t0 = Instant::now();
        let store = Store::open(Some(path))?;
        let t1 = Instant::now();
        let page = store.dialogs_page(PAGE, None)?;
        let t2 = Instant::now();
        let first = page.first().ok_or("the store has no dialogs")?.id.clone();
        let timeline = store.timeline(&first, None, PAGE)?;
        let t3 = Instant::now();
        if timeline.is_empty() {
            return Err(format!("no messages in dialog {first}").into());
        }
        let (open, dialogs, tl) = (ms(t1 - t0), ms(t2 - t1), ms(t3 - t2));
        self.open.0.push(open);
        self.dialogs.0.push(dialogs);
        self.timeline.0.push(tl);
        self.open_dialogs.0.push(open + dialogs);
        self.open_timeline.0.push(open + tl);
        self.all.0.push(open + dialogs + tl);
        drop(store);
        Ok((first, timeline.len()))
    }

    fn print(&self, title: &str) {
        println!("{title} ({} runs, ms)", self.open.0.len());
        println!(
            "  {:<34} {:>8} {:>8} {:>8} {:>8}",
            "", "min", "median", "p95", "max"
        );
        println!("{}", self.open.row("Store::open"));
        println!("{}", self.dialogs.row("dialogs_page(50, None)"));
        println!("{}", self.timeline.row("timeline(first dialog, None, 50)"));
        println!("{}", self.open_dialogs.row("open + first dialog page"));
        println!("{}", self.open_timeline.row("open + first timeline page"));
        println!("{}", self.all.row("open + dialog page + timeline page"));
    }
}

/// Evicts `path` from the OS page cache (clean pages only, hence the sync). Returns the bytes
/// still resident if `fincore` can tell.
fn evict(path: &Path) -> AnyResult<Option<u64>> {
    let ok = |c: &mut Command| c.status().map(|s| s.success()).unwrap_or(false);
    if !ok(Command::new("sync").arg(path)) {
        return Err("`sync FILE` failed".into());
    }
    let mut input = std::ffi::OsString::from("if=");
    input.push(path);
    if !ok(Command::new("dd")
        .arg(input)
        .args(["iflag=nocache", "count=0", "status=none"]))
    {
        return Err("`dd iflag=nocache` failed".into());
    }
    let out = Command::new("fincore")
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(path)
        .output();
    Ok(out
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn sidecar(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn remove_store(p: &Path) {
    for f in [p.to_path_buf(), sidecar(p, "-wal"), sidecar(p, "-shm")] {
        let _ = std::fs::remove_file(f);
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ------------------------------------------------------------------ phases

fn populate(a: &Args, path: &Path) -> AnyResult<usize> {
    let t = Instant::now();
    let corpus = Corpus::new(a.dialogs, a.messages);
    let t_gen = t.elapsed();
    let store = Store::open(Some(path))?;
    let t = Instant::now();
    store.put_dialogs(&corpus.dialogs)?;
    let t_dialogs = t.elapsed();
    let t = Instant::now();
    let mut added = 0;
    let mut batch = Vec::with_capacity(BATCH);
    for k in 0..a.messages {
        batch.push(corpus.message(k));
        if batch.len() == BATCH || k + 1 == a.messages {
            added += store.put_messages(&batch)?.len();
            batch.clear();
            if added % 100_000 == 0 {
                eprintln!("  … {added} messages ({:.0} s)", t.elapsed().as_secs_f64());
            }
        }
    }
    let t_messages = t.elapsed();
    let t = Instant::now();
    drop(store);
    let t_close = t.elapsed();
    let groups = corpus.dialogs.iter().filter(|d| d.kind == 2).count();
    let mut per_dialog = vec![0usize; a.dialogs];
    for d in &corpus.owner {
        per_dialog[*d as usize] += 1;
    }
    per_dialog.sort_unstable();
    println!("Phase 1: populate (not measured for the target)");
    println!(
        "  {} dialogs ({} group, {} private), {} messages written ({added} added), batches of {BATCH}",
        a.dialogs,
        groups,
        a.dialogs - groups,
        a.messages
    );
    println!(
        "  messages per dialog: min {}, median {}, max {} (skewed: a few busy dialogs)",
        per_dialog.first().unwrap_or(&0),
        per_dialog[a.dialogs / 2],
        per_dialog.last().unwrap_or(&0)
    );
    println!(
        "  generate {:.1} s, put_dialogs {:.2} s, put_messages {:.1} s ({:.0} msg/s), close + checkpoint {:.2} s",
        t_gen.as_secs_f64(),
        t_dialogs.as_secs_f64(),
        t_messages.as_secs_f64(),
        a.messages as f64 / t_messages.as_secs_f64().max(1e-9),
        t_close.as_secs_f64()
    );
    Ok(added)
}

struct FileFacts {
    dialogs: u64,
    messages: u64,
    page_size: u64,
    /// The dialog with the most messages, and how many.
    busiest: Option<(String, u64)>,
    /// Average stored length of the JSON columns of a message.
    json_columns: Vec<(&'static str, f64)>,
    objects: Vec<(String, u64)>,
    plans: Vec<(String, Vec<String>)>,
}

/// Counts, space per table and index (dbstat) and the query plans of the two reads, from a
/// plain SQLite connection (the SQL below is copied from store.rs).
fn inspect(path: &Path, first_dialog: &str) -> AnyResult<FileFacts> {
    use rusqlite::OptionalExtension;
    let c = rusqlite::Connection::open(path)?;
    let count = |sql: &str| {
        c.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
    };
    let dialogs = count("SELECT count(*) FROM dialogs")?;
    let messages = count("SELECT count(*) FROM messages")?;
    let page_size = count("PRAGMA page_size")?;
    let busiest = c
        .query_row(
            "SELECT dialog_id, count(*) FROM messages GROUP BY dialog_id ORDER BY 2 DESC LIMIT 1",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)),
        )
        .optional()?;
    let names = [
        "attachments",
        "custom",
        "read_ids",
        "delivered_ids",
        "reactions",
    ];
    let avgs = names.map(|n| format!("avg(length({n}))")).join(", ");
    let json_columns = c.query_row(&format!("SELECT {avgs} FROM messages"), [], |r| {
        (0..names.len())
            .map(|i| Ok((names[i], r.get::<_, Option<f64>>(i)?.unwrap_or(0.0))))
            .collect::<rusqlite::Result<Vec<_>>>()
    })?;
    let objects = c
        .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .and_then(|mut st| {
            st.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .unwrap_or_default();
    let dialogs_sql = "SELECT json, unread, activity FROM dialogs \
        WHERE (activity, id) < (?1, ?2) OR ?3 ORDER BY activity DESC, id DESC LIMIT ?4";
    let timeline_sql = "SELECT seq, id, dialog_id, sender_id, recipient_id, body, date_sent, \
        state, failure, outgoing, edited, attachments, custom, read_ids, delivered_ids, reactions \
        FROM messages WHERE dialog_id = ?1 AND (date_sent, seq) < (?2, ?3) \
        ORDER BY date_sent DESC, seq DESC LIMIT ?4";
    let plan = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> rusqlite::Result<Vec<String>> {
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let rows = st.query_map(p, |r| r.get::<_, String>(3))?;
        rows.collect()
    };
    let max = i64::MAX;
    let plans = vec![
        (
            "dialogs_page, first page".into(),
            plan(dialogs_sql, &[&max, &"", &true, &PAGE])?,
        ),
        (
            "dialogs_page, later pages (same statement, ?3 = false)".into(),
            plan(dialogs_sql, &[&0, &"", &false, &PAGE])?,
        ),
        (
            "timeline (first and older pages: one statement)".into(),
            plan(timeline_sql, &[&first_dialog, &max, &max, &PAGE])?,
        ),
    ];
    Ok(FileFacts {
        dialogs,
        messages,
        page_size,
        busiest,
        json_columns,
        objects,
        plans,
    })
}

/// Later pages, on one open store: the dialog page after 90% of the list and the timeline
/// page of `dialog` after its newest `depth` messages.
fn later_pages(
    path: &Path,
    dialog: &str,
    depth: u32,
    reps: usize,
) -> AnyResult<(Samples, Samples, usize)> {
    let store = Store::open(Some(path))?;
    let all = store.dialogs_page(u32::MAX, None)?;
    let skip = all.len() * 9 / 10;
    let after = all
        .get(skip.saturating_sub(1))
        .map(|d| (dialog_activity(d), d.id.clone()));
    let before = store
        .timeline(dialog, None, depth)?
        .first()
        .map(|m| (m.date_sent, m.seq));
    let (mut dp, mut tp) = (Samples::default(), Samples::default());
    for _ in 0..reps {
        let t = Instant::now();
        let page = store.dialogs_page(PAGE, after.as_ref().map(|(a, id)| (*a, id.as_str())))?;
        dp.0.push(ms(t.elapsed()));
        let t = Instant::now();
        let older = store.timeline(dialog, before, PAGE)?;
        tp.0.push(ms(t.elapsed()));
        if page.is_empty() || older.is_empty() {
            return Err("a later page came back empty".into());
        }
    }
    Ok((dp, tp, skip))
}

fn main() -> AnyResult<()> {
    let a = parse_args()?;
    let (path, ours) = match &a.reuse {
        Some(p) => (p.clone(), false),
        None => {
            std::fs::create_dir_all(&a.dir)?;
            let p = a.dir.join(format!(
                "cubechat-store-bench-{}.sqlite",
                std::process::id()
            ));
            remove_store(&p);
            (p, true)
        }
    };
    println!("cubechat store benchmark");
    println!(
        "  file {} | {} cpus | load average {} | build {}",
        path.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg(),
        if cfg!(debug_assertions) {
            "debug (numbers are not representative)"
        } else {
            "optimized"
        }
    );
    let added = if ours {
        Some(populate(&a, &path)?)
    } else {
        println!("Phase 1: skipped (--reuse)");
        None
    };

    // Phase 2: the measurement.
    println!("Phase 2: measure (load average before: {})", loadavg());
    let mut first_open = Run::default();
    let (first, tl_len) = first_open.once(&path)?;
    if ours {
        first_open.print("First open after writing (OS page cache warm from the writes)");
    }
    let mut warm = Run::default();
    for _ in 0..a.reps {
        warm.once(&path)?;
    }
    warm.print("Warm: reopened each run, file in the OS page cache");
    let mut cold = Run::default();
    let mut cold_note = String::new();
    for _ in 0..a.cold_reps {
        match evict(&path) {
            Ok(resident) => {
                if let Some(b) = resident {
                    cold_note = format!("{b} bytes of the file still resident after eviction");
                }
                cold.once(&path)?;
            }
            Err(e) => {
                cold_note = format!("skipped: {e}");
                break;
            }
        }
    }
    if !cold.open.0.is_empty() {
        cold.print("Cold: the file evicted from the OS page cache before each run");
    }
    if !cold_note.is_empty() {
        println!("  cold runs: {cold_note}; the VM's host may still cache the disk");
    }
    println!("  first dialog of the page: {first} ({tl_len} messages on its first timeline page)");
    println!("  load average after: {}", loadavg());

    // Size on disk: every run closed the last connection, which checkpoints the WAL.
    let store = Store::open(Some(&path))?;
    let size = store.size_on_disk();
    let (main_len, wal_len) = (file_len(&path), file_len(&sidecar(&path, "-wal")));
    drop(store);
    let facts = inspect(&path, &first)?;
    let per_1000 = size as f64 * 1000.0 / facts.messages.max(1) as f64;
    println!("Size on disk (after checkpoint)");
    println!(
        "  Store::size_on_disk {size} bytes ({:.1} MiB) = main {main_len} + WAL {wal_len}",
        mib(size)
    );
    println!(
        "  in the file: {} dialogs, {} messages{}; page size {}",
        facts.dialogs,
        facts.messages,
        added.map_or(String::new(), |n| format!(" ({n} added by put_messages)")),
        facts.page_size
    );
    println!(
        "  {per_1000:.0} bytes per 1,000 messages (whole file incl. dialogs; {:.1} KiB)",
        per_1000 / 1024.0
    );
    let per_k = |bytes: u64| bytes as f64 * 1000.0 / facts.messages.max(1) as f64;
    let (big, small): (Vec<_>, Vec<_>) = facts
        .objects
        .iter()
        .partition(|(_, b)| *b * 100 >= size.max(1));
    for (name, bytes) in &big {
        println!(
            "    {name:<28} {:>8.1} MiB {:>8.0} bytes per 1,000 messages",
            mib(*bytes),
            per_k(*bytes)
        );
    }
    let rest: u64 = small.iter().map(|(_, b)| *b).sum();
    if !small.is_empty() {
        let label = format!("{} smaller objects", small.len());
        println!(
            "    {label:<28} {:>8.1} MiB {:>8.0} bytes per 1,000 messages",
            mib(rest),
            per_k(rest)
        );
    }
    let cols: Vec<String> = facts
        .json_columns
        .iter()
        .map(|(n, l)| format!("{n} {l:.1}"))
        .collect();
    println!(
        "  JSON columns, average bytes per message: {}",
        cols.join(", ")
    );
    println!("Query plans (EXPLAIN QUERY PLAN)");
    for (name, rows) in &facts.plans {
        println!("  {name}:");
        for r in rows {
            println!("    {r}");
        }
    }
    if let Some((busiest, n)) = &facts.busiest {
        let depth = (*n as u32 / 2).min(10_000);
        let (dp, tp, skip) = later_pages(&path, busiest, depth, a.reps)?;
        println!("Later pages on an open store ({} runs, ms)", a.reps);
        println!(
            "  {:<34} {:>8} {:>8} {:>8} {:>8}",
            "", "min", "median", "p95", "max"
        );
        println!("{}", dp.row(&format!("dialogs_page after {skip} dialogs")));
        println!("{}", tp.row(&format!("timeline after the newest {depth}")));
        println!("  (busiest dialog {busiest}: {n} messages)");
    }
    if ours && !a.keep {
        remove_store(&path);
        println!("(file removed; --keep leaves it for --reuse)");
    } else {
        println!("(file kept: --reuse {})", path.display());
    }
    // One JSON line, headline numbers first (null when not measured).
    let num = |x: f64| {
        if x.is_finite() {
            format!("{x:.2}")
        } else {
            "null".into()
        }
    };
    println!(
        "{{\"open_ms_median\":{},\"dialog_page_ms_median\":{},\"timeline_page_ms_median\":{},\
         \"bytes_per_1000_messages\":{per_1000:.0},\"open_plus_dialog_page_ms_median\":{},\
         \"open_plus_timeline_page_ms_median\":{},\"open_plus_dialog_page_ms_p95\":{},\
         \"open_plus_timeline_page_ms_p95\":{},\"cold_open_plus_dialog_page_ms_median\":{},\
         \"cold_open_plus_timeline_page_ms_median\":{},\"dialogs\":{},\"messages\":{},\
         \"size_on_disk_bytes\":{size}}}",
        num(warm.open.median()),
        num(warm.dialogs.median()),
        num(warm.timeline.median()),
        num(warm.open_dialogs.median()),
        num(warm.open_timeline.median()),
        num(warm.open_dialogs.pct(95.0)),
        num(warm.open_timeline.pct(95.0)),
        num(cold.open_dialogs.median()),
        num(cold.open_timeline.median()),
        facts.dialogs,
        facts.messages,
    );
    Ok(())
}
