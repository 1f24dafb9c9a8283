//! Callbacks offered to a waiting caller (issue 22; DESIGN.md, "Callbacks,
//! voicemail and abandoned calls"): the queue's `callback = { offer_after,
//! key, … }`.
//!
//! The offer: once the caller has waited `offer_after`, or as soon as
//! routing's estimate of the wait (asked for the position announcement)
//! passes it, the hold gives way to `callback-offer` ("… press 1"). The
//! key is taken at any time while waiting, offered or not.
//!
//! The number: `callback-number` asks to confirm the caller's own number
//! with `#` or to key another, then `#` (`*` starts again). The number is
//! read as E.164 with `[clinic] country` and must be one the trunk
//! (`[trunks.carrier]`) may call: its `allow` matches and no `deny` does.
//! A refused number gets `callback-refused` (an apology), a `callback`
//! step `refused` in the journal, and the caller waits on (they may press
//! the key again). While the number is keyed the caller keeps waiting: an
//! agent who comes free takes the call as usual.
//!
//! Accepted: the call asks routing to keep its place for a callback
//! ([`RouterRequest::HoldPlace`]): the entry keeps the caller's enqueue
//! time and priority, and the callback dialer calls the number when it
//! reaches the head of the line. Held, the call gets a `callback` step
//! `accepted` (its wait so far), `callback-accepted` plays and the call
//! ends (`overflowed`: it left the queue for another route). When routing
//! cannot keep the place (an agent's phone rings for the call at that
//! moment, a reload took the queue's callbacks away), nothing is lost: the
//! call leaves the queue all the same and becomes a `callback` lead for
//! the desk ([`crate::Action::Lead`]), with the same step and goodbye.

use std::time::{Duration, Instant};

use ivr::leads::{PhoneNumber, Trunk};
use media::playback::PlaybackMode;
use tracing::info;

use crate::Outcome;
use crate::action::RouterRequest;
use crate::call::{Call, Environment, waited_ms};
use crate::queue::Hold;

/// The longest number a caller may key.
const MAX_DIGITS: usize = 20;

/// Where a caller's callback stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallbackState {
    /// The offer played; nothing asked yet.
    Offered,
    /// The caller pressed the key: the digits of another number so far.
    Number(String),
    /// The number is accepted; routing is asked to keep the place.
    Holding {
        /// The number to call back.
        number: String,
        /// The goodbye (`callback-accepted`), taken now in case a reload
        /// takes the queue's callbacks away meanwhile.
        goodbye: std::path::PathBuf,
        /// Asked by the drain ([`Call::handle_drain`]), not by the caller:
        /// journalled as the step `drain` instead of `accepted`.
        drain: bool,
    },
    /// Accepted: the goodbye plays, the call ends.
    Accepted,
}

impl Call {
    /// The queue's callback settings, while the caller waits in a queue
    /// that has them.
    fn queue_callback(&self, env: &dyn Environment) -> Option<ivr::Callback> {
        let waiting = self.waiting.as_ref()?;
        env.plan()
            .queue(waiting.queue.as_str())
            .and_then(ivr::Queue::callback)
            .cloned()
    }

    /// When the offer is due (`None`: none to make, or not now: while a
    /// prompt of the hold plays, the offer waits for its end,
    /// [`Call::callback_after_hold_prompt`], so a due offer never leaves a
    /// deadline in the past).
    pub(crate) fn callback_deadline(&self) -> Option<Instant> {
        if !matches!(self.hold, Some(Hold::Music(_)) | None) {
            return None;
        }
        self.callback_due()
    }

    /// When the offer is due, whatever plays.
    fn callback_due(&self) -> Option<Instant> {
        if self.callback.is_some() {
            return None;
        }
        let waiting = self.waiting.as_ref()?;
        let by_wait = waiting.since + waiting.callback_offer_after?;
        Some(match self.callback_estimate_passed {
            Some(at) => at.min(by_wait),
            None => by_wait,
        })
    }

    /// Routing's estimate of the wait is in (an announcement asked): past
    /// the queue's `offer_after`, the offer is due now.
    pub(crate) fn callback_estimate(&mut self, now: Instant, estimate: Option<Duration>) {
        let Some(waiting) = self.waiting.as_ref() else {
            return;
        };
        if let (Some(estimate), Some(after)) = (estimate, waiting.callback_offer_after)
            && estimate >= after
            && self.callback_estimate_passed.is_none()
        {
            self.callback_estimate_passed = Some(now);
        }
    }

    /// The offer is due: made now if the hold is at its music (a prompt or
    /// an announcement finishes first; [`Call::callback_after_hold_prompt`]).
    pub(crate) fn callback_timeout(&mut self, now: Instant, env: &dyn Environment) {
        if self.callback_deadline().is_some_and(|at| at <= now) {
            self.offer_callback(now, env);
        }
    }

    /// A hold prompt or announcement finished: `true` when the callback
    /// offer, due meanwhile, plays now (instead of the music).
    pub(crate) fn callback_after_hold_prompt(
        &mut self,
        now: Instant,
        env: &dyn Environment,
    ) -> bool {
        if self.callback_due().is_some_and(|at| at <= now) {
            self.offer_callback(now, env);
            return self.callback.is_some();
        }
        false
    }

