//! Web-form leads (issue 20; DESIGN.md, "Leads, sources, intents,
//! branches, trunks"): `POST /api/leads` in, classified by intent and
//! branch, durable in the journal before the sender hears `201`, on the
//! record and in the reports.
//!
//! [`Leads`] is the service's handle, given to the HTTP handlers and the
//! dashboard through their state (never through the `App`). It owns:
//!
//! - the intake ([`Leads::intake`]): who may post ([`signature`], with
//!   the [`replay`] cache, or the admin token), the body ([`form`]), the
//!   classification (`ivr::Dialplan::route_lead`, the dialplan in force),
//!   and the store (`records::JournalHandle::store_lead`, which answers
//!   after the commit);
//! - the `emergency_lead` alerts: raised when an emergency lead arrives
//!   (logged, POSTed to the alert webhook like the overload alerts, shown
//!   first in `/api/alerts` and on the dashboard), active while nobody has
//!   reached the patient, and raised again from the journal after a
//!   restart;
//! - the lead JSON of the API ([`Leads::lead_json`]);
//! - the lead desk ([`desk`], issue 21): who owns each open lead, its
//!   offers, timers and `lead_breach` alerts ([`Leads::desk`]).
//!
//! A refused post stores nothing: every check runs before the store, and
//! a signature claimed for a post that is then refused is given back.
//! Patients' numbers reach the logs only as pseudonyms.

pub mod calls;
pub mod desk;
pub mod form;
pub mod replay;
pub mod signature;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use guard::LeadLimits;
use ivr::jiff::{SignedDuration, Timestamp};
use ivr::leads::{PhoneNumber, Source};
use records::{
    Idempotency, JournalHandle, LeadId, LeadKind, LeadSignature, LeadStored, LeadTimeline,
    LeadWriteError, NewLead, Reader,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sip::digest::{hex, unhex};
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::app::LiveDialplan;
use crate::app::journal::Pseudonyms;
use form::{FieldErrors, FormError, LeadForm};
use replay::{Refused, ReplayCache};
use signature::SignatureHeader;

/// The most `emergency_lead` alerts held at once (the oldest go first).
const MAX_ALERTS: usize = 1000;
/// The most ids in a lead's `related`.
const MAX_RELATED: usize = 50;
/// The longest `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Leads read back at once after their commit: each takes a blocking
/// thread and a journal connection, so a burst of commits (after a slow
/// fsync) must not open one of each per lead.
const CONCURRENT_READS: usize = 8;

/// A post to `POST /api/leads`, as the handler read it.
#[derive(Debug, Clone, Copy)]
pub struct Post<'a> {
    /// `X-Frontdesk-Source`.
    pub source: Option<&'a str>,
    /// `X-Frontdesk-Signature`.
    pub signature: Option<&'a str>,
    /// The request carried the admin token.
    pub admin: bool,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<&'a str>,
    /// The raw body.
    pub body: &'a [u8],
}

/// A post that was taken: the lead's JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// A new lead, durable (201).
    Created(Value),
    /// The lead an earlier post with the same `Idempotency-Key` made (200).
    Repeated(Value),
}

/// A post that was refused; nothing of it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401: not signed, badly signed, expired, replayed, unknown source.
    Unauthorized(String),
    /// 400: the body or a header is wrong; `fields` says where.
    BadRequest {
        /// What is wrong.
        error: String,
        /// Field → what is wrong with it.
        fields: FieldErrors,
    },
    /// 422: the `Idempotency-Key` was used for another request.
    Conflict(String),
    /// 503 with Retry-After: the journal or the replay cache is full.
    Busy(String),
    /// 503: the journal cannot write (disk failing, shutting down).
    Unavailable(String),
}

impl Refusal {
    /// The metric label.
    fn reason(&self) -> &'static str {
        match self {
            Refusal::Unauthorized(_) => "unauthorized",
            Refusal::BadRequest { .. } => "invalid",
            Refusal::Conflict(_) => "conflict",
            Refusal::Busy(_) => "busy",
            Refusal::Unavailable(_) => "unavailable",
        }
    }
}

