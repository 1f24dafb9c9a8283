//! This node in a cluster (`--node-id`, `--redis`; issue 24): agents'
//! bindings and states shared through Redis (`cluster::presence`), so an
//! agent registered through any node is rung from every node; reloads
//! announced to every node; each node's heartbeat.
//!
//! One task ([`run`]) owns the Redis side. It hears this node's changes
//! from [`super::registrar::Locations`] (the registrar's SIP bindings),
//! [`super::router::RouterHandle::set_state`] and
//! [`super::dialplan::reload`], writes them with a pub/sub note, and
//! applies the other nodes' notes: their bindings become `remote` devices
//! in `Locations` (routing hears `registered`/`unregistered` when the
//! union changes), their states go to routing without being shared again,
//! their reloads make this node re-read its own file.
//!
//! Pub/sub loses what is sent while a subscriber is away, so the task reads
//! everything (SCAN) after every (re)connection and every
//! `--cluster-resync`; remote bindings also expire here at their own
//! expiry, so a dead node's agents go even if nobody says so.
//!
//! **Redis down**: this node goes on with its own agents (and the remote
//! bindings it has, until they expire), raises `cluster_store_down`, and
//! retries with a doubling backoff; back, it writes its own bindings and
//! the states set here again, then resynchronises.
//!
//! Browser phones stay on their node (the gateway hears only its own
//! daemon) and digest nonces are not shared (Kamailio's dispatcher hashes
//! on Call-ID, so a REGISTER and its authenticated retry reach one node).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ::cluster::claims::{NodeId as StoreNode, StoreConfig};
use ::cluster::presence::{FeedItem, Note, NoteFeed, PresenceStore};
use routing::{AgentId, RequestedState};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sip::registrar::StoredBinding;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::App;
use super::node::NodeId;

/// The alert raised while Redis cannot be used.
pub const STORE_DOWN: &str = "cluster_store_down";
/// The alert raised when another node announced a dialplan whose hash is
/// not this node's file's.
pub const DIALPLAN_MISMATCH: &str = "dialplan_mismatch";

/// The longest serialised bindings of one agent on one node read from
/// Redis: more is refused (a bound on memory; a phone has a handful).
pub const MAX_BINDINGS_JSON: usize = 64 * 1024;

/// The longest a remote binding lives here, whatever it says.
const MAX_REMOTE_SECS: u64 = 24 * 3600;

/// The first and the longest wait between reconnections.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How often remote bindings' expiry is checked.
const EXPIRE_EVERY: Duration = Duration::from_secs(1);

/// `--node-id`, `--redis` and the cluster's periods: built by the daemon,
/// kept in [`App`] (other cluster pieces add their settings here).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This node.
    pub node: NodeId,
    /// `--redis`: `redis://host:port/db`.
    pub redis: String,
    /// The longest wait for a connection and for one command.
    pub timeout: Duration,
    /// `--cluster-resync`: how often everything is read again.
    pub resync_every: Duration,
    /// `--cluster-heartbeat`: how often this node's heartbeat is written
    /// and the others' read; a node is alive while its last heartbeat is
    /// less than three periods (and a second) old.
    pub heartbeat_every: Duration,
}

impl ClusterConfig {
    fn store(&self) -> StoreConfig {
        let mut store = StoreConfig::new(self.redis.clone());
        store.connect_timeout = self.timeout;
        store.command_timeout = self.timeout;
        store
    }

    pub(crate) fn alive_within(&self) -> Duration {
        self.heartbeat_every * 3 + Duration::from_secs(1)
    }
}

/// One node as `/api/cluster` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ClusterNode)]
pub struct NodeView {
    /// Its name.
    pub node: String,
    /// Its SIP address.
    pub sip: String,
    /// When it started, Unix milliseconds.
    pub started: u64,
    /// Its last heartbeat, Unix milliseconds.
    pub last_seen: u64,
    /// Heard from lately (see [`ClusterConfig::heartbeat_every`]).
    #[serde(default)]
    pub alive: bool,
}

/// `GET /api/cluster`'s body.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Cluster)]
pub struct ClusterJson {
    /// This node's `--node-id`.
    pub node: String,
    /// `up` or `down`.
    pub redis: String,
    /// The nodes this one hears.
    pub nodes: Vec<ClusterNodeJson>,
    /// The dialplan in force here, hashed.
    pub dialplan_hash: Option<String>,
    /// Reloads another node asked for.
    pub reloads_from_others: u64,
    /// The shared lines (queues with anyone waiting), as of the last full
    /// rewrite.
    pub lines: Vec<super::claims::ClusterLineJson>,
}

