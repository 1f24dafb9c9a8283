//! A call as the API shows it (`GET /api/calls`): every call is a lead
//! with a caller, a source, a department, an owner and an outcome. The
//! core keeps its call's [`CallRecord`] up to date and says when it changed
//! ([`crate::Action::Publish`]); the same type, built from the journal,
//! stands for the calls of earlier days, so the API's JSON has one builder
//! ([`CallRecord::to_json`]).

use ivr::jiff::Timestamp;
use records::{CallEvent, CallRow, EventRow, Outcome, Priority};
use serde_json::{Value, json};

/// One call as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// A unique id (`c-<start>-<n>`).
    pub id: String,
    /// The caller's number (From user part).
    pub caller: String,
    /// The number dialed (Request-URI user part).
    pub dialed: String,
    /// The dialed number's source tag.
    pub source: Option<String>,
    /// The queue the call is (or was last) in.
    pub department: Option<String>,
    /// Its priority in that queue (or the dialed number's).
    pub priority: Priority,
    /// The agent who took it.
    pub agent: Option<String>,
    /// How it ended (`None`: not over yet, `in_progress` in the API). The
    /// journal's outcome: one enum for live and past calls.
    pub outcome: Option<Outcome>,
    /// When the INVITE came.
    pub started_at: Timestamp,
    /// When an agent answered.
    pub connected_at: Option<Timestamp>,
    /// When it ended.
    pub ended_at: Option<Timestamp>,
    /// How long the caller waited in queues before an agent answered (or
    /// before the call ended unanswered). Across a transfer the waits add
    /// up; the time spent talking does not count.
    pub wait_ms: Option<u64>,
    /// The transfers of the call, oldest first (an extra field beside
    /// DESIGN.md's: `department`, `agent` and `connected_at` describe the
    /// last queue, these the earlier ones).
    pub transfers: Vec<TransferRecord>,
}

/// One transfer of a call by an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferRecord {
    /// The agent who transferred the call.
    pub from_agent: String,
    /// The queue the call was in.
    pub from_department: Option<String>,
    /// When that agent had answered.
    pub connected_at: Option<Timestamp>,
    /// The queue the call went to.
    pub to_department: String,
    /// The agent the transfer named, if it named one.
    pub to_agent: Option<String>,
    /// `blind` (REFER) or `attended` (REFER with Replaces).
    pub kind: &'static str,
    /// Why: the REFER's `Reason` or `Subject` when the phone gave one,
    /// else who asked for what (`agent 1001 transferred to cardiology`).
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// A transfer as `/api/calls` shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = CallTransfer)]
pub struct TransferJson {
    /// The agent who transferred.
    pub from_agent: String,
    /// The queue the call was in.
    pub from_department: Option<String>,
    /// RFC 3339 UTC: when that agent had answered.
    pub connected_at: Option<String>,
    /// The queue it went to.
    pub to_department: String,
    /// The agent it went to (attended).
    pub to_agent: Option<String>,
    /// `blind` or `attended`.
    pub kind: String,
    /// Why.
    pub reason: String,
    /// RFC 3339 UTC.
    pub at: String,
}

impl TransferRecord {
    /// The transfer as `/api/calls` shows it.
    pub fn to_json(&self) -> Value {
        json!(self.view())
    }

    /// The transfer as its JSON type.
    pub fn view(&self) -> TransferJson {
        TransferJson {
            from_agent: self.from_agent.clone(),
            from_department: self.from_department.clone(),
            connected_at: self.connected_at.map(|t| t.to_string()),
            to_department: self.to_department.clone(),
            to_agent: self.to_agent.clone(),
            kind: self.kind.to_string(),
            reason: self.reason.clone(),
            at: self.at.to_string(),
        }
    }
}

/// One call of `GET /api/calls` (DESIGN.md's element, with its
/// transfers).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Call)]
pub struct CallJson {
    /// `c-…`.
    pub id: String,
    /// The patient's number.
    pub caller: String,
    /// The number dialed.
    pub dialed: String,
    /// The dialed number's source tag.
    pub source: Option<String>,
    /// The last queue it entered.
    pub department: Option<String>,
    /// `routine` or `urgent`.
    pub priority: String,
    /// The agent who answered last.
    pub agent: Option<String>,
    /// `in_progress`, `connected`, `abandoned`, `overflowed`, `rejected`,
    /// `after_hours` or `interrupted`.
    pub outcome: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC.
    pub connected_at: Option<String>,
    /// RFC 3339 UTC.
    pub ended_at: Option<String>,
    /// First queue entry to first answer (or the end).
    pub wait_ms: Option<u64>,
    /// Transfers by agents, oldest first.
    pub transfers: Vec<TransferJson>,
}

