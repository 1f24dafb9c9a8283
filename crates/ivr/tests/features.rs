//! `[features]`: the agent feature codes, their defaults, prompts and
//! errors, on variations of `tests/data/valid.toml`.

use ivr::{Dialplan, ErrorKind, FeatureCode};

fn valid() -> String {
    std::fs::read_to_string("tests/data/valid.toml").expect("the valid fixture")
}

fn load(extra: &str) -> Result<Dialplan, Vec<String>> {
    let text = format!("{}\n{extra}", valid());
    Dialplan::from_toml(&text, "features.toml", "tests/data").map_err(|errors| errors.to_lines())
}

fn line_of(extra: &str, needle: &str) -> usize {
    let text = format!("{}\n{extra}", valid());
    text.lines()
        .position(|line| line.contains(needle))
        .expect("the needle is in the text")
        + 1
}

#[test]
fn without_a_section_the_demo_codes_apply() {
    let plan = load("").expect("valid");
    let features = plan.features();
    assert_eq!(
        FeatureCode::ALL.map(|f| features.code(f)),
        ["*41", "*42", "*43"]
    );
    assert_eq!(features.lookup("*41"), Some(FeatureCode::Away));
    assert_eq!(features.lookup("*42"), Some(FeatureCode::Available));
    assert_eq!(features.lookup("*43"), Some(FeatureCode::Waiting));
    assert_eq!(features.lookup("+15550100"), None);
    assert!(
        FeatureCode::ALL
            .iter()
            .all(|f| features.prompt(*f).is_none())
    );
}

#[test]
fn codes_and_prompts_are_configurable() {
    let plan = load(
        "[features]\naway = \"*7 1\"\nwaiting = \"#9\"\naway_prompt = \"prompts/message.wav\"\n\
         waiting_prompt = \"prompts/menu.wav\"\n",
    )
    .expect("valid");
    let features = plan.features();
    // Separators are dropped as in dialed numbers; `available` keeps its default.
    assert_eq!(
        FeatureCode::ALL.map(|f| features.code(f)),
        ["*71", "*42", "#9"]
    );
    assert_eq!(features.lookup("*7-1"), Some(FeatureCode::Away));
    assert_eq!(features.lookup("*41"), None);
    assert_eq!(
        features
            .prompt(FeatureCode::Away)
            .map(|p| p.id().as_str().to_string()),
        Some("prompts/message.wav".to_string())
    );
    assert!(features.prompt(FeatureCode::Available).is_none());
    assert!(features.prompt(FeatureCode::Waiting).is_some());
}

#[test]
fn bad_codes_clashes_unknown_keys_and_prompts_are_errors() {
    let extra = "[features]\naway = \"*4a\"\navailable = \"*43\"\n\
                 available_prompt = \"prompts/stereo.wav\"\nbusy = \"*44\"\n";
    let errors = load(extra).expect_err("invalid");
    let at = |needle: &str, column: usize, message: &str| {
        format!(
            "features.toml:{}:{column}: {message}",
            line_of(extra, needle)
        )
    };
    assert_eq!(
        errors,
        [
            at(
                "away = ",
                8,
                "`away`: `*4a` is not a feature code (1 to 16 of `0`-`9`, `*`, `#`, e.g. `*41`)"
            ),
            // `waiting` keeps its default, `*43`.
            at(
                "available = ",
                13,
                "`available`: `*43` is already the `waiting` code"
            ),
            at(
                "available_prompt",
                20,
                "prompt `prompts/stereo.wav` is 8000 Hz stereo 16-bit PCM; prompts must be 8000 Hz mono 16-bit PCM"
            ),
            at(
                "busy = ",
                1,
                "unknown key `busy`, expected one of `away`, `available`, `waiting`, `away_prompt`, `available_prompt`, `waiting_prompt`"
            ),
        ]
    );
}

#[test]
fn a_code_may_not_be_a_dialed_number() {
    let extra = "[features]\nwaiting = \"555-0199\"\n\n[[numbers]]\nnumber = \"5550199\"\n\
                 source = \"test\"\nannounce = [\"prompts/notice.wav\"]\nthen = { menu = \"main\" }\n";
    let errors = load(extra).expect_err("invalid");
    assert_eq!(
        errors,
        [format!(
            "features.toml:{}:11: `waiting`: `5550199` is also a dialed number of `[[numbers]]`",
            line_of(extra, "waiting = ")
        )]
    );
}

#[test]
fn an_unknown_section_lists_features_among_the_expected_keys() {
    let errors = Dialplan::from_toml(
        &format!("{}\n[feature]\naway = \"*41\"\n", valid()),
        "features.toml",
        "tests/data",
    )
    .expect_err("invalid");
    assert!(errors.iter().all(|e| e.kind == ErrorKind::UnknownKey));
    assert!(
        errors.to_lines()[0].contains("`trust`, `limits`, `announcements`, `features`"),
        "{:?}",
        errors.to_lines()
    );
}
