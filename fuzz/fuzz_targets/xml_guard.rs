//! The byte-level XML guard: any bytes, in any chunking, give the same verdict and the same
//! unit boundaries; redaction never panics.
#![no_main]

use cubechat_wire::xmlguard::{redact, Limits, XmlGuard};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8], chunk: usize) -> (Result<(), cubechat_wire::xmlguard::LimitError>, Vec<usize>) {
    let mut g = XmlGuard::new(Limits {
        max_depth: 8,
        max_stanza_bytes: 512,
    });
    let mut ends = Vec::new();
    let mut offset = 0;
    for piece in data.chunks(chunk.max(1)) {
        let r = g.feed(piece, |e| ends.push(offset + e));
        if r.is_err() {
            return (r, ends);
        }
        offset += piece.len();
    }
    (Ok(()), ends)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let whole = run(data, data.len());
    let chunked = run(data, usize::from(split % 7) + 1);
    assert_eq!(whole, chunked);
    let mut prev = 0;
    for &e in &whole.1 {
        assert!(e > prev || (prev == 0 && e > 0));
        let _ = redact(&data[prev..e]);
        prev = e;
    }
    let _ = redact(data);
});
