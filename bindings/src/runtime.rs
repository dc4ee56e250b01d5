//! The single tokio runtime of the library, created on first use (or by `init_platform`),
//! and [`run`], the one way exported async functions execute engine futures on it.
//!
//! Exported futures may be polled by any foreign executor (Kotlin coroutines, Swift tasks,
//! asyncio); the engine's futures run only here. A panic inside becomes
//! [`ChatError::Internal`]; a dropped (cancelled) foreign future aborts its task.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

use crate::error::ChatError;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The shared runtime, built on first use: a few worker threads named `cubechat-rt`.
pub(crate) fn rt() -> Result<&'static Runtime, ChatError> {
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("cubechat-rt")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the runtime: {e}"))
        })
        .as_ref()
        .map_err(|m| ChatError::Internal { reason: m.clone() })
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
/// `InternalException` and the library stays usable. Never call it in an app.
#[uniffi::export]
pub fn trigger_test_panic() {
    panic!("test panic requested through trigger_test_panic");
}

/// Like [`trigger_test_panic`], but the panic happens on a runtime worker thread inside an
/// async call; it surfaces as [`ChatError::Internal`].
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
