//! Push notifications (protocol reference §3.6–3.7): subscriptions of the current user's
//! devices and push events to user ids. No push service is called: every delivery goes to the
//! push outbox (`GET /_admin/push_outbox`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use cubechat_wire::push::{
    self as push_wire, Event, EventEnvelope, Named, SubscriptionDevice, SubscriptionEnvelope,
};
use cubechat_wire::time::iso8601;
use serde_json::{Map, Value};

use super::extract::{AnySession, ApiPath, JsonBody, UserSession};
use crate::db::push::{self as push_db, Cause, NewEvent, Subscription};
use crate::db::{self, users as user_db};
use crate::error::{ApiError, FieldErrors};
use crate::state::AppState;

/// The channels a subscription may name (`fcm` is read as `gcm`).
pub const CHANNELS: &[&str] = &["apns", "apns_voip", "gcm", "web"];
/// The environments of subscriptions and events.
pub const ENVIRONMENTS: &[&str] = &["development", "production"];
/// Device platforms.
pub const PLATFORMS: &[&str] = &["ios", "android", "web"];
/// Most recipients one event may name.
const MAX_EVENT_RECIPIENTS: usize = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/subscriptions", post(subscribe).get(list))
        .route("/subscriptions/{id}", delete(unsubscribe))
        .route("/events", post(create_event))
}

/// `gcm` for `fcm`, else the name lower-cased, if it is a known channel.
pub fn channel_name(raw: &str) -> Option<&'static str> {
    let lower = raw.trim().to_ascii_lowercase();
    let name = if lower == "fcm" {
        "gcm"
    } else {
        lower.as_str()
    };
    CHANNELS.iter().copied().find(|c| *c == name)
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn wire(s: &Subscription) -> SubscriptionEnvelope {
    SubscriptionEnvelope {
        subscription: push_wire::Subscription {
            id: s.id,
            notification_channel: Named {
                name: s.channel.clone(),
            },
            device: SubscriptionDevice {
                udid: s.udid.clone(),
                platform: Named {
                    name: s.platform.clone(),
                },
            },
        },
    }
}

/// `POST /subscriptions` → 201 `[{"subscription": …}]`.
async fn subscribe(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let mut errors = FieldErrors::new();
    let token = body.get("push_token").cloned().unwrap_or(Value::Null);
    let device = body.get("device").cloned().unwrap_or(Value::Null);
    let channel = match text(body.get("notification_channel")) {
        None => {
            errors.add("notification_channel", "can't be blank");
            ""
        }
        Some(raw) => channel_name(&raw).unwrap_or_else(|| {
            errors.add("notification_channel", "is not included in the list");
            ""
        }),
    };
    let environment = text(token.get("environment")).map(|e| e.to_ascii_lowercase());
    match environment.as_deref() {
        None => errors.add("environment", "can't be blank"),
        Some(e) if !ENVIRONMENTS.contains(&e) => {
            errors.add("environment", "is not included in the list");
        }
        Some(_) => {}
    }
    let (token_text, web_auth, web_p256dh) = if channel == "web" {
        let endpoint = text(token.get("web_endpoint"));
        let auth = text(token.get("web_auth"));
        let p256dh = text(token.get("web_p256dh"));
        for (name, v) in [
            ("web_endpoint", &endpoint),
            ("web_auth", &auth),
            ("web_p256dh", &p256dh),
        ] {
            if v.is_none() {
                errors.add(name, "can't be blank");
            }
        }
        (endpoint, auth, p256dh)
    } else {
        let t = text(token.get("client_identification_sequence"));
        if t.is_none() && !channel.is_empty() {
            errors.add("client_identification_sequence", "can't be blank");
        }
        (t, None, None)
    };
    let udid = text(device.get("udid"));
    if udid.is_none() {
        errors.add("udid", "can't be blank");
    }
    let platform = match text(device.get("platform")).map(|p| p.to_ascii_lowercase()) {
        Some(p) if PLATFORMS.contains(&p.as_str()) => p,
        Some(_) => {
            errors.add("platform", "is not included in the list");
            String::new()
        }
        // Absent: the channel's usual platform.
        None => match channel {
            "gcm" => "android",
            "web" => "web",
            _ => "ios",
        }
        .to_owned(),
    };
    errors.into_result()?;
    let sub = Subscription {
        app_id: session.app_id,
        user_id: session.user_id,
        channel: channel.to_owned(),
        token: token_text.unwrap_or_default(),
        environment: environment.unwrap_or_default(),
        bundle_identifier: text(token.get("bundle_identifier")),
        udid: udid.unwrap_or_default(),
        platform,
        web_auth,
        web_p256dh,
        created_at: db::now(),
        ..Subscription::default()
    };
    let stored = state.db.with(|c| push_db::upsert(c, &sub))?;
    tracing::info!(
        user_id = session.user_id,
        subscription_id = stored.id,
        channel = %stored.channel,
        "push subscription stored"
    );
    Ok((StatusCode::CREATED, Json(vec![wire(&stored)])).into_response())
}

