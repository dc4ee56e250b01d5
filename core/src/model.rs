//! The app data model: how wire fields are read for apps, in one place.
//!
//! The wire types keep the protocol's shapes (comma-separated tag strings, `read` as 0/1,
//! custom message parameters as arbitrary JSON, optional counters). Apps want tags as a
//! list, `read` as a flag, custom parameters as text and absent counters as 0. These traits
//! and functions give that reading, so the bindings only map fields one to one and every
//! language gets the same answer.

use std::collections::BTreeMap;

use cubechat_wire::auth::User;
use cubechat_wire::chat::{Dialog, Message};
use serde_json::Value;

/// Splits a comma-separated tag list: trimmed, empty entries dropped, order kept.
pub fn split_tags(list: Option<&str>) -> Vec<String> {
    list.map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    })
    .unwrap_or_default()
}

/// Joins tags into the wire's comma-separated list; `None` (field not sent) for no tags.
pub fn join_tags(tags: &[String]) -> Option<String> {
    (!tags.is_empty()).then(|| tags.join(","))
}

/// Custom parameters of a message as text: strings as they are, any other JSON value
/// (number, boolean, object, array, null) as its compact JSON text.
pub fn custom_as_text(custom: BTreeMap<String, Value>) -> BTreeMap<String, String> {
    custom
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect()
}

/// A user as apps read it.
pub trait UserModel {
    /// The user's tags as a list (the wire sends one comma-separated string).
    fn tags(&self) -> Vec<String>;
}

impl UserModel for User {
    fn tags(&self) -> Vec<String> {
        split_tags(self.user_tags.as_deref())
    }
}

/// A dialog as apps read it.
pub trait DialogModel {
    /// How many messages the current user has not read; 0 when the server did not say.
    fn unread_count(&self) -> u64;
    /// Takes the custom fields out of the dialog; empty when the server sent none.
    fn take_extensions(&mut self) -> BTreeMap<String, String>;
}

impl DialogModel for Dialog {
    fn unread_count(&self) -> u64 {
        self.unread_messages_count.unwrap_or(0)
    }

    fn take_extensions(&mut self) -> BTreeMap<String, String> {
        self.extensions.take().unwrap_or_default()
    }
}

/// A stored message as apps read it.
pub trait MessageModel {
    /// Whether the current user has read it (the wire's `read` is 0 or 1; any non-zero
    /// value counts as read).
    fn is_read(&self) -> bool;
    /// Takes the custom parameters out of the message, as text (see [`custom_as_text`]).
    fn take_custom(&mut self) -> BTreeMap<String, String>;
}

impl MessageModel for Message {
    fn is_read(&self) -> bool {
        self.read != 0
    }

    fn take_custom(&mut self) -> BTreeMap<String, String> {
        custom_as_text(std::mem::take(&mut self.custom))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_are_split_trimmed_and_joined_back() {
        assert_eq!(split_tags(Some(" a, b ,,c,")), ["a", "b", "c"]);
        assert!(split_tags(Some(" , ")).is_empty());
        assert!(split_tags(None).is_empty());
        let tags = vec!["x".to_owned(), "y".to_owned()];
        assert_eq!(join_tags(&tags).as_deref(), Some("x,y"));
        assert_eq!(join_tags(&[]), None);
        let user: User =
            serde_json::from_value(json!({"id": 3, "user_tags": "red, blue"})).expect("a user");
        assert_eq!(user.tags(), ["red", "blue"]);
        let untagged: User = serde_json::from_value(json!({"id": 4})).expect("a user");
        assert!(untagged.tags().is_empty());
    }

    #[test]
    fn custom_parameters_become_text() {
        let custom = BTreeMap::from([
            ("s".to_owned(), json!("plain")),
            ("n".to_owned(), json!(42)),
            ("b".to_owned(), json!(true)),
            ("o".to_owned(), json!({"k": [1, "v"]})),
            ("z".to_owned(), Value::Null),
        ]);
        let text = custom_as_text(custom);
        assert_eq!(text["s"], "plain");
        assert_eq!(text["n"], "42");
        assert_eq!(text["b"], "true");
        assert_eq!(text["o"], r#"{"k":[1,"v"]}"#);
        assert_eq!(text["z"], "null");
    }

    #[test]
    fn messages_read_flag_and_custom_fields() {
        let mut m: Message = serde_json::from_value(json!({
            "_id": "5f0000000000000000000001",
            "chat_dialog_id": "5f0000000000000000000002",
            "read": 1,
            "mood": {"level": 2},
            "label": "hi",
        }))
        .expect("a message");
        assert!(m.is_read());
        let custom = m.take_custom();
        assert_eq!(custom["mood"], r#"{"level":2}"#);
        assert_eq!(custom["label"], "hi");
        assert!(m.custom.is_empty(), "taken out");
        m.read = 0;
        assert!(!m.is_read());
    }

    #[test]
    fn dialog_defaults() {
        let mut d: Dialog = serde_json::from_value(json!({
            "_id": "5f0000000000000000000002",
            "type": 2,
            "user_id": 1,
        }))
        .expect("a dialog");
        assert_eq!(d.unread_count(), 0);
        assert!(d.take_extensions().is_empty());
        d.unread_messages_count = Some(7);
        d.extensions = Some(BTreeMap::from([("k".to_owned(), "v".to_owned())]));
        assert_eq!(d.unread_count(), 7);
        assert_eq!(d.take_extensions()["k"], "v");
        assert_eq!(d.extensions, None);
    }
}
