//! Errors of claims, one variant per cause a caller acts on differently.

use std::time::Duration;

use super::types::{Epoch, NodeId, RedisMillis};

/// Why a claim, renewal or release did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Another claim holds the agent: choose another agent (or wait for
    /// the change that frees them).
    #[error("held by node {by} at epoch {epoch} until {until}")]
    Taken {
        /// The holder.
        by: NodeId,
        /// The holder's epoch.
        epoch: Epoch,
        /// The holder's lease end (Redis time).
        until: RedisMillis,
    },
    /// The epoch named is not the agent's current one: the replica is
    /// behind (or another node claimed since); catch up and decide again.
    #[error("stale epoch: the agent is at epoch {epoch}")]
    Stale {
        /// The agent's epoch.
        epoch: Epoch,
    },
    /// The claim is no longer held: its lease ran out (or it was released)
    /// before this renewal or release. The agent may already be another
    /// node's; do not act on the claim.
    #[error("the claim at epoch {epoch} is no longer held (its lease ran out)")]
    Lapsed {
        /// The agent's epoch.
        epoch: Epoch,
    },
    /// A caller of another live node is first in line for this agent
    /// ([`crate::line`]): leave the agent to that node for a while
    /// (the daemon's `--line-yield`), then claim again with the check
    /// skipped if nobody took them.
    #[error("a caller of another node ({ahead}) is ahead in line")]
    Behind {
        /// That caller's member (`<node>/<call>`).
        ahead: String,
        /// The agent's epoch.
        epoch: Epoch,
    },
    /// Redis did not answer, or answered something we cannot read: route
    /// on the local view and retry later.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Redis could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No answer within the configured time.
    #[error("redis: no answer to {what} within {after:?}")]
    Timeout {
        /// The command.
        what: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The client or the server reported an error (connection refused,
    /// closed, a script error...).
    #[error("redis: {what}: {message}")]
    Redis {
        /// The command.
        what: &'static str,
        /// The client's message.
        message: String,
    },
    /// A reply we cannot read.
    #[error("redis: {what}: {source}")]
    Reply {
        /// The command.
        what: &'static str,
        /// What was wrong with it.
        source: ReplyError,
    },
}

/// A reply from Redis (a script's, a stream entry) that is not what the
/// scripts write: a missing or garbled field. Never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed reply: {0}")]
pub struct ReplyError(pub String);

impl ReplyError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
