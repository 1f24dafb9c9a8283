//! The agent availability table: who can take a call, now.
//!
//! One [`AgentTable`] holds every agent's entry in a `DashMap`, keyed by
//! [`AgentId`], and one index per skill. An entry's state is a single
//! `AtomicU64` (see [`crate::state`]), so every transition is one
//! compare-and-swap and a claim is atomic: of two decisions racing for the
//! same agent, exactly one wins and the other chooses again.
//!
//! A skill index is an immutable, sorted array of the agents who have the
//! skill (with their level), published through an `ArcSwap` and rebuilt
//! only when agents are added, removed or reconfigured. Beside it, each
//! skill keeps ranked idle lines (see `idle.rs`): its available agents in
//! the order of a strategy's key (nothing for longest-idle, calls today for
//! fewest-calls, calls per unit of capacity, skill level), then by how long
//! they have been idle. A decision looks at the head of the line of the
//! queue's rarest required skill, checks the entry against the agent's
//! state word and claims it; round-robin scans the index from where it
//! stopped and takes the first free agent. Either way only agents with the
//! skill are looked at, no lock covers the table, and nothing is allocated.
//!
//! Nothing here lends out a guard: lookups return copies ([`AgentSnapshot`])
//! or `Arc`s, so no caller can hold a `DashMap` shard lock across an
//! `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use dashmap::DashMap;

use crate::config::{AgentConfig, SkillRequirement, Strategy};
use crate::error::{ConfigError, RoutingError};
use crate::id::{AgentId, Branch, Language, Skill, SkillLevel};
use crate::idle::IdleEntry;
use crate::state::{AgentState, StateWord};
use crate::time::Millis;

mod choose;
mod skill;

use choose::{choose_by_scan, choose_from_line};
use skill::{Member, Ranking, SkillIndex, SkillSlot, publish, republish};

/// The agent availability table. Share it as `Arc<AgentTable>`: every
/// method takes `&self` and is safe to call from any thread.
///
/// Configuration changes ([`AgentTable::upsert`], [`AgentTable::remove`],
/// [`AgentTable::replace_all`]) are serialized by a mutex of their own so
/// that two rebuilds of a skill index cannot publish out of order; choosing,
/// claiming and state transitions never take it.
#[derive(Debug, Default)]
pub struct AgentTable {
    agents: DashMap<AgentId, Arc<AgentEntry>>,
    skills: DashMap<Skill, Arc<SkillSlot>>,
    config_lock: Mutex<()>,
}

/// One agent: the state word and counters, plus their configuration.
#[derive(Debug)]
struct AgentEntry {
    word: AtomicU64,
    calls_today: AtomicU32,
    consecutive_misses: AtomicU32,
    /// Milliseconds + 1 of the last call's end; 0: never.
    last_call_ended: AtomicU64,
    config: ArcSwap<AgentConfig>,
    /// The skill indexes this agent is in, and where: the idle lines to
    /// join on becoming available.
    memberships: ArcSwap<Vec<Membership>>,
}

#[derive(Debug)]
struct Membership {
    slot: Arc<SkillSlot>,
    position: u32,
}

impl AgentEntry {
    fn word(&self) -> StateWord {
        StateWord::from_bits(self.word.load(Ordering::Acquire))
    }

    /// Applies `step` with compare-and-swap until it holds; `step` sees the
    /// current word and returns the next one, or `None` to refuse.
    fn update(
        &self,
        step: impl Fn(StateWord) -> Option<StateWord>,
    ) -> Result<(StateWord, StateWord), StateWord> {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let old = StateWord::from_bits(current);
            let Some(new) = step(old) else {
                return Err(old);
            };
            match self.word.compare_exchange_weak(
                current,
                new.bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok((old, new)),
                Err(actual) => current = actual,
            }
        }
    }
}

/// A queue's requirements compiled against a table: which skill indexes to
/// read, the strategy, and where round-robin stopped. Made by
/// [`AgentTable::selection`]; it follows later index rebuilds by itself.
#[derive(Debug)]
pub struct Selection {
    requirements: Box<[Requirement]>,
    strategy: Strategy,
    /// Round-robin: index (in the scanned skill's index) of the agent chosen
    /// last; `usize::MAX` before the first.
    cursor: AtomicUsize,
}

