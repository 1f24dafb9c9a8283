//! The application behind the SIP endpoint: what frontdesk does with the
//! requests the endpoint does not answer itself.
//!
//! [`start`] builds the pieces and wires them:
//!
//! ```text
//! sockets ─▶ sip::transport ─▶ sip::endpoint ─┬─▶ dispatcher (this module)
//!                                             │     REGISTER ─▶ registrar task
//!                                             │     INVITE   ─▶ a new call task
//!                                             └─▶ call tasks (events of their Call-IDs)
//! routing task ◀── calls, registrar, admin API
//! ```
//!
//! Every long-lived piece is one task owning one core, reached through a
//! cheap handle kept in [`App`]; the admin API reads the same handles.

pub mod claim_history;
pub mod claims;
pub mod cluster;
pub mod dialplan;
pub mod journal;
pub mod node;
pub mod plan_map;
pub mod recogniser;
pub mod registrar;
pub mod router;
pub mod services;
pub mod sockets;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use guard::{SourceSlots, WarnEvery};
use sip::transport::door::{DoorPolicy, FrontDoor};

use sip::TransportKind;
use sip::endpoint::{self, EndpointConfig, EndpointHandle};
use sip::message::{HeaderName, Method, Response, StatusCode};
use sip::transaction::{self, Event, SentBy, TimerValues};
use sip::transport::{self, TransportConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::calls::{self, CallBook, CallServices, Prompts};
pub use dialplan::LiveDialplan;
use media::driver::{PortPool, PortRange};
use registrar::RegistrarHandle;
use router::RouterHandle;
use services::Services;
use sockets::SipSockets;
use tokio_util::task::TaskTracker;

/// How many new requests may wait for the dispatcher before the endpoint
/// answers 503.
const APPLICATION_QUEUE: usize = 4096;

/// The product token in `Server` and `User-Agent`.
pub const PRODUCT: &str = concat!("frontdesk/", env!("CARGO_PKG_VERSION"));

/// How long a drain that waited for calls stays up after the last one
/// ended ([`App::drain`]): four times T1 (RFC 3261's 500 ms), so that a
/// BYE retransmitted at T1 and 3·T1 because our 200 was lost is still
/// answered by its transaction.
pub const DRAIN_LINGER: Duration = Duration::from_secs(2);

/// What the application needs from the command line.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// `--data`.
    pub data: PathBuf,
    /// `--advertise`: the address in Contact and SDP when listening on a
    /// wildcard.
    pub advertise: Option<IpAddr>,
    /// `--rtp-ports`: the lowest and highest RTP port.
    pub rtp_ports: (u16, u16),
    /// `--rtp-timeout`: RTP inactivity after which a call ends.
    pub rtp_timeout: Duration,
    /// `--rtp-probation`, `--rtp-unconfirmed-budget`: strict RTP.
    pub strict_rtp: media::strict::StrictConfig,
    /// `--rtp-quarantine`: how long a freed RTP port rests.
    pub rtp_quarantine: Duration,
    /// `--max-calls-in-setup`, `--overload-lag`, `--max-call-rate`,
    /// `--overload-retry-after`: admission control of new calls.
    pub admission: sip::overload::AdmissionConfig,
    /// `--alert-webhook`, `--alert-abandonment`.
    pub alerts: journal::AlertConfig,
    /// `--log-patient-numbers`: show numbers in the logs in full.
    pub log_patient_numbers: bool,
    /// `--digest-algorithms`: the registrar's challenges, in order.
    pub digest_algorithms: Vec<sip::digest::Algorithm>,
    /// `--node-id`: this node's name in a cluster (`None`: a single node).
    pub node: Option<node::NodeId>,
    /// `--journal` (`None`: `sqlite:` under `data`).
    pub journal: Option<records::JournalLocation>,
    /// `--redis` and the cluster's periods (`None`: agents are this
    /// node's alone).
    pub cluster: Option<cluster::ClusterConfig>,
    /// `--claim-lease`: how long an agent's claim in Redis holds
    /// unrenewed (with `cluster`; app/claims.rs).
    pub claim_lease: Duration,
    /// `--line-yield`: how long a node leaves an agent to another node
    /// whose caller is ahead in the shared line (app/claims.rs).
    pub line_yield: Duration,
    /// The recogniser of speech menus, started when a dialplan has them
    /// (at start or at a reload).
    pub speech: Arc<recogniser::SpeechEngine>,
}

