//! `frontdesk simulate`: one call walked through a dialplan on a virtual
//! clock, with no network, by the same [`Session`] the daemon runs.
//!
//! The virtual caller and phone behave like this, so that a run is fully
//! determined by its arguments:
//!
//! - the call is answered as soon as the engine asks (after the number's
//!   `answer_after` ring delay, if any);
//! - every prompt plays to its end: its length comes from its WAV header;
//! - digits are pressed at collect points: each time a menu prompt has
//!   ended and the menu waits for input, the next character of `digits` is
//!   pressed at once, and further characters follow at the same instant
//!   while a multi-digit menu still collects. A `.` presses nothing at that
//!   point, so the menu's timeout passes (`.2` = no input, then 2). Digits
//!   are never pressed during a prompt: barge-in is the engine's business
//!   and has its own tests;
//! - with `say` (`--say "heart doctor"`), the text is said at the first
//!   collect point of a menu that takes speech, before any digit there:
//!   it goes through the same matcher as the recogniser's output, with
//!   full confidence (the recogniser itself is not run);
//! - when no digit is due, the clock jumps to the engine's next deadline
//!   or to the end of the prompt playing, whichever comes first.

use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::DateTime;

use crate::ids::PromptId;
use crate::plan::Dialplan;
use crate::session::{Action, Input, PlaybackId, QueueDecision, Session, SessionError, Step};
use crate::speech_menu::SpeechInput;

/// What the IVR decided for a simulated call (not a call's outcome in the
/// journal, `records::Outcome`: a simulation ends at the IVR's decision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Handed to a queue.
    Queued(QueueDecision),
    /// Sent to voicemail for the decision's queue.
    Voicemail(QueueDecision),
    /// Hung up, after this message if any.
    HungUp {
        /// The message played last.
        after_message: Option<PromptId>,
    },
    /// The engine stopped with nothing left to wait for (a bug, never
    /// expected of a checked plan); reported rather than looping.
    Stuck,
}

/// The result of [`simulate`].
#[derive(Debug, Clone)]
pub struct Simulation {
    /// When the call arrived.
    pub start: Timestamp,
    /// The engine's step log.
    pub steps: Vec<Step>,
    /// What the IVR decided.
    pub decision: Decision,
    /// Characters of `digits` never pressed (the call ended first).
    pub unused_digits: String,
    /// The `say` text when no speech menu was reached to say it at.
    pub unsaid: Option<String>,
}

/// Upper bound on engine events in one simulated call; a checked plan needs
/// a few dozen.
const MAX_EVENTS: usize = 10_000;

/// Simulates a call from `caller` to `dialed` arriving at `at`, pressing
/// `digits` at collect points (see the module docs).
pub fn simulate(
    plan: Arc<Dialplan>,
    dialed: &str,
    caller: &str,
    at: Timestamp,
    digits: &str,
) -> Result<Simulation, SessionError> {
    simulate_saying(plan, dialed, caller, at, digits, None)
}

/// [`simulate`], saying `say` at the first speech menu (see the module docs).
pub fn simulate_saying(
    plan: Arc<Dialplan>,
    dialed: &str,
    caller: &str,
    at: Timestamp,
    digits: &str,
    say: Option<&str>,
) -> Result<Simulation, SessionError> {
    let mut session = Session::new(plan, dialed, caller, at)?;
    let mut say = say.map(str::to_string);
    let mut listening = false;
    let mut now = at;
    let mut digits: std::collections::VecDeque<char> = digits.chars().collect();
    let mut playing: Option<(PlaybackId, Timestamp)> = None;
    let mut decision = None;
    // Whether the `.` for the current collect point has been used.
    let mut skipped_here = false;
    for _ in 0..MAX_EVENTS {
        while let Some(action) = session.poll_action() {
            match action {
                Action::Answer => session.handle_input(now, Input::Answered),
                Action::Play { playback, prompt } => {
                    let end = now.checked_add(prompt.duration()).unwrap_or(Timestamp::MAX);
                    playing = Some((playback, end));
                }
                Action::StopPlayback => playing = None,
                Action::Listen { .. } => listening = true,
                Action::StopListening => listening = false,
                Action::Queue(queue) => decision = Some(Decision::Queued(queue)),
                Action::Voicemail(queue) => decision = Some(Decision::Voicemail(queue)),
                Action::HangUp { after_message } => {
                    decision = Some(Decision::HungUp { after_message })
                }
            }
        }
        if session.is_finished() {
            break;
        }
        if session.is_collecting()
            && listening
            && let Some(text) = say.take()
        {
            session.handle_speech(
                now,
                SpeechInput::Heard {
                    text,
                    confidence: 1.0,
                },
            );
            continue;
        }
        if session.is_collecting() && !skipped_here {
            match digits.front() {
                Some('.') => {
                    digits.pop_front();
                    skipped_here = true;
                }
                Some(&digit) => {
                    digits.pop_front();
                    session.handle_input(now, Input::Digit(digit));
                    continue;
                }
                None => {}
            }
        }
        let prompt_end = playing.map(|(_, end)| end);
        let deadline = session.poll_timeout();
        match (prompt_end, deadline) {
            (Some(end), Some(deadline)) if deadline < end => {
                now = deadline;
                session.handle_timeout(now);
            }
            (Some(end), _) => {
                now = end;
                if let Some((playback, _)) = playing.take() {
                    session.handle_input(now, Input::PromptFinished(playback));
                }
            }
            (None, Some(deadline)) => {
                now = deadline;
                session.handle_timeout(now);
            }
            (None, None) => break,
        }
        // A new collect point may begin after any event.
        if !session.is_collecting() {
            skipped_here = false;
        }
    }
    Ok(Simulation {
        start: at,
        steps: session.steps().to_vec(),
        decision: decision.unwrap_or(Decision::Stuck),
        unused_digits: digits.into_iter().collect(),
        unsaid: say,
    })
}

