//! The registrar service: one task owns the sans-IO
//! [`sip::registrar::Registrar`], answers REGISTERs through the endpoint,
//! keeps the bindings on disk under `--data` (so agents are reachable
//! right after a restart), publishes them in [`Locations`] for the calls
//! to ring, and turns registrations into agent presence for routing.
//!
//! The task waits on three kinds of deadline besides its commands: the
//! registrar's next binding expiry, the responses it holds back from
//! sources that keep failing to authenticate ([`Outcome::send_after`]),
//! and the next write of the bindings file. The file is written at most
//! once per [`SAVE_EVERY`] (and at shutdown), never once per REGISTER, and
//! never waited for: the bytes are made on the task and written and
//! synced on tokio's blocking pool while the task goes on answering (an
//! `fsync` took up to 161 ms here while another process wrote to the same
//! disk, BENCHMARKS.md). A crash loses at most the changes of the last
//! second or so, which the agents' next refresh puts back.
//!
//! REGISTERs reach the task through a bounded queue ([`REGISTER_QUEUE`]):
//! when the task is that far behind, a REGISTER is answered 503 with
//! Retry-After at once rather than queued without bound (memory stays
//! bounded; the phone tries again). Reconfiguration has a queue of its own
//! and is never refused.
//!
//! [`Outcome::send_after`]: sip::registrar::Outcome::send_after

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use guard::{SignInLimits, WarnEvery};
use sip::Peer;
use sip::endpoint::EndpointHandle;
use sip::message::validate::ValidRequest;
use sip::message::{HeaderName, Response, StatusCode};
use sip::registrar::{
    Binding, Decision, Registrar, RegistrarConfig, RegistrarEvent, Secret, StoredBinding,
    TrustedSources,
};
use sip::transaction::ServerTransactionId;
use sip::transport::door::FrontDoor;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::router::RouterHandle;

/// The file the bindings are kept in, under `--data`.
pub const BINDINGS_FILE: &str = "bindings.json";

/// The digest realm agents authenticate in.
pub const REALM: &str = "frontdesk";

/// How long a change of the bindings may wait before it is written.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The most commands handled in a row before the deadlines are checked.
const BATCH: usize = 64;

/// How many REGISTERs may wait for the task; past that, 503. At 20,000
/// REGISTERs a second (more than this box's cores can take) that is
/// 400 ms of backlog, about 8 MB of requests.
pub const REGISTER_QUEUE: usize = 8192;

/// What a REGISTER refused for a full queue is told to wait, in seconds.
pub const BUSY_RETRY_AFTER: u32 = 5;

/// Where each agent can be rung: their live bindings, best first.
///
/// Three writers: the registrar task (the SIP phones' registrations),
/// the browser phone (`crate::browser`: an agent's `/agent` page with
/// "take calls here" on is a device too) and, with `--redis`, the cluster
/// task (`super::cluster`: the phones other nodes registered). Read by
/// calls. An agent is
/// signed in for routing while they have any device: the writer that
/// makes the first appear or the last go tells routing
/// ([`RouterHandle::registered`], [`RouterHandle::unregistered`]), under
/// the agent's entry lock, so the two writers' news reach routing in the
/// order the devices changed. A guard never leaves these methods
/// (dashmap: per-shard locks, values cloned out).
#[derive(Debug, Clone, Default)]
pub struct Locations {
    bindings: Arc<DashMap<String, Devices>>,
    /// With `--redis`: told the agent whose SIP phones changed here, so
    /// the cluster task shares them.
    sip_changed: Arc<OnceLock<mpsc::UnboundedSender<String>>>,
}

/// One agent's devices.
#[derive(Debug, Clone, Default)]
struct Devices {
    /// SIP phones, best first.
    sip: Vec<Binding>,
    /// The browser phone, while the page's phone is on.
    browser: Option<Binding>,
    /// SIP phones registered through other nodes of the cluster, by node
    /// (never empty lists).
    remote: BTreeMap<String, Vec<Binding>>,
}

