//! `dialplans/clinic.toml` is exactly DESIGN.md's demo clinic: outside
//! tests rely on every value, so each one is pinned here.

mod common;

use std::time::Duration;

use common::{branches, clinic};
use ivr::{FeatureCode, Overflow, Priority, PriorityChange, SkillLevel, Strategy, Target};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn clinic_name_time_zone_and_numbers() {
    let plan = clinic();
    assert_eq!(plan.clinic().name(), "Riverside Family Health");
    assert_eq!(plan.clinic().time_zone_name(), "America/Chicago");
    assert_eq!(plan.numbers().len(), 2);

    let main = plan.number("+15550100").unwrap();
    assert_eq!(main.source().as_str(), "main-line");
    assert_eq!(main.priority(), Priority::Routine);
    assert_eq!(main.then(), &Target::Menu("main".into()));
    for alias in ["5550100", "clinic"] {
        assert_eq!(plan.number(alias).unwrap().number(), "+15550100");
    }

    let urgent = plan.number("+15550111").unwrap();
    assert_eq!(urgent.source().as_str(), "urgent-care-campaign");
    assert_eq!(urgent.priority(), Priority::Urgent);
    assert_eq!(
        urgent.then(),
        &Target::Queue {
            queue: "urgent-care".into(),
            priority: None
        }
    );
    for number in plan.numbers() {
        assert_eq!(
            number.announce()[0].id(),
            plan.clinic().emergency_notice().id()
        );
        assert!(number.answer_after().is_none());
        assert!(number.exempt_from_safety().is_none());
    }
}

#[test]
fn the_main_menu() {
    let plan = clinic();
    let menu = plan.menu("main").unwrap();
    let queue = |q: &str, priority: Option<Priority>| Target::Queue {
        queue: q.into(),
        priority,
    };
    let expected = [
        ("0", queue("front-desk", None)),
        ("1", queue("front-desk", None)),
        ("2", queue("cardiology", None)),
        ("3", queue("pediatrics", None)),
        ("4", queue("dermatology", None)),
        ("5", queue("orthopedics", None)),
        ("9", queue("urgent-care", Some(Priority::Urgent))),
    ];
    assert_eq!(menu.options().len(), expected.len());
    for (digit, target) in expected {
        assert_eq!(menu.options()[digit], target, "option {digit}");
    }
    assert_eq!(menu.retries(), 1);
    assert_eq!(menu.max_digits(), 1);
    assert_eq!(menu.on_no_input(), &queue("front-desk", None));
    assert_eq!(menu.on_invalid(), &queue("front-desk", None));
}

#[test]
fn the_queue_table() {
    let plan = clinic();
    let front_desk = Overflow::Queue {
        queue: "front-desk".into(),
        priority: PriorityChange::Keep,
    };
    #[rustfmt::skip]
    let table = [
        ("front-desk", Strategy::LongestIdle, 15, 180, None, 60),
        ("cardiology", Strategy::RoundRobin, 15, 90, Some(front_desk.clone()), 60),
        ("pediatrics", Strategy::LongestIdle, 15, 90, Some(front_desk.clone()), 60),
        ("dermatology", Strategy::FewestCalls, 15, 90, Some(front_desk.clone()), 60),
        ("orthopedics", Strategy::FewestCalls, 15, 90, Some(front_desk.clone()), 60),
        ("urgent-care", Strategy::RingAll, 20, 60,
            Some(Overflow::Queue { queue: "front-desk".into(), priority: PriorityChange::Set(Priority::Urgent) }), 30),
        ("nurse-line", Strategy::RingAll, 20, 120,
            Some(Overflow::Voicemail { queue: "nurse-line".into() }), 60),
    ];
    assert_eq!(plan.queues().count(), table.len());
    for (id, strategy, ring, max_wait, overflow, sla) in table {
        let queue = plan.queue(id).unwrap();
        assert_eq!(queue.skills().len(), 1, "{id}");
        assert_eq!(queue.skills()[0].as_str(), id, "{id}");
        assert_eq!(queue.strategy(), strategy, "{id}");
        assert_eq!(queue.ring_timeout(), secs(ring), "{id}");
        assert_eq!(queue.wrap_up(), secs(2), "{id}");
        assert_eq!(queue.max_wait(), Some(secs(max_wait)), "{id}");
        assert_eq!(queue.sla(), secs(sla), "{id}");
        assert_eq!(queue.aging(), secs(120), "the default, {id}");
        assert_eq!(queue.max_length(), None, "{id}");
        match overflow {
            Some(overflow) => assert_eq!(queue.on_max_wait(), Some(&overflow), "{id}"),
            None => match queue.on_max_wait() {
                Some(Overflow::Message { message }) => {
                    assert_eq!(message.as_str(), "prompts/call-back-later.wav")
                }
                other => panic!("{id}: {other:?}"),
            },
        }
        assert!(queue.hold_music().is_some());
        assert_eq!(queue.announce_every(), Some(secs(30)), "{id}");
        // Issue 22: DESIGN's demo values on every queue.
        assert_eq!(queue.abandoned_lead_after(), Some(secs(30)), "{id}");
        assert_eq!(queue.respond_within(), secs(3600), "{id}");
        let callback = queue.callback().expect("callbacks");
        assert_eq!(callback.offer_after(), secs(60), "{id}");
        assert_eq!(callback.key(), '1', "{id}");
        assert_eq!(callback.retries(), 2, "{id}");
        assert_eq!(callback.retry_every(), secs(300), "{id}");
        assert_eq!(callback.max_share(), 0.5, "{id}");
        assert!(
            callback
                .prompts()
                .refused
                .path()
                .ends_with("prompts/callback-refused.wav")
        );
    }
    // "You are caller number 3", "most callers reach someone within 4
    // minutes": from the digit prompts.
    let position: Vec<String> = plan
        .position_prompts(3)
        .expect("[announcements]")
        .iter()
        .map(|p| p.id().as_str().to_string())
        .collect();
    assert_eq!(
        position,
        ["prompts/you-are-caller-number.wav", "prompts/digit-3.wav"]
    );
    let wait = plan.expected_wait_prompts(12).expect("[announcements]");
    assert_eq!(wait.len(), 4);
}

