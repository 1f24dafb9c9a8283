//! Browser-phone load against the real daemon (issue 23), loopback only,
//! every phase bounded. bench/phone.sh starts the daemon and SIPp and runs
//! this:
//!
//! ```text
//! phoneload --http 127.0.0.1:8080 --sip 127.0.0.1:5070 --pages 500 \
//!           --first-agent 30000 --caller 127.0.0.1:61000 --seconds 10 --pid PID \
//!           [--latency-calls 30] [--latency-number +15550134] [--setup-timeout 60]
//!           [--hold-ms 300] [--idle-seconds 5]
//! ```
//!
//! 1. Sign-in: every page `POST /agent/login` as agent `first-agent + i`
//!    (password `bench-<id>`), 16 at a time (not measured as set-up).
//! 2. Set-up: all pages at once open `/agent/phone`, send their hello with
//!    a str0m offer and run ICE + DTLS with the daemon; per page the time
//!    from sending the hello to str0m's `Connected`, set-ups per second
//!    (pages / (last connected - first hello)), and the daemon's CPU over
//!    the phase per set-up.
//! 3. INVITE → ringing: `--latency-calls` calls placed one at a time by
//!    a minimal SIP patient to `--latency-number` (straight to the queue, no
//!    prompt), from the INVITE's send to the page's receipt of `ringing`;
//!    the page answers, then the patient hangs up `--hold-ms` (300) after
//!    the page's `connected`.
//!
//!    Then, 3 s after the last of those calls, the daemon's CPU over
//!    `--idle-seconds` (5) with every page on and no call.
//! 4. Calls: prints `calls: go` on stderr (phone.sh then starts N SIPp
//!    patients whose SDP names `--caller`); every page answers its ringing
//!    at once and sends 20 ms PCMU frames; the patient socket sends 20 ms
//!    PCMU to every call's relay port from its first prompt packet on; once
//!    every page is in its call, 1 s, the bridged calls' streams are frozen
//!    as the counted ones, 2 s to settle, then a window of `--seconds`: frames sent and received per
//!    direction (no loss = received == sent for frames sent inside the
//!    window; counted after 2 s of draining), the daemon's CPU (utime +
//!    stime of `--pid`) per call and per leg-second, and phoneload's own.
//!
//! Prints one JSON object on stdout; progress on stderr.

mod page;
mod patient;
mod uac;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::timeout;

use page::{Control, Counters, Report};

struct Args(Vec<String>);

impl Args {
    fn value(&self, name: &str) -> Option<&str> {
        let at = self.0.iter().position(|a| a == name)?;
        self.0.get(at + 1).map(String::as_str)
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

fn fail(why: &str) -> ! {
    eprintln!("phoneload: {why}");
    std::process::exit(2);
}

/// utime + stime of a process (all its threads), in clock ticks.
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// UDP `RcvbufErrors` and `SndbufErrors` of the whole machine
/// (/proc/net/snmp): datagrams the kernel dropped for a full buffer.
fn udp_buffer_errors() -> (u64, u64) {
    let Ok(snmp) = std::fs::read_to_string("/proc/net/snmp") else {
        return (0, 0);
    };
    let lines: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    if lines.len() < 2 {
        return (0, 0);
    }
    let names: Vec<&str> = lines[0].split_whitespace().collect();
    let values: Vec<&str> = lines[1].split_whitespace().collect();
    let get = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| values.get(i)?.parse().ok())
            .unwrap_or(0)
    };
    (get("RcvbufErrors"), get("SndbufErrors"))
}

/// Datagrams the kernel dropped on the UDP sockets of process `pid`
/// (the `drops` column of /proc/net/udp and udp6, for the socket inodes
/// among its descriptors): tells whose receive buffer overflowed.
fn udp_drops(pid: u32) -> u64 {
    let Ok(descriptors) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    let inodes: std::collections::HashSet<String> = descriptors
        .filter_map(|entry| {
            let target = std::fs::read_link(entry.ok()?.path()).ok()?;
            let target = target.to_str()?;
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let mut drops = 0;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ref pointer drops
            if fields.len() >= 13 && inodes.contains(fields[9]) {
                drops += fields[12].parse::<u64>().unwrap_or(0);
            }
        }
    }
    drops
}

/// Clock ticks per second (USER_HZ); 100 on every Linux we run on.
const TICKS_PER_SECOND: f64 = 100.0;

