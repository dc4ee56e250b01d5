//! Chat over REST (protocol reference §4): dialogs of the four types, history, messages,
//! read/delivered marks, deletion, unread counts, reactions, global search and system
//! messages. Input is validated before anything is sent: bad input never reaches the network.

use std::collections::BTreeMap;

use cubechat_wire::chat::{
    dialog_type, is_object_id, DeleteOutcome, DeleteResult, Dialog, DialogsPage, Message,
    MessagesPage, NotificationsEnvelope, SearchResults, RESERVED_MESSAGE_KEYS,
};
use cubechat_wire::time::iso8601;
use reqwest::Method;
use serde_json::{json, Map, Value};

use std::sync::{Arc, Weak};

use crate::api::Api;
use crate::error::{Error, Result};

pub use cubechat_wire::chat::{Attachment, ReactionsSummary};

/// Most ids in one bulk call (one URL path segment).
pub const MAX_IDS: usize = 100;
pub use crate::xmpp::MAX_BODY;
/// Search limits from the ConnectyCube docs.
pub const SEARCH_MIN_TEXT: usize = 5;
/// At most this many dialog ids in one search.
pub const SEARCH_MAX_DIALOGS: usize = 10;
/// At most this many results of each kind in one search.
pub const SEARCH_MAX_LIMIT: u32 = 100;
/// The longest date range of one search (92 days).
pub const SEARCH_MAX_RANGE_SECS: i64 = 92 * 86_400;

/// The four dialog types, with the wire numbers of the docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogType {
    /// Everyone in the app sees it; only admins post.
    Broadcast,
    /// A closed group with an occupant list.
    Group,
    /// A one-to-one dialog.
    Private,
    /// An open group users subscribe to.
    Public,
}

impl DialogType {
    /// The wire number.
    pub fn code(self) -> u8 {
        match self {
            DialogType::Broadcast => dialog_type::BROADCAST,
            DialogType::Group => dialog_type::GROUP,
            DialogType::Private => dialog_type::PRIVATE,
            DialogType::Public => dialog_type::PUBLIC,
        }
    }

    /// From the wire number.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            dialog_type::BROADCAST => DialogType::Broadcast,
            dialog_type::GROUP => DialogType::Group,
            dialog_type::PRIVATE => DialogType::Private,
            dialog_type::PUBLIC => DialogType::Public,
            _ => return None,
        })
    }
}

/// A dialog to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDialog {
    /// The dialog type.
    pub kind: DialogType,
    /// The name (required for groups).
    pub name: Option<String>,
    /// Other occupants (the creator is added by the server). Exactly one for private.
    pub occupants_ids: Vec<u64>,
    /// The photo: a URL or a cloud file uid.
    pub photo: Option<String>,
    /// The description.
    pub description: Option<String>,
    /// Custom key/value fields of the dialog.
    pub extensions: BTreeMap<String, String>,
}

/// Comparison operators of list filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    /// Equal to the value.
    Eq,
    /// Less than the value.
    Lt,
    /// Less than or equal to the value.
    Lte,
    /// Greater than the value.
    Gt,
    /// Greater than or equal to the value.
    Gte,
    /// Not equal to the value.
    Ne,
    /// One of the values (comma-separated).
    In,
    /// None of the values (comma-separated).
    Nin,
    /// Contains all of the values (comma-separated; list fields).
    All,
    /// Contains the value (text fields).
    Ctn,
}

impl FilterOp {
    fn suffix(self) -> &'static str {
        match self {
            FilterOp::Eq => "",
            FilterOp::Lt => "[lt]",
            FilterOp::Lte => "[lte]",
            FilterOp::Gt => "[gt]",
            FilterOp::Gte => "[gte]",
            FilterOp::Ne => "[ne]",
            FilterOp::In => "[in]",
            FilterOp::Nin => "[nin]",
            FilterOp::All => "[all]",
            FilterOp::Ctn => "[ctn]",
        }
    }
}

/// One filter `field[op]=value` (lists are comma-joined).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The field filtered on (e.g. `date_sent`, `updated_at`).
    pub field: String,
    /// The comparison.
    pub op: FilterOp,
    /// The value compared with, as text (lists comma-separated).
    pub value: String,
}

