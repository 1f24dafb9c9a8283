//! The lead desk's driver (issue 21): one task owns the sans-IO
//! [`routing::LeadDesk`] and selects over its commands, the router's "agents
//! changed" signal and `sleep_until(poll_timeout)`. It decides nothing
//! itself: it turns the desk's events into journal changes
//! ([`records::LeadChange`]), `lead_breach` alerts and the board the agents'
//! pages read ([`Board`]).
//!
//! The desk's clock is the wall clock in Unix milliseconds (see the core's
//! docs): its deadlines are the journal's, so a restart takes them back as
//! they were ([`start`] rebuilds the desk from [`records::Reader::desk_leads`]).
//!
//! The one entry point for a contact made elsewhere (click-to-call, a
//! callback answered) is [`LeadDeskHandle::contacted`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ivr::jiff::Timestamp;
use records::{JournalHandle, LeadChange, LeadId, LeadOutcome, LeadState, Reader};
use routing::{
    Actor, AgentId, AgentTable, DeskError, DeskEvent, LeadDesk, LeadKey, LeadSpec, LeadStatus,
    Millis, Phase, RestoredLead, SkillRequirement,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::LeadAlerts;
use crate::app::LiveDialplan;

/// The most open leads taken back at start.
const MAX_RESTORED: usize = 100_000;

/// One lead on an agent's board: its API JSON (`context`) and where it is
/// on the desk.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardLead {
    /// The lead's JSON as `GET /api/leads/{id}` showed it when it came
    /// (message, source, campaign, intent, branch, related).
    pub context: Arc<Value>,
    /// Its place on the desk.
    pub status: LeadStatus,
}

impl BoardLead {
    /// The context with the desk's current `owner`, `state`, and the
    /// offer's end.
    pub fn to_json(&self) -> Value {
        let mut lead = (*self.context).clone();
        if let Value::Object(fields) = &mut lead {
            fields.insert(
                "owner".into(),
                json!(self.status.phase.agent().map(|a| a.as_str())),
            );
            fields.insert("state".into(), json!(state_of(&self.status).as_str()));
            let (offer_until, snoozed_until) = match &self.status.phase {
                Phase::Offered { until, .. } => (Some(*until), None),
                Phase::Owned { snoozed_until, .. } => (None, *snoozed_until),
                Phase::Waiting => (None, None),
            };
            fields.insert("offer_until".into(), json!(offer_until.map(rfc3339)));
            fields.insert("snoozed_until".into(), json!(snoozed_until.map(rfc3339)));
            fields.remove("history");
        }
        lead
    }
}

/// What the agents' pages read: each agent's leads (offered or owned),
/// oldest first. Published after every change.
#[derive(Debug, Default, Clone)]
pub struct Board {
    /// By agent id.
    pub agents: BTreeMap<String, Vec<BoardLead>>,
    /// Leads waiting for an agent.
    pub waiting: usize,
}

impl Board {
    /// Leads offered to or owned by `agent`.
    pub fn leads_open(&self, agent: &str) -> u32 {
        self.agents
            .get(agent)
            .map_or(0, |leads| u32::try_from(leads.len()).unwrap_or(u32::MAX))
    }

    /// `agent`'s leads as the page shows them.
    pub fn json_of(&self, agent: &str) -> Value {
        let leads: Vec<Value> = self
            .agents
            .get(agent)
            .map(|leads| leads.iter().map(BoardLead::to_json).collect())
            .unwrap_or_default();
        json!({ "leads": leads })
    }
}

/// An action on a lead, as a route asked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadAction {
    /// Accept the offer.
    Accept,
    /// Close with an outcome (`reached` and `booked` are a first contact).
    Outcome(LeadOutcome),
    /// Snooze until then.
    Snooze(Timestamp),
    /// The admin gives it to this agent.
    Assign(AgentId),
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The desk refused it (unknown lead, not yours, wrong state).
    #[error(transparent)]
    Desk(#[from] DeskError),
    /// The desk's task has stopped.
    #[error("the lead desk has stopped")]
    Stopped,
}

