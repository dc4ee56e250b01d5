//! Server configuration and the hand-written command-line parser.

use std::path::PathBuf;

/// The usage text printed by `--help` and after an argument error.
pub const USAGE: &str = "\
Usage: cubeserver [OPTIONS]

A local ConnectyCube-compatible backend. When every listener is ready it prints one JSON line
on stdout: {\"api_url\": ..., \"chat_domain\": ..., \"ca_cert\": ..., \"xmpp_port\": ...,
\"xmpp_tls_port\": ...}. Logs go to stderr (RUST_LOG,
default `warn`). SIGTERM or SIGINT stops it cleanly.

Options:
  --db <PATH|:memory:>        SQLite database file (default :memory:)
  --host <HOST>               address to listen on (default 127.0.0.1)
  --api-port <PORT>           REST port; 0 picks a free port (default 0)
  --xmpp-port <PORT>          XMPP port (STARTTLS required); 0 picks a free port (default 0)
  --xmpp-tls-port <PORT>      XMPP direct-TLS port; 0 picks a free port (default 0)
  --chat-domain <DOMAIN>      chat (JID) domain (default: the --host value)
  --app <ID:AUTH_KEY:AUTH_SECRET>
                              an application; repeatable; AUTH_SECRET may be empty
                              (default: the demo app 1:demo-auth-key:demo-auth-secret)
  --session-ttl <SECS>        session token lifetime, extended on every request (default 7200)
  --cert-dir <DIR>            where ca.pem, ca.key, server.pem, server.key are kept;
                              a restart reuses the CA (and a still fitting server cert)
                              (default: a fresh directory under the system temp dir,
                              removed again on a clean shutdown)
  --help                      print this text
";

/// The application seeded when no `--app` is given.
pub const DEMO_APP_ID: u64 = 1;
/// The demo application's auth key.
pub const DEMO_AUTH_KEY: &str = "demo-auth-key";
/// The demo application's auth secret.
pub const DEMO_AUTH_SECRET: &str = "demo-auth-secret";

/// One ConnectyCube application (`--app ID:AUTH_KEY:AUTH_SECRET`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfig {
    pub id: u64,
    pub auth_key: String,
    /// Empty when unknown: signatures are then accepted without verification.
    pub auth_secret: String,
}

impl AppConfig {
    /// The documented demo application `1:demo-auth-key:demo-auth-secret`.
    pub fn demo() -> Self {
        Self {
            id: DEMO_APP_ID,
            auth_key: DEMO_AUTH_KEY.to_owned(),
            auth_secret: DEMO_AUTH_SECRET.to_owned(),
        }
    }

    /// Parses `ID:AUTH_KEY:AUTH_SECRET` (the secret may be empty or left out, and may itself
    /// contain `:`).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut parts = spec.splitn(3, ':');
        let id = parts.next().unwrap_or_default();
        let auth_key = parts.next().unwrap_or_default();
        let auth_secret = parts.next().unwrap_or_default();
        let id: u64 = id
            .parse()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| format!("--app {spec:?}: ID must be a positive integer"))?;
        if auth_key.is_empty() {
            return Err(format!("--app {spec:?}: AUTH_KEY must not be empty"));
        }
        Ok(Self {
            id,
            auth_key: auth_key.to_owned(),
            auth_secret: auth_secret.to_owned(),
        })
    }
}

/// Everything `cubeserver` can be told on its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// SQLite database path, or `:memory:`.
    pub db: String,
    /// Listen address (IP or host name).
    pub host: String,
    /// REST port; 0 picks a free one.
    pub api_port: u16,
    /// XMPP (STARTTLS) port; `None` or 0 picks a free one.
    pub xmpp_port: Option<u16>,
    /// XMPP direct-TLS port; `None` or 0 picks a free one.
    pub xmpp_tls_port: Option<u16>,
    /// Chat (JID) domain; `None` means "the host".
    pub chat_domain: Option<String>,
    /// Applications; empty means "the demo app" (see [`Config::effective_apps`]).
    pub apps: Vec<AppConfig>,
    /// Session lifetime in seconds, extended by every authenticated request.
    pub session_ttl: u64,
    /// Where the CA and server certificate are written; `None` = a fresh temp directory.
    pub cert_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            db: ":memory:".to_owned(),
            host: "127.0.0.1".to_owned(),
            api_port: 0,
            xmpp_port: None,
            xmpp_tls_port: None,
            chat_domain: None,
            apps: Vec::new(),
            session_ttl: 7200,
            cert_dir: None,
        }
    }
}

impl Config {
    /// The chat domain: `--chat-domain`, or the host.
    pub fn chat_domain(&self) -> &str {
        self.chat_domain.as_deref().unwrap_or(&self.host)
    }

