//! Every path of a call, in virtual time (issue 19's list, in its order,
//! then the refusals and the odd ways in).

use std::time::Duration;

use media::DtmfSource;
use sip::message::HeaderName;

use super::*;

#[test]
fn answered_ivr_queue_agent_answers_bridged_then_the_caller_hangs_up() {
    let mut h = queued_call('3', &["1003"]);
    assert_eq!(h.call.record().department.as_deref(), Some("pediatrics"));
    // The agent's phone shows who calls, from where, how long they waited.
    let (_, invite, peer) = h.invite_to("1003");
    assert_eq!(peer.address, addr("192.0.2.103:5060"));
    let from = invite.headers.get(&HeaderName::From).expect("a From");
    assert!(String::from_utf8_lossy(from).contains("Pediatrics · main-line · waited 0:42"));
    h.agent_answers("1003", 200);
    assert!(h.media.bridged);
    assert_eq!(h.acks(), 1, "ours, to the agent's 200");
    assert_eq!(h.call.record().agent.as_deref(), Some("1003"));
    assert!(h.call.record().connected_at.is_some());
    h.patient_hangs_up();
    assert_eq!(h.responses_on(50), [200]);
    assert_eq!(h.on_leg("1003", "BYE").len(), 1, "the agent's leg ends");
    h.assert_over(Outcome::Connected);
    assert!(h.router.requests.contains(&RouterRequest::CallEnded));
    assert_eq!(
        h.steps(),
        [
            "started",
            "entered",
            "menu",
            "queued",
            "offered",
            "connected",
            "ended"
        ]
    );
    // The menu step carries the menu's own name.
    assert!(matches!(
        &h.journal[2],
        records::CallEvent::MenuChoice { menu, digits } if menu == "main" && digits == "3"
    ));
}

#[test]
fn the_agent_hangs_up_first() {
    let mut h = bridged_call('3', "1003");
    h.agent_sends("1003", 60, "BYE", 2, "", "");
    assert_eq!(h.responses_on(60), [200]);
    let bye = h.sent("BYE");
    assert_eq!(bye.len(), 1, "BYE to the patient only");
    assert_eq!(bye[0].2.address, addr(PATIENT));
    h.assert_over(Outcome::Connected);
}

#[test]
fn a_ring_timeout_offers_the_next_agent() {
    let mut h = queued_call('1', &["1001", "1005"]);
    let (first, _, _) = h.invite_to("1001");
    h.advance(Duration::from_secs(15));
    assert_eq!(h.cancels(), [first], "the unanswered phone is cancelled");
    assert_eq!(failures(&h), [("1001".to_string(), OfferFailure::NoAnswer)]);
    h.agent_answers("1005", 200);
    assert!(h.media.bridged);
    assert_eq!(h.call.record().agent.as_deref(), Some("1005"));
    // The cancelled phone's 487 changes nothing.
    h.agent_answers("1001", 487);
    assert!(h.media.bridged);
    assert!(h.steps().contains(&"no_answer"));
}

#[test]
fn busy_486_offers_the_next_agent() {
    let mut h = queued_call('1', &["1001", "1005"]);
    h.agent_answers("1001", 486);
    assert_eq!(failures(&h), [("1001".to_string(), OfferFailure::Busy)]);
    assert!(h.steps().contains(&"busy"));
    h.agent_answers("1005", 200);
    assert_eq!(h.call.record().agent.as_deref(), Some("1005"));
    assert!(h.cancels().is_empty());
}

