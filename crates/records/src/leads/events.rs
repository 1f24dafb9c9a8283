//! Steps of a lead's history written after it was stored: what was done
//! for it (a call out started, failed, reached the patient, ended).
//!
//! Like a call's steps they go through the journal's one writer and never
//! make the caller wait ([`JournalHandle::record_lead_event`]). A step
//! marked [`LeadEvent::first_contact`] also sets the lead's
//! `first_contact_at` (the first time only) and its state `contacted`
//! (unless it is closed): DESIGN.md's "first_contact_at: when a
//! click-to-call or callback to the patient is answered".
//!
//! [`JournalHandle::record_lead_event`]: crate::JournalHandle::record_lead_event

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::LeadId;

/// One step of a lead's history.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadEvent {
    /// The lead.
    pub lead: LeadId,
    /// When.
    pub at: Timestamp,
    /// What: `call_started`, `call_failed`, `patient_answered`, `call_ended`, …
    pub event: String,
    /// The agent concerned, if any.
    pub agent: Option<String>,
    /// More about it (`{"reason": "agent_busy"}`), a JSON object; `{}` for
    /// nothing. Never the patient's data: the lead has it.
    pub detail: Value,
    /// The patient was reached: `first_contact_at` and state `contacted`.
    pub first_contact: bool,
}

/// Takes the next sequence number of the lead's history (and, for a first
/// contact, sets `first_contact_at` and the state) in one statement; no
/// row for an unknown lead.
const NEXT_SEQ: &str = "UPDATE leads SET events = events + 1,
         first_contact_at = CASE WHEN ?3 THEN coalesce(first_contact_at, ?2)
                                 ELSE first_contact_at END,
         state = CASE WHEN ?3 AND state <> 'closed' THEN 'contacted' ELSE state END
     WHERE id = ?1
     RETURNING events";

const INSERT: &str = "INSERT INTO lead_events (lead_id, seq, at, event, agent, detail)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// Writes `events` in one transaction; a step of an unknown lead is
/// skipped (and counted in the result: how many were written).
pub(crate) fn write_lead_events(
    connection: &mut Connection,
    events: &[LeadEvent],
) -> rusqlite::Result<usize> {
    let transaction = connection.transaction()?;
    let mut written = 0;
    for event in events {
        let at = event.at.as_millisecond();
        let seq: Option<i64> = transaction
            .prepare_cached(NEXT_SEQ)?
            .query_row(
                params![event.lead.as_str(), at, event.first_contact],
                |row| row.get(0),
            )
            .optional()?;
        let Some(seq) = seq else {
            continue;
        };
        let detail = match &event.detail {
            Value::Object(_) => event.detail.to_string(),
            _ => "{}".to_string(),
        };
        transaction.prepare_cached(INSERT)?.execute(params![
            event.lead.as_str(),
            seq,
            at,
            event.event,
            event.agent,
            detail
        ])?;
        written += 1;
    }
    transaction.commit()?;
    Ok(written)
}
