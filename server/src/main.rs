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

use std::process::ExitCode;

fn main() -> ExitCode {
    cubeserver::cli_main()
}
