//! Leads in the dialplan: the demo clinic's routes (intent, emergency,
//! branch, fallback), and `check`'s lints of `[[intents]]`, `[sources]`,
//! `[branches]`, `[trunks]`, `[clinic] country` and `lead_capacity`, each
//! with a passing and a failing case at its exact position.

mod common;

use ivr::leads::{LeadBranch, PhoneNumber};
use ivr::{Dialplan, ErrorKind, Priority};

/// The smallest valid plan (tests/data/valid.toml) with a `front-desk`
/// queue and two more, then `extra`.
fn plan_with(extra: &str) -> Result<Dialplan, Vec<(ErrorKind, String)>> {
    let base = std::fs::read_to_string("tests/data/valid.toml").expect("valid.toml");
    let base = base.replace("[queues.desk]", "[queues.front-desk]\nskills = [\"desk\"]\nstrategy = \"ring-all\"\nring_timeout = \"15s\"\nwrap_up = \"2s\"\n\n[queues.ortho]\nskills = [\"desk\"]\nstrategy = \"ring-all\"\nring_timeout = \"15s\"\nwrap_up = \"2s\"\n\n[queues.er]\nskills = [\"desk\"]\nstrategy = \"ring-all\"\nring_timeout = \"15s\"\nwrap_up = \"2s\"\n\n[queues.desk]");
    let text = format!("{base}\n{extra}");
    Dialplan::from_toml(&text, "plan.toml", "tests/data")
        .map_err(|errors| errors.iter().map(|e| (e.kind, e.to_string())).collect())
}

/// The line of `extra`'s text that `needle` is on, in the whole plan.
fn line_of(extra: &str, needle: &str) -> usize {
    let whole = std::fs::read_to_string("tests/data/valid.toml").unwrap();
    // The queues plan_with() adds are 18 lines; `format!` adds a blank one.
    let base_lines = whole.lines().count() + 18 + 1;
    base_lines
        + extra
            .lines()
            .position(|l| l.contains(needle))
            .expect("needle")
        + 1
}

fn errors(extra: &str) -> Vec<(ErrorKind, String)> {
    match plan_with(extra) {
        Ok(_) => panic!("should not pass check:\n{extra}"),
        Err(errors) => errors,
    }
}

#[test]
fn the_demo_clinic_routes_leads() {
    let plan = common::clinic();
    let website = plan.source("website").expect("[sources.website]");
    assert_eq!(website.respond_within().as_secs(), 300);
    assert_eq!(website.accept_within().as_secs(), 120);
    assert_eq!(
        plan.clinic().country().map(|c| c.to_string()),
        Some("US".into())
    );

    let knee = plan.route_lead(
        Some(website),
        "my knee hurts since Sunday",
        Some("60605"),
        None,
    );
    assert_eq!(knee.queue.as_str(), "orthopedics");
    assert_eq!(
        knee.intent.as_ref().map(|m| m.phrase.as_str()),
        Some("knee")
    );
    assert_eq!(
        knee.branch.as_ref().map(|b| b.branch().as_str()),
        Some("south")
    );
    assert!(!knee.emergency);
    assert_eq!(knee.priority, Priority::Routine);

    let chest = plan.route_lead(Some(website), "chest pain since this morning", None, None);
    assert_eq!(chest.queue.as_str(), "urgent-care");
    assert!(chest.emergency);
    assert_eq!(chest.priority, Priority::Urgent);
    assert_eq!(chest.branch, None);

    let nothing = plan.route_lead(Some(website), "Can I book a check-up?", Some("60614"), None);
    assert_eq!(nothing.queue.as_str(), "front-desk");
    assert_eq!(nothing.intent, None);
    assert_eq!(
        nothing.branch.as_ref().map(|b| b.branch().as_str()),
        Some("north")
    );

    assert_eq!(
        plan.route_lead(None, "I feel skinny", None, None)
            .queue
            .as_str(),
        "front-desk"
    );
    let trunk = plan.trunk("carrier").expect("[trunks.carrier]");
    assert_eq!(trunk.uri().port, Some(5062));
    assert_eq!(
        trunk.ring_timeout(),
        ivr::leads::Trunk::DEFAULT_RING_TIMEOUT
    );
    assert!(trunk.permits(&PhoneNumber::parse("+13125550199", None).unwrap()));
    assert!(!trunk.permits(&PhoneNumber::parse("+19005550199", None).unwrap()));
    assert!(plan.trust().is_trusted("127.0.0.1".parse().unwrap()));
    assert!(plan.agents().iter().all(|a| a.lead_capacity() == 2));
}

