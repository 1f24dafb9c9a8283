//! The IVR engine: one [`Session`] per call, a sans-IO state machine.
//!
//! The session never reads a clock and never touches a socket. The driver
//! (the daemon's call task, or `frontdesk simulate` with a virtual clock)
//! feeds it inputs with the current time and carries out its actions:
//!
//! ```text
//! let mut session = Session::new(plan, dialed, caller, now)?;   // unknown number → SIP 404
//! loop {
//!     while let Some(action) = session.poll_action() { /* answer, play, stop, queue, hang up */ }
//!     if session.is_finished() { break }
//!     select! {
//!         input = events => session.handle_input(now, input),   // Answered, Digit, PromptFinished
//!         _ = sleep_until(session.poll_timeout()) => session.handle_timeout(now),
//!     }
//! }
//! ```
//!
//! Time is a [`jiff::Timestamp`]: the same type business hours are judged
//! with. A tokio driver passes `Timestamp::now()` and sleeps for
//! `deadline.duration_since(now)`; only differences matter to the engine
//! apart from the hours decision at answer time.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::ids::{Branch, MenuId, PromptId, QueueId, SourceTag};
use crate::plan::{
    Dialplan, KnownPatient, Menu, Overflow, Priority, PriorityChange, Prompt, Queue, Target,
};
use crate::speech_menu::SpeechInput;

/// How long past a prompt's length the engine waits for
/// [`Input::PromptFinished`] before carrying on by itself, so that a lost
/// media event never strands a caller in silence.
pub const PROMPT_GRACE: Duration = Duration::from_secs(2);

/// Identifies one [`Action::Play`], so that a late `PromptFinished` for a
/// playback that was stopped is not taken for the end of the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlaybackId(u64);

impl PlaybackId {
    /// The raw number (unique within one session).
    pub fn get(&self) -> u64 {
        self.0
    }
}

/// What happened on the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The call is answered (the 200 OK was acknowledged): the engine
    /// decides in- or out-of-hours at this instant and starts.
    Answered,
    /// A DTMF digit (`0`–`9`, `*`, `#`, `A`–`D`), whichever way it came
    /// (RFC 4733 event, SIP INFO, in-band). Other characters are ignored.
    Digit(char),
    /// The playback started by the [`Action::Play`] with this id reached
    /// its end. Reports for stopped or older playbacks are ignored.
    PromptFinished(PlaybackId),
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer the call now (send 200 OK); report [`Input::Answered`] once
    /// the dialog is confirmed. Comes at once, or after the number's
    /// `answer_after` ring delay.
    Answer,
    /// Play a prompt to the caller, replacing anything playing.
    Play {
        /// Quote it back in [`Input::PromptFinished`].
        playback: PlaybackId,
        /// The checked prompt file.
        prompt: Prompt,
    },
    /// Stop the current playback at once (the caller pressed a digit).
    StopPlayback,
    /// Listen to the caller for this speech menu: voice activity (report
    /// [`SpeechInput::Started`]), then each utterance to the recogniser
    /// with `grammar` (report what it heard with [`SpeechInput::Heard`],
    /// or [`SpeechInput::Unavailable`]). Never during entry prompts: speech
    /// does not barge into the emergency notice.
    Listen {
        /// The menu listened for.
        menu: MenuId,
        /// Its grammar.
        grammar: Arc<speech::Grammar>,
    },
    /// Stop listening (the menu was left, or fell back to keys).
    StopListening,
    /// Hand the call to a queue. The session is finished.
    Queue(QueueDecision),
    /// Take a voicemail for the decision's queue (the dialplan's
    /// [`crate::plan::Voicemail`]: greeting, beep, recording). The session
    /// is finished.
    Voicemail(QueueDecision),
    /// Hang up. The session is finished.
    HangUp {
        /// The message played (and finished) just before, if any; `None`
        /// only on a path the operator marked exempt from the safety rules.
        after_message: Option<PromptId>,
    },
}

/// The routing decision: which queue, how urgent, and who is calling.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QueueDecision {
    /// The department queue.
    pub queue: QueueId,
    /// Its priority there.
    pub priority: Priority,
    /// Who is calling, from where.
    pub context: CallContext,
}

