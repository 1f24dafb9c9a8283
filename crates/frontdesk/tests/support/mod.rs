//! End-to-end harness: the real `frontdesk` binary on free ports.
//!
//! [`Launch`] starts `frontdesk run` on `127.0.0.1:0` for SIP and HTTP with
//! a fresh data directory, reads the ports back from the daemon's stdout
//! readiness lines (`sip-listening ADDR`, `http-listening ADDR`), then polls
//! `/api/health` until it answers. Nothing sleeps for a guessed time: every
//! wait is for an event, bounded by a deadline. Dropping a [`Daemon`] sends
//! SIGTERM, then SIGKILL if it has not exited within a bound.
#![allow(dead_code)] // Each test binary uses a different part of the harness.

pub mod attack;
pub mod baresip;
pub mod browser;
pub mod call;
pub mod cluster;
pub mod http;
pub mod leads;
pub mod linphone;
pub mod page;
pub mod people;
pub mod phone;
pub mod postgres;
pub mod raw;
pub mod redis;
pub mod sipp;
pub mod torture;

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

// Re-exported for the tests that call it; some test binaries do not.
#[allow(unused_imports)]
pub use self::http::{Response, get};

/// The admin token the harness starts the daemon with, unless told not to.
pub const TOKEN: &str = "test-token";

/// How long a daemon may take to print its readiness lines.
const START_BOUND: Duration = Duration::from_secs(30);
/// How long `/api/health` may take to answer 200 once HTTP is listening.
const HEALTH_BOUND: Duration = Duration::from_secs(10);
/// How long a daemon may take to exit after SIGTERM: its whole stop fits
/// in its grace (`SHUTDOWN_GRACE`, 30 s), and a little more.
pub const STOP_BOUND: Duration = Duration::from_secs(35);
/// Pause between two health polls.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The demo clinic's dialplan.
pub fn clinic_dialplan() -> PathBuf {
    repo_root().join("dialplans/clinic.toml")
}

/// A copy of the demo clinic in `dir` (with its prompts), for tests that
/// change the file under a running daemon.
pub fn copy_clinic_into(dir: &Path) -> PathBuf {
    let path = dir.join("clinic.toml");
    std::fs::copy(clinic_dialplan(), &path).expect("copy clinic.toml");
    std::os::unix::fs::symlink(repo_root().join("dialplans/prompts"), dir.join("prompts"))
        .expect("link the prompts");
    path
}

/// How to start `frontdesk run`.
#[derive(Debug)]
pub struct Launch {
    /// `run`, or `demo` for [`Launch::demo`].
    subcommand: &'static str,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    token: bool,
    /// `None`: no `--dialplan`, run from the repository's root (its default).
    dialplan: Option<PathBuf>,
    sip: String,
    data: tempfile::TempDir,
    data_arg: Option<PathBuf>,
    /// With [`Launch::sips`]: the certificate the harness trusts for HTTPS.
    tls: Option<PathBuf>,
    /// `--rtp-ports`: a slice of the range of this daemon's own.
    rtp_ports: (u16, u16),
}

impl Default for Launch {
    fn default() -> Self {
        Self::new()
    }
}

impl Launch {
    /// `run --sip 127.0.0.1:0 --http 127.0.0.1:0 --data <temp> --admin-token
    /// test-token --dialplan dialplans/clinic.toml`.
    pub fn new() -> Self {
        Self {
            subcommand: "run",
            args: Vec::new(),
            env: Vec::new(),
            token: true,
            dialplan: Some(clinic_dialplan()),
            sip: "127.0.0.1:0".to_string(),
            data: tempfile::tempdir().expect("a temporary directory"),
            data_arg: None,
            tls: None,
            rtp_ports: rtp_slice(),
        }
    }

