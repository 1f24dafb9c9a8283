//! Property tests: whatever the sequence of inputs, the router's view and
//! the table agree, no agent serves two calls, no call is lost; and the
//! strategies are fair on random rosters.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use proptest::prelude::{
    ProptestConfig, Strategy as Generator, TestCaseError, any, prop, prop_assert, prop_assert_eq,
    prop_oneof, proptest,
};

use super::util::*;
use crate::*;

#[derive(Debug, Clone)]
enum Input {
    Enqueue {
        queue: usize,
        urgent: bool,
    },
    Answer {
        pick: usize,
    },
    Fail {
        pick: usize,
    },
    Cancel {
        pick: usize,
    },
    End {
        pick: usize,
    },
    Register {
        agent: usize,
    },
    Unregister {
        agent: usize,
    },
    Away {
        agent: usize,
    },
    Available {
        agent: usize,
    },
    Wait {
        ms: u64,
    },
    /// A waiting caller hangs up to be called back, keeping their place.
    HoldPlace {
        pick: usize,
    },
    CallbackAgentAnswer {
        pick: usize,
    },
    CallbackAgentFail {
        pick: usize,
    },
    CallbackAnswer {
        pick: usize,
    },
    CallbackFail {
        pick: usize,
    },
    CallbackEnd {
        pick: usize,
    },
}

fn input() -> impl Generator<Value = Input> {
    prop_oneof![
        3 => (0..7usize, any::<bool>()).prop_map(|(queue, urgent)| Input::Enqueue { queue, urgent }),
        3 => any::<usize>().prop_map(|pick| Input::Answer { pick }),
        2 => any::<usize>().prop_map(|pick| Input::Fail { pick }),
        1 => any::<usize>().prop_map(|pick| Input::Cancel { pick }),
        2 => any::<usize>().prop_map(|pick| Input::End { pick }),
        2 => (0..7usize).prop_map(|agent| Input::Register { agent }),
        1 => (0..7usize).prop_map(|agent| Input::Unregister { agent }),
        1 => (0..7usize).prop_map(|agent| Input::Away { agent }),
        1 => (0..7usize).prop_map(|agent| Input::Available { agent }),
        2 => (0..200_000u64).prop_map(|ms| Input::Wait { ms }),
        2 => any::<usize>().prop_map(|pick| Input::HoldPlace { pick }),
        2 => any::<usize>().prop_map(|pick| Input::CallbackAgentAnswer { pick }),
        1 => any::<usize>().prop_map(|pick| Input::CallbackAgentFail { pick }),
        2 => any::<usize>().prop_map(|pick| Input::CallbackAnswer { pick }),
        1 => any::<usize>().prop_map(|pick| Input::CallbackFail { pick }),
        1 => any::<usize>().prop_map(|pick| Input::CallbackEnd { pick }),
    ]
}

/// The bridge's view: who rings for what, who talks to whom.
#[derive(Default)]
struct Bridge {
    ringing: HashMap<CallId, Vec<AgentId>>,
    connected: HashMap<CallId, AgentId>,
    waiting: HashSet<CallId>,
    finished: HashSet<CallId>,
    /// Callback entries: in line, their agent ringing, their agent
    /// dialing the patient, connected.
    callbacks_waiting: HashSet<CallbackId>,
    callbacks_ringing: HashMap<CallbackId, AgentId>,
    callbacks_dialing: HashMap<CallbackId, AgentId>,
    callbacks_connected: HashMap<CallbackId, AgentId>,
}

/// In a fixed order, so a case replays the same way (hash sets do not).
fn sorted<T: Ord>(items: impl Iterator<Item = T>) -> impl Iterator<Item = T> {
    let mut items: Vec<T> = items.collect();
    items.sort();
    items.into_iter()
}

impl Bridge {
    fn pick<T: Clone>(items: impl Iterator<Item = T>, pick: usize) -> Option<T> {
        let items: Vec<T> = items.collect();
        (!items.is_empty()).then(|| items[pick % items.len()].clone())
    }
}

