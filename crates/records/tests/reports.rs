//! The scripted calls of `support::scripted_calls`, written through the
//! real journal, then every query and report checked against numbers
//! worked out by hand, and the JSON shapes against DESIGN.md.

mod support;

use records::{
    AbandonmentWindow, AgentReport, CallQuery, DepartmentReport, Outcome, Percentiles, Priority,
    Reader, SourceReport, TimeRange,
};
use serde_json::json;
use support::{PATIENCE, at, open, quick, record_all, scripted_calls};

/// The script written and read back; the directory lives as long as the
/// reader needs it.
fn scripted() -> (support::TestJournal, Reader) {
    let test = open(quick());
    record_all(&test.handle, scripted_calls());
    let stats = test.handle.stats();
    assert_eq!(stats.written as usize, scripted_calls().len());
    assert_eq!((stats.dropped, stats.failed, stats.backlog), (0, 0, 0));
    let reader = test.journal.reader().unwrap();
    (test, reader)
}

fn the_hour() -> TimeRange {
    TimeRange::new(at(0), at(3_600_000)).unwrap()
}

fn percentiles(p50: u64, p90: u64) -> Percentiles {
    Percentiles {
        p50: Some(p50),
        p90: Some(p90),
    }
}

#[test]
fn department_report_numbers() {
    let (_test, reader) = scripted();
    let report = reader.department_report(&the_hour()).unwrap();
    let expected = vec![
        DepartmentReport {
            // c03 abandoned, c04 overflowed out, c05 transferred in and
            // answered 5 s after the transfer.
            id: "cardiology".into(),
            offered: 3,
            connected: 1,
            abandoned: 1,
            abandonment_rate: 1.0 / 3.0,
            time_to_connect_ms: percentiles(5_000, 5_000),
            within_sla: 1.0 / 3.0,
            interrupted: 0,
            callbacks: Default::default(),
        },
        DepartmentReport {
            // c10, still ringing.
            id: "dermatology".into(),
            offered: 1,
            connected: 0,
            abandoned: 0,
            abandonment_rate: 0.0,
            time_to_connect_ms: Percentiles::default(),
            within_sla: 0.0,
            interrupted: 0,
            callbacks: Default::default(),
        },
        DepartmentReport {
            // c04 answered 95 s after it first queued (over the 60 s SLA),
            // c08 overflowed to "call back".
            id: "front-desk".into(),
            offered: 2,
            connected: 1,
            abandoned: 0,
            abandonment_rate: 0.0,
            time_to_connect_ms: percentiles(95_000, 95_000),
            within_sla: 0.0,
            interrupted: 0,
            callbacks: Default::default(),
        },
        DepartmentReport {
            // c01 and c02; c00 started before the range.
            id: "pediatrics".into(),
            offered: 2,
            connected: 2,
            abandoned: 0,
            abandonment_rate: 0.0,
            time_to_connect_ms: percentiles(3_100, 5_200),
            within_sla: 1.0,
            interrupted: 0,
            callbacks: Default::default(),
        },
        DepartmentReport {
            id: "urgent-care".into(),
            offered: 1,
            connected: 1,
            abandoned: 0,
            abandonment_rate: 0.0,
            time_to_connect_ms: percentiles(10_000, 10_000),
            within_sla: 1.0,
            interrupted: 0,
            callbacks: Default::default(),
        },
    ];
    assert_eq!(report, expected);
}

#[test]
fn department_report_counts_only_calls_started_in_the_range() {
    let (_test, reader) = scripted();
    // c00 alone: it started 100 s before T0.
    let before = TimeRange::new(at(-3_600_000), at(0)).unwrap();
    let report = reader.department_report(&before).unwrap();
    assert_eq!(report.len(), 1);
    assert_eq!(
        (
            report[0].id.as_str(),
            report[0].offered,
            report[0].abandoned
        ),
        ("pediatrics", 1, 1)
    );
    assert_eq!(report[0].abandonment_rate, 1.0);
    assert_eq!(report[0].time_to_connect_ms, Percentiles::default());
    // An empty range.
    let nothing = TimeRange::new(at(5_000_000), at(6_000_000)).unwrap();
    assert!(reader.department_report(&nothing).unwrap().is_empty());
}

