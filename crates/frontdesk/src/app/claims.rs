//! The claim before the ring (issue 24): with `--redis`, no node rings an
//! agent unless it holds that agent's claim in Redis (`cluster::claims`).
//!
//! Choosing stays local: the routing task's [`routing::Router`] picks an
//! agent from its table, a replica of the cluster's view, and marks them
//! `ringing` at once. Only then does the claim cross the network, in a
//! task of its own so that the routing task never waits on Redis: the
//! offer (a queue's, a callback's dial, a click-to-call) is held back
//! until the claim's answer comes back as a command ([`ClaimInput`]).
//!
//! * **Claimed**: the offer goes to the call. The claim is renewed every
//!   third of its lease (`--claim-lease`) while the agent is `ringing`,
//!   `on_call` or `wrap_up` here, and released when they leave those
//!   states.
//! * **Refused** (another node holds them, or our replica's epoch was
//!   behind): the agent is held elsewhere ([`routing::Router::held_elsewhere`])
//!   and the offer is taken back without a miss
//!   ([`routing::OfferFailure::ClaimedElsewhere`]): the caller is offered to
//!   the next agent at once.
//! * **Behind in line** (issue 24's shared queue positions,
//!   `cluster::line`): an offer's claim names its caller and the lines its
//!   agent serves, and Redis refuses it while a caller of another live
//!   node is ahead. The agent is held elsewhere for `--line-yield` (the
//!   node ahead claims them meanwhile), the offer taken back without a
//!   miss; if nobody claimed them by then, the next claim skips the check.
//!   Counted in `frontdesk_claims_behind_total`. This node's waiting
//!   callers reach Redis through the line task ([`Claims::publish_line`]);
//!   positions for announcements count every node's callers.
//! * **Redis unreachable** (a command's timeout, a refused connection):
//!   the offer goes out on the local view (degraded), counted in
//!   `frontdesk_claims_total{result="degraded"}`, and the alert
//!   `cluster_store_down` stands until a claim or a ping succeeds again;
//!   then the agents this node rings or talks to are claimed again (a
//!   conflict, another node having claimed one meanwhile, is logged).
//!
//! One feed task follows every node's changes (`ChangeFeed`): another
//! node's `claimed`/`renewed` holds the agent here, `released`/`expired`
//! gives them back, a resync applies the whole snapshot. A node that dies
//! stops renewing; once a held agent's lease has run out (plus a renew
//! period), this node asks Redis to record the expiry (`reap`), so the
//! stream says `expired` and every node frees the agent: bounded by the
//! lease and one renew period.
//!
//! The claim history is journalled (`records::claims`): one row per
//! holding, `(agent, epoch)`. This node journals its own claims (from the
//! claim's answer, with Redis's time), its releases (from the release's
//! answer) and its own expiries (from the stream), and the end of another
//! node's holding when its own script recorded that expiry (the stream's
//! `by`: it reaped a dead node's claim); with `--journal postgres://…`
//! they are shipped like calls, and `GET /api/reports/claims` checks them
//! for overlaps. Each change this node makes is also logged at info
//! (agent id, node, epoch, lease end: no patient data) and counted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cluster::claims::{
    AgentChange, ChangeFeed, ChangeKind, Claim, ClaimError, ClaimStore, Epoch, FeedEvent, Lease,
    NodeId, RedisMillis, Snapshot, StoreConfig,
};
use cluster::line::{LineCheck, LineCount, LineDiff, LineOp, LineStore};
use ivr::jiff::Timestamp;
use records::{ClaimChange, ClaimEnd};
use routing::{
    AgentId, AgentState, CallId, CallbackDial, LinePlace, Offer, OfferFailure, Router, RoutingError,
};
use tokio::sync::{Mutex, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::journal::CallJournal;

/// Where the claims' answers go: the routing task's commands, behind a
/// function, so that this module does not import the routing task's
/// types (the routing task owns [`Claims`]; an import back would make the
/// two files a cycle). `send` is `false` once the routing task is gone.
#[derive(Clone)]
pub(super) struct Answers(Arc<dyn Fn(ClaimInput) -> bool + Send + Sync>);

impl Answers {
    /// Answers handed to `send`.
    pub(super) fn new(send: impl Fn(ClaimInput) -> bool + Send + Sync + 'static) -> Self {
        Answers(Arc::new(send))
    }

    /// Hands over one answer; `Err` when the routing task is gone.
    fn send(&self, input: ClaimInput) -> Result<(), ()> {
        if (self.0)(input) { Ok(()) } else { Err(()) }
    }
}

/// The alert's kind on `/api/alerts` while Redis cannot be used.
pub const STORE_DOWN: &str = "cluster_store_down";
/// The alert's department.
const CLUSTER: &str = "cluster";

/// `--redis`, `--claim-lease` and `--node-id`, checked.
#[derive(Debug, Clone)]
pub struct ClaimsConfig {
    /// This node's name in claims.
    pub node: NodeId,
    /// Where Redis is, and its timeouts.
    pub store: StoreConfig,
    /// How long a claim holds without renewal (renewed every third).
    pub lease: Lease,
    /// A node is alive while its heartbeat is at most this old
    /// (`--cluster-heartbeat`: three periods and a second).
    pub alive_within: Duration,
    /// `--line-yield`: how long a node whose claim was refused because
    /// another node's caller is ahead in line leaves the agent to that
    /// node before claiming again with the line's check skipped.
    pub line_yield: Duration,
    /// The shared lines as last read (`/api/cluster`).
    pub lines: Arc<LineView>,
}

/// The queues' shared lines counted per node, as the line task last read
/// them (after each full write, every third of `--claim-lease`).
#[derive(Debug, Default)]
pub struct LineView(std::sync::Mutex<Vec<LineCount>>);

/// One queue's shared line in `/api/cluster`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ClusterLineJson {
    /// The queue.
    pub queue: String,
    /// Callers waiting in it, on every node.
    pub waiting: u64,
    /// Callers waiting, per node.
    pub nodes: std::collections::BTreeMap<String, u64>,
}