#[derive(Debug)]
struct Requirement {
    skill: Skill,
    min_level: SkillLevel,
    slot: Arc<SkillSlot>,
}

impl Selection {
    /// The strategy this selection applies.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Carries round-robin's turn over from a selection this one replaces.
    pub fn continue_from(&self, previous: &Selection) {
        self.cursor
            .store(previous.cursor.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// The requirement whose index is smallest, with that index loaded.
    fn rarest(&self) -> Option<(usize, arc_swap::Guard<Arc<SkillIndex>>)> {
        let mut best: Option<(usize, arc_swap::Guard<Arc<SkillIndex>>)> = None;
        for (position, requirement) in self.requirements.iter().enumerate() {
            let index = requirement.slot.index.load();
            if best
                .as_ref()
                .is_none_or(|(_, b)| index.members.len() < b.members.len())
            {
                best = Some((position, index));
            }
        }
        best
    }

    /// Whether `member` (found in requirement `scanned`'s index) meets every
    /// requirement, and the sum of its levels in them.
    fn qualify(&self, scanned: usize, member: &Member) -> Option<u32> {
        let mut levels = 0;
        for (position, requirement) in self.requirements.iter().enumerate() {
            let level = if position == scanned {
                member.level
            } else {
                member.config.level(&requirement.skill)?
            };
            if level < requirement.min_level {
                return None;
            }
            levels += u32::from(level.get());
        }
        Some(levels)
    }
}

/// Per-decision preferences, ranked: agents the call should avoid (they
/// already missed it) last of all, then agents without the caller's
/// language, then agents of another branch. Preferences only order the
/// candidates: the best available agent is chosen even if it matches none.
#[derive(Debug, Clone, Copy, Default)]
pub struct Preferences<'a> {
    /// The caller's branch, to prefer agents of it.
    pub branch: Option<&'a Branch>,
    /// The caller's language, to prefer agents who speak it.
    pub language: Option<&'a Language>,
    /// Agents to choose only if no one else is available.
    pub avoid: &'a [AgentId],
}

impl Preferences<'_> {
    fn is_empty(&self) -> bool {
        self.branch.is_none() && self.language.is_none() && self.avoid.is_empty()
    }

    /// 0 is the best tier; higher is worse.
    fn tier(&self, config: &AgentConfig) -> u8 {
        let mut tier = 0;
        if self.avoid.contains(&config.id) {
            tier |= 4;
        }
        if let Some(language) = self.language
            && !config.languages.contains(language)
        {
            tier |= 2;
        }
        if let Some(branch) = self.branch
            && config.branch.as_ref() != Some(branch)
        {
            tier |= 1;
        }
        tier
    }
}

/// The outcome of a successful claim: the agent is now `ringing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Who was claimed.
    pub agent: AgentId,
    /// Since when they had been idle.
    pub idle_since: Millis,
}

/// A state change of one agent (or none: `from == to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The agent.
    pub agent: AgentId,
    /// Their state before.
    pub from: AgentState,
    /// Their state after.
    pub to: AgentState,
}

impl Transition {
    /// True when the state changed.
    pub fn changed(&self) -> bool {
        self.from != self.to
    }
}

/// The state an agent (or the admin API) may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestedState {
    /// Take calls again (also ends a wrap-up early).
    Available,
    /// Stop taking calls; when ringing or on a call, after that call and its
    /// wrap-up.
    Away,
}

impl RequestedState {
    /// Parses `available` or `away`.
    pub fn from_name(name: &str) -> Option<RequestedState> {
        match name {
            "available" => Some(RequestedState::Available),
            "away" => Some(RequestedState::Away),
            _ => None,
        }
    }
}

/// A copy of one agent's entry at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSnapshot {
    /// Their configuration.
    pub config: Arc<AgentConfig>,
    /// Their state, as the cluster sees it: an agent available here whom
    /// another node holds (`held_elsewhere`) shows `on_call`, so that the
    /// dashboard, the counts and the lead desk do not take them for free.
    pub state: AgentState,
    /// Another node of the cluster holds their claim (issue 24): this node
    /// does not offer them until that node releases it or its lease runs
    /// out ([`crate::Router::held_elsewhere`]).
    pub held_elsewhere: bool,
    /// Whether their phone holds a live registration.
    pub registered: bool,
    /// Idle since (`available`, `ringing`) or in this state since.
    pub since: Millis,
    /// They asked to go `away` after the current call.
    pub away_after_call: bool,
    /// Calls answered since the last [`AgentTable::reset_daily_counters`].
    pub calls_today: u32,
    /// Offers missed in a row.
    pub consecutive_misses: u32,
    /// When their last call ended.
    pub last_call_ended_at: Option<Millis>,
}