impl Devices {
    fn is_empty(&self) -> bool {
        self.sip.is_empty() && self.browser.is_none() && self.remote.is_empty()
    }
}

impl Locations {
    /// The agent's bindings, best first: SIP phones registered here, then
    /// those registered through other nodes, then the browser (empty when
    /// not signed in anywhere).
    pub fn get(&self, agent: &str) -> Vec<Binding> {
        self.bindings
            .get(agent)
            .map(|devices| {
                let mut all = devices.sip.clone();
                all.extend(devices.remote.values().flatten().cloned());
                all.extend(devices.browser.clone());
                all
            })
            .unwrap_or_default()
    }

    /// The agent's SIP phones registered through this node.
    pub fn sip(&self, agent: &str) -> Vec<Binding> {
        self.bindings
            .get(agent)
            .map(|devices| devices.sip.clone())
            .unwrap_or_default()
    }

    /// Every agent with a SIP phone registered through this node.
    pub fn sip_agents(&self) -> Vec<String> {
        self.bindings
            .iter()
            .filter(|entry| !entry.sip.is_empty())
            .map(|entry| entry.key().clone())
            .collect()
    }

    /// Every (agent, node) with phones registered through another node.
    pub fn remote_nodes(&self) -> Vec<(String, String)> {
        self.bindings
            .iter()
            .flat_map(|entry| {
                let agent = entry.key().clone();
                entry
                    .remote
                    .keys()
                    .map(|node| (agent.clone(), node.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// From now on, `agent`'s name goes to `changes` whenever this node's
    /// registrar changes their SIP phones (the cluster task). Once.
    pub fn share_sip_changes(&self, changes: mpsc::UnboundedSender<String>) {
        let _ = self.sip_changed.set(changes);
    }

    /// `true` when the agent has at least one device.
    pub fn is_registered(&self, agent: &str) -> bool {
        self.bindings.get(agent).is_some_and(|d| !d.is_empty())
    }

    /// The kinds of device the agent has now: `sip`, `remote` (through
    /// another node), `browser`.
    pub fn devices(&self, agent: &str) -> Vec<&'static str> {
        let Some(devices) = self.bindings.get(agent) else {
            return Vec::new();
        };
        let mut kinds = Vec::with_capacity(3);
        if !devices.sip.is_empty() {
            kinds.push("sip");
        }
        if !devices.remote.is_empty() {
            kinds.push("remote");
        }
        if devices.browser.is_some() {
            kinds.push("browser");
        }
        kinds
    }

    /// The registrar's news: `agent`'s SIP phones are now `bindings`.
    fn set_sip(&self, agent: &str, bindings: Vec<Binding>, router: &RouterHandle) {
        self.update(agent, router, |devices| devices.sip = bindings);
        if let Some(changes) = self.sip_changed.get() {
            let _ = changes.send(agent.to_string());
        }
    }

    /// The cluster's news: `node` holds `bindings` of `agent` (empty: none).
    pub fn set_remote(
        &self,
        agent: &str,
        node: &str,
        bindings: Vec<Binding>,
        router: &RouterHandle,
    ) {
        if bindings.is_empty()
            && !self
                .bindings
                .get(agent)
                .is_some_and(|d| d.remote.contains_key(node))
        {
            return; // nothing to remove; no entry made
        }
        self.update(agent, router, |devices| {
            if bindings.is_empty() {
                devices.remote.remove(node);
            } else {
                devices.remote.insert(node.to_string(), bindings);
            }
        });
    }

    /// Drops the other nodes' bindings whose time ran out at `now`, even
    /// if no note came (a dead node's agents): every agent's, bounded by
    /// the number of agents.
    pub fn expire_remote(&self, now: Instant, router: &RouterHandle) {
        let due: Vec<String> = self
            .bindings
            .iter()
            .filter(|entry| {
                entry
                    .remote
                    .values()
                    .flatten()
                    .any(|binding| binding.expires_at <= now)
            })
            .map(|entry| entry.key().clone())
            .collect();
        for agent in due {
            self.update(&agent, router, |devices| {
                for bindings in devices.remote.values_mut() {
                    bindings.retain(|binding| binding.expires_at > now);
                }
                devices.remote.retain(|_, bindings| !bindings.is_empty());
            });
        }
    }

    /// The browser phone of `agent` is on (`Some`) or off.
    pub fn set_browser(&self, agent: &str, binding: Option<Binding>, router: &RouterHandle) {
        self.update(agent, router, |devices| devices.browser = binding);
    }

    /// Changes `agent`'s devices; tells routing when the first appeared or
    /// the last went, under the entry's lock (see the type's docs).
    fn update(&self, agent: &str, router: &RouterHandle, change: impl FnOnce(&mut Devices)) {
        let mut entry = self.bindings.entry(agent.to_string()).or_default();
        let before = !entry.is_empty();
        change(&mut entry);
        let after = !entry.is_empty();
        let id = routing::AgentId::new(agent);
        match (before, after) {
            (false, true) => {
                info!(agent, "agent signed in");
                router.registered(id);
            }
            (true, false) => {
                info!(agent, "agent signed out");
                router.unregistered(id);
            }
            _ => {}
        }
        let empty = entry.is_empty();
        drop(entry);
        if empty {
            self.bindings
                .remove_if(agent, |_, devices| devices.is_empty());
        }
    }
}

#[derive(Debug)]
struct Register {
    transaction: ServerTransactionId,
    request: Box<ValidRequest>,
    source: Peer,
    /// The phone behind a trusted proxy (`App::client_of`).
    client: Option<std::net::SocketAddr>,
}

#[derive(Debug)]
struct Reconfigure {
    users: Vec<(String, Secret)>,
    trusted: TrustedSources,
    limits: SignInLimits,
}

/// A handle to the registrar task.
#[derive(Debug, Clone)]
pub struct RegistrarHandle {
    registers: mpsc::Sender<Register>,
    control: mpsc::UnboundedSender<Reconfigure>,
    locations: Locations,
    /// Answers the REGISTERs the queue has no room for.
    endpoint: EndpointHandle,
    busy: Arc<std::sync::Mutex<WarnEvery>>,
}

impl RegistrarHandle {
    /// Hands over a REGISTER; when the registrar's queue is full, answers
    /// it 503 with Retry-After instead. `client`: the phone's address when
    /// `source` is a trusted proxy that named it.
    pub fn register(
        &self,
        transaction: ServerTransactionId,
        request: Box<ValidRequest>,
        source: Peer,
        client: Option<std::net::SocketAddr>,
    ) {
        let refused = match self.registers.try_send(Register {
            transaction,
            request,
            source,
            client,
        }) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(refused)) => refused,
            // Shutting down: the transaction times out.
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        };
        metrics::counter!("frontdesk_register_busy_total").increment(1);
        let warn = self
            .busy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .hit(Instant::now());
        if let Some(count) = warn {
            warn!(
                refused = count,
                "registrar busy: REGISTER refused with 503 ({count} since the last such warning)"
            );
        }
        let _ = self
            .endpoint
            .respond(refused.transaction, busy(&refused.request));
    }

    /// New users, trust and sign-in limits after a dialplan reload.
    pub fn reconfigure(
        &self,
        users: Vec<(String, Secret)>,
        trusted: TrustedSources,
        limits: SignInLimits,
    ) {
        let _ = self.control.send(Reconfigure {
            users,
            trusted,
            limits,
        });
    }

    /// Where agents can be rung.
    pub fn locations(&self) -> &Locations {
        &self.locations
    }
}

/// The answer to a REGISTER the registrar has no room for.
fn busy(request: &ValidRequest) -> Response {
    let mut response = Response::to_request(
        &request.request.headers,
        StatusCode::SERVICE_UNAVAILABLE,
        Some(&super::tag()),
    );
    response
        .headers
        .push(HeaderName::RetryAfter, BUSY_RETRY_AFTER);
    response
}

fn wall_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Starts the registrar task: restores the bindings kept in `data`, then
/// serves REGISTERs until `shutdown`.
#[allow(clippy::too_many_arguments)] // the task's inputs, each from a different owner
pub async fn start(
    users: Vec<(String, Secret)>,
    trusted: TrustedSources,
    limits: SignInLimits,
    front_door: Arc<FrontDoor>,
    algorithms: Vec<sip::digest::Algorithm>,
    data: &Path,
    endpoint: EndpointHandle,
    router: RouterHandle,
    shutdown: CancellationToken,
) -> anyhow::Result<(RegistrarHandle, tokio::task::JoinHandle<()>)> {
    let mut config = RegistrarConfig::new(REALM);
    // The challenges offered, in order (`--digest-algorithms`). The default
    // is MD5 alone: baresip 1.0 (libre 1.1, Debian 12's baresip-core) gives
    // up on a 401 that also offers SHA-256 ("Register: Function not
    // implemented": it rejects the whole challenge list when one algorithm
    // is not MD5), so offering both locks such phones out
    // (crates/frontdesk/tests/baresip.rs signs one in).
    config.algorithms = algorithms;
    config.trusted = trusted;
    config.limits = limits.source;
    config.lockout = limits.account;
    let now = Instant::now();
    let mut registrar = Registrar::new(config, users, &mut rand::rng(), now)?;
    let file = data.join(BINDINGS_FILE);
    match tokio::fs::read(&file).await {
        Ok(bytes) => match serde_json::from_slice::<Vec<StoredBinding>>(&bytes) {
            Ok(stored) => {
                let summary = registrar.restore(now, wall_clock(), stored);
                info!(
                    restored = summary.restored,
                    expired = summary.expired,
                    refused = summary.refused,
                    "agent bindings restored from {}",
                    file.display()
                );
            }
            Err(error) => warn!(
                "{}: unreadable bindings, starting without them: {error}",
                file.display()
            ),
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => warn!("{}: cannot read bindings: {error}", file.display()),
    }
    let locations = Locations::default();
    let (registers, register_rx) = mpsc::channel(REGISTER_QUEUE);
    let (control, control_rx) = mpsc::unbounded_channel();
    let handle = RegistrarHandle {
        registers,
        control,
        locations: locations.clone(),
        endpoint: endpoint.clone(),
        busy: Arc::new(std::sync::Mutex::new(WarnEvery::new(WARN_EVERY))),
    };
    let mut service = Service {
        registrar,
        file,
        endpoint,
        router,
        locations,
        held: HeldResponses::default(),
        saves: SaveSchedule::default(),
        front_door,
        refused_warn: WarnEvery::new(WARN_EVERY),
    };
    // The restore's events: presence and locations before serving.
    service.drain_events(Instant::now());
    let task = tokio::spawn(service.run(register_rx, control_rx, shutdown));
    Ok((handle, task))
}

struct Service {
    registrar: Registrar,
    file: PathBuf,
    endpoint: EndpointHandle,
    router: RouterHandle,
    locations: Locations,
    held: HeldResponses,
    /// When the changed bindings are due on disk, and whether a write is
    /// under way.
    saves: SaveSchedule,
    /// Where a digest ban becomes a ban of all the source's SIP.
    front_door: Arc<FrontDoor>,
    /// Refused REGISTERs are warned about at most this often.
    refused_warn: WarnEvery,
}

/// How often, at most, refused REGISTERs are logged at warn.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Responses held back from sources that keep failing, earliest first.
/// Their server transactions stay open meanwhile and absorb the
/// retransmitted requests.
type HeldResponses = Held<(ServerTransactionId, Response)>;

/// Items due at instants, popped in order of due time, then of arrival.
#[derive(Debug)]
struct Held<T> {
    queue: BinaryHeap<Reverse<Due<T>>>,
    sequence: u64,
}

impl<T> Default for Held<T> {
    fn default() -> Self {
        Self {
            queue: BinaryHeap::new(),
            sequence: 0,
        }
    }
}

#[derive(Debug)]
struct Due<T> {
    at: Instant,
    sequence: u64,
    item: T,
}

impl<T> PartialEq for Due<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.sequence) == (other.at, other.sequence)
    }
}

