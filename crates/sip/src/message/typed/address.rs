//! `name-addr` / `addr-spec` headers: From, To, Contact, Route,
//! Record-Route, Refer-To (RFC 3261 §20.10, §20.20, §20.39).

use std::borrow::Cow;
use std::fmt;

use bytestring::ByteString;

use super::parse_header_params;
use crate::message::scan::{Cursor, Syntax, collapse_lws, find_byte, is_lws, is_token, unquote};
use crate::message::uri::{Params, Uri};

/// A display name as it goes on the wire: a quoted string (quotes and
/// escapes kept) or a run of tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(ByteString);

impl DisplayName {
    /// A display name for `text`, quoted and escaped.
    pub fn quoted(text: &str) -> Self {
        let mut out = String::with_capacity(text.len() + 2);
        out.push('"');
        for c in text.chars() {
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                '\r' | '\n' => out.push(' '),
                _ => out.push(c),
            }
        }
        out.push('"');
        DisplayName(ByteString::from(out))
    }

    /// The wire form.
    pub fn as_wire(&self) -> &str {
        &self.0
    }

    /// The text a person reads: quotes and escapes removed.
    pub fn text(&self) -> Cow<'_, str> {
        if self.0.starts_with('"') {
            unquote(&self.0)
        } else {
            Cow::Borrowed(&self.0)
        }
    }
}

/// `[display-name] <URI> *(;param)` or `URI *(;param)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, when one is written.
    pub display: Option<DisplayName>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters (after the URI, outside the angle brackets).
    pub params: Params,
}

impl NameAddr {
    /// An address with no display name and no parameters.
    pub fn new(uri: Uri) -> Self {
        NameAddr {
            display: None,
            uri,
            params: Params::new(),
        }
    }

    /// Parses a single-value header (From, To, Refer-To...).
    pub fn parse(value: &ByteString) -> Result<Self, Syntax> {
        let mut cursor = Cursor::new(value);
        let address = parse_address(value, &mut cursor, false)?;
        cursor.finish()?;
        Ok(address)
    }

    /// Parses a list header (Route, Record-Route).
    pub fn parse_list(value: &ByteString) -> Result<Vec<Self>, Syntax> {
        let mut cursor = Cursor::new(value);
        let mut list = Vec::with_capacity(1);
        loop {
            list.push(parse_address(value, &mut cursor, true)?);
            if !cursor.eat(b',') {
                break;
            }
        }
        cursor.finish()?;
        Ok(list)
    }

    /// The `tag` parameter (From and To).
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(display) = &self.display {
            write!(f, "{} ", display.as_wire())?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// One value of a Contact header (RFC 3261 §20.10).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every Contact is an address; boxing it would cost an \
              allocation per contact to shrink the rare wildcard"
)]
pub enum Contact {
    /// `*`, only valid in a REGISTER with `Expires: 0`.
    Wildcard,
    /// An address with its contact parameters (`expires`, `q`...).
    Address(NameAddr),
}

impl Contact {
    /// Parses every value of one Contact header.
    pub fn parse_list(value: &ByteString) -> Result<Vec<Contact>, Syntax> {
        let mut cursor = Cursor::new(value);
        cursor.skip_lws();
        if cursor.peek() == Some(b'*') {
            cursor.eat_here(b'*');
            cursor.finish()?;
            return Ok(vec![Contact::Wildcard]);
        }
        let mut list = Vec::with_capacity(1);
        loop {
            list.push(Contact::Address(parse_address(value, &mut cursor, true)?));
            if !cursor.eat(b',') {
                break;
            }
        }
        cursor.finish()?;
        Ok(list)
    }

    /// The address, unless this is the wildcard.
    pub fn address(&self) -> Option<&NameAddr> {
        match self {
            Contact::Wildcard => None,
            Contact::Address(address) => Some(address),
        }
    }
}

fn parse_address(
    source: &ByteString,
    cursor: &mut Cursor<'_>,
    in_list: bool,
) -> Result<NameAddr, Syntax> {
    cursor.skip_lws();
    let display = match cursor.peek() {
        Some(b'"') => Some(DisplayName(source.slice_ref(cursor.quoted_string()?))),
        Some(b'<') => None,
        Some(_) => {
            let rest = cursor.rest();
            let address_end = if in_list {
                memchr::memchr2(b';', b',', rest.as_bytes())
            } else {
                find_byte(rest, b';')
            }
            .unwrap_or(rest.len());
            match find_byte(rest, b'<') {
                Some(lt) if lt < address_end => {
                    let candidate = &rest[..lt];
                    if !candidate.bytes().all(|b| is_token(b) || is_lws(b)) {
                        return Err(Syntax("display name holds characters that need quotes"));
                    }
                    let trimmed =
                        candidate.trim_end_matches(|c: char| c.is_ascii() && is_lws(c as u8));
                    let display = match collapse_lws(trimmed) {
                        Cow::Borrowed(text) => source.slice_ref(text),
                        Cow::Owned(text) => ByteString::from(text),
                    };
                    cursor.rewind(cursor.position() + lt);
                    Some(DisplayName(display))
                }
                _ => return parse_addr_spec(source, cursor, address_end),
            }
        }
        None => return Err(Syntax("address is empty")),
    };
    if !cursor.eat(b'<') {
        return Err(Syntax("display name is not followed by '<'"));
    }
    let inner = cursor.take_until(|b| b == b'>');
    if !cursor.eat_here(b'>') {
        return Err(Syntax("'<' is not closed by '>'"));
    }
    // RFC 4475 §3.1.2.14: spaces inside the brackets are tolerated.
    let inner = inner.trim_matches(|c: char| c.is_ascii() && is_lws(c as u8));
    let uri = Uri::parse_in(source, inner)?;
    let params = parse_header_params(source, cursor)?;
    Ok(NameAddr {
        display,
        uri,
        params,
    })
}

