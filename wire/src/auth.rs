//! Sessions and users (protocol reference §3): request bodies and response objects.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A user object (§3.4). Unknown fields are kept in `extra` so nothing the server sends is lost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    /// Comma-separated tags (written as `tag_list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_tags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_guest: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request_at: Option<String>,
}

/// `{"user": {...}}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserEnvelope {
    pub user: User,
}

/// A session object (§3.1). `user_id` is 0 for an application-only session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: u64,
    #[serde(default)]
    pub user_id: u64,
    pub application_id: u64,
    pub token: String,
    #[serde(default)]
    pub ts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
}

/// `{"session": {...}}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionEnvelope {
    pub session: Session,
}

/// Login credentials inside `POST /session` or the body of `POST /login`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Body of `POST /session`. The signature fields are optional (JS ≥ 4 sends none);
/// `nonce` and `timestamp` are accepted as numbers or strings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateSessionRequest {
    pub application_id: Value,
    pub auth_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Credentials>,
}

/// The writable fields of a user, as sent inside `{"user": …}` by sign-up and update.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_list: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<i64>,
    /// The current password; required by `PUT /users/{id}` when `password` changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_password: Option<String>,
}

/// `{"user": {...}}` request body of `POST /users` and `PUT /users/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserParamsEnvelope {
    pub user: UserParams,
}

/// A page of users from `GET /users/v2`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsersPage {
    pub total_entries: u64,
    pub skip: u64,
    pub limit: u64,
    pub items: Vec<User>,
}

/// The exact message the cloud uses for an expired or unknown token; the JS SDK keys its
/// `sessionExpired` hook on it, and so does cubechat's automatic session renewal.
pub const SESSION_DOES_NOT_EXIST: &str = "Required session does not exist";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn session_parses_cloud_example() {
        let s: SessionEnvelope = serde_json::from_value(json!({"session": {
            "id": 111, "user_id": 111, "application_id": 7, "token": "83153a14",
            "ts": 1544010993, "created_at": "2018-12-05T11:58:02Z", "updated_at": "2018-12-05T11:58:02Z",
            "nonce": 1, "user": {"id": 111, "login": "bob", "full_name": null, "unknown": 1}
        }}))
        .unwrap();
        assert_eq!(s.session.user.unwrap().login.as_deref(), Some("bob"));
    }

    #[test]
    fn create_request_accepts_string_nonce() {
        let r: CreateSessionRequest = serde_json::from_value(json!({
            "application_id": "7", "auth_key": "k", "nonce": "12", "timestamp": "34"
        }))
        .unwrap();
        assert_eq!(r.nonce, Some(json!("12")));
    }
}