impl AgentSnapshot {
    /// The agent's id.
    pub fn id(&self) -> &AgentId {
        &self.config.id
    }
}

/// How many of a queue's qualified agents are in each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgentCounts {
    by_state: [u32; 6],
    signed_in: u32,
}

impl AgentCounts {
    /// Agents in `state`.
    pub fn in_state(&self, state: AgentState) -> u32 {
        self.by_state[state.index()]
    }

    /// Agents that may be offered a call now.
    pub fn available(&self) -> u32 {
        self.in_state(AgentState::Available)
    }

    /// Agents whose phone is registered, whatever their state.
    pub fn signed_in(&self) -> u32 {
        self.signed_in
    }

    /// `(state, count)` for every state, in API order.
    pub fn by_state(&self) -> impl Iterator<Item = (AgentState, u32)> + '_ {
        AgentState::ALL
            .into_iter()
            .map(|state| (state, self.in_state(state)))
    }
}

impl AgentTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of agents.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// True when there is no agent.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    // ----- configuration -------------------------------------------------

    /// Adds an agent (`offline`) or replaces an agent's configuration,
    /// keeping their state and counters.
    pub fn upsert(&self, config: AgentConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let _config = self
            .config_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut touched: Vec<Skill> = config.skills.iter().map(|s| s.skill.clone()).collect();
        let existing = self
            .agents
            .get(config.id.as_str())
            .map(|e| Arc::clone(e.value()));
        match existing {
            Some(entry) => {
                let old = entry.config.swap(Arc::new(config));
                touched.extend(old.skills.iter().map(|s| s.skill.clone()));
            }
            None => {
                let id = config.id.clone();
                self.agents.insert(id, Arc::new(AgentEntry::new(config)));
            }
        }
        touched.sort();
        touched.dedup();
        for skill in touched {
            self.rebuild(&skill);
        }
        Ok(())
    }

    /// Removes an agent. A call they are on goes on; later events about
    /// them answer [`RoutingError::UnknownAgent`].
    pub fn remove(&self, id: &AgentId) -> bool {
        let _config = self
            .config_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some((_, entry)) = self.agents.remove(id.as_str()) else {
            return false;
        };
        let config = entry.config.load_full();
        for skill in &config.skills {
            self.rebuild(&skill.skill);
        }
        true
    }

    /// Replaces the whole roster: agents not in `configs` are removed, new
    /// ones added `offline`, the others keep their state and counters.
    pub fn replace_all(&self, configs: Vec<AgentConfig>) -> Result<(), ConfigError> {
        crate::config::validate(&[], &configs)?;
        let _config = self
            .config_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut wanted: HashMap<AgentId, AgentConfig> =
            configs.into_iter().map(|c| (c.id.clone(), c)).collect();
        self.agents.retain(|id, _| wanted.contains_key(id));
        for entry in self.agents.iter() {
            if let Some(config) = wanted.remove(entry.key()) {
                entry.value().config.store(Arc::new(config));
            }
        }
        // Configurations first, then the entries in one run: entries made
        // back to back sit next to each other in memory, so a decision's
        // scan over a skill's members stays within a few cache-friendly
        // pages instead of hopping between configuration allocations.
        let configs: Vec<Arc<AgentConfig>> = wanted.into_values().map(Arc::new).collect();
        let entries: Vec<Arc<AgentEntry>> = configs
            .into_iter()
            .map(|config| Arc::new(AgentEntry::with_config(config)))
            .collect();
        for entry in entries {
            let id = entry.config.load().id.clone();
            self.agents.insert(id, entry);
        }
        self.rebuild_all();
        Ok(())
    }

    /// Compiles a queue's requirements and strategy against this table.
    pub fn selection(&self, requirements: &[SkillRequirement], strategy: Strategy) -> Selection {
        let requirements = requirements
            .iter()
            .map(|r| Requirement {
                skill: r.skill.clone(),
                min_level: r.min_level,
                slot: self.slot(&r.skill),
            })
            .collect();
        let selection = Selection {
            requirements,
            strategy,
            cursor: AtomicUsize::new(usize::MAX),
        };
        if let Some(ranking) = Ranking::of(&selection) {
            for requirement in selection.requirements.iter() {
                requirement.slot.use_ranking(ranking);
            }
        }
        selection
    }

    fn slot(&self, skill: &Skill) -> Arc<SkillSlot> {
        if let Some(slot) = self.skills.get(skill.as_str()) {
            return Arc::clone(slot.value());
        }
        let slot = self
            .skills
            .entry(skill.clone())
            .or_insert_with(|| Arc::new(SkillSlot::empty()));
        Arc::clone(slot.value())
    }

    fn rebuild(&self, skill: &Skill) {
        let mut members: Vec<Member> = self
            .agents
            .iter()
            .filter_map(|entry| {
                let config = entry.value().config.load_full();
                let level = config.level(skill)?;
                Some(Member {
                    entry: Arc::clone(entry.value()),
                    config,
                    level,
                })
            })
            .collect();
        members.sort_by(|a, b| a.config.id.cmp(&b.config.id));
        let slot = self.slot(skill);
        // Every agent's membership of this skill follows the new positions.
        let positions: HashMap<*const AgentEntry, u32> = members
            .iter()
            .enumerate()
            .map(|(at, m)| (Arc::as_ptr(&m.entry), at as u32))
            .collect();
        for entry in self.agents.iter() {
            let entry = entry.value();
            let old = entry.memberships.load();
            let mut next: Vec<Membership> = old
                .iter()
                .filter(|m| !Arc::ptr_eq(&m.slot, &slot))
                .map(|m| Membership {
                    slot: Arc::clone(&m.slot),
                    position: m.position,
                })
                .collect();
            if let Some(position) = positions.get(&Arc::as_ptr(entry)) {
                next.push(Membership {
                    slot: Arc::clone(&slot),
                    position: *position,
                });
            }
            entry.memberships.store(Arc::new(next));
        }
        publish(&slot, members);
    }

    fn rebuild_all(&self) {
        let mut by_skill: HashMap<Skill, Vec<Member>> = HashMap::new();
        for entry in self.agents.iter() {
            let config = entry.value().config.load_full();
            for skill in &config.skills {
                by_skill
                    .entry(skill.skill.clone())
                    .or_default()
                    .push(Member {
                        entry: Arc::clone(entry.value()),
                        config: Arc::clone(&config),
                        level: skill.level,
                    });
            }
        }
        let existing: Vec<Skill> = self.skills.iter().map(|s| s.key().clone()).collect();
        for skill in existing {
            by_skill.entry(skill).or_default();
        }
        let mut memberships: HashMap<*const AgentEntry, Vec<Membership>> = HashMap::new();
        for (skill, mut members) in by_skill {
            members.sort_by(|a, b| a.config.id.cmp(&b.config.id));
            let slot = self.slot(&skill);
            for (position, member) in members.iter().enumerate() {
                memberships
                    .entry(Arc::as_ptr(&member.entry))
                    .or_default()
                    .push(Membership {
                        slot: Arc::clone(&slot),
                        position: position as u32,
                    });
            }
            publish(&slot, members);
        }
        for entry in self.agents.iter() {
            let entry = entry.value();
            let mine = memberships.remove(&Arc::as_ptr(entry)).unwrap_or_default();
            entry.memberships.store(Arc::new(mine));
        }
    }

    // ----- the hot path: choose and claim ----------------------------------

    /// Chooses the best available agent for `selection` by its strategy and
    /// `preferences`, and claims them (`available` → `ringing`) with one
    /// compare-and-swap. A lost race means another decision took that agent;
    /// the choice is made again. `None` when no qualified agent is
    /// available. Allocates nothing.
    ///
    /// `ring-all` selections choose like `longest-idle` here; use
    /// [`AgentTable::claim_all`] to ring every agent.
    pub fn choose_and_claim(
        &self,
        selection: &Selection,
        preferences: &Preferences<'_>,
    ) -> Option<Claim> {
        match Ranking::of(selection) {
            Some(ranking) => choose_from_line(selection, ranking, preferences),
            None => choose_by_scan(selection, preferences),
        }
    }

    /// Claims every available qualified agent in the best preference tier
    /// (ring-all), appending their ids to `claimed`; returns how many.
    pub fn claim_all(
        &self,
        selection: &Selection,
        preferences: &Preferences<'_>,
        claimed: &mut Vec<AgentId>,
    ) -> usize {
        loop {
            let Some((scanned, index)) = selection.rarest() else {
                return 0;
            };
            let eligible = |member: &Member| {
                let word = member.entry.word();
                (word.is_claimable() && selection.qualify(scanned, member).is_some())
                    .then(|| preferences.tier(&member.config))
            };
            let Some(best) = index.members.iter().filter_map(eligible).min() else {
                return 0;
            };
            let before = claimed.len();
            for member in index.members.iter() {
                if eligible(member) != Some(best) {
                    continue;
                }
                let claim = member.entry.update(|word| {
                    word.is_claimable()
                        .then(|| word.with_state(AgentState::Ringing, word.since()))
                });
                if claim.is_ok() {
                    claimed.push(member.config.id.clone());
                }
            }
            if claimed.len() > before {
                return claimed.len() - before;
            }
        }
    }

    /// Claims one named agent (a known patient's coordinator), if available.
    pub fn claim(&self, id: &AgentId) -> Result<Claim, RoutingError> {
        let entry = self.entry(id)?;
        let (old, _) = entry
            .update(|word| {
                word.is_claimable()
                    .then(|| word.with_state(AgentState::Ringing, word.since()))
            })
            .map_err(|word| wrong_state(id, word, "be claimed"))?;
        Ok(Claim {
            agent: id.clone(),
            idle_since: old.since(),
        })
    }

    // ----- state transitions -----------------------------------------------

    /// The offered agent answered: `ringing` → `on_call`; counts a call and
    /// clears their misses.
    pub fn answer(&self, id: &AgentId, now: Millis) -> Result<Transition, RoutingError> {
        let entry = self.entry(id)?;
        let (old, new) = entry
            .update(|word| {
                (word.state() == AgentState::Ringing)
                    .then(|| word.with_state(AgentState::OnCall, now))
            })
            .map_err(|word| wrong_state(id, word, "answer"))?;
        entry.calls_today.fetch_add(1, Ordering::Relaxed);
        entry.consecutive_misses.store(0, Ordering::Relaxed);
        Ok(transition(id, old, new))
    }

    /// The offered agent did not answer, was busy or declined: `ringing` →
    /// `available` at the back of the idle line, or `away` on the
    /// `away_after_misses`-th miss in a row (0: never), or `offline` if they
    /// unregistered meanwhile.
    pub fn miss(
        &self,
        id: &AgentId,
        now: Millis,
        away_after_misses: u32,
    ) -> Result<Transition, RoutingError> {
        let entry = self.entry(id)?;
        let misses = entry
            .consecutive_misses
            .load(Ordering::Relaxed)
            .saturating_add(1);
        let too_many = away_after_misses > 0 && misses >= away_after_misses;
        let (old, new) = entry
            .update(|word| {
                (word.state() == AgentState::Ringing).then(|| {
                    if !word.registered() {
                        word.with_state(AgentState::Offline, now)
                            .with_away_after(false)
                    } else if word.away_after() || too_many {
                        word.with_state(AgentState::Away, now)
                            .with_away_after(false)
                    } else {
                        word.with_state(AgentState::Available, now)
                    }
                })
            })
            .map_err(|word| wrong_state(id, word, "miss an offer"))?;
        entry.consecutive_misses.store(misses, Ordering::Relaxed);
        entry.announce(old, new);
        Ok(transition(id, old, new))
    }

    /// The offer was withdrawn through no fault of the agent (the caller
    /// hung up, another agent answered a ring-all): `ringing` → `available`
    /// keeping their place in the idle line (or `away`/`offline` as asked).
    pub fn release(&self, id: &AgentId, now: Millis) -> Result<Transition, RoutingError> {
        let entry = self.entry(id)?;
        let (old, new) = entry
            .update(|word| {
                (word.state() == AgentState::Ringing).then(|| {
                    if !word.registered() {
                        word.with_state(AgentState::Offline, now)
                            .with_away_after(false)
                    } else if word.away_after() {
                        word.with_state(AgentState::Away, now)
                            .with_away_after(false)
                    } else {
                        word.with_state(AgentState::Available, word.since())
                    }
                })
            })
            .map_err(|word| wrong_state(id, word, "release an offer"))?;
        entry.announce(old, new);
        Ok(transition(id, old, new))
    }

    /// The agent's call ended: `on_call` → `wrap_up` (or `offline` if they
    /// unregistered during the call). The wrap-up's start is the returned
    /// state's `since`, which [`AgentTable::finish_wrap_up`] checks.
    pub fn end_call(&self, id: &AgentId, now: Millis) -> Result<Transition, RoutingError> {
        let entry = self.entry(id)?;
        let (old, new) = entry
            .update(|word| {
                (word.state() == AgentState::OnCall).then(|| {
                    if word.registered() {
                        word.with_state(AgentState::WrapUp, now)
                    } else {
                        word.with_state(AgentState::Offline, now)
                            .with_away_after(false)
                    }
                })
            })
            .map_err(|word| wrong_state(id, word, "end a call"))?;
        entry
            .last_call_ended
            .store(now.as_millis().saturating_add(1), Ordering::Relaxed);
        Ok(transition(id, old, new))
    }

    /// The wrap-up that began at `started` is over: `wrap_up` → `available`
    /// (or `away` if asked). Refused if the agent left that wrap-up already.
    pub fn finish_wrap_up(
        &self,
        id: &AgentId,
        started: Millis,
        now: Millis,
    ) -> Result<Transition, RoutingError> {
        let entry = self.entry(id)?;
        let (old, new) = entry
            .update(|word| {
                (word.state() == AgentState::WrapUp && word.since() == started).then(|| {
                    if word.away_after() {
                        word.with_state(AgentState::Away, now)
                            .with_away_after(false)
                    } else {
                        word.with_state(AgentState::Available, now)
                    }
                })
            })
            .map_err(|word| wrong_state(id, word, "finish wrap-up"))?;
        entry.announce(old, new);
        Ok(transition(id, old, new))
    }

    /// A REGISTER with a live binding. The first one makes an `offline`
    /// agent `available`; a refresh changes nothing (DESIGN.md).
    pub fn register(&self, id: &AgentId, now: Millis) -> Result<Transition, RoutingError> {
        let entry = self.entry(id)?;
        let result = entry.update(|word| {
            (!word.registered()).then(|| {
                let word = word.with_registered(true);
                if word.state() == AgentState::Offline {
                    word.with_state(AgentState::Available, now)
                } else {
                    word
                }
            })
        });
        match result {
            Ok((old, new)) => {
                if old.state() == AgentState::Offline {
                    entry.consecutive_misses.store(0, Ordering::Relaxed);
                }
                entry.announce(old, new);
                Ok(transition(id, old, new))
            }
            Err(word) => Ok(transition(id, word, word)),
        }
    }

    /// The registration expired or was removed: `offline`, except that a
    /// ringing or connected agent keeps their call and goes `offline` when
    /// it is over.
    pub fn unregister(&self, id: &AgentId, now: Millis) -> Result<Transition, RoutingError> {
        let entry = self.entry(id)?;
        let result = entry.update(|word| {
            let word = word.with_registered(false);
            match word.state() {
                AgentState::Offline => None,
                AgentState::Ringing | AgentState::OnCall => Some(word),
                AgentState::Available | AgentState::WrapUp | AgentState::Away => Some(
                    word.with_state(AgentState::Offline, now)
                        .with_away_after(false),
                ),
            }
        });
        Ok(match result {
            Ok((old, new)) => transition(id, old, new),
            Err(word) => transition(id, word, word),
        })
    }

    /// Another node holds the agent's claim: never claimable here until
    /// [`AgentTable::release_elsewhere`], whatever the local state does
    /// meanwhile. Returns the transition as shown (`available` → `on_call`
    /// for an idle agent).
    pub fn hold_elsewhere(&self, id: &AgentId) -> Result<Transition, RoutingError> {
        let entry = self.entry(id)?;
        Ok(
            match entry.update(|word| (!word.held()).then(|| word.with_held(true))) {
                Ok((old, new)) => shown_transition(id, old, new),
                Err(word) => shown_transition(id, word, word),
            },
        )
    }

    /// The other node's claim is over (released, or its lease ran out): the
    /// agent is what this node knows of them again. An agent available here
    /// rejoins the idle lines as idle since `now` (they were busy until
    /// now).
    pub fn release_elsewhere(&self, id: &AgentId, now: Millis) -> Result<Transition, RoutingError> {
        let entry = self.entry(id)?;
        let result = entry.update(|word| {
            word.held().then(|| {
                let word = word.with_held(false);
                if word.state() == AgentState::Available {
                    word.with_state(AgentState::Available, now)
                } else {
                    word
                }
            })
        });
        Ok(match result {
            Ok((old, new)) => {
                // Whatever `since` became, the entry may have left the
                // lines while held (a held agent's entry is stale there).
                if new.state() == AgentState::Available {
                    entry.join_lines(new);
                }
                shown_transition(id, old, new)
            }
            Err(word) => shown_transition(id, word, word),
        })
    }

    /// The agent (or the admin API) asks to be `available` or `away`. Asking
    /// for `away` while ringing or on a call takes effect after the call's
    /// wrap-up; asking for `available` then cancels that. Refused while
    /// `offline`.
    pub fn set_state(
        &self,
        id: &AgentId,
        requested: RequestedState,
        now: Millis,
    ) -> Result<Transition, RoutingError> {
        let entry = self.entry(id)?;
        let (old, new) = entry
            .update(|word| match (requested, word.state()) {
                (_, AgentState::Offline) => None,
                (RequestedState::Away, AgentState::Available | AgentState::WrapUp) => Some(
                    word.with_state(AgentState::Away, now)
                        .with_away_after(false),
                ),
                (RequestedState::Away, AgentState::Ringing | AgentState::OnCall) => {
                    Some(word.with_away_after(true))
                }
                (RequestedState::Available, AgentState::Away | AgentState::WrapUp) => Some(
                    word.with_state(AgentState::Available, now)
                        .with_away_after(false),
                ),
                (RequestedState::Available, _) | (RequestedState::Away, AgentState::Away) => {
                    Some(word.with_away_after(false))
                }
            })
            .map_err(|word| wrong_state(id, word, "change state"))?;
        if requested == RequestedState::Available && old.state() == AgentState::Away {
            entry.consecutive_misses.store(0, Ordering::Relaxed);
        }
        entry.announce(old, new);
        Ok(transition(id, old, new))
    }

    /// Zeroes every agent's `calls_today` (the daemon calls this at the
    /// clinic's local midnight).
    pub fn reset_daily_counters(&self) {
        for entry in self.agents.iter() {
            entry.value().calls_today.store(0, Ordering::Relaxed);
        }
        // Ranks by calls are now out of date.
        let slots: Vec<Arc<SkillSlot>> = self
            .skills
            .iter()
            .map(|slot| Arc::clone(slot.value()))
            .collect();
        for slot in slots {
            republish(&slot);
        }
    }

    // ----- reads -------------------------------------------------------------

    /// A copy of one agent's entry.
    pub fn snapshot(&self, id: &AgentId) -> Option<AgentSnapshot> {
        self.entry(id).ok().map(|entry| snapshot(&entry))
    }

    /// Copies of every agent's entry, sorted by id.
    pub fn snapshots(&self) -> Vec<AgentSnapshot> {
        let entries: Vec<Arc<AgentEntry>> = self
            .agents
            .iter()
            .map(|entry| Arc::clone(entry.value()))
            .collect();
        let mut snapshots: Vec<AgentSnapshot> = entries.iter().map(|e| snapshot(e)).collect();
        snapshots.sort_by(|a, b| a.id().cmp(b.id()));
        snapshots
    }

    /// One agent's state.
    pub fn state(&self, id: &AgentId) -> Option<AgentState> {
        self.entry(id).ok().map(|entry| entry.word().state())
    }

    /// True when the agent is registered and not `away`: worth waiting for.
    pub fn is_signed_in(&self, id: &AgentId) -> bool {
        self.entry(id).is_ok_and(|entry| {
            let word = entry.word();
            word.registered() && !matches!(word.state(), AgentState::Away | AgentState::Offline)
        })
    }

    /// True when the agent meets the selection's requirements.
    pub fn qualifies(&self, id: &AgentId, selection: &Selection) -> bool {
        self.entry(id).is_ok_and(|entry| {
            let config = entry.config.load();
            selection.requirements.iter().all(|r| {
                config
                    .level(&r.skill)
                    .is_some_and(|level| level >= r.min_level)
            })
        })
    }

    /// How many agents qualified for `selection` are in each state.
    pub fn counts(&self, selection: &Selection) -> AgentCounts {
        let mut counts = AgentCounts::default();
        let Some((scanned, index)) = selection.rarest() else {
            return counts;
        };
        for member in index.members.iter() {
            if selection.qualify(scanned, member).is_none() {
                continue;
            }
            let word = member.entry.word();
            counts.by_state[word.shown_state().index()] += 1;
            if word.registered() {
                counts.signed_in += 1;
            }
        }
        counts
    }

    fn entry(&self, id: &AgentId) -> Result<Arc<AgentEntry>, RoutingError> {
        // The shard guard ends with this statement: only the Arc escapes.
        self.agents
            .get(id.as_str())
            .map(|entry| Arc::clone(entry.value()))
            .ok_or_else(|| RoutingError::UnknownAgent(id.clone()))
    }
}