impl<T> Eq for Due<T> {}

impl<T> PartialOrd for Due<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Due<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.sequence).cmp(&(other.at, other.sequence))
    }
}

impl<T> Held<T> {
    fn push(&mut self, at: Instant, item: T) {
        self.sequence += 1;
        self.queue.push(Reverse(Due {
            at,
            sequence: self.sequence,
            item,
        }));
    }

    fn next_due(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(due)| due.at)
    }

    /// The next item due at `now`, if any.
    fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.next_due()? > now {
            return None;
        }
        self.queue.pop().map(|Reverse(due)| due.item)
    }
}

/// The earliest of the deadlines that are set.
fn earliest(deadlines: impl IntoIterator<Item = Option<Instant>>) -> Option<Instant> {
    deadlines.into_iter().flatten().min()
}

/// When the bindings file is written: at most once per [`SAVE_EVERY`]
/// after a change, and one write at a time (a change made while a write is
/// under way is written by the next one).
#[derive(Debug, Default)]
struct SaveSchedule {
    /// When the changed bindings are due on disk; `None`: nothing to write.
    due: Option<Instant>,
    /// A write is under way.
    writing: bool,
}

impl SaveSchedule {
    /// The bindings changed at `now`.
    fn changed(&mut self, now: Instant) {
        if self.due.is_none() {
            self.due = Some(now + SAVE_EVERY);
        }
    }

