//! [`Users`]: looking users up, the own profile and account, who is online, and the users the
//! app has seen, kept in the local store (names and avatars offline) with a live view of one
//! user. Get it with [`Client::users`].
//!
//! Every user a lookup returns is written to the store of the logged-in user, so a dialog
//! list can show names and avatars offline ([`Users::cached`]); [`Users::watch`] gives one
//! user's stored copy and then every change of it.

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use reqwest::Method;
use serde_json::{json, Value};
use tracing::debug;

use crate::api::Api;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::stream::{self, EventStream};
use cubechat_wire::users::{
    OnlineCount, OnlineUsers, User, UserEnvelope, UsersPage, UsersV1Page, V1_MAX_PER_PAGE,
    V2_MAX_LIMIT,
};

/// The longest full name, login or email searched for.
const MAX_TEXT: usize = 255;
/// The most tags one search names.
const MAX_TAGS: usize = 10;
/// The most ids [`Users::get_by_ids`] takes in one call (then it pages them).
pub const MAX_IDS: usize = 10_000;

/// A page of users from a search.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserSearchPage {
    /// The users of this page.
    pub users: Vec<User>,
    /// The 1-based page served.
    pub page: u64,
    /// The page size served.
    pub per_page: u64,
    /// How many users match in total.
    pub total: u64,
}

/// A change to the own profile: each `Some` field is written, `None` ones stay as they are.
/// Tags replace the current ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileUpdate {
    /// The full name shown to others.
    pub full_name: Option<String>,
    /// The e-mail address.
    pub email: Option<String>,
    /// The phone number.
    pub phone: Option<String>,
    /// The website URL.
    pub website: Option<String>,
    /// The avatar: a URL or the uid of a blob uploaded with the storage API.
    pub avatar: Option<String>,
    /// The id of that avatar blob (the user's `blob_id`).
    pub avatar_blob_id: Option<u64>,
    /// Free-form data (often JSON).
    pub custom_data: Option<String>,
    /// The tags; an empty list clears them.
    pub tags: Option<Vec<String>>,
}

impl ProfileUpdate {
    /// The `user` object of `PUT /users/{id}`, or `InvalidInput` when nothing is set or a
    /// value is unusable.
    fn body(&self) -> Result<Value> {
        let mut user = serde_json::Map::new();
        let mut text = |key: &str, v: &Option<String>| -> Result<()> {
            if let Some(v) = v {
                if v.len() > 10_000 {
                    return Err(Error::InvalidInput(format!("{key} is too long")));
                }
                user.insert(key.to_owned(), json!(v));
            }
            Ok(())
        };
        text("full_name", &self.full_name)?;
        text("email", &self.email)?;
        text("phone", &self.phone)?;
        text("website", &self.website)?;
        text("avatar", &self.avatar)?;
        text("custom_data", &self.custom_data)?;
        if let Some(email) = self.email.as_deref() {
            if !email.is_empty() && !email.contains('@') {
                return Err(Error::InvalidInput("email has no '@'".into()));
            }
        }
        if let Some(id) = self.avatar_blob_id {
            if id == 0 {
                return Err(Error::InvalidInput(
                    "avatar blob id must be positive".into(),
                ));
            }
            user.insert("blob_id".into(), json!(id));
        }
        if let Some(tags) = &self.tags {
            user.insert("tag_list".into(), json!(tag_text(tags, true)?));
        }
        if user.is_empty() {
            return Err(Error::InvalidInput(
                "the profile update changes nothing".into(),
            ));
        }
        Ok(Value::Object(user))
    }
}

/// Tags as the comma-joined text the platform takes; `InvalidInput` for an empty tag, a tag
/// with a comma, or too many.
fn tag_text(tags: &[String], allow_none: bool) -> Result<String> {
    if tags.is_empty() && !allow_none {
        return Err(Error::InvalidInput("no tags given".into()));
    }
    if tags.len() > MAX_TAGS.max(if allow_none { 100 } else { 0 }) {
        return Err(Error::InvalidInput("too many tags".into()));
    }
    for t in tags {
        let t = t.trim();
        if t.is_empty() || t.contains(',') || t.len() > MAX_TEXT {
            return Err(Error::InvalidInput(
                "a tag must be non-empty, without ',' and at most 255 bytes".into(),
            ));
        }
    }
    Ok(tags.iter().map(|t| t.trim()).collect::<Vec<_>>().join(","))
}

