//! The router on the demo clinic: offers, reports, overflow, timers,
//! preferences, statistics and live reconfiguration.

use std::time::Duration;

use super::util::*;
use crate::*;

fn enqueue(
    router: &mut Router,
    now: Millis,
    call: u64,
    queue_id: &str,
    priority: Priority,
) -> Enqueued {
    match router.enqueue(
        now,
        CallId(call),
        &queue(queue_id),
        priority,
        CallerContext::default(),
    ) {
        Ok(enqueued) => enqueued,
        Err(error) => panic!("enqueue {call}: {error}"),
    }
}

fn register(router: &mut Router, now: Millis, ids: &[&str]) {
    for id in ids {
        assert_eq!(router.registered(now, &agent(id)), Ok(()));
    }
}

fn state(router: &Router, id: &str) -> Option<AgentState> {
    router.table().state(&agent(id))
}

fn only_agent(offer: &Offer) -> String {
    assert_eq!(offer.agents.len(), 1, "{offer:?}");
    offer.agents.as_slice()[0].to_string()
}

#[test]
fn an_available_agent_gets_the_caller_and_the_call_runs_its_course() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1003"]);
    let enqueued = enqueue(&mut router, secs(10), 1, "pediatrics", Priority::Routine);
    assert_eq!(
        (
            enqueued.position,
            enqueued.estimated_wait,
            enqueued.overflowed_from
        ),
        (1, None, None)
    );
    let offer = router.poll_offer(secs(10)).expect("Carol is available");
    assert_eq!(only_agent(&offer), "1003");
    assert_eq!(
        (offer.queue.as_str(), offer.ring_timeout),
        ("pediatrics", Duration::from_secs(15))
    );
    assert_eq!(router.poll_offer(secs(10)), None);
    assert_eq!(state(&router, "1003"), Some(AgentState::Ringing));
    assert_eq!(router.answered(secs(14), CallId(1), &agent("1003")), Ok(()));
    assert_eq!(state(&router, "1003"), Some(AgentState::OnCall));
    assert_eq!(
        router.call_status(CallId(1)).map(|s| s.phase),
        Some(CallPhase::Connected(agent("1003")))
    );
    assert_eq!(router.call_ended(secs(100), CallId(1)), Ok(()));
    assert_eq!(state(&router, "1003"), Some(AgentState::WrapUp));
    assert_eq!(router.poll_timeout(), Some(secs(102)));
    router.handle_timeout(secs(101));
    assert_eq!(state(&router, "1003"), Some(AgentState::WrapUp));
    router.handle_timeout(secs(102));
    assert_eq!(state(&router, "1003"), Some(AgentState::Available));
    assert_eq!(router.poll_timeout(), None);
    assert_eq!(router.active_calls(), 0);
    let changes: Vec<_> = events(&mut router)
        .into_iter()
        .filter_map(|event| match event {
            RouterEvent::AgentStateChanged { to, .. } => Some(to.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        ["available", "ringing", "on_call", "wrap_up", "available"]
    );
    let stats = router.queue_stats_for(secs(103), &queue("pediatrics"));
    let counters = stats.map(|s| s.counters).unwrap_or_default();
    assert_eq!(
        (
            counters.entered,
            counters.answered,
            counters.answered_within_sla
        ),
        (1, 1, 1)
    );
}

#[test]
fn urgent_callers_are_served_first_then_first_come_first_served() {
    let mut router = demo_router();
    enqueue(&mut router, secs(0), 1, "front-desk", Priority::Routine);
    enqueue(&mut router, secs(1), 2, "front-desk", Priority::Routine);
    let urgent = enqueue(&mut router, secs(2), 3, "front-desk", Priority::Urgent);
    assert_eq!(urgent.position, 1);
    assert_eq!(router.position(secs(2), CallId(1)), Some(2));
    assert_eq!(router.poll_offer(secs(2)), None, "nobody is signed in");
    register(&mut router, secs(3), &["1001"]);
    let served: Vec<_> = (0..3)
        .map(|n| {
            let offer = router.poll_offer(secs(3 + n)).expect("Alice is free");
            assert_eq!(
                router.answered(secs(3 + n), offer.call, &agent("1001")),
                Ok(())
            );
            assert_eq!(router.call_ended(secs(3 + n), offer.call), Ok(()));
            assert_eq!(
                router
                    .set_agent_state(secs(3 + n), &agent("1001"), RequestedState::Available)
                    .map(|s| s.state),
                Ok(AgentState::Available)
            );
            offer.call.0
        })
        .collect();
    assert_eq!(served, [3, 1, 2]);
}

#[test]
fn callers_wait_with_nobody_signed_in_then_overflow_at_max_wait() {
    let mut router = demo_router();
    enqueue(&mut router, secs(0), 1, "cardiology", Priority::Routine);
    assert_eq!(router.poll_timeout(), Some(secs(90)));
    router.handle_timeout(secs(89));
    assert_eq!(
        router
            .call_status(CallId(1))
            .map(|s| s.queue.to_string())
            .as_deref(),
        Some("cardiology")
    );
    router.handle_timeout(secs(90));
    let overflowed = events(&mut router);
    assert_eq!(
        overflowed,
        [RouterEvent::Overflowed {
            call: CallId(1),
            from: queue("cardiology"),
            to: queue("front-desk"),
            priority: Priority::Routine,
            reason: OverflowReason::MaxWait,
        }]
    );
    // Front desk: 180 s more, counted from entering it, then the message.
    assert_eq!(router.poll_timeout(), Some(secs(270)));
    let status = router.call_status(CallId(1));
    assert_eq!(
        status.map(|s| s.enqueued_at),
        Some(secs(0)),
        "the original enqueue time is kept"
    );
    register(&mut router, secs(100), &["1001"]);
    let offer = router.poll_offer(secs(100)).expect("Alice takes it");
    assert_eq!(offer.waited, Duration::from_secs(100));
    // Alice misses it; the caller keeps waiting until 270 s, then gives up.
    assert_eq!(
        router.offer_failed(secs(115), CallId(1), &agent("1001"), OfferFailure::NoAnswer),
        Ok(())
    );
    assert_eq!(
        router
            .set_agent_state(secs(116), &agent("1001"), RequestedState::Away)
            .map(|s| s.state),
        Ok(AgentState::Away)
    );
    let _ = events(&mut router);
    router.handle_timeout(secs(270));
    assert_eq!(
        events(&mut router),
        [RouterEvent::GiveUp {
            call: CallId(1),
            queue: queue("front-desk"),
            message: PromptId::new("please-call-back")
        }]
    );
    assert_eq!(router.active_calls(), 0);
    let cardiology = router
        .queue_stats_for(secs(271), &queue("cardiology"))
        .map(|s| s.counters);
    assert_eq!(cardiology.map(|c| c.overflowed), Some(1));
    let front = router
        .queue_stats_for(secs(271), &queue("front-desk"))
        .map(|s| s.counters);
    assert_eq!(front.map(|c| (c.entered, c.given_up)), Some((1, 1)));
}

#[test]
fn urgent_care_overflows_still_urgent_and_keeps_its_place() {
    let mut router = demo_router();
    enqueue(&mut router, secs(10), 1, "front-desk", Priority::Routine);
    enqueue(&mut router, secs(0), 2, "urgent-care", Priority::Urgent);
    router.handle_timeout(secs(60));
    let moved = events(&mut router);
    assert!(
        matches!(
            &moved[..],
            [RouterEvent::Overflowed {
                priority: Priority::Urgent,
                ..
            }]
        ),
        "{moved:?}"
    );
    assert_eq!(router.position(secs(60), CallId(2)), Some(1));
    register(&mut router, secs(61), &["1005"]);
    let offer = router.poll_offer(secs(61)).expect("Erin is free");
    assert_eq!(
        (offer.call, offer.priority, offer.waited),
        (CallId(2), Priority::Urgent, Duration::from_secs(61))
    );
}

#[test]
fn a_queue_without_a_max_wait_keeps_its_callers_until_answered() {
    let mut queues = demo_queues();
    for config in &mut queues {
        if config.id.as_str() == "nurse-line" {
            config.max_wait = None;
            config.on_max_wait = None;
        }
    }
    let mut router = Router::new(RouterConfig::default(), queues, demo_agents())
        .unwrap_or_else(|error| panic!("valid: {error}"));
    enqueue(&mut router, secs(0), 1, "nurse-line", Priority::Routine);
    assert_eq!(router.poll_timeout(), None, "no max-wait timer");
    router.handle_timeout(secs(7 * 24 * 3_600));
    assert_eq!(events(&mut router), []);
    assert_eq!(
        router
            .call_status(CallId(1))
            .map(|s| s.queue.to_string())
            .as_deref(),
        Some("nurse-line")
    );
    // A failed offer does not overflow the caller either.
    let late = secs(7 * 24 * 3_600);
    register(&mut router, late, &["1007"]);
    assert!(router.poll_offer(late).is_some());
    assert_eq!(
        router.offer_failed(late, CallId(1), &agent("1007"), OfferFailure::NoAnswer),
        Ok(())
    );
    assert!(!events(&mut router).iter().any(|e| matches!(
        e,
        RouterEvent::Overflowed { .. } | RouterEvent::GiveUp { .. } | RouterEvent::Voicemail { .. }
    )));
    assert_eq!(router.active_calls(), 1);
}

#[test]
fn a_max_wait_passing_while_ringing_waits_for_the_ring_to_end() {
    let mut router = demo_router();
    enqueue(&mut router, secs(0), 1, "cardiology", Priority::Routine);
    register(&mut router, secs(80), &["1002"]);
    let offer = router.poll_offer(secs(80)).expect("Bob is free");
    router.handle_timeout(secs(90));
    assert_eq!(
        router
            .call_status(CallId(1))
            .map(|s| s.queue.to_string())
            .as_deref(),
        Some("cardiology")
    );
    let _ = events(&mut router);
    assert_eq!(
        router.offer_failed(secs(95), offer.call, &agent("1002"), OfferFailure::NoAnswer),
        Ok(())
    );
    let after = events(&mut router);
    assert!(
        after.iter().any(
            |e| matches!(e, RouterEvent::Overflowed { to, .. } if to.as_str() == "front-desk")
        ),
        "{after:?}"
    );
}

#[test]
fn a_full_queue_sends_callers_down_its_overflow_chain() {
    let mut queues = demo_queues();
    for config in &mut queues {
        if config.id.as_str() == "cardiology" {
            config.max_length = Some(1);
        }
        if config.id.as_str() == "front-desk" {
            config.max_length = Some(1);
        }
    }
    let mut router = Router::new(RouterConfig::default(), queues, demo_agents()).expect("valid");
    enqueue(&mut router, secs(0), 1, "cardiology", Priority::Routine);
    let second = enqueue(&mut router, secs(1), 2, "cardiology", Priority::Routine);
    assert_eq!(second.queue.as_str(), "front-desk");
    assert_eq!(
        second.overflowed_from.as_ref().map(QueueId::as_str),
        Some("cardiology")
    );
    let third = router.enqueue(
        secs(2),
        CallId(3),
        &queue("cardiology"),
        Priority::Routine,
        CallerContext::default(),
    );
    assert_eq!(
        third,
        Err(EnqueueError::Refused {
            queue: queue("front-desk"),
            message: PromptId::new("please-call-back")
        })
    );
    let duplicate = router.enqueue(
        secs(2),
        CallId(1),
        &queue("cardiology"),
        Priority::Routine,
        CallerContext::default(),
    );
    assert_eq!(duplicate, Err(EnqueueError::DuplicateCall(CallId(1))));
    let unknown = router.enqueue(
        secs(2),
        CallId(4),
        &queue("radiology"),
        Priority::Routine,
        CallerContext::default(),
    );
    assert_eq!(unknown, Err(EnqueueError::UnknownQueue(queue("radiology"))));
    // Call 1 reaches max wait while front desk is full: it skips to the
    // front desk's own action, the message.
    router.handle_timeout(secs(90));
    assert_eq!(
        events(&mut router),
        [RouterEvent::GiveUp {
            call: CallId(1),
            queue: queue("front-desk"),
            message: PromptId::new("please-call-back")
        }]
    );
}

#[test]
fn agents_idle_since_the_same_millisecond_are_offered_by_id() {
    // The end-to-end tests rely on it: an agent registered after another
    // is never rung first, even within the same millisecond.
    let mut router = demo_router();
    register(&mut router, secs(0), &["1006"]);
    register(&mut router, secs(0), &["1001"]);
    enqueue(&mut router, secs(1), 1, "front-desk", Priority::Routine);
    let offer = router.poll_offer(secs(1)).expect("an offer");
    assert_eq!(only_agent(&offer), "1001", "the lower id on a tie");
}

#[test]
fn no_answer_moves_to_the_next_agent_and_three_misses_mean_away() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1001"]);
    register(&mut router, secs(1), &["1006"]);
    enqueue(&mut router, secs(2), 1, "front-desk", Priority::Routine);
    let first = router.poll_offer(secs(2)).expect("an offer");
    assert_eq!(only_agent(&first), "1001", "Alice has been idle longest");
    assert_eq!(
        router.offer_failed(secs(17), CallId(1), &agent("1001"), OfferFailure::NoAnswer),
        Ok(())
    );
    let second = router.poll_offer(secs(17)).expect("the next agent");
    assert_eq!(only_agent(&second), "1006");
    assert_eq!(
        router.offer_failed(secs(18), CallId(1), &agent("1006"), OfferFailure::Busy),
        Ok(())
    );
    // Everyone missed it: the longest idle of them again, Alice.
    let expected = [
        ("1001", 19, OfferFailure::Rejected),
        ("1006", 34, OfferFailure::Unreachable),
        ("1001", 35, OfferFailure::NoAnswer),
        ("1006", 50, OfferFailure::NoAnswer),
    ];
    let mut now = 18;
    for (id, at, failure) in expected {
        let offer = router.poll_offer(secs(now)).expect("another try");
        assert_eq!(only_agent(&offer), id);
        assert_eq!(
            router.offer_failed(secs(at), CallId(1), &agent(id), failure),
            Ok(())
        );
        now = at;
    }
    assert_eq!(
        state(&router, "1001"),
        Some(AgentState::Away),
        "third miss in a row"
    );
    assert_eq!(state(&router, "1006"), Some(AgentState::Away));
    assert_eq!(router.poll_offer(secs(50)), None);
    assert_eq!(
        router.call_status(CallId(1)).map(|s| s.phase),
        Some(CallPhase::Waiting)
    );
    // The queue keeps each miss under its reason.
    let missed = router
        .queue_stats_for(secs(50), &queue("front-desk"))
        .map(|s| s.counters.missed)
        .unwrap_or_default();
    assert_eq!(
        (
            missed.no_answer,
            missed.busy,
            missed.rejected,
            missed.unreachable
        ),
        (3, 1, 1, 1)
    );
    assert_eq!(missed.of(OfferFailure::Busy), 1);
    assert_eq!(missed.total(), 6);
    // Reports that do not match are refused and change nothing.
    assert!(matches!(
        router.answered(secs(51), CallId(1), &agent("1001")),
        Err(RoutingError::NotOffered { .. })
    ));
    assert_eq!(
        router.answered(secs(51), CallId(9), &agent("1001")),
        Err(RoutingError::UnknownCall(CallId(9)))
    );
}

