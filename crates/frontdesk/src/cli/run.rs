//! `frontdesk run`: the flags of DESIGN.md ("Command line"), checked into a
//! [`daemon::Config`]; then a tokio runtime runs the daemon.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::daemon::{self, Config, RtpPorts, SipsConfig, TokenSource};
use crate::http::AdminToken;

/// Serve: SIP (UDP and TCP), the IVR, routing and the admin HTTP API.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The dialplan to serve (re-read on SIGHUP).
    #[arg(long, value_name = "PATH", default_value = "dialplans/clinic.toml")]
    dialplan: PathBuf,

    /// SIP address, for both UDP and TCP; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5060")]
    sip: SocketAddr,

    /// Admin HTTP API, metrics and dashboard; port 0 picks a free port.
    /// With --sips it speaks HTTPS (only), with the same certificate.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    http: SocketAddr,

    /// UDP ports for media: RTP on the even ports, RTCP on the odd ones.
    #[arg(long, value_name = "LO-HI", default_value = "20000-29999")]
    rtp_ports: RtpPorts,

    /// Directory for the daemon's files (the call journal); created if missing.
    #[arg(long, value_name = "DIR", default_value = "var/")]
    data: PathBuf,

    /// Token for the admin API and dashboard [default: a random one, printed once in the log].
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FRONTDESK_ADMIN_TOKEN",
        hide_env_values = true,
        value_parser = parse_token
    )]
    admin_token: Option<AdminToken>,

    /// End a call when a leg that should send RTP has sent none for this
    /// many seconds (a vanished phone), freeing the agent.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    rtp_timeout: u64,

    /// Strict RTP: consecutive in-sequence packets (one SSRC, one source)
    /// that confirm a phone behind NAT as a leg's peer, or move a confirmed
    /// peer to a new address. A packet from the SDP's own address confirms
    /// at once.
    #[arg(long, value_name = "PACKETS", default_value_t = media::strict::StrictConfig::DEFAULT_PROBATION, value_parser = clap::value_parser!(u16).range(1..=1000))]
    rtp_probation: u16,

    /// Strict RTP: packets sent to a leg before its peer is confirmed (to
    /// open a NAT pinhole); no more, so a forged SDP cannot aim a stream at
    /// a third party.
    #[arg(long, value_name = "PACKETS", default_value_t = media::strict::StrictConfig::DEFAULT_UNCONFIRMED_BUDGET, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    rtp_unconfirmed_budget: u32,

    /// Seconds a freed RTP port waits before another call may lease it, so
    /// an ended call's last packets cannot reach the next patient.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    rtp_quarantine: u64,

    /// Browser phone: seconds a page has, once its WebSocket opened, to send
    /// its hello (session token and SDP offer).
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    phone_hello_timeout: u64,

    /// Browser phone: seconds for ICE and DTLS to complete after our answer.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    phone_handshake_timeout: u64,

    /// Browser phone: seconds without a datagram from a connected browser
    /// (it sends consent checks every few seconds) before its page counts
    /// as gone.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(5..=3600))]
    phone_idle_timeout: u64,

    /// Browser phone: seconds after a page is gone (closed, its connection
    /// lost) before its agent is set away, unless the page came back.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    phone_away_after: u64,

    /// Admission control: new calls admitted but not yet taken up by the
    /// application (no ring, answer or refusal sent), at most; past it new
    /// routine calls get 503 with Retry-After (urgent lines have a reserve
    /// beyond it).
    #[arg(long, value_name = "CALLS", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    max_calls_in_setup: u32,

    /// Admission control: the event-loop lag (ms) the daemon is held under;
    /// above it, the rate of new calls admitted is cut, and excess calls get
    /// 503 with Retry-After before they cost anything.
    #[arg(long, value_name = "MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    overload_lag: u64,

    /// Admission control: new calls per second at most, whatever the lag.
    #[arg(long, value_name = "CALLS", default_value_t = 10_000.0)]
    max_call_rate: f64,

    /// Admission control: the Retry-After (seconds) of a refused call.
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=3600))]
    overload_retry_after: u32,

    /// Speech menus: threads decoding callers' utterances (each loads its
    /// own copy of the model, about 25 MB).
    #[arg(long, value_name = "THREADS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    speech_workers: u16,

    /// Speech menus: recognitions at once, queued or running; a caller
    /// beyond it is told to use the keypad.
    #[arg(long, value_name = "UTTERANCES", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
    speech_budget: u16,

    /// Nice steps the call, media and HTTP threads run below the SIP front
    /// end's thread, so that refusing calls under overload (503) is not
    /// queued behind the calls already admitted; 0 turns it off.
    #[arg(long, value_name = "STEPS", default_value_t = 5, value_parser = clap::value_parser!(u8).range(0..=19))]
    worker_nice: u8,

    /// How often, in milliseconds, the CRM webhooks' delivery service
    /// looks for due events when none of its deliveries ended (the
    /// dialplan's `[[webhooks]]`), and refreshes their metrics and alerts.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    webhook_poll: u64,

    /// POST overload alerts (raised and cleared) as JSON to this http:// URL.
    #[arg(long, value_name = "URL")]
    alert_webhook: Option<String>,

    /// Raise an alert when a department's abandonment over the last 15
    /// minutes passes this percentage (with at least 4 waits ended).
    #[arg(long, value_name = "PERCENT", default_value_t = 25.0)]
    alert_abandonment: f64,

    /// Digest challenges the registrar offers agents, in order
    /// (`md5`, `sha-256`; e.g. `md5,sha-256`). MD5 alone by default: Debian
    /// 12's baresip refuses a 401 that also offers SHA-256.
    #[arg(long, value_name = "LIST", default_value = "md5", value_parser = parse_algorithms)]
    digest_algorithms: Algorithms,

    /// Show patients' phone numbers in full in the logs (default: keyed
    /// pseudonyms, `p-` and 10 hex digits, stable across restarts).
    #[arg(long)]
    log_patient_numbers: bool,

    /// Address put in SDP and Contact when listening on 0.0.0.0.
    #[arg(long, value_name = "IP", value_parser = parse_advertise)]
    advertise: Option<IpAddr>,

    /// Also serve SIP over TLS on this address (TLS 1.3 and 1.2), and the
    /// admin listener (--http) over HTTPS with the same certificate. SIGHUP
    /// reloads the certificate. A development pair: `frontdesk certs dev`.
    #[arg(long, value_name = "ADDR")]
    sips: Option<SocketAddr>,

    /// This node's name in a cluster (1 to 32 letters, digits, `-`, `_`):
    /// it goes into the calls' journal ids and the shared state's keys.
    /// Without it the daemon is a single node.
    #[arg(long, value_name = "NAME")]
    node_id: Option<crate::app::node::NodeId>,

    /// Where the call journal lives: `sqlite:<path>` (default
    /// `sqlite:<--data>/journal.db`), or `postgres://user:pass@host:port/db`
    /// (also `postgresql://`), shared by a cluster's nodes (needs
    /// --node-id; the node still writes its own file first, as an outbox).
    /// The password is never logged.
    #[arg(long, value_name = "URL")]
    journal: Option<records::JournalLocation>,
    /// Share agents with the other nodes through this Redis
    /// (`redis://host:port/db`): bindings, away/available, reloads,
    /// heartbeats. Needs --node-id. Without it agents are this node's alone.
    #[arg(long, value_name = "URL", requires = "node_id", value_parser = parse_redis)]
    redis: Option<String>,

    /// With --redis: seconds between full reads of the shared agents
    /// (pub/sub loses what is sent while disconnected; this heals it).
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    cluster_resync: u64,

    /// With --redis: milliseconds between this node's heartbeats; a node
    /// is alive while its last heartbeat is under three periods (and a
    /// second) old.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    cluster_heartbeat: u64,

    /// With --redis: milliseconds to wait for Redis to connect or answer a
    /// command before this node goes on alone (and retries).
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    cluster_timeout: u64,

    /// With --redis: how long an agent's claim holds without renewal, in
    /// seconds (it is renewed every third): a dead node's agents are free
    /// again within about this plus a third.
    #[arg(long, value_name = "SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    claim_lease: u64,

    /// With --redis: milliseconds a node leaves an agent to another node
    /// whose caller is ahead in the queue's shared line (its claim was
    /// refused); then it claims again without the check, so a caller the
    /// other node passes over never keeps the agent idle longer.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    line_yield: u64,

    /// Seconds from SIGTERM to exit: calls in progress may end by
    /// themselves for three quarters of it; at two fifths, callers still
    /// waiting in a queue keep their place as callbacks (and hear so); a
    /// container manager must wait at least this long before killing.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(4..=3600))]
    shutdown_grace: u64,

    /// TLS certificate chain (PEM), with --sips.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "certs/frontdesk.crt",
        requires = "sips"
    )]
    cert: PathBuf,

    /// TLS private key (PEM), with --sips.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "certs/frontdesk.key",
        requires = "sips"
    )]
    key: PathBuf,
}

