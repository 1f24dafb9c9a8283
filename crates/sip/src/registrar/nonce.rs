//! Nonces that need no table to check, expire after a lifetime, and a
//! bounded record of nonce counts so a request cannot be replayed
//! (RFC 7616 §3.3, §3.4, §5.3 and §5.5).
//!
//! A nonce is 32 bytes in lower-case hex (64 characters):
//!
//! ```text
//! issued (8 bytes, ms since the keeper started, big-endian)
//! || random (8 bytes)
//! || HMAC-SHA-256(key, issued || random || realm)[..16]
//! ```
//!
//! The key is drawn from the injected RNG when the keeper is built, so
//! nonces from an earlier run of the daemon read as forged (the client is
//! simply challenged again, without `stale`).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{CryptoRng, RngCore, SeedableRng};

use crate::digest::{constant_time_eq, hex, hmac_sha256, unhex};

const ISSUED: usize = 8;
const RANDOM: usize = 8;
const MAC: usize = 16;
const NONCE_BYTES: usize = ISSUED + RANDOM + MAC;

/// What a nonce presented by a client turns out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceStatus {
    /// Ours and younger than the lifetime. `issued` is its timestamp.
    Fresh {
        /// When it was issued, in ms since the keeper started.
        issued: u64,
    },
    /// Ours but too old: answer with a new challenge, `stale=true`.
    Stale {
        /// When it was issued, in ms since the keeper started.
        issued: u64,
    },
    /// Not ours (forged, damaged, from another realm or an earlier run).
    Invalid,
}

/// A nonce's record key: its issue time and random part (what the MAC
/// covers besides the realm), 16 bytes instead of 64 hex characters, and
/// ordered by issue time.
type RecordKey = (u64, u64);

/// The record key of a nonce of ours (`None` for anything shorter than
/// the issue time and random part in hex).
fn record_key(nonce: &str) -> Option<RecordKey> {
    let issued = nonce.get(..ISSUED * 2)?;
    let random = nonce.get(ISSUED * 2..(ISSUED + RANDOM) * 2)?;
    Some((
        u64::from_str_radix(issued, 16).ok()?,
        u64::from_str_radix(random, 16).ok()?,
    ))
}

/// Issues and checks nonces for one realm's challenges, and remembers the
/// highest nonce count (`nc`) seen with each nonce until it expires.
///
/// The record is bounded ([`NonceKeeper::new`]'s `capacity`). When it is
/// full the nonce issued first is forgotten, and from then on every nonce
/// issued no later than it, recorded or not, is refused as a replay
/// (`stale`). A client whose first use of its nonce comes after `capacity`
/// other nonces have been used meanwhile is therefore sent round once
/// more: size `capacity` to the peak rate of authenticated requests times
/// the longest a client may take to answer a challenge (32 s, RFC 3261
/// Timer F), so that this never happens to a client that is still waiting.
#[derive(Debug)]
pub struct NonceKeeper {
    key: [u8; 32],
    rng: StdRng,
    origin: Instant,
    lifetime: Duration,
    capacity: usize,
    /// The highest `nc` accepted per nonce.
    counts: HashMap<RecordKey, u32>,
    /// The same nonces by issue time, oldest first, to drop them when they
    /// expire or when the record is full.
    by_issue: BTreeSet<RecordKey>,
    /// Nonces issued at or before this time that have no record were
    /// evicted (or never used before a younger one was evicted): they are
    /// refused, so an eviction never reopens a replay.
    floor: Option<u64>,
}

impl NonceKeeper {
    /// A keeper whose key comes from `rng`, started at `now`. Nonces live
    /// `lifetime`; at most `capacity` nonce counts are remembered.
    pub fn new(
        rng: &mut impl CryptoRng,
        now: Instant,
        lifetime: Duration,
        capacity: usize,
    ) -> Self {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        NonceKeeper {
            key,
            rng: StdRng::from_rng(rng),
            origin: now,
            lifetime,
            capacity: capacity.max(1),
            counts: HashMap::new(),
            by_issue: BTreeSet::new(),
            floor: None,
        }
    }

