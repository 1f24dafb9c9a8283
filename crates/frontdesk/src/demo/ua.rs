//! A simulated phone's SIP side, built on our own stack: a
//! [`sip::transport`] on a loopback port of its own, driven by a
//! [`sip::endpoint`] (the task that owns the RFC 3261 transaction layer),
//! used as a UAC (REGISTER, INVITE, BYE) and as a UAS (answering INVITEs).
//!
//! The endpoint hands new requests to [`Ua::requests`]; events about a
//! Call-ID the phone has [`routed`](EndpointHandle::route) (its dialogs, its
//! registration) go to that Call-ID's owner.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use rand::Rng;
use rand::distr::{Alphanumeric, SampleString};
use sip::Peer;
use sip::TransportKind;
use sip::endpoint::{self, EndpointConfig, EndpointHandle};
use sip::message::validate::ValidResponse;
use sip::message::{Method, Request};
use sip::transaction::{self, Event, SentBy, TimerValues};
use sip::transport::{self, TransportConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::app::sockets::SipSockets;

/// New requests a phone may queue before its endpoint answers 503.
const REQUEST_QUEUE: usize = 64;

/// A SIP user agent on a loopback port.
#[derive(Debug)]
pub struct Ua {
    /// Sends requests and responses.
    pub endpoint: EndpointHandle,
    /// Where it listens (UDP and TCP); the host and port of its Contact.
    pub local: SocketAddr,
    /// New requests, and events about Call-IDs nobody routed.
    pub requests: mpsc::Receiver<Event>,
    /// Stops the transport and the endpoint.
    shutdown: CancellationToken,
}

/// Why a phone could not start or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum UaError {
    /// The phone's sockets could not be bound.
    #[error("cannot bind a SIP port for a simulated phone: {0}")]
    Bind(String),
    /// The endpoint task is gone.
    #[error("the phone's SIP endpoint has stopped")]
    Stopped,
    /// The transaction layer refused the request.
    #[error("request refused by the transaction layer: {0}")]
    Transaction(#[from] transaction::TransactionError),
    /// No final response (Timer F, a transport error, or our own bound).
    #[error("no answer to {0}")]
    NoAnswer(&'static str),
}

impl From<endpoint::Stopped> for UaError {
    fn from(_: endpoint::Stopped) -> Self {
        UaError::Stopped
    }
}

impl Ua {
    /// Binds UDP and TCP on a free port of `ip` and starts the endpoint,
    /// which serves `allow` (besides OPTIONS, ACK and CANCEL).
    pub async fn start(
        ip: IpAddr,
        product: &str,
        allow: Vec<Method>,
        seed: u64,
    ) -> Result<Ua, UaError> {
        let sockets = SipSockets::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(|error| UaError::Bind(error.to_string()))?;
        let local = sockets.local;
        let shutdown = CancellationToken::new();
        let (inbound_tx, inbound_rx) = mpsc::channel(REQUEST_QUEUE * 4);
        let transport = transport::start(
            sockets.udp,
            sockets.tcp,
            TransportConfig::default(),
            inbound_tx,
            shutdown.child_token(),
        )
        .map_err(|error| UaError::Bind(error.to_string()))?;
        let sent_by = [TransportKind::Udp, TransportKind::Tcp]
            .into_iter()
            .map(|transport| SentBy {
                transport,
                host: ip.into(),
                port: local.port(),
            })
            .collect();
        let config = EndpointConfig {
            transaction: transaction::Config {
                timers: TimerValues::default(),
                sent_by,
                seed,
            },
            allow,
            supported: Vec::new(),
            product: product.to_string(),
            admission: None,
        };
        let (requests_tx, requests) = mpsc::channel(REQUEST_QUEUE);
        // The endpoint task ends when `shutdown` is cancelled (on drop).
        let (endpoint, _task) = endpoint::start(
            config,
            transport,
            inbound_rx,
            requests_tx,
            shutdown.child_token(),
        );
        Ok(Ua {
            endpoint,
            local,
            requests,
            shutdown,
        })
    }

    /// `host:port` of this phone, for Contact and From.
    pub fn host_port(&self) -> String {
        host_port(self.local)
    }
}

impl Drop for Ua {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// `host:port`, IPv6 in brackets.
pub fn host_port(address: SocketAddr) -> String {
    match address.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", address.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", address.port()),
    }
}

/// Loopback of the same family as `address`, for a wildcard address.
pub fn reachable(address: SocketAddr) -> SocketAddr {
    let ip = match address.ip() {
        ip if !ip.is_unspecified() => ip,
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    SocketAddr::new(ip, address.port())
}

/// Loopback of the family of `address`: where the phones listen.
pub fn loopback_for(address: SocketAddr) -> IpAddr {
    match address.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    }
}

/// A random token for tags and Call-IDs.
pub fn token(rng: &mut impl Rng, length: usize) -> String {
    Alphanumeric.sample_string(rng, length)
}

pub use crate::calls::signal::{dialog_response, sdp_body};

/// Sends a non-INVITE `request` to `peer` and waits, within `bound`, for
/// its final response among the events of its Call-ID (`events`). Other
/// events on that channel are dropped: the caller owns the Call-ID for
/// this exchange only.
pub async fn exchange(
    endpoint: &EndpointHandle,
    events: &mut mpsc::UnboundedReceiver<Event>,
    request: Request,
    peer: Peer,
    bound: Duration,
    what: &'static str,
) -> Result<ValidResponse, UaError> {
    let transaction = endpoint.send_request(request, peer).await??;
    let wait = async {
        while let Some(event) = events.recv().await {
            match event {
                Event::Response {
                    transaction: id,
                    response,
                    ..
                } if id == transaction && !response.response.status.is_provisional() => {
                    return Ok(*response);
                }
                Event::Timeout {
                    transaction: id, ..
                }
                | Event::TransportError {
                    transaction: id, ..
                } if id == transaction => return Err(UaError::NoAnswer(what)),
                _ => {}
            }
        }
        Err(UaError::Stopped)
    };
    tokio::time::timeout(bound, wait)
        .await
        .unwrap_or(Err(UaError::NoAnswer(what)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip::message::{HeaderName, Headers, StatusCode};

    #[test]
    fn wildcard_addresses_become_loopback_of_their_family() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(reachable(at("0.0.0.0:5060")), at("127.0.0.1:5060"));
        assert_eq!(reachable(at("[::]:5060")), at("[::1]:5060"));
        assert_eq!(reachable(at("10.1.2.3:5060")), at("10.1.2.3:5060"));
        assert_eq!(host_port(at("[::1]:5070")), "[::1]:5070");
        assert_eq!(loopback_for(at("[::]:1")).to_string(), "::1");
    }

    #[test]
    fn a_dialog_response_carries_tag_contact_record_route_and_sdp() {
        let mut request = Headers::default();
        request.push(
            HeaderName::Via,
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1",
        );
        request.push(HeaderName::From, "<sip:frontdesk@127.0.0.1>;tag=a");
        request.push(HeaderName::To, "<sip:1003@127.0.0.1>");
        request.push(HeaderName::CallId, "c1");
        request.push(HeaderName::CSeq, "1 INVITE");
        request.push(HeaderName::RecordRoute, "<sip:proxy.example;lr>");
        let ok = dialog_response(
            &request,
            StatusCode::OK,
            "b",
            Some("<sip:1003@127.0.0.1:5070>"),
            Some("v=0\r\n".into()),
        );
        let text = String::from_utf8_lossy(&ok.encode()).into_owned();
        assert!(text.starts_with("SIP/2.0 200 OK\r\n"), "{text}");
        assert!(
            text.contains("To: <sip:1003@127.0.0.1>;tag=b\r\n"),
            "{text}"
        );
        assert!(text.contains("Record-Route: <sip:proxy.example;lr>\r\n"));
        assert!(text.contains("Contact: <sip:1003@127.0.0.1:5070>\r\n"));
        assert!(text.contains("Content-Type: application/sdp\r\n"));
        assert!(text.ends_with("\r\n\r\nv=0\r\n"));
        let bye_ok = dialog_response(&request, StatusCode::OK, "b", None, None);
        let text = String::from_utf8_lossy(&bye_ok.encode()).into_owned();
        assert!(!text.contains("Record-Route"), "{text}");
    }
}
