//! The browser phone's SIP user agent, sans-IO: what a softphone does on
//! the SIP side, driven by the page's buttons instead of a keypad.
//!
//! It answers the daemon's INVITE for one call at a time (a second one
//! while busy gets 486), rings the page, answers 200 with our plain-RTP
//! session when the page answers, and ends, holds (re-INVITE `sendonly`)
//! and transfers (REFER, `Refer-Sub: false`) as a SIP phone does. When the
//! page is gone, a ringing call is refused 480 (routing offers the patient
//! to the next agent) and a call in progress is sent back to its queue with
//! a blind transfer to it: the patient hears the queue's hold prompt and
//! keeps their place, ahead of callers who came later.
//!
//! Inputs: [`PhoneUa::sip`] (the daemon's requests and the answers to
//! ours), [`PhoneUa::page`] (the page's messages), [`PhoneUa::page_gone`].
//! Outputs: [`PhoneUa::poll_action`]. No clock: every deadline is the
//! daemon's (its ring timeout, its transaction timers).

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytestring::ByteString;
use call::signal;
use media::codec::Codec;
use media::sdp::{self, Direction, LocalMedia, SessionDescription};
use serde_json::{Value, json};
use sip::Peer;
use sip::dialog::Dialog;
use sip::message::validate::ValidRequest;
use sip::message::{HeaderName, Method, Request, StatusCode};
use sip::transaction::{Event, ServerTransactionId};
use tracing::{debug, info};

/// The page's messages about a call (phone-protocol.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageCommand {
    /// Pick up the ringing call.
    Answer(String),
    /// Refuse the ringing call.
    Decline(String),
    /// End the call.
    Hangup(String),
    /// Hold (`true`) or resume.
    Hold(String, bool),
    /// Send the patient to a queue or an agent.
    Transfer(String, String),
}

/// What the UA asks its driver to do.
#[derive(Debug, Clone)]
pub enum UaAction {
    /// Answer on a server transaction.
    Respond {
        /// The transaction.
        transaction: ServerTransactionId,
        /// The response.
        response: sip::message::Response,
    },
    /// Send a request (a new client transaction).
    Send {
        /// The request.
        request: Request,
        /// Where.
        peer: Peer,
    },
    /// Send the ACK for a 2xx to our re-INVITE.
    Ack {
        /// The ACK.
        request: Request,
        /// Where.
        peer: Peer,
    },
    /// Route this Call-ID's SIP events to this phone.
    Route(ByteString),
    /// Stop routing it.
    Unroute(ByteString),
    /// A message for the page.
    Page(Value),
    /// The call's RTP goes to this address (the daemon's relay), or
    /// nowhere (`None`: no call).
    Media(Option<SocketAddr>),
}

#[derive(Debug)]
enum Phase {
    /// The page rings.
    Ringing,
    /// Answered with 200; the ACK has not come yet.
    Answered,
    /// Talking.
    Up,
}

#[derive(Debug)]
struct UaCall {
    /// The page's name for it.
    id: String,
    call_id: ByteString,
    transaction: ServerTransactionId,
    invite: Box<ValidRequest>,
    source: Peer,
    local_tag: String,
    local: LocalMedia,
    dialog: Option<Dialog>,
    /// The daemon's RTP address for this call.
    remote: Option<SocketAddr>,
    /// The queue the patient came from (`X-Frontdesk-Queue`).
    queue: Option<String>,
    held: bool,
    /// A transfer was asked: the daemon's BYE ends it.
    transferring: bool,
    phase: Phase,
}

/// One browser phone's SIP side. See the module docs.
#[derive(Debug)]
pub struct PhoneUa {
    /// The gateway's SIP address (our Contact).
    contact: String,
    /// Our RTP address toward the daemon's relay.
    rtp: SocketAddr,
    /// The browser's codec: the only one we answer with, so RTP passes
    /// between the relay and the browser untouched.
    codec: Codec,
    call: Option<UaCall>,
    calls: u64,
    tags: u64,
    actions: VecDeque<UaAction>,
}

