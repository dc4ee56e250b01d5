//! One client connection: TLS (STARTTLS or direct), SASL PLAIN, resource binding, then the
//! bound session with stream management (XEP-0198) until the stream ends.
//!
//! On the STARTTLS listener a **loopback** peer is also offered PLAIN before TLS (with
//! `<starttls/>` optional): the JS SDK in Node with only `CUBE_TCP_ENABLE` set has no
//! STARTTLS step and would otherwise fail with "No compatible mechanism available" (as it
//! accepts plain http to loopback). Any other peer must upgrade first: only a required
//! `<starttls/>` is offered, and an `<auth/>` before TLS ends the connection.
//!
//! Everything a client sends goes through [`GuardedIo`] before the XML parser: a stanza
//! nested deeper than [`xmlguard::MAX_DEPTH`] or longer than [`xmlguard::MAX_STANZA_BYTES`]
//! ends that connection with a `policy-violation` stream error (its session is ended, not
//! parked), instead of overflowing the stack of the whole server or holding the stanza.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use minidom::Element;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, BufStream, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_xmpp::parsers::bind::BindFeature;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::sasl::{self, DefinedCondition as SaslCondition, Mechanism};
use tokio_xmpp::parsers::sm::StreamManagement;
use tokio_xmpp::parsers::starttls::{self, StartTls};
use tokio_xmpp::parsers::stream_features::StreamFeatures;
use tokio_xmpp::xmlstream::{
    accept_stream, ReadError, StreamHeader, Timeouts, XmlStream, XmppStreamElement,
};

use cubechat_wire::xmlguard::{self, GuardedIo, Limits};

use super::hub::{Hub, SessionCore, Sm, UserKey};
use super::router::Origin;
use super::util::{child, elem, NS_BIND, NS_SESSION, NS_SM};
use crate::db::{self, sessions as session_db, users as user_db};
use crate::password;

/// Time allowed from TCP accept to a bound stream.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// SASL attempts per connection.
const MAX_AUTH_ATTEMPTS: usize = 3;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    StartTls,
    DirectTls,
}

fn timeouts() -> Timeouts {
    Timeouts {
        read_timeout: Duration::from_secs(90),
        response_timeout: Duration::from_secs(30),
    }
}

fn header(hub: &Hub) -> StreamHeader<'static> {
    StreamHeader {
        from: Some(hub.domain.clone().into()),
        to: None,
        id: Some(db::random_token().into()),
    }
}

/// Serves one TCP connection until it ends or the server shuts down (a bound session then
/// closes its stream with `</stream:stream>`).
pub async fn serve(tcp: TcpStream, mode: Mode, tls: TlsAcceptor, hub: Arc<Hub>) {
    let stop = hub.shutdown_signal();
    let negotiated = tokio::select! {
        r = negotiate(tcp, mode, tls, &hub) => r,
        () = stop => return,
    };
    match negotiated {
        Ok((xs, key)) => Session::new(hub, key).run(xs).await,
        Err(e) => tracing::debug!(error = %e, "xmpp negotiation failed"),
    }
}

/// The byte stream under the XML layer: TLS, or plain TCP for a loopback peer that
/// authenticated without STARTTLS.
#[derive(Debug)]
pub enum Link {
    /// TLS (direct, or after STARTTLS).
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Plain TCP: before STARTTLS, or for good on a loopback connection.
    Plain(TcpStream),
}

