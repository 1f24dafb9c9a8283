//! Client transactions: INVITE (RFC 3261 §17.1.1 with RFC 6026's Accepted
//! state) and non-INVITE (§17.1.2), the ACK for non-2xx (§17.1.1.3) and
//! CANCEL (§9.1).

use std::time::{Duration, Instant};

use bytes::Bytes;
use bytestring::ByteString;

use super::timer::{Deadlines, Timer};
use super::{
    ClientKey, ClientTransactionId, Event, TransactionError, TransactionId, TransactionLayer,
    Transmit,
};
use crate::message::validate::ValidResponse;
use crate::message::{HeaderName, Method, Request, Via};
use crate::peer::Peer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    /// INVITE "Calling" / non-INVITE "Trying": nothing heard yet.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived (INVITE: a non-2xx, ACKed).
    Completed,
    /// INVITE: a 2xx arrived (RFC 6026).
    Accepted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelState {
    None,
    /// Asked for before any provisional response: sent when one comes.
    Pending,
    Sent,
}

#[derive(Debug)]
pub(crate) struct ClientTransaction {
    key: ClientKey,
    invite: bool,
    /// A CANCEL we sent on our own: its outcome is nobody's business.
    internal: bool,
    state: ClientState,
    peer: Peer,
    /// The request and its bytes, to retransmit and to CANCEL, while no
    /// final response has come. Dropped at the first final response: an
    /// INVITE then waits out Timer M (or D), a non-INVITE Timer K, and
    /// neither needs them, so a finished transaction keeps no copy of the
    /// message (about 1.7 KB for an INVITE with SDP; at 100 calls/s some
    /// 3,600 transactions wait out their timers).
    sent: Option<Sent>,
    ack: Option<Bytes>,
    cancel: CancelState,
    interval: Duration,
    pub(crate) deadlines: Deadlines,
}

/// What a client transaction sent, kept while it may be sent again.
#[derive(Debug)]
struct Sent {
    request: Request,
    bytes: Bytes,
}

impl TransactionLayer {
    /// Starts a client transaction: adds our Via (a fresh branch) and
    /// Max-Forwards when missing, sends `request` to `destination`.
    pub fn send_request(
        &mut self,
        now: Instant,
        mut request: Request,
        destination: Peer,
    ) -> Result<ClientTransactionId, TransactionError> {
        match request.method {
            Method::Ack => return Err(TransactionError::NotATransactionMethod("ACK")),
            Method::Cancel => return Err(TransactionError::NotATransactionMethod("CANCEL")),
            _ => {}
        }
        let branch = self.new_branch();
        self.push_via(&mut request, destination, &branch);
        if !request.headers.contains(&HeaderName::MaxForwards) {
            request.headers.push(HeaderName::MaxForwards, 70);
        }
        let invite = request.method == Method::Invite;
        let key = ClientKey {
            branch: ByteString::from(branch),
            method: request.method.clone(),
        };
        Ok(self.start_client(now, key, request, destination, invite, false))
    }

    /// Sends an ACK for a 2xx (end to end, outside any transaction,
    /// §13.2.2.4) with a fresh branch. Returns the bytes sent, so that the
    /// same ACK can answer each retransmitted 2xx ([`Self::send_raw`]).
    pub fn send_ack(&mut self, mut ack: Request, destination: Peer) -> Bytes {
        let branch = self.new_branch();
        self.push_via(&mut ack, destination, &branch);
        if !ack.headers.contains(&HeaderName::MaxForwards) {
            ack.headers.push(HeaderName::MaxForwards, 70);
        }
        let bytes = ack.encode();
        self.send_raw(destination, bytes.clone());
        bytes
    }

    /// Queues bytes for `destination` outside any transaction.
    pub fn send_raw(&mut self, destination: Peer, bytes: Bytes) {
        self.transmits.push_back(Transmit {
            peer: destination,
            bytes,
            transaction: None,
        });
    }

