//! Pure helpers of the chat engine: reconnect backoff, message ids, the recent-id set used
//! to deliver every message once, and outgoing-message validation.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use cubechat_wire::stanza::{is_control_key, is_element_name};

use crate::config::ReconnectPolicy;
use crate::error::{Error, Result};

/// Longest message body accepted, in bytes (UTF-8).
pub const MAX_BODY: usize = 64 * 1024;

/// The `attempt`th backoff delay (1-based; the reconnection waits it after `attempt` failed
/// attempts in a row, the first attempt going at once): `initial * multiplier^(attempt-1)`,
/// capped at `max_delay`, then spread by `±jitter` using `r` in `[0, 1)`, never below 10 ms
/// nor above `max_delay`.
pub(crate) fn backoff_delay(p: &ReconnectPolicy, attempt: u32, r: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(64) as i32;
    let base = p.initial_delay.as_secs_f64() * p.multiplier.max(1.0).powi(exp);
    let capped = base.min(p.max_delay.as_secs_f64());
    let spread = capped * (1.0 + p.jitter.clamp(0.0, 1.0) * (2.0 * r.clamp(0.0, 1.0) - 1.0));
    let secs = spread.clamp(0.01, p.max_delay.as_secs_f64().max(0.01));
    Duration::from_secs_f64(secs)
}

/// A message id in the ConnectyCube layout: 8 hex of Unix seconds, 6 and 4 random hex,
/// then `000000` (24 hex in all).
pub(crate) fn new_message_id(unix_secs: i64, rnd: u64) -> String {
    let secs = (unix_secs.max(0) as u64) & 0xffff_ffff;
    format!("{secs:08x}{:010x}000000", rnd & 0xff_ffff_ffff)
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A bounded set of recent ids; the oldest are forgotten first.
#[derive(Debug)]
pub(crate) struct RecentIds {
    cap: usize,
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl RecentIds {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            order: VecDeque::new(),
            set: HashSet::new(),
        }
    }

    /// Remembers `id`; false if it was already known.
    pub(crate) fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.order.push_back(id.to_owned());
        self.set.insert(id.to_owned());
        true
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }
}

/// A dialog id usable in a room JID local part.
pub(crate) fn check_dialog_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 256
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(
            "dialog id must be non-empty ASCII letters, digits, '_', '-' or '.'".into(),
        ))
    }
}

/// Most custom parameters one message (or system message) carries.
pub const MAX_CUSTOM_PARAMS: usize = 64;
/// Most bytes of all custom parameter keys and values of one message together (UTF-8).
/// With the 64 KB body this keeps a message stanza well under 128 KB.
pub const MAX_CUSTOM_BYTES: usize = 16 * 1024;
/// Most attachments one message carries.
pub const MAX_ATTACHMENTS: usize = 32;
/// Most bytes of all text fields of a message's attachments together (UTF-8).
pub const MAX_ATTACHMENT_BYTES: usize = 16 * 1024;

/// True for a character XML 1.0 can carry: not a control character other than tab, line
/// feed and carriage return, and not U+FFFE or U+FFFF (Rust strings hold no surrogates).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Rejects text that can never be sent in XML (see [`is_xml_char`]) with `InvalidInput`
/// naming `what` and the code point, never quoting the text.
pub(crate) fn check_text(what: &str, s: &str) -> Result<()> {
    match s.chars().find(|c| !is_xml_char(*c)) {
        None => Ok(()),
        Some(c) => Err(Error::InvalidInput(format!(
            "{what} contains U+{:04X}, a character XML cannot carry",
            u32::from(c)
        ))),
    }
}

/// Body and attachment rules shared with the REST `create_message`.
pub(crate) fn check_content(body: &str, has_attachments: bool) -> Result<()> {
    check_text("message body", body)?;
    if body.trim().is_empty() && !has_attachments {
        return Err(Error::InvalidInput(
            "a message needs a body or an attachment".into(),
        ));
    }
    if body.len() > MAX_BODY {
        return Err(Error::InvalidInput(format!(
            "message body is longer than {MAX_BODY} bytes"
        )));
    }
    Ok(())
}

/// Custom parameters: keys are XML element names and not protocol keys, keys and values
/// hold only XML characters, at most [`MAX_CUSTOM_PARAMS`] of them and
/// [`MAX_CUSTOM_BYTES`] in all.
pub(crate) fn check_custom(custom: &std::collections::BTreeMap<String, String>) -> Result<()> {
    check_params_size(custom)?;
    check_custom_keys(custom.keys())?;
    check_params_text(custom)
}

/// Keys and values of parameters hold only XML characters (see [`is_xml_char`]); a key is
/// named in the error only once it is known to be printable.
pub(crate) fn check_params_text<'a>(
    params: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<()> {
    for (k, v) in params {
        check_text("a custom parameter name", k)?;
        check_text(&format!("custom parameter '{k}'"), v)?;
    }
    Ok(())
}

/// The count and size limits of [`check_custom`] without its key rules (REST parameters).
pub(crate) fn check_params_size(params: &std::collections::BTreeMap<String, String>) -> Result<()> {
    if params.len() > MAX_CUSTOM_PARAMS {
        return Err(Error::InvalidInput(format!(
            "{} custom parameters; at most {MAX_CUSTOM_PARAMS} are allowed",
            params.len()
        )));
    }
    let bytes: usize = params.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_CUSTOM_BYTES {
        return Err(Error::InvalidInput(format!(
            "custom parameters hold {bytes} bytes; at most {MAX_CUSTOM_BYTES} are allowed"
        )));
    }
    Ok(())
}

