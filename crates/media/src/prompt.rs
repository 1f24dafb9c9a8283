//! Prompts: 8 kHz mono 16-bit PCM WAV files (read with hound), encoded
//! once at load time into 20 ms G.711 frames for both codecs, so that
//! playback is a slice copy per packet. Prompts are immutable and shared
//! by `Arc` between all the calls that play them.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::codec::{CLOCK_RATE, Codec, FRAME_DURATION, SAMPLES_PER_FRAME};
use crate::error::PromptError;

/// One prompt, pre-encoded in 160-byte frames (the last one padded with
/// silence).
#[derive(Clone, PartialEq, Eq)]
pub struct Prompt {
    name: String,
    samples: usize,
    pcmu: Vec<u8>,
    pcma: Vec<u8>,
}

impl std::fmt::Debug for Prompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompt")
            .field("name", &self.name)
            .field("samples", &self.samples)
            .field("frames", &self.frame_count())
            .finish()
    }
}

impl Prompt {
    /// Encodes linear 8 kHz samples.
    pub fn from_samples(name: impl Into<String>, samples: &[i16]) -> Result<Prompt, PromptError> {
        let name = name.into();
        if samples.is_empty() {
            return Err(PromptError::Empty { name });
        }
        let padded = samples.len().div_ceil(SAMPLES_PER_FRAME) * SAMPLES_PER_FRAME;
        let encode = |codec: Codec| {
            let mut bytes: Vec<u8> = samples.iter().map(|sample| codec.encode(*sample)).collect();
            bytes.resize(padded, codec.silence());
            bytes
        };
        Ok(Prompt {
            samples: samples.len(),
            pcmu: encode(Codec::Pcmu),
            pcma: encode(Codec::Pcma),
            name,
        })
    }

    /// Reads a WAV from any reader; `name` is used in errors and lookups.
    pub fn from_wav_reader<R: Read>(
        name: impl Into<String>,
        reader: R,
    ) -> Result<Prompt, PromptError> {
        let name = name.into();
        let wav = hound::WavReader::new(reader).map_err(|source| wav_error(&name, source))?;
        let spec = wav.spec();
        let supported = spec.channels == 1
            && spec.sample_rate == CLOCK_RATE
            && spec.bits_per_sample == 16
            && spec.sample_format == hound::SampleFormat::Int;
        if !supported {
            let format = match spec.sample_format {
                hound::SampleFormat::Int => "int",
                hound::SampleFormat::Float => "float",
            };
            let found = format!(
                "{} Hz, {} channel(s), {}-bit {format}",
                spec.sample_rate, spec.channels, spec.bits_per_sample
            );
            return Err(PromptError::Format { name, found });
        }
        let samples = wav
            .into_samples::<i16>()
            .collect::<Result<Vec<i16>, _>>()
            .map_err(|source| wav_error(&name, source))?;
        Prompt::from_samples(name, &samples)
    }

    /// Loads a WAV file; the prompt is named after the file stem
    /// (`prompts/main-menu.wav` → `main-menu`).
    pub fn load(path: &Path) -> Result<Prompt, PromptError> {
        let display = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| PromptError::Io {
            name: display.clone(),
            source,
        })?;
        let prompt = Prompt::from_wav_reader(display, std::io::BufReader::new(file))?;
        let stem = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Prompt {
            name: stem,
            ..prompt
        })
    }

    /// The prompt's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of 20 ms frames.
    pub fn frame_count(&self) -> usize {
        self.pcmu.len() / SAMPLES_PER_FRAME
    }

    /// Samples in the source file.
    pub fn sample_count(&self) -> usize {
        self.samples
    }

    /// Playing time (whole frames).
    pub fn duration(&self) -> Duration {
        FRAME_DURATION * self.frame_count() as u32
    }

    /// Frame `index` in `codec`, 160 bytes.
    pub fn frame(&self, codec: Codec, index: usize) -> Option<&[u8]> {
        let bytes = match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        };
        bytes.get(index * SAMPLES_PER_FRAME..(index + 1) * SAMPLES_PER_FRAME)
    }
}

fn wav_error(name: &str, source: hound::Error) -> PromptError {
    match source {
        hound::Error::IoError(source) => PromptError::Io {
            name: name.to_owned(),
            source,
        },
        source => PromptError::Wav {
            name: name.to_owned(),
            source,
        },
    }
}

/// All prompts by name, loaded once and shared.
#[derive(Clone, Debug, Default)]
pub struct PromptLibrary {
    prompts: HashMap<String, Arc<Prompt>>,
}

impl PromptLibrary {
    /// An empty library.
    pub fn new() -> PromptLibrary {
        PromptLibrary::default()
    }