#[test]
fn ring_all_rings_everyone_and_the_first_answer_wins() {
    let mut agents = demo_agents();
    agents.push(AgentConfig::new("1008", "Hank", ["nurse-line"]));
    agents.push(AgentConfig::new("1009", "Ivy", ["nurse-line"]));
    let mut router = Router::new(RouterConfig::default(), demo_queues(), agents).expect("valid");
    register(&mut router, secs(0), &["1007", "1008", "1009"]);
    enqueue(&mut router, secs(1), 1, "nurse-line", Priority::Routine);
    let offer = router.poll_offer(secs(1)).expect("ring-all");
    let rung: Vec<_> = offer.agents.iter().map(AgentId::to_string).collect();
    assert_eq!(rung, ["1007", "1008", "1009"]);
    assert_eq!(offer.ring_timeout, Duration::from_secs(20));
    // One declines, one answers: the third is released without a miss.
    assert_eq!(
        router.offer_failed(secs(2), CallId(1), &agent("1009"), OfferFailure::Rejected),
        Ok(())
    );
    assert_eq!(router.answered(secs(3), CallId(1), &agent("1008")), Ok(()));
    assert_eq!(state(&router, "1007"), Some(AgentState::Available));
    assert_eq!(state(&router, "1008"), Some(AgentState::OnCall));
    let misses = |id: &str| {
        router
            .table()
            .snapshot(&agent(id))
            .map(|s| s.consecutive_misses)
    };
    assert_eq!((misses("1007"), misses("1009")), (Some(0), Some(1)));
    assert!(matches!(
        router.answered(secs(3), CallId(1), &agent("1007")),
        Err(RoutingError::NotOffered { .. })
    ));
    // Nobody answering a ring-all puts the caller back in line.
    enqueue(&mut router, secs(4), 2, "nurse-line", Priority::Routine);
    let offer = router.poll_offer(secs(4)).expect("the other two");
    assert_eq!(offer.agents.len(), 2);
    for id in offer.agents.iter() {
        assert_eq!(
            router.offer_failed(secs(24), CallId(2), id, OfferFailure::NoAnswer),
            Ok(())
        );
    }
    assert_eq!(
        router.call_status(CallId(2)).map(|s| s.phase),
        Some(CallPhase::Waiting)
    );
}

