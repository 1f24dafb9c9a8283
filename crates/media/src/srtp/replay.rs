//! The replay list of RFC 3711 §3.3.2 as a sliding window over packet
//! indices: 128 packets (the RFC asks for at least 64).

/// Indices already received, relative to the highest one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    highest: Option<u64>,
    /// Bit `n` set: index `highest - n` was received.
    seen: u128,
}

/// Why an index was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayVerdict {
    /// Never seen, inside or ahead of the window.
    Fresh,
    /// Already received.
    Replayed,
    /// Older than the window: cannot tell, so refused.
    TooOld,
}

impl ReplayWindow {
    /// Packets the window remembers.
    pub const SIZE: u64 = 128;

    /// Whether `index` may be accepted (checked before authentication; the
    /// window moves only on [`ReplayWindow::accept`], after it).
    pub fn check(&self, index: u64) -> ReplayVerdict {
        let Some(highest) = self.highest else {
            return ReplayVerdict::Fresh;
        };
        if index > highest {
            return ReplayVerdict::Fresh;
        }
        let age = highest - index;
        if age >= Self::SIZE {
            ReplayVerdict::TooOld
        } else if self.seen & (1u128 << age) != 0 {
            ReplayVerdict::Replayed
        } else {
            ReplayVerdict::Fresh
        }
    }

    /// Records an authenticated index.
    pub fn accept(&mut self, index: u64) {
        match self.highest {
            Some(highest) if index <= highest => {
                let age = highest - index;
                if age < Self::SIZE {
                    self.seen |= 1u128 << age;
                }
            }
            Some(highest) => {
                let shift = index - highest;
                self.seen = if shift >= Self::SIZE {
                    0
                } else {
                    self.seen << shift
                };
                self.seen |= 1;
                self.highest = Some(index);
            }
            None => {
                self.seen = 1;
                self.highest = Some(index);
            }
        }
    }

    /// The highest index accepted so far.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_refuses_repeats_and_the_too_old() {
        let mut window = ReplayWindow::default();
        assert_eq!(window.check(1000), ReplayVerdict::Fresh);
        window.accept(1000);
        assert_eq!(window.check(1000), ReplayVerdict::Replayed);
        assert_eq!(window.check(999), ReplayVerdict::Fresh);
        window.accept(998);
        assert_eq!(window.check(998), ReplayVerdict::Replayed);
        assert_eq!(window.check(999), ReplayVerdict::Fresh);
        assert_eq!(window.check(1000 - 127), ReplayVerdict::Fresh);
        assert_eq!(window.check(1000 - 128), ReplayVerdict::TooOld);
        window.accept(1010);
        assert_eq!(window.check(1000), ReplayVerdict::Replayed);
        assert_eq!(window.check(998), ReplayVerdict::Replayed);
        assert_eq!(window.check(1005), ReplayVerdict::Fresh);
        // A jump beyond the window forgets everything older.
        window.accept(1010 + 500);
        assert_eq!(window.check(1010), ReplayVerdict::TooOld);
        assert_eq!(window.check(1509), ReplayVerdict::Fresh);
        assert_eq!(window.highest(), Some(1510));
    }
}
