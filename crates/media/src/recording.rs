//! A voicemail's recording, sans-IO: the caller's G.711 audio decoded to
//! linear PCM, the end of the message detected (silence, maximum length),
//! and the WAV file it is written as.
//!
//! Why linear PCM and not the G.711 bytes as they came: browsers play a
//! 16-bit PCM WAV everywhere (Chromium's support for µ-law/A-law WAV
//! `fmt` codes 7 and 6 is not to be relied on), and decoding is exact —
//! every G.711 code maps to one 16-bit value (ITU-T G.711 tables), so
//! the file holds exactly what the caller's phone sent.
//!
//! The [`Recorder`] keeps only the samples of the packets not yet drained
//! ([`Recorder::drain_into`]); the driver writes them to disk as they come,
//! so a message costs bounded memory whatever its length. Timing follows
//! the RTP timestamps (RFC 3550 §5.1): a packet that repeats or goes back
//! in time is dropped, a gap (lost packets, RFC 3551 §4.5 silence
//! suppression) is filled with silence up to [`MAX_GAP_SAMPLES`], so the
//! message keeps its pace without a peer being able to make us write
//! minutes of zeros.

use std::io::{self, Seek, SeekFrom, Write};
use std::time::Duration;

use crate::codec::Codec;

/// G.711's clock and the WAV's sample rate (RFC 3551 §4.5.14).
pub const SAMPLE_RATE: u32 = 8000;

/// The longest gap between two packets filled with silence: 1 s.
pub const MAX_GAP_SAMPLES: u32 = SAMPLE_RATE;

/// How a recording is ended by its own audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordingLimits {
    /// The longest message, in samples (8 per ms).
    pub max_samples: u32,
    /// A packet whose peak (absolute linear value) is below this is silent.
    pub silence_level: u16,
    /// The message ends after this many samples of unbroken silence.
    pub silence_samples: u32,
}

impl RecordingLimits {
    /// Limits from durations (the dialplan's `[voicemail]`).
    pub fn new(max_length: Duration, silence_level: u16, silence_after: Duration) -> Self {
        RecordingLimits {
            max_samples: samples_in(max_length),
            silence_level,
            silence_samples: samples_in(silence_after),
        }
    }
}

/// The number of 8 kHz samples in `duration`, saturating.
pub fn samples_in(duration: Duration) -> u32 {
    let samples = duration.as_millis() * u128::from(SAMPLE_RATE) / 1000;
    u32::try_from(samples).unwrap_or(u32::MAX)
}

/// Why a recording ended by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordingEnd {
    /// The caller was silent for the limit's `silence_samples`.
    Silence,
    /// The message reached `max_samples`.
    MaxLength,
}

/// One message being recorded from one RTP stream.
#[derive(Debug)]
pub struct Recorder {
    limits: RecordingLimits,
    /// Samples taken so far (written or pending).
    samples: u32,
    /// The RTP timestamp the next packet is expected at, per SSRC.
    next: Option<(u32, u32)>,
    silent_run: u32,
    pending: Vec<i16>,
    ended: Option<RecordingEnd>,
}

impl Recorder {
    /// A recorder that has heard nothing.
    pub fn new(limits: RecordingLimits) -> Recorder {
        Recorder {
            limits,
            samples: 0,
            next: None,
            silent_run: 0,
            pending: Vec::with_capacity(2 * 160),
            ended: None,
        }
    }

    /// Samples taken so far.
    pub fn samples(&self) -> u32 {
        self.samples
    }

    /// Why the recording ended by itself, once it has.
    pub fn ended(&self) -> Option<RecordingEnd> {
        self.ended
    }

