//! [`SubscriptionHandle`]: what every `subscribe_*` call returns. Cancelling it, or letting
//! it be garbage-collected, stops the deliveries.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::AbortHandle;

use crate::error::ChatError;
use crate::runtime::{panic_text, rt};

/// A live subscription. Deliveries stop on [`SubscriptionHandle::cancel`] or when the
/// handle is dropped.
#[derive(uniffi::Object)]
pub struct SubscriptionHandle {
    task: Mutex<Option<AbortHandle>>,
}

impl SubscriptionHandle {
    /// Spawns a delivery loop on the runtime and returns its handle.
    pub(crate) fn spawn<F>(fut: F) -> Result<Arc<Self>, ChatError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = rt()?.spawn(fut);
        Ok(Arc::new(Self {
            task: Mutex::new(Some(handle.abort_handle())),
        }))
    }

    /// Delivers `first` (the snapshot), then every item of `rx` converted, in order, through
    /// `call` (each call guarded by [`deliver`]), until the source closes.
    pub(crate) fn forward<T, E>(
        what: &'static str,
        first: E,
        mut rx: UnboundedReceiver<T>,
        call: impl Fn(E) -> Result<(), ChatError> + Send + 'static,
    ) -> Result<Arc<Self>, ChatError>
    where
        T: Into<E> + Send + 'static,
        E: Send + 'static,
    {
        Self::spawn(async move {
            let listener = Listener::new(what);
            listener.deliver(|| call(first));
            while let Some(item) = rx.recv().await {
                listener.deliver(|| call(item.into()));
            }
        })
    }
}

#[uniffi::export]
impl SubscriptionHandle {
    /// Stops the deliveries. Idempotent; a callback already running finishes.
    pub fn cancel(&self) {
        if let Some(h) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
    }

    /// True until cancelled or until the event source ended.
    pub fn is_active(&self) -> bool {
        self.task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|h| !h.is_finished())
    }
}

impl Drop for SubscriptionHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// One app listener as seen by its delivery loop: calls it without letting its failure (an
/// error or exception it raised, or a panic) end the deliveries, and logs the first failure
/// only (through the SDK's logging, at `warn`), so a listener that always fails does not
/// flood the log; later events are still delivered.
pub(crate) struct Listener {
    what: &'static str,
    failed: AtomicBool,
}

impl Listener {
    /// A listener of kind `what` (e.g. `MessageListener`), named in the log.
    pub(crate) fn new(what: &'static str) -> Self {
        Self {
            what,
            failed: AtomicBool::new(false),
        }
    }

    /// Calls the listener; see [`Listener`].
    pub(crate) fn deliver(&self, call: impl FnOnce() -> Result<(), ChatError>) {
        let failure = match catch_unwind(AssertUnwindSafe(call)) {
            Ok(Ok(())) => return,
            Ok(Err(e)) => summary(&e),
            Err(p) => format!("panic: {}", panic_text(p.as_ref())),
        };
        if !self.failed.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                listener = self.what,
                error = %failure,
                "a listener failed; its further failures are not logged, events keep coming"
            );
        }
    }
}

/// What is logged of a listener's failure: for an exception the app raised, only its type
/// (its text could quote a message body); for a `ChatError` it raised, the error.
fn summary(e: &ChatError) -> String {
    match e {
        ChatError::Internal { reason } => match reason.strip_prefix(LISTENER_FAILED) {
            Some(repr) => {
                let kind: String = repr
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '$'))
                    .take(100)
                    .collect();
                format!("raised {kind}")
            }
            None => e.to_string(),
        },
        other => other.to_string().chars().take(200).collect(),
    }
}

/// How a foreign exception's text starts inside [`ChatError::Internal`].
pub(crate) const LISTENER_FAILED: &str = "listener failed: ";
