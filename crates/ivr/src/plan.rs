//! The checked dialplan: what the daemon, `simulate` and the IVR engine use.
//!
//! A [`Dialplan`] only exists once every check has passed (see
//! [`Dialplan::load`]): every name it holds resolves, every prompt is a
//! readable 8 kHz mono 16-bit PCM WAV, and the clinic's safety rules hold.
//! It is immutable; share it as `Arc<Dialplan>` and swap the `Arc` on reload.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::hours::{BusinessHours, OpenState};
use crate::ids::{AgentId, Branch, Language, MenuId, PromptId, QueueId, Skill, SourceTag};
use crate::leads::{
    BranchMap, Country, FALLBACK_QUEUE, IntentMatcher, LeadBranch, LeadRoute, PhoneNumber, Source,
    Trunk,
};
use guard::{Limits, TrustedSources};

/// A call's priority, a queue's strategy, an agent's skill level and a
/// queue's overflow: the clinic's vocabulary, which routing and the
/// journal share (the `domain` crate's).
pub use domain::{Overflow, Priority, PriorityChange, SkillLevel, Strategy};

/// A prompt: a WAV file checked to be 8 kHz mono 16-bit PCM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub(crate) id: PromptId,
    pub(crate) path: PathBuf,
    pub(crate) duration: Duration,
}

impl Prompt {
    /// The file name as the dialplan writes it (`prompts/main-menu.wav`).
    pub fn id(&self) -> &PromptId {
        &self.id
    }

    /// The file to play: the dialplan's folder joined with [`Prompt::id`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long the file plays, from its WAV header.
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

/// Where a call goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Play a menu and collect digits.
    Menu(MenuId),
    /// Hand the call to a queue.
    Queue {
        /// The queue.
        queue: QueueId,
        /// The priority to queue with; `None` keeps the call's priority
        /// (the dialed number's, or the one it was queued with before).
        priority: Option<Priority>,
    },
    /// Play a message, then hang up.
    Message(Prompt),
    /// Play the `[voicemail]` greeting and a beep, record the caller's
    /// message and leave it as a `voicemail` lead in this queue's
    /// department; then hang up.
    Voicemail(QueueId),
    /// Hang up without a word. `check` refuses this on any path of an entry
    /// that is not exempt from the safety rules.
    HangUp,
}

/// `[voicemail]`: how a message is taken and how long it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voicemail {
    pub(crate) greeting: Prompt,
    pub(crate) beep: Prompt,
    pub(crate) max_length: Duration,
    pub(crate) retention: Duration,
    pub(crate) silence_level: u16,
    pub(crate) silence_after: Duration,
}

impl Voicemail {
    /// `max_length` when the dialplan leaves it out: DESIGN.md's 120 s.
    pub const MAX_LENGTH: Duration = Duration::from_secs(120);
    /// `retention` when left out: 30 days.
    pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
    /// `silence_level` when left out: a peak below this (of 32767, linear
    /// PCM after G.711 decoding) is silence. 500 is about −36 dBFS, under
    /// speech and over a quiet line's noise.
    pub const SILENCE_LEVEL: u16 = 500;
    /// `silence_after` when left out.
    pub const SILENCE_AFTER: Duration = Duration::from_secs(5);
    /// The beep's file when `beep` is left out.
    pub const BEEP: &str = "prompts/voicemail-beep.wav";

    /// The greeting played first ("please leave a message after the tone").
    pub fn greeting(&self) -> &Prompt {
        &self.greeting
    }

    /// The tone played after it; recording starts when it ends.
    pub fn beep(&self) -> &Prompt {
        &self.beep
    }

    /// The longest message; recording stops there.
    pub fn max_length(&self) -> Duration {
        self.max_length
    }

    /// How long a recording is kept; then it is deleted and its lead says so.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// The peak sample level (0–32767) under which a frame is silent.
    pub fn silence_level(&self) -> u16 {
        self.silence_level
    }

    /// Recording stops after this long of unbroken silence.
    pub fn silence_after(&self) -> Duration {
        self.silence_after
    }
}

