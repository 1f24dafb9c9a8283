//! The reports: what each number means, and the arithmetic. They are
//! obtained from a [`Reader`](crate::Reader).
//!
//! # How a call's events are read
//! - [`CallEvent::Queued`](crate::CallEvent::Queued) opens a *visit* of the
//!   department; if another visit is still open, that one is closed as
//!   *left* (moved elsewhere).
//! - A caller's *waiting period* starts at the first `Queued` after the
//!   last connection (or the first `Queued` at all) and runs across
//!   overflows, as routing keeps the original enqueue time for the SLA.
//! - `Connected` closes the open visit as *connected*, its wait being the
//!   connection time − the start of the waiting period.
//! - `Overflowed` closes the open visit as *left*.
//! - `Ended` closes the open visit as *abandoned* when the outcome is
//!   `abandoned`, as *interrupted* when it is `interrupted` (the daemon
//!   stopped with the call up: [`Journal::close_interrupted`](crate::Journal::close_interrupted)),
//!   else as *left* (told to call back, rejected).
//! - An agent talks from its `Connected` until the next `Transferred`,
//!   `Queued`, `Connected` or `Ended`; a call still in progress adds no
//!   talk time yet.
//!
//! # Which calls a report counts
//! Department, agent and source reports count the calls that *started* in
//! `[from, to)` (`calls.started_at`), in progress or not; the
//! recent-abandonment window counts what *happened* in its range (see
//! [`AbandonmentWindow`]).
//!
//! # Percentiles
//! Nearest-rank: of `n` values sorted ascending, the p-th percentile is the
//! value at rank `ceil(p × n / 100)` (1-based). With no values, `null`.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use crate::entry::Outcome;
use crate::error::RangeError;
use crate::reader::CallRow;
use crate::timeline::{AgentFacts, CallFacts, Resolution};

/// A half-open time range `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    from: Timestamp,
    to: Timestamp,
}

impl TimeRange {
    /// `[from, to)`; `from` must not be after `to`.
    pub fn new(from: Timestamp, to: Timestamp) -> Result<Self, RangeError> {
        if from > to {
            return Err(RangeError { from, to });
        }
        Ok(TimeRange { from, to })
    }

    /// The `span` ending at `to` (e.g. the last 15 minutes). A span
    /// reaching before jiff's earliest time starts there.
    pub fn last(span: Duration, to: Timestamp) -> Self {
        let span_ms = i64::try_from(span.as_millis()).unwrap_or(i64::MAX);
        let from_ms = to.as_millisecond().saturating_sub(span_ms);
        let from = Timestamp::from_millisecond(from_ms).unwrap_or(Timestamp::MIN);
        TimeRange {
            from: from.min(to),
            to,
        }
    }

    /// The start, included.
    pub fn from(&self) -> Timestamp {
        self.from
    }

    /// The end, excluded.
    pub fn to(&self) -> Timestamp {
        self.to
    }

    pub(crate) fn millis(&self) -> (i64, i64) {
        (self.from.as_millisecond(), self.to.as_millisecond())
    }

    pub(crate) fn contains_millis(&self, at: i64) -> bool {
        let (from, to) = self.millis();
        (from..to).contains(&at)
    }
}

/// Two percentiles of a set of durations, in milliseconds (`null` when the
/// set is empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Percentiles {
    /// The median (nearest-rank).
    pub p50: Option<u64>,
    /// The 90th percentile (nearest-rank).
    pub p90: Option<u64>,
}

impl Percentiles {
    /// p50 and p90 of `values` (any order).
    pub fn of(mut values: Vec<u64>) -> Self {
        values.sort_unstable();
        Percentiles {
            p50: nearest_rank(&values, 50),
            p90: nearest_rank(&values, 90),
        }
    }
}

