//! Transfers on the demo clinic: the caller keeps their priority and the
//! wait they had before the answer; a transfer to one agent offers that
//! agent first, for a while.

use std::time::Duration;

use super::util::*;
use crate::*;

fn register(router: &mut Router, now: Millis, ids: &[&str]) {
    for id in ids {
        assert_eq!(router.registered(now, &agent(id)), Ok(()));
    }
}

fn state(router: &Router, id: &str) -> Option<AgentState> {
    router.table().state(&agent(id))
}

/// Call `call` enters `queue_id` at `at`, is offered to `expect` and
/// answered `answer_after` later.
fn connect(
    router: &mut Router,
    at: Millis,
    call: u64,
    queue_id: &str,
    priority: Priority,
    expect: &str,
    answer_after: u64,
) {
    let enqueued = router.enqueue(
        at,
        CallId(call),
        &queue(queue_id),
        priority,
        CallerContext::default(),
    );
    assert!(enqueued.is_ok(), "{enqueued:?}");
    let offer = router.poll_offer(at).expect("an agent is available");
    assert_eq!(offer.agents.as_slice(), [agent(expect)]);
    let answered_at = Millis::new(at.as_millis() + answer_after);
    assert_eq!(
        router.answered(answered_at, CallId(call), &agent(expect)),
        Ok(())
    );
}

fn direct(id: &str, window_secs: u64) -> Option<DirectOffer> {
    Some(DirectOffer {
        agent: agent(id),
        window: Duration::from_secs(window_secs),
    })
}

#[test]
fn a_transfer_to_a_queue_keeps_priority_and_the_wait_before_the_answer() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1001"]);
    // Waited 20 s at the front desk, then talked 100 s.
    connect(
        &mut router,
        secs(0),
        1,
        "front-desk",
        Priority::Urgent,
        "1001",
        20_000,
    );
    let moved = router
        .transfer(secs(120), CallId(1), &queue("cardiology"), None)
        .expect("a connected call can be transferred");
    assert_eq!(
        (moved.queue.as_str(), moved.priority, moved.position),
        ("cardiology", Priority::Urgent, 1)
    );
    // The transferring agent wraps up, then is free.
    assert_eq!(state(&router, "1001"), Some(AgentState::WrapUp));
    router.handle_timeout(secs(122));
    assert_eq!(state(&router, "1001"), Some(AgentState::Available));
    let status = router.call_status(CallId(1)).expect("still routed");
    assert_eq!(
        (status.queue.as_str(), status.priority, status.phase),
        ("cardiology", Priority::Urgent, CallPhase::Waiting)
    );
    // The wait so far is 20 s (not the 100 s of talk): enqueued 20 s ago.
    assert_eq!(status.enqueued_at, secs(100));
    // Cardiology's max wait (90 s) starts at the transfer.
    assert_eq!(router.poll_timeout(), Some(secs(210)));
    // A routine caller who has waited 10 s in cardiology comes after them
    // anyway (urgent), and so does an urgent one who arrived at 110 s.
    let later = router.enqueue(
        secs(110),
        CallId(2),
        &queue("cardiology"),
        Priority::Urgent,
        CallerContext::default(),
    );
    assert_eq!(later.map(|e| e.position), Ok(2));
    // Bob answers 50 s after the transfer: 70 s of waiting in all, past
    // the 60 s SLA.
    register(&mut router, secs(170), &["1002"]);
    let offer = router.poll_offer(secs(170)).expect("Bob is available");
    assert_eq!(
        (offer.call, offer.waited),
        (CallId(1), Duration::from_secs(70))
    );
    assert_eq!(
        router.answered(secs(170), CallId(1), &agent("1002")),
        Ok(())
    );
    let counters = router
        .queue_stats_for(secs(170), &queue("cardiology"))
        .map(|s| s.counters)
        .unwrap_or_default();
    assert_eq!((counters.answered, counters.answered_within_sla), (1, 0));
}

#[test]
fn only_a_connected_call_can_be_transferred_and_a_failed_transfer_changes_nothing() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1001"]);
    assert_eq!(
        router.transfer(secs(0), CallId(9), &queue("cardiology"), None),
        Err(EnqueueError::NotTransferable(CallId(9)))
    );
    // Waiting with nobody able to take it: not transferable either.
    let waiting = router.enqueue(
        secs(0),
        CallId(2),
        &queue("cardiology"),
        Priority::Routine,
        CallerContext::default(),
    );
    assert!(waiting.is_ok());
    assert_eq!(
        router.transfer(secs(1), CallId(2), &queue("front-desk"), None),
        Err(EnqueueError::NotTransferable(CallId(2)))
    );
    connect(
        &mut router,
        secs(2),
        1,
        "front-desk",
        Priority::Routine,
        "1001",
        1_000,
    );
    assert_eq!(
        router.transfer(secs(5), CallId(1), &queue("billing"), None),
        Err(EnqueueError::UnknownQueue(queue("billing")))
    );
    assert_eq!(state(&router, "1001"), Some(AgentState::OnCall));
    assert_eq!(
        router.call_status(CallId(1)).map(|s| s.phase),
        Some(CallPhase::Connected(agent("1001")))
    );
}