#[derive(Debug)]
enum Command {
    Add(Value),
    Act {
        lead: LeadKey,
        by: Actor,
        action: LeadAction,
        reply: oneshot::Sender<Result<LeadStatus, DeskError>>,
    },
    // Sent by `LeadDeskHandle::contacted`, which click-to-call (issue 21
    // part 3, built apart) calls when the patient answers.
    #[cfg_attr(not(test), allow(dead_code))]
    Contacted {
        lead: LeadKey,
        agent: AgentId,
        at: Timestamp,
        reply: oneshot::Sender<Result<(), DeskError>>,
    },
    Session(AgentId, bool),
}

/// The desk's handle. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LeadDeskHandle {
    commands: mpsc::UnboundedSender<Command>,
    board: watch::Receiver<Arc<Board>>,
}

impl LeadDeskHandle {
    /// A new lead, with its API JSON (the intake's read-back).
    pub fn add(&self, lead: Value) {
        let _ = self.commands.send(Command::Add(lead));
    }

    /// An action on `lead` by `by`; answers the lead's place afterwards
    /// (closed: its last place).
    pub async fn act(
        &self,
        lead: &str,
        by: Actor,
        action: LeadAction,
    ) -> Result<LeadStatus, ActionError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Act {
                lead: LeadKey::new(lead),
                by,
                action,
                reply,
            })
            .map_err(|_| ActionError::Stopped)?;
        Ok(answer.await.map_err(|_| ActionError::Stopped)??)
    }

    /// The patient of `lead` was reached by `agent` at `at` (a click-to-call
    /// or callback answered): sets `first_contact_at` (if unset), the state
    /// `contacted`, journals it and stops the `respond_by` timer. A lead
    /// offered to `agent` or waiting becomes theirs; one owned by another
    /// agent is refused ([`DeskError::NotYours`]), a closed or unknown one
    /// too ([`DeskError::UnknownLead`]).
    /// Click-to-call's answered patient comes here ([`DeskContact`]).
    pub async fn contacted(
        &self,
        lead: &str,
        agent: &AgentId,
        at: Timestamp,
    ) -> Result<(), ActionError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Contacted {
                lead: LeadKey::new(lead),
                agent: agent.clone(),
                at,
                reply,
            })
            .map_err(|_| ActionError::Stopped)?;
        Ok(answer.await.map_err(|_| ActionError::Stopped)??)
    }

    /// A live `/agent` event stream opened (`true`) or ended for `agent`.
    pub fn session(&self, agent: &AgentId, open: bool) {
        let _ = self.commands.send(Command::Session(agent.clone(), open));
    }

    /// The board now.
    pub fn board(&self) -> Arc<Board> {
        Arc::clone(&self.board.borrow())
    }

    /// A receiver that wakes on every new board.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Board>> {
        self.board.clone()
    }
}

/// Where the desk's task reaches out.
pub struct DeskServices {
    /// The agents (read only).
    pub table: Arc<AgentTable>,
    /// Bumped by the routing task when agents register, unregister or
    /// change state.
    pub agents_changed: watch::Receiver<u64>,
    /// The dialplan in force (queues' skills, sources' windows, capacities).
    pub dialplan: Arc<LiveDialplan>,
    /// Where changes are journalled.
    pub journal: JournalHandle,
    /// The alerts (`lead_breach`).
    pub alerts: Arc<LeadAlerts>,
}

