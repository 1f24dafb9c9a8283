//! Pass 3a, continued: what leads need: `[clinic] country`, `[sources]`,
//! `[[intents]]` with their lints, `[branches]` and `[trunks]`.
//!
//! The intent lints catch rules that cannot do what they say:
//!
//! - a rule naming a queue that does not exist;
//! - a rule with no phrase, or a phrase with no word (only punctuation);
//! - one phrase in two rules (the first always wins; the second is dead),
//!   or twice in one;
//! - an emergency rule after a non-emergency rule. The first rule with a
//!   phrase in the message wins, so an earlier rule takes every message
//!   that has both its phrase and the emergency's; when the earlier phrase
//!   is inside the emergency phrase (`pain` before `chest pain`), the
//!   emergency rule can never win at all. Either way a patient in danger
//!   would wait in a routine queue: `check` refuses it (a safety rule).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use guard::IpNetwork;
use regex::{Regex, RegexBuilder};

use super::Builder;
use crate::compile::RawPlan;
use crate::diagnostic::ErrorKind;
use crate::ids::{Branch, QueueId, SourceTag};
use crate::leads::branch::normalize_postal_code;
use crate::leads::intent::words;
use crate::leads::phone::is_e164;
use crate::leads::source::{MIN_SECRET, is_source_id};
use crate::leads::{
    BranchMap, Country, FALLBACK_QUEUE, IntentMatcher, IntentRule, Source, SourceSecret, Trunk,
    TrunkUri,
};
use crate::plan::Priority;
use crate::raw::S;

/// The most bytes a compiled `allow` / `deny` pattern may take.
const REGEX_SIZE: usize = 1 << 20;

/// An earlier rule that is not an emergency, as the order lint needs it.
struct RoutineRule {
    line: usize,
    queue: String,
    /// Each phrase as written and as words.
    phrases: Vec<(String, Vec<String>)>,
}

impl Builder<'_, '_> {
    /// `[clinic] country`.
    pub(super) fn country(&mut self, value: Option<&S<String>>) -> Option<Option<Country>> {
        let Some(value) = value else {
            return Some(None);
        };
        match value.get_ref().parse::<Country>() {
            Ok(country) => Some(Some(country)),
            Err(error) => {
                self.error(
                    ErrorKind::InvalidValue,
                    value.span(),
                    format!("`country`: {error}"),
                );
                None
            }
        }
    }

    /// `[sources.<id>]`.
    pub(super) fn sources(&mut self, raw: &RawPlan) -> BTreeMap<SourceTag, Source> {
        let mut sources = BTreeMap::new();
        for keyed in &raw.sources {
            let source = &keyed.item;
            let mut ok = true;
            if !is_source_id(&keyed.id) {
                self.error(
                    ErrorKind::InvalidValue,
                    keyed.span.clone(),
                    format!(
                        "source `{}`: a source id is 1 to 64 of `a-z`, `0-9`, `-`, `_`, `.` (it is sent in the X-Frontdesk-Source header)",
                        keyed.id
                    ),
                );
                ok = false;
            }
            if source.secret.get_ref().len() < MIN_SECRET {
                self.error(
                    ErrorKind::InvalidValue,
                    source.secret.span(),
                    format!(
                        "`secret` must be at least {MIN_SECRET} bytes: a short HMAC key can be guessed from one signed post"
                    ),
                );
                ok = false;
            }
            let respond_within = self.optional_positive(
                &source.respond_within,
                "respond_within",
                Source::RESPOND_WITHIN,
            );
            let accept_within = self.optional_positive(
                &source.accept_within,
                "accept_within",
                Source::ACCEPT_WITHIN,
            );
            let (Some(respond_within), Some(accept_within), true) =
                (respond_within, accept_within, ok)
            else {
                continue;
            };
            let id = SourceTag::new(&keyed.id);
            sources.insert(
                id.clone(),
                Source::new(
                    id,
                    SourceSecret::new(source.secret.get_ref().clone()),
                    respond_within,
                    accept_within,
                    source
                        .priority
                        .as_ref()
                        .map_or(Priority::Routine, |p| *p.get_ref()),
                ),
            );
        }
        sources
    }

