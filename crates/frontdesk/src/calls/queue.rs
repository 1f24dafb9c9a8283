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
use std::time::Duration;

use media::playback::PlaybackMode;
use routing::{AgentId, CallerContext, EnqueueError};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::book::Outcome;
use super::call::{Call, Waiting};
use crate::app::plan_map;
use crate::app::router::RouterMessage;

/// "You are caller number `position`" and, with an `estimate`, "most
/// callers reach someone within M minutes", M rounded up to whole minutes
/// (an estimate must not promise less than routing measured); `None`
/// without announcement prompts.
fn announcement_prompts(
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

/// What plays to a waiting patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hold {
    /// The queue's hold prompt, once, on entering.
    Prompt(u64),
    /// Position and expected wait.
    Announcement(u64),
    /// The hold music, looped.
    Music(u64),
}

/// Announcements never come more often than this, whatever the queue's
/// `announce_every` says, so that there is music between them.
const MIN_ANNOUNCE_EVERY: Duration = Duration::from_secs(5);

impl Call {
    /// The IVR decided: wait in `decision.queue`.
    pub(super) async fn enter_queue(&mut self, decision: ivr::QueueDecision) {
        let priority = plan_map::priority(decision.priority);
        let queue = routing::QueueId::new(decision.queue.as_str());
        self.record.department = Some(decision.queue.as_str().to_string());
        self.record.priority = priority.as_str();
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
        let sender = self.router_sender.clone();
        let enqueued = self
            .app
            .router
            .enqueue(self.id, queue.clone(), priority, context, sender)
            .await;
        match enqueued {
            Ok(Ok(enqueued)) => {
                info!(queue = %enqueued.queue, priority = priority.as_str(), position = enqueued.position, "queued");
                if enqueued.queue != queue {
                    self.overflowed = true;
                }
                self.record.department = Some(enqueued.queue.as_str().to_string());
                self.record.priority = enqueued.priority.as_str();
                self.waiting = Some(Waiting {
                    queue: enqueued.queue.clone(),
                    priority: enqueued.priority,
                    since: Instant::now(),
                    next_announcement: None,
                });
                self.publish();
                self.lead_queued(&enqueued.queue, enqueued.priority);
                self.start_hold().await;
            }
            Ok(Err(EnqueueError::Refused { message, .. })) => {
                info!("queue full: the caller is told to call back");
                let path = self.message_path(message.as_str());
                self.farewell(&path, Outcome::Overflowed).await;
            }
            Ok(Err(error)) => {
                warn!(%error, "cannot queue the call");
                self.hang_up(Outcome::Rejected).await;
            }
            Err(stopped) => {
                warn!(%stopped, "cannot queue the call");
                self.hang_up(Outcome::Rejected).await;
            }
        }
    }

    /// Where a message of routing (a prompt id of the dialplan) is.
    pub(super) fn message_path(&self, message: &str) -> PathBuf {
        let plan = self.app.dialplan.current();
        let folder = plan
            .path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let candidate = folder.join(message);
        if candidate.is_file() {
            candidate
        } else {
            folder.join("prompts").join(format!("{message}.wav"))
        }
    }

    /// The patient just entered a queue (or a transfer put them in one):
    /// the hold prompt, else straight to the announcement or the music.
    pub(super) async fn start_hold(&mut self) {
        let Some(waiting) = self.waiting.as_ref() else {
            return;
        };
        let plan = self.app.dialplan.current();
        let hold_prompt = plan
            .queue(waiting.queue.as_str())
            .and_then(|queue| queue.hold_prompt())
            .map(|prompt| prompt.path().to_path_buf());
        match hold_prompt {
            Some(path) => {
                let id = self.next_playback_id();
                self.hold = Some(Hold::Prompt(id));
                self.play_list(&[path], id, PlaybackMode::Once, false).await;
            }
            None => self.announce_or_music().await,
        }
    }

    /// Announces position and expected wait when the queue does and the
    /// patient is in line; otherwise (and after it) the hold music.
    async fn announce_or_music(&mut self) {
        let Some(waiting) = self.waiting.as_ref() else {
            return;
        };
        let plan = self.app.dialplan.current();
        let every = plan
            .queue(waiting.queue.as_str())
            .and_then(|queue| queue.announce_every())
            .map(|every| every.max(MIN_ANNOUNCE_EVERY));
        let Some(every) = every else {
            // This queue does not announce (perhaps after an overflow):
            // the music goes on, or starts.
            if let Some(waiting) = self.waiting.as_mut() {
                waiting.next_announcement = None;
            }
            if !matches!(self.hold, Some(Hold::Music(_))) {
                self.start_music().await;
            }
            return;
        };
        if let Some(waiting) = self.waiting.as_mut() {
            waiting.next_announcement = Some(Instant::now() + every);
        }
        match self.announcement(&plan).await {
            Some(paths) => {
                let id = self.next_playback_id();
                self.hold = Some(Hold::Announcement(id));
                self.play_list(&paths, id, PlaybackMode::Once, false).await;
            }
            // Nothing to say now (an agent is ringing): the music goes on.
            None if matches!(self.hold, Some(Hold::Music(_))) => {}
            None => self.start_music().await,
        }
    }

