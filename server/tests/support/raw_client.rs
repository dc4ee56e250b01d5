// A raw XMPP test client for cubeserver (tokio-xmpp's xmlstream initiator + rustls trusting the
// ready line's CA) and the cubeserver process it talks to. Textually included (`include!`) by
// the XMPP integration tests, which allow `dead_code` for the parts they do not use.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use minidom::Element;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader, BufStream};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_xmpp::parsers::sasl::{self, Mechanism};
use tokio_xmpp::parsers::starttls;
use tokio_xmpp::xmlstream::{
    initiate_stream, ReadError, StreamHeader, Timeouts, XmlStream, XmppStreamElement,
};

const APP: u64 = 7;
const PASSWORD: &str = "correct-horse-9";
const NS: &str = "jabber:client";
const WAIT: Duration = Duration::from_secs(5);

struct Server {
    child: Child,
    api: String,
    domain: String,
    xmpp_port: u16,
    xmpp_tls_port: u16,
    tls: Arc<ClientConfig>,
    http: reqwest::Client,
}

struct User {
    id: u64,
    token: String,
}

async fn start() -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cubeserver"))
        .args([
            "--app",
            &format!("{APP}:key-7:"),
            "--chat-domain",
            "chat.test",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("ready line in time")
        .unwrap()
        .unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap();
    let ca = std::fs::read(ready["ca_cert"].as_str().unwrap()).unwrap();
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Server {
        child,
        api: ready["api_url"].as_str().unwrap().to_owned(),
        domain: ready["chat_domain"].as_str().unwrap().to_owned(),
        xmpp_port: u16::try_from(ready["xmpp_port"].as_u64().unwrap()).unwrap(),
        xmpp_tls_port: u16::try_from(ready["xmpp_tls_port"].as_u64().unwrap()).unwrap(),
        tls: Arc::new(tls),
        http: reqwest::Client::new(),
    }
}

impl Server {
    /// Signs up (the session endpoint auto-creates unknown logins) and returns id + token.
    async fn user(&self, login: &str) -> User {
        let r: Value = self
            .http
            .post(format!("{}/session", self.api))
            .json(&json!({"application_id": APP, "auth_key": "key-7",
                "user": {"login": login, "password": PASSWORD}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        User {
            id: r["session"]["user_id"].as_u64().unwrap(),
            token: r["session"]["token"].as_str().unwrap().to_owned(),
        }
    }

    async fn rest(&self, u: &User, method: reqwest::Method, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.api))
            .header("CB-Token", &u.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn history(&self, u: &User, dialog: &str) -> Vec<Value> {
        let v = self
            .rest(
                u,
                reqwest::Method::GET,
                &format!("/chat/Message?chat_dialog_id={dialog}&mark_as_read=0"),
                json!(null),
            )
            .await;
        v["items"].as_array().unwrap().clone()
    }

    /// A group dialog of `owner` with `others`: `(dialog id, room JID)`.
    async fn group(&self, owner: &User, others: &[&User]) -> (String, String) {
        let ids: Vec<String> = others.iter().map(|u| u.id.to_string()).collect();
        let d = self
            .rest(
                owner,
                reqwest::Method::POST,
                "/chat/Dialog",
                json!({"type": 2, "name": "g", "occupants_ids": ids.join(",")}),
            )
            .await;
        (
            d["_id"].as_str().unwrap().to_owned(),
            d["xmpp_room_jid"].as_str().unwrap().to_owned(),
        )
    }

    fn jid(&self, u: &User) -> String {
        format!("{}-{APP}@{}", u.id, self.domain)
    }

    async fn tls_wrap(&self, tcp: TcpStream) -> TlsStream<TcpStream> {
        TlsConnector::from(self.tls.clone())
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .unwrap()
    }

    fn header(&self) -> StreamHeader<'static> {
        StreamHeader {
            to: Some(self.domain.clone().into()),
            from: None,
            id: None,
        }
    }

    /// Opens a TLS stream (STARTTLS or direct) and authenticates with SASL PLAIN.
    /// `Err(condition)` on a SASL failure.
    async fn login(
        &self,
        starttls: bool,
        authzid: &str,
        u: &User,
        secret: &str,
    ) -> Result<Client, String> {
        let tls = if starttls {
            let tcp = TcpStream::connect(("127.0.0.1", self.xmpp_port))
                .await
                .unwrap();
            let (features, mut xs) =
                initiate_stream(BufStream::new(tcp), NS, self.header(), Timeouts::tight())
                    .await
                    .unwrap()
                    .recv_features::<XmppStreamElement>()
                    .await
                    .unwrap();
            assert!(features.can_starttls());
            // A loopback peer (every test client) may also authenticate before TLS.
            assert!(features.starttls.as_ref().is_some_and(|s| !s.required));
            assert!(features.sasl_mechanisms.contains("PLAIN"));
            xs.send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
                starttls::Request,
            )))
            .await
            .unwrap();
            match xs.next().await {
                Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => {}
                other => panic!("no proceed: {other:?}"),
            }
            self.tls_wrap(xs.into_inner().into_inner()).await
        } else {
            let tcp = TcpStream::connect(("127.0.0.1", self.xmpp_tls_port))
                .await
                .unwrap();
            self.tls_wrap(tcp).await
        };
        let (features, mut xs) =
            initiate_stream(BufStream::new(tls), NS, self.header(), Timeouts::tight())
                .await
                .unwrap()
                .recv_features::<XmppStreamElement>()
                .await
                .unwrap();
        assert!(features.sasl_mechanisms.contains("PLAIN"));
        let data = format!("{authzid}\0{}-{APP}\0{secret}", u.id).into_bytes();
        xs.send(&XmppStreamElement::Sasl(sasl::Nonza::Auth(sasl::Auth {
            mechanism: Mechanism::Plain,
            data,
        })))
        .await
        .unwrap();
        match xs.next().await {
            Some(Ok(XmppStreamElement::Sasl(sasl::Nonza::Success(_)))) => {}
            Some(Ok(XmppStreamElement::Sasl(sasl::Nonza::Failure(f)))) => {
                return Err(format!("{:?}", f.defined_condition))
            }
            other => panic!("unexpected SASL answer {other:?}"),
        }
        let (features, xs) = xs
            .initiate_reset()
            .send_header(self.header())
            .await
            .unwrap()
            .recv_features::<Element>()
            .await
            .unwrap();
        assert!(features.can_bind());
        assert!(features.stream_management.is_some());
        Ok(Client {
            xs,
            jid: String::new(),
            h: 0,
            counting: false,
            auto_ack: true,
        })
    }

    /// Logs in over direct TLS with the password, binds, enables carbons, sends presence.
    async fn online(&self, u: &User) -> Client {
        let mut c = self.login(false, "", u, PASSWORD).await.unwrap();
        c.bind(None).await;
        c.iq_set("<enable xmlns='urn:xmpp:carbons:2'/>").await;
        c.send("<presence xmlns='jabber:client'/>").await;
        c
    }
}