/// What happens after business hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterHours {
    pub(crate) announce: Vec<Prompt>,
    pub(crate) then: Target,
}

impl AfterHours {
    /// Prompts played in order (after the number's own `announce`).
    pub fn announce(&self) -> &[Prompt] {
        &self.announce
    }

    /// Where the call goes after them.
    pub fn then(&self) -> &Target {
        &self.then
    }
}

/// A dialed number the clinic answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    pub(crate) number: String,
    pub(crate) aliases: Vec<String>,
    pub(crate) source: SourceTag,
    pub(crate) priority: Priority,
    pub(crate) branch: Option<Branch>,
    pub(crate) answer_after: Option<Duration>,
    pub(crate) announce: Vec<Prompt>,
    pub(crate) then: Target,
    pub(crate) after_hours: Option<AfterHours>,
    pub(crate) exempt_from_safety: Option<String>,
}

impl Number {
    /// The number as written (`+15550100`).
    pub fn number(&self) -> &str {
        &self.number
    }

    /// Other spellings that reach it (`5550100`, `clinic`).
    pub fn aliases(&self) -> &[String] {
        &self.aliases
    }

    /// The source tag calls to it carry (`main-line`).
    pub fn source(&self) -> &SourceTag {
        &self.source
    }

    /// The priority its calls start with.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// The branch this number belongs to, if any.
    pub fn branch(&self) -> Option<&Branch> {
        self.branch.as_ref()
    }

    /// How long to let it ring before answering (`None`: answer at once).
    pub fn answer_after(&self) -> Option<Duration> {
        self.answer_after
    }

    /// Prompts played first, in and out of hours (the emergency notice first).
    pub fn announce(&self) -> &[Prompt] {
        &self.announce
    }

    /// Where the call goes in business hours, after `announce`.
    pub fn then(&self) -> &Target {
        &self.then
    }

    /// This number's own after-hours path, overriding the clinic's.
    pub fn after_hours(&self) -> Option<&AfterHours> {
        self.after_hours.as_ref()
    }

    /// The reason this entry is exempt from the safety rules, if it is.
    pub fn exempt_from_safety(&self) -> Option<&str> {
        self.exempt_from_safety.as_deref()
    }
}

/// A menu: a prompt, then digits chosen among options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    pub(crate) id: MenuId,
    pub(crate) prompt: Prompt,
    pub(crate) options: BTreeMap<String, Target>,
    pub(crate) timeout: Duration,
    pub(crate) inter_digit_timeout: Duration,
    pub(crate) max_digits: usize,
    pub(crate) retries: u32,
    pub(crate) invalid_prompt: Option<Prompt>,
    pub(crate) no_input_prompt: Option<Prompt>,
    pub(crate) on_no_input: Target,
    pub(crate) on_invalid: Target,
    pub(crate) speech: Option<crate::speech_menu::MenuSpeech>,
}

impl Menu {
    /// Its name.
    pub fn id(&self) -> &MenuId {
        &self.id
    }

    /// The menu prompt.
    pub fn prompt(&self) -> &Prompt {
        &self.prompt
    }

    /// Digit strings and where each leads.
    pub fn options(&self) -> &BTreeMap<String, Target> {
        &self.options
    }

    /// How long to wait for the first digit once the prompt has ended.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How long to wait for each further digit.
    pub fn inter_digit_timeout(&self) -> Duration {
        self.inter_digit_timeout
    }

    /// The most digits an option has.
    pub fn max_digits(&self) -> usize {
        self.max_digits
    }

    /// How many times the menu is replayed after no input or an invalid
    /// choice before `on_no_input` / `on_invalid` apply.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Played before a replay after an invalid choice.
    pub fn invalid_prompt(&self) -> Option<&Prompt> {
        self.invalid_prompt.as_ref()
    }

    /// Played before a replay after no input.
    pub fn no_input_prompt(&self) -> Option<&Prompt> {
        self.no_input_prompt.as_ref()
    }

    /// Where a caller goes whose last try was no input.
    pub fn on_no_input(&self) -> &Target {
        &self.on_no_input
    }

