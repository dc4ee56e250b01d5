//! Push notifications (protocol reference §3.6, §3.7): subscriptions, push events and the
//! payload of a chat push as a device receives it.
//!
//! [`parse_chat_push`] turns a received payload (APNs `userInfo` with `aps`, the FCM HTTP
//! message with `data`, the FCM `data` map itself, or a web push object) into a
//! [`ChatPush`]. It needs no client and no connection: an iOS Notification Service
//! Extension or an FCM service can call it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A push channel (`notification_channel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NotificationChannel {
    /// Apple Push Notification service.
    #[serde(rename = "apns")]
    Apns,
    /// APNs VoIP pushes (PushKit), for calls.
    #[serde(rename = "apns_voip")]
    ApnsVoip,
    /// Firebase Cloud Messaging; the platform's name is `gcm` (`fcm` is read too).
    #[serde(rename = "gcm", alias = "fcm")]
    Gcm,
    /// Web push.
    #[serde(rename = "web")]
    Web,
}

impl NotificationChannel {
    /// The wire name (`apns`, `apns_voip`, `gcm`, `web`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apns => "apns",
            Self::ApnsVoip => "apns_voip",
            Self::Gcm => "gcm",
            Self::Web => "web",
        }
    }

    /// Parses a wire name; `fcm` is read as [`NotificationChannel::Gcm`]. `None` for any
    /// other text.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "apns" => Self::Apns,
            "apns_voip" => Self::ApnsVoip,
            "gcm" | "fcm" => Self::Gcm,
            "web" => Self::Web,
            _ => return None,
        })
    }
}

/// The push environment (`development` is the APNs sandbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushEnvironment {
    /// Sandbox / debug builds.
    Development,
    /// Store builds.
    Production,
}

impl PushEnvironment {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
        }
    }
}

/// The device platform of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DevicePlatform {
    /// iOS.
    Ios,
    /// Android.
    Android,
    /// A browser.
    Web,
}

impl DevicePlatform {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ios => "ios",
            Self::Android => "android",
            Self::Web => "web",
        }
    }
}

/// `push_token` of `POST /subscriptions`. Its `Debug` never shows the token or web keys.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushToken {
    /// `development` or `production`.
    pub environment: String,
    /// The device token (APNs, VoIP, FCM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_identification_sequence: Option<String>,
    /// The app's bundle identifier (iOS) or package name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_identifier: Option<String>,
    /// Web push: the endpoint URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_endpoint: Option<String>,
    /// Web push: the `auth` key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_auth: Option<String>,
    /// Web push: the `p256dh` key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_p256dh: Option<String>,
}

impl fmt::Debug for PushToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushToken")
            .field("environment", &self.environment)
            .field("bundle_identifier", &self.bundle_identifier)
            .finish_non_exhaustive()
    }
}

/// `device` of `POST /subscriptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceParams {
    /// `ios`, `android` or `web`.
    pub platform: String,
    /// The device's unique id.
    pub udid: String,
}

/// `POST /subscriptions` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSubscriptionRequest {
    /// `apns`, `apns_voip`, `gcm` or `web`.
    pub notification_channel: String,
    /// The token and its environment.
    pub push_token: PushToken,
    /// The device.
    pub device: DeviceParams,
}

/// `{"name": …}`, as channels and platforms appear in answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    /// The name.
    #[serde(default)]
    pub name: String,
}

/// The device of a stored subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionDevice {
    /// The device's unique id.
    #[serde(default)]
    pub udid: String,
    /// `{"name": "ios"|"android"|"web"}`.
    #[serde(default)]
    pub platform: Named,
}

/// A stored subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Its id (a number, or a numeric string in the JS SDK's type).
    #[serde(deserialize_with = "id_number_or_text")]
    pub id: u64,
    /// `{"name": "apns"|…}`.
    #[serde(default)]
    pub notification_channel: Named,
    /// The device.
    #[serde(default)]
    pub device: SubscriptionDevice,
}

