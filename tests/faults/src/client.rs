//! A hostile XMPP client for cubeserver, speaking raw bytes: it logs in like any client
//! (direct TLS, SASL PLAIN, resource binding), then sends what no honest client would (deep
//! nesting, a huge stanza, malformed XML) and reports how the server ended the connection.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

use crate::xmpp::Wire;

/// How long to wait for each answer of the server during login.
const WAIT: Duration = Duration::from_secs(10);

/// How the server answered an attack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server closed the connection; `stream_error` is the condition of the
    /// `<stream:error>` it sent first, if any (e.g. `policy-violation`).
    Closed {
        /// The stream error condition, if one was sent.
        stream_error: Option<String>,
    },
    /// The connection was still open after the wait.
    StillOpen,
}

/// A logged-in, bound raw XMPP connection to a server.
pub struct HostileClient {
    w: Wire,
    /// The bound full JID.
    pub jid: String,
    /// Top-level units received since binding (stanzas the server sent).
    pub received: Vec<String>,
}

impl std::fmt::Debug for HostileClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostileClient")
            .field("jid", &self.jid)
            .finish_non_exhaustive()
    }
}

fn proto(what: &str, got: &str) -> io::Error {
    let got: String = got.chars().take(200).collect();
    io::Error::other(format!("expected {what}, got {got}"))
}

/// Direct TLS to `127.0.0.1:port`, then the opening stream header; returns after the
/// server's header and features.
async fn open(
    port: u16,
    server_name: &str,
    domain: &str,
    tls: Arc<ClientConfig>,
) -> io::Result<(Wire, String, String)> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|_| io::Error::other("bad server name"))?;
    let tls = TlsConnector::from(tls).connect(name, tcp).await?;
    let mut w = Wire::new(Box::new(tls));
    let header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>"
    );
    w.send(&header).await?;
    let _ = w.next_unit(WAIT).await?;
    let features = w.next_unit(WAIT).await?;
    Ok((w, header, features))
}

/// Without logging in: opens a stream (direct TLS), sends `payload` instead of `<auth/>` and
/// reports how the server ended the connection.
pub async fn before_login(
    port: u16,
    server_name: &str,
    domain: &str,
    tls: Arc<ClientConfig>,
    payload: &[u8],
    wait: Duration,
) -> io::Result<Outcome> {
    let (w, _, _) = open(port, server_name, domain, tls).await?;
    let mut c = HostileClient {
        w,
        jid: String::new(),
        received: Vec::new(),
    };
    match c.send_raw(payload).await {
        Err(e) if !is_hangup(&e) => return Err(e),
        _ => {}
    }
    Ok(c.outcome(wait).await)
}

impl HostileClient {
    /// Connects with direct TLS to `127.0.0.1:port` (certificate checked for `server_name`
    /// with `tls`), authenticates `authcid` (`{user}-{app}`) with SASL PLAIN and binds a
    /// resource of the server's choice.
    pub async fn connect(
        port: u16,
        server_name: &str,
        domain: &str,
        tls: Arc<ClientConfig>,
        authcid: &str,
        secret: &str,
    ) -> io::Result<Self> {
        let (mut w, header, features) = open(port, server_name, domain, tls).await?;
        if !features.contains("PLAIN") {
            return Err(proto("SASL PLAIN", &features));
        }
        let plain = base64(format!("\0{authcid}\0{secret}").as_bytes());
        w.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>"
        ))
        .await?;
        let answer = w.next_unit(WAIT).await?;
        if !answer.starts_with("<success") {
            return Err(proto("<success/>", &answer));
        }
        w.send(&header).await?;
        let _ = w.next_unit(WAIT).await?;
        let features = w.next_unit(WAIT).await?;
        if !features.contains("urn:ietf:params:xml:ns:xmpp-bind") {
            return Err(proto("bind feature", &features));
        }
        w.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
            .await?;
        let bound = w.next_unit(WAIT).await?;
        let jid = bound
            .split_once("<jid>")
            .and_then(|(_, r)| r.split_once("</jid>"))
            .map(|(j, _)| j.to_owned())
            .ok_or_else(|| proto("bind result", &bound))?;
        w.send("<presence/>").await?;
        Ok(Self {
            w,
            jid,
            received: Vec::new(),
        })
    }

    /// Sends raw bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.w.io.write_all(bytes).await?;
        self.w.io.flush().await
    }

    /// A chat message to `to` whose payload nests `depth` elements.
    pub async fn deep_message(&mut self, to: &str, depth: usize) -> io::Result<()> {
        let mut s = format!("<message type='chat' to='{to}' id='deep1'><body>deep</body>");
        s.push_str(&"<x xmlns='urn:hostile'>".repeat(depth));
        s.push_str(&"</x>".repeat(depth));
        s.push_str("</message>");
        // The server may close the stream at its depth limit while this is still being
        // written: a hang-up is the expected answer (`outcome` reads what it sent), like
        // `huge_message`.
        match self.send_raw(s.as_bytes()).await {
            Err(e) if !is_hangup(&e) => Err(e),
            _ => Ok(()),
        }
    }

    /// A chat message to `to` with a body of `bytes` bytes, written in pieces. Stops early
    /// (without error) if the server closes the connection meanwhile.
    pub async fn huge_message(&mut self, to: &str, bytes: usize) -> io::Result<()> {
        let head = format!("<message type='chat' to='{to}' id='huge1'><body>");
        self.send_raw(head.as_bytes()).await?;
        let chunk = vec![b'x'; 64 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            if let Err(e) = self.w.io.write_all(&chunk[..n]).await {
                return if is_hangup(&e) { Ok(()) } else { Err(e) };
            }
            left -= n;
        }
        match self.send_raw(b"</body></message>").await {
            Err(e) if !is_hangup(&e) => Err(e),
            _ => Ok(()),
        }
    }

    /// XML that is not well-formed.
    pub async fn malformed(&mut self) -> io::Result<()> {
        self.send_raw(b"<message><body>x</bodyy></message><<<&&&>>>")
            .await
    }

    /// Reads until the server closes the connection or `wait` passes, keeping what it sent.
    pub async fn outcome(&mut self, wait: Duration) -> Outcome {
        let deadline = tokio::time::Instant::now() + wait;
        let mut stream_error = None;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Outcome::StillOpen;
            }
            match self.w.next_unit(left).await {
                Ok(u) => {
                    if u.starts_with("<stream:error") {
                        stream_error = condition(&u);
                    }
                    if u.starts_with("</") {
                        return Outcome::Closed { stream_error };
                    }
                    self.received.push(u);
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Outcome::StillOpen,
                Err(_) => return Outcome::Closed { stream_error },
            }
        }
    }
}

fn is_hangup(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
    )
}

/// The first child element's name of a `<stream:error>` unit.
fn condition(unit: &str) -> Option<String> {
    let inner = &unit[unit.find('>')? + 1..];
    let start = inner.find('<')? + 1;
    let name: String = inner[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '/' && *c != '>')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_condition() {
        assert_eq!(base64(b"\0a\0b"), "AGEAYg==");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(
            condition("<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>")
                .as_deref(),
            Some("policy-violation")
        );
    }
}
