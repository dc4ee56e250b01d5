//! Transport and login: our own [`ServerConnector`] (explicit `host:port`, STARTTLS, direct
//! TLS, or plain TCP only when explicitly allowed), our rustls configuration (ring, webpki
//! roots plus extra CA PEM, or the insecure verifier), SASL PLAIN, and the [`Killable`]
//! transport wrapper that lets the engine force a reconnect.
//!
//! Every byte read from the server goes through [`GuardedIo`] first: a stanza nested deeper
//! than [`xmlguard::MAX_DEPTH`] or longer than [`xmlguard::MAX_STANZA_BYTES`] fails the read
//! before the XML tree builder sees it (which would otherwise overflow the stack or hold the
//! whole stanza), and the connection is dropped and re-established as after any other error.
//! The same wrapper is the raw protocol log (target `cubechat_core::xmpp::raw`, `trace`), with
//! SASL exchanges and message bodies redacted.

use std::collections::BTreeSet;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use futures_util::{SinkExt, StreamExt};
use sasl::common::{ChannelBinding, Credentials};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, AsyncWriteExt, BufStream, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{
    self,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{ring as ring_provider, CryptoProvider},
    pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime},
    DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_rustls::TlsConnector;
use tokio_xmpp::{
    connect::{AsyncReadAndWrite, ServerConnector},
    error::{AuthError, ProtocolError},
    jid::{BareJid, Jid},
    parsers::{ns, starttls},
    stanzastream::Connection,
    xmlstream::{
        initiate_stream, FallibleStreamElement, PendingFeaturesRecv, ReadError, StreamHeader,
        Timeouts, XmppStreamElement,
    },
};

use cubechat_wire::xmlguard::{self, Direction, GuardedIo, Limits};

use crate::error::Error;

/// Target of the raw (redacted) XMPP log.
const RAW_TARGET: &str = "cubechat_core::xmpp::raw";

/// Wraps a transport in the inbound XML limits and, when `trace` is on for
/// [`RAW_TARGET`], the redacting raw log.
fn guarded<T>(io: T) -> GuardedIo<T> {
    let io = GuardedIo::new(io, Limits::default());
    if !tracing::enabled!(target: RAW_TARGET, tracing::Level::TRACE) {
        return io;
    }
    io.with_log(Box::new(|dir, unit| {
        let dir = match dir {
            Direction::Recv => "RECV",
            Direction::Send => "SEND",
        };
        tracing::trace!(target: RAW_TARGET, "{dir} {}", xmlguard::redact(unit));
    }))
}

/// Boxed transport; exactly what `stanzastream::XmppStream` wants.
pub(crate) type BoxIo = Box<dyn AsyncReadAndWrite + Send + 'static>;

/// How the TCP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    StartTls,
    DirectTls,
    /// Only when `ChatEndpoint::insecure_plaintext` is set.
    InsecurePlain,
}

/// Dials the XMPP server. Cloned by the library; the kill slot is shared.
#[derive(Clone)]
pub(crate) struct Connector {
    addr: String,
    transport: Transport,
    tls: Arc<rustls::ClientConfig>,
    tls_name: ServerName<'static>,
    /// Kill flag of the most recent transport (reconnect-now).
    pub(crate) current: Arc<Mutex<Option<Arc<KillFlag>>>>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("addr", &self.addr)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl Connector {
    pub(crate) fn new(
        host: &str,
        port: u16,
        transport: Transport,
        domain: &str,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Self, Error> {
        let tls_name = ServerName::try_from(domain.to_owned())
            .map_err(|_| Error::InvalidInput("chat domain is not a valid DNS name".into()))?;
        let addr = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Self {
            addr,
            transport,
            tls,
            tls_name,
            current: Arc::default(),
        })
    }

    /// Aborts the current transport: reads and writes fail, the stream reports `Suspended`.
    pub(crate) fn kill_current(&self) {
        if let Some(f) = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            f.kill();
        }
    }

    async fn tls_wrap(&self, tcp: TcpStream) -> io::Result<BoxIo> {
        let tls = TlsConnector::from(self.tls.clone())
            .connect(self.tls_name.clone(), tcp)
            .await?;
        Ok(Box::new(BufStream::new(tls)))
    }
}

