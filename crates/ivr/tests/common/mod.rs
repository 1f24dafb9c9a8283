//! A virtual-clock harness for the IVR engine: plays the part of the call
//! driver (answers, plays prompts to their end, presses digits) with no
//! sleeps and no real time.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ivr::{Action, Dialplan, Input, PlaybackId, Session};
use jiff::Timestamp;

pub fn dialplans() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dialplans")
}

pub fn clinic() -> Arc<Dialplan> {
    Arc::new(Dialplan::load(dialplans().join("clinic.toml")).expect("clinic.toml is valid"))
}

pub fn branches() -> Arc<Dialplan> {
    Arc::new(
        Dialplan::load(dialplans().join("riverside-branches.toml"))
            .expect("riverside-branches.toml is valid"),
    )
}

/// A clinic-local wall-clock time (`2026-07-15T10:00`) as an instant.
pub fn chicago(local: &str) -> Timestamp {
    let datetime: jiff::civil::DateTime = local.parse().expect("a civil datetime");
    datetime
        .to_zoned_datetime(jiff::tz::TimeZone::get("America/Chicago").expect("tz"))
        .expect("a valid local time")
        .timestamp()
}

/// Wednesday 2026-07-15 10:00 in Chicago: the clinic is open.
pub fn open_hours() -> Timestamp {
    chicago("2026-07-15T10:00")
}

/// One call driven with a virtual clock.
pub struct Call {
    pub session: Session,
    pub now: Timestamp,
    /// The playback in progress and when it ends.
    pub playing: Option<(PlaybackId, Timestamp, String)>,
    /// Every action, in order.
    pub actions: Vec<Action>,
    /// Every prompt started, by file name.
    pub played: Vec<String>,
    /// Answer automatically when asked.
    pub auto_answer: bool,
}

impl Call {
    pub fn start(plan: Arc<Dialplan>, dialed: &str, caller: &str, at: Timestamp) -> Call {
        let session = Session::new(plan, dialed, caller, at).expect("known number");
        let mut call = Call {
            session,
            now: at,
            playing: None,
            actions: Vec::new(),
            played: Vec::new(),
            auto_answer: true,
        };
        call.drain();
        call
    }

    /// Carries out every pending action.
    pub fn drain(&mut self) {
        while let Some(action) = self.session.poll_action() {
            match &action {
                Action::Answer => {
                    self.actions.push(action.clone());
                    if self.auto_answer {
                        self.session.handle_input(self.now, Input::Answered);
                    }
                    continue;
                }
                Action::Play { playback, prompt } => {
                    let end = self.now.checked_add(prompt.duration()).unwrap();
                    self.playing = Some((*playback, end, prompt.id().to_string()));
                    self.played.push(file_name(prompt.id().as_str()));
                }
                Action::StopPlayback => self.playing = None,
                Action::Listen { .. } | Action::StopListening => {}
                Action::Queue(_) | Action::Voicemail(_) | Action::HangUp { .. } => {
                    self.playing = None
                }
            }
            self.actions.push(action);
        }
    }

    /// Advances to the next event: the end of the prompt playing, or the
    /// engine's deadline, whichever is first.
    pub fn step(&mut self) {
        let prompt_end = self.playing.as_ref().map(|(_, end, _)| *end);
        let deadline = self.session.poll_timeout();
        match (prompt_end, deadline) {
            (Some(end), Some(deadline)) if deadline < end => self.fire(deadline),
            (Some(end), _) => {
                self.now = end;
                let (playback, _, _) = self.playing.take().unwrap();
                self.session
                    .handle_input(self.now, Input::PromptFinished(playback));
            }
            (None, Some(deadline)) => self.fire(deadline),
            (None, None) => panic!("the call is stuck: no prompt playing and no deadline"),
        }
        self.drain();
    }

    fn fire(&mut self, deadline: Timestamp) {
        self.now = deadline;
        self.session.handle_timeout(self.now);
    }

    /// Listens until the engine waits for digits.
    pub fn until_collecting(&mut self) -> &mut Self {
        while !self.session.is_collecting() {
            assert!(!self.session.is_finished(), "finished before a menu");
            self.step();
        }
        self
    }

    /// Listens until `seconds` into the current prompt (for barge-in).
    pub fn after(&mut self, seconds: f64) -> &mut Self {
        self.now = self
            .now
            .checked_add(Duration::from_secs_f64(seconds))
            .unwrap();
        self
    }

    pub fn press(&mut self, digits: &str) -> &mut Self {
        for digit in digits.chars() {
            self.session.handle_input(self.now, Input::Digit(digit));
            self.drain();
        }
        self
    }

    /// Runs with no more input until the session ends; returns its last action.
    pub fn finish(&mut self) -> Action {
        let mut guard = 0;
        while !self.session.is_finished() {
            self.step();
            guard += 1;
            assert!(guard < 1000, "the call never ends");
        }
        self.drain();
        self.actions.last().cloned().expect("an action")
    }

    pub fn queue(&mut self) -> ivr::QueueDecision {
        match self.finish() {
            Action::Queue(decision) => decision,
            other => panic!("expected a queue decision, got {other:?}"),
        }
    }

    pub fn steps(&self) -> Vec<String> {
        self.session
            .steps()
            .iter()
            .map(|s| s.text.clone())
            .collect()
    }
}

pub fn file_name(id: &str) -> String {
    id.rsplit('/').next().unwrap_or(id).to_string()
}
