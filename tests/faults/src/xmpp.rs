//! A hostile XMPP server for the engine's tests, speaking raw bytes on 127.0.0.1 (plain TCP,
//! for `insecure_plaintext`, or direct TLS with its own CA).
//!
//! Every connection completes enough of a c2s handshake for the engine (stream header and
//! features, SASL PLAIN accepting any credentials, a restarted stream offering resource
//! binding, the bind result, a `result` for every other `get`/`set` iq), then runs the next
//! [`Attack`] from the server's script. Connections beyond the script behave and deliver one
//! ordinary message ([`ALIVE_BODY`]), so a test can tell that the client survived and
//! reconnected.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cubechat_wire::xmlguard::{Limits, XmlGuard};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{crypto::ring, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// The JID domain the server claims.
pub const DOMAIN: &str = "localhost";
/// The body of the ordinary message a behaving connection delivers after bind.
pub const ALIVE_BODY: &str = "still alive";
/// The sender of every message the server sends: user 6 of app 7.
pub const SENDER: &str = "6-7@localhost/hostile";

/// What one connection does to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attack {
    /// Complete the handshake and deliver one [`ALIVE_BODY`] message.
    Behave,
    /// Before SASL: stream features nested `depth` levels deep.
    DeepFeatures {
        /// Nesting inside `<stream:features>`.
        depth: usize,
    },
    /// After bind: a message whose payload nests `depth` levels deep.
    DeepNesting {
        /// Nesting inside `<message>`.
        depth: usize,
    },
    /// After bind: one message whose body is `bytes` long (sent in pieces, never held whole).
    HugeStanza {
        /// Body length in bytes.
        bytes: usize,
    },
    /// After bind: a message, then XML that is not well-formed.
    Malformed,
    /// After bind: `count` ordinary messages as fast as the socket takes them, then
    /// [`ALIVE_BODY`].
    Flood {
        /// Number of messages.
        count: usize,
    },
}

/// What the server saw; all counters only grow.
#[derive(Debug, Default)]
pub struct Stats {
    /// TCP connections accepted.
    pub connections: AtomicUsize,
    /// Resource bindings answered.
    pub binds: AtomicUsize,
    /// Attacks begun (the client may hang up before all their bytes are written).
    pub attacks: AtomicUsize,
    /// Connections that ended because the client closed or reset them.
    pub client_hangups: AtomicUsize,
}

struct Shared {
    script: Mutex<VecDeque<Attack>>,
    stats: Stats,
}

/// A running hostile server; stops when dropped.
pub struct HostileXmppServer {
    addr: SocketAddr,
    ca_pem: Option<String>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for HostileXmppServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Any byte stream (TCP or TLS).
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One side of an XMPP connection in raw bytes: the peer's input split into top-level units
/// (stream header, stanza, footer) by [`XmlGuard`], output written as given.
pub(crate) struct Wire {
    pub(crate) io: Box<dyn Io>,
    guard: XmlGuard,
    units: VecDeque<String>,
    partial: Vec<u8>,
}

impl Wire {
    pub(crate) fn new(io: Box<dyn Io>) -> Self {
        Self {
            io,
            guard: XmlGuard::new(Limits::default()),
            units: VecDeque::new(),
            partial: Vec::new(),
        }
    }

    /// The peer's next complete unit, trimmed; `UnexpectedEof` when it closed the connection.
    pub(crate) async fn next_unit(&mut self, wait: Duration) -> io::Result<String> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if let Some(u) = self.units.pop_front() {
                return Ok(u);
            }
            let n = tokio::time::timeout(wait, self.io.read(&mut buf))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "peer silent"))??;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let bytes = &buf[..n];
            let mut last = 0;
            let (partial, units) = (&mut self.partial, &mut self.units);
            self.guard.feed(bytes, |end| {
                partial.extend_from_slice(&bytes[last..end]);
                units.push_back(String::from_utf8_lossy(partial).trim().to_owned());
                partial.clear();
                last = end;
            })?;
            partial.extend_from_slice(&bytes[last..]);
        }
    }

    /// Writes and flushes `s`.
    pub(crate) async fn send(&mut self, s: &str) -> io::Result<()> {
        self.io.write_all(s.as_bytes()).await?;
        self.io.flush().await
    }
}

