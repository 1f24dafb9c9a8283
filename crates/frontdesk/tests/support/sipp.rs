//! SIPp scenarios from `tests/sipp/` against a running daemon.
//!
//! [`Sipp`] runs `sipp` in a temporary directory with `-trace_stat`, bounded
//! twice: SIPp's own `-timeout` (with `-timeout_error`, so a run that hits
//! it fails) and a wall-clock bound after which the process is killed by
//! its id. [`SippRun`] holds the exit status and the cumulative counters of
//! the last line of SIPp's statistics file, so that tests assert what SIPp
//! counted, not what a log says.
//!
//! With [`Sipp::trace_messages`] it also keeps SIPp's per-message counters
//! (`-trace_counts`: which branch of a scenario each call took) and every
//! response time (`-trace_rtt`). SIPp picks its own local port: with no
//! `-p` it binds the first free one from 5060 up, so parallel runs never
//! collide.

use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::repo_root;

/// SIPp's own global timeout for one run.
const SIPP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the harness waits for SIPp to exit before killing it.
const RUN_BOUND: Duration = Duration::from_secs(90);

/// SIPp's transport modes used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SippTransport {
    /// `-t u1`: UDP, one socket.
    Udp,
    /// `-t t1`: TCP, one connection.
    Tcp,
}

impl SippTransport {
    fn flag(self) -> &'static str {
        match self {
            SippTransport::Udp => "u1",
            SippTransport::Tcp => "t1",
        }
    }
}

/// One SIPp run to make.
#[derive(Debug)]
pub struct Sipp {
    scenario: PathBuf,
    target: SocketAddr,
    transport: SippTransport,
    calls: u64,
    rate: u64,
    extra: Vec<String>,
    local_ip: IpAddr,
    injection: Vec<String>,
    trace_messages: bool,
    pid: Option<mpsc::Sender<u32>>,
}

impl Sipp {
    /// The scenario `tests/sipp/<name>` against `target`, over UDP, 10 calls
    /// at 100 calls/s.
    pub fn new(name: &str, target: SocketAddr) -> Self {
        Self {
            scenario: repo_root().join("tests/sipp").join(name),
            target,
            transport: SippTransport::Udp,
            calls: 10,
            rate: 100,
            extra: Vec::new(),
            local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            injection: Vec::new(),
            trace_messages: false,
            pid: None,
        }
    }

    /// Sends SIPp's process id to `to` once it runs, for a test that must
    /// stop it early (it is the test's own process: killed by that id).
    pub fn pid_to(mut self, to: mpsc::Sender<u32>) -> Self {
        self.pid = Some(to);
        self
    }

    /// `-t u1` or `-t t1`.
    pub fn transport(mut self, transport: SippTransport) -> Self {
        self.transport = transport;
        self
    }

    /// `-m calls`: SIPp stops after this many calls.
    pub fn calls(mut self, calls: u64) -> Self {
        self.calls = calls;
        self
    }

    /// `-r rate`: new calls per second.
    pub fn rate(mut self, rate: u64) -> Self {
        self.rate = rate;
        self
    }

    /// Sends from `ip` instead of 127.0.0.1 (e.g. 127.0.0.2, the
    /// untrusted source of flood tests).
    pub fn from(mut self, ip: IpAddr) -> Self {
        self.local_ip = ip;
        self
    }

    /// `-inf`: an injection file of these lines, read in sequence
    /// (`SEQUENTIAL`; SIPp starts over at the end).
    pub fn inject<S: ToString>(mut self, lines: impl IntoIterator<Item = S>) -> Self {
        self.injection
            .extend(lines.into_iter().map(|line| line.to_string()));
        self
    }

    /// Keeps the per-message counters and every response time
    /// ([`SippRun::message_count`], [`SippRun::response_times`]).
    pub fn trace_messages(mut self) -> Self {
        self.trace_messages = true;
        self
    }

    /// More arguments, after the harness's own.
    pub fn args<S: ToString>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.extra.extend(args.into_iter().map(|a| a.to_string()));
        self
    }

    /// Runs SIPp to its end; panics if it cannot start or outlives
    /// [`RUN_BOUND`].
    pub fn run(self) -> SippRun {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut options: Vec<std::ffi::OsString> = Vec::new();
        if !self.injection.is_empty() {
            let path = dir.path().join("injection.csv");
            let mut lines = vec!["SEQUENTIAL".to_string()];
            lines.extend(self.injection.iter().cloned());
            std::fs::write(&path, lines.join("\n") + "\n").expect("write the injection file");
            options.extend(["-inf".into(), path.into()]);
        }
        if self.trace_messages {
            options.extend(["-trace_counts", "-trace_rtt", "-rtt_freq", "1"].map(Into::into));
        }
        let mut command = Command::new("sipp");
        command
            .arg(self.target.to_string())
            .arg("-sf")
            .arg(&self.scenario)
            .args(["-t", self.transport.flag()])
            .args(["-m", &self.calls.to_string()])
            .args(["-r", &self.rate.to_string()])
            // Loopback only: our Via, Contact and source address.
            .args(["-i", &self.local_ip.to_string(), "-bind_local"])
            .args(["-timeout", &format!("{}s", SIPP_TIMEOUT.as_secs())])
            .args(["-timeout_error", "-nostdin", "-trace_err"])
            .args(["-trace_stat", "-stf", "stats.csv", "-fd", "1"])
            .args(&options)
            .args(&self.extra)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|error| {
            panic!("cannot start sipp ({error}); install sip-tester (tests/run does)")
        });
        let stdout = read_in_thread(child.stdout.take().expect("piped stdout"));
        let stderr = read_in_thread(child.stderr.take().expect("piped stderr"));
        let (send, exited) = mpsc::channel();
        let pid = child.id();
        if let Some(to) = &self.pid {
            let _ = to.send(pid);
        }
        let waiter = std::thread::spawn(move || {
            let status = child.wait();
            let _ = send.send(());
            (status, child)
        });
        if exited.recv_timeout(RUN_BOUND).is_err() {
            // Ours: SIPp started above, killed by its own id.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid fits i32")),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = waiter.join();
            panic!("sipp still running after {RUN_BOUND:?}");
        }
        let (status, _child) = waiter.join().expect("the waiting thread");
        let status = status.expect("wait for sipp");
        let output = format!(
            "{}{}",
            stdout.join().unwrap_or_default(),
            stderr.join().unwrap_or_default()
        );
        let stats = std::fs::read_to_string(dir.path().join("stats.csv"))
            .map(|csv| last_counters(&csv))
            .unwrap_or_default();
        let file = |suffix: &str| {
            std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
                .filter(|entry| entry.file_name().to_string_lossy().ends_with(suffix))
                .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
                .collect::<Vec<_>>()
                .join("\n")
        };
        let errors = file("_errors.log");
        let messages = last_counters(&file("_counts.csv"));
        let response_times = response_times(&file("_rtt.csv"));
        SippRun {
            status,
            stats,
            messages,
            response_times,
            output,
            errors,
        }
    }
}