impl PhoneUa {
    /// A phone whose Contact is `contact` (`sip:user@host:port`), whose
    /// RTP toward the relay is at `rtp`, speaking `codec`. `seed` makes its
    /// tags distinct from another phone's.
    pub fn new(contact: String, rtp: SocketAddr, codec: Codec, seed: u64) -> PhoneUa {
        PhoneUa {
            contact,
            rtp,
            codec,
            call: None,
            calls: 0,
            tags: seed,
            actions: VecDeque::new(),
        }
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<UaAction> {
        self.actions.pop_front()
    }

    fn push(&mut self, action: UaAction) {
        self.actions.push_back(action);
    }

    fn tag(&mut self) -> String {
        self.tags = self
            .tags
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        format!("b{:016x}", self.tags)
    }

    fn page_message(&mut self, value: Value) {
        self.push(UaAction::Page(value));
    }

    /// A SIP event for this phone (from the daemon only: the driver drops
    /// any other source).
    pub fn sip(&mut self, event: Event) {
        match event {
            Event::Request {
                transaction,
                request,
                source,
            } => self.request(transaction, request, source),
            Event::Ack { .. } | Event::StrayAck { .. } => {
                if let Some(call) = self.call.as_mut()
                    && matches!(call.phase, Phase::Answered)
                {
                    call.phase = Phase::Up;
                }
            }
            Event::Cancelled { call_id, .. } => {
                if self.call.as_ref().is_some_and(|c| c.call_id == call_id) {
                    info!("the call stopped ringing (cancelled)");
                    self.end_call(json!("stopped"), Some("cancelled"));
                }
            }
            Event::AckTimeout { call_id, .. } => {
                if self.call.as_ref().is_some_and(|c| c.call_id == call_id) {
                    self.bye();
                    self.end_call(json!("ended"), None);
                }
            }
            Event::Response {
                response, source, ..
            }
            | Event::Stray2xx { response, source } => {
                // The answer to our re-INVITE (hold) is ACKed; the rest
                // (BYE, REFER) needs nothing.
                if response.cseq.method == Method::Invite
                    && response.response.status.is_success()
                    && let Some(dialog) = self.call.as_ref().and_then(|c| c.dialog.as_ref())
                {
                    let ack = dialog.ack(response.cseq.seq);
                    self.push(UaAction::Ack {
                        request: ack,
                        peer: source,
                    });
                }
            }
            Event::Timeout { .. } | Event::TransportError { .. } => {}
        }
    }

    fn request(
        &mut self,
        transaction: ServerTransactionId,
        request: Box<ValidRequest>,
        source: Peer,
    ) {
        let headers = &request.request.headers;
        let ours = self
            .call
            .as_ref()
            .is_some_and(|call| call.call_id == request.call_id);
        match request.request.method {
            Method::Invite if !ours => self.incoming(transaction, request, source),
            Method::Invite => self.reinvite(transaction, &request),
            Method::Bye if ours => {
                let tag = self
                    .call
                    .as_ref()
                    .map(|c| c.local_tag.clone())
                    .unwrap_or_default();
                self.push(UaAction::Respond {
                    transaction,
                    response: signal::response(headers, StatusCode::OK, &tag),
                });
                info!("the call ended (the daemon's BYE)");
                self.end_call(json!("ended"), None);
            }
            Method::Info | Method::Notify | Method::Options if ours => {
                let tag = self
                    .call
                    .as_ref()
                    .map(|c| c.local_tag.clone())
                    .unwrap_or_default();
                self.push(UaAction::Respond {
                    transaction,
                    response: signal::response(headers, StatusCode::OK, &tag),
                });
            }
            _ => {
                let status = if ours {
                    StatusCode::METHOD_NOT_ALLOWED
                } else {
                    StatusCode::CALL_DOES_NOT_EXIST
                };
                self.push(UaAction::Respond {
                    transaction,
                    response: signal::response(headers, status, ""),
                });
            }
        }
    }

    /// A new call: ring the page, or 486 while another rings or is up.
    fn incoming(
        &mut self,
        transaction: ServerTransactionId,
        request: Box<ValidRequest>,
        source: Peer,
    ) {
        let headers = &request.request.headers;
        let tag = self.tag();
        if self.call.is_some() {
            self.push(UaAction::Respond {
                transaction,
                response: signal::response(headers, StatusCode::BUSY_HERE, &tag),
            });
            return;
        }
        let mut local = LocalMedia::new(self.rtp.ip(), self.rtp.port(), self.tags & 0xffff_ffff);
        local.codecs = vec![self.codec];
        local.telephone_event = None;
        let from = request
            .from
            .display
            .as_ref()
            .map(|display| display.text().into_owned())
            .unwrap_or_default();
        let queue = headers
            .get(&HeaderName::Other(ByteString::from_static(
                signal::QUEUE_HEADER,
            )))
            .map(|value| String::from_utf8_lossy(value).trim().to_string())
            .filter(|queue| !queue.is_empty() && queue.len() <= 64);
        self.calls += 1;
        let id = format!("p{}", self.calls);
        let call_id = request.call_id.clone();
        let ringing = signal::dialog_response(
            headers,
            StatusCode::RINGING,
            &tag,
            Some(&self.contact),
            None,
        );
        self.push(UaAction::Route(call_id.clone()));
        self.push(UaAction::Respond {
            transaction,
            response: ringing,
        });
        info!(call = %id, "the page rings");
        self.page_message(json!({"type": "ringing", "call": id, "from": from}));
        self.call = Some(UaCall {
            id,
            call_id,
            transaction,
            invite: request,
            source,
            local_tag: tag,
            local,
            dialog: None,
            remote: None,
            queue,
            held: false,
            transferring: false,
            phase: Phase::Ringing,
        });
    }

    /// A re-INVITE of our call: the same session again (the daemon's hold
    /// or refresh), with the direction the offer asks for.
    fn reinvite(&mut self, transaction: ServerTransactionId, request: &ValidRequest) {
        let contact = self.contact.clone();
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let headers = &request.request.headers;
        if let Some(dialog) = call.dialog.as_mut() {
            let _ = dialog.receive(request);
        }
        call.local.session_version += 1;
        let answer = answer_offer(&request.request, &call.local);
        let response = match answer {
            Ok(answer) => {
                call.remote = answer.media.remote;
                let remote = call.remote;
                let response = signal::dialog_response(
                    headers,
                    StatusCode::OK,
                    &call.local_tag,
                    Some(&contact),
                    Some(answer.description.to_string()),
                );
                self.push(UaAction::Media(remote));
                response
            }
            Err(error) => {
                let status =
                    StatusCode::new(error.sip_status()).unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE);
                signal::response(headers, status, &call.local_tag)
            }
        };
        self.push(UaAction::Respond {
            transaction,
            response,
        });
    }

