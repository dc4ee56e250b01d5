//! Last activity (XEP-0012) and ConnectyCube's status streaming (§6.9), Tigase mobile mode
//! for active/inactive (§6.10), and group presence: occupant events, kicks and the online
//! occupants query (§6.7).
//!
//! Status-streaming subscriptions and the active/inactive mark are remembered and sent again
//! after every new session (the JS SDK loses them after a reconnect).

use minidom::Element;

use cubechat_wire::stanza::{room_jid, user_id_of, user_jid};

use super::engine::{lock, nc, ChatShared};
use super::util::check_dialog_id;
use super::ChatEvent;
use crate::error::{Error, Result};

pub(crate) const NS_LAST: &str = "jabber:iq:last";
const NS_STATUS_STREAMING: &str = "https://connectycube.com/protocol/status_streaming";
const NS_MOBILE_V2: &str = "http://tigase.org/protocol/mobile#v2";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";

fn check_user(user_id: u64) -> Result<()> {
    if user_id == 0 {
        return Err(Error::InvalidInput("user id must be positive".into()));
    }
    Ok(())
}

/// `<subscribe xmlns=status_streaming user_jid enable/>`
fn status_streaming(jid: &str, enable: bool) -> Element {
    Element::builder("subscribe", NS_STATUS_STREAMING)
        .attr(nc("user_jid"), jid)
        .attr(nc("enable"), if enable { "true" } else { "false" })
        .build()
}

/// `<mobile xmlns=tigase mobile v2 enable/>`; `enable="true"` means inactive.
fn mobile(inactive: bool) -> Element {
    Element::builder("mobile", NS_MOBILE_V2)
        .attr(nc("enable"), if inactive { "true" } else { "false" })
        .build()
}

/// `seconds` of a `jabber:iq:last` query.
fn seconds_of(q: &Element) -> Option<u64> {
    if !q.is("query", NS_LAST) {
        return None;
    }
    q.attr("seconds")?.trim().parse().ok()
}

/// A last-activity push: an iq (any type, not a reply we wait for) from a user with a
/// `jabber:iq:last` query carrying `seconds`.
pub(crate) fn last_push(from: Option<&str>, payload: &Element) -> Option<ChatEvent> {
    let user_id = user_id_of(from?)?;
    let seconds = seconds_of(payload)?;
    Some(ChatEvent::LastActivity { user_id, seconds })
}

/// What a new session sends again: status-streaming subscriptions and the mobile mark.
/// Forgets the occupants of the previous session (rooms are re-joined and list them anew).
pub(crate) fn on_reset(shared: &ChatShared, app_id: u64, domain: &str) -> Vec<Element> {
    lock(&shared.occupants).clear();
    let mut out = Vec::new();
    if let Some(inactive) = *lock(&shared.inactive) {
        out.push(super::iq::build("set", None, "markActive", mobile(inactive)).1);
    }
    for u in lock(&shared.activity_subs).iter() {
        let p = status_streaming(&user_jid(*u, app_id, domain), true);
        out.push(super::iq::build("set", None, "statusStreaming", p).1);
    }
    out
}

/// Forgets subscriptions and the mobile mark (`destroy_chat`).
pub(crate) fn forget(shared: &ChatShared) {
    lock(&shared.activity_subs).clear();
    *lock(&shared.inactive) = None;
    lock(&shared.occupants).clear();
}