/// `GET /subscriptions` → `[{"subscription": …}]`.
async fn list(
    State(state): State<AppState>,
    UserSession(session): UserSession,
) -> Result<Json<Vec<SubscriptionEnvelope>>, ApiError> {
    let subs = state
        .db
        .with(|c| push_db::for_user(c, session.app_id, session.user_id))?;
    Ok(Json(subs.iter().map(wire).collect()))
}

/// `DELETE /subscriptions/{id}` → 200, empty; 404 unless it is the user's own.
async fn unsubscribe(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(id): ApiPath<u64>,
) -> Result<StatusCode, ApiError> {
    state
        .db
        .call(|c| match push_db::find(c, session.app_id, id)? {
            Some(s) if s.user_id == session.user_id => {
                push_db::delete(c, id)?;
                Ok(())
            }
            _ => Err(ApiError::not_found()),
        })?;
    Ok(StatusCode::OK)
}

/// Standard or URL-safe base64, padding optional, whitespace ignored; `None` if malformed.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut padding = false;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                padding = true;
                continue;
            }
            _ => return None,
        };
        if padding {
            return None;
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    (bits < 6).then_some(out)
}

/// Recipient ids from `"1,2"`, `[1, 2]` or `5`.
fn ids(v: Option<&Value>) -> Option<Vec<u64>> {
    let list: Vec<String> = match v? {
        Value::String(s) => s.split(',').map(|p| p.trim().to_owned()).collect(),
        Value::Number(n) => vec![n.to_string()],
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.trim().to_owned(),
                other => other.to_string(),
            })
            .collect(),
        _ => return None,
    };
    let parsed: Option<Vec<u64>> = list
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u64>().ok().filter(|n| *n > 0))
        .collect();
    parsed.filter(|l| !l.is_empty())
}