impl RunArgs {
    fn into_config(self) -> Config {
        Config {
            dialplan: self.dialplan,
            sip: self.sip,
            http: self.http,
            rtp_ports: self.rtp_ports,
            data: self.data,
            admin_token: match self.admin_token {
                Some(token) => TokenSource::Given(token),
                None => TokenSource::Generate,
            },
            advertise: self.advertise,
            rtp_timeout: std::time::Duration::from_secs(self.rtp_timeout),
            strict_rtp: media::strict::StrictConfig {
                probation: self.rtp_probation,
                unconfirmed_budget: self.rtp_unconfirmed_budget,
            },
            rtp_quarantine: std::time::Duration::from_secs(self.rtp_quarantine),
            phone: crate::browser::PhoneConfig {
                hello_timeout: std::time::Duration::from_secs(self.phone_hello_timeout),
                handshake_timeout: std::time::Duration::from_secs(self.phone_handshake_timeout),
                idle_timeout: std::time::Duration::from_secs(self.phone_idle_timeout),
                away_after: std::time::Duration::from_secs(self.phone_away_after),
            },
            admission: sip::overload::AdmissionConfig {
                max_in_setup: self.max_calls_in_setup,
                target_lag: std::time::Duration::from_millis(self.overload_lag),
                max_rate: self.max_call_rate.max(1.0),
                min_rate: sip::overload::AdmissionConfig::default()
                    .min_rate
                    .min(self.max_call_rate.max(1.0)),
                retry_after: self.overload_retry_after,
                ..sip::overload::AdmissionConfig::default()
            },
            alerts: crate::app::journal::AlertConfig {
                webhook: self.alert_webhook,
                abandonment_rate: self.alert_abandonment / 100.0,
                ..crate::app::journal::AlertConfig::default()
            },
            log_patient_numbers: self.log_patient_numbers,
            digest_algorithms: self.digest_algorithms.0,
            cluster: match (&self.node_id, self.redis) {
                (Some(node), Some(redis)) => Some(crate::app::cluster::ClusterConfig {
                    node: node.clone(),
                    redis,
                    timeout: std::time::Duration::from_millis(self.cluster_timeout),
                    resync_every: std::time::Duration::from_secs(self.cluster_resync),
                    heartbeat_every: std::time::Duration::from_millis(self.cluster_heartbeat),
                }),
                _ => None,
            },
            node: self.node_id,
            journal: self.journal,
            claim_lease: std::time::Duration::from_secs(self.claim_lease),
            open_all_hours: false,
            line_yield: std::time::Duration::from_millis(self.line_yield),
            shutdown_grace: std::time::Duration::from_secs(self.shutdown_grace),
            webhook_poll: std::time::Duration::from_millis(self.webhook_poll),
            speech: crate::daemon::SpeechConfig {
                workers: usize::from(self.speech_workers),
                budget: usize::from(self.speech_budget),
            },
            sips: self.sips.map(|addr| SipsConfig {
                addr,
                cert: self.cert,
                key: self.key,
            }),
        }
    }
}