#[test]
fn agent_report_numbers() {
    let (_test, reader) = scripted();
    let agent = |id: &str, offered, answered, no_answer, busy, talk_ms| AgentReport {
        interrupted: 0,
        id: id.into(),
        offered,
        answered,
        no_answer,
        busy,
        misses: no_answer + busy,
        talk_ms,
    };
    assert_eq!(
        reader.agent_report(&the_hour()).unwrap(),
        vec![
            agent("1001", 2, 1, 1, 0, 60_000),
            agent("1002", 3, 1, 1, 0, 120_000),
            agent("1003", 2, 1, 0, 1, 120_000),
            agent("1004", 1, 0, 0, 0, 0),
            agent("1005", 1, 1, 0, 0, 60_000),
            agent("1006", 1, 1, 0, 0, 60_000),
        ]
    );
}

#[test]
fn source_report_numbers() {
    let (_test, reader) = scripted();
    let report = reader.source_report(&the_hour()).unwrap();
    assert_eq!(
        report,
        vec![
            SourceReport {
                source: None,
                calls: 1,
                offered: 0,
                connected: 0,
                abandoned: 0,
                overflowed: 0,
                rejected: 1,
                after_hours: 0,
                interrupted: 0,
                in_progress: 0,
                time_to_connect_ms: Percentiles::default(),
            },
            SourceReport {
                source: Some("main-line".into()),
                calls: 8,
                offered: 6,
                connected: 3,
                abandoned: 2,
                overflowed: 1,
                rejected: 0,
                after_hours: 1,
                interrupted: 0,
                in_progress: 1,
                // c01 3.1 s, c02 5.2 s, c04 95 s.
                time_to_connect_ms: percentiles(5_200, 95_000),
            },
            SourceReport {
                source: Some("urgent-care-campaign".into()),
                calls: 1,
                offered: 1,
                connected: 1,
                abandoned: 0,
                overflowed: 0,
                rejected: 0,
                after_hours: 0,
                interrupted: 0,
                in_progress: 0,
                time_to_connect_ms: percentiles(10_000, 10_000),
            },
        ]
    );
    // The campaign's leads, followed end to end.
    let leads = reader
        .calls(&CallQuery {
            source: Some("urgent-care-campaign".into()),
            range: Some(the_hour()),
            ..CallQuery::recent(10)
        })
        .unwrap();
    assert_eq!(leads.len(), 1);
    let lead = reader.call(leads[0].id.as_str()).unwrap().unwrap();
    let kinds: Vec<&str> = lead.events.iter().map(|e| e.event.kind()).collect();
    assert_eq!(
        kinds,
        [
            "started",
            "entered",
            "queued",
            "offered",
            "connected",
            "transferred",
            "queued",
            "offered",
            "connected",
            "ended"
        ]
    );
}

#[test]
fn abandonment_window_counts_waits_that_ended_in_it() {
    let (_test, reader) = scripted();
    // [100 s, 300 s): c03 abandons cardiology at 145 s, c04 leaves it at
    // 295 s; c04's answer in front-desk at exactly 300 s is outside.
    let window = TimeRange::new(at(100_000), at(300_000)).unwrap();
    assert_eq!(
        reader.abandonment_window(&window).unwrap(),
        vec![AbandonmentWindow {
            department: "cardiology".into(),
            resolved: 2,
            abandoned: 1,
            abandonment_rate: 0.5,
        }]
    );
    let window = |department: &str, resolved, abandoned, abandonment_rate| AbandonmentWindow {
        department: department.into(),
        resolved,
        abandoned,
        abandonment_rate,
    };
    assert_eq!(
        reader.abandonment_window(&the_hour()).unwrap(),
        vec![
            window("cardiology", 3, 1, 1.0 / 3.0),
            window("front-desk", 2, 0, 0.0),
            window("pediatrics", 2, 0, 0.0),
            window("urgent-care", 1, 0, 0.0),
        ]
    );
    // c00 started before T0 but its abandonment (at −10 s) falls in a
    // window that starts before T0.
    let early = TimeRange::last(std::time::Duration::from_secs(60), at(0));
    assert_eq!(
        reader.abandonment_window(&early).unwrap(),
        vec![window("pediatrics", 1, 1, 1.0)]
    );
}

