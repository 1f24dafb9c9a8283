//! Calls that become leads (issue 22; DESIGN.md, "Callbacks, voicemail
//! and abandoned calls"): the shared path from a call's
//! [`call::Action::Lead`] to a lead on the record and on the desk.
//!
//! The call core says *that* its call is a lead (a caller who gave up
//! waiting past the queue's `abandoned_lead_after`; a callback that
//! nobody answered; a voicemail) and hands it over through
//! [`crate::calls::CallLeadSink`]. This task takes them one at a time:
//!
//! 1. the caller's number, normalised to E.164 with `[clinic] country`; a
//!    number that cannot be called back (anonymous, a SIP user name) makes
//!    no lead;
//! 2. for an `abandoned_call`: no lead when a call from the same number
//!    reached an agent within the queue's `respond_within` before the
//!    hang-up (the window the lead would have had: a patient who got
//!    through meanwhile, on this call's twin or an earlier call, is not a
//!    lost lead);
//! 3. a [`NewLead`] of its kind, in the queue's department, with
//!    `respond_by` = now + the queue's `respond_within`, its message naming
//!    the call (`related` lists the call too, by the number) and, keyed by
//!    the call's id, an idempotency key, so a call is one lead at most;
//! 4. durable first, then read back and added to the lead desk, which
//!    offers it to an agent like a web form.
//!
//! A call that reached an agent ([`CallLeadNews::Reached`]) answers its
//! number's open `abandoned_call` and `callback` leads still within their
//! `respond_by`: each is marked contacted by that agent on the desk (a
//! lead another agent owns stays theirs).
//!
//! Consent: the patient called the clinic, so a callback to the number
//! they called from is allowed (`consent.call` is `true`); the trunk's
//! `allow` and `deny` still apply when an agent calls out.

use call::CallLead;
use ivr::jiff::{SignedDuration, Timestamp};
use ivr::leads::PhoneNumber;
use records::{Idempotency, LeadId, LeadKind, LeadStored, NewLead};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{Leads, Refusal};
use crate::calls::CallLeadNews;

/// The most open leads one reached number answers.
const MAX_ANSWERED: usize = 20;

/// How a call lead went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallLeadResult {
    /// A new lead, on the desk.
    Created(LeadId),
    /// No lead: why (for the log and the metric's `reason`).
    Skipped(&'static str),
}

/// Drains the calls' leads until `shutdown` (then what is queued is still
/// taken, so a drain's abandoned callers are not lost while the journal
/// is up).
pub async fn run(
    mut inbox: mpsc::Receiver<CallLeadNews>,
    leads: Leads,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let lead = tokio::select! {
            lead = inbox.recv() => lead,
            () = shutdown.cancelled() => {
                inbox.close();
                inbox.recv().await
            }
        };
        let lead = match lead {
            None => return Ok(()),
            Some(CallLeadNews::Lead(lead)) => lead,
            Some(CallLeadNews::Reached { caller, agent }) => {
                leads.number_reached(&caller, &agent).await;
                continue;
            }
        };
        let kind = lead.kind;
        match leads.store_call_lead(lead).await {
            Ok(CallLeadResult::Created(_)) => {
                metrics::counter!("frontdesk_call_leads_total", "kind" => kind.as_str(), "result" => "created")
                    .increment(1);
            }
            Ok(CallLeadResult::Skipped(reason)) => {
                metrics::counter!("frontdesk_call_leads_total", "kind" => kind.as_str(), "result" => reason)
                    .increment(1);
            }
            Err(refusal) => {
                warn!(
                    kind = kind.as_str(),
                    ?refusal,
                    "a call's lead could not be stored"
                );
                metrics::counter!("frontdesk_call_leads_total", "kind" => kind.as_str(), "result" => "failed")
                    .increment(1);
            }
        }
    }
}

impl Leads {
    /// A call from `caller` reached `agent`: their open call leads within
    /// their window are contacted (see the module docs).
    pub async fn number_reached(&self, caller: &str, agent: &str) {
        let plan = self.inner.dialplan.current();
        let Ok(phone) = PhoneNumber::parse(caller, plan.clinic().country()) else {
            return;
        };
        let now = Timestamp::now();
        let reader = self.inner.reader.clone();
        let e164 = phone.as_str().to_string();
        let found = tokio::task::spawn_blocking(move || {
            reader.unreached_call_leads(&e164, now, MAX_ANSWERED)
        })
        .await;
        let ids = match found {
            Ok(Ok(ids)) => ids,
            Ok(Err(error)) => {
                warn!(%error, "cannot read the open call leads of a reached caller");
                return;
            }
            Err(_) => return,
        };
        let agent = routing::AgentId::new(agent);
        for id in ids {
            match self.inner.desk.contacted(id.as_str(), &agent, now).await {
                Ok(()) => {
                    info!(lead = %id, agent = %agent, "the caller reached an agent: the lead is contacted");
                    metrics::counter!("frontdesk_call_leads_answered_total").increment(1);
                }
                Err(error) => debug!(lead = %id, %error, "a reached caller's lead stays as it is"),
            }
        }
    }

