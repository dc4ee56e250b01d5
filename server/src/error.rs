//! [`ApiError`]: every REST failure, rendered in the ConnectyCube error shapes (protocol
//! reference §2.5): `{"errors": [..]}` or `{"errors": {"field": [..]}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cubechat_wire::auth::SESSION_DOES_NOT_EXIST;
use cubechat_wire::error::ErrorBody;
use serde_json::{Map, Value};

use crate::db::DbError;

/// A REST error: an HTTP status plus a ConnectyCube error body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, body: ErrorBody) -> Self {
        Self { status, body }
    }

    /// `401 {"errors":["Unauthorized"]}`: bad application or user credentials.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorBody::list("Unauthorized"))
    }

    /// `401 {"errors":{"base":["Required session does not exist"]}}`: missing, unknown or
    /// expired token.
    pub fn no_session() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorBody::base(SESSION_DOES_NOT_EXIST),
        )
    }

    /// `403 {"errors":{"base":["Forbidden. Need user."]}}`: an application-only session on a
    /// user endpoint.
    pub fn need_user() -> Self {
        Self::forbidden("Forbidden. Need user.")
    }

    /// `403 {"errors":{"base":[msg]}}`
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorBody::base(message))
    }

    /// `404 {"errors":{"base":["Not found"]}}`
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorBody::base("Not found"))
    }

    /// `400 {"errors":{"base":[msg]}}`
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorBody::base(message))
    }

    /// `400 {"errors":{"base":["Malformed JSON"]}}`
    pub fn malformed_json() -> Self {
        Self::bad_request("Malformed JSON")
    }

    /// `422 {"errors":{field:[msg]}}`
    pub fn unprocessable(field: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorBody::field(field, message),
        )
    }

    /// `500 {"errors":{"base":["Internal server error"]}}`
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorBody::base("Internal server error"),
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            self.status.as_u16(),
            self.body.messages().join("; ")
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        tracing::error!(error = %e, "database error");
        Self::internal()
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        Self::from(DbError::from(e))
    }
}

/// Collects validation messages per field, then becomes one `422 {"errors":{...}}`.
#[derive(Debug, Default)]
pub struct FieldErrors {
    fields: Map<String, Value>,
}

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let entry = self
            .fields
            .entry(field.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(Value::String(message.into()));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// `Ok(())` when nothing was added, otherwise the 422 error.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorBody {
                    errors: Value::Object(self.fields),
                },
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes() {
        assert_eq!(
            ApiError::unauthorized().body.errors,
            json!(["Unauthorized"])
        );
        assert_eq!(
            ApiError::no_session().body.errors,
            json!({"base": ["Required session does not exist"]})
        );
        let mut f = FieldErrors::new();
        assert!(f.is_empty());
        f.add("login", "has already been taken");
        f.add("password", "can't be blank");
        f.add("password", "is too short (minimum is 8 characters)");
        let Err(e) = f.into_result() else {
            panic!("expected an error")
        };
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            e.body.errors,
            json!({"login": ["has already been taken"],
                   "password": ["can't be blank", "is too short (minimum is 8 characters)"]})
        );
    }
}
