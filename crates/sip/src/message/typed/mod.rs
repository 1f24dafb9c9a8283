//! Typed views of the headers we act on (STYLE.md: typed headers for what
//! we act on, raw bytes for the rest).
//!
//! Each parser takes the header value as a [`ByteString`] and returns parts
//! that share its storage. Folded lines inside values are read as LWS.

mod address;
mod auth;
mod via;

pub use address::{Contact, DisplayName, NameAddr};
pub use auth::AuthParams;
pub use via::{MAGIC_COOKIE, Transport, Via};

use bytestring::ByteString;

use super::method::Method;
use super::scan::{Cursor, Syntax, is_token};
use super::uri::{Param, Params};

/// A header that is missing, repeated, or whose value does not follow its
/// grammar. Its `Display` is fit for a reason phrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.phrase())]
pub struct HeaderError {
    /// The header's name.
    pub header: &'static str,
    /// What is wrong, in a few words fit for a reason phrase.
    pub reason: &'static str,
}

impl HeaderError {
    /// The `reason` of a required header that is absent.
    pub const MISSING: &'static str = "header is missing";

    fn phrase(&self) -> String {
        if self.reason == HeaderError::MISSING {
            format!("Missing {} header", self.header)
        } else {
            format!("Bad {} header: {}", self.header, self.reason)
        }
    }

    pub(crate) fn new(header: &'static str, Syntax(reason): Syntax) -> Self {
        HeaderError { header, reason }
    }
}

/// `CSeq: 4711 INVITE` (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number, 0 to 2³¹−1 in practice, at most 2³²−1.
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    /// Parses a CSeq value.
    pub fn parse(value: &ByteString) -> Result<Self, Syntax> {
        let mut cursor = Cursor::new(value);
        cursor.skip_lws();
        let digits = cursor.take_while(|b| b.is_ascii_digit());
        let seq = parse_u32(digits).ok_or(Syntax("CSeq number is not a 32-bit number"))?;
        let method = cursor.token()?;
        cursor.finish()?;
        Ok(CSeq {
            seq,
            method: Method::from_token(method),
        })
    }
}

impl std::fmt::Display for CSeq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Parses a run of decimal digits (leading zeros allowed) that fits in u32.
pub(crate) fn parse_u32(digits: &str) -> Option<u32> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > 10 {
        return None;
    }
    if significant.is_empty() {
        return Some(0);
    }
    significant
        .parse::<u64>()
        .ok()
        .and_then(|v| u32::try_from(v).ok())
}

/// Parses a delta-seconds value; values beyond 2³²−1 saturate (RFC 3261
/// §20.19 lets overlarge values fall back, RFC 4475 §3.1.2.4).
pub fn parse_delta_seconds(value: &str) -> Result<u32, Syntax> {
    let value = value.trim_matches(|c: char| c.is_ascii_whitespace());
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Syntax("expected a number of seconds"));
    }
    Ok(parse_u32(value).unwrap_or(u32::MAX))
}

/// Parses `Max-Forwards` (0 to 255).
pub fn parse_max_forwards(value: &str) -> Result<u8, Syntax> {
    let value = value.trim_matches(|c: char| c.is_ascii_whitespace());
    parse_u32(value)
        .and_then(|v| u8::try_from(v).ok())
        .ok_or(Syntax("Max-Forwards is not a number from 0 to 255"))
}

/// Parses a Call-ID: `word ["@" word]`, no white space inside.
pub fn parse_call_id(value: &ByteString) -> Result<ByteString, Syntax> {
    let trimmed = value.trim_matches(|c: char| c.is_ascii_whitespace());
    if trimmed.is_empty() {
        return Err(Syntax("Call-ID is empty"));
    }
    if trimmed
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(Syntax("Call-ID holds white space or a control character"));
    }
    Ok(value.slice_ref(trimmed))
}

/// Parses a comma-separated list of tokens (Require, Supported, Allow...).
pub fn parse_token_list(value: &ByteString) -> Result<Vec<ByteString>, Syntax> {
    let mut cursor = Cursor::new(value);
    let mut tokens = Vec::new();
    cursor.skip_lws();
    if cursor.is_empty() {
        return Ok(tokens);
    }
    loop {
        tokens.push(value.slice_ref(cursor.token()?));
        if !cursor.eat(b',') {
            break;
        }
    }
    cursor.finish()?;
    Ok(tokens)
}

