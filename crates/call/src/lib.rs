//! The call as a state machine: everything frontdesk decides about one
//! patient's call, without I/O.
//!
//! # Model
//!
//! A [`Call`] is one patient's call from the INVITE to the last BYE: the
//! patient's leg (answer, SDP, re-INVITEs, INFO digits), the IVR
//! ([`ivr::Session`], which it owns), the queue wait (hold prompt,
//! announcements, music), the agent legs of the B2BUA (an INVITE per
//! offered agent, the first to answer bridged, the others cancelled), the
//! agent's transfers (REFER, blind or attended) and the call's record. It is
//! built like the other cores of the workspace (`sip::transaction`,
//! `routing::Router`, `ivr::Session`, `media::session::MediaSession`): it
//! never reads a clock, never touches a socket, a port, the disk or another
//! task, and takes its randomness (tags, Call-IDs, SRTP keys) from an RNG
//! the driver seeds from the system's entropy and tests seed with a number.
//!
//! # The run loop
//!
//! ```text
//! let mut call = Call::new(config, invite, transaction, source, now, rng);
//! call.start(now, &env);
//! loop {
//!     while let Some(action) = call.poll_action() { perform(action) }   // may feed inputs back
//!     if call.is_finished() { break }
//!     select! {
//!         sip event      => call.handle_sip(now, event, &env),
//!         media event    => call.handle_media(now, event, &env),
//!         routing news   => call.handle_routing(now, news, &env),
//!         sleep_until(call.poll_timeout()) => call.handle_timeout(now, &env),
//!     }
//! }
//! ```
//!
//! Inputs: [`Call::handle_sip`] (the transaction layer's events for the
//! call's Call-IDs), [`Call::handle_media`] (digits, playback ends,
//! inactivity from the media task), [`Call::handle_routing`] (offers,
//! overflows, and the answers to the questions the call asked routing),
//! [`Call::handle_port`] (the answer to an [`Action::LeasePort`]),
//! [`Call::handle_sent`] (the transaction id of a request the call sent),
//! [`Call::handle_drain`] (the daemon drains: waiting callers keep their
//! place), [`Call::handle_shutdown`] (the daemon's grace is over) and
//! [`Call::handle_timeout`]. Outputs: [`Call::poll_action`] (send this
//! response or request, lease a port, start or stop a prompt, bridge, ask
//! routing, journal a step, publish the record) and [`Call::poll_timeout`].
//! The [`Environment`] gives read-only views of shared state a call
//! consults as it goes: the dialplan in force and the agents' bindings.
//!
//! A second core, [`originate::Originate`], is an outbound call: it rings
//! an agent's phone, then dials a patient through the carrier's trunk and
//! bridges the two (click-to-call; the callback dialer is to use it). It shares the messages,
//! tokens and SDP of this crate, not the patient-INVITE-shaped [`Call`].
//!
//! A thin driver in the binary (`frontdesk`'s `calls` module) owns one core
//! per call in a task and performs its actions; it decides nothing.
//!
//! # Time
//!
//! `now` is a monotonic [`Instant`](std::time::Instant). The IVR and the
//! record need the wall clock (business hours, `started_at`): the call keeps
//! the pair (instant, timestamp) it was created with and derives the wall
//! time of any `now` from it ([`Clock`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod action;
mod agent;
mod call;
mod callback;
mod clock;
mod drain;
mod journal;
pub mod originate;
mod queue;
mod record;
pub mod signal;
mod transfer;
mod voicemail;

#[cfg(test)]
mod tests;

pub use action::{
    Action, CallLead, MediaAction, PortToken, Recording, RouterRequest, RoutingInput, SendToken,
};
pub use call::{Call, CallConfig, Environment};
pub use clock::Clock;
pub use record::{CallJson, CallRecord, TransferJson, TransferRecord};
/// How a call ended: the journal's outcome (`records`), one enum for the
/// live calls and the journal's.
pub use records::Outcome;
pub use transfer::DIRECT_WINDOW;