impl AsyncRead for Link {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Link::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
            Link::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Link {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            Link::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
            Link::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Link::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
            Link::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Link::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
            Link::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

type ClientIo = GuardedIo<BufStream<super::strip::StripEmptyMechanisms<Link>>>;

type Bound = (XmlStream<ClientIo, Element>, UserKey);

fn wrap(link: Link) -> ClientIo {
    GuardedIo::new(
        BufStream::new(super::strip::StripEmptyMechanisms::new(link)),
        Limits::default(),
    )
}

/// TLS (direct, or after STARTTLS) and SASL, within [`HANDSHAKE_TIMEOUT`]; SASL without TLS
/// for a loopback peer on the STARTTLS listener that asks for it.
async fn negotiate(
    tcp: TcpStream,
    mode: Mode,
    tls: TlsAcceptor,
    hub: &Hub,
) -> Result<Bound, Error> {
    let steps = async {
        let tcp = match mode {
            Mode::DirectTls => tcp,
            Mode::StartTls => {
                let loopback = tcp.peer_addr().is_ok_and(|a| is_loopback_peer(&a));
                match starttls(tcp, hub, loopback).await? {
                    Opening::Upgrade(tcp) => tcp,
                    Opening::Plain(xs, auth) => {
                        tracing::debug!("loopback client authenticating without TLS");
                        return sasl(*xs, hub, Some(auth)).await;
                    }
                }
            }
        };
        let io = tls.accept(tcp).await?;
        authenticate(wrap(Link::Tls(Box::new(io))), hub).await
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, steps).await?
}

/// Whether a peer may authenticate without TLS: loopback addresses only (IPv4-mapped IPv6
/// included), never a LAN or public address.
pub fn is_loopback_peer(addr: &std::net::SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// How a plain stream went on: upgraded to TLS, or (loopback only) straight to SASL.
enum Opening {
    Upgrade(TcpStream),
    Plain(Box<XmlStream<ClientIo, XmppStreamElement>>, sasl::Auth),
}

/// Plain stream: `<starttls/>` is offered, and required unless the peer is on loopback,
/// which is also offered PLAIN.
async fn starttls(tcp: TcpStream, hub: &Hub, loopback: bool) -> Result<Opening, Error> {
    let accepted = accept_stream(wrap(Link::Plain(tcp)), ns::JABBER_CLIENT, timeouts()).await?;
    let features = StreamFeatures {
        starttls: Some(StartTls {
            required: !loopback,
        }),
        sasl_mechanisms: if loopback {
            ["PLAIN".to_owned()].into()
        } else {
            Default::default()
        },
        ..Default::default()
    };
    let mut xs: XmlStream<_, XmppStreamElement> = accepted
        .send_header(header(hub))
        .await?
        .send_features(&features)
        .await?;
    match xs.next().await {
        Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Request(_)))) => {}
        Some(Ok(XmppStreamElement::Sasl(sasl::Nonza::Auth(auth)))) if loopback => {
            return Ok(Opening::Plain(Box::new(xs), auth));
        }
        other => {
            let _ = xs.shutdown().await;
            return Err(format!("expected <starttls/>, got {other:?}").into());
        }
    }
    xs.send(&XmppStreamElement::Starttls(starttls::Nonza::Proceed(
        starttls::Proceed,
    )))
    .await?;
    match xs.into_inner().into_inner().into_inner().into_inner() {
        Link::Plain(tcp) => Ok(Opening::Upgrade(tcp)),
        Link::Tls(_) => Err("STARTTLS on a TLS stream".into()),
    }
}

/// SASL PLAIN, then the restarted stream offering bind and SM.
async fn authenticate<Io>(io: Io, hub: &Hub) -> Result<(XmlStream<Io, Element>, UserKey), Error>
where
    Io: AsyncBufRead + AsyncWrite + Unpin + Send,
{
    let accepted = accept_stream(io, ns::JABBER_CLIENT, timeouts()).await?;
    let features = StreamFeatures {
        sasl_mechanisms: ["PLAIN".to_owned()].into(),
        ..Default::default()
    };
    let xs: XmlStream<Io, XmppStreamElement> = accepted
        .send_header(header(hub))
        .await?
        .send_features(&features)
        .await?;
    sasl(xs, hub, None).await
}

/// The SASL exchange on a stream whose features offered PLAIN (`first`: an `<auth/>` already
/// read), then the restarted stream offering bind and SM.
async fn sasl<Io>(
    mut xs: XmlStream<Io, XmppStreamElement>,
    hub: &Hub,
    mut first: Option<sasl::Auth>,
) -> Result<(XmlStream<Io, Element>, UserKey), Error>
where
    Io: AsyncBufRead + AsyncWrite + Unpin + Send,
{
    let mut attempts = 0;
    let key = loop {
        let next = match first.take() {
            Some(a) => Some(Ok(XmppStreamElement::Sasl(sasl::Nonza::Auth(a)))),
            None => xs.next().await,
        };
        let auth = match next {
            Some(Ok(XmppStreamElement::Sasl(sasl::Nonza::Auth(a)))) => a,
            Some(Err(ReadError::SoftTimeout)) => continue,
            other => {
                let _ = xs.shutdown().await;
                return Err(format!("expected <auth/>, got {other:?}").into());
            }
        };
        let condition = if auth.mechanism == Mechanism::Plain {
            match check_plain(hub, &auth.data) {
                Some(key) => break key,
                None => SaslCondition::NotAuthorized,
            }
        } else {
            SaslCondition::InvalidMechanism
        };
        xs.send(&XmppStreamElement::Sasl(sasl::Nonza::Failure(
            sasl::Failure {
                defined_condition: condition,
                texts: BTreeMap::new(),
            },
        )))
        .await?;
        attempts += 1;
        if attempts >= MAX_AUTH_ATTEMPTS {
            let _ = xs.shutdown().await;
            return Err("too many failed authentications".into());
        }
    };
    let accepted = xs
        .accept_reset(&XmppStreamElement::Sasl(sasl::Nonza::Success(
            sasl::Success { data: vec![] },
        )))
        .await?;
    let features = StreamFeatures {
        bind: Some(BindFeature { required: true }),
        stream_management: Some(StreamManagement { optional: false }),
        ..Default::default()
    };
    let xs = accepted
        .send_header(header(hub))
        .await?
        .send_features(&features)
        .await?;
    Ok((xs, key))
}

