//! Helpers shared by the `sip::message` integration tests: loading the
//! byte-exact fixtures, and the print → parse round trip every accepted
//! message must survive.
#![allow(dead_code)] // each test crate uses a different subset

use std::path::PathBuf;

use bytes::Bytes;
use sip::message::{Frame, HeaderName, Limits, Message, StreamFramer, parse_datagram};

/// The bytes of `tests/data/<folder>/<file>`.
pub fn fixture(folder: &str, file: &str) -> Bytes {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", folder, file]
        .iter()
        .collect();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    Bytes::from(bytes)
}

/// The bytes of an RFC 4475 message, `name` without `.dat`.
pub fn torture(name: &str) -> Bytes {
    fixture("rfc4475", &format!("{name}.dat"))
}

/// The bytes of a golden message, `name` without `.sip`.
pub fn golden(name: &str) -> Bytes {
    fixture("golden", &format!("{name}.sip"))
}

/// Every RFC 4475 message name, sorted.
pub fn torture_names() -> Vec<String> {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", "rfc4475"]
        .iter()
        .collect();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the corpus folder")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".dat").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// Parses a datagram that must be a message.
pub fn parse_message(bytes: Bytes) -> Message {
    match parse_datagram(bytes, &Limits::default()) {
        Ok(Frame::Message(message)) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// `message` without its Content-Length headers, which the printer
/// normalises (it writes exactly one, matching the body).
pub fn without_content_length(message: &Message) -> Message {
    let mut message = message.clone();
    match &mut message {
        Message::Request(request) => request.headers.remove(&HeaderName::ContentLength),
        Message::Response(response) => response.headers.remove(&HeaderName::ContentLength),
    }
    message
}

/// Prints `message`, parses the print as a datagram and as a stream, and
/// checks both give back the same message (Content-Length aside), that the
/// print has exactly one Content-Length equal to the body, and that printing
/// is stable. Returns the print.
pub fn assert_round_trip(message: &Message) -> Bytes {
    let printed = message.encode();
    let reparsed = match parse_datagram(printed.clone(), &Limits::default()) {
        Ok(Frame::Message(reparsed)) => reparsed,
        other => panic!(
            "the print does not parse: {other:?}\n{}",
            String::from_utf8_lossy(&printed)
        ),
    };
    assert_eq!(
        without_content_length(&reparsed),
        without_content_length(message),
        "print → parse changed the message; print:\n{}",
        String::from_utf8_lossy(&printed)
    );
    let lengths: Vec<&Bytes> = reparsed
        .headers()
        .all(&HeaderName::ContentLength)
        .map(|h| &h.value)
        .collect();
    assert_eq!(
        lengths,
        [&Bytes::from(reparsed.body().len().to_string())],
        "the print must carry one Content-Length equal to the body"
    );
    assert_eq!(reparsed.encode(), printed, "printing is not stable");

    // The print is well framed for a stream too.
    let mut framer = StreamFramer::new(Limits::default());
    framer.extend(&printed);
    match framer.next_frame() {
        Ok(Some(Frame::Message(streamed))) => assert_eq!(streamed, reparsed),
        other => panic!("the print does not frame on a stream: {other:?}"),
    }
    assert_eq!(framer.buffered(), 0);
    printed
}