    /// Where a caller goes whose last try was an invalid choice.
    pub fn on_invalid(&self) -> &Target {
        &self.on_invalid
    }
    /// The phrases callers may say instead of pressing (`None`: keys only).
    pub fn speech(&self) -> Option<&crate::speech_menu::MenuSpeech> {
        self.speech.as_ref()
    }
}

/// A department queue and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub(crate) id: QueueId,
    pub(crate) name: String,
    pub(crate) skills: Vec<Skill>,
    pub(crate) strategy: Strategy,
    pub(crate) ring_timeout: Duration,
    pub(crate) wrap_up: Duration,
    pub(crate) max_wait: Option<Duration>,
    pub(crate) on_max_wait: Option<Overflow>,
    pub(crate) sla: Duration,
    pub(crate) aging: Duration,
    pub(crate) max_length: Option<usize>,
    pub(crate) hold_prompt: Option<Prompt>,
    pub(crate) hold_music: Option<Prompt>,
    pub(crate) announce_every: Option<Duration>,
    pub(crate) abandoned_lead_after: Option<Duration>,
    pub(crate) respond_within: Duration,
    pub(crate) callback: Option<Callback>,
}

/// A queue's callbacks (`callback = { … }`, DESIGN.md "Callbacks,
/// voicemail and abandoned calls"): a waiting caller may ask to be called
/// back at their number (or another they key in), which the trunk's
/// `allow` and `deny` must permit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub(crate) offer_after: Duration,
    pub(crate) key: char,
    pub(crate) retries: u32,
    pub(crate) retry_every: Duration,
    /// `max_share` in thousandths (so that the plan stays `Eq`).
    pub(crate) max_share_permille: u32,
    pub(crate) prompts: CallbackPrompts,
}

/// The prompts of a callback, fixed files of the plan's `prompts/` folder
/// (`callback-offer.wav`, `callback-number.wav`, `callback-accepted.wav`,
/// `callback-refused.wav`), checked like every prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackPrompts {
    /// "To hang up and have us call you back, press 1."
    pub offer: Prompt,
    /// "Press pound to confirm the number you are calling from, or enter
    /// another number and then pound."
    pub number: Prompt,
    /// "We will call you back at that number as soon as someone is free.
    /// Goodbye."
    pub accepted: Prompt,
    /// "Sorry, we cannot call that number. Please stay on the line."
    pub refused: Prompt,
    /// Played to the agent who answers a callback, before the patient is
    /// dialed ("Callback, pediatrics."): the queue's `whisper`, else
    /// `prompts/callback-whisper.wav` ([`Callback::DEFAULT_WHISPER`]).
    pub whisper: Prompt,
}

impl Callback {
    /// The prompts' file names under `prompts/`, in [`CallbackPrompts`]'
    /// order.
    pub const PROMPT_FILES: [&'static str; 4] = [
        "prompts/callback-offer.wav",
        "prompts/callback-number.wav",
        "prompts/callback-accepted.wav",
        "prompts/callback-refused.wav",
    ];

    /// The agent's whisper when the queue names none: "Callback. The
    /// patient is being called now."
    pub const DEFAULT_WHISPER: &'static str = "prompts/callback-whisper.wav";

    /// The offer is made once the caller has waited this long, or as soon
    /// as routing's estimate of the wait passes it.
    pub fn offer_after(&self) -> Duration {
        self.offer_after
    }

    /// The digit that asks for a callback while waiting.
    pub fn key(&self) -> char {
        self.key
    }

    /// Tries after the first when the patient does not answer.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The pause between tries.
    pub fn retry_every(&self) -> Duration {
        self.retry_every
    }

    /// The largest share (0–1] of the queue's free agents that callbacks
    /// may take at once, so that callers holding live are not starved.
    pub fn max_share(&self) -> f64 {
        f64::from(self.max_share_permille) / 1000.0
    }

    /// Its prompts.
    pub fn prompts(&self) -> &CallbackPrompts {
        &self.prompts
    }
}

impl Queue {
    /// The SLA of a queue whose dialplan gives none.
    pub const DEFAULT_SLA: Duration = Duration::from_secs(60);

