//! Server transactions: INVITE (RFC 3261 §17.2.1 with RFC 6026's Accepted
//! state) and non-INVITE (§17.2.2), and CANCEL handling (§9.2).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use bytestring::ByteString;

use super::timer::{Deadlines, Timer};
use super::{
    AckKey, Event, Fingerprint, ServerKey, ServerTransactionId, TransactionError, TransactionId,
    TransactionLayer, Transmit,
};
use crate::message::validate::ValidRequest;
use crate::message::{HeaderName, Headers, Method, Response, StatusCode, Via};
use crate::peer::Peer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    /// Non-INVITE, nothing sent yet.
    Trying,
    /// A provisional response was sent (INVITE: 100 at once).
    Proceeding,
    /// A final non-2xx response was sent (INVITE: waiting for ACK).
    Completed,
    /// INVITE: the ACK for our non-2xx arrived.
    Confirmed,
    /// INVITE: a 2xx was sent (RFC 6026).
    Accepted,
}

#[derive(Debug)]
pub(crate) struct ServerTransaction {
    key: Fingerprint,
    invite: bool,
    state: ServerState,
    /// Where responses go (§18.2.2, RFC 3581).
    peer: Peer,
    /// Via, From, To, Call-ID and CSeq of the request, to build responses
    /// the layer sends itself (487).
    request_headers: Headers,
    last_response: Option<Bytes>,
    to_tag: Option<ByteString>,
    ack_key: Option<AckKey>,
    acked: bool,
    interval: Duration,
    pub(crate) deadlines: Deadlines,
}

impl TransactionLayer {
    /// A request arrived from `source` (already validated).
    pub fn handle_request(&mut self, now: Instant, mut request: ValidRequest, source: Peer) {
        let peer = stamp_received(&mut request, source);
        if request.request.method == Method::Ack {
            self.handle_ack(now, request, source);
            return;
        }
        let key = self.fingerprints.of(&ServerKey::of(&request));
        if let Some(&id) = self.server_keys.get(&key) {
            self.absorb_retransmission(id);
            return;
        }
        if let Some((destination, response)) = self.completed.get(&key) {
            // §17.2.2: a retransmission in Completed gets the final response
            // again.
            self.transmits.push_back(Transmit {
                peer: Peer::udp(destination),
                bytes: response,
                transaction: None,
            });
            return;
        }
        let id = ServerTransactionId(self.next_id());
        let invite = request.request.method == Method::Invite;
        let request_headers = core_headers(&request.request.headers);
        self.servers.insert(
            id,
            Box::new(ServerTransaction {
                key,
                invite,
                state: ServerState::Trying,
                peer,
                request_headers,
                last_response: None,
                to_tag: None,
                ack_key: None,
                acked: false,
                interval: self.config.timers.t1,
                deadlines: Deadlines::default(),
            }),
        );
        self.server_keys.insert(key, id);
        if request.request.method == Method::Cancel {
            self.handle_cancel(now, id, &request);
            return;
        }
        if invite {
            // §17.2.1: a 100 at once stops the client's retransmissions.
            let trying = Response::to_request(&request.request.headers, StatusCode::TRYING, None);
            let _ = self.respond(now, id, trying);
        }
        self.events.push_back(Event::Request {
            transaction: id,
            request: Box::new(request),
            source,
        });
    }

    fn handle_ack(&mut self, now: Instant, ack: ValidRequest, source: Peer) {
        let key = self.fingerprints.of(&ServerKey::of(&ack));
        let by_branch = self.server_keys.get(&key).copied();
        let id = by_branch.or_else(|| self.ack_keys.get(&AckKey::of(&ack)).copied());
        let Some(id) = id else {
            self.events.push_back(Event::StrayAck {
                ack: Box::new(ack),
                source,
            });
            return;
        };
        let reliable = match self.servers.get(&id) {
            Some(transaction) => transaction.peer.transport.is_reliable(),
            None => return,
        };
        let t4 = self.config.timers.t4;
        let Some(transaction) = self.servers.get_mut(&id) else {
            return;
        };
        match transaction.state {
            ServerState::Completed => {
                transaction.state = ServerState::Confirmed;
                transaction.deadlines.clear(Timer::G);
                transaction.deadlines.clear(Timer::H);
                if reliable {
                    self.terminate_server(id);
                } else {
                    self.arm(TransactionId::Server(id), Timer::I, now + t4);
                }
            }
            ServerState::Accepted if !transaction.acked => {
                transaction.acked = true;
                transaction.deadlines.clear(Timer::Retransmit2xx);
                self.events.push_back(Event::Ack {
                    transaction: id,
                    ack: Box::new(ack),
                    source,
                });
            }
            // Retransmitted ACKs, or an ACK before any final response.
            _ => {}
        }
    }