impl HostileXmppServer {
    /// Starts a plain-TCP server on a free port of 127.0.0.1 running `script`, one attack
    /// per connection, in order.
    pub async fn start(script: Vec<Attack>) -> io::Result<Self> {
        Self::start_inner(script, false).await
    }

    /// Like [`Self::start`] but with direct TLS: trust [`Self::ca_pem`] and connect to
    /// [`DOMAIN`].
    pub async fn start_tls(script: Vec<Attack>) -> io::Result<Self> {
        Self::start_inner(script, true).await
    }

    async fn start_inner(script: Vec<Attack>, tls: bool) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (acceptor, ca_pem) = if tls {
            let (a, pem) = tls_acceptor()?;
            (Some(a), Some(pem))
        } else {
            (None, None)
        };
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into()),
            stats: Stats::default(),
        });
        let s2 = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                s2.stats.connections.fetch_add(1, Ordering::SeqCst);
                let attack = s2
                    .script
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pop_front()
                    .unwrap_or(Attack::Behave);
                let shared = s2.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let io: Box<dyn Io> = match acceptor {
                        Some(a) => match a.accept(tcp).await {
                            Ok(t) => Box::new(t),
                            Err(_) => return,
                        },
                        None => Box::new(tcp),
                    };
                    let mut conn = Conn {
                        w: Wire::new(io),
                        shared: &shared,
                    };
                    if let Err(e) = conn.serve(attack).await {
                        if matches!(
                            e.kind(),
                            io::ErrorKind::UnexpectedEof
                                | io::ErrorKind::ConnectionReset
                                | io::ErrorKind::BrokenPipe
                        ) {
                            shared.stats.client_hangups.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        Ok(Self {
            addr,
            ca_pem,
            shared,
            task,
        })
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The CA certificate to trust (TLS servers only).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// What happened so far.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Appends attacks for later connections.
    pub fn push(&self, attack: Attack) {
        self.shared
            .script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(attack);
    }
}

fn tls_acceptor() -> io::Result<(TlsAcceptor, String)> {
    let e = io::Error::other;
    let ca_key = rcgen::KeyPair::generate().map_err(e)?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "hostile test CA");
    let ca_cert = ca.self_signed(&ca_key).map_err(e)?;
    let key = rcgen::KeyPair::generate().map_err(e)?;
    let leaf = rcgen::CertificateParams::new(vec![DOMAIN.to_owned()]).map_err(e)?;
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).map_err(e)?;
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(io::Error::other)?;
    Ok((TlsAcceptor::from(Arc::new(config)), ca_cert.pem()))
}

/// How long a connection waits for the client's next unit before giving up.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='hostile' version='1.0'>";

struct Conn<'a> {
    w: Wire,
    shared: &'a Shared,
}