impl CallRecord {
    /// A new call from `caller` to `dialed`, starting at `started_at`.
    pub fn new(id: String, caller: &str, dialed: &str, started_at: Timestamp) -> Self {
        CallRecord {
            id,
            caller: caller.to_string(),
            dialed: dialed.to_string(),
            source: None,
            department: None,
            priority: Priority::Routine,
            agent: None,
            outcome: None,
            started_at,
            connected_at: None,
            ended_at: None,
            wait_ms: None,
            transfers: Vec::new(),
        }
    }

    /// A call of the journal (`row`, with its `events`, oldest first, when
    /// it has transfers): what a live call's record would say, so that
    /// `/api/calls` builds every call's JSON the same way, transfers
    /// included, whether the call is in memory or from before a restart.
    pub fn from_journal(row: &CallRow, events: &[EventRow]) -> Self {
        let mut record = CallRecord {
            id: row.id.as_str().to_string(),
            caller: row.caller.clone(),
            dialed: row.dialed.clone(),
            source: row.source.clone(),
            department: row.department.clone(),
            priority: row.priority,
            agent: row.agent.clone(),
            outcome: row.outcome,
            started_at: row.started_at,
            connected_at: row.connected_at,
            ended_at: row.ended_at,
            wait_ms: row.wait_ms,
            transfers: Vec::new(),
        };
        let (mut department, mut agent, mut connected_at) = (None, None, None);
        for step in events {
            match &step.event {
                CallEvent::Queued {
                    department: queue, ..
                } => department = Some(queue.clone()),
                CallEvent::Connected { agent: who, .. } => {
                    agent = Some(who.clone());
                    connected_at = Some(step.at);
                }
                CallEvent::Transferred {
                    to,
                    reason,
                    to_agent,
                    note,
                } => {
                    let from_agent: String = agent.take().unwrap_or_default();
                    // The journal's `reason` is the kind (`blind`, `attended`).
                    let kind = if reason.as_deref() == Some("attended") {
                        "attended"
                    } else {
                        "blind"
                    };
                    let reason = note.clone().unwrap_or_else(|| {
                        format!(
                            "agent {from_agent} transferred to {}",
                            to_agent.as_deref().unwrap_or(to)
                        )
                    });
                    record.transfers.push(TransferRecord {
                        from_agent,
                        from_department: department.clone(),
                        connected_at: connected_at.take(),
                        to_department: to.clone(),
                        to_agent: to_agent.clone(),
                        kind,
                        reason,
                        at: step.at,
                    });
                }
                _ => {}
            }
        }
        record
    }

