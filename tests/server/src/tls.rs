//! Certificates: at start a fresh self-signed CA and a server certificate signed by it are
//! generated with rcgen and written as `ca.pem`, `server.pem` and `server.key` (PKCS#8) into
//! the cert directory. Clients trust `ca.pem` (e.g. `NODE_EXTRA_CA_CERTS`); XMPP TLS will
//! serve `server.pem` + `server.key`.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::RngCore;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

/// Leaf validity: Apple platforms reject TLS server certificates valid for more than 825 days.
const LEAF_DAYS: u64 = 365;
const CA_DAYS: u64 = 3650;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the generated files are, plus their PEM text.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// The cert directory.
    pub dir: PathBuf,
    /// `true` when the directory was created by us under the temp dir (removed at shutdown).
    pub dir_is_temporary: bool,
    /// `<dir>/ca.pem`: the CA certificate clients should trust.
    pub ca_cert_path: PathBuf,
    /// `<dir>/server.pem`: the server (leaf) certificate.
    pub server_cert_path: PathBuf,
    /// `<dir>/server.key`: the server's private key, PKCS#8 PEM.
    pub server_key_path: PathBuf,
    pub ca_cert_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    /// Subject alternative names of the server certificate (DNS names and IPs, as text).
    pub server_names: Vec<String>,
}

impl TlsMaterial {
    /// Removes the cert directory if we created it.
    pub fn cleanup(&self) {
        if self.dir_is_temporary {
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove the temporary cert dir");
            }
        }
    }
}

/// A fresh directory under the system temp dir for the certificates.
pub fn temp_cert_dir() -> PathBuf {
    let mut r = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut r);
    std::env::temp_dir().join(format!(
        "cubeserver-{}-{}",
        std::process::id(),
        hex::encode(r)
    ))
}

/// Generates the CA and the server certificate for `names` (plus `localhost` and
/// `127.0.0.1`) and writes them into `dir` (created if missing).
pub fn generate(
    dir: &Path,
    dir_is_temporary: bool,
    names: &[&str],
) -> Result<TlsMaterial, TlsError> {
    let now = crate::db::now();
    let (ca_cert, ca_key) = {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "cubeserver test CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "cubeserver");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial());
        set_validity(&mut params, now, CA_DAYS);
        (params.self_signed(&key)?, key)
    };

    let mut sans = BTreeSet::new();
    for name in names.iter().copied().chain(["localhost", "127.0.0.1"]) {
        let name = name.trim().trim_start_matches('[').trim_end_matches(']');
        if !name.is_empty() {
            sans.insert(name.to_owned());
        }
    }
    let mut san_list = Vec::new();
    let mut server_names = Vec::new();
    for name in &sans {
        let san = match name.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => match name.clone().try_into() {
                Ok(dns) => SanType::DnsName(dns),
                Err(e) => {
                    tracing::warn!(name = %name, error = %e, "skipping a name unusable in a certificate");
                    continue;
                }
            },
        };
        san_list.push(san);
        server_names.push(name.clone());
    }

    let leaf_key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        names
            .first()
            .copied()
            .filter(|n| !n.is_empty())
            .unwrap_or("localhost"),
    );
    params.subject_alt_names = san_list;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    set_validity(&mut params, now, LEAF_DAYS);
    let leaf = params.signed_by(&leaf_key, &ca_cert, &ca_key)?;

    std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        path: dir.to_owned(),
        source,
    })?;
    // Report absolute paths: clients run from other working directories.
    let dir = &std::path::absolute(dir).map_err(|source| TlsError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let material = TlsMaterial {
        dir: dir.to_owned(),
        dir_is_temporary,
        ca_cert_path: dir.join("ca.pem"),
        server_cert_path: dir.join("server.pem"),
        server_key_path: dir.join("server.key"),
        ca_cert_pem: ca_cert.pem(),
        server_cert_pem: leaf.pem(),
        server_key_pem: leaf_key.serialize_pem(),
        server_names,
    };
    write_file(&material.ca_cert_path, &material.ca_cert_pem, false)?;
    write_file(&material.server_cert_path, &material.server_cert_pem, false)?;
    write_file(&material.server_key_path, &material.server_key_pem, true)?;
    Ok(material)
}

/// Valid from one day ago (clock skew) to `days` from now.
fn set_validity(params: &mut CertificateParams, now: i64, days: u64) {
    let epoch = date_time_ymd(1970, 1, 1);
    let start = u64::try_from(now).unwrap_or(0).saturating_sub(86_400);
    let end = start.saturating_add((days + 1) * 86_400);
    params.not_before = epoch + Duration::from_secs(start);
    params.not_after = epoch + Duration::from_secs(end);
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes[0] &= 0x7f; // positive
    bytes[0] |= 0x01; // no leading zero byte
    SerialNumber::from_slice(&bytes)
}

fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn writes_ca_and_leaf() {
        let dir = temp_cert_dir();
        let m = generate(&dir, true, &["chat.test", "0.0.0.0", "chat.test"]).unwrap();
        for p in [&m.ca_cert_path, &m.server_cert_path] {
            assert!(std::fs::read_to_string(p)
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----"));
        }
        assert!(std::fs::read_to_string(&m.server_key_path)
            .unwrap()
            .contains("PRIVATE KEY"));
        assert_eq!(
            m.server_names,
            vec!["0.0.0.0", "127.0.0.1", "chat.test", "localhost"]
        );
        // The key parses back.
        KeyPair::from_pem(&m.server_key_pem).unwrap();
        m.cleanup();
        assert!(!dir.exists());
    }
}