fn id_number_or_text<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| serde::de::Error::custom("id must be a non-negative integer")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom("id must be numeric")),
        other => Err(serde::de::Error::custom(format!(
            "id must be a number, got {other}"
        ))),
    }
}

/// `{"subscription": {...}}`; `POST` and `GET /subscriptions` answer a list of these.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionEnvelope {
    /// The subscription.
    pub subscription: Subscription,
}

/// `user` of a push event: the recipients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventUsers {
    /// Comma-separated user ids.
    pub ids: String,
}

/// The event inside `POST /events {"event": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventParams {
    /// Always `push`.
    pub notification_type: String,
    /// `development` or `production`.
    pub environment: String,
    /// Only this channel; absent: every channel but `apns_voip` (§3.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_type: Option<String>,
    /// `one_shot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The payload: base64 of a JSON object (or of plain text).
    pub message: String,
    /// The recipients.
    pub user: EventUsers,
}

/// `POST /events` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateEventRequest {
    /// The event.
    pub event: EventParams,
}

/// A created push event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its id.
    pub id: u64,
    /// `one_shot`, …
    #[serde(default)]
    pub event_type: Option<String>,
    /// The payload as sent (base64).
    #[serde(default)]
    pub message: Option<String>,
    /// `{"name": …}` of the channel, when the event named one.
    #[serde(default)]
    pub notification_channel: Option<Named>,
    /// `development` or `production`.
    #[serde(default)]
    pub environment: Option<String>,
    /// The sender.
    #[serde(default)]
    pub user_id: Option<u64>,
    /// The application.
    #[serde(default)]
    pub application_id: Option<u64>,
    /// `API`, …
    #[serde(default)]
    pub kind: Option<String>,
    /// Whether it is still to be delivered.
    #[serde(default)]
    pub active: Option<bool>,
    /// How many times it was delivered (the platform's spelling).
    #[serde(default)]
    pub occured_count: Option<u64>,
    /// When it was created (ISO 8601).
    #[serde(default)]
    pub created_at: Option<String>,
    /// When it last changed (ISO 8601).
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// `{"event": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// The event.
    pub event: Event,
}

/// `POST /events` answers one `{"event"}` (cubeserver, the platform's docs) or a list of
/// them (the JS SDK's type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventsCreated {
    /// One event.
    One(Box<EventEnvelope>),
    /// Several.
    Many(Vec<EventEnvelope>),
}

impl EventsCreated {
    /// The events, whichever shape they came in.
    pub fn into_events(self) -> Vec<Event> {
        match self {
            Self::One(e) => vec![e.event],
            Self::Many(v) => v.into_iter().map(|e| e.event).collect(),
        }
    }
}

// ------------------------------------------------------------------------------------------
// The chat push payload as a device receives it.

/// The largest payload [`parse_chat_push`] reads (APNs allows 4 KiB, VoIP 5 KiB, FCM 4 KiB;
/// this leaves room for what an app or a proxy adds).
pub const MAX_PUSH_PAYLOAD_BYTES: usize = 64 * 1024;

/// The deepest JSON nesting [`parse_chat_push`] reads (a chat push is two levels deep).
pub const MAX_PUSH_PAYLOAD_DEPTH: usize = 16;

/// Keys of a chat push that are not custom parameters.
const RESERVED: &[&str] = &[
    "aps",
    "data",
    "message",
    "dialog_id",
    "message_id",
    "user_id",
    "title",
    "ios_badge",
    "ios_sound",
    "ios_voip",
];

/// A ConnectyCube chat push, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatPush {
    /// The dialog the message belongs to.
    pub dialog_id: String,
    /// The message's id, when the push carries it.
    pub message_id: Option<String>,
    /// The sender's user id.
    pub sender_id: u64,
    /// The text shown (`message`, or the APNs alert body); `Attachment` for a message with
    /// attachments only.
    pub text: Option<String>,
    /// The title the platform chose (the sender's name), when present.
    pub title: Option<String>,
    /// The message's custom parameters, as text.
    pub custom: BTreeMap<String, String>,
}