    /// Cancels a pending INVITE (§9.1). The CANCEL goes out once a
    /// provisional response has arrived; its outcome is handled here.
    pub fn cancel(
        &mut self,
        now: Instant,
        id: ClientTransactionId,
    ) -> Result<(), TransactionError> {
        let transaction = self
            .clients
            .get_mut(&id)
            .ok_or(TransactionError::UnknownTransaction)?;
        if !transaction.invite {
            return Err(TransactionError::NotATransactionMethod(
                "CANCEL of a non-INVITE",
            ));
        }
        match (transaction.state, transaction.cancel) {
            (ClientState::Completed | ClientState::Accepted, _) => {
                Err(TransactionError::TooLateToCancel)
            }
            (_, CancelState::Pending | CancelState::Sent) => Ok(()),
            (ClientState::Calling, CancelState::None) => {
                transaction.cancel = CancelState::Pending;
                Ok(())
            }
            (ClientState::Proceeding, CancelState::None) => {
                self.send_cancel(now, id);
                Ok(())
            }
        }
    }

    fn send_cancel(&mut self, now: Instant, id: ClientTransactionId) {
        let Some(transaction) = self.clients.get_mut(&id) else {
            return;
        };
        let Some(Sent {
            request: invite, ..
        }) = &transaction.sent
        else {
            // A final response came first: nothing is left to cancel.
            return;
        };
        transaction.cancel = CancelState::Sent;
        let mut cancel = Request::new(Method::Cancel, invite.uri.clone());
        for header in invite.headers.iter() {
            match header.name {
                HeaderName::From | HeaderName::To | HeaderName::CallId | HeaderName::Route => {
                    cancel
                        .headers
                        .push_raw(header.name.clone(), header.value.clone());
                }
                _ => {}
            }
        }
        if let Some(via) = invite.headers.get(&HeaderName::Via) {
            cancel
                .headers
                .push_front(HeaderName::Via, String::from_utf8_lossy(via));
        }
        let seq = invite.headers.cseq().map_or(1, |c| c.seq);
        cancel
            .headers
            .push(HeaderName::CSeq, format!("{seq} CANCEL"));
        cancel.headers.push(HeaderName::MaxForwards, 70);
        let key = ClientKey {
            branch: transaction.key.branch.clone(),
            method: Method::Cancel,
        };
        let peer = transaction.peer;
        self.start_client(now, key, cancel, peer, false, true);
    }

    fn start_client(
        &mut self,
        now: Instant,
        key: ClientKey,
        request: Request,
        peer: Peer,
        invite: bool,
        internal: bool,
    ) -> ClientTransactionId {
        let id = ClientTransactionId(self.next_id());
        let bytes = request.encode();
        self.transmits.push_back(Transmit {
            peer,
            bytes: bytes.clone(),
            transaction: Some(id),
        });
        self.client_keys.insert(key.clone(), id);
        let timers = self.config.timers;
        self.clients.insert(
            id,
            Box::new(ClientTransaction {
                key,
                invite,
                internal,
                state: ClientState::Calling,
                peer,
                sent: Some(Sent { request, bytes }),
                ack: None,
                cancel: CancelState::None,
                interval: timers.t1,
                deadlines: Deadlines::default(),
            }),
        );
        let handle = TransactionId::Client(id);
        let (retransmit, timeout) = if invite {
            (Timer::A, Timer::B)
        } else {
            (Timer::E, Timer::F)
        };
        if !peer.transport.is_reliable() {
            self.arm(handle, retransmit, now + timers.t1);
        }
        self.arm(handle, timeout, now + timers.timeout());
        id
    }

    fn new_branch(&mut self) -> String {
        format!(
            "{}{}",
            crate::message::typed::MAGIC_COOKIE,
            self.random_token(20)
        )
    }

    fn push_via(&self, request: &mut Request, destination: Peer, branch: &str) {
        let (host, port) = self.sent_by(destination.transport);
        let via = Via::new(destination.transport.via_transport(), host, port, branch);
        request.headers.push_front(HeaderName::Via, via);
    }

