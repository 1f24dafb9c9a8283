//! Speech menus from the command line (issue 25): `check` and `run` refuse
//! a plan whose model is missing, and `simulate --say` takes the option the
//! recogniser's words would. Needs Debian's `pocketsphinx-en-us`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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
