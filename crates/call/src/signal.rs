//! SIP messages a call builds: answers with SDP, the agent's INVITE, and
//! the small parsers a call needs (dialed number, caller, INFO digits).

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use bytestring::ByteString;
use sip::message::validate::ValidRequest;
use sip::message::{
    DisplayName, HeaderName, Headers, Host, Method, NameAddr, Request, Response, SipUri,
    StatusCode, Uri, uri,
};

/// `host:port` for a URI, IPv6 in brackets.
pub fn host_port(address: SocketAddr) -> String {
    match address.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", address.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", address.port()),
    }
}

/// Our Contact for dialogs we are in.
pub fn contact(advertise: IpAddr, sip_port: u16) -> String {
    format!(
        "<sip:frontdesk@{}>",
        host_port(SocketAddr::new(advertise, sip_port))
    )
}

/// The re-INVITE that passes a hold (or its end) on to the other side of
/// the bridge: our session again, `sendonly` on hold and `sendrecv` off it,
/// as a new version of it (RFC 3264 §8.4).
pub fn hold_reinvite(
    dialog: &mut sip::dialog::Dialog,
    local: &mut media::sdp::LocalMedia,
    on_hold: bool,
    contact: &str,
) -> Request {
    local.direction = if on_hold {
        media::sdp::Direction::SendOnly
    } else {
        media::sdp::Direction::SendRecv
    };
    local.session_version += 1;
    let mut reinvite = dialog.request(Method::Invite);
    reinvite.headers.push(HeaderName::Contact, contact);
    reinvite
        .headers
        .push(HeaderName::ContentType, "application/sdp");
    reinvite.body = Bytes::from(media::sdp::create_offer(local).to_string());
    reinvite
}

/// A response to `request` with our To tag.
pub fn response(request: &Headers, status: StatusCode, tag: &str) -> Response {
    Response::to_request(request, status, Some(tag))
}

/// A response to a dialog-creating request, or inside a dialog: our To
/// tag and, with `contact` (a 2xx or 18x that creates the dialog), the
/// Record-Route copied (RFC 3261 §12.1.1) and our Contact; an SDP body when
/// given.
pub fn dialog_response(
    request: &Headers,
    status: StatusCode,
    tag: &str,
    contact: Option<&str>,
    sdp: Option<String>,
) -> Response {
    let mut response = Response::to_request(request, status, Some(tag));
    if let Some(contact) = contact {
        for header in request.all(&HeaderName::RecordRoute) {
            response
                .headers
                .push_raw(HeaderName::RecordRoute, header.value.clone());
        }
        response.headers.push(HeaderName::Contact, contact);
    }
    if let Some(sdp) = sdp {
        response
            .headers
            .push(HeaderName::ContentType, "application/sdp");
        response.body = Bytes::from(sdp);
    }
    response
}

/// The number a caller dialed: the Request-URI's user part (escapes
/// undone), or a `tel:` URI's number.
pub fn dialed_number(request: &ValidRequest) -> String {
    match &request.request.uri {
        Uri::Sip(sip) => sip
            .user_unescaped()
            .map(|user| String::from_utf8_lossy(&user).into_owned())
            .unwrap_or_else(|| sip.host.to_string()),
        Uri::Other(other) if other.scheme.eq_ignore_ascii_case("tel") => {
            other.rest.split(';').next().unwrap_or_default().to_string()
        }
        Uri::Other(other) => other.rest.to_string(),
    }
}

/// The caller: the From URI's user part, or the whole URI.
pub fn caller_number(request: &ValidRequest) -> String {
    match &request.from.uri {
        Uri::Sip(sip) => sip
            .user_unescaped()
            .map(|user| String::from_utf8_lossy(&user).into_owned())
            .unwrap_or_else(|| sip.host.to_string()),
        other => other.to_string(),
    }
}

