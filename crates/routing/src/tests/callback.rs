//! Callbacks that keep the caller's place (virtual hold): the place kept
//! after the hang-up, dials and their outcomes, retries, the `max_share`
//! cap, restore after a restart, and the queue's figures.

use std::time::Duration;

use super::util::*;
use crate::*;

const CB: CallbackId = CallbackId(100);

/// One queue `q` (longest idle, ring 15 s, wrap-up 2 s, no max wait, aging
/// 60 s) with callbacks (`retries`, 60 s apart, `share` thousandths), and
/// agents `a1`..`aN`, all signed in at 0.
fn router(agents: usize, retries: u32, share: u32) -> Router {
    let mut q = QueueConfig::new("q", "q", Strategy::LongestIdle);
    q.max_wait = None;
    q.on_max_wait = None;
    q.callback = Some(CallbackPolicy {
        retries,
        retry_every: Duration::from_secs(60),
        max_share_permille: share,
    });
    let mut plain = QueueConfig::new("plain", "q", Strategy::LongestIdle);
    plain.max_wait = None;
    plain.on_max_wait = None;
    let roster = (1..=agents)
        .map(|n| AgentConfig::new(format!("a{n}"), "agent", ["q"]))
        .collect();
    let mut router = match Router::new(RouterConfig::default(), vec![q, plain], roster) {
        Ok(router) => router,
        Err(error) => panic!("valid: {error}"),
    };
    for n in 1..=agents {
        assert_eq!(router.registered(ms(0), &agent(&format!("a{n}"))), Ok(()));
    }
    events(&mut router);
    router
}

fn enqueue(router: &mut Router, now: Millis, call: u64, priority: Priority) -> Enqueued {
    match router.enqueue(
        now,
        CallId(call),
        &queue("q"),
        priority,
        CallerContext::default(),
    ) {
        Ok(enqueued) => enqueued,
        Err(error) => panic!("enqueue {call}: {error}"),
    }
}

fn entry(id: u64, at: Millis, priority: Priority) -> CallbackEntry {
    CallbackEntry {
        id: CallbackId(id),
        queue: queue("q"),
        priority,
        context: CallerContext::default(),
        enqueued_at: at,
        attempts: 0,
        not_before: None,
    }
}

fn add(router: &mut Router, now: Millis, entry: CallbackEntry) -> usize {
    match router.add_callback(now, entry) {
        Ok(place) => place,
        Err(error) => panic!("add: {error}"),
    }
}

/// The dials queued by the last poll, in order.
fn dials(router: &mut Router) -> Vec<CallbackDial> {
    std::iter::from_fn(|| router.poll_callback())
        .map(|event| match event {
            CallbackEvent::Dial(dial) => dial,
            other => panic!("expected a dial: {other:?}"),
        })
        .collect()
}

fn state(router: &Router, id: &str) -> Option<AgentState> {
    router.table().state(&agent(id))
}

#[test]
fn a_caller_who_hangs_up_keeps_their_place() {
    let mut router = router(0, 2, 1000);
    enqueue(&mut router, secs(0), 1, Priority::Routine);
    enqueue(&mut router, secs(10), 2, Priority::Routine);
    assert_eq!(router.hold_place(secs(20), CallId(1), CB), Ok(1));
    assert_eq!(router.call_status(CallId(1)), None, "the call left routing");
    assert_eq!(router.position(secs(20), CallId(2)), Some(2));
    assert_eq!(router.callback_position(secs(20), CB), Some(1));
    // A later caller is third: behind the callback and call 2.
    assert_eq!(
        enqueue(&mut router, secs(25), 3, Priority::Routine).position,
        3
    );
    let stats = router.queue_stats_for(secs(30), &queue("q"));
    let figures = stats.map(|s| (s.waiting, s.callbacks, s.offering, s.longest_wait));
    assert_eq!(figures, Some((3, 1, 0, Duration::from_secs(30))));
    let counters = router
        .queue_stats_for(secs(30), &queue("q"))
        .map(|s| s.counters)
        .unwrap_or_default();
    assert_eq!(counters.abandoned, 0, "holding the place is no abandon");
}