impl LineView {
    fn set(&self, counts: Vec<LineCount>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = counts;
    }

    /// `/api/cluster`'s `lines`: per queue with anyone waiting, the count
    /// and the count per node.
    pub fn to_json(&self) -> Vec<ClusterLineJson> {
        let counts = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counts
            .iter()
            .filter(|line| !line.nodes.is_empty())
            .map(|line| ClusterLineJson {
                queue: line.queue.clone(),
                waiting: line.nodes.iter().map(|(_, count)| count).sum::<u64>(),
                nodes: line
                    .nodes
                    .iter()
                    .map(|(node, count)| (node.clone(), *count))
                    .collect(),
            })
            .collect()
    }
}

impl ClaimsConfig {
    /// The claims of node `node` on Redis at `url`, leases of `lease`.
    /// `None` when the node's name or the lease is not what claims accept.
    pub fn new(node: &str, url: &str, lease: Duration) -> Option<Self> {
        Some(Self {
            node: NodeId::new(node)?,
            store: StoreConfig::new(url),
            lease: Lease::new(lease)?,
            alive_within: Duration::from_secs(4),
            line_yield: Duration::from_secs(1),
            lines: Arc::default(),
        })
    }

    /// With these liveness and yield times (see the fields).
    pub fn with_line(mut self, alive_within: Duration, line_yield: Duration) -> Self {
        self.alive_within = alive_within;
        self.line_yield = line_yield;
        self
    }

    fn renew_every(&self) -> Duration {
        self.lease.duration() / 3
    }
}

/// What a claim is for: what to do with its answer.
#[derive(Debug)]
pub enum Purpose {
    /// A queue's offer to this call (its journal id, if known).
    Offer(CallId, Option<Arc<str>>),
    /// A callback's dial.
    Dial(CallbackDial),
    /// A click-to-call of the agent.
    Outbound(oneshot::Sender<Result<(), RoutingError>>),
    /// Claimed again after Redis came back.
    Reclaim,
}

/// An answer from Redis, back in the routing task.
#[derive(Debug)]
pub enum ClaimInput {
    /// A claim's answer.
    Claimed {
        /// The agent.
        agent: AgentId,
        /// What it was for.
        purpose: Purpose,
        /// Redis's answer.
        result: Result<Claim, ClaimError>,
    },
    /// A renewal's answer.
    Renewed {
        /// The agent.
        agent: AgentId,
        /// Redis's answer.
        result: Result<Claim, ClaimError>,
    },
    /// Some store command failed or succeeded (release, reap, ping).
    Store(Result<(), String>),
    /// The change feed's news.
    Feed(FeedEvent),
    /// Time to renew, reap and ping.
    Tick,
    /// A yield to a caller of another node ahead in line is over.
    YieldOver {
        /// The agent yielded.
        agent: AgentId,
        /// Their epoch when refused.
        epoch: Epoch,
    },
}

/// What the routing task delivers now that its claims are answered.
#[derive(Debug)]
pub enum Ready {
    /// The offer, with the agents claimed.
    Offer(Offer),
    /// The callback dial.
    Dial(CallbackDial),
}

#[derive(Debug)]
enum Mine {
    /// A claim in flight.
    Claiming,
    /// Held, renewed by the tick.
    Held(Claim),
    /// Rung without a claim while Redis was down: claimed again when it
    /// comes back.
    Degraded,
}

#[derive(Debug)]
struct Other {
    epoch: Epoch,
    /// Past this (the lease and a renew period, local clock), reap.
    reap_at: Instant,
    /// Not claimed by anyone: left to the node whose caller is ahead in
    /// line until [`ClaimInput::YieldOver`].
    yielding: bool,
}

#[derive(Debug)]
struct Pending {
    offer: Offer,
    claimed: Vec<AgentId>,
    waiting: usize,
}

/// The routing task's side of the claims: what this node holds, what the
/// others hold, the offers waiting for their claims.
pub struct Claims {
    config: ClaimsConfig,
    store: Arc<Mutex<Option<ClaimStore>>>,
    answers: Answers,
    journal: Arc<CallJournal>,
    mine: HashMap<AgentId, Mine>,
    others: HashMap<AgentId, Other>,
    /// The last epoch seen per agent (what a claim names).
    epochs: HashMap<AgentId, Epoch>,
    pending: HashMap<CallId, Pending>,
    /// Callback dials whose claim is in flight: their entries stay in the
    /// shared line until Redis grants one (as a pending offer's caller).
    dialing: HashSet<routing::CallbackId>,
    degraded: bool,
    /// Agents yielded once to a caller ahead on another node, whom nobody
    /// claimed meanwhile: the next claim skips the line's check.
    forced: HashSet<AgentId>,
    /// This node's callers waiting in line, as last sent to the line task.
    line: LineDiff,
    /// To the line task (`publish_line`).
    line_writes: tokio::sync::mpsc::UnboundedSender<LineWrite>,
    /// The line task's connection, read for callers' positions.
    line_store: Arc<Mutex<Option<LineStore>>>,
}

impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claims")
            .field("node", &self.config.node)
            .field("held", &self.mine.len())
            .field("others", &self.others.len())
            .field("degraded", &self.degraded)
            .finish_non_exhaustive()
    }
}

impl Claims {
    /// Starts the feed and the renew tick; answers go to `answers`.
    pub(super) fn start(
        config: ClaimsConfig,
        answers: Answers,
        journal: Arc<CallJournal>,
        shutdown: CancellationToken,
    ) -> Self {
        info!(node = %config.node, url = %config.store.url, lease_ms = config.lease.duration().as_millis() as u64, "claims: agents are claimed in redis before they are rung");
        tokio::spawn(follow(
            config.store.clone(),
            answers.clone(),
            shutdown.clone(),
        ));
        let (line_writes, line_rx) = tokio::sync::mpsc::unbounded_channel();
        let line_store = Arc::new(Mutex::new(None));
        tokio::spawn(publish_line(
            config.clone(),
            Arc::clone(&line_store),
            line_rx,
            shutdown.clone(),
        ));
        tokio::spawn(tick(config.renew_every(), answers.clone(), shutdown));
        Self {
            config,
            store: Arc::new(Mutex::new(None)),
            answers,
            journal,
            mine: HashMap::new(),
            others: HashMap::new(),
            epochs: HashMap::new(),
            pending: HashMap::new(),
            dialing: HashSet::new(),
            degraded: false,
            forced: HashSet::new(),
            line: LineDiff::new(),
            line_writes,
            line_store,
        }
    }

    /// `call`'s place among every node's callers: Redis's count of the
    /// callers and callback entries (every node's) ahead in its queue's
    /// shared line; answered on `reply` from a task of its
    /// own (the routing task never waits on Redis). `local` (this node's
    /// own count) is the answer when Redis cannot tell, and the least one:
    /// this node's latest callers may not be written yet.
    pub(super) fn position(
        &self,
        router: &Router,
        now: routing::Millis,
        call: CallId,
        reply: oneshot::Sender<Option<usize>>,
    ) {
        let local = router.position(now, call);
        let Some(place) = router.line_place(call) else {
            let _ = reply.send(local);
            return;
        };
        let slot = Arc::clone(&self.line_store);
        tokio::spawn(async move {
            let store = slot.lock().await.clone();
            let ahead = match store {
                Some(store) => store.ahead(place.queue.as_str(), place.score).await.ok(),
                None => None,
            };
            // This node's callback entries are in the shared line too.
            let cluster = ahead.map(|ahead| usize::try_from(ahead).unwrap_or(usize::MAX) + 1);
            let _ = reply.send(match (local, cluster) {
                (Some(local), Some(cluster)) => Some(local.max(cluster)),
                (local, None) => local,
                (None, cluster) => cluster,
            });
        });
    }

    /// After each turn of the routing task: this node's callers waiting in
    /// line go to Redis (only what changed), and the queues' list when it
    /// changed (start, reload).
    pub(super) fn publish_line(
        &mut self,
        router: &Router,
        now: routing::Millis,
        queues_changed: bool,
    ) {
        if queues_changed {
            let queues = router.queue_ids().iter().map(ToString::to_string).collect();
            let _ = self.line_writes.send(LineWrite::Queues(queues));
        }
        // A caller (or callback entry) whose claims are still in flight
        // stays in the shared line: the claim script takes them out when
        // it grants one, in the same step. Taken out here first, another
        // node's claim could slip in between as if nobody were ahead.
        let places: Vec<_> = router
            .line_places(now)
            .chain(
                self.pending
                    .keys()
                    .filter_map(|call| router.offered_place(*call)),
            )
            .chain(
                self.dialing
                    .iter()
                    .filter_map(|callback| router.callback_place(*callback)),
            )
            .collect();
        let ops = self.line.update(
            places
                .iter()
                .map(|place| (place.entry.member(), place.queue.as_str(), place.score)),
        );
        if !ops.is_empty() {
            let _ = self.line_writes.send(LineWrite::Ops(ops));
        }
    }

    /// An offer `poll_offer` made to the call whose journal id is
    /// `record`: claims its agents; `Some` when it can go to the call now
    /// (every agent already ours, or Redis down).
    pub(super) fn offer(
        &mut self,
        router: &Router,
        offer: Offer,
        record: Option<Arc<str>>,
    ) -> Option<Offer> {
        let mut claimed = Vec::new();
        let mut waiting = 0;
        let place = router.offered_place(offer.call);
        for agent in offer.agents.iter() {
            let line = place
                .as_ref()
                .map(|place| self.line_check(router, agent, place));
            if self.start_claim(agent, line, || Purpose::Offer(offer.call, record.clone())) {
                waiting += 1;
            } else {
                claimed.push(agent.clone());
            }
        }
        if waiting == 0 {
            return Some(offer);
        }
        self.pending.insert(
            offer.call,
            Pending {
                offer,
                claimed,
                waiting,
            },
        );
        None
    }

