//! Prometheus HTTP API answers (`/api/v1/query` bodies) through the scaler's decoder: a 2xx body
//! through `decode`, a non-2xx body through `error_text`. Property: no panic, and whatever is
//! reflected into a status message stays short however large the answer.
#![no_main]

use ebb_scalers::prometheus::response::{EXCERPT_CHARS, decode, error_text};
use libfuzzer_sys::fuzz_target;

/// Fixed wording of the longest message plus three label excerpts and one excerpt.
const MAX_MESSAGE_CHARS: usize = 400 + 4 * (EXCERPT_CHARS + 1);

fuzz_target!(|body: &[u8]| {
    if let Err(e) = decode(body) {
        let message = e.to_string();
        let n = message.chars().count();
        assert!(n <= MAX_MESSAGE_CHARS, "a {}-byte answer gave a {n}-character message", body.len());
    }
    let text = error_text(body);
    let n = text.chars().count();
    assert!(n <= MAX_MESSAGE_CHARS, "a {}-byte error answer gave a {n}-character message", body.len());
});
