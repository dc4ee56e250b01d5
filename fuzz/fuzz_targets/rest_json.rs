//! REST JSON answers as the engine decodes them: any bytes into each response type of the
//! shared wire models (sessions, users, dialogs, messages, blobs, errors), then the helpers
//! that read loosely typed fields.
#![no_main]

use cubechat_wire::{auth, chat, error};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<auth::SessionEnvelope>(data);
    let _ = serde_json::from_slice::<auth::UserEnvelope>(data);
    let _ = serde_json::from_slice::<auth::UsersPage>(data);
    let _ = serde_json::from_slice::<chat::DialogsPage>(data);
    let _ = serde_json::from_slice::<chat::Dialog>(data);
    let _ = serde_json::from_slice::<chat::MessagesPage>(data);
    let _ = serde_json::from_slice::<chat::DeleteResult>(data);
    let _ = serde_json::from_slice::<chat::SearchResults>(data);
    let _ = serde_json::from_slice::<chat::BlobEnvelope>(data);
    if let Ok(e) = serde_json::from_slice::<error::ErrorBody>(data) {
        let _ = e.messages();
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = chat::id_list(&v);
    }
});
