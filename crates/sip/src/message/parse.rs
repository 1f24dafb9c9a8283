//! Framing and the message grammar (RFC 3261 §7 and §18.3).
//!
//! Two entry points: [`parse_datagram`] for UDP (Content-Length optional,
//! the body is then the rest of the datagram; exactly Content-Length bytes
//! are taken and trailing octets ignored) and [`StreamFramer`] for TCP and
//! TLS (Content-Length required). Both recognise CRLF keep-alives (RFC 5626
//! §3.5.1) before parsing and enforce [`Limits`].

use std::sync::LazyLock;

use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;
use memchr::memmem;

use super::method::{Method, StatusCode};
use super::name::HeaderName;
use super::scan::is_token;
use super::uri::Uri;
use super::{Headers, Message, Request, Response};

/// Size limits applied before and while parsing. Each refusal says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest message (head and body), in bytes.
    pub max_message: usize,
    /// The longest single line of the head, in bytes.
    pub max_line: usize,
    /// The most header lines.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 64 * 1024,
            max_line: 16 * 1024,
            max_headers: 256,
        }
    }
}

/// A CRLF keep-alive (RFC 5626 §3.5.1) seen instead of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    /// A double CRLF: a ping, answered with a single CRLF on streams.
    Ping,
    /// A single CRLF: a pong, or a lone keep-alive over UDP.
    Pong,
}

