//! Routing of client stanzas (messages, presences, iqs) and the pushes the REST API sends.
//!
//! Every 1-1 message passes [`Hub::may_deliver`] (the "deliver or bounce" decision point:
//! privacy lists, §6.8), every groupchat copy [`Hub::group_blocked`]; route failures bounce a
//! `message_error` to the sender. Content messages to users who are offline or inactive are
//! recorded in the push outbox.

use std::collections::BTreeMap;

use cubechat_wire::chat::{dialog_type, is_object_id};
use cubechat_wire::stanza::{
    self, ChatKind, Incoming, PrivacyItem, PrivacyList, ReactionChange, NS_CARBONS, NS_LAST,
    NS_MOBILE_V2, NS_PRIVACY, NS_STANZAS, NS_STATUS_STREAMING,
};
use minidom::Element;

use super::hub::{Hub, UserKey};
use super::util::{
    child, elem, ensure_extra, parse_room_jid, parse_user_jid, set_attr, NS_DISCO_ITEMS, NS_MUC,
    NS_MUC_USER, NS_PING, NS_SESSION,
};
use crate::db::dialogs::{self as dialog_db, DialogRow};
use crate::db::messages::{self as message_db, MessageRow, NewMessage};
use crate::db::{
    self, activity, privacy as privacy_db, push as push_db, users as user_db, DbError,
};

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
    /// A stored message already has this id and another sender or dialog (a resend of the
    /// same message is not an error: see `Hub::save`).
    pub const ID_TAKEN: Bounce = Bounce {
        code: 409,
        condition: "conflict",
        text: "message id already used",
    };
    /// A privacy list blocks the message (§6.8; the cloud's exact condition is unconfirmed).
    pub const BLOCKED: Bounce = Bounce {
        code: 503,
        condition: "service-unavailable",
        text: "blocked by a privacy list",
    };
}

/// An iq error (`type` from the code, legacy `code` attribute included).
#[derive(Debug, Clone, PartialEq, Eq)]
struct IqError {
    code: u16,
    condition: &'static str,
    text: &'static str,
}

impl IqError {
    const BAD_REQUEST: IqError = IqError {
        code: 400,
        condition: "bad-request",
        text: "",
    };
    const NOT_FOUND: IqError = IqError {
        code: 404,
        condition: "item-not-found",
        text: "",
    };
    /// The cloud refuses edits to the default list (§6.8); XEP-0016's condition for a list
    /// in use is `conflict`.
    const IN_USE: IqError = IqError {
        code: 409,
        condition: "conflict",
        text: "Can not modify list while being in use by other session",
    };
}

impl From<DbError> for IqError {
    fn from(e: DbError) -> Self {
        tracing::warn!(error = %e, "database error while answering an iq");
        IqError {
            code: 500,
            condition: "internal-server-error",
            text: "",
        }
    }
}

fn iq_error(req: &Element, from: &str, to: &str, e: &IqError) -> Element {
    let id = req.attr("id").unwrap_or_default();
    let mut iq = elem(
        "iq",
        stanza::NS_CLIENT,
        &[("type", "error"), ("id", id), ("from", from), ("to", to)],
    );
    if let Some(c) = req.children().next() {
        iq.append_child(c.clone());
    }
    let kind = match e.code {
        400 => "modify",
        500 => "wait",
        _ => "cancel",
    };
    let code = e.code.to_string();
    let mut err = elem(
        "error",
        stanza::NS_CLIENT,
        &[("type", kind), ("code", code.as_str())],
    );
    err.append_child(Element::bare(e.condition, NS_STANZAS));
    if !e.text.is_empty() {
        err.append_child(Element::builder("text", NS_STANZAS).append(e.text).build());
    }
    iq.append_child(err);
    iq
}

/// The first item (by `order`) of a list that applies to `jid`: a `jid` item with that
/// value, or a fall-through item without a type. Group and subscription items never match
/// (cubeserver has no roster).
fn first_match<'a>(list: &'a PrivacyList, jid: &str) -> Option<&'a PrivacyItem> {
    list.by_order()
        .into_iter()
        .find(|i| match i.kind.as_deref() {
            None => true,
            Some("jid") => i
                .value
                .as_deref()
                .is_some_and(|v| v.eq_ignore_ascii_case(jid)),
            Some(_) => false,
        })
}

