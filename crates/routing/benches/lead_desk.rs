//! The lead desk beside the call path (issue 21).
//!
//! 1. `call_decision/without_leads` and `call_decision/with_10000_open_leads`:
//!    one call's routing decision (choose and claim an agent on the shared
//!    table, then release them) on 1,000 agents over 10 skills, without a
//!    desk, and with a [`LeadDesk`] on the same table holding 10,000 open
//!    leads (2,000 offered, 8,000 waiting). The desk only reads the table,
//!    so the two should match. `call_decision/second_table_without_leads`
//!    is the desk's table measured before the desk is made.
//! 2. `lead_desk/add_and_close_with_10000_open`: the desk's own decision
//!    for one new lead (its offer to the best agent) while 10,000 are open,
//!    then its close, which offers the next waiting lead.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock by definition

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use routing::{
    Actor, AgentConfig, AgentTable, LeadDesk, LeadKey, LeadSpec, Millis, Preferences,
    SkillRequirement, Strategy,
};

const AGENTS: usize = 1_000;
const SKILLS: usize = 10;
const LEADS: usize = 10_000;

fn table() -> Arc<AgentTable> {
    let table = Arc::new(AgentTable::new());
    let roster = (0..AGENTS)
        .map(|i| {
            AgentConfig::new(
                format!("{i:05}"),
                format!("agent {i}"),
                [format!("skill-{}", i % SKILLS)],
            )
        })
        .collect();
    if let Err(error) = table.replace_all(roster) {
        panic!("the bench roster is valid: {error}");
    }
    for snapshot in table.snapshots() {
        let _ = table.register(snapshot.id(), Millis::new(1));
    }
    table
}

fn spec(i: usize, now: Millis) -> LeadSpec {
    let skill = format!("skill-{}", i % SKILLS);
    LeadSpec {
        id: LeadKey::new(&format!("l-{i:08}")),
        skills: vec![SkillRequirement::new(skill.as_str())],
        department: skill,
        branch: None,
        urgent: i.is_multiple_of(10),
        created_at: now,
        respond_by: now.saturating_add(Duration::from_secs(300)),
        accept_within: Duration::from_secs(120),
    }
}

fn desk(table: &Arc<AgentTable>, now: Millis) -> LeadDesk {
    let mut desk = LeadDesk::new(Arc::clone(table));
    for i in 0..LEADS {
        if let Err(error) = desk.add(now, spec(i, now)) {
            panic!("a new lead: {error}");
        }
    }
    while desk.poll_event().is_some() {}
    desk
}

fn call_decision(c: &mut Criterion, name: &str, table: &AgentTable) {
    let selection = table.selection(&[SkillRequirement::new("skill-3")], Strategy::LongestIdle);
    let preferences = Preferences::default();
    let mut now = 2;
    c.bench_function(name, |b| {
        b.iter(|| {
            let claim = table.choose_and_claim(&selection, black_box(&preferences));
            let Some(claim) = claim else {
                panic!("an agent is free");
            };
            now += 1;
            let _ = table.release(&claim.agent, Millis::new(now));
            black_box(claim);
        })
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let now = Millis::new(1_000_000);

    let plain = table();
    call_decision(&mut c, "call_decision/without_leads", &plain);

    let shared = table();
    // The same table before the desk exists: tells the desk's share apart
    // from where the second table happens to sit in memory.
    call_decision(&mut c, "call_decision/second_table_without_leads", &shared);
    let mut busy = desk(&shared, now);
    assert_eq!(busy.len(), LEADS);
    println!(
        "desk: {} open leads, {} waiting, {} offered",
        busy.len(),
        busy.waiting(),
        busy.len() - busy.waiting()
    );
    call_decision(&mut c, "call_decision/with_10000_open_leads", &shared);

    let mut next = LEADS;
    c.bench_function("lead_desk/add_and_close_with_10000_open", |b| {
        b.iter(|| {
            let spec = spec(next, now);
            let id = spec.id.clone();
            next += 1;
            if let Err(error) = busy.add(now, spec) {
                panic!("a new lead: {error}");
            }
            if let Err(error) = busy.close(now, &id, &Actor::Admin) {
                panic!("close: {error}");
            }
            while let Some(event) = busy.poll_event() {
                black_box(event);
            }
        })
    });
    c.final_summary();
}
