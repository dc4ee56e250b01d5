//! Microbenchmarks of the local store on the message hot path (reported, never a timed
//! test): `cargo bench -p cubechat-core --bench store` (under a minute).
//!
//! - `receive/one_by_one`: a received message persisted as the engine did before batching:
//!   `put_messages` of one message, then `bump_dialog` (two transactions).
//! - `receive/burst_N`: the engine's path, [`Store::put_received`] of a burst of `N`
//!   messages (what was queued when the event applier woke; one transaction); reported per
//!   message.
//! - `send/queue_and_ack_old`: an outgoing message as the send queue handled it before: the
//!   local echo and its outbox row, the dialog preview, "in flight", then the server's
//!   acknowledgement, each its own write.
//! - `send/queue_and_ack_durable`: the same through [`Store::queue_new_message`] synced to
//!   disk (as while offline), [`Store::start_sending`] and [`Store::ack_sent`] of one.
//! - `send/burst_N`: the engine's path while connected: `N` messages queued (each its own
//!   write, not synced), handed over together (one commit synced to disk: the group
//!   commit), acknowledged together; reported per message.
//!
//! Each is measured twice: `receive/...` and `send/...` in wall time (what a caller waits,
//! syncs to disk included), `receive_cpu/...` and `send_cpu/...` in this thread's CPU time,
//! user and system (Linux `/proc/thread-self/schedstat`; wall time elsewhere), the figure
//! of the "client CPU per message". Every bench writes to a fresh store file in the
//! OS temp dir (the engine's store is a file in WAL mode), removed at the end.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput,
};
use cubechat_core::store::{LocalMessage, MessageState, Payload, Store};
use cubechat_wire::chat::{Dialog, ReactionsSummary};

/// This user.
const ME: u64 = 1;
/// The other user.
const PEER: u64 = 2;
const DIALOG: &str = "5f0e7e5b2a6f4c0012d4e001";

/// A fresh store file with one known private dialog.
struct TempStore {
    store: Option<Store>,
    path: PathBuf,
}

impl TempStore {
    fn new(tag: &str) -> Self {
        let n: u64 = rand::random();
        let path = std::env::temp_dir().join(format!("cubechat-bench-{tag}-{n:x}.sqlite3"));
        let store = Store::open(Some(&path)).expect("open the store");
        store
            .put_dialogs(&[Dialog {
                id: DIALOG.into(),
                kind: 3,
                occupants_ids: vec![ME, PEER],
                last_message_date_sent: Some(1_700_000_000),
                created_at: Some("2023-11-14T22:13:20Z".into()),
                ..Default::default()
            }])
            .expect("store the dialog");
        Self {
            store: Some(store),
            path,
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("open")
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        self.store = None;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

/// The `n`-th message of the dialog, as the engine maps a received (or own) chat message.
fn message(n: u64, sender: u64) -> LocalMessage {
    LocalMessage {
        id: format!("{:024x}", 0x6570_0000_0000_0000_0000u128 + u128::from(n)),
        dialog_id: DIALOG.into(),
        sender_id: sender,
        recipient_id: Some(if sender == ME { PEER } else { ME }),
        body: "See you tomorrow at the office, the meeting moved to three pm.".into(),
        attachments: Vec::new(),
        custom: BTreeMap::new(),
        date_sent: 1_700_000_000 + (n / 4) as i64,
        state: if sender == ME {
            MessageState::Queued
        } else {
            MessageState::Received
        },
        outgoing: sender == ME,
        edited: false,
        read_ids: Vec::new(),
        delivered_ids: Vec::new(),
        reactions: ReactionsSummary::default(),
        seq: 0,
    }
}

fn payload(m: &LocalMessage) -> Payload {
    Payload {
        recipient_id: m.recipient_id,
        body: m.body.clone(),
        save_to_history: true,
        date_sent: m.date_sent,
        markable: true,
        ..Default::default()
    }
}

/// This thread's CPU time (user + system), where Linux reports it.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace()
        .next()?
        .parse()
        .ok()
        .map(Duration::from_nanos)
}

/// Runs `f` (which handles `per_iter` messages) as the bench `name`, in wall time or, with
/// `cpu`, in this thread's CPU time.
fn bench<T>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    cpu: bool,
    per_iter: u64,
    mut f: impl FnMut() -> T,
) {
    g.throughput(Throughput::Elements(per_iter));
    g.bench_function(name, |b| {
        if !cpu {
            b.iter(&mut f);
            return;
        }
        b.iter_custom(|iters| {
            let (c0, t0) = (thread_cpu(), Instant::now());
            for _ in 0..iters {
                black_box(f());
            }
            match (c0, thread_cpu()) {
                (Some(a), Some(b)) => b.saturating_sub(a),
                _ => t0.elapsed(),
            }
        })
    });
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500));
    g
}