#[test]
fn the_head_callback_gets_the_free_agent_and_runs_its_course() {
    let mut router = router(1, 2, 1000);
    assert!(
        router
            .set_agent_state(secs(0), &agent("a1"), RequestedState::Away)
            .is_ok()
    );
    enqueue(&mut router, secs(0), 1, Priority::Routine);
    enqueue(&mut router, secs(10), 2, Priority::Routine);
    assert_eq!(router.hold_place(secs(20), CallId(1), CB), Ok(1));
    // The agent comes back: the callback is first, the live caller waits.
    assert!(
        router
            .set_agent_state(secs(30), &agent("a1"), RequestedState::Available)
            .is_ok()
    );
    events(&mut router);
    assert_eq!(router.poll_offer(secs(30)), None, "a1 dials the callback");
    let dial = dials(&mut router);
    assert_eq!(dial.len(), 1);
    assert_eq!(
        (
            dial[0].callback,
            dial[0].agent.as_str(),
            dial[0].attempt,
            dial[0].waited,
            dial[0].ring_timeout
        ),
        (
            CB,
            "a1",
            1,
            Duration::from_secs(30),
            Duration::from_secs(15)
        )
    );
    assert_eq!(state(&router, "a1"), Some(AgentState::Ringing));
    let stats = router.queue_stats_for(secs(30), &queue("q"));
    assert_eq!(
        stats.map(|s| (s.waiting, s.offering, s.callbacks)),
        Some((2, 1, 1))
    );
    assert_eq!(
        router.callback_agent_answered(secs(33), CB, &agent("a1")),
        Ok(())
    );
    assert_eq!(state(&router, "a1"), Some(AgentState::OnCall));
    assert_eq!(
        router.callback_status(CB).map(|s| s.phase),
        Some(CallbackPhase::Dialing(agent("a1")))
    );
    assert_eq!(router.callback_answered(secs(40), CB), Ok(()));
    assert_eq!(
        router.callback_status(CB).map(|s| s.phase),
        Some(CallbackPhase::Connected(agent("a1")))
    );
    let stats = router.queue_stats_for(secs(40), &queue("q"));
    assert_eq!(stats.map(|s| (s.waiting, s.callbacks)), Some((1, 0)));
    assert_eq!(router.callback_ended(secs(100), CB), Ok(()));
    assert_eq!(state(&router, "a1"), Some(AgentState::WrapUp));
    assert_eq!(router.active_callbacks(), 0);
    router.handle_timeout(secs(102));
    // Wrap-up over: the live caller is next.
    let offer = router.poll_offer(secs(102)).expect("a1 is free again");
    assert_eq!(offer.call, CallId(2));
    assert_eq!(router.poll_callback(), None);
}

#[test]
fn an_agent_who_misses_a_dial_passes_it_on_without_using_a_try() {
    let mut router = router(2, 0, 1000);
    add(
        &mut router,
        secs(1),
        entry(CB.0, secs(0), Priority::Routine),
    );
    assert_eq!(router.poll_offer(secs(1)), None);
    let first = dials(&mut router);
    assert_eq!(first.len(), 1);
    let missed = first[0].agent.clone();
    assert_eq!(
        router.callback_agent_failed(secs(16), CB, &missed, OfferFailure::NoAnswer),
        Ok(())
    );
    assert_eq!(router.table().state(&missed), Some(AgentState::Available));
    assert_eq!(router.poll_offer(secs(16)), None);
    let second = dials(&mut router);
    assert_eq!(second.len(), 1);
    assert_ne!(
        second[0].agent, missed,
        "the agent who missed it is chosen last"
    );
    assert_eq!(second[0].attempt, 1, "the patient was not tried yet");
    let missed_count = router
        .queue_stats_for(secs(16), &queue("q"))
        .map(|s| s.counters.missed.total());
    assert_eq!(missed_count, Some(1));
    // A withdrawn dial releases its agent without a miss.
    let ringing = second[0].agent.clone();
    assert_eq!(router.callback_ended(secs(17), CB), Ok(()));
    assert_eq!(router.table().state(&ringing), Some(AgentState::Available));
    assert_eq!(
        router
            .table()
            .snapshot(&ringing)
            .map(|s| s.consecutive_misses),
        Some(0)
    );
    assert_eq!(router.active_callbacks(), 0);
}