impl Conn<'_> {
    async fn next_unit(&mut self) -> io::Result<String> {
        self.w.next_unit(READ_TIMEOUT).await
    }

    async fn send(&mut self, s: &str) -> io::Result<()> {
        self.w.send(s).await
    }

    async fn serve(&mut self, attack: Attack) -> io::Result<()> {
        // Stream header; features (or the attack on the features).
        let h = self.next_unit().await?;
        if !h.contains("stream") {
            return Err(io::Error::other("expected a stream header"));
        }
        if let Attack::DeepFeatures { depth } = attack {
            self.shared.stats.attacks.fetch_add(1, Ordering::SeqCst);
            let mut s = format!("{HEADER}<stream:features>");
            s.push_str(&"<x xmlns='urn:hostile'>".repeat(depth));
            self.send(&s).await?;
            self.send(&"</x>".repeat(depth)).await?;
            return self.drain().await;
        }
        self.send(&format!(
            "{HEADER}<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
             <mechanism>PLAIN</mechanism></mechanisms></stream:features>"
        ))
        .await?;
        let auth = self.next_unit().await?;
        if !auth.starts_with("<auth") {
            return Err(io::Error::other("expected <auth/>"));
        }
        self.send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
            .await?;
        let h = self.next_unit().await?;
        if !h.contains("stream") {
            return Err(io::Error::other("expected a restarted stream"));
        }
        self.send(&format!(
            "{HEADER}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
        ))
        .await?;
        // Bind.
        loop {
            let u = self.next_unit().await?;
            if u.starts_with("<iq") && u.contains("urn:ietf:params:xml:ns:xmpp-bind") {
                let id = attr(&u, "id").unwrap_or_default();
                self.send(&format!(
                    "<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
                     <jid>5-7@localhost/hostile</jid></bind></iq>"
                ))
                .await?;
                self.shared.stats.binds.fetch_add(1, Ordering::SeqCst);
                break;
            }
            self.answer(&u).await?;
        }
        if attack != Attack::Behave {
            self.shared.stats.attacks.fetch_add(1, Ordering::SeqCst);
        }
        match attack {
            Attack::Behave | Attack::DeepFeatures { .. } => {
                self.send(&message(ALIVE_BODY)).await?;
            }
            Attack::DeepNesting { depth } => {
                let mut s = String::from(
                    "<message type='chat' id='deep' from='6-7@localhost/hostile'><body>deep</body>",
                );
                s.push_str(&"<x xmlns='urn:hostile'>".repeat(depth));
                s.push_str(&"</x>".repeat(depth));
                s.push_str("</message>");
                self.send(&s).await?;
            }
            Attack::HugeStanza { bytes } => {
                self.send("<message type='chat' id='huge' from='6-7@localhost/hostile'><body>")
                    .await?;
                let chunk = "x".repeat(64 * 1024);
                let mut left = bytes;
                while left > 0 {
                    let n = left.min(chunk.len());
                    self.w.io.write_all(&chunk.as_bytes()[..n]).await?;
                    left -= n;
                }
                self.send("</body></message>").await?;
            }
            Attack::Malformed => {
                self.send(&message("before the garbage")).await?;
                self.send("<message><body>x</bodyy></message><<<&&&>>>")
                    .await?;
            }
            Attack::Flood { count } => {
                let mut batch = String::new();
                for i in 0..count {
                    batch.push_str(&message(&format!("flood {i}")));
                    if batch.len() > 32 * 1024 {
                        self.w.io.write_all(batch.as_bytes()).await?;
                        batch.clear();
                    }
                }
                batch.push_str(&message(ALIVE_BODY));
                self.send(&batch).await?;
            }
        }
        self.drain().await
    }

    /// Keeps answering iqs until the client leaves.
    async fn drain(&mut self) -> io::Result<()> {
        loop {
            let u = self.next_unit().await?;
            if u.starts_with("</") {
                let _ = self.send("</stream:stream>").await;
                return Ok(());
            }
            self.answer(&u).await?;
        }
    }

    /// A `result` for a `get`/`set` iq; nothing for anything else.
    async fn answer(&mut self, u: &str) -> io::Result<()> {
        if !u.starts_with("<iq") {
            return Ok(());
        }
        let ty = attr(u, "type").unwrap_or_default();
        if ty != "get" && ty != "set" {
            return Ok(());
        }
        let id = attr(u, "id").unwrap_or_default();
        self.send(&format!("<iq type='result' id='{id}'/>")).await
    }
}

/// An ordinary chat message from [`SENDER`] in dialog `d1`.
fn message(body: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!(
        "<message type='chat' id='{n:024x}' from='{SENDER}' to='5-7@localhost/hostile'>\
         <body>{body}</body><extraParams xmlns='jabber:client'><dialog_id>d1</dialog_id>\
         <save_to_history>1</save_to_history></extraParams></message>"
    )
}

/// The value of attribute `name` on the first tag of `unit`.
fn attr(unit: &str, name: &str) -> Option<String> {
    let tag_end = unit.find('>').unwrap_or(unit.len());
    let tag = &unit[..tag_end];
    for q in ['\'', '"'] {
        let pat = format!(" {name}={q}");
        if let Some(at) = tag.find(&pat) {
            let rest = &tag[at + pat.len()..];
            return rest.find(q).map(|e| rest[..e].to_owned());
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn attr_reads_either_quote() {
        assert_eq!(attr("<iq type='set' id=\"a1\">", "id").unwrap(), "a1");
        assert_eq!(attr("<iq type='set' id='b'/>", "type").unwrap(), "set");
        assert_eq!(attr("<iq><x id='no'/></iq>", "id"), None);
    }
}
