//! A cluster on loopback (issue 24): Debian's Kamailio on 127.0.0.10 with
//! the repository's `deploy/kamailio/kamailio.cfg`, in front of frontdesk
//! nodes on 127.0.0.11, 127.0.0.12, 127.0.0.13 (each its own `--data`,
//! free ports). Everything is killed on drop. `cluster.rs` uses it; the
//! later full cluster test (Redis, PostgreSQL) is meant to reuse it.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use cluster::claims::{AgentChange, ChangeFeed, FeedEvent, StoreConfig};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::call::open_clinic;
use super::redis::RedisServer;
use super::{Daemon, Launch, repo_root};

/// Kamailio's address: a `[trust] proxies` entry of the nodes' dialplan.
pub const KAMAILIO_IP: &str = "127.0.0.10";
/// The nodes' addresses.
pub const NODE_IPS: [&str; 3] = ["127.0.0.11", "127.0.0.12", "127.0.0.13"];
/// How long Kamailio may take to answer its first request.
const START_BOUND: Duration = Duration::from_secs(15);

/// The Kamailio binary (Debian's `kamailio` package).
pub fn kamailio_binary() -> PathBuf {
    PathBuf::from("/usr/sbin/kamailio")
}

/// The open demo clinic with the test's Kamailio as its `[trust] proxies`
/// (the demo lists docker-compose's).
pub fn cluster_dialplan(dir: &Path, tweak: impl Fn(String) -> String) -> PathBuf {
    open_clinic(dir, |text| {
        let start = text
            .find("\nproxies = ")
            .expect("clinic.toml lists proxies")
            + 1;
        let end = start + text[start..].find('\n').expect("a line");
        let text = format!(
            "{}proxies = [\"{KAMAILIO_IP}\"]{}",
            &text[..start],
            &text[end..]
        );
        tweak(text)
    })
}

/// Kamailio, run in the foreground with its pid file, runtime directory,
/// dispatcher list and log in a temporary directory.
#[derive(Debug)]
pub struct Kamailio {
    child: Option<Child>,
    address: SocketAddr,
    dir: tempfile::TempDir,
}

