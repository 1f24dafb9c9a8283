//! Speech menus (issue 25). From the command line: `check` and `run`
//! refuse a plan whose model is missing, and `simulate --say` takes the
//! option the recogniser's words would. End to end, a real daemon on
//! loopback and real RTP: every utterance of a synthesised test set (two
//! espeak-ng voices × two speeds × clean and with sox's noise) lands in its
//! queue; a phrase on no list falls back to keys; an RFC 4733 key works in
//! a speech menu; a reload that asks for speech without its model is
//! refused and calls go on by keys; a reload that adds speech starts a
//! recogniser. Needs Debian's `pocketsphinx-en-us`, espeak-ng and sox.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::call::open_clinic;
use support::phone::RtpPeer;
use support::raw::RawCall;
use support::{Daemon, Launch, TOKEN};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The demo clinic with a speech main menu, in `dir` (prompts linked).
fn speech_plan(dir: &Path, model: &str) -> PathBuf {
    let clinic = std::fs::read_to_string(repo().join("dialplans/clinic.toml")).unwrap();
    let clinic = clinic
        .replacen(
            "prompt = \"prompts/main-menu.wav\"",
            "prompt = \"prompts/speech-main-menu.wav\"",
            1,
        )
        .replacen(
            "[menus.main.options]",
            "speech = { \"2\" = [\"cardiology\", \"heart\"], \"3\" = [\"pediatrics\", \"my daughter\", \"child\"] }\n\n[menus.main.options]",
            1,
        );
    let text = format!(
        "{clinic}\n[speech]\nmodel = \"{model}\"\nkeys_prompt = \"prompts/speech-use-keys.wav\"\n"
    );
    let path = dir.join("speech.toml");
    std::fs::write(&path, text).unwrap();
    std::os::unix::fs::symlink(repo().join("dialplans/prompts"), dir.join("prompts")).unwrap();
    path
}

fn frontdesk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("the frontdesk binary runs")
}