    /// The JSON of DESIGN.md's `GET /api/calls`.
    pub fn to_json(&self) -> Value {
        let time = |t: &Option<Timestamp>| t.map(|t| t.to_string());
        json!(CallJson {
            id: self.id.clone(),
            caller: self.caller.clone(),
            dialed: self.dialed.clone(),
            source: self.source.clone(),
            department: self.department.clone(),
            priority: self.priority.as_str().to_string(),
            agent: self.agent.clone(),
            outcome: Outcome::name(self.outcome).to_string(),
            started_at: self.started_at.to_string(),
            connected_at: time(&self.connected_at),
            ended_at: time(&self.ended_at),
            wait_ms: self.wait_ms,
            transfers: self.transfers.iter().map(TransferRecord::view).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_of_a_new_call() {
        let record = CallRecord::new("c-1".into(), "+1312", "+15550100", Timestamp::UNIX_EPOCH);
        let json = record.to_json();
        assert_eq!(json["outcome"], "in_progress");
        assert_eq!(json["agent"], Value::Null);
        assert_eq!(json["started_at"], "1970-01-01T00:00:00Z");
        assert_eq!(json["transfers"], json!([]));
        assert_eq!(json["priority"], "routine");
        let mut over = record.clone();
        over.outcome = Some(Outcome::AfterHours);
        over.priority = Priority::Urgent;
        assert_eq!(over.to_json()["outcome"], "after_hours");
        assert_eq!(over.to_json()["priority"], "urgent");
    }

    #[test]
    fn a_transfer_is_on_the_record() {
        let mut record = CallRecord::new("c-1".into(), "+1312", "+15550100", Timestamp::UNIX_EPOCH);
        record.department = Some("cardiology".into());
        record.transfers.push(TransferRecord {
            from_agent: "1001".into(),
            from_department: Some("front-desk".into()),
            connected_at: Some(Timestamp::UNIX_EPOCH),
            to_department: "cardiology".into(),
            to_agent: None,
            kind: "blind",
            reason: "agent 1001 transferred to cardiology".into(),
            at: Timestamp::UNIX_EPOCH,
        });
        let json = record.to_json();
        assert_eq!(json["department"], "cardiology");
        assert_eq!(json["transfers"][0]["from_agent"], "1001");
        assert_eq!(json["transfers"][0]["from_department"], "front-desk");
        assert_eq!(json["transfers"][0]["to_department"], "cardiology");
        assert_eq!(json["transfers"][0]["to_agent"], Value::Null);
        assert_eq!(json["transfers"][0]["kind"], "blind");
        assert_eq!(json["transfers"][0]["at"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn a_journal_call_reads_as_a_live_one_with_its_transfers() {
        let at = |s: i64| Timestamp::from_second(1_800_000_000 + s).expect("a time");
        let row = CallRow {
            id: "c-7".into(),
            caller: "+13125550100".into(),
            dialed: "+15550100".into(),
            source: Some("main-line".into()),
            branch: None,
            department: Some("cardiology".into()),
            priority: Priority::Urgent,
            agent: Some("1002".into()),
            outcome: Some(Outcome::Connected),
            started_at: at(0),
            answered_at: Some(at(0)),
            queued_at: Some(at(10)),
            connected_at: Some(at(20)),
            ended_at: Some(at(90)),
            wait_ms: Some(15_000),
            talk_ms: Some(70_000),
            transfers: 2,
            sla_ms: Some(60_000),
        };
        let step = |seq: u32, s: i64, event: CallEvent| EventRow {
            seq,
            at: at(s),
            event,
        };
        let queued = |department: &str| CallEvent::Queued {
            department: department.into(),
            priority: Priority::Urgent,
            sla_ms: 60_000,
        };
        let connected = |agent: &str| CallEvent::Connected {
            agent: agent.into(),
            branch: None,
        };
        let events = [
            step(1, 10, queued("front-desk")),
            step(2, 20, connected("1001")),
            step(
                3,
                40,
                CallEvent::Transferred {
                    to: "pediatrics".into(),
                    reason: Some("blind".into()),
                    to_agent: None,
                    note: Some("wrong department".into()),
                },
            ),
            step(4, 40, queued("pediatrics")),
            step(5, 45, connected("1003")),
            // A step of an older journal: no agent, no note.
            step(
                6,
                60,
                CallEvent::Transferred {
                    to: "cardiology".into(),
                    reason: Some("attended".into()),
                    to_agent: None,
                    note: None,
                },
            ),
            step(7, 60, queued("cardiology")),
            step(8, 65, connected("1002")),
        ];
        let record = CallRecord::from_journal(&row, &events);
        let json = record.to_json();
        assert_eq!(json["id"], "c-7");
        assert_eq!(json["priority"], "urgent");
        assert_eq!(json["outcome"], "connected");
        assert_eq!(json["agent"], "1002");
        assert_eq!(json["department"], "cardiology");
        assert_eq!(json["wait_ms"], 15_000);
        assert_eq!(json["transfers"].as_array().map(Vec::len), Some(2));
        let first = &json["transfers"][0];
        assert_eq!(first["from_agent"], "1001");
        assert_eq!(first["from_department"], "front-desk");
        assert_eq!(first["connected_at"], at(20).to_string());
        assert_eq!(first["to_department"], "pediatrics");
        assert_eq!(first["kind"], "blind");
        assert_eq!(first["reason"], "wrong department");
        assert_eq!(first["at"], at(40).to_string());
        let second = &json["transfers"][1];
        assert_eq!(second["from_agent"], "1003");
        assert_eq!(second["from_department"], "pediatrics");
        assert_eq!(second["kind"], "attended");
        assert_eq!(second["reason"], "agent 1003 transferred to cardiology");
        // Without transfers, no steps are needed.
        let plain = CallRecord::from_journal(&row, &[]);
        assert_eq!(plain.to_json()["transfers"], json!([]));
    }
}
