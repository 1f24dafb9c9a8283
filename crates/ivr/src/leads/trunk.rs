//! `[trunks.<id>]`: the carrier's SIP trunk, the only way out of the
//! clinic (click-to-call, callbacks; the outbound call itself is
//! `call::originate`).
//!
//! Every number dialed out passes [`Trunk::permits`]: it must match one
//! of `allow` and none of `deny` (regular expressions over the E.164
//! form). An empty `allow` permits nothing: toll fraud starts with a
//! trunk that dials anywhere, so the clinic lists what it calls.
//!
//! The trunk's address, when `uri` names an IP address, is trusted like
//! `[trust] trunks` (DESIGN.md, "Trusted sources"); a host name is not
//! resolved by `check`, so list its addresses under `[trust] trunks`.

use std::fmt;
use std::net::IpAddr;

use regex::Regex;

use super::phone::PhoneNumber;

/// The transport a trunk's `;transport=` parameter asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkTransport {
    /// `udp`.
    Udp,
    /// `tcp`.
    Tcp,
    /// `tls`.
    Tls,
}

/// A trunk's SIP URI, read (RFC 3261 §19.1.1, the parts a trunk uses):
/// `sip:` or `sips:`, an optional `user@`, a host (name, IPv4 or `[IPv6]`),
/// an optional port, and parameters of which `transport` is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkUri {
    text: String,
    /// `sips:`.
    pub secure: bool,
    /// The host, IPv6 without brackets.
    pub host: String,
    /// The port, when written.
    pub port: Option<u16>,
    /// `;transport=`, when written.
    pub transport: Option<TrunkTransport>,
}

impl TrunkUri {
    /// Reads `text`; the error says what is wrong, for `check`.
    pub fn parse(text: &str) -> Result<TrunkUri, String> {
        let (secure, rest) = if let Some(rest) = text.strip_prefix("sip:") {
            (false, rest)
        } else if let Some(rest) = text.strip_prefix("sips:") {
            (true, rest)
        } else {
            return Err(format!("`{text}` is not a SIP URI (write `sip:host:port`)"));
        };
        let (address, parameters) = rest.split_once(';').unwrap_or((rest, ""));
        let host_port = match address.rsplit_once('@') {
            Some((user, host_port)) if !user.is_empty() => host_port,
            Some(_) => return Err(format!("`{text}`: an empty user part before `@`")),
            None => address,
        };
        let (host, port) = if let Some(inner) = host_port.strip_prefix('[') {
            let (ip, after) = inner
                .split_once(']')
                .ok_or_else(|| format!("`{text}`: an IPv6 address needs its closing `]`"))?;
            if ip.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("`{text}`: `{ip}` is not an IPv6 address"));
            }
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(|| {
                    format!("`{text}`: only `:port` may follow the IPv6 address")
                })?),
            };
            (ip.to_string(), port)
        } else {
            match host_port.split_once(':') {
                Some((host, port)) => (host.to_string(), Some(port)),
                None => (host_port.to_string(), None),
            }
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
        {
            return Err(format!("`{text}`: `{host}` is not a host name or address"));
        }
        let port = match port {
            None => None,
            Some(port) => match port.parse::<u16>() {
                Ok(port) if port > 0 => Some(port),
                _ => return Err(format!("`{text}`: `{port}` is not a port (1 to 65535)")),
            },
        };
        let mut transport = None;
        for parameter in parameters.split(';').filter(|p| !p.is_empty()) {
            if let Some(value) = parameter.strip_prefix("transport=") {
                transport = Some(match value.to_ascii_lowercase().as_str() {
                    "udp" => TrunkTransport::Udp,
                    "tcp" => TrunkTransport::Tcp,
                    "tls" => TrunkTransport::Tls,
                    _ => {
                        return Err(format!(
                            "`{text}`: transport `{value}` (use `udp`, `tcp` or `tls`)"
                        ));
                    }
                });
            }
        }
        Ok(TrunkUri {
            text: text.to_string(),
            secure,
            host,
            port,
            transport,
        })
    }

    /// The host as an IP address, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// The URI as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// One trunk.
