//! Speech menus in the dialplan (issue 25): `check`'s refusals, and
//! `simulate --say` through the same matcher as the recogniser's output.
//! Needs Debian's `pocketsphinx-en-us` (tests/run installs it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ivr::Dialplan;
use ivr::simulate::{Decision, parse_time, simulate_saying};

const MODEL: &str = "/usr/share/pocketsphinx/model/en-us";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The demo clinic whose main menu takes speech, with `speech` as its
/// phrases and `model` as `[speech] model`.
fn speech_clinic(speech: &str, model: &str) -> String {
    let clinic = std::fs::read_to_string(repo().join("dialplans/clinic.toml")).unwrap();
    let clinic = clinic.replacen(
        "prompt = \"prompts/main-menu.wav\"",
        "prompt = \"prompts/speech-main-menu.wav\"",
        1,
    );
    let keys = format!(
        "speech = {speech}\nspeech_threshold = 0.5\nconfirm = {{ \"2\" = \"prompts/confirm-cardiology.wav\" }}\n\n[menus.main.options]"
    );
    let clinic = clinic.replacen("[menus.main.options]", &keys, 1);
    format!(
        "{clinic}\n[speech]\nmodel = \"{model}\"\nkeys_prompt = \"prompts/speech-use-keys.wav\"\n"
    )
}

const PHRASES: &str = r#"{ "1" = ["front desk", "reception"], "2" = ["cardiology", "heart", "cardiologist"], "3" = ["pediatrics", "my son", "my daughter", "child"], "4" = ["dermatology", "skin", "rash"], "5" = ["orthopedic", "bones", "knee"], "9" = ["urgent care"] }"#;

fn load(text: &str) -> Result<Dialplan, String> {
    Dialplan::from_toml(text, "speech.toml", repo().join("dialplans")).map_err(|e| e.to_string())
}

#[test]
fn a_speech_menu_loads_with_its_grammar() {
    let plan = load(&speech_clinic(PHRASES, MODEL)).unwrap();
    let speech = plan.speech().expect("[speech]");
    assert_eq!(speech.model(), Path::new(MODEL));
    let menu = plan.menu("main").unwrap().speech().expect("speech phrases");
    assert_eq!(menu.threshold(), 0.5);
    assert!(menu.confirm("2").is_some());
    assert!(menu.grammar().jsgf().contains("cardiology"));
    assert_eq!(menu.matcher().choose("heart doctor").unwrap().option, "2");
}

#[test]
fn design_md_s_speech_section_loads_as_written() {
    // DESIGN.md: `model` the acoustic model's folder, `dictionary`,
    // `threshold` and `max_concurrent`; no keys prompt.
    let text = speech_clinic(PHRASES, MODEL)
        .replace("speech_threshold = 0.5\n", "")
        .replace(
            &format!("[speech]\nmodel = \"{MODEL}\"\nkeys_prompt = \"prompts/speech-use-keys.wav\"\n"),
            &format!(
                "[speech]\nmodel = \"{MODEL}/en-us\"\ndictionary = \"{MODEL}/cmudict-en-us.dict\"\nthreshold = 0.7\nmax_concurrent = 3\n"
            ),
        );
    assert!(text.contains("max_concurrent = 3"), "{text}");
    let plan = load(&text).unwrap();
    let speech = plan.speech().expect("[speech]");
    assert_eq!(speech.max_concurrent(), Some(3));
    assert!(speech.keys_prompt().is_none());
    assert_eq!(
        speech.files().dictionary,
        Path::new(MODEL).join("cmudict-en-us.dict")
    );
    // The section's threshold for a menu that sets none.
    let menu = plan.menu("main").unwrap().speech().expect("speech phrases");
    assert_eq!(menu.threshold(), 0.7);
    // Out of range, or a dictionary that is not there: refused.
    let errors = load(&text.replace("threshold = 0.7", "threshold = 7")).unwrap_err();
    assert!(
        errors.contains("`threshold` must be from 0 to 1, not 7"),
        "{errors}"
    );
    let errors = load(&text.replace("cmudict-en-us.dict", "nothing.dict")).unwrap_err();
    assert!(errors.contains("no dictionary"), "{errors}");
    let errors = load(&text.replace("max_concurrent = 3", "max_concurrent = 0")).unwrap_err();
    assert!(errors.contains("max_concurrent"), "{errors}");
}

