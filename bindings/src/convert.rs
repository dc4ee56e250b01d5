//! Exported records and enums, and their `From` conversions to and from `cubechat-core`.

use std::time::Duration;

use cubechat_core as core;
use cubechat_core::UserModel;

/// Client configuration. Only the application credentials and `api_url` are required.
/// Printing it (`str()`, `toString()`, `description`) never shows the auth secret.
#[derive(Clone, uniffi::Record)]
#[uniffi::export(Display, Debug)]
pub struct ClientConfig {
    /// The ConnectyCube application id.
    pub app_id: u64,
    /// The application's auth key.
    pub auth_key: String,
    /// The application's auth secret; when set, session requests are signed.
    #[uniffi(default)]
    pub auth_secret: Option<String>,
    /// REST base URL, e.g. `https://api.connectycube.com`. Plain `http://` is allowed only to
    /// loopback unless `insecure_allow_plaintext` is set.
    pub api_url: String,
    /// The chat (JID) domain. Default `chat.connectycube.com`.
    #[uniffi(default)]
    pub chat_domain: Option<String>,
    /// The chat host to dial, when it differs from the domain.
    #[uniffi(default)]
    pub chat_host: Option<String>,
    /// XMPP port with STARTTLS.
    #[uniffi(default = 5222)]
    pub chat_port: u16,
    /// XMPP port with direct TLS.
    #[uniffi(default = 5223)]
    pub chat_tls_port: u16,
    /// Use direct TLS instead of STARTTLS.
    #[uniffi(default = false)]
    pub chat_direct_tls: bool,
    /// Extra trusted CA certificates (PEM), added to the bundled Mozilla roots.
    #[uniffi(default)]
    pub extra_ca_pem: Option<String>,
    /// **Insecure**: accept any server certificate. Debugging only.
    #[uniffi(default = false)]
    pub insecure_accept_any_certificate: bool,
    /// **Insecure**: allow unencrypted HTTP/XMPP to non-loopback hosts.
    #[uniffi(default = false)]
    pub insecure_allow_plaintext: bool,
    /// Connection set-up timeout in milliseconds.
    #[uniffi(default = 15000)]
    pub connect_timeout_ms: u64,
    /// Whole-request timeout in milliseconds.
    #[uniffi(default = 30000)]
    pub request_timeout_ms: u64,
    /// Chat keep-alive ping interval in milliseconds.
    #[uniffi(default = 60000)]
    pub ping_interval_ms: u64,
    /// Reconnection policy of the chat connection; `None` = defaults.
    #[uniffi(default)]
    pub reconnect: Option<ReconnectConfig>,
    /// **Insecure**: connect to chat without TLS and send the password or token in plain
    /// text. Test servers only; by default a chat server without STARTTLS is refused.
    #[uniffi(default = false)]
    pub insecure_chat_plaintext: bool,
    /// Send a delivered status automatically for each received markable message.
    #[uniffi(default = true)]
    pub auto_send_delivered: bool,
    /// After `send_typing(composing = true)`, "stopped typing" is sent by itself after this
    /// many milliseconds without another call.
    #[uniffi(default = 30000)]
    pub typing_idle_ms: u64,
    /// Folder for the local stores (one SQLite file per user, created when missing), e.g.
    /// the app's files directory. `None` keeps the store in memory: the dialog list and
    /// timelines still work, but nothing (not even the send queue) survives the process.
    #[uniffi(default)]
    pub store_dir: Option<String>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("app_id", &self.app_id)
            .field("auth_key", &self.auth_key)
            .field(
                "auth_secret",
                &self.auth_secret.as_ref().map(|_| core::config::Redacted),
            )
            .field("api_url", &self.api_url)
            .field("chat_domain", &self.chat_domain)
            .field("chat_host", &self.chat_host)
            .field("chat_port", &self.chat_port)
            .field("chat_tls_port", &self.chat_tls_port)
            .field("chat_direct_tls", &self.chat_direct_tls)
            .field(
                "extra_ca_pem_bytes",
                &self.extra_ca_pem.as_ref().map(String::len),
            )
            .field(
                "insecure_accept_any_certificate",
                &self.insecure_accept_any_certificate,
            )
            .field("insecure_allow_plaintext", &self.insecure_allow_plaintext)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("ping_interval_ms", &self.ping_interval_ms)
            .field("reconnect", &self.reconnect)
            .field("insecure_chat_plaintext", &self.insecure_chat_plaintext)
            .field("auto_send_delivered", &self.auto_send_delivered)
            .field("typing_idle_ms", &self.typing_idle_ms)
            .field("store_dir", &self.store_dir)
            .finish()
    }
}