    fn offer_callback(&mut self, now: Instant, env: &dyn Environment) {
        let Some(callback) = self.queue_callback(env) else {
            // The queue lost its callbacks in a reload.
            if let Some(waiting) = self.waiting.as_mut() {
                waiting.callback_offer_after = None;
            }
            return;
        };
        self.callback = Some(CallbackState::Offered);
        self.journal_callback("offered", now);
        let path = callback.prompts().offer.path().to_path_buf();
        self.play_callback(&path, false);
    }

    /// A digit while waiting: `true` when the callback took it.
    pub(crate) fn callback_digit(
        &mut self,
        now: Instant,
        digit: char,
        env: &dyn Environment,
    ) -> bool {
        let Some(callback) = self.queue_callback(env) else {
            return false;
        };
        match self.callback.as_mut() {
            None | Some(CallbackState::Offered) if digit == callback.key() => {
                info!("callback asked for");
                self.callback = Some(CallbackState::Number(String::new()));
                let path = callback.prompts().number.path().to_path_buf();
                self.play_callback(&path, true);
                true
            }
            Some(CallbackState::Number(digits)) => {
                match digit {
                    '#' => {
                        let digits = std::mem::take(digits);
                        self.callback_number(now, digits, &callback, env);
                    }
                    '*' => digits.clear(),
                    d if d.is_ascii_digit() && digits.len() < MAX_DIGITS => digits.push(d),
                    _ => {}
                }
                true
            }
            _ => false,
        }
    }

    /// The caller ended the number with `#`: the caller's own number when
    /// they keyed none.
    fn callback_number(
        &mut self,
        now: Instant,
        digits: String,
        callback: &ivr::Callback,
        env: &dyn Environment,
    ) {
        let plan = env.plan();
        let text = if digits.is_empty() {
            self.record.caller.clone()
        } else {
            digits
        };
        let permitted = PhoneNumber::parse(&text, plan.clinic().country())
            .ok()
            .filter(|number| {
                plan.trunk(Trunk::CARRIER)
                    .is_some_and(|trunk| trunk.permits(number))
            });
        let Some(number) = permitted else {
            info!("callback refused: the trunk may not call that number");
            self.callback = None;
            self.journal_callback("refused", now);
            let path = callback.prompts().refused.path().to_path_buf();
            self.play_callback(&path, false);
            return;
        };
        if self.waiting.is_none() {
            return;
        }
        let number = number.as_str().to_string();
        self.callback = Some(CallbackState::Holding {
            number: number.clone(),
            goodbye: callback.prompts().accepted.path().to_path_buf(),
            drain: false,
        });
        self.router(RouterRequest::HoldPlace { number });
    }

    /// Routing's answer to [`RouterRequest::HoldPlace`]: the place kept
    /// (`Some`), or not, and then the callback becomes a lead.
    pub(crate) fn place_held(&mut self, now: Instant, position: Option<usize>) {
        let Some(CallbackState::Holding {
            number,
            goodbye,
            drain,
        }) = self.callback.take()
        else {
            return;
        };
        let Some(waiting) = self.waiting.as_ref() else {
            return;
        };
        let queue = waiting.queue.clone();
        let waited = now.saturating_duration_since(waiting.since);
        self.journal_callback(if drain { "drain" } else { "accepted" }, now);
        self.callback = Some(CallbackState::Accepted);
        match position {
            Some(position) => {
                info!(queue = %queue, waited_ms = waited.as_millis(), position, "callback accepted: the caller keeps their place");
            }
            None => {
                info!(queue = %queue, waited_ms = waited.as_millis(), "callback accepted: routing could not keep the place, the call becomes a lead");
                // Out of the queue now, so that nothing is offered to this
                // call and its end is no abandonment.
                self.router(RouterRequest::Cancel);
                let mut lead =
                    crate::CallLead::new(records::LeadKind::Callback, &self.record, queue, waited);
                lead.caller = number;
                self.push(crate::Action::Lead(lead));
            }
        }
        self.waiting_ended(now);
        self.hold = None;
        self.farewell(now, &goodbye, Outcome::Overflowed);
    }

    /// Whether the caller accepted a callback (their call's end is then no
    /// abandonment, and routing's news for the call is stale).
    pub(crate) fn callback_accepted(&self) -> bool {
        matches!(
            self.callback,
            Some(CallbackState::Accepted | CallbackState::Holding { .. })
        )
    }

    fn play_callback(&mut self, path: &std::path::Path, barge_in: bool) {
        let id = self.next_playback_id();
        self.hold = Some(Hold::Callback(id));
        self.play(&[path.to_path_buf()], id, PlaybackMode::Once, barge_in);
    }

    pub(crate) fn journal_callback(&mut self, step: &str, now: Instant) {
        let Some(waiting) = self.waiting.as_ref() else {
            return;
        };
        let event = records::CallEvent::Callback {
            step: step.to_string(),
            department: waiting.queue.as_str().to_string(),
            wait_ms: waited_ms(waiting.since, now),
        };
        self.journal(event);
    }
}
