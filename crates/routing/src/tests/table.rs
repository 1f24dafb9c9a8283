//! The agent availability table: registration rules, transitions,
//! strategies, preferences, indexes and reconfiguration.

use super::util::*;
use crate::*;

fn table_with(agents: Vec<AgentConfig>) -> AgentTable {
    let table = AgentTable::new();
    for config in agents {
        assert_eq!(table.upsert(config), Ok(()));
    }
    table
}

fn signed_in(table: &AgentTable, ids: &[&str], now: Millis) {
    for id in ids {
        assert!(table.register(&agent(id), now).is_ok());
    }
}

fn pool(ids: &[&str], skill: &str) -> Vec<AgentConfig> {
    ids.iter()
        .map(|id| AgentConfig::new(*id, *id, [skill]))
        .collect()
}

fn choose(table: &AgentTable, selection: &Selection) -> Option<String> {
    table
        .choose_and_claim(selection, &Preferences::default())
        .map(|c| c.agent.to_string())
}

#[test]
fn registration_follows_design() {
    let table = table_with(demo_agents());
    let carol = agent("1003");
    assert_eq!(table.state(&carol), Some(AgentState::Offline));
    let first = table.register(&carol, secs(1));
    assert_eq!(
        first.map(|t| (t.from, t.to)),
        Ok((AgentState::Offline, AgentState::Available))
    );
    // A refresh changes nothing, whatever the state.
    let refresh = table.register(&carol, secs(2));
    assert_eq!(refresh.map(|t| t.changed()), Ok(false));
    assert_eq!(table.snapshot(&carol).map(|s| s.since), Some(secs(1)));
    assert!(
        table
            .set_state(&carol, RequestedState::Away, secs(3))
            .is_ok()
    );
    assert_eq!(
        table.register(&carol, secs(4)).map(|t| t.changed()),
        Ok(false)
    );
    assert_eq!(table.state(&carol), Some(AgentState::Away));
    assert!(
        table
            .set_state(&carol, RequestedState::Available, secs(5))
            .is_ok()
    );
    assert!(table.claim(&carol).is_ok());
    assert_eq!(
        table.register(&carol, secs(6)).map(|t| t.changed()),
        Ok(false)
    );
    assert_eq!(table.state(&carol), Some(AgentState::Ringing));
    assert!(table.answer(&carol, secs(7)).is_ok());
    assert_eq!(
        table.register(&carol, secs(8)).map(|t| t.changed()),
        Ok(false)
    );
    assert!(table.end_call(&carol, secs(9)).is_ok());
    assert_eq!(
        table.register(&carol, secs(10)).map(|t| t.changed()),
        Ok(false)
    );
    assert_eq!(table.state(&carol), Some(AgentState::WrapUp));
    // Expiry makes a wrapping-up agent offline.
    let expired = table.unregister(&carol, secs(11));
    assert_eq!(expired.map(|t| t.to), Ok(AgentState::Offline));
    assert_eq!(
        table.unregister(&carol, secs(12)).map(|t| t.changed()),
        Ok(false)
    );
    assert_eq!(
        table.register(&agent("9999"), secs(1)),
        Err(RoutingError::UnknownAgent(agent("9999")))
    );
}

#[test]
fn a_call_outlives_its_registration() {
    let table = table_with(demo_agents());
    let carol = agent("1003");
    signed_in(&table, &["1003"], secs(0));
    assert!(table.claim(&carol).is_ok());
    assert!(table.answer(&carol, secs(1)).is_ok());
    let unregistered = table.unregister(&carol, secs(2));
    assert_eq!(unregistered.map(|t| t.to), Ok(AgentState::OnCall));
    let snapshot = table.snapshot(&carol);
    assert_eq!(snapshot.as_ref().map(|s| s.registered), Some(false));
    let ended = table.end_call(&carol, secs(3));
    assert_eq!(ended.map(|t| t.to), Ok(AgentState::Offline));
    // A ringing agent who unregisters goes offline when the ring ends.
    let dan = agent("1004");
    signed_in(&table, &["1004"], secs(0));
    assert!(table.claim(&dan).is_ok());
    assert!(table.unregister(&dan, secs(1)).is_ok());
    assert_eq!(table.state(&dan), Some(AgentState::Ringing));
    assert_eq!(
        table.miss(&dan, secs(2), 3).map(|t| t.to),
        Ok(AgentState::Offline)
    );
}

