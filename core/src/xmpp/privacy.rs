//! Privacy (block) lists: XEP-0016 payloads (xso derives) and ConnectyCube's use of them
//! (protocol reference §6.8): only a default list is used; each blocked user gives two items,
//! the user JID (1:1 chats) and `muc.{domain}/{userId}` (that user in any group chat); the
//! four children `<message/><presence-in/><presence-out/><iq/>` mean a one-way block, no
//! children a two-way block.

use std::fmt;

use minidom::Element;
use xso::{AsXml, AsXmlText, FromXml, FromXmlText};

use cubechat_wire::stanza::{user_id_of, user_jid};

use super::engine::ChatShared;
use crate::error::{Error, Result};

pub(crate) const NS_PRIVACY: &str = "jabber:iq:privacy";

/// What a privacy list item does to matching stanzas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrivacyAction {
    /// Let the user's stanzas through (an explicit exception).
    Allow,
    /// Block the user (one-way or mutual, as the item says).
    Deny,
}

impl PrivacyAction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

impl FromXmlText for PrivacyAction {
    fn from_xml_text(s: String) -> Result<Self, xso::error::Error> {
        match s.as_str() {
            "allow" => Ok(Self::Allow),
            "deny" => Ok(Self::Deny),
            _ => Err(xso::error::Error::Other("unknown privacy action")),
        }
    }
}

impl AsXmlText for PrivacyAction {
    fn as_xml_text(&self) -> Result<std::borrow::Cow<'_, str>, xso::error::Error> {
        Ok(self.as_str().into())
    }
}

/// The `type` of a privacy list item (absent = the fall-through item).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemType {
    Jid,
    Group,
    Subscription,
}

impl FromXmlText for ItemType {
    fn from_xml_text(s: String) -> Result<Self, xso::error::Error> {
        match s.as_str() {
            "jid" => Ok(Self::Jid),
            "group" => Ok(Self::Group),
            "subscription" => Ok(Self::Subscription),
            _ => Err(xso::error::Error::Other("unknown privacy item type")),
        }
    }
}

impl AsXmlText for ItemType {
    fn as_xml_text(&self) -> Result<std::borrow::Cow<'_, str>, xso::error::Error> {
        Ok(match self {
            Self::Jid => "jid",
            Self::Group => "group",
            Self::Subscription => "subscription",
        }
        .into())
    }
}

/// `<query xmlns='jabber:iq:privacy'>`: names (`active`, `default`) and lists.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Default)]
#[xml(namespace = NS_PRIVACY, name = "query")]
pub(crate) struct Query {
    #[xml(child(default))]
    pub active: Option<Active>,
    #[xml(child(default))]
    pub default: Option<Default>,
    #[xml(child(n = ..))]
    pub lists: Vec<List>,
}

/// `<active name?/>`; without a name it declines the active list.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_PRIVACY, name = "active")]
pub(crate) struct Active {
    #[xml(attribute(default))]
    pub name: Option<String>,
}

/// `<default name?/>`; without a name it declines the default list.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_PRIVACY, name = "default")]
pub(crate) struct Default {
    #[xml(attribute(default))]
    pub name: Option<String>,
}

/// `<list name>` with its items (none = a request for, or the removal of, the list).
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_PRIVACY, name = "list")]
pub(crate) struct List {
    #[xml(attribute)]
    pub name: String,
    #[xml(child(n = ..))]
    pub items: Vec<Item>,
}

/// `<item type? value? action order>` with the stanza kinds it applies to (none = all).
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_PRIVACY, name = "item")]
pub(crate) struct Item {
    #[xml(attribute(name = "type", default))]
    pub type_: Option<ItemType>,
    #[xml(attribute(default))]
    pub value: Option<String>,
    #[xml(attribute)]
    pub action: PrivacyAction,
    #[xml(attribute)]
    pub order: u32,
    #[xml(flag)]
    pub message: bool,
    #[xml(flag(name = "presence-in"))]
    pub presence_in: bool,
    #[xml(flag(name = "presence-out"))]
    pub presence_out: bool,
    #[xml(flag)]
    pub iq: bool,
}

impl Item {
    fn jid(value: String, action: PrivacyAction, order: u32, one_way: bool) -> Self {
        Self {
            type_: Some(ItemType::Jid),
            value: Some(value),
            action,
            order,
            message: one_way,
            presence_in: one_way,
            presence_out: one_way,
            iq: one_way,
        }
    }
}

