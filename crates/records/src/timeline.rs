//! The fold from one call's events to the facts the reports count: each
//! stay in a department's queue and how it ended, and each agent's part.
//! Pure: no SQL, no clock.
//!
//! The rules are documented on the public [`crate::report`] module.

use std::collections::BTreeMap;

use crate::entry::{CallEvent, Outcome};

/// How a visit of a department ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// Still waiting there (the call is in progress).
    Open,
    /// An agent answered while the call waited there.
    Connected {
        /// When (ms since the epoch).
        at: i64,
        /// Since the start of the waiting period.
        wait_ms: u64,
    },
    /// The caller hung up while waiting there.
    Abandoned {
        /// When.
        at: i64,
    },
    /// Left unanswered otherwise: overflowed, moved, told to call back,
    /// rejected.
    Left {
        /// When.
        at: i64,
    },
    /// Still waiting there when the daemon stopped: the caller neither got
    /// an answer nor hung up, as far as anyone knows.
    Interrupted {
        /// When the journal last heard of the call.
        at: i64,
    },
}

impl Resolution {
    /// When the visit ended, if it did.
    pub(crate) fn at(self) -> Option<i64> {
        match self {
            Resolution::Open => None,
            Resolution::Connected { at, .. }
            | Resolution::Abandoned { at }
            | Resolution::Left { at }
            | Resolution::Interrupted { at } => Some(at),
        }
    }

    /// When the caller stopped waiting there, for the abandonment window:
    /// an interrupted wait did not end by anything the caller or an agent
    /// did, so it counts neither as resolved nor as abandoned.
    pub(crate) fn resolved_at(self) -> Option<i64> {
        match self {
            Resolution::Interrupted { .. } => None,
            other => other.at(),
        }
    }
}

/// One stay in a department's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Visit {
    pub(crate) department: String,
    /// The department's SLA when the call was queued there.
    pub(crate) sla_ms: u64,
    pub(crate) resolution: Resolution,
}

/// What one agent did on one call (or, summed, on many).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AgentFacts {
    pub(crate) offered: u64,
    pub(crate) answered: u64,
    pub(crate) no_answer: u64,
    pub(crate) busy: u64,
    pub(crate) talk_ms: u64,
    /// Calls the agent was on (ringing or talking) when the daemon stopped.
    pub(crate) interrupted: u64,
}

impl AgentFacts {
    pub(crate) fn add(&mut self, other: &AgentFacts) {
        self.offered += other.offered;
        self.answered += other.answered;
        self.no_answer += other.no_answer;
        self.busy += other.busy;
        self.talk_ms += other.talk_ms;
        self.interrupted += other.interrupted;
    }
}

/// Everything the reports need from one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CallFacts {
    pub(crate) visits: Vec<Visit>,
    pub(crate) agents: BTreeMap<String, AgentFacts>,
    /// The visit whose department held the call when the daemon stopped:
    /// the one it was waiting in, or the one an agent answered it from.
    pub(crate) interrupted_in: Option<usize>,
}

