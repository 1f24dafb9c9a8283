//! Asterisk's configuration file format, as `queues.conf`, `pjsip.conf` and
//! `extensions.conf` share it (Asterisk's `main/config.c` is the reference;
//! its wiki page "Asterisk Configuration Files" and "Templates" describe
//! it): `[section]` headers, `key = value` or `key => value` items, `;`
//! comments (`\;` is a literal semicolon) and `;-- … --;` block comments,
//! templates `[name](!)`, inheritance `[name](tpl1,tpl2)` (both at once:
//! `[name](!,tpl)`), and `#include` / `#tryinclude` / `#exec` directives.
//!
//! Nothing here touches the disk: [`parse`] takes the file's bytes, so the
//! importer decides what is read, and the parser can be tested on any input.
//! The input is hostile until proven otherwise (an operator may run the
//! importer on a file from anywhere): its size, its line length, its
//! sections and items are bounded, nothing panics, and every line the
//! parser cannot read is kept as a [`Note`] with its line number instead of
//! being dropped silently. Directives are noted, never followed: the
//! importer reads the three files it is given and nothing else.

use super::Note;

/// The largest file read (a big PBX's `extensions.conf` is a few hundred
/// kilobytes).
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// The longest line kept; longer ones are noted and skipped.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// Sections kept per file; more are noted once and dropped.
pub const MAX_SECTIONS: usize = 10_000;
/// Items kept per file; more are noted once and dropped.
pub const MAX_ITEMS: usize = 200_000;
/// Templates followed from one section (deeper chains are cut and noted).
pub const MAX_INHERITANCE_DEPTH: usize = 16;

/// A file that is not read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Larger than [`MAX_FILE_BYTES`].
    #[error("{file}: {size} bytes, more than the {MAX_FILE_BYTES} bytes read")]
    TooLarge {
        /// The file's name as given.
        file: String,
        /// Its size.
        size: usize,
    },
}

/// One `key = value` (or `key => value`) line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The key, trimmed (`exten`, `strategy`).
    pub key: String,
    /// The value, trimmed, comments removed, `\;` unescaped.
    pub value: String,
    /// Its line, 1-based.
    pub line: usize,
}

/// One `[name]` section and its items, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The name between the brackets.
    pub name: String,
    /// The header's line.
    pub line: usize,
    /// `(!)`: a template, never an object of its own.
    pub template: bool,
    /// The templates it inherits from, in order (`(tpl1,tpl2)`).
    pub inherits: Vec<String>,
    /// Its own items.
    pub items: Vec<Item>,
}

/// A parsed file: its sections and what could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file's name, for notes (`queues.conf`).
    pub file: String,
    /// Sections in file order. Items before the first header are dropped
    /// (and noted).
    pub sections: Vec<Section>,
    /// Lines not read: directives, malformed lines, anything over a limit.
    pub notes: Vec<Note>,
}

