//! Users and the address book for apps: thin wrappers over `cubechat_core::users` and
//! `cubechat_core::address_book` (conversions and delivery loops only).
//!
//! - [`ChatClient::users`] → [`Users`]: lookups (ids, login, email, full name, tags), the own
//!   profile, password and account, users online, the users kept in the local store and a
//!   live view of one user ([`UserListener`]).
//! - [`ChatClient::contacts`] → [`AddressBook`]: upload, read back, registered users.

use std::sync::Arc;

use cubechat_core::address_book as book_core;
use cubechat_core::users as users_core;

use crate::client::ChatClient;
use crate::convert::User;
use crate::error::ChatError;
use crate::handle::{Job, SubscriptionHandle};
use crate::runtime::{rt, run};

/// A page of users from a search.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct UserSearchPage {
    /// The users of this page.
    pub users: Vec<User>,
    /// The page served (from 1).
    pub page: u64,
    /// The page size served.
    pub per_page: u64,
    /// How many users match in total.
    pub total: u64,
}

impl From<users_core::UserSearchPage> for UserSearchPage {
    fn from(p: users_core::UserSearchPage) -> Self {
        Self {
            users: p.users.into_iter().map(Into::into).collect(),
            page: p.page,
            per_page: p.per_page,
            total: p.total,
        }
    }
}

/// A change to the own profile: each set field is written, unset ones stay as they are.
#[derive(Debug, Clone, Default, PartialEq, uniffi::Record)]
pub struct ProfileUpdate {
    /// The full name shown to others.
    #[uniffi(default)]
    pub full_name: Option<String>,
    /// The e-mail address.
    #[uniffi(default)]
    pub email: Option<String>,
    /// The phone number.
    #[uniffi(default)]
    pub phone: Option<String>,
    /// The website URL.
    #[uniffi(default)]
    pub website: Option<String>,
    /// The avatar: a URL or the uid of an uploaded blob.
    #[uniffi(default)]
    pub avatar: Option<String>,
    /// The id of that avatar blob.
    #[uniffi(default)]
    pub avatar_blob_id: Option<u64>,
    /// Free-form data (often JSON).
    #[uniffi(default)]
    pub custom_data: Option<String>,
    /// The tags (replacing the current ones; empty clears them).
    #[uniffi(default)]
    pub tags: Option<Vec<String>>,
}

impl From<ProfileUpdate> for users_core::ProfileUpdate {
    fn from(p: ProfileUpdate) -> Self {
        Self {
            full_name: p.full_name,
            email: p.email,
            phone: p.phone,
            website: p.website,
            avatar: p.avatar,
            avatar_blob_id: p.avatar_blob_id,
            custom_data: p.custom_data,
            tags: p.tags,
        }
    }
}

/// Receives one user's stored copy: first the snapshot (`None` when the store has not seen
/// the user), then every newer copy.
///
/// Threads: called on this subscription's own thread (`cubechat-deliver`), one event at a
/// time, in order; never on the engine's threads, so a slow or blocking call delays only
/// this subscription.
#[uniffi::export(foreign)]
pub trait UserListener: Send + Sync {
    /// The user as the store now has them.
    fn on_user(&self, user: Option<User>) -> Result<(), ChatError>;
}

/// The users feature of a [`ChatClient`].
#[derive(uniffi::Object)]
pub struct Users {
    inner: users_core::Users,
}

/// The address book feature of a [`ChatClient`].
#[derive(uniffi::Object)]
pub struct AddressBook {
    inner: book_core::AddressBook,
}

#[uniffi::export]
impl ChatClient {
    /// The users feature: lookups, the own profile, online users, stored users.
    pub fn users(&self) -> Arc<Users> {
        Arc::new(Users {
            inner: self.core().users(),
        })
    }

    /// The address book feature: contacts and the registered users among them.
    pub fn contacts(&self) -> Arc<AddressBook> {
        Arc::new(AddressBook {
            inner: self.core().contacts(),
        })
    }
}

fn users(v: Vec<cubechat_core::User>) -> Vec<User> {
    v.into_iter().map(Into::into).collect()
}