/// Folds one call's events, in `seq` order, with their times (ms).
pub(crate) fn fold<'a>(events: impl IntoIterator<Item = (i64, &'a CallEvent)>) -> CallFacts {
    let mut facts = CallFacts::default();
    let mut open: Option<usize> = None;
    let mut waiting_since: Option<i64> = None;
    let mut talking: Option<(&str, i64)> = None;
    // The agent being rung, and the visit the last answer came from.
    let mut ringing: Option<&str> = None;
    let mut answered_from: Option<usize> = None;
    for (at, event) in events {
        match event {
            CallEvent::Started { .. }
            | CallEvent::Entered { .. }
            | CallEvent::MenuChoice { .. }
            | CallEvent::SpeechHeard { .. }
            | CallEvent::Callback { .. } => {}
            CallEvent::Queued {
                department, sla_ms, ..
            } => {
                hang_up(&mut facts, &mut talking, at);
                if let Some(index) = open.take() {
                    facts.visits[index].resolution = Resolution::Left { at };
                }
                facts.visits.push(Visit {
                    department: department.clone(),
                    sla_ms: *sla_ms,
                    resolution: Resolution::Open,
                });
                open = Some(facts.visits.len() - 1);
                waiting_since.get_or_insert(at);
            }
            CallEvent::Offered { agent } => {
                facts.agents.entry(agent.clone()).or_default().offered += 1;
                ringing = Some(agent.as_str());
            }
            CallEvent::NoAnswer { agent } => {
                facts.agents.entry(agent.clone()).or_default().no_answer += 1;
                ringing = None;
            }
            CallEvent::Busy { agent } => {
                facts.agents.entry(agent.clone()).or_default().busy += 1;
                ringing = None;
            }
            CallEvent::Connected { agent, .. } => {
                hang_up(&mut facts, &mut talking, at);
                ringing = None;
                answered_from = open;
                if let Some(index) = open.take() {
                    let since = waiting_since.unwrap_or(at);
                    facts.visits[index].resolution = Resolution::Connected {
                        at,
                        wait_ms: u64::try_from(at - since).unwrap_or(0),
                    };
                }
                waiting_since = None;
                facts.agents.entry(agent.clone()).or_default().answered += 1;
                talking = Some((agent.as_str(), at));
            }
            CallEvent::Transferred { .. } => {
                hang_up(&mut facts, &mut talking, at);
                answered_from = None;
            }
            CallEvent::Overflowed { .. } => {
                if let Some(index) = open.take() {
                    facts.visits[index].resolution = Resolution::Left { at };
                }
            }
            CallEvent::Ended {
                outcome: Outcome::Interrupted,
            } => {
                // Whoever was on the call when the daemon stopped.
                for agent in [ringing.take(), talking.map(|(agent, _)| agent)]
                    .into_iter()
                    .flatten()
                {
                    facts
                        .agents
                        .entry(agent.to_string())
                        .or_default()
                        .interrupted += 1;
                }
                hang_up(&mut facts, &mut talking, at);
                match open.take() {
                    Some(index) => {
                        facts.visits[index].resolution = Resolution::Interrupted { at };
                        facts.interrupted_in = Some(index);
                    }
                    None => facts.interrupted_in = answered_from,
                }
            }
            CallEvent::Ended { outcome } => {
                hang_up(&mut facts, &mut talking, at);
                ringing = None;
                if let Some(index) = open.take() {
                    facts.visits[index].resolution = if *outcome == Outcome::Abandoned {
                        Resolution::Abandoned { at }
                    } else {
                        Resolution::Left { at }
                    };
                }
            }
        }
    }
    facts
}

