//! A caller's member in a shared line and what a claim in line names:
//! apart from the store, so that the claims' store can use them without
//! importing the lines' store (which uses the claims' store).

use std::time::Duration;

use crate::claims::types::NodeId;

/// A caller's member in a line: `<node>/<call>`.
pub fn member(node: &str, call: u64) -> String {
    format!("{node}/{call}")
}

/// A member read back: the node and the call, `None` when it is not one.
pub fn parse_member(text: &str) -> Option<(NodeId, u64)> {
    let (node, call) = text.rsplit_once('/')?;
    if call.is_empty() || call.len() > 20 || !call.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((NodeId::new(node)?, call.parse().ok()?))
}

/// What a claim in line names ([`crate::claims::ClaimStore::claim_in_line`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineCheck {
    /// The caller's queue.
    pub queue: String,
    /// The caller's call (its member is `<node>/<call>`).
    pub call: u64,
    /// The caller's score.
    pub score: u64,
    /// Every queue the agent serves (the caller's may be among them).
    pub lines: Vec<String>,
    /// A node is alive while its heartbeat is at most this old.
    pub alive_within: Duration,
    /// Skip the check (this node yielded the agent once already).
    pub force: bool,
}
