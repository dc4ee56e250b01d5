//! Sessions and login (protocol reference §3.1–3.2): `POST/GET/DELETE /session`,
//! `POST/DELETE /login`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use cubechat_wire::auth::{Credentials, SessionEnvelope, UserEnvelope, UserParams};
use cubechat_wire::signature;
use rusqlite::Connection;
use serde_json::Value;

use super::extract::{from_value, AnySession, JsonBody};
use super::{expiration, users::create_user};
use crate::config::AppConfig;
use crate::db::users::{self as user_db, UserRow};
use crate::db::{self, sessions};
use crate::error::ApiError;
use crate::password;
use crate::state::AppState;

/// How far a signed request's `timestamp` may be from our clock.
const MAX_TIMESTAMP_SKEW: i64 = 3600;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/session",
            post(create_session).get(get_session).delete(delete_session),
        )
        .route("/login", post(login).delete(logout))
}

/// `POST /session`: an application session, optionally with a user (logging in, or
/// auto-creating an unknown login/email, or a guest).
async fn create_session(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let app = check_app(&state, &body)?;
    check_signature(&app, &body)?;
    if body.get("provider").is_some_and(|p| !p.is_null()) {
        return Err(ApiError::unprocessable(
            "base",
            "Provider is not supported by this server",
        ));
    }
    let user_spec = match body.get("user") {
        None | Some(Value::Null) => UserSpec::None,
        Some(u) if is_truthy(u.get("guest")) => UserSpec::Guest {
            full_name: u
                .get("full_name")
                .and_then(Value::as_str)
                .map(str::to_owned),
        },
        Some(u) => UserSpec::Credentials(from_value::<Credentials>(u.clone())?),
    };

    let now_ms = db::now_ms();
    let now = now_ms.div_euclid(1000);
    let ttl = state.settings.session_ttl;
    let (session, user) = state.db.call(|c| {
        let tx = c.transaction()?;
        let user = match &user_spec {
            UserSpec::None => None,
            UserSpec::Credentials(creds) => {
                Some(check_credentials(&tx, app.id, creds, true, now_ms)?)
            }
            UserSpec::Guest { full_name } => {
                Some(create_guest(&tx, app.id, full_name.clone(), now_ms)?)
            }
        };
        let session = sessions::create(&tx, app.id, user.as_ref().map_or(0, |u| u.id), now, ttl)?;
        tx.commit()?;
        Ok::<_, ApiError>((session, user))
    })?;
    tracing::info!(
        app_id = app.id,
        session_id = session.id,
        user_id = session.user_id,
        "session created"
    );
    let envelope = SessionEnvelope {
        session: session.to_wire(user.map(|u| u.to_wire())),
    };
    Ok((
        StatusCode::CREATED,
        expiration(session.expires_at),
        Json(envelope),
    )
        .into_response())
}

enum UserSpec {
    None,
    Credentials(Credentials),
    Guest { full_name: Option<String> },
}

/// The application named by `application_id` (number or numeric string) with a matching
/// `auth_key`; 401 `{"errors":["Unauthorized"]}` otherwise.
fn check_app(state: &AppState, body: &Value) -> Result<AppConfig, ApiError> {
    let app_id = body
        .get("application_id")
        .and_then(as_u64)
        .ok_or_else(ApiError::unauthorized)?;
    let auth_key = body
        .get("auth_key")
        .and_then(Value::as_str)
        .ok_or_else(ApiError::unauthorized)?;
    match state.apps.get(app_id) {
        Some(app) if app.auth_key == auth_key => Ok(app.clone()),
        _ => {
            tracing::debug!(
                app_id,
                "session refused: unknown application or wrong auth key"
            );
            Err(ApiError::unauthorized())
        }
    }
}

