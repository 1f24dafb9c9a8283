//! Our own SDP subset for audio calls: parse and print (RFC 8866, which
//! obsoletes RFC 4566) and the RFC 3264 offer/answer model ([`create_answer`], [`create_offer`], [`accept_answer`]).
//!
//! The parser is lenient where peers are sloppy (LF-only line ends, a
//! missing `s=` or `t=`, unknown line types and attributes are kept) and
//! strict where a mistake would misroute media (`m=` and `c=` syntax, port
//! numbers, payload type numbers). Everything it does not interpret is kept
//! as text so that printing round-trips the parts we do not act on.
//! `a=crypto` lines (RFC 4568 SDES) are read by [`crypto`]; their keys never
//! appear in `Debug` output.

pub mod crypto;
mod negotiate;

use std::fmt;
use std::net::IpAddr;

pub use crypto::{CryptoAttribute, CryptoDeclined, SrtpParameters};
pub use negotiate::{
    Answer, LocalMedia, NegotiatedMedia, PayloadMap, accept_answer, create_answer, create_offer,
};

use crate::error::SdpError;

/// A parsed session description (RFC 8866 §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`: originator and session identifier (RFC 8866 §5.2).
    pub origin: Origin,
    /// `s=`: session name; `-` when there is none.
    pub session_name: String,
    /// Session-level `c=` (RFC 8866 §5.7), used by media sections without their own.
    pub connection: Option<Connection>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// Other session-level lines (`i u e p b t r z k` and unknown), in order.
    pub other_lines: Vec<Line>,
    /// The `m=` sections, in order (RFC 3264 §6 requires answers to keep it).
    pub media: Vec<MediaDescription>,
}

/// An `o=` line (RFC 8866 §5.2). Numbers are kept as text: they only need
/// to be compared and echoed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// `<username>`, `-` when none.
    pub username: String,
    /// `<sess-id>`.
    pub session_id: String,
    /// `<sess-version>`; RFC 3264 §8 requires it to grow with each new offer.
    pub session_version: String,
    /// `<nettype> <addrtype> <unicast-address>`.
    pub address: Connection,
}

/// A `c=` line, or the address part of `o=` (RFC 8866 §5.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// `IN` in practice.
    pub network_type: String,
    /// `IP4` or `IP6`.
    pub address_type: String,
    /// The address as written (a multicast TTL suffix is kept).
    pub address: String,
}

/// One `a=` line: `a=name` or `a=name:value` (RFC 8866 §5.13). `Debug`
/// hides the key material of `a=crypto`.
#[derive(Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute name, e.g. `rtpmap`.
    pub name: String,
    /// The text after the first `:`, if any.
    pub value: Option<String>,
}

/// A line we keep but do not interpret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The line type letter (`t`, `b`, ...).
    pub kind: char,
    /// The text after `=`.
    pub value: String,
}

/// An `m=` section (RFC 8866 §5.14) with its lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, ...
    pub media: String,
    /// The transport port; 0 rejects or disables the stream (RFC 3264 §6).
    pub port: u16,
    /// The `/<number of ports>` suffix, if present.
    pub port_count: Option<u16>,
    /// The transport protocol, e.g. `RTP/AVP`.
    pub protocol: Protocol,
    /// The format list (payload type numbers for RTP), in preference order.
    pub formats: Vec<String>,
    /// Media-level `c=`.
    pub connection: Option<Connection>,
    /// Media-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// Other media-level lines (`i b k` and unknown), in order.
    pub other_lines: Vec<Line>,
}

/// The `<proto>` field of `m=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `RTP/AVP` (RFC 3551).
    RtpAvp,
    /// `RTP/SAVP` (RFC 3711 with SDES keys, RFC 4568).
    RtpSavp,
    /// Anything else, as written.
    Other(String),
}

/// Stream direction attribute (RFC 3264 §5.1, §6.1; RFC 8866 §6.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv`, the default.
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

/// A parsed `a=rtpmap:<pt> <name>/<rate>[/<channels>]` (RFC 8866 §6.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpMap<'a> {
    /// The payload type number.
    pub payload_type: u8,
    /// The encoding name, e.g. `PCMU` or `telephone-event`.
    pub encoding_name: &'a str,
    /// The RTP clock rate.
    pub clock_rate: u32,
    /// The channel count, if given.
    pub channels: Option<u16>,
}

