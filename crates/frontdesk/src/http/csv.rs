//! CSV exports (issue 26, part 3): the calls, the leads and each report as
//! a spreadsheet reads them, with `?format=csv` or `Accept: text/csv` on
//! the JSON route (`GET /api/calls`, `/api/leads`, `/api/reports/*`).
//!
//! # The table
//! - The columns of each export are named here, in one place ([`CALLS`],
//!   [`LEADS`], [`DEPARTMENTS`], [`AGENTS`], [`SOURCES`],
//!   [`LEAD_REPORT`]); README's API section lists them. The first line is
//!   their names. Each column reads one field of the route's JSON (a
//!   nested one such as `time_to_connect_ms.p50` becomes
//!   `time_to_connect_ms_p50`), so a value means in CSV what it means in
//!   JSON. An empty cell is JSON's `null`.
//! - Times are in the clinic's time zone (`[clinic] time_zone`) with its
//!   offset, to the second: `2026-03-02T08:00:09-06:00`.
//! - Rows are the range `from=`/`to=` (RFC 3339; by default the day
//!   before now), newest first; an export stops at [`MAX_ROWS`] rows and
//!   answers 422 past that (narrow the range).
//! - Quoting is RFC 4180's, by the `csv` crate.
//!
//! # CSV injection
//! A cell that a spreadsheet would run as a formula — one that starts
//! with `=`, `+`, `-`, `@`, a tab or a carriage return — is written with
//! a `'` before it, so that `=HYPERLINK(…)` typed by a patient into a web
//! form shows as text in a manager's spreadsheet (OWASP's advice). A cell
//! that is a plain number (`+13125550142`, `-5`) is no formula and is
//! left as it is.

use std::borrow::Cow;

use axum::http::header::{ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ivr::jiff::Timestamp;
use ivr::jiff::tz::TimeZone;
use serde_json::Value;

use super::error_response;

/// The most rows one export holds.
pub const MAX_ROWS: usize = 100_000;

/// How a column's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// As the JSON has it (text, number, `true`/`false`; empty for null).
    Plain,
    /// An RFC 3339 time, written in the clinic's zone with its offset.
    Time,
    /// A count the JSON leaves out when zero.
    Count,
}

/// One column: its name in the header line, the JSON pointer of its
/// value in one element of the route's list, and how it is written.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The header's name.
    pub name: &'static str,
    /// The JSON pointer (`/time_to_connect_ms/p50`).
    pub path: &'static str,
    /// How it is written.
    pub kind: Kind,
}

const fn plain(name: &'static str, path: &'static str) -> Column {
    Column {
        name,
        path,
        kind: Kind::Plain,
    }
}

const fn time(name: &'static str, path: &'static str) -> Column {
    Column {
        name,
        path,
        kind: Kind::Time,
    }
}

const fn count(name: &'static str, path: &'static str) -> Column {
    Column {
        name,
        path,
        kind: Kind::Count,
    }
}

/// `GET /api/calls`: the journal's row of each call.
pub const CALLS: &[Column] = &[
    plain("id", "/id"),
    time("started_at", "/started_at"),
    plain("caller", "/caller"),
    plain("dialed", "/dialed"),
    plain("source", "/source"),
    plain("branch", "/branch"),
    plain("department", "/department"),
    plain("priority", "/priority"),
    plain("agent", "/agent"),
    plain("outcome", "/outcome"),
    time("answered_at", "/answered_at"),
    time("queued_at", "/queued_at"),
    time("connected_at", "/connected_at"),
    time("ended_at", "/ended_at"),
    plain("wait_ms", "/wait_ms"),
    plain("talk_ms", "/talk_ms"),
    count("transfers", "/transfers"),
    plain("sla_ms", "/sla_ms"),
];

/// `GET /api/leads`: each lead without its history.
pub const LEADS: &[Column] = &[
    plain("id", "/id"),
    time("created_at", "/created_at"),
    plain("kind", "/kind"),
    plain("source", "/source"),
    plain("campaign", "/campaign"),
    plain("name", "/name"),
    plain("phone", "/phone"),
    plain("email", "/email"),
    plain("message", "/message"),
    plain("postal_code", "/postal_code"),
    plain("department", "/department"),
    plain("intent", "/intent/matched"),
    plain("emergency", "/emergency"),
    plain("branch", "/branch"),
    plain("priority", "/priority"),
    plain("owner", "/owner"),
    plain("state", "/state"),
    plain("outcome", "/outcome"),
    time("respond_by", "/respond_by"),
    time("first_contact_at", "/first_contact_at"),
    time("snoozed_until", "/snoozed_until"),
];

