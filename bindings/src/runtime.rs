//! The single tokio runtime of the library, created on first use (or by `init_platform`),
//! and [`run`], the one way exported async functions execute engine futures on it.
//!
//! Exported futures may be polled by any foreign executor (Kotlin coroutines, Swift tasks,
//! asyncio); the engine's futures run only here. A panic inside becomes
//! [`ChatError::Internal`]; a dropped (cancelled) foreign future aborts its task.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Handle, Runtime};

use crate::error::ChatError;

/// The runtime: not built yet, running, or shut down for good (see [`shutdown`]).
enum State {
    Unstarted,
    Running(Runtime),
    Failed(String),
    ShutDown,
}

static RUNTIME: Mutex<State> = Mutex::new(State::Unstarted);

fn state() -> MutexGuard<'static, State> {
    RUNTIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// A handle to the shared runtime, built on first use: two worker threads named
/// `cubechat-rt`. Fails after [`shutdown`].
pub(crate) fn rt() -> Result<Handle, ChatError> {
    let mut st = state();
    if let State::Unstarted = *st {
        *st = match Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cubechat-rt")
            .enable_all()
            .build()
        {
            Ok(rt) => State::Running(rt),
            Err(e) => State::Failed(format!("cannot start the runtime: {e}")),
        };
    }
    match &*st {
        State::Running(rt) => Ok(rt.handle().clone()),
        State::Failed(m) => Err(ChatError::Internal { reason: m.clone() }),
        State::ShutDown | State::Unstarted => Err(ChatError::Internal {
            reason: "cubechat was shut down".into(),
        }),
    }
}

/// Set by [`shutdown`]: no listener call starts afterwards.
static SHUT_DOWN: AtomicBool = AtomicBool::new(false);

/// Listener calls running now (on subscriptions' delivery threads), for [`shutdown`] to wait.
static IN_FLIGHT: Mutex<usize> = Mutex::new(0);
static IN_FLIGHT_DONE: Condvar = Condvar::new();

thread_local! {
    /// True on a delivery thread while it calls a listener.
    static IN_DELIVERY: Cell<bool> = const { Cell::new(false) };
}

/// Whether [`shutdown`] was called.
pub(crate) fn is_shut_down() -> bool {
    SHUT_DOWN.load(Ordering::SeqCst)
}

/// Marks one listener call as running, so that [`shutdown`] waits for it; `None` once the
/// library is shut down (the call must not start).
pub(crate) struct DeliveryGuard(());

impl DeliveryGuard {
    /// Enters a listener call, unless the library is shut down.
    pub(crate) fn enter() -> Option<Self> {
        let mut n = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
        if is_shut_down() {
            return None;
        }
        *n += 1;
        IN_DELIVERY.with(|d| d.set(true));
        Some(Self(()))
    }
}

impl Drop for DeliveryGuard {
    fn drop(&mut self) {
        IN_DELIVERY.with(|d| d.set(false));
        let mut n = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        IN_FLIGHT_DONE.notify_all();
    }
}

/// Stops the library's runtime for good: running calls end, listeners stop (no listener call
/// starts afterwards), and later calls fail with `Internal`. Waits up to 2 s for listener
/// calls already running to return, and up to 2 s for the worker threads to finish what they
/// are doing. Call it only when the process is about to exit: the Python package registers
/// it with `atexit`, so no cubechat thread calls into an interpreter that is shutting down.
#[uniffi::export]
pub fn shutdown() {
    {
        let mut n = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
        SHUT_DOWN.store(true, Ordering::SeqCst);
        // A listener calling shutdown would wait for itself: count it out.
        let own = usize::from(IN_DELIVERY.with(Cell::get));
        let deadline = Instant::now() + Duration::from_secs(2);
        while *n > own {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            n = IN_FLIGHT_DONE
                .wait_timeout(n, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
    let old = std::mem::replace(&mut *state(), State::ShutDown);
    if let State::Running(rt) = old {
        if Handle::try_current().is_ok() {
            // Called from one of our own threads (a listener): a runtime cannot wait for
            // itself, so let another thread finish the shutdown.
            std::thread::spawn(move || rt.shutdown_timeout(Duration::from_secs(2)));
        } else {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// Aborts the task when the foreign future awaiting it is dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs an engine future on the runtime and converts its outcome for the FFI.
pub(crate) async fn run<T, F>(fut: F) -> Result<T, ChatError>
where
    F: Future<Output = Result<T, cubechat_core::Error>> + Send + 'static,
    T: Send + 'static,
{
    let handle = rt()?.spawn(fut);
    let _abort = AbortOnDrop(handle.abort_handle());
    match handle.await {
        Ok(result) => result.map_err(ChatError::from),
        Err(e) if e.is_panic() => Err(ChatError::Internal {
            reason: format!("panic in cubechat: {}", panic_text(e.into_panic().as_ref())),
        }),
        Err(_) => Err(ChatError::Cancelled),
    }
}

/// The text of a panic payload.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Panics inside an exported call on purpose. It exists so tests in every language can
/// prove that no Rust panic crosses the FFI: the call raises `InternalError` /
/// `InternalException` and the library stays usable. Only in builds with the `test-hooks`
/// feature (the binding tests); never in a shipped library.
#[cfg(feature = "test-hooks")]
#[uniffi::export]
pub fn trigger_test_panic() {
    panic!("test panic requested through trigger_test_panic");
}

/// Like [`trigger_test_panic`], but the panic happens on a runtime worker thread inside an
/// async call; it surfaces as [`ChatError::Internal`]. Only with the `test-hooks` feature.
#[cfg(feature = "test-hooks")]
#[uniffi::export]
pub async fn trigger_test_panic_async() -> Result<(), ChatError> {
    run(async {
        if std::hint::black_box(true) {
            panic!("test panic requested through trigger_test_panic_async");
        }
        Ok(())
    })
    .await
}
