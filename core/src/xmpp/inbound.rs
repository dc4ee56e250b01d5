//! Inbound as a pure function: [`inbound_stanza`] maps one stanza the stream delivered to what
//! the session must do about it ([`Effect`]s: events for the app, replies to send, answers to
//! route, room bookkeeping). No I/O, no locks, no awaits, no clock and no randomness: what it
//! needs to know comes in a [`Context`]. The engine task calls it for every stanza and then
//! carries the effects out (`Engine::carry_out`), where the session's state (recent ids,
//! pending iq requests and joins, room occupants) lives.

use minidom::Element;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::{Message, MessageType};
use tokio_xmpp::Stanza;

use cubechat_wire::stanza::{self as wire, bare, room_of, user_id_of, ExtraParams, Incoming};

use super::iq::Reply;
use super::{ChatEvent, ChatMessage, SystemMessage};

const NS_PING: &str = "urn:xmpp:ping";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";

/// What the session knows when a stanza arrives.
#[derive(Debug, Clone)]
pub(crate) struct Context<'a> {
    /// This user's id.
    pub(crate) me: u64,
    /// This user's bare JID (carbons are accepted from it only).
    pub(crate) my_bare: &'a str,
    /// `ChatOptions::auto_delivered`: answer markable messages with a delivered marker.
    pub(crate) auto_delivered: bool,
    /// Now, in Unix seconds (the date of a message that carries none).
    pub(crate) now: i64,
}

/// One thing the session must do about an inbound stanza, in order.
#[derive(Debug, PartialEq)]
pub(crate) enum Effect {
    /// Tell the app.
    Emit(ChatEvent),
    /// Tell the app unless a message with this id was seen lately (the resend of a resumed
    /// stream, offline storage after a fresh login); when it is new, send `receipt` first.
    EmitOnce {
        /// The message id the repeat check uses.
        id: String,
        /// The event.
        event: ChatEvent,
        /// The delivered marker this message asks for.
        receipt: Option<Receipt>,
    },
    /// Send this stanza back (the answer to a server's iq).
    Reply(Element),
    /// The answer to the iq request `id`; when no request waits for it, `otherwise` is told
    /// to the app (a last-activity push sent as a result).
    Answer {
        /// The request id.
        id: String,
        /// The answer.
        reply: Reply,
        /// The event to tell when no request waits.
        otherwise: Option<ChatEvent>,
    },
    /// Another occupant entered (`present`) or left a room: a join is told only when the
    /// occupant is new to the room's list, a leave always.
    Occupant {
        /// The room's dialog.
        dialog_id: String,
        /// The occupant.
        user_id: u64,
        /// In the room now.
        present: bool,
    },
    /// This user is out of a room: forget its occupants; when kicked, forget the room too
    /// and tell the app.
    SelfLeft {
        /// The room's dialog.
        dialog_id: String,
        /// `Some(ChatEvent::Kicked)` when this user was kicked or banned.
        kicked: Option<ChatEvent>,
    },
    /// A presence of this user from a room, which may answer a pending `join_room`.
    JoinAnswer {
        /// The room's dialog.
        dialog_id: String,
        /// It answers the join whatever the join's id (available, an error, a removal).
        any_join: bool,
        /// Its id: an `unavailable` one answers only the join it echoes.
        echo_id: Option<String>,
        /// The join's outcome.
        result: crate::error::Result<()>,
    },
}

/// A delivered marker to send for a received message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Receipt {
    /// The message's sender.
    pub(crate) to_user: u64,
    /// The message.
    pub(crate) message_id: String,
    /// Its dialog.
    pub(crate) dialog_id: String,
}