/// Everything a call, the dispatcher or an API handler reaches for.
#[derive(Debug)]
pub struct App {
    /// Sends SIP.
    pub endpoint: EndpointHandle,
    /// Where SIP over TLS listens, with `--sips`.
    pub sips: Option<SocketAddr>,
    /// The address peers reach us at (Contact, SDP).
    pub advertise: IpAddr,
    /// This node's name in a cluster (`--node-id`; `None`: a single node).
    pub node: Option<node::NodeId>,
    /// With `--redis`: the cluster this node shares agents with.
    pub cluster: Option<Arc<cluster::Cluster>>,
    /// The dialplan in force.
    pub dialplan: Arc<LiveDialplan>,
    /// Queues and agents.
    pub router: RouterHandle,
    /// Agent registrations.
    pub registrar: RegistrarHandle,
    /// The calls, for the API.
    pub calls: CallBook,
    /// RTP ports.
    pub ports: PortPool,
    /// Encoded prompts.
    pub prompts: Prompts,
    /// Cancelled when the drain's grace is over: calls still up hang up.
    pub ending: CancellationToken,
    /// The journal of calls, the overload alerts, log pseudonyms.
    pub journal: Arc<journal::CallJournal>,
    /// What call tasks reach (narrow handles), and their tracker.
    pub call_services: Arc<CallServices>,
    /// Per-source limits on SIP (the transport's; bans from the registrar
    /// go here too).
    pub front_door: Arc<FrontDoor>,
    /// Calls held by each untrusted source (`[limits.sip] calls`).
    pub call_slots: SourceSlots,
    /// New calls refused for their source's call limit.
    calls_refused: AtomicU64,
    calls_refused_warn: Mutex<WarnEvery>,
    /// The leads calls make, until the leads service (started after the
    /// app) takes the receiver ([`App::take_call_leads`]). Locked only to
    /// take it.
    call_leads: Mutex<Option<mpsc::Receiver<crate::calls::CallLeadNews>>>,
    /// What routing decides about callback entries, until the daemon
    /// starts the callback dialer ([`App::take_callback_news`]).
    callback_news: Mutex<Option<mpsc::UnboundedReceiver<router::CallbackNews>>>,
}

