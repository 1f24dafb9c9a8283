//! The messages of an outbound call's patient leg: the INVITE to the
//! trunk, and the same INVITE again with digest credentials.

use std::net::IpAddr;

use bytes::Bytes;
use bytestring::ByteString;
use sip::digest::{Challenge, Credentials};
use sip::message::validate::ValidResponse;
use sip::message::{
    AuthParams, HeaderName, Host, Method, NameAddr, Request, SipUri, StatusCode, Uri,
};

/// What the trunk's INVITE is made of.
pub(super) struct TrunkInvite<'a> {
    /// The patient's number, E.164.
    pub number: &'a str,
    /// The trunk's host and port.
    pub host: &'a Host,
    pub port: Option<u16>,
    /// The clinic's number.
    pub caller_id: &'a str,
    pub advertise: IpAddr,
    pub contact: &'a str,
    pub call_id: &'a str,
    pub tag: &'a str,
    pub sdp: String,
}

/// The INVITE to the trunk: Request-URI and To `sip:<number>@<trunk>`,
/// From and P-Asserted-Identity (RFC 3325 §9.1) the clinic's caller id.
pub(super) fn trunk_invite(invite: &TrunkInvite<'_>) -> Request {
    let target = Uri::Sip(SipUri::new(
        Some(invite.number),
        invite.host.clone(),
        invite.port,
    ));
    let mut request = Request::new(Method::Invite, target.clone());
    let clinic = Uri::Sip(SipUri::new(
        Some(invite.caller_id),
        invite.advertise.into(),
        None,
    ));
    let mut from = NameAddr::new(clinic.clone());
    from.params.set("tag", Some(invite.tag));
    request.headers.push(HeaderName::From, from);
    request.headers.push(HeaderName::To, NameAddr::new(target));
    request.headers.push(HeaderName::CallId, invite.call_id);
    request.headers.push(HeaderName::CSeq, "1 INVITE");
    request.headers.push(HeaderName::MaxForwards, 70);
    request.headers.push(HeaderName::Contact, invite.contact);
    request.headers.push(
        HeaderName::Other(ByteString::from_static("P-Asserted-Identity")),
        NameAddr::new(clinic),
    );
    request
        .headers
        .push(HeaderName::ContentType, "application/sdp");
    request.body = Bytes::from(invite.sdp.clone());
    request
}

/// The first digest challenge of a 401 (`WWW-Authenticate`) or 407
/// (`Proxy-Authenticate`) that we can answer; `None` when there is none.
pub(super) fn challenge(response: &ValidResponse) -> Option<Challenge> {
    let name = challenge_header(response.response.status);
    response
        .response
        .headers
        .all(&name)
        .filter_map(|header| std::str::from_utf8(&header.value).ok())
        .filter_map(|text| AuthParams::parse(&ByteString::from(text.trim())).ok())
        .find_map(|params| Challenge::from_params(&params).ok())
}

fn challenge_header(status: StatusCode) -> HeaderName {
    if status.as_u16() == 407 {
        HeaderName::ProxyAuthenticate
    } else {
        HeaderName::WwwAuthenticate
    }
}

/// `invite` again, with the next CSeq and the credentials that answer
/// `challenge` (`Authorization` for a 401, `Proxy-Authorization` for a
/// 407; RFC 3261 §22.2, §22.3). Same Call-ID and From tag: the same call.
pub(super) fn with_credentials(
    invite: &Request,
    status: StatusCode,
    challenge: &Challenge,
    username: &str,
    password: &str,
    cnonce: &str,
) -> Request {
    let mut request = invite.clone();
    let seq = invite.headers.cseq().map_or(1, |cseq| cseq.seq) + 1;
    request
        .headers
        .set(HeaderName::CSeq, format!("{seq} INVITE"));
    let uri = request.uri.to_string();
    let credentials = Credentials::answer(challenge, username, password, "INVITE", &uri, cnonce, 1);
    let name = if status.as_u16() == 407 {
        HeaderName::ProxyAuthorization
    } else {
        HeaderName::Authorization
    };
    request.headers.set(name, credentials.to_params());
    request
}
