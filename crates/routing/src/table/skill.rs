//! A skill's published index and its ranked idle lines.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use super::{AgentEntry, Selection};
use crate::config::{AgentConfig, Strategy};
use crate::id::SkillLevel;
use crate::idle::{IdleEntry, IdleLine};

/// The published index of one skill, with its idle line.
///
/// The idle line sits behind a mutex of this skill alone: a decision holds
/// it for a few entry checks and one compare-and-swap, an agent becoming
/// available for one insertion. It is never held across anything else and
/// never taken with another skill's; no lock covers the whole table.
#[derive(Debug)]
pub(crate) struct SkillSlot {
    pub(super) index: ArcSwap<SkillIndex>,
    /// One idle line per [`Ranking`].
    pub(super) lines: [Mutex<IdleLine>; Ranking::COUNT],
    /// Whether some selection decides from each line: only those are kept.
    pub(super) used: [AtomicBool; Ranking::COUNT],
}

impl SkillSlot {
    pub(super) fn empty() -> Self {
        Self {
            index: ArcSwap::from_pointee(SkillIndex::default()),
            lines: std::array::from_fn(|_| Mutex::new(IdleLine::default())),
            used: std::array::from_fn(|_| AtomicBool::new(false)),
        }
    }

    pub(super) fn in_use(&self, ranking: Ranking) -> bool {
        self.used[ranking as usize].load(Ordering::SeqCst)
    }

    /// Starts keeping `ranking`'s line, built from the current index. An
    /// agent becoming available meanwhile is either read here or, having
    /// seen the flag set, pushes itself (both sides use `SeqCst`).
    pub(super) fn use_ranking(&self, ranking: Ranking) {
        if !self.used[ranking as usize].swap(true, Ordering::SeqCst) {
            let mut line = self.line(ranking);
            let index = self.index.load();
            *line = idle_line(ranking, &index.members);
        }
    }

    pub(super) fn line(&self, ranking: Ranking) -> std::sync::MutexGuard<'_, IdleLine> {
        self.lines[ranking as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The orders an idle line can keep: each is the strategy's key, then the
/// time the agent became idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ranking {
    LongestIdle = 0,
    FewestCalls = 1,
    Capacity = 2,
    SkillLevel = 3,
}

impl Ranking {
    pub(super) const COUNT: usize = 4;
    pub(super) const ALL: [Ranking; Ranking::COUNT] = [
        Ranking::LongestIdle,
        Ranking::FewestCalls,
        Ranking::Capacity,
        Ranking::SkillLevel,
    ];

    /// The line a selection decides from, if any (round-robin scans, and
    /// skill-level over several skills ranks by a sum no line keeps).
    pub(super) fn of(selection: &Selection) -> Option<Ranking> {
        match selection.strategy {
            Strategy::LongestIdle | Strategy::RingAll => Some(Ranking::LongestIdle),
            Strategy::FewestCalls => Some(Ranking::FewestCalls),
            Strategy::Capacity => Some(Ranking::Capacity),
            Strategy::SkillLevel if selection.requirements.len() == 1 => Some(Ranking::SkillLevel),
            Strategy::SkillLevel | Strategy::RoundRobin => None,
        }
    }

    /// The member's rank, as the scan's key would order it.
    pub(super) fn rank(self, member: &Member) -> u64 {
        let calls = || u64::from(member.entry.calls_today.load(Ordering::Relaxed));
        match self {
            Ranking::LongestIdle => 0,
            Ranking::FewestCalls => calls(),
            Ranking::Capacity => (calls() << 32) / u64::from(member.config.capacity.max(1)),
            Ranking::SkillLevel => u64::from(SkillLevel::MAX.get() - member.level.get()),
        }
    }
}

impl SkillIndex {
    /// True when `entry` still names an available agent idle since then,
    /// ranked as they are now (two turns can share a millisecond).
    pub(super) fn is_current(&self, ranking: Ranking, entry: IdleEntry) -> bool {
        self.members
            .get(entry.position as usize)
            .is_some_and(|member| {
                let word = member.entry.word();
                word.is_claimable()
                    && word.since() == entry.since
                    && ranking.rank(member) == entry.rank
            })
    }
}

#[derive(Debug, Default)]
pub(super) struct SkillIndex {
    /// Sorted by agent id, so round-robin turns are stable across rebuilds.
    pub(super) members: Box<[Member]>,
}

#[derive(Debug)]
pub(super) struct Member {
    pub(super) entry: Arc<AgentEntry>,
    pub(super) config: Arc<AgentConfig>,
    pub(super) level: SkillLevel,
}
/// Publishes a skill's new index and rebuilds its idle lines, together
/// under the lines' locks so that deciders see them agree.
pub(super) fn publish(slot: &SkillSlot, members: Vec<Member>) {
    let mut lines: Vec<_> = Ranking::ALL
        .iter()
        .map(|ranking| slot.line(*ranking))
        .collect();
    for (ranking, line) in Ranking::ALL.into_iter().zip(lines.iter_mut()) {
        **line = if slot.in_use(ranking) {
            idle_line(ranking, &members)
        } else {
            IdleLine::default()
        };
    }
    slot.index.store(Arc::new(SkillIndex {
        members: members.into_boxed_slice(),
    }));
}

/// Rebuilds a skill's idle lines from its current index (after counters
/// that ranks depend on were reset).
pub(super) fn republish(slot: &SkillSlot) {
    for ranking in Ranking::ALL.into_iter().filter(|r| slot.in_use(*r)) {
        let mut line = slot.line(ranking);
        let index = slot.index.load();
        *line = idle_line(ranking, &index.members);
    }
}

pub(super) fn idle_line(ranking: Ranking, members: &[Member]) -> IdleLine {
    let available = members.iter().enumerate().filter_map(|(position, member)| {
        let word = member.entry.word();
        let entry = IdleEntry {
            rank: ranking.rank(member),
            since: word.since(),
            position: position as u32,
        };
        word.is_claimable().then_some(entry)
    });
    IdleLine::new(members.len(), available)
}
