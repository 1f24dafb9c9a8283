use proptest::prelude::*;

use super::*;
use crate::import::asterisk::config::parse;

const QUEUES: &[u8] = include_bytes!("../../../../tests/data/asterisk/queues.conf");
const PJSIP: &[u8] = include_bytes!("../../../../tests/data/asterisk/pjsip.conf");
const EXTENSIONS: &[u8] = include_bytes!("../../../../tests/data/asterisk/extensions.conf");

fn options() -> Options {
    Options {
        name: "Lakeside".into(),
        time_zone: "America/New_York".into(),
    }
}

fn run(queues: &[u8], pjsip: &[u8], extensions: &[u8]) -> Import {
    import(
        &parse("queues.conf", queues).unwrap(),
        &parse("pjsip.conf", pjsip).unwrap(),
        &parse("extensions.conf", extensions).unwrap(),
        &options(),
    )
}

fn fixture() -> (Import, toml::Table) {
    let imported = run(QUEUES, PJSIP, EXTENSIONS);
    let table: toml::Table = imported.toml.parse().expect("the output is TOML");
    (imported, table)
}

fn notes_at(imported: &Import, file: &str, line: usize) -> Vec<String> {
    imported
        .notes
        .iter()
        .filter(|n| n.file == file && n.line == line)
        .map(|n| n.message.clone())
        .collect()
}

#[test]
fn queues_keep_their_strategies_timeouts_and_wrap_up() {
    let (_, plan) = fixture();
    let queue = |id: &str, key: &str| plan["queues"][id][key].to_string();
    assert_eq!(queue("front-desk", "strategy"), "\"round-robin\"");
    assert_eq!(queue("front-desk", "ring_timeout"), "\"20s\"");
    assert_eq!(queue("front-desk", "wrap_up"), "\"10s\"");
    assert_eq!(queue("front-desk", "sla"), "\"60s\"");
    assert_eq!(queue("cardiology", "strategy"), "\"skill-level\"");
    assert_eq!(queue("cardiology", "wrap_up"), "\"30s\"");
    assert_eq!(queue("cardiology", "max_wait"), "\"120s\"");
    assert_eq!(
        queue("cardiology", "on_max_wait"),
        "{ queue = \"front-desk\" }"
    );
    assert_eq!(queue("pediatrics", "strategy"), "\"round-robin\"");
    assert_eq!(queue("pediatrics", "max_wait"), "\"90s\"");
    assert_eq!(queue("pediatrics", "max_length"), "20");
}

#[test]
fn members_become_agents_with_their_digest_credentials() {
    let (imported, plan) = fixture();
    let agents = plan["agents"].as_array().unwrap();
    let ids: Vec<&str> = agents.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1001", "1002", "1005", "1003", "1004"]);
    let dan = &agents[4];
    assert_eq!(dan["name"].as_str(), Some("Dan Ruiz"));
    assert_eq!(dan["password"].as_str(), Some("Rf7-dan-cardio"));
    assert_eq!(
        dan["skills"].to_string(),
        "[\"cardiology\", \"pediatrics\"]"
    );
    // linear: the second member in order.
    assert_eq!(dan["skill_levels"]["cardiology"].as_integer(), Some(9));
    assert_eq!(
        agents[3]["skill_levels"]["cardiology"].as_integer(),
        Some(10)
    );
    // 1006's auth is md5: no password to carry over.
    let frank = notes_at(&imported, "pjsip.conf", 79);
    assert!(
        frank.iter().any(|n| n.contains("auth_type = md5")),
        "{frank:?}"
    );
    let local = notes_at(&imported, "queues.conf", 42);
    assert!(
        local.iter().any(|n| n.contains("Local/2001@from-queue/n")),
        "{local:?}"
    );
}

