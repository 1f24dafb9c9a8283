//! Voicemail in virtual time: the greeting and the beep, the recording,
//! and how it ends (`#`, the media's own end, hang-up), each leaving a
//! `voicemail` lead that names its recording.

use std::time::Duration;

use media::recording::RecordingEnd;
use media::session::{Leg, MediaEvent};
use records::{LeadKind, Outcome};
use routing::QueueId;

use super::*;

/// The demo clinic with key 8 of the main menu taking a voicemail for
/// pediatrics.
fn with_voicemail_key(text: String) -> String {
    text.replacen(
        "\"9\" = { queue = \"urgent-care\", priority = \"urgent\" }",
        "\"9\" = { queue = \"urgent-care\", priority = \"urgent\" }\n\"8\" = { voicemail = \"pediatrics\" }",
        1,
    )
}

/// Answered, 8 pressed, the greeting and beep played to their end: the
/// recording runs.
fn recording_call() -> Harness {
    let mut h = Harness::new(
        clinic(with_voicemail_key),
        invite("+15550100", Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    )
    .start();
    h.patient_acks(None);
    h.press('8', media::DtmfSource::TelephoneEvent);
    assert_eq!(
        h.played().last().cloned(),
        Some(vec![
            "voicemail-greeting".to_string(),
            "voicemail-beep".to_string()
        ])
    );
    assert_eq!(
        h.media.recording, None,
        "nothing is recorded before the beep"
    );
    h.advance(Duration::from_secs(3));
    h.finish_playback();
    let name = h.media.recording.clone().expect("recording after the beep");
    assert!(
        name.len() == 36
            && name.ends_with(".wav")
            && name[..32].bytes().all(|b| b.is_ascii_hexdigit()),
        "{name}"
    );
    h
}

fn the_lead(h: &Harness) -> &call_lead::CallLead {
    assert_eq!(h.leads.len(), 1, "{:?}", h.leads);
    &h.leads[0]
}

mod call_lead {
    pub(crate) use crate::CallLead;
}

#[test]
fn hash_ends_the_message_which_becomes_a_lead_with_its_recording() {
    let mut h = recording_call();
    // Digits other than # are part of the message.
    h.press('5', media::DtmfSource::TelephoneEvent);
    assert!(h.media.recording.is_some());
    h.advance(Duration::from_secs(7));
    h.press('#', media::DtmfSource::TelephoneEvent);
    assert_eq!(h.media.recording, None, "the recording is stopped");
    assert_eq!(h.sent("BYE").len(), 1, "we hang up");
    h.assert_over(Outcome::Rejected);
    let lead = the_lead(&h);
    assert_eq!(lead.kind, LeadKind::Voicemail);
    assert_eq!(lead.queue, QueueId::new("pediatrics"));
    assert_eq!(lead.caller, h.call.record().caller);
    let recording = lead.recording.as_ref().expect("a recording");
    assert_eq!(recording.name, h.media.recordings[0]);
    assert_eq!(recording.length, Duration::from_secs(7));
}

#[test]
fn silence_or_the_maximum_length_ends_it_too() {
    for end in [RecordingEnd::Silence, RecordingEnd::MaxLength] {
        let mut h = recording_call();
        h.advance(Duration::from_secs(4));
        h.media_event(MediaEvent::RecordingEnded {
            leg: Leg::Caller,
            end,
        });
        h.assert_over(Outcome::Rejected);
        assert_eq!(
            the_lead(&h).recording.as_ref().map(|r| r.length),
            Some(Duration::from_secs(4))
        );
    }
}

#[test]
fn a_phone_that_sends_nothing_is_cut_at_the_maximum_length() {
    // The demo's max_length is 120 s; the core's own deadline is a second
    // later, in case no packet ever comes to be counted.
    let mut h = recording_call();
    h.advance(Duration::from_secs(119));
    assert!(h.media.recording.is_some());
    h.advance(Duration::from_secs(3));
    h.assert_over(Outcome::Rejected);
    assert_eq!(
        the_lead(&h).recording.as_ref().map(|r| r.length),
        Some(Duration::from_secs(121))
    );
}

#[test]
fn hanging_up_after_the_beep_leaves_the_message_before_it_leaves_none() {
    let mut h = recording_call();
    h.advance(Duration::from_secs(2));
    h.patient_hangs_up();
    // Not abandoned: the caller left a message.
    h.assert_over(Outcome::Rejected);
    assert!(the_lead(&h).recording.is_some());

    let mut h = Harness::new(
        clinic(with_voicemail_key),
        invite("+15550100", Some(&offer(addr("192.0.2.50:40000")))),
        OPEN,
    )
    .start();
    h.patient_acks(None);
    h.press('8', media::DtmfSource::TelephoneEvent);
    h.patient_hangs_up();
    h.assert_over(Outcome::Abandoned);
    assert!(h.media.recordings.is_empty());
    assert!(h.leads.is_empty(), "{:?}", h.leads);
}

#[test]
fn the_nurse_lines_max_wait_takes_a_voicemail() {
    // The demo: nurse-line's on_max_wait is { voicemail = "nurse-line" };
    // routing carries it out and tells the call.
    let mut h = queued_call('3', &[]);
    h.advance(Duration::from_secs(120));
    h.routing_news(RoutingInput::Voicemail {
        queue: QueueId::new("nurse-line"),
    });
    assert_eq!(
        h.played().last().cloned(),
        Some(vec![
            "voicemail-greeting".to_string(),
            "voicemail-beep".to_string()
        ])
    );
    h.finish_playback();
    assert!(h.media.recording.is_some());
    h.advance(Duration::from_secs(10));
    h.press('#', media::DtmfSource::TelephoneEvent);
    h.assert_over(Outcome::Overflowed);
    let lead = the_lead(&h);
    assert_eq!(lead.queue, QueueId::new("nurse-line"));
    assert_eq!(lead.waited, Duration::from_secs(120));
    assert_eq!(
        lead.recording.as_ref().map(|r| r.length),
        Some(Duration::from_secs(10))
    );
}
