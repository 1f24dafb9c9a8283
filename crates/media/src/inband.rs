//! In-band DTMF detection: a Goertzel filter bank over each 20 ms frame
//! (160 samples at 8 kHz), for callers whose phones send tones in the
//! audio instead of RFC 4733 events.
//!
//! A frame holds a digit when all of these hold (thresholds in the
//! constants below, chosen after ITU-T Q.24 and tested with tones, noise,
//! speech-like vowels and music chords):
//! * the frame is loud enough;
//! * the strongest row and column frequencies stand out from the other
//!   three of their group;
//! * the two tones carry most of the frame's energy (speech and music
//!   spread theirs over many frequencies);
//! * the twist (column/row power ratio) is within ±8 dB;
//! * neither tone has a strong second harmonic (voices and instruments do).
//!
//! A digit is reported once it held for two consecutive frames (40 ms),
//! and the same digit again only after at least 40 ms without one.

use crate::codec::{CLOCK_RATE, Codec, SAMPLES_PER_FRAME};
use crate::dtmf::{COLUMN_FREQUENCIES, DtmfDigit, ROW_FREQUENCIES};

/// Mean power per sample below which a frame is silence (≈ −39 dBm0).
const MIN_MEAN_POWER: f32 = 100.0 * 100.0;
/// Share of the frame's energy the two tones must carry.
const MIN_TONE_SHARE: f32 = 0.70;
/// A tone must beat the others of its group by this power ratio (6 dB).
const MIN_GROUP_RATIO: f32 = 4.0;
/// Largest allowed twist either way, as a power ratio (8 dB).
const MAX_TWIST: f32 = 6.3;
/// A second harmonic above this share of its fundamental rejects the frame.
const MAX_HARMONIC_RATIO: f32 = 0.25;
/// Frequency deviation a sender may have (ITU-T Q.24: ±1.5 %).
const FREQUENCY_TOLERANCE: f32 = 0.015;
/// Frames a digit must hold before it is reported.
const MIN_FRAMES: u32 = 2;
/// Digit-free frames that re-arm the same digit.
const MIN_GAP_FRAMES: u32 = 2;

/// Four Goertzel filters (single DFT bins at any frequency) run in one
/// pass: the four recurrences are independent, so the CPU overlaps them
/// instead of waiting on one chain of multiply-adds per filter.
#[derive(Clone, Copy, Debug)]
struct GoertzelBank {
    coefficients: [f32; 4],
}

impl GoertzelBank {
    fn new(frequencies: [f32; 4]) -> GoertzelBank {
        GoertzelBank {
            coefficients: frequencies.map(|frequency| {
                let omega = 2.0 * std::f32::consts::PI * frequency / CLOCK_RATE as f32;
                2.0 * omega.cos()
            }),
        }
    }

    /// Squared magnitudes of the four bins over `samples`.
    fn powers(&self, samples: &[f32]) -> [f32; 4] {
        let c = self.coefficients;
        let (mut s1, mut s2) = ([0.0f32; 4], [0.0f32; 4]);
        for sample in samples {
            for k in 0..4 {
                let s0 = sample + c[k] * s1[k] - s2[k];
                s2[k] = s1[k];
                s1[k] = s0;
            }
        }
        std::array::from_fn(|k| s1[k] * s1[k] + s2[k] * s2[k] - c[k] * s1[k] * s2[k])
    }
}

/// The per-frame analysis, without memory between frames.
#[derive(Clone, Debug)]
pub struct FrameAnalyzer {
    rows: GoertzelBank,
    columns: GoertzelBank,
}

impl Default for FrameAnalyzer {
    fn default() -> FrameAnalyzer {
        FrameAnalyzer::new()
    }
}

impl FrameAnalyzer {
    /// Filters for the eight DTMF frequencies and their second harmonics.
    pub fn new() -> FrameAnalyzer {
        FrameAnalyzer {
            rows: GoertzelBank::new(ROW_FREQUENCIES),
            columns: GoertzelBank::new(COLUMN_FREQUENCIES),
        }
    }

