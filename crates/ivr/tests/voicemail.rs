//! `[voicemail]` and `{ voicemail = "<queue>" }` targets: what `check`
//! accepts and refuses, and where the engine sends a caller.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Call, open_hours};
use ivr::{Action, Dialplan, ErrorKind, Overflow, Target};

const PLAN: &str = r#"
[clinic]
name = "Test Clinic"
time_zone = "America/Chicago"
emergency_notice = "prompts/notice.wav"

[[numbers]]
number = "+15550100"
source = "main-line"
announce = ["prompts/notice.wav"]
then = { menu = "main" }

# A number that only takes messages: its path ends in a voicemail.
[[numbers]]
number = "+15550101"
source = "messages"
announce = ["prompts/notice.wav"]
then = { voicemail = "desk" }

[menus.main]
prompt = "prompts/menu.wav"
on_no_input = { voicemail = "desk" }
on_invalid = { voicemail = "desk" }
options = { "1" = { queue = "desk" }, "2" = { voicemail = "desk" } }

[queues.desk]
skills = ["desk"]
strategy = "ring-all"
ring_timeout = "15s"
wrap_up = "2s"
max_wait = "120s"
on_max_wait = { voicemail = "desk" }

[voicemail]
greeting = "prompts/message.wav"
beep = "prompts/menu.wav"
max_length = "90s"
retention = "7d"
silence_level = 400
silence_after = "4s"

[[agents]]
id = "1"
name = "Ann"
password = "pw"
skills = ["desk"]
"#;

fn load(text: &str) -> Result<Dialplan, ivr::Diagnostics> {
    Dialplan::from_toml(text, "inline.toml", "tests/data")
}

fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("should not pass check"),
        Err(errors) => errors.to_lines(),
    }
}

#[test]
fn a_voicemail_target_is_a_proper_end_of_a_path() {
    // Menu `main` has no way out but voicemail and a queue; number
    // +15550101 goes straight to voicemail: neither ends in silence.
    let plan = load(PLAN).expect("valid");
    let voicemail = plan.voicemail().expect("[voicemail]");
    assert_eq!(voicemail.greeting().id().as_str(), "prompts/message.wav");
    assert_eq!(voicemail.beep().id().as_str(), "prompts/menu.wav");
    assert_eq!(voicemail.max_length(), Duration::from_secs(90));
    assert_eq!(voicemail.retention(), Duration::from_secs(7 * 24 * 3600));
    assert_eq!(voicemail.silence_level(), 400);
    assert_eq!(voicemail.silence_after(), Duration::from_secs(4));
    let menu = plan.menu("main").expect("menu");
    assert_eq!(menu.on_no_input(), &Target::Voicemail("desk".into()));
    assert_eq!(
        plan.queue("desk").and_then(|q| q.on_max_wait().cloned()),
        Some(Overflow::Voicemail {
            queue: "desk".into()
        })
    );
}

#[test]
fn defaults_fill_what_the_section_leaves_out() {
    let text = PLAN.replace(
        "beep = \"prompts/menu.wav\"\nmax_length = \"90s\"\nretention = \"7d\"\nsilence_level = 400\nsilence_after = \"4s\"\n",
        "",
    );
    // The default beep is the demo's file, not in the fixtures' folder.
    let text = text.replace(
        "greeting = \"prompts/message.wav\"",
        "greeting = \"prompts/message.wav\"\nbeep = \"prompts/notice.wav\"",
    );
    let plan = load(&text).expect("valid");
    let voicemail = plan.voicemail().expect("[voicemail]");
    assert_eq!(voicemail.max_length(), ivr::Voicemail::MAX_LENGTH);
    assert_eq!(voicemail.retention(), ivr::Voicemail::RETENTION);
    assert_eq!(voicemail.silence_level(), ivr::Voicemail::SILENCE_LEVEL);
    assert_eq!(voicemail.silence_after(), ivr::Voicemail::SILENCE_AFTER);
}

#[test]
fn a_voicemail_target_needs_the_section_and_a_queue() {
    let start = PLAN.find("[voicemail]").unwrap();
    let end = PLAN.find("[[agents]]").unwrap();
    let without = format!("{}{}", &PLAN[..start], &PLAN[end..]);
    let lines = errors(&without);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert!(
        lines[0].ends_with(
            "takes a voicemail, but the dialplan has no `[voicemail]` section (its `greeting` at least)"
        ),
        "{lines:#?}"
    );
    let unknown = PLAN.replace(
        "\"2\" = { voicemail = \"desk\" }",
        "\"2\" = { voicemail = \"nobody\" }",
    );
    let lines = errors(&unknown);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("`nobody`"), "{lines:#?}");
    let zero = PLAN.replace("max_length = \"90s\"", "max_length = \"0s\"");
    let errors = load(&zero).unwrap_err();
    assert_eq!(
        errors.iter().next().map(|e| e.kind),
        Some(ErrorKind::InvalidValue)
    );
    assert!(
        errors
            .to_string()
            .contains("`max_length` must be longer than zero")
    );
}

#[test]
fn a_menu_key_sends_the_caller_to_voicemail() {
    let plan = Arc::new(load(PLAN).expect("valid"));
    let mut call = Call::start(plan.clone(), "+15550100", "+15551234567", open_hours());
    call.until_collecting().press("2");
    match call.finish() {
        Action::Voicemail(decision) => {
            assert_eq!(decision.queue.as_str(), "desk");
            assert_eq!(decision.context.caller, "+15551234567");
        }
        other => panic!("{other:?}"),
    }
    let mut call = Call::start(plan, "+15550101", "+15551234567", open_hours());
    match call.finish() {
        Action::Voicemail(decision) => assert_eq!(decision.queue.as_str(), "desk"),
        other => panic!("{other:?}"),
    }
}
