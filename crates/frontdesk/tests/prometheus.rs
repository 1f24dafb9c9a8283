//! Issue 27's monitoring, against Debian's real `prometheus` and `promtool`
//! (tests/run installs the package):
//! - every metric the code publishes has help text, and the daemon's
//!   `/metrics` passes `promtool check metrics`;
//! - the alert rules in `deploy/prometheus/` pass `promtool check rules`
//!   and their unit tests (`promtool test rules`, series written for each
//!   alert);
//! - a Prometheus scrapes the daemon with those rules loaded, and every
//!   query of the Grafana dashboard (`deploy/grafana/frontdesk.json`;
//!   Grafana itself is not in Debian) parses and returns series there.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::call::{open_clinic, wait_for_call};
use support::people::{patient, press_when_heard};
use support::phone::RtpPeer;
use support::{Launch, repo_root};

const BOUND: Duration = Duration::from_secs(60);

fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(repo_root().join("deploy/prometheus"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; tests/run installs it)");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("its stdin")
            .write_all(input.as_bytes())
            .expect("write to promtool");
    }
    let output = child.wait_with_output().expect("promtool ran");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn the_alert_rules_pass_promtool_check_and_their_unit_tests() {
    let (ok, out) = promtool(&["check", "rules", "frontdesk-rules.yml"], None);
    assert!(ok, "{out}");
    let (ok, out) = promtool(&["check", "config", "prometheus.yml"], None);
    assert!(ok, "{out}");
    let (ok, out) = promtool(&["test", "rules", "frontdesk-rules.test.yml"], None);
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

/// The names in `"frontdesk_…"` string literals of `text`.
fn metric_literals(text: &str) -> BTreeSet<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|literal| {
            literal.starts_with("frontdesk_")
                && literal
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .map(str::to_string)
        .collect()
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("read a source folder")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            into.push(path);
        }
    }
}

#[test]
fn every_metric_published_in_the_code_has_help_text() {
    let table = repo_root().join("crates/frontdesk/src/http/metrics.rs");
    let described = metric_literals(&std::fs::read_to_string(&table).expect("metrics.rs"));
    let mut files = Vec::new();
    for krate in std::fs::read_dir(repo_root().join("crates"))
        .expect("crates/")
        .flatten()
    {
        let src = krate.path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let mut missing = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a source file");
        if !text.contains("metrics::") {
            continue;
        }
        for name in metric_literals(&text) {
            if !described.contains(&name) {
                missing.insert(format!("{name} ({})", file.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "published but not in METRICS (crates/frontdesk/src/http/metrics.rs): {missing:#?}"
    );
}

/// A Prometheus server of our own, killed on drop.
struct Prometheus {
    child: Child,
    address: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let rules = repo_root().join("deploy/prometheus/frontdesk-rules.yml");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: frontdesk\n    static_configs:\n      - targets: ['{target}']\n",
                rules.display()
            ),
        )
        .expect("write prometheus.yml");
        let address = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian's package; tests/run installs it)");
        Prometheus {
            child,
            address,
            _dir: dir,
        }
    }

    /// `GET /api/v1/query?query=…`: the answer's JSON (`null` if none).
    fn query(&self, promql: &str) -> Value {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        support::http::request(self.address, "GET", &path, None, None)
            .ok()
            .and_then(|response| serde_json::from_str(&response.body).ok())
            .unwrap_or(Value::Null)
    }

    fn rules(&self) -> Value {
        support::http::request(self.address, "GET", "/api/v1/rules", None, None)
            .ok()
            .and_then(|response| serde_json::from_str(&response.body).ok())
            .unwrap_or(Value::Null)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The result vector of a successful instant query, or why not.
fn series(answer: &Value) -> Result<usize, String> {
    if answer["status"] != "success" {
        return Err(format!("not a success: {answer}"));
    }
    answer["data"]["result"]
        .as_array()
        .map(Vec::len)
        .ok_or_else(|| format!("no result: {answer}"))
}

/// Grafana's variables, as the dashboard's "All" would set them.
fn as_grafana_runs(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$instance", ".+")
        .replace("$queue", ".+")
}

#[test]
fn a_real_prometheus_scrapes_the_daemon_and_every_dashboard_query_returns_series() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| text);
    let daemon = Launch::new()
        .dialplan(&plan)
        .args(["--node-id", "n1"])
        .start();
    // One patient who goes to a department (3) and hangs up waiting: the
    // per-department series exist.
    let audio = RtpPeer::start(0, false);
    let caller = patient(&daemon, "caller.xml", "+15550100", &audio, 6_000);
    press_when_heard(&audio, '3');
    caller.join().expect("the patient").assert_all_succeeded(1);
    let call = wait_for_call(&daemon, BOUND, |call| !call["ended_at"].is_null());
    assert!(call["department"].is_string(), "{call}");

    let metrics = daemon.get("/metrics", None).body;
    assert!(
        metrics.contains("frontdesk_queue_calls_total{"),
        "{metrics}"
    );
    let (ok, out) = promtool(&["check", "metrics"], Some(&metrics));
    assert!(
        ok && out.trim().is_empty(),
        "promtool check metrics:\n{out}"
    );

    let prometheus = Prometheus::start(daemon.http());
    let deadline = Instant::now() + BOUND;
    // Two scrapes at least of the call's counters, so that rate() has two
    // points in its minute.
    let ready = "count_over_time(frontdesk_queue_calls_total[1m]) >= 2";
    while series(&prometheus.query(ready)) != Ok(1) {
        assert!(
            Instant::now() < deadline,
            "Prometheus did not scrape the daemon: {}",
            prometheus.query("up")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        prometheus.query("up{job=\"frontdesk\"}")["data"]["result"][0]["value"][1],
        "1"
    );

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/grafana/frontdesk.json"))
            .expect("the dashboard"),
    )
    .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "{} panels", panels.len());
    let mut failures = Vec::new();
    let mut queries = 0;
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a target's expr");
            queries += 1;
            match series(&prometheus.query(&as_grafana_runs(expr))) {
                Ok(0) => failures.push(format!("{}: {expr}: no series", panel["title"])),
                Ok(_) => {}
                Err(why) => failures.push(format!("{}: {expr}: {why}", panel["title"])),
            }
        }
    }
    assert!(failures.is_empty(), "{queries} queries: {failures:#?}");
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        let definition = variable["definition"].as_str().expect("a definition");
        let metric = definition
            .trim_start_matches("label_values(")
            .split(',')
            .next()
            .expect("a metric");
        assert_ne!(series(&prometheus.query(metric)), Ok(0), "{definition}");
    }

    // The alert rules loaded and evaluate without errors.
    let rules = prometheus.rules();
    let loaded: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|group| group["rules"].as_array().into_iter().flatten())
        .collect();
    assert!(loaded.len() >= 10, "{rules}");
    let deadline = Instant::now() + BOUND;
    loop {
        let rules = prometheus.rules();
        let unhealthy: Vec<String> = rules["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().into_iter().flatten())
            .filter(|rule| rule["health"] != "ok")
            .map(|rule| format!("{} {} {}", rule["name"], rule["health"], rule["lastError"]))
            .collect();
        if unhealthy.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{unhealthy:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
