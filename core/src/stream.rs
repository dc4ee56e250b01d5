//! [`EventStream`]: the one kind of subscription the engine hands out.
//!
//! Every `subscribe_*` and `watch_*` method of [`Client`](crate::Client) returns a snapshot
//! and an [`EventStream`] of what happens after it: the chat events, the connection states,
//! the session events, the live dialog list and the live timelines. All of them behave the
//! same way:
//! - **unbounded and lossless**: a slow reader never misses an event (there is no "lagged"
//!   case to handle); events wait in memory until read;
//! - **in order**: events arrive in the order the engine produced them;
//! - **snapshot, then events**: the snapshot returned next to the stream is the state the
//!   first event applies to, taken under the same lock the emitters hold;
//! - **ends with the client**: once the [`Client`](crate::Client) is dropped (or the store
//!   closed, for live views), `recv()` returns `None` after the last queued event.
//!
//! Dropping the stream unsubscribes; the engine forgets closed streams on its next event.

use tokio::sync::mpsc;

/// A subscription: an unbounded, lossless, in-order receiver of `T` (see the module docs).
pub type EventStream<T> = mpsc::UnboundedReceiver<T>;

/// The sending half the engine keeps for one [`EventStream`].
pub(crate) type EventSink<T> = mpsc::UnboundedSender<T>;

/// A new subscription: the sink the engine keeps and the stream handed to the caller.
pub(crate) fn channel<T>() -> (EventSink<T>, EventStream<T>) {
    mpsc::unbounded_channel()
}

/// A list of subscribers of one kind of event.
#[derive(Debug)]
pub(crate) struct Subscribers<T> {
    sinks: Vec<EventSink<T>>,
}

impl<T> Default for Subscribers<T> {
    fn default() -> Self {
        Self { sinks: Vec::new() }
    }
}

impl<T: Clone> Subscribers<T> {
    /// Adds a subscriber and returns its stream.
    pub(crate) fn subscribe(&mut self) -> EventStream<T> {
        let (tx, rx) = channel();
        self.sinks.push(tx);
        rx
    }

    /// Sends `event` to every open subscriber, in subscription order, and forgets the
    /// closed ones.
    pub(crate) fn emit(&mut self, event: &T) {
        self.sinks.retain(|tx| tx.send(event.clone()).is_ok());
    }

    /// How many subscribers are still open (as of the last event).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sinks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subscriber_gets_every_event_in_order_and_closed_ones_are_forgotten() {
        let mut subs = Subscribers::default();
        let mut a = subs.subscribe();
        let b = subs.subscribe();
        drop(b);
        for i in 0..1000 {
            subs.emit(&i);
        }
        assert_eq!(subs.sinks.len(), 1, "the dropped stream is forgotten");
        for i in 0..1000 {
            assert_eq!(a.try_recv(), Ok(i), "no event lost however far behind");
        }
        assert!(a.try_recv().is_err());
        drop(subs);
        assert_eq!(a.try_recv(), Err(mpsc::error::TryRecvError::Disconnected));
    }
}