#[test]
fn every_agent_failing_overflows_to_another_queue() {
    let mut h = Harness::new(
        clinic(|text| text),
        invite("+15550100", Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    )
    .agents(&["1002", "1001"], false)
    .start();
    h.router.agents = ["1002".to_string()].into();
    h.router.overflow = Some(("front-desk".to_string(), vec!["1001".to_string()]));
    h.patient_acks(None);
    h.press('2', DtmfSource::TelephoneEvent);
    h.agent_answers("1002", 603);
    assert_eq!(failures(&h), [("1002".to_string(), OfferFailure::Rejected)]);
    assert_eq!(h.call.record().department.as_deref(), Some("front-desk"));
    assert!(h.steps().contains(&"overflowed"));
    h.agent_answers("1001", 200);
    h.patient_hangs_up();
    h.assert_over(Outcome::Connected);
}

#[test]
fn the_caller_hangs_up_while_an_agent_rings() {
    let mut h = queued_call('3', &["1003"]);
    let (ringing, _, _) = h.invite_to("1003");
    h.patient_hangs_up();
    assert_eq!(h.cancels(), [ringing]);
    assert!(h.router.requests.contains(&RouterRequest::Cancel));
    h.assert_over(Outcome::Abandoned);
    assert!(h.call.record().wait_ms.is_some());
    // The agent answered as the CANCEL crossed: ACK, then BYE at once.
    h.agent_answers("1003", 200);
    assert!(!h.media.bridged);
}

#[test]
fn the_caller_hangs_up_in_the_ivr() {
    let mut h = answered_call("+15550100", &[]);
    assert_eq!(h.played(), [["emergency-notice"]]);
    h.patient_hangs_up();
    h.assert_over(Outcome::Abandoned);
    assert!(h.router.requests.is_empty(), "never queued");
    assert_eq!(h.call.record().department, None);
}

#[test]
fn max_wait_plays_the_message_then_hangs_up() {
    let mut h = queued_call('3', &[]);
    h.routing_news(RoutingInput::GiveUp {
        message: "please-call-back".to_string(),
    });
    assert_eq!(h.played().last().expect("a prompt")[0], "please-call-back");
    assert!(!h.call.is_finished(), "the message plays first");
    h.finish_playback();
    assert_eq!(h.sent("BYE").len(), 1);
    h.assert_over(Outcome::Overflowed);
}

#[test]
fn max_wait_overflow_keeps_the_caller_waiting_elsewhere() {
    let mut h = queued_call('2', &[]);
    h.routing_news(RoutingInput::Overflowed {
        to: QueueId::new("front-desk"),
        priority: routing::Priority::Routine,
    });
    assert_eq!(h.call.record().department.as_deref(), Some("front-desk"));
    h.patient_hangs_up();
    h.assert_over(Outcome::Abandoned);
}

#[test]
fn after_hours_the_message_plays_then_the_nurse_line() {
    let mut h = Harness::new(
        clinic(|text| text),
        invite("+15550100", Some(&offer(addr("192.0.2.50:40000")))),
        CLOSED,
    )
    .agents(&["1007"], false)
    .start();
    h.patient_acks(None);
    // The after-hours message, then the emergency notice (or the other way):
    // play each to its end.
    while h.call.record().department.is_none() && h.media.playing.is_some() {
        h.finish_playback();
    }
    assert_eq!(h.call.record().department.as_deref(), Some("nurse-line"));
    h.agent_answers("1007", 200);
    assert!(h.media.bridged);
}

#[test]
fn a_blind_transfer_moves_the_patient_to_another_queue() {
    let mut h = bridged_call('1', "1001");
    h.router.agents = ["1002".to_string()].into();
    h.env.bindings.insert(
        "1002".to_string(),
        vec![binding("1002", addr("192.0.2.102:5060"), false, h.now)],
    );
    h.agent_sends(
        "1001",
        70,
        "REFER",
        2,
        "Refer-To: <sip:cardiology@clinic>\n",
        "",
    );
    assert_eq!(h.responses_on(70), [202]);
    assert!(!h.media.bridged, "unbridged while in line again");
    let notify = h.on_leg("1001", "NOTIFY");
    assert_eq!(
        String::from_utf8_lossy(&notify[0].body),
        "SIP/2.0 100 Trying\r\n"
    );
    h.agent_answers("1002", 200);
    let notify = h.on_leg("1001", "NOTIFY");
    assert_eq!(
        String::from_utf8_lossy(&notify[1].body),
        "SIP/2.0 200 OK\r\n"
    );
    assert_eq!(
        h.on_leg("1001", "BYE").len(),
        1,
        "the transferring agent's leg ends"
    );
    let record = h.call.record();
    assert_eq!(record.transfers.len(), 1);
    assert_eq!(record.transfers[0].kind, "blind");
    assert_eq!(record.department.as_deref(), Some("cardiology"));
    assert_eq!(record.agent.as_deref(), Some("1002"));
    assert!(h.steps().contains(&"transferred"));
}

#[test]
fn an_attended_transfer_carries_replaces_to_the_named_agent() {
    let mut h = bridged_call('1', "1001");
    h.env.bindings.insert(
        "1006".to_string(),
        vec![binding("1006", addr("192.0.2.106:5060"), false, h.now)],
    );
    h.agent_sends(
        "1001",
        70,
        "REFER",
        2,
        "Refer-To: <sip:1006@clinic?Replaces=consult%40phone%3Bto-tag%3Da%3Bfrom-tag%3Db>\n",
        "",
    );
    assert_eq!(h.responses_on(70), [202]);
    let (_, invite, _) = h.invite_to("1006");
    let replaces = invite.headers.get(&HeaderName::Replaces).expect("Replaces");
    assert_eq!(
        String::from_utf8_lossy(replaces),
        "consult@phone;to-tag=a;from-tag=b"
    );
    h.agent_answers("1006", 200);
    assert_eq!(h.call.record().transfers[0].kind, "attended");
    assert_eq!(
        h.call.record().transfers[0].to_agent.as_deref(),
        Some("1006")
    );
}

#[test]
fn a_transfer_to_nowhere_is_refused_and_the_call_stays() {
    let mut h = bridged_call('1', "1001");
    h.agent_sends(
        "1001",
        70,
        "REFER",
        2,
        "Refer-To: <sip:nobody@clinic>\n",
        "",
    );
    assert_eq!(h.responses_on(70), [404]);
    assert!(h.media.bridged);
    h.agent_sends("1001", 71, "REFER", 3, "", "");
    assert_eq!(h.responses_on(71), [400]);
}

#[test]
fn hold_and_unhold_by_reinvite_from_either_side() {
    let mut h = bridged_call('3', "1003");
    // The patient holds: the agent is told (sendonly) and back.
    let hold = offer(addr("192.0.2.50:40000")).replace("a=sendrecv", "a=sendonly");
    h.patient_sends(80, "INVITE", 2, "Content-Type: application/sdp\n", &hold);
    assert_eq!(h.responses_on(80), [200]);
    let reinvites = h.on_leg("1003", "INVITE");
    assert_eq!(reinvites.len(), 2, "the first INVITE and the re-INVITE");
    assert!(String::from_utf8_lossy(&reinvites[1].body).contains("a=sendonly"));
    let resume = offer(addr("192.0.2.50:40000"));
    h.patient_sends(81, "INVITE", 3, "Content-Type: application/sdp\n", &resume);
    let reinvites = h.on_leg("1003", "INVITE");
    assert!(String::from_utf8_lossy(&reinvites[2].body).contains("a=sendrecv"));
    // The agent holds: the patient is told.
    let hold = offer(addr("192.0.2.203:7000")).replace("a=sendrecv", "a=sendonly");
    h.agent_sends(
        "1003",
        82,
        "INVITE",
        2,
        "Content-Type: application/sdp\n",
        &hold,
    );
    assert_eq!(h.responses_on(82), [200]);
    let to_patient: Vec<_> = h
        .sent("INVITE")
        .into_iter()
        .filter(|(_, _, peer)| peer.address == addr(PATIENT))
        .collect();
    assert_eq!(to_patient.len(), 1);
    assert!(String::from_utf8_lossy(&to_patient[0].1.body).contains("a=sendonly"));
    assert!(h.media.agent.as_ref().is_some_and(|media| media.on_hold));
}

#[test]
fn rtp_inactivity_ends_the_call() {
    let mut h = bridged_call('3', "1003");
    h.media_event(MediaEvent::Inactive {
        leg: Leg::Agent,
        silent_for: Duration::from_secs(30),
    });
    assert_eq!(h.sent("BYE").len(), 2, "both legs");
    h.assert_over(Outcome::Connected);
}

#[test]
fn drain_hangs_up_calls_in_every_state() {
    // In the IVR, queued with an agent ringing, bridged.
    let mut in_ivr = answered_call("+15550100", &[]);
    let mut ringing = queued_call('3', &["1003"]);
    let mut bridged = bridged_call('3', "1003");
    for (h, outcome) in [
        (&mut in_ivr, Outcome::Abandoned),
        (&mut ringing, Outcome::Abandoned),
        (&mut bridged, Outcome::Connected),
    ] {
        h.call.handle_shutdown(h.now);
        h.pump();
        h.assert_over(outcome);
        assert!(
            h.sent("BYE")
                .iter()
                .any(|(_, _, peer)| peer.address == addr(PATIENT))
        );
    }
    assert_eq!(ringing.cancels().len(), 1);
    // Not yet answered (ringing before the answer): 480.
    let mut offered = Harness::new(
        clinic(with_ringing_number),
        invite("+15550199", Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    )
    .start();
    assert_eq!(offered.invite_responses(), [180]);
    offered.call.handle_shutdown(offered.now);
    offered.pump();
    assert_eq!(offered.invite_responses(), [180, 480]);
    offered.assert_over(Outcome::Abandoned);
}

#[test]
fn a_failing_journal_changes_nothing_for_the_call() {
    let mut h = Harness::new(
        clinic(|text| text),
        invite("+15550100", Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    )
    .agents(&["1003"], false);
    h.journal_fails = true;
    let mut h = h.start();
    h.patient_acks(None);
    h.press('3', DtmfSource::TelephoneEvent);
    h.agent_answers("1003", 200);
    h.patient_hangs_up();
    assert!(h.journal.is_empty());
    assert!(h.call.is_finished());
    assert_eq!(h.call.record().outcome, Some(Outcome::Connected));
}

#[test]
fn an_srtp_patient_gets_an_srtp_answer_and_a_tls_agent_an_srtp_offer() {
    let mut h = Harness::new(
        clinic(|text| text),
        invite("+15550100", Some(&srtp_offer(addr("192.0.2.50:40000")))),
        OPEN,
    )
    .agents(&["1003"], true)
    .start();
    let ok = h.final_response();
    let answer = String::from_utf8_lossy(&ok.body).into_owned();
    assert!(answer.contains("RTP/SAVP"), "{answer}");
    assert!(answer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
    assert!(
        h.media
            .caller
            .as_ref()
            .is_some_and(|media| media.srtp.is_some())
    );
    h.patient_acks(None);
    h.press('3', DtmfSource::TelephoneEvent);
    let (_, invite, peer) = h.invite_to("1003");
    assert_eq!(peer.transport, sip::TransportKind::Tls);
    assert!(String::from_utf8_lossy(&invite.body).contains("RTP/SAVP"));
    let contact = invite.headers.get(&HeaderName::Contact).expect("Contact");
    assert!(String::from_utf8_lossy(contact).contains(";transport=tls"));
    h.agent_answers("1003", 200);
    assert!(
        h.media
            .agent
            .as_ref()
            .is_some_and(|media| media.srtp.is_some())
    );
    // A plain agent over UDP would get plain RTP: see the first scenario.
}

#[test]
fn a_digit_reaches_the_ivr_in_each_of_its_three_forms() {
    // RFC 4733 and in-band come from the media; SIP INFO from signalling.
    for (form, digit, department) in [
        ("rfc4733", '2', "cardiology"),
        ("inband", '4', "dermatology"),
        ("info", '5', "orthopedics"),
    ] {
        let mut h = answered_call("+15550100", &[]);
        match form {
            "rfc4733" => h.press(digit, DtmfSource::TelephoneEvent),
            "inband" => h.press(digit, DtmfSource::InBand),
            _ => {
                h.patient_sends(
                    90,
                    "INFO",
                    2,
                    "Content-Type: application/dtmf-relay\n",
                    &format!("Signal={digit}\r\nDuration=160\r\n"),
                );
                assert_eq!(h.responses_on(90), [200]);
            }
        }
        assert_eq!(
            h.call.record().department.as_deref(),
            Some(department),
            "{form}"
        );
    }
}

#[test]
fn a_digit_while_bridged_goes_to_the_agent() {
    let mut h = bridged_call('3', "1003");
    h.patient_sends(91, "INFO", 2, "Content-Type: application/dtmf\n", "7");
    assert_eq!(h.media.dtmf_to_agent, ['7']);
}

#[test]
fn refused_at_admission_under_overload() {
    // Admission is decided before a call exists (the endpoint): an INVITE
    // past the threshold gets 503 with Retry-After, and no call is made.
    // The virtual clock's origin: any instant will do.
    #[allow(clippy::disallowed_methods)]
    let t0 = std::time::Instant::now();
    let mut admission = sip::overload::AdmissionControl::new(
        sip::overload::AdmissionConfig {
            max_in_setup: 1,
            ..sip::overload::AdmissionConfig::default()
        },
        t0,
    );
    let first = admission.admit(t0, sip::overload::CallClass::Routine, 1);
    assert!(first.is_ok());
    let refusal = admission
        .admit(t0, sip::overload::CallClass::Routine, 2)
        .expect_err("past the threshold");
    assert_eq!(refusal.retry_after, 5);
    // The admitted call runs; its permit goes when its INVITE is answered.
    let mut h = answered_call("+15550100", &[]);
    assert_eq!(h.invite_responses(), [200]);
    drop(first);
    assert!(
        admission
            .admit(t0, sip::overload::CallClass::Routine, 3)
            .is_ok()
    );
    h.patient_hangs_up();
}

#[test]
fn a_call_interrupted_by_a_restart_is_closed_as_such() {
    // The daemon dies while the call waits: the journal holds its first
    // steps; at the next start they are closed `interrupted`.
    let h = queued_call('3', &[]);
    let dir = std::env::temp_dir().join(format!("call-core-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a folder");
    let path = dir.join("journal.db");
    {
        let (journal, handle) =
            records::Journal::open(path.clone(), records::JournalConfig::default())
                .expect("a journal");
        let mut at: ivr::jiff::Timestamp = OPEN.parse().expect("a time");
        for event in &h.journal {
            handle
                .record(records::JournalEntry::new("c-test-1", at, event.clone()))
                .expect("recorded");
            at += ivr::jiff::SignedDuration::from_millis(10);
        }
        journal.close(Duration::from_secs(10)).expect("flushed");
    }
    let (journal, _handle) =
        records::Journal::open(path, records::JournalConfig::default()).expect("reopened");
    assert_eq!(
        journal
            .close_interrupted(Duration::from_secs(86_400))
            .expect("closed"),
        1
    );
    let reader = journal.reader().expect("a reader");
    let calls = reader.recent_calls(10).expect("calls");
    assert_eq!(calls[0].outcome, Some(records::Outcome::Interrupted));
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- refusals and odd ways in ---------------------------------------------

#[test]
fn an_unknown_number_gets_404_and_no_port() {
    let h = Harness::new(
        clinic(|text| text),
        invite("+19995550000", Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    )
    .start();
    assert_eq!(h.invite_responses(), [404]);
    assert!(
        !h.actions
            .iter()
            .any(|a| matches!(a, Action::LeasePort { .. }))
    );
    h.assert_over(Outcome::Rejected);
    assert_eq!(h.steps(), ["started", "ended"]);
}

#[test]
fn no_common_codec_gets_488_and_the_port_back() {
    let g729 = offer(addr("192.0.2.50:40000")).replace("RTP/AVP 0 101", "RTP/AVP 18");
    let h = Harness::new(clinic(|text| text), invite("+15550100", Some(&g729)), OPEN).start();
    assert_eq!(h.invite_responses(), [488]);
    h.assert_over(Outcome::Rejected);
}

#[test]
fn no_port_left_gets_503() {
    let mut h = Harness::new(
        clinic(|text| text),
        invite("+15550100", Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    );
    h.ports_fail = true;
    let h = h.start();
    assert_eq!(h.invite_responses(), [503]);
    h.assert_over(Outcome::Rejected);
}

#[test]
fn a_delayed_offer_is_answered_in_the_ack() {
    let mut h = Harness::new(clinic(|text| text), invite("+15550100", None), OPEN).start();
    let ok = h.final_response();
    assert!(
        String::from_utf8_lossy(&ok.body).contains("m=audio"),
        "our offer"
    );
    assert!(!h.media.started, "no media before the answer");
    h.patient_acks(Some(&offer(addr("192.0.2.50:40000"))));
    assert!(h.media.started);
    assert_eq!(h.played(), [["emergency-notice"]]);
}

#[test]
fn a_delayed_offer_never_answered_ends_the_call() {
    let mut h = Harness::new(clinic(|text| text), invite("+15550100", None), OPEN).start();
    h.patient_acks(None);
    h.advance(crate::call::ACK_WAIT);
    h.assert_over(Outcome::Abandoned);
}

#[test]
fn a_ringing_number_rings_then_answers_and_a_cancel_ends_it() {
    let mut h = Harness::new(
        clinic(with_ringing_number),
        invite("+15550199", Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    )
    .start();
    assert_eq!(h.invite_responses(), [180]);
    h.advance(Duration::from_secs(2));
    assert_eq!(h.invite_responses(), [180, 200]);
    // Another call cancelled while it rings.
    let mut cancelled = Harness::new(
        clinic(with_ringing_number),
        invite("+15550199", Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    )
    .start();
    cancelled.sip(Event::Cancelled {
        transaction: ServerTransactionId::from_raw(1),
        call_id: bytestring::ByteString::from("patient-call@test"),
    });
    cancelled.assert_over(Outcome::Abandoned);
}

#[test]
fn no_input_in_the_menu_reaches_the_front_desk() {
    let mut h = answered_call("+15550100", &[]);
    // The notice, the menu, no digit: the menu again, then the front desk.
    for _ in 0..10 {
        if h.call.record().department.is_some() {
            break;
        }
        if h.media.playing.is_some() {
            h.finish_playback();
        } else {
            h.advance(Duration::from_secs(10));
        }
    }
    assert_eq!(h.call.record().department.as_deref(), Some("front-desk"));
    assert_eq!(h.played()[0], ["emergency-notice"]);
    assert!(h.played().iter().filter(|p| p[0] == "main-menu").count() >= 1);
}

#[test]
fn waiting_callers_hear_the_hold_prompt_then_announcements_and_music() {
    let mut h = queued_call('3', &[]);
    let played = h.played();
    let last = played.last().expect("something plays");
    assert!(
        ["please-hold", "you-are-caller-number", "hold-music"]
            .iter()
            .any(|prompt| last[0].contains(prompt) || last[0] == *prompt),
        "{played:?}"
    );
    // Whatever the queue plays, it keeps the caller company for minutes.
    for _ in 0..6 {
        if h.media.playing.is_some()
            && !matches!(&h.media.playing, Some((_, _, PlaybackMode::Loop)))
        {
            h.finish_playback();
        }
        h.advance(Duration::from_secs(30));
    }
    assert!(h.media.playing.is_some());
    assert!(!h.call.is_finished());
    assert!(h.call.record().wait_ms.is_none());
    h.patient_hangs_up();
    assert!(h.call.record().wait_ms.unwrap_or(0) >= 180_000);
}

#[test]
fn a_caller_who_gives_up_after_the_threshold_becomes_a_lead() {
    // The demo's queues: abandoned_lead_after = "30s".
    let mut h = queued_call('3', &[]);
    h.advance(Duration::from_secs(31));
    h.patient_hangs_up();
    h.assert_over(Outcome::Abandoned);
    assert_eq!(h.leads.len(), 1, "{:?}", h.leads);
    let lead = &h.leads[0];
    assert_eq!(lead.kind, records::LeadKind::AbandonedCall);
    assert_eq!(lead.queue, QueueId::new("pediatrics"));
    assert_eq!(lead.call, "c-test-1");
    assert_eq!(lead.caller, h.call.record().caller);
    assert_eq!(lead.waited, Duration::from_secs(31));
    assert_eq!(lead.source.as_deref(), h.call.record().source.as_deref());
}

#[test]
fn a_short_wait_a_connected_call_or_a_queue_without_the_key_makes_no_lead() {
    // Under the threshold.
    let mut h = queued_call('3', &[]);
    h.advance(Duration::from_secs(29));
    h.patient_hangs_up();
    h.assert_over(Outcome::Abandoned);
    assert!(h.leads.is_empty(), "{:?}", h.leads);

    // Connected, then a long talk: no lead.
    let mut h = bridged_call('3', "1003");
    h.advance(Duration::from_secs(120));
    h.patient_hangs_up();
    h.assert_over(Outcome::Connected);
    assert!(h.leads.is_empty(), "{:?}", h.leads);

    // A queue without `abandoned_lead_after`.
    let plan = clinic(|text| text.replace("abandoned_lead_after = \"30s\"", ""));
    let mut h = Harness::new(
        plan,
        invite("+15550100", Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    )
    .start();
    h.patient_acks(None);
    h.press('3', media::DtmfSource::TelephoneEvent);
    h.advance(Duration::from_secs(300));
    h.patient_hangs_up();
    h.assert_over(Outcome::Abandoned);
    assert!(h.leads.is_empty(), "{:?}", h.leads);
}

#[test]
fn an_overflow_takes_the_new_queues_threshold() {
    let plan = clinic(|text| {
        text.replacen(
            "abandoned_lead_after = \"30s\"",
            "abandoned_lead_after = \"1h\"",
            1,
        )
    });
    // front-desk is the first queue in the demo: its threshold is now an
    // hour; cardiology's stays 30 s.
    let mut h = Harness::new(
        plan,
        invite("+15550100", Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    )
    .start();
    h.patient_acks(None);
    h.press('2', media::DtmfSource::TelephoneEvent);
    h.routing_news(RoutingInput::Overflowed {
        to: QueueId::new("front-desk"),
        priority: routing::Priority::Routine,
    });
    h.advance(Duration::from_secs(60));
    h.patient_hangs_up();
    h.assert_over(Outcome::Abandoned);
    assert!(h.leads.is_empty(), "{:?}", h.leads);
}

/// An agent with two devices (a desk phone and the browser, say): `1003`
/// registered at 192.0.2.103 and 192.0.2.113.
fn two_devices() -> Harness {
    let mut h = Harness::new(
        clinic(|text| text),
        invite("+15550100", Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    )
    .agents(&["1003"], false);
    let second = binding("1003", addr("192.0.2.113:5060"), false, h.now);
    h.env
        .bindings
        .get_mut("1003")
        .expect("1003's phone")
        .push(second);
    let mut h = h.start();
    h.patient_acks(None);
    h.press('3', DtmfSource::TelephoneEvent);
    h
}

#[test]
fn every_device_of_the_agent_rings_and_the_first_answer_wins() {
    let mut h = two_devices();
    let invites = h.invites_to("1003");
    let rung: Vec<_> = invites.iter().map(|(_, _, peer)| peer.address).collect();
    assert_eq!(
        rung,
        [addr("192.0.2.103:5060"), addr("192.0.2.113:5060")],
        "both devices ring"
    );
    let offered = h.steps().iter().filter(|s| **s == "offered").count();
    assert_eq!(offered, 1, "one offer on the timeline");
    h.device_answers("1003", 1, 200);
    assert!(h.media.bridged);
    assert_eq!(h.call.record().agent.as_deref(), Some("1003"));
    assert_eq!(
        h.cancels(),
        [invites[0].0],
        "the other device stops ringing"
    );
    assert!(failures(&h).is_empty());
    assert!(
        h.router
            .requests
            .contains(&RouterRequest::Answered(AgentId::new("1003")))
    );
    // The cancelled device's 487 changes nothing.
    h.device_answers("1003", 0, 487);
    assert!(h.media.bridged);
}

#[test]
fn one_device_declining_leaves_the_other_ringing() {
    let mut h = two_devices();
    h.device_answers("1003", 0, 603);
    assert!(failures(&h).is_empty(), "the other device still rings");
    assert!(h.cancels().is_empty());
    h.device_answers("1003", 1, 200);
    assert!(h.media.bridged);
    assert!(failures(&h).is_empty());
}

#[test]
fn the_offer_fails_once_when_every_device_rang_out() {
    let mut h = two_devices();
    h.advance(Duration::from_secs(15));
    assert_eq!(h.cancels().len(), 2, "both devices are cancelled");
    assert_eq!(
        failures(&h),
        [("1003".to_string(), OfferFailure::NoAnswer)],
        "one failure for the agent"
    );
    let no_answer = h.steps().iter().filter(|s| **s == "no_answer").count();
    assert_eq!(no_answer, 1);
}

/// A REFER with `X-Frontdesk-Requeue` (the browser phone whose page is
/// gone) asks routing for the patient's first place, not a plain move.
#[test]
fn a_requeue_refer_asks_routing_for_the_first_place() {
    let mut h = bridged_call('3', "1003");
    h.agent_sends(
        "1003",
        70,
        "REFER",
        2,
        "Refer-To: <sip:pediatrics@clinic>\nRefer-Sub: false\nX-Frontdesk-Requeue: lost\n",
        "",
    );
    assert_eq!(h.responses_on(70), [202]);
    assert!(h.router.requests.iter().any(|request| matches!(
        request,
        RouterRequest::Transfer {
            keep_place: true,
            direct: None,
            ..
        }
    )));
    // A plain blind transfer is not a requeue.
    let mut h = bridged_call('3', "1003");
    h.agent_sends(
        "1003",
        70,
        "REFER",
        2,
        "Refer-To: <sip:pediatrics@clinic>\n",
        "",
    );
    assert!(h.router.requests.iter().any(|request| matches!(
        request,
        RouterRequest::Transfer {
            keep_place: false,
            ..
        }
    )));
}
