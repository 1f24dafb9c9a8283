//! The lead desk: who owns each open lead (a web form, later a callback or a
//! voicemail), one agent at a time, and the timers that keep it moving
//! (DESIGN.md, "Leads, sources, intents, branches, trunks"; issue 21).
//!
//! # Why a core of its own beside the [`Router`](crate::Router)
//!
//! Leads use the same [`AgentTable`] as calls (who is registered, who is
//! `away`, skills, branches), but they must never change an agent's call
//! state: a lead offer does not ring the phone, and a call on the phone does
//! not stop a lead offer. So the desk only *reads* the table (snapshots,
//! never a claim) and keeps its own count of the leads each agent owns,
//! bounded by their `lead_capacity`. A call's decision never looks at the
//! desk: 10,000 open leads cost the call path nothing (BENCHMARKS.md, "Lead
//! distribution").
//!
//! # The model
//!
//! * A lead is `waiting`, `offered` to one agent until `accept_within`
//!   passes, or `owned` (accepted, assigned, or contacted) until it is
//!   closed with an outcome.
//! * Waiting leads are in one line: urgent first, then oldest first (by
//!   their creation, so a lead that comes back keeps its age).
//! * An agent may be offered a lead when they are signed in (their phone is
//!   registered, or a live `/agent` session is open), not `away`, qualified
//!   for the lead's department (its skills), and own fewer leads than their
//!   capacity (offers count). Among them: agents who already let this lead
//!   pass go last, then the lead's branch first, then the fewest leads per
//!   unit of capacity, then the one offered a lead longest ago (round-robin).
//! * `respond_by` not met (no first contact) → the lead is `escalated`
//!   ([`DeskEvent::Escalated`], the `lead_breach` alert), taken from whoever
//!   had it, and offered again with its original age.
//! * A snoozed lead stays its owner's and comes back to them at the time
//!   given ([`DeskEvent::SnoozeEnded`]).
//!
//! # The run loop
//!
//! As for the router: every input takes `now`; afterwards drain
//! [`LeadDesk::poll_event`] and sleep until [`LeadDesk::poll_timeout`], then
//! call [`LeadDesk::handle_timeout`]. The desk's [`Millis`] are wall-clock
//! milliseconds since the Unix epoch (not a monotonic origin), because its
//! deadlines (`respond_by`, an offer's end) are stored in the journal and
//! must mean the same after a restart ([`LeadDesk::restore`]).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::SkillRequirement;
use crate::id::{AgentId, Branch};
use crate::state::AgentState;
use crate::table::AgentTable;
use crate::time::Millis;

#[cfg(test)]
mod tests;

/// Open leads an agent may own unless configured (DESIGN.md's default).
pub const DEFAULT_LEAD_CAPACITY: u32 = 2;

/// A lead's id (`l-…`), cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeadKey(Arc<str>);

impl LeadKey {
    /// Wraps an id.
    pub fn new(id: &str) -> Self {
        LeadKey(Arc::from(id))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the desk needs of a new lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSpec {
    /// Its id.
    pub id: LeadKey,
    /// The skills of its department's queue.
    pub skills: Vec<SkillRequirement>,
    /// Its department, to skip a department without agents in one pass.
    pub department: String,
    /// The branch to prefer.
    pub branch: Option<Branch>,
    /// Emergency or urgent: offered before routine leads.
    pub urgent: bool,
    /// When it arrived: its age, kept when it comes back.
    pub created_at: Millis,
    /// First contact is due by then.
    pub respond_by: Millis,
    /// How long an offer waits for the agent's accept.
    pub accept_within: Duration,
}

/// A lead as the journal left it, for [`LeadDesk::restore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredLead {
    /// The lead.
    pub spec: LeadSpec,
    /// Who owned it or had it offered.
    pub owner: Option<AgentId>,
    /// Offered (not accepted) until then: `owner` had it on offer.
    pub offered_until: Option<Millis>,
    /// The patient was reached already.
    pub contacted: bool,
    /// It was escalated already.
    pub escalated: bool,
    /// Snoozed until then.
    pub snoozed_until: Option<Millis>,
}

/// Where a lead is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// In the line.
    Waiting,
    /// Offered to `agent` until `until`.
    Offered {
        /// The agent.
        agent: AgentId,
        /// The offer ends then.
        until: Millis,
    },
    /// `agent` owns it; snoozed until then, if snoozed.
    Owned {
        /// The owner.
        agent: AgentId,
        /// It comes back to the owner then.
        snoozed_until: Option<Millis>,
    },
}