    /// The aging of a queue whose dialplan gives none.
    pub const DEFAULT_AGING: Duration = Duration::from_secs(120);

    /// The `respond_within` of a queue whose dialplan gives none
    /// (DESIGN.md: one hour).
    pub const DEFAULT_RESPOND_WITHIN: Duration = Duration::from_secs(3600);

    /// Its name (`pediatrics`), as the admin API and reports use it.
    pub fn id(&self) -> &QueueId {
        &self.id
    }

    /// A display name (defaults to the id).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Skills an agent needs, all of them, to take this queue's calls.
    pub fn skills(&self) -> &[Skill] {
        &self.skills
    }

    /// How an agent is picked.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// How long an offer rings an agent before it counts as unanswered.
    pub fn ring_timeout(&self) -> Duration {
        self.ring_timeout
    }

    /// How long an agent stays in `wrap_up` after a call.
    pub fn wrap_up(&self) -> Duration {
        self.wrap_up
    }

    /// The longest a caller waits here before [`Queue::on_max_wait`]
    /// (`None`: waits until answered or gone).
    pub fn max_wait(&self) -> Option<Duration> {
        self.max_wait
    }

    /// What follows the max wait (always `Some` when `max_wait` or
    /// `max_length` is set).
    pub fn on_max_wait(&self) -> Option<&Overflow> {
        self.on_max_wait.as_ref()
    }

    /// The wait the clinic promises to answer within; longer waits raise
    /// an SLA alert. The dialplan's `sla`, else [`Queue::DEFAULT_SLA`]
    /// (applied when the plan is compiled).
    pub fn sla(&self) -> Duration {
        self.sla
    }

    /// How long a routine caller waits here before being served as urgent
    /// (behind the urgent callers already waiting), so that urgent traffic
    /// cannot starve routine callers. The dialplan's `aging`, else
    /// [`Queue::DEFAULT_AGING`].
    pub fn aging(&self) -> Duration {
        self.aging
    }

    /// The most callers waiting at once; a caller arriving at a full queue
    /// goes straight to [`Queue::on_max_wait`].
    pub fn max_length(&self) -> Option<usize> {
        self.max_length
    }

    /// Played once when a caller enters the queue, before hold music.
    pub fn hold_prompt(&self) -> Option<&Prompt> {
        self.hold_prompt.as_ref()
    }

    /// Looped while a caller waits.
    pub fn hold_music(&self) -> Option<&Prompt> {
        self.hold_music.as_ref()
    }

    /// How often to announce the caller's position and the expected wait
    /// (see [`Dialplan::position_prompts`]); `None`: never.
    pub fn announce_every(&self) -> Option<Duration> {
        self.announce_every
    }

    /// A caller who hangs up after waiting here at least this long becomes
    /// an `abandoned_call` lead (`None`: never).
    pub fn abandoned_lead_after(&self) -> Option<Duration> {
        self.abandoned_lead_after
    }

    /// Callbacks offered to this queue's callers (`None`: none).
    pub fn callback(&self) -> Option<&Callback> {
        self.callback.as_ref()
    }

    /// The first-contact window of the leads this queue makes (callbacks,
    /// voicemails, abandoned calls): their `respond_by` is their creation
    /// plus this. The dialplan's `respond_within`, else
    /// [`Queue::DEFAULT_RESPOND_WITHIN`].
    pub fn respond_within(&self) -> Duration {
        self.respond_within
    }
}

/// An agent: a person with a softphone, signing in with SIP digest auth.
#[derive(Clone, PartialEq, Eq)]
pub struct Agent {
    pub(crate) id: AgentId,
    pub(crate) name: String,
    pub(crate) password: String,
    pub(crate) skills: Vec<(Skill, SkillLevel)>,
    pub(crate) branch: Option<Branch>,
    pub(crate) languages: Vec<Language>,
    pub(crate) capacity: u32,
    pub(crate) lead_capacity: u32,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("skills", &self.skills)
            .field("branch", &self.branch)
            .field("languages", &self.languages)
            .field("capacity", &self.capacity)
            .field("lead_capacity", &self.lead_capacity)
            .finish()
    }
}