/// Parses one file. Fails only for a file over [`MAX_FILE_BYTES`]; every
/// other problem is a note.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Config, ConfigError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ConfigError::TooLarge {
            file: file.to_string(),
            size: bytes.len(),
        });
    }
    let text = String::from_utf8_lossy(bytes);
    let mut config = Config {
        file: file.to_string(),
        sections: Vec::new(),
        notes: Vec::new(),
    };
    let mut items = 0usize;
    let mut in_block_comment = false;
    let mut dropped_sections = false;
    let mut dropped_items = false;
    // `lines()` splits on `\n` and strips a trailing `\r`.
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let note = |message: String| Note::new(file, line, message);
        if raw.len() > MAX_LINE_BYTES {
            config.notes.push(note(format!(
                "line longer than {MAX_LINE_BYTES} bytes, skipped"
            )));
            continue;
        }
        let content = strip_comments(raw, &mut in_block_comment);
        let content = content.trim();
        if content.is_empty() {
            continue;
        }
        if let Some(directive) = content.strip_prefix('#') {
            let name = directive.split_whitespace().next().unwrap_or("");
            config.notes.push(note(format!(
                "`#{name}` not followed (the importer reads only the files it is given): {content}"
            )));
            continue;
        }
        if content.starts_with('[') {
            match parse_header(content) {
                Some(section) => {
                    if config.sections.len() >= MAX_SECTIONS {
                        if !dropped_sections {
                            config.notes.push(note(format!(
                                "more than {MAX_SECTIONS} sections: this one and the rest skipped"
                            )));
                            dropped_sections = true;
                        }
                        continue;
                    }
                    if section.append {
                        config.notes.push(note(format!(
                            "`[{}](+)` adds to an earlier section: its items are read as a section of their own",
                            section.name
                        )));
                    }
                    config.sections.push(Section {
                        name: section.name,
                        line,
                        template: section.template,
                        inherits: section.inherits,
                        items: Vec::new(),
                    });
                }
                None => config
                    .notes
                    .push(note(format!("malformed section header: {content}"))),
            }
            continue;
        }
        let Some((key, value)) = split_item(content) else {
            config
                .notes
                .push(note(format!("not `key = value`: {content}")));
            continue;
        };
        let Some(section) = config.sections.last_mut() else {
            config
                .notes
                .push(note(format!("item before any [section]: {content}")));
            continue;
        };
        if items >= MAX_ITEMS {
            if !dropped_items {
                config.notes.push(note(format!(
                    "more than {MAX_ITEMS} items: this one and the rest skipped"
                )));
                dropped_items = true;
            }
            continue;
        }
        items += 1;
        section.items.push(Item { key, value, line });
    }
    Ok(config)
}

/// `line` without its comments: `;` to the end of the line unless escaped
/// as `\;` (then a literal `;`), and `;-- … --;` blocks, which may span
/// lines (`in_block` carries that state).
fn strip_comments(line: &str, in_block: &mut bool) -> String {
    let mut kept = String::with_capacity(line.len());
    let mut rest = line;
    loop {
        if *in_block {
            match rest.find("--;") {
                Some(end) => {
                    rest = &rest[end + 3..];
                    *in_block = false;
                }
                None => return kept,
            }
        }
        let mut chars = rest.char_indices().peekable();
        let mut cut = None;
        while let Some((at, c)) = chars.next() {
            match c {
                '\\' if chars.peek().is_some_and(|&(_, next)| next == ';') => {
                    kept.push(';');
                    chars.next();
                }
                ';' => {
                    cut = Some(at);
                    break;
                }
                c => kept.push(c),
            }
        }
        let Some(at) = cut else {
            return kept;
        };
        if rest[at..].starts_with(";--") {
            *in_block = true;
            rest = &rest[at + 3..];
        } else {
            return kept;
        }
    }
}

struct Header {
    name: String,
    template: bool,
    append: bool,
    inherits: Vec<String>,
}

/// `[name]`, `[name](!)`, `[name](tpl1,tpl2)`, `[name](!,tpl)`, `[name](+)`.
fn parse_header(content: &str) -> Option<Header> {
    let inner = content.strip_prefix('[')?;
    let close = inner.find(']')?;
    let name = inner[..close].trim();
    if name.is_empty() {
        return None;
    }
    let rest = inner[close + 1..].trim();
    let mut header = Header {
        name: name.to_string(),
        template: false,
        append: false,
        inherits: Vec::new(),
    };
    if rest.is_empty() {
        return Some(header);
    }
    let options = rest.strip_prefix('(')?.strip_suffix(')')?;
    for option in options.split(',').map(str::trim) {
        match option {
            "" => return None,
            "!" => header.template = true,
            "+" => header.append = true,
            template => header.inherits.push(template.to_string()),
        }
    }
    Some(header)
}

