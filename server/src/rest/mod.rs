//! The REST API (protocol reference §2–4), one module per area. Each area exposes
//! `routes() -> Router<AppState>`; [`router`] merges them and adds the shared layers:
//!
//! - a trailing `.json` is stripped from the path before routing ([`app`]), so `/session`
//!   and `/session.json` are the same route;
//! - the session middleware looks up `CB-Token`, extends a live token by the session TTL,
//!   makes the session available to the [`extract`] extractors and adds
//!   `CB-Token-ExpirationDate` to the response;
//! - unknown routes and methods answer in the ConnectyCube error shape.

pub mod address_book;
pub mod admin;
pub mod auth;
pub mod blobs;
#[cfg(test)]
mod chat_tests;
pub mod dialogs;
pub mod extract;
pub mod messages;
pub mod push;
#[cfg(test)]
mod push_tests;
pub mod query;
pub mod users;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use cubechat_wire::time::expiration_header;
use tower::util::MapRequest;

use crate::db::{self, sessions, users as user_db};
use crate::error::ApiError;
use crate::state::AppState;

/// The session token header.
pub const TOKEN_HEADER: HeaderName = HeaderName::from_static("cb-token");
/// The application key header, used for sign-up without a session.
pub const AUTH_KEY_HEADER: HeaderName = HeaderName::from_static("cb-authkey");
/// The token expiry response header (`yyyy-MM-dd HH:mm:ss UTC`).
pub const EXPIRATION_HEADER: HeaderName = HeaderName::from_static("cb-token-expirationdate");

/// The complete HTTP service: [`router`] behind the `.json` suffix stripper.
pub type App = MapRequest<Router, fn(Request) -> Request>;

/// Builds the complete HTTP service. Serve it with
/// `axum::ServiceExt::into_make_service_with_connect_info::<SocketAddr>` (the admin routes
/// check the peer address).
pub fn app(state: AppState) -> App {
    let strip: fn(Request) -> Request = strip_json_suffix;
    MapRequest::new(router(state), strip)
}

/// All routes plus the shared middleware. Add a new area by merging its `routes()` here.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(auth::routes())
        .merge(users::routes())
        .merge(admin::routes())
        .merge(dialogs::routes())
        .merge(messages::routes())
        .merge(blobs::routes())
        .merge(push::routes())
        .merge(address_book::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), track_session))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        cubechat_wire::error::ErrorBody::base("Method not allowed"),
    )
}

/// Marks a request whose path ended in `.json` (some routes, like `GET /blobs/{uid}`, answer
/// JSON with the suffix and raw bytes without it).
#[derive(Debug, Clone, Copy)]
pub struct JsonSuffix;

/// `/users/5.json?x=1` → `/users/5?x=1`, marked with [`JsonSuffix`].
fn strip_json_suffix(mut req: Request) -> Request {
    let uri = req.uri();
    let Some(stripped) = uri.path().strip_suffix(".json") else {
        return req;
    };
    if stripped.is_empty() || stripped.ends_with('/') {
        return req;
    }
    let path_and_query = match uri.query() {
        Some(q) => format!("{stripped}?{q}"),
        None => stripped.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    match path_and_query.parse() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return req,
    }
    if let Ok(new_uri) = Uri::from_parts(parts) {
        *req.uri_mut() = new_uri;
        req.extensions_mut().insert(JsonSuffix);
    }
    req
}

