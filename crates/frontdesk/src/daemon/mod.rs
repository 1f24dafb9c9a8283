//! The daemon behind `frontdesk run`: load the dialplan, bind SIP, serve
//! the admin API, then wait for a signal and drain.
//!
//! Each service is a task in [`Services`] with a child of one shutdown
//! [`CancellationToken`]. SIGTERM or SIGINT stops the daemon within
//! `--shutdown-grace` ([`crate::app::services::SHUTDOWN_GRACE`] by
//! default), one figure cut into [`StopDeadlines`]: the calls in progress
//! finish (callers still waiting keep their place as callbacks, or are
//! hung up), the token is cancelled, the journal is
//! flushed, the services finish what they are doing, and the process
//! exits 0. SIGHUP re-reads the dialplan. A service that ends on its own
//! stops the daemon with an error.
//!
//! For tests and scripts started on port 0, the daemon prints one line per
//! listener on stdout, `sip-listening ADDR`, with `--sips` then
//! `sips-listening ADDR`, and `http-listening ADDR` last, once that
//! listener is bound.
//!
//! With `--sips`, the certificate and key are read before anything binds
//! (a daemon that cannot serve TLS does not start), SIP over TLS listens on
//! the `--sips` address, and the admin listener on `--http` speaks HTTPS
//! with the same certificate (its readiness line keeps its name). SIGHUP
//! reloads the certificate too ([`tls`]).

mod config;
pub(crate) mod front;
mod signals;
mod tls;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use crate::app::recogniser::SpeechConfig;
use crate::app::services::{Services, StopDeadlines};
use crate::app::sockets::{SipBindError, SipSockets};
pub use config::{Config, RtpPorts, SipsConfig, TokenSource};
pub use tls::Certificates;

use crate::app::LiveDialplan;
use crate::app::dialplan::Summary;
use crate::http::{self, AdminToken, AppState};
use crate::private;
use signals::{Signal, Signals};

/// Why the daemon did not start, or stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// `--sips` was given and the certificate or key cannot be used.
    #[error("--sips {addr}: {source} (a development pair for this machine: frontdesk certs dev)")]
    Tls {
        /// The `--sips` address.
        addr: SocketAddr,
        /// Why.
        source: ::sip::transport::tls::TlsError,
    },
    /// The dialplan does not compile; each error is `PATH:LINE:COLUMN: message`.
    #[error("the dialplan {path} has errors; not starting:\n{errors}")]
    Dialplan {
        /// The dialplan file.
        path: PathBuf,
        /// Every error in it.
        errors: ivr::Diagnostics,
    },
    /// The data directory could not be created or made owner-only.
    #[error("cannot create the data directory {path} or make it owner-only: {source}")]
    DataDirectory {
        /// `--data`.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SIP could not listen.
    #[error(transparent)]
    Sip(#[from] SipBindError),
    /// The admin HTTP listener could not bind.
    #[error("cannot listen for http on {addr}: {source}")]
    Http {
        /// `--http`.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Signal handlers or the metrics recorder could not be installed.
    #[error("cannot set up the process: {0}")]
    Setup(String),
    /// The dialplan asks for speech and the recogniser cannot start (the
    /// library or the model is missing).
    #[error(
        "the dialplan {path} has speech menus, but the recogniser cannot start: {reason}; not starting"
    )]
    Speech {
        /// The dialplan file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A service stopped before it was asked to.
    #[error("the {name} service stopped: {reason}")]
    ServiceStopped {
        /// Which service.
        name: &'static str,
        /// Its error.
        reason: String,
    },
}

/// Where a started daemon listens, and the admin token it serves with:
/// what a caller in the same process (`frontdesk demo`) needs to drive it.
#[derive(Debug, Clone)]
pub struct Listening {
    /// SIP over UDP and TCP, with the real port when 0 was asked for.
    pub sip: SocketAddr,
    /// The admin HTTP API (HTTPS with `--sips`).
    pub http: SocketAddr,
    /// The address for the dashboard link (never a wildcard).
    pub dashboard: SocketAddr,
    /// The admin token in force, given or generated.
    pub admin_token: AdminToken,
}

/// Raises the soft limit on open files to the hard limit: every call
/// holds a socket per leg, and the usual soft limit (1,024 under systemd)
/// would cap the daemon near 250 calls. (The `rlimit` crate wraps the
/// system call; this crate forbids `unsafe`.)
fn raise_descriptor_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => info!("open files: up to {limit}"),
        Err(error) => warn!(%error, "the limit on open files could not be raised"),
    }
}

