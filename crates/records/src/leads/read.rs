//! Reading leads: lists, one lead with its history, the same patient's
//! other calls and leads, open leads, and what a restart needs back.

use jiff::Timestamp;
use rusqlite::{Connection, Row, ToSql, params};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::report::{self, LeadFacts, LeadReport};
use super::{LeadId, LeadKind, LeadOutcome, LeadState};
use crate::entry::Priority;
use crate::error::QueryError;
use crate::reader::Reader;
use crate::report::TimeRange;

/// The columns of [`LeadRow`], in its field order.
pub(crate) const LEAD_COLUMNS: &str = "id, kind, source, campaign, name, phone, email, message, postal_code, \
     consent, department, intent, emergency, branch, priority, owner, state, outcome, created_at, \
     respond_by, first_contact_at, snoozed_until";

/// One lead as the `leads` table holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadRow {
    /// Its id.
    pub id: LeadId,
    /// How it came.
    pub kind: LeadKind,
    /// The source's id.
    pub source: String,
    /// The campaign the form named.
    pub campaign: Option<String>,
    /// The patient's name.
    pub name: Option<String>,
    /// The patient's number, E.164.
    pub phone: String,
    /// The patient's e-mail.
    pub email: Option<String>,
    /// What the patient wrote.
    pub message: String,
    /// The postal code given.
    pub postal_code: Option<String>,
    /// Consents, a JSON object (`{"call": true}`).
    pub consent: Value,
    /// The queue that owns it.
    pub department: String,
    /// The intent phrase that matched.
    pub intent: Option<String>,
    /// An emergency rule matched.
    pub emergency: bool,
    /// The preferred branch.
    pub branch: Option<String>,
    /// Its priority.
    pub priority: Priority,
    /// The agent who owns it.
    pub owner: Option<String>,
    /// Its state.
    pub state: LeadState,
    /// Its outcome, once closed.
    pub outcome: Option<LeadOutcome>,
    /// When it arrived.
    pub created_at: Timestamp,
    /// When first contact is due.
    pub respond_by: Timestamp,
    /// When the patient was first reached.
    pub first_contact_at: Option<Timestamp>,
    /// Snoozed until then.
    pub snoozed_until: Option<Timestamp>,
}

fn rfc3339(at: Option<Timestamp>) -> Option<String> {
    at.map(|at| at.to_string())
}

/// DESIGN.md's lead JSON (`GET /api/leads/{id}`); its schema is the
/// OpenAPI document's `Lead`: the lead's own fields and its history.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Lead)]
pub struct LeadJson {
    /// The lead itself (flattened: the same object).
    #[serde(flatten)]
    pub lead: LeadFields,
    /// Its history, oldest first: `{"at","event","agent"?, …detail}`.
    #[schema(value_type = Vec<LeadHistoryStep>)]
    pub history: Vec<Value>,
    /// The same number's earlier calls and leads.
    pub related: Vec<String>,
}

/// A lead's own fields, without its history: `Lead`'s, and the `lead` of
/// a webhook's lead event (`LeadFields` in the OpenAPI document).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeadFields {
    /// `l-…`.
    pub id: String,
    /// `web_form`, `callback`, `voicemail` or `abandoned_call`.
    pub kind: String,
    /// The source's id.
    pub source: String,
    /// The campaign the form named.
    pub campaign: Option<String>,
    /// The patient's name.
    pub name: Option<String>,
    /// The patient's number, E.164.
    pub phone: String,
    /// The patient's e-mail.
    pub email: Option<String>,
    /// What the patient wrote.
    pub message: String,
    /// The postal code given.
    pub postal_code: Option<String>,
    /// Consents (`{"call": true}`).
    #[schema(value_type = Object)]
    pub consent: Value,
    /// The queue that owns it.
    pub department: String,
    /// `{"matched": phrase or null}`.
    pub intent: IntentJson,
    /// An emergency rule matched.
    pub emergency: bool,
    /// The preferred branch.
    pub branch: Option<String>,
    /// `routine` or `urgent`.
    pub priority: String,
    /// The agent who owns it.
    pub owner: Option<String>,
    /// `waiting`, `offered`, `accepted`, `contacted`, `escalated`, `closed`.
    pub state: String,
    /// `booked`, `reached`, `no_answer`, `wrong_number`, `duplicate`.
    pub outcome: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub respond_by: String,
    /// RFC 3339 UTC.
    pub first_contact_at: Option<String>,
    /// RFC 3339 UTC.
    pub snoozed_until: Option<String>,
}