/// `Content-Type: application/sdp; charset=...` (RFC 3261 §20.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    /// `application`.
    pub kind: ByteString,
    /// `sdp`.
    pub subtype: ByteString,
    /// Media-type parameters.
    pub params: Params,
}

impl ContentType {
    /// Parses a media type.
    pub fn parse(value: &ByteString) -> Result<Self, Syntax> {
        let mut cursor = Cursor::new(value);
        let kind = cursor.token()?;
        if !cursor.eat(b'/') {
            return Err(Syntax("media type has no '/'"));
        }
        let subtype = cursor.token()?;
        let params = parse_header_params(value, &mut cursor)?;
        cursor.finish()?;
        Ok(ContentType {
            kind: value.slice_ref(kind),
            subtype: value.slice_ref(subtype),
            params,
        })
    }

    /// `true` when this is `kind/subtype`, compared case-insensitively.
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

/// Parses `*(SEMI generic-param)` with LWS allowed around `;` and `=`.
/// Values are a token, a host (IPv6 in brackets or bare, as `received`
/// allows) or a quoted string kept with its quotes.
pub(crate) fn parse_header_params(
    source: &ByteString,
    cursor: &mut Cursor<'_>,
) -> Result<Params, Syntax> {
    let mut params = Params::new();
    loop {
        let before = cursor.position();
        cursor.skip_lws();
        if !cursor.eat_here(b';') {
            // Leave the cursor where it was so the caller sees the LWS too.
            cursor.rewind(before);
            return Ok(params);
        }
        let name = cursor
            .token()
            .map_err(|_| Syntax("empty or malformed parameter"))?;
        let value = if cursor.eat(b'=') {
            cursor.skip_lws();
            let value = if cursor.peek() == Some(b'"') {
                cursor.quoted_string()?
            } else {
                cursor.take_while(|b| is_token(b) || matches!(b, b':' | b'[' | b']'))
            };
            if value.is_empty() {
                return Err(Syntax("parameter has '=' but no value"));
            }
            Some(source.slice_ref(value))
        } else {
            None
        };
        params.push(Param {
            name: source.slice_ref(name),
            value,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq_with_leading_zeros_and_folding() {
        let cseq = CSeq::parse(&ByteString::from("0009\r\n  INVITE")).unwrap();
        assert_eq!(cseq.seq, 9);
        assert_eq!(cseq.method, Method::Invite);
        assert!(CSeq::parse(&ByteString::from("36893488147419103232 REGISTER")).is_err());
        assert!(CSeq::parse(&ByteString::from("4294967295 OPTIONS")).is_ok());
        assert!(CSeq::parse(&ByteString::from("4294967296 OPTIONS")).is_err());
        assert!(CSeq::parse(&ByteString::from("1")).is_err());
    }

    #[test]
    fn scalars() {
        assert_eq!(parse_max_forwards("0068"), Ok(68));
        assert!(parse_max_forwards("300").is_err());
        assert_eq!(parse_delta_seconds("3600"), Ok(3600));
        assert_eq!(parse_delta_seconds("1".repeat(60).as_str()), Ok(u32::MAX));
        assert!(parse_delta_seconds("soon").is_err());
    }

    #[test]
    fn token_lists_and_content_type() {
        let tags = parse_token_list(&ByteString::from("100rel , timer,replaces")).unwrap();
        assert_eq!(tags, vec!["100rel", "timer", "replaces"]);
        assert!(parse_token_list(&ByteString::from("a,,b")).is_err());
        let ct = ContentType::parse(&ByteString::from("Application/SDP ; charset=utf-8")).unwrap();
        assert!(ct.is("application", "sdp"));
        assert_eq!(ct.params.get("charset"), Some(Some("utf-8")));
    }

    #[test]
    fn header_params_with_spaces_and_quotes() {
        let source = ByteString::from(" ;   tag    = 1918181833n ; q=\"a b\" ;lr");
        let mut cursor = Cursor::new(&source);
        let params = parse_header_params(&source, &mut cursor).unwrap();
        assert_eq!(params.get("tag"), Some(Some("1918181833n")));
        assert_eq!(params.get("q"), Some(Some("\"a b\"")));
        assert_eq!(params.get("lr"), Some(None));
        assert!(cursor.finish().is_ok());
        let bad = ByteString::from(";;");
        assert!(parse_header_params(&bad, &mut Cursor::new(&bad)).is_err());
    }
}
