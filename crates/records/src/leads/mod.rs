//! Leads on the record: patients' inquiries that are not live calls (web
//! forms now; callbacks, voicemail and abandoned calls next), each with
//! its classification, its state and its history (DESIGN.md, "Leads").
//!
//! # Writing
//! Unlike a call's steps, a lead is answered to its sender only once it is
//! durable: [`JournalHandle::store_lead`](crate::JournalHandle::store_lead)
//! queues a [`NewLead`] on the journal's one writer with a reply, and the
//! writer answers after the commit (or the failure). The writer commits a
//! batch holding a lead at once instead of lingering, and gathers the
//! leads that queued meanwhile into the same commit (group commit): one
//! fsync serves them all, so a burst costs one disk flush per batch, not
//! per lead. The lead's `Idempotency-Key` is looked up and claimed inside
//! that transaction: the single writer orders every claim, so two posts
//! with one key can never both create a lead. Keys older than the
//! caller's window are not honoured and are deleted as batches go by.
//!
//! Steps of a lead's history after it is stored (a call out to the
//! patient: started, failed, answered, ended) go through the same writer
//! without a reply, like a call's steps ([`LeadEvent`],
//! [`JournalHandle::record_lead_event`](crate::JournalHandle::record_lead_event)).
//!
//! # Reading
//! [`Reader::leads`](crate::Reader::leads) lists them newest first,
//! [`Reader::lead`](crate::Reader::lead) gives one with its history,
//! [`Reader::related`](crate::Reader::related) the same patient's other
//! calls and leads, [`Reader::open_leads`](crate::Reader::open_leads) the
//! leads still open (emergencies first, then the oldest), and
//! [`Reader::lead_report`](crate::Reader::lead_report) the figures per
//! source and per department ([`report`]).
//!
//! Once stored, a lead changes through [`LeadChange`]s (the desk's
//! offers, accepts, outcomes), recorded like a call's steps: each appends
//! one `lead_events` row and sets the lead's `owner`, `state`, `outcome`,
//! `first_contact_at` and `snoozed_until`. An offer's deadline is in its
//! `offered` event's detail (`{"until": ms}`), which
//! [`Reader::desk_leads`](crate::Reader::desk_leads) reads back at start:
//! no column was added for them (version 3's tables serve).
//!
//! # Schema (version 3)
//! `leads`: one row per lead; `lead_events`: its history; `lead_keys`:
//! idempotency keys per source; and an index of `calls` by caller, for
//! `related`. The lead's `signed_at` and `signature` keep the signature it
//! was accepted with, so that a restart still refuses its replay within
//! the tolerance.

pub(crate) mod events;
pub(crate) mod read;
pub mod report;
pub(crate) mod schema;
pub(crate) mod store;

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde_json::Value;

use crate::entry::{Priority, UnknownName};

pub use events::LeadEvent;
pub use read::{
    DeskRow, IntentJson, LeadFields, LeadHistory, LeadHistoryStep, LeadJson, LeadQuery, LeadRow,
    LeadTimeline,
};
pub use report::{DepartmentLeads, KindLeads, LeadFigures, LeadReport, SourceLeads};

/// A lead's id: `l-` and random characters, chosen by the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeadId(String);

impl LeadId {
    /// Wraps an id.
    pub fn new(id: impl Into<String>) -> Self {
        LeadId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LeadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! names {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in DESIGN.md's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The API's (and the database's) name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(name: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str() == name)
                    .ok_or_else(|| UnknownName { what: $what, name: name.to_string() })
            }
        }
    };
}

names!(
    /// How a lead came in.
    LeadKind, "lead kind", {
        /// A web form (`POST /api/leads`).
        WebForm = "web_form",
        /// A caller who asked to be called back.
        Callback = "callback",
        /// A voicemail.
        Voicemail = "voicemail",
        /// A caller who hung up after waiting.
        AbandonedCall = "abandoned_call",
    }
);

names!(
    /// Where a lead is in its life.
    LeadState, "lead state", {
        /// Nobody has it yet.
        Waiting = "waiting",
        /// Offered to an agent, not accepted yet.
        Offered = "offered",
        /// An agent owns it.
        Accepted = "accepted",
        /// The patient was reached.
        Contacted = "contacted",
        /// Its window passed without contact; raised to the supervisors.
        Escalated = "escalated",
        /// Done, with an outcome.
        Closed = "closed",
    }
);

names!(
    /// How a lead ended.
    LeadOutcome, "lead outcome", {
        /// An appointment was booked.
        Booked = "booked",
        /// The patient was reached (no booking).
        Reached = "reached",
        /// Nobody answered.
        NoAnswer = "no_answer",
        /// The number was not the patient's.
        WrongNumber = "wrong_number",
        /// Another lead of the same patient covers it.
        Duplicate = "duplicate",
    }
);

