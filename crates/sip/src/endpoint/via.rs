//! Where the responses to a request go (RFC 3261 §18.2.2), and the top
//! Via that says so (§18.2.1, RFC 3581 §4): for the requests the core
//! answers statelessly, the same rules the transaction layer applies to
//! the requests it keeps state for.

use std::net::SocketAddr;

use crate::message::validate::ValidRequest;
use crate::message::{HeaderName, Headers, Via};
use crate::peer::Peer;

/// Fills `received` and `rport` in the top Via (RFC 3261 §18.2.1, RFC 3581
/// §4) and returns where responses go (§18.2.2): the same rules the
/// transaction layer applies to the requests it keeps state for.
pub(super) fn stamp_received(request: &mut ValidRequest, source: Peer) -> Peer {
    let source_ip = source.address.ip();
    let wants_rport = request.via.rport().is_some();
    if wants_rport || request.via.host.ip() != Some(source_ip) {
        request
            .via
            .params
            .set("received", Some(&source_ip.to_string()));
        if wants_rport {
            request
                .via
                .params
                .set("rport", Some(&source.address.port().to_string()));
        }
        replace_top_via(&mut request.request.headers, &request.via);
    }
    if source.transport.is_reliable() || wants_rport {
        return source;
    }
    Peer {
        address: SocketAddr::new(source_ip, request.via.port.unwrap_or(5060)),
        ..source
    }
}

/// Replaces the first value of the first Via header by `top`, keeping the
/// other values of that header line.
fn replace_top_via(headers: &mut Headers, top: &Via) {
    let Some(first) = headers.remove_first(&HeaderName::Via) else {
        return;
    };
    let mut value = top.to_string();
    // Most Via lines hold one value: only a comma means more to keep.
    if !first.value.contains(&b',') {
        headers.push_front(HeaderName::Via, value);
        return;
    }
    let rest = bytestring::ByteString::try_from(first.value)
        .ok()
        .and_then(|text| Via::parse_list(&text).ok())
        .unwrap_or_default();
    for via in rest.iter().skip(1) {
        value.push_str(", ");
        value.push_str(&via.to_string());
    }
    headers.push_front(HeaderName::Via, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    use crate::message::validate::{self, Policy};
    use crate::message::{Frame, Limits, Message, parse_datagram};

    fn options(vias: &str) -> ValidRequest {
        let text = format!(
            "OPTIONS sip:frontdesk@127.0.0.1 SIP/2.0\r\n{vias}\
             From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:frontdesk@127.0.0.1>\r\n\
             Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        let Ok(Frame::Message(Message::Request(request))) =
            parse_datagram(Bytes::from(text), &Limits::default())
        else {
            panic!("a request");
        };
        validate::request(request, &Policy::default()).expect("valid")
    }

    fn via_lines(request: &ValidRequest) -> Vec<String> {
        request
            .request
            .headers
            .all(&HeaderName::Via)
            .map(|h| String::from_utf8_lossy(&h.value).into_owned())
            .collect()
    }

    #[test]
    fn rport_sends_back_to_the_source_and_stamps_one_via() {
        let mut request = options("Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bKa;rport\r\n");
        let source = Peer::udp("127.0.0.1:40000".parse().unwrap());
        assert_eq!(stamp_received(&mut request, source), source);
        assert_eq!(
            via_lines(&request),
            ["SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bKa;rport=40000;received=127.0.0.1"]
        );
    }

    #[test]
    fn without_rport_responses_go_to_the_via_port_at_the_source_address() {
        let mut request = options(
            "Via: SIP/2.0/UDP host.example.com:5062;branch=z9hG4bKa, SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKb\r\n\
             Via: SIP/2.0/TCP 192.0.2.10;branch=z9hG4bKc\r\n",
        );
        let source = Peer::udp("127.0.0.1:40000".parse().unwrap());
        let destination = stamp_received(&mut request, source);
        assert_eq!(destination, Peer::udp("127.0.0.1:5062".parse().unwrap()));
        assert_eq!(
            via_lines(&request),
            [
                "SIP/2.0/UDP host.example.com:5062;branch=z9hG4bKa;received=127.0.0.1, \
                 SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKb",
                "SIP/2.0/TCP 192.0.2.10;branch=z9hG4bKc",
            ]
        );
    }

    #[test]
    fn a_via_from_the_source_itself_is_left_alone() {
        let mut request = options("Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKa\r\n");
        let source = Peer::udp("127.0.0.1:40000".parse().unwrap());
        assert_eq!(stamp_received(&mut request, source), source);
        assert_eq!(
            via_lines(&request),
            ["SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKa"]
        );
    }

    #[test]
    fn a_host_name_via_without_a_port_is_answered_at_5060_of_the_source_address() {
        // §18.2.2: the sent-by host is not resolved; `received` (the
        // source address) and the sent-by port, 5060 when absent.
        let mut request = options("Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw\r\n");
        let source = Peer::udp("127.0.0.1:40000".parse().unwrap());
        assert_eq!(
            stamp_received(&mut request, source),
            Peer::udp("127.0.0.1:5060".parse().unwrap())
        );
        assert_eq!(
            via_lines(&request),
            ["SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw;received=127.0.0.1"]
        );
    }
}
