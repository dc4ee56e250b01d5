//! Chat REST for apps: exported records for dialogs, messages, attachments, reactions and
//! search, their conversions, and the `ChatClient` methods that call the engine.

use std::collections::HashMap;

use cubechat_core::chat as core;
use cubechat_core::{DialogModel, MessageModel};
use cubechat_wire::chat as wire;

use crate::client::ChatClient;
use crate::convert::User;
use crate::error::ChatError;
use crate::runtime::run;

/// The four dialog types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DialogType {
    /// Everyone in the app sees it; only admins post (created from the admin panel).
    Broadcast,
    /// Closed group with an occupant list.
    Group,
    /// One-to-one.
    Private,
    /// Open group that users subscribe to.
    Public,
}

impl From<DialogType> for core::DialogType {
    fn from(t: DialogType) -> Self {
        match t {
            DialogType::Broadcast => Self::Broadcast,
            DialogType::Group => Self::Group,
            DialogType::Private => Self::Private,
            DialogType::Public => Self::Public,
        }
    }
}

impl From<core::DialogType> for DialogType {
    fn from(t: core::DialogType) -> Self {
        match t {
            core::DialogType::Broadcast => Self::Broadcast,
            core::DialogType::Group => Self::Group,
            core::DialogType::Private => Self::Private,
            core::DialogType::Public => Self::Public,
        }
    }
}

/// A dialog as the server reports it to the caller.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Dialog {
    /// 24-hex id.
    pub id: String,
    /// The creator (super-admin).
    pub owner_id: u64,
    /// `None` for a type this SDK does not know (e.g. meetings).
    pub kind: Option<DialogType>,
    /// The dialog's name (groups; private dialogs have none).
    pub name: Option<String>,
    /// The description.
    pub description: Option<String>,
    /// The photo: a URL or a cloud file uid.
    pub photo: Option<String>,
    /// The ids of the occupants (members).
    pub occupants_ids: Vec<u64>,
    /// Subscribers of a public dialog.
    pub occupants_count: Option<u64>,
    /// The ids of the admins (besides the owner).
    pub admins_ids: Vec<u64>,
    /// The ids of the pinned messages.
    pub pinned_message_ids: Vec<String>,
    /// The text of the last message.
    pub last_message: Option<String>,
    /// The id of the last message.
    pub last_message_id: Option<String>,
    /// The sender id of the last message.
    pub last_message_user_id: Option<u64>,
    /// Unix seconds.
    pub last_message_date_sent: Option<i64>,
    /// `sent`, `delivered` or `read` when the caller sent the last message.
    pub last_message_status: Option<String>,
    /// How many messages the current user has not read.
    pub unread_count: u64,
    /// The group chat address; `None` for private dialogs.
    pub room_jid: Option<String>,
    /// When it was created (ISO 8601, as the server sent it).
    pub created_at: Option<String>,
    /// When it last changed (ISO 8601, as the server sent it).
    pub updated_at: Option<String>,
    /// Custom key/value fields of the dialog.
    pub extensions: HashMap<String, String>,
}

impl From<wire::Dialog> for Dialog {
    fn from(mut d: wire::Dialog) -> Self {
        let extensions = d.take_extensions().into_iter().collect();
        let unread_count = d.unread_count();
        Self {
            id: d.id,
            owner_id: d.user_id,
            kind: core::DialogType::from_code(d.kind).map(Into::into),
            name: d.name,
            description: d.description,
            photo: d.photo,
            occupants_ids: d.occupants_ids,
            occupants_count: d.occupants_count,
            admins_ids: d.admins_ids,
            pinned_message_ids: d.pinned_messages_ids,
            last_message: d.last_message,
            last_message_id: d.last_message_id,
            last_message_user_id: d.last_message_user_id,
            last_message_date_sent: d.last_message_date_sent,
            last_message_status: d.last_message_status,
            unread_count,
            room_jid: d.xmpp_room_jid,
            created_at: d.created_at,
            updated_at: d.updated_at,
            extensions,
        }
    }
}