/// The `percent`-th percentile of ascending `sorted`, nearest-rank.
pub(crate) fn nearest_rank(sorted: &[u64], percent: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (percent * sorted.len())
        .div_ceil(100)
        .clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// `part / whole`, 0.0 when `whole` is 0.
pub(crate) fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// One department (queue) over a range: DESIGN.md's
/// `GET /api/reports/departments` element, serialized exactly as
/// `{"id","offered","connected","abandoned","abandonment_rate",
/// "time_to_connect_ms":{"p50","p90"},"within_sla"}`, followed by
/// `"interrupted"` when it is not 0 (so that a clinic whose daemon never
/// died sees DESIGN.md's shape).
///
/// A call counts at most once in each number of a department, and may
/// count in several departments:
/// - `offered`: calls queued to the department at least once. A call that
///   overflowed from `cardiology` to `front-desk` is offered to both: it is
///   part of cardiology's load even though cardiology did not serve it.
/// - `connected`: calls an agent answered while they waited in this
///   department.
/// - `abandoned`: calls whose caller hung up while waiting in this
///   department (`Ended` with outcome `abandoned` while queued there).
///   A call that overflowed out is neither connected nor abandoned here.
/// - `abandonment_rate`: `abandoned / offered`, 0.0 when nothing was
///   offered.
/// - `time_to_connect_ms`: nearest-rank p50 and p90 of the connected
///   calls' waits, each from the start of the caller's waiting period (the
///   first queue entry, across overflows, as routing counts SLAs) to the
///   agent's answer.
/// - `within_sla`: the share of offered calls connected here within the
///   department's SLA at the time they were queued (`wait ≤ sla_ms`),
///   0.0 when nothing was offered.
/// - `interrupted`: calls this department held (waiting here, or talking
///   to an agent who answered them here) when the daemon stopped without
///   ending them. Apart from `abandoned`: nobody knows whether the caller
///   would have hung up.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DepartmentReport {
    /// The department's dialplan id.
    pub id: String,
    /// Calls queued here.
    pub offered: u64,
    /// Calls answered here.
    pub connected: u64,
    /// Calls hung up while waiting here.
    pub abandoned: u64,
    /// `abandoned / offered`.
    pub abandonment_rate: f64,
    /// Wait until an agent answered, of the connected calls.
    pub time_to_connect_ms: Percentiles,
    /// Share of offered calls answered within the SLA.
    pub within_sla: f64,
    /// Calls held here when the daemon stopped (serialized when not 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub interrupted: u64,
    /// Callbacks offered and asked for here (issue 22; an added field,
    /// serialized when a callback was offered or a callback lead made, like
    /// `interrupted`, so that DESIGN.md's shape stays as it is otherwise).
    #[serde(skip_serializing_if = "CallbackFigures::is_empty")]
    pub callbacks: CallbackFigures,
}

/// A department's callbacks over a range (issue 22), in
/// `/api/reports/departments` as `"callbacks": {…}`:
///
/// - `offered`: calls that heard the offer or pressed the key here;
/// - `accepted`: calls whose caller gave a number the trunk may call (the
///   call ended and became a `callback` lead);
/// - `refused`: numbers refused at entry (the trunk's `allow`/`deny`);
/// - `completed`: accepted callbacks whose patient was reached (their
///   lead's `first_contact_at` is set);
/// - `failed`: accepted callbacks not reached by their `respond_by`, or
///   closed without contact;
/// - `waited_ms`: p50 and p90 of how long callers waited here before they
///   accepted a callback, against `time_to_connect_ms` of the callers who
///   held;
/// - `wait_saved_ms`: the hold a callback spared its caller, as the
///   holders' median wait minus the callback takers' median wait (`null`
///   until both are known; never negative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct CallbackFigures {
    /// Offers made (or the key pressed unasked).
    pub offered: u64,
    /// Numbers confirmed and permitted.
    pub accepted: u64,
    /// Numbers refused at entry.
    pub refused: u64,
    /// Accepted and reached: called back (the timeline's `connected`), or
    /// their `callback` lead contacted.
    pub completed: u64,
    /// Accepted and not reached in time.
    pub failed: u64,
    /// Waits before accepting.
    pub waited_ms: Percentiles,
    /// The holders' median wait minus the callback takers'.
    pub wait_saved_ms: Option<u64>,
}