#[test]
fn check_and_run_refuse_a_speech_plan_without_its_model() {
    let dir = tempfile::tempdir().unwrap();
    let plan = speech_plan(dir.path(), "/nonexistent/en-us");
    let plan = plan.to_str().unwrap();
    let output = frontdesk(&["check", plan]);
    assert!(!output.status.success());
    let errors = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        errors.contains("no model folder /nonexistent/en-us (install Debian's pocketsphinx-en-us"),
        "{errors}"
    );
    // `run` refuses it before it binds anything.
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args([
            "run",
            "--dialplan",
            plan,
            "--sip",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ])
        .arg("--data")
        .arg(data.path())
        .args(["--admin-token", "test-token"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("run did not refuse the plan within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("no model folder /nonexistent/en-us"),
        "{stderr}"
    );
}

#[test]
fn simulate_says_a_phrase_and_a_phrase_on_no_list_falls_back_to_keys() {
    let dir = tempfile::tempdir().unwrap();
    let plan = speech_plan(dir.path(), "/usr/share/pocketsphinx/model/en-us");
    let plan = plan.to_str().unwrap();
    let run = |say: &str, digits: &str| {
        let output = frontdesk(&[
            "simulate",
            "--dialplan",
            plan,
            "--number",
            "+15550100",
            "--at",
            "2026-07-15T10:00",
            "--say",
            say,
            "--digits",
            digits,
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let heart = run("heart doctor", "");
    assert!(heart.contains("decision: queue cardiology"), "{heart}");
    assert!(
        heart.contains("said \"heart doctor\": option 2 of menu main (phrase \"heart\")"),
        "{heart}"
    );
    // Not on the list: keys, and the key decides.
    let other = run("banana bread", "3");
    assert!(
        other.contains("menu main: speech matched no option"),
        "{other}"
    );
    assert!(other.contains("decision: queue pediatrics"), "{other}");
}

// ── End to end ─────────────────────────────────────────────────────────────

/// Debian's model (`pocketsphinx-en-us`).
const MODEL: &str = "/usr/share/pocketsphinx/model/en-us";
/// How long a step of a call (the answer, the recogniser's decision) may take.
const STEP: Duration = Duration::from_secs(30);
/// PCMU's silence: what the test's callers send when they say nothing.
const PCMU_SILENCE: u8 = 0xFF;

/// The test's speech menu: the demo clinic's main menu, with phrases per
/// option chosen to be told apart (BENCHMARKS.md, "Speech intent").
const PHRASES: &str = r#"speech = { "1" = ["appointment", "front desk", "reception"], "2" = ["cardiology", "heart", "cardiologist"], "3" = ["pediatrics", "my son", "my daughter", "child"], "4" = ["dermatology", "skin", "rash"], "5" = ["orthopedic", "bones"], "9" = ["urgent care"] }"#;

/// The demo clinic open at all hours, its main menu taking speech when
/// `model` is `Some` (`[speech]` naming that folder).
fn open_speech_clinic(dir: &Path, model: Option<&str>) -> PathBuf {
    let Some(model) = model else {
        return open_clinic(dir, |text| text);
    };
    let model = model.to_string();
    open_clinic(dir, move |text| {
        let text = text
            .replacen(
                "prompt = \"prompts/main-menu.wav\"",
                "prompt = \"prompts/speech-main-menu.wav\"",
                1,
            )
            .replacen(
                "[menus.main.options]",
                &format!("{PHRASES}\n\n[menus.main.options]"),
                1,
            );
        format!(
            "{text}\n[speech]\nmodel = \"{model}\"\nkeys_prompt = \"prompts/speech-use-keys.wav\"\n"
        )
    })
}

/// A daemon on `plan` with room for every test call's recognition.
fn speech_daemon(plan: &Path) -> Daemon {
    Launch::new()
        .dialplan(plan)
        .args(["--speech-workers", "2", "--speech-budget", "64"])
        .start()
}

/// `text` said by espeak-ng with `voice` at `speed` words a minute, as
/// 8 kHz PCMU codes; `noisy` mixes in white noise with sox (a fixed seed,
/// `-R`: the same audio every run). The same commands as bench/speech.sh.
fn synthesise(dir: &Path, text: &str, voice: &str, speed: u32, noisy: bool) -> Vec<u8> {
    let raw = dir.join("espeak.wav");
    let clean = dir.join("clean.wav");
    let out = dir.join("said.ul");
    let run = |command: &mut Command| {
        let output = command.output().expect("espeak-ng and sox are installed");
        assert!(
            output.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(Command::new("espeak-ng")
        .args(["-v", voice, "-s", &speed.to_string(), "-w"])
        .arg(&raw)
        .arg(text));
    run(Command::new("sox")
        .arg("-R")
        .arg(&raw)
        .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
        .arg(&clean));
    let to_pcmu = "-t raw -e u-law -r 8000 -c 1";
    let script = if noisy {
        format!(
            "sox -R '{c}' -p synth whitenoise vol 0.02 | sox -R -m '{c}' - {to_pcmu} '{o}'",
            c = clean.display(),
            o = out.display()
        )
    } else {
        format!("sox -R '{}' {to_pcmu} '{}'", clean.display(), out.display())
    };
    run(Command::new("sh").arg("-c").arg(script));
    std::fs::read(&out).expect("the PCMU file")
}

/// The packets of the emergency notice, which every call hears first (no
/// speech is taken during it), and half a second of the menu's prompt.
fn notice_packets() -> usize {
    let notice = support::repo_root().join("dialplans/prompts/emergency-notice.wav");
    let bytes = std::fs::metadata(notice).expect("the notice").len() as usize;
    (bytes - 44) / 2 / 160 + 25
}

/// Where a daemon listens, for callers on other threads (a [`Daemon`] is
/// not `Sync`).
#[derive(Clone, Copy)]
struct Clinic {
    sip: SocketAddr,
    http: SocketAddr,
}

impl Clinic {
    fn of(daemon: &Daemon) -> Clinic {
        Clinic {
            sip: daemon.sip(),
            http: daemon.http(),
        }
    }

    fn get(&self, path: &str) -> Value {
        let response = support::http::get(self.http, path, Some(TOKEN));
        assert_eq!(response.status, 200, "{path}: {response:?}");
        response.json()
    }
}

/// One patient's call to the main line, from number `caller`: it waits
/// through the emergency notice, then says something or presses a key
/// with its RTP peer.
struct Patient {
    clinic: Clinic,
    caller: String,
    peer: RtpPeer,
    call: RawCall,
}

impl Patient {
    fn call(clinic: Clinic, n: usize) -> Patient {
        let peer = RtpPeer::start(0, false);
        peer.rest_with(PCMU_SILENCE);
        let caller = format!("+1312555{n:04}");
        let media = SocketAddr::from(([127, 0, 0, 1], peer.port()));
        let call = RawCall::invite_from(clinic.sip, &caller, "+15550100", media, n);
        call.ack();
        let notice = notice_packets();
        assert!(
            peer.wait_until(STEP, |p| p.received_count() >= notice),
            "call {n} heard {} packets, not the notice",
            peer.received_count(),
        );
        Patient {
            clinic,
            caller,
            peer,
            call,
        }
    }

    /// The call's row in `/api/calls` once `done` holds on it.
    fn row(&self, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let list = self.clinic.get("/api/calls?limit=100");
            let found = list["calls"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|call| call["caller"] == self.caller.as_str())
                .cloned();
            if let Some(call) = &found
                && done(call)
            {
                return call.clone();
            }
            assert!(Instant::now() < deadline, "{}: {found:#?}", self.caller);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The queue the call entered.
    fn queued(&self) -> String {
        let row = self.row(|call| call["department"].is_string());
        row["department"].as_str().unwrap_or_default().to_string()
    }

    /// The call's journal events, in order.
    fn events(&self) -> Vec<Value> {
        let row = self.row(|_| true);
        let id = row["id"].as_str().expect("an id");
        let call = self.clinic.get(&format!("/api/calls/{id}"));
        call["events"].as_array().cloned().unwrap_or_default()
    }

    /// The `speech_heard` events' details, once there are `count`.
    fn heard(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + STEP;
        loop {
            let heard: Vec<Value> = self
                .events()
                .into_iter()
                .filter(|event| event["kind"] == "speech_heard")
                .map(|event| event["detail"].clone())
                .collect();
            if heard.len() >= count {
                return heard;
            }
            assert!(
                Instant::now() < deadline,
                "{}: heard {heard:?}",
                self.caller
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn hang_up(self) {
        let answer = self.call.bye().expect("an answer to BYE");
        assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
        drop(self.peer);
    }
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| event["kind"].as_str().map(str::to_string))
        .collect()
}

/// The test set: one phrase per option, said in every variant.
const TEST_SET: &[(&str, &str)] = &[
    ("appointment", "front-desk"),
    ("cardiology", "cardiology"),
    ("my daughter", "pediatrics"),
    ("dermatology", "dermatology"),
    ("orthopedic", "orthopedics"),
    ("urgent care", "urgent-care"),
];
const VOICES: &[&str] = &["en-us", "en-us+f3"];
const SPEEDS: &[u32] = &[130, 170];

#[test]
fn every_synthesised_utterance_lands_in_its_queue() {
    let dir = tempfile::tempdir().unwrap();
    let plan = open_speech_clinic(dir.path(), Some(MODEL));
    let daemon = speech_daemon(&plan);
    let mut utterances = Vec::new();
    for (text, queue) in TEST_SET {
        for voice in VOICES {
            for speed in SPEEDS {
                for noisy in [false, true] {
                    let audio = synthesise(dir.path(), text, voice, *speed, noisy);
                    let name = format!(
                        "{text:?} {voice} {speed}{}",
                        if noisy { " noisy" } else { "" }
                    );
                    utterances.push((name, audio, *queue, *text));
                }
            }
        }
    }
    assert_eq!(utterances.len(), TEST_SET.len() * 8);
    // Four callers at a time, each on its own thread.
    let clinic = Clinic::of(&daemon);
    let mut wrong = Vec::new();
    for (batch, chunk) in utterances.chunks(4).enumerate() {
        let results: Vec<(String, String, Vec<Value>, &str)> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, (name, audio, queue, _))| {
                    scope.spawn(move || {
                        let patient = Patient::call(clinic, batch * 4 + i);
                        patient.peer.say(audio.clone());
                        let landed = patient.queued();
                        let heard = patient.heard(1);
                        patient.hang_up();
                        (name.clone(), landed, heard, *queue)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a caller"))
                .collect()
        });
        for ((name, landed, heard, queue), (_, _, _, said)) in results.into_iter().zip(chunk) {
            // By speech, at once: one utterance heard, holding the phrase
            // said (not the menu's no-input default).
            let chosen = heard.len() == 1
                && heard[0]["text"]
                    .as_str()
                    .is_some_and(|text| format!(" {text} ").contains(&format!(" {said} ")));
            if landed != queue || !chosen {
                wrong.push(format!("{name}: landed in {landed}, heard {heard:?}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} utterances went wrong:\n{}",
        wrong.len(),
        utterances.len(),
        wrong.join("\n")
    );
    // The log never holds what was heard (the other phrases are also
    // queue names, which the log does hold).
    let log = daemon.stderr();
    assert!(log.contains("queued queue=pediatrics"), "{log}");
    assert!(!log.contains("daughter"), "the log holds a phrase heard");
}

#[test]
fn a_phrase_on_no_list_falls_back_to_keys_and_a_key_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let plan = open_speech_clinic(dir.path(), Some(MODEL));
    let daemon = speech_daemon(&plan);

    // A phrase on no list: heard, matched to nothing, the keys prompt; then
    // the caller's key decides.
    let clinic = Clinic::of(&daemon);
    let patient = Patient::call(clinic, 1);
    patient.peer.say(synthesise(
        dir.path(),
        "banana bread",
        "en-us+f3",
        170,
        false,
    ));
    let heard = patient.heard(1);
    let text = heard[0]["text"].as_str().unwrap_or_default().to_string();
    // Heard as fillers alone ("um …"): no phrase of any option.
    assert!(
        !text.is_empty()
            && text
                .split(' ')
                .all(|w| ["um", "doctor", "please"].contains(&w)),
        "{heard:?}"
    );
    // The keys prompt, then the menu, which now takes keys.
    patient.peer.press('3');
    assert_eq!(patient.queued(), "pediatrics");
    assert_eq!(patient.heard(1).len(), 1);
    patient.hang_up();

    // An RFC 4733 key in a speech menu, without a word said.
    let patient = Patient::call(clinic, 2);
    patient.peer.press('4');
    assert_eq!(patient.queued(), "dermatology");
    let events = patient.events();
    assert!(
        !kinds(&events).contains(&"speech_heard".to_string()),
        "{events:?}"
    );
    patient.hang_up();
}

/// `POST /api/reload`: its status and body.
fn reload(daemon: &Daemon) -> (u16, String) {
    let response = support::http::request(
        daemon.http(),
        "POST",
        "/api/reload",
        Some(TOKEN),
        Some("{}"),
    )
    .expect("POST /api/reload");
    (response.status, response.body)
}

#[test]
fn speech_added_by_a_reload_gets_a_recogniser_and_without_its_model_calls_go_on_by_keys() {
    let dir = tempfile::tempdir().unwrap();
    // Started without speech: no recogniser.
    let plan = open_speech_clinic(dir.path(), None);
    let daemon = speech_daemon(&plan);
    assert!(!daemon.stderr().contains("speech recogniser:"));
    let clinic = Clinic::of(&daemon);

    // A reload that asks for speech whose model is absent is refused with
    // the reason; the running plan stays and a call gets through by keys.
    open_speech_clinic(dir.path(), Some("/nonexistent/en-us"));
    let (status, body) = reload(&daemon);
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("no model folder /nonexistent/en-us"),
        "{body}"
    );
    let patient = Patient::call(clinic, 1);
    patient.peer.press('2');
    assert_eq!(patient.queued(), "cardiology");
    patient.hang_up();

    // With the model there, the reload starts a recogniser and the next
    // call is taken by voice.
    open_speech_clinic(dir.path(), Some(MODEL));
    let (status, body) = reload(&daemon);
    assert_eq!(status, 200, "{body}");
    daemon.wait_for_log(|line| line.contains("speech recogniser: 2 worker(s)"), STEP);
    let patient = Patient::call(clinic, 2);
    patient
        .peer
        .say(synthesise(dir.path(), "cardiology", "en-us", 130, false));
    assert_eq!(patient.queued(), "cardiology");
    let heard = patient.heard(1);
    assert_eq!(heard[0]["text"], "cardiology", "{heard:?}");
    patient.hang_up();
}