/// What is known about a call, carried with it into routing and records.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CallContext {
    /// The dialed number's source tag (`main-line`).
    pub source: SourceTag,
    /// The number as the caller dialed it (`5550100`).
    pub dialed: String,
    /// The dialplan number it reached (`+15550100`).
    pub number: String,
    /// The caller's number.
    pub caller: String,
    /// The branch: the known patient's, else the dialed number's.
    pub branch: Option<Branch>,
    /// The caller's directory entry, if they are a known patient.
    pub known_patient: Option<KnownPatient>,
    /// True when the call took the after-hours path.
    pub after_hours: bool,
}

/// One line of the session's log, for `simulate` and call traces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// When it happened.
    pub at: Timestamp,
    /// What happened, in an operator's words.
    pub text: String,
}

/// Why a session cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The dialed number is not in the dialplan: answer SIP 404 Not Found.
    #[error("no number `{0}` in the dialplan")]
    UnknownNumber(String),
}

impl SessionError {
    /// The SIP final response that reports this error to the caller.
    pub fn sip_status(&self) -> u16 {
        match self {
            SessionError::UnknownNumber(_) => 404,
        }
    }
}

/// A prompt being played.
#[derive(Debug, Clone)]
struct Playing {
    playback: PlaybackId,
    prompt: Prompt,
    /// When to give up waiting for `PromptFinished`.
    watchdog: Timestamp,
}

#[derive(Debug)]
enum State {
    /// Letting the phone ring before answering.
    Ringing { answer_at: Timestamp },
    /// [`Action::Answer`] sent; waiting for [`Input::Answered`].
    Answering,
    /// Entry prompts (the emergency notice, the after-hours message).
    Announcing {
        playing: Playing,
        rest: VecDeque<Prompt>,
        then: Target,
    },
    /// A menu: playing its prompt, or collecting digits.
    Menu(MenuState),
    /// A final message; hang up when it ends.
    Farewell { playing: Playing },
    /// Queued or hung up.
    Done,
}

#[derive(Debug)]
struct MenuState {
    menu: MenuId,
    /// Failed tries so far (no input or invalid).
    failures: u32,
    digits: String,
    phase: MenuPhase,
    /// The menu still takes speech (it has phrases and has not fallen
    /// back to keys).
    speech_on: bool,
}

#[derive(Debug)]
enum MenuPhase {
    /// Playing the "invalid choice" / "no input" prompt (`intro`), or the menu prompt.
    Playing { playing: Playing, intro: bool },
    /// Prompt over; waiting for a (further) digit until `deadline`.
    Waiting { deadline: Timestamp },
    /// Speech matched `option` below the threshold: playing its confirm
    /// prompt (`playing`), then waiting for 1 until `deadline`.
    Confirming {
        option: String,
        playing: Option<Playing>,
        deadline: Timestamp,
    },
}

/// Which way a menu try failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    NoInput,
    Invalid,
}

/// One call's walk through the dialplan. See the module docs for the run loop.
pub struct Session {
    plan: Arc<Dialplan>,
    number: usize,
    dialed: String,
    caller: String,
    priority: Priority,
    known_patient: Option<KnownPatient>,
    after_hours: bool,
    state: State,
    actions: VecDeque<Action>,
    steps: Vec<Step>,
    next_playback: u64,
    /// The speech menu an [`Action::Listen`] is in force for.
    listening: Option<MenuId>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The caller's number is patient data: keep it out of debug output.
        f.debug_struct("Session")
            .field("dialed", &self.dialed)
            .field("priority", &self.priority)
            .field("after_hours", &self.after_hours)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Starts a session for a call from `caller` to `dialed` at `now`.
    ///
    /// The first action is [`Action::Answer`], at once or (with the
    /// number's `answer_after`) from [`Session::handle_timeout`].
    pub fn new(
        plan: Arc<Dialplan>,
        dialed: &str,
        caller: &str,
        now: Timestamp,
    ) -> Result<Session, SessionError> {
        let number_index = plan
            .number_index(dialed)
            .ok_or_else(|| SessionError::UnknownNumber(dialed.to_string()))?;
        // number_index comes from this plan's own index of its numbers.
        let number = &plan.numbers()[number_index];
        let priority = number.priority();
        let answer_after = number.answer_after();
        let known_patient = plan.known_patient(caller).cloned();
        let mut session = Session {
            number: number_index,
            dialed: dialed.to_string(),
            caller: caller.to_string(),
            priority,
            known_patient,
            after_hours: false,
            state: State::Answering,
            actions: VecDeque::new(),
            steps: Vec::new(),
            next_playback: 0,
            listening: None,
            plan,
        };
        let number = session.number_ref();
        let text = format!(
            "call from {} to {} (number {}, source {}, priority {})",
            session.caller,
            session.dialed,
            number.number(),
            number.source(),
            session.priority
        );
        session.log(now, text);
        let text = match &session.known_patient {
            Some(patient) => format!("known patient: {}", describe_patient(patient)),
            None => "caller is not in the directory".to_string(),
        };
        session.log(now, text);
        match answer_after {
            Some(delay) if !delay.is_zero() => {
                session.log(now, format!("ring for {} before answering", seconds(delay)));
                session.state = State::Ringing {
                    answer_at: after(now, delay),
                };
            }
            _ => session.answer(now),
        }
        Ok(session)
    }

