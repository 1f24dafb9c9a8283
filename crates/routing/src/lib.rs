//! Queues, the agent availability table and agent selection for frontdesk:
//! which agent gets this patient, now.
//!
//! This crate does no I/O and reads no clock: it is a sans-IO core in the
//! manner of quinn-proto and str0m. The daemon drives it from one task and
//! passes the time in as [`Millis`], a monotonic millisecond count.
//!
//! # The model
//!
//! * **Agents** live in the [`AgentTable`], one entry each, in a `DashMap`.
//!   An entry's state ([`AgentState`]: `offline`, `available`, `ringing`,
//!   `on_call`, `wrap_up`, `away`) is one atomic word, so every transition
//!   is a compare-and-swap. Per-skill indexes (immutable sorted arrays
//!   behind an `ArcSwap`, rebuilt only on reconfiguration) and per-skill
//!   ranked idle lines (available agents in each strategy's order) let a
//!   decision look only at agents who have the queue's rarest required
//!   skill, usually only at the head of a line. Choosing and claiming
//!   ([`AgentTable::choose_and_claim`]) takes no table-wide lock (a skill's
//!   idle line has a short lock of its own) and allocates nothing; two
//!   decisions racing for one agent cannot both win it. The table never
//!   lends out a guard: readers get [`AgentSnapshot`] copies.
//! * **Queues** ([`QueueConfig`]) keep a line per [`Priority`] class:
//!   urgent before routine, first come first served within a class, and a
//!   routine caller who has waited the queue's `aging` time counts as
//!   urgent from then on, so urgent traffic cannot starve routine callers.
//!   A queue may have a max wait and a max length; past the max wait (or
//!   when full) a caller follows [`Overflow`]: to another queue, keeping or changing
//!   their priority and keeping their original enqueue time, or out with a
//!   message. Callers wait even when no agent is signed in.
//! * **Strategies** ([`Strategy`]): `ring-all`, `round-robin`,
//!   `longest-idle`, `fewest-calls`, `skill-level`, `capacity`; with
//!   [`Preferences`] on top (the caller's language, then branch), and a
//!   known patient's coordinator offered the call first for a while.
//! * **Offers**: the [`Router`] pairs waiting callers with claimed agents
//!   and hands the bridge an [`Offer`]. The bridge reports back: answered,
//!   or failed per agent ([`OfferFailure`]); `N` misses in a row put an
//!   agent `away`. After a call, an agent is in `wrap_up` for the queue's
//!   wrap-up time, then `available`.
//! * **Transfers** ([`Router::transfer`]): an agent hands a connected
//!   caller to another queue, or to one agent first ([`DirectOffer`]); the
//!   caller keeps their priority and the wait they had before the answer.
//! * **Callbacks that keep the caller's place** (virtual hold,
//!   [`Router::hold_place`], [`Router::add_callback`]): a caller who hangs
//!   up to be called back keeps their enqueue time and priority in a
//!   callback line beside the live one; at the head, with an agent free,
//!   the router claims the agent and asks the bridge to dial
//!   ([`Router::poll_callback`], [`CallbackEvent`]); unanswered tries wait
//!   `retry_every` in place, up to `retries`; callbacks hold at most
//!   `max_share` of the queue's free agents, so live callers still get
//!   through.
//! * **Leads** ([`LeadDesk`], module [`leads`]): web forms and other
//!   inquiries offered to one agent at a time through the same table, read
//!   only (a lead offer never changes an agent's call state), with their
//!   own capacity, accept and respond-by timers and escalation.
//! * **Statistics**: [`Router::queue_stats`] gives what `GET /api/queues`
//!   shows, and [`Router::estimate_wait`] a percentile of recent answered
//!   waits, withheld while there are too few.
//!
//! Registration follows DESIGN.md: a first REGISTER makes an agent
//! `available`, a refresh changes nothing, expiry or un-REGISTER makes them
//! `offline`, except that a call in progress continues and the agent goes
//! `offline` when it ends.
//!
//! # The run loop
//!
//! ```
//! use std::time::Duration;
//! use routing::*;
//!
//! let queues = vec![QueueConfig::new("pediatrics", "pediatrics", Strategy::LongestIdle)];
//! let agents = vec![AgentConfig::new("1003", "Carol", ["pediatrics"])];
//! let mut router = Router::new(RouterConfig::default(), queues, agents).unwrap();
//! let carol = AgentId::new("1003");
//! let now = Millis::new(1_000);
//!
//! // Inputs, each with `now`: registrations, callers, the bridge's reports.
//! router.registered(now, &carol).unwrap();
//! let queue = QueueId::new("pediatrics");
//! router.enqueue(now, CallId(1), &queue, Priority::Routine, CallerContext::default()).unwrap();
//!
//! // After every input: drain offers and events.
//! let offer = router.poll_offer(now).expect("Carol is available");
//! assert_eq!(offer.agents.as_slice(), [carol.clone()]);
//! while let Some(event) = router.poll_event() {
//!     // journal it, update the dashboard...
//!     # let _ = event;
//! }
//!
//! // The bridge rings Carol; she answers; later the call ends.
//! router.answered(Millis::new(4_000), CallId(1), &carol).unwrap();
//! router.call_ended(Millis::new(60_000), CallId(1)).unwrap();
//! assert_eq!(router.table().state(&carol), Some(AgentState::WrapUp));
//!
//! // Sleep until the next deadline (or the next input), then handle it.
//! let deadline = router.poll_timeout().expect("the wrap-up ends");
//! assert_eq!(deadline, Millis::new(62_000));
//! router.handle_timeout(deadline);
//! assert_eq!(router.table().state(&carol), Some(AgentState::Available));
//! # let _ = Duration::ZERO;
//! ```
//!
//! In the daemon that is one task: `select!` over a command channel (calls
//! from the IVR, reports from the bridge, registrar changes, admin API
//! requests) and `sleep_until(poll_timeout())`; after each wake-up, call
//! the matching method or [`Router::handle_timeout`], then drain
//! [`Router::poll_offer`] and [`Router::poll_event`]. Readers such as the
//! admin API may hold an `Arc` of [`Router::table`] and read snapshots
//! from any thread.
#![forbid(unsafe_code)]

