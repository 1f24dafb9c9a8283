//! The kinds of event a CRM webhook can subscribe to (issue 26): the
//! dialplan names them in `[[webhooks]] events`, the journal queues them,
//! and each delivery says which one it is.

use std::fmt;
use std::str::FromStr;

/// One kind of lead or call event sent to `[[webhooks]]`.
///
/// The names are dotted, `lead.*` and `call.*`, so that a receiver can
/// route on the prefix; they are the `kind` field of the event's JSON and
/// its `X-Frontdesk-Event` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WebhookEvent {
    /// A lead was stored (a web form, a voicemail, a callback, an
    /// abandoned call).
    LeadCreated,
    /// A lead was offered to an agent.
    LeadOffered,
    /// A lead's owner changed: accepted, assigned, or given back.
    LeadOwnerChanged,
    /// The patient of a lead was reached.
    LeadContacted,
    /// A lead was closed with an outcome.
    LeadOutcome,
    /// A lead's window passed without contact: raised to the supervisors.
    LeadEscalated,
    /// A call ended (every outcome, `interrupted` included).
    CallEnded,
}

impl WebhookEvent {
    /// Every kind, in DESIGN.md's order.
    pub const ALL: [WebhookEvent; 7] = [
        WebhookEvent::LeadCreated,
        WebhookEvent::LeadOffered,
        WebhookEvent::LeadOwnerChanged,
        WebhookEvent::LeadContacted,
        WebhookEvent::LeadOutcome,
        WebhookEvent::LeadEscalated,
        WebhookEvent::CallEnded,
    ];

    /// The name the dialplan, the JSON and the header use.
    pub const fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::LeadCreated => "lead.created",
            WebhookEvent::LeadOffered => "lead.offered",
            WebhookEvent::LeadOwnerChanged => "lead.owner_changed",
            WebhookEvent::LeadContacted => "lead.contacted",
            WebhookEvent::LeadOutcome => "lead.outcome",
            WebhookEvent::LeadEscalated => "lead.escalated",
            WebhookEvent::CallEnded => "call.ended",
        }
    }

    /// One bit per kind, for a set of them in a `u8`.
    pub const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a [`WebhookEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWebhookEvent(pub String);

impl fmt::Display for UnknownWebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = WebhookEvent::ALL.iter().map(|kind| kind.as_str()).collect();
        write!(
            f,
            "`{}` is not an event kind (one of {})",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownWebhookEvent {}

impl FromStr for WebhookEvent {
    type Err = UnknownWebhookEvent;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        WebhookEvent::ALL
            .iter()
            .copied()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| UnknownWebhookEvent(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bits_differ() {
        let mut bits = 0u8;
        for kind in WebhookEvent::ALL {
            assert_eq!(kind.as_str().parse::<WebhookEvent>(), Ok(kind));
            assert_eq!(bits & kind.bit(), 0);
            bits |= kind.bit();
        }
        assert!("lead.deleted".parse::<WebhookEvent>().is_err());
    }
}
