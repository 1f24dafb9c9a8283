//! What a call controller tells the journal: one [`JournalEntry`] per step
//! of a call's life, as it happens.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The id of a call (lead): unique per call, chosen by the daemon
/// (`c-<start>-<n>`). The `calls` table's primary key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(String);

impl CallId {
    /// Wraps an id.
    pub fn new(id: impl Into<String>) -> Self {
        CallId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for CallId {
    fn from(id: &str) -> Self {
        CallId::new(id)
    }
}

impl From<String> for CallId {
    fn from(id: String) -> Self {
        CallId(id)
    }
}

/// How a call ended (DESIGN.md's `outcome`, less `in_progress`, which is
/// the absence of an outcome: `Option<Outcome>` is `None` while a call is
/// not over).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An agent answered (at any point of the call).
    Connected,
    /// The caller hung up before reaching anyone.
    Abandoned,
    /// Nobody answered within the queues' max wait: the caller was told to
    /// call back.
    Overflowed,
    /// Refused at once (unknown number, no common codec, overload).
    Rejected,
    /// The clinic was closed and the call ended on the after-hours path.
    AfterHours,
    /// The call was up when the daemon stopped without ending it (killed,
    /// crashed, the machine lost power): closed when the journal was next
    /// opened ([`Journal::close_interrupted`](crate::Journal::close_interrupted)).
    /// Not abandoned: nobody knows what the caller did.
    Interrupted,
}

/// The API's name for a call that has no outcome yet.
pub const IN_PROGRESS: &str = "in_progress";

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 6] = [
        Outcome::Connected,
        Outcome::Abandoned,
        Outcome::Overflowed,
        Outcome::Rejected,
        Outcome::AfterHours,
        Outcome::Interrupted,
    ];

    /// The API's (and the database's) name: `connected`, `abandoned`,
    /// `overflowed`, `rejected`, `after_hours` or `interrupted`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Connected => "connected",
            Outcome::Abandoned => "abandoned",
            Outcome::Overflowed => "overflowed",
            Outcome::Rejected => "rejected",
            Outcome::AfterHours => "after_hours",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// The API's name of an optional outcome: `in_progress` for `None`.
    pub fn name(outcome: Option<Outcome>) -> &'static str {
        outcome.map_or(IN_PROGRESS, Outcome::as_str)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}")]
pub struct UnknownName {
    /// What was named (`outcome`).
    pub what: &'static str,
    /// The name given.
    pub name: String,
}

impl FromStr for Outcome {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == name)
            .ok_or_else(|| UnknownName {
                what: "outcome",
                name: name.to_string(),
            })
    }
}

/// A call's priority in its queue: the `domain` crate's, shared with the
/// dialplan and routing (stored as `routine` or `urgent`).
pub use domain::Priority;

