//! `rtpload sink`: receives the prompt streams of many calls on a few
//! sockets and measures their pacing.
//!
//! A stream is (source address, SSRC). For two packets of a stream that
//! follow each other (sequence number + 1) inside one talkspurt (the later
//! one has no marker bit), the inter-arrival deviation is
//! `|arrival gap − 20 ms|`. Gaps across a talkspurt boundary (the silence
//! between two prompts, a menu waiting for a key) are not pacing and are
//! left out. Sequence gaps count as lost packets. Only packets that arrive
//! inside the measurement window (after `--warmup`, for `--seconds`) count.
//! Arrival times are the kernel's receive timestamps (`SO_TIMESTAMPNS`):
//! when frontdesk's send put the datagram in our socket, however late this
//! program reads it.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::batch::{Receiver, realtime_ns};
use crate::stats::{Histogram, udp_buffer_errors};

pub struct SinkArgs {
    pub listen: SocketAddr,
    pub sockets: usize,
    pub warmup: Duration,
    pub seconds: Duration,
    pub ptime: Duration,
}

#[derive(Default)]
struct Stream {
    last_seq: u16,
    /// Kernel arrival stamp, ns since the Unix epoch.
    last_arrival: Option<u64>,
}

struct Outcome {
    deviation: Histogram,
    packets: u64,
    lost: u64,
    streams: usize,
    late_5ms: u64,
}

pub fn run(args: SinkArgs) -> std::io::Result<()> {
    let mut sockets = Vec::new();
    for k in 0..args.sockets {
        let address = SocketAddr::new(args.listen.ip(), args.listen.port() + 2 * k as u16);
        let socket = crate::bind(address)?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        sockets.push(socket);
    }
    let start = realtime_ns();
    let window = (
        start + args.warmup.as_nanos() as u64,
        start + (args.warmup + args.seconds).as_nanos() as u64,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = sockets
        .into_iter()
        .map(|socket| {
            let stop = Arc::clone(&stop);
            let ptime = args.ptime;
            std::thread::spawn(move || receive(&socket, window, ptime, &stop))
        })
        .collect();
    std::thread::sleep(args.warmup);
    let errors_before = udp_buffer_errors();
    std::thread::sleep(args.seconds);
    let errors_after = udp_buffer_errors();
    stop.store(true, Ordering::Relaxed);
    let mut total = Outcome {
        deviation: Histogram::new(),
        packets: 0,
        lost: 0,
        streams: 0,
        late_5ms: 0,
    };
    for thread in threads {
        let outcome = thread.join().expect("a receiver thread");
        total.deviation.merge(&outcome.deviation);
        total.packets += outcome.packets;
        total.lost += outcome.lost;
        total.streams += outcome.streams;
        total.late_5ms += outcome.late_5ms;
    }
    let expected = total.streams as f64 * args.seconds.as_secs_f64() / args.ptime.as_secs_f64();
    println!(
        "{{\"streams\":{},\"seconds\":{},\"packets\":{},\"packets_per_s\":{:.0},\"expected_approx\":{:.0},\
         \"lost\":{},\"loss_pct\":{:.3},\"interarrival_deviation_us\":{},\"gaps_over_5ms_late\":{},\
         \"udp_rcvbuf_errors\":{},\"udp_sndbuf_errors\":{}}}",
        total.streams,
        args.seconds.as_secs(),
        total.packets,
        total.packets as f64 / args.seconds.as_secs_f64(),
        expected,
        total.lost,
        if total.packets + total.lost > 0 {
            100.0 * total.lost as f64 / (total.packets + total.lost) as f64
        } else {
            0.0
        },
        total.deviation.json(),
        total.late_5ms,
        errors_after.0 - errors_before.0,
        errors_after.1 - errors_before.1,
    );
    Ok(())
}

fn receive(
    socket: &UdpSocket,
    (from, until): (u64, u64),
    ptime: Duration,
    stop: &AtomicBool,
) -> Outcome {
    let mut streams: HashMap<(SocketAddr, u32), Stream> = HashMap::new();
    let mut outcome = Outcome {
        deviation: Histogram::new(),
        packets: 0,
        lost: 0,
        streams: 0,
        late_5ms: 0,
    };
    let mut seen_in_window: std::collections::HashSet<(SocketAddr, u32)> = Default::default();
    let mut receiver = Receiver::new(socket).expect("kernel timestamps");
    let ptime_us = ptime.as_micros() as i64;
    while !stop.load(Ordering::Relaxed) {
        let count = receiver.receive(socket, |datagram| {
            let buffer = datagram.bytes;
            let now = datagram.arrival_ns;
            if buffer.len() < 12 || buffer[0] >> 6 != 2 {
                return;
            }
            let marker = buffer[1] & 0x80 != 0;
            let seq = u16::from_be_bytes([buffer[2], buffer[3]]);
            let ssrc = u32::from_be_bytes([buffer[8], buffer[9], buffer[10], buffer[11]]);
            let key = (datagram.source, ssrc);
            let stream = streams.entry(key).or_default();
            let inside = now >= from && now < until;
            if let Some(last) = stream.last_arrival {
                let step = seq.wrapping_sub(stream.last_seq);
                if inside && last >= from {
                    if step == 1 && !marker {
                        let gap = (now.saturating_sub(last) / 1000) as i64;
                        let deviation = (gap - ptime_us).unsigned_abs();
                        outcome.deviation.record(deviation);
                        if gap - ptime_us > 5_000 {
                            outcome.late_5ms += 1;
                        }
                    } else if step > 1 && step < 1000 && !marker {
                        outcome.lost += u64::from(step - 1);
                    }
                }
            }
            stream.last_seq = seq;
            stream.last_arrival = Some(now);
            if inside {
                outcome.packets += 1;
                seen_in_window.insert(key);
            }
        });
        // Few waiting: let more gather (the kernel stamps arrivals, so
        // draining late does not change what is measured).
        if count < 8 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    outcome.streams = seen_in_window.len();
    outcome
}