    /// When the task must wake for the next write: not while one is under
    /// way (its end wakes the task).
    fn deadline(&self) -> Option<Instant> {
        if self.writing { None } else { self.due }
    }

    /// `true` when a write is to start now; it is then under way.
    fn start_due(&mut self, now: Instant) -> bool {
        if self.writing || self.due.is_none_or(|due| due > now) {
            return false;
        }
        self.due = None;
        self.writing = true;
        true
    }

    /// The write under way has ended (written or not).
    fn finished(&mut self) {
        self.writing = false;
    }
}

/// A write of the bindings file on tokio's blocking pool.
type Write = tokio::task::JoinHandle<std::io::Result<()>>;

/// The end of `write`: its result, a panic or cancellation as an error.
async fn finish(write: Write) -> std::io::Result<()> {
    write
        .await
        .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())))
}

/// Waits for the write under way, or forever when there is none.
async fn write_ended(writing: &mut Option<Write>) -> std::io::Result<()> {
    match writing {
        Some(write) => write
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string()))),
        None => std::future::pending().await,
    }
}

impl Service {
    async fn run(
        mut self,
        mut registers: mpsc::Receiver<Register>,
        mut control: mpsc::UnboundedReceiver<Reconfigure>,
        shutdown: CancellationToken,
    ) {
        let mut writing = None;
        loop {
            let expiry = self.registrar.poll_timeout();
            let deadline = earliest([expiry, self.held.next_due(), self.saves.deadline()]);
            let sleep = super::sleep_until(deadline.map(Into::into));
            tokio::select! {
                () = shutdown.cancelled() => break,
                register = registers.recv() => {
                    let Some(register) = register else { break };
                    self.handle_register(register);
                    // Under load, take what else is queued before the
                    // timers are looked at again (bounded, so that held
                    // responses and expiries are never starved).
                    for _ in 1..BATCH {
                        let Ok(register) = registers.try_recv() else { break };
                        self.handle_register(register);
                    }
                }
                reconfigure = control.recv() => {
                    let Some(reconfigure) = reconfigure else { break };
                    self.reconfigure(reconfigure);
                }
                written = write_ended(&mut writing) => {
                    writing = None;
                    self.saves.finished();
                    if let Err(error) = written {
                        warn!("{}: bindings not saved: {error}", self.file.display());
                    }
                }
                () = sleep => {
                    let now = Instant::now();
                    if expiry.is_some_and(|at| at <= now) {
                        self.registrar.handle_timeout(now);
                    }
                    while let Some((transaction, response)) = self.held.pop_due(now) {
                        let _ = self.endpoint.respond(transaction, response);
                    }
                }
            }
            let now = Instant::now();
            self.drain_events(now);
            if self.saves.start_due(now) {
                writing = self.start_save(now);
                if writing.is_none() {
                    self.saves.finished();
                }
            }
        }
        // Keep what we know for the next start: after the write under way,
        // one more with the latest bindings. Held responses are dropped:
        // their transactions time out, as they would for a lost answer.
        let last = async {
            if let Some(write) = writing {
                finish(write).await?;
            }
            match self.start_save(Instant::now()) {
                Some(write) => finish(write).await,
                None => Ok(()),
            }
        };
        if let Err(error) = last.await {
            warn!("{}: bindings not saved: {error}", self.file.display());
        }
    }

