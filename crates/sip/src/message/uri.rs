//! URIs: SIP and SIPS (RFC 3261 §19.1, IPv6 references per RFC 5118) and
//! any other scheme, kept opaque.
//!
//! Every part is kept exactly as written, escapes included, so printing a
//! URI gives back its bytes. Escapes are undone once, and only on demand
//! ([`SipUri::user_unescaped`], [`unescape`]), where the grammar says a part
//! may be escaped (RFC 4475 §3.1.1.3: `%25%34%31` means `%41`, not `A`).

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytestring::ByteString;

use super::scan::{Syntax, find_byte, rfind_byte};

/// A URI of any scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// Any other scheme (`tel:`, `http:`, `isbn:` ...), kept opaque.
    Other(OtherUri),
}

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `true` for `sips:`.
    pub secure: bool,
    /// The user part, still escaped.
    pub user: Option<ByteString>,
    /// The password part, still escaped.
    pub password: Option<ByteString>,
    /// The host.
    pub host: Host,
    /// The port, when one is written.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params,
    /// The headers part after `?`, still escaped.
    pub headers: Option<ByteString>,
}

/// A URI of a scheme we do not interpret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherUri {
    /// The scheme, as written.
    pub scheme: ByteString,
    /// Everything after the colon.
    pub rest: ByteString,
}

/// The host of a SIP URI or of a Via sent-by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A domain name (or anything that is not an IP literal), as written.
    Name(ByteString),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 reference, written in brackets.
    V6(Ipv6Addr),
}

/// A list of `;name[=value]` parameters, in order, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<Param>);

/// One parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The name, as written.
    pub name: ByteString,
    /// The value, as written (quoted strings keep their quotes).
    pub value: Option<ByteString>,
}

impl Uri {
    /// Parses a URI out of `text`, a slice of `source` (so the parts share
    /// its storage).
    pub(crate) fn parse_in(source: &ByteString, text: &str) -> Result<Self, Syntax> {
        let colon = find_byte(text, b':').ok_or(Syntax("URI has no scheme"))?;
        let scheme = &text[..colon];
        let valid_scheme = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !valid_scheme {
            return Err(Syntax("URI scheme is not valid"));
        }
        let rest = &text[colon + 1..];
        if rest
            .bytes()
            .any(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'<' | b'>' | b'"'))
        {
            return Err(Syntax(
                "URI contains white space, a quote or an angle bracket",
            ));
        }
        // No part of any URI may hold a control character: RFC 3261 §25.1
        // and RFC 3986 §2 have them escaped (`%00`), never raw.
        if rest.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(Syntax("URI contains a control character"));
        }
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse_rest(source, scheme.len() == 4, rest).map(Uri::Sip)
        } else if rest.is_empty() {
            Err(Syntax("URI is empty after its scheme"))
        } else {
            Ok(Uri::Other(OtherUri {
                scheme: source.slice_ref(scheme),
                rest: source.slice_ref(rest),
            }))
        }
    }

    /// Parses a URI held in its own string.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let source = ByteString::from(text.trim());
        let text = &*source;
        Uri::parse_in(&source, text).map_err(|Syntax(reason)| UriError(reason))
    }

    /// The SIP URI, when this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(uri) => Some(uri),
            Uri::Other(_) => None,
        }
    }

    /// The scheme, lower case for SIP and SIPS, as written otherwise.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(uri) if uri.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Other(other) => &other.scheme,
        }
    }
}

