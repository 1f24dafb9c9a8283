//! The IVR engine on the demo clinic, walked with a virtual clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Call, branches, chicago, clinic, open_hours};
use ivr::{Action, Input, Priority, Session, SessionError};

const CALLER: &str = "+13125550100";

fn main_line() -> Call {
    Call::start(clinic(), "+15550100", CALLER, open_hours())
}

#[test]
fn answers_at_once_and_plays_the_emergency_notice_first() {
    let call = main_line();
    assert_eq!(call.actions[0], Action::Answer);
    assert!(matches!(&call.actions[1], Action::Play { prompt, .. }
        if prompt.id().as_str() == "prompts/emergency-notice.wav"));
    assert_eq!(call.played, ["emergency-notice.wav"]);
}

#[test]
fn every_digit_of_the_main_menu() {
    let cases = [
        ('1', "front-desk", Priority::Routine),
        ('0', "front-desk", Priority::Routine),
        ('2', "cardiology", Priority::Routine),
        ('3', "pediatrics", Priority::Routine),
        ('4', "dermatology", Priority::Routine),
        ('5', "orthopedics", Priority::Routine),
        ('9', "urgent-care", Priority::Urgent),
    ];
    for (digit, queue, priority) in cases {
        let mut call = main_line();
        call.until_collecting().press(&digit.to_string());
        let decision = call.queue();
        assert_eq!(decision.queue.as_str(), queue, "digit {digit}");
        assert_eq!(decision.priority, priority, "digit {digit}");
        assert_eq!(decision.context.source.as_str(), "main-line");
        assert_eq!(decision.context.dialed, "+15550100");
        assert_eq!(decision.context.caller, CALLER);
        assert!(!decision.context.after_hours);
        assert_eq!(call.played, ["emergency-notice.wav", "main-menu.wav"]);
    }
}

#[test]
fn the_menu_decides_on_the_digit_without_waiting_for_a_timeout() {
    let mut call = main_line();
    call.until_collecting();
    let collecting_at = call.now;
    call.press("3");
    assert_eq!(call.queue().queue.as_str(), "pediatrics");
    assert_eq!(call.now, collecting_at);
}

#[test]
fn an_invalid_digit_replays_the_menu_once_then_a_valid_one_routes() {
    let mut call = main_line();
    call.until_collecting().press("7");
    call.until_collecting().press("4");
    assert_eq!(call.queue().queue.as_str(), "dermatology");
    assert_eq!(
        call.played,
        [
            "emergency-notice.wav",
            "main-menu.wav",
            "invalid-choice.wav",
            "main-menu.wav"
        ]
    );
}

#[test]
fn an_invalid_digit_twice_goes_to_the_front_desk() {
    let mut call = main_line();
    call.until_collecting().press("7");
    call.until_collecting().press("8");
    let decision = call.queue();
    assert_eq!(decision.queue.as_str(), "front-desk");
    assert_eq!(decision.priority, Priority::Routine);
    // The menu was played twice, not three times.
    assert_eq!(
        call.played.iter().filter(|p| *p == "main-menu.wav").count(),
        2
    );
    let steps = call.steps();
    assert!(steps.contains(&"menu main: `8` is not an option (try 2 of 2)".to_string()));
    assert!(steps.contains(&"menu main: out of tries; on_invalid → queue front-desk".to_string()));
}

#[test]
fn no_input_replays_once_then_goes_to_the_front_desk() {
    let mut call = main_line();
    let start = call.now;
    let decision = call.queue();
    assert_eq!(decision.queue.as_str(), "front-desk");
    assert_eq!(
        call.played,
        ["emergency-notice.wav", "main-menu.wav", "main-menu.wav"]
    );
    // Notice + menu + 5 s timeout, twice over for the menu.
    let plan = clinic();
    let notice = plan.clinic().emergency_notice().duration();
    let menu = plan.menu("main").unwrap().prompt().duration();
    let expected = notice + (menu + Duration::from_secs(5)) * 2;
    assert_eq!(call.now.duration_since(start).unsigned_abs(), expected);
    assert!(
        call.steps()
            .contains(&"menu main: out of tries; on_no_input → queue front-desk".to_string())
    );
}

#[test]
fn no_input_once_then_a_digit_routes() {
    let mut call = main_line();
    call.until_collecting();
    call.step(); // the 5 s timeout: replay
    call.until_collecting().press("2");
    assert_eq!(call.queue().queue.as_str(), "cardiology");
}

