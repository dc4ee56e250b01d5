//! The `cubeserver` binary as a process: ready line, raw HTTP, SIGTERM, file database
//! persistence across a restart. No HTTP client dependency: plain HTTP/1.1 over TcpStream.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};

const STARTUP: Duration = Duration::from_secs(30);
const SHUTDOWN: Duration = Duration::from_secs(10);

struct Server {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    ready: Value,
    addr: String,
}

async fn start(args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cubeserver"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(STARTUP, stdout.next_line())
        .await
        .expect("no ready line in time")
        .unwrap()
        .expect("stdout closed before the ready line");
    let ready: Value = serde_json::from_str(&line).unwrap();
    let addr = ready["api_url"]
        .as_str()
        .unwrap()
        .strip_prefix("http://")
        .unwrap()
        .to_owned();
    Server {
        child,
        stdout,
        ready,
        addr,
    }
}

impl Server {
    /// SIGTERM, then expect exit code 0 within 10 s and nothing more on stdout.
    async fn stop(mut self) {
        let pid = self.child.id().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = tokio::time::timeout(SHUTDOWN, self.child.wait())
            .await
            .expect("no exit within 10 s")
            .unwrap();
        assert!(status.success(), "exit status {status:?}");
        let rest = self.stdout.next_line().await.unwrap();
        assert_eq!(rest, None, "stdout must carry only the ready line");
    }
}

/// One request; returns the status and the body parsed as JSON (`Null` if empty).
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json;charset=utf-8\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap()
    };
    (status, json)
}

fn scratch_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "cubeserver-cli-{tag}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn ready_line_session_and_sigterm() {
    let server = start(&["--api-port", "0"]).await;
    let ready = server.ready.clone();
    assert_eq!(ready.as_object().unwrap().len(), 5, "{ready}");
    assert!(
        ready["xmpp_port"].as_u64().is_some_and(|p| p > 0),
        "{ready}"
    );
    assert!(
        ready["xmpp_tls_port"].as_u64().is_some_and(|p| p > 0),
        "{ready}"
    );
    assert!(ready["api_url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    assert_eq!(ready["chat_domain"], "127.0.0.1");
    let ca = PathBuf::from(ready["ca_cert"].as_str().unwrap());
    assert!(std::fs::read_to_string(&ca)
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    let cert_dir = ca.parent().unwrap().to_owned();
    assert!(cert_dir.join("server.pem").exists() && cert_dir.join("server.key").exists());

    let (status, body) = http(
        &server.addr,
        "POST",
        "/session.json",
        &[],
        Some(json!({"application_id": 1, "auth_key": "demo-auth-key"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["session"]["application_id"], 1);
    let token = body["session"]["token"].as_str().unwrap().to_owned();

    let (status, _) = http(
        &server.addr,
        "GET",
        "/session",
        &[("CB-Token", &token)],
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = http(&server.addr, "POST", "/_admin/expire_sessions", &[], None).await;
    assert_eq!((status, body), (200, json!({"expired": 1})));
    let (status, body) = http(
        &server.addr,
        "GET",
        "/session.json",
        &[("CB-Token", &token)],
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (
            401,
            json!({"errors": {"base": ["Required session does not exist"]}})
        )
    );

    server.stop().await;
    assert!(
        !cert_dir.exists(),
        "the temporary cert dir is removed on shutdown"
    );
}

#[tokio::test]
async fn file_db_survives_restart() {
    let dir = scratch_dir("db");
    let db = dir.join("cube.db");
    let certs = dir.join("certs");
    let args = [
        "--db",
        db.to_str().unwrap(),
        "--cert-dir",
        certs.to_str().unwrap(),
        "--app",
        "5:key-5:",
        "--chat-domain",
        "chat.test",
    ];

    let server = start(&args).await;
    assert_eq!(server.ready["chat_domain"], "chat.test");
    assert_eq!(
        PathBuf::from(server.ready["ca_cert"].as_str().unwrap()),
        certs.join("ca.pem")
    );
    let (status, body) = http(
        &server.addr,
        "POST",
        "/users.json",
        &[("CB-AuthKey", "key-5")],
        Some(json!({"user": {"login": "persistent", "password": "password1", "full_name": "P"}})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["user"]["id"].as_u64().unwrap();
    server.stop().await;
    assert!(
        certs.join("ca.pem").exists(),
        "an explicit --cert-dir is kept"
    );

    let server = start(&args).await;
    // A wrong password is refused: the user exists (an unknown login would be auto-created).
    let creds = |password: &str| json!({"application_id": "5", "auth_key": "key-5", "user": {"login": "persistent", "password": password}});
    let (status, _) = http(
        &server.addr,
        "POST",
        "/session",
        &[],
        Some(creds("wrong-password")),
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = http(
        &server.addr,
        "POST",
        "/session",
        &[],
        Some(creds("password1")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["session"]["user"]["id"], id);
    assert_eq!(body["session"]["user"]["full_name"], "P");
    server.stop().await;

    std::fs::remove_dir_all(&dir).unwrap();
}

/// A TLS handshake with the server's direct-TLS port, trusting only `ca_pem`, for `name`.
async fn tls_handshake(server: &Server, ca_pem: &str, name: &str) -> Result<(), String> {
    use std::sync::Arc;
    use tokio_rustls::rustls::crypto::ring;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};

    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let port = server.ready["xmpp_tls_port"].as_u64().unwrap();
    let tcp = TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .expect("TLS handshake in time")
    .map(drop)
    .map_err(|e| e.to_string())
}

/// Issue 12 item 6: a restart with the same `--cert-dir` keeps the CA (and the server
/// certificate), so clients that trusted it keep connecting; another chat domain gets a new
/// server certificate from the same CA.
#[tokio::test]
async fn cert_dir_keeps_the_ca_across_restarts() {
    let dir = scratch_dir("certs");
    let certs = dir.join("certs");
    let args = |domain: &'static str| {
        [
            "--cert-dir".to_owned(),
            certs.to_str().unwrap().to_owned(),
            "--chat-domain".to_owned(),
            domain.to_owned(),
        ]
    };
    let read = |server: &Server, file: &str| {
        let ca = PathBuf::from(server.ready["ca_cert"].as_str().unwrap());
        std::fs::read_to_string(ca.with_file_name(file)).unwrap()
    };
    let a = args("chat.test");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let server = start(&a).await;
    let ca = read(&server, "ca.pem");
    let leaf = read(&server, "server.pem");
    tls_handshake(&server, &ca, "chat.test").await.unwrap();
    server.stop().await;

    let server = start(&a).await;
    assert_eq!(read(&server, "ca.pem"), ca, "a new CA after a restart");
    assert_eq!(read(&server, "server.pem"), leaf, "a usable leaf is kept");
    tls_handshake(&server, &ca, "chat.test").await.unwrap();
    server.stop().await;

    let b = args("other.test");
    let b: Vec<&str> = b.iter().map(String::as_str).collect();
    let server = start(&b).await;
    assert_eq!(
        read(&server, "ca.pem"),
        ca,
        "the CA is kept for another domain"
    );
    assert_ne!(
        read(&server, "server.pem"),
        leaf,
        "the leaf must name other.test"
    );
    tls_handshake(&server, &ca, "other.test").await.unwrap();
    server.stop().await;

    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn help_and_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_cubeserver"))
        .arg("--help")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Usage: cubeserver"));

    let out = Command::new(env!("CARGO_BIN_EXE_cubeserver"))
        .args(["--api-port", "nope"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--api-port"));
}
