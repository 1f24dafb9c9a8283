//! The clinic's vocabulary: the names and small values that the dialplan
//! (`ivr`), routing (`routing`) and the journal (`records`) all speak of.
//!
//! # Why a crate of its own
//!
//! A priority is written in the dialplan, orders routing's lines and is
//! stored with every queued call; a queue id, an agent id, a skill or a
//! strategy is written in the dialplan and acted on by routing. Those
//! three crates do not depend on each other (routing does not know the
//! dialplan's schema, the journal knows neither), so a type they share can
//! live in none of them: each used to define its own copy, and the daemon
//! converted between them. Here each is defined once, and `ivr`, `routing`
//! and `records` re-export the ones their API uses, so `ivr::QueueId` and
//! `routing::QueueId` are one type.
//!
//! Only what truly belongs to several of them comes here: plain data, no
//! behaviour beyond names and ordering, no I/O, no clock. What one crate
//! alone uses stays in it (a menu id in `ivr`, an agent's state in
//! `routing`, a call's outcome in `records`).
//!
//! - Names from the dialplan ([`AgentId`], [`QueueId`], [`Skill`],
//!   [`Branch`], [`Language`], [`SourceTag`], [`PromptId`]): newtypes over
//!   `Arc<str>`, so cloning one on routing's hot path is a reference-count
//!   increment, never an allocation, and a queue cannot be passed where an
//!   agent is meant. [`name_type!`] makes more of them (`ivr`'s menu ids).
//! - [`Priority`]: `urgent` or `routine`.
//! - [`Strategy`]: how a queue picks an agent.
//! - [`SkillLevel`]: how good an agent is at a skill, 1 to 10.
//! - [`WebhookEvent`]: the kinds of event a CRM webhook subscribes to
//!   (the dialplan names them, the journal queues them).
//! - [`Overflow`] and [`PriorityChange`]: where a caller goes after a
//!   queue's max wait, or from a full queue.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod names;
mod overflow;
mod priority;
mod strategy;
mod webhook;

pub use names::{AgentId, Branch, Language, PromptId, QueueId, Skill, SourceTag};
pub use overflow::{Overflow, PriorityChange};
pub use priority::{Priority, UnknownPriority};
pub use strategy::{SkillLevel, Strategy};
pub use webhook::{UnknownWebhookEvent, WebhookEvent};

/// For [`name_type!`]'s expansion in other crates.
#[doc(hidden)]
pub use serde as __serde;