#[test]
fn invalid_then_no_input_counts_as_two_failures() {
    let mut call = main_line();
    call.until_collecting().press("*");
    let decision = call.queue();
    assert_eq!(decision.queue.as_str(), "front-desk");
    assert!(
        call.steps()
            .contains(&"menu main: out of tries; on_no_input → queue front-desk".to_string())
    );
}

#[test]
fn barge_in_during_the_emergency_notice_acts_on_the_digit_at_once() {
    let mut call = main_line();
    call.after(1.0).press("2");
    assert_eq!(call.actions[2], Action::StopPlayback);
    let decision = call.queue();
    assert_eq!(decision.queue.as_str(), "cardiology");
    // The menu prompt never played: the digit was acted on at once.
    assert_eq!(call.played, ["emergency-notice.wav"]);
}

#[test]
fn barge_in_during_the_menu_prompt() {
    let mut call = main_line();
    call.step(); // notice ends, menu starts
    call.after(2.0).press("9");
    assert!(call.actions.contains(&Action::StopPlayback));
    let decision = call.queue();
    assert_eq!(decision.queue.as_str(), "urgent-care");
    assert_eq!(decision.priority, Priority::Urgent);
}

#[test]
fn barge_in_during_the_invalid_choice_prompt() {
    let mut call = main_line();
    call.until_collecting().press("6");
    assert_eq!(call.played.last().unwrap(), "invalid-choice.wav");
    call.after(0.5).press("5");
    assert_eq!(call.queue().queue.as_str(), "orthopedics");
}

#[test]
fn an_invalid_barge_in_during_the_notice_counts_as_a_try() {
    let mut call = main_line();
    call.after(0.5).press("8");
    call.until_collecting().press("3");
    assert_eq!(call.queue().queue.as_str(), "pediatrics");
    assert_eq!(
        call.played,
        [
            "emergency-notice.wav",
            "invalid-choice.wav",
            "main-menu.wav"
        ]
    );
}

#[test]
fn the_urgent_care_number_plays_the_notice_then_queues_urgent() {
    let mut call = Call::start(clinic(), "+15550111", CALLER, open_hours());
    let decision = call.queue();
    assert_eq!(call.played, ["emergency-notice.wav"]);
    assert_eq!(decision.queue.as_str(), "urgent-care");
    assert_eq!(decision.priority, Priority::Urgent);
    assert_eq!(decision.context.source.as_str(), "urgent-care-campaign");
}

#[test]
fn a_digit_during_the_urgent_care_notice_queues_at_once() {
    let mut call = Call::start(clinic(), "+15550111", CALLER, open_hours());
    call.after(0.2).press("5");
    let before = call.now;
    let decision = call.queue();
    assert_eq!(decision.queue.as_str(), "urgent-care");
    assert_eq!(call.now, before);
}

#[test]
fn aliases_reach_the_main_line() {
    for alias in ["5550100", "clinic", "555-0100"] {
        let mut call = Call::start(clinic(), alias, CALLER, open_hours());
        call.until_collecting().press("1");
        let decision = call.queue();
        assert_eq!(decision.context.source.as_str(), "main-line");
        assert_eq!(decision.context.dialed, alias);
        assert_eq!(decision.context.number, "+15550100");
    }
}

#[test]
fn an_unknown_number_is_a_404() {
    let error = Session::new(clinic(), "+15559999", CALLER, open_hours()).unwrap_err();
    assert_eq!(error, SessionError::UnknownNumber("+15559999".to_string()));
    assert_eq!(error.sip_status(), 404);
}

fn after_hours_call(dialed: &str, local: &str) -> Call {
    Call::start(clinic(), dialed, CALLER, chicago(local))
}

fn assert_after_hours(call: &mut Call, priority: Priority) {
    let decision = call.queue();
    assert_eq!(decision.queue.as_str(), "nurse-line");
    assert_eq!(decision.priority, priority);
    assert!(decision.context.after_hours);
    assert_eq!(call.played, ["emergency-notice.wav", "after-hours.wav"]);
}

#[test]
fn weekday_evenings_take_the_after_hours_path() {
    assert_after_hours(
        &mut after_hours_call("+15550100", "2026-07-15T18:00"),
        Priority::Routine,
    );
    assert_after_hours(
        &mut after_hours_call("+15550100", "2026-07-15T07:59"),
        Priority::Routine,
    );
    // The urgent-care number after hours: nurse line, still urgent.
    assert_after_hours(
        &mut after_hours_call("+15550111", "2026-07-15T23:00"),
        Priority::Urgent,
    );
}