impl AgentEntry {
    fn new(config: AgentConfig) -> Self {
        Self::with_config(Arc::new(config))
    }

    fn with_config(config: Arc<AgentConfig>) -> Self {
        Self {
            word: AtomicU64::new(StateWord::new(AgentState::Offline, false, Millis::ZERO).bits()),
            calls_today: AtomicU32::new(0),
            consecutive_misses: AtomicU32::new(0),
            last_call_ended: AtomicU64::new(0),
            config: ArcSwap::new(config),
            memberships: ArcSwap::from_pointee(Vec::new()),
        }
    }

    /// After a transition: an agent who just became available joins the
    /// idle line of each of their skills.
    fn announce(&self, old: StateWord, new: StateWord) {
        let unchanged = old.state() == new.state() && old.since() == new.since();
        if new.state() != AgentState::Available || unchanged {
            return;
        }
        self.join_lines(new);
    }

    /// Puts the agent in the idle line of each of their skills as idle
    /// since `word.since()` (a duplicate entry is harmless: the claim's
    /// compare-and-swap takes one, the other is stale).
    fn join_lines(&self, new: StateWord) {
        for membership in self.memberships.load().iter() {
            for ranking in Ranking::ALL {
                if !membership.slot.in_use(ranking) {
                    continue;
                }
                let mut line = membership.slot.line(ranking);
                let index = membership.slot.index.load();
                let Some(member) = index.members.get(membership.position as usize) else {
                    continue;
                };
                let entry = IdleEntry {
                    rank: ranking.rank(member),
                    since: new.since(),
                    position: membership.position,
                };
                line.push(entry, |e| index.is_current(ranking, e));
            }
        }
    }
}

