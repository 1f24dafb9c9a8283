//! The browser phone (issue 23): an agent's `/agent` page with "take
//! calls here" on is one of the agent's devices, rung and bridged exactly
//! as a SIP phone is.
//!
//! # Why a SIP user agent inside the daemon
//!
//! The call path rings agents with SIP: INVITE to each of their bindings,
//! the first answer wins, hold is a re-INVITE, a transfer is a REFER. The
//! browser phone joins that path as one more binding, whose contact is a
//! SIP user agent the daemon runs itself (the gateway: its own
//! [`sip::endpoint`] on a socket of the SIP address's host, port picked at
//! start). So the agent's states, wrap-up, routing, the journal, reports,
//! ringing a SIP phone and the browser at once (first answer wins), and
//! transfers are those of a SIP agent without a line of their own: the
//! call core cannot tell the browser from a desk phone. The cost is one
//! RTP hop over the host's loopback between the call's relay and the
//! browser leg, measured in BENCHMARKS.md.
//!
//! # The pieces
//!
//! * [`Gateway`]: the user agents' endpoint. It takes requests only from
//!   the daemon's own SIP address and hands each to the page whose contact
//!   the Request-URI names (`sip:b-<agent>-<random>@…`); anything else is
//!   refused (a stranger cannot ring a page).
//! * [`session`]: one page's phone, a task: its WebSocket (the signalling
//!   of `phone-protocol`: hello with the session token and the page's SDP
//!   offer, ringing, answer, hang-up, hold, transfer), its
//!   [`media::webrtc::WebRtcLeg`] (ICE-lite, DTLS-SRTP, G.711 through),
//!   a plain RTP port toward the call's relay, and its [`ua::PhoneUa`].
//! * The agent counts as signed in with device `browser`
//!   ([`crate::app::registrar::Locations::set_browser`]) from the moment
//!   the page's WebRTC connection is up until the page is gone.
//!
//! # Failure
//!
//! A page whose WebSocket closes, or whose browser stops sending (no
//! consent checks for the leg's idle timeout), is gone: its device goes at
//! once; a call ringing there is refused (routing offers the patient to
//! the next agent), a call in progress is sent back to its queue, where the
//! patient hears the queue's hold prompt and keeps their place ahead of
//! later callers. An agent whose page does not come back within the grace
//! period is set `away`.

pub mod session;
pub mod ua;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use sip::endpoint::{self, EndpointConfig, EndpointHandle};
use sip::message::{Method, StatusCode};
use sip::transaction::{self, Event, SentBy, TimerValues};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::app::registrar::Locations;
use crate::app::router::RouterHandle;
use crate::app::sockets::SipSockets;

/// The browser phone's timeouts (flags of `frontdesk run`).
#[derive(Debug, Clone, Copy)]
pub struct PhoneConfig {
    /// The page's first message (hello) must come within this.
    pub hello_timeout: Duration,
    /// WebRTC's ICE and DTLS must be done within this of the answer.
    pub handshake_timeout: Duration,
    /// A connected browser that sends nothing for this long is gone.
    pub idle_timeout: Duration,
    /// An agent whose page is gone and does not come back within this is
    /// set away.
    pub away_after: Duration,
}

impl Default for PhoneConfig {
    fn default() -> PhoneConfig {
        PhoneConfig {
            hello_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            away_after: Duration::from_secs(60),
        }
    }
}

/// A page's phone as the gateway reaches it.
#[derive(Debug, Clone)]
pub(crate) struct PageHandle {
    /// Its contact's user part.
    pub user: String,
    /// Where its SIP events go.
    pub sip: mpsc::UnboundedSender<Event>,
    /// Told when a newer page of the same agent replaces it.
    pub replaced: CancellationToken,
}

/// The browser phones' gateway. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    endpoint: EndpointHandle,
    /// The gateway's SIP address (the pages' contacts).
    local: SocketAddr,
    /// The daemon's SIP address: the only source the gateway hears.
    daemon: SocketAddr,
    /// Pages by contact user.
    pages: DashMap<String, PageHandle>,
    /// The page of each agent (one at a time: a newer one replaces it).
    agents: DashMap<String, PageHandle>,
    locations: Locations,
    router: RouterHandle,
    ports: media::driver::PortPool,
    config: PhoneConfig,
    /// Cancelled when the daemon stops.
    shutdown: CancellationToken,
}