fn check(router: &Router, bridge: &Bridge) -> Result<(), TestCaseError> {
    let mut held = HashSet::new();
    for agents in bridge.ringing.values() {
        for agent in agents {
            prop_assert!(held.insert(agent.clone()), "{agent} rings twice");
            prop_assert_eq!(router.table().state(agent), Some(AgentState::Ringing));
        }
    }
    for agent in bridge.callbacks_ringing.values() {
        prop_assert!(held.insert(agent.clone()), "{agent} rings twice");
        prop_assert_eq!(router.table().state(agent), Some(AgentState::Ringing));
    }
    let busy = bridge
        .connected
        .values()
        .chain(bridge.callbacks_dialing.values())
        .chain(bridge.callbacks_connected.values());
    for agent in busy {
        prop_assert!(held.insert(agent.clone()), "{agent} busy twice");
        prop_assert_eq!(router.table().state(agent), Some(AgentState::OnCall));
    }
    for snapshot in router.table().snapshots() {
        if matches!(snapshot.state, AgentState::Ringing | AgentState::OnCall) {
            prop_assert!(
                held.contains(snapshot.id()),
                "{} is {} for nothing",
                snapshot.id(),
                snapshot.state
            );
        }
        if snapshot.state == AgentState::Available {
            prop_assert!(
                snapshot.registered,
                "{} available unregistered",
                snapshot.id()
            );
        }
    }
    let live = bridge.ringing.len() + bridge.connected.len() + bridge.waiting.len();
    prop_assert_eq!(router.active_calls(), live, "calls lost or invented");
    let callbacks = bridge.callbacks_waiting.len()
        + bridge.callbacks_ringing.len()
        + bridge.callbacks_dialing.len()
        + bridge.callbacks_connected.len();
    prop_assert_eq!(
        router.active_callbacks(),
        callbacks,
        "callbacks lost or invented"
    );
    for callback in &bridge.callbacks_waiting {
        prop_assert_eq!(
            router.callback_status(*callback).map(|s| s.phase),
            Some(CallbackPhase::Waiting)
        );
    }
    for call in &bridge.waiting {
        prop_assert_eq!(
            router.call_status(*call).map(|s| s.phase),
            Some(CallPhase::Waiting)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn router_and_table_agree_whatever_happens(inputs in prop::collection::vec(input(), 1..120)) {
        // The demo clinic, every queue taking callbacks (one retry, half
        // the free agents at most).
        let mut queues = demo_queues();
        for queue in &mut queues {
            queue.callback = Some(CallbackPolicy {
                retries: 1,
                retry_every: Duration::from_secs(30),
                max_share_permille: 500,
            });
        }
        let agents = demo_agents();
        let mut router = match Router::new(RouterConfig::default(), queues.clone(), agents.clone()) {
            Ok(router) => router,
            Err(error) => return Err(TestCaseError::fail(format!("the demo clinic is valid: {error}"))),
        };
        let mut next_callback = 0;
        let mut bridge = Bridge::default();
        let mut now = Millis::ZERO;
        let mut next_call = 0;
        for input in inputs {
            match input {
                Input::Enqueue { queue, urgent } => {
                    next_call += 1;
                    let priority = if urgent { Priority::Urgent } else { Priority::Routine };
                    let result = router.enqueue(now, CallId(next_call), &queues[queue].id, priority, CallerContext::default());
                    prop_assert!(result.is_ok());
                    bridge.waiting.insert(CallId(next_call));
                }
                Input::Answer { pick } => {
                    if let Some((call, agents)) = Bridge::pick(bridge.ringing.iter().map(|(c, a)| (*c, a.clone())), pick) {
                        let agent = agents[pick % agents.len()].clone();
                        prop_assert_eq!(router.answered(now, call, &agent), Ok(()));
                        bridge.ringing.remove(&call);
                        bridge.connected.insert(call, agent);
                    }
                }
                Input::Fail { pick } => {
                    if let Some((call, agents)) = Bridge::pick(bridge.ringing.iter().map(|(c, a)| (*c, a.clone())), pick) {
                        let agent = agents[pick % agents.len()].clone();
                        prop_assert_eq!(router.offer_failed(now, call, &agent, OfferFailure::NoAnswer), Ok(()));
                        let left: Vec<_> = agents.into_iter().filter(|a| *a != agent).collect();
                        if left.is_empty() {
                            bridge.ringing.remove(&call);
                            bridge.waiting.insert(call);
                        } else {
                            bridge.ringing.insert(call, left);
                        }
                    }
                }
                Input::Cancel { pick } => {
                    let waiting = bridge.waiting.iter().copied();
                    let ringing = bridge.ringing.keys().copied();
                    if let Some(call) = Bridge::pick(waiting.chain(ringing), pick) {
                        prop_assert_eq!(router.cancel(now, call), Ok(()));
                        bridge.waiting.remove(&call);
                        bridge.ringing.remove(&call);
                        bridge.finished.insert(call);
                    }
                }
                Input::End { pick } => {
                    if let Some(call) = Bridge::pick(bridge.connected.keys().copied(), pick) {
                        prop_assert_eq!(router.call_ended(now, call), Ok(()));
                        bridge.connected.remove(&call);
                        bridge.finished.insert(call);
                    }
                }
                Input::Register { agent } => prop_assert_eq!(router.registered(now, &agents[agent].id), Ok(())),
                Input::Unregister { agent } => prop_assert_eq!(router.unregistered(now, &agents[agent].id), Ok(())),
                Input::Away { agent } => {
                    let _ = router.set_agent_state(now, &agents[agent].id, RequestedState::Away);
                }
                Input::Available { agent } => {
                    let _ = router.set_agent_state(now, &agents[agent].id, RequestedState::Available);
                }
                Input::Wait { ms } => {
                    now = now.saturating_add(Duration::from_millis(ms));
                    while let Some(deadline) = router.poll_timeout() {
                        if deadline > now {
                            break;
                        }
                        router.handle_timeout(deadline);
                    }
                }
                Input::HoldPlace { pick } => {
                    if let Some(call) = Bridge::pick(sorted(bridge.waiting.iter().copied()), pick) {
                        next_callback += 1;
                        let callback = CallbackId(next_callback);
                        prop_assert!(router.hold_place(now, call, callback).is_ok());
                        bridge.waiting.remove(&call);
                        bridge.finished.insert(call);
                        bridge.callbacks_waiting.insert(callback);
                    }
                }
                Input::CallbackAgentAnswer { pick } => {
                    if let Some((callback, agent)) = Bridge::pick(sorted(bridge.callbacks_ringing.clone().into_iter()), pick) {
                        prop_assert_eq!(router.callback_agent_answered(now, callback, &agent), Ok(()));
                        bridge.callbacks_ringing.remove(&callback);
                        bridge.callbacks_dialing.insert(callback, agent);
                    }
                }
                Input::CallbackAgentFail { pick } => {
                    if let Some((callback, agent)) = Bridge::pick(sorted(bridge.callbacks_ringing.clone().into_iter()), pick) {
                        prop_assert_eq!(router.callback_agent_failed(now, callback, &agent, OfferFailure::NoAnswer), Ok(()));
                        bridge.callbacks_ringing.remove(&callback);
                        bridge.callbacks_waiting.insert(callback);
                    }
                }
                Input::CallbackAnswer { pick } => {
                    if let Some((callback, agent)) = Bridge::pick(sorted(bridge.callbacks_dialing.clone().into_iter()), pick) {
                        prop_assert_eq!(router.callback_answered(now, callback), Ok(()));
                        bridge.callbacks_dialing.remove(&callback);
                        bridge.callbacks_connected.insert(callback, agent);
                    }
                }
                Input::CallbackFail { pick } => {
                    if let Some((callback, _)) = Bridge::pick(sorted(bridge.callbacks_dialing.clone().into_iter()), pick) {
                        prop_assert_eq!(router.callback_failed(now, callback, CallbackFailure::Busy), Ok(()));
                        bridge.callbacks_dialing.remove(&callback);
                        // Back in line, unless exhausted (an event below).
                        bridge.callbacks_waiting.insert(callback);
                    }
                }
                Input::CallbackEnd { pick } => {
                    let all = bridge.callbacks_waiting.iter().copied()
                        .chain(bridge.callbacks_ringing.keys().copied())
                        .chain(bridge.callbacks_dialing.keys().copied())
                        .chain(bridge.callbacks_connected.keys().copied());
                    if let Some(callback) = Bridge::pick(sorted(all), pick) {
                        prop_assert_eq!(router.callback_ended(now, callback), Ok(()));
                        bridge.callbacks_waiting.remove(&callback);
                        bridge.callbacks_ringing.remove(&callback);
                        bridge.callbacks_dialing.remove(&callback);
                        bridge.callbacks_connected.remove(&callback);
                    }
                }
            }
            while let Some(event) = router.poll_event() {
                if let RouterEvent::GiveUp { call, .. } = event {
                    prop_assert!(bridge.waiting.remove(&call), "{call} gave up while not waiting");
                    bridge.finished.insert(call);
                }
            }
            while let Some(offer) = router.poll_offer(now) {
                prop_assert!(bridge.waiting.remove(&offer.call), "{} offered while not waiting", offer.call);
                prop_assert!(!offer.agents.is_empty());
                bridge.ringing.insert(offer.call, offer.agents.as_slice().to_vec());
            }
            while let Some(event) = router.poll_callback() {
                match event {
                    CallbackEvent::Dial(dial) => {
                        prop_assert!(bridge.callbacks_waiting.remove(&dial.callback), "{} dialed while not waiting", dial.callback);
                        bridge.callbacks_ringing.insert(dial.callback, dial.agent);
                    }
                    CallbackEvent::Rescheduled { callback, .. } => {
                        prop_assert!(bridge.callbacks_waiting.contains(&callback));
                    }
                    CallbackEvent::Exhausted { callback, .. } => {
                        prop_assert!(bridge.callbacks_waiting.remove(&callback), "{callback} exhausted while not waiting");
                    }
                }
            }
            check(&router, &bridge)?;
        }
    }

    #[test]
    fn round_robin_is_fair_within_one(agents in 1usize..40, calls in 0usize..400) {
        let table = AgentTable::new();
        let roster: Vec<_> = (0..agents).map(|n| AgentConfig::new(format!("a{n:02}"), "a", ["x"])).collect();
        prop_assert_eq!(table.replace_all(roster), Ok(()));
        for snapshot in table.snapshots() {
            prop_assert!(table.register(snapshot.id(), ms(1)).is_ok());
        }
        let selection = table.selection(&[SkillRequirement::new("x")], Strategy::RoundRobin);
        let mut counts: HashMap<AgentId, usize> = HashMap::new();
        for n in 0..calls {
            let claim = table.choose_and_claim(&selection, &Preferences::default());
            let Some(claim) = claim else { return Err(TestCaseError::fail("nobody chosen")) };
            prop_assert!(table.answer(&claim.agent, ms(n as u64)).is_ok());
            prop_assert!(table.end_call(&claim.agent, ms(n as u64)).is_ok());
            prop_assert!(table.finish_wrap_up(&claim.agent, ms(n as u64), ms(n as u64)).is_ok());
            *counts.entry(claim.agent).or_default() += 1;
        }
        let most = counts.values().max().copied().unwrap_or(0);
        let least = if counts.len() < agents { 0 } else { counts.values().min().copied().unwrap_or(0) };
        prop_assert!(most - least <= 1, "spread {least}..{most}");
    }

    #[test]
    fn every_ranked_strategy_picks_its_minimum(
        idle in prop::collection::vec((0u64..1_000, 0u32..5, any::<bool>(), 1u32..4, 1u8..=10), 1..60),
    ) {
        for strategy in [Strategy::LongestIdle, Strategy::FewestCalls, Strategy::Capacity, Strategy::SkillLevel] {
            let table = AgentTable::new();
            let roster: Vec<_> = idle
                .iter()
                .enumerate()
                .map(|(n, (_, _, _, capacity, level))| {
                    let mut config = AgentConfig::new(format!("a{n:02}"), "a", ["x"]);
                    config.capacity = *capacity;
                    config.skills[0].level = SkillLevel::new(*level).unwrap_or_default();
                    config
                })
                .collect();
            prop_assert_eq!(table.replace_all(roster), Ok(()));
            for (n, (since, calls, available, _, _)) in idle.iter().enumerate() {
                let id = agent(&format!("a{n:02}"));
                prop_assert!(table.register(&id, ms(0)).is_ok());
                for _ in 0..*calls {
                    prop_assert!(table.claim(&id).is_ok());
                    prop_assert!(table.answer(&id, ms(0)).is_ok());
                    prop_assert!(table.end_call(&id, ms(0)).is_ok());
                    prop_assert!(table.finish_wrap_up(&id, ms(0), ms(0)).is_ok());
                }
                // Idle since `since`: away and back at that moment.
                prop_assert!(table.set_state(&id, RequestedState::Away, ms(0)).is_ok());
                if *available {
                    prop_assert!(table.set_state(&id, RequestedState::Available, ms(*since)).is_ok());
                }
            }
            let selection = table.selection(&[SkillRequirement::new("x")], strategy);
            let before = table.snapshots();
            let chosen = table.choose_and_claim(&selection, &Preferences::default());
            let free: Vec<_> = before.iter().filter(|s| s.state == AgentState::Available).collect();
            match chosen {
                None => prop_assert!(free.is_empty()),
                Some(claim) => {
                    let key = |s: &AgentSnapshot| match strategy {
                        Strategy::FewestCalls => (u64::from(s.calls_today), s.since),
                        Strategy::Capacity => ((u64::from(s.calls_today) << 32) / u64::from(s.config.capacity), s.since),
                        Strategy::SkillLevel => (u64::from(10 - s.config.skills[0].level.get()), s.since),
                        _ => (0, s.since),
                    };
                    let best = free.iter().map(|s| key(s)).min();
                    let got = free.iter().find(|s| *s.id() == claim.agent).map(|s| key(s));
                    prop_assert_eq!(got, best);
                }
            }
        }
    }
}