    /// Feeds one input. Then drain [`Session::poll_action`] and re-arm the
    /// timer from [`Session::poll_timeout`].
    pub fn handle_input(&mut self, now: Timestamp, input: Input) {
        match input {
            Input::Answered => self.on_answered(now),
            Input::Digit(digit) => self.on_digit(now, digit),
            Input::PromptFinished(playback) => self.on_prompt_finished(now, playback),
        }
    }

    /// Fires whatever deadline has passed at `now` (early calls do nothing).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        match &self.state {
            State::Ringing { .. } => self.answer(now),
            State::Announcing { playing, .. }
            | State::Farewell { playing }
            | State::Menu(MenuState {
                phase: MenuPhase::Playing { playing, .. },
                ..
            }) => {
                let text = format!(
                    "{} did not report its end; carrying on",
                    playing.prompt.id()
                );
                let playback = playing.playback;
                self.log(now, text);
                self.on_prompt_finished(now, playback);
            }
            State::Menu(MenuState {
                phase:
                    MenuPhase::Confirming {
                        playing: Some(playing),
                        ..
                    },
                ..
            }) => {
                let playback = playing.playback;
                self.on_prompt_finished(now, playback);
            }
            State::Menu(MenuState {
                phase: MenuPhase::Waiting { .. } | MenuPhase::Confirming { playing: None, .. },
                ..
            }) => self.on_menu_timeout(now),
            State::Answering | State::Done => {}
        }
    }

    /// Feeds what the listener and the recogniser report for a speech menu
    /// (see [`Action::Listen`]). Ignored when no speech menu listens.
    pub fn handle_speech(&mut self, now: Timestamp, input: SpeechInput) {
        let state = std::mem::replace(&mut self.state, State::Done);
        let State::Menu(mut menu) = state else {
            self.state = state;
            return;
        };
        let listened = menu.speech_on
            && self.listening.as_ref() == Some(&menu.menu)
            && !matches!(menu.phase, MenuPhase::Confirming { .. });
        let m = self.plan.menu(menu.menu.as_str()).cloned();
        let (true, Some(m)) = (listened, m) else {
            self.state = State::Menu(menu);
            return;
        };
        let Some(speech) = m.speech() else {
            self.state = State::Menu(menu);
            return;
        };
        match input {
            SpeechInput::Started => {
                if let MenuPhase::Playing { playing, .. } = &menu.phase {
                    self.log(
                        now,
                        format!("voice during {}: stop playback", playing.prompt.id()),
                    );
                    self.actions.push_back(Action::StopPlayback);
                }
                // The recogniser's answer is awaited as a digit would be.
                menu.phase = MenuPhase::Waiting {
                    deadline: after(now, m.timeout()),
                };
                self.state = State::Menu(menu);
            }
            SpeechInput::Unavailable => {
                self.log(now, format!("menu {}: no recogniser free", menu.menu));
                self.keys_only(now, &m, menu);
            }
            SpeechInput::Heard { text, confidence } => {
                let confidence = if confidence.is_finite() {
                    confidence.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let choice = speech.matcher().choose(&text);
                let target = choice
                    .as_ref()
                    .and_then(|choice| m.options().get(&choice.option).cloned());
                match (choice, target) {
                    (Some(choice), Some(target)) if confidence >= speech.threshold() => {
                        self.log(
                            now,
                            format!(
                                "menu {}: speech → option {} (confidence {confidence:.2})",
                                menu.menu, choice.option
                            ),
                        );
                        self.stop_listening();
                        if let MenuPhase::Playing { .. } = menu.phase {
                            self.actions.push_back(Action::StopPlayback);
                        }
                        self.choose(now, menu.menu, &choice.option, target);
                    }
                    (Some(choice), Some(_)) => match speech.confirm(&choice.option).cloned() {
                        Some(prompt) => {
                            self.log(
                                now,
                                format!(
                                    "menu {}: speech → option {} below the threshold (confidence {confidence:.2} < {:.2}); confirm",
                                    menu.menu,
                                    choice.option,
                                    speech.threshold()
                                ),
                            );
                            self.stop_listening();
                            if let MenuPhase::Playing { .. } = menu.phase {
                                self.actions.push_back(Action::StopPlayback);
                            }
                            let playing = self.play(now, prompt);
                            menu.phase = MenuPhase::Confirming {
                                option: choice.option,
                                playing: Some(playing),
                                deadline: now,
                            };
                            self.state = State::Menu(menu);
                        }
                        None => {
                            self.log(
                                now,
                                format!(
                                    "menu {}: speech → option {} below the threshold (confidence {confidence:.2}) and no confirm prompt",
                                    menu.menu, choice.option
                                ),
                            );
                            self.keys_only(now, &m, menu);
                        }
                    },
                    _ => {
                        self.log(now, format!("menu {}: speech matched no option", menu.menu));
                        self.keys_only(now, &m, menu);
                    }
                }
            }
        }
    }

    /// The menu stops listening and says so (`[speech] keys_prompt`), then
    /// replays its prompt and waits for keys.
    fn keys_only(&mut self, now: Timestamp, m: &Menu, mut menu: MenuState) {
        self.stop_listening();
        if let MenuPhase::Playing { .. }
        | MenuPhase::Confirming {
            playing: Some(_), ..
        } = menu.phase
        {
            self.actions.push_back(Action::StopPlayback);
        }
        menu.speech_on = false;
        menu.digits.clear();
        self.log(now, format!("menu {}: keys only", menu.menu));
        let intro = self.plan.speech().and_then(|s| s.keys_prompt().cloned());
        let playing = match intro {
            Some(intro) => (self.play(now, intro), true),
            None => (self.play(now, m.prompt().clone()), false),
        };
        menu.phase = MenuPhase::Playing {
            playing: playing.0,
            intro: playing.1,
        };
        self.state = State::Menu(menu);
    }

    fn stop_listening(&mut self) {
        if self.listening.take().is_some() {
            self.actions.push_back(Action::StopListening);
        }
    }

    /// The next action to carry out, in order; `None` when there is none.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Session::handle_timeout`] must next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match &self.state {
            State::Ringing { answer_at } => Some(*answer_at),
            State::Announcing { playing, .. }
            | State::Farewell { playing }
            | State::Menu(MenuState {
                phase: MenuPhase::Playing { playing, .. },
                ..
            }) => Some(playing.watchdog),
            State::Menu(MenuState {
                phase: MenuPhase::Waiting { deadline },
                ..
            }) => Some(*deadline),
            State::Menu(MenuState {
                phase:
                    MenuPhase::Confirming {
                        playing, deadline, ..
                    },
                ..
            }) => Some(playing.as_ref().map_or(*deadline, |p| p.watchdog)),
            State::Answering | State::Done => None,
        }
    }

    /// True once the call is queued or hung up (actions may remain to drain).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// True while a menu prompt has ended and the menu waits for digits:
    /// the point where `simulate` presses the next digit.
    pub fn is_collecting(&self) -> bool {
        matches!(
            self.state,
            State::Menu(MenuState {
                phase: MenuPhase::Waiting { .. },
                ..
            })
        )
    }

    /// The menu a digit pressed now answers: the menu playing or collecting,
    /// or the menu an entry prompt leads to (a digit barges in on it). The
    /// journal records each choice under this menu's name.
    pub fn current_menu(&self) -> Option<&MenuId> {
        match &self.state {
            State::Menu(menu) => Some(&menu.menu),
            State::Announcing {
                then: Target::Menu(menu),
                ..
            } => Some(menu),
            _ => None,
        }
    }

    /// Everything that happened so far, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The dialplan this session walks.
    pub fn plan(&self) -> &Arc<Dialplan> {
        &self.plan
    }

    /// The known patient calling, if the directory has them.
    pub fn known_patient(&self) -> Option<&KnownPatient> {
        self.known_patient.as_ref()
    }

    fn number_ref(&self) -> &crate::plan::Number {
        // `number` was found in this plan's list in `new`, and the plan is immutable.
        &self.plan.numbers()[self.number]
    }

    fn log(&mut self, at: Timestamp, text: impl Into<String>) {
        self.steps.push(Step {
            at,
            text: text.into(),
        });
    }

    fn answer(&mut self, now: Timestamp) {
        self.log(now, "answer the call");
        self.actions.push_back(Action::Answer);
        self.state = State::Answering;
    }

    fn on_answered(&mut self, now: Timestamp) {
        if !matches!(self.state, State::Answering | State::Ringing { .. }) {
            return;
        }
        let plan = Arc::clone(&self.plan);
        // `self.number` indexes this (immutable) plan's numbers; see `new`.
        let number = &plan.numbers()[self.number];
        let state = plan.open_state(now);
        let local = now.to_zoned_datetime(plan.clinic().time_zone().clone());
        let when = local.strftime("%A %Y-%m-%d %H:%M %Z").to_string();
        let after = number.after_hours().or(plan.after_hours());
        let (prompts, then) = match (state.is_open(), after) {
            (false, Some(after)) => {
                self.after_hours = true;
                self.log(
                    now,
                    format!("answered {when}: clinic {state}; after-hours path"),
                );
                let prompts: VecDeque<Prompt> = number
                    .announce()
                    .iter()
                    .chain(after.announce())
                    .cloned()
                    .collect();
                (prompts, after.then().clone())
            }
            _ => {
                self.log(now, format!("answered {when}: clinic {state}"));
                let prompts: VecDeque<Prompt> = number.announce().iter().cloned().collect();
                (prompts, number.then().clone())
            }
        };
        self.announce(now, prompts, then);
    }

    fn announce(&mut self, now: Timestamp, mut prompts: VecDeque<Prompt>, then: Target) {
        match prompts.pop_front() {
            Some(prompt) => {
                let playing = self.play(now, prompt);
                self.state = State::Announcing {
                    playing,
                    rest: prompts,
                    then,
                };
            }
            None => self.go(now, then),
        }
    }

    fn play(&mut self, now: Timestamp, prompt: Prompt) -> Playing {
        self.next_playback += 1;
        let playback = PlaybackId(self.next_playback);
        self.log(
            now,
            format!("play {} ({})", prompt.id(), seconds(prompt.duration())),
        );
        self.actions.push_back(Action::Play {
            playback,
            prompt: prompt.clone(),
        });
        Playing {
            playback,
            watchdog: after(now, prompt.duration() + PROMPT_GRACE),
            prompt,
        }
    }

    /// The call's queue, priority and who is calling, for `queue`.
    fn decision(&self, queue: QueueId) -> QueueDecision {
        let number = self.number_ref();
        let branch = self
            .known_patient
            .as_ref()
            .and_then(|p| p.branch.clone())
            .or_else(|| number.branch().cloned());
        QueueDecision {
            queue,
            priority: self.priority,
            context: CallContext {
                source: number.source().clone(),
                dialed: self.dialed.clone(),
                number: number.number().to_string(),
                caller: self.caller.clone(),
                branch,
                known_patient: self.known_patient.clone(),
                after_hours: self.after_hours,
            },
        }
    }

    /// Moves the call to `target`.
    fn go(&mut self, now: Timestamp, target: Target) {
        if !matches!(target, Target::Menu(_)) {
            self.stop_listening();
        }
        match target {
            Target::Menu(menu) => self.enter_menu(now, menu, 0, None),
            Target::Queue { queue, priority } => {
                if let Some(priority) = priority {
                    self.priority = priority;
                }
                let decision = self.decision(queue);
                self.log(
                    now,
                    format!("queue {}, priority {}", decision.queue, decision.priority),
                );
                self.actions.push_back(Action::Queue(decision));
                self.state = State::Done;
            }
            Target::Voicemail(queue) => {
                let decision = self.decision(queue);
                self.log(now, format!("voicemail for {}", decision.queue));
                self.actions.push_back(Action::Voicemail(decision));
                self.state = State::Done;
            }
            Target::Message(prompt) => {
                let playing = self.play(now, prompt);
                self.state = State::Farewell { playing };
            }
            Target::HangUp => {
                self.log(
                    now,
                    "hang up (no message: the path is exempt from the safety rules)",
                );
                self.actions.push_back(Action::HangUp {
                    after_message: None,
                });
                self.state = State::Done;
            }
        }
    }

    /// Plays a menu (after `intro`, the invalid / no-input prompt, if any).
    fn enter_menu(&mut self, now: Timestamp, menu: MenuId, failures: u32, intro: Option<Prompt>) {
        self.enter_menu_with(now, menu, failures, intro, true);
    }

    fn enter_menu_with(
        &mut self,
        now: Timestamp,
        menu: MenuId,
        failures: u32,
        intro: Option<Prompt>,
        speech_on: bool,
    ) {
        let Some(prompt) = self.plan.menu(menu.as_str()).map(|m| m.prompt().clone()) else {
            // A checked plan resolves every menu; should it not, a person
            // is better than silence.
            return self.fallback(now, &menu);
        };
        if failures > 0 {
            self.log(now, format!("menu {menu}: replay"));
        } else {
            self.log(now, format!("menu {menu}"));
        }
        let (playing, intro) = match intro {
            Some(intro) => (self.play(now, intro), true),
            None => (self.play(now, prompt), false),
        };
        let grammar = self
            .plan
            .speech()
            .and(self.plan.menu(menu.as_str()))
            .and_then(|m| m.speech())
            .map(|speech| Arc::clone(speech.grammar()));
        let speech_on = speech_on && grammar.is_some();
        match grammar {
            Some(grammar) if speech_on => {
                if self.listening.as_ref() != Some(&menu) {
                    self.log(now, format!("menu {menu}: listening for speech"));
                    self.listening = Some(menu.clone());
                    self.actions.push_back(Action::Listen {
                        menu: menu.clone(),
                        grammar,
                    });
                }
            }
            _ => self.stop_listening(),
        }
        self.state = State::Menu(MenuState {
            menu,
            failures,
            digits: String::new(),
            phase: MenuPhase::Playing { playing, intro },
            speech_on,
        });
    }

    fn fallback(&mut self, now: Timestamp, menu: &MenuId) {
        self.log(now, format!("menu {menu} is missing; hanging up"));
        self.actions.push_back(Action::HangUp {
            after_message: None,
        });
        self.state = State::Done;
    }

    fn on_prompt_finished(&mut self, now: Timestamp, playback: PlaybackId) {
        let state = std::mem::replace(&mut self.state, State::Done);
        match state {
            State::Announcing {
                playing,
                rest,
                then,
            } if playing.playback == playback => self.announce(now, rest, then),
            State::Farewell { playing } if playing.playback == playback => {
                let id = playing.prompt.id().clone();
                self.log(now, format!("hang up after {id}"));
                self.actions.push_back(Action::HangUp {
                    after_message: Some(id),
                });
                self.state = State::Done;
            }
            State::Menu(mut menu) => match menu.phase {
                MenuPhase::Playing { playing, intro } if playing.playback == playback => {
                    let Some(m) = self.plan.menu(menu.menu.as_str()).cloned() else {
                        return self.fallback(now, &menu.menu);
                    };
                    if intro {
                        let playing = self.play(now, m.prompt().clone());
                        menu.phase = MenuPhase::Playing {
                            playing,
                            intro: false,
                        };
                    } else {
                        self.log(
                            now,
                            format!(
                                "menu {}: waiting {} for a digit",
                                menu.menu,
                                seconds(m.timeout())
                            ),
                        );
                        menu.phase = MenuPhase::Waiting {
                            deadline: after(now, m.timeout()),
                        };
                    }
                    self.state = State::Menu(menu);
                }
                MenuPhase::Confirming {
                    option,
                    playing: Some(playing),
                    ..
                } if playing.playback == playback => {
                    let timeout = self
                        .plan
                        .menu(menu.menu.as_str())
                        .map_or(Duration::from_secs(5), Menu::timeout);
                    self.log(
                        now,
                        format!(
                            "menu {}: waiting {} for 1 (yes)",
                            menu.menu,
                            seconds(timeout)
                        ),
                    );
                    menu.phase = MenuPhase::Confirming {
                        option,
                        playing: None,
                        deadline: after(now, timeout),
                    };
                    self.state = State::Menu(menu);
                }
                phase => {
                    menu.phase = phase;
                    self.state = State::Menu(menu);
                }
            },
            other => self.state = other,
        }
    }

    fn on_digit(&mut self, now: Timestamp, digit: char) {
        let digit = digit.to_ascii_uppercase();
        if !(digit.is_ascii_digit() || matches!(digit, '*' | '#' | 'A'..='D')) {
            self.log(now, format!("ignored input {digit:?} (not a DTMF digit)"));
            return;
        }
        let state = std::mem::replace(&mut self.state, State::Done);
        match state {
            State::Announcing { playing, then, .. } => {
                self.log(
                    now,
                    format!(
                        "digit {digit} during {}: stop playback",
                        playing.prompt.id()
                    ),
                );
                self.actions.push_back(Action::StopPlayback);
                match then {
                    Target::Menu(menu) => {
                        let Some(m) = self.plan.menu(menu.as_str()).cloned() else {
                            return self.fallback(now, &menu);
                        };
                        self.log(now, format!("menu {menu}"));
                        let state = MenuState {
                            menu,
                            failures: 0,
                            digits: String::new(),
                            phase: MenuPhase::Waiting { deadline: now },
                            speech_on: true,
                        };
                        self.collect(now, &m, state, digit);
                    }
                    other => self.go(now, other),
                }
            }
            State::Menu(mut menu) => {
                let Some(m) = self.plan.menu(menu.menu.as_str()).cloned() else {
                    return self.fallback(now, &menu.menu);
                };
                if let MenuPhase::Confirming {
                    option, playing, ..
                } = &menu.phase
                {
                    if playing.is_some() {
                        self.actions.push_back(Action::StopPlayback);
                    }
                    let target = m.options().get(option).cloned();
                    return match (digit, target) {
                        ('1', Some(target)) => {
                            let option = option.clone();
                            self.log(now, format!("menu {}: 1, yes: option {option}", menu.menu));
                            self.choose(now, menu.menu, &option, target);
                        }
                        _ => {
                            self.log(now, format!("menu {}: digit {digit}, not yes", menu.menu));
                            // Its playback, if any, was stopped above.
                            menu.phase = MenuPhase::Waiting { deadline: now };
                            self.keys_only(now, &m, menu);
                        }
                    };
                }
                if let MenuPhase::Playing { playing, .. } = &menu.phase {
                    self.log(
                        now,
                        format!(
                            "digit {digit} during {}: stop playback",
                            playing.prompt.id()
                        ),
                    );
                    self.actions.push_back(Action::StopPlayback);
                    menu.phase = MenuPhase::Waiting { deadline: now };
                }
                self.collect(now, &m, menu, digit);
            }
            other => {
                self.state = other;
                self.log(now, format!("digit {digit} ignored here"));
            }
        }
    }

    /// Adds a digit and decides if the input is complete.
    fn collect(&mut self, now: Timestamp, m: &Menu, mut state: MenuState, digit: char) {
        // `#` ends a multi-digit entry unless an option uses it.
        let terminator = digit == '#'
            && !state.digits.is_empty()
            && !m
                .options()
                .keys()
                .any(|k| k.starts_with(&format!("{}#", state.digits)));
        if !terminator {
            state.digits.push(digit);
        }
        self.log(now, format!("menu {}: digit {digit}", state.menu));
        let typed = state.digits.clone();
        let exact = m.options().get(&typed).cloned();
        let longer = m
            .options()
            .keys()
            .any(|k| k.len() > typed.len() && k.starts_with(&typed));
        let complete = terminator || typed.chars().count() >= m.max_digits() || !longer;
        match (exact, complete) {
            (Some(target), true) => self.choose(now, state.menu, &typed, target),
            (None, true) => self.fail(now, m, state, Failure::Invalid),
            (_, false) => {
                state.phase = MenuPhase::Waiting {
                    deadline: after(now, m.inter_digit_timeout()),
                };
                self.state = State::Menu(state);
            }
        }
    }

    fn on_menu_timeout(&mut self, now: Timestamp) {
        let State::Menu(mut state) = std::mem::replace(&mut self.state, State::Done) else {
            return;
        };
        let Some(m) = self.plan.menu(state.menu.as_str()).cloned() else {
            return self.fallback(now, &state.menu);
        };
        if let MenuPhase::Confirming { .. } = state.phase {
            self.log(
                now,
                format!("menu {}: no answer to the confirm", state.menu),
            );
            state.phase = MenuPhase::Waiting { deadline: now };
            return self.keys_only(now, &m, state);
        }
        if state.digits.is_empty() {
            self.fail(now, &m, state, Failure::NoInput);
        } else if let Some(target) = m.options().get(&state.digits).cloned() {
            let typed = state.digits.clone();
            self.choose(now, state.menu, &typed, target);
        } else {
            self.fail(now, &m, state, Failure::Invalid);
        }
    }

    fn choose(&mut self, now: Timestamp, menu: MenuId, typed: &str, target: Target) {
        self.log(
            now,
            format!("menu {menu}: option {typed} → {}", describe_target(&target)),
        );
        self.go(now, target);
    }

    fn fail(&mut self, now: Timestamp, m: &Menu, state: MenuState, failure: Failure) {
        let failures = state.failures + 1;
        let tries = m.retries() + 1;
        let what = match failure {
            Failure::NoInput => "no input".to_string(),
            Failure::Invalid => format!("`{}` is not an option", state.digits),
        };
        self.log(
            now,
            format!("menu {}: {what} (try {failures} of {tries})", state.menu),
        );
        if failures <= m.retries() {
            let intro = match failure {
                Failure::NoInput => m.no_input_prompt().cloned(),
                Failure::Invalid => m.invalid_prompt().cloned(),
            };
            // A replay keeps the menu's mode (a fall-back to keys stays).
            self.enter_menu_with(now, state.menu, failures, intro, state.speech_on);
        } else {
            let (key, target) = match failure {
                Failure::NoInput => ("on_no_input", m.on_no_input().clone()),
                Failure::Invalid => ("on_invalid", m.on_invalid().clone()),
            };
            self.log(
                now,
                format!(
                    "menu {}: out of tries; {key} → {}",
                    state.menu,
                    describe_target(&target)
                ),
            );
            self.go(now, target);
        }
    }
}