impl App {
    /// The receiving end of the calls' leads ([`crate::calls::CallLeadSink`]),
    /// once: the leads service drains it.
    pub fn take_call_leads(&self) -> Option<mpsc::Receiver<crate::calls::CallLeadNews>> {
        self.call_leads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// What routing decides about callback entries, once: the callback
    /// dialer ([`crate::calls::callbacks::run`]) performs it.
    pub fn take_callback_news(&self) -> Option<mpsc::UnboundedReceiver<router::CallbackNews>> {
        self.callback_news
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Stops taking new calls (SIGTERM): a call admitted before is on the
    /// call tracker, which the drain waits on; later INVITEs get 503.
    pub fn start_draining(&self) {
        self.call_services.close();
        // Callback entries wait in the journal for the next start: a dial
        // now would ring an agent and the patient past the node's end.
        self.router.pause_callbacks();
        // Kamailio's probes see 503 and send new calls elsewhere.
        let _ = self.endpoint.start_draining();
    }

    /// SIGTERM: no new calls (503 with Retry-After), the calls in progress
    /// finish by `stop.calls`. Until `stop.places` callers waiting in a
    /// queue are offered agents as usual (in the cluster's order, through
    /// the shared line); from then on each one still waiting keeps their
    /// place as a callback entry (`Call::handle_drain`), hears so and is
    /// hung up. Calls still up at `stop.calls` are hung up (BYE to both
    /// legs), with until `stop.byes` to send them. When calls were up, the
    /// daemon then lingers [`DRAIN_LINGER`] (within `stop.byes`) so that the
    /// last call's BYE is answered, and answered again if retransmitted.
    /// Returns how many calls had to be hung up.
    pub async fn drain(&self, stop: services::StopDeadlines) -> usize {
        self.start_draining();
        let tasks = &self.call_services.tasks;
        let active = tasks.len();
        if active == 0 {
            return 0;
        }
        info!(
            active,
            grace_secs = stop
                .calls
                .saturating_duration_since(tokio::time::Instant::now())
                .as_secs(),
            "draining: waiting for calls in progress"
        );
        let mut all_ended = tokio::time::timeout_at(stop.places, tasks.wait())
            .await
            .is_ok();
        if !all_ended {
            info!(
                left = tasks.len(),
                "draining: callers still waiting keep their place as callbacks"
            );
            self.call_services.keeping_places.cancel();
            all_ended = tokio::time::timeout_at(stop.calls, tasks.wait())
                .await
                .is_ok();
        }
        let left = if all_ended {
            0
        } else {
            let left = tasks.len();
            warn!(
                left,
                "drain grace over: hanging up the calls still in progress"
            );
            self.ending.cancel();
            // Let the calls send their BYEs before the endpoint stops.
            let _ = tokio::time::timeout_at(stop.byes, tasks.wait()).await;
            left
        };
        // A call task ends as it answers its BYE: the 200 is still on its
        // way to the socket, and if it is lost the peer (Kamailio, over
        // UDP) sends the BYE again at T1 and 3·T1. Stopping now would leave
        // that BYE unanswered (408 at the proxy), or answered 481 by the
        // node restarted on our address.
        let linger = (tokio::time::Instant::now() + DRAIN_LINGER).min(stop.byes);
        tokio::time::sleep_until(linger).await;
        left
    }

    /// Reloads the dialplan (SIGHUP, `POST /api/reload`): a plan with errors,
    /// or one routing cannot take, is refused and the running one stays.
    /// Calls in progress keep the plan they started with (their IVR session
    /// holds it); agents' states and waiting callers survive.
    pub async fn reload(&self) -> Result<Arc<ivr::Dialplan>, Vec<String>> {
        let plan = match self.dialplan.read().await {
            Ok(plan) => Arc::new(plan),
            Err(errors) => return Err(errors.to_lines()),
        };
        // A plan that adds speech gets its recogniser before it serves a
        // call; one whose recogniser cannot start is refused.
        if let Err(reason) = self.call_services.speech.prepare(&plan).await {
            return Err(vec![format!(
                "{}: has speech menus, but the recogniser cannot start: {reason}",
                self.dialplan.path().display()
            )]);
        }
        let (queues, agents) = plan_map::routing_config(&plan);
        match self.router.reconfigure(queues, agents).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                return Err(vec![format!("{}: {error}", self.dialplan.path().display())]);
            }
            Err(stopped) => return Err(vec![stopped.to_string()]),
        }
        self.registrar.reconfigure(
            plan_map::registrar_users(&plan),
            plan_map::trusted_sources(&plan),
            plan.limits().sign_in.clone(),
        );
        self.front_door.set_policy(door_policy(&plan));
        self.dialplan.install(Arc::clone(&plan));
        // Events from now on go to the new plan's webhooks.
        self.journal
            .handle()
            .set_webhooks(crate::webhooks::subscriptions(&plan));
        self.prompts.clear();
        if let Some(folder) = plan.path().parent() {
            self.prompts.preload(&folder.join("prompts")).await;
        }
        Ok(plan)
    }
}

/// What an INVITE refused for its source's call limit is told to wait,
/// in seconds.
pub const CALL_LIMIT_RETRY_AFTER: u32 = 30;

/// The transport's policy from the dialplan: `[trust]` and `[limits.sip]`.
pub fn door_policy(plan: &ivr::Dialplan) -> DoorPolicy {
    DoorPolicy {
        trusted: plan_map::trusted_sources(plan),
        limits: plan.limits().sip.clone(),
    }
}