#[test]
fn opening_and_closing_minutes_are_in_hours() {
    for local in ["2026-07-15T08:00", "2026-07-15T17:59"] {
        let mut call = after_hours_call("+15550100", local);
        call.until_collecting().press("1");
        assert!(!call.queue().context.after_hours, "{local}");
    }
}

#[test]
fn saturday_hours_and_sunday() {
    // Saturday 2026-07-18: 09:00-13:00.
    for (local, open) in [
        ("2026-07-18T08:59", false),
        ("2026-07-18T09:00", true),
        ("2026-07-18T12:59", true),
        ("2026-07-18T13:00", false),
        ("2026-07-19T10:00", false), // Sunday
    ] {
        let plan = clinic();
        assert_eq!(plan.open_state(chicago(local)).is_open(), open, "{local}");
    }
    let mut call = after_hours_call("+15550100", "2026-07-18T10:30");
    call.until_collecting().press("3");
    assert_eq!(call.queue().queue.as_str(), "pediatrics");
    assert_after_hours(
        &mut after_hours_call("+15550100", "2026-07-18T14:00"),
        Priority::Routine,
    );
}

#[test]
fn a_plan_open_all_hours_is_open_at_night_on_sundays_and_holidays() {
    // `frontdesk demo --open`: the daytime paths at any hour.
    let plan = ivr::Dialplan::clone(&clinic()).open_all_hours();
    for local in ["2026-07-19T03:00", "2026-07-15T23:30", "2026-12-25T10:00"] {
        assert!(!clinic().open_state(chicago(local)).is_open(), "{local}");
        assert!(plan.open_state(chicago(local)).is_open(), "{local}");
    }
    assert_eq!(
        plan.clinic().time_zone_name(),
        clinic().clinic().time_zone_name()
    );
}

#[test]
fn holidays_are_closed_all_day() {
    // Friday 2026-12-25 and Friday 2027-01-01 would otherwise be open at 10:00.
    for local in ["2026-12-25T10:00", "2026-12-25T02:00", "2027-01-01T10:00"] {
        let mut call = after_hours_call("+15550100", local);
        assert_after_hours(&mut call, Priority::Routine);
        assert!(
            call.steps().iter().any(|s| s.contains("holiday")),
            "{local}"
        );
    }
    // The day after Christmas is a Saturday: Saturday hours.
    assert!(clinic().open_state(chicago("2026-12-26T10:00")).is_open());
}

#[test]
fn hours_follow_daylight_saving_changes() {
    let plan = clinic();
    let at = |utc: &str| utc.parse::<jiff::Timestamp>().unwrap();
    // DST starts Sunday 2026-03-08: Chicago goes from UTC-6 to UTC-5.
    // 13:30Z is 07:30 CST on Friday 03-06 (closed), 08:30 CDT on Monday 03-09 (open).
    assert!(!plan.open_state(at("2026-03-06T13:30:00Z")).is_open());
    assert!(plan.open_state(at("2026-03-09T13:30:00Z")).is_open());
    // 23:30Z is 17:30 CST on Friday 03-06 (open), 18:30 CDT on Monday 03-09 (closed).
    assert!(plan.open_state(at("2026-03-06T23:30:00Z")).is_open());
    assert!(!plan.open_state(at("2026-03-09T23:30:00Z")).is_open());
    // DST ends Sunday 2026-11-01: back to UTC-6.
    // 13:30Z is 08:30 CDT on Friday 10-30 (open), 07:30 CST on Monday 11-02 (closed).
    assert!(plan.open_state(at("2026-10-30T13:30:00Z")).is_open());
    assert!(!plan.open_state(at("2026-11-02T13:30:00Z")).is_open());
    // Local times keep their meaning across the change.
    let mut call = Call::start(
        Arc::clone(&plan),
        "+15550100",
        CALLER,
        chicago("2026-03-09T08:00"),
    );
    call.until_collecting().press("2");
    assert_eq!(call.queue().queue.as_str(), "cardiology");
    let mut call = Call::start(
        Arc::clone(&plan),
        "+15550100",
        CALLER,
        chicago("2026-11-02T07:59"),
    );
    assert_after_hours(&mut call, Priority::Routine);
}