impl Kamailio {
    /// Starts Kamailio on `KAMAILIO_IP` (a free port, UDP and TCP) in front
    /// of `nodes`, probing them every second, failing over when a node
    /// sends nothing within `fr_timer_ms`; waits until it relays an OPTIONS.
    pub fn start(nodes: &[SocketAddr], fr_timer_ms: u64) -> Kamailio {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let list = dir.path().join("dispatcher.list");
        let mut file = std::fs::File::create(&list).expect("the dispatcher list");
        for node in nodes {
            writeln!(file, "1 sip:{node} 0 0").expect("write the list");
        }
        drop(file);
        let port = UdpSocket::bind((KAMAILIO_IP, 0))
            .and_then(|socket| socket.local_addr())
            .expect("a free port on Kamailio's address")
            .port();
        let address: SocketAddr = format!("{KAMAILIO_IP}:{port}").parse().expect("an address");
        let log = std::fs::File::create(dir.path().join("kamailio.log")).expect("a log file");
        let child = Command::new(kamailio_binary())
            .args(["-DD", "-E", "-f"])
            .arg(repo_root().join("deploy/kamailio/kamailio.cfg"))
            .args([
                "-l",
                &format!("udp:{address}"),
                "-l",
                &format!("tcp:{address}"),
            ])
            .arg("-A")
            .arg(format!("DISPATCHER_LIST=\"{}\"", list.display()))
            .args(["-A", "PING_INTERVAL=1"])
            .arg("-A")
            .arg(format!("FR_TIMER={fr_timer_ms}"))
            .arg("-Y")
            .arg(dir.path())
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .args(["-m", "64", "-M", "8", "-n", "2"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start kamailio");
        let kamailio = Kamailio {
            child: Some(child),
            address,
            dir,
        };
        kamailio.wait_ready();
        kamailio
    }

    /// Where phones send.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Kamailio's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }

    /// Polls with OPTIONS (relayed to a node, answered by it) until one
    /// is answered.
    fn wait_ready(&self) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("a read timeout");
        let me = socket.local_addr().expect("its address");
        let deadline = Instant::now() + START_BOUND;
        for attempt in 0.. {
            let options = format!(
                "OPTIONS sip:{address} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {me};branch=z9hG4bKready{attempt};rport\r\n\
                 From: <sip:test@{me}>;tag=ready\r\n\
                 To: <sip:{address}>\r\n\
                 Call-ID: ready-{attempt}@test\r\n\
                 CSeq: 1 OPTIONS\r\n\
                 Max-Forwards: 70\r\n\
                 Content-Length: 0\r\n\r\n",
                address = self.address
            );
            let _ = socket.send_to(options.as_bytes(), self.address);
            let mut buffer = [0u8; 4096];
            if let Ok(length) = socket.recv(&mut buffer)
                && buffer[..length].starts_with(b"SIP/2.0 200")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kamailio answered no OPTIONS within {START_BOUND:?}\n{}",
                self.log()
            );
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Its children are in its process group with it (`-DD`): the
            // main process kills them on SIGTERM; SIGKILL after a bound.
            let pid = Pid::from_raw(i32::try_from(child.id()).expect("a pid fits i32"));
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Kamailio and three nodes with the same dialplan.
#[derive(Debug)]
pub struct Cluster {
    /// The proxy, dropped first.
    pub kamailio: Kamailio,
    /// The nodes, in `NODE_IPS` order; `None` once killed.
    pub nodes: Vec<Option<Daemon>>,
    /// Each node's SIP address (kept after a node is gone, and reused when
    /// it starts again).
    pub node_sips: Vec<SocketAddr>,
    plan: PathBuf,
    /// Each node's own flags (e.g. `--node-id`, `--redis`, `--journal`).
    args: Vec<Vec<String>>,
    /// Each node's `--data`, kept across a kill and a restart.
    data: Vec<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Three nodes serving the open demo clinic (with `tweak`), then
    /// Kamailio in front of them.
    pub fn start(tweak: impl Fn(String) -> String, fr_timer_ms: u64) -> Cluster {
        Cluster::start_with(tweak, fr_timer_ms, |_| Vec::new())
    }

    /// As [`Cluster::start`], node `index` also given `args(index)` (each
    /// time it starts) and a data directory of the cluster's own, so that
    /// [`Cluster::restart`] finds its journal and outbox again.
    pub fn start_with(
        tweak: impl Fn(String) -> String,
        fr_timer_ms: u64,
        args: impl Fn(usize) -> Vec<String>,
    ) -> Cluster {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let plan = cluster_dialplan(dir.path(), tweak);
        let args: Vec<Vec<String>> = (0..NODE_IPS.len()).map(args).collect();
        let data: Vec<PathBuf> = (0..NODE_IPS.len())
            .map(|index| {
                let path = dir.path().join(format!("node{index}"));
                std::fs::create_dir_all(&path).expect("a node's data directory");
                path
            })
            .collect();
        let nodes: Vec<Daemon> = NODE_IPS
            .iter()
            .enumerate()
            .map(|(index, ip)| launch(&plan, &args[index], &data[index], format!("{ip}:0")))
            .collect();
        let node_sips: Vec<SocketAddr> = nodes.iter().map(Daemon::sip).collect();
        let kamailio = Kamailio::start(&node_sips, fr_timer_ms);
        Cluster {
            kamailio,
            nodes: nodes.into_iter().map(Some).collect(),
            node_sips,
            plan,
            args,
            data,
            _dir: dir,
        }
    }

    /// Node `index`, still running.
    pub fn node(&self, index: usize) -> &Daemon {
        self.nodes[index].as_ref().expect("a running node")
    }

    /// `kill -9` node `index`, waiting until it is gone.
    pub fn kill(&mut self, index: usize) {
        let mut daemon = self.nodes[index].take().expect("a running node");
        daemon.stop_with(Signal::SIGKILL);
    }

    /// SIGTERM node `index` (it drains: OPTIONS 503, its calls finish) and
    /// waits until it has exited, within `bound`.
    pub fn terminate(&mut self, index: usize, bound: Duration) {
        let mut daemon = self.nodes[index].take().expect("a running node");
        daemon.signal(Signal::SIGTERM);
        let status = daemon.wait_exit(bound);
        assert!(status.success(), "node {index} exited {status}");
    }

    /// Starts node `index` again (after [`Cluster::kill`] or
    /// [`Cluster::terminate`]): the same SIP address, flags and data.
    pub fn restart(&mut self, index: usize) {
        assert!(self.nodes[index].is_none(), "node {index} is running");
        let daemon = launch(
            &self.plan,
            &self.args[index],
            &self.data[index],
            self.node_sips[index],
        );
        self.nodes[index] = Some(daemon);
    }
}

fn launch(plan: &Path, args: &[String], data: &Path, sip: impl ToString) -> Daemon {
    Launch::new()
        .dialplan(plan)
        .data(data)
        .sip(sip)
        .args(args)
        .start()
}

/// The sum of every `/metrics` series that starts with `prefix`.
pub fn metric_sum(daemon: &Daemon, prefix: &str) -> f64 {
    daemon
        .get("/metrics", None)
        .body
        .lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next())
        .filter_map(|value| value.parse::<f64>().ok())
        .sum()
}

/// Patients calling `target` (Kamailio, or one node) with `caller.xml`
/// (they press nothing: the emergency notice answers), `calls` of them at
/// `rate` per second, each hanging up `talk_ms` + 2 s after the answer; the
/// run's result when they are done.
pub fn patients(
    target: SocketAddr,
    calls: u64,
    rate: u64,
    talk_ms: u64,
) -> std::thread::JoinHandle<super::sipp::SippRun> {
    let audio = super::phone::RtpPeer::start(0, true);
    let port = audio.port();
    std::thread::spawn(move || {
        let run = super::sipp::Sipp::new("caller.xml", target)
            .calls(calls)
            .rate(rate)
            .args([
                "-s",
                "+15550100",
                "-set",
                "rtp_port",
                &port.to_string(),
                "-set",
                "dtmf",
                "0",
                "-d",
                &talk_ms.to_string(),
            ])
            .run();
        drop(audio);
        run
    })
}

/// The kinds of the alerts `daemon` shows on `/api/alerts` now.
pub fn alert_kinds(daemon: &Daemon) -> Vec<String> {
    let body: serde_json::Value =
        serde_json::from_str(&daemon.get("/api/alerts", Some(super::TOKEN)).body)
            .expect("/api/alerts answers JSON");
    body["alerts"]
        .as_array()
        .map(|alerts| {
            alerts
                .iter()
                .filter_map(|a| a["kind"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Follows the claim stream on its own thread from before the nodes start
/// until stopped: every change, in stream order.
pub struct ClaimMonitor {
    changes: Arc<Mutex<Vec<AgentChange>>>,
    fell_behind: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ClaimMonitor {
    pub fn start(redis: &RedisServer) -> ClaimMonitor {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let mut feed = runtime
            .block_on(ChangeFeed::open(StoreConfig::new(redis.url())))
            .expect("the claims feed")
            .0;
        let changes = Arc::new(Mutex::new(Vec::new()));
        let fell_behind = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (changes, fell_behind, stop) = (
                Arc::clone(&changes),
                Arc::clone(&fell_behind),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match runtime.block_on(feed.next()) {
                        Ok(Some(FeedEvent::Changes(more))) => {
                            changes.lock().expect("a lock").extend(more);
                        }
                        Ok(Some(FeedEvent::Resync(_))) => {
                            fell_behind.store(true, Ordering::Relaxed)
                        }
                        Ok(None) | Err(_) => {}
                    }
                }
            })
        };
        ClaimMonitor {
            changes,
            fell_behind,
            stop,
            thread: Some(thread),
        }
    }

    pub fn changes(&self) -> Vec<AgentChange> {
        self.changes.lock().expect("a lock").clone()
    }

    /// The feed had to resync: the stream was trimmed past what it read,
    /// so [`ClaimMonitor::changes`] may miss some.
    pub fn fell_behind(&self) -> bool {
        self.fell_behind.load(Ordering::Relaxed)
    }
}

impl Drop for ClaimMonitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
