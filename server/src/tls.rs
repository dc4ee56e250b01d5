//! Certificates: a self-signed CA and a server (leaf) certificate signed by it, made with
//! rcgen and kept in the cert directory as `ca.pem`, `ca.key`, `server.pem` and
//! `server.key` (keys PKCS#8, mode 0600). Clients trust `ca.pem` (e.g.
//! `NODE_EXTRA_CA_CERTS`); XMPP TLS serves `server.pem` + `server.key`.
//!
//! A restart with the same directory keeps what is there: the CA when it parses, its key
//! matches and it stays valid for [`CA_MARGIN`] more; the leaf too when it chains to that CA,
//! matches its key, covers every host name asked for and stays valid for [`LEAF_MARGIN`]
//! more. A leaf that does not qualify is made again from the kept CA, so clients that
//! trusted the CA keep connecting; only an unusable CA is replaced (with a new leaf).

use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::RngCore;
use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// Leaf validity: Apple platforms reject TLS server certificates valid for more than 825 days.
const LEAF_DAYS: u64 = 365;
const CA_DAYS: u64 = 3650;
/// A kept CA must stay valid at least this much longer (seconds), else it is replaced.
const CA_MARGIN: i64 = 30 * 86_400;
/// A kept leaf must stay valid at least this much longer (seconds), else it is re-made.
const LEAF_MARGIN: i64 = 7 * 86_400;

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
    /// `<dir>/ca.key`: the CA's private key, PKCS#8 PEM (kept to re-sign the leaf).
    pub ca_key_path: PathBuf,
    /// `<dir>/server.pem`: the server (leaf) certificate.
    pub server_cert_path: PathBuf,
    /// `<dir>/server.key`: the server's private key, PKCS#8 PEM.
    pub server_key_path: PathBuf,
    pub ca_cert_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    /// Subject alternative names of the server certificate (DNS names and IPs, as text).
    pub server_names: Vec<String>,
    /// Whether the CA was taken from the directory (`false`: made at this start).
    pub ca_reused: bool,
    /// Whether the server certificate was taken from the directory.
    pub leaf_reused: bool,
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

/// The CA and the server certificate for `names` (plus `localhost` and `127.0.0.1`) in
/// `dir` (created if missing): kept from an earlier start when still usable (see the module
/// documentation), made and written otherwise.
pub fn generate(
    dir: &Path,
    dir_is_temporary: bool,
    names: &[&str],
) -> Result<TlsMaterial, TlsError> {
    let now = crate::db::now();
    let (san_list, server_names) = subject_alt_names(names);
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        path: dir.to_owned(),
        source,
    })?;
    // Report absolute paths: clients run from other working directories.
    let dir = &std::path::absolute(dir).map_err(|source| TlsError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let ca_cert_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca.key");
    let server_cert_path = dir.join("server.pem");
    let server_key_path = dir.join("server.key");

    let kept_ca = load_ca(&ca_cert_path, &ca_key_path, now);
    let ca_reused = kept_ca.is_some();
    let (ca_cert_pem, ca_key) = match kept_ca {
        Some(kept) => kept,
        None => {
            let key = KeyPair::generate()?;
            let mut params = ca_params();
            params.serial_number = Some(random_serial());
            set_validity(&mut params, now, CA_DAYS);
            let pem = params.self_signed(&key)?.pem();
            write_file(&ca_cert_path, &pem, false)?;
            write_file(&ca_key_path, &key.serialize_pem(), true)?;
            (pem, key)
        }
    };
    let kept_leaf = if ca_reused {
        load_leaf(
            &ca_cert_pem,
            &server_cert_path,
            &server_key_path,
            &server_names,
            now,
        )
    } else {
        None
    };
    let leaf_reused = kept_leaf.is_some();
    let (server_cert_pem, server_key_pem) = match kept_leaf {
        Some(kept) => kept,
        None => {
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
            // Only the issuer's name, key usages and key matter for signing: the CA's own
            // certificate is rebuilt from the same parameters and its (kept) key.
            let issuer: Certificate = ca_params().self_signed(&ca_key)?;
            let leaf = params.signed_by(&leaf_key, &issuer, &ca_key)?;
            let (cert_pem, key_pem) = (leaf.pem(), leaf_key.serialize_pem());
            write_file(&server_cert_path, &cert_pem, false)?;
            write_file(&server_key_path, &key_pem, true)?;
            (cert_pem, key_pem)
        }
    };
    if ca_reused {
        tracing::info!(
            dir = %dir.display(),
            leaf_reused,
            "kept the CA of the cert dir"
        );
    }
    Ok(TlsMaterial {
        dir: dir.to_owned(),
        dir_is_temporary,
        ca_cert_path,
        ca_key_path,
        server_cert_path,
        server_key_path,
        ca_cert_pem,
        server_cert_pem,
        server_key_pem,
        server_names,
        ca_reused,
        leaf_reused,
    })
}

/// The CA's name and usages (its serial and validity are set where it is made).
fn ca_params() -> CertificateParams {
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
    params
}