/// `key = value` or `key => value`; the key must be non-empty.
fn split_item(content: &str) -> Option<(String, String)> {
    let at = content.find('=')?;
    let key = content[..at].trim();
    let value = content[at + 1..]
        .strip_prefix('>')
        .unwrap_or(&content[at + 1..]);
    if key.is_empty() {
        return None;
    }
    Some((key.to_string(), value.trim().to_string()))
}

impl Config {
    /// `section`'s items with its templates' first, as Asterisk applies
    /// them (each template's own templates before it, left to right), so
    /// that a later item overrides an earlier one. A missing template or a
    /// chain deeper than [`MAX_INHERITANCE_DEPTH`] (or a cycle) is noted.
    pub fn resolved(&self, section: &Section, notes: &mut Vec<Note>) -> Vec<Item> {
        let mut items = Vec::new();
        self.inherit(section, 0, &mut items, notes);
        items.extend(section.items.iter().cloned());
        items
    }

    fn inherit(
        &self,
        section: &Section,
        depth: usize,
        items: &mut Vec<Item>,
        notes: &mut Vec<Note>,
    ) {
        for name in &section.inherits {
            let template = self
                .sections
                .iter()
                .find(|candidate| &candidate.name == name && candidate.line < section.line);
            let Some(template) = template else {
                notes.push(Note::new(
                    &self.file,
                    section.line,
                    format!(
                        "[{}] inherits from `{name}`, which is not defined above it",
                        section.name
                    ),
                ));
                continue;
            };
            if depth >= MAX_INHERITANCE_DEPTH {
                notes.push(Note::new(
                    &self.file,
                    section.line,
                    format!(
                        "[{}]: templates nested deeper than {MAX_INHERITANCE_DEPTH}, cut",
                        section.name
                    ),
                ));
                return;
            }
            self.inherit(template, depth + 1, items, notes);
            items.extend(template.items.iter().cloned());
        }
    }
}