/// The alert kind of an emergency lead nobody has reached yet.
pub const EMERGENCY: &str = "emergency_lead";
/// The alert kind of a lead not contacted within its source's window.
pub const BREACH: &str = "lead_breach";

/// One active lead alert (`emergency_lead` or `lead_breach`).
#[derive(Debug, Clone, PartialEq)]
pub struct LeadAlert {
    /// The lead.
    pub lead: LeadId,
    /// [`EMERGENCY`] or [`BREACH`].
    pub kind: &'static str,
    /// Its queue.
    pub department: String,
    /// When it arrived.
    pub since: Timestamp,
    /// What is wrong, for a person (no patient data).
    pub detail: String,
}

impl LeadAlert {
    /// DESIGN.md's alert shape, with the lead's id.
    pub fn to_json(&self) -> Value {
        json!(crate::app::journal::AlertJson {
            department: self.department.to_string(),
            kind: self.kind.to_string(),
            since: self.since.to_string(),
            detail: self.detail.clone(),
            lead: Some(self.lead.as_str().to_string()),
        })
    }
}

/// The leads service's handle. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Leads {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    journal: JournalHandle,
    reader: Reader,
    dialplan: Arc<LiveDialplan>,
    limits: LeadLimits,
    /// Held only to claim or give back one signature; never across an
    /// await.
    replay: Mutex<ReplayCache>,
    alerts: Arc<LeadAlerts>,
    pseudonyms: Pseudonyms,
    desk: desk::LeadDeskHandle,
    /// Bounds the read-backs (see [`CONCURRENT_READS`]).
    reads: tokio::sync::Semaphore,
}