/// Paging and ordering of a list call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListParams {
    /// Filters, all of which must hold.
    pub filters: Vec<Filter>,
    /// The page size (the server's default when absent).
    pub limit: Option<u32>,
    /// How many entries to skip.
    pub skip: Option<u32>,
    /// `(field, descending)`.
    pub sort: Option<(String, bool)>,
}

const DIALOG_FIELDS: &[&str] = &[
    "_id",
    "type",
    "name",
    "last_message_date_sent",
    "created_at",
    "updated_at",
];
const MESSAGE_FIELDS: &[&str] = &[
    "_id",
    "message",
    "date_sent",
    "sender_id",
    "recipient_id",
    "attachments.type",
    "updated_at",
];

impl ListParams {
    fn query(&self, fields: &[&str], sorts: &[&str]) -> Result<Vec<(String, String)>> {
        let mut q = Vec::new();
        for f in &self.filters {
            let known = fields.contains(&f.field.as_str()) || f.field.starts_with("extensions[");
            if !known {
                return Err(Error::InvalidInput(format!(
                    "cannot filter on '{}'",
                    f.field
                )));
            }
            q.push((format!("{}{}", f.field, f.op.suffix()), f.value.clone()));
        }
        if let Some(limit) = self.limit {
            if limit == 0 || limit > 100 {
                return Err(Error::InvalidInput("limit must be within 1..=100".into()));
            }
            q.push(("limit".into(), limit.to_string()));
        }
        if let Some(skip) = self.skip {
            q.push(("skip".into(), skip.to_string()));
        }
        if let Some((field, desc)) = &self.sort {
            if !sorts.contains(&field.as_str()) {
                return Err(Error::InvalidInput(format!("cannot sort by '{field}'")));
            }
            q.push((
                if *desc { "sort_desc" } else { "sort_asc" }.into(),
                field.clone(),
            ));
        }
        Ok(q)
    }
}

/// Changes to a dialog; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DialogUpdate {
    /// A new name.
    pub name: Option<String>,
    /// A new photo.
    pub photo: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// New custom fields (replacing the old ones).
    pub extensions: Option<BTreeMap<String, String>>,
    /// Users to add to the occupants.
    pub add_occupants: Vec<u64>,
    /// Users to remove from the occupants.
    pub remove_occupants: Vec<u64>,
    /// Message ids to pin.
    pub pin_messages: Vec<String>,
    /// Message ids to unpin.
    pub unpin_messages: Vec<String>,
}

/// A message to create over REST.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewMessage {
    /// The dialog to send to.
    pub dialog_id: String,
    /// The text.
    pub body: String,
    /// The attachments.
    pub attachments: Vec<Attachment>,
    /// Custom parameters: travel with the message and come back from history. Names of
    /// message fields ([`cubechat_wire::chat::RESERVED_MESSAGE_KEYS`]) are refused.
    pub custom: BTreeMap<String, String>,
    /// Also deliver it over chat (otherwise only stored).
    pub send_to_chat: bool,
    /// Whether receivers send delivered/read markers for it.
    pub markable: bool,
    /// Unix seconds; the server stamps it when absent.
    pub date_sent: Option<i64>,
}

/// Global search query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchQuery {
    /// The text to search for.
    pub text: String,
    /// Unix seconds; both or neither.
    pub start_date: Option<i64>,
    /// Only messages sent before this time (Unix seconds).
    pub end_date: Option<i64>,
    /// Only in these dialogs (at most 10).
    pub dialog_ids: Vec<String>,
    /// At most this many results of each kind (at most 100).
    pub limit: Option<u32>,
}

/// Who reacted with what to one message.
pub type ReactionsByType = BTreeMap<String, Vec<u64>>;

/// Unread counts: the total and per requested dialog.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnreadCounts {
    /// Unread messages in all dialogs.
    pub total: u64,
    /// Unread messages per dialog id.
    pub dialogs: BTreeMap<String, u64>,
}

fn check_id(what: &str, id: &str) -> Result<()> {
    if is_object_id(id) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{what} '{id}' is not a 24-hex id"
        )))
    }
}

fn check_ids(what: &str, ids: &[String]) -> Result<String> {
    if ids.is_empty() {
        return Err(Error::InvalidInput(format!("no {what} ids given")));
    }
    if ids.len() > MAX_IDS {
        return Err(Error::InvalidInput(format!(
            "at most {MAX_IDS} {what} ids per call"
        )));
    }
    for id in ids {
        check_id(what, id)?;
    }
    Ok(ids.join(","))
}