    /// `--sips 127.0.0.1:0 --cert cert --key key`: SIP over TLS too, and the
    /// admin API over HTTPS, which the harness then speaks, trusting `cert`.
    pub fn sips(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        let (cert, key) = (cert.into(), key.into());
        self.args.extend([
            OsString::from("--sips"),
            "127.0.0.1:0".into(),
            "--cert".into(),
            cert.clone().into(),
            "--key".into(),
            key.into(),
        ]);
        self.trust(cert)
    }

    /// Speaks HTTPS to the admin API, trusting the PEM certificate `cert`
    /// (for a daemon given `--sips` through [`Launch::args`]).
    pub fn trust(mut self, cert: impl Into<PathBuf>) -> Self {
        self.tls = Some(cert.into());
        self
    }

    /// The temporary directory the daemon runs in and, unless told
    /// otherwise, keeps its data in (removed on drop).
    pub fn data_dir(&self) -> &Path {
        self.data_arg.as_deref().unwrap_or(self.data.path())
    }

    /// `--data path` instead of the temporary directory.
    pub fn data(mut self, path: impl Into<PathBuf>) -> Self {
        self.data_arg = Some(path.into());
        self
    }

    /// `--sip addr` instead of `127.0.0.1:0`.
    pub fn sip(mut self, addr: impl ToString) -> Self {
        self.sip = addr.to_string();
        self
    }

    /// Serves `path` instead of the demo clinic.
    pub fn dialplan(mut self, path: impl Into<PathBuf>) -> Self {
        self.dialplan = Some(path.into());
        self
    }

    /// Runs from the repository's root without `--dialplan`, as the README's
    /// `cargo run --release -- run` does.
    pub fn default_dialplan(mut self) -> Self {
        self.dialplan = None;
        self
    }

    /// Starts `frontdesk demo` (the daemon with simulated agents and
    /// patients) instead of `run`, with the same flags.
    pub fn demo(mut self) -> Self {
        self.subcommand = "demo";
        self
    }

    /// Starts without `--admin-token`.
    pub fn without_token(mut self) -> Self {
        self.token = false;
        self
    }

