//! Routing of client stanzas (messages, presences, iqs) and the pushes the REST API sends.
//!
//! Every message passes [`Hub::may_deliver`] (the "deliver or bounce" decision point where
//! privacy lists will plug in); route failures bounce a `message_error` to the sender.

use std::collections::BTreeMap;

use cubechat_wire::chat::{dialog_type, is_object_id};
use cubechat_wire::stanza::{self, ChatKind, Incoming, ReactionChange, NS_CARBONS, NS_STANZAS};
use minidom::Element;

use super::hub::{Hub, UserKey};
use super::util::{
    child, elem, ensure_extra, parse_room_jid, parse_user_jid, set_attr, NS_DISCO_ITEMS, NS_MUC,
    NS_MUC_USER, NS_PING, NS_SESSION,
};
use crate::db::dialogs::{self as dialog_db, DialogRow};
use crate::db::messages::{self as message_db, MessageRow, NewMessage};
use crate::db::{self, users as user_db, DbError};

/// The bound resource a stanza came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub key: UserKey,
    pub resource: String,
}

/// Why a stanza is bounced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    pub code: u16,
    pub condition: &'static str,
    pub text: &'static str,
}

impl Bounce {
    pub const UNAVAILABLE: Bounce = Bounce {
        code: 503,
        condition: "service-unavailable",
        text: "recipient unavailable",
    };
    pub const NOT_OCCUPANT: Bounce = Bounce {
        code: 403,
        condition: "forbidden",
        text: "you are not an occupant of this dialog",
    };
    pub const NO_DIALOG: Bounce = Bounce {
        code: 404,
        condition: "item-not-found",
        text: "dialog not found",
    };
}

impl From<DbError> for Bounce {
    fn from(e: DbError) -> Self {
        tracing::warn!(error = %e, "database error while routing");
        Bounce {
            code: 500,
            condition: "internal-server-error",
            text: "internal error",
        }
    }
}

impl From<rusqlite::Error> for Bounce {
    fn from(e: rusqlite::Error) -> Self {
        Bounce::from(DbError::from(e))
    }
}

/// An occupant presence (`unavailable` for a leave), without the JS self-presence quirk.
pub fn occupant_presence(from: &str, to: &str, unavailable: bool) -> Element {
    let mut attrs = vec![("from", from), ("to", to)];
    if unavailable {
        attrs.push(("type", "unavailable"));
    }
    let mut p = elem("presence", stanza::NS_CLIENT, &attrs);
    let mut x = elem("x", NS_MUC_USER, &[]);
    let role = if unavailable { "none" } else { "participant" };
    x.append_child(elem(
        "item",
        NS_MUC_USER,
        &[("affiliation", "member"), ("role", role)],
    ));
    p.append_child(x);
    p
}

/// The self-presence of a join or leave: status 110 plus the `<xmlns><code>110</code></xmlns>`
/// child JS 6.1.2 looks for (protocol reference §6.7), echoing the request id.
fn self_presence(from: &str, to: &str, id: Option<&str>, unavailable: bool) -> Element {
    let mut p = occupant_presence(from, to, unavailable);
    if let Some(id) = id {
        set_attr(&mut p, "id", id);
    }
    if let Some(x) = p.get_child_mut("x", NS_MUC_USER) {
        x.append_child(elem("status", NS_MUC_USER, &[("code", "110")]));
        let mut quirk = Element::builder("xmlns", NS_MUC_USER).build();
        quirk.append_child(Element::builder("code", NS_MUC_USER).append("110").build());
        x.append_child(quirk);
    }
    p
}

fn iq_result(id: &str, from: &str, to: &str, payload: Option<Element>) -> Element {
    let mut iq = elem(
        "iq",
        stanza::NS_CLIENT,
        &[("type", "result"), ("id", id), ("from", from), ("to", to)],
    );
    if let Some(p) = payload {
        iq.append_child(p);
    }
    iq
}

