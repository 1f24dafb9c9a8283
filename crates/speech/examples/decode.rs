//! Decodes 8 kHz mono 16-bit WAV files against a grammar of phrases:
//! `cargo run -p speech --example decode -- MODEL_DIR "phrase|phrase …" FILE.wav …`
//! (a quick look at what the recogniser hears; bench/speech.sh measures).
use std::sync::{Arc, mpsc};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args.next().ok_or("MODEL_DIR")?;
    let phrases: Vec<Vec<String>> = args
        .next()
        .ok_or("PHRASES")?
        .split('|')
        .map(|p| p.split_whitespace().map(str::to_lowercase).collect())
        .collect();
    let rate = match std::env::var("SPEECH_RATE").as_deref() {
        Ok("8k") => speech::InputRate::Native8k,
        _ => speech::InputRate::Upsampled,
    };
    // SPEECH_SEARCH=kws:-20: keyword spotting at threshold 1e-20 instead
    // of the grammar.
    let search = match std::env::var("SPEECH_SEARCH") {
        Ok(kws) => speech::Search::Keywords {
            exponent: kws
                .strip_prefix("kws:")
                .and_then(|e| e.parse().ok())
                .ok_or("SPEECH_SEARCH=kws:EXPONENT")?,
        },
        Err(_) => speech::Search::Grammar,
    };
    let fillers: Vec<String> = match std::env::var("SPEECH_FILLERS") {
        Ok(list) => list.split_whitespace().map(str::to_string).collect(),
        Err(_) => speech::FILLERS.iter().map(|s| s.to_string()).collect(),
    };
    let fillers: Vec<&str> = fillers.iter().map(String::as_str).collect();
    let grammar = Arc::new(speech::Grammar::with_fillers(
        phrases.iter().map(Vec::as_slice),
        &fillers,
    ));
    let recogniser = speech::Recogniser::start(speech::RecogniserConfig {
        model: speech::ModelFiles::find(std::path::Path::new(&model))?,
        workers: 1,
        budget: 4,
        rate,
        search,
    })?;
    for file in args {
        let mut reader = hound::WavReader::open(&file)?;
        let samples: Vec<i16> = reader.samples::<i16>().collect::<Result<_, _>>()?;
        let (tx, rx) = mpsc::channel();
        recogniser.try_recognise(Arc::clone(&grammar), samples, move |r| {
            let _ = tx.send(r);
        })?;
        let r = rx.recv()??;
        println!(
            "{file}\t{}\t{:.3}\t{:?}",
            r.text, r.confidence, r.decode_time
        );
    }
    Ok(())
}
