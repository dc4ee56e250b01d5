//! The XMPP side of cubeserver (protocol reference §6): c2s listeners (STARTTLS and direct
//! TLS) on tokio-xmpp's xmlstream responder, SASL PLAIN with the user's password or a live
//! session token, resource binding, stream management with resumption, carbons, ping,
//! 1-1 and group routing, MUC join/leave/disco, offline storage, and the REST pushes.
//!
//! - `hub.rs`: online resources, parked SM sessions, rooms, delivery, offline fallback;
//! - `router.rs`: what each stanza does (storage through `db::messages`, markers, edits,
//!   deletes, bounces) and the pushes the REST handlers send;
//! - `session.rs`: one connection from TLS to the end of the stream;
//! - `offline.rs`: the `offline_messages` table.

pub mod hub;
pub mod offline;
pub mod router;
pub mod session;
pub mod strip;
pub mod util;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

pub use hub::{Hub, RESUME_WINDOW};
pub use session::Mode;

use crate::tls::TlsMaterial;

/// How long open connections get to close after a shutdown signal.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// The rustls acceptor serving the generated server certificate.
pub fn acceptor(tls: &TlsMaterial) -> std::io::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_slice_iter(tls.server_cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(std::io::Error::other)?;
    let key = PrivateKeyDer::from_pem_slice(tls.server_key_pem.as_bytes())
        .map_err(std::io::Error::other)?;
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(std::io::Error::other)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A bound XMPP listener.
pub struct Listener {
    pub addr: SocketAddr,
    listener: TcpListener,
    mode: Mode,
}

impl Listener {
    pub async fn bind(host: &str, port: u16, mode: Mode) -> std::io::Result<Self> {
        let listener = TcpListener::bind((host, port)).await?;
        Ok(Self {
            addr: listener.local_addr()?,
            listener,
            mode,
        })
    }

    /// Accepts connections until the hub shuts down, then gives open connections a short
    /// grace period to close their streams.
    pub async fn serve(self, tls: TlsAcceptor, hub: Arc<Hub>) {
        let mut conns = JoinSet::new();
        let stop = hub.shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        tracing::debug!(%peer, mode = ?self.mode, "xmpp connection");
                        let _ = tcp.set_nodelay(true);
                        conns.spawn(session::serve(tcp, self.mode, tls.clone(), hub.clone()));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "xmpp accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                () = &mut stop => break,
            }
        }
        drop(self.listener);
        let drain = async { while conns.join_next().await.is_some() {} };
        if tokio::time::timeout(CLOSE_GRACE, drain).await.is_err() {
            conns.abort_all();
        }
    }
}
