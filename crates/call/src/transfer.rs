//! Transfers by the agent on the call (RFC 3515 REFER).
//!
//! The agent's phone sends REFER on its leg with `Refer-To` naming a queue
//! (`<sip:cardiology@clinic>`) or an agent (`<sip:1002@clinic>`, or that
//! agent's registered contact). Routing is asked to move the call
//! ([`RouterRequest::Transfer`]); on its answer we answer the REFER 202 (or
//! the refusal) and NOTIFY the agent leg of the progress (`Event: refer`,
//! `message/sipfrag` bodies: `SIP/2.0 100 Trying` at once, then `SIP/2.0
//! 200 OK` when someone in the target answers, or the failure), unless the
//! phone asked for no reports (`Refer-Sub: false`, RFC 4488). Meanwhile the
//! patient is unbridged and waits in the target queue with hold music and
//! announcements: routing keeps their priority and the wait they had
//! before the first answer ([`routing::Router::transfer`]); a transfer to
//! an agent offers that agent alone for [`DIRECT_WINDOW`], then anyone in
//! the queue. The transferring agent goes to wrap-up at once; their leg is
//! ended with BYE once the outcome is notified (or when they hang up
//! first).
//!
//! A transfer to an agent is recorded in the queue the call was in when
//! that agent serves it, else in the first queue (in dialplan order) they
//! serve: its max wait and overflow apply if the agent does not answer.
//!
//! Attended transfer: a `Refer-To` carrying `?Replaces=…` (RFC 3891 §4.1)
//! names the agent to reach and the consultation dialog on their phone;
//! the INVITE to that agent carries the `Replaces` header, so their phone
//! swaps the consultation call for the patient. frontdesk does not route
//! agent-to-agent calls itself, so the consultation call is one the phones
//! hold between them; an INVITE with `Replaces` sent *to* frontdesk (a
//! third party taking over one of our legs) is answered 501 by the daemon.
//!
//! Every transfer is on the call's record ([`TransferRecord`]): the
//! record's `department`, `agent` and `connected_at` then describe the new
//! queue (a patient who hangs up before the target answers is `abandoned`
//! there), `wait_ms` adds the waits up.

use std::time::{Duration, Instant};

use media::session::Leg;
use routing::{AgentId, DirectOffer, EnqueueError, Enqueued, QueueId};
use sip::message::validate::ValidRequest;
use sip::message::{HeaderName, Headers, Method, StatusCode};
use sip::transaction::ServerTransactionId;
use tracing::{debug, info, warn};

use crate::action::{Action, MediaAction, RouterRequest};
use crate::call::{Call, Environment};
use crate::queue::Waiting;
use crate::record::TransferRecord;
use crate::signal::{self, ReferTarget};

/// How long a transfer to a named agent waits for that agent alone.
pub const DIRECT_WINDOW: Duration = Duration::from_secs(30);

/// How long the REFER's implicit subscription lasts (the `expires` of our
/// NOTIFYs); a transfer still undecided then is reported `terminated`.
const SUBSCRIPTION: Duration = Duration::from_secs(300);

/// A transfer in progress: the transferring agent's leg is still up to
/// hear how it ends.
#[derive(Debug)]
pub(crate) struct Transfer {
    /// The transferring agent's leg.
    leg: usize,
    /// NOTIFY progress to that leg (no `Refer-Sub: false`).
    notify: bool,
    /// The agent the transfer named.
    target_agent: Option<AgentId>,
    /// `Replaces` for the INVITE to that agent (attended transfer).
    replaces: Option<String>,
    /// When the implicit subscription ends.
    expires_at: Instant,
    /// The REFER, until routing has answered.
    pending: Option<PendingRefer>,
}

/// A REFER routing has not answered yet.
#[derive(Debug)]
struct PendingRefer {
    transaction: ServerTransactionId,
    headers: Headers,
    kind: &'static str,
}

/// Where a REFER sends the patient.
struct Destination {
    queue: QueueId,
    agent: Option<AgentId>,
}

impl Call {
    /// A REFER on the agent leg `index`, bridged to the patient: routing is
    /// asked to move the call.
    pub(crate) fn on_refer(
        &mut self,
        now: Instant,
        index: usize,
        transaction: ServerTransactionId,
        request: &ValidRequest,
        env: &dyn Environment,
    ) {
        let headers = &request.request.headers;
        let tag = self.legs.local_tag(index);
        let refuse = |call: &mut Call, status: StatusCode| {
            call.push(Action::Respond {
                transaction,
                response: signal::response(headers, status, &tag),
            });
        };
        if self.transfer.is_some() {
            refuse(self, StatusCode::REQUEST_PENDING);
            return;
        }
        let Some(target) = signal::refer_to(headers) else {
            refuse(self, StatusCode::BAD_REQUEST);
            return;
        };
        let Some(destination) = self.destination(&target, env) else {
            info!(user = ?target.user, "transfer refused: no such queue or agent");
            refuse(self, StatusCode::NOT_FOUND);
            return;
        };
        let direct = destination.agent.clone().map(|agent| DirectOffer {
            agent,
            window: DIRECT_WINDOW,
        });
        let kind = if target.replaces.is_some() {
            "attended"
        } else {
            "blind"
        };
        self.transfer = Some(Transfer {
            leg: index,
            notify: !signal::refer_sub_off(headers),
            target_agent: destination.agent,
            replaces: target.replaces,
            expires_at: now + SUBSCRIPTION,
            pending: Some(PendingRefer {
                transaction,
                headers: headers.clone(),
                kind,
            }),
        });
        let keep_place = direct.is_none()
            && headers
                .get(&HeaderName::Other(bytestring::ByteString::from_static(
                    signal::REQUEUE_HEADER,
                )))
                .is_some();
        self.router(RouterRequest::Transfer {
            queue: destination.queue,
            direct,
            keep_place,
        });
    }

