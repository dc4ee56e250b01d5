//! Entry points for the hot-path microbenchmarks (`core/benches/hot_path.rs`), never part of
//! the SDK's API: the engine's own code paths, driven exactly as the engine drives them, on
//! canned input. Hidden from the docs; nothing in the SDK calls it (the release library
//! keeps none of it).
#![allow(missing_docs, clippy::missing_panics_doc, clippy::unwrap_used)]

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::xmpp::{ChatAuth, ChatEvent, ChatEvents, ChatHost, ChatShared, NoHost, OutgoingMessage};

/// This user in the canned stanzas: user 9 of app 7.
pub const ME: u64 = 9;

/// A private chat message as ConnectyCube delivers it (protocol reference §6.4): body,
/// `extraParams` with the dialog, the send date, `markable` (the receipt request) and a
/// custom parameter, from user 5 to user 9 of app 7.
pub const INBOUND_MESSAGE: &str = concat!(
    "<message xmlns='jabber:client' from='5-7@localhost/res' to='9-7@localhost' ",
    "type='chat' id='6b05fcaf923d1e2727000000'><body>hello there, how are you?</body>",
    "<extraParams xmlns='jabber:client'><save_to_history>1</save_to_history>",
    "<dialog_id>5f0c0ffee0c0ffee0c0ffee0</dialog_id><date_sent>1700000000</date_sent>",
    "<markable>1</markable><mood>fine</mood></extraParams>",
    "<markable xmlns='urn:xmpp:chat-markers:0'/></message>",
);

/// A read marker from user 5 about a message of this user.
pub const INBOUND_MARKER: &str = concat!(
    "<message xmlns='jabber:client' from='5-7@localhost/res' to='9-7@localhost' ",
    "type='chat' id='6b05fcaf923d1e2727000001'>",
    "<displayed xmlns='urn:xmpp:chat-markers:0' id='6b05fcaf923d1e2727000000'/>",
    "<extraParams xmlns='jabber:client'><dialog_id>5f0c0ffee0c0ffee0c0ffee0</dialog_id>",
    "</extraParams></message>",
);

/// Parses `xml` (one stanza) as the stream does and maps it to effects as the engine does;
/// returns the chat event it carries, if any.
pub fn inbound_event(xml: &[u8]) -> Option<ChatEvent> {
    crate::xmpp::bench_inbound(xml, ME)
}

/// The message `send_message` sends: a private markable text message with one custom
/// parameter, to user 5.
pub fn outgoing_message() -> OutgoingMessage {
    let mut m = OutgoingMessage::new(
        "5f0c0ffee0c0ffee0c0ffee0",
        Some(5),
        "hello there, how are you?",
    );
    m.markable = true;
    m.date_sent = Some(1_700_000_000);
    m.custom.insert("mood".into(), "fine".into());
    m
}

/// The bytes the engine writes for `m` sent as `id` (target, checks, stanza, serialisation),
/// appended to `out`.
pub fn outbound_bytes(id: &str, m: OutgoingMessage, out: &mut Vec<u8>) {
    crate::xmpp::bench_outbound(id, m, out);
}

/// The bytes of a delivered marker for message `id` of user 5.
pub fn marker_bytes(id: &str, out: &mut Vec<u8>) {
    crate::xmpp::bench_marker(id, out);
}

/// A page of `n` group dialogs as `GET /chat/Dialog` returns it.
pub fn dialogs_page_json(n: usize) -> String {
    let items: Vec<String> = (0..n)
        .map(|i| {
            format!(
                concat!(
                    "{{\"_id\":\"5f0c0ffee0c0ffee0c{i:06x}\",\"user_id\":5,\"type\":2,",
                    "\"name\":\"Group {i}\",\"description\":\"a group\",\"photo\":null,",
                    "\"occupants_ids\":[5,9,11,12],\"admins_ids\":[],\"pinned_messages_ids\":[],",
                    "\"last_message\":\"see you tomorrow at {i}\",",
                    "\"last_message_id\":\"6b05fcaf923d1e27270{i:05x}\",",
                    "\"last_message_user_id\":11,\"last_message_date_sent\":1700000000,",
                    "\"last_message_status\":null,\"unread_messages_count\":{u},",
                    "\"xmpp_room_jid\":\"7_5f0c0ffee0c0ffee0c{i:06x}@muc.localhost\",",
                    "\"created_at\":\"2024-01-01T00:00:00Z\",\"updated_at\":\"2024-01-02T00:00:00Z\",",
                    "\"is_muted\":false,\"is_joinable\":1}}"
                ),
                i = i,
                u = i % 7
            )
        })
        .collect();
    format!(
        "{{\"total_entries\":{n},\"skip\":0,\"limit\":{n},\"items\":[{}]}}",
        items.join(",")
    )
}

