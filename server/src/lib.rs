//! `cubeserver`: a local ConnectyCube-compatible backend for tests and the demo.
//!
//! REST (protocol reference §2–5) in [`rest`], XMPP (§6) in [`xmpp`]: c2s listeners with
//! STARTTLS and direct TLS, started next to the API one in [`run_until`], sharing the
//! database and the [`xmpp::Hub`] (through [`AppState`]) with the REST handlers.
//!
//! Embedding: [`run`] serves until SIGTERM/SIGINT; [`run_until`] until a future resolves.
//! Both call `ready` once every listener is bound, with the addresses and certificate paths.

pub mod config;
pub mod db;
pub mod error;
pub mod password;
pub mod rest;
pub mod state;
pub mod tls;
pub mod xmpp;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::ServiceExt as _;
use serde::Serialize;

pub use config::{parse_args, AppConfig, Command, Config, USAGE};
pub use state::AppState;
pub use tls::TlsMaterial;

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Startup or serving failures.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("database {path}: {source}")]
    Db { path: String, source: db::DbError },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What a started server reports once it accepts connections.
#[derive(Debug, Clone)]
pub struct ReadyInfo {
    /// Base URL of the REST API, e.g. `http://127.0.0.1:41234`.
    pub api_url: String,
    /// The bound REST address.
    pub api_addr: SocketAddr,
    /// The chat (JID) domain.
    pub chat_domain: String,
    /// The generated CA and server certificate.
    pub tls: Arc<TlsMaterial>,
    /// XMPP with STARTTLS (required before authentication).
    pub xmpp_addr: SocketAddr,
    /// XMPP over direct TLS.
    pub xmpp_tls_addr: SocketAddr,
}

#[derive(Serialize)]
struct ReadyLine<'a> {
    api_url: &'a str,
    chat_domain: &'a str,
    ca_cert: String,
    xmpp_port: u16,
    xmpp_tls_port: u16,
}

impl ReadyInfo {
    /// The single JSON line `cubeserver` prints on stdout:
    /// `{"api_url":"http://127.0.0.1:PORT","chat_domain":"...","ca_cert":"/path/ca.pem",
    /// "xmpp_port":P1,"xmpp_tls_port":P2}`. The XMPP listeners are on the API host.
    pub fn ready_line(&self) -> String {
        let line = ReadyLine {
            api_url: &self.api_url,
            chat_domain: &self.chat_domain,
            ca_cert: self.tls.ca_cert_path.display().to_string(),
            xmpp_port: self.xmpp_addr.port(),
            xmpp_tls_port: self.xmpp_tls_addr.port(),
        };
        serde_json::to_string(&line).unwrap_or_default()
    }
}

/// Serves until SIGTERM or SIGINT (Ctrl-C), then shuts down gracefully.
pub async fn run(config: Config, ready: impl FnOnce(&ReadyInfo)) -> Result<(), ServerError> {
    // Install the handlers before anything is reported ready, so a signal sent right after
    // the ready line is never fatal.
    let signal = shutdown_signal()?;
    run_until(config, signal, ready).await
}

/// Serves until `shutdown` resolves: stops accepting, lets in-flight requests finish (up to
/// a few seconds), closes the database (a file database is complete afterwards) and removes
/// a temporary cert directory.
pub async fn run_until(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(&ReadyInfo),
) -> Result<(), ServerError> {
    let database = db::Db::open(&config.db).map_err(|source| ServerError::Db {
        path: config.db.clone(),
        source,
    })?;
    let result = serve(&config, database.clone(), shutdown, ready).await;
    let closed = database.close();
    result?;
    closed.map_err(|source| ServerError::Db {
        path: config.db.clone(),
        source,
    })?;
    tracing::info!("stopped");
    Ok(())
}

