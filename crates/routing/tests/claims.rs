//! Two threads hammer choose-and-claim on the same agents: no agent is ever
//! held by two decisions at once, and nothing is lost.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use routing::{AgentConfig, AgentTable, Millis, Preferences, SkillRequirement, Strategy};

#[test]
fn two_threads_never_claim_the_same_agent() {
    const AGENTS: usize = 64;
    const ROUNDS: usize = 100_000;
    let table = Arc::new(AgentTable::new());
    let roster: Vec<_> = (0..AGENTS)
        .map(|n| AgentConfig::new(format!("{n:03}"), "agent", ["front-desk"]))
        .collect();
    assert_eq!(table.replace_all(roster), Ok(()));
    for snapshot in table.snapshots() {
        assert!(table.register(snapshot.id(), Millis::new(1)).is_ok());
    }
    // `held[n]`: agent n is claimed by some thread right now.
    let held: Arc<Vec<AtomicBool>> =
        Arc::new((0..AGENTS).map(|_| AtomicBool::new(false)).collect());
    let claims = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(2));
    let threads: Vec<_> = [Strategy::LongestIdle, Strategy::RoundRobin]
        .into_iter()
        .map(|strategy| {
            let (table, held, claims, start) =
                (table.clone(), held.clone(), claims.clone(), start.clone());
            std::thread::spawn(move || {
                let selection = table.selection(&[SkillRequirement::new("front-desk")], strategy);
                let mut mine = Vec::new();
                start.wait();
                for round in 0..ROUNDS {
                    // Hold up to four agents at a time, so both threads
                    // compete for the same few longest-idle ones.
                    if let Some(claim) = table.choose_and_claim(&selection, &Preferences::default())
                    {
                        let n: usize = claim.agent.as_str().parse().unwrap_or(usize::MAX);
                        assert!(
                            !held[n].swap(true, Ordering::SeqCst),
                            "agent {n} claimed twice"
                        );
                        claims.fetch_add(1, Ordering::Relaxed);
                        mine.push(claim.agent);
                    }
                    if (mine.len() >= 4 || round % 3 == 0)
                        && let Some(agent) = mine.pop()
                    {
                        let n: usize = agent.as_str().parse().unwrap_or(usize::MAX);
                        assert!(held[n].swap(false, Ordering::SeqCst));
                        let released = table.release(&agent, Millis::new(round as u64));
                        assert!(released.is_ok(), "{released:?}");
                    }
                }
                mine
            })
        })
        .collect();
    let mut still_held = 0;
    for thread in threads {
        let mine = thread.join().unwrap_or_default();
        still_held += mine.len();
    }
    assert!(
        claims.load(Ordering::Relaxed) > ROUNDS as u64,
        "both threads claimed"
    );
    let ringing = table
        .snapshots()
        .iter()
        .filter(|s| s.state == routing::AgentState::Ringing)
        .count();
    assert_eq!(ringing, still_held, "every claim is accounted for");
}