    /// `[[intents]]` and their lints (see the module docs).
    pub(super) fn intents(&mut self, raw: &RawPlan) -> IntentMatcher {
        let mut rules = Vec::new();
        // A phrase's words joined by one space → where it was first written.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut routine: Vec<RoutineRule> = Vec::new();
        for spanned in &raw.intents {
            let rule = spanned.get_ref();
            let line = self.sink.line_of(spanned.span().start);
            let mut ok = true;
            let queue = rule.queue.get_ref();
            if !self.queues.contains(queue) {
                self.missing(&rule.queue, "queue", "intent");
                ok = false;
            }
            let emergency = rule.emergency.as_ref().is_some_and(|e| *e.get_ref());
            if rule.phrases.get_ref().is_empty() {
                self.error(
                    ErrorKind::InvalidValue,
                    rule.phrases.span(),
                    format!(
                        "the intent rule for queue `{queue}` has no phrases, so it never matches: give it `phrases` or remove it"
                    ),
                );
                ok = false;
            }
            let mut phrases: Vec<(String, Vec<String>)> = Vec::new();
            for phrase in rule.phrases.get_ref() {
                let text = phrase.get_ref();
                let phrase_words = words(text);
                if phrase_words.is_empty() {
                    self.error(
                        ErrorKind::InvalidValue,
                        phrase.span(),
                        format!(
                            "phrase `{text}` has no words (letters or digits), so it never matches"
                        ),
                    );
                    ok = false;
                    continue;
                }
                let key = phrase_words.join(" ");
                if let Some(&offset) = seen.get(&key) {
                    let first = self.sink.line_of(offset);
                    self.error(
                        ErrorKind::Duplicate,
                        phrase.span(),
                        format!(
                            "phrase `{text}` is already in the intent rule on line {first}: the first rule with it always wins, so here it is dead"
                        ),
                    );
                    ok = false;
                    continue;
                }
                seen.insert(key, phrase.span().start);
                phrases.push((text.clone(), phrase_words));
            }
            if emergency && !routine.is_empty() {
                self.emergency_after_routine(rule, &phrases, &routine);
                ok = false;
            }
            if !emergency {
                routine.push(RoutineRule {
                    line,
                    queue: queue.clone(),
                    phrases: phrases.clone(),
                });
            }
            if ok {
                rules.push(IntentRule::new(
                    QueueId::new(queue),
                    emergency,
                    phrases.into_iter().map(|(text, _)| text).collect(),
                ));
            }
        }
        if let Some(span) = raw.intents_span.clone().or(raw.sources_span.clone())
            && !self.queues.contains(FALLBACK_QUEUE)
        {
            self.error(
                ErrorKind::MissingReference,
                span,
                format!(
                    "leads that match no intent go to queue `{FALLBACK_QUEUE}`, which this dialplan does not have"
                ),
            );
        }
        IntentMatcher::new(rules)
    }

    /// Reports an emergency rule written after routine ones: at each of its
    /// phrases an earlier phrase always beats, or else at the rule.
    fn emergency_after_routine(
        &mut self,
        rule: &crate::raw::RawIntent,
        phrases: &[(String, Vec<String>)],
        routine: &[RoutineRule],
    ) {
        let mut reported = false;
        for phrase in rule.phrases.get_ref() {
            let Some((_, emergency_words)) =
                phrases.iter().find(|(text, _)| text == phrase.get_ref())
            else {
                continue;
            };
            let shadow = routine.iter().find_map(|earlier| {
                earlier
                    .phrases
                    .iter()
                    .find(|(_, earlier_words)| contains(emergency_words, earlier_words))
                    .map(|(text, _)| (earlier, text))
            });
            if let Some((earlier, text)) = shadow {
                self.error(
                    ErrorKind::Safety,
                    phrase.span(),
                    format!(
                        "emergency phrase `{}` can never win: the rule on line {} (queue `{}`, not an emergency) comes first and its phrase `{text}` is in it; put emergency rules first",
                        phrase.get_ref(),
                        earlier.line,
                        earlier.queue
                    ),
                );
                reported = true;
            }
        }
        if !reported && let Some(earlier) = routine.first() {
            let span = rule
                .emergency
                .as_ref()
                .map_or_else(|| rule.queue.span(), |e| e.span());
            let example = earlier.phrases.first().map_or(String::new(), |(text, _)| {
                format!(" (`{text}` and an emergency phrase)")
            });
            self.error(
                ErrorKind::Safety,
                span,
                format!(
                    "emergency rule for queue `{}` comes after the rule on line {} (queue `{}`, not an emergency), which wins every message that has both{example}; put emergency rules first",
                    rule.queue.get_ref(),
                    earlier.line,
                    earlier.queue
                ),
            );
        }
    }

    /// `[branches.<id>]`.
    pub(super) fn branches(&mut self, raw: &RawPlan) -> BranchMap {
        let mut entries: Vec<(String, Branch)> = Vec::new();
        // Normalised prefix → (branch, where).
        let mut seen: HashMap<String, (String, usize)> = HashMap::new();
        for keyed in &raw.branches {
            let prefixes = &keyed.item.postal_prefixes;
            if keyed.id.trim().is_empty() {
                self.error(
                    ErrorKind::InvalidValue,
                    keyed.span.clone(),
                    "a branch name cannot be empty",
                );
                continue;
            }
            if prefixes.get_ref().is_empty() {
                self.error(
                    ErrorKind::InvalidValue,
                    prefixes.span(),
                    format!("branch `{}` has no `postal_prefixes`", keyed.id),
                );
                continue;
            }
            for prefix in prefixes.get_ref() {
                let text = prefix.get_ref();
                let normal = normalize_postal_code(text);
                if normal.is_empty()
                    || !normal.bytes().all(|b| b.is_ascii_alphanumeric())
                    || normal.len()
                        != text
                            .chars()
                            .filter(|c| !c.is_whitespace() && *c != '-')
                            .count()
                {
                    self.error(
                        ErrorKind::InvalidValue,
                        prefix.span(),
                        format!(
                            "postal prefix `{text}`: 1 to 16 letters and digits (spaces and dashes are ignored)"
                        ),
                    );
                    continue;
                }
                if let Some((branch, offset)) = seen.get(&normal) {
                    let line = self.sink.line_of(*offset);
                    self.error(
                        ErrorKind::Duplicate,
                        prefix.span(),
                        format!(
                            "postal prefix `{text}` is already branch `{branch}`'s (line {line})"
                        ),
                    );
                    continue;
                }
                seen.insert(normal.clone(), (keyed.id.clone(), prefix.span().start));
                entries.push((normal, Branch::new(&keyed.id)));
            }
        }
        BranchMap::new(entries)
    }