    /// Takes one audio packet (`ssrc`, RTP `timestamp`, G.711 `payload`).
    /// Returns the end the first time a limit is reached; after that every
    /// packet is ignored.
    pub fn push(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        codec: Codec,
        payload: &[u8],
    ) -> Option<RecordingEnd> {
        if self.ended.is_some() || payload.is_empty() {
            return None;
        }
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        if let Some((stream, expected)) = self.next
            && stream == ssrc
        {
            // Serial-number arithmetic on the 32-bit timestamp (RFC 3550 §5.1).
            let ahead = timestamp.wrapping_sub(expected);
            if ahead >= 1 << 31 {
                return None; // a repeat or a late packet
            }
            let gap = ahead.min(MAX_GAP_SAMPLES);
            if gap > 0 && self.take_silence(gap) {
                return self.ended;
            }
        }
        self.next = Some((ssrc, timestamp.wrapping_add(len)));
        let room = self.limits.max_samples.saturating_sub(self.samples);
        let take = payload
            .len()
            .min(usize::try_from(room).unwrap_or(usize::MAX));
        let mut peak: u16 = 0;
        for &code in &payload[..take] {
            let sample = codec.decode(code);
            peak = peak.max(sample.unsigned_abs());
            self.pending.push(sample);
        }
        self.samples += u32::try_from(take).unwrap_or(u32::MAX);
        if peak < self.limits.silence_level {
            self.silent_run = self.silent_run.saturating_add(len);
        } else {
            self.silent_run = 0;
        }
        self.check_limits()
    }

    /// Appends every sample not yet drained to `out`, oldest first.
    pub fn drain_into(&mut self, out: &mut Vec<i16>) {
        out.append(&mut self.pending);
    }

    /// Fills a gap of `count` samples with silence; true if that ended it.
    fn take_silence(&mut self, count: u32) -> bool {
        let room = self.limits.max_samples.saturating_sub(self.samples);
        let take = count.min(room);
        self.pending
            .extend(std::iter::repeat_n(0, usize::try_from(take).unwrap_or(0)));
        self.samples += take;
        self.silent_run = self.silent_run.saturating_add(count);
        self.check_limits().is_some()
    }

    fn check_limits(&mut self) -> Option<RecordingEnd> {
        let end = if self.samples >= self.limits.max_samples {
            RecordingEnd::MaxLength
        } else if self.silent_run >= self.limits.silence_samples {
            RecordingEnd::Silence
        } else {
            return None;
        };
        self.ended = Some(end);
        Some(end)
    }
}

/// The 44-byte header of a canonical WAV (RIFF `WAVE`, `fmt ` PCM, 8 kHz,
/// mono, 16-bit little-endian) whose data chunk holds `data_bytes`.
pub fn wav_header(data_bytes: u32) -> [u8; 44] {
    let mut header = [0u8; 44];
    let mut put = |at: usize, bytes: &[u8]| header[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, b"RIFF");
    put(4, &data_bytes.saturating_add(36).to_le_bytes());
    put(8, b"WAVE");
    put(12, b"fmt ");
    put(16, &16u32.to_le_bytes());
    put(20, &1u16.to_le_bytes()); // PCM
    put(22, &1u16.to_le_bytes()); // mono
    put(24, &SAMPLE_RATE.to_le_bytes());
    put(28, &(SAMPLE_RATE * 2).to_le_bytes()); // bytes per second
    put(32, &2u16.to_le_bytes()); // block align
    put(34, &16u16.to_le_bytes()); // bits per sample
    put(36, b"data");
    put(40, &data_bytes.to_le_bytes());
    header
}

/// A WAV file being written: a header with the sizes left at zero, the
/// samples as they come, and the sizes filled in by [`WavWriter::finish`].
#[derive(Debug)]
pub struct WavWriter<W: Write + Seek> {
    out: W,
    data_bytes: u32,
    bytes: Vec<u8>,
}

impl<W: Write + Seek> WavWriter<W> {
    /// Writes the header to `out` (at its start).
    pub fn new(mut out: W) -> io::Result<WavWriter<W>> {
        out.write_all(&wav_header(0))?;
        Ok(WavWriter {
            out,
            data_bytes: 0,
            bytes: Vec::new(),
        })
    }

    /// Appends samples.
    pub fn write(&mut self, samples: &[i16]) -> io::Result<()> {
        self.bytes.clear();
        for sample in samples {
            self.bytes.extend_from_slice(&sample.to_le_bytes());
        }
        self.out.write_all(&self.bytes)?;
        let len = u32::try_from(self.bytes.len()).unwrap_or(u32::MAX);
        self.data_bytes = self.data_bytes.saturating_add(len);
        Ok(())
    }

    /// Samples written so far.
    pub fn samples(&self) -> u32 {
        self.data_bytes / 2
    }

