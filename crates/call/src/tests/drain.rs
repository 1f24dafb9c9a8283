//! A drain keeps every waiting caller's place (issue 24's rolling
//! restart), in virtual time: a callback entry for the caller's own
//! number, with the step `callback` `drain` and the queue's goodbye; an
//! offer under way is left to run first; a place routing cannot keep, or
//! a number the trunk may not call, becomes a callback lead; the end of
//! the grace during the goodbye, or with an offer still ringing, is no
//! abandonment.

use std::time::Duration;

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

fn hold_requests(h: &Harness) -> usize {
    h.router
        .requests
        .iter()
        .filter(|request| matches!(request, RouterRequest::HoldPlace { .. }))
        .count()
}

impl Harness {
    fn drain(&mut self) {
        self.call.handle_drain(self.now, &self.env);
        self.pump();
    }

    fn shutdown(&mut self) {
        self.call.handle_shutdown(self.now);
        self.pump();
    }
}

#[test]
fn a_waiting_caller_keeps_their_place_for_a_callback_when_the_node_drains() {
    let mut h = queued_call('3', &[]);
    h.advance(Duration::from_secs(30));
    assert!(!h.call.is_finished());
    h.drain();
    assert!(h.router.requests.contains(&RouterRequest::HoldPlace {
        number: "+13125550142".into()
    }));
    assert_eq!(
        callback_steps(&h),
        [("drain".to_string(), 30_000)],
        "the journal says why, with the wait so far"
    );
    assert!(
        !h.router.requests.contains(&RouterRequest::Cancel),
        "routing keeps the place: the call is not cancelled"
    );
    assert_eq!(h.played().last().expect("a prompt"), &["callback-accepted"]);
    h.finish_playback();
    h.assert_over(Outcome::Overflowed);
    assert!(h.leads.is_empty(), "a kept place is no lead");
    // Asked once only.
    assert_eq!(hold_requests(&h), 1);
}

#[test]
fn the_grace_ending_during_the_goodbye_is_no_abandonment() {
    let mut h = queued_call('3', &[]);
    h.drain();
    assert_eq!(h.played().last().expect("a prompt"), &["callback-accepted"]);
    h.shutdown();
    h.assert_over(Outcome::Overflowed);
    assert!(h.leads.is_empty(), "{:?}", h.leads);
}

#[test]
fn an_offer_under_way_runs_first_and_a_failed_one_gives_the_place_back() {
    let mut h = queued_call('3', &["1003"]);
    assert_eq!(h.router.ringing, ["1003"]);
    h.drain();
    assert_eq!(hold_requests(&h), 0, "1003 is ringing for the caller");
    // Busy: the caller is back in line, and keeps their place now.
    h.agent_answers("1003", 486);
    assert_eq!(hold_requests(&h), 1);
    assert_eq!(callback_steps(&h)[0].0, "drain");
    h.finish_playback();
    h.assert_over(Outcome::Overflowed);
}

#[test]
fn an_offer_answered_while_draining_is_a_call_like_any_other() {
    let mut h = queued_call('3', &["1003"]);
    h.drain();
    h.agent_answers("1003", 200);
    assert!(h.media.bridged, "bridged");
    assert_eq!(hold_requests(&h), 0);
    assert!(callback_steps(&h).is_empty());
    h.shutdown();
    h.assert_over(Outcome::Connected);
}

#[test]
fn a_place_routing_cannot_keep_becomes_a_callback_lead() {
    let mut h = queued_call('3', &[]);
    h.router.refuse_hold = true;
    h.advance(Duration::from_secs(12));
    h.drain();
    assert_eq!(callback_steps(&h), [("drain".to_string(), 12_000)]);
    assert!(h.router.requests.contains(&RouterRequest::Cancel));
    assert_eq!(h.leads.len(), 1, "{:?}", h.leads);
    let lead = &h.leads[0];
    assert_eq!(lead.kind, records::LeadKind::Callback);
    assert_eq!(lead.caller, "+13125550142");
    assert_eq!(lead.queue, QueueId::new("pediatrics"));
    assert_eq!(lead.waited, Duration::from_secs(12));
    h.finish_playback();
    h.assert_over(Outcome::Overflowed);
}

#[test]
fn a_number_the_trunk_may_not_call_becomes_a_callback_lead_without_asking_routing() {
    // A trunk that may call nobody: the dialer could not call back.
    let plan = clinic(|text| text.replace(r"allow = ['^\+1[2-9][0-9]{9}$']", "allow = []"));
    let mut h = Harness::new(
        plan,
        invite("+15550100", Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    )
    .start();
    h.patient_acks(None);
    h.press('3', media::DtmfSource::TelephoneEvent);
    h.drain();
    assert_eq!(hold_requests(&h), 0);
    assert!(h.router.requests.contains(&RouterRequest::Cancel));
    assert_eq!(h.leads.len(), 1, "{:?}", h.leads);
    assert_eq!(h.leads[0].kind, records::LeadKind::Callback);
    assert_eq!(callback_steps(&h)[0].0, "drain");
    assert_eq!(h.played().last().expect("a prompt"), &["callback-accepted"]);
    h.finish_playback();
    h.assert_over(Outcome::Overflowed);
}

#[test]
fn a_caller_still_rung_for_when_the_grace_ends_becomes_a_callback_lead() {
    let mut h = queued_call('3', &["1003"]);
    h.drain();
    h.shutdown();
    h.assert_over(Outcome::Overflowed);
    assert_eq!(h.leads.len(), 1, "{:?}", h.leads);
    assert_eq!(h.leads[0].kind, records::LeadKind::Callback);
    assert_eq!(callback_steps(&h)[0].0, "drain");
    assert_eq!(h.cancels().len(), 1, "the agent's ring is cancelled");
}

#[test]
fn a_caller_in_the_menus_keeps_their_place_once_queued() {
    let mut h = answered_call("+15550100", &[]);
    h.drain();
    assert_eq!(hold_requests(&h), 0, "not waiting yet");
    h.press('3', media::DtmfSource::TelephoneEvent);
    assert_eq!(hold_requests(&h), 1);
    h.finish_playback();
    h.assert_over(Outcome::Overflowed);
}