    fn handle_register(&mut self, register: Register) {
        let Register {
            transaction,
            request,
            source,
            client,
        } = register;
        let outcome = match client {
            None => self
                .registrar
                .handle_register(Instant::now(), wall_clock(), &request, source),
            Some(client) => self.registrar.handle_proxied_register(
                Instant::now(),
                wall_clock(),
                &request,
                source,
                client,
            ),
        };
        let now = Instant::now();
        let refused = match &outcome.decision {
            Decision::Accepted { user } => {
                debug!(agent = %user, %source, "REGISTER accepted");
                None
            }
            Decision::Forbidden { reason, .. } => {
                metrics::counter!("frontdesk_register_failures_total").increment(1);
                Some(format!("wrong credentials ({reason:?})"))
            }
            Decision::Banned { .. } => {
                metrics::counter!("frontdesk_register_banned_total").increment(1);
                Some("the source is banned for failing too often".to_string())
            }
            Decision::Locked { user, .. } => {
                metrics::counter!("frontdesk_register_locked_total").increment(1);
                Some(format!(
                    "account {user} is locked for this source (too many failures against it)"
                ))
            }
            other => {
                debug!(%source, decision = ?other, "REGISTER");
                None
            }
        };
        if let Some(why) = refused {
            debug!(%source, "REGISTER refused: {why}");
            if let Some(count) = self.refused_warn.hit(now) {
                warn!(%source, refused = count, "REGISTER refused: {why} ({count} refused since the last such warning)");
            }
        }
        // A digest ban is a ban of the source: nothing more from it
        // is answered until it ends (this REGISTER's 403 still is). Not
        // so behind a proxy: banning its address would cut off the whole
        // clinic; the registrar refuses the banned phone's REGISTERs by
        // its own address meanwhile.
        if let Some(until) = outcome.banned_until
            && client.is_none()
        {
            self.front_door.ban(
                now,
                source.address.ip(),
                until,
                "too many failed digest authentications",
            );
        }
        // Bindings and presence are published before the answer
        // leaves: a phone that dials right after its 200 (a feature
        // code) is already known by its registration.
        self.drain_events(Instant::now());
        match outcome.send_after {
            None => {
                let _ = self.endpoint.respond(transaction, outcome.response);
            }
            Some(delay) => {
                let due = Instant::now() + delay;
                self.held.push(due, (transaction, outcome.response));
            }
        }
    }