fn check_text(what: &str, v: &str) -> Result<()> {
    if v.trim().is_empty() || v.len() > MAX_TEXT {
        return Err(Error::InvalidInput(format!(
            "{what} must be non-empty and at most {MAX_TEXT} bytes"
        )));
    }
    Ok(())
}

fn check_page(page: u64, per_page: u64) -> Result<()> {
    if page == 0 || per_page == 0 || per_page > V1_MAX_PER_PAGE {
        return Err(Error::InvalidInput(format!(
            "page starts at 1 and per_page is 1..={V1_MAX_PER_PAGE}"
        )));
    }
    Ok(())
}

/// The users feature of one [`Client`]: cheap to clone, shares the client's session.
#[derive(Clone)]
pub struct Users {
    api: Arc<Api>,
    client: Weak<Client>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users").finish_non_exhaustive()
    }
}

impl Client {
    /// The users feature: lookups, the own profile, online users and the users kept in the
    /// local store.
    pub fn users(&self) -> Users {
        Users {
            api: self.api.clone(),
            client: self.me.clone(),
        }
    }
}

impl Users {
    fn me(&self) -> Result<u64> {
        self.api
            .current_session()
            .map(|s| s.user_id)
            .filter(|id| *id != 0)
            .ok_or(Error::NotLoggedIn)
    }

    /// Writes users the app has just seen to the store and tells their live views. A store
    /// that cannot open is skipped (the lookup itself succeeded).
    pub(crate) fn remember(&self, users: &[User]) {
        let Some(client) = self.client.upgrade() else {
            return;
        };
        if let Err(e) = client.remember_users(users) {
            debug!(target: "cubechat_core::store", error = %e, "users not stored");
        }
    }

