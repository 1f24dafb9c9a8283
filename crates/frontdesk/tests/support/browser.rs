//! A headless Chromium driven over the DevTools protocol (CDP), for the
//! tests of the dashboard and of the agent view's phone.
//!
//! [`Browser::launch`] starts Debian's `chromium` (or `$FRONTDESK_CHROMIUM`)
//! headless with a fresh profile in a temporary directory and
//! `--remote-debugging-port=0` ([`Browser::launch_with`] adds flags, such
//! as a fake microphone), reads the port it chose from the profile's
//! `DevToolsActivePort`, opens one tab and attaches to it (flat sessions).
//! Every wait is bounded; dropping the browser closes it and kills its
//! process group (the group's id is the PID we started).
//!
//! What the tests do with a [`Browser`] is what a person does: load a URL,
//! type into a field (`Input.insertText` after a real click), click
//! (`Input.dispatchMouseEvent` at the element's centre), read the DOM with
//! `Runtime.evaluate`, and take screenshots. JavaScript exceptions and
//! console or browser errors (a Content-Security-Policy violation is one)
//! are collected for the tests to assert there were none.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// How long Chromium may take to start and open its DevTools port.
const START_BOUND: Duration = Duration::from_secs(30);
/// How long one DevTools command may take.
const COMMAND_BOUND: Duration = Duration::from_secs(20);
/// How long Chromium may take to exit once told to close.
const CLOSE_BOUND: Duration = Duration::from_secs(5);
/// Pause between two polls of the page.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// The flags for headless Chromium on these machines (no sandbox for
/// root in a container, no GPU, nothing reaching out to the network).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
];

/// The tab's viewport.
#[derive(Debug, Clone, Copy)]
pub struct Viewport {
    /// CSS pixels.
    pub width: u32,
    /// CSS pixels.
    pub height: u32,
    /// A phone (touch, mobile layout).
    pub mobile: bool,
}

/// A desktop screen.
pub const DESKTOP: Viewport = Viewport {
    width: 1280,
    height: 900,
    mobile: false,
};
/// A phone held upright.
pub const PHONE: Viewport = Viewport {
    width: 390,
    height: 844,
    mobile: true,
};

/// A running headless Chromium with one tab.
pub struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Errors the page reported (exceptions, console errors, log errors).
    errors: Vec<String>,
    profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

/// The Chromium to run: `$FRONTDESK_CHROMIUM`, else `chromium` on PATH
/// (Debian's, which `tests/run` installs when missing).
fn chromium() -> PathBuf {
    std::env::var_os("FRONTDESK_CHROMIUM").map_or_else(|| PathBuf::from("chromium"), PathBuf::from)
}

impl Browser {
    /// Starts Chromium and opens a blank tab of `viewport`'s size.
    pub fn launch(viewport: Viewport) -> Browser {
        Self::launch_with(viewport, &[])
    }