/// `addr-spec` without brackets: the URI ends at the first `;` (or `,` in
/// a list), and may then hold no `;`, `,` or `?` of its own (RFC 3261 §20).
fn parse_addr_spec(
    source: &ByteString,
    cursor: &mut Cursor<'_>,
    address_end: usize,
) -> Result<NameAddr, Syntax> {
    let start = cursor.position();
    let text = &cursor.rest()[..address_end];
    let uri_text = text.trim_end_matches(|c: char| c.is_ascii() && is_lws(c as u8));
    if uri_text.contains('?') {
        return Err(Syntax("a URI with headers must be enclosed in '<' and '>'"));
    }
    let uri = Uri::parse_in(source, uri_text)?;
    cursor.rewind(start + address_end);
    let params = parse_header_params(source, cursor)?;
    Ok(NameAddr {
        display: None,
        uri,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::uri::Host;

    fn one(text: &str) -> Result<NameAddr, Syntax> {
        NameAddr::parse(&ByteString::from(text))
    }

    #[test]
    fn quoted_display_and_tag() {
        let from = one(r#""J Rosenberg \\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8"#)
        .unwrap();
        assert_eq!(from.display.as_ref().unwrap().text(), r#"J Rosenberg \""#);
        assert_eq!(from.tag(), Some("98asjd8"));
        assert_eq!(from.uri.as_sip().unwrap().user.as_deref(), Some("jdrosen"));
    }

    #[test]
    fn addr_spec_with_spaced_tag() {
        let to = one("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert!(to.display.is_none());
        assert_eq!(to.tag(), Some("1918181833n"));
        let sip = to.uri.as_sip().unwrap();
        assert_eq!(sip.host, Host::Name("chair-dnrc.example.com".into()));
        assert!(sip.params.is_empty());
    }

    #[test]
    fn token_display_names() {
        let lws = one("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(lws.display.unwrap().text(), "caller");
        let odd = one("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;tag=x").unwrap();
        assert_eq!(
            odd.display.unwrap().text(),
            "token1~` token2'+_ token3*%!.-"
        );
        assert!(one("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_err());
    }

    #[test]
    fn malformed_addresses() {
        assert!(one(r#""Mr. J. User <sip:j.user@example.com>"#).is_err());
        assert!(one("<sip:joe@example.org>;;;;").is_err());
        assert!(one("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err());
        let spaced = one("\"Watson, Thomas\" < sip:t.watson@example.org >").unwrap();
        assert_eq!(spaced.display.unwrap().text(), "Watson, Thomas");
    }

    #[test]
    fn contact_param_versus_uri_param() {
        let contact =
            Contact::parse_list(&ByteString::from("sip:user@host.example.com;unknownparam"))
                .unwrap();
        let address = contact[0].address().unwrap();
        assert!(address.params.contains("unknownparam"));
        assert!(address.uri.as_sip().unwrap().params.is_empty());
        let inside = Contact::parse_list(&ByteString::from(
            "<sip:user@host.example.com;unknownparam>",
        ))
        .unwrap();
        let address = inside[0].address().unwrap();
        assert!(address.params.is_empty());
        assert!(
            address
                .uri
                .as_sip()
                .unwrap()
                .params
                .contains("unknownparam")
        );
    }

    #[test]
    fn contact_lists_and_wildcard() {
        let list = Contact::parse_list(&ByteString::from(
            "\"A, B\" <sip:a@x>;q=0.5, sip:b@y;expires=60",
        ))
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            list[1].address().unwrap().params.get("expires"),
            Some(Some("60"))
        );
        assert_eq!(
            Contact::parse_list(&ByteString::from(" * ")).unwrap(),
            vec![Contact::Wildcard]
        );
        let printed = list[0].address().unwrap().to_string();
        assert_eq!(printed, "\"A, B\" <sip:a@x>;q=0.5");
        assert_eq!(
            DisplayName::quoted("Pediatrics \"x\"").as_wire(),
            r#""Pediatrics \"x\"""#
        );
    }
}