/// Status codes of a room presence (`<x xmlns=muc#user><status code/>`).
pub(super) fn status_codes(p: &Element) -> Vec<String> {
    p.get_child("x", NS_MUC_USER)
        .map(|x| {
            x.children()
                .filter(|c| c.name() == "status")
                .filter_map(|c| c.attr("code").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Records another occupant entering (`present`) or leaving a room (an inbound
/// [`Effect::Occupant`](super::inbound::Effect)): a join is told only when the occupant is new
/// to the room's list (a presence update of a known occupant is no second join), a leave
/// always.
pub(super) fn occupant(
    shared: &ChatShared,
    dialog_id: String,
    user_id: u64,
    present: bool,
) -> Option<ChatEvent> {
    let mut occ = lock(&shared.occupants);
    let set = occ.entry(dialog_id.clone()).or_default();
    if !present {
        set.remove(&user_id);
        Some(ChatEvent::OccupantLeft { dialog_id, user_id })
    } else if set.insert(user_id) {
        Some(ChatEvent::OccupantJoined { dialog_id, user_id })
    } else {
        None
    }
}

/// This user is out of a room: its occupants are forgotten; a kick forgets the room too
/// (it is not re-joined) and is told.
pub(super) fn self_left(
    shared: &ChatShared,
    dialog_id: &str,
    kicked: Option<ChatEvent>,
) -> Option<ChatEvent> {
    lock(&shared.occupants).remove(dialog_id);
    if kicked.is_some() {
        lock(&shared.rooms).remove(dialog_id);
    }
    kicked
}

impl ChatShared {
    /// The session side of `ChatSession::last_activity`.
    pub(crate) async fn last_activity(&self, user_id: u64) -> Result<u64> {
        check_user(user_id)?;
        let to = user_jid(user_id, self.cfg.app_id, self.cfg.chat.domain.trim());
        let q = Element::bare("query", NS_LAST);
        let reply = self.iq_request("get", Some(&to), "lastActivity", q).await?;
        reply
            .as_ref()
            .and_then(seconds_of)
            .ok_or_else(|| Error::Protocol("last activity reply without seconds".into()))
    }

    /// The session side of `ChatSession::subscribe_last_activity`.
    pub(crate) async fn subscribe_last_activity(&self, user_id: u64) -> Result<()> {
        check_user(user_id)?;
        lock(&self.activity_subs).insert(user_id);
        let r = self.send_status_streaming(user_id, true).await;
        if matches!(
            r,
            Err(Error::Server { .. } | Error::Forbidden(_) | Error::NotFound(_))
        ) {
            lock(&self.activity_subs).remove(&user_id);
        }
        r
    }

    /// The session side of `ChatSession::unsubscribe_last_activity`.
    pub(crate) async fn unsubscribe_last_activity(&self, user_id: u64) -> Result<()> {
        check_user(user_id)?;
        lock(&self.activity_subs).remove(&user_id);
        self.send_status_streaming(user_id, false).await
    }

    /// The session side of `ChatSession::last_activity_subscriptions`.
    pub(crate) fn last_activity_subscriptions(&self) -> Vec<u64> {
        lock(&self.activity_subs).iter().copied().collect()
    }

    async fn send_status_streaming(&self, user_id: u64, enable: bool) -> Result<()> {
        let jid = user_jid(user_id, self.cfg.app_id, self.cfg.chat.domain.trim());
        let p = status_streaming(&jid, enable);
        self.iq_request("set", None, "statusStreaming", p)
            .await
            .map(|_| ())
    }

    /// The session side of `ChatSession::mark_active`.
    pub(crate) fn mark_active(&self) -> Result<()> {
        self.set_inactive(false)
    }

    /// The session side of `ChatSession::mark_inactive`.
    pub(crate) fn mark_inactive(&self) -> Result<()> {
        self.set_inactive(true)
    }

    fn set_inactive(&self, inactive: bool) -> Result<()> {
        *lock(&self.inactive) = Some(inactive);
        let el = super::iq::build("set", None, "markActive", mobile(inactive)).1;
        match self.send(el, None) {
            Err(Error::ChatNotConnected) => Ok(()), // applied when connected
            r => r,
        }
    }

    /// The session side of `ChatSession::room_occupants`.
    pub(crate) async fn room_occupants(&self, dialog_id: &str) -> Result<Vec<u64>> {
        check_dialog_id(dialog_id)?;
        let room = room_jid(self.cfg.app_id, dialog_id, self.cfg.chat.domain.trim());
        let q = Element::bare("query", NS_DISCO_ITEMS);
        let reply = self
            .iq_request("get", Some(&room), "muc_disco_items", q)
            .await?;
        Ok(occupants_of(reply.as_ref()))
    }
}

/// User ids of `<item jid="{room}/{userId}"/>` entries, in order, without duplicates.
fn occupants_of(reply: Option<&Element>) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for item in reply
        .into_iter()
        .flat_map(|q| q.children())
        .filter(|c| c.name() == "item")
    {
        let Some(id) = item
            .attr("jid")
            .and_then(|j| j.split_once('/'))
            .and_then(|(_, nick)| nick.parse().ok())
            .filter(|u| *u != 0)
        else {
            continue;
        };
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cubechat_wire::stanza as wire;

    fn el(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    #[test]
    fn last_activity_pushes() {
        let q = el("<query xmlns='jabber:iq:last' seconds='42'/>");
        assert_eq!(
            last_push(Some("9-7@chat"), &q),
            Some(ChatEvent::LastActivity {
                user_id: 9,
                seconds: 42
            })
        );
        assert_eq!(last_push(None, &q), None);
        assert_eq!(last_push(Some("chat"), &q), None);
        assert_eq!(
            last_push(Some("9-7@chat"), &el("<query xmlns='jabber:iq:last'/>")),
            None
        );
        assert_eq!(
            last_push(
                Some("9-7@chat"),
                &el("<query xmlns='jabber:iq:roster' seconds='1'/>")
            ),
            None
        );
    }

    #[test]
    fn stanzas_have_the_documented_shape() {
        let s = String::from(&status_streaming("9-7@chat", true));
        assert!(
            s.contains("xmlns='https://connectycube.com/protocol/status_streaming'"),
            "{s}"
        );
        assert!(
            s.contains("user_jid='9-7@chat'") && s.contains("enable='true'"),
            "{s}"
        );
        let m = mobile(true);
        assert!(m.is("mobile", "http://tigase.org/protocol/mobile#v2"));
        assert_eq!(m.attr("enable"), Some("true"));
        assert_eq!(mobile(false).attr("enable"), Some("false"));
    }

    #[test]
    fn resent_after_reset() {
        let shared = super::super::engine::test_shared();
        assert!(on_reset(&shared, 7, "chat").is_empty());
        lock(&shared.activity_subs).insert(9);
        lock(&shared.activity_subs).insert(4);
        *lock(&shared.inactive) = Some(true);
        let out = on_reset(&shared, 7, "chat");
        assert_eq!(out.len(), 3);
        assert!(out[0].attr("id").unwrap().ends_with(":markActive"));
        assert_eq!(
            out[0]
                .get_child("mobile", NS_MOBILE_V2)
                .unwrap()
                .attr("enable"),
            Some("true")
        );
        let jids: Vec<_> = out[1..]
            .iter()
            .map(|e| {
                let s = e.get_child("subscribe", NS_STATUS_STREAMING).unwrap();
                assert_eq!(s.attr("enable"), Some("true"));
                s.attr("user_jid").unwrap().to_owned()
            })
            .collect();
        assert_eq!(jids, ["4-7@chat", "9-7@chat"]);
        forget(&shared);
        assert!(on_reset(&shared, 7, "chat").is_empty());
    }

    /// What the engine does with a room presence: the inbound function, then its occupant
    /// effects carried out on the session's state.
    fn room_event(shared: &ChatShared, me: u64, p: &Element) -> Option<ChatEvent> {
        use super::super::inbound::{inbound, Context, Effect};
        let cx = Context {
            me,
            my_bare: "5-7@chat",
            auto_delivered: false,
            now: 0,
        };
        let mut told = None;
        for e in inbound(&cx, p.clone()) {
            match e {
                Effect::Occupant {
                    dialog_id,
                    user_id,
                    present,
                } => told = occupant(shared, dialog_id, user_id, present),
                Effect::SelfLeft { dialog_id, kicked } => {
                    told = self_left(shared, &dialog_id, kicked)
                }
                _ => {}
            }
        }
        told
    }

    #[test]
    fn occupant_events() {
        let shared = super::super::engine::test_shared();
        let p = |from: &str, kind: Option<&str>| {
            let mut b = Element::builder("presence", wire::NS_CLIENT).attr(nc("from"), from);
            if let Some(k) = kind {
                b = b.attr(nc("type"), k);
            }
            b.build()
        };
        let joined = ChatEvent::OccupantJoined {
            dialog_id: "d".into(),
            user_id: 6,
        };
        assert_eq!(
            room_event(&shared, 5, &p("7_d@muc.chat/6", None)),
            Some(joined.clone())
        );
        // A presence update of a known occupant is no second join.
        assert_eq!(room_event(&shared, 5, &p("7_d@muc.chat/6", None)), None);
        assert_eq!(
            room_event(&shared, 5, &p("7_d@muc.chat/6", Some("unavailable"))),
            Some(ChatEvent::OccupantLeft {
                dialog_id: "d".into(),
                user_id: 6
            })
        );
        assert_eq!(
            room_event(&shared, 5, &p("7_d@muc.chat/6", None)),
            Some(joined)
        );
        // Self presences, errors and non-room presences are no occupant events.
        assert_eq!(room_event(&shared, 5, &p("7_d@muc.chat/5", None)), None);
        assert_eq!(
            room_event(&shared, 5, &p("7_d@muc.chat/5", Some("unavailable"))),
            None
        );
        assert_eq!(
            room_event(&shared, 5, &p("7_d@muc.chat/6", Some("error"))),
            None
        );
        assert_eq!(room_event(&shared, 5, &p("6-7@chat/r", None)), None);
        // A kick: status 301, the actor inside <x><item> (standard) or <item> (JS quirk).
        lock(&shared.rooms).insert("d".into());
        let kick = el("<presence xmlns='jabber:client' from='7_d@muc.chat/5' type='unavailable'>\
            <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'>\
            <actor jid='8-7@chat/r'/></item><status code='301'/><status code='110'/></x></presence>");
        assert_eq!(
            room_event(&shared, 5, &kick),
            Some(ChatEvent::Kicked {
                dialog_id: "d".into(),
                initiator_id: Some(8)
            })
        );
        assert!(lock(&shared.rooms).is_empty());
        let kick = el(
            "<presence xmlns='jabber:client' from='7_d@muc.chat/5' type='unavailable'>\
            <item xmlns='jabber:client'><actor nick='9'/></item>\
            <x xmlns='http://jabber.org/protocol/muc#user'><status code='301'/></x></presence>",
        );
        assert_eq!(
            room_event(&shared, 5, &kick),
            Some(ChatEvent::Kicked {
                dialog_id: "d".into(),
                initiator_id: Some(9)
            })
        );
    }

    #[test]
    fn occupants_from_disco_items() {
        let q = el("<query xmlns='http://jabber.org/protocol/disco#items'>\
            <item jid='7_d@muc.chat/5'/><item jid='7_d@muc.chat/6'/><item jid='7_d@muc.chat/x'/>\
            <item jid='7_d@muc.chat/5'/></query>");
        assert_eq!(occupants_of(Some(&q)), vec![5, 6]);
        assert!(occupants_of(None).is_empty());
    }
}
