//! Dialplan schema, validation and the IVR engine for frontdesk.
//!
//! # The model
//!
//! Operators describe a clinic in a TOML dialplan (`dialplans/README.md`
//! documents every key): the numbers it answers, menus, department queues,
//! agents, business hours and holidays in the clinic's time zone, a caller
//! directory of known patients, trusted source addresses, and the feature
//! codes agents dial from their softphones.
//!
//! [`Dialplan::load`] parses, checks and compiles a dialplan. Every error is
//! reported at once as a [`Diagnostic`] that prints as
//! `PATH:LINE:COLUMN: message`: syntax, unknown keys, bad values, names
//! that do not resolve, prompts that are missing or not 8 kHz mono 16-bit
//! PCM WAV, overlapping hours, unreachable menus, loops with no way out,
//! overflow loops, queues no agent can serve, and the clinic safety rules
//! (every entry plays the emergency notice first, in and out of hours; no
//! path ends in silence) unless a number is marked `exempt_from_safety`.
//! A [`Dialplan`] that exists is valid; share it as `Arc<Dialplan>`.
//!
//! # The run loop
//!
//! A [`Session`] walks one call through the plan. It is sans-IO: no clock,
//! no sockets, no tasks. The driver feeds [`Input`]s with the time, drains
//! [`Action`]s, and arms one timer:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use ivr::{Action, Dialplan, Input, Session};
//! # fn wait_for_input_or(_deadline: Option<jiff::Timestamp>) -> Option<Input> { None }
//! let plan = Arc::new(Dialplan::load("dialplans/clinic.toml").expect("valid dialplan"));
//! let mut session = Session::new(plan, "+15550100", "+13125550142", jiff::Timestamp::now())
//!     .expect("known number"); // else answer 404
//! while !session.is_finished() {
//!     while let Some(action) = session.poll_action() {
//!         match action {
//!             Action::Answer => { /* 200 OK; report Input::Answered on ACK */ }
//!             Action::Play { playback, prompt } => { /* play prompt.path() */ }
//!             Action::StopPlayback => { /* stop at once */ }
//!             Action::Queue(decision) => { /* hand to routing */ }
//!             Action::Voicemail(decision) => { /* greeting, beep, record */ }
//!             Action::HangUp { .. } => { /* BYE */ }
//!             Action::Listen { .. } => { /* send the caller's audio to the recogniser */ }
//!             Action::StopListening => { /* stop sending it */ }
//!         }
//!     }
//!     match wait_for_input_or(session.poll_timeout()) {
//!         Some(input) => session.handle_input(jiff::Timestamp::now(), input),
//!         None => session.handle_timeout(jiff::Timestamp::now()),
//!     }
//! }
//! # while session.poll_action().is_some() {}
//! ```
//!
//! Time is a [`jiff::Timestamp`] passed in by the driver; the engine only
//! compares and adds durations, and reads the clinic's local time from it
//! once, at answer, to choose the in-hours or after-hours path. Tests and
//! `frontdesk simulate` drive the same engine with a virtual clock.
//!
//! Barge-in (DESIGN.md): a digit pressed during any prompt, the emergency
//! notice included, stops playback and is acted on at once. During entry
//! prompts it skips the rest of them: a menu that follows receives the
//! digit as its first input; a queue that follows is entered at once.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod compile;
mod diagnostic;
mod features;
mod hours;
mod ids;
pub mod leads;
mod plan;
mod raw;
mod session;
pub mod simulate;
mod speech_menu;
pub mod webhooks;

pub use diagnostic::{Diagnostic, Diagnostics, ErrorKind};
pub use domain::WebhookEvent;
pub use features::{FeatureCode, Features};
/// Trusted networks and the limits, as the dialplan's `[trust]` and
/// `[limits]` set them (the `guard` crate's types).
pub use guard::{IpNetwork, Limits, TrustedSources};
pub use hours::{BusinessHours, OpenState, OpeningRange};
pub use ids::{AgentId, Branch, Language, MenuId, PromptId, QueueId, Skill, SourceTag};
pub use plan::{
    AfterHours, Agent, Callback, CallbackPrompts, Clinic, Dialplan, KnownPatient, Menu, Number,
    Overflow, Priority, PriorityChange, Prompt, Queue, SkillLevel, Strategy, Target, Voicemail,
    normalize_number,
};
pub use session::{
    Action, CallContext, Input, PROMPT_GRACE, PlaybackId, QueueDecision, Session, SessionError,
    Step, describe_patient, describe_queue,
};
pub use speech_menu::{MenuSpeech, SpeechChoice, SpeechInput, SpeechMatcher, SpeechSettings};

/// The time library of this crate's API (`Timestamp`), re-exported so that
/// callers use the same version.
pub use jiff;
