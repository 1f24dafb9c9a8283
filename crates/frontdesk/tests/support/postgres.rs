//! A real PostgreSQL server for tests, on a free loopback port, in a
//! temporary directory; stopped and removed on drop.
//!
//! Shared by `records`' tests (included there with `#[path]`) and
//! frontdesk's end-to-end tests, so it uses only std and `tempfile`.
//! PostgreSQL refuses to run as root: every server command runs as the
//! `postgres` user (`runuser -u postgres`), in a directory chowned to it.
//! The binaries are Debian's (`postgresql`, tests/run installs it).
//! Connections over TCP need a password (scram-sha-256), so the URL's
//! password is really used; `psql` here goes through the socket (trust).
#![allow(dead_code)] // Each test binary uses a different part.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's server binaries.
pub const BIN: &str = "/usr/lib/postgresql/15/bin";
/// The role the tests connect as, and its password.
pub const ROLE: &str = "frontdesk";
/// The role's password (in URLs; never in the daemon's logs).
pub const PASSWORD: &str = "pg-s3cret-pw";
/// How long a start or a stop may take.
const BOUND: Duration = Duration::from_secs(60);

/// One server.
pub struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

/// Whether the server binaries are installed.
pub fn available() -> bool {
    Path::new(BIN).join("postgres").exists()
}

impl Postgres {
    /// `initdb`, then start, then create the role [`ROLE`]. Panics (a test
    /// harness) if any step fails, with its output.
    pub fn start() -> Postgres {
        assert!(
            available(),
            "PostgreSQL is not installed ({BIN}); tests/run installs the package postgresql"
        );
        let dir = tempfile::Builder::new()
            .prefix("frontdesk-pg")
            .tempdir()
            .expect("a temporary directory");
        run(Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.path()));
        run(as_postgres(&format!("{BIN}/initdb"))
            .arg("-D")
            .arg(dir.path().join("data"))
            .args([
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-U",
                "postgres",
                "--no-sync",
            ]));
        let port = free_port();
        let mut server = Postgres {
            dir,
            port,
            child: None,
        };
        server.resume();
        server.psql(
            "postgres",
            &format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'"),
        );
        server
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new database owned by [`ROLE`]; returns its URL.
    pub fn database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {name} OWNER {ROLE}"));
        self.url(name)
    }

    /// The URL of database `name` (with the password).
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://{ROLE}:{PASSWORD}@127.0.0.1:{}/{name}",
            self.port
        )
    }

    /// Runs `sql` in database `name` through `psql` and returns its
    /// unaligned output (`|` between columns, a line per row).
    pub fn psql(&self, name: &str, sql: &str) -> String {
        let output = as_postgres("psql")
            .arg("-h")
            .arg(self.dir.path())
            .arg("-p")
            .arg(self.port.to_string())
            .args([
                "-U",
                "postgres",
                "-d",
                name,
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .expect("psql runs");
        assert!(
            output.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_string()
    }

    /// Stops the server (fast shutdown: connections are cut), keeping its
    /// data for [`Self::resume`].
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = as_postgres(&format!("{BIN}/pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["stop", "-m", "fast", "-w", "-t", "60"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + BOUND;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server (again) on the same data and port, and waits
    /// until it accepts connections.
    pub fn resume(&mut self) {
        if self.child.is_some() {
            return;
        }
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("a log file");
        let child = as_postgres(&format!("{BIN}/postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-k")
            .arg(self.dir.path())
            .args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            // A test's data needs no fsync; it only makes the tests slow.
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        self.child = Some(child);
        let deadline = Instant::now() + BOUND;
        loop {
            let ready = Command::new(format!("{BIN}/pg_isready"))
                .args(["-h", "127.0.0.1", "-p"])
                .arg(self.port.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if ready {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("postgres exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready within {BOUND:?}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Where its files are.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A command run as the `postgres` user.
fn as_postgres(program: &str) -> Command {
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--", program]);
    command
}

/// Runs a set-up command; panics with its output if it fails.
fn run(command: &mut Command) {
    let output = command.output().expect("the command runs");
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A port free on 127.0.0.1 now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}