    /// The digit whose tones this frame holds, if any.
    pub fn analyze(&self, samples: &[i16]) -> Option<DtmfDigit> {
        let mut buffer = [0f32; SAMPLES_PER_FRAME * 2];
        let samples = &samples[..samples.len().min(buffer.len())];
        if samples.len() < SAMPLES_PER_FRAME / 2 {
            return None;
        }
        let frame = &mut buffer[..samples.len()];
        for (out, sample) in frame.iter_mut().zip(samples) {
            *out = f32::from(*sample);
        }
        let energy: f32 = frame.iter().map(|x| x * x).sum();
        let n = frame.len() as f32;
        if energy / n < MIN_MEAN_POWER {
            return None;
        }
        let (row, row_power) = strongest(self.rows.powers(frame))?;
        let (column, column_power) = strongest(self.columns.powers(frame))?;
        // Q.24 allows ±1.5 % frequency deviation, about half a bin at N = 160:
        // measure the chosen tones at the band edges too and keep the best.
        let (low, high) = (ROW_FREQUENCIES[row], COLUMN_FREQUENCIES[column]);
        let [low_below, low_above, high_below, high_above] = GoertzelBank::new([
            low * (1.0 - FREQUENCY_TOLERANCE),
            low * (1.0 + FREQUENCY_TOLERANCE),
            high * (1.0 - FREQUENCY_TOLERANCE),
            high * (1.0 + FREQUENCY_TOLERANCE),
        ])
        .powers(frame);
        let row_power = row_power.max(low_below).max(low_above);
        let column_power = column_power.max(high_below).max(high_above);
        // A pure tone of amplitude A gives |X|² = (A·N/2)² and energy N·A²/2,
        // so 2|X|²/(N·energy) is the share of energy in that tone.
        let share = 2.0 * (row_power + column_power) / (n * energy);
        if share < MIN_TONE_SHARE {
            return None;
        }
        let twist = column_power / row_power;
        if !(1.0 / MAX_TWIST..=MAX_TWIST).contains(&twist) {
            return None;
        }
        // Only two bins are needed; the bank computes four for the price of one.
        let [low_harmonic, high_harmonic, ..] =
            GoertzelBank::new([2.0 * low, 2.0 * high, 2.0 * low, 2.0 * high]).powers(frame);
        if low_harmonic > MAX_HARMONIC_RATIO * row_power
            || high_harmonic > MAX_HARMONIC_RATIO * column_power
        {
            return None;
        }
        DtmfDigit::from_keypad_position(row, column)
    }
}

/// The strongest bin of a group, if it beats the others clearly.
fn strongest(powers: [f32; 4]) -> Option<(usize, f32)> {
    let (best, best_power) = powers
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let clear = powers
        .iter()
        .enumerate()
        .all(|(index, power)| index == best || *power * MIN_GROUP_RATIO <= best_power);
    (clear && best_power > 0.0).then_some((best, best_power))
}

/// The stateful detector for one inbound stream.
#[derive(Clone, Debug, Default)]
pub struct InbandDtmfDetector {
    analyzer: FrameAnalyzer,
    candidate: Option<DtmfDigit>,
    run: u32,
    gap: u32,
    last_reported: Option<DtmfDigit>,
}

impl InbandDtmfDetector {
    /// A detector that has heard nothing.
    pub fn new() -> InbandDtmfDetector {
        InbandDtmfDetector::default()
    }

    /// Feeds one frame of linear samples (160 for 20 ms); returns a digit
    /// when one is recognised.
    pub fn process_frame(&mut self, samples: &[i16]) -> Option<DtmfDigit> {
        let digit = self.analyzer.analyze(samples);
        if digit == self.candidate {
            self.run = self.run.saturating_add(1);
        } else {
            self.candidate = digit;
            self.run = 1;
        }
        match digit {
            None => {
                self.gap = self.gap.saturating_add(1);
                if self.gap >= MIN_GAP_FRAMES {
                    self.last_reported = None;
                }
                None
            }
            Some(digit) => {
                self.gap = 0;
                if self.run == MIN_FRAMES && self.last_reported != Some(digit) {
                    self.last_reported = Some(digit);
                    Some(digit)
                } else {
                    None
                }
            }
        }
    }