impl App {
    /// The real source of a request that a trusted proxy forwarded: the
    /// address in its `X-Frontdesk-Source` (guard's `ForwardedSource`),
    /// when `source` is one of `[trust] proxies` and the request carries
    /// exactly one such header that parses. From any other source the
    /// header is ignored (a patient cannot borrow another source's
    /// treatment by writing it), and so is a proxy's unreadable one (the
    /// request then counts as the proxy's own, which is trusted).
    ///
    /// The limits by this address apply here, after parsing: the
    /// transport's front door sees only the proxy's address (exempt, or
    /// the whole clinic would share one bucket) and cannot read headers
    /// before it parses. The registrar's failure limits and lockout, the
    /// per-source call slots and the feature codes' "is this the agent's
    /// phone" judge this address.
    fn client_of(
        &self,
        request: &sip::message::validate::ValidRequest,
        source: sip::Peer,
    ) -> Option<std::net::SocketAddr> {
        if !self
            .front_door
            .policy()
            .trusted
            .is_proxy(source.address.ip())
        {
            return None;
        }
        let name = HeaderName::from_token(guard::SOURCE_HEADER);
        let mut values = request.request.headers.all(&name);
        let (Some(value), None) = (values.next(), values.next()) else {
            debug!(%source, "a proxied request without exactly one source header: the proxy's own");
            return None;
        };
        match guard::ForwardedSource::parse(&value.value) {
            Ok(forwarded) => Some(forwarded.address),
            Err(error) => {
                debug!(%source, %error, "the proxy's source header is unreadable: the proxy's own");
                None
            }
        }
    }

    /// A call slot for a new call from `ip`: `Ok(None)` for a trusted
    /// source, `Err` when an untrusted one holds all the calls it may
    /// (`[limits.sip] calls`): its INVITE gets 503 with Retry-After. The
    /// INVITE passed the rate limit, so answering it reflects nothing.
    fn call_slot(&self, ip: IpAddr) -> Result<Option<guard::SourceSlot>, ()> {
        let policy = self.front_door.policy();
        if policy.trusted.is_trusted(ip) {
            return Ok(None);
        }
        if let Some(slot) = self.call_slots.try_take(ip, policy.limits.calls) {
            return Ok(Some(slot));
        }
        self.calls_refused.fetch_add(1, Ordering::Relaxed);
        let warn = self
            .calls_refused_warn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .hit(std::time::Instant::now());
        debug!(%ip, "INVITE refused: the source holds its most calls");
        if let Some(count) = warn {
            warn!(
                %ip,
                refused = count,
                "new call refused with 503: the source holds {} calls, its most ({count} refused since the last such warning)",
                policy.limits.calls
            );
        }
        Err(())
    }
}

