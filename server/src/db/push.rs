//! Push subscriptions, push events and the push outbox (protocol reference §3.6–3.7): the
//! deliveries a deployment would hand to APNs, FCM or Web Push, one row per subscription,
//! recorded instead of sent.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::{Map, Value};

/// One stored subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    pub id: u64,
    pub app_id: u64,
    pub user_id: u64,
    /// `apns`, `apns_voip`, `gcm` or `web`.
    pub channel: String,
    /// The device token (`client_identification_sequence`), or the web endpoint.
    pub token: String,
    /// `development` or `production`.
    pub environment: String,
    pub bundle_identifier: Option<String>,
    pub udid: String,
    /// `ios`, `android` or `web`.
    pub platform: String,
    pub web_auth: Option<String>,
    pub web_p256dh: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

const COLUMNS: &str = "id, app_id, user_id, channel, token, environment, bundle_identifier, \
    udid, platform, web_auth, web_p256dh, created_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Subscription> {
    Ok(Subscription {
        id: r.get(0)?,
        app_id: r.get(1)?,
        user_id: r.get(2)?,
        channel: r.get(3)?,
        token: r.get(4)?,
        environment: r.get(5)?,
        bundle_identifier: r.get(6)?,
        udid: r.get(7)?,
        platform: r.get(8)?,
        web_auth: r.get(9)?,
        web_p256dh: r.get(10)?,
        created_at: r.get(11)?,
    })
}

/// Stores `s` (its `id` is ignored). A subscription of the same device `udid` and channel in
/// the app is replaced, keeping its id, whoever owned it: one device, one user.
pub fn upsert(conn: &Connection, s: &Subscription) -> rusqlite::Result<Subscription> {
    conn.execute(
        "INSERT INTO push_subscriptions (app_id, user_id, channel, token, environment, \
         bundle_identifier, udid, platform, web_auth, web_p256dh, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
         ON CONFLICT (app_id, udid, channel) DO UPDATE SET user_id = ?2, token = ?4, \
         environment = ?5, bundle_identifier = ?6, platform = ?8, web_auth = ?9, \
         web_p256dh = ?10",
        params![
            s.app_id,
            s.user_id,
            s.channel,
            s.token,
            s.environment,
            s.bundle_identifier,
            s.udid,
            s.platform,
            s.web_auth,
            s.web_p256dh,
            s.created_at
        ],
    )?;
    conn.query_row(
        &format!(
            "SELECT {COLUMNS} FROM push_subscriptions WHERE app_id = ?1 AND udid = ?2 \
             AND channel = ?3"
        ),
        params![s.app_id, s.udid, s.channel],
        from_row,
    )
}

/// A user's subscriptions, oldest first.
pub fn for_user(
    conn: &Connection,
    app_id: u64,
    user_id: u64,
) -> rusqlite::Result<Vec<Subscription>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM push_subscriptions WHERE app_id = ?1 AND user_id = ?2 ORDER BY id"
    ))?;
    let rows = stmt.query_map(params![app_id, user_id], from_row)?;
    rows.collect()
}

/// One subscription by id, in an app.
pub fn find(conn: &Connection, app_id: u64, id: u64) -> rusqlite::Result<Option<Subscription>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM push_subscriptions WHERE app_id = ?1 AND id = ?2"),
        params![app_id, id],
        from_row,
    )
    .optional()
}

/// Deletes one subscription.
pub fn delete(conn: &Connection, id: u64) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM push_subscriptions WHERE id = ?1", [id])? > 0)
}

/// Deletes every subscription of a user (their account is gone).
pub fn delete_for_user(conn: &Connection, app_id: u64, user_id: u64) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM push_subscriptions WHERE app_id = ?1 AND user_id = ?2",
        params![app_id, user_id],
    )?;
    Ok(())
}

/// A stored push event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub app_id: u64,
    /// The sender; `None` for an application session.
    pub user_id: Option<u64>,
    /// `push_type`, when the event names one channel.
    pub channel: Option<String>,
    pub environment: String,
    pub event_type: String,
    /// The base64 message as sent.
    pub message: String,
    /// The recipients' ids, comma-joined.
    pub recipients: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// Stores an event; returns its id.
pub fn create_event(conn: &Connection, e: &NewEvent) -> rusqlite::Result<u64> {
    conn.execute(
        "INSERT INTO push_events (app_id, user_id, channel, environment, event_type, message, \
         recipients, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            e.app_id,
            e.user_id,
            e.channel,
            e.environment,
            e.event_type,
            e.message,
            e.recipients,
            e.created_at
        ],
    )?;
    Ok(u64::try_from(conn.last_insert_rowid()).unwrap_or(0))
}

/// What a delivery is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// A chat message to an offline or inactive recipient.
    Message {
        dialog_id: String,
        message_id: String,
        sender_id: u64,
    },
    /// A push event.
    Event { id: u64, sender_id: Option<u64> },
}

/// One recorded delivery, as `GET /_admin/push_outbox` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub id: u64,
    pub app_id: u64,
    pub recipient_id: u64,
    pub subscription_id: u64,
    pub channel: String,
    pub token: String,
    pub environment: String,
    pub bundle_identifier: Option<String>,
    pub udid: String,
    pub platform: String,
    /// `message` or `event`.
    pub kind: String,
    pub event_id: Option<u64>,
    pub dialog_id: Option<String>,
    pub message_id: Option<String>,
    pub sender_id: Option<u64>,
    pub payload: Value,
    /// Unix seconds.
    pub created_at: i64,
}

