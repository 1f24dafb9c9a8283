//! The overlap check of the journalled claim history (issue 24: "the
//! claim history is journalled, so overlaps can be checked"):
//! `GET /api/reports/claims`.
//!
//! The journal's rows ([`records::ClaimRow`], one per holding) become the
//! holdings `cluster::claims` rebuilds from Redis's stream, and the one
//! checker, [`cluster::claims::find_violations`], reads them: no two
//! holdings of an agent overlap, and a later holding always has a greater
//! epoch. The stream is capped and forgets; the journal keeps them.
//!
//! Some holdings are known by one end only, and are checked at that
//! instant (a zero-length holding: it must not fall inside another one):
//! * an `interrupted` holding with no end known (its holder stopped with
//!   it and no reaper's row has come): checked at its claim;
//! * a holding whose claim never reached its holder's journal (killed
//!   within the journal's linger of the claim), known by a reaper's end:
//!   checked at that end.
//!
//! They are counted apart, so a report says how much it could check.

use cluster::claims::{Epoch, Holding, NodeId, RedisMillis, Violation, find_violations};
use records::ClaimRow;
use routing::AgentId;

/// What the check found over some holdings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClaimCheck {
    /// Holdings checked.
    pub holdings: usize,
    /// Of those, still held (no end yet).
    pub open: usize,
    /// Of those, known by their end alone (checked there).
    pub unknown_start: usize,
    /// Of those, interrupted with their end unknown (checked at their
    /// claim).
    pub unknown_end: usize,
    /// Rows that could not be read as a holding (a node name claims would
    /// refuse): not checked.
    pub unreadable: usize,
    /// What is wrong: empty for a clean history.
    pub violations: Vec<Violation>,
}

/// Checks `rows` (any order).
pub fn check(rows: &[ClaimRow]) -> ClaimCheck {
    let mut result = ClaimCheck::default();
    let mut holdings = Vec::with_capacity(rows.len());
    for row in rows {
        let millis = |at: Option<ivr::jiff::Timestamp>| {
            at.and_then(|at| u64::try_from(at.as_millisecond()).ok())
                .map(RedisMillis)
        };
        let (claimed, ended) = (millis(row.claimed_at), millis(row.ended_at));
        let Some(node) = NodeId::new(&row.node) else {
            result.unreadable += 1;
            continue;
        };
        let (from, to) = match (claimed, ended, &row.ended) {
            (Some(from), Some(to), _) => (from, Some(to)),
            (Some(from), None, None) => {
                result.open += 1;
                (from, None)
            }
            (Some(from), None, Some(_)) => {
                result.unknown_end += 1;
                (from, Some(from))
            }
            (None, Some(to), _) => {
                result.unknown_start += 1;
                (to, Some(to))
            }
            (None, None, _) => {
                result.unreadable += 1;
                continue;
            }
        };
        holdings.push(Holding {
            agent: AgentId::new(&row.agent),
            node,
            epoch: Epoch(row.epoch),
            from,
            to,
        });
    }
    result.holdings = holdings.len();
    result.violations = find_violations(&holdings);
    result
}

/// `GET /api/reports/claims`'s body (the OpenAPI document's `ClaimCheck`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ClaimCheck)]
pub struct ClaimCheckJson {
    /// Holdings checked.
    pub holdings: usize,
    /// Still held (no end yet).
    pub open: usize,
    /// Known only by their end: checked at that instant.
    pub unknown_start: usize,
    /// Ended with their end unknown (interrupted): checked at their start.
    pub unknown_end: usize,
    /// Rows with neither time, not checked.
    pub unreadable: usize,
    /// Two holdings of one agent that overlap, or an epoch that did not grow.
    pub violations: Vec<ClaimViolationJson>,
}

/// One violation in `/api/reports/claims`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ClaimViolation)]
pub struct ClaimViolationJson {
    /// `overlap` or `epoch_not_increasing`.
    pub kind: String,
    /// The agent.
    pub agent: String,
    /// The earlier holding.
    pub first: HoldingJson,
    /// The later one.
    pub second: HoldingJson,
}

/// A holding in a violation: Redis's times, RFC 3339.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ClaimHolding)]
pub struct HoldingJson {
    /// The holder.
    pub node: String,
    /// The claim's epoch.
    pub epoch: u64,
    /// Claimed at.
    pub from: Option<String>,
    /// Ended at; `null` while held.
    pub to: Option<String>,
}

