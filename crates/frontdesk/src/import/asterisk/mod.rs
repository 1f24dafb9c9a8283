//! `frontdesk import asterisk`: an Asterisk PBX's call-centre set-up
//! (`queues.conf`, `pjsip.conf`, `extensions.conf`) as a frontdesk
//! dialplan.
//!
//! What carries over, and how (the details are in [`translate`]):
//!
//! - each queue of `queues.conf` becomes a `[queues.<id>]` whose one skill
//!   is its own id; its `strategy`, `timeout` (ring timeout),
//!   `wrapuptime`, `maxlen` and `servicelevel` map to ours, and a strategy
//!   we do not have is mapped to the nearest one and reported;
//! - each static `member => PJSIP/<endpoint>` becomes an `[[agents]]`
//!   entry with the endpoint's digest user name and password from
//!   `pjsip.conf` (its `auth` section, templates applied) and the skills of
//!   every queue it is a member of;
//! - `extensions.conf` is walked from every literal extension: those that
//!   reach `Queue()`, directly or through `Goto`, become `[[numbers]]`; a
//!   `Background`/`WaitExten` menu becomes a `[menus.<context>]` whose
//!   digit extensions are its options, `i` and `t` its invalid and
//!   no-input paths; a second `Queue()` after the first one's timeout
//!   becomes the queue's `max_wait` and `on_max_wait`.
//!
//! Everything else — a line of any of the three files that nothing above
//! used — is reported on stderr as `FILE:LINE: …`, as are the prompts the
//! plan needs (Asterisk sound names become `prompts/<name>.wav`, which
//! must be converted to 8 kHz mono 16-bit PCM), and the emergency notice
//! that frontdesk's safety rules put first on every number.
//!
//! Hostile input is bounded: each file is read up to
//! [`config::MAX_FILE_BYTES`], lines, sections, items, steps and `Goto`
//! jumps are capped, and nothing panics on any input (proptests in
//! [`config`] and [`extensions`], and of [`translate::import`]).

pub mod config;
pub mod extensions;
pub mod translate;

pub use super::Note;
pub use translate::{Options, import};
