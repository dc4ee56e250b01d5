//! `cubeserver`: a local ConnectyCube-compatible backend.
//!
//! ```text
//! cubeserver [--db <PATH|:memory:>] [--host <HOST>] [--api-port <PORT>]
//!            [--xmpp-port <PORT>] [--xmpp-tls-port <PORT>] [--chat-domain <DOMAIN>]
//!            [--app <ID:AUTH_KEY:AUTH_SECRET>]... [--session-ttl <SECS>]
//!            [--cert-dir <DIR>] [--help]
//! ```
//!
//! | Option | Default | Meaning |
//! |---|---|---|
//! | `--db` | `:memory:` | SQLite database file, or `:memory:` |
//! | `--host` | `127.0.0.1` | listen address |
//! | `--api-port` | `0` (a free port) | REST port |
//! | `--xmpp-port` | `0` (a free port) | XMPP c2s; STARTTLS is required before authentication |
//! | `--xmpp-tls-port` | `0` (a free port) | XMPP c2s over direct TLS |
//! | `--chat-domain` | the `--host` value | chat (JID) domain |
//! | `--app` | `1:demo-auth-key:demo-auth-secret` | an application; repeatable; the secret may be empty (then signatures are not checked) |
//! | `--session-ttl` | `7200` | token lifetime in seconds, extended by every request |
//! | `--cert-dir` | fresh dir under the temp dir (removed on clean exit) | where `ca.pem`, `ca.key`, `server.pem`, `server.key` are kept; a restart reuses the CA and a still fitting server certificate |
//! | `--help` | | print usage on stdout and exit 0 |
//!
//! `--flag=value` works too. When every listener is ready, exactly one JSON line goes to
//! stdout (and is flushed):
//!
//! ```text
//! {"api_url":"http://127.0.0.1:PORT","chat_domain":"...","ca_cert":"/path/to/ca.pem","xmpp_port":P,"xmpp_tls_port":Q}
//! ```
//!
//! Nothing else is ever written to stdout. Logs go to stderr; the level comes from
//! `RUST_LOG` (default `warn`). SIGTERM or SIGINT stops the server gracefully (exit code 0).
//! Argument errors exit with 2, startup failures with 1.
//!
//! Test-only endpoint (loopback peers only, no session): `POST /_admin/expire_sessions`
//! expires every token, answering `{"expired": n}`.

use std::io::Write;
use std::process::ExitCode;

use cubeserver::{parse_args, Command, USAGE};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
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
    let result = runtime.block_on(cubeserver::run(config, |info| {
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
