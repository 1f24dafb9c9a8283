//! The recogniser of speech menus (issue 25), started when a dialplan
//! first asks for speech: at start, or at a reload that adds a speech menu
//! to a daemon started without one. A reload that names another model
//! folder, or another `[speech] max_concurrent`, starts a recogniser on it; calls that already hold the old one
//! finish with it. A plan whose recogniser cannot start (the model or the
//! library missing) is refused, at start and at a reload alike, and the
//! running plan stays: calls go on by keys.

use std::sync::{Arc, Mutex};

use tracing::info;

/// The recogniser's pool (issue 25), used when the dialplan has speech menus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeechConfig {
    /// `--speech-workers`: threads decoding utterances, each with its own
    /// decoder (about 25 MB).
    pub workers: usize,
    /// `--speech-budget`: recognitions at once, queued or running; beyond
    /// it a speech menu falls back to keys and says so.
    pub budget: usize,
}

impl Default for SpeechConfig {
    fn default() -> Self {
        SpeechConfig {
            workers: 1,
            budget: 4,
        }
    }
}

/// The running recogniser, if any, and how to start one.
#[derive(Debug)]
pub struct SpeechEngine {
    config: SpeechConfig,
    running: Mutex<Option<Running>>,
}

#[derive(Debug)]
struct Running {
    files: speech::ModelFiles,
    budget: usize,
    recogniser: Arc<speech::Recogniser>,
}

impl SpeechEngine {
    /// No recogniser yet; `config` sizes the one [`SpeechEngine::prepare`]
    /// starts.
    pub fn new(config: SpeechConfig) -> SpeechEngine {
        SpeechEngine {
            config,
            running: Mutex::new(None),
        }
    }

    /// The recogniser now (`None`: no plan with speech has been loaded).
    pub fn current(&self) -> Option<Arc<speech::Recogniser>> {
        self.lock().as_ref().map(|r| Arc::clone(&r.recogniser))
    }

    /// Makes sure `plan`'s speech menus have a recogniser on its model:
    /// nothing for a plan without speech or when one already runs on that
    /// model; otherwise starts one (each worker loads the model: a blocking
    /// half second, off the runtime's threads). The reason when it cannot.
    pub async fn prepare(&self, plan: &ivr::Dialplan) -> Result<(), String> {
        let Some(settings) = plan.speech() else {
            return Ok(());
        };
        let files = settings.files().clone();
        // `[speech] max_concurrent` when the plan sets it, else the flag.
        let budget = settings.max_concurrent().unwrap_or(self.config.budget);
        if self
            .lock()
            .as_ref()
            .is_some_and(|r| r.files == files && r.budget == budget)
        {
            return Ok(());
        }
        let config = self.config;
        let model = files.clone();
        let started = tokio::task::spawn_blocking(move || {
            speech::Recogniser::start(speech::RecogniserConfig {
                model,
                workers: config.workers,
                budget,
                rate: speech::InputRate::Upsampled,
                search: speech::Search::Grammar,
            })
        })
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| error.to_string())?;
        info!(
            "speech recogniser: {} worker(s), {} recognitions at once, model {}",
            config.workers,
            started.budget(),
            settings.model().display()
        );
        let old = self.lock().replace(Running {
            files,
            budget,
            recogniser: Arc::new(started),
        });
        // Dropping the last reference joins the old workers once their
        // queue is done: off the runtime's threads.
        if let Some(old) = old {
            tokio::task::spawn_blocking(move || drop(old));
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
