//! A caller's priority class.

use std::fmt;
use std::str::FromStr;

/// How urgent a call is (DESIGN.md: `routine` or `urgent`). Urgent callers
/// are served before routine ones; within a class, first come first
/// served (routing's lines, with aging). The dialplan sets it per number
/// and per target, routing orders by it, the journal keeps it.
///
/// Ordered by who is served first: `Urgent < Routine`, as in
/// [`Priority::ALL`] and [`Priority::index`] (the declaration order is the
/// dialplan's, `routine` then `urgent`, which its error messages list).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Everyone else; also the priority of a call not queued yet.
    #[default]
    Routine,
    /// Served first (the `urgent-care` line, menu option 9).
    Urgent,
}

impl Priority {
    /// Every class, most urgent first.
    pub const ALL: [Priority; 2] = [Priority::Urgent, Priority::Routine];

    /// The name the dialplan, the API and the journal use: `routine` or
    /// `urgent`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Routine => "routine",
            Priority::Urgent => "urgent",
        }
    }

    /// Position in [`Priority::ALL`]: 0 is served first.
    pub const fn index(self) -> usize {
        match self {
            Priority::Urgent => 0,
            Priority::Routine => 1,
        }
    }
}

impl Ord for Priority {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.index().cmp(&other.index())
    }
}

impl PartialOrd for Priority {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a [`Priority`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPriority(pub String);

impl fmt::Display for UnknownPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown priority {:?}", self.0)
    }
}

impl std::error::Error for UnknownPriority {}

impl FromStr for Priority {
    type Err = UnknownPriority;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|priority| priority.as_str() == name)
            .ok_or_else(|| UnknownPriority(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urgent_is_served_first_and_names_round_trip() {
        assert_eq!(Priority::ALL[Priority::Urgent.index()], Priority::Urgent);
        assert_eq!(Priority::ALL[Priority::Routine.index()], Priority::Routine);
        assert!(Priority::Urgent < Priority::Routine);
        let mut sorted = vec![Priority::Routine, Priority::Urgent];
        sorted.sort();
        assert_eq!(sorted, Priority::ALL);
        for priority in Priority::ALL {
            assert_eq!(priority.as_str().parse(), Ok(priority));
            assert_eq!(priority.to_string(), priority.as_str());
        }
        assert_eq!(
            "high".parse::<Priority>(),
            Err(UnknownPriority("high".into()))
        );
        assert_eq!(Priority::default(), Priority::Routine);
    }
}