/// Starts the desk: takes back the open leads of the journal with their
/// owners and deadlines, then runs until `shutdown`.
pub async fn start(
    services: DeskServices,
    reader: Reader,
    shutdown: CancellationToken,
) -> anyhow::Result<LeadDeskHandle> {
    let rows = {
        let reader = reader.clone();
        tokio::task::spawn_blocking(move || {
            let rows = reader.desk_leads(MAX_RESTORED)?;
            let mut restored = Vec::with_capacity(rows.len());
            for row in rows {
                let timeline = records::LeadTimeline {
                    lead: row.lead.clone(),
                    history: Vec::new(),
                };
                let context = super::Leads::lead_json(&reader, &timeline)?;
                restored.push((row, context));
            }
            Ok::<_, records::QueryError>(restored)
        })
        .await??
    };
    let mut desk = LeadDesk::new(Arc::clone(&services.table));
    let plan = services.dialplan.current();
    let now = millis(Timestamp::now());
    for agent in plan.agents() {
        desk.set_capacity(now, agent.id(), agent.lead_capacity());
    }
    let mut contexts = HashMap::new();
    let count = rows.len();
    for (row, context) in rows {
        let Some(spec) = spec_of(&plan, &context) else {
            warn!(lead = %row.lead.id, "an open lead's department is gone from the dialplan: left off the desk");
            continue;
        };
        let id = spec.id.clone();
        let restored = RestoredLead {
            spec,
            owner: row.lead.owner.as_deref().map(AgentId::new),
            offered_until: row.offered_until.map(millis),
            contacted: row.lead.first_contact_at.is_some(),
            escalated: row.escalated,
            snoozed_until: row.lead.snoozed_until.map(millis),
        };
        if let Err(error) = desk.restore(restored) {
            warn!(%error, "an open lead was not taken back");
            continue;
        }
        contexts.insert(id, Arc::new(context));
    }
    if count > 0 {
        info!(
            leads = count,
            "open leads back on the desk with their owners and deadlines"
        );
    }
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (board_tx, board) = watch::channel(Arc::new(Board::default()));
    let mut task = Task {
        desk,
        contexts,
        services,
        board: board_tx,
        outcome: None,
    };
    // Deadlines that passed while the daemon was down are handled at once.
    task.desk.handle_timeout(millis(Timestamp::now()));
    task.drain(Timestamp::now());
    // The owners taken back show at once, events or not.
    task.publish();
    tokio::spawn(task.run(command_rx, shutdown));
    Ok(LeadDeskHandle { commands, board })
}

struct Task {
    desk: LeadDesk,
    contexts: HashMap<LeadKey, Arc<Value>>,
    services: DeskServices,
    board: watch::Sender<Arc<Board>>,
    /// The outcome of the close being handled, for its `closed` change.
    outcome: Option<LeadOutcome>,
}

