//! Identifiers and small value types.
//!
//! The names that come from configuration (agents, queues, skills,
//! branches, languages, prompts), [`Priority`] and [`SkillLevel`] are the
//! clinic's vocabulary, shared with the dialplan and the journal: the
//! `domain` crate defines them once. [`CallId`] is routing's own.

use std::fmt;

pub use domain::{AgentId, Branch, Language, Priority, PromptId, QueueId, Skill, SkillLevel};

/// A call, by the number the driver gave it when it entered routing.
///
/// The daemon keeps its own mapping to SIP Call-IDs and lead ids; routing
/// only needs a cheap, copyable key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

/// A callback entry (virtual hold), by the number the driver gave it; a
/// namespace of its own, apart from [`CallId`] (the driver may use its
/// lead ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallbackId(pub u64);

impl fmt::Display for CallbackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "callback-{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_print_as_call_n() {
        assert_eq!(CallId(7).to_string(), "call-7");
    }
}