    /// The users with these ids, in the order of `ids` (unknown ids are skipped; repeats
    /// are asked once). Any count up to [`MAX_IDS`]: asked in pages of the server's
    /// maximum (`GET /users/v2?id[in][]=…`). Errors before the network: `InvalidInput` for
    /// an empty list, an id 0 or more than [`MAX_IDS`] ids.
    pub async fn get_by_ids(&self, ids: &[u64]) -> Result<Vec<User>> {
        if ids.is_empty() {
            return Err(Error::InvalidInput("the list of user ids is empty".into()));
        }
        if ids.len() > MAX_IDS {
            return Err(Error::InvalidInput(format!("more than {MAX_IDS} user ids")));
        }
        if ids.contains(&0) {
            return Err(Error::InvalidInput("user id 0".into()));
        }
        let mut seen = HashSet::new();
        let unique: Vec<u64> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
        let mut found = Vec::with_capacity(unique.len());
        for chunk in unique.chunks(V2_MAX_LIMIT as usize) {
            let mut query: Vec<(String, String)> = chunk
                .iter()
                .map(|id| ("id[in][]".to_owned(), id.to_string()))
                .collect();
            query.push(("limit".into(), V2_MAX_LIMIT.to_string()));
            let page: UsersPage = self.api.call(Method::GET, "users/v2", &query, None).await?;
            found.extend(page.items);
        }
        self.remember(&found);
        let mut by_id: std::collections::HashMap<u64, User> =
            found.into_iter().map(|u| (u.id, u)).collect();
        Ok(unique.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// One user by id (`NotFound` if there is none).
    pub async fn get(&self, id: u64) -> Result<User> {
        self.get_by_ids(&[id])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::NotFound("no user with that id".into()))
    }

    async fn one_by(&self, field: &str, value: &str) -> Result<Option<User>> {
        let query = vec![
            (field.to_owned(), value.to_owned()),
            ("limit".into(), "1".into()),
        ];
        let page: UsersPage = self.api.call(Method::GET, "users/v2", &query, None).await?;
        let user = page.items.into_iter().next();
        if let Some(u) = &user {
            self.remember(std::slice::from_ref(u));
        }
        Ok(user)
    }

    /// The user with this login, if any.
    pub async fn get_by_login(&self, login: &str) -> Result<Option<User>> {
        check_text("login", login)?;
        self.one_by("login", login.trim()).await
    }

    /// The user with this e-mail, if any.
    pub async fn get_by_email(&self, email: &str) -> Result<Option<User>> {
        check_text("email", email)?;
        if !email.contains('@') {
            return Err(Error::InvalidInput("email has no '@'".into()));
        }
        self.one_by("email", email.trim()).await
    }

    async fn v1_page(
        &self,
        path: &str,
        key: &str,
        value: String,
        page: u64,
        per_page: u64,
    ) -> Result<UserSearchPage> {
        check_page(page, per_page)?;
        let query = vec![
            (key.to_owned(), value),
            ("page".into(), page.to_string()),
            ("per_page".into(), per_page.to_string()),
        ];
        let p: UsersV1Page = self.api.call(Method::GET, path, &query, None).await?;
        let users: Vec<User> = p.items.into_iter().map(|e| e.user).collect();
        self.remember(&users);
        Ok(UserSearchPage {
            users,
            page: if p.current_page == 0 {
                page
            } else {
                p.current_page
            },
            per_page: if p.per_page == 0 {
                per_page
            } else {
                p.per_page
            },
            total: p.total_entries,
        })
    }

    /// Users whose full name contains `name` (case-insensitive), page `page` (from 1) of
    /// `per_page` (1..=100): `GET /users/by_full_name`.
    pub async fn search_by_full_name(
        &self,
        name: &str,
        page: u64,
        per_page: u64,
    ) -> Result<UserSearchPage> {
        check_text("full name", name)?;
        self.v1_page(
            "users/by_full_name",
            "full_name",
            name.trim().to_owned(),
            page,
            per_page,
        )
        .await
    }

    /// Users with any of `tags` (at most 10, none empty or with a comma), paged as
    /// [`Users::search_by_full_name`]: `GET /users/by_tags`.
    pub async fn search_by_tags(
        &self,
        tags: &[String],
        page: u64,
        per_page: u64,
    ) -> Result<UserSearchPage> {
        let text = tag_text(tags, false)?;
        self.v1_page("users/by_tags", "tags", text, page, per_page)
            .await
    }

    /// Changes the own profile (`PUT /users/{me}`) and returns the user as stored; it is
    /// kept in the local store too. `InvalidInput` before the network when nothing changes.
    pub async fn update_profile(&self, update: &ProfileUpdate) -> Result<User> {
        let body = update.body()?;
        self.put_me(json!({ "user": body })).await
    }

    /// Changes the own password; the platform needs the current one.
    pub async fn change_password(&self, old_password: &str, new_password: &str) -> Result<User> {
        if old_password.is_empty() || new_password.is_empty() {
            return Err(Error::InvalidInput("passwords must be non-empty".into()));
        }
        if new_password.len() > 128 {
            return Err(Error::InvalidInput("the new password is too long".into()));
        }
        self.put_me(json!({"user": {"old_password": old_password, "password": new_password}}))
            .await
    }

    async fn put_me(&self, body: Value) -> Result<User> {
        let me = self.me()?;
        let env: UserEnvelope = self
            .api
            .call(Method::PUT, &format!("users/{me}"), &[], Some(&body))
            .await?;
        self.remember(std::slice::from_ref(&env.user));
        Ok(env.user)
    }

    /// Deletes the own account (`DELETE /users/{me}`). The session is then of no use: log
    /// out or drop the client.
    pub async fn delete_account(&self) -> Result<()> {
        let me = self.me()?;
        self.api
            .call_empty(Method::DELETE, &format!("users/{me}"), &[], None)
            .await
    }

    /// Users with a chat connection now, `limit` (1..=100) from `offset`.
    pub async fn online(&self, limit: u64, offset: u64) -> Result<Vec<User>> {
        if limit == 0 || limit > V2_MAX_LIMIT {
            return Err(Error::InvalidInput(format!("limit is 1..={V2_MAX_LIMIT}")));
        }
        let query = vec![
            ("limit".to_owned(), limit.to_string()),
            ("offset".to_owned(), offset.to_string()),
        ];
        let l: OnlineUsers = self
            .api
            .call(Method::GET, "users/online", &query, None)
            .await?;
        self.remember(&l.users);
        Ok(l.users)
    }

    /// How many users have a chat connection now.
    pub async fn online_count(&self) -> Result<u64> {
        let query = vec![("count".to_owned(), "true".to_owned())];
        let c: OnlineCount = self
            .api
            .call(Method::GET, "users/online", &query, None)
            .await?;
        Ok(c.count)
    }

    /// The user as last seen, from the local store (no network).
    pub fn cached(&self, id: u64) -> Result<Option<User>> {
        self.local_client()?.store()?.user(id)
    }

    /// The stored users among `ids`, in their order (no network).
    pub fn cached_many(&self, ids: &[u64]) -> Result<Vec<User>> {
        self.local_client()?.store()?.users(ids)
    }

    /// Fetches the occupants of the stored dialogs that the store does not know yet (so the
    /// dialog list can show every name offline); returns how many users were fetched.
    pub async fn fetch_missing_occupants(&self) -> Result<usize> {
        let store = self.local_client()?.store()?;
        let me = self.me().unwrap_or(0);
        let mut missing = Vec::new();
        let mut seen = HashSet::new();
        for d in store.dialogs_upto(None)? {
            for id in d.occupants_ids.iter().copied() {
                if id != me && seen.insert(id) && store.user(id)?.is_none() {
                    missing.push(id);
                }
            }
        }
        if missing.is_empty() {
            return Ok(0);
        }
        Ok(self.get_by_ids(&missing).await?.len())
    }

    /// One user's stored copy (the snapshot; `None` when the store has not seen them yet)
    /// and an [`EventStream`] of every later change of it, as lookups, contacts and
    /// occupants bring newer copies. Nothing is missed between snapshot and stream; the
    /// stream ends when the store closes or the client is dropped.
    pub fn watch(&self, id: u64) -> Result<(Option<User>, EventStream<User>)> {
        if id == 0 {
            return Err(Error::InvalidInput("user id 0".into()));
        }
        let local = self.local_client()?.local()?;
        let (tx, rx) = stream::channel();
        let mut views = local.user_views.lock().unwrap_or_else(|p| p.into_inner());
        let snapshot = local.store.user(id)?;
        views.entry(id).or_default().push(tx);
        Ok((snapshot, rx))
    }

    fn local_client(&self) -> Result<Arc<Client>> {
        self.client
            .upgrade()
            .ok_or_else(|| Error::InvalidInput("the client was dropped".into()))
    }
}

impl Client {
    /// Writes users to the store and tells the live views of those that changed, under the
    /// views lock (so a view's snapshot is either before or after a write, never between).
    pub(crate) fn remember_users(&self, users: &[User]) -> Result<()> {
        if users.is_empty() {
            return Ok(());
        }
        let local = self.local()?;
        let mut views = local.user_views.lock().unwrap_or_else(|p| p.into_inner());
        let changed = local.store.put_users(users)?;
        for u in changed {
            if let Some(list) = views.get_mut(&u.id) {
                list.retain(|tx| tx.send(u.clone()).is_ok());
            }
        }
        views.retain(|_, l| !l.is_empty());
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Config;
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn logged_in(server: &MockServer) -> Arc<Client> {
        let c = Client::new(Config::new(7, "k", server.uri())).unwrap();
        c.api.adopt(
            serde_json::from_value(
                json!({"id": 1, "user_id": 5, "application_id": 7, "token": "t"}),
            )
            .unwrap(),
            None,
        );
        c
    }

    fn user(id: u64, name: &str) -> Value {
        json!({"id": id, "full_name": name})
    }

    #[tokio::test]
    async fn bad_input_fails_before_the_network() {
        let server = MockServer::start().await;
        let c = logged_in(&server);
        let u = c.users();
        assert!(matches!(
            u.get_by_ids(&[]).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            u.get_by_ids(&[1, 0]).await,
            Err(Error::InvalidInput(_))
        ));
        let many: Vec<u64> = (1..=MAX_IDS as u64 + 1).collect();
        assert!(matches!(
            u.get_by_ids(&many).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            u.get_by_login(" ").await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            u.get_by_email("nope").await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            u.search_by_full_name("a", 0, 10).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            u.search_by_full_name("a", 1, 101).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            u.search_by_tags(&[], 1, 10).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            u.search_by_tags(&["a,b".into()], 1, 10).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            u.update_profile(&ProfileUpdate::default()).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            u.change_password("", "x").await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(u.online(0, 0).await, Err(Error::InvalidInput(_))));
        assert!(matches!(u.watch(0), Err(Error::InvalidInput(_))));
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn ids_are_paged_by_the_server_maximum_and_kept_in_order() {
        let server = MockServer::start().await;
        // Answers every page with the users it asked for.
        Mock::given(method("GET"))
            .and(path("/users/v2.json"))
            .respond_with(|req: &wiremock::Request| {
                let items: Vec<Value> = req
                    .url
                    .query_pairs()
                    .filter(|(k, _)| k == "id[in][]")
                    .map(|(_, v)| user(v.parse().unwrap(), "n"))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "total_entries": items.len(), "skip": 0, "limit": 100, "items": items
                }))
            })
            .mount(&server)
            .await;
        let c = logged_in(&server);
        let ids: Vec<u64> = (1..=250).rev().chain([7, 7]).collect();
        let got = c.users().get_by_ids(&ids).await.unwrap();
        assert_eq!(got.len(), 250);
        assert_eq!(got[0].id, 250);
        assert_eq!(got[249].id, 1);
        let reqs = server.received_requests().await.unwrap();
        assert_eq!(reqs.len(), 3, "250 ids in pages of 100");
        assert_eq!(c.users().cached(42).unwrap().unwrap().id, 42);
    }

