//! Voicemail: the caller hears the dialplan's greeting and a beep, then
//! what they say is recorded until they press `#`, fall silent, reach the
//! maximum length or hang up; the message becomes a `voicemail` lead of
//! the queue's department.
//!
//! The call decides; the media task records ([`MediaAction::Record`]: it
//! decodes the caller's G.711 to linear PCM, detects the silence and the
//! maximum length, and writes the WAV file under a name the call drew at
//! random, so that a name says nothing about the caller and cannot be
//! guessed). The driver puts that name under `--data`.

use std::time::{Duration, Instant};

use media::playback::PlaybackMode;
use media::recording::RecordingLimits;
use media::session::Leg;
use rand::Rng;
use records::Outcome;
use routing::QueueId;
use tracing::{info, warn};

use crate::action::{Action, CallLead, MediaAction, Recording};
use crate::call::{Call, Environment};

/// A voicemail in progress.
#[derive(Debug)]
pub(crate) struct Voicemail {
    /// The department the message is for.
    queue: QueueId,
    /// The call's outcome once it ends (overflowed, after hours, or an IVR path).
    outcome: Outcome,
    phase: Phase,
}

#[derive(Debug)]
enum Phase {
    /// The greeting and the beep play (this playback).
    Greeting { playback: u64 },
    /// The media task records into this file. The media ends it at
    /// `max_length` of audio; `deadline` (a second later in wall time)
    /// ends it when the phone sends nothing at all (no packets, no
    /// silence to detect).
    Recording {
        since: Instant,
        deadline: Instant,
        name: String,
    },
    /// The message is left (or there was none).
    Done,
}

impl Call {
    /// Takes a voicemail for `queue`: the greeting and the beep, then the
    /// recording. `outcome` is the call's once it ends.
    pub(crate) fn start_voicemail(
        &mut self,
        now: Instant,
        queue: QueueId,
        outcome: Outcome,
        env: &dyn Environment,
    ) {
        self.session = None;
        self.waiting_ended(now);
        // The greeting replaces the hold music.
        self.hold = None;
        self.transfer_failed(sip::message::StatusCode::TEMPORARILY_UNAVAILABLE);
        let plan = env.plan();
        let Some(voicemail) = plan.voicemail() else {
            // A reload removed `[voicemail]` while the caller was on the way.
            warn!("no [voicemail] in the dialplan any more: hanging up");
            self.hang_up(now, outcome);
            return;
        };
        if !self.caller.media {
            self.hang_up(now, outcome);
            return;
        }
        info!(queue = %queue, "voicemail");
        self.record.department = Some(queue.as_str().to_string());
        let playback = self.next_playback_id();
        let prompts = [
            voicemail.greeting().path().to_path_buf(),
            voicemail.beep().path().to_path_buf(),
        ];
        self.play(&prompts, playback, PlaybackMode::Once, false);
        self.voicemail = Some(Voicemail {
            queue,
            outcome,
            phase: Phase::Greeting { playback },
        });
        self.publish();
    }

    /// A playback ended: after the beep, the recording starts. True if it
    /// was the voicemail's.
    pub(crate) fn voicemail_playback_ended(
        &mut self,
        now: Instant,
        id: u64,
        env: &dyn Environment,
    ) -> bool {
        let Some(voicemail) = self.voicemail.as_mut() else {
            return false;
        };
        if !matches!(voicemail.phase, Phase::Greeting { playback } if playback == id) {
            return false;
        }
        let plan = env.plan();
        let Some(config) = plan.voicemail() else {
            let outcome = voicemail.outcome;
            self.hang_up(now, outcome);
            return true;
        };
        let limits = RecordingLimits::new(
            config.max_length(),
            config.silence_level(),
            config.silence_after(),
        );
        // 128 random bits: a name that says nothing and cannot be guessed.
        let name = format!("{:032x}.wav", self.rng.random::<u128>());
        voicemail.phase = Phase::Recording {
            since: now,
            deadline: now + config.max_length() + Duration::from_secs(1),
            name: name.clone(),
        };
        self.media(MediaAction::Record {
            leg: Leg::Caller,
            name,
            limits,
        });
        true
    }

    /// A digit while in voicemail: `#` ends the message. True if the
    /// voicemail took it (every digit is, while a voicemail goes on).
    pub(crate) fn voicemail_digit(&mut self, now: Instant, digit: char) -> bool {
        let Some(voicemail) = self.voicemail.as_ref() else {
            return false;
        };
        if digit == '#' && matches!(voicemail.phase, Phase::Recording { .. }) {
            info!("voicemail ended by #");
            let outcome = voicemail.outcome;
            self.hang_up(now, outcome);
        }
        true
    }

    /// The media task ended the recording (silence, maximum length).
    pub(crate) fn voicemail_recording_ended(&mut self, now: Instant) {
        if let Some(voicemail) = self.voicemail.as_ref()
            && matches!(voicemail.phase, Phase::Recording { .. })
        {
            let outcome = voicemail.outcome;
            self.hang_up(now, outcome);
        }
    }

    /// When the recording ends at the latest.
    pub(crate) fn voicemail_deadline(&self) -> Option<Instant> {
        match self.voicemail.as_ref()?.phase {
            Phase::Recording { deadline, .. } => Some(deadline),
            _ => None,
        }
    }

    /// Past the recording's deadline: the message ends.
    pub(crate) fn voicemail_timeout(&mut self, now: Instant) {
        if self.voicemail_deadline().is_some_and(|at| at <= now) {
            info!("voicemail at its maximum length without the media's end");
            self.voicemail_recording_ended(now);
        }
    }

    /// The call's outcome once a message is being recorded.
    pub(crate) fn voicemail_outcome(&self) -> Option<Outcome> {
        self.voicemail
            .as_ref()
            .filter(|voicemail| matches!(voicemail.phase, Phase::Recording { .. }))
            .map(|voicemail| voicemail.outcome)
    }

    /// The call ends: a recording in progress is complete, and becomes
    /// the department's lead.
    pub(crate) fn voicemail_call_ended(&mut self, now: Instant) {
        let Some(voicemail) = self.voicemail.as_mut() else {
            return;
        };
        let Phase::Recording { since, name, .. } =
            std::mem::replace(&mut voicemail.phase, Phase::Done)
        else {
            return;
        };
        let queue = voicemail.queue.clone();
        self.media(MediaAction::StopRecording);
        let recording = Recording {
            name,
            length: now.saturating_duration_since(since),
        };
        info!(queue = %queue, seconds = recording.length.as_secs(), "voicemail left");
        let waited = Duration::from_millis(self.record.wait_ms.unwrap_or(0));
        let mut lead = CallLead::new(records::LeadKind::Voicemail, &self.record, queue, waited);
        lead.recording = Some(recording);
        self.push(Action::Lead(lead));
    }
}