impl std::fmt::Display for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Exponential backoff with jitter for the chat connection.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ReconnectConfig {
    /// Reconnect at all.
    #[uniffi(default = true)]
    pub enabled: bool,
    /// Milliseconds to wait after the first failed attempt (the first attempt after a cut
    /// goes at once); each further failure multiplies it by `multiplier`.
    #[uniffi(default = 1000)]
    pub initial_delay_ms: u64,
    /// Largest delay in milliseconds.
    #[uniffi(default = 60000)]
    pub max_delay_ms: u64,
    /// Growth factor between attempts (≥ 1).
    #[uniffi(default = 2.0)]
    pub multiplier: f64,
    /// Random spread 0–1 applied to each delay.
    #[uniffi(default = 0.3)]
    pub jitter: f64,
    /// Give up after this many failed attempts in a row (failed logins, and connections cut
    /// before `stable_after_ms`); `None` = never.
    #[uniffi(default)]
    pub max_attempts: Option<u32>,
    /// Milliseconds a connection must stay up to count as stable: only a cut after that
    /// restarts the backoff at the first attempt (a shorter-lived one counts as a failed
    /// attempt, so the delays keep growing). 0 = every login restarts it.
    #[uniffi(default = 30000)]
    pub stable_after_ms: u64,
}

impl From<ClientConfig> for core::Config {
    fn from(c: ClientConfig) -> Self {
        let defaults = core::ChatEndpoint::default();
        let reconnect = c.reconnect.map(Into::into).unwrap_or_default();
        core::Config {
            app_id: c.app_id,
            auth_key: c.auth_key,
            auth_secret: c.auth_secret,
            api_url: c.api_url,
            chat: core::ChatEndpoint {
                host: c.chat_host.unwrap_or_default(),
                domain: c.chat_domain.unwrap_or(defaults.domain),
                port: c.chat_port,
                tls_port: c.chat_tls_port,
                direct_tls: c.chat_direct_tls,
                insecure_plaintext: c.insecure_chat_plaintext,
            },
            tls: core::TlsOptions {
                extra_ca_pem: c.extra_ca_pem,
                insecure_accept_any_certificate: c.insecure_accept_any_certificate,
                insecure_allow_plaintext: c.insecure_allow_plaintext,
            },
            timeouts: core::Timeouts {
                connect: Duration::from_millis(c.connect_timeout_ms),
                request: Duration::from_millis(c.request_timeout_ms),
                ping_interval: Duration::from_millis(c.ping_interval_ms),
            },
            reconnect,
            chat_options: core::ChatOptions {
                auto_send_delivered: c.auto_send_delivered,
                typing_idle: Duration::from_millis(c.typing_idle_ms),
            },
            store_dir: c.store_dir.map(Into::into),
        }
    }
}

impl From<ReconnectConfig> for core::ReconnectPolicy {
    fn from(r: ReconnectConfig) -> Self {
        Self {
            enabled: r.enabled,
            initial_delay: Duration::from_millis(r.initial_delay_ms),
            max_delay: Duration::from_millis(r.max_delay_ms),
            multiplier: r.multiplier,
            jitter: r.jitter,
            max_attempts: r.max_attempts,
            stable_after: Duration::from_millis(r.stable_after_ms),
        }
    }
}

/// How a user identifies at log-in.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum LoginId {
    /// By login name.
    Login {
        /// The login name.
        login: String,
    },
    /// By e-mail address.
    Email {
        /// The e-mail address.
        email: String,
    },
}

impl From<LoginId> for core::LoginId {
    fn from(l: LoginId) -> Self {
        match l {
            LoginId::Login { login } => Self::Login(login),
            LoginId::Email { email } => Self::Email(email),
        }
    }
}

/// A ConnectyCube user.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct User {
    /// Numeric user id.
    pub id: u64,
    /// The login name.
    pub login: Option<String>,
    /// The e-mail address.
    pub email: Option<String>,
    /// The full name shown to other users.
    pub full_name: Option<String>,
    /// The phone number.
    pub phone: Option<String>,
    /// The website URL.
    pub website: Option<String>,
    /// An id of the user in the app's own system.
    pub external_id: Option<String>,
    /// Free-form app data.
    pub custom_data: Option<String>,
    /// Avatar blob UID or URL.
    pub avatar: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Minutes offset from UTC.
    pub timezone: Option<i64>,
    /// ISO-8601 times.
    pub created_at: Option<String>,
    /// When it last changed (ISO 8601, as the server sent it).
    pub updated_at: Option<String>,
    /// When the user last made a request (ISO 8601).
    pub last_request_at: Option<String>,
}

impl From<core::User> for User {
    fn from(u: core::User) -> Self {
        let tags = u.tags();
        Self {
            id: u.id,
            login: u.login,
            email: u.email,
            full_name: u.full_name,
            phone: u.phone,
            website: u.website,
            external_id: u.external_id,
            custom_data: u.custom_data,
            avatar: u.avatar,
            tags,
            timezone: u.timezone,
            created_at: u.created_at,
            updated_at: u.updated_at,
            last_request_at: u.last_request_at,
        }
    }
}