#[test]
fn agents_dial_feature_codes() {
    let plan = clinic();
    let features = plan.features();
    let table = [
        (FeatureCode::Away, "*41", "prompts/agent-away.wav"),
        (FeatureCode::Available, "*42", "prompts/agent-available.wav"),
        (FeatureCode::Waiting, "*43", "prompts/callers-waiting.wav"),
    ];
    for (feature, code, prompt) in table {
        assert_eq!(features.code(feature), code);
        assert_eq!(features.lookup(code), Some(feature));
        assert_eq!(
            features.prompt(feature).map(|p| p.id().as_str()),
            Some(prompt)
        );
    }
}

#[test]
fn the_agents() {
    let plan = clinic();
    let table = [
        ("1001", "Alice", &["front-desk"][..], "north"),
        ("1002", "Bob", &["cardiology"], "north"),
        ("1003", "Carol", &["pediatrics"], "south"),
        ("1004", "Dan", &["dermatology", "orthopedics"], "south"),
        ("1005", "Erin", &["urgent-care", "front-desk"], "north"),
        ("1006", "Frank", &["pediatrics", "front-desk"], "north"),
        ("1007", "Grace", &["nurse-line"], "north"),
    ];
    assert_eq!(plan.agents().len(), table.len());
    for (id, name, skills, branch) in table {
        let agent = plan.agent(id).unwrap();
        assert_eq!(agent.name(), name);
        assert_eq!(agent.password(), format!("demo-{id}"));
        let have: Vec<&str> = agent.skills().iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(have, skills);
        assert_eq!(agent.branch().unwrap().as_str(), branch);
        assert!(
            !format!("{agent:?}").contains("demo-"),
            "Debug hides the password"
        );
    }
    let front_desk = plan.queue("front-desk").unwrap();
    let ids: Vec<&str> = plan
        .agents_for(front_desk)
        .map(|a| a.id().as_str())
        .collect();
    assert_eq!(ids, ["1001", "1005", "1006"]);
}

#[test]
fn hours_holidays_after_hours_and_trust() {
    use jiff::civil::{Weekday, date};
    let plan = clinic();
    let hours = plan.hours();
    for day in [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
    ] {
        let ranges: Vec<String> = hours.ranges(day).iter().map(|r| r.to_string()).collect();
        assert_eq!(ranges, ["08:00-18:00"], "{day:?}");
    }
    let saturday: Vec<String> = hours
        .ranges(Weekday::Saturday)
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(saturday, ["09:00-13:00"]);
    assert!(hours.ranges(Weekday::Sunday).is_empty());
    let holidays: Vec<_> = hours.holidays().keys().copied().collect();
    assert_eq!(holidays, [date(2026, 12, 25), date(2027, 1, 1)]);
    let after = plan.after_hours().unwrap();
    assert_eq!(after.announce()[0].id().as_str(), "prompts/after-hours.wav");
    assert_eq!(
        after.then(),
        &Target::Queue {
            queue: "nurse-line".into(),
            priority: None
        }
    );
    let trust = plan.trust();
    assert!(trust.is_trusted("127.0.0.1".parse().unwrap()));
    assert!(!trust.is_trusted("192.0.2.1".parse().unwrap()));
}

