//! ConnectyCube's XMPP payloads (protocol reference §6), shared by the engine and cubeserver:
//! JID addressing, the `<extraParams xmlns="jabber:client">` message payload, and the message
//! stanzas of every event family (chat, typing, markers, edit, delete, reactions, system,
//! error), built and classified the way the JS SDK does.

use std::collections::BTreeMap;

use minidom::rxml::NcName;
use minidom::Element;

use crate::chat::Attachment;

/// The client stream namespace.
pub const NS_CLIENT: &str = "jabber:client";
/// Chat state notifications (XEP-0085): composing, paused.
pub const NS_CHATSTATES: &str = "http://jabber.org/protocol/chatstates";
/// Chat markers (XEP-0333): markable, received, displayed.
pub const NS_MARKERS: &str = "urn:xmpp:chat-markers:0";
/// Last message correction (XEP-0308): edits.
pub const NS_CORRECT: &str = "urn:xmpp:message-correct:0";
/// ConnectyCube's message deletion.
pub const NS_DELETE: &str = "urn:xmpp:message-delete:0";
/// Delayed delivery (XEP-0203): the original send time of a stored message.
pub const NS_DELAY: &str = "urn:xmpp:delay";
/// Message carbons (XEP-0280): copies of the user's own messages.
pub const NS_CARBONS: &str = "urn:xmpp:carbons:2";
/// Stanza forwarding (XEP-0297), which carbons wrap.
pub const NS_FORWARD: &str = "urn:xmpp:forward:0";
/// Stanza error conditions (RFC 6120).
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// `moduleIdentifier` of system messages.
pub const SYSTEM_MODULE: &str = "SystemNotifications";

/// Keys of `extraParams` with a protocol meaning; everything else is a custom parameter.
const CONTROL_KEYS: &[&str] = &[
    "save_to_history",
    "dialog_id",
    "date_sent",
    "silent",
    "markable",
    "moduleIdentifier",
    "attachments",
    "attachment",
];

// ---------------------------------------------------------------------------------------
// Addressing (§6.1)

/// `{user_id}-{app_id}@{domain}`
pub fn user_jid(user_id: u64, app_id: u64, domain: &str) -> String {
    format!("{user_id}-{app_id}@{domain}")
}

/// `{app_id}_{dialog_id}@muc.{domain}`
pub fn room_jid(app_id: u64, dialog_id: &str, domain: &str) -> String {
    format!("{app_id}_{dialog_id}@muc.{domain}")
}

/// The user id of a user JID (the integer before the first `-` of the local part).
pub fn user_id_of(jid: &str) -> Option<u64> {
    let local = jid.split_once('@')?.0;
    local.split('-').next()?.parse().ok().filter(|id| *id > 0)
}

/// `(dialog_id, occupant nick)` of a room JID `{app}_{dialog}@muc.{domain}[/{nick}]`.
pub fn room_of(jid: &str) -> Option<(String, Option<String>)> {
    let (local, rest) = jid.split_once('@')?;
    if !rest.starts_with("muc.") {
        return None;
    }
    let dialog = local.split_once('_')?.1;
    if dialog.is_empty() {
        return None;
    }
    let nick = rest.split_once('/').map(|(_, n)| n.to_owned());
    Some((dialog.to_owned(), nick))
}

/// The bare part of a JID (without `/resource`).
pub fn bare(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(b, _)| b)
}

// ---------------------------------------------------------------------------------------
// extraParams (§6.4)

/// The ConnectyCube message payload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExtraParams {
    /// Whether the server stores it in the dialog's history.
    pub save_to_history: bool,
    /// The dialog's id.
    pub dialog_id: Option<String>,
    /// Unix seconds.
    pub date_sent: Option<i64>,
    /// Whether it is sent without a push notification.
    pub silent: bool,
    /// Whether receivers send delivered/read markers for it.
    pub markable: bool,
    /// ConnectyCube's `moduleIdentifier` extra parameter (e.g. system messages).
    pub module_identifier: Option<String>,
    /// The attachments.
    pub attachments: Vec<Attachment>,
    /// Custom parameters. Nested elements arrive as a JSON object string.
    pub custom: BTreeMap<String, String>,
}

/// Whether `key` can be an XML element name (and so a custom parameter over XMPP).
pub fn is_element_name(key: &str) -> bool {
    !key.is_empty() && !key.to_ascii_lowercase().starts_with("xml") && NcName::try_from(key).is_ok()
}

/// Whether `key` is an `extraParams` key with a protocol meaning.
pub fn is_control_key(key: &str) -> bool {
    CONTROL_KEYS.contains(&key)
}