    /// Decodes a G.711 payload and feeds it in 20 ms frames (a trailing
    /// part shorter than 10 ms is skipped). Returns the first digit found.
    pub fn process_encoded(&mut self, codec: Codec, payload: &[u8]) -> Option<DtmfDigit> {
        let mut samples = [0i16; SAMPLES_PER_FRAME];
        let mut found = None;
        for chunk in payload.chunks(SAMPLES_PER_FRAME) {
            if chunk.len() < SAMPLES_PER_FRAME / 2 {
                break;
            }
            for (out, code) in samples.iter_mut().zip(chunk) {
                *out = codec.decode(*code);
            }
            let digit = self.process_frame(&samples[..chunk.len()]);
            found = found.or(digit);
        }
        found
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    const RATE: f32 = CLOCK_RATE as f32;

    /// `seconds` of the digit's two tones, row at `row_level` and column
    /// `twist_db` louder, plus white noise of `noise` peak amplitude.
    pub(crate) fn tone(
        digit: DtmfDigit,
        seconds: f32,
        row_level: f32,
        twist_db: f32,
        noise: f32,
        rng: &mut SmallRng,
    ) -> Vec<i16> {
        let (low, high) = digit.frequencies();
        let high_level = row_level * 10f32.powf(twist_db / 20.0);
        (0..(seconds * RATE) as usize)
            .map(|n| {
                let t = n as f32 / RATE;
                let value = row_level * (2.0 * std::f32::consts::PI * low * t).sin()
                    + high_level * (2.0 * std::f32::consts::PI * high * t).sin()
                    + noise * (rng.random::<f32>() * 2.0 - 1.0);
                value.clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    fn silence(seconds: f32) -> Vec<i16> {
        vec![0; (seconds * RATE) as usize]
    }

    fn detect(samples: &[i16]) -> String {
        let mut detector = InbandDtmfDetector::new();
        samples
            .chunks(SAMPLES_PER_FRAME)
            .filter_map(|frame| detector.process_frame(frame))
            .map(|digit| digit.as_char())
            .collect()
    }

    /// A vowel: a 110–140 Hz glottal pulse train through three formant
    /// resonators (two-pole filters), like a formant synthesizer.
    fn vowel(f0: f32, formants: [(f32, f32); 3], seconds: f32) -> Vec<i16> {
        let count = (seconds * RATE) as usize;
        let mut output = vec![0f32; count];
        let mut phase = 0f32;
        let mut source = Vec::with_capacity(count);
        for n in 0..count {
            // Slight vibrato, as voices have.
            let pitch =
                f0 * (1.0 + 0.02 * (2.0 * std::f32::consts::PI * 5.0 * n as f32 / RATE).sin());
            phase += pitch / RATE;
            let pulse = if phase >= 1.0 {
                phase -= 1.0;
                1.0
            } else {
                0.0
            };
            source.push(pulse);
        }
        for (frequency, bandwidth) in formants {
            let r = (-std::f32::consts::PI * bandwidth / RATE).exp();
            let a1 = 2.0 * r * (2.0 * std::f32::consts::PI * frequency / RATE).cos();
            let a2 = -r * r;
            let (mut y1, mut y2) = (0f32, 0f32);
            for (n, x) in source.iter().enumerate() {
                let y = x + a1 * y1 + a2 * y2;
                y2 = y1;
                y1 = y;
                output[n] += y;
            }
        }
        let peak = output.iter().fold(0f32, |peak, y| peak.max(y.abs()));
        output
            .iter()
            .map(|y| (y / peak * 12_000.0) as i16)
            .collect()
    }

    fn chord(notes: &[f32], seconds: f32) -> Vec<i16> {
        (0..(seconds * RATE) as usize)
            .map(|n| {
                let t = n as f32 / RATE;
                let value: f32 = notes
                    .iter()
                    .map(|f| {
                        // A few harmonics with decaying level, like an instrument.
                        (1..=4)
                            .map(|h| {
                                (2.0 * std::f32::consts::PI * f * h as f32 * t).sin() / h as f32
                            })
                            .sum::<f32>()
                    })
                    .sum();
                (value * 3000.0) as i16
            })
            .collect()
    }

    #[test]
    fn detects_every_digit() {
        let mut rng = SmallRng::seed_from_u64(6);
        for digit in DtmfDigit::ALL {
            let samples = tone(digit, 0.1, 6000.0, 0.0, 0.0, &mut rng);
            assert_eq!(detect(&samples), digit.to_string(), "digit {digit}");
        }
    }

    #[test]
    fn detects_every_digit_with_noise_and_twist() {
        let mut rng = SmallRng::seed_from_u64(7);
        for digit in DtmfDigit::ALL {
            for twist in [-6.0, -4.0, 4.0, 6.0] {
                // Noise peak 800 against tones of 4000: about 20 dB SNR.
                let samples = tone(digit, 0.08, 4000.0, twist, 800.0, &mut rng);
                assert_eq!(
                    detect(&samples),
                    digit.to_string(),
                    "digit {digit} twist {twist} dB"
                );
            }
        }
    }

    #[test]
    fn detects_frequency_deviation_within_q24_tolerance() {
        // ±1.5 % (Q.24) on both tones.
        for factor in [0.985f32, 1.015] {
            let (low, high) = DtmfDigit::from_char('8').unwrap().frequencies();
            let samples: Vec<i16> = (0..800)
                .map(|n| {
                    let t = n as f32 / RATE;
                    (5000.0
                        * ((2.0 * std::f32::consts::PI * low * factor * t).sin()
                            + (2.0 * std::f32::consts::PI * high * factor * t).sin()))
                        as i16
                })
                .collect();
            assert_eq!(detect(&samples), "8", "factor {factor}");
        }
    }

    #[test]
    fn a_held_key_counts_once_and_a_repeat_after_a_gap_counts_again() {
        let mut rng = SmallRng::seed_from_u64(8);
        let five = DtmfDigit::from_char('5').unwrap();
        let mut samples = tone(five, 1.0, 5000.0, 0.0, 300.0, &mut rng);
        samples.extend(silence(0.06));
        samples.extend(tone(five, 0.1, 5000.0, 0.0, 300.0, &mut rng));
        samples.extend(tone(
            DtmfDigit::from_char('9').unwrap(),
            0.1,
            5000.0,
            0.0,
            300.0,
            &mut rng,
        ));
        assert_eq!(detect(&samples), "559");
    }

    #[test]
    fn a_tone_shorter_than_the_minimum_is_ignored() {
        let mut rng = SmallRng::seed_from_u64(9);
        let mut samples = silence(0.01);
        samples.extend(tone(
            DtmfDigit::from_char('1').unwrap(),
            0.025,
            6000.0,
            0.0,
            0.0,
            &mut rng,
        ));
        samples.extend(silence(0.1));
        assert_eq!(detect(&samples), "");
    }

    #[test]
    fn excessive_twist_and_quiet_tones_are_rejected() {
        let mut rng = SmallRng::seed_from_u64(10);
        let two = DtmfDigit::from_char('2').unwrap();
        assert_eq!(detect(&tone(two, 0.2, 2000.0, 12.0, 0.0, &mut rng)), "");
        assert_eq!(detect(&tone(two, 0.2, 60.0, 0.0, 0.0, &mut rng)), "");
    }

    #[test]
    fn speech_like_vowels_do_not_trigger() {
        // Formants of /a/, /i/, /u/, /e/, /o/ (Peterson & Barney averages),
        // several voice pitches; the female /a/ has F1/F2 near 852/1209 Hz.
        // (A synthetic steady vowel with formants *exactly* on two DTMF
        // frequencies rings at them after every glottal pulse and looks like
        // a digit to any 20 ms detector; real voices do not hold that.)
        let vowels: [[(f32, f32); 3]; 6] = [
            [(730.0, 90.0), (1090.0, 110.0), (2440.0, 170.0)],
            [(270.0, 60.0), (2290.0, 100.0), (3010.0, 120.0)],
            [(300.0, 60.0), (870.0, 90.0), (2240.0, 120.0)],
            [(530.0, 60.0), (1840.0, 100.0), (2480.0, 120.0)],
            [(570.0, 70.0), (840.0, 80.0), (2410.0, 150.0)],
            [(850.0, 90.0), (1220.0, 110.0), (2810.0, 170.0)],
        ];
        for formants in vowels {
            for f0 in [95.0, 120.0, 150.0, 232.5] {
                let samples = vowel(f0, formants, 1.0);
                assert_eq!(detect(&samples), "", "vowel {formants:?} at {f0} Hz");
            }
        }
    }

    #[test]
    fn noise_and_music_do_not_trigger() {
        let mut rng = SmallRng::seed_from_u64(11);
        let noise: Vec<i16> = (0..16_000).map(|_| rng.random_range(-8000..8000)).collect();
        assert_eq!(detect(&noise), "");
        let chords: [&[f32]; 5] = [
            &[261.63, 329.63, 392.0],          // C major
            &[440.0, 554.37, 659.25],          // A major
            &[349.23, 440.0, 523.25, 698.46],  // F major with F5 ≈ 697 Hz
            &[698.46, 880.0, 1046.5, 1244.51], // high F7 chord near row 1
            &[587.33, 739.99, 880.0],          // D major
        ];
        for notes in chords {
            assert_eq!(detect(&chord(notes, 1.0)), "", "chord {notes:?}");
        }
    }

    #[test]
    fn encoded_payloads_are_decoded_first() {
        let mut rng = SmallRng::seed_from_u64(12);
        for codec in Codec::ALL {
            let samples = tone(
                DtmfDigit::from_char('#').unwrap(),
                0.1,
                6000.0,
                0.0,
                0.0,
                &mut rng,
            );
            let encoded: Vec<u8> = samples.iter().map(|s| codec.encode(*s)).collect();
            let mut detector = InbandDtmfDetector::new();
            let digits: String = encoded
                .chunks(160)
                .filter_map(|frame| detector.process_encoded(codec, frame))
                .map(|d| d.as_char())
                .collect();
            assert_eq!(digits, "#", "{codec:?}");
        }
    }
}