/// What a transport read: a message or a keep-alive.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a Frame is matched and unpacked right after each read; boxing the \
              message would cost an allocation per message to shrink a value \
              that is never stored"
)]
pub enum Frame {
    /// A SIP message.
    Message(Message),
    /// A keep-alive.
    KeepAlive(KeepAlive),
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// The message is larger than [`Limits::max_message`].
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    /// A line is longer than [`Limits::max_line`].
    #[error("header line longer than {0} bytes")]
    LineTooLong(usize),
    /// More headers than [`Limits::max_headers`].
    #[error("more than {0} header lines")]
    TooManyHeaders(usize),
    /// The start line is neither a request line nor a status line.
    #[error("{0}")]
    BadStartLine(&'static str),
    /// A request for a SIP version other than 2.0 (answer 505).
    #[error("SIP version not supported")]
    VersionNotSupported,
    /// A header line without a colon, or with a name that is not a token.
    #[error("{0}")]
    BadHeaderLine(&'static str),
    /// A header value holds a control character where RFC 3261's grammar
    /// allows none: anything below 0x20 but HTAB and the CR LF of a fold,
    /// and DEL, unless escaped by `\\` inside a quoted string or a
    /// comment (`quoted-pair`, §25.1). The header is left out of the
    /// request's headers, so that the 400 does not echo it.
    #[error("{0} header holds a control character")]
    ControlCharacter(HeaderName),
    /// Content-Length negative, not a number, too large or given twice with
    /// different values (RFC 4475 §3.1.2.3, §3.3.9).
    #[error("{0}")]
    BadContentLength(&'static str),
    /// A stream message without Content-Length (RFC 3261 §18.3).
    #[error("Content-Length is required on stream transports")]
    MissingContentLength,
    /// Content-Length says more bytes than the datagram holds (§18.3).
    #[error("Content-Length larger than the message body")]
    BodyTruncated,
    /// The head never ends (no empty line).
    #[error("the header section does not end")]
    UnterminatedHead,
}

/// A refused message, with what could still be read of it so a request can
/// be answered (Via, From, To, Call-ID and CSeq are in `request_headers`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    /// What was wrong.
    pub kind: ParseErrorKind,
    /// The headers of a message whose start line looked like a request,
    /// when its head could be split into header lines.
    pub request_headers: Option<Headers>,
}

impl ParseError {
    fn bare(kind: ParseErrorKind) -> Self {
        ParseError {
            kind,
            request_headers: None,
        }
    }

    /// The status a request refused this way deserves: 505 for a version,
    /// 513 for a message too large, 400 otherwise.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            ParseErrorKind::VersionNotSupported => StatusCode::VERSION_NOT_SUPPORTED,
            ParseErrorKind::TooLarge(_) => StatusCode::MESSAGE_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Parses one UDP datagram.
pub fn parse_datagram(datagram: Bytes, limits: &Limits) -> Result<Frame, ParseError> {
    if let Some(keep_alive) = keep_alive(&datagram) {
        return Ok(Frame::KeepAlive(keep_alive));
    }
    if datagram.len() > limits.max_message {
        return Err(ParseError::bare(ParseErrorKind::TooLarge(
            limits.max_message,
        )));
    }
    let start = leading_crlf(&datagram);
    // The head ends at the first empty line. A datagram may also end right
    // after its last header line (RFC 4475 §3.1.2.15 keeps such a file):
    // the end of the datagram then ends the head.
    let (head, body_start) = parse_head(&datagram, start, datagram.len(), limits)?;
    let available = datagram.len() - body_start;
    let body_len = match content_length(&head.headers) {
        Err(kind) => return Err(head.into_error(kind)),
        Ok(None) => available,
        Ok(Some(length)) if length > available => {
            return Err(head.into_error(ParseErrorKind::BodyTruncated));
        }
        Ok(Some(length)) => length,
    };
    let body = datagram.slice(body_start..body_start + body_len);
    head.into_message(body).map(Frame::Message)
}

/// Frames messages out of a byte stream (TCP, TLS).
///
/// Push what the socket read with [`StreamFramer::extend`], then call
/// [`StreamFramer::next_frame`] until it returns `Ok(None)`. An error means
/// the framing is lost: answer if the error carries request headers, then
/// close the connection (RFC 4475 §3.1.2.3).
#[derive(Debug, Default)]
pub struct StreamFramer {
    buffer: BytesMut,
    limits: Limits,
    pending: Option<PendingHead>,
    /// How much of `buffer` is known to hold no end of head, so that a head
    /// arriving in many small reads is scanned once, not once per read.
    scanned: usize,
}

/// A head whose body has not fully arrived.
#[derive(Debug)]
struct PendingHead {
    head: Head,
    body_start: usize,
    total: usize,
}

impl StreamFramer {
    /// A framer enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        StreamFramer {
            buffer: BytesMut::new(),
            limits,
            pending: None,
            scanned: 0,
        }
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// The buffer to read into directly, to avoid a copy.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buffer
    }

    /// Bytes received but not yet framed.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ParseError> {
        // CRLF keep-alives between messages (RFC 5626 §3.5.1 and §4.4.1):
        // "\r\n\r\n" is a ping, a lone "\r\n" a pong.
        if self.pending.is_none() && self.buffer.starts_with(b"\r\n") {
            self.scanned = 0;
            if self.buffer.starts_with(b"\r\n\r\n") {
                self.buffer.advance(4);
                return Ok(Some(Frame::KeepAlive(KeepAlive::Ping)));
            }
            if self.buffer.len() < 4 && b"\r\n\r\n".starts_with(&self.buffer) {
                // Could be the start of a ping: wait, unless only a pong comes.
                if self.buffer.len() == 2 {
                    self.buffer.advance(2);
                    return Ok(Some(Frame::KeepAlive(KeepAlive::Pong)));
                }
                return Ok(None);
            }
            self.buffer.advance(2);
            return Ok(Some(Frame::KeepAlive(KeepAlive::Pong)));
        }
        if self.pending.is_none() {
            let Some((head_end, body_start)) = find_head_end_from(&self.buffer, self.scanned)
            else {
                // The last two bytes may start an empty line still arriving.
                self.scanned = self.buffer.len().saturating_sub(2);
                if self.buffer.len() > self.limits.max_message {
                    return Err(ParseError::bare(ParseErrorKind::TooLarge(
                        self.limits.max_message,
                    )));
                }
                if unterminated_line_len(&self.buffer) > self.limits.max_line {
                    return Err(ParseError::bare(ParseErrorKind::LineTooLong(
                        self.limits.max_line,
                    )));
                }
                return Ok(None);
            };
            if body_start > self.limits.max_message {
                return Err(ParseError::bare(ParseErrorKind::TooLarge(
                    self.limits.max_message,
                )));
            }
            // Parse a copy of the head (the body may not be here yet) to
            // learn Content-Length; kept until the body is complete.
            let head_bytes = Bytes::copy_from_slice(&self.buffer[..body_start]);
            let (head, _) = parse_head(&head_bytes, 0, head_end, &self.limits)?;
            let length = match content_length(&head.headers) {
                Err(kind) => return Err(head.into_error(kind)),
                Ok(None) => return Err(head.into_error(ParseErrorKind::MissingContentLength)),
                Ok(Some(length)) => length,
            };
            let total = body_start
                .checked_add(length)
                .filter(|&total| total <= self.limits.max_message)
                .ok_or_else(|| head.error(ParseErrorKind::TooLarge(self.limits.max_message)))?;
            // The head leaves the buffer with its message: scan afresh.
            self.scanned = 0;
            self.pending = Some(PendingHead {
                head,
                body_start,
                total,
            });
        }
        let total = self.pending.as_ref().map_or(0, |pending| pending.total);
        if self.buffer.len() < total {
            self.buffer.reserve(total - self.buffer.len());
            return Ok(None);
        }
        let Some(PendingHead {
            head, body_start, ..
        }) = self.pending.take()
        else {
            return Ok(None);
        };
        let message = self.buffer.split_to(total).freeze();
        let body = message.slice(body_start..total);
        head.into_message(body).map(|m| Some(Frame::Message(m)))
    }
}

