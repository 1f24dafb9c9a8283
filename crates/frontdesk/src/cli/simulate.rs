//! `frontdesk simulate`: walk a dialplan's IVR with no network.
//!
//! Drives the daemon's own IVR engine (`ivr::Session`) on a virtual clock
//! (see `ivr::simulate` for how prompts, digits and timeouts are played
//! out), prints each step with its time from the start of the call, then
//! the decision: queue, priority, source, branch, known patient, or the
//! hang-up.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use ivr::jiff::Timestamp;
use ivr::simulate::{Decision, parse_time, simulate as run};

/// Runs one simulated call and prints it. Exit 0 once the call is decided;
/// 1 for an invalid dialplan; 2 for bad arguments (an unknown number, an
/// unreadable `--at`).
pub fn simulate(
    dialplan: &Path,
    number: &str,
    at: Option<&str>,
    digits: &str,
    caller: &str,
) -> ExitCode {
    let plan = match ivr::Dialplan::load(dialplan) {
        Ok(plan) => Arc::new(plan),
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            return ExitCode::FAILURE;
        }
    };
    if let Some(bad) = digits
        .chars()
        .find(|c| !(c.is_ascii_digit() || matches!(c, '*' | '#' | '.' | 'A'..='D')))
    {
        eprintln!(
            "simulate: --digits may hold 0-9, *, #, A-D, and . for \"press nothing here\"; not {bad:?}"
        );
        return ExitCode::from(2);
    }
    let start = match at {
        None => Timestamp::now(),
        Some(text) => match parse_time(&plan, text) {
            Ok(start) => start,
            Err(message) => {
                eprintln!("simulate: --at {message}");
                return ExitCode::from(2);
            }
        },
    };
    let simulation = match run(Arc::clone(&plan), number, caller, start, digits) {
        Ok(simulation) => simulation,
        Err(error) => {
            eprintln!(
                "simulate: {error} (a caller would get {} Not Found)",
                error.sip_status()
            );
            return ExitCode::from(2);
        }
    };
    let zone = plan.clinic().time_zone().clone();
    let local = start.to_zoned_datetime(zone);
    println!(
        "dialplan {}: {} ({})",
        dialplan.display(),
        plan.clinic().name(),
        plan.clinic().time_zone_name()
    );
    println!(
        "call at {} ({start})",
        local.strftime("%A %Y-%m-%d %H:%M:%S %Z")
    );
    for step in &simulation.steps {
        let offset = step.at.duration_since(start).as_secs_f64();
        println!("{:>8}  {}", format!("+{offset:.1}s"), step.text);
    }
    match &simulation.decision {
        Decision::Queued(decision) => {
            let context = &decision.context;
            println!("decision: queue {}", decision.queue);
            if let Some(queue) = plan.queue(decision.queue.as_str()) {
                println!("  queue policy:  {}", ivr::describe_queue(queue));
            }
            println!("  priority:      {}", decision.priority);
            println!("  source:        {}", context.source);
            println!(
                "  dialed:        {} (number {})",
                context.dialed, context.number
            );
            println!("  caller:        {}", context.caller);
            println!(
                "  branch:        {}",
                context.branch.as_ref().map_or("-", |b| b.as_str())
            );
            println!(
                "  known patient: {}",
                context
                    .known_patient
                    .as_ref()
                    .map_or("no".to_string(), ivr::describe_patient)
            );
            println!(
                "  after hours:   {}",
                if context.after_hours { "yes" } else { "no" }
            );
        }
        Decision::HungUp {
            after_message: Some(message),
        } => println!("decision: hang up after {message}"),
        Decision::HungUp {
            after_message: None,
        } => println!("decision: hang up without a message"),
        Decision::Stuck => println!("decision: none (the IVR stopped with nothing to wait for)"),
    }
    if !simulation.unused_digits.is_empty() {
        println!(
            "note: digits never pressed (the call was decided first): {}",
            simulation.unused_digits
        );
    }
    ExitCode::SUCCESS
}
