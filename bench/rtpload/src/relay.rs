//! `rtpload relay`: bridged calls through an RTP relay (frontdesk or
//! rtpengine), 20 ms PCMU packets both ways on every call, with loss,
//! added latency and the relay's CPU.
//!
//! Two sockets play every call's two ends: the caller socket `C` and the
//! agent socket `A` (one socket per side for all calls, as the rtpengine
//! lab's generator does). Each packet's payload starts with a magic, the
//! call's index, the direction and the send time, so the receiving side
//! knows the packet's latency through the relay.
//!
//! How the relay's ports are learned:
//! - rtpengine: offer/answer over its NG control protocol, as the lab's
//!   `rtp_blast.py` does;
//! - frontdesk: the calls are set up by SIPp (callers whose SDP names `C`,
//!   agents whose SDP names `A`); frontdesk plays the emergency notice to
//!   `C`, so a packet from a new source port on `C` is a new call's caller
//!   leg, to which we start sending. Once frontdesk bridges the call, our
//!   packet comes out of the agent leg's port on `A`: that names the agent
//!   leg of that call, and `A` starts sending the other way.
//!
//! Packets are spread over the 20 ms of a frame (call `i` in the 1 ms slot
//! `i mod 20`), as independent phones would send them. The measurement
//! starts once every call is bridged (or at the set-up deadline, with the
//! calls that are) and lasts `--seconds`; a packet counts when it was sent
//! inside that window.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::batch::{Receiver, Sender, realtime_ns};
use crate::ng::NgClient;
use crate::stats::{Histogram, TICKS_PER_SECOND, process_ticks, udp_buffer_errors};

const MAGIC: &[u8; 4] = b"RTPL";
const PAYLOAD_LEN: usize = 160;
const SLOTS: usize = 20;

pub enum Target {
    Frontdesk { setup_timeout: Duration },
    Rtpengine { ng: SocketAddr },
}

pub struct RelayArgs {
    pub target: Target,
    pub calls: usize,
    pub seconds: Duration,
    pub caller: SocketAddr,
    pub agent: SocketAddr,
    pub pid: Option<u32>,
}

/// What both sides share: the relay's port of each call's legs (0 = not
/// known yet), and the measurement window in ns since the Unix epoch
/// (the clock of the kernel's receive timestamps).
struct Shared {
    relay_ip: IpAddr,
    caller_leg: Vec<AtomicU32>,
    agent_leg: Vec<AtomicU32>,
    callers_known: AtomicUsize,
    agents_known: AtomicUsize,
    /// Set by `run` when the measurement may begin, with its length in ns.
    measure_for: AtomicU64,
    /// Written by the sender only, before it sends the first packet of the
    /// window and before the first packet after it.
    window_start: AtomicU64,
    window_end: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn in_window(&self, sent_ns: u64) -> bool {
        let start = self.window_start.load(Ordering::Acquire);
        let end = self.window_end.load(Ordering::Acquire);
        start != 0 && sent_ns >= start && sent_ns < end
    }
}

struct Received {
    latency: [Histogram; 2],
    packets: [u64; 2],
}

