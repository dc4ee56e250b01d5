//! Push notifications: device subscriptions and push events ([`Push`], from
//! [`Client::push`]), and the parser of received chat pushes, which needs no client and no
//! connection ([`parse_chat_push`], [`PushSenderLookup`]) so that an iOS Notification
//! Service Extension or an FCM service can turn a push into dialog, message, sender and text
//! and show the sender's name from the app's local store.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use crate::api::Api;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::store::Store;
pub use cubechat_wire::push::{
    ChatPush, DevicePlatform, Event, NotificationChannel, PushEnvironment, Subscription,
};
use cubechat_wire::push::{
    CreateSubscriptionRequest, DeviceParams, EventsCreated, PushToken, SubscriptionEnvelope,
};

/// The most recipients of one push event.
pub const MAX_EVENT_RECIPIENTS: usize = 1000;
/// The largest push event payload (JSON bytes, before base64).
pub const MAX_EVENT_PAYLOAD: usize = 4096;

/// Parses a received push payload (its JSON text) into a [`ChatPush`]: see
/// [`cubechat_wire::push::parse_chat_push`] for the shapes read. A payload that is not a
/// ConnectyCube chat push is [`Error::NotChatPush`].
pub fn parse_chat_push(json: &str) -> Result<ChatPush> {
    cubechat_wire::push::parse_chat_push(json).map_err(|e| Error::NotChatPush(e.to_string()))
}

/// Read-only lookups in the local store of the app, for a process beside it (an iOS
/// Notification Service Extension, an FCM service) that has no client: the sender's name of
/// a chat push. It opens the store file read-only and never writes.
#[derive(Debug)]
pub struct PushSenderLookup {
    store: Store,
}

impl PushSenderLookup {
    /// Opens the store of `user_id` under `store_dir` (the app's `Config::store_dir`)
    /// read-only. Errors: `Store` (no such file yet, unreadable), `StoreCorrupt`,
    /// `StoreTooNew`.
    pub fn open(store_dir: &Path, app_id: u64, user_id: u64) -> Result<Self> {
        Self::open_file(&crate::local::store_file(store_dir, app_id, user_id))
    }

    /// Opens a store file read-only.
    pub fn open_file(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::Store("no store file at that path".into()));
        }
        Ok(Self {
            store: Store::open_read_only(path)?,
        })
    }

    /// The name to show for a user: the full name, else the login; `None` when the store
    /// has not seen the user.
    pub fn sender_name(&self, user_id: u64) -> Result<Option<String>> {
        Ok(self
            .store
            .user(user_id)?
            .and_then(|u| u.full_name.filter(|n| !n.trim().is_empty()).or(u.login)))
    }
}

/// A device subscription to create.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSubscription {
    /// `apns`, `apns_voip`, `gcm` (or `fcm`) or `web`; anything else is `InvalidInput`
    /// before the network.
    pub channel: String,
    /// Sandbox or production.
    pub environment: PushEnvironment,
    /// The device token (APNs, VoIP, FCM); for `web` the endpoint URL.
    pub token: String,
    /// The app's bundle identifier (iOS) or package name.
    pub bundle_identifier: Option<String>,
    /// The device's unique id (the same for every subscription of the device).
    pub udid: String,
    /// The platform; by default iOS for `apns`/`apns_voip`, Android for `gcm`, web for `web`.
    pub platform: Option<DevicePlatform>,
    /// Web push only: the `auth` key.
    pub web_auth: Option<String>,
    /// Web push only: the `p256dh` key.
    pub web_p256dh: Option<String>,
}

impl std::fmt::Debug for NewSubscription {
    // Without the token and keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSubscription")
            .field("channel", &self.channel)
            .field("environment", &self.environment)
            .field("udid", &self.udid)
            .finish_non_exhaustive()
    }
}