    /// A message of the page's.
    pub fn page(&mut self, command: PageCommand) {
        let current = self.call.as_ref().map(|call| call.id.clone());
        let matches = |id: &str| current.as_deref() == Some(id);
        match command {
            PageCommand::Answer(id) if matches(&id) => self.answer(),
            PageCommand::Decline(id) if matches(&id) => self.refuse(StatusCode::DECLINE),
            PageCommand::Hangup(id) if matches(&id) => {
                if self
                    .call
                    .as_ref()
                    .is_some_and(|c| matches!(c.phase, Phase::Ringing))
                {
                    self.refuse(StatusCode::DECLINE);
                } else {
                    self.bye();
                    self.end_call(json!("ended"), None);
                }
            }
            PageCommand::Hold(id, on) if matches(&id) => self.hold(on),
            PageCommand::Transfer(id, to) if matches(&id) => self.transfer(&to, None),
            other => debug!(?other, "a page command for no current call: ignored"),
        }
    }

    /// The page is gone (closed, or its connection lost): a ringing call
    /// is refused so the next agent gets it; a call in progress goes back
    /// to its queue.
    pub fn page_gone(&mut self) {
        let Some(call) = self.call.as_ref() else {
            return;
        };
        match call.phase {
            Phase::Ringing => {
                info!("the page is gone while ringing: 480");
                self.refuse(StatusCode::TEMPORARILY_UNAVAILABLE);
            }
            Phase::Answered | Phase::Up => match call.queue.clone() {
                Some(queue) if !call.transferring => {
                    info!(%queue, "the page is gone during the call: the patient goes back to the queue");
                    self.transfer(&queue, Some("the agent's browser phone was lost"));
                }
                _ => {
                    self.bye();
                    self.end_call(json!("ended"), None);
                }
            },
        }
    }