impl Agent {
    /// The SIP user name (`1003`).
    pub fn id(&self) -> &AgentId {
        &self.id
    }

    /// The display name (`Carol`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The SIP digest password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Skills with their level (1 when the dialplan gives none).
    pub fn skills(&self) -> &[(Skill, SkillLevel)] {
        &self.skills
    }

    /// True when the agent has `skill`.
    pub fn has_skill(&self, skill: &Skill) -> bool {
        self.skills.iter().any(|(s, _)| s == skill)
    }

    /// The level in `skill`, if the agent has it.
    pub fn skill_level(&self, skill: &Skill) -> Option<SkillLevel> {
        self.skills
            .iter()
            .find(|(s, _)| s == skill)
            .map(|(_, l)| *l)
    }

    /// True when the agent has every skill the queue needs.
    pub fn can_serve(&self, queue: &Queue) -> bool {
        queue.skills.iter().all(|skill| self.has_skill(skill))
    }

    /// The agent's branch.
    pub fn branch(&self) -> Option<&Branch> {
        self.branch.as_ref()
    }

    /// Languages the agent speaks.
    pub fn languages(&self) -> &[Language] {
        &self.languages
    }

    /// How many calls the agent can hold at once (1 unless set).
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// How many open leads the agent may own at once, apart from calls
    /// (`lead_capacity`, 2 unless set; 0: none).
    pub fn lead_capacity(&self) -> u32 {
        self.lead_capacity
    }
}

/// A known patient from the caller directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KnownPatient {
    /// Their usual department.
    pub department: Option<QueueId>,
    /// Their care coordinator, an agent.
    pub coordinator: Option<AgentId>,
    /// The language they prefer.
    pub language: Option<Language>,
    /// The branch they usually visit.
    pub branch: Option<Branch>,
}

/// Prompt files for queue position and expected-wait announcements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Announcements {
    pub(crate) you_are_caller_number: Prompt,
    pub(crate) most_callers_reach_someone_within: Prompt,
    pub(crate) minutes: Prompt,
    pub(crate) digits: [Prompt; 10],
}

/// The clinic itself.
#[derive(Debug, Clone)]
pub struct Clinic {
    pub(crate) name: String,
    pub(crate) time_zone_name: String,
    pub(crate) time_zone: TimeZone,
    pub(crate) emergency_notice: Prompt,
    pub(crate) country: Option<Country>,
}

impl Clinic {
    /// `Riverside Family Health`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The IANA name (`America/Chicago`).
    pub fn time_zone_name(&self) -> &str {
        &self.time_zone_name
    }

    /// The time zone, from jiff's bundled database.
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// The emergency notice every entry plays first.
    pub fn emergency_notice(&self) -> &Prompt {
        &self.emergency_notice
    }

    /// The region leads' numbers are read in when they carry no country
    /// code (`country = "US"`); `None`: they must carry one.
    pub fn country(&self) -> Option<Country> {
        self.country
    }
}

/// A checked dialplan. Build one with [`Dialplan::load`] or
/// [`Dialplan::from_toml`].
#[derive(Debug, Clone)]
pub struct Dialplan {
    pub(crate) path: PathBuf,
    pub(crate) clinic: Clinic,
    pub(crate) numbers: Vec<Number>,
    /// Normalised number or alias → index in `numbers`.
    pub(crate) dialed: HashMap<String, usize>,
    pub(crate) menus: BTreeMap<MenuId, Menu>,
    pub(crate) queues: BTreeMap<QueueId, Queue>,
    pub(crate) agents: Vec<Agent>,
    pub(crate) agent_index: HashMap<AgentId, usize>,
    pub(crate) hours: BusinessHours,
    pub(crate) after_hours: Option<AfterHours>,
    /// Normalised caller number → patient.
    pub(crate) directory: HashMap<String, KnownPatient>,
    pub(crate) trust: TrustedSources,
    pub(crate) limits: Limits,
    pub(crate) announcements: Option<Announcements>,
    pub(crate) features: crate::features::Features,
    pub(crate) sources: BTreeMap<SourceTag, Source>,
    pub(crate) intents: IntentMatcher,
    pub(crate) branches: BranchMap,
    pub(crate) trunks: BTreeMap<String, Trunk>,
    pub(crate) voicemail: Option<Voicemail>,
    pub(crate) webhooks: Vec<crate::webhooks::Webhook>,
    pub(crate) speech: Option<crate::speech_menu::SpeechSettings>,
}