/// The length of the last line of `buffer`, which has no line end yet.
fn unterminated_line_len(buffer: &[u8]) -> usize {
    let last_newline = memchr::memrchr(b'\n', buffer).map_or(0, |i| i + 1);
    buffer.len() - last_newline
}

fn keep_alive(datagram: &[u8]) -> Option<KeepAlive> {
    if datagram.is_empty()
        || !datagram
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0))
    {
        return None;
    }
    if datagram.windows(4).any(|w| w == b"\r\n\r\n") {
        Some(KeepAlive::Ping)
    } else {
        Some(KeepAlive::Pong)
    }
}

fn leading_crlf(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(bytes.len())
}

/// Finds the empty line, skipping `from` bytes already searched: returns
/// (end of the last header line, start of the body). Accepts CRLF CRLF and,
/// leniently, LF LF.
fn find_head_end_from(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    static CRLF_CRLF: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"\n\r\n"));
    static LF_LF: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"\n\n"));
    let from = from.min(bytes.len());
    let haystack = &bytes[from..];
    let crlf = CRLF_CRLF.find(haystack);
    // An LF LF counts only when it comes first.
    let before = crlf.map_or(haystack.len(), |at| at + 1);
    match (LF_LF.find(&haystack[..before]), crlf) {
        (Some(lf), _) => Some((from + lf + 1, from + lf + 2)),
        (None, Some(crlf)) => Some((from + crlf + 1, from + crlf + 3)),
        (None, None) => None,
    }
}

/// What the start line said.
#[derive(Debug)]
enum StartLine {
    Request {
        method: Method,
        uri: Uri,
    },
    Response {
        status: StatusCode,
        reason: ByteString,
    },
}

/// A parsed head, waiting for its body.
#[derive(Debug)]
struct Head {
    start: Result<StartLine, ParseErrorKind>,
    looks_like_request: bool,
    headers: Headers,
}

impl Head {
    fn error(&self, kind: ParseErrorKind) -> ParseError {
        ParseError {
            kind,
            request_headers: self.looks_like_request.then(|| self.headers.clone()),
        }
    }

    fn into_error(self, kind: ParseErrorKind) -> ParseError {
        ParseError {
            kind,
            request_headers: self.looks_like_request.then_some(self.headers),
        }
    }

    fn into_message(self, body: Bytes) -> Result<Message, ParseError> {
        match self.start {
            Ok(StartLine::Request { method, uri }) => Ok(Message::Request(Request {
                method,
                uri,
                headers: self.headers,
                body,
            })),
            Ok(StartLine::Response { status, reason }) => Ok(Message::Response(Response {
                status,
                reason,
                headers: self.headers,
                body,
            })),
            Err(kind) => Err(ParseError {
                kind,
                request_headers: self.looks_like_request.then_some(self.headers),
            }),
        }
    }
}