impl Drop for AgentTable {
    /// Entries point to their skill slots and slots to their entries: empty
    /// both so that they are freed.
    fn drop(&mut self) {
        for slot in self.skills.iter() {
            slot.value().index.store(Arc::new(SkillIndex::default()));
        }
        for entry in self.agents.iter() {
            entry.value().memberships.store(Arc::new(Vec::new()));
        }
    }
}

fn snapshot(entry: &AgentEntry) -> AgentSnapshot {
    let word = entry.word();
    let ended = entry.last_call_ended.load(Ordering::Relaxed);
    AgentSnapshot {
        config: entry.config.load_full(),
        state: word.shown_state(),
        held_elsewhere: word.held(),
        registered: word.registered(),
        since: word.since(),
        away_after_call: word.away_after(),
        calls_today: entry.calls_today.load(Ordering::Relaxed),
        consecutive_misses: entry.consecutive_misses.load(Ordering::Relaxed),
        last_call_ended_at: ended.checked_sub(1).map(Millis::new),
    }
}

fn transition(id: &AgentId, old: StateWord, new: StateWord) -> Transition {
    Transition {
        agent: id.clone(),
        from: old.state(),
        to: new.state(),
    }
}

fn shown_transition(id: &AgentId, old: StateWord, new: StateWord) -> Transition {
    Transition {
        agent: id.clone(),
        from: old.shown_state(),
        to: new.shown_state(),
    }
}

fn wrong_state(id: &AgentId, word: StateWord, action: &'static str) -> RoutingError {
    RoutingError::WrongState {
        agent: id.clone(),
        state: word.state(),
        action,
    }
}