/// The legacy signature: checked when present and the app's secret is known; a signed
/// request's `timestamp` must be within an hour of now.
fn check_signature(app: &AppConfig, body: &Value) -> Result<(), ApiError> {
    let Some(sig) = body.get("signature").filter(|s| !s.is_null()) else {
        return Ok(());
    };
    let bad_signature = || ApiError::unprocessable("base", "Unexpected signature");
    if !sig.is_string() {
        return Err(bad_signature());
    }
    if !app.auth_secret.is_empty() && !signature::verify(body, &app.auth_secret) {
        return Err(bad_signature());
    }
    if let Some(ts) = body.get("timestamp").filter(|t| !t.is_null()) {
        let in_range = as_i64(ts).is_some_and(|ts| (db::now() - ts).abs() <= MAX_TIMESTAMP_SKEW);
        if !in_range {
            return Err(ApiError::unprocessable("base", "Timestamp is out of range"));
        }
    }
    Ok(())
}

/// Finds the user named by `creds` (login preferred over email) and checks the password;
/// 401 `{"errors":["Unauthorized"]}` on any mismatch. With `auto_create`, an unknown
/// login/email is signed up with that password instead (the cloud's documented behaviour).
pub(crate) fn check_credentials(
    conn: &Connection,
    app_id: u64,
    creds: &Credentials,
    auto_create: bool,
    now_ms: i64,
) -> Result<UserRow, ApiError> {
    let login = non_blank(creds.login.as_deref());
    let email = non_blank(creds.email.as_deref());
    let Some(password) = creds.password.as_deref().filter(|p| !p.is_empty()) else {
        return Err(ApiError::unauthorized());
    };
    let existing = match (login, email) {
        (Some(login), _) => user_db::find_by_login(conn, app_id, login)?,
        (None, Some(email)) => user_db::find_by_email(conn, app_id, email)?,
        (None, None) => return Err(ApiError::unauthorized()),
    };
    match existing {
        Some(user) => {
            if user
                .password_hash
                .as_deref()
                .is_some_and(|h| password::verify(password, h))
            {
                Ok(user)
            } else {
                tracing::debug!(app_id, user_id = user.id, "wrong password");
                Err(ApiError::unauthorized())
            }
        }
        None if auto_create => {
            let params = UserParams {
                login: login.map(str::to_owned),
                email: email.map(str::to_owned),
                password: Some(password.to_owned()),
                ..UserParams::default()
            };
            let user = create_user(conn, app_id, &params, now_ms)?;
            tracing::info!(
                app_id,
                user_id = user.id,
                "user auto-created by session creation"
            );
            Ok(user)
        }
        None => Err(ApiError::unauthorized()),
    }
}

fn create_guest(
    conn: &Connection,
    app_id: u64,
    full_name: Option<String>,
    now_ms: i64,
) -> Result<UserRow, ApiError> {
    let row = UserRow {
        app_id,
        full_name: non_blank(full_name.as_deref()).map(str::to_owned),
        is_guest: true,
        created_at: now_ms,
        updated_at: now_ms,
        last_request_at: Some(now_ms),
        ..UserRow::default()
    };
    Ok(user_db::insert(conn, &row)?)
}

/// `GET /session`
async fn get_session(
    State(state): State<AppState>,
    AnySession(session): AnySession,
) -> Result<Response, ApiError> {
    let user = if session.user_id == 0 {
        None
    } else {
        state
            .db
            .with(|c| user_db::find(c, session.app_id, session.user_id))?
            .map(|u| u.to_wire())
    };
    Ok(Json(SessionEnvelope {
        session: session.to_wire(user),
    })
    .into_response())
}

/// `DELETE /session`: destroys the token; 200 with an empty body.
async fn delete_session(
    State(state): State<AppState>,
    AnySession(session): AnySession,
) -> Result<StatusCode, ApiError> {
    state.db.with(|c| sessions::delete(c, session.id))?;
    tracing::info!(session_id = session.id, "session destroyed");
    Ok(StatusCode::OK)
}