/// Starts SIP on `sockets` and the services behind it.
pub async fn start(
    sockets: SipSockets,
    front: &tokio::runtime::Handle,
    dialplan: Arc<LiveDialplan>,
    config: AppConfig,
    services: &mut Services,
    shutdown: CancellationToken,
) -> anyhow::Result<Arc<App>> {
    let SipSockets {
        udp,
        tcp,
        local,
        tls,
    } = sockets;
    let advertise = match (local.ip(), config.advertise) {
        (_, Some(ip)) => ip,
        (ip, None) if !ip.is_unspecified() => ip,
        (IpAddr::V4(_), None) => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        (IpAddr::V6(_), None) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    };
    let plan = dialplan.current();
    let front_door = Arc::new(FrontDoor::new(door_policy(&plan)));
    let (inbound_tx, inbound_rx) = mpsc::channel(APPLICATION_QUEUE);
    // The transport's and the endpoint's tasks run on the front end's
    // thread (daemon/front.rs): entered while they start, no await inside.
    let entered = front.enter();
    let transport = transport::start(
        udp,
        tcp,
        TransportConfig {
            front_door: Arc::clone(&front_door),
            ..TransportConfig::default()
        },
        inbound_tx,
        shutdown.child_token(),
    )?;
    let sips = match tls {
        Some(tls) => Some(transport.serve_tls(tls.listener, tls.gate)?),
        None => None,
    };
    let sent_by = [TransportKind::Udp, TransportKind::Tcp]
        .into_iter()
        .map(|transport| (transport, local.port()))
        .chain(sips.map(|sips| (TransportKind::Tls, sips.port())))
        .map(|(transport, port)| SentBy {
            transport,
            host: advertise.into(),
            port,
        })
        .collect();
    let endpoint_config = EndpointConfig {
        transaction: transaction::Config {
            timers: TimerValues::default(),
            sent_by,
            seed: rand::random(),
        },
        allow: vec![
            Method::Invite,
            Method::Bye,
            Method::Register,
            Method::Info,
            Method::Refer,
            Method::Notify,
            Method::Update,
        ],
        supported: vec!["replaces"],
        product: PRODUCT.to_string(),
        admission: Some(endpoint::AdmissionSetup {
            config: config.admission,
            classify: urgent_lines(Arc::clone(&dialplan)),
        }),
    };
    let (application_tx, application_rx) = mpsc::channel(APPLICATION_QUEUE);
    let (endpoint, endpoint_task) = endpoint::start(
        endpoint_config,
        transport,
        inbound_rx,
        application_tx,
        shutdown.child_token(),
    );
    drop(entered);
    services.spawn("sip-endpoint", async move {
        endpoint_task.await?;
        Ok(())
    });

    let journal = Arc::new(journal::CallJournal::open(
        &config.data,
        config.journal.as_ref(),
        config.node.as_ref().map(node::NodeId::as_str),
        config.log_patient_numbers,
        config.alerts.window,
        crate::webhooks::subscriptions(&plan),
    )?);
    let claims = match (&config.cluster, &config.node) {
        (Some(cluster), Some(node)) => Some((
            claims::ClaimsConfig::new(node.as_str(), &cluster.redis, config.claim_lease)
                .ok_or_else(|| {
                    anyhow::anyhow!("--claim-lease {:?} is out of bounds", config.claim_lease)
                })?
                .with_line(cluster.alive_within(), config.line_yield),
            Arc::clone(&journal),
        )),
        // clap refuses --redis without --node-id; this is for other callers.
        (Some(_), None) => anyhow::bail!("--redis needs --node-id"),
        (None, _) => None,
    };
    let lines = claims.as_ref().map(|(config, _)| Arc::clone(&config.lines));
    let (queues, agents) = plan_map::routing_config(&plan);
    let (router, router_task, callback_news) =
        router::start(queues, agents, claims, shutdown.child_token())?;
    services.spawn("routing", async move {
        router_task.await?;
        Ok(())
    });

    let (registrar, registrar_task) = registrar::start(
        plan_map::registrar_users(&plan),
        plan_map::trusted_sources(&plan),
        plan.limits().sign_in.clone(),
        Arc::clone(&front_door),
        config.digest_algorithms.clone(),
        &config.data,
        endpoint.clone(),
        router.clone(),
        shutdown.child_token(),
    )
    .await?;
    services.spawn("registrar", async move {
        registrar_task.await?;
        Ok(())
    });

    // A seam for tests of a failing disk: calls must go on while every
    // journal write fails (counted, logged). Not a production setting.
    if std::env::var("FRONTDESK_TEST_JOURNAL_FAULT").as_deref() == Ok("fail") {
        warn!("FRONTDESK_TEST_JOURNAL_FAULT=fail: every journal write will fail");
        journal.faults().set_failing(true);
    }
    info!("journal in {}", journal.location());
    let range = PortRange::new(config.rtp_ports.0, config.rtp_ports.1)?;
    let ports = PortPool::with_quarantine(local.ip(), range, config.rtp_quarantine);
    let prompts = Prompts::default();
    if let Some(folder) = plan.path().parent() {
        prompts.preload(&folder.join("prompts")).await;
    }
    let calls = CallBook::default();
    let ending = CancellationToken::new();
    let media = media::session::SessionConfig {
        inactivity_timeout: Some(config.rtp_timeout),
        strict: config.strict_rtp,
        ..media::session::SessionConfig::default()
    };
    let (call_leads, call_leads_inbox) =
        crate::calls::CallLeadSink::channel(crate::calls::leads::CALL_LEAD_QUEUE);
    let callbacks =
        crate::calls::Callbacks::new(router.clone(), Arc::clone(&journal), call_leads.clone());
    let call_services = Arc::new(CallServices {
        callbacks,
        endpoint: endpoint.clone(),
        router: router.clone(),
        locations: registrar.locations().clone(),
        dialplan: Arc::clone(&dialplan),
        ports: ports.clone(),
        prompts: prompts.clone(),
        calls: calls.clone(),
        journal: Arc::clone(&journal),
        leads: call_leads,
        media,
        call_config: call::CallConfig {
            advertise,
            sip_port: local.port(),
            sips_port: sips.map(|sips| sips.port()),
        },
        keeping_places: CancellationToken::new(),
        ending: ending.clone(),
        tasks: TaskTracker::new(),
        admission: std::sync::Mutex::new(()),
        node: config.node.clone(),
        speech: Arc::clone(&config.speech),
        voicemail: crate::voicemail::VoicemailStore::open(&config.data)
            .map_err(|error| anyhow::anyhow!("the voicemail folder under --data: {error}"))?,
    });
    let app = Arc::new(App {
        endpoint,
        sips,
        advertise,
        node: config.node.clone(),
        cluster: config
            .cluster
            .clone()
            .map(|c| Arc::new(cluster::Cluster::new(c).with_lines(lines))),
        dialplan,
        router,
        registrar,
        calls,
        ports,
        prompts,
        ending,
        call_services,
        journal,
        front_door,
        call_slots: SourceSlots::new(),
        calls_refused: AtomicU64::new(0),
        calls_refused_warn: Mutex::new(WarnEvery::new(Duration::from_secs(10))),
        call_leads: Mutex::new(Some(call_leads_inbox)),
        callback_news: Mutex::new(Some(callback_news)),
    });
    let watcher = Arc::clone(&app);
    let stop = shutdown.child_token();
    let alerts = config.alerts.clone();
    services.spawn("alerts", async move {
        journal::watch_alerts(watcher, alerts, stop).await;
        Ok(())
    });
    let gauges = Arc::clone(&app);
    let stop = shutdown.child_token();
    services.spawn("gauges", async move {
        publish_gauges(gauges, stop).await;
        Ok(())
    });
    let dispatcher = Arc::clone(&app);
    let stop = shutdown.child_token();
    services.spawn("dispatcher", async move {
        dispatch(dispatcher, application_rx, stop).await;
        Ok(())
    });
    info!(advertise = %app.advertise, "sip services started");
    if let Some(node) = &app.node {
        info!(node = %node, "a cluster node");
        // Which node a scrape came from, for the cluster's dashboards.
        metrics::gauge!("frontdesk_node_info", "node" => node.as_str().to_string()).set(1.0);
    }
    Ok(app)
}