/// A URI that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad URI: {0}")]
pub struct UriError(pub &'static str);

impl SipUri {
    /// A plain `sip:user@host[:port]` URI.
    pub fn new(user: Option<&str>, host: Host, port: Option<u16>) -> Self {
        SipUri {
            secure: false,
            user: user.map(ByteString::from),
            password: None,
            host,
            port,
            params: Params::default(),
            headers: None,
        }
    }

    fn parse_rest(source: &ByteString, secure: bool, rest: &str) -> Result<Self, Syntax> {
        // The userinfo ends at the first '@': an '@' may appear nowhere else
        // unescaped (RFC 3261 §25.1: it is not in `unreserved`, `param-
        // unreserved` or `hnv-unreserved`). The user part itself may hold
        // ';', '?' and ',' (RFC 4475 §3.1.1.2 and §3.1.1.9).
        let (userinfo, hostpart) = match find_byte(rest, b'@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => match find_byte(info, b':') {
                Some(colon) => (Some(&info[..colon]), Some(&info[colon + 1..])),
                None => (Some(info), None),
            },
        };
        if user.is_some_and(str::is_empty) {
            return Err(Syntax("URI has an empty user part"));
        }
        let (hostport_params, headers) = match find_byte(hostpart, b'?') {
            Some(q) => (&hostpart[..q], Some(&hostpart[q + 1..])),
            None => (hostpart, None),
        };
        let (hostport, params) = match find_byte(hostport_params, b';') {
            Some(semi) => (&hostport_params[..semi], &hostport_params[semi..]),
            None => (hostport_params, ""),
        };
        let (host, port) = parse_hostport(source, hostport)?;
        let params = Params::parse_uri_params(source, params)?;
        Ok(SipUri {
            secure,
            user: user.map(|u| source.slice_ref(u)),
            password: password.map(|p| source.slice_ref(p)),
            host,
            port,
            params,
            headers: headers.map(|h| source.slice_ref(h)),
        })
    }

    /// The user part with `%HH` escapes undone once (NULs included).
    pub fn user_unescaped(&self) -> Option<Cow<'_, [u8]>> {
        self.user.as_deref().map(unescape)
    }

    /// The value of the `transport` parameter, lower case.
    pub fn transport(&self) -> Option<String> {
        self.params
            .get("transport")
            .flatten()
            .map(|t| t.to_ascii_lowercase())
    }
}

/// Parses `host[:port]` (RFC 3261 `hostport`, RFC 5118 IPv6 references).
pub(crate) fn parse_hostport(
    source: &ByteString,
    text: &str,
) -> Result<(Host, Option<u16>), Syntax> {
    let (host_text, port_text) = if let Some(rest) = text.strip_prefix('[') {
        let close = find_byte(rest, b']').ok_or(Syntax("IPv6 reference is not closed"))?;
        let after = &rest[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(Syntax("unexpected characters after an IPv6 reference")),
        };
        (&text[..close + 2], port)
    } else {
        match rfind_byte(text, b':') {
            Some(colon) => (&text[..colon], Some(&text[colon + 1..])),
            None => (text, None),
        }
    };
    let host = Host::parse_in(source, host_text)?;
    let port = match port_text {
        None => None,
        Some(port) => Some(parse_port(port)?),
    };
    Ok((host, port))
}

fn parse_port(text: &str) -> Result<u16, Syntax> {
    const BAD: Syntax = Syntax("port is not a number from 0 to 65535");
    if text.is_empty() || text.len() > 5 {
        return Err(BAD);
    }
    let mut value: u32 = 0;
    for digit in text.bytes() {
        if !digit.is_ascii_digit() {
            return Err(BAD);
        }
        value = value * 10 + u32::from(digit - b'0');
    }
    u16::try_from(value).map_err(|_| BAD)
}

impl Host {
    pub(crate) fn parse_in(source: &ByteString, text: &str) -> Result<Self, Syntax> {
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or(Syntax("IPv6 reference is not closed"))?;
            return inner
                .parse::<Ipv6Addr>()
                .map(Host::V6)
                .map_err(|_| Syntax("IPv6 reference is not an IPv6 address"));
        }
        if text.is_empty() {
            return Err(Syntax("host is empty"));
        }
        let mut numeric = true;
        for b in text.bytes() {
            if b.is_ascii_digit() || b == b'.' {
                continue;
            }
            if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(Syntax("host holds a character a host name may not"));
            }
            numeric = false;
        }
        if numeric {
            return parse_ipv4(text.as_bytes())
                .map(Host::V4)
                .ok_or(Syntax("host looks like an IPv4 address but is not one"));
        }
        Ok(Host::Name(source.slice_ref(text)))
    }

    /// The IP address, when the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Name(_) => None,
            Host::V4(ip) => Some(IpAddr::V4(*ip)),
            Host::V6(ip) => Some(IpAddr::V6(*ip)),
        }
    }

    /// Case-insensitive comparison (RFC 3261 §19.1.4).
    pub fn same_as(&self, other: &Host) -> bool {
        match (self, other) {
            (Host::Name(a), Host::Name(b)) => a.eq_ignore_ascii_case(b),
            _ => self == other,
        }
    }
}