impl CallbackFigures {
    /// No callback offered and no callback lead.
    pub fn is_empty(&self) -> bool {
        self.offered == 0 && self.completed == 0 && self.failed == 0 && self.accepted == 0
    }
}

/// One `callback` step of a call, as the journal has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallbackStep {
    pub(crate) call: String,
    pub(crate) department: String,
    pub(crate) step: String,
    pub(crate) wait_ms: u64,
}

/// One `callback` lead: its department, and whether it was reached or
/// failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallbackLead {
    pub(crate) department: String,
    pub(crate) reached: bool,
    pub(crate) failed: bool,
}

/// Folds the callbacks' steps and leads into `reports` (a department with
/// callbacks and no report yet gets one).
pub(crate) fn add_callbacks(
    reports: &mut Vec<DepartmentReport>,
    steps: &[CallbackStep],
    leads: &[CallbackLead],
) {
    use std::collections::{BTreeMap, BTreeSet};
    let mut offered: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut waits: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut refused: BTreeMap<&str, u64> = BTreeMap::new();
    let mut connected: BTreeMap<&str, u64> = BTreeMap::new();
    for step in steps {
        let department = step.department.as_str();
        offered
            .entry(department)
            .or_default()
            .insert(step.call.as_str());
        match step.step.as_str() {
            "accepted" => waits.entry(department).or_default().push(step.wait_ms),
            "refused" => *refused.entry(department).or_default() += 1,
            "connected" => *connected.entry(department).or_default() += 1,
            _ => {}
        }
    }
    let departments: BTreeSet<&str> = offered
        .keys()
        .copied()
        .chain(leads.iter().map(|l| l.department.as_str()))
        .collect();
    for department in departments {
        let index = match reports.iter().position(|r| r.id == department) {
            Some(index) => index,
            None => {
                reports.push(DepartmentReport::empty(department));
                reports.len() - 1
            }
        };
        let report = &mut reports[index];
        let accepted = waits.remove(department).unwrap_or_default();
        let figures = &mut report.callbacks;
        figures.offered = offered
            .get(department)
            .map_or(0, |calls| calls.len() as u64);
        figures.accepted = accepted.len() as u64;
        figures.refused = refused.get(department).copied().unwrap_or(0);
        figures.waited_ms = Percentiles::of(accepted);
        figures.completed = connected.get(department).copied().unwrap_or(0);
        for lead in leads.iter().filter(|l| l.department == department) {
            figures.completed += u64::from(lead.reached);
            figures.failed += u64::from(lead.failed);
        }
        figures.wait_saved_ms = match (report.time_to_connect_ms.p50, figures.waited_ms.p50) {
            (Some(held), Some(before)) => Some(held.saturating_sub(before)),
            _ => None,
        };
    }
    reports.sort_by(|a, b| a.id.cmp(&b.id));
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

impl DepartmentReport {
    /// A department with no calls in the range (for listing every
    /// department of the dialplan, busy or not).
    pub fn empty(id: impl Into<String>) -> Self {
        DepartmentReport {
            id: id.into(),
            offered: 0,
            connected: 0,
            abandoned: 0,
            abandonment_rate: 0.0,
            time_to_connect_ms: Percentiles::default(),
            within_sla: 0.0,
            interrupted: 0,
            callbacks: CallbackFigures::default(),
        }
    }
}

/// One agent over a range, serialized as
/// `{"id","offered","answered","no_answer","busy","misses","talk_ms",
/// "interrupted"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AgentReport {
    /// The agent's id.
    pub id: String,
    /// Times the agent's phone was rung (`Offered`).
    pub offered: u64,
    /// Calls the agent answered (`Connected`).
    pub answered: u64,
    /// Offers not answered within the ring timeout.
    pub no_answer: u64,
    /// Offers refused busy.
    pub busy: u64,
    /// `no_answer + busy`.
    pub misses: u64,
    /// Time talking: from each answer to the transfer, re-queue or end that
    /// follows it; calls still in progress add nothing yet.
    pub talk_ms: u64,
    /// Calls the agent was on (ringing or talking) when the daemon stopped;
    /// the talk time of those counts up to the call's last recorded step.
    pub interrupted: u64,
}