#[test]
fn a_caller_hanging_up_releases_ringing_agents() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1003"]);
    enqueue(&mut router, secs(1), 1, "pediatrics", Priority::Routine);
    enqueue(&mut router, secs(2), 2, "pediatrics", Priority::Routine);
    assert!(router.poll_offer(secs(2)).is_some());
    assert_eq!(router.cancel(secs(3), CallId(2)), Ok(()), "the waiting one");
    assert_eq!(router.cancel(secs(4), CallId(1)), Ok(()), "the ringing one");
    assert_eq!(state(&router, "1003"), Some(AgentState::Available));
    assert_eq!(
        router
            .table()
            .snapshot(&agent("1003"))
            .map(|s| s.consecutive_misses),
        Some(0)
    );
    assert_eq!(
        router.cancel(secs(5), CallId(1)),
        Err(RoutingError::UnknownCall(CallId(1)))
    );
    let counters = router
        .queue_stats_for(secs(5), &queue("pediatrics"))
        .map(|s| s.counters);
    assert_eq!(counters.map(|c| c.abandoned), Some(2));
}

#[test]
fn an_agent_who_unregisters_on_a_call_finishes_it_and_goes_offline() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1002"]);
    enqueue(&mut router, secs(1), 1, "cardiology", Priority::Routine);
    assert!(router.poll_offer(secs(1)).is_some());
    assert_eq!(router.answered(secs(2), CallId(1), &agent("1002")), Ok(()));
    assert_eq!(router.unregistered(secs(3), &agent("1002")), Ok(()));
    assert_eq!(state(&router, "1002"), Some(AgentState::OnCall));
    assert_eq!(router.call_ended(secs(30), CallId(1)), Ok(()));
    assert_eq!(state(&router, "1002"), Some(AgentState::Offline));
    assert_eq!(
        router.poll_timeout(),
        None,
        "no wrap-up for an offline agent"
    );
}

