//! The answers to the originate's INVITEs, and the requests that come in
//! its two dialogs (BYE, re-INVITE, the rest).

use std::time::Instant;

use media::sdp::{self, SessionDescription};
use media::session::Leg;
use sip::dialog::Dialog;
use sip::message::validate::{ValidRequest, ValidResponse};
use sip::message::{Method, StatusCode};
use sip::transaction::ServerTransactionId;
use tracing::{debug, info, warn};

use super::{
    EndedBy, Failure, LegState, Originate, OriginateAction, OriginateMedia, Progress, Side,
    unreachable_of,
};

impl Originate {
    // ---- responses -----------------------------------------------------

    pub(super) fn on_response(&mut self, now: Instant, side: Side, response: &ValidResponse) {
        let status = response.response.status;
        if response.cseq.method != Method::Invite || status.is_provisional() {
            return;
        }
        if status.is_success() {
            self.on_success(now, side, response);
            return;
        }
        let leg = self.leg_mut(side);
        match leg.state {
            LegState::Inviting => {}
            LegState::Cancelling => {
                leg.state = LegState::Done;
                return;
            }
            _ => return,
        }
        // A final answer to an INVITE that is not ours now (an earlier
        // transaction of the challenged INVITE) changes nothing.
        if leg
            .invite
            .as_ref()
            .and_then(|i| i.headers.cseq().ok())
            .map(|c| c.seq)
            != Some(response.cseq.seq)
        {
            return;
        }
        let code = status.as_u16();
        let failure = match side {
            Side::Agent => match code {
                486 | 600 => Failure::AgentBusy,
                603 => Failure::AgentDeclined,
                408 | 480 | 487 => Failure::AgentNoAnswer,
                _ => Failure::AgentUnreachable,
            },
            Side::Patient => {
                if matches!(code, 401 | 407) && self.answer_challenge(response) {
                    return;
                }
                match code {
                    401 | 407 => Failure::TrunkAuthFailed,
                    486 | 600 | 603 => Failure::PatientBusy,
                    408 | 480 | 487 => Failure::PatientNoAnswer,
                    _ => Failure::TrunkRefused(code),
                }
            }
        };
        info!(%status, leg = ?side, "the outbound call was refused");
        self.leg_mut(side).state = LegState::Done;
        self.fail(now, failure);
    }

    fn on_success(&mut self, now: Instant, side: Side, response: &ValidResponse) {
        let seq = response.cseq.seq;
        let over = self.result.is_some();
        let leg = self.leg_mut(side);
        match leg.state {
            LegState::Up => {
                // A retransmitted 2xx: the same ACK again.
                if let Some(ack) = leg.ack.clone() {
                    let peer = leg.peer;
                    self.push(OriginateAction::Ack { request: ack, peer });
                }
                return;
            }
            LegState::Inviting if !over => {}
            _ => {
                // Crossed our CANCEL, or too late: ACK, then BYE (RFC 3261 §15).
                self.ack_and_bye(side, response);
                return;
            }
        }
        let peer = leg.peer;
        let dialog = leg
            .invite
            .as_ref()
            .ok_or(sip::dialog::DialogError::NoContact)
            .and_then(|invite| Dialog::uac(invite, response, peer));
        let dialog = match dialog {
            Ok(dialog) => dialog,
            Err(error) => {
                warn!(%error, leg = ?side, "a 200 with no usable dialog");
                leg.state = LegState::Done;
                self.fail(now, unreachable_of(side));
                return;
            }
        };
        let ack = dialog.ack(seq);
        self.push(OriginateAction::Ack {
            request: ack.clone(),
            peer,
        });
        let leg = self.leg_mut(side);
        let negotiated = match (leg.offer.as_ref(), leg.local.as_ref()) {
            (Some(offer), Some(local)) => {
                crate::signal::sdp_body(&response.response.headers, &response.response.body)
                    .ok_or(media::SdpError::NoAudio)
                    .and_then(|body| SessionDescription::parse(&body))
                    .and_then(|answer| sdp::accept_answer(offer, &answer, local))
            }
            _ => Err(media::SdpError::NoAudio),
        };
        leg.dialog = Some(dialog);
        leg.ack = Some(ack);
        leg.state = LegState::Up;
        leg.deadline = None;
        let port = leg.port.take();
        let (negotiated, port) = match (negotiated, port) {
            (Ok(negotiated), Some(port)) => (negotiated, port),
            (Err(error), port) => {
                warn!(%error, leg = ?side, "the SDP answer is not usable");
                if let Some(port) = port {
                    self.push(OriginateAction::ReleasePort { token: port });
                }
                self.fail(now, unreachable_of(side));
                return;
            }
            (Ok(_), None) => {
                self.fail(now, unreachable_of(side));
                return;
            }
        };
        match side {
            Side::Agent => {
                self.push(OriginateAction::Media(OriginateMedia::StartAgent {
                    port,
                    media: negotiated,
                }));
                self.push(OriginateAction::Report(Progress::AgentAnswered));
                self.agent_answered(now);
            }
            Side::Patient => {
                if self.ringback.take().is_some() {
                    self.push(OriginateAction::Media(OriginateMedia::StopAgent));
                }
                self.push(OriginateAction::Media(OriginateMedia::AddPatient {
                    port,
                    media: negotiated,
                }));
                self.push(OriginateAction::Media(OriginateMedia::Bridge));
                self.connected = true;
                self.push(OriginateAction::Report(Progress::PatientAnswered));
                info!("the patient answered: bridged");
            }
        }
    }