/// Parses the start line and header lines in `bytes[start..end]`, up to the
/// first empty line or `end`. Returns the head and where the body starts
/// (just past the empty line, or `end`).
fn parse_head(
    bytes: &Bytes,
    start: usize,
    end: usize,
    limits: &Limits,
) -> Result<(Head, usize), ParseError> {
    let region = &bytes[start..end];
    let first_end = memchr::memchr(b'\n', region).unwrap_or(region.len());
    if first_end > limits.max_line {
        return Err(ParseError::bare(ParseErrorKind::LineTooLong(
            limits.max_line,
        )));
    }
    let first_line = trim_cr(&region[..first_end]);
    let looks_like_request = !first_line.starts_with(b"SIP/") && !first_line.starts_with(b"sip/");
    let start_line = parse_start_line(bytes, start, first_line);
    let mut headers = Headers::with_capacity(16);
    let mut at = start + (first_end + 1).min(region.len());
    let mut current: Option<(HeaderName, usize, usize)> = None;
    let mut body_start = end;
    let mut control: Option<HeaderName> = None;
    let fail = |kind: ParseErrorKind, headers: Headers| ParseError {
        kind,
        request_headers: looks_like_request.then_some(headers),
    };
    // Keeps a header, or notes the first one with a control character and
    // leaves it out.
    let mut keep = |headers: &mut Headers, name: HeaderName, value: Bytes| {
        if has_control_character(&value) {
            control.get_or_insert(name);
        } else {
            headers.push_raw(name, value);
        }
    };
    while at < end {
        let line_len = memchr::memchr(b'\n', &bytes[at..end]).unwrap_or(end - at);
        if line_len > limits.max_line {
            // Keep every header read so far (the one before this line too),
            // so that the refusal can be answered.
            if let Some((name, value_start, value_end)) = current.take() {
                keep(
                    &mut headers,
                    name,
                    trim_value(bytes, value_start, value_end),
                );
            }
            return Err(fail(ParseErrorKind::LineTooLong(limits.max_line), headers));
        }
        let line_end = at + line_len;
        let content_end = if line_end > at && bytes[line_end - 1] == b'\r' {
            line_end - 1
        } else {
            line_end
        };
        let line = &bytes[at..content_end];
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            // A folded continuation of the previous header (§7.3.1).
            match current.as_mut() {
                Some((_, _, value_end)) => *value_end = content_end,
                None => {
                    return Err(fail(
                        ParseErrorKind::BadHeaderLine("continuation line before any header"),
                        headers,
                    ));
                }
            }
        } else if !line.is_empty() {
            if let Some((name, value_start, value_end)) = current.take() {
                keep(
                    &mut headers,
                    name,
                    trim_value(bytes, value_start, value_end),
                );
            }
            if headers.len() >= limits.max_headers {
                return Err(fail(
                    ParseErrorKind::TooManyHeaders(limits.max_headers),
                    headers,
                ));
            }
            // `token *(SP / HTAB) ":"` (RFC 3261 §25.1 HCOLON).
            let name_len = line
                .iter()
                .position(|&b| !is_token(b))
                .unwrap_or(line.len());
            let colon = line[name_len..]
                .iter()
                .position(|&b| b != b' ' && b != b'\t')
                .map(|i| name_len + i)
                .filter(|&i| line[i] == b':');
            let Some(colon) = colon.filter(|_| name_len > 0) else {
                let reason = if memchr::memchr(b':', line).is_none() {
                    "header line without a colon"
                } else {
                    "header name is not a token"
                };
                return Err(fail(ParseErrorKind::BadHeaderLine(reason), headers));
            };
            let name = header_name(bytes, at, name_len);
            current = Some((name, at + colon + 1, content_end));
        } else {
            // The empty line: the head is over.
            body_start = (line_end + 1).min(end);
            break;
        }
        at = line_end + 1;
    }
    if let Some((name, value_start, value_end)) = current.take() {
        keep(
            &mut headers,
            name,
            trim_value(bytes, value_start, value_end),
        );
    }
    let start = match (start_line, control) {
        (Ok(_), Some(name)) => Err(ParseErrorKind::ControlCharacter(name)),
        (start, _) => start,
    };
    let head = Head {
        start,
        looks_like_request,
        headers,
    };
    Ok((head, body_start))
}

/// Whether a header value (trimmed, folds kept inside) holds a control
/// character the grammar forbids there (see
/// [`ParseErrorKind::ControlCharacter`]). A `\\` escapes the next byte only
/// inside a quoted string or a comment (`quoted-pair` is part of
/// `quoted-string` and `comment`, nothing else); CR and LF are never
/// escapable.
fn has_control_character(value: &[u8]) -> bool {
    let forbidden = |b: u8| (b < 0x20 && b != b'\t') || b == 0x7f;
    if !value.iter().any(|&b| forbidden(b)) {
        return false;
    }
    let mut quoted = false;
    let mut comment = 0usize;
    let mut at = 0;
    while at < value.len() {
        let byte = value[at];
        match byte {
            b'\r' | b'\n' => {
                // Only as a fold: CR LF (or LF) then SP or HTAB.
                let lf = if byte == b'\r' { at + 1 } else { at };
                if value.get(lf) != Some(&b'\n') || !matches!(value.get(lf + 1), Some(b' ' | b'\t'))
                {
                    return true;
                }
                at = lf + 1;
                continue;
            }
            b'\\' if quoted || comment > 0 => {
                if matches!(value.get(at + 1), Some(b'\r' | b'\n')) {
                    return true;
                }
                at += 2;
                continue;
            }
            b'"' if comment == 0 => quoted = !quoted,
            b'(' if !quoted => comment += 1,
            b')' if !quoted => comment = comment.saturating_sub(1),
            _ if forbidden(byte) => return true,
            _ => {}
        }
        at += 1;
    }
    false
}

