//! The queue wait of a call: entering routing's queue, what the patient
//! hears meanwhile, and routing's news (offers, overflow, give-up).
//!
//! While waiting the patient hears the queue's hold prompt once, then an
//! announcement of their position and, when routing has enough answered
//! calls to know it, the wait most callers had ("you are caller number 3;
//! most callers reach someone within 4 minutes"), then the hold music
//! looped. Every `announce_every` the music gives way to a fresh
//! announcement and comes back after it. Each prompt starts a talkspurt
//! (RTP marker bit), so an announcement is recognisable on the wire.
//! Digits pressed while waiting are kept in the call (for a later
//! callback offer) and logged at debug.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use media::playback::PlaybackMode;
use routing::{AgentId, CallerContext, EnqueueError, Enqueued};
use tracing::{debug, info, warn};

use crate::Outcome;
use crate::action::{RouterRequest, RoutingInput};
use crate::call::{Call, Environment, waited_ms};

/// The queue the caller waits in.
#[derive(Debug, Clone)]
pub(crate) struct Waiting {
    pub(crate) queue: routing::QueueId,
    pub(crate) priority: routing::Priority,
    /// When the wait began (moved back by the wait before a transfer).
    pub(crate) since: Instant,
    /// When the hold music next gives way to an announcement.
    pub(crate) next_announcement: Option<Instant>,
    /// Hanging up after waiting this long makes the call an
    /// `abandoned_call` lead (the queue's `abandoned_lead_after`; `None`
    /// also after a transfer: the caller has reached someone).
    pub(crate) abandoned_lead_after: Option<Duration>,
    /// The queue's callback `offer_after` (`None`: no callbacks here, or
    /// after a transfer).
    pub(crate) callback_offer_after: Option<Duration>,
}

/// The callback `offer_after` of `queue` in the plan in force.
pub(crate) fn callback_offer_after(
    env: &dyn Environment,
    queue: &routing::QueueId,
) -> Option<Duration> {
    env.plan()
        .queue(queue.as_str())
        .and_then(ivr::Queue::callback)
        .map(ivr::Callback::offer_after)
}

/// The `abandoned_lead_after` of `queue` in the plan in force.
pub(crate) fn abandoned_lead_after(
    env: &dyn Environment,
    queue: &routing::QueueId,
) -> Option<Duration> {
    env.plan()
        .queue(queue.as_str())
        .and_then(ivr::Queue::abandoned_lead_after)
}

/// What plays to a waiting patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// The queue's hold prompt, once, on entering.
    Prompt(u64),
    /// Waiting for routing's position and estimate before announcing.
    Asking,
    /// Position and expected wait.
    Announcement(u64),
    /// The hold music, looped.
    Music(u64),
    /// A callback prompt (the offer, the number, an apology): the music
    /// comes back after it.
    Callback(u64),
}

/// The most digits kept from a caller's wait (the rest are dropped).
const MAX_QUEUED_DIGITS: usize = 32;

/// Announcements never come more often than this, whatever the queue's
/// `announce_every` says, so that there is music between them.
const MIN_ANNOUNCE_EVERY: Duration = Duration::from_secs(5);

/// "You are caller number `position`" and, with an `estimate`, "most
/// callers reach someone within M minutes", M rounded up to whole minutes
/// (an estimate must not promise less than routing measured); `None`
/// without announcement prompts.
pub(crate) fn announcement_prompts(
    plan: &ivr::Dialplan,
    position: usize,
    estimate: Option<Duration>,
) -> Option<Vec<PathBuf>> {
    let position = u32::try_from(position).unwrap_or(u32::MAX);
    let mut prompts = plan.position_prompts(position)?;
    if let Some(estimate) = estimate {
        let minutes = estimate.as_secs().div_ceil(60).max(1);
        let minutes = u32::try_from(minutes).unwrap_or(u32::MAX);
        prompts.extend(plan.expected_wait_prompts(minutes)?);
    }
    Some(prompts.iter().map(|p| p.path().to_path_buf()).collect())
}

impl Call {
    /// The IVR decided: wait in `decision.queue`. Routing answers with
    /// [`RoutingInput::Enqueued`].
    pub(crate) fn enter_queue(
        &mut self,
        _now: Instant,
        decision: ivr::QueueDecision,
        _env: &dyn Environment,
    ) {
        let priority = to_routing_priority(decision.priority);
        let queue = routing::QueueId::new(decision.queue.as_str());
        self.record.department = Some(decision.queue.as_str().to_string());
        self.record.priority = priority;
        self.record.source = Some(decision.context.source.as_str().to_string());
        let patient = decision.context.known_patient.as_ref();
        let context = CallerContext {
            branch: decision
                .context
                .branch
                .as_ref()
                .or(patient.and_then(|p| p.branch.as_ref()))
                .map(|b| routing::Branch::new(b.as_str())),
            coordinator: patient
                .and_then(|p| p.coordinator.as_ref())
                .map(|a| AgentId::new(a.as_str())),
            language: patient
                .and_then(|p| p.language.as_ref())
                .map(|l| routing::Language::new(l.as_str())),
        };
        self.session = None;
        self.router(RouterRequest::Enqueue {
            queue,
            priority,
            context,
        });
    }

