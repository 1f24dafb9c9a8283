//! Intent: which queue a patient's own words ask for (`[[intents]]`).
//!
//! A rule maps phrases to a queue; the first rule in file order with a
//! phrase in the message wins, whatever the phrase's place in the message,
//! so that emergency rules, written first, win over everything. Matching is
//! on whole words and whole phrases, case- and punctuation-insensitive:
//! "skin" is not in "skinny"; "back pain" is in "Back-pain!!" and in "my
//! back, pain everywhere", since punctuation only separates words (patients
//! do not punctuate for us).
//!
//! # Words
//! Text becomes a list of words ([`words`]): letters and digits (any
//! script, lower-cased with Unicode's rules) make words, an apostrophe
//! inside a word is dropped (`can't` is `cant`, so `can't`, `can’t` and
//! `cant` are one word), and everything else separates words. A phrase is
//! the same list; it matches where its words follow each other in the
//! message.
//!
//! # Cost
//! The matcher indexes every phrase by its first word in a hash map; the
//! message is read once, and at each word only the phrases starting with
//! that word are compared. Classification is linear in the message's
//! length and does not grow with the number of phrases (the criterion
//! bench `ivr/benches/intent.rs`: BENCHMARKS.md has the figure). It is
//! sans-IO: the same matcher serves web forms now and speech later.

use std::collections::HashMap;

use crate::ids::QueueId;

/// One `[[intents]]` rule, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentRule {
    pub(crate) queue: QueueId,
    pub(crate) emergency: bool,
    pub(crate) phrases: Vec<String>,
}

impl IntentRule {
    /// A rule (the dialplan's checker makes them; tests and benches too).
    pub fn new(queue: QueueId, emergency: bool, phrases: Vec<String>) -> Self {
        IntentRule {
            queue,
            emergency,
            phrases,
        }
    }

    /// The queue its leads go to.
    pub fn queue(&self) -> &QueueId {
        &self.queue
    }

    /// Whether a match makes the lead an emergency (urgent, flagged first,
    /// the `emergency_lead` alert).
    pub fn emergency(&self) -> bool {
        self.emergency
    }

    /// Its phrases as written.
    pub fn phrases(&self) -> &[String] {
        &self.phrases
    }
}

/// What [`IntentMatcher::classify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentMatch {
    /// The rule's index in file order (0 for the first `[[intents]]`).
    pub rule: usize,
    /// The rule's queue.
    pub queue: QueueId,
    /// The rule's `emergency`.
    pub emergency: bool,
    /// The phrase that matched, as the dialplan writes it (`knee`).
    pub phrase: String,
}

/// A phrase in the index: its rule, its place in the rule, and the words
/// after its first one.
#[derive(Debug, Clone)]
struct Candidate {
    rule: usize,
    phrase: usize,
    rest: Box<[Box<str>]>,
}

/// The rules, indexed for classification.
#[derive(Debug, Clone, Default)]
pub struct IntentMatcher {
    rules: Vec<IntentRule>,
    by_first_word: HashMap<Box<str>, Vec<Candidate>>,
}

