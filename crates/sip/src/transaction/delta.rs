//! A response kept for retransmission, written as its difference from a
//! similar response (a [`Template`]).
//!
//! A completed non-INVITE server transaction keeps its final response for
//! Timer J (RFC 3261 §17.2.2: 64 × T1, 32 s) only to send it again when
//! the request is retransmitted. At 10,000 REGISTERs a second that is
//! 640,000 responses (a 401 and a 200 per registration) of 350–500 bytes
//! each: 250 MB that are almost all the same bytes. Two responses with the
//! same status from the same registrar differ in a few short places: the
//! numbers in a branch, a user, a tag, a Call-ID, the nonce. So a response
//! is kept as a list of edits of the template: copy `n` bytes of it, skip
//! `k` bytes of it, insert these bytes. After a difference both sides are
//! resynchronised at their next byte that is not a letter or a digit (the
//! `;`, `@`, `=`, `-`, `"` ... around every token). A 401 then takes
//! about 120 bytes (its random To tag and nonce are most of it), a 200
//! less.
//!
//! [`encode`] and [`decode`] are exact for any bytes: decoding gives back
//! the very bytes that were sent, so a retransmission is answered byte for
//! byte. A message unlike its template only encodes large (it is then made
//! a template itself by the caller).

/// A response others are written against.
#[derive(Debug)]
pub(crate) struct Template {
    bytes: Box<[u8]>,
}

impl Template {
    /// A template of `bytes`.
    pub(crate) fn new(bytes: &[u8]) -> Self {
        Template {
            bytes: bytes.into(),
        }
    }
}

/// Appends `message` written against `template` to `out`.
pub(crate) fn encode(template: &Template, message: &[u8], out: &mut Vec<u8>) {
    let base = &template.bytes[..];
    let (mut at_base, mut at_message) = (0, 0);
    loop {
        let copy = common_prefix(&base[at_base..], &message[at_message..]);
        at_base += copy;
        at_message += copy;
        if at_base == base.len() && at_message == message.len() {
            put_varint(out, copy);
            put_varint(out, 0);
            put_varint(out, 0);
            return;
        }
        // A difference: both sides move to their next separator, each by
        // at least one byte (so the loop ends).
        let base_next = next_separator(base, at_base);
        let message_next = next_separator(message, at_message);
        let inserted = &message[at_message..message_next];
        put_varint(out, copy);
        put_varint(out, base_next - at_base);
        put_varint(out, inserted.len());
        out.extend_from_slice(inserted);
        at_base = base_next;
        at_message = message_next;
    }
}

