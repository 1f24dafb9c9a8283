//! `frontdesk check` and `frontdesk simulate`, run as the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the binary from the repository root (where `dialplans/` is).
fn frontdesk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(args)
        .current_dir(repo())
        .env("RUST_LOG", "off")
        .output()
        .expect("the frontdesk binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn check_passes_every_example_dialplan() {
    let mut checked = 0;
    for entry in std::fs::read_dir(repo().join("dialplans")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let relative = format!("dialplans/{}", path.file_name().unwrap().to_string_lossy());
        let output = frontdesk(&["check", &relative]);
        assert!(output.status.success(), "{relative}: {}", stderr(&output));
        assert!(
            stdout(&output).starts_with(&format!("{relative}: ok (")),
            "{}",
            stdout(&output)
        );
        checked += 1;
    }
    assert!(checked >= 2);
}

#[test]
fn check_of_the_demo_clinic_summarises_it_with_each_queue_policy() {
    let output = frontdesk(&["check", "dialplans/clinic.toml"]);
    assert!(output.status.success());
    assert_eq!(
        stdout(&output),
        "dialplans/clinic.toml: ok (Riverside Family Health: 2 numbers, 1 menus, 7 queues, 7 agents)\n\
         \x20 queue cardiology: round-robin, ring 15 s, wrap-up 2 s, max wait 90 s then queue front-desk, SLA 60 s, aging 120 s\n\
         \x20 queue dermatology: fewest-calls, ring 15 s, wrap-up 2 s, max wait 90 s then queue front-desk, SLA 60 s, aging 120 s\n\
         \x20 queue front-desk: longest-idle, ring 15 s, wrap-up 2 s, max wait 180 s then message prompts/call-back-later.wav, SLA 60 s, aging 120 s\n\
         \x20 queue nurse-line: ring-all, ring 20 s, wrap-up 2 s, max wait 120 s then voicemail nurse-line, SLA 60 s, aging 120 s\n\
         \x20 queue orthopedics: fewest-calls, ring 15 s, wrap-up 2 s, max wait 90 s then queue front-desk, SLA 60 s, aging 120 s\n\
         \x20 queue pediatrics: longest-idle, ring 15 s, wrap-up 2 s, max wait 90 s then queue front-desk, SLA 60 s, aging 120 s\n\
         \x20 queue urgent-care: ring-all, ring 20 s, wrap-up 2 s, max wait 60 s then queue front-desk (urgent), SLA 30 s, aging 120 s\n"
    );
}