/// A dialog to create.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewDialog {
    /// The dialog type.
    pub kind: DialogType,
    /// Required for group, public and broadcast dialogs.
    #[uniffi(default)]
    pub name: Option<String>,
    /// Other occupants; exactly one for a private dialog.
    #[uniffi(default)]
    pub occupants_ids: Vec<u64>,
    /// The photo: a URL or a cloud file uid.
    #[uniffi(default)]
    pub photo: Option<String>,
    /// The description.
    #[uniffi(default)]
    pub description: Option<String>,
    /// Custom key/value fields of the dialog.
    #[uniffi(default)]
    pub extensions: HashMap<String, String>,
}

impl From<NewDialog> for core::NewDialog {
    fn from(d: NewDialog) -> Self {
        Self {
            kind: d.kind.into(),
            name: d.name,
            occupants_ids: d.occupants_ids,
            photo: d.photo,
            description: d.description,
            extensions: d.extensions.into_iter().collect(),
        }
    }
}

/// Changes to a dialog; unset fields stay as they are.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct DialogUpdate {
    /// A new name.
    #[uniffi(default)]
    pub name: Option<String>,
    /// A new photo.
    #[uniffi(default)]
    pub photo: Option<String>,
    /// A new description.
    #[uniffi(default)]
    pub description: Option<String>,
    /// New custom fields (replacing the old ones).
    #[uniffi(default)]
    pub extensions: Option<HashMap<String, String>>,
    /// Users to add to the occupants.
    #[uniffi(default)]
    pub add_occupants: Vec<u64>,
    /// Users to remove from the occupants.
    #[uniffi(default)]
    pub remove_occupants: Vec<u64>,
    /// Message ids to pin.
    #[uniffi(default)]
    pub pin_messages: Vec<String>,
    /// Message ids to unpin.
    #[uniffi(default)]
    pub unpin_messages: Vec<String>,
}

impl From<DialogUpdate> for core::DialogUpdate {
    fn from(u: DialogUpdate) -> Self {
        Self {
            name: u.name,
            photo: u.photo,
            description: u.description,
            extensions: u.extensions.map(|e| e.into_iter().collect()),
            add_occupants: u.add_occupants,
            remove_occupants: u.remove_occupants,
            pin_messages: u.pin_messages,
            unpin_messages: u.unpin_messages,
        }
    }
}

/// Filter operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
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

impl From<FilterOp> for core::FilterOp {
    fn from(o: FilterOp) -> Self {
        match o {
            FilterOp::Eq => Self::Eq,
            FilterOp::Lt => Self::Lt,
            FilterOp::Lte => Self::Lte,
            FilterOp::Gt => Self::Gt,
            FilterOp::Gte => Self::Gte,
            FilterOp::Ne => Self::Ne,
            FilterOp::In => Self::In,
            FilterOp::Nin => Self::Nin,
            FilterOp::All => Self::All,
            FilterOp::Ctn => Self::Ctn,
        }
    }
}

/// One list filter, e.g. `updated_at` `Gt` `"1700000000"` (lists comma-joined).
#[derive(Debug, Clone, uniffi::Record)]
pub struct Filter {
    /// The field filtered on (e.g. `date_sent`, `updated_at`).
    pub field: String,
    /// The comparison.
    pub op: FilterOp,
    /// The value compared with, as text (lists comma-separated).
    pub value: String,
}

/// Filters, paging and order of a list call.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct ListParams {
    /// Filters, all of which must hold.
    #[uniffi(default)]
    pub filters: Vec<Filter>,
    /// 1–100; server default 100.
    #[uniffi(default)]
    pub limit: Option<u32>,
    /// How many entries to skip.
    #[uniffi(default)]
    pub skip: Option<u32>,
    /// Field to sort by.
    #[uniffi(default)]
    pub sort_by: Option<String>,
    /// Newest first when `true`.
    #[uniffi(default = false)]
    pub sort_descending: bool,
}