#[test]
fn wrap_up_ended_early_is_not_ended_twice() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1002"]);
    enqueue(&mut router, secs(1), 1, "cardiology", Priority::Routine);
    assert!(router.poll_offer(secs(1)).is_some());
    assert_eq!(router.answered(secs(2), CallId(1), &agent("1002")), Ok(()));
    assert_eq!(router.call_ended(secs(10), CallId(1)), Ok(()));
    assert!(
        router
            .set_agent_state(secs(11), &agent("1002"), RequestedState::Available)
            .is_ok()
    );
    assert_eq!(router.poll_timeout(), None, "the wrap-up timer is stale");
    router.handle_timeout(secs(12));
    assert_eq!(state(&router, "1002"), Some(AgentState::Available));
}

#[test]
fn the_coordinator_gets_a_known_patient_first_while_others_are_served() {
    let mut queues = demo_queues();
    for config in &mut queues {
        config.preferences.coordinator_for = Some(Duration::from_secs(30));
    }
    let mut router = Router::new(RouterConfig::default(), queues, demo_agents()).expect("valid");
    register(&mut router, secs(0), &["1003", "1006"]);
    // Carol (the coordinator) is busy with call 1.
    enqueue(&mut router, secs(1), 1, "pediatrics", Priority::Routine);
    let first = router.poll_offer(secs(1)).expect("an offer");
    let busy = only_agent(&first);
    assert_eq!(busy, "1003");
    assert_eq!(router.answered(secs(1), CallId(1), &agent("1003")), Ok(()));
    let patient = CallerContext {
        coordinator: Some(agent("1003")),
        ..CallerContext::default()
    };
    assert!(
        router
            .enqueue(
                secs(2),
                CallId(2),
                &queue("pediatrics"),
                Priority::Routine,
                patient.clone()
            )
            .is_ok()
    );
    enqueue(&mut router, secs(3), 3, "pediatrics", Priority::Routine);
    // Frank is free: call 3 gets him, call 2 waits for Carol.
    let offer = router.poll_offer(secs(3)).expect("call 3 is served");
    assert_eq!(
        (offer.call, only_agent(&offer).as_str()),
        (CallId(3), "1006")
    );
    assert_eq!(router.poll_offer(secs(3)), None);
    // Carol is free at 20 s (after wrap-up): she gets call 2.
    assert_eq!(router.call_ended(secs(18), CallId(1)), Ok(()));
    router.handle_timeout(secs(20));
    let offer = router
        .poll_offer(secs(20))
        .expect("Carol takes her patient");
    assert_eq!(
        (offer.call, only_agent(&offer).as_str()),
        (CallId(2), "1003")
    );
    // Another known patient of Carol's, with Carol busy, goes to anyone
    // after 30 s.
    assert_eq!(router.answered(secs(21), CallId(2), &agent("1003")), Ok(()));
    assert_eq!(router.answered(secs(21), CallId(3), &agent("1006")), Ok(()));
    assert_eq!(router.call_ended(secs(22), CallId(3)), Ok(()));
    router.handle_timeout(secs(24));
    assert!(
        router
            .enqueue(
                secs(25),
                CallId(4),
                &queue("pediatrics"),
                Priority::Routine,
                patient
            )
            .is_ok()
    );
    assert_eq!(router.poll_offer(secs(25)), None, "waits for Carol");
    assert_eq!(router.poll_timeout(), Some(secs(55)));
    router.handle_timeout(secs(55));
    let offer = router
        .poll_offer(secs(55))
        .expect("Frank, after the window");
    assert_eq!(
        (offer.call, only_agent(&offer).as_str()),
        (CallId(4), "1006")
    );
}

