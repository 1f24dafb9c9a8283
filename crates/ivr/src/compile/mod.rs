//! From TOML text to a checked [`Dialplan`], collecting every error.
//!
//! Three passes, so that one mistake does not hide the others:
//!
//! 1. **Syntax.** The text is parsed with recovery into a spanned tree;
//!    every syntax error is reported. If there is any, checking stops there
//!    (the tree is not trustworthy enough for the rest).
//! 2. **Schema.** Each item (the `[clinic]` table, each `[[numbers]]` entry,
//!    each `[menus.<id>]`, …) is deserialized on its own, so an error in one
//!    does not stop the others. Inside an item, an unknown key is reported,
//!    removed and the item tried again, so every unknown key shows up; any
//!    other error (a wrong type, a missing key) ends that item.
//! 3. **Meaning.** Values are parsed into domain types (durations, time
//!    zones, clock times, addresses, prompts read with `hound`), names are
//!    resolved, and — once every item has parsed — the whole-plan checks
//!    run: unreachable menus, loops with no way out, overflow loops, queues
//!    no agent can serve, and the clinic safety rules.

mod build;
mod checks;

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::diagnostic::{Diagnostics, ErrorKind, Sink};
use crate::plan::Dialplan;
use crate::raw::{
    RawAfterHours, RawAgent, RawAnnouncements, RawBranch, RawClinic, RawFeatures, RawHoliday,
    RawHours, RawIntent, RawLimits, RawMenu, RawNumber, RawPatient, RawQueue, RawSource, RawSpeech,
    RawTrunk, RawTrust, RawVoicemail, RawWebhook,
};

/// The top-level keys, in the order the README documents them.
const SECTIONS: &[&str] = &[
    "clinic",
    "numbers",
    "menus",
    "queues",
    "agents",
    "hours",
    "holidays",
    "after_hours",
    "directory",
    "trust",
    "limits",
    "announcements",
    "features",
    "sources",
    "intents",
    "branches",
    "trunks",
    "voicemail",
    "webhooks",
    "speech",
];

/// A `[section.<id>]` item: its id with the id's span, and its body.
#[derive(Debug)]
pub(crate) struct Keyed<T> {
    pub id: String,
    pub span: Range<usize>,
    pub item: T,
}

/// Every item that deserialized, plus what is known of those that did not.
#[derive(Debug, Default)]
pub(crate) struct RawPlan {
    pub clinic: Option<RawClinic>,
    /// True when a `[clinic]` table was written (even if it failed to parse).
    pub clinic_declared: bool,
    pub numbers: Vec<RawNumber>,
    pub menus: Vec<Keyed<RawMenu>>,
    pub queues: Vec<Keyed<RawQueue>>,
    pub agents: Vec<RawAgent>,
    pub hours: Vec<RawHours>,
    pub holidays: Vec<RawHoliday>,
    pub after_hours: Option<Spanned<RawAfterHours>>,
    pub directory: Vec<RawPatient>,
    pub trust: Option<RawTrust>,
    pub limits: Option<RawLimits>,
    pub announcements: Option<RawAnnouncements>,
    pub features: Option<RawFeatures>,
    pub sources: Vec<Keyed<RawSource>>,
    /// Where `[sources]` was written, when it was.
    pub sources_span: Option<Range<usize>>,
    pub intents: Vec<Spanned<RawIntent>>,
    /// Where `[[intents]]` was written, when it was.
    pub intents_span: Option<Range<usize>>,
    pub branches: Vec<Keyed<RawBranch>>,
    pub trunks: Vec<Keyed<RawTrunk>>,
    /// `[voicemail]`, with where it was written.
    pub voicemail: Option<Spanned<RawVoicemail>>,
    /// True when a `[voicemail]` table was written (even if it failed to parse).
    pub voicemail_declared: bool,
    pub webhooks: Vec<Spanned<RawWebhook>>,
    /// `[speech]`, with where it was written.
    pub speech: Option<Spanned<RawSpeech>>,
    /// Names declared under `[menus]`, including items that failed to parse.
    pub declared_menus: Vec<String>,
    /// Names declared under `[queues]`, including items that failed to parse.
    pub declared_queues: Vec<String>,
    /// Agent ids, including those of agents that failed to parse.
    pub declared_agents: Vec<String>,
    /// True when some item failed to parse: whole-plan checks are skipped.
    pub incomplete: bool,
}

/// Checks `text` (the contents of `path`) and builds the plan; prompt files
/// are looked up relative to `base_dir`.
pub(crate) fn compile(path: &Path, text: &str, base_dir: &Path) -> Result<Dialplan, Diagnostics> {
    let mut sink = Sink::new(path, text);
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for error in syntax_errors {
            sink.error(
                ErrorKind::Syntax,
                error.span().unwrap_or(0..0),
                error.message().to_string(),
            );
        }
        return Err(sink.finish().err().unwrap_or_else(unreachable_empty));
    }
    let mut reader = Reader {
        sink,
        incomplete: false,
    };
    let raw = reader.read(root.into_inner());
    let mut sink = reader.sink;
    let incomplete = reader.incomplete || raw.incomplete;
    let raw = RawPlan { incomplete, ..raw };
    let plan = build::build(&mut sink, &raw, path, base_dir);
    match (sink.finish(), plan) {
        (Ok(()), Some(plan)) => Ok(plan),
        (Err(errors), _) => Err(errors),
        // build() returns None only after recording an error.
        (Ok(()), None) => Err(unreachable_empty()),
    }
}