impl Leads {
    /// Starts the service on the journal: seeds the replay cache with the
    /// signatures of the last two tolerances and the alerts with the
    /// unanswered emergencies (reads on a blocking thread).
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        journal: JournalHandle,
        reader: Reader,
        dialplan: Arc<LiveDialplan>,
        limits: LeadLimits,
        pseudonyms: Pseudonyms,
        webhook: Option<String>,
        agents: (Arc<routing::AgentTable>, tokio::sync::watch::Receiver<u64>),
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<Leads> {
        // libphonenumber's metadata is deserialized on first use (tens of
        // milliseconds): pay it here, not on the first patient's post.
        let _ = PhoneNumber::parse("+13125550199", None);
        let now = Timestamp::now();
        let tolerance = i64::try_from(limits.signature_tolerance.as_secs()).unwrap_or(i64::MAX);
        let since = now - SignedDuration::from_secs(tolerance.saturating_mul(2).min(86_400 * 365));
        let seed_reader = reader.clone();
        let (signatures, emergencies) = tokio::task::spawn_blocking(move || {
            Ok::<_, records::QueryError>((
                seed_reader.lead_signatures_since(since)?,
                seed_reader.unanswered_emergencies(MAX_ALERTS)?,
            ))
        })
        .await??;
        let mut replay = ReplayCache::new(tolerance, limits.replay_cache);
        replay.seed(
            signatures.into_iter().filter_map(|(t, mac)| {
                let mac: [u8; 32] = unhex(&mac)?.try_into().ok()?;
                Some((t, mac))
            }),
            now.as_second(),
        );
        let alerts: BTreeMap<(LeadId, &'static str), LeadAlert> = emergencies
            .into_iter()
            .map(|lead| {
                let alert = LeadAlert {
                    lead: lead.id.clone(),
                    kind: EMERGENCY,
                    department: lead.department.clone(),
                    since: lead.created_at,
                    detail: emergency_detail(&lead.id, &lead.source, lead.intent.as_deref()),
                };
                ((lead.id, EMERGENCY), alert)
            })
            .collect();
        if !alerts.is_empty() {
            warn!(
                count = alerts.len(),
                "emergency leads nobody has reached yet: their alerts are active again"
            );
        }
        info!(
            remembered_signatures = replay.len(),
            "lead intake ready (POST /api/leads)"
        );
        metrics::gauge!("frontdesk_lead_alerts_active").set(alerts.len() as f64);
        let alerts = Arc::new(LeadAlerts {
            alerts: Mutex::new(alerts),
            webhook,
        });
        let (table, agents_changed) = agents;
        let desk = desk::start(
            desk::DeskServices {
                table,
                agents_changed,
                dialplan: Arc::clone(&dialplan),
                journal: journal.clone(),
                alerts: Arc::clone(&alerts),
            },
            reader.clone(),
            shutdown,
        )
        .await?;
        Ok(Leads {
            inner: Arc::new(Inner {
                journal,
                reader,
                dialplan,
                limits,
                replay: Mutex::new(replay),
                alerts,
                pseudonyms,
                desk,
                reads: tokio::sync::Semaphore::new(CONCURRENT_READS),
            }),
        })
    }

    /// The journal's read side (use it inside `spawn_blocking`).
    pub fn reader(&self) -> &Reader {
        &self.inner.reader
    }

    /// The active lead alerts (`emergency_lead`, `lead_breach`), oldest
    /// first.
    pub fn alerts(&self) -> Vec<LeadAlert> {
        self.inner.alerts.active()
    }

    /// The lead desk: owners, offers, actions.
    pub fn desk(&self) -> &desk::LeadDeskHandle {
        &self.inner.desk
    }

    /// Takes a post: checks who sent it and what it says, classifies it,
    /// stores it, and answers once it is durable. See the module docs.
    pub async fn intake(&self, post: Post<'_>) -> Result<Accepted, Refusal> {
        let now = Timestamp::now();
        let result = match self.authenticate(&post, now) {
            Ok(signed) => {
                let result = self.accept(&post, signed.as_ref(), now).await;
                if result.is_err()
                    && let Some(signed) = signed
                {
                    self.replay().release(signed.timestamp, &signed.mac);
                }
                result
            }
            Err(refusal) => Err(refusal),
        };
        match &result {
            Ok(Accepted::Created(_)) => {
                metrics::counter!("frontdesk_leads_received_total").increment(1)
            }
            Ok(Accepted::Repeated(_)) => {
                metrics::counter!("frontdesk_leads_repeated_total").increment(1)
            }
            Err(refusal) => {
                metrics::counter!("frontdesk_leads_refused_total", "reason" => refusal.reason())
                    .increment(1);
            }
        }
        result
    }

    fn replay(&self) -> std::sync::MutexGuard<'_, ReplayCache> {
        self.inner
            .replay
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Who sent `post`: a source's verified and claimed signature
    /// (`Some`), or the admin token (`None`).
    fn authenticate(&self, post: &Post<'_>, now: Timestamp) -> Result<Option<Signed>, Refusal> {
        let Some(source_id) = post.source else {
            if post.admin {
                return Ok(None);
            }
            return Err(Refusal::Unauthorized(
                "sign the post (X-Frontdesk-Source and X-Frontdesk-Signature) or send the admin token"
                    .into(),
            ));
        };
        let plan = self.inner.dialplan.current();
        let Some(source) = plan.source(source_id) else {
            return Err(Refusal::Unauthorized(
                "X-Frontdesk-Source names no source of this clinic".into(),
            ));
        };
        let header = post
            .signature
            .ok_or_else(|| Refusal::Unauthorized("X-Frontdesk-Signature is missing".into()))?;
        let header = SignatureHeader::parse(header)
            .map_err(|error| Refusal::Unauthorized(error.to_string()))?;
        let tolerance =
            i64::try_from(self.inner.limits.signature_tolerance.as_secs()).unwrap_or(i64::MAX);
        let mac = header
            .verify(
                source.secret().as_bytes(),
                post.body,
                now.as_second(),
                tolerance,
            )
            .map_err(|error| Refusal::Unauthorized(error.to_string()))?;
        match self.replay().claim(header.timestamp, &mac, now.as_second()) {
            Ok(()) => Ok(Some(Signed {
                source: source_id.to_string(),
                timestamp: header.timestamp,
                mac,
            })),
            Err(Refused::Replayed) => Err(Refusal::Unauthorized(Refused::Replayed.to_string())),
            Err(Refused::Full) => {
                warn!(
                    capacity = self.inner.limits.replay_cache,
                    "signed lead refused: the replay cache is full of live signatures ([limits.leads] replay_cache)"
                );
                Err(Refusal::Busy(Refused::Full.to_string()))
            }
        }
    }

    /// Everything after authentication: the body, the classification, the
    /// store.
    async fn accept(
        &self,
        post: &Post<'_>,
        signed: Option<&Signed>,
        now: Timestamp,
    ) -> Result<Accepted, Refusal> {
        let plan = self.inner.dialplan.current();
        let key = post.idempotency_key.map(idempotency_key).transpose()?;
        let form =
            LeadForm::parse(post.body, plan.clinic().country()).map_err(|error| match error {
                FormError::NotJson(error) => Refusal::BadRequest {
                    error,
                    fields: FieldErrors::new(),
                },
                FormError::Fields(fields) => Refusal::BadRequest {
                    error: "the lead has errors".into(),
                    fields,
                },
            })?;
        let source = resolve_source(&plan, &form, signed)?;
        let route = plan.route_lead(
            Some(source),
            &form.message,
            form.postal_code.as_deref(),
            Some(&form.phone),
        );
        let id = LeadId::new(format!("l-{:016x}", rand::random::<u64>()));
        let request_hash = hex(&Sha256::digest(post.body));
        let window = SignedDuration::try_from(self.inner.limits.idempotency_window)
            .unwrap_or(SignedDuration::from_hours(24));
        let respond_within = SignedDuration::try_from(source.respond_within())
            .unwrap_or(SignedDuration::from_mins(5));
        let lead = NewLead {
            id: id.clone(),
            kind: LeadKind::WebForm,
            created_at: now,
            source: source.id().to_string(),
            campaign: form.campaign.clone(),
            name: form.name.clone(),
            phone: form.phone.as_str().to_string(),
            email: form.email.clone(),
            message: form.message.clone(),
            postal_code: form.postal_code.clone(),
            consent: Value::Object(form.consent.clone()),
            department: route.queue.to_string(),
            intent: route.intent.as_ref().map(|m| m.phrase.clone()),
            emergency: route.emergency,
            branch: route.branch.as_ref().map(|b| b.branch().to_string()),
            priority: match route.priority {
                ivr::Priority::Urgent => records::Priority::Urgent,
                ivr::Priority::Routine => records::Priority::Routine,
            },
            respond_by: now.checked_add(respond_within).unwrap_or(now),
            signature: signed.map(|signed| LeadSignature {
                signed_at: signed.timestamp,
                mac: hex(&signed.mac),
            }),
            idempotency: key.map(|key| Idempotency {
                key,
                request_hash: request_hash.clone(),
                honoured_since: now.checked_sub(window).unwrap_or(Timestamp::MIN),
            }),
        };
        let (reply, stored) = oneshot::channel();
        self.inner
            .journal
            .store_lead(lead, move |result| {
                let _ = reply.send(result);
            })
            .map_err(store_refusal)?;
        let stored = stored
            .await
            .map_err(|_| Refusal::Unavailable("the journal stopped".into()))?
            .map_err(store_refusal)?;
        match stored {
            LeadStored::Created => {
                info!(
                    lead = %id,
                    source = %source.id(),
                    department = %route.queue,
                    emergency = route.emergency,
                    branch = route.branch.as_ref().map(|b| b.branch().as_str()),
                    phone = %self.inner.pseudonyms.show(form.phone.as_str()),
                    "lead received"
                );
                if route.emergency {
                    self.inner.alerts.raise(LeadAlert {
                        lead: id.clone(),
                        kind: EMERGENCY,
                        department: route.queue.to_string(),
                        since: now,
                        detail: emergency_detail(
                            &id,
                            source.id().as_str(),
                            route.intent.as_ref().map(|m| m.phrase.as_str()),
                        ),
                    });
                }
                let lead = self.read_json(id).await?;
                self.inner.desk.add(lead.clone());
                Ok(Accepted::Created(lead))
            }
            LeadStored::Existing {
                id: earlier,
                request_hash: earlier_hash,
            } => {
                if earlier_hash != request_hash {
                    return Err(Refusal::Conflict(format!(
                        "this Idempotency-Key was used for another request (lead {earlier})"
                    )));
                }
                info!(lead = %earlier, source = %source.id(), "lead repeated (Idempotency-Key)");
                Ok(Accepted::Repeated(self.read_json(earlier).await?))
            }
        }
    }

    /// The stored lead `id` as the API shows it.
    async fn read_json(&self, id: LeadId) -> Result<Value, Refusal> {
        let _permit = self
            .inner
            .reads
            .acquire()
            .await
            .map_err(|_| Refusal::Unavailable("the journal cannot be read".into()))?;
        let reader = self.inner.reader.clone();
        let found = tokio::task::spawn_blocking(move || {
            let timeline = reader.lead(id.as_str())?;
            timeline
                .map(|timeline| Leads::lead_json(&reader, &timeline))
                .transpose()
        })
        .await;
        match found {
            Ok(Ok(Some(lead))) => Ok(lead),
            Ok(Ok(None)) => Err(Refusal::Unavailable(
                "the lead was not found after its store".into(),
            )),
            Ok(Err(error)) => {
                warn!(%error, "lead stored but not read back");
                Err(Refusal::Unavailable("the journal cannot be read".into()))
            }
            Err(_) => Err(Refusal::Unavailable("the journal cannot be read".into())),
        }
    }

    /// DESIGN.md's lead JSON of `timeline`, with `related` read from the
    /// journal (blocking: call it inside `spawn_blocking`).
    pub fn lead_json(
        reader: &Reader,
        timeline: &LeadTimeline,
    ) -> Result<Value, records::QueryError> {
        let lead = &timeline.lead;
        let caller_ids = PhoneNumber::parse(&lead.phone, None)
            .map(|phone| phone.caller_id_forms())
            .unwrap_or_else(|_| vec![lead.phone.clone()]);
        let related = reader.related(
            &lead.phone,
            &caller_ids,
            lead.created_at,
            lead.id.as_str(),
            MAX_RELATED,
        )?;
        Ok(lead.to_json(&timeline.history, &related))
    }
}

/// The active lead alerts, shared by the intake (`emergency_lead`) and
/// the desk (`lead_breach`): one per lead and kind.
#[derive(Debug)]
pub struct LeadAlerts {
    /// By lead and kind (ordered: ids are random, so `since` orders the
    /// output). Held only to change or copy the map.
    alerts: Mutex<BTreeMap<(LeadId, &'static str), LeadAlert>>,
    webhook: Option<String>,
}

impl LeadAlerts {
    /// The active alerts, oldest first.
    pub fn active(&self) -> Vec<LeadAlert> {
        let mut alerts: Vec<LeadAlert> = self
            .alerts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        alerts.sort_by_key(|alert| alert.since);
        alerts
    }

