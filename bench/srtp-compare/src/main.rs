//! Interop and allocation check for the three SRTP implementations.
//!
//! `cargo run --release` (no arguments):
//! 1. protects the same 2,000 packets (sequence 64,000 to 463, so across
//!    a rollover) with each implementation and compares the SRTP packets
//!    byte for byte; then unprotects each one's output with the other two;
//! 2. replays one packet to each receiver as configured by default;
//! 3. counts heap allocations per packet through this binary's global
//!    allocator, in the steady state (after the first packets have set up
//!    the stream's state). libsrtp is C: its own `malloc` calls bypass the
//!    Rust allocator, so for it (and as a cross-check for all) run
//!    `alloc-probe`, below, under valgrind at two packet counts and take the
//!    difference: `valgrind ./srtp-compare alloc-probe libsrtp protect 1000`
//!    then `... 2000`; "total heap usage" grows by allocations per packet
//!    × 1000.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use srtp_compare::*;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

const FIRST: u16 = 64_000;
const PACKETS: u16 = 2_000;

fn sequences() -> impl Iterator<Item = u16> {
    (0..PACKETS).map(|n| FIRST.wrapping_add(n))
}

fn ours_protect_all() -> Vec<Vec<u8>> {
    let mut sender = ours_sender();
    sequences()
        .map(|sequence| {
            let mut buffer = [0u8; 1500];
            buffer[..PACKET_LEN].copy_from_slice(&packet(sequence, SSRC));
            let len = sender.protect(&mut buffer, PACKET_LEN).unwrap();
            buffer[..len].to_vec()
        })
        .collect()
}

fn webrtc_protect_all() -> Vec<Vec<u8>> {
    let mut context = webrtc_context();
    sequences()
        .map(|sequence| {
            context
                .encrypt_rtp(&packet(sequence, SSRC))
                .unwrap()
                .to_vec()
        })
        .collect()
}

fn libsrtp_protect_all() -> Vec<Vec<u8>> {
    let mut session = libsrtp_sender();
    sequences()
        .map(|sequence| {
            let mut wire = packet(sequence, SSRC).to_vec();
            session.protect(&mut wire).unwrap();
            wire
        })
        .collect()
}

type Unprotect = Box<dyn FnMut(&[u8]) -> Result<Vec<u8>, String>>;

fn ours_unprotect() -> Unprotect {
    let mut receiver = ours_receiver();
    Box::new(move |wire| {
        let mut out = [0u8; 1500];
        let len = receiver
            .unprotect(wire, &mut out)
            .map_err(|e| format!("{e:?}"))?;
        Ok(out[..len].to_vec())
    })
}

fn webrtc_unprotect(replay: bool) -> Unprotect {
    let mut context = if replay {
        webrtc_context_with_replay()
    } else {
        webrtc_context()
    };
    Box::new(move |wire| {
        context
            .decrypt_rtp(wire)
            .map(|b| b.to_vec())
            .map_err(|e| format!("{e}"))
    })
}

fn libsrtp_unprotect() -> Unprotect {
    let mut session = libsrtp_receiver();
    Box::new(move |wire| {
        let mut buffer = wire.to_vec();
        session.unprotect(&mut buffer).map_err(|e| format!("{e}"))?;
        Ok(buffer)
    })
}

fn interop() -> bool {
    let ours = ours_protect_all();
    let webrtc = webrtc_protect_all();
    let libsrtp = libsrtp_protect_all();
    let mut all_ok = true;
    assert!(ours.iter().all(|p| p.len() == PACKET_LEN + 10));
    for (name, theirs) in [("webrtc-srtp", &webrtc), ("libsrtp", &libsrtp)] {
        let same = ours
            .iter()
            .zip(theirs.iter())
            .filter(|(a, b)| a == b)
            .count();
        println!(
            "ciphertext ours vs {name}: {same}/{PACKETS} SRTP packets identical (sequence {FIRST}..={})",
            FIRST.wrapping_add(PACKETS - 1)
        );
        all_ok &= same == usize::from(PACKETS);
    }
    println!(
        "first SRTP packet (sequence {FIRST}), ours: {}…{}",
        hex(&ours[0][..20]),
        hex(&ours[0][ours[0].len() - 10..])
    );

    let producers: [(&str, &Vec<Vec<u8>>); 3] = [
        ("ours", &ours),
        ("webrtc-srtp", &webrtc),
        ("libsrtp", &libsrtp),
    ];
    for (producer, packets) in producers {
        for (consumer, mut unprotect) in [
            ("ours", ours_unprotect()),
            ("webrtc-srtp", webrtc_unprotect(false)),
            ("libsrtp", libsrtp_unprotect()),
        ] {
            if producer == consumer {
                continue;
            }
            let good = packets
                .iter()
                .zip(sequences())
                .filter(|(wire, sequence)| {
                    unprotect(wire).is_ok_and(|plain| plain == packet(*sequence, SSRC))
                })
                .count();
            println!(
                "{producer} -> {consumer}: {good}/{PACKETS} unprotected to the original packet"
            );
            all_ok &= good == usize::from(PACKETS);
        }
    }
    all_ok
}

