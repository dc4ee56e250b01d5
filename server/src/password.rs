//! Password storage: PBKDF2-HMAC-SHA256 with a random salt (via `ring`, already in the tree
//! for rcgen). Stored as `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`.
//!
//! The iteration count is low on purpose: this is a test server and sign-ups should be fast.

use std::num::NonZeroU32;

use rand::RngCore;
use ring::pbkdf2;

const SCHEME: &str = "pbkdf2-sha256";
const ITERATIONS: u32 = 1000;

/// Hashes `password` with a fresh salt.
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let mut out = [0u8; 32];
    let iterations = NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &mut out,
    );
    format!(
        "{SCHEME}${ITERATIONS}${}${}",
        hex::encode(salt),
        hex::encode(out)
    )
}

/// Checks `password` against a value from [`hash`], in constant time. Anything unparsable
/// never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(iter), Some(salt), Some(expected), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Some(iterations), Ok(salt), Ok(expected)) = (
        iter.parse::<u32>().ok().and_then(NonZeroU32::new),
        hex::decode(salt),
        hex::decode(expected),
    ) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &expected,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let h = hash("correct horse");
        assert!(h.starts_with("pbkdf2-sha256$1000$"));
        assert!(!h.contains("correct"));
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
        assert_ne!(hash("correct horse"), h, "salted");
        assert!(!verify("x", ""));
        assert!(!verify("x", "pbkdf2-sha256$0$00$00"));
        assert!(!verify("x", "pbkdf2-sha256$10$zz$00"));
    }
}
