//! What happens to each packet: lost, or delivered after a delay drawn at
//! random (a fixed part, jitter, and now and then an extra hold-back that
//! makes later packets overtake it). Seeded, so a run can be repeated.

use std::time::Duration;

/// How packets of one kind (signalling or media) are impaired.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Impairment {
    /// The share of packets lost, 0 to 1.
    pub loss: f64,
    /// Every packet's fixed delay.
    pub delay: Duration,
    /// A uniform random extra delay from 0 to this.
    pub jitter: Duration,
    /// The share of packets held back one jitter span (at least 20 ms)
    /// more, so that the next ones overtake them.
    pub reorder: f64,
}

impl Impairment {
    /// `None` when the packet is lost, else its delay.
    pub fn decide(&self, rng: &mut Rng) -> Option<Duration> {
        if self.loss > 0.0 && rng.unit() < self.loss {
            return None;
        }
        let mut delay = self.delay + self.jitter.mul_f64(rng.unit());
        if self.reorder > 0.0 && rng.unit() < self.reorder {
            delay += self.jitter.max(Duration::from_millis(20));
        }
        Some(delay)
    }
}

/// SplitMix64: small, fast and good enough for drawing losses.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_and_jitter_are_what_was_asked_and_repeatable() {
        let impairment = Impairment {
            loss: 0.05,
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(50),
            reorder: 0.0,
        };
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..100_000)
                .map(|_| impairment.decide(&mut rng))
                .collect::<Vec<_>>()
        };
        let run = draw(7);
        assert_eq!(run, draw(7), "the same seed, the same run");
        assert_ne!(run, draw(8));
        let lost = run.iter().filter(|d| d.is_none()).count();
        assert!((4_500..5_500).contains(&lost), "{lost} lost of 100,000");
        let delays: Vec<Duration> = run.into_iter().flatten().collect();
        assert!(
            delays
                .iter()
                .all(|d| (Duration::from_millis(10)..=Duration::from_millis(60)).contains(d))
        );
        let mean = delays.iter().sum::<Duration>() / delays.len() as u32;
        assert!(
            (Duration::from_millis(33)..Duration::from_millis(37)).contains(&mean),
            "{mean:?}"
        );
    }

    #[test]
    fn reordering_holds_some_back() {
        let impairment = Impairment {
            reorder: 0.1,
            ..Impairment::default()
        };
        let mut rng = Rng::new(1);
        let held = (0..10_000)
            .filter(|_| impairment.decide(&mut rng) == Some(Duration::from_millis(20)))
            .count();
        assert!((800..1_200).contains(&held), "{held}");
    }
}
