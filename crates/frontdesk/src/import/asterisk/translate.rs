//! The translation proper: three parsed files in, dialplan TOML and the
//! report out. Pure: no disk, no clock.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;

use super::Note;
use super::config::{Config, Item, Section, last};
use super::extensions::{Context, Step, contexts};

/// `Goto` jumps followed from one entry before giving up (a loop).
const MAX_JUMPS: usize = 64;
/// Walks nested in one another (a queue's overflow, a menu's options)
/// before giving up (a loop through `Queue()` timeouts or menus).
const MAX_DEPTH: usize = 32;
/// Asterisk's defaults: a member rings 15 s (`timeout`), a menu waits
/// 10 s for the first digit (`TIMEOUT(response)`) and 5 s between digits
/// (`TIMEOUT(digit)`).
const DEFAULT_RING_TIMEOUT: u64 = 15;
const DEFAULT_RESPONSE_TIMEOUT: u64 = 10;
const DEFAULT_DIGIT_TIMEOUT: u64 = 5;
/// Replays of a menu that Asterisk would loop on forever (`i` or `t`
/// going back to it).
const MENU_RETRIES: u32 = 2;
/// The prompt frontdesk's safety rules require first on every number.
const EMERGENCY_NOTICE: &str = "prompts/emergency-notice.wav";

/// What the plan is called and where it is.
#[derive(Debug, Clone)]
pub struct Options {
    /// `[clinic] name`.
    pub name: String,
    /// `[clinic] time_zone` (IANA).
    pub time_zone: String,
}

/// The result: the dialplan's text and what was not translated.
#[derive(Debug, Clone)]
pub struct Import {
    /// A dialplan, TOML.
    pub toml: String,
    /// Every line not translated, every prompt to provide, every
    /// approximation, in file order.
    pub notes: Vec<Note>,
}

/// A place a call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Queue { id: String, urgent: bool },
    Menu(String),
}

/// Where one walk through the dialplan ended.
#[derive(Debug, Clone)]
enum Flow {
    /// `Queue()`: the queue, an overflow queue after its timeout.
    Queue {
        target: Target,
        prompts: Vec<String>,
    },
    /// `WaitExten` in `context`, after `prompts` (the last is the menu's).
    Menu {
        context: String,
        prompts: Vec<String>,
        line: usize,
        timeout: u64,
        digit_timeout: u64,
    },
    /// Anything else: why, and where.
    Stop { line: usize, why: String },
}

struct QueueOut {
    id: String,
    name: String,
    line: usize,
    strategy: &'static str,
    ring_timeout: u64,
    wrap_up: u64,
    max_length: Option<u64>,
    sla: Option<u64>,
    overflow: Option<(u64, String)>,
    /// Endpoint names, in member order, with their penalties.
    members: Vec<(String, i64)>,
    /// Levels by member order (`linear`) or penalty (`wrandom`).
    levels: LevelRule,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LevelRule {
    None,
    Order,
    Penalty,
}

struct AgentOut {
    id: String,
    name: String,
    password: String,
    endpoint: String,
    line: usize,
    skills: Vec<String>,
    levels: BTreeMap<String, i64>,
}

struct MenuOut {
    id: String,
    prompt: String,
    timeout: u64,
    digit_timeout: u64,
    options: BTreeMap<String, Target>,
    retries: u32,
    invalid_prompt: Option<String>,
    no_input_prompt: Option<String>,
    on_invalid: Target,
    on_no_input: Target,
    line: usize,
}

struct NumberOut {
    number: String,
    source: String,
    announce: Vec<String>,
    then: Target,
    line: usize,
}

/// The three files' state while translating.
struct Translator<'a> {
    queues_file: &'a Config,
    pjsip: &'a Config,
    extensions_file: &'a Config,
    contexts: Vec<Context>,
    notes: Vec<Note>,
    /// Lines used, per file name.
    handled: BTreeMap<String, BTreeSet<usize>>,
    /// Asterisk sound → (prompt path, first use).
    prompts: BTreeMap<String, (String, usize)>,
    queues: Vec<QueueOut>,
    menus: Vec<MenuOut>,
    /// Walks in progress (see [`MAX_DEPTH`]).
    depth: usize,
}

/// Translates the three files into a dialplan and its report.
pub fn import(queues: &Config, pjsip: &Config, extensions: &Config, options: &Options) -> Import {
    let mut handled_extensions = Vec::new();
    let mut notes = queues.notes.clone();
    notes.extend(pjsip.notes.iter().cloned());
    notes.extend(extensions.notes.iter().cloned());
    let contexts = contexts(extensions, &mut notes, &mut handled_extensions);
    let mut translator = Translator {
        queues_file: queues,
        pjsip,
        extensions_file: extensions,
        contexts,
        notes,
        handled: BTreeMap::new(),
        prompts: BTreeMap::new(),
        queues: Vec::new(),
        menus: Vec::new(),
        depth: 0,
    };
    // Steps are marked when a walk uses them, not when they are read.
    let _ = handled_extensions;
    translator.read_queues();
    let mut agents = translator.read_agents();
    let numbers = translator.read_numbers();
    translator.levels(&mut agents);
    translator.report_unused();
    let toml = translator.write(options, &numbers, &agents);
    let mut notes = translator.notes;
    notes.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    notes.dedup();
    Import { toml, notes }
}

impl<'a> Translator<'a> {
    fn use_line(&mut self, file: &str, line: usize) {
        self.handled
            .entry(file.to_string())
            .or_default()
            .insert(line);
    }

