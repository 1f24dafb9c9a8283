//! Pass 3b: whole-plan checks on a plan whose every item is valid.
//!
//! Graph checks over menus and queues, then the clinic safety rules:
//! every entry plays the emergency notice before anything else, in and out
//! of hours, and no path ends in silence, unless the number is marked
//! `exempt_from_safety`.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use super::RawPlan;
use super::backticked;
use super::build::same_prompt;
use crate::diagnostic::{ErrorKind, Sink};
use crate::ids::{MenuId, QueueId};
use crate::plan::{Dialplan, Number, Overflow, Prompt, Target};

/// Whose target a span belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A number's in-hours `then`.
    Number(usize),
    /// A number's own `after_hours`.
    NumberAfterHours(usize),
    /// The clinic's `[after_hours]`.
    ClinicAfterHours,
    /// A menu's options, `on_no_input` or `on_invalid`.
    Menu(MenuId),
    /// Anything else.
    Other,
}

/// Positions the checks point at, gathered while building.
#[derive(Debug, Default)]
pub(crate) struct Spans {
    /// Each number's `number` value.
    pub numbers: Vec<Range<usize>>,
    /// Each number's `then` value.
    pub number_then: Vec<Range<usize>>,
    /// Each menu's key in `[menus.<id>]`.
    pub menus: HashMap<MenuId, Range<usize>>,
    /// Each menu's `on_no_input` value.
    pub menu_no_input: HashMap<MenuId, Range<usize>>,
    /// Each queue's key in `[queues.<id>]`.
    pub queues: HashMap<QueueId, Range<usize>>,
    /// Each queue's `on_max_wait` value.
    pub queue_overflow: HashMap<QueueId, Range<usize>>,
    /// Every `hangup = true` target and whose it is.
    pub silent: Vec<(Owner, Range<usize>)>,
}

pub(super) fn run(sink: &mut Sink<'_>, plan: &Dialplan, spans: &Spans, raw: &RawPlan) {
    after_hours_declared(sink, plan, raw);
    queues_without_agents(sink, plan, spans);
    overflow_loops(sink, plan, spans);
    let all_entries: Vec<usize> = (0..plan.numbers.len()).collect();
    let reachable = reachable_menus(plan, &all_entries);
    for (id, span) in sorted_spans(&spans.menus) {
        if !reachable.contains(id) {
            sink.error(
                ErrorKind::UnreachableMenu,
                span.clone(),
                format!(
                    "menu `{id}` is unreachable: no number, menu or after-hours path leads to it"
                ),
            );
        }
    }
    loops_without_exit(sink, plan, spans);
    emergency_notice_first(sink, plan, spans);
    no_silence(sink, plan, spans);
}

/// A clinic that ever closes needs an after-hours path for every number.
fn after_hours_declared(sink: &mut Sink<'_>, plan: &Dialplan, raw: &RawPlan) {
    let closes = !plan.hours.is_always_open() || !plan.hours.holidays().is_empty();
    if !closes || plan.after_hours.is_some() {
        return;
    }
    let stranded: Vec<&str> = plan
        .numbers
        .iter()
        .filter(|n| n.after_hours().is_none())
        .map(|n| n.number())
        .collect();
    if stranded.is_empty() {
        return;
    }
    let span = raw
        .hours
        .first()
        .map(|h| h.days.span())
        .or_else(|| raw.holidays.first().map(|h| h.date.span()))
        .unwrap_or(0..0);
    sink.error(
        ErrorKind::Safety,
        span,
        format!(
            "the clinic has hours or holidays but no `[after_hours]`: calls to {} outside hours would have nowhere to go",
            backticked(&stranded)
        ),
    );
}

fn queues_without_agents(sink: &mut Sink<'_>, plan: &Dialplan, spans: &Spans) {
    for queue in plan.queues() {
        if plan.agents_for(queue).next().is_none() {
            let span = spans.queues.get(queue.id()).cloned().unwrap_or(0..0);
            let skills: Vec<&str> = queue.skills().iter().map(|s| s.as_str()).collect();
            sink.error(
                ErrorKind::QueueWithoutAgent,
                span,
                format!(
                    "no agent can serve queue `{}`: none has all of its skills ({})",
                    queue.id(),
                    backticked(&skills)
                ),
            );
        }
    }
}