/// p50 / p90 / p99 / max of durations, in milliseconds (nearest rank).
fn percentiles(mut values: Vec<Duration>) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    values.sort();
    let rank = |q: f64| {
        let index = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
        (values[index].as_secs_f64() * 1e5).round() / 100.0
    };
    json!({"count": values.len(), "p50": rank(0.5), "p90": rank(0.9), "p99": rank(0.99),
           "max": rank(1.0)})
}

fn main() {
    let args = Args(std::env::args().skip(1).collect());
    let http: SocketAddr = args.parse("--http", None);
    let sip: SocketAddr = args.parse("--sip", None);
    let pages: usize = args.parse("--pages", None);
    let first_agent: u32 = args.parse("--first-agent", Some(30000));
    let caller: SocketAddr = args.parse("--caller", None);
    let seconds: u64 = args.parse("--seconds", Some(10));
    let pid: u32 = args.parse("--pid", None);
    let latency_calls: u32 = args.parse("--latency-calls", Some(30));
    let latency_number: String = args.parse("--latency-number", Some("+15550134".to_string()));
    let setup_timeout: u64 = args.parse("--setup-timeout", Some(60));
    let hold_ms: u64 = args.parse("--hold-ms", Some(300));
    let idle_seconds: u64 = args.parse("--idle-seconds", Some(5));
    for address in [http, sip, caller] {
        if !address.ip().is_loopback() {
            fail("loopback addresses only");
        }
    }
    if !(1..=5000).contains(&pages) || !(1..=120).contains(&seconds) {
        fail("--pages must be 1..5000, --seconds 1..120");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|error| fail(&format!("tokio: {error}")));
    let report = runtime.block_on(run(Setting {
        http,
        sip,
        pages,
        first_agent,
        caller,
        seconds,
        pid,
        latency_calls,
        latency_number,
        setup_timeout: Duration::from_secs(setup_timeout),
        hold: Duration::from_millis(hold_ms),
        idle_seconds,
    }));
    println!("{report}");
    // The pages' tasks are told to stop in `run`; do not wait for stragglers.
    runtime.shutdown_timeout(Duration::from_secs(2));
}

struct Setting {
    http: SocketAddr,
    sip: SocketAddr,
    pages: usize,
    first_agent: u32,
    caller: SocketAddr,
    seconds: u64,
    pid: u32,
    latency_calls: u32,
    latency_number: String,
    setup_timeout: Duration,
    hold: Duration,
    idle_seconds: u64,
}