impl Task {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        shutdown: CancellationToken,
    ) {
        loop {
            let deadline = self.desk.poll_timeout().map(|at| {
                let wait = at
                    .as_millis()
                    .saturating_sub(millis(Timestamp::now()).as_millis());
                tokio::time::Instant::now() + Duration::from_millis(wait)
            });
            tokio::select! {
                () = shutdown.cancelled() => return,
                command = commands.recv() => {
                    let Some(command) = command else { return };
                    self.handle(command);
                }
                changed = self.services.agents_changed.changed() => {
                    if changed.is_err() {
                        // The routing task is gone: shutting down.
                        return;
                    }
                    // A reload bumps it too: capacities as the plan in
                    // force says.
                    let now = millis(Timestamp::now());
                    for agent in self.services.dialplan.current().agents() {
                        self.desk.set_capacity(now, agent.id(), agent.lead_capacity());
                    }
                    self.desk.agents_changed(now);
                }
                () = crate::app::sleep_until(deadline) => {
                    self.desk.handle_timeout(millis(Timestamp::now()));
                }
            }
            self.drain(Timestamp::now());
        }
    }

    fn handle(&mut self, command: Command) {
        let now = Timestamp::now();
        let at = millis(now);
        match command {
            Command::Add(lead) => {
                let plan = self.services.dialplan.current();
                let Some(spec) = spec_of(&plan, &lead) else {
                    warn!("a new lead's department is not in the dialplan: not on the desk");
                    return;
                };
                let id = spec.id.clone();
                self.contexts.insert(id.clone(), Arc::new(lead));
                if let Err(error) = self.desk.add(at, spec) {
                    debug!(%error, "lead not added");
                }
                metrics::gauge!("frontdesk_leads_open").set(self.desk.len() as f64);
            }
            Command::Act {
                lead,
                by,
                action,
                reply,
            } => {
                let result = self.act(at, &lead, &by, action);
                if result.is_ok() {
                    self.drain(now);
                }
                let _ = reply.send(result);
            }
            Command::Contacted {
                lead,
                agent,
                at: when,
                reply,
            } => {
                let result = self.desk.contacted(millis(when), &lead, &agent);
                if result.is_ok() {
                    self.drain(when);
                }
                let _ = reply.send(result);
            }
            Command::Session(agent, open) => {
                if open {
                    self.desk.session_opened(at, &agent);
                } else {
                    self.desk.session_closed(at, &agent);
                }
            }
        }
    }

    fn act(
        &mut self,
        now: Millis,
        lead: &LeadKey,
        by: &Actor,
        action: LeadAction,
    ) -> Result<LeadStatus, DeskError> {
        let before = self
            .desk
            .status(lead)
            .ok_or_else(|| DeskError::UnknownLead(lead.to_string()))?;
        match action {
            LeadAction::Accept => {
                self.desk.accept(now, lead, by)?;
            }
            LeadAction::Assign(agent) => self.desk.assign(now, lead, &agent)?,
            LeadAction::Snooze(until) => {
                let until = millis(until);
                if until <= now {
                    return Err(DeskError::WrongState {
                        lead: lead.to_string(),
                        reason: "snooze until a time in the future",
                    });
                }
                self.desk.snooze(now, lead, by, until)?;
            }
            LeadAction::Outcome(outcome) => {
                let holder = before.phase.agent().cloned();
                if let Actor::Agent(agent) = by
                    && holder.as_ref() != Some(agent)
                {
                    return Err(DeskError::NotYours {
                        lead: lead.to_string(),
                    });
                }
                if matches!(outcome, LeadOutcome::Booked | LeadOutcome::Reached)
                    && let Some(agent) = &holder
                {
                    self.desk.contacted(now, lead, agent)?;
                }
                self.outcome = Some(outcome);
                self.desk.close(now, lead, by)?;
                // The change is written in the drain that follows.
                return Ok(before);
            }
        }
        Ok(self.desk.status(lead).unwrap_or(before))
    }

    /// Journals the desk's events, raises and clears alerts, publishes the
    /// board.
    fn drain(&mut self, now: Timestamp) {
        let mut any = false;
        while let Some(event) = self.desk.poll_event() {
            any = true;
            self.apply(now, event);
        }
        if any {
            self.publish();
        }
    }

    fn apply(&mut self, now: Timestamp, event: DeskEvent) {
        let (lead, event_name, agent, detail) = match &event {
            DeskEvent::Offered { lead, agent, until } => {
                metrics::counter!("frontdesk_lead_offers_total").increment(1);
                (
                    lead,
                    "offered",
                    Some(agent),
                    json!({"until": until.as_millis()}),
                )
            }
            DeskEvent::OfferExpired { lead, agent } => {
                metrics::counter!("frontdesk_lead_offers_expired_total").increment(1);
                (lead, "offer_expired", Some(agent), json!({}))
            }
            DeskEvent::Accepted { lead, agent } => (lead, "accepted", Some(agent), json!({})),
            DeskEvent::Assigned { lead, agent, from } => (
                lead,
                "assigned",
                Some(agent),
                json!({"from": from.as_ref().map(|a| a.as_str())}),
            ),
            DeskEvent::Escalated { lead, from } => {
                metrics::counter!("frontdesk_lead_breaches_total").increment(1);
                let department = self
                    .contexts
                    .get(lead)
                    .and_then(|c| c["department"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let source = self
                    .contexts
                    .get(lead)
                    .and_then(|c| c["source"].as_str().map(str::to_string))
                    .unwrap_or_default();
                self.services.alerts.raise(super::LeadAlert {
                    lead: LeadId::new(lead.as_str()),
                    kind: super::BREACH,
                    department,
                    since: now,
                    detail: format!("lead {lead} from {source}: not contacted within its window"),
                });
                (
                    lead,
                    "escalated",
                    from.as_ref(),
                    json!({"from": from.as_ref().map(|a| a.as_str())}),
                )
            }
            DeskEvent::Contacted { lead, agent } => {
                self.services.alerts.clear(&LeadId::new(lead.as_str()));
                (lead, "contacted", Some(agent), json!({}))
            }
            DeskEvent::Closed { lead, agent } => {
                self.services.alerts.clear(&LeadId::new(lead.as_str()));
                let outcome = self.outcome.take();
                (
                    lead,
                    "closed",
                    agent.as_ref(),
                    json!({"outcome": outcome.map(LeadOutcome::as_str)}),
                )
            }
            DeskEvent::Snoozed { lead, agent, until } => (
                lead,
                "snoozed",
                Some(agent),
                json!({"until": until.as_millis()}),
            ),
            DeskEvent::SnoozeEnded { lead, agent } => {
                (lead, "snooze_ended", Some(agent), json!({}))
            }
        };
        let status = self.desk.status(lead);
        let outcome = match &event {
            DeskEvent::Closed { .. } => detail["outcome"]
                .as_str()
                .and_then(|name| name.parse::<LeadOutcome>().ok()),
            _ => None,
        };
        let change = LeadChange {
            id: LeadId::new(lead.as_str()),
            at: now,
            event: event_name,
            agent: agent.map(|a| a.as_str().to_string()),
            detail,
            owner: match &status {
                Some(status) => status.phase.agent().map(|a| a.as_str().to_string()),
                // Closed: its last owner stays on the record.
                None => agent.map(|a| a.as_str().to_string()),
            },
            state: status.as_ref().map_or(LeadState::Closed, state_of),
            outcome,
            first_contact_at: matches!(event, DeskEvent::Contacted { .. }).then_some(now),
            snoozed_until: status.as_ref().and_then(|status| match status.phase {
                Phase::Owned { snoozed_until, .. } => snoozed_until.map(timestamp),
                _ => None,
            }),
        };
        if status.is_none() {
            self.contexts.remove(lead);
        }
        if let Err(error) = self.services.journal.record_lead(change) {
            warn!(%error, lead = %lead, "a lead's change was not journalled");
        }
    }

    fn publish(&mut self) {
        let mut board = Board {
            agents: BTreeMap::new(),
            waiting: self.desk.waiting(),
        };
        for status in self.desk.statuses() {
            let Some(agent) = status.phase.agent() else {
                continue;
            };
            let Some(context) = self.contexts.get(&status.id) else {
                continue;
            };
            board
                .agents
                .entry(agent.as_str().to_string())
                .or_default()
                .push(BoardLead {
                    context: Arc::clone(context),
                    status,
                });
        }
        for leads in board.agents.values_mut() {
            leads.sort_by(|a, b| {
                (!a.status.urgent, a.status.created_at, &a.status.id).cmp(&(
                    !b.status.urgent,
                    b.status.created_at,
                    &b.status.id,
                ))
            });
        }
        metrics::gauge!("frontdesk_leads_open").set(self.desk.len() as f64);
        metrics::gauge!("frontdesk_leads_waiting").set(board.waiting as f64);
        self.board.send_replace(Arc::new(board));
    }
}

/// The desk's state name of a lead (DESIGN.md's `state`).
pub fn state_of(status: &LeadStatus) -> LeadState {
    match &status.phase {
        Phase::Waiting if status.escalated => LeadState::Escalated,
        Phase::Waiting => LeadState::Waiting,
        Phase::Offered { .. } if status.escalated => LeadState::Escalated,
        Phase::Offered { .. } => LeadState::Offered,
        Phase::Owned { .. } if status.contacted => LeadState::Contacted,
        Phase::Owned { .. } => LeadState::Accepted,
    }
}

/// What the desk needs of a lead, from its API JSON and the dialplan: its
/// department's skills, its source's accept window. `None` when the
/// department is not a queue of `plan`.
fn spec_of(plan: &ivr::Dialplan, lead: &Value) -> Option<LeadSpec> {
    let id = lead["id"].as_str()?;
    let department = lead["department"].as_str()?;
    let queue = plan.queue(department)?;
    let accept_within = lead["source"]
        .as_str()
        .and_then(|source| plan.source(source))
        .map_or(Duration::from_secs(120), |source| source.accept_within());
    let time = |name: &str| {
        lead[name]
            .as_str()
            .and_then(|at| at.parse::<Timestamp>().ok())
            .map(millis)
    };
    Some(LeadSpec {
        id: LeadKey::new(id),
        skills: queue
            .skills()
            .iter()
            .map(|skill| SkillRequirement::new(skill.clone()))
            .collect(),
        department: department.to_string(),
        branch: lead["branch"].as_str().map(routing::Branch::new),
        urgent: lead["emergency"] == true || lead["priority"] == "urgent",
        created_at: time("created_at")?,
        respond_by: time("respond_by")?,
        accept_within,
    })
}

/// The desk's clock: Unix milliseconds.
pub fn millis(at: Timestamp) -> Millis {
    Millis::new(u64::try_from(at.as_millisecond()).unwrap_or(0))
}

fn timestamp(at: Millis) -> Timestamp {
    Timestamp::from_millisecond(i64::try_from(at.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(Timestamp::MAX)
}

fn rfc3339(at: Millis) -> String {
    timestamp(at).to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use records::{Journal, JournalConfig, LeadKind, NewLead, Priority};

    use super::*;

    fn demo() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dialplans/clinic.toml")
    }

    async fn wait_board(
        board: &mut watch::Receiver<Arc<Board>>,
        wanted: impl Fn(&Board) -> bool,
    ) -> Arc<Board> {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let now = Arc::clone(&board.borrow_and_update());
                if wanted(&now) {
                    return now;
                }
                board.changed().await.expect("the desk runs");
            }
        })
        .await
        .expect("the board within 10 s")
    }

    /// The driver: a lead offered through the shared table, marked
    /// contacted through the handle (click-to-call's entry point), on the
    /// record, and back with its owner after a restart.
    #[tokio::test]
    async fn contacted_is_journalled_and_a_restart_keeps_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, handle) =
            Journal::open(dir.path().join("journal.db"), JournalConfig::default()).unwrap();
        let dialplan = Arc::new(LiveDialplan::load(&demo()).await.unwrap());
        let (_, agents) = crate::app::plan_map::routing_config(&dialplan.current());
        let table = Arc::new(AgentTable::new());
        table.replace_all(agents).unwrap();
        let (changed, agents_changed) = watch::channel(0);
        let services = |alerts: &Arc<LeadAlerts>| DeskServices {
            table: Arc::clone(&table),
            agents_changed: agents_changed.clone(),
            dialplan: Arc::clone(&dialplan),
            journal: handle.clone(),
            alerts: Arc::clone(alerts),
        };
        let alerts = Arc::new(LeadAlerts {
            alerts: Mutex::new(BTreeMap::new()),
            webhook: None,
        });
        let stop = CancellationToken::new();
        let reader = journal.reader().unwrap();
        let desk = start(services(&alerts), reader.clone(), stop.child_token())
            .await
            .unwrap();

        let now = Timestamp::now();
        let lead = NewLead {
            id: LeadId::new("l-knee"),
            kind: LeadKind::WebForm,
            created_at: now,
            source: "website".into(),
            campaign: None,
            name: None,
            phone: "+13125550199".into(),
            email: None,
            message: "my knee hurts".into(),
            postal_code: Some("60605".into()),
            consent: json!({"call": true}),
            department: "orthopedics".into(),
            intent: Some("knee".into()),
            emergency: false,
            branch: Some("south".into()),
            priority: Priority::Routine,
            respond_by: now + ivr::jiff::SignedDuration::from_mins(5),
            signature: None,
            idempotency: None,
        };
        let (reply, stored) = oneshot::channel();
        handle
            .store_lead(lead, move |result| {
                let _ = reply.send(result);
            })
            .unwrap();
        stored.await.unwrap().unwrap();
        let timeline = reader.lead("l-knee").unwrap().unwrap();
        desk.add(super::super::Leads::lead_json(&reader, &timeline).unwrap());

        let dan = AgentId::new("1004");
        table.register(&dan, Millis::ZERO).unwrap();
        changed.send_modify(|count| *count += 1);
        let mut board = desk.subscribe();
        wait_board(&mut board, |board| board.leads_open("1004") == 1).await;
        // Someone else's contact is refused; Dan's takes the lead.
        let carol = AgentId::new("1003");
        assert!(matches!(
            desk.contacted("l-knee", &carol, Timestamp::now()).await,
            Err(ActionError::Desk(DeskError::NotYours { .. }))
        ));
        let at = Timestamp::now();
        desk.contacted("l-knee", &dan, at).await.unwrap();
        let shown = wait_board(&mut board, |board| {
            board
                .agents
                .get("1004")
                .is_some_and(|leads| leads[0].status.contacted)
        })
        .await;
        assert_eq!(shown.json_of("1004")["leads"][0]["state"], "contacted");
        let flushing = handle.clone();
        tokio::task::spawn_blocking(move || flushing.flush(Duration::from_secs(5)).unwrap())
            .await
            .unwrap();
        let stored = reader.lead("l-knee").unwrap().unwrap();
        assert_eq!(stored.lead.state, LeadState::Contacted);
        assert_eq!(stored.lead.owner.as_deref(), Some("1004"));
        assert_eq!(
            stored.lead.first_contact_at.map(|t| t.as_millisecond()),
            Some(at.as_millisecond())
        );
        let events: Vec<&str> = stored.history.iter().map(|h| h.event.as_str()).collect();
        assert_eq!(events, ["created", "offered", "accepted", "contacted"]);

        // A second desk on the same journal (a restart) has Dan's lead.
        stop.cancel();
        let again = start(services(&alerts), reader, CancellationToken::new())
            .await
            .unwrap();
        let board = again.board();
        assert_eq!(board.leads_open("1004"), 1);
        assert!(board.agents["1004"][0].status.contacted);
    }
}

