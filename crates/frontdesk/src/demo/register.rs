//! A phone's registration (RFC 3261 §10.2) with digest authentication
//! (RFC 7616 as SIP uses it): one Call-ID for every REGISTER of the phone,
//! CSeq counting up, the last challenge reused with a growing nonce count
//! until the registrar asks again.

use std::net::SocketAddr;
use std::time::Duration;

use bytestring::ByteString;
use rand::Rng;
use sip::Peer;
use sip::digest::{Challenge, Credentials};
use sip::endpoint::EndpointHandle;
use sip::message::validate::ValidResponse;
use sip::message::{HeaderName, Method, Request, StatusCode, Uri};
use sip::transaction::Event;
use tokio::sync::mpsc;

use super::ua::{UaError, exchange, host_port, token};

/// How long one REGISTER may wait for its final response.
const ANSWER_BOUND: Duration = Duration::from_secs(10);
/// The fewest seconds between two refreshes.
const MIN_REFRESH: Duration = Duration::from_secs(5);

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The request got no answer or could not be sent.
    #[error(transparent)]
    Ua(#[from] UaError),
    /// The registrar refused the credentials (403), or challenged twice.
    #[error("the registrar refused the credentials ({0})")]
    Refused(StatusCode),
    /// Any other final response.
    #[error("the registrar answered {0}")]
    Unexpected(StatusCode),
}

/// Which bindings a REGISTER is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Binding {
    /// This phone's Contact.
    Ours,
    /// Every binding of the user (`Contact: *`).
    All,
}

/// One phone's registration with the daemon's registrar.
#[derive(Debug)]
pub struct Registration {
    endpoint: EndpointHandle,
    registrar: SocketAddr,
    user: String,
    password: String,
    contact: String,
    call_id: ByteString,
    tag: String,
    cnonce: String,
    cseq: u32,
    /// The last challenge and how many times we answered it.
    challenge: Option<(Challenge, u32)>,
    events: mpsc::UnboundedReceiver<Event>,
}

impl Registration {
    /// A registration of `user` at `registrar` for the phone listening on
    /// `phone`. Events of its Call-ID are routed to it from now on.
    pub fn new(
        endpoint: EndpointHandle,
        registrar: SocketAddr,
        phone: SocketAddr,
        user: &str,
        password: &str,
        rng: &mut impl Rng,
    ) -> Registration {
        let call_id = ByteString::from(format!("reg-{user}-{}@{}", token(rng, 10), phone.ip()));
        let (owner, events) = mpsc::unbounded_channel();
        endpoint.route(call_id.clone(), owner);
        Registration {
            endpoint,
            registrar,
            user: user.to_string(),
            password: password.to_string(),
            contact: format!("<sip:{user}@{}>", host_port(phone)),
            call_id,
            tag: token(rng, 10),
            cnonce: token(rng, 16),
            cseq: 0,
            challenge: None,
            events,
        }
    }

    /// Removes every binding of the user (`Contact: *`, RFC 3261 §10.2.2):
    /// a phone that starts afresh clears what an earlier run left, so the
    /// daemon never rings a port nobody listens on any more.
    pub async fn clear(&mut self) -> Result<(), RegisterError> {
        self.exchange(0, Binding::All).await.map(|_| ())
    }

    /// Registers the phone's Contact for `expires` seconds (0 removes it);
    /// returns the time the registrar granted.
    pub async fn register(&mut self, expires: u32) -> Result<Duration, RegisterError> {
        self.exchange(expires, Binding::Ours).await
    }

