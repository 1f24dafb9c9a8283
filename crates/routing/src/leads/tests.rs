//! The lead desk on a virtual clock: time jumps to the desk's next
//! deadline, never sleeps; an invariant (one holder per lead, counts that
//! match) is checked after every step.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::{AgentConfig, SkillRequirement};

const ACCEPT: Duration = Duration::from_secs(120);
const RESPOND: Duration = Duration::from_secs(300);

struct Harness {
    table: Arc<AgentTable>,
    desk: LeadDesk,
    now: Millis,
    events: Vec<DeskEvent>,
}

fn agent(id: &str) -> AgentId {
    AgentId::new(id)
}

fn key(id: &str) -> LeadKey {
    LeadKey::new(id)
}

impl Harness {
    /// Dan (1004, orthopedics, south), Gina (1008, orthopedics, north),
    /// Carol (1003, pediatrics, south).
    fn new() -> Self {
        let table = Arc::new(AgentTable::new());
        table
            .replace_all(vec![
                AgentConfig::new("1004", "Dan", ["orthopedics", "dermatology"])
                    .with_branch("south"),
                AgentConfig::new("1008", "Gina", ["orthopedics"]).with_branch("north"),
                AgentConfig::new("1003", "Carol", ["pediatrics"]).with_branch("south"),
            ])
            .unwrap();
        let desk = LeadDesk::new(Arc::clone(&table));
        Harness {
            table,
            desk,
            now: Millis::new(1_000_000),
            events: Vec::new(),
        }
    }

    fn register(&mut self, id: &str) {
        self.table.register(&agent(id), self.now).unwrap();
        self.desk.agents_changed(self.now);
        self.drain();
    }

    fn lead(&mut self, id: &str, department: &str, branch: Option<&str>, urgent: bool) {
        let spec = LeadSpec {
            id: key(id),
            skills: vec![SkillRequirement::new(department)],
            department: department.to_string(),
            branch: branch.map(Branch::new),
            urgent,
            created_at: self.now,
            respond_by: self.now.saturating_add(RESPOND),
            accept_within: ACCEPT,
        };
        self.desk.add(self.now, spec).unwrap();
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(event) = self.desk.poll_event() {
            self.events.push(event);
        }
        self.check();
    }

    /// Jumps to the next deadline and handles it.
    fn step(&mut self) -> Millis {
        let at = self.desk.poll_timeout().expect("a deadline");
        assert!(at >= self.now, "deadlines never go back");
        self.now = at;
        self.desk.handle_timeout(at);
        self.drain();
        at
    }

    fn advance(&mut self, by: Duration) {
        let to = self.now.saturating_add(by);
        while self.desk.poll_timeout().is_some_and(|at| at <= to) {
            self.step();
        }
        self.now = to;
        self.desk.handle_timeout(to);
        self.drain();
    }

    fn holder(&self, id: &str) -> Option<AgentId> {
        self.desk
            .status(&key(id))
            .and_then(|s| s.phase.agent().cloned())
    }

    fn take_events(&mut self) -> Vec<DeskEvent> {
        std::mem::take(&mut self.events)
    }

    /// Every agent's count is the number of leads they hold; no lead is
    /// both waiting and held.
    fn check(&self) {
        let mut held: HashMap<AgentId, u32> = HashMap::new();
        for status in self.desk.statuses() {
            if let Some(agent) = status.phase.agent() {
                *held.entry(agent.clone()).or_default() += 1;
            }
        }
        for id in ["1003", "1004", "1008"] {
            let id = agent(id);
            assert_eq!(
                self.desk.leads_open(&id),
                held.get(&id).copied().unwrap_or(0),
                "count of {id}"
            );
        }
        let holders = self
            .desk
            .statuses()
            .filter(|s| s.phase != Phase::Waiting)
            .count();
        assert_eq!(holders + self.desk.waiting(), self.desk.len());
    }
}

