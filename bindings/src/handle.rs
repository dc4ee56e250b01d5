//! [`SubscriptionHandle`]: what every `subscribe_*` call returns. Cancelling it, or letting
//! it be garbage-collected, stops the deliveries.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
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
            deliver(what, || call(first));
            while let Some(item) = rx.recv().await {
                deliver(what, || call(item.into()));
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

/// Calls a listener without letting its failure (error or panic) end the delivery loop.
pub(crate) fn deliver(what: &str, call: impl FnOnce() -> Result<(), ChatError>) {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(listener = what, error = %e, "listener returned an error"),
        Err(p) => {
            tracing::error!(listener = what, panic = %panic_text(p.as_ref()), "listener panicked")
        }
    }
}
