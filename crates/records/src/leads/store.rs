//! The writer's side of leads: one transaction per batch of leads, each
//! lead's idempotency key looked up and claimed inside it.

use rusqlite::{Connection, OptionalExtension, params};

use super::{LeadChange, LeadStored, NewLead};
use crate::fault::FaultPlan;
use crate::webhooks::{self, Hooks, LeadStep};
use domain::WebhookEvent;
use serde_json::json;

/// An earlier lead's claim on an idempotency key, within the window.
const KEY_LOOKUP: &str = "SELECT lead_id, request_hash FROM lead_keys
     WHERE source = ?1 AND key = ?2 AND created_at >= ?3";

/// Claims a key (replacing a claim from before the window).
const KEY_CLAIM: &str = "INSERT INTO lead_keys (source, key, lead_id, request_hash, created_at)
     VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (source, key) DO UPDATE SET lead_id = excluded.lead_id,
         request_hash = excluded.request_hash, created_at = excluded.created_at";

/// Forgets keys from before the window.
const KEY_PRUNE: &str = "DELETE FROM lead_keys WHERE created_at < ?1";

const INSERT: &str = "INSERT INTO leads (id, kind, source, campaign, name, phone, email, message,
         postal_code, consent, department, intent, emergency, branch, priority, state,
         created_at, respond_by, signed_at, signature, events)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 'waiting',
         ?16, ?17, ?18, ?19, 1)";

const CREATED: &str = "INSERT INTO lead_events (lead_id, seq, at, event, agent, detail)
     VALUES (?1, 1, ?2, 'created', NULL, '{}')";

/// Writes `leads` in one transaction and says, for each in order, what was
/// done. `faults` may fail the batch before the commit (rolled back, as a
/// real I/O error at commit would be).
pub(crate) fn write_leads<'a>(
    connection: &mut Connection,
    leads: impl Iterator<Item = &'a NewLead>,
    faults: &FaultPlan,
    hooks: Hooks<'_>,
) -> rusqlite::Result<Vec<LeadStored>> {
    let transaction = connection.transaction()?;
    let mut stored = Vec::new();
    let mut prune_before: Option<i64> = None;
    for lead in leads {
        let outcome = write_one(&transaction, lead)?;
        if outcome == LeadStored::Created {
            hooks.lead(
                &transaction,
                LeadStep {
                    kind: WebhookEvent::LeadCreated,
                    lead: lead.id.as_str(),
                    seq: 1,
                    at: lead.created_at,
                    agent: None,
                    detail: &json!({}),
                },
            )?;
        }
        stored.push(outcome);
        if let Some(idempotency) = &lead.idempotency {
            let since = idempotency.honoured_since.as_millisecond();
            prune_before = Some(prune_before.map_or(since, |before: i64| before.min(since)));
        }
    }
    if let Some(before) = prune_before {
        transaction
            .prepare_cached(KEY_PRUNE)?
            .execute(params![before])?;
    }
    if let Some(error) = faults.take_failure() {
        return Err(error);
    }
    transaction.commit()?;
    Ok(stored)
}

fn write_one(connection: &Connection, lead: &NewLead) -> rusqlite::Result<LeadStored> {
    let created_at = lead.created_at.as_millisecond();
    if let Some(idempotency) = &lead.idempotency {
        let earlier: Option<(String, String)> = connection
            .prepare_cached(KEY_LOOKUP)?
            .query_row(
                params![
                    lead.source,
                    idempotency.key,
                    idempotency.honoured_since.as_millisecond()
                ],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        if let Some((id, request_hash)) = earlier {
            return Ok(LeadStored::Existing {
                id: super::LeadId::new(id),
                request_hash,
            });
        }
        connection.prepare_cached(KEY_CLAIM)?.execute(params![
            lead.source,
            idempotency.key,
            lead.id.as_str(),
            idempotency.request_hash,
            created_at
        ])?;
    }
    connection.prepare_cached(INSERT)?.execute(params![
        lead.id.as_str(),
        lead.kind.as_str(),
        lead.source,
        lead.campaign,
        lead.name,
        lead.phone,
        lead.email,
        lead.message,
        lead.postal_code,
        lead.consent.to_string(),
        lead.department,
        lead.intent,
        lead.emergency,
        lead.branch,
        lead.priority.as_str(),
        created_at,
        lead.respond_by.as_millisecond(),
        lead.signature.as_ref().map(|s| s.signed_at),
        lead.signature.as_ref().map(|s| s.mac.as_str()),
    ])?;
    connection
        .prepare_cached(CREATED)?
        .execute(params![lead.id.as_str(), created_at])?;
    Ok(LeadStored::Created)
}

/// A change's fold into its lead's row, taking the next `seq`; no row for
/// an unknown lead.
const CHANGE: &str = "UPDATE leads SET owner = ?2, state = ?3, outcome = coalesce(?4, outcome),
         first_contact_at = coalesce(first_contact_at, ?5), snoozed_until = ?6,
         events = events + 1
     WHERE id = ?1
     RETURNING events";

const CHANGE_EVENT: &str = "INSERT INTO lead_events (lead_id, seq, at, event, agent, detail)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// Writes `changes` in one transaction, in order.
pub(crate) fn write_changes(
    connection: &mut Connection,
    changes: &[LeadChange],
    faults: &FaultPlan,
    hooks: Hooks<'_>,
) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    for change in changes {
        let seq: Option<i64> = transaction
            .prepare_cached(CHANGE)?
            .query_row(
                params![
                    change.id.as_str(),
                    change.owner,
                    change.state.as_str(),
                    change.outcome.map(|o| o.as_str()),
                    change.first_contact_at.map(|at| at.as_millisecond()),
                    change.snoozed_until.map(|at| at.as_millisecond()),
                ],
                |row| row.get(0),
            )
            .optional()?;
        let Some(seq) = seq else {
            continue;
        };
        transaction.prepare_cached(CHANGE_EVENT)?.execute(params![
            change.id.as_str(),
            seq,
            change.at.as_millisecond(),
            change.event,
            change.agent,
            change.detail.to_string(),
        ])?;
        if let Some(kind) = webhooks::of_lead_change(change.event) {
            hooks.lead(
                &transaction,
                LeadStep {
                    kind,
                    lead: change.id.as_str(),
                    seq,
                    at: change.at,
                    agent: change.agent.as_deref(),
                    detail: &change.detail,
                },
            )?;
        }
    }
    if let Some(error) = faults.take_failure() {
        return Err(error);
    }
    transaction.commit()
}