    /// What a claim of `agent` for the caller or callback at `place` names
    /// so that Redis can refuse it while another node's caller is ahead.
    fn line_check(&self, router: &Router, agent: &AgentId, place: &LinePlace) -> LineCheck {
        LineCheck {
            queue: place.queue.to_string(),
            call: place.entry.member(),
            score: place.score,
            lines: router
                .queues_served_by(agent)
                .iter()
                .map(ToString::to_string)
                .collect(),
            alive_within: self.config.alive_within,
            force: false,
        }
    }

    /// A callback's dial: `Some` when it can go now. Its claim is in line
    /// like an offer's: the entry kept its caller's place (score), so an
    /// agent goes to another node's caller who came earlier first, and a
    /// later one waits behind it (refused `behind`: the entry goes back to
    /// its place without a miss and the node yields, as for an offer).
    pub(super) fn dial(&mut self, router: &Router, dial: CallbackDial) -> Option<CallbackDial> {
        let agent = dial.agent.clone();
        let line = router
            .callback_place(dial.callback)
            .map(|place| self.line_check(router, &agent, &place));
        let callback = dial.callback;
        let mut dial = Some(dial);
        let waiting = self.start_claim(&agent, line, || {
            Purpose::Dial(dial.take().expect("taken once, by this closure"))
        });
        if waiting {
            self.dialing.insert(callback);
            None
        } else {
            dial
        }
    }

    /// A click-to-call the router accepted: answered once claimed.
    ///
    /// Its claim skips the shared line on purpose: the agent chose this
    /// lead and this moment themselves (the agent view's button, the API),
    /// so no waiting caller is passed over by the cluster's order; the
    /// agent is simply not available to the queues until the call ends,
    /// as when they go away. Refusing it while someone waits elsewhere
    /// would make the button fail whenever any queue has a caller.
    pub(super) fn outbound(
        &mut self,
        agent: &AgentId,
        reply: oneshot::Sender<Result<(), RoutingError>>,
    ) {
        let mut reply = Some(reply);
        let waiting = self.start_claim(agent, None, || {
            Purpose::Outbound(reply.take().expect("taken once, by this closure"))
        });
        if !waiting && let Some(reply) = reply {
            let _ = reply.send(Ok(()));
        }
    }

    /// The call went away while its claims were in flight.
    pub(super) fn cancelled(&mut self, call: CallId) {
        self.pending.remove(&call);
    }

    /// An agent's local state changed: a claim of ours is released when
    /// they are no longer ringing, talking or wrapping up here.
    pub(super) fn state_changed(&mut self, agent: &AgentId, to: AgentState) {
        if busy(to) {
            return;
        }
        match self.mine.get(agent) {
            Some(Mine::Held(_)) => {
                if let Some(Mine::Held(claim)) = self.mine.remove(agent) {
                    self.release(claim);
                }
            }
            Some(Mine::Degraded) => {
                self.mine.remove(agent);
            }
            Some(Mine::Claiming) | None => {}
        }
    }

