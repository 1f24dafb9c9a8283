//! Who held which agent, from when to when: rebuilt from the changes, and
//! checked. Pure functions, for the journal and for the cluster test's
//! invariant monitor ("no agent is ever claimed twice").

use std::collections::HashMap;

use domain::AgentId;

use super::types::{AgentChange, ChangeKind, Epoch, NodeId, RedisMillis};

/// One holding: `node` held `agent` at `epoch` over `[from, to)` (Redis
/// time); `to` is `None` while it is held (or its end was not seen).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Holding {
    /// The agent.
    pub agent: AgentId,
    /// The holder.
    pub node: NodeId,
    /// The claim's epoch.
    pub epoch: Epoch,
    /// When it was claimed.
    pub from: RedisMillis,
    /// When it was released or its lease ran out.
    pub to: Option<RedisMillis>,
}

impl Holding {
    fn end(&self) -> u64 {
        self.to.map_or(u64::MAX, |to| to.0)
    }
}

/// Rebuilds the holdings from changes in stream order: a claim opens one,
/// a release or an expiry of the same agent and epoch closes it, renewals
/// change nothing. An end whose claim came before `changes` started is
/// skipped. In claim order.
pub fn holdings(changes: &[AgentChange]) -> Vec<Holding> {
    let mut held: Vec<Holding> = Vec::new();
    let mut open: HashMap<(AgentId, Epoch), usize> = HashMap::new();
    for change in changes {
        let key = (change.agent.clone(), change.epoch);
        match change.kind {
            ChangeKind::Claimed => {
                open.insert(key, held.len());
                held.push(Holding {
                    agent: change.agent.clone(),
                    node: change.node.clone(),
                    epoch: change.epoch,
                    from: change.at,
                    to: None,
                });
            }
            ChangeKind::Renewed => {}
            ChangeKind::Released | ChangeKind::Expired => {
                if let Some(index) = open.remove(&key) {
                    held[index].to = Some(change.at);
                }
            }
        }
    }
    held
}

/// What is wrong with a history.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Violation {
    /// Two holdings of one agent overlap in time: the agent was claimed
    /// twice.
    Overlap {
        /// The earlier holding.
        first: Holding,
        /// The one that began before `first` ended.
        second: Holding,
    },
    /// A later holding of one agent does not have a greater epoch.
    EpochNotIncreasing {
        /// The earlier holding.
        first: Holding,
        /// The later one.
        second: Holding,
    },
}

/// Checks holdings (in any order) for overlaps and epochs that do not
/// grow, agent by agent. Intervals are half open, so a claim at the very
/// millisecond of the previous release is no overlap. Empty: a clean
/// history. O(n log n).
pub fn find_violations(holdings: &[Holding]) -> Vec<Violation> {
    let mut by_agent: HashMap<&AgentId, Vec<&Holding>> = HashMap::new();
    for holding in holdings {
        by_agent.entry(&holding.agent).or_default().push(holding);
    }
    let mut agents: Vec<_> = by_agent.into_iter().collect();
    agents.sort_by(|a, b| a.0.cmp(b.0));
    let mut violations = Vec::new();
    for (_, mut held) in agents {
        held.sort_by_key(|holding| (holding.from, holding.epoch));
        // The holding that ends last among those seen so far.
        let mut latest: Option<&Holding> = None;
        for pair in held.windows(2) {
            if pair[1].epoch <= pair[0].epoch {
                violations.push(Violation::EpochNotIncreasing {
                    first: pair[0].clone(),
                    second: pair[1].clone(),
                });
            }
        }
        for holding in held {
            if let Some(before) = latest
                && holding.from.0 < before.end()
            {
                violations.push(Violation::Overlap {
                    first: before.clone(),
                    second: holding.clone(),
                });
            }
            if latest.is_none_or(|before| holding.end() > before.end()) {
                latest = Some(holding);
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::types::StreamId;

    fn change(
        seq: u64,
        agent: &str,
        node: &str,
        epoch: u64,
        kind: ChangeKind,
        at: u64,
    ) -> AgentChange {
        AgentChange {
            id: StreamId {
                millis: at,
                sequence: seq,
            },
            seq,
            agent: AgentId::new(agent),
            node: NodeId::new(node).unwrap(),
            epoch: Epoch(epoch),
            kind,
            at: RedisMillis(at),
            until: RedisMillis(at + 100),
            by: None,
        }
    }

    fn clean() -> Vec<AgentChange> {
        use ChangeKind::*;
        vec![
            change(1, "1003", "a", 1, Claimed, 100),
            change(2, "1004", "b", 1, Claimed, 110),
            change(3, "1003", "a", 1, Renewed, 150),
            change(4, "1003", "a", 1, Released, 200),
            change(5, "1003", "b", 2, Claimed, 200),
            change(6, "1004", "b", 1, Expired, 210),
            change(7, "1004", "a", 2, Claimed, 250),
        ]
    }

    #[test]
    fn a_clean_history_has_no_violation() {
        let held = holdings(&clean());
        assert_eq!(held.len(), 4);
        assert_eq!(held[0].to, Some(RedisMillis(200)));
        assert_eq!(held[1].to, Some(RedisMillis(210)));
        assert_eq!(held[2].to, None);
        assert_eq!(find_violations(&held), []);
    }

    #[test]
    fn a_planted_overlap_is_found() {
        let mut changes = clean();
        // Node a claims 1004 again while b's epoch 1 still holds (before its expiry at 210).
        changes.insert(2, change(99, "1004", "a", 2, ChangeKind::Claimed, 120));
        changes.retain(|c| c.seq != 7);
        let violations = find_violations(&holdings(&changes));
        assert_eq!(violations.len(), 1, "{violations:?}");
        let Violation::Overlap { first, second } = &violations[0] else {
            panic!("{violations:?}");
        };
        assert_eq!((first.node.as_str(), first.epoch), ("b", Epoch(1)));
        assert_eq!((second.node.as_str(), second.from), ("a", RedisMillis(120)));
    }

    #[test]
    fn an_open_holding_overlaps_any_later_one_and_epochs_must_grow() {
        let a = Holding {
            agent: AgentId::new("1"),
            node: NodeId::new("a").unwrap(),
            epoch: Epoch(3),
            from: RedisMillis(10),
            to: None,
        };
        let b = Holding {
            node: NodeId::new("b").unwrap(),
            epoch: Epoch(3),
            from: RedisMillis(1_000),
            to: Some(RedisMillis(1_100)),
            ..a.clone()
        };
        let violations = find_violations(&[b.clone(), a.clone()]);
        assert!(violations.contains(&Violation::Overlap {
            first: a.clone(),
            second: b.clone()
        }));
        assert!(violations.contains(&Violation::EpochNotIncreasing {
            first: a,
            second: b
        }));
    }

    #[test]
    fn an_overlap_hidden_behind_a_short_holding_is_found() {
        // a holds [0, 1000); b [10, 20) overlaps; c [500, 600) overlaps a, not b.
        let mk = |node: &str, epoch, from, to| Holding {
            agent: AgentId::new("1"),
            node: NodeId::new(node).unwrap(),
            epoch: Epoch(epoch),
            from: RedisMillis(from),
            to: Some(RedisMillis(to)),
        };
        let violations = find_violations(&[
            mk("a", 1, 0, 1000),
            mk("b", 2, 10, 20),
            mk("c", 3, 500, 600),
        ]);
        let overlaps = violations
            .iter()
            .filter(|v| matches!(v, Violation::Overlap { .. }))
            .count();
        assert_eq!(overlaps, 2, "{violations:?}");
    }
}