    /// Fills in the sizes and gives the output back.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&wav_header(self.data_bytes))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn limits() -> RecordingLimits {
        RecordingLimits::new(Duration::from_secs(2), 500, Duration::from_millis(500))
    }

    fn loud(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| Codec::Pcmu.encode(if i % 2 == 0 { 8000 } else { -8000 }))
            .collect()
    }

    #[test]
    fn decodes_every_sample_exactly() {
        let mut recorder = Recorder::new(limits());
        let payload: Vec<u8> = (0..=255).collect();
        assert_eq!(recorder.push(1, 0, Codec::Pcma, &payload), None);
        let mut out = Vec::new();
        recorder.drain_into(&mut out);
        let expected: Vec<i16> = payload.iter().map(|&c| Codec::Pcma.decode(c)).collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn a_repeat_is_dropped_and_a_gap_is_silence() {
        let mut recorder = Recorder::new(limits());
        recorder.push(7, 1000, Codec::Pcmu, &loud(160));
        recorder.push(7, 1000, Codec::Pcmu, &loud(160)); // retransmitted
        recorder.push(7, 1320, Codec::Pcmu, &loud(160)); // one packet lost
        let mut out = Vec::new();
        recorder.drain_into(&mut out);
        assert_eq!(out.len(), 480);
        assert!(out[160..320].iter().all(|s| *s == 0));
    }

    #[test]
    fn a_huge_gap_costs_at_most_a_second() {
        let mut recorder = Recorder::new(RecordingLimits::new(
            Duration::from_secs(60),
            500,
            Duration::from_secs(30),
        ));
        recorder.push(7, 0, Codec::Pcmu, &loud(160));
        recorder.push(7, 2_000_000_000, Codec::Pcmu, &loud(160));
        assert_eq!(recorder.samples(), 160 + MAX_GAP_SAMPLES + 160);
    }

    #[test]
    fn ends_on_silence() {
        let mut recorder = Recorder::new(limits());
        let quiet = vec![Codec::Pcmu.encode(10); 160];
        assert_eq!(recorder.push(1, 0, Codec::Pcmu, &loud(160)), None);
        let mut ended = None;
        for i in 1..=25u32 {
            if let Some(end) = recorder.push(1, i * 160, Codec::Pcmu, &quiet) {
                ended = Some((i, end));
                break;
            }
        }
        // 500 ms is 4000 samples: the 25th quiet packet.
        assert_eq!(ended, Some((25, RecordingEnd::Silence)));
        assert_eq!(recorder.push(1, 26 * 160, Codec::Pcmu, &loud(160)), None);
    }

    #[test]
    fn stops_at_the_maximum_length() {
        let mut recorder = Recorder::new(limits());
        let mut end = None;
        for i in 0..200u32 {
            end = end.or(recorder.push(1, i * 160, Codec::Pcmu, &loud(160)));
        }
        assert_eq!(end, Some(RecordingEnd::MaxLength));
        assert_eq!(recorder.samples(), 16_000);
    }

    #[test]
    fn the_wav_file_reads_back() {
        let mut writer = WavWriter::new(Cursor::new(Vec::new())).unwrap();
        writer.write(&[1, -2, 3]).unwrap();
        writer.write(&[i16::MIN, i16::MAX]).unwrap();
        let bytes = writer.finish().unwrap().into_inner();
        let reader = hound::WavReader::new(Cursor::new(bytes)).unwrap();
        let spec = reader.spec();
        assert_eq!(
            (spec.sample_rate, spec.channels, spec.bits_per_sample),
            (8000, 1, 16)
        );
        let samples: Vec<i16> = reader.into_samples().map(Result::unwrap).collect();
        assert_eq!(samples, vec![1, -2, 3, i16::MIN, i16::MAX]);
    }

    proptest::proptest! {
        #[test]
        fn any_packets_keep_memory_and_length_bounded(
            packets in proptest::collection::vec(
                (0u32..4, proptest::num::u32::ANY, proptest::collection::vec(0u8..=255, 0..400)),
                0..60,
            )
        ) {
            let mut recorder = Recorder::new(limits());
            let mut out = Vec::new();
            for (ssrc, timestamp, payload) in packets {
                recorder.push(ssrc, timestamp, Codec::Pcmu, &payload);
                recorder.drain_into(&mut out);
            }
            proptest::prop_assert!(out.len() <= 16_000);
            proptest::prop_assert_eq!(out.len() as u32, recorder.samples());
        }
    }
}