#[test]
fn claims_are_exclusive_and_transitions_check_the_state() {
    let table = table_with(demo_agents());
    let bob = agent("1002");
    assert!(matches!(
        table.claim(&bob),
        Err(RoutingError::WrongState {
            state: AgentState::Offline,
            ..
        })
    ));
    signed_in(&table, &["1002"], secs(0));
    assert!(table.claim(&bob).is_ok());
    assert!(matches!(
        table.claim(&bob),
        Err(RoutingError::WrongState {
            state: AgentState::Ringing,
            ..
        })
    ));
    let selection = table.selection(
        &[SkillRequirement::new("cardiology")],
        Strategy::LongestIdle,
    );
    assert_eq!(choose(&table, &selection), None);
    assert!(table.end_call(&bob, secs(1)).is_err());
    assert!(table.finish_wrap_up(&bob, secs(0), secs(1)).is_err());
    assert!(table.answer(&bob, secs(1)).is_ok());
    assert!(table.answer(&bob, secs(1)).is_err());
    assert_eq!(table.snapshot(&bob).map(|s| s.calls_today), Some(1));
}

#[test]
fn misses_in_a_row_put_an_agent_away() {
    let table = table_with(demo_agents());
    let alice = agent("1001");
    signed_in(&table, &["1001"], secs(0));
    for round in 1..=2 {
        assert!(table.claim(&alice).is_ok());
        assert_eq!(
            table.miss(&alice, secs(round), 3).map(|t| t.to),
            Ok(AgentState::Available)
        );
    }
    // An answer in between starts the count again.
    assert!(table.claim(&alice).is_ok());
    assert!(table.answer(&alice, secs(3)).is_ok());
    assert!(table.end_call(&alice, secs(4)).is_ok());
    assert!(table.finish_wrap_up(&alice, secs(4), secs(6)).is_ok());
    for round in 1..=3 {
        assert!(table.claim(&alice).is_ok());
        let expected = if round == 3 {
            AgentState::Away
        } else {
            AgentState::Available
        };
        assert_eq!(
            table.miss(&alice, secs(10 + round), 3).map(|t| t.to),
            Ok(expected)
        );
    }
    assert_eq!(
        table.snapshot(&alice).map(|s| s.consecutive_misses),
        Some(3)
    );
    assert!(
        table
            .set_state(&alice, RequestedState::Available, secs(20))
            .is_ok()
    );
    assert_eq!(
        table.snapshot(&alice).map(|s| s.consecutive_misses),
        Some(0)
    );
    // With 0, never.
    for round in 0..10 {
        assert!(table.claim(&alice).is_ok());
        assert_eq!(
            table.miss(&alice, secs(30 + round), 0).map(|t| t.to),
            Ok(AgentState::Available)
        );
    }
}

#[test]
fn release_keeps_the_place_in_the_idle_line_but_a_miss_does_not() {
    let table = table_with(pool(&["a", "b"], "x"));
    signed_in(&table, &["a"], secs(1));
    signed_in(&table, &["b"], secs(2));
    let selection = table.selection(&[SkillRequirement::new("x")], Strategy::LongestIdle);
    assert_eq!(choose(&table, &selection).as_deref(), Some("a"));
    assert!(table.release(&agent("a"), secs(3)).is_ok());
    assert_eq!(table.snapshot(&agent("a")).map(|s| s.since), Some(secs(1)));
    assert_eq!(choose(&table, &selection).as_deref(), Some("a"));
    assert!(table.miss(&agent("a"), secs(4), 3).is_ok());
    assert_eq!(choose(&table, &selection).as_deref(), Some("b"));
}

#[test]
fn wrap_up_ends_on_time_or_early_and_stale_ends_do_nothing() {
    let table = table_with(pool(&["a"], "x"));
    let a = agent("a");
    signed_in(&table, &["a"], secs(0));
    assert!(table.claim(&a).is_ok());
    assert!(table.answer(&a, secs(1)).is_ok());
    assert_eq!(
        table.end_call(&a, secs(5)).map(|t| t.to),
        Ok(AgentState::WrapUp)
    );
    assert_eq!(
        table.snapshot(&a).and_then(|s| s.last_call_ended_at),
        Some(secs(5))
    );
    // The agent is done early.
    assert!(
        table
            .set_state(&a, RequestedState::Available, secs(6))
            .is_ok()
    );
    assert!(table.claim(&a).is_ok());
    assert!(table.answer(&a, secs(7)).is_ok());
    assert!(table.end_call(&a, secs(8)).is_ok());
    // The first wrap-up's end must not cut the second one short.
    assert!(table.finish_wrap_up(&a, secs(5), secs(7)).is_err());
    assert_eq!(table.state(&a), Some(AgentState::WrapUp));
    assert_eq!(
        table.finish_wrap_up(&a, secs(8), secs(10)).map(|t| t.to),
        Ok(AgentState::Available)
    );
}

