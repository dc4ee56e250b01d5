//! Users (protocol reference §3.3, §3.4): lookups, search, the online list and their
//! response shapes. The user object and the sign-up/update bodies live in [`crate::auth`]
//! (sessions carry users) and are re-exported here.

use serde::{Deserialize, Serialize};

pub use crate::auth::{User, UserEnvelope, UserParams, UserParamsEnvelope, UsersPage};

/// The largest page `GET /users/v2` serves (`limit`); a lookup of more ids is split into
/// pages of this size.
pub const V2_MAX_LIMIT: u64 = 100;

/// The largest page of the v1 lists (`per_page`).
pub const V1_MAX_PER_PAGE: u64 = 100;

/// `GET /users/online?limit&offset` → `{"users": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OnlineUsers {
    /// The users with a chat connection now.
    #[serde(default)]
    pub users: Vec<User>,
}

/// `GET /users/online?count=true` → `{"count": n}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlineCount {
    /// How many users have a chat connection now.
    pub count: u64,
}

/// A deprecated v1 list (`/users/by_full_name`, `/users/by_tags`, `GET /users`):
/// `{current_page, per_page, total_entries, items: [{"user": {...}}]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsersV1Page {
    /// The 1-based page number served.
    #[serde(default)]
    pub current_page: u64,
    /// The page size served.
    #[serde(default)]
    pub per_page: u64,
    /// How many users match in total.
    #[serde(default)]
    pub total_entries: u64,
    /// The users of this page, each wrapped as `{"user": …}`.
    #[serde(default)]
    pub items: Vec<UserEnvelope>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn online_list_and_count() {
        let l: OnlineUsers =
            serde_json::from_value(json!({"users": [{"id": 5, "login": "a"}]})).unwrap();
        assert_eq!(l.users[0].id, 5);
        let c: OnlineCount = serde_json::from_value(json!({"count": 3})).unwrap();
        assert_eq!(c.count, 3);
    }

    #[test]
    fn v1_page_wraps_each_user() {
        let p: UsersV1Page = serde_json::from_value(json!({
            "current_page": 1, "per_page": 10, "total_entries": 1,
            "items": [{"user": {"id": 9, "full_name": "Ann", "user_tags": "a,b"}}]
        }))
        .unwrap();
        assert_eq!(p.items[0].user.full_name.as_deref(), Some("Ann"));
        assert_eq!(p.items[0].user.user_tags.as_deref(), Some("a,b"));
    }

    #[test]
    fn user_tags_read_as_text_or_list() {
        let u: User =
            serde_json::from_value(json!({"id": 1, "user_tags": ["x", "y"], "blob_id": null}))
                .unwrap();
        assert_eq!(u.user_tags.as_deref(), Some("x,y"));
        let u: User = serde_json::from_value(json!({"id": 1, "user_tags": null})).unwrap();
        assert_eq!(u.user_tags, None);
    }
}