/// `service-unavailable` echoing the request's child (what xmpp.js does too).
fn iq_unavailable(req: &Element, from: &str, to: &str) -> Element {
    let id = req.attr("id").unwrap_or_default();
    let mut iq = elem(
        "iq",
        stanza::NS_CLIENT,
        &[("type", "error"), ("id", id), ("from", from), ("to", to)],
    );
    if let Some(c) = req.children().next() {
        iq.append_child(c.clone());
    }
    let mut err = elem(
        "error",
        stanza::NS_CLIENT,
        &[("type", "cancel"), ("code", "503")],
    );
    err.append_child(Element::bare("service-unavailable", NS_STANZAS));
    iq.append_child(err);
    iq
}

impl Hub {
    /// The decision point before a message reaches a user: `Ok` delivers, `Err` bounces.
    /// Privacy lists (blocking) will be checked here.
    pub fn may_deliver(&self, _from: UserKey, _to: UserKey) -> Result<(), Bounce> {
        Ok(())
    }

    fn bounce(&self, origin: &Origin, el: &Element, b: &Bounce) {
        let id = el.attr("id").unwrap_or_default();
        let to = self.full_jid(origin.key, &origin.resource);
        let mut err = stanza::message_error(id, &to, b.code, b.condition, b.text);
        if let Some(from) = el.attr("to") {
            set_attr(&mut err, "from", from);
        }
        self.send_to(origin.key, &origin.resource, err);
    }

    /// Routes any stanza a bound client sent.
    pub fn route(&self, origin: &Origin, el: Element) {
        match el.name() {
            "message" => self.route_message(origin, el),
            "presence" => self.route_presence(origin, el),
            "iq" => self.route_iq(origin, el),
            _ => {}
        }
    }

    fn route_message(&self, origin: &Origin, mut el: Element) {
        let full = self.full_jid(origin.key, &origin.resource);
        set_attr(&mut el, "from", &full);
        let kind = el.attr("type").unwrap_or("normal").to_owned();
        let result = match kind.as_str() {
            "error" => Ok(()),
            "groupchat" => self.route_groupchat(origin, &mut el),
            _ => self.route_chat(origin, &mut el),
        };
        if let Err(b) = result {
            self.bounce(origin, &el, &b);
        }
    }

    fn route_chat(&self, origin: &Origin, el: &mut Element) -> Result<(), Bounce> {
        let (app, sender) = origin.key;
        let to = el.attr("to").unwrap_or_default().to_owned();
        let Some((uid, to_app, resource)) = parse_user_jid(&to, &self.domain) else {
            return Err(Bounce::UNAVAILABLE);
        };
        if to_app != app || self.db.with(|c| user_db::find(c, app, uid))?.is_none() {
            return Err(Bounce::UNAVAILABLE);
        }
        let target = (app, uid);
        self.may_deliver(origin.key, target)?;
        let r = stanza::classify(el);
        let is_chat = el.attr("type") == Some("chat");
        match &r.what {
            Incoming::Chat { body } if r.extra.save_to_history => {
                let row = self.save(el, origin, body, &r.extra, Some(uid), None)?;
                ensure_extra(el, "dialog_id", &row.dialog_id);
                ensure_extra(el, "date_sent", &row.date_sent.to_string());
            }
            Incoming::Edit {
                message_id, body, ..
            } => self.apply_edit(sender, message_id, body)?,
            Incoming::Delete { message_id } => self.apply_delete(sender, message_id)?,
            Incoming::Marker { message_id, read } => {
                self.apply_marker(origin.key, message_id, *read)?
            }
            _ => {}
        }
        let delivered = match resource.filter(|res| self.resources(target).contains(res)) {
            Some(res) => {
                self.send_to(target, &res, el.clone());
                if is_chat {
                    // received carbons to the recipient's other resources (wrapper without type)
                    let bare = self.user_jid(target);
                    for other in self.resources(target).into_iter().filter(|o| *o != res) {
                        let c = stanza::carbon(el, false, &format!("{bare}/{other}"), &bare);
                        self.send_carbon_if_enabled(target, &other, c);
                    }
                }
                1
            }
            None => self.deliver_user(target, el, super::hub::offline_worthy(el)),
        };
        tracing::debug!(to = %to, delivered, "routed 1-1 message");
        if is_chat && el.get_child("private", NS_CARBONS).is_none() {
            self.sent_carbons(origin.key, Some(&origin.resource), el);
        }
        Ok(())
    }