/// One user of a privacy list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacyListItem {
    /// The user this item applies to (never 0).
    pub user_id: u64,
    /// `Deny` blocks the user, `Allow` explicitly lets them through.
    pub action: PrivacyAction,
    /// Two-way block: neither side can write to the other (JS `mutualBlock`). Otherwise
    /// one-way: this user receives nothing from them but can still write to them.
    pub mutual_block: bool,
}

impl PrivacyListItem {
    /// A one-way block of `user_id`.
    pub fn block(user_id: u64) -> Self {
        Self {
            user_id,
            action: PrivacyAction::Deny,
            mutual_block: false,
        }
    }

    /// A two-way block of `user_id`.
    pub fn block_mutual(user_id: u64) -> Self {
        Self {
            user_id,
            action: PrivacyAction::Deny,
            mutual_block: true,
        }
    }
}

/// A named privacy list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacyList {
    /// The list's name: 1 to 256 bytes, not blank.
    pub name: String,
    /// Its users, in order; a list sent to the server needs at least one.
    pub items: Vec<PrivacyListItem>,
}

/// The names of this user's privacy lists.
#[derive(Debug, Clone, PartialEq, Eq, std::default::Default)]
pub struct PrivacyListNames {
    /// The list active for this session, if any (ConnectyCube never sets one).
    pub active: Option<String>,
    /// The default list, the one ConnectyCube enforces.
    pub default: Option<String>,
    /// Every list.
    pub names: Vec<String>,
}

impl fmt::Display for PrivacyAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > 256 {
        return Err(Error::InvalidInput(
            "privacy list name must be 1 to 256 bytes and not blank".into(),
        ));
    }
    super::util::check_text("privacy list name", name)
}

/// The wire list: per user the user-JID item then the room item, orders 2k+1 and 2k+2 (JS).
pub(crate) fn to_wire(list: &PrivacyList, app_id: u64, domain: &str) -> Result<List> {
    check_name(&list.name)?;
    if list.items.is_empty() {
        return Err(Error::InvalidInput(
            "a privacy list needs at least one item".into(),
        ));
    }
    let mut items = Vec::with_capacity(list.items.len() * 2);
    for (k, it) in list.items.iter().enumerate() {
        if it.user_id == 0 {
            return Err(Error::InvalidInput("user id must be positive".into()));
        }
        let order = u32::try_from(2 * k + 1)
            .map_err(|_| Error::InvalidInput("privacy list is too long".into()))?;
        let one_way = !it.mutual_block;
        items.push(Item::jid(
            user_jid(it.user_id, app_id, domain),
            it.action,
            order,
            one_way,
        ));
        items.push(Item::jid(
            format!("muc.{domain}/{}", it.user_id),
            it.action,
            order + 1,
            one_way,
        ));
    }
    Ok(List {
        name: list.name.clone(),
        items,
    })
}

/// The user of a ConnectyCube item value: `{uid}-{app}@{domain}` or `muc.{domain}/{uid}`.
fn item_user(value: &str) -> Option<u64> {
    if let Some(uid) = value.strip_prefix("muc.").and_then(|v| v.split_once('/')) {
        return uid.1.parse().ok().filter(|u| *u != 0);
    }
    user_id_of(value).filter(|u| *u != 0)
}

/// Back from the wire: one entry per user, in stored order; items that name no ConnectyCube
/// user (groups, subscriptions, other JIDs) are skipped.
pub(crate) fn from_wire(list: List) -> PrivacyList {
    let mut items: Vec<PrivacyListItem> = Vec::new();
    let mut sorted = list.items;
    sorted.sort_by_key(|i| i.order);
    for it in sorted {
        if it.type_ != Some(ItemType::Jid) {
            continue;
        }
        let Some(user_id) = it.value.as_deref().and_then(item_user) else {
            continue;
        };
        if items.iter().any(|i| i.user_id == user_id) {
            continue;
        }
        items.push(PrivacyListItem {
            user_id,
            action: it.action,
            mutual_block: !(it.message || it.presence_in || it.presence_out || it.iq),
        });
    }
    PrivacyList {
        name: list.name,
        items,
    }
}

fn query(q: Query) -> Element {
    Element::from(q)
}

fn parse_query(reply: Option<Element>) -> Result<Query> {
    let el = reply.ok_or_else(|| Error::Protocol("privacy reply without a query".into()))?;
    Query::try_from(el).map_err(|e| Error::Protocol(format!("malformed privacy reply: {e}")))
}

impl ChatShared {
    /// The session side of `ChatSession::create_privacy_list`.
    pub(crate) async fn create_privacy_list(&self, list: &PrivacyList) -> Result<()> {
        let wire = to_wire(list, self.cfg.app_id, self.cfg.chat.domain.trim())?;
        let q = query(Query {
            lists: vec![wire],
            ..std::default::Default::default()
        });
        self.iq_request("set", None, "edit", q).await.map(|_| ())
    }