    /// How long a nonce lives.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    fn millis(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }

    fn lifetime_ms(&self) -> u64 {
        u64::try_from(self.lifetime.as_millis()).unwrap_or(u64::MAX)
    }

    fn mac(&self, issued: &[u8], random: &[u8], realm: &str) -> [u8; 32] {
        hmac_sha256(&self.key, &[issued, random, realm.as_bytes()])
    }

    /// A new nonce for `realm`.
    pub fn issue(&mut self, now: Instant, realm: &str) -> String {
        let issued = self.millis(now).to_be_bytes();
        let mut random = [0u8; RANDOM];
        self.rng.fill_bytes(&mut random);
        let mac = self.mac(&issued, &random, realm);
        let mut nonce = [0u8; NONCE_BYTES];
        nonce[..ISSUED].copy_from_slice(&issued);
        nonce[ISSUED..ISSUED + RANDOM].copy_from_slice(&random);
        nonce[ISSUED + RANDOM..].copy_from_slice(&mac[..MAC]);
        hex(&nonce)
    }

    /// The `opaque` value for `realm`: constant for this keeper, so a
    /// client that returns something else did not get it from us.
    pub fn opaque(&self, realm: &str) -> String {
        hex(&hmac_sha256(&self.key, &[b"opaque", realm.as_bytes()])[..8])
    }

    /// Checks a nonce a client presented for `realm`.
    pub fn check(&self, now: Instant, realm: &str, nonce: &str) -> NonceStatus {
        if nonce.len() != NONCE_BYTES * 2 {
            return NonceStatus::Invalid;
        }
        let Some(bytes) = unhex(nonce) else {
            return NonceStatus::Invalid;
        };
        let (issued_bytes, rest) = bytes.split_at(ISSUED);
        let (random, mac) = rest.split_at(RANDOM);
        let expected = self.mac(issued_bytes, random, realm);
        if !constant_time_eq(&expected[..MAC], mac) {
            return NonceStatus::Invalid;
        }
        let mut word = [0u8; ISSUED];
        word.copy_from_slice(issued_bytes);
        let issued = u64::from_be_bytes(word);
        let now = self.millis(now);
        if issued > now {
            return NonceStatus::Invalid;
        }
        if now - issued >= self.lifetime_ms() {
            NonceStatus::Stale { issued }
        } else {
            NonceStatus::Fresh { issued }
        }
    }

    /// Records a use of a fresh nonce (issued at `issued`, as
    /// [`NonceKeeper::check`] said) with nonce count `nc`, and answers
    /// whether it is new: `nc` must be above every count seen with this
    /// nonce. A nonce used without `qop` (`nc` is `None`) is good once.
    ///
    /// Call it only once the credentials verified, so that a forged
    /// request cannot use up a client's counts.
    pub fn accept_count(
        &mut self,
        now: Instant,
        nonce: &str,
        issued: u64,
        nc: Option<u32>,
    ) -> bool {
        self.prune(now);
        let Some(key) = record_key(nonce) else {
            return false;
        };
        let count = nc.unwrap_or(u32::MAX);
        if let Some(highest) = self.counts.get_mut(&key) {
            if nc.is_none() || count <= *highest {
                return false;
            }
            *highest = count;
            return true;
        }
        if self.floor.is_some_and(|floor| issued <= floor) {
            return false;
        }
        self.counts.insert(key, count);
        self.by_issue.insert(key);
        while self.counts.len() > self.capacity {
            let Some(evicted @ (oldest, _)) = self.by_issue.pop_first() else {
                break;
            };
            self.counts.remove(&evicted);
            self.floor = Some(self.floor.map_or(oldest, |f| f.max(oldest)));
        }
        true
    }