#[test]
fn numbers_menus_and_options_reach_their_queues() {
    let (imported, plan) = fixture();
    let numbers = plan["numbers"].as_array().unwrap();
    let main = &numbers[0];
    assert_eq!(main["number"].as_str(), Some("+15550200"));
    assert_eq!(main["then"].to_string(), "{ menu = \"main-menu\" }");
    assert_eq!(
        main["announce"].to_string(),
        "[\"prompts/emergency-notice.wav\", \"prompts/lakeside-welcome.wav\"]"
    );
    assert_eq!(numbers[1]["number"].as_str(), Some("5550200"));
    let campaign = &numbers[2];
    assert_eq!(campaign["number"].as_str(), Some("+15550222"));
    assert_eq!(
        campaign["then"].to_string(),
        "{ priority = \"urgent\", queue = \"cardiology\" }"
    );
    assert_eq!(numbers.len(), 3);
    let menu = &plan["menus"]["main-menu"];
    assert_eq!(menu["prompt"].as_str(), Some("prompts/lakeside-menu.wav"));
    assert_eq!(menu["timeout"].as_str(), Some("6s"));
    assert_eq!(menu["inter_digit_timeout"].as_str(), Some("3s"));
    assert_eq!(
        menu["invalid_prompt"].as_str(),
        Some("prompts/invalid-choice.wav")
    );
    assert_eq!(
        menu["on_no_input"].to_string(),
        "{ queue = \"front-desk\" }"
    );
    assert_eq!(menu["on_invalid"].to_string(), "{ queue = \"front-desk\" }");
    let options = menu["options"].as_table().unwrap();
    let option = |digit: &str| options[digit].to_string();
    assert_eq!(option("1"), "{ queue = \"front-desk\" }");
    assert_eq!(option("2"), "{ queue = \"cardiology\" }");
    assert_eq!(option("3"), "{ queue = \"pediatrics\" }");
    assert_eq!(option("0"), "{ queue = \"front-desk\" }");
    assert_eq!(options.len(), 4, "7 dials a phone, 9 replays the menu");
    // The untranslated, with their lines.
    let dial = notes_at(&imported, "extensions.conf", 41);
    assert!(
        dial.iter().any(|n| n.contains("Dial(PJSIP/1001,20)")),
        "{dial:?}"
    );
    let include = notes_at(&imported, "extensions.conf", 10);
    assert!(
        include.iter().any(|n| n.contains("#include")),
        "{include:?}"
    );
    let pattern = notes_at(&imported, "extensions.conf", 25);
    assert!(
        pattern.iter().any(|n| n.contains("_+1555020X")),
        "{pattern:?}"
    );
    let voicemail = notes_at(&imported, "extensions.conf", 49);
    assert!(
        voicemail.iter().any(|n| n.contains("Voicemail")),
        "{voicemail:?}"
    );
}

#[test]
fn every_line_nothing_used_is_reported() {
    let (imported, _) = fixture();
    for (file, line) in [
        ("queues.conf", 5),
        ("queues.conf", 12),
        ("queues.conf", 38),
        ("pjsip.conf", 19),
    ] {
        assert!(
            !notes_at(&imported, file, line).is_empty(),
            "{file}:{line} not reported: {:#?}",
            imported.notes
        );
    }
    // Translated lines are not.
    for (file, line) in [("queues.conf", 24), ("queues.conf", 25), ("pjsip.conf", 36)] {
        assert!(notes_at(&imported, file, line).is_empty(), "{file}:{line}");
    }
}

#[test]
fn ids_and_strings_are_made_safe_for_toml() {
    assert_eq!(identifier("Front Desk (main)"), "front-desk-main");
    assert_eq!(quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    assert_eq!(
        display_name("\"Alice Moreno\" <1001>").as_deref(),
        Some("Alice Moreno")
    );
    assert_eq!(display_name("<1001>"), None);
}

proptest! {
    #[test]
    fn any_configuration_imports_to_toml_without_panic(
        queues in "(\\[[a-z ]{1,8}\\](\\(!\\))?\n|(strategy|timeout|member|maxlen) = [a-zA-Z0-9/,]{0,12}\n){0,12}",
        pjsip in "(\\[[0-9a-z-]{1,6}\\]\n|(type|auth|password|username|callerid) = [a-z0-9 \"<>-]{0,12}\n){0,12}",
        extensions in "(\\[[a-z-]{1,6}\\]\n|(exten|same) => [+_0-9sitn]{1,6},[n0-9]{1,2},(Goto|Queue|Background|WaitExten|Set|Dial)\\([a-z0-9,=()-]{0,14}\\)\n){0,16}",
    ) {
        let imported = run(queues.as_bytes(), pjsip.as_bytes(), extensions.as_bytes());
        prop_assert!(imported.toml.parse::<toml::Table>().is_ok(), "{}", imported.toml);
    }
}
