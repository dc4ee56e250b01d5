// Chat event waits shared by the engine-vs-cubeserver real-time tests (textually included by
// `sdk_realtime.rs` and `sdk_presence.rs`, which define `STEP` and `QUIET`).

/// A chat event subscription whose waits are order-independent: events skipped while
/// waiting for another one stay buffered for later waits and for [`Ev::settle`].
struct Ev {
    rx: ChatEvents,
    buf: VecDeque<ChatEvent>,
}

#[allow(dead_code)]
impl Ev {
    fn new(rx: ChatEvents) -> Self {
        Self {
            rx,
            buf: VecDeque::new(),
        }
    }

    /// Takes the first event (buffered or arriving within [`STEP`]) matching `pred`.
    async fn next(&mut self, what: &str, pred: impl Fn(&ChatEvent) -> bool) -> ChatEvent {
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

    async fn message(&mut self, what: &str, pred: impl Fn(&ChatMessage) -> bool) -> ChatMessage {
        match self
            .next(what, |e| matches!(e, ChatEvent::Message(m) if pred(m)))
            .await
        {
            ChatEvent::Message(m) => m,
            _ => unreachable!(),
        }
    }

    async fn sent(&mut self, id: &str) {
        self.next(
            "Sent",
            |e| matches!(e, ChatEvent::Sent { message_id } if message_id == id),
        )
        .await;
    }

    /// The `MessageError` of `id`: `(code, text)`.
    async fn error(&mut self, id: &str) -> (u16, String) {
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
    async fn activity(&mut self, what: &str, user_id: u64) -> u64 {
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
    fn take(&mut self) -> Vec<ChatEvent> {
        while let Ok(e) = self.rx.try_recv() {
            self.buf.push_back(e);
        }
        self.buf.drain(..).collect()
    }

    /// Every event not taken yet, after [`QUIET`].
    async fn settle(&mut self) -> Vec<ChatEvent> {
        tokio::time::sleep(QUIET).await;
        self.take()
    }
}

#[allow(dead_code)]
async fn state(rx: &mut ConnectionStates, what: &str, pred: impl Fn(&ConnectionState) -> bool) {
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

async fn connected(rx: &mut ConnectionStates, what: &str) {
    state(rx, what, |s| *s == ConnectionState::Connected).await;
}

#[allow(dead_code)]
fn message_ids(events: &[ChatEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Message(m) => Some(m.id.clone()),
            _ => None,
        })
        .collect()
}