impl Dialplan {
    /// `[[webhooks]]`, in file order (`crate::webhooks`).
    pub fn webhooks(&self) -> &[crate::webhooks::Webhook] {
        &self.webhooks
    }

    /// `[voicemail]`, when the dialplan takes messages (`check` refuses a
    /// `{ voicemail = … }` target without it).
    pub fn voicemail(&self) -> Option<&Voicemail> {
        self.voicemail.as_ref()
    }

    /// `[speech]`, when some menu takes speech (`check` refuses a speech
    /// menu without it, and a model that is not there).
    pub fn speech(&self) -> Option<&crate::speech_menu::SpeechSettings> {
        self.speech.as_ref()
    }

    /// The file this plan was loaded from, as named to the loader.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Clinic name, time zone and emergency notice.
    pub fn clinic(&self) -> &Clinic {
        &self.clinic
    }

    /// Every number, in file order.
    pub fn numbers(&self) -> &[Number] {
        &self.numbers
    }

    /// The number a call to `dialed` reaches: its number or an alias,
    /// compared after removing spaces, dashes, dots and parentheses, and
    /// ignoring ASCII case.
    pub fn number(&self, dialed: &str) -> Option<&Number> {
        self.dialed
            .get(&normalize_number(dialed))
            .and_then(|&index| self.numbers.get(index))
    }

    /// Index in [`Dialplan::numbers`] of the number `dialed` reaches.
    pub(crate) fn number_index(&self, dialed: &str) -> Option<usize> {
        self.dialed.get(&normalize_number(dialed)).copied()
    }

    /// A menu by name.
    pub fn menu(&self, id: &str) -> Option<&Menu> {
        self.menus.get(id)
    }

    /// Every menu, by name.
    pub fn menus(&self) -> impl Iterator<Item = &Menu> {
        self.menus.values()
    }

    /// A queue by name.
    pub fn queue(&self, id: &str) -> Option<&Queue> {
        self.queues.get(id)
    }

    /// Every queue, by name.
    pub fn queues(&self) -> impl Iterator<Item = &Queue> {
        self.queues.values()
    }