impl From<ListParams> for core::ListParams {
    fn from(p: ListParams) -> Self {
        Self {
            filters: p
                .filters
                .into_iter()
                .map(|f| core::Filter {
                    field: f.field,
                    op: f.op.into(),
                    value: f.value,
                })
                .collect(),
            limit: p.limit,
            skip: p.skip,
            sort: p.sort_by.map(|f| (f, p.sort_descending)),
        }
    }
}

/// A page of dialogs.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DialogPage {
    /// The total.
    pub total: u64,
    /// How many entries were skipped before this page.
    pub skip: u64,
    /// The page size asked for.
    pub limit: u64,
    /// The entries of this page.
    pub items: Vec<Dialog>,
}

/// A file or place attached to a message.
#[derive(Debug, Clone, Default, PartialEq, uniffi::Record)]
pub struct Attachment {
    /// e.g. `image`, `video`, `audio`, `file`, `place`.
    pub kind: String,
    /// The attachment's id (often the cloud file's uid).
    #[uniffi(default)]
    pub id: Option<String>,
    /// Blob UID in cloud storage.
    #[uniffi(default)]
    pub uid: Option<String>,
    /// The download URL.
    #[uniffi(default)]
    pub url: Option<String>,
    /// The file name.
    #[uniffi(default)]
    pub name: Option<String>,
    /// The size in bytes.
    #[uniffi(default)]
    pub size: Option<u64>,
    /// The MIME type.
    #[uniffi(default)]
    pub content_type: Option<String>,
    /// The width in pixels (images and videos).
    #[uniffi(default)]
    pub width: Option<u64>,
    /// The height in pixels (images and videos).
    #[uniffi(default)]
    pub height: Option<u64>,
    /// The duration in seconds (audio and video).
    #[uniffi(default)]
    pub duration: Option<u64>,
    /// Free-form data the app attaches (often JSON).
    #[uniffi(default)]
    pub data: Option<String>,
}

impl From<wire::Attachment> for Attachment {
    fn from(a: wire::Attachment) -> Self {
        Self {
            kind: a.kind,
            id: a.id,
            uid: a.uid,
            url: a.url,
            name: a.name,
            size: a.size,
            content_type: a.content_type,
            width: a.width,
            height: a.height,
            duration: a.duration,
            data: a.data,
        }
    }
}

impl From<Attachment> for wire::Attachment {
    fn from(a: Attachment) -> Self {
        Self {
            kind: a.kind,
            id: a.id,
            uid: a.uid,
            url: a.url,
            name: a.name,
            size: a.size,
            content_type: a.content_type,
            width: a.width,
            height: a.height,
            duration: a.duration,
            data: a.data,
        }
    }
}

/// Reactions on a message: the caller's own and the count per reaction.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Reactions {
    /// The reactions the current user gave.
    pub own: Vec<String>,
    /// How many times each reaction was given.
    pub totals: HashMap<String, u64>,
}

