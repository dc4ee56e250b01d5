//! Privacy (block) lists, last activity and its subscription, active/inactive, and group
//! presence for apps. Events arrive through [`PresenceListener`].

use std::sync::Arc;

use cubechat_core::xmpp as core;

use crate::client::ChatClient;
use crate::error::ChatError;
use crate::handle::SubscriptionHandle;
use crate::runtime::run;

/// One user in a privacy list.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PrivacyListItem {
    /// The user the item blocks or allows.
    pub user_id: u64,
    /// `true` = allow this user explicitly, `false` = block.
    #[uniffi(default = false)]
    pub allow: bool,
    /// Two-way block: neither side can write. Otherwise one-way: you receive nothing from
    /// them, but can still write to them.
    #[uniffi(default = false)]
    pub mutual_block: bool,
}

/// A named privacy list.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PrivacyList {
    /// The list's name.
    pub name: String,
    /// The list's items.
    pub items: Vec<PrivacyListItem>,
}

/// The names of the user's privacy lists.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PrivacyListNames {
    /// The list active for this session (ConnectyCube does not use it).
    pub active: Option<String>,
    /// The default list: the one the server enforces.
    pub default: Option<String>,
    /// The names of every list.
    pub names: Vec<String>,
}

impl From<PrivacyList> for core::PrivacyList {
    fn from(l: PrivacyList) -> Self {
        Self {
            name: l.name,
            items: l
                .items
                .into_iter()
                .map(|i| core::PrivacyListItem {
                    user_id: i.user_id,
                    action: if i.allow {
                        core::PrivacyAction::Allow
                    } else {
                        core::PrivacyAction::Deny
                    },
                    mutual_block: i.mutual_block,
                })
                .collect(),
        }
    }
}

impl From<core::PrivacyList> for PrivacyList {
    fn from(l: core::PrivacyList) -> Self {
        Self {
            name: l.name,
            items: l
                .items
                .into_iter()
                .map(|i| PrivacyListItem {
                    user_id: i.user_id,
                    allow: i.action == core::PrivacyAction::Allow,
                    mutual_block: i.mutual_block,
                })
                .collect(),
        }
    }
}

/// Presence-type events.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum PresenceEvent {
    /// A user whose activity you subscribed to came online (`seconds` 0) or went offline.
    LastActivity {
        /// The user asked about.
        user_id: u64,
        /// Seconds since the user's last activity (0 while online).
        seconds: u64,
    },
    /// Another user joined a room you joined.
    OccupantJoined {
        /// The group dialog.
        dialog_id: String,
        /// Who joined.
        user_id: u64,
    },
    /// Another user left a room you joined.
    OccupantLeft {
        /// The group dialog.
        dialog_id: String,
        /// Who left.
        user_id: u64,
    },
    /// You were removed from a room; `initiator_id` did it, when known.
    Kicked {
        /// The group dialog the current user was removed from.
        dialog_id: String,
        /// Who removed the user, when the server said.
        initiator_id: Option<u64>,
    },
}

/// Hears last-activity pushes, room occupants joining and leaving, and kicks.
///
/// Threads: called on this subscription's own thread (`cubechat-deliver`), one event at a
/// time, in order; never on the engine's threads, so a slow or blocking call delays only
/// this subscription. Events wait, none skipped, until the call returns; a subscription
/// 65,536 events behind ends (see `SubscriptionHandle`). Calling the client from here is
/// allowed.
#[uniffi::export(foreign)]
pub trait PresenceListener: Send + Sync {
    /// An error or exception raised here is logged (the first one of a subscription, with
    /// its traceback when the language layer supplies it); later events are still delivered.
    fn on_presence(&self, event: PresenceEvent) -> Result<(), ChatError>;
}

/// Hears one user's logins (`seconds` 0) and logouts (seconds since last seen).
///
/// Threads: called on this subscription's own thread (`cubechat-deliver`), one event at a
/// time, in order; never on the engine's threads, so a slow or blocking call delays only
/// this subscription. Events wait, none skipped, until the call returns; a subscription
/// 65,536 events behind ends (see `SubscriptionHandle`). Calling the client from here is
/// allowed.
#[uniffi::export(foreign)]
pub trait LastActivityListener: Send + Sync {
    /// An error or exception raised here is logged (the first one of a subscription, with
    /// its traceback when the language layer supplies it); later events are still delivered.
    fn on_last_activity(&self, user_id: u64, seconds: u64) -> Result<(), ChatError>;
}

