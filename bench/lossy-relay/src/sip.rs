//! Just enough SIP and SDP to relay a call: find the Call-ID, and rewrite
//! the addresses a peer would otherwise use to reach the other side
//! directly (top Via's `rport`, Contact, SDP `c=`/`m=`), fixing
//! Content-Length. Anything it cannot read goes through unchanged.

use std::net::{IpAddr, SocketAddr};

/// What to change in one message.
pub struct Rewrite<'a> {
    /// Add `;rport` to the top Via of a request that has none, so that
    /// responses come back to the socket that sent it (RFC 3581).
    pub add_rport: bool,
    /// Put this address in every Contact URI.
    pub contact: Option<SocketAddr>,
    /// Called with each SDP media line's index and address; returns the
    /// address to put instead (`None`: leave it).
    pub media: &'a mut dyn FnMut(usize, SocketAddr) -> Option<SocketAddr>,
}

/// A message's start line and Call-ID, and how the call goes on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The Call-ID, if any.
    pub call_id: Option<String>,
    /// A BYE or CANCEL, or a final failure to an INVITE: the call's media
    /// may be let go.
    pub ends_call: bool,
}

/// Reads what [`Summary`] says of `datagram`.
pub fn summary(datagram: &[u8]) -> Summary {
    let Some((head, _)) = split(datagram) else {
        return Summary::default();
    };
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or_default();
    let mut call_id = None;
    let mut cseq_method = "";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i") {
            call_id = Some(value.trim().to_string());
        } else if name.eq_ignore_ascii_case("cseq") {
            cseq_method = value.split_whitespace().nth(1).unwrap_or_default();
        }
    }
    let ends_call = match start.strip_prefix("SIP/2.0 ") {
        Some(status) => {
            let code: u16 = status.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            cseq_method == "INVITE" && code >= 300
        }
        None => start.starts_with("BYE ") || start.starts_with("CANCEL "),
    };
    Summary { call_id, ends_call }
}

/// `datagram` with `rules` applied; `None` when it is not a SIP message
/// this module can read (then it is relayed as it is).
pub fn rewrite(datagram: &[u8], rules: &mut Rewrite<'_>) -> Option<Vec<u8>> {
    let (head, body) = split(datagram)?;
    let request = !head.starts_with("SIP/");
    let mut out_lines: Vec<String> = Vec::new();
    let mut via_done = false;
    let mut length_at = None;
    let mut sdp = false;
    for (index, line) in head.split("\r\n").enumerate() {
        let Some((name, value)) = line.split_once(':').filter(|_| index > 0) else {
            out_lines.push(line.to_string());
            continue;
        };
        let key = name.trim().to_ascii_lowercase();
        let value = match key.as_str() {
            "via" | "v" if request && rules.add_rport && !via_done => {
                via_done = true;
                Some(with_rport(value))
            }
            "via" | "v" => {
                via_done = true;
                None
            }
            "contact" | "m" => rules.contact.map(|to| contact(value, to)),
            "content-length" | "l" => {
                length_at = Some(out_lines.len());
                None
            }
            "content-type" | "c" => {
                sdp |= value
                    .trim()
                    .to_ascii_lowercase()
                    .starts_with("application/sdp");
                None
            }
            _ => None,
        };
        out_lines.push(match value {
            Some(value) => format!("{name}:{value}"),
            None => line.to_string(),
        });
    }
    let body = match (sdp, std::str::from_utf8(body)) {
        (true, Ok(text)) => rewrite_sdp(text, rules.media).into_bytes(),
        _ => body.to_vec(),
    };
    if let Some(at) = length_at {
        let name = out_lines[at]
            .split(':')
            .next()
            .unwrap_or("Content-Length")
            .to_string();
        out_lines[at] = format!("{name}: {}", body.len());
    }
    let mut out = out_lines.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&body);
    Some(out)
}

/// The head (start line and headers, as text) and the body.
fn split(datagram: &[u8]) -> Option<(&str, &[u8])> {
    let end = datagram.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&datagram[..end]).ok()?;
    Some((head, &datagram[end + 4..]))
}

