//! What the router hands the bridge, and what it hears back.

use std::time::Duration;

use crate::id::{AgentId, Branch, CallId, CallbackId, Language, Priority, PromptId, QueueId};
use crate::state::AgentState;
use crate::time::Millis;

/// One agent, or several for ring-all, without allocating for one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AgentList {
    /// Nobody.
    #[default]
    Empty,
    /// One agent.
    One(AgentId),
    /// Several agents.
    Many(Vec<AgentId>),
}

impl AgentList {
    /// The agents as a slice.
    pub fn as_slice(&self) -> &[AgentId] {
        match self {
            AgentList::Empty => &[],
            AgentList::One(agent) => std::slice::from_ref(agent),
            AgentList::Many(agents) => agents,
        }
    }

    /// How many agents.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// True with no agent.
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// True when `agent` is in the list.
    pub fn contains(&self, agent: &AgentId) -> bool {
        self.as_slice().contains(agent)
    }

    /// The agents, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, AgentId> {
        self.as_slice().iter()
    }

    /// Removes `agent`; true if they were there.
    pub(crate) fn remove(&mut self, agent: &AgentId) -> bool {
        match self {
            AgentList::One(one) if one == agent => {
                *self = AgentList::Empty;
                true
            }
            AgentList::Many(many) => match many.iter().position(|a| a == agent) {
                Some(at) => {
                    many.remove(at);
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    /// Takes every agent out, leaving the list empty.
    pub(crate) fn take(&mut self) -> AgentList {
        std::mem::take(self)
    }
}

impl From<Vec<AgentId>> for AgentList {
    fn from(mut agents: Vec<AgentId>) -> Self {
        match agents.len() {
            0 => AgentList::Empty,
            1 => agents.pop().map_or(AgentList::Empty, AgentList::One),
            _ => AgentList::Many(agents),
        }
    }
}

impl<'a> IntoIterator for &'a AgentList {
    type Item = &'a AgentId;
    type IntoIter = std::slice::Iter<'a, AgentId>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A waiting caller paired with claimed agent(s): ring them.
///
/// The agents are `ringing` already. The bridge calls each one (forks for
/// ring-all), for at most `ring_timeout`, then reports back with
/// [`crate::Router::answered`] or [`crate::Router::offer_failed`] per agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The caller.
    pub call: CallId,
    /// The queue the call is in.
    pub queue: QueueId,
    /// The caller's priority there.
    pub priority: Priority,
    /// Whom to ring: one agent, or every one for ring-all.
    pub agents: AgentList,
    /// How long the caller has waited so far (from first enqueue), for the
    /// agent's display ("waited 0:42").
    pub waited: Duration,
    /// How long to let the agents' phones ring before reporting
    /// [`OfferFailure::NoAnswer`].
    pub ring_timeout: Duration,
}

/// Why an offered agent did not take the call. Each one but
/// [`OfferFailure::ClaimedElsewhere`] counts as a miss toward `away`
/// ([`crate::RouterConfig::away_after_misses`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OfferFailure {
    /// The ring timeout passed (the bridge sent CANCEL).
    NoAnswer,
    /// 486 Busy Here or 600 Busy Everywhere.
    Busy,
    /// 603 Decline, or another final refusal.
    Rejected,
    /// 408, a transport error, or no response: the phone is unreachable.
    Unreachable,
    /// The agent was never rung: another node of the cluster holds their
    /// claim (issue 24), so the offer is taken back before it reaches the
    /// call. Not a miss: the agent keeps their place (and is held elsewhere
    /// once the driver says so, [`crate::Router::held_elsewhere`]), the
    /// caller goes back to their place and is offered to the next agent at
    /// once.
    ClaimedElsewhere,
}

/// What the caller is known to be, from the IVR's caller context.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallerContext {
    /// The branch the caller belongs to or dialed.
    pub branch: Option<Branch>,
    /// A known patient's usual coordinator.
    pub coordinator: Option<AgentId>,
    /// The caller's language.
    pub language: Option<Language>,
}

/// Where an enqueued caller stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// The queue the caller waits in: the one asked for, or where its full
    /// line overflowed to.
    pub queue: QueueId,
    /// The caller's priority there.
    pub priority: Priority,
    /// 1-based place in serving order.
    pub position: usize,
    /// The wait estimate for this queue and priority, if there are enough
    /// recent samples.
    pub estimated_wait: Option<Duration>,
    /// The queue asked for, when it was full and the caller was sent on.
    pub overflowed_from: Option<QueueId>,
}