#[test]
fn an_unanswered_patient_is_tried_again_in_place_then_reported_exhausted() {
    let mut router = router(1, 1, 1000);
    add(
        &mut router,
        secs(0),
        entry(CB.0, secs(0), Priority::Routine),
    );
    assert_eq!(router.poll_offer(secs(0)), None);
    assert_eq!(dials(&mut router).len(), 1);
    assert_eq!(
        router.callback_agent_answered(secs(2), CB, &agent("a1")),
        Ok(())
    );
    assert_eq!(
        router.callback_failed(secs(30), CB, CallbackFailure::NoAnswer),
        Ok(())
    );
    assert_eq!(
        router.poll_callback(),
        Some(CallbackEvent::Rescheduled {
            callback: CB,
            queue: queue("q"),
            attempts: 1,
            at: secs(90),
            reason: CallbackFailure::NoAnswer,
        })
    );
    assert_eq!(state(&router, "a1"), Some(AgentState::WrapUp));
    router.handle_timeout(secs(32));
    // During the pause a later live caller is served; the entry keeps its place.
    enqueue(&mut router, secs(40), 1, Priority::Routine);
    assert_eq!(router.callback_position(secs(40), CB), Some(1));
    let offer = router.poll_offer(secs(40)).expect("the retry is not due");
    assert_eq!(offer.call, CallId(1));
    assert_eq!(router.poll_callback(), None);
    assert_eq!(router.answered(secs(41), CallId(1), &agent("a1")), Ok(()));
    assert_eq!(router.call_ended(secs(50), CallId(1)), Ok(()));
    router.handle_timeout(secs(52));
    assert_eq!(router.poll_offer(secs(52)), None);
    assert_eq!(router.poll_callback(), None, "not before 90 s");
    assert_eq!(router.poll_timeout(), Some(secs(90)));
    router.handle_timeout(secs(90));
    assert_eq!(router.poll_offer(secs(90)), None);
    let retry = dials(&mut router);
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempt, 2);
    assert_eq!(
        router.callback_agent_answered(secs(91), CB, &agent("a1")),
        Ok(())
    );
    assert_eq!(
        router.callback_failed(secs(100), CB, CallbackFailure::Busy),
        Ok(())
    );
    assert_eq!(
        router.poll_callback(),
        Some(CallbackEvent::Exhausted {
            callback: CB,
            queue: queue("q"),
            attempts: 2,
            reason: CallbackFailure::Busy,
        })
    );
    assert_eq!(router.active_callbacks(), 0);
    assert_eq!(router.callback_status(CB), None);
    assert_eq!(state(&router, "a1"), Some(AgentState::WrapUp));
}

