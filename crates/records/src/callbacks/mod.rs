//! Callback entries on the record (issue 22's virtual hold): a patient
//! who hung up while waiting in a queue, to be called back in the place
//! they had (`routing::router::callback`).
//!
//! # Why they are journalled
//! The routing core keeps the waiting entries in memory, in their place in
//! the queue's line. A restart must not lose them, nor send them to the
//! back: the patient was told they would be called back, and was promised
//! the place they gave up by hanging up. So each entry is a row of
//! `callbacks`, and at start the daemon gives routing back every one still
//! waiting ([`Reader::waiting_callbacks`](crate::Reader::waiting_callbacks),
//! oldest first) with what its place rests on: the priority, the branch
//! and language for the choice of agent, the tries already made and the
//! pause before the next one. Routing's clock starts again at zero in a
//! new process, so the place is kept as wall-clock time: `enqueued_at` is
//! when the patient first entered routing, and the driver rebuilds the
//! entry's time on the new clock from it (`now` minus the time since);
//! `not_before` likewise.
//!
//! # Writing
//! Changes go through the journal's one writer like a call's steps, never
//! waited on ([`JournalHandle::record_callback`](crate::JournalHandle::record_callback)):
//! dropped and counted when the backlog is full, written in the order they
//! were recorded. An accepted entry ([`CallbackChange::Accepted`]) makes
//! its batch commit at once instead of lingering (as a lead's store
//! does): the patient hears
//! "we will call you back" and hangs up, and from then on the row is all
//! that remembers them. A second `Accepted` of one id is ignored; a
//! change of an id not on disk changes nothing (no error per change: a
//! lost `Accepted` costs its entry, not a stream of failures).
//!
//! # Schema (version 4)
//! `callbacks`: one row per entry, `id` (`cb-…`) the primary key; `call`
//! is the patient's call (`c-…`, not a foreign key: the call's own row may
//! have been dropped with a full backlog); `number` the patient's, E.164,
//! stored in full like the calls' (the journal is the clinic's record;
//! this crate logs no numbers). Times are milliseconds since the Unix
//! epoch. The partial index `callbacks_waiting (enqueued_at, id) WHERE
//! state = 'waiting'` serves the restart's read, whatever the number of
//! entries that ended.

mod read;
pub(crate) mod schema;
pub(crate) mod store;

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;

use crate::entry::{Priority, UnknownName};

/// Where a callback entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallbackState {
    /// In its queue's callback line (or being dialed): routing gets it
    /// back after a restart.
    Waiting,
    /// The patient answered and was bridged to an agent.
    Connected,
    /// Every try failed; it left routing (a follow-up lead takes over).
    Exhausted,
    /// Taken out of routing (cancelled, the queue went away).
    Withdrawn,
}

impl CallbackState {
    /// Every value, in the schema's order.
    pub const ALL: [CallbackState; 4] = [
        CallbackState::Waiting,
        CallbackState::Connected,
        CallbackState::Exhausted,
        CallbackState::Withdrawn,
    ];

    /// The database's name: `waiting`, `connected`, `exhausted`,
    /// `withdrawn`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CallbackState::Waiting => "waiting",
            CallbackState::Connected => "connected",
            CallbackState::Exhausted => "exhausted",
            CallbackState::Withdrawn => "withdrawn",
        }
    }
}

impl fmt::Display for CallbackState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CallbackState {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        CallbackState::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
            .ok_or_else(|| UnknownName {
                what: "callback state",
                name: name.to_string(),
            })
    }
}

/// One callback entry as the `callbacks` table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackRow {
    /// Its id, `cb-…`.
    pub id: String,
    /// The patient's call, `c-…`.
    pub call: String,
    /// The queue whose agents call back.
    pub queue: String,
    /// The priority it keeps.
    pub priority: Priority,
    /// The patient's branch, for the choice of agent.
    pub branch: Option<String>,
    /// The patient's language, for the choice of agent.
    pub language: Option<String>,
    /// The number to call, E.164.
    pub number: String,
    /// When the patient first entered routing: the place it keeps, and
    /// what routing's clock is rebuilt from after a restart.
    pub enqueued_at: Timestamp,
    /// When the patient accepted the callback.
    pub accepted_at: Timestamp,
    /// Tries at the patient made so far.
    pub attempts: u32,
    /// Not dialed before this (a retry's pause); `None`: at once.
    pub not_before: Option<Timestamp>,
    /// Where it is.
    pub state: CallbackState,
    /// The agent who took it (a connected one), if any.
    pub agent: Option<String>,
    /// When it ended (`None` while waiting).
    pub ended_at: Option<Timestamp>,
    /// Why it ended (`no_answer`, `busy`, `cancelled`, …), if said.
    pub reason: Option<String>,
}

/// One change of a callback entry, recorded with
/// [`JournalHandle::record_callback`](crate::JournalHandle::record_callback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackChange {
    /// The patient accepted a callback: the row is inserted, waiting (its
    /// `state`, `agent`, `ended_at` and `reason` are not read). Ignored if
    /// the id is already on disk.
    Accepted(CallbackRow),
    /// A try failed and the entry waits for its next one, in its place:
    /// sets `attempts` and `not_before`. Changes nothing once the entry
    /// has ended.
    Rescheduled {
        /// The entry.
        id: String,
        /// Tries made so far.
        attempts: u32,
        /// Not dialed before this.
        not_before: Timestamp,
    },
    /// The entry left routing: sets `state`, `agent`, `ended_at`,
    /// `attempts` and `reason`. `state` is the final one; a `Finished`
    /// with [`CallbackState::Waiting`] is skipped (it would end nothing).
    Finished {
        /// The entry.
        id: String,
        /// How it ended.
        state: CallbackState,
        /// The agent who took it, if any.
        agent: Option<String>,
        /// When.
        at: Timestamp,
        /// Tries made in all.
        attempts: u32,
        /// Why, if said.
        reason: Option<String>,
    },
}

impl CallbackChange {
    /// The entry it changes.
    pub fn id(&self) -> &str {
        match self {
            CallbackChange::Accepted(row) => &row.id,
            CallbackChange::Rescheduled { id, .. } | CallbackChange::Finished { id, .. } => id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for state in CallbackState::ALL {
            assert_eq!(state.as_str().parse::<CallbackState>(), Ok(state));
            assert_eq!(state.to_string(), state.as_str());
        }
        assert!("lost".parse::<CallbackState>().is_err());
    }
}
