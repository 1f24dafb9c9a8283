//! The recogniser's pool under load: N utterances handed over at once.
//!
//! `cargo run --release -p speech --example load -- MODEL_DIR "phrase|phrase …" WORKERS N FILE.wav …`
//!
//! Submits N utterances (8 kHz mono 16-bit WAV files, taken in turn) at
//! once to a pool of WORKERS decoders with a budget of N, waits for every
//! answer, and prints the wall time, the seconds of callers' audio decoded
//! per second of wall time (how many callers speaking without a pause the
//! pool keeps up with) and the time from hand-over to answer, p50/p90
//! (queueing included). bench/speech.sh runs it.
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args.next().ok_or("MODEL_DIR")?;
    let phrases: Vec<Vec<String>> = args
        .next()
        .ok_or("PHRASES")?
        .split('|')
        .map(|p| p.split_whitespace().map(str::to_lowercase).collect())
        .collect();
    let workers: usize = args.next().ok_or("WORKERS")?.parse()?;
    let count: usize = args.next().ok_or("N")?.parse()?;
    let mut utterances = Vec::new();
    for file in args {
        let mut reader = hound::WavReader::open(&file)?;
        let samples: Vec<i16> = reader.samples::<i16>().collect::<Result<_, _>>()?;
        utterances.push(samples);
    }
    if utterances.is_empty() {
        return Err("FILE.wav …".into());
    }
    let grammar = Arc::new(speech::Grammar::new(phrases.iter().map(Vec::as_slice)));
    let recogniser = speech::Recogniser::start(speech::RecogniserConfig {
        model: speech::ModelFiles::find(std::path::Path::new(&model))?,
        workers,
        budget: count,
        rate: speech::InputRate::Upsampled,
        search: speech::Search::Grammar,
    })?;
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    let mut audio = Duration::ZERO;
    for n in 0..count {
        let samples = utterances[n % utterances.len()].clone();
        audio += Duration::from_secs_f64(samples.len() as f64 / 8000.0);
        let tx = tx.clone();
        let handed = Instant::now();
        recogniser.try_recognise(Arc::clone(&grammar), samples, move |result| {
            let _ = tx.send((handed.elapsed(), result.is_ok()));
        })?;
    }
    drop(tx);
    let mut latencies = Vec::with_capacity(count);
    let mut failed = 0;
    for (latency, ok) in rx {
        latencies.push(latency);
        failed += usize::from(!ok);
    }
    let wall = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "workers {workers}, utterances {count} ({failed} failed), audio {:.1} s, wall {:.2} s: \
         {:.1} s of audio a second, {:.1} utterances a second; hand-over to answer p50 {:?}, p90 {:?}",
        audio.as_secs_f64(),
        wall.as_secs_f64(),
        audio.as_secs_f64() / wall.as_secs_f64(),
        count as f64 / wall.as_secs_f64(),
        at(0.5),
        at(0.9),
    );
    Ok(())
}