/// Ends the talk segment in progress, if any, at `at`.
fn hang_up(facts: &mut CallFacts, talking: &mut Option<(&str, i64)>, at: i64) {
    if let Some((agent, since)) = talking.take() {
        let talk = u64::try_from(at - since).unwrap_or(0);
        facts.agents.entry(agent.to_string()).or_default().talk_ms += talk;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Priority;

    fn queued(department: &str, sla_ms: u64) -> CallEvent {
        CallEvent::Queued {
            department: department.into(),
            priority: Priority::Routine,
            sla_ms,
        }
    }

    fn connected(agent: &str) -> CallEvent {
        CallEvent::Connected {
            agent: agent.into(),
            branch: None,
        }
    }

    fn ended(outcome: Outcome) -> CallEvent {
        CallEvent::Ended { outcome }
    }

    fn run(events: &[(i64, CallEvent)]) -> CallFacts {
        fold(events.iter().map(|(at, event)| (*at, event)))
    }

    #[test]
    fn overflow_keeps_the_waiting_period() {
        let facts = run(&[
            (0, queued("cardiology", 60_000)),
            (
                90_000,
                CallEvent::Overflowed {
                    from: "cardiology".into(),
                    to: Some("front-desk".into()),
                },
            ),
            (90_000, queued("front-desk", 60_000)),
            (95_000, connected("1001")),
            (155_000, ended(Outcome::Connected)),
        ]);
        assert_eq!(facts.visits.len(), 2);
        assert_eq!(facts.visits[0].resolution, Resolution::Left { at: 90_000 });
        assert_eq!(
            facts.visits[1].resolution,
            Resolution::Connected {
                at: 95_000,
                wait_ms: 95_000
            }
        );
        assert_eq!(facts.agents["1001"].talk_ms, 60_000);
        assert_eq!(facts.agents["1001"].answered, 1);
    }

    #[test]
    fn a_transfer_back_to_a_queue_starts_a_new_wait() {
        let facts = run(&[
            (0, queued("front-desk", 60_000)),
            (
                1_000,
                CallEvent::Offered {
                    agent: "1001".into(),
                },
            ),
            (4_000, connected("1001")),
            (
                64_000,
                CallEvent::Transferred {
                    to: "pediatrics".into(),
                    reason: None,
                    to_agent: None,
                    note: None,
                },
            ),
            (64_000, queued("pediatrics", 60_000)),
            (70_000, ended(Outcome::Connected)),
        ]);
        assert_eq!(
            facts.visits[0].resolution,
            Resolution::Connected {
                at: 4_000,
                wait_ms: 4_000
            }
        );
        assert_eq!(facts.visits[1].department, "pediatrics");
        assert_eq!(facts.visits[1].resolution, Resolution::Left { at: 70_000 });
        assert_eq!(facts.agents["1001"].talk_ms, 60_000);
        assert_eq!(facts.agents["1001"].offered, 1);
    }

    #[test]
    fn hanging_up_while_waiting_is_abandoning_there() {
        let facts = run(&[
            (0, queued("pediatrics", 60_000)),
            (
                1_000,
                CallEvent::Offered {
                    agent: "1003".into(),
                },
            ),
            (
                16_000,
                CallEvent::NoAnswer {
                    agent: "1003".into(),
                },
            ),
            (
                17_000,
                CallEvent::Busy {
                    agent: "1006".into(),
                },
            ),
            (20_000, ended(Outcome::Abandoned)),
        ]);
        assert_eq!(
            facts.visits[0].resolution,
            Resolution::Abandoned { at: 20_000 }
        );
        assert_eq!(facts.agents["1003"].no_answer, 1);
        assert_eq!(facts.agents["1006"].busy, 1);
        assert_eq!(facts.agents["1006"].talk_ms, 0);
    }

    #[test]
    fn an_open_call_adds_no_talk_time() {
        let facts = run(&[
            (0, queued("pediatrics", 60_000)),
            (3_000, connected("1003")),
        ]);
        assert_eq!(facts.agents["1003"].talk_ms, 0);
        assert_eq!(facts.agents["1003"].answered, 1);
        let facts = run(&[(0, queued("pediatrics", 60_000))]);
        assert_eq!(facts.visits[0].resolution, Resolution::Open);
        assert_eq!(facts.visits[0].resolution.at(), None);
    }

    #[test]
    fn an_interrupted_call_is_neither_abandoned_nor_resolved() {
        // Waiting in pediatrics, 1003's phone ringing, when the daemon died.
        let facts = run(&[
            (0, queued("pediatrics", 60_000)),
            (
                1_000,
                CallEvent::Offered {
                    agent: "1003".into(),
                },
            ),
            (1_000, ended(Outcome::Interrupted)),
        ]);
        assert_eq!(
            facts.visits[0].resolution,
            Resolution::Interrupted { at: 1_000 }
        );
        assert_eq!(facts.visits[0].resolution.resolved_at(), None);
        assert_eq!(facts.interrupted_in, Some(0));
        assert_eq!(facts.agents["1003"].interrupted, 1);
        // Talking with 1001, answered from front-desk.
        let facts = run(&[
            (0, queued("front-desk", 60_000)),
            (3_000, connected("1001")),
            (9_000, ended(Outcome::Interrupted)),
        ]);
        assert_eq!(
            facts.visits[0].resolution,
            Resolution::Connected {
                at: 3_000,
                wait_ms: 3_000
            }
        );
        assert_eq!(facts.interrupted_in, Some(0));
        assert_eq!(facts.agents["1001"].interrupted, 1);
        assert_eq!(facts.agents["1001"].talk_ms, 6_000, "up to the last event");
        // In the IVR: no department held it.
        let facts = run(&[(0, ended(Outcome::Interrupted))]);
        assert_eq!(facts.interrupted_in, None);
    }
}