    /// Starts a claim unless this node holds the agent already or Redis is
    /// down; true when an answer will come.
    fn start_claim(
        &mut self,
        agent: &AgentId,
        mut line: Option<LineCheck>,
        purpose: impl FnOnce() -> Purpose,
    ) -> bool {
        match self.mine.get(agent) {
            Some(Mine::Held(_)) => return false,
            Some(Mine::Degraded) if self.degraded => return false,
            _ => {}
        }
        if self.degraded {
            metrics::counter!("frontdesk_claims_total", "result" => "degraded").increment(1);
            self.mine.insert(agent.clone(), Mine::Degraded);
            return false;
        }
        self.mine.insert(agent.clone(), Mine::Claiming);
        if self.forced.remove(agent)
            && let Some(line) = &mut line
        {
            line.force = true;
        }
        let expected = self.epochs.get(agent).copied().unwrap_or(Epoch::ZERO);
        let (store, config, answers) = (
            Arc::clone(&self.store),
            self.config.clone(),
            self.answers.clone(),
        );
        let agent = agent.clone();
        let purpose = purpose();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let result = match connected(&store, &config.store).await {
                Ok(store) => match &line {
                    Some(line) => {
                        store
                            .claim_in_line(&agent, &config.node, expected, config.lease, line)
                            .await
                    }
                    None => {
                        store
                            .claim(&agent, &config.node, expected, config.lease)
                            .await
                    }
                },
                Err(error) => Err(error),
            };
            metrics::histogram!("frontdesk_claim_seconds").record(started.elapsed().as_secs_f64());
            let _ = answers.send(ClaimInput::Claimed {
                agent,
                purpose,
                result,
            });
        });
        true
    }

    /// Releases a claim in Redis; journals the holding's end at the time
    /// Redis released it.
    fn release(&mut self, claim: Claim) {
        info!(agent = %claim.agent, node = %claim.node, epoch = claim.epoch.0, "claim released");
        let journal = self.journal.handle();
        self.spawn_store(move |store| async move {
            let at = store.release(&claim).await?;
            let _ = journal.record_claim(ClaimChange::Ended {
                agent: claim.agent.as_str().to_string(),
                node: claim.node.as_str().to_string(),
                epoch: claim.epoch.0,
                at: redis_time(at),
                how: ClaimEnd::Released,
            });
            Ok(())
        });
    }

    /// Journals a step of a holding (the journal drops and counts it if
    /// its backlog is full; the claim goes on either way).
    fn journal_claim(&self, change: ClaimChange) {
        let _ = self.journal.handle().record_claim(change);
    }

    /// The claim history's ends that the stream tells this node to
    /// journal: its own holding's expiry (recorded by itself, or by a
    /// node of an older build that does not say), and the expiry of
    /// another node's holding that this node's script recorded (it reaped
    /// it, or found it run out when claiming). A release is journalled
    /// from its answer ([`Self::release`]), a claim from its own.
    fn journal_end(&self, change: &AgentChange) {
        if change.kind != ChangeKind::Expired {
            return;
        }
        let me = &self.config.node;
        let how = match &change.by {
            Some(by) if by == me && change.node != *me => ClaimEnd::Reaped {
                by: me.as_str().to_string(),
            },
            Some(by) if by == me => ClaimEnd::Expired,
            None if change.node == *me => ClaimEnd::Expired,
            _ => return,
        };
        self.journal_claim(ClaimChange::Ended {
            agent: change.agent.as_str().to_string(),
            node: change.node.as_str().to_string(),
            epoch: change.epoch.0,
            at: redis_time(change.at),
            how,
        });
    }

    fn spawn_store<F, Fut>(&self, command: F)
    where
        F: FnOnce(ClaimStore) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), ClaimError>> + Send,
    {
        let (store, config, answers) = (
            Arc::clone(&self.store),
            self.config.store.clone(),
            self.answers.clone(),
        );
        tokio::spawn(async move {
            let result = match connected(&store, &config).await {
                Ok(store) => command(store).await,
                Err(error) => Err(error),
            };
            let report = match result {
                Ok(()) => Ok(()),
                Err(ClaimError::Store(error)) => Err(error.to_string()),
                // A release or reap refused: the claim was not ours any more
                // (lapsed, taken): Redis answered, so it is up.
                Err(other) => {
                    warn!(error = %other, "claims: a release or reap was refused");
                    Ok(())
                }
            };
            let _ = answers.send(ClaimInput::Store(report));
        });
    }

    /// An answer from Redis or the feed; what can be delivered now.
    pub(super) fn input(
        &mut self,
        router: &mut Router,
        now: routing::Millis,
        input: ClaimInput,
    ) -> Option<Ready> {
        match input {
            ClaimInput::Claimed {
                agent,
                purpose,
                result,
            } => self.claimed(router, now, agent, purpose, result),
            ClaimInput::Renewed { agent, result } => {
                self.renewed(&agent, result);
                None
            }
            ClaimInput::Store(Ok(())) => {
                self.store_up(router);
                None
            }
            ClaimInput::Store(Err(error)) => {
                self.store_down(&error);
                None
            }
            ClaimInput::Feed(event) => {
                match event {
                    FeedEvent::Changes(changes) => {
                        for change in changes {
                            self.apply(router, now, &change);
                        }
                    }
                    FeedEvent::Resync(snapshot) => self.resync(router, now, &snapshot),
                }
                None
            }
            ClaimInput::Tick => {
                self.tick();
                None
            }
            ClaimInput::YieldOver { agent, epoch } => {
                let over = self
                    .others
                    .get(&agent)
                    .is_some_and(|other| other.yielding && other.epoch == epoch);
                if over {
                    // Nobody claimed them meanwhile: ours to claim again,
                    // with the line's check skipped.
                    self.others.remove(&agent);
                    self.forced.insert(agent.clone());
                    let _ = router.released_elsewhere(now, &agent);
                }
                None
            }
        }
    }

    fn claimed(
        &mut self,
        router: &mut Router,
        now: routing::Millis,
        agent: AgentId,
        purpose: Purpose,
        result: Result<Claim, ClaimError>,
    ) -> Option<Ready> {
        let ok = match result {
            Ok(claim) => {
                self.seen(&agent, claim.epoch);
                metrics::counter!("frontdesk_claims_total", "result" => "claimed").increment(1);
                info!(agent = %agent, node = %claim.node, epoch = claim.epoch.0, until = claim.expires_at.0, "claim claimed");
                self.journal_claim(ClaimChange::Claimed {
                    agent: agent.as_str().to_string(),
                    node: claim.node.as_str().to_string(),
                    epoch: claim.epoch.0,
                    call: match &purpose {
                        Purpose::Offer(_, record) => record.as_deref().map(str::to_string),
                        _ => None,
                    },
                    at: redis_time(claim.at),
                });
                self.store_up(router);
                let ringing_here = router.table().state(&agent).is_some_and(busy);
                if ringing_here {
                    self.mine.insert(agent.clone(), Mine::Held(claim));
                } else {
                    // The offer was withdrawn meanwhile (the caller left).
                    self.mine.remove(&agent);
                    self.release(claim);
                }
                true
            }
            Err(ClaimError::Store(error)) => {
                metrics::counter!("frontdesk_claims_total", "result" => "degraded").increment(1);
                self.store_down(&error.to_string());
                self.mine.insert(agent.clone(), Mine::Degraded);
                true
            }
            Err(refused) => {
                metrics::counter!("frontdesk_claims_total", "result" => "refused").increment(1);
                self.mine.remove(&agent);
                match refused {
                    ClaimError::Taken { by, epoch, .. } => {
                        self.seen(&agent, epoch);
                        if by != self.config.node {
                            info!(agent = %agent, holder = %by, epoch = epoch.0, "claim refused: held elsewhere");
                            self.hold(
                                router,
                                now,
                                &agent,
                                &by,
                                epoch,
                                self.config.lease.duration(),
                            );
                        } else {
                            // Our own release of an earlier claim is still
                            // on its way: the next offer claims again.
                            info!(agent = %agent, epoch = epoch.0, "claim refused: still ours");
                        }
                    }
                    ClaimError::Behind { ahead, epoch } => {
                        info!(agent = %agent, ahead = %ahead, epoch = epoch.0, "claim refused: a caller of another node is ahead in line");
                        metrics::counter!("frontdesk_claims_behind_total").increment(1);
                        self.seen(&agent, epoch);
                        self.yield_to(router, now, &agent, &ahead, epoch);
                    }
                    ClaimError::Stale { epoch } | ClaimError::Lapsed { epoch } => {
                        info!(agent = %agent, epoch = epoch.0, "claim refused: our view was behind");
                        self.seen(&agent, epoch);
                    }
                    ClaimError::Store(_) => {}
                }
                false
            }
        };
        match purpose {
            Purpose::Offer(call, _) => {
                let pending = self.pending.get_mut(&call)?;
                pending.waiting = pending.waiting.saturating_sub(1);
                if ok {
                    pending.claimed.push(agent);
                } else if let Err(error) =
                    router.offer_failed(now, call, &agent, OfferFailure::ClaimedElsewhere)
                {
                    tracing::debug!(%error, "claims: a refused offer's report ignored");
                }
                if pending.waiting > 0 {
                    return None;
                }
                let Pending {
                    mut offer, claimed, ..
                } = self.pending.remove(&call)?;
                if claimed.is_empty() {
                    return None;
                }
                offer.agents = claimed.into();
                Some(Ready::Offer(offer))
            }
            Purpose::Dial(dial) => {
                self.dialing.remove(&dial.callback);
                if ok {
                    return Some(Ready::Dial(dial));
                }
                if let Err(error) = router.callback_agent_failed(
                    now,
                    dial.callback,
                    &agent,
                    OfferFailure::ClaimedElsewhere,
                ) {
                    tracing::debug!(%error, "claims: a refused dial's report ignored");
                }
                None
            }
            Purpose::Outbound(reply) => {
                if ok {
                    let _ = reply.send(Ok(()));
                } else {
                    // Back as they were; the caller hears "not available".
                    let _ = router.outbound_ended(now, &agent, Duration::ZERO);
                    let _ = reply.send(Err(RoutingError::WrongState {
                        agent,
                        state: AgentState::OnCall,
                        action: "be claimed",
                    }));
                }
                None
            }
            Purpose::Reclaim => {
                if !ok {
                    warn!(agent = %agent, "claims: conflict after redis came back: another node claimed an agent this node rang while redis was down");
                }
                None
            }
        }
    }

    fn renewed(&mut self, agent: &AgentId, result: Result<Claim, ClaimError>) {
        match result {
            Ok(claim) => {
                if let Some(Mine::Held(held)) = self.mine.get_mut(agent)
                    && held.epoch == claim.epoch
                {
                    *held = claim;
                }
                self.degraded_cleared();
            }
            Err(ClaimError::Store(error)) => self.store_down(&error.to_string()),
            Err(lost) => {
                warn!(agent = %agent, error = %lost, "claims: a held claim was lost");
                if matches!(self.mine.get(agent), Some(Mine::Held(_))) {
                    self.mine.remove(agent);
                }
            }
        }
    }

    /// Renew what we hold, reap what dead nodes held, ping when down.
    fn tick(&mut self) {
        if self.degraded {
            self.spawn_store(|store| async move { store.ping().await });
            return;
        }
        let held: Vec<Claim> = self
            .mine
            .values()
            .filter_map(|mine| match mine {
                Mine::Held(claim) => Some(claim.clone()),
                _ => None,
            })
            .collect();
        if !held.is_empty() {
            let (store, config, answers) = (
                Arc::clone(&self.store),
                self.config.clone(),
                self.answers.clone(),
            );
            tokio::spawn(async move {
                for claim in held {
                    let result = match connected(&store, &config.store).await {
                        Ok(store) => store.renew(&claim, config.lease).await,
                        Err(error) => Err(error),
                    };
                    let _ = answers.send(ClaimInput::Renewed {
                        agent: claim.agent.clone(),
                        result,
                    });
                }
            });
        }
        let now = Instant::now();
        let due: Vec<AgentId> = self
            .others
            .iter()
            .filter(|(_, other)| !other.yielding && other.reap_at <= now)
            .map(|(agent, _)| agent.clone())
            .collect();
        for agent in due {
            if let Some(other) = self.others.get_mut(&agent) {
                // Once per renew period at most, until the feed frees them.
                other.reap_at = now + self.config.renew_every();
            }
            let reaper = self.config.node.clone();
            self.spawn_store(
                move |store| async move { store.reap(&agent, &reaper).await.map(|_| ()) },
            );
        }
    }

    fn apply(&mut self, router: &mut Router, now: routing::Millis, change: &AgentChange) {
        self.seen(&change.agent, change.epoch);
        self.journal_end(change);
        if change.node == self.config.node {
            if change.kind == ChangeKind::Expired
                && matches!(self.mine.get(&change.agent), Some(Mine::Held(claim)) if claim.epoch == change.epoch)
            {
                warn!(agent = %change.agent, epoch = change.epoch.0, "claims: our claim expired before it was renewed");
                self.mine.remove(&change.agent);
            }
            return;
        }
        match change.kind {
            ChangeKind::Claimed | ChangeKind::Renewed => {
                let left = Duration::from_millis(change.until.0.saturating_sub(change.at.0));
                self.hold(router, now, &change.agent, &change.node, change.epoch, left);
            }
            ChangeKind::Released | ChangeKind::Expired => {
                if self
                    .others
                    .get(&change.agent)
                    .is_some_and(|other| other.epoch <= change.epoch)
                {
                    self.others.remove(&change.agent);
                    let _ = router.released_elsewhere(now, &change.agent);
                }
            }
        }
    }

    fn resync(&mut self, router: &mut Router, now: routing::Millis, snapshot: &Snapshot) {
        let mut held = std::collections::HashSet::new();
        for hold in &snapshot.agents {
            self.seen(&hold.agent, hold.epoch);
            match &hold.holder {
                Some(node) if *node != self.config.node && hold.until.0 > snapshot.now.0 => {
                    let left = Duration::from_millis(hold.until.0 - snapshot.now.0);
                    self.hold(router, now, &hold.agent, node, hold.epoch, left);
                    held.insert(hold.agent.clone());
                }
                _ => {}
            }
        }
        let freed: Vec<AgentId> = self
            .others
            .keys()
            .filter(|agent| !held.contains(*agent))
            .cloned()
            .collect();
        for agent in freed {
            self.others.remove(&agent);
            let _ = router.released_elsewhere(now, &agent);
        }
    }

    fn hold(
        &mut self,
        router: &mut Router,
        now: routing::Millis,
        agent: &AgentId,
        node: &NodeId,
        epoch: Epoch,
        left: Duration,
    ) {
        if router.held_elsewhere(now, agent, node.as_str()).is_err() {
            // Not an agent of this node's dialplan.
            return;
        }
        let reap_at = Instant::now() + left + self.config.renew_every();
        self.forced.remove(agent);
        self.others.insert(
            agent.clone(),
            Other {
                epoch,
                reap_at,
                yielding: false,
            },
        );
    }

    /// Leaves `agent` to the node of `ahead` (a line member) for
    /// `--line-yield`: held elsewhere here, then [`ClaimInput::YieldOver`].
    fn yield_to(
        &mut self,
        router: &mut Router,
        now: routing::Millis,
        agent: &AgentId,
        ahead: &str,
        epoch: Epoch,
    ) {
        let node = cluster::line::parse_member(ahead)
            .map_or_else(|| "?".to_string(), |(node, _)| node.to_string());
        if router.held_elsewhere(now, agent, &node).is_err() {
            return;
        }
        let wait = self.config.line_yield;
        self.others.insert(
            agent.clone(),
            Other {
                epoch,
                reap_at: Instant::now() + wait + self.config.renew_every(),
                yielding: true,
            },
        );
        let (answers, agent) = (self.answers.clone(), agent.clone());
        tokio::spawn(async move {
            // The yield's own timer (a flag, `--line-yield`), not a wait
            // for a condition: its end is an input like any other.
            tokio::time::sleep(wait).await;
            let _ = answers.send(ClaimInput::YieldOver { agent, epoch });
        });
    }

    fn seen(&mut self, agent: &AgentId, epoch: Epoch) {
        let known = self.epochs.entry(agent.clone()).or_insert(Epoch::ZERO);
        if epoch > *known {
            *known = epoch;
        }
    }

    fn store_down(&mut self, error: &str) {
        if !self.degraded {
            self.degraded = true;
            warn!(%error, "claims: redis is unreachable: routing on this node's own view");
            self.journal.set_condition(
                CLUSTER,
                STORE_DOWN,
                Some(format!("redis unreachable: {error}")),
            );
            metrics::gauge!("frontdesk_cluster_store_up").set(0.0);
        }
    }

    fn degraded_cleared(&mut self) -> bool {
        if !self.degraded {
            return false;
        }
        self.degraded = false;
        info!("claims: redis is back");
        self.journal.set_condition(CLUSTER, STORE_DOWN, None);
        metrics::gauge!("frontdesk_cluster_store_up").set(1.0);
        true
    }

    /// Redis answered: after a spell down, claim again the agents rung
    /// meanwhile.
    fn store_up(&mut self, router: &Router) {
        if !self.degraded_cleared() {
            return;
        }
        let rung: Vec<AgentId> = self
            .mine
            .iter()
            .filter(|(_, mine)| matches!(mine, Mine::Degraded))
            .map(|(agent, _)| agent.clone())
            .collect();
        for agent in rung {
            self.mine.remove(&agent);
            if router.table().state(&agent).is_some_and(busy) {
                self.start_claim(&agent, None, || Purpose::Reclaim);
            }
        }
    }
}

