//! Offline speech intent for the IVR (issue 25): what a caller says at a
//! menu, recognised on this server, so that patients' voices never leave
//! it.
//!
//! # The model
//!
//! The engine is PocketSphinx 5prealpha with Debian's en-us acoustic model
//! and CMU dictionary (`pocketsphinx-en-us`, `libpocketsphinx3`), opened at
//! run time ([`ffi`](crate) — see its docs for why our own FFI). Each menu
//! that takes speech has a [`Grammar`]: its phrases and filler words. The
//! media task cuts an utterance out of the caller's audio (voice activity,
//! in `media`), the call hands it to the [`Recogniser`]'s worker pool, and
//! the [`Recognition`]'s text goes through the same phrase matcher as typed
//! text (`ivr`), whose answer is an option or none.
//!
//! # Why a grammar
//!
//! BENCHMARKS.md ("Speech intent") compares a grammar of the menu's
//! phrases with fillers, keyword spotting, and open decoding with en-us's
//! language model followed by our matcher, on the same synthesised calls:
//! the grammar is the most accurate and the cheapest per utterance.
//!
//! # The run loop
//!
//! [`Recogniser::start`] loads the model once per worker (and fails with
//! the reason when the library or model is missing); then
//! [`Recogniser::try_recognise`] per utterance, which never blocks: over
//! the budget it answers [`SpeechError::Busy`] and the menu falls back to
//! keys.
#![warn(missing_docs)]

mod error;
mod ffi;
mod grammar;
mod model;
mod recogniser;
mod resample;

pub use error::SpeechError;
pub use grammar::{FILLERS, Grammar};
pub use model::{DEBIAN_MODEL, Dictionary, ModelFiles};
pub use recogniser::{InputRate, Recogniser, RecogniserConfig, Recognition, Search};
pub use resample::upsample_8k_to_16k;

/// Whether libpocketsphinx can be opened on this machine.
pub fn library_available() -> Result<(), SpeechError> {
    ffi::Api::open().map(|_| ())
}