#[test]
fn check_reports_every_error_as_path_line_column_and_fails() {
    let output = frontdesk(&["check", "crates/ivr/tests/data/missing-reference.toml"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "crates/ivr/tests/data/missing-reference.toml:16:54: option `2`: no menu `billing` (known: `main`)\n\
         crates/ivr/tests/data/missing-reference.toml:16:83: option `3`: no queue `lab` (known: `desk`)\n\
         crates/ivr/tests/data/missing-reference.toml:32:14: `department`: no queue `cardio` (known: `desk`)\n\
         crates/ivr/tests/data/missing-reference.toml:33:15: `coordinator`: no agent `9` (known: `1`)\n\
         crates/ivr/tests/data/missing-reference.toml: 4 errors\n"
    );
    let output = frontdesk(&["check", "crates/ivr/tests/data/syntax.toml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("crates/ivr/tests/data/syntax.toml:2:20: invalid basic string")
    );
}

#[test]
fn simulate_a_menu_choice_in_hours() {
    let output = frontdesk(&[
        "simulate",
        "--number",
        "+15550100",
        "--at",
        "2026-07-15T10:00",
        "--digits",
        "2",
        "--caller",
        "+13125550100",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let expected_start = "\
dialplan dialplans/clinic.toml: Riverside Family Health (America/Chicago)
call at Wednesday 2026-07-15 10:00:00 CDT (2026-07-15T15:00:00Z)
   +0.0s  call from +13125550100 to +15550100 (number +15550100, source main-line, priority routine)
   +0.0s  caller is not in the directory
   +0.0s  answer the call
   +0.0s  answered Wednesday 2026-07-15 10:00 CDT: clinic open
   +0.0s  play prompts/emergency-notice.wav (4.7 s)
   +4.7s  menu main
   +4.7s  play prompts/main-menu.wav (22 s)
  +26.7s  menu main: waiting 5 s for a digit
  +26.7s  menu main: digit 2
  +26.7s  menu main: option 2 → queue cardiology
  +26.7s  queue cardiology, priority routine
decision: queue cardiology
  queue policy:  round-robin, ring 15 s, wrap-up 2 s, max wait 90 s then queue front-desk, SLA 60 s, aging 120 s
  priority:      routine
  source:        main-line
  dialed:        +15550100 (number +15550100)
  caller:        +13125550100
  branch:        -
  known patient: no
  after hours:   no
  agents:        1002 Bob (north)
";
    assert_eq!(text, expected_start);
}

#[test]
fn simulate_christmas_night_takes_the_after_hours_path() {
    let output = frontdesk(&[
        "simulate",
        "--number",
        "+15550100",
        "--at",
        "2026-12-25T02:00",
        "--digits",
        "2",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("call at Friday 2026-12-25 02:00:00 CST (2026-12-25T08:00:00Z)"),
        "{text}"
    );
    assert!(
        text.contains(
            "answered Friday 2026-12-25 02:00 CST: clinic closed: holiday 2026-12-25 (Christmas Day); after-hours path"
        ),
        "{text}"
    );
    assert!(text.contains("play prompts/emergency-notice.wav"), "{text}");
    assert!(text.contains("play prompts/after-hours.wav"), "{text}");
    assert!(text.contains("decision: queue nurse-line\n"), "{text}");
    assert!(text.contains("  after hours:   yes\n"), "{text}");
    assert!(
        text.contains("note: digits never pressed (the call was decided first): 2"),
        "{text}"
    );
    // The notice plays before the after-hours message.
    assert!(text.find("emergency-notice").unwrap() < text.find("after-hours.wav").unwrap());
}

#[test]
fn simulate_invalid_twice_and_no_input_twice() {
    let output = frontdesk(&[
        "simulate",
        "--number",
        "clinic",
        "--at",
        "2026-07-18T10:00",
        "--digits",
        "78",
    ]);
    let text = stdout(&output);
    assert!(
        text.contains("menu main: `7` is not an option (try 1 of 2)"),
        "{text}"
    );
    assert!(text.contains("play prompts/invalid-choice.wav"), "{text}");
    assert!(
        text.contains("menu main: out of tries; on_invalid → queue front-desk"),
        "{text}"
    );
    assert!(text.contains("decision: queue front-desk\n"), "{text}");
    assert!(
        text.contains("  dialed:        clinic (number +15550100)\n"),
        "{text}"
    );

    let output = frontdesk(&[
        "simulate",
        "--number",
        "5550100",
        "--at",
        "2026-07-18T10:00",
    ]);
    let text = stdout(&output);
    assert!(text.contains("menu main: no input (try 2 of 2)"), "{text}");
    assert!(text.contains("on_no_input → queue front-desk"), "{text}");
}

#[test]
fn simulate_the_urgent_care_number_and_a_known_patient() {
    let output = frontdesk(&[
        "simulate",
        "--number",
        "+15550111",
        "--at",
        "2026-07-15T15:00Z",
    ]);
    let text = stdout(&output);
    assert!(text.contains("decision: queue urgent-care\n  queue policy:  ring-all, ring 20 s, wrap-up 2 s, max wait 60 s then queue front-desk (urgent), SLA 30 s, aging 120 s\n  priority:      urgent\n  source:        urgent-care-campaign\n"), "{text}");

    let output = frontdesk(&[
        "simulate",
        "--dialplan",
        "dialplans/riverside-branches.toml",
        "--number",
        "+15550200",
        "--at",
        "2026-07-15T10:00",
        "--digits",
        "3",
        "--caller",
        "+13125550142",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("decision: queue pediatrics\n"), "{text}");
    assert!(text.contains("  branch:        south\n"), "{text}");
    assert!(
        text.contains(
            "  known patient: usual department pediatrics, coordinator 2003, language es, branch south\n"
        ),
        "{text}"
    );
}

#[test]
fn simulate_refuses_an_unknown_number_and_a_bad_time() {
    let output = frontdesk(&["simulate", "--number", "+19999999999"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "simulate: no number `+19999999999` in the dialplan (a caller would get 404 Not Found)\n"
    );
    let output = frontdesk(&["simulate", "--number", "+15550100", "--at", "next tuesday"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with("simulate: --at `next tuesday` is not a time"));
}

#[test]
fn simulate_a_lead_prints_intent_branch_queue_and_agents() {
    let output = frontdesk(&[
        "simulate",
        "--lead",
        "my knee hurts since Sunday",
        "--postal",
        "60605",
        "--source",
        "website",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "\
dialplan dialplans/clinic.toml: Riverside Family Health (America/Chicago)
lead from website (priority routine, respond within 5m)
  message:    \"my knee hurts since Sunday\"
  words:      my knee hurts since sunday
  postal:     60605 (read as 60605)
intent:       rule 2 (queue orthopedics), phrase \"knee\"
emergency:    no
branch:       south (postal prefix 6060)
decision: queue orthopedics
  priority:   routine
  agents:     1004 Dan (south)
"
    );
    // An emergency: urgent care, urgent.
    let output = frontdesk(&["simulate", "--lead", "Chest pain since this morning!"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(
            "intent:       rule 1 (queue urgent-care, emergency), phrase \"chest pain\"\n"
        ),
        "{text}"
    );
    assert!(text.contains("emergency:    yes\n"), "{text}");
    assert!(text.contains("  priority:   urgent\n"), "{text}");
    // No intent: the front desk, agents of the postal code's branch first.
    let output = frontdesk(&["simulate", "--lead", "I feel skinny", "--postal", "60605"]);
    let text = stdout(&output);
    assert!(
        text.contains("intent:       no rule matches: front-desk\n"),
        "{text}"
    );
    assert!(text.contains("decision: queue front-desk\n"), "{text}");
    assert!(
        text.contains(
            "  agents:     1001 Alice (north) → 1005 Erin (north) → 1006 Frank (north)\n"
        ),
        "{text}"
    );
    // A branch preference puts its agents first: pediatrics, Carol (south)
    // before Frank (north) for a south postal code, the other way round
    // for a north one.
    let south = stdout(&frontdesk(&[
        "simulate", "--lead", "my son", "--postal", "60605",
    ]));
    assert!(
        south.contains("  agents:     1003 Carol (south) → 1006 Frank (north)\n"),
        "{south}"
    );
    let north = stdout(&frontdesk(&[
        "simulate", "--lead", "my son", "--postal", "60614",
    ]));
    assert!(
        north.contains("  agents:     1006 Frank (north) → 1003 Carol (south)\n"),
        "{north}"
    );
}

#[test]
fn simulate_a_lead_refuses_an_unknown_source_and_a_stray_flag() {
    let output = frontdesk(&["simulate", "--lead", "knee", "--source", "newsletter"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "simulate: --source newsletter: no such source in dialplans/clinic.toml (known: website)\n"
    );
    // --postal belongs to --lead; --number and --lead exclude each other.
    let output = frontdesk(&["simulate", "--number", "+15550100", "--postal", "60605"]);
    assert_eq!(output.status.code(), Some(2));
    let output = frontdesk(&["simulate", "--number", "+15550100", "--lead", "knee"]);
    assert_eq!(output.status.code(), Some(2));
}

/// Runs `check` on the demo clinic with `tweak` applied, in a temporary
/// folder that links the prompts.
fn check_clinic_with(tweak: impl Fn(String) -> String) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("dialplans/clinic.toml")).unwrap();
    std::fs::write(dir.path().join("clinic.toml"), tweak(text)).unwrap();
    std::os::unix::fs::symlink(repo().join("dialplans/prompts"), dir.path().join("prompts"))
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["check", "clinic.toml"])
        .current_dir(dir.path())
        .env("RUST_LOG", "off")
        .output()
        .expect("the frontdesk binary runs")
}

/// The line of `text` holding `needle` (1-based).
fn line_in(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle")
        + 1
}

#[test]
fn check_lints_intents_each_at_its_position() {
    let demo = std::fs::read_to_string(repo().join("dialplans/clinic.toml")).unwrap();
    // The demo's intents pass.
    let output = check_clinic_with(|text| text);
    assert!(output.status.success(), "{}", stderr(&output));

    // One phrase in two rules.
    let tweak = |t: String| t.replace("\"rash\", \"acne\"", "\"rash\", \"knee\"");
    let output = check_clinic_with(tweak);
    assert_eq!(output.status.code(), Some(1));
    let line = line_in(&tweak(demo.clone()), "\"rash\", \"knee\"");
    let first = line_in(&demo, "phrases = [\"knee\"");
    assert_eq!(
        stderr(&output),
        format!(
            "clinic.toml:{line}:20: phrase `knee` is already in the intent rule on line {first}: the first rule with it always wins, so here it is dead\nclinic.toml: 1 error\n"
        )
    );

    // An unknown queue.
    let tweak = |t: String| {
        t.replace(
            "queue = \"dermatology\"\nphrases",
            "queue = \"dermatolgy\"\nphrases",
        )
    };
    let output = check_clinic_with(tweak);
    let line = line_in(&tweak(demo.clone()), "\"dermatolgy\"");
    assert!(
        stderr(&output).starts_with(&format!(
            "clinic.toml:{line}:9: intent: no queue `dermatolgy` (known: `cardiology`, `dermatology`, `front-desk`, "
        )),
        "{}",
        stderr(&output)
    );

    // An empty rule.
    let tweak = |t: String| {
        t.replace(
            "phrases = [\"rash\", \"acne\", \"mole\", \"skin\"]",
            "phrases = []",
        )
    };
    let output = check_clinic_with(tweak);
    let line = line_in(&tweak(demo.clone()), "phrases = []");
    assert_eq!(
        stderr(&output),
        format!(
            "clinic.toml:{line}:11: the intent rule for queue `dermatology` has no phrases, so it never matches: give it `phrases` or remove it\nclinic.toml: 1 error\n"
        )
    );

    // An emergency rule after a non-emergency one that shadows it.
    let tweak = |t: String| {
        let emergency = "[[intents]]\nqueue = \"urgent-care\"\nemergency = true";
        let start = t.find(emergency).unwrap();
        let end = start + t[start..].find("\n\n").unwrap() + 2;
        let block = t[start..end].to_string();
        let without = format!("{}{}", &t[..start], &t[end..]);
        let anchor = without.find("[branches.north]").unwrap();
        format!("{}{block}{}", &without[..anchor], &without[anchor..])
            .replace("\"sprain\", \"joint\"", "\"sprain\", \"pain\"")
    };
    let output = check_clinic_with(tweak);
    assert_eq!(output.status.code(), Some(1));
    let text = tweak(demo.clone());
    let line = line_in(&text, "\"chest pain\"");
    assert!(
        stderr(&output).contains(&format!(
            "clinic.toml:{line}:12: emergency phrase `chest pain` can never win: the rule on line {} (queue `orthopedics`, not an emergency) comes first and its phrase `pain` is in it; put emergency rules first",
            text.lines().position(|l| l == "queue = \"orthopedics\"").unwrap()
        )),
        "{}",
        stderr(&output)
    );
}
