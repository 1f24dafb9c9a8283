//! The dialplan as written: serde structs that mirror the TOML one to one.
//!
//! Nothing outside this crate sees these. `compile` turns them into the
//! checked types of [`crate::plan`]; every field keeps its span so that an
//! error can point at it. `deny_unknown_fields` everywhere: a typo in a key
//! is an error, never a silently ignored setting. `dialplans/README.md`
//! documents each key. A `priority` or a `strategy` is read straight into
//! the `domain` crate's enum: its serde names are the dialplan's.

use std::collections::BTreeMap;

use domain::{Priority, Strategy};
use serde::Deserialize;
use serde_spanned::Spanned;

/// A value with the byte range it came from.
pub(crate) type S<T> = Spanned<T>;

/// `[clinic]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClinic {
    pub name: S<String>,
    pub time_zone: S<String>,
    pub emergency_notice: S<String>,
    pub country: Option<S<String>>,
}

/// `[[numbers]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNumber {
    pub number: S<String>,
    #[serde(default)]
    pub aliases: Vec<S<String>>,
    pub source: S<String>,
    pub priority: Option<S<Priority>>,
    pub branch: Option<S<String>>,
    pub answer_after: Option<S<String>>,
    pub announce: Option<S<Vec<S<String>>>>,
    pub then: S<RawTarget>,
    pub after_hours: Option<S<RawAfterHours>>,
    pub exempt_from_safety: Option<S<String>>,
}

/// Where a call goes next: exactly one of `menu`, `queue`, `message`,
/// `voicemail`, `hangup`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    pub menu: Option<S<String>>,
    pub queue: Option<S<String>>,
    pub priority: Option<S<Priority>>,
    pub message: Option<S<String>>,
    pub voicemail: Option<S<String>>,
    pub hangup: Option<S<bool>>,
}

/// `[after_hours]` and a number's own `after_hours`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAfterHours {
    pub announce: Option<S<Vec<S<String>>>>,
    pub then: S<RawTarget>,
}

/// `[menus.<id>]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMenu {
    pub prompt: S<String>,
    pub options: S<BTreeMap<S<String>, S<RawTarget>>>,
    pub timeout: Option<S<String>>,
    pub inter_digit_timeout: Option<S<String>>,
    pub max_digits: Option<S<i64>>,
    pub retries: Option<S<i64>>,
    pub invalid_prompt: Option<S<String>>,
    pub no_input_prompt: Option<S<String>>,
    pub on_no_input: S<RawTarget>,
    pub on_invalid: S<RawTarget>,
    /// Option → phrases a caller may say instead (issue 25).
    pub speech: Option<S<RawPhrases>>,
    pub speech_threshold: Option<S<f64>>,
    /// Option → its "did you say …? press 1 for yes" prompt.
    pub confirm: Option<S<BTreeMap<S<String>, S<String>>>>,
}

/// A menu's `speech`: option → phrases.
pub(crate) type RawPhrases = BTreeMap<S<String>, S<Vec<S<String>>>>;

/// `[speech]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSpeech {
    pub model: S<String>,
    pub dictionary: Option<S<String>>,
    pub threshold: Option<S<f64>>,
    pub max_concurrent: Option<S<i64>>,
    pub keys_prompt: Option<S<String>>,
    pub end_of_speech: Option<S<String>>,
    pub max_utterance: Option<S<String>>,
    pub speech_level: Option<S<i64>>,
}

/// `[queues.<id>]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQueue {
    pub name: Option<S<String>>,
    pub skills: S<Vec<S<String>>>,
    pub strategy: S<Strategy>,
    pub ring_timeout: S<String>,
    pub wrap_up: S<String>,
    pub max_wait: Option<S<String>>,
    pub on_max_wait: Option<S<RawTarget>>,
    pub sla: Option<S<String>>,
    pub aging: Option<S<String>>,
    pub max_length: Option<S<i64>>,
    pub hold_prompt: Option<S<String>>,
    pub hold_music: Option<S<String>>,
    pub announce_every: Option<S<String>>,
    pub abandoned_lead_after: Option<S<String>>,
    pub respond_within: Option<S<String>>,
    pub callback: Option<S<RawCallback>>,
}

/// A queue's `callback = { … }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCallback {
    pub offer_after: S<String>,
    pub key: S<String>,
    pub retries: Option<S<i64>>,
    pub retry_every: Option<S<String>>,
    pub max_share: Option<S<f64>>,
    pub whisper: Option<S<String>>,
}

/// `[[agents]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgent {
    pub id: S<String>,
    pub name: S<String>,
    pub password: S<String>,
    pub skills: S<Vec<S<String>>>,
    pub skill_levels: Option<S<BTreeMap<S<String>, S<i64>>>>,
    pub branch: Option<S<String>>,
    #[serde(default)]
    pub languages: Vec<S<String>>,
    pub capacity: Option<S<i64>>,
    pub lead_capacity: Option<S<i64>>,
}