fn check_body(body: &str, attachments: &[Attachment]) -> Result<()> {
    crate::xmpp::check_text("message body", body)?;
    if body.trim().is_empty() && attachments.is_empty() {
        return Err(Error::InvalidInput(
            "a message needs a body or an attachment".into(),
        ));
    }
    if body.len() > MAX_BODY {
        return Err(Error::InvalidInput(format!(
            "message body is longer than {MAX_BODY} bytes"
        )));
    }
    Ok(())
}

/// A dialog's name, photo, description and extensions reach other members inside chat
/// notifications (XML): only XML characters, and extensions within the custom limits.
fn check_dialog_text(
    fields: [&Option<String>; 3],
    extensions: Option<&BTreeMap<String, String>>,
) -> Result<()> {
    for (what, v) in ["dialog name", "dialog photo", "dialog description"]
        .into_iter()
        .zip(fields)
    {
        if let Some(v) = v {
            crate::xmpp::check_text(what, v)?;
        }
    }
    match extensions {
        Some(ext) => {
            crate::xmpp::check_params_size(ext)?;
            crate::xmpp::check_params_text(ext)
        }
        None => Ok(()),
    }
}

fn force_query(force: bool) -> Vec<(String, String)> {
    if force {
        vec![("force".into(), "1".into())]
    } else {
        Vec::new()
    }
}

/// What the dialog endpoints tell the local store: dialogs a call returned (created, updated,
/// subscribed) and dialogs the caller deleted or left. The client implements it: its store
/// applies them and its live dialog list shows them.
pub(crate) trait DialogObserver: Send + Sync {
    /// Dialogs as the server just returned them.
    fn dialogs_changed(&self, dialogs: &[Dialog]);
    /// Dialogs gone for the caller.
    fn dialogs_removed(&self, ids: &[String]);
}

/// Dialogs over REST (`client.dialogs()`): create, list, update, delete, subscribe to public
/// dialogs, admins and notification settings. A feature object over the REST session
/// ([`Api`]); cheap to clone. What a call changes reaches the local store.
#[derive(Clone)]
pub struct Dialogs {
    api: Arc<Api>,
    observer: Option<Weak<dyn DialogObserver>>,
}

impl std::fmt::Debug for Dialogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialogs").finish_non_exhaustive()
    }
}

/// Messages over REST (`client.messages()`): history, create, edit, mark, delete, unread
/// counts, reactions, search and system messages. A feature object over the REST session
/// ([`Api`]); cheap to clone. Chat messages to send go through the send queue instead.
#[derive(Clone, Debug)]
pub struct Messages {
    api: Arc<Api>,
}

impl Messages {
    /// The message endpoints over `api`.
    pub fn new(api: Arc<Api>) -> Self {
        Self { api }
    }
}

impl Dialogs {
    /// The dialog endpoints over `api`, without a local store to tell.
    pub fn new(api: Arc<Api>) -> Self {
        Self {
            api,
            observer: None,
        }
    }

    /// The dialog endpoints over `api`, telling `observer` what they change.
    pub(crate) fn observed(api: Arc<Api>, observer: Weak<dyn DialogObserver>) -> Self {
        Self {
            api,
            observer: Some(observer),
        }
    }

    fn local_dialogs_changed(&self, dialogs: &[Dialog]) {
        if let Some(o) = self.observer.as_ref().and_then(Weak::upgrade) {
            o.dialogs_changed(dialogs);
        }
    }

    fn local_dialogs_removed(&self, ids: &[String]) {
        if let Some(o) = self.observer.as_ref().and_then(Weak::upgrade) {
            o.dialogs_removed(ids);
        }
    }

