//! A headless baresip driven from Rust (the recipe is
//! `tests/baresip/README.md`): its own config folder in a temporary
//! directory per instance, free ports, bounded by `baresip -t` and stopped
//! by its process id; commands and call events through its `ctrl_tcp`
//! socket (JSON in netstrings).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::repo_root;

/// How long a baresip may take for a step.
pub const BOUND: Duration = Duration::from_secs(30);
/// baresip's own time limit (`-t`): it quits by itself after this.
const BARESIP_LIMIT: Duration = Duration::from_secs(90);
/// RTP ports per baresip.
const RTP_PORTS: u16 = 10;

/// A free TCP port that is also free for UDP (baresip listens on both).
fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port");
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The first of `RTP_PORTS` consecutive free UDP ports.
fn free_rtp_range() -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let base = free_port() & !1;
        let free = (base..base.saturating_add(RTP_PORTS))
            .all(|port| port > 1024 && UdpSocket::bind(("127.0.0.1", port)).is_ok());
        if free && base.checked_add(RTP_PORTS).is_some() {
            return base;
        }
        assert!(Instant::now() < deadline, "no free RTP range");
    }
}

/// One baresip process of the test.
pub struct Baresip {
    name: &'static str,
    child: Option<Child>,
    ctrl: TcpStream,
    buffer: Vec<u8>,
    events: Vec<Value>,
    next_token: u32,
    _dir: tempfile::TempDir,
}

impl Baresip {
    /// Starts baresip with `accounts` (a template of `tests/baresip/`), its
    /// placeholders filled in from `fill`.
    pub fn start(name: &'static str, accounts: &str, fill: &[(&str, String)]) -> Baresip {
        Self::start_with(name, accounts, fill, "")
    }