#[test]
fn call_rows_hold_each_column() {
    let (_test, reader) = scripted();
    let c05 = reader.call("c05").unwrap().unwrap().call;
    assert_eq!(c05.caller, "+13125550146");
    assert_eq!(c05.dialed, "+15550111");
    assert_eq!(c05.source.as_deref(), Some("urgent-care-campaign"));
    assert_eq!(c05.department.as_deref(), Some("cardiology"));
    assert_eq!(c05.priority, Priority::Urgent);
    assert_eq!(c05.agent.as_deref(), Some("1002"));
    assert_eq!(c05.outcome, Some(Outcome::Connected));
    assert_eq!(c05.started_at, at(400_000));
    assert_eq!(c05.answered_at, Some(at(401_000)));
    assert_eq!(c05.queued_at, Some(at(405_000)));
    assert_eq!(c05.connected_at, Some(at(415_000)));
    assert_eq!(c05.ended_at, Some(at(600_000)));
    assert_eq!(c05.wait_ms, Some(10_000));
    assert_eq!(c05.talk_ms, Some(185_000));
    assert_eq!(c05.transfers, 1);
    assert_eq!(c05.sla_ms, Some(60_000));

    let c08 = reader.call("c08").unwrap().unwrap().call;
    assert_eq!(c08.outcome, Some(Outcome::Overflowed));
    assert_eq!(c08.wait_ms, Some(190_000), "queued to the end");
    assert_eq!(c08.talk_ms, None);
    assert_eq!(c08.agent, None);

    let c09 = reader.call("c09").unwrap().unwrap().call;
    assert_eq!(c09.outcome, Some(Outcome::Abandoned));
    assert_eq!(
        (c09.wait_ms, c09.department, c09.queued_at),
        (None, None, None)
    );
    assert_eq!(c09.priority, Priority::Routine);

    let c10 = reader.call("c10").unwrap().unwrap();
    assert_eq!(c10.call.outcome, None);
    assert_eq!(c10.call.ended_at, None);
    assert_eq!(c10.call.wait_ms, None);
    let seqs: Vec<u32> = c10.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);

    assert!(reader.call("no-such-call").unwrap().is_none());
}

#[test]
fn recent_calls_newest_first() {
    let (_test, reader) = scripted();
    let ids = |limit| -> Vec<String> {
        reader
            .recent_calls(limit)
            .unwrap()
            .into_iter()
            .map(|call| call.id.to_string())
            .collect()
    };
    assert_eq!(ids(3), ["c99", "c10", "c09"]);
    assert_eq!(ids(100).len(), 12);
    assert_eq!(ids(100).last().map(String::as_str), Some("c00"));
    assert!(ids(0).is_empty());
    let in_hour = reader
        .calls(&CallQuery {
            range: Some(the_hour()),
            department: Some("front-desk".into()),
            ..CallQuery::recent(10)
        })
        .unwrap();
    let in_hour: Vec<&str> = in_hour.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(in_hour, ["c08", "c04"]);
}

#[test]
fn calls_json_is_design_md_shape() {
    let (_test, reader) = scripted();
    let c01 = reader.call("c01").unwrap().unwrap().call;
    assert_eq!(
        c01.to_json(),
        json!({
            "id": "c01",
            "caller": "+13125550142",
            "dialed": "+15550100",
            "source": "main-line",
            "department": "pediatrics",
            "priority": "routine",
            "agent": "1003",
            "outcome": "connected",
            "started_at": "2026-03-02T14:00:00Z",
            "connected_at": "2026-03-02T14:00:09.1Z",
            "ended_at": "2026-03-02T14:02:09.1Z",
            "wait_ms": 3100
        })
    );
    let c10 = reader.call("c10").unwrap().unwrap().call;
    assert_eq!(
        c10.to_json(),
        json!({
            "id": "c10",
            "caller": "+13125550151",
            "dialed": "+15550100",
            "source": "main-line",
            "department": "dermatology",
            "priority": "routine",
            "agent": null,
            "outcome": "in_progress",
            "started_at": "2026-03-02T14:18:20Z",
            "connected_at": null,
            "ended_at": null,
            "wait_ms": null
        })
    );
}