/// `--digest-algorithms`: a comma-separated list, no repeats.
#[derive(Debug, Clone)]
struct Algorithms(Vec<sip::digest::Algorithm>);

fn parse_algorithms(text: &str) -> Result<Algorithms, String> {
    let mut list = Vec::new();
    for name in text.split(',').map(str::trim) {
        let algorithm = match name.to_ascii_lowercase().as_str() {
            "md5" => sip::digest::Algorithm::Md5,
            "sha-256" | "sha256" => sip::digest::Algorithm::Sha256,
            other => return Err(format!("unknown digest algorithm `{other}` (md5, sha-256)")),
        };
        if list.contains(&algorithm) {
            return Err(format!("`{name}` is listed twice"));
        }
        list.push(algorithm);
    }
    Ok(Algorithms(list))
}

fn parse_token(text: &str) -> Result<AdminToken, String> {
    AdminToken::new(text).map_err(|error| error.to_string())
}

/// `--redis`: a `redis://` URL (TLS and sockets are not supported here).
fn parse_redis(text: &str) -> Result<String, String> {
    if !text.starts_with("redis://") {
        return Err("expected redis://host:port/db".into());
    }
    redis_url_ok(text)?;
    Ok(text.to_string())
}

fn redis_url_ok(text: &str) -> Result<(), String> {
    let rest = &text["redis://".len()..];
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() {
        return Err("the Redis URL names no host".into());
    }
    Ok(())
}

fn parse_advertise(text: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = text
        .parse()
        .map_err(|_| "expected an IP address, e.g. 192.0.2.10".to_string())?;
    if ip.is_unspecified() {
        return Err("the advertised address must be one peers can reach, not a wildcard".into());
    }
    Ok(ip)
}

