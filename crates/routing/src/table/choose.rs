//! Choosing and claiming: from a skill's idle line, or by a scan.

use std::sync::atomic::Ordering;

use super::skill::Ranking;
use super::{Claim, Preferences, Selection};
use crate::config::Strategy;
use crate::state::{AgentState, StateWord};

/// A strategy's ranking key: smaller is better.
type Key = (u8, u64, u64);

/// The first current entry of the rarest skill's idle line for the
/// strategy (in the best preference tier), claimed by compare-and-swap.
pub(super) fn choose_from_line(
    selection: &Selection,
    ranking: Ranking,
    preferences: &Preferences<'_>,
) -> Option<Claim> {
    let (scanned, _) = selection.rarest()?;
    let slot = &selection.requirements[scanned].slot;
    let mut idle = slot.line(ranking);
    let index = slot.index.load();
    loop {
        let mut best: Option<(u8, usize, u64)> = None;
        let mut at = 0;
        while let Some(entry) = idle.get(at) {
            let Some(member) = index.members.get(entry.position as usize) else {
                idle.remove(at);
                continue;
            };
            let bits = member.entry.word.load(Ordering::Acquire);
            let word = StateWord::from_bits(bits);
            if !word.is_claimable()
                || word.since() != entry.since
                || ranking.rank(member) != entry.rank
            {
                // Stale: drop it from the head, step over it elsewhere.
                if at == 0 {
                    idle.remove(0);
                } else {
                    at += 1;
                }
                continue;
            }
            if selection.qualify(scanned, member).is_some() {
                let tier = if preferences.is_empty() {
                    0
                } else {
                    preferences.tier(&member.config)
                };
                if best.is_none_or(|(b, _, _)| tier < b) {
                    best = Some((tier, at, bits));
                    if tier == 0 {
                        break;
                    }
                }
            }
            at += 1;
        }
        let (_, at, bits) = best?;
        let entry = idle.get(at)?;
        idle.remove(at);
        let member = &index.members[entry.position as usize];
        let word = StateWord::from_bits(bits);
        let ringing = word.with_state(AgentState::Ringing, word.since());
        let won = member
            .entry
            .word
            .compare_exchange(bits, ringing.bits(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if won {
            return Some(Claim {
                agent: member.config.id.clone(),
                idle_since: word.since(),
            });
        }
        // Claimed elsewhere meanwhile (another skill's line, a direct
        // claim): the entry is gone, look again.
    }
}

/// Every other strategy: scan the rarest skill's members, keep the best by
/// the strategy's key, claim it by compare-and-swap. Round-robin scans from
/// where it stopped and takes the first free agent of the best tier.
pub(super) fn choose_by_scan(
    selection: &Selection,
    preferences: &Preferences<'_>,
) -> Option<Claim> {
    loop {
        let (scanned, index) = selection.rarest()?;
        let members = &index.members;
        let count = members.len();
        let round_robin = selection.strategy == Strategy::RoundRobin;
        let start = match selection.cursor.load(Ordering::Relaxed) {
            usize::MAX => 0,
            last => (last % count.max(1)) + 1,
        };
        let mut best: Option<(Key, usize, u64)> = None;
        for step in 0..count {
            let position = if round_robin {
                let at = start + step;
                if at >= count { at - count } else { at }
            } else {
                step
            };
            let member = &members[position];
            let bits = member.entry.word.load(Ordering::Acquire);
            let word = StateWord::from_bits(bits);
            if !word.is_claimable() {
                continue;
            }
            let Some(levels) = selection.qualify(scanned, member) else {
                continue;
            };
            let tier = if preferences.is_empty() {
                0
            } else {
                preferences.tier(&member.config)
            };
            let idle = word.since().as_millis();
            let key: Key = match selection.strategy {
                Strategy::RoundRobin => (tier, step as u64, 0),
                Strategy::FewestCalls => {
                    let calls = member.entry.calls_today.load(Ordering::Relaxed);
                    (tier, u64::from(calls), idle)
                }
                Strategy::SkillLevel => (tier, u64::from(u32::MAX - levels), idle),
                Strategy::Capacity => {
                    let calls = u64::from(member.entry.calls_today.load(Ordering::Relaxed));
                    let capacity = u64::from(member.config.capacity.max(1));
                    (tier, (calls << 32) / capacity, idle)
                }
                Strategy::LongestIdle | Strategy::RingAll => (tier, idle, 0),
            };
            if best.is_none_or(|(b, _, _)| key < b) {
                best = Some((key, position, bits));
                if round_robin && tier == 0 {
                    break;
                }
            }
        }
        let (_, position, bits) = best?;
        let member = &members[position];
        let word = StateWord::from_bits(bits);
        let ringing = word.with_state(AgentState::Ringing, word.since());
        let won = member
            .entry
            .word
            .compare_exchange(bits, ringing.bits(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if won {
            if round_robin {
                selection.cursor.store(position, Ordering::Relaxed);
            }
            return Some(Claim {
                agent: member.config.id.clone(),
                idle_since: word.since(),
            });
        }
    }
}