    /// Routing's news about this call, and its answers.
    pub(crate) fn on_routing(&mut self, now: Instant, input: RoutingInput, env: &dyn Environment) {
        match input {
            // The caller left for a callback: routing's news about them is
            // stale (what raced the request; the place was kept, or the
            // call left routing).
            RoutingInput::Offer { .. }
            | RoutingInput::Overflowed { .. }
            | RoutingInput::Voicemail { .. }
            | RoutingInput::GiveUp { .. }
                if self.callback_accepted() =>
            {
                debug!("routing's news after a callback was accepted: ignored");
            }
            RoutingInput::PlaceHeld(position) => self.place_held(now, position),
            RoutingInput::Enqueued(result) => self.enqueued(now, result, env),
            RoutingInput::Transferred(result) => self.transfer_routed(now, result, env),
            RoutingInput::Announcement { position, estimate } => {
                self.callback_estimate(now, estimate);
                self.announce(position, estimate, env);
            }
            RoutingInput::Offer {
                agents,
                ring_timeout,
                waited,
            } => {
                let waited = waited.as_secs();
                for agent in agents {
                    self.ring_agent(agent, ring_timeout, waited, env);
                }
            }
            RoutingInput::Overflowed { to, priority } => {
                info!(to = %to, "overflowed to another queue");
                self.journal(records::CallEvent::Overflowed {
                    from: self.record.department.clone().unwrap_or_default(),
                    to: Some(to.as_str().to_string()),
                });
                self.journal_queued(&to, priority, env);
                self.overflowed = true;
                self.record.department = Some(to.as_str().to_string());
                self.record.priority = priority;
                let lead_after = abandoned_lead_after(env, &to);
                let offer_after = callback_offer_after(env, &to);
                if let Some(waiting) = self.waiting.as_mut() {
                    waiting.queue = to;
                    waiting.priority = priority;
                    waiting.abandoned_lead_after = lead_after;
                    waiting.callback_offer_after = offer_after;
                }
                self.publish();
            }
            RoutingInput::Voicemail { queue } => {
                info!("max wait reached: the caller leaves a voicemail");
                self.journal(records::CallEvent::Overflowed {
                    from: self.record.department.clone().unwrap_or_default(),
                    to: None,
                });
                self.start_voicemail(now, queue, Outcome::Overflowed, env);
            }
            RoutingInput::GiveUp { message } => {
                info!("max wait reached: the caller is told to call back");
                self.journal(records::CallEvent::Overflowed {
                    from: self.record.department.clone().unwrap_or_default(),
                    to: None,
                });
                self.waiting_ended(now);
                self.hold = None;
                self.transfer_failed(sip::message::StatusCode::TEMPORARILY_UNAVAILABLE);
                let path = message_path(&env.plan(), &message);
                self.farewell(now, &path, Outcome::Overflowed);
            }
        }
    }

    fn enqueued(
        &mut self,
        now: Instant,
        result: Option<Result<Enqueued, EnqueueError>>,
        env: &dyn Environment,
    ) {
        match result {
            Some(Ok(enqueued)) => {
                info!(queue = %enqueued.queue, priority = enqueued.priority.as_str(), position = enqueued.position, "queued");
                if enqueued.overflowed_from.is_some() {
                    self.overflowed = true;
                }
                self.record.department = Some(enqueued.queue.as_str().to_string());
                self.record.priority = enqueued.priority;
                self.waiting = Some(Waiting {
                    abandoned_lead_after: abandoned_lead_after(env, &enqueued.queue),
                    callback_offer_after: callback_offer_after(env, &enqueued.queue),
                    queue: enqueued.queue.clone(),
                    priority: enqueued.priority,
                    since: now,
                    next_announcement: None,
                });
                self.publish();
                self.journal_queued(&enqueued.queue, enqueued.priority, env);
                self.start_hold(now, env);
            }
            Some(Err(EnqueueError::Refused { message, .. })) => {
                info!("queue full: the caller is told to call back");
                let path = message_path(&env.plan(), message.as_str());
                self.farewell(now, &path, Outcome::Overflowed);
            }
            Some(Err(EnqueueError::Voicemail { queue })) => {
                info!("queue full: the caller leaves a voicemail");
                self.start_voicemail(now, queue, Outcome::Overflowed, env);
            }
            Some(Err(error)) => {
                warn!(%error, "cannot queue the call");
                self.hang_up(now, Outcome::Rejected);
            }
            None => {
                warn!("cannot queue the call: routing has stopped");
                self.hang_up(now, Outcome::Rejected);
            }
        }
    }