    /// Creates a dialog. Private dialogs need exactly one opponent; group, public and
    /// broadcast dialogs need a name.
    pub async fn create_dialog(&self, d: NewDialog) -> Result<Dialog> {
        let mut body = Map::new();
        body.insert("type".into(), json!(d.kind.code()));
        match d.kind {
            DialogType::Private if d.occupants_ids.len() != 1 => {
                return Err(Error::InvalidInput(
                    "a private dialog needs exactly one opponent".into(),
                ))
            }
            DialogType::Private => {}
            _ if d.name.as_deref().is_none_or(|n| n.trim().is_empty()) => {
                return Err(Error::InvalidInput(
                    "group, public and broadcast dialogs need a name".into(),
                ))
            }
            _ => {}
        }
        if d.occupants_ids.contains(&0) {
            return Err(Error::InvalidInput("user ids must be positive".into()));
        }
        if !d.occupants_ids.is_empty() {
            body.insert("occupants_ids".into(), json!(d.occupants_ids));
        }
        check_dialog_text([&d.name, &d.photo, &d.description], Some(&d.extensions))?;
        for (k, v) in [
            ("name", d.name),
            ("photo", d.photo),
            ("description", d.description),
        ] {
            if let Some(v) = v {
                body.insert(k.into(), json!(v));
            }
        }
        if !d.extensions.is_empty() {
            body.insert("extensions".into(), json!(d.extensions));
        }
        self.api
            .call(Method::POST, "chat/Dialog", &[], Some(&Value::Object(body)))
            .await
            .inspect(|d| self.local_dialogs_changed(std::slice::from_ref(d)))
    }

    /// Lists the caller's dialogs. Filter fields: `_id, type, name, last_message_date_sent,
    /// created_at, updated_at, extensions[x]`; sort by `last_message_date_sent, created_at,
    /// updated_at`. `updated_at` values are Unix seconds.
    pub async fn list_dialogs(&self, p: &ListParams) -> Result<DialogsPage> {
        let q = p.query(
            DIALOG_FIELDS,
            &["last_message_date_sent", "created_at", "updated_at"],
        )?;
        self.api.call(Method::GET, "chat/Dialog", &q, None).await
    }

