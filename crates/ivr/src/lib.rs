//! Dialplan schema, validation and the IVR engine for frontdesk.
#![forbid(unsafe_code)]

mod compile;
mod diagnostic;
mod hours;
mod ids;
mod plan;
mod raw;
mod trust;

pub use diagnostic::{Diagnostic, Diagnostics, ErrorKind};
pub use hours::{BusinessHours, OpenState, OpeningRange};
pub use ids::{AgentId, Branch, Language, MenuId, PromptId, QueueId, Skill, SourceTag};
pub use plan::{
    AfterHours, Agent, Clinic, Dialplan, KnownPatient, Menu, Number, Overflow, Priority, Prompt,
    Queue, Strategy, Target, normalize_number,
};
pub use trust::{IpNetwork, TrustedSources};
