//! `Via` (RFC 3261 §20.42, `received` and `rport` per RFC 3581).

use std::fmt;

use bytestring::ByteString;

use super::parse_header_params;
use crate::message::scan::{Cursor, Syntax};
use crate::message::uri::{Host, Params, parse_hostport};

/// The transport of a Via's sent-protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP.
    Sctp,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket (RFC 7118).
    Wss,
    /// Any other token, as written.
    Other(ByteString),
}

impl Transport {
    fn from_token(token: &str) -> Self {
        const KNOWN: [(&str, Transport); 6] = [
            ("UDP", Transport::Udp),
            ("TCP", Transport::Tcp),
            ("TLS", Transport::Tls),
            ("SCTP", Transport::Sctp),
            ("WS", Transport::Ws),
            ("WSS", Transport::Wss),
        ];
        KNOWN
            .into_iter()
            .find(|(name, _)| token.eq_ignore_ascii_case(name))
            .map_or_else(|| Transport::Other(ByteString::from(token)), |(_, t)| t)
    }

    /// The upper-case name used in Via.
    pub fn as_str(&self) -> &str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(name) => name,
        }
    }

    /// `true` for transports that deliver a byte stream with its own
    /// reliability (no retransmissions needed, RFC 3261 §17).
    pub fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

/// One Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// The protocol name and version, e.g. `SIP/2.0`.
    pub protocol: ByteString,
    /// The transport.
    pub transport: Transport,
    /// The sent-by host.
    pub host: Host,
    /// The sent-by port.
    pub port: Option<u16>,
    /// Via parameters (branch, received, rport, maddr, ttl, ...).
    pub params: Params,
}

/// The magic cookie that starts an RFC 3261 branch (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

impl Via {
    /// Parses every Via in one header value (`a, b, c`).
    pub fn parse_list(value: &ByteString) -> Result<Vec<Via>, Syntax> {
        let mut cursor = Cursor::new(value);
        let mut vias = Vec::with_capacity(1);
        loop {
            vias.push(Via::parse_one(value, &mut cursor)?);
            if !cursor.eat(b',') {
                break;
            }
        }
        cursor.finish()?;
        Ok(vias)
    }

    fn parse_one(source: &ByteString, cursor: &mut Cursor<'_>) -> Result<Via, Syntax> {
        let name = cursor.token()?;
        if !cursor.eat(b'/') {
            return Err(Syntax("sent-protocol has no '/'"));
        }
        let version = cursor.token()?;
        if !cursor.eat(b'/') {
            return Err(Syntax("sent-protocol has no transport"));
        }
        let transport = cursor.token()?;
        let protocol = if name.eq_ignore_ascii_case("SIP") && version == "2.0" {
            ByteString::from_static("SIP/2.0")
        } else {
            ByteString::from(format!("{name}/{version}"))
        };
        cursor.skip_lws();
        let sent_by = cursor.take_while(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        });
        if sent_by.is_empty() {
            return Err(Syntax("Via has no sent-by"));
        }
        // A port may also follow `host SP : SP port` (COLON allows SWS).
        let (host, mut port) = parse_hostport(source, sent_by)?;
        let mark = cursor.position();
        if port.is_none() && cursor.eat(b':') {
            cursor.skip_lws();
            let digits = cursor.take_while(|b| b.is_ascii_digit());
            port = Some(
                digits
                    .parse()
                    .map_err(|_| Syntax("Via port is not a number from 0 to 65535"))?,
            );
        } else {
            cursor.rewind(mark);
        }
        let params = parse_header_params(source, cursor)?;
        Ok(Via {
            protocol,
            transport: Transport::from_token(transport),
            host,
            port,
            params,
        })
    }

    /// A Via we send: `SIP/2.0/<transport> host:port;branch=...;rport`.
    pub fn new(transport: Transport, host: Host, port: u16, branch: &str) -> Self {
        let mut params = Params::new();
        params.set("branch", Some(branch));
        params.set("rport", None);
        Via {
            protocol: ByteString::from_static("SIP/2.0"),
            transport,
            host,
            port: Some(port),
            params,
        }
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }

    /// `true` when the branch starts with the RFC 3261 magic cookie and has
    /// something after it (RFC 4475 §3.2.1: a bare cookie identifies nothing).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.params.get("received").flatten()
    }

    /// `rport`: `None` when absent, `Some(None)` when present without a
    /// value (a request asking for it), `Some(Some(port))` when filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|value| value.and_then(|v| v.parse().ok()))
    }

    /// The sent-by as `host[:port]`.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.to_string(),
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} {}",
            self.protocol,
            self.transport.as_str(),
            self.host
        )?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Via>, Syntax> {
        Via::parse_list(&ByteString::from(text))
    }

    #[test]
    fn plain_via() {
        let vias = parse("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport").unwrap();
        assert_eq!(vias.len(), 1);
        let via = &vias[0];
        assert_eq!(via.transport, Transport::Udp);
        assert_eq!(via.host, Host::V4("192.0.2.1".parse().unwrap()));
        assert_eq!(via.port, Some(5060));
        assert_eq!(via.branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(via.rport(), Some(None));
        assert!(via.has_rfc3261_branch());
        assert_eq!(
            via.to_string(),
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport"
        );
    }

    #[test]
    fn folded_and_spaced_via_list() {
        let text = "SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239";
        let vias = parse(text).unwrap();
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[0].transport, Transport::Tcp);
        assert_eq!(vias[0].branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(vias[1].host, Host::V4("192.168.255.111".parse().unwrap()));
        assert_eq!(vias[1].branch(), Some("z9hG4bK30239"));
    }

    #[test]
    fn ipv6_sent_by_and_received() {
        let vias =
            parse("SIP/2.0/UDP [2001:db8::9:1]:5070;received=2001:db8::9:255;branch=z9hG4bKas3")
                .unwrap();
        assert_eq!(vias[0].host, Host::V6("2001:db8::9:1".parse().unwrap()));
        assert_eq!(vias[0].port, Some(5070));
        assert_eq!(vias[0].received(), Some("2001:db8::9:255"));
    }

    #[test]
    fn unknown_transport_and_empty_elements() {
        assert_eq!(
            parse("SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en").unwrap()[0].transport,
            Transport::Other("UNKNOWN".into())
        );
        assert!(parse("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        assert!(parse("SIP/2.0/UDP").is_err());
        assert!(!parse("SIP/2.0/UDP h;branch=z9hG4bK").unwrap()[0].has_rfc3261_branch());
    }
}