async fn serve(
    config: &Config,
    database: db::Db,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(&ReadyInfo),
) -> Result<(), ServerError> {
    let chat_domain = config.chat_domain().to_owned();
    let (cert_dir, temporary) = match &config.cert_dir {
        Some(dir) => (dir.clone(), false),
        None => (tls::temp_cert_dir(), true),
    };
    let tls = Arc::new(tls::generate(
        &cert_dir,
        temporary,
        &[chat_domain.as_str(), config.host.as_str()],
    )?);

    let result = async {
        let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.api_port))
            .await
            .map_err(|source| ServerError::Bind { addr: format!("{}:{}", config.host, config.api_port), source })?;
        let api_addr = listener.local_addr()?;
        let bind_xmpp = |port: Option<u16>, mode| {
            let port = port.unwrap_or(0);
            let host = config.host.clone();
            async move {
                xmpp::Listener::bind(&host, port, mode)
                    .await
                    .map_err(|source| ServerError::Bind { addr: format!("{host}:{port}"), source })
            }
        };
        let starttls = bind_xmpp(config.xmpp_port, xmpp::Mode::StartTls).await?;
        let direct = bind_xmpp(config.xmpp_tls_port, xmpp::Mode::DirectTls).await?;
        let info = ReadyInfo {
            api_url: format!("http://{}", SocketAddr::new(connectable(api_addr.ip()), api_addr.port())),
            api_addr,
            chat_domain: chat_domain.clone(),
            tls: tls.clone(),
            xmpp_addr: starttls.addr,
            xmpp_tls_addr: direct.addr,
        };
        tracing::info!(api = %info.api_url, chat_domain = %info.chat_domain,
            xmpp = %info.xmpp_addr, xmpp_tls = %info.xmpp_tls_addr, "listening");

        let state = AppState::new(database, config);
        for app in state.apps.iter() {
            tracing::debug!(app_id = app.id, "application configured");
        }
        let hub = state.xmpp.clone();
        let acceptor = xmpp::acceptor(&tls)?;
        let xmpp_tasks = [
            tokio::spawn(starttls.serve(acceptor.clone(), hub.clone())),
            tokio::spawn(direct.serve(acceptor, hub.clone())),
        ];
        let app = rest::app(state);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            });
        let mut server = tokio::spawn(async move { server.await });
        ready(&info);

        tokio::select! {
            () = shutdown => {
                tracing::info!("shutting down");
                let _ = stop_tx.send(());
                match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                    Ok(joined) => finish(joined)?,
                    Err(_) => {
                        tracing::warn!("requests still running after the grace period; aborting them");
                        server.abort();
                    }
                }
            }
            joined = &mut server => finish(joined)?,
        }
        // XMPP: stop accepting, close every stream, end parked sessions.
        hub.shut_down();
        for task in xmpp_tasks {
            let _ = task.await;
        }
        Ok(())
    }
    .await;
    tls.cleanup();
    result
}

fn finish(joined: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), ServerError> {
    match joined {
        Ok(result) => Ok(result?),
        Err(e) => Err(ServerError::Io(std::io::Error::other(e.to_string()))),
    }
}

/// A wildcard bind address is reachable through loopback.
fn connectable(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// Resolves on the first SIGTERM or SIGINT. The handlers are installed immediately.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// The `cubeserver` command line (the binary's whole `main`): parses `std::env::args`, logs
/// to stderr (`RUST_LOG`, default `warn`), serves until SIGTERM/SIGINT and prints the ready
/// line on stdout. Exit codes: 0 on a clean stop or `--help`, 2 on argument errors, 1 on
/// startup failures.
pub fn cli_main() -> std::process::ExitCode {
    use std::io::Write;
    use std::process::ExitCode;
    use tracing_subscriber::EnvFilter;

    let config = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(USAGE.as_bytes());
            let _ = out.flush();
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("cubeserver: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cubeserver: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(config, |info| {
        let mut out = std::io::stdout().lock();
        // A closed stdout must not stop the server.
        let _ = writeln!(out, "{}", info.ready_line());
        let _ = out.flush();
    }));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cubeserver failed");
            eprintln!("cubeserver: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// The whole server on a real socket: ready info, one raw HTTP request, clean shutdown.
    #[tokio::test]
    async fn serves_and_stops() {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (info_tx, info_rx) = tokio::sync::oneshot::channel();
        let config = Config {
            chat_domain: Some("chat.test".into()),
            ..Config::default()
        };
        let server = tokio::spawn(run_until(
            config,
            async move {
                let _ = stop_rx.await;
            },
            move |info| {
                let _ = info_tx.send(info.clone());
            },
        ));
        let info: ReadyInfo = info_rx.await.unwrap();
        let line: serde_json::Value = serde_json::from_str(&info.ready_line()).unwrap();
        assert_eq!(line["chat_domain"], "chat.test");
        assert_eq!(line["api_url"], info.api_url.as_str());
        assert!(info.api_url.starts_with("http://127.0.0.1:"));
        assert!(info.tls.ca_cert_path.exists());
        assert!(info.tls.server_names.contains(&"chat.test".to_owned()));
        assert_eq!(line["xmpp_port"], info.xmpp_addr.port());
        assert_eq!(line["xmpp_tls_port"], info.xmpp_tls_addr.port());
        assert_ne!(info.xmpp_addr.port(), 0);
        tokio::net::TcpStream::connect(info.xmpp_tls_addr)
            .await
            .unwrap();

        let body = r#"{"application_id":1,"auth_key":"demo-auth-key"}"#;
        let mut stream = tokio::net::TcpStream::connect(info.api_addr).await.unwrap();
        let request = format!(
            "POST /session.json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 201"), "{response}");
        assert!(response
            .to_ascii_lowercase()
            .contains("cb-token-expirationdate:"));

        stop_tx.send(()).unwrap();
        server.await.unwrap().unwrap();
        assert!(!info.tls.dir.exists(), "temporary cert dir removed");
    }

    #[test]
    fn wildcard_addresses_become_loopback() {
        assert_eq!(
            connectable("0.0.0.0".parse().unwrap()),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(
            connectable("::".parse().unwrap()),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        );
        assert_eq!(
            connectable("10.0.0.1".parse().unwrap()),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}
