//! Pass 3a: raw items → domain types, resolving every name.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use jiff::tz::TimeZoneDatabase;

mod leads;
mod limits;
mod sections;
mod speech_section;
mod webhooks;

use super::checks::{self, Owner, Spans};
use super::{RawPlan, backticked};
use crate::diagnostic::{ErrorKind, Sink};
use crate::ids::{Branch, MenuId, PromptId, QueueId, Skill, SourceTag};
use crate::plan::{
    AfterHours, Clinic, Dialplan, Menu, Number, Overflow, Priority, Prompt, Queue, Target,
    Voicemail, normalize_number,
};
use crate::raw::{RawAfterHours, RawTarget, RawVoicemail, S};

/// Menu defaults when the dialplan does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_INTER_DIGIT_TIMEOUT: Duration = Duration::from_secs(3);
const DEFAULT_RETRIES: u32 = 1;

/// The one format prompts must have.
const PROMPT_RATE: u32 = 8000;

pub(super) fn build(
    sink: &mut Sink<'_>,
    raw: &RawPlan,
    path: &Path,
    base_dir: &Path,
) -> Option<Dialplan> {
    let mut b = Builder {
        sink,
        base_dir,
        prompts: HashMap::new(),
        menus: raw.declared_menus.iter().cloned().collect(),
        queues: raw.declared_queues.iter().cloned().collect(),
        agents: raw.declared_agents.iter().cloned().collect(),
        spans: Spans::default(),
        owner: Owner::ClinicAfterHours,
        voicemail_declared: raw.voicemail_declared,
        speech: None,
    };

    let clinic = b.clinic(raw);
    let numbers = b.numbers(raw);
    // Before the menus: their phrases are checked against its dictionary.
    let speech = b.speech_section(raw);
    let menus = b.menus(raw);
    let queues = b.queues(raw);
    let agents = b.agents(raw);
    let hours = clinic
        .as_ref()
        .map(|clinic| b.hours(raw, clinic.time_zone.clone()));
    b.owner = Owner::ClinicAfterHours;
    let after_hours = raw
        .after_hours
        .as_ref()
        .and_then(|after| b.after_hours(after.get_ref()));
    b.owner = Owner::Other;
    let directory = b.directory(raw);
    let trust = b.trust(raw);
    let limits = b.limits(raw);
    let announcements = b.announcements(raw);
    let features = b.features(raw, &numbers.1);
    let sources = b.sources(raw);
    let intents = b.intents(raw);
    let branches = b.branches(raw);
    let (trunks, trunk_networks) = b.trunks(raw);
    let voicemail = raw.voicemail.as_ref().and_then(|v| b.voicemail(v));
    let webhooks = b.webhooks(raw);
    // A trunk named by address is trusted like `[trust] trunks`.
    let trust = {
        let mut networks = trust.trunks().to_vec();
        networks.extend(trunk_networks);
        trust.with_trunks(networks)
    };

    if raw.incomplete || !b.sink.is_empty() {
        return None;
    }
    let (Some(clinic), Some(hours)) = (clinic, hours) else {
        return None;
    };
    let (numbers, dialed) = numbers;
    let agent_index = agents
        .iter()
        .enumerate()
        .map(|(i, agent)| (agent.id.clone(), i))
        .collect();
    let plan = Dialplan {
        path: path.to_path_buf(),
        clinic,
        numbers,
        dialed,
        menus,
        queues,
        agents,
        agent_index,
        hours,
        after_hours,
        directory,
        trust,
        limits,
        announcements,
        features,
        sources,
        intents,
        branches,
        trunks,
        voicemail,
        webhooks,
        speech,
    };
    checks::run(b.sink, &plan, &b.spans, raw);
    Some(plan)
}

/// Converts raw items, recording errors and the spans the checks need.
struct Builder<'s, 'a> {
    sink: &'s mut Sink<'a>,
    base_dir: &'s Path,
    /// Prompt file as written → the checked prompt or why it is unusable.
    prompts: HashMap<String, Result<Prompt, String>>,
    menus: HashSet<String>,
    queues: HashSet<String>,
    agents: HashSet<String>,
    spans: Spans,
    /// Whose targets are being built, for the silence rule.
    owner: Owner,
    /// A `[voicemail]` table was written: `{ voicemail = … }` targets may
    /// stand.
    voicemail_declared: bool,
    /// `[speech]` as far as it was built, with the model's dictionary.
    speech: Option<speech_section::SpeechBuild>,
}

