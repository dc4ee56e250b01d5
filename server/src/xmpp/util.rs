//! Small helpers on minidom elements (attributes, `extraParams`, JIDs).

use cubechat_wire::stanza::NS_CLIENT;
use minidom::rxml::{Namespace, NcName};
use minidom::Element;

pub const NS_SM: &str = "urn:xmpp:sm:3";
pub const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
pub const NS_PING: &str = "urn:xmpp:ping";
pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// Sets (or replaces) a plain attribute.
pub fn set_attr(el: &mut Element, name: &str, value: &str) {
    if let Ok(n) = NcName::try_from(name) {
        el.set_attr(Namespace::NONE, n, value.to_owned());
    }
}

/// An element with attributes (names are literals here, always valid).
pub fn elem(name: &str, ns: &str, attrs: &[(&str, &str)]) -> Element {
    let mut e = Element::builder(name, ns).build();
    for (k, v) in attrs {
        set_attr(&mut e, k, v);
    }
    e
}

/// A `jabber:client` element with text.
pub fn leaf(name: &str, text: &str) -> Element {
    Element::builder(name, NS_CLIENT).append(text).build()
}

/// Adds `key` to the message's `extraParams` (created if missing) unless it is there.
pub fn ensure_extra(msg: &mut Element, key: &str, value: &str) {
    if !msg.children().any(|c| c.name() == "extraParams") {
        msg.append_child(Element::builder("extraParams", NS_CLIENT).build());
    }
    if let Some(x) = msg.children_mut().find(|c| c.name() == "extraParams") {
        if !x.children().any(|c| c.name() == key) {
            x.append_child(leaf(key, value));
        }
    }
}

/// The first child element with this name (any namespace).
pub fn child<'a>(el: &'a Element, name: &str) -> Option<&'a Element> {
    el.children().find(|c| c.name() == name)
}

/// `(user_id, app_id, resource)` of a user JID `{uid}-{app}@{domain}[/{res}]`.
pub fn parse_user_jid(jid: &str, domain: &str) -> Option<(u64, u64, Option<String>)> {
    let (local, rest) = jid.split_once('@')?;
    let (host, resource) = match rest.split_once('/') {
        Some((h, r)) => (h, Some(r.to_owned())),
        None => (rest, None),
    };
    if !host.eq_ignore_ascii_case(domain) {
        return None;
    }
    let (uid, app) = local.split_once('-')?;
    let uid: u64 = uid.parse().ok().filter(|u| *u > 0)?;
    let app: u64 = app.parse().ok().filter(|a| *a > 0)?;
    Some((uid, app, resource))
}

/// `(app_id, dialog_id, nick)` of a room JID `{app}_{dialog}@muc.{domain}[/{nick}]`.
pub fn parse_room_jid(jid: &str, domain: &str) -> Option<(u64, String, Option<String>)> {
    let (local, rest) = jid.split_once('@')?;
    let (host, nick) = match rest.split_once('/') {
        Some((h, n)) => (h, Some(n.to_owned())),
        None => (rest, None),
    };
    if !host.eq_ignore_ascii_case(&format!("muc.{domain}")) {
        return None;
    }
    let (app, dialog) = local.split_once('_')?;
    let app: u64 = app.parse().ok()?;
    (!dialog.is_empty()).then(|| (app, dialog.to_owned(), nick))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn jids() {
        assert_eq!(
            parse_user_jid("5-7@chat/r1", "chat"),
            Some((5, 7, Some("r1".into())))
        );
        assert_eq!(parse_user_jid("5-7@chat", "chat"), Some((5, 7, None)));
        assert_eq!(parse_user_jid("5-7@other", "chat"), None);
        assert_eq!(parse_user_jid("x-7@chat", "chat"), None);
        assert_eq!(
            parse_room_jid("7_abc@muc.chat/5", "chat"),
            Some((7, "abc".into(), Some("5".into())))
        );
        assert_eq!(parse_room_jid("7_abc@chat", "chat"), None);
    }

    #[test]
    fn extra_params_are_added_once() {
        let mut m: Element = "<message xmlns='jabber:client'><body>x</body></message>"
            .parse()
            .unwrap();
        ensure_extra(&mut m, "dialog_id", "d1");
        ensure_extra(&mut m, "dialog_id", "d2");
        ensure_extra(&mut m, "date_sent", "5");
        let x = child(&m, "extraParams").unwrap();
        assert_eq!(x.children().count(), 2);
        assert_eq!(child(x, "dialog_id").unwrap().text(), "d1");
        set_attr(&mut m, "from", "a@b/c");
        set_attr(&mut m, "from", "a@b/d");
        assert_eq!(m.attr("from"), Some("a@b/d"));
    }
}