#[test]
fn a_transfer_to_an_agent_offers_them_first_then_the_queue() {
    let mut router = demo_router();
    // Alice and Erin both serve the front desk; Erin idles longest.
    register(&mut router, secs(0), &["1005"]);
    register(&mut router, secs(1), &["1001", "1002"]);
    connect(
        &mut router,
        secs(2),
        1,
        "cardiology",
        Priority::Routine,
        "1002",
        3_000,
    );
    // Bob transfers to Alice by name: she is rung, not Erin.
    let moved = router.transfer(
        secs(10),
        CallId(1),
        &queue("front-desk"),
        direct("1001", 30),
    );
    assert!(moved.is_ok(), "{moved:?}");
    let offer = router.poll_offer(secs(10)).expect("Alice is available");
    assert_eq!(offer.agents.as_slice(), [agent("1001")]);
    // She does not answer: the queue takes over, and Erin gets it.
    assert_eq!(
        router.offer_failed(secs(25), CallId(1), &agent("1001"), OfferFailure::NoAnswer),
        Ok(())
    );
    let offer = router.poll_offer(secs(25)).expect("Erin is available");
    assert_eq!(offer.agents.as_slice(), [agent("1005")]);
}

#[test]
fn a_busy_agent_named_by_a_transfer_is_waited_for_until_the_window_closes() {
    let mut router = demo_router();
    // Alice idles longest: she takes call 7 and is busy with it.
    register(&mut router, secs(0), &["1001"]);
    connect(
        &mut router,
        secs(1),
        7,
        "front-desk",
        Priority::Routine,
        "1001",
        1_000,
    );
    register(&mut router, secs(2), &["1005", "1002"]);
    connect(
        &mut router,
        secs(10),
        1,
        "cardiology",
        Priority::Routine,
        "1002",
        1_000,
    );
    // Bob transfers to Alice, who is busy: Erin is free but not offered.
    let moved = router.transfer(
        secs(20),
        CallId(1),
        &queue("front-desk"),
        direct("1001", 30),
    );
    assert!(moved.is_ok(), "{moved:?}");
    assert_eq!(router.poll_offer(secs(20)), None);
    // Bob's wrap-up ends; the window closes at 50 s: then anyone in the
    // queue.
    router.handle_timeout(secs(22));
    assert_eq!(router.poll_offer(secs(22)), None);
    assert_eq!(router.poll_timeout(), Some(secs(50)));
    router.handle_timeout(secs(50));
    let offer = router.poll_offer(secs(50)).expect("Erin, now");
    assert_eq!(
        (offer.call, offer.agents.as_slice()),
        (CallId(1), [agent("1005")].as_slice())
    );
}

#[test]
fn a_direct_transfer_reaches_an_agent_outside_the_queue_skills_but_not_one_signed_out() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1002", "1003"]);
    connect(
        &mut router,
        secs(0),
        1,
        "cardiology",
        Priority::Routine,
        "1002",
        1_000,
    );
    // Carol (pediatrics) named for a cardiology call: she is offered it.
    let moved = router.transfer(secs(5), CallId(1), &queue("cardiology"), direct("1003", 30));
    assert!(moved.is_ok(), "{moved:?}");
    let offer = router.poll_offer(secs(5)).expect("Carol");
    assert_eq!(offer.agents.as_slice(), [agent("1003")]);
    assert_eq!(router.answered(secs(6), CallId(1), &agent("1003")), Ok(()));
    // Dan is not signed in: a transfer to him goes to the queue at once,
    // where Bob (back from wrap-up) takes it.
    router.handle_timeout(secs(8));
    let moved = router.transfer(secs(9), CallId(1), &queue("cardiology"), direct("1004", 30));
    assert!(moved.is_ok(), "{moved:?}");
    let offer = router.poll_offer(secs(9)).expect("Bob");
    assert_eq!(offer.agents.as_slice(), [agent("1002")]);
}

/// The agent's device is lost mid-call (the browser phone's page closed):
/// the caller goes back in their first place, ahead of a caller who came
/// while they talked, where a transfer would have put them after them.
#[test]
fn a_requeued_caller_goes_back_ahead_of_callers_who_came_later() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1003"]);
    // Enqueued at 0, answered at 20 s, talking.
    connect(
        &mut router,
        secs(0),
        1,
        "pediatrics",
        Priority::Routine,
        "1003",
        20_000,
    );
    // Another caller arrives at 30 s and waits.
    let later = router.enqueue(
        secs(30),
        CallId(2),
        &queue("pediatrics"),
        Priority::Routine,
        CallerContext::default(),
    );
    assert_eq!(later.map(|e| e.position), Ok(1));
    // At 100 s the page is gone: back in the queue, first.
    let back = router
        .requeue(secs(100), CallId(1), &queue("pediatrics"))
        .expect("a connected call can be requeued");
    assert_eq!(back.position, 1);
    let status = router.call_status(CallId(1)).expect("still routed");
    assert_eq!(status.enqueued_at, secs(0), "their first place");
    assert_eq!(router.position(secs(100), CallId(2)), Some(2));
    // The next agent free takes the requeued caller first.
    register(&mut router, secs(101), &["1006"]);
    let offer = router.poll_offer(secs(101)).expect("Frank is available");
    assert_eq!(offer.call, CallId(1));
    // A plain transfer of the same kind of call would have come after the
    // later caller (20 s waited, so since 80 s > 30 s): not a requeue.
    let mut other = demo_router();
    register(&mut other, secs(0), &["1003"]);
    connect(
        &mut other,
        secs(0),
        1,
        "pediatrics",
        Priority::Routine,
        "1003",
        20_000,
    );
    let _ = other.enqueue(
        secs(30),
        CallId(2),
        &queue("pediatrics"),
        Priority::Routine,
        CallerContext::default(),
    );
    let moved = other
        .transfer(secs(100), CallId(1), &queue("pediatrics"), None)
        .expect("transferred");
    assert_eq!(moved.position, 2);
}