#[test]
fn a_known_patients_branch_when_the_postal_code_says_nothing() {
    let plan = plan_with(
        "[branches.south]\npostal_prefixes = [\"6060\"]\n\n[[directory]]\nnumber = \"+13125550199\"\ndepartment = \"desk\"\nbranch = \"east\"\n",
    )
    .expect("valid");
    let phone = PhoneNumber::parse("+13125550199", None).unwrap();
    let route = plan.route_lead(None, "hello", Some("99999"), Some(&phone));
    assert_eq!(route.branch, Some(LeadBranch::Directory("east".into())));
    let route = plan.route_lead(None, "hello", Some("60601"), Some(&phone));
    assert_eq!(
        route.branch.map(|b| b.branch().to_string()),
        Some("south".into())
    );
}

const RULES_OK: &str = r#"
[[intents]]
queue = "er"
emergency = true
phrases = ["chest pain"]

[[intents]]
queue = "ortho"
phrases = ["knee", "back pain"]
"#;

#[test]
fn intents_in_order_pass() {
    let plan = plan_with(RULES_OK).expect("valid");
    assert_eq!(plan.intents().rules().len(), 2);
}

#[test]
fn lint_one_phrase_in_two_rules() {
    let extra = format!("{RULES_OK}\n[[intents]]\nqueue = \"desk\"\nphrases = [\"Knee!\"]\n");
    let line = line_of(&extra, "\"Knee!\"");
    assert_eq!(
        errors(&extra),
        [(
            ErrorKind::Duplicate,
            format!(
                "plan.toml:{line}:12: phrase `Knee!` is already in the intent rule on line {}: the first rule with it always wins, so here it is dead",
                line_of(&extra, "\"knee\"")
            )
        )]
    );
}

#[test]
fn lint_an_unknown_queue() {
    let extra = "[[intents]]\nqueue = \"ortopedics\"\nphrases = [\"knee\"]\n";
    let line = line_of(extra, "ortopedics");
    assert_eq!(
        errors(extra),
        [(
            ErrorKind::MissingReference,
            format!(
                "plan.toml:{line}:9: intent: no queue `ortopedics` (known: `desk`, `er`, `front-desk`, `ortho`)"
            )
        )]
    );
}

#[test]
fn lint_an_empty_rule_or_phrase() {
    let extra = "[[intents]]\nqueue = \"ortho\"\nphrases = []\n\n[[intents]]\nqueue = \"desk\"\nphrases = [\"?!\"]\n";
    assert_eq!(
        errors(extra),
        [
            (
                ErrorKind::InvalidValue,
                format!(
                    "plan.toml:{}:11: the intent rule for queue `ortho` has no phrases, so it never matches: give it `phrases` or remove it",
                    line_of(extra, "[]")
                )
            ),
            (
                ErrorKind::InvalidValue,
                format!(
                    "plan.toml:{}:12: phrase `?!` has no words (letters or digits), so it never matches",
                    line_of(extra, "?!")
                )
            ),
        ]
    );
}