mod config;
mod error;
mod id;
mod idle;
pub mod leads;
mod line;
mod offer;
mod router;
mod state;
mod stats;
mod table;
mod time;

#[cfg(test)]
mod tests;

pub use config::{
    AgentConfig, AgentSkill, CallbackPolicy, Overflow, PriorityChange, QueueConfig,
    QueuePreferences, RouterConfig, SkillRequirement, Strategy, validate,
};
pub use error::{CallbackError, ConfigError, EnqueueError, RoutingError};
pub use id::{
    AgentId, Branch, CallId, CallbackId, Language, Priority, PromptId, QueueId, Skill, SkillLevel,
};
pub use leads::{
    Actor, DeskError, DeskEvent, LeadDesk, LeadKey, LeadSpec, LeadStatus, Phase, RestoredLead,
};
pub use line::{ROUTINE_BEHIND_MS, shared_score};
pub use offer::{
    AgentList, CallbackDial, CallbackEvent, CallbackFailure, CallerContext, Enqueued, Offer,
    OfferFailure, OverflowReason, RouterEvent,
};
pub use router::{
    CallPhase, CallStatus, CallbackEntry, CallbackPhase, CallbackStatus, DirectOffer, LineEntry,
    LinePlace, Router,
};
pub use state::AgentState;
pub use stats::{MissedOffers, QueueCounters, QueueStats};
pub use table::{
    AgentCounts, AgentSnapshot, AgentTable, Claim, Preferences, RequestedState, Selection,
    Transition,
};
pub use time::Millis;