/// The SDP body of a message, when it has one.
pub fn sdp_body(headers: &Headers, body: &Bytes) -> Option<Bytes> {
    if body.is_empty() {
        return None;
    }
    match headers.content_type() {
        Ok(Some(kind)) if kind.is("application", "sdp") => Some(body.clone()),
        Ok(None) => Some(body.clone()),
        _ => None,
    }
}

/// `true` when a body is present and is not SDP (415 for an INVITE).
pub fn has_foreign_body(headers: &Headers, body: &Bytes) -> bool {
    !body.is_empty()
        && matches!(headers.content_type(), Ok(Some(kind)) if !kind.is("application", "sdp"))
}

/// The digit of a SIP INFO (`application/dtmf-relay` with `Signal=5`, or
/// `application/dtmf` with the digit alone).
pub fn info_digit(headers: &Headers, body: &Bytes) -> Option<char> {
    let kind = headers.content_type().ok().flatten()?;
    let text = std::str::from_utf8(body).ok()?;
    let value = if kind.is("application", "dtmf-relay") {
        text.lines().find_map(|line| {
            let (name, value) = line.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("signal")
                .then(|| value.trim())
        })?
    } else if kind.is("application", "dtmf") {
        text.trim()
    } else {
        return None;
    };
    let digit = match value {
        "10" => '*',
        "11" => '#',
        one if one.chars().count() == 1 => one.chars().next()?,
        _ => return None,
    };
    matches!(digit, '0'..='9' | '*' | '#' | 'A'..='D' | 'a'..='d')
        .then(|| digit.to_ascii_uppercase())
}

/// What the agent's phone shows: department, source, and how long the
/// patient waited, e.g. `Pediatrics · main-line · waited 0:42`.
pub fn agent_display(department: &str, source: &str, waited_secs: u64) -> String {
    format!(
        "{department} · {source} · waited {}:{:02}",
        waited_secs / 60,
        waited_secs % 60
    )
}

/// The header of an INVITE to an agent that names the queue (department)
/// the patient waits in.
pub const QUEUE_HEADER: &str = "X-Frontdesk-Queue";

/// A REFER with this header (any value; the browser phone says `lost`)
/// sends the patient back into its queue in their first place: the
/// agent's device was lost during the call. Only the agent's own leg can
/// REFER, so only an agent's device can ask for it.
pub const REQUEUE_HEADER: &str = "X-Frontdesk-Requeue";

/// The INVITE to an agent's contact.
#[allow(clippy::too_many_arguments)] // one message, every field a caller must choose
pub fn agent_invite(
    target: &Uri,
    agent: &str,
    display: &str,
    advertise: SocketAddr,
    call_id: &str,
    tag: &str,
    max_forwards: u8,
    sdp: String,
    urgent: bool,
) -> Request {
    let mut invite = Request::new(Method::Invite, target.clone());
    let host: Host = advertise.ip().into();
    let mut from = NameAddr::new(Uri::Sip(SipUri::new(Some("frontdesk"), host.clone(), None)));
    from.display = Some(DisplayName::quoted(display));
    from.params.set("tag", Some(tag));
    let to = NameAddr::new(Uri::Sip(SipUri::new(Some(agent), host, None)));
    invite.headers.push(HeaderName::From, from);
    invite.headers.push(HeaderName::To, to);
    invite.headers.push(HeaderName::CallId, call_id);
    invite.headers.push(HeaderName::CSeq, "1 INVITE");
    invite.headers.push(HeaderName::MaxForwards, max_forwards);
    invite.headers.push(
        HeaderName::Contact,
        format!("<sip:frontdesk@{}>", host_port(advertise)),
    );
    if urgent {
        // Phones that know these ring differently for urgent patients.
        invite.headers.push(
            HeaderName::AlertInfo,
            "<urn:alert:service:priority>;info=urgent",
        );
        invite.headers.push(
            HeaderName::CallInfo,
            "<urn:frontdesk:priority>;purpose=info;priority=urgent",
        );
    }
    invite
        .headers
        .push(HeaderName::ContentType, "application/sdp");
    invite.body = Bytes::from(sdp);
    invite
}

