//! Each signature accepted once: the signatures of stored leads,
//! remembered until their timestamp leaves the tolerance. Sans-IO: every
//! call takes `now` (Unix seconds).
//!
//! Bounded memory: only signatures that verified are claimed, so an
//! attacker without the secret adds nothing; a claim is released when its
//! post is refused (a bad phone number, a full journal), so only stored
//! leads keep theirs; and the set holds at most `capacity` signatures.
//! When it is full of live ones a new claim is refused ([`Refused::Full`],
//! a 503): dropping a live signature to make room would let its replay
//! through. Each entry is 24 bytes (the expiry and the MAC's first 16
//! bytes, plenty to tell signatures apart).
//!
//! A restart: a signature accepted shortly before could be replayed after
//! it, within the tolerance. The lead's row keeps the signature it came
//! with (`signed_at`, `signature`), and the service seeds the cache from
//! the leads of the last two tolerances at start ([`ReplayCache::seed`]),
//! so nothing needs a file of its own and nothing older is kept.

use std::collections::BTreeSet;

/// The part of a MAC that is remembered.
type Key = [u8; 16];

/// Why a claim was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The signature was accepted before (a replay): 401.
    #[error("this signature was already used")]
    Replayed,
    /// The cache is full of live signatures: 503, try again later.
    #[error("too many signed leads at once")]
    Full,
}

/// The remembered signatures.
#[derive(Debug)]
pub struct ReplayCache {
    /// `(expiry in Unix seconds, MAC prefix)`, ordered so that the expired
    /// ones are at the front.
    live: BTreeSet<(i64, Key)>,
    tolerance: i64,
    capacity: usize,
}

impl ReplayCache {
    /// A cache for signatures valid `tolerance` seconds either side of
    /// their timestamp, holding at most `capacity`.
    pub fn new(tolerance: i64, capacity: usize) -> Self {
        ReplayCache {
            live: BTreeSet::new(),
            tolerance,
            capacity,
        }
    }

    /// Claims the signature `(timestamp, mac)` at `now`.
    pub fn claim(&mut self, timestamp: i64, mac: &[u8; 32], now: i64) -> Result<(), Refused> {
        self.forget_expired(now);
        let entry = self.entry(timestamp, mac);
        if self.live.contains(&entry) {
            return Err(Refused::Replayed);
        }
        if self.live.len() >= self.capacity {
            return Err(Refused::Full);
        }
        self.live.insert(entry);
        Ok(())
    }

    /// Gives a claim back: its post was refused, so it was not accepted.
    pub fn release(&mut self, timestamp: i64, mac: &[u8; 32]) {
        let entry = self.entry(timestamp, mac);
        self.live.remove(&entry);
    }

    /// Remembers signatures accepted before a restart (`(t, mac)`), those
    /// still live at `now`, within the capacity.
    pub fn seed(&mut self, signatures: impl IntoIterator<Item = (i64, [u8; 32])>, now: i64) {
        for (timestamp, mac) in signatures {
            let entry = self.entry(timestamp, &mac);
            if entry.0 >= now && self.live.len() < self.capacity {
                self.live.insert(entry);
            }
        }
    }

    /// Signatures remembered now.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// A signature's entry: when it expires, and its MAC's prefix.
    fn entry(&self, timestamp: i64, mac: &[u8; 32]) -> (i64, Key) {
        let mut key = [0u8; 16];
        key.copy_from_slice(&mac[..16]);
        (timestamp.saturating_add(self.tolerance), key)
    }

    /// Drops the signatures whose timestamp is more than the tolerance
    /// before `now`: a replay of them is refused as expired anyway.
    fn forget_expired(&mut self, now: i64) {
        while let Some(first) = self.live.first() {
            if first.0 >= now {
                break;
            }
            self.live.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u8) -> [u8; 32] {
        [n; 32]
    }

    #[test]
    fn a_signature_is_accepted_once_while_it_is_valid() {
        let mut cache = ReplayCache::new(300, 10);
        assert_eq!(cache.claim(1_000, &mac(1), 1_000), Ok(()));
        assert_eq!(cache.claim(1_000, &mac(1), 1_200), Err(Refused::Replayed));
        assert_eq!(cache.claim(1_000, &mac(1), 1_300), Err(Refused::Replayed));
        // Past the tolerance it is forgotten (and refused as expired by
        // the signature check before it ever gets here).
        assert_eq!(cache.claim(2_000, &mac(2), 1_301), Ok(()));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_released_claim_may_be_made_again_without_growing() {
        let mut cache = ReplayCache::new(300, 10);
        for _ in 0..100 {
            assert_eq!(cache.claim(1_000, &mac(1), 1_000), Ok(()));
            cache.release(1_000, &mac(1));
        }
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn full_of_live_signatures_it_refuses_rather_than_forgets() {
        let mut cache = ReplayCache::new(300, 3);
        for n in 0..3 {
            cache.claim(1_000, &mac(n), 1_000).unwrap();
        }
        assert_eq!(cache.claim(1_000, &mac(9), 1_000), Err(Refused::Full));
        assert_eq!(cache.claim(1_000, &mac(0), 1_000), Err(Refused::Replayed));
        // Once they expire there is room again.
        assert_eq!(cache.claim(1_400, &mac(9), 1_301), Ok(()));
    }

    #[test]
    fn a_restart_remembers_what_is_still_live() {
        let mut cache = ReplayCache::new(300, 10);
        cache.seed([(1_000, mac(1)), (500, mac(2))], 1_100);
        assert_eq!(cache.len(), 1, "the one from t=500 expired at 800");
        assert_eq!(cache.claim(1_000, &mac(1), 1_100), Err(Refused::Replayed));
    }
}
