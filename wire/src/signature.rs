//! The legacy session signature (protocol reference §3.1): every body parameter except
//! `signature`, nested objects flattened to `parent[child]`, written `key=value` without any
//! URL-encoding, sorted by key, joined with `&`, then HMAC-SHA1 keyed by the auth secret,
//! lower-case hex.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha1::Sha1;

/// Builds the string to sign from a JSON object body.
///
/// Nested objects become `parent[child]`; `null` values and the `signature` key are left out;
/// strings are written raw, numbers and booleans in their JSON text form.
pub fn string_to_sign(body: &Value) -> String {
    let mut pairs = Vec::new();
    flatten(None, body, &mut pairs);
    pairs.retain(|(k, _)| k != "signature");
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn flatten(prefix: Option<&str>, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = match prefix {
                    Some(p) => format!("{p}[{k}]"),
                    None => k.clone(),
                };
                flatten(Some(&key), v, out);
            }
        }
        Value::Null => {}
        Value::String(s) => {
            if let Some(p) = prefix {
                out.push((p.to_owned(), s.clone()));
            }
        }
        other => {
            if let Some(p) = prefix {
                out.push((p.to_owned(), other.to_string()));
            }
        }
    }
}

/// Lower-case hex HMAC-SHA1 of `message` keyed by `secret`.
pub fn hmac_sha1_hex(secret: &str, message: &str) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The signature of a session-creation body: HMAC-SHA1 of [`string_to_sign`].
pub fn sign(body: &Value, secret: &str) -> String {
    hmac_sha1_hex(secret, &string_to_sign(body))
}

/// Checks a body's `signature` field against the secret in constant time.
pub fn verify(body: &Value, secret: &str) -> bool {
    let Some(given) = body.get("signature").and_then(Value::as_str) else {
        return false;
    };
    let expected = sign(body, secret);
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_matches_reference_example() {
        let body = json!({
            "application_id": 7,
            "auth_key": "key-7",
            "nonce": "2186220645",
            "timestamp": 1614934812,
            "user": {"login": "bob", "password": "secret"},
            "signature": "ignored"
        });
        assert_eq!(
            string_to_sign(&body),
            "application_id=7&auth_key=key-7&nonce=2186220645&timestamp=1614934812&user[login]=bob&user[password]=secret"
        );
    }

    #[test]
    fn hmac_known_vector() {
        // RFC 2202 test case 2.
        assert_eq!(
            hmac_sha1_hex("Jefe", "what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn verify_accepts_own_and_rejects_tampered() {
        let mut body = json!({"application_id": 7, "auth_key": "k", "nonce": 1, "timestamp": 2});
        let sig = sign(&body, "s3cret");
        body["signature"] = json!(sig);
        assert!(verify(&body, "s3cret"));
        assert!(!verify(&body, "other"));
        body["nonce"] = json!(3);
        assert!(!verify(&body, "s3cret"));
    }
}
