//! Chat event waits shared by the real-time tests: every wait is bounded by [`STEP`], and
//! "nothing else arrives" is watched for [`QUIET`].

use std::collections::VecDeque;
use std::time::Duration;

use cubechat_core::{ChatEvent, ChatEvents, ChatMessage, ConnectionState, ConnectionStates};
use tokio::time::timeout;

/// The longest any single expected event may take (an upper bound only: a passing wait
/// returns as soon as its event arrives).
pub const STEP: Duration = Duration::from_secs(30);
/// How long "nothing else arrives" is watched for ([`Ev::settle`]).
pub const QUIET: Duration = Duration::from_millis(1500);

/// A chat event subscription whose waits are order-independent: events skipped while
/// waiting for another one stay buffered for later waits and for [`Ev::settle`].
pub struct Ev {
    /// The subscription itself, for a test that reads it directly.
    pub rx: ChatEvents,
    buf: VecDeque<ChatEvent>,
}

impl Ev {
    /// Waits on `rx`, nothing buffered yet.
    pub fn new(rx: ChatEvents) -> Self {
        Self {
            rx,
            buf: VecDeque::new(),
        }
    }

    /// Takes the first event (buffered or arriving within [`STEP`]) matching `pred`.
    pub async fn next(&mut self, what: &str, pred: impl Fn(&ChatEvent) -> bool) -> ChatEvent {
        if let Some(i) = self.buf.iter().position(&pred) {
            return self.buf.remove(i).unwrap();
        }
        let buf = &mut self.buf;
        let rx = &mut self.rx;
        timeout(STEP, async {
            loop {
                let e = rx.recv().await.expect("event stream ended");
                if pred(&e) {
                    return e;
                }
                buf.push_back(e);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// Takes the first chat message matching `pred`.
    pub async fn message(
        &mut self,
        what: &str,
        pred: impl Fn(&ChatMessage) -> bool,
    ) -> ChatMessage {
        match self
            .next(what, |e| matches!(e, ChatEvent::Message(m) if pred(m)))
            .await
        {
            ChatEvent::Message(m) => m,
            _ => unreachable!(),
        }
    }

    /// Takes the `Sent` acknowledgement of `id`.
    pub async fn sent(&mut self, id: &str) {
        self.next(
            "Sent",
            |e| matches!(e, ChatEvent::Sent { message_id } if message_id == id),
        )
        .await;
    }

    /// The `MessageError` of `id`: `(code, text)`.
    pub async fn error(&mut self, id: &str) -> (u16, String) {
        match self
            .next(
                "MessageError",
                |e| matches!(e, ChatEvent::MessageError { message_id, .. } if message_id == id),
            )
            .await
        {
            ChatEvent::MessageError { code, text, .. } => (code, text),
            _ => unreachable!(),
        }
    }

    /// The next `LastActivity` of `user_id`: its seconds.
    pub async fn activity(&mut self, what: &str, user_id: u64) -> u64 {
        match self
            .next(
                what,
                |e| matches!(e, ChatEvent::LastActivity { user_id: u, .. } if *u == user_id),
            )
            .await
        {
            ChatEvent::LastActivity { seconds, .. } => seconds,
            _ => unreachable!(),
        }
    }

    /// Every event not taken yet, now.
    pub fn take(&mut self) -> Vec<ChatEvent> {
        while let Ok(e) = self.rx.try_recv() {
            self.buf.push_back(e);
        }
        self.buf.drain(..).collect()
    }

    /// Every event not taken yet, after [`QUIET`].
    pub async fn settle(&mut self) -> Vec<ChatEvent> {
        tokio::time::sleep(QUIET).await;
        self.take()
    }
}

/// Waits (bounded by [`STEP`]) for a connection state matching `pred`; fails with the
/// states it saw instead.
pub async fn state(rx: &mut ConnectionStates, what: &str, pred: impl Fn(&ConnectionState) -> bool) {
    let mut seen = Vec::new();
    let found = timeout(STEP, async {
        loop {
            let s = rx.recv().await.expect("state stream ended");
            if pred(&s) {
                return;
            }
            seen.push(s);
        }
    })
    .await;
    if found.is_err() {
        panic!("timed out waiting for state {what}; saw {seen:?}")
    }
}

/// Waits for [`ConnectionState::Connected`].
pub async fn connected(rx: &mut ConnectionStates, what: &str) {
    state(rx, what, |s| *s == ConnectionState::Connected).await;
}

/// The ids of the chat messages among `events`, in order.
pub fn message_ids(events: &[ChatEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Message(m) => Some(m.id.clone()),
            _ => None,
        })
        .collect()
}