    /// Updates a dialog's name, photo, description, extensions, occupants and pins.
    pub async fn update_dialog(&self, id: &str, u: DialogUpdate) -> Result<Dialog> {
        check_id("dialog", id)?;
        if u.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(Error::InvalidInput("a dialog name cannot be blank".into()));
        }
        if u.add_occupants.contains(&0) || u.remove_occupants.contains(&0) {
            return Err(Error::InvalidInput("user ids must be positive".into()));
        }
        check_dialog_text([&u.name, &u.photo, &u.description], u.extensions.as_ref())?;
        let mut body = Map::new();
        for (k, v) in [
            ("name", u.name),
            ("photo", u.photo),
            ("description", u.description),
        ] {
            if let Some(v) = v {
                body.insert(k.into(), json!(v));
            }
        }
        if let Some(ext) = u.extensions {
            body.insert("extensions".into(), json!(ext));
        }
        let mut push = Map::new();
        let mut pull = Map::new();
        if !u.add_occupants.is_empty() {
            push.insert("occupants_ids".into(), json!(u.add_occupants));
        }
        if !u.remove_occupants.is_empty() {
            pull.insert("occupants_ids".into(), json!(u.remove_occupants));
        }
        if !u.pin_messages.is_empty() {
            check_ids("message", &u.pin_messages)?;
            push.insert("pinned_messages_ids".into(), json!(u.pin_messages));
        }
        if !u.unpin_messages.is_empty() {
            check_ids("message", &u.unpin_messages)?;
            pull.insert("pinned_messages_ids".into(), json!(u.unpin_messages));
        }
        if !push.is_empty() {
            body.insert("push_all".into(), Value::Object(push));
        }
        if !pull.is_empty() {
            body.insert("pull_all".into(), Value::Object(pull));
        }
        if body.is_empty() {
            return Err(Error::InvalidInput("nothing to update".into()));
        }
        self.api
            .call(
                Method::PUT,
                &format!("chat/Dialog/{id}"),
                &[],
                Some(&Value::Object(body)),
            )
            .await
            .inspect(|d| self.local_dialogs_changed(std::slice::from_ref(d)))
    }

    /// Deletes dialogs for the caller, or for everyone with `force` (owner only), and says
    /// per id what happened.
    pub async fn delete_dialogs(&self, ids: &[String], force: bool) -> Result<DeleteResult> {
        let joined = check_ids("dialog", ids)?;
        if ids.len() == 1 {
            // A single id answers with an empty body; map it to the same result shape.
            let path = format!("chat/Dialog/{joined}");
            let outcome = match self
                .api
                .call_empty(Method::DELETE, &path, &force_query(force), None)
                .await
            {
                Ok(()) => DeleteOutcome::Deleted,
                Err(Error::NotFound(_)) => DeleteOutcome::NotFound,
                Err(Error::Forbidden(_)) => DeleteOutcome::WrongPermissions,
                Err(e) => return Err(e),
            };
            let r = DeleteResult::single(joined, outcome);
            self.local_dialogs_removed(&r.deleted.ids);
            return Ok(r);
        }
        self.api
            .call(
                Method::DELETE,
                &format!("chat/Dialog/{joined}"),
                &force_query(force),
                None,
            )
            .await
            .inspect(|r: &DeleteResult| self.local_dialogs_removed(&r.deleted.ids))
    }

    /// Clears a dialog's history for the caller, or for everyone with `force`.
    pub async fn clear_history(&self, dialog_id: &str, force: bool) -> Result<()> {
        check_id("dialog", dialog_id)?;
        self.api
            .call_empty(
                Method::DELETE,
                &format!("chat/Dialog/clearHistory/{dialog_id}"),
                &force_query(force),
                None,
            )
            .await
    }

    /// Subscribes to a public dialog.
    pub async fn subscribe_dialog(&self, dialog_id: &str) -> Result<Dialog> {
        check_id("dialog", dialog_id)?;
        self.api
            .call(
                Method::POST,
                &format!("chat/Dialog/{dialog_id}/subscribe"),
                &[],
                None,
            )
            .await
            .inspect(|d| self.local_dialogs_changed(std::slice::from_ref(d)))
    }

    /// Unsubscribes from a public dialog.
    pub async fn unsubscribe_dialog(&self, dialog_id: &str) -> Result<()> {
        check_id("dialog", dialog_id)?;
        self.api
            .call_empty(
                Method::DELETE,
                &format!("chat/Dialog/{dialog_id}/subscribe"),
                &[],
                None,
            )
            .await
            .inspect(|_| self.local_dialogs_removed(&[dialog_id.to_owned()]))
    }

    /// Subscribers of a public dialog, paged.
    pub async fn public_occupants(
        &self,
        dialog_id: &str,
        limit: u32,
        skip: u32,
    ) -> Result<Vec<crate::User>> {
        check_id("dialog", dialog_id)?;
        if limit == 0 || limit > 100 {
            return Err(Error::InvalidInput("limit must be within 1..=100".into()));
        }
        #[derive(serde::Deserialize)]
        struct Items {
            items: Vec<crate::User>,
        }
        let q = vec![
            ("limit".into(), limit.to_string()),
            ("skip".into(), skip.to_string()),
        ];
        let r: Items = self
            .api
            .call(
                Method::GET,
                &format!("chat/Dialog/{dialog_id}/occupants"),
                &q,
                None,
            )
            .await?;
        Ok(r.items)
    }

    /// Adds (`add = true`) or removes admins; creator only, at most 5 admins.
    pub async fn set_admins(&self, dialog_id: &str, user_ids: &[u64], add: bool) -> Result<Dialog> {
        check_id("dialog", dialog_id)?;
        if user_ids.is_empty() || user_ids.contains(&0) {
            return Err(Error::InvalidInput(
                "give at least one positive user id".into(),
            ));
        }
        if add && user_ids.len() > cubechat_wire::chat::MAX_ADMINS {
            return Err(Error::InvalidInput("a dialog has at most 5 admins".into()));
        }
        let key = if add { "push_all" } else { "pull_all" };
        let body = json!({ key: { "admins_ids": user_ids } });
        self.api
            .call(
                Method::PUT,
                &format!("chat/Dialog/{dialog_id}/admins"),
                &[],
                Some(&body),
            )
            .await
            .inspect(|d| self.local_dialogs_changed(std::slice::from_ref(d)))
    }

    /// Whether push notifications are on for this dialog.
    pub async fn notifications_enabled(&self, dialog_id: &str) -> Result<bool> {
        check_id("dialog", dialog_id)?;
        let r: NotificationsEnvelope = self
            .api
            .call(
                Method::GET,
                &format!("chat/Dialog/{dialog_id}/notifications"),
                &[],
                None,
            )
            .await?;
        Ok(r.notifications.enabled != 0)
    }

    /// Turns push notifications for this dialog on or off.
    pub async fn set_notifications(&self, dialog_id: &str, enabled: bool) -> Result<bool> {
        check_id("dialog", dialog_id)?;
        let body = json!({"enabled": u8::from(enabled)});
        let r: NotificationsEnvelope = self
            .api
            .call(
                Method::PUT,
                &format!("chat/Dialog/{dialog_id}/notifications"),
                &[],
                Some(&body),
            )
            .await?;
        Ok(r.notifications.enabled != 0)
    }
}