fn offered(lead: &str, to: &str) -> impl Fn(&DeskEvent) -> bool {
    let (lead, to) = (key(lead), agent(to));
    move |event| matches!(event, DeskEvent::Offered { lead: l, agent: a, .. } if *l == lead && *a == to)
}

#[test]
fn a_lead_is_offered_to_one_agent_of_its_branch_first() {
    let mut h = Harness::new();
    h.register("1008");
    h.register("1004");
    h.lead("l-knee", "orthopedics", Some("south"), false);
    let events = h.take_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(offered("l-knee", "1004")(&events[0]));
    // The offer never touches the call state.
    assert_eq!(h.table.state(&agent("1004")), Some(AgentState::Available));
    assert_eq!(h.desk.leads_open(&agent("1004")), 1);
}

#[test]
fn not_accepted_in_time_goes_to_the_next_agent() {
    let mut h = Harness::new();
    h.register("1004");
    h.register("1008");
    h.lead("l-knee", "orthopedics", Some("south"), false);
    h.take_events();
    let at = h.step();
    assert_eq!(at, Millis::new(1_000_000).saturating_add(ACCEPT));
    let events = h.take_events();
    assert!(matches!(&events[0], DeskEvent::OfferExpired { agent: a, .. } if *a == agent("1004")));
    assert!(offered("l-knee", "1008")(&events[1]), "{events:?}");
    assert_eq!(h.desk.leads_open(&agent("1004")), 0);
    // Accepting an offer that went elsewhere is refused.
    assert!(matches!(
        h.desk
            .accept(h.now, &key("l-knee"), &Actor::Agent(agent("1004"))),
        Err(DeskError::NotYours { .. })
    ));
    h.desk
        .accept(h.now, &key("l-knee"), &Actor::Agent(agent("1008")))
        .unwrap();
    h.drain();
    assert!(matches!(
        h.desk.status(&key("l-knee")).unwrap().phase,
        Phase::Owned { .. }
    ));
}

#[test]
fn capacity_is_respected_and_calls_do_not_count() {
    let mut h = Harness::new();
    h.register("1004");
    h.desk.set_capacity(h.now, &agent("1004"), 2);
    // On a call: still offered leads.
    let claim = h.table.claim(&agent("1004")).unwrap();
    h.table.answer(&claim.agent, h.now).unwrap();
    for id in ["l-1", "l-2", "l-3"] {
        h.lead(id, "orthopedics", None, false);
    }
    assert_eq!(h.desk.leads_open(&agent("1004")), 2);
    assert_eq!(h.holder("l-3"), None);
    assert_eq!(h.desk.waiting(), 1);
    assert_eq!(h.table.state(&agent("1004")), Some(AgentState::OnCall));
    // One closed: the third comes to them.
    h.desk
        .accept(h.now, &key("l-1"), &Actor::Agent(agent("1004")))
        .unwrap();
    h.desk
        .close(h.now, &key("l-1"), &Actor::Agent(agent("1004")))
        .unwrap();
    h.drain();
    assert_eq!(h.holder("l-3"), Some(agent("1004")));
}

#[test]
fn urgent_leads_are_offered_first_and_nobody_waits_in_order() {
    let mut h = Harness::new();
    h.lead("l-old", "orthopedics", None, false);
    h.now = h.now.saturating_add(Duration::from_secs(1));
    h.lead("l-newer", "orthopedics", None, false);
    h.now = h.now.saturating_add(Duration::from_secs(1));
    h.lead("l-urgent", "orthopedics", None, true);
    // No agent: everything waits, nothing offered.
    assert!(h.take_events().is_empty());
    assert_eq!(h.desk.waiting(), 3);
    h.desk.set_capacity(h.now, &agent("1004"), 1);
    h.register("1004");
    let events = h.take_events();
    assert_eq!(events.len(), 1);
    assert!(offered("l-urgent", "1004")(&events[0]), "{events:?}");
    h.desk.set_capacity(h.now, &agent("1004"), 3);
    h.drain();
    let events = h.take_events();
    assert!(offered("l-old", "1004")(&events[0]), "{events:?}");
    assert!(offered("l-newer", "1004")(&events[1]), "{events:?}");
}

