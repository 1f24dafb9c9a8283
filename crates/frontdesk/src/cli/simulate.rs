//! `frontdesk simulate`: walk a dialplan's IVR with no network, or
//! classify a lead.
//!
//! `--number` drives the daemon's own IVR engine (`ivr::Session`) on a
//! virtual clock (see `ivr::simulate` for how prompts, digits and timeouts
//! are played out), prints each step with its time from the start of the
//! call, then the decision: queue, priority, source, branch, known
//! patient, or the hang-up. `--lead` runs `ivr::Dialplan::route_lead`, as
//! `POST /api/leads` does. Both end with the agent order ([`agent_order`]):
//! routing's own agent table, every agent signed in and idle, asked again
//! and again for its next choice with the branch preference.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use ivr::jiff::Timestamp;
use ivr::simulate::{Decision, parse_time, simulate_saying as run};
use routing::{AgentTable, Millis, Preferences, Strategy};

use crate::app::plan_map;

/// Runs one simulated call and prints it. Exit 0 once the call is decided;
/// 1 for an invalid dialplan; 2 for bad arguments (an unknown number, an
/// unreadable `--at`).
pub fn simulate(
    dialplan: &Path,
    number: &str,
    at: Option<&str>,
    digits: &str,
    say: Option<&str>,
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
    let simulation = match run(Arc::clone(&plan), number, caller, start, digits, say) {
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
    if let Some(said) = say {
        println!("{}", describe_saying(&plan, &simulation, said));
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
            let language = context
                .known_patient
                .as_ref()
                .and_then(|patient| patient.language.as_ref())
                .map(|language| language.as_str());
            println!(
                "  agents:        {}",
                describe_order(
                    &plan,
                    decision.queue.as_str(),
                    context.branch.as_ref().map(|b| b.as_str()),
                    language
                )
            );
        }
        Decision::Voicemail(decision) => {
            println!("decision: voicemail for {}", decision.queue);
            println!("  caller:        {}", decision.context.caller);
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

/// Classifies one lead and prints it. Exit 0; 1 for an invalid dialplan;
/// 2 for bad arguments (an unknown source).
pub fn lead(dialplan: &Path, text: &str, postal: Option<&str>, source: Option<&str>) -> ExitCode {
    let plan = match ivr::Dialplan::load(dialplan) {
        Ok(plan) => plan,
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            return ExitCode::FAILURE;
        }
    };
    let source = match source {
        None => None,
        Some(id) => match plan.source(id) {
            Some(source) => Some(source),
            None => {
                let known: Vec<String> = plan.sources().map(|s| s.id().to_string()).collect();
                eprintln!(
                    "simulate: --source {id}: no such source in {} (known: {})",
                    dialplan.display(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
                return ExitCode::from(2);
            }
        },
    };
    let route = plan.route_lead(source, text, postal, None);
    println!(
        "dialplan {}: {} ({})",
        dialplan.display(),
        plan.clinic().name(),
        plan.clinic().time_zone_name()
    );
    match source {
        Some(source) => println!(
            "lead from {} (priority {}, respond within {})",
            source.id(),
            source.priority(),
            human(source.respond_within())
        ),
        None => println!("lead from no source (priority routine)"),
    }
    println!("  message:    {text:?}");
    println!(
        "  words:      {}",
        ivr::leads::intent::words(text).join(" ")
    );
    if let Some(postal) = postal {
        println!(
            "  postal:     {postal} (read as {})",
            ivr::leads::branch::normalize_postal_code(postal)
        );
    }
    match &route.intent {
        Some(found) => println!(
            "intent:       rule {} (queue {}{}), phrase {:?}",
            found.rule + 1,
            found.queue,
            if found.emergency { ", emergency" } else { "" },
            found.phrase
        ),
        None => println!(
            "intent:       no rule matches: {}",
            ivr::leads::FALLBACK_QUEUE
        ),
    }
    println!(
        "emergency:    {}",
        if route.emergency { "yes" } else { "no" }
    );
    match &route.branch {
        Some(ivr::leads::LeadBranch::PostalCode(found)) => println!(
            "branch:       {} (postal prefix {})",
            found.branch, found.prefix
        ),
        Some(ivr::leads::LeadBranch::Directory(branch)) => {
            println!("branch:       {branch} (the patient's directory entry)")
        }
        None if postal.is_some() => println!("branch:       - (no postal prefix matches)"),
        None => println!("branch:       -"),
    }
    println!("decision: queue {}", route.queue);
    println!("  priority:   {}", route.priority);
    println!(
        "  agents:     {}",
        describe_order(
            &plan,
            route.queue.as_str(),
            route.branch.as_ref().map(|b| b.branch().as_str()),
            None
        )
    );
    ExitCode::SUCCESS
}

/// `5m`, `90s`, `1h`: a duration as the dialplan writes it.
fn human(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs();
    if seconds > 0 && seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else if seconds > 0 && seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// The agent order as one line: `1003 Carol (south) → 1006 Frank
/// (north)`; agents rung together (ring-all) joined by ` + `.
fn describe_order(
    plan: &ivr::Dialplan,
    queue: &str,
    branch: Option<&str>,
    language: Option<&str>,
) -> String {
    let order = agent_order(plan, queue, branch, language);
    if order.is_empty() {
        return "none can serve this queue".to_string();
    }
    order
        .iter()
        .map(|group| {
            group
                .iter()
                .map(|id| match plan.agent(id) {
                    Some(agent) => format!(
                        "{id} {} ({})",
                        agent.name(),
                        agent.branch().map_or("no branch", |b| b.as_str())
                    ),
                    None => id.clone(),
                })
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

/// The order routing would offer `queue`'s work to its agents, were every
/// agent signed in and idle since the same instant: routing's own agent
/// table, asked for its next choice until none is left (a ring-all queue
/// rings a whole preference tier at once: one group per tier). Agents of
/// `branch` come first, then the rest, as for calls.
pub fn agent_order(
    plan: &ivr::Dialplan,
    queue: &str,
    branch: Option<&str>,
    language: Option<&str>,
) -> Vec<Vec<String>> {
    let (queues, agents) = plan_map::routing_config(plan);
    let Some(config) = queues.iter().find(|q| q.id.as_str() == queue) else {
        return Vec::new();
    };
    let table = AgentTable::new();
    let ids: Vec<routing::AgentId> = agents.iter().map(|a| a.id.clone()).collect();
    if table.replace_all(agents).is_err() {
        return Vec::new();
    }
    for id in &ids {
        // Every agent of a checked plan is in the table just filled.
        let _ = table.register(id, Millis::new(0));
    }
    let selection = table.selection(&config.skills, config.strategy);
    let branch = branch.map(routing::Branch::new);
    let language = language.map(routing::Language::new);
    let preferences = Preferences {
        branch: branch.as_ref(),
        language: language.as_ref(),
        avoid: &[],
    };
    let mut order = Vec::new();
    if config.strategy == Strategy::RingAll {
        loop {
            let mut group = Vec::new();
            if table.claim_all(&selection, &preferences, &mut group) == 0 {
                break;
            }
            order.push(group.iter().map(|id| id.to_string()).collect());
        }
    } else {
        while let Some(claim) = table.choose_and_claim(&selection, &preferences) {
            order.push(vec![claim.agent.to_string()]);
        }
    }
    order
}

/// What `--say` matched at the first speech menu, by the matcher the
/// recogniser's words go through: `said "heart doctor": option 2 of menu
/// main (phrase "heart")`.
fn describe_saying(
    plan: &ivr::Dialplan,
    simulation: &ivr::simulate::Simulation,
    said: &str,
) -> String {
    // The menu listening when the text was said: the first that listened.
    let listened = simulation.steps.iter().find_map(|step| {
        step.text
            .strip_prefix("menu ")?
            .strip_suffix(": listening for speech")
    });
    let menu = listened.and_then(|id| plan.menu(id));
    let (Some(menu), None) = (menu, &simulation.unsaid) else {
        return format!("said {said:?}: no menu that takes speech was reached");
    };
    let Some(speech) = menu.speech() else {
        return format!("said {said:?}: menu {} takes no speech", menu.id());
    };
    match speech.matcher().choose(said) {
        Some(choice) => format!(
            "said {said:?}: option {} of menu {} (phrase {:?})",
            choice.option,
            menu.id(),
            choice.phrase
        ),
        None => format!(
            "said {said:?}: no phrase of menu {} matches; the menu falls back to keys",
            menu.id()
        ),
    }
}
