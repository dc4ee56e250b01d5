//! Live views applied as an app applies them.

use cubechat_core::{LocalMessage, VectorDiff};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

use crate::events::STEP;

/// A live view applied as an app applies it: the snapshot, kept up to date by its diffs.
pub struct Live<T> {
    /// The list as the diffs so far made it.
    pub list: Vec<T>,
    rx: UnboundedReceiver<VectorDiff<T>>,
}

impl<T: Clone + std::fmt::Debug> Live<T> {
    /// The view from what `watch_*` returned.
    pub fn new((list, rx): (Vec<T>, UnboundedReceiver<VectorDiff<T>>)) -> Self {
        Self { list, rx }
    }

    /// Applies diffs until `pred` holds for the list (within [`STEP`]); the list then.
    pub async fn until(&mut self, what: &str, pred: impl Fn(&[T]) -> bool) -> Vec<T> {
        let Self { list, rx } = self;
        timeout(STEP, async {
            while !pred(list) {
                let d = rx.recv().await.expect("live view ended");
                d.apply(list).expect("a diff that fits the list");
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}; the view: {list:?}"));
        list.clone()
    }

    /// Applies the diffs that arrived so far; how many there were.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Ok(d) = self.rx.try_recv() {
            d.apply(&mut self.list).expect("a diff that fits the list");
            n += 1;
        }
        n
    }
}

/// The ids of a timeline, in order.
pub fn ids_of(list: &[LocalMessage]) -> Vec<String> {
    list.iter().map(|m| m.id.clone()).collect()
}

/// The message with this id.
pub fn find<'a>(list: &'a [LocalMessage], id: &str) -> Option<&'a LocalMessage> {
    list.iter().find(|m| m.id == id)
}