impl From<wire::ReactionsSummary> for Reactions {
    fn from(r: wire::ReactionsSummary) -> Self {
        Self {
            own: r.own,
            totals: r.total.into_iter().collect(),
        }
    }
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ChatMessage {
    /// The message's id.
    pub id: String,
    /// The dialog's id.
    pub dialog_id: String,
    /// The text, when it has one.
    pub body: Option<String>,
    /// Unix seconds.
    pub date_sent: i64,
    /// The sender's user id.
    pub sender_id: u64,
    /// 0 in group dialogs.
    pub recipient_id: u64,
    /// The ids of the users who read it.
    pub read_ids: Vec<u64>,
    /// The ids of the users it was delivered to.
    pub delivered_ids: Vec<u64>,
    /// Read by the caller.
    pub read: bool,
    /// The attachments.
    pub attachments: Vec<Attachment>,
    /// The reactions summary.
    pub reactions: Option<Reactions>,
    /// Custom parameters sent with the message.
    pub custom: HashMap<String, String>,
    /// When it was created (ISO 8601, as the server sent it).
    pub created_at: Option<String>,
    /// When it last changed (ISO 8601, as the server sent it).
    pub updated_at: Option<String>,
}

impl From<wire::Message> for ChatMessage {
    fn from(mut m: wire::Message) -> Self {
        let custom = m.take_custom().into_iter().collect();
        let read = m.is_read();
        Self {
            id: m.id,
            dialog_id: m.chat_dialog_id,
            body: m.message,
            date_sent: m.date_sent,
            sender_id: m.sender_id,
            recipient_id: m.recipient_id,
            read_ids: m.read_ids,
            delivered_ids: m.delivered_ids,
            read,
            attachments: m.attachments.into_iter().map(Into::into).collect(),
            reactions: m.reactions.map(Into::into),
            custom,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// A message to store (and optionally deliver) through REST.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewMessage {
    /// The dialog to send to.
    pub dialog_id: String,
    /// The text.
    #[uniffi(default)]
    pub body: String,
    /// The attachments.
    #[uniffi(default)]
    pub attachments: Vec<Attachment>,
    /// Custom parameters sent with the message (extra top-level keys).
    #[uniffi(default)]
    pub custom: HashMap<String, String>,
    /// Also deliver over chat.
    #[uniffi(default = false)]
    pub send_to_chat: bool,
    /// Whether receivers send delivered/read markers for it.
    #[uniffi(default = false)]
    pub markable: bool,
    /// Unix seconds; server time when absent.
    #[uniffi(default)]
    pub date_sent: Option<i64>,
}

/// Result of a bulk delete, per id.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DeleteResult {
    /// The ids that were deleted.
    pub deleted: Vec<String>,
    /// The ids that did not exist.
    pub not_found: Vec<String>,
    /// The ids the user may not delete.
    pub no_permission: Vec<String>,
}

impl From<wire::DeleteResult> for DeleteResult {
    fn from(r: wire::DeleteResult) -> Self {
        Self {
            deleted: r.deleted.ids,
            not_found: r.not_found.ids,
            no_permission: r.wrong_permissions.ids,
        }
    }
}

/// Unread message counts.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct UnreadCounts {
    /// Unread messages in all dialogs.
    pub total: u64,
    /// Unread messages per dialog id.
    pub per_dialog: HashMap<String, u64>,
}

/// A global search.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct SearchQuery {
    /// At least 5 characters; case-sensitive substring.
    pub text: String,
    /// Unix seconds; give both or neither, at most 3 months apart.
    #[uniffi(default)]
    pub start_date: Option<i64>,
    /// Only messages sent before this time (Unix seconds).
    #[uniffi(default)]
    pub end_date: Option<i64>,
    /// At most 10.
    #[uniffi(default)]
    pub dialog_ids: Vec<String>,
    /// 1–100.
    #[uniffi(default)]
    pub limit: Option<u32>,
}

/// What a global search found.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SearchResults {
    /// The dialogs found.
    pub dialogs: Vec<Dialog>,
    /// The messages found.
    pub messages: Vec<ChatMessage>,
    /// The users found.
    pub users: Vec<User>,
}

#[uniffi::export]
impl ChatClient {
    /// Creates a dialog. Errors: `InvalidInput` (private with ≠ 1 opponent, missing name),
    /// `Server` 422 (unknown occupants), `Forbidden`.
    pub async fn create_dialog(&self, dialog: NewDialog) -> Result<Dialog, ChatError> {
        let c = self.core();
        run(async move { c.dialogs().create_dialog(dialog.into()).await })
            .await
            .map(Into::into)
    }

    /// Lists the caller's dialogs, e.g. only those changed since a time with the filter
    /// `updated_at` `Gt` `"<unix seconds>"`.
    pub async fn list_dialogs(&self, params: ListParams) -> Result<DialogPage, ChatError> {
        let c = self.core();
        let page = run(async move { c.dialogs().list_dialogs(&params.into()).await }).await?;
        Ok(DialogPage {
            total: page.total_entries,
            skip: page.skip,
            limit: page.limit,
            items: page.items.into_iter().map(Into::into).collect(),
        })
    }

    /// Updates a dialog. Only the owner removes other occupants (`Forbidden` otherwise).
    pub async fn update_dialog(
        &self,
        dialog_id: String,
        update: DialogUpdate,
    ) -> Result<Dialog, ChatError> {
        let c = self.core();
        run(async move { c.dialogs().update_dialog(&dialog_id, update.into()).await })
            .await
            .map(Into::into)
    }

