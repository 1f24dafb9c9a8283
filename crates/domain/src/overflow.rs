//! Where a caller goes from a queue they cannot wait in any longer.

use crate::names::{PromptId, QueueId};
use crate::priority::Priority;

/// What a caller's priority becomes when they move to another queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PriorityChange {
    /// Keep the priority they had (`urgent-care` → `front-desk`, "still
    /// urgent"). The dialplan says it by naming no `priority`.
    Keep,
    /// Take this priority in the new queue.
    Set(Priority),
}

impl PriorityChange {
    /// The priority a caller who had `priority` has after the change.
    pub const fn apply(self, priority: Priority) -> Priority {
        match self {
            PriorityChange::Keep => priority,
            PriorityChange::Set(priority) => priority,
        }
    }
}

impl From<Option<Priority>> for PriorityChange {
    /// `None` (the dialplan names no priority) keeps the caller's.
    fn from(priority: Option<Priority>) -> Self {
        priority.map_or(PriorityChange::Keep, PriorityChange::Set)
    }
}

/// What happens to a caller who has waited a queue's max wait, or who
/// finds it full (its max length): the dialplan's `on_max_wait`, which
/// routing carries out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Move to another queue. The caller keeps their original enqueue time:
    /// their place among other callers, their SLA and their recorded wait
    /// all count from when they first entered routing. The new queue's max
    /// wait counts from when they enter it.
    Queue {
        /// Where they go.
        queue: QueueId,
        /// Their priority there.
        priority: PriorityChange,
    },
    /// Play this prompt, then hang up.
    Message {
        /// The prompt (a file the dialplan names and `check` has read).
        message: PromptId,
    },
    /// Take a voicemail for this queue's department (the dialplan's
    /// `[voicemail]` greeting, a beep, the message), then hang up.
    Voicemail {
        /// The queue whose department gets the message as a lead.
        queue: QueueId,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_keeps_or_sets_the_priority() {
        assert_eq!(
            PriorityChange::Keep.apply(Priority::Urgent),
            Priority::Urgent
        );
        let set = PriorityChange::from(Some(Priority::Routine));
        assert_eq!(set.apply(Priority::Urgent), Priority::Routine);
        assert_eq!(PriorityChange::from(None), PriorityChange::Keep);
    }
}