async fn run(setting: Setting) -> Value {
    let Setting {
        http,
        sip,
        pages,
        first_agent,
        caller,
        seconds,
        pid,
        ..
    } = setting;
    let mut out = json!({"pages": pages, "seconds": seconds});
    let control = Arc::new(Control::default());

    // The patients' socket first: the first caller's prompt must find it.
    let socket =
        patient::bind(caller).unwrap_or_else(|error| fail(&format!("bind {caller}: {error}")));
    let (patient_tx, patient_rx) = mpsc::unbounded_channel();
    tokio::spawn(patient::run(socket, Arc::clone(&control), patient_rx));

    // 1. Sign-in.
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(16));
    let mut logins = Vec::new();
    for index in 0..pages {
        let gate = Arc::clone(&gate);
        let agent = (first_agent + index as u32).to_string();
        logins.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            page::login(http, &agent, &format!("bench-{agent}")).await
        }));
    }
    let mut tokens = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for login in logins {
        match login.await {
            Ok(Ok(token)) => tokens.push(token),
            Ok(Err(why)) => errors.push(why),
            Err(error) => errors.push(error.to_string()),
        }
    }
    out["login"] = json!({"ok": tokens.len(), "seconds": started.elapsed().as_secs_f64(),
                          "errors": errors.iter().take(5).collect::<Vec<_>>()});
    eprintln!(
        "phoneload: {} of {pages} signed in in {:.1} s",
        tokens.len(),
        started.elapsed().as_secs_f64()
    );

    // 2. Set-up: every page at once.
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let counters: Vec<Arc<Counters>> = (0..tokens.len()).map(|_| Arc::default()).collect();
    let ticks_before = process_ticks(pid);
    let setup_started = Instant::now();
    for (index, token) in tokens.into_iter().enumerate() {
        tokio::spawn(page::run(
            index,
            http,
            token,
            Arc::clone(&control),
            Arc::clone(&counters[index]),
            reports_tx.clone(),
        ));
    }
    let mut setups = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut last_connected = setup_started;
    let mut early = Vec::new();
    let setup_deadline = Instant::now() + Duration::from_secs(45);
    while setups.len() + failures.len() < counters.len() {
        match timeout(
            setup_deadline.saturating_duration_since(Instant::now()),
            reports.recv(),
        )
        .await
        {
            Ok(Some(Report::Connected { setup })) => {
                setups.push(setup);
                last_connected = Instant::now();
            }
            Ok(Some(Report::Failed { page, why })) => failures.push(format!("page {page}: {why}")),
            Ok(Some(other)) => early.push(other),
            Ok(None) | Err(_) => break,
        }
    }
    let ticks_after = process_ticks(pid);
    let span = last_connected.duration_since(setup_started).as_secs_f64();
    let connected = setups.len();
    let setup_cpu = match (ticks_before, ticks_after) {
        (Some(a), Some(b)) => Some((b - a) as f64 / TICKS_PER_SECOND),
        _ => None,
    };
    out["setup"] = json!({
        "connected": connected,
        "failed": failures.len(),
        "failures": failures.iter().take(5).collect::<Vec<_>>(),
        "seconds": span,
        "per_second": if span > 0.0 { (connected as f64 / span * 10.0).round() / 10.0 } else { 0.0 },
        "hello_to_connected_ms": percentiles(setups),
        "daemon_cpu_s": setup_cpu,
        "daemon_cpu_ms_per_setup": setup_cpu.map(|s| (s * 1000.0 / connected.max(1) as f64 * 100.0).round() / 100.0),
    });
    eprintln!(
        "phoneload: {connected} pages connected in {span:.2} s ({} failed)",
        failures.len()
    );
    if connected == 0 {
        return out;
    }

    // 3. INVITE → ringing, one call at a time.
    let mut ringing = Vec::new();
    let mut latency_errors = Vec::new();
    for serial in 0..setting.latency_calls {
        match one_call(
            sip,
            &setting.latency_number,
            serial,
            setting.hold,
            &mut reports,
        )
        .await
        {
            Ok(latency) => ringing.push(latency),
            Err(why) => {
                latency_errors.push(why);
                if latency_errors.len() >= 3 {
                    break;
                }
            }
        }
    }
    out["invite_to_ringing"] = json!({"number": setting.latency_number, "ms": percentiles(ringing),
                                      "errors": latency_errors});

    // 3b. The pages on and idle (no call): what keeping N phones on costs
    // (ICE consent checks, keep-alives, the sessions' timers). After the
    // last latency call's wrap-up (2 s).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_before = process_ticks(pid);
    let idle_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(setting.idle_seconds)).await;
    let idle_after = process_ticks(pid);
    let idle_pct = match (idle_before, idle_after) {
        (Some(a), Some(b)) => {
            Some((b - a) as f64 / TICKS_PER_SECOND / idle_started.elapsed().as_secs_f64() * 100.0)
        }
        _ => None,
    };
    out["idle"] = json!({
        "seconds": setting.idle_seconds,
        "daemon_cpu_pct": idle_pct.map(|p| (p * 10.0).round() / 10.0),
        "daemon_us_per_page_second": idle_pct.map(|p| (p / 100.0 * 1e6 / connected as f64).round()),
    });

    // 4. The calls.
    eprintln!("calls: go");
    let mut in_call = vec![false; counters.len()];
    let calls_deadline = Instant::now() + setting.setup_timeout;
    let calls_started = Instant::now();
    while in_call.iter().filter(|c| **c).count() < connected {
        match timeout(
            calls_deadline.saturating_duration_since(Instant::now()),
            reports.recv(),
        )
        .await
        {
            Ok(Some(Report::InCall { page })) => in_call[page] = true,
            Ok(Some(Report::Ended { page })) => in_call[page] = false,
            Ok(Some(Report::Failed { page, why })) => failures.push(format!("page {page}: {why}")),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let bridged = in_call.iter().filter(|c| **c).count();
    eprintln!(
        "phoneload: {bridged} of {connected} pages in a call after {:.1} s",
        calls_started.elapsed().as_secs_f64()
    );
    // Every bridged call's relay port sends the page's frames to the patients' socket.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (reply, frozen) = oneshot::channel();
    let _ = patient_tx.send(patient::Command::Freeze(reply));
    let source_count = frozen.await.unwrap_or_default();
    eprintln!("phoneload: settling ({source_count} relay ports)");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let udp_before = udp_buffer_errors();
    let drops_before = (udp_drops(pid), udp_drops(std::process::id()));
    let daemon_before = process_ticks(pid);
    let own_before = process_ticks(std::process::id());
    let window_started = Instant::now();
    control.window.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    control.window.store(false, Ordering::Relaxed);
    let window = window_started.elapsed().as_secs_f64();
    let daemon_after = process_ticks(pid);
    let own_after = process_ticks(std::process::id());
    let udp_after = udp_buffer_errors();
    eprintln!("phoneload: window done, draining");
    tokio::time::sleep(Duration::from_secs(2)).await;
    // after the drain: the window's last packets are counted or dropped by now
    let drops_after = (udp_drops(pid), udp_drops(std::process::id()));

    let (reply, counts) = oneshot::channel();
    let _ = patient_tx.send(patient::Command::Counts(reply));
    let patient_counts = counts.await.unwrap_or_default();
    let sum = |f: fn(&Counters) -> u64| counters.iter().map(|c| f(c)).sum::<u64>();
    let pages_sent = sum(|c| c.sent_window.load(Ordering::Relaxed));
    let pages_received = sum(|c| c.received_window.load(Ordering::Relaxed));
    let still_in_call = counters
        .iter()
        .filter(|c| c.in_call.load(Ordering::Relaxed))
        .count();
    let cpu = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(a), Some(b)) => Some((b - a) as f64 / TICKS_PER_SECOND / window * 100.0),
        _ => None,
    };
    let daemon_pct = cpu(daemon_before, daemon_after);
    let round = |v: f64, places: i32| (v * 10f64.powi(places)).round() / 10f64.powi(places);
    out["calls"] = json!({
        "bridged": bridged,
        "still_in_call_at_end": still_in_call,
        "relay_ports_bridged": source_count,
        "relay_ports_heard": patient_counts.sources,
        "window_s": round(window, 3),
        "page_to_patient": {"sent": pages_sent, "received": patient_counts.received_window,
                            "lost": pages_sent as i64 - patient_counts.received_window as i64},
        "patient_to_page": {"sent": patient_counts.sent_window, "received": pages_received,
                            "lost": patient_counts.sent_window as i64 - pages_received as i64},
        // what 20 ms frames both ways on every bridged call would be
        "nominal_packets_per_second": bridged * 100,
        "udp_rcvbuf_errors": udp_after.0 - udp_before.0,
        "udp_sndbuf_errors": udp_after.1 - udp_before.1,
        // of which on the daemon's sockets, and on phoneload's (pages and patients)
        "udp_drops_daemon": drops_after.0.saturating_sub(drops_before.0),
        "udp_drops_phoneload": drops_after.1.saturating_sub(drops_before.1),
        "packets_per_second": round((pages_sent + patient_counts.sent_window) as f64 / window, 0),
        "daemon_cpu_pct": daemon_pct.map(|p| round(p, 1)),
        // µs of daemon CPU per second of one bridged call (both legs: patient RTP + page WebRTC)
        "daemon_us_per_call_second": daemon_pct.map(|p| round(p / 100.0 * 1e6 / bridged.max(1) as f64, 0)),
        "phoneload_cpu_pct": cpu(own_before, own_after).map(|p| round(p, 1)),
        "failures": failures.iter().skip(5).take(5).collect::<Vec<_>>(),
    });
    control.stopped.store(true, Ordering::Relaxed);
    control.stop.notify_waiters();
    drop(early);
    out
}

