//! `sip::message::parse_datagram` on arbitrary bytes: no panic, and what
//! parses survives validation and print → parse.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sip_fuzz::datagram(data);
});