impl Phase {
    /// The agent who has it (on offer or owned).
    pub fn agent(&self) -> Option<&AgentId> {
        match self {
            Phase::Waiting => None,
            Phase::Offered { agent, .. } | Phase::Owned { agent, .. } => Some(agent),
        }
    }
}

/// A copy of one lead's place on the desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadStatus {
    /// The lead.
    pub id: LeadKey,
    /// Where it is.
    pub phase: Phase,
    /// Reached already.
    pub contacted: bool,
    /// Escalated already.
    pub escalated: bool,
    /// When it arrived.
    pub created_at: Millis,
    /// First contact due by then.
    pub respond_by: Millis,
    /// Urgent.
    pub urgent: bool,
}

/// Who acts on a lead: one agent, or the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An agent, for themselves.
    Agent(AgentId),
    /// The admin token.
    Admin,
}

/// What happened on the desk, in order. Every change of owner is one event,
/// so the driver journals the lead's history from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeskEvent {
    /// Offered to `agent` until `until`.
    Offered {
        /// The lead.
        lead: LeadKey,
        /// The agent.
        agent: AgentId,
        /// The offer ends then.
        until: Millis,
    },
    /// `agent` did not accept in time; the lead waits again.
    OfferExpired {
        /// The lead.
        lead: LeadKey,
        /// The agent.
        agent: AgentId,
    },
    /// `agent` accepted the offer.
    Accepted {
        /// The lead.
        lead: LeadKey,
        /// The agent.
        agent: AgentId,
    },
    /// The admin gave the lead to `agent` (taking it from `from`).
    Assigned {
        /// The lead.
        lead: LeadKey,
        /// The new owner.
        agent: AgentId,
        /// The previous owner (or agent it was offered to).
        from: Option<AgentId>,
    },
    /// `respond_by` passed without contact: taken from `from`, offered again.
    Escalated {
        /// The lead.
        lead: LeadKey,
        /// Who had it.
        from: Option<AgentId>,
    },
    /// `agent` reached the patient (first contact).
    Contacted {
        /// The lead.
        lead: LeadKey,
        /// The agent.
        agent: AgentId,
    },
    /// Closed with an outcome by its owner (or the admin).
    Closed {
        /// The lead.
        lead: LeadKey,
        /// Who owned it.
        agent: Option<AgentId>,
    },
    /// Snoozed by its owner until `until`.
    Snoozed {
        /// The lead.
        lead: LeadKey,
        /// The owner.
        agent: AgentId,
        /// It comes back then.
        until: Millis,
    },
    /// The snooze is over: back in its owner's list.
    SnoozeEnded {
        /// The lead.
        lead: LeadKey,
        /// The owner.
        agent: AgentId,
    },
}