    /// The session side of `ChatSession::privacy_list_names`.
    pub(crate) async fn privacy_list_names(&self) -> Result<PrivacyListNames> {
        let q = query(Query::default());
        let reply = parse_query(self.iq_request("get", None, "getNames", q).await?)?;
        Ok(PrivacyListNames {
            active: reply.active.and_then(|a| a.name),
            default: reply.default.and_then(|d| d.name),
            names: reply.lists.into_iter().map(|l| l.name).collect(),
        })
    }

    /// The session side of `ChatSession::privacy_list`.
    pub(crate) async fn privacy_list(&self, name: &str) -> Result<PrivacyList> {
        check_name(name)?;
        let q = query(Query {
            lists: vec![List {
                name: name.to_owned(),
                items: Vec::new(),
            }],
            ..std::default::Default::default()
        });
        let reply = parse_query(self.iq_request("get", None, "getlist", q).await?)?;
        let list = reply
            .lists
            .into_iter()
            .find(|l| l.name == name)
            .ok_or_else(|| Error::Protocol("privacy reply without the list".into()))?;
        Ok(from_wire(list))
    }

    /// The session side of `ChatSession::set_default_privacy_list`.
    pub(crate) async fn set_default_privacy_list(&self, name: Option<&str>) -> Result<()> {
        if let Some(n) = name {
            check_name(n)?;
        }
        let q = query(Query {
            default: Some(Default {
                name: name.map(str::to_owned),
            }),
            ..std::default::Default::default()
        });
        self.iq_request("set", None, "default", q).await.map(|_| ())
    }

    /// The session side of `ChatSession::update_privacy_list`.
    pub(crate) async fn update_privacy_list(&self, list: &PrivacyList) -> Result<()> {
        to_wire(list, self.cfg.app_id, self.cfg.chat.domain.trim())?;
        let names = self.privacy_list_names().await?;
        if names.default.as_deref() != Some(list.name.as_str()) {
            return self.create_privacy_list(list).await;
        }
        self.set_default_privacy_list(None).await?;
        let replaced = self.create_privacy_list(list).await;
        match self.set_default_privacy_list(Some(&list.name)).await {
            Ok(()) => replaced,
            Err(e) => Err(Error::Server {
                status: 409,
                message: format!(
                    "privacy list '{}' {} but could not be made the default again ({e}); \
                     call set_default_privacy_list",
                    list.name,
                    if replaced.is_ok() {
                        "was updated"
                    } else {
                        "was not updated"
                    }
                ),
            }),
        }
    }

    /// The session side of `ChatSession::delete_privacy_list`.
    pub(crate) async fn delete_privacy_list(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let q = query(Query {
            lists: vec![List {
                name: name.to_owned(),
                items: Vec::new(),
            }],
            ..std::default::Default::default()
        });
        self.iq_request("set", None, "remove", q).await.map(|_| ())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Query {
        Query::try_from(xml.parse::<Element>().unwrap()).unwrap()
    }

    /// Parse, serialise, parse again: the same value.
    fn round_trip(xml: &str) -> Query {
        let q = parse(xml);
        let back = Query::try_from(Element::from(q.clone())).unwrap();
        assert_eq!(q, back, "{xml}");
        q
    }

    #[test]
    fn xep_0016_examples_round_trip() {
        // Example 1/2: names request and result.
        let q = round_trip("<query xmlns='jabber:iq:privacy'/>");
        assert_eq!(q, Query::default());
        let q = round_trip(
            "<query xmlns='jabber:iq:privacy'>
               <active name='private'/>
               <default name='public'/>
               <list name='public'/>
               <list name='private'/>
               <list name='special'/>
             </query>",
        );
        assert_eq!(q.active.unwrap().name.as_deref(), Some("private"));
        assert_eq!(q.default.unwrap().name.as_deref(), Some("public"));
        let names: Vec<_> = q.lists.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["public", "private", "special"]);
        // Example 4: a list with jid, subscription and fall-through items.
        let q = round_trip(
            "<query xmlns='jabber:iq:privacy'>
               <list name='public'>
                 <item type='jid' value='tybalt@example.com' action='deny' order='1'/>
                 <item action='allow' order='2'/>
               </list>
             </query>",
        );
        let l = &q.lists[0];
        assert_eq!(l.items.len(), 2);
        assert_eq!(l.items[0].type_, Some(ItemType::Jid));
        assert_eq!(l.items[0].action, PrivacyAction::Deny);
        assert_eq!(l.items[1].type_, None);
        assert_eq!(l.items[1].value, None);
        let q = round_trip(
            "<query xmlns='jabber:iq:privacy'>
               <list name='special'>
                 <item type='jid' value='juliet@example.com' action='allow' order='6'/>
                 <item type='group' value='my_friends' action='allow' order='7'/>
                 <item type='subscription' value='both' action='allow' order='8'/>
                 <item action='deny' order='42'/>
               </list>
             </query>",
        );
        assert_eq!(q.lists[0].items[2].type_, Some(ItemType::Subscription));
        assert_eq!(q.lists[0].items[3].order, 42);
        // Example 9/11: set active/default, and decline with an empty element.
        let q = round_trip("<query xmlns='jabber:iq:privacy'><active name='special'/></query>");
        assert_eq!(q.active.unwrap().name.as_deref(), Some("special"));
        let q = round_trip("<query xmlns='jabber:iq:privacy'><default/></query>");
        assert_eq!(q.default, Some(Default { name: None }));
        // Example 44-ish: blocking stanza kinds.
        let q = round_trip(
            "<query xmlns='jabber:iq:privacy'>
               <list name='iq-jid-example'>
                 <item type='jid' value='tybalt@example.com' action='deny' order='5'><iq/></item>
                 <item type='jid' value='romeo@example.net' action='deny' order='6'><presence-in/><message/></item>
               </list>
             </query>",
        );
        let it = &q.lists[0].items;
        assert!(it[0].iq && !it[0].message);
        assert!(it[1].presence_in && it[1].message && !it[1].presence_out);
        // Unknown action is refused.
        assert!(Query::try_from(
            "<query xmlns='jabber:iq:privacy'><list name='x'><item action='maybe' order='1'/></list></query>"
                .parse::<Element>()
                .unwrap()
        )
        .is_err());
    }