    /// The configured applications, or the demo app when none was given.
    pub fn effective_apps(&self) -> Vec<AppConfig> {
        if self.apps.is_empty() {
            vec![AppConfig::demo()]
        } else {
            self.apps.clone()
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Start the server.
    Run(Config),
    /// Print [`USAGE`] and exit.
    Help,
}

/// Parses the arguments after the program name. Both `--flag value` and `--flag=value` work.
pub fn parse_args<I, S>(args: I) -> Result<Command, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut config = Config::default();
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if flag == "--help" || flag == "-h" {
            return Ok(Command::Help);
        }
        if !flag.starts_with("--") {
            return Err(format!("unexpected argument {arg:?}"));
        }
        let known = [
            "--db",
            "--host",
            "--api-port",
            "--xmpp-port",
            "--xmpp-tls-port",
            "--chat-domain",
            "--app",
            "--session-ttl",
            "--cert-dir",
        ];
        if !known.contains(&flag.as_str()) {
            return Err(format!("unknown option {flag}"));
        }
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or_else(|| format!("{flag} needs a value"))?,
        };
        match flag.as_str() {
            "--db" => config.db = non_empty(&flag, value)?,
            "--host" => config.host = non_empty(&flag, value)?,
            "--api-port" => config.api_port = port(&flag, &value)?,
            "--xmpp-port" => config.xmpp_port = Some(port(&flag, &value)?),
            "--xmpp-tls-port" => config.xmpp_tls_port = Some(port(&flag, &value)?),
            "--chat-domain" => config.chat_domain = Some(non_empty(&flag, value)?),
            "--app" => {
                let app = AppConfig::parse(&value)?;
                if config.apps.iter().any(|a| a.id == app.id) {
                    return Err(format!("--app: application {} given twice", app.id));
                }
                config.apps.push(app);
            }
            "--session-ttl" => {
                config.session_ttl = value.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    format!("{flag}: expected a positive number of seconds, got {value:?}")
                })?;
            }
            "--cert-dir" => config.cert_dir = Some(PathBuf::from(non_empty(&flag, value)?)),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(Command::Run(config))
}

fn non_empty(flag: &str, value: String) -> Result<String, String> {
    if value.is_empty() {
        Err(format!("{flag} must not be empty"))
    } else {
        Ok(value)
    }
}

fn port(flag: &str, value: &str) -> Result<u16, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: expected a port number (0-65535), got {value:?}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, String> {
        match parse_args(args.iter().copied())? {
            Command::Run(c) => Ok(c),
            Command::Help => Err("help".to_owned()),
        }
    }

    #[test]
    fn defaults() {
        let c = run(&[]).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.db, ":memory:");
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.api_port, 0);
        assert_eq!(c.session_ttl, 7200);
        assert_eq!(c.chat_domain(), "127.0.0.1");
        assert_eq!(c.effective_apps(), vec![AppConfig::demo()]);
    }

    #[test]
    fn all_options() {
        let c = run(&[
            "--db",
            "/tmp/x.db",
            "--host=0.0.0.0",
            "--api-port",
            "8080",
            "--xmpp-port",
            "5222",
            "--xmpp-tls-port=5223",
            "--chat-domain",
            "chat.local",
            "--app",
            "7:key-7:secret:with:colons",
            "--app=8:key-8:",
            "--app",
            "9:key-9",
            "--session-ttl",
            "60",
            "--cert-dir",
            "/tmp/certs",
        ])
        .unwrap();
        assert_eq!(c.db, "/tmp/x.db");
        assert_eq!(c.host, "0.0.0.0");
        assert_eq!(c.api_port, 8080);
        assert_eq!(c.xmpp_port, Some(5222));
        assert_eq!(c.xmpp_tls_port, Some(5223));
        assert_eq!(c.chat_domain(), "chat.local");
        assert_eq!(c.session_ttl, 60);
        assert_eq!(c.cert_dir, Some(PathBuf::from("/tmp/certs")));
        assert_eq!(c.apps.len(), 3);
        assert_eq!(c.apps[0].auth_secret, "secret:with:colons");
        assert_eq!(
            c.apps[1],
            AppConfig {
                id: 8,
                auth_key: "key-8".into(),
                auth_secret: String::new()
            }
        );
        assert_eq!(c.apps[2].auth_secret, "");
        assert_eq!(c.effective_apps().len(), 3);
    }

    #[test]
    fn help_wins() {
        assert_eq!(parse_args(["--api-port", "1", "--help"]), Ok(Command::Help));
        assert_eq!(parse_args(["-h"]), Ok(Command::Help));
    }

    #[test]
    fn errors() {
        for bad in [
            &["--nope"][..],
            &["positional"],
            &["--api-port"],
            &["--api-port", "70000"],
            &["--api-port", "x"],
            &["--session-ttl", "0"],
            &["--session-ttl", "-5"],
            &["--app", "x:key:s"],
            &["--app", "0:key:s"],
            &["--app", "3::s"],
            &["--app", "3"],
            &["--app", "3:a:", "--app", "3:b:"],
            &["--db", ""],
        ] {
            assert!(run(bad).is_err(), "{bad:?} should fail");
        }
    }
}