#[test]
fn a_coordinator_who_is_not_signed_in_is_not_waited_for() {
    let mut queues = demo_queues();
    for config in &mut queues {
        config.preferences.coordinator_for = Some(Duration::from_secs(30));
    }
    let mut router = Router::new(RouterConfig::default(), queues, demo_agents()).expect("valid");
    register(&mut router, secs(0), &["1006"]);
    let patient = CallerContext {
        coordinator: Some(agent("1003")),
        ..CallerContext::default()
    };
    assert!(
        router
            .enqueue(
                secs(1),
                CallId(1),
                &queue("pediatrics"),
                Priority::Routine,
                patient
            )
            .is_ok()
    );
    let offer = router.poll_offer(secs(1)).expect("Frank");
    assert_eq!(only_agent(&offer), "1006");
}

#[test]
fn same_branch_and_language_are_preferred() {
    let mut agents = demo_agents();
    for config in &mut agents {
        if config.id.as_str() == "1006" {
            config.languages = vec![Language::new("es")];
        }
    }
    let mut router = Router::new(RouterConfig::default(), demo_queues(), agents).expect("valid");
    register(&mut router, secs(0), &["1003", "1006"]);
    let south = CallerContext {
        branch: Some(Branch::new("south")),
        ..CallerContext::default()
    };
    let north = CallerContext {
        branch: Some(Branch::new("north")),
        ..CallerContext::default()
    };
    let spanish_south = CallerContext {
        branch: Some(Branch::new("south")),
        language: Some(Language::new("es")),
        coordinator: None,
    };
    for (call, context, expected) in [
        (1, north, "1006"),
        (2, south, "1003"),
        (3, spanish_south, "1006"),
    ] {
        assert!(
            router
                .enqueue(
                    secs(1),
                    CallId(call),
                    &queue("pediatrics"),
                    Priority::Routine,
                    context
                )
                .is_ok()
        );
        let offer = router.poll_offer(secs(1)).expect("an offer");
        assert_eq!(only_agent(&offer), expected, "call {call}");
        assert_eq!(router.cancel(secs(1), CallId(call)), Ok(()));
    }
}

