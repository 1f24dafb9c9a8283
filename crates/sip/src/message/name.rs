//! Header names: the ones we act on by type, compact forms (RFC 3261 §7.3.3
//! and later RFCs), and any other token kept as written.

use std::fmt;

use bytestring::ByteString;

macro_rules! header_names {
    ($( $variant:ident => $canonical:literal, $exact:literal, $lower:literal $(, $compact:literal)? ;)*) => {
        /// A header field name. Known names compare case-insensitively and
        /// whatever their compact form; others are kept as written.
        #[derive(Debug, Clone)]
        pub enum HeaderName {
            $(
                #[doc = concat!("`", $canonical, "`")]
                $variant,
            )*
            /// Any other header, as written.
            Other(ByteString),
        }

        impl HeaderName {
            /// Recognises `name` (a token) in any case and compact form.
            pub fn from_token(name: &str) -> Self {
                HeaderName::known(name.as_bytes())
                    .unwrap_or_else(|| HeaderName::Other(ByteString::from(name)))
            }

            /// The known name `name` stands for, in any case and compact
            /// form; `None` for any other name.
            pub(crate) fn known(name: &[u8]) -> Option<Self> {
                if name.len() == 1 {
                    let c = name[0].to_ascii_lowercase();
                    $( $( if c == $compact { return Some(HeaderName::$variant); } )? )*
                    return None;
                }
                // Most peers write the canonical spelling.
                match name {
                    $( $exact => return Some(HeaderName::$variant), )*
                    _ => {}
                }
                // Otherwise lower-case into a small buffer, then let the
                // compiler build its decision tree over the lower-case names.
                let mut lower = [0u8; LONGEST_KNOWN];
                let lower = lower.get_mut(..name.len())?;
                for (to, from) in lower.iter_mut().zip(name) {
                    *to = from.to_ascii_lowercase();
                }
                match &*lower {
                    $( $lower => Some(HeaderName::$variant), )*
                    _ => None,
                }
            }

            /// The full name as we print it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$variant => $canonical, )*
                    HeaderName::Other(name) => name,
                }
            }
        }

        #[cfg(test)]
        const KNOWN: &[(&str, &[u8], &[u8])] = &[ $( ($canonical, $exact, $lower), )* ];
    };
}

/// The length of the longest known name (`Request-Disposition`).
const LONGEST_KNOWN: usize = 19;