/// The `CB-Token` of a request, if it has a non-empty one.
pub fn token_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Looks up and extends the session, stores it in the request extensions, and adds the
/// expiry header to the response. Never rejects: the extractors decide what a route needs.
async fn track_session(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut expires_at = None;
    if let Some(token) = token_of(req.headers()) {
        let now_ms = db::now_ms();
        let ttl = state.settings.session_ttl;
        let found = state.db.call(|c| {
            let row = sessions::touch(c, token, now_ms.div_euclid(1000), ttl)?;
            if let Some(row) = &row {
                if row.user_id != 0 {
                    user_db::touch_last_request(c, row.user_id, now_ms)?;
                }
            }
            Ok::<_, ApiError>(row)
        });
        match found {
            Ok(Some(row)) => {
                expires_at = Some(row.expires_at);
                req.extensions_mut().insert(row);
            }
            Ok(None) => tracing::debug!(%method, %path, "unknown or expired token"),
            Err(e) => return e.into_response(),
        }
    }
    let mut response = next.run(req).await;
    if let Some(expires_at) = expires_at {
        if !response.headers().contains_key(EXPIRATION_HEADER) {
            if let Ok(v) = HeaderValue::from_str(&expiration_header(expires_at)) {
                response.headers_mut().insert(EXPIRATION_HEADER, v);
            }
        }
    }
    tracing::debug!(%method, %path, status = response.status().as_u16(), "request");
    response
}

/// The `CB-Token-ExpirationDate` header for a session expiring at `expires_at`.
pub fn expiration(expires_at: i64) -> [(HeaderName, String); 1] {
    [(EXPIRATION_HEADER, expiration_header(expires_at))]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    //! Handler-level tests: the full [`app`] driven with `tower::ServiceExt::oneshot`.

    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use super::*;
    use crate::config::{AppConfig, Config};
    use crate::db::Db;

    pub(crate) fn test_state() -> AppState {
        let config = Config {
            apps: vec![
                AppConfig {
                    id: 7,
                    auth_key: "key-7".into(),
                    auth_secret: "secret-7".into(),
                },
                AppConfig {
                    id: 8,
                    auth_key: "key-8".into(),
                    auth_secret: String::new(),
                },
            ],
            ..Config::default()
        };
        AppState::new(Db::open(":memory:").unwrap(), &config)
    }

    pub(crate) struct Reply {
        pub status: u16,
        pub headers: HeaderMap,
        pub text: String,
    }

    impl Reply {
        pub fn json(&self) -> Value {
            serde_json::from_str(&self.text).unwrap_or(Value::Null)
        }
    }

    /// Sends one request. `body` is sent raw if it is a JSON string, else serialized.
    pub(crate) async fn call(
        state: &AppState,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let body = match body {
            None => Body::empty(),
            Some(Value::String(raw)) => Body::from(raw),
            Some(v) => Body::from(v.to_string()),
        };
        let mut req = builder.body(body).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let resp = app(state.clone()).oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            text: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// An application session token for app 7.
    pub(crate) async fn app_token(state: &AppState) -> String {
        let r = call(
            state,
            "POST",
            "/session.json",
            &[],
            Some(json!({"application_id": 7, "auth_key": "key-7"})),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()["session"]["token"].as_str().unwrap().to_owned()
    }

    /// Signs up `login` in app 7 and returns a user session token and the user id.
    pub(crate) async fn user_token(state: &AppState, login: &str) -> (String, u64) {
        let r = call(
            state,
            "POST",
            "/session",
            &[],
            Some(json!({"application_id": "7", "auth_key": "key-7", "user": {"login": login, "password": "password1"}})),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let v = r.json();
        (
            v["session"]["token"].as_str().unwrap().to_owned(),
            v["session"]["user_id"].as_u64().unwrap(),
        )
    }

    #[test]
    fn strips_json_suffix() {
        let req = |u: &str| Request::builder().uri(u).body(Body::empty()).unwrap();
        assert_eq!(
            strip_json_suffix(req("/users/5.json?a=1")).uri(),
            "/users/5?a=1"
        );
        assert_eq!(strip_json_suffix(req("/session.json")).uri(), "/session");
        assert_eq!(strip_json_suffix(req("/session")).uri(), "/session");
        assert_eq!(strip_json_suffix(req("/.json")).uri(), "/.json");
    }

    #[tokio::test]
    async fn unknown_route_and_method() {
        let state = test_state();
        let r = call(&state, "GET", "/nope.json", &[], None).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.json(), json!({"errors": {"base": ["Not found"]}}));
        let r = call(&state, "PATCH", "/session", &[], None).await;
        assert_eq!(r.status, 405);
        assert_eq!(r.json()["errors"]["base"][0], "Method not allowed");
    }
}