/// Why the desk refused an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeskError {
    /// No open lead has that id.
    #[error("no open lead {0}")]
    UnknownLead(String),
    /// The agent does not exist.
    #[error("no agent {0}")]
    UnknownAgent(String),
    /// The lead is offered to, or owned by, someone else.
    #[error("lead {lead} is not yours")]
    NotYours {
        /// The lead.
        lead: String,
    },
    /// The action does not fit the lead's state.
    #[error("lead {lead}: {reason}")]
    WrongState {
        /// The lead.
        lead: String,
        /// Why.
        reason: &'static str,
    },
    /// A lead with that id is on the desk already.
    #[error("lead {0} is on the desk already")]
    Duplicate(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum TimerKind {
    Offer,
    RespondBy,
    Snooze,
}

#[derive(Debug)]
struct DeskLead {
    spec: LeadSpec,
    phase: Phase,
    contacted: bool,
    escalated: bool,
    /// Agents who let this lead pass (expired offers, escalation): offered
    /// it again only when nobody else can take it.
    passed: Vec<AgentId>,
}

#[derive(Debug, Default, Clone)]
struct DeskAgent {
    capacity: Option<u32>,
    /// Leads offered to or owned by the agent.
    open: u32,
    /// Live `/agent` sessions.
    sessions: u32,
    /// The desk's offer counter when they were last offered a lead
    /// (0: never): round-robin among equals.
    last_offer: u64,
}

/// An agent who may be offered a lead now (one distribution pass).
struct Candidate {
    id: AgentId,
    config: Arc<crate::AgentConfig>,
    capacity: u32,
}

/// The lead desk (see the module docs).
#[derive(Debug)]
pub struct LeadDesk {
    table: Arc<AgentTable>,
    leads: HashMap<LeadKey, DeskLead>,
    /// `(routine?, created_at, id)`: urgent first, then oldest.
    waiting: BTreeSet<(bool, Millis, LeadKey)>,
    timers: BTreeSet<(Millis, TimerKind, LeadKey)>,
    agents: HashMap<AgentId, DeskAgent>,
    events: VecDeque<DeskEvent>,
    offers: u64,
}

impl LeadDesk {
    /// An empty desk over the agents of `table`.
    pub fn new(table: Arc<AgentTable>) -> Self {
        LeadDesk {
            table,
            leads: HashMap::new(),
            waiting: BTreeSet::new(),
            timers: BTreeSet::new(),
            agents: HashMap::new(),
            events: VecDeque::new(),
            offers: 0,
        }
    }

    /// Sets an agent's `lead_capacity` (0: never offered leads).
    pub fn set_capacity(&mut self, now: Millis, agent: &AgentId, capacity: u32) {
        self.agents.entry(agent.clone()).or_default().capacity = Some(capacity);
        self.distribute(now);
    }

    /// A live `/agent` session opened for `agent` (signs them in for leads
    /// even without a registered phone).
    pub fn session_opened(&mut self, now: Millis, agent: &AgentId) {
        let entry = self.agents.entry(agent.clone()).or_default();
        entry.sessions = entry.sessions.saturating_add(1);
        self.distribute(now);
    }

    /// One of `agent`'s `/agent` sessions ended.
    pub fn session_closed(&mut self, now: Millis, agent: &AgentId) {
        if let Some(entry) = self.agents.get_mut(agent) {
            entry.sessions = entry.sessions.saturating_sub(1);
        }
        self.distribute(now);
    }

    /// Agents changed in the table (registered, away, available again):
    /// offers the waiting leads to whoever can take them now.
    pub fn agents_changed(&mut self, now: Millis) {
        self.distribute(now);
    }

    /// A new lead: waits in line and is offered at once if someone can
    /// take it.
    pub fn add(&mut self, now: Millis, spec: LeadSpec) -> Result<(), DeskError> {
        if self.leads.contains_key(&spec.id) {
            return Err(DeskError::Duplicate(spec.id.to_string()));
        }
        let id = spec.id.clone();
        self.timers
            .insert((spec.respond_by, TimerKind::RespondBy, id.clone()));
        self.waiting
            .insert((!spec.urgent, spec.created_at, id.clone()));
        self.leads.insert(
            id,
            DeskLead {
                spec,
                phase: Phase::Waiting,
                contacted: false,
                escalated: false,
                passed: Vec::new(),
            },
        );
        self.distribute(now);
        Ok(())
    }

    /// Puts back a lead as the journal left it (at start), with its
    /// deadlines: an offer that ended meanwhile expires, a `respond_by`
    /// that passed escalates, on the first [`Self::handle_timeout`].
    pub fn restore(&mut self, lead: RestoredLead) -> Result<(), DeskError> {
        let id = lead.spec.id.clone();
        if self.leads.contains_key(&id) {
            return Err(DeskError::Duplicate(id.to_string()));
        }
        let phase = match (lead.owner, lead.offered_until) {
            (Some(agent), Some(until)) => {
                self.timers.insert((until, TimerKind::Offer, id.clone()));
                Phase::Offered { agent, until }
            }
            (Some(agent), None) => {
                if let Some(until) = lead.snoozed_until {
                    self.timers.insert((until, TimerKind::Snooze, id.clone()));
                }
                Phase::Owned {
                    agent,
                    snoozed_until: lead.snoozed_until,
                }
            }
            (None, _) => {
                self.waiting
                    .insert((!lead.spec.urgent, lead.spec.created_at, id.clone()));
                Phase::Waiting
            }
        };
        if let Some(agent) = phase.agent() {
            let entry = self.agents.entry(agent.clone()).or_default();
            entry.open = entry.open.saturating_add(1);
        }
        if !lead.contacted && !lead.escalated {
            self.timers
                .insert((lead.spec.respond_by, TimerKind::RespondBy, id.clone()));
        }
        self.leads.insert(
            id,
            DeskLead {
                spec: lead.spec,
                phase,
                contacted: lead.contacted,
                escalated: lead.escalated,
                passed: Vec::new(),
            },
        );
        Ok(())
    }

    /// The agent accepts the lead offered to them (the admin: for whoever
    /// it is offered to).
    pub fn accept(&mut self, now: Millis, id: &LeadKey, by: &Actor) -> Result<AgentId, DeskError> {
        let lead = self.lead_mut(id)?;
        let (agent, until) = match &lead.phase {
            Phase::Offered { agent, until } => (agent.clone(), *until),
            Phase::Owned { agent, .. } if by == &Actor::Agent(agent.clone()) => {
                return Ok(agent.clone());
            }
            Phase::Owned { .. } => return Err(not_yours(id)),
            Phase::Waiting => return Err(wrong_state(id, "it is not offered to anyone")),
        };
        if let Actor::Agent(actor) = by
            && actor != &agent
        {
            return Err(not_yours(id));
        }
        lead.phase = Phase::Owned {
            agent: agent.clone(),
            snoozed_until: None,
        };
        self.timers.remove(&(until, TimerKind::Offer, id.clone()));
        self.events.push_back(DeskEvent::Accepted {
            lead: id.clone(),
            agent: agent.clone(),
        });
        self.distribute(now);
        Ok(agent)
    }

    /// The admin gives the lead to `agent` (owned at once, whatever their
    /// capacity: the admin decides).
    pub fn assign(&mut self, now: Millis, id: &LeadKey, agent: &AgentId) -> Result<(), DeskError> {
        if self.table.snapshot(agent).is_none() {
            return Err(DeskError::UnknownAgent(agent.to_string()));
        }
        let lead = self.lead_mut(id)?;
        let from = lead.phase.agent().cloned();
        if from.as_ref() == Some(agent) && matches!(lead.phase, Phase::Owned { .. }) {
            return Ok(());
        }
        self.leave_phase(id);
        self.take(id, agent);
        self.events.push_back(DeskEvent::Assigned {
            lead: id.clone(),
            agent: agent.clone(),
            from,
        });
        self.distribute(now);
        Ok(())
    }

    /// The patient was reached by `agent` at `now` (the owner recorded
    /// `reached` or `booked`, or a click-to-call was answered): the lead is
    /// `contacted`, theirs, and its `respond_by` timer stops. Taking a lead
    /// offered to them, or waiting, makes them its owner; a lead owned by
    /// someone else is refused.
    pub fn contacted(
        &mut self,
        now: Millis,
        id: &LeadKey,
        agent: &AgentId,
    ) -> Result<(), DeskError> {
        let lead = self.lead_mut(id)?;
        match lead.phase.agent() {
            Some(holder) if holder != agent => return Err(not_yours(id)),
            _ => {}
        }
        let already = lead.contacted;
        let owned = matches!(&lead.phase, Phase::Owned { .. });
        let respond_by = lead.spec.respond_by;
        lead.contacted = true;
        if !owned {
            let was_offered = matches!(lead.phase, Phase::Offered { .. });
            self.leave_phase(id);
            self.take(id, agent);
            if was_offered {
                self.events.push_back(DeskEvent::Accepted {
                    lead: id.clone(),
                    agent: agent.clone(),
                });
            }
        }
        self.timers
            .remove(&(respond_by, TimerKind::RespondBy, id.clone()));
        if !already {
            self.events.push_back(DeskEvent::Contacted {
                lead: id.clone(),
                agent: agent.clone(),
            });
        }
        self.distribute(now);
        Ok(())
    }

    /// The lead is done (an outcome): it leaves the desk and frees its
    /// owner's capacity. An agent may close only a lead they own; the
    /// admin any open lead.
    pub fn close(&mut self, now: Millis, id: &LeadKey, by: &Actor) -> Result<(), DeskError> {
        let lead = self.lead_mut(id)?;
        if let Actor::Agent(actor) = by {
            match &lead.phase {
                Phase::Owned { agent, .. } if agent == actor => {}
                Phase::Offered { agent, .. } if agent == actor => {}
                _ => return Err(not_yours(id)),
            }
        }
        let agent = lead.phase.agent().cloned();
        let respond_by = lead.spec.respond_by;
        self.leave_phase(id);
        self.timers
            .remove(&(respond_by, TimerKind::RespondBy, id.clone()));
        self.leads.remove(id);
        self.events.push_back(DeskEvent::Closed {
            lead: id.clone(),
            agent,
        });
        self.distribute(now);
        Ok(())
    }

    /// The owner snoozes the lead until `until` (later than `now`); it
    /// stays theirs and comes back to them then.
    pub fn snooze(
        &mut self,
        _now: Millis,
        id: &LeadKey,
        by: &Actor,
        until: Millis,
    ) -> Result<AgentId, DeskError> {
        let lead = self.lead_mut(id)?;
        let (agent, previous) = match &lead.phase {
            Phase::Owned {
                agent,
                snoozed_until,
            } => (agent.clone(), *snoozed_until),
            Phase::Offered { agent, .. } if by == &Actor::Agent(agent.clone()) => {
                return Err(wrong_state(id, "accept it before snoozing it"));
            }
            _ => return Err(wrong_state(id, "only a lead with an owner can be snoozed")),
        };
        if let Actor::Agent(actor) = by
            && actor != &agent
        {
            return Err(not_yours(id));
        }
        lead.phase = Phase::Owned {
            agent: agent.clone(),
            snoozed_until: Some(until),
        };
        if let Some(previous) = previous {
            self.timers
                .remove(&(previous, TimerKind::Snooze, id.clone()));
        }
        self.timers.insert((until, TimerKind::Snooze, id.clone()));
        self.events.push_back(DeskEvent::Snoozed {
            lead: id.clone(),
            agent: agent.clone(),
            until,
        });
        Ok(agent)
    }

    /// The earliest deadline: an offer's end, a `respond_by`, a snooze.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.timers.first().map(|(at, _, _)| *at)
    }

    /// Handles every deadline at or before `now`.
    pub fn handle_timeout(&mut self, now: Millis) {
        while let Some((at, kind, id)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, kind, id.clone()));
            match kind {
                TimerKind::Offer => self.expire_offer(&id),
                TimerKind::RespondBy => self.escalate(&id),
                TimerKind::Snooze => self.wake(&id),
            }
        }
        self.distribute(now);
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<DeskEvent> {
        self.events.pop_front()
    }

    /// One lead's place, if it is open.
    pub fn status(&self, id: &LeadKey) -> Option<LeadStatus> {
        self.leads.get(id).map(|lead| status(id, lead))
    }

    /// Every open lead's place (no order).
    pub fn statuses(&self) -> impl Iterator<Item = LeadStatus> + '_ {
        self.leads.iter().map(|(id, lead)| status(id, lead))
    }

    /// Leads offered to or owned by `agent`.
    pub fn leads_open(&self, agent: &AgentId) -> u32 {
        self.agents.get(agent).map_or(0, |a| a.open)
    }

    /// Open leads on the desk.
    pub fn len(&self) -> usize {
        self.leads.len()
    }

    /// No open lead.
    pub fn is_empty(&self) -> bool {
        self.leads.is_empty()
    }

    /// Leads waiting for an agent.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    // ----- inside ----------------------------------------------------------

    fn lead_mut(&mut self, id: &LeadKey) -> Result<&mut DeskLead, DeskError> {
        self.leads
            .get_mut(id)
            .ok_or_else(|| DeskError::UnknownLead(id.to_string()))
    }

    /// Takes the lead out of its phase: out of the line, its offer or
    /// snooze timer cleared, its agent's count lowered. Leaves it `Waiting`
    /// but in no line: the caller puts it somewhere.
    fn leave_phase(&mut self, id: &LeadKey) {
        let Some(lead) = self.leads.get_mut(id) else {
            return;
        };
        let phase = std::mem::replace(&mut lead.phase, Phase::Waiting);
        match &phase {
            Phase::Waiting => {
                self.waiting
                    .remove(&(!lead.spec.urgent, lead.spec.created_at, id.clone()));
            }
            Phase::Offered { until, .. } => {
                self.timers.remove(&(*until, TimerKind::Offer, id.clone()));
            }
            Phase::Owned {
                snoozed_until: Some(until),
                ..
            } => {
                self.timers.remove(&(*until, TimerKind::Snooze, id.clone()));
            }
            Phase::Owned { .. } => {}
        }
        if let Some(agent) = phase.agent()
            && let Some(entry) = self.agents.get_mut(agent)
        {
            entry.open = entry.open.saturating_sub(1);
        }
    }

    /// Makes `agent` the owner (the lead is out of every phase).
    fn take(&mut self, id: &LeadKey, agent: &AgentId) {
        if let Some(lead) = self.leads.get_mut(id) {
            lead.phase = Phase::Owned {
                agent: agent.clone(),
                snoozed_until: None,
            };
            let entry = self.agents.entry(agent.clone()).or_default();
            entry.open = entry.open.saturating_add(1);
        }
    }

    /// Puts the lead back in line at its original age.
    fn requeue(&mut self, id: &LeadKey, passed: Option<AgentId>) {
        if let Some(lead) = self.leads.get_mut(id) {
            if let Some(agent) = passed
                && !lead.passed.contains(&agent)
            {
                lead.passed.push(agent);
            }
            self.waiting
                .insert((!lead.spec.urgent, lead.spec.created_at, id.clone()));
        }
    }

    fn expire_offer(&mut self, id: &LeadKey) {
        let Some(Phase::Offered { agent, .. }) = self.leads.get(id).map(|l| l.phase.clone()) else {
            return;
        };
        self.leave_phase(id);
        self.requeue(id, Some(agent.clone()));
        self.events.push_back(DeskEvent::OfferExpired {
            lead: id.clone(),
            agent,
        });
    }

    fn escalate(&mut self, id: &LeadKey) {
        let Some(lead) = self.leads.get_mut(id) else {
            return;
        };
        if lead.contacted || lead.escalated {
            return;
        }
        lead.escalated = true;
        let from = lead.phase.agent().cloned();
        self.leave_phase(id);
        self.requeue(id, from.clone());
        self.events.push_back(DeskEvent::Escalated {
            lead: id.clone(),
            from,
        });
    }

    fn wake(&mut self, id: &LeadKey) {
        let Some(lead) = self.leads.get_mut(id) else {
            return;
        };
        if let Phase::Owned {
            agent,
            snoozed_until: Some(_),
        } = &lead.phase
        {
            let agent = agent.clone();
            lead.phase = Phase::Owned {
                agent: agent.clone(),
                snoozed_until: None,
            };
            self.events.push_back(DeskEvent::SnoozeEnded {
                lead: id.clone(),
                agent,
            });
        }
    }

    /// The agents who may be offered a lead now, whatever its department.
    fn candidates(&self) -> Vec<Candidate> {
        self.table
            .snapshots()
            .into_iter()
            .filter_map(|snapshot| {
                let desk = self.agents.get(snapshot.id());
                let capacity = desk
                    .and_then(|a| a.capacity)
                    .unwrap_or(DEFAULT_LEAD_CAPACITY);
                let signed_in = snapshot.registered || desk.is_some_and(|a| a.sessions > 0);
                let open = desk.map_or(0, |a| a.open);
                (signed_in && snapshot.state != AgentState::Away && open < capacity).then(|| {
                    Candidate {
                        id: snapshot.id().clone(),
                        config: snapshot.config,
                        capacity,
                    }
                })
            })
            .collect()
    }

    /// Offers waiting leads, in line order, to the best agent each.
    ///
    /// Two phases: the line is walked (without copying it) to pair leads
    /// with agents, counting the offers each agent takes against their
    /// capacity, and stops as soon as no agent is left; then the pairs are
    /// applied. A department nobody can take is skipped for the rest of
    /// the walk, so a long line of leads nobody can take costs one lookup
    /// each, and none once every agent is full.
    fn distribute(&mut self, now: Millis) {
        if self.waiting.is_empty() {
            return;
        }
        let candidates = self.candidates();
        if candidates.is_empty() {
            return;
        }
        // Per candidate: leads held (with this pass's offers) and the
        // offer counter they would have.
        let mut held: Vec<(u32, u64)> = candidates
            .iter()
            .map(|c| {
                let desk = self.agents.get(&c.id);
                (desk.map_or(0, |a| a.open), desk.map_or(0, |a| a.last_offer))
            })
            .collect();
        let mut offers = self.offers;
        let mut unserved: HashSet<&str> = HashSet::new();
        let mut pairs: Vec<((bool, Millis, LeadKey), usize)> = Vec::new();
        let mut free = candidates.len();
        for key in self.waiting.iter() {
            if free == 0 {
                break;
            }
            let Some(lead) = self.leads.get(&key.2) else {
                continue;
            };
            if unserved.contains(lead.spec.department.as_str()) {
                continue;
            }
            let best = candidates
                .iter()
                .enumerate()
                .filter(|(at, c)| held[*at].0 < c.capacity && c.config.qualifies(&lead.spec.skills))
                .min_by_key(|(at, c)| {
                    let (open, last_offer) = held[*at];
                    let passed = lead.passed.contains(&c.id);
                    let other_branch = lead
                        .spec
                        .branch
                        .as_ref()
                        .is_some_and(|b| c.config.branch.as_ref() != Some(b));
                    // open / capacity, compared without division.
                    let load = u64::from(open) * 1_000_000 / u64::from(c.capacity.max(1));
                    (passed, other_branch, load, last_offer)
                })
                .map(|(at, _)| at);
            let Some(at) = best else {
                unserved.insert(lead.spec.department.as_str());
                continue;
            };
            offers += 1;
            held[at] = (held[at].0 + 1, offers);
            if held[at].0 >= candidates[at].capacity {
                free -= 1;
            }
            pairs.push((key.clone(), at));
        }
        for (key, at) in pairs {
            let id = key.2.clone();
            let agent = candidates[at].id.clone();
            let Some(lead) = self.leads.get_mut(&id) else {
                continue;
            };
            let until = now.saturating_add(lead.spec.accept_within);
            lead.phase = Phase::Offered {
                agent: agent.clone(),
                until,
            };
            self.waiting.remove(&key);
            self.offers += 1;
            let entry = self.agents.entry(agent.clone()).or_default();
            entry.open = entry.open.saturating_add(1);
            entry.last_offer = self.offers;
            self.timers.insert((until, TimerKind::Offer, id.clone()));
            self.events.push_back(DeskEvent::Offered {
                lead: id,
                agent,
                until,
            });
        }
    }
}

fn status(id: &LeadKey, lead: &DeskLead) -> LeadStatus {
    LeadStatus {
        id: id.clone(),
        phase: lead.phase.clone(),
        contacted: lead.contacted,
        escalated: lead.escalated,
        created_at: lead.spec.created_at,
        respond_by: lead.spec.respond_by,
        urgent: lead.spec.urgent,
    }
}

fn not_yours(id: &LeadKey) -> DeskError {
    DeskError::NotYours {
        lead: id.to_string(),
    }
}

fn wrong_state(id: &LeadKey, reason: &'static str) -> DeskError {
    DeskError::WrongState {
        lead: id.to_string(),
        reason,
    }
}