fn leaf(name: &str, text: impl Into<String>) -> Element {
    Element::builder(name, NS_CLIENT)
        .append(text.into())
        .build()
}

fn attr_name(name: &str) -> Option<NcName> {
    NcName::try_from(name).ok()
}

/// Sets an attribute on a builder (names here are literals, always valid).
trait SetAttr {
    fn set(self, name: &str, value: &str) -> Self;
}

impl SetAttr for minidom::ElementBuilder {
    fn set(self, name: &str, value: &str) -> Self {
        match attr_name(name) {
            Some(n) => self.attr(n, value),
            None => self,
        }
    }
}

impl ExtraParams {
    /// The `<extraParams xmlns="jabber:client">` element. Custom keys that are not valid
    /// element names are skipped (the engine refuses them before this point).
    pub fn to_element(&self) -> Element {
        let mut e = Element::builder("extraParams", NS_CLIENT).build();
        if self.save_to_history {
            e.append_child(leaf("save_to_history", "1"));
        }
        if let Some(d) = &self.dialog_id {
            e.append_child(leaf("dialog_id", d.as_str()));
        }
        if let Some(t) = self.date_sent {
            e.append_child(leaf("date_sent", t.to_string()));
        }
        if self.silent {
            e.append_child(leaf("silent", "1"));
        }
        if self.markable {
            e.append_child(leaf("markable", "1"));
        }
        if let Some(m) = &self.module_identifier {
            e.append_child(leaf("moduleIdentifier", m.as_str()));
        }
        for a in &self.attachments {
            e.append_child(attachment_element(a));
        }
        for (k, v) in &self.custom {
            if is_element_name(k) && !is_control_key(k) {
                e.append_child(leaf(k, v.as_str()));
            }
        }
        e
    }

    /// Reads an `extraParams` element (any namespace, as the JS SDK does). Empty elements
    /// are dropped; elements with children become JSON object strings.
    pub fn from_element(e: &Element) -> Self {
        let mut p = Self::default();
        for c in e.children() {
            let text = text_of(c);
            match c.name() {
                "attachment" => p.attachments.push(attachment_of(c)),
                "save_to_history" => p.save_to_history = is_true(&text),
                "dialog_id" if !text.trim().is_empty() => p.dialog_id = Some(text.trim().into()),
                "date_sent" => p.date_sent = parse_date_sent(&text),
                "silent" => p.silent = is_true(&text),
                "markable" => p.markable = is_true(&text),
                "moduleIdentifier" if !text.is_empty() => {
                    p.module_identifier = Some(text.into_owned());
                }
                name if c.children().next().is_some() => {
                    p.custom.insert(name.into(), nested_json(c).to_string());
                }
                name if !text.is_empty() && !is_control_key(name) => {
                    p.custom.insert(name.into(), text.into_owned());
                }
                _ => {}
            }
        }
        p
    }
}

/// The text of `e` (all its text nodes), borrowed when it is one node (the usual case).
fn text_of(e: &Element) -> std::borrow::Cow<'_, str> {
    let mut texts = e.texts();
    match (texts.next(), texts.next()) {
        (None, _) => std::borrow::Cow::Borrowed(""),
        (Some(t), None) => std::borrow::Cow::Borrowed(t),
        _ => std::borrow::Cow::Owned(e.text()),
    }
}

fn is_true(t: &str) -> bool {
    matches!(t.trim(), "1" | "true")
}

/// `date_sent` in seconds; milliseconds (13 digits) and fractions are accepted.
fn parse_date_sent(t: &str) -> Option<i64> {
    let v: f64 = t.trim().parse().ok()?;
    let secs = if v > 1e11 { v / 1000.0 } else { v };
    (secs.is_finite() && secs >= 0.0).then_some(secs as i64)
}

fn nested_json(e: &Element) -> serde_json::Value {
    if e.children().next().is_none() {
        return serde_json::Value::String(e.text());
    }
    serde_json::Value::Object(
        e.children()
            .map(|c| (c.name().to_owned(), nested_json(c)))
            .collect(),
    )
}

fn attachment_element(a: &Attachment) -> Element {
    let fields = [
        ("type", Some(a.kind.clone())),
        ("id", a.id.clone()),
        ("uid", a.uid.clone()),
        ("url", a.url.clone()),
        ("name", a.name.clone()),
        ("size", a.size.map(|v| v.to_string())),
        ("content-type", a.content_type.clone()),
        ("width", a.width.map(|v| v.to_string())),
        ("height", a.height.map(|v| v.to_string())),
        ("duration", a.duration.map(|v| v.to_string())),
        ("data", a.data.clone()),
    ];
    let mut b = Element::builder("attachment", NS_CLIENT);
    for (k, v) in fields {
        if let Some(v) = v {
            b = b.set(k, &v);
        }
    }
    b.build()
}

