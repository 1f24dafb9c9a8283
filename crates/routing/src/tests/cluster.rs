//! The cluster (issue 24): agents held by another node's claim are not
//! offered here; an offer whose claim was refused is taken back without a
//! miss and goes to the next agent at once.

use super::util::*;
use crate::*;

fn register(router: &mut Router, now: Millis, ids: &[&str]) {
    for id in ids {
        assert_eq!(router.registered(now, &agent(id)), Ok(()));
    }
}

fn enqueue(router: &mut Router, now: Millis, call: u64, queue_id: &str) {
    let entered = router.enqueue(
        now,
        CallId(call),
        &queue(queue_id),
        Priority::Routine,
        CallerContext::default(),
    );
    assert!(entered.is_ok(), "{entered:?}");
}

fn offered(router: &mut Router, now: Millis) -> Vec<String> {
    match router.poll_offer(now) {
        Some(offer) => offer.agents.iter().map(|a| a.to_string()).collect(),
        None => Vec::new(),
    }
}

fn snapshot(router: &Router, id: &str) -> AgentSnapshot {
    match router.table().snapshot(&agent(id)) {
        Some(snapshot) => snapshot,
        None => panic!("{id} is in the demo clinic"),
    }
}

#[test]
fn an_agent_held_elsewhere_is_never_offered_until_released() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1003"]);
    assert_eq!(router.held_elsewhere(secs(1), &agent("1003"), "b"), Ok(()));
    assert_eq!(router.held_by(&agent("1003")), Some("b"));
    let carol = snapshot(&router, "1003");
    assert!(carol.held_elsewhere);
    assert_eq!(carol.state, AgentState::OnCall, "busy in the cluster");
    assert_eq!(
        router.table().state(&agent("1003")),
        Some(AgentState::Available)
    );
    enqueue(&mut router, secs(2), 1, "pediatrics");
    assert_eq!(offered(&mut router, secs(2)), Vec::<String>::new());
    // Her own changes meanwhile do not free her: a refresh, a wrap-up...
    assert_eq!(router.registered(secs(3), &agent("1003")), Ok(()));
    assert_eq!(offered(&mut router, secs(3)), Vec::<String>::new());
    assert_eq!(router.released_elsewhere(secs(4), &agent("1003")), Ok(()));
    assert_eq!(router.held_by(&agent("1003")), None);
    assert!(!snapshot(&router, "1003").held_elsewhere);
    assert_eq!(offered(&mut router, secs(4)), ["1003"]);
    let shown: Vec<(AgentState, AgentState)> = events(&mut router)
        .into_iter()
        .filter_map(|event| match event {
            RouterEvent::AgentStateChanged { from, to, .. } => Some((from, to)),
            _ => None,
        })
        .collect();
    assert_eq!(
        shown,
        [
            (AgentState::Offline, AgentState::Available),
            (AgentState::Available, AgentState::OnCall),
            (AgentState::OnCall, AgentState::Available),
            (AgentState::Available, AgentState::Ringing),
        ]
    );
}

#[test]
fn held_agents_do_not_count_as_available() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1001", "1005", "1006"]);
    assert_eq!(router.held_elsewhere(secs(1), &agent("1005"), "b"), Ok(()));
    let stats = router.queue_stats_for(secs(1), &queue("front-desk"));
    let agents = stats.map(|s| s.agents).unwrap_or_default();
    assert_eq!(agents.available(), 2);
    assert_eq!(agents.in_state(AgentState::OnCall), 1);
    assert_eq!(agents.signed_in(), 3);
}

#[test]
fn a_refused_claim_is_not_a_miss_and_the_call_goes_to_the_next_agent_at_once() {
    let mut router = demo_router();
    // Longest idle: Alice first, then Frank.
    register(&mut router, secs(0), &["1001"]);
    register(&mut router, secs(1), &["1006"]);
    enqueue(&mut router, secs(2), 1, "front-desk");
    assert_eq!(offered(&mut router, secs(2)), ["1001"]);
    // The driver's claim of Alice was refused: node b holds her.
    assert_eq!(router.held_elsewhere(secs(2), &agent("1001"), "b"), Ok(()));
    assert_eq!(
        router.offer_failed(
            secs(2),
            CallId(1),
            &agent("1001"),
            OfferFailure::ClaimedElsewhere
        ),
        Ok(())
    );
    assert_eq!(offered(&mut router, secs(2)), ["1006"], "at once, to Frank");
    let alice = snapshot(&router, "1001");
    assert_eq!(alice.consecutive_misses, 0, "never rung: not a miss");
    assert_eq!(alice.state, AgentState::OnCall);
    let stats = router.queue_stats_for(secs(2), &queue("front-desk"));
    let missed = stats.map(|s| s.counters.missed).unwrap_or_default();
    assert_eq!(missed.total(), 0);
    assert_eq!(missed.of(OfferFailure::ClaimedElsewhere), 0);
    // Frank takes it; Alice, released by b, gets the next caller.
    assert_eq!(router.answered(secs(5), CallId(1), &agent("1006")), Ok(()));
    enqueue(&mut router, secs(6), 2, "front-desk");
    assert_eq!(offered(&mut router, secs(6)), Vec::<String>::new());
    assert_eq!(router.released_elsewhere(secs(7), &agent("1001")), Ok(()));
    assert_eq!(offered(&mut router, secs(7)), ["1001"]);
}