/// A Via value with `;rport` on its first entry, unless it has one.
fn with_rport(value: &str) -> String {
    let first_end = value.find(',').unwrap_or(value.len());
    let first = &value[..first_end];
    let has_rport = first
        .split(';')
        .skip(1)
        .any(|p| p.trim().split('=').next() == Some("rport"));
    if has_rport {
        return value.to_string();
    }
    format!("{};rport{}", first.trim_end(), &value[first_end..])
}

/// A Contact value with the host and port of each SIP URI replaced by `to`.
fn contact(value: &str, to: SocketAddr) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let mut rest = value;
    while let Some(at) = find_scheme(rest) {
        let (before, uri) = rest.split_at(at);
        out.push_str(before);
        let secure = uri
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
        let scheme_len = if secure { 5 } else { 4 };
        out.push_str(&uri[..scheme_len]);
        let after = &uri[scheme_len..];
        let end = after.find([';', '>', ',', '?', ' ']).unwrap_or(after.len());
        let (userhost, tail) = after.split_at(end);
        if let Some(user_end) = userhost.rfind('@') {
            out.push_str(&userhost[..=user_end]);
        }
        out.push_str(&to.to_string());
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn find_scheme(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    match (lower.find("sip:"), lower.find("sips:")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The SDP with each media line's address replaced as `map` says: its
/// port in `m=`, and the address of every `c=` line (all the relay's
/// sockets share one address).
fn rewrite_sdp(text: &str, map: &mut dyn FnMut(usize, SocketAddr) -> Option<SocketAddr>) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let connection = |line: &str| -> Option<IpAddr> {
        line.trim_end()
            .strip_prefix("c=")?
            .split_whitespace()
            .nth(2)?
            .parse()
            .ok()
    };
    let session = lines
        .iter()
        .take_while(|l| !l.starts_with("m="))
        .find_map(|l| connection(l));
    let mut relay_ip: Option<IpAddr> = None;
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let mut media = 0;
    let mut index = 0;
    while index < lines.len() {
        if !lines[index].starts_with("m=") {
            index += 1;
            continue;
        }
        let section_end = (index + 1..lines.len())
            .find(|&i| lines[i].starts_with("m="))
            .unwrap_or(lines.len());
        let own = lines[index + 1..section_end]
            .iter()
            .find_map(|l| connection(l));
        let mut fields: Vec<&str> = lines[index].trim_end().split(' ').collect();
        let port = fields.get(1).and_then(|p| p.parse::<u16>().ok());
        if let (Some(port), Some(ip)) = (port.filter(|p| *p != 0), own.or(session))
            && let Some(to) = map(media, SocketAddr::new(ip, port))
        {
            let port_text = to.port().to_string();
            fields[1] = &port_text;
            let ending = &lines[index][lines[index].trim_end().len()..];
            out[index] = format!("{}{ending}", fields.join(" "));
            relay_ip = Some(to.ip());
        }
        media += 1;
        index = section_end;
    }
    if let Some(ip) = relay_ip {
        let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
        for (line, original) in out.iter_mut().zip(&lines) {
            if connection(original).is_some() {
                let ending = &original[original.trim_end().len()..];
                *line = format!("c=IN {family} {ip}{ending}");
            }
        }
    }
    out.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:+15550100@127.0.0.1:5060 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\n\
        From: \"Patient\" <sip:+13125550142@127.0.0.1:5061>;tag=1\r\n\
        To: <sip:+15550100@127.0.0.1:5060>\r\n\
        Call-ID: 1-100@127.0.0.1\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:patient@127.0.0.1:5061>\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 129\r\n\r\n\
        v=0\r\no=patient 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

    #[test]
    fn a_request_gets_rport_its_contact_and_media_rewritten_and_its_length_fixed() {
        let relay: SocketAddr = "127.0.0.1:31000".parse().unwrap();
        let mut seen = Vec::new();
        let mut media = |index: usize, address: SocketAddr| {
            seen.push((index, address));
            Some(relay)
        };
        let mut rules = Rewrite {
            add_rport: true,
            contact: Some("127.0.0.1:45000".parse().unwrap()),
            media: &mut media,
        };
        let out = String::from_utf8(rewrite(INVITE.as_bytes(), &mut rules).unwrap()).unwrap();
        assert_eq!(seen, [(0, "127.0.0.1:40000".parse().unwrap())]);
        assert!(
            out.contains("Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport\r\n"),
            "{out}"
        );
        assert!(
            out.contains("Contact: <sip:patient@127.0.0.1:45000>\r\n"),
            "{out}"
        );
        assert!(out.contains("m=audio 31000 RTP/AVP 0 101\r\n"), "{out}");
        assert!(out.contains("c=IN IP4 127.0.0.1\r\n"));
        assert!(
            out.contains("From: \"Patient\" <sip:+13125550142@127.0.0.1:5061>;tag=1"),
            "From untouched"
        );
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(
            head.ends_with(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        assert_eq!(
            summary(out.as_bytes()),
            Summary {
                call_id: Some("1-100@127.0.0.1".into()),
                ends_call: false
            }
        );
    }

    #[test]
    fn rport_is_added_once_and_only_to_requests() {
        assert_eq!(
            with_rport(" SIP/2.0/UDP h;branch=x;rport"),
            " SIP/2.0/UDP h;branch=x;rport"
        );
        assert_eq!(
            with_rport(" SIP/2.0/UDP h;branch=x, SIP/2.0/UDP g"),
            " SIP/2.0/UDP h;branch=x;rport, SIP/2.0/UDP g"
        );
        let response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=x\r\nContent-Length: 0\r\n\r\n";
        let mut none = |_: usize, _: SocketAddr| None;
        let mut rules = Rewrite {
            add_rport: true,
            contact: None,
            media: &mut none,
        };
        assert_eq!(
            rewrite(response.as_bytes(), &mut rules).unwrap(),
            response.as_bytes()
        );
    }

    #[test]
    fn contacts_of_every_shape() {
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(
            contact(" <sip:1003@10.0.0.1:5062;transport=udp>;expires=60", to),
            " <sip:1003@127.0.0.1:9;transport=udp>;expires=60"
        );
        assert_eq!(contact(" sip:10.0.0.1", to), " sip:127.0.0.1:9");
        assert_eq!(
            contact(" <sips:a@h>, <sip:b@g:1>", to),
            " <sips:a@127.0.0.1:9>, <sip:b@127.0.0.1:9>"
        );
        assert_eq!(contact(" *", to), " *");
    }

    #[test]
    fn ends_of_calls() {
        let bye = "BYE sip:a@b SIP/2.0\r\nCall-ID: x\r\nCSeq: 2 BYE\r\n\r\n";
        assert!(summary(bye.as_bytes()).ends_call);
        let busy = "SIP/2.0 486 Busy Here\r\ni: x\r\nCSeq: 1 INVITE\r\n\r\n";
        assert_eq!(summary(busy.as_bytes()).call_id.as_deref(), Some("x"));
        assert!(summary(busy.as_bytes()).ends_call);
        let ok = "SIP/2.0 200 OK\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n";
        assert!(!summary(ok.as_bytes()).ends_call);
        assert_eq!(summary(b"\r\n\r\n"), Summary::default());
        assert_eq!(summary(&[0xff, 0, 1]), Summary::default());
    }

    #[test]
    fn sdp_with_a_rejected_stream_and_media_level_connections() {
        let sdp = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\nm=video 0 RTP/AVP 31\r\n";
        let mut seen = Vec::new();
        let mut map = |index: usize, address: SocketAddr| {
            seen.push((index, address));
            Some("127.0.0.1:7000".parse().unwrap())
        };
        let out = rewrite_sdp(sdp, &mut map);
        assert_eq!(seen, [(0, "10.0.0.2:4000".parse().unwrap())]);
        assert_eq!(
            out,
            "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 7000 RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\nm=video 0 RTP/AVP 31\r\n"
        );
    }
}