/// Runs the daemon; exit 0 after SIGTERM or SIGINT, 1 when it cannot start
/// or a service fails.
pub fn run(args: RunArgs) -> ExitCode {
    let worker_nice = args.worker_nice;
    super::serve(
        daemon::run(args.into_config()),
        |error| Some(error),
        worker_nice,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let argv = std::iter::once("run").chain(args.iter().copied());
        Wrapper::try_parse_from(argv).map(|w| w.run.into_config())
    }

    #[test]
    fn the_defaults_are_those_of_the_design() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.dialplan, PathBuf::from("dialplans/clinic.toml"));
        assert_eq!(config.sip, "127.0.0.1:5060".parse().unwrap());
        assert_eq!(config.http, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.rtp_ports, "20000-29999".parse().unwrap());
        assert_eq!(config.data, PathBuf::from("var/"));
        // A token in the environment stands in for the flag.
        if std::env::var_os("FRONTDESK_ADMIN_TOKEN").is_none() {
            assert!(matches!(config.admin_token, TokenSource::Generate));
        }
        assert_eq!(config.advertise, None);
        assert_eq!(config.sips, None);
        assert_eq!(config.node, None);
    }

    #[test]
    fn every_flag_is_read() {
        let config = parse(&[
            "--dialplan",
            "x.toml",
            "--sip",
            "0.0.0.0:0",
            "--http",
            "[::1]:0",
            "--rtp-ports",
            "40000-40099",
            "--data",
            "/tmp/d",
            "--admin-token",
            "t0k",
            "--advertise",
            "192.0.2.10",
            "--sips",
            "0.0.0.0:5061",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
            "--node-id",
            "node-2",
        ])
        .unwrap();
        assert_eq!(config.dialplan, PathBuf::from("x.toml"));
        assert_eq!(config.sip, "0.0.0.0:0".parse().unwrap());
        assert_eq!(config.http, "[::1]:0".parse().unwrap());
        assert_eq!(config.rtp_ports.low(), 40000);
        assert_eq!(config.data, PathBuf::from("/tmp/d"));
        match config.admin_token {
            TokenSource::Given(token) => assert!(token.verify(b"t0k")),
            TokenSource::Generate => panic!("the token was given"),
        }
        assert_eq!(config.advertise, Some("192.0.2.10".parse().unwrap()));
        assert_eq!(config.node.as_ref().map(|n| n.as_str()), Some("node-2"));
        assert_eq!(
            config.sips,
            Some(SipsConfig {
                addr: "0.0.0.0:5061".parse().unwrap(),
                cert: "c.pem".into(),
                key: "k.pem".into(),
            })
        );
    }

    #[test]
    fn journal_takes_sqlite_or_postgres() {
        assert_eq!(parse(&[]).unwrap().journal, None);
        let config = parse(&["--journal", "sqlite:/srv/fd/journal.db"]).unwrap();
        assert_eq!(
            config.journal,
            Some(records::JournalLocation::Sqlite(
                "/srv/fd/journal.db".into()
            ))
        );
        let config = parse(&["--journal", "postgresql://fd:s3cret@10.0.0.5:5432/fd"]).unwrap();
        let shown = format!("{:?}", config.journal);
        assert!(shown.contains("fd:***@10.0.0.5"), "{shown}");
    }

    #[test]
    fn sips_takes_the_default_certificate_paths() {
        let config = parse(&["--sips", "127.0.0.1:5061"]).unwrap();
        let sips = config.sips.unwrap();
        assert_eq!(sips.cert, PathBuf::from("certs/frontdesk.crt"));
        assert_eq!(sips.key, PathBuf::from("certs/frontdesk.key"));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["--sip", "localhost"][..],
            &["--http", "127.0.0.1"],
            &["--rtp-ports", "20001-29999"],
            &["--rtp-ports", "100-200"],
            &["--admin-token", ""],
            &["--advertise", "0.0.0.0"],
            &["--advertise", "host.example"],
            &["--cert", "c.pem"],
            &["--key", "k.pem"],
            &["--node-id", ""],
            &["--node-id", "a:b"],
            &["--journal", "/var/lib/journal.db"],
            &["--journal", "sqlite:"],
            &["--journal", "postgres://a:b@h:port/db"],
            &["--redis", "redis://127.0.0.1:6379/"],
            &["--node-id", "a", "--redis", "http://x"],
            &["--node-id", "a", "--redis", "redis:///"],
            &[
                "--node-id",
                "a",
                "--redis",
                "redis://h/",
                "--cluster-resync",
                "0",
            ],
        ] {
            let error = parse(args).unwrap_err();
            assert_ne!(error.exit_code(), 0, "{args:?}");
        }
    }
}