/// The message `encoded` stands for; `None` if it was not made by
/// [`encode`] with this template (never panics).
pub(crate) fn decode(template: &Template, mut encoded: &[u8]) -> Option<Vec<u8>> {
    let base = &template.bytes[..];
    let mut out = Vec::with_capacity(base.len() + encoded.len());
    let mut at_base = 0usize;
    while !encoded.is_empty() {
        let copy = take_varint(&mut encoded)?;
        let skip = take_varint(&mut encoded)?;
        let length = take_varint(&mut encoded)?;
        let copied = base.get(at_base..at_base.checked_add(copy)?)?;
        out.extend_from_slice(copied);
        at_base = at_base.checked_add(copy)?.checked_add(skip)?;
        if at_base > base.len() || length > encoded.len() {
            return None;
        }
        let (inserted, rest) = encoded.split_at(length);
        out.extend_from_slice(inserted);
        encoded = rest;
    }
    (at_base == base.len()).then_some(out)
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The first position after `from` whose byte is not a letter or a digit
/// (or the end).
fn next_separator(bytes: &[u8], from: usize) -> usize {
    let start = (from + 1).min(bytes.len());
    bytes[start..]
        .iter()
        .position(|b| !b.is_ascii_alphanumeric())
        .map_or(bytes.len(), |i| start + i)
}

/// LEB128: 7 bits a byte, low first.
fn put_varint(out: &mut Vec<u8>, mut value: usize) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn take_varint(input: &mut &[u8]) -> Option<usize> {
    let mut value: usize = 0;
    for shift in (0..).step_by(7).take(5) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"SIP/2.0 401 Unauthorized\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-3157-1-0;rport=5061;received=127.0.0.1\r\n\
        From: <sip:1001@127.0.0.1>;tag=3157SIPpTagReg1\r\n\
        To: <sip:1001@127.0.0.1>;tag=a8Fk2LmQ0pZx7Wc1\r\n\
        Call-ID: 1-3157@127.0.0.1\r\n\
        CSeq: 1 REGISTER\r\n\
        WWW-Authenticate: Digest realm=\"frontdesk\", nonce=\"0000019b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b\", opaque=\"1dab1d1653895a76\", algorithm=MD5, qop=\"auth\"\r\n\
        Server: frontdesk/0.1.0\r\n\
        Content-Length: 0\r\n\r\n";

    const B: &[u8] = b"SIP/2.0 401 Unauthorized\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-3157-42-0;rport=5061;received=127.0.0.1\r\n\
        From: <sip:1004@127.0.0.1>;tag=3157SIPpTagReg42\r\n\
        To: <sip:1004@127.0.0.1>;tag=Q9vB3nXr6TyU1oIe\r\n\
        Call-ID: 42-3157@127.0.0.1\r\n\
        CSeq: 1 REGISTER\r\n\
        WWW-Authenticate: Digest realm=\"frontdesk\", nonce=\"0000019b1c2d3e5a77e0c4ffb31d2a9e08c6b5d4f3e2a1b0c9d8e7f6a5b4c3d2e1f0\", opaque=\"1dab1d1653895a76\", algorithm=MD5, qop=\"auth\"\r\n\
        Server: frontdesk/0.1.0\r\n\
        Content-Length: 0\r\n\r\n";

    fn round_trip(template: &Template, message: &[u8]) -> Vec<u8> {
        let mut encoded = Vec::new();
        encode(template, message, &mut encoded);
        assert_eq!(decode(template, &encoded).as_deref(), Some(message));
        encoded
    }

    #[test]
    fn a_similar_response_is_small_and_comes_back_byte_for_byte() {
        let template = Template::new(A);
        let encoded = round_trip(&template, B);
        // The new tag (16) and nonce (52 after the shared start) and a few
        // digits, and three or four bytes per edit.
        assert!(
            encoded.len() <= 110,
            "{} bytes for {}",
            encoded.len(),
            B.len()
        );
        assert_eq!(round_trip(&template, A).len(), 4, "itself: one copy");
    }

    #[test]
    fn any_bytes_round_trip_and_garbage_never_panics() {
        let template = Template::new(b"a;bb\n\nccc=1");
        for message in [
            &b""[..],
            b"x\ny\nz\nw",
            b"\n\n\n",
            b"a;bb\n\nccc=1",
            b"a;bb\n\nccc=1;and more",
            b"aaa\nb\n\xff\x00\nc",
            b";;;;;;;;",
            b"a;",
        ] {
            let encoded = round_trip(&template, message);
            for cut in 0..encoded.len() {
                let _ = decode(&template, &encoded[..cut]);
            }
        }
        let empty = Template::new(b"");
        round_trip(&empty, b"anything;at all");
        round_trip(&empty, b"");
        for garbage in [
            &[0xffu8; 8][..],
            &[9, 9, 9],
            &[0, 0, 200, 1],
            &[200, 200, 1],
        ] {
            assert_eq!(decode(&template, garbage), None);
        }
    }

    #[test]
    fn varints_round_trip() {
        for value in [0, 1, 127, 128, 300, 65_535, 1 << 20] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut input = &out[..];
            assert_eq!(take_varint(&mut input), Some(value));
            assert!(input.is_empty());
        }
    }
}