/// `d.d.d.d`, each part 0 to 255 without leading zeros: what
/// `Ipv4Addr::from_str` accepts, without its general-purpose parser (every
/// Via, URI and Contact of a message goes through here).
fn parse_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut part = 0;
    let mut value: u16 = 0;
    let mut digits = 0;
    for &byte in text {
        if byte == b'.' {
            if digits == 0 || part == 3 {
                return None;
            }
            octets[part] = u8::try_from(value).ok()?;
            part += 1;
            value = 0;
            digits = 0;
        } else if byte.is_ascii_digit() {
            // No leading zeros, at most three digits.
            if digits == 3 || (digits == 1 && value == 0) {
                return None;
            }
            value = value * 10 + u16::from(byte - b'0');
            digits += 1;
        } else {
            return None;
        }
    }
    if digits == 0 || part != 3 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(ip) => Host::V4(ip),
            IpAddr::V6(ip) => Host::V6(ip),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::V4(ip) => write!(f, "{ip}"),
            Host::V6(ip) => write!(f, "[{ip}]"),
        }
    }
}

impl Params {
    /// Parses URI parameters: `text` is empty or starts with `;`.
    fn parse_uri_params(source: &ByteString, text: &str) -> Result<Self, Syntax> {
        let mut params = Vec::new();
        if text.is_empty() {
            return Ok(Params(params));
        }
        for piece in text[1..].split(';') {
            let (name, value) = match find_byte(piece, b'=') {
                Some(eq) => (&piece[..eq], Some(&piece[eq + 1..])),
                None => (piece, None),
            };
            if name.is_empty() {
                return Err(Syntax("URI has an empty parameter"));
            }
            params.push(Param {
                name: source.slice_ref(name),
                value: value.map(|v| source.slice_ref(v)),
            });
        }
        Ok(Params(params))
    }

    /// Builds an empty list.
    pub fn new() -> Self {
        Params(Vec::new())
    }

    /// The value of the first parameter called `name` (case-insensitive,
    /// escapes in the written name undone): `Some(None)` for a parameter
    /// without a value.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|p| p.name_is(name))
            .map(|p| p.value.as_deref())
    }

    /// `true` when a parameter called `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|p| p.name_is(name))
    }

    /// Sets `name` to `value`, replacing an existing parameter of that name.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(ByteString::from);
        match self.0.iter_mut().find(|p| p.name_is(name)) {
            Some(param) => param.value = value,
            None => self.0.push(Param {
                name: ByteString::from(name),
                value,
            }),
        }
    }

    /// Removes every parameter called `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|p| !p.name_is(name));
    }

    /// The parameters in order.
    pub fn iter(&self) -> impl Iterator<Item = &Param> {
        self.0.iter()
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn push(&mut self, param: Param) {
        self.0.push(param);
    }
}