/// A diagnostics list for the "cannot happen" branch where a pass failed
/// without saying why; better a vague error than a panic or a bad plan.
fn unreachable_empty() -> Diagnostics {
    Diagnostics::new(vec![crate::diagnostic::Diagnostic {
        kind: ErrorKind::InvalidValue,
        path: Default::default(),
        line: 1,
        column: 1,
        message: "the dialplan could not be checked".to_string(),
    }])
}

/// Pass 2: deserializes each item on its own.
struct Reader<'a> {
    sink: Sink<'a>,
    incomplete: bool,
}

impl<'a> Reader<'a> {
    fn read<'i>(&mut self, root: DeTable<'i>) -> RawPlan {
        let mut raw = RawPlan::default();
        for (key, value) in root {
            let key_span = key.span();
            match key.get_ref().as_ref() {
                "clinic" => {
                    raw.clinic_declared = true;
                    raw.clinic = self.table_item(value, "clinic");
                }
                "numbers" => raw.numbers = self.array_items(value, "numbers"),
                "menus" => raw.menus = self.keyed_items(value, "menus", &mut raw.declared_menus),
                "queues" => {
                    raw.queues = self.keyed_items(value, "queues", &mut raw.declared_queues)
                }
                "agents" => {
                    raw.declared_agents = declared_ids(&value);
                    raw.agents = self.array_items(value, "agents");
                }
                "hours" => raw.hours = self.array_items(value, "hours"),
                "holidays" => raw.holidays = self.array_items(value, "holidays"),
                "after_hours" => {
                    let span = value.span();
                    raw.after_hours = self
                        .table_item::<RawAfterHours>(value, "after_hours")
                        .map(|item| Spanned::new(span, item));
                }
                "directory" => raw.directory = self.array_items(value, "directory"),
                "trust" => raw.trust = self.table_item(value, "trust"),
                "limits" => raw.limits = self.table_item(value, "limits"),
                "announcements" => raw.announcements = self.table_item(value, "announcements"),
                "features" => raw.features = self.table_item(value, "features"),
                "sources" => {
                    raw.sources_span = Some(key_span);
                    raw.sources = self.keyed_items(value, "sources", &mut Vec::new());
                }
                "intents" => {
                    raw.intents_span = Some(key_span);
                    raw.intents = self.spanned_array_items(value, "intents");
                }
                "branches" => {
                    raw.branches = self.keyed_items(value, "branches", &mut Vec::new());
                }
                "trunks" => raw.trunks = self.keyed_items(value, "trunks", &mut Vec::new()),
                "webhooks" => raw.webhooks = self.spanned_array_items(value, "webhooks"),
                "voicemail" => {
                    raw.voicemail_declared = true;
                    let span = value.span();
                    raw.voicemail = self
                        .table_item::<RawVoicemail>(value, "voicemail")
                        .map(|item| Spanned::new(span, item));
                }
                "speech" => {
                    let span = value.span();
                    raw.speech = self
                        .table_item::<RawSpeech>(value, "speech")
                        .map(|item| Spanned::new(span, item));
                }
                other => self.sink.error(
                    ErrorKind::UnknownKey,
                    key_span,
                    format!(
                        "unknown key `{other}`, expected one of {}",
                        backticked(SECTIONS)
                    ),
                ),
            }
        }
        raw
    }

    /// `[name]`: one table.
    fn table_item<'i, T: Deserialize<'i>>(
        &mut self,
        value: Spanned<DeValue<'i>>,
        name: &str,
    ) -> Option<T> {
        if !value.get_ref().is_table() {
            self.sink.error(
                ErrorKind::InvalidValue,
                value.span(),
                format!("`{name}` must be a table ([{name}])"),
            );
            self.incomplete = true;
            return None;
        }
        self.item(value)
    }

    /// `[[name]]`: an array of tables, each its own item.
    fn array_items<'i, T: Deserialize<'i>>(
        &mut self,
        value: Spanned<DeValue<'i>>,
        name: &str,
    ) -> Vec<T> {
        self.spanned_array_items(value, name)
            .into_iter()
            .map(Spanned::into_inner)
            .collect()
    }

    /// `[[name]]` whose items keep their span (for messages that point
    /// at a whole entry).
    fn spanned_array_items<'i, T: Deserialize<'i>>(
        &mut self,
        value: Spanned<DeValue<'i>>,
        name: &str,
    ) -> Vec<Spanned<T>> {
        let span = value.span();
        match value.into_inner() {
            DeValue::Array(array) => {
                let mut items = Vec::new();
                for element in array.iter() {
                    let span = element.span();
                    if let Some(item) = self.item(element.clone()) {
                        items.push(Spanned::new(span, item));
                    }
                }
                items
            }
            _ => {
                self.sink.error(
                    ErrorKind::InvalidValue,
                    span,
                    format!("`{name}` must be an array of tables ([[{name}]])"),
                );
                self.incomplete = true;
                Vec::new()
            }
        }
    }

    /// `[name.<id>]`: a table of tables, each its own item.
    fn keyed_items<'i, T: Deserialize<'i>>(
        &mut self,
        value: Spanned<DeValue<'i>>,
        name: &str,
        declared: &mut Vec<String>,
    ) -> Vec<Keyed<T>> {
        let span = value.span();
        match value.into_inner() {
            DeValue::Table(table) => {
                let mut items = Vec::new();
                for (key, value) in table {
                    let id = key.get_ref().to_string();
                    declared.push(id.clone());
                    if !value.get_ref().is_table() {
                        self.sink.error(
                            ErrorKind::InvalidValue,
                            value.span(),
                            format!("`{name}.{id}` must be a table ([{name}.{id}])"),
                        );
                        self.incomplete = true;
                        continue;
                    }
                    if let Some(item) = self.item(value) {
                        items.push(Keyed {
                            id,
                            span: key.span(),
                            item,
                        });
                    }
                }
                items
            }
            _ => {
                self.sink.error(
                    ErrorKind::InvalidValue,
                    span,
                    format!("`{name}` must be a table of tables ([{name}.<name>])"),
                );
                self.incomplete = true;
                Vec::new()
            }
        }
    }

    /// Deserializes one item, reporting and removing each unknown key in
    /// turn so that all of them are reported.
    fn item<'i, T: Deserialize<'i>>(&mut self, mut value: Spanned<DeValue<'i>>) -> Option<T> {
        loop {
            let error = match T::deserialize(ValueDeserializer::from(value.clone())) {
                Ok(item) => return Some(item),
                Err(error) => error,
            };
            let span = error.span().unwrap_or_else(|| value.span());
            let message = error.message();
            if let Some(rest) = message.strip_prefix("unknown field") {
                self.sink.error(
                    ErrorKind::UnknownKey,
                    span.clone(),
                    format!("unknown key{rest}"),
                );
                if remove_key_at(value.get_mut(), &span) {
                    continue;
                }
            } else if let Some(rest) = message.strip_prefix("missing field") {
                self.sink
                    .error(ErrorKind::InvalidValue, span, format!("missing key{rest}"));
            } else {
                self.sink
                    .error(ErrorKind::InvalidValue, span, message.to_string());
            }
            self.incomplete = true;
            return None;
        }
    }
}

