//! Chat REST models (protocol reference §4–5): dialogs, messages, attachments, reactions,
//! deletion results, unread counts, notification settings, search results and blobs.
//!
//! Custom message parameters travel as extra top-level keys of a message; they are kept in
//! [`Message::custom`] (flattened), so nothing the other side sends is lost.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Dialog type wire numbers (§4.1). Trust these numbers, not the JS SDK's enum labels.
pub mod dialog_type {
    /// Everyone in the app sees it; only admins post.
    pub const BROADCAST: u8 = 1;
    /// Closed group with an occupant list.
    pub const GROUP: u8 = 2;
    /// One-to-one.
    pub const PRIVATE: u8 = 3;
    /// Open group; users subscribe.
    pub const PUBLIC: u8 = 4;
}

/// Most admins a dialog may have besides its owner.
pub const MAX_ADMINS: usize = 5;

/// Top-level keys of a message that are not custom parameters: the fields of the wire
/// object plus the REST/XMPP control keys. A custom parameter named like one of these would
/// be dropped or, worse, taken as that field (e.g. `date_sent`), so none may use them.
pub const RESERVED_MESSAGE_KEYS: &[&str] = &[
    "_id",
    "id",
    "chat_dialog_id",
    "dialog_id",
    "message",
    "date_sent",
    "sender_id",
    "recipient_id",
    "read_ids",
    "delivered_ids",
    "views_count",
    "read",
    "attachments",
    "reactions",
    "created_at",
    "updated_at",
    "send_to_chat",
    "markable",
    "save_to_history",
];

/// A dialog object (§4.2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dialog {
    /// The dialog's id (ConnectyCube's `_id`).
    #[serde(rename = "_id")]
    pub id: String,
    /// The owner (creator).
    pub user_id: u64,
    /// The dialog type's wire number ([`dialog_type`]).
    #[serde(rename = "type")]
    pub kind: u8,
    /// The dialog's name (groups; private dialogs have none).
    #[serde(default)]
    pub name: Option<String>,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// The photo: a URL or a cloud file uid.
    #[serde(default)]
    pub photo: Option<String>,
    /// The ids of the occupants (members).
    #[serde(default)]
    pub occupants_ids: Vec<u64>,
    /// How many occupants (public dialogs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occupants_count: Option<u64>,
    /// The ids of the admins (besides the owner).
    #[serde(default)]
    pub admins_ids: Vec<u64>,
    /// The ids of the pinned messages.
    #[serde(default)]
    pub pinned_messages_ids: Vec<String>,
    /// The text of the last message.
    #[serde(default)]
    pub last_message: Option<String>,
    /// The id of the last message.
    #[serde(default)]
    pub last_message_id: Option<String>,
    /// The sender id of the last message.
    #[serde(default)]
    pub last_message_user_id: Option<u64>,
    /// Unix seconds.
    #[serde(default)]
    pub last_message_date_sent: Option<i64>,
    /// `sent` / `delivered` / `read` when the caller sent the last message.
    #[serde(default)]
    pub last_message_status: Option<String>,
    /// How many messages the current user has not read.
    #[serde(default)]
    pub unread_messages_count: Option<u64>,
    /// `{appId}_{id}@muc.{chat}`; null for private dialogs.
    #[serde(default)]
    pub xmpp_room_jid: Option<String>,
    /// When it was created (ISO 8601, as the server sent it).
    #[serde(default)]
    pub created_at: Option<String>,
    /// When it last changed (ISO 8601, as the server sent it).
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Custom key/value fields of the dialog.
    #[serde(default)]
    pub extensions: Option<BTreeMap<String, String>>,
    /// What the dialog allows (e.g. previews), when the server sent it.
    #[serde(default)]
    pub permissions: Option<Permissions>,
}

/// Dialog permissions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Permissions {
    /// Whether non-occupants may preview the messages.
    #[serde(default)]
    pub allow_preview: bool,
}

/// `{total_entries, skip, limit, items}` for dialogs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DialogsPage {
    /// How many entries exist in total.
    pub total_entries: u64,
    /// How many entries were skipped before this page.
    pub skip: u64,
    /// The page size asked for.
    pub limit: u64,
    /// The dialogs of this page.
    pub items: Vec<Dialog>,
}

