//! Agent states (DESIGN.md "Agent states") and the packed state word.
//!
//! Each agent's state lives in one `AtomicU64`, so that every transition,
//! the claim above all, is a single compare-and-swap:
//!
//! ```text
//!  63                                   8 7   6    5      4            3         2..0
//! +--------------------------------------+-----+------+------------+----------+-------+
//! | since: Millis (56 bits)              |  0  | held | away_after | register | state |
//! +--------------------------------------+-----+------+------------+----------+-------+
//! ```
//!
//! * `state`: one of [`AgentState`].
//! * `registered`: the agent's phone holds a live registration. It is kept
//!   apart from the state because a call in progress outlives its
//!   registration (an agent who unregisters on a call stays `on_call`).
//! * `away_after`: the agent asked to go `away` while busy; it happens when
//!   the call and its wrap-up are over.
//! * `held`: another node of the cluster holds the agent's claim (issue
//!   24): this node must not offer them, whatever its own view says. Kept
//!   apart from the state, like `registered`, because the node's own view
//!   (registered, away, ...) still matters once the claim is released.
//! * `since`: while `available` or `ringing`, the moment the agent became
//!   idle (what longest-idle compares, kept through a ring that is withdrawn
//!   without the agent's fault); in the other states, when the state began.

use std::fmt;

use crate::time::Millis;

/// What an agent is doing, as DESIGN.md names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentState {
    /// Not registered: no phone to ring.
    Offline,
    /// Registered and idle: may be offered a call.
    Available,
    /// Claimed for an offer; the phone is ringing.
    Ringing,
    /// Talking to a caller.
    OnCall,
    /// After a call, for the queue's wrap-up time.
    WrapUp,
    /// Registered but not taking calls (by choice, or after missed offers).
    Away,
}

impl AgentState {
    /// Every state, in API order.
    pub const ALL: [AgentState; 6] = [
        AgentState::Offline,
        AgentState::Available,
        AgentState::Ringing,
        AgentState::OnCall,
        AgentState::WrapUp,
        AgentState::Away,
    ];

    /// The API's name: `offline`, `available`, `ringing`, `on_call`,
    /// `wrap_up` or `away`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AgentState::Offline => "offline",
            AgentState::Available => "available",
            AgentState::Ringing => "ringing",
            AgentState::OnCall => "on_call",
            AgentState::WrapUp => "wrap_up",
            AgentState::Away => "away",
        }
    }

    /// Parses an API name (the inverse of [`AgentState::as_str`]).
    pub fn from_name(name: &str) -> Option<AgentState> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// Position in [`AgentState::ALL`].
    pub(crate) const fn index(self) -> usize {
        match self {
            AgentState::Offline => 0,
            AgentState::Available => 1,
            AgentState::Ringing => 2,
            AgentState::OnCall => 3,
            AgentState::WrapUp => 4,
            AgentState::Away => 5,
        }
    }

    const fn code(self) -> u64 {
        self.index() as u64
    }

    const fn from_code(code: u64) -> AgentState {
        match code & STATE_MASK {
            1 => AgentState::Available,
            2 => AgentState::Ringing,
            3 => AgentState::OnCall,
            4 => AgentState::WrapUp,
            5 => AgentState::Away,
            // 0, and codes that no constructor writes (6, 7).
            _ => AgentState::Offline,
        }
    }
}

impl fmt::Display for AgentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const STATE_MASK: u64 = 0b111;
const REGISTERED: u64 = 1 << 3;
const AWAY_AFTER: u64 = 1 << 4;
const HELD: u64 = 1 << 5;
const SINCE_SHIFT: u32 = 8;

/// The decoded content of an agent's state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StateWord(u64);

impl StateWord {
    pub(crate) const fn new(state: AgentState, registered: bool, since: Millis) -> StateWord {
        let registered = if registered { REGISTERED } else { 0 };
        StateWord(state.code() | registered | (since.as_millis() << SINCE_SHIFT))
    }