#[test]
fn digits_during_the_after_hours_message_skip_to_the_nurse_line() {
    let mut call = after_hours_call("+15550100", "2026-07-15T20:00");
    call.step(); // the notice ends, the after-hours message starts
    call.after(1.0).press("1");
    let decision = call.queue();
    assert_eq!(decision.queue.as_str(), "nurse-line");
    assert!(call.actions.contains(&Action::StopPlayback));
}

#[test]
fn a_known_patient_from_the_directory_is_carried_into_the_decision() {
    let mut call = Call::start(branches(), "+15550200", "+1 312 555 0142", open_hours());
    call.until_collecting().press("3");
    let decision = call.queue();
    let patient = decision.context.known_patient.expect("a known patient");
    assert_eq!(patient.department.unwrap().as_str(), "pediatrics");
    assert_eq!(patient.coordinator.unwrap().as_str(), "2003");
    assert_eq!(patient.language.unwrap().as_str(), "es");
    // The patient's branch wins over the number's.
    assert_eq!(decision.context.branch.unwrap().as_str(), "south");
    assert_eq!(
        call.steps()[1],
        "known patient: usual department pediatrics, coordinator 2003, language es, branch south"
    );
}

#[test]
fn an_unknown_caller_gets_the_number_branch() {
    let mut call = Call::start(branches(), "+15550200", CALLER, open_hours());
    call.until_collecting().press("2");
    let decision = call.queue();
    assert!(decision.context.known_patient.is_none());
    assert_eq!(decision.context.branch.unwrap().as_str(), "north");
}

#[test]
fn a_ring_delay_answers_later() {
    let plan = branches();
    let start = open_hours();
    let mut session = Session::new(plan, "+15550222", CALLER, start).unwrap();
    assert_eq!(session.poll_action(), None);
    let deadline = session.poll_timeout().unwrap();
    assert_eq!(
        deadline.duration_since(start).unsigned_abs(),
        Duration::from_secs(2)
    );
    session.handle_timeout(start.checked_add(Duration::from_secs(1)).unwrap());
    assert_eq!(session.poll_action(), None, "too early");
    session.handle_timeout(deadline);
    assert_eq!(session.poll_action(), Some(Action::Answer));
    assert_eq!(session.poll_timeout(), None, "waits for Answered");
    session.handle_input(deadline, Input::Answered);
    assert!(matches!(session.poll_action(), Some(Action::Play { .. })));
}

#[test]
fn a_lost_prompt_finished_does_not_strand_the_caller() {
    let plan = clinic();
    let start = open_hours();
    let mut session = Session::new(Arc::clone(&plan), "+15550111", CALLER, start).unwrap();
    assert_eq!(session.poll_action(), Some(Action::Answer));
    session.handle_input(start, Input::Answered);
    assert!(matches!(session.poll_action(), Some(Action::Play { .. })));
    // No PromptFinished ever comes: the watchdog carries on.
    let notice = plan.clinic().emergency_notice().duration();
    let deadline = session.poll_timeout().unwrap();
    assert_eq!(
        deadline.duration_since(start).unsigned_abs(),
        notice + ivr::PROMPT_GRACE
    );
    session.handle_timeout(deadline);
    assert!(matches!(session.poll_action(), Some(Action::Queue(_))));
    assert!(session.is_finished());
}

#[test]
fn a_late_prompt_finished_for_a_stopped_playback_is_ignored() {
    let start = open_hours();
    let mut session = Session::new(clinic(), "+15550100", CALLER, start).unwrap();
    session.poll_action();
    session.handle_input(start, Input::Answered);
    let Some(Action::Play {
        playback: notice, ..
    }) = session.poll_action()
    else {
        panic!("expected the notice");
    };
    // An invalid digit during the notice: stop, then "invalid choice".
    session.handle_input(start, Input::Digit('7'));
    assert_eq!(session.poll_action(), Some(Action::StopPlayback));
    let Some(Action::Play {
        playback: invalid,
        prompt,
    }) = session.poll_action()
    else {
        panic!("expected the invalid-choice prompt");
    };
    assert_eq!(prompt.id().as_str(), "prompts/invalid-choice.wav");
    // The driver reports the stopped notice as finished, late.
    session.handle_input(start, Input::PromptFinished(notice));
    assert_eq!(session.poll_action(), None);
    session.handle_input(start, Input::PromptFinished(invalid));
    let Some(Action::Play { prompt, .. }) = session.poll_action() else {
        panic!("expected the menu");
    };
    assert_eq!(prompt.id().as_str(), "prompts/main-menu.wav");
}

