//! Test-only administration, reachable from loopback peers only and without a session.
//!
//! - `POST /_admin/expire_sessions` → `200 {"expired": <n>}`: every live token expires now,
//!   so the next request with it gets `401 {"errors":{"base":["Required session does not exist"]}}`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::db::{self, sessions};
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/_admin/expire_sessions", post(expire_sessions))
}

/// 403 unless the peer is a loopback address (or unknown: then refuse too).
fn require_loopback(parts: &Parts) -> Result<(), ApiError> {
    match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) if addr.ip().is_loopback() => Ok(()),
        Some(ConnectInfo(addr)) => {
            tracing::warn!(peer = %addr, "refused an admin request from a non-loopback peer");
            Err(ApiError::forbidden(
                "Forbidden. Admin endpoints are loopback-only.",
            ))
        }
        None => Err(ApiError::forbidden(
            "Forbidden. Admin endpoints are loopback-only.",
        )),
    }
}

async fn expire_sessions(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Json<Value>, ApiError> {
    require_loopback(&parts)?;
    let expired = state.db.with(|c| sessions::expire_all(c, db::now()))?;
    tracing::info!(expired, "admin: expired every session");
    Ok(Json(json!({ "expired": expired })))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::{app_token, call, test_state, user_token};

    #[tokio::test]
    async fn expire_sessions_makes_tokens_dead() {
        let state = test_state();
        let app = app_token(&state).await;
        let (user, _) = user_token(&state, "zed").await;
        let r = call(&state, "POST", "/_admin/expire_sessions.json", &[], None).await;
        assert_eq!((r.status, r.json()), (200, json!({"expired": 2})));
        for token in [app, user] {
            let r = call(&state, "GET", "/session", &[("CB-Token", &token)], None).await;
            assert_eq!(
                (r.status, r.json()),
                (
                    401,
                    json!({"errors": {"base": ["Required session does not exist"]}})
                )
            );
        }
    }
}