#[test]
fn away_asked_during_a_call_happens_after_wrap_up() {
    let table = table_with(pool(&["a"], "x"));
    let a = agent("a");
    signed_in(&table, &["a"], secs(0));
    assert!(table.claim(&a).is_ok());
    assert!(table.answer(&a, secs(1)).is_ok());
    let asked = table.set_state(&a, RequestedState::Away, secs(2));
    assert_eq!(asked.map(|t| t.to), Ok(AgentState::OnCall));
    assert_eq!(table.snapshot(&a).map(|s| s.away_after_call), Some(true));
    assert!(table.end_call(&a, secs(3)).is_ok());
    assert_eq!(
        table.finish_wrap_up(&a, secs(3), secs(5)).map(|t| t.to),
        Ok(AgentState::Away)
    );
    // Changing their mind cancels it.
    assert!(
        table
            .set_state(&a, RequestedState::Available, secs(6))
            .is_ok()
    );
    assert!(table.claim(&a).is_ok());
    assert!(table.set_state(&a, RequestedState::Away, secs(7)).is_ok());
    assert!(
        table
            .set_state(&a, RequestedState::Available, secs(7))
            .is_ok()
    );
    assert_eq!(
        table.release(&a, secs(8)).map(|t| t.to),
        Ok(AgentState::Available)
    );
    // A released agent who asked for away goes away.
    assert!(table.claim(&a).is_ok());
    assert!(table.set_state(&a, RequestedState::Away, secs(9)).is_ok());
    assert_eq!(
        table.release(&a, secs(10)).map(|t| t.to),
        Ok(AgentState::Away)
    );
    // Offline agents cannot ask anything.
    assert!(table.unregister(&a, secs(11)).is_ok());
    assert!(matches!(
        table.set_state(&a, RequestedState::Available, secs(12)),
        Err(RoutingError::WrongState {
            state: AgentState::Offline,
            ..
        })
    ));
    assert_eq!(
        RequestedState::from_name("away"),
        Some(RequestedState::Away)
    );
    assert_eq!(RequestedState::from_name("on_call"), None);
}

#[test]
fn longest_idle_picks_the_earliest_idle() {
    let table = table_with(pool(&["a", "b", "c"], "x"));
    signed_in(&table, &["b"], secs(1));
    signed_in(&table, &["c"], secs(2));
    signed_in(&table, &["a"], secs(3));
    let selection = table.selection(&[SkillRequirement::new("x")], Strategy::LongestIdle);
    let order: Vec<_> = std::iter::from_fn(|| choose(&table, &selection)).collect();
    assert_eq!(order, ["b", "c", "a"]);
}

#[test]
fn round_robin_takes_turns_and_skips_busy_agents() {
    let table = table_with(pool(&["a", "b", "c", "d"], "x"));
    signed_in(&table, &["a", "b", "c", "d"], secs(0));
    let selection = table.selection(&[SkillRequirement::new("x")], Strategy::RoundRobin);
    let mut order = Vec::new();
    for round in 0..8 {
        let chosen = choose(&table, &selection).unwrap_or_default();
        assert!(table.release(&agent(&chosen), secs(round)).is_ok());
        order.push(chosen);
    }
    assert_eq!(order, ["a", "b", "c", "d", "a", "b", "c", "d"]);
    // c is busy: after b comes d, then a.
    assert!(table.claim(&agent("c")).is_ok());
    let next: Vec<_> = (0..3)
        .map(|_| {
            let chosen = choose(&table, &selection).unwrap_or_default();
            assert!(table.release(&agent(&chosen), secs(9)).is_ok());
            chosen
        })
        .collect();
    assert_eq!(next, ["a", "b", "d"]);
}

#[test]
fn fewest_calls_then_longest_idle() {
    let table = table_with(pool(&["a", "b", "c"], "x"));
    signed_in(&table, &["a", "b", "c"], secs(0));
    for (id, calls) in [("a", 2), ("b", 0), ("c", 1)] {
        for n in 0..calls {
            assert!(table.claim(&agent(id)).is_ok());
            assert!(table.answer(&agent(id), secs(n)).is_ok());
            assert!(table.end_call(&agent(id), secs(n)).is_ok());
            assert!(
                table
                    .set_state(&agent(id), RequestedState::Available, secs(n))
                    .is_ok()
            );
        }
    }
    let selection = table.selection(&[SkillRequirement::new("x")], Strategy::FewestCalls);
    let order: Vec<_> = std::iter::from_fn(|| choose(&table, &selection)).collect();
    assert_eq!(order, ["b", "c", "a"]);
    table.reset_daily_counters();
    assert_eq!(table.snapshot(&agent("a")).map(|s| s.calls_today), Some(0));
}

