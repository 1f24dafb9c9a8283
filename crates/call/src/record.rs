//! A call as the API shows it (`GET /api/calls`): every call is a lead
//! with a caller, a source, a department, an owner and an outcome. The
//! core keeps its call's [`CallRecord`] up to date and says when it changed
//! ([`crate::Action::Publish`]); the same type, built from the journal,
//! stands for the calls of earlier days, so the API's JSON has one builder
//! ([`CallRecord::to_json`]).

use ivr::jiff::Timestamp;
use records::{Outcome, Priority};
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

impl TransferRecord {
    /// The transfer as `/api/calls` shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "from_agent": self.from_agent,
            "from_department": self.from_department,
            "connected_at": self.connected_at.map(|t| t.to_string()),
            "to_department": self.to_department,
            "to_agent": self.to_agent,
            "kind": self.kind,
            "reason": self.reason,
            "at": self.at.to_string(),
        })
    }
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

    /// The JSON of DESIGN.md's `GET /api/calls`.
    pub fn to_json(&self) -> Value {
        let time = |t: &Option<Timestamp>| t.map(|t| t.to_string());
        json!({
            "id": self.id,
            "caller": self.caller,
            "dialed": self.dialed,
            "source": self.source,
            "department": self.department,
            "priority": self.priority.as_str(),
            "agent": self.agent,
            "outcome": Outcome::name(self.outcome),
            "started_at": self.started_at.to_string(),
            "connected_at": time(&self.connected_at),
            "ended_at": time(&self.ended_at),
            "wait_ms": self.wait_ms,
            "transfers": self.transfers.iter().map(TransferRecord::to_json).collect::<Vec<_>>(),
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
}
