//! `check` errors: one test per kind, each asserting the exact
//! `PATH:LINE:COLUMN: message` lines, from fixtures in `tests/data/`.

use ivr::{Dialplan, ErrorKind};

/// Loads `tests/data/NAME` (cargo runs integration tests in the crate
/// folder, so the path in the messages is relative and stable) and returns
/// its errors, asserting they are all of `kind`.
fn errors(name: &str, kind: ErrorKind) -> Vec<String> {
    let errors = match Dialplan::load(format!("tests/data/{name}")) {
        Ok(_) => panic!("{name} should not pass check"),
        Err(errors) => errors,
    };
    for error in &errors {
        assert_eq!(error.kind, kind, "{error}");
    }
    errors.to_lines()
}

const NOTICE_FIX: &str =
    "(put `prompts/notice.wav` first in `announce`, or set `exempt_from_safety = \"<reason>\"`)";

#[test]
fn the_valid_fixture_passes() {
    let plan = Dialplan::load("tests/data/valid.toml").expect("valid");
    assert_eq!(plan.clinic().name(), "Test Clinic");
    assert_eq!(plan.path().to_str(), Some("tests/data/valid.toml"));
}

#[test]
fn a_missing_file_is_reported_at_its_path() {
    let errors = Dialplan::load("tests/data/nope.toml").unwrap_err();
    let line = errors.to_lines().remove(0);
    assert!(
        line.starts_with("tests/data/nope.toml:1:1: cannot read the dialplan: "),
        "{line}"
    );
    assert_eq!(errors.iter().next().unwrap().kind, ErrorKind::Io);
}

#[test]
fn syntax_errors_all_at_once() {
    assert_eq!(
        errors("syntax.toml", ErrorKind::Syntax),
        [
            "tests/data/syntax.toml:2:20: invalid basic string, expected `\"`",
            "tests/data/syntax.toml:5:11: unclosed array table, expected `]`",
        ]
    );
}

#[test]
fn unknown_keys_everywhere_all_at_once() {
    assert_eq!(
        errors("unknown-keys.toml", ErrorKind::UnknownKey),
        [
            "tests/data/unknown-keys.toml:1:1: unknown key `colour`, expected one of `clinic`, `numbers`, `menus`, `queues`, `agents`, `hours`, `holidays`, `after_hours`, `directory`, `trust`, `limits`, `announcements`, `features`, `sources`, `intents`, `branches`, `trunks`, `voicemail`, `webhooks`, `speech`",
            "tests/data/unknown-keys.toml:7:1: unknown key `adress`, expected one of `name`, `time_zone`, `emergency_notice`, `country`",
            "tests/data/unknown-keys.toml:13:25: unknown key `priorty`, expected one of `menu`, `queue`, `priority`, `message`, `voicemail`, `hangup`",
            "tests/data/unknown-keys.toml:19:1: unknown key `tiemout`, expected one of `prompt`, `options`, `timeout`, `inter_digit_timeout`, `max_digits`, `retries`, `invalid_prompt`, `no_input_prompt`, `on_no_input`, `on_invalid`, `speech`, `speech_threshold`, `confirm`",
        ]
    );
}

#[test]
fn a_digit_to_a_missing_menu_or_queue() {
    assert_eq!(
        errors("missing-reference.toml", ErrorKind::MissingReference),
        [
            "tests/data/missing-reference.toml:16:54: option `2`: no menu `billing` (known: `main`)",
            "tests/data/missing-reference.toml:16:83: option `3`: no queue `lab` (known: `desk`)",
            "tests/data/missing-reference.toml:32:14: `department`: no queue `cardio` (known: `desk`)",
            "tests/data/missing-reference.toml:33:15: `coordinator`: no agent `9` (known: `1`)",
        ]
    );
}

