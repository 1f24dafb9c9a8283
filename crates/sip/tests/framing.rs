//! Framing: `StreamFramer` (TCP, TLS) and `parse_datagram` (UDP) — partial
//! reads, pipelining, CRLF keep-alives (RFC 5626 §3.5.1), Content-Length
//! rules (RFC 3261 §18.3, §20.14) and the limits, each refusal with its
//! reason and, for a request, its headers so it can be answered.

mod support;

use bytes::{BufMut, Bytes};
use sip::message::{
    Frame, HeaderName, KeepAlive, Limits, Message, Method, ParseError, ParseErrorKind, StatusCode,
    StreamFramer, parse_datagram,
};
use support::{golden, parse_message};

/// An OPTIONS with `body` and a correct Content-Length.
fn options(call_id: &str, body: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:frontdesk@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bK-{call_id}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1>;tag=p1\r\n\
         To: <sip:frontdesk@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\
         \r\n\
         {body}",
        body.len()
    )
    .into_bytes()
}

/// An OPTIONS whose head is `head` (header lines, each ending in CRLF).
fn options_with_head(head: &str) -> Vec<u8> {
    format!("OPTIONS sip:frontdesk@127.0.0.1 SIP/2.0\r\n{head}\r\n").into_bytes()
}

/// Drains every frame the framer can give now.
fn drain(framer: &mut StreamFramer) -> Vec<Result<Frame, ParseError>> {
    let mut frames = Vec::new();
    loop {
        match framer.next_frame() {
            Ok(Some(frame)) => frames.push(Ok(frame)),
            Ok(None) => return frames,
            Err(error) => {
                frames.push(Err(error));
                return frames;
            }
        }
    }
}

/// Feeds `bytes` in chunks of `size`, collecting every frame.
fn feed(bytes: &[u8], size: usize) -> Vec<Result<Frame, ParseError>> {
    let mut framer = StreamFramer::new(Limits::default());
    let mut frames = Vec::new();
    for chunk in bytes.chunks(size) {
        framer.extend(chunk);
        frames.extend(drain(&mut framer));
        if matches!(frames.last(), Some(Err(_))) {
            break;
        }
    }
    frames
}