fn replay() {
    let wire = &ours_protect_all()[..2];
    for (name, mut unprotect) in [
        ("ours (default)", ours_unprotect()),
        (
            "webrtc-srtp (Context::new(.., None, None))",
            webrtc_unprotect(false),
        ),
        (
            "webrtc-srtp (srtp_replay_protection(128))",
            webrtc_unprotect(true),
        ),
        ("libsrtp (window_size 0 = default)", libsrtp_unprotect()),
    ] {
        unprotect(&wire[0]).unwrap();
        unprotect(&wire[1]).unwrap();
        let again = unprotect(&wire[0]);
        println!(
            "replayed packet to {name}: {}",
            match again {
                Ok(_) => "ACCEPTED".to_string(),
                Err(e) => format!("refused ({e})"),
            }
        );
    }
}

/// Steady-state allocations per call, counted by the global allocator.
fn count(name: &str, warm: u16, n: u16, mut step: impl FnMut(u16)) {
    for sequence in 1..=warm {
        step(sequence);
    }
    let before = allocations();
    for sequence in warm + 1..=warm + n {
        step(sequence);
    }
    let per = (allocations() - before) as f64 / f64::from(n);
    println!("allocations per packet (Rust allocator), {name}: {per}");
}

fn allocation_counts() {
    const WARM: u16 = 16;
    const N: u16 = 10_000;

    let mut sender = ours_sender();
    let mut buffer = [0u8; 1500];
    count("ours protect", WARM, N, |sequence| {
        buffer[..PACKET_LEN].copy_from_slice(&packet(sequence, SSRC));
        sender.protect(&mut buffer, PACKET_LEN).unwrap();
    });
    let mut sender = ours_sender();
    let mut receiver = ours_receiver();
    let mut plain = [0u8; 1500];
    count("ours protect+unprotect", WARM, N, |sequence| {
        buffer[..PACKET_LEN].copy_from_slice(&packet(sequence, SSRC));
        let len = sender.protect(&mut buffer, PACKET_LEN).unwrap();
        receiver.unprotect(&buffer[..len], &mut plain).unwrap();
    });

    let mut context = webrtc_context();
    count("webrtc-srtp protect", WARM, N, |sequence| {
        drop(context.encrypt_rtp(&packet(sequence, SSRC)).unwrap());
    });
    for (name, mut receiver) in [
        ("webrtc-srtp protect+unprotect", webrtc_context()),
        (
            "webrtc-srtp protect+unprotect, replay window 128",
            webrtc_context_with_replay(),
        ),
    ] {
        let mut sender = webrtc_context();
        count(name, WARM, N, |sequence| {
            let protected = sender.encrypt_rtp(&packet(sequence, SSRC)).unwrap();
            drop(receiver.decrypt_rtp(&protected).unwrap());
        });
    }

    let mut session = libsrtp_sender();
    let mut wire = Vec::with_capacity(1500);
    count("libsrtp protect (Rust side only)", WARM, N, |sequence| {
        wire.clear();
        wire.extend_from_slice(&packet(sequence, SSRC));
        session.protect(&mut wire).unwrap();
    });
}

/// `alloc-probe IMPL OP N`: set up, then N steady-state packets; run it
/// under valgrind to count the C side's allocations too.
fn alloc_probe(implementation: &str, operation: &str, n: u16) {
    const WARM: u16 = 16;
    let both = operation == "protect+unprotect";
    match implementation {
        "ours" => {
            let (mut sender, mut receiver) = (ours_sender(), ours_receiver());
            let (mut buffer, mut plain) = ([0u8; 1500], [0u8; 1500]);
            for sequence in 1..=WARM + n {
                buffer[..PACKET_LEN].copy_from_slice(&packet(sequence, SSRC));
                let len = sender.protect(&mut buffer, PACKET_LEN).unwrap();
                if both {
                    receiver.unprotect(&buffer[..len], &mut plain).unwrap();
                }
            }
        }
        "webrtc-srtp" | "webrtc-srtp-replay" => {
            let mut sender = webrtc_context();
            let mut receiver = if implementation == "webrtc-srtp" {
                webrtc_context()
            } else {
                webrtc_context_with_replay()
            };
            for sequence in 1..=WARM + n {
                let protected = sender.encrypt_rtp(&packet(sequence, SSRC)).unwrap();
                if both {
                    drop(receiver.decrypt_rtp(&protected).unwrap());
                }
            }
        }
        "libsrtp" => {
            let (mut sender, mut receiver) = (libsrtp_sender(), libsrtp_receiver());
            let mut wire = Vec::with_capacity(1500);
            for sequence in 1..=WARM + n {
                wire.clear();
                wire.extend_from_slice(&packet(sequence, SSRC));
                sender.protect(&mut wire).unwrap();
                if both {
                    receiver.unprotect(&mut wire).unwrap();
                }
            }
        }
        other => panic!("unknown implementation {other}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("alloc-probe") {
        alloc_probe(&args[2], &args[3], args[4].parse().unwrap());
        return;
    }
    println!("libsrtp version built by srtp2-sys: {}", libsrtp_version());
    let matched = interop();
    replay();
    allocation_counts();
    println!(
        "interop: {}",
        if matched { "ALL MATCHED" } else { "MISMATCH" }
    );
    if !matched {
        std::process::exit(1);
    }
}