    /// `[trunks.<id>]`, and the networks of the trunks named by address
    /// (trusted like `[trust] trunks`).
    pub(super) fn trunks(&mut self, raw: &RawPlan) -> (BTreeMap<String, Trunk>, Vec<IpNetwork>) {
        let mut trunks = BTreeMap::new();
        let mut networks = Vec::new();
        for keyed in &raw.trunks {
            let trunk = &keyed.item;
            let mut ok = true;
            let uri = match TrunkUri::parse(trunk.uri.get_ref()) {
                Ok(uri) => Some(uri),
                Err(message) => {
                    self.error(
                        ErrorKind::InvalidValue,
                        trunk.uri.span(),
                        format!("`uri`: {message}"),
                    );
                    None
                }
            };
            let username = trunk
                .username
                .as_ref()
                .map_or(String::new(), |u| u.get_ref().clone());
            let password = trunk
                .password
                .as_ref()
                .map_or(String::new(), |p| p.get_ref().clone());
            if username.is_empty()
                && !password.is_empty()
                && let Some(value) = &trunk.password
            {
                self.error(
                    ErrorKind::InvalidValue,
                    value.span(),
                    "`password` without a `username`: digest needs both",
                );
                ok = false;
            }
            if !is_e164(trunk.caller_id.get_ref()) {
                self.error(
                    ErrorKind::InvalidValue,
                    trunk.caller_id.span(),
                    format!(
                        "`caller_id`: `{}` is not an E.164 number (`+` and up to 15 digits)",
                        trunk.caller_id.get_ref()
                    ),
                );
                ok = false;
            }
            let allow = self.patterns(&trunk.allow, "allow");
            let deny = self.patterns(&trunk.deny, "deny");
            let ring_timeout = self.optional_positive(
                &trunk.ring_timeout,
                "ring_timeout",
                Trunk::DEFAULT_RING_TIMEOUT,
            );
            let (Some(uri), Some(allow), Some(deny), Some(ring_timeout), true) =
                (uri, allow, deny, ring_timeout, ok)
            else {
                continue;
            };
            if let Some(ip) = uri.ip() {
                networks.push(IpNetwork::host(ip));
            }
            trunks.insert(
                keyed.id.clone(),
                Trunk {
                    id: keyed.id.clone(),
                    uri,
                    username,
                    password,
                    caller_id: trunk.caller_id.get_ref().clone(),
                    allow,
                    deny,
                    ring_timeout,
                },
            );
        }
        (trunks, networks)
    }

    fn patterns(&mut self, list: &[S<String>], key: &str) -> Option<Vec<Regex>> {
        let mut patterns = Vec::new();
        let mut ok = true;
        for pattern in list {
            match RegexBuilder::new(pattern.get_ref())
                .size_limit(REGEX_SIZE)
                .build()
            {
                Ok(regex) => patterns.push(regex),
                Err(error) => {
                    let reason = error.to_string();
                    let reason = reason.lines().last().unwrap_or("invalid").trim();
                    self.error(
                        ErrorKind::InvalidValue,
                        pattern.span(),
                        format!(
                            "`{key}`: `{}` is not a regular expression ({reason})",
                            pattern.get_ref()
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(patterns)
    }

    /// A duration that must be more than zero; `default` when absent.
    pub(super) fn optional_positive(
        &mut self,
        value: &Option<S<String>>,
        key: &str,
        default: Duration,
    ) -> Option<Duration> {
        match value {
            None => Some(default),
            Some(_) => self.positive(value, key),
        }
    }
}

/// Whether `inner` is a run of consecutive words of `outer`.
fn contains(outer: &[String], inner: &[String]) -> bool {
    !inner.is_empty() && outer.windows(inner.len()).any(|window| window == inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_is_about_consecutive_words() {
        let w = |s: &str| words(s);
        assert!(contains(&w("chest pain"), &w("pain")));
        assert!(contains(&w("severe chest pain"), &w("chest pain")));
        assert!(!contains(&w("chest pain"), &w("back pain")));
        assert!(!contains(&w("pain in chest"), &w("chest pain")));
        assert!(!contains(&w("pain"), &w("chest pain")));
    }
}