#[test]
fn lint_an_emergency_rule_shadowed_by_an_earlier_one() {
    // `pain` is inside `chest pain`: the emergency rule can never win.
    let extra = "[[intents]]\nqueue = \"ortho\"\nphrases = [\"pain\"]\n\n[[intents]]\nqueue = \"er\"\nemergency = true\nphrases = [\"stroke\", \"chest pain\"]\n";
    let first = line_of(extra, "\"ortho\"") - 1;
    assert_eq!(
        errors(extra),
        [(
            ErrorKind::Safety,
            format!(
                "plan.toml:{}:22: emergency phrase `chest pain` can never win: the rule on line {first} (queue `ortho`, not an emergency) comes first and its phrase `pain` is in it; put emergency rules first",
                line_of(extra, "\"stroke\"")
            )
        )]
    );
    // Unrelated phrases: a message with both still goes to the wrong queue.
    let extra = "[[intents]]\nqueue = \"ortho\"\nphrases = [\"knee\"]\n\n[[intents]]\nqueue = \"er\"\nemergency = true\nphrases = [\"stroke\"]\n";
    assert_eq!(
        errors(extra),
        [(
            ErrorKind::Safety,
            format!(
                "plan.toml:{}:13: emergency rule for queue `er` comes after the rule on line {} (queue `ortho`, not an emergency), which wins every message that has both (`knee` and an emergency phrase); put emergency rules first",
                line_of(extra, "emergency = true"),
                line_of(extra, "\"ortho\"") - 1
            )
        )]
    );
}

#[test]
fn leads_need_a_front_desk_queue() {
    let base = std::fs::read_to_string("tests/data/valid.toml").unwrap();
    let text = format!("{base}\n[[intents]]\nqueue = \"desk\"\nphrases = [\"knee\"]\n");
    let errors = Dialplan::from_toml(&text, "plan.toml", "tests/data").unwrap_err();
    assert_eq!(
        errors.to_lines(),
        [format!(
            "plan.toml:{}:3: leads that match no intent go to queue `front-desk`, which this dialplan does not have",
            base.lines().count() + 2
        )]
    );
}

#[test]
fn sources_branches_trunks_and_country_are_checked() {
    let extra = r#"
[sources.website]
secret = "0123456789abcdef"
respond_within = "10m"
priority = "urgent"

[branches.north]
postal_prefixes = ["6061", "SW1A"]

[trunks.carrier]
uri = "sip:127.0.0.9:5062"
caller_id = "+15550100"
allow = ['^\+1']
ring_timeout = "12s"
"#;
    let plan = plan_with(extra).expect("valid");
    assert_eq!(plan.trunk("carrier").unwrap().ring_timeout().as_secs(), 12);
    let website = plan.source("website").unwrap();
    assert_eq!(website.priority(), Priority::Urgent);
    assert_eq!(website.respond_within().as_secs(), 600);
    assert_eq!(website.accept_within().as_secs(), 120);
    assert!(plan.trust().is_trusted("127.0.0.9".parse().unwrap()));
    assert_eq!(
        plan.branches().branch_of("sw1a 1aa").map(|m| m.prefix),
        Some("SW1A".into())
    );

    let extra = r#"
[sources."Web Site"]
secret = "short"
respond_within = "0s"

[branches.north]
postal_prefixes = ["6061", "60-6?"]
[branches.south]
postal_prefixes = ["6061"]

[trunks.carrier]
uri = "127.0.0.1:5062"
password = "x"
caller_id = "5550100"
deny = ['^(+1']
"#;
    let found: Vec<String> = errors(extra).into_iter().map(|(_, e)| e).collect();
    let at = |needle: &str| line_of(extra, needle);
    assert_eq!(
        found,
        [
            format!(
                "plan.toml:{}:10: source `Web Site`: a source id is 1 to 64 of `a-z`, `0-9`, `-`, `_`, `.` (it is sent in the X-Frontdesk-Source header)",
                at("Web Site")
            ),
            format!(
                "plan.toml:{}:10: `secret` must be at least 16 bytes: a short HMAC key can be guessed from one signed post",
                at("short")
            ),
            format!(
                "plan.toml:{}:18: `respond_within` must be longer than zero",
                at("0s")
            ),
            format!(
                "plan.toml:{}:28: postal prefix `60-6?`: 1 to 16 letters and digits (spaces and dashes are ignored)",
                at("60-6?")
            ),
            format!(
                "plan.toml:{}:20: postal prefix `6061` is already branch `north`'s (line {})",
                at("postal_prefixes = [\"6061\"]"),
                at("60-6?")
            ),
            format!(
                "plan.toml:{}:7: `uri`: `127.0.0.1:5062` is not a SIP URI (write `sip:host:port`)",
                at("uri =")
            ),
            format!(
                "plan.toml:{}:12: `password` without a `username`: digest needs both",
                at("password")
            ),
            format!(
                "plan.toml:{}:13: `caller_id`: `5550100` is not an E.164 number (`+` and up to 15 digits)",
                at("caller_id")
            ),
            format!(
                "plan.toml:{}:9: `deny`: `^(+1` is not a regular expression (error: repetition operator missing expression)",
                at("deny")
            ),
        ]
    );
}