    fn send_carbon_if_enabled(&self, key: UserKey, res: &str, c: Element) {
        if self.carbons_enabled(key, res) {
            self.send_to(key, res, c);
        }
    }

    fn route_groupchat(&self, origin: &Origin, el: &mut Element) -> Result<(), Bounce> {
        let (app, sender) = origin.key;
        let to = el.attr("to").unwrap_or_default().to_owned();
        let Some((room_app, dialog_id, _)) = parse_room_jid(&to, &self.domain) else {
            return Err(Bounce::UNAVAILABLE);
        };
        if room_app != app {
            return Err(Bounce::UNAVAILABLE);
        }
        let dialog = self
            .db
            .with(|c| dialog_db::find(c, app, &dialog_id))?
            .ok_or(Bounce::UNAVAILABLE)?;
        let member = self
            .db
            .with(|c| dialog_db::member_of(c, &dialog, sender))?
            .ok_or(Bounce::NOT_OCCUPANT)?;
        let r = stanza::classify(el);
        match &r.what {
            Incoming::Chat { body } => {
                if dialog.kind == dialog_type::BROADCAST
                    && dialog.user_id != sender
                    && !member.admin
                {
                    return Err(Bounce::NOT_OCCUPANT);
                }
                if r.extra.save_to_history {
                    let row = self.save(el, origin, body, &r.extra, None, Some(&dialog))?;
                    ensure_extra(el, "date_sent", &row.date_sent.to_string());
                }
            }
            Incoming::Edit {
                message_id, body, ..
            } => self.apply_edit(sender, message_id, body)?,
            Incoming::Delete { message_id } => self.apply_delete(sender, message_id)?,
            _ => {}
        }
        let room = self.room_jid(app, &dialog.id);
        set_attr(el, "from", &format!("{room}/{sender}"));
        ensure_extra(el, "dialog_id", &dialog.id);
        let typing = matches!(r.what, Incoming::Typing { .. });
        for uid in self.audience(&dialog)? {
            if typing && uid == sender {
                continue;
            }
            if uid != sender && self.may_deliver(origin.key, (app, uid)).is_err() {
                continue;
            }
            self.send_to_user((app, uid), el, None, true, false);
        }
        Ok(())
    }

    /// Who receives a dialog's messages: occupants (subscribers), or for a broadcast dialog
    /// every online user of the application.
    fn audience(&self, dialog: &DialogRow) -> Result<Vec<u64>, Bounce> {
        if dialog.kind == dialog_type::BROADCAST {
            return Ok(self.online_users(dialog.app_id));
        }
        Ok(self.db.with(|c| dialog_db::occupant_ids(c, &dialog.id))?)
    }