    fn note(&mut self, file: &str, line: usize, message: impl Into<String>) {
        self.use_line(file, line);
        self.notes.push(Note::new(file, line, message));
    }

    // ── queues.conf ─────────────────────────────────────────────────────

    fn read_queues(&mut self) {
        let file = self.queues_file;
        for section in &file.sections {
            if section.template || section.name.eq_ignore_ascii_case("general") {
                continue;
            }
            let mut notes = Vec::new();
            let items = file.resolved(section, &mut notes);
            self.notes.extend(notes);
            self.use_line(&file.file, section.line);
            let id = identifier(&section.name);
            if self.queues.iter().any(|q| q.id == id) {
                self.note(
                    &file.file,
                    section.line,
                    format!(
                        "queue [{}] is a second queue with the id `{id}`: skipped",
                        section.name
                    ),
                );
                continue;
            }
            let strategy_item = last(&items, "strategy");
            let asterisk = strategy_item
                .map_or("ringall", |i| i.value.as_str())
                .to_ascii_lowercase();
            let (strategy, levels, approximation) = match asterisk.as_str() {
                "ringall" => ("ring-all", LevelRule::None, None),
                "leastrecent" => ("longest-idle", LevelRule::None, None),
                "fewestcalls" => ("fewest-calls", LevelRule::None, None),
                "rrmemory" | "roundrobin" => ("round-robin", LevelRule::None, None),
                "rrordered" => (
                    "round-robin",
                    LevelRule::None,
                    Some("round-robin (frontdesk's turn does not follow the members' order)"),
                ),
                "linear" => (
                    "skill-level",
                    LevelRule::Order,
                    Some(
                        "skill-level, each member's level falling with its place in the list (10, 9, …), so the first free member in order is rung",
                    ),
                ),
                "wrandom" => (
                    "skill-level",
                    LevelRule::Penalty,
                    Some(
                        "skill-level by penalty (level 10 − penalty): the lowest penalty first, not at random",
                    ),
                ),
                "random" => (
                    "round-robin",
                    LevelRule::None,
                    Some("round-robin (frontdesk has no random strategy)"),
                ),
                _ => (
                    "round-robin",
                    LevelRule::None,
                    Some("round-robin (unknown strategy)"),
                ),
            };
            if let Some(item) = strategy_item {
                match approximation {
                    Some(how) => self.note(
                        &file.file,
                        item.line,
                        format!(
                            "queue `{id}`: strategy `{asterisk}` has no equivalent; mapped to {how}"
                        ),
                    ),
                    None => self.use_line(&file.file, item.line),
                }
            }
            let mut queue = QueueOut {
                id: id.clone(),
                name: section.name.clone(),
                line: section.line,
                strategy,
                ring_timeout: DEFAULT_RING_TIMEOUT,
                wrap_up: 0,
                max_length: None,
                sla: None,
                overflow: None,
                members: Vec::new(),
                levels,
            };
            for item in &items {
                let key = item.key.to_ascii_lowercase();
                let seconds = || item.value.trim().parse::<u64>().ok();
                match key.as_str() {
                    "timeout" => match seconds() {
                        Some(0) => self.note(&file.file, item.line, format!("queue `{id}`: `timeout = 0` (ring forever) is not allowed; ring timeout {DEFAULT_RING_TIMEOUT} s")),
                        Some(value) => {
                            queue.ring_timeout = value;
                            self.use_line(&file.file, item.line);
                        }
                        None => self.bad_number(item),
                    },
                    "wrapuptime" => match seconds() {
                        Some(value) => {
                            queue.wrap_up = value;
                            self.use_line(&file.file, item.line);
                        }
                        None => self.bad_number(item),
                    },
                    "maxlen" => match seconds() {
                        Some(0) => self.use_line(&file.file, item.line),
                        Some(value) => {
                            queue.max_length = Some(value.min(100_000));
                            self.note(&file.file, item.line, format!("queue `{id}`: `maxlen` becomes `max_length`, but a caller over it goes to `on_max_wait`, which is set only when the dialplan has a second Queue() after this one"));
                        }
                        None => self.bad_number(item),
                    },
                    "servicelevel" => match seconds() {
                        Some(0) => self.use_line(&file.file, item.line),
                        Some(value) => {
                            queue.sla = Some(value);
                            self.use_line(&file.file, item.line);
                        }
                        None => self.bad_number(item),
                    },
                    "member" => self.member(&mut queue, item),
                    _ => {}
                }
            }
            self.queues.push(queue);
        }
    }

    fn bad_number(&mut self, item: &Item) {
        let file = self.queues_file.file.clone();
        self.note(
            &file,
            item.line,
            format!(
                "`{}` must be a whole number of seconds, not `{}`: not translated",
                item.key, item.value
            ),
        );
    }

    /// `member => PJSIP/1001,penalty,name,state_interface,…`.
    fn member(&mut self, queue: &mut QueueOut, item: &Item) {
        let file = self.queues_file.file.clone();
        let fields: Vec<&str> = item.value.split(',').map(str::trim).collect();
        let interface = fields.first().copied().unwrap_or("");
        let endpoint = match interface.split_once('/') {
            Some((tech, endpoint))
                if tech.eq_ignore_ascii_case("pjsip") || tech.eq_ignore_ascii_case("sip") =>
            {
                endpoint
            }
            _ => {
                self.note(&file, item.line, format!("queue `{}`: member `{interface}` is not a PJSIP or SIP endpoint: not translated (agents are SIP phones that register)", queue.id));
                return;
            }
        };
        let penalty = match fields.get(1).filter(|p| !p.is_empty()) {
            None => 0,
            Some(text) => text.parse::<i64>().unwrap_or(0),
        };
        if penalty != 0 && queue.levels != LevelRule::Penalty {
            self.note(&file, item.line, format!("queue `{}`: member `{endpoint}`'s penalty {penalty} is not translated (only a `wrandom` queue's penalties become skill levels)", queue.id));
        } else {
            self.use_line(&file, item.line);
        }
        queue.members.push((endpoint.to_string(), penalty));
    }

