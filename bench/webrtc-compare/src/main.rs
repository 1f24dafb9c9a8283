//! Compares the two WebRTC stacks for issue 23's browser leg: webrtc-rs
//! (`webrtc` 0.21, the owner's choice) and `str0m` (sans-IO), against a
//! plain RTP leg and an SDES-SRTP leg with frontdesk's own `media::srtp`.
//!
//! One run is two processes:
//!
//! * the **server** (`webrtc-compare serve STACK`), pinned to core 1: what
//!   frontdesk would run. One tokio current-thread runtime, one task per
//!   leg with its own UDP socket on 127.0.0.1 (as `media`'s driver does),
//!   ICE-lite where the stack has it, DTLS server role, PCMU. Each leg
//!   sends back every packet it receives (its payload, as a relay would
//!   from the other leg), so it does both directions of a relay leg:
//!   receive, unprotect, protect, send.
//! * the **client** (`webrtc-compare run ...`), pinned to core 0: the
//!   browsers. Full ICE and the DTLS client role, with the same stack as
//!   the server; each leg sends one 160-byte PCMU frame every 20 ms.
//!
//! They talk over the server's stdin/stdout in lines (offer, answer,
//! `STATS`). The server reports its own CPU time (`getrusage`, all its
//! threads), its heap allocations (a counting global allocator: the whole
//! server process), RSS, tokio tasks and threads, and its packet counts,
//! so every figure is the server's alone.
//!
//! The phases of a run: N legs set up at once (offer → answer → ICE →
//! DTLS, the handshake figures), then every leg sends `seconds × 50`
//! packets (the media figures), then the counts are checked: packets sent
//! by the clients = received by the server = sent back = received by the
//! clients.

mod plain;
mod stats;
mod str0m_leg;
mod webrtc_leg;

use std::cell::RefCell;
use std::collections::HashMap;
use std::process::Stdio;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot, watch};

pub use stats::Counters;

/// Packets per second per direction per leg: one 20 ms PCMU frame each.
pub const PACKETS_PER_SECOND: u64 = 50;
/// 20 ms of PCMU.
pub const FRAME: Duration = Duration::from_millis(20);
pub const PAYLOAD_LEN: usize = 160;

#[global_allocator]
static GLOBAL: stats::Counting = stats::Counting;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    Plain,
    Sdes,
    Str0m,
    Webrtc,
}