/// The leads of one source tag (a campaign number) over a range, followed
/// to their outcome; serialized as `{"source","calls","offered",
/// "connected","abandoned","overflowed","rejected","after_hours",
/// "interrupted","in_progress","time_to_connect_ms":{"p50","p90"}}`.
///
/// The outcome counts are the calls' own outcomes (each call once, so they
/// add up to `calls`); `abandoned` includes callers who hung up in the IVR
/// before reaching a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SourceReport {
    /// The source tag; `null` for calls whose number has none.
    pub source: Option<String>,
    /// Every call (lead).
    pub calls: u64,
    /// Calls that reached a queue.
    pub offered: u64,
    /// Outcome `connected`.
    pub connected: u64,
    /// Outcome `abandoned`.
    pub abandoned: u64,
    /// Outcome `overflowed`.
    pub overflowed: u64,
    /// Outcome `rejected`.
    pub rejected: u64,
    /// Outcome `after_hours`.
    pub after_hours: u64,
    /// Outcome `interrupted`: up when the daemon stopped.
    pub interrupted: u64,
    /// Not over yet.
    pub in_progress: u64,
    /// The connected calls' `wait_ms` (first queue entry to first answer).
    pub time_to_connect_ms: Percentiles,
}

/// A department's recent abandonment, for overload alerts; serialized as
/// `{"department","resolved","abandoned","abandonment_rate"}`.
///
/// Counts the waits in the department that *ended* in the range, however
/// long ago the call started: `resolved` = waits that ended (answered,
/// hung up, overflowed or moved out), `abandoned` = those where the caller
/// hung up. A wait the daemon's stop interrupted counts in neither: it is
/// no sign of how the department serves its callers. So the rate is "of the callers who stopped waiting here in the
/// last N minutes, the share who gave up", which is never above 1.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AbandonmentWindow {
    /// The department's id.
    pub department: String,
    /// Waits that ended in the range.
    pub resolved: u64,
    /// Of which the caller hung up.
    pub abandoned: u64,
    /// `abandoned / resolved`.
    pub abandonment_rate: f64,
}

/// Sums departments over calls.
pub(crate) fn departments<'a>(
    calls: impl IntoIterator<Item = &'a CallFacts>,
) -> Vec<DepartmentReport> {
    #[derive(Default)]
    struct Sums {
        offered: u64,
        connected: u64,
        abandoned: u64,
        within_sla: u64,
        interrupted: u64,
        waits: Vec<u64>,
    }
    let mut sums: BTreeMap<&str, Sums> = BTreeMap::new();
    for call in calls {
        // This call's part in each department it visited.
        #[derive(Default)]
        struct Part {
            /// The first connection there: wait and SLA.
            connection: Option<(u64, u64)>,
            abandoned: bool,
            interrupted: bool,
        }
        let mut parts: BTreeMap<&str, Part> = BTreeMap::new();
        for (index, visit) in call.visits.iter().enumerate() {
            let part = parts.entry(visit.department.as_str()).or_default();
            part.interrupted |= call.interrupted_in == Some(index);
            match visit.resolution {
                Resolution::Connected { wait_ms, .. } if part.connection.is_none() => {
                    part.connection = Some((wait_ms, visit.sla_ms));
                }
                Resolution::Abandoned { .. } => part.abandoned = true,
                _ => {}
            }
        }
        for (department, part) in parts {
            let sum = sums.entry(department).or_default();
            sum.offered += 1;
            sum.abandoned += u64::from(part.abandoned);
            sum.interrupted += u64::from(part.interrupted);
            if let Some((wait_ms, sla_ms)) = part.connection {
                sum.connected += 1;
                sum.within_sla += u64::from(wait_ms <= sla_ms);
                sum.waits.push(wait_ms);
            }
        }
    }
    sums.into_iter()
        .map(|(id, sum)| DepartmentReport {
            id: id.to_string(),
            offered: sum.offered,
            connected: sum.connected,
            abandoned: sum.abandoned,
            abandonment_rate: share(sum.abandoned, sum.offered),
            time_to_connect_ms: Percentiles::of(sum.waits),
            within_sla: share(sum.within_sla, sum.offered),
            interrupted: sum.interrupted,
            callbacks: CallbackFigures::default(),
        })
        .collect()
}