/// A time on Redis's clock as the journal takes it (milliseconds since
/// 1970; one past jiff's range, never from a real Redis, is the epoch).
fn redis_time(at: RedisMillis) -> Timestamp {
    i64::try_from(at.0)
        .ok()
        .and_then(|millis| Timestamp::from_millisecond(millis).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Ringing, on a call or wrapping up: a claim is held for these.
fn busy(state: AgentState) -> bool {
    matches!(
        state,
        AgentState::Ringing | AgentState::OnCall | AgentState::WrapUp
    )
}

/// The store, connected on first use (and again after a failed connect).
async fn connected(
    slot: &Mutex<Option<ClaimStore>>,
    config: &StoreConfig,
) -> Result<ClaimStore, ClaimError> {
    let mut slot = slot.lock().await;
    if let Some(store) = slot.as_ref() {
        return Ok(store.clone());
    }
    let store = ClaimStore::connect(config.clone()).await?;
    *slot = Some(store.clone());
    Ok(store)
}

/// The one feed task: the changes of every node, in order.
async fn follow(config: StoreConfig, answers: Answers, shutdown: CancellationToken) {
    let pause = config.connect_timeout;
    loop {
        let opened = tokio::select! {
            () = shutdown.cancelled() => return,
            opened = ChangeFeed::open(config.clone()) => opened,
        };
        let mut feed = match opened {
            Ok((feed, snapshot)) => {
                let _ = answers.send(ClaimInput::Feed(FeedEvent::Resync(snapshot)));
                // Redis answers: an idle node learns it is back.
                let _ = answers.send(ClaimInput::Store(Ok(())));
                feed
            }
            Err(error) => {
                tracing::debug!(%error, "claims feed: redis unreachable");
                // An idle node learns it is down (no claim to fail).
                let _ = answers.send(ClaimInput::Store(Err(error.to_string())));
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return,
                next = feed.next() => next,
            };
            match next {
                Ok(Some(event)) => {
                    if answers.send(ClaimInput::Feed(event)).is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(%error, "claims feed: redis unreachable");
                    let _ = answers.send(ClaimInput::Store(Err(error.to_string())));
                    // Reopened from a snapshot: changes made while it was
                    // down (a restarted Redis starts from nothing) are not
                    // lost on the replica.
                    // A retry pause, not a wait for a condition.
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                    break;
                }
            }
        }
    }
}

/// The renew tick.
async fn tick(every: Duration, answers: Answers, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if answers.send(ClaimInput::Tick).is_err() {
            return;
        }
    }
}

/// A write for the line task.
#[derive(Debug)]
enum LineWrite {
    /// Changes of this node's waiting callers.
    Ops(Vec<LineOp>),
    /// The dialplan's queues (what a full sync covers).
    Queues(Vec<String>),
}

/// The line task: writes this node's waiting callers to Redis in the order
/// the routing task made the changes. It keeps what it was told, so after
/// a failure (Redis down, restarted empty) and every `renew_every` it
/// writes the whole of it again in one script ([`LineStore::sync`]), which
/// also drops the members of nodes whose heartbeat lapsed; the first sync
/// after a start removes what this node's previous run left.
async fn publish_line(
    config: ClaimsConfig,
    slot: Arc<Mutex<Option<LineStore>>>,
    mut writes: tokio::sync::mpsc::UnboundedReceiver<LineWrite>,
    shutdown: CancellationToken,
) {
    let mut desired: BTreeMap<(String, u64), u64> = BTreeMap::new();
    let mut queues: Vec<String> = Vec::new();
    let mut synced = false;
    let mut tick = tokio::time::interval(config.renew_every().max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            () = shutdown.cancelled() => return,
            write = writes.recv() => match write {
                Some(write) => batch.push(write),
                None => return,
            },
            _ = tick.tick() => synced = false,
        }
        while let Ok(write) = writes.try_recv() {
            batch.push(write);
        }
        let mut ops = Vec::new();
        for write in batch {
            match write {
                LineWrite::Queues(list) => {
                    queues = list;
                    synced = false;
                }
                LineWrite::Ops(list) => {
                    for op in &list {
                        match op {
                            LineOp::Add { queue, call, score } => {
                                desired.insert((queue.clone(), *call), *score);
                            }
                            LineOp::Remove { queue, call } => {
                                desired.remove(&(queue.clone(), *call));
                            }
                        }
                    }
                    ops.extend(list);
                }
            }
        }
        let store = match line_connected(&slot, &config).await {
            Ok(store) => store,
            Err(error) => {
                tracing::debug!(%error, "line: redis unreachable");
                synced = false;
                continue;
            }
        };
        let result = if synced {
            store.apply(&ops).await.map(|()| 0)
        } else {
            let mine: Vec<(String, u64, u64)> = desired
                .iter()
                .map(|((queue, call), score)| (queue.clone(), *call, *score))
                .collect();
            store.sync(&queues, &mine, config.alive_within).await
        };
        match result {
            Ok(removed) => {
                if !synced {
                    if removed > 0 {
                        tracing::debug!(
                            removed,
                            "line: members of dead nodes (or of our last run) removed"
                        );
                    }
                    // What /api/cluster shows, read after each full write.
                    if let Ok(counts) = store.counts(&queues).await {
                        config.lines.set(counts);
                    }
                }
                synced = true;
            }
            Err(error) => {
                tracing::debug!(%error, "line: a write failed; the whole line is written again");
                synced = false;
                *slot.lock().await = None;
            }
        }
    }
}

/// The line's store, connected on first use (and again after a failure).
async fn line_connected(
    slot: &Mutex<Option<LineStore>>,
    config: &ClaimsConfig,
) -> Result<LineStore, cluster::claims::StoreError> {
    let mut slot = slot.lock().await;
    if let Some(store) = slot.as_ref() {
        return Ok(store.clone());
    }
    let store = LineStore::connect(config.store.clone(), config.node.clone()).await?;
    *slot = Some(store.clone());
    Ok(store)
}