    /// Forgets the counts of nonces that have expired.
    pub fn prune(&mut self, now: Instant) {
        let now = self.millis(now);
        let lifetime = self.lifetime_ms();
        while let Some(&(issued, _)) = self.by_issue.first() {
            if issued.saturating_add(lifetime) > now {
                break;
            }
            if let Some(key) = self.by_issue.pop_first() {
                self.counts.remove(&key);
            }
        }
    }

    /// How many nonce counts are remembered.
    pub fn records(&self) -> usize {
        self.counts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REALM: &str = "frontdesk";

    fn keeper(start: Instant, capacity: usize) -> NonceKeeper {
        let mut rng = StdRng::seed_from_u64(1);
        NonceKeeper::new(&mut rng, start, Duration::from_secs(300), capacity)
    }

    fn fresh(status: NonceStatus) -> u64 {
        match status {
            NonceStatus::Fresh { issued } => issued,
            other => panic!("expected a fresh nonce, got {other:?}"),
        }
    }

    #[test]
    fn fresh_then_stale_at_the_lifetime() {
        let start = Instant::now();
        let mut keeper = keeper(start, 16);
        let at = start + Duration::from_secs(10);
        let nonce = keeper.issue(at, REALM);
        assert_eq!(nonce.len(), 64);
        assert_eq!(
            keeper.check(at, REALM, &nonce),
            NonceStatus::Fresh { issued: 10_000 }
        );
        let almost = at + Duration::from_millis(299_999);
        assert!(matches!(
            keeper.check(almost, REALM, &nonce),
            NonceStatus::Fresh { .. }
        ));
        let later = at + Duration::from_secs(300);
        assert_eq!(
            keeper.check(later, REALM, &nonce),
            NonceStatus::Stale { issued: 10_000 }
        );
        assert_ne!(
            keeper.issue(at, REALM),
            nonce,
            "each nonce has its own random part"
        );
    }

    #[test]
    fn forged_damaged_and_foreign_nonces_are_invalid() {
        let start = Instant::now();
        let mut keeper = keeper(start, 16);
        let nonce = keeper.issue(start, REALM);
        let mut flipped = nonce.clone().into_bytes();
        flipped[40] = if flipped[40] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        // An attacker who moves the timestamp forward breaks the MAC.
        let mut younger = nonce.clone();
        younger.replace_range(0..16, "00000000000fffff");
        for bad in [
            flipped.as_str(),
            younger.as_str(),
            &nonce[..62],
            &format!("{}zz", &nonce[..62]),
            "",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        ] {
            assert_eq!(
                keeper.check(start, REALM, bad),
                NonceStatus::Invalid,
                "{bad}"
            );
        }
        assert_eq!(
            keeper.check(start, "other-realm", &nonce),
            NonceStatus::Invalid
        );
        let mut rng = StdRng::seed_from_u64(2);
        let restarted = NonceKeeper::new(&mut rng, start, Duration::from_secs(300), 16);
        assert_eq!(restarted.check(start, REALM, &nonce), NonceStatus::Invalid);
        assert_ne!(restarted.opaque(REALM), keeper.opaque(REALM));
        assert_eq!(keeper.opaque(REALM), keeper.opaque(REALM));
    }

    #[test]
    fn nonce_counts_must_grow() {
        let start = Instant::now();
        let mut keeper = keeper(start, 16);
        let nonce = keeper.issue(start, REALM);
        let issued = fresh(keeper.check(start, REALM, &nonce));
        assert!(keeper.accept_count(start, &nonce, issued, Some(1)));
        assert!(
            !keeper.accept_count(start, &nonce, issued, Some(1)),
            "replay"
        );
        assert!(
            keeper.accept_count(start, &nonce, issued, Some(3)),
            "gaps are fine"
        );
        assert!(
            !keeper.accept_count(start, &nonce, issued, Some(2)),
            "going back"
        );
        assert!(
            !keeper.accept_count(start, &nonce, issued, None),
            "qop dropped"
        );
        let legacy = keeper.issue(start, REALM);
        let legacy_issued = fresh(keeper.check(start, REALM, &legacy));
        assert!(keeper.accept_count(start, &legacy, legacy_issued, None));
        assert!(
            !keeper.accept_count(start, &legacy, legacy_issued, None),
            "once without qop"
        );
    }

    #[test]
    fn records_go_when_their_nonce_expires() {
        let start = Instant::now();
        let mut keeper = keeper(start, 16);
        let first = keeper.issue(start, REALM);
        let later = start + Duration::from_secs(200);
        let second = keeper.issue(later, REALM);
        assert!(keeper.accept_count(later, &first, 0, Some(1)));
        assert!(keeper.accept_count(later, &second, 200_000, Some(1)));
        assert_eq!(keeper.records(), 2);
        keeper.prune(start + Duration::from_secs(300));
        assert_eq!(keeper.records(), 1, "the first nonce expired at 300 s");
        keeper.prune(start + Duration::from_secs(500));
        assert_eq!(keeper.records(), 0);
    }

    #[test]
    fn a_full_record_evicts_the_oldest_and_refuses_it_afterwards() {
        let start = Instant::now();
        let mut keeper = keeper(start, 2);
        let nonces: Vec<(String, u64)> = (0..3u64)
            .map(|i| {
                let at = start + Duration::from_secs(i);
                let nonce = keeper.issue(at, REALM);
                let issued = fresh(keeper.check(at, REALM, &nonce));
                (nonce, issued)
            })
            .collect();
        let now = start + Duration::from_secs(5);
        for (nonce, issued) in &nonces {
            assert!(keeper.accept_count(now, nonce, *issued, Some(1)));
        }
        assert_eq!(keeper.records(), 2, "bounded");
        let (oldest, issued) = &nonces[0];
        assert!(
            !keeper.accept_count(now, oldest, *issued, Some(1)),
            "an evicted nonce cannot be replayed from count 1 again"
        );
        let (newest, issued) = &nonces[2];
        assert!(keeper.accept_count(now, newest, *issued, Some(2)));
    }

    #[test]
    fn a_nonce_answered_late_is_not_a_replay_under_a_high_registration_rate() {
        // 7,000 registrations a second, each answering its own challenge at
        // once, while one client takes 3 s to answer its own (its 401 was
        // lost and retransmitted): with the default capacity its first use
        // is accepted. (With 16,384 records, the default before, the other
        // clients' counts pushed it out and it was refused as a replay.)
        let start = Instant::now();
        let capacity = crate::registrar::RegistrarConfig::new(REALM).max_nonce_records;
        let mut keeper = keeper(start, capacity);
        let slow = keeper.issue(start, REALM);
        let slow_issued = fresh(keeper.check(start, REALM, &slow));
        let others = 21_000u32;
        for i in 0..others {
            let at = start + Duration::from_secs(3) * i / others;
            let nonce = keeper.issue(at, REALM);
            let issued = fresh(keeper.check(at, REALM, &nonce));
            assert!(keeper.accept_count(at, &nonce, issued, Some(1)));
        }
        let late = start + Duration::from_secs(3);
        assert!(
            keeper.accept_count(late, &slow, slow_issued, Some(1)),
            "a first use within Timer F is not a replay"
        );
        assert!(
            !keeper.accept_count(late, &slow, slow_issued, Some(1)),
            "its second use is"
        );
        assert_eq!(keeper.records(), others as usize + 1);
    }

    #[test]
    fn record_keys_are_the_issue_time_and_random_part() {
        let start = Instant::now();
        let mut keeper = keeper(start, 16);
        let nonce = keeper.issue(start + Duration::from_millis(0x1234), REALM);
        let (issued, random) = record_key(&nonce).unwrap();
        assert_eq!(issued, 0x1234);
        assert_eq!(format!("{issued:016x}{random:016x}"), nonce[..32]);
        assert_eq!(record_key("12345"), None);
        assert_eq!(record_key(&"z".repeat(64)), None);
        // Not ours at all: refused, never recorded.
        assert!(!keeper.accept_count(start, "é", 0, Some(1)));
        assert_eq!(keeper.records(), 0);
    }
}
