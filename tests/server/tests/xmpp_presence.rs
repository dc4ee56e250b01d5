//! cubeserver's privacy lists, last activity and its subscription, mobile mode with the push
//! outbox, and group presence (protocol reference §6.7–6.10), end to end: the binary as a
//! process, driven by the raw client of `xmpp_server.rs` (tokio-xmpp's xmlstream initiator +
//! rustls trusting the ready line's CA) and by REST.
#![allow(clippy::unwrap_used, dead_code)]

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
            assert!(features.sasl_mechanisms.is_empty(), "no auth before TLS");
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
            seq: std::cell::Cell::new(0),
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
    seq: std::cell::Cell<u32>,
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
    fn next_id(&self) -> String {
        let n = self.seq.get() + 1;
        self.seq.set(n);
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
        self.send(&format!(
            "<message xmlns='jabber:client' type='chat' to='{to}' id='{id}'><body>{body}</body><extraParams xmlns='jabber:client'>{extra}</extraParams></message>"
        ))
        .await;
        id
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

const NS_PRIVACY: &str = "jabber:iq:privacy";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_STREAMING: &str = "https://connectycube.com/protocol/status_streaming";

impl Server {
    /// `GET /_admin/pushes?user_id=N` → the recorded pushes' message ids.
    async fn pushes(&self, u: &User) -> Vec<Value> {
        let v: Value = self
            .http
            .get(format!("{}/_admin/pushes?user_id={}", self.api, u.id))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["items"].as_array().unwrap().clone()
    }

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
}

impl Client {
    async fn iq(&mut self, kind: &str, to: Option<&str>, payload: &str) -> Element {
        let id = format!("iq{}", self.next_id());
        let to = to.map(|t| format!(" to='{t}'")).unwrap_or_default();
        self.send(&format!(
            "<iq xmlns='jabber:client' type='{kind}' id='{id}'{to}>{payload}</iq>"
        ))
        .await;
        self.expect("iq answer", |e| e.attr("id") == Some(id.as_str()))
            .await
    }

    async fn privacy(&mut self, kind: &str, inner: &str) -> Element {
        self.iq(
            kind,
            None,
            &format!("<query xmlns='{NS_PRIVACY}'>{inner}</query>"),
        )
        .await
    }

    async fn groupchat(&mut self, room: &str, body: &str) -> String {
        let id = self.next_id();
        self.send(&format!(
            "<message xmlns='jabber:client' type='groupchat' to='{room}' id='{id}'><body>{body}</body></message>"
        ))
        .await;
        id
    }

    /// Nothing with a body (and no error) arrives for a short while.
    async fn quiet(&mut self) {
        let got = self.drain(Duration::from_millis(400)).await;
        assert!(
            got.iter()
                .all(|e| body_of(e).is_none() && e.attr("type") != Some("error")),
            "{} got {:?}",
            self.jid,
            got.iter().map(String::from).collect::<Vec<_>>()
        );
    }

    async fn join(&mut self, room: &str, uid: u64) -> Element {
        self.send(&format!(
            "<presence xmlns='jabber:client' id='j:join' to='{room}/{uid}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
        ))
        .await;
        self.expect("self presence", |e| {
            e.name() == "presence" && e.attr("id") == Some("j:join")
        })
        .await
    }
}

fn error_code(e: &Element) -> Option<String> {
    child(e, "error")
        .and_then(|e| e.attr("code"))
        .map(str::to_owned)
}

fn seconds(e: &Element) -> u64 {
    child(e, "query")
        .and_then(|q| q.attr("seconds"))
        .unwrap()
        .parse()
        .unwrap()
}

fn block_items(s: &Server, one_way: &User, two_way: &User) -> String {
    let four = "<message/><presence-in/><presence-out/><iq/>";
    format!(
        "<list name='blocked'>\
         <item type='jid' value='{}' action='deny' order='1'>{four}</item>\
         <item type='jid' value='muc.{}/{}' action='deny' order='2'>{four}</item>\
         <item type='jid' value='{}' action='deny' order='3'/>\
         <item type='jid' value='muc.{}/{}' action='deny' order='4'/>\
         </list>",
        s.jid(one_way),
        s.domain,
        one_way.id,
        s.jid(two_way),
        s.domain,
        two_way.id
    )
}

#[tokio::test]
async fn privacy_lists_block_one_way_two_way_and_in_groups() {
    let s = start().await;
    let (a, b, c) = (
        s.user("alice").await,
        s.user("bob").await,
        s.user("carol").await,
    );
    let (_, room) = s.group(&a, &[&b, &c]).await;
    let (mut ca, mut cb, mut cc) = (s.online(&a).await, s.online(&b).await, s.online(&c).await);

    // a blocks b one way and c two ways, then makes the list the default
    let r = ca.privacy("set", &block_items(&s, &b, &c)).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", String::from(&r));
    let r = ca.privacy("set", "<default name='blocked'/>").await;
    assert_eq!(r.attr("type"), Some("result"));

    // names and the list, items in stored order
    let r = ca.privacy("get", "").await;
    let names: Vec<String> = child(&r, "query")
        .unwrap()
        .children()
        .map(|c| format!("{}={}", c.name(), c.attr("name").unwrap()))
        .collect();
    assert_eq!(names, ["default=blocked", "list=blocked"]);
    let r = ca.privacy("get", "<list name='blocked'/>").await;
    let values: Vec<&str> = child(child(&r, "query").unwrap(), "list")
        .unwrap()
        .children()
        .map(|i| i.attr("value").unwrap())
        .collect();
    assert_eq!(values[0], s.jid(&b));
    assert_eq!(values[2], s.jid(&c));

    // one-way: b's 1-1 message bounces with the legacy code, a can still write to b
    let (aj, bj, cj) = (s.jid(&a), s.jid(&b), s.jid(&c));
    let mid = cb.chat(&aj, "from b", "").await;
    let err = cb
        .expect("error", |e| e.attr("type") == Some("error"))
        .await;
    assert_eq!(err.attr("id"), Some(mid.as_str()));
    assert_eq!(error_code(&err).as_deref(), Some("503"));
    assert!(child(&err, "error")
        .unwrap()
        .get_child("service-unavailable", "urn:ietf:params:xml:ns:xmpp-stanzas")
        .is_some());
    let from_a = ca.chat(&bj, "from a to b", "").await;
    cb.expect("a's message", is_chat_with("from a to b")).await;
    // b's automatic delivered marker and typing to a vanish without an error
    cb.send(&format!(
        "<message xmlns='jabber:client' type='chat' to='{aj}' id='mk1'><received xmlns='urn:xmpp:chat-markers:0' id='{from_a}'/></message>"
    ))
    .await;
    cb.send(&format!(
        "<message xmlns='jabber:client' type='chat' to='{aj}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
    ))
    .await;
    cb.quiet().await;
    assert!(ca
        .drain(Duration::from_millis(300))
        .await
        .iter()
        .all(|e| e.name() != "message"));

    // two-way: neither a nor c can write
    cc.chat(&aj, "from c", "").await;
    assert_eq!(
        error_code(
            &cc.expect("error", |e| e.attr("type") == Some("error"))
                .await
        )
        .as_deref(),
        Some("503")
    );
    ca.chat(&cj, "from a to c", "").await;
    assert_eq!(
        error_code(
            &ca.expect("error", |e| e.attr("type") == Some("error"))
                .await
        )
        .as_deref(),
        Some("503")
    );
    ca.quiet().await;
    cc.quiet().await;

    // groups: b's message silently skips a; a's message skips c (two-way)
    cb.groupchat(&room, "b in group").await;
    cc.expect("b's group message", is_chat_with("b in group"))
        .await;
    cb.expect("own echo", is_chat_with("b in group")).await;
    cb.quiet().await;
    ca.quiet().await;
    ca.groupchat(&room, "a in group").await;
    cb.expect("a's group message", is_chat_with("a in group"))
        .await;
    cc.quiet().await;

    // the default list cannot be edited while in use (the cloud's refusal, as `conflict`)
    let r = ca
        .privacy(
            "set",
            &format!("<list name='blocked'><item type='jid' value='{bj}' action='deny' order='1'/></list>"),
        )
        .await;
    assert_eq!(error_code(&r).as_deref(), Some("409"));
    let text = child(child(&r, "error").unwrap(), "text").unwrap().text();
    assert_eq!(
        text,
        "Can not modify list while being in use by other session"
    );

    // decline → update (unblock c) → default again
    assert_eq!(
        ca.privacy("set", "<default/>").await.attr("type"),
        Some("result")
    );
    cb.chat(&aj, "declined", "").await;
    ca.expect("b's message after decline", is_chat_with("declined"))
        .await;
    let r = ca
        .privacy(
            "set",
            &format!("<list name='blocked'><item type='jid' value='{bj}' action='deny' order='1'><message/><presence-in/><presence-out/><iq/></item></list>"),
        )
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    assert_eq!(
        ca.privacy("set", "<default name='blocked'/>")
            .await
            .attr("type"),
        Some("result")
    );
    cc.chat(&aj, "c again", "").await;
    ca.expect("c's message", is_chat_with("c again")).await;
    cb.chat(&aj, "still blocked", "").await;
    cb.expect("error", |e| e.attr("type") == Some("error"))
        .await;

    // a list needs an item; the default cannot be deleted; others can
    let r = ca.privacy("set", "<default/>").await;
    assert_eq!(r.attr("type"), Some("result"));
    let r = ca.privacy("set", "<list name='blocked'/>").await;
    assert_eq!(r.attr("type"), Some("result"), "deleted");
    let r = ca.privacy("get", "<list name='blocked'/>").await;
    assert_eq!(error_code(&r).as_deref(), Some("404"));
    cb.chat(&aj, "free", "").await;
    ca.expect("b's message", is_chat_with("free")).await;
    for cl in [ca, cb, cc] {
        cl.close().await;
    }
}

#[tokio::test]
async fn last_activity_and_status_streaming() {
    let s = start().await;
    let (a, b) = (s.user("alice").await, s.user("bob").await);
    let bj = s.jid(&b);
    let mut ca = s.online(&a).await;

    // never logged in: counted from sign-up, never 0
    let r = ca
        .iq("get", Some(&bj), "<query xmlns='jabber:iq:last'/>")
        .await;
    assert_eq!(r.attr("type"), Some("result"));
    assert_eq!(r.attr("from"), Some(bj.as_str()));
    assert!(seconds(&r) >= 1);
    let r = ca
        .iq(
            "get",
            Some(&format!("999999-{APP}@{}", s.domain)),
            "<query xmlns='jabber:iq:last'/>",
        )
        .await;
    assert_eq!(error_code(&r).as_deref(), Some("404"));

    // subscribe; b logs in (0) and out (N > 0)
    let sub =
        |on: bool| format!("<subscribe xmlns='{NS_STREAMING}' user_jid='{bj}' enable='{on}'/>");
    assert_eq!(
        ca.iq("set", None, &sub(true)).await.attr("type"),
        Some("result")
    );
    let cb = s.online(&b).await;
    let is_event = |e: &Element| {
        e.name() == "iq" && child(e, "query").is_some_and(|q| q.ns() == "jabber:iq:last")
    };
    let ev = ca.expect("login event", is_event).await;
    assert_eq!(ev.attr("type"), Some("result"));
    assert_eq!(ev.attr("from"), Some(bj.as_str()));
    assert_eq!(seconds(&ev), 0);
    let r = ca
        .iq("get", Some(&bj), "<query xmlns='jabber:iq:last'/>")
        .await;
    assert_eq!(seconds(&r), 0, "online now");
    cb.close().await;
    let ev = ca.expect("logout event", is_event).await;
    assert!(seconds(&ev) >= 1);

    // the JS SDK's error echo of an event is not a query: no answer
    ca.send(&format!(
        "<iq xmlns='jabber:client' type='error' id='echo1' to='{bj}'><query xmlns='jabber:iq:last' seconds='0'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ))
    .await;
    assert!(ca.drain(Duration::from_millis(400)).await.is_empty());

    // seconds grow after the logout
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = ca
        .iq("get", Some(&bj), "<query xmlns='jabber:iq:last'/>")
        .await;
    assert!(seconds(&r) >= 2, "{}", String::from(&r));

    // subscriptions belong to the session: after a reconnect the watcher subscribes again
    ca.close().await;
    let mut ca = s.online(&a).await;
    let cb = s.online(&b).await;
    assert!(
        ca.drain(Duration::from_millis(400)).await.is_empty(),
        "old subscription gone"
    );
    assert_eq!(
        ca.iq("set", None, &sub(true)).await.attr("type"),
        Some("result")
    );
    cb.close().await;
    let ev = ca.expect("logout event after reconnect", is_event).await;
    assert_eq!(ev.attr("from"), Some(bj.as_str()));
    assert_eq!(
        ca.iq("set", None, &sub(false)).await.attr("type"),
        Some("result")
    );
    let cb = s.online(&b).await;
    assert!(
        ca.drain(Duration::from_millis(400)).await.is_empty(),
        "unsubscribed"
    );
    cb.close().await;
    ca.close().await;
}

#[tokio::test]
async fn push_outbox_offline_inactive_silent_and_muted() {
    let s = start().await;
    let (a, b, c) = (
        s.user("alice").await,
        s.user("bob").await,
        s.user("carol").await,
    );
    let bj = s.jid(&b);
    let mut ca = s.online(&a).await;
    let save = "<save_to_history>1</save_to_history>";

    // b offline: a push; silent: none
    let m1 = ca.chat(&bj, "offline", save).await;
    ca.chat(&bj, "silent", &format!("{save}<silent>1</silent>"))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let p = s.pushes(&b).await;
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["message_id"], m1.as_str());
    assert_eq!(p[0]["sender_id"], a.id);
    assert_eq!(p[0]["recipient_id"], b.id);
    let dialog = p[0]["dialog_id"].as_str().unwrap().to_owned();
    assert!(!dialog.is_empty());

    // online and active: none; inactive (mobile mode): a push, but not for typing
    let mut cb = s.online(&b).await;
    ca.chat(&bj, "active", save).await;
    cb.expect("message", is_chat_with("active")).await;
    let mobile =
        |on: bool| format!("<mobile xmlns='http://tigase.org/protocol/mobile#v2' enable='{on}'/>");
    assert_eq!(
        cb.iq("set", None, &mobile(true)).await.attr("type"),
        Some("result")
    );
    let m2 = ca.chat(&bj, "inactive", save).await;
    cb.expect("message while inactive", is_chat_with("inactive"))
        .await;
    ca.send(&format!(
        "<message xmlns='jabber:client' type='chat' to='{bj}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
    ))
    .await;
    assert_eq!(
        cb.iq("set", None, &mobile(false)).await.attr("type"),
        Some("result")
    );
    ca.chat(&bj, "active again", save).await;
    cb.expect("message", is_chat_with("active again")).await;
    let ids: Vec<String> = s
        .pushes(&b)
        .await
        .iter()
        .map(|p| p["message_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [m1.clone(), m2.clone()]);

    // notifications off for the dialog: no push even offline
    s.rest(
        &b,
        reqwest::Method::PUT,
        &format!("/chat/Dialog/{dialog}/notifications"),
        json!({"enabled": 0}),
    )
    .await;
    cb.close().await;
    ca.chat(&bj, "muted", save).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.pushes(&b).await.len(), 2);

    // groups: offline c gets a push, online active b none
    let (gid, room) = s.group(&a, &[&b, &c]).await;
    let mut cb = s.online(&b).await;
    let g1 = ca.groupchat(&room, "group hello").await;
    cb.expect("group message", is_chat_with("group hello"))
        .await;
    let p = s.pushes(&c).await;
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["message_id"], g1.as_str());
    assert_eq!(p[0]["dialog_id"], gid.as_str());
    assert_eq!(s.pushes(&b).await.len(), 2);
    assert!(s.pushes(&a).await.is_empty(), "never for the sender");

    // REST messages sent to chat count too
    let r = s
        .rest(
            &a,
            reqwest::Method::POST,
            "/chat/Message",
            json!({"chat_dialog_id": gid, "message": "via rest", "send_to_chat": 1}),
        )
        .await;
    cb.expect("REST message", is_chat_with("via rest")).await;
    let p = s.pushes(&c).await;
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(p[1]["message_id"], r["_id"]);
    assert_eq!(s.pushes(&b).await.len(), 2);
    cb.close().await;
    ca.close().await;
}

#[tokio::test]
async fn group_presence_join_leave_kick_and_disconnect() {
    let s = start().await;
    let (a, b) = (s.user("alice").await, s.user("bob").await);
    let (dialog_id, room) = s.group(&a, &[&b]).await;
    let (mut ca, mut cb) = (s.online(&a).await, s.online(&b).await);
    let from_b = format!("{room}/{}", b.id);
    let from_a = format!("{room}/{}", a.id);

    let me = ca.join(&room, a.id).await;
    assert_eq!(me.attr("from"), Some(from_a.as_str()));

    // b joins: b first gets a's presence (standard, no quirk), then its own (with the quirk)
    cb.send(&format!(
        "<presence xmlns='jabber:client' id='j:join' to='{room}/{}'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
        b.id
    ))
    .await;
    let first = cb.expect("a's presence", |e| e.name() == "presence").await;
    assert_eq!(first.attr("from"), Some(from_a.as_str()));
    let x = first.get_child("x", NS_MUC_USER).unwrap();
    assert!(child(x, "xmlns").is_none() && child(x, "status").is_none());
    let own = cb.expect("self presence", |e| e.name() == "presence").await;
    assert_eq!(own.attr("id"), Some("j:join"));
    assert!(child(own.get_child("x", NS_MUC_USER).unwrap(), "xmlns").is_some());

    // a sees b join, then leave (standard presences)
    let joined = ca.expect("b joined", |e| e.name() == "presence").await;
    assert_eq!(joined.attr("from"), Some(from_b.as_str()));
    assert_eq!(joined.attr("type"), None);
    assert!(child(joined.get_child("x", NS_MUC_USER).unwrap(), "xmlns").is_none());
    cb.send(&format!(
        "<presence xmlns='jabber:client' type='unavailable' to='{room}/{}'/>",
        b.id
    ))
    .await;
    let left = ca.expect("b left", |e| e.name() == "presence").await;
    assert_eq!(left.attr("from"), Some(from_b.as_str()));
    assert_eq!(left.attr("type"), Some("unavailable"));

    // a removes b from the dialog: b is kicked (301, actor a, with the JS quirks)
    cb.join(&room, b.id).await;
    ca.expect("b joined again", |e| {
        e.name() == "presence" && e.attr("type").is_none()
    })
    .await;
    s.rest(
        &a,
        reqwest::Method::PUT,
        &format!("/chat/Dialog/{dialog_id}"),
        json!({"pull_all": {"occupants_ids": [b.id]}}),
    )
    .await;
    let kicked = cb.expect("kick", |e| e.name() == "presence").await;
    assert_eq!(kicked.attr("type"), Some("unavailable"));
    let x = kicked.get_child("x", NS_MUC_USER).unwrap();
    assert!(x
        .children()
        .any(|c| c.name() == "status" && c.attr("code") == Some("301")));
    assert_eq!(
        child(child(x, "xmlns").unwrap(), "code").unwrap().text(),
        "301"
    );
    let actor = |item: &Element| {
        child(item, "actor")
            .unwrap()
            .attr("jid")
            .unwrap()
            .to_owned()
    };
    assert_eq!(actor(child(x, "item").unwrap()), s.jid(&a));
    assert_eq!(
        actor(child(&kicked, "item").unwrap()),
        s.jid(&a),
        "6.1.2 reads it here"
    );
    let gone = ca.expect("b kicked", |e| e.name() == "presence").await;
    assert_eq!(gone.attr("type"), Some("unavailable"));
    assert!(child(gone.get_child("x", NS_MUC_USER).unwrap(), "xmlns").is_none());
    s.rest(
        &a,
        reqwest::Method::PUT,
        &format!("/chat/Dialog/{dialog_id}"),
        json!({"push_all": {"occupants_ids": [b.id]}}),
    )
    .await;

    // b joins again and disconnects: unavailable
    cb.join(&room, b.id).await;
    ca.expect("b joined again", |e| {
        e.name() == "presence" && e.attr("type").is_none()
    })
    .await;
    cb.close().await;
    let gone = ca.expect("b gone", |e| e.name() == "presence").await;
    assert_eq!(gone.attr("from"), Some(from_b.as_str()));
    assert_eq!(gone.attr("type"), Some("unavailable"));
    ca.close().await;
}