/// One step of a call's life. The call controller emits each as it
/// happens; the writer appends it to `call_events` and folds it into the
/// call's `calls` row (see each variant for the columns it sets).
///
/// Departments and agents are named by their dialplan ids (`pediatrics`,
/// `1003`). A call's row exists from its first entry on, even if
/// [`CallEvent::Started`] was lost (channel full): then `caller` and
/// `dialed` stay empty and `started_at` is the first entry's time.
///
/// Stored as `kind` (the variant's snake_case name) and `detail` (its
/// fields as a JSON object), e.g. `queued` /
/// `{"department":"pediatrics","priority":"routine","sla_ms":60000}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum CallEvent {
    /// The INVITE arrived. Creates the row: `caller`, `dialed`, `source`,
    /// `branch`, `started_at`.
    Started {
        /// The caller's number (From user part).
        caller: String,
        /// The number dialed (Request-URI user part).
        dialed: String,
        /// The dialed number's source tag, when already known.
        #[serde(default)]
        source: Option<String>,
        /// The clinic branch the call belongs to, when the dialed number
        /// says.
        #[serde(default)]
        branch: Option<String>,
    },
    /// The IVR answered the call (it entered the dialplan). Sets
    /// `answered_at` (first time only) and `source` / `branch` when given.
    Entered {
        /// The dialed number's source tag.
        #[serde(default)]
        source: Option<String>,
        /// The clinic branch the dialed number belongs to.
        #[serde(default)]
        branch: Option<String>,
    },
    /// The caller chose something in an IVR menu (timeline only).
    MenuChoice {
        /// The menu's id in the dialplan.
        menu: String,
        /// The digits pressed; empty for "no input".
        digits: String,
    },
    /// A speech menu heard the caller (timeline only): the recogniser's
    /// words and confidence, and the option they chose (`None`: no phrase
    /// matched, or the confidence was below the menu's threshold). Never
    /// audio.
    SpeechHeard {
        /// The menu's id in the dialplan.
        menu: String,
        /// The words recognised, lower-case.
        text: String,
        /// The recogniser's confidence in thousandths (0–1000).
        confidence_permille: u32,
    },
    /// The call entered a department's queue. Sets `department`,
    /// `priority`, `sla_ms`, and `queued_at` (first time only). After an
    /// overflow to another department, emit [`CallEvent::Overflowed`] and
    /// then `Queued` for the new department.
    Queued {
        /// The department (queue) id.
        department: String,
        /// The call's priority there.
        priority: Priority,
        /// The department's SLA at this time, in milliseconds.
        sla_ms: u64,
    },
    /// An agent's phone is being rung for this call (timeline only).
    Offered {
        /// The agent id.
        agent: String,
    },
    /// The agent did not answer within the ring timeout.
    NoAnswer {
        /// The agent id.
        agent: String,
    },
    /// The agent's phone answered busy (or declined).
    Busy {
        /// The agent id.
        agent: String,
    },
    /// The agent answered and the audio is bridged. Sets `agent`,
    /// `connected_at` and `wait_ms` (first connection only: `wait_ms` =
    /// `connected_at − queued_at`), and `branch` if the call had none.
    Connected {
        /// The agent id.
        agent: String,
        /// The agent's branch: becomes the call's branch when the call has
        /// none of its own.
        #[serde(default)]
        branch: Option<String>,
    },
    /// The agent transferred the call. Adds one to `transfers`. If the
    /// transfer puts the call in a queue, emit [`CallEvent::Queued`] next.
    Transferred {
        /// Where to: an agent id, a department id or a number.
        to: String,
        /// Why, free text (`blind`, `attended`, ...).
        #[serde(default)]
        reason: Option<String>,
        /// The agent the transfer named, when it named one (`to` is then
        /// the department the call waits in for them).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_agent: Option<String>,
        /// What the phone said of it (the REFER's `Reason` or `Subject`),
        /// or who asked for what, as `/api/calls` shows it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The call reached `from`'s max wait (or found it full) and left it:
    /// for another department (`to`, followed by a [`CallEvent::Queued`]
    /// for it) or, with `to: None`, for the "please call back" message.
    Overflowed {
        /// The department it left.
        from: String,
        /// The department it goes to, if any.
        #[serde(default)]
        to: Option<String>,
    },
    /// A callback (issue 22; timeline only): `offered` (the prompt played),
    /// `accepted` (the caller confirmed a number the trunk permits: the
    /// call ends, the caller keeps their place), `refused` (the number is
    /// not one the trunk may call: the caller heard an apology and waits
    /// on), `drain` (the node stopped while the caller waited: their place
    /// is kept as a callback for their own number, or as a callback lead,
    /// and the call ends). The callback dialer adds, after the call ended: `connected`
    /// (the patient answered the call back), `retry` (they did not: tried
    /// again later), `exhausted` (the last try failed: a lead for the
    /// desk), `withdrawn` (its queue no longer takes callbacks after a
    /// restart: a lead for the desk).
    Callback {
        /// `offered`, `accepted`, `refused`, `drain`, `connected`,
        /// `retry`, `exhausted` or `withdrawn`.
        step: String,
        /// The queue.
        department: String,
        /// How long the caller had waited there, in milliseconds (for the
        /// dialer's steps: since they first queued, the hold included).
        wait_ms: u64,
    },
    /// The call is over. Sets `outcome`, `ended_at`, `talk_ms` (`ended_at −
    /// connected_at` when connected) and, for a call that queued but never
    /// connected, `wait_ms` (`ended_at − queued_at`).
    Ended {
        /// How it ended.
        outcome: Outcome,
    },
}

