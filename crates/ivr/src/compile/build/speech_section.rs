//! `[speech]` and the menus' `speech`, `speech_threshold` and `confirm`
//! (issue 25).
//!
//! A plan that asks for speech is refused when the model is not where
//! `[speech] model` says (Debian's `pocketsphinx-en-us` installs it), when
//! a phrase has a word the model's dictionary lacks (the recogniser could
//! never hear it: Debian's has "orthopedic" but not "orthopedics"), and
//! when one phrase belongs to two options. A plan without speech never
//! reads the model.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Builder;
use crate::compile::RawPlan;
use crate::diagnostic::ErrorKind;
use crate::ids::MenuId;
use crate::leads::intent::words;
use crate::plan::Target;
use crate::raw::{RawMenu, RawSpeech};
use crate::speech_menu::{MenuSpeech, SpeechMatcher, SpeechSettings};

/// `[speech]` while the plan is built: the dictionary the menus' phrases
/// are checked against, once the model was found.
#[derive(Debug)]
pub(crate) struct SpeechBuild {
    dictionary: Option<(PathBuf, speech::Dictionary)>,
    /// `[speech] threshold`, for the menus that set none.
    threshold_permille: Option<u32>,
}

impl Builder<'_, '_> {
    /// `[speech]`: the model's folder, the keys prompt, the utterance limits.
    pub(super) fn speech_section(&mut self, raw: &RawPlan) -> Option<SpeechSettings> {
        let section = raw.speech.as_ref()?;
        let s: &RawSpeech = section.get_ref();
        let folder = self.model_folder(s.model.get_ref());
        let named_dictionary = s
            .dictionary
            .as_ref()
            .map(|d| self.model_folder(d.get_ref()));
        let files = match speech::ModelFiles::find_with(&folder, named_dictionary.as_deref()) {
            Ok(files) => Some(files),
            Err(error) => {
                let span = match (&s.dictionary, named_dictionary.as_ref()) {
                    (Some(d), Some(path)) if !path.is_file() => d.span(),
                    _ => s.model.span(),
                };
                self.error(
                    ErrorKind::MissingReference,
                    span,
                    format!("`model`: {error}"),
                );
                None
            }
        };
        let dictionary =
            files
                .as_ref()
                .and_then(|files| match speech::Dictionary::load(&files.dictionary) {
                    Ok(dictionary) => Some((files.dictionary.clone(), dictionary)),
                    Err(error) => {
                        self.error(
                            ErrorKind::MissingReference,
                            s.model.span(),
                            format!("`model`: {error}"),
                        );
                        None
                    }
                });
        // `threshold` is the menus' default: kept for them, not in the
        // settings.
        let threshold_permille = match &s.threshold {
            None => Some(None),
            Some(t) => self.permille(t, "threshold").map(Some),
        };
        self.speech = Some(SpeechBuild {
            dictionary,
            threshold_permille: threshold_permille.flatten(),
        });
        let keys_prompt = match &s.keys_prompt {
            None => Some(None),
            Some(file) => self.prompt(file).map(Some),
        };
        let max_concurrent = match &s.max_concurrent {
            None => Some(None),
            Some(n) => self
                .int_in(n, 1, 1024, "max_concurrent")
                .and_then(|n| usize::try_from(n).ok())
                .map(Some),
        };
        let end_of_speech = match &s.end_of_speech {
            None => Some(SpeechSettings::END_OF_SPEECH),
            Some(_) => self.positive(&s.end_of_speech, "end_of_speech"),
        };
        let max_utterance = match &s.max_utterance {
            None => Some(SpeechSettings::MAX_UTTERANCE),
            Some(_) => self.positive(&s.max_utterance, "max_utterance"),
        };
        let speech_level = match &s.speech_level {
            None => Some(SpeechSettings::SPEECH_LEVEL),
            Some(level) => self
                .int_in(level, 1, i64::from(i16::MAX), "speech_level")
                .and_then(|level| u16::try_from(level).ok()),
        };
        // A `threshold` out of range was reported: no settings.
        threshold_permille?;
        Some(SpeechSettings {
            model: folder,
            files: files?,
            keys_prompt: keys_prompt?,
            max_concurrent: max_concurrent?,
            end_of_speech: end_of_speech?,
            max_utterance: max_utterance?,
            speech_level: speech_level?,
        })
    }

    /// A confidence from 0 to 1 in thousandths; `None` (reported) when out
    /// of range.
    fn permille(&mut self, value: &crate::raw::S<f64>, key: &str) -> Option<u32> {
        let v = *value.get_ref();
        if (0.0..=1.0).contains(&v) {
            Some((v * 1000.0).round() as u32)
        } else {
            self.error(
                ErrorKind::InvalidValue,
                value.span(),
                format!("`{key}` must be from 0 to 1, not {v}"),
            );
            None
        }
    }

