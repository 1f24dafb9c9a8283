//! `frontdesk import asterisk`, run as the real binary on a realistic
//! Asterisk set-up (`tests/data/asterisk/`: three queues, six PJSIP
//! endpoints, a Background/WaitExten menu): its output passes `frontdesk
//! check` once the prompts it names exist, `frontdesk simulate` routes the
//! menu's digits to the queues Asterisk sent them to, and what it could
//! not translate is reported as FILE:LINE.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the binary from the repository root.
fn frontdesk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(args)
        .current_dir(repo())
        .env("RUST_LOG", "off")
        .output()
        .expect("the frontdesk binary runs")
}

const FIXTURE: &str = "crates/frontdesk/tests/data/asterisk";

/// Imports the fixture into `dir/clinic.toml`, with every prompt it names
/// made from a demo prompt (what an operator does with their sound
/// files); returns the plan's path and the report.
fn import_into(dir: &Path) -> (PathBuf, String) {
    let queues = format!("{FIXTURE}/queues.conf");
    let pjsip = format!("{FIXTURE}/pjsip.conf");
    let extensions = format!("{FIXTURE}/extensions.conf");
    let output = frontdesk(&[
        "import",
        "asterisk",
        "--queues",
        &queues,
        "--pjsip",
        &pjsip,
        "--extensions",
        &extensions,
        "--name",
        "Lakeside Medical Group",
        "--time-zone",
        "America/New_York",
    ]);
    let report = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{report}");
    let plan = String::from_utf8(output.stdout).expect("the plan is UTF-8");
    let path = dir.join("clinic.toml");
    std::fs::write(&path, &plan).unwrap();
    std::fs::create_dir_all(dir.join("prompts")).unwrap();
    let demo = repo().join("dialplans/prompts/please-hold.wav");
    let mut prompts = 0;
    for piece in plan.split('"') {
        if piece.starts_with("prompts/") && piece.ends_with(".wav") {
            std::fs::copy(&demo, dir.join(piece)).unwrap();
            prompts += 1;
        }
    }
    assert!(prompts >= 3, "{plan}");
    (path, report)
}

#[test]
fn the_imported_plan_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, _) = import_into(dir.path());
    let plan = plan.to_str().unwrap();
    let output = frontdesk(&["check", plan]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with(&format!(
            "{plan}: ok (Lakeside Medical Group: 3 numbers, 1 menus, 3 queues, 5 agents)"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("queue cardiology: skill-level, ring 15 s, wrap-up 30 s, max wait 120 s then queue front-desk"),
        "{stdout}"
    );
}

#[test]
fn simulate_routes_the_menu_digits_to_the_asterisk_queues() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, _) = import_into(dir.path());
    let plan = plan.to_str().unwrap();
    for (number, digits, queue) in [
        ("+15550200", "2", "decision: queue cardiology"),
        ("+15550200", "3", "decision: queue pediatrics"),
        ("5550200", "1", "decision: queue front-desk"),
        // No digit: the `t` extension's queue.
        ("+15550200", ".", "decision: queue front-desk"),
        ("+15550222", "", "decision: queue cardiology"),
    ] {
        let output = frontdesk(&[
            "simulate",
            "--dialplan",
            plan,
            "--number",
            number,
            "--digits",
            digits,
        ]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{number} {digits}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains(queue), "{number} {digits}: {stdout}");
        assert!(
            stdout.contains("play prompts/emergency-notice.wav"),
            "{stdout}"
        );
    }
}

#[test]
fn what_is_not_translated_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let (_, report) = import_into(dir.path());
    for expected in [
        format!("{FIXTURE}/extensions.conf:10: `#include` not followed"),
        format!("{FIXTURE}/extensions.conf:41: option `7` of [main-menu]: Dial(PJSIP/1001,20)"),
        format!("{FIXTURE}/extensions.conf:25: pattern `_+1555020X`"),
        format!(
            "{FIXTURE}/queues.conf:37: queue `pediatrics`: strategy `random` has no equivalent"
        ),
        format!("{FIXTURE}/queues.conf:42: queue `pediatrics`: member `Local/2001@from-queue/n`"),
        format!(
            "{FIXTURE}/queues.conf:13: [clinic-queue] `announce-frequency = 30` not translated"
        ),
        format!("{FIXTURE}/pjsip.conf:79: auth [1006-auth]: `auth_type = md5`"),
    ] {
        assert!(
            report.lines().any(|line| line.starts_with(&expected)),
            "missing {expected:?} in\n{report}"
        );
    }
    // A file that cannot be read fails the import, and names it.
    let output = frontdesk(&[
        "import",
        "asterisk",
        "--queues",
        "nowhere/queues.conf",
        "--pjsip",
        "x",
        "--extensions",
        "y",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("nowhere/queues.conf"));
}
