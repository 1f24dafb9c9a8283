//! `frontdesk demo`: the daemon on a dialplan (the demo clinic by
//! default) plus, in the same process, simulated agents and patients that
//! reach it over real SIP and RTP on loopback, so that a newcomer sees
//! calls flow on the dashboard.
//!
//! ```text
//!   agents (one task each, own SIP port)        patients (one task per call)
//!   REGISTER + digest, refresh ─────┐          ┌── INVITE/ACK/BYE, RFC 4733 keys
//!   180, 200 + SDP, tone, BYE ──────┤          │   (one shared "trunk" endpoint)
//!   away/available (admin API) ─────┤          │
//!                                   ▼          ▼
//!                            the daemon (daemon::run_with), unchanged
//! ```
//!
//! Every simulated phone is built on our own stack: [`sip::transport`] and
//! [`sip::endpoint`] (the RFC 3261 transaction layer) as UAC and UAS,
//! [`sip::dialog`], [`sip::digest`], and the media crate's per-call task
//! for RTP. Randomness comes from one seed (`--seed`, or the OS), printed
//! at start so that a run's choices can be replayed.
//!
//! SIGINT or SIGTERM: the daemon drains as `run` does, the simulated
//! people hang up, the process exits 0.

mod agent;
mod api;
mod audio;
mod patient;
mod register;
mod ua;

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::daemon::{self, Config, DaemonError, Listening};
use agent::AgentSpec;
use api::AdminApi;
use audio::PhoneAudio;
use patient::{Dialable, MAX_PATIENTS};

/// How long the simulated people may take to hang up once the daemon stopped.
const HANG_UP_BOUND: Duration = Duration::from_secs(5);
/// The share of calls to the first number of the dialplan (the main line).
const MAIN_NUMBER_WEIGHT: u32 = 85;

/// What `frontdesk demo` was asked to do.
#[derive(Debug)]
pub struct DemoConfig {
    /// The daemon's configuration, as for `run`.
    pub daemon: Config,
    /// New patients per minute, on average.
    pub rate_per_minute: f64,
    /// The seed of every random choice; `None` draws one.
    pub seed: Option<u64>,
}

/// Why the demo did not run or stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The daemon could not start, or failed.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The simulated phones have no RTP ports.
    #[error(transparent)]
    NoPhonePorts(#[from] audio::NoPhonePorts),
    /// Signal handlers could not be installed.
    #[error("cannot set up the demo: {0}")]
    Setup(String),
}

/// What every simulated party shares.
#[derive(Debug)]
pub struct Stage {
    /// The daemon's SIP address, as the phones reach it.
    sip: SocketAddr,
    /// The loopback address the phones listen on.
    phone_ip: IpAddr,
    /// RTP for the phones.
    audio: PhoneAudio,
    /// The admin API, for agents' breaks.
    api: AdminApi,
}

/// Who takes part, read from the dialplan.
#[derive(Debug, Clone)]
struct Cast {
    agents: Vec<AgentSpec>,
    numbers: Vec<Dialable>,
}

