//! Inbound stanza decoding as the engine and cubeserver do it: bytes pass the XML guard
//! (default limits) inside a stream, each complete unit is parsed into an element, and the
//! element goes through the shared stanza decoders.
#![no_main]

use cubechat_wire::stanza::{classify, room_of, unwrap_carbon, user_id_of, ExtraParams};
use cubechat_wire::xmlguard::{Limits, XmlGuard};
use libfuzzer_sys::fuzz_target;
use minidom::Element;

const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

fn decode(e: &Element) {
    let _ = classify(e);
    if let Some((inner, _)) = unwrap_carbon(e) {
        let _ = classify(&inner);
    }
    for c in e.children() {
        let _ = ExtraParams::from_element(c);
    }
    for a in ["from", "to"] {
        if let Some(j) = e.attr(a) {
            let _ = user_id_of(j);
            let _ = room_of(j);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut g = XmlGuard::new(Limits::default());
    let _ = g.feed(HEADER, |_| {});
    let mut ends = Vec::new();
    if g.feed(data, |e| ends.push(e)).is_err() {
        return;
    }
    let mut prev = 0;
    for e in ends {
        let unit = &data[prev..e];
        prev = e;
        let Ok(text) = std::str::from_utf8(unit) else {
            continue;
        };
        // A stanza is parsed on its own, with the stream's default namespace.
        let wrapped = format!(
            "<wrap xmlns='jabber:client'>{}</wrap>",
            text.trim()
        );
        if let Ok(w) = wrapped.parse::<Element>() {
            for c in w.children() {
                decode(c);
            }
        }
    }
});
