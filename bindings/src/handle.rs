//! [`SubscriptionHandle`]: what every `subscribe_*`/`watch_*` call returns, and the delivery
//! that calls the app's listener.
//!
//! # Delivery: one thread per subscription, never the engine's threads
//!
//! The engine hands each subscription an unbounded, lossless, in-order stream
//! (`cubechat_core::EventStream`). A small task on the runtime moves its events, converted to
//! calls, into the subscription's own bounded queue ([`QUEUE_CAPACITY`] events); the
//! subscription's own thread (named `cubechat-deliver`) takes them out and calls the listener,
//! one event at a time, in order. The runtime's threads never run app code, so a listener that
//! blocks or is slow delays only its own subscription: not the engine, not another
//! subscription, not another client.
//!
//! # When the app does not keep up
//!
//! Nothing is dropped or reordered: every event waits in the queue until the listener has
//! returned from the previous one. If a listener falls [`QUEUE_CAPACITY`] events behind (it
//! is blocked for good, or far slower than the events come), the subscription **ends**
//! instead of growing memory without bound: every event queued before that point is still
//! delivered, no later one is, the failure is logged at `warn`, `is_active()` turns false and
//! `ended()` returns. Ending, not skipping: a listener never sees a gap. Messages it missed
//! are in the local store (timelines, history); subscribe again to go on.
//!
//! # Failing listeners
//!
//! An error or exception a listener raises (or a panic inside the call) never ends the
//! deliveries; later events still come. The first failure of a subscription is logged at
//! `warn` with the foreign traceback when the language layer supplies a redacted one (see
//! [`TRACE_MARK`]); otherwise only the exception's type is logged, since its text may quote a
//! message body. Later failures are counted and the count is logged when the subscription ends.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::error::ChatError;
use crate::runtime::{is_shut_down, panic_text, rt, DeliveryGuard};

/// How many events may wait for one listener before its subscription ends (see the module
/// docs: ending, never skipping).
pub(crate) const QUEUE_CAPACITY: usize = 65_536;

/// One call of a listener, waiting in a subscription's queue.
pub(crate) type Job = Box<dyn FnOnce() -> Result<(), ChatError> + Send>;

/// Subscriptions whose engine stream is still held or whose delivery thread still runs.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Counts one subscription in [`LIVE`] while any part of it (forwarder, thread) holds it.
struct LiveToken;

impl LiveToken {
    fn new() -> Arc<Self> {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Arc::new(Self)
    }
}

impl Drop for LiveToken {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// State shared by a handle, its forwarder task and its delivery thread.
struct Shared {
    cancelled: AtomicBool,
    ended: watch::Sender<bool>,
}

/// A live subscription. Deliveries stop on [`SubscriptionHandle::cancel`], when the handle is
/// dropped (garbage-collected), when the event source ends (the client is gone, or the store
/// closed for a live view), or when the listener falls too far behind (see the module docs).
#[derive(uniffi::Object)]
pub struct SubscriptionHandle {
    shared: Arc<Shared>,
    task: Mutex<Option<AbortHandle>>,
}

impl SubscriptionHandle {
    /// Starts a subscription: the delivery thread, then the forwarder on the runtime, which
    /// queues `first` (if any), then `map` of every item of `rx` that maps to a call, in
    /// order, until the source closes or the subscription ends.
    pub(crate) fn deliver<T>(
        what: &'static str,
        first: Option<Job>,
        mut rx: UnboundedReceiver<T>,
        mut map: impl FnMut(T) -> Option<Job> + Send + 'static,
    ) -> Result<Arc<Self>, ChatError>
    where
        T: Send + 'static,
    {
        let runtime = rt()?;
        let (ended, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            cancelled: AtomicBool::new(false),
            ended,
        });
        let live = LiveToken::new();
        let (tx, jobs) = sync_channel::<Job>(QUEUE_CAPACITY);
        {
            let shared = shared.clone();
            let live = live.clone();
            std::thread::Builder::new()
                .name("cubechat-deliver".into())
                .spawn(move || delivery_thread(what, jobs, &shared, live))
                .map_err(|e| ChatError::Internal {
                    reason: format!("cannot start a delivery thread: {e}"),
                })?;
        }
        let forwarder = runtime.spawn(async move {
            let _live = live;
            if let Some(job) = first {
                if !enqueue(what, &tx, job) {
                    return;
                }
            }
            while let Some(item) = rx.recv().await {
                if let Some(job) = map(item) {
                    if !enqueue(what, &tx, job) {
                        return;
                    }
                }
            }
        });
        Ok(Arc::new(Self {
            shared,
            task: Mutex::new(Some(forwarder.abort_handle())),
        }))
    }

