//! Header names: the ones we act on by type, compact forms (RFC 3261 §7.3.3
//! and later RFCs), and any other token kept as written.

use std::fmt;

use bytestring::ByteString;

macro_rules! header_names {
    ($( $variant:ident => $canonical:literal $(, $compact:literal)? ;)*) => {
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
                if name.len() == 1 {
                    let c = name.as_bytes()[0].to_ascii_lowercase();
                    $( $( if c == $compact { return HeaderName::$variant; } )? )*
                }
                $( if name.eq_ignore_ascii_case($canonical) { return HeaderName::$variant; } )*
                HeaderName::Other(ByteString::from(name))
            }

            /// The full name as we print it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$variant => $canonical, )*
                    HeaderName::Other(name) => name,
                }
            }
        }
    };
}

header_names! {
    Via => "Via", b'v';
    From => "From", b'f';
    To => "To", b't';
    CallId => "Call-ID", b'i';
    CSeq => "CSeq";
    Contact => "Contact", b'm';
    MaxForwards => "Max-Forwards";
    ContentLength => "Content-Length", b'l';
    ContentType => "Content-Type", b'c';
    ContentEncoding => "Content-Encoding", b'e';
    Expires => "Expires";
    MinExpires => "Min-Expires";
    Route => "Route";
    RecordRoute => "Record-Route";
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Supported => "Supported", b'k';
    Unsupported => "Unsupported";
    Allow => "Allow";
    Accept => "Accept";
    Authorization => "Authorization";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthorization => "Proxy-Authorization";
    ProxyAuthenticate => "Proxy-Authenticate";
    AuthenticationInfo => "Authentication-Info";
    Subject => "Subject", b's';
    Event => "Event", b'o';
    AllowEvents => "Allow-Events", b'u';
    ReferTo => "Refer-To", b'r';
    ReferredBy => "Referred-By", b'b';
    Replaces => "Replaces";
    SubscriptionState => "Subscription-State";
    RetryAfter => "Retry-After";
    UserAgent => "User-Agent";
    Server => "Server";
    Date => "Date";
    Timestamp => "Timestamp";
    Warning => "Warning";
    CallInfo => "Call-Info";
    AlertInfo => "Alert-Info";
    SessionExpires => "Session-Expires", b'x';
    Identity => "Identity", b'y';
    AcceptContact => "Accept-Contact", b'a';
    RejectContact => "Reject-Contact", b'j';
    RequestDisposition => "Request-Disposition", b'd';
    Reason => "Reason";
}

impl PartialEq for HeaderName {
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