    /// [`Browser::launch`] with `extra` flags after the usual ones.
    pub fn launch_with(viewport: Viewport, extra: &[String]) -> Browser {
        let profile = tempfile::tempdir().expect("a profile directory");
        let log = std::fs::File::create(profile.path().join("chromium.log")).expect("a log file");
        let data = profile.path().join("profile");
        let mut command = Command::new(chromium());
        command
            .args(FLAGS)
            .args(extra)
            .arg(format!("--user-data-dir={}", data.display()))
            .arg(format!(
                "--window-size={},{}",
                viewport.width, viewport.height
            ))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group, so that its helpers go with it.
            .process_group(0);
        let child = command.spawn().unwrap_or_else(|error| {
            panic!(
                "cannot start {} ({error}); tests/run installs Debian's chromium",
                chromium().display()
            )
        });
        let mut starting = Starting {
            child: Some(child),
            profile: Some(profile),
        };
        let (port, path) = starting.devtools_address(&data);
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to DevTools");
        stream
            .set_read_timeout(Some(COMMAND_BOUND))
            .expect("a read timeout");
        let (socket, _) = tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), stream)
            .unwrap_or_else(|error| panic!("DevTools WebSocket handshake: {error}"));
        socket
            .get_ref()
            .set_read_timeout(Some(POLL_EVERY))
            .expect("a read timeout");
        let (child, profile) = starting.done();
        let mut browser = Browser {
            child,
            socket,
            session: String::new(),
            next_id: 0,
            errors: Vec::new(),
            profile,
        };
        let target = browser.browser_call("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"]
            .as_str()
            .expect("a target id")
            .to_string();
        let attached = browser.browser_call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        browser.call("Page.enable", json!({}));
        browser.call("Runtime.enable", json!({}));
        browser.call("Log.enable", json!({}));
        browser.set_viewport(viewport);
        browser
    }

    /// Chromium's own log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("chromium.log")).unwrap_or_default()
    }

    fn send(&mut self, method: &str, params: Value, session: bool) -> u64 {
        self.next_id += 1;
        let mut message = json!({"id": self.next_id, "method": method, "params": params});
        if session {
            message["sessionId"] = json!(self.session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .unwrap_or_else(|error| panic!("send {method}: {error}"));
        self.next_id
    }

    /// The next message from Chromium, if one arrives within [`POLL_EVERY`].
    fn receive(&mut self) -> Option<Value> {
        match self.socket.read() {
            Ok(Message::Text(text)) => {
                let value: Value = serde_json::from_str(text.as_str()).expect("CDP sends JSON");
                self.note_errors(&value);
                Some(value)
            }
            Ok(_) => None,
            Err(tungstenite::Error::Io(error))
                if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                None
            }
            Err(error) => panic!("DevTools connection lost: {error}\n{}", self.log()),
        }
    }

    fn note_errors(&mut self, message: &Value) {
        let params = &message["params"];
        match message["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                self.errors.push(format!(
                    "exception: {} {}",
                    details["text"].as_str().unwrap_or(""),
                    details["exception"]["description"].as_str().unwrap_or("")
                ));
            }
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                self.errors
                    .push(format!("console.error: {}", params["args"]));
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                self.errors.push(format!(
                    "{}: {} ({})",
                    params["entry"]["source"].as_str().unwrap_or("log"),
                    params["entry"]["text"].as_str().unwrap_or(""),
                    params["entry"]["url"].as_str().unwrap_or("")
                ));
            }
            _ => {}
        }
    }

    fn wait_answer(&mut self, id: u64, method: &str) -> Value {
        let deadline = Instant::now() + COMMAND_BOUND;
        loop {
            // Events (no id) were looked at for errors by `receive`.
            if let Some(message) = self.receive()
                && message["id"] == id
            {
                if let Some(error) = message.get("error") {
                    panic!("{method} failed: {error}");
                }
                return message["result"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no answer to {method} within {COMMAND_BOUND:?}\n{}",
                self.log()
            );
        }
    }

    fn browser_call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params, false);
        self.wait_answer(id, method)
    }

    /// A DevTools command on the tab; panics on an error answer.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params, true);
        self.wait_answer(id, method)
    }

    /// Resizes the tab.
    pub fn set_viewport(&mut self, viewport: Viewport) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({
                "width": viewport.width,
                "height": viewport.height,
                "deviceScaleFactor": 1,
                "mobile": viewport.mobile,
            }),
        );
    }

    /// Loads `url` and waits until its document is complete.
    pub fn open(&mut self, url: &str) {
        let answer = self.call("Page.navigate", json!({"url": url}));
        if let Some(error) = answer.get("errorText") {
            panic!("loading {url}: {error}");
        }
        self.wait_for("document.readyState === 'complete'", COMMAND_BOUND);
    }

    /// The value of `expression` in the page (awaited if a promise).
    pub fn evaluate(&mut self, expression: &str) -> Value {
        let answer = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(details) = answer.get("exceptionDetails") {
            panic!("{expression}: {details}");
        }
        answer["result"]["value"].clone()
    }

    /// Polls `expression` until it is truthy, within `bound`; returns it.
    pub fn wait_for(&mut self, expression: &str, bound: Duration) -> Value {
        let deadline = Instant::now() + bound;
        loop {
            let value = self.evaluate(expression);
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(_) | Value::Object(_) => true,
            };
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "`{expression}` not true within {bound:?}; the page's text:\n{}",
                self.evaluate("document.body ? document.body.innerText : ''")
            );
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// Clicks the centre of the element `selector` finds, as a mouse does.
    pub fn click(&mut self, selector: &str) {
        let selector_json = json!(selector);
        let centre = self.evaluate(&format!(
            "(() => {{ const e = document.querySelector({selector_json}); if (!e) return null; \
             e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
             return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
        ));
        let (Some(x), Some(y)) = (centre[0].as_f64(), centre[1].as_f64()) else {
            panic!("no element {selector} to click");
        };
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// Clicks into the field `selector` and types `text`.
    pub fn type_into(&mut self, selector: &str, text: &str) {
        self.click(selector);
        self.call("Input.insertText", json!({"text": text}));
    }

    /// A PNG of the whole page (beyond the viewport), saved at `path`.
    pub fn screenshot(&mut self, path: &Path) -> Vec<u8> {
        let metrics = self.call("Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let answer = self.call(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": {
                    "x": 0, "y": 0,
                    "width": size["width"], "height": size["height"],
                    "scale": 1,
                },
            }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(answer["data"].as_str().expect("PNG data"))
            .expect("base64 PNG");
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).expect("the artifacts folder");
        }
        std::fs::write(path, &png).expect("write the screenshot");
        png
    }

    /// The errors the page reported since the last call (read from the
    /// events seen so far, and those pending).
    pub fn take_errors(&mut self) -> Vec<String> {
        while self.receive().is_some() {}
        std::mem::take(&mut self.errors)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.send("Browser.close", json!({}), false);
        let deadline = Instant::now() + CLOSE_BOUND;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        kill_group(&mut self.child);
    }
}

/// Kills the process group led by `child` (its helpers included) and reaps it.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Chromium being started: killed if the start fails half-way.
struct Starting {
    child: Option<Child>,
    profile: Option<tempfile::TempDir>,
}

impl Starting {
    /// The DevTools port and browser path, from `DevToolsActivePort`.
    fn devtools_address(&mut self, data: &Path) -> (u16, String) {
        let file = data.join("DevToolsActivePort");
        let deadline = Instant::now() + START_BOUND;
        loop {
            let mut text = String::new();
            if std::fs::File::open(&file)
                .and_then(|mut f| f.read_to_string(&mut text))
                .is_ok()
                && let Some((port, path)) = text.split_once('\n')
                && let Ok(port) = port.trim().parse::<u16>()
                && path.trim().starts_with("/devtools/browser/")
            {
                return (port, path.trim().to_string());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("chromium exited at start ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "chromium opened no DevTools port within {START_BOUND:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        self.profile
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p.path().join("chromium.log")).ok())
            .unwrap_or_default()
    }

    fn done(mut self) -> (Child, tempfile::TempDir) {
        (
            self.child.take().expect("started"),
            self.profile.take().expect("made"),
        )
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            kill_group(child);
        }
    }
}