#[test]
fn callbacks_hold_at_most_their_share_so_live_callers_get_agents() {
    // Four free agents, half for callbacks: two dial, the live caller who
    // came after five callbacks still gets an agent at once.
    let mut router = router(4, 0, 500);
    for n in 0..5 {
        add(&mut router, secs(n), entry(n, secs(n), Priority::Routine));
    }
    enqueue(&mut router, secs(10), 1, Priority::Routine);
    let offer = router
        .poll_offer(secs(10))
        .expect("the live caller is served");
    assert_eq!(offer.call, CallId(1));
    assert_eq!(router.poll_offer(secs(10)), None);
    let dialed: Vec<_> = dials(&mut router).iter().map(|d| d.callback).collect();
    assert_eq!(
        dialed,
        [CallbackId(0), CallbackId(1)],
        "in their order, two at most"
    );
    // The fourth agent stays free for the next live caller.
    let free = router
        .table()
        .snapshots()
        .iter()
        .filter(|s| s.state == AgentState::Available)
        .count();
    assert_eq!(free, 1);
    enqueue(&mut router, secs(11), 2, Priority::Routine);
    assert_eq!(router.poll_offer(secs(11)).map(|o| o.call), Some(CallId(2)));
    assert_eq!(router.poll_callback(), None);
    // A dial ends: the next callback in order takes its place.
    let ringing = match router.callback_status(CallbackId(0)).map(|s| s.phase) {
        Some(CallbackPhase::Ringing(agent)) => agent,
        other => panic!("callback 0 rings an agent: {other:?}"),
    };
    assert_eq!(
        router.callback_agent_answered(secs(12), CallbackId(0), &ringing),
        Ok(())
    );
    assert_eq!(router.callback_answered(secs(13), CallbackId(0)), Ok(()));
    assert_eq!(router.callback_ended(secs(20), CallbackId(0)), Ok(()));
    router.handle_timeout(secs(22));
    assert_eq!(router.poll_offer(secs(22)), None);
    assert_eq!(
        router.poll_callback(),
        None,
        "callback 1 rings: it holds the one share of the two agents"
    );
    let ringing = match router.callback_status(CallbackId(1)).map(|s| s.phase) {
        Some(CallbackPhase::Ringing(agent)) => agent,
        other => panic!("callback 1 rings an agent: {other:?}"),
    };
    assert_eq!(
        router.callback_agent_answered(secs(23), CallbackId(1), &ringing),
        Ok(())
    );
    assert_eq!(router.callback_answered(secs(24), CallbackId(1)), Ok(()));
    // Connected, it no longer counts: the next callback in order dials.
    assert_eq!(router.poll_offer(secs(24)), None);
    let next: Vec<_> = dials(&mut router).iter().map(|d| d.callback).collect();
    assert_eq!(next, [CallbackId(2)]);
}

#[test]
fn however_small_the_share_one_callback_may_dial() {
    let mut router = router(2, 0, 1);
    add(&mut router, secs(0), entry(7, secs(0), Priority::Routine));
    add(&mut router, secs(0), entry(8, secs(1), Priority::Routine));
    assert_eq!(router.poll_offer(secs(1)), None);
    let dialed: Vec<_> = dials(&mut router).iter().map(|d| d.callback).collect();
    assert_eq!(dialed, [CallbackId(7)]);
}

#[test]
fn restored_callbacks_are_served_before_callers_who_came_later() {
    // After a restart the clock starts again; the journal's entry came
    // before the new caller, with one try made already.
    let mut router = router(1, 3, 1000);
    assert!(
        router
            .set_agent_state(secs(0), &agent("a1"), RequestedState::Away)
            .is_ok()
    );
    let mut restored = entry(CB.0, secs(0), Priority::Routine);
    restored.attempts = 1;
    assert_eq!(router.add_callback(secs(5), restored), Ok(1));
    assert_eq!(
        enqueue(&mut router, secs(6), 1, Priority::Routine).position,
        2
    );
    assert!(
        router
            .set_agent_state(secs(7), &agent("a1"), RequestedState::Available)
            .is_ok()
    );
    assert_eq!(router.poll_offer(secs(7)), None, "the callback goes first");
    let dial = dials(&mut router);
    assert_eq!(dial.len(), 1);
    assert_eq!((dial[0].callback, dial[0].attempt), (CB, 2));
    let stats = router.queue_stats_for(secs(7), &queue("q"));
    assert_eq!(
        stats.map(|s| s.longest_wait),
        Some(Duration::from_secs(7)),
        "the callback's wait counts from its first enqueue"
    );
}

