//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`, never part of the
//! SDK's API): the engine's own mappings of untrusted or app-given data, driven exactly as
//! the engine drives them, with what must hold for any input asserted.
#![allow(missing_docs, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::collections::BTreeMap;

use cubechat_wire::stanza::{self, ChatKind, Incoming};
use minidom::Element;

use crate::store::LocalMessage;
use crate::xmpp::{check_message_content, message_stanza, OutgoingMessage};

/// A message as an app gives it (body, custom parameters), checked as `send_message` and the
/// send queue check it. When accepted, the stanza the engine sends is serialized, parsed
/// back and classified as a receiving engine does: it is a chat message with the same body
/// and the same non-empty custom parameters (the platform drops empty elements). When
/// refused, the error is `InvalidInput`.
pub fn message_roundtrip(body: &str, custom: &BTreeMap<String, String>) {
    let mut m = OutgoingMessage::new("5f0c0ffee0c0ffee0c0ffee0", Some(6), body);
    m.custom = custom.clone();
    m.date_sent = Some(1_700_000_000);
    if let Err(e) = check_message_content(&m) {
        assert!(
            matches!(e, crate::Error::InvalidInput(_)),
            "a refused message must be InvalidInput, was {e:?}"
        );
        return;
    }
    let el = match message_stanza(ChatKind::Chat, "id1", "6-1@chat.local", m) {
        Some(tokio_xmpp::Stanza::Message(m)) => Element::from(m),
        _ => panic!("an accepted message has no stanza"),
    };
    let xml = String::from(&el);
    let back: Element = xml.parse().unwrap();
    let r = stanza::classify(&back);
    match r.what {
        Incoming::Chat { body: b } => assert_eq!(b, body),
        other => panic!("an accepted message came back as {other:?}"),
    }
    let sent: BTreeMap<_, _> = custom
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(r.extra.custom, sent);
}

/// Any bytes as a REST history message (JSON) turned into a local message as the store
/// does, custom fields of any JSON type included.
pub fn history_message(body: &[u8]) {
    if let Ok(m) = serde_json::from_slice::<cubechat_wire::chat::Message>(body) {
        let _ = LocalMessage::from_history(m, 1);
    }
}