/// Puts a binding's Path on a request to it as its route set (RFC 3327
/// §5.4; RFC 3261 §12.2.1.1: `Route` headers in the Path's order, the
/// Request-URI unchanged). The CANCEL and the non-2xx ACK of an INVITE copy
/// them (the transaction layer, §9.1, §17.1.1.3); the 2xx's Record-Route
/// makes the dialog's route set for BYE and re-INVITE (§12.1.2).
pub fn preload_route(request: &mut Request, path: &[NameAddr]) {
    for hop in path {
        request.headers.push(HeaderName::Route, hop);
    }
}

/// What a REFER's `Refer-To` names (RFC 3515 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferTarget {
    /// The URI's user part, unescaped (`cardiology`, `1002`).
    pub user: Option<String>,
    /// The URI itself, to match against agents' contacts.
    pub uri: Uri,
    /// The `Replaces` of an attended transfer (RFC 3891 §4.1), unescaped
    /// from the URI's headers: `call-id;to-tag=…;from-tag=…`.
    pub replaces: Option<String>,
}

/// Reads the single `Refer-To` of a REFER; `None` when it is missing,
/// repeated or unreadable (400).
pub fn refer_to(headers: &Headers) -> Option<ReferTarget> {
    let mut all = headers.all(&HeaderName::ReferTo);
    let header = all.next()?;
    if all.next().is_some() {
        return None;
    }
    let text = std::str::from_utf8(&header.value).ok()?;
    let address = NameAddr::parse(&ByteString::from(text.trim())).ok()?;
    let (user, replaces) = match &address.uri {
        Uri::Sip(sip) => {
            let user = sip
                .user_unescaped()
                .map(|user| String::from_utf8_lossy(&user).into_owned());
            let replaces = sip.headers.as_ref().and_then(|headers| {
                headers.split('&').find_map(|header| {
                    let (name, value) = header.split_once('=')?;
                    name.eq_ignore_ascii_case("replaces")
                        .then(|| String::from_utf8_lossy(&uri::unescape(value)).into_owned())
                })
            });
            (user, replaces)
        }
        Uri::Other(_) => (None, None),
    };
    Some(ReferTarget {
        user,
        uri: address.uri,
        replaces,
    })
}

/// `true` when a REFER asks for no progress reports (`Refer-Sub: false`,
/// RFC 4488).
pub fn refer_sub_off(headers: &Headers) -> bool {
    headers
        .get(&HeaderName::Other(ByteString::from_static("Refer-Sub")))
        .is_some_and(|value| value.trim_ascii().eq_ignore_ascii_case(b"false"))
}

/// Turns an in-dialog request into the NOTIFY of a REFER's implicit
/// subscription (RFC 3515 §2.4.4): `Event: refer`, the subscription's
/// state, and the transfer's progress as a `message/sipfrag` status line.
pub fn refer_notify(mut notify: Request, contact: &str, state: &str, status_line: &str) -> Request {
    notify.headers.push(HeaderName::Event, "refer");
    notify.headers.push(HeaderName::SubscriptionState, state);
    notify.headers.push(HeaderName::Contact, contact);
    notify
        .headers
        .push(HeaderName::ContentType, "message/sipfrag;version=2.0");
    notify.body = Bytes::from(format!("{status_line}\r\n"));
    notify
}