fn attachment_of(e: &Element) -> Attachment {
    let s = |k: &str| e.attr(k).map(str::to_owned);
    let n = |k: &str| {
        e.attr(k)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|f| f as u64)
    };
    Attachment {
        kind: s("type").unwrap_or_default(),
        id: s("id"),
        uid: s("uid"),
        url: s("url"),
        name: s("name"),
        size: n("size"),
        content_type: s("content-type").or_else(|| s("content_type")),
        width: n("width"),
        height: n("height"),
        duration: n("duration"),
        data: s("data"),
    }
}

// ---------------------------------------------------------------------------------------
// Message stanzas (§6.4–6.6)

/// `chat` or `groupchat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatKind {
    /// A one-to-one message (`type="chat"`).
    Chat,
    /// A group message (`type="groupchat"`, sent to the room).
    GroupChat,
}

impl ChatKind {
    /// The stanza `type` attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::GroupChat => "groupchat",
        }
    }
}

fn message(kind: &str, id: Option<&str>, to: &str) -> minidom::ElementBuilder {
    let mut b = Element::builder("message", NS_CLIENT)
        .set("type", kind)
        .set("to", to);
    if let Some(id) = id {
        b = b.set("id", id);
    }
    b
}

fn with_attr(name: &str, ns: &str, attrs: &[(&str, &str)]) -> Element {
    let mut b = Element::builder(name, ns);
    for (k, v) in attrs {
        b = b.set(k, v);
    }
    b.build()
}

/// A chat message: `<message type to id><body/><extraParams/></message>`.
pub fn chat_message(
    kind: ChatKind,
    id: &str,
    to: &str,
    body: &str,
    extra: &ExtraParams,
) -> Element {
    let mut b = message(kind.as_str(), Some(id), to);
    if !body.is_empty() {
        b = b.append(leaf("body", body));
    }
    b.append(extra.to_element()).build()
}

/// Typing: `composing` or `paused`, without an id.
pub fn typing(kind: ChatKind, to: &str, composing: bool, dialog_id: Option<&str>) -> Element {
    let state = if composing { "composing" } else { "paused" };
    let mut b = message(kind.as_str(), None, to).append(Element::bare(state, NS_CHATSTATES));
    if let Some(d) = dialog_id {
        b = b.append(dialog_extra(d));
    }
    b.build()
}

fn dialog_extra(dialog_id: &str) -> Element {
    Element::builder("extraParams", NS_CLIENT)
        .append(leaf("dialog_id", dialog_id))
        .build()
}

/// A delivered (`received`) or read (`displayed`) marker, to the sender's user JID.
pub fn marker(id: &str, to: &str, read: bool, message_id: &str, dialog_id: &str) -> Element {
    let [m, extra] = marker_payloads(read, message_id, dialog_id);
    message("chat", Some(id), to)
        .append(m)
        .append(extra)
        .build()
}

/// The children of a [`marker`] stanza, in order: the marker and the `extraParams` with the
/// dialog id.
pub fn marker_payloads(read: bool, message_id: &str, dialog_id: &str) -> [Element; 2] {
    let name = if read { "displayed" } else { "received" };
    [
        with_attr(name, NS_MARKERS, &[("id", message_id)]),
        dialog_extra(dialog_id),
    ]
}

/// An edit: new body, `<replace id last/>`, and the dialog id.
pub fn edit(
    kind: ChatKind,
    id: &str,
    to: &str,
    message_id: &str,
    body: &str,
    last: bool,
    dialog_id: &str,
) -> Element {
    message(kind.as_str(), Some(id), to)
        .append(leaf("body", body))
        .append(with_attr(
            "replace",
            NS_CORRECT,
            &[
                ("id", message_id),
                ("last", if last { "true" } else { "false" }),
            ],
        ))
        .append(dialog_extra(dialog_id))
        .build()
}

/// A delete: `<remove id/>` and the dialog id.
pub fn delete(kind: ChatKind, id: &str, to: &str, message_id: &str, dialog_id: &str) -> Element {
    message(kind.as_str(), Some(id), to)
        .append(with_attr("remove", NS_DELETE, &[("id", message_id)]))
        .append(dialog_extra(dialog_id))
        .build()
}