    pub(crate) const fn from_bits(bits: u64) -> StateWord {
        StateWord(bits)
    }

    pub(crate) const fn bits(self) -> u64 {
        self.0
    }

    pub(crate) const fn state(self) -> AgentState {
        AgentState::from_code(self.0)
    }

    pub(crate) const fn registered(self) -> bool {
        self.0 & REGISTERED != 0
    }

    pub(crate) const fn away_after(self) -> bool {
        self.0 & AWAY_AFTER != 0
    }

    pub(crate) const fn since(self) -> Millis {
        Millis::new(self.0 >> SINCE_SHIFT)
    }

    pub(crate) const fn held(self) -> bool {
        self.0 & HELD != 0
    }

    /// The state the node shows (snapshots, counts): an agent available
    /// here but held by another node is `on_call` in the cluster.
    pub(crate) const fn shown_state(self) -> AgentState {
        match self.state() {
            AgentState::Available if self.held() => AgentState::OnCall,
            state => state,
        }
    }

    /// True when the agent may be claimed for an offer.
    pub(crate) const fn is_claimable(self) -> bool {
        self.0 & (STATE_MASK | REGISTERED | HELD) == (AgentState::Available.code() | REGISTERED)
    }

    /// The same word in another state, flags kept.
    pub(crate) const fn with_state(self, state: AgentState, since: Millis) -> StateWord {
        StateWord(
            (self.0 & (REGISTERED | AWAY_AFTER | HELD))
                | state.code()
                | (since.as_millis() << SINCE_SHIFT),
        )
    }

    pub(crate) const fn with_registered(self, registered: bool) -> StateWord {
        if registered {
            StateWord(self.0 | REGISTERED)
        } else {
            StateWord(self.0 & !REGISTERED)
        }
    }

    pub(crate) const fn with_held(self, held: bool) -> StateWord {
        if held {
            StateWord(self.0 | HELD)
        } else {
            StateWord(self.0 & !HELD)
        }
    }

    pub(crate) const fn with_away_after(self, away_after: bool) -> StateWord {
        if away_after {
            StateWord(self.0 | AWAY_AFTER)
        } else {
            StateWord(self.0 & !AWAY_AFTER)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_design() {
        let names: Vec<_> = AgentState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "offline",
                "available",
                "ringing",
                "on_call",
                "wrap_up",
                "away"
            ]
        );
        for state in AgentState::ALL {
            assert_eq!(AgentState::from_name(state.as_str()), Some(state));
        }
        assert_eq!(AgentState::from_name("busy"), None);
    }

    #[test]
    fn word_round_trips_every_field() {
        let since = Millis::new(123_456_789);
        for state in AgentState::ALL {
            for registered in [false, true] {
                let word = StateWord::new(state, registered, since);
                assert_eq!(word.state(), state);
                assert_eq!(word.registered(), registered);
                assert_eq!(word.since(), since);
                assert!(!word.away_after());
                assert_eq!(
                    word.is_claimable(),
                    registered && state == AgentState::Available
                );
                let flagged = word.with_away_after(true);
                assert!(flagged.away_after());
                let moved = flagged.with_state(AgentState::WrapUp, Millis::MAX);
                assert_eq!(moved.state(), AgentState::WrapUp);
                assert_eq!(moved.since(), Millis::MAX);
                assert!(moved.away_after());
                assert_eq!(moved.registered(), registered);
                assert_eq!(StateWord::from_bits(moved.bits()), moved);
                assert_eq!(moved.with_registered(!registered).registered(), !registered);
                let held = word.with_held(true);
                assert!(held.held() && !held.is_claimable());
                assert_eq!(held.state(), state);
                assert!(held.with_state(AgentState::Ringing, since).held());
                assert_eq!(held.with_held(false), word);
                let shown = if state == AgentState::Available {
                    AgentState::OnCall
                } else {
                    state
                };
                assert_eq!(held.shown_state(), shown);
                assert_eq!(word.shown_state(), state);
            }
        }
    }
}
