//! Push for apps: thin wrappers over `cubechat_core::push`.
//!
//! - [`ChatClient::push`] → [`Push`]: device subscriptions and push events.
//! - [`parse_chat_push`] and [`PushSenderLookup`] need no client and no connection: for an
//!   iOS Notification Service Extension or an FCM service.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use cubechat_core::push as core;

use crate::client::ChatClient;
use crate::error::ChatError;
use crate::runtime::run;

/// The push environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PushEnvironment {
    /// Sandbox / debug builds.
    Development,
    /// Store builds.
    Production,
}

impl From<PushEnvironment> for core::PushEnvironment {
    fn from(e: PushEnvironment) -> Self {
        match e {
            PushEnvironment::Development => Self::Development,
            PushEnvironment::Production => Self::Production,
        }
    }
}

/// The platform of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DevicePlatform {
    /// iOS.
    Ios,
    /// Android.
    Android,
    /// A browser.
    Web,
}

impl From<DevicePlatform> for core::DevicePlatform {
    fn from(p: DevicePlatform) -> Self {
        match p {
            DevicePlatform::Ios => Self::Ios,
            DevicePlatform::Android => Self::Android,
            DevicePlatform::Web => Self::Web,
        }
    }
}

/// A device subscription to create. `Debug` leaves the token out.
#[derive(Clone, PartialEq, uniffi::Record)]
pub struct NewSubscription {
    /// `apns`, `apns_voip`, `gcm` (or `fcm`) or `web`; anything else is `InvalidInput`.
    pub channel: String,
    /// Sandbox or production.
    pub environment: PushEnvironment,
    /// The device token; for `web` the endpoint URL.
    pub token: String,
    /// The device's unique id.
    pub udid: String,
    /// The app's bundle identifier or package name.
    #[uniffi(default)]
    pub bundle_identifier: Option<String>,
    /// The platform; by default from the channel.
    #[uniffi(default)]
    pub platform: Option<DevicePlatform>,
    /// Web push only: the `auth` key.
    #[uniffi(default)]
    pub web_auth: Option<String>,
    /// Web push only: the `p256dh` key.
    #[uniffi(default)]
    pub web_p256dh: Option<String>,
}

impl std::fmt::Debug for NewSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSubscription")
            .field("channel", &self.channel)
            .field("udid", &self.udid)
            .finish_non_exhaustive()
    }
}

impl From<NewSubscription> for core::NewSubscription {
    fn from(s: NewSubscription) -> Self {
        Self {
            channel: s.channel,
            environment: s.environment.into(),
            token: s.token,
            bundle_identifier: s.bundle_identifier,
            udid: s.udid,
            platform: s.platform.map(Into::into),
            web_auth: s.web_auth,
            web_p256dh: s.web_p256dh,
        }
    }
}

/// A stored subscription.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Subscription {
    /// Its id (for `unsubscribe`).
    pub id: u64,
    /// The channel's wire name (`apns`, `apns_voip`, `gcm`, `web`).
    pub channel: String,
    /// The device's unique id.
    pub udid: String,
    /// The platform's wire name (`ios`, `android`, `web`).
    pub platform: String,
}

impl From<core::Subscription> for Subscription {
    fn from(s: core::Subscription) -> Self {
        Self {
            id: s.id,
            channel: s.notification_channel.name,
            udid: s.device.udid,
            platform: s.device.platform.name,
        }
    }
}

/// A push event to send to users.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PushEvent {
    /// The recipients (1–1000 user ids).
    pub user_ids: Vec<u64>,
    /// The text shown.
    pub message: String,
    /// The environment of the subscriptions it goes to.
    pub environment: PushEnvironment,
    /// Further payload fields (e.g. `ios_badge`).
    #[uniffi(default)]
    pub custom: HashMap<String, String>,
    /// Only this channel; `None`: every channel but `apns_voip`.
    #[uniffi(default)]
    pub channel: Option<String>,
}

/// A created push event.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SentPushEvent {
    /// Its id.
    pub id: u64,
    /// `development` or `production`, as the server recorded it.
    pub environment: Option<String>,
}