    /// [`Self::deliver`] for a snapshot-then-changes source: delivers `first`, then every
    /// item of `rx` converted, through `call`.
    pub(crate) fn forward<T, E>(
        what: &'static str,
        first: E,
        rx: UnboundedReceiver<T>,
        call: impl Fn(E) -> Result<(), ChatError> + Send + Sync + 'static,
    ) -> Result<Arc<Self>, ChatError>
    where
        T: Into<E> + Send + 'static,
        E: Send + 'static,
    {
        let call = Arc::new(call);
        let c = call.clone();
        let first: Job = Box::new(move || c(first));
        Self::deliver(what, Some(first), rx, move |item: T| {
            let c = call.clone();
            let job: Job = Box::new(move || c(item.into()));
            Some(job)
        })
    }
}

/// Queues one call; false when the subscription must stop forwarding (its thread is gone, or
/// it fell [`QUEUE_CAPACITY`] events behind and ends now).
fn enqueue(what: &'static str, tx: &SyncSender<Job>, job: Job) -> bool {
    match tx.try_send(job) {
        Ok(()) => true,
        Err(TrySendError::Disconnected(_)) => false,
        Err(TrySendError::Full(_)) => {
            tracing::warn!(
                listener = what,
                pending = QUEUE_CAPACITY,
                "a listener fell too far behind; its subscription ends after the events \
                 already queued (none skipped); subscribe again to go on"
            );
            false
        }
    }
}

/// The body of a subscription's own thread: calls the listener for each queued job, in order,
/// until the queue is closed and empty, the subscription is cancelled or the library shut
/// down; then marks the subscription ended.
fn delivery_thread(
    what: &'static str,
    jobs: Receiver<Job>,
    shared: &Shared,
    _live: Arc<LiveToken>,
) {
    let listener = Listener::new(what);
    for job in jobs.iter() {
        if shared.cancelled.load(Ordering::SeqCst) || is_shut_down() {
            break;
        }
        let Some(_running) = DeliveryGuard::enter() else {
            break;
        };
        listener.deliver(job);
    }
    listener.finish();
    shared.ended.send_replace(true);
}

#[uniffi::export]
impl SubscriptionHandle {
    /// Stops the deliveries. Idempotent; a callback already running finishes, no later one
    /// starts.
    pub fn cancel(&self) {
        self.shared.cancelled.store(true, Ordering::SeqCst);
        if let Some(h) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
    }

    /// True until cancelled or until the subscription ended (source closed and every event
    /// delivered, or the listener fell too far behind).
    pub fn is_active(&self) -> bool {
        !self.shared.cancelled.load(Ordering::SeqCst) && !*self.shared.ended.borrow()
    }

    /// Returns once the subscription's delivery thread is done: after `cancel` (once a call
    /// already running has returned), or after the last event when the source ended or the
    /// listener fell too far behind. Every listener call happens before this returns.
    pub async fn ended(&self) {
        let mut rx = self.shared.ended.subscribe();
        // The sender lives in `self.shared`, which `self` keeps alive: this only returns
        // when the flag turns true.
        let _ = rx.wait_for(|ended| *ended).await;
    }
}

impl Drop for SubscriptionHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// How many subscriptions are live in this process: their engine stream is still open or
/// their delivery thread still runs. Lets the binding tests prove that ending an iterator,
/// cancelling a handle or dropping it really ends the subscription. Only with the
/// `test-hooks` feature.
#[cfg(feature = "test-hooks")]
#[uniffi::export]
pub fn live_subscription_count() -> u64 {
    LIVE.load(Ordering::SeqCst) as u64
}

/// One app listener as seen by its delivery thread: calls it without letting its failure (an
/// error or exception it raised, or a panic) end the deliveries. The first failure is logged
/// (through the SDK's logging, at `warn`), later ones only counted, so a listener that always
/// fails does not flood the log; later events are still delivered.
pub(crate) struct Listener {
    what: &'static str,
    failures: AtomicUsize,
}

