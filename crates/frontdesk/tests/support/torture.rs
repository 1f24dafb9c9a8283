//! The RFC 4475 torture messages made safe to send over loopback: every
//! host a daemon could send to is rewritten to the test's own socket or to
//! 127.0.0.1, and the framing stays what it was (see [`loopback_only`]).

use std::net::SocketAddr;

/// Headers whose addresses the daemon could send to.
const ROUTING_HEADERS: [&str; 6] = ["via", "v", "contact", "m", "route", "record-route"];

/// A torture message made safe to send: every host in Via, Contact, Route
/// and Record-Route becomes `me` (so a response to the Via comes back to
/// the test's socket, whatever the Via said), every SDP `c=`/`o=` address
/// becomes 127.0.0.1, and the Content-Length changes by what the body's
/// framed part grew or shrank, so that framing errors stay what they were.
pub fn loopback_only(message: &[u8], me: SocketAddr) -> Vec<u8> {
    let (head, body) = match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => message.split_at(end + 4),
        None => (message, &[][..]),
    };
    let new_head = rewrite_lines(head, me);
    let declared = content_length(&new_head);
    let (framed, trailing) = match declared {
        Some(length) if length <= body.len() => body.split_at(length),
        _ => (body, &[][..]),
    };
    let new_framed = rewrite_lines(framed, me);
    let new_trailing = rewrite_lines(trailing, me);
    let mut out = match declared {
        Some(length) if new_framed.len() != framed.len() => {
            let adjusted = (length + new_framed.len()).saturating_sub(framed.len());
            set_content_length(&new_head, adjusted)
        }
        _ => new_head,
    };
    out.extend_from_slice(&new_framed);
    out.extend_from_slice(&new_trailing);
    out
}

/// Rewrites line by line (any line end; `\r` stays with its line).
fn rewrite_lines(bytes: &[u8], me: SocketAddr) -> Vec<u8> {
    let replacement = me.to_string().into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut routing = false;
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if index > 0 {
            out.push(b'\n');
        }
        match classify(line) {
            Line::Header {
                name_end,
                routing: is_routing,
            } => {
                routing = is_routing;
                if routing {
                    out.extend_from_slice(&line[..name_end]);
                    out.extend(scan_hosts(&line[name_end..], |_| replacement.clone()));
                    continue;
                }
            }
            Line::Continuation if routing => {
                out.extend(scan_hosts(line, |_| replacement.clone()));
                continue;
            }
            Line::Continuation => {}
            Line::Other => {
                routing = false;
                if line.starts_with(b"c=") || line.starts_with(b"o=") {
                    out.extend(replace_ipv4(line));
                    continue;
                }
            }
        }
        out.extend_from_slice(line);
    }
    out
}

/// Hosts left in routing headers that are not loopback, anywhere in the
/// message (head, body and trailing bytes alike).
pub fn foreign_hosts(message: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut routing = false;
    for line in message.split(|&b| b == b'\n') {
        let value = match classify(line) {
            Line::Header {
                name_end,
                routing: is_routing,
            } => {
                routing = is_routing;
                &line[name_end..]
            }
            Line::Continuation => line,
            Line::Other => {
                routing = false;
                if line.starts_with(b"c=") || line.starts_with(b"o=") {
                    let text = String::from_utf8_lossy(line);
                    found.extend(
                        text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
                            .filter(|token| is_ipv4(token.as_bytes()) && *token != "127.0.0.1")
                            .map(str::to_string),
                    );
                }
                continue;
            }
        };
        if routing {
            let _ = scan_hosts(value, |host| {
                if !host.starts_with(b"127.0.0.1") {
                    found.push(String::from_utf8_lossy(host).into_owned());
                }
                host.to_vec()
            });
        }
    }
    found
}

enum Line {
    /// A header line; the value starts after `name_end` (the colon).
    Header { name_end: usize, routing: bool },
    /// A folded continuation of the previous line.
    Continuation,
    /// A start line, a blank line, a body line.
    Other,
}