    /// A response arrived from `source` (already validated).
    pub fn handle_response(&mut self, now: Instant, response: ValidResponse, source: Peer) {
        let key = ClientKey {
            branch: ByteString::from(response.via.branch().unwrap_or_default()),
            method: response.cseq.method.clone(),
        };
        let Some(&id) = self.client_keys.get(&key) else {
            if response.response.status.is_success() && response.cseq.method == Method::Invite {
                self.events.push_back(Event::Stray2xx {
                    response: Box::new(response),
                    source,
                });
            }
            return;
        };
        let Some(transaction) = self.clients.get(&id) else {
            return;
        };
        if transaction.invite {
            self.invite_response(now, id, response, source);
        } else {
            self.non_invite_response(now, id, response, source);
        }
    }

    fn invite_response(
        &mut self,
        now: Instant,
        id: ClientTransactionId,
        response: ValidResponse,
        source: Peer,
    ) {
        let timers = self.config.timers;
        let Some(transaction) = self.clients.get_mut(&id) else {
            return;
        };
        let status = response.response.status;
        let handle = TransactionId::Client(id);
        match transaction.state {
            ClientState::Calling | ClientState::Proceeding if status.is_provisional() => {
                transaction.state = ClientState::Proceeding;
                transaction.deadlines.clear(Timer::A);
                transaction.deadlines.clear(Timer::B);
                let cancel_now = transaction.cancel == CancelState::Pending;
                self.events.push_back(Event::Response {
                    transaction: id,
                    response: Box::new(response),
                    source,
                });
                if cancel_now {
                    self.send_cancel(now, id);
                }
            }
            ClientState::Calling | ClientState::Proceeding if status.is_success() => {
                transaction.state = ClientState::Accepted;
                transaction.sent = None;
                transaction.deadlines.clear(Timer::A);
                transaction.deadlines.clear(Timer::B);
                self.arm(handle, Timer::M, now + timers.timeout());
                self.events.push_back(Event::Response {
                    transaction: id,
                    response: Box::new(response),
                    source,
                });
            }
            ClientState::Calling | ClientState::Proceeding => {
                let Some(sent) = transaction.sent.take() else {
                    return;
                };
                let ack = non_2xx_ack(&sent.request, &response);
                let bytes = ack.encode();
                transaction.ack = Some(bytes.clone());
                transaction.state = ClientState::Completed;
                transaction.deadlines.clear(Timer::A);
                transaction.deadlines.clear(Timer::B);
                let peer = transaction.peer;
                self.send_raw(peer, bytes);
                if peer.transport.is_reliable() {
                    self.terminate_client(id);
                } else {
                    self.arm(handle, Timer::D, now + Duration::from_secs(32));
                }
                self.events.push_back(Event::Response {
                    transaction: id,
                    response: Box::new(response),
                    source,
                });
            }
            // Each 2xx copy goes up so the dialog can ACK it again.
            ClientState::Accepted if status.is_success() => {
                self.events.push_back(Event::Response {
                    transaction: id,
                    response: Box::new(response),
                    source,
                });
            }
            ClientState::Completed if status.is_final() && !status.is_success() => {
                if let Some(ack) = transaction.ack.clone() {
                    let peer = transaction.peer;
                    self.send_raw(peer, ack);
                }
            }
            // A 180 overtaken by the 200 (UDP reordering), and the like.
            _ => {}
        }
    }

    fn non_invite_response(
        &mut self,
        now: Instant,
        id: ClientTransactionId,
        response: ValidResponse,
        source: Peer,
    ) {
        let timers = self.config.timers;
        let Some(transaction) = self.clients.get_mut(&id) else {
            return;
        };
        let status = response.response.status;
        if !matches!(
            transaction.state,
            ClientState::Calling | ClientState::Proceeding
        ) {
            return;
        }
        let internal = transaction.internal;
        if status.is_provisional() {
            transaction.state = ClientState::Proceeding;
        } else {
            transaction.state = ClientState::Completed;
            transaction.sent = None;
            transaction.deadlines.clear(Timer::E);
            transaction.deadlines.clear(Timer::F);
            if transaction.peer.transport.is_reliable() {
                self.terminate_client(id);
            } else {
                self.arm(TransactionId::Client(id), Timer::K, now + timers.t4);
            }
        }
        if !internal {
            self.events.push_back(Event::Response {
                transaction: id,
                response: Box::new(response),
                source,
            });
        }
    }