#[test]
fn a_restored_retry_pause_is_kept() {
    let mut router = router(1, 3, 1000);
    let mut restored = entry(CB.0, secs(0), Priority::Routine);
    restored.not_before = Some(secs(30));
    add(&mut router, secs(1), restored);
    assert_eq!(router.poll_offer(secs(1)), None);
    assert_eq!(router.poll_callback(), None);
    assert_eq!(router.poll_timeout(), Some(secs(30)));
    router.handle_timeout(secs(30));
    assert_eq!(router.poll_offer(secs(30)), None);
    assert_eq!(dials(&mut router).len(), 1);
}

#[test]
fn callbacks_follow_priorities_and_aging_like_callers() {
    let mut router = router(1, 0, 1000);
    assert!(
        router
            .set_agent_state(secs(0), &agent("a1"), RequestedState::Away)
            .is_ok()
    );
    add(&mut router, secs(0), entry(1, secs(0), Priority::Routine));
    // An urgent caller goes before a routine callback that has not aged...
    enqueue(&mut router, secs(10), 1, Priority::Urgent);
    assert_eq!(router.callback_position(secs(10), CallbackId(1)), Some(2));
    // ...but once it has waited the aging time (60 s) it counts as urgent
    // from then, ahead of urgent callers who came later.
    enqueue(&mut router, secs(70), 2, Priority::Urgent);
    assert_eq!(router.callback_position(secs(70), CallbackId(1)), Some(2));
    assert_eq!(router.position(secs(70), CallId(2)), Some(3));
    assert!(
        router
            .set_agent_state(secs(70), &agent("a1"), RequestedState::Available)
            .is_ok()
    );
    assert_eq!(router.poll_offer(secs(70)).map(|o| o.call), Some(CallId(1)));
    assert_eq!(router.poll_callback(), None);
}

#[test]
fn wrong_inputs_are_refused_and_change_nothing() {
    let mut router = router(1, 0, 1000);
    // A caller being offered cannot hand over their place.
    enqueue(&mut router, secs(0), 4, Priority::Routine);
    assert!(router.poll_offer(secs(0)).is_some());
    assert_eq!(
        router.hold_place(secs(0), CallId(4), CallbackId(3)),
        Err(CallbackError::NotWaiting(CallId(4)))
    );
    assert_eq!(router.cancel(secs(0), CallId(4)), Ok(()));
    let mut elsewhere = entry(1, secs(0), Priority::Routine);
    elsewhere.queue = queue("plain");
    assert_eq!(
        router.add_callback(secs(0), elsewhere),
        Err(CallbackError::NotEnabled(queue("plain")))
    );
    let mut nowhere = entry(1, secs(0), Priority::Routine);
    nowhere.queue = queue("gone");
    assert_eq!(
        router.add_callback(secs(0), nowhere),
        Err(CallbackError::UnknownQueue(queue("gone")))
    );
    add(&mut router, secs(0), entry(1, secs(0), Priority::Routine));
    assert_eq!(
        router.add_callback(secs(0), entry(1, secs(0), Priority::Routine)),
        Err(CallbackError::Duplicate(CallbackId(1)))
    );
    assert_eq!(
        router.callback_answered(secs(0), CallbackId(1)),
        Err(CallbackError::WrongPhase {
            callback: CallbackId(1),
            expected: "dialing the patient"
        })
    );
    assert_eq!(router.poll_offer(secs(0)), None);
    assert_eq!(dials(&mut router).len(), 1);
    assert_eq!(
        router.callback_agent_answered(secs(1), CallbackId(1), &agent("a9")),
        Err(CallbackError::WrongPhase {
            callback: CallbackId(1),
            expected: "ringing that agent"
        })
    );
    assert_eq!(
        router.callback_failed(secs(1), CallbackId(1), CallbackFailure::Failed),
        Err(CallbackError::WrongPhase {
            callback: CallbackId(1),
            expected: "dialing the patient"
        })
    );
    assert_eq!(
        router.callback_ended(secs(1), CallbackId(2)),
        Err(CallbackError::UnknownCallback(CallbackId(2)))
    );
    enqueue(&mut router, secs(1), 5, Priority::Routine);
    assert_eq!(
        router.hold_place(secs(1), CallId(6), CallbackId(3)),
        Err(CallbackError::UnknownCall(CallId(6)))
    );
    assert_eq!(
        router.hold_place(secs(1), CallId(5), CallbackId(1)),
        Err(CallbackError::Duplicate(CallbackId(1)))
    );
    let plain = router.enqueue(
        secs(1),
        CallId(9),
        &queue("plain"),
        Priority::Routine,
        CallerContext::default(),
    );
    assert!(plain.is_ok());
    assert_eq!(
        router.hold_place(secs(1), CallId(9), CallbackId(3)),
        Err(CallbackError::NotEnabled(queue("plain")))
    );
    assert_eq!(state(&router, "a1"), Some(AgentState::Ringing));
    assert_eq!(router.active_calls(), 2);
    assert_eq!(router.active_callbacks(), 1);
}