/// Runs the daemon until SIGTERM or SIGINT (then `Ok`), or until it cannot
/// start or a service fails.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    run_with(config, |_| {}).await
}

/// [`run`], calling `on_listening` once SIP and HTTP both listen, just
/// before the `http-listening` line (what it prints comes before that line).
pub async fn run_with(
    config: Config,
    on_listening: impl FnOnce(Listening),
) -> Result<(), DaemonError> {
    // Before anything binds: a SIGTERM sent as soon as a port is printed
    // must find its handler installed.
    let mut signals = Signals::install().map_err(|e| DaemonError::Setup(e.to_string()))?;
    let grace = config.shutdown_grace;

    let dialplan = LiveDialplan::load(&config.dialplan)
        .await
        .map_err(|errors| DaemonError::Dialplan {
            path: config.dialplan.clone(),
            errors,
        })?;
    let dialplan = std::sync::Arc::new(if config.open_all_hours {
        info!("the clinic's hours are set aside: open at all hours (demo --open)");
        dialplan.open_all_hours()
    } else {
        dialplan
    });
    info!(
        "dialplan {} loaded: {}",
        dialplan.path().display(),
        Summary(&dialplan.current())
    );
    let speech = std::sync::Arc::new(crate::app::recogniser::SpeechEngine::new(config.speech));
    speech
        .prepare(&dialplan.current())
        .await
        .map_err(|reason| DaemonError::Speech {
            path: config.dialplan.clone(),
            reason,
        })?;

    // Two nodes without names would close each other's calls and mix
    // their ids in the shared database.
    if matches!(config.journal, Some(records::JournalLocation::Postgres(_)))
        && config.node.is_none()
    {
        return Err(DaemonError::Setup(
            "--journal postgres://… needs --node-id NAME: each node of a cluster must have its own name".into(),
        ));
    }

    let certificates = match &config.sips {
        Some(sips) => Some(Certificates::load(sips).map_err(|source| DaemonError::Tls {
            addr: sips.addr,
            source,
        })?),
        None => None,
    };
    if let Some(certificates) = &certificates {
        info!("tls certificate {}", certificates.cert_path().display());
    }

    raise_descriptor_limit();

    // Owner-only, whatever the umask; older files narrowed (private).
    let data = config.data.clone();
    let narrowed = tokio::task::spawn_blocking(move || private::prepare(&data))
        .await
        .map_err(|error| DaemonError::Setup(error.to_string()))?
        .map_err(|source| DaemonError::DataDirectory {
            path: config.data.clone(),
            source,
        })?;
    if narrowed > 0 {
        warn!(
            "{narrowed} files and directories under {} were readable by others: now owner-only",
            config.data.display()
        );
    }
    info!("data in {} (owner-only)", config.data.display());
    info!(
        "rtp ports {} ({} streams at most)",
        config.rtp_ports,
        config.rtp_ports.pairs()
    );

    let metrics = http::metrics::install().map_err(|e| DaemonError::Setup(e.to_string()))?;
    let shutdown = CancellationToken::new();
    let mut services = Services::new();

    // Read at start: the listeners' own limits.
    let limits = dialplan.current().limits().clone();
    let handshake = ::sip::transport::tls::HandshakeLimits {
        timeout: limits.sip.handshake_timeout,
        ..::sip::transport::tls::HandshakeLimits::default()
    };
    // SIP's sockets belong to the front end's own runtime (front.rs).
    let front = front::OwnRuntime::sip_front().map_err(|e| DaemonError::Setup(e.to_string()))?;
    // Work no caller waits for runs below the calls (front.rs).
    let background =
        front::OwnRuntime::background().map_err(|e| DaemonError::Setup(e.to_string()))?;
    // The webhooks' POSTs run below everything else: SCHED_IDLE (front.rs).
    let webhook_send =
        front::OwnRuntime::idle("webhook-send").map_err(|e| DaemonError::Setup(e.to_string()))?;
    let sip_addr = config.sip;
    let tls_bind = match (&config.sips, &certificates) {
        (Some(sips), Some(certificates)) => Some((sips.addr, certificates.identity().clone())),
        _ => None,
    };
    let sockets = front
        .spawn(async move {
            let mut sockets = SipSockets::bind(sip_addr).await?;
            if let Some((addr, identity)) = tls_bind {
                sockets.bind_tls(addr, &identity, handshake).await?;
            }
            Ok::<_, SipBindError>(sockets)
        })
        .await
        .map_err(|e| DaemonError::Setup(e.to_string()))??;
    let sip_local = sockets.local;
    let (sip_ready, sip_ready_rx) = watch::channel(None);
    let app_config = crate::app::AppConfig {
        data: config.data.clone(),
        advertise: config.advertise,
        rtp_ports: (config.rtp_ports.low(), config.rtp_ports.high()),
        rtp_timeout: config.rtp_timeout,
        strict_rtp: config.strict_rtp,
        rtp_quarantine: config.rtp_quarantine,
        admission: config.admission,
        alerts: config.alerts.clone(),
        log_patient_numbers: config.log_patient_numbers,
        digest_algorithms: config.digest_algorithms.clone(),
        node: config.node.clone(),
        journal: config.journal.clone(),
        cluster: config.cluster.clone(),
        claim_lease: config.claim_lease,
        line_yield: config.line_yield,
        speech,
    };
    let app = crate::app::start(
        sockets,
        front.handle(),
        std::sync::Arc::clone(&dialplan),
        app_config,
        &mut services,
        shutdown.child_token(),
    )
    .await
    .map_err(|error| DaemonError::Setup(format!("{error:#}")))?;
    sip_ready.send_replace(Some(sip_local));
    info!("sip listening on udp+tcp {sip_local}");
    if let Some(advertise) = config.advertise {
        info!("advertising {advertise} in SDP and Contact");
    } else if sip_local.ip().is_unspecified() {
        warn!(
            "sip listens on {sip_local} without --advertise: peers may be given an address they cannot reach"
        );
    }
    ready_line("sip-listening", sip_local);
    if let Some(sips_local) = app.sips {
        info!("sip listening on tls {sips_local}");
        ready_line("sips-listening", sips_local);
    }

    let (admin_token, generated) = match config.admin_token {
        TokenSource::Given(token) => (token, false),
        TokenSource::Generate => (AdminToken::generate(), true),
    };
    let listener = TcpListener::bind(config.http)
        .await
        .map_err(|source| DaemonError::Http {
            addr: config.http,
            source,
        })?;
    let http_local = listener.local_addr().map_err(|source| DaemonError::Http {
        addr: config.http,
        source,
    })?;
    let leads = crate::leads::Leads::start(
        app.journal.handle(),
        app.journal.reader().clone(),
        std::sync::Arc::clone(&dialplan),
        limits.leads.clone(),
        app.journal.pseudonyms(),
        config.alerts.webhook.clone(),
        (
            std::sync::Arc::clone(app.router.table()),
            app.router.agents_changed(),
        ),
        shutdown.child_token(),
    )
    .await
    .map_err(|error| DaemonError::Setup(format!("leads: {error:#}")))?;
    // Calls that become leads (abandoned calls, callbacks, voicemails).
    if let Some(inbox) = app.take_call_leads() {
        services.spawn(
            "call-leads",
            crate::leads::calls::run(inbox, leads.clone(), shutdown.child_token()),
        );
    }
    // Callers who kept their place are called back (the journal's entries
    // first, after a restart).
    if let Some(news) = app.take_callback_news() {
        services.spawn(
            "callbacks",
            crate::calls::callbacks::run(
                news,
                app.call_services.callbacks.clone(),
                std::sync::Arc::clone(&app.call_services),
                shutdown.child_token(),
            ),
        );
    }
    // CRM webhooks: the journal queues their events; this delivers them,
    // leasing and settling on the background runtime and POSTing on the
    // idle one: a thousand POSTs a second must not take the calls' turns.
    let delivery = background.spawn(crate::webhooks::run(
        std::sync::Arc::clone(&app.journal),
        std::sync::Arc::clone(&dialplan),
        config.webhook_poll,
        webhook_send.handle().clone(),
        shutdown.child_token(),
    ));
    services.spawn("webhooks", async move {
        delivery
            .await
            .map_err(|error| anyhow::anyhow!("webhook delivery: {error}"))?
    });
    services.spawn(
        "voicemail-retention",
        crate::voicemail::sweep(
            app.call_services.voicemail.clone(),
            std::sync::Arc::clone(&dialplan),
            app.journal.handle(),
            app.journal.reader().clone(),
            shutdown.child_token(),
        ),
    );
    if let Some(cluster) = &app.cluster {
        // Not the URL: it may carry a password.
        info!(
            node = cluster.config().node.as_str(),
            "sharing agents through redis"
        );
        services.spawn(
            "cluster",
            crate::app::cluster::run(
                std::sync::Arc::clone(&app),
                std::sync::Arc::clone(cluster),
                sip_local,
                shutdown.child_token(),
            ),
        );
    }
    let dashboard = http::dashboard::Live::new(shutdown.child_token());
    services.spawn(
        "dashboard",
        http::dashboard::publish(
            std::sync::Arc::clone(&app),
            leads.clone(),
            dashboard.clone(),
        ),
    );
    // A patient reached by click-to-call is on the record and contacted
    // on the lead desk.
    let contact = std::sync::Arc::new(crate::leads::desk::DeskContact::new(
        crate::calls::originate::JournalContact::new(app.journal.handle()),
        leads.desk().clone(),
    ));
    // The browser phones' gateway: its SIP socket on the host of the SIP
    // address (loopback when that is a wildcard), hearing only the daemon.
    let gateway_ip = dashboard_host(sip_local, None).ip();
    let (phone, phone_task) = crate::browser::Gateway::start(
        gateway_ip,
        SocketAddr::new(gateway_ip, sip_local.port()),
        app.registrar.locations().clone(),
        app.router.clone(),
        app.ports.clone(),
        config.phone,
        shutdown.child_token(),
    )
    .await
    .map_err(|error| DaemonError::Setup(format!("{error:#}")))?;
    services.spawn("browser-phones", async move {
        phone_task.await?;
        Ok(())
    });
    let state = AppState {
        phone,
        admin_token: admin_token.clone(),
        metrics: metrics.clone(),
        sip: sip_ready_rx,
        app: std::sync::Arc::clone(&app),
        dashboard,
        agent_sessions: http::agent_view::AgentSessions::default(),
        leads,
        originate: crate::calls::originate::Originator::new(
            std::sync::Arc::clone(&app.call_services),
            contact,
        ),
    };
    let (scheme, gate) = match &certificates {
        Some(certificates) => {
            let gate = ::sip::transport::tls::TlsGate::new(
                certificates.identity().clone(),
                handshake,
                "https",
            );
            ("https", Some(gate))
        }
        None => ("http", None),
    };
    services.spawn(
        "http",
        http::serve(
            listener,
            gate,
            http::router(state),
            limits.http.clone(),
            std::sync::Arc::clone(&dialplan),
            shutdown.child_token(),
        ),
    );
    services.spawn(
        "metrics-upkeep",
        http::metrics::upkeep(metrics, shutdown.child_token()),
    );
    info!("{scheme} listening on {http_local}");
    if generated {
        info!(
            "dashboard {scheme}://{}/?token={}",
            dashboard_host(http_local, config.advertise),
            admin_token.reveal()
        );
    }
    on_listening(Listening {
        sip: sip_local,
        http: http_local,
        dashboard: dashboard_host(http_local, config.advertise),
        admin_token,
    });
    ready_line("http-listening", http_local);

    let mut stop = None;
    let outcome = loop {
        tokio::select! {
            signal = signals.next() => match signal {
                Signal::Terminate | Signal::Interrupt => {
                    info!("{signal} received, shutting down (grace {} s)", grace.as_secs());
                    stop = Some(StopDeadlines::new(Instant::now(), grace));
                    break Ok(());
                }
                Signal::Hangup => {
                    let _ = crate::app::dialplan::reload(&app).await;
                    if let Some(certificates) = &certificates {
                        let _ = certificates.reload();
                    }
                }
            },
            Some((name, result)) = services.next_exit() => {
                let reason = match result {
                    Ok(()) => "ended on its own".to_string(),
                    Err(error) => format!("{error:#}"),
                };
                error!("the {name} service stopped: {reason}; shutting down");
                break Err(DaemonError::ServiceStopped { name, reason });
            }
        }
    };

    // A service that failed stops at once, with the same grace for the rest.
    let stop = stop.unwrap_or_else(|| StopDeadlines::new(Instant::now(), grace));
    if outcome.is_ok() {
        // Drain: no new calls, the calls in progress finish (bounded).
        tokio::select! {
            hung_up = app.drain(stop) => {
                info!(hung_up, "calls drained");
            }
            signal = signals.next_stop() => warn!("{signal} received again, not waiting for calls"),
        }
    }
    metrics::gauge!("frontdesk_up").set(0.0);
    shutdown.cancel();
    // The journal last: what the calls recorded is on disk before exit.
    let journal_app = std::sync::Arc::clone(&app);
    let left = stop.all.saturating_duration_since(Instant::now());
    let _ = tokio::task::spawn_blocking(move || journal_app.journal.close(left)).await;
    let drained = tokio::select! {
        drained = services.drain(stop.all) => Some(drained),
        signal = signals.next_stop() => {
            warn!("{signal} received again, stopping now");
            None
        }
    };
    if let Some(drained) = drained {
        for (name, reason) in &drained.failed {
            warn!("the {name} service failed while stopping: {reason}");
        }
        if !drained.aborted.is_empty() {
            warn!(
                "still running at the end of the {} s grace, aborted: {}",
                grace.as_secs(),
                drained.aborted.join(", ")
            );
        }
    }
    info!("stopped");
    outcome
}

