//! A real `redis-server` (Debian's; `tests/run` installs it) on a free
//! loopback port, in a temporary directory, with no persistence; killed and
//! reaped on drop. A copy of crates/cluster/tests/support/redis.rs with
//! [`RedisServer::restart`] on the same port (the claims test stops Redis
//! and brings it back).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server; dropping it kills it.
pub struct RedisServer {
    child: Option<Child>,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one with the default stream node size.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts one with extra `redis-server` arguments (e.g.
    /// `["--stream-node-max-entries", "4"]` so that `MAXLEN ~` trims small
    /// streams). Waits (bounded) until it answers PING.
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_on(None, extra)
    }

    /// Starts one again on the port of one killed earlier.
    pub fn restart(&mut self) {
        let port = self.addr.port();
        self.kill();
        let again = Self::start_on(Some(port), &[]);
        *self = again;
    }

    fn start_on(fixed: Option<u16>, extra: &[&str]) -> Self {
        let binary =
            std::env::var("FRONTDESK_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let dir = tempfile::tempdir().expect("a temporary directory");
        // Free ports are found by binding port 0; another process may take
        // the port between our close and redis's bind, so retry a few times.
        for _ in 0..5 {
            let port = fixed.unwrap_or_else(|| {
                TcpListener::bind("127.0.0.1:0")
                    .and_then(|listener| listener.local_addr())
                    .expect("a free loopback port")
                    .port()
            });
            let mut child = Command::new(&binary)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .args([
                    "--daemonize",
                    "no",
                    "--protected-mode",
                    "yes",
                    "--loglevel",
                    "warning",
                ])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|error| {
                    panic!("cannot start {binary} ({error}); apt-get install redis-server")
                });
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: probably the port was taken; try another
                }
                if ping(addr) {
                    return Self {
                        child: Some(child),
                        addr,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(20)); // a poll interval, bounded by the deadline
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start");
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Kills it now (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    use std::io::Write;
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("+PONG")
}