header_names! {
    Via => "Via", b"Via", b"via", b'v';
    From => "From", b"From", b"from", b'f';
    To => "To", b"To", b"to", b't';
    CallId => "Call-ID", b"Call-ID", b"call-id", b'i';
    CSeq => "CSeq", b"CSeq", b"cseq";
    Contact => "Contact", b"Contact", b"contact", b'm';
    MaxForwards => "Max-Forwards", b"Max-Forwards", b"max-forwards";
    ContentLength => "Content-Length", b"Content-Length", b"content-length", b'l';
    ContentType => "Content-Type", b"Content-Type", b"content-type", b'c';
    ContentEncoding => "Content-Encoding", b"Content-Encoding", b"content-encoding", b'e';
    Expires => "Expires", b"Expires", b"expires";
    MinExpires => "Min-Expires", b"Min-Expires", b"min-expires";
    Route => "Route", b"Route", b"route";
    RecordRoute => "Record-Route", b"Record-Route", b"record-route";
    Path => "Path", b"Path", b"path";
    Require => "Require", b"Require", b"require";
    ProxyRequire => "Proxy-Require", b"Proxy-Require", b"proxy-require";
    Supported => "Supported", b"Supported", b"supported", b'k';
    Unsupported => "Unsupported", b"Unsupported", b"unsupported";
    Allow => "Allow", b"Allow", b"allow";
    Accept => "Accept", b"Accept", b"accept";
    Authorization => "Authorization", b"Authorization", b"authorization";
    WwwAuthenticate => "WWW-Authenticate", b"WWW-Authenticate", b"www-authenticate";
    ProxyAuthorization => "Proxy-Authorization", b"Proxy-Authorization", b"proxy-authorization";
    ProxyAuthenticate => "Proxy-Authenticate", b"Proxy-Authenticate", b"proxy-authenticate";
    AuthenticationInfo => "Authentication-Info", b"Authentication-Info", b"authentication-info";
    Subject => "Subject", b"Subject", b"subject", b's';
    Event => "Event", b"Event", b"event", b'o';
    AllowEvents => "Allow-Events", b"Allow-Events", b"allow-events", b'u';
    ReferTo => "Refer-To", b"Refer-To", b"refer-to", b'r';
    ReferredBy => "Referred-By", b"Referred-By", b"referred-by", b'b';
    Replaces => "Replaces", b"Replaces", b"replaces";
    SubscriptionState => "Subscription-State", b"Subscription-State", b"subscription-state";
    RetryAfter => "Retry-After", b"Retry-After", b"retry-after";
    UserAgent => "User-Agent", b"User-Agent", b"user-agent";
    Server => "Server", b"Server", b"server";
    Date => "Date", b"Date", b"date";
    Timestamp => "Timestamp", b"Timestamp", b"timestamp";
    Warning => "Warning", b"Warning", b"warning";
    CallInfo => "Call-Info", b"Call-Info", b"call-info";
    AlertInfo => "Alert-Info", b"Alert-Info", b"alert-info";
    SessionExpires => "Session-Expires", b"Session-Expires", b"session-expires", b'x';
    Identity => "Identity", b"Identity", b"identity", b'y';
    AcceptContact => "Accept-Contact", b"Accept-Contact", b"accept-contact", b'a';
    RejectContact => "Reject-Contact", b"Reject-Contact", b"reject-contact", b'j';
    RequestDisposition => "Request-Disposition", b"Request-Disposition", b"request-disposition", b'd';
    Reason => "Reason", b"Reason", b"reason";
}

impl PartialEq for HeaderName {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (HeaderName::Other(_), _) | (_, HeaderName::Other(_)) => false,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl Eq for HeaderName {}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_case_table_matches_the_names() {
        for (canonical, exact, lower) in KNOWN {
            assert_eq!(canonical.as_bytes(), *exact);
            assert_eq!(canonical.to_ascii_lowercase().as_bytes(), *lower);
            assert!(lower.len() <= LONGEST_KNOWN, "{canonical}");
            assert_eq!(HeaderName::from_token(canonical).as_str(), *canonical);
            assert_eq!(
                HeaderName::from_token(&canonical.to_ascii_uppercase()).as_str(),
                *canonical
            );
        }
        assert!(
            KNOWN
                .iter()
                .any(|(_, _, lower)| lower.len() == LONGEST_KNOWN)
        );
        let long = "X".repeat(LONGEST_KNOWN + 1);
        assert_eq!(HeaderName::from_token(&long).as_str(), long);
        assert_eq!(HeaderName::known(b"q"), None);
    }

    #[test]
    fn compact_and_case_insensitive() {
        assert_eq!(HeaderName::from_token("v"), HeaderName::Via);
        assert_eq!(HeaderName::from_token("ViA"), HeaderName::Via);
        assert_eq!(HeaderName::from_token("I"), HeaderName::CallId);
        assert_eq!(HeaderName::from_token("l"), HeaderName::ContentLength);
        assert_eq!(HeaderName::from_token("c"), HeaderName::ContentType);
        assert_eq!(HeaderName::from_token("call-id"), HeaderName::CallId);
        assert_eq!(
            HeaderName::from_token("X-Thing"),
            HeaderName::from_token("x-thing")
        );
        assert_ne!(HeaderName::from_token("C%6Fntact"), HeaderName::Contact);
        assert_eq!(HeaderName::from_token("q").as_str(), "q");
    }
}