    /// The patient just entered a queue (or a transfer put them in one):
    /// the hold prompt, else straight to the announcement or the music.
    pub(crate) fn start_hold(&mut self, now: Instant, env: &dyn Environment) {
        let Some(waiting) = self.waiting.as_ref() else {
            return;
        };
        let hold_prompt = env
            .plan()
            .queue(waiting.queue.as_str())
            .and_then(|queue| queue.hold_prompt())
            .map(|prompt| prompt.path().to_path_buf());
        match hold_prompt {
            Some(path) => {
                let id = self.next_playback_id();
                self.hold = Some(Hold::Prompt(id));
                self.play(&[path], id, PlaybackMode::Once, false);
            }
            None => self.announce_or_music(now, env),
        }
    }

    /// Announces position and expected wait when the queue does (asking
    /// routing first); otherwise (and after it) the hold music.
    fn announce_or_music(&mut self, now: Instant, env: &dyn Environment) {
        let Some(waiting) = self.waiting.as_ref() else {
            return;
        };
        let every = env
            .plan()
            .queue(waiting.queue.as_str())
            .and_then(|queue| queue.announce_every())
            .map(|every| every.max(MIN_ANNOUNCE_EVERY));
        let Some(every) = every else {
            // This queue does not announce (perhaps after an overflow): the
            // music goes on, or starts.
            if let Some(waiting) = self.waiting.as_mut() {
                waiting.next_announcement = None;
            }
            if !matches!(self.hold, Some(Hold::Music(_))) {
                self.start_music(env);
            }
            return;
        };
        let (queue, priority) = (waiting.queue.clone(), waiting.priority);
        if let Some(waiting) = self.waiting.as_mut() {
            waiting.next_announcement = Some(now + every);
        }
        if !matches!(self.hold, Some(Hold::Music(_))) {
            self.hold = Some(Hold::Asking);
        }
        self.router(RouterRequest::Announcement { queue, priority });
    }

    /// Routing's position and estimate: the announcement, or (nothing to
    /// say: an agent is ringing) the music.
    fn announce(
        &mut self,
        position: Option<usize>,
        estimate: Option<Duration>,
        env: &dyn Environment,
    ) {
        // No waiting caller, or a callback prompt plays (the offer, the
        // number): this announcement is skipped; the next comes after the
        // music is back.
        if self.waiting.is_none() || matches!(self.hold, Some(Hold::Callback(_))) {
            return;
        }
        let prompts = position.and_then(|position| {
            debug!(position, ?estimate, "announcing position and wait");
            announcement_prompts(&env.plan(), position, estimate)
        });
        match prompts {
            Some(paths) => {
                let id = self.next_playback_id();
                self.hold = Some(Hold::Announcement(id));
                self.play(&paths, id, PlaybackMode::Once, false);
            }
            None if matches!(self.hold, Some(Hold::Music(_))) => {}
            None => self.start_music(env),
        }
    }

    fn start_music(&mut self, env: &dyn Environment) {
        let Some(waiting) = self.waiting.as_ref() else {
            return;
        };
        let music = env
            .plan()
            .queue(waiting.queue.as_str())
            .and_then(|queue| queue.hold_music())
            .map(|music| music.path().to_path_buf());
        let id = self.next_playback_id();
        self.hold = Some(Hold::Music(id));
        if let Some(music) = music {
            self.play(&[music], id, PlaybackMode::Loop, false);
        }
    }

    /// A playback to the patient ended: `true` when it was the hold's (the
    /// hold prompt or an announcement gives way to what follows).
    pub(crate) fn on_hold_playback_ended(
        &mut self,
        now: Instant,
        id: u64,
        completed: bool,
        env: &dyn Environment,
    ) -> bool {
        match self.hold {
            Some(Hold::Prompt(playing)) if playing == id => {
                if completed && self.waiting.is_some() && !self.callback_after_hold_prompt(now, env)
                {
                    self.announce_or_music(now, env);
                }
                true
            }
            Some(Hold::Announcement(playing)) if playing == id => {
                if completed && self.waiting.is_some() && !self.callback_after_hold_prompt(now, env)
                {
                    self.start_music(env);
                }
                true
            }
            Some(Hold::Callback(playing)) if playing == id => {
                // Finished or cut short by a digit: the music again.
                if self.waiting.is_some() {
                    self.start_music(env);
                }
                true
            }
            Some(Hold::Music(playing)) => playing == id,
            _ => false,
        }
    }