    /// The transport could not send for client transaction `id`.
    pub fn handle_transport_error(&mut self, id: ClientTransactionId) {
        if let Some(transaction) = self.clients.get(&id) {
            let internal = transaction.internal;
            let open = matches!(
                transaction.state,
                ClientState::Calling | ClientState::Proceeding
            );
            let call_id = transaction.call_id();
            self.terminate_client(id);
            if open && !internal {
                self.events.push_back(Event::TransportError {
                    transaction: id,
                    call_id,
                });
            }
        }
    }

    pub(super) fn fire_client_timer(
        &mut self,
        now: Instant,
        id: ClientTransactionId,
        timer: Timer,
    ) {
        let timers = self.config.timers;
        let Some(transaction) = self.clients.get_mut(&id) else {
            return;
        };
        transaction.deadlines.clear(timer);
        let handle = TransactionId::Client(id);
        match timer {
            Timer::A if transaction.state == ClientState::Calling => {
                transaction.interval *= 2;
                let next = now + transaction.interval;
                let Some(bytes) = transaction.sent.as_ref().map(|sent| sent.bytes.clone()) else {
                    return;
                };
                let peer = transaction.peer;
                self.transmits.push_back(Transmit {
                    peer,
                    bytes,
                    transaction: Some(id),
                });
                self.arm(handle, Timer::A, next);
            }
            Timer::E
                if matches!(
                    transaction.state,
                    ClientState::Calling | ClientState::Proceeding
                ) =>
            {
                transaction.interval = if transaction.state == ClientState::Proceeding {
                    timers.t2
                } else {
                    (transaction.interval * 2).min(timers.t2)
                };
                let next = now + transaction.interval;
                let Some(bytes) = transaction.sent.as_ref().map(|sent| sent.bytes.clone()) else {
                    return;
                };
                let peer = transaction.peer;
                self.transmits.push_back(Transmit {
                    peer,
                    bytes,
                    transaction: Some(id),
                });
                self.arm(handle, Timer::E, next);
            }
            Timer::B | Timer::F => {
                let internal = transaction.internal;
                let call_id = transaction.call_id();
                self.terminate_client(id);
                if !internal {
                    self.events.push_back(Event::Timeout {
                        transaction: id,
                        call_id,
                    });
                }
            }
            Timer::D | Timer::K | Timer::M => self.terminate_client(id),
            _ => {}
        }
    }

    fn terminate_client(&mut self, id: ClientTransactionId) {
        if let Some(transaction) = self.clients.remove(&id)
            && self.client_keys.get(&transaction.key) == Some(&id)
        {
            self.client_keys.remove(&transaction.key);
        }
    }
}

/// The ACK for a non-2xx final response (§17.1.1.3): the INVITE's
/// Request-URI, top Via, From, Call-ID and Route; the response's To.
fn non_2xx_ack(invite: &Request, response: &ValidResponse) -> Request {
    let mut ack = Request::new(Method::Ack, invite.uri.clone());
    if let Some(via) = invite.headers.get(&HeaderName::Via) {
        ack.headers.push_raw(HeaderName::Via, top_value(via));
    }
    for header in invite.headers.iter() {
        if matches!(
            header.name,
            HeaderName::From | HeaderName::CallId | HeaderName::Route
        ) {
            ack.headers
                .push_raw(header.name.clone(), header.value.clone());
        }
    }
    if let Some(to) = response.response.headers.get(&HeaderName::To) {
        ack.headers.push_raw(HeaderName::To, to.clone());
    }
    ack.headers
        .push(HeaderName::CSeq, format!("{} ACK", response.cseq.seq));
    ack.headers.push(HeaderName::MaxForwards, 70);
    ack
}

/// Our own Via header holds one value; keep only the first in any case.
fn top_value(via: &Bytes) -> Bytes {
    match memchr::memchr(b',', via) {
        Some(comma) => via.slice(..comma),
        None => via.clone(),
    }
}

impl ClientTransaction {
    /// The request's Call-ID while it is kept (no final response yet: the
    /// only states in which a timeout or a transport error is reported).
    fn call_id(&self) -> ByteString {
        self.sent
            .as_ref()
            .and_then(|sent| sent.request.headers.call_id().ok())
            .unwrap_or_default()
    }
}