    /// Deletes dialogs for the caller, or for everyone with `force` (owner only).
    pub async fn delete_dialogs(
        &self,
        dialog_ids: Vec<String>,
        force: bool,
    ) -> Result<DeleteResult, ChatError> {
        let c = self.core();
        run(async move { c.dialogs().delete_dialogs(&dialog_ids, force).await })
            .await
            .map(Into::into)
    }

    /// Clears a dialog's history for the caller, or for everyone with `force`.
    pub async fn clear_history(&self, dialog_id: String, force: bool) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.dialogs().clear_history(&dialog_id, force).await }).await
    }

    /// Subscribes to a public dialog.
    pub async fn subscribe_public_dialog(&self, dialog_id: String) -> Result<Dialog, ChatError> {
        let c = self.core();
        run(async move { c.dialogs().subscribe_dialog(&dialog_id).await })
            .await
            .map(Into::into)
    }

    /// Unsubscribes from a public dialog.
    pub async fn unsubscribe_public_dialog(&self, dialog_id: String) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.dialogs().unsubscribe_dialog(&dialog_id).await }).await
    }

    /// Subscribers of a public dialog, paged (limit 1–100).
    pub async fn public_dialog_occupants(
        &self,
        dialog_id: String,
        limit: u32,
        skip: u32,
    ) -> Result<Vec<User>, ChatError> {
        let c = self.core();
        let users =
            run(async move { c.dialogs().public_occupants(&dialog_id, limit, skip).await }).await?;
        Ok(users.into_iter().map(Into::into).collect())
    }

    /// Adds admins (creator only, at most 5). Errors: `Forbidden`, `Server` 422.
    pub async fn add_admins(
        &self,
        dialog_id: String,
        user_ids: Vec<u64>,
    ) -> Result<Dialog, ChatError> {
        let c = self.core();
        run(async move { c.dialogs().set_admins(&dialog_id, &user_ids, true).await })
            .await
            .map(Into::into)
    }

    /// Removes admins (creator only).
    pub async fn remove_admins(
        &self,
        dialog_id: String,
        user_ids: Vec<u64>,
    ) -> Result<Dialog, ChatError> {
        let c = self.core();
        run(async move { c.dialogs().set_admins(&dialog_id, &user_ids, false).await })
            .await
            .map(Into::into)
    }

    /// Whether push notifications are on for a dialog.
    pub async fn dialog_notifications_enabled(&self, dialog_id: String) -> Result<bool, ChatError> {
        let c = self.core();
        run(async move { c.dialogs().notifications_enabled(&dialog_id).await }).await
    }

    /// Turns push notifications for a dialog on or off; returns the new setting.
    pub async fn set_dialog_notifications(
        &self,
        dialog_id: String,
        enabled: bool,
    ) -> Result<bool, ChatError> {
        let c = self.core();
        run(async move { c.dialogs().set_notifications(&dialog_id, enabled).await }).await
    }

    /// A page of history; page backwards with `date_sent` `Lt`. Listing marks the returned
    /// messages read unless `mark_as_read` is false.
    pub async fn history(
        &self,
        dialog_id: String,
        params: ListParams,
        mark_as_read: bool,
    ) -> Result<Vec<ChatMessage>, ChatError> {
        let c = self.core();
        let page = run(async move {
            c.messages()
                .history(&dialog_id, &params.into(), mark_as_read)
                .await
        })
        .await?;
        Ok(page.items.into_iter().map(Into::into).collect())
    }

    /// Stores a message through REST (delivered over chat too with `send_to_chat`).
    pub async fn create_message(&self, message: NewMessage) -> Result<ChatMessage, ChatError> {
        let c = self.core();
        let m = core::NewMessage {
            dialog_id: message.dialog_id,
            body: message.body,
            attachments: message.attachments.into_iter().map(Into::into).collect(),
            custom: message.custom.into_iter().collect(),
            send_to_chat: message.send_to_chat,
            markable: message.markable,
            date_sent: message.date_sent,
        };
        run(async move { c.messages().create_message(m).await })
            .await
            .map(Into::into)
    }

    /// Replaces the body of one of the caller's messages.
    pub async fn edit_message(
        &self,
        dialog_id: String,
        message_id: String,
        body: String,
    ) -> Result<(), ChatError> {
        let c = self.core();
        run(async move {
            c.messages()
                .edit_message(&dialog_id, &message_id, &body)
                .await
        })
        .await
    }

    /// Marks messages read and/or delivered by the caller.
    pub async fn mark_messages(
        &self,
        dialog_id: String,
        message_ids: Vec<String>,
        read: bool,
        delivered: bool,
    ) -> Result<(), ChatError> {
        let c = self.core();
        run(async move {
            c.messages()
                .mark_messages(&dialog_id, &message_ids, read, delivered)
                .await
        })
        .await
    }

    /// Marks every message of a dialog read.
    pub async fn mark_all_read(&self, dialog_id: String) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.messages().mark_all_read(&dialog_id).await }).await
    }

    /// Deletes messages for the caller, or for everyone with `force`.
    pub async fn delete_messages(
        &self,
        message_ids: Vec<String>,
        force: bool,
    ) -> Result<DeleteResult, ChatError> {
        let c = self.core();
        run(async move { c.messages().delete_messages(&message_ids, force).await })
            .await
            .map(Into::into)
    }

    /// Unread counts: total, and per dialog for the ids given.
    pub async fn unread_counts(&self, dialog_ids: Vec<String>) -> Result<UnreadCounts, ChatError> {
        let c = self.core();
        let u = run(async move { c.messages().unread_counts(&dialog_ids).await }).await?;
        Ok(UnreadCounts {
            total: u.total,
            per_dialog: u.dialogs.into_iter().collect(),
        })
    }

    /// Adds the caller's reaction (replacing their previous one).
    pub async fn add_reaction(
        &self,
        message_id: String,
        reaction: String,
    ) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.messages().react(&message_id, Some(&reaction), None).await }).await
    }

    /// Removes the caller's reaction.
    pub async fn remove_reaction(
        &self,
        message_id: String,
        reaction: String,
    ) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.messages().react(&message_id, None, Some(&reaction)).await }).await
    }

    /// Replaces one reaction by another in a single call.
    pub async fn replace_reaction(
        &self,
        message_id: String,
        add: String,
        remove: String,
    ) -> Result<(), ChatError> {
        let c = self.core();
        run(async move {
            c.messages()
                .react(&message_id, Some(&add), Some(&remove))
                .await
        })
        .await
    }

    /// Who reacted with what: reaction → user ids.
    pub async fn reactions(
        &self,
        message_id: String,
    ) -> Result<HashMap<String, Vec<u64>>, ChatError> {
        let c = self.core();
        run(async move { c.messages().reactions(&message_id).await })
            .await
            .map(|r| r.into_iter().collect())
    }

    /// Global search. The documented limits are checked before sending (`InvalidInput`).
    pub async fn search(&self, query: SearchQuery) -> Result<SearchResults, ChatError> {
        let c = self.core();
        let q = core::SearchQuery {
            text: query.text,
            start_date: query.start_date,
            end_date: query.end_date,
            dialog_ids: query.dialog_ids,
            limit: query.limit,
        };
        let r = run(async move { c.messages().search(&q).await })
            .await?
            .results;
        Ok(SearchResults {
            dialogs: r.dialogs.into_iter().map(Into::into).collect(),
            messages: r.messages.into_iter().map(Into::into).collect(),
            users: r.users.into_iter().map(Into::into).collect(),
        })
    }

    /// Sends a system message to a user through REST; returns its id.
    pub async fn send_system_message(
        &self,
        recipient_id: u64,
        params: HashMap<String, String>,
    ) -> Result<String, ChatError> {
        let c = self.core();
        run(async move {
            c.messages()
                .send_system_message(recipient_id, params.into_iter().collect())
                .await
        })
        .await
    }
}