impl Builder<'_, '_> {
    fn error(&mut self, kind: ErrorKind, span: Range<usize>, message: impl Into<String>) {
        self.sink.error(kind, span, message);
    }

    fn clinic(&mut self, raw: &RawPlan) -> Option<Clinic> {
        let Some(clinic) = &raw.clinic else {
            if !raw.clinic_declared {
                self.error(
                    ErrorKind::InvalidValue,
                    0..0,
                    "missing `[clinic]` table (name, time_zone, emergency_notice)",
                );
            }
            return None;
        };
        let name = self.non_empty(&clinic.name, "clinic name");
        let zone_name = clinic.time_zone.get_ref();
        let time_zone = match TimeZoneDatabase::bundled().get(zone_name) {
            Ok(zone) => Some(zone),
            Err(_) => {
                self.error(
                    ErrorKind::UnknownTimeZone,
                    clinic.time_zone.span(),
                    format!(
                        "unknown time zone `{zone_name}` (use an IANA name such as `America/Chicago`)"
                    ),
                );
                None
            }
        };
        let notice = self.prompt(&clinic.emergency_notice);
        let country = self.country(clinic.country.as_ref());
        Some(Clinic {
            name: name?,
            time_zone_name: zone_name.clone(),
            time_zone: time_zone?,
            emergency_notice: notice?,
            country: country?,
        })
    }

    fn numbers(&mut self, raw: &RawPlan) -> (Vec<Number>, HashMap<String, usize>) {
        if raw.numbers.is_empty() && !raw.incomplete {
            self.error(
                ErrorKind::InvalidValue,
                0..0,
                "no `[[numbers]]`: the dialplan answers no number",
            );
        }
        let mut numbers = Vec::new();
        let mut dialed: HashMap<String, (usize, usize)> = HashMap::new();
        for number in &raw.numbers {
            let index = numbers.len();
            for spelling in std::iter::once(&number.number).chain(number.aliases.iter()) {
                let key = normalize_number(spelling.get_ref());
                if key.is_empty() {
                    self.error(
                        ErrorKind::InvalidValue,
                        spelling.span(),
                        "a number or alias cannot be empty",
                    );
                    continue;
                }
                if let Some(&(_, offset)) = dialed.get(&key) {
                    let line = self.sink.line_of(offset);
                    self.error(
                        ErrorKind::Duplicate,
                        spelling.span(),
                        format!(
                            "number `{}` is already declared on line {line}",
                            spelling.get_ref()
                        ),
                    );
                } else {
                    dialed.insert(key, (index, spelling.span().start));
                }
            }
            let source = self.non_empty(&number.source, "source");
            let priority = number
                .priority
                .as_ref()
                .map_or(Priority::Routine, |p| *p.get_ref());
            let branch = number
                .branch
                .as_ref()
                .and_then(|b| self.non_empty(b, "branch"))
                .map(Branch::new);
            let answer_after = number
                .answer_after
                .as_ref()
                .and_then(|d| self.duration(d, "answer_after"));
            let announce = self.prompt_list(number.announce.as_ref());
            self.owner = Owner::Number(index);
            let then = self.target(&number.then, "`then`");
            self.owner = Owner::NumberAfterHours(index);
            let after_hours = number
                .after_hours
                .as_ref()
                .and_then(|after| self.after_hours(after.get_ref()));
            self.owner = Owner::Other;
            let exempt = match &number.exempt_from_safety {
                Some(reason) if reason.get_ref().trim().is_empty() => {
                    self.error(
                        ErrorKind::InvalidValue,
                        reason.span(),
                        "`exempt_from_safety` needs a reason (why this entry may skip the safety rules)",
                    );
                    None
                }
                Some(reason) => Some(reason.get_ref().clone()),
                None => None,
            };
            self.spans.numbers.push(number.number.span());
            self.spans.number_then.push(number.then.span());
            let (Some(source), Some(announce), Some(then)) = (source, announce, then) else {
                continue;
            };
            numbers.push(Number {
                number: number.number.get_ref().clone(),
                aliases: number.aliases.iter().map(|a| a.get_ref().clone()).collect(),
                source: SourceTag::new(source),
                priority,
                branch,
                answer_after,
                announce,
                then,
                after_hours,
                exempt_from_safety: exempt,
            });
        }
        let dialed = dialed.into_iter().map(|(k, (i, _))| (k, i)).collect();
        (numbers, dialed)
    }

