//! `frontdesk check PATH`: validate a dialplan.

use std::path::Path;
use std::process::ExitCode;

/// Checks the dialplan at `path`. Exit 0 when it is valid (a one-line
/// summary on stdout, then each queue's routing policy with the dialplan's
/// defaults applied, as the daemon will route); otherwise every error on stderr as
/// `PATH:LINE:COLUMN: message`, then a count, and exit 1.
pub fn check(path: &Path) -> ExitCode {
    match ivr::Dialplan::load(path) {
        Ok(plan) => {
            println!(
                "{}: ok ({}: {} numbers, {} menus, {} queues, {} agents)",
                path.display(),
                plan.clinic().name(),
                plan.numbers().len(),
                plan.menus().count(),
                plan.queues().count(),
                plan.agents().len(),
            );
            for queue in plan.queues() {
                println!("  queue {}: {}", queue.id(), ivr::describe_queue(queue));
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            let count = errors.len();
            eprintln!(
                "{}: {count} error{}",
                path.display(),
                if count == 1 { "" } else { "s" }
            );
            ExitCode::FAILURE
        }
    }
}