/// A reaction change of one user on one message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReactionChange {
    /// Who reacted.
    pub user_id: u64,
    /// The message reacted to.
    pub message_id: String,
    /// The message's dialog.
    pub dialog_id: String,
    /// The reaction added, if any.
    pub add: Option<String>,
    /// The reaction removed, if any.
    pub remove: Option<String>,
}

/// The reactions push the server sends after `PUT /chat/Message/{id}/reactions`.
pub fn reactions(kind: ChatKind, id: &str, to: &str, change: &ReactionChange) -> Element {
    let mut r = with_attr(
        "reactions",
        NS_CLIENT,
        &[
            ("user_id", &change.user_id.to_string()),
            ("message_id", &change.message_id),
        ],
    );
    if let Some(t) = &change.add {
        r.append_child(with_attr(
            "reaction",
            NS_CLIENT,
            &[("add", "true"), ("type", t)],
        ));
    }
    if let Some(t) = &change.remove {
        r.append_child(with_attr(
            "reaction",
            NS_CLIENT,
            &[("remove", "true"), ("type", t)],
        ));
    }
    message(kind.as_str(), Some(id), to)
        .append(dialog_extra(&change.dialog_id))
        .append(r)
        .build()
}

/// A system message: `headline` with `moduleIdentifier` `SystemNotifications`.
pub fn system_message(
    id: &str,
    to: &str,
    body: &str,
    custom: &BTreeMap<String, String>,
) -> Element {
    let extra = ExtraParams {
        module_identifier: Some(SYSTEM_MODULE.into()),
        custom: custom.clone(),
        ..ExtraParams::default()
    };
    let mut b = message("headline", Some(id), to);
    if !body.is_empty() {
        b = b.append(leaf("body", body));
    }
    b.append(extra.to_element()).build()
}

/// A message error reply with the legacy `code` attribute the JS SDK reads.
pub fn message_error(id: &str, to: &str, code: u16, condition: &str, text: &str) -> Element {
    let kind = if code == 503 || code == 404 {
        "cancel"
    } else {
        "modify"
    };
    let mut err = with_attr(
        "error",
        NS_CLIENT,
        &[("code", &code.to_string()), ("type", kind)],
    );
    err.append_child(Element::bare(condition, NS_STANZAS));
    if !text.is_empty() {
        err.append_child(Element::builder("text", NS_STANZAS).append(text).build());
    }
    message("error", Some(id), to).append(err).build()
}

// ---------------------------------------------------------------------------------------
// Classification of received messages (§6.5 priority order)

/// What a received `<message>` is, children matched by name as the JS SDK does.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A chat state: composing or paused.
    Typing {
        /// `true` while the user types, `false` when they stopped.
        composing: bool,
    },
    /// An edit of an earlier message (XEP-0308).
    Edit {
        /// The message edited.
        message_id: String,
        /// Whether this is the last edit of the message (XEP-0308 `last`).
        last: bool,
        /// The new text.
        body: String,
    },
    /// Reactions added to or removed from a message.
    Reactions {
        /// The message reacted to.
        message_id: String,
        /// Who reacted.
        user_id: u64,
        /// The reactions added.
        add: Vec<String>,
        /// The reactions removed.
        remove: Vec<String>,
    },
    /// A deletion of an earlier message.
    Delete {
        /// The message deleted.
        message_id: String,
    },
    /// A delivered or read marker (XEP-0333).
    Marker {
        /// The message marked.
        message_id: String,
        /// `true` for a read marker, `false` for a delivered one.
        read: bool,
    },
    /// A system message (`moduleIdentifier` `SystemNotifications`).
    System {
        /// The text.
        body: String,
    },
    /// An error bounced for a message that was sent.
    Error {
        /// The error code the server sent.
        code: u16,
        /// The error text, when the server sent one.
        text: String,
    },
    /// A chat message.
    Chat {
        /// The text.
        body: String,
    },
}

/// A received message, classified, with its common fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The stanza's id (the message id), if any.
    pub id: Option<String>,
    /// The stanza's `type` attribute.
    pub kind: String,
    /// The sender's JID.
    pub from: String,
    /// The recipient's JID.
    pub to: String,
    /// The `extraParams` element.
    pub extra: ExtraParams,
    /// `<delay stamp>` as Unix seconds, for offline or resent messages.
    pub delay: Option<i64>,
    /// What the stanza carries.
    pub what: Incoming,
}