/// A ConnectyCube chat push, parsed.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ChatPush {
    /// The dialog of the message.
    pub dialog_id: String,
    /// The message's id, when the push carries it.
    pub message_id: Option<String>,
    /// The sender's user id.
    pub sender_id: u64,
    /// The text shown.
    pub text: Option<String>,
    /// The title the platform chose (the sender's name), when present.
    pub title: Option<String>,
    /// The message's custom parameters.
    pub custom: HashMap<String, String>,
}

impl From<core::ChatPush> for ChatPush {
    fn from(p: core::ChatPush) -> Self {
        Self {
            dialog_id: p.dialog_id,
            message_id: p.message_id,
            sender_id: p.sender_id,
            text: p.text,
            title: p.title,
            custom: p.custom.into_iter().collect(),
        }
    }
}

/// Parses a received push payload (its JSON text: APNs `userInfo`, an FCM message or its
/// `data` map, a web push) into a [`ChatPush`]. Needs no client and no connection. A
/// payload that is not a ConnectyCube chat push is `ChatError::NotChatPush`.
#[uniffi::export]
pub fn parse_chat_push(json: String) -> Result<ChatPush, ChatError> {
    Ok(core::parse_chat_push(&json)?.into())
}

/// Read-only lookups in the app's local store for a process beside the app (a Notification
/// Service Extension, an FCM service): never writes, needs no client.
#[derive(uniffi::Object)]
pub struct PushSenderLookup {
    inner: core::PushSenderLookup,
}

#[uniffi::export]
impl PushSenderLookup {
    /// Opens the store of `user_id` under `store_dir` (the app's `ClientConfig.store_dir`)
    /// read-only. Errors: `Store` (no store file yet), `StoreCorrupt`, `StoreTooNew`.
    #[uniffi::constructor]
    pub fn new(store_dir: String, app_id: u64, user_id: u64) -> Result<Arc<Self>, ChatError> {
        Ok(Arc::new(Self {
            inner: core::PushSenderLookup::open(&PathBuf::from(store_dir), app_id, user_id)?,
        }))
    }

    /// The name to show for a user (full name, else login); `None` when unknown.
    pub fn sender_name(&self, user_id: u64) -> Result<Option<String>, ChatError> {
        Ok(self.inner.sender_name(user_id)?)
    }
}

/// The push feature of a [`ChatClient`].
#[derive(uniffi::Object)]
pub struct Push {
    inner: core::Push,
}

#[uniffi::export]
impl ChatClient {
    /// The push feature: subscriptions and push events.
    pub fn push(&self) -> Arc<Push> {
        Arc::new(Push {
            inner: self.core().push(),
        })
    }
}

#[uniffi::export]
impl Push {
    /// Subscribes this device; returns the subscriptions created. `InvalidInput` before
    /// the network for an unknown channel or an empty token or udid.
    pub async fn subscribe(
        &self,
        subscription: NewSubscription,
    ) -> Result<Vec<Subscription>, ChatError> {
        let p = self.inner.clone();
        run(async move { p.subscribe(&subscription.into()).await })
            .await
            .map(|v| v.into_iter().map(Into::into).collect())
    }

    /// The current user's subscriptions.
    pub async fn subscriptions(&self) -> Result<Vec<Subscription>, ChatError> {
        let p = self.inner.clone();
        run(async move { p.subscriptions().await })
            .await
            .map(|v| v.into_iter().map(Into::into).collect())
    }

    /// Deletes a subscription.
    pub async fn unsubscribe(&self, id: u64) -> Result<(), ChatError> {
        let p = self.inner.clone();
        run(async move { p.unsubscribe(id).await }).await
    }

    /// Sends a push event to users. `InvalidInput` before the network for an empty id
    /// list, an unknown channel or an oversized payload.
    pub async fn send_event(&self, event: PushEvent) -> Result<Vec<SentPushEvent>, ChatError> {
        let p = self.inner.clone();
        let event = core::PushEvent {
            user_ids: event.user_ids,
            message: event.message,
            custom: event.custom.into_iter().collect(),
            environment: event.environment.into(),
            channel: event.channel,
        };
        run(async move { p.send_event(&event).await })
            .await
            .map(|v| {
                v.into_iter()
                    .map(|e| SentPushEvent {
                        id: e.id,
                        environment: e.environment,
                    })
                    .collect()
            })
    }
}