/// Unescapes a URI user part for display.
pub fn unescaped(text: &str) -> String {
    String::from_utf8_lossy(&uri::unescape(text)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(kind: &str) -> Headers {
        let mut headers = Headers::default();
        headers.push(HeaderName::ContentType, kind);
        headers
    }

    #[test]
    fn info_digits_in_both_content_types() {
        let relay = headers("application/dtmf-relay");
        assert_eq!(
            info_digit(&relay, &Bytes::from("Signal=5\r\nDuration=160\r\n")),
            Some('5')
        );
        assert_eq!(info_digit(&relay, &Bytes::from("Signal= #\r\n")), Some('#'));
        assert_eq!(info_digit(&relay, &Bytes::from("Signal=11\r\n")), Some('#'));
        assert_eq!(
            info_digit(&headers("application/dtmf"), &Bytes::from("2")),
            Some('2')
        );
        assert_eq!(
            info_digit(&headers("application/dtmf"), &Bytes::from("x")),
            None
        );
        assert_eq!(info_digit(&headers("text/plain"), &Bytes::from("2")), None);
    }

    #[test]
    fn refer_to_names_a_queue_an_agent_or_a_dialog_to_replace() {
        let mut blind = Headers::default();
        blind.push(HeaderName::ReferTo, "<sip:cardiology@127.0.0.1:5060>");
        let target = refer_to(&blind).unwrap();
        assert_eq!(target.user.as_deref(), Some("cardiology"));
        assert_eq!(target.replaces, None);
        let mut attended = Headers::default();
        attended.push(
            HeaderName::ReferTo,
            "<sip:1002@127.0.0.1?Replaces=abc%40b%3Bto-tag%3D1%3Bfrom-tag%3D2>",
        );
        let target = refer_to(&attended).unwrap();
        assert_eq!(target.user.as_deref(), Some("1002"));
        assert_eq!(
            target.replaces.as_deref(),
            Some("abc@b;to-tag=1;from-tag=2")
        );
        let mut twice = blind.clone();
        twice.push(HeaderName::ReferTo, "<sip:1002@127.0.0.1>");
        assert_eq!(refer_to(&twice), None);
        assert_eq!(refer_to(&Headers::default()), None);
        let mut off = Headers::default();
        off.push(
            HeaderName::Other(ByteString::from_static("Refer-Sub")),
            "false",
        );
        assert!(refer_sub_off(&off));
        assert!(!refer_sub_off(&blind));
    }

    #[test]
    fn notify_carries_event_state_and_sipfrag() {
        let request = Request::new(Method::Notify, Uri::parse("sip:a@127.0.0.1").unwrap());
        let notify = refer_notify(
            request,
            "<sip:frontdesk@127.0.0.1:5060>",
            "active;expires=300",
            "SIP/2.0 100 Trying",
        );
        let text = String::from_utf8_lossy(&notify.encode()).to_string();
        assert!(text.contains("Event: refer\r\n"), "{text}");
        assert!(text.contains("Subscription-State: active;expires=300\r\n"));
        assert!(text.contains("Content-Type: message/sipfrag;version=2.0\r\n"));
        assert!(text.ends_with("\r\n\r\nSIP/2.0 100 Trying\r\n"), "{text}");
    }

    #[test]
    fn the_agent_sees_department_source_and_wait() {
        assert_eq!(
            agent_display("Pediatrics", "urgent-care-campaign", 42),
            "Pediatrics · urgent-care-campaign · waited 0:42"
        );
        assert_eq!(
            agent_display("Cardiology", "main-line", 125),
            "Cardiology · main-line · waited 2:05"
        );
    }

    #[test]
    fn agent_invite_carries_context_and_sdp() {
        let target = Uri::parse("sip:1003@127.0.0.1:5099").unwrap();
        let invite = agent_invite(
            &target,
            "1003",
            "Pediatrics · main-line · waited 0:42",
            "127.0.0.1:5060".parse().unwrap(),
            "leg-1",
            "b2b",
            69,
            "v=0\r\n".into(),
            true,
        );
        let text = String::from_utf8_lossy(&invite.encode()).to_string();
        assert!(
            text.starts_with("INVITE sip:1003@127.0.0.1:5099 SIP/2.0\r\n"),
            "{text}"
        );
        assert!(text.contains(
            "From: \"Pediatrics · main-line · waited 0:42\" <sip:frontdesk@127.0.0.1>;tag=b2b\r\n"
        ));
        assert!(text.contains("Alert-Info: <urn:alert:service:priority>"));
        assert!(text.contains("Max-Forwards: 69\r\n"));
        assert!(text.ends_with("\r\n\r\nv=0\r\n"));
    }
}