/// Whether `list` blocks `jid` in the given direction: incoming needs a deny item with
/// `<message/>` or no children; outgoing only a deny item with no children (ConnectyCube's
/// two-way block; the four-children form is one-way).
fn blocks(list: Option<&PrivacyList>, jid: &str, incoming: bool) -> bool {
    let Some(item) = list.and_then(|l| first_match(l, jid)) else {
        return false;
    };
    !item.allow && (item.covers_all() || (incoming && item.message))
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
    /// The decision point before a 1-1 message reaches a user: `Ok` delivers, `Err`
    /// bounces. Checks the default privacy lists (§6.8): the recipient's (one-way or two-way
    /// item on the sender's JID) and the sender's (two-way item on the recipient's JID).
    pub fn may_deliver(&self, from: UserKey, to: UserKey) -> Result<(), Bounce> {
        if from == to {
            return Ok(());
        }
        let (theirs, mine) = self.default_lists(from, to)?;
        if blocks(theirs.as_ref(), &self.user_jid(from), true)
            || blocks(mine.as_ref(), &self.user_jid(to), false)
        {
            return Err(Bounce::BLOCKED);
        }
        Ok(())
    }

    /// Whether a groupchat message of `from` silently skips `to`: an item on
    /// `muc.{domain}/{from}` in the recipient's default list, or a two-way item on
    /// `muc.{domain}/{to}` in the sender's.
    pub fn group_blocked(&self, from: UserKey, to: UserKey) -> Result<bool, Bounce> {
        if from == to {
            return Ok(false);
        }
        let (theirs, mine) = self.default_lists(from, to)?;
        let muc = |uid: u64| format!("muc.{}/{uid}", self.domain);
        Ok(blocks(theirs.as_ref(), &muc(from.1), true) || blocks(mine.as_ref(), &muc(to.1), false))
    }

    /// `(recipient's default list, sender's default list)`.
    fn default_lists(
        &self,
        from: UserKey,
        to: UserKey,
    ) -> Result<(Option<PrivacyList>, Option<PrivacyList>), Bounce> {
        Ok(self.db.with(|c| {
            Ok((
                privacy_db::default_list(c, to.0, to.1)?,
                privacy_db::default_list(c, from.0, from.1)?,
            ))
        })?)
    }

    /// Records a push for `recipient` (§6.10) when they are offline or inactive, unless the
    /// message is silent (the callers check), they turned the dialog's notifications off or a
    /// privacy list blocks the sender for them; and one outbox delivery per subscription of
    /// theirs but `apns_voip` (§3.7).
    fn maybe_push(
        &self,
        recipient: UserKey,
        sender: u64,
        dialog_id: Option<&str>,
        message_id: &str,
        content: &PushContent,
    ) {
        if !self.wants_push(recipient) {
            return;
        }
        let (app, uid) = recipient;
        let blocked = self.may_deliver((app, sender), recipient).is_err()
            || self.group_blocked((app, sender), recipient).unwrap_or(true);
        if blocked {
            tracing::debug!(app, recipient = uid, sender, "no push: blocked");
            return;
        }
        let now = db::now();
        let r = self.db.with(|c| {
            let dialog_id = match dialog_id {
                Some(d) => d.to_owned(),
                None => dialog_db::find_private(c, app, uid, sender)?
                    .map(|d| d.id)
                    .unwrap_or_default(),
            };
            if !dialog_id.is_empty() && !dialog_db::notifications_enabled(c, &dialog_id, uid)? {
                return Ok(());
            }
            activity::record_push(
                c,
                app,
                &activity::Push {
                    recipient_id: uid,
                    dialog_id: dialog_id.clone(),
                    message_id: message_id.to_owned(),
                    sender_id: sender,
                    created_at: now,
                },
            )?;
            let subs = push_db::for_user(c, app, uid)?;
            if subs.iter().all(|s| s.channel == "apns_voip") {
                return Ok(());
            }
            let title = user_db::find(c, app, sender)?
                .and_then(|u| u.full_name.or(u.login))
                .unwrap_or_default();
            let universal = content.universal(&dialog_id, message_id, sender, &title);
            let cause = push_db::Cause::Message {
                dialog_id,
                message_id: message_id.to_owned(),
                sender_id: sender,
            };
            for s in subs.iter().filter(|s| s.channel != "apns_voip") {
                let payload = push_db::for_channel(&s.channel, &universal);
                push_db::record(c, s, &cause, &payload, now)?;
            }
            Ok(())
        });
        if let Err(e) = r {
            tracing::warn!(error = %e, "recording a push failed");
        }
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
        let r = stanza::classify(el);
        if let Err(b) = self.may_deliver(origin.key, target) {
            // Typing and markers (the JS SDK auto-sends "delivered") vanish without an error.
            return match r.what {
                Incoming::Typing { .. } | Incoming::Marker { .. } => Ok(()),
                _ => Err(b),
            };
        }
        let is_chat = el.attr("type") == Some("chat");
        match &r.what {
            Incoming::Chat { body } if r.extra.save_to_history => {
                let Some(row) = self.save(el, origin, body, &r.extra, Some(uid), None)? else {
                    return Ok(()); // a resend: stored and routed the first time
                };
                ensure_extra(el, "dialog_id", &row.dialog_id);
                ensure_extra(el, "date_sent", &row.date_sent.to_string());
            }
            // a resend of an unsaved message, an edit or a deletion (the guard also
            // records this one)
            Incoming::Chat { .. } | Incoming::Edit { .. } | Incoming::Delete { .. }
                if !self.first_routing(origin, el, &to) =>
            {
                return Ok(())
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
        // A full JID reaches its resource only once that is available (initial presence
        // sent); otherwise the message is routed like one to the bare JID, so it cannot
        // overtake the offline messages flushed at that presence.
        let direct = resource.filter(|res| self.deliver_available(target, res, el.clone()));
        let delivered = match direct {
            Some(res) => {
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
        if is_chat && pushable(el) {
            let dialog = child(el, "extraParams")
                .and_then(|x| child(x, "dialog_id"))
                .map(|d| d.text());
            let id = el.attr("id").unwrap_or_default().to_owned();
            let content = PushContent::of(el);
            self.maybe_push(target, sender, dialog.as_deref(), &id, &content);
        }
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
                    let Some(row) = self.save(el, origin, body, &r.extra, None, Some(&dialog))?
                    else {
                        return Ok(()); // a resend: stored and routed the first time
                    };
                    ensure_extra(el, "date_sent", &row.date_sent.to_string());
                } else if !self.first_routing(origin, el, &to) {
                    return Ok(()); // a resend of an unsaved message
                }
            }
            // a resent edit or deletion (the send queue resends after a lost ack)
            Incoming::Edit { .. } | Incoming::Delete { .. }
                if !self.first_routing(origin, el, &to) =>
            {
                return Ok(())
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
        let push = pushable(el);
        let content = PushContent::of(el);
        let id = el.attr("id").unwrap_or_default().to_owned();
        for uid in self.audience(&dialog)? {
            if typing && uid == sender {
                continue;
            }
            if uid != sender && self.group_blocked(origin.key, (app, uid))? {
                continue;
            }
            self.send_to_user((app, uid), el, None, true, false);
            if push && uid != sender {
                self.maybe_push((app, uid), sender, Some(&dialog.id), &id, &content);
            }
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

    /// Whether a content message without `save_to_history`, an edit or a deletion is routed
    /// for the first time:
    /// a resend of an ObjectId the sender recently routed to the same address is dropped.
    /// Other ids (e.g. counters that restart) are never taken for resends.
    fn first_routing(&self, origin: &Origin, el: &Element, to: &str) -> bool {
        match el.attr("id").filter(|i| is_object_id(i)) {
            Some(id) => self.note_routed(origin.key, id, &stanza::bare(to).to_lowercase()),
            None => true,
        }
    }

    /// Stores a chat message (`save_to_history=1`) like `POST /chat/Message` does.
    ///
    /// `Ok(None)` when the sender already stored a message with this ObjectId in this dialog:
    /// a resend (the SDK's send queue resends with the same id after a lost
    /// stream-management ack or a restart), which was routed the first time and is dropped.
    /// The same id from another sender or in another dialog bounces ([`Bounce::ID_TAKEN`]).
    fn save(
        &self,
        el: &Element,
        origin: &Origin,
        body: &str,
        extra: &stanza::ExtraParams,
        recipient: Option<u64>,
        dialog: Option<&DialogRow>,
    ) -> Result<Option<MessageRow>, Bounce> {
        let (app, sender) = origin.key;
        let id = el.attr("id").filter(|i| is_object_id(i)).map(str::to_owned);
        let markable = extra.markable || child(el, "markable").is_some();
        let now = db::now_ms();
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
            let prev = id
                .as_deref()
                .map(|i| message_db::find(&tx, i))
                .transpose()?;
            if let Some(prev) = prev.flatten() {
                if prev.sender_id != sender || prev.dialog_id != dialog.id {
                    return Err(Bounce::ID_TAKEN);
                }
                tracing::debug!(id = %prev.id, "resent message dropped");
                return Ok(None);
            }
            let row = message_db::create(
                &tx,
                &NewMessage {
                    id,
                    dialog_id: dialog.id,
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
            Ok(Some(row))
        })
    }

    fn apply_edit(&self, sender: u64, message_id: &str, body: &str) -> Result<(), Bounce> {
        let now = db::now_ms();
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
            if available || unavailable {
                self.presence_changed(origin.key, &origin.resource, available);
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

    /// Kicks every joined resource of `uid` out of a room after `actor` removed them from the
    /// dialog: status 301 (§6.7) with `item/actor@jid`. The kicked resources get the JS 6.1.2
    /// quirks (`<xmlns><code>301</code></xmlns>`, and the `<item>` repeated as a direct child
    /// of `<presence>`, where 6.1.2 looks for it); the other joined occupants a standard
    /// `unavailable` presence with status 301.
    pub fn kick(&self, app: u64, dialog_id: &str, uid: u64, actor: u64) {
        let (kicked, rest) = self.remove_from_room(app, dialog_id, uid);
        if kicked.is_empty() {
            return;
        }
        let from = format!("{}/{uid}", self.room_jid(app, dialog_id));
        let actor_jid = self.user_jid((app, actor));
        let item = || {
            let mut item = elem(
                "item",
                NS_MUC_USER,
                &[("affiliation", "none"), ("role", "none")],
            );
            item.append_child(elem("actor", NS_MUC_USER, &[("jid", &actor_jid)]));
            item
        };
        let status = || elem("status", NS_MUC_USER, &[("code", "301")]);
        for full in kicked {
            let mut p = elem(
                "presence",
                stanza::NS_CLIENT,
                &[("from", &from), ("to", &full), ("type", "unavailable")],
            );
            let mut x = elem("x", NS_MUC_USER, &[]);
            x.append_child(item());
            x.append_child(status());
            let mut quirk = Element::builder("xmlns", NS_MUC_USER).build();
            quirk.append_child(Element::builder("code", NS_MUC_USER).append("301").build());
            x.append_child(quirk);
            p.append_child(x);
            p.append_child(item());
            self.send_presence_to(app, &full, uid, p);
        }
        for (full, other) in rest {
            let mut p = occupant_presence(&from, &full, true);
            if let Some(x) = p.get_child_mut("x", NS_MUC_USER) {
                x.append_child(status());
            }
            self.send_presence_to(app, &full, other, p);
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
            Some(("query", ns)) if ns == NS_PRIVACY && self.is_own(origin, el.attr("to")) => {
                let from = self.user_jid(origin.key);
                match self.privacy_iq(origin, &el) {
                    Ok(q) => iq_result(&id, &from, &full, q),
                    Err(e) => iq_error(&el, &from, &full, &e),
                }
            }
            Some(("query", ns)) if ns == NS_LAST && el.attr("type") == Some("get") => {
                match self.last_activity_iq(origin, &to) {
                    Ok((from, secs)) => {
                        iq_result(&id, &from, &full, Some(stanza::last_activity(secs)))
                    }
                    Err(e) => iq_error(&el, &to, &full, &e),
                }
            }
            Some(("subscribe", ns)) if ns == NS_STATUS_STREAMING => {
                match self.status_streaming_iq(origin, &el) {
                    Ok(()) => iq_result(&id, &to, &full, None),
                    Err(e) => iq_error(&el, &to, &full, &e),
                }
            }
            Some(("mobile", ns)) if ns == NS_MOBILE_V2 => {
                let on = el
                    .children()
                    .next()
                    .and_then(|m| m.attr("enable"))
                    .is_some_and(|v| matches!(v, "true" | "1"));
                self.set_inactive(origin.key, &origin.resource, on);
                iq_result(&id, &to, &full, None)
            }
            _ => iq_unavailable(&el, &to, &full),
        };
        self.send_to(origin.key, &origin.resource, reply);
    }

    /// Whether an iq `to` addresses the sender's own account (missing, or its bare/full JID).
    fn is_own(&self, origin: &Origin, to: Option<&str>) -> bool {
        to.is_none_or(|t| stanza::bare(t).eq_ignore_ascii_case(&self.user_jid(origin.key)))
    }

    /// `jabber:iq:privacy` (XEP-0016 with ConnectyCube semantics, §6.8). Only the default
    /// list is enforced; `<active>` is accepted per session and reported, not enforced.
    fn privacy_iq(&self, origin: &Origin, el: &Element) -> Result<Option<Element>, IqError> {
        let (app, uid) = origin.key;
        let Some(q) = el.children().next() else {
            return Err(IqError::BAD_REQUEST);
        };
        let children: Vec<&Element> = q.children().collect();
        if el.attr("type") == Some("get") {
            return match children.as_slice() {
                [] => {
                    let (names, default) = self.db.with(|c| privacy_db::names(c, app, uid))?;
                    let mut out = elem("query", NS_PRIVACY, &[]);
                    if let Some(a) = self.active_list(origin.key, &origin.resource) {
                        out.append_child(elem("active", NS_PRIVACY, &[("name", &a)]));
                    }
                    if let Some(d) = default {
                        out.append_child(elem("default", NS_PRIVACY, &[("name", &d)]));
                    }
                    for n in names {
                        out.append_child(elem("list", NS_PRIVACY, &[("name", &n)]));
                    }
                    Ok(Some(out))
                }
                [l] if l.name() == "list" => {
                    let name = l.attr("name").ok_or(IqError::BAD_REQUEST)?;
                    let list = self
                        .db
                        .with(|c| privacy_db::get(c, app, uid, name))?
                        .ok_or(IqError::NOT_FOUND)?;
                    let mut out = elem("query", NS_PRIVACY, &[]);
                    out.append_child(list.to_element());
                    Ok(Some(out))
                }
                _ => Err(IqError::BAD_REQUEST),
            };
        }
        let [c] = children.as_slice() else {
            return Err(IqError::BAD_REQUEST);
        };
        let name = c.attr("name").filter(|n| !n.is_empty());
        match c.name() {
            "default" => {
                if !self
                    .db
                    .with(|db| privacy_db::set_default(db, app, uid, name))?
                {
                    return Err(IqError::NOT_FOUND);
                }
            }
            "active" => {
                if let Some(n) = name {
                    if self
                        .db
                        .with(|db| privacy_db::get(db, app, uid, n))?
                        .is_none()
                    {
                        return Err(IqError::NOT_FOUND);
                    }
                }
                self.set_active_list(origin.key, &origin.resource, name);
            }
            "list" => {
                let name = name.ok_or(IqError::BAD_REQUEST)?;
                let list = match c.children().next() {
                    None => None,
                    Some(_) => Some(PrivacyList::from_element(c).ok_or(IqError::BAD_REQUEST)?),
                };
                let (_, default) = self.db.with(|db| privacy_db::names(db, app, uid))?;
                if default.as_deref() == Some(name) {
                    return Err(IqError::IN_USE);
                }
                if let Some(list) = list {
                    let now = db::now();
                    self.db
                        .with(|db| privacy_db::put(db, app, uid, &list, now))?;
                } else if !self.db.with(|db| privacy_db::delete(db, app, uid, name))? {
                    return Err(IqError::NOT_FOUND);
                }
            }
            _ => return Err(IqError::BAD_REQUEST),
        }
        Ok(None)
    }

    /// XEP-0012 for a user JID: `(bare JID, seconds)`.
    fn last_activity_iq(&self, origin: &Origin, to: &str) -> Result<(String, u64), IqError> {
        let (uid, app, _) = parse_user_jid(to, &self.domain).ok_or(IqError::NOT_FOUND)?;
        if app != origin.key.0 {
            return Err(IqError::NOT_FOUND);
        }
        let secs = self
            .last_activity_seconds((app, uid))?
            .ok_or(IqError::NOT_FOUND)?;
        Ok((self.user_jid((app, uid)), secs))
    }

    /// `status_streaming` subscribe/unsubscribe (§6.9).
    fn status_streaming_iq(&self, origin: &Origin, el: &Element) -> Result<(), IqError> {
        if el.attr("type") != Some("set") {
            return Err(IqError::BAD_REQUEST);
        }
        let sub = el.children().next().ok_or(IqError::BAD_REQUEST)?;
        let jid = sub.attr("user_jid").ok_or(IqError::BAD_REQUEST)?;
        let (uid, app, _) = parse_user_jid(jid, &self.domain).ok_or(IqError::NOT_FOUND)?;
        if app != origin.key.0 || self.db.with(|c| user_db::find(c, app, uid))?.is_none() {
            return Err(IqError::NOT_FOUND);
        }
        let on = !matches!(sub.attr("enable"), Some("false" | "0"));
        self.watch(origin.key, &origin.resource, (app, uid), on);
        Ok(())
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
        let Ok(audience) = self.audience(dialog) else {
            return;
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
        let silent = row
            .custom
            .get("silent")
            .is_some_and(|v| matches!(v.trim(), "1" | "true"));
        if !silent {
            let content = PushContent {
                text: row.body.clone().unwrap_or_default(),
                has_attachments: !row.attachments.is_empty(),
                custom: row
                    .custom
                    .iter()
                    .filter(|(k, _)| !stanza::is_control_key(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            };
            for uid in self.audience(dialog).unwrap_or_default() {
                if uid != row.sender_id {
                    self.maybe_push(
                        (dialog.app_id, uid),
                        row.sender_id,
                        Some(&dialog.id),
                        &row.id,
                        &content,
                    );
                }
            }
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
        // `dialog_id` is a control key the extraParams writer leaves out of the custom
        // parameters; ConnectyCube sends it (e.g. with `dialog/NEW` notifications).
        if let Some(d) = params.get("dialog_id").filter(|d| !d.trim().is_empty()) {
            ensure_extra(&mut el, "dialog_id", d);
        }
        set_attr(&mut el, "from", &self.user_jid((app, sender)));
        self.deliver_user(key, &el, true);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn system_push_keeps_the_dialog_id() {
        let hub = Hub::new(db::Db::open(":memory:").unwrap(), "chat");
        let mut core = hub.bind((1, 5), Some("phone"));
        hub.presence_changed((1, 5), "phone", true);
        let params = BTreeMap::from([
            ("body".to_owned(), "dialog/NEW".to_owned()),
            ("dialog_id".to_owned(), "d1".to_owned()),
            ("k".to_owned(), "v".to_owned()),
        ]);
        hub.push_system(1, 2, 5, "5f00000000000000000000aa", &params);
        let el = core.rx.try_recv().unwrap();
        let r = stanza::classify(&el);
        assert_eq!(r.extra.dialog_id.as_deref(), Some("d1"));
        assert_eq!(r.extra.custom.get("k").map(String::as_str), Some("v"));
        assert_eq!(
            r.extra.module_identifier.as_deref(),
            Some(stanza::SYSTEM_MODULE)
        );
        assert!(matches!(r.what, Incoming::System { ref body } if body == "dialog/NEW"));
        hub.end(core);
    }
}

/// What a chat push says: the text, whether there are attachments, the custom parameters.
#[derive(Debug, Clone, Default)]
struct PushContent {
    text: String,
    has_attachments: bool,
    custom: BTreeMap<String, String>,
}

impl PushContent {
    fn of(el: &Element) -> Self {
        let r = stanza::classify(el);
        let text = match &r.what {
            Incoming::Chat { body } => body.clone(),
            _ => String::new(),
        };
        Self {
            text,
            has_attachments: !r.extra.attachments.is_empty(),
            custom: r.extra.custom,
        }
    }

    /// The universal payload (protocol reference §3.7): `message` (or "Attachment"),
    /// `dialog_id`, `message_id`, `user_id` (the sender, as a string), `title` (the sender's
    /// name, when known) and the custom parameters (never overriding those).
    fn universal(
        &self,
        dialog_id: &str,
        message_id: &str,
        sender: u64,
        title: &str,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        for (k, v) in &self.custom {
            out.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
        let message = if self.text.is_empty() && self.has_attachments {
            "Attachment".to_owned()
        } else {
            self.text.clone()
        };
        out.insert("message".into(), message.into());
        out.insert("dialog_id".into(), dialog_id.into());
        out.insert("message_id".into(), message_id.into());
        out.insert("user_id".into(), sender.to_string().into());
        if title.is_empty() {
            out.remove("title");
        } else {
            out.insert("title".into(), title.into());
        }
        out
    }
}

/// A chat message with content (body or attachments; not typing, markers, edits...),
/// not `silent`: the kind that produces a push.
fn pushable(el: &Element) -> bool {
    let r = stanza::classify(el);
    match r.what {
        Incoming::Chat { body } => {
            !r.extra.silent && (!body.is_empty() || !r.extra.attachments.is_empty())
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod privacy_tests {
    use std::sync::Arc;

    use super::*;
    use crate::db::users::UserRow;
    use crate::db::Db;

    fn hub_with_users(n: usize) -> (Arc<Hub>, Vec<u64>) {
        let db = Db::open(":memory:").unwrap();
        let ids = (0..n)
            .map(|i| {
                db.with(|c| {
                    user_db::insert(
                        c,
                        &UserRow {
                            app_id: 1,
                            login: Some(format!("u{i}")),
                            created_at: db::now_ms() - 100_000,
                            ..UserRow::default()
                        },
                    )
                })
                .unwrap()
                .id
            })
            .collect();
        (Arc::new(Hub::new(db, "chat")), ids)
    }

    fn iq(hub: &Hub, core: &mut super::super::hub::SessionCore, kind: &str, q: &str) -> Element {
        let el: Element = format!("<iq xmlns='jabber:client' type='{kind}' id='q1'>{q}</iq>")
            .parse()
            .unwrap();
        let origin = Origin {
            key: core.key,
            resource: core.resource.clone(),
        };
        hub.route(&origin, el);
        core.rx.try_recv().unwrap()
    }

    fn set_list(hub: &Hub, core: &mut super::super::hub::SessionCore, items: &str) -> Element {
        iq(
            hub,
            core,
            "set",
            &format!("<query xmlns='jabber:iq:privacy'><list name='bl'>{items}</list></query>"),
        )
    }

    fn code(e: &Element) -> Option<String> {
        child(e, "error")
            .and_then(|e| e.attr("code"))
            .map(str::to_owned)
    }

    #[test]
    fn blocks_reads_direction_from_children() {
        let one_way = PrivacyList {
            name: "l".into(),
            items: vec![PrivacyItem::deny_jid("5-1@chat", 1, true)],
        };
        assert!(blocks(Some(&one_way), "5-1@chat", true));
        assert!(
            !blocks(Some(&one_way), "5-1@chat", false),
            "I can still write"
        );
        assert!(!blocks(Some(&one_way), "6-1@chat", true));
        let two_way = PrivacyList {
            name: "l".into(),
            items: vec![PrivacyItem::deny_jid("5-1@chat", 1, false)],
        };
        assert!(blocks(Some(&two_way), "5-1@chat", true));
        assert!(blocks(Some(&two_way), "5-1@chat", false));
        let allowed_first = PrivacyList {
            name: "l".into(),
            items: vec![
                PrivacyItem::deny_jid("5-1@chat", 2, false),
                PrivacyItem {
                    kind: Some("jid".into()),
                    value: Some("5-1@chat".into()),
                    allow: true,
                    order: 1,
                    ..PrivacyItem::default()
                },
            ],
        };
        assert!(
            !blocks(Some(&allowed_first), "5-1@chat", true),
            "order decides"
        );
        let presence_only = PrivacyList {
            name: "l".into(),
            items: vec![PrivacyItem {
                presence_in: true,
                ..PrivacyItem::deny_jid("5-1@chat", 1, false)
            }],
        };
        assert!(!blocks(Some(&presence_only), "5-1@chat", true));
        assert!(!blocks(None, "5-1@chat", true));
    }

    #[tokio::test]
    async fn privacy_iqs_and_enforcement() {
        let (hub, ids) = hub_with_users(3);
        let (a, b, c) = ((1, ids[0]), (1, ids[1]), (1, ids[2]));
        let mut ca = hub.bind(a, None);
        let bj = hub.user_jid(b);
        let cj = hub.user_jid(c);

        // names of nothing; empty list refused; unknown list not found
        let r = iq(&hub, &mut ca, "get", "<query xmlns='jabber:iq:privacy'/>");
        assert_eq!(r.attr("type"), Some("result"));
        assert_eq!(child(&r, "query").unwrap().children().count(), 0);
        let r = iq(
            &hub,
            &mut ca,
            "set",
            "<query xmlns='jabber:iq:privacy'><list name='bl'/></query>",
        );
        assert_eq!(code(&r).as_deref(), Some("404"), "delete of a missing list");
        let r = iq(
            &hub,
            &mut ca,
            "get",
            "<query xmlns='jabber:iq:privacy'><list name='nope'/></query>",
        );
        assert_eq!(code(&r).as_deref(), Some("404"));

        // a blocks b one way and c two ways (JS interleaved items)
        let items = format!(
            "<item type='jid' value='{bj}' action='deny' order='1'><message/><presence-in/><presence-out/><iq/></item>\
             <item type='jid' value='muc.chat/{}' action='deny' order='2'><message/><presence-in/><presence-out/><iq/></item>\
             <item type='jid' value='{cj}' action='deny' order='3'/>\
             <item type='jid' value='muc.chat/{}' action='deny' order='4'/>",
            b.1, c.1
        );
        assert_eq!(set_list(&hub, &mut ca, &items).attr("type"), Some("result"));
        assert!(hub.may_deliver(b, a).is_ok(), "not the default yet");
        let r = iq(
            &hub,
            &mut ca,
            "set",
            "<query xmlns='jabber:iq:privacy'><default name='bl'/></query>",
        );
        assert_eq!(r.attr("type"), Some("result"));
        assert_eq!(hub.may_deliver(b, a), Err(Bounce::BLOCKED));
        assert!(
            hub.may_deliver(a, b).is_ok(),
            "one-way: a still writes to b"
        );
        assert_eq!(hub.may_deliver(c, a), Err(Bounce::BLOCKED));
        assert_eq!(hub.may_deliver(a, c), Err(Bounce::BLOCKED), "two-way");
        assert!(hub.may_deliver(b, c).is_ok());
        assert!(hub.group_blocked(b, a).unwrap());
        assert!(!hub.group_blocked(a, b).unwrap());
        assert!(hub.group_blocked(a, c).unwrap());
        assert!(!hub.group_blocked(b, c).unwrap());

        // names and the list in stored order
        let r = iq(&hub, &mut ca, "get", "<query xmlns='jabber:iq:privacy'/>");
        let q = child(&r, "query").unwrap();
        let names: Vec<(String, String)> = q
            .children()
            .map(|c| (c.name().to_owned(), c.attr("name").unwrap().to_owned()))
            .collect();
        assert_eq!(
            names,
            [
                ("default".into(), "bl".into()),
                ("list".into(), "bl".into())
            ]
        );
        let r = iq(
            &hub,
            &mut ca,
            "get",
            "<query xmlns='jabber:iq:privacy'><list name='bl'/></query>",
        );
        let list =
            PrivacyList::from_element(child(child(&r, "query").unwrap(), "list").unwrap()).unwrap();
        assert_eq!(list.items.len(), 4);
        assert_eq!(list.items[0].value.as_deref(), Some(bj.as_str()));
        assert_eq!(list.items[2].value.as_deref(), Some(cj.as_str()));

        // the default list cannot be edited or deleted while in use
        let r = set_list(
            &hub,
            &mut ca,
            &format!("<item type='jid' value='{bj}' action='deny' order='1'/>"),
        );
        assert_eq!(code(&r).as_deref(), Some("409"));
        assert!(child(child(&r, "error").unwrap(), "conflict").is_some());
        let r = iq(
            &hub,
            &mut ca,
            "set",
            "<query xmlns='jabber:iq:privacy'><list name='bl'/></query>",
        );
        assert_eq!(code(&r).as_deref(), Some("409"));

        // decline → update → set default
        let r = iq(
            &hub,
            &mut ca,
            "set",
            "<query xmlns='jabber:iq:privacy'><default/></query>",
        );
        assert_eq!(r.attr("type"), Some("result"));
        assert!(hub.may_deliver(b, a).is_ok());
        let r = set_list(
            &hub,
            &mut ca,
            &format!("<item type='jid' value='{bj}' action='deny' order='1'/>"),
        );
        assert_eq!(r.attr("type"), Some("result"));
        let r = iq(
            &hub,
            &mut ca,
            "set",
            "<query xmlns='jabber:iq:privacy'><default name='bl'/></query>",
        );
        assert_eq!(r.attr("type"), Some("result"));
        assert_eq!(hub.may_deliver(a, b), Err(Bounce::BLOCKED), "now two-way");
        assert!(hub.may_deliver(c, a).is_ok(), "c is no longer listed");

        // bad requests; default to a missing list
        let r = iq(
            &hub,
            &mut ca,
            "set",
            "<query xmlns='jabber:iq:privacy'><default name='zzz'/></query>",
        );
        assert_eq!(code(&r).as_deref(), Some("404"));
        let r = set_list(&hub, &mut ca, "<item type='jid' value='x' action='block'/>");
        assert_eq!(code(&r).as_deref(), Some("400"));

        // active list: per session, reported
        let r = iq(
            &hub,
            &mut ca,
            "set",
            "<query xmlns='jabber:iq:privacy'><active name='bl'/></query>",
        );
        assert_eq!(r.attr("type"), Some("result"));
        let r = iq(&hub, &mut ca, "get", "<query xmlns='jabber:iq:privacy'/>");
        assert_eq!(
            child(child(&r, "query").unwrap(), "active")
                .unwrap()
                .attr("name"),
            Some("bl")
        );
        hub.end(ca);
    }

    #[tokio::test]
    async fn last_activity_subscriptions_and_push_targets() {
        let (hub, ids) = hub_with_users(2);
        let (a, b) = ((1, ids[0]), (1, ids[1]));
        assert!(hub.last_activity_seconds(a).unwrap().unwrap() >= 100);
        assert_eq!(hub.last_activity_seconds((1, 999)).unwrap(), None);
        let mut ca = hub.bind(a, None);
        let bj = hub.user_jid(b);
        let r = iq(
            &hub,
            &mut ca,
            "set",
            &format!("<subscribe xmlns='{NS_STATUS_STREAMING}' user_jid='{bj}' enable='true'/>"),
        );
        assert_eq!(r.attr("type"), Some("result"));
        let r = iq(
            &hub,
            &mut ca,
            "set",
            &format!(
                "<subscribe xmlns='{NS_STATUS_STREAMING}' user_jid='999-1@chat' enable='true'/>"
            ),
        );
        assert_eq!(code(&r).as_deref(), Some("404"));

        assert!(hub.wants_push(b), "offline");
        let cb = hub.bind(b, None);
        let ev = ca.rx.try_recv().unwrap();
        assert_eq!(ev.attr("type"), Some("result"));
        assert_eq!(ev.attr("from"), Some(bj.as_str()));
        assert_eq!(child(&ev, "query").unwrap().attr("seconds"), Some("0"));
        assert_eq!(hub.last_activity_seconds(b).unwrap(), Some(0));
        assert!(!hub.wants_push(b));
        hub.set_inactive(b, &cb.resource, true);
        assert!(hub.wants_push(b), "inactive");
        hub.set_inactive(b, &cb.resource, false);
        assert!(!hub.wants_push(b));

        let r = iq(&hub, &mut ca, "get", "<query xmlns='jabber:iq:last'/>");
        // no `to`: the server itself is not a user
        assert_eq!(r.attr("type"), Some("error"));

        hub.end(cb);
        let ev = ca.rx.try_recv().unwrap();
        assert_eq!(child(&ev, "query").unwrap().attr("seconds"), Some("1"));
        assert_eq!(hub.last_activity_seconds(b).unwrap(), Some(1));

        // unsubscribed: no more events
        iq(
            &hub,
            &mut ca,
            "set",
            &format!("<subscribe xmlns='{NS_STATUS_STREAMING}' user_jid='{bj}' enable='false'/>"),
        );
        let cb = hub.bind(b, None);
        assert!(ca.rx.try_recv().is_err());
        hub.end(cb);
        hub.end(ca);
    }
}