impl Param {
    fn name_is(&self, name: &str) -> bool {
        if self.name.eq_ignore_ascii_case(name) {
            return true;
        }
        self.name.contains('%') && unescape(&self.name).eq_ignore_ascii_case(name.as_bytes())
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for param in &self.0 {
            write!(f, ";{}", param.name)?;
            if let Some(value) = &param.value {
                write!(f, "={value}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(password) = &self.password {
                write!(f, ":{password}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(headers) = &self.headers {
            write!(f, "?{headers}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(uri) => uri.fmt(f),
            Uri::Other(other) => write!(f, "{}:{}", other.scheme, other.rest),
        }
    }
}

/// Undoes `%HH` escapes once. A `%` not followed by two hex digits is kept.
pub fn unescape(text: &str) -> Cow<'_, [u8]> {
    let bytes = text.as_bytes();
    if !bytes.contains(&b'%') {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(at + 1).and_then(|b| hex(*b)),
                bytes.get(at + 2).and_then(|b| hex(*b)),
            )
        {
            out.push(high << 4 | low);
            at += 3;
            continue;
        }
        out.push(bytes[at]);
        at += 1;
    }
    Cow::Owned(out)
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(text: &str) -> SipUri {
        match Uri::parse(text).unwrap() {
            Uri::Sip(uri) => uri,
            Uri::Other(other) => panic!("not a SIP URI: {other:?}"),
        }
    }

    #[test]
    fn user_host_port_params_headers() {
        let uri = sip("sip:alice:secret@example.com:5070;transport=TCP;lr?subject=x");
        assert_eq!(uri.user.as_deref(), Some("alice"));
        assert_eq!(uri.password.as_deref(), Some("secret"));
        assert_eq!(uri.host, Host::Name("example.com".into()));
        assert_eq!(uri.port, Some(5070));
        assert_eq!(uri.transport().as_deref(), Some("tcp"));
        assert_eq!(uri.params.get("lr"), Some(None));
        assert_eq!(uri.headers.as_deref(), Some("subject=x"));
        assert_eq!(
            uri.to_string(),
            "sip:alice:secret@example.com:5070;transport=TCP;lr?subject=x"
        );
    }

    #[test]
    fn ipv6_references() {
        let uri = sip("sip:[2001:db8::10]:5070");
        assert_eq!(uri.host, Host::V6("2001:db8::10".parse().unwrap()));
        assert_eq!(uri.port, Some(5070));
        assert_eq!(uri.to_string(), "sip:[2001:db8::10]:5070");
        assert!(Uri::parse("sip:[2001:db8::10").is_err());
        assert!(Uri::parse("sip:[not-v6]").is_err());
    }

    #[test]
    fn user_part_may_hold_semicolons_and_escapes() {
        let uri = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(uri.user.as_deref(), Some("user;par=u%40example.net"));
        assert_eq!(uri.host, Host::Name("example.com".into()));
        let null = sip("sip:null-%00-null@example.com");
        assert_eq!(null.user_unescaped().unwrap().as_ref(), b"null-\0-null");
    }

    #[test]
    fn escapes_are_undone_once() {
        assert_eq!(unescape("v%61lue%25%34%31").as_ref(), b"value%41");
        assert_eq!(unescape("100%").as_ref(), b"100%");
        let uri = sip("sip:caller@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
        assert!(uri.params.contains("lr"));
        assert_eq!(uri.params.get("name"), Some(Some("v%61lue%25%34%31")));
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("0"), Ok(0));
        assert_eq!(parse_port("05060"), Ok(5060));
        assert_eq!(parse_port("65535"), Ok(65535));
        assert!(parse_port("65536").is_err());
        assert!(parse_port("99999").is_err());
        assert!(parse_port("123456").is_err());
        assert!(parse_port("").is_err());
        assert!(parse_port("+1").is_err());
        assert!(parse_port("5o60").is_err());
    }

    #[test]
    fn ipv4_parsing_agrees_with_std() {
        let cases = [
            "0.0.0.0",
            "127.0.0.1",
            "255.255.255.255",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.04",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "1234.1.1.1",
            "",
            "...",
            "1.2.3.4a",
            "0.0.0.00",
            "10.0.0.255",
            "999.999.999.999",
        ];
        for case in cases {
            assert_eq!(
                parse_ipv4(case.as_bytes()),
                case.parse::<Ipv4Addr>().ok(),
                "{case:?}"
            );
        }
        for a in [
            0u16, 1, 9, 10, 99, 100, 199, 200, 249, 250, 255, 256, 300, 999,
        ] {
            let text = format!("{a}.{a}.{a}.{a}");
            assert_eq!(parse_ipv4(text.as_bytes()), text.parse().ok(), "{text}");
        }
        // Every string of up to 8 characters over "0129.".
        let alphabet = b"0129.";
        let mut text = Vec::new();
        for len in 0..=8u32 {
            for mut n in 0..5usize.pow(len) {
                text.clear();
                for _ in 0..len {
                    text.push(alphabet[n % 5]);
                    n /= 5;
                }
                let expected = std::str::from_utf8(&text).unwrap().parse::<Ipv4Addr>().ok();
                assert_eq!(
                    parse_ipv4(&text),
                    expected,
                    "{:?}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
    }

    #[test]
    fn other_schemes_stay_opaque() {
        let uri = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(uri.scheme(), "soap.beep");
        assert_eq!(uri.to_string(), "soap.beep://192.0.2.103:3002");
        assert!(Uri::parse("<sip:x@y>").is_err());
        assert!(Uri::parse("1abc:x").is_err());
    }
}