impl Messages {
    /// History of a dialog. Filter on `date_sent` (Unix seconds) with `Lt`/`Gt` to page;
    /// listing marks the returned messages read unless `mark_as_read` is false.
    pub async fn history(
        &self,
        dialog_id: &str,
        p: &ListParams,
        mark_as_read: bool,
    ) -> Result<MessagesPage> {
        check_id("dialog", dialog_id)?;
        let mut q = vec![("chat_dialog_id".into(), dialog_id.to_owned())];
        q.extend(p.query(MESSAGE_FIELDS, &["date_sent", "created_at", "updated_at"])?);
        if !mark_as_read {
            q.push(("mark_as_read".into(), "0".into()));
        }
        self.api.call(Method::GET, "chat/Message", &q, None).await
    }

    /// Creates a message over REST: stored, and delivered over chat when `send_to_chat`.
    pub async fn create_message(&self, m: NewMessage) -> Result<Message> {
        check_id("dialog", &m.dialog_id)?;
        check_body(&m.body, &m.attachments)?;
        crate::xmpp::check_attachments(&m.attachments)?;
        crate::xmpp::check_params_size(&m.custom)?;
        crate::xmpp::check_params_text(&m.custom)?;
        let mut body = Map::new();
        for (k, v) in m.custom {
            if RESERVED_MESSAGE_KEYS.contains(&k.as_str()) {
                return Err(Error::InvalidInput(format!(
                    "custom parameter '{k}' is reserved"
                )));
            }
            body.insert(k, json!(v));
        }
        body.insert("chat_dialog_id".into(), json!(m.dialog_id));
        body.insert("message".into(), json!(m.body));
        if !m.attachments.is_empty() {
            body.insert("attachments".into(), json!(m.attachments));
        }
        if m.send_to_chat {
            body.insert("send_to_chat".into(), json!(1));
        }
        if m.markable {
            body.insert("markable".into(), json!(1));
        }
        if let Some(d) = m.date_sent {
            body.insert("date_sent".into(), json!(d));
        }
        self.api
            .call(
                Method::POST,
                "chat/Message",
                &[],
                Some(&Value::Object(body)),
            )
            .await
    }

    /// Replaces the body of the caller's own message.
    pub async fn edit_message(&self, dialog_id: &str, message_id: &str, body: &str) -> Result<()> {
        check_id("dialog", dialog_id)?;
        check_id("message", message_id)?;
        check_body(body, &[])?;
        let b = json!({"chat_dialog_id": dialog_id, "message": body});
        self.api
            .call_empty(
                Method::PUT,
                &format!("chat/Message/{message_id}"),
                &[],
                Some(&b),
            )
            .await
    }

    /// Marks messages read (and/or delivered) by the caller.
    pub async fn mark_messages(
        &self,
        dialog_id: &str,
        ids: &[String],
        read: bool,
        delivered: bool,
    ) -> Result<()> {
        check_id("dialog", dialog_id)?;
        let joined = check_ids("message", ids)?;
        let mut b = json!({"chat_dialog_id": dialog_id});
        if read {
            b["read"] = json!(1);
        }
        if delivered {
            b["delivered"] = json!(1);
        }
        self.api
            .call_empty(
                Method::PUT,
                &format!("chat/Message/{joined}"),
                &[],
                Some(&b),
            )
            .await
    }

    /// Marks every message of a dialog read by the caller.
    pub async fn mark_all_read(&self, dialog_id: &str) -> Result<()> {
        check_id("dialog", dialog_id)?;
        let b = json!({"chat_dialog_id": dialog_id, "read": 1});
        self.api
            .call_empty(Method::PUT, "chat/Message", &[], Some(&b))
            .await
    }

    /// Deletes messages for the caller, or for everyone with `force` (sender or admins).
    pub async fn delete_messages(&self, ids: &[String], force: bool) -> Result<DeleteResult> {
        let joined = check_ids("message", ids)?;
        self.api
            .call(
                Method::DELETE,
                &format!("chat/Message/{joined}"),
                &force_query(force),
                None,
            )
            .await
    }