impl Gateway {
    /// Starts the gateway on a free port of `ip`, hearing only `daemon`
    /// (the daemon's SIP address).
    pub async fn start(
        ip: std::net::IpAddr,
        daemon: SocketAddr,
        locations: Locations,
        router: RouterHandle,
        ports: media::driver::PortPool,
        config: PhoneConfig,
        shutdown: CancellationToken,
    ) -> anyhow::Result<(Gateway, tokio::task::JoinHandle<()>)> {
        let sockets = SipSockets::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(|error| anyhow::anyhow!("the browser phones' SIP socket: {error}"))?;
        let local = sockets.local;
        let (inbound_tx, inbound_rx) = mpsc::channel(1024);
        let transport = sip::transport::start(
            sockets.udp,
            sockets.tcp,
            sip::transport::TransportConfig::default(),
            inbound_tx,
            shutdown.clone(),
        )?;
        let endpoint_config = EndpointConfig {
            transaction: transaction::Config {
                timers: TimerValues::default(),
                sent_by: vec![SentBy {
                    transport: sip::TransportKind::Udp,
                    host: local.ip().into(),
                    port: local.port(),
                }],
                seed: rand::random(),
            },
            allow: vec![
                Method::Invite,
                Method::Ack,
                Method::Cancel,
                Method::Bye,
                Method::Info,
                Method::Notify,
                Method::Options,
            ],
            supported: vec![],
            product: "frontdesk-browser-phone".into(),
            admission: None,
        };
        let (application_tx, mut application_rx) = mpsc::channel(256);
        let (endpoint, endpoint_task) = endpoint::start(
            endpoint_config,
            transport,
            inbound_rx,
            application_tx,
            shutdown.clone(),
        );
        let gateway = Gateway {
            inner: Arc::new(Inner {
                endpoint,
                local,
                daemon,
                pages: DashMap::new(),
                agents: DashMap::new(),
                locations,
                router,
                ports,
                config,
                shutdown: shutdown.clone(),
            }),
        };
        info!(%local, "browser phones' gateway listening");
        let dispatcher = gateway.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    event = application_rx.recv() => match event {
                        Some(event) => dispatcher.dispatch(event),
                        None => break,
                    },
                }
            }
            let _ = endpoint_task.await;
        });
        Ok((gateway, task))
    }

    /// The gateway's SIP address.
    pub fn local(&self) -> SocketAddr {
        self.inner.local
    }

    pub(crate) fn endpoint(&self) -> &EndpointHandle {
        &self.inner.endpoint
    }

    pub(crate) fn config(&self) -> PhoneConfig {
        self.inner.config
    }

    pub(crate) fn ports(&self) -> &media::driver::PortPool {
        &self.inner.ports
    }

    pub(crate) fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Whether `source` is the daemon (the only peer a page hears).
    pub(crate) fn is_daemon(&self, source: &sip::Peer) -> bool {
        source.address == self.inner.daemon
    }

    /// A new request with no owner yet: to the page its Request-URI names,
    /// from the daemon only.
    fn dispatch(&self, event: Event) {
        let Event::Request {
            transaction,
            request,
            source,
        } = event
        else {
            return;
        };
        let refuse = |status: StatusCode| {
            let response =
                sip::message::Response::to_request(&request.request.headers, status, None);
            let _ = self.inner.endpoint.respond(transaction, response);
        };
        if !self.is_daemon(&source) {
            debug!(source = %source.address, "a request to the browser phones from a stranger: 403");
            refuse(StatusCode::FORBIDDEN);
            return;
        }
        let user = request
            .request
            .uri
            .as_sip()
            .and_then(|uri| uri.user.as_deref())
            .map(str::to_string)
            .unwrap_or_default();
        let page = self.inner.pages.get(&user).map(|page| page.sip.clone());
        match page {
            Some(page) => {
                let _ = page.send(Event::Request {
                    transaction,
                    request,
                    source,
                });
            }
            None if request.request.method == Method::Options => refuse(StatusCode::OK),
            None => refuse(StatusCode::TEMPORARILY_UNAVAILABLE),
        }
    }

    /// A page's phone is up: it becomes the agent's browser device
    /// (replacing an older page of the agent's, which is told).
    pub(crate) fn attach(&self, agent: &str, page: PageHandle) {
        let binding = self.binding(&page.user);
        self.inner.pages.insert(page.user.clone(), page.clone());
        if let Some(older) = self.inner.agents.insert(agent.to_string(), page) {
            older.replaced.cancel();
            self.inner.pages.remove(&older.user);
        }
        self.inner
            .locations
            .set_browser(agent, Some(binding), &self.inner.router);
    }

    /// The page `user` of `agent` is gone: its device goes (unless a newer
    /// page replaced it), and after the grace period without a new page
    /// the agent is set away.
    pub(crate) fn detach(&self, agent: &str, user: &str) {
        self.inner.pages.remove(user);
        let current = self
            .inner
            .agents
            .remove_if(agent, |_, page| page.user == user)
            .is_some();
        if !current {
            return;
        }
        self.inner
            .locations
            .set_browser(agent, None, &self.inner.router);
        let gateway = self.clone();
        let agent = agent.to_string();
        let grace = self.inner.config.away_after;
        tokio::spawn(async move {
            tokio::select! {
                () = gateway.inner.shutdown.cancelled() => {}
                () = tokio::time::sleep(grace) => {
                    if gateway.inner.agents.contains_key(&agent) {
                        return;
                    }
                    info!(%agent, "the agent's page did not come back: away");
                    let state = gateway
                        .inner
                        .router
                        .set_state(routing::AgentId::new(agent.as_str()), routing::RequestedState::Away)
                        .await;
                    if let Ok(Err(error)) = state {
                        debug!(%agent, %error, "the agent could not be set away");
                    }
                }
            }
        });
    }

    /// The binding a page's phone is rung at.
    fn binding(&self, user: &str) -> sip::registrar::Binding {
        let local = self.inner.local;
        let contact = sip::message::NameAddr::new(sip::message::Uri::Sip(
            sip::message::SipUri::new(Some(user), local.ip().into(), Some(local.port())),
        ));
        let now = std::time::Instant::now();
        // The page's device lasts as long as the page: no expiry of its
        // own (a day, to keep the field honest).
        let day = Duration::from_secs(86_400);
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        sip::registrar::Binding {
            contact,
            source: sip::Peer::udp(local),
            path: Vec::new(),
            client: None,
            call_id: format!("{user}@browser"),
            cseq: 1,
            q: None,
            expires_at: now + day,
            expires_at_unix: unix + day.as_secs(),
            updated_at: now,
        }
    }
}