    #[test]
    fn connectycube_list_shape() {
        let list = PrivacyList {
            name: "myList".into(),
            items: vec![
                PrivacyListItem::block(34),
                PrivacyListItem::block_mutual(48),
            ],
        };
        let wire = to_wire(&list, 7, "chat").unwrap();
        let el = query(Query {
            lists: vec![wire.clone()],
            ..std::default::Default::default()
        });
        // Exactly the §6.8 example.
        let expected: Element = "<query xmlns='jabber:iq:privacy'><list name='myList'>\
            <item type='jid' value='34-7@chat' action='deny' order='1'><message/><presence-in/><presence-out/><iq/></item>\
            <item type='jid' value='muc.chat/34' action='deny' order='2'><message/><presence-in/><presence-out/><iq/></item>\
            <item type='jid' value='48-7@chat' action='deny' order='3'/>\
            <item type='jid' value='muc.chat/48' action='deny' order='4'/>\
            </list></query>"
            .parse()
            .unwrap();
        assert_eq!(el, expected, "{}", String::from(&el));
        assert_eq!(from_wire(wire), list);
        // At least one item, positive ids, a name.
        let mut bad = list.clone();
        bad.items.clear();
        assert!(matches!(
            to_wire(&bad, 7, "chat"),
            Err(Error::InvalidInput(_))
        ));
        let mut bad = list.clone();
        bad.items[0].user_id = 0;
        assert!(matches!(
            to_wire(&bad, 7, "chat"),
            Err(Error::InvalidInput(_))
        ));
        let mut bad = list;
        bad.name = " ".into();
        assert!(matches!(
            to_wire(&bad, 7, "chat"),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn from_wire_reads_dart_order_and_skips_foreign_items() {
        let q = parse(
            "<query xmlns='jabber:iq:privacy'><list name='l'>\
               <item type='jid' value='34-7@chat' action='deny' order='1'/>\
               <item type='jid' value='48-7@chat' action='allow' order='2'><message/></item>\
               <item type='jid' value='muc.chat/34' action='deny' order='3'/>\
               <item type='jid' value='muc.chat/48' action='allow' order='4'><message/></item>\
               <item type='group' value='friends' action='allow' order='5'/>\
               <item type='jid' value='someone@else' action='deny' order='6'/>\
               <item action='allow' order='7'/>\
             </list></query>",
        );
        let l = from_wire(q.lists.into_iter().next().unwrap());
        assert_eq!(
            l.items,
            vec![
                PrivacyListItem::block_mutual(34),
                PrivacyListItem {
                    user_id: 48,
                    action: PrivacyAction::Allow,
                    mutual_block: false
                },
            ]
        );
        assert_eq!(item_user("muc.chat/12"), Some(12));
        assert_eq!(item_user("12-7@chat"), Some(12));
        assert_eq!(item_user("muc.chat/x"), None);
    }
}
