//! Dialogs (RFC 3261 §12), sans-IO: identity, route set, remote target
//! and CSeq ordering, and the requests sent inside a dialog.
//!
//! A dialog also remembers the [`Peer`] its creating message came from:
//! in-dialog requests go back over that flow (the address a phone behind
//! NAT is reachable at), while their Request-URI is the remote target.

use bytestring::ByteString;

use crate::message::validate::{ValidRequest, ValidResponse};
use crate::message::{Contact, HeaderName, Method, NameAddr, Request, Uri};
use crate::peer::Peer;

/// Call-ID plus both tags (§12).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: ByteString,
    /// Our tag.
    pub local_tag: ByteString,
    /// The other side's tag.
    pub remote_tag: ByteString,
}

/// Why a dialog could not be created or a request in it is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// The dialog-creating message has no usable Contact (§12.1.1: 400).
    #[error("no usable Contact")]
    NoContact,
    /// The remote side gave no tag.
    #[error("the remote side gave no tag")]
    NoRemoteTag,
    /// A request with a lower CSeq than the last one (§12.2.2: 500).
    #[error("CSeq {got} is lower than {last}")]
    OutOfOrder {
        /// The CSeq of the request.
        got: u32,
        /// The highest CSeq seen so far.
        last: u32,
    },
    /// A header of the message does not parse.
    #[error(transparent)]
    Header(#[from] crate::message::HeaderError),
}

/// One dialog.
#[derive(Debug, Clone, PartialEq)]
pub struct Dialog {
    /// Its identity.
    pub id: DialogId,
    /// The CSeq of the last request we sent.
    pub local_seq: u32,
    /// The CSeq of the last request we received.
    pub remote_seq: Option<u32>,
    /// Our address (From of our requests, without tag).
    pub local_uri: NameAddr,
    /// Theirs (To of our requests, without tag).
    pub remote_uri: NameAddr,
    /// Where requests go (their Contact), the Request-URI of our requests.
    pub remote_target: Uri,
    /// The route set, in the order our requests carry it.
    pub route_set: Vec<NameAddr>,
    /// The flow the dialog came on: in-dialog requests go there.
    pub peer: Peer,
}

fn without_tag(address: &NameAddr) -> NameAddr {
    let mut address = address.clone();
    address.params.remove("tag");
    address
}

fn first_contact(contacts: Vec<Contact>) -> Option<Uri> {
    contacts
        .into_iter()
        .find_map(|c| c.address().map(|a| a.uri.clone()))
}

impl Dialog {
    /// The dialog a UAS creates by answering `request` with a 2xx or 1xx
    /// carrying `local_tag` (§12.1.1).
    pub fn uas(request: &ValidRequest, local_tag: &str, peer: Peer) -> Result<Self, DialogError> {
        let headers = &request.request.headers;
        let remote_tag = request.from.tag().ok_or(DialogError::NoRemoteTag)?;
        let remote_target = first_contact(headers.contacts()?).ok_or(DialogError::NoContact)?;
        Ok(Dialog {
            id: DialogId {
                call_id: request.call_id.clone(),
                local_tag: ByteString::from(local_tag),
                remote_tag: ByteString::from(remote_tag),
            },
            local_seq: 0,
            remote_seq: Some(request.cseq.seq),
            local_uri: without_tag(&request.to),
            remote_uri: without_tag(&request.from),
            remote_target,
            route_set: headers.record_routes()?,
            peer,
        })
    }