/// The last value of `key` among `items` (later items override earlier
/// ones, as with templates), with its line.
pub fn last<'a>(items: &'a [Item], key: &str) -> Option<&'a Item> {
    items
        .iter()
        .rev()
        .find(|item| item.key.eq_ignore_ascii_case(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    impl Config {
        /// The non-template section called `name` (the first one).
        fn section(&self, name: &str) -> Option<&Section> {
            self.sections
                .iter()
                .find(|section| section.name == name && !section.template)
        }
    }

    fn parsed(text: &str) -> Config {
        parse("t.conf", text.as_bytes()).unwrap()
    }

    #[test]
    fn sections_items_comments_and_arrows() {
        let config = parsed(
            "; a comment\n[general]\npersistentmembers = yes ; trailing\n\n[front-desk]\r\nstrategy=rrmemory\nmember => PJSIP/1001,0,Alice\nsemi = a\\;b\n",
        );
        assert_eq!(config.notes, vec![]);
        assert_eq!(config.sections.len(), 2);
        let desk = &config.sections[1];
        assert_eq!(desk.name, "front-desk");
        assert_eq!(desk.line, 5);
        assert_eq!(
            desk.items,
            vec![
                Item {
                    key: "strategy".into(),
                    value: "rrmemory".into(),
                    line: 6
                },
                Item {
                    key: "member".into(),
                    value: "PJSIP/1001,0,Alice".into(),
                    line: 7
                },
                Item {
                    key: "semi".into(),
                    value: "a;b".into(),
                    line: 8
                },
            ]
        );
    }

    #[test]
    fn block_comments_span_lines() {
        let config = parsed("[a]\nx = 1 ;-- one\ntwo --; \ny = 2\n;-- z = 3 --; w = 4\n");
        let keys: Vec<_> = config.sections[0]
            .items
            .iter()
            .map(|i| (i.key.as_str(), i.line))
            .collect();
        assert_eq!(keys, vec![("x", 2), ("y", 4), ("w", 5)]);
    }

    #[test]
    fn templates_and_inheritance_resolve_in_order() {
        let config = parsed(
            "[base](!)\ntype = endpoint\ncontext = a\n[phone](!,base)\ncontext = b\nallow = ulaw\n[1001](phone)\ncontext = c\n[1002](missing)\n",
        );
        let phone = config.section("1001").unwrap();
        assert!(
            config.section("base").is_none(),
            "a template is not an object"
        );
        let mut notes = Vec::new();
        let items = config.resolved(phone, &mut notes);
        assert_eq!(notes, vec![]);
        assert_eq!(last(&items, "type").unwrap().value, "endpoint");
        assert_eq!(last(&items, "context").unwrap().value, "c");
        assert_eq!(last(&items, "allow").unwrap().value, "ulaw");
        let broken = config.section("1002").unwrap();
        config.resolved(broken, &mut notes);
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].line, 9);
    }

    #[test]
    fn an_inheritance_cycle_is_cut_without_looping() {
        // Only templates above a section count, so a cycle needs a name
        // used twice; it must still end.
        let config = parsed("[a](!)\nx=1\n[a](!,a)\ny=2\n[b](a)\n");
        let mut notes = Vec::new();
        let items = config.resolved(config.section("b").unwrap(), &mut notes);
        assert!(items.len() <= 2 * MAX_INHERITANCE_DEPTH + 2);
    }

    #[test]
    fn directives_and_bad_lines_are_noted_with_their_line() {
        let config = parsed(
            "orphan = 1\n#include extra.conf\n[ok]\nno equals sign\n[bad\n#exec /bin/true\n",
        );
        let lines: Vec<_> = config.notes.iter().map(|n| n.line).collect();
        assert_eq!(lines, vec![1, 2, 4, 5, 6]);
        assert!(config.notes[1].message.contains("#include"));
    }

    #[test]
    fn oversized_input_is_refused_or_skipped() {
        let big = vec![b'x'; MAX_FILE_BYTES + 1];
        assert!(matches!(
            parse("big.conf", &big),
            Err(ConfigError::TooLarge { .. })
        ));
        let long = format!("[a]\nk = {}\n", "v".repeat(MAX_LINE_BYTES));
        let config = parsed(&long);
        assert!(config.sections[0].items.is_empty());
        assert_eq!(config.notes.len(), 1);
    }

    proptest! {
        #[test]
        fn any_bytes_parse_without_panic_and_keep_line_numbers_in_range(
            bytes in prop::collection::vec(any::<u8>(), 0..2000),
        ) {
            let config = parse("p.conf", &bytes).unwrap();
            let lines = bytes.split(|b| *b == b'\n').count();
            for section in &config.sections {
                prop_assert!(section.line >= 1 && section.line <= lines);
                for item in &section.items {
                    prop_assert!(item.line >= section.line && item.line <= lines);
                    prop_assert!(!item.key.is_empty());
                }
            }
            for note in &config.notes {
                prop_assert!(note.line >= 1 && note.line <= lines);
            }
        }

        #[test]
        fn config_like_text_round_trips_keys_and_values(
            entries in prop::collection::vec(("[a-z][a-z0-9_-]{0,8}", "[a-zA-Z0-9/,()_ .-]{0,20}", any::<bool>()), 0..30),
        ) {
            let mut text = String::from("[s]\n");
            for (key, value, arrow) in &entries {
                text.push_str(&format!("{key} {} {value} ; note\n", if *arrow { "=>" } else { "=" }));
            }
            let config = parse("p.conf", text.as_bytes()).unwrap();
            prop_assert!(config.notes.is_empty());
            let items = &config.sections[0].items;
            prop_assert_eq!(items.len(), entries.len());
            for (item, (key, value, _)) in items.iter().zip(&entries) {
                prop_assert_eq!(&item.key, key);
                prop_assert_eq!(&item.value, value.trim());
            }
        }
    }
}