    /// Unread counts: the total (group and private dialogs) and, when given, per dialog.
    pub async fn unread_counts(&self, dialog_ids: &[String]) -> Result<UnreadCounts> {
        let mut q = Vec::new();
        if !dialog_ids.is_empty() {
            q.push(("chat_dialog_ids".into(), check_ids("dialog", dialog_ids)?));
        }
        let raw: BTreeMap<String, Value> = self
            .api
            .call(Method::GET, "chat/Message/unread", &q, None)
            .await?;
        let mut out = UnreadCounts::default();
        for (k, v) in raw {
            let n = v.as_u64().unwrap_or(0);
            if k == "total" {
                out.total = n;
            } else {
                out.dialogs.insert(k, n);
            }
        }
        Ok(out)
    }

    /// Adds and/or removes the caller's reaction (one reaction type per user).
    pub async fn react(
        &self,
        message_id: &str,
        add: Option<&str>,
        remove: Option<&str>,
    ) -> Result<()> {
        check_id("message", message_id)?;
        let mut b = Map::new();
        for (k, v) in [("add", add), ("remove", remove)] {
            if let Some(r) = v {
                if r.trim().is_empty() || r.len() > 64 {
                    return Err(Error::InvalidInput("a reaction is 1 to 64 bytes".into()));
                }
                crate::xmpp::check_text("a reaction", r)?;
                b.insert(k.into(), json!(r));
            }
        }
        if b.is_empty() {
            return Err(Error::InvalidInput(
                "give a reaction to add or remove".into(),
            ));
        }
        self.api
            .call_empty(
                Method::PUT,
                &format!("chat/Message/{message_id}/reactions"),
                &[],
                Some(&Value::Object(b)),
            )
            .await
    }

    /// Who reacted with what to a message.
    pub async fn reactions(&self, message_id: &str) -> Result<ReactionsByType> {
        check_id("message", message_id)?;
        self.api
            .call(
                Method::GET,
                &format!("chat/Message/{message_id}/reactions"),
                &[],
                None,
            )
            .await
    }

    /// Global search over the caller's dialogs, messages and users.
    pub async fn search(&self, s: &SearchQuery) -> Result<SearchResults> {
        if s.text.chars().count() < SEARCH_MIN_TEXT {
            return Err(Error::InvalidInput(format!(
                "search text needs at least {SEARCH_MIN_TEXT} characters"
            )));
        }
        let mut q = vec![("search_text".to_owned(), s.text.clone())];
        match (s.start_date, s.end_date) {
            (Some(a), Some(b)) => {
                if b < a || b - a > SEARCH_MAX_RANGE_SECS {
                    return Err(Error::InvalidInput(
                        "end_date must follow start_date within 3 months".into(),
                    ));
                }
                q.push(("start_date".into(), iso8601(a)));
                q.push(("end_date".into(), iso8601(b)));
            }
            (None, None) => {}
            _ => {
                return Err(Error::InvalidInput(
                    "give both start_date and end_date, or neither".into(),
                ))
            }
        }
        if s.dialog_ids.len() > SEARCH_MAX_DIALOGS {
            return Err(Error::InvalidInput(format!(
                "at most {SEARCH_MAX_DIALOGS} dialog ids"
            )));
        }
        if !s.dialog_ids.is_empty() {
            q.push((
                "chat_dialog_ids".into(),
                check_ids("dialog", &s.dialog_ids)?,
            ));
        }
        if let Some(l) = s.limit {
            if l == 0 || l > SEARCH_MAX_LIMIT {
                return Err(Error::InvalidInput(format!(
                    "limit must be within 1..={SEARCH_MAX_LIMIT}"
                )));
            }
            q.push(("limit".into(), l.to_string()));
        }
        self.api.call(Method::GET, "chat/search", &q, None).await
    }