/// Reads `--at`: the clinic's local wall-clock time (`2026-12-25T02:00`),
/// unless the text carries an offset (`2026-12-25T08:00Z`,
/// `2026-12-25T02:00-06:00`) or a time zone annotation
/// (`2026-12-25T02:00[America/Chicago]`). A local time skipped by a
/// daylight-saving change is moved forward; a repeated one takes the
/// earlier instant (jiff's "compatible" rule, as RFC 5545 does).
pub fn parse_time(plan: &Dialplan, text: &str) -> Result<Timestamp, String> {
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        return Ok(timestamp);
    }
    if let Ok(zoned) = text.parse::<jiff::ZonedDateTime>() {
        return Ok(zoned.timestamp());
    }
    let local: DateTime = text.parse().map_err(|_| {
        format!("`{text}` is not a time: write the clinic's local time like 2026-12-25T02:00, or add an offset (2026-12-25T08:00Z)")
    })?;
    plan.clinic()
        .time_zone()
        .to_ambiguous_timestamp(local)
        .compatible()
        .map_err(|error| format!("`{text}`: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn clinic() -> Arc<Dialplan> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dialplans/clinic.toml");
        Arc::new(Dialplan::load(path).unwrap())
    }

    #[test]
    fn local_times_offsets_and_dst_gaps() {
        let plan = clinic();
        let t = |s: &str| parse_time(&plan, s).unwrap().to_string();
        assert_eq!(t("2026-12-25T02:00"), "2026-12-25T08:00:00Z");
        assert_eq!(t("2026-07-15T10:00"), "2026-07-15T15:00:00Z");
        assert_eq!(t("2026-12-25T02:00-05:00"), "2026-12-25T07:00:00Z");
        assert_eq!(t("2026-12-25T08:00Z"), "2026-12-25T08:00:00Z");
        // 02:30 does not exist on 2026-03-08 in Chicago: moved to 03:30 CDT.
        assert_eq!(t("2026-03-08T02:30"), "2026-03-08T08:30:00Z");
        // 01:30 happens twice on 2026-11-01: the earlier (CDT) one.
        assert_eq!(t("2026-11-01T01:30"), "2026-11-01T06:30:00Z");
        assert!(parse_time(&plan, "tomorrow").is_err());
    }

    #[test]
    fn digits_are_pressed_at_collect_points_and_dots_let_the_timeout_pass() {
        let plan = clinic();
        let at = parse_time(&plan, "2026-07-15T10:00").unwrap();
        let run = simulate(Arc::clone(&plan), "+15550100", "+13125550100", at, "2").unwrap();
        let Decision::Queued(decision) = &run.decision else {
            panic!("{:?}", run.decision)
        };
        assert_eq!(decision.queue.as_str(), "cardiology");
        let run = simulate(Arc::clone(&plan), "+15550100", "x", at, ".3").unwrap();
        let Decision::Queued(decision) = &run.decision else {
            panic!("{:?}", run.decision)
        };
        assert_eq!(decision.queue.as_str(), "pediatrics");
        assert!(
            run.steps
                .iter()
                .any(|s| s.text == "menu main: no input (try 1 of 2)")
        );
        let run = simulate(Arc::clone(&plan), "+15550111", "x", at, "12").unwrap();
        assert_eq!(run.unused_digits, "12");
    }
}