    fn after_hours(&mut self, raw: &RawAfterHours) -> Option<AfterHours> {
        let announce = self.prompt_list(raw.announce.as_ref());
        let then = self.target(&raw.then, "`then`");
        Some(AfterHours {
            announce: announce?,
            then: then?,
        })
    }

    fn menus(&mut self, raw: &RawPlan) -> BTreeMap<MenuId, Menu> {
        let mut menus = BTreeMap::new();
        for keyed in &raw.menus {
            let menu = &keyed.item;
            let id = MenuId::new(&keyed.id);
            self.owner = Owner::Menu(id.clone());
            self.spans.menus.insert(id.clone(), keyed.span.clone());
            self.spans
                .menu_no_input
                .insert(id.clone(), menu.on_no_input.span());
            let prompt = self.prompt(&menu.prompt);
            let timeout = menu
                .timeout
                .as_ref()
                .map_or(Some(DEFAULT_TIMEOUT), |d| self.duration(d, "timeout"));
            let inter_digit = menu
                .inter_digit_timeout
                .as_ref()
                .map_or(Some(DEFAULT_INTER_DIGIT_TIMEOUT), |d| {
                    self.duration(d, "inter_digit_timeout")
                });
            let longest = menu
                .options
                .get_ref()
                .keys()
                .map(|k| k.get_ref().chars().count())
                .max()
                .unwrap_or(1);
            let max_digits = match &menu.max_digits {
                None => Some(longest),
                Some(n) => self.int_in(n, 1, 16, "max_digits").map(|n| n as usize),
            };
            let retries = match &menu.retries {
                None => Some(DEFAULT_RETRIES),
                Some(n) => self.int_in(n, 0, 10, "retries").map(|n| n as u32),
            };
            if menu.options.get_ref().is_empty() {
                self.error(
                    ErrorKind::InvalidValue,
                    menu.options.span(),
                    format!("menu `{id}` has no options"),
                );
            }
            let mut options = BTreeMap::new();
            let mut options_ok = true;
            for (digits, target) in menu.options.get_ref() {
                let text = digits.get_ref();
                if text.is_empty() || !text.chars().all(is_dtmf) {
                    self.error(
                        ErrorKind::InvalidValue,
                        digits.span(),
                        format!("option `{text}`: options are digits 0-9, `*` and `#`"),
                    );
                    options_ok = false;
                    continue;
                }
                if let Some(max) = max_digits
                    && text.chars().count() > max
                {
                    self.error(
                        ErrorKind::InvalidValue,
                        digits.span(),
                        format!("option `{text}` is longer than max_digits = {max}"),
                    );
                    options_ok = false;
                    continue;
                }
                match self.target(target, &format!("option `{text}`")) {
                    Some(target) => {
                        options.insert(text.clone(), target);
                    }
                    None => options_ok = false,
                }
            }
            let invalid_prompt = menu.invalid_prompt.as_ref().map(|p| self.prompt(p));
            let no_input_prompt = menu.no_input_prompt.as_ref().map(|p| self.prompt(p));
            let on_no_input = self.target(&menu.on_no_input, "`on_no_input`");
            let on_invalid = self.target(&menu.on_invalid, "`on_invalid`");
            let (
                Some(prompt),
                Some(timeout),
                Some(inter_digit_timeout),
                Some(max_digits),
                Some(retries),
                Some(on_no_input),
                Some(on_invalid),
                true,
            ) = (
                prompt,
                timeout,
                inter_digit,
                max_digits,
                retries,
                on_no_input,
                on_invalid,
                options_ok,
            )
            else {
                continue;
            };
            let menu_speech = self.menu_speech(&id, menu, &options);
            let Some(menu_speech) = menu_speech else {
                continue;
            };
            let (Some(invalid_prompt), Some(no_input_prompt)) = (
                invalid_prompt.map_or(Some(None), |p| p.map(Some)),
                no_input_prompt.map_or(Some(None), |p| p.map(Some)),
            ) else {
                continue;
            };
            menus.insert(
                id.clone(),
                Menu {
                    id,
                    prompt,
                    options,
                    timeout,
                    inter_digit_timeout,
                    max_digits,
                    retries,
                    invalid_prompt,
                    no_input_prompt,
                    on_no_input,
                    on_invalid,
                    speech: menu_speech,
                },
            );
        }
        self.owner = Owner::Other;
        menus
    }