impl CallEvent {
    /// The name stored in `call_events.kind`.
    pub const fn kind(&self) -> &'static str {
        match self {
            CallEvent::Started { .. } => "started",
            CallEvent::Entered { .. } => "entered",
            CallEvent::MenuChoice { .. } => "menu_choice",
            CallEvent::SpeechHeard { .. } => "speech_heard",
            CallEvent::Queued { .. } => "queued",
            CallEvent::Offered { .. } => "offered",
            CallEvent::NoAnswer { .. } => "no_answer",
            CallEvent::Busy { .. } => "busy",
            CallEvent::Connected { .. } => "connected",
            CallEvent::Transferred { .. } => "transferred",
            CallEvent::Overflowed { .. } => "overflowed",
            CallEvent::Callback { .. } => "callback",
            CallEvent::Ended { .. } => "ended",
        }
    }

    /// The event's fields as a JSON object (`call_events.detail`).
    pub fn detail(&self) -> serde_json::Value {
        // Serializing a derived enum of strings and integers cannot fail.
        let mut tagged = serde_json::to_value(self).unwrap_or_default();
        tagged
            .get_mut("detail")
            .map(serde_json::Value::take)
            .unwrap_or_default()
    }

    /// Rebuilds an event from its stored `kind` and `detail`.
    pub fn from_stored(kind: &str, detail: serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "kind": kind, "detail": detail }))
    }
}

/// One step of one call, at the time it happened (not the time it is
/// written: batching never shifts timestamps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// The call.
    pub call: CallId,
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    pub event: CallEvent,
}

impl JournalEntry {
    /// `event` of `call` at `at`.
    pub fn new(call: impl Into<CallId>, at: Timestamp, event: CallEvent) -> Self {
        JournalEntry {
            call: call.into(),
            at,
            event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_round_trip_through_kind_and_detail() {
        let events = [
            CallEvent::Started {
                caller: "+13125550142".into(),
                dialed: "+15550100".into(),
                source: Some("main-line".into()),
                branch: None,
            },
            CallEvent::Entered {
                source: None,
                branch: Some("north".into()),
            },
            CallEvent::MenuChoice {
                menu: "main".into(),
                digits: "3".into(),
            },
            CallEvent::SpeechHeard {
                menu: "main".into(),
                text: "heart doctor".into(),
                confidence_permille: 930,
            },
            CallEvent::Callback {
                step: "accepted".into(),
                department: "pediatrics".into(),
                wait_ms: 61_000,
            },
            CallEvent::Queued {
                department: "pediatrics".into(),
                priority: Priority::Urgent,
                sla_ms: 60_000,
            },
            CallEvent::Offered {
                agent: "1003".into(),
            },
            CallEvent::NoAnswer {
                agent: "1003".into(),
            },
            CallEvent::Busy {
                agent: "1006".into(),
            },
            CallEvent::Connected {
                agent: "1006".into(),
                branch: None,
            },
            CallEvent::Transferred {
                to: "1001".into(),
                reason: Some("blind".into()),
                to_agent: None,
                note: None,
            },
            CallEvent::Overflowed {
                from: "cardiology".into(),
                to: Some("front-desk".into()),
            },
            CallEvent::Ended {
                outcome: Outcome::AfterHours,
            },
        ];
        for event in events {
            let back = CallEvent::from_stored(event.kind(), event.detail()).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn detail_is_the_fields_only() {
        let event = CallEvent::Queued {
            department: "pediatrics".into(),
            priority: Priority::Routine,
            sla_ms: 60_000,
        };
        assert_eq!(
            event.detail(),
            json!({"department": "pediatrics", "priority": "routine", "sla_ms": 60000})
        );
        assert_eq!(
            CallEvent::Ended {
                outcome: Outcome::AfterHours
            }
            .detail(),
            json!({"outcome": "after_hours"})
        );
    }

    #[test]
    fn names_parse_back() {
        for outcome in Outcome::ALL {
            assert_eq!(outcome.as_str().parse::<Outcome>(), Ok(outcome));
        }
        assert_eq!(Outcome::name(None), "in_progress");
        assert_eq!("interrupted".parse::<Outcome>(), Ok(Outcome::Interrupted));
        assert!("in_progress".parse::<Outcome>().is_err());
        assert_eq!("urgent".parse::<Priority>(), Ok(Priority::Urgent));
        assert!("high".parse::<Priority>().is_err());
    }
}