    /// Stores a chat message (`save_to_history=1`) like `POST /chat/Message` does.
    fn save(
        &self,
        el: &Element,
        origin: &Origin,
        body: &str,
        extra: &stanza::ExtraParams,
        recipient: Option<u64>,
        dialog: Option<&DialogRow>,
    ) -> Result<MessageRow, Bounce> {
        let (app, sender) = origin.key;
        let id = el.attr("id").filter(|i| is_object_id(i)).map(str::to_owned);
        let markable = extra.markable || child(el, "markable").is_some();
        let now = db::now();
        let dialog_hint = extra.dialog_id.clone();
        let dialog = dialog.cloned();
        self.db.call(|c| {
            let tx = c.transaction().map_err(DbError::from)?;
            let dialog = match (dialog, dialog_hint, recipient) {
                (Some(d), _, _) => d,
                (None, Some(d), _) => {
                    let d = dialog_db::find(&tx, app, &d)?.ok_or(Bounce::NO_DIALOG)?;
                    dialog_db::member_of(&tx, &d, sender)?.ok_or(Bounce::NOT_OCCUPANT)?;
                    d
                }
                (None, None, Some(other)) if other != sender => {
                    dialog_db::find_or_create_private(&tx, app, sender, other, now)?.0
                }
                _ => return Err(Bounce::NO_DIALOG),
            };
            let row = message_db::create(
                &tx,
                &NewMessage {
                    id,
                    dialog_id: dialog.id.clone(),
                    sender_id: sender,
                    recipient_id: recipient.unwrap_or(0),
                    body: (!body.is_empty()).then(|| body.to_owned()),
                    attachments: extra.attachments.clone(),
                    custom: extra.custom.clone(),
                    date_sent: extra.date_sent,
                    markable,
                    send_to_chat: false,
                },
                now,
            )?;
            tx.commit()?;
            Ok(row)
        })
    }

    fn apply_edit(&self, sender: u64, message_id: &str, body: &str) -> Result<(), Bounce> {
        let now = db::now();
        Ok(self.db.with(|c| {
            if let Some(row) = message_db::find(c, message_id)? {
                if row.sender_id == sender {
                    message_db::edit_body(c, &row.id, body, now)?;
                }
            }
            Ok(())
        })?)
    }

    fn apply_delete(&self, sender: u64, message_id: &str) -> Result<(), Bounce> {
        Ok(self.db.with(|c| {
            if let Some(row) = message_db::find(c, message_id)? {
                if row.sender_id == sender {
                    message_db::delete(c, &row)?;
                }
            }
            Ok(())
        })?)
    }

    /// A delivered/read marker updates `delivered_ids`/`read_ids` of a message in one of the
    /// marker sender's dialogs.
    fn apply_marker(
        &self,
        (app, user): UserKey,
        message_id: &str,
        read: bool,
    ) -> Result<(), Bounce> {
        Ok(self.db.with(|c| {
            let Some(row) = message_db::find(c, message_id)? else {
                return Ok(());
            };
            let Some(dialog) = dialog_db::find(c, app, &row.dialog_id)? else {
                return Ok(());
            };
            if dialog_db::member_of(c, &dialog, user)?.is_none() {
                return Ok(());
            }
            let ids = [row.id];
            if read {
                message_db::mark_read(c, &ids, user)
            } else {
                message_db::mark_delivered(c, &ids, user)
            }
        })?)
    }

    // --- presence --------------------------------------------------------------------------