    fn reconfigure(&mut self, reconfigure: Reconfigure) {
        let Reconfigure {
            users,
            trusted,
            limits,
        } = reconfigure;
        if let Err(error) = self.registrar.set_users(users) {
            warn!(%error, "registrar users not updated");
        }
        self.registrar.set_trusted(trusted);
        self.registrar.set_limits(limits.source, limits.account);
    }

    /// Presence to routing, bindings to [`Locations`]; a change schedules
    /// a write of the file within [`SAVE_EVERY`].
    ///
    /// Order matters, because routing acts at once: an agent signing in
    /// while patients wait is offered a call the moment routing hears of
    /// them, and the call looks their phone up in [`Locations`]. So an agent
    /// leaving is told to routing before their bindings go, and an agent
    /// arriving after their bindings are in place.
    fn drain_events(&mut self, now: Instant) {
        let mut changed = false;
        let mut bindings = Vec::new();
        while let Some(event) = self.registrar.poll_event() {
            match event {
                RegistrarEvent::Registered { user, first } => {
                    if first {
                        info!(agent = %user, "agent registered");
                    }
                }
                RegistrarEvent::Refreshed { .. } => {}
                RegistrarEvent::Unregistered { user, reason } => {
                    info!(agent = %user, ?reason, "agent unregistered");
                }
                RegistrarEvent::BindingsChanged { user } => bindings.push(user),
            }
        }
        // Routing hears of an agent's first device or last going from
        // `Locations`, after the bindings are in place.
        for user in bindings {
            self.locations
                .set_sip(&user, self.registrar.bindings(&user), &self.router);
            changed = true;
        }
        if changed {
            self.saves.changed(now);
        }
    }

