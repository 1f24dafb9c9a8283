//! A headless Linphone driven from Rust (the recipe is
//! `tests/linphone/README.md`): Debian's `linphone-daemon` (liblinphone
//! 5.1) with its own config and HOME in a temporary directory per
//! instance, free ports on 127.0.0.1, killed by its process id on drop.
//!
//! It is driven through its standard input, one command a line; its
//! standard output carries the answers (`Status: Ok` / `Status: Error` with
//! `Reason:`, then `Key: value` lines) and, at any time, events
//! (`Event-type: call-state-changed`, `Event: LinphoneCallConnected`,
//! `Id: 1`). A reader thread hands the lines over; [`Linphone::command`]
//! waits for the next answer, [`Linphone::wait_event`] for an event, each
//! within [`BOUND`].

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use super::repo_root;

/// How long Linphone may take for a step.
pub const BOUND: Duration = Duration::from_secs(30);
/// RTP ports per Linphone (it picks one pair at random in the range).
const RTP_PORTS: u16 = 10;
/// What linphone-daemon prints before reading a command.
const PROMPT: &str = "daemon-linphone>";

/// One answer or event of linphone-daemon: its first line (`Status: Ok`,
/// `Event-type: call-state-changed`) and the `Key: value` lines after it.
#[derive(Debug, Clone)]
pub struct Message {
    /// `Status` for answers, `Event-type` for events.
    pub kind: String,
    /// Its value: `Ok`, `Error`, `call-state-changed`, `receiving-tone` ...
    pub value: String,
    /// The lines after it, in order.
    pub fields: Vec<(String, String)>,
}

impl Message {
    /// The first field named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// What the reader thread passes on.
enum Line {
    Text(String),
    Prompt,
}

/// One linphone-daemon of the test.
pub struct Linphone {
    name: &'static str,
    child: Option<Child>,
    stdin: ChildStdin,
    lines: Receiver<Line>,
    current: Option<(Message, bool)>,
    events: Vec<Message>,
    answers: Vec<Message>,
    dir: tempfile::TempDir,
}

/// The first of `RTP_PORTS` consecutive free UDP ports.
fn free_rtp_range() -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let base = super::call::free_udp_port() & !1;
        let free = base > 1024
            && base.checked_add(RTP_PORTS).is_some()
            && (base..base + RTP_PORTS).all(|port| UdpSocket::bind(("127.0.0.1", port)).is_ok());
        if free {
            return base;
        }
        assert!(Instant::now() < deadline, "no free RTP range");
    }
}