    // ── pjsip.conf ──────────────────────────────────────────────────────

    /// An agent per endpoint that is a member of some queue.
    fn read_agents(&mut self) -> Vec<AgentOut> {
        let mut agents: Vec<AgentOut> = Vec::new();
        let memberships: Vec<(String, String)> = self
            .queues
            .iter()
            .flat_map(|q| q.members.iter().map(|(e, _)| (e.clone(), q.id.clone())))
            .collect();
        let file = self.pjsip.file.clone();
        for (endpoint, queue) in memberships {
            if let Some(agent) = agents.iter_mut().find(|a| a.endpoint == endpoint) {
                if !agent.skills.contains(&queue) {
                    agent.skills.push(queue);
                }
                continue;
            }
            let Some(agent) = self.agent(&endpoint) else {
                continue;
            };
            if agents.iter().any(|a| a.id == agent.id) {
                self.note(
                    &file,
                    agent.line,
                    format!(
                        "endpoint `{endpoint}`: its user name `{}` is another agent's: skipped",
                        agent.id
                    ),
                );
                continue;
            }
            let mut agent = agent;
            agent.skills.push(queue);
            agents.push(agent);
        }
        agents
    }

    fn agent(&mut self, endpoint: &str) -> Option<AgentOut> {
        let file = self.pjsip.file.clone();
        let Some((section, items)) = self.typed(endpoint, "endpoint") else {
            let line = self.queue_member_line(endpoint);
            let queues_file = self.queues_file.file.clone();
            self.note(
                &queues_file,
                line,
                format!(
                    "member `{endpoint}`: no [{endpoint}] of `type = endpoint` in {file}: no agent"
                ),
            );
            return None;
        };
        self.use_line(&file, section.line);
        for item in &items {
            if item.key.eq_ignore_ascii_case("type") {
                self.use_line(&file, item.line);
            }
        }
        let name = match last(&items, "callerid") {
            Some(item) => {
                self.use_line(&file, item.line);
                display_name(&item.value).unwrap_or_else(|| endpoint.to_string())
            }
            None => endpoint.to_string(),
        };
        let Some(auth_item) = last(&items, "auth") else {
            self.note(&file, section.line, format!("endpoint `{endpoint}` has no `auth`: frontdesk agents sign in with a digest password; no agent"));
            return None;
        };
        self.use_line(&file, auth_item.line);
        let auth_name = auth_item
            .value
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let Some((auth, auth_items)) = self.typed(&auth_name, "auth") else {
            self.note(
                &file,
                auth_item.line,
                format!("endpoint `{endpoint}`: no [{auth_name}] of `type = auth`: no agent"),
            );
            return None;
        };
        self.use_line(&file, auth.line);
        for key in ["type", "auth_type"] {
            if let Some(item) = last(&auth_items, key) {
                self.use_line(&file, item.line);
            }
        }
        let auth_type = last(&auth_items, "auth_type")
            .map_or("userpass".to_string(), |i| i.value.to_ascii_lowercase());
        if auth_type != "userpass" {
            self.note(&file, auth.line, format!("auth [{auth_name}]: `auth_type = {auth_type}` holds no password frontdesk can use: set one for agent `{endpoint}` (no agent)"));
            return None;
        }
        let Some(password) = last(&auth_items, "password").filter(|i| !i.value.is_empty()) else {
            self.note(
                &file,
                auth.line,
                format!("auth [{auth_name}] has no password: no agent"),
            );
            return None;
        };
        let password_line = password.line;
        let password = password.value.clone();
        self.use_line(&file, password_line);
        let id = match last(&auth_items, "username") {
            Some(item) => {
                self.use_line(&file, item.line);
                item.value.clone()
            }
            None => endpoint.to_string(),
        };
        if id.is_empty()
            || id
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '@' | ':' | ';'))
        {
            self.note(&file, section.line, format!("endpoint `{endpoint}`: user name `{id}` cannot be an agent id (no spaces, `@`, `:`, `;`): no agent"));
            return None;
        }
        Some(AgentOut {
            id,
            name,
            password,
            endpoint: endpoint.to_string(),
            line: section.line,
            skills: Vec::new(),
            levels: BTreeMap::new(),
        })
    }

    /// The `pjsip.conf` section called `name` whose `type` (templates
    /// applied) is `kind`, with its items: an endpoint and its AOR often
    /// share a name.
    fn typed(&mut self, name: &str, kind: &str) -> Option<(&'a Section, Vec<Item>)> {
        let pjsip = self.pjsip;
        for section in pjsip
            .sections
            .iter()
            .filter(|s| s.name == name && !s.template)
        {
            let mut notes = Vec::new();
            let items = pjsip.resolved(section, &mut notes);
            if last(&items, "type").is_some_and(|t| t.value.eq_ignore_ascii_case(kind)) {
                self.notes.extend(notes);
                return Some((section, items));
            }
        }
        None
    }

    fn queue_member_line(&self, endpoint: &str) -> usize {
        self.queues_file
            .sections
            .iter()
            .flat_map(|s| &s.items)
            .find(|i| i.key.eq_ignore_ascii_case("member") && i.value.contains(endpoint))
            .map_or(0, |i| i.line)
    }

    /// Skill levels for `linear` and `wrandom` queues.
    fn levels(&mut self, agents: &mut [AgentOut]) {
        for queue in &self.queues {
            for (place, (endpoint, penalty)) in queue.members.iter().enumerate() {
                let level = match queue.levels {
                    LevelRule::None => continue,
                    LevelRule::Order => 10 - i64::try_from(place).unwrap_or(9).min(9),
                    LevelRule::Penalty => (10 - penalty).clamp(1, 10),
                };
                if let Some(agent) = agents.iter_mut().find(|a| &a.endpoint == endpoint) {
                    agent.levels.insert(queue.id.clone(), level);
                }
            }
        }
    }

    // ── extensions.conf ─────────────────────────────────────────────────

    /// Every literal extension that reaches a queue or a menu.
    fn read_numbers(&mut self) -> Vec<NumberOut> {
        let file = self.extensions_file.file.clone();
        let menu_contexts: HashSet<String> = self
            .contexts
            .iter()
            .filter(|c| {
                c.extensions
                    .iter()
                    .flat_map(|e| &e.steps)
                    .any(|s| s.app_is("WaitExten"))
            })
            .map(|c| c.name.clone())
            .collect();
        let mut entries = Vec::new();
        for context in &self.contexts {
            for extension in &context.extensions {
                let option = menu_contexts.contains(&context.name)
                    && (is_digits(&extension.name)
                        || matches!(extension.name.as_str(), "s" | "i" | "t"));
                if option {
                    continue;
                }
                entries.push((
                    context.name.clone(),
                    extension.name.clone(),
                    extension.line,
                    extension.is_pattern(),
                ));
            }
        }
        let mut numbers = Vec::new();
        for (context, extension, line, pattern) in entries {
            if pattern {
                self.note(&file, line, format!("pattern `{extension}` in [{context}] not translated: frontdesk answers listed numbers only (add each carrier number it stands for as [[numbers]])"));
                continue;
            }
            if !is_phone_number(&extension) && !is_special(&extension) {
                // An internal name (`front`, `8000`): reached by Goto, or
                // reported as unused.
                continue;
            }
            if is_special(&extension) {
                if extension == "s" {
                    if let Flow::Queue { .. } | Flow::Menu { .. } =
                        self.walk(&context, &extension, 0, false)
                    {
                        self.note(&file, line, format!("`s` in [{context}] answers whatever number was dialed: add the numbers that reach [{context}] as [[numbers]] with its target"));
                    }
                } else {
                    self.note(
                        &file,
                        line,
                        format!("special extension `{extension}` in [{context}] not translated"),
                    );
                }
                continue;
            }
            let flow = self.walk(&context, &extension, 0, true);
            let (then, prompts) = match flow {
                Flow::Queue { target, prompts } => (target, prompts),
                Flow::Menu {
                    context: menu,
                    prompts,
                    line: menu_line,
                    timeout,
                    digit_timeout,
                } => {
                    let Some(id) = self.menu(
                        &menu,
                        prompts.last().cloned(),
                        menu_line,
                        timeout,
                        digit_timeout,
                    ) else {
                        continue;
                    };
                    let mut before = prompts;
                    before.pop();
                    (Target::Menu(id), before)
                }
                Flow::Stop { line: stop, why } => {
                    self.note(&file, stop, format!("`{extension}` in [{context}]: {why}: not translated (frontdesk's numbers lead to a queue or a menu)"));
                    continue;
                }
            };
            if numbers.iter().any(|n: &NumberOut| n.number == extension) {
                self.note(
                    &file,
                    line,
                    format!(
                        "number `{extension}` is already translated from another context: skipped"
                    ),
                );
                continue;
            }
            let mut announce = vec![EMERGENCY_NOTICE.to_string()];
            announce.extend(prompts.into_iter().filter(|p| p != EMERGENCY_NOTICE));
            numbers.push(NumberOut {
                number: extension,
                source: identifier(&context),
                announce,
                then,
                line,
            });
        }
        numbers
    }

    /// Follows `context`/`extension` from step `index` until it reaches a
    /// queue, a menu, or something we cannot translate. `mark` records the
    /// steps as used.
    fn walk(&mut self, context: &str, extension: &str, index: usize, mark: bool) -> Flow {
        if self.depth >= MAX_DEPTH {
            let line = self.extension_line(context, extension);
            return Flow::Stop {
                line,
                why: format!("more than {MAX_DEPTH} nested queues and menus (a loop)"),
            };
        }
        self.depth += 1;
        let flow = self.walk_from(context, extension, index, mark);
        self.depth -= 1;
        flow
    }

    fn walk_from(&mut self, context: &str, extension: &str, index: usize, mark: bool) -> Flow {
        let file = self.extensions_file.file.clone();
        let mut context = context.to_string();
        let mut extension = extension.to_string();
        let mut index = index;
        let mut prompts = Vec::new();
        let mut urgent = false;
        let mut digit_timeout = DEFAULT_DIGIT_TIMEOUT;
        let mut response_timeout = DEFAULT_RESPONSE_TIMEOUT;
        let mut jumps = 0;
        loop {
            let Some(step) = self.step(&context, &extension, index) else {
                let line = self.extension_line(&context, &extension);
                return Flow::Stop {
                    line,
                    why: format!("`{extension}` in [{context}] ends without a queue or a menu"),
                };
            };
            let app = step.app.to_ascii_lowercase();
            // Only what is translated is marked; anything else is left
            // for the caller's note or the report of unused lines.
            let known = [
                "answer",
                "noop",
                "ringing",
                "progress",
                "verbose",
                "log",
                "wait",
                "set",
                "playback",
                "background",
                "waitexten",
                "queue",
                "goto",
            ];
            if mark && known.contains(&app.as_str()) {
                self.use_line(&file, step.line);
            }
            match app.as_str() {
                "answer" | "noop" | "ringing" | "progress" | "verbose" | "log" | "wait" => {
                    index += 1
                }
                "set" => {
                    let (name, value) = step.arg(0).split_once('=').unwrap_or((step.arg(0), ""));
                    let seconds = value.trim().parse::<u64>().ok();
                    match (name.trim().to_ascii_uppercase().as_str(), seconds) {
                        ("TIMEOUT(DIGIT)", Some(s)) if s > 0 => digit_timeout = s,
                        ("TIMEOUT(RESPONSE)", Some(s)) if s > 0 => response_timeout = s,
                        ("QUEUE_PRIO", Some(p)) => urgent = p > 0,
                        _ => {
                            if mark {
                                self.note(
                                    &file,
                                    step.line,
                                    format!("`Set({})` not translated", step.arg(0)),
                                );
                            }
                        }
                    }
                    index += 1;
                }
                "playback" | "background" => {
                    for sound in step
                        .arg(0)
                        .split('&')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                    {
                        prompts.push(self.prompt(sound, step.line));
                    }
                    if step.args.len() > 1 && mark {
                        self.note(
                            &file,
                            step.line,
                            format!(
                                "`{}` options `{}` not translated",
                                step.app,
                                step.args[1..].join(",")
                            ),
                        );
                    }
                    index += 1;
                }
                "waitexten" => {
                    let timeout = step
                        .arg(0)
                        .parse::<f64>()
                        .ok()
                        .filter(|t| *t > 0.0)
                        .map_or(response_timeout, |t| t.ceil() as u64);
                    return Flow::Menu {
                        context,
                        prompts,
                        line: step.line,
                        timeout,
                        digit_timeout,
                    };
                }
                "queue" => {
                    let line = step.line;
                    let id = identifier(step.arg(0));
                    if !self.queues.iter().any(|q| q.id == id) {
                        return Flow::Stop {
                            line,
                            why: format!(
                                "Queue({}) names no queue of {}",
                                step.arg(0),
                                self.queues_file.file
                            ),
                        };
                    }
                    if !step.arg(1).is_empty() && mark {
                        self.note(
                            &file,
                            line,
                            format!("Queue() options `{}` not translated", step.arg(1)),
                        );
                    }
                    let timeout = step.arg(4).parse::<u64>().ok().filter(|t| *t > 0);
                    if let Some(timeout) = timeout {
                        self.overflow(&context, &extension, index + 1, &id, timeout, line, mark);
                    }
                    return Flow::Queue {
                        target: Target::Queue { id, urgent },
                        prompts,
                    };
                }
                "goto" => {
                    jumps += 1;
                    if jumps > MAX_JUMPS {
                        return Flow::Stop {
                            line: step.line,
                            why: format!("more than {MAX_JUMPS} Goto jumps (a loop)"),
                        };
                    }
                    let (to_context, to_extension, priority) = match step.args.len() {
                        1 => (context.clone(), extension.clone(), step.arg(0).to_string()),
                        2 => (
                            context.clone(),
                            step.arg(0).to_string(),
                            step.arg(1).to_string(),
                        ),
                        3 => (
                            step.arg(0).to_string(),
                            step.arg(1).to_string(),
                            step.arg(2).to_string(),
                        ),
                        _ => {
                            return Flow::Stop {
                                line: step.line,
                                why: "Goto with no target".into(),
                            };
                        }
                    };
                    if to_context.contains('$')
                        || to_extension.contains('$')
                        || priority.contains('$')
                    {
                        return Flow::Stop {
                            line: step.line,
                            why: format!("Goto({}) depends on a variable", step.args.join(",")),
                        };
                    }
                    let Some(to_index) = self.step_index(&to_context, &to_extension, &priority)
                    else {
                        return Flow::Stop {
                            line: step.line,
                            why: format!("Goto({}) leads nowhere", step.args.join(",")),
                        };
                    };
                    // Entering a menu context's waiting point is that menu.
                    context = to_context;
                    extension = to_extension;
                    index = to_index;
                }
                _ => {
                    return Flow::Stop {
                        line: step.line,
                        why: format!(
                            "{}({}) has no frontdesk equivalent here",
                            step.app,
                            step.args.join(",")
                        ),
                    };
                }
            }
        }
    }

    /// A queue's timeout and what follows it: `max_wait` and `on_max_wait`
    /// when the next step reaches another queue.
    #[allow(clippy::too_many_arguments)]
    fn overflow(
        &mut self,
        context: &str,
        extension: &str,
        next: usize,
        queue: &str,
        timeout: u64,
        line: usize,
        mark: bool,
    ) {
        let file = self.extensions_file.file.clone();
        let after = self.walk(context, extension, next, mark);
        let target = match after {
            Flow::Queue {
                target: Target::Queue { id, .. },
                ..
            } if id != queue => id,
            Flow::Stop { line: stop, why } if mark && stop != 0 => {
                self.note(
                    &file,
                    stop,
                    format!("after Queue({queue})'s timeout: {why}: not translated"),
                );
                self.note(&file, line, format!("Queue({queue}) timeout {timeout} s: what follows is not another queue, so the wait is not limited (frontdesk needs `on_max_wait`)"));
                return;
            }
            _ => {
                if mark {
                    self.note(&file, line, format!("Queue({queue}) timeout {timeout} s: what follows is not another queue, so the wait is not limited (frontdesk needs `on_max_wait`)"));
                }
                return;
            }
        };
        let Some(out) = self.queues.iter_mut().find(|q| q.id == queue) else {
            return;
        };
        match &out.overflow {
            None => out.overflow = Some((timeout, target)),
            Some((_, existing)) if *existing == target => {}
            Some((_, existing)) => {
                let existing = existing.clone();
                if mark {
                    self.note(&file, line, format!("Queue({queue}) overflows to `{target}` here but to `{existing}` elsewhere: frontdesk keeps one `on_max_wait` per queue (`{existing}`)"));
                }
            }
        }
    }

    /// Builds the menu of `context` (once); its id, or `None` when it has
    /// no usable option.
    fn menu(
        &mut self,
        context: &str,
        prompt: Option<String>,
        line: usize,
        timeout: u64,
        digit_timeout: u64,
    ) -> Option<String> {
        let id = identifier(context);
        if self.menus.iter().any(|m| m.id == id) {
            return Some(id);
        }
        let file = self.extensions_file.file.clone();
        let prompt = match prompt {
            Some(prompt) => prompt,
            None => {
                self.note(
                    &file,
                    line,
                    format!("menu [{context}] plays no prompt before WaitExten: not translated"),
                );
                return None;
            }
        };
        // Reserve the id first: an option that leads back here is a replay.
        let placeholder = Target::Menu(id.clone());
        self.menus.push(MenuOut {
            id: id.clone(),
            prompt,
            timeout,
            digit_timeout,
            options: BTreeMap::new(),
            retries: 0,
            invalid_prompt: None,
            no_input_prompt: None,
            on_invalid: placeholder.clone(),
            on_no_input: placeholder,
            line,
        });
        let options: Vec<String> = self
            .contexts
            .iter()
            .find(|c| c.name == context)
            .map(|c| {
                c.extensions
                    .iter()
                    .filter(|e| is_digits(&e.name))
                    .map(|e| e.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut translated = BTreeMap::new();
        for digits in options {
            let option_line = self.extension_line(context, &digits);
            match self.target_of(context, &digits) {
                Ok((Target::Menu(menu), _)) if menu == id => {
                    self.note(&file, option_line, format!("option `{digits}` of [{context}] replays the menu: frontdesk replays it on invalid input instead"));
                }
                Ok((target, prompts)) => {
                    if !prompts.is_empty() {
                        self.note(&file, option_line, format!("option `{digits}` of [{context}]: the prompts played before its target ({}) are not translated", prompts.join(", ")));
                    }
                    translated.insert(digits, target);
                }
                Err((stop, why)) => self.note(
                    &file,
                    stop,
                    format!("option `{digits}` of [{context}]: {why}: not translated"),
                ),
            }
        }
        let Some(fallback) = translated
            .get("0")
            .or_else(|| {
                translated
                    .values()
                    .find(|t| matches!(t, Target::Queue { .. }))
            })
            .or_else(|| translated.values().next())
            .cloned()
        else {
            self.note(
                &file,
                line,
                format!("menu [{context}] has no option frontdesk can take: not translated"),
            );
            self.menus.retain(|m| m.id != id);
            return None;
        };
        let mut retries = 0;
        let mut paths = [(None, fallback.clone()), (None, fallback.clone())];
        for (which, special) in ["i", "t"].into_iter().enumerate() {
            let special_line = self.extension_line(context, special);
            let what = if special == "i" {
                "invalid input"
            } else {
                "no input"
            };
            let fallback_name = describe(&fallback);
            if self
                .contexts
                .iter()
                .find(|c| c.name == context)
                .and_then(|c| c.extension(special))
                .is_none()
            {
                self.note(&file, line, format!("menu [{context}] has no `{special}` extension: on {what} frontdesk replays the menu {MENU_RETRIES} times, then {fallback_name}"));
                retries = MENU_RETRIES;
                continue;
            }
            match self.target_of(context, special) {
                Ok((Target::Menu(menu), prompts)) if menu == id => {
                    retries = MENU_RETRIES;
                    paths[which].0 = prompts.first().cloned();
                    self.note(&file, special_line, format!("`{special}` of [{context}] replays the menu forever: frontdesk replays it {MENU_RETRIES} times, then {fallback_name}"));
                }
                Ok((target, prompts)) => {
                    paths[which] = (prompts.first().cloned(), target);
                }
                Err((stop, why)) => {
                    retries = MENU_RETRIES;
                    self.note(&file, stop, format!("`{special}` of [{context}]: {why}: frontdesk replays the menu {MENU_RETRIES} times, then {fallback_name}"));
                }
            }
        }
        let [(invalid_prompt, on_invalid), (no_input_prompt, on_no_input)] = paths;
        if let Some(menu) = self.menus.iter_mut().find(|m| m.id == id) {
            menu.options = translated;
            menu.retries = retries;
            menu.invalid_prompt = invalid_prompt;
            menu.no_input_prompt = no_input_prompt;
            menu.on_invalid = on_invalid;
            menu.on_no_input = on_no_input;
        }
        Some(id)
    }

    /// Where an option's extension leads, with the prompts on the way.
    fn target_of(
        &mut self,
        context: &str,
        extension: &str,
    ) -> Result<(Target, Vec<String>), (usize, String)> {
        match self.walk(context, extension, 0, true) {
            Flow::Queue { target, prompts } => Ok((target, prompts)),
            Flow::Menu {
                context: menu,
                prompts,
                line,
                timeout,
                digit_timeout,
            } => {
                let own = identifier(&menu);
                if self.menus.iter().any(|m| m.id == own) {
                    let mut before = prompts;
                    before.pop();
                    return Ok((Target::Menu(own), before));
                }
                let prompt = prompts.last().cloned();
                match self.menu(&menu, prompt, line, timeout, digit_timeout) {
                    Some(id) => {
                        let mut before = prompts;
                        before.pop();
                        Ok((Target::Menu(id), before))
                    }
                    None => Err((line, format!("menu [{menu}] is not translated"))),
                }
            }
            Flow::Stop { line, why } => Err((line, why)),
        }
    }

    fn step(&self, context: &str, extension: &str, index: usize) -> Option<Step> {
        self.contexts
            .iter()
            .find(|c| c.name == context)?
            .extension(extension)?
            .steps
            .get(index)
            .cloned()
    }

    /// The index of `priority` (a number or a label) in an extension.
    fn step_index(&self, context: &str, extension: &str, priority: &str) -> Option<usize> {
        let steps = &self
            .contexts
            .iter()
            .find(|c| c.name == context)?
            .extension(extension)?
            .steps;
        match priority.parse::<u32>() {
            Ok(number) => steps.iter().position(|s| s.priority == number),
            Err(_) => steps
                .iter()
                .position(|s| s.label.as_deref() == Some(priority)),
        }
    }

    fn extension_line(&self, context: &str, extension: &str) -> usize {
        self.contexts
            .iter()
            .find(|c| c.name == context)
            .and_then(|c| c.extension(extension))
            .map_or(0, |e| e.line)
    }

    /// The prompt file for an Asterisk sound name (`custom/main-menu` →
    /// `prompts/main-menu.wav`), remembered for the report.
    fn prompt(&mut self, sound: &str, line: usize) -> String {
        if let Some((path, _)) = self.prompts.get(sound) {
            return path.clone();
        }
        let base = sound.rsplit('/').next().unwrap_or(sound);
        let base = base.rsplit_once('.').map_or(base, |(stem, _)| stem);
        let mut name = identifier(base);
        if name.is_empty() {
            name = "prompt".into();
        }
        let path = if name.contains("emergency") {
            EMERGENCY_NOTICE.to_string()
        } else {
            format!("prompts/{name}.wav")
        };
        self.prompts.insert(sound.to_string(), (path.clone(), line));
        path
    }

    // ── the report ──────────────────────────────────────────────────────

    /// Every item of the three files that nothing used or noted.
    fn report_unused(&mut self) {
        for note in &self.notes {
            self.handled
                .entry(note.file.clone())
                .or_default()
                .insert(note.line);
        }
        let mut unused = Vec::new();
        for config in [self.queues_file, self.pjsip, self.extensions_file] {
            let handled = self.handled.get(&config.file);
            for section in &config.sections {
                for item in &section.items {
                    if handled.is_some_and(|lines| lines.contains(&item.line)) {
                        continue;
                    }
                    unused.push(Note::new(
                        &config.file,
                        item.line,
                        format!(
                            "[{}] `{} = {}` not translated",
                            section.name, item.key, item.value
                        ),
                    ));
                }
            }
        }
        self.notes.extend(unused);
        let file = self.extensions_file.file.clone();
        let prompts: Vec<(String, String, usize)> = self
            .prompts
            .iter()
            .map(|(sound, (path, line))| (sound.clone(), path.clone(), *line))
            .collect();
        for (sound, path, line) in prompts {
            self.notes.push(Note::new(&file, line, format!("sound `{sound}` → {path}: convert it to 8 kHz mono 16-bit PCM WAV beside the dialplan")));
        }
    }

    // ── the dialplan ────────────────────────────────────────────────────

    fn write(&mut self, options: &Options, numbers: &[NumberOut], agents: &[AgentOut]) -> String {
        let queues_file = self.queues_file.file.clone();
        let pjsip_file = self.pjsip.file.clone();
        let extensions_file = self.extensions_file.file.clone();
        let mut out = String::new();
        // `write!` to a String cannot fail.
        let _ = writeln!(
            out,
            "# Imported from Asterisk by `frontdesk import asterisk` ({queues_file}, {pjsip_file}, {extensions_file})."
        );
        let _ = writeln!(
            out,
            "# What was not translated is listed on stderr with FILE:LINE. The schema is dialplans/README.md;"
        );
        let _ = writeln!(
            out,
            "# check it with `frontdesk check` once the prompts below exist.\n"
        );
        let _ = writeln!(
            out,
            "[clinic]\nname = {}\ntime_zone = {}",
            quote(&options.name),
            quote(&options.time_zone)
        );
        let _ = writeln!(
            out,
            "emergency_notice = {}  # frontdesk's safety rule: played first on every number; record it\n",
            quote(EMERGENCY_NOTICE)
        );
        self.notes.push(Note::new(&extensions_file, 0, format!("every number plays {EMERGENCY_NOTICE} first (frontdesk's safety rule): record it; hours (GotoIfTime) are not translated, so the plan is always open")));
        for number in numbers {
            let _ = writeln!(out, "[[numbers]]  # {extensions_file}:{}", number.line);
            let _ = writeln!(
                out,
                "number = {}\nsource = {}",
                quote(&number.number),
                quote(&number.source)
            );
            let announce: Vec<String> = number.announce.iter().map(|p| quote(p)).collect();
            let _ = writeln!(
                out,
                "announce = [{}]\nthen = {}\n",
                announce.join(", "),
                target(&number.then)
            );
        }
        for menu in &self.menus {
            let _ = writeln!(
                out,
                "[menus.{}]  # {extensions_file}:{}",
                quote(&menu.id),
                menu.line
            );
            let _ = writeln!(
                out,
                "prompt = {}\ntimeout = \"{}s\"\ninter_digit_timeout = \"{}s\"",
                quote(&menu.prompt),
                menu.timeout,
                menu.digit_timeout
            );
            let _ = writeln!(out, "retries = {}", menu.retries);
            if let Some(prompt) = &menu.invalid_prompt {
                let _ = writeln!(out, "invalid_prompt = {}", quote(prompt));
            }
            if let Some(prompt) = &menu.no_input_prompt {
                let _ = writeln!(out, "no_input_prompt = {}", quote(prompt));
            }
            let _ = writeln!(
                out,
                "on_no_input = {}\non_invalid = {}",
                target(&menu.on_no_input),
                target(&menu.on_invalid)
            );
            let _ = writeln!(out, "\n[menus.{}.options]", quote(&menu.id));
            for (digits, to) in &menu.options {
                let _ = writeln!(out, "{} = {}", quote(digits), target(to));
            }
            out.push('\n');
        }
        for queue in &self.queues {
            let _ = writeln!(
                out,
                "[queues.{}]  # {queues_file}:{}",
                quote(&queue.id),
                queue.line
            );
            let _ = writeln!(
                out,
                "name = {}\nskills = [{}]\nstrategy = {}",
                quote(&queue.name),
                quote(&queue.id),
                quote(queue.strategy)
            );
            let _ = writeln!(
                out,
                "ring_timeout = \"{}s\"\nwrap_up = \"{}s\"",
                queue.ring_timeout, queue.wrap_up
            );
            if let Some((wait, to)) = &queue.overflow {
                let _ = writeln!(
                    out,
                    "max_wait = \"{wait}s\"\non_max_wait = {{ queue = {} }}",
                    quote(to)
                );
                if let Some(length) = queue.max_length {
                    let _ = writeln!(out, "max_length = {length}");
                }
            }
            if let Some(sla) = queue.sla {
                let _ = writeln!(out, "sla = \"{sla}s\"");
            }
            out.push('\n');
        }
        for queue in &self.queues {
            if !agents.iter().any(|a| a.skills.contains(&queue.id)) {
                self.notes.push(Note::new(&queues_file, queue.line, format!("queue `{}` has no static member that became an agent: give an agent the skill `{}` or `check` refuses the plan", queue.id, queue.id)));
            }
        }
        for agent in agents {
            let _ = writeln!(out, "[[agents]]  # {pjsip_file}:{}", agent.line);
            let _ = writeln!(
                out,
                "id = {}\nname = {}\npassword = {}",
                quote(&agent.id),
                quote(&agent.name),
                quote(&agent.password)
            );
            let skills: Vec<String> = agent.skills.iter().map(|s| quote(s)).collect();
            let _ = writeln!(out, "skills = [{}]", skills.join(", "));
            if !agent.levels.is_empty() {
                let levels: Vec<String> = agent
                    .levels
                    .iter()
                    .map(|(skill, level)| format!("{} = {level}", quote(skill)))
                    .collect();
                let _ = writeln!(out, "skill_levels = {{ {} }}", levels.join(", "));
            }
            out.push('\n');
        }
        out
    }
}

fn target(target: &Target) -> String {
    match target {
        Target::Queue { id, urgent: false } => format!("{{ queue = {} }}", quote(id)),
        Target::Queue { id, urgent: true } => {
            format!("{{ queue = {}, priority = \"urgent\" }}", quote(id))
        }
        Target::Menu(id) => format!("{{ menu = {} }}", quote(id)),
    }
}

fn describe(target: &Target) -> String {
    match target {
        Target::Queue { id, .. } => format!("queue `{id}`"),
        Target::Menu(id) => format!("menu `{id}`"),
    }
}

/// A TOML basic string.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{:04X}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A frontdesk id from an Asterisk name: lower case, letters, digits and
/// `-`, anything else a `-` (`Front Desk` → `front-desk`).
fn identifier(name: &str) -> String {
    let mut id = String::new();
    for c in name.trim().chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            id.push(c);
        } else if !id.ends_with('-') {
            id.push('-');
        }
    }
    id.trim_matches('-').to_string()
}

/// A menu option's extension: digits, `*` and `#`, at most 4 of them
/// (longer ones in a menu's context are numbers or internal extensions).
fn is_digits(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 4
        && name
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
}

/// An extension that a carrier delivers: `+` and at least 5 digits, or
/// at least 5 digits (shorter ones are internal extensions).
fn is_phone_number(name: &str) -> bool {
    let digits = name.strip_prefix('+').unwrap_or(name);
    digits.len() >= 5 && digits.chars().all(|c| c.is_ascii_digit())
}

/// Asterisk's special extensions (`s` start, `i` invalid, `t` timeout,
/// `h` hang-up, …).
fn is_special(name: &str) -> bool {
    matches!(
        name,
        "s" | "i" | "t" | "h" | "e" | "o" | "a" | "T" | "fax" | "talk"
    )
}

/// `"Alice Smith" <1001>` → `Alice Smith`.
fn display_name(callerid: &str) -> Option<String> {
    let name = match callerid.find('<') {
        Some(at) => &callerid[..at],
        None => callerid,
    };
    let name = name.trim().trim_matches('"').trim();
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests;