/// Decodes a dialog page as `Dialogs::list` does (the wire model), returning how many.
pub fn decode_dialogs_page(json: &[u8]) -> usize {
    let page: cubechat_wire::chat::DialogsPage = serde_json::from_slice(json).unwrap();
    page.items.len()
}

/// A chat session connected over loopback TCP to `sm_server`, a minimal XMPP server with
/// stream management that acknowledges (`<a h=…/>`) every `<r/>`: what sending costs the
/// engine up to the `Sent` event (stanza, queue, serialisation, socket, ack handling).
pub struct Loopback {
    shared: Arc<ChatShared>,
    events: ChatEvents,
    server: JoinHandle<()>,
    next: u64,
}

impl Loopback {
    /// Starts the server and connects a session to it (within the current runtime).
    pub async fn start() -> Loopback {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            if let Ok((sock, _)) = listener.accept().await {
                sm_server(sock, Script::default()).await;
            }
        });
        let mut cfg = Config::new(7, "k", "https://api.example.com");
        cfg.chat.host = "127.0.0.1".into();
        cfg.chat.domain = "localhost".into();
        cfg.chat.port = port;
        cfg.chat.insecure_plaintext = true;
        let host: Weak<dyn ChatHost> = Weak::<NoHost>::new();
        let shared = Arc::new(ChatShared::new(cfg, host));
        let events = shared.subscribe_chat();
        tokio::time::timeout(
            Duration::from_secs(10),
            shared.connect_chat(ChatAuth::Password {
                user_id: Some(ME),
                password: "pw".into(),
            }),
        )
        .await
        .expect("loopback connect timed out")
        .expect("loopback connect failed");
        Loopback {
            shared,
            events,
            server,
            next: 0,
        }
    }

    /// Sends `n` messages as `send_message` does and waits until each is reported `Sent`
    /// (acknowledged by the server); panics after 30 s.
    pub async fn send_and_ack(&mut self, n: usize) {
        for _ in 0..n {
            self.next += 1;
            let id = format!("{:024x}", self.next);
            self.shared
                .send_message_as(&id, outgoing_message())
                .unwrap();
        }
        let mut acked = 0;
        while acked < n {
            let ev = tokio::time::timeout(Duration::from_secs(30), self.events.recv())
                .await
                .expect("acks timed out")
                .expect("session ended");
            match ev {
                ChatEvent::Sent { .. } => acked += 1,
                ChatEvent::Failed { .. } => panic!("a message failed"),
                _ => {}
            }
        }
    }

    /// Ends the session and the server.
    pub async fn stop(self) {
        self.shared.disconnect_chat().await;
        self.server.abort();
    }
}

/// Finds `needle` in `hay` from `from`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The value of attribute `name` in the tag starting at `at`.
fn attr(hay: &[u8], at: usize, name: &str) -> Option<String> {
    let end = find(hay, b">", at)?;
    let tag = std::str::from_utf8(&hay[at..end]).ok()?;
    for q in ['\'', '"'] {
        let key = format!(" {name}={q}");
        if let Some(p) = tag.find(&key) {
            let rest = &tag[p + key.len()..];
            return rest.find(q).map(|e| rest[..e].to_owned());
        }
    }
    None
}

/// What [`sm_server`] does on one connection besides the handshake.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    /// Answer `<r/>` with `<a/>` (else acknowledge nothing).
    pub(crate) ack: bool,
    /// Close the connection once this many messages arrived.
    pub(crate) close_after: Option<usize>,
    /// The ids of the messages received, in order.
    pub(crate) seen: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            ack: true,
            close_after: None,
            seen: Arc::default(),
        }
    }
}