    fn route_presence(&self, origin: &Origin, el: Element) {
        let unavailable = el.attr("type") == Some("unavailable");
        let Some(to) = el.attr("to") else {
            // Initial presence: the resource is available, and offline stanzas are flushed
            // to it (once: they are deleted as they are taken).
            let available = matches!(el.attr("type"), None | Some("available"));
            if (available || unavailable)
                && self.set_available(origin.key, &origin.resource, available)
            {
                for m in self.take_offline(origin.key) {
                    self.send_to(origin.key, &origin.resource, m);
                }
            }
            return;
        };
        let Some((app, dialog_id, _)) = parse_room_jid(to, &self.domain) else {
            return;
        };
        let (my_app, uid) = origin.key;
        let full = self.full_jid(origin.key, &origin.resource);
        let room = self.room_jid(app, &dialog_id);
        let me = format!("{room}/{uid}");
        let id = el.attr("id");
        if unavailable {
            let rest = self.leave_room(app, &dialog_id, &full);
            self.send_to(
                origin.key,
                &origin.resource,
                self_presence(&me, &full, id, true),
            );
            for (jid, other) in rest {
                self.send_presence_to(app, &jid, other, occupant_presence(&me, &jid, true));
            }
            return;
        }
        let allowed = app == my_app
            && self
                .db
                .with(|c| match dialog_db::find(c, app, &dialog_id)? {
                    Some(d) => Ok(dialog_db::member_of(c, &d, uid)?.is_some()),
                    None => Ok(false),
                })
                .unwrap_or(false);
        if !allowed {
            let mut p = elem(
                "presence",
                stanza::NS_CLIENT,
                &[("type", "error"), ("from", &me), ("to", &full)],
            );
            if let Some(id) = id {
                set_attr(&mut p, "id", id);
            }
            p.append_child(elem("x", NS_MUC, &[]));
            let mut err = elem(
                "error",
                stanza::NS_CLIENT,
                &[("type", "auth"), ("code", "403")],
            );
            err.append_child(Element::bare("forbidden", NS_STANZAS));
            p.append_child(err);
            self.send_to(origin.key, &origin.resource, p);
            return;
        }
        let others = self.join_room(app, &dialog_id, &full, uid);
        let mut seen = Vec::new();
        for (_, other) in &others {
            if *other != uid && !seen.contains(other) {
                seen.push(*other);
                let from = format!("{room}/{other}");
                self.send_to(
                    origin.key,
                    &origin.resource,
                    occupant_presence(&from, &full, false),
                );
            }
        }
        self.send_to(
            origin.key,
            &origin.resource,
            self_presence(&me, &full, id, false),
        );
        for (jid, other) in others {
            self.send_presence_to(app, &jid, other, occupant_presence(&me, &jid, false));
        }
    }

    // --- iq --------------------------------------------------------------------------------

    fn route_iq(&self, origin: &Origin, el: Element) {
        if !matches!(el.attr("type"), Some("get" | "set")) {
            return; // results and errors (e.g. answers to our pings)
        }
        let full = self.full_jid(origin.key, &origin.resource);
        let id = el.attr("id").unwrap_or_default().to_owned();
        let to = el.attr("to").unwrap_or(&self.domain).to_owned();
        let reply = match el.children().next().map(|c| (c.name(), c.ns())) {
            Some(("ping", ns)) if ns == NS_PING => iq_result(&id, &to, &full, None),
            Some(("session", ns)) if ns == NS_SESSION => iq_result(&id, &to, &full, None),
            Some((name @ ("enable" | "disable"), ns)) if ns == NS_CARBONS => {
                self.set_carbons(origin.key, &origin.resource, name == "enable");
                iq_result(&id, &to, &full, None)
            }
            Some(("query", ns)) if ns == NS_DISCO_ITEMS => match self.room_items(origin, &to) {
                Some(q) => iq_result(&id, &to, &full, Some(q)),
                None => iq_unavailable(&el, &to, &full),
            },
            _ => iq_unavailable(&el, &to, &full),
        };
        self.send_to(origin.key, &origin.resource, reply);
    }

    /// disco#items of a room: its occupants who are online now.
    fn room_items(&self, origin: &Origin, room: &str) -> Option<Element> {
        let (app, dialog_id, _) = parse_room_jid(room, &self.domain)?;
        if app != origin.key.0 {
            return None;
        }
        let occupants = self
            .db
            .with(|c| match dialog_db::find(c, app, &dialog_id)? {
                Some(d) if dialog_db::member_of(c, &d, origin.key.1)?.is_some() => {
                    Ok(Some(dialog_db::occupant_ids(c, &d.id)?))
                }
                _ => Ok(None),
            })
            .ok()??;
        let mut q = elem("query", NS_DISCO_ITEMS, &[]);
        for uid in occupants.into_iter().filter(|u| self.is_online((app, *u))) {
            q.append_child(elem(
                "item",
                NS_DISCO_ITEMS,
                &[("jid", &format!("{room}/{uid}"))],
            ));
        }
        Some(q)
    }

    // --- pushes from the REST API ----------------------------------------------------------

