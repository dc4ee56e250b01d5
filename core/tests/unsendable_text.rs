//! Content that XML cannot carry (NUL, other control characters, U+FFFE/U+FFFF) and custom
//! parameters beyond their limits are refused at the call with `InvalidInput`, by every
//! sending path (`send_message`, `enqueue_message`, edits, system messages, REST), before an
//! id is given or anything is stored.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use cubechat_core::chat::{Attachment, DialogUpdate, NewMessage};
use cubechat_core::xmpp::{OutgoingMessage, MAX_CUSTOM_BYTES, MAX_CUSTOM_PARAMS};
use cubechat_core::{Client, Config, Error};

/// Port 1 is never served: a request that slipped past validation fails with `Network`.
fn client() -> Arc<Client> {
    Client::new(Config::new(7, "k", "http://127.0.0.1:1")).unwrap()
}

const BAD: [&str; 6] = [
    "a\u{0}b",
    "bell \u{7}",
    "esc \u{1b}[0m",
    "\u{fffe}",
    "x\u{ffff}",
    "vt\u{b}",
];

fn is_invalid<T: std::fmt::Debug>(r: Result<T, Error>) -> bool {
    match r {
        Err(Error::InvalidInput(m)) => {
            // The reason names the code point, never the text.
            assert!(!m.contains('\u{0}') && !m.contains("bell"), "{m}");
            true
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

fn bad_messages() -> Vec<OutgoingMessage> {
    let mut out = Vec::new();
    for b in BAD {
        out.push(OutgoingMessage::new("d1", Some(5), b));
        let mut m = OutgoingMessage::new("d1", Some(5), "fine");
        m.custom.insert("mood".into(), b.into());
        out.push(m);
        let mut m = OutgoingMessage::new("d1", Some(5), "fine");
        m.attachments.push(Attachment {
            kind: "image".into(),
            name: Some(b.into()),
            ..Default::default()
        });
        out.push(m);
    }
    // A 1 MB value, and 10,000 keys: the body limit cannot be bypassed through parameters.
    let mut m = OutgoingMessage::new("d1", Some(5), "fine");
    m.custom.insert("big".into(), "x".repeat(1 << 20));
    out.push(m);
    let mut m = OutgoingMessage::new("d1", Some(5), "fine");
    for i in 0..10_000 {
        m.custom.insert(format!("k{i}"), "v".into());
    }
    out.push(m);
    let mut m = OutgoingMessage::new("d1", Some(5), "fine");
    m.custom.insert("big".into(), "x".repeat(MAX_CUSTOM_BYTES));
    out.push(m);
    let mut m = OutgoingMessage::new("d1", Some(5), "fine");
    for i in 0..=MAX_CUSTOM_PARAMS {
        m.custom.insert(format!("k{i}"), "v".into());
    }
    out.push(m);
    out
}

#[tokio::test]
async fn send_message_refuses_unsendable_content() {
    let c = client();
    for m in bad_messages() {
        assert!(is_invalid(c.send_queue().send_message(m)));
    }
    // At the limits and with tab/newline/CR and other characters: valid, so the call gets
    // as far as the connection check.
    let mut m = OutgoingMessage::new("d1", Some(5), "tab\tnl\ncr\r é 𝄞 \u{7f}");
    for i in 0..MAX_CUSTOM_PARAMS - 1 {
        m.custom.insert(format!("k{i}"), "v".into());
    }
    let used: usize = m.custom.iter().map(|(k, v)| k.len() + v.len()).sum();
    m.custom
        .insert("last".into(), "x".repeat(MAX_CUSTOM_BYTES - used - 4));
    assert_eq!(m.custom.len(), MAX_CUSTOM_PARAMS);
    assert!(matches!(
        c.send_queue().send_message(m),
        Err(Error::ChatNotConnected)
    ));
    // Edits, deletes, markers and system messages.
    for b in BAD {
        assert!(is_invalid(c.chat().send_edit(
            "d1",
            Some(5),
            "m1",
            b,
            false
        )));
        assert!(is_invalid(c.chat().send_delete("d1", Some(5), b)));
        assert!(is_invalid(c.chat().send_read("d1", b, 5)));
        assert!(is_invalid(c.chat().send_chat_system_message(
            5,
            b,
            BTreeMap::new()
        )));
        let params = BTreeMap::from([("k".to_owned(), b.to_owned())]);
        assert!(is_invalid(
            c.chat().send_chat_system_message(5, "x", params)
        ));
    }
}

#[tokio::test]
async fn enqueue_and_local_edits_store_nothing_unsendable() {
    let c = client();
    c.open_store(3).unwrap();
    for m in bad_messages() {
        assert!(is_invalid(c.send_queue().enqueue_message(m, Vec::new())));
    }
    assert!(is_invalid(c.send_queue().enqueue_message(
        OutgoingMessage::new("d1", Some(5), ""),
        vec![cubechat_core::QueuedFile {
            path: "/tmp/x.jpg".into(),
            name: Some("x\u{0}.jpg".into()),
            content_type: None,
            public: false,
        }],
    )));
    assert!(
        c.send_queue().pending_messages().unwrap().is_empty(),
        "nothing stored"
    );
    let ok = c
        .send_queue()
        .enqueue_message(OutgoingMessage::new("d1", Some(5), "hi"), Vec::new())
        .unwrap();
    for b in BAD {
        assert!(is_invalid(c.send_queue().edit_local_message(&ok.id, b)));
    }
    let pending = c.send_queue().pending_messages().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].body, "hi", "the queued message is unchanged");
}

#[tokio::test]
async fn rest_calls_refuse_unsendable_content() {
    let c = client();
    let d = "5f3a5f3a5f3a5f3a5f3a5f3a";
    for b in BAD {
        assert!(is_invalid(c.messages().edit_message(d, d, b).await));
        let m = NewMessage {
            dialog_id: d.into(),
            body: b.into(),
            ..Default::default()
        };
        assert!(is_invalid(c.messages().create_message(m).await));
        let mut m = NewMessage {
            dialog_id: d.into(),
            body: "fine".into(),
            ..Default::default()
        };
        m.custom.insert("k".into(), b.into());
        assert!(is_invalid(c.messages().create_message(m).await));
        assert!(is_invalid(c.messages().react(d, Some(b), None).await));
        let params = BTreeMap::from([("k".to_owned(), b.to_owned())]);
        assert!(is_invalid(
            c.messages().send_system_message(5, params).await
        ));
        let u = DialogUpdate {
            name: Some(b.into()),
            ..Default::default()
        };
        assert!(is_invalid(c.dialogs().update_dialog(d, u).await));
    }
    let mut m = NewMessage {
        dialog_id: d.into(),
        body: "fine".into(),
        ..Default::default()
    };
    m.custom.insert("big".into(), "x".repeat(1 << 20));
    assert!(is_invalid(c.messages().create_message(m).await));
}
