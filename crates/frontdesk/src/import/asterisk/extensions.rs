//! `extensions.conf`'s dialplan: contexts, extensions and their numbered
//! steps (`exten => 1,1,Queue(front-desk)`, `exten => s,n(menu),Background(x)`,
//! `same => n,WaitExten(5)`), read from a parsed [`Config`].
//!
//! Priorities are kept as Asterisk numbers them: `1`, a number, or `n`
//! (the previous step's plus one), with an optional `(label)`; `hint`
//! lines are no steps. Applications are split into a name and arguments
//! (`Queue(front-desk,t,,,60)` → `Queue`, `["front-desk", "t", "", "", "60"]`),
//! commas inside nested parentheses or quotes kept.

use super::Note;
use super::config::Config;

/// Steps kept per extension; more are noted and dropped.
pub const MAX_STEPS: usize = 1000;

/// One step: `priority[(label)],Application(arguments)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Its priority number.
    pub priority: u32,
    /// Its label, if it has one (`n(menu)`).
    pub label: Option<String>,
    /// The application's name as written (`Queue`).
    pub app: String,
    /// Its arguments, trimmed.
    pub args: Vec<String>,
    /// The line it is on.
    pub line: usize,
}

impl Step {
    /// The application's name, lower-cased, for matching.
    pub fn app_is(&self, name: &str) -> bool {
        self.app.eq_ignore_ascii_case(name)
    }

    /// Argument `index`, or `""`.
    pub fn arg(&self, index: usize) -> &str {
        self.args.get(index).map_or("", String::as_str)
    }
}

/// One extension of a context, its steps sorted by priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// As written: `s`, `1`, `+15550100`, `_X.`.
    pub name: String,
    /// Its first line.
    pub line: usize,
    /// Its steps, by priority.
    pub steps: Vec<Step>,
}

impl Extension {
    /// A pattern (`_X.`) rather than one literal extension.
    pub fn is_pattern(&self) -> bool {
        self.name.starts_with('_')
    }
}

/// One `[context]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Its name.
    pub name: String,
    /// Its header's line.
    pub line: usize,
    /// Its extensions, in file order of their first line.
    pub extensions: Vec<Extension>,
}

impl Context {
    /// The extension called `name`, if any.
    pub fn extension(&self, name: &str) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.name == name)
    }
}

/// The dialplan of `config`: every context but `[general]` and
/// `[globals]`, whose items (settings and variables) are left to the
/// report. Lines that are not steps go to `notes`; `handled` gets the line
/// of every item read here.
pub fn contexts(config: &Config, notes: &mut Vec<Note>, handled: &mut Vec<usize>) -> Vec<Context> {
    let mut contexts = Vec::new();
    for section in &config.sections {
        if section.name.eq_ignore_ascii_case("general")
            || section.name.eq_ignore_ascii_case("globals")
        {
            continue;
        }
        if section.template || !section.inherits.is_empty() {
            notes.push(Note::new(
                &config.file,
                section.line,
                format!(
                    "context [{}]: templates in extensions.conf are not translated",
                    section.name
                ),
            ));
        }
        let mut context = Context {
            name: section.name.clone(),
            line: section.line,
            extensions: Vec::new(),
        };
        // The extension `same =>` continues, and its last priority.
        let mut current: Option<usize> = None;
        for item in &section.items {
            let note = |message: String| Note::new(&config.file, item.line, message);
            let key = item.key.to_ascii_lowercase();
            let (name, rest) = match key.as_str() {
                "exten" => match item.value.split_once(',') {
                    Some((name, rest)) => (Some(name.trim().to_string()), rest),
                    None => {
                        notes.push(note(format!("malformed `exten`: {}", item.value)));
                        continue;
                    }
                },
                "same" => (None, item.value.as_str()),
                "include" => {
                    notes.push(note(format!(
                        "`include => {}` not followed: translate that context's extensions into this one",
                        item.value
                    )));
                    handled.push(item.line);
                    continue;
                }
                _ => continue,
            };
            let Some((priority, application)) = rest.split_once(',') else {
                if priority_is_hint(rest) {
                    continue;
                }
                notes.push(note(format!("malformed step: {}", item.value)));
                continue;
            };
            let (priority, label) = split_label(priority.trim());
            if priority.eq_ignore_ascii_case("hint") {
                notes.push(note(format!(
                    "hint `{}` not translated (frontdesk shows agents' states itself)",
                    item.value
                )));
                handled.push(item.line);
                continue;
            }
            let index = match name {
                Some(name) if name.is_empty() => {
                    notes.push(note(format!(
                        "`exten` without an extension: {}",
                        item.value
                    )));
                    continue;
                }
                Some(name) => match context.extensions.iter().position(|e| e.name == name) {
                    Some(index) => index,
                    None => {
                        context.extensions.push(Extension {
                            name,
                            line: item.line,
                            steps: Vec::new(),
                        });
                        context.extensions.len() - 1
                    }
                },
                None => match current {
                    Some(index) => index,
                    None => {
                        notes.push(note(format!("`same` before any `exten`: {}", item.value)));
                        continue;
                    }
                },
            };
            current = Some(index);
            let extension = &mut context.extensions[index];
            let previous = extension.steps.last().map_or(0, |s| s.priority);
            let number = if priority.eq_ignore_ascii_case("n") {
                previous.saturating_add(1)
            } else {
                match priority.parse::<u32>() {
                    Ok(number) if number >= 1 => number,
                    _ => {
                        notes.push(note(format!(
                            "priority `{priority}` not understood: {}",
                            item.value
                        )));
                        continue;
                    }
                }
            };
            if extension.steps.len() >= MAX_STEPS {
                notes.push(note(format!(
                    "more than {MAX_STEPS} steps in `{}`: skipped",
                    extension.name
                )));
                continue;
            }
            let (app, args) = split_application(application.trim());
            handled.push(item.line);
            let step = Step {
                priority: number,
                label,
                app,
                args,
                line: item.line,
            };
            // Numbered out of order: keep the list sorted (a repeated
            // number replaces nothing; Asterisk refuses it, we keep both).
            let at = extension.steps.partition_point(|s| s.priority <= number);
            extension.steps.insert(at, step);
        }
        contexts.push(context);
    }
    contexts
}