/// Sums agents over calls.
pub(crate) fn agents<'a>(calls: impl IntoIterator<Item = &'a CallFacts>) -> Vec<AgentReport> {
    let mut sums: BTreeMap<&str, AgentFacts> = BTreeMap::new();
    for call in calls {
        for (agent, facts) in &call.agents {
            sums.entry(agent.as_str()).or_default().add(facts);
        }
    }
    sums.into_iter()
        .map(|(id, facts)| AgentReport {
            id: id.to_string(),
            offered: facts.offered,
            answered: facts.answered,
            no_answer: facts.no_answer,
            busy: facts.busy,
            misses: facts.no_answer + facts.busy,
            talk_ms: facts.talk_ms,
            interrupted: facts.interrupted,
        })
        .collect()
}

/// Sums sources over call rows.
pub(crate) fn sources<'a>(rows: impl IntoIterator<Item = &'a CallRow>) -> Vec<SourceReport> {
    let mut sums: BTreeMap<Option<&str>, (SourceReport, Vec<u64>)> = BTreeMap::new();
    for row in rows {
        let (sum, waits) = sums.entry(row.source.as_deref()).or_insert_with(|| {
            let report = SourceReport {
                source: row.source.clone(),
                calls: 0,
                offered: 0,
                connected: 0,
                abandoned: 0,
                overflowed: 0,
                rejected: 0,
                after_hours: 0,
                interrupted: 0,
                in_progress: 0,
                time_to_connect_ms: Percentiles::default(),
            };
            (report, Vec::new())
        });
        sum.calls += 1;
        sum.offered += u64::from(row.queued_at.is_some());
        let count = match row.outcome {
            None => &mut sum.in_progress,
            Some(Outcome::Connected) => &mut sum.connected,
            Some(Outcome::Abandoned) => &mut sum.abandoned,
            Some(Outcome::Overflowed) => &mut sum.overflowed,
            Some(Outcome::Rejected) => &mut sum.rejected,
            Some(Outcome::AfterHours) => &mut sum.after_hours,
            Some(Outcome::Interrupted) => &mut sum.interrupted,
        };
        *count += 1;
        if row.outcome == Some(Outcome::Connected)
            && let Some(wait_ms) = row.wait_ms
        {
            waits.push(wait_ms);
        }
    }
    sums.into_values()
        .map(|(mut report, waits)| {
            report.time_to_connect_ms = Percentiles::of(waits);
            report
        })
        .collect()
}

/// Every visit of `calls` resolved in `range`: `(department, at,
/// abandoned)`. Interrupted waits are not resolved (see
/// [`AbandonmentWindow`]).
pub(crate) fn resolved_visits<'a>(
    calls: impl IntoIterator<Item = &'a CallFacts>,
    range: &TimeRange,
) -> Vec<(String, i64, bool)> {
    calls
        .into_iter()
        .flat_map(|call| &call.visits)
        .filter_map(|visit| {
            let at = visit
                .resolution
                .resolved_at()
                .filter(|at| range.contains_millis(*at))?;
            let abandoned = matches!(visit.resolution, Resolution::Abandoned { .. });
            Some((visit.department.clone(), at, abandoned))
        })
        .collect()
}