impl Stack {
    fn parse(s: &str) -> Option<Stack> {
        Some(match s {
            "plain" => Stack::Plain,
            "sdes" => Stack::Sdes,
            "str0m" => Stack::Str0m,
            "webrtc" => Stack::Webrtc,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Stack::Plain => "plain",
            Stack::Sdes => "sdes",
            Stack::Str0m => "str0m",
            Stack::Webrtc => "webrtc",
        }
    }
}

const USAGE: &str = "usage: webrtc-compare run STACK LEGS SECONDS | serve STACK   (STACK: plain, sdes, str0m, webrtc)";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => {
            let stack = args.get(2).and_then(|s| Stack::parse(s)).expect(USAGE);
            stats::pin_to_cpu(1);
            runtime().block_on(serve(stack));
        }
        Some("run") => {
            let stack = args.get(2).and_then(|s| Stack::parse(s)).expect(USAGE);
            let legs: usize = args.get(3).and_then(|s| s.parse().ok()).expect(USAGE);
            let seconds: u64 = args.get(4).and_then(|s| s.parse().ok()).expect(USAGE);
            stats::pin_to_cpu(0);
            let ok = runtime().block_on(run(stack, legs, seconds));
            std::process::exit(if ok { 0 } else { 1 });
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// SDP and our one-line offers cross the pipe as one line each.
pub fn escape(s: &str) -> String {
    s.replace('\r', "\\r").replace('\n', "\\n")
}

pub fn unescape(s: &str) -> String {
    s.replace("\\n", "\n").replace("\\r", "\r")
}

// --- the server process ------------------------------------------------------

async fn serve(stack: Stack) {
    // Plain `tokio::spawn` (not a LocalSet) so that the runtime's task
    // count covers every task of every leg.
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = out_rx.recv().await {
            stdout.write_all(line.as_bytes()).await.expect("stdout");
            stdout.write_all(b"\n").await.expect("stdout");
            stdout.flush().await.expect("stdout");
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut parts = line.splitn(3, ' ');
        match parts.next() {
            Some("OFFER") => {
                let id: u32 = parts.next().and_then(|s| s.parse().ok()).expect("id");
                let offer = unescape(parts.next().expect("offer"));
                let out = out_tx.clone();
                let (answer_tx, answer_rx) = oneshot::channel();
                tokio::spawn(server_leg(stack, offer, answer_tx));
                tokio::spawn(async move {
                    match answer_rx.await {
                        Ok(answer) => {
                            let _ = out.send(format!("ANSWER {id} {}", escape(&answer)));
                        }
                        Err(_) => eprintln!("server: leg {id} failed before its answer"),
                    }
                });
            }
            Some("STATS") => {
                let _ = out_tx.send(format!("STATS {}", stats::Snapshot::take().to_line()));
            }
            Some("QUIT") | None => break,
            Some(other) => eprintln!("server: unknown command {other}"),
        }
    }
    // Legs end with the process.
    std::process::exit(0);
}

async fn server_leg(stack: Stack, offer: String, answer: oneshot::Sender<String>) {
    let result = match stack {
        Stack::Plain => plain::server_leg(false, offer, answer).await,
        Stack::Sdes => plain::server_leg(true, offer, answer).await,
        Stack::Str0m => str0m_leg::server_leg(offer, answer).await,
        Stack::Webrtc => webrtc_leg::server_leg(offer, answer).await,
    };
    if let Err(e) = result {
        eprintln!("server leg: {e}");
    }
}

// --- the client process ------------------------------------------------------

/// What the client side of every leg shares: the signal to start sending,
/// the number of frames to send, and counters.
pub struct ClientShared {
    pub start: watch::Receiver<bool>,
    pub frames: u64,
    pub counters: Counters,
}

/// Sends an offer to the server and waits for its answer.
pub type Signal = Rc<dyn Fn(String) -> oneshot::Receiver<String>>;

async fn run(stack: Stack, legs: usize, seconds: u64) -> bool {
    let local = tokio::task::LocalSet::new();
    local.run_until(run_inner(stack, legs, seconds)).await
}

async fn run_inner(stack: Stack, legs: usize, seconds: u64) -> bool {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = tokio::process::Command::new(exe)
        .arg("serve")
        .arg(stack.name())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the server");
    let mut child_in = child.stdin.take().expect("stdin");
    let child_out = child.stdout.take().expect("stdout");

    // Lines to the server go through one writer task.
    let (to_server, mut to_server_rx) = mpsc::unbounded_channel::<String>();
    tokio::task::spawn_local(async move {
        while let Some(line) = to_server_rx.recv().await {
            if child_in.write_all(line.as_bytes()).await.is_err() {
                break;
            }
            let _ = child_in.write_all(b"\n").await;
            let _ = child_in.flush().await;
        }
    });
    let pending: Rc<RefCell<HashMap<u32, oneshot::Sender<String>>>> = Rc::default();
    let (stats_tx, mut stats_rx) = mpsc::unbounded_channel::<stats::Snapshot>();
    {
        let pending = pending.clone();
        tokio::task::spawn_local(async move {
            let mut lines = BufReader::new(child_out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut parts = line.splitn(3, ' ');
                match parts.next() {
                    Some("ANSWER") => {
                        let id: u32 = parts.next().and_then(|s| s.parse().ok()).expect("id");
                        let answer = unescape(parts.next().unwrap_or(""));
                        if let Some(tx) = pending.borrow_mut().remove(&id) {
                            let _ = tx.send(answer);
                        }
                    }
                    Some("STATS") => {
                        let snapshot =
                            stats::Snapshot::from_line(line.strip_prefix("STATS ").unwrap_or(""))
                                .expect("a STATS line");
                        let _ = stats_tx.send(snapshot);
                    }
                    _ => eprintln!("client: unexpected line from the server: {line}"),
                }
            }
        });
    }
    let next_id = Rc::new(RefCell::new(0u32));
    let signal: Signal = {
        let pending = pending.clone();
        let to_server = to_server.clone();
        Rc::new(move |offer: String| {
            let id = {
                let mut n = next_id.borrow_mut();
                *n += 1;
                *n
            };
            let (tx, rx) = oneshot::channel();
            pending.borrow_mut().insert(id, tx);
            let _ = to_server.send(format!("OFFER {id} {}", escape(&offer)));
            rx
        })
    };
    let server_stats = || {
        let _ = to_server.send("STATS".to_owned());
    };
    macro_rules! stats {
        () => {{
            server_stats();
            stats_rx.recv().await.expect("the server's STATS")
        }};
    }

    let base = stats!();
    let (start_tx, start_rx) = watch::channel(false);
    let frames = seconds * PACKETS_PER_SECOND;
    let shared = Arc::new(ClientShared {
        start: start_rx,
        frames,
        counters: Counters::default(),
    });

    // Phase 1: set up every leg at once.
    let setup_began = Instant::now();
    for _ in 0..legs {
        let shared = shared.clone();
        let signal = signal.clone();
        tokio::task::spawn_local(async move {
            let result = match stack {
                Stack::Plain => plain::client_leg(false, signal, shared).await,
                Stack::Sdes => plain::client_leg(true, signal, shared).await,
                Stack::Str0m => str0m_leg::client_leg(signal, shared).await,
                Stack::Webrtc => webrtc_leg::client_leg(signal, shared).await,
            };
            if let Err(e) = result {
                eprintln!("client leg: {e}");
            }
        });
    }
    let setup_deadline = setup_began + Duration::from_secs(120);
    let mut connected;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        connected = stats!();
        let clients = shared.counters.connected();
        if (connected.connected as usize >= legs && clients as usize >= legs)
            || Instant::now() > setup_deadline
        {
            break;
        }
    }
    let setup_wall = setup_began.elapsed();
    if (connected.connected as usize) < legs {
        eprintln!(
            "only {} of {legs} legs connected on the server ({} on the clients)",
            connected.connected,
            shared.counters.connected()
        );
        return false;
    }

    // Phase 2: media.
    let media_began = Instant::now();
    let before_media = stats!();
    start_tx.send_replace(true);
    let sent_target = frames * legs as u64;
    let media_deadline = media_began + Duration::from_secs(seconds + 10);
    let mut after_media;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after_media = stats!();
        let done = shared.counters.sent() >= sent_target
            && after_media.rx >= before_media.rx + sent_target
            && shared.counters.received() >= after_media.tx - before_media.tx;
        if done || Instant::now() > media_deadline {
            break;
        }
    }
    let media_wall = media_began.elapsed();
    let _ = to_server.send("QUIT".to_owned());