#[test]
fn statistics_match_the_api_and_the_estimate_needs_ten_samples() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1003", "1006"]);
    assert!(
        router
            .set_agent_state(secs(0), &agent("1006"), RequestedState::Away)
            .is_ok()
    );
    let stats = router
        .queue_stats_for(secs(0), &queue("pediatrics"))
        .expect("pediatrics");
    assert_eq!(
        (
            stats.waiting,
            stats.agents_available,
            stats.agents_signed_in
        ),
        (0, 1, 2)
    );
    assert_eq!(stats.agents.in_state(AgentState::Away), 1);
    for n in 0..9 {
        let t = secs(100 * n);
        enqueue(&mut router, t, n, "pediatrics", Priority::Routine);
        let offer = router.poll_offer(secs(100 * n + n)).expect("Carol");
        assert_eq!(
            router.answered(secs(100 * n + n), offer.call, &agent("1003")),
            Ok(())
        );
        assert_eq!(router.call_ended(secs(100 * n + 50), offer.call), Ok(()));
        router.handle_timeout(secs(100 * n + 52));
    }
    assert_eq!(
        router.estimate_wait(&queue("pediatrics"), Priority::Routine),
        None,
        "9 samples"
    );
    enqueue(&mut router, secs(1_000), 9, "pediatrics", Priority::Routine);
    assert!(router.poll_offer(secs(1_009)).is_some());
    assert_eq!(
        router.answered(secs(1_009), CallId(9), &agent("1003")),
        Ok(())
    );
    // Waits 0..=9 s: the 80th percentile is 7 s.
    assert_eq!(
        router.estimate_wait(&queue("pediatrics"), Priority::Routine),
        Some(Duration::from_secs(7))
    );
    assert_eq!(
        router.estimate_wait(&queue("pediatrics"), Priority::Urgent),
        None
    );
    enqueue(
        &mut router,
        secs(1_010),
        10,
        "pediatrics",
        Priority::Routine,
    );
    let enqueued = enqueue(
        &mut router,
        secs(1_012),
        11,
        "pediatrics",
        Priority::Routine,
    );
    assert_eq!(
        (enqueued.position, enqueued.estimated_wait),
        (2, Some(Duration::from_secs(7)))
    );
    let stats = router.queue_stats(secs(1_015));
    let pediatrics = stats
        .iter()
        .find(|s| s.id.as_str() == "pediatrics")
        .expect("listed");
    assert_eq!(
        (pediatrics.waiting, pediatrics.longest_wait),
        (2, Duration::from_secs(5))
    );
    assert!(!pediatrics.over_sla());
    assert_eq!(pediatrics.agents.in_state(AgentState::OnCall), 1);
    let ids: Vec<_> = stats.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "cardiology",
            "dermatology",
            "front-desk",
            "nurse-line",
            "orthopedics",
            "pediatrics",
            "urgent-care"
        ]
    );
    let later = router
        .queue_stats_for(secs(1_080), &queue("pediatrics"))
        .expect("listed");
    assert!(later.over_sla());
}

