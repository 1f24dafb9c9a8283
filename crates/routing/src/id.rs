//! Identifiers and small value types, as newtypes.
//!
//! Names that come from configuration (agents, queues, skills, branches,
//! languages, prompts) are `Arc<str>` inside, so cloning one on the hot path
//! is a reference-count increment, never an allocation.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a name.
            pub fn new(name: impl Into<Arc<str>>) -> Self {
                Self(name.into())
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(name: &str) -> Self {
                Self::new(name)
            }
        }

        impl From<String> for $name {
            fn from(name: String) -> Self {
                Self::new(name)
            }
        }
    };
}

name_type!(
    /// An agent, by the SIP user name it registers with (`1003`).
    AgentId
);
name_type!(
    /// A queue (department), by its dialplan id (`pediatrics`).
    QueueId
);
name_type!(
    /// A skill an agent has and a queue requires (`pediatrics`).
    Skill
);
name_type!(
    /// A clinic branch (`north`).
    Branch
);
name_type!(
    /// A spoken language, as the dialplan names it (`en`, `es`).
    Language
);
name_type!(
    /// A prompt to play, by the dialplan's prompt id or file name
    /// (`please-call-back`).
    MessageId
);

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

/// How good an agent is at a skill: 1 (lowest) to 10 (best).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SkillLevel(u8);

impl SkillLevel {
    /// The lowest level, and the default.
    pub const MIN: SkillLevel = SkillLevel(1);
    /// The best level.
    pub const MAX: SkillLevel = SkillLevel(10);

    /// A level, if within 1..=10.
    pub const fn new(level: u8) -> Option<SkillLevel> {
        if level >= Self::MIN.0 && level <= Self::MAX.0 {
            Some(SkillLevel(level))
        } else {
            None
        }
    }

    /// The level as a number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl Default for SkillLevel {
    fn default() -> Self {
        Self::MIN
    }
}

/// A caller's priority class. Urgent callers are served before routine
/// ones; within a class, first come first served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Served first (the `urgent-care` line, menu option 9).
    Urgent,
    /// Everyone else.
    Routine,
}

impl Priority {
    /// Every class, most urgent first.
    pub const ALL: [Priority; 2] = [Priority::Urgent, Priority::Routine];

    /// The name the API and records use: `urgent` or `routine`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Urgent => "urgent",
            Priority::Routine => "routine",
        }
    }

    /// Position in [`Priority::ALL`].
    pub(crate) const fn index(self) -> usize {
        match self {
            Priority::Urgent => 0,
            Priority::Routine => 1,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn names_borrow_as_str_for_lookups() {
        let mut map = HashMap::new();
        map.insert(AgentId::new("1003"), 1);
        assert_eq!(map.get("1003"), Some(&1));
        assert_eq!(AgentId::from("1003").to_string(), "1003");
        assert_eq!(
            format!("{:?}", QueueId::new("pediatrics")),
            "QueueId(\"pediatrics\")"
        );
    }

    #[test]
    fn skill_levels_are_bounded() {
        assert_eq!(SkillLevel::new(0), None);
        assert_eq!(SkillLevel::new(11), None);
        assert_eq!(SkillLevel::new(7).map(SkillLevel::get), Some(7));
        assert_eq!(SkillLevel::default(), SkillLevel::MIN);
    }

    #[test]
    fn priorities_order_urgent_first() {
        assert!(Priority::Urgent < Priority::Routine);
        assert_eq!(Priority::Urgent.as_str(), "urgent");
        assert_eq!(Priority::Routine.to_string(), "routine");
    }
}
