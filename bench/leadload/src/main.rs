//! `leadload ADDR RATE SECONDS [CONNECTIONS]`: posts signed web-form leads
//! to `http://ADDR/api/leads` at RATE per second for SECONDS, over
//! CONNECTIONS kept-alive HTTP/1.1 connections, and prints what came back.
//!
//! Open loop: lead `i` is due at `start + i / RATE`, whether or not the
//! daemon kept up, and its latency runs from that due time to the last
//! byte of its answer. So a daemon that falls behind shows it in the
//! latencies (no coordinated omission): a request that had to wait for a
//! free connection counts its wait. Every lead has its own body (phone,
//! message), signed like the demo clinic's website
//! (`X-Frontdesk-Signature: t=…,v1=HMAC-SHA256("<t>.<body>")`), so each is
//! a new lead the daemon classifies and makes durable before its 201.
//!
//! With `LEADLOAD_DUMP=PATH`, every answered lead's due time (ms after the
//! start) and latency (µs) go to PATH, one per line.
//!
//! Output: one line of `key=value` pairs (sent, per status, p50/p90/p99/max
//! in ms, achieved rate), then the same as JSON on the last line. Exit 0
//! when every lead got 201, 1 otherwise. Bounded: each request has a
//! 10 s deadline, the run SECONDS + 15 s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

const SECRET: &[u8] = b"demo-website-secret";
const MESSAGES: [&str; 5] = [
    "my knee hurts since Sunday",
    "a rash on my arm",
    "my daughter needs her vaccination",
    "palpitations at night",
    "I would like a check-up",
];

#[derive(Default)]
struct Results {
    latencies_us: Vec<u64>,
    /// `(lead number, latency µs)`, for LEADLOAD_DUMP.
    samples: Vec<(u64, u64)>,
    statuses: std::collections::BTreeMap<u16, u64>,
    errors: u64,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: leadload ADDR RATE SECONDS [CONNECTIONS]");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse().expect("ADDR: host:port");
    let rate: f64 = args[2].parse().expect("RATE: leads per second");
    let seconds: f64 = args[3].parse().expect("SECONDS");
    let connections: usize = args.get(4).map_or(64, |c| c.parse().expect("CONNECTIONS"));
    let total = (rate * seconds).round() as u64;
    let next = Arc::new(AtomicU64::new(0));
    let results = Arc::new(Mutex::new(Results::default()));
    // Every connection is open before the first lead is due: the figure
    // is the steady state, not 64 handshakes at once.
    let mut opened = Vec::new();
    for _ in 0..connections {
        let stream = TcpStream::connect(addr).await.expect("connect to ADDR");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        opened.push(stream);
    }
    let start = Instant::now() + Duration::from_millis(200);
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut tasks = Vec::new();
    for connection in opened {
        let next = Arc::clone(&next);
        let results = Arc::clone(&results);
        tasks.push(tokio::spawn(async move {
            let mut stream: Option<TcpStream> = Some(connection);
            let mut buffer = Vec::with_capacity(16 * 1024);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let due = start + interval.mul_f64(i as f64);
                tokio::time::sleep_until(due.into()).await;
                let request = request(addr, i);
                let outcome = tokio::time::timeout(
                    Duration::from_secs(10),
                    exchange(&mut stream, addr, &request, &mut buffer),
                )
                .await;
                let latency = due.elapsed().as_micros() as u64;
                let mut results = results.lock().await;
                match outcome {
                    Ok(Ok(status)) => {
                        *results.statuses.entry(status).or_default() += 1;
                        results.latencies_us.push(latency);
                        results.samples.push((i, latency));
                    }
                    _ => {
                        results.errors += 1;
                        stream = None;
                    }
                }
            }
        }));
    }
    let bound = Duration::from_secs_f64(seconds + 15.0);
    let all = async {
        for task in tasks {
            let _ = task.await;
        }
    };
    if tokio::time::timeout(bound, all).await.is_err() {
        eprintln!("leadload: not done within {bound:?}");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut results = results.lock().await;
    if let Ok(path) = std::env::var("LEADLOAD_DUMP") {
        // One line per answered lead: its due time (ms after the start)
        // and its latency (µs), to see when the slow ones happened.
        results.samples.sort_unstable();
        let lines: String = results
            .samples
            .iter()
            .map(|(i, latency)| format!("{:.1} {latency}\n", *i as f64 * 1000.0 / rate))
            .collect();
        if let Err(error) = std::fs::write(&path, lines) {
            eprintln!("leadload: LEADLOAD_DUMP {path}: {error}");
        }
    }
    results.latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        let n = results.latencies_us.len();
        if n == 0 {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * n as f64).ceil().clamp(1.0, n as f64) as usize;
        results.latencies_us[rank - 1] as f64 / 1000.0
    };
    let created = results.statuses.get(&201).copied().unwrap_or(0);
    let statuses: Vec<String> = results
        .statuses
        .iter()
        .map(|(status, count)| format!("\"{status}\":{count}"))
        .collect();
    println!(
        "sent={total} created={created} errors={} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2} achieved_per_s={:.1}",
        results.errors,
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(100.0),
        created as f64 / elapsed
    );
    println!(
        "{{\"rate\":{rate},\"seconds\":{seconds},\"connections\":{connections},\"sent\":{total},\"statuses\":{{{}}},\"errors\":{},\"p50_ms\":{:.2},\"p90_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2},\"achieved_per_s\":{:.1}}}",
        statuses.join(","),
        results.errors,
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(100.0),
        created as f64 / elapsed
    );
    std::process::exit(if created == total && results.errors == 0 {
        0
    } else {
        1
    });
}

/// Lead `i`: its own phone and body, signed now.
fn request(addr: SocketAddr, i: u64) -> Vec<u8> {
    let phone = format!("+1312{:07}", 5_550_000 + (i % 4_000_000));
    let message = MESSAGES[(i % MESSAGES.len() as u64) as usize];
    let body = format!(
        r#"{{"name":"Load {i}","phone":"{phone}","message":"{message} ({i})","postal_code":"6060{}","consent":{{"call":true}}}}"#,
        i % 10
    );
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body.as_bytes());
    let v1: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "POST /api/leads HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nX-Frontdesk-Source: website\r\nX-Frontdesk-Signature: t={t},v1={v1}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends `request` on the kept connection (opening one if needed) and
/// reads the answer; returns its status.
async fn exchange(
    stream: &mut Option<TcpStream>,
    addr: SocketAddr,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> std::io::Result<u16> {
    if stream.is_none() {
        let connected = TcpStream::connect(addr).await?;
        connected.set_nodelay(true)?;
        *stream = Some(connected);
    }
    let Some(connection) = stream.as_mut() else {
        return Err(std::io::Error::other("no connection"));
    };
    connection.write_all(request).await?;
    buffer.clear();
    let mut chunk = [0u8; 8192];
    loop {
        let n = connection.read(&mut chunk).await?;
        if n == 0 {
            *stream = None;
            return Err(std::io::Error::other("closed"));
        }
        buffer.extend_from_slice(&chunk[..n]);
        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("no status"))?;
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buffer.len() >= end + 4 + length {
            if head.contains("connection: close") {
                *stream = None;
            }
            return Ok(status);
        }
    }
}
