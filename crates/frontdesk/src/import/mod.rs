//! Importers: a clinic's configuration from another system, written as a
//! frontdesk dialplan (`frontdesk import …`). The output is a starting
//! point that passes `frontdesk check` once its prompts exist; everything
//! that could not be carried over is reported with its file and line, so
//! that the operator knows exactly what to redo by hand.

pub mod asterisk;

use std::fmt;

/// Something the importer could not translate (or the operator must do),
/// at a line of an input file; `line` 0 means the whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The file's name as given on the command line.
    pub file: String,
    /// 1-based; 0 for the file as a whole.
    pub line: usize,
    /// What was not translated, and why.
    pub message: String,
}

impl Note {
    /// A note at `file:line`.
    pub fn new(file: &str, line: usize, message: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}
