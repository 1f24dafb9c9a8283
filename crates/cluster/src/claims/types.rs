//! The values claims are made of.

use std::fmt;
use std::time::Duration;

use domain::AgentId;

/// A frontdesk node's name in the cluster, as claims record it: 1 to 64
/// bytes of ASCII letters, digits, `.`, `-`, `_` and `:` (an empty name
/// means "free" in the agent's hash, so it cannot be a node).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(Box<str>);

impl NodeId {
    /// The longest name, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Checks a name; `None` when it is empty, too long or has another
    /// character.
    pub fn new(name: &str) -> Option<Self> {
        let valid = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
        valid.then(|| Self(name.into()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({:?})", &*self.0)
    }
}

/// An agent's claim counter: each claim raises it by one, so it orders an
/// agent's holders and fences a holder whose lease ran out. Epoch 0 is an
/// agent never claimed.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Epoch(pub u64);

impl Epoch {
    /// Never claimed.
    pub const ZERO: Epoch = Epoch(0);
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A time on Redis's clock (`TIME`), milliseconds since 1970. Every lease
/// and change is stamped by Redis, so nodes never compare their own clocks.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct RedisMillis(pub u64);

impl fmt::Display for RedisMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms", self.0)
    }
}

/// How long a claim holds without renewal: 1 ms to 24 h.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Lease(Duration);

impl Lease {
    /// The shortest lease.
    pub const MIN: Lease = Lease(Duration::from_millis(1));

    /// The longest lease.
    pub const MAX: Duration = Duration::from_secs(24 * 3600);

    /// A lease of `duration`, or `None` outside 1 ms ..= 24 h.
    pub fn new(duration: Duration) -> Option<Self> {
        (duration >= Duration::from_millis(1) && duration <= Self::MAX).then_some(Self(duration))
    }

    /// The duration.
    pub fn duration(self) -> Duration {
        self.0
    }

    pub(crate) fn millis(self) -> u64 {
        // At most 86,400,000: fits.
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }
}

/// A held claim: `node` holds `agent` at `epoch` until `expires_at`
/// (Redis time), unless renewed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Claim {
    /// The agent held.
    pub agent: AgentId,
    /// The node holding them.
    pub node: NodeId,
    /// The claim's epoch (its fencing token).
    pub epoch: Epoch,
    /// When the lease runs out, on Redis's clock.
    pub expires_at: RedisMillis,
    /// When the script made this change (claim or renewal), on Redis's clock.
    pub at: RedisMillis,
    /// The change's sequence number in the stream.
    pub seq: u64,
}

/// What changed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ChangeKind {
    /// A node claimed a free agent (a new epoch).
    Claimed,
    /// The holder extended its lease.
    Renewed,
    /// The holder let the agent go.
    Released,
    /// The lease ran out (recorded by the next script that looked at the
    /// agent, stamped with the moment it ran out).
    Expired,
}

impl ChangeKind {
    /// The name in the stream.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Claimed => "claimed",
            ChangeKind::Renewed => "renewed",
            ChangeKind::Released => "released",
            ChangeKind::Expired => "expired",
        }
    }

    pub(crate) fn parse(text: &[u8]) -> Option<Self> {
        match text {
            b"claimed" => Some(ChangeKind::Claimed),
            b"renewed" => Some(ChangeKind::Renewed),
            b"released" => Some(ChangeKind::Released),
            b"expired" => Some(ChangeKind::Expired),
            _ => None,
        }
    }
}

/// A stream entry's id, `<ms>-<n>`, as Redis gave it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct StreamId {
    /// Redis time in ms when it was added.
    pub millis: u64,
    /// Its number within that millisecond.
    pub sequence: u64,
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.millis, self.sequence)
    }
}

/// One change of one agent's claim, as the stream carries it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AgentChange {
    /// The stream entry.
    pub id: StreamId,
    /// Its sequence number: consecutive, so a gap shows a missed change.
    pub seq: u64,
    /// The agent.
    pub agent: AgentId,
    /// The holder the change is about (the releaser, the one whose lease
    /// ran out).
    pub node: NodeId,
    /// The claim's epoch.
    pub epoch: Epoch,
    /// What changed.
    pub kind: ChangeKind,
    /// When (Redis time); for `Expired`, when the lease ran out.
    pub at: RedisMillis,
    /// The lease's end after the change (`at` for `Released`, `Expired`).
    pub until: RedisMillis,
    /// For `Expired`: the node whose script found the lease run out (the
    /// holder renewing too late, a reaper, a claimer). `None` for the
    /// other kinds, and from a node whose script wrote no `by` (an older
    /// build, or a reap naming no node).
    pub by: Option<NodeId>,
}

/// One agent in a snapshot.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AgentHold {
    /// The agent.
    pub agent: AgentId,
    /// The holder, if the lease still runs (at the snapshot's `now`).
    pub holder: Option<NodeId>,
    /// The last claim's epoch.
    pub epoch: Epoch,
    /// When the holder's lease runs out.
    pub until: RedisMillis,
}

/// Every agent ever claimed, consistent with one position of the stream:
/// a replica applies it, then the changes after `seq`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Snapshot {
    /// The last change included.
    pub seq: u64,
    /// Where the stream stood (`0-0`: empty).
    pub position: StreamId,
    /// Redis time when it was taken.
    pub now: RedisMillis,
    /// The agents.
    pub agents: Vec<AgentHold>,
}

/// What the change script answered, parsed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ScriptReply {
    /// Done: the epoch, the lease's end, the change's time and sequence number.
    Ok {
        /// The claim's epoch.
        epoch: Epoch,
        /// The lease's end.
        until: RedisMillis,
        /// The change's time.
        at: RedisMillis,
        /// The change's sequence number.
        seq: u64,
    },
    /// Another holder (or this node under another claim) holds the agent.
    Taken {
        /// The holder.
        by: NodeId,
        /// Its epoch.
        epoch: Epoch,
        /// Its lease's end.
        until: RedisMillis,
    },
    /// The epoch named is not the agent's.
    Stale {
        /// The agent's epoch.
        epoch: Epoch,
    },
    /// The claim's lease ran out (or it was released) before this.
    Lapsed {
        /// The agent's epoch.
        epoch: Epoch,
    },
    /// A caller of another live node is ahead in a line the agent serves.
    Behind {
        /// That caller's member (`<node>/<call>`).
        ahead: String,
        /// The agent's epoch.
        epoch: Epoch,
    },
    /// Reap: whether an expiry was recorded.
    Reaped(bool),
}