    let sent = shared.counters.sent();
    let server_rx = after_media.rx - before_media.rx;
    let server_tx = after_media.tx - before_media.tx;
    let received = shared.counters.received();
    let no_loss = sent == sent_target && server_rx == sent && server_tx == sent && received == sent;

    let setup_cpu = connected.cpu_us - base.cpu_us;
    let media_cpu = after_media.cpu_us - before_media.cpu_us;
    let n = legs as f64;
    let cert = if std::env::var("CERT").as_deref() == Ok("shared") {
        "shared"
    } else {
        "per-leg"
    };
    println!(
        "stack={} cert={cert} legs={legs} seconds={seconds} \
         setup_wall_ms={} setup_cpu_ms={:.1} handshakes_per_cpu_s={:.0} handshakes_per_wall_s={:.0} \
         rss_per_leg_kib={:.1} tasks_per_leg={:.2} tasks_per_leg_in_media={:.2} threads={} \
         media_wall_s={:.2} cpu_us_per_leg_s={:.1} core_pct_per_leg={:.4} \
         allocs_per_rx_packet={:.2} alloc_bytes_per_rx_packet={:.0} \
         sent={sent} server_rx={server_rx} server_tx={server_tx} received={received} loss={}",
        stack.name(),
        setup_wall.as_millis(),
        setup_cpu as f64 / 1000.0,
        n / (setup_cpu as f64 / 1e6),
        n / setup_wall.as_secs_f64(),
        (connected.rss_kib as f64 - base.rss_kib as f64) / n,
        (connected.tasks as f64 - base.tasks as f64) / n,
        (after_media.tasks as f64 - base.tasks as f64) / n,
        connected.threads,
        media_wall.as_secs_f64(),
        media_cpu as f64 / n / seconds.max(1) as f64,
        media_cpu as f64 / n / seconds.max(1) as f64 / 1e6 * 100.0,
        (after_media.allocs - before_media.allocs) as f64 / server_rx.max(1) as f64,
        (after_media.alloc_bytes - before_media.alloc_bytes) as f64 / server_rx.max(1) as f64,
        if no_loss { "none" } else { "LOSS" },
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    no_loss
}
