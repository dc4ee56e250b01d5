//! [`AddressBook`]: the user's phone contacts on the platform (per device `udid`), and the
//! registered users among them. Get it with [`Client::contacts`].

use std::sync::{Arc, Weak};

use reqwest::Method;
use tracing::debug;

use crate::api::Api;
use crate::client::Client;
use crate::error::{Error, Result};
pub use cubechat_wire::address_book::Contact;
use cubechat_wire::address_book::{RegisteredUsers, UploadRequest, UploadResponse};
use cubechat_wire::auth::User;

/// The most contacts one upload carries.
pub const MAX_CONTACTS: usize = 5000;

/// How an upload combines with the stored book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadMode {
    /// Added to the book; a contact with a phone already there renames it.
    Merge,
    /// Replaces the whole book (of that udid).
    Replace,
}

/// A contact the platform refused, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedContact {
    /// Its index in the uploaded list.
    pub index: u64,
    /// The contact as uploaded (`None` when the server named an index outside the list).
    pub contact: Option<Contact>,
    /// The platform's reasons (e.g. "phone is invalid").
    pub reasons: Vec<String>,
}

/// What an upload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadResult {
    /// Contacts added.
    pub created: u64,
    /// Contacts renamed.
    pub updated: u64,
    /// Contacts deleted.
    pub deleted: u64,
    /// Contacts refused, in index order.
    pub rejected: Vec<RejectedContact>,
}

/// A registered user found among the contacts.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredContact {
    /// The user (only `id` and `phone` in the compact form).
    pub user: User,
    /// The contact's name in the book.
    pub address_book_name: Option<String>,
}

/// Checks a phone before the network: 1..=32 characters, digits with at most a leading `+`
/// and the separators phones show (space, `-`, `.`, `(`, `)`), and at least one digit.
/// Whether the number is plausible (its length) is the platform's call, reported as a
/// rejection.
fn check_phone(index: usize, phone: &str) -> Result<()> {
    let p = phone.trim();
    let ok = !p.is_empty()
        && p.len() <= 32
        && p.bytes().any(|b| b.is_ascii_digit())
        && p.char_indices().all(|(i, c)| {
            c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')') || (c == '+' && i == 0)
        });
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "contact {index}: the phone is not a phone number"
        )))
    }
}

fn check_udid(udid: Option<&str>) -> Result<()> {
    match udid {
        Some(u) if u.trim().is_empty() || u.len() > 255 => {
            Err(Error::InvalidInput("the udid is empty or too long".into()))
        }
        _ => Ok(()),
    }
}

/// The address book feature of one [`Client`].
#[derive(Clone)]
pub struct AddressBook {
    api: Arc<Api>,
    client: Weak<Client>,
}

impl std::fmt::Debug for AddressBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressBook").finish_non_exhaustive()
    }
}

impl Client {
    /// The address book feature: upload contacts, read them back, find registered users.
    pub fn contacts(&self) -> AddressBook {
        AddressBook {
            api: self.api.clone(),
            client: self.me.clone(),
        }
    }
}

impl AddressBook {
    /// Uploads contacts (`POST /address_book`) of the device `udid` (`None`: the user's
    /// global book). Contacts with `destroy` set are deleted. Before the network:
    /// `InvalidInput` for a malformed phone (named by index), an empty name, more than
    /// [`MAX_CONTACTS`], or an empty merge. Numbers the platform refuses come back typed in
    /// [`UploadResult::rejected`]; the others are applied.
    pub async fn upload(
        &self,
        contacts: &[Contact],
        udid: Option<&str>,
        mode: UploadMode,
    ) -> Result<UploadResult> {
        check_udid(udid)?;
        if contacts.is_empty() && mode == UploadMode::Merge {
            return Err(Error::InvalidInput("no contacts to merge".into()));
        }
        if contacts.len() > MAX_CONTACTS {
            return Err(Error::InvalidInput(format!(
                "more than {MAX_CONTACTS} contacts"
            )));
        }
        for (i, c) in contacts.iter().enumerate() {
            check_phone(i, &c.phone)?;
            if c.name.len() > 255 || (c.name.trim().is_empty() && !c.destroy) {
                return Err(Error::InvalidInput(format!(
                    "contact {i}: the name is empty or too long"
                )));
            }
        }
        let body = serde_json::to_value(UploadRequest {
            contacts: contacts.to_vec(),
            udid: udid.map(str::to_owned),
            force: mode == UploadMode::Replace,
        })
        .map_err(|e| Error::Protocol(format!("cannot encode the contacts: {e}")))?;
        let r: UploadResponse = self
            .api
            .call(Method::POST, "address_book", &[], Some(&body))
            .await?;
        let mut rejected: Vec<RejectedContact> = r
            .rejected
            .into_iter()
            .map(|(k, reasons)| {
                let index = k.trim().parse::<u64>().unwrap_or(u64::MAX);
                RejectedContact {
                    index,
                    contact: usize::try_from(index)
                        .ok()
                        .and_then(|i| contacts.get(i))
                        .cloned(),
                    reasons,
                }
            })
            .collect();
        rejected.sort_by_key(|r| r.index);
        Ok(UploadResult {
            created: r.created,
            updated: r.updated,
            deleted: r.deleted,
            rejected,
        })
    }