#[test]
fn a_missing_model_is_refused_with_the_reason() {
    let errors = load(&speech_clinic(PHRASES, "/nonexistent/model")).unwrap_err();
    assert!(errors.contains("speech.toml:"), "{errors}");
    assert!(
        errors.contains("no model folder /nonexistent/model"),
        "{errors}"
    );
    assert!(errors.contains("pocketsphinx-en-us"), "{errors}");
}

#[test]
fn a_speech_menu_without_a_speech_section_is_refused() {
    let text = speech_clinic(PHRASES, MODEL);
    let text = &text[..text.find("[speech]").unwrap()];
    let errors = load(text).unwrap_err();
    assert!(
        errors.contains("menu `main` takes speech, but the dialplan has no `[speech]` section"),
        "{errors}"
    );
}

#[test]
fn words_outside_the_dictionary_are_refused() {
    let phrases = r#"{ "5" = ["orthopedics"], "2" = ["heart"] }"#;
    let errors = load(&speech_clinic(phrases, MODEL)).unwrap_err();
    assert!(
        errors.contains(
            "`orthopedics` (in phrase `orthopedics`) is not in the speech model's dictionary"
        ),
        "{errors}"
    );
    // "orthopedic" is in it.
    let phrases = r#"{ "5" = ["orthopedic"], "2" = ["heart"] }"#;
    load(&speech_clinic(phrases, MODEL)).unwrap();
}

#[test]
fn a_phrase_of_two_options_is_flagged() {
    let phrases = r#"{ "2" = ["heart", "cardiology"], "3" = ["Heart!", "child"] }"#;
    let errors = load(&speech_clinic(phrases, MODEL)).unwrap_err();
    assert!(
        errors.contains("phrase `Heart!` belongs to two options, `2` and `3`"),
        "{errors}"
    );
}

#[test]
fn speech_keys_in_a_menu_without_speech_are_refused() {
    let clinic = std::fs::read_to_string(repo().join("dialplans/clinic.toml")).unwrap();
    let text = clinic.replacen(
        "[menus.main.options]",
        "speech_threshold = 0.7\n\n[menus.main.options]",
        1,
    );
    let errors = load(&text).unwrap_err();
    assert!(
        errors.contains("`speech_threshold` needs `speech`"),
        "{errors}"
    );
}