/// Why a caller left a queue for another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverflowReason {
    /// They waited the queue's max wait.
    MaxWait,
    /// The target was full, so they went on down its chain.
    QueueFull,
}

/// Something the daemon must act on or record, from [`crate::Router::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterEvent {
    /// An agent's state changed (for the dashboard, metrics and records).
    AgentStateChanged {
        /// The agent.
        agent: AgentId,
        /// Before.
        from: AgentState,
        /// After.
        to: AgentState,
        /// When.
        at: Millis,
    },
    /// A caller moved to another queue after the max wait.
    Overflowed {
        /// The caller.
        call: CallId,
        /// The queue they left.
        from: QueueId,
        /// The queue they now wait in.
        to: QueueId,
        /// Their priority there.
        priority: Priority,
        /// Why.
        reason: OverflowReason,
    },
    /// A caller reached the end of the line: play `message`, then hang up.
    /// The call has left routing.
    GiveUp {
        /// The caller.
        call: CallId,
        /// The queue they were in.
        queue: QueueId,
        /// The prompt to play.
        message: PromptId,
    },
    /// A caller reached the end of the line and the dialplan takes a
    /// voicemail there: they leave a message for `queue`'s department. The
    /// call has left routing.
    Voicemail {
        /// The caller.
        call: CallId,
        /// The queue they were in.
        from: QueueId,
        /// The queue whose department gets the message.
        queue: QueueId,
    },
}

/// A callback entry at the head of its queue paired with a claimed agent:
/// call the agent, then the patient (the bridge's outbound call), from
/// [`crate::Router::poll_callback`].
///
/// The agent is `ringing` already, claimed like an offer. The bridge
/// reports back with [`crate::Router::callback_agent_answered`] or
/// [`crate::Router::callback_agent_failed`], then, once the agent talks,
/// [`crate::Router::callback_answered`] or [`crate::Router::callback_failed`]
/// for the patient's leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackDial {
    /// The entry.
    pub callback: CallbackId,
    /// Its queue.
    pub queue: QueueId,
    /// Its priority there.
    pub priority: Priority,
    /// The agent to ring first.
    pub agent: AgentId,
    /// Which try at the patient this is (1 for the first).
    pub attempt: u32,
    /// How long the patient has waited for service so far (from their
    /// first enqueue, the hold included), for the agent's display.
    pub waited: Duration,
    /// How long to let the agent's phone ring (the queue's ring timeout).
    pub ring_timeout: Duration,
}

/// Why the patient's leg of a callback failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallbackFailure {
    /// Nobody answered within the ring time.
    NoAnswer,
    /// 486 or 600: busy.
    Busy,
    /// Refused, unreachable, or the trunk failed.
    Failed,
}

/// What the driver must act on or record about callback entries, from
/// [`crate::Router::poll_callback`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackEvent {
    /// Dial this entry with this agent.
    Dial(CallbackDial),
    /// The patient did not answer: the entry waits in its place and is
    /// tried again from `at` (journal `attempts` and `at`, so a restart
    /// keeps them: [`crate::CallbackEntry`]).
    Rescheduled {
        /// The entry.
        callback: CallbackId,
        /// Its queue.
        queue: QueueId,
        /// Tries at the patient so far.
        attempts: u32,
        /// Not dialed before this.
        at: Millis,
        /// Why the last try failed.
        reason: CallbackFailure,
    },
    /// The last try failed: the entry has left routing (the driver makes
    /// it a follow-up lead).
    Exhausted {
        /// The entry.
        callback: CallbackId,
        /// Its queue.
        queue: QueueId,
        /// Tries at the patient made.
        attempts: u32,
        /// Why the last try failed.
        reason: CallbackFailure,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_list_holds_one_without_a_vec() {
        let alice = AgentId::new("1001");
        let bob = AgentId::new("1002");
        let mut one = AgentList::from(vec![alice.clone()]);
        assert_eq!(one, AgentList::One(alice.clone()));
        assert_eq!(one.as_slice(), std::slice::from_ref(&alice));
        assert!(one.contains(&alice));
        assert!(!one.remove(&bob));
        assert!(one.remove(&alice));
        assert!(one.is_empty());

        let mut many = AgentList::from(vec![alice.clone(), bob.clone()]);
        assert_eq!(many.len(), 2);
        assert!(many.remove(&alice));
        assert_eq!(many.iter().collect::<Vec<_>>(), [&bob]);
        let taken = many.take();
        assert_eq!(taken.len(), 1);
        assert!(many.is_empty());
        assert_eq!(AgentList::from(Vec::new()), AgentList::Empty);
    }
}