#[test]
fn live_reconfiguration_keeps_agents_and_callers() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1002", "1003"]);
    enqueue(&mut router, secs(1), 1, "cardiology", Priority::Routine);
    let offer = router.poll_offer(secs(1)).expect("Bob");
    assert_eq!(router.answered(secs(2), offer.call, &agent("1002")), Ok(()));
    enqueue(&mut router, secs(3), 2, "dermatology", Priority::Routine);
    // The reload: dermatology is gone, cardiology waits longer, Carol also
    // takes cardiology, a new agent appears.
    let mut queues: Vec<_> = demo_queues()
        .into_iter()
        .filter(|q| q.id.as_str() != "dermatology")
        .collect();
    for config in &mut queues {
        if config.id.as_str() == "cardiology" {
            config.max_wait = Some(Duration::from_secs(300));
        }
        if config.id.as_str() == "orthopedics" {
            config.skills = vec![SkillRequirement::new("orthopedics")];
        }
    }
    let mut agents = demo_agents();
    for config in &mut agents {
        if config.id.as_str() == "1003" {
            config.skills.push(AgentSkill::new("cardiology"));
        }
    }
    agents.push(AgentConfig::new("1010", "Judy", ["cardiology"]));
    let bad = router.reconfigure(queues.clone(), vec![agents[0].clone(), agents[0].clone()]);
    assert!(bad.is_err());
    assert_eq!(router.reconfigure(queues, agents), Ok(()));
    assert_eq!(state(&router, "1002"), Some(AgentState::OnCall));
    assert_eq!(state(&router, "1010"), Some(AgentState::Offline));
    // The removed queue still holds its caller, takes no new one.
    assert_eq!(
        router.call_status(CallId(2)).map(|s| s.phase),
        Some(CallPhase::Waiting)
    );
    let refused = router.enqueue(
        secs(4),
        CallId(3),
        &queue("dermatology"),
        Priority::Routine,
        CallerContext::default(),
    );
    assert_eq!(
        refused,
        Err(EnqueueError::UnknownQueue(queue("dermatology")))
    );
    assert!(
        router
            .queue_stats(secs(4))
            .iter()
            .any(|s| s.id.as_str() == "dermatology" && s.retired)
    );
    // Cardiology's new max wait applies to new and waiting callers; Carol
    // now takes cardiology calls.
    enqueue(&mut router, secs(5), 4, "cardiology", Priority::Routine);
    let offer = router.poll_offer(secs(5)).expect("Carol");
    assert_eq!(only_agent(&offer), "1003");
    assert_eq!(router.cancel(secs(6), CallId(2)), Ok(()));
    assert!(
        !router
            .queue_stats(secs(6))
            .iter()
            .any(|s| s.id.as_str() == "dermatology")
    );
}