/// Classifies a `<message>` element. Carbons are not unwrapped here (see [`unwrap_carbon`]).
pub fn classify(m: &Element) -> Received {
    let attr = |k: &str| m.attr(k).unwrap_or_default().to_owned();
    let body = m
        .children()
        .find(|c| c.name() == "body")
        .map(|b| b.text())
        .unwrap_or_default();
    classify_parts(
        Header {
            id: m.attr("id").map(str::to_owned),
            kind: attr("type"),
            from: attr("from"),
            to: attr("to"),
        },
        body,
        || m.children(),
    )
}

/// The attributes of a received `<message>` that [`classify_parts`] keeps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    /// The `id` attribute, if any.
    pub id: Option<String>,
    /// The `type` attribute (empty when absent).
    pub kind: String,
    /// The `from` attribute (empty when absent).
    pub from: String,
    /// The `to` attribute (empty when absent).
    pub to: String,
}

/// [`classify`] on a message already taken apart (as a typed stanza holds it): its
/// attributes, the text of its first `<body>` (empty if none) and its child elements (the
/// body elements among them or not), as a function that iterates them afresh. No copy of
/// the tree is made.
pub fn classify_parts<'a, I, F>(h: Header, body: String, children: F) -> Received
where
    I: Iterator<Item = &'a Element>,
    F: Fn() -> I,
{
    let Header { id, kind, from, to } = h;
    let child = |name: &str| children().find(|c| c.name() == name);
    let extra = child("extraParams")
        .map(ExtraParams::from_element)
        .unwrap_or_default();
    let delay = child("delay")
        .and_then(|d| d.attr("stamp"))
        .and_then(crate::time::parse_iso8601);
    let id_of = |e: &Element| e.attr("id").unwrap_or_default().to_owned();
    let what = if kind == "error" {
        let err = child("error");
        Incoming::Error {
            code: err
                .and_then(|e| e.attr("code"))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
            text: err
                .and_then(|e| e.children().find(|c| c.name() == "text"))
                .map(|t| t.text())
                .unwrap_or_default(),
        }
    } else if child("composing").is_some() || child("paused").is_some() {
        Incoming::Typing {
            composing: child("composing").is_some(),
        }
    } else if let Some(r) = child("replace") {
        Incoming::Edit {
            message_id: id_of(r),
            last: r.attr("last") == Some("true"),
            body,
        }
    } else if let Some(r) = child("reactions") {
        let mut add = Vec::new();
        let mut remove = Vec::new();
        for c in r.children().filter(|c| c.name() == "reaction") {
            let t = c.attr("type").unwrap_or_default().to_owned();
            if c.attr("add") == Some("true") {
                add.push(t);
            } else if c.attr("remove") == Some("true") {
                remove.push(t);
            }
        }
        Incoming::Reactions {
            message_id: r.attr("message_id").unwrap_or_default().to_owned(),
            user_id: r.attr("user_id").and_then(|u| u.parse().ok()).unwrap_or(0),
            add,
            remove,
        }
    } else if let Some(r) = child("remove") {
        Incoming::Delete {
            message_id: id_of(r),
        }
    } else if let Some(r) = child("received").filter(|r| r.ns() == NS_MARKERS) {
        Incoming::Marker {
            message_id: id_of(r),
            read: false,
        }
    } else if let Some(r) = child("displayed") {
        Incoming::Marker {
            message_id: id_of(r),
            read: true,
        }
    } else if kind == "headline" {
        Incoming::System { body }
    } else {
        Incoming::Chat { body }
    };
    Received {
        id,
        kind,
        from,
        to,
        extra,
        delay,
        what,
    }
}

/// The message inside a carbon (`<sent>` or `<received>` of `urn:xmpp:carbons:2`), with
/// whether it is a copy of one we sent.
pub fn unwrap_carbon(m: &Element) -> Option<(Element, bool)> {
    for (name, sent) in [("sent", true), ("received", false)] {
        if let Some(c) = m.get_child(name, NS_CARBONS) {
            let inner = c
                .get_child("forwarded", NS_FORWARD)?
                .children()
                .find(|e| e.name() == "message")?;
            return Some((inner.clone(), sent));
        }
    }
    None
}

/// Wraps `m` as a carbon copy (`sent` for the sender's other resources, `received` for the
/// recipient's), without a `type` on the wrapper (§6.4).
pub fn carbon(m: &Element, sent: bool, to: &str, from_bare: &str) -> Element {
    let forwarded = Element::builder("forwarded", NS_FORWARD)
        .append(m.clone())
        .build();
    let wrap = Element::builder(if sent { "sent" } else { "received" }, NS_CARBONS)
        .append(forwarded)
        .build();
    Element::builder("message", NS_CLIENT)
        .set("to", to)
        .set("from", from_bare)
        .append(wrap)
        .build()
}

