//! The one support module of cubechat-core's end-to-end tests (`tests/*.rs`): the real
//! cubeserver binary started on free ports ([`start`]), cubechat-core clients configured for
//! it ([`Server::chat_config`]), users and dialogs ([`users`]) and order-independent event
//! waits ([`events`]).
//!
//! The cubeserver process is this package's `cubeserver-e2e` binary: cubeserver's own
//! command line ([`cubeserver::cli_main`]) built here so that `cargo test -p cubechat-e2e`
//! builds it before the tests run.
#![allow(clippy::unwrap_used)]

pub mod events;
pub mod live;
pub mod users;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use cubechat_core::{Client, Config, LoginId, User, UserParams};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The application every test server serves: id, auth key, auth secret.
pub const APP: (u64, &str, &str) = (7, "key-7", "secret-7");
/// The password of every user the tests sign up.
pub const PASSWORD: &str = "correct-horse-9";

/// A cubeserver process; killed when dropped.
pub struct Server {
    /// `None` when attached to a server another process started ([`Server::attach`]).
    _child: Option<Child>,
    /// The REST base URL (`http://127.0.0.1:PORT`).
    pub api_url: String,
    /// The chat (JID) domain.
    pub chat_domain: String,
    /// The whole ready line.
    pub ready: Value,
}

/// The cubeserver executable the tests start: this package's `cubeserver-e2e` binary, which
/// cargo builds next to the test executables (`target/<profile>/`) before running them.
pub fn cubeserver_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/cubeserver-e2e
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join(format!("cubeserver-e2e{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} not found: run the tests with `cargo test -p cubechat-e2e`",
        bin.display()
    );
    bin
}

/// Starts cubeserver with the test application on free ports.
pub async fn start() -> Server {
    start_with(&[]).await
}

/// [`start`] with extra command-line arguments.
pub async fn start_with(extra: &[&str]) -> Server {
    let app = format!("{}:{}:{}", APP.0, APP.1, APP.2);
    let mut args = vec!["--api-port", "0", "--app", &app];
    args.extend_from_slice(extra);
    let mut child = Command::new(cubeserver_bin())
        .args(&args)
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
    Server {
        _child: Some(child),
        api_url: ready["api_url"].as_str().unwrap().to_owned(),
        chat_domain: ready["chat_domain"].as_str().unwrap().to_owned(),
        ready,
    }
}

impl Server {
    /// The server another process started, from its ready line (a child test process
    /// reaching its parent's server).
    pub fn attach(ready: Value) -> Server {
        Server {
            _child: None,
            api_url: ready["api_url"].as_str().unwrap().to_owned(),
            chat_domain: ready["chat_domain"].as_str().unwrap().to_owned(),
            ready,
        }
    }

    /// A client config for this server (signed sessions).
    pub fn config(&self) -> Config {
        let mut cfg = Config::new(APP.0, APP.1, &self.api_url);
        cfg.auth_secret = Some(APP.2.into());
        cfg
    }

    /// A client with no session.
    pub fn client(&self) -> Arc<Client> {
        Client::new(self.config()).unwrap()
    }

    /// A client with `f` applied to its config.
    pub fn client_with(&self, f: impl FnOnce(&mut Config)) -> Arc<Client> {
        let mut cfg = self.config();
        f(&mut cfg);
        Client::new(cfg).unwrap()
    }

    /// A new user `login` (with [`PASSWORD`]), signed up and logged in.
    pub async fn new_user(&self, login: &str) -> (Arc<Client>, User) {
        let c = self.client();
        c.auth()
            .sign_up(UserParams {
                login: Some(login.into()),
                password: Some(PASSWORD.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let me = c
            .auth()
            .log_in(LoginId::Login(login.into()), PASSWORD)
            .await
            .unwrap();
        (c, me)
    }
}

impl Server {
    /// The STARTTLS port of the ready line.
    pub fn xmpp_port(&self) -> u16 {
        u16::try_from(self.ready["xmpp_port"].as_u64().unwrap()).unwrap()
    }

    /// The direct-TLS port of the ready line.
    pub fn xmpp_tls_port(&self) -> u16 {
        u16::try_from(self.ready["xmpp_tls_port"].as_u64().unwrap()).unwrap()
    }

    /// The PEM of the CA that signed the server certificate (the ready line's `ca_cert`).
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.ready["ca_cert"].as_str().unwrap()).unwrap()
    }

    /// [`Server::config`] plus chat: this server's XMPP ports and domain on 127.0.0.1, its
    /// CA trusted, and short delays (connect 5 s, reconnect 100 ms to 1 s, typing idle
    /// 500 ms) so the tests stay fast.
    pub fn chat_config(&self) -> Config {
        let mut cfg = self.config();
        cfg.chat.host = "127.0.0.1".into();
        cfg.chat.domain = self.chat_domain.clone();
        cfg.chat.port = self.xmpp_port();
        cfg.chat.tls_port = self.xmpp_tls_port();
        cfg.tls.extra_ca_pem = Some(self.ca_pem());
        cfg.timeouts.connect = Duration::from_secs(5);
        cfg.reconnect.initial_delay = Duration::from_millis(100);
        cfg.reconnect.max_delay = Duration::from_secs(1);
        cfg.chat_options.typing_idle = Duration::from_millis(500);
        cfg
    }
}

impl Server {
    /// Expires every session on the server (`POST /_admin/expire_sessions`).
    pub async fn expire_all_sessions(&self) {
        let resp = reqwest::Client::new()
            .post(format!("{}/_admin/expire_sessions", self.api_url))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
    }
}

/// `prefix` plus a random hex suffix.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{:x}", rand_u64())
}

/// A random number (from the std hasher; good enough for names).
pub fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