fn overflow_loops(sink: &mut Sink<'_>, plan: &Dialplan, spans: &Spans) {
    let mut reported: BTreeSet<Vec<QueueId>> = BTreeSet::new();
    for start in plan.queues() {
        let mut path: Vec<QueueId> = vec![start.id().clone()];
        let mut current = start;
        while let Some(Overflow::Queue { queue: next, .. }) = current.on_max_wait() {
            if let Some(at) = path.iter().position(|q| q == next) {
                let mut cycle: Vec<QueueId> = path[at..].to_vec();
                let min = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, q)| *q)
                    .map_or(0, |(i, _)| i);
                cycle.rotate_left(min);
                if reported.insert(cycle.clone()) {
                    let mut names: Vec<String> = cycle.iter().map(|q| format!("`{q}`")).collect();
                    names.push(format!("`{}`", cycle[0]));
                    let span = spans.queue_overflow.get(&cycle[0]).cloned().unwrap_or(0..0);
                    sink.error(
                        ErrorKind::OverflowLoop,
                        span,
                        format!(
                            "queues overflow in a loop: {} (end the chain with a queue without `max_wait`, or a `message`)",
                            names.join(" → ")
                        ),
                    );
                }
                break;
            }
            let Some(queue) = plan.queue(next.as_str()) else {
                break;
            };
            path.push(next.clone());
            current = queue;
        }
    }
}

/// The targets an entry can lead to: in hours and, when the clinic ever
/// closes, after hours.
fn entry_targets<'p>(plan: &'p Dialplan, number: &'p Number) -> Vec<&'p Target> {
    let mut targets = vec![number.then()];
    if let Some(after) = effective_after_hours(plan, number) {
        targets.push(after.1);
    }
    targets
}

/// The after-hours prompts and target a number uses, if the clinic closes.
fn effective_after_hours<'p>(
    plan: &'p Dialplan,
    number: &'p Number,
) -> Option<(&'p [Prompt], &'p Target)> {
    let closes = !plan.hours.is_always_open() || !plan.hours.holidays().is_empty();
    if !closes {
        return None;
    }
    let after = number.after_hours().or(plan.after_hours())?;
    Some((after.announce(), after.then()))
}

fn menu_targets(plan: &Dialplan, id: &MenuId) -> Vec<Target> {
    match plan.menu(id.as_str()) {
        Some(menu) => menu
            .options()
            .values()
            .chain([menu.on_no_input(), menu.on_invalid()])
            .cloned()
            .collect(),
        None => Vec::new(),
    }
}

fn reachable_menus(plan: &Dialplan, entries: &[usize]) -> BTreeSet<MenuId> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<MenuId> = Vec::new();
    for &i in entries {
        let Some(number) = plan.numbers.get(i) else {
            continue;
        };
        for target in entry_targets(plan, number) {
            if let Target::Menu(id) = target {
                stack.push(id.clone());
            }
        }
    }
    while let Some(id) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        for target in menu_targets(plan, &id) {
            if let Target::Menu(next) = target {
                stack.push(next);
            }
        }
    }
    seen
}

fn loops_without_exit(sink: &mut Sink<'_>, plan: &Dialplan, spans: &Spans) {
    // A menu has a way out when one of its targets is not a menu, or is a
    // menu that has one. Iterate to a fixed point.
    let mut exits: BTreeSet<MenuId> = BTreeSet::new();
    loop {
        let before = exits.len();
        for menu in plan.menus() {
            if exits.contains(menu.id()) {
                continue;
            }
            let out = menu_targets(plan, menu.id()).iter().any(|t| match t {
                Target::Menu(next) => exits.contains(next),
                _ => true,
            });
            if out {
                exits.insert(menu.id().clone());
            }
        }
        if exits.len() == before {
            break;
        }
    }
    for (id, span) in sorted_spans(&spans.menus) {
        if exits.contains(id) {
            continue;
        }
        let mut trapped: BTreeSet<MenuId> = BTreeSet::new();
        let mut stack = vec![id.clone()];
        while let Some(m) = stack.pop() {
            if trapped.insert(m.clone()) {
                for t in menu_targets(plan, &m) {
                    if let Target::Menu(next) = t {
                        stack.push(next);
                    }
                }
            }
        }
        let names: Vec<&str> = trapped.iter().map(MenuId::as_str).collect();
        sink.error(
            ErrorKind::LoopWithoutExit,
            span.clone(),
            format!(
                "menu `{id}` loops with no way out: every choice leads only to menus {}, never to a queue or a message",
                backticked(&names)
            ),
        );
    }
    // A caller who presses nothing follows `on_no_input` from menu to menu;
    // that chain must end.
    let mut reported: BTreeSet<Vec<MenuId>> = BTreeSet::new();
    for menu in plan.menus() {
        if !exits.contains(menu.id()) {
            continue;
        }
        let mut path = vec![menu.id().clone()];
        let mut current = menu;
        while let Target::Menu(next) = current.on_no_input() {
            if let Some(at) = path.iter().position(|m| m == next) {
                let mut cycle = path[at..].to_vec();
                let min = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, m)| *m)
                    .map_or(0, |(i, _)| i);
                cycle.rotate_left(min);
                if reported.insert(cycle.clone()) {
                    let mut names: Vec<String> = cycle.iter().map(|m| format!("`{m}`")).collect();
                    names.push(format!("`{}`", cycle[0]));
                    let span = spans.menu_no_input.get(&cycle[0]).cloned().unwrap_or(0..0);
                    sink.error(
                        ErrorKind::LoopWithoutExit,
                        span,
                        format!(
                            "a caller who presses nothing loops forever: {} (let an `on_no_input` lead to a queue or a message)",
                            names.join(" → ")
                        ),
                    );
                }
                break;
            }
            let Some(next_menu) = plan.menu(next.as_str()) else {
                break;
            };
            path.push(next.clone());
            current = next_menu;
        }
    }
}