fn header(jid: &Jid) -> StreamHeader<'_> {
    StreamHeader {
        to: Some(jid.domain().as_str().into()),
        from: None,
        id: None,
    }
}

impl ServerConnector for Connector {
    type Stream = BoxIo;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<BoxIo>, ChannelBinding), tokio_xmpp::Error> {
        let tcp = TcpStream::connect(&self.addr).await?;
        tcp.set_nodelay(true)?;
        let io: BoxIo = match self.transport {
            Transport::DirectTls => self.tls_wrap(tcp).await?,
            Transport::InsecurePlain => Box::new(BufStream::new(tcp)),
            Transport::StartTls => {
                let pending =
                    initiate_stream(guarded(BufStream::new(tcp)), ns, header(jid), timeouts)
                        .await?;
                let (features, mut xs) = pending.recv_features::<XmppStreamElement>().await?;
                if !features.can_starttls() {
                    // Never fall back to plain text.
                    return Err(ProtocolError::NoTls.into());
                }
                xs.send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
                    starttls::Request,
                )))
                .await?;
                loop {
                    match xs.next().await {
                        Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => break,
                        Some(Err(ReadError::SoftTimeout)) => continue,
                        _ => return Err(io::Error::other("STARTTLS refused by the server").into()),
                    }
                }
                self.tls_wrap(xs.into_inner().into_inner().into_inner())
                    .await?
            }
        };
        let flag = Arc::new(KillFlag::default());
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(flag.clone());
        let io: BoxIo = Box::new(Killable {
            inner: guarded(io),
            flag,
        });
        Ok((
            initiate_stream(io, ns, header(jid), timeouts).await?,
            ChannelBinding::None,
        ))
    }
}