impl Listener {
    /// A listener of kind `what` (e.g. `MessageListener`), named in the log.
    pub(crate) fn new(what: &'static str) -> Self {
        Self {
            what,
            failures: AtomicUsize::new(0),
        }
    }

    /// Calls the listener; see [`Listener`].
    pub(crate) fn deliver(&self, call: impl FnOnce() -> Result<(), ChatError>) {
        let failure = match catch_unwind(AssertUnwindSafe(call)) {
            Ok(Ok(())) => return,
            Ok(Err(e)) => summary(&e),
            Err(p) => format!("panic: {}", panic_text(p.as_ref())),
        };
        if self.failures.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(
                listener = self.what,
                "a listener failed; events keep coming, further failures are only counted: {failure}"
            );
        }
    }

    /// Logs how often the listener failed, if more than once (its subscription ended).
    pub(crate) fn finish(&self) {
        let n = self.failures.load(Ordering::Relaxed);
        if n > 1 {
            tracing::warn!(
                listener = self.what,
                failures = n,
                "a listener failed {n} times"
            );
        }
    }
}

/// What is logged of a listener's failure: for an exception the app raised, its redacted
/// traceback when the language layer sent one ([`TRACE_MARK`]), else only its type (its text
/// could quote a message body); for a `ChatError` it raised, the error.
fn summary(e: &ChatError) -> String {
    match e {
        ChatError::Internal { reason } => match reason.strip_prefix(LISTENER_FAILED) {
            Some(text) => match text.strip_prefix(TRACE_MARK) {
                Some(trace) => {
                    let trace: String = trace.chars().take(MAX_TRACE_CHARS).collect();
                    format!("raised (traceback, exception text withheld):\n{trace}")
                }
                None => {
                    let kind: String = text
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '$'))
                        .take(100)
                        .collect();
                    format!("raised {kind}")
                }
            },
            None => e.to_string(),
        },
        other => other.to_string().chars().take(200).collect(),
    }
}

/// How a foreign exception's text starts inside [`ChatError::Internal`].
pub(crate) const LISTENER_FAILED: &str = "listener failed: ";

/// A language layer that formats a listener's exception itself (the Python package does)
/// starts the text it hands back as an unexpected callback error with this line, followed by
/// the traceback with the exception's own text left out (frames, source lines and the
/// exception's type only: never its message, which may quote a message body). Such a text is
/// logged in full (up to [`MAX_TRACE_CHARS`]); any other exception text is reduced to its type.
pub(crate) const TRACE_MARK: &str = "[cubechat-trace]\n";