    /// Starts writing the bindings to a temporary file, renamed over the
    /// old one so a crash never leaves half a file; `None` when there is
    /// nothing to write (they cannot be encoded). The bytes are made here,
    /// from the registrar as it is now; the write and its `fsync` run on
    /// the blocking pool, and nothing waits for them but the next write.
    fn start_save(&self, now: Instant) -> Option<Write> {
        let stored = self.registrar.export(now, wall_clock());
        let bytes = match serde_json::to_vec_pretty(&stored) {
            Ok(bytes) => bytes,
            Err(error) => {
                warn!(%error, "bindings not saved");
                return None;
            }
        };
        let temporary = self.file.with_extension("json.tmp");
        let file = self.file.clone();
        // Owner-only (crate::private), then renamed over the old file.
        Some(tokio::task::spawn_blocking(move || {
            crate::private::write(&temporary, &bytes)?;
            std::fs::rename(&temporary, &file)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_items_come_out_when_due_in_order_of_due_time_then_arrival() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut held = Held::default();
        assert_eq!(held.next_due(), None);
        held.push(at(500), "b");
        held.push(at(100), "a");
        held.push(at(500), "c");
        held.push(at(8000), "d");
        assert_eq!(held.next_due(), Some(at(100)));
        assert_eq!(held.pop_due(at(99)), None);
        assert_eq!(held.pop_due(at(100)), Some("a"));
        assert_eq!(held.pop_due(at(499)), None);
        assert_eq!(held.pop_due(at(600)), Some("b"));
        assert_eq!(held.pop_due(at(600)), Some("c"));
        assert_eq!(held.pop_due(at(600)), None);
        assert_eq!(held.next_due(), Some(at(8000)));
        assert_eq!(held.pop_due(at(9000)), Some("d"));
        assert_eq!(held.next_due(), None);
    }

    #[test]
    fn the_earliest_deadline_ignores_unset_ones() {
        let now = Instant::now();
        let later = now + SAVE_EVERY;
        assert_eq!(earliest([None, None]), None);
        assert_eq!(earliest([None, Some(later), Some(now)]), Some(now));
    }

    #[test]
    fn the_bindings_are_written_a_second_after_a_change_one_write_at_a_time() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut saves = SaveSchedule::default();
        assert_eq!(saves.deadline(), None);
        assert!(!saves.start_due(at(5000)), "nothing changed");

        saves.changed(at(0));
        saves.changed(at(400));
        assert_eq!(
            saves.deadline(),
            Some(at(0) + SAVE_EVERY),
            "not pushed back"
        );
        assert!(!saves.start_due(at(999)));
        assert!(saves.start_due(at(1000)));
        assert_eq!(saves.deadline(), None, "nothing due");

        // A change while the write is under way: the next write, after it.
        saves.changed(at(1200));
        assert_eq!(saves.deadline(), None, "the write's end wakes the task");
        assert!(!saves.start_due(at(5000)), "one write at a time");
        saves.finished();
        assert_eq!(saves.deadline(), Some(at(1200) + SAVE_EVERY));
        assert!(saves.start_due(at(5000)), "overdue: at once");
        saves.finished();
        assert_eq!(saves.deadline(), None);
        assert!(!saves.start_due(at(9000)));
    }

    /// A REGISTER that finds the registrar's queue full is answered 503
    /// with Retry-After through its own transaction, at once; the one
    /// queued before it waits for the registrar.
    #[tokio::test]
    async fn a_register_past_a_full_queue_gets_503_with_retry_after() {
        use sip::message::Method;
        use sip::transaction::{Event, SentBy, TimerValues};

        let shutdown = CancellationToken::new();
        // UDP and TCP on one free port (another port when TCP's is taken).
        let sockets = crate::app::sockets::SipSockets::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let address = sockets.local;
        let (inbound_tx, inbound_rx) = mpsc::channel(16);
        let transport = sip::transport::start(
            sockets.udp,
            sockets.tcp,
            sip::transport::TransportConfig::default(),
            inbound_tx,
            shutdown.clone(),
        )
        .unwrap();
        let config = sip::endpoint::EndpointConfig {
            transaction: sip::transaction::Config {
                timers: TimerValues::default(),
                sent_by: vec![SentBy {
                    transport: sip::TransportKind::Udp,
                    host: sip::message::Host::V4(std::net::Ipv4Addr::LOCALHOST),
                    port: address.port(),
                }],
                seed: 1,
            },
            allow: vec![Method::Register],
            supported: vec![],
            product: "frontdesk-test".into(),
            admission: None,
        };
        let (application_tx, mut application) = mpsc::channel(16);
        let (endpoint, _task) = sip::endpoint::start(
            config,
            transport,
            inbound_rx,
            application_tx,
            shutdown.clone(),
        );
        // A queue of one that nobody reads.
        let (registers, _queued) = mpsc::channel(1);
        let (control, _control) = mpsc::unbounded_channel();
        let handle = RegistrarHandle {
            registers,
            control,
            locations: Locations::default(),
            endpoint,
            busy: Arc::new(std::sync::Mutex::new(WarnEvery::new(WARN_EVERY))),
        };

        let phone = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let me = phone.local_addr().unwrap();
        let mut buffer = vec![0u8; 65536];
        for branch in ["queued", "refused"] {
            let register = format!(
                "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {me};branch=z9hG4bK{branch};rport\r\n\
                 From: <sip:1001@127.0.0.1>;tag=t-{branch}\r\n\
                 To: <sip:1001@127.0.0.1>\r\n\
                 Call-ID: {branch}@test\r\n\
                 CSeq: 1 REGISTER\r\n\
                 Contact: <sip:1001@{me}>\r\n\
                 Max-Forwards: 70\r\n\
                 Content-Length: 0\r\n\r\n"
            );
            phone.send_to(register.as_bytes(), address).await.unwrap();
            let event = tokio::time::timeout(Duration::from_secs(10), application.recv())
                .await
                .expect("the endpoint hands the REGISTER over")
                .unwrap();
            let Event::Request {
                transaction,
                request,
                source,
            } = event
            else {
                panic!("not a request: {event:?}");
            };
            handle.register(transaction, request, source, None);
        }
        let (length, _) =
            tokio::time::timeout(Duration::from_secs(10), phone.recv_from(&mut buffer))
                .await
                .expect("an answer to the REGISTER past the queue")
                .unwrap();
        let response = String::from_utf8_lossy(&buffer[..length]);
        assert!(
            response.starts_with("SIP/2.0 503 Service Unavailable\r\n"),
            "{response}"
        );
        assert!(response.contains("branch=z9hG4bKrefused"), "{response}");
        assert!(response.contains("\r\nRetry-After: 5\r\n"), "{response}");
        assert!(
            response.contains("\r\nTo: <sip:1001@127.0.0.1>;tag="),
            "{response}"
        );
        shutdown.cancel();
    }
}