impl NewSubscription {
    fn request(&self) -> Result<CreateSubscriptionRequest> {
        let channel = NotificationChannel::parse(self.channel.trim()).ok_or_else(|| {
            Error::InvalidInput("unknown push channel (apns, apns_voip, gcm, web)".into())
        })?;
        if self.token.trim().is_empty() || self.token.len() > 4096 {
            return Err(Error::InvalidInput(
                "the push token is empty or too long".into(),
            ));
        }
        if self.udid.trim().is_empty() || self.udid.len() > 255 {
            return Err(Error::InvalidInput(
                "the device udid is empty or too long".into(),
            ));
        }
        let platform = self.platform.unwrap_or(match channel {
            NotificationChannel::Apns | NotificationChannel::ApnsVoip => DevicePlatform::Ios,
            NotificationChannel::Gcm => DevicePlatform::Android,
            NotificationChannel::Web => DevicePlatform::Web,
        });
        let mut token = PushToken {
            environment: self.environment.as_str().into(),
            bundle_identifier: self.bundle_identifier.clone(),
            ..Default::default()
        };
        if channel == NotificationChannel::Web {
            if self.web_auth.is_none() || self.web_p256dh.is_none() {
                return Err(Error::InvalidInput(
                    "a web subscription needs its auth and p256dh keys".into(),
                ));
            }
            token.web_endpoint = Some(self.token.clone());
            token.web_auth = self.web_auth.clone();
            token.web_p256dh = self.web_p256dh.clone();
        } else {
            token.client_identification_sequence = Some(self.token.clone());
        }
        Ok(CreateSubscriptionRequest {
            notification_channel: channel.as_str().into(),
            push_token: token,
            device: DeviceParams {
                platform: platform.as_str().into(),
                udid: self.udid.clone(),
            },
        })
    }
}

/// A push event to send to users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    /// The recipients (1..=1000 user ids).
    pub user_ids: Vec<u64>,
    /// The text shown (`message`).
    pub message: String,
    /// Further payload fields (e.g. `ios_badge`, `ios_voip`, the app's own keys).
    pub custom: BTreeMap<String, String>,
    /// The environment of the subscriptions it goes to.
    pub environment: PushEnvironment,
    /// Only this channel (name as in [`NewSubscription::channel`]); `None`: every channel
    /// but `apns_voip`.
    pub channel: Option<String>,
}

impl PushEvent {
    fn body(&self) -> Result<Value> {
        if self.user_ids.is_empty() {
            return Err(Error::InvalidInput("the list of user ids is empty".into()));
        }
        if self.user_ids.len() > MAX_EVENT_RECIPIENTS || self.user_ids.contains(&0) {
            return Err(Error::InvalidInput(format!(
                "1..={MAX_EVENT_RECIPIENTS} positive user ids"
            )));
        }
        let channel = match &self.channel {
            Some(c) => Some(
                NotificationChannel::parse(c.trim())
                    .ok_or_else(|| Error::InvalidInput("unknown push channel".into()))?,
            ),
            None => None,
        };
        let mut payload = serde_json::Map::new();
        for (k, v) in &self.custom {
            payload.insert(k.clone(), json!(v));
        }
        payload.insert("message".into(), json!(self.message));
        let text = Value::Object(payload).to_string();
        if text.len() > MAX_EVENT_PAYLOAD {
            return Err(Error::InvalidInput(format!(
                "the push payload is larger than {MAX_EVENT_PAYLOAD} bytes"
            )));
        }
        let ids: Vec<String> = self.user_ids.iter().map(u64::to_string).collect();
        let mut event = json!({
            "notification_type": "push",
            "environment": self.environment.as_str(),
            "event_type": "one_shot",
            "message": base64(text.as_bytes()),
            "user": {"ids": ids.join(",")},
        });
        if let Some(c) = channel {
            event["push_type"] = json!(c.as_str());
        }
        Ok(json!({ "event": event }))
    }
}

/// Standard base64 with padding (what `POST /events` takes as `message`).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The push feature of one [`Client`]: subscriptions of this device and push events.
#[derive(Clone)]
pub struct Push {
    api: Arc<Api>,
}

impl std::fmt::Debug for Push {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Push").finish_non_exhaustive()
    }
}

impl Client {
    /// The push feature: subscriptions and push events.
    pub fn push(&self) -> Push {
        Push {
            api: self.api.clone(),
        }
    }
}

impl Push {
    /// Subscribes this device (`POST /subscriptions`); returns the subscriptions created.
    /// `InvalidInput` before the network for an unknown channel, an empty token or udid.
    pub async fn subscribe(&self, s: &NewSubscription) -> Result<Vec<Subscription>> {
        let body = serde_json::to_value(s.request()?)
            .map_err(|e| Error::Protocol(format!("cannot encode the subscription: {e}")))?;
        let list: Vec<SubscriptionEnvelope> = self
            .api
            .call(Method::POST, "subscriptions", &[], Some(&body))
            .await?;
        Ok(list.into_iter().map(|e| e.subscription).collect())
    }

    /// The current user's subscriptions (`GET /subscriptions`).
    pub async fn subscriptions(&self) -> Result<Vec<Subscription>> {
        let list: Vec<SubscriptionEnvelope> = self
            .api
            .call(Method::GET, "subscriptions", &[], None)
            .await?;
        Ok(list.into_iter().map(|e| e.subscription).collect())
    }

