//! The address book (protocol reference §3.5): a user's phone contacts, per device `udid`,
//! and the registered users among them.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::auth::User;

/// One contact: a name and a phone number. `destroy` deletes it from the book on upload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The name in the phone's contact list.
    #[serde(default)]
    pub name: String,
    /// The phone number as the phone holds it.
    #[serde(default)]
    pub phone: String,
    /// Delete this contact (sent as `"destroy": 1`; `1`, `"1"` or `true` are read).
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        serialize_with = "as_one",
        deserialize_with = "flag"
    )]
    pub destroy: bool,
}

fn as_one<S: serde::Serializer>(v: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u8(u8::from(*v))
}

/// `1`, `"1"`, `true` → true; `0`, `"0"`, `false`, `null` → false.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Bool(b)) => b,
        Some(Value::Number(n)) => n.as_u64().is_some_and(|n| n != 0),
        Some(Value::String(s)) => !matches!(s.trim(), "" | "0" | "false"),
        _ => false,
    })
}

/// `POST /address_book` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRequest {
    /// The contacts to add, update (same phone) or delete (`destroy`).
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// The device the book belongs to; absent for the user's global book.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udid: Option<String>,
    /// `1` replaces the whole book (of that `udid`) instead of merging into it.
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        serialize_with = "as_one",
        deserialize_with = "flag"
    )]
    pub force: bool,
}

/// `POST /address_book` answer: counts, and the contacts rejected, keyed by their index in
/// the uploaded list (`{"1": ["phone is invalid"]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadResponse {
    /// Contacts added.
    #[serde(default)]
    pub created: u64,
    /// Contacts whose name changed.
    #[serde(default)]
    pub updated: u64,
    /// Contacts deleted.
    #[serde(default)]
    pub deleted: u64,
    /// Rejected contacts: index in the uploaded list (as text) → the reasons.
    #[serde(default, deserialize_with = "rejections")]
    pub rejected: BTreeMap<String, Vec<String>>,
}

/// Reads `rejected` as an object of index → reason or reasons; `null` or `[]` (an empty
/// PHP-style array) as none.
fn rejections<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    let mut out = BTreeMap::new();
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let reasons = match v {
                    Value::String(s) => vec![s],
                    Value::Array(items) => items
                        .into_iter()
                        .map(|i| match i {
                            Value::String(s) => s,
                            other => other.to_string(),
                        })
                        .collect(),
                    other => vec![other.to_string()],
                };
                out.insert(k, reasons);
            }
        }
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "rejected must be an object, got {other}"
            )))
        }
    }
    Ok(out)
}

/// A registered user found in the address book: the user (only `id` and `phone` when
/// `compact=1`) and the name the book gives them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegisteredUser {
    /// The user.
    #[serde(flatten)]
    pub user: User,
    /// The contact's name in the address book.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_book_name: Option<String>,
}

/// One item of `registered_users`: `{"user": {...}}` (cubeserver, like the other v1 lists)
/// or the bare object (the JS SDK's type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RegisteredUserItem {
    /// `{"user": {...}}`.
    Wrapped {
        /// The user.
        user: RegisteredUser,
    },
    /// The bare user object.
    Bare(RegisteredUser),
}

impl RegisteredUserItem {
    /// The user, whichever shape it came in.
    pub fn into_user(self) -> RegisteredUser {
        match self {
            Self::Wrapped { user } | Self::Bare(user) => user,
        }
    }
}

/// `GET /address_book/registered_users?compact=0|1&udid=` → `{"items": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegisteredUsers {
    /// The registered users among the contacts.
    #[serde(default)]
    pub items: Vec<RegisteredUserItem>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn upload_body_matches_the_js_sdk() {
        let r = UploadRequest {
            contacts: vec![
                Contact {
                    name: "Ann".into(),
                    phone: "+380 67 123".into(),
                    destroy: false,
                },
                Contact {
                    name: "Bob".into(),
                    phone: "555".into(),
                    destroy: true,
                },
            ],
            udid: Some("dev-1".into()),
            force: true,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"contacts": [{"name": "Ann", "phone": "+380 67 123"},
                                {"name": "Bob", "phone": "555", "destroy": 1}],
                   "udid": "dev-1", "force": 1})
        );
        let back: UploadRequest = serde_json::from_value(json!({
            "contacts": [{"name": "B", "phone": "1", "destroy": "1"}], "force": "0"
        }))
        .unwrap();
        assert!(back.contacts[0].destroy);
        assert!(!back.force);
    }

    #[test]
    fn upload_answer_with_rejections() {
        let r: UploadResponse = serde_json::from_value(json!({
            "created": 2, "updated": 0, "deleted": 1, "rejected": {"1": ["phone is invalid"], "3": "x"}
        }))
        .unwrap();
        assert_eq!(r.created, 2);
        assert_eq!(r.rejected["1"], vec!["phone is invalid".to_owned()]);
        assert_eq!(r.rejected["3"], vec!["x".to_owned()]);
        let r: UploadResponse =
            serde_json::from_value(json!({"created": 0, "rejected": []})).unwrap();
        assert!(r.rejected.is_empty());
        assert!(serde_json::from_value::<UploadResponse>(json!({"rejected": 5})).is_err());
    }

    #[test]
    fn registered_users_in_both_shapes() {
        let r: RegisteredUsers = serde_json::from_value(json!({"items": [
            {"user": {"id": 3, "phone": "+1555", "address_book_name": "Ann"}},
            {"id": 4, "phone": "+1556", "address_book_name": "Bob", "login": "bob"}
        ]}))
        .unwrap();
        let users: Vec<RegisteredUser> = r.items.into_iter().map(|i| i.into_user()).collect();
        assert_eq!(users[0].user.id, 3);
        assert_eq!(users[0].address_book_name.as_deref(), Some("Ann"));
        assert_eq!(users[1].user.login.as_deref(), Some("bob"));
    }

    #[test]
    fn read_back_is_a_list_of_contacts() {
        let c: Vec<Contact> =
            serde_json::from_value(json!([{"name": "Ann", "phone": "+1555"}])).unwrap();
        assert_eq!(c[0].phone, "+1555");
        assert!(!c[0].destroy);
    }
}