    /// The dialog a UAC gets from the response to its `request` (§12.1.2).
    pub fn uac(
        request: &Request,
        response: &ValidResponse,
        peer: Peer,
    ) -> Result<Self, DialogError> {
        let headers = &response.response.headers;
        let remote_tag = response.to.tag().ok_or(DialogError::NoRemoteTag)?;
        let local_tag = response.from.tag().unwrap_or_default();
        let remote_target = first_contact(headers.contacts()?).ok_or(DialogError::NoContact)?;
        let mut route_set = headers.record_routes()?;
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id: response.call_id.clone(),
                local_tag: ByteString::from(local_tag),
                remote_tag: ByteString::from(remote_tag),
            },
            local_seq: request.headers.cseq()?.seq,
            remote_seq: None,
            local_uri: without_tag(&response.from),
            remote_uri: without_tag(&response.to),
            remote_target,
            route_set,
            peer,
        })
    }

    /// Checks a request received in this dialog (§12.2.2): CSeq must not go
    /// backwards; a re-INVITE or UPDATE with a Contact refreshes the target.
    pub fn receive(&mut self, request: &ValidRequest) -> Result<(), DialogError> {
        let seq = request.cseq.seq;
        let method = &request.request.method;
        // ACK and CANCEL reuse the CSeq number of their INVITE.
        if !matches!(method, Method::Ack | Method::Cancel) {
            if let Some(last) = self.remote_seq
                && seq < last
            {
                return Err(DialogError::OutOfOrder { got: seq, last });
            }
            self.remote_seq = Some(seq);
        }
        if matches!(method, Method::Invite | Method::Update)
            && let Some(target) = first_contact(request.request.headers.contacts()?)
        {
            self.remote_target = target;
        }
        Ok(())
    }

    /// A new request in this dialog (§12.2.1.1), with the next CSeq. The
    /// transaction layer adds Via and Max-Forwards.
    pub fn request(&mut self, method: Method) -> Request {
        self.local_seq += 1;
        self.build(method, self.local_seq)
    }

    /// The ACK for a 2xx to our INVITE with CSeq `invite_seq` (§13.2.2.4).
    pub fn ack(&self, invite_seq: u32) -> Request {
        self.build(Method::Ack, invite_seq)
    }

    fn build(&self, method: Method, seq: u32) -> Request {
        let mut request = Request::new(method.clone(), self.remote_target.clone());
        let mut from = self.local_uri.clone();
        from.params.set("tag", Some(&self.id.local_tag));
        let mut to = self.remote_uri.clone();
        to.params.set("tag", Some(&self.id.remote_tag));
        request.headers.push(HeaderName::From, from);
        request.headers.push(HeaderName::To, to);
        request.headers.push(HeaderName::CallId, &self.id.call_id);
        request
            .headers
            .push(HeaderName::CSeq, format!("{seq} {method}"));
        for route in &self.route_set {
            request.headers.push(HeaderName::Route, route);
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::validate::{self, Policy};
    use crate::message::{Frame, Limits, Message, parse_datagram};

    fn parse(text: &str) -> Message {
        match parse_datagram(
            bytes::Bytes::from(text.replace('\n', "\r\n")),
            &Limits::default(),
        )
        .unwrap()
        {
            Frame::Message(message) => message,
            Frame::KeepAlive(_) => unreachable!(),
        }
    }

    fn valid_request(text: &str) -> ValidRequest {
        match parse(text) {
            Message::Request(r) => validate::request(r, &Policy::default()).unwrap(),
            Message::Response(_) => unreachable!(),
        }
    }

    const INVITE: &str = "INVITE sip:+15550100@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport
Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>
From: \"Pat\" <sip:+13125550142@127.0.0.1>;tag=caller
To: <sip:+15550100@127.0.0.1>
Call-ID: dialog-1
CSeq: 7 INVITE
Contact: <sip:pat@127.0.0.1:5070>
Max-Forwards: 70
Content-Length: 0

";

    fn peer() -> Peer {
        Peer::udp("127.0.0.1:5070".parse().unwrap())
    }

    #[test]
    fn uas_dialog_takes_route_set_target_and_tags() {
        let invite = valid_request(INVITE);
        let mut dialog = Dialog::uas(&invite, "ours", peer()).unwrap();
        assert_eq!(&*dialog.id.remote_tag, "caller");
        assert_eq!(dialog.remote_seq, Some(7));
        let bye = dialog.request(Method::Bye);
        assert_eq!(bye.uri.to_string(), "sip:pat@127.0.0.1:5070");
        let text = String::from_utf8_lossy(&bye.encode()).to_string();
        assert!(
            text.contains("From: <sip:+15550100@127.0.0.1>;tag=ours\r\n"),
            "{text}"
        );
        assert!(text.contains("To: \"Pat\" <sip:+13125550142@127.0.0.1>;tag=caller\r\n"));
        assert!(text.contains("CSeq: 1 BYE\r\n"));
        let routes: Vec<&str> = text.lines().filter(|l| l.starts_with("Route:")).collect();
        assert_eq!(
            routes,
            vec![
                "Route: <sip:p1.example.com;lr>",
                "Route: <sip:p2.example.com;lr>"
            ]
        );
        assert_eq!(dialog.request(Method::Info).headers.cseq().unwrap().seq, 2);
    }

    #[test]
    fn cseq_may_not_go_backwards_and_reinvite_refreshes_target() {
        let invite = valid_request(INVITE);
        let mut dialog = Dialog::uas(&invite, "ours", peer()).unwrap();
        let reinvite = valid_request(
            &INVITE
                .replace("CSeq: 7 INVITE", "CSeq: 8 INVITE")
                .replace("<sip:pat@127.0.0.1:5070>", "<sip:pat@127.0.0.1:5099>")
                .replace(
                    "To: <sip:+15550100@127.0.0.1>",
                    "To: <sip:+15550100@127.0.0.1>;tag=ours",
                ),
        );
        dialog.receive(&reinvite).unwrap();
        assert_eq!(dialog.remote_target.to_string(), "sip:pat@127.0.0.1:5099");
        let old = valid_request(
            &INVITE
                .replace("CSeq: 7 INVITE", "CSeq: 3 BYE")
                .replace("INVITE sip", "BYE sip"),
        );
        assert_eq!(
            dialog.receive(&old),
            Err(DialogError::OutOfOrder { got: 3, last: 8 })
        );
    }

    #[test]
    fn uac_dialog_reverses_record_route_and_acks_with_the_invite_seq() {
        let mut invite = Request::new(
            Method::Invite,
            Uri::parse("sip:1003@127.0.0.1:5080").unwrap(),
        );
        invite.headers.push(HeaderName::CSeq, "4 INVITE");
        let response = match parse(
            "SIP/2.0 200 OK
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK2
Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>
From: <sip:frontdesk@127.0.0.1>;tag=b2b
To: <sip:1003@127.0.0.1>;tag=agent
Call-ID: leg-2
CSeq: 4 INVITE
Contact: <sip:1003@127.0.0.1:5080;transport=udp>
Content-Length: 0

",
        ) {
            Message::Response(r) => validate::response(r).unwrap(),
            Message::Request(_) => unreachable!(),
        };
        let dialog = Dialog::uac(&invite, &response, peer()).unwrap();
        assert_eq!(dialog.route_set[0].to_string(), "<sip:p1.example.com;lr>");
        let ack = dialog.ack(4);
        assert_eq!(ack.headers.cseq().unwrap().to_string(), "4 ACK");
        assert_eq!(ack.uri.to_string(), "sip:1003@127.0.0.1:5080;transport=udp");
        assert_eq!(ack.headers.to().unwrap().tag(), Some("agent"));
    }
}