    /// Puts the call lead `lead` on the record and on the desk (see the
    /// module docs).
    pub async fn store_call_lead(&self, lead: CallLead) -> Result<CallLeadResult, Refusal> {
        let now = Timestamp::now();
        let plan = self.inner.dialplan.current();
        let shown = self.inner.pseudonyms.show(&lead.caller);
        let Ok(phone) = PhoneNumber::parse(&lead.caller, plan.clinic().country()) else {
            info!(call = %lead.call, caller = %shown, kind = lead.kind.as_str(), "no lead: the caller's number cannot be called back");
            return Ok(CallLeadResult::Skipped("no_number"));
        };
        let respond_within = plan
            .queue(lead.queue.as_str())
            // The queue left the plan in a reload: the default window.
            .map_or(
                ivr::Queue::DEFAULT_RESPOND_WITHIN,
                ivr::Queue::respond_within,
            );
        let respond_within =
            SignedDuration::try_from(respond_within).unwrap_or(SignedDuration::from_hours(1));
        let since = now.checked_sub(respond_within).unwrap_or(Timestamp::MIN);
        if lead.kind == LeadKind::AbandonedCall {
            let reader = self.inner.reader.clone();
            let forms = phone.caller_id_forms();
            let reached =
                tokio::task::spawn_blocking(move || reader.reached_since(&forms, since)).await;
            match reached {
                Ok(Ok(true)) => {
                    info!(call = %lead.call, caller = %shown, "no lead: the same number reached an agent within the window");
                    return Ok(CallLeadResult::Skipped("reached"));
                }
                Ok(Ok(false)) => {}
                Ok(Err(error)) => {
                    // Better a lead too many than a lost patient.
                    warn!(%error, "cannot tell whether the caller was reached: the lead is made");
                }
                Err(_) => return Err(Refusal::Unavailable("the journal cannot be read".into())),
            }
        }
        let id = LeadId::new(format!("l-{:016x}", rand::random::<u64>()));
        let waited = lead.waited.as_secs();
        let message = match lead.kind {
            LeadKind::AbandonedCall => format!(
                "hung up after waiting {waited} s in {} (call {})",
                lead.queue, lead.call
            ),
            LeadKind::Callback => format!(
                "asked to be called back after waiting {waited} s in {} (call {})",
                lead.queue, lead.call
            ),
            LeadKind::Voicemail => match &lead.recording {
                Some(recording) => format!(
                    "left a voicemail of {} s for {} after waiting {waited} s (call {})",
                    recording.length.as_secs(),
                    lead.queue,
                    lead.call
                ),
                None => format!(
                    "left a voicemail after waiting {waited} s in {} (call {})",
                    lead.queue, lead.call
                ),
            },
            LeadKind::WebForm => format!("from call {}", lead.call),
        };
        let new = NewLead {
            id: id.clone(),
            kind: lead.kind,
            created_at: now,
            source: lead.source.clone().unwrap_or_else(|| "phone".to_string()),
            campaign: None,
            name: None,
            phone: phone.as_str().to_string(),
            email: None,
            message,
            postal_code: None,
            consent: json!({"call": true}),
            department: lead.queue.as_str().to_string(),
            intent: None,
            emergency: false,
            branch: None,
            priority: lead.priority,
            respond_by: now.checked_add(respond_within).unwrap_or(now),
            signature: None,
            // One lead per call and kind, even if a call's lead is handed
            // over twice.
            idempotency: Some(Idempotency {
                key: format!("{}:{}", lead.kind.as_str(), lead.call),
                request_hash: lead.call.clone(),
                honoured_since: now
                    .checked_sub(SignedDuration::from_hours(24))
                    .unwrap_or(Timestamp::MIN),
            }),
        };
        let (reply, stored) = oneshot::channel();
        self.inner
            .journal
            .store_lead(new, move |result| {
                let _ = reply.send(result);
            })
            .map_err(super::store_refusal)?;
        let stored = stored
            .await
            .map_err(|_| Refusal::Unavailable("the journal stopped".into()))?
            .map_err(super::store_refusal)?;
        match stored {
            LeadStored::Created => {
                info!(lead = %id, call = %lead.call, kind = lead.kind.as_str(), department = %lead.queue, caller = %shown, "a call became a lead");
                if let Some(recording) = &lead.recording {
                    // The lead's history names its recording: the route
                    // that plays it and the retention sweep find it there.
                    let step = records::LeadEvent {
                        lead: id.clone(),
                        at: now,
                        event: "voicemail_recorded".to_string(),
                        agent: None,
                        detail: json!({
                            "recording": recording.name,
                            "seconds": recording.length.as_secs_f64(),
                        }),
                        first_contact: false,
                    };
                    if let Err(error) = self.inner.journal.record_lead_event(step) {
                        warn!(%error, lead = %id, "cannot record the voicemail's recording on its lead");
                    }
                }
                let json = self.read_json(id.clone()).await?;
                self.inner.desk.add(json);
                Ok(CallLeadResult::Created(id))
            }
            LeadStored::Existing { id: earlier, .. } => {
                debug!(lead = %earlier, call = %lead.call, "the call is a lead already");
                Ok(CallLeadResult::Skipped("repeated"))
            }
        }
    }
}