    /// Routing's answer to the transfer: the REFER is accepted and the
    /// patient waits in the target, or it is refused.
    pub(crate) fn transfer_routed(
        &mut self,
        now: Instant,
        result: Option<Result<Enqueued, EnqueueError>>,
        env: &dyn Environment,
    ) {
        let Some(transfer) = self.transfer.as_mut() else {
            return;
        };
        let Some(pending) = transfer.pending.take() else {
            return;
        };
        let index = transfer.leg;
        let notify = transfer.notify;
        let tag = self.legs.local_tag(index);
        let enqueued = match result {
            Some(Ok(enqueued)) => enqueued,
            refused => {
                let status = match refused {
                    Some(Err(EnqueueError::UnknownQueue(_))) => StatusCode::NOT_FOUND,
                    Some(Err(EnqueueError::Refused { .. })) => StatusCode::TEMPORARILY_UNAVAILABLE,
                    Some(Err(_)) => StatusCode::FORBIDDEN,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                };
                match &refused {
                    Some(Err(error)) => info!(%error, "transfer refused by routing"),
                    _ => warn!("transfer impossible: routing has stopped"),
                }
                self.transfer = None;
                self.push(Action::Respond {
                    transaction: pending.transaction,
                    response: signal::response(&pending.headers, status, &tag),
                });
                return;
            }
        };
        let mut accepted = signal::response(&pending.headers, StatusCode::ACCEPTED, &tag);
        if !notify {
            accepted.headers.push(
                HeaderName::Other(bytestring::ByteString::from_static("Refer-Sub")),
                "false",
            );
        }
        self.push(Action::Respond {
            transaction: pending.transaction,
            response: accepted,
        });
        let from_agent = self.legs.agent_of(index).to_string();
        let target_agent = self
            .transfer
            .as_ref()
            .and_then(|transfer| transfer.target_agent.clone());
        let reason = [HeaderName::Reason, HeaderName::Subject]
            .iter()
            .find_map(|name| pending.headers.get(name))
            .map(|value| String::from_utf8_lossy(value).trim().to_string())
            .unwrap_or_else(|| {
                format!(
                    "agent {from_agent} transferred to {}",
                    target_agent
                        .as_ref()
                        .map_or(enqueued.queue.as_str(), AgentId::as_str)
                )
            });
        info!(
            from = %from_agent,
            to = %enqueued.queue,
            agent = ?target_agent.as_ref().map(AgentId::as_str),
            kind = pending.kind,
            "call transferred"
        );
        self.notify_transfer(now, "SIP/2.0 100 Trying");
        // The patient leaves the agent: unbridged, off hold, back in line.
        self.legs.set_transferred(index);
        self.media(MediaAction::Unbridge);
        self.media(MediaAction::RemoveLeg { leg: Leg::Agent });
        if self
            .caller
            .local
            .as_ref()
            .is_some_and(|local| local.direction != media::sdp::Direction::SendRecv)
        {
            self.pass_hold_to_caller(false);
        }
        let waited = Duration::from_millis(self.record.wait_ms.unwrap_or(0));
        self.journal(records::CallEvent::Transferred {
            to: enqueued.queue.as_str().to_string(),
            reason: Some(pending.kind.to_string()),
            to_agent: target_agent
                .as_ref()
                .map(|agent| agent.as_str().to_string()),
            note: Some(reason.clone()),
        });
        self.journal_queued(&enqueued.queue, enqueued.priority, env);
        let at = self.wall(now);
        self.record.transfers.push(TransferRecord {
            from_agent,
            from_department: self.record.department.clone(),
            connected_at: self.record.connected_at,
            to_department: enqueued.queue.as_str().to_string(),
            to_agent: target_agent.map(|agent| agent.as_str().to_string()),
            kind: pending.kind,
            reason,
            at,
        });
        self.record.department = Some(enqueued.queue.as_str().to_string());
        self.record.priority = enqueued.priority;
        self.record.agent = None;
        self.record.connected_at = None;
        self.waiting = Some(Waiting {
            // Transferred by an agent: the caller has reached someone, so
            // hanging up now is no lost lead.
            abandoned_lead_after: None,
            callback_offer_after: None,
            queue: enqueued.queue,
            priority: enqueued.priority,
            since: now.checked_sub(waited).unwrap_or(now),
            next_announcement: None,
        });
        self.publish();
        self.start_hold(now, env);
    }