    /// When the music next gives way to an announcement.
    pub(crate) fn hold_deadline(&self) -> Option<Instant> {
        match self.hold {
            Some(Hold::Music(_)) => self.waiting.as_ref()?.next_announcement,
            _ => None,
        }
    }

    /// The announcement is due.
    pub(crate) fn hold_timeout(&mut self, now: Instant, env: &dyn Environment) {
        if self.hold_deadline().is_some_and(|at| at <= now) {
            self.announce_or_music(now, env);
        }
    }

    /// A digit while waiting: the callback's (its key, a number), else
    /// kept (at most [`MAX_QUEUED_DIGITS`]) and logged.
    pub(crate) fn queued_digit(&mut self, now: Instant, digit: char, env: &dyn Environment) {
        if self.callback_digit(now, digit, env) {
            return;
        }
        if self.queued_digits.len() < MAX_QUEUED_DIGITS {
            self.queued_digits.push(digit);
        }
        debug!(%digit, digits = %self.queued_digits, "digit while queued");
    }

    /// The caller left the queue unanswered (hung up, cancelled, went
    /// silent, or the daemon stopped): after waiting at least the queue's
    /// `abandoned_lead_after`, the call becomes an `abandoned_call` lead.
    /// Whether the same number reached someone meanwhile is the leads
    /// service's question (it reads the journal).
    pub(crate) fn abandoned(&mut self, now: Instant) {
        let Some(waiting) = self.waiting.as_ref() else {
            return;
        };
        if self.callback_accepted() {
            return;
        }
        let waited = now.saturating_duration_since(waiting.since);
        let Some(after) = waiting.abandoned_lead_after else {
            return;
        };
        if waited < after {
            return;
        }
        info!(queue = %waiting.queue, waited_ms = waited.as_millis(), "abandoned after the queue's lead threshold: a lead");
        let lead = crate::CallLead::new(
            records::LeadKind::AbandonedCall,
            &self.record,
            waiting.queue.clone(),
            waited,
        );
        self.push(crate::Action::Lead(lead));
    }

    /// The wait in queue is over (the router forgot the call, or an agent
    /// answered).
    pub(crate) fn waiting_ended(&mut self, now: Instant) {
        if let Some(waiting) = self.waiting.take() {
            self.record.wait_ms = Some(waited_ms(waiting.since, now));
        }
    }
}

/// Where a message of routing (a prompt id of the dialplan) is.
pub(crate) fn message_path(plan: &ivr::Dialplan, message: &str) -> PathBuf {
    let folder = plan
        .path()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let candidate = folder.join(message);
    if candidate.extension().is_some() {
        candidate
    } else {
        folder.join("prompts").join(format!("{message}.wav"))
    }
}

/// The IVR's priority as routing's.
pub(crate) fn to_routing_priority(priority: ivr::Priority) -> routing::Priority {
    match priority {
        ivr::Priority::Routine => routing::Priority::Routine,
        ivr::Priority::Urgent => routing::Priority::Urgent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clinic() -> ivr::Dialplan {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dialplans/clinic.toml");
        ivr::Dialplan::load(path).expect("the demo clinic is valid")
    }

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .filter_map(|p| p.file_stem())
            .map(|stem| stem.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn position_alone_while_routing_withholds_the_estimate() {
        let prompts = announcement_prompts(&clinic(), 3, None).expect("announcements");
        assert_eq!(names(&prompts), ["you-are-caller-number", "digit-3"]);
    }

    #[test]
    fn the_estimate_is_rounded_up_to_whole_minutes() {
        let plan = clinic();
        let prompts =
            announcement_prompts(&plan, 12, Some(Duration::from_secs(181))).expect("announcements");
        assert_eq!(
            names(&prompts),
            [
                "you-are-caller-number",
                "digit-1",
                "digit-2",
                "most-callers-reach-someone-within",
                "digit-4",
                "minutes"
            ]
        );
        // Under a minute still says "within 1 minutes", never 0.
        let prompts =
            announcement_prompts(&plan, 1, Some(Duration::from_secs(20))).expect("announcements");
        assert_eq!(names(&prompts)[3], "digit-1");
    }

    #[test]
    fn a_message_is_a_file_of_the_plan_or_a_prompt_id() {
        let plan = clinic();
        assert!(message_path(&plan, "call-back-later").ends_with("prompts/call-back-later.wav"));
        assert!(message_path(&plan, "prompts/x.wav").ends_with("prompts/x.wav"));
    }
}
