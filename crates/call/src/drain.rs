//! A rolling restart keeps every waiting caller's place (issue 24).
//!
//! SIGTERM drains the node: no new calls, and the calls under way get the
//! grace. While it lasts, callers waiting in a queue are still offered
//! agents in the cluster's order (the routing task runs until the drain
//! ends, and their places stay in the shared line). A while before the
//! calls' part of the grace runs out, the driver calls
//! [`Call::handle_drain`]: each caller still waiting keeps their place as a
//! callback entry, exactly as if they had pressed the callback key and
//! confirmed their own number ([`crate::callback`]): routing moves the
//! call's enqueue time, priority and context to the entry
//! ([`RouterRequest::HoldPlace`]), the daemon journals it (`callbacks`,
//! state `waiting`), the caller hears the queue's `callback-accepted` and
//! the call ends `overflowed`, with the step `callback` `drain` on its
//! timeline. The node's next start gives the entry back to routing in its
//! place, and it is dialed in its turn.
//!
//! A caller whom agents are being rung for is left to that offer: it is
//! answered (the call goes on until the grace runs out), or fails and the
//! caller is back in line, and their place is kept then. When the place
//! cannot be kept as a callback (the queue takes no callbacks, the trunk
//! may not call the caller's number, routing refused), the call becomes a
//! `callback` lead for the desk instead, with the same step and goodbye;
//! and a caller still waiting when the grace runs out (an offer that
//! lasted to the end) becomes one too ([`Call::last_resort_place`]). So no
//! waiting caller leaves the node without their place on the record.

use std::time::Instant;

use ivr::leads::{PhoneNumber, Trunk};
use tracing::info;

use crate::Outcome;
use crate::action::{Action, RouterRequest};
use crate::call::{Call, Environment};
use crate::callback::CallbackState;
use crate::queue::message_path;

/// The goodbye when the queue has no callback prompts of its own.
const GOODBYE: &str = "callback-accepted";

impl Call {
    /// The daemon drains and its grace nears its end: a caller waiting in
    /// a queue keeps their place to be called back (see the module docs);
    /// one who is not waiting yet keeps it as soon as they are.
    pub fn handle_drain(&mut self, now: Instant, env: &dyn Environment) {
        if self.is_finished() {
            return;
        }
        self.draining = true;
        self.keep_place_if_draining(now, env);
    }

    /// After each input while draining: a caller waiting in line, with no
    /// agent ringing for them and no callback under way, keeps their place.
    pub(crate) fn keep_place_if_draining(&mut self, now: Instant, env: &dyn Environment) {
        if !self.draining
            || self.is_finished()
            || self.waiting.is_none()
            || self.callback_accepted()
            || self.hang_up_after.is_some()
            || self.voicemail.is_some()
            || self.legs.offering()
        {
            return;
        }
        let goodbye = self.drain_goodbye(env);
        match self.own_number_to_call_back(env) {
            Some(number) => {
                info!("draining: the waiting caller keeps their place for a callback");
                self.callback = Some(CallbackState::Holding {
                    number: number.clone(),
                    goodbye,
                    drain: true,
                });
                self.router(RouterRequest::HoldPlace { number });
            }
            None => {
                info!("draining: the caller's number cannot be called back; a callback lead");
                self.place_as_lead(now);
                self.hold = None;
                self.farewell(now, &goodbye, Outcome::Overflowed);
            }
        }
    }

    /// The grace is over and the caller still waits (their offer lasted
    /// to the end): a `callback` lead keeps them on the desk's list.
    /// `true` when it did (the call ends `overflowed`).
    pub(crate) fn last_resort_place(&mut self, now: Instant) -> bool {
        if !self.draining || self.waiting.is_none() || self.callback_accepted() {
            return false;
        }
        info!("drain over with the caller still waiting: a callback lead");
        self.place_as_lead(now);
        true
    }

    /// The caller leaves the queue as a `callback` lead for the desk.
    fn place_as_lead(&mut self, now: Instant) {
        let Some(waiting) = self.waiting.as_ref() else {
            return;
        };
        let queue = waiting.queue.clone();
        let waited = now.saturating_duration_since(waiting.since);
        self.journal_callback("drain", now);
        self.callback = Some(CallbackState::Accepted);
        // Out of the queue now, so that nothing is offered to this call.
        self.router(RouterRequest::Cancel);
        let lead = crate::CallLead::new(records::LeadKind::Callback, &self.record, queue, waited);
        self.push(Action::Lead(lead));
        self.waiting_ended(now);
    }

    /// The caller's own number, when the trunk may call it back.
    fn own_number_to_call_back(&self, env: &dyn Environment) -> Option<String> {
        let plan = env.plan();
        let number = PhoneNumber::parse(&self.record.caller, plan.clinic().country()).ok()?;
        plan.trunk(Trunk::CARRIER)
            .is_some_and(|trunk| trunk.permits(&number))
            .then(|| number.as_str().to_string())
    }

    /// The queue's `callback-accepted`, else the plan's prompt of that name.
    fn drain_goodbye(&self, env: &dyn Environment) -> std::path::PathBuf {
        let plan = env.plan();
        self.waiting
            .as_ref()
            .and_then(|waiting| plan.queue(waiting.queue.as_str()))
            .and_then(ivr::Queue::callback)
            .map(|callback| callback.prompts().accepted.path().to_path_buf())
            .unwrap_or_else(|| message_path(&plan, GOODBYE))
    }
}
