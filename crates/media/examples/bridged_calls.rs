//! CPU per bridged call, an SRTP caller against a plain one (issue 12): N
//! calls in this process, each a media task with a caller leg and a plain
//! agent leg bridged, for T seconds; phones of our own on loopback send 20 ms
//! G.711 packets both ways (the caller's SRTP-protected with its key when
//! `--srtp`, and decrypted and counted when they come back).
//!
//! The media tasks run on one thread (a current-thread runtime) and the
//! phones on another, so the relay's CPU time is read alone from the
//! kernel's per-thread counters (`/proc/thread-self/schedstat`, in ns),
//! over the measured window only (after set-up and one second of warm-up).
//!
//! `cargo run --release -p media --example bridged_calls -- [--srtp] [CALLS] [SECONDS]`
//! (defaults 100 calls, 20 s).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use media::codec::Codec;
use media::driver::{MediaHandle, PortPool, PortRange, spawn_media_task};
use media::sdp::{NegotiatedMedia, SrtpParameters};
use media::session::{Leg, SessionConfig};
use media::srtp::{CryptoSuite, MasterKey, SrtpReceiver, SrtpSender};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const SUITE: CryptoSuite = CryptoSuite::AesCm128HmacSha1_80;
const WARM_UP: Duration = Duration::from_secs(1);

/// One call's phones.
struct Phones {
    caller: UdpSocket,
    agent: UdpSocket,
    /// Where the media task listens for each leg.
    caller_leg: SocketAddr,
    agent_leg: SocketAddr,
    /// The caller phone's SRTP: its key out, ours in.
    srtp: Option<(SrtpSender, SrtpReceiver)>,
    sequence: u16,
}

#[derive(Default, Debug)]
struct Counts {
    sent: u64,
    agent_received: u64,
    caller_received: u64,
    caller_decrypted: u64,
    caller_refused: u64,
}

fn keys(call: usize) -> (MasterKey, MasterKey) {
    let ours: [u8; 30] = std::array::from_fn(|n| (n + call) as u8);
    let phones: [u8; 30] = std::array::from_fn(|n| (n * 7 + call) as u8 ^ 0xA5);
    (
        MasterKey::from_key_and_salt(&ours).expect("30 octets"),
        MasterKey::from_key_and_salt(&phones).expect("30 octets"),
    )
}