#[test]
fn prompts_missing_or_not_8khz_mono_16bit_pcm() {
    assert_eq!(
        errors("bad-prompts.toml", ErrorKind::BadPrompt),
        [
            "tests/data/bad-prompts.toml:13:10: prompt `prompts/missing.wav` does not exist (prompts are relative to the dialplan's folder)",
            "tests/data/bad-prompts.toml:14:18: prompt `prompts/stereo.wav` is 8000 Hz stereo 16-bit PCM; prompts must be 8000 Hz mono 16-bit PCM",
            "tests/data/bad-prompts.toml:15:19: prompt `prompts/wideband.wav` is 16000 Hz mono 16-bit PCM; prompts must be 8000 Hz mono 16-bit PCM",
            "tests/data/bad-prompts.toml:17:26: prompt `prompts/not-a-wav.wav` is not a readable WAV file: Ill-formed WAVE file: no RIFF tag found",
        ]
    );
}

#[test]
fn overlapping_hours() {
    assert_eq!(
        errors("overlapping-hours.toml", ErrorKind::OverlappingHours),
        [
            "tests/data/overlapping-hours.toml:30:21: hours overlap on friday: 17:00-20:00 overlaps 08:00-18:00 (line 26)"
        ]
    );
}

#[test]
fn an_unreachable_menu() {
    assert_eq!(
        errors("unreachable-menu.toml", ErrorKind::UnreachableMenu),
        [
            "tests/data/unreachable-menu.toml:18:8: menu `billing` is unreachable: no number, menu or after-hours path leads to it"
        ]
    );
}

#[test]
fn loops_with_no_way_out() {
    assert_eq!(
        errors("loop-without-exit.toml", ErrorKind::LoopWithoutExit),
        [
            "tests/data/loop-without-exit.toml:19:8: menu `main` loops with no way out: every choice leads only to menus `main`, `more`, never to a queue or a message",
            "tests/data/loop-without-exit.toml:25:8: menu `more` loops with no way out: every choice leads only to menus `main`, `more`, never to a queue or a message",
            "tests/data/loop-without-exit.toml:40:15: a caller who presses nothing loops forever: `again` → `other` → `again` (let an `on_no_input` lead to a queue or a message)",
        ]
    );
}

#[test]
fn a_queue_no_agent_can_serve() {
    assert_eq!(
        errors("queue-without-agent.toml", ErrorKind::QueueWithoutAgent),
        [
            "tests/data/queue-without-agent.toml:12:9: no agent can serve queue `lab`: none has all of its skills (`lab`, `phlebotomy`)"
        ]
    );
}

#[test]
fn an_unknown_time_zone() {
    assert_eq!(
        errors("unknown-time-zone.toml", ErrorKind::UnknownTimeZone),
        [
            "tests/data/unknown-time-zone.toml:3:13: unknown time zone `America/Chicgo` (use an IANA name such as `America/Chicago`)"
        ]
    );
}

#[test]
fn queues_that_overflow_in_a_loop() {
    assert_eq!(
        errors("overflow-loop.toml", ErrorKind::OverflowLoop),
        [
            "tests/data/overflow-loop.toml:18:15: queues overflow in a loop: `desk` → `lab` → `desk` (end the chain with a queue without `max_wait`, or a `message`)"
        ]
    );
}

#[test]
fn safety_the_emergency_notice_comes_first_in_and_out_of_hours() {
    // +15550199 has no notice but is exempt: no error for it.
    assert_eq!(
        errors("safety-emergency-notice.toml", ErrorKind::Safety),
        [
            format!(
                "tests/data/safety-emergency-notice.toml:8:10: number `+15550100` plays `prompts/menu.wav` before the emergency notice {NOTICE_FIX}"
            ),
            format!(
                "tests/data/safety-emergency-notice.toml:15:10: number `+15550111` goes to queue `desk` without playing the emergency notice {NOTICE_FIX}"
            ),
            format!(
                "tests/data/safety-emergency-notice.toml:15:10: number `+15550111` after hours plays `prompts/message.wav` before the emergency notice {NOTICE_FIX}"
            ),
            format!(
                "tests/data/safety-emergency-notice.toml:22:10: number `+15550122` after hours plays `prompts/message.wav` before the emergency notice {NOTICE_FIX}"
            ),
        ]
    );
}