/// Why a payload is not a ConnectyCube chat push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushPayloadError {
    /// Longer than [`MAX_PUSH_PAYLOAD_BYTES`].
    TooLarge,
    /// Nested deeper than [`MAX_PUSH_PAYLOAD_DEPTH`].
    TooDeep,
    /// Not a JSON object.
    NotJson,
    /// A JSON object, but not a ConnectyCube chat push (no dialog id or sender id). The
    /// text names what is missing, never the payload's content.
    NotConnectyCube(&'static str),
}

impl fmt::Display for PushPayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => write!(f, "push payload larger than {MAX_PUSH_PAYLOAD_BYTES} bytes"),
            Self::TooDeep => write!(
                f,
                "push payload nested deeper than {MAX_PUSH_PAYLOAD_DEPTH} levels"
            ),
            Self::NotJson => write!(f, "push payload is not a JSON object"),
            Self::NotConnectyCube(why) => write!(f, "not a ConnectyCube chat push: {why}"),
        }
    }
}

impl std::error::Error for PushPayloadError {}

/// Rejects text nested deeper than `max` before any parsing (so a hostile payload never
/// reaches the recursive parser), counting `[`/`{` outside strings.
fn nesting_within(text: &str, max: usize) -> bool {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// A scalar as text: strings as they are, numbers and booleans written out; `None` for
/// null, arrays and objects.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses a received push payload (the JSON text) into a [`ChatPush`].
///
/// Accepted shapes (§3.7): the universal object (`message`, `dialog_id`, `message_id`,
/// `user_id`, `title` and custom parameters; what FCM hands an app as `data` and what web
/// push carries), the same next to an APNs `aps` dictionary, and an FCM HTTP message with
/// those fields under `data`. Values may be strings or numbers. Anything else — not JSON,
/// too large or deep, or an object without a dialog id and a numeric sender id — is a
/// [`PushPayloadError`].
pub fn parse_chat_push(json: &str) -> Result<ChatPush, PushPayloadError> {
    if json.len() > MAX_PUSH_PAYLOAD_BYTES {
        return Err(PushPayloadError::TooLarge);
    }
    if !nesting_within(json, MAX_PUSH_PAYLOAD_DEPTH) {
        return Err(PushPayloadError::TooDeep);
    }
    let root: Map<String, Value> =
        serde_json::from_str(json).map_err(|_| PushPayloadError::NotJson)?;
    chat_push_of(&root)
}

/// [`parse_chat_push`] over an already parsed object.
pub fn chat_push_of(root: &Map<String, Value>) -> Result<ChatPush, PushPayloadError> {
    // FCM HTTP v1 / legacy message: the fields live under `data`.
    let fields = match root.get("data") {
        Some(Value::Object(data)) if !root.contains_key("dialog_id") => data,
        _ => root,
    };
    let dialog_id = fields
        .get("dialog_id")
        .and_then(scalar_text)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or(PushPayloadError::NotConnectyCube("no dialog_id"))?;
    let sender_id = fields
        .get("user_id")
        .and_then(scalar_text)
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|id| *id > 0)
        .ok_or(PushPayloadError::NotConnectyCube("no numeric user_id"))?;
    let message_id = fields
        .get("message_id")
        .and_then(scalar_text)
        .filter(|s| !s.is_empty());
    let alert = root.get("aps").and_then(|aps| aps.get("alert"));
    let text = fields.get("message").and_then(scalar_text).or_else(|| {
        alert.and_then(|a| match a {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("body").and_then(scalar_text),
            _ => None,
        })
    });
    let title = fields
        .get("title")
        .and_then(scalar_text)
        .or_else(|| alert.and_then(|a| a.get("title")).and_then(scalar_text));
    let custom = fields
        .iter()
        .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
        .filter_map(|(k, v)| {
            let text = match v {
                Value::Null => return None,
                Value::Array(_) | Value::Object(_) => v.to_string(),
                other => scalar_text(other)?,
            };
            Some((k.clone(), text))
        })
        .collect();
    Ok(ChatPush {
        dialog_id,
        message_id,
        sender_id,
        text,
        title,
        custom,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subscription_request_matches_the_js_sdk() {
        let r = CreateSubscriptionRequest {
            notification_channel: NotificationChannel::Apns.as_str().into(),
            push_token: PushToken {
                environment: PushEnvironment::Development.as_str().into(),
                client_identification_sequence: Some("abc".into()),
                bundle_identifier: Some("com.x".into()),
                ..Default::default()
            },
            device: DeviceParams {
                platform: DevicePlatform::Ios.as_str().into(),
                udid: "u1".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"notification_channel": "apns",
                   "push_token": {"environment": "development",
                                  "client_identification_sequence": "abc",
                                  "bundle_identifier": "com.x"},
                   "device": {"platform": "ios", "udid": "u1"}})
        );
        assert!(!format!("{:?}", r.push_token).contains("abc"));
    }

    #[test]
    fn channels_by_name() {
        assert_eq!(
            NotificationChannel::parse("fcm"),
            Some(NotificationChannel::Gcm)
        );
        assert_eq!(
            NotificationChannel::parse("apns_voip").unwrap().as_str(),
            "apns_voip"
        );
        assert_eq!(NotificationChannel::parse("sms"), None);
        let c: NotificationChannel = serde_json::from_value(json!("fcm")).unwrap();
        assert_eq!(serde_json::to_value(c).unwrap(), json!("gcm"));
    }

    #[test]
    fn subscription_list_answer() {
        let l: Vec<SubscriptionEnvelope> = serde_json::from_value(json!([
            {"subscription": {"id": 7, "notification_channel": {"name": "gcm"},
                              "device": {"udid": "u", "platform": {"name": "android"}}}},
            {"subscription": {"id": "8", "notification_channel": {"name": "apns"},
                              "device": {"udid": "v", "platform": {"name": "ios"}}}}
        ]))
        .unwrap();
        assert_eq!(l[0].subscription.id, 7);
        assert_eq!(l[1].subscription.id, 8);
        assert_eq!(l[1].subscription.device.platform.name, "ios");
    }

    #[test]
    fn events_answer_one_or_many() {
        let one: EventsCreated = serde_json::from_value(json!({"event": {
            "id": 1, "event_type": "one_shot", "message": "e30=", "environment": "development",
            "notification_channel": {"name": "gcm"}, "user_id": 5, "application_id": 1,
            "kind": "API", "active": false, "occured_count": 1,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
        }}))
        .unwrap();
        assert_eq!(one.into_events()[0].id, 1);
        let many: EventsCreated =
            serde_json::from_value(json!([{"event": {"id": 2}}, {"event": {"id": 3}}])).unwrap();
        assert_eq!(many.into_events().len(), 2);
    }

    #[test]
    fn event_body() {
        let e = CreateEventRequest {
            event: EventParams {
                notification_type: "push".into(),
                environment: "production".into(),
                push_type: None,
                event_type: Some("one_shot".into()),
                message: "e30=".into(),
                user: EventUsers { ids: "1,2".into() },
            },
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"event": {"notification_type": "push", "environment": "production",
                   "event_type": "one_shot", "message": "e30=", "user": {"ids": "1,2"}}})
        );
    }

    #[test]
    fn apns_payload() {
        let p = parse_chat_push(
            &json!({"aps": {"alert": {"title": "Ann", "body": "hi"}, "sound": "default",
                            "mutable-content": 1},
                    "message": "hi", "dialog_id": "5f1", "message_id": "m1", "user_id": "42",
                    "title": "Ann", "color": "red", "n": 3})
            .to_string(),
        )
        .unwrap();
        assert_eq!(p.dialog_id, "5f1");
        assert_eq!(p.message_id.as_deref(), Some("m1"));
        assert_eq!(p.sender_id, 42);
        assert_eq!(p.text.as_deref(), Some("hi"));
        assert_eq!(p.title.as_deref(), Some("Ann"));
        assert_eq!(p.custom.len(), 2);
        assert_eq!(p.custom["color"], "red");
        assert_eq!(p.custom["n"], "3");
    }

    #[test]
    fn apns_alert_only_and_numbers() {
        let p = parse_chat_push(
            &json!({"aps": {"alert": "hello"}, "dialog_id": "d", "user_id": 7}).to_string(),
        )
        .unwrap();
        assert_eq!(p.text.as_deref(), Some("hello"));
        assert_eq!(p.sender_id, 7);
        assert_eq!(p.message_id, None);
    }

    #[test]
    fn fcm_message_and_data_map() {
        let data = json!({"message": "yo", "dialog_id": "d2", "message_id": "m2",
                          "user_id": "9", "title": "Bob", "extra": "x"});
        let wrapped = parse_chat_push(&json!({"data": data}).to_string()).unwrap();
        let flat = parse_chat_push(&data.to_string()).unwrap();
        assert_eq!(wrapped, flat);
        assert_eq!(flat.custom["extra"], "x");
        assert_eq!(flat.text.as_deref(), Some("yo"));
    }

    #[test]
    fn not_connectycube() {
        use PushPayloadError::*;
        assert_eq!(parse_chat_push("[1]"), Err(NotJson));
        assert_eq!(parse_chat_push("not json"), Err(NotJson));
        assert_eq!(parse_chat_push(""), Err(NotJson));
        assert!(matches!(
            parse_chat_push(r#"{"aps":{"alert":"hi"}}"#),
            Err(NotConnectyCube(_))
        ));
        assert!(matches!(
            parse_chat_push(r#"{"dialog_id":"d","user_id":"bob"}"#),
            Err(NotConnectyCube(_))
        ));
        assert!(matches!(
            parse_chat_push(r#"{"dialog_id":"","user_id":1}"#),
            Err(NotConnectyCube(_))
        ));
        assert!(matches!(
            parse_chat_push(r#"{"data":{"foo":1}}"#),
            Err(NotConnectyCube(_))
        ));
    }

    #[test]
    fn hostile_payloads() {
        let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
        assert_eq!(parse_chat_push(&deep), Err(PushPayloadError::TooLarge));
        let deep = format!(
            r#"{{"dialog_id":"d","user_id":1,"x":{}1{}}}"#,
            "[".repeat(1000),
            "]".repeat(1000)
        );
        assert_eq!(parse_chat_push(&deep), Err(PushPayloadError::TooDeep));
        let huge = json!({"dialog_id": "d", "user_id": 1, "message": "x".repeat(70_000)});
        assert_eq!(
            parse_chat_push(&huge.to_string()),
            Err(PushPayloadError::TooLarge)
        );
        // Brackets inside strings do not count as nesting.
        let p = parse_chat_push(
            &json!({"dialog_id": "d", "user_id": 1, "message": "[[[[[[[[[[[[[[[[[[[[[[[["})
                .to_string(),
        )
        .unwrap();
        assert_eq!(p.text.as_deref(), Some("[[[[[[[[[[[[[[[[[[[[[[[["));
        // Nested custom values come back as JSON text.
        let p = parse_chat_push(r#"{"dialog_id":"d","user_id":1,"o":{"a":[1]}}"#).unwrap();
        assert_eq!(p.custom["o"], r#"{"a":[1]}"#);
        let e = PushPayloadError::NotConnectyCube("no dialog_id").to_string();
        assert!(e.contains("no dialog_id"));
    }
}