/// The signature a signed lead was accepted with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSignature {
    /// Its timestamp `t`, in Unix seconds.
    pub signed_at: i64,
    /// Its `v1` MAC, lower-case hex.
    pub mac: String,
}

/// A lead's `Idempotency-Key`, and how long keys are honoured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The key as the sender gave it (per source).
    pub key: String,
    /// A digest of the request it came with, to tell a true repeat from a
    /// reused key.
    pub request_hash: String,
    /// Keys stored before this are no longer honoured (and are deleted).
    pub honoured_since: Timestamp,
}

/// A lead to store: everything known when it arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLead {
    /// Its id.
    pub id: LeadId,
    /// How it came.
    pub kind: LeadKind,
    /// When it arrived.
    pub created_at: Timestamp,
    /// The source's id (`website`).
    pub source: String,
    /// The form's campaign, if it named one.
    pub campaign: Option<String>,
    /// The patient's name, as given.
    pub name: Option<String>,
    /// The patient's number, E.164.
    pub phone: String,
    /// The patient's e-mail, as given.
    pub email: Option<String>,
    /// What the patient wrote.
    pub message: String,
    /// The postal code, as given.
    pub postal_code: Option<String>,
    /// The consents given (`{"call": true}`), a JSON object.
    pub consent: Value,
    /// The queue that owns it.
    pub department: String,
    /// The intent phrase that matched, if any.
    pub intent: Option<String>,
    /// An emergency rule matched.
    pub emergency: bool,
    /// The preferred branch.
    pub branch: Option<String>,
    /// Its priority.
    pub priority: Priority,
    /// When first contact is due.
    pub respond_by: Timestamp,
    /// The signature it came with, for a signed post.
    pub signature: Option<LeadSignature>,
    /// Its idempotency key, if it had one.
    pub idempotency: Option<Idempotency>,
}

/// What the writer did with a [`NewLead`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadStored {
    /// It is on disk.
    Created,
    /// Its idempotency key was already claimed by this lead, within the
    /// window: nothing was stored.
    Existing {
        /// The lead that holds the key.
        id: LeadId,
        /// The digest of the request that claimed it.
        request_hash: String,
    },
}

/// Why a lead was not stored. In every case nothing of it is on disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeadWriteError {
    /// The writer is behind by the whole channel (slow disk): try later.
    #[error("the journal is busy")]
    Full,
    /// The journal is closed (shutting down).
    #[error("the journal is closed")]
    Closed,
    /// The transaction failed (I/O error, disk full); SQLite's message.
    #[error("the journal could not write: {0}")]
    Failed(String),
}

/// One change of an open lead (issue 21: the desk's offers, accepts,
/// escalations, contacts, snoozes, outcomes): a `lead_events` row and the
/// columns it folds into, as the desk computed them.
///
/// Unlike [`NewLead`] a change is queued like a call's step
/// ([`JournalHandle::record_lead`](crate::JournalHandle::record_lead)):
/// the desk never waits on the disk. Changes of one lead are written in
/// the order they were recorded; a change of a lead not on disk changes
/// nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadChange {
    /// The lead.
    pub id: LeadId,
    /// When it happened.
    pub at: Timestamp,
    /// The history's event (`offered`, `offer_expired`, `accepted`,
    /// `assigned`, `escalated`, `contacted`, `closed`, `snoozed`,
    /// `snooze_ended`).
    pub event: &'static str,
    /// The agent concerned.
    pub agent: Option<String>,
    /// The event's detail (an offer's `until`, an outcome), a JSON object.
    pub detail: Value,
    /// The owner after it (or the agent it is offered to).
    pub owner: Option<String>,
    /// The state after it.
    pub state: LeadState,
    /// The outcome, once closed.
    pub outcome: Option<LeadOutcome>,
    /// First contact: kept if already set.
    pub first_contact_at: Option<Timestamp>,
    /// Snoozed until then.
    pub snoozed_until: Option<Timestamp>,
}

/// What a lead's sender is told once the writer is done with it.
pub type LeadReply = Box<dyn FnOnce(Result<LeadStored, LeadWriteError>) + Send>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for state in LeadState::ALL {
            assert_eq!(state.as_str().parse::<LeadState>(), Ok(*state));
        }
        for kind in LeadKind::ALL {
            assert_eq!(kind.as_str().parse::<LeadKind>(), Ok(*kind));
        }
        for outcome in LeadOutcome::ALL {
            assert_eq!(outcome.as_str().parse::<LeadOutcome>(), Ok(*outcome));
        }
        assert!("lost".parse::<LeadState>().is_err());
    }
}