    /// An agent by SIP user name.
    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agent_index.get(id).and_then(|&i| self.agents.get(i))
    }

    /// Every agent, in file order.
    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    /// The agents who can serve a queue (have all its skills).
    pub fn agents_for<'a>(&'a self, queue: &'a Queue) -> impl Iterator<Item = &'a Agent> + 'a {
        self.agents
            .iter()
            .filter(move |agent| agent.can_serve(queue))
    }

    /// Weekly hours and holidays.
    pub fn hours(&self) -> &BusinessHours {
        &self.hours
    }

    /// This plan with the clinic open at every hour, holidays included:
    /// `frontdesk demo --open` shows the daytime paths at night without
    /// touching any clock. The after-hours path stays declared, unused.
    pub fn open_all_hours(mut self) -> Self {
        self.hours = self.hours.open_all_hours();
        self
    }

    /// Whether the clinic is open at `at`.
    pub fn open_state(&self, at: Timestamp) -> OpenState {
        self.hours.state_at(at)
    }

    /// The clinic's after-hours path (`None` only when it declares no hours).
    pub fn after_hours(&self) -> Option<&AfterHours> {
        self.after_hours.as_ref()
    }

    /// The known patient calling from `caller`, if the directory has them.
    /// Compared like [`Dialplan::number`].
    pub fn known_patient(&self, caller: &str) -> Option<&KnownPatient> {
        self.directory.get(&normalize_number(caller))
    }

    /// Which source addresses are trusted.
    pub fn trust(&self) -> &TrustedSources {
        &self.trust
    }

    /// The per-source limits, the sign-in lockout and the HTTP listener's
    /// limits (`[limits]`; the defaults without it).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The agent feature codes (`[features]`, or the defaults `*41`,
    /// `*42`, `*43`).
    pub fn features(&self) -> &crate::features::Features {
        &self.features
    }

    /// The sources leads may come from (`[sources.<id>]`), by id.
    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.sources.values()
    }

    /// A source by id.
    pub fn source(&self, id: &str) -> Option<&Source> {
        self.sources.get(id)
    }

    /// The intent rules (`[[intents]]`), indexed.
    pub fn intents(&self) -> &IntentMatcher {
        &self.intents
    }

    /// The branches' postal prefixes (`[branches.<id>]`).
    pub fn branches(&self) -> &BranchMap {
        &self.branches
    }

    /// The trunks (`[trunks.<id>]`), by name.
    pub fn trunks(&self) -> impl Iterator<Item = &Trunk> {
        self.trunks.values()
    }

    /// A trunk by name (`carrier`).
    pub fn trunk(&self, id: &str) -> Option<&Trunk> {
        self.trunks.get(id)
    }

    /// Where a lead goes (DESIGN.md, "Leads"): the first intent rule with
    /// a phrase in `message` names the queue (else [`FALLBACK_QUEUE`]); an
    /// emergency rule makes it urgent, otherwise it takes `source`'s
    /// priority; `postal_code`'s longest prefix picks the branch, else a
    /// known patient's directory entry for `phone`.
    pub fn route_lead(
        &self,
        source: Option<&Source>,
        message: &str,
        postal_code: Option<&str>,
        phone: Option<&PhoneNumber>,
    ) -> LeadRoute {
        let intent = self.intents.classify(message);
        let (queue, emergency) = match &intent {
            Some(found) => (found.queue.clone(), found.emergency),
            None => (QueueId::new(FALLBACK_QUEUE), false),
        };
        let priority = if emergency {
            Priority::Urgent
        } else {
            source.map_or(Priority::Routine, Source::priority)
        };
        let branch = postal_code
            .and_then(|code| self.branches.branch_of(code))
            .map(LeadBranch::PostalCode)
            .or_else(|| {
                let phone = phone?;
                phone
                    .caller_id_forms()
                    .iter()
                    .find_map(|form| self.known_patient(form)?.branch.clone())
                    .map(LeadBranch::Directory)
            });
        LeadRoute {
            intent,
            queue,
            emergency,
            priority,
            branch,
        }
    }

    /// "You are caller number N": the prompts in order, N read digit by
    /// digit. `None` when the dialplan has no `[announcements]`.
    pub fn position_prompts(&self, position: u32) -> Option<Vec<Prompt>> {
        let a = self.announcements.as_ref()?;
        let mut prompts = vec![a.you_are_caller_number.clone()];
        prompts.extend(digit_prompts(&a.digits, position));
        Some(prompts)
    }

    /// "Most callers reach someone within N minutes", N read digit by digit.
    pub fn expected_wait_prompts(&self, minutes: u32) -> Option<Vec<Prompt>> {
        let a = self.announcements.as_ref()?;
        let mut prompts = vec![a.most_callers_reach_someone_within.clone()];
        prompts.extend(digit_prompts(&a.digits, minutes));
        prompts.push(a.minutes.clone());
        Some(prompts)
    }
}

fn digit_prompts(digits: &[Prompt; 10], n: u32) -> Vec<Prompt> {
    n.to_string()
        .bytes()
        // A u32's decimal digits are b'0'..=b'9': the index is 0..=9.
        .map(|b| digits[usize::from(b - b'0')].clone())
        .collect()
}

/// The form numbers are compared in: visual separators removed, ASCII
/// lower case (`+1 (555) 010-0` → `+15550100`, `Clinic` → `clinic`).
pub fn normalize_number(number: &str) -> String {
    number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalise() {
        assert_eq!(normalize_number("+1 (555) 010-0"), "+15550100");
        assert_eq!(normalize_number("Clinic"), "clinic");
        assert_eq!(normalize_number("555.0100"), "5550100");
    }
}