/// What the session must do about `el`, a top-level element of the stream, read as an
/// element (the tests' way in; the engine hands typed stanzas to `inbound_stanza`). Elements that
/// are not stanzas (stream management's `<r/>` and `<a/>`, which the stream answers itself)
/// and stanzas that need nothing give no effect.
#[cfg(test)]
pub(crate) fn inbound(cx: &Context<'_>, el: Element) -> Vec<Effect> {
    if el.ns() != wire::NS_CLIENT {
        return Vec::new();
    }
    match el.name() {
        "message" => message(cx, el).into_iter().collect(),
        "presence" => presence(cx, &el),
        "iq" => Iq::try_from(el).map(iq).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// What the session must do about a stanza as the stream delivers it (typed): messages are read in place
/// (their bodies and payloads, no element tree rebuilt; carbons, rare, take the element
/// path), iqs are already typed, presences are read as elements.
pub(crate) fn inbound_stanza(cx: &Context<'_>, s: Stanza) -> Vec<Effect> {
    match s {
        Stanza::Message(m) => message_typed(cx, m).into_iter().collect(),
        Stanza::Presence(p) => presence(cx, &Element::from(p)),
        Stanza::Iq(q) => iq(q),
    }
}

fn message_typed(cx: &Context<'_>, mut m: Message) -> Option<Effect> {
    let carbon = m
        .payloads
        .iter()
        .any(|p| p.ns() == wire::NS_CARBONS && matches!(p.name(), "sent" | "received"));
    if carbon {
        return message(cx, Element::from(m));
    }
    let kind = match m.type_ {
        MessageType::Chat => "chat",
        MessageType::Groupchat => "groupchat",
        MessageType::Headline => "headline",
        MessageType::Error => "error",
        MessageType::Normal => "",
    };
    // The first body, as the element's first `<body>` child would be.
    let body = m.bodies.pop_first().map(|(_, b)| b).unwrap_or_default();
    let h = wire::Header {
        id: m.id.map(|i| i.0),
        kind: kind.to_owned(),
        from: m.from.map(|j| j.into_inner()).unwrap_or_default(),
        to: m.to.map(|j| j.into_inner()).unwrap_or_default(),
    };
    let payloads = m.payloads;
    message_effect(cx, wire::classify_parts(h, body, || payloads.iter()), false)
}

fn iq(iq: Iq) -> Vec<Effect> {
    let (id, from, payload) = match iq {
        Iq::Get {
            id, from, payload, ..
        }
        | Iq::Set {
            id, from, payload, ..
        } => (id, from, payload),
        // Answers are matched to requests and never answered themselves.
        Iq::Result {
            id, from, payload, ..
        } => {
            let from = from.map(|f| f.to_string());
            let otherwise = payload
                .as_ref()
                .and_then(|p| super::presence::last_push(from.as_deref(), p));
            return vec![Effect::Answer {
                id,
                reply: Ok(payload),
                otherwise,
            }];
        }
        Iq::Error { id, error, .. } => {
            return vec![Effect::Answer {
                id,
                reply: Err(super::iq::to_error(&error)),
                otherwise: None,
            }];
        }
    };
    let from = from.map(|f| f.to_string());
    let push = super::presence::last_push(from.as_deref(), &payload);
    let mut b = Element::builder("iq", wire::NS_CLIENT).attr(super::engine::nc("id"), id);
    if let Some(f) = from {
        b = b.attr(super::engine::nc("to"), f);
    }
    let mut out = Vec::new();
    let reply = if let Some(ev) = push {
        // A last-activity push sent as get/set: acknowledge it (an error would be echoed).
        out.push(Effect::Emit(ev));
        b.attr(super::engine::nc("type"), "result").build()
    } else if payload.is("ping", NS_PING) {
        b.attr(super::engine::nc("type"), "result").build()
    } else {
        let err = Element::builder("error", wire::NS_CLIENT)
            .attr(super::engine::nc("type"), "cancel")
            .append(Element::bare("service-unavailable", wire::NS_STANZAS))
            .build();
        b.attr(super::engine::nc("type"), "error")
            .append(payload)
            .append(err)
            .build()
    };
    out.push(Effect::Reply(reply));
    out
}

/// Occupants joining and leaving (other users), kicks and join answers (this user).
fn presence(cx: &Context<'_>, p: &Element) -> Vec<Effect> {
    let Some((dialog_id, Some(nick))) = p.attr("from").and_then(room_of) else {
        return Vec::new();
    };
    let Ok(user_id) = nick.parse::<u64>() else {
        return Vec::new();
    };
    let kind = p.attr("type");
    let gone = kind == Some("unavailable");
    let mut out = Vec::new();
    if user_id != cx.me {
        if kind != Some("error") {
            out.push(Effect::Occupant {
                dialog_id,
                user_id,
                present: !gone,
            });
        }
        return out;
    }
    let codes = super::presence::status_codes(p);
    if gone {
        let kicked = codes
            .iter()
            .any(|c| c == "301" || c == "307")
            .then(|| ChatEvent::Kicked {
                dialog_id: dialog_id.clone(),
                initiator_id: kick_initiator(p),
            });
        out.push(Effect::SelfLeft {
            dialog_id: dialog_id.clone(),
            kicked,
        });
    }
    // An `unavailable` one answers a join only when it echoes the join's id or says why
    // this user was removed (kicked 307/301, affiliation change 321/322, shutdown 332): a
    // plain one is the late echo of an earlier `leave_room`, which must not fail the join
    // that follows it.
    let removal = codes
        .iter()
        .any(|c| matches!(c.as_str(), "301" | "307" | "321" | "322" | "332"));
    let result = match kind {
        Some("error") => {
            let text = p
                .get_child("error", wire::NS_CLIENT)
                .and_then(|e| e.children().next().map(|c| c.name().to_owned()))
                .unwrap_or_else(|| "error".into());
            Err(crate::error::Error::Forbidden(format!(
                "joining the room failed: {text}"
            )))
        }
        Some("unavailable") => Err(crate::error::Error::Forbidden(
            "removed from the room".into(),
        )),
        _ => Ok(()),
    };
    out.push(Effect::JoinAnswer {
        dialog_id,
        any_join: !gone || removal,
        echo_id: p.attr("id").map(str::to_owned),
        result,
    });
    out
}

/// Whether an [`Effect::JoinAnswer`] resolves the pending join sent with `join_id`.
pub(crate) fn answers_join(any_join: bool, echo_id: Option<&str>, join_id: &str) -> bool {
    any_join || echo_id == Some(join_id)
}

/// The kicker of a 301 presence: `item/actor@jid` (or `@nick`), inside `<x>` or, as the
/// JS SDK reads it, directly in the presence.
fn kick_initiator(p: &Element) -> Option<u64> {
    let item = p
        .get_child("x", NS_MUC_USER)
        .and_then(|x| x.get_child("item", NS_MUC_USER))
        .or_else(|| p.children().find(|c| c.name() == "item"))?;
    let actor = item.children().find(|c| c.name() == "actor")?;
    actor
        .attr("jid")
        .and_then(user_id_of)
        .or_else(|| actor.attr("nick")?.parse().ok())
}

/// Messages, markers, typing, edits, deletions, reactions, system messages and errors.
fn message(cx: &Context<'_>, m: Element) -> Option<Effect> {
    let (m, carbon) = match wire::unwrap_carbon(&m) {
        Some((inner, _sent)) => {
            // Carbons only from our own account.
            let from = m.attr("from").unwrap_or_default();
            if !from.is_empty() && bare(from) != cx.my_bare {
                return None;
            }
            (inner, true)
        }
        None => (m, false),
    };
    message_effect(cx, wire::classify(&m), carbon)
}

/// The effect of a classified message (`carbon`: it came wrapped in a carbon).
fn message_effect(cx: &Context<'_>, r: wire::Received, carbon: bool) -> Option<Effect> {
    let group = r.kind == "groupchat";
    let room = if group { room_of(&r.from) } else { None };
    let sender_id = match &room {
        Some((_, nick)) => nick.as_deref().and_then(|n| n.parse().ok()).unwrap_or(0),
        None => user_id_of(&r.from).unwrap_or(0),
    };
    let dialog_id = match &room {
        Some((d, _)) => Some(d.clone()),
        None => r.extra.dialog_id.clone(),
    };
    let me = cx.me;
    let ev = match r.what {
        Incoming::Chat { body } => {
            if body.is_empty() && r.extra.attachments.is_empty() {
                return None; // room subjects and empty stanzas
            }
            let id = r.id.clone()?;
            let date_sent = r.extra.date_sent.or(r.delay).unwrap_or(cx.now);
            let receipt = (cx.auto_delivered
                && r.extra.markable
                && !carbon
                && sender_id != 0
                && sender_id != me)
                .then(|| dialog_id.clone())
                .flatten()
                .map(|dialog_id| Receipt {
                    to_user: sender_id,
                    message_id: id.clone(),
                    dialog_id,
                });
            let event = ChatEvent::Message(ChatMessage {
                id: id.clone(),
                dialog_id,
                sender_id,
                recipient_id: if group { None } else { user_id_of(&r.to) },
                body,
                attachments: r.extra.attachments,
                custom: r.extra.custom,
                date_sent,
                save_to_history: r.extra.save_to_history,
                markable: r.extra.markable,
                delayed: r.delay.is_some(),
                carbon,
                group,
            });
            return Some(Effect::EmitOnce { id, event, receipt });
        }
        Incoming::Typing { composing } => {
            if sender_id == me && !carbon {
                return None; // our own group echo
            }
            ChatEvent::Typing {
                dialog_id,
                user_id: sender_id,
                composing,
            }
        }
        Incoming::Edit {
            message_id,
            last,
            body,
        } => ChatEvent::Edited {
            message_id,
            dialog_id,
            user_id: sender_id,
            body,
            last,
        },
        Incoming::Delete { message_id } => ChatEvent::Deleted {
            message_id,
            dialog_id,
            user_id: sender_id,
        },
        Incoming::Reactions {
            message_id,
            user_id,
            add,
            remove,
        } => ChatEvent::Reactions {
            message_id,
            dialog_id,
            user_id,
            add,
            remove,
        },
        Incoming::Marker { message_id, read } => {
            // Only markers about our own messages are statuses: a carbon of a marker our
            // other device sent (for a message we received) is not.
            if r.kind != "chat" || carbon || sender_id == me {
                return None;
            }
            if read {
                ChatEvent::Read {
                    message_id,
                    dialog_id,
                    user_id: sender_id,
                }
            } else {
                ChatEvent::Delivered {
                    message_id,
                    dialog_id,
                    user_id: sender_id,
                }
            }
        }
        Incoming::System { body } => {
            if r.extra.module_identifier.as_deref() != Some(wire::SYSTEM_MODULE) {
                return None;
            }
            let id = r.id.clone().unwrap_or_default();
            let event = ChatEvent::System(SystemMessage {
                id: id.clone(),
                sender_id,
                body,
                custom: system_custom(r.extra),
            });
            if id.is_empty() {
                return Some(Effect::Emit(event));
            }
            return Some(Effect::EmitOnce {
                id,
                event,
                receipt: None,
            });
        }
        Incoming::Error { code, text } => ChatEvent::MessageError {
            message_id: r.id.clone().unwrap_or_default(),
            code,
            text,
        },
    };
    Some(Effect::Emit(ev))
}

/// The parameters of a system message: its custom keys plus `dialog_id`, which the
/// extraParams parser keeps apart (REST system messages such as `dialog/NEW` carry it).
pub(super) fn system_custom(extra: ExtraParams) -> std::collections::BTreeMap<String, String> {
    let mut custom = extra.custom;
    if let Some(d) = extra.dialog_id {
        custom.entry("dialog_id".into()).or_insert(d);
    }
    custom
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::error::Error;

    const ME: &str = "5-7@chat.local";
    const BOB: &str = "6-7@chat.local/r";
    const ROOM: &str = "7_d1@muc.chat.local";
    const NOW: i64 = 1_700_000_000;

    fn cx(auto_delivered: bool) -> Context<'static> {
        Context {
            me: 5,
            my_bare: ME,
            auto_delivered,
            now: NOW,
        }
    }

    /// The effects of `xml` through the element path and, when it parses as a stanza, the
    /// typed path the engine takes: both must agree.
    fn run(xml: &str) -> Vec<Effect> {
        let by_element = inbound(&cx(true), xml.parse().unwrap());
        if let Ok(s) = xso::from_bytes::<Stanza>(xml.as_bytes()) {
            assert_eq!(inbound_stanza(&cx(true), s), by_element, "{xml}");
        }
        by_element
    }

    fn msg(from: &str, kind: &str, inner: &str) -> String {
        format!("<message xmlns='jabber:client' from='{from}' to='{ME}/x' type='{kind}' id='m1'>{inner}</message>")
    }

    fn extra(inner: &str) -> String {
        format!("<extraParams xmlns='jabber:client'>{inner}</extraParams>")
    }

    fn chat(id: &str, group: bool, sender_id: u64, body: &str) -> ChatMessage {
        ChatMessage {
            id: id.into(),
            dialog_id: Some("d1".into()),
            sender_id,
            recipient_id: if group { None } else { Some(5) },
            body: body.into(),
            attachments: Vec::new(),
            custom: BTreeMap::new(),
            date_sent: NOW,
            save_to_history: false,
            markable: false,
            delayed: false,
            carbon: false,
            group,
        }
    }

    fn once(m: ChatMessage, receipt: Option<Receipt>) -> Vec<Effect> {
        vec![Effect::EmitOnce {
            id: m.id.clone(),
            event: ChatEvent::Message(m),
            receipt,
        }]
    }

    #[test]
    fn messages() {
        let d1 = extra("<dialog_id>d1</dialog_id>");
        // A private message: new only once (by id), dated now when it carries no date.
        assert_eq!(
            run(&msg(BOB, "chat", &format!("<body>hi</body>{d1}"))),
            once(chat("m1", false, 6, "hi"), None)
        );
        // Markable: the delivered marker goes back to its sender, unless switched off.
        let markable = msg(
            BOB,
            "chat",
            &format!(
                "<body>hi</body>{}",
                extra("<dialog_id>d1</dialog_id><markable>1</markable><date_sent>1700000100</date_sent>")
            ),
        );
        let mut m = chat("m1", false, 6, "hi");
        m.markable = true;
        m.date_sent = 1_700_000_100;
        let receipt = Receipt {
            to_user: 6,
            message_id: "m1".into(),
            dialog_id: "d1".into(),
        };
        assert_eq!(run(&markable), once(m.clone(), Some(receipt)));
        assert_eq!(
            inbound(&cx(false), markable.parse().unwrap()),
            once(m, None)
        );
        // A group message: dialog and sender from the room JID, no recipient.
        assert_eq!(
            run(&msg(&format!("{ROOM}/6"), "groupchat", "<body>all</body>")),
            once(chat("m1", true, 6, "all"), None)
        );
        // Delayed (offline storage): dated by the delay stamp.
        let delayed = run(&msg(
            BOB,
            "chat",
            &format!(
                "<body>late</body>{d1}<delay xmlns='urn:xmpp:delay' stamp='2023-11-14T22:13:20Z'/>"
            ),
        ));
        let mut m = chat("m1", false, 6, "late");
        m.delayed = true;
        m.date_sent = 1_700_000_000;
        assert_eq!(delayed, once(m, None));
        // Room subjects, empty stanzas and messages without an id need nothing.
        assert!(run(&msg(
            &format!("{ROOM}/6"),
            "groupchat",
            "<subject>s</subject>"
        ))
        .is_empty());
        assert!(run(&format!(
            "<message xmlns='jabber:client' from='{BOB}' type='chat'><body>x</body></message>"
        ))
        .is_empty());
    }

    #[test]
    fn carbons_only_from_our_own_account() {
        let inner = format!(
            "<message xmlns='jabber:client' from='{ME}/other' to='{BOB}' type='chat' id='c1'>\
             <body>mine</body>{}</message>",
            extra("<dialog_id>d1</dialog_id><markable>1</markable>")
        );
        let carbon = |from: &str| {
            format!(
                "<message xmlns='jabber:client' from='{from}' to='{ME}/x' type='chat'>\
                 <sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>{inner}\
                 </forwarded></sent></message>"
            )
        };
        let mut m = chat("c1", false, 5, "mine");
        m.recipient_id = Some(6);
        m.carbon = true;
        m.markable = true;
        // Our own copy: no marker for it.
        assert_eq!(run(&carbon(ME)), once(m, None));
        assert!(run(&carbon("6-7@chat.local")).is_empty(), "a forged carbon");
    }

    #[test]
    fn typing_edits_deletes_and_reactions() {
        let d1 = extra("<dialog_id>d1</dialog_id>");
        let cs = "http://jabber.org/protocol/chatstates";
        assert_eq!(
            run(&msg(BOB, "chat", &format!("<composing xmlns='{cs}'/>{d1}"))),
            vec![Effect::Emit(ChatEvent::Typing {
                dialog_id: Some("d1".into()),
                user_id: 6,
                composing: true
            })]
        );
        assert_eq!(
            run(&msg(
                &format!("{ROOM}/6"),
                "groupchat",
                &format!("<paused xmlns='{cs}'/>")
            )),
            vec![Effect::Emit(ChatEvent::Typing {
                dialog_id: Some("d1".into()),
                user_id: 6,
                composing: false
            })]
        );
        assert!(
            run(&msg(
                &format!("{ROOM}/5"),
                "groupchat",
                &format!("<composing xmlns='{cs}'/>")
            ))
            .is_empty(),
            "our own group echo"
        );
        assert_eq!(
            run(&msg(
                BOB,
                "chat",
                &format!("<body>fixed</body><replace xmlns='urn:xmpp:message-correct:0' id='m0' last='true'/>{d1}")
            )),
            vec![Effect::Emit(ChatEvent::Edited {
                message_id: "m0".into(),
                dialog_id: Some("d1".into()),
                user_id: 6,
                body: "fixed".into(),
                last: true
            })]
        );
        assert_eq!(
            run(&msg(
                BOB,
                "chat",
                &format!("<remove xmlns='urn:xmpp:message-delete:0' id='m0'/>{d1}")
            )),
            vec![Effect::Emit(ChatEvent::Deleted {
                message_id: "m0".into(),
                dialog_id: Some("d1".into()),
                user_id: 6
            })]
        );
        assert_eq!(
            run(&msg(
                BOB,
                "chat",
                &format!(
                    "<reactions xmlns='jabber:client' message_id='m0' user_id='6'>\
                     <reaction type='+1' add='true'/><reaction type='x' remove='true'/></reactions>{d1}"
                )
            )),
            vec![Effect::Emit(ChatEvent::Reactions {
                message_id: "m0".into(),
                dialog_id: Some("d1".into()),
                user_id: 6,
                add: vec!["+1".into()],
                remove: vec!["x".into()]
            })]
        );
    }

    #[test]
    fn markers_are_statuses_of_our_own_messages_only() {
        let mk = "urn:xmpp:chat-markers:0";
        let d1 = extra("<dialog_id>d1</dialog_id>");
        assert_eq!(
            run(&msg(
                BOB,
                "chat",
                &format!("<received xmlns='{mk}' id='m0'/>{d1}")
            )),
            vec![Effect::Emit(ChatEvent::Delivered {
                message_id: "m0".into(),
                dialog_id: Some("d1".into()),
                user_id: 6
            })]
        );
        assert_eq!(
            run(&msg(
                BOB,
                "chat",
                &format!("<displayed xmlns='{mk}' id='m0'/>{d1}")
            )),
            vec![Effect::Emit(ChatEvent::Read {
                message_id: "m0".into(),
                dialog_id: Some("d1".into()),
                user_id: 6
            })]
        );
        // Not a status: in a room, or sent by this user.
        assert!(run(&msg(
            &format!("{ROOM}/6"),
            "groupchat",
            &format!("<displayed xmlns='{mk}' id='m0'/>")
        ))
        .is_empty());
        assert!(run(&msg(
            &format!("{ME}/y"),
            "chat",
            &format!("<displayed xmlns='{mk}' id='m0'/>")
        ))
        .is_empty());
    }

    #[test]
    fn system_messages_and_errors() {
        let sys = extra("<moduleIdentifier>SystemNotifications</moduleIdentifier><dialog_id>d1</dialog_id><k>v</k>");
        let custom: BTreeMap<String, String> =
            [("dialog_id".into(), "d1".into()), ("k".into(), "v".into())].into();
        assert_eq!(
            run(&msg(
                BOB,
                "headline",
                &format!("<body>dialog/NEW</body>{sys}")
            )),
            vec![Effect::EmitOnce {
                id: "m1".into(),
                event: ChatEvent::System(SystemMessage {
                    id: "m1".into(),
                    sender_id: 6,
                    body: "dialog/NEW".into(),
                    custom: custom.clone()
                }),
                receipt: None
            }]
        );
        // Without an id there is nothing to drop repeats by.
        let no_id = format!("<message xmlns='jabber:client' from='{BOB}' type='headline'><body>b</body>{sys}</message>");
        assert_eq!(
            run(&no_id),
            vec![Effect::Emit(ChatEvent::System(SystemMessage {
                id: String::new(),
                sender_id: 6,
                body: "b".into(),
                custom
            }))]
        );
        assert!(run(&msg(BOB, "headline", "<body>other module</body>")).is_empty());
        assert_eq!(
            run(&msg(
                "6-7@chat.local",
                "error",
                "<error code='503' type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
                 <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>offline</text></error>"
            )),
            vec![Effect::Emit(ChatEvent::MessageError {
                message_id: "m1".into(),
                code: 503,
                text: "offline".into()
            })]
        );
    }

    fn presence(from: &str, attrs: &str, inner: &str) -> String {
        format!("<presence xmlns='jabber:client' from='{from}' {attrs}>{inner}</presence>")
    }

    fn status(codes: &[&str]) -> String {
        let s: String = codes
            .iter()
            .map(|c| format!("<status code='{c}'/>"))
            .collect();
        format!("<x xmlns='{NS_MUC_USER}'>{s}</x>")
    }

    #[test]
    fn room_presence() {
        let occupant = |present| {
            vec![Effect::Occupant {
                dialog_id: "d1".into(),
                user_id: 6,
                present,
            }]
        };
        assert_eq!(run(&presence(&format!("{ROOM}/6"), "", "")), occupant(true));
        assert_eq!(
            run(&presence(&format!("{ROOM}/6"), "type='unavailable'", "")),
            occupant(false)
        );
        assert!(run(&presence(&format!("{ROOM}/6"), "type='error'", "")).is_empty());
        assert!(run(&presence(BOB, "", "")).is_empty(), "not a room");
        assert!(run(&presence(ROOM, "", "")).is_empty(), "no occupant");

        let join = |any_join: bool, echo_id: Option<&str>, result| Effect::JoinAnswer {
            dialog_id: "d1".into(),
            any_join,
            echo_id: echo_id.map(str::to_owned),
            result,
        };
        let left = |kicked| Effect::SelfLeft {
            dialog_id: "d1".into(),
            kicked,
        };
        let removed = || Err(Error::Forbidden("removed from the room".into()));
        // Our own presence in the room answers a pending join.
        assert_eq!(
            run(&presence(&format!("{ROOM}/5"), "", &status(&["110"]))),
            vec![join(true, None, Ok(()))]
        );
        assert_eq!(
            run(&presence(&format!("{ROOM}/5"), "type='error'", "<error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>")),
            vec![join(true, None, Err(Error::Forbidden("joining the room failed: forbidden".into())))]
        );
        // The plain echo of a leave answers only the join whose id it carries.
        assert_eq!(
            run(&presence(
                &format!("{ROOM}/5"),
                "type='unavailable'",
                &status(&["110"])
            )),
            vec![left(None), join(false, None, removed())]
        );
        assert_eq!(
            run(&presence(
                &format!("{ROOM}/5"),
                "type='unavailable' id='j1'",
                ""
            )),
            vec![left(None), join(false, Some("j1"), removed())]
        );
        // A kick (301 ban, 307 kick) by whoever the actor names: forgets the room.
        let kick = presence(
            &format!("{ROOM}/5"),
            "type='unavailable'",
            &format!(
                "<x xmlns='{NS_MUC_USER}'><item affiliation='none' role='none'><actor jid='8-7@chat.local/r'/>\
                 </item><status code='307'/><status code='110'/></x>"
            ),
        );
        let kicked = ChatEvent::Kicked {
            dialog_id: "d1".into(),
            initiator_id: Some(8),
        };
        assert_eq!(
            run(&kick),
            vec![left(Some(kicked)), join(true, None, removed())]
        );
        // Removed by an affiliation change: answers the join, no kick.
        assert_eq!(
            run(&presence(
                &format!("{ROOM}/5"),
                "type='unavailable'",
                &status(&["321"])
            )),
            vec![left(None), join(true, None, removed())]
        );
    }

    fn iq(attrs: &str, inner: &str) -> String {
        format!(
            "<iq xmlns='jabber:client' from='chat.local' to='{ME}/x' id='q1' {attrs}>{inner}</iq>"
        )
    }

    #[test]
    fn iq_requests_and_answers() {
        // A ping is answered with a result to its sender.
        let out = run(&iq("type='get'", "<ping xmlns='urn:xmpp:ping'/>"));
        let [Effect::Reply(r)] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (r.attr("type"), r.attr("id"), r.attr("to")),
            (Some("result"), Some("q1"), Some("chat.local"))
        );
        // Anything else asked of us: service-unavailable, the request echoed.
        let out = run(&iq("type='get'", "<query xmlns='jabber:iq:version'/>"));
        let [Effect::Reply(r)] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(r.attr("type"), Some("error"));
        let err = r.get_child("error", wire::NS_CLIENT).unwrap();
        assert!(err.has_child("service-unavailable", wire::NS_STANZAS));
        assert!(r.has_child("query", "jabber:iq:version"));
        // A last-activity push sent as a set: told and acknowledged.
        let push = "<query xmlns='jabber:iq:last' seconds='30'/>";
        let out = inbound(
            &cx(true),
            format!("<iq xmlns='jabber:client' from='{BOB}' id='q2' type='set'>{push}</iq>")
                .parse()
                .unwrap(),
        );
        assert_eq!(
            out[0],
            Effect::Emit(ChatEvent::LastActivity {
                user_id: 6,
                seconds: 30
            })
        );
        assert!(matches!(&out[1], Effect::Reply(r) if r.attr("type") == Some("result")));
        // Answers go to the request waiting for them; a push as a result is told otherwise.
        let out = run(&iq("type='result'", ""));
        assert_eq!(
            out,
            vec![Effect::Answer {
                id: "q1".into(),
                reply: Ok(None),
                otherwise: None
            }]
        );
        let out = inbound(
            &cx(true),
            format!("<iq xmlns='jabber:client' from='{BOB}' id='q3' type='result'>{push}</iq>")
                .parse()
                .unwrap(),
        );
        assert!(matches!(
            &out[..],
            [Effect::Answer { id, reply: Ok(Some(_)), otherwise: Some(ChatEvent::LastActivity { user_id: 6, seconds: 30 }) }] if id == "q3"
        ));
        let out = run(&iq(
            "type='error'",
            "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
        ));
        assert!(
            matches!(&out[..], [Effect::Answer { id, reply: Err(Error::NotFound(_)), otherwise: None }] if id == "q1"),
            "{out:?}"
        );
    }

    #[test]
    fn stream_management_and_other_elements_need_nothing() {
        // The stream answers `<r/>` and counts `<a/>` itself; they never reach the session.
        for xml in [
            "<r xmlns='urn:xmpp:sm:3'/>",
            "<a xmlns='urn:xmpp:sm:3' h='3'/>",
            "<enabled xmlns='urn:xmpp:sm:3' id='s' resume='true'/>",
            "<message xmlns='jabber:server' id='m'><body>x</body></message>",
            "<other xmlns='jabber:client'/>",
        ] {
            assert!(run(xml).is_empty(), "{xml}");
        }
    }
}