#[test]
fn timeline_json() {
    let (_test, reader) = scripted();
    let c03 = reader.call("c03").unwrap().unwrap();
    let json = c03.to_json();
    assert_eq!(json["id"], "c03");
    assert_eq!(json["outcome"], "abandoned");
    assert_eq!(json["queued_at"], "2026-03-02T14:01:45Z");
    assert_eq!(json["transfers"], 0);
    assert_eq!(json["sla_ms"], 60_000);
    assert_eq!(json["talk_ms"], serde_json::Value::Null);
    assert_eq!(
        json["events"][3],
        json!({"seq": 4, "at": "2026-03-02T14:01:45Z", "kind": "queued",
               "detail": {"department": "cardiology", "priority": "routine", "sla_ms": 60000}})
    );
    assert_eq!(
        json["events"][7],
        json!({"seq": 8, "at": "2026-03-02T14:02:25Z", "kind": "ended",
               "detail": {"outcome": "abandoned"}})
    );
}

#[test]
fn department_json_is_design_md_shape() {
    let (_test, reader) = scripted();
    let report = reader.department_report(&the_hour()).unwrap();
    let pediatrics = report.iter().find(|d| d.id == "pediatrics").unwrap();
    // DESIGN.md's example, byte for byte, field order included.
    assert_eq!(
        serde_json::to_string(&json!({ "departments": [pediatrics] })).unwrap(),
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(
            r#"{"departments":[{"id":"pediatrics","offered":2,"connected":2,"abandoned":0,"abandonment_rate":0.0,"time_to_connect_ms":{"p50":3100,"p90":5200},"within_sla":1.0}]}"#
        ).unwrap())
        .unwrap()
    );
    assert_eq!(
        serde_json::to_string(pediatrics).unwrap(),
        r#"{"id":"pediatrics","offered":2,"connected":2,"abandoned":0,"abandonment_rate":0.0,"time_to_connect_ms":{"p50":3100,"p90":5200},"within_sla":1.0}"#
    );
    let dermatology = report.iter().find(|d| d.id == "dermatology").unwrap();
    assert_eq!(
        serde_json::to_string(dermatology).unwrap(),
        r#"{"id":"dermatology","offered":1,"connected":0,"abandoned":0,"abandonment_rate":0.0,"time_to_connect_ms":{"p50":null,"p90":null},"within_sla":0.0}"#
    );
    assert_eq!(
        serde_json::to_value(DepartmentReport::empty("orthopedics")).unwrap(),
        json!({"id": "orthopedics", "offered": 0, "connected": 0, "abandoned": 0,
               "abandonment_rate": 0.0, "time_to_connect_ms": {"p50": null, "p90": null},
               "within_sla": 0.0})
    );
}

#[test]
fn other_reports_json_shapes() {
    let (_test, reader) = scripted();
    let agents = reader.agent_report(&the_hour()).unwrap();
    assert_eq!(
        serde_json::to_string(&agents[0]).unwrap(),
        r#"{"id":"1001","offered":2,"answered":1,"no_answer":1,"busy":0,"misses":1,"talk_ms":60000,"interrupted":0}"#
    );
    let sources = reader.source_report(&the_hour()).unwrap();
    assert_eq!(
        serde_json::to_string(&sources[2]).unwrap(),
        r#"{"source":"urgent-care-campaign","calls":1,"offered":1,"connected":1,"abandoned":0,"overflowed":0,"rejected":0,"after_hours":0,"interrupted":0,"in_progress":0,"time_to_connect_ms":{"p50":10000,"p90":10000}}"#
    );
    let window = reader
        .abandonment_window(&TimeRange::new(at(100_000), at(300_000)).unwrap())
        .unwrap();
    assert_eq!(
        serde_json::to_string(&window).unwrap(),
        r#"[{"department":"cardiology","resolved":2,"abandoned":1,"abandonment_rate":0.5}]"#
    );
}

#[test]
fn reports_survive_reopening() {
    let (test, _reader) = scripted();
    let path = test.path.clone();
    test.journal.close(PATIENCE).unwrap();
    let reader = Reader::open(&path).unwrap();
    assert_eq!(reader.department_report(&the_hour()).unwrap().len(), 5);
    assert_eq!(reader.recent_calls(100).unwrap().len(), 12);
}