#[uniffi::export]
impl Users {
    /// The users with these ids, in their order (unknown ids skipped); any count up to
    /// 10000, fetched in pages. `InvalidInput` for an empty list or id 0.
    pub async fn get_by_ids(&self, ids: Vec<u64>) -> Result<Vec<User>, ChatError> {
        let u = self.inner.clone();
        run(async move { u.get_by_ids(&ids).await })
            .await
            .map(users)
    }

    /// One user by id (`NotFound` if none).
    pub async fn get(&self, id: u64) -> Result<User, ChatError> {
        let u = self.inner.clone();
        run(async move { u.get(id).await }).await.map(Into::into)
    }

    /// The user with this login, if any.
    pub async fn get_by_login(&self, login: String) -> Result<Option<User>, ChatError> {
        let u = self.inner.clone();
        run(async move { u.get_by_login(&login).await })
            .await
            .map(|o| o.map(Into::into))
    }

    /// The user with this e-mail, if any.
    pub async fn get_by_email(&self, email: String) -> Result<Option<User>, ChatError> {
        let u = self.inner.clone();
        run(async move { u.get_by_email(&email).await })
            .await
            .map(|o| o.map(Into::into))
    }

    /// Users whose full name contains `name`, page `page` (from 1) of `per_page` (1–100).
    pub async fn search_by_full_name(
        &self,
        name: String,
        page: u64,
        per_page: u64,
    ) -> Result<UserSearchPage, ChatError> {
        let u = self.inner.clone();
        run(async move { u.search_by_full_name(&name, page, per_page).await })
            .await
            .map(Into::into)
    }

    /// Users with any of `tags`, paged as `search_by_full_name`.
    pub async fn search_by_tags(
        &self,
        tags: Vec<String>,
        page: u64,
        per_page: u64,
    ) -> Result<UserSearchPage, ChatError> {
        let u = self.inner.clone();
        run(async move { u.search_by_tags(&tags, page, per_page).await })
            .await
            .map(Into::into)
    }

    /// Changes the own profile; returns the user as stored.
    pub async fn update_profile(&self, update: ProfileUpdate) -> Result<User, ChatError> {
        let u = self.inner.clone();
        run(async move { u.update_profile(&update.into()).await })
            .await
            .map(Into::into)
    }

    /// Changes the own password (the current one is required).
    pub async fn change_password(
        &self,
        old_password: String,
        new_password: String,
    ) -> Result<User, ChatError> {
        let u = self.inner.clone();
        run(async move { u.change_password(&old_password, &new_password).await })
            .await
            .map(Into::into)
    }

    /// Deletes the own account; then log out or drop the client.
    pub async fn delete_account(&self) -> Result<(), ChatError> {
        let u = self.inner.clone();
        run(async move { u.delete_account().await }).await
    }

    /// Users with a chat connection now: `limit` (1–100) from `offset`.
    pub async fn online(&self, limit: u64, offset: u64) -> Result<Vec<User>, ChatError> {
        let u = self.inner.clone();
        run(async move { u.online(limit, offset).await })
            .await
            .map(users)
    }

    /// How many users have a chat connection now.
    pub async fn online_count(&self) -> Result<u64, ChatError> {
        let u = self.inner.clone();
        run(async move { u.online_count().await }).await
    }

    /// Fetches the occupants of the stored dialogs that the store does not know yet;
    /// returns how many users were fetched.
    pub async fn fetch_missing_occupants(&self) -> Result<u64, ChatError> {
        let u = self.inner.clone();
        run(async move { u.fetch_missing_occupants().await })
            .await
            .map(|n| n as u64)
    }

    /// The user as last seen, from the local store (no network).
    pub fn cached(&self, id: u64) -> Result<Option<User>, ChatError> {
        let _g = rt()?.enter();
        Ok(self.inner.cached(id)?.map(Into::into))
    }

    /// The stored users among `ids`, in their order (no network).
    pub fn cached_many(&self, ids: Vec<u64>) -> Result<Vec<User>, ChatError> {
        let _g = rt()?.enter();
        Ok(users(self.inner.cached_many(&ids)?))
    }