/// A message attachment (§4.4, §6.4). Every field but `type` is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// The attachment's type (`image`, `video`, `audio`, `file`, ...).
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "string_or_number"
    )]
    /// The attachment's id (often the cloud file's uid).
    pub id: Option<String>,
    /// The cloud file's uid (what a download URL is built from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The download URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number_or_string"
    )]
    /// The size in bytes.
    pub size: Option<u64>,
    #[serde(
        rename = "content-type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    /// The MIME type.
    pub content_type: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number_or_string"
    )]
    /// The width in pixels (images and videos).
    pub width: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number_or_string"
    )]
    /// The height in pixels (images and videos).
    pub height: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number_or_string"
    )]
    /// The duration in seconds (audio and video).
    pub duration: Option<u64>,
    /// Free-form data the app attaches (often JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// Reactions summary on a message: the caller's own and totals per reaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReactionsSummary {
    /// The reactions the current user gave.
    #[serde(default)]
    pub own: Vec<String>,
    /// How many times each reaction was given.
    #[serde(default)]
    pub total: BTreeMap<String, u64>,
}

/// A message object (§4.4).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The message's id (ConnectyCube's `_id`).
    #[serde(rename = "_id")]
    pub id: String,
    /// The dialog's id.
    pub chat_dialog_id: String,
    /// The text, when it has one.
    #[serde(default)]
    pub message: Option<String>,
    /// Unix seconds.
    #[serde(default)]
    pub date_sent: i64,
    /// The sender's user id.
    #[serde(default)]
    pub sender_id: u64,
    /// The recipient's user id (private dialogs; 0 otherwise).
    #[serde(default)]
    pub recipient_id: u64,
    /// The ids of the users who read it.
    #[serde(default)]
    pub read_ids: Vec<u64>,
    /// The ids of the users it was delivered to.
    #[serde(default)]
    pub delivered_ids: Vec<u64>,
    /// How many times it was viewed (broadcast dialogs).
    #[serde(default)]
    pub views_count: u64,
    /// 1 when the caller has read it.
    #[serde(default)]
    pub read: u8,
    /// The attachments.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// The reactions summary.
    #[serde(default)]
    pub reactions: Option<ReactionsSummary>,
    /// When it was created (ISO 8601, as the server sent it).
    #[serde(default)]
    pub created_at: Option<String>,
    /// When it last changed (ISO 8601, as the server sent it).
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Custom parameters: every other top-level key, as text.
    #[serde(flatten)]
    pub custom: BTreeMap<String, Value>,
}

/// `{skip, limit, items}` for messages (no total).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessagesPage {
    /// How many entries were skipped before this page.
    pub skip: u64,
    /// The page size asked for.
    pub limit: u64,
    /// The messages of this page, oldest first unless asked otherwise.
    pub items: Vec<Message>,
}

/// Ids in one group of a bulk-delete result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ids {
    /// The message ids.
    #[serde(default)]
    pub ids: Vec<String>,
}

/// Result of deleting several dialogs or messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeleteResult {
    /// The ids that were deleted.
    #[serde(rename = "SuccessfullyDeleted", default)]
    pub deleted: Ids,
    /// The ids that did not exist.
    #[serde(rename = "NotFound", default)]
    pub not_found: Ids,
    /// The ids the user may not delete.
    #[serde(rename = "WrongPermissions", default)]
    pub wrong_permissions: Ids,
}

/// What happened to one id of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// It was deleted.
    Deleted,
    /// It did not exist.
    NotFound,
    /// The user may not delete it.
    WrongPermissions,
}

impl DeleteResult {
    /// Files `id` under the group its outcome belongs to.
    pub fn push(&mut self, id: String, outcome: DeleteOutcome) {
        match outcome {
            DeleteOutcome::Deleted => self.deleted.ids.push(id),
            DeleteOutcome::NotFound => self.not_found.ids.push(id),
            DeleteOutcome::WrongPermissions => self.wrong_permissions.ids.push(id),
        }
    }

    /// The result of deleting one id.
    pub fn single(id: String, outcome: DeleteOutcome) -> Self {
        let mut r = Self::default();
        r.push(id, outcome);
        r
    }
}

/// `{"notifications": {"enabled": 0|1}}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotificationsEnvelope {
    /// The notification settings.
    pub notifications: Notifications,
}

/// Push notification setting of one dialog for the caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notifications {
    /// 1 when notifications are on, 0 when off.
    #[serde(deserialize_with = "flag")]
    pub enabled: u8,
}

/// `GET /chat/search` result.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SearchResults {
    /// What the search found.
    pub results: SearchResultSets,
}