/// A lead's `intent`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = LeadIntent)]
pub struct IntentJson {
    /// The phrase that matched.
    pub matched: Option<String>,
}

/// One step of a lead's history: `at`, `event`, `agent` when there is one,
/// and the step's own fields (`reason`, `until`, …).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = LeadHistoryStep)]
pub struct LeadHistoryStep {
    /// RFC 3339 UTC.
    pub at: String,
    /// `created`, `offered`, `accepted`, …
    pub event: String,
    /// The agent concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The step's own fields. A flattened map: utoipa gives the schema
    /// `additionalProperties`, so a closed reading of the document still
    /// takes them.
    #[serde(flatten)]
    pub detail: serde_json::Map<String, Value>,
}

impl LeadRow {
    /// DESIGN.md's lead JSON, with `history` and `related` as given.
    pub fn to_json(&self, history: &[LeadHistory], related: &[String]) -> Value {
        json!(LeadJson {
            lead: self.fields(),
            history: history.iter().map(LeadHistory::to_json).collect(),
            related: related.to_vec(),
        })
    }

    /// The lead's own fields (no history).
    pub fn fields(&self) -> LeadFields {
        LeadFields {
            id: self.id.as_str().to_string(),
            kind: self.kind.as_str().to_string(),
            source: self.source.clone(),
            campaign: self.campaign.clone(),
            name: self.name.clone(),
            phone: self.phone.clone(),
            email: self.email.clone(),
            message: self.message.clone(),
            postal_code: self.postal_code.clone(),
            consent: self.consent.clone(),
            department: self.department.clone(),
            intent: IntentJson {
                matched: self.intent.clone(),
            },
            emergency: self.emergency,
            branch: self.branch.clone(),
            priority: self.priority.as_str().to_string(),
            owner: self.owner.clone(),
            state: self.state.as_str().to_string(),
            outcome: self.outcome.map(|o| o.as_str().to_string()),
            created_at: self.created_at.to_string(),
            respond_by: self.respond_by.to_string(),
            first_contact_at: rfc3339(self.first_contact_at),
            snoozed_until: rfc3339(self.snoozed_until),
        }
    }

    pub(crate) fn from_row(row: &Row<'_>) -> Result<Self, QueryError> {
        let id: String = row.get(0)?;
        let corrupt =
            |error: &dyn std::fmt::Display| QueryError::Corrupt(format!("lead {id}: {error}"));
        let kind: String = row.get(1)?;
        let consent: String = row.get(9)?;
        let priority: String = row.get(14)?;
        let state: String = row.get(16)?;
        let outcome: Option<String> = row.get(17)?;
        Ok(LeadRow {
            kind: kind.parse().map_err(|e| corrupt(&e))?,
            source: row.get(2)?,
            campaign: row.get(3)?,
            name: row.get(4)?,
            phone: row.get(5)?,
            email: row.get(6)?,
            message: row.get(7)?,
            postal_code: row.get(8)?,
            consent: serde_json::from_str(&consent).map_err(|e| corrupt(&e))?,
            department: row.get(10)?,
            intent: row.get(11)?,
            emergency: row.get(12)?,
            branch: row.get(13)?,
            priority: priority.parse().map_err(|e| corrupt(&e))?,
            owner: row.get(15)?,
            state: state.parse().map_err(|e| corrupt(&e))?,
            outcome: outcome
                .map(|name| name.parse().map_err(|e| corrupt(&e)))
                .transpose()?,
            created_at: timestamp(row.get(18)?)?,
            respond_by: timestamp(row.get(19)?)?,
            first_contact_at: row.get::<_, Option<i64>>(20)?.map(timestamp).transpose()?,
            snoozed_until: row.get::<_, Option<i64>>(21)?.map(timestamp).transpose()?,
            id: LeadId::new(id),
        })
    }
}

fn timestamp(millis: i64) -> Result<Timestamp, QueryError> {
    Timestamp::from_millisecond(millis)
        .map_err(|error| QueryError::Corrupt(format!("time {millis}: {error}")))
}

