//! 8 kHz telephone audio to the 16 kHz the en-us model was trained on.
//!
//! A call's G.711 audio is 8 kHz (RFC 3551 §4.5.14); Debian ships no 8 kHz
//! en-us model. Doubling the rate is the simplest resampling there is:
//! put a zero between every two samples, then low-pass at the old Nyquist
//! frequency (4 kHz) with a windowed-sinc half-band filter, whose every
//! other tap is zero. The band above 4 kHz stays empty, as on any phone
//! line; BENCHMARKS.md ("Speech intent") measures what that costs against
//! feeding the 8 kHz audio to the decoder as it is.

/// Taps of the half-band filter (odd; 4·k+3 so that the centre is a 1).
const TAPS: usize = 31;

/// The filter: sinc(n/2) under a Blackman window, gain 2 (zero-stuffing
/// halves the level).
fn taps() -> [f32; TAPS] {
    let mut taps = [0.0f32; TAPS];
    let middle = (TAPS / 2) as f32;
    for (n, tap) in taps.iter_mut().enumerate() {
        let x = n as f32 - middle;
        let sinc = if x == 0.0 {
            1.0
        } else {
            let arg = std::f32::consts::PI * x / 2.0;
            arg.sin() / arg
        };
        let phase = 2.0 * std::f32::consts::PI * n as f32 / (TAPS - 1) as f32;
        let window = 0.42 - 0.5 * phase.cos() + 0.08 * (2.0 * phase).cos();
        *tap = sinc * window;
    }
    taps
}

/// `samples` at 8 kHz, returned at 16 kHz (twice as many).
pub fn upsample_8k_to_16k(samples: &[i16]) -> Vec<i16> {
    let taps = taps();
    let half = TAPS / 2;
    let stuffed_len = samples.len() * 2;
    // The zero-stuffed signal: odd positions are zero.
    let at = |i: isize| -> f32 {
        if i < 0 || i as usize >= stuffed_len || i % 2 != 0 {
            0.0
        } else {
            f32::from(samples[i as usize / 2])
        }
    };
    let mut out = Vec::with_capacity(stuffed_len);
    for i in 0..stuffed_len as isize {
        let mut sum = 0.0f32;
        for (k, tap) in taps.iter().enumerate() {
            if *tap != 0.0 {
                sum += tap * at(i + half as isize - k as isize);
            }
        }
        out.push(sum.round().clamp(-32768.0, 32767.0) as i16);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_the_length_and_keeps_a_low_tone() {
        // 500 Hz at 8 kHz: 16 samples a period.
        let input: Vec<i16> = (0..800)
            .map(|n| {
                (10_000.0 * (2.0 * std::f32::consts::PI * 500.0 * n as f32 / 8000.0).sin()) as i16
            })
            .collect();
        let output = upsample_8k_to_16k(&input);
        assert_eq!(output.len(), 1600);
        // Away from the edges the tone keeps its level (±5 %) …
        let peak = output[100..1500]
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap();
        assert!((9_500..=10_500).contains(&peak), "{peak}");
        // … and the even samples are the input's (the filter's centre tap is 1).
        for n in 100..700 {
            assert!((i32::from(output[2 * n]) - i32::from(input[n])).abs() <= 2);
        }
    }

    #[test]
    fn empty_and_extremes() {
        assert!(upsample_8k_to_16k(&[]).is_empty());
        let loud = upsample_8k_to_16k(&[i16::MAX, i16::MIN, i16::MAX, i16::MIN]);
        assert_eq!(loud.len(), 8);
    }
}