/// The three result lists of a global search.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SearchResultSets {
    /// The dialogs found.
    #[serde(default)]
    pub dialogs: Vec<Dialog>,
    /// The messages found.
    #[serde(default)]
    pub messages: Vec<Message>,
    /// The users found.
    #[serde(default)]
    pub users: Vec<crate::auth::User>,
}

/// A blob (§5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Blob {
    /// The cloud file's id.
    pub id: u64,
    /// The cloud file's uid (what a download URL is built from).
    pub uid: String,
    /// The MIME type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// The file name.
    #[serde(default)]
    pub name: Option<String>,
    /// The size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// Whether it can be downloaded without a session.
    #[serde(default)]
    pub public: bool,
    /// When it was created (ISO 8601, as the server sent it).
    #[serde(default)]
    pub created_at: Option<String>,
    /// When it last changed (ISO 8601, as the server sent it).
    #[serde(default)]
    pub updated_at: Option<String>,
    /// The upload or download access, when the server granted one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_object_access: Option<BlobObjectAccess>,
}

impl Attachment {
    /// The attachment record of an uploaded blob: `type` from its content type (`image`,
    /// `video`, `audio`, else `file`), plus its id, UID, name, size and content type.
    pub fn from_blob(blob: &Blob) -> Self {
        let content_type = blob.content_type.clone();
        let kind = match content_type.as_deref().and_then(|c| c.split('/').next()) {
            Some(k @ ("image" | "video" | "audio")) => k.to_owned(),
            _ => "file".to_owned(),
        };
        Self {
            kind,
            id: Some(blob.id.to_string()),
            uid: Some(blob.uid.clone()),
            name: blob.name.clone(),
            size: blob.size,
            content_type,
            ..Self::default()
        }
    }
}

/// Upload (or download) access of a blob.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlobObjectAccess {
    /// The access's id.
    pub id: u64,
    /// The id of the cloud file.
    pub blob_id: u64,
    /// When the access expires (ISO 8601).
    #[serde(default)]
    pub expires: Option<String>,
    /// The kind of access (e.g. `Write` for an upload).
    #[serde(default)]
    pub object_access_type: Option<String>,
    /// The upload URL with its form fields as query parameters.
    #[serde(default)]
    pub params: Option<String>,
    /// Where the file can be downloaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
}

/// `{"blob": {...}}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlobEnvelope {
    /// The cloud file.
    pub blob: Blob,
}

fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(u8::from(b)),
        Value::Number(n) => Ok(u8::from(n.as_u64().unwrap_or(0) != 0)),
        Value::String(s) => Ok(u8::from(matches!(s.trim(), "1" | "true"))),
        _ => Err(serde::de::Error::custom("expected 0/1")),
    }
}

fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// Parses a list of ids given as a JSON array or a comma(-space) separated string (§2.3).
pub fn id_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.trim().to_owned()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| !s.is_empty())
            .collect(),
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        Value::Number(n) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

/// True for a 24-hex-digit ObjectId.
pub fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn message_keeps_custom_parameters_and_lenient_attachments() {
        let m: Message = serde_json::from_value(json!({
            "_id": "5f0c0c0c0c0c0c0c0c0c0c0c", "chat_dialog_id": "d", "message": "hi",
            "date_sent": 1700000000, "sender_id": 5, "recipient_id": 0,
            "attachments": [{"type": "image", "uid": "u1", "size": "5", "id": 9}],
            "field_one": "v"
        }))
        .unwrap();
        assert_eq!(m.custom.get("field_one"), Some(&json!("v")));
        assert_eq!(m.attachments[0].size, Some(5));
        assert_eq!(m.attachments[0].id.as_deref(), Some("9"));
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(back["field_one"], "v");
        assert_eq!(back["attachments"][0]["type"], "image");
    }

    #[test]
    fn id_lists_in_both_forms() {
        assert_eq!(id_list(&json!("5, 6")), vec!["5", "6"]);
        assert_eq!(id_list(&json!([5, "6"])), vec!["5", "6"]);
        assert!(is_object_id("5f0c0c0c0c0c0c0c0c0c0c0c"));
        assert!(!is_object_id("xyz"));
    }

    #[test]
    fn delete_result_shape() {
        let r: DeleteResult = serde_json::from_value(json!({
            "SuccessfullyDeleted": {"ids": ["a"]}, "NotFound": {"ids": ["b"]}, "WrongPermissions": {"ids": []}
        }))
        .unwrap();
        assert_eq!(r.deleted.ids, vec!["a"]);
        assert_eq!(r.not_found.ids, vec!["b"]);
    }
}