pub fn run(args: RelayArgs) -> std::io::Result<()> {
    let caller = crate::bind(args.caller)?;
    let agent = crate::bind(args.agent)?;
    caller.set_read_timeout(Some(Duration::from_millis(50)))?;
    agent.set_read_timeout(Some(Duration::from_millis(50)))?;
    let shared = Arc::new(Shared {
        relay_ip: args.caller.ip(),
        caller_leg: (0..args.calls).map(|_| AtomicU32::new(0)).collect(),
        agent_leg: (0..args.calls).map(|_| AtomicU32::new(0)).collect(),
        callers_known: AtomicUsize::new(0),
        agents_known: AtomicUsize::new(0),
        measure_for: AtomicU64::new(0),
        window_start: AtomicU64::new(0),
        window_end: AtomicU64::new(u64::MAX),
        stop: AtomicBool::new(false),
    });

    let mut ng_calls = Vec::new();
    let discover = match &args.target {
        Target::Rtpengine { ng } => {
            let client = NgClient::new(*ng)?;
            let setup = Instant::now();
            for i in 0..args.calls {
                let (to_caller_side, to_agent_side) =
                    client.bridge(i, args.caller.port(), args.agent.port())?;
                shared.caller_leg[i].store(u32::from(to_caller_side), Ordering::Relaxed);
                shared.agent_leg[i].store(u32::from(to_agent_side), Ordering::Relaxed);
                ng_calls.push(i);
            }
            shared.callers_known.store(args.calls, Ordering::Relaxed);
            shared.agents_known.store(args.calls, Ordering::Relaxed);
            eprintln!(
                "rtpload: {} calls set up over NG in {:.2} s",
                args.calls,
                setup.elapsed().as_secs_f64()
            );
            false
        }
        Target::Frontdesk { .. } => true,
    };

    let receivers: Vec<_> = [(caller, 1u8), (agent, 0u8)]
        .into_iter()
        .map(|(socket, direction)| {
            let shared = Arc::clone(&shared);
            let sender = socket.try_clone().expect("clone a socket");
            let handle =
                std::thread::spawn(move || receive(&socket, direction, discover, &shared));
            (sender, handle)
        })
        .collect();
    let caller_sender = receivers[0].0.try_clone()?;
    let agent_sender = receivers[1].0.try_clone()?;

    let sending = {
        let shared = Arc::clone(&shared);
        let calls = args.calls;
        std::thread::spawn(move || send(&caller_sender, &agent_sender, calls, &shared))
    };

    // Wait until every call is bridged both ways (or the deadline).
    let deadline = match args.target {
        Target::Frontdesk { setup_timeout } => Instant::now() + setup_timeout,
        Target::Rtpengine { .. } => Instant::now() + Duration::from_secs(5),
    };
    let mut last_report = Instant::now();
    loop {
        let callers = shared.callers_known.load(Ordering::Relaxed);
        let agents = shared.agents_known.load(Ordering::Relaxed);
        if agents >= args.calls || Instant::now() >= deadline {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(2) {
            eprintln!("rtpload: caller legs {callers}, bridged {agents} of {}", args.calls);
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let bridged = shared.agents_known.load(Ordering::Relaxed);
    eprintln!("rtpload: {bridged} of {} calls bridged; settling 2 s", args.calls);
    std::thread::sleep(Duration::from_secs(2));

    shared
        .measure_for
        .store(args.seconds.as_nanos() as u64, Ordering::Release);
    while shared.window_start.load(Ordering::Acquire) == 0 {
        std::thread::sleep(Duration::from_micros(200));
    }
    let cpu_before = args.pid.and_then(process_ticks);
    let own_before = process_ticks(std::process::id());
    let errors_before = udp_buffer_errors();
    let started = Instant::now();
    while shared.window_end.load(Ordering::Acquire) == u64::MAX {
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = args.pid.and_then(process_ticks);
    let own_after = process_ticks(std::process::id());
    let errors_after = udp_buffer_errors();
    // Stragglers sent inside the window still count.
    std::thread::sleep(Duration::from_millis(500));
    shared.stop.store(true, Ordering::Relaxed);
    let (sent, late_slots, slots) = sending.join().expect("the sender");
    let mut latency = [Histogram::new(), Histogram::new()];
    let mut received = [0u64; 2];
    for (_, handle) in receivers {
        let outcome = handle.join().expect("a receiver");
        for d in 0..2 {
            latency[d].merge(&outcome.latency[d]);
            received[d] += outcome.packets[d];
        }
    }
    if let Target::Rtpengine { ng } = args.target {
        let client = NgClient::new(ng)?;
        for i in ng_calls {
            let _ = client.delete(i);
        }
    }
    let mut both = latency[0].clone();
    both.merge(&latency[1]);
    let sent_total = sent[0] + sent[1];
    let received_total = received[0] + received[1];
    let cpu = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(b), Some(a)) => format!(
            "{:.1}",
            100.0 * (a - b) as f64 / TICKS_PER_SECOND / elapsed
        ),
        _ => "null".to_string(),
    };
    println!(
        "{{\"target\":\"{}\",\"calls\":{},\"bridged\":{},\"seconds\":{:.2},\"sent\":{},\"received\":{},\
         \"sent_pps\":{:.0},\"relayed_pps\":{:.0},\"lost\":{},\"loss_pct\":{:.4},\
         \"caller_to_agent\":{{\"sent\":{},\"received\":{}}},\"agent_to_caller\":{{\"sent\":{},\"received\":{}}},\
         \"latency_us\":{},\"relay_cpu_pct\":{},\"generator_cpu_pct\":{},\"late_slots\":\"{}/{}\",\
         \"udp_rcvbuf_errors\":{},\"udp_sndbuf_errors\":{}}}",
        match args.target {
            Target::Frontdesk { .. } => "frontdesk",
            Target::Rtpengine { .. } => "rtpengine",
        },
        args.calls,
        bridged,
        elapsed,
        sent_total,
        received_total,
        sent_total as f64 / elapsed,
        received_total as f64 / elapsed,
        sent_total.saturating_sub(received_total),
        if sent_total > 0 {
            100.0 * sent_total.saturating_sub(received_total) as f64 / sent_total as f64
        } else {
            0.0
        },
        sent[0],
        received[0],
        sent[1],
        received[1],
        both.json(),
        cpu(cpu_before, cpu_after),
        cpu(own_before, own_after),
        late_slots,
        slots,
        errors_after.0 - errors_before.0,
        errors_after.1 - errors_before.1,
    );
    Ok(())
}

/// Datagrams stamped with one reading of the clock and sent with one
/// `sendmmsg`: small, so the stamp is at most a few µs early for the last
/// of them (which can only make the measured latency larger).
const STAMP_BATCH: usize = 16;

/// The sender: every 1 ms, the calls of that slot send one packet each way
/// (caller → relay's caller leg from `C`, agent → relay's agent leg from
/// `A`), once that leg's port is known. Returns packets sent inside the
/// window per direction, and the slots that started over 1 ms late.
fn send(caller: &UdpSocket, agent: &UdpSocket, calls: usize, shared: &Shared) -> ([u64; 2], u64, u64) {
    let mut template = vec![0xffu8; 12 + PAYLOAD_LEN];
    template[0] = 0x80;
    template[1] = 0; // PCMU
    template[12..16].copy_from_slice(MAGIC);
    let mut batch = Sender::new();
    let mut packets: Vec<Vec<u8>> = vec![template; STAMP_BATCH];
    let mut destinations: Vec<SocketAddrV4> = Vec::with_capacity(STAMP_BATCH);
    let IpAddr::V4(relay_ip) = shared.relay_ip else {
        panic!("IPv4 loopback only");
    };
    let mut sent = [0u64; 2];
    let mut late = 0u64;
    let mut slots = 0u64;
    let start = Instant::now();
    let slot = Duration::from_millis(1);
    let mut tick = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let due = start + slot * tick as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > slot {
            late += 1;
        }
        slots += 1;
        // The window opens and closes between two slots, never inside one.
        let measure_for = shared.measure_for.load(Ordering::Acquire);
        if measure_for != 0 {
            let now_ns = realtime_ns();
            let start = shared.window_start.load(Ordering::Relaxed);
            if start == 0 {
                shared.window_start.store(now_ns, Ordering::Release);
            } else if now_ns >= start + measure_for
                && shared.window_end.load(Ordering::Relaxed) == u64::MAX
            {
                shared.window_end.store(now_ns, Ordering::Release);
            }
        }
        let frame = tick / SLOTS as u64;
        let seq = (frame & 0xffff) as u16;
        let timestamp = (frame as u32).wrapping_mul(160);
        for (direction, socket, legs) in
            [(0u8, caller, &shared.caller_leg), (1u8, agent, &shared.agent_leg)]
        {
            let mut i = (tick % SLOTS as u64) as usize;
            while i < calls {
                destinations.clear();
                let mut calls_in_batch = [0usize; STAMP_BATCH];
                while i < calls && destinations.len() < STAMP_BATCH {
                    let port = legs[i].load(Ordering::Relaxed);
                    if port != 0 {
                        calls_in_batch[destinations.len()] = i;
                        destinations.push(SocketAddrV4::new(relay_ip, port as u16));
                    }
                    i += SLOTS;
                }
                if destinations.is_empty() {
                    continue;
                }
                let sent_ns = realtime_ns();
                for (k, packet) in packets.iter_mut().take(destinations.len()).enumerate() {
                    let call = calls_in_batch[k];
                    packet[2..4].copy_from_slice(&seq.to_be_bytes());
                    packet[4..8].copy_from_slice(&timestamp.to_be_bytes());
                    let ssrc = (call as u32) * 2 + u32::from(direction) + 0x1000;
                    packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
                    packet[16..20].copy_from_slice(&(call as u32).to_be_bytes());
                    packet[20] = direction;
                    packet[21..29].copy_from_slice(&sent_ns.to_be_bytes());
                }
                let done = batch.send(socket, &packets[..destinations.len()], &destinations);
                if shared.in_window(sent_ns) {
                    sent[usize::from(direction)] += done as u64;
                }
            }
        }
        tick += 1;
    }
    (sent, late, slots)
}

/// A receiving side. `direction` is what arrives here: 0 (caller → agent)
/// on `A`, 1 (agent → caller) on `C`. With `discover`, a packet that is not
/// ours on `C` names a new caller leg, and our direction-0 packet on `A`
/// names the agent leg of its call. Latency = the kernel's arrival stamp −
/// the send stamp in the payload.
fn receive(socket: &UdpSocket, direction: u8, discover: bool, shared: &Shared) -> Received {
    let mut outcome = Received {
        latency: [Histogram::new(), Histogram::new()],
        packets: [0; 2],
    };
    let mut callers: HashMap<u16, usize> = HashMap::new();
    let mut receiver = Receiver::new(socket).expect("kernel timestamps");
    while !shared.stop.load(Ordering::Relaxed) {
        let count = receiver.receive(socket, |datagram| {
            let buffer = datagram.bytes;
            let source = datagram.source;
            let ours = buffer.len() >= 12 + 17 && &buffer[12..16] == MAGIC;
            if !ours {
                // A prompt from a caller leg we do not know yet.
                if discover && direction == 1 && !callers.contains_key(&source.port()) {
                    let index = shared.callers_known.load(Ordering::Relaxed);
                    if index < shared.caller_leg.len() {
                        callers.insert(source.port(), index);
                        shared.caller_leg[index].store(u32::from(source.port()), Ordering::Relaxed);
                        shared.callers_known.store(index + 1, Ordering::Relaxed);
                    }
                }
                return;
            }
            let call = u32::from_be_bytes(buffer[16..20].try_into().expect("4 bytes")) as usize;
            let came = buffer[20];
            let sent_ns = u64::from_be_bytes(buffer[21..29].try_into().expect("8 bytes"));
            if came != direction || call >= shared.agent_leg.len() {
                return;
            }
            if discover && direction == 0 && shared.agent_leg[call].load(Ordering::Relaxed) == 0 {
                shared.agent_leg[call].store(u32::from(source.port()), Ordering::Relaxed);
                shared.agents_known.fetch_add(1, Ordering::Relaxed);
            }
            if shared.in_window(sent_ns) {
                outcome.packets[usize::from(direction)] += 1;
                outcome.latency[usize::from(direction)]
                    .record(datagram.arrival_ns.saturating_sub(sent_ns) / 1000);
            }
        });
        // Few waiting: let more gather (the kernel stamps arrivals, so
        // draining late does not change the measured latency).
        if count < 8 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    outcome
}
