//! Extractors whose rejections are [`ApiError`]s, so no axum plain-text rejection ever
//! reaches a client.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::db::sessions::SessionRow;
use crate::error::ApiError;

/// The request's session, whatever kind; 401 "Required session does not exist" without a
/// live `CB-Token`. (The session middleware looked the token up and extended it.)
#[derive(Debug, Clone)]
pub struct AnySession(pub SessionRow);

/// A session with a user; 401 without a live token, 403 "Forbidden. Need user." for an
/// application-only session.
#[derive(Debug, Clone)]
pub struct UserSession(pub SessionRow);

/// The request's session if it has a live one.
#[derive(Debug, Clone)]
pub struct MaybeSession(pub Option<SessionRow>);

impl<S: Send + Sync> FromRequestParts<S> for AnySession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<SessionRow>()
            .cloned()
            .map(Self)
            .ok_or_else(ApiError::no_session)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for UserSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let session = parts
            .extensions
            .get::<SessionRow>()
            .cloned()
            .ok_or_else(ApiError::no_session)?;
        if session.user_id == 0 {
            return Err(ApiError::need_user());
        }
        Ok(Self(session))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for MaybeSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(Self(parts.extensions.get::<SessionRow>().cloned()))
    }
}

/// A JSON request body. Invalid JSON → 400 `{"errors":{"base":["Malformed JSON"]}}`; valid
/// JSON of the wrong shape → 422 with serde's message. An empty body counts as `{}`. The
/// `Content-Type` is not checked (SDKs differ).
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::new(
                e.status(),
                cubechat_wire::error::ErrorBody::base(e.body_text()),
            )
        })?;
        parse_json(&bytes).map(Self)
    }
}

/// See [`JsonBody`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(bytes).map_err(|_| ApiError::malformed_json())?
    };
    from_value(value)
}

/// Converts an already-parsed JSON value; a shape mismatch is a 422.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::unprocessable("base", e.to_string()))
}

/// A path parameter; anything that does not parse as `T` is a 404.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Self(v))
            .map_err(|_| ApiError::not_found())
    }
}