    /// The queue and agent a `Refer-To` names: a queue id, an agent id, or
    /// an agent's registered contact.
    fn destination(&self, target: &ReferTarget, env: &dyn Environment) -> Option<Destination> {
        let plan = env.plan();
        let user = target.user.as_deref().unwrap_or_default();
        if let Some(queue) = plan.queue(user) {
            return Some(Destination {
                queue: QueueId::new(queue.id().as_str()),
                agent: None,
            });
        }
        let agent = plan.agent(user).or_else(|| {
            let wanted = target.uri.as_sip()?;
            plan.agents().iter().find(|agent| {
                env.bindings(agent.id().as_str())
                    .iter()
                    .filter_map(|binding| binding.uri().as_sip())
                    .any(|contact| {
                        contact.user == wanted.user
                            && contact.host.same_as(&wanted.host)
                            && contact.port.unwrap_or(5060) == wanted.port.unwrap_or(5060)
                    })
            })
        })?;
        // The queue the call is recorded in: the current one when the agent
        // serves it, else the first the agent serves.
        let current = self
            .record
            .department
            .as_deref()
            .and_then(|id| plan.queue(id));
        let queue = current
            .filter(|queue| agent.can_serve(queue))
            .or_else(|| plan.queues().find(|queue| agent.can_serve(queue)))
            .or(current)?;
        Some(Destination {
            queue: QueueId::new(queue.id().as_str()),
            agent: Some(AgentId::new(agent.id().as_str())),
        })
    }

    /// The `Replaces` to put in an INVITE to `agent`, when this call is an
    /// attended transfer to them.
    pub(crate) fn replaces_for(&self, agent: &AgentId) -> Option<String> {
        let transfer = self.transfer.as_ref()?;
        (transfer.target_agent.as_ref() == Some(agent))
            .then(|| transfer.replaces.clone())
            .flatten()
    }

    /// Someone in the target answered: `200 OK` to the transferring agent,
    /// and their leg ends.
    pub(crate) fn transfer_succeeded(&mut self) {
        if self.transfer_decided() {
            self.notify_final("SIP/2.0 200 OK");
            self.end_transfer();
        }
    }

    /// The transfer will not complete (`status`: the patient hung up, the
    /// queues gave up): the transferring agent hears it, their leg ends.
    pub(crate) fn transfer_failed(&mut self, status: StatusCode) {
        if self.transfer_decided() {
            let line = format!("SIP/2.0 {} {}", status.as_u16(), status.canonical_reason());
            self.notify_final(&line);
            self.end_transfer();
        }
    }

    /// A transfer that routing accepted (not one still waiting for it).
    fn transfer_decided(&self) -> bool {
        self.transfer
            .as_ref()
            .is_some_and(|transfer| transfer.pending.is_none())
    }

    /// When the subscription of the transfer in progress ends.
    pub(crate) fn transfer_deadline(&self) -> Option<Instant> {
        self.transfer
            .as_ref()
            .filter(|transfer| transfer.pending.is_none())
            .map(|transfer| transfer.expires_at)
    }

    /// The subscription expired before the outcome (a long wait): it ends
    /// (RFC 6665 `reason=timeout`), the patient keeps waiting.
    pub(crate) fn transfer_timeout(&mut self, now: Instant) {
        if self.transfer_deadline().is_some_and(|at| at <= now) {
            self.notify_transfer_state("SIP/2.0 100 Trying", "terminated;reason=timeout");
            self.end_transfer();
        }
    }

    /// Progress while the subscription is active.
    fn notify_transfer(&mut self, now: Instant, status_line: &str) {
        let left = self
            .transfer_deadline()
            .map_or(SUBSCRIPTION, |at| at.saturating_duration_since(now));
        let state = format!("active;expires={}", left.as_secs());
        self.notify_transfer_state(status_line, &state);
    }

    fn notify_final(&mut self, status_line: &str) {
        self.notify_transfer_state(status_line, "terminated;reason=noresource");
    }

    fn notify_transfer_state(&mut self, status_line: &str, state: &str) {
        let Some(leg) = self
            .transfer
            .as_ref()
            .filter(|transfer| transfer.notify)
            .map(|transfer| transfer.leg)
        else {
            return;
        };
        let contact = signal::contact(self.config.advertise, self.config.sip_port);
        let Some((request, peer)) = self.legs.request_on(leg, Method::Notify) else {
            debug!("the transferring agent's leg is gone: no NOTIFY");
            return;
        };
        let notify = signal::refer_notify(request, &contact, state, status_line);
        self.push(Action::Send {
            request: notify,
            peer,
            token: None,
        });
    }

    /// The transfer is decided: BYE to the transferring agent's leg.
    fn end_transfer(&mut self) {
        let Some(transfer) = self.transfer.take() else {
            return;
        };
        if let Some((bye, peer)) = self.legs.request_on(transfer.leg, Method::Bye) {
            self.push(Action::Send {
                request: bye,
                peer,
                token: None,
            });
        }
        self.legs.finish(transfer.leg);
    }
}
