//! `Authorization`, `WWW-Authenticate` and their proxy twins
//! (RFC 3261 §20.7 and §25.1, RFC 7616, RFC 8760): a scheme and a list of
//! `name=value` parameters.

use std::borrow::Cow;
use std::fmt;

use bytestring::ByteString;

use crate::message::scan::{Cursor, Syntax, is_token, unquote};

/// A challenge or a set of credentials: `Digest realm="x", nonce="y"`.
/// Values are stored unquoted; [`fmt::Display`] quotes what must be quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParams {
    /// The scheme, e.g. `Digest`.
    pub scheme: ByteString,
    /// Parameters in order, names as written, values unquoted.
    pub params: Vec<(ByteString, ByteString)>,
}

/// Parameters whose values RFC 7616 sends as tokens, never quoted. `qop`
/// is a token in credentials and Authentication-Info (`qop=auth`) but a
/// quoted list in a challenge (`qop="auth"`, RFC 7616 §3.3, RFC 3261 §25.1
/// `qop-options`): see [`AuthParams::is_challenge`].
const UNQUOTED: [&str; 3] = ["algorithm", "nc", "stale"];

impl AuthParams {
    /// Parses `scheme param=value, param="value"`.
    pub fn parse(source: &ByteString) -> Result<Self, Syntax> {
        let mut cursor = Cursor::new(source);
        let scheme = cursor.token()?;
        let mut params = Vec::new();
        cursor.skip_lws();
        if !cursor.is_empty() {
            loop {
                let name = cursor.token()?;
                if !cursor.eat(b'=') {
                    return Err(Syntax("authentication parameter has no '='"));
                }
                cursor.skip_lws();
                let value = if cursor.peek() == Some(b'"') {
                    match unquote(cursor.quoted_string()?) {
                        Cow::Borrowed(text) => source.slice_ref(text),
                        Cow::Owned(text) => ByteString::from(text),
                    }
                } else {
                    source.slice_ref(cursor.token()?)
                };
                params.push((source.slice_ref(name), value));
                if !cursor.eat(b',') {
                    break;
                }
            }
        }
        cursor.finish()?;
        Ok(AuthParams {
            scheme: source.slice_ref(scheme),
            params,
        })
    }

    /// A new, empty parameter set for `scheme`.
    pub fn new(scheme: &str) -> Self {
        AuthParams {
            scheme: ByteString::from(scheme),
            params: Vec::new(),
        }
    }

    /// Adds a parameter.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.params
            .push((ByteString::from(name), ByteString::from(value)));
        self
    }

    /// The value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    /// `true` for the Digest scheme.
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }

    /// `true` when these parameters read as a challenge (WWW-Authenticate,
    /// Proxy-Authenticate): a `nonce` and no `response`.
    fn is_challenge(&self) -> bool {
        self.get("nonce").is_some() && self.get("response").is_none()
    }
}

impl fmt::Display for AuthParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        let challenge = self.is_challenge();
        for (index, (name, value)) in self.params.iter().enumerate() {
            f.write_str(if index == 0 { " " } else { ", " })?;
            let token = UNQUOTED.iter().any(|u| name.eq_ignore_ascii_case(u))
                || (name.eq_ignore_ascii_case("qop") && !challenge);
            // Only a value that reads back as one token may go unquoted.
            let bare = token && !value.is_empty() && value.bytes().all(is_token);
            if bare {
                write!(f, "{name}={value}")?;
            } else {
                write!(f, "{name}=\"")?;
                for c in value.chars() {
                    if c == '"' || c == '\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("\"")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_credentials_round_trip() {
        let text = r#"Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let credentials = AuthParams::parse(&ByteString::from(text)).unwrap();
        assert!(credentials.is_digest());
        assert_eq!(credentials.get("USERNAME"), Some("bob"));
        assert_eq!(credentials.get("nc"), Some("00000001"));
        assert_eq!(credentials.to_string(), text);
    }

    #[test]
    fn unknown_scheme_and_errors() {
        let other =
            AuthParams::parse(&ByteString::from("NoOneKnowsThisScheme opaque-data=here")).unwrap();
        assert_eq!(&*other.scheme, "NoOneKnowsThisScheme");
        assert_eq!(other.get("opaque-data"), Some("here"));
        assert!(AuthParams::parse(&ByteString::from("Digest realm")).is_err());
        assert!(AuthParams::parse(&ByteString::from("Digest realm=\"x")).is_err());
    }

    #[test]
    fn qop_is_quoted_in_challenges_only() {
        let challenge = AuthParams::new("Digest")
            .with("realm", "frontdesk")
            .with("nonce", "abc")
            .with("algorithm", "MD5")
            .with("qop", "auth");
        assert_eq!(
            challenge.to_string(),
            r#"Digest realm="frontdesk", nonce="abc", algorithm=MD5, qop="auth""#
        );
        let info = AuthParams::new("Digest")
            .with("qop", "auth")
            .with("rspauth", "ff")
            .with("nc", "00000001");
        assert_eq!(
            info.to_string(),
            r#"Digest qop=auth, rspauth="ff", nc=00000001"#
        );
        let parsed = AuthParams::parse(&ByteString::from(challenge.to_string())).unwrap();
        assert_eq!(parsed, challenge);
        // A value that is not a token is quoted whatever its name.
        let odd = AuthParams::new("Digest")
            .with("qop", "#")
            .with("algorithm", "a=b")
            .with("response", "r");
        assert_eq!(
            odd.to_string(),
            r##"Digest qop="#", algorithm="a=b", response="r""##
        );
        assert_eq!(
            AuthParams::parse(&ByteString::from(odd.to_string())).unwrap(),
            odd
        );
    }
}