    fn absorb_retransmission(&mut self, id: ServerTransactionId) {
        let Some(transaction) = self.servers.get(&id) else {
            return;
        };
        let resend = match transaction.state {
            ServerState::Proceeding | ServerState::Completed => transaction.last_response.clone(),
            // Trying: the TU has not answered yet; Accepted: the 2xx is
            // retransmitted on its own timer; Confirmed: nothing to do.
            _ => None,
        };
        if let Some(bytes) = resend {
            self.transmits.push_back(Transmit {
                peer: transaction.peer,
                bytes,
                transaction: None,
            });
        }
    }

    fn handle_cancel(
        &mut self,
        now: Instant,
        cancel_id: ServerTransactionId,
        cancel: &ValidRequest,
    ) {
        let invite_key = self
            .fingerprints
            .of(&ServerKey::with_method(cancel, Method::Invite));
        let invite = self.server_keys.get(&invite_key).copied();
        let Some(invite_id) = invite else {
            let response = Response::to_request(
                &cancel.request.headers,
                StatusCode::CALL_DOES_NOT_EXIST,
                Some(&self.random_token(10)),
            );
            let _ = self.respond(now, cancel_id, response);
            return;
        };
        let ok = Response::to_request(
            &cancel.request.headers,
            StatusCode::OK,
            Some(&self.random_token(10)),
        );
        let _ = self.respond(now, cancel_id, ok);
        let unanswered = self
            .servers
            .get(&invite_id)
            .is_some_and(|t| t.state == ServerState::Proceeding);
        if unanswered {
            let tag = match self.servers.get(&invite_id).and_then(|t| t.to_tag.clone()) {
                Some(tag) => tag.to_string(),
                None => self.random_token(10),
            };
            let headers = match self.servers.get(&invite_id) {
                Some(transaction) => transaction.request_headers.clone(),
                None => return,
            };
            let terminated =
                Response::to_request(&headers, StatusCode::REQUEST_TERMINATED, Some(&tag));
            let _ = self.respond(now, invite_id, terminated);
            self.events.push_back(Event::Cancelled {
                transaction: invite_id,
                call_id: cancel.call_id.clone(),
            });
        }
    }

    /// Sends `response` on server transaction `id`.
    pub fn respond(
        &mut self,
        now: Instant,
        id: ServerTransactionId,
        response: Response,
    ) -> Result<(), TransactionError> {
        let timers = self.config.timers;
        let transaction = self
            .servers
            .get_mut(&id)
            .ok_or(TransactionError::UnknownTransaction)?;
        if !matches!(
            transaction.state,
            ServerState::Trying | ServerState::Proceeding
        ) {
            return Err(TransactionError::AlreadyAnswered);
        }
        if let Ok(to) = response.headers.to()
            && let Some(tag) = to.tag()
        {
            transaction.to_tag = Some(ByteString::from(tag));
        }
        let bytes = response.encode();
        let status = response.status;
        transaction.last_response = Some(bytes.clone());
        let peer = transaction.peer;
        let reliable = peer.transport.is_reliable();
        self.transmits.push_back(Transmit {
            peer,
            bytes: bytes.clone(),
            transaction: None,
        });
        let handle = TransactionId::Server(id);
        if status.is_provisional() {
            transaction.state = ServerState::Proceeding;
            return Ok(());
        }
        if transaction.invite && status.is_success() {
            transaction.state = ServerState::Accepted;
            transaction.interval = timers.t1;
            let ack_key = AckKey {
                call_id: response.headers.call_id().unwrap_or_default(),
                seq: response.headers.cseq().map_or(0, |c| c.seq),
                from_tag: response
                    .headers
                    .from()
                    .ok()
                    .and_then(|f| f.tag().map(ByteString::from)),
            };
            transaction.ack_key = Some(ack_key.clone());
            self.ack_keys.insert(ack_key, id);
            self.arm(handle, Timer::Retransmit2xx, now + timers.t1);
            self.arm(handle, Timer::L, now + timers.timeout());
        } else if transaction.invite {
            transaction.state = ServerState::Completed;
            transaction.interval = timers.t1;
            if !reliable {
                self.arm(handle, Timer::G, now + timers.t1);
            }
            self.arm(handle, Timer::H, now + timers.timeout());
        } else if reliable {
            self.terminate_server(id);
        } else {
            // Completed: Timer J keeps only what answers a retransmission
            // (the fingerprint, the destination, the response as a delta):
            // at 10,000 REGISTERs a second, 640,000 of them are waiting.
            let key = transaction.key;
            let destination = peer.address;
            self.terminate_server(id);
            let deadline = now + timers.timeout();
            self.completed
                .insert(deadline, key, destination, status.as_u16(), &bytes);
        }
        Ok(())
    }