impl ClaimCheck {
    /// `GET /api/reports/claims`'s body.
    pub fn to_json(&self) -> ClaimCheckJson {
        let violations = self
            .violations
            .iter()
            .map(|violation| {
                let (kind, first, second) = match violation {
                    Violation::Overlap { first, second } => ("overlap", first, second),
                    Violation::EpochNotIncreasing { first, second } => {
                        ("epoch_not_increasing", first, second)
                    }
                };
                ClaimViolationJson {
                    kind: kind.to_string(),
                    agent: first.agent.as_str().to_string(),
                    first: holding_json(first),
                    second: holding_json(second),
                }
            })
            .collect();
        ClaimCheckJson {
            holdings: self.holdings,
            open: self.open,
            unknown_start: self.unknown_start,
            unknown_end: self.unknown_end,
            unreadable: self.unreadable,
            violations,
        }
    }
}

fn holding_json(holding: &Holding) -> HoldingJson {
    let time = |at: RedisMillis| {
        i64::try_from(at.0)
            .ok()
            .and_then(|millis| ivr::jiff::Timestamp::from_millisecond(millis).ok())
            .map(|at| at.to_string())
    };
    HoldingJson {
        node: holding.node.as_str().to_string(),
        epoch: holding.epoch.0,
        from: time(holding.from),
        to: holding.to.and_then(time),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivr::jiff::Timestamp;
    use records::ClaimEnd;
    use serde_json::json;

    fn row(
        epoch: u64,
        node: &str,
        from: Option<i64>,
        to: Option<i64>,
        ended: Option<ClaimEnd>,
    ) -> ClaimRow {
        let at = |millis: Option<i64>| millis.map(|m| Timestamp::from_millisecond(m).unwrap());
        ClaimRow {
            agent: "1003".into(),
            epoch,
            node: node.into(),
            call: None,
            claimed_at: at(from),
            ended_at: at(to),
            ended,
        }
    }

    #[test]
    fn a_clean_journal_with_partly_known_holdings_passes_and_counts_them() {
        let reaped = Some(ClaimEnd::Reaped { by: "n0".into() });
        let rows = [
            row(1, "n0", Some(1_000), Some(2_000), Some(ClaimEnd::Released)),
            // Killed before its claim was journalled: its reaper's end.
            row(2, "n1", None, Some(5_000), reaped),
            // Its holder stopped; nobody journalled the end.
            row(3, "n1", Some(6_000), None, Some(ClaimEnd::Interrupted)),
            row(4, "n2", Some(9_000), None, None),
        ];
        let result = check(&rows);
        assert_eq!(
            (
                result.holdings,
                result.open,
                result.unknown_start,
                result.unknown_end
            ),
            (4, 1, 1, 1)
        );
        assert_eq!(result.violations, []);
        assert_eq!(
            serde_json::to_value(result.to_json()).unwrap()["violations"],
            json!([])
        );
    }

    #[test]
    fn an_overlap_and_an_epoch_going_backwards_are_found() {
        let rows = [
            row(1, "n0", Some(1_000), Some(3_000), Some(ClaimEnd::Released)),
            // Claimed by n1 while n0 held the agent.
            row(2, "n1", Some(2_000), Some(2_500), Some(ClaimEnd::Released)),
            // A later holding with a smaller epoch.
            row(0, "n2", Some(4_000), Some(4_500), Some(ClaimEnd::Expired)),
            // A name claims would refuse: not checked, counted.
            row(5, "not a node", Some(5_000), None, None),
        ];
        let result = check(&rows);
        assert_eq!(result.unreadable, 1);
        let json = serde_json::to_value(result.to_json()).unwrap();
        let kinds: Vec<&str> = json["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["kind"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&"overlap"), "{json}");
        assert!(kinds.contains(&"epoch_not_increasing"), "{json}");
        let overlap = json["violations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["kind"] == "overlap")
            .unwrap();
        assert_eq!(overlap["first"]["node"], "n0");
        assert_eq!(overlap["second"]["from"], "1970-01-01T00:00:02Z");
    }

    #[test]
    fn a_claim_inside_an_interrupted_holding_is_still_caught_at_its_start() {
        // n1's interrupted holding is known at 6 s; n2 held 5 s to 7 s.
        let rows = [
            row(1, "n2", Some(5_000), Some(7_000), Some(ClaimEnd::Released)),
            row(2, "n1", Some(6_000), None, Some(ClaimEnd::Interrupted)),
        ];
        assert_eq!(check(&rows).violations.len(), 1);
    }
}
