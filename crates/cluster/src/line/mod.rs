//! Queue positions shared between nodes (issue 24): each node's waiting
//! callers in one Redis sorted set per queue, so that an agent who comes
//! free serves the caller first in line across the cluster, not whichever
//! node's claim reaches Redis first.
//!
//! # Keys (under [`StoreConfig::prefix`])
//!
//! | key | type | holds |
//! |---|---|---|
//! | `frontdesk:line:<queue>` | sorted set | `<node>/<call>` → the caller's score |
//!
//! A score is `routing::shared_score`: an urgent caller's enqueue time, a
//! routine caller's enqueue time plus the queue's aging (or far behind,
//! without aging), in Unix milliseconds, so one queue's set is in its
//! serving order whichever node holds the call. A member is there while
//! the caller waits in line; a caller being offered, connected or gone
//! is not.
//!
//! # The rule a claim follows ([`crate::claims::ClaimStore::claim_in_line`])
//!
//! A node claiming agent A for its caller C names C's member and score
//! and the lines of every queue A's skills qualify for (C's first). The
//! claim script refuses it (`behind`) when a member scored below C in
//! one of those lines belongs to another node whose heartbeat is fresh:
//! that node's caller was first and A suits them (same queue, or a queue A
//! also serves). Members of a node whose heartbeat lapsed are removed on
//! the spot, like a dead node's claims are reaped. The refused node leaves
//! A alone for a while (`--line-yield`), during which the node ahead
//! claims A for its caller; if nobody has, it claims again with the
//! check skipped (`force`), so a caller the node ahead passes over for a
//! reason of its own (a coordinator's window, a transfer's one agent, a
//! skill level) never keeps A idle for longer than that. On success C's
//! member leaves its line in the same script. Still one round trip.
//!
//! Redis down: claims go out on the local view (the daemon's degraded
//! mode) and each node serves its own callers in its own order; the line
//! is written again in full ([`LineStore::sync`]) when Redis is back.

mod diff;
pub(crate) mod member;

pub use diff::{LineDiff, LineOp};
pub use member::{LineCheck, member, parse_member};

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Pipeline, Script};

use crate::claims::store::bounded;
use crate::claims::{NodeId, StoreConfig, StoreError};

/// One queue's line as `/api/cluster` shows it: how many wait on each node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineCount {
    /// The queue.
    pub queue: String,
    /// Node → callers waiting, sorted by node.
    pub nodes: Vec<(String, u64)>,
}

/// A node's writes to the shared lines, and the reads of positions.
/// Cheap to clone.
#[derive(Clone)]
pub struct LineStore {
    connection: ConnectionManager,
    config: StoreConfig,
    node: NodeId,
    sync: Script,
}

impl std::fmt::Debug for LineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineStore")
            .field("url", &self.config.url)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl LineStore {
    /// Connects within `connect_timeout`.
    pub async fn connect(config: StoreConfig, node: NodeId) -> Result<Self, StoreError> {
        let connection = config.connect_manager().await?;
        Ok(Self {
            connection,
            config,
            node,
            sync: Script::new(crate::claims::script::SYNC),
        })
    }

    /// Applies a [`LineDiff`]'s changes, in one pipeline.
    pub async fn apply(&self, ops: &[LineOp]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut pipe = Pipeline::new();
        for op in ops {
            match op {
                LineOp::Add { queue, call, score } => {
                    pipe.zadd(
                        self.config.line_key(queue),
                        member(self.node.as_str(), *call),
                        *score,
                    )
                    .ignore();
                }
                LineOp::Remove { queue, call } => {
                    pipe.zrem(
                        self.config.line_key(queue),
                        member(self.node.as_str(), *call),
                    )
                    .ignore();
                }
            }
        }
        let mut connection = self.connection.clone();
        bounded(
            "line",
            self.config.command_timeout,
            pipe.query_async::<()>(&mut connection),
        )
        .await
    }

    /// Makes this node's members of `queues`' lines exactly `mine`
    /// (queue, call, score), and removes every member of a node whose
    /// heartbeat is older than `alive_within`; one script, so no reader
    /// sees half of it. Returns how many members left. Run after each
    /// (re)connection and now and then.
    pub async fn sync(
        &self,
        queues: &[String],
        mine: &[(String, u64, u64)],
        alive_within: Duration,
    ) -> Result<u64, StoreError> {
        let mut invocation = self.sync.prepare_invoke();
        invocation.key(self.config.nodes_key());
        for queue in queues {
            invocation.key(self.config.line_key(queue));
        }
        invocation
            .arg(self.node.as_str())
            .arg(u64::try_from(alive_within.as_millis()).unwrap_or(u64::MAX));
        for (queue, call, score) in mine {
            // Lua's KEYS count from 1, the nodes' hash first.
            let Some(index) = queues.iter().position(|q| q == queue) else {
                continue;
            };
            invocation
                .arg(index + 2)
                .arg(member(self.node.as_str(), *call))
                .arg(*score);
        }
        let mut connection = self.connection.clone();
        bounded(
            "line sync",
            self.config.command_timeout,
            invocation.invoke_async(&mut connection),
        )
        .await
    }

    /// How many in `queue`'s line are served before a caller scored
    /// `score` (members scored the same included: Redis orders them by
    /// name), so the caller's cluster-wide place is this plus one.
    pub async fn ahead(&self, queue: &str, score: u64) -> Result<u64, StoreError> {
        let mut pipe = Pipeline::new();
        pipe.zcount(self.config.line_key(queue), "-inf", format!("({score}"));
        let mut connection = self.connection.clone();
        let (count,): (u64,) = bounded(
            "line rank",
            self.config.command_timeout,
            pipe.query_async(&mut connection),
        )
        .await?;
        Ok(count)
    }

    /// Each of `queues`' lines, counted per node (a line is read whole:
    /// bounded by how many wait).
    pub async fn counts(&self, queues: &[String]) -> Result<Vec<LineCount>, StoreError> {
        let mut pipe = Pipeline::new();
        for queue in queues {
            pipe.zrange(self.config.line_key(queue), 0, -1);
        }
        let mut connection = self.connection.clone();
        let lines: Vec<Vec<String>> = bounded(
            "line counts",
            self.config.command_timeout,
            pipe.query_async(&mut connection),
        )
        .await?;
        Ok(queues
            .iter()
            .zip(lines)
            .map(|(queue, members)| {
                let mut nodes = std::collections::BTreeMap::<String, u64>::new();
                for text in &members {
                    let node = parse_member(text)
                        .map_or_else(|| "?".to_string(), |(node, _)| node.to_string());
                    *nodes.entry(node).or_default() += 1;
                }
                LineCount {
                    queue: queue.clone(),
                    nodes: nodes.into_iter().collect(),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_read_back() {
        assert_eq!(member("node-a", 17), "node-a/17");
        let (node, call) = parse_member("node-a/17").expect("a member");
        assert_eq!((node.as_str(), call), ("node-a", 17));
        for bad in [
            "",
            "/17",
            "node-a/",
            "node-a/x",
            "node a/1",
            "node-a/1/",
            "a/123456789012345678901",
        ] {
            assert_eq!(parse_member(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_member_text_never_panics(text in ".{0,100}") {
            let _ = parse_member(&text);
        }

        #[test]
        fn a_member_round_trips(node in "[a-z0-9._:-]{1,64}", call: u64) {
            let text = member(&node, call);
            let (read, back) = parse_member(&text).expect("a member");
            proptest::prop_assert_eq!(read.as_str(), node.as_str());
            proptest::prop_assert_eq!(back, call);
        }
    }
}