    fn ack_and_bye(&mut self, side: Side, response: &ValidResponse) {
        let leg = self.leg_mut(side);
        let peer = leg.peer;
        let dialog = leg
            .invite
            .as_ref()
            .and_then(|invite| Dialog::uac(invite, response, peer).ok());
        if leg.state != LegState::Up {
            leg.state = LegState::Done;
        }
        if let Some(mut dialog) = dialog {
            self.push(OriginateAction::Ack {
                request: dialog.ack(response.cseq.seq),
                peer,
            });
            self.push(OriginateAction::Send {
                request: dialog.request(Method::Bye),
                peer,
                token: None,
            });
        }
    }

    // ---- requests in the dialogs ---------------------------------------

    pub(super) fn on_request(
        &mut self,
        now: Instant,
        side: Side,
        transaction: ServerTransactionId,
        request: &ValidRequest,
    ) {
        let headers = &request.request.headers;
        let local_tag = self.leg(side).local_tag();
        let respond = |this: &mut Originate, status: StatusCode| {
            this.push(OriginateAction::Respond {
                transaction,
                response: crate::signal::response(headers, status, &local_tag),
            });
        };
        let Some(dialog) = self.leg_mut(side).dialog.as_mut() else {
            respond(self, StatusCode::CALL_DOES_NOT_EXIST);
            return;
        };
        if let Err(error) = dialog.receive(request) {
            debug!(%error, "in-dialog request refused");
            respond(self, StatusCode::SERVER_INTERNAL_ERROR);
            return;
        }
        match request.request.method {
            Method::Bye => {
                respond(self, StatusCode::OK);
                self.leg_mut(side).state = LegState::Done;
                match (side, self.connected) {
                    (Side::Agent, true) => self.end(now, EndedBy::Agent),
                    (Side::Patient, true) => self.end(now, EndedBy::Patient),
                    (Side::Agent, false) => {
                        info!("the agent hung up before the patient answered");
                        self.fail(now, Failure::AgentHungUp);
                    }
                    // A BYE from the trunk before its 200 was ACKed: over.
                    (Side::Patient, false) => self.fail(now, Failure::TrunkUnreachable),
                }
            }
            Method::Invite => self.on_reinvite(side, transaction, request, &local_tag),
            Method::Info | Method::Notify | Method::Options | Method::Update => {
                respond(self, StatusCode::OK);
            }
            _ => respond(self, StatusCode::METHOD_NOT_ALLOWED),
        }
    }

    /// A re-INVITE (hold, a new address): answered with our session again.
    fn on_reinvite(
        &mut self,
        side: Side,
        transaction: ServerTransactionId,
        request: &ValidRequest,
        local_tag: &str,
    ) {
        let headers = &request.request.headers;
        let contact = self.config.contact_for(self.leg(side).peer.transport);
        let leg = self.leg_mut(side);
        let answer = match leg.local.as_mut() {
            Some(local) => {
                local.session_version += 1;
                match crate::signal::sdp_body(headers, &request.request.body) {
                    Some(body) => SessionDescription::parse(&body)
                        .and_then(|offer| sdp::create_answer(&offer, local))
                        .map(Some),
                    None => Ok(None),
                }
            }
            None => Err(media::SdpError::NoAudio),
        };
        let (status, sdp, media) = match answer {
            Ok(Some(answer)) => (
                StatusCode::OK,
                Some(answer.description.to_string()),
                Some(answer.media),
            ),
            Ok(None) => {
                let offer = leg.local.as_ref().map(|l| sdp::create_offer(l).to_string());
                (StatusCode::OK, offer, None)
            }
            Err(error) => (
                StatusCode::new(error.sip_status()).unwrap_or(StatusCode::NOT_ACCEPTABLE_HERE),
                None,
                None,
            ),
        };
        let response = if status == StatusCode::OK {
            crate::signal::dialog_response(headers, status, local_tag, Some(&contact), sdp)
        } else {
            crate::signal::response(headers, status, local_tag)
        };
        if let Some(media) = media {
            let leg = match side {
                Side::Agent => Leg::Agent,
                Side::Patient => Leg::Caller,
            };
            self.push(OriginateAction::Media(OriginateMedia::UpdateLeg {
                leg,
                media,
            }));
        }
        self.push(OriginateAction::Respond {
            transaction,
            response,
        });
    }
}