/// One step of a lead's history.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadHistory {
    /// When.
    pub at: Timestamp,
    /// What (`created`, `offered`, `accepted`, …).
    pub event: String,
    /// The agent concerned, if any.
    pub agent: Option<String>,
    /// More about it, a JSON object (`{}` for nothing).
    pub detail: Value,
}

impl LeadHistory {
    /// `{"at","event"}`, with `"agent"` when there is one and the detail's
    /// fields (`"reason"`, …) when it has any.
    pub fn to_json(&self) -> Value {
        let mut value = json!({"at": self.at.to_string(), "event": self.event});
        if let Value::Object(fields) = &mut value {
            if let Some(agent) = &self.agent {
                fields.insert("agent".into(), json!(agent));
            }
            if let Value::Object(detail) = &self.detail {
                for (name, item) in detail {
                    if !matches!(name.as_str(), "at" | "event" | "agent") {
                        fields.insert(name.clone(), item.clone());
                    }
                }
            }
        }
        value
    }
}

/// A lead and its history.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadTimeline {
    /// The lead.
    pub lead: LeadRow,
    /// Its history, oldest first.
    pub history: Vec<LeadHistory>,
}

/// An open lead as the desk needs it back after a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct DeskRow {
    /// The lead (owner, state, `respond_by`, `snoozed_until`, …).
    pub lead: LeadRow,
    /// The owner had it on offer (not accepted) until then: the `until` of
    /// its last `offered` event, when no accept, assignment, contact or
    /// expiry followed it.
    pub offered_until: Option<Timestamp>,
    /// It was escalated once already.
    pub escalated: bool,
}

/// Which leads [`Reader::leads`] lists: newest first, at most `limit`,
/// optionally in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadQuery {
    /// The most to list.
    pub limit: usize,
    /// Only leads in this state.
    pub state: Option<LeadState>,
}

impl Reader {
    /// The leads `query` selects, newest first, each with its history.
    pub fn leads(&self, query: &LeadQuery) -> Result<Vec<LeadTimeline>, QueryError> {
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        self.with(|connection| {
            let transaction = connection.unchecked_transaction()?;
            let rows = match query.state {
                Some(state) => rows(
                    &transaction,
                    &format!(
                        "SELECT {LEAD_COLUMNS} FROM leads WHERE state = ?1
                         ORDER BY created_at DESC, id DESC LIMIT ?2"
                    ),
                    &[&state.as_str(), &limit],
                )?,
                None => rows(
                    &transaction,
                    &format!(
                        "SELECT {LEAD_COLUMNS} FROM leads ORDER BY created_at DESC, id DESC LIMIT ?1"
                    ),
                    &[&limit],
                )?,
            };
            with_history(&transaction, rows)
        })
    }