    async fn exchange(
        &mut self,
        expires: u32,
        binding: Binding,
    ) -> Result<Duration, RegisterError> {
        let mut expires = expires;
        let mut fresh_challenges = 0;
        // A fresh challenge, then a 423 with Min-Expires, then a stale nonce:
        // no registrar needs more rounds than this.
        for _ in 0..4 {
            let response = self.send(expires, binding).await?;
            let status = response.response.status;
            match status.as_u16() {
                200..=299 => return Ok(self.granted(&response, expires)),
                401 => {
                    let challenge = response
                        .response
                        .headers
                        .www_authenticates()
                        .ok()
                        .and_then(|list| {
                            list.iter()
                                .find_map(|params| Challenge::from_params(params).ok())
                        })
                        .ok_or(RegisterError::Unexpected(status))?;
                    // A second fresh challenge means the credentials were
                    // wrong (a stale nonce is retried).
                    if !challenge.stale {
                        fresh_challenges += 1;
                        if fresh_challenges > 1 {
                            return Err(RegisterError::Refused(status));
                        }
                    }
                    self.challenge = Some((challenge, 0));
                }
                423 => {
                    expires = response
                        .response
                        .headers
                        .get(&HeaderName::MinExpires)
                        .and_then(|value| std::str::from_utf8(value).ok()?.trim().parse().ok())
                        .ok_or(RegisterError::Unexpected(status))?;
                }
                403 => return Err(RegisterError::Refused(status)),
                _ => return Err(RegisterError::Unexpected(status)),
            }
        }
        Err(RegisterError::Refused(StatusCode::UNAUTHORIZED))
    }

    /// When to refresh a registration granted for `granted`: halfway.
    pub fn refresh_after(granted: Duration) -> Duration {
        (granted / 2).max(MIN_REFRESH)
    }

    async fn send(
        &mut self,
        expires: u32,
        binding: Binding,
    ) -> Result<ValidResponse, RegisterError> {
        self.cseq += 1;
        let registrar = host_port(self.registrar);
        let request_uri = format!("sip:{registrar}");
        let aor = format!("<sip:{}@{registrar}>", self.user);
        let uri = Uri::parse(&request_uri)
            .map_err(|_| RegisterError::Unexpected(StatusCode::BAD_REQUEST))?;
        let mut request = Request::new(Method::Register, uri);
        request
            .headers
            .push(HeaderName::From, format!("{aor};tag={}", self.tag));
        request.headers.push(HeaderName::To, &aor);
        request.headers.push(HeaderName::CallId, &self.call_id);
        request
            .headers
            .push(HeaderName::CSeq, format!("{} REGISTER", self.cseq));
        let contact = match binding {
            Binding::Ours => self.contact.as_str(),
            Binding::All => "*",
        };
        request.headers.push(HeaderName::Contact, contact);
        request.headers.push(HeaderName::Expires, expires);
        if let Some((challenge, count)) = self.challenge.as_mut() {
            *count += 1;
            let credentials = Credentials::answer(
                challenge,
                &self.user,
                &self.password,
                "REGISTER",
                &request_uri,
                &self.cnonce,
                *count,
            );
            request
                .headers
                .push(HeaderName::Authorization, credentials.to_params());
        }
        let response = exchange(
            &self.endpoint,
            &mut self.events,
            request,
            Peer::udp(self.registrar),
            ANSWER_BOUND,
            "REGISTER",
        )
        .await?;
        Ok(response)
    }

    /// The expiry the 200 gives our Contact, else its Expires, else what
    /// we asked for.
    fn granted(&self, response: &ValidResponse, asked: u32) -> Duration {
        let headers = &response.response.headers;
        let ours = headers.contacts().ok().and_then(|contacts| {
            contacts.iter().find_map(|contact| {
                let address = contact.address()?;
                let same = format!("<{}>", address.uri) == self.contact;
                same.then(|| address.params.get("expires").flatten()?.parse::<u32>().ok())
                    .flatten()
            })
        });
        let seconds = ours
            .or_else(|| headers.expires().ok().flatten())
            .unwrap_or(asked);
        Duration::from_secs(u64::from(seconds))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.endpoint.unroute(&self.call_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_come_halfway_but_not_too_often() {
        assert_eq!(
            Registration::refresh_after(Duration::from_secs(120)),
            Duration::from_secs(60)
        );
        assert_eq!(
            Registration::refresh_after(Duration::from_secs(4)),
            MIN_REFRESH
        );
    }
}