#[uniffi::export]
impl ChatClient {
    /// Creates or replaces a privacy list (at least one item). Each blocked user covers both
    /// private chats and their messages in group chats.
    pub async fn create_privacy_list(&self, list: PrivacyList) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.chat().create_privacy_list(&list.into()).await }).await
    }

    /// Replaces a list that may be the default one: declines the default, replaces the list
    /// and sets it as default again, in one call.
    pub async fn update_privacy_list(&self, list: PrivacyList) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.chat().update_privacy_list(&list.into()).await }).await
    }

    /// The names of the user's lists, and which one is the default.
    pub async fn privacy_list_names(&self) -> Result<PrivacyListNames, ChatError> {
        let c = self.core();
        let n = run(async move { c.chat().privacy_list_names().await }).await?;
        Ok(PrivacyListNames {
            active: n.active,
            default: n.default,
            names: n.names,
        })
    }

    /// A list by name. Errors: `NotFound`.
    pub async fn privacy_list(&self, name: String) -> Result<PrivacyList, ChatError> {
        let c = self.core();
        run(async move { c.chat().privacy_list(&name).await })
            .await
            .map(Into::into)
    }

    /// Makes `name` the enforced (default) list, or declines the default with `None`.
    pub async fn set_default_privacy_list(&self, name: Option<String>) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.chat().set_default_privacy_list(name.as_deref()).await }).await
    }

    /// Deletes a list (decline it as default first).
    pub async fn delete_privacy_list(&self, name: String) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.chat().delete_privacy_list(&name).await }).await
    }

    /// Seconds since the user was last online; 0 = online now.
    pub async fn last_activity(&self, user_id: u64) -> Result<u64, ChatError> {
        let c = self.core();
        run(async move { c.chat().last_activity(user_id).await }).await
    }

    /// Subscribes to a user's logins and logouts (`PresenceEvent::LastActivity`). Kept across
    /// reconnects.
    pub async fn subscribe_last_activity(&self, user_id: u64) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.chat().subscribe_last_activity(user_id).await }).await
    }

    /// Subscribes to one user's logins and logouts with a callback of its own (kept across
    /// reconnects). Cancelling the handle stops the callback; `unsubscribe_last_activity` also
    /// ends the server subscription.
    pub async fn watch_last_activity(
        &self,
        user_id: u64,
        listener: Arc<dyn LastActivityListener>,
    ) -> Result<Arc<SubscriptionHandle>, ChatError> {
        // Listen first, so no push between the subscription and the loop is missed.
        let handle = self.subscribe_events("LastActivityListener", move |e| match e {
            core::ChatEvent::LastActivity {
                user_id: u,
                seconds,
            } if u == user_id => {
                let l = listener.clone();
                Some(Box::new(move || l.on_last_activity(u, seconds)))
            }
            _ => None,
        })?;
        let c = self.core();
        run(async move { c.chat().subscribe_last_activity(user_id).await }).await?;
        Ok(handle)
    }

    /// Ends a last-activity subscription.
    pub async fn unsubscribe_last_activity(&self, user_id: u64) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.chat().unsubscribe_last_activity(user_id).await }).await
    }

    /// The app is in the foreground: no pushes while online.
    pub async fn mark_active(&self) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.chat().mark_active() }).await
    }

    /// The app went to the background: the server sends pushes although the connection stays.
    pub async fn mark_inactive(&self) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.chat().mark_inactive() }).await
    }

    /// The users online in a group dialog's room.
    pub async fn room_occupants(&self, dialog_id: String) -> Result<Vec<u64>, ChatError> {
        let c = self.core();
        run(async move { c.chat().room_occupants(&dialog_id).await }).await
    }

    /// Subscribes to last-activity pushes, occupants joining/leaving and kicks.
    pub fn subscribe_presence(
        &self,
        listener: Arc<dyn PresenceListener>,
    ) -> Result<Arc<SubscriptionHandle>, ChatError> {
        self.subscribe_events("PresenceListener", move |event| {
            let e = match event {
                core::ChatEvent::LastActivity { user_id, seconds } => {
                    PresenceEvent::LastActivity { user_id, seconds }
                }
                core::ChatEvent::OccupantJoined { dialog_id, user_id } => {
                    PresenceEvent::OccupantJoined { dialog_id, user_id }
                }
                core::ChatEvent::OccupantLeft { dialog_id, user_id } => {
                    PresenceEvent::OccupantLeft { dialog_id, user_id }
                }
                core::ChatEvent::Kicked {
                    dialog_id,
                    initiator_id,
                } => PresenceEvent::Kicked {
                    dialog_id,
                    initiator_id,
                },
                _ => return None,
            };
            let l = listener.clone();
            Some(Box::new(move || l.on_presence(e)))
        })
    }
}