    /// The leads created in `range`, newest first, at most `limit`, without
    /// their histories (the CSV export).
    pub fn leads_in(&self, range: &TimeRange, limit: usize) -> Result<Vec<LeadRow>, QueryError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|connection| {
            rows(
                connection,
                &format!(
                    "SELECT {LEAD_COLUMNS} FROM leads WHERE created_at >= ?1 AND created_at < ?2
                     ORDER BY created_at DESC, id DESC LIMIT ?3"
                ),
                &[
                    &range.from().as_millisecond(),
                    &range.to().as_millisecond(),
                    &limit,
                ],
            )
        })
    }

    /// One lead and its history; `None` for an unknown id.
    pub fn lead(&self, id: &str) -> Result<Option<LeadTimeline>, QueryError> {
        self.with(|connection| {
            let transaction = connection.unchecked_transaction()?;
            let row = rows(
                &transaction,
                &format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id = ?1"),
                &[&id],
            )?;
            Ok(with_history(&transaction, row)?.pop())
        })
    }

    /// The leads not closed, emergencies first, then the oldest first
    /// (the dashboard's panel), at most `limit`.
    pub fn open_leads(&self, limit: usize) -> Result<Vec<LeadRow>, QueryError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|connection| {
            rows(
                connection,
                &format!(
                    "SELECT {LEAD_COLUMNS} FROM leads WHERE state <> 'closed'
                     ORDER BY emergency DESC, created_at ASC LIMIT ?1"
                ),
                &[&limit],
            )
        })
    }

    /// The leads not closed with what the desk needs to take them back
    /// (at start), emergencies first, then the oldest, at most `limit`.
    pub fn desk_leads(&self, limit: usize) -> Result<Vec<DeskRow>, QueryError> {
        let leads = self.open_leads(limit)?;
        self.with(|connection| {
            let mut last = connection.prepare_cached(
                "SELECT event, detail FROM lead_events WHERE lead_id = ?1
                 AND event IN ('offered', 'offer_expired', 'accepted', 'assigned', 'escalated',
                               'contacted')
                 ORDER BY seq DESC LIMIT 1",
            )?;
            let mut escalations = connection.prepare_cached(
                "SELECT count(*) FROM lead_events WHERE lead_id = ?1 AND event = 'escalated'",
            )?;
            let mut rows = Vec::with_capacity(leads.len());
            for lead in leads {
                let id = lead.id.as_str().to_string();
                let mut found = last.query(params![id])?;
                let offered_until = match found.next()? {
                    Some(row) if row.get::<_, String>(0)? == "offered" => {
                        let detail: String = row.get(1)?;
                        serde_json::from_str::<Value>(&detail)
                            .ok()
                            .and_then(|detail| detail["until"].as_i64())
                            .map(timestamp)
                            .transpose()?
                    }
                    _ => None,
                };
                drop(found);
                let escalated: i64 = escalations.query_row(params![id], |row| row.get(0))?;
                rows.push(DeskRow {
                    offered_until: offered_until.filter(|_| lead.owner.is_some()),
                    escalated: escalated > 0,
                    lead,
                });
            }
            Ok(rows)
        })
    }

    /// Emergency leads nobody has reached yet and not closed, oldest
    /// first, at most `limit`: the `emergency_lead` alerts to raise again
    /// after a restart.
    pub fn unanswered_emergencies(&self, limit: usize) -> Result<Vec<LeadRow>, QueryError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|connection| {
            rows(
                connection,
                &format!(
                    "SELECT {LEAD_COLUMNS} FROM leads WHERE state <> 'closed'
                     AND emergency = 1 AND first_contact_at IS NULL
                     ORDER BY emergency DESC, created_at ASC LIMIT ?1"
                ),
                &[&limit],
            )
        })
    }

    /// The calls and leads of the same patient from before `before`, newest
    /// first, at most `limit` ids: leads by `phone` (E.164), calls by any
    /// of `caller_ids` (the forms a phone may have sent the number in),
    /// leaving out `except` (the lead asked about).
    pub fn related(
        &self,
        phone: &str,
        caller_ids: &[String],
        before: Timestamp,
        except: &str,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let before = before.as_millisecond();
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|connection| {
            let mut found: Vec<(i64, String)> = Vec::new();
            let mut statement = connection.prepare_cached(
                "SELECT created_at, id FROM leads WHERE phone = ?1 AND created_at <= ?2 AND id <> ?3
                 ORDER BY created_at DESC LIMIT ?4",
            )?;
            let mut leads = statement.query(params![phone, before, except, limit_sql])?;
            while let Some(row) = leads.next()? {
                found.push((row.get(0)?, row.get(1)?));
            }
            let mut statement = connection.prepare_cached(
                "SELECT started_at, id FROM calls WHERE caller = ?1 AND started_at <= ?2
                 ORDER BY started_at DESC LIMIT ?3",
            )?;
            for caller in caller_ids {
                let mut calls = statement.query(params![caller, before, limit_sql])?;
                while let Some(row) = calls.next()? {
                    found.push((row.get(0)?, row.get(1)?));
                }
            }
            found.sort_by(|a, b| b.cmp(a));
            found.dedup_by(|a, b| a.1 == b.1);
            Ok(found.into_iter().take(limit).map(|(_, id)| id).collect())
        })
    }

    /// The open call leads (`abandoned_call`, `callback`) of `phone`
    /// (E.164) that nobody has reached yet and whose `respond_by` is not
    /// past at `now`: a call of that number that reached an agent answers
    /// them. At most `limit`, oldest first.
    pub fn unreached_call_leads(
        &self,
        phone: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<LeadId>, QueryError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT id FROM leads WHERE phone = ?1 AND kind IN ('abandoned_call', 'callback')
                 AND state <> 'closed' AND first_contact_at IS NULL AND respond_by >= ?2
                 ORDER BY created_at ASC LIMIT ?3",
            )?;
            let mut rows = statement.query(params![phone, now.as_millisecond(), limit])?;
            let mut ids = Vec::new();
            while let Some(row) = rows.next()? {
                ids.push(LeadId::new(row.get::<_, String>(0)?));
            }
            Ok(ids)
        })
    }

    /// Whether a call from any of `caller_ids` (the forms one patient's
    /// number may come in) reached an agent at or after `since`: an
    /// abandoned call of that patient is then no lost lead.
    pub fn reached_since(
        &self,
        caller_ids: &[String],
        since: Timestamp,
    ) -> Result<bool, QueryError> {
        let since = since.as_millisecond();
        self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT 1 FROM calls WHERE caller = ?1 AND connected_at >= ?2 LIMIT 1",
            )?;
            for caller in caller_ids {
                if statement.exists(params![caller, since])? {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }

    /// Per source and per department, the leads created in `range`, as
    /// of `now` (definitions on [`LeadReport`]).
    pub fn lead_report(&self, range: &TimeRange, now: Timestamp) -> Result<LeadReport, QueryError> {
        let (from, to) = range.millis();
        let facts = self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT source, department, created_at, respond_by, first_contact_at, outcome, kind
                 FROM leads WHERE created_at >= ?1 AND created_at < ?2",
            )?;
            let mut found = statement.query(params![from, to])?;
            let mut facts = Vec::new();
            while let Some(row) = found.next()? {
                let outcome: Option<String> = row.get(5)?;
                facts.push(LeadFacts {
                    kind: row.get(6)?,
                    source: row.get(0)?,
                    department: row.get(1)?,
                    created_at: row.get(2)?,
                    respond_by: row.get(3)?,
                    first_contact_at: row.get(4)?,
                    booked: outcome.as_deref() == Some(LeadOutcome::Booked.as_str()),
                });
            }
            Ok(facts)
        })?;
        Ok(report::leads(&facts, now.as_millisecond()))
    }

    /// The signatures of signed leads created at or after `since`, as
    /// `(t in Unix seconds, v1 hex)`: what the replay cache is seeded with
    /// at start.
    pub fn lead_signatures_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(i64, String)>, QueryError> {
        let since = since.as_millisecond();
        self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT signed_at, signature FROM leads
                 WHERE created_at >= ?1 AND signature IS NOT NULL AND signed_at IS NOT NULL",
            )?;
            let mut found = statement.query(params![since])?;
            let mut signatures = Vec::new();
            while let Some(row) = found.next()? {
                signatures.push((row.get(0)?, row.get(1)?));
            }
            Ok(signatures)
        })
    }

    /// The lead whose voicemail is the recording `name` (its
    /// `voicemail_recorded` step), for the retention sweep.
    pub fn voicemail_lead(&self, name: &str) -> Result<Option<LeadId>, QueryError> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT lead_id FROM lead_events
                 WHERE event = 'voicemail_recorded' AND json_extract(detail, '$.recording') = ?1
                 LIMIT 1",
            )?;
            let mut found = statement.query(params![name])?;
            match found.next()? {
                Some(row) => Ok(Some(LeadId::new(row.get::<_, String>(0)?))),
                None => Ok(None),
            }
        })
    }
}