    #[tokio::test]
    async fn missing_occupants_of_stored_dialogs_are_fetched_once() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/users/v2.json"))
            .and(query_param("id[in][]", "10"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "total_entries": 1, "skip": 0, "limit": 100, "items": [user(10, "Ten")]
            })))
            .expect(1)
            .mount(&server)
            .await;
        let c = logged_in(&server);
        let store = c.store().unwrap();
        let dialog: cubechat_wire::chat::Dialog = serde_json::from_value(json!({
            "_id": "5f0000000000000000000001", "type": 2, "name": "g", "user_id": 5,
            "occupants_ids": [5, 9, 10]
        }))
        .unwrap();
        store.put_dialogs(&[dialog]).unwrap();
        store
            .put_users(&[serde_json::from_value(user(9, "Nine")).unwrap()])
            .unwrap();
        assert_eq!(c.users().fetch_missing_occupants().await.unwrap(), 1);
        assert_eq!(
            c.users().fetch_missing_occupants().await.unwrap(),
            0,
            "all known now"
        );
        let names: Vec<Option<String>> = c
            .users()
            .cached_many(&[9, 10, 11])
            .unwrap()
            .into_iter()
            .map(|u| u.full_name)
            .collect();
        assert_eq!(names, vec![Some("Nine".into()), Some("Ten".into())]);
    }

    #[tokio::test]
    async fn a_watched_user_changes_with_each_newer_copy() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/users/v2.json"))
            .and(query_param("login", "ann"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "total_entries": 1, "skip": 0, "limit": 1, "items": [user(9, "Ann")]
            })))
            .mount(&server)
            .await;
        Mock::given(method("PUT"))
            .and(path("/users/5.json"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"user": user(5, "Me 2")})),
            )
            .mount(&server)
            .await;
        let c = logged_in(&server);
        let u = c.users();
        let (snap, mut rx) = u.watch(9).unwrap();
        assert_eq!(snap, None);
        let ann = u.get_by_login("ann").await.unwrap().unwrap();
        assert_eq!(rx.recv().await.unwrap(), ann);
        // The same copy again is no change.
        u.get_by_login("ann").await.unwrap();
        let (snap, mut me) = u.watch(5).unwrap();
        assert_eq!(snap, None);
        let updated = u
            .update_profile(&ProfileUpdate {
                full_name: Some("Me 2".into()),
                tags: Some(vec!["a".into(), " b".into()]),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(me.recv().await.unwrap(), updated);
        assert!(rx.try_recv().is_err(), "an unchanged copy is not an event");
        let put = &server.received_requests().await.unwrap()[2];
        let body: Value = serde_json::from_slice(&put.body).unwrap();
        assert_eq!(
            body,
            json!({"user": {"full_name": "Me 2", "tag_list": "a,b"}})
        );
    }
}