    fn queues(&mut self, raw: &RawPlan) -> BTreeMap<QueueId, Queue> {
        let mut queues = BTreeMap::new();
        for keyed in &raw.queues {
            let queue = &keyed.item;
            let id = QueueId::new(&keyed.id);
            self.spans.queues.insert(id.clone(), keyed.span.clone());
            let mut ok = true;
            let mut skills = Vec::new();
            for skill in queue.skills.get_ref() {
                match self.non_empty(skill, "skill") {
                    Some(skill) => skills.push(Skill::new(skill)),
                    None => ok = false,
                }
            }
            let ring_timeout = self.duration(&queue.ring_timeout, "ring_timeout");
            let wrap_up = self.duration(&queue.wrap_up, "wrap_up");
            let max_wait = queue
                .max_wait
                .as_ref()
                .map(|d| self.duration(d, "max_wait"));
            let sla = queue
                .sla
                .as_ref()
                .map_or(Some(Queue::DEFAULT_SLA), |d| self.duration(d, "sla"));
            let aging = queue
                .aging
                .as_ref()
                .map_or(Some(Queue::DEFAULT_AGING), |d| self.duration(d, "aging"));
            let announce_every = queue
                .announce_every
                .as_ref()
                .map(|d| self.duration(d, "announce_every"));
            let abandoned_lead_after = queue
                .abandoned_lead_after
                .as_ref()
                .map(|d| self.duration(d, "abandoned_lead_after"));
            let respond_within = self.optional_positive(
                &queue.respond_within,
                "respond_within",
                Queue::DEFAULT_RESPOND_WITHIN,
            );
            let callback = queue.callback.as_ref().map(|c| self.callback(c));
            let max_length = queue
                .max_length
                .as_ref()
                .map(|n| self.int_in(n, 1, 100_000, "max_length").map(|n| n as usize));
            let hold_prompt = queue.hold_prompt.as_ref().map(|p| self.prompt(p));
            let hold_music = queue.hold_music.as_ref().map(|p| self.prompt(p));
            let on_max_wait = match &queue.on_max_wait {
                None => None,
                Some(target) => {
                    self.spans.queue_overflow.insert(id.clone(), target.span());
                    Some(self.overflow(target))
                }
            };
            if queue.max_wait.is_some() && queue.on_max_wait.is_none() {
                let span = queue
                    .max_wait
                    .as_ref()
                    .map_or(keyed.span.clone(), |d| d.span());
                self.error(
                    ErrorKind::InvalidValue,
                    span,
                    format!("queue `{id}` has `max_wait` but no `on_max_wait`"),
                );
                ok = false;
            }
            if queue.on_max_wait.is_some() && queue.max_wait.is_none() && queue.max_length.is_none()
            {
                let span = queue
                    .on_max_wait
                    .as_ref()
                    .map_or(keyed.span.clone(), |t| t.span());
                self.error(
                    ErrorKind::InvalidValue,
                    span,
                    format!(
                        "queue `{id}` has `on_max_wait` but neither `max_wait` nor `max_length`"
                    ),
                );
                ok = false;
            }
            if let Some(length) = &queue.max_length
                && queue.on_max_wait.is_none()
            {
                self.error(
                    ErrorKind::InvalidValue,
                    length.span(),
                    format!("queue `{id}` has `max_length` but no `on_max_wait` for callers who find it full"),
                );
                ok = false;
            }
            let name = queue
                .name
                .as_ref()
                .map_or(Some(keyed.id.clone()), |n| self.non_empty(n, "name"));
            let (
                Some(name),
                Some(ring_timeout),
                Some(wrap_up),
                Some(max_wait),
                Some(sla),
                Some(aging),
                Some(announce_every),
                Some(abandoned_lead_after),
                Some(respond_within),
                Some(callback),
                Some(max_length),
                Some(hold_prompt),
                Some(hold_music),
                Some(on_max_wait),
                true,
            ) = (
                name,
                ring_timeout,
                wrap_up,
                transpose(max_wait),
                sla,
                aging,
                transpose(announce_every),
                transpose(abandoned_lead_after),
                respond_within,
                transpose(callback),
                transpose(max_length),
                transpose(hold_prompt),
                transpose(hold_music),
                transpose(on_max_wait),
                ok,
            )
            else {
                continue;
            };
            queues.insert(
                id.clone(),
                Queue {
                    id,
                    name,
                    skills,
                    strategy: *queue.strategy.get_ref(),
                    ring_timeout,
                    wrap_up,
                    max_wait,
                    on_max_wait,
                    sla,
                    aging,
                    max_length,
                    hold_prompt,
                    hold_music,
                    announce_every,
                    abandoned_lead_after,
                    respond_within,
                    callback,
                },
            );
        }
        queues
    }