    /// Sends `make(to)` to every audience member except `actor`: `chat` from the actor's user
    /// JID in a private dialog, `groupchat` from `{room}/{actor}` otherwise.
    fn push_dialog(
        &self,
        dialog: &DialogRow,
        actor: u64,
        include_actor: bool,
        make: impl Fn(ChatKind, &str) -> Element,
    ) {
        let app = dialog.app_id;
        let audience = match self.audience(dialog) {
            Ok(a) => a,
            Err(_) => return,
        };
        let private = dialog.kind == dialog_type::PRIVATE;
        for uid in audience {
            if uid == actor && !include_actor {
                continue;
            }
            let key = (app, uid);
            let mut el = if private {
                make(ChatKind::Chat, &self.user_jid(key))
            } else {
                make(ChatKind::GroupChat, &self.room_jid(app, &dialog.id))
            };
            let from = if private {
                self.user_jid((app, actor))
            } else {
                format!("{}/{actor}", self.room_jid(app, &dialog.id))
            };
            set_attr(&mut el, "from", &from);
            if private {
                self.deliver_user(key, &el, super::hub::offline_worthy(&el));
            } else {
                self.send_to_user(key, &el, None, true, false);
            }
        }
    }

    /// `POST /chat/Message` with `send_to_chat=1`: delivered like a chat message.
    pub fn push_rest_message(&self, dialog: &DialogRow, row: &MessageRow) {
        let extra = stanza::ExtraParams {
            save_to_history: true,
            dialog_id: Some(dialog.id.clone()),
            date_sent: Some(row.date_sent),
            markable: row.markable,
            attachments: row.attachments.clone(),
            custom: row
                .custom
                .iter()
                .filter(|(k, _)| !stanza::is_control_key(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
            ..Default::default()
        };
        let body = row.body.clone().unwrap_or_default();
        self.push_dialog(
            dialog,
            row.sender_id,
            dialog.kind != dialog_type::PRIVATE,
            |kind, to| stanza::chat_message(kind, &row.id, to, &body, &extra),
        );
        if dialog.kind == dialog_type::PRIVATE {
            let msg = stanza::chat_message(
                ChatKind::Chat,
                &row.id,
                &self.user_jid((dialog.app_id, row.recipient_id)),
                &body,
                &extra,
            );
            self.sent_carbons((dialog.app_id, row.sender_id), None, &msg);
        }
    }

    /// The reactions push after `PUT /chat/Message/{id}/reactions` (§6.5).
    pub fn push_reactions(&self, dialog: &DialogRow, change: &ReactionChange) {
        let id = db::object_id();
        self.push_dialog(dialog, change.user_id, false, |kind, to| {
            stanza::reactions(kind, &id, to, change)
        });
    }

    /// The `remove` push after a forced REST delete.
    pub fn push_delete(&self, dialog: &DialogRow, actor: u64, message_id: &str) {
        let id = db::object_id();
        self.push_dialog(dialog, actor, false, |kind, to| {
            stanza::delete(kind, &id, to, message_id, &dialog.id)
        });
    }

    /// The `replace` push after a REST edit.
    pub fn push_edit(&self, dialog: &DialogRow, actor: u64, message_id: &str, body: &str) {
        let id = db::object_id();
        let last = dialog.last_message_id.as_deref() == Some(message_id);
        self.push_dialog(dialog, actor, false, |kind, to| {
            stanza::edit(kind, &id, to, message_id, body, last, &dialog.id)
        });
    }

    /// `POST /chat/Message/system`: a headline to the recipient, stored if they are offline.
    pub fn push_system(
        &self,
        app: u64,
        sender: u64,
        recipient: u64,
        id: &str,
        params: &BTreeMap<String, String>,
    ) {
        let key = (app, recipient);
        let body = params.get("body").cloned().unwrap_or_default();
        let custom: BTreeMap<String, String> = params
            .iter()
            .filter(|(k, _)| k.as_str() != "body")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut el = stanza::system_message(id, &self.user_jid(key), &body, &custom);
        set_attr(&mut el, "from", &self.user_jid((app, sender)));
        self.deliver_user(key, &el, true);
    }
}