fn receive(c: &mut Criterion) {
    for (group_name, cpu, bursts) in [
        ("receive", false, &[1u64, 16, 64, 256][..]),
        ("receive_cpu", true, &[1, 16, 64, 256][..]),
    ] {
        let mut g = group(c, group_name);
        let t = TempStore::new("one");
        let mut n = 0;
        bench(&mut g, "one_by_one", cpu, 1, || {
            n += 1;
            let m = message(n, PEER);
            let added = t.store().put_messages(std::slice::from_ref(&m)).unwrap();
            for m in &added {
                t.store().bump_dialog(m, 1).unwrap();
            }
            added.len()
        });
        drop(t);
        for &burst in bursts {
            let t = TempStore::new("burst");
            let mut n = 0;
            bench(&mut g, &format!("burst_{burst}"), cpu, burst, || {
                let msgs: Vec<(LocalMessage, bool)> = (0..burst)
                    .map(|_| {
                        n += 1;
                        (message(n, PEER), true)
                    })
                    .collect();
                let r = t.store().put_received(msgs).unwrap();
                assert_eq!(r.added.len() as u64, burst);
                r
            });
        }
        g.finish();
    }
}

fn send(c: &mut Criterion) {
    for (group_name, cpu, bursts) in [
        ("send", false, &[1u64, 16, 64][..]),
        ("send_cpu", true, &[64][..]),
    ] {
        let mut g = group(c, group_name);
        let t = TempStore::new("send");
        let mut n = 0;
        bench(&mut g, "queue_and_ack_old", cpu, 1, || {
            n += 1;
            let s = t.store();
            let m = message(n, ME);
            let m = s.enqueue_message(&m, &payload(&m)).unwrap();
            s.bump_dialog(&m, 0).unwrap();
            s.set_in_flight(&m.id, true).unwrap();
            // The acknowledgement.
            let item = s.outbox_item(&m.id).unwrap().unwrap();
            s.remove_outbox(&item.op_id).unwrap();
            let stored = s.message(&item.message_id).unwrap().unwrap();
            assert_eq!(stored.state, MessageState::Queued);
            s.set_state(&item.message_id, &MessageState::Sent).unwrap()
        });
        drop(t);
        let t = TempStore::new("send");
        let mut n = 0;
        bench(&mut g, "queue_and_ack_durable", cpu, 1, || {
            n += 1;
            let s = t.store();
            let m = message(n, ME);
            let (m, d) = s.queue_new_message(&m, &payload(&m), true).unwrap();
            assert!(d);
            s.start_sending(&[m.id.as_str()]).unwrap();
            let acked = s.ack_sent(&[m.id.as_str()]).unwrap();
            assert!(acked[0].sent.is_some());
            acked
        });
        drop(t);
        for &burst in bursts {
            let t = TempStore::new("sendburst");
            let mut n = 0;
            bench(&mut g, &format!("burst_{burst}"), cpu, burst, || {
                let s = t.store();
                let ids: Vec<String> = (0..burst)
                    .map(|_| {
                        n += 1;
                        let m = message(n, ME);
                        s.queue_new_message(&m, &payload(&m), false).unwrap().0.id
                    })
                    .collect();
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                s.start_sending(&ids).unwrap();
                let acked = s.ack_sent(&ids).unwrap();
                assert_eq!(acked.len() as u64, burst);
                acked
            });
        }
        g.finish();
    }
}

criterion_group!(benches, receive, send);
criterion_main!(benches);
