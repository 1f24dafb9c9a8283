//! Speech menus (issue 25): the phrases a caller may say instead of
//! pressing a key, and what the engine does with what was heard.
//!
//! A menu's `speech = { "2" = ["cardiology", "heart"], … }` maps options to
//! phrases. The recogniser's text goes through [`SpeechMatcher::choose`],
//! which is the leads' intent matcher ([`crate::leads::IntentMatcher`]:
//! whole words, case and punctuation ignored, the first option in key
//! order whose phrase occurs in the text); `frontdesk simulate --say` uses
//! the same function on typed text. At or above the menu's
//! `speech_threshold` the option is taken; below it the option's `confirm`
//! prompt ("did you say cardiology? press 1 for yes") is played, or, with
//! none, the menu falls back to keys, as it does when nothing matched or
//! no recogniser was free (`[speech] keys_prompt` says so).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::ids::QueueId;
use crate::leads::{IntentMatcher, IntentRule};
use crate::plan::Prompt;

/// `[speech]`: the model and how utterances are cut from the call's audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeechSettings {
    pub(crate) model: PathBuf,
    pub(crate) files: speech::ModelFiles,
    pub(crate) keys_prompt: Option<Prompt>,
    pub(crate) max_concurrent: Option<usize>,
    pub(crate) end_of_speech: Duration,
    pub(crate) max_utterance: Duration,
    pub(crate) speech_level: u16,
}

impl SpeechSettings {
    /// `end_of_speech` when left out: this long of silence after speech
    /// ends an utterance.
    pub const END_OF_SPEECH: Duration = Duration::from_millis(600);
    /// `max_utterance` when left out: an utterance is cut here.
    pub const MAX_UTTERANCE: Duration = Duration::from_secs(5);
    /// `speech_level` when left out: a 20 ms frame whose mean absolute
    /// level (of 32767) is over this is voice. About −36 dBFS.
    pub const SPEECH_LEVEL: u16 = 500;

    /// The model's folder as the dialplan names it.
    pub fn model(&self) -> &std::path::Path {
        &self.model
    }
    /// The model's files, found in that folder.
    pub fn files(&self) -> &speech::ModelFiles {
        &self.files
    }
    /// Played when a speech menu falls back to keys ("please use your
    /// keypad"); without it the menu's prompt plays again.
    pub fn keys_prompt(&self) -> Option<&Prompt> {
        self.keys_prompt.as_ref()
    }
    /// `[speech] max_concurrent`: recognitions at once, when the dialplan
    /// sets it (else `frontdesk run --speech-budget`).
    pub fn max_concurrent(&self) -> Option<usize> {
        self.max_concurrent
    }
    /// Silence that ends an utterance.
    pub fn end_of_speech(&self) -> Duration {
        self.end_of_speech
    }
    /// The longest utterance.
    pub fn max_utterance(&self) -> Duration {
        self.max_utterance
    }
    /// The level over which a frame is voice.
    pub fn speech_level(&self) -> u16 {
        self.speech_level
    }
}

/// A menu's phrases, threshold and confirm prompts.
#[derive(Debug, Clone)]
pub struct MenuSpeech {
    pub(crate) phrases: BTreeMap<String, Vec<String>>,
    pub(crate) matcher: SpeechMatcher,
    /// `speech_threshold` in thousandths (so that the plan stays `Eq`).
    pub(crate) threshold_permille: u32,
    pub(crate) confirm: BTreeMap<String, Prompt>,
    pub(crate) grammar: Arc<speech::Grammar>,
}

impl PartialEq for MenuSpeech {
    fn eq(&self, other: &Self) -> bool {
        self.phrases == other.phrases
            && self.threshold_permille == other.threshold_permille
            && self.confirm == other.confirm
    }
}

impl Eq for MenuSpeech {}

impl MenuSpeech {
    /// `speech_threshold` when left out.
    pub const THRESHOLD: f64 = 0.5;

    /// The options and their phrases, as written.
    pub fn phrases(&self) -> &BTreeMap<String, Vec<String>> {
        &self.phrases
    }
    /// The matcher the recogniser's text goes through.
    pub fn matcher(&self) -> &SpeechMatcher {
        &self.matcher
    }
    /// At or above this confidence an option is taken without asking.
    pub fn threshold(&self) -> f64 {
        f64::from(self.threshold_permille) / 1000.0
    }
    /// The option's "did you say …? press 1 for yes" prompt.
    pub fn confirm(&self, option: &str) -> Option<&Prompt> {
        self.confirm.get(option)
    }
    /// The grammar the recogniser decodes this menu's utterances with.
    pub fn grammar(&self) -> &Arc<speech::Grammar> {
        &self.grammar
    }
}

/// Text to an option: the leads' intent matcher with one rule per option.
#[derive(Debug, Clone)]
pub struct SpeechMatcher {
    options: Vec<String>,
    matcher: IntentMatcher,
}

/// What [`SpeechMatcher::choose`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeechChoice {
    /// The menu option (`2`).
    pub option: String,
    /// The phrase that matched, as written (`heart`).
    pub phrase: String,
}

impl SpeechMatcher {
    /// A matcher over `phrases` (option → phrases), options in key order.
    pub fn new(phrases: &BTreeMap<String, Vec<String>>) -> SpeechMatcher {
        let options: Vec<String> = phrases.keys().cloned().collect();
        let rules = phrases
            .iter()
            .map(|(option, phrases)| {
                // The rule's queue field is unused here: the option is found
                // by the rule's index.
                IntentRule::new(QueueId::new(option), false, phrases.clone())
            })
            .collect();
        SpeechMatcher {
            options,
            matcher: IntentMatcher::new(rules),
        }
    }

    /// The option whose phrase occurs in `text` (the first in key order);
    /// `None` when no phrase does.
    pub fn choose(&self, text: &str) -> Option<SpeechChoice> {
        let found = self.matcher.classify(text)?;
        Some(SpeechChoice {
            option: self.options.get(found.rule)?.clone(),
            phrase: found.phrase,
        })
    }
}

/// What the driver tells a session about speech
/// ([`crate::Session::handle_speech`]).
#[derive(Debug, Clone, PartialEq)]
pub enum SpeechInput {
    /// Voice started while listening: barge-in (stops a menu's prompt).
    Started,
    /// The recogniser's result for the utterance.
    Heard {
        /// The words heard, lower-case.
        text: String,
        /// The recogniser's confidence, 0–1.
        confidence: f64,
    },
    /// No recogniser could take the utterance (budget full, engine
    /// failed): the menu falls back to keys and says so.
    Unavailable,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> SpeechMatcher {
        let mut phrases = BTreeMap::new();
        phrases.insert("2".to_string(), vec!["cardiology".into(), "heart".into()]);
        phrases.insert("3".to_string(), vec!["my son".into(), "child".into()]);
        SpeechMatcher::new(&phrases)
    }

    #[test]
    fn whole_words_anywhere_in_the_text() {
        let m = matcher();
        assert_eq!(m.choose("heart doctor").unwrap().option, "2");
        assert_eq!(m.choose("um My SON please").unwrap().option, "3");
        assert_eq!(m.choose("my daughter"), None);
        assert_eq!(m.choose("hearty"), None);
        assert_eq!(m.choose(""), None);
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_matched_without_panicking(text in "\\PC{0,200}") {
            let _ = matcher().choose(&text);
        }
    }
}