#[test]
fn country_and_lead_capacity() {
    let base = std::fs::read_to_string("tests/data/valid.toml").unwrap();
    let text = base
        .replace(
            "emergency_notice = \"prompts/notice.wav\"",
            "emergency_notice = \"prompts/notice.wav\"\ncountry = \"XX\"",
        )
        .replace(
            "password = \"pw\"\n",
            "password = \"pw\"\nlead_capacity = 101\n",
        );
    let errors = Dialplan::from_toml(&text, "plan.toml", "tests/data").unwrap_err();
    let lines = errors.to_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].ends_with(
            ":11: `country`: `XX` is not a country code (ISO 3166-1 alpha-2, such as `US` or `GB`)"
        ),
        "{lines:?}"
    );
    assert!(
        lines[1].ends_with(":17: `lead_capacity` must be from 0 to 100, not 101"),
        "{lines:?}"
    );
    assert!(lines[0].starts_with("plan.toml:6:"), "{lines:?}");
    let text = base
        .replace(
            "emergency_notice = \"prompts/notice.wav\"",
            "emergency_notice = \"prompts/notice.wav\"\ncountry = \"gb\"",
        )
        .replace(
            "password = \"pw\"\n",
            "password = \"pw\"\nlead_capacity = 0\n",
        );
    let plan = Dialplan::from_toml(&text, "plan.toml", "tests/data").expect("valid");
    assert_eq!(plan.clinic().country().unwrap().code(), "GB");
    assert_eq!(plan.agents()[0].lead_capacity(), 0);
}

#[test]
fn a_trunk_ring_timeout_must_be_longer_than_zero() {
    let extra = r#"
[trunks.carrier]
uri = "sip:127.0.0.9:5062"
caller_id = "+15550100"
ring_timeout = "0s"
"#;
    let found: Vec<String> = errors(extra).into_iter().map(|(_, e)| e).collect();
    assert_eq!(
        found,
        [format!(
            "plan.toml:{}:16: `ring_timeout` must be longer than zero",
            line_of(extra, "0s")
        )]
    );
}