impl IntentMatcher {
    /// Indexes `rules`. A phrase with no words (only punctuation) can never
    /// match and is left out; the checker refuses such phrases.
    pub fn new(rules: Vec<IntentRule>) -> Self {
        let mut by_first_word: HashMap<Box<str>, Vec<Candidate>> = HashMap::new();
        for (rule_index, rule) in rules.iter().enumerate() {
            for (phrase_index, phrase) in rule.phrases.iter().enumerate() {
                let mut phrase_words = words(phrase).into_iter();
                let Some(first) = phrase_words.next() else {
                    continue;
                };
                by_first_word
                    .entry(first.into_boxed_str())
                    .or_default()
                    .push(Candidate {
                        rule: rule_index,
                        phrase: phrase_index,
                        rest: phrase_words.map(String::into_boxed_str).collect(),
                    });
            }
        }
        IntentMatcher {
            rules,
            by_first_word,
        }
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[IntentRule] {
        &self.rules
    }

    /// The first rule (in file order) with a phrase in `message`; among
    /// its phrases, the one found earliest in the message (the longest, if
    /// two start at the same word). `None`: no rule matches.
    pub fn classify(&self, message: &str) -> Option<IntentMatch> {
        let text = Words::of(message);
        // (rule, start word, words) of the best match so far.
        let mut best: Option<(usize, usize, usize, usize)> = None;
        for start in 0..text.len() {
            let Some(candidates) = self.by_first_word.get(text.word(start)) else {
                continue;
            };
            for candidate in candidates {
                if best.is_some_and(|(rule, at, ..)| {
                    rule < candidate.rule || (rule == candidate.rule && at < start)
                }) {
                    // An earlier rule matched, or this one did earlier in
                    // the message.
                    continue;
                }
                let fits = candidate
                    .rest
                    .iter()
                    .enumerate()
                    .all(|(offset, word)| text.get(start + 1 + offset) == Some(word));
                if fits {
                    let length = candidate.rest.len() + 1;
                    let better = match best {
                        None => true,
                        Some((rule, at, _, words)) => {
                            candidate.rule < rule
                                || (candidate.rule == rule && at == start && length > words)
                        }
                    };
                    if better {
                        best = Some((candidate.rule, start, candidate.phrase, length));
                    }
                }
            }
            if best.is_some_and(|(rule, ..)| rule == 0) {
                // Nothing can beat the first rule.
                break;
            }
        }
        let (rule, _, phrase, _) = best?;
        let matched = self.rules.get(rule)?;
        Some(IntentMatch {
            rule,
            queue: matched.queue.clone(),
            emergency: matched.emergency,
            phrase: matched.phrases.get(phrase)?.clone(),
        })
    }
}

/// The words of `text`, as the matcher sees them (see the module docs).
pub fn words(text: &str) -> Vec<String> {
    let text = Words::of(text);
    (0..text.len()).map(|i| text.word(i).to_string()).collect()
}

/// A text's words in one buffer: cheap to build, no allocation per word.
struct Words {
    buffer: String,
    /// Each word's byte range in `buffer`.
    spans: Vec<(usize, usize)>,
}

impl Words {
    fn of(text: &str) -> Words {
        let mut buffer = String::with_capacity(text.len());
        let mut spans = Vec::new();
        let mut start: Option<usize> = None;
        for c in text.chars() {
            if c.is_alphanumeric() {
                if start.is_none() {
                    start = Some(buffer.len());
                }
                if c.is_ascii() {
                    buffer.push(c.to_ascii_lowercase());
                } else {
                    buffer.extend(c.to_lowercase());
                }
            } else if is_apostrophe(c) && start.is_some() {
                // Inside a word: dropped, the word goes on (`can't`).
            } else if let Some(from) = start.take() {
                spans.push((from, buffer.len()));
            }
        }
        if let Some(from) = start {
            spans.push((from, buffer.len()));
        }
        Words { buffer, spans }
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    fn word(&self, index: usize) -> &str {
        let (from, to) = self.spans[index];
        &self.buffer[from..to]
    }

    fn get(&self, index: usize) -> Option<&str> {
        (index < self.spans.len()).then(|| self.word(index))
    }
}

/// `'`, `’` (the typographer's), `ʼ`, and `` ` `` as people type them.
fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{02BC}' | '`')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> IntentMatcher {
        let rule = |queue: &str, emergency: bool, phrases: &[&str]| {
            IntentRule::new(
                QueueId::new(queue),
                emergency,
                phrases.iter().map(|p| p.to_string()).collect(),
            )
        };
        IntentMatcher::new(vec![
            rule(
                "urgent-care",
                true,
                &["chest pain", "can't breathe", "cannot breathe", "stroke"],
            ),
            rule("orthopedics", false, &["knee", "back pain", "fracture"]),
            rule("dermatology", false, &["rash", "acne", "mole", "skin"]),
            rule("pediatrics", false, &["my son", "my daughter", "child"]),
        ])
    }

    fn queue_of(message: &str) -> Option<(String, String)> {
        demo()
            .classify(message)
            .map(|m| (m.queue.to_string(), m.phrase))
    }

    #[test]
    fn whole_words_only() {
        assert_eq!(
            queue_of("my knee hurts since Sunday"),
            Some(("orthopedics".into(), "knee".into()))
        );
        assert_eq!(queue_of("I feel skinny"), None);
        assert_eq!(queue_of("kneel"), None);
        assert_eq!(
            queue_of("SKIN!!!"),
            Some(("dermatology".into(), "skin".into()))
        );
    }

    #[test]
    fn case_and_punctuation_do_not_matter() {
        assert_eq!(
            queue_of("Chest-Pain since this morning."),
            Some(("urgent-care".into(), "chest pain".into()))
        );
        assert_eq!(
            queue_of("I CAN’T BREATHE"),
            Some(("urgent-care".into(), "can't breathe".into()))
        );
        assert_eq!(
            queue_of("i cant breathe"),
            Some(("urgent-care".into(), "can't breathe".into()))
        );
        assert_eq!(
            queue_of("chest, pain").map(|m| m.1),
            Some("chest pain".into())
        );
        assert_eq!(queue_of("chest and pain"), None);
    }

    #[test]
    fn the_first_rule_wins_wherever_its_phrase_is() {
        // The knee comes first in the text, the emergency first in the plan.
        assert_eq!(
            queue_of("my knee, and now chest pain"),
            Some(("urgent-care".into(), "chest pain".into()))
        );
        // Within a rule, the phrase found first in the text.
        assert_eq!(
            queue_of("a fracture of the knee").map(|m| m.1),
            Some("fracture".into())
        );
        assert_eq!(
            queue_of("my daughter has a rash"),
            Some(("dermatology".into(), "rash".into()))
        );
    }

    #[test]
    fn no_match_and_empty_text() {
        assert_eq!(queue_of("I would like an appointment"), None);
        assert_eq!(queue_of(""), None);
        assert_eq!(queue_of("!!! ... ???"), None);
        assert_eq!(IntentMatcher::default().classify("knee"), None);
    }

    #[test]
    fn words_split_and_lower_case_any_script() {
        assert_eq!(words("Ça VA? l'œil"), ["ça", "va", "lœil"]);
        assert_eq!(words("'quoted' — text"), ["quoted", "text"]);
        assert_eq!(words("x2 3d"), ["x2", "3d"]);
    }

    #[test]
    fn a_longer_phrase_at_the_same_place_wins_within_a_rule() {
        let matcher = IntentMatcher::new(vec![IntentRule::new(
            QueueId::new("q"),
            false,
            vec!["back".into(), "back pain".into()],
        )]);
        assert_eq!(
            matcher.classify("back pain again").map(|m| m.phrase),
            Some("back pain".into())
        );
    }
}