/// The longest traceback logged for one failure.
const MAX_TRACE_CHARS: usize = 8_000;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};
    use tokio::sync::mpsc::unbounded_channel;

    fn wait_until(what: &str, f: impl Fn() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "timed out: {what}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_blocked_listener_delays_only_its_own_subscription() {
        let (slow_tx, slow_rx) = unbounded_channel::<u32>();
        let (fast_tx, fast_rx) = unbounded_channel::<u32>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let (entered_tx, entered_rx) = mpsc::channel::<u32>();
        let slow = SubscriptionHandle::forward("Slow", 0u32, slow_rx, move |n: u32| {
            entered_tx.send(n).unwrap();
            // Blocks until the test releases it (bounded by the test's own timeout).
            let _ = release_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(20));
            Ok(())
        })
        .unwrap();
        assert_eq!(entered_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 0);
        slow_tx.send(1).unwrap();
        let (got_tx, got_rx) = mpsc::channel::<u32>();
        let _fast = SubscriptionHandle::forward("Fast", 0u32, fast_rx, move |n: u32| {
            got_tx.send(n).unwrap();
            Ok(())
        })
        .unwrap();
        for i in 1..=100 {
            fast_tx.send(i).unwrap();
        }
        let got: Vec<u32> = (0..=100)
            .map(|_| got_rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        assert_eq!(got, (0..=100).collect::<Vec<_>>(), "in order, none lost");
        // The slow one still has event 1 waiting, delivered once released.
        release_tx.send(()).unwrap();
        assert_eq!(entered_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
        release_tx.send(()).unwrap();
        slow.cancel();
    }

    #[test]
    fn a_failing_listener_keeps_receiving_and_cancel_ends_the_subscription() {
        let (tx, rx) = unbounded_channel::<u32>();
        let (got_tx, got_rx) = mpsc::channel::<u32>();
        let h = SubscriptionHandle::forward("Failing", 0u32, rx, move |n: u32| {
            got_tx.send(n).unwrap();
            match n % 3 {
                0 => Err(ChatError::Internal {
                    reason: format!("{LISTENER_FAILED}{TRACE_MARK}Traceback\nValueError"),
                }),
                1 => panic!("listener panic"),
                _ => Ok(()),
            }
        })
        .unwrap();
        for i in 1..10 {
            tx.send(i).unwrap();
        }
        let got: Vec<u32> = (0..10)
            .map(|_| got_rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        assert!(h.is_active());
        h.cancel();
        assert!(!h.is_active());
        rt().unwrap().block_on(async {
            tokio::time::timeout(Duration::from_secs(10), h.ended())
                .await
                .unwrap()
        });
        // The engine side sees the stream closed once the forwarder is gone.
        wait_until("stream closed", || tx.is_closed());
        tx.send(99).err();
        assert!(got_rx.recv_timeout(Duration::from_millis(100)).is_err());
    }

    #[test]
    fn the_source_ending_ends_the_subscription_after_the_last_event() {
        let (tx, rx) = unbounded_channel::<u32>();
        let (got_tx, got_rx) = mpsc::channel::<u32>();
        let h = SubscriptionHandle::forward("Ending", 0u32, rx, move |n: u32| {
            got_tx.send(n).unwrap();
            Ok(())
        })
        .unwrap();
        tx.send(1).unwrap();
        drop(tx);
        rt().unwrap().block_on(async {
            tokio::time::timeout(Duration::from_secs(10), h.ended())
                .await
                .unwrap()
        });
        assert!(!h.is_active());
        assert_eq!(got_rx.try_iter().collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn a_dropped_handle_closes_the_engine_stream() {
        let (tx, rx) = unbounded_channel::<u32>();
        let h = SubscriptionHandle::forward("Dropped", 0u32, rx, |_n: u32| Ok(())).unwrap();
        assert!(!tx.is_closed());
        drop(h);
        wait_until("stream closed", || tx.is_closed());
    }

    #[test]
    fn a_listener_too_far_behind_ends_without_a_gap() {
        let (tx, rx) = unbounded_channel::<usize>();
        let release = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicBool::new(false));
        let (r, c, s) = (release.clone(), count.clone(), started.clone());
        let h = SubscriptionHandle::forward("Behind", 0usize, rx, move |n: usize| {
            s.store(true, Ordering::SeqCst);
            assert_eq!(n, c.load(Ordering::SeqCst), "in order, no gap");
            let start = Instant::now();
            while !r.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(1));
            }
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
        wait_until("first call running", || started.load(Ordering::SeqCst));
        for i in 1..=QUEUE_CAPACITY + 10 {
            tx.send(i).unwrap();
        }
        // The forwarder gives up at the first event that does not fit: the stream closes.
        wait_until("stream closed", || tx.is_closed());
        release.store(true, Ordering::SeqCst);
        rt().unwrap().block_on(async {
            tokio::time::timeout(Duration::from_secs(20), h.ended())
                .await
                .unwrap()
        });
        // Event 0 was being delivered, QUEUE_CAPACITY waited behind it; nothing after.
        assert_eq!(count.load(Ordering::SeqCst), QUEUE_CAPACITY + 1);
        assert!(!h.is_active());
    }

    #[test]
    fn summary_keeps_a_marked_traceback_and_only_the_type_otherwise() {
        let marked = ChatError::Internal {
            reason: format!(
                "{LISTENER_FAILED}{TRACE_MARK}Traceback (most recent call last):\n  File \"a.py\", line 3, in on_message\nValueError"
            ),
        };
        let s = summary(&marked);
        assert!(s.contains("a.py\", line 3, in on_message"), "{s}");
        assert!(s.contains("ValueError"), "{s}");
        let plain = ChatError::Internal {
            reason: format!("{LISTENER_FAILED}ValueError('secret body')"),
        };
        let s = summary(&plain);
        assert_eq!(s, "raised ValueError");
    }
}