/// Issue 22: a queue's `abandoned_lead_after` (absent: off) and
/// `respond_within` (absent: one hour; never zero).
#[test]
fn a_queues_lead_keys_are_checked_at_their_place() {
    let base = std::fs::read_to_string("tests/data/valid.toml").unwrap();
    let plan = Dialplan::from_toml(&base, "plan.toml", "tests/data").expect("valid");
    let desk = plan.queue("desk").unwrap();
    assert_eq!(desk.abandoned_lead_after(), None);
    assert_eq!(desk.respond_within().as_secs(), 3600);

    let text = base.replace(
        "wrap_up = \"2s\"\n",
        "wrap_up = \"2s\"\nabandoned_lead_after = \"45s\"\nrespond_within = \"20m\"\n",
    );
    let plan = Dialplan::from_toml(&text, "plan.toml", "tests/data").expect("valid");
    let desk = plan.queue("desk").unwrap();
    assert_eq!(desk.abandoned_lead_after().unwrap().as_secs(), 45);
    assert_eq!(desk.respond_within().as_secs(), 1200);

    let text = base.replace(
        "wrap_up = \"2s\"\n",
        "wrap_up = \"2s\"\nabandoned_lead_after = \"soon\"\nrespond_within = \"0s\"\n",
    );
    let line = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let found: Vec<String> = Dialplan::from_toml(&text, "plan.toml", "tests/data")
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        found,
        [
            format!(
                "plan.toml:{}:24: `abandoned_lead_after`: `soon` is not a duration (write `15s`, `500ms`, `3m` or `1m 30s`)",
                line("soon")
            ),
            format!(
                "plan.toml:{}:18: `respond_within` must be longer than zero",
                line("\"0s\"")
            ),
        ]
    );

    // A queue's own whisper that is not there is reported at its value.
    let text = base.replace(
        "wrap_up = \"2s\"\n",
        "wrap_up = \"2s\"\ncallback = { offer_after = \"60s\", key = \"1\", whisper = \"prompts/nobody-said-this.wav\" }\n",
    );
    let found: Vec<String> = Dialplan::from_toml(&text, "plan.toml", "tests/data")
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect();
    let at = text.lines().position(|l| l.contains("callback =")).unwrap() + 1;
    let column = text
        .lines()
        .nth(at - 1)
        .unwrap()
        .find("\"prompts/nobody")
        .unwrap()
        + 1;
    assert!(
        found
            .iter()
            .any(|e| e.starts_with(&format!("plan.toml:{at}:{column}: "))
                && e.contains("nobody-said-this.wav")),
        "{found:#?}"
    );
    assert!(
        !found.iter().any(|e| e.contains("callback-whisper.wav")),
        "the default is not asked for: {found:#?}"
    );

    // A callback with every value wrong; the plan's folder has no callback
    // prompts, each reported at the `callback` key.
    let text = base.replace(
        "wrap_up = \"2s\"\n",
        "wrap_up = \"2s\"\ncallback = { offer_after = \"later\", key = \"12\", retries = 11, retry_every = \"0s\", max_share = 1.5 }\n",
    );
    let found: Vec<String> = Dialplan::from_toml(&text, "plan.toml", "tests/data")
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect();
    let at = text.lines().position(|l| l.contains("callback =")).unwrap() + 1;
    let column = |needle: &str| text.lines().nth(at - 1).unwrap().find(needle).unwrap() + 1;
    let mut wanted = vec![
        format!(
            "plan.toml:{at}:{}: `offer_after`: `later` is not a duration (write `15s`, `500ms`, `3m` or `1m 30s`)",
            column("\"later\"")
        ),
        format!(
            "plan.toml:{at}:{}: `key`: `12` is not one key (`0`-`9` or `*`; `#` ends a number)",
            column("\"12\"")
        ),
        format!(
            "plan.toml:{at}:{}: `retries` must be from 0 to 10, not 11",
            column("11")
        ),
        format!(
            "plan.toml:{at}:{}: `retry_every` must be longer than zero",
            column("\"0s\"")
        ),
        format!(
            "plan.toml:{at}:{}: `max_share` must be more than 0 and at most 1, not 1.5",
            column("1.5")
        ),
    ];
    // The four prompts and the default whisper.
    let missing: Vec<&String> = found.iter().filter(|e| e.contains("callback-")).collect();
    assert_eq!(missing.len(), 5, "{found:#?}");
    for error in &missing {
        assert!(
            error.starts_with(&format!("plan.toml:{at}:12: ")),
            "{error}"
        );
    }
    let rest: Vec<String> = found
        .iter()
        .filter(|e| !e.contains("callback-"))
        .cloned()
        .collect();
    wanted.sort();
    let mut rest_sorted = rest.clone();
    rest_sorted.sort();
    assert_eq!(rest_sorted, wanted, "{found:#?}");
}