#[test]
fn unknown_agents_are_reported() {
    let mut router = demo_router();
    assert_eq!(
        router.registered(secs(0), &agent("9999")),
        Err(RoutingError::UnknownAgent(agent("9999")))
    );
    assert!(
        router
            .set_agent_state(secs(0), &agent("9999"), RequestedState::Away)
            .is_err()
    );
    assert!(router.unregistered(secs(0), &agent("9999")).is_err());
    assert_eq!(
        router.call_ended(secs(0), CallId(5)),
        Err(RoutingError::UnknownCall(CallId(5)))
    );
    assert_eq!(
        router.offer_failed(secs(0), CallId(5), &agent("1001"), OfferFailure::Busy),
        Err(RoutingError::UnknownCall(CallId(5)))
    );
}

#[test]
fn an_agent_calling_out_is_offered_no_queue_call_until_the_call_out_and_wrap_up_end() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1003"]);
    // Click-to-call rings Carol's phone first: she is claimed.
    assert_eq!(router.outbound_started(&agent("1003")), Ok(()));
    assert_eq!(state(&router, "1003"), Some(AgentState::Ringing));
    // A second call out, or a queue call, cannot have her meanwhile.
    assert!(router.outbound_started(&agent("1003")).is_err());
    enqueue(&mut router, secs(1), 1, "pediatrics", Priority::Routine);
    assert_eq!(router.poll_offer(secs(1)), None);
    // She answers, talks, hangs up: wrap-up, then the waiting caller.
    assert_eq!(router.outbound_answered(secs(2), &agent("1003")), Ok(()));
    assert_eq!(state(&router, "1003"), Some(AgentState::OnCall));
    assert_eq!(router.poll_offer(secs(30)), None);
    assert_eq!(
        router.outbound_ended(secs(60), &agent("1003"), Duration::from_secs(5)),
        Ok(())
    );
    assert_eq!(state(&router, "1003"), Some(AgentState::WrapUp));
    assert_eq!(router.poll_offer(secs(61)), None);
    router.handle_timeout(secs(65));
    assert_eq!(state(&router, "1003"), Some(AgentState::Available));
    let offer = router.poll_offer(secs(65)).expect("Carol again");
    assert_eq!(only_agent(&offer), "1003");
}

#[test]
fn a_call_out_the_agent_never_answers_releases_them_without_a_miss() {
    let mut router = demo_router();
    register(&mut router, secs(0), &["1003"]);
    assert_eq!(router.outbound_started(&agent("1003")), Ok(()));
    assert_eq!(
        router.outbound_ended(secs(30), &agent("1003"), Duration::from_secs(5)),
        Ok(())
    );
    assert_eq!(state(&router, "1003"), Some(AgentState::Available));
    // Away or unknown agents cannot call out.
    assert!(router.outbound_started(&agent("9999")).is_err());
}