impl Direction {
    /// The attribute name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Parses a direction attribute name.
    pub fn from_attribute(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The same stream seen from the other end: the direction an answer
    /// must carry for an offered direction (RFC 3264 §6.1: sendonly ↔
    /// recvonly, sendrecv and inactive unchanged).
    pub const fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    /// Whether this side sends media.
    pub const fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side receives media.
    pub const fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// Builds a direction from its two capabilities.
    pub const fn from_capabilities(sends: bool, receives: bool) -> Direction {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// What both directions allow (used to apply our own limits to an answer).
    pub const fn intersect(self, other: Direction) -> Direction {
        Direction::from_capabilities(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Protocol {
    fn parse(text: &str) -> Protocol {
        match text {
            "RTP/AVP" => Protocol::RtpAvp,
            "RTP/SAVP" => Protocol::RtpSavp,
            other => Protocol::Other(other.to_owned()),
        }
    }

    /// The protocol as written in `m=`.
    pub fn as_str(&self) -> &str {
        match self {
            Protocol::RtpAvp => "RTP/AVP",
            Protocol::RtpSavp => "RTP/SAVP",
            Protocol::Other(text) => text,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Connection {
    /// An `IN IP4`/`IN IP6` connection for an address.
    pub fn for_ip(ip: IpAddr) -> Connection {
        Connection {
            network_type: "IN".to_owned(),
            address_type: if ip.is_ipv4() { "IP4" } else { "IP6" }.to_owned(),
            address: ip.to_string(),
        }
    }

    /// The unicast IP address, if the address is a literal (a TTL or
    /// address-count suffix is ignored; host names give `None`).
    pub fn ip(&self) -> Option<IpAddr> {
        let literal = self.address.split('/').next().unwrap_or_default();
        literal.parse().ok()
    }

    /// `c=IN IP4 0.0.0.0`: the RFC 2543 way to put a call on hold, still
    /// sent by many phones (RFC 3264 §8.4).
    pub fn is_hold_address(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }

    fn parse(value: &str) -> Option<Connection> {
        let mut fields = value.split_ascii_whitespace();
        let connection = Connection {
            network_type: fields.next()?.to_owned(),
            address_type: fields.next()?.to_owned(),
            address: fields.next()?.to_owned(),
        };
        fields.next().is_none().then_some(connection)
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.network_type, self.address_type, self.address
        )
    }
}

impl Attribute {
    /// An attribute with a value.
    pub fn new(name: &str, value: impl Into<String>) -> Attribute {
        Attribute {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }

    /// A property attribute (no value), like `a=sendrecv`.
    pub fn flag(name: &str) -> Attribute {
        Attribute {
            name: name.to_owned(),
            value: None,
        }
    }
}

impl fmt::Debug for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = match &self.value {
            Some(value) if self.name == "crypto" => Some(crypto::redacted(value)),
            other => other.clone(),
        };
        f.debug_struct("Attribute")
            .field("name", &self.name)
            .field("value", &value)
            .finish()
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}:{}", self.name, value),
            None => f.write_str(&self.name),
        }
    }
}

impl MediaDescription {
    /// The formats that are RTP payload type numbers (0–127), in order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|format| format.parse::<u8>().ok().filter(|pt| *pt < 128))
    }

    /// Values of the attributes called `name`, in order.
    pub fn attribute_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attributes
            .iter()
            .filter(move |attribute| attribute.name == name)
            .map(|attribute| attribute.value.as_deref().unwrap_or(""))
    }

    /// The `a=rtpmap` for a payload type, if present and well formed.
    pub fn rtpmap(&self, payload_type: u8) -> Option<RtpMap<'_>> {
        self.attribute_values("rtpmap")
            .filter_map(parse_rtpmap)
            .find(|map| map.payload_type == payload_type)
    }

    /// The `a=fmtp` parameters for a payload type (RFC 8866 §6.15).
    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.attribute_values("fmtp").find_map(|value| {
            let (pt, parameters) = value.split_once(' ')?;
            (pt.parse::<u8>().ok()? == payload_type).then(|| parameters.trim())
        })
    }

    /// `a=ptime` in milliseconds (RFC 8866 §6.4).
    pub fn ptime(&self) -> Option<u32> {
        self.attribute_values("ptime")
            .find_map(|value| value.trim().parse().ok())
    }

    /// The media-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        self.attributes
            .iter()
            .find_map(|attribute| Direction::from_attribute(&attribute.name))
    }

    /// Raw `a=crypto` values (RFC 4568); see [`crypto::CryptoAttribute::parse`].
    pub fn crypto(&self) -> impl Iterator<Item = &str> + '_ {
        self.attribute_values("crypto")
    }
}

