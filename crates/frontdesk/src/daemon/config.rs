//! What `frontdesk run` was asked to do, checked before anything binds.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use crate::http::AdminToken;

/// The daemon's configuration, built from the command line by `cli::run`.
#[derive(Debug)]
pub struct Config {
    /// The dialplan file to serve and to re-read on SIGHUP.
    pub dialplan: PathBuf,
    /// SIP over UDP and TCP, on the same address. Port 0 picks a free port.
    pub sip: SocketAddr,
    /// The admin HTTP API, metrics and dashboard. Port 0 picks a free port.
    pub http: SocketAddr,
    /// Ports for RTP (even) and RTCP (the odd port above).
    pub rtp_ports: RtpPorts,
    /// Where the daemon keeps its files (the call journal); created at start.
    pub data: PathBuf,
    /// The admin token, given or to be generated at start.
    pub admin_token: TokenSource,
    /// The address put in SDP and Contact when listening on `0.0.0.0`.
    pub advertise: Option<IpAddr>,
    /// RTP inactivity after which a call ends (`--rtp-timeout`).
    pub rtp_timeout: std::time::Duration,
    /// Strict RTP (`--rtp-probation`, `--rtp-unconfirmed-budget`).
    pub strict_rtp: media::strict::StrictConfig,
    /// How long a freed RTP port waits before it is leased again (`--rtp-quarantine`).
    pub rtp_quarantine: std::time::Duration,
    /// Admission control of new calls.
    pub admission: sip::overload::AdmissionConfig,
    /// Overload alerts.
    pub alerts: crate::app::journal::AlertConfig,
    /// Patients' numbers in full in the logs.
    pub log_patient_numbers: bool,
    /// The registrar's digest challenges, in order.
    pub digest_algorithms: Vec<sip::digest::Algorithm>,
    /// `--node-id`: this node's name in a cluster (`None`: a single node).
    pub node: Option<crate::app::node::NodeId>,
    /// `--journal`: where the call journal lives (`None`: `sqlite:` under
    /// `data`).
    pub journal: Option<records::JournalLocation>,
    /// `--redis` and the cluster's periods (needs `--node-id`).
    pub cluster: Option<crate::app::cluster::ClusterConfig>,
    /// `--claim-lease`: how long a claim holds unrenewed.
    pub claim_lease: std::time::Duration,
    /// The clinic is open at all hours, whatever the dialplan's hours say
    /// (`demo --open`; `run` never sets it).
    pub open_all_hours: bool,
    /// `--line-yield`: how long an agent is left to another node whose
    /// caller is ahead in the shared line.
    pub line_yield: std::time::Duration,
    /// `--shutdown-grace`: from SIGTERM to exit
    /// ([`crate::app::services::SHUTDOWN_GRACE`] by default).
    pub shutdown_grace: std::time::Duration,
    /// `--webhook-poll`: the webhooks' delivery service's idle period.
    pub webhook_poll: std::time::Duration,
    /// SIP over TLS, when `--sips` is given.
    pub sips: Option<SipsConfig>,
    /// The browser phone's timeouts (`--phone-*`).
    pub phone: crate::browser::PhoneConfig,
    /// `--speech-workers`, `--speech-budget`: the recogniser of speech menus.
    pub speech: crate::app::recogniser::SpeechConfig,
}

/// Where the admin token comes from.
#[derive(Debug)]
pub enum TokenSource {
    /// `--admin-token` or `FRONTDESK_ADMIN_TOKEN`.
    Given(AdminToken),
    /// None given: make a random one at start and print it once in the log.
    Generate,
}

/// `--sips ADDR --cert PATH --key PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipsConfig {
    /// Where SIP over TLS listens.
    pub addr: SocketAddr,
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// A range of UDP ports for media: RTP on each even port, RTCP on the odd
/// port above it (RFC 3550 §11), so the range starts on an even port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPorts {
    low: u16,
    high: u16,
}

impl RtpPorts {
    /// The lowest port, even.
    pub fn low(self) -> u16 {
        self.low
    }

    /// The highest port.
    pub fn high(self) -> u16 {
        self.high
    }

    /// How many RTP/RTCP pairs the range holds (each even port whose odd
    /// neighbour is in the range too): the most media streams at once.
    pub fn pairs(self) -> usize {
        usize::from(self.high - self.low).div_ceil(2)
    }
}

impl fmt::Display for RtpPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.low(), self.high())
    }
}

/// Why a `--rtp-ports` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpPortsError {
    /// Not two port numbers joined by `-`.
    #[error("expected LO-HI, e.g. 20000-29999")]
    Form,
    /// Below 1024: privileged ports, and where other services live.
    #[error("LO must be at least 1024")]
    Privileged,
    /// LO is not below HI.
    #[error("LO must be lower than HI")]
    Empty,
    /// An odd LO: RTP takes even ports, RTCP the odd port above.
    #[error("LO must be even (RTP takes the even port, RTCP the odd one above it)")]
    OddStart,
}

impl FromStr for RtpPorts {
    type Err = RtpPortsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (low, high) = text.trim().split_once('-').ok_or(RtpPortsError::Form)?;
        let low: u16 = low.trim().parse().map_err(|_| RtpPortsError::Form)?;
        let high: u16 = high.trim().parse().map_err(|_| RtpPortsError::Form)?;
        if low < 1024 {
            return Err(RtpPortsError::Privileged);
        }
        if low >= high {
            return Err(RtpPortsError::Empty);
        }
        if !low.is_multiple_of(2) {
            return Err(RtpPortsError::OddStart);
        }
        Ok(Self { low, high })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_range_holds_five_thousand_pairs() {
        let ports: RtpPorts = "20000-29999".parse().unwrap();
        assert_eq!((ports.low(), ports.high()), (20000, 29999));
        assert_eq!(ports.pairs(), 5000);
        assert_eq!(ports.to_string(), "20000-29999");
    }

    #[test]
    fn an_even_high_end_leaves_its_last_port_unused() {
        // 30000/30001 and 30002/30003; 30004 has no RTCP port.
        let ports: RtpPorts = "30000-30004".parse().unwrap();
        assert_eq!(ports.pairs(), 2);
        let smallest: RtpPorts = "30000-30001".parse().unwrap();
        assert_eq!(smallest.pairs(), 1);
    }

    #[test]
    fn malformed_ranges_are_refused_with_their_reason() {
        for (text, error) in [
            ("", RtpPortsError::Form),
            ("20000", RtpPortsError::Form),
            ("20000-", RtpPortsError::Form),
            ("a-b", RtpPortsError::Form),
            ("20000-70000", RtpPortsError::Form),
            ("-1-20", RtpPortsError::Form),
            ("80-90", RtpPortsError::Privileged),
            ("20000-20000", RtpPortsError::Empty),
            ("29999-20000", RtpPortsError::Empty),
            ("20001-29999", RtpPortsError::OddStart),
        ] {
            assert_eq!(text.parse::<RtpPorts>(), Err(error), "{text:?}");
        }
    }
}