    pub(super) fn fire_server_timer(
        &mut self,
        now: Instant,
        id: ServerTransactionId,
        timer: Timer,
    ) {
        let timers = self.config.timers;
        let Some(transaction) = self.servers.get_mut(&id) else {
            return;
        };
        transaction.deadlines.clear(timer);
        match timer {
            Timer::G | Timer::Retransmit2xx => {
                if timer == Timer::Retransmit2xx && transaction.acked {
                    return;
                }
                transaction.interval = (transaction.interval * 2).min(timers.t2);
                let next = now + transaction.interval;
                if let Some(bytes) = transaction.last_response.clone() {
                    self.transmits.push_back(Transmit {
                        peer: transaction.peer,
                        bytes,
                        transaction: None,
                    });
                }
                self.arm(TransactionId::Server(id), timer, next);
            }
            Timer::L => {
                if !transaction.acked {
                    let call_id = transaction.request_headers.call_id().unwrap_or_default();
                    self.events.push_back(Event::AckTimeout {
                        transaction: id,
                        call_id,
                    });
                }
                self.terminate_server(id);
            }
            Timer::H | Timer::I | Timer::J => self.terminate_server(id),
            _ => {}
        }
    }

    fn terminate_server(&mut self, id: ServerTransactionId) {
        if let Some(mut transaction) = self.servers.remove(&id) {
            transaction.deadlines.clear_all();
            if self.server_keys.get(&transaction.key) == Some(&id) {
                self.server_keys.remove(&transaction.key);
            }
            if let Some(ack_key) = transaction.ack_key
                && self.ack_keys.get(&ack_key) == Some(&id)
            {
                self.ack_keys.remove(&ack_key);
            }
        }
    }
}

/// Fills `received` and `rport` in the top Via (RFC 3261 §18.2.1, RFC 3581
/// §4) and returns where responses must go (§18.2.2).
fn stamp_received(request: &mut ValidRequest, source: Peer) -> Peer {
    let source_ip = source.address.ip();
    let wants_rport = request.via.rport().is_some();
    let mut changed = false;
    if wants_rport || request.via.host.ip() != Some(source_ip) {
        request
            .via
            .params
            .set("received", Some(&source_ip.to_string()));
        changed = true;
    }
    if wants_rport {
        request
            .via
            .params
            .set("rport", Some(&source.address.port().to_string()));
        changed = true;
    }
    if changed {
        rewrite_top_via(&mut request.request.headers, &request.via);
    }
    if source.transport.is_reliable() || wants_rport {
        return source;
    }
    Peer {
        address: SocketAddr::new(source_ip, request.via.port.unwrap_or(5060)),
        ..source
    }
}

/// Replaces the first value of the first Via header by `top`.
fn rewrite_top_via(headers: &mut Headers, top: &Via) {
    let Some(first) = headers.remove_first(&HeaderName::Via) else {
        return;
    };
    let rest = bytestring::ByteString::try_from(first.value)
        .ok()
        .and_then(|text| Via::parse_list(&text).ok())
        .map(|vias| {
            vias.into_iter()
                .skip(1)
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut value = top.to_string();
    for via in rest {
        value.push_str(", ");
        value.push_str(&via);
    }
    headers.push_front(HeaderName::Via, value);
}

/// The headers a response copies from its request (§8.2.6.2).
fn core_headers(headers: &Headers) -> Headers {
    let mut core = Headers::with_capacity(6);
    for header in headers.iter() {
        if matches!(
            header.name,
            HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
        ) {
            core.push_raw(header.name.clone(), header.value.clone());
        }
    }
    core
}
