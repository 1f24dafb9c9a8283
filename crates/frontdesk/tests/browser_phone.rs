//! The agent view's phone (issue 23) in a real headless Chromium: the page
//! switches "Take calls here" on (a fake microphone that plays a WAV of
//! speech made with espeak-ng and sox, WebRTC to the daemon over loopback,
//! the signalling of `/agent/phone`), rings, answers, and its audio is
//! checked at both ends: what the SIPp patient's RTP peer receives decodes
//! to speech, and the page's `getStats()` shows audio coming in.
//!
//! Chromium runs with the flags of `support/browser.rs` plus
//! `--use-fake-ui-for-media-stream --use-fake-device-for-media-stream
//! --use-file-for-fake-audio-capture=<WAV> --allow-loopback-in-peer-connection`
//! (without the last, Chromium offers no loopback candidates).
//!
//! Screenshots: `target/test-artifacts/agent-phone-ringing.png` and
//! `agent-phone-call.png`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::browser::{Browser, DESKTOP};
use support::call::{calls, open_clinic};
use support::people::{agent, agent_phone, answering_agent, patient, press_when_heard};
use support::phone::RtpPeer;
use support::{Daemon, Launch, TOKEN};

/// How long a step of the page, the daemon or a person may take.
const BOUND: Duration = Duration::from_secs(30);
/// A 20 ms packet whose samples' RMS reach this carries speech (espeak's
/// voice is in the thousands; digital silence is 0).
const SPEECH: u16 = 300;
/// Below this a packet is silence (a muted microphone sends zeros).
const QUIET: u16 = 100;
/// Speech packets that prove the page's microphone reaches the patient
/// (half a second).
const HEARD: usize = 25;
/// Quiet packets in a row that prove the page is muted: one second, far
/// longer than any pause in the test's speech (under 0.4 s).
const MUTED: usize = 50;

/// Where screenshots go: `target/test-artifacts/`.
fn artifacts() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .map_or(tmp.clone(), |target| target.join("test-artifacts"))
}

/// A few seconds of speech as a 48 kHz mono 16-bit WAV in `dir`, for
/// Chromium's fake microphone: espeak-ng speaks, sox resamples and trims
/// the silence at both ends (the file loops).
fn speech_wav(dir: &Path) -> PathBuf {
    let raw = dir.join("speech-raw.wav");
    let wav = dir.join("speech.wav");
    let run = |command: &mut Command, what: &str| {
        let status = command
            .status()
            .unwrap_or_else(|error| panic!("cannot run {what} ({error}); tests/run installs it"));
        assert!(status.success(), "{what} failed: {status}");
    };
    run(
        Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "170", "-g", "0", "-w"])
            .arg(&raw)
            .arg(
                "Good morning, this is Carol at Riverside Family Health. How can I help you \
                 today? Your appointment is on Tuesday at ten thirty with doctor Patel.",
            ),
        "espeak-ng",
    );
    run(
        Command::new("sox")
            .arg(&raw)
            .args(["-r", "48000", "-c", "1", "-b", "16"])
            .arg(&wav)
            .args([
                "silence", "1", "0.02", "1%", "reverse", "silence", "1", "0.02", "1%", "reverse",
            ]),
        "sox",
    );
    wav
}

/// Chromium with a fake microphone that says `wav`, and permission to use it.
fn phone_browser(wav: &Path) -> Browser {
    Browser::launch_with(
        DESKTOP,
        &[
            "--use-fake-ui-for-media-stream".to_string(),
            "--use-fake-device-for-media-stream".to_string(),
            format!("--use-file-for-fake-audio-capture={}", wav.display()),
            "--allow-loopback-in-peer-connection".to_string(),
        ],
    )
}

/// The demo clinic open at any hour, with `tweak` applied.
fn open_daemon(dir: &Path, tweak: impl Fn(String) -> String) -> Daemon {
    let plan = open_clinic(dir, tweak);
    Launch::new().dialplan(plan).start()
}

/// Signs in to `/agent` at `base` as `user` (password `demo-<user>`).
fn sign_in(browser: &mut Browser, base: &str, user: &str) {
    browser.open(&format!("{base}/agent"));
    browser.wait_for("!document.getElementById('sign-in').hidden", BOUND);
    browser.type_into("#user", user);
    browser.type_into("#password", &format!("demo-{user}"));
    browser.click("#login-form button[type=submit]");
    browser.wait_for("!document.getElementById('view').hidden", BOUND);
    browser.wait_for(
        &format!(
            "document.getElementById('who').textContent.includes({})",
            json!(format!("({user})"))
        ),
        BOUND,
    );
}