    /// Sends a system message to a user through REST (delivered as a chat headline).
    pub async fn send_system_message(
        &self,
        recipient_id: u64,
        params: BTreeMap<String, String>,
    ) -> Result<String> {
        if recipient_id == 0 {
            return Err(Error::InvalidInput("recipient id must be positive".into()));
        }
        crate::xmpp::check_params_size(&params)?;
        crate::xmpp::check_params_text(&params)?;
        let mut b = Map::new();
        for (k, v) in params {
            b.insert(k, json!(v));
        }
        b.insert("recipientId".into(), json!(recipient_id));
        let r: Value = self
            .api
            .call(
                Method::POST,
                "chat/Message/system",
                &[],
                Some(&Value::Object(b)),
            )
            .await?;
        r.get("messageId")
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| Error::Protocol("system message answer has no messageId".into()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Client;
    use crate::Config;

    fn offline_client() -> Arc<Client> {
        // Port 1 is never served: any request that slipped through validation would fail
        // with a Network error, not InvalidInput.
        Client::new(Config::new(7, "k", "http://127.0.0.1:1")).unwrap()
    }

    #[tokio::test]
    async fn bad_input_never_reaches_the_network() {
        let c = offline_client();
        let id = "5f0c0c0c0c0c0c0c0c0c0c0c".to_owned();
        let private = NewDialog {
            kind: DialogType::Private,
            name: None,
            occupants_ids: vec![2, 3],
            photo: None,
            description: None,
            extensions: BTreeMap::new(),
        };
        let mut results = vec![
            c.dialogs().create_dialog(private.clone()).await.map(drop),
            c.dialogs()
                .create_dialog(NewDialog {
                    kind: DialogType::Group,
                    occupants_ids: vec![2],
                    ..private.clone()
                })
                .await
                .map(drop),
            c.dialogs().delete_dialogs(&[], false).await.map(drop),
            c.dialogs()
                .delete_dialogs(&["nope".into()], false)
                .await
                .map(drop),
            c.dialogs()
                .delete_dialogs(&vec![id.clone(); MAX_IDS + 1], false)
                .await
                .map(drop),
            c.messages()
                .create_message(NewMessage {
                    dialog_id: id.clone(),
                    ..Default::default()
                })
                .await
                .map(drop),
            c.messages()
                .create_message(NewMessage {
                    dialog_id: id.clone(),
                    body: "x".repeat(MAX_BODY + 1),
                    ..Default::default()
                })
                .await
                .map(drop),
            c.messages()
                .search(&SearchQuery {
                    text: "abcd".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            c.messages()
                .search(&SearchQuery {
                    text: "abcde".into(),
                    start_date: Some(0),
                    ..Default::default()
                })
                .await
                .map(drop),
            c.messages()
                .search(&SearchQuery {
                    text: "abcde".into(),
                    start_date: Some(0),
                    end_date: Some(SEARCH_MAX_RANGE_SECS + 1),
                    ..Default::default()
                })
                .await
                .map(drop),
            c.messages()
                .search(&SearchQuery {
                    text: "abcde".into(),
                    dialog_ids: vec![id.clone(); 11],
                    ..Default::default()
                })
                .await
                .map(drop),
            c.messages()
                .search(&SearchQuery {
                    text: "abcde".into(),
                    limit: Some(101),
                    ..Default::default()
                })
                .await
                .map(drop),
            c.dialogs()
                .set_admins(&id, &[1, 2, 3, 4, 5, 6], true)
                .await
                .map(drop),
            c.messages().react(&id, None, None).await.map(drop),
            c.messages()
                .history(
                    &id,
                    &ListParams {
                        filters: vec![Filter {
                            field: "bogus".into(),
                            op: FilterOp::Gt,
                            value: "1".into(),
                        }],
                        ..Default::default()
                    },
                    true,
                )
                .await
                .map(drop),
            c.dialogs()
                .update_dialog(&id, DialogUpdate::default())
                .await
                .map(drop),
            c.dialogs()
                .update_dialog(
                    &id,
                    DialogUpdate {
                        name: Some(" ".into()),
                        ..Default::default()
                    },
                )
                .await
                .map(drop),
            c.dialogs()
                .update_dialog(
                    &id,
                    DialogUpdate {
                        add_occupants: vec![0],
                        ..Default::default()
                    },
                )
                .await
                .map(drop),
            c.messages()
                .create_message(NewMessage {
                    dialog_id: id.clone(),
                    body: "x".into(),
                    custom: BTreeMap::from([("date_sent".into(), "1".into())]),
                    ..Default::default()
                })
                .await
                .map(drop),
            c.messages()
                .send_system_message(0, BTreeMap::new())
                .await
                .map(drop),
        ];
        for (i, r) in results.drain(..).enumerate() {
            assert!(matches!(r, Err(Error::InvalidInput(_))), "case {i}: {r:?}");
        }
    }

    #[test]
    fn dialog_type_codes_follow_the_docs() {
        assert_eq!(DialogType::Broadcast.code(), 1);
        assert_eq!(DialogType::Public.code(), 4);
        for t in [
            DialogType::Broadcast,
            DialogType::Group,
            DialogType::Private,
            DialogType::Public,
        ] {
            assert_eq!(DialogType::from_code(t.code()), Some(t));
        }
    }
}