/// Click-to-call's [`ContactSink`](crate::calls::originate::ContactSink)
/// for a daemon with a lead desk: the call out's `patient_answered` step
/// goes on the record (it sets `first_contact_at`), and the desk hears
/// that the lead is contacted, so its response timer stops and it is the
/// calling agent's.
#[derive(Debug)]
pub struct DeskContact {
    journal: crate::calls::originate::JournalContact,
    desk: LeadDeskHandle,
}

impl DeskContact {
    /// Writes through `journal`, tells `desk`.
    pub fn new(journal: crate::calls::originate::JournalContact, desk: LeadDeskHandle) -> Self {
        DeskContact { journal, desk }
    }
}

impl crate::calls::originate::ContactSink for DeskContact {
    fn patient_answered(&self, lead: &records::LeadId, agent: &str, at: Timestamp) {
        self.journal.patient_answered(lead, agent, at);
        let desk = self.desk.clone();
        let lead = lead.as_str().to_string();
        let agent = AgentId::new(agent);
        // The call out's task must not wait on the desk.
        tokio::spawn(async move {
            if let Err(error) = desk.contacted(&lead, &agent, at).await {
                // Owned by another agent, or closed meanwhile: the record
                // still has the contact; the desk keeps its owner.
                tracing::info!(%error, "a call out reached its patient; the desk kept the lead as it was");
            }
        });
    }
}
