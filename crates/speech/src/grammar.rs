//! A menu's grammar: its phrases, and filler words that soak up the rest.
//!
//! The decoder searches a JSGF grammar (W3C/Sun JSGF 1.0) rather than
//! spotting keywords or decoding open English: BENCHMARKS.md ("Speech
//! intent") has the measurements behind the choice. The grammar is "any
//! sequence of the menu's phrases and filler words":
//!
//! ```text
//! #JSGF V1.0;
//! grammar menu;
//! public <utterance> = ( <phrase> | <filler> )+ ;
//! <phrase> = cardiology | heart | my son | … ;
//! <filler> = um | doctor | please ;
//! ```
//!
//! so "heart doctor" decodes as the phrase "heart" and the filler
//! "doctor", and words that are on no list come out as fillers: the
//! recogniser's text then goes through the same matcher as typed text
//! (`ivr`'s), which finds an option or none. Without fillers every sound
//! would be forced onto some phrase.

/// Words that soak up what is not a phrase. Measured (BENCHMARKS.md,
/// "Speech intent"): a long list of common words takes phrases' sounds too
/// ("cardiology" heard as "dog uh no would the"); a hum, "doctor" (callers
/// say "heart doctor") and "please" keep every test phrase right and turn
/// words on no list into fillers. A phrase's own words are taken out.
pub const FILLERS: &[&str] = &["um", "doctor", "please"];

/// A menu's grammar, ready for the decoder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grammar {
    name: String,
    jsgf: String,
    /// The phrases, each its words joined by a space.
    phrases: Vec<String>,
}

impl Grammar {
    /// The grammar of `phrases` (lower-case words, as the matcher reads
    /// them; empty phrases are left out). Its name is derived from its
    /// text, so two menus with the same phrases share one search.
    pub fn new<'a>(phrases: impl IntoIterator<Item = &'a [String]>) -> Grammar {
        Grammar::with_fillers(phrases, FILLERS)
    }

    /// The same with another list of fillers (none: every sound is forced
    /// onto a phrase; BENCHMARKS.md compares the two).
    pub fn with_fillers<'a>(
        phrases: impl IntoIterator<Item = &'a [String]>,
        fillers: &[&str],
    ) -> Grammar {
        let mut alternatives: Vec<String> = Vec::new();
        let mut words = std::collections::BTreeSet::new();
        for phrase in phrases {
            if phrase.is_empty() {
                continue;
            }
            let text = phrase
                .iter()
                .map(|w| quote(w))
                .collect::<Vec<_>>()
                .join(" ");
            if !alternatives.contains(&text) {
                alternatives.push(text);
            }
            words.extend(phrase.iter().cloned());
        }
        let fillers: Vec<&str> = fillers
            .iter()
            .copied()
            .filter(|filler| !words.contains(*filler))
            .collect();
        let mut jsgf = String::from("#JSGF V1.0;\ngrammar menu;\n");
        match (alternatives.is_empty(), fillers.is_empty()) {
            (false, false) => {
                jsgf.push_str("public <utterance> = ( <phrase> | <filler> )+ ;\n");
            }
            (false, true) => jsgf.push_str("public <utterance> = <phrase> ;\n"),
            (true, _) => jsgf.push_str("public <utterance> = <filler>+ ;\n"),
        }
        if !alternatives.is_empty() {
            jsgf.push_str(&format!("<phrase> = {} ;\n", alternatives.join(" | ")));
        }
        if !fillers.is_empty() || alternatives.is_empty() {
            let fillers = if fillers.is_empty() {
                vec!["um"]
            } else {
                fillers
            };
            jsgf.push_str(&format!("<filler> = {} ;\n", fillers.join(" | ")));
        }
        let name = format!("menu-{:016x}", fnv1a(jsgf.as_bytes()));
        let phrases = alternatives;
        Grammar {
            name,
            jsgf,
            phrases,
        }
    }

    /// The phrases, each its words joined by a space.
    pub fn phrases(&self) -> &[String] {
        &self.phrases
    }

    /// The search's name in the decoder.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The JSGF text.
    pub fn jsgf(&self) -> &str {
        &self.jsgf
    }
}

/// A word as a JSGF token: the matcher's words are letters and digits
/// only, so nothing needs escaping; kept as a function for clarity.
fn quote(word: &str) -> String {
    word.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// FNV-1a, 64 bits: a stable name for a grammar's text.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrase(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn phrases_and_fillers_without_the_phrases_words() {
        let phrases = [phrase("heart"), phrase("my son"), phrase("heart")];
        let grammar = Grammar::new(phrases.iter().map(Vec::as_slice));
        assert!(grammar.jsgf().contains("<phrase> = heart | my son ;"));
        let filler_line = grammar
            .jsgf()
            .lines()
            .find(|l| l.starts_with("<filler>"))
            .unwrap();

        assert!(filler_line.contains(" doctor "));
        assert!(filler_line.contains("um"));
        assert_eq!(grammar.phrases(), ["heart", "my son"]);
        let again = Grammar::new(phrases.iter().map(Vec::as_slice));
        assert_eq!(grammar.name(), again.name());
    }
}
