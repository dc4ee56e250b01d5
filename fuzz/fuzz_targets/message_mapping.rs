//! The engine's message mapping: a message as an app gives it (any body, any custom
//! parameters) through `send_message`'s checks, the stanza the engine sends, and back through
//! a receiving engine's classification: accepted content arrives unchanged, refused content
//! is `InvalidInput`. Also any REST history message into the local store's message.
#![no_main]

use std::collections::BTreeMap;

use cubechat_core::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (String, BTreeMap<String, String>, Vec<u8>)| {
    let (body, custom, json) = input;
    fuzzing::message_roundtrip(&body, &custom);
    fuzzing::history_message(&json);
});