/// Which new calls admission control lets through first: those to the
/// dialplan's urgent lines (read from the plan in force at each INVITE, so
/// a reload applies at once).
fn urgent_lines(
    dialplan: Arc<LiveDialplan>,
) -> Arc<dyn Fn(&sip::message::validate::ValidRequest) -> sip::overload::CallClass + Send + Sync> {
    Arc::new(move |invite| {
        let dialed = calls::signal::dialed_number(invite);
        match dialplan
            .current()
            .number(&dialed)
            .map(ivr::Number::priority)
        {
            Some(ivr::Priority::Urgent) => sip::overload::CallClass::Urgent,
            _ => sip::overload::CallClass::Routine,
        }
    })
}

/// Routes what the endpoint hands the application: requests that open
/// something new, and events about Call-IDs no call owns.
async fn dispatch(app: Arc<App>, mut events: mpsc::Receiver<Event>, shutdown: CancellationToken) {
    // The dialogs of late answers already ended with BYE (their 2xx may
    // come again before our ACK lands): the last few, bounded.
    let mut ended_late: std::collections::VecDeque<bytestring::ByteString> =
        std::collections::VecDeque::with_capacity(LATE_ANSWERS);
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            event = events.recv() => match event {
                Some(event) => event,
                None => return,
            },
        };
        match event {
            Event::Request {
                transaction,
                request,
                source,
            } => match request.request.method {
                Method::Register => {
                    let client = app.client_of(&request, source);
                    app.registrar.register(transaction, request, source, client);
                }
                Method::Invite => {
                    // Held until the call is spawned: the drain cannot
                    // start between the check and the spawn.
                    let Some(_admitting) = app.call_services.admitting() else {
                        let mut busy = Response::to_request(
                            &request.request.headers,
                            StatusCode::SERVICE_UNAVAILABLE,
                            Some(&tag()),
                        );
                        busy.headers.push(HeaderName::RetryAfter, 30);
                        let _ = app.endpoint.respond(transaction, busy);
                        continue;
                    };
                    let client = app.client_of(&request, source);
                    let ip = client.map_or(source.address.ip(), |client| client.ip());
                    match app.call_slot(ip) {
                        Ok(slot) => calls::spawn_inbound(
                            Arc::clone(&app.call_services),
                            transaction,
                            request,
                            calls::Source {
                                peer: source,
                                client,
                            },
                            slot,
                        ),
                        Err(()) => {
                            let mut busy = Response::to_request(
                                &request.request.headers,
                                StatusCode::SERVICE_UNAVAILABLE,
                                Some(&tag()),
                            )
                            .with_reason("Too Many Calls From This Address");
                            busy.headers
                                .push(HeaderName::RetryAfter, CALL_LIMIT_RETRY_AFTER);
                            let _ = app.endpoint.respond(transaction, busy);
                        }
                    }
                }
                // Outside any dialog and not a dialog-creating request.
                _ => {
                    let response = Response::to_request(
                        &request.request.headers,
                        StatusCode::CALL_DOES_NOT_EXIST,
                        Some(&tag()),
                    );
                    let _ = app.endpoint.respond(transaction, response);
                }
            },
            other => {
                // Queued here before its call was routed (a CANCEL right
                // behind its INVITE): hand it over now.
                if let Err(event) = app.endpoint.deliver(other) {
                    match event {
                        // A phone answered a call that is over (the caller
                        // hung up as it answered): ACK, then BYE, so the
                        // phone stops resending its 200 and hangs up
                        // (RFC 3261 §13.2.2.4, §15). Only an answer to an
                        // INVITE of ours (it matched our client
                        // transaction, whose branch is random): a 2xx that
                        // matches nothing (`Stray2xx`) may be forged, and
                        // answering it would let a stranger aim our ACKs
                        // and BYEs at a third party.
                        Event::Response {
                            response, source, ..
                        } if response.cseq.method == Method::Invite
                            && response.response.status.is_success() =>
                        {
                            let first = !ended_late.contains(&response.call_id);
                            if first {
                                if ended_late.len() == LATE_ANSWERS {
                                    ended_late.pop_front();
                                }
                                ended_late.push_back(response.call_id.clone());
                            }
                            end_late_answer(&app, &response, source, first).await;
                        }
                        event => debug!(call_id = %event.call_id(), "event for no call"),
                    }
                }
            }
        }
    }
}