#[test]
fn entries_outlive_a_reload_that_turns_callbacks_off() {
    let mut router = router(1, 3, 1000);
    assert!(
        router
            .set_agent_state(secs(0), &agent("a1"), RequestedState::Away)
            .is_ok()
    );
    add(&mut router, secs(0), entry(1, secs(0), Priority::Routine));
    // The queue keeps its id but loses `[queues.callback]`; the promised
    // call back is still made, once (no retry), then the entry is a lead.
    let mut q = QueueConfig::new("q", "q", Strategy::LongestIdle);
    q.max_wait = None;
    q.on_max_wait = None;
    let roster = vec![AgentConfig::new("a1", "agent", ["q"])];
    assert_eq!(router.reconfigure(vec![q], roster), Ok(()));
    assert_eq!(
        router.add_callback(secs(1), entry(2, secs(1), Priority::Routine)),
        Err(CallbackError::NotEnabled(queue("q")))
    );
    assert!(
        router
            .set_agent_state(secs(2), &agent("a1"), RequestedState::Available)
            .is_ok()
    );
    assert_eq!(router.poll_offer(secs(2)), None);
    assert_eq!(dials(&mut router).len(), 1);
    assert_eq!(
        router.callback_agent_answered(secs(3), CallbackId(1), &agent("a1")),
        Ok(())
    );
    assert_eq!(
        router.callback_failed(secs(4), CallbackId(1), CallbackFailure::NoAnswer),
        Ok(())
    );
    assert!(matches!(
        router.poll_callback(),
        Some(CallbackEvent::Exhausted { attempts: 1, .. })
    ));
    assert_eq!(router.active_callbacks(), 0);
}

#[test]
fn a_callback_keeps_the_shared_place_its_caller_had() {
    let mut router = router(0, 2, 1000);
    enqueue(&mut router, secs(100), 1, Priority::Routine);
    enqueue(&mut router, secs(110), 2, Priority::Routine);
    let before = router.line_place(CallId(1)).map(|place| place.score);
    assert_eq!(router.hold_place(secs(120), CallId(1), CB), Ok(1));
    let mut places: Vec<LinePlace> = router.line_places(secs(120)).collect();
    places.sort_by_key(|place| place.score);
    let entries: Vec<LineEntry> = places.iter().map(|place| place.entry).collect();
    assert_eq!(
        entries,
        [LineEntry::Callback(CB), LineEntry::Call(CallId(2))],
        "the callback is ahead of the later caller"
    );
    assert_eq!(Some(places[0].score), before, "the caller's score, kept");
    assert_eq!(router.callback_place(CB), Some(places[0].clone()));
    // A callback's member never meets a call's.
    assert_ne!(
        LineEntry::Callback(CallbackId(2)).member(),
        LineEntry::Call(CallId(2)).member()
    );
    // One restored from the journal has the same score as the caller had.
    add(
        &mut router,
        secs(130),
        entry(7, secs(100), Priority::Routine),
    );
    assert_eq!(
        router
            .callback_place(CallbackId(7))
            .map(|place| place.score),
        before
    );
}