    /// The stored contacts of `udid` (`None`: the global book).
    pub async fn get(&self, udid: Option<&str>) -> Result<Vec<Contact>> {
        check_udid(udid)?;
        let query: Vec<(String, String)> = udid
            .map(|u| vec![("udid".to_owned(), u.to_owned())])
            .unwrap_or_default();
        self.api
            .call(Method::GET, "address_book", &query, None)
            .await
    }

    /// The registered users among the contacts of `udid` (`None`: the global book);
    /// `compact` keeps only id and phone. Full users are kept in the local store too.
    pub async fn registered_users(
        &self,
        udid: Option<&str>,
        compact: bool,
    ) -> Result<Vec<RegisteredContact>> {
        check_udid(udid)?;
        let mut query = vec![("compact".to_owned(), u8::from(compact).to_string())];
        if let Some(u) = udid {
            query.push(("udid".into(), u.to_owned()));
        }
        let r: RegisteredUsers = self
            .api
            .call(Method::GET, "address_book/registered_users", &query, None)
            .await?;
        let found: Vec<RegisteredContact> = r
            .items
            .into_iter()
            .map(|i| {
                let r = i.into_user();
                RegisteredContact {
                    user: r.user,
                    address_book_name: r.address_book_name,
                }
            })
            .collect();
        if !compact {
            if let Some(c) = self.client.upgrade() {
                let users: Vec<User> = found.iter().map(|r| r.user.clone()).collect();
                if let Err(e) = c.remember_users(&users) {
                    debug!(target: "cubechat_core::store", error = %e, "users not stored");
                }
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Config;
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn c(name: &str, phone: &str) -> Contact {
        Contact {
            name: name.into(),
            phone: phone.into(),
            destroy: false,
        }
    }

    #[test]
    fn phones_are_checked() {
        for ok in ["+380 (67) 123-45.67", "12", "5551234"] {
            assert!(check_phone(0, ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " ",
            "abc",
            "++1",
            "1+2",
            "phone: 123",
            "-",
            &"1".repeat(33),
        ] {
            assert!(check_phone(0, bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn bad_lists_fail_before_the_network_and_rejections_are_typed() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/address_book.json"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({
                "created": 1, "updated": 0, "deleted": 0, "rejected": {"1": ["phone is invalid"]}
            })))
            .mount(&server)
            .await;
        let client = Client::new(Config::new(7, "k", server.uri())).unwrap();
        client.api.adopt(
            serde_json::from_value(
                json!({"id": 1, "user_id": 5, "application_id": 7, "token": "t"}),
            )
            .unwrap(),
            None,
        );
        let book = client.contacts();
        assert!(matches!(
            book.upload(&[], None, UploadMode::Merge).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            book.upload(&[c("A", "+1555"), c("B", "x1")], None, UploadMode::Merge).await,
            Err(Error::InvalidInput(m)) if m.contains("contact 1")
        ));
        assert!(matches!(
            book.upload(&[c("", "+1555")], None, UploadMode::Merge)
                .await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            book.get(Some(" ")).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(server.received_requests().await.unwrap().is_empty());
        let r = book
            .upload(
                &[c("A", "+15551234"), c("B", "12")],
                Some("dev"),
                UploadMode::Replace,
            )
            .await
            .unwrap();
        assert_eq!(r.created, 1);
        assert_eq!(r.rejected.len(), 1);
        assert_eq!(r.rejected[0].index, 1);
        assert_eq!(r.rejected[0].contact.as_ref().unwrap().phone, "12");
        let sent: serde_json::Value =
            serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
        assert_eq!(sent["force"], 1);
        assert_eq!(sent["udid"], "dev");
    }
}
