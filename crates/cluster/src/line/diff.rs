//! What changed in this node's line since it was last published: the
//! routing task hands over every waiting caller after each of its turns;
//! the writes that make Redis match come out. Sans-IO.

use std::collections::HashMap;

/// One write to a shared line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineOp {
    /// A caller is waiting (again, or with a new place or queue).
    Add {
        /// The queue.
        queue: String,
        /// The call.
        call: u64,
        /// Its score.
        score: u64,
    },
    /// The caller left that queue's line.
    Remove {
        /// The queue.
        queue: String,
        /// The call.
        call: u64,
    },
}

/// This node's published line: what Redis was last told.
#[derive(Debug, Default)]
pub struct LineDiff {
    published: HashMap<u64, (String, u64)>,
    /// Scratch: calls seen in this update.
    seen: HashMap<u64, ()>,
}

impl LineDiff {
    /// Nothing published.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every caller now waiting, as (call, queue, score): the writes that
    /// make the published line this, in order (removals from a queue
    /// before additions).
    pub fn update<'a>(
        &mut self,
        waiting: impl IntoIterator<Item = (u64, &'a str, u64)>,
    ) -> Vec<LineOp> {
        let mut ops = Vec::new();
        let mut adds = Vec::new();
        self.seen.clear();
        for (call, queue, score) in waiting {
            self.seen.insert(call, ());
            match self.published.get(&call) {
                Some((was, at)) if was == queue && *at == score => {}
                Some((was, _)) => {
                    if was != queue {
                        ops.push(LineOp::Remove {
                            queue: was.clone(),
                            call,
                        });
                    }
                    adds.push((call, queue.to_string(), score));
                }
                None => adds.push((call, queue.to_string(), score)),
            }
        }
        let gone: Vec<u64> = self
            .published
            .keys()
            .filter(|call| !self.seen.contains_key(call))
            .copied()
            .collect();
        for call in gone {
            if let Some((queue, _)) = self.published.remove(&call) {
                ops.push(LineOp::Remove { queue, call });
            }
        }
        for (call, queue, score) in adds {
            self.published.insert(call, (queue.clone(), score));
            ops.push(LineOp::Add { queue, call, score });
        }
        ops
    }

    /// What is published, as (queue, call, score): a full
    /// [`super::LineStore::sync`] writes it again.
    pub fn published(&self) -> Vec<(String, u64, u64)> {
        let mut all: Vec<_> = self
            .published
            .iter()
            .map(|(call, (queue, score))| (queue.clone(), *call, *score))
            .collect();
        all.sort_unstable();
        all
    }

    /// How many callers are published.
    pub fn len(&self) -> usize {
        self.published.len()
    }

    /// Nobody waits here.
    pub fn is_empty(&self) -> bool {
        self.published.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_come_out() {
        let mut diff = LineDiff::new();
        let ops = diff.update([(1, "pediatrics", 10), (2, "pediatrics", 20)]);
        assert_eq!(ops.len(), 2);
        assert!(
            diff.update([(1, "pediatrics", 10), (2, "pediatrics", 20)])
                .is_empty()
        );
        // 1 is offered (out of line), 2 overflows to front-desk.
        let ops = diff.update([(2, "front-desk", 20)]);
        assert_eq!(
            ops,
            [
                LineOp::Remove {
                    queue: "pediatrics".into(),
                    call: 2
                },
                LineOp::Remove {
                    queue: "pediatrics".into(),
                    call: 1
                },
                LineOp::Add {
                    queue: "front-desk".into(),
                    call: 2,
                    score: 20
                },
            ]
        );
        assert_eq!(diff.published(), [("front-desk".to_string(), 2, 20)]);
        // 1 back in line (its offer failed).
        let ops = diff.update([(1, "pediatrics", 10), (2, "front-desk", 20)]);
        assert_eq!(
            ops,
            [LineOp::Add {
                queue: "pediatrics".into(),
                call: 1,
                score: 10
            }]
        );
        assert_eq!(diff.len(), 2);
        assert_eq!(diff.update([]).len(), 2);
        assert!(diff.is_empty());
    }

    proptest::proptest! {
        /// Applying the ops to a copy of the published line always gives
        /// the new line.
        #[test]
        fn ops_replay_to_the_new_line(
            rounds in proptest::collection::vec(
                proptest::collection::btree_map(0u64..20, (0usize..3, 0u64..5), 0..10),
                1..8,
            )
        ) {
            const QUEUES: [&str; 3] = ["a", "b", "c"];
            let mut diff = LineDiff::new();
            let mut replica: std::collections::BTreeMap<(String, u64), u64> = Default::default();
            for round in rounds {
                let waiting: Vec<(u64, &str, u64)> = round
                    .iter()
                    .map(|(call, (queue, score))| (*call, QUEUES[*queue], *score))
                    .collect();
                for op in diff.update(waiting.iter().copied()) {
                    match op {
                        LineOp::Add { queue, call, score } => {
                            replica.insert((queue, call), score);
                        }
                        LineOp::Remove { queue, call } => {
                            replica.remove(&(queue, call));
                        }
                    }
                }
                let expected: std::collections::BTreeMap<(String, u64), u64> = waiting
                    .iter()
                    .map(|(call, queue, score)| ((queue.to_string(), *call), *score))
                    .collect();
                proptest::prop_assert_eq!(&replica, &expected);
            }
        }
    }
}