pub(crate) fn abandonment<'a>(
    calls: impl IntoIterator<Item = &'a CallFacts>,
    range: &TimeRange,
) -> Vec<AbandonmentWindow> {
    let mut sums: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for call in calls {
        for visit in &call.visits {
            let Some(at) = visit.resolution.resolved_at() else {
                continue;
            };
            if !range.contains_millis(at) {
                continue;
            }
            let (resolved, abandoned) = sums.entry(visit.department.as_str()).or_default();
            *resolved += 1;
            *abandoned += u64::from(matches!(visit.resolution, Resolution::Abandoned { .. }));
        }
    }
    sums.into_iter()
        .map(|(department, (resolved, abandoned))| AbandonmentWindow {
            department: department.to_string(),
            resolved,
            abandoned,
            abandonment_rate: share(abandoned, resolved),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_are_counted_per_department_with_the_wait_they_saved() {
        let step = |call: &str, step: &str, wait_ms: u64| CallbackStep {
            call: call.into(),
            department: "pediatrics".into(),
            step: step.into(),
            wait_ms,
        };
        let mut reports = vec![DepartmentReport {
            time_to_connect_ms: Percentiles::of(vec![300_000, 400_000]),
            ..DepartmentReport::empty("pediatrics")
        }];
        let steps = [
            step("c1", "offered", 60_000),
            step("c1", "accepted", 70_000),
            step("c2", "refused", 20_000),
            step("c2", "accepted", 30_000),
            step("c3", "offered", 60_000),
            // c1 called back in its place: completed, still one accepted.
            step("c1", "connected", 400_000),
            step("c2", "retry", 100_000),
        ];
        let leads = [
            CallbackLead {
                department: "pediatrics".into(),
                reached: true,
                failed: false,
            },
            CallbackLead {
                department: "pediatrics".into(),
                reached: false,
                failed: true,
            },
            CallbackLead {
                department: "cardiology".into(),
                reached: false,
                failed: false,
            },
        ];
        add_callbacks(&mut reports, &steps, &leads);
        let pediatrics = &reports[1].callbacks;
        assert_eq!(reports[1].id, "pediatrics");
        assert_eq!(
            (pediatrics.offered, pediatrics.accepted, pediatrics.refused),
            (3, 2, 1)
        );
        assert_eq!((pediatrics.completed, pediatrics.failed), (2, 1));
        assert_eq!(pediatrics.waited_ms, Percentiles::of(vec![30_000, 70_000]));
        // Holders' median 300 s, callback takers' 30 s.
        assert_eq!(pediatrics.wait_saved_ms, Some(270_000));
        // A department with only a lead in the range gets a report.
        assert_eq!(reports[0].id, "cardiology");
        assert_eq!(reports[0].callbacks.wait_saved_ms, None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(nearest_rank(&[], 50), None);
        assert_eq!(nearest_rank(&[7], 50), Some(7));
        assert_eq!(nearest_rank(&[7], 90), Some(7));
        assert_eq!(nearest_rank(&[1, 2], 50), Some(1));
        assert_eq!(nearest_rank(&[1, 2], 90), Some(2));
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(nearest_rank(&hundred, 50), Some(50));
        assert_eq!(nearest_rank(&hundred, 90), Some(90));
        let ten: Vec<u64> = (1..=10).map(|n| n * 10).collect();
        assert_eq!(nearest_rank(&ten, 90), Some(90));
        assert_eq!(nearest_rank(&ten, 91), Some(100));
        assert_eq!(
            Percentiles::of(vec![5300, 3100, 1000]),
            Percentiles {
                p50: Some(3100),
                p90: Some(5300)
            }
        );
    }

    #[test]
    fn ranges() {
        let to = Timestamp::from_second(1_000).unwrap();
        let range = TimeRange::last(Duration::from_secs(600), to);
        assert_eq!(range.from(), Timestamp::from_second(400).unwrap());
        assert!(range.contains_millis(400_000));
        assert!(!range.contains_millis(1_000_000));
        assert!(TimeRange::new(to, range.from()).is_err());
        assert!(TimeRange::new(to, to).is_ok());
        let all = TimeRange::last(Duration::MAX, to);
        assert_eq!(all.from(), Timestamp::MIN);
    }
}
