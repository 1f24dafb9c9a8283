//! Errors, one enum per kind of caller action.

use crate::id::{AgentId, CallId, CallbackId, PromptId, QueueId, Skill};
use crate::state::AgentState;

/// A configuration that cannot be applied. Nothing of it was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Two queues share an id.
    #[error("queue `{0}` is defined twice")]
    DuplicateQueue(QueueId),
    /// A queue requires no skill, so no agent could be chosen for it.
    #[error("queue `{0}` requires no skill")]
    NoSkills(QueueId),
    /// A queue lists a skill twice.
    #[error("queue `{queue}` lists skill `{skill}` twice")]
    DuplicateQueueSkill {
        /// The queue.
        queue: QueueId,
        /// The repeated skill.
        skill: Skill,
    },
    /// A queue's ring timeout is zero.
    #[error("queue `{0}` has a zero ring timeout")]
    ZeroRingTimeout(QueueId),
    /// A queue has a max wait or a max length but nowhere to send the
    /// callers past them.
    #[error("queue `{0}` has a max wait or a max length but no overflow")]
    NoOverflow(QueueId),
    /// A queue overflows to a queue that does not exist.
    #[error("queue `{queue}` overflows to unknown queue `{target}`")]
    UnknownOverflowTarget {
        /// The queue.
        queue: QueueId,
        /// Its missing target.
        target: QueueId,
    },
    /// Overflow targets loop back.
    #[error("overflow loops: {}", .0.iter().map(QueueId::as_str).collect::<Vec<_>>().join(" -> "))]
    OverflowCycle(Vec<QueueId>),
    /// Two agents share an id.
    #[error("agent `{0}` is defined twice")]
    DuplicateAgent(AgentId),
    /// An agent lists a skill twice.
    #[error("agent `{agent}` lists skill `{skill}` twice")]
    DuplicateAgentSkill {
        /// The agent.
        agent: AgentId,
        /// The repeated skill.
        skill: Skill,
    },
    /// An agent's capacity is zero.
    #[error("agent `{0}` has capacity 0 (at least 1)")]
    ZeroCapacity(AgentId),
}

/// Why a call was not put in a queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueError {
    /// No such queue (or it was removed by a reload).
    #[error("no queue `{0}`")]
    UnknownQueue(QueueId),
    /// The call is already in routing.
    #[error("{0} is already routed")]
    DuplicateCall(CallId),
    /// The queue was full, and so was every queue it overflows to; the
    /// caller should hear `message`, then be hung up on.
    #[error("queue `{queue}` is full")]
    Refused {
        /// The last full queue of the overflow chain.
        queue: QueueId,
        /// The prompt to play before hanging up.
        message: PromptId,
    },
    /// The queue was full and its overflow takes a voicemail: the caller
    /// leaves a message for `queue`'s department, then is hung up on.
    #[error("queue full: voicemail for `{queue}`")]
    Voicemail {
        /// The queue whose department gets the message.
        queue: QueueId,
    },
    /// A transfer of a call that is not connected to an agent (unknown,
    /// waiting or ringing).
    #[error("{0} is not connected to an agent: it cannot be transferred")]
    NotTransferable(CallId),
}

/// An event or command that does not fit the router's or table's state.
/// None of these changes anything; the daemon logs them (at `debug`: most
/// are races a call's end makes normal, such as a 200 after a CANCEL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    /// No such agent in the table.
    #[error("no agent `{0}`")]
    UnknownAgent(AgentId),
    /// No such call in routing (never enqueued, or already gone).
    #[error("no {0} in routing")]
    UnknownCall(CallId),
    /// The agent is not being offered this call.
    #[error("{call} is not offered to agent `{agent}`")]
    NotOffered {
        /// The call.
        call: CallId,
        /// The agent named.
        agent: AgentId,
    },
    /// The call is not connected to an agent.
    #[error("{0} is not connected")]
    NotConnected(CallId),
    /// The agent's state does not allow this.
    #[error("agent `{agent}` is {state}: cannot {action}")]
    WrongState {
        /// The agent.
        agent: AgentId,
        /// Their state.
        state: AgentState,
        /// What was attempted.
        action: &'static str,
    },
}

/// Why a callback input was refused. None of these changes anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// No such queue (or it was removed by a reload).
    #[error("no queue `{0}`")]
    UnknownQueue(QueueId),
    /// The queue takes no callback entries (no `[queues.callback]`).
    #[error("queue `{0}` takes no callbacks")]
    NotEnabled(QueueId),
    /// A callback entry with this id is already in routing.
    #[error("{0} is already routed")]
    Duplicate(CallbackId),
    /// No such callback entry (never added, or already gone).
    #[error("no {0} in routing")]
    UnknownCallback(CallbackId),
    /// No such call in routing.
    #[error("no {0} in routing")]
    UnknownCall(CallId),
    /// The call is not waiting in line (being offered or connected): its
    /// place cannot be kept for a callback.
    #[error("{0} is not waiting in line")]
    NotWaiting(CallId),
    /// The input does not fit the entry's phase (an agent's answer while
    /// nobody rings for it, a patient's answer before the agent's...).
    #[error("{callback} is not {expected}")]
    WrongPhase {
        /// The entry.
        callback: CallbackId,
        /// What the input needed it to be.
        expected: &'static str,
    },
}