/// A `<delay xmlns="urn:xmpp:delay" stamp=…/>` element.
pub fn delay(stamp_unix: i64, from: &str) -> Element {
    with_attr(
        "delay",
        NS_DELAY,
        &[("stamp", &crate::time::iso8601(stamp_unix)), ("from", from)],
    )
}

// ---------------------------------------------------------------------------------------
// Privacy lists (XEP-0016 with ConnectyCube semantics, §6.8), last activity (XEP-0012, §6.9),
// status streaming and Tigase mobile mode (§6.10)

/// Privacy lists (XEP-0016).
pub const NS_PRIVACY: &str = "jabber:iq:privacy";
/// Last activity (XEP-0012).
pub const NS_LAST: &str = "jabber:iq:last";
/// ConnectyCube's active/inactive (status streaming) IQ.
pub const NS_STATUS_STREAMING: &str = "https://connectycube.com/protocol/status_streaming";
/// Tigase's mobile optimisations, v2 (the inactive state ConnectyCube uses).
pub const NS_MOBILE_V2: &str = "http://tigase.org/protocol/mobile#v2";

/// One `<item>` of a privacy list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivacyItem {
    /// `jid`, `group` or `subscription`; `None` for the fall-through item.
    pub kind: Option<String>,
    /// The JID or user id the item applies to, if any.
    pub value: Option<String>,
    /// `action="allow"` (else `deny`).
    pub allow: bool,
    /// The order of the item in its list (lower first).
    pub order: u64,
    /// Whether messages are blocked.
    pub message: bool,
    /// Whether incoming presence is blocked.
    pub presence_in: bool,
    /// Whether outgoing presence is blocked.
    pub presence_out: bool,
    /// Whether IQs are blocked.
    pub iq: bool,
}

impl PrivacyItem {
    /// A deny item on a JID: `one_way` gives the four children (I do not receive from
    /// them), otherwise no children (ConnectyCube's two-way block).
    pub fn deny_jid(value: &str, order: u64, one_way: bool) -> Self {
        Self {
            kind: Some("jid".into()),
            value: Some(value.into()),
            allow: false,
            order,
            message: one_way,
            presence_in: one_way,
            presence_out: one_way,
            iq: one_way,
        }
    }

    /// No stanza-type children: under XEP-0016 the item covers every stanza; ConnectyCube
    /// reads it as a two-way block.
    pub fn covers_all(&self) -> bool {
        !(self.message || self.presence_in || self.presence_out || self.iq)
    }

    /// The item as a privacy-list `<item/>` element.
    pub fn to_element(&self) -> Element {
        let order = self.order.to_string();
        let mut attrs: Vec<(&str, &str)> = Vec::new();
        if let Some(k) = &self.kind {
            attrs.push(("type", k));
        }
        if let Some(v) = &self.value {
            attrs.push(("value", v));
        }
        attrs.push(("action", if self.allow { "allow" } else { "deny" }));
        attrs.push(("order", &order));
        let mut e = with_attr("item", NS_PRIVACY, &attrs);
        for (on, name) in [
            (self.message, "message"),
            (self.presence_in, "presence-in"),
            (self.presence_out, "presence-out"),
            (self.iq, "iq"),
        ] {
            if on {
                e.append_child(Element::bare(name, NS_PRIVACY));
            }
        }
        e
    }

    /// `None` when `action` or `order` is missing or invalid.
    pub fn from_element(e: &Element) -> Option<Self> {
        let allow = match e.attr("action")? {
            "allow" => true,
            "deny" => false,
            _ => return None,
        };
        let has = |n: &str| e.children().any(|c| c.name() == n);
        Some(Self {
            kind: e.attr("type").map(str::to_owned),
            value: e.attr("value").map(str::to_owned),
            allow,
            order: e.attr("order")?.trim().parse().ok()?,
            message: has("message"),
            presence_in: has("presence-in"),
            presence_out: has("presence-out"),
            iq: has("iq"),
        })
    }
}

/// A named privacy list, items in the order given (not sorted by `order`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivacyList {
    /// The list's name.
    pub name: String,
    /// The list's items.
    pub items: Vec<PrivacyItem>,
}

impl PrivacyList {
    /// `<list name>` with its items.
    pub fn to_element(&self) -> Element {
        let mut e = with_attr("list", NS_PRIVACY, &[("name", &self.name)]);
        for i in &self.items {
            e.append_child(i.to_element());
        }
        e
    }

