//! Why speech is not available, or why one recognition failed.

/// One variant per cause an operator or the caller of the crate can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpeechError {
    /// libpocketsphinx cannot be opened: install Debian's `libpocketsphinx3`.
    #[error("cannot open {library} ({reason}): install Debian's libpocketsphinx3")]
    Library {
        /// The shared object's name.
        library: &'static str,
        /// What the dynamic loader said.
        reason: String,
    },
    /// The model's files are missing or unreadable, or the decoder refused
    /// them.
    #[error("speech model: {0}")]
    Model(String),
    /// A path, grammar or phrase held a NUL byte.
    #[error("an argument to the recogniser holds a NUL byte")]
    Argument,
    /// The decoder refused a grammar (a word outside its dictionary).
    #[error("the recogniser refused a menu's grammar")]
    Grammar,
    /// The decoder failed on an utterance.
    #[error("the recogniser failed on an utterance")]
    Decode,
    /// Every recognition slot is taken (the budget of concurrent
    /// recognitions): the menu falls back to keys.
    #[error("every recognition slot is taken")]
    Busy,
    /// The recogniser's workers have stopped.
    #[error("the recogniser has stopped")]
    Stopped,
}