/// Records one delivery of `payload` (already shaped for the subscription's channel).
pub fn record(
    conn: &Connection,
    sub: &Subscription,
    cause: &Cause,
    payload: &Value,
    now: i64,
) -> rusqlite::Result<()> {
    let (kind, event_id, dialog_id, message_id, sender_id) = match cause {
        Cause::Message {
            dialog_id,
            message_id,
            sender_id,
        } => (
            "message",
            None,
            Some(dialog_id.as_str()),
            Some(message_id.as_str()),
            Some(*sender_id),
        ),
        Cause::Event { id, sender_id } => ("event", Some(*id), None, None, *sender_id),
    };
    conn.execute(
        "INSERT INTO push_outbox (app_id, recipient_id, subscription_id, channel, token, \
         environment, bundle_identifier, udid, platform, kind, event_id, dialog_id, message_id, \
         sender_id, payload, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            sub.app_id,
            sub.user_id,
            sub.id,
            sub.channel,
            sub.token,
            sub.environment,
            sub.bundle_identifier,
            sub.udid,
            sub.platform,
            kind,
            event_id,
            dialog_id,
            message_id,
            sender_id,
            payload.to_string(),
            now
        ],
    )?;
    Ok(())
}

/// The outbox, oldest first: one recipient's deliveries, or all.
pub fn outbox(conn: &Connection, recipient_id: Option<u64>) -> rusqlite::Result<Vec<Delivery>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, app_id, recipient_id, subscription_id, channel, token, environment, \
         bundle_identifier, udid, platform, kind, event_id, dialog_id, message_id, sender_id, \
         payload, created_at FROM push_outbox WHERE ?1 IS NULL OR recipient_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([recipient_id], |r| {
        let payload: String = r.get(15)?;
        Ok(Delivery {
            id: r.get(0)?,
            app_id: r.get(1)?,
            recipient_id: r.get(2)?,
            subscription_id: r.get(3)?,
            channel: r.get(4)?,
            token: r.get(5)?,
            environment: r.get(6)?,
            bundle_identifier: r.get(7)?,
            udid: r.get(8)?,
            platform: r.get(9)?,
            kind: r.get(10)?,
            event_id: r.get(11)?,
            dialog_id: r.get(12)?,
            message_id: r.get(13)?,
            sender_id: r.get(14)?,
            payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
            created_at: r.get(16)?,
        })
    })?;
    rows.collect()
}

/// Shapes a universal payload (a JSON object: `message`, `title`?, custom keys...) for a
/// channel (§3.7): APNs gets an `aps` dictionary next to every field, FCM a `data` object of
/// strings, Web Push the object itself.
pub fn for_channel(channel: &str, universal: &Map<String, Value>) -> Value {
    match channel {
        "apns" | "apns_voip" => {
            let mut alert = Map::new();
            if let Some(t) = universal.get("title") {
                alert.insert("title".into(), t.clone());
            }
            alert.insert(
                "body".into(),
                universal.get("message").cloned().unwrap_or(Value::Null),
            );
            let mut aps = Map::new();
            aps.insert("alert".into(), Value::Object(alert));
            aps.insert(
                "sound".into(),
                universal
                    .get("ios_sound")
                    .cloned()
                    .unwrap_or_else(|| Value::String("default".into())),
            );
            aps.insert("mutable-content".into(), Value::from(1));
            if let Some(b) = universal.get("ios_badge") {
                let badge = match b {
                    Value::String(s) => s
                        .trim()
                        .parse::<i64>()
                        .map(Value::from)
                        .unwrap_or(b.clone()),
                    other => other.clone(),
                };
                aps.insert("badge".into(), badge);
            }
            let mut out = universal.clone();
            out.insert("aps".into(), Value::Object(aps));
            Value::Object(out)
        }
        "gcm" => {
            let data: Map<String, Value> = universal
                .iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), Value::String(text))
                })
                .collect();
            let mut out = Map::new();
            out.insert("data".into(), Value::Object(data));
            Value::Object(out)
        }
        _ => Value::Object(universal.clone()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::db::Db;

    fn sub(user: u64, udid: &str, channel: &str) -> Subscription {
        Subscription {
            app_id: 1,
            user_id: user,
            channel: channel.into(),
            token: format!("tok-{udid}"),
            environment: "development".into(),
            udid: udid.into(),
            platform: "ios".into(),
            ..Subscription::default()
        }
    }

    #[test]
    fn one_subscription_per_device_and_channel() {
        let db = Db::open(":memory:").unwrap();
        db.with(|c| {
            let a = upsert(c, &sub(5, "d1", "apns"))?;
            let b = upsert(c, &sub(5, "d1", "apns_voip"))?;
            assert_ne!(a.id, b.id);
            // The same device under another user: taken over, same id.
            let a2 = upsert(
                c,
                &Subscription {
                    token: "new".into(),
                    ..sub(6, "d1", "apns")
                },
            )?;
            assert_eq!((a2.id, a2.user_id, a2.token.as_str()), (a.id, 6, "new"));
            assert_eq!(for_user(c, 1, 5)?.len(), 1);
            assert_eq!(for_user(c, 1, 6)?.len(), 1);
            assert!(delete(c, b.id)?);
            assert!(!delete(c, b.id)?);
            assert_eq!(find(c, 1, b.id)?, None);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn channel_shapes() {
        let u =
            json!({"message": "hi", "title": "Bob", "dialog_id": "d", "n": 5, "ios_badge": "3"});
        let u = u.as_object().unwrap();
        let apns = for_channel("apns", u);
        assert_eq!(apns["aps"]["alert"], json!({"title": "Bob", "body": "hi"}));
        assert_eq!(apns["aps"]["badge"], json!(3));
        assert_eq!(apns["aps"]["sound"], json!("default"));
        assert_eq!(apns["dialog_id"], json!("d"));
        assert_eq!(for_channel("gcm", u)["data"]["n"], json!("5"));
        assert_eq!(for_channel("web", u), json!(u));
    }
}
