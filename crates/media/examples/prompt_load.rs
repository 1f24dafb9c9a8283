//! Load check for issue 6: N concurrent calls, each a media task playing a
//! looped prompt, received on loopback by a receiver of our own that
//! measures pacing jitter. For each stream, a packet's offset is
//! `(arrival − first arrival) − (timestamp − first timestamp) / 8 kHz`, and
//! its pacing error is the distance from the stream's median offset: drift
//! and jitter together, without the constant delay of the 1 ms timer wheel
//! (the first packet goes out at once, the others on timer ticks).
//!
//! `cargo run --release -p media --example prompt_load -- [CALLS] [SECONDS]`
//! (defaults 2000 and 10). Prints packet counts, error percentiles and the
//! process's CPU time.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use media::codec::Codec;
use media::driver::{PortPool, PortRange, spawn_media_task};
use media::playback::{PlaybackId, PlaybackMode};
use media::prompt::Prompt;
use media::sdp::NegotiatedMedia;
use media::session::{Leg, SessionConfig};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Receiving threads (each with its socket); one alone cannot drain 100,000 packets/s.
const RECEIVERS: usize = 2;

fn main() {
    let mut args = std::env::args().skip(1);
    let calls: usize = args
        .next()
        .and_then(|text| text.parse().ok())
        .unwrap_or(2000);
    let seconds: u64 = args.next().and_then(|text| text.parse().ok()).unwrap_or(10);

    let measure_for = Duration::from_secs(seconds);
    let mut receiver_addresses = Vec::new();
    let mut receiving = Vec::new();
    for _ in 0..RECEIVERS {
        let receiver = UdpSocket::bind((LOOPBACK, 0)).expect("bind a receiver");
        receiver
            .set_read_timeout(Some(Duration::from_millis(500)))
            .expect("set a read timeout");
        receiver_addresses.push(receiver.local_addr().expect("receiver address"));
        receiving.push(std::thread::spawn(move || {
            receive(&receiver, measure_for + Duration::from_secs(1))
        }));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let cpu_before = cpu_time();
    runtime.block_on(async move {
        let pool = PortPool::new(
            LOOPBACK,
            PortRange::new(30_000, 39_999).expect("a valid range"),
        );
        let samples: Vec<i16> = (0..8000).map(|n| (((n % 40) as i16) - 20) * 400).collect();
        let prompt = Arc::new(Prompt::from_samples("hold", &samples).expect("a prompt"));
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::with_capacity(calls);
        for call in 0..calls {
            // Calls start spread over one 20 ms frame, as real calls would be.
            tokio::time::sleep_until(
                start + Duration::from_micros((call as u64 * 20_000) / calls as u64),
            )
            .await;
            let lease = pool.allocate().expect("a port");
            let media = NegotiatedMedia::static_g711(
                Codec::Pcmu,
                Some(receiver_addresses[call % RECEIVERS]),
                None,
            );
            let config = SessionConfig {
                inactivity_timeout: None,
                ..SessionConfig::default()
            };
            let task = spawn_media_task(config, Leg::Caller, lease, media);
            task.handle
                .play(
                    Leg::Caller,
                    PlaybackId(1),
                    vec![Arc::clone(&prompt)],
                    PlaybackMode::Loop,
                    false,
                )
                .expect("the task runs");
            tasks.push(task);
        }
        tokio::time::sleep_until(start + measure_for).await;
        for task in tasks {
            drop(task.handle);
            let _ = task.join.await;
        }
    });
    let cpu = cpu_time() - cpu_before;
    let (mut received, mut streams, mut errors) = (0, 0, Vec::new());
    for thread in receiving {
        let (count, seen, mut measured) = thread.join().expect("a receiver");
        received += count;
        streams += seen;
        errors.append(&mut measured);
    }
    errors.sort_unstable();
    let percentile = |p: f64| {
        errors
            .get(((errors.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0)
    };
    let expected = calls as u64 * seconds * 50;
    println!("calls {calls}, {seconds} s, streams seen {streams}");
    println!("packets received {received} (about {expected} expected)");
    println!(
        "pacing error µs: p50 {} p90 {} p99 {} p99.9 {} max {}",
        percentile(0.5),
        percentile(0.9),
        percentile(0.99),
        percentile(0.999),
        errors.last().copied().unwrap_or(0)
    );
    println!(
        "process CPU {:.2} s over {seconds} s wall ({:.0} % of one core)",
        cpu.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / seconds as f64
    );
}

/// Receives until `duration` has passed with packets, returns (packets, streams, error µs per packet).
fn receive(socket: &UdpSocket, duration: Duration) -> (u64, usize, Vec<u32>) {
    let mut first: HashMap<(SocketAddr, u32), (Instant, u32, usize)> = HashMap::new();
    let mut offsets: Vec<Vec<f64>> = Vec::new();
    let mut buffer = [0u8; 1500];
    let mut received = 0u64;
    let mut started: Option<Instant> = None;
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buffer) else {
            if started.is_some() {
                break;
            }
            continue;
        };
        let now = Instant::now();
        let started_at = *started.get_or_insert(now);
        if now - started_at > duration {
            break;
        }
        let Ok(packet) = rtp_rs::RtpReader::new(&buffer[..len]) else {
            continue;
        };
        received += 1;
        let streams = offsets.len();
        let (arrival, timestamp, stream) =
            *first
                .entry((from, packet.ssrc()))
                .or_insert((now, packet.timestamp(), streams));
        if stream == offsets.len() {
            offsets.push(Vec::new());
        }
        let media = f64::from(packet.timestamp().wrapping_sub(timestamp)) / 8000.0;
        offsets[stream].push((now - arrival).as_secs_f64() - media);
    }
    let errors = offsets
        .iter()
        .flat_map(|stream| {
            let mut sorted = stream.clone();
            sorted.sort_by(f64::total_cmp);
            let median = sorted[sorted.len() / 2];
            stream
                .iter()
                .map(move |offset| ((offset - median).abs() * 1e6) as u32)
        })
        .collect();
    (received, first.len(), errors)
}

/// User + system CPU time of this process (Linux `/proc/self/stat`).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|index| fields.get(*index)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}
