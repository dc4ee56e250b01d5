//! Iq requests: `{id}:{purpose}` ids, the matching `result`/`error` awaited with the request
//! timeout. Replies are matched in the engine ([`reply`]); `result` and `error` iqs are never
//! answered, so error echoes cannot loop.

use minidom::Element;
use tokio::sync::oneshot;
use tokio_xmpp::parsers::stanza_error::StanzaError;

use cubechat_wire::stanza as wire;

use super::engine::{lock, nc, new_id, ChatShared};
use crate::error::{Error, Result};

/// The answer to a request: the result payload (if any), or the error as an [`Error`].
pub(crate) type Reply = Result<Option<Element>>;

/// Removes the pending entry when the request ends (answered, timed out or dropped).
struct Pending<'a> {
    shared: &'a ChatShared,
    id: String,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        lock(&self.shared.iqs).remove(&self.id);
    }
}

/// An iq of `kind` (`get`/`set`) with id `{id}:{purpose}` and one payload child.
pub(crate) fn build(
    kind: &str,
    to: Option<&str>,
    purpose: &str,
    payload: Element,
) -> (String, Element) {
    let id = format!("{}:{purpose}", new_id());
    let mut b = Element::builder("iq", wire::NS_CLIENT)
        .attr(nc("type"), kind)
        .attr(nc("id"), id.clone());
    if let Some(to) = to {
        b = b.attr(nc("to"), to);
    }
    (id, b.append(payload).build())
}

/// Hands a `result`/`error` to its request; false if nobody waits for `id`.
pub(crate) fn reply(shared: &ChatShared, id: &str, r: Reply) -> bool {
    match lock(&shared.iqs).remove(id) {
        Some(tx) => {
            let _ = tx.send(r);
            true
        }
        None => false,
    }
}

/// The legacy numeric code of a stanza error condition (XEP-0086).
fn legacy_code(cond: &str) -> u16 {
    match cond {
        "bad-request" | "jid-malformed" | "unexpected-request" => 400,
        "not-authorized" => 401,
        "payment-required" => 402,
        "forbidden" => 403,
        "item-not-found" | "recipient-unavailable" | "remote-server-not-found" => 404,
        "not-allowed" => 405,
        "not-acceptable" | "policy-violation" => 406,
        "registration-required" | "subscription-required" => 407,
        "conflict" => 409,
        "internal-server-error" | "undefined-condition" => 500,
        "feature-not-implemented" => 501,
        "remote-server-timeout" => 504,
        _ => 503,
    }
}

/// A stanza error as an engine error: `item-not-found` is `NotFound`, `forbidden`,
/// `not-allowed` and `not-authorized` are `Forbidden`, everything else (e.g. `conflict`,
/// 409) is `Server { status: legacy code, message: "condition: text" }`.
pub(crate) fn to_error(e: &StanzaError) -> Error {
    let el = Element::from(e.clone());
    let cond = el
        .children()
        .find(|c| c.ns() == wire::NS_STANZAS && c.name() != "text")
        .map(|c| c.name().to_owned())
        .unwrap_or_else(|| "undefined-condition".into());
    let text = e.texts.values().next().cloned().unwrap_or_default();
    let message = if text.is_empty() {
        cond.clone()
    } else {
        format!("{cond}: {text}")
    };
    match cond.as_str() {
        "item-not-found" => Error::NotFound(message),
        "forbidden" | "not-allowed" | "not-authorized" => Error::Forbidden(message),
        c => Error::Server {
            status: legacy_code(c),
            message,
        },
    }
}

impl ChatShared {
    /// Sends an iq request and waits (request timeout) for its answer. Errors:
    /// `ChatNotConnected`, `Network` (no answer in time, or the connection closed), and the
    /// server's stanza error mapped by [`to_error`].
    pub(crate) async fn iq_request(
        &self,
        kind: &str,
        to: Option<&str>,
        purpose: &str,
        payload: Element,
    ) -> Reply {
        let (id, el) = build(kind, to, purpose, payload);
        let (tx, rx) = oneshot::channel();
        lock(&self.iqs).insert(id.clone(), tx);
        let _pending = Pending { shared: self, id };
        self.send(el, None)?;
        match tokio::time::timeout(self.cfg.timeouts.request, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::Network("connection closed".into())),
            Err(_) => Err(Error::Network(format!(
                "no answer to the {purpose} request"
            ))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn err(xml: &str) -> Error {
        let el: Element = xml.parse().unwrap();
        to_error(&StanzaError::try_from(el).unwrap())
    }

    #[test]
    fn stanza_errors_map_to_typed_errors() {
        let e = err("<error xmlns='jabber:client' type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
            <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>in use</text></error>");
        assert_eq!(
            e,
            Error::Server {
                status: 409,
                message: "conflict: in use".into()
            }
        );
        let e = err("<error xmlns='jabber:client' type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>");
        assert_eq!(e, Error::NotFound("item-not-found".into()));
        let e = err("<error xmlns='jabber:client' type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>");
        assert!(matches!(e, Error::Forbidden(_)));
        let e = err("<error xmlns='jabber:client' type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>");
        assert!(matches!(e, Error::Server { status: 503, .. }));
    }

    #[test]
    fn requests_carry_a_purpose_id() {
        let (id, el) = build(
            "get",
            Some("5-7@chat"),
            "lastActivity",
            Element::bare("query", crate::xmpp::presence::NS_LAST),
        );
        assert!(id.ends_with(":lastActivity"));
        assert_eq!(el.attr("id"), Some(id.as_str()));
        assert_eq!(el.attr("type"), Some("get"));
        assert_eq!(el.attr("to"), Some("5-7@chat"));
        assert!(el.has_child("query", crate::xmpp::presence::NS_LAST));
    }
}