/// The profile of a user to sign up. The password is passed separately, so it never sits
/// in a record that an app might print.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct NewUser {
    /// Login name; a login or an email is required.
    #[uniffi(default)]
    pub login: Option<String>,
    /// The e-mail address.
    #[uniffi(default)]
    pub email: Option<String>,
    /// The full name shown to other users.
    #[uniffi(default)]
    pub full_name: Option<String>,
    /// The phone number.
    #[uniffi(default)]
    pub phone: Option<String>,
    /// The website URL.
    #[uniffi(default)]
    pub website: Option<String>,
    /// An id of the user in the app's own system.
    #[uniffi(default)]
    pub external_id: Option<String>,
    /// Free-form data the app stores with the user (often JSON).
    #[uniffi(default)]
    pub custom_data: Option<String>,
    /// The avatar: a URL or a cloud file uid.
    #[uniffi(default)]
    pub avatar: Option<String>,
    /// Tags.
    #[uniffi(default)]
    pub tags: Vec<String>,
    /// The UTC offset in hours (ConnectyCube's `timezone`).
    #[uniffi(default)]
    pub timezone: Option<i64>,
}

impl NewUser {
    pub(crate) fn into_params(self, password: String) -> core::UserParams {
        core::UserParams {
            login: self.login,
            email: self.email,
            password: Some(password),
            old_password: None,
            full_name: self.full_name,
            phone: self.phone,
            website: self.website,
            external_id: self.external_id,
            custom_data: self.custom_data,
            avatar: self.avatar,
            tag_list: core::model::join_tags(&self.tags),
            timezone: self.timezone,
        }
    }
}

/// A REST session. The token itself is not here (records get printed); read it with
/// `ChatClient.session_token()`.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Session {
    /// Session id.
    pub id: u64,
    /// The logged-in user, 0 for an application session.
    pub user_id: u64,
    /// The application's id.
    pub application_id: u64,
    /// When it was created (ISO 8601, as the server sent it).
    pub created_at: Option<String>,
    /// When it last changed (ISO 8601, as the server sent it).
    pub updated_at: Option<String>,
    /// The user, when the server included it.
    pub user: Option<User>,
}

impl From<core::Session> for Session {
    fn from(s: core::Session) -> Self {
        Self {
            id: s.id,
            user_id: s.user_id,
            application_id: s.application_id,
            created_at: s.created_at,
            updated_at: s.updated_at,
            user: s.user.map(Into::into),
        }
    }
}

/// What happens to the session.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum SessionEvent {
    /// Delivered first on subscribe: the session at that moment (`None` = no session).
    Current {
        /// The logged-in user's id, if a user is logged in.
        user_id: Option<u64>,
    },
    /// A session was created or adopted; `user_id` 0 for an application session.
    Started {
        /// The logged-in user's id (0 for an application session).
        user_id: u64,
    },
    /// An expired session was renewed transparently.
    Renewed {
        /// The logged-in user's id (0 for an application session).
        user_id: u64,
    },
    /// The user logged out; the application session remains.
    LoggedOut,
    /// The session expired and could not be renewed: log in again.
    Expired {
        /// Why the session ended (no secret).
        reason: String,
    },
    /// The session was destroyed on request.
    Destroyed,
}

impl From<core::SessionEvent> for SessionEvent {
    fn from(e: core::SessionEvent) -> Self {
        match e {
            core::SessionEvent::Started { user_id } => Self::Started { user_id },
            core::SessionEvent::Renewed { user_id } => Self::Renewed { user_id },
            core::SessionEvent::LoggedOut => Self::LoggedOut,
            core::SessionEvent::Expired { reason } => Self::Expired { reason },
            core::SessionEvent::Destroyed => Self::Destroyed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_a_config_or_credential_hides_secrets() {
        let cfg = ClientConfig {
            app_id: 7,
            auth_key: "key-7".into(),
            auth_secret: Some("s3cr3t-auth".into()),
            api_url: "http://127.0.0.1:1".into(),
            chat_domain: None,
            chat_host: None,
            chat_port: 5222,
            chat_tls_port: 5223,
            chat_direct_tls: false,
            extra_ca_pem: Some("-----BEGIN CERTIFICATE-----".into()),
            insecure_accept_any_certificate: false,
            insecure_allow_plaintext: false,
            connect_timeout_ms: 1,
            request_timeout_ms: 1,
            ping_interval_ms: 1,
            reconnect: None,
            insecure_chat_plaintext: false,
            auto_send_delivered: true,
            typing_idle_ms: 1,
            store_dir: None,
        };
        let auth = crate::realtime::ChatAuth::Password {
            user_id: Some(5),
            password: "pa55-word".into(),
        };
        let core_cfg: core::Config = cfg.clone().into();
        for shown in [
            format!("{cfg:?}"),
            cfg.to_string(),
            format!("{auth:?}"),
            auth.to_string(),
            format!("{core_cfg:?}"),
        ] {
            assert!(
                !shown.contains("s3cr3t") && !shown.contains("pa55") && !shown.contains("BEGIN"),
                "{shown}"
            );
            assert!(shown.contains("<redacted>"), "{shown}");
        }
    }
}