#[test]
fn skill_level_prefers_the_best_then_the_longest_idle() {
    let mut agents = pool(&["novice", "expert", "senior"], "x");
    agents[1].skills[0].level = SkillLevel::MAX;
    agents[2].skills[0].level = SkillLevel::MAX;
    let table = table_with(agents);
    signed_in(&table, &["novice"], secs(0));
    signed_in(&table, &["senior"], secs(1));
    signed_in(&table, &["expert"], secs(2));
    let selection = table.selection(&[SkillRequirement::new("x")], Strategy::SkillLevel);
    let order: Vec<_> = std::iter::from_fn(|| choose(&table, &selection)).collect();
    assert_eq!(order, ["senior", "expert", "novice"]);
}

#[test]
fn capacity_shares_calls_by_weight() {
    let mut agents = pool(&["one", "two", "four"], "x");
    agents[1].capacity = 2;
    agents[2].capacity = 4;
    let table = table_with(agents);
    signed_in(&table, &["one", "two", "four"], secs(0));
    let selection = table.selection(&[SkillRequirement::new("x")], Strategy::Capacity);
    let mut taken = std::collections::HashMap::new();
    for n in 0..70 {
        let chosen = choose(&table, &selection).unwrap_or_default();
        let id = agent(&chosen);
        assert!(table.answer(&id, secs(n)).is_ok());
        assert!(table.end_call(&id, secs(n)).is_ok());
        assert!(
            table
                .set_state(&id, RequestedState::Available, secs(n))
                .is_ok()
        );
        *taken.entry(chosen).or_insert(0) += 1;
    }
    assert_eq!(taken.get("one"), Some(&10));
    assert_eq!(taken.get("two"), Some(&20));
    assert_eq!(taken.get("four"), Some(&40));
}

#[test]
fn preferences_rank_language_then_branch_and_avoid_last() {
    let mut agents = pool(&["north-en", "south-es", "north-es"], "x");
    agents[0].branch = Some(Branch::new("north"));
    agents[0].languages = vec![Language::new("en")];
    agents[1].branch = Some(Branch::new("south"));
    agents[1].languages = vec![Language::new("es")];
    agents[2].branch = Some(Branch::new("north"));
    agents[2].languages = vec![Language::new("es")];
    let table = table_with(agents);
    signed_in(&table, &["north-en", "south-es", "north-es"], secs(0));
    let selection = table.selection(&[SkillRequirement::new("x")], Strategy::LongestIdle);
    let (north, es) = (Branch::new("north"), Language::new("es"));
    let avoid = [agent("north-es")];
    let pick = |preferences: Preferences<'_>| {
        let claim = table.choose_and_claim(&selection, &preferences);
        let id = claim.map(|c| c.agent.to_string()).unwrap_or_default();
        assert!(table.release(&agent(&id), secs(1)).is_ok());
        id
    };
    let both = Preferences {
        branch: Some(&north),
        language: Some(&es),
        avoid: &[],
    };
    assert_eq!(pick(both), "north-es");
    let language_first = Preferences {
        avoid: &avoid,
        ..both
    };
    assert_eq!(pick(language_first), "south-es");
    let branch_only = Preferences {
        branch: Some(&north),
        language: None,
        avoid: &avoid,
    };
    assert_eq!(pick(branch_only), "north-en");
    // Avoided agents are still chosen when nobody else is free.
    for id in ["north-en", "south-es"] {
        assert!(table.claim(&agent(id)).is_ok());
    }
    assert_eq!(pick(language_first), "north-es");
}

#[test]
fn queues_require_every_skill_at_its_level() {
    let mut agents = vec![
        AgentConfig::new("both", "both", ["dermatology", "orthopedics"]),
        AgentConfig::new("derm", "derm", ["dermatology"]),
        AgentConfig::new("weak", "weak", ["dermatology", "orthopedics"]),
    ];
    agents[0].skills[1].level = SkillLevel::new(5).unwrap_or_default();
    let table = table_with(agents);
    signed_in(&table, &["both", "derm", "weak"], secs(0));
    let requirements = [
        SkillRequirement::new("dermatology"),
        SkillRequirement {
            skill: Skill::new("orthopedics"),
            min_level: SkillLevel::new(3).unwrap_or_default(),
        },
    ];
    let selection = table.selection(&requirements, Strategy::LongestIdle);
    assert_eq!(choose(&table, &selection).as_deref(), Some("both"));
    assert_eq!(choose(&table, &selection), None);
    assert!(table.qualifies(&agent("both"), &selection));
    assert!(!table.qualifies(&agent("weak"), &selection));
    let counts = table.counts(&selection);
    assert_eq!(
        (counts.in_state(AgentState::Ringing), counts.signed_in()),
        (1, 1)
    );
    // A skill nobody has yet: empty, until an agent gets it.
    let later = table.selection(
        &[SkillRequirement::new("cardiology")],
        Strategy::LongestIdle,
    );
    assert_eq!(choose(&table, &later), None);
    assert_eq!(
        table.upsert(AgentConfig::new("bob", "Bob", ["cardiology"])),
        Ok(())
    );
    signed_in(&table, &["bob"], secs(1));
    assert_eq!(choose(&table, &later).as_deref(), Some("bob"));
}