#[test]
fn an_away_agent_is_skipped_and_a_browser_session_signs_in() {
    let mut h = Harness::new();
    h.register("1004");
    h.table
        .set_state(&agent("1004"), crate::RequestedState::Away, h.now)
        .unwrap();
    h.desk.agents_changed(h.now);
    h.lead("l-knee", "orthopedics", None, false);
    assert!(h.take_events().is_empty());
    // Gina has no phone, but the /agent page is open.
    h.desk.session_opened(h.now, &agent("1008"));
    h.drain();
    assert_eq!(h.holder("l-knee"), Some(agent("1008")));
}

#[test]
fn round_robin_among_equals() {
    let mut h = Harness::new();
    h.register("1004");
    h.register("1008");
    h.desk.set_capacity(h.now, &agent("1004"), 10);
    h.desk.set_capacity(h.now, &agent("1008"), 10);
    for id in ["l-1", "l-2", "l-3", "l-4"] {
        h.lead(id, "orthopedics", None, false);
    }
    let mut by_agent: HashMap<AgentId, u32> = HashMap::new();
    for event in h.take_events() {
        if let DeskEvent::Offered { agent, .. } = event {
            *by_agent.entry(agent).or_default() += 1;
        }
    }
    assert_eq!(by_agent.get(&agent("1004")), Some(&2));
    assert_eq!(by_agent.get(&agent("1008")), Some(&2));
}

#[test]
fn escalation_at_respond_by_reoffers_keeping_its_age() {
    let mut h = Harness::new();
    h.register("1004");
    h.register("1008");
    h.desk.set_capacity(h.now, &agent("1008"), 5);
    let created = h.now;
    h.lead("l-knee", "orthopedics", Some("south"), false);
    h.desk
        .accept(h.now, &key("l-knee"), &Actor::Agent(agent("1004")))
        .unwrap();
    h.drain();
    // A newer lead waits behind it (Dan is at capacity 2 with one more).
    h.now = h.now.saturating_add(Duration::from_secs(10));
    h.take_events();
    h.advance(RESPOND);
    let events = h.take_events();
    let escalated = events
        .iter()
        .position(
            |e| matches!(e, DeskEvent::Escalated { from: Some(a), .. } if *a == agent("1004")),
        )
        .expect("escalated");
    let reoffer = events
        .iter()
        .position(offered("l-knee", "1008"))
        .expect("offered to the next agent");
    assert!(escalated < reoffer);
    let status = h.desk.status(&key("l-knee")).unwrap();
    assert!(status.escalated);
    assert_eq!(status.created_at, created, "keeps its age");
    // Escalated once only.
    h.advance(Duration::from_secs(3600));
    assert!(
        !h.take_events()
            .iter()
            .any(|e| matches!(e, DeskEvent::Escalated { .. }))
    );
}

#[test]
fn contacted_stops_the_respond_by_timer() {
    let mut h = Harness::new();
    h.register("1004");
    h.lead("l-knee", "orthopedics", None, false);
    h.desk
        .contacted(h.now, &key("l-knee"), &agent("1004"))
        .unwrap();
    h.drain();
    let events = h.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, DeskEvent::Accepted { .. }))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, DeskEvent::Contacted { .. }))
    );
    assert_eq!(h.desk.poll_timeout(), None);
    // Someone else cannot take it.
    assert!(
        h.desk
            .contacted(h.now, &key("l-knee"), &agent("1008"))
            .is_err()
    );
}

