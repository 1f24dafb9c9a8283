//! `frontdesk check PATH`.

use std::path::Path;
use std::process::ExitCode;

/// Checks the dialplan at `path`, prints each error as `PATH:LINE:COLUMN: message`.
pub fn check(path: &Path) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("{}: cannot read: {error}", path.display());
            return ExitCode::FAILURE;
        }
    };
    match text.parse::<toml::Table>() {
        Ok(_) => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            let (line, column) = error
                .span()
                .map(|span| line_column(&text, span.start))
                .unwrap_or((1, 1));
            eprintln!("{}:{line}:{column}: {}", path.display(), error.message());
            ExitCode::FAILURE
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