/// Attachments: each has a type, all text is XML characters, at most [`MAX_ATTACHMENTS`]
/// of them and [`MAX_ATTACHMENT_BYTES`] of text in all.
pub(crate) fn check_attachments(attachments: &[cubechat_wire::chat::Attachment]) -> Result<()> {
    if attachments.len() > MAX_ATTACHMENTS {
        return Err(Error::InvalidInput(format!(
            "{} attachments; at most {MAX_ATTACHMENTS} are allowed",
            attachments.len()
        )));
    }
    let mut bytes = 0usize;
    for a in attachments {
        if a.kind.is_empty() {
            return Err(Error::InvalidInput("attachment without a type".into()));
        }
        for (what, v) in [
            ("type", Some(&a.kind)),
            ("id", a.id.as_ref()),
            ("uid", a.uid.as_ref()),
            ("url", a.url.as_ref()),
            ("name", a.name.as_ref()),
            ("content type", a.content_type.as_ref()),
            ("data", a.data.as_ref()),
        ] {
            if let Some(v) = v {
                check_text(&format!("attachment {what}"), v)?;
                bytes += v.len();
            }
        }
    }
    if bytes > MAX_ATTACHMENT_BYTES {
        return Err(Error::InvalidInput(format!(
            "attachments hold {bytes} bytes of text; at most {MAX_ATTACHMENT_BYTES} are allowed"
        )));
    }
    Ok(())
}

/// Custom parameter keys must be XML element names and not protocol keys.
pub(crate) fn check_custom_keys<'a>(keys: impl IntoIterator<Item = &'a String>) -> Result<()> {
    for k in keys {
        if !is_element_name(k) {
            return Err(Error::InvalidInput(format!(
                "custom parameter '{k}' is not a valid XML element name"
            )));
        }
        if is_control_key(k) || cubechat_wire::chat::RESERVED_MESSAGE_KEYS.contains(&k.as_str()) {
            return Err(Error::InvalidInput(format!(
                "custom parameter '{k}' is reserved"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ReconnectPolicy {
        ReconnectPolicy {
            enabled: true,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            multiplier: 2.0,
            jitter: 0.5,
            max_attempts: None,
            stable_after: Duration::from_secs(30),
        }
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let p = policy();
        // r = 0.5 is the centre: no spread.
        assert_eq!(backoff_delay(&p, 1, 0.5), Duration::from_millis(100));
        assert_eq!(backoff_delay(&p, 2, 0.5), Duration::from_millis(200));
        assert_eq!(backoff_delay(&p, 4, 0.5), Duration::from_millis(800));
        assert_eq!(backoff_delay(&p, 10, 0.5), Duration::from_secs(2));
        assert_eq!(backoff_delay(&p, u32::MAX, 0.5), Duration::from_secs(2));
        // ±50 %
        assert_eq!(backoff_delay(&p, 2, 0.0), Duration::from_millis(100));
        assert_eq!(backoff_delay(&p, 2, 1.0), Duration::from_millis(300));
        // never above the cap, never zero
        assert_eq!(backoff_delay(&p, 10, 1.0), Duration::from_secs(2));
        let mut p2 = policy();
        p2.jitter = 1.0;
        assert!(backoff_delay(&p2, 1, 0.0) >= Duration::from_millis(10));
    }

    #[test]
    fn message_ids_follow_the_object_id_layout() {
        let id = new_message_id(0x6b05_fcaf, 0x92_3d1e_2727);
        assert_eq!(id, "6b05fcaf923d1e2727000000");
        let id = new_message_id(1, u64::MAX);
        assert_eq!(id.len(), 24);
        assert!(cubechat_wire::chat::is_object_id(&id));
        assert!(id.ends_with("000000"));
    }

    #[test]
    fn recent_ids_forget_the_oldest() {
        let mut r = RecentIds::new(2);
        assert!(r.insert("a"));
        assert!(!r.insert("a"));
        assert!(r.insert("b"));
        assert!(r.insert("c"));
        assert!(!r.contains("a"));
        assert!(r.contains("b") && r.contains("c"));
        assert!(r.insert("a"));
    }

    #[test]
    fn validation() {
        assert!(check_content("", false).is_err());
        assert!(check_content("  ", false).is_err());
        assert!(check_content("", true).is_ok());
        assert!(check_content(&"x".repeat(MAX_BODY + 1), false).is_err());
        assert!(check_content(&"x".repeat(MAX_BODY), false).is_ok());
        let keys = |k: &str| vec![k.to_owned()];
        assert!(check_custom_keys(&keys("mood")).is_ok());
        for bad in [
            "",
            "1abc",
            "a b",
            "xmlfoo",
            "dialog_id",
            "date_sent",
            "attachments",
            "a:b",
        ] {
            assert!(check_custom_keys(&keys(bad)).is_err(), "{bad}");
        }
        for c in [
            '\t',
            '\n',
            '\r',
            ' ',
            '\u{7f}',
            '\u{d7ff}',
            '\u{e000}',
            '\u{fffd}',
            '\u{10000}',
        ] {
            assert!(is_xml_char(c), "{c:?}");
        }
        for c in [
            '\u{0}', '\u{8}', '\u{b}', '\u{c}', '\u{1f}', '\u{fffe}', '\u{ffff}',
        ] {
            assert!(!is_xml_char(c), "{c:?}");
            assert!(check_content(&format!("a{c}"), false).is_err());
        }
        assert!(check_dialog_id("5f3a").is_ok());
        for bad in ["", "a@b", "a/b", "a b"] {
            assert!(check_dialog_id(bad).is_err(), "{bad}");
        }
    }
}