#[test]
fn a_refusal_with_nobody_else_puts_the_caller_back_in_place() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1003"]);
    enqueue(&mut router, secs(1), 1, "pediatrics");
    enqueue(&mut router, secs(2), 2, "pediatrics");
    assert_eq!(offered(&mut router, secs(2)), ["1003"]);
    assert_eq!(router.held_elsewhere(secs(2), &agent("1003"), "b"), Ok(()));
    assert_eq!(
        router.offer_failed(
            secs(2),
            CallId(1),
            &agent("1003"),
            OfferFailure::ClaimedElsewhere
        ),
        Ok(())
    );
    assert_eq!(offered(&mut router, secs(2)), Vec::<String>::new());
    assert_eq!(router.position(secs(2), CallId(1)), Some(1), "first again");
    assert_eq!(router.released_elsewhere(secs(3), &agent("1003")), Ok(()));
    let offer = router.poll_offer(secs(3)).map(|offer| offer.call);
    assert_eq!(offer, Some(CallId(1)));
}

#[test]
fn wrap_up_and_a_call_keep_an_agent_held_here_and_elsewhere() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1003"]);
    enqueue(&mut router, secs(1), 1, "pediatrics");
    assert_eq!(offered(&mut router, secs(1)), ["1003"]);
    assert_eq!(router.answered(secs(2), CallId(1), &agent("1003")), Ok(()));
    // A stale feed entry says b holds her (b's lease of an earlier call):
    // it does not end her call here.
    assert_eq!(router.held_elsewhere(secs(3), &agent("1003"), "b"), Ok(()));
    assert_eq!(snapshot(&router, "1003").state, AgentState::OnCall);
    assert_eq!(router.call_ended(secs(10), CallId(1)), Ok(()));
    assert_eq!(snapshot(&router, "1003").state, AgentState::WrapUp);
    // Wrap-up ends while b still holds her: not offered.
    router.handle_timeout(secs(12));
    assert_eq!(
        router.table().state(&agent("1003")),
        Some(AgentState::Available)
    );
    assert_eq!(snapshot(&router, "1003").state, AgentState::OnCall);
    enqueue(&mut router, secs(13), 2, "pediatrics");
    assert_eq!(offered(&mut router, secs(13)), Vec::<String>::new());
    assert_eq!(router.released_elsewhere(secs(14), &agent("1003")), Ok(()));
    assert_eq!(offered(&mut router, secs(14)), ["1003"]);
}

#[test]
fn a_held_agent_is_skipped_by_ring_all_and_calls_out() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1005"]);
    assert_eq!(router.held_elsewhere(secs(0), &agent("1005"), "b"), Ok(()));
    enqueue(&mut router, secs(1), 1, "urgent-care");
    assert_eq!(offered(&mut router, secs(1)), Vec::<String>::new());
    assert!(
        router.outbound_started(&agent("1005")).is_err(),
        "not available"
    );
    assert_eq!(router.released_elsewhere(secs(2), &agent("1005")), Ok(()));
    assert_eq!(offered(&mut router, secs(2)), ["1005"]);
}

#[test]
fn unknown_agents_are_refused() {
    let mut router = demo_router();
    assert!(router.held_elsewhere(secs(0), &agent("9999"), "b").is_err());
    assert!(router.released_elsewhere(secs(0), &agent("9999")).is_err());
    assert_eq!(router.held_by(&agent("9999")), None);
}

#[test]
fn waiting_callers_have_a_shared_place_until_offered() {
    let mut router = demo_router();
    let now = secs(100);
    enqueue(&mut router, now, 1, "pediatrics");
    enqueue(&mut router, secs(101), 2, "pediatrics");
    let mut places: Vec<LinePlace> = router.line_places(now).collect();
    places.sort_by_key(|place| place.score);
    let calls: Vec<u64> = places.iter().map(|place| place.entry.member()).collect();
    assert_eq!(calls, [1, 2]);
    assert!(
        places
            .iter()
            .all(|place| place.queue == queue("pediatrics"))
    );
    // Same class, same queue: a second apart.
    assert_eq!(places[1].score - places[0].score, 1_000);
    assert!(places[0].score >= now.as_millis());

    // Carol is offered to call 1: it leaves the line, keeps its place.
    register(&mut router, secs(102), &["1003"]);
    assert_eq!(offered(&mut router, secs(102)), ["1003"]);
    assert_eq!(router.line_place(CallId(1)), None);
    assert_eq!(
        router.offered_place(CallId(1)).map(|place| place.score),
        Some(places[0].score)
    );
    let left: Vec<u64> = router
        .line_places(secs(102))
        .map(|place| place.entry.member())
        .collect();
    assert_eq!(left, [2]);
    assert_eq!(router.callbacks_ahead(secs(102), CallId(2)), Some(0));
    assert_eq!(router.callbacks_ahead(secs(102), CallId(1)), None);

    // Refused elsewhere: back in line with the same place.
    router
        .offer_failed(
            secs(103),
            CallId(1),
            &agent("1003"),
            OfferFailure::ClaimedElsewhere,
        )
        .expect("offered");
    assert_eq!(router.line_place(CallId(1)), Some(places[0].clone()));
}

#[test]
fn the_queues_an_agent_serves_follow_their_skills() {
    let router = demo_router();
    let served = |id| -> Vec<String> {
        router
            .queues_served_by(&agent(id))
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(served("1004"), ["dermatology", "orthopedics"]);
    assert_eq!(served("1006"), ["front-desk", "pediatrics"]);
    assert!(served("9999").is_empty());
    assert!(router.queue_ids().len() >= 7);
}