#[test]
fn non_dtmf_input_and_digits_before_answer_are_ignored() {
    let plan = branches();
    let start = open_hours();
    let mut session = Session::new(plan, "+15550222", CALLER, start).unwrap();
    session.handle_input(start, Input::Digit('5'));
    session.handle_input(start, Input::Digit('x'));
    assert_eq!(session.poll_action(), None);
    assert!(!session.is_finished());
}

#[test]
fn the_exempt_test_line_plays_its_message_and_hangs_up() {
    let mut call = Call::start(branches(), "+15550999", CALLER, open_hours());
    let last = call.finish();
    assert_eq!(
        last,
        Action::HangUp {
            after_message: Some("prompts/please-hold.wav".into())
        }
    );
    assert_eq!(call.played, ["please-hold.wav"]);
}

#[test]
fn a_closed_lunch_hour_is_after_hours() {
    let plan = branches();
    assert!(plan.open_state(chicago("2026-07-15T11:59")).is_open());
    assert!(!plan.open_state(chicago("2026-07-15T12:30")).is_open());
    assert!(plan.open_state(chicago("2026-07-15T13:00")).is_open());
}

/// A multi-digit menu, inline, with the test prompts of `tests/data`.
fn extensions() -> Arc<ivr::Dialplan> {
    let text = r#"
[clinic]
name = "Test Clinic"
time_zone = "America/Chicago"
emergency_notice = "prompts/notice.wav"

[[numbers]]
number = "100"
source = "test"
announce = ["prompts/notice.wav"]
then = { menu = "ext" }

[menus.ext]
prompt = "prompts/menu.wav"
inter_digit_timeout = "2s"
retries = 0
on_no_input = { queue = "desk" }
on_invalid = { message = "prompts/message.wav" }
options = { "1" = { queue = "desk" }, "12" = { queue = "lab" }, "345" = { queue = "lab", priority = "urgent" } }

[queues.desk]
skills = ["desk"]
strategy = "ring-all"
ring_timeout = "15s"
wrap_up = "2s"

[queues.lab]
skills = ["desk"]
strategy = "ring-all"
ring_timeout = "15s"
wrap_up = "2s"

[[agents]]
id = "1"
name = "Ann"
password = "pw"
skills = ["desk"]
"#;
    Arc::new(
        ivr::Dialplan::from_toml(text, "extensions.toml", "tests/data")
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

fn extension_call(digits: &str) -> Call {
    let mut call = Call::start(extensions(), "100", CALLER, open_hours());
    call.until_collecting().press(digits);
    call
}

#[test]
fn multi_digit_an_unambiguous_entry_is_decided_at_once() {
    let mut call = extension_call("12");
    let at = call.now;
    assert_eq!(call.queue().queue.as_str(), "lab");
    assert_eq!(call.now, at);
    let mut call = extension_call("345");
    let decision = call.queue();
    assert_eq!(decision.queue.as_str(), "lab");
    assert_eq!(decision.priority, Priority::Urgent);
}

#[test]
fn multi_digit_a_prefix_waits_for_the_inter_digit_timeout() {
    let mut call = extension_call("1");
    let at = call.now;
    assert_eq!(call.queue().queue.as_str(), "desk");
    assert_eq!(
        call.now.duration_since(at).unsigned_abs(),
        Duration::from_secs(2)
    );
}

#[test]
fn multi_digit_hash_ends_the_entry() {
    let mut call = extension_call("1#");
    let at = call.now;
    assert_eq!(call.queue().queue.as_str(), "desk");
    assert_eq!(call.now, at);
}

#[test]
fn multi_digit_invalid_entries_end_in_the_message() {
    // No option starts with 9: invalid at once; retries = 0 → on_invalid.
    let mut call = extension_call("9");
    assert_eq!(
        call.finish(),
        Action::HangUp {
            after_message: Some("prompts/message.wav".into())
        }
    );
    // 34 is a prefix of 345 only: after the inter-digit timeout it is invalid.
    let mut call = extension_call("34");
    assert!(matches!(call.finish(), Action::HangUp { .. }));
    assert!(
        call.steps()
            .contains(&"menu ext: `34` is not an option (try 1 of 1)".to_string())
    );
}

#[test]
fn plans_and_sessions_can_cross_tasks() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ivr::Dialplan>();
    send_sync::<Session>();
    send_sync::<Action>();
    send_sync::<ivr::Diagnostics>();
}