    /// The model's folder (or a file of it): as written when absolute, else relative to the
    /// dialplan's folder (like prompts).
    fn model_folder(&self, written: &str) -> PathBuf {
        let path = Path::new(written);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// A menu's `speech`, `speech_threshold` and `confirm`. `None`: an error
    /// was reported; `Some(None)`: the menu takes keys only.
    pub(super) fn menu_speech(
        &mut self,
        id: &MenuId,
        menu: &RawMenu,
        options: &BTreeMap<String, Target>,
    ) -> Option<Option<MenuSpeech>> {
        let Some(speech) = &menu.speech else {
            let stray = [
                menu.speech_threshold
                    .as_ref()
                    .map(|t| ("speech_threshold", t.span())),
                menu.confirm.as_ref().map(|c| ("confirm", c.span())),
            ];
            let mut ok = true;
            for (key, span) in stray.into_iter().flatten() {
                self.error(
                    ErrorKind::InvalidValue,
                    span,
                    format!("menu `{id}`: `{key}` needs `speech` (the phrases callers may say)"),
                );
                ok = false;
            }
            return ok.then_some(None);
        };
        let mut ok = true;
        if self.speech.is_none() {
            self.error(
                ErrorKind::MissingReference,
                speech.span(),
                format!(
                    "menu `{id}` takes speech, but the dialplan has no `[speech]` section (its `model`)"
                ),
            );
            ok = false;
        }
        if speech.get_ref().is_empty() {
            self.error(
                ErrorKind::InvalidValue,
                speech.span(),
                format!("menu `{id}`: `speech` has no options"),
            );
            ok = false;
        }
        let dictionary = self
            .speech
            .as_ref()
            .and_then(|build| build.dictionary.clone());
        let mut phrases: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut word_lists: Vec<Vec<String>> = Vec::new();
        // A phrase's words → the option that has it, for duplicates.
        let mut owners: HashMap<Vec<String>, String> = HashMap::new();
        for (option, list) in speech.get_ref() {
            let option_text = option.get_ref();
            if !options.contains_key(option_text) {
                self.error(
                    ErrorKind::MissingReference,
                    option.span(),
                    format!(
                        "menu `{id}`: speech option `{option_text}` is not one of its `options`"
                    ),
                );
                ok = false;
            }
            if list.get_ref().is_empty() {
                self.error(
                    ErrorKind::InvalidValue,
                    list.span(),
                    format!("menu `{id}`: speech option `{option_text}` has no phrases"),
                );
                ok = false;
            }
            for phrase in list.get_ref() {
                let text = phrase.get_ref();
                let phrase_words = words(text);
                if phrase_words.is_empty() {
                    self.error(
                        ErrorKind::InvalidValue,
                        phrase.span(),
                        format!("menu `{id}`: phrase `{text}` has no words"),
                    );
                    ok = false;
                    continue;
                }
                if let Some((path, dictionary)) = &dictionary {
                    for word in &phrase_words {
                        if !dictionary.contains(word) {
                            self.error(
                                ErrorKind::InvalidValue,
                                phrase.span(),
                                format!(
                                    "menu `{id}`: `{word}` (in phrase `{text}`) is not in the speech model's dictionary {}: the recogniser cannot hear it; use words it has",
                                    path.display()
                                ),
                            );
                            ok = false;
                        }
                    }
                }
                match owners.get(&phrase_words) {
                    Some(other) if other != option_text => {
                        self.error(
                            ErrorKind::Duplicate,
                            phrase.span(),
                            format!(
                                "menu `{id}`: phrase `{text}` belongs to two options, `{other}` and `{option_text}`"
                            ),
                        );
                        ok = false;
                    }
                    Some(_) => {}
                    None => {
                        owners.insert(phrase_words.clone(), option_text.clone());
                    }
                }
                word_lists.push(phrase_words);
                phrases
                    .entry(option_text.clone())
                    .or_default()
                    .push(text.clone());
            }
        }
        // The menu's own, else `[speech] threshold`, else the default.
        let threshold_permille = match &menu.speech_threshold {
            None => Some(
                self.speech
                    .as_ref()
                    .and_then(|build| build.threshold_permille)
                    .unwrap_or((MenuSpeech::THRESHOLD * 1000.0) as u32),
            ),
            Some(t) => self.permille(t, "speech_threshold"),
        };
        let mut confirm = BTreeMap::new();
        if let Some(prompts) = &menu.confirm {
            for (option, file) in prompts.get_ref() {
                if !phrases.contains_key(option.get_ref()) {
                    self.error(
                        ErrorKind::MissingReference,
                        option.span(),
                        format!(
                            "menu `{id}`: `confirm` names option `{}`, which has no `speech` phrases",
                            option.get_ref()
                        ),
                    );
                    ok = false;
                }
                match self.prompt(file) {
                    Some(prompt) => {
                        confirm.insert(option.get_ref().clone(), prompt);
                    }
                    None => ok = false,
                }
            }
        }
        let threshold_permille = threshold_permille?;
        if !ok {
            return None;
        }
        let grammar = speech::Grammar::new(word_lists.iter().map(Vec::as_slice));
        Some(Some(MenuSpeech {
            matcher: SpeechMatcher::new(&phrases),
            phrases,
            threshold_permille,
            confirm,
            grammar: Arc::new(grammar),
        }))
    }
}
