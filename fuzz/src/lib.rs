//! What every fuzz target checks on whatever parses: the typed views and
//! validation do not panic, and print → parse gives back the same message
//! (Content-Length aside, which the printer normalises).

use bytes::Bytes;
use sip::message::validate::{self, Policy};
use sip::message::{Frame, HeaderName, Limits, Message, ParseError, StreamFramer, parse_datagram};

/// Parses `data` as a UDP datagram and checks what parses.
pub fn datagram(data: &[u8]) {
    if let Ok(Frame::Message(message)) =
        parse_datagram(Bytes::copy_from_slice(data), &Limits::default())
    {
        check(&message);
    }
}

/// Feeds `data` to a stream framer in reads whose sizes come from `sizes`
/// (cycled; 1 to 256 bytes), checking every message that frames.
pub fn stream(sizes: &[u8], data: &[u8]) {
    let mut framer = StreamFramer::new(Limits::default());
    let mut at = 0;
    let mut read = 0;
    while at < data.len() {
        let size = sizes
            .get(read % sizes.len().max(1))
            .map_or(data.len(), |&s| usize::from(s) + 1);
        read += 1;
        let end = (at + size).min(data.len());
        framer.extend(&data[at..end]);
        at = end;
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(message))) => check(&message),
                Ok(Some(Frame::KeepAlive(_))) => {}
                Ok(None) => break,
                // The framing is lost: a transport closes the connection.
                Err(ParseError { .. }) => return,
            }
        }
    }
}

/// Every typed view, validation, and the print → parse round trip.
pub fn check(message: &Message) {
    let headers = message.headers();
    let _ = headers.vias();
    let _ = headers.top_via();
    let _ = headers
        .from()
        .map(|a| (a.tag().map(str::to_owned), a.to_string()));
    let _ = headers.to().map(|a| a.to_string());
    let _ = headers.call_id();
    let _ = headers.cseq();
    let _ = headers.max_forwards();
    let _ = headers.expires();
    let _ = headers.contacts();
    let _ = headers.routes();
    let _ = headers.record_routes();
    let _ = headers.require();
    let _ = headers.supported();
    let _ = headers.content_type();
    let _ = headers
        .authorizations()
        .map(|list| list.iter().map(ToString::to_string).count());
    let _ = headers.www_authenticates();
    match message.clone() {
        Message::Request(request) => {
            let _ = validate::request(request, &Policy::default());
        }
        Message::Response(response) => {
            let _ = validate::response(response);
        }
    }

    let printed = message.encode();
    let reparsed = match parse_datagram(printed.clone(), &Limits::default()) {
        Ok(Frame::Message(reparsed)) => reparsed,
        other => panic!("the print does not parse: {other:?}\n{printed:?}"),
    };
    assert_eq!(
        without_content_length(&reparsed),
        without_content_length(message),
        "print → parse changed the message: {printed:?}"
    );
    assert_eq!(reparsed.encode(), printed, "printing is not stable");
}

fn without_content_length(message: &Message) -> Message {
    let mut message = message.clone();
    match &mut message {
        Message::Request(request) => request.headers.remove(&HeaderName::ContentLength),
        Message::Response(response) => response.headers.remove(&HeaderName::ContentLength),
    }
    message
}

#[cfg(test)]
mod tests {
    /// The harness itself runs on stable: replay the seeds through both
    /// targets (`cargo test --manifest-path fuzz/Cargo.toml --lib`).
    #[test]
    fn seeds_pass_both_targets() {
        let data =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/sip/tests/data");
        let mut seen = 0;
        for folder in ["rfc4475", "golden"] {
            for entry in std::fs::read_dir(data.join(folder)).unwrap() {
                let path = entry.unwrap().path();
                if !matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("dat" | "sip")
                ) {
                    continue;
                }
                let bytes = std::fs::read(&path).unwrap();
                super::datagram(&bytes);
                for cut in 0..bytes.len().min(64) {
                    super::datagram(&bytes[..bytes.len() - cut]);
                }
                super::stream(&[0, 6, 31, 255], &bytes);
                super::stream(&[], &bytes);
                seen += 1;
            }
        }
        assert_eq!(seen, 61);
    }
}