/// `[authzid] \0 {userId}-{appId} \0 password-or-token`; the authzid may be empty or the
/// bare JID.
pub fn check_plain(hub: &Hub, data: &[u8]) -> Option<UserKey> {
    let parts: Vec<&[u8]> = data.split(|b| *b == 0).collect();
    let [authzid, authcid, secret] = parts.as_slice() else {
        return None;
    };
    let (authzid, authcid, secret) = (
        std::str::from_utf8(authzid).ok()?,
        std::str::from_utf8(authcid).ok()?,
        std::str::from_utf8(secret).ok()?,
    );
    let (uid, app) = authcid.split_once('-')?;
    let (uid, app): (u64, u64) = (uid.parse().ok()?, app.parse().ok()?);
    if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(&hub.user_jid((app, uid))) {
        return None;
    }
    if secret.is_empty() {
        return None;
    }
    let now = db::now();
    let ok = hub
        .db
        .with(|c| {
            if let Some(s) = session_db::find_live(c, secret, now)? {
                if s.user_id == uid && s.app_id == app {
                    return Ok(true);
                }
            }
            Ok(user_db::find(c, app, uid)?
                .and_then(|u| u.password_hash)
                .is_some_and(|h| password::verify(secret, &h)))
        })
        .unwrap_or(false);
    ok.then_some((app, uid))
}

/// What woke the session loop.
enum Event {
    In(Option<Result<Element, ReadError>>),
    Out(Element),
    Stop,
    Takeover,
}

struct Session {
    hub: Arc<Hub>,
    key: UserKey,
    core: Option<SessionCore>,
    takeover: Option<Arc<Notify>>,
}

