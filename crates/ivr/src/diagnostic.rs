//! What `frontdesk check` reports: errors with the file position they come from.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The kind of a dialplan error, one per cause an operator fixes differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// Not valid TOML.
    Syntax,
    /// A key the schema does not know (a typo, usually).
    UnknownKey,
    /// A value of the wrong type or form, or a missing required key.
    InvalidValue,
    /// A name that is declared twice (a number, an alias, an agent id).
    Duplicate,
    /// A target naming a menu, queue, agent or prompt that does not exist.
    MissingReference,
    /// A prompt file that does not exist or is not 8 kHz mono 16-bit PCM WAV.
    BadPrompt,
    /// An unknown IANA time zone name.
    UnknownTimeZone,
    /// Two business-hours ranges that overlap on the same day.
    OverlappingHours,
    /// A menu no dialed number can lead to.
    UnreachableMenu,
    /// Menus that loop with no way out to a person or a message.
    LoopWithoutExit,
    /// Queues whose overflow leads back to themselves.
    OverflowLoop,
    /// A queue no agent has every skill for.
    QueueWithoutAgent,
    /// A clinic safety rule: an entry that does not play the emergency
    /// notice first, or a path that ends in silence.
    Safety,
}

/// One error in a dialplan, at a 1-based line and column.
///
/// Displays as `PATH:LINE:COLUMN: message`, the form of DESIGN.md
/// ("`frontdesk check`") and of `POST /api/reload` errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What kind of mistake this is.
    pub kind: ErrorKind,
    /// The dialplan file, as it was named to the loader.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong, in an operator's words.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Every error found in a dialplan, in file order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// Wraps a non-empty list, sorted by position (stable for equal positions).
    pub(crate) fn new(mut list: Vec<Diagnostic>) -> Self {
        debug_assert!(!list.is_empty());
        list.sort_by_key(|d| (d.line, d.column));
        list.dedup();
        Self(list)
    }

    /// The errors, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a `Diagnostics` holds at least one error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each error as a `PATH:LINE:COLUMN: message` line.
    pub fn to_lines(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Collects diagnostics for one file, turning byte spans into line:column.
#[derive(Debug)]
pub(crate) struct Sink<'a> {
    path: &'a Path,
    text: &'a str,
    list: Vec<Diagnostic>,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(path: &'a Path, text: &'a str) -> Self {
        Self {
            path,
            text,
            list: Vec::new(),
        }
    }

    /// Records an error at the start of `span`.
    pub(crate) fn error(
        &mut self,
        kind: ErrorKind,
        span: Range<usize>,
        message: impl Into<String>,
    ) {
        let (line, column) = line_column(self.text, span.start);
        self.list.push(Diagnostic {
            kind,
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// 1-based line of a byte offset, for messages that point elsewhere.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        line_column(self.text, offset).0
    }

    pub(crate) fn finish(self) -> Result<(), Diagnostics> {
        if self.list.is_empty() {
            Ok(())
        } else {
            Err(Diagnostics::new(self.list))
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_is_one_based_and_counts_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // "é" is two bytes; the space after it is the third character.
        assert_eq!(line_column(text, 9), (2, 3));
        assert_eq!(line_column(text, 1000), (3, 1));
    }

    #[test]
    fn diagnostics_display_one_per_line_in_file_order() {
        let path = Path::new("plan.toml");
        let mut sink = Sink::new(path, "x\ny\n");
        sink.error(ErrorKind::Syntax, 2..3, "second");
        sink.error(ErrorKind::Syntax, 0..1, "first");
        let errors = sink.finish().unwrap_err();
        assert_eq!(
            errors.to_string(),
            "plan.toml:1:1: first\nplan.toml:2:1: second"
        );
        assert_eq!(errors.len(), 2);
    }
}