fn header_name(bytes: &Bytes, at: usize, len: usize) -> HeaderName {
    let name = &bytes[at..at + len];
    if let Some(known) = HeaderName::known(name) {
        return known;
    }
    // The name is all token characters, hence ASCII and valid UTF-8.
    match ByteString::try_from(bytes.slice(at..at + len)) {
        Ok(name) => HeaderName::Other(name),
        Err(_) => HeaderName::Other(ByteString::from(String::from_utf8_lossy(name).into_owned())),
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_value(bytes: &Bytes, mut start: usize, mut end: usize) -> Bytes {
    while start < end && matches!(bytes[start], b' ' | b'\t' | b'\r' | b'\n') {
        start += 1;
    }
    while end > start && matches!(bytes[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
        end -= 1;
    }
    bytes.slice(start..end)
}

fn parse_start_line(
    bytes: &Bytes,
    offset: usize,
    line: &[u8],
) -> Result<StartLine, ParseErrorKind> {
    if line.starts_with(b"SIP/") || line.starts_with(b"sip/") {
        return parse_status_line(bytes, offset, line);
    }
    // RFC 4475 §3.1.2.9 and §3.1.2.10: a liberal element may ignore extra
    // SP between and after the elements; we do, and never forward them.
    let mut parts = line
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|part| !part.is_empty());
    let (Some(method), Some(uri), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseErrorKind::BadStartLine(
            "request line is not METHOD URI SIP/2.0",
        ));
    };
    if parts.next().is_some() {
        return Err(ParseErrorKind::BadStartLine(
            "request line has white space inside its Request-URI",
        ));
    }
    if !method.iter().all(|&b| is_token(b)) {
        return Err(ParseErrorKind::BadStartLine("method is not a token"));
    }
    check_version(version, true)?;
    let uri_start = offset + (uri.as_ptr() as usize - line.as_ptr() as usize);
    let uri_bytes = bytes.slice(uri_start..uri_start + uri.len());
    let source = ByteString::try_from(uri_bytes)
        .map_err(|_| ParseErrorKind::BadStartLine("Request-URI is not UTF-8"))?;
    let uri =
        Uri::parse_in(&source, &source).map_err(|syntax| ParseErrorKind::BadStartLine(syntax.0))?;
    // The method is all token characters, hence ASCII.
    let method = Method::from_token(std::str::from_utf8(method).unwrap_or_default());
    Ok(StartLine::Request { method, uri })
}

fn check_version(version: &[u8], request: bool) -> Result<(), ParseErrorKind> {
    let Some(number) = version
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case(b"SIP/"))
        .map(|_| &version[4..])
    else {
        return Err(ParseErrorKind::BadStartLine(
            "no SIP version where one must be",
        ));
    };
    let well_formed = number.iter().position(|&b| b == b'.').is_some_and(|dot| {
        dot > 0
            && dot + 1 < number.len()
            && number[..dot].iter().all(u8::is_ascii_digit)
            && number[dot + 1..].iter().all(u8::is_ascii_digit)
    });
    if !well_formed {
        return Err(ParseErrorKind::BadStartLine("SIP version is malformed"));
    }
    if number == b"2.0" {
        Ok(())
    } else if request {
        Err(ParseErrorKind::VersionNotSupported)
    } else {
        Err(ParseErrorKind::BadStartLine(
            "response for a SIP version other than 2.0",
        ))
    }
}

fn parse_status_line(
    bytes: &Bytes,
    offset: usize,
    line: &[u8],
) -> Result<StartLine, ParseErrorKind> {
    let version_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    check_version(&line[..version_end], false)?;
    let rest = &line[(version_end + 1).min(line.len())..];
    let code_end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let code = &rest[..code_end];
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(ParseErrorKind::BadStartLine(
            "status code is not three digits",
        ));
    }
    let value = code
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    let status = StatusCode::new(value).ok_or(ParseErrorKind::BadStartLine(
        "status code is not between 100 and 699",
    ))?;
    let reason = &rest[(code_end + 1).min(rest.len())..];
    if reason
        .iter()
        .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Err(ParseErrorKind::BadStartLine(
            "reason phrase holds a control character",
        ));
    }
    let reason_start = offset + (reason.as_ptr() as usize - line.as_ptr() as usize);
    let reason_bytes = bytes.slice(reason_start..reason_start + reason.len());
    let reason = ByteString::try_from(reason_bytes.clone())
        .unwrap_or_else(|_| ByteString::from(String::from_utf8_lossy(&reason_bytes).into_owned()));
    Ok(StartLine::Response { status, reason })
}

