//! The worker pool: recognition off the media path, within a budget.
//!
//! Decoding an utterance takes tens of milliseconds of CPU (BENCHMARKS.md),
//! far more than a media task's 20 ms tick may spend, so it runs on
//! threads of its own, each with its own decoder (a `ps_decoder_t` has no
//! locking). [`Recogniser::try_recognise`] never blocks: it takes one of
//! `budget` slots (queued or running) or answers [`SpeechError::Busy`] at
//! once, and the menu falls back to keys. The answer comes back through
//! the callback, on the worker's thread.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::SpeechError;
use crate::ffi::{Api, RawDecoder};
use crate::grammar::Grammar;
use crate::model::ModelFiles;
use crate::resample::upsample_8k_to_16k;

/// What the decoder heard.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognition {
    /// The words, lower-case, fillers included (`heart doctor`); empty when
    /// nothing was recognised.
    pub text: String,
    /// The posterior probability of the whole hypothesis, 0–1, as the
    /// decoder computes it over its lattice. Measured (BENCHMARKS.md): with
    /// a menu's grammar it is near 1 for every utterance the grammar can
    /// explain, so it separates little; the fillers do that work.
    pub confidence: f64,
    /// How long decoding took (CPU on the worker, queueing excluded).
    pub decode_time: Duration,
}

/// How the decoder hears a call's 8 kHz audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputRate {
    /// Upsampled to 16 kHz, the model's own rate (the default).
    #[default]
    Upsampled,
    /// As it is, with the decoder's front end set to 8 kHz (for the
    /// measurement in BENCHMARKS.md).
    Native8k,
}

/// What the decoder searches for in an utterance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Search {
    /// The menu's [`Grammar`]: its phrases and filler words (what runs).
    #[default]
    Grammar,
    /// Keyword spotting of the menu's phrases (`ps_set_kws`), each with the
    /// detection threshold 10^`exponent`: the comparison in BENCHMARKS.md.
    Keywords {
        /// The threshold's power of ten (-20: 1e-20).
        exponent: i32,
    },
}

/// The pool's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecogniserConfig {
    /// The model.
    pub model: ModelFiles,
    /// Worker threads (each a decoder, about 25 MB with en-us).
    pub workers: usize,
    /// Recognitions at once, queued or running; beyond it, `Busy`.
    pub budget: usize,
    /// How the audio is fed.
    pub rate: InputRate,
    /// What the decoder searches for.
    pub search: Search,
}

type Reply = Box<dyn FnOnce(Result<Recognition, SpeechError>) + Send>;

struct Job {
    grammar: Arc<Grammar>,
    samples: Vec<i16>,
    reply: Reply,
}

/// The running pool. Dropping it stops the workers once their queue is done.
pub struct Recogniser {
    jobs: Option<mpsc::Sender<Job>>,
    in_flight: Arc<AtomicUsize>,
    budget: usize,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Recogniser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recogniser")
            .field("budget", &self.budget)
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .field("workers", &self.workers.len())
            .finish()
    }
}

impl Recogniser {
    /// Opens the library, loads the model in every worker and waits until
    /// each is ready: an error here (library or model missing) is the
    /// reason `run` refuses a plan that asks for speech.
    pub fn start(config: RecogniserConfig) -> Result<Recogniser, SpeechError> {
        let api = Api::open()?;
        let workers = config.workers.max(1);
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(std::sync::Mutex::new(receiver));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut handles = Vec::with_capacity(workers);
        for index in 0..workers {
            let api = Arc::clone(&api);
            let receiver = Arc::clone(&receiver);
            let in_flight = Arc::clone(&in_flight);
            let ready = ready_tx.clone();
            let config = config.clone();
            let handle = std::thread::Builder::new()
                .name(format!("speech-{index}"))
                .spawn(move || {
                    let decoder = match new_decoder(api, &config) {
                        Ok(decoder) => {
                            let _ = ready.send(Ok(()));
                            decoder
                        }
                        Err(error) => {
                            let _ = ready.send(Err(error));
                            return;
                        }
                    };
                    drop(ready);
                    work(decoder, (config.rate, config.search), &receiver, &in_flight);
                })
                .map_err(|error| SpeechError::Model(format!("cannot start a worker: {error}")))?;
            handles.push(handle);
        }
        drop(ready_tx);
        for _ in 0..workers {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(error),
                Err(_) => return Err(SpeechError::Stopped),
            }
        }
        Ok(Recogniser {
            jobs: Some(jobs),
            in_flight,
            budget: config.budget.max(1),
            workers: handles,
        })
    }

    /// Queues one utterance (8 kHz linear PCM) for `grammar`; `reply` gets
    /// the outcome on a worker thread. Fails at once with
    /// [`SpeechError::Busy`] when `budget` recognitions are under way.
    pub fn try_recognise(
        &self,
        grammar: Arc<Grammar>,
        samples: Vec<i16>,
        reply: impl FnOnce(Result<Recognition, SpeechError>) + Send + 'static,
    ) -> Result<(), SpeechError> {
        let taken = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.budget).then_some(n + 1)
            });
        if taken.is_err() {
            return Err(SpeechError::Busy);
        }
        let job = Job {
            grammar,
            samples,
            reply: Box::new(reply),
        };
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                Err(SpeechError::Stopped)
            }
        }
    }

    /// Recognitions queued or running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// The budget of concurrent recognitions.
    pub fn budget(&self) -> usize {
        self.budget
    }
}