/// The SANs for `names` plus `localhost` and `127.0.0.1`, and the same as text, sorted.
fn subject_alt_names(names: &[&str]) -> (Vec<SanType>, Vec<String>) {
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
    (san_list, server_names)
}

/// The kept CA (PEM and key) when both files parse, the key is the certificate's, and the
/// certificate stays valid for [`CA_MARGIN`]. Anything else is logged and replaced.
fn load_ca(cert_path: &Path, key_path: &Path, now: i64) -> Option<(String, KeyPair)> {
    if !cert_path.exists() && !key_path.exists() {
        return None;
    }
    let checked = (|| -> Result<(String, KeyPair), String> {
        let pem = std::fs::read_to_string(cert_path).map_err(|e| e.to_string())?;
        let key_pem = std::fs::read_to_string(key_path).map_err(|e| e.to_string())?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| e.to_string())?;
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| e.to_string())?;
        let (_, not_after) = validity(&der).ok_or("unreadable validity")?;
        if not_after < now + CA_MARGIN {
            return Err("expired or about to expire".into());
        }
        // The key must be the certificate's: a leaf signed with it must verify.
        let probe_key = KeyPair::generate().map_err(|e| e.to_string())?;
        let mut probe =
            CertificateParams::new(vec!["localhost".to_owned()]).map_err(|e| e.to_string())?;
        set_validity(&mut probe, now, 2);
        let issuer = ca_params().self_signed(&key).map_err(|e| e.to_string())?;
        let leaf = probe
            .signed_by(&probe_key, &issuer, &key)
            .map_err(|e| e.to_string())?;
        verify_leaf(&der, leaf.der(), &["localhost".to_owned()], now)?;
        Ok((pem, key))
    })();
    match checked {
        Ok(kept) => Some(kept),
        Err(e) => {
            tracing::warn!(dir = %cert_path.display(), reason = %e, "replacing the CA of the cert dir");
            None
        }
    }
}

/// The kept server certificate and key (PEM) when they chain to the CA, belong together,
/// cover every name and stay valid for [`LEAF_MARGIN`].
fn load_leaf(
    ca_pem: &str,
    cert_path: &Path,
    key_path: &Path,
    names: &[String],
    now: i64,
) -> Option<(String, String)> {
    let checked = (|| -> Result<(String, String), String> {
        let pem = std::fs::read_to_string(cert_path).map_err(|e| e.to_string())?;
        let key_pem = std::fs::read_to_string(key_path).map_err(|e| e.to_string())?;
        let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|e| e.to_string())?;
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| e.to_string())?;
        verify_leaf(&ca, &der, names, now)?;
        verify_leaf(&ca, &der, names, now + LEAF_MARGIN)
            .map_err(|e| format!("about to expire: {e}"))?;
        // The key must be the certificate's.
        let key = KeyPair::from_pem(&key_pem).map_err(|e| e.to_string())?;
        let rng = ring::rand::SystemRandom::new();
        let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &key.serialize_der(),
            &rng,
        )
        .map_err(|e| e.to_string())?;
        let msg = b"cubeserver key check";
        let sig = signer.sign(&rng, msg).map_err(|e| e.to_string())?;
        webpki::EndEntityCert::try_from(&der)
            .and_then(|ee| ee.verify_signature(webpki::ring::ECDSA_P256_SHA256, msg, sig.as_ref()))
            .map_err(|e| format!("key does not match: {e}"))?;
        Ok((pem, key_pem))
    })();
    match checked {
        Ok(kept) => Some(kept),
        Err(e) => {
            if cert_path.exists() {
                tracing::info!(path = %cert_path.display(), reason = %e, "making a new server certificate");
            }
            None
        }
    }
}