type Stream = XmlStream<BufStream<TlsStream<TcpStream>>, Element>;

struct Client {
    xs: Stream,
    jid: String,
    /// Stanzas received since SM was enabled.
    h: u32,
    counting: bool,
    /// Answer the server's `<r/>` automatically.
    auto_ack: bool,
}

fn parse(xml: &str) -> Element {
    xml.parse().unwrap_or_else(|e| panic!("{e}: {xml}"))
}

fn is_stanza(e: &Element) -> bool {
    matches!(e.name(), "message" | "presence" | "iq")
}

fn child<'a>(e: &'a Element, name: &str) -> Option<&'a Element> {
    e.children().find(|c| c.name() == name)
}

fn extra(e: &Element, key: &str) -> Option<String> {
    child(child(e, "extraParams")?, key).map(|c| c.text())
}

impl Client {
    /// A fresh ObjectId, unique across the test process like real ones (cubeserver drops a
    /// sender's repeated id as a resend, so two clients of one user must not share ids).
    fn next_id(&self) -> String {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        format!("{:08x}{:010x}{:06x}", 0x6500_0000u32, n, n)
    }

    async fn send(&mut self, xml: &str) {
        self.xs.send(&parse(xml)).await.unwrap();
    }

    /// The next element, answering `<r/>` when `auto_ack`; `None` after `wait` of silence
    /// or at the end of the stream.
    async fn next(&mut self, wait: Duration) -> Option<Element> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let item = tokio::time::timeout_at(deadline, self.xs.next())
                .await
                .ok()??;
            let el = match item {
                Ok(el) => el,
                Err(ReadError::SoftTimeout | ReadError::ParseError(_)) => continue,
                Err(_) => return None,
            };
            if is_stanza(&el) && self.counting {
                self.h += 1;
            }
            if el.name() == "r" && el.ns() == "urn:xmpp:sm:3" {
                if self.auto_ack {
                    let a = format!("<a xmlns='urn:xmpp:sm:3' h='{}'/>", self.h);
                    self.send(&a).await;
                }
                continue;
            }
            return Some(el);
        }
    }

    /// Reads until `pred` matches (skipping others); panics after [`WAIT`].
    async fn expect(&mut self, what: &str, pred: impl Fn(&Element) -> bool) -> Element {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(e) if pred(&e) => return e,
                Some(_) => {}
                None => panic!("{} did not get {what}", self.jid),
            }
        }
    }

    /// The next `n` messages with a body (others skipped), then checks that no further
    /// message with a body arrives for a short while.
    async fn bodies(&mut self, n: usize) -> Vec<Element> {
        let mut out = Vec::new();
        while out.len() < n {
            out.push(
                self.expect("a message with a body", |e| body_of(e).is_some())
                    .await,
            );
        }
        let extra: Vec<String> = self
            .drain(Duration::from_millis(400))
            .await
            .iter()
            .filter_map(body_of)
            .collect();
        assert!(extra.is_empty(), "unexpected extra messages {extra:?}");
        out
    }

    /// Everything that arrives within `wait`.
    async fn drain(&mut self, wait: Duration) -> Vec<Element> {
        let mut out = Vec::new();
        while let Some(e) = self.next(wait).await {
            out.push(e);
        }
        out
    }

    async fn bind(&mut self, resource: Option<&str>) -> String {
        let res = resource
            .map(|r| format!("<resource>{r}</resource>"))
            .unwrap_or_default();
        self.send(&format!(
            "<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{res}</bind></iq>"
        ))
        .await;
        let r = self
            .expect("bind result", |e| e.attr("id") == Some("bind1"))
            .await;
        assert_eq!(r.attr("type"), Some("result"), "{}", String::from(&r));
        self.jid = r
            .children()
            .next()
            .unwrap()
            .children()
            .next()
            .unwrap()
            .text();
        self.jid.clone()
    }

    async fn iq_set(&mut self, payload: &str) -> Element {
        let id = format!("iq{}", self.next_id());
        self.send(&format!(
            "<iq xmlns='jabber:client' type='set' id='{id}'>{payload}</iq>"
        ))
        .await;
        self.expect("iq answer", |e| e.attr("id") == Some(id.as_str()))
            .await
    }

    async fn enable_sm(&mut self) -> String {
        self.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
            .await;
        let e = self.expect("enabled", |e| e.name() == "enabled").await;
        assert_eq!(e.attr("resume"), Some("true"));
        self.counting = true;
        self.h = 0;
        e.attr("id").unwrap().to_owned()
    }

    /// Sends a 1-1 chat message; returns its id.
    async fn chat(&mut self, to: &str, body: &str, extra: &str) -> String {
        let id = self.next_id();
        self.message("chat", to, &id, body, extra).await;
        id
    }

    /// Sends a message of `kind` (`chat`, `groupchat`) with the given id, e.g. a resend.
    async fn message(&mut self, kind: &str, to: &str, id: &str, body: &str, extra: &str) {
        self.send(&format!(
            "<message xmlns='jabber:client' type='{kind}' to='{to}' id='{id}'><body>{body}</body><extraParams xmlns='jabber:client'>{extra}</extraParams></message>"
        ))
        .await;
    }

    /// Closes the stream cleanly.
    async fn close(mut self) {
        let _ = tokio::time::timeout(WAIT, self.xs.shutdown()).await;
        let _ = self.drain(Duration::from_millis(300)).await;
    }
}

fn body_of(e: &Element) -> Option<String> {
    child(e, "body").map(|b| b.text())
}

fn is_chat_with(body: &'static str) -> impl Fn(&Element) -> bool {
    move |e| e.name() == "message" && body_of(e).as_deref() == Some(body)
}