/// One call of INVITE → ringing: the page that rings answers; once it is in
/// the call the patient hangs up and the page sees the end.
async fn one_call(
    sip: SocketAddr,
    number: &str,
    serial: u32,
    hold: Duration,
    reports: &mut mpsc::UnboundedReceiver<Report>,
) -> Result<Duration, String> {
    let (invited_tx, invited_rx) = oneshot::channel();
    let (hang_up_tx, hang_up_rx) = oneshot::channel();
    let number = number.to_string();
    let call =
        tokio::spawn(async move { uac::call(sip, &number, serial, invited_tx, hang_up_rx).await });
    let invited = invited_rx
        .await
        .map_err(|_| format!("call {serial}: the INVITE was not sent"))?;
    let ringing = uac::bounded("ringing", async {
        loop {
            match reports.recv().await? {
                Report::Ringing { page, at } => return Some((page, at)),
                _ => continue,
            }
        }
    })
    .await?;
    let (rang, at) = ringing;
    uac::bounded("in call", async {
        loop {
            if let Report::InCall { page } = reports.recv().await?
                && page == rang
            {
                return Some(());
            }
        }
    })
    .await?;
    tokio::time::sleep(hold).await;
    let _ = hang_up_tx.send(());
    call.await.map_err(|error| error.to_string())??;
    uac::bounded("ended", async {
        loop {
            if let Report::Ended { page } = reports.recv().await?
                && page == rang
            {
                return Some(());
            }
        }
    })
    .await?;
    Ok(at.duration_since(invited))
}
