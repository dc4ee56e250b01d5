//! Microbenchmarks of the engine's hot paths (issue 16): a received chat message from bytes
//! to its event, an outgoing message to the bytes written, stream-management acks of a
//! burst of sent messages (over loopback TCP to a minimal server), and a 100-dialog REST
//! page decode. A report (`cargo bench -p cubechat-core --bench hot_path`), never a test.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};

use cubechat_core::bench_support as b;

fn inbound(c: &mut Criterion) {
    let mut g = c.benchmark_group("inbound");
    g.throughput(Throughput::Elements(1));
    assert!(b::inbound_event(b::INBOUND_MESSAGE.as_bytes()).is_some());
    assert!(b::inbound_event(b::INBOUND_MARKER.as_bytes()).is_some());
    g.bench_function("message_bytes_to_event", |bch| {
        bch.iter(|| b::inbound_event(black_box(b::INBOUND_MESSAGE.as_bytes())))
    });
    g.bench_function("marker_bytes_to_event", |bch| {
        bch.iter(|| b::inbound_event(black_box(b::INBOUND_MARKER.as_bytes())))
    });
    g.finish();
}

fn outbound(c: &mut Criterion) {
    let mut g = c.benchmark_group("outbound");
    g.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(1024);
    b::outbound_bytes("6b05fcaf923d1e2727000000", b::outgoing_message(), &mut out);
    assert!(out.len() > 100, "{}", String::from_utf8_lossy(&out));
    g.bench_function("message_to_bytes", |bch| {
        bch.iter(|| {
            out.clear();
            b::outbound_bytes(
                black_box("6b05fcaf923d1e2727000000"),
                black_box(b::outgoing_message()),
                &mut out,
            );
        })
    });
    g.bench_function("marker_to_bytes", |bch| {
        bch.iter(|| {
            out.clear();
            b::marker_bytes(black_box("6b05fcaf923d1e2727000000"), &mut out);
        })
    });
    g.finish();
}

fn acks(c: &mut Criterion) {
    const BURST: usize = 100;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut lb = rt.block_on(b::Loopback::start());
    let mut g = c.benchmark_group("sm_acks");
    g.throughput(Throughput::Elements(BURST as u64));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("send_100_until_acked", |bch| {
        bch.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                rt.block_on(lb.send_and_ack(BURST));
            }
            start.elapsed()
        })
    });
    g.finish();
    rt.block_on(lb.stop());
}

fn rest(c: &mut Criterion) {
    let json = b::dialogs_page_json(100);
    assert_eq!(b::decode_dialogs_page(json.as_bytes()), 100);
    let mut g = c.benchmark_group("rest");
    g.throughput(Throughput::Elements(100));
    g.bench_function("dialogs_page_100_decode", |bch| {
        bch.iter(|| b::decode_dialogs_page(black_box(json.as_bytes())))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = inbound, outbound, acks, rest
}

/// `HOT_PATH_PROFILE=<op> HOT_PATH_N=<n>`: runs one operation `n` times and nothing else,
/// for an instruction count under `valgrind --tool=callgrind` (repeatable on a busy
/// machine, unlike times). `<op>`: inbound, marker_in, outbound, marker_out, rest, acks
/// (`n` bursts of 100).
fn profile(op: &str, n: usize) {
    let mut out = Vec::with_capacity(1024);
    let json = b::dialogs_page_json(100);
    match op {
        "inbound" => (0..n).for_each(|_| {
            black_box(b::inbound_event(black_box(b::INBOUND_MESSAGE.as_bytes())));
        }),
        "marker_in" => (0..n).for_each(|_| {
            black_box(b::inbound_event(black_box(b::INBOUND_MARKER.as_bytes())));
        }),
        "outbound" => (0..n).for_each(|_| {
            out.clear();
            b::outbound_bytes("6b05fcaf923d1e2727000000", b::outgoing_message(), &mut out);
        }),
        "marker_out" => (0..n).for_each(|_| {
            out.clear();
            b::marker_bytes("6b05fcaf923d1e2727000000", &mut out);
        }),
        "rest" => (0..n).for_each(|_| {
            black_box(b::decode_dialogs_page(black_box(json.as_bytes())));
        }),
        "acks" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut lb = b::Loopback::start().await;
                for _ in 0..n {
                    lb.send_and_ack(100).await;
                }
                lb.stop().await;
            });
        }
        other => panic!("unknown HOT_PATH_PROFILE {other}"),
    }
}

fn main() {
    if let Ok(op) = std::env::var("HOT_PATH_PROFILE") {
        let n = std::env::var("HOT_PATH_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        return profile(&op, n);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