fn priority_is_hint(rest: &str) -> bool {
    rest.trim().eq_ignore_ascii_case("hint")
}

/// `n(menu)` → (`n`, `menu`).
fn split_label(priority: &str) -> (&str, Option<String>) {
    match priority.split_once('(') {
        Some((number, label)) => {
            let label = label.strip_suffix(')').unwrap_or(label).trim();
            (
                number.trim(),
                (!label.is_empty()).then(|| label.to_string()),
            )
        }
        None => (priority, None),
    }
}

/// `Queue(a,b)` → (`Queue`, [`a`, `b`]); `Answer` or `Answer()` → no
/// arguments. An unclosed parenthesis takes the rest as arguments.
pub fn split_application(text: &str) -> (String, Vec<String>) {
    let Some(open) = text.find('(') else {
        return (text.trim().to_string(), Vec::new());
    };
    let name = text[..open].trim().to_string();
    let inner = &text[open + 1..];
    let inner = match inner.rfind(')') {
        Some(close) => &inner[..close],
        None => inner,
    };
    (name, split_arguments(inner))
}

/// Splits on commas outside parentheses, brackets and double quotes.
fn split_arguments(inner: &str) -> Vec<String> {
    if inner.trim().is_empty() {
        return Vec::new();
    }
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut quoted = false;
    let mut start = 0;
    for (at, c) in inner.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' | '[' if !quoted => depth += 1,
            ')' | ']' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                args.push(inner[start..at].trim().to_string());
                start = at + 1;
            }
            _ => {}
        }
    }
    args.push(inner[start..].trim().to_string());
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::asterisk::config::parse;
    use proptest::prelude::*;

    #[test]
    fn extensions_steps_labels_and_same() {
        let config = parse(
            "e.conf",
            b"[general]\nstatic=yes\n[ivr]\nexten => s,1,Answer()\n same => n(menu),Background(custom/menu&custom/more)\n same => n,WaitExten(5)\nexten => 1,1,Queue(front-desk,t,,,60)\nexten => 1,n,Hangup\nexten => 2,hint,PJSIP/1002\ninclude => other\n",
        )
        .unwrap();
        let mut notes = Vec::new();
        let mut handled = Vec::new();
        let contexts = contexts(&config, &mut notes, &mut handled);
        assert_eq!(contexts.len(), 1);
        let ivr = &contexts[0];
        let s = ivr.extension("s").unwrap();
        let steps: Vec<_> = s
            .steps
            .iter()
            .map(|s| (s.priority, s.label.as_deref(), s.app.as_str(), s.line))
            .collect();
        assert_eq!(
            steps,
            vec![
                (1, None, "Answer", 4),
                (2, Some("menu"), "Background", 5),
                (3, None, "WaitExten", 6)
            ]
        );
        let one = ivr.extension("1").unwrap();
        assert_eq!(one.steps[0].args, vec!["front-desk", "t", "", "", "60"]);
        assert_eq!(one.steps[1].priority, 2);
        assert_eq!(
            notes.iter().map(|n| n.line).collect::<Vec<_>>(),
            vec![9, 10]
        );
    }

    #[test]
    fn applications_split_on_top_level_commas() {
        assert_eq!(split_application("Answer"), ("Answer".into(), vec![]));
        assert_eq!(split_application("Answer()"), ("Answer".into(), vec![]));
        assert_eq!(
            split_application("Set(TIMEOUT(digit)=3)"),
            ("Set".into(), vec!["TIMEOUT(digit)=3".to_string()])
        );
        assert_eq!(
            split_application("GotoIf($[${X} = 1]?a,1:b,1)"),
            (
                "GotoIf".into(),
                vec![
                    "$[${X} = 1]?a".to_string(),
                    "1:b".to_string(),
                    "1".to_string()
                ]
            )
        );
        assert_eq!(
            split_application("Playback(\"a,b\",c"),
            (
                "Playback".into(),
                vec!["\"a,b\"".to_string(), "c".to_string()]
            )
        );
    }

    proptest! {
        #[test]
        fn any_extensions_text_reads_without_panic(
            lines in prop::collection::vec("(exten|same|include|x) ?=>? ?[_a-zA-Z0-9+.,()n ]{0,30}", 0..40),
        ) {
            let text = format!("[c]\n{}\n", lines.join("\n"));
            let config = parse("e.conf", text.as_bytes()).unwrap();
            let mut notes = Vec::new();
            let mut handled = Vec::new();
            for context in contexts(&config, &mut notes, &mut handled) {
                for extension in &context.extensions {
                    prop_assert!(extension.steps.windows(2).all(|w| w[0].priority <= w[1].priority));
                }
            }
        }
    }
}
