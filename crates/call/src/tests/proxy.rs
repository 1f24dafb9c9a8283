//! Calls through a proxy (Kamailio in front of the node, issue 24): the
//! patient's INVITE Record-Routed by it, and an agent registered through it
//! (RFC 3327 Path).

use sip::message::{HeaderName, Request};

use super::*;

/// Kamailio's own address, in its Record-Route and its Path.
const PROXY: &str = "192.0.2.9:5070";

fn routes(request: &Request) -> Vec<String> {
    request
        .headers
        .all(&HeaderName::Route)
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
        .collect()
}

#[test]
fn an_invite_record_routed_by_the_proxy_gets_it_back_and_our_bye_follows_it() {
    // The INVITE as the proxy forwards it: its Record-Route on top.
    let body = offer(addr("192.0.2.50:40000"));
    let routed = request(&format!(
        "INVITE sip:+15550100@192.0.2.1:5060 SIP/2.0\n\
         Via: SIP/2.0/UDP {PATIENT};branch=z9hG4bKproxy1\n\
         Via: SIP/2.0/UDP 192.0.2.77:5062;branch=z9hG4bKpatient1\n\
         Record-Route: <sip:{PROXY};lr;ftag=patient>\n\
         From: <sip:+13125550142@192.0.2.77>;tag=patient\n\
         To: <sip:+15550100@192.0.2.1:5060>\n\
         Call-ID: patient-call@test\n\
         CSeq: 1 INVITE\n\
         Contact: <sip:patient@{PATIENT}>\n\
         Max-Forwards: 69\n\
         Content-Type: application/sdp\n\
         Content-Length: {}\n\n{body}",
        body.len()
    ));
    let mut h = Harness::new(clinic(|text| text), routed, OPEN)
        .agents(&["1003"], false)
        .start();
    assert_eq!(h.invite_responses(), [200]);
    // RFC 3261 §12.1.1: the 200 copies Record-Route, so the patient's
    // side (and the proxy) keep the proxy in the dialog.
    let ok = h.final_response();
    let record_route: Vec<String> = ok
        .headers
        .all(&HeaderName::RecordRoute)
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
        .collect();
    assert_eq!(record_route, [format!("<sip:{PROXY};lr;ftag=patient>")]);
    h.patient_acks(None);
    h.press('3', media::DtmfSource::TelephoneEvent);
    h.agent_answers("1003", 200);
    assert!(h.media.bridged);
    // The agent hangs up: our BYE to the patient carries the route set
    // (§12.2.1.1) and goes to where the INVITE came from, the proxy.
    h.agent_sends("1003", 60, "BYE", 2, "", "");
    let bye = h.sent("BYE");
    assert_eq!(bye.len(), 1);
    assert_eq!(
        routes(&bye[0].1),
        [format!("<sip:{PROXY};lr;ftag=patient>")]
    );
    assert_eq!(bye[0].1.uri.to_string(), format!("sip:patient@{PATIENT}"));
    assert_eq!(bye[0].2.address, addr(PATIENT));
    h.assert_over(Outcome::Connected);
}

/// Agent 1003's phone at 192.0.2.103:5060, registered through the proxy:
/// the binding's source is the proxy, its Path the proxy's URI.
fn through_proxy(h: Harness) -> Harness {
    let mut h = h.agents(&["1003"], false);
    let binding = &mut h.env.bindings.get_mut("1003").expect("a binding")[0];
    binding.source = Peer::udp(addr(PROXY));
    binding.path = vec![
        sip::message::NameAddr::parse(&bytestring::ByteString::from(format!(
            "<sip:{PROXY};lr;received=sip:192.0.2.103:5060>"
        )))
        .expect("a Path"),
    ];
    h
}

#[test]
fn an_agent_registered_through_the_proxy_is_rung_and_hung_up_through_it() {
    let h = Harness::new(
        clinic(|text| text),
        invite("+15550100", Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    );
    let mut h = through_proxy(h).start();
    h.patient_acks(None);
    h.press('3', media::DtmfSource::TelephoneEvent);
    let (transaction, invite, peer) = h.invite_to("1003");
    // RFC 3327 §5.4: the Path is the INVITE's route set; it goes to the
    // proxy, the Request-URI still the phone's contact.
    assert_eq!(peer.address, addr(PROXY));
    assert_eq!(
        routes(&invite),
        [format!("<sip:{PROXY};lr;received=sip:192.0.2.103:5060>")]
    );
    assert_eq!(invite.uri.to_string(), "sip:1003@192.0.2.103:5060");

    // The phone answers through the proxy, which Record-Routed the INVITE.
    let header = |name: HeaderName| {
        String::from_utf8_lossy(invite.headers.get(&name).expect("a header")).into_owned()
    };
    let body = offer(addr("192.0.2.203:7000"));
    let ok = response(&format!(
        "SIP/2.0 200 OK\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKleg\n\
         Record-Route: <sip:{PROXY};lr>\n\
         From: {}\n\
         To: {};tag=agent1003\n\
         Call-ID: {}\n\
         CSeq: 1 INVITE\n\
         Contact: <sip:1003@192.0.2.103:5060>\n\
         Content-Type: application/sdp\n\
         Content-Length: {}\n\n{body}",
        header(HeaderName::From),
        header(HeaderName::To),
        header(HeaderName::CallId),
        body.len()
    ));
    h.sip(Event::Response {
        transaction,
        response: Box::new(ok),
        source: peer,
    });
    assert!(h.media.bridged);
    h.patient_hangs_up();
    let byes = h.on_leg("1003", "BYE");
    assert_eq!(byes.len(), 1, "the agent's leg ends");
    assert_eq!(routes(&byes[0]), [format!("<sip:{PROXY};lr>")]);
    assert_eq!(byes[0].uri.to_string(), "sip:1003@192.0.2.103:5060");
    let to_agent = h
        .sent("BYE")
        .into_iter()
        .find(|(_, request, _)| request.uri.to_string() == "sip:1003@192.0.2.103:5060")
        .expect("the agent's BYE");
    assert_eq!(to_agent.2.address, addr(PROXY), "through the proxy");
    h.assert_over(Outcome::Connected);
}

#[test]
fn a_path_naming_another_proxy_sends_the_invite_there() {
    let h = Harness::new(
        clinic(|text| text),
        invite("+15550100", Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    );
    let mut h = through_proxy(h);
    // The REGISTER came from the proxy's other address; its Path names
    // 192.0.2.8 over TCP: the INVITE goes there, over TCP.
    h.env.bindings.get_mut("1003").expect("a binding")[0].path = vec![
        sip::message::NameAddr::parse(&bytestring::ByteString::from(
            "<sip:192.0.2.8:5080;transport=tcp;lr>",
        ))
        .expect("a Path"),
    ];
    let mut h = h.start();
    h.patient_acks(None);
    h.press('3', media::DtmfSource::TelephoneEvent);
    let (_, _, peer) = h.invite_to("1003");
    assert_eq!(peer.address, addr("192.0.2.8:5080"));
    assert_eq!(peer.transport, sip::TransportKind::Tcp);
}