    /// `None` without a name or with an invalid item.
    pub fn from_element(e: &Element) -> Option<Self> {
        let name = e.attr("name").filter(|n| !n.is_empty())?.to_owned();
        let items = e
            .children()
            .filter(|c| c.name() == "item")
            .map(PrivacyItem::from_element)
            .collect::<Option<Vec<_>>>()?;
        Some(Self { name, items })
    }

    /// Items sorted by `order` (stable), the order XEP-0016 processes them in.
    pub fn by_order(&self) -> Vec<&PrivacyItem> {
        let mut v: Vec<&PrivacyItem> = self.items.iter().collect();
        v.sort_by_key(|i| i.order);
        v
    }
}

/// `<query xmlns="jabber:iq:last" seconds="N"/>`.
pub fn last_activity(seconds: u64) -> Element {
    with_attr("query", NS_LAST, &[("seconds", &seconds.to_string())])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn xml(e: &Element) -> String {
        String::from(e)
    }

    #[test]
    fn addressing() {
        assert_eq!(user_jid(5, 7, "chat"), "5-7@chat");
        assert_eq!(user_id_of("5-7@chat/res-1"), Some(5));
        assert_eq!(user_id_of("x-7@chat"), None);
        assert_eq!(room_jid(7, "dlg", "chat"), "7_dlg@muc.chat");
        assert_eq!(
            room_of("7_dlg@muc.chat/5"),
            Some(("dlg".into(), Some("5".into())))
        );
        assert_eq!(room_of("7_dlg@chat"), None);
        assert_eq!(bare("5-7@chat/r"), "5-7@chat");
    }

    #[test]
    fn extra_params_round_trip() {
        let mut custom = BTreeMap::new();
        custom.insert("mood".to_owned(), "sunny & <warm>".to_owned());
        custom.insert("bad key".to_owned(), "dropped".to_owned());
        let p = ExtraParams {
            save_to_history: true,
            dialog_id: Some("d1".into()),
            date_sent: Some(1_700_000_000),
            markable: true,
            attachments: vec![Attachment {
                kind: "image".into(),
                uid: Some("u1".into()),
                size: Some(5),
                content_type: Some("image/png".into()),
                ..Attachment::default()
            }],
            custom,
            ..ExtraParams::default()
        };
        let m = chat_message(ChatKind::Chat, "id1", "9-7@chat", "hi", &p);
        let text = xml(&m);
        assert!(text.contains("<attachment"), "{text}");
        assert!(text.contains("content-type='image/png'"), "{text}");
        assert!(!text.contains("bad key"));
        let parsed: Element = text.parse().unwrap();
        let r = classify(&parsed);
        assert_eq!(r.what, Incoming::Chat { body: "hi".into() });
        assert_eq!(r.id.as_deref(), Some("id1"));
        let mut expected = p;
        expected.custom.remove("bad key");
        assert_eq!(r.extra, expected);
    }

    #[test]
    fn parses_what_the_js_sdk_sends() {
        let m: Element = r#"<message xmlns="jabber:client" type="chat" to="9-7@chat" id="a"><body>x</body><extraParams xmlns="jabber:client"><save_to_history>1</save_to_history><date_sent>1700000000123</date_sent><empty/><obj><a>1</a></obj><attachment uid="u" type="file" size="12"/></extraParams></message>"#.parse().unwrap();
        let r = classify(&m);
        assert!(r.extra.save_to_history);
        assert_eq!(r.extra.date_sent, Some(1_700_000_000));
        assert!(!r.extra.custom.contains_key("empty"));
        assert_eq!(r.extra.custom["obj"], r#"{"a":"1"}"#);
        assert_eq!(r.extra.attachments[0].size, Some(12));
    }

    #[test]
    fn classifies_every_family() {
        let parse = |e: Element| classify(&xml(&e).parse::<Element>().unwrap()).what;
        assert_eq!(
            parse(typing(ChatKind::Chat, "9-7@c", true, None)),
            Incoming::Typing { composing: true }
        );
        assert_eq!(
            parse(typing(ChatKind::GroupChat, "r", false, Some("d"))),
            Incoming::Typing { composing: false }
        );
        assert_eq!(
            parse(marker("i", "5-7@c", true, "m1", "d")),
            Incoming::Marker {
                message_id: "m1".into(),
                read: true
            }
        );
        assert_eq!(
            parse(marker("i", "5-7@c", false, "m1", "d")),
            Incoming::Marker {
                message_id: "m1".into(),
                read: false
            }
        );
        assert_eq!(
            parse(edit(ChatKind::Chat, "i", "t", "m1", "new", true, "d")),
            Incoming::Edit {
                message_id: "m1".into(),
                last: true,
                body: "new".into()
            }
        );
        assert_eq!(
            parse(delete(ChatKind::Chat, "i", "t", "m1", "d")),
            Incoming::Delete {
                message_id: "m1".into()
            }
        );
        assert_eq!(
            parse(reactions(
                ChatKind::GroupChat,
                "i",
                "t",
                &ReactionChange {
                    user_id: 5,
                    message_id: "m1".into(),
                    dialog_id: "d".into(),
                    add: Some("👍".into()),
                    remove: Some("🔥".into()),
                }
            )),
            Incoming::Reactions {
                message_id: "m1".into(),
                user_id: 5,
                add: vec!["👍".into()],
                remove: vec!["🔥".into()]
            }
        );
        let mut custom = BTreeMap::new();
        custom.insert("k".to_owned(), "v".to_owned());
        let sys = classify(&system_message("i", "t", "hello", &custom));
        assert_eq!(
            sys.what,
            Incoming::System {
                body: "hello".into()
            }
        );
        assert_eq!(sys.extra.module_identifier.as_deref(), Some(SYSTEM_MODULE));
        assert_eq!(sys.extra.custom["k"], "v");
        assert_eq!(
            parse(message_error(
                "m1",
                "5-7@c",
                503,
                "service-unavailable",
                "blocked"
            )),
            Incoming::Error {
                code: 503,
                text: "blocked".into()
            }
        );
    }

    #[test]
    fn carbons_wrap_and_unwrap() {
        let m = chat_message(
            ChatKind::Chat,
            "id1",
            "9-7@chat",
            "hi",
            &ExtraParams::default(),
        );
        let c = carbon(&m, true, "5-7@chat/r2", "5-7@chat");
        assert_eq!(c.attr("type"), None);
        let (inner, sent) = unwrap_carbon(&xml(&c).parse().unwrap()).unwrap();
        assert!(sent);
        assert_eq!(inner.attr("id"), Some("id1"));
        assert!(unwrap_carbon(&m).is_none());
        let d = delay(1_700_000_000, "chat");
        let mut m2 = m;
        m2.append_child(d);
        assert_eq!(classify(&m2).delay, Some(1_700_000_000));
    }

    #[test]
    fn privacy_lists_round_trip_xep_examples() {
        // XEP-0016 example 10 style, plus ConnectyCube's one-way / two-way items.
        let src = r#"<list xmlns="jabber:iq:privacy" name="public"><item type="jid" value="tybalt@example.com" action="deny" order="1"/><item action="allow" order="2"/></list>"#;
        let l = PrivacyList::from_element(&src.parse().unwrap()).unwrap();
        assert_eq!(l.name, "public");
        assert_eq!(l.items.len(), 2);
        assert!(l.items[0].covers_all());
        assert_eq!(l.items[0].value.as_deref(), Some("tybalt@example.com"));
        assert_eq!(l.items[1].kind, None);
        assert!(l.items[1].allow);
        let back = PrivacyList::from_element(&xml_text(&l.to_element())).unwrap();
        assert_eq!(back, l);

        let cc = PrivacyList {
            name: "myList".into(),
            items: vec![
                PrivacyItem::deny_jid("34-7@chat", 2, true),
                PrivacyItem::deny_jid("muc.chat/34", 1, false),
            ],
        };
        let text = xml(&cc.to_element());
        assert!(
            text.contains("<message/><presence-in/><presence-out/><iq/>"),
            "{text}"
        );
        let back = PrivacyList::from_element(&xml_text(&cc.to_element())).unwrap();
        assert_eq!(back, cc);
        assert!(!back.items[0].covers_all());
        assert_eq!(back.by_order()[0].value.as_deref(), Some("muc.chat/34"));

        let bad: Element = r#"<list xmlns="jabber:iq:privacy" name="x"><item type="jid" value="a@b" action="block" order="1"/></list>"#.parse().unwrap();
        assert!(PrivacyList::from_element(&bad).is_none());
        let unnamed: Element = r#"<list xmlns="jabber:iq:privacy"/>"#.parse().unwrap();
        assert!(PrivacyList::from_element(&unnamed).is_none());
        assert_eq!(
            xml(&last_activity(42)),
            "<query xmlns='jabber:iq:last' seconds='42'/>"
        );
    }

    fn xml_text(e: &Element) -> Element {
        xml(e).parse().unwrap()
    }
}