fn rows(
    connection: &Connection,
    sql: &str,
    values: &[&dyn ToSql],
) -> Result<Vec<LeadRow>, QueryError> {
    let mut statement = connection.prepare_cached(sql)?;
    let mut found = statement.query(values)?;
    let mut rows = Vec::new();
    while let Some(row) = found.next()? {
        rows.push(LeadRow::from_row(row)?);
    }
    Ok(rows)
}

fn with_history(
    connection: &Connection,
    rows: Vec<LeadRow>,
) -> Result<Vec<LeadTimeline>, QueryError> {
    let mut statement = connection.prepare_cached(
        "SELECT at, event, agent, detail FROM lead_events WHERE lead_id = ?1 ORDER BY seq",
    )?;
    let mut timelines = Vec::with_capacity(rows.len());
    for lead in rows {
        let mut found = statement.query(params![lead.id.as_str()])?;
        let mut history = Vec::new();
        while let Some(row) = found.next()? {
            let detail: String = row.get(3)?;
            history.push(LeadHistory {
                at: timestamp(row.get(0)?)?,
                event: row.get(1)?,
                agent: row.get(2)?,
                // A detail that is not JSON is shown as none rather than
                // hiding the lead.
                detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
            });
        }
        timelines.push(LeadTimeline { lead, history });
    }
    Ok(timelines)
}