/// `POST /events {"event": {…}}` → 201 `{"event": …}`; one outbox delivery per matching
/// subscription of the recipients.
async fn create_event(
    State(state): State<AppState>,
    AnySession(session): AnySession,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let event = body.get("event").cloned().unwrap_or(body);
    let mut errors = FieldErrors::new();
    match text(event.get("notification_type")).as_deref() {
        Some("push") => {}
        None => errors.add("notification_type", "can't be blank"),
        Some(_) => errors.add("notification_type", "is not included in the list"),
    }
    let environment = text(event.get("environment")).map(|e| e.to_ascii_lowercase());
    match environment.as_deref() {
        None => errors.add("environment", "can't be blank"),
        Some(e) if !ENVIRONMENTS.contains(&e) => {
            errors.add("environment", "is not included in the list");
        }
        Some(_) => {}
    }
    let channel = match text(event.get("push_type")) {
        None => None,
        Some(raw) => match channel_name(&raw) {
            Some(c) => Some(c),
            None => {
                errors.add("push_type", "is not included in the list");
                None
            }
        },
    };
    let event_type = text(event.get("event_type")).unwrap_or_else(|| "one_shot".to_owned());
    if event_type != "one_shot" {
        errors.add("event_type", "only one_shot is supported");
    }
    let message = text(event.get("message")).unwrap_or_default();
    let universal: Option<Map<String, Value>> = if message.is_empty() {
        errors.add("message", "can't be blank");
        None
    } else {
        match decode_base64(&message).and_then(|b| String::from_utf8(b).ok()) {
            None => {
                errors.add("message", "must be base64 encoded");
                None
            }
            Some(decoded) => Some(match serde_json::from_str::<Value>(&decoded) {
                Ok(Value::Object(o)) => o,
                _ => {
                    let mut o = Map::new();
                    o.insert("message".into(), Value::String(decoded));
                    o
                }
            }),
        }
    };
    let recipients = ids(event.get("user").and_then(|u| u.get("ids")));
    match &recipients {
        None => errors.add("user_ids", "must be a non-empty list of user ids"),
        Some(r) if r.len() > MAX_EVENT_RECIPIENTS => {
            errors.add("user_ids", format!("at most {MAX_EVENT_RECIPIENTS} users"));
        }
        Some(_) => {}
    }
    errors.into_result()?;
    let (Some(universal), Some(recipients), Some(environment)) =
        (universal, recipients, environment)
    else {
        return Err(ApiError::internal());
    };
    let voip = universal
        .get("ios_voip")
        .is_some_and(|v| matches!(v, Value::Number(n) if n.as_i64() == Some(1)) || v == "1");
    let now = db::now();
    let sender = (session.user_id != 0).then_some(session.user_id);
    let app_id = session.app_id;
    let (id, deliveries) = state.db.call(|c| {
        let tx = c.transaction()?;
        let id = push_db::create_event(
            &tx,
            &NewEvent {
                app_id,
                user_id: sender,
                channel: channel.map(str::to_owned),
                environment: environment.clone(),
                event_type: event_type.clone(),
                message: message.clone(),
                recipients: recipients
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                created_at: now,
            },
        )?;
        let cause = Cause::Event {
            id,
            sender_id: sender,
        };
        let mut n = 0;
        for uid in &recipients {
            if user_db::find(&tx, app_id, *uid)?.is_none() {
                continue;
            }
            for s in push_db::for_user(&tx, app_id, *uid)? {
                let wanted = match channel {
                    Some(c) => s.channel == c,
                    None if voip => s.channel == "apns_voip",
                    None => s.channel != "apns_voip",
                };
                if wanted && s.environment == environment {
                    push_db::record(
                        &tx,
                        &s,
                        &cause,
                        &push_db::for_channel(&s.channel, &universal),
                        now,
                    )?;
                    n += 1;
                }
            }
        }
        tx.commit()?;
        Ok::<_, ApiError>((id, n))
    })?;
    tracing::info!(app_id, event_id = id, deliveries, "push event recorded");
    let at = iso8601(now);
    let envelope = EventEnvelope {
        event: Event {
            id,
            event_type: Some(event_type),
            message: Some(message),
            notification_channel: channel.map(|c| Named { name: c.to_owned() }),
            environment: Some(environment),
            user_id: sender,
            application_id: Some(app_id),
            kind: Some("API".to_owned()),
            active: Some(true),
            occured_count: Some(0),
            created_at: Some(at.clone()),
            updated_at: Some(at),
        },
    };
    Ok((StatusCode::CREATED, Json(envelope)).into_response())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn base64_and_ids() {
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("aGk").unwrap(), b"hi");
        assert_eq!(decode_base64("eyJhIjoxfQ==\n").unwrap(), b"{\"a\":1}");
        assert_eq!(decode_base64("-_8").unwrap(), vec![0xfb, 0xff]);
        for bad in ["a", "aGk=x", "a!b="] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
        assert_eq!(ids(Some(&json!("1, 2"))), Some(vec![1, 2]));
        assert_eq!(ids(Some(&json!([3, "4"]))), Some(vec![3, 4]));
        assert_eq!(ids(Some(&json!(5))), Some(vec![5]));
        for bad in [json!(""), json!("1,x"), json!([]), json!("0"), json!({})] {
            assert_eq!(ids(Some(&bad)), None, "{bad}");
        }
        assert_eq!(channel_name("FCM"), Some("gcm"));
        assert_eq!(channel_name("apns_voip"), Some("apns_voip"));
        assert_eq!(channel_name("sms"), None);
    }
}