#[test]
fn reconfiguration_keeps_states_and_moves_indexes() {
    let table = table_with(pool(&["a", "b"], "x"));
    signed_in(&table, &["a", "b"], secs(0));
    assert!(table.claim(&agent("a")).is_ok());
    let x = table.selection(&[SkillRequirement::new("x")], Strategy::LongestIdle);
    let y = table.selection(&[SkillRequirement::new("y")], Strategy::LongestIdle);
    // b moves from x to y; a stays ringing; c is new.
    let replaced = table.replace_all(vec![
        AgentConfig::new("a", "a", ["x"]),
        AgentConfig::new("b", "b", ["y"]),
        AgentConfig::new("c", "c", ["x"]),
    ]);
    assert_eq!(replaced, Ok(()));
    assert_eq!(table.state(&agent("a")), Some(AgentState::Ringing));
    assert_eq!(table.state(&agent("c")), Some(AgentState::Offline));
    assert_eq!(choose(&table, &x), None);
    assert_eq!(choose(&table, &y).as_deref(), Some("b"));
    // Removal drops an agent from its indexes.
    assert!(table.remove(&agent("a")));
    assert!(!table.remove(&agent("a")));
    assert_eq!(table.counts(&x).in_state(AgentState::Ringing), 0);
    assert_eq!(table.len(), 2);
    let ids: Vec<_> = table
        .snapshots()
        .iter()
        .map(|s| s.id().to_string())
        .collect();
    assert_eq!(ids, ["b", "c"]);
    assert!(
        table
            .upsert(AgentConfig {
                capacity: 0,
                ..AgentConfig::new("d", "d", ["x"])
            })
            .is_err()
    );
    assert!(
        table
            .replace_all(vec![AgentConfig::new("d", "d", ["x"]); 2])
            .is_err()
    );
    assert_eq!(table.len(), 2);
}

#[test]
fn ring_all_claims_every_available_agent_in_the_best_tier() {
    let mut agents = pool(&["a", "b", "c", "d"], "x");
    agents[0].branch = Some(Branch::new("north"));
    agents[1].branch = Some(Branch::new("north"));
    let table = table_with(agents);
    signed_in(&table, &["a", "b", "c", "d"], secs(0));
    assert!(
        table
            .set_state(&agent("b"), RequestedState::Away, secs(1))
            .is_ok()
    );
    let selection = table.selection(&[SkillRequirement::new("x")], Strategy::RingAll);
    let north = Branch::new("north");
    let mut claimed = Vec::new();
    let preferences = Preferences {
        branch: Some(&north),
        ..Preferences::default()
    };
    assert_eq!(table.claim_all(&selection, &preferences, &mut claimed), 1);
    assert_eq!(claimed, [agent("a")]);
    claimed.clear();
    assert_eq!(table.claim_all(&selection, &preferences, &mut claimed), 2);
    assert_eq!(claimed, [agent("c"), agent("d")]);
    assert_eq!(
        table.claim_all(&selection, &Preferences::default(), &mut claimed),
        0
    );
}

#[test]
fn snapshots_are_copies() {
    let table = table_with(demo_agents());
    signed_in(&table, &["1001"], secs(1));
    let before = table.snapshot(&agent("1001"));
    assert!(
        table
            .set_state(&agent("1001"), RequestedState::Away, secs(2))
            .is_ok()
    );
    assert_eq!(
        before.as_ref().map(|s| s.state),
        Some(AgentState::Available)
    );
    assert_eq!(
        table.snapshot(&agent("1001")).map(|s| s.state),
        Some(AgentState::Away)
    );
    assert_eq!(
        before.map(|s| s.config.name.clone()).as_deref(),
        Some("Alice")
    );
    assert!(!table.is_signed_in(&agent("1001")));
    assert!(!table.is_empty());
}