    /// A queue's `callback = { … }`: every value checked, its prompts
    /// present (reported at the `callback` key).
    fn callback(&mut self, raw: &S<crate::raw::RawCallback>) -> Option<crate::plan::Callback> {
        let callback = raw.get_ref();
        let offer_after = self.duration(&callback.offer_after, "offer_after");
        let key = {
            let text = callback.key.get_ref();
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_digit() || c == '*' => Some(c),
                _ => {
                    self.error(
                        ErrorKind::InvalidValue,
                        callback.key.span(),
                        format!(
                            "`key`: `{text}` is not one key (`0`-`9` or `*`; `#` ends a number)"
                        ),
                    );
                    None
                }
            }
        };
        let retries = match &callback.retries {
            None => Some(2),
            Some(n) => self.int_in(n, 0, 10, "retries").map(|n| n as u32),
        };
        let retry_every = self.optional_positive(
            &callback.retry_every,
            "retry_every",
            Duration::from_secs(300),
        );
        let max_share = match &callback.max_share {
            None => Some(0.5),
            Some(share) => {
                let value = *share.get_ref();
                if value > 0.0 && value <= 1.0 {
                    Some(value)
                } else {
                    self.error(
                        ErrorKind::InvalidValue,
                        share.span(),
                        format!("`max_share` must be more than 0 and at most 1, not {value}"),
                    );
                    None
                }
            }
        };
        let files = crate::plan::Callback::PROMPT_FILES
            .map(|file| self.prompt(&S::new(raw.span(), file.to_string())));
        let whisper = match &callback.whisper {
            Some(file) => self.prompt(file),
            None => self.prompt(&S::new(
                raw.span(),
                crate::plan::Callback::DEFAULT_WHISPER.to_string(),
            )),
        };
        let [Some(offer), Some(number), Some(accepted), Some(refused)] = files else {
            return None;
        };
        Some(crate::plan::Callback {
            offer_after: offer_after?,
            key: key?,
            retries: retries?,
            retry_every: retry_every?,
            // In (0, 1]: at most 1000, at least 1 after rounding up.
            max_share_permille: (max_share? * 1000.0).ceil() as u32,
            prompts: crate::plan::CallbackPrompts {
                offer,
                number,
                accepted,
                refused,
                whisper: whisper?,
            },
        })
    }

    /// `on_max_wait`: a queue, a message or voicemail. A menu or a silent
    /// hang-up is refused.
    fn overflow(&mut self, target: &S<RawTarget>) -> Option<Overflow> {
        match self.target(target, "`on_max_wait`")? {
            Target::Queue { queue, priority } => Some(Overflow::Queue {
                queue,
                priority: priority.into(),
            }),
            Target::Message(prompt) => Some(Overflow::Message {
                message: prompt.id().clone(),
            }),
            Target::Voicemail(queue) => Some(Overflow::Voicemail { queue }),
            Target::Menu(_) => {
                self.error(
                    ErrorKind::InvalidValue,
                    target.span(),
                    "`on_max_wait` can move the caller to a `queue`, play a `message` or take a `voicemail`, not go back to a menu",
                );
                None
            }
            Target::HangUp => {
                self.error(
                    ErrorKind::Safety,
                    target.span(),
                    "`on_max_wait` hangs up in silence: play a `message` (such as \"please call back later\") instead",
                );
                None
            }
        }
    }

    /// A target: exactly one of `menu`, `queue`, `message`, `voicemail`,
    /// `hangup`.
    fn target(&mut self, raw: &S<RawTarget>, what: &str) -> Option<Target> {
        let t = raw.get_ref();
        let count = [
            t.menu.is_some(),
            t.queue.is_some(),
            t.message.is_some(),
            t.voicemail.is_some(),
            t.hangup.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if count != 1 {
            self.error(
                ErrorKind::InvalidValue,
                raw.span(),
                format!(
                    "{what} must name exactly one of `menu`, `queue`, `message`, `voicemail` or `hangup`"
                ),
            );
            return None;
        }
        if let Some(priority) = &t.priority
            && t.queue.is_none()
        {
            self.error(
                ErrorKind::InvalidValue,
                priority.span(),
                "`priority` only goes with `queue`",
            );
            return None;
        }
        if let Some(menu) = &t.menu {
            if !self.menus.contains(menu.get_ref()) {
                self.missing(menu, "menu", what);
                return None;
            }
            return Some(Target::Menu(MenuId::new(menu.get_ref())));
        }
        if let Some(queue) = &t.queue {
            if !self.queues.contains(queue.get_ref()) {
                self.missing(queue, "queue", what);
                return None;
            }
            return Some(Target::Queue {
                queue: QueueId::new(queue.get_ref()),
                priority: t.priority.as_ref().map(|p| *p.get_ref()),
            });
        }
        if let Some(message) = &t.message {
            return self.prompt(message).map(Target::Message);
        }
        if let Some(queue) = &t.voicemail {
            if !self.queues.contains(queue.get_ref()) {
                self.missing(queue, "queue", what);
                return None;
            }
            if !self.voicemail_declared {
                self.error(
                    ErrorKind::InvalidValue,
                    queue.span(),
                    format!(
                        "{what} takes a voicemail, but the dialplan has no `[voicemail]` section (its `greeting` at least)"
                    ),
                );
                return None;
            }
            return Some(Target::Voicemail(QueueId::new(queue.get_ref())));
        }
        match &t.hangup {
            Some(hangup) if *hangup.get_ref() => {
                self.spans.silent.push((self.owner.clone(), raw.span()));
                Some(Target::HangUp)
            }
            Some(hangup) => {
                self.error(
                    ErrorKind::InvalidValue,
                    hangup.span(),
                    "`hangup` can only be `true`",
                );
                None
            }
            None => None,
        }
    }

    /// `[voicemail]`: the greeting, the beep, and the limits of a message.
    fn voicemail(&mut self, raw: &S<RawVoicemail>) -> Option<Voicemail> {
        let v = raw.get_ref();
        let greeting = self.prompt(&v.greeting);
        let beep = match &v.beep {
            Some(beep) => self.prompt(beep),
            None => self.prompt(&S::new(raw.span(), Voicemail::BEEP.to_string())),
        };
        let max_length = match &v.max_length {
            None => Some(Voicemail::MAX_LENGTH),
            Some(_) => self.positive(&v.max_length, "max_length"),
        };
        let retention = match &v.retention {
            None => Some(Voicemail::RETENTION),
            Some(_) => self.positive(&v.retention, "retention"),
        };
        let silence_after = match &v.silence_after {
            None => Some(Voicemail::SILENCE_AFTER),
            Some(_) => self.positive(&v.silence_after, "silence_after"),
        };
        let silence_level = match &v.silence_level {
            None => Some(Voicemail::SILENCE_LEVEL),
            Some(level) => self
                .int_in(level, 0, i64::from(i16::MAX), "silence_level")
                .and_then(|level| u16::try_from(level).ok()),
        };
        Some(Voicemail {
            greeting: greeting?,
            beep: beep?,
            max_length: max_length?,
            retention: retention?,
            silence_level: silence_level?,
            silence_after: silence_after?,
        })
    }

    fn missing(&mut self, name: &S<String>, kind: &str, what: &str) {
        let section = match kind {
            "menu" => "menus",
            "queue" => "queues",
            _ => "agents",
        };
        let known: Vec<&String> = match kind {
            "menu" => sorted(&self.menus),
            "queue" => sorted(&self.queues),
            _ => sorted(&self.agents),
        };
        let hint = if known.is_empty() {
            format!("there is no [{section}] entry")
        } else {
            format!("known: {}", backticked(&known))
        };
        self.error(
            ErrorKind::MissingReference,
            name.span(),
            format!("{what}: no {kind} `{}` ({hint})", name.get_ref()),
        );
    }

    fn prompt_list(&mut self, list: Option<&S<Vec<S<String>>>>) -> Option<Vec<Prompt>> {
        let Some(list) = list else {
            return Some(Vec::new());
        };
        let prompts: Vec<Option<Prompt>> = list.get_ref().iter().map(|p| self.prompt(p)).collect();
        prompts.into_iter().collect()
    }

    /// A prompt file, checked once and reported at every place that uses it.
    fn prompt(&mut self, file: &S<String>) -> Option<Prompt> {
        let name = file.get_ref();
        if !self.prompts.contains_key(name) {
            let checked = check_prompt(self.base_dir, name);
            self.prompts.insert(name.clone(), checked);
        }
        match self.prompts.get(name) {
            Some(Ok(prompt)) => Some(prompt.clone()),
            Some(Err(message)) => {
                let message = message.clone();
                self.error(ErrorKind::BadPrompt, file.span(), message);
                None
            }
            None => None,
        }
    }

    fn duration(&mut self, value: &S<String>, key: &str) -> Option<Duration> {
        let text = value.get_ref();
        // Days (`30d`, a voicemail's retention) count as 24 hours; months
        // and years, whose length varies, are refused.
        let parsed = text
            .parse::<jiff::SignedDuration>()
            .ok()
            .or_else(|| {
                let span = text.parse::<jiff::Span>().ok()?;
                span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                    .ok()
            })
            .and_then(|d| Duration::try_from(d).ok());
        if parsed.is_none() {
            self.error(
                ErrorKind::InvalidValue,
                value.span(),
                format!(
                    "`{key}`: `{text}` is not a duration (write `15s`, `500ms`, `3m` or `1m 30s`)"
                ),
            );
        }
        parsed
    }

    fn int_in(&mut self, value: &S<i64>, low: i64, high: i64, key: &str) -> Option<i64> {
        let n = *value.get_ref();
        if (low..=high).contains(&n) {
            Some(n)
        } else {
            self.error(
                ErrorKind::InvalidValue,
                value.span(),
                format!("`{key}` must be from {low} to {high}, not {n}"),
            );
            None
        }
    }

    fn non_empty(&mut self, value: &S<String>, key: &str) -> Option<String> {
        if value.get_ref().trim().is_empty() {
            self.error(
                ErrorKind::InvalidValue,
                value.span(),
                format!("`{key}` cannot be empty"),
            );
            None
        } else {
            Some(value.get_ref().clone())
        }
    }
}

