//! The real source of a request a trusted proxy forwarded.
//!
//! Behind Kamailio (issue 24; `deploy/kamailio/kamailio.cfg`) every
//! request reaches a node from Kamailio's address, so the per-source
//! limits, the sign-in lockout and agents' feature codes would all see one
//! source: the whole clinic in one bucket, every phone able to pass for
//! any agent. Kamailio therefore strips any `X-Frontdesk-Source` a request
//! carries and adds its own, naming the address it received the request
//! from:
//!
//! ```text
//! X-Frontdesk-Source: 192.0.2.7:5062;transport=udp
//! X-Frontdesk-Source: [2001:db8::7]:5062;transport=tcp
//! ```
//!
//! The header is believed only from the addresses of `[trust] proxies`
//! ([`crate::TrustedSources::is_proxy`]); from anyone else it is ignored,
//! so a patient cannot borrow another source's treatment by writing it.
//! This module only reads the value: a socket address (an IPv6 one in
//! brackets), then optional `;name[=value]` parameters, of which
//! `transport` (`udp`, `tcp`, `tls`; UDP when absent) is understood and the
//! others are ignored. Anything else is refused: the request is then
//! treated as coming from the proxy itself.

use std::net::SocketAddr;

/// The header Kamailio sets.
pub const SOURCE_HEADER: &str = "X-Frontdesk-Source";

/// The longest value read (an IPv6 address, a port and a transport take
/// about 60 bytes).
const MAX_LEN: usize = 256;

/// How the request reached the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedTransport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS.
    Tls,
}

/// Where a proxied request really came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardedSource {
    /// The address the proxy received it from.
    pub address: SocketAddr,
    /// Over what.
    pub transport: ForwardedTransport,
}

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardedError {
    /// Longer than any real value.
    #[error("the value is longer than {MAX_LEN} bytes")]
    TooLong,
    /// Not UTF-8.
    #[error("the value is not UTF-8")]
    NotText,
    /// The address part is not `ip:port` or `[ipv6]:port`.
    #[error("`{0}` is not an ip:port")]
    Address(String),
    /// A `transport` other than udp, tcp or tls.
    #[error("unknown transport `{0}`")]
    Transport(String),
    /// An empty or malformed parameter.
    #[error("a malformed parameter")]
    Parameter,
}

impl ForwardedSource {
    /// Reads a header value (surrounding whitespace allowed).
    pub fn parse(value: &[u8]) -> Result<Self, ForwardedError> {
        if value.len() > MAX_LEN {
            return Err(ForwardedError::TooLong);
        }
        let text = std::str::from_utf8(value).map_err(|_| ForwardedError::NotText)?;
        let mut parts = text.trim().split(';');
        let address_part = parts.next().unwrap_or_default().trim();
        let address: SocketAddr = address_part
            .parse()
            .map_err(|_| ForwardedError::Address(address_part.to_owned()))?;
        if address.port() == 0 {
            return Err(ForwardedError::Address(address_part.to_owned()));
        }
        let mut transport = ForwardedTransport::Udp;
        for parameter in parts {
            let (name, value) = match parameter.split_once('=') {
                Some((name, value)) => (name.trim(), Some(value.trim())),
                None => (parameter.trim(), None),
            };
            if name.is_empty() || !name.bytes().all(is_token) {
                return Err(ForwardedError::Parameter);
            }
            if !name.eq_ignore_ascii_case("transport") {
                continue;
            }
            transport = match value.map(str::to_ascii_lowercase).as_deref() {
                Some("udp") => ForwardedTransport::Udp,
                Some("tcp") => ForwardedTransport::Tcp,
                Some("tls") => ForwardedTransport::Tls,
                other => return Err(ForwardedError::Transport(other.unwrap_or("").to_owned())),
            };
        }
        Ok(ForwardedSource { address, transport })
    }
}

/// RFC 3261 §25.1 `token` characters.
fn is_token(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parse(text: &str) -> Result<ForwardedSource, ForwardedError> {
        ForwardedSource::parse(text.as_bytes())
    }

    #[test]
    fn what_kamailio_writes() {
        assert_eq!(
            parse("192.0.2.7:5062;transport=udp"),
            Ok(ForwardedSource {
                address: "192.0.2.7:5062".parse().unwrap(),
                transport: ForwardedTransport::Udp,
            })
        );
        assert_eq!(
            parse(" [2001:db8::7]:5062;transport=TCP "),
            Ok(ForwardedSource {
                address: "[2001:db8::7]:5062".parse().unwrap(),
                transport: ForwardedTransport::Tcp,
            })
        );
        assert_eq!(
            parse("127.0.0.2:40000").map(|s| s.transport),
            Ok(ForwardedTransport::Udp)
        );
        assert_eq!(
            parse("127.0.0.2:40000;x-hop=1;lr;transport=tls").map(|s| s.transport),
            Ok(ForwardedTransport::Tls)
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "192.0.2.7",
            "192.0.2.7:0",
            "192.0.2.7:70000",
            "2001:db8::7:5062",
            "host.example:5062",
            "192.0.2.7:5062;transport=sctp",
            "192.0.2.7:5062;transport",
            "192.0.2.7:5062;;transport=udp",
            "192.0.2.7:5062;a b=c",
            "192.0.2.7:5062, 192.0.2.8:5062",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            ForwardedSource::parse(&[b'1'; MAX_LEN + 1]),
            Err(ForwardedError::TooLong)
        );
        assert_eq!(
            ForwardedSource::parse(b"\xff:1"),
            Err(ForwardedError::NotText)
        );
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panic(value in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = ForwardedSource::parse(&value);
        }

        #[test]
        fn every_address_written_reads_back(
            address in any::<SocketAddr>().prop_filter("a port", |a| a.port() != 0),
            transport in prop_oneof![Just("udp"), Just("tcp"), Just("tls")],
            extra in "(;[a-z]{1,8}(=[a-z0-9]{1,8})?){0,3}",
        ) {
            // Kamailio writes no flow label or scope id.
            let address = match address {
                SocketAddr::V6(v6) => SocketAddr::new((*v6.ip()).into(), v6.port()),
                v4 => v4,
            };
            let text = format!("{address}{extra};transport={transport}");
            let parsed = ForwardedSource::parse(text.as_bytes()).unwrap();
            prop_assert_eq!(parsed.address, address);
            let expected = match transport {
                "udp" => ForwardedTransport::Udp,
                "tcp" => ForwardedTransport::Tcp,
                _ => ForwardedTransport::Tls,
            };
            prop_assert_eq!(parsed.transport, expected);
        }
    }
}
