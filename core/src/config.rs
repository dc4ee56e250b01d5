//! Client configuration: the application's credentials, where the servers are, how TLS is
//! verified, timeouts and the reconnection policy. [`Config::validate`] rejects anything
//! unusable before a single byte is sent.

use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};

/// Everything a [`crate::Client`] needs. Its `Debug` and `Display` never show the auth
/// secret (only whether one is set).
#[derive(Clone)]
pub struct Config {
    /// The ConnectyCube application id.
    pub app_id: u64,
    /// The application's auth key.
    pub auth_key: String,
    /// The application's auth secret. When set, session requests are signed (HMAC-SHA1).
    pub auth_secret: Option<String>,
    /// REST base URL, e.g. `https://api.connectycube.com` or `http://127.0.0.1:8080`.
    pub api_url: String,
    /// The XMPP server.
    pub chat: ChatEndpoint,
    /// How server certificates are verified.
    pub tls: TlsOptions,
    /// Network timeouts.
    pub timeouts: Timeouts,
    /// How the chat connection comes back after it drops.
    pub reconnect: ReconnectPolicy,
    /// Chat behaviour: automatic markers and typing.
    pub chat_options: ChatOptions,
    /// Folder of the local stores (one SQLite file per user, created when missing);
    /// `None` keeps the store in memory (nothing survives the process).
    pub store_dir: Option<std::path::PathBuf>,
}

/// Chat behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatOptions {
    /// Send a delivered marker for every received markable message (default true).
    pub auto_send_delivered: bool,
    /// After `send_typing(composing: true)`, send `paused` when this much time passes
    /// without another call (default 30 s).
    pub typing_idle: Duration,
}

impl Default for ChatOptions {
    fn default() -> Self {
        Self {
            auto_send_delivered: true,
            typing_idle: Duration::from_secs(30),
        }
    }
}

/// Where the XMPP server is.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatEndpoint {
    /// Host to connect to. Empty = the host of `domain`.
    pub host: String,
    /// The JID domain, e.g. `chat.connectycube.com`.
    pub domain: String,
    /// TCP port for STARTTLS (default 5222).
    pub port: u16,
    /// Port for direct TLS (default 5223).
    pub tls_port: u16,
    /// Connect with direct TLS instead of STARTTLS.
    pub direct_tls: bool,
    /// **Insecure.** Connect to `port` without any TLS and authenticate in plain text.
    /// Only for test servers; by default a server that offers no STARTTLS is refused.
    pub insecure_plaintext: bool,
}

impl Default for ChatEndpoint {
    fn default() -> Self {
        Self {
            host: String::new(),
            domain: "chat.connectycube.com".into(),
            port: 5222,
            tls_port: 5223,
            direct_tls: false,
            insecure_plaintext: false,
        }
    }
}

/// Certificate verification. Verified by default against the bundled Mozilla roots.
#[derive(Clone, Default, PartialEq)]
pub struct TlsOptions {
    /// Extra CA certificates (PEM) trusted in addition to the bundled roots; this is how a
    /// client trusts a private server such as cubeserver.
    pub extra_ca_pem: Option<String>,
    /// **Insecure.** Accept any server certificate. Only for debugging against a server whose
    /// certificate cannot be trusted otherwise.
    pub insecure_accept_any_certificate: bool,
    /// **Insecure.** Allow plain `http://` and unencrypted XMPP to hosts other than the
    /// loopback address. Loopback (127.0.0.0/8, ::1, localhost) is always allowed.
    pub insecure_allow_plaintext: bool,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("extra_ca_pem", &self.extra_ca_pem.as_ref().map(|p| p.len()))
            .field(
                "insecure_accept_any_certificate",
                &self.insecure_accept_any_certificate,
            )
            .field("insecure_allow_plaintext", &self.insecure_allow_plaintext)
            .finish()
    }
}

/// Network timeouts, tuned for mobile networks.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeouts {
    /// Establishing a TCP/TLS connection.
    pub connect: Duration,
    /// A whole REST request, response included.
    pub request: Duration,
    /// Keep-alive ping interval of the chat connection.
    pub ping_interval: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(15),
            request: Duration::from_secs(30),
            ping_interval: Duration::from_secs(60),
        }
    }
}

/// Exponential backoff with jitter for the chat connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    /// Reconnect at all.
    pub enabled: bool,
    /// Delay after the first failed attempt (the first attempt after a cut goes at once);
    /// each further failure multiplies it by `multiplier`.
    pub initial_delay: Duration,
    /// Upper bound of the delay.
    pub max_delay: Duration,
    /// Growth factor between attempts (≥ 1).
    pub multiplier: f64,
    /// Random spread, 0.0–1.0, applied to each delay.
    pub jitter: f64,
    /// Give up after this many failed attempts in a row (failed logins, and connections cut
    /// before `stable_after`); `None` = never.
    pub max_attempts: Option<u32>,
    /// How long a connection must stay up (bound or resumed) to count as stable. Only a cut
    /// after that restarts the backoff at the first attempt; a connection cut sooner (e.g.
    /// a server that drops every session right after login) counts as a failed attempt, so
    /// the delays keep growing. Default 30 s; zero = every login restarts the backoff.
    pub stable_after: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: 0.3,
            max_attempts: None,
            stable_after: Duration::from_secs(30),
        }
    }
}

/// What `Debug`/`Display` show instead of a secret.
pub const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("app_id", &self.app_id)
            .field("auth_key", &self.auth_key)
            .field("auth_secret", &self.auth_secret.as_ref().map(|_| Redacted))
            .field("api_url", &self.api_url)
            .field("chat", &self.chat)
            .field("tls", &self.tls)
            .field("timeouts", &self.timeouts)
            .field("reconnect", &self.reconnect)
            .field("chat_options", &self.chat_options)
            .field("store_dir", &self.store_dir)
            .finish()
    }
}