/// A minimal c2s server: stream header, SASL PLAIN (any credentials), restart, resumption
/// refused (`<failed/>`), bind, stream management (enable; an `<a/>` answering every `<r/>`
/// with the count of stanzas received, as `script` says).
pub(crate) async fn sm_server(mut sock: tokio::net::TcpStream, script: Script) {
    const HEADER: &str = concat!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' ",
        "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='localhost' id='s'>"
    );
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut pos = 0usize;
    let mut chunk = vec![0u8; 1 << 16];
    let mut stage = 0;
    let mut count: u64 = 0;
    loop {
        let n = match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut out = String::new();
        loop {
            let progressed = match stage {
                0 | 2 => match find(&buf, b"<stream:stream", pos).and_then(|p| find(&buf, b">", p))
                {
                    Some(end) => {
                        pos = end + 1;
                        out.push_str(HEADER);
                        if stage == 0 {
                            out.push_str(concat!(
                                "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>",
                                "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
                            ));
                        } else {
                            out.push_str(concat!(
                                "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>",
                                "<sm xmlns='urn:xmpp:sm:3'/></stream:features>"
                            ));
                        }
                        stage += 1;
                        true
                    }
                    None => false,
                },
                1 => match find(&buf, b"</auth>", pos) {
                    Some(end) => {
                        pos = end + 7;
                        out.push_str("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
                        stage = 2;
                        true
                    }
                    None => false,
                },
                3 => {
                    let resume = find(&buf, b"<resume", pos);
                    let bind =
                        find(&buf, b"<iq", pos).and_then(|p| Some((p, find(&buf, b"</iq>", p)?)));
                    match (resume, bind) {
                        (Some(r), q) if q.is_none_or(|(p, _)| r < p) => match find(&buf, b">", r) {
                            Some(end) => {
                                pos = end + 1;
                                out.push_str(concat!(
                                    "<failed xmlns='urn:xmpp:sm:3' h='0'><item-not-found ",
                                    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
                                ));
                                true
                            }
                            None => false,
                        },
                        (_, Some((start, end))) => {
                            let id = attr(&buf, start, "id").unwrap_or_default();
                            pos = end + 5;
                            out.push_str(&format!(
                                "<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
                                 <jid>9-7@localhost/bench</jid></bind></iq>"
                            ));
                            stage = 4;
                            true
                        }
                        _ => false,
                    }
                }
                4 => match find(&buf, b"<enable", pos).and_then(|p| find(&buf, b">", p)) {
                    Some(end) => {
                        pos = end + 1;
                        out.push_str("<enabled xmlns='urn:xmpp:sm:3' id='sm1' resume='true'/>");
                        stage = 5;
                        true
                    }
                    None => false,
                },
                _ => {
                    // Count stanzas (top-level message/presence/iq) and answer requests.
                    let Some(p) = buf[pos..].iter().position(|&c| c == b'<') else {
                        pos = buf.len();
                        break;
                    };
                    let start = pos + p;
                    let tag = &buf[start + 1..];
                    let known = tag.len() >= 10 || tag.first() == Some(&b'/');
                    // A message is read when its whole start tag is here (for its id).
                    if !known || (tag.starts_with(b"message") && find(&buf, b">", start).is_none())
                    {
                        // Not enough bytes to tell: wait for more.
                        pos = start;
                        break;
                    }
                    pos = start + 1;
                    if tag.starts_with(b"r ") || tag.starts_with(b"r/") {
                        if script.ack {
                            out.push_str(&format!("<a xmlns='urn:xmpp:sm:3' h='{count}'/>"));
                        }
                    } else if tag.starts_with(b"message") {
                        count += 1;
                        let id = attr(&buf, start, "id").unwrap_or_default();
                        let mut seen = script.seen.lock().unwrap();
                        seen.push(id);
                        if script.close_after == Some(seen.len()) {
                            return;
                        }
                    } else if tag.starts_with(b"presence") || tag.starts_with(b"iq ") {
                        count += 1;
                    }
                    true
                }
            };
            if !progressed {
                break;
            }
        }
        // Keep only what is not read yet.
        buf.drain(..pos);
        pos = 0;
        if !out.is_empty() && sock.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}