impl Cast {
    fn from_plan(plan: &ivr::Dialplan) -> Cast {
        let agents = plan
            .agents()
            .iter()
            .map(|agent| AgentSpec {
                id: agent.id().as_str().to_string(),
                name: agent.name().to_string(),
                password: agent.password().to_string(),
            })
            .collect();
        let count = plan.numbers().len() as u32;
        let numbers = plan
            .numbers()
            .iter()
            .enumerate()
            .map(|(index, number)| {
                let keys: Vec<char> = match number.then() {
                    ivr::Target::Menu(menu) => plan
                        .menu(menu.as_str())
                        .map(|menu| {
                            menu.options()
                                .keys()
                                .filter_map(|key| single_digit(key))
                                .collect()
                        })
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                let wrong_keys = if keys.is_empty() {
                    Vec::new()
                } else {
                    ('0'..='9').filter(|key| !keys.contains(key)).collect()
                };
                let weight = match (index, count) {
                    (_, 1) => 1,
                    (0, _) => MAIN_NUMBER_WEIGHT,
                    _ => ((100 - MAIN_NUMBER_WEIGHT) / (count - 1)).max(1),
                };
                Dialable {
                    number: number.number().to_string(),
                    weight,
                    keys,
                    wrong_keys,
                }
            })
            .collect();
        Cast { agents, numbers }
    }
}

fn single_digit(key: &str) -> Option<char> {
    let mut chars = key.chars();
    match (chars.next(), chars.next()) {
        (Some(digit @ '0'..='9'), None) => Some(digit),
        _ => None,
    }
}

/// Runs the daemon and the simulation until SIGINT or SIGTERM.
pub async fn run(config: DemoConfig) -> Result<(), DemoError> {
    let DemoConfig {
        daemon: daemon_config,
        rate_per_minute,
        seed,
    } = config;
    let path = daemon_config.dialplan.clone();
    let plan = load_plan(path.clone())
        .await
        .map_err(|errors| DaemonError::Dialplan {
            path: path.clone(),
            errors,
        })?;
    let plan = if daemon_config.open_all_hours {
        plan.open_all_hours()
    } else {
        plan
    };
    let cast = Cast::from_plan(&plan);
    let pairs = u16::try_from(cast.agents.len() + MAX_PATIENTS + 2).unwrap_or(u16::MAX);
    let phone_ports = audio::phone_ports(daemon_config.rtp_ports, pairs)?;
    let mut stop_signals = StopSignals::install().map_err(|e| DemoError::Setup(e.to_string()))?;
    let seed = seed.unwrap_or_else(rand::random);
    let banner = Banner::new(
        &plan,
        &cast,
        rate_per_minute,
        seed,
        daemon_config.open_all_hours,
    );

    let (listening_tx, listening_rx) = oneshot::channel();
    let daemon = daemon::run_with(daemon_config, move |listening| {
        // Printed before the daemon's `http-listening` line: whoever waits
        // for that line has the dashboard link already.
        banner.print(&listening);
        // The demo below is waiting for this; it cannot be gone.
        let _ = listening_tx.send(listening);
    });
    tokio::pin!(daemon);
    let listening: Listening = tokio::select! {
        result = &mut daemon => return result.map_err(DemoError::from),
        listening = listening_rx => match listening {
            Ok(listening) => listening,
            Err(_) => return daemon.await.map_err(DemoError::from),
        },
    };

    let sip = ua::reachable(listening.sip);
    let phone_ip = ua::loopback_for(sip);
    let stage = Arc::new(Stage {
        sip,
        phone_ip,
        audio: PhoneAudio::new(phone_ip, phone_ports),
        api: AdminApi::new(
            ua::reachable(listening.http),
            listening.admin_token.reveal(),
        ),
    });

    let stop = CancellationToken::new();
    let mut people = start_people(&stage, &cast, rate_per_minute, seed, &stop);
    let outcome = tokio::select! {
        result = &mut daemon => result,
        signal = stop_signals.next() => {
            info!("{signal} received: the simulated agents and patients hang up");
            stop.cancel();
            daemon.await
        }
    };
    stop.cancel();
    let everyone_gone = async { while people.join_next().await.is_some() {} };
    if tokio::time::timeout(HANG_UP_BOUND, everyone_gone)
        .await
        .is_err()
    {
        warn!("simulated people still on the line after {HANG_UP_BOUND:?}: stopped");
        people.abort_all();
    }
    outcome.map_err(DemoError::from)
}

/// Reading and compiling touches the disk: off the async workers.
async fn load_plan(path: PathBuf) -> Result<ivr::Dialplan, ivr::Diagnostics> {
    match tokio::task::spawn_blocking(move || ivr::Dialplan::load(&path)).await {
        Ok(result) => result,
        // The loader panicked: a bug in it, not in the file; let it surface.
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// One task per agent, one for the patients' arrivals.
fn start_people(
    stage: &Arc<Stage>,
    cast: &Cast,
    rate_per_minute: f64,
    seed: u64,
    stop: &CancellationToken,
) -> JoinSet<()> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut people = JoinSet::new();
    for spec in &cast.agents {
        let rng = SmallRng::seed_from_u64(rng.random());
        people.spawn(agent::run(
            spec.clone(),
            Arc::clone(stage),
            rng,
            stop.child_token(),
        ));
    }
    let rng = SmallRng::seed_from_u64(rng.random());
    people.spawn(patient::arrivals(
        Arc::clone(stage),
        cast.numbers.clone(),
        rate_per_minute,
        rng,
        stop.child_token(),
    ));
    people
}

/// What the demo prints once the daemon listens: the dashboard link with
/// its token, and one line about what is simulated.
#[derive(Debug)]
struct Banner {
    agents: Vec<String>,
    numbers: Vec<String>,
    open: String,
    rate: f64,
    seed: u64,
}

impl Banner {
    fn new(
        plan: &ivr::Dialplan,
        cast: &Cast,
        rate: f64,
        seed: u64,
        open_all_hours: bool,
    ) -> Banner {
        let now = ivr::jiff::Timestamp::now();
        let zone = plan.clinic().time_zone_name();
        let open = match plan.open_state(now) {
            ivr::OpenState::Open if open_all_hours => format!(
                "the clinic runs as open at all hours (--open: its hours set aside, the clock untouched; {} in {zone})",
                now.to_zoned_datetime(plan.clinic().time_zone().clone())
                    .strftime("%a %H:%M")
            ),
            ivr::OpenState::Open => "the clinic is open now".to_string(),
            _ => format!(
                "the clinic is closed now ({zone}), so calls take the after-hours path (--open runs it as open)"
            ),
        };
        Banner {
            agents: cast
                .agents
                .iter()
                .map(|agent| format!("{} {}", agent.id, agent.name))
                .collect(),
            numbers: cast.numbers.iter().map(|n| n.number.clone()).collect(),
            open,
            rate,
            seed,
        }
    }

    fn print(&self, listening: &Listening) {
        let dashboard = format!(
            "http://{}/?token={}",
            listening.dashboard,
            listening.admin_token.reveal()
        );
        let summary = format!(
            "demo: {} simulated agents ({}) sign in over SIP from {}; simulated patients call {} about {} times a minute, press menu keys by RFC 4733 and sometimes hang up while waiting; {}; seed {}; Ctrl-C stops",
            self.agents.len(),
            self.agents.join(", "),
            ua::loopback_for(listening.sip),
            self.numbers.join(" and "),
            self.rate,
            self.open,
            self.seed,
        );
        info!("dashboard {dashboard}");
        let mut stdout = std::io::stdout().lock();
        // Stdout closed is no reason to stop: the log has the dashboard too.
        let _ = writeln!(stdout, "dashboard {dashboard}\n{summary}").and_then(|()| stdout.flush());
    }
}

/// SIGINT and SIGTERM, which the daemon acts on too (every listener of a
/// signal hears it).
#[derive(Debug)]
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            Some(()) = self.interrupt.recv() => "SIGINT",
            Some(()) = self.terminate.recv() => "SIGTERM",
            else => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cast_of_the_demo_clinic() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dialplans/clinic.toml");
        let plan = ivr::Dialplan::load(&path).unwrap();
        let cast = Cast::from_plan(&plan);
        let agents: Vec<(&str, &str)> = cast
            .agents
            .iter()
            .map(|a| (a.id.as_str(), a.password.as_str()))
            .collect();
        assert_eq!(agents.len(), 7);
        assert_eq!(agents[2], ("1003", "demo-1003"));
        let main = &cast.numbers[0];
        assert_eq!(main.number, "+15550100");
        assert_eq!(main.weight, MAIN_NUMBER_WEIGHT);
        assert_eq!(main.keys, vec!['0', '1', '2', '3', '4', '5', '9']);
        assert_eq!(main.wrong_keys, vec!['6', '7', '8']);
        let urgent = &cast.numbers[1];
        assert_eq!(urgent.number, "+15550111");
        assert_eq!(urgent.weight, 100 - MAIN_NUMBER_WEIGHT);
        assert!(urgent.keys.is_empty() && urgent.wrong_keys.is_empty());
    }

    #[test]
    fn menu_keys_are_single_digits() {
        assert_eq!(single_digit("7"), Some('7'));
        assert_eq!(single_digit("12"), None);
        assert_eq!(single_digit("*"), None);
        assert_eq!(single_digit(""), None);
    }
}