    /// [`Baresip::start`] with `extra` lines appended to the config (e.g.
    /// `sip_cafile` for TLS).
    pub fn start_with(
        name: &'static str,
        accounts: &str,
        fill: &[(&str, String)],
        extra: &str,
    ) -> Baresip {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // Its ports are picked free, then bound by baresip: another test
        // may take one in between, and then baresip never listens (or
        // exits). So a start that does not listen within ATTEMPT is tried
        // again on new ports, three times in all.
        let mut tries = 0;
        let (child, ctrl) = loop {
            tries += 1;
            let sip_port = free_port();
            let ctrl_port = free_port();
            let rtp = free_rtp_range();
            let template = |file: &str| {
                std::fs::read_to_string(repo_root().join("tests/baresip").join(file))
                    .unwrap_or_else(|error| panic!("tests/baresip/{file}: {error}"))
            };
            let mut values: Vec<(&str, String)> = vec![
                ("@SIP_PORT@", sip_port.to_string()),
                ("@CTRL_PORT@", ctrl_port.to_string()),
                ("@RTP_LOW@", rtp.to_string()),
                ("@RTP_HIGH@", (rtp + RTP_PORTS - 1).to_string()),
            ];
            values.extend(fill.iter().cloned());
            let substitute = |mut text: String| {
                for (key, value) in &values {
                    text = text.replace(key, value);
                }
                text
            };
            let config = substitute(template("config")) + extra;
            write(dir.path(), "config", &config);
            write(dir.path(), "accounts", &substitute(template(accounts)));
            write(dir.path(), "contacts", "");
            let log = std::fs::File::create(dir.path().join("baresip.log")).expect("a log file");
            let mut child = Command::new("baresip")
                .arg("-f")
                .arg(dir.path())
                .args(["-t", &BARESIP_LIMIT.as_secs().to_string()])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("the log file"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|error| {
                    panic!("cannot start baresip ({error}); install baresip-core (tests/run does)")
                });
            match connect(ctrl_port, &mut child, ATTEMPT) {
                Some(ctrl) => break (child, ctrl),
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log =
                        std::fs::read_to_string(dir.path().join("baresip.log")).unwrap_or_default();
                    assert!(
                        tries < 3,
                        "ctrl_tcp on {ctrl_port} never listened ({tries} starts); baresip's log:\n{log}"
                    );
                    eprintln!(
                        "baresip {name}: ctrl_tcp on {ctrl_port} did not listen; starting it again on new ports"
                    );
                }
            }
        };
        ctrl.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("a read timeout");
        Baresip {
            name,
            child: Some(child),
            ctrl,
            buffer: Vec::new(),
            events: Vec::new(),
            next_token: 1,
            _dir: dir,
        }
    }

    /// Sends a command and waits for its response; panics unless it is ok.
    pub fn command(&mut self, command: &str, params: &str) -> Value {
        let token = format!("t{}", self.next_token);
        self.next_token += 1;
        let message = json!({"command": command, "params": params, "token": token}).to_string();
        let netstring = format!("{}:{message},", message.len());
        self.ctrl
            .write_all(netstring.as_bytes())
            .expect("write to ctrl_tcp");
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(at) = self
                .events
                .iter()
                .position(|m| m["response"] == true && m["token"] == token)
            {
                let response = self.events.remove(at);
                assert_eq!(
                    response["ok"],
                    true,
                    "{}: {command} {params}: {response}\n{}",
                    self.name,
                    self.log()
                );
                return response;
            }
            assert!(
                Instant::now() < deadline,
                "{}: no answer to {command}\n{}",
                self.name,
                self.log()
            );
            self.read();
        }
    }

    /// Waits for an event of `kind` (e.g. `CALL_ESTABLISHED`).
    pub fn wait_event(&mut self, kind: &str) -> Value {
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(at) = self
                .events
                .iter()
                .position(|m| m["event"] == true && m["type"] == kind)
            {
                return self.events.remove(at);
            }
            assert!(
                Instant::now() < deadline,
                "{}: no {kind} event within {BOUND:?}; seen {:#?}\n{}",
                self.name,
                self.events,
                self.log()
            );
            self.read();
        }
    }

    /// Reads what ctrl_tcp sent (up to the read timeout) into `events`.
    fn read(&mut self) {
        let mut chunk = [0u8; 8192];
        match self.ctrl.read(&mut chunk) {
            Ok(0) => panic!("{}: ctrl_tcp closed\n{}", self.name, self.log()),
            Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(error) => panic!("{}: ctrl_tcp: {error}", self.name),
        }
        // Netstrings: "LEN:JSON,".
        while let Some(colon) = self.buffer.iter().position(|b| *b == b':') {
            let Some(length) = std::str::from_utf8(&self.buffer[..colon])
                .ok()
                .and_then(|text| text.parse::<usize>().ok())
            else {
                panic!("{}: not a netstring: {:?}", self.name, self.buffer);
            };
            if self.buffer.len() < colon + 1 + length + 1 {
                break;
            }
            let message: Value =
                serde_json::from_slice(&self.buffer[colon + 1..colon + 1 + length])
                    .expect("JSON from ctrl_tcp");
            self.buffer.drain(..colon + 1 + length + 1);
            self.events.push(message);
        }
    }

    /// What baresip printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("baresip.log")).unwrap_or_default()
    }

    /// Asks baresip to quit (it un-registers first), then waits for it;
    /// kills it by its id past the bound.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let message = json!({"command": "quit", "params": "", "token": "quit"}).to_string();
        let _ = self
            .ctrl
            .write_all(format!("{}:{message},", message.len()).as_bytes());
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Ours: started above, killed by its own id.
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).unwrap_or_else(|error| panic!("{file}: {error}"));
}

/// How long one start of baresip may take to listen on its ctrl_tcp.
const ATTEMPT: Duration = Duration::from_secs(10);

/// Connects to baresip's ctrl_tcp once it listens; `None` if `child`
/// exits first or `within` passes.
fn connect(port: u16, child: &mut Child, within: Duration) -> Option<TcpStream> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            return Some(stream);
        }
        if Instant::now() >= deadline || child.try_wait().ok().flatten().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
