//! `sip::message::StreamFramer` on arbitrary bytes cut into reads: the first
//! byte says how many of the next bytes give the read sizes, the rest is
//! the stream. No panic, and every message that frames survives validation
//! and print → parse.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 8).min(rest.len());
    let (sizes, stream) = rest.split_at(count);
    sip_fuzz::stream(sizes, stream);
});