    /// Deletes a subscription (`DELETE /subscriptions/{id}`).
    pub async fn unsubscribe(&self, id: u64) -> Result<()> {
        if id == 0 {
            return Err(Error::InvalidInput("subscription id 0".into()));
        }
        self.api
            .call_empty(Method::DELETE, &format!("subscriptions/{id}"), &[], None)
            .await
    }

    /// Sends a push event to users (`POST /events`). `InvalidInput` before the network
    /// for an empty or oversized id list, an unknown channel or a payload over 4 KiB.
    pub async fn send_event(&self, event: &PushEvent) -> Result<Vec<Event>> {
        let body = event.body()?;
        let created: EventsCreated = self
            .api
            .call(Method::POST, "events", &[], Some(&body))
            .await?;
        Ok(created.into_events())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"{\"message\":\"hi\"}"), "eyJtZXNzYWdlIjoiaGkifQ==");
    }

    fn sub(channel: &str) -> NewSubscription {
        NewSubscription {
            channel: channel.into(),
            environment: PushEnvironment::Development,
            token: "tok".into(),
            bundle_identifier: Some("com.x".into()),
            udid: "u1".into(),
            platform: None,
            web_auth: None,
            web_p256dh: None,
        }
    }

    #[test]
    fn subscriptions_are_checked_and_shaped() {
        assert!(matches!(sub("sms").request(), Err(Error::InvalidInput(_))));
        let mut s = sub("apns");
        s.token = " ".into();
        assert!(matches!(s.request(), Err(Error::InvalidInput(_))));
        assert!(matches!(sub("web").request(), Err(Error::InvalidInput(_))));
        let r = sub("fcm").request().unwrap();
        assert_eq!(r.notification_channel, "gcm");
        assert_eq!(r.device.platform, "android");
        assert_eq!(
            r.push_token.client_identification_sequence.as_deref(),
            Some("tok")
        );
        assert_eq!(sub("apns_voip").request().unwrap().device.platform, "ios");
        assert!(!format!("{:?}", sub("apns")).contains("tok"));
    }

    #[test]
    fn events_are_checked_and_encoded() {
        let mut e = PushEvent {
            user_ids: vec![],
            message: "hi".into(),
            custom: BTreeMap::new(),
            environment: PushEnvironment::Production,
            channel: None,
        };
        assert!(matches!(e.body(), Err(Error::InvalidInput(_))));
        e.user_ids = vec![3, 4];
        e.channel = Some("pager".into());
        assert!(matches!(e.body(), Err(Error::InvalidInput(_))));
        e.channel = Some("apns".into());
        let b = e.body().unwrap();
        assert_eq!(b["event"]["user"]["ids"], "3,4");
        assert_eq!(b["event"]["push_type"], "apns");
        assert_eq!(b["event"]["message"], base64(br#"{"message":"hi"}"#));
        e.message = "x".repeat(5000);
        assert!(matches!(e.body(), Err(Error::InvalidInput(_))));
    }

    #[test]
    fn parser_errors_are_typed() {
        assert!(matches!(parse_chat_push("{}"), Err(Error::NotChatPush(_))));
        let p = parse_chat_push(r#"{"dialog_id":"d","user_id":"3","message":"m"}"#).unwrap();
        assert_eq!(p.sender_id, 3);
    }

    #[test]
    fn sender_name_from_a_read_only_store() {
        let dir = std::env::temp_dir().join(format!("cubechat-push-{}", crate::xmpp::new_id()));
        {
            let path = crate::local::store_file(&dir, 7, 5);
            std::fs::create_dir_all(&dir).unwrap();
            let s = Store::open(Some(&path)).unwrap();
            s.put_users(&[
                serde_json::from_value(json!({"id": 9, "full_name": "Ann", "login": "ann"}))
                    .unwrap(),
                serde_json::from_value(json!({"id": 10, "login": "bob"})).unwrap(),
            ])
            .unwrap();
        }
        assert!(matches!(
            PushSenderLookup::open(&dir, 7, 6),
            Err(Error::Store(_))
        ));
        let l = PushSenderLookup::open(&dir, 7, 5).unwrap();
        assert_eq!(l.sender_name(9).unwrap().as_deref(), Some("Ann"));
        assert_eq!(l.sender_name(10).unwrap().as_deref(), Some("bob"));
        assert_eq!(l.sender_name(11).unwrap(), None);
        // Read-only: a write fails.
        assert!(l.store.put_users(&[User0::default_with(12)]).is_err());
        drop(l);
        let _ = std::fs::remove_dir_all(&dir);
    }

    struct User0;
    impl User0 {
        fn default_with(id: u64) -> cubechat_wire::auth::User {
            cubechat_wire::auth::User {
                id,
                ..Default::default()
            }
        }
    }
}