#[derive(Clone)]
pub struct Trunk {
    pub(crate) id: String,
    pub(crate) uri: TrunkUri,
    pub(crate) username: String,
    pub(crate) password: String,
    /// E.164 in form (`+15550100`); not held to libphonenumber's validity,
    /// since a clinic's own short demo numbers are fine here.
    pub(crate) caller_id: String,
    pub(crate) allow: Vec<Regex>,
    pub(crate) deny: Vec<Regex>,
    /// How long a patient's phone rings before the call out gives up.
    pub(crate) ring_timeout: std::time::Duration,
}

impl fmt::Debug for Trunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trunk")
            .field("id", &self.id)
            .field("uri", &self.uri.as_str())
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("caller_id", &self.caller_id)
            .field("allow", &self.allow)
            .field("deny", &self.deny)
            .field("ring_timeout", &self.ring_timeout)
            .finish()
    }
}

impl Trunk {
    /// `ring_timeout` when the dialplan gives none.
    pub const DEFAULT_RING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45);

    /// How long a patient's phone rings before a call out gives up
    /// (`ring_timeout`, default 45 s).
    pub fn ring_timeout(&self) -> std::time::Duration {
        self.ring_timeout
    }

    /// Its name (`carrier`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where calls out go.
    pub fn uri(&self) -> &TrunkUri {
        &self.uri
    }

    /// The digest user name, when the carrier asks (empty: none).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The digest password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The number calls out present (E.164).
    pub fn caller_id(&self) -> &str {
        &self.caller_id
    }

    /// The trunk every call out takes (click-to-call, callbacks):
    /// DESIGN.md's `[trunks.carrier]`.
    pub const CARRIER: &'static str = "carrier";

    /// Whether `number` may be dialed: one `allow` matches, no `deny` does.
    pub fn permits(&self, number: &PhoneNumber) -> bool {
        let text = number.as_str();
        self.allow.iter().any(|re| re.is_match(text))
            && !self.deny.iter().any(|re| re.is_match(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_a_trunk_uses() {
        let uri = TrunkUri::parse("sip:127.0.0.1:5062").unwrap();
        assert_eq!(
            (uri.host.as_str(), uri.port, uri.secure),
            ("127.0.0.1", Some(5062), false)
        );
        assert_eq!(uri.ip(), Some("127.0.0.1".parse().unwrap()));
        let uri = TrunkUri::parse("sips:trunk@sip.carrier.example;transport=tls").unwrap();
        assert_eq!(uri.host, "sip.carrier.example");
        assert_eq!(
            (uri.port, uri.transport, uri.secure),
            (None, Some(TrunkTransport::Tls), true)
        );
        assert_eq!(uri.ip(), None);
        let uri = TrunkUri::parse("sip:[::1]:5062").unwrap();
        assert_eq!((uri.host.as_str(), uri.port), ("::1", Some(5062)));
        for bad in [
            "127.0.0.1:5062",
            "sip:",
            "sip:host:0",
            "sip:host:99999",
            "sip:ho st",
            "sip:[::1",
            "sip:[nope]",
            "sip:@host",
            "sip:host;transport=sctp",
        ] {
            assert!(TrunkUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allow_and_deny() {
        let trunk = Trunk {
            id: "carrier".into(),
            uri: TrunkUri::parse("sip:127.0.0.1:5062").unwrap(),
            username: String::new(),
            password: String::new(),
            caller_id: "+15550100".into(),
            allow: vec![Regex::new(r"^\+1[2-9][0-9]{9}$").unwrap()],
            deny: vec![Regex::new(r"^\+1(900|976)").unwrap()],
            ring_timeout: Trunk::DEFAULT_RING_TIMEOUT,
        };
        let number = |n: &str| PhoneNumber::parse(n, None).unwrap();
        assert!(trunk.permits(&number("+13125550199")));
        assert!(!trunk.permits(&number("+19005550199")));
        assert!(!trunk.permits(&number("+442079460018")));
        assert!(format!("{trunk:?}").contains("password: \"<redacted>\""));
    }
}
