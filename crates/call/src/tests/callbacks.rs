//! Callbacks offered while waiting (issue 22), in virtual time: the key,
//! the number (the caller's own, another, one the trunk refuses), the
//! place kept in routing (or a lead when it cannot be), the offer after
//! `offer_after`.

use std::time::Duration;

use media::DtmfSource;

use super::*;

fn callback_steps(h: &Harness) -> Vec<(String, u64)> {
    h.journal
        .iter()
        .filter_map(|event| match event {
            records::CallEvent::Callback { step, wait_ms, .. } => Some((step.clone(), *wait_ms)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_key_then_pound_keeps_the_place_for_the_callers_own_number_and_ends_the_call() {
    let mut h = queued_call('3', &[]);
    h.advance(Duration::from_secs(20));
    h.press('1', DtmfSource::TelephoneEvent);
    assert_eq!(h.played().last().expect("a prompt"), &["callback-number"]);
    assert!(!h.call.is_finished());
    h.press('#', DtmfSource::TelephoneEvent);
    assert_eq!(
        callback_steps(&h),
        [("accepted".to_string(), 20_000)],
        "the journal keeps the original wait"
    );
    assert!(h.router.requests.contains(&RouterRequest::HoldPlace {
        number: "+13125550142".into()
    }));
    assert!(
        !h.router.requests.contains(&RouterRequest::Cancel),
        "routing keeps the place: the call is not cancelled"
    );
    assert_eq!(h.played().last().expect("a prompt"), &["callback-accepted"]);
    h.finish_playback();
    h.assert_over(Outcome::Overflowed);
    assert!(
        h.leads.is_empty(),
        "a kept place is no lead: the dialer calls back"
    );
}

#[test]
fn a_place_routing_cannot_keep_becomes_a_callback_lead() {
    let mut h = queued_call('3', &[]);
    h.router.refuse_hold = true;
    h.advance(Duration::from_secs(20));
    h.press('1', DtmfSource::TelephoneEvent);
    h.press('#', DtmfSource::TelephoneEvent);
    assert_eq!(callback_steps(&h), [("accepted".to_string(), 20_000)]);
    assert!(h.router.requests.contains(&RouterRequest::Cancel));
    assert_eq!(h.played().last().expect("a prompt"), &["callback-accepted"]);
    h.finish_playback();
    h.assert_over(Outcome::Overflowed);
    assert_eq!(h.leads.len(), 1, "{:?}", h.leads);
    let lead = &h.leads[0];
    assert_eq!(lead.kind, records::LeadKind::Callback);
    assert_eq!(lead.caller, "+13125550142");
    assert_eq!(lead.queue, QueueId::new("pediatrics"));
    assert_eq!(lead.waited, Duration::from_secs(20));
}

#[test]
fn another_number_keyed_then_pound_is_the_callback_number() {
    let mut h = queued_call('3', &[]);
    h.press('1', DtmfSource::TelephoneEvent);
    // A slip, `*` to start again, then a Chicago number.
    for digit in "99*3125550199#".chars() {
        h.press(digit, DtmfSource::TelephoneEvent);
    }
    assert_eq!(callback_steps(&h)[0].0, "accepted");
    assert!(h.router.requests.contains(&RouterRequest::HoldPlace {
        number: "+13125550199".into()
    }));
    // Hanging up during the goodbye is still a callback, not an
    // abandoned call (and no abandoned-call lead).
    h.advance(Duration::from_secs(40));
    h.patient_hangs_up();
    h.assert_over(Outcome::Overflowed);
    assert!(h.leads.is_empty(), "{:?}", h.leads);
}

#[test]
fn a_number_the_trunk_may_not_call_is_refused_with_an_apology_and_the_caller_waits_on() {
    let mut h = queued_call('3', &[]);
    h.press('1', DtmfSource::TelephoneEvent);
    // 900 numbers are in the demo trunk's `deny`.
    for digit in "9005550123#".chars() {
        h.press(digit, DtmfSource::TelephoneEvent);
    }
    assert_eq!(callback_steps(&h), [("refused".to_string(), 0)]);
    assert_eq!(h.played().last().expect("a prompt"), &["callback-refused"]);
    assert!(h.leads.is_empty());
    assert!(!h.call.is_finished(), "still waiting");
    assert!(!h.router.requests.contains(&RouterRequest::Cancel));
    // The apology ends: the music again; the caller may try once more.
    h.finish_playback();
    assert_eq!(h.played().last().expect("a prompt"), &["hold-music"]);
    h.press('1', DtmfSource::TelephoneEvent);
    h.press('#', DtmfSource::TelephoneEvent);
    assert_eq!(callback_steps(&h)[1].0, "accepted");
}

#[test]
fn the_offer_plays_after_offer_after_and_once() {
    // Routing's estimate (20 s) under offer_after: over the music, at
    // 60 s exactly.
    let mut h = Harness::new(
        clinic(|text| text),
        invite("+15550100", Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    )
    .start();
    h.router.estimate = Some(Duration::from_secs(20));
    h.patient_acks(None);
    h.press('3', DtmfSource::TelephoneEvent);
    for _ in 0..3 {
        if h.played().last().is_some_and(|p| p == &["hold-music"]) {
            break;
        }
        h.finish_playback();
    }
    assert_eq!(h.played().last().expect("a prompt"), &["hold-music"]);
    h.advance(Duration::from_secs(59));
    assert!(callback_steps(&h).is_empty());
    // The 30 s announcement ends: the music again.
    if h.played().last().is_some_and(|p| p != &["hold-music"]) {
        h.finish_playback();
    }
    h.advance(Duration::from_secs(2));
    assert_eq!(callback_steps(&h), [("offered".to_string(), 60_000)]);
    assert_eq!(h.played().last().expect("a prompt"), &["callback-offer"]);
    h.finish_playback();
    assert_eq!(h.played().last().expect("a prompt"), &["hold-music"]);
    h.advance(Duration::from_secs(120));
    assert_eq!(callback_steps(&h).len(), 1, "offered once");

    // Routing's estimate (125 s) over offer_after: the offer follows the
    // first announcement, long before 60 s.
    let mut h = queued_call('3', &[]);
    h.advance(Duration::from_secs(10));
    assert!(callback_steps(&h).is_empty(), "the hold prompt plays");
    h.finish_playback();
    assert!(callback_steps(&h).is_empty(), "the announcement plays");
    assert_eq!(
        h.played().last().expect("a prompt")[0],
        "you-are-caller-number"
    );
    h.finish_playback();
    assert_eq!(callback_steps(&h), [("offered".to_string(), 10_000)]);
    assert_eq!(h.played().last().expect("a prompt"), &["callback-offer"]);
    // The key after the offer.
    h.press('1', DtmfSource::TelephoneEvent);
    assert_eq!(h.played().last().expect("a prompt"), &["callback-number"]);
}

#[test]
fn an_agent_answering_while_the_number_is_keyed_takes_the_call() {
    let mut h = queued_call('3', &["1003"]);
    h.press('1', DtmfSource::TelephoneEvent);
    h.press('3', DtmfSource::TelephoneEvent);
    h.agent_answers("1003", 200);
    assert!(h.media.bridged);
    h.patient_hangs_up();
    h.assert_over(Outcome::Connected);
    assert!(h.leads.is_empty());
    assert!(callback_steps(&h).is_empty());
}