/// `GET /api/reports/departments`.
pub const DEPARTMENTS: &[Column] = &[
    plain("id", "/id"),
    plain("offered", "/offered"),
    plain("connected", "/connected"),
    plain("abandoned", "/abandoned"),
    plain("abandonment_rate", "/abandonment_rate"),
    plain("time_to_connect_ms_p50", "/time_to_connect_ms/p50"),
    plain("time_to_connect_ms_p90", "/time_to_connect_ms/p90"),
    plain("within_sla", "/within_sla"),
    count("interrupted", "/interrupted"),
    count("callbacks_offered", "/callbacks/offered"),
    count("callbacks_accepted", "/callbacks/accepted"),
    count("callbacks_refused", "/callbacks/refused"),
    count("callbacks_completed", "/callbacks/completed"),
    count("callbacks_failed", "/callbacks/failed"),
];

/// `GET /api/reports/agents`.
pub const AGENTS: &[Column] = &[
    plain("id", "/id"),
    plain("offered", "/offered"),
    plain("answered", "/answered"),
    plain("no_answer", "/no_answer"),
    plain("busy", "/busy"),
    plain("misses", "/misses"),
    plain("talk_ms", "/talk_ms"),
    count("interrupted", "/interrupted"),
];

/// `GET /api/reports/sources`.
pub const SOURCES: &[Column] = &[
    plain("source", "/source"),
    plain("calls", "/calls"),
    plain("offered", "/offered"),
    plain("connected", "/connected"),
    plain("abandoned", "/abandoned"),
    plain("overflowed", "/overflowed"),
    plain("rejected", "/rejected"),
    plain("after_hours", "/after_hours"),
    count("interrupted", "/interrupted"),
    plain("in_progress", "/in_progress"),
    plain("time_to_connect_ms_p50", "/time_to_connect_ms/p50"),
    plain("time_to_connect_ms_p90", "/time_to_connect_ms/p90"),
];

/// `GET /api/reports/leads`: its `sources`, `departments` and `kinds`
/// lists in one table, `group` saying which (`source`, `department`,
/// `kind`) and `id` naming the row in it.
pub const LEAD_REPORT: &[Column] = &[
    plain("group", "/group"),
    plain("id", "/id"),
    plain("leads", "/leads"),
    plain("contacted_within_window", "/contacted_within_window"),
    plain("speed_to_lead_ms_p50", "/speed_to_lead_ms/p50"),
    plain("speed_to_lead_ms_p90", "/speed_to_lead_ms/p90"),
    plain("leaked", "/leaked"),
    plain("booked", "/booked"),
];

/// The rows of `GET /api/reports/leads`' JSON for [`LEAD_REPORT`].
pub fn lead_report_rows(report: &Value) -> Vec<Value> {
    let mut rows = Vec::new();
    for (group, list, key) in [
        ("source", "sources", "source"),
        ("department", "departments", "department"),
        ("kind", "kinds", "kind"),
    ] {
        for item in report[list].as_array().into_iter().flatten() {
            let mut row = item.clone();
            if let Value::Object(fields) = &mut row {
                fields.insert("group".into(), Value::from(group));
                fields.insert("id".into(), item[key].clone());
            }
            rows.push(row);
        }
    }
    rows
}

/// Whether the request asks for CSV: `?format=csv`, or no `format` and an
/// `Accept` naming `text/csv`. `Err` for another `format` than `csv` or
/// `json` (a 400).
pub fn wanted(headers: &HeaderMap, format: Option<&str>) -> Result<bool, UnknownFormat> {
    match format {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(_) => Err(UnknownFormat),
        None => Ok(headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|item| {
                item.split(';')
                    .next()
                    .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/csv"))
            })),
    }
}

/// `format=` named neither `csv` nor `json`: a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownFormat;

impl IntoResponse for UnknownFormat {
    fn into_response(self) -> Response {
        error_response(StatusCode::BAD_REQUEST, "format must be csv or json")
    }
}

/// The CSV of `rows` (each an element of the route's JSON list) under
/// `columns`, times in `zone`.
pub fn table(columns: &[Column], rows: &[Value], zone: &TimeZone) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer.write_record(columns.iter().map(|column| column.name))?;
    for row in rows {
        writer.write_record(columns.iter().map(|column| {
            let text = cell(row.pointer(column.path), column.kind, zone);
            defuse(&text).into_owned()
        }))?;
    }
    writer
        .into_inner()
        .map_err(|error| error.into_error().into())
}

/// The answer: `text/csv` named `name.csv`, or 500 if it could not be
/// written (it cannot, into memory; still not a panic).
pub fn response(name: &str, columns: &[Column], rows: &[Value], zone: &TimeZone) -> Response {
    match table(columns, rows, zone) {
        Ok(body) => (
            [
                (CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}.csv\""),
                ),
            ],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "a CSV export could not be written");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the CSV could not be written",
            )
        }
    }
}

/// 422: more rows than one export holds.
pub fn too_many() -> Response {
    error_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        &format!("more than {MAX_ROWS} rows: narrow from= and to="),
    )
}