    /// "You are caller number N" and, when routing has an honest estimate,
    /// "most callers reach someone within M minutes"; `None` when the
    /// patient is not in line (an agent is ringing) or the dialplan has no
    /// announcement prompts.
    async fn announcement(&self, plan: &ivr::Dialplan) -> Option<Vec<PathBuf>> {
        let waiting = self.waiting.as_ref()?;
        let position = self.app.router.position(self.id).await.ok().flatten()?;
        let estimate = self
            .app
            .router
            .estimate(waiting.queue.clone(), waiting.priority)
            .await
            .ok()
            .flatten();
        debug!(position, ?estimate, "announcing position and wait");
        announcement_prompts(plan, position, estimate)
    }

    async fn start_music(&mut self) {
        let Some(waiting) = self.waiting.as_ref() else {
            return;
        };
        let plan = self.app.dialplan.current();
        let music = plan
            .queue(waiting.queue.as_str())
            .and_then(|queue| queue.hold_music())
            .map(|music| music.path().to_path_buf());
        let id = self.next_playback_id();
        self.hold = Some(Hold::Music(id));
        if let Some(music) = music {
            self.play_list(&[music], id, PlaybackMode::Loop, false)
                .await;
        }
    }

    /// A playback to the patient ended: `true` when it was the hold's (the
    /// hold prompt or an announcement gives way to what follows).
    pub(super) async fn on_hold_playback_ended(&mut self, id: u64, completed: bool) -> bool {
        match self.hold {
            Some(Hold::Prompt(playing)) if playing == id => {
                if completed && self.waiting.is_some() {
                    self.announce_or_music().await;
                }
                true
            }
            Some(Hold::Announcement(playing)) if playing == id => {
                if completed && self.waiting.is_some() {
                    self.start_music().await;
                }
                true
            }
            Some(Hold::Music(playing)) => playing == id,
            _ => false,
        }
    }

    /// When the music next gives way to an announcement.
    pub(super) fn hold_deadline(&self) -> Option<Instant> {
        match self.hold {
            Some(Hold::Music(_)) => self.waiting.as_ref()?.next_announcement,
            _ => None,
        }
    }

    /// The announcement is due.
    pub(super) async fn hold_timeout(&mut self, now: Instant) {
        if self.hold_deadline().is_some_and(|at| at <= now) {
            self.announce_or_music().await;
        }
    }

    /// A digit while waiting: kept for later (a callback offer), not acted on.
    pub(super) fn queued_digit(&mut self, digit: char) {
        self.queued_digits.push(digit);
        debug!(%digit, digits = %self.queued_digits, "digit while queued");
    }

    /// News from routing about this call.
    pub(super) async fn on_router(&mut self, message: RouterMessage) {
        match message {
            RouterMessage::Offer(offer) => {
                let waited = offer.waited.as_secs();
                for agent in offer.agents.iter() {
                    self.ring_agent(agent.clone(), offer.ring_timeout, waited)
                        .await;
                }
            }
            RouterMessage::Overflowed { to, priority } => {
                info!(to = %to, "overflowed to another queue");
                self.lead(records::CallEvent::Overflowed {
                    from: self.record.department.clone().unwrap_or_default(),
                    to: Some(to.as_str().to_string()),
                });
                self.lead_queued(&to, priority);
                self.overflowed = true;
                self.record.department = Some(to.as_str().to_string());
                self.record.priority = priority.as_str();
                if let Some(waiting) = self.waiting.as_mut() {
                    waiting.queue = to;
                    waiting.priority = priority;
                }
                self.publish();
            }
            RouterMessage::GiveUp { message } => {
                info!("max wait reached: the caller is told to call back");
                self.lead(records::CallEvent::Overflowed {
                    from: self.record.department.clone().unwrap_or_default(),
                    to: None,
                });
                self.waiting_ended();
                self.hold = None;
                self.transfer_failed(sip::message::StatusCode::TEMPORARILY_UNAVAILABLE)
                    .await;
                let path = self.message_path(message.as_str());
                self.farewell(&path, Outcome::Overflowed).await;
            }
        }
    }

    /// The wait in queue is over (the router forgot the call, or an agent
    /// answered).
    pub(super) fn waiting_ended(&mut self) {
        if let Some(waiting) = self.waiting.take() {
            self.record.wait_ms = Some(waiting.since.elapsed().as_millis() as u64);
        }
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
}