/// `leaf` is a server certificate signed by `ca`, valid at `at` (Unix seconds) for every
/// name in `names`.
fn verify_leaf(
    ca: &CertificateDer<'_>,
    leaf: &CertificateDer<'_>,
    names: &[String],
    at: i64,
) -> Result<(), String> {
    let anchor = webpki::anchor_from_trusted_cert(ca).map_err(|e| e.to_string())?;
    let ee = webpki::EndEntityCert::try_from(leaf).map_err(|e| e.to_string())?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(at).unwrap_or(0)));
    ee.verify_for_usage(
        &[webpki::ring::ECDSA_P256_SHA256],
        &[anchor],
        &[],
        time,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| e.to_string())?;
    for name in names {
        let server_name = ServerName::try_from(name.as_str()).map_err(|e| e.to_string())?;
        ee.verify_is_valid_for_subject_name(&server_name)
            .map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// `(notBefore, notAfter)` in Unix seconds from a certificate's DER (X.509 `tbsCertificate`
/// → `validity`); `None` when it cannot be read.
fn validity(der: &[u8]) -> Option<(i64, i64)> {
    /// One DER element: `(tag, contents, what follows)`.
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let tag = *b.first()?;
        let l0 = *b.get(1)?;
        let (len, header) = if l0 < 0x80 {
            (usize::from(l0), 2)
        } else {
            let n = usize::from(l0 & 0x7f);
            if n == 0 || n > 4 {
                return None;
            }
            let mut len = 0usize;
            for i in 0..n {
                len = (len << 8) | usize::from(*b.get(2 + i)?);
            }
            (len, 2 + n)
        };
        let end = header.checked_add(len)?;
        Some((tag, b.get(header..end)?, b.get(end..)?))
    }
    fn time(tag: u8, v: &[u8]) -> Option<i64> {
        let s = std::str::from_utf8(v).ok()?.strip_suffix('Z')?;
        let (year, rest) = match tag {
            0x17 => {
                let yy: i64 = s.get(..2)?.parse().ok()?;
                (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
            }
            0x18 => (s.get(..4)?.parse().ok()?, s.get(4..)?),
            _ => return None,
        };
        if rest.len() != 10 || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let num = |r: std::ops::Range<usize>| rest.get(r)?.parse::<i64>().ok();
        let (mo, d, h, mi, se) = (num(0..2)?, num(2..4)?, num(4..6)?, num(6..8)?, num(8..10)?);
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = if mo <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(days * 86_400 + h * 3600 + mi * 60 + se)
    }
    let (0x30, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    if let Some((0xa0, _, after)) = tlv(rest) {
        rest = after; // version
    }
    for _ in 0..3 {
        rest = tlv(rest)?.2; // serial, signature algorithm, issuer
    }
    let (0x30, validity, _) = tlv(rest)? else {
        return None;
    };
    let (t1, v1, after) = tlv(validity)?;
    let (t2, v2, _) = tlv(after)?;
    Some((time(t1, v1)?, time(t2, v2)?))
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
    fn validity_is_read_from_der() {
        let dir = temp_cert_dir();
        let m = generate(&dir, true, &["chat.test"]).unwrap();
        let now = crate::db::now();
        let ca = CertificateDer::from_pem_slice(m.ca_cert_pem.as_bytes()).unwrap();
        let (from, to) = validity(&ca).unwrap();
        assert!((now - 86_400 - from).abs() <= 2, "{from} vs {now}");
        assert_eq!(to - from, (CA_DAYS as i64 + 1) * 86_400);
        let leaf = CertificateDer::from_pem_slice(m.server_cert_pem.as_bytes()).unwrap();
        let (from, to) = validity(&leaf).unwrap();
        assert_eq!(to - from, (LEAF_DAYS as i64 + 1) * 86_400);
        assert_eq!(validity(b"\x30\x03\x02\x01\x01"), None);
        m.cleanup();
    }

    #[test]
    fn a_second_start_keeps_the_ca_and_the_leaf() {
        let dir = temp_cert_dir();
        let first = generate(&dir, false, &["chat.test"]).unwrap();
        assert!(!first.ca_reused && !first.leaf_reused);
        let again = generate(&dir, false, &["chat.test"]).unwrap();
        assert!(again.ca_reused && again.leaf_reused);
        assert_eq!(again.ca_cert_pem, first.ca_cert_pem);
        assert_eq!(again.server_cert_pem, first.server_cert_pem);
        assert_eq!(again.server_key_pem, first.server_key_pem);
        // Another host name: same CA, a new leaf signed by it for every name.
        let other = generate(&dir, false, &["other.test", "10.1.2.3"]).unwrap();
        assert!(other.ca_reused && !other.leaf_reused);
        assert_eq!(other.ca_cert_pem, first.ca_cert_pem);
        assert_ne!(other.server_cert_pem, first.server_cert_pem);
        let ca = CertificateDer::from_pem_slice(other.ca_cert_pem.as_bytes()).unwrap();
        let leaf = CertificateDer::from_pem_slice(other.server_cert_pem.as_bytes()).unwrap();
        verify_leaf(&ca, &leaf, &other.server_names, crate::db::now()).unwrap();
        assert!(verify_leaf(&ca, &leaf, &["chat.test".into()], crate::db::now()).is_err());
        // A leaf whose key was replaced is made again.
        std::fs::write(
            &other.server_key_path,
            KeyPair::generate().unwrap().serialize_pem(),
        )
        .unwrap();
        let rekeyed = generate(&dir, false, &["other.test", "10.1.2.3"]).unwrap();
        assert!(rekeyed.ca_reused && !rekeyed.leaf_reused);
        // A CA key that is not the CA's (or missing) replaces the CA.
        std::fs::write(
            &other.ca_key_path,
            KeyPair::generate().unwrap().serialize_pem(),
        )
        .unwrap();
        let fresh = generate(&dir, false, &["other.test"]).unwrap();
        assert!(!fresh.ca_reused && !fresh.leaf_reused);
        assert_ne!(fresh.ca_cert_pem, first.ca_cert_pem);
        std::fs::remove_file(&fresh.ca_key_path).unwrap();
        assert!(!generate(&dir, false, &["other.test"]).unwrap().ca_reused);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writes_ca_and_leaf() {
        let dir = temp_cert_dir();
        let m = generate(&dir, true, &["chat.test", "0.0.0.0", "chat.test"]).unwrap();
        assert!(std::fs::read_to_string(&m.ca_key_path)
            .unwrap()
            .contains("PRIVATE KEY"));
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