    /// Watches one user in the local store: delivers the stored copy (or `None`) at once,
    /// then every newer copy that lookups, contacts or occupants bring. Cancel the handle
    /// to stop.
    pub fn watch(
        &self,
        id: u64,
        listener: Arc<dyn UserListener>,
    ) -> Result<Arc<SubscriptionHandle>, ChatError> {
        let (snapshot, rx) = {
            let _g = rt()?.enter();
            self.inner.watch(id)?
        };
        let first_listener = listener.clone();
        let first: Job = Box::new(move || first_listener.on_user(snapshot.map(Into::into)));
        SubscriptionHandle::deliver(
            "UserListener",
            Some(first),
            rx,
            move |user: cubechat_wire::users::User| {
                let l = listener.clone();
                let job: Job = Box::new(move || l.on_user(Some(user.into())));
                Some(job)
            },
        )
    }
}

/// One phone contact.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Contact {
    /// The name in the phone's contact list.
    pub name: String,
    /// The phone number as the phone holds it.
    pub phone: String,
    /// Delete this contact from the book on upload.
    #[uniffi(default = false)]
    pub destroy: bool,
}

impl From<Contact> for book_core::Contact {
    fn from(c: Contact) -> Self {
        Self {
            name: c.name,
            phone: c.phone,
            destroy: c.destroy,
        }
    }
}

impl From<book_core::Contact> for Contact {
    fn from(c: book_core::Contact) -> Self {
        Self {
            name: c.name,
            phone: c.phone,
            destroy: c.destroy,
        }
    }
}

/// How an upload combines with the stored book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum UploadMode {
    /// Added to the book; a known phone is renamed.
    Merge,
    /// Replaces the whole book (of that udid).
    Replace,
}

impl From<UploadMode> for book_core::UploadMode {
    fn from(m: UploadMode) -> Self {
        match m {
            UploadMode::Merge => Self::Merge,
            UploadMode::Replace => Self::Replace,
        }
    }
}

/// A contact the platform refused.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RejectedContact {
    /// Its index in the uploaded list.
    pub index: u64,
    /// The contact as uploaded, when the index is in the list.
    pub contact: Option<Contact>,
    /// The platform's reasons.
    pub reasons: Vec<String>,
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
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

impl From<book_core::UploadResult> for UploadResult {
    fn from(r: book_core::UploadResult) -> Self {
        Self {
            created: r.created,
            updated: r.updated,
            deleted: r.deleted,
            rejected: r
                .rejected
                .into_iter()
                .map(|r| RejectedContact {
                    index: r.index,
                    contact: r.contact.map(Into::into),
                    reasons: r.reasons,
                })
                .collect(),
        }
    }
}

/// A registered user found among the contacts.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RegisteredContact {
    /// The user (only id and phone in the compact form).
    pub user: User,
    /// The contact's name in the book.
    pub address_book_name: Option<String>,
}

#[uniffi::export]
impl AddressBook {
    /// Uploads contacts of the device `udid` (`None`: the global book). Malformed phones
    /// are `InvalidInput` before the network; numbers the platform refuses come back in
    /// `UploadResult.rejected`.
    pub async fn upload(
        &self,
        contacts: Vec<Contact>,
        udid: Option<String>,
        mode: UploadMode,
    ) -> Result<UploadResult, ChatError> {
        let b = self.inner.clone();
        let contacts: Vec<book_core::Contact> = contacts.into_iter().map(Into::into).collect();
        run(async move { b.upload(&contacts, udid.as_deref(), mode.into()).await })
            .await
            .map(Into::into)
    }

    /// The stored contacts of `udid` (`None`: the global book).
    pub async fn get(&self, udid: Option<String>) -> Result<Vec<Contact>, ChatError> {
        let b = self.inner.clone();
        run(async move { b.get(udid.as_deref()).await })
            .await
            .map(|v| v.into_iter().map(Into::into).collect())
    }

    /// The registered users among the contacts of `udid`; `compact` keeps id and phone.
    pub async fn registered_users(
        &self,
        udid: Option<String>,
        compact: bool,
    ) -> Result<Vec<RegisteredContact>, ChatError> {
        let b = self.inner.clone();
        run(async move { b.registered_users(udid.as_deref(), compact).await })
            .await
            .map(|v| {
                v.into_iter()
                    .map(|r| RegisteredContact {
                        user: r.user.into(),
                        address_book_name: r.address_book_name,
                    })
                    .collect()
            })
    }
}
