//! Test-only administration, reachable from loopback peers only and without a session.
//!
//! - `POST /_admin/expire_sessions` → `200 {"expired": <n>}`: every live token expires now,
//!   so the next request with it gets `401 {"errors":{"base":["Required session does not exist"]}}`.
//! - `GET /_admin/pushes?user_id=N` → `200 {"items": [{recipient_id, dialog_id, message_id,
//!   sender_id, created_at}, …]}`: the push outbox of a user, oldest first (no push server is
//!   called; these are the pushes a deployment would send).
//! - `GET /_admin/push_outbox[?user_id=N]` → `200 {"items": [delivery, …]}`: every recorded
//!   delivery (one per subscription: channel, token, environment, payload...), oldest first
//!   (protocol reference §3.7).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::db::{self, activity, push, sessions};
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_admin/expire_sessions", post(expire_sessions))
        .route("/_admin/pushes", get(pushes))
        .route("/_admin/push_outbox", get(push_outbox))
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

#[derive(serde::Deserialize)]
struct PushQuery {
    user_id: u64,
}

async fn pushes(
    State(state): State<AppState>,
    Query(q): Query<PushQuery>,
    parts: Parts,
) -> Result<Json<Value>, ApiError> {
    require_loopback(&parts)?;
    let items = state.db.with(|c| activity::pushes_for(c, q.user_id))?;
    Ok(Json(json!({ "items": items })))
}

#[derive(serde::Deserialize)]
struct OutboxQuery {
    user_id: Option<u64>,
}

async fn push_outbox(
    State(state): State<AppState>,
    Query(q): Query<OutboxQuery>,
    parts: Parts,
) -> Result<Json<Value>, ApiError> {
    require_loopback(&parts)?;
    let items = state.db.with(|c| push::outbox(c, q.user_id))?;
    Ok(Json(json!({ "items": items })))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::super::tests::{app_token, call, test_state, user_token};
    use crate::db::activity::{record_push, Push};

    #[tokio::test]
    async fn pushes_lists_the_outbox() {
        let state = test_state();
        state
            .db
            .with(|c| {
                record_push(
                    c,
                    1,
                    &Push {
                        recipient_id: 5,
                        dialog_id: "d".into(),
                        message_id: "m".into(),
                        sender_id: 6,
                        created_at: 9,
                    },
                )
            })
            .unwrap();
        let r = call(&state, "GET", "/_admin/pushes?user_id=5", &[], None).await;
        assert_eq!(
            (r.status, r.json()),
            (
                200,
                json!({"items": [{"recipient_id": 5, "dialog_id": "d", "message_id": "m",
                    "sender_id": 6, "created_at": 9}]})
            )
        );
        let r = call(&state, "GET", "/_admin/pushes?user_id=6", &[], None).await;
        assert_eq!(r.json(), json!({"items": []}));
    }

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
