//! Choosing and claiming an agent allocates nothing: counted with a
//! counting global allocator (`stats_alloc`), over thousands of decisions
//! with every strategy and with preferences.

use std::alloc::System;

use routing::{
    AgentConfig, AgentId, AgentTable, Branch, Language, Millis, Preferences, SkillRequirement,
    Strategy,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn choose_and_claim_allocates_nothing() {
    let table = AgentTable::new();
    let roster: Vec<_> = (0..2_000)
        .map(|n| {
            let mut config =
                AgentConfig::new(format!("{n:04}"), "agent", [format!("skill-{}", n % 20)]);
            config.branch = Some(Branch::new(if n % 2 == 0 { "north" } else { "south" }));
            config.languages = vec![Language::new(if n % 3 == 0 { "es" } else { "en" })];
            config
        })
        .collect();
    assert_eq!(table.replace_all(roster), Ok(()));
    for snapshot in table.snapshots() {
        assert!(table.register(snapshot.id(), Millis::new(1)).is_ok());
    }
    let strategies = [
        Strategy::LongestIdle,
        Strategy::RoundRobin,
        Strategy::FewestCalls,
        Strategy::SkillLevel,
        Strategy::Capacity,
    ];
    let selections: Vec<_> = (0..20)
        .flat_map(|s| {
            let table = &table;
            strategies.iter().map(move |strategy| {
                table.selection(&[SkillRequirement::new(format!("skill-{s}"))], *strategy)
            })
        })
        .collect();
    let (north, spanish) = (Branch::new("north"), Language::new("es"));
    let avoid = [AgentId::new("0000"), AgentId::new("0020")];
    let preferences = Preferences {
        branch: Some(&north),
        language: Some(&spanish),
        avoid: &avoid,
    };
    let decide = |round: u64| {
        for (n, selection) in selections.iter().enumerate() {
            let preferences = if n % 2 == 0 {
                Preferences::default()
            } else {
                preferences
            };
            let Some(claim) = table.choose_and_claim(selection, &preferences) else {
                panic!("an agent is available");
            };
            assert!(table.miss(&claim.agent, Millis::new(round), 0).is_ok());
        }
    };
    decide(1); // warm-up: arc-swap's thread-local state is made once per thread
    let region = Region::new(GLOBAL);
    for round in 2..52 {
        decide(round);
    }
    let change = region.change();
    assert_eq!(
        (change.allocations, change.reallocations),
        (0, 0),
        "{} decisions allocated",
        50 * selections.len()
    );
}