/// `now + duration`, saturating instead of overflowing.
fn after(now: Timestamp, duration: Duration) -> Timestamp {
    now.checked_add(duration).unwrap_or(Timestamp::MAX)
}

/// `4.7 s`, `15 s`.
fn seconds(duration: Duration) -> String {
    let tenths = (duration.as_millis() + 50) / 100;
    if tenths.is_multiple_of(10) {
        format!("{} s", tenths / 10)
    } else {
        format!("{}.{} s", tenths / 10, tenths % 10)
    }
}

fn describe_target(target: &Target) -> String {
    match target {
        Target::Menu(menu) => format!("menu {menu}"),
        Target::Queue {
            queue,
            priority: Some(priority),
        } => format!("queue {queue} ({priority})"),
        Target::Queue { queue, .. } => format!("queue {queue}"),
        Target::Message(prompt) => format!("message {}", prompt.id()),
        Target::Voicemail(queue) => format!("voicemail {queue}"),
        Target::HangUp => "hang up".to_string(),
    }
}

/// A queue's routing policy, the defaults the dialplan left out included
/// (what `frontdesk check` and `simulate` print):
/// `round-robin, ring 15 s, wrap-up 2 s, max wait 90 s then queue
/// front-desk, SLA 60 s, aging 120 s`.
pub fn describe_queue(queue: &Queue) -> String {
    let mut parts = vec![
        queue.strategy().to_string(),
        format!("ring {}", seconds(queue.ring_timeout())),
        format!("wrap-up {}", seconds(queue.wrap_up())),
    ];
    let mut limit = match queue.max_wait() {
        Some(max_wait) => format!("max wait {}", seconds(max_wait)),
        None => "no max wait".to_string(),
    };
    if let Some(length) = queue.max_length() {
        limit.push_str(&format!(" or {length} waiting"));
    }
    match queue.on_max_wait() {
        Some(Overflow::Queue { queue, priority }) => {
            limit.push_str(&format!(" then queue {queue}"));
            if let PriorityChange::Set(priority) = priority {
                limit.push_str(&format!(" ({priority})"));
            }
        }
        Some(Overflow::Message { message }) => {
            limit.push_str(&format!(" then message {message}"));
        }
        Some(Overflow::Voicemail { queue }) => {
            limit.push_str(&format!(" then voicemail {queue}"));
        }
        None => {}
    }
    parts.push(limit);
    parts.push(format!("SLA {}", seconds(queue.sla())));
    parts.push(format!("aging {}", seconds(queue.aging())));
    parts.join(", ")
}

/// `usual department pediatrics, coordinator 1003, language es, branch south`
pub fn describe_patient(patient: &KnownPatient) -> String {
    let mut parts = Vec::new();
    if let Some(department) = &patient.department {
        parts.push(format!("usual department {department}"));
    }
    if let Some(coordinator) = &patient.coordinator {
        parts.push(format!("coordinator {coordinator}"));
    }
    if let Some(language) = &patient.language {
        parts.push(format!("language {language}"));
    }
    if let Some(branch) = &patient.branch {
        parts.push(format!("branch {branch}"));
    }
    parts.join(", ")
}
