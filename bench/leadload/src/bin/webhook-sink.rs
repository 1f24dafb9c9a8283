//! `webhook-sink PORT DELAY_MS COUNT_FILE [SECONDS]`: a slow CRM for
//! `bench/webhooks.sh`. Listens on 127.0.0.1:PORT, holds each HTTP/1.1
//! request DELAY_MS before answering `200 OK`, and writes how many it
//! answered to COUNT_FILE (every 20 ms, when it changed). Ends by itself
//! after SECONDS (default 3600).
//!
//! Why not the script's python receiver: it stands for a CRM on another
//! machine, but runs on the daemon's two cores, and python's asyncio
//! spent about 150 µs of CPU per request there, in runs of up to a
//! millisecond that the daemon's threads sometimes waited out even with
//! the receiver in `SCHED_IDLE` (BENCHMARKS.md, issue 26). One thread of
//! tokio does the same job for a fraction of that, so the bench measures
//! the daemon, not its stand-in CRM. What the daemon sees is the same:
//! one request per connection (it sends `Connection: close`), answered
//! after the delay.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request's head larger than this is refused (the connection closed).
const MAX_HEAD: usize = 16 * 1024;
/// And a body larger than this.
const MAX_BODY: usize = 1024 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(3..=4).contains(&args.len()) {
        eprintln!("usage: webhook-sink PORT DELAY_MS COUNT_FILE [SECONDS]");
        std::process::exit(2);
    }
    let port: u16 = args[0].parse().expect("PORT");
    let delay = Duration::from_millis(args[1].parse().expect("DELAY_MS"));
    let path = args[2].clone();
    let lifetime = Duration::from_secs(args.get(3).map_or(3600, |s| s.parse().expect("SECONDS")));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let count = Arc::new(AtomicU64::new(0));
        tokio::spawn(flush(Arc::clone(&count), path));
        let serve = async {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, delay, Arc::clone(&count)));
            }
        };
        let _ = tokio::time::timeout(lifetime, serve).await;
    });
}

/// Writes the count to `path` every 20 ms when it changed.
async fn flush(count: Arc<AtomicU64>, path: String) {
    let mut last = None;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = count.load(Ordering::Relaxed);
        if last != Some(now) {
            // Written aside, then renamed: the script never reads a
            // half-written count.
            let aside = format!("{path}.new");
            if std::fs::write(&aside, format!("{now}\n")).is_ok()
                && std::fs::rename(&aside, &path).is_ok()
            {
                last = Some(now);
            }
        }
    }
}

/// Answers each request on `stream` after `delay`, until it closes.
async fn serve(mut stream: TcpStream, delay: Duration, count: Arc<AtomicU64>) {
    let mut buffer = Vec::with_capacity(4096);
    loop {
        // The head.
        let head_end = loop {
            if let Some(at) = find(&buffer, b"\r\n\r\n") {
                break at + 4;
            }
            if buffer.len() > MAX_HEAD || !read_more(&mut stream, &mut buffer).await {
                return;
            }
        };
        let length = content_length(&buffer[..head_end]);
        if length > MAX_BODY {
            return;
        }
        while buffer.len() < head_end + length {
            if !read_more(&mut stream, &mut buffer).await {
                return;
            }
        }
        buffer.drain(..head_end + length);
        tokio::time::sleep(delay).await;
        count.fetch_add(1, Ordering::Relaxed);
        if stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Reads what is there into `buffer`; false at the end or on an error.
async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The head's `Content-Length` (0 when absent or unreadable).
fn content_length(head: &[u8]) -> usize {
    let head = String::from_utf8_lossy(head);
    head.split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}
