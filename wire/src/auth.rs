//! Sessions and users (protocol reference §3): request bodies and response objects.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A user object (§3.4). Unknown fields are kept in `extra` so nothing the server sends is lost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The user's id.
    pub id: u64,
    /// The login name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// The e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The full name shown to other users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    /// The phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The website URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// An id of the user in the app's own system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Free-form data the app stores with the user (often JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_data: Option<String>,
    /// The avatar: a URL or a cloud file uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    /// Comma-separated tags (written as `tag_list`). Read from a comma-separated string or
    /// a JSON array of strings (the JS SDK's type says `string[]`); written as a string.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "tags_text_or_list"
    )]
    pub user_tags: Option<String>,
    /// The UTC offset in hours (ConnectyCube's `timezone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<i64>,
    /// Whether the user is a guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_guest: Option<bool>,
    /// When it was created (ISO 8601, as the server sent it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When it last changed (ISO 8601, as the server sent it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// When the user last made a request (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request_at: Option<String>,
}

/// `{"user": {...}}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserEnvelope {
    /// The user.
    pub user: User,
}

/// A session object (§3.1). `user_id` is 0 for an application-only session. Its `Debug`
/// never shows the token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The session's id.
    pub id: u64,
    /// The logged-in user's id (0 for an application session).
    #[serde(default)]
    pub user_id: u64,
    /// The application's id.
    pub application_id: u64,
    /// The session token (never logged).
    pub token: String,
    /// The timestamp the session was created with (Unix seconds).
    #[serde(default)]
    pub ts: i64,
    /// When it was created (ISO 8601, as the server sent it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When it last changed (ISO 8601, as the server sent it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// The logged-in user, when the server included it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
}

/// `{"session": {...}}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionEnvelope {
    /// The session.
    pub session: Session,
}

/// Login credentials inside `POST /session` or the body of `POST /login`. Its `Debug` never
/// shows the password.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    /// The login (or `email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// The e-mail (or `login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The password (never logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Body of `POST /session`. The signature fields are optional (JS ≥ 4 sends none);
/// `nonce` and `timestamp` are accepted as numbers or strings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateSessionRequest {
    /// The application's id (a number or a numeric string).
    pub application_id: Value,
    /// The application's auth key.
    pub auth_key: String,
    /// A random number used once (signed sessions; a number or a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<Value>,
    /// The request time in Unix seconds (signed sessions; a number or a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Value>,
    /// The HMAC-SHA1 signature of the request (signed sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The user to log in with the session, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Credentials>,
}

/// The writable fields of a user, as sent inside `{"user": …}` by sign-up and update. Its
/// `Debug` never shows the passwords.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserParams {
    /// The login name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// The e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The password (never logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The full name shown to other users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    /// The phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The website URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// An id of the user in the app's own system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Free-form data the app stores with the user (often JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_data: Option<String>,
    /// The avatar: a URL or a cloud file uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    /// Tags, comma-separated. Read from a comma-separated string or from a JSON array of
    /// strings (the JS SDK's `tag_list: string[]`); written as a string.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "tags_text_or_list"
    )]
    pub tag_list: Option<String>,
    /// The UTC offset in hours (ConnectyCube's `timezone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<i64>,
    /// The current password; required by `PUT /users/{id}` when `password` changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_password: Option<String>,
}

/// `"a,b"`, `["a", "b"]` or `null` → `Some("a,b")` / `None`.
pub(crate) fn tags_text_or_list<'de, D>(d: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(serde::de::Error::custom(format!(
                    "tag_list items must be strings, got {other}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| Some(v.join(","))),
        Some(other) => Err(serde::de::Error::custom(format!(
            "tag_list must be a string or a list of strings, got {other}"
        ))),
    }
}

/// `{"user": {...}}` request body of `POST /users` and `PUT /users/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserParamsEnvelope {
    /// The user's fields.
    pub user: UserParams,
}

/// A page of users from `GET /users/v2`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsersPage {
    /// How many entries exist in total.
    pub total_entries: u64,
    /// How many entries were skipped before this page.
    pub skip: u64,
    /// The page size asked for.
    pub limit: u64,
    /// The users of this page.
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

/// Shows `<redacted>` in `Debug` output in place of a secret.
struct Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn redacted<T>(v: &Option<T>) -> Option<Redacted> {
    v.as_ref().map(|_| Redacted)
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("application_id", &self.application_id)
            .field("token", &Redacted)
            .field("ts", &self.ts)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("user", &self.user)
            .finish()
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &self.login)
            .field("email", &self.email)
            .field("password", &redacted(&self.password))
            .finish()
    }
}

impl std::fmt::Debug for UserParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserParams")
            .field("login", &self.login)
            .field("email", &self.email)
            .field("password", &redacted(&self.password))
            .field("full_name", &self.full_name)
            .field("phone", &self.phone)
            .field("website", &self.website)
            .field("external_id", &self.external_id)
            .field("custom_data", &self.custom_data)
            .field("avatar", &self.avatar)
            .field("tag_list", &self.tag_list)
            .field("timezone", &self.timezone)
            .field("old_password", &redacted(&self.old_password))
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tag_list_tests {
    use super::*;

    #[test]
    fn tag_list_reads_a_string_or_a_list() {
        let p: UserParams = serde_json::from_str(r#"{"tag_list": ["a", "b c"]}"#).unwrap();
        assert_eq!(p.tag_list.as_deref(), Some("a,b c"));
        let p: UserParams = serde_json::from_str(r#"{"tag_list": "x,y"}"#).unwrap();
        assert_eq!(p.tag_list.as_deref(), Some("x,y"));
        let p: UserParams = serde_json::from_str(r#"{"tag_list": null}"#).unwrap();
        assert_eq!(p.tag_list, None);
        assert!(serde_json::from_str::<UserParams>(r#"{"tag_list": [1]}"#).is_err());
        assert!(serde_json::from_str::<UserParams>(r#"{"tag_list": {}}"#).is_err());
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({}),
            "written as before"
        );
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let s = Session {
            id: 1,
            user_id: 2,
            application_id: 3,
            token: "tok-SECRET".into(),
            ts: 0,
            created_at: None,
            updated_at: None,
            user: None,
        };
        let c = Credentials {
            login: Some("alice".into()),
            email: None,
            password: Some("pw-SECRET".into()),
        };
        let p = UserParams {
            password: Some("pw-SECRET".into()),
            old_password: Some("old-SECRET".into()),
            ..Default::default()
        };
        let r = CreateSessionRequest {
            application_id: 3.into(),
            auth_key: "k".into(),
            nonce: None,
            timestamp: None,
            signature: None,
            user: Some(c.clone()),
        };
        for shown in [
            format!("{s:?}"),
            format!("{c:#?}"),
            format!("{p:?}"),
            format!("{r:?}"),
        ] {
            assert!(!shown.contains("SECRET"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
        assert!(format!("{c:?}").contains("alice"));
    }
}
