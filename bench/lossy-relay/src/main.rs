//! `lossy-relay`: a UDP relay that sits in front of frontdesk and loses,
//! delays and reorders SIP and RTP on purpose (README.md says how and why).
//!
//! ```text
//! lossy-relay --server 127.0.0.1:5060 [--listen 127.0.0.1:0] [--loss 0.05]
//!             [--jitter-ms 50] [--delay-ms 0] [--reorder 0] [--seed 1]
//!             [--scope both|media|signalling] [--idle-s 30] [--stats-every-s 0]
//! ```
//!
//! Prints `relay-listening ADDR` on standard output once it relays.

mod impair;
mod relay;
mod sip;

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use impair::Impairment;
use relay::{Config, Relay};

fn main() -> ExitCode {
    let config = match parse(std::env::args().skip(1).collect()) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("lossy-relay: {message}");
            eprintln!(
                "usage: lossy-relay --server ADDR [--listen ADDR] [--loss P] [--jitter-ms MS] \
                 [--delay-ms MS] [--reorder P] [--seed N] [--scope both|media|signalling] \
                 [--idle-s S] [--stats-every-s S]"
            );
            return ExitCode::from(2);
        }
    };
    let relay = match Relay::bind(config) {
        Ok(relay) => relay,
        Err(error) => {
            eprintln!("lossy-relay: cannot bind: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("relay-listening {}", relay.local_addr());
    let _ = std::io::stdout().flush();
    match relay.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("lossy-relay: {error}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: Vec<String>) -> Result<Config, String> {
    let mut server: Option<SocketAddr> = None;
    let mut listen: SocketAddr = "127.0.0.1:0".parse().map_err(|_| "default listen")?;
    let mut impairment = Impairment::default();
    let mut seed = 1;
    let mut scope = "both".to_string();
    let mut idle = Duration::from_secs(30);
    let mut stats_every = Duration::ZERO;
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |text: String| {
            text.parse::<f64>()
                .map_err(|_| format!("{flag}: not a number: {text}"))
        };
        match flag.as_str() {
            "--server" => server = Some(value()?.parse().map_err(|_| "--server: not an address")?),
            "--listen" => listen = value()?.parse().map_err(|_| "--listen: not an address")?,
            "--loss" => impairment.loss = share(&flag, number(value()?)?)?,
            "--reorder" => impairment.reorder = share(&flag, number(value()?)?)?,
            "--jitter-ms" => impairment.jitter = millis(&flag, number(value()?)?)?,
            "--delay-ms" => impairment.delay = millis(&flag, number(value()?)?)?,
            "--seed" => seed = value()?.parse().map_err(|_| "--seed: not an integer")?,
            "--scope" => scope = value()?,
            "--idle-s" => idle = millis(&flag, number(value()?)? * 1000.0)?,
            "--stats-every-s" => stats_every = millis(&flag, number(value()?)? * 1000.0)?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let (signalling, media) = match scope.as_str() {
        "both" => (impairment, impairment),
        "media" => (Impairment::default(), impairment),
        "signalling" => (impairment, Impairment::default()),
        other => return Err(format!("--scope: both, media or signalling, not {other}")),
    };
    Ok(Config {
        listen,
        server: server.ok_or("--server is required")?,
        signalling,
        media,
        seed,
        idle,
        stats_every,
    })
}

fn share(flag: &str, value: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{flag}: a share from 0 to 1, not {value}"))
    }
}

fn millis(flag: &str, value: f64) -> Result<Duration, String> {
    if value.is_finite() && (0.0..=3_600_000.0).contains(&value) {
        Ok(Duration::from_secs_f64(value / 1000.0))
    } else {
        Err(format!("{flag}: out of range: {value}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn flags() {
        let config = parse(args(
            "--server 127.0.0.1:5060 --loss 0.05 --jitter-ms 50 --seed 9 --scope media",
        ))
        .unwrap();
        assert_eq!(config.media.loss, 0.05);
        assert_eq!(config.media.jitter, Duration::from_millis(50));
        assert_eq!(config.signalling, Impairment::default());
        assert_eq!(config.seed, 9);
        assert!(parse(args("--loss 0.05")).is_err(), "no server");
        assert!(parse(args("--server 127.0.0.1:1 --loss 2")).is_err());
        assert!(parse(args("--server 127.0.0.1:1 --bogus 1")).is_err());
        assert!(parse(args("--server 127.0.0.1:1 --jitter-ms")).is_err());
    }
}