/// One node of `/api/cluster`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClusterNodeJson {
    /// Its name.
    pub node: String,
    /// Its SIP address.
    pub sip: String,
    /// Its last heartbeat, Unix milliseconds.
    pub last_seen: u64,
    /// Heard from lately.
    pub alive: bool,
}

#[derive(Debug, Default)]
struct Status {
    redis_up: bool,
    nodes: Vec<NodeView>,
    dialplan_hash: Option<String>,
    reloads_from_others: u64,
}

/// This node's cluster: its configuration and what `/api/cluster` shows.
#[derive(Debug)]
pub struct Cluster {
    config: ClusterConfig,
    status: Mutex<Status>,
    reloaded: mpsc::UnboundedSender<()>,
    reloads: Mutex<Option<mpsc::UnboundedReceiver<()>>>,
    /// The queues' shared lines (app/claims.rs), for `/api/cluster`.
    lines: Option<Arc<super::claims::LineView>>,
}

impl Cluster {
    /// A cluster not yet running ([`run`] starts it).
    pub fn new(config: ClusterConfig) -> Self {
        let (reloaded, reloads) = mpsc::unbounded_channel();
        Self {
            config,
            status: Mutex::new(Status::default()),
            reloaded,
            reloads: Mutex::new(Some(reloads)),
            lines: None,
        }
    }