#[test]
fn snooze_returns_to_its_owner() {
    let mut h = Harness::new();
    h.register("1004");
    h.register("1008");
    h.lead("l-knee", "orthopedics", None, false);
    let owner = h.holder("l-knee").unwrap();
    h.desk
        .accept(h.now, &key("l-knee"), &Actor::Agent(owner.clone()))
        .unwrap();
    h.desk.contacted(h.now, &key("l-knee"), &owner).unwrap();
    let until = h.now.saturating_add(Duration::from_secs(1800));
    h.desk
        .snooze(h.now, &key("l-knee"), &Actor::Agent(owner.clone()), until)
        .unwrap();
    h.drain();
    h.take_events();
    assert_eq!(h.step(), until);
    let events = h.take_events();
    assert_eq!(
        events,
        vec![DeskEvent::SnoozeEnded {
            lead: key("l-knee"),
            agent: owner.clone()
        }]
    );
    assert_eq!(
        h.desk.status(&key("l-knee")).unwrap().phase,
        Phase::Owned {
            agent: owner,
            snoozed_until: None
        }
    );
}

#[test]
fn the_admin_reassigns() {
    let mut h = Harness::new();
    h.register("1004");
    h.lead("l-knee", "orthopedics", None, false);
    h.take_events();
    h.desk
        .assign(h.now, &key("l-knee"), &agent("1008"))
        .unwrap();
    h.drain();
    assert_eq!(
        h.take_events(),
        vec![DeskEvent::Assigned {
            lead: key("l-knee"),
            agent: agent("1008"),
            from: Some(agent("1004")),
        }]
    );
    assert_eq!(h.desk.leads_open(&agent("1004")), 0);
    assert_eq!(h.desk.leads_open(&agent("1008")), 1);
    assert!(
        h.desk
            .assign(h.now, &key("l-knee"), &agent("9999"))
            .is_err()
    );
    // The offer's timer went with it: nothing expires later.
    assert!(
        h.desk
            .poll_timeout()
            .is_some_and(|at| at > h.now.saturating_add(ACCEPT))
    );
}

#[test]
fn a_restart_keeps_owners_and_deadlines() {
    let mut h = Harness::new();
    h.register("1004");
    h.register("1008");
    h.lead("l-offered", "orthopedics", Some("south"), false);
    h.lead("l-owned", "orthopedics", Some("north"), false);
    h.desk
        .accept(h.now, &key("l-owned"), &Actor::Agent(agent("1008")))
        .unwrap();
    h.drain();
    // What the journal keeps, put back into a new desk.
    let restored: Vec<RestoredLead> = h
        .desk
        .statuses()
        .map(|status| RestoredLead {
            spec: LeadSpec {
                id: status.id.clone(),
                skills: vec![SkillRequirement::new("orthopedics")],
                department: "orthopedics".into(),
                branch: None,
                urgent: status.urgent,
                created_at: status.created_at,
                respond_by: status.respond_by,
                accept_within: ACCEPT,
            },
            owner: status.phase.agent().cloned(),
            offered_until: match status.phase {
                Phase::Offered { until, .. } => Some(until),
                _ => None,
            },
            contacted: status.contacted,
            escalated: status.escalated,
            snoozed_until: None,
        })
        .collect();
    let mut desk = LeadDesk::new(Arc::clone(&h.table));
    for lead in restored {
        desk.restore(lead).unwrap();
    }
    assert_eq!(desk.leads_open(&agent("1004")), 1);
    assert_eq!(desk.leads_open(&agent("1008")), 1);
    assert_eq!(desk.poll_timeout(), h.desk.poll_timeout());
    assert_eq!(
        desk.status(&key("l-offered")).unwrap().phase,
        h.desk.status(&key("l-offered")).unwrap().phase
    );
    // The offer's deadline still holds after the restart.
    let at = desk.poll_timeout().unwrap();
    desk.handle_timeout(at);
    assert!(matches!(
        desk.poll_event(),
        Some(DeskEvent::OfferExpired { agent: a, .. }) if a == agent("1004")
    ));
}