    /// Adds arguments after the harness's own (flags the harness does not set).
    pub fn args<S: Into<OsString>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the daemon.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
        command
            .arg(self.subcommand)
            .args(["--sip", &self.sip, "--http", "127.0.0.1:0", "--data"])
            .arg(self.data_dir())
            .args([
                "--rtp-ports",
                &format!("{}-{}", self.rtp_ports.0, self.rtp_ports.1),
            ]);
        match &self.dialplan {
            Some(path) => {
                command
                    .arg("--dialplan")
                    .arg(path)
                    .current_dir(self.data.path());
            }
            None => {
                command.current_dir(repo_root());
            }
        }
        if self.token {
            command.args(["--admin-token", TOKEN]);
        }
        // The suite runs many debug daemons at once on a shared box: their
        // event loops run late now and then, and admission control would
        // shed the tests' calls. Tests of admission set their own.
        if self.subcommand == "run" && !self.args.iter().any(|arg| arg == "--overload-lag") {
            command.args(["--overload-lag", "1000"]);
        }
        command
            .args(&self.args)
            .env_remove("FRONTDESK_ADMIN_TOKEN")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Starts the daemon and waits until it is healthy.
    pub fn start(self) -> Daemon {
        let mut child = self.command().spawn().expect("start frontdesk");
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("a pid fits i32"));
        let stdout = lines_to_channel(child.stdout.take().expect("piped stdout"));
        let stderr = Log::collect(child.stderr.take().expect("piped stderr"));
        let exited = wait_in_thread(child);
        let mut daemon = Daemon {
            pid,
            exited,
            status: None,
            sip: None,
            sips: None,
            http: None,
            stderr,
            stdout: Vec::new(),
            launch: self,
        };
        daemon.read_readiness(&stdout);
        daemon.wait_healthy();
        daemon
    }

    /// Runs a daemon that is expected to stop on its own (refusing to
    /// start); panics if it is still running after `bound`.
    pub fn run_to_exit(self, bound: Duration) -> Finished {
        let child = self.command().spawn().expect("start frontdesk");
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = send.send(child.wait_with_output());
        });
        let output = receive
            .recv_timeout(bound)
            .unwrap_or_else(|_| panic!("frontdesk still running after {bound:?}"))
            .expect("wait for frontdesk");
        Finished {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// A daemon that ran to its end.
#[derive(Debug)]
pub struct Finished {
    /// How it exited.
    pub status: ExitStatus,
    /// All it printed on stdout.
    pub stdout: String,
    /// All it printed on stderr (its log).
    pub stderr: String,
}

/// A running `frontdesk run`.
#[derive(Debug)]
pub struct Daemon {
    pid: Pid,
    exited: Receiver<ExitStatus>,
    status: Option<ExitStatus>,
    sip: Option<SocketAddr>,
    sips: Option<SocketAddr>,
    http: Option<SocketAddr>,
    stderr: Arc<Log>,
    stdout: Vec<String>,
    launch: Launch,
}

impl Daemon {
    /// The daemon's `--rtp-ports`, lowest and highest.
    pub fn rtp_ports(&self) -> (u16, u16) {
        self.launch.rtp_ports
    }

    /// The daemon's process id (to read its `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.pid.as_raw().unsigned_abs()
    }

    /// Where SIP listens (UDP and TCP).
    pub fn sip(&self) -> SocketAddr {
        self.sip.expect("read at start")
    }

    /// Where SIP over TLS listens (started with [`Launch::sips`]).
    pub fn sips(&self) -> SocketAddr {
        self.sips.expect("started with --sips")
    }

    /// Where the admin HTTP API listens.
    pub fn http(&self) -> SocketAddr {
        self.http.expect("read at start")
    }

    /// A request to the admin API, over HTTPS when started with
    /// [`Launch::sips`].
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> std::io::Result<Response> {
        match &self.launch.tls {
            Some(ca) => http::https_request(self.http(), ca, method, path, token, body),
            None => http::request(self.http(), method, path, token, body),
        }
    }

    /// The daemon's data directory.
    pub fn data_dir(&self) -> &Path {
        self.launch.data_dir()
    }

    /// The lines it printed on stdout up to its `http-listening` line.
    pub fn stdout_lines(&self) -> &[String] {
        &self.stdout
    }

    /// `GET path` on the admin API, with the harness's token if `token`.
    pub fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.try_request("GET", path, token, None)
            .unwrap_or_else(|error| panic!("GET {path} on {}: {error}", self.http()))
    }

    /// The log so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: Signal) {
        kill(self.pid, signal).expect("signal frontdesk");
    }

    /// Waits until a log line satisfies `matches`, and returns it.
    pub fn wait_for_log(&self, matches: impl Fn(&str) -> bool, bound: Duration) -> String {
        self.stderr.wait_for(matches, bound).unwrap_or_else(|| {
            panic!(
                "no such log line within {bound:?}; the log:\n{}",
                self.stderr()
            )
        })
    }

    /// Waits for the daemon to exit on its own (after a signal sent
    /// earlier), within `bound`; panics past it.
    pub fn wait_exit(&mut self, bound: Duration) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        match self.exited.recv_timeout(bound) {
            Ok(status) => {
                self.status = Some(status);
                status
            }
            Err(_) => panic!(
                "frontdesk still running after {bound:?}; the log:\n{}",
                self.stderr()
            ),
        }
    }

    /// Sends SIGTERM and waits for the exit, within [`STOP_BOUND`].
    pub fn terminate(&mut self) -> ExitStatus {
        self.stop_with(Signal::SIGTERM)
    }

    /// Sends `signal` and waits for the exit, within [`STOP_BOUND`]; past
    /// it, kills the daemon and panics.
    pub fn stop_with(&mut self, signal: Signal) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        self.signal(signal);
        match self.exited.recv_timeout(STOP_BOUND) {
            Ok(status) => {
                self.status = Some(status);
                status
            }
            Err(_) => {
                let _ = kill(self.pid, Signal::SIGKILL);
                self.status = self.exited.recv_timeout(STOP_BOUND).ok();
                panic!(
                    "frontdesk did not exit within {STOP_BOUND:?} of {signal}; the log:\n{}",
                    self.stderr()
                );
            }
        }
    }

    fn read_readiness(&mut self, stdout: &Receiver<String>) {
        let deadline = Instant::now() + START_BOUND;
        while self.sip.is_none() || self.http.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match stdout.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no readiness lines within {START_BOUND:?}; stdout: {:?}; the log:\n{}",
                    self.stdout,
                    self.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.exited.recv_timeout(STOP_BOUND).ok();
                    self.status = status;
                    panic!(
                        "frontdesk exited ({status:?}) before it was ready; stdout: {:?}; the log:\n{}",
                        self.stdout,
                        self.stderr()
                    );
                }
            };
            let address = |prefix: &str| {
                line.strip_prefix(prefix)
                    .map(|rest| rest.trim().parse::<SocketAddr>().expect("an address"))
            };
            if let Some(addr) = address("sip-listening ") {
                self.sip = Some(addr);
            } else if let Some(addr) = address("sips-listening ") {
                self.sips = Some(addr);
            } else if let Some(addr) = address("http-listening ") {
                self.http = Some(addr);
            }
            self.stdout.push(line);
        }
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + HEALTH_BOUND;
        loop {
            let last = self.try_request("GET", "/api/health", None, None);
            if matches!(&last, Ok(response) if response.status == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "/api/health not ok within {HEALTH_BOUND:?}: {last:?}; the log:\n{}",
                self.stderr()
            );
            std::thread::sleep(POLL_EVERY);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The test failed: its daemon's log is the first thing to read.
            eprintln!("--- frontdesk log ---\n{}--- end of log ---", self.stderr());
        }
        if self.status.is_some() {
            return;
        }
        let _ = kill(self.pid, Signal::SIGTERM);
        if self.exited.recv_timeout(STOP_BOUND).is_err() {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = self.exited.recv_timeout(STOP_BOUND);
        }
    }
}