impl Drop for Recogniser {
    fn drop(&mut self) {
        // Closing the queue ends each worker after the jobs already queued.
        self.jobs = None;
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

fn new_decoder(api: Arc<Api>, config: &RecogniserConfig) -> Result<RawDecoder, SpeechError> {
    let acoustic = config.model.acoustic.to_string_lossy().into_owned();
    let dictionary = config.model.dictionary.to_string_lossy().into_owned();
    let mut arguments = vec![
        ("-hmm", acoustic.as_str()),
        ("-dict", dictionary.as_str()),
        ("-logfn", "/dev/null"),
    ];
    if config.rate == InputRate::Native8k {
        arguments.extend([("-samprate", "8000"), ("-nfft", "256"), ("-upperf", "3500")]);
    }
    RawDecoder::new(api, &arguments)
}

fn work(
    mut decoder: RawDecoder,
    (rate, search): (InputRate, Search),
    receiver: &std::sync::Mutex<mpsc::Receiver<Job>>,
    in_flight: &AtomicUsize,
) {
    let mut searches: HashSet<String> = HashSet::new();
    loop {
        // The lock is held only to take one job, never while decoding.
        let job = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let started = Instant::now();
        let result = recognise(
            &mut decoder,
            &mut searches,
            (rate, search),
            &job.grammar,
            &job.samples,
        )
        .map(|(text, confidence)| Recognition {
            text,
            confidence,
            decode_time: started.elapsed(),
        });
        in_flight.fetch_sub(1, Ordering::AcqRel);
        (job.reply)(result);
    }
}

/// The most grammars a worker keeps as searches (one per distinct menu);
/// past it they are dropped and added again as needed.
const MAX_SEARCHES: usize = 64;

fn recognise(
    decoder: &mut RawDecoder,
    searches: &mut HashSet<String>,
    (rate, search): (InputRate, Search),
    grammar: &Grammar,
    samples: &[i16],
) -> Result<(String, f64), SpeechError> {
    let name = match search {
        Search::Grammar => grammar.name().to_string(),
        Search::Keywords { exponent } => format!("kws{exponent}-{}", grammar.name()),
    };
    if !searches.contains(&name) {
        if searches.len() >= MAX_SEARCHES {
            searches.clear();
        }
        match search {
            Search::Grammar => decoder.set_jsgf(&name, grammar.jsgf())?,
            Search::Keywords { exponent } => {
                // The decoder reads keyphrases from a file only.
                let path = std::env::temp_dir().join(format!(
                    "frontdesk-{name}-{}-{:?}.kws",
                    std::process::id(),
                    std::thread::current().id()
                ));
                let text: String = grammar
                    .phrases()
                    .iter()
                    .map(|phrase| format!("{phrase} /1e{exponent}/\n"))
                    .collect();
                std::fs::write(&path, text)
                    .map_err(|error| SpeechError::Model(format!("{}: {error}", path.display())))?;
                let added = decoder.set_kws(&name, &path.to_string_lossy());
                let _ = std::fs::remove_file(&path);
                added?;
            }
        }
        searches.insert(name.clone());
    }
    let upsampled;
    let audio = match rate {
        InputRate::Upsampled => {
            upsampled = upsample_8k_to_16k(samples);
            &upsampled[..]
        }
        InputRate::Native8k => samples,
    };
    decoder.set_search(&name)?;
    let heard = decoder.decode(audio)?;
    Ok((heard.text, heard.posterior))
}