impl std::fmt::Display for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Shows [`REDACTED`] in `Debug` output in place of a secret.
pub struct Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Config {
    /// A config with defaults for everything but the application and the REST URL.
    pub fn new(app_id: u64, auth_key: impl Into<String>, api_url: impl Into<String>) -> Self {
        Self {
            app_id,
            auth_key: auth_key.into(),
            auth_secret: None,
            api_url: api_url.into(),
            chat: ChatEndpoint::default(),
            tls: TlsOptions::default(),
            timeouts: Timeouts::default(),
            reconnect: ReconnectPolicy::default(),
            chat_options: ChatOptions::default(),
            store_dir: None,
        }
    }

    /// Checks every field and returns the parsed REST base URL.
    pub fn validate(&self) -> Result<Url> {
        let bad = |m: String| Err(Error::InvalidInput(m));
        if self.app_id == 0 {
            return bad("app_id must be a positive number".into());
        }
        if self.auth_key.trim().is_empty() {
            return bad("auth_key is empty".into());
        }
        if matches!(&self.auth_secret, Some(s) if s.is_empty()) {
            return bad("auth_secret is empty (leave it unset instead)".into());
        }
        let url = Url::parse(self.api_url.trim())
            .map_err(|e| Error::InvalidInput(format!("api_url is not a URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(url.host_str().unwrap_or_default()) => {}
            "http" if self.tls.insecure_allow_plaintext => {}
            "http" => {
                return bad(
                    "api_url uses plain http to a non-loopback host; use https or set \
                            insecure_allow_plaintext"
                        .into(),
                )
            }
            other => return bad(format!("api_url has unsupported scheme '{other}'")),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return bad("api_url has no host".into());
        }
        if self.chat.domain.trim().is_empty() {
            return bad("chat domain is empty".into());
        }
        if self.chat.insecure_plaintext
            && !is_loopback(self.chat_host())
            && !self.tls.insecure_allow_plaintext
        {
            return bad("chat insecure_plaintext to a non-loopback host also needs \
                        insecure_allow_plaintext"
                .into());
        }
        if self.chat.port == 0 || self.chat.tls_port == 0 {
            return bad("chat ports must be non-zero".into());
        }
        if self.timeouts.connect.is_zero() || self.timeouts.request.is_zero() {
            return bad("timeouts must be non-zero".into());
        }
        let r = &self.reconnect;
        if r.initial_delay.is_zero() || r.max_delay < r.initial_delay {
            return bad("reconnect delays must satisfy 0 < initial_delay <= max_delay".into());
        }
        if !(r.multiplier.is_finite() && r.multiplier >= 1.0) {
            return bad("reconnect multiplier must be >= 1".into());
        }
        if !(0.0..=1.0).contains(&r.jitter) {
            return bad("reconnect jitter must be within 0..=1".into());
        }
        Ok(url)
    }

    /// The host the chat connection dials.
    pub fn chat_host(&self) -> &str {
        if self.chat.host.is_empty() {
            &self.chat.domain
        } else {
            &self.chat.host
        }
    }
}

/// True for `localhost`, 127.0.0.0/8 and `::1`.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Config {
        Config::new(7, "key-7", "https://api.example.com")
    }

    #[test]
    fn valid_config_passes() {
        assert!(ok().validate().is_ok());
        let mut c = ok();
        c.api_url = "http://127.0.0.1:8080".into();
        assert!(c.validate().is_ok());
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn rejects_bad_fields() {
        let cases: Vec<Box<dyn Fn(&mut Config)>> = vec![
            Box::new(|c| c.app_id = 0),
            Box::new(|c| c.auth_key = " ".into()),
            Box::new(|c| c.auth_secret = Some(String::new())),
            Box::new(|c| c.api_url = "not a url".into()),
            Box::new(|c| c.api_url = "ftp://x".into()),
            Box::new(|c| c.api_url = "http://example.com".into()),
            Box::new(|c| c.chat.domain = String::new()),
            Box::new(|c| c.chat.insecure_plaintext = true),
            Box::new(|c| c.timeouts.request = Duration::ZERO),
            Box::new(|c| c.reconnect.multiplier = 0.5),
            Box::new(|c| c.reconnect.jitter = 2.0),
            Box::new(|c| c.reconnect.max_delay = Duration::from_millis(1)),
        ];
        for (i, mutate) in cases.iter().enumerate() {
            let mut c = ok();
            mutate(&mut c);
            assert!(
                matches!(c.validate(), Err(Error::InvalidInput(_))),
                "case {i}"
            );
        }
    }

    #[test]
    fn plaintext_needs_explicit_opt_in() {
        let mut c = ok();
        c.api_url = "http://example.com".into();
        c.tls.insecure_allow_plaintext = true;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn debug_and_display_hide_the_auth_secret() {
        let mut c = ok();
        c.auth_secret = Some("s3cr3t-value".into());
        for shown in [format!("{c:?}"), format!("{c:#?}"), c.to_string()] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(shown.contains(REDACTED), "{shown}");
            assert!(shown.contains("key-7"), "{shown}");
        }
    }

    #[test]
    fn debug_hides_ca_contents() {
        let t = TlsOptions {
            extra_ca_pem: Some("-----BEGIN".into()),
            ..Default::default()
        };
        assert!(!format!("{t:?}").contains("BEGIN"));
    }
}
