//! The raw XMPP log at `trace`, as an app receives it through `init_platform`'s sink: the
//! SASL exchange (base64 of the password) and message bodies never appear, while the
//! redacted protocol trace does.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cubechat::{init_platform, ChatError, LogConfig, LogLevel, LogRecord, LogSink};
use cubechat_core::{ChatAuth, ChatEvent, Client, Config};
use cubechat_faults::xmpp::{HostileXmppServer, ALIVE_BODY, DOMAIN};

struct Capture(Mutex<Vec<LogRecord>>);

impl LogSink for Capture {
    fn log(&self, record: LogRecord) -> Result<(), ChatError> {
        self.0.lock().unwrap().push(record);
        Ok(())
    }
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_log_has_no_sasl_secret_and_no_body() {
    let sink = Arc::new(Capture(Mutex::new(Vec::new())));
    init_platform(
        LogConfig {
            level: Some(LogLevel::Trace),
            filter: None,
            console: false,
        },
        Some(sink.clone()),
    )
    .unwrap();
    let password = "pw-Very-Secret-42";
    let server = HostileXmppServer::start(vec![]).await.unwrap();
    let mut cfg = Config::new(7, "key", "http://127.0.0.1:9");
    cfg.chat.host = "127.0.0.1".into();
    cfg.chat.domain = DOMAIN.into();
    cfg.chat.port = server.port();
    cfg.chat.insecure_plaintext = true;
    let c = Client::new(cfg).unwrap();
    let mut events = c.chat().subscribe_chat();
    c.chat()
        .connect_chat(ChatAuth::Password {
            user_id: Some(5),
            password: password.into(),
        })
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let ChatEvent::Message(m) = events.recv().await.unwrap() {
                if m.body == ALIVE_BODY {
                    break;
                }
            }
        }
    })
    .await
    .unwrap();
    c.chat().destroy_chat().await;

    let records = sink.0.lock().unwrap().clone();
    let secret = base64(format!("\u{0}5-7\u{0}{password}").as_bytes());
    let raw: Vec<&LogRecord> = records
        .iter()
        .filter(|r| r.target == "cubechat_core::xmpp::raw")
        .collect();
    for r in &records {
        assert!(
            !r.message.contains(&secret) && !r.message.contains(password),
            "secret in the log: [{}] {}",
            r.target,
            r.message
        );
    }
    for r in &records {
        assert!(
            !r.message.contains(ALIVE_BODY),
            "message body in the log: [{}] {}",
            r.target,
            r.message
        );
    }
    // The redacted trace is there: the auth element, without its content, and the message.
    assert!(
        raw.iter().any(|r| r.message.starts_with("SEND <auth")
            && r.message.contains("mechanism='PLAIN'")
            && r.message.contains("bytes redacted]</auth>")),
        "{raw:#?}"
    );
    assert!(raw
        .iter()
        .any(|r| r.message.starts_with("RECV <message") && r.message.contains("<body>[")));
}