#[test]
fn safety_no_path_ends_in_silence() {
    // Menu `test` hangs up in silence twice, but only the exempt number reaches it.
    assert_eq!(
        errors("safety-silence.toml", ErrorKind::Safety),
        [
            "tests/data/safety-silence.toml:21:15: this path hangs up in silence: end it with a `message` or a `queue`, or mark the numbers that reach it `exempt_from_safety`"
        ]
    );
    assert_eq!(
        errors("safety-silent-overflow.toml", ErrorKind::Safety),
        [
            "tests/data/safety-silent-overflow.toml:18:15: `on_max_wait` hangs up in silence: play a `message` (such as \"please call back later\") instead"
        ]
    );
    // +15550111 has its own after-hours path; +15550100 has none.
    assert_eq!(
        errors("safety-no-after-hours.toml", ErrorKind::Safety),
        [
            "tests/data/safety-no-after-hours.toml:33:8: the clinic has hours or holidays but no `[after_hours]`: calls to `+15550100` outside hours would have nowhere to go"
        ]
    );
}

#[test]
fn invalid_values_each_at_their_value() {
    assert_eq!(
        errors("invalid-values.toml", ErrorKind::InvalidValue),
        [
            "tests/data/invalid-values.toml:9:12: unknown variant `asap`, expected `routine` or `urgent`",
            "tests/data/invalid-values.toml:16:16: `answer_after`: `soon` is not a duration (write `15s`, `500ms`, `3m` or `1m 30s`)",
            "tests/data/invalid-values.toml:18:8: `then` must name exactly one of `menu`, `queue`, `message`, `voicemail` or `hangup`",
            "tests/data/invalid-values.toml:22:11: `timeout`: `5 parsecs` is not a duration (write `15s`, `500ms`, `3m` or `1m 30s`)",
            "tests/data/invalid-values.toml:23:11: `retries` must be from 0 to 10, not 99",
            "tests/data/invalid-values.toml:26:39: option `x`: options are digits 0-9, `*` and `#`",
            "tests/data/invalid-values.toml:30:12: unknown variant `random`, expected one of `ring-all`, `round-robin`, `longest-idle`, `fewest-calls`, `skill-level`, `capacity`",
            "tests/data/invalid-values.toml:34:1: missing key `password`",
            "tests/data/invalid-values.toml:40:9: `funday` is not a day of the week (monday … sunday, or mon … sun)",
            "tests/data/invalid-values.toml:41:8: `open` must be a 24-hour time like `08:00`, not `8am`",
            "tests/data/invalid-values.toml:45:8: `date` must be a local date like 2026-12-25, not `2026-12-25T10:00:00`",
            "tests/data/invalid-values.toml:48:11: `trunks`: `10.0.0.300` is not an IP address or CIDR network (e.g. 192.0.2.0/24, 2001:db8::/32)",
            "tests/data/invalid-values.toml:55:9: `aging`: `later` is not a duration (write `15s`, `500ms`, `3m` or `1m 30s`)",
        ]
    );
}

#[test]
fn duplicate_names() {
    assert_eq!(
        errors("duplicates.toml", ErrorKind::Duplicate),
        [
            "tests/data/duplicates.toml:14:10: number `555-0100` is already declared on line 8",
            "tests/data/duplicates.toml:32:6: agent `1` is already declared on line 26",
            "tests/data/duplicates.toml:41:8: holiday 2026-12-25 is already declared on line 38",
            "tests/data/duplicates.toml:51:10: `+1 312 555 0142` is already in the directory on line 47",
        ]
    );
}

#[test]
fn inline_text_names_the_given_path_and_resolves_prompts_from_base_dir() {
    let text = std::fs::read_to_string("tests/data/valid.toml").unwrap();
    assert!(Dialplan::from_toml(&text, "inline.toml", "tests/data").is_ok());
    let broken = text.replace("America/Chicago", "Mars/Olympus_Mons");
    let errors = Dialplan::from_toml(&broken, "inline.toml", "tests/data").unwrap_err();
    assert_eq!(
        errors.to_string(),
        "inline.toml:4:13: unknown time zone `Mars/Olympus_Mons` (use an IANA name such as `America/Chicago`)"
    );
    // Prompts resolve from base_dir: from elsewhere, they are missing.
    let errors = Dialplan::from_toml(&text, "inline.toml", "tests").unwrap_err();
    assert!(errors.iter().all(|e| e.kind == ErrorKind::BadPrompt));
}