fn parse_rtpmap(value: &str) -> Option<RtpMap<'_>> {
    let (pt, encoding) = value.trim().split_once(' ')?;
    let mut parts = encoding.trim().split('/');
    let encoding_name = parts.next()?;
    let clock_rate = parts.next()?.parse().ok()?;
    let channels = match parts.next() {
        Some(text) => Some(text.parse().ok()?),
        None => None,
    };
    Some(RtpMap {
        payload_type: pt.parse().ok().filter(|pt| *pt < 128)?,
        encoding_name,
        clock_rate,
        channels,
    })
}

impl SessionDescription {
    /// Parses a session description from a SIP body.
    pub fn parse(text: &[u8]) -> Result<SessionDescription, SdpError> {
        let text = std::str::from_utf8(text).map_err(|_| SdpError::Malformed {
            line: 0,
            reason: "not UTF-8",
        })?;
        let mut lines = text
            .split('\n')
            .map(|line| line.strip_suffix('\r').unwrap_or(line))
            .enumerate()
            .map(|(index, line)| (index + 1, line))
            .filter(|(_, line)| !line.trim().is_empty());

        match lines.next() {
            Some((_, "v=0")) => {}
            Some((line, _)) => {
                return Err(SdpError::Malformed {
                    line,
                    reason: "first line must be v=0",
                });
            }
            None => {
                return Err(SdpError::Malformed {
                    line: 0,
                    reason: "empty session description",
                });
            }
        }

        let mut origin = None;
        let mut session_name = None;
        let mut connection = None;
        let mut attributes = Vec::new();
        let mut other_lines = Vec::new();
        let mut media: Vec<MediaDescription> = Vec::new();

        for (number, line) in lines {
            let malformed = |reason| SdpError::Malformed {
                line: number,
                reason,
            };
            let bytes = line.as_bytes();
            if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_alphabetic() {
                return Err(malformed("expected <type>=<value>"));
            }
            let kind = char::from(bytes[0]);
            let value = &line[2..];
            match (kind, media.last_mut()) {
                ('m', _) => {
                    media.push(parse_media_line(value).ok_or_else(|| malformed("bad m= line"))?)
                }
                ('c', None) => {
                    connection =
                        Some(Connection::parse(value).ok_or_else(|| malformed("bad c= line"))?)
                }
                ('c', Some(section)) => {
                    section.connection =
                        Some(Connection::parse(value).ok_or_else(|| malformed("bad c= line"))?)
                }
                ('a', None) => attributes.push(parse_attribute(value)),
                ('a', Some(section)) => section.attributes.push(parse_attribute(value)),
                ('o', None) => {
                    origin = Some(parse_origin(value).ok_or_else(|| malformed("bad o= line"))?)
                }
                ('s', None) => session_name = Some(value.to_owned()),
                ('v', _) => return Err(malformed("repeated v= line")),
                (kind, None) => other_lines.push(Line {
                    kind,
                    value: value.to_owned(),
                }),
                (kind, Some(section)) => section.other_lines.push(Line {
                    kind,
                    value: value.to_owned(),
                }),
            }
        }

        Ok(SessionDescription {
            origin: origin.ok_or(SdpError::Malformed {
                line: 0,
                reason: "missing o= line",
            })?,
            session_name: session_name.unwrap_or_else(|| "-".to_owned()),
            connection,
            attributes,
            other_lines,
            media,
        })
    }

    /// The session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        self.attributes
            .iter()
            .find_map(|attribute| Direction::from_attribute(&attribute.name))
    }

    /// The direction in force for a media section (media level, then
    /// session level, then sendrecv; RFC 8866 §6.7).
    pub fn effective_direction(&self, media: &MediaDescription) -> Direction {
        media
            .direction()
            .or(self.direction())
            .unwrap_or(Direction::SendRecv)
    }

    /// The connection in force for a media section (media level, then session level).
    pub fn effective_connection<'a>(
        &'a self,
        media: &'a MediaDescription,
    ) -> Option<&'a Connection> {
        media.connection.as_ref().or(self.connection.as_ref())
    }
}

fn parse_origin(value: &str) -> Option<Origin> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let [
        username,
        session_id,
        session_version,
        network_type,
        address_type,
        address,
    ] = fields[..]
    else {
        return None;
    };
    Some(Origin {
        username: username.to_owned(),
        session_id: session_id.to_owned(),
        session_version: session_version.to_owned(),
        address: Connection {
            network_type: network_type.to_owned(),
            address_type: address_type.to_owned(),
            address: address.to_owned(),
        },
    })
}