/// The rustls client config: ring, webpki roots plus `extra_ca_pem`, or no verification.
pub(crate) fn client_config(
    extra_ca_pem: Option<&str>,
    insecure: bool,
) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(ring_provider::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidInput(format!("TLS setup: {e}")))?;
    if insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = extra_ca_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert =
                cert.map_err(|e| Error::InvalidInput(format!("extra_ca_pem is not PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| Error::InvalidInput(format!("extra_ca_pem: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(Error::InvalidInput(
                "extra_ca_pem holds no certificate".into(),
            ));
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why a login attempt failed.
#[derive(Debug, Clone)]
pub(crate) enum LoginError {
    /// SASL failure: fatal, never retried on its own.
    Auth(String),
    /// The server broke the XML limits: retried with backoff, reported as `Protocol`.
    Protocol(String),
    /// Anything else (network, TLS, protocol): retried with backoff.
    Other(String),
}

impl From<LoginError> for Error {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::Auth(c) => Error::InvalidCredentials(format!("chat login rejected: {c}")),
            LoginError::Protocol(m) => Error::Protocol(m),
            LoginError::Other(m) => Error::Network(m),
        }
    }
}

fn describe(e: tokio_xmpp::Error) -> LoginError {
    if let Some(limit) = xmlguard::limit_error(&e) {
        return LoginError::Protocol(format!("chat server: {limit}"));
    }
    match e {
        tokio_xmpp::Error::Auth(AuthError::Fail(cond)) => LoginError::Auth(format!("{cond:?}")),
        tokio_xmpp::Error::Auth(AuthError::NoMechanism) => {
            LoginError::Other("server offers no SASL PLAIN".into())
        }
        tokio_xmpp::Error::Protocol(ProtocolError::NoTls) => LoginError::Other(
            "server offers no STARTTLS; refusing to authenticate in plain text".into(),
        ),
        other => {
            // Neither the password nor the token can be part of these messages.
            let mut msg = other.to_string();
            let mut src = std::error::Error::source(&other);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            LoginError::Other(msg)
        }
    }
}

/// Connect, secure, SASL PLAIN and stream restart. Returns an unbound [`Connection`]; the
/// `StanzaStream` binds and enables or resumes stream management itself.
pub(crate) async fn login(
    c: &Connector,
    jid: &BareJid,
    password: &str,
    t: Timeouts,
) -> Result<Connection, LoginError> {
    let identity: Jid = jid.clone().into();
    let (pending, cb) = c
        .connect(&identity, ns::JABBER_CLIENT, t)
        .await
        .map_err(describe)?;
    let (features, xs) = pending
        .recv_features::<FallibleStreamElement>()
        .await
        .map_err(|e| describe(e.into()))?;
    if !features.sasl_mechanisms.contains("PLAIN") {
        return Err(LoginError::Other("server offers no SASL PLAIN".into()));
    }
    let node = jid
        .node()
        .ok_or_else(|| LoginError::Other("JID without a local part".into()))?;
    let creds = Credentials::default()
        .with_username(node.as_str())
        .with_password(password)
        .with_channel_binding(cb);
    // Restricting the offered set forces PLAIN even if the server also offers SCRAM.
    let only_plain = BTreeSet::from(["PLAIN".to_owned()]);
    let initiating = tokio_xmpp::client_login(xs, only_plain, creds)
        .await
        .map_err(describe)?;
    let (features, stream) = initiating
        .send_header(header(&identity))
        .await
        .map_err(|e| describe(e.into()))?
        .recv_features()
        .await
        .map_err(|e| describe(e.into()))?;
    if !features.can_bind() {
        // StanzaStream would panic ("Non-negotiable stream") on such a stream.
        return Err(LoginError::Other(
            "server offers no resource binding".into(),
        ));
    }
    Ok(Connection {
        stream,
        features,
        identity,
    })
}

/// A connection that ends at once: handed to the `StanzaStream` worker when we stop while it
/// waits for a connection, because dropping its slot makes it panic. The worker reads the
/// stream footer, reports a disconnect and, its frontend being closed, exits.
pub(crate) async fn dummy_connection(jid: &BareJid) -> Option<Connection> {
    let (ours, mut theirs) = tokio::io::duplex(4096);
    let preamble = concat!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' ",
        "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' id='closing'>",
        "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
    );
    theirs.write_all(preamble.as_bytes()).await.ok()?;
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 1024];
        let _ = theirs.write_all(b"</stream:stream>").await;
        let _ = theirs.shutdown().await;
        while matches!(theirs.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let identity: Jid = jid.clone().into();
    let io: BoxIo = Box::new(BufStream::new(ours));
    let pending = initiate_stream(io, ns::JABBER_CLIENT, header(&identity), Timeouts::tight())
        .await
        .ok()?;
    let (features, stream) = pending.recv_features().await.ok()?;
    Some(Connection {
        stream,
        features,
        identity,
    })
}

// ------------------------------------------------------------------------- Killable

/// Shared switch that makes a [`Killable`] transport fail.
#[derive(Default, Debug)]
pub(crate) struct KillFlag {
    killed: AtomicBool,
    /// The XML-limit warning was logged for this transport.
    limit_logged: AtomicBool,
    waker: AtomicWaker,
}

impl KillFlag {
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.waker.wake();
    }
    fn check(&self, cx: &mut Context<'_>) -> io::Result<()> {
        self.waker.register(cx.waker());
        if self.killed.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "transport aborted by the engine",
            ))
        } else {
            Ok(())
        }
    }
}

/// A transport whose reads and writes fail once its [`KillFlag`] is set.
pub(crate) struct Killable<T> {
    inner: T,
    flag: Arc<KillFlag>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Killable<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.flag.check(cx)?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncBufRead + Unpin> AsyncBufRead for Killable<T> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        this.flag.check(cx)?;
        match Pin::new(&mut this.inner).poll_fill_buf(cx) {
            Poll::Ready(Err(e)) => {
                if let Some(limit) = xmlguard::limit_error(&e) {
                    if !this.flag.limit_logged.swap(true, Ordering::SeqCst) {
                        tracing::warn!(target: "cubechat_core::xmpp", error = %limit, "chat server broke the XML limits; dropping the connection");
                    }
                }
                Poll::Ready(Err(e))
            }
            other => other,
        }
    }
    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        Pin::new(&mut self.inner).consume(amt)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Killable<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.flag.check(cx)?;
        Pin::new(&mut self.inner).poll_write(cx, b)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flag.check(cx)?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