async fn recv(core: &mut Option<SessionCore>) -> Option<Element> {
    match core {
        Some(c) => c.rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn notified(n: &Option<Arc<Notify>>) {
    match n {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

/// `<stream:error><policy-violation/></stream:error>` (RFC 6120 §4.9.3.14).
fn policy_violation() -> Element {
    let mut e = elem("error", "http://etherx.jabber.org/streams", &[]);
    e.append_child(elem(
        "policy-violation",
        "urn:ietf:params:xml:ns:xmpp-streams",
        &[],
    ));
    e
}

fn sm_nonza(name: &str, attrs: &[(&str, &str)]) -> Element {
    elem(name, NS_SM, attrs)
}

fn is_stanza(el: &Element) -> bool {
    el.ns() == ns::JABBER_CLIENT && matches!(el.name(), "message" | "presence" | "iq")
}

impl Session {
    fn new(hub: Arc<Hub>, key: UserKey) -> Self {
        Self {
            hub,
            key,
            core: None,
            takeover: None,
        }
    }

    async fn run<Io>(mut self, mut xs: XmlStream<Io, Element>)
    where
        Io: AsyncBufRead + AsyncWrite + Unpin + Send,
    {
        let stop = self.hub.shutdown_signal();
        tokio::pin!(stop);
        loop {
            let event = tokio::select! {
                item = xs.next() => Event::In(item),
                Some(out) = recv(&mut self.core) => Event::Out(out),
                () = &mut stop => Event::Stop,
                () = notified(&self.takeover) => Event::Takeover,
            };
            let keep_going = match event {
                Event::In(Some(Ok(el))) => self.inbound(&mut xs, el).await,
                Event::In(Some(Err(ReadError::SoftTimeout))) => self.idle(&mut xs).await,
                Event::In(Some(Err(ReadError::ParseError(e)))) => {
                    tracing::debug!(error = %e, "unparsable element ignored");
                    Ok(true)
                }
                Event::In(Some(Err(ReadError::StreamFooterReceived))) => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), xs.shutdown()).await;
                    self.end();
                    return;
                }
                Event::In(Some(Err(ReadError::HardError(e))))
                    if xmlguard::limit_error(&e).is_some() =>
                {
                    if let Some(limit) = xmlguard::limit_error(&e) {
                        tracing::warn!(user = self.key.1, error = %limit, "client broke the XML limits; closing its stream");
                    }
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        xs.send(&policy_violation()).await?;
                        xs.shutdown().await
                    })
                    .await;
                    self.end();
                    return;
                }
                Event::In(None | Some(Err(ReadError::HardError(_)))) | Event::Takeover => {
                    self.lost();
                    return;
                }
                Event::Out(el) => self.outbound(&mut xs, el).await,
                Event::Stop => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), xs.shutdown()).await;
                    self.end();
                    return;
                }
            };
            match keep_going {
                Ok(true) => {}
                Ok(false) => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), xs.shutdown()).await;
                    self.end();
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "xmpp write failed");
                    self.lost();
                    return;
                }
            }
        }
    }

    /// Clean end: the session is gone for good.
    fn end(&mut self) {
        if let Some(core) = self.core.take() {
            self.hub.end(core);
        }
    }

    /// Connection lost: park a resumable session, end any other.
    fn lost(&mut self) {
        if let Some(core) = self.core.take() {
            if core.sm.as_ref().is_some_and(|s| s.resumable) {
                self.hub.park(core);
            } else {
                self.hub.end(core);
            }
        }
    }

    async fn idle<Io>(&mut self, xs: &mut XmlStream<Io, Element>) -> io::Result<bool>
    where
        Io: AsyncBufRead + AsyncWrite + Unpin + Send,
    {
        match self.core.as_ref().map(|c| c.sm.is_some()) {
            Some(true) => xs.send(&sm_nonza("r", &[])).await?,
            Some(false) => {
                let ping = elem(
                    "iq",
                    ns::JABBER_CLIENT,
                    &[
                        ("type", "get"),
                        ("id", &format!("srv-ping-{}", db::object_id())),
                    ],
                );
                let mut ping = ping;
                ping.append_child(elem("ping", super::util::NS_PING, &[]));
                xs.send(&ping).await?;
            }
            None => {}
        }
        Ok(true)
    }

    async fn outbound<Io>(
        &mut self,
        xs: &mut XmlStream<Io, Element>,
        el: Element,
    ) -> io::Result<bool>
    where
        Io: AsyncBufRead + AsyncWrite + Unpin + Send,
    {
        let Some(core) = self.core.as_mut() else {
            return Ok(true);
        };
        let counted = match core.sm.as_mut() {
            Some(sm) => {
                sm.sent(&el);
                true
            }
            None => false,
        };
        xs.send(&el).await?;
        if counted && core.rx.is_empty() {
            xs.send(&sm_nonza("r", &[])).await?;
        }
        Ok(true)
    }

    async fn inbound<Io>(
        &mut self,
        xs: &mut XmlStream<Io, Element>,
        el: Element,
    ) -> io::Result<bool>
    where
        Io: AsyncBufRead + AsyncWrite + Unpin + Send,
    {
        if el.ns() == NS_SM {
            return self.sm(xs, el).await;
        }
        if !is_stanza(&el) {
            return Ok(true);
        }
        if let Some(sm) = self.core.as_mut().and_then(|c| c.sm.as_mut()) {
            sm.inbound = sm.inbound.wrapping_add(1);
        }
        let bind = el.name() == "iq"
            && el.attr("type") == Some("set")
            && el.get_child("bind", NS_BIND).is_some();
        if bind {
            if self.core.is_some() {
                let reply = bind_error(&el);
                return self.reply(xs, reply).await;
            }
            let requested = el
                .get_child("bind", NS_BIND)
                .and_then(|b| child(b, "resource"))
                .map(|r| r.text());
            let core = self.hub.bind(self.key, requested.as_deref());
            let full = self.hub.full_jid(self.key, &core.resource);
            let id = el.attr("id").unwrap_or_default();
            let mut result = elem("iq", ns::JABBER_CLIENT, &[("type", "result"), ("id", id)]);
            let mut b = elem("bind", NS_BIND, &[]);
            b.append_child(
                Element::builder("jid", NS_BIND)
                    .append(full.as_str())
                    .build(),
            );
            result.append_child(b);
            self.core = Some(core);
            xs.send(&result).await?;
            return Ok(true);
        }
        let Some(core) = self.core.as_ref() else {
            // Before bind only the session iq is acceptable.
            if el.name() == "iq" && el.get_child("session", NS_SESSION).is_some() {
                let id = el.attr("id").unwrap_or_default();
                xs.send(&elem(
                    "iq",
                    ns::JABBER_CLIENT,
                    &[("type", "result"), ("id", id)],
                ))
                .await?;
                return Ok(true);
            }
            return Ok(true);
        };
        let origin = Origin {
            key: self.key,
            resource: core.resource.clone(),
        };
        self.hub.route(&origin, el);
        Ok(true)
    }

    /// Sends a stanza reply through the session's queue (so SM counts it).
    async fn reply<Io>(&mut self, xs: &mut XmlStream<Io, Element>, el: Element) -> io::Result<bool>
    where
        Io: AsyncBufRead + AsyncWrite + Unpin + Send,
    {
        self.outbound(xs, el).await
    }

    async fn sm<Io>(&mut self, xs: &mut XmlStream<Io, Element>, el: Element) -> io::Result<bool>
    where
        Io: AsyncBufRead + AsyncWrite + Unpin + Send,
    {
        match el.name() {
            "enable" => {
                let Some(core) = self.core.as_mut().filter(|c| c.sm.is_none()) else {
                    let mut f = sm_nonza("failed", &[("h", "0")]);
                    f.append_child(Element::bare("unexpected-request", super::util::NS_STANZAS));
                    xs.send(&f).await?;
                    return Ok(true);
                };
                let resumable = matches!(el.attr("resume"), Some("true" | "1"));
                let id = db::random_token();
                core.sm = Some(Sm {
                    id: id.clone(),
                    resumable,
                    ..Sm::default()
                });
                let window = self.hub.resume_window().as_secs().to_string();
                let enabled = if resumable {
                    self.takeover = Some(self.hub.sm_live(&id));
                    sm_nonza(
                        "enabled",
                        &[("id", &id), ("resume", "true"), ("max", &window)],
                    )
                } else {
                    sm_nonza("enabled", &[("id", &id)])
                };
                xs.send(&enabled).await?;
            }
            "r" => {
                if let Some(sm) = self.core.as_ref().and_then(|c| c.sm.as_ref()) {
                    xs.send(&sm_nonza("a", &[("h", &sm.inbound.to_string())]))
                        .await?;
                }
            }
            "a" => {
                let h = el.attr("h").and_then(|h| h.parse().ok());
                if let (Some(sm), Some(h)) = (self.core.as_mut().and_then(|c| c.sm.as_mut()), h) {
                    sm.ack(h);
                }
            }
            "resume" => {
                let previd = el.attr("previd").unwrap_or_default().to_owned();
                let h: u32 = el.attr("h").and_then(|h| h.parse().ok()).unwrap_or(0);
                let resumed = if self.core.is_none() {
                    self.hub.resume(&previd, self.key).await
                } else {
                    None
                };
                let Some(mut core) = resumed else {
                    let mut f = sm_nonza("failed", &[("h", "0")]);
                    f.append_child(Element::bare("item-not-found", super::util::NS_STANZAS));
                    xs.send(&f).await?;
                    return Ok(true);
                };
                let Some(sm) = core.sm.as_mut() else {
                    self.hub.end(core);
                    return Ok(true);
                };
                sm.ack(h);
                let inbound = sm.inbound.to_string();
                xs.send(&sm_nonza(
                    "resumed",
                    &[("h", &inbound), ("previd", &previd)],
                ))
                .await?;
                self.takeover = Some(self.hub.sm_live(&previd));
                let resend: Vec<Element> = sm.unacked.iter().map(|(_, e)| e.clone()).collect();
                self.core = Some(core);
                for e in &resend {
                    xs.send(e).await?;
                }
                if !resend.is_empty() {
                    xs.send(&sm_nonza("r", &[])).await?;
                }
            }
            _ => {}
        }
        Ok(true)
    }
}