fn main() {
    let mut srtp = false;
    let mut numbers = Vec::new();
    for arg in std::env::args().skip(1) {
        if arg == "--srtp" {
            srtp = true;
        } else if let Ok(number) = arg.parse::<u64>() {
            numbers.push(number);
        }
    }
    let calls = numbers.first().copied().unwrap_or(100) as usize;
    let seconds = numbers.get(1).copied().unwrap_or(20);

    // The phones first: their addresses go into the legs' media.
    let mut phones: Vec<Phones> = (0..calls)
        .map(|call| {
            let bind = || {
                let socket = UdpSocket::bind((LOOPBACK, 0)).expect("bind a phone");
                socket.set_nonblocking(true).expect("non-blocking");
                socket
            };
            let (ours, phones_key) = keys(call);
            Phones {
                caller: bind(),
                agent: bind(),
                caller_leg: SocketAddr::new(LOOPBACK, 0),
                agent_leg: SocketAddr::new(LOOPBACK, 0),
                srtp: srtp.then(|| {
                    (
                        SrtpSender::new(SUITE, &phones_key),
                        SrtpReceiver::new(SUITE, &ours),
                    )
                }),
                sequence: 0,
            }
        })
        .collect();
    let addresses: Vec<(SocketAddr, SocketAddr)> = phones
        .iter()
        .map(|p| {
            (
                p.caller.local_addr().expect("address"),
                p.agent.local_addr().expect("address"),
            )
        })
        .collect();

    // The relay thread: all media tasks on one current-thread runtime.
    let (ready_tx, ready_rx) = mpsc::channel();
    let (cpu_tx, cpu_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let measure = Arc::new(AtomicBool::new(false));
    let relay = {
        let stop = Arc::clone(&stop);
        let measure = Arc::clone(&measure);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let pool = PortPool::new(LOOPBACK, PortRange::new(40_000, 49_999).expect("range"));
                let mut handles: Vec<MediaHandle> = Vec::new();
                let mut legs = Vec::new();
                for (call, (caller, agent)) in addresses.iter().enumerate() {
                    let caller_lease = pool.allocate().expect("a port");
                    let agent_lease = pool.allocate().expect("a port");
                    legs.push((caller_lease.local_addr(), agent_lease.local_addr()));
                    let mut caller_media =
                        NegotiatedMedia::static_g711(Codec::Pcmu, Some(*caller), Some(101));
                    if srtp {
                        let (ours, phones) = keys(call);
                        caller_media.srtp = Some(SrtpParameters {
                            suite: SUITE,
                            tag: 1,
                            local_key: ours,
                            remote_key: phones,
                            remote_lifetime: None,
                            remote_mki: None,
                        });
                    }
                    let agent_media =
                        NegotiatedMedia::static_g711(Codec::Pcmu, Some(*agent), Some(101));
                    let task = spawn_media_task(
                        SessionConfig::default(),
                        Leg::Caller,
                        caller_lease,
                        caller_media,
                    );
                    task.handle
                        .add_leg(Leg::Agent, agent_lease, agent_media)
                        .expect("task running");
                    task.handle.bridge().expect("task running");
                    handles.push(task.handle);
                }
                ready_tx.send(legs).expect("main waits");
                // Measure this thread's CPU over the window main decides.
                while !measure.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let before = thread_cpu();
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                cpu_tx.send(thread_cpu() - before).expect("main waits");
                drop(handles);
            });
        })
    };
    let legs = ready_rx.recv().expect("the relay thread set up");
    for (phone, (caller_leg, agent_leg)) in phones.iter_mut().zip(legs) {
        phone.caller_leg = caller_leg;
        phone.agent_leg = agent_leg;
    }

    // The phones' loop on this thread: a packet each way per call every 20 ms.
    let mut counts = Counts::default();
    let start = Instant::now();
    let end = start + WARM_UP + Duration::from_secs(seconds);
    let mut measuring_since = None;
    let mut tick = start;
    let mut buffer = [0u8; 1500];
    let mut plain = [0u8; 1500];
    while Instant::now() < end {
        if measuring_since.is_none() && Instant::now() >= start + WARM_UP {
            measure.store(true, Ordering::Relaxed);
            measuring_since = Some((Instant::now(), thread_cpu()));
            counts = Counts::default();
        }
        for phone in &mut phones {
            phone.sequence = phone.sequence.wrapping_add(1);
            let mut packet = [0x55u8; 172 + 16];
            packet[..12].fill(0);
            packet[0] = 0x80;
            packet[2..4].copy_from_slice(&phone.sequence.to_be_bytes());
            packet[4..8].copy_from_slice(&(160 * u32::from(phone.sequence)).to_be_bytes());
            packet[8..12].copy_from_slice(&0xA6E7u32.to_be_bytes());
            let _ = phone.agent.send_to(&packet[..172], phone.agent_leg);
            packet[8..12].copy_from_slice(&0xCA11u32.to_be_bytes());
            let len = match phone.srtp.as_mut() {
                Some((sender, _)) => sender.protect(&mut packet, 172).expect("room"),
                None => 172,
            };
            let _ = phone.caller.send_to(&packet[..len], phone.caller_leg);
            counts.sent += 2;
        }
        tick += Duration::from_millis(20);
        // Read what came back until the next tick.
        while Instant::now() < tick {
            let mut idle = true;
            for phone in &mut phones {
                while let Ok(len) = phone.agent.recv(&mut buffer) {
                    counts.agent_received += u64::from(len == 172);
                    idle = false;
                }
                while let Ok(len) = phone.caller.recv(&mut buffer) {
                    idle = false;
                    counts.caller_received += 1;
                    match phone.srtp.as_mut() {
                        Some((_, receiver)) => match receiver.unprotect(&buffer[..len], &mut plain)
                        {
                            Ok(_) => counts.caller_decrypted += 1,
                            Err(_) => counts.caller_refused += 1,
                        },
                        None => counts.caller_decrypted += u64::from(len == 172),
                    }
                }
            }
            if idle {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let relay_cpu = cpu_rx.recv().expect("the relay thread measured");
    let (since, phones_cpu_before) = measuring_since.expect("measured");
    let wall = since.elapsed();
    let phones_cpu = thread_cpu() - phones_cpu_before;
    relay.join().expect("the relay thread");

    let per_call_ms_per_s = relay_cpu.as_secs_f64() * 1000.0 / wall.as_secs_f64() / calls as f64;
    println!(
        "mode={} calls={calls} window={:.1}s relay_cpu={:.3}s ({:.1} % of one core) \
         per_call={:.3} ms CPU per call-second ({:.3} % of a core per call) \
         phones_cpu={:.3}s sent={} agent_received={} caller_received={} caller_decrypted={} caller_refused={}",
        if srtp { "srtp" } else { "plain" },
        wall.as_secs_f64(),
        relay_cpu.as_secs_f64(),
        100.0 * relay_cpu.as_secs_f64() / wall.as_secs_f64(),
        per_call_ms_per_s,
        per_call_ms_per_s / 10.0,
        phones_cpu.as_secs_f64(),
        counts.sent,
        counts.agent_received,
        counts.caller_received,
        counts.caller_decrypted,
        counts.caller_refused,
    );
}

/// CPU time of the calling thread: `/proc/thread-self/schedstat` (ns on
/// the CPU), else user + system ticks of `/proc/thread-self/stat`.
fn thread_cpu() -> Duration {
    if let Ok(text) = std::fs::read_to_string("/proc/thread-self/schedstat")
        && let Some(ns) = text.split_whitespace().next().and_then(|n| n.parse().ok())
    {
        return Duration::from_nanos(ns);
    }
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&n| fields.get(n).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}