/// Opens a prompt with `hound` and checks its format.
fn check_prompt(base_dir: &Path, name: &str) -> Result<Prompt, String> {
    if name.trim().is_empty() {
        return Err("a prompt file name cannot be empty".to_string());
    }
    let path = base_dir.join(name);
    if !path.is_file() {
        return Err(format!(
            "prompt `{name}` does not exist (prompts are relative to the dialplan's folder)"
        ));
    }
    let reader = hound::WavReader::open(&path)
        .map_err(|error| format!("prompt `{name}` is not a readable WAV file: {error}"))?;
    let spec = reader.spec();
    if spec.sample_rate != PROMPT_RATE
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        let channels = match spec.channels {
            1 => "mono".to_string(),
            2 => "stereo".to_string(),
            n => format!("{n}-channel"),
        };
        let format = match spec.sample_format {
            hound::SampleFormat::Int => "PCM",
            hound::SampleFormat::Float => "float",
        };
        return Err(format!(
            "prompt `{name}` is {} Hz {channels} {}-bit {format}; prompts must be 8000 Hz mono 16-bit PCM",
            spec.sample_rate, spec.bits_per_sample
        ));
    }
    let duration = Duration::from_secs_f64(f64::from(reader.duration()) / f64::from(PROMPT_RATE));
    Ok(Prompt {
        id: PromptId::new(name),
        path,
        duration,
    })
}

/// True when two prompt names designate the same file (`./a.wav` = `a.wav`).
pub(crate) fn same_prompt(a: &PromptId, b: &PromptId) -> bool {
    let clean = |p: &PromptId| -> PathBuf {
        Path::new(p.as_str())
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect()
    };
    clean(a) == clean(b)
}

fn is_dtmf(c: char) -> bool {
    c.is_ascii_digit() || c == '*' || c == '#'
}

/// `None` (not set) → `Some(None)`; `Some(None)` (set but bad) → `None`.
fn transpose<T>(value: Option<Option<T>>) -> Option<Option<T>> {
    match value {
        None => Some(None),
        Some(Some(v)) => Some(Some(v)),
        Some(None) => None,
    }
}

fn sorted(set: &HashSet<String>) -> Vec<&String> {
    let mut names: Vec<&String> = set.iter().collect();
    names.sort();
    names
}