/// A readiness line on stdout, flushed, for whoever started us on port 0.
fn ready_line(what: &str, addr: SocketAddr) {
    let mut stdout = std::io::stdout().lock();
    // Stdout closed or full is not a reason to stop serving: the log has it too.
    let _ = writeln!(stdout, "{what} {addr}").and_then(|()| stdout.flush());
}

/// The address to put in the dashboard link: the listener's, unless it is
/// a wildcard, then the advertised address or loopback.
fn dashboard_host(local: SocketAddr, advertise: Option<IpAddr>) -> SocketAddr {
    let ip = match (local.ip(), advertise) {
        (ip, _) if !ip.is_unspecified() => ip,
        (_, Some(advertised)) => advertised,
        (IpAddr::V4(_), None) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        (IpAddr::V6(_), None) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    SocketAddr::new(ip, local.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_link_never_names_a_wildcard_address() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            dashboard_host(at("127.0.0.1:8080"), None),
            at("127.0.0.1:8080")
        );
        assert_eq!(
            dashboard_host(at("10.0.0.5:8080"), Some(ip("192.0.2.1"))),
            at("10.0.0.5:8080")
        );
        assert_eq!(
            dashboard_host(at("0.0.0.0:8080"), None),
            at("127.0.0.1:8080")
        );
        assert_eq!(
            dashboard_host(at("0.0.0.0:8080"), Some(ip("192.0.2.1"))),
            at("192.0.2.1:8080")
        );
        assert_eq!(dashboard_host(at("[::]:8080"), None), at("[::1]:8080"));
    }
}