#[test]
fn prompts_have_their_wav_lengths() {
    let plan = clinic();
    let notice = plan.clinic().emergency_notice();
    assert!(notice.path().ends_with("prompts/emergency-notice.wav"));
    assert!(notice.duration() > Duration::from_secs(2));
    assert!(notice.duration() < Duration::from_secs(10));
}

#[test]
fn the_branches_example_uses_the_rest_of_the_schema() {
    let plan = branches();
    let south = plan.number("+15550222").unwrap();
    assert_eq!(south.answer_after(), Some(secs(2)));
    assert_eq!(south.branch().unwrap().as_str(), "south");
    assert!(
        plan.number("+15550999")
            .unwrap()
            .exempt_from_safety()
            .is_some()
    );

    let front_desk = plan.queue("front-desk").unwrap();
    assert_eq!(front_desk.strategy(), Strategy::Capacity);
    assert_eq!(front_desk.max_length(), Some(25));
    assert_eq!(front_desk.max_wait(), Some(secs(240)));
    assert_eq!(front_desk.announce_every(), Some(secs(45)));
    assert_eq!(front_desk.aging(), secs(180));
    assert_eq!(
        ivr::describe_queue(front_desk),
        "capacity, ring 15 s, wrap-up 5 s, max wait 240 s or 25 waiting then message \
         prompts/call-back-later.wav, SLA 60 s, aging 180 s"
    );
    let nurse_line = plan.queue("nurse-line").unwrap();
    assert!(nurse_line.max_wait().is_none());
    assert_eq!(
        ivr::describe_queue(nurse_line),
        "ring-all, ring 20 s, wrap-up 2 s, no max wait, SLA 60 s, aging 120 s"
    );
    assert_eq!(
        ivr::describe_queue(plan.queue("urgent-care").unwrap()),
        "ring-all, ring 20 s, wrap-up 2 s, max wait 60 s then queue nurse-line (urgent), \
         SLA 30 s, aging 120 s"
    );

    let ivan = plan.agent("2002").unwrap();
    assert_eq!(ivan.skill_level(&"cardiology".into()), SkillLevel::new(9));
    let hana = plan.agent("2001").unwrap();
    assert_eq!(
        hana.skill_level(&"front-desk".into()),
        Some(SkillLevel::MIN)
    );
    assert_eq!(hana.capacity(), 2);
    assert_eq!(hana.languages().len(), 2);

    let patient = plan.known_patient("(312) 555-0177").is_none();
    assert!(patient, "directory numbers match after normalising only");
    let patient = plan.known_patient("+13125550177").unwrap();
    assert_eq!(patient.department.as_ref().unwrap().as_str(), "cardiology");
    assert!(patient.coordinator.is_none());

    let trust = plan.trust();
    assert!(trust.is_trusted("198.51.100.20".parse().unwrap()));
    assert!(trust.is_trusted("203.0.113.10".parse().unwrap()));
    assert!(!trust.is_trusted("127.0.0.2".parse().unwrap()));
    assert!(trust.is_trusted("127.0.0.1".parse().unwrap()));
    assert!(
        trust.is_trusted("192.0.2.40".parse().unwrap()),
        "an agent network"
    );
    assert!(trust.is_trusted("2001:db8:40:7::9".parse().unwrap()));
    assert!(!trust.is_trusted("192.0.2.41".parse().unwrap()));
    assert_eq!(plan.limits().sip.calls, 8);
    assert_eq!(plan.limits().sign_in.account.lock_after, 10);

    let names = |prompts: Vec<ivr::Prompt>| -> Vec<String> {
        prompts
            .iter()
            .map(|p| common::file_name(p.id().as_str()))
            .collect()
    };
    assert_eq!(
        names(plan.position_prompts(12).unwrap()),
        ["you-are-caller-number.wav", "digit-1.wav", "digit-2.wav"]
    );
    assert_eq!(
        names(plan.expected_wait_prompts(3).unwrap()),
        [
            "most-callers-reach-someone-within.wav",
            "digit-3.wav",
            "minutes.wav"
        ]
    );
}