/// How many late answers' dialogs the dispatcher remembers, so a
/// retransmitted 2xx gets its ACK again but no second BYE.
const LATE_ANSWERS: usize = 64;

/// ACKs a 2xx to one of our INVITEs whose call is gone, then (the `first`
/// time) ends its dialog with BYE. The dialog is read from the 2xx alone
/// (its tags, its Contact, its Record-Route): the INVITE is no longer at
/// hand.
async fn end_late_answer(
    app: &App,
    response: &sip::message::validate::ValidResponse,
    source: sip::Peer,
    first: bool,
) {
    let Some(target) = response
        .response
        .headers
        .contacts()
        .ok()
        .and_then(|contacts| {
            contacts
                .into_iter()
                .find_map(|c| c.address().map(|a| a.uri.clone()))
        })
    else {
        debug!(call_id = %response.call_id, "a late 2xx without a Contact: dropped");
        return;
    };
    let mut invite = sip::message::Request::new(Method::Invite, target);
    invite
        .headers
        .push(HeaderName::CSeq, format!("{} INVITE", response.cseq.seq));
    let Ok(mut dialog) = sip::dialog::Dialog::uac(&invite, response, source) else {
        debug!(call_id = %response.call_id, "a late 2xx with no usable dialog: dropped");
        return;
    };
    let _ = app
        .endpoint
        .send_ack(dialog.ack(response.cseq.seq), source)
        .await;
    if !first {
        return;
    }
    info!(call_id = %response.call_id, "a phone answered a call that is over: ACK and BYE");
    metrics::counter!("frontdesk_late_answers_total").increment(1);
    let _ = app
        .endpoint
        .send_request(dialog.request(Method::Bye), source)
        .await;
}

