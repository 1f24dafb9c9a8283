//! `frontdesk demo [--rate CALLS_PER_MINUTE]`: the daemon with simulated
//! agents and patients over real SIP on loopback (see [`crate::demo`]).
//! The daemon's flags are those of `run`, with the same defaults, except
//! the data directory (`var/demo/`, so demo calls never mix with real ones).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::daemon::{Config, RtpPorts, TokenSource};
use crate::demo::{self, DemoConfig, DemoError};
use crate::http::AdminToken;

/// The daemon plus simulated agents and patients.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// New simulated patients per minute, on average (random arrivals).
    #[arg(long, value_name = "CALLS_PER_MINUTE", default_value_t = 6.0, value_parser = parse_rate)]
    rate: f64,

    /// Seed for every random choice of the simulation [default: a random one, printed at start].
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// The dialplan to serve; its agents and numbers are the ones simulated.
    #[arg(long, value_name = "PATH", default_value = "dialplans/clinic.toml")]
    dialplan: PathBuf,

    /// SIP address, for both UDP and TCP; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5060")]
    sip: SocketAddr,

    /// Admin HTTP API, metrics and dashboard; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    http: SocketAddr,

    /// UDP ports for the daemon's media; the simulated phones take ports just above.
    #[arg(long, value_name = "LO-HI", default_value = "20000-29999")]
    rtp_ports: RtpPorts,

    /// Directory for the daemon's files; created if missing.
    #[arg(long, value_name = "DIR", default_value = "var/demo/")]
    data: PathBuf,

    /// Run the clinic as open at every hour, so that the daytime menus and
    /// departments show at night and on weekends too. The clock is not
    /// changed: times on the dashboard and in the journal stay real.
    #[arg(long)]
    open: bool,

    /// Token for the admin API and dashboard [default: a random one, printed in the dashboard link].
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FRONTDESK_ADMIN_TOKEN",
        hide_env_values = true,
        value_parser = parse_token
    )]
    admin_token: Option<AdminToken>,
}

/// The most calls per minute the simulation places.
const MAX_RATE: f64 = 600.0;

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| "expected a number of calls per minute, e.g. 6".to_string())?;
    if !(rate > 0.0 && rate <= MAX_RATE) {
        return Err(format!("the rate must be above 0 and at most {MAX_RATE}"));
    }
    Ok(rate)
}

fn parse_token(text: &str) -> Result<AdminToken, String> {
    AdminToken::new(text).map_err(|error| error.to_string())
}

impl DemoArgs {
    fn into_config(self) -> DemoConfig {
        DemoConfig {
            daemon: Config {
                dialplan: self.dialplan,
                sip: self.sip,
                http: self.http,
                rtp_ports: self.rtp_ports,
                data: self.data,
                admin_token: match self.admin_token {
                    Some(token) => TokenSource::Given(token),
                    None => TokenSource::Generate,
                },
                advertise: None,
                rtp_timeout: std::time::Duration::from_secs(30),
                strict_rtp: media::strict::StrictConfig::default(),
                rtp_quarantine: media::driver::PortPool::DEFAULT_QUARANTINE,
                phone: crate::browser::PhoneConfig::default(),
                admission: sip::overload::AdmissionConfig::default(),
                alerts: crate::app::journal::AlertConfig::default(),
                digest_algorithms: vec![sip::digest::Algorithm::Md5],
                node: None,
                journal: None,
                cluster: None,
                claim_lease: std::time::Duration::from_secs(15),
                open_all_hours: self.open,
                line_yield: std::time::Duration::from_secs(1),
                shutdown_grace: crate::app::services::SHUTDOWN_GRACE,
                webhook_poll: std::time::Duration::from_secs(1),
                speech: crate::daemon::SpeechConfig::default(),
                // Every caller of the demo is simulated (`+1312555…`): their
                // numbers in full let the daemon's log tell the same story
                // as the simulation's.
                log_patient_numbers: true,
                sips: None,
            },
            rate_per_minute: self.rate,
            seed: self.seed,
        }
    }
}

/// Runs the demo; exit 0 after SIGTERM or SIGINT, 1 when it cannot start
/// or the daemon fails.
pub fn demo(args: DemoArgs) -> ExitCode {
    // The demo's agents and patients share the daemon's runtime: no
    // priorities between them.
    super::serve(
        demo::run(args.into_config()),
        |error| match error {
            DemoError::Daemon(daemon) => Some(daemon),
            _ => None,
        },
        0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        demo: DemoArgs,
    }

    fn parse(args: &[&str]) -> Result<DemoConfig, clap::Error> {
        let argv = std::iter::once("demo").chain(args.iter().copied());
        Wrapper::try_parse_from(argv).map(|w| w.demo.into_config())
    }

    #[test]
    fn the_defaults_are_runs_with_a_demo_data_directory() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.rate_per_minute, 6.0);
        assert_eq!(config.seed, None);
        assert_eq!(
            config.daemon.dialplan,
            PathBuf::from("dialplans/clinic.toml")
        );
        assert_eq!(config.daemon.sip, "127.0.0.1:5060".parse().unwrap());
        assert_eq!(config.daemon.http, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.daemon.rtp_ports, "20000-29999".parse().unwrap());
        assert_eq!(config.daemon.data, PathBuf::from("var/demo/"));
    }

    #[test]
    fn flags_are_read_and_bad_rates_refused() {
        let config = parse(&[
            "--rate",
            "60",
            "--seed",
            "7",
            "--sip",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--data",
            "/tmp/d",
            "--admin-token",
            "t",
        ])
        .unwrap();
        assert_eq!(config.rate_per_minute, 60.0);
        assert_eq!(config.seed, Some(7));
        assert_eq!(config.daemon.sip.port(), 0);
        assert!(matches!(config.daemon.admin_token, TokenSource::Given(ref t) if t.verify(b"t")));
        for rate in ["0", "-1", "601", "NaN", "fast"] {
            assert!(parse(&["--rate", rate]).is_err(), "{rate}");
        }
    }
}