fn classify(line: &[u8]) -> Line {
    if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
        return Line::Continuation;
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Line::Other;
    };
    let name = String::from_utf8_lossy(&line[..colon]);
    let name = name.trim_end_matches([' ', '\t']);
    let is_token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
    if !is_token {
        return Line::Other;
    }
    Line::Header {
        name_end: colon + 1,
        routing: ROUTING_HEADERS.contains(&name.to_ascii_lowercase().as_str()),
    }
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
}

fn is_ipv4(run: &[u8]) -> bool {
    let labels: Vec<&[u8]> = run.split(|&b| b == b'.').collect();
    labels.len() == 4
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.len() <= 3 && l.iter().all(u8::is_ascii_digit))
}

/// A dotted name whose last label starts with a letter, or an IPv4 address.
fn is_host(run: &[u8]) -> bool {
    if is_ipv4(run) {
        return true;
    }
    let labels: Vec<&[u8]> = run.split(|&b| b == b'.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty())
        && labels
            .last()
            .and_then(|l| l.first())
            .is_some_and(u8::is_ascii_alphabetic)
}

/// Replaces each host (with its `:port`) in a header value by what `map`
/// returns. A host is a dotted name, an IPv4 address or an IPv6 reference
/// that is not a parameter value (after `=`) nor a user part (before `@`).
fn scan_hosts(value: &[u8], mut map: impl FnMut(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let with_port = |mut end: usize| {
        if value.get(end) == Some(&b':') && value.get(end + 1).is_some_and(u8::is_ascii_digit) {
            end += 1;
            while value.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
        }
        end
    };
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let before = if i == 0 { b' ' } else { value[i - 1] };
        if value[i] == b'['
            && let Some(close) = value[i..].iter().position(|&b| b == b']')
        {
            let inside = &value[i + 1..i + close];
            if inside.contains(&b':')
                && inside
                    .iter()
                    .all(|b| b.is_ascii_hexdigit() || *b == b':' || *b == b'.')
            {
                let end = with_port(i + close + 1);
                out.extend(map(&value[i..end]));
                i = end;
                continue;
            }
        }
        if is_host_byte(value[i]) {
            let start = i;
            while i < value.len() && is_host_byte(value[i]) {
                i += 1;
            }
            let run = &value[start..i];
            if before != b'=' && value.get(i) != Some(&b'@') && is_host(run) {
                let end = with_port(i);
                out.extend(map(&value[start..end]));
                i = end;
            } else {
                out.extend_from_slice(run);
            }
            continue;
        }
        out.push(value[i]);
        i += 1;
    }
    out
}

fn replace_ipv4(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i].is_ascii_digit() && (i == 0 || !line[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            while i < line.len() && (line[i].is_ascii_digit() || line[i] == b'.') {
                i += 1;
            }
            if is_ipv4(&line[start..i]) {
                out.extend_from_slice(b"127.0.0.1");
            } else {
                out.extend_from_slice(&line[start..i]);
            }
            continue;
        }
        out.push(line[i]);
        i += 1;
    }
    out
}

/// The value of the first Content-Length (or `l`) header of a head.
fn content_length(head: &[u8]) -> Option<usize> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let (_, value) = content_length_line(line)?;
        String::from_utf8_lossy(value).trim().parse().ok()
    })
}

fn content_length_line(line: &[u8]) -> Option<(usize, &[u8])> {
    let Line::Header { name_end, .. } = classify(line) else {
        return None;
    };
    let name = String::from_utf8_lossy(&line[..name_end - 1]);
    let name = name.trim_end().to_ascii_lowercase();
    (name == "content-length" || name == "l").then_some((name_end, &line[name_end..]))
}

/// `head` with its first Content-Length value replaced by `length`.
fn set_content_length(head: &[u8], length: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len());
    let mut done = false;
    for (index, line) in head.split(|&b| b == b'\n').enumerate() {
        if index > 0 {
            out.push(b'\n');
        }
        match content_length_line(line) {
            Some((name_end, value)) if !done => {
                done = true;
                let cr = value.ends_with(b"\r");
                out.extend_from_slice(&line[..name_end]);
                out.extend_from_slice(format!(" {length}").as_bytes());
                if cr {
                    out.push(b'\r');
                }
            }
            _ => out.extend_from_slice(line),
        }
    }
    out
}