/// Reads `source` line by line on a thread, sending each line.
fn lines_to_channel(source: impl Read + Send + 'static) -> Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(source).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// Waits for the child on a thread, so that waiting with a bound needs no
/// polling; the status arrives on the channel.
fn wait_in_thread(mut child: Child) -> Receiver<ExitStatus> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        if let Ok(status) = child.wait() {
            let _ = send.send(status);
        }
    });
    receive
}

/// A log being read from a pipe, that tests can wait on.
#[derive(Debug, Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

impl Log {
    fn collect(source: impl Read + Send + 'static) -> Arc<Self> {
        let log = Arc::new(Self::default());
        let writer = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(source).lines() {
                let Ok(line) = line else { break };
                writer.lines.lock().expect("log lock").push(line);
                writer.grew.notify_all();
            }
        });
        log
    }

    fn text(&self) -> String {
        self.lines.lock().expect("log lock").join("\n")
    }

    fn wait_for(&self, matches: impl Fn(&str) -> bool, bound: Duration) -> Option<String> {
        let deadline = Instant::now() + bound;
        let mut lines = self.lines.lock().expect("log lock");
        loop {
            if let Some(line) = lines.iter().find(|line| matches(line)) {
                return Some(line.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            lines = self.grew.wait_timeout(lines, left).expect("log lock").0;
        }
    }
}

/// A slice of 200 RTP ports of its own for each daemon this test binary
/// starts (its tests run in parallel; binaries run one after another). With
/// one shared range, a port one daemon freed was soon leased by another
/// while the first call's phone still sent to it: a stray that has nothing
/// to do with the test under way.
fn rtp_slice() -> (u16, u16) {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let low = 20_000 + (NEXT.fetch_add(1, Ordering::Relaxed) % 100) * 200;
    (low, low + 199)
}