fn parse_media_line(value: &str) -> Option<MediaDescription> {
    let mut fields = value.split_ascii_whitespace();
    let media = fields.next()?.to_owned();
    let port_field = fields.next()?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((port, count)) => (port.parse().ok()?, Some(count.parse().ok()?)),
        None => (port_field.parse().ok()?, None),
    };
    let protocol = Protocol::parse(fields.next()?);
    let formats: Vec<String> = fields.map(str::to_owned).collect();
    if formats.is_empty() {
        return None;
    }
    Some(MediaDescription {
        media,
        port,
        port_count,
        protocol,
        formats,
        connection: None,
        attributes: Vec::new(),
        other_lines: Vec::new(),
    })
}

fn parse_attribute(value: &str) -> Attribute {
    match value.split_once(':') {
        Some((name, value)) => Attribute::new(name, value),
        None => Attribute::flag(value),
    }
}

/// Session-level line order of RFC 8866 §5: `i u e p` come before `c`,
/// `b t r z k` after it.
fn session_rank(kind: char) -> u8 {
    match kind {
        'i' | 'u' | 'e' | 'p' => 0,
        _ => 1,
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = &self.origin;
        write!(
            f,
            "v=0\r\no={} {} {} {}\r\ns={}\r\n",
            origin.username,
            origin.session_id,
            origin.session_version,
            origin.address,
            self.session_name
        )?;
        for line in self
            .other_lines
            .iter()
            .filter(|line| session_rank(line.kind) == 0)
        {
            write!(f, "{}={}\r\n", line.kind, line.value)?;
        }
        if let Some(connection) = &self.connection {
            write!(f, "c={connection}\r\n")?;
        }
        let mut has_timing = false;
        for line in self
            .other_lines
            .iter()
            .filter(|line| session_rank(line.kind) == 1)
        {
            has_timing |= line.kind == 't';
            write!(f, "{}={}\r\n", line.kind, line.value)?;
        }
        if !has_timing {
            f.write_str("t=0 0\r\n")?;
        }
        for attribute in &self.attributes {
            write!(f, "a={attribute}\r\n")?;
        }
        for media in &self.media {
            write!(f, "{media}")?;
        }
        Ok(())
    }
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.protocol)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        f.write_str("\r\n")?;
        for line in self.other_lines.iter().filter(|line| line.kind == 'i') {
            write!(f, "i={}\r\n", line.value)?;
        }
        if let Some(connection) = &self.connection {
            write!(f, "c={connection}\r\n")?;
        }
        for line in self.other_lines.iter().filter(|line| line.kind != 'i') {
            write!(f, "{}={}\r\n", line.kind, line.value)?;
        }
        for attribute in &self.attributes {
            write!(f, "a={attribute}\r\n")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offer of `shared/peers/sipp/uac-call.xml`, with SIPp's fields filled in.
    pub(crate) const SIPP_OFFER: &str = "v=0\r\n\
o=caller 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

    #[test]
    fn parses_the_sipp_offer() {
        let sdp = SessionDescription::parse(SIPP_OFFER.as_bytes()).unwrap();
        assert_eq!(sdp.origin.username, "caller");
        assert_eq!(sdp.origin.session_version, "2353687637");
        assert_eq!(
            sdp.connection.as_ref().unwrap().ip(),
            Some("127.0.0.1".parse().unwrap())
        );
        let audio = &sdp.media[0];
        assert_eq!(audio.media, "audio");
        assert_eq!(audio.port, 6000);
        assert_eq!(audio.protocol, Protocol::RtpAvp);
        assert_eq!(audio.payload_types().collect::<Vec<_>>(), [0, 101]);
        let map = audio.rtpmap(101).unwrap();
        assert_eq!(
            (map.encoding_name, map.clock_rate),
            ("telephone-event", 8000)
        );
        assert_eq!(audio.fmtp(101), Some("0-16"));
        assert_eq!(audio.ptime(), Some(20));
        assert_eq!(audio.direction(), Some(Direction::SendRecv));
    }

    #[test]
    fn printing_round_trips() {
        let sdp = SessionDescription::parse(SIPP_OFFER.as_bytes()).unwrap();
        assert_eq!(sdp.to_string(), SIPP_OFFER);
        let again = SessionDescription::parse(sdp.to_string().as_bytes()).unwrap();
        assert_eq!(again, sdp);
    }

    #[test]
    fn accepts_lf_line_ends_and_keeps_unknown_lines() {
        let text = "v=0\no=- 1 1 IN IP6 ::1\ns=call\ni=info\nb=AS:64\nt=0 0\na=tool:x\n\
m=audio 49170/2 RTP/SAVP 8\ni=voice\nc=IN IP6 2001:db8::1\nb=AS:80\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\n\
a=recvonly\n";
        let sdp = SessionDescription::parse(text.as_bytes()).unwrap();
        assert_eq!(sdp.other_lines.len(), 3);
        let audio = &sdp.media[0];
        assert_eq!(audio.port_count, Some(2));
        assert_eq!(audio.protocol, Protocol::RtpSavp);
        assert_eq!(
            audio.connection.as_ref().unwrap().ip(),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(audio.crypto().count(), 1);
        assert!(
            audio
                .crypto()
                .next()
                .unwrap()
                .starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:")
        );
        assert_eq!(sdp.effective_direction(audio), Direction::RecvOnly);
        let printed = sdp.to_string();
        assert!(
            printed.contains("i=info\r\nb=AS:64\r\nt=0 0\r\na=tool:x\r\n"),
            "{printed}"
        );
        assert!(printed.contains(
            "m=audio 49170/2 RTP/SAVP 8\r\ni=voice\r\nc=IN IP6 2001:db8::1\r\nb=AS:80\r\n"
        ));
        assert_eq!(SessionDescription::parse(printed.as_bytes()).unwrap(), sdp);
    }

    #[test]
    fn debug_output_hides_crypto_keys() {
        let text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\n";
        let sdp = SessionDescription::parse(text.as_bytes()).unwrap();
        let debug = format!("{sdp:?}");
        assert!(!debug.contains("PS1u"), "{debug}");
        assert!(debug.contains("inline:<redacted>"), "{debug}");
        assert!(
            sdp.to_string().contains("inline:PS1u"),
            "the wire form keeps it"
        );
    }

    #[test]
    fn session_level_direction_and_hold_address() {
        let text = "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=sendonly\r\nm=audio 5004 RTP/AVP 0\r\n";
        let sdp = SessionDescription::parse(text.as_bytes()).unwrap();
        let audio = &sdp.media[0];
        assert_eq!(sdp.effective_direction(audio), Direction::SendOnly);
        assert!(sdp.effective_connection(audio).unwrap().is_hold_address());
    }

    #[test]
    fn rejects_malformed_descriptions() {
        let cases: [(&str, usize); 7] = [
            ("", 0),
            ("o=- 1 1 IN IP4 1.2.3.4\r\n", 1),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio port RTP/AVP 0\r\n",
                4,
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 70000 RTP/AVP 0\r\n",
                4,
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 5000 RTP/AVP\r\n",
                4,
            ),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4\r\n", 4),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nthis is not sdp\r\n", 3),
        ];
        for (text, line) in cases {
            match SessionDescription::parse(text.as_bytes()) {
                Err(SdpError::Malformed { line: got, .. }) => assert_eq!(got, line, "{text:?}"),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
        assert!(matches!(
            SessionDescription::parse(b"v=0\r\ns=-\r\n"),
            Err(SdpError::Malformed {
                reason: "missing o= line",
                ..
            })
        ));
        assert!(SessionDescription::parse(&[b'v', b'=', b'0', b'\n', 0xFF]).is_err());
    }

    #[test]
    fn direction_algebra() {
        use Direction::*;
        assert_eq!(SendOnly.reversed(), RecvOnly);
        assert_eq!(RecvOnly.reversed(), SendOnly);
        assert_eq!(SendRecv.reversed(), SendRecv);
        assert_eq!(Inactive.reversed(), Inactive);
        assert_eq!(SendRecv.intersect(RecvOnly), RecvOnly);
        assert_eq!(SendOnly.intersect(RecvOnly), Inactive);
        for direction in [SendRecv, SendOnly, RecvOnly, Inactive] {
            assert_eq!(
                Direction::from_attribute(direction.as_str()),
                Some(direction)
            );
        }
    }

    #[test]
    fn rtpmap_parsing_edge_cases() {
        assert_eq!(parse_rtpmap("8 PCMA/8000/1").unwrap().channels, Some(1));
        assert!(parse_rtpmap("200 PCMA/8000").is_none());
        assert!(parse_rtpmap("8 PCMA").is_none());
        assert!(parse_rtpmap("8 PCMA/fast").is_none());
    }
}