    /// Loads every `*.wav` in `directory` (not recursive). Any unreadable
    /// or wrongly formatted file fails the whole load, so a bad prompt is
    /// found at start or reload, not during a call.
    pub fn load_dir(directory: &Path) -> Result<PromptLibrary, PromptError> {
        let listing_error = |source| PromptError::Directory {
            path: directory.to_owned(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(directory).map_err(listing_error)? {
            let path = entry.map_err(listing_error)?.path();
            let is_wav = path
                .extension()
                .is_some_and(|extension| extension.eq_ignore_ascii_case("wav"));
            if is_wav && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut library = PromptLibrary::new();
        for path in paths {
            library.insert(Prompt::load(&path)?);
        }
        Ok(library)
    }

    /// Adds (or replaces) a prompt; returns the shared handle.
    pub fn insert(&mut self, prompt: Prompt) -> Arc<Prompt> {
        let prompt = Arc::new(prompt);
        self.prompts
            .insert(prompt.name().to_owned(), Arc::clone(&prompt));
        prompt
    }

    /// A prompt by name.
    pub fn get(&self, name: &str) -> Option<Arc<Prompt>> {
        self.prompts.get(name).cloned()
    }

    /// The names of all prompts, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.prompts.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Number of prompts.
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    /// Whether the library is empty.
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::g711;

    fn wav_bytes(spec: hound::WavSpec, samples: usize) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        let mut writer = hound::WavWriter::new(&mut bytes, spec).unwrap();
        for n in 0..samples {
            match (spec.sample_format, spec.bits_per_sample) {
                (hound::SampleFormat::Float, _) => writer.write_sample(0.25f32).unwrap(),
                (_, 8) => writer.write_sample(n as i8).unwrap(),
                _ => writer.write_sample(((n % 100) as i16 - 50) * 300).unwrap(),
            }
        }
        writer.finalize().unwrap();
        bytes.into_inner()
    }

    fn spec(
        sample_rate: u32,
        channels: u16,
        bits: u16,
        format: hound::SampleFormat,
    ) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate,
            bits_per_sample: bits,
            sample_format: format,
        }
    }

    #[test]
    fn loads_and_pre_encodes_frames_for_both_codecs() {
        let bytes = wav_bytes(spec(8000, 1, 16, hound::SampleFormat::Int), 8000 + 10);
        let prompt = Prompt::from_wav_reader("menu", Cursor::new(bytes)).unwrap();
        assert_eq!(prompt.sample_count(), 8010);
        assert_eq!(prompt.frame_count(), 51);
        assert_eq!(prompt.duration(), Duration::from_millis(1020));
        let first = prompt.frame(Codec::Pcmu, 0).unwrap();
        assert_eq!(first.len(), 160);
        assert_eq!(first[0], g711::ulaw_encode(-50 * 300));
        assert_eq!(
            prompt.frame(Codec::Pcma, 0).unwrap()[1],
            g711::alaw_encode(-49 * 300)
        );
        // The last frame: 10 samples, then silence.
        let last = prompt.frame(Codec::Pcma, 50).unwrap();
        assert_eq!(last[9], g711::alaw_encode(((8009 % 100) as i16 - 50) * 300));
        assert!(last[10..].iter().all(|byte| *byte == Codec::Pcma.silence()));
        assert!(prompt.frame(Codec::Pcmu, 51).is_none());
    }

    #[test]
    fn wrong_formats_are_refused_with_what_was_found() {
        let cases = [
            (
                spec(44_100, 1, 16, hound::SampleFormat::Int),
                "44100 Hz, 1 channel(s), 16-bit int",
            ),
            (
                spec(8000, 2, 16, hound::SampleFormat::Int),
                "8000 Hz, 2 channel(s), 16-bit int",
            ),
            (
                spec(8000, 1, 8, hound::SampleFormat::Int),
                "8000 Hz, 1 channel(s), 8-bit int",
            ),
            (
                spec(8000, 1, 32, hound::SampleFormat::Float),
                "8000 Hz, 1 channel(s), 32-bit float",
            ),
        ];
        for (spec, expected) in cases {
            match Prompt::from_wav_reader("bad", Cursor::new(wav_bytes(spec, 400))) {
                Err(PromptError::Format { name, found }) => {
                    assert_eq!(name, "bad");
                    assert_eq!(found, expected);
                }
                other => panic!("{expected}: {other:?}"),
            }
        }
    }

    #[test]
    fn garbage_empty_and_missing_files_are_errors() {
        assert!(matches!(
            Prompt::from_wav_reader("junk", Cursor::new(b"RIFF....WAVEjunk".to_vec())),
            Err(PromptError::Wav { .. } | PromptError::Io { .. })
        ));
        let empty = wav_bytes(spec(8000, 1, 16, hound::SampleFormat::Int), 0);
        assert!(matches!(
            Prompt::from_wav_reader("empty", Cursor::new(empty)),
            Err(PromptError::Empty { .. })
        ));
        assert!(matches!(
            Prompt::load(Path::new("/nonexistent/prompt.wav")),
            Err(PromptError::Io { .. })
        ));
        assert!(matches!(
            PromptLibrary::load_dir(Path::new("/nonexistent")),
            Err(PromptError::Directory { .. })
        ));
    }

    #[test]
    fn library_loads_a_directory_by_file_stem() {
        let directory = std::env::temp_dir().join(format!("media-prompts-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let good = wav_bytes(spec(8000, 1, 16, hound::SampleFormat::Int), 1600);
        std::fs::write(directory.join("main-menu.wav"), &good).unwrap();
        std::fs::write(directory.join("after-hours.WAV"), &good).unwrap();
        std::fs::write(directory.join("notes.txt"), b"not a prompt").unwrap();
        let library = PromptLibrary::load_dir(&directory).unwrap();
        assert_eq!(library.names(), ["after-hours", "main-menu"]);
        let menu = library.get("main-menu").unwrap();
        assert_eq!(menu.frame_count(), 10);
        assert!(Arc::ptr_eq(&menu, &library.get("main-menu").unwrap()));
        assert!(library.get("missing").is_none());

        std::fs::write(
            directory.join("broken.wav"),
            wav_bytes(spec(16_000, 1, 16, hound::SampleFormat::Int), 10),
        )
        .unwrap();
        assert!(matches!(
            PromptLibrary::load_dir(&directory),
            Err(PromptError::Format { .. })
        ));
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