#[test]
fn a_callback_being_dialed_is_out_of_line_and_back_after_a_refusal() {
    let mut router = router(1, 2, 1000);
    assert!(
        router
            .set_agent_state(secs(0), &agent("a1"), RequestedState::Away)
            .is_ok()
    );
    add(&mut router, secs(0), entry(7, secs(0), Priority::Routine));
    assert_eq!(router.line_places(secs(0)).count(), 1);
    assert!(
        router
            .set_agent_state(secs(1), &agent("a1"), RequestedState::Available)
            .is_ok()
    );
    assert_eq!(router.poll_offer(secs(1)), None);
    assert_eq!(dials(&mut router).len(), 1);
    assert_eq!(
        router.line_places(secs(1)).count(),
        0,
        "dialing: out of line"
    );
    assert!(
        router.callback_place(CallbackId(7)).is_some(),
        "still named"
    );
    // Another node's caller was ahead: the claim is refused, back in line.
    assert_eq!(
        router.callback_agent_failed(
            secs(2),
            CallbackId(7),
            &agent("a1"),
            OfferFailure::ClaimedElsewhere
        ),
        Ok(())
    );
    let entries: Vec<LineEntry> = router
        .line_places(secs(2))
        .map(|place| place.entry)
        .collect();
    assert_eq!(entries, [LineEntry::Callback(CallbackId(7))]);
}

#[test]
fn paused_callbacks_are_neither_dialed_nor_shared_but_kept() {
    let mut router = router(1, 2, 1000);
    assert!(
        router
            .set_agent_state(secs(0), &agent("a1"), RequestedState::Away)
            .is_ok()
    );
    enqueue(&mut router, secs(0), 1, Priority::Routine);
    enqueue(&mut router, secs(10), 2, Priority::Routine);
    router.pause_callbacks();
    assert!(router.callbacks_paused());
    // The drain keeps call 1's place: held, but neither shared nor dialed.
    assert_eq!(router.hold_place(secs(20), CallId(1), CB), Ok(1));
    let entries: Vec<LineEntry> = router
        .line_places(secs(20))
        .map(|place| place.entry)
        .collect();
    assert_eq!(entries, [LineEntry::Call(CallId(2))]);
    assert!(
        router
            .set_agent_state(secs(30), &agent("a1"), RequestedState::Available)
            .is_ok()
    );
    events(&mut router);
    let offer = router.poll_offer(secs(30)).map(|offer| offer.call);
    assert_eq!(offer, Some(CallId(2)), "the live caller is served");
    assert!(dials(&mut router).is_empty(), "no dial while paused");
    let status = router.callback_status(CB).map(|s| (s.enqueued_at, s.phase));
    assert_eq!(status, Some((secs(0), CallbackPhase::Waiting)));
}

#[test]
fn a_callback_waiting_for_its_retry_is_out_of_the_shared_line_until_due() {
    let mut router = router(1, 2, 1000);
    add(&mut router, secs(0), entry(7, secs(0), Priority::Routine));
    assert_eq!(router.poll_offer(secs(0)), None);
    assert_eq!(dials(&mut router).len(), 1);
    assert_eq!(
        router.callback_agent_answered(secs(1), CallbackId(7), &agent("a1")),
        Ok(())
    );
    // The patient is busy: tried again 60 s later, in its place.
    assert_eq!(
        router.callback_failed(secs(2), CallbackId(7), CallbackFailure::Busy),
        Ok(())
    );
    let _ = router.poll_callback();
    assert_eq!(router.line_places(secs(30)).count(), 0, "not due");
    let entries: Vec<LineEntry> = router
        .line_places(secs(62))
        .map(|place| place.entry)
        .collect();
    assert_eq!(entries, [LineEntry::Callback(CallbackId(7))], "due again");
    let place = router
        .callback_place(CallbackId(7))
        .map(|place| place.score);
    assert_eq!(
        place,
        router.line_places(secs(62)).next().map(|place| place.score),
        "the same score"
    );
}