fn read_in_thread(mut source: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = source.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The last line of a `-trace_stat` file, keyed by the header's names.
fn last_counters(csv: &str) -> HashMap<String, String> {
    let mut lines = csv.lines().filter(|line| !line.trim().is_empty());
    let Some(header) = lines.next() else {
        return HashMap::new();
    };
    let Some(last) = lines.next_back() else {
        return HashMap::new();
    };
    header
        .split(';')
        .zip(last.split(';'))
        .map(|(name, value)| (name.to_string(), value.trim().to_string()))
        .collect()
}

/// Each line of a `-trace_rtt` file (`date_ms;response_time_ms;rtd`) as
/// the rtd's name and whole milliseconds.
fn response_times(csv: &str) -> Vec<(String, u64)> {
    csv.lines()
        .filter_map(|line| {
            let mut fields = line.split(';');
            let _date = fields.next()?;
            let ms: f64 = fields.next()?.trim().parse().ok()?;
            let rtd = fields.next()?.trim();
            // SIPp measures whole milliseconds; the header line is skipped
            // by the parse above.
            Some((rtd.to_string(), ms as u64))
        })
        .collect()
}

/// What one SIPp run did.
#[derive(Debug)]
pub struct SippRun {
    /// SIPp's exit status: 0 only when every call succeeded.
    pub status: ExitStatus,
    /// The cumulative counters of SIPp's last statistics line.
    stats: HashMap<String, String>,
    /// The last line of `-trace_counts`, with [`Sipp::trace_messages`].
    messages: HashMap<String, String>,
    /// Every response time, with [`Sipp::trace_messages`].
    response_times: Vec<(String, u64)>,
    /// SIPp's stdout and stderr.
    pub output: String,
    /// SIPp's `-trace_err` log.
    pub errors: String,
}

impl SippRun {
    /// A counter from the statistics file, e.g. `SuccessfulCall(C)`;
    /// panics if SIPp wrote no such counter.
    pub fn count(&self, name: &str) -> u64 {
        let value = self
            .stats
            .get(name)
            .unwrap_or_else(|| panic!("sipp wrote no {name} counter; {self}"));
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} = {value:?} is not a count; {self}"))
    }

    /// A per-message counter of `-trace_counts`: `<index>_<message>_<what>`,
    /// e.g. `3_401_Recv` (the scenario's fourth element, a 401, received);
    /// needs [`Sipp::trace_messages`]. Panics if SIPp wrote no such counter.
    pub fn message_count(&self, name: &str) -> u64 {
        let value = self
            .messages
            .get(name)
            .unwrap_or_else(|| panic!("sipp wrote no {name} message counter; {self}"));
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} = {value:?} is not a count; {self}"))
    }

    /// Every response time SIPp measured: the rtd's name (a scenario's
    /// `start_rtd`/`rtd`) and milliseconds; needs [`Sipp::trace_messages`].
    pub fn response_times(&self) -> &[(String, u64)] {
        &self.response_times
    }

    /// Asserts exit status 0 and `calls` calls created and successful, none
    /// failed.
    pub fn assert_all_succeeded(&self, calls: u64) {
        assert_eq!(self.status.code(), Some(0), "sipp failed; {self}");
        assert_eq!(self.count("TotalCallCreated"), calls, "{self}");
        assert_eq!(self.count("SuccessfulCall(C)"), calls, "{self}");
        assert_eq!(self.count("FailedCall(C)"), 0, "{self}");
    }
}

impl std::fmt::Display for SippRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut counters: Vec<_> = self
            .stats
            .iter()
            .filter(|(name, value)| name.ends_with("(C)") && value.as_str() != "0")
            .collect();
        counters.sort();
        write!(
            f,
            "exit {:?}; non-zero counters {counters:?}\nsipp output (end):\n{}\nsipp errors (end):\n{}",
            self.status.code(),
            tail(&self.output),
            tail(&self.errors)
        )
    }
}

/// The last few kilobytes of `text` (SIPp repeats its screen).
fn tail(text: &str) -> &str {
    const KEEP: usize = 4000;
    let mut start = text.len().saturating_sub(KEEP);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