/// One value as text.
fn cell(value: Option<&Value>, kind: Kind, zone: &TimeZone) -> String {
    match (value, kind) {
        (None | Some(Value::Null), Kind::Count) => "0".into(),
        (None | Some(Value::Null), _) => String::new(),
        (Some(Value::String(text)), Kind::Time) => match text.parse::<Timestamp>() {
            Ok(at) => at
                .to_zoned_datetime(zone.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
            Err(_) => text.clone(),
        },
        (Some(Value::String(text)), _) => text.clone(),
        (Some(Value::Array(items)), _) => items
            .iter()
            .map(|item| cell(Some(item), Kind::Plain, zone))
            .collect::<Vec<_>>()
            .join(";"),
        (Some(other), _) => other.to_string(),
    }
}

/// `'` before a cell a spreadsheet would take for a formula (module docs).
pub fn defuse(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') if !is_number(cell) => {
            Cow::Owned(format!("'{cell}"))
        }
        _ => Cow::Borrowed(cell),
    }
}

/// `[+-]digits[.digits]`.
fn is_number(cell: &str) -> bool {
    let digits = cell.strip_prefix(['+', '-']).unwrap_or(cell);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn chicago() -> TimeZone {
        TimeZone::get("America/Chicago").unwrap()
    }

    #[test]
    fn formulas_are_defused_and_numbers_are_not() {
        for (cell, written) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("+13125550142", "+13125550142"),
            ("-5", "-5"),
            ("0.67", "0.67"),
            ("my knee hurts", "my knee hurts"),
            ("", ""),
        ] {
            assert_eq!(defuse(cell), written, "{cell:?}");
        }
    }

    #[test]
    fn a_table_has_named_columns_zoned_times_and_quotes() {
        let rows = [json!({
            "id": "l-1",
            "created_at": "2026-03-02T14:00:09Z",
            "message": "knee, \"left\"\n=1+2",
            "intent": {"matched": "knee"},
            "emergency": false,
            "respond_by": null,
        })];
        let columns = [
            plain("id", "/id"),
            time("created_at", "/created_at"),
            plain("message", "/message"),
            plain("intent", "/intent/matched"),
            plain("emergency", "/emergency"),
            time("respond_by", "/respond_by"),
            count("transfers", "/transfers"),
        ];
        let text = String::from_utf8(table(&columns, &rows, &chicago()).unwrap()).unwrap();
        assert_eq!(
            text,
            "id,created_at,message,intent,emergency,respond_by,transfers\r\n\
             l-1,2026-03-02T08:00:09-06:00,\"knee, \"\"left\"\"\n=1+2\",knee,false,,0\r\n"
        );
    }

    #[test]
    fn csv_is_asked_for_by_format_or_accept() {
        let mut headers = HeaderMap::new();
        assert!(!wanted(&headers, None).unwrap());
        assert!(wanted(&headers, Some("csv")).unwrap());
        assert!(wanted(&headers, Some("xml")).is_err());
        headers.insert(
            ACCEPT,
            "application/json;q=0.5, text/csv;q=0.9".parse().unwrap(),
        );
        assert!(wanted(&headers, None).unwrap());
        assert!(!wanted(&headers, Some("json")).unwrap());
    }

    #[test]
    fn the_lead_report_is_one_table_of_its_three_lists() {
        let report = json!({
            "sources": [{"source": "website", "leads": 1}],
            "departments": [{"department": "orthopedics", "leads": 1}],
            "kinds": [{"kind": "web_form", "leads": 1}],
        });
        let rows = lead_report_rows(&report);
        let ids: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r["group"].as_str().unwrap(), r["id"].as_str().unwrap()))
            .collect();
        assert_eq!(
            ids,
            [
                ("source", "website"),
                ("department", "orthopedics"),
                ("kind", "web_form")
            ]
        );
    }

    proptest! {
        #[test]
        fn no_written_cell_starts_like_a_formula_unless_it_is_a_number(cell in "\\PC{0,12}|[=+@\\t\\r-].{0,8}") {
            let written = defuse(&cell);
            if let Some(first) = written.as_bytes().first() {
                prop_assert!(
                    !matches!(first, b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') || is_number(&written)
                );
            }
            prop_assert!(written.ends_with(cell.as_str()));
        }

        #[test]
        fn a_table_reads_back_as_written(cells in proptest::collection::vec("\\PC{0,10}", 1..5)) {
            let row = json!({"a": cells.join("|")});
            let bytes = table(&[plain("a", "/a")], &[row], &chicago()).unwrap();
            let mut reader = csv::Reader::from_reader(bytes.as_slice());
            let read: Vec<String> = reader
                .records()
                .map(|record| record.unwrap()[0].to_string())
                .collect();
            prop_assert_eq!(read, vec![defuse(&cells.join("|")).into_owned()]);
        }
    }
}