    /// Shows the queues' shared lines in `/api/cluster`.
    pub fn with_lines(mut self, lines: Option<Arc<super::claims::LineView>>) -> Self {
        self.lines = lines;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// This node reloaded its dialplan (SIGHUP, the API): every node hears.
    pub fn reloaded(&self) {
        let _ = self.reloaded.send(());
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `GET /api/cluster`.
    pub fn to_json(&self) -> ClusterJson {
        let status = self.status();
        ClusterJson {
            node: self.config.node.as_str().to_string(),
            redis: if status.redis_up { "up" } else { "down" }.to_string(),
            nodes: status
                .nodes
                .iter()
                .map(|n| ClusterNodeJson {
                    node: n.node.clone(),
                    sip: n.sip.clone(),
                    last_seen: n.last_seen,
                    alive: n.alive,
                })
                .collect(),
            dialplan_hash: status.dialplan_hash.clone(),
            reloads_from_others: status.reloads_from_others,
            lines: self
                .lines
                .as_ref()
                .map(|lines| lines.to_json())
                .unwrap_or_default(),
        }
    }

    fn set_redis(&self, app: &App, up: bool, why: Option<String>) {
        self.status().redis_up = up;
        metrics::gauge!("frontdesk_cluster_redis_up").set(if up { 1.0 } else { 0.0 });
        app.journal.set_cluster_alert(
            STORE_DOWN,
            (!up).then(|| why.unwrap_or_else(|| "redis cannot be used".into())),
        );
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// This node's SIP bindings of an agent, as shared.
fn encode_bindings(agent: &str, bindings: &[sip::registrar::Binding]) -> Option<String> {
    let now = Instant::now();
    let wall = unix_ms() / 1000;
    let stored: Vec<StoredBinding> = bindings
        .iter()
        .filter_map(|binding| StoredBinding::from_binding(agent, binding, now, wall))
        .collect();
    if stored.is_empty() {
        return None;
    }
    // Plain data of strings and numbers: encoding cannot fail.
    serde_json::to_string(&stored).ok()
}

/// Another node's bindings of an agent, read from Redis (outside input):
/// the live ones that parse; anything else is dropped.
pub fn decode_bindings(json: &str, now: Instant, wall: u64) -> Vec<sip::registrar::Binding> {
    if json.len() > MAX_BINDINGS_JSON {
        return Vec::new();
    }
    let Ok(stored) = serde_json::from_str::<Vec<StoredBinding>>(json) else {
        return Vec::new();
    };
    stored
        .iter()
        .take(64)
        .filter_map(|stored| stored.to_binding(now, wall, MAX_REMOTE_SECS))
        .collect()
}

/// SHA-256 of the dialplan file, lower-case hex.
async fn dialplan_hash(app: &App) -> Option<String> {
    let bytes = tokio::fs::read(app.dialplan.path()).await.ok()?;
    let digest = Sha256::digest(&bytes);
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

fn state_name(state: RequestedState) -> &'static str {
    match state {
        RequestedState::Available => "available",
        RequestedState::Away => "away",
    }
}

/// The cluster task (with `--redis`): until `shutdown`.
pub async fn run(
    app: Arc<App>,
    cluster: Arc<Cluster>,
    sip: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let node = StoreNode::new(cluster.config.node.as_str())
        .ok_or_else(|| anyhow::anyhow!("node id not usable in Redis"))?;
    let (sip_tx, sip_rx) = mpsc::unbounded_channel();
    app.registrar.locations().share_sip_changes(sip_tx);
    let (state_tx, state_rx) = mpsc::unbounded_channel();
    app.router.share_states(state_tx);
    let reloads = cluster
        .reloads
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .ok_or_else(|| anyhow::anyhow!("the cluster task runs once"))?;
    cluster.status().dialplan_hash = dialplan_hash(&app).await;
    let mut task = Task {
        app,
        cluster,
        node,
        sip,
        started: unix_ms(),
        sip_rx,
        state_rx,
        reloads,
        my_states: BTreeMap::new(),
        seen_states: HashMap::new(),
    };
    task.cluster
        .set_redis(&task.app, false, Some("connecting".into()));
    let mut backoff = BACKOFF_MIN;
    loop {
        let why = match task.connect().await {
            Ok((store, feed)) => {
                backoff = BACKOFF_MIN;
                match task.serve(&store, feed, &shutdown).await {
                    Ok(()) => return Ok(()), // shutdown
                    Err(why) => why,
                }
            }
            Err(why) => why,
        };
        warn!(%why, "cluster: redis unusable; local only, retrying in {backoff:?}");
        task.cluster.set_redis(&task.app, false, Some(why));
        if task.wait_down(backoff, &shutdown).await {
            return Ok(());
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

struct Task {
    app: Arc<App>,
    cluster: Arc<Cluster>,
    node: StoreNode,
    sip: SocketAddr,
    started: u64,
    sip_rx: mpsc::UnboundedReceiver<String>,
    state_rx: mpsc::UnboundedReceiver<(AgentId, RequestedState)>,
    reloads: mpsc::UnboundedReceiver<()>,
    /// The states set on this node, written again after an outage.
    my_states: BTreeMap<String, &'static str>,
    /// The last state read from Redis per agent: a resync applies only
    /// what changed since.
    seen_states: HashMap<String, String>,
}

impl Task {
    async fn connect(&self) -> Result<(PresenceStore, NoteFeed), String> {
        let config = self.cluster.config.store();
        // Subscribed first: a change made while the snapshot is read sends
        // a note this node hears.
        let feed = NoteFeed::subscribe(config.clone())
            .await
            .map_err(|e| e.to_string())?;
        let store = PresenceStore::connect(config, self.node.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok((store, feed))
    }

    /// While Redis is down: local changes are dropped (they are written
    /// again on reconnection), remote bindings expire. `true` on shutdown.
    async fn wait_down(&mut self, backoff: Duration, shutdown: &CancellationToken) -> bool {
        let until = tokio::time::Instant::now() + backoff;
        let mut expire = tokio::time::interval(EXPIRE_EVERY);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return true,
                () = tokio::time::sleep_until(until) => return false,
                Some(_) = self.sip_rx.recv() => {}
                Some((agent, state)) = self.state_rx.recv() => {
                    self.my_states.insert(agent.as_str().to_string(), state_name(state));
                }
                Some(()) = self.reloads.recv() => {
                    self.cluster.status().dialplan_hash = dialplan_hash(&self.app).await;
                }
                _ = expire.tick() => self.expire(),
            }
        }
    }

    fn expire(&self) {
        self.app
            .registrar
            .locations()
            .expire_remote(Instant::now(), &self.app.router);
    }

    /// Connected: write this node's own again, read everything, then
    /// serve notes and changes until Redis fails (`Err`) or shutdown.
    async fn serve(
        &mut self,
        store: &PresenceStore,
        mut feed: NoteFeed,
        shutdown: &CancellationToken,
    ) -> Result<(), String> {
        let failed = |e: ::cluster::claims::StoreError| e.to_string();
        let locations = self.app.registrar.locations().clone();
        for agent in locations.sip_agents() {
            self.publish_bindings(store, &agent).await.map_err(failed)?;
        }
        for (agent, state) in &self.my_states {
            store
                .put_state(&AgentId::new(agent), state)
                .await
                .map_err(failed)?;
        }
        self.heartbeat(store).await.map_err(failed)?;
        self.resync(store).await.map_err(failed)?;
        info!(node = %self.node, "cluster: redis up, bindings shared and resynchronised");
        self.cluster.set_redis(&self.app, true, None);
        let config = self.cluster.config.clone();
        let mut resync = tokio::time::interval_at(
            tokio::time::Instant::now() + config.resync_every,
            config.resync_every,
        );
        let mut beat = tokio::time::interval(config.heartbeat_every);
        let mut expire = tokio::time::interval(EXPIRE_EVERY);
        for timer in [&mut resync, &mut beat, &mut expire] {
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                Some(agent) = self.sip_rx.recv() => {
                    self.publish_bindings(store, &agent).await.map_err(failed)?;
                }
                Some((agent, state)) = self.state_rx.recv() => {
                    let name = state_name(state);
                    self.my_states.insert(agent.as_str().to_string(), name);
                    self.seen_states.insert(agent.as_str().to_string(), name.to_string());
                    store.put_state(&agent, name).await.map_err(failed)?;
                }
                Some(()) = self.reloads.recv() => {
                    let hash = dialplan_hash(&self.app).await;
                    self.cluster.status().dialplan_hash.clone_from(&hash);
                    if let Some(hash) = hash {
                        store.announce_reload(&hash).await.map_err(failed)?;
                    }
                }
                item = feed.next() => match item {
                    None => return Err("the subscription closed".into()),
                    Some(FeedItem::Note(note)) => self.on_note(store, note).await.map_err(failed)?,
                    Some(FeedItem::Malformed(error)) => {
                        metrics::counter!("frontdesk_cluster_notes_malformed_total").increment(1);
                        debug!(%error, "cluster: malformed note dropped");
                    }
                },
                _ = resync.tick() => self.resync(store).await.map_err(failed)?,
                _ = beat.tick() => self.heartbeat(store).await.map_err(failed)?,
                _ = expire.tick() => self.expire(),
            }
        }
    }

    async fn publish_bindings(
        &self,
        store: &PresenceStore,
        agent: &str,
    ) -> Result<(), ::cluster::claims::StoreError> {
        if !::cluster::presence::valid_agent(agent) {
            return Ok(()); // the dialplan allows no such name
        }
        let bindings = self.app.registrar.locations().sip(agent);
        let json = encode_bindings(agent, &bindings);
        store
            .put_bindings(&AgentId::new(agent), json.as_deref())
            .await
    }

    /// Sets `agent`'s remote devices to what Redis holds for the other
    /// nodes; removes this node's stale field (an outage hid a change).
    async fn apply_agent(
        &self,
        store: &PresenceStore,
        agent: &AgentId,
        all: &[(StoreNode, String)],
    ) -> Result<(), ::cluster::claims::StoreError> {
        let locations = self.app.registrar.locations();
        let now = Instant::now();
        let wall = unix_ms() / 1000;
        let mut present = HashSet::new();
        for (node, json) in all {
            if *node == self.node {
                if locations.sip(agent.as_str()).is_empty() {
                    store.put_bindings(agent, None).await?;
                }
                continue;
            }
            present.insert(node.as_str().to_string());
            let bindings = decode_bindings(json, now, wall);
            locations.set_remote(agent.as_str(), node.as_str(), bindings, &self.app.router);
        }
        for (held, node) in locations.remote_nodes() {
            if held == agent.as_str() && !present.contains(&node) {
                locations.set_remote(agent.as_str(), &node, Vec::new(), &self.app.router);
            }
        }
        Ok(())
    }

    async fn on_note(
        &mut self,
        store: &PresenceStore,
        note: Note,
    ) -> Result<(), ::cluster::claims::StoreError> {
        if *note.node() == self.node {
            return Ok(());
        }
        match note {
            Note::Presence { agent, .. } => {
                let all = store.bindings(&agent).await?;
                self.apply_agent(store, &agent, &all).await?;
            }
            Note::State { node, agent, state } => {
                self.apply_state(&agent, &state).await;
                debug!(%node, agent = agent.as_str(), %state, "cluster: state from another node");
            }
            Note::Reload { node, hash } => {
                info!(%node, "cluster: node {node} reloaded its dialplan; reloading ours");
                let _ = super::dialplan::reload_shared(&self.app).await;
                let ours = dialplan_hash(&self.app).await;
                {
                    let mut status = self.cluster.status();
                    status.dialplan_hash.clone_from(&ours);
                    status.reloads_from_others += 1;
                }
                let mismatch = (ours.as_deref() != Some(hash.as_str())).then(|| {
                    format!(
                        "node {node} reloaded a dialplan whose sha256 is {hash}; ours is {}",
                        ours.as_deref().unwrap_or("unreadable")
                    )
                });
                self.app
                    .journal
                    .set_cluster_alert(DIALPLAN_MISMATCH, mismatch);
            }
        }
        Ok(())
    }

    async fn apply_state(&mut self, agent: &AgentId, state: &str) {
        self.seen_states
            .insert(agent.as_str().to_string(), state.to_string());
        self.my_states.remove(agent.as_str());
        let Some(requested) = RequestedState::from_name(state) else {
            return;
        };
        match self
            .app
            .router
            .apply_shared_state(agent.clone(), requested)
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                debug!(agent = agent.as_str(), %error, "cluster: shared state not applied")
            }
            Err(_) => {} // routing stopped: shutting down
        }
    }

    /// Reads everything and brings the local view in line.
    async fn resync(&mut self, store: &PresenceStore) -> Result<(), ::cluster::claims::StoreError> {
        let snapshot = store.snapshot().await?;
        let mut listed = HashSet::new();
        for (agent, all) in &snapshot.presence {
            listed.insert(agent.as_str().to_string());
            self.apply_agent(store, agent, all).await?;
        }
        let locations = self.app.registrar.locations();
        for (agent, node) in locations.remote_nodes() {
            if !listed.contains(&agent) {
                locations.set_remote(&agent, &node, Vec::new(), &self.app.router);
            }
        }
        for (agent, state) in snapshot.states {
            if self.seen_states.get(agent.as_str()) != Some(&state) {
                self.apply_state(&agent, &state).await;
            }
        }
        Ok(())
    }

    async fn heartbeat(&self, store: &PresenceStore) -> Result<(), ::cluster::claims::StoreError> {
        let now = unix_ms();
        let me = NodeView {
            node: self.node.as_str().to_string(),
            sip: self.sip.to_string(),
            started: self.started,
            last_seen: now,
            alive: true,
        };
        // Plain data: encoding cannot fail.
        let value = serde_json::to_string(&me).unwrap_or_default();
        store.heartbeat(&value).await?;
        let within =
            u64::try_from(self.cluster.config.alive_within().as_millis()).unwrap_or(u64::MAX);
        let mut nodes: Vec<NodeView> = store
            .nodes()
            .await?
            .into_iter()
            .filter_map(|(node, json)| {
                let mut view: NodeView = serde_json::from_str(&json).ok()?;
                view.node = node.as_str().to_string();
                view.alive = now.saturating_sub(view.last_seen) <= within;
                Some(view)
            })
            .collect();
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        let alive = nodes.iter().filter(|n| n.alive).count();
        metrics::gauge!("frontdesk_cluster_nodes_alive").set(alive as f64);
        self.cluster.status().nodes = nodes;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bindings_go_to_redis_and_come_back() {
        let stored = StoredBinding {
            user: "1003".into(),
            contact: "<sip:1003@127.0.0.9:5062>".into(),
            transport: sip::registrar::StoredTransport::Udp,
            source: "127.0.0.10:5060".parse().unwrap(),
            // Registered through a proxy: the Path and the phone's own
            // address travel to the other nodes too.
            path: vec!["<sip:127.0.0.10:5060;lr;received=sip:127.0.0.9:5062>".into()],
            client: Some("127.0.0.9:5062".parse().unwrap()),
            call_id: "c".into(),
            cseq: 1,
            expires_at_unix: unix_ms() / 1000 + 60,
        };
        let binding = stored
            .to_binding(Instant::now(), unix_ms() / 1000, 3600)
            .unwrap();
        let json = encode_bindings("1003", std::slice::from_ref(&binding)).unwrap();
        let back = decode_bindings(&json, Instant::now(), unix_ms() / 1000);
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].contact, binding.contact);
        assert_eq!(back[0].path, binding.path);
        assert_eq!(back[0].path.len(), 1);
        assert_eq!(back[0].client, binding.client);
        assert_eq!(back[0].source, binding.source);
        assert!(encode_bindings("1003", &[]).is_none());
        assert!(decode_bindings("{", Instant::now(), 0).is_empty());
        assert!(decode_bindings(&" ".repeat(MAX_BINDINGS_JSON + 1), Instant::now(), 0).is_empty());
    }

    proptest! {
        #[test]
        fn any_value_in_redis_decodes_to_bindings_or_nothing(json in ".{0,400}") {
            let _ = decode_bindings(&json, Instant::now(), 1_000);
        }
    }
}