#[test]
fn simulate_says_a_phrase_at_the_first_speech_menu() {
    let plan = Arc::new(load(&speech_clinic(PHRASES, MODEL)).unwrap());
    let at = parse_time(&plan, "2026-07-15T10:00").unwrap();
    let run = |say: &str, digits: &str| {
        simulate_saying(
            Arc::clone(&plan),
            "+15550100",
            "+13125550100",
            at,
            digits,
            Some(say),
        )
        .unwrap()
    };
    let queue = |decision: &Decision| match decision {
        Decision::Queued(decision) => decision.queue.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(queue(&run("heart doctor", "").decision), "cardiology");
    assert_eq!(
        queue(&run("my daughter has a fever", "").decision),
        "pediatrics"
    );
    // Not on the list: the menu falls back to keys, and a key decides.
    let fallback = run("banana bread", "4");
    assert_eq!(queue(&fallback.decision), "dermatology");
    assert!(
        fallback
            .steps
            .iter()
            .any(|s| s.text == "menu main: speech matched no option"),
        "{:#?}",
        fallback.steps
    );
    assert!(
        fallback
            .steps
            .iter()
            .any(|s| s.text.contains("speech-use-keys.wav"))
    );
    // The clinic without speech never says it.
    let plain = Arc::new(Dialplan::load(repo().join("dialplans/clinic.toml")).unwrap());
    let run = simulate_saying(plain, "+15550100", "x", at, "2", Some("heart")).unwrap();
    assert_eq!(run.unsaid.as_deref(), Some("heart"));
    assert_eq!(queue(&run.decision), "cardiology");
}

mod session {
    use super::*;
    use ivr::{Action, Input, PlaybackId, Session, SpeechInput};

    /// Drains the actions; returns them and the last playback id.
    fn drain(session: &mut Session) -> (Vec<Action>, Option<PlaybackId>) {
        let mut actions = Vec::new();
        let mut last = None;
        while let Some(action) = session.poll_action() {
            if let Action::Play { playback, .. } = &action {
                last = Some(*playback);
            }
            actions.push(action);
        }
        (actions, last)
    }

    fn played(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Play { prompt, .. } => Some(prompt.id().to_string()),
                _ => None,
            })
            .collect()
    }

    /// A session at the speech menu, its prompt playing: (session, its playback).
    fn at_the_menu() -> (Session, PlaybackId, jiff::Timestamp) {
        let plan = Arc::new(load(&speech_clinic(PHRASES, MODEL)).unwrap());
        let now = parse_time(&plan, "2026-07-15T10:00").unwrap();
        let mut session = Session::new(plan, "+15550100", "+13125550100", now).unwrap();
        drain(&mut session);
        session.handle_input(now, Input::Answered);
        let (actions, notice) = drain(&mut session);
        assert_eq!(played(&actions), ["prompts/emergency-notice.wav"]);
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Listen { .. })),
            "no listening during the emergency notice: {actions:?}"
        );
        // Voice during the notice changes nothing.
        session.handle_speech(now, SpeechInput::Started);
        assert!(drain(&mut session).0.is_empty());
        session.handle_input(now, Input::PromptFinished(notice.unwrap()));
        let (actions, menu) = drain(&mut session);
        assert_eq!(played(&actions), ["prompts/speech-main-menu.wav"]);
        assert!(actions.iter().any(|a| matches!(a, Action::Listen { .. })));
        (session, menu.unwrap(), now)
    }

    fn queued(actions: &[Action]) -> Option<String> {
        actions.iter().find_map(|a| match a {
            Action::Queue(decision) => Some(decision.queue.to_string()),
            _ => None,
        })
    }

    #[test]
    fn voice_barges_in_and_a_confident_phrase_chooses() {
        let (mut session, _, now) = at_the_menu();
        session.handle_speech(now, SpeechInput::Started);
        let (actions, _) = drain(&mut session);
        assert_eq!(actions, [Action::StopPlayback]);
        session.handle_speech(
            now,
            SpeechInput::Heard {
                text: "heart doctor".into(),
                confidence: 0.9,
            },
        );
        let (actions, _) = drain(&mut session);
        assert!(actions.contains(&Action::StopListening), "{actions:?}");
        assert_eq!(queued(&actions).as_deref(), Some("cardiology"));
    }

    #[test]
    fn below_the_threshold_the_option_is_confirmed_with_1() {
        let (mut session, _, now) = at_the_menu();
        session.handle_speech(
            now,
            SpeechInput::Heard {
                text: "heart".into(),
                confidence: 0.2,
            },
        );
        let (actions, confirm) = drain(&mut session);
        assert_eq!(played(&actions), ["prompts/confirm-cardiology.wav"]);
        session.handle_input(now, Input::PromptFinished(confirm.unwrap()));
        session.handle_input(now, Input::Digit('1'));
        assert_eq!(
            queued(&drain(&mut session).0).as_deref(),
            Some("cardiology")
        );
    }

    #[test]
    fn below_the_threshold_without_a_confirm_prompt_falls_back_to_keys() {
        let (mut session, _, now) = at_the_menu();
        session.handle_speech(
            now,
            SpeechInput::Heard {
                text: "child".into(),
                confidence: 0.2,
            },
        );
        let (actions, keys) = drain(&mut session);
        assert_eq!(played(&actions), ["prompts/speech-use-keys.wav"]);
        assert!(queued(&actions).is_none());
        session.handle_input(now, Input::PromptFinished(keys.unwrap()));
        drain(&mut session);
        // Keys only now: speech is ignored, a key decides.
        session.handle_speech(
            now,
            SpeechInput::Heard {
                text: "heart".into(),
                confidence: 1.0,
            },
        );
        assert!(drain(&mut session).0.is_empty());
        session.handle_input(now, Input::Digit('3'));
        assert_eq!(
            queued(&drain(&mut session).0).as_deref(),
            Some("pediatrics")
        );
    }

    #[test]
    fn no_free_recogniser_falls_back_to_keys_and_says_so() {
        let (mut session, _, now) = at_the_menu();
        session.handle_speech(now, SpeechInput::Started);
        drain(&mut session);
        session.handle_speech(now, SpeechInput::Unavailable);
        let (actions, _) = drain(&mut session);
        assert!(actions.contains(&Action::StopListening));
        assert_eq!(played(&actions), ["prompts/speech-use-keys.wav"]);
    }

    #[test]
    fn a_key_still_works_in_a_speech_menu() {
        let (mut session, _, now) = at_the_menu();
        session.handle_input(now, Input::Digit('5'));
        let (actions, _) = drain(&mut session);
        assert!(actions.contains(&Action::StopListening), "{actions:?}");
        assert_eq!(queued(&actions).as_deref(), Some("orthopedics"));
    }
}
