//! A call that ended more than a second before the process is SIGKILLed is
//! in the journal when it is reopened (issue 10).
//!
//! The parent test runs this same test executable again as a child, with
//! only the ignored `child_records_then_waits_to_be_killed` test and an
//! environment variable naming the database. The child records N complete
//! calls and says so on stdout, then waits, never flushing nor closing:
//! durability must come from the writer's batching alone. The parent waits
//! 1.5 s (the requirement's "more than a second before", not a wait for
//! readiness; the child's readiness is its line on stdout), kills it with
//! SIGKILL, reopens the file as the daemon would at restart, and counts.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use records::{Journal, JournalConfig, Outcome};
use support::simple_call;

const CHILD_DATABASE: &str = "RECORDS_DURABILITY_CHILD_DATABASE";
const CALLS: usize = 200;

#[test]
#[ignore = "the child of killed_process_loses_no_ended_call, run by it"]
fn child_records_then_waits_to_be_killed() {
    let path = std::env::var(CHILD_DATABASE).expect("run by killed_process_loses_no_ended_call");
    // The daemon's defaults: what is proven is what ships.
    let (_journal, handle) = Journal::open(path, JournalConfig::default()).unwrap();
    for n in 0..CALLS {
        for entry in simple_call(&format!("c{n:03}"), n as i64 * 1_000) {
            handle.record(entry).unwrap();
        }
    }
    println!("recorded {CALLS} ended calls");
    loop {
        std::thread::park();
    }
}

#[test]
fn killed_process_loses_no_ended_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_records_then_waits_to_be_killed",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DATABASE, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ready = false;
    for line in stdout.lines() {
        if line
            .unwrap()
            .contains(&format!("recorded {CALLS} ended calls"))
        {
            ready = true;
            break;
        }
    }
    assert!(
        ready,
        "the child exited before recording: {:?}",
        child.wait()
    );

    // The requirement's "more than a second before": see the module docs.
    std::thread::sleep(Duration::from_millis(1_500));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "killed with SIGKILL: {status:?}");

    let (journal, _handle) = Journal::open(&path, JournalConfig::default()).unwrap();
    let reader = journal.reader().unwrap();
    let calls = reader.recent_calls(10 * CALLS).unwrap();
    assert_eq!(calls.len(), CALLS);
    for call in &calls {
        assert_eq!(call.outcome, Some(Outcome::Connected), "{}", call.id);
        assert!(call.ended_at.is_some(), "{}", call.id);
        let timeline = reader.call(call.id.as_str()).unwrap().unwrap();
        assert_eq!(timeline.events.len(), 4, "{}", call.id);
    }
}