fn bind_error(req: &Element) -> Element {
    let id = req.attr("id").unwrap_or_default();
    let mut iq = elem("iq", ns::JABBER_CLIENT, &[("type", "error"), ("id", id)]);
    let mut err = elem(
        "error",
        ns::JABBER_CLIENT,
        &[("type", "cancel"), ("code", "405")],
    );
    err.append_child(Element::bare("not-allowed", super::util::NS_STANZAS));
    iq.append_child(err);
    iq
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::db::{sessions, users::UserRow, Db};

    #[test]
    fn only_loopback_peers_may_skip_tls() {
        for (addr, ok) in [
            ("127.0.0.1:5222", true),
            ("127.3.2.1:5222", true),
            ("[::1]:5222", true),
            ("[::ffff:127.0.0.1]:5222", true),
            ("10.0.0.5:5222", false),
            ("192.168.1.2:5222", false),
            ("0.0.0.0:5222", false),
            ("[::ffff:10.0.0.5]:5222", false),
            ("[2001:db8::1]:5222", false),
        ] {
            assert_eq!(is_loopback_peer(&addr.parse().unwrap()), ok, "{addr}");
        }
    }

    /// What a plain-TCP client is offered and what happens to an `<auth/>` before TLS, for a
    /// peer treated as loopback or not (the decision [`negotiate`] takes from the address).
    async fn plain_opening(loopback: bool) -> (String, Result<bool, String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let hub = Hub::new(Db::open(":memory:").unwrap(), "chat");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = async {
            let (tcp, _) = listener.accept().await.unwrap();
            match starttls(tcp, &hub, loopback).await {
                Ok(Opening::Plain(..)) => Ok(true),
                Ok(Opening::Upgrade(_)) => Ok(false),
                Err(e) => Err(e.to_string()),
            }
        };
        let client = async {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(
                b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
                  xmlns:stream='http://etherx.jabber.org/streams' to='chat' version='1.0'>",
            )
            .await
            .unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            for _ in 0..50 {
                let n = c.read(&mut buf).await.unwrap();
                seen.extend_from_slice(&buf[..n]);
                if n == 0 || seen.windows(18).any(|w| w == b"</stream:features>") {
                    break;
                }
            }
            c.write_all(
                b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>",
            )
            .await
            .unwrap();
            String::from_utf8_lossy(&seen).into_owned()
        };
        let (outcome, features) = tokio::time::timeout(Duration::from_secs(20), async {
            tokio::join!(server, client)
        })
        .await
        .unwrap();
        (features, outcome)
    }

    #[tokio::test]
    async fn plain_auth_before_tls_only_for_loopback() {
        let (features, outcome) = plain_opening(false).await;
        assert!(features.contains("<required"), "{features}");
        assert!(!features.contains("PLAIN"), "{features}");
        assert!(outcome.unwrap_err().contains("expected <starttls/>"));
        let (features, outcome) = plain_opening(true).await;
        assert!(!features.contains("<required"), "{features}");
        assert!(
            features.contains("<mechanism>PLAIN</mechanism>"),
            "{features}"
        );
        assert_eq!(outcome, Ok(true));
    }

    #[test]
    fn plain_accepts_password_or_live_token() {
        let db = Db::open(":memory:").unwrap();
        let hub = Hub::new(db.clone(), "chat");
        let (uid, token, other_token) = db
            .with(|c| {
                let u = user_db::insert(
                    c,
                    &UserRow {
                        app_id: 7,
                        login: Some("a".into()),
                        password_hash: Some(password::hash("secret-pw")),
                        ..UserRow::default()
                    },
                )?;
                let s = sessions::create(c, 7, u.id, db::now(), 60)?;
                let other = sessions::create(c, 7, 0, db::now(), 60)?;
                Ok((u.id, s.token, other.token))
            })
            .unwrap();
        let plain = |authzid: &str, authcid: String, secret: &str| {
            check_plain(&hub, format!("{authzid}\0{authcid}\0{secret}").as_bytes())
        };
        let me = format!("{uid}-7");
        assert_eq!(plain("", me.clone(), "secret-pw"), Some((7, uid)));
        assert_eq!(plain("", me.clone(), &token), Some((7, uid)));
        assert_eq!(
            plain(&format!("{uid}-7@chat"), me.clone(), &token),
            Some((7, uid))
        );
        assert_eq!(plain("", me.clone(), "wrong"), None);
        assert_eq!(plain("", me.clone(), ""), None);
        assert_eq!(plain("", me.clone(), &other_token), None, "another session");
        assert_eq!(
            plain("9-7@chat", me.clone(), &token),
            None,
            "authzid mismatch"
        );
        assert_eq!(
            plain("", format!("{uid}-8"), "secret-pw"),
            None,
            "other app"
        );
        assert_eq!(check_plain(&hub, b"no separators"), None);
        db.with(|c| sessions::expire_all(c, db::now())).unwrap();
        assert_eq!(plain("", me, &token), None, "expired token");
    }
}