impl Linphone {
    /// Starts linphone-daemon with `template` (a file of `tests/linphone/`),
    /// its placeholders filled in from `fill` (`@SIP_PORT@`, `@RTP_LOW@`,
    /// `@RTP_HIGH@` are filled in here).
    pub fn start(name: &'static str, template: &str, fill: &[(&str, String)]) -> Linphone {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let rtp = free_rtp_range();
        let mut values: Vec<(&str, String)> = vec![
            ("@SIP_PORT@", super::call::free_udp_port().to_string()),
            ("@RTP_LOW@", rtp.to_string()),
            ("@RTP_HIGH@", (rtp + RTP_PORTS - 1).to_string()),
        ];
        values.extend(fill.iter().cloned());
        let mut config = std::fs::read_to_string(repo_root().join("tests/linphone").join(template))
            .unwrap_or_else(|error| panic!("tests/linphone/{template}: {error}"));
        for (key, value) in &values {
            config = config.replace(key, value);
        }
        let rc = dir.path().join("linphonerc");
        std::fs::write(&rc, config).expect("write linphonerc");
        // liblinphone keeps its database under $HOME/.local/share/linphone.
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".local/share/linphone")).expect("a HOME");
        let mut child = Command::new("linphone-daemon")
            .arg("--config")
            .arg(&rc)
            .arg("--log")
            .arg(dir.path().join("linphone.log"))
            .arg("--disable-stats-events")
            .env("HOME", &home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start linphone-daemon ({error}); install linphone-cli (tests/run does)"
                )
            });
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(mut line) = line else { return };
                // The prompt comes before an echo of the command, or alone
                // before an event.
                while let Some(rest) = line.strip_prefix(PROMPT) {
                    if sender.send(Line::Prompt).is_err() {
                        return;
                    }
                    line = rest.to_string();
                }
                if sender.send(Line::Text(line)).is_err() {
                    return;
                }
            }
        });
        Linphone {
            name,
            child: Some(child),
            stdin,
            lines,
            current: None,
            events: Vec::new(),
            answers: Vec::new(),
            dir,
        }
    }

    /// Sends `line` and waits for its answer; panics unless it is `Ok`.
    pub fn command(&mut self, line: &str) -> Message {
        let answer = self.try_command(line);
        assert_eq!(
            answer.value,
            "Ok",
            "{}: {line}: {answer:?}\n{}",
            self.name,
            self.log_tail()
        );
        answer
    }

    /// Sends `line` and waits for its answer, whatever it is.
    pub fn try_command(&mut self, line: &str) -> Message {
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|error| panic!("{}: write {line}: {error}", self.name));
        let deadline = Instant::now() + BOUND;
        loop {
            if !self.answers.is_empty() {
                return self.answers.remove(0);
            }
            assert!(
                Instant::now() < deadline,
                "{}: no answer to {line}\n{}",
                self.name,
                self.log_tail()
            );
            self.read();
        }
    }

    /// Waits for a `call-state-changed` event to `state` (e.g.
    /// `LinphoneCallIncomingReceived`); returns it (its `Id` is the call's).
    pub fn wait_call_state(&mut self, state: &str) -> Message {
        self.wait_event(|event| {
            event.value == "call-state-changed" && event.get("Event") == Some(state)
        })
    }

    /// Waits for an event that `wanted` accepts; earlier ones it skips stay.
    pub fn wait_event(&mut self, wanted: impl Fn(&Message) -> bool) -> Message {
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(at) = self.events.iter().position(&wanted) {
                return self.events.remove(at);
            }
            assert!(
                Instant::now() < deadline,
                "{}: no such event within {BOUND:?}; seen {:#?}\n{}",
                self.name,
                self.events,
                self.log_tail()
            );
            self.read();
        }
    }

    /// Takes the lines the reader thread has (waiting up to 50 ms) and
    /// turns them into messages. A message ends at the next one, at a
    /// prompt, at the blank line after its fields, or when nothing more
    /// came for 50 ms (linphone-daemon writes each message at once).
    fn read(&mut self) {
        match self.lines.recv_timeout(Duration::from_millis(50)) {
            Ok(Line::Prompt) => self.finish(),
            Ok(Line::Text(text)) => self.line(&text),
            Err(RecvTimeoutError::Timeout) => self.finish(),
            Err(RecvTimeoutError::Disconnected) => {
                self.finish();
                panic!("{}: linphone-daemon exited\n{}", self.name, self.log_tail());
            }
        }
    }

    fn line(&mut self, text: &str) {
        let text = text.trim_end();
        if text.is_empty() {
            // A blank line after fields ends the message; the one right
            // after its first line does not.
            if matches!(&self.current, Some((_, true))) {
                self.finish();
            }
            return;
        }
        let Some((key, value)) = text.split_once(':') else {
            return; // an echoed command or free text: not a message line
        };
        let (key, value) = (key.trim().to_string(), value.trim().to_string());
        if key == "Status" || key == "Event-type" {
            self.finish();
            let message = Message {
                kind: key,
                value,
                fields: Vec::new(),
            };
            self.current = Some((message, false));
        } else if let Some((message, has_fields)) = &mut self.current {
            message.fields.push((key, value));
            *has_fields = true;
        }
    }

    fn finish(&mut self) {
        if let Some((message, _)) = self.current.take() {
            if message.kind == "Status" {
                self.answers.push(message);
            } else {
                self.events.push(message);
            }
        }
    }

    /// The end of linphone's log (liblinphone's own messages).
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("linphone.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// The whole log, to look for a line in it.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("linphone.log")).unwrap_or_default()
    }

    /// Polls `register-status` until the first account is registered.
    pub fn wait_registered(&mut self) {
        let deadline = Instant::now() + BOUND;
        loop {
            let status = self.command("register-status ALL");
            if status.get("State") == Some("LinphoneRegistrationOk") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: not registered: {status:?}\n{}",
                self.name,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Un-registers, then asks linphone-daemon to quit and waits for it;
    /// kills it by its id past the bound.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = writeln!(self.stdin, "quit").and_then(|()| self.stdin.flush());
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

impl Drop for Linphone {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Ours: started in `start`, killed by its own id.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