    fn answer(&mut self) {
        let contact = self.contact.clone();
        let Some(call) = self.call.as_mut() else {
            return;
        };
        if !matches!(call.phase, Phase::Ringing) {
            return;
        }
        let headers = &call.invite.request.headers;
        let answer = answer_offer(&call.invite.request, &call.local);
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                info!(%error, "the daemon's offer cannot be answered");
                let status =
                    StatusCode::new(error.sip_status()).unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE);
                self.refuse(status);
                return;
            }
        };
        let dialog = Dialog::uas(&call.invite, &call.local_tag, call.source).ok();
        let ok = signal::dialog_response(
            headers,
            StatusCode::OK,
            &call.local_tag,
            Some(&contact),
            Some(answer.description.to_string()),
        );
        call.dialog = dialog;
        call.remote = answer.media.remote;
        call.phase = Phase::Answered;
        let (transaction, id, remote) = (call.transaction, call.id.clone(), call.remote);
        self.push(UaAction::Respond {
            transaction,
            response: ok,
        });
        self.push(UaAction::Media(remote));
        info!(call = %id, "answered on the page");
        self.page_message(json!({"type": "connected", "call": id}));
    }

    /// A final refusal of the ringing call.
    fn refuse(&mut self, status: StatusCode) {
        let Some(call) = self.call.as_ref() else {
            return;
        };
        if !matches!(call.phase, Phase::Ringing) {
            return;
        }
        let response = signal::response(&call.invite.request.headers, status, &call.local_tag);
        let transaction = call.transaction;
        self.push(UaAction::Respond {
            transaction,
            response,
        });
        self.end_call(json!("stopped"), Some("declined"));
    }

    fn bye(&mut self) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        if let Some(dialog) = call.dialog.as_mut() {
            let request = dialog.request(Method::Bye);
            let peer = dialog.peer;
            self.push(UaAction::Send { request, peer });
        }
    }

    fn hold(&mut self, on: bool) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        if call.held == on || call.transferring {
            return;
        }
        let Some(dialog) = call.dialog.as_mut() else {
            return;
        };
        call.held = on;
        call.local.direction = if on {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        call.local.session_version += 1;
        let mut request = dialog.request(Method::Invite);
        request
            .headers
            .push(HeaderName::Contact, self.contact.clone());
        request
            .headers
            .push(HeaderName::ContentType, "application/sdp");
        request.body = bytes::Bytes::from(sdp::create_offer(&call.local).to_string());
        let peer = dialog.peer;
        let id = call.id.clone();
        self.push(UaAction::Send { request, peer });
        self.page_message(json!({"type": "held", "call": id, "on": on}));
    }

    /// A blind transfer to `to` (a queue or an agent), with `reason` in
    /// the `Reason` header when given.
    fn transfer(&mut self, to: &str, reason: Option<&str>) {
        let valid = !to.is_empty()
            && to.len() <= 64
            && to
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let Some(dialog) = call.dialog.as_mut() else {
            return;
        };
        if !valid || call.transferring {
            let id = call.id.clone();
            self.page_message(json!({"type": "transferred", "call": id, "ok": false}));
            return;
        }
        call.transferring = true;
        let mut request = dialog.request(Method::Refer);
        let host = dialog.remote_target.to_string();
        // The daemon's Contact names its host and port; the user part is
        // the queue or agent.
        let host_port = host
            .trim_start_matches("sip:")
            .rsplit_once('@')
            .map_or(host.trim_start_matches("sip:"), |(_, rest)| rest)
            .to_string();
        request
            .headers
            .push(HeaderName::ReferTo, format!("<sip:{to}@{host_port}>"));
        request.headers.push(
            HeaderName::Other(ByteString::from_static("Refer-Sub")),
            "false",
        );
        request
            .headers
            .push(HeaderName::Contact, self.contact.clone());
        if let Some(reason) = reason {
            request.headers.push(HeaderName::Subject, reason);
            // Back in the patient's first place, not after their wait.
            request.headers.push(
                HeaderName::Other(ByteString::from_static(signal::REQUEUE_HEADER)),
                "lost",
            );
        }
        let peer = dialog.peer;
        let id = call.id.clone();
        self.push(UaAction::Send { request, peer });
        self.page_message(json!({"type": "transferred", "call": id, "ok": true}));
    }

    /// The call is over: the page hears `kind` (`stopped` or `ended`).
    fn end_call(&mut self, kind: Value, reason: Option<&str>) {
        let Some(call) = self.call.take() else {
            return;
        };
        self.push(UaAction::Unroute(call.call_id));
        self.push(UaAction::Media(None));
        let mut message = json!({"type": kind, "call": call.id});
        if let Some(reason) = reason {
            message["reason"] = json!(reason);
        }
        self.page_message(message);
    }
}

/// Our answer (`local`, in the browser's codec) to the SDP offer that
/// `request` carries: the daemon's INVITE or re-INVITE.
fn answer_offer(request: &Request, local: &LocalMedia) -> Result<sdp::Answer, media::SdpError> {
    signal::sdp_body(&request.headers, &request.body)
        .ok_or(media::SdpError::NoAudio)
        .and_then(|body| SessionDescription::parse(&body))
        .and_then(|offer| sdp::create_answer(&offer, local))
}

#[cfg(test)]
mod tests;
