//! RTP load for frontdesk's benchmarks (loopback only, bounded).
//!
//! ```text
//! rtpload sink  --listen 127.0.0.1:40000 [--sockets 4] --warmup 12 --seconds 10
//!     receives prompt streams (one socket for many calls) and prints their
//!     pacing: inter-arrival deviation from 20 ms, loss, streams (JSON)
//! rtpload relay --frontdesk --calls 1000 --seconds 10 --caller 127.0.0.1:40000
//!               --agent 127.0.0.1:40100 [--setup-timeout 60] [--pid PID]
//! rtpload relay --rtpengine 127.0.0.1:2223 --calls 1000 --seconds 10 ...
//!     20 ms PCMU both ways on every bridged call through the relay; prints
//!     loss, added latency and the relay's CPU (JSON)
//! ```
//! See `relay` and `sink` for what is measured, and bench/README.md.

mod batch;
mod ng;
mod relay;
mod sink;
mod stats;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// A UDP socket with 8 MiB buffers (the kernel caps them at
/// net.core.rmem_max / wmem_max).
pub fn bind(address: SocketAddr) -> std::io::Result<UdpSocket> {
    if !address.ip().is_loopback() {
        return Err(std::io::Error::other("rtpload: loopback addresses only"));
    }
    let socket = Socket::new(Domain::for_address(address), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_recv_buffer_size(8 << 20)?;
    socket.set_send_buffer_size(8 << 20)?;
    socket.bind(&address.into())?;
    Ok(socket.into())
}

struct Args(Vec<String>);

impl Args {
    fn value(&self, name: &str) -> Option<&str> {
        let at = self.0.iter().position(|a| a == name)?;
        self.0.get(at + 1).map(String::as_str)
    }

    fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }

    fn parse<T: std::str::FromStr>(&self, name: &str, default: Option<T>) -> T {
        match self.value(name) {
            Some(text) => text
                .parse()
                .unwrap_or_else(|_| fail(&format!("{name}: cannot read {text:?}"))),
            None => default.unwrap_or_else(|| fail(&format!("{name} is required"))),
        }
    }
}

fn fail(message: &str) -> ! {
    eprintln!("rtpload: {message}");
    std::process::exit(2)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = argv.first().cloned() else {
        fail("usage: rtpload sink|relay ... (see the source's doc comment)");
    };
    let args = Args(argv[1..].to_vec());
    let seconds: u64 = args.parse("--seconds", Some(10));
    if seconds == 0 || seconds > 120 {
        fail("--seconds must be 1..120 (runs stay bounded)");
    }
    let result = match command.as_str() {
        "sink" => {
            let sockets: usize = args.parse("--sockets", Some(1));
            if sockets == 0 || sockets > 64 {
                fail("--sockets must be 1..64");
            }
            let warmup: u64 = args.parse("--warmup", Some(0));
            if warmup > 300 {
                fail("--warmup must be at most 300 s");
            }
            sink::run(sink::SinkArgs {
                listen: args.parse("--listen", None),
                sockets,
                warmup: Duration::from_secs(warmup),
                seconds: Duration::from_secs(seconds),
                ptime: Duration::from_millis(20),
            })
        }
        "relay" => {
            let calls: usize = args.parse("--calls", None);
            if calls == 0 || calls > 10_000 {
                fail("--calls must be 1..10000");
            }
            let target = if args.flag("--frontdesk") {
                let setup: u64 = args.parse("--setup-timeout", Some(60));
                if setup > 300 {
                    fail("--setup-timeout must be at most 300 s");
                }
                relay::Target::Frontdesk {
                    setup_timeout: Duration::from_secs(setup),
                }
            } else if let Some(ng) = args.value("--rtpengine") {
                relay::Target::Rtpengine {
                    ng: ng
                        .parse()
                        .unwrap_or_else(|_| fail("--rtpengine: an address, e.g. 127.0.0.1:2223")),
                }
            } else {
                fail("relay needs --frontdesk or --rtpengine ADDR");
            };
            relay::run(relay::RelayArgs {
                target,
                calls,
                seconds: Duration::from_secs(seconds),
                caller: args.parse("--caller", None),
                agent: args.parse("--agent", None),
                pid: args.value("--pid").and_then(|p| p.parse().ok()),
            })
        }
        other => fail(&format!("unknown command {other:?}")),
    };
    if let Err(error) = result {
        fail(&error.to_string());
    }
}