/// Waits until the page's phone is in `state` (and its badge says so).
fn wait_phone(browser: &mut Browser, state: &str) {
    browser.wait_for(
        &format!(
            "window.frontdeskPhone.state === {0} \
             && document.getElementById('phone-state').dataset.state === {0}",
            json!(state)
        ),
        BOUND,
    );
}

/// Clicks "Take calls here" and waits until the phone is ready.
fn switch_on(browser: &mut Browser) {
    assert_eq!(
        browser.evaluate("window.frontdeskPhone.state"),
        json!("off")
    );
    browser.click("[data-testid=phone-on]");
    wait_phone(browser, "ready");
    assert_eq!(
        browser.evaluate("window.frontdeskPhone.socketOpen"),
        json!(true)
    );
}

/// Waits until `GET /api/agents` shows agent `id` with exactly `devices`
/// (in any order) and, if given, in `state`.
fn wait_agent(daemon: &Daemon, id: &str, devices: &[&str], state: Option<&str>) {
    let deadline = Instant::now() + BOUND;
    let mut wanted = devices.to_vec();
    wanted.sort_unstable();
    loop {
        let now = agent(daemon, id);
        let mut listed: Vec<&str> = now["devices"]
            .as_array()
            .map(|all| all.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        listed.sort_unstable();
        if listed == wanted && state.is_none_or(|state| now["state"] == state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "agent {id} is {now}, not {state:?} with devices {devices:?}\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `/api/calls` until one of the calls (not only the newest)
/// satisfies `done`; returns it.
fn wait_call(daemon: &Daemon, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + BOUND;
    loop {
        let list = calls(daemon);
        if let Some(call) = list.iter().find(|call| done(call)) {
            return call.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no such call within {BOUND:?}: {list:#?}\nthe log:\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many callers wait in `queue` (`GET /api/queues`).
fn waiting(daemon: &Daemon, queue: &str) -> u64 {
    let body: Value =
        serde_json::from_str(&daemon.get("/api/queues", Some(TOKEN)).body).expect("JSON");
    body["queues"]
        .as_array()
        .and_then(|queues| queues.iter().find(|q| q["id"] == queue))
        .and_then(|q| q["waiting"].as_u64())
        .unwrap_or(0)
}

/// Waits until `count` callers wait in `queue`.
fn wait_waiting(daemon: &Daemon, queue: &str, count: u64) {
    let deadline = Instant::now() + BOUND;
    while waiting(daemon, queue) != count {
        assert!(
            Instant::now() < deadline,
            "{} waiting in {queue}, not {count}\n{}",
            waiting(daemon, queue),
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The page's loudest inbound audio level (`getStats()`, inbound-rtp audio
/// with packets received), 0 when none.
const INBOUND_LEVEL: &str = "(async () => {
    const pc = window.frontdeskPhone.peerConnection;
    if (!pc) return 0;
    let level = 0;
    (await pc.getStats()).forEach((report) => {
        if (report.type === 'inbound-rtp' && report.kind === 'audio' && report.packetsReceived > 0) {
            level = Math.max(level, report.audioLevel || 0);
        }
    });
    return level;
})()";

/// Waits until the page rings for a call whose banner names pediatrics,
/// audibly; returns the banner's text.
fn wait_ringing(browser: &mut Browser) -> String {
    wait_phone(browser, "ringing");
    let from = browser
        .evaluate("document.getElementById('phone-from').textContent")
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        from.to_lowercase().contains("pediatrics"),
        "the banner says {from:?}"
    );
    assert_eq!(browser.evaluate("window.frontdeskPhone.from"), json!(from));
    assert_eq!(
        browser.evaluate("!document.querySelector('[data-testid=incoming]').hidden"),
        json!(true)
    );
    // Audible: the ring tone plays on a running AudioContext.
    assert_eq!(
        browser.evaluate("window.frontdeskPhone.ringing"),
        json!(true)
    );
    browser.wait_for(
        "window.frontdeskPhone.ringBursts > 0 && window.frontdeskPhone.audioState === 'running'",
        BOUND,
    );
    from
}

/// Answers on the page and waits until the call is connected.
fn answer(browser: &mut Browser) {
    browser.click("[data-testid=answer]");
    wait_phone(browser, "in_call");
    assert_eq!(
        browser.evaluate("!document.querySelector('[data-testid=in-call]').hidden"),
        json!(true)
    );
    assert_eq!(
        browser.evaluate("window.frontdeskPhone.ringing"),
        json!(false)
    );
}

/// Waits until `peer` has received `count` speech packets from its
/// `since`-th packet on.
fn wait_speech(peer: &RtpPeer, since: usize, count: usize, what: &str) {
    assert!(
        peer.wait_until(BOUND, |p| p.loud_since(since, SPEECH) >= count),
        "{what}: {} speech packets of {} received",
        peer.loud_since(since, SPEECH),
        peer.received_count() - since
    );
}

#[test]
fn carol_takes_a_call_in_the_browser_both_sides_hear_each_other_and_she_hangs_up() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let daemon = open_daemon(dir.path(), |text| text);
    let base = format!("http://{}", daemon.http());
    let mut browser = phone_browser(&speech_wav(dir.path()));

    // Carol, with no SIP phone, takes calls in the browser: the API lists
    // the browser as her device and her as available.
    sign_in(&mut browser, &base, "1003");
    switch_on(&mut browser);
    wait_agent(&daemon, "1003", &["browser"], Some("available"));
    browser.wait_for(
        "document.getElementById('state').textContent.trim() === 'available'",
        BOUND,
    );

    // A patient presses 3 (pediatrics): the page rings, visibly and audibly.
    let patient_audio = RtpPeer::start(0, false);
    let caller = patient(&daemon, "caller-hold.xml", "+15550100", &patient_audio, 0);
    press_when_heard(&patient_audio, '3');
    wait_ringing(&mut browser);
    browser.screenshot(&artifacts().join("agent-phone-ringing.png"));

    // Answered on the page: Carol is on the call.
    answer(&mut browser);
    let mark = patient_audio.received_count();
    wait_agent(&daemon, "1003", &["browser"], Some("on_call"));
    let call = wait_call(&daemon, |call| {
        call["agent"] == "1003" && call["outcome"] == "in_progress"
    });

    // Both ways: the patient hears Carol's speech, the page hears the
    // patient's phone.
    wait_speech(&patient_audio, mark, HEARD, "the page's microphone");
    let level = browser.wait_for(&format!("{INBOUND_LEVEL}.then((l) => l > 0 && l)"), BOUND);
    assert!(
        level.as_f64().is_some_and(|l| l > 0.0),
        "audioLevel {level}"
    );
    browser.screenshot(&artifacts().join("agent-phone-call.png"));

    // Mute is local: the patient hears silence, then Carol again.
    browser.click("[data-testid=mute]");
    assert_eq!(browser.evaluate("window.frontdeskPhone.muted"), json!(true));
    assert!(
        patient_audio.wait_until(BOUND, |p| p.quiet_streak(QUIET) >= MUTED),
        "muted, yet the patient still hears speech"
    );
    browser.click("[data-testid=mute]");
    assert_eq!(
        browser.evaluate("window.frontdeskPhone.muted"),
        json!(false)
    );
    let unmuted = patient_audio.received_count();
    wait_speech(&patient_audio, unmuted, HEARD, "unmuted");

    // Hold and resume, as the daemon confirms them; the patient's phone
    // gets a re-INVITE for each (`caller-hold.xml` checks a=sendonly, then
    // a=sendrecv).
    browser.click("[data-testid=hold]");
    wait_phone(&mut browser, "on_hold");
    assert_eq!(browser.evaluate("window.frontdeskPhone.held"), json!(true));
    browser.click("[data-testid=hold]");
    wait_phone(&mut browser, "in_call");

    // Carol hangs up on the page: the patient gets our BYE (after the
    // re-INVITEs: `caller-hold.xml` succeeds only so).
    browser.click("[data-testid=hangup]");
    wait_phone(&mut browser, "ready");
    caller
        .join()
        .expect("caller thread")
        .assert_all_succeeded(1);
    let done = wait_call(&daemon, |c| {
        c["id"] == call["id"] && c["outcome"] == "connected"
    });
    assert_eq!(done["agent"], "1003");
    assert_eq!(done["department"], "pediatrics");
    // After her wrap-up she is available again, still in the browser.
    wait_agent(&daemon, "1003", &["browser"], Some("available"));
    assert_eq!(
        browser.take_errors(),
        Vec::<String>::new(),
        "the page reported errors"
    );
}

#[test]
fn a_page_closed_mid_call_puts_the_patient_back_at_the_head_of_the_queue() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Frank's wrap-up after the call outlasts the test, so that he is
    // offered nobody else.
    let daemon = open_daemon(dir.path(), |text| {
        let at = text.find("[queues.pediatrics]").expect("pediatrics");
        let (head, tail) = text.split_at(at);
        format!(
            "{head}{}",
            tail.replacen("wrap_up = \"2s\"", "wrap_up = \"60s\"", 1)
        )
    });
    let base = format!("http://{}", daemon.http());
    let mut browser = phone_browser(&speech_wav(dir.path()));
    sign_in(&mut browser, &base, "1003");
    switch_on(&mut browser);
    wait_agent(&daemon, "1003", &["browser"], Some("available"));

    // The first patient reaches Carol in the browser.
    let first_audio = RtpPeer::start(0, false);
    let first = patient(&daemon, "caller.xml", "+15550100", &first_audio, 15_000);
    press_when_heard(&first_audio, '3');
    wait_ringing(&mut browser);
    answer(&mut browser);
    let call = wait_call(&daemon, |call| {
        call["agent"] == "1003" && call["outcome"] == "in_progress"
    });
    let id = call["id"].clone();

    // A second patient waits in pediatrics behind her.
    let second_audio = RtpPeer::start(0, false);
    let second = patient(&daemon, "caller.xml", "+15550100", &second_audio, 8_000);
    press_when_heard(&second_audio, '3');
    wait_waiting(&daemon, "pediatrics", 1);

    // Carol's page goes away mid-call: her browser device at once, and
    // the first patient is back in pediatrics, with nobody.
    browser.open("about:blank");
    wait_agent(&daemon, "1003", &[], None);
    wait_waiting(&daemon, "pediatrics", 2);
    let back = wait_call(&daemon, |c| c["id"] == id);
    assert_eq!(back["outcome"], "in_progress", "{back}");
    assert_eq!(back["department"], "pediatrics", "{back}");

    // Frank signs in with his SIP phone: he gets the first patient (the
    // head of the queue), not the one who waited longer in it.
    let frank_audio = RtpPeer::start(0, false);
    let frank = answering_agent(&daemon, "1006", &frank_audio);
    let taken = wait_call(&daemon, |c| c["agent"] == "1006");
    assert_eq!(taken["id"], id, "Frank was offered {taken}");
    wait_waiting(&daemon, "pediatrics", 1);

    // The second patient gives up; the first hangs up on Frank.
    second
        .join()
        .expect("second caller")
        .assert_all_succeeded(1);
    first.join().expect("first caller").assert_all_succeeded(1);
    frank.join().expect("Frank's phone").assert_all_succeeded(1);
    let done = wait_call(&daemon, |c| c["id"] == id && c["outcome"] != "in_progress");
    assert_eq!(done["outcome"], "connected", "{done}");
    assert_eq!(done["agent"], "1006", "{done}");
    let other = wait_call(&daemon, |c| c["id"] != id && c["outcome"] != "in_progress");
    assert_eq!(other["outcome"], "abandoned", "{other}");
    assert_eq!(calls(&daemon).len(), 2);
}

#[test]
fn with_a_sip_phone_and_the_browser_both_ringing_the_page_answers_first() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let daemon = open_daemon(dir.path(), |text| text);
    let base = format!("http://{}", daemon.http());
    let mut browser = phone_browser(&speech_wav(dir.path()));

    // Carol's desk phone rings until it is cancelled; her page is on too.
    let desk = agent_phone(&daemon, "1003", "agent-noanswer.xml", &[]);
    sign_in(&mut browser, &base, "1003");
    switch_on(&mut browser);
    wait_agent(&daemon, "1003", &["browser", "sip"], Some("available"));

    let patient_audio = RtpPeer::start(0, false);
    let caller = patient(&daemon, "caller-hungup.xml", "+15550100", &patient_audio, 0);
    press_when_heard(&patient_audio, '3');
    wait_ringing(&mut browser);
    answer(&mut browser);
    let mark = patient_audio.received_count();

    // The desk phone got CANCEL (agent-noanswer.xml succeeds only then);
    // the patient talks with the page.
    desk.join().expect("desk phone").assert_all_succeeded(1);
    wait_speech(&patient_audio, mark, HEARD, "the page's microphone");
    let call = wait_call(&daemon, |call| {
        call["agent"] == "1003" && call["outcome"] == "in_progress"
    });
    assert_eq!(
        browser.evaluate("window.frontdeskPhone.state"),
        json!("in_call")
    );

    browser.click("[data-testid=hangup]");
    caller
        .join()
        .expect("caller thread")
        .assert_all_succeeded(1);
    let done = wait_call(&daemon, |c| {
        c["id"] == call["id"] && c["outcome"] == "connected"
    });
    assert_eq!(done["agent"], "1003");
    assert_eq!(
        browser.take_errors(),
        Vec::<String>::new(),
        "the page reported errors"
    );
}

#[test]
fn carol_transfers_a_call_from_the_page_to_the_front_desk() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let daemon = open_daemon(dir.path(), |text| text);
    let base = format!("http://{}", daemon.http());
    let mut browser = phone_browser(&speech_wav(dir.path()));

    // Alice (front desk only) has a SIP phone; Carol takes calls here.
    let alice_audio = RtpPeer::start(0, false);
    let alice = answering_agent(&daemon, "1001", &alice_audio);
    sign_in(&mut browser, &base, "1003");
    switch_on(&mut browser);
    wait_agent(&daemon, "1003", &["browser"], Some("available"));

    let patient_audio = RtpPeer::start(0, false);
    let caller = patient(&daemon, "caller.xml", "+15550100", &patient_audio, 10_000);
    press_when_heard(&patient_audio, '3');
    wait_ringing(&mut browser);
    answer(&mut browser);

    // A target that is no id is refused on the page; the front desk is not.
    browser.type_into("[data-testid=transfer-to]", "front desk");
    browser.click("[data-testid=transfer]");
    browser.wait_for(
        "document.getElementById('phone-note').textContent.includes('queue id')",
        BOUND,
    );
    assert_eq!(
        browser.evaluate("window.frontdeskPhone.state"),
        json!("in_call")
    );
    browser.evaluate("document.querySelector('[data-testid=transfer-to]').value = ''");
    browser.type_into("[data-testid=transfer-to]", "front-desk");
    browser.click("[data-testid=transfer]");
    wait_phone(&mut browser, "ready");
    browser.wait_for(
        "document.getElementById('phone-note').textContent.startsWith('Transferred to front-desk')",
        BOUND,
    );

    // Alice's phone answers the patient, who hangs up on her later.
    let call = wait_call(&daemon, |c| c["agent"] == "1001");
    assert_eq!(call["outcome"], "in_progress", "{call}");
    caller
        .join()
        .expect("caller thread")
        .assert_all_succeeded(1);
    alice.join().expect("Alice's phone").assert_all_succeeded(1);
    let done = wait_call(&daemon, |c| {
        c["id"] == call["id"] && c["outcome"] != "in_progress"
    });
    assert_eq!(done["outcome"], "connected", "{done}");
    assert_eq!(done["department"], "front-desk", "{done}");
    assert_eq!(
        browser.take_errors(),
        Vec::<String>::new(),
        "the page reported errors"
    );
}

#[test]
fn a_page_that_is_not_a_secure_context_explains_why_it_cannot_take_calls() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let daemon = open_daemon(dir.path(), |text| text);
    // The same daemon under a host name that is not this computer's:
    // plain HTTP there is not a secure context.
    let mut browser = Browser::launch_with(
        DESKTOP,
        &["--host-resolver-rules=MAP clinic.test 127.0.0.1".to_string()],
    );
    let base = format!("http://clinic.test:{}", daemon.http().port());
    sign_in(&mut browser, &base, "1003");
    assert_eq!(browser.evaluate("window.isSecureContext"), json!(false));
    assert_eq!(
        browser.evaluate("document.querySelector('[data-testid=phone-on]').disabled"),
        json!(true)
    );
    let note = browser
        .evaluate("document.getElementById('phone-note').textContent")
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(note.contains("HTTPS") && note.contains("--sips"), "{note}");
    assert_eq!(
        browser.evaluate("window.frontdeskPhone.state"),
        json!("off")
    );
    assert_eq!(
        browser.take_errors(),
        Vec::<String>::new(),
        "the page reported errors"
    );
}