/// Removes the key whose span is `span`, wherever it is in the tree.
fn remove_key_at(value: &mut DeValue<'_>, span: &Range<usize>) -> bool {
    match value {
        DeValue::Table(table) => {
            let found = table.keys().find(|key| key.span() == *span).cloned();
            if let Some(key) = found {
                table.remove(&key);
                return true;
            }
            table
                .iter_mut()
                .any(|(_, value)| remove_key_at(value.get_mut(), span))
        }
        DeValue::Array(array) => array
            .iter_mut()
            .any(|value| remove_key_at(value.get_mut(), span)),
        _ => false,
    }
}

/// The `id` strings of an `[[agents]]` array, read before deserializing so
/// that references to an agent that fails to parse are not reported twice.
fn declared_ids(value: &Spanned<DeValue<'_>>) -> Vec<String> {
    let Some(array) = value.get_ref().as_array() else {
        return Vec::new();
    };
    array
        .iter()
        .filter_map(|element| element.get_ref().get("id"))
        .filter_map(|id| id.get_ref().as_str().map(str::to_string))
        .collect()
}

/// `` `a`, `b`, `c` ``
pub(crate) fn backticked<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|name| format!("`{}`", name.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Dialplan {
    /// Reads, checks and compiles the dialplan at `path`. Prompt files are
    /// relative to the folder `path` is in. Errors name `path` as given.
    pub fn load(path: impl AsRef<Path>) -> Result<Dialplan, Diagnostics> {
        let path = path.as_ref();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                return Err(Diagnostics::new(vec![crate::diagnostic::Diagnostic {
                    kind: ErrorKind::Io,
                    path: path.to_path_buf(),
                    line: 1,
                    column: 1,
                    message: format!("cannot read the dialplan: {error}"),
                }]));
            }
        };
        let base_dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        compile(path, &text, base_dir)
    }

    /// Checks and compiles dialplan `text`. `path` only names the text in
    /// errors; prompt files are looked up relative to `base_dir`.
    pub fn from_toml(
        text: &str,
        path: impl AsRef<Path>,
        base_dir: impl AsRef<Path>,
    ) -> Result<Dialplan, Diagnostics> {
        compile(path.as_ref(), text, base_dir.as_ref())
    }
}