/// The Content-Length of a head: `None` when absent. Several headers with
/// the same value are accepted; different values are a framing error.
fn content_length(headers: &Headers) -> Result<Option<usize>, ParseErrorKind> {
    let mut found: Option<usize> = None;
    for header in headers
        .iter()
        .filter(|h| h.name == HeaderName::ContentLength)
    {
        let value = &header.value[..];
        if value.first() == Some(&b'-') {
            return Err(ParseErrorKind::BadContentLength(
                "Content-Length is negative",
            ));
        }
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return Err(ParseErrorKind::BadContentLength(
                "Content-Length is not a number",
            ));
        }
        let significant = value
            .iter()
            .position(|&b| b != b'0')
            .map_or(&value[value.len()..], |i| &value[i..]);
        if significant.len() > 9 {
            return Err(ParseErrorKind::BadContentLength(
                "Content-Length is too large",
            ));
        }
        let length = significant
            .iter()
            .fold(0usize, |acc, &d| acc * 10 + usize::from(d - b'0'));
        match found {
            Some(previous) if previous != length => {
                return Err(ParseErrorKind::BadContentLength(
                    "Content-Length is given twice with different values",
                ));
            }
            _ => found = Some(length),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_header_values() {
        for allowed in [
            &b"plain value"[..],
            b"tab\there",
            b"folded\r\n continuation",
            b"folded LF only\n\tcontinuation",
            b"\"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>",
            b"frontdesk (comment \\\x00 escaped)",
            b"caf\xc3\xa9 UTF-8",
            b"\"unterminated quote \\\x01",
        ] {
            assert!(
                !has_control_character(allowed),
                "{:?}",
                String::from_utf8_lossy(allowed)
            );
        }
        for refused in [
            &b"a\x00b"[..],
            b"bell\x07",
            b"del\x7f",
            b"escape outside quotes \\\x00",
            b"\"raw NUL in quotes \x00\"",
            b"(raw in a comment \x1b)",
            b"bare\rcarriage return",
            b"a line end\r\nwith no fold",
            b"\"no escaped \\\r\n line end\"",
            b"\"closed\" \\\x01",
        ] {
            assert!(
                has_control_character(refused),
                "{:?}",
                String::from_utf8_lossy(refused)
            );
        }
    }

    #[test]
    fn a_header_with_a_control_character_is_left_out_of_the_refusal() {
        let bytes = Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKc\r\n\
              Subject: a\x00b\r\nCall-ID: c\r\nUser-Agent: x\x7f\r\n\r\n",
        );
        let error = parse_datagram(bytes, &Limits::default()).unwrap_err();
        assert_eq!(
            error.kind,
            ParseErrorKind::ControlCharacter(HeaderName::Subject),
            "the first one is named"
        );
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            error.to_string(),
            "Subject header holds a control character"
        );
        let headers = error.request_headers.expect("answerable");
        assert!(headers.contains(&HeaderName::Via) && headers.contains(&HeaderName::CallId));
        assert!(!headers.contains(&HeaderName::Subject));
        assert!(!headers.contains(&HeaderName::UserAgent));
    }

    #[test]
    fn control_characters_in_the_start_line() {
        let nul_uri =
            Bytes::from_static(b"OPTIONS sip:12\x0034@host SIP/2.0\r\nCall-ID: c\r\n\r\n");
        let error = parse_datagram(nul_uri, &Limits::default()).unwrap_err();
        assert_eq!(
            error.kind,
            ParseErrorKind::BadStartLine("URI contains a control character")
        );
        assert!(error.request_headers.is_some());
        let reason = Bytes::from_static(b"SIP/2.0 200 O\x00K\r\nCall-ID: c\r\n\r\n");
        assert_eq!(
            parse_datagram(reason, &Limits::default()).unwrap_err().kind,
            ParseErrorKind::BadStartLine("reason phrase holds a control character")
        );
    }
}