    /// Raises an alert: logged, kept, POSTed to the webhook (outside a
    /// runtime, as in unit tests, the POST is skipped).
    pub fn raise(&self, alert: LeadAlert) {
        warn!(
            lead = %alert.lead,
            department = %alert.department,
            kind = alert.kind,
            detail = %alert.detail,
            "alert raised"
        );
        let active = {
            let mut alerts = self.alerts.lock().unwrap_or_else(PoisonError::into_inner);
            alerts.insert((alert.lead.clone(), alert.kind), alert.clone());
            while alerts.len() > MAX_ALERTS {
                let oldest = alerts
                    .iter()
                    .min_by_key(|(_, alert)| alert.since)
                    .map(|(key, _)| key.clone());
                match oldest {
                    Some(key) => {
                        alerts.remove(&key);
                    }
                    None => break,
                }
            }
            alerts.len()
        };
        metrics::gauge!("frontdesk_lead_alerts_active").set(active as f64);
        self.post(&alert, "raised");
    }

    /// Clears the alerts of `lead` (the patient was reached, or the lead
    /// closed), telling the webhook.
    pub fn clear(&self, lead: &LeadId) {
        let cleared: Vec<LeadAlert> = {
            let mut alerts = self.alerts.lock().unwrap_or_else(PoisonError::into_inner);
            let keys: Vec<(LeadId, &'static str)> = alerts
                .keys()
                .filter(|(id, _)| id == lead)
                .cloned()
                .collect();
            let cleared = keys.iter().filter_map(|key| alerts.remove(key)).collect();
            metrics::gauge!("frontdesk_lead_alerts_active").set(alerts.len() as f64);
            cleared
        };
        for alert in cleared {
            info!(lead = %alert.lead, kind = alert.kind, "alert cleared");
            self.post(&alert, "cleared");
        }
    }

    fn post(&self, alert: &LeadAlert, state: &str) {
        let Some(url) = &self.webhook else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut body = alert.to_json();
        body["state"] = json!(state);
        let url = url.clone();
        runtime.spawn(async move {
            if let Err(error) = crate::app::journal::post_json(&url, &body).await {
                warn!(%error, "alert webhook failed");
            }
        });
    }
}

/// A verified, claimed signature.
#[derive(Debug, Clone)]
struct Signed {
    source: String,
    timestamp: i64,
    mac: [u8; 32],
}

/// The source a post is from: the signer's (a body's `source` must agree),
/// or, with the admin token, the body's.
fn resolve_source<'p>(
    plan: &'p ivr::Dialplan,
    form: &LeadForm,
    signed: Option<&Signed>,
) -> Result<&'p Source, Refusal> {
    let field = |message: String| {
        let mut fields = FieldErrors::new();
        fields.insert("source".into(), message);
        Refusal::BadRequest {
            error: "the lead has errors".into(),
            fields,
        }
    };
    let id = match (signed, &form.source) {
        (Some(signed), Some(named)) if *named != signed.source => {
            return Err(field(format!(
                "`{named}` is not the signing source `{}`",
                signed.source
            )));
        }
        (Some(signed), _) => signed.source.as_str(),
        (None, Some(named)) => named.as_str(),
        (None, None) => {
            return Err(field(
                "is required with the admin token (the signing source's id otherwise)".into(),
            ));
        }
    };
    plan.source(id).ok_or_else(|| {
        let known: Vec<String> = plan.sources().map(|s| format!("`{}`", s.id())).collect();
        field(format!(
            "`{id}` is not a source of this clinic (known: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    })
}

/// An `Idempotency-Key`: 1 to 255 visible ASCII characters.
fn idempotency_key(key: &str) -> Result<String, Refusal> {
    if (1..=MAX_IDEMPOTENCY_KEY).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(key.to_string())
    } else {
        Err(Refusal::BadRequest {
            error: format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
            ),
            fields: FieldErrors::new(),
        })
    }
}

fn store_refusal(error: LeadWriteError) -> Refusal {
    match error {
        LeadWriteError::Full => Refusal::Busy("the journal is busy: try again shortly".into()),
        LeadWriteError::Closed => Refusal::Unavailable("the clinic is shutting down".into()),
        LeadWriteError::Failed(message) => {
            warn!(error = %message, "a lead could not be stored");
            Refusal::Unavailable("the lead could not be stored".into())
        }
    }
}

/// The alert's detail: the lead, its source and the phrase; no patient
/// data (it goes to the webhook and the dashboard).
fn emergency_detail(id: &LeadId, source: &str, phrase: Option<&str>) -> String {
    match phrase {
        Some(phrase) => format!("lead {id} from {source}: \"{phrase}\""),
        None => format!("lead {id} from {source}"),
    }
}

/// How long after `Retry-After` a busy sender should try again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert_eq!(idempotency_key("order-7"), Ok("order-7".into()));
        for bad in ["", "a b", "é", &"k".repeat(256)] {
            assert!(idempotency_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn alert_details_carry_no_patient_data() {
        let detail = emergency_detail(&LeadId::new("l-1"), "website", Some("chest pain"));
        assert_eq!(detail, "lead l-1 from website: \"chest pain\"");
        let alert = LeadAlert {
            lead: LeadId::new("l-1"),
            kind: EMERGENCY,
            department: "urgent-care".into(),
            since: Timestamp::UNIX_EPOCH,
            detail,
        };
        assert_eq!(alert.to_json()["kind"], "emergency_lead");
        assert_eq!(alert.to_json()["lead"], "l-1");
    }
}