/// `[[hours]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHours {
    pub days: S<Vec<S<String>>>,
    pub open: S<String>,
    pub close: S<String>,
}

/// `[[holidays]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHoliday {
    pub date: S<toml::value::Datetime>,
    pub name: Option<S<String>>,
}

/// `[[directory]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPatient {
    pub number: S<String>,
    pub department: Option<S<String>>,
    pub coordinator: Option<S<String>>,
    pub language: Option<S<String>>,
    pub branch: Option<S<String>>,
}

/// `[trust]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrust {
    pub loopback: Option<S<bool>>,
    #[serde(default)]
    pub trunks: Vec<S<String>>,
    #[serde(default)]
    pub agents: Vec<S<String>>,
    #[serde(default)]
    pub untrusted: Vec<S<String>>,
    #[serde(default)]
    pub proxies: Vec<S<String>>,
}

/// `[limits]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub sip: Option<RawSipLimits>,
    pub sign_in: Option<RawSignInLimits>,
    pub http: Option<RawHttpLimits>,
    pub leads: Option<RawLeadLimits>,
}

/// `[limits.sip]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSipLimits {
    pub rate: Option<S<i64>>,
    pub burst: Option<S<i64>>,
    pub ban: Option<S<String>>,
    pub sources: Option<S<i64>>,
    pub calls: Option<S<i64>>,
    pub connections: Option<S<i64>>,
    pub scanners: Option<Vec<S<String>>>,
    pub scanner_ban: Option<S<String>>,
    pub handshake_timeout: Option<S<String>>,
}

/// `[limits.sign_in]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSignInLimits {
    pub slow_after: Option<S<i64>>,
    pub ban_after: Option<S<i64>>,
    pub forget_every: Option<S<String>>,
    pub first_delay: Option<S<String>>,
    pub max_delay: Option<S<String>>,
    pub ban: Option<S<String>>,
    pub lock_after: Option<S<i64>>,
    pub lock_window: Option<S<String>>,
    pub known_for: Option<S<String>>,
}

/// `[limits.http]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpLimits {
    pub connections: Option<S<i64>>,
    pub connections_per_source: Option<S<i64>>,
    pub header_timeout: Option<S<String>>,
    pub body_timeout: Option<S<String>>,
    pub idle_timeout: Option<S<String>>,
    pub max_body: Option<S<i64>>,
    pub max_login_body: Option<S<i64>>,
    pub max_lead_body: Option<S<i64>>,
}

/// `[limits.leads]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLeadLimits {
    pub signature_tolerance: Option<S<String>>,
    pub replay_cache: Option<S<i64>>,
    pub idempotency_window: Option<S<String>>,
}

/// `[sources.<id>]`: where web-form leads come from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    pub secret: S<String>,
    pub respond_within: Option<S<String>>,
    pub accept_within: Option<S<String>>,
    pub priority: Option<S<Priority>>,
}

/// `[[intents]]`: phrases that send a lead to a queue.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIntent {
    pub queue: S<String>,
    pub emergency: Option<S<bool>>,
    pub phrases: S<Vec<S<String>>>,
}

/// `[branches.<id>]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBranch {
    pub postal_prefixes: S<Vec<S<String>>>,
}

/// `[trunks.<id>]`: the carrier's SIP trunk, the only way out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrunk {
    pub uri: S<String>,
    pub username: Option<S<String>>,
    pub password: Option<S<String>>,
    pub caller_id: S<String>,
    #[serde(default)]
    pub allow: Vec<S<String>>,
    #[serde(default)]
    pub deny: Vec<S<String>>,
    pub ring_timeout: Option<S<String>>,
}

/// `[announcements]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAnnouncements {
    pub you_are_caller_number: S<String>,
    pub most_callers_reach_someone_within: S<String>,
    pub minutes: S<String>,
    pub digits: S<Vec<S<String>>>,
}

/// `[features]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFeatures {
    pub away: Option<S<String>>,
    pub available: Option<S<String>>,
    pub waiting: Option<S<String>>,
    pub away_prompt: Option<S<String>>,
    pub available_prompt: Option<S<String>>,
    pub waiting_prompt: Option<S<String>>,
}

/// `[voicemail]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVoicemail {
    pub greeting: S<String>,
    pub beep: Option<S<String>>,
    pub max_length: Option<S<String>>,
    pub retention: Option<S<String>>,
    pub silence_level: Option<S<i64>>,
    pub silence_after: Option<S<String>>,
}

/// `[[webhooks]]`: a CRM endpoint that hears lead and call events.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    pub name: Option<S<String>>,
    pub url: S<String>,
    pub secret: S<String>,
    pub events: S<Vec<S<String>>>,
    pub timeout: Option<S<String>>,
    pub retry_initial: Option<S<String>>,
    pub retry_max: Option<S<String>>,
    pub max_pending: Option<S<i64>>,
    pub concurrency: Option<S<i64>>,
}
