//! Where a model's files are, and its pronouncing dictionary.
//!
//! Debian's `pocketsphinx-en-us` installs `/usr/share/pocketsphinx/model/en-us`
//! holding the acoustic model (`en-us/`: `mdef`, `means`, … trained on
//! 16 kHz speech) and the CMU pronouncing dictionary
//! (`cmudict-en-us.dict`, 134,723 entries, alternates as `word(2)`). The
//! dialplan's `[speech] model` names that folder.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::SpeechError;

/// Debian's model folder (`pocketsphinx-en-us`).
pub const DEBIAN_MODEL: &str = "/usr/share/pocketsphinx/model/en-us";

/// The files of one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    /// The acoustic model's folder (holds `mdef`).
    pub acoustic: PathBuf,
    /// The pronouncing dictionary.
    pub dictionary: PathBuf,
    /// The phonetic language model (`en-us-phone.lm.bin`), the reference
    /// of confidence.
    pub phonetic: PathBuf,
}

impl ModelFiles {
    /// Finds the files in `folder`: the acoustic model in `folder/en-us` (or
    /// `folder` itself when it holds `mdef`), the dictionary
    /// `folder/cmudict-en-us.dict` (or the folder's one `*.dict`).
    pub fn find(folder: &Path) -> Result<ModelFiles, SpeechError> {
        Self::find_with(folder, None)
    }

    /// [`ModelFiles::find`], with the dictionary named (`[speech]
    /// dictionary`) when `dictionary` is given. When `folder` is the
    /// acoustic model itself (Debian's `…/model/en-us/en-us`), the
    /// dictionary and the phonetic model are looked for beside it too,
    /// where Debian puts them.
    pub fn find_with(folder: &Path, dictionary: Option<&Path>) -> Result<ModelFiles, SpeechError> {
        if !folder.is_dir() {
            return Err(SpeechError::Model(format!(
                "no model folder {} (install Debian's pocketsphinx-en-us, or name another folder)",
                folder.display()
            )));
        }
        let acoustic = [folder.join("en-us"), folder.to_path_buf()]
            .into_iter()
            .find(|candidate| candidate.join("mdef").is_file())
            .ok_or_else(|| {
                SpeechError::Model(format!(
                    "{} holds no acoustic model (no en-us/mdef)",
                    folder.display()
                ))
            })?;
        // Where the other files may be: the folder, and the acoustic
        // model's parent when the folder is the acoustic model.
        let mut places = vec![folder.to_path_buf()];
        if acoustic == folder
            && let Some(parent) = folder.parent()
        {
            places.push(parent.to_path_buf());
        }
        let dictionary = match dictionary {
            Some(named) if named.is_file() => named.to_path_buf(),
            Some(named) => {
                return Err(SpeechError::Model(format!(
                    "no dictionary {}",
                    named.display()
                )));
            }
            None => places
                .iter()
                .find_map(|place| find_dictionary(place))
                .ok_or_else(|| {
                    SpeechError::Model(format!(
                        "{} holds no dictionary (*.dict); name one with `dictionary`",
                        folder.display()
                    ))
                })?,
        };
        let phonetic = places
            .iter()
            .flat_map(|place| {
                [
                    place.join("en-us-phone.lm.bin"),
                    place.join("en-us-phone.lm.dmp"),
                ]
            })
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| {
                SpeechError::Model(format!(
                    "{} holds no phonetic language model (en-us-phone.lm.bin)",
                    folder.display()
                ))
            })?;
        Ok(ModelFiles {
            acoustic,
            dictionary,
            phonetic,
        })
    }
}

/// `place/cmudict-en-us.dict`, else the one `*.dict` in `place`.
fn find_dictionary(place: &Path) -> Option<PathBuf> {
    let debian = place.join("cmudict-en-us.dict");
    if debian.is_file() {
        return Some(debian);
    }
    std::fs::read_dir(place)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.is_file() && path.extension().is_some_and(|e| e == "dict"))
}

/// The words a model can recognise: its dictionary's headwords, lower-case
/// (alternate pronunciations, `word(2)`, are the same word).
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    words: HashSet<String>,
}

impl Dictionary {
    /// Reads a CMU-format dictionary (`word PH O N E S` per line).
    pub fn load(path: &Path) -> Result<Dictionary, SpeechError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| SpeechError::Model(format!("{}: {error}", path.display())))?;
        Ok(Dictionary::parse(&text))
    }

    /// The headwords of a dictionary's text. Lines that are not
    /// `word phones` are skipped.
    pub fn parse(text: &str) -> Dictionary {
        let words = text
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .map(|word| match word.find('(') {
                Some(at) if word.ends_with(')') => &word[..at],
                _ => word,
            })
            .filter(|word| !word.is_empty())
            .map(str::to_lowercase)
            .collect();
        Dictionary { words }
    }

    /// Whether the model can say `word` (lower-case).
    pub fn contains(&self, word: &str) -> bool {
        self.words.contains(word)
    }

    /// How many words it has.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// True when it has none.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headwords_alternates_and_junk() {
        let dictionary =
            Dictionary::parse("heart HH AA R T\nread R IY D\nread(2) R EH D\n\n  \nOrtho AO\n");
        assert!(dictionary.contains("heart"));
        assert!(dictionary.contains("read"));
        assert!(dictionary.contains("ortho"));
        assert!(!dictionary.contains("read(2)"));
        assert_eq!(dictionary.len(), 3);
    }

    /// Debian's layout: `model/en-us/{en-us/mdef, cmudict-en-us.dict,
    /// en-us-phone.lm.bin}`, in a folder of the test's own.
    fn debian_layout() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("en-us");
        std::fs::create_dir_all(top.join("en-us")).unwrap();
        std::fs::write(top.join("en-us/mdef"), "").unwrap();
        std::fs::write(top.join("cmudict-en-us.dict"), "heart HH AA R T\n").unwrap();
        std::fs::write(top.join("en-us-phone.lm.bin"), "").unwrap();
        dir
    }

    #[test]
    fn the_model_folder_or_the_acoustic_folder_itself_finds_the_same_files() {
        let dir = debian_layout();
        let top = dir.path().join("en-us");
        let from_top = ModelFiles::find(&top).unwrap();
        assert_eq!(from_top.acoustic, top.join("en-us"));
        assert_eq!(from_top.dictionary, top.join("cmudict-en-us.dict"));
        // DESIGN.md's `model = "<dir of the acoustic model>"`.
        let from_acoustic = ModelFiles::find(&top.join("en-us")).unwrap();
        assert_eq!(from_acoustic, from_top);
        // A dictionary named is taken; one that is not there is an error.
        let own = dir.path().join("clinic.dict");
        std::fs::write(&own, "cardiology K AA R D\n").unwrap();
        let named = ModelFiles::find_with(&top.join("en-us"), Some(&own)).unwrap();
        assert_eq!(named.dictionary, own);
        let missing = ModelFiles::find_with(&top, Some(&dir.path().join("none.dict")));
        assert!(missing.unwrap_err().to_string().contains("none.dict"));
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_without_panicking(text in "\\PC{0,400}") {
            let _ = Dictionary::parse(&text);
        }
    }
}
