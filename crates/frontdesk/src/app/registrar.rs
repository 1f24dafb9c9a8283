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
//! once per [`SAVE_EVERY`] (and at shutdown), never once per REGISTER: a
//! registration is answered without waiting on the disk, and a crash
//! loses at most that much, which the agents' next refresh puts back.
//!
//! [`Outcome::send_after`]: sip::registrar::Outcome::send_after

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use guard::{SignInLimits, WarnEvery};
use sip::Peer;
use sip::endpoint::EndpointHandle;
use sip::message::Response;
use sip::message::validate::ValidRequest;
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

/// Where each agent can be rung: their live bindings, best first.
///
/// Written by the registrar task, read by calls. A guard never leaves
/// these methods (dashmap: per-shard locks, values cloned out).
#[derive(Debug, Clone, Default)]
pub struct Locations {
    bindings: Arc<DashMap<String, Vec<Binding>>>,
}

impl Locations {
    /// The agent's bindings, best first (empty when not registered).
    pub fn get(&self, agent: &str) -> Vec<Binding> {
        self.bindings
            .get(agent)
            .map(|b| b.value().clone())
            .unwrap_or_default()
    }

    /// `true` when the agent has at least one binding.
    pub fn is_registered(&self, agent: &str) -> bool {
        self.bindings.get(agent).is_some_and(|b| !b.is_empty())
    }

    fn set(&self, agent: &str, bindings: Vec<Binding>) {
        if bindings.is_empty() {
            self.bindings.remove(agent);
        } else {
            self.bindings.insert(agent.to_string(), bindings);
        }
    }
}

#[derive(Debug)]
enum Command {
    Register {
        transaction: ServerTransactionId,
        request: Box<ValidRequest>,
        source: Peer,
    },
    Reconfigure {
        users: Vec<(String, Secret)>,
        trusted: TrustedSources,
        limits: SignInLimits,
    },
}

/// A handle to the registrar task.
#[derive(Debug, Clone)]
pub struct RegistrarHandle {
    commands: mpsc::UnboundedSender<Command>,
    locations: Locations,
}

impl RegistrarHandle {
    /// Hands over a REGISTER.
    pub fn register(
        &self,
        transaction: ServerTransactionId,
        request: Box<ValidRequest>,
        source: Peer,
    ) {
        let _ = self.commands.send(Command::Register {
            transaction,
            request,
            source,
        });
    }

    /// New users, trust and sign-in limits after a dialplan reload.
    pub fn reconfigure(
        &self,
        users: Vec<(String, Secret)>,
        trusted: TrustedSources,
        limits: SignInLimits,
    ) {
        let _ = self.commands.send(Command::Reconfigure {
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
    let (commands, command_rx) = mpsc::unbounded_channel();
    let handle = RegistrarHandle {
        commands,
        locations: locations.clone(),
    };
    let mut service = Service {
        registrar,
        file,
        endpoint,
        router,
        locations,
        held: HeldResponses::default(),
        save_at: None,
        front_door,
        refused_warn: WarnEvery::new(WARN_EVERY),
    };
    // The restore's events: presence and locations before serving.
    service.drain_events(Instant::now());
    let task = tokio::spawn(service.run(command_rx, shutdown));
    Ok((handle, task))
}

struct Service {
    registrar: Registrar,
    file: PathBuf,
    endpoint: EndpointHandle,
    router: RouterHandle,
    locations: Locations,
    held: HeldResponses,
    /// When the changed bindings are due on disk; `None`: nothing to write.
    save_at: Option<Instant>,
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

impl Service {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        shutdown: CancellationToken,
    ) {
        loop {
            let expiry = self.registrar.poll_timeout();
            let deadline = earliest([expiry, self.held.next_due(), self.save_at]);
            let sleep = super::sleep_until(deadline.map(Into::into));
            tokio::select! {
                () = shutdown.cancelled() => break,
                command = commands.recv() => {
                    let Some(command) = command else { break };
                    self.handle(command);
                    // Under load, take what else is queued before the
                    // timers are looked at again (bounded, so that held
                    // responses and expiries are never starved).
                    for _ in 1..BATCH {
                        let Ok(command) = commands.try_recv() else { break };
                        self.handle(command);
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
            if self.save_at.is_some_and(|at| at <= now) {
                self.save_at = None;
                self.save(now).await;
            }
        }
        // Keep what we know for the next start. Held responses are dropped:
        // their transactions time out, as they would for a lost answer.
        self.save(Instant::now()).await;
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Register {
                transaction,
                request,
                source,
            } => {
                let outcome =
                    self.registrar
                        .handle_register(Instant::now(), wall_clock(), &request, source);
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
                // is answered until it ends (this REGISTER's 403 still is).
                if let Some(until) = outcome.banned_until {
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
            Command::Reconfigure {
                users,
                trusted,
                limits,
            } => {
                if let Err(error) = self.registrar.set_users(users) {
                    warn!(%error, "registrar users not updated");
                }
                self.registrar.set_trusted(trusted);
                self.registrar.set_limits(limits.source, limits.account);
            }
        }
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
        let mut arrived = Vec::new();
        let mut bindings = Vec::new();
        while let Some(event) = self.registrar.poll_event() {
            match event {
                RegistrarEvent::Registered { user, first } => {
                    if first {
                        arrived.push(user);
                    }
                }
                RegistrarEvent::Refreshed { .. } => {}
                RegistrarEvent::Unregistered { user, reason } => {
                    info!(agent = %user, ?reason, "agent unregistered");
                    self.router
                        .unregistered(routing::AgentId::new(user.as_str()));
                }
                RegistrarEvent::BindingsChanged { user } => bindings.push(user),
            }
        }
        for user in bindings {
            self.locations.set(&user, self.registrar.bindings(&user));
            changed = true;
        }
        for user in arrived {
            info!(agent = %user, "agent registered");
            self.router.registered(routing::AgentId::new(user.as_str()));
        }
        if changed && self.save_at.is_none() {
            self.save_at = Some(now + SAVE_EVERY);
        }
    }

    /// Writes the bindings to a temporary file and renames it over the old
    /// one, so a crash never leaves half a file.
    async fn save(&self, now: Instant) {
        let stored = self.registrar.export(now, wall_clock());
        let bytes = match serde_json::to_vec_pretty(&stored) {
            Ok(bytes) => bytes,
            Err(error) => {
                warn!(%error, "bindings not saved");
                return;
            }
        };
        let temporary = self.file.with_extension("json.tmp");
        let file = self.file.clone();
        // Owner-only (crate::private), then renamed over the old file.
        let written = tokio::task::spawn_blocking(move || {
            crate::private::write(&temporary, &bytes)?;
            std::fs::rename(&temporary, &file)
        });
        if let Err(error) = written
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())))
        {
            warn!("{}: bindings not saved: {error}", self.file.display());
        }
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
}