/// Keeps the gauges that are cheaper to read than to track fresh: ports,
/// calls, routed Call-IDs.
async fn publish_gauges(app: Arc<App>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        ticks += 1;
        if ticks % 4 == 1 {
            publish_queue_gauges(&app).await;
        }
        metrics::gauge!("frontdesk_rtp_ports_leased").set(app.ports.leased() as f64);
        metrics::gauge!("frontdesk_rtp_ports_available").set(app.ports.available() as f64);
        metrics::gauge!("frontdesk_calls_active").set(app.calls.active() as f64);
        metrics::gauge!("frontdesk_sip_routed_call_ids").set(app.endpoint.routed() as f64);
        let journal = app.journal.stats();
        // With a PostgreSQL replica, the calls not yet shipped wait too;
        // `up` is 0 while it cannot be written (always 1 on SQLite alone).
        let replica = app.journal.replica();
        let shipping = replica.as_ref().map_or(0, |replica| replica.backlog);
        metrics::gauge!("frontdesk_journal_backlog").set((journal.backlog + shipping) as f64);
        let up = replica.as_ref().is_none_or(|replica| replica.up);
        metrics::gauge!("frontdesk_journal_up").set(if up { 1.0 } else { 0.0 });
        metrics::counter!("frontdesk_journal_written_total").absolute(journal.written);
        metrics::counter!("frontdesk_journal_dropped_total").absolute(journal.dropped);
        metrics::counter!("frontdesk_journal_failed_total").absolute(journal.failed);
        metrics::gauge!("frontdesk_journal_failing").set(if journal.failing { 1.0 } else { 0.0 });
        publish_limit_metrics(&app);
    }
}

/// What the per-source limits refused (see `dialplans/README.md`,
/// `[limits]`).
fn publish_limit_metrics(app: &App) {
    let door = app.front_door.stats(std::time::Instant::now());
    metrics::counter!("frontdesk_sip_dropped_total", "reason" => "over_rate")
        .absolute(door.dropped);
    metrics::counter!("frontdesk_sip_dropped_total", "reason" => "scanner").absolute(door.scanners);
    metrics::counter!("frontdesk_sip_bans_total").absolute(door.bans);
    metrics::gauge!("frontdesk_sip_banned_sources").set(door.banned_now as f64);
    metrics::gauge!("frontdesk_sip_sources_tracked").set(door.sources_tracked as f64);
    metrics::counter!("frontdesk_sip_untracked_total").absolute(door.untracked);
    metrics::counter!("frontdesk_sip_connections_refused_total", "reason" => "per_source")
        .absolute(door.connections_refused);
    metrics::counter!("frontdesk_calls_refused_total", "reason" => "per_source")
        .absolute(app.calls_refused.load(Ordering::Relaxed));
}

/// Queues (waiting, longest wait) and agents by state, once a second.
async fn publish_queue_gauges(app: &App) {
    if let Ok(stats) = app.router.stats().await {
        for queue in stats.iter().filter(|q| !q.retired) {
            let id = queue.id.as_str().to_string();
            metrics::gauge!("frontdesk_queue_waiting", "queue" => id.clone())
                .set(queue.waiting as f64);
            metrics::gauge!("frontdesk_queue_longest_wait_seconds", "queue" => id.clone())
                .set(queue.longest_wait.as_secs_f64());
            // The dialplan's target, so that an alert rule compares the two.
            metrics::gauge!("frontdesk_queue_sla_seconds", "queue" => id)
                .set(queue.sla.as_secs_f64());
        }
    }
    let mut by_state: std::collections::BTreeMap<&'static str, u64> = [
        "offline",
        "available",
        "ringing",
        "on_call",
        "wrap_up",
        "away",
    ]
    .into_iter()
    .map(|state| (state, 0))
    .collect();
    for agent in app.router.table().snapshots() {
        *by_state.entry(agent.state.as_str()).or_default() += 1;
    }
    for (state, count) in by_state {
        metrics::gauge!("frontdesk_agents", "state" => state).set(count as f64);
    }
}

/// Sleeps until `deadline`, or forever when there is none: the timer arm
/// of every task's `select!` over a sans-IO core's `poll_timeout()`.
pub async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Receives from `events` when there is a receiver, or waits forever: for
/// a `select!` arm over a channel a task may not have (yet).
pub async fn recv_some<T>(
    events: Option<&mut tokio::sync::mpsc::UnboundedReceiver<T>>,
) -> Option<T> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// A fresh To tag.
pub fn tag() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 12)
}