fn message(frame: &Result<Frame, ParseError>) -> &Message {
    match frame {
        Ok(Frame::Message(message)) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn call_id(frame: &Result<Frame, ParseError>) -> String {
    message(frame).headers().call_id().unwrap().to_string()
}

fn error(frames: &[Result<Frame, ParseError>]) -> &ParseError {
    match frames.last() {
        Some(Err(error)) => error,
        other => panic!("expected an error last, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Partial reads and pipelining

#[test]
fn byte_by_byte_gives_one_message_at_the_last_byte() {
    let invite = golden("invite_sdp");
    let mut framer = StreamFramer::new(Limits::default());
    for (index, byte) in invite.iter().enumerate() {
        framer.extend(&[*byte]);
        let frames = drain(&mut framer);
        if index + 1 < invite.len() {
            assert!(frames.is_empty(), "a frame before the last byte ({index})");
            continue;
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(message(&frames[0]), &parse_message(invite.clone()));
    }
    assert_eq!(framer.buffered(), 0);
}

#[test]
fn every_chunk_size_frames_the_same_messages() {
    let mut stream = Vec::new();
    stream.extend_from_slice(&golden("invite_sdp"));
    stream.extend_from_slice(b"\r\n\r\n");
    stream.extend_from_slice(&golden("cancel"));
    stream.extend_from_slice(&golden("ok_record_route"));
    let expected = feed(&stream, stream.len());
    assert_eq!(expected.len(), 4);
    assert_eq!(expected[1], Ok(Frame::KeepAlive(KeepAlive::Ping)));
    for size in [1, 2, 3, 5, 7, 64, 211, 1000] {
        let frames = feed(&stream, size);
        // A ping cut right after its first CRLF reads as two pongs (see
        // `a_ping_cut_after_two_bytes_reads_as_two_pongs`); messages never
        // depend on the chunking.
        let messages = |frames: &[Result<Frame, ParseError>]| -> Vec<Message> {
            frames
                .iter()
                .filter(|f| !matches!(f, Ok(Frame::KeepAlive(_))))
                .map(|f| message(f).clone())
                .collect()
        };
        assert_eq!(messages(&frames), messages(&expected), "chunks of {size}");
    }
}

#[test]
fn pipelined_messages_in_one_read() {
    let mut stream = Vec::new();
    for call_id in ["a", "b", "c"] {
        stream.extend_from_slice(&options(call_id, "hello"));
    }
    let mut framer = StreamFramer::new(Limits::default());
    framer.extend(&stream);
    let frames = drain(&mut framer);
    let ids: Vec<String> = frames.iter().map(call_id).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    for frame in &frames {
        assert_eq!(&message(frame).body()[..], b"hello");
    }
    assert_eq!(framer.buffered(), 0);
}

#[test]
fn a_pipelined_message_cut_short_waits_for_the_rest() {
    let mut stream = options("first", "");
    let second = options("second", "0123456789");
    stream.extend_from_slice(&second[..second.len() - 4]);
    let mut framer = StreamFramer::new(Limits::default());
    framer.extend(&stream);
    let frames = drain(&mut framer);
    assert_eq!(frames.len(), 1);
    assert_eq!(call_id(&frames[0]), "first");
    assert_eq!(framer.buffered(), second.len() - 4);
    framer.extend(&second[second.len() - 4..]);
    let frames = drain(&mut framer);
    assert_eq!(call_id(&frames[0]), "second");
    assert_eq!(&message(&frames[0]).body()[..], b"0123456789");
}

#[test]
fn body_split_across_reads() {
    let body = "v=0\r\n".repeat(40);
    let bytes = options("split", &body);
    let head_len = bytes.len() - body.len();
    let mut framer = StreamFramer::new(Limits::default());
    framer.extend(&bytes[..head_len]);
    assert!(
        drain(&mut framer).is_empty(),
        "the head alone is not a frame"
    );
    let third = body.len() / 3;
    framer.extend(&bytes[head_len..head_len + third]);
    assert!(drain(&mut framer).is_empty());
    framer.extend(&bytes[head_len + third..bytes.len() - 1]);
    assert!(drain(&mut framer).is_empty(), "one byte short");
    framer.extend(&bytes[bytes.len() - 1..]);
    let frames = drain(&mut framer);
    assert_eq!(frames.len(), 1);
    assert_eq!(&message(&frames[0]).body()[..], body.as_bytes());
    assert_eq!(framer.buffered(), 0);
}

#[test]
fn reading_straight_into_the_buffer() {
    let mut framer = StreamFramer::new(Limits::default());
    framer.buffer_mut().put_slice(&options("direct", "x"));
    let frames = drain(&mut framer);
    assert_eq!(call_id(&frames[0]), "direct");
}

#[test]
fn the_body_is_binary_and_may_look_like_a_head() {
    // A body holding CRLF CRLF and a request line is still body.
    let body = "\r\n\r\nINVITE sip:x@y SIP/2.0\r\n\r\n\0\u{ff}";
    let bytes = options("binary", body);
    let frames = feed(&bytes, 3);
    assert_eq!(frames.len(), 1);
    assert_eq!(&message(&frames[0]).body()[..], body.as_bytes());
}

// ---------------------------------------------------------------------------
// CRLF keep-alives

#[test]
fn ping_and_pong_on_a_stream() {
    let mut framer = StreamFramer::new(Limits::default());
    framer.extend(b"\r\n\r\n");
    assert_eq!(drain(&mut framer), [Ok(Frame::KeepAlive(KeepAlive::Ping))]);
    framer.extend(b"\r\n");
    assert_eq!(drain(&mut framer), [Ok(Frame::KeepAlive(KeepAlive::Pong))]);
    assert_eq!(framer.buffered(), 0);
}

#[test]
fn a_ping_cut_after_three_bytes_waits_for_the_fourth() {
    let mut framer = StreamFramer::new(Limits::default());
    framer.extend(b"\r\n\r");
    assert!(drain(&mut framer).is_empty());
    framer.extend(b"\n");
    assert_eq!(drain(&mut framer), [Ok(Frame::KeepAlive(KeepAlive::Ping))]);
}

/// The framer cannot tell a lone pong from the first half of a ping; it
/// reports a pong at once rather than hold it back, so a ping split after
/// its first CRLF (a client writes all four bytes at once, so this needs a
/// segment boundary in exactly that place) reads as two pongs.
#[test]
fn a_ping_cut_after_two_bytes_reads_as_two_pongs() {
    let mut framer = StreamFramer::new(Limits::default());
    framer.extend(b"\r\n");
    assert_eq!(drain(&mut framer), [Ok(Frame::KeepAlive(KeepAlive::Pong))]);
    framer.extend(b"\r\n");
    assert_eq!(drain(&mut framer), [Ok(Frame::KeepAlive(KeepAlive::Pong))]);
}

#[test]
fn keep_alives_between_pipelined_messages() {
    let mut stream = b"\r\n\r\n".to_vec();
    stream.extend_from_slice(&options("one", ""));
    stream.extend_from_slice(b"\r\n");
    stream.extend_from_slice(&options("two", "body"));
    stream.extend_from_slice(b"\r\n\r\n\r\n\r\n");
    let frames = feed(&stream, stream.len());
    let kinds: Vec<String> = frames
        .iter()
        .map(|frame| match frame {
            Ok(Frame::KeepAlive(keep_alive)) => format!("{keep_alive:?}"),
            Ok(Frame::Message(message)) => message.headers().call_id().unwrap().to_string(),
            Err(error) => panic!("{error:?}"),
        })
        .collect();
    assert_eq!(kinds, ["Ping", "one", "Pong", "two", "Ping", "Ping"]);
}

#[test]
fn keep_alive_datagrams() {
    let limits = Limits::default();
    let cases: [(&[u8], KeepAlive); 4] = [
        (b"\r\n\r\n", KeepAlive::Ping),
        (b"\r\n", KeepAlive::Pong),
        (b"\r\n\r\n\r\n", KeepAlive::Ping),
        (b"\n", KeepAlive::Pong),
    ];
    for (bytes, expected) in cases {
        assert_eq!(
            parse_datagram(Bytes::from_static(bytes), &limits),
            Ok(Frame::KeepAlive(expected)),
            "{bytes:?}"
        );
    }
}

#[test]
fn a_datagram_may_start_with_crlf() {
    let mut datagram = b"\r\n\r\n".to_vec();
    datagram.extend_from_slice(&options("late", "x"));
    let message = parse_message(Bytes::from(datagram));
    assert_eq!(message.headers().call_id().unwrap(), "late");
}

// ---------------------------------------------------------------------------
// Content-Length

#[test]
fn missing_content_length_on_a_stream_is_an_error_with_the_request_headers() {
    let bytes = options_with_head(
        "Via: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bK-ncl\r\n\
         From: <sip:probe@127.0.0.1>;tag=p1\r\n\
         To: <sip:frontdesk@127.0.0.1>\r\n\
         Call-ID: no-length\r\n\
         CSeq: 1 OPTIONS\r\n",
    );
    let frames = feed(&bytes, 9);
    let error = error(&frames);
    assert_eq!(error.kind, ParseErrorKind::MissingContentLength);
    assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    let headers = error.request_headers.as_ref().expect("request headers");
    assert_eq!(headers.call_id().unwrap(), "no-length");
    assert_eq!(headers.cseq().unwrap().method, Method::Options);
    assert_eq!(headers.top_via().unwrap().branch(), Some("z9hG4bK-ncl"));
}

#[test]
fn a_response_without_content_length_is_an_error_without_headers() {
    let bytes = b"SIP/2.0 200 OK\r\nCall-ID: r\r\nCSeq: 1 OPTIONS\r\n\r\n";
    let frames = feed(bytes, bytes.len());
    let error = error(&frames);
    assert_eq!(error.kind, ParseErrorKind::MissingContentLength);
    assert!(
        error.request_headers.is_none(),
        "responses are never answered"
    );
}

#[test]
fn without_content_length_a_datagram_body_is_the_rest() {
    let bytes = options_with_head("Call-ID: rest\r\n");
    let mut datagram = bytes.clone();
    datagram.extend_from_slice(b"everything\r\nafter");
    let message = parse_message(Bytes::from(datagram));
    assert_eq!(&message.body()[..], b"everything\r\nafter");
}

#[test]
fn content_length_shorter_than_the_datagram_ignores_the_rest() {
    let mut datagram = options("short", "12345");
    datagram.extend_from_slice(b"trailing junk");
    let message = parse_message(Bytes::from(datagram));
    assert_eq!(&message.body()[..], b"12345");
}

#[test]
fn content_length_longer_than_the_datagram_is_refused() {
    let mut datagram = options("long", "12345");
    datagram.truncate(datagram.len() - 1);
    let error = parse_datagram(Bytes::from(datagram), &Limits::default()).unwrap_err();
    assert_eq!(error.kind, ParseErrorKind::BodyTruncated);
    assert!(error.request_headers.is_some());
}

#[test]
fn content_length_values() {
    let accepted: [(&str, usize); 5] = [
        ("Content-Length: 0005", 5),
        ("l: 5", 5),
        ("content-length   :   5  ", 5),
        ("Content-Length: 5\r\nContent-Length: 5", 5),
        ("Content-Length: 00000000000000000000005", 5),
    ];
    for (header, length) in accepted {
        let bytes = options_with_head(&format!("Call-ID: cl\r\n{header}\r\n"));
        let mut datagram = bytes.clone();
        datagram.extend_from_slice(b"12345");
        let message = parse_message(Bytes::from(datagram.clone()));
        assert_eq!(message.body().len(), length, "{header}");
        let frames = feed(&datagram, datagram.len());
        assert_eq!(message_body_len(&frames), length, "{header} on a stream");
    }
    let refused = [
        "Content-Length: -5",
        "Content-Length: +5",
        "Content-Length: 5a",
        "Content-Length: 0x5",
        "Content-Length: 5 5",
        "Content-Length:",
        "Content-Length: 99999999999999999999999999",
        "Content-Length: 4294967301",
        "Content-Length: 5\r\nl: 6",
        "Content-Length: 5\r\n 5",
    ];
    for header in refused {
        let mut bytes = options_with_head(&format!("Call-ID: cl\r\n{header}\r\n"));
        bytes.extend_from_slice(b"12345");
        let error =
            parse_datagram(Bytes::from(bytes.clone()), &Limits::default()).expect_err(header);
        assert!(
            matches!(error.kind, ParseErrorKind::BadContentLength(_)),
            "{header}: {error:?}"
        );
        assert_eq!(error.request_headers.unwrap().call_id().unwrap(), "cl");
        let frames = feed(&bytes, 4);
        assert!(
            matches!(error_kind(&frames), ParseErrorKind::BadContentLength(_)),
            "{header} on a stream: {frames:?}"
        );
    }
}

fn message_body_len(frames: &[Result<Frame, ParseError>]) -> usize {
    assert_eq!(frames.len(), 1, "{frames:?}");
    message(&frames[0]).body().len()
}

fn error_kind(frames: &[Result<Frame, ParseError>]) -> ParseErrorKind {
    error(frames).kind.clone()
}

// ---------------------------------------------------------------------------
// Limits

#[test]
fn oversize_body_announced_by_content_length_is_too_large() {
    let bytes = options_with_head("Call-ID: big\r\nCSeq: 1 OPTIONS\r\nContent-Length: 70000\r\n");
    let mut framer = StreamFramer::new(Limits::default());
    framer.extend(&bytes);
    let frames = drain(&mut framer);
    let error = error(&frames);
    assert_eq!(error.kind, ParseErrorKind::TooLarge(64 * 1024));
    assert_eq!(error.status(), StatusCode::MESSAGE_TOO_LARGE);
    assert_eq!(
        error.request_headers.as_ref().unwrap().call_id().unwrap(),
        "big",
        "refused before the body arrives, answerable"
    );
}

#[test]
fn a_head_that_never_ends_is_too_large() {
    let limits = Limits {
        max_message: 4096,
        max_line: 1024,
        max_headers: 1000,
    };
    let mut framer = StreamFramer::new(limits);
    framer.extend(b"OPTIONS sip:x@y SIP/2.0\r\n");
    let mut refused = None;
    for n in 0..1000 {
        framer.extend(format!("X-Filler-{n}: {}\r\n", "f".repeat(40)).as_bytes());
        match framer.next_frame() {
            Ok(None) => continue,
            Ok(Some(frame)) => panic!("a frame from an endless head: {frame:?}"),
            Err(error) => {
                refused = Some((n, error));
                break;
            }
        }
    }
    let (n, error) = refused.expect("refused");
    assert_eq!(error.kind, ParseErrorKind::TooLarge(4096));
    assert!(n < 100, "refused as soon as the limit is passed, not later");
}

#[test]
fn oversize_datagram_is_too_large() {
    let limits = Limits::default();
    let bytes = options("huge", &"x".repeat(64 * 1024));
    let error = parse_datagram(Bytes::from(bytes), &limits).unwrap_err();
    assert_eq!(error.kind, ParseErrorKind::TooLarge(64 * 1024));
    // Exactly at the limit is fine.
    let base = options("fits", "").len();
    let digits = (64 * 1024 - base).to_string().len() - 1;
    let fits = options("fits", &"x".repeat(64 * 1024 - base - digits));
    assert_eq!(fits.len(), 64 * 1024);
    assert!(parse_datagram(Bytes::from(fits.clone()), &limits).is_ok());
    assert_eq!(feed(&fits, 1500).len(), 1);
}

#[test]
fn a_huge_line_is_refused_before_its_end_arrives() {
    let mut framer = StreamFramer::new(Limits::default());
    framer.extend(b"OPTIONS sip:x@y SIP/2.0\r\nX-Huge: ");
    let mut refused = None;
    for _ in 0..20 {
        framer.extend(&[b'a'; 1024]);
        if let Err(error) = framer.next_frame() {
            refused = Some(error);
            break;
        }
    }
    assert_eq!(
        refused.expect("refused").kind,
        ParseErrorKind::LineTooLong(16 * 1024)
    );
}

#[test]
fn a_huge_line_in_a_datagram_or_a_complete_head() {
    let line = format!("X-Huge: {}\r\n", "a".repeat(17 * 1024));
    let head = format!("Call-ID: huge\r\n{line}Content-Length: 0\r\n");
    let bytes = options_with_head(&head);
    let error = parse_datagram(Bytes::from(bytes.clone()), &Limits::default()).unwrap_err();
    assert_eq!(error.kind, ParseErrorKind::LineTooLong(16 * 1024));
    assert_eq!(
        error.request_headers.unwrap().call_id().unwrap(),
        "huge",
        "the headers before the long line are kept"
    );
    assert_eq!(
        error_kind(&feed(&bytes, bytes.len())),
        ParseErrorKind::LineTooLong(16 * 1024)
    );
    // A huge start line too.
    let start = format!(
        "OPTIONS sip:{}@y SIP/2.0\r\nContent-Length: 0\r\n\r\n",
        "u".repeat(17 * 1024)
    );
    let error = parse_datagram(Bytes::from(start), &Limits::default()).unwrap_err();
    assert_eq!(error.kind, ParseErrorKind::LineTooLong(16 * 1024));
}

#[test]
fn too_many_headers() {
    let limits = Limits::default();
    let head = |count: usize| {
        let mut head = String::from("Call-ID: many\r\nContent-Length: 0\r\n");
        for n in 2..count {
            head.push_str(&format!("X-{n}: v\r\n"));
        }
        options_with_head(&head)
    };
    let at_limit = head(limits.max_headers);
    let message = parse_message(Bytes::from(at_limit.clone()));
    assert_eq!(message.headers().len(), limits.max_headers);
    assert_eq!(feed(&at_limit, 100).len(), 1);

    let over = head(limits.max_headers + 1);
    let error = parse_datagram(Bytes::from(over.clone()), &limits).unwrap_err();
    assert_eq!(
        error.kind,
        ParseErrorKind::TooManyHeaders(limits.max_headers)
    );
    assert_eq!(error.request_headers.unwrap().call_id().unwrap(), "many");
    assert_eq!(
        error_kind(&feed(&over, 100)),
        ParseErrorKind::TooManyHeaders(limits.max_headers)
    );
}

#[test]
fn folded_lines_count_once_and_toward_the_line_limit_separately() {
    let limits = Limits {
        max_message: 64 * 1024,
        max_line: 100,
        max_headers: 3,
    };
    let folded = format!(
        "Call-ID: fold\r\nSubject: {}\r\n {}\r\n {}\r\nContent-Length: 0\r\n",
        "a".repeat(90),
        "b".repeat(90),
        "c".repeat(90)
    );
    let message = match parse_datagram(Bytes::from(options_with_head(&folded)), &limits) {
        Ok(Frame::Message(message)) => message,
        other => panic!("{other:?}"),
    };
    assert_eq!(message.headers().len(), 3);
    let subject = message.headers().get(&HeaderName::Subject).unwrap();
    assert_eq!(subject.len(), 90 * 3 + 3 * 2);
}

// ---------------------------------------------------------------------------
// After an error

#[test]
fn the_framing_stays_lost_after_an_error() {
    let mut stream = options("good", "");
    stream.extend_from_slice(b"OPTIONS sip:x@y SIP/2.0\r\nContent-Length: -1\r\n\r\n");
    stream.extend_from_slice(&options("unreachable", ""));
    let mut framer = StreamFramer::new(Limits::default());
    framer.extend(&stream);
    assert_eq!(call_id(&framer.next_frame().transpose().unwrap()), "good");
    let first = framer.next_frame().unwrap_err();
    assert!(matches!(first.kind, ParseErrorKind::BadContentLength(_)));
    // Nothing after the bad message is trusted: the connection must close.
    assert_eq!(framer.next_frame().unwrap_err(), first);
}

#[test]
fn a_bad_start_line_with_good_framing_does_not_lose_the_stream() {
    let mut stream =
        b"OPTIONS sip:x@y SIP/7.0\r\nCall-ID: v7\r\nContent-Length: 2\r\n\r\nhi".to_vec();
    stream.extend_from_slice(&options("after", ""));
    let mut framer = StreamFramer::new(Limits::default());
    framer.extend(&stream);
    let error = framer.next_frame().unwrap_err();
    assert_eq!(error.kind, ParseErrorKind::VersionNotSupported);
    assert_eq!(error.request_headers.unwrap().call_id().unwrap(), "v7");
    assert_eq!(call_id(&framer.next_frame().transpose().unwrap()), "after");
}

#[test]
fn lf_only_line_ends_are_tolerated() {
    let bytes = b"OPTIONS sip:x@y SIP/2.0\nCall-ID: lf\nContent-Length: 2\n\nhi";
    let message = parse_message(Bytes::from_static(bytes));
    assert_eq!(message.headers().call_id().unwrap(), "lf");
    assert_eq!(&message.body()[..], b"hi");
    let frames = feed(bytes, 5);
    assert_eq!(&message_body_len(&frames), &2);
}

#[test]
fn a_control_character_is_refused_without_losing_the_stream() {
    // A NUL in the Request-URI, then one in a header value: each refused
    // with its headers (so a 400 can be sent), the stream framed on.
    let mut stream =
        b"OPTIONS sip:12\x0034@127.0.0.1 SIP/2.0\r\nCall-ID: nul-uri\r\nContent-Length: 0\r\n\r\n"
            .to_vec();
    stream.extend_from_slice(&options_with_head(
        "Call-ID: nul-header\r\nSubject: x\x00y\r\nContent-Length: 0\r\n",
    ));
    stream.extend_from_slice(&options("after", "hi"));
    let frames = feed(&stream, 7);
    assert_eq!(frames.len(), 1, "the framer stops at its first error");
    let mut framer = StreamFramer::new(Limits::default());
    framer.extend(&stream);
    let first = framer.next_frame().unwrap_err();
    assert_eq!(
        first.kind,
        ParseErrorKind::BadStartLine("URI contains a control character")
    );
    assert_eq!(first.status(), StatusCode::BAD_REQUEST);
    assert_eq!(first.request_headers.unwrap().call_id().unwrap(), "nul-uri");
    let second = framer.next_frame().unwrap_err();
    assert_eq!(
        second.kind,
        ParseErrorKind::ControlCharacter(HeaderName::Subject)
    );
    assert_eq!(
        second.request_headers.unwrap().call_id().unwrap(),
        "nul-header"
    );
    let third = framer.next_frame().unwrap().expect("a frame");
    let Frame::Message(message) = third else {
        panic!("a message");
    };
    assert_eq!(message.headers().call_id().unwrap(), "after");
}