/// `POST /login`: attaches the user to the current session; 201 `{"user": …}`.
async fn login(
    State(state): State<AppState>,
    AnySession(session): AnySession,
    JsonBody(creds): JsonBody<Credentials>,
) -> Result<Response, ApiError> {
    let now_ms = db::now_ms();
    let user = state.db.call(|c| {
        let user = check_credentials(c, session.app_id, &creds, false, now_ms)?;
        sessions::set_user(c, session.id, user.id, now_ms.div_euclid(1000))?;
        Ok::<_, ApiError>(user)
    })?;
    tracing::info!(session_id = session.id, user_id = user.id, "user logged in");
    Ok((
        StatusCode::CREATED,
        Json(UserEnvelope {
            user: user.to_wire(),
        }),
    )
        .into_response())
}

/// `DELETE /login`: back to an application-only session; 200 with an empty body.
async fn logout(
    State(state): State<AppState>,
    AnySession(session): AnySession,
) -> Result<StatusCode, ApiError> {
    state
        .db
        .with(|c| sessions::set_user(c, session.id, 0, db::now()))?;
    Ok(StatusCode::OK)
}

fn non_blank(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn is_truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() != Some(0),
        Some(Value::String(s)) => !matches!(s.trim(), "" | "0" | "false"),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::super::tests::{app_token, call, test_state, user_token};

    #[tokio::test]
    async fn app_session_lifecycle() {
        let state = test_state();
        let r = call(
            &state,
            "POST",
            "/session.json",
            &[],
            Some(json!({"application_id": 7, "auth_key": "key-7"})),
        )
        .await;
        assert_eq!(r.status, 201);
        assert!(r.headers.contains_key("cb-token-expirationdate"));
        let s = r.json()["session"].clone();
        assert_eq!(s["user_id"], 0);
        assert_eq!(s["application_id"], 7);
        assert!(s.get("user").is_none());
        let token = s["token"].as_str().unwrap().to_owned();
        assert_eq!(token.len(), 40);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(s["created_at"].as_str().unwrap().ends_with('Z'));

        let r = call(&state, "GET", "/session", &[("CB-Token", &token)], None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["session"]["token"], token.as_str());
        assert!(r
            .headers
            .get("cb-token-expirationdate")
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with(" UTC"));

        let r = call(
            &state,
            "DELETE",
            "/session.json",
            &[("CB-Token", &token)],
            None,
        )
        .await;
        assert_eq!((r.status, r.text.as_str()), (200, ""));
        let r = call(
            &state,
            "GET",
            "/session.json",
            &[("CB-Token", &token)],
            None,
        )
        .await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.json(),
            json!({"errors": {"base": ["Required session does not exist"]}})
        );
        let r = call(&state, "GET", "/session.json", &[], None).await;
        assert_eq!(r.status, 401);
    }

    #[tokio::test]
    async fn bad_app_credentials() {
        let state = test_state();
        for body in [
            json!({"application_id": 7, "auth_key": "wrong"}),
            json!({"application_id": 99, "auth_key": "key-7"}),
            json!({"application_id": "x", "auth_key": "key-7"}),
            json!({"auth_key": "key-7"}),
            json!({"application_id": 8, "auth_key": "key-7"}),
            json!([1, 2]),
        ] {
            let r = call(&state, "POST", "/session", &[], Some(body.clone())).await;
            assert_eq!(r.status, 401, "{body}");
            assert_eq!(r.json(), json!({"errors": ["Unauthorized"]}));
        }
        let r = call(&state, "POST", "/session", &[], Some(json!("{not json"))).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.json(), json!({"errors": {"base": ["Malformed JSON"]}}));
    }

    #[tokio::test]
    async fn signatures() {
        let state = test_state();
        let now = crate::db::now();
        let mut body = json!({"application_id": 7, "auth_key": "key-7", "nonce": "123", "timestamp": now.to_string(),
                              "user": {"login": "signed", "password": "password1"}});
        body["signature"] = json!(cubechat_wire::signature::sign(&body, "secret-7"));
        let r = call(&state, "POST", "/session", &[], Some(body.clone())).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.json()["session"]["user"]["login"], "signed");

        let mut bad = body.clone();
        bad["signature"] = json!("00");
        let r = call(&state, "POST", "/session", &[], Some(bad)).await;
        assert_eq!(r.status, 422);
        assert_eq!(
            r.json(),
            json!({"errors": {"base": ["Unexpected signature"]}})
        );

        let mut stale =
            json!({"application_id": 7, "auth_key": "key-7", "nonce": 1, "timestamp": now - 7200});
        stale["signature"] = json!(cubechat_wire::signature::sign(&stale, "secret-7"));
        let r = call(&state, "POST", "/session", &[], Some(stale)).await;
        assert_eq!(r.status, 422);
        assert_eq!(
            r.json(),
            json!({"errors": {"base": ["Timestamp is out of range"]}})
        );

        // App 8 has no secret: any signature is accepted.
        let r = call(&state, "POST", "/session", &[], Some(json!({"application_id": 8, "auth_key": "key-8", "signature": "ab", "timestamp": now}))).await;
        assert_eq!(r.status, 201);
    }

    #[tokio::test]
    async fn user_session_auto_create_and_login() {
        let state = test_state();
        let (token, id) = user_token(&state, "alice").await;
        assert!(id > 0);
        let r = call(&state, "GET", "/session", &[("CB-Token", &token)], None).await;
        assert_eq!(r.json()["session"]["user"]["login"], "alice");

        // Same credentials again: the same user; wrong password: 401.
        let (_, again) = user_token(&state, "alice").await;
        assert_eq!(again, id);
        let r = call(&state, "POST", "/session", &[], Some(json!({"application_id": 7, "auth_key": "key-7", "user": {"login": "alice", "password": "nope-nope"}}))).await;
        assert_eq!(
            (r.status, r.json()),
            (401, json!({"errors": ["Unauthorized"]}))
        );
        // Auto-creation validates like sign-up.
        let r = call(&state, "POST", "/session", &[], Some(json!({"application_id": 7, "auth_key": "key-7", "user": {"login": "bob", "password": "short"}}))).await;
        assert_eq!(r.status, 422);

        // POST /login upgrades an app session; DELETE /login downgrades it.
        let app = app_token(&state).await;
        let r = call(
            &state,
            "POST",
            "/login.json",
            &[("CB-Token", &app)],
            Some(json!({"login": "alice", "password": "wrong-one"})),
        )
        .await;
        assert_eq!(
            (r.status, r.json()),
            (401, json!({"errors": ["Unauthorized"]}))
        );
        let r = call(
            &state,
            "POST",
            "/login.json",
            &[("CB-Token", &app)],
            Some(json!({"login": "nobody", "password": "password1"})),
        )
        .await;
        assert_eq!(r.status, 401);
        let r = call(
            &state,
            "POST",
            "/login.json",
            &[("CB-Token", &app)],
            Some(json!({"login": "alice", "password": "password1"})),
        )
        .await;
        assert_eq!(r.status, 201);
        assert_eq!(r.json()["user"]["id"], id);
        let r = call(&state, "GET", "/session", &[("CB-Token", &app)], None).await;
        assert_eq!(r.json()["session"]["user_id"], id);
        let r = call(&state, "DELETE", "/login.json", &[("CB-Token", &app)], None).await;
        assert_eq!((r.status, r.text.as_str()), (200, ""));
        let r = call(&state, "GET", "/session", &[("CB-Token", &app)], None).await;
        assert_eq!(r.json()["session"]["user_id"], 0);
        let r = call(
            &state,
            "POST",
            "/login",
            &[],
            Some(json!({"login": "alice", "password": "password1"})),
        )
        .await;
        assert_eq!(r.status, 401);
    }

    #[tokio::test]
    async fn guest_session() {
        let state = test_state();
        let r = call(&state, "POST", "/session", &[], Some(json!({"application_id": 7, "auth_key": "key-7", "user": {"guest": "1", "full_name": "Guest G"}}))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let u = &r.json()["session"]["user"];
        assert_eq!(u["is_guest"], true);
        assert_eq!(u["full_name"], "Guest G");
    }
}
