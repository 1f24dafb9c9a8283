//! Pass 3a, continued: agents, hours and holidays, the directory, trusted
//! sources, announcements and feature codes.

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;

use super::{Builder, transpose};
use crate::compile::RawPlan;
use crate::diagnostic::ErrorKind;
use crate::features::{FeatureCode, Features, is_feature_code};
use crate::hours::{BusinessHours, OpeningRange, parse_clock, parse_weekday, weekday_index};
use crate::ids::{AgentId, Branch, Language, QueueId, Skill};
use crate::plan::{Agent, Announcements, KnownPatient, Prompt, SkillLevel, normalize_number};
use crate::raw::S;
use guard::{IpNetwork, TrustedSources};

/// Open leads an agent may own at once unless `lead_capacity` says
/// (DESIGN.md).
const DEFAULT_LEAD_CAPACITY: u32 = 2;

impl Builder<'_, '_> {
    pub(super) fn agents(&mut self, raw: &RawPlan) -> Vec<Agent> {
        let mut agents: Vec<Agent> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for agent in &raw.agents {
            let id = agent.id.get_ref();
            if id.is_empty()
                || id
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, '@' | ':' | ';'))
            {
                self.error(
                    ErrorKind::InvalidValue,
                    agent.id.span(),
                    format!("agent id `{id}` must be a SIP user name (no spaces, `@`, `:` or `;`)"),
                );
                continue;
            }
            if let Some(&offset) = seen.get(id) {
                let line = self.sink.line_of(offset);
                self.error(
                    ErrorKind::Duplicate,
                    agent.id.span(),
                    format!("agent `{id}` is already declared on line {line}"),
                );
                continue;
            }
            seen.insert(id.clone(), agent.id.span().start);
            let name = self.non_empty(&agent.name, "name");
            let password = self.non_empty(&agent.password, "password");
            let mut ok = true;
            let mut skills: Vec<(Skill, SkillLevel)> = Vec::new();
            for skill in agent.skills.get_ref() {
                match self.non_empty(skill, "skill") {
                    Some(skill) => skills.push((Skill::new(skill), SkillLevel::MIN)),
                    None => ok = false,
                }
            }
            if let Some(levels) = &agent.skill_levels {
                for (skill, level) in levels.get_ref() {
                    let Some(entry) = skills
                        .iter_mut()
                        .find(|(s, _)| s.as_str() == skill.get_ref())
                    else {
                        self.error(
                            ErrorKind::InvalidValue,
                            skill.span(),
                            format!(
                                "skill level for `{}`, which agent `{id}` does not have",
                                skill.get_ref()
                            ),
                        );
                        ok = false;
                        continue;
                    };
                    let range = (SkillLevel::MIN.get(), SkillLevel::MAX.get());
                    let level = self
                        .int_in(level, range.0.into(), range.1.into(), "skill level")
                        .and_then(|level| u8::try_from(level).ok())
                        .and_then(SkillLevel::new);
                    match level {
                        Some(level) => entry.1 = level,
                        None => ok = false,
                    }
                }
            }
            let branch = agent
                .branch
                .as_ref()
                .map(|b| self.non_empty(b, "branch").map(Branch::new));
            let mut languages = Vec::new();
            for language in &agent.languages {
                match self.non_empty(language, "language") {
                    Some(language) => languages.push(Language::new(language)),
                    None => ok = false,
                }
            }
            let capacity = agent.capacity.as_ref().map_or(Some(1), |c| {
                self.int_in(c, 1, 100, "capacity").map(|c| c as u32)
            });
            let lead_capacity = agent
                .lead_capacity
                .as_ref()
                .map_or(Some(DEFAULT_LEAD_CAPACITY), |c| {
                    self.int_in(c, 0, 100, "lead_capacity").map(|c| c as u32)
                });
            let (
                Some(name),
                Some(password),
                Some(branch),
                Some(capacity),
                Some(lead_capacity),
                true,
            ) = (
                name,
                password,
                transpose(branch),
                capacity,
                lead_capacity,
                ok,
            )
            else {
                continue;
            };
            agents.push(Agent {
                id: AgentId::new(id),
                name,
                password,
                skills,
                branch,
                languages,
                capacity,
                lead_capacity,
            });
        }
        agents
    }

    pub(super) fn hours(&mut self, raw: &RawPlan, time_zone: jiff::tz::TimeZone) -> BusinessHours {
        let mut weekly: [Vec<OpeningRange>; 7] = Default::default();
        // Per weekday: the ranges so far with the offset of their `open` value.
        let mut placed: [Vec<(OpeningRange, usize)>; 7] = Default::default();
        for hours in &raw.hours {
            let open = parse_clock(hours.open.get_ref());
            let close = parse_clock(hours.close.get_ref());
            for (value, parsed, key) in
                [(&hours.open, open, "open"), (&hours.close, close, "close")]
            {
                if parsed.is_none() {
                    self.error(
                        ErrorKind::InvalidValue,
                        value.span(),
                        format!(
                            "`{key}` must be a 24-hour time like `08:00`, not `{}`",
                            value.get_ref()
                        ),
                    );
                }
            }
            let mut days = Vec::new();
            for day in hours.days.get_ref() {
                match parse_weekday(day.get_ref()) {
                    Some(weekday) => days.push((weekday_index(weekday), day)),
                    None => self.error(
                        ErrorKind::InvalidValue,
                        day.span(),
                        format!(
                            "`{}` is not a day of the week (monday … sunday, or mon … sun)",
                            day.get_ref()
                        ),
                    ),
                }
            }
            if hours.days.get_ref().is_empty() {
                self.error(
                    ErrorKind::InvalidValue,
                    hours.days.span(),
                    "`days` is empty",
                );
            }
            let (Some(open), Some(close)) = (open, close) else {
                continue;
            };
            if open >= 1440 || close <= open {
                self.error(
                    ErrorKind::InvalidValue,
                    hours.close.span(),
                    format!(
                        "`close` ({}) must be after `open` ({}) on the same day; split a range that crosses midnight in two",
                        hours.close.get_ref(),
                        hours.open.get_ref()
                    ),
                );
                continue;
            }
            let range = OpeningRange::new(open, close);
            for (index, day) in days {
                if let Some((other, offset)) =
                    placed[index].iter().find(|(r, _)| r.overlaps(&range))
                {
                    let line = self.sink.line_of(*offset);
                    self.error(
                        ErrorKind::OverlappingHours,
                        day.span(),
                        format!(
                            "hours overlap on {}: {range} overlaps {other} (line {line})",
                            day_name(index)
                        ),
                    );
                    continue;
                }
                placed[index].push((range, hours.open.span().start));
                weekly[index].push(range);
            }
        }
        for day in &mut weekly {
            day.sort_by_key(|r| r.open_minute());
        }
        let mut holidays = BTreeMap::new();
        let mut holiday_lines: HashMap<Date, usize> = HashMap::new();
        for holiday in &raw.holidays {
            let value = holiday.date.get_ref();
            let date = match (value.date, value.time, value.offset) {
                (Some(d), None, None) => Date::new(d.year as i16, d.month as i8, d.day as i8).ok(),
                _ => None,
            };
            let Some(date) = date else {
                self.error(
                    ErrorKind::InvalidValue,
                    holiday.date.span(),
                    format!("`date` must be a local date like 2026-12-25, not `{value}`"),
                );
                continue;
            };
            if let Some(&offset) = holiday_lines.get(&date) {
                let line = self.sink.line_of(offset);
                self.error(
                    ErrorKind::Duplicate,
                    holiday.date.span(),
                    format!("holiday {date} is already declared on line {line}"),
                );
                continue;
            }
            holiday_lines.insert(date, holiday.date.span().start);
            holidays.insert(date, holiday.name.as_ref().map(|n| n.get_ref().clone()));
        }
        BusinessHours::new(time_zone, weekly, holidays)
    }

    pub(super) fn directory(&mut self, raw: &RawPlan) -> HashMap<String, KnownPatient> {
        let mut directory = HashMap::new();
        let mut lines: HashMap<String, usize> = HashMap::new();
        for patient in &raw.directory {
            let key = normalize_number(patient.number.get_ref());
            if key.is_empty() {
                self.error(
                    ErrorKind::InvalidValue,
                    patient.number.span(),
                    "`number` cannot be empty",
                );
                continue;
            }
            if let Some(&offset) = lines.get(&key) {
                let line = self.sink.line_of(offset);
                self.error(
                    ErrorKind::Duplicate,
                    patient.number.span(),
                    format!(
                        "`{}` is already in the directory on line {line}",
                        patient.number.get_ref()
                    ),
                );
                continue;
            }
            lines.insert(key.clone(), patient.number.span().start);
            if patient.department.is_none() && patient.coordinator.is_none() {
                self.error(
                    ErrorKind::InvalidValue,
                    patient.number.span(),
                    "a directory entry needs a `department` or a `coordinator`",
                );
                continue;
            }
            let mut ok = true;
            if let Some(department) = &patient.department
                && !self.queues.contains(department.get_ref())
            {
                self.missing(department, "queue", "`department`");
                ok = false;
            }
            if let Some(coordinator) = &patient.coordinator
                && !self.agents.contains(coordinator.get_ref())
            {
                self.missing(coordinator, "agent", "`coordinator`");
                ok = false;
            }
            if !ok {
                continue;
            }
            directory.insert(
                key,
                KnownPatient {
                    department: patient
                        .department
                        .as_ref()
                        .map(|d| QueueId::new(d.get_ref())),
                    coordinator: patient
                        .coordinator
                        .as_ref()
                        .map(|c| AgentId::new(c.get_ref())),
                    language: patient
                        .language
                        .as_ref()
                        .map(|l| Language::new(l.get_ref())),
                    branch: patient.branch.as_ref().map(|b| Branch::new(b.get_ref())),
                },
            );
        }
        directory
    }

    pub(super) fn trust(&mut self, raw: &RawPlan) -> TrustedSources {
        let Some(trust) = &raw.trust else {
            return TrustedSources::default();
        };
        // Every entry a real CIDR range (guard::IpNetwork); a malformed one
        // is an error, never a network that covers less or more than meant.
        let parse = |list: &[S<String>], key: &str, trusted: bool, b: &mut Self| {
            list.iter()
                .filter_map(|entry| match entry.get_ref().parse::<IpNetwork>() {
                    Ok(net) if trusted && net.prefix() == 0 => {
                        b.error(
                            ErrorKind::InvalidValue,
                            entry.span(),
                            format!(
                                "`{key}`: `{}` trusts every address, which turns every per-source limit off",
                                entry.get_ref()
                            ),
                        );
                        None
                    }
                    Ok(net) => Some(net),
                    Err(message) => {
                        b.error(
                            ErrorKind::InvalidValue,
                            entry.span(),
                            format!("`{key}`: {message}"),
                        );
                        None
                    }
                })
                .collect::<Vec<IpNetwork>>()
        };
        let trunks = parse(&trust.trunks, "trunks", true, self);
        let agents = parse(&trust.agents, "agents", true, self);
        let untrusted = parse(&trust.untrusted, "untrusted", false, self);
        let proxies = parse(&trust.proxies, "proxies", true, self);
        let loopback = trust.loopback.as_ref().is_none_or(|l| *l.get_ref());
        TrustedSources::new(loopback)
            .with_trunks(trunks)
            .with_agents(agents)
            .with_untrusted(untrusted)
            .with_proxies(proxies)
    }

    pub(super) fn announcements(&mut self, raw: &RawPlan) -> Option<Announcements> {
        let a = raw.announcements.as_ref()?;
        let caller_number = self.prompt(&a.you_are_caller_number);
        let within = self.prompt(&a.most_callers_reach_someone_within);
        let minutes = self.prompt(&a.minutes);
        let digits: Vec<Option<Prompt>> =
            a.digits.get_ref().iter().map(|d| self.prompt(d)).collect();
        if digits.len() != 10 {
            self.error(
                ErrorKind::InvalidValue,
                a.digits.span(),
                format!(
                    "`digits` needs 10 prompts, for 0 to 9 in order; it has {}",
                    digits.len()
                ),
            );
            return None;
        }
        let digits: Vec<Prompt> = digits.into_iter().collect::<Option<_>>()?;
        let digits: [Prompt; 10] = digits.try_into().ok()?;
        Some(Announcements {
            you_are_caller_number: caller_number?,
            most_callers_reach_someone_within: within?,
            minutes: minutes?,
            digits,
        })
    }
    /// `[features]`: the codes (defaults where absent), each a string of
    /// digits, `*` and `#`, all different and none a dialed number.
    pub(super) fn features(&mut self, raw: &RawPlan, dialed: &HashMap<String, usize>) -> Features {
        let mut features = Features::default();
        let Some(raw) = &raw.features else {
            return features;
        };
        let given = [&raw.away, &raw.available, &raw.waiting];
        let prompts = [&raw.away_prompt, &raw.available_prompt, &raw.waiting_prompt];
        let mut accepted = [false; 3];
        for (at, feature) in FeatureCode::ALL.into_iter().enumerate() {
            if let Some(prompt) = prompts[at] {
                features.prompts[at] = self.prompt(prompt);
            }
            let Some(code) = given[at] else {
                continue;
            };
            let text = normalize_number(code.get_ref());
            let key = feature.as_str();
            if !is_feature_code(&text) {
                self.error(
                    ErrorKind::InvalidValue,
                    code.span(),
                    format!(
                        "`{key}`: `{}` is not a feature code (1 to 16 of `0`-`9`, `*`, `#`, e.g. `*41`)",
                        code.get_ref()
                    ),
                );
                continue;
            }
            if dialed.contains_key(&text) {
                self.error(
                    ErrorKind::Duplicate,
                    code.span(),
                    format!("`{key}`: `{text}` is also a dialed number of `[[numbers]]`"),
                );
                continue;
            }
            features.codes[at] = text;
            accepted[at] = true;
        }
        for (at, feature) in FeatureCode::ALL.into_iter().enumerate() {
            let (Some(code), true) = (given[at], accepted[at]) else {
                continue;
            };
            let clash = FeatureCode::ALL.into_iter().enumerate().find(|(other, _)| {
                *other != at
                    && (given[*other].is_none() || *other < at)
                    && features.codes[*other] == features.codes[at]
            });
            if let Some((_, other)) = clash {
                self.error(
                    ErrorKind::Duplicate,
                    code.span(),
                    format!(
                        "`{}`: `{}` is already the `{}` code",
                        feature.as_str(),
                        features.codes[at],
                        other.as_str()
                    ),
                );
            }
        }
        features
    }
}

fn day_name(index: usize) -> &'static str {
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .get(index)
    .copied()
    .unwrap_or("?")
}