/// What a caller hears or meets first on a path.
enum First<'p> {
    Prompt(&'p Prompt),
    Queue(&'p QueueId),
    Silence,
}

fn first_of<'p>(plan: &'p Dialplan, prompts: &[&'p Prompt], then: &'p Target) -> First<'p> {
    if let Some(prompt) = prompts.first() {
        return First::Prompt(prompt);
    }
    match then {
        Target::Menu(id) => match plan.menu(id.as_str()) {
            Some(menu) => First::Prompt(menu.prompt()),
            None => First::Silence,
        },
        Target::Message(prompt) => First::Prompt(prompt),
        // `check` refuses a voicemail target without `[voicemail]`.
        Target::Voicemail(_) => match plan.voicemail() {
            Some(voicemail) => First::Prompt(voicemail.greeting()),
            None => First::Silence,
        },
        Target::Queue { queue, .. } => First::Queue(queue),
        Target::HangUp => First::Silence,
    }
}

fn emergency_notice_first(sink: &mut Sink<'_>, plan: &Dialplan, spans: &Spans) {
    let notice = plan.clinic.emergency_notice();
    for (i, number) in plan.numbers.iter().enumerate() {
        if number.exempt_from_safety().is_some() {
            continue;
        }
        let span = spans.numbers.get(i).cloned().unwrap_or(0..0);
        let own: Vec<&Prompt> = number.announce().iter().collect();
        let mut paths = vec![("", first_of(plan, &own, number.then()))];
        // After hours the number's own announce comes first; only when it
        // is empty can the after-hours path differ.
        if own.is_empty()
            && let Some((announce, then)) = effective_after_hours(plan, number)
        {
            let prompts: Vec<&Prompt> = announce.iter().collect();
            paths.push((" after hours", first_of(plan, &prompts, then)));
        }
        let fix = format!(
            "put `{}` first in `announce`, or set `exempt_from_safety = \"<reason>\"`",
            notice.id()
        );
        for (when, first) in paths {
            let problem = match first {
                First::Prompt(prompt) if same_prompt(prompt.id(), notice.id()) => continue,
                First::Prompt(prompt) => {
                    format!("plays `{}` before the emergency notice", prompt.id())
                }
                First::Queue(queue) => {
                    format!("goes to queue `{queue}` without playing the emergency notice")
                }
                First::Silence => "hangs up without playing the emergency notice".to_string(),
            };
            sink.error(
                ErrorKind::Safety,
                span.clone(),
                format!("number `{}`{when} {problem} ({fix})", number.number()),
            );
        }
    }
}

fn no_silence(sink: &mut Sink<'_>, plan: &Dialplan, spans: &Spans) {
    let guarded: Vec<usize> = plan
        .numbers
        .iter()
        .enumerate()
        .filter(|(_, n)| n.exempt_from_safety().is_none())
        .map(|(i, _)| i)
        .collect();
    let guarded_menus = reachable_menus(plan, &guarded);
    let clinic_after_hours_used = guarded.iter().any(|&i| {
        plan.numbers
            .get(i)
            .is_some_and(|n| n.after_hours().is_none() && effective_after_hours(plan, n).is_some())
    });
    for (owner, span) in &spans.silent {
        let guarded_here = match owner {
            Owner::Number(i) | Owner::NumberAfterHours(i) => guarded.contains(i),
            Owner::ClinicAfterHours => clinic_after_hours_used,
            Owner::Menu(id) => guarded_menus.contains(id),
            Owner::Other => true,
        };
        if guarded_here {
            sink.error(
                ErrorKind::Safety,
                span.clone(),
                "this path hangs up in silence: end it with a `message` or a `queue`, or mark the numbers that reach it `exempt_from_safety`",
            );
        }
    }
}

fn sorted_spans<K: Ord>(map: &HashMap<K, Range<usize>>) -> Vec<(&K, &Range<usize>)> {
    let mut list: Vec<_> = map.iter().collect();
    list.sort_by_key(|(_, span)| span.start);
    list
}
