//! Strict RTP: which source a leg's packets are accepted from, and how
//! much we send to a leg before its peer has shown itself.
//!
//! Every leg has a port of ours that anyone on the network can reach, and
//! an address from the SDP that anyone can write. Without rules, a stranger
//! who sprays packets at our port range is heard in a patient's call, or
//! takes a symmetric-RTP latch and hears the patient; and a forged INVITE
//! whose SDP names a third party turns us into a reflector. [`PeerGuard`]
//! closes both, in the spirit of Asterisk's `strictrtp` and rtpengine's
//! `strict-source`.
//!
//! # What is learned, when, and from what
//!
//! A leg starts *learning*. Its media peer is confirmed in one of two ways:
//!
//! 1. **By the signalled address.** The first valid packet whose source is
//!    exactly the SDP's address and port confirms that address at once: a
//!    phone reachable where its SDP says (a clinic's own network, a trunk)
//!    loses nothing.
//! 2. **By a run**, for phones behind NAT whose SDP names an address their
//!    packets do not come from: a source that sends
//!    [`StrictConfig::probation`] consecutive packets (each sequence number
//!    the previous one plus one) with one SSRC is elected. A lone stray, a
//!    packet a second from a blind spray, or a previous call's last packets
//!    never make such a run, so they never win. Up to [`CANDIDATES`]
//!    sources are followed at once, so a spray cannot push the real phone's
//!    run out of the table.
//!
//! While learning, every packet is dropped (the phone's first few packets
//! are the price of a NAT), and we send to the signalled address only, and
//! at most [`StrictConfig::unconfirmed_budget`] packets in all: enough to
//! open a NAT pinhole for a phone that waits to hear before it speaks, too
//! little to make a forged SDP an amplifier.
//!
//! Once confirmed, packets from any other source are dropped and counted
//! ([`GuardStats::foreign`]), and everything we send to the leg goes to the
//! confirmed peer. A phone that moves mid-call (new Wi-Fi, a NAT rebinding)
//! is followed by a *re-latch*: a new source whose packets carry the
//! confirmed stream's SSRC and continue its sequence numbers, for
//! [`StrictConfig::probation`] consecutive packets. A stranger never saw
//! that stream (the SSRC is not in any SDP, and our packets go to the
//! peer only), so cannot trigger one. A new SDP (re-INVITE) with a new
//! address starts learning again, with a fresh budget.
//!
//! On an SRTP leg the guard sees only packets that passed authentication
//! and the replay check, so a forged or replayed packet never moves it.

use std::net::SocketAddr;

/// Sources followed at once while learning (or re-latching).
pub const CANDIDATES: usize = 4;

/// A sequence jump beyond this is not a continuation of the confirmed
/// stream (RFC 3550 Appendix A.1's MAX_DROPOUT).
const MAX_DROPOUT: u16 = 3000;

/// The thresholds of strict RTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrictConfig {
    /// Consecutive in-sequence packets, one SSRC, one source, that confirm
    /// a source other than the signalled address (learning) or move a
    /// confirmed peer (re-latch). At least 1.
    pub probation: u16,
    /// Packets we send to a leg whose peer is not confirmed yet.
    pub unconfirmed_budget: u32,
}

impl StrictConfig {
    /// Asterisk's `probation` default.
    pub const DEFAULT_PROBATION: u16 = 4;
    /// 200 ms of 20 ms packets.
    pub const DEFAULT_UNCONFIRMED_BUDGET: u32 = 10;
}

impl Default for StrictConfig {
    fn default() -> StrictConfig {
        StrictConfig {
            probation: StrictConfig::DEFAULT_PROBATION,
            unconfirmed_budget: StrictConfig::DEFAULT_UNCONFIRMED_BUDGET,
        }
    }
}

/// What to do with a received packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// From the confirmed peer: use it.
    Accept,
    /// This packet confirmed its source as the peer (first confirmation or
    /// re-latch): use it, and send there from now on.
    Confirmed(SocketAddr),
    /// Learning, or a possible re-latch in progress: not used.
    Learning,
    /// From a source other than the confirmed peer: not used.
    Foreign,
}

impl Admission {
    /// Whether the packet may be used (digits, relay, activity).
    pub fn accepted(self) -> bool {
        matches!(self, Admission::Accept | Admission::Confirmed(_))
    }
}

/// Counters of one leg's guard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardStats {
    /// Packets dropped while learning or re-latching.
    pub learning: u64,
    /// Packets dropped because they came from a source other than the
    /// confirmed peer.
    pub foreign: u64,
    /// Packets not sent because the unconfirmed budget was spent.
    pub withheld: u64,
    /// Times a confirmed peer moved to a new source.
    pub relatches: u32,
}

/// A source making a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Candidate {
    source: SocketAddr,
    ssrc: u32,
    last_sequence: u16,
    run: u16,
    /// Ordinal of its latest packet, to evict the stalest.
    seen: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Learning,
    Confirmed {
        peer: SocketAddr,
        ssrc: u32,
        last_sequence: u16,
    },
}

/// The strict-RTP state of one leg. See the module docs.
#[derive(Clone, Debug)]
pub struct PeerGuard {
    config: StrictConfig,
    signalled: Option<SocketAddr>,
    state: State,
    candidates: [Option<Candidate>; CANDIDATES],
    packets: u64,
    budget_left: u32,
    stats: GuardStats,
}

impl PeerGuard {
    /// A guard learning the peer of a leg whose SDP names `signalled`.
    pub fn new(config: StrictConfig, signalled: Option<SocketAddr>) -> PeerGuard {
        PeerGuard {
            config,
            signalled,
            state: State::Learning,
            candidates: [None; CANDIDATES],
            packets: 0,
            budget_left: config.unconfirmed_budget,
            stats: GuardStats::default(),
        }
    }

    /// A new SDP names `signalled`: when it differs from the current one,
    /// learning starts over with a fresh budget.
    pub fn resignal(&mut self, signalled: Option<SocketAddr>) {
        if signalled != self.signalled {
            let stats = self.stats;
            *self = PeerGuard::new(self.config, signalled);
            self.stats = stats;
        }
    }

    /// Decides about a valid packet (after SRTP authentication, when the
    /// leg has SRTP) from `source` with `ssrc` and `sequence`.
    pub fn admit(&mut self, source: SocketAddr, ssrc: u32, sequence: u16) -> Admission {
        self.packets += 1;
        match self.state {
            State::Confirmed {
                peer,
                ssrc: confirmed_ssrc,
                last_sequence,
            } => {
                if source == peer {
                    self.state = State::Confirmed {
                        peer,
                        ssrc,
                        last_sequence: newest(last_sequence, sequence, ssrc == confirmed_ssrc),
                    };
                    return Admission::Accept;
                }
                let continues = ssrc == confirmed_ssrc
                    && (1..=MAX_DROPOUT).contains(&sequence.wrapping_sub(last_sequence));
                if !continues {
                    self.stats.foreign += 1;
                    return Admission::Foreign;
                }
                if self.run(source, ssrc, sequence) >= self.config.probation {
                    self.confirm(source, ssrc, sequence);
                    self.stats.relatches += 1;
                    return Admission::Confirmed(source);
                }
                self.stats.learning += 1;
                Admission::Learning
            }
            State::Learning => {
                if Some(source) == self.signalled
                    || self.run(source, ssrc, sequence) >= self.config.probation
                {
                    self.confirm(source, ssrc, sequence);
                    return Admission::Confirmed(source);
                }
                self.stats.learning += 1;
                Admission::Learning
            }
        }
    }

    /// Where to send the next packet to this leg, if anywhere: the
    /// confirmed peer; before that, the signalled address while the budget
    /// lasts (each call spends one packet of it).
    pub fn destination(&mut self) -> Option<SocketAddr> {
        match self.state {
            State::Confirmed { peer, .. } => Some(peer),
            State::Learning => {
                let signalled = self.signalled?;
                if self.budget_left == 0 {
                    self.stats.withheld += 1;
                    return None;
                }
                self.budget_left -= 1;
                Some(signalled)
            }
        }
    }

    /// The confirmed peer, if any.
    pub fn confirmed(&self) -> Option<SocketAddr> {
        match self.state {
            State::Confirmed { peer, .. } => Some(peer),
            State::Learning => None,
        }
    }

    /// The address in the SDP.
    pub fn signalled(&self) -> Option<SocketAddr> {
        self.signalled
    }

    /// Counters so far.
    pub fn stats(&self) -> GuardStats {
        self.stats
    }

    fn confirm(&mut self, peer: SocketAddr, ssrc: u32, sequence: u16) {
        self.state = State::Confirmed {
            peer,
            ssrc,
            last_sequence: sequence,
        };
        self.candidates = [None; CANDIDATES];
    }

    /// Records the packet in its source's run and returns the run's length.
    fn run(&mut self, source: SocketAddr, ssrc: u32, sequence: u16) -> u16 {
        let seen = self.packets;
        if let Some(candidate) = self
            .candidates
            .iter_mut()
            .flatten()
            .find(|candidate| candidate.source == source)
        {
            let in_sequence =
                candidate.ssrc == ssrc && sequence == candidate.last_sequence.wrapping_add(1);
            candidate.run = if in_sequence {
                candidate.run.saturating_add(1)
            } else {
                1
            };
            candidate.ssrc = ssrc;
            candidate.last_sequence = sequence;
            candidate.seen = seen;
            return candidate.run;
        }
        let fresh = Candidate {
            source,
            ssrc,
            last_sequence: sequence,
            run: 1,
            seen,
        };
        // An empty slot, else the source heard from longest ago.
        let slot = self
            .candidates
            .iter_mut()
            .min_by_key(|slot| slot.map_or(0, |candidate| candidate.seen + 1))
            .expect("CANDIDATES > 0");
        *slot = Some(fresh);
        1
    }
}

/// The confirmed stream's newest sequence number after `sequence`
/// (reordered packets do not move it back; a new SSRC starts over).
fn newest(last: u16, sequence: u16, same_ssrc: bool) -> u16 {
    if !same_ssrc || (sequence.wrapping_sub(last) as i16) > 0 {
        sequence
    } else {
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    const SIGNALLED: &str = "192.0.2.10:4000";
    const NAT: &str = "198.51.100.7:61000";
    const STRAY: &str = "203.0.113.66:20000";

    fn guard() -> PeerGuard {
        PeerGuard::new(StrictConfig::default(), Some(addr(SIGNALLED)))
    }

    #[test]
    fn the_signalled_address_is_confirmed_by_its_first_packet() {
        let mut guard = guard();
        assert_eq!(
            guard.admit(addr(SIGNALLED), 7, 100),
            Admission::Confirmed(addr(SIGNALLED))
        );
        assert_eq!(guard.admit(addr(SIGNALLED), 7, 101), Admission::Accept);
        assert_eq!(guard.destination(), Some(addr(SIGNALLED)));
        // A stranger is foreign from now on, whatever it sends.
        for sequence in 0..100 {
            assert_eq!(guard.admit(addr(STRAY), 99, sequence), Admission::Foreign);
        }
        assert_eq!(guard.stats().foreign, 100);
        assert_eq!(guard.confirmed(), Some(addr(SIGNALLED)));
    }

    #[test]
    fn a_nat_source_is_learned_from_a_run_and_a_stray_never_wins() {
        let mut guard = guard();
        // A blind spray: one packet now and then, from many sources.
        for n in 0..50u16 {
            let source = SocketAddr::new(addr(STRAY).ip(), 20_000 + n);
            assert_eq!(guard.admit(source, u32::from(n), n), Admission::Learning);
        }
        // The phone behind NAT: packets 1..3 are learning, the 4th confirms.
        for sequence in 500..503 {
            assert_eq!(guard.admit(addr(NAT), 42, sequence), Admission::Learning);
            // The spray goes on between them.
            assert_eq!(guard.admit(addr(STRAY), 1, sequence), Admission::Learning);
        }
        assert_eq!(
            guard.admit(addr(NAT), 42, 503),
            Admission::Confirmed(addr(NAT))
        );
        assert_eq!(guard.destination(), Some(addr(NAT)));
        assert_eq!(guard.admit(addr(STRAY), 1, 504), Admission::Foreign);
        assert_eq!(guard.admit(addr(NAT), 42, 504), Admission::Accept);
    }

    #[test]
    fn a_run_needs_one_ssrc_and_consecutive_numbers() {
        let mut guard = guard();
        // Gaps, or SSRC changes, start the run over.
        for (ssrc, sequence) in [
            (1, 10),
            (1, 11),
            (1, 13),
            (1, 14),
            (2, 15),
            (2, 16),
            (2, 17),
        ] {
            assert_eq!(guard.admit(addr(NAT), ssrc, sequence), Admission::Learning);
        }
        assert_eq!(
            guard.admit(addr(NAT), 2, 18),
            Admission::Confirmed(addr(NAT))
        );
    }

    #[test]
    fn probation_one_takes_the_first_packet() {
        let mut guard = PeerGuard::new(
            StrictConfig {
                probation: 1,
                unconfirmed_budget: 0,
            },
            None,
        );
        assert_eq!(
            guard.admit(addr(NAT), 1, 1),
            Admission::Confirmed(addr(NAT))
        );
    }

    #[test]
    fn a_spray_cannot_push_the_phone_out_of_the_candidates() {
        let mut guard = guard();
        for n in 0..3u16 {
            assert_eq!(guard.admit(addr(NAT), 42, n), Admission::Learning);
            // More strangers than slots between two of the phone's packets.
            for stranger in 0..(CANDIDATES as u16 - 1) {
                let source = SocketAddr::new(addr(STRAY).ip(), 30_000 + n * 10 + stranger);
                guard.admit(source, 5, n);
            }
        }
        // The phone's run is refreshed by each of its packets, so the
        // slot a new stranger takes is always another stranger's.
        assert_eq!(
            guard.admit(addr(NAT), 42, 3),
            Admission::Confirmed(addr(NAT))
        );
    }

    #[test]
    fn the_budget_limits_what_an_unconfirmed_leg_is_sent() {
        let mut guard = guard();
        let sent = (0..100).filter(|_| guard.destination().is_some()).count();
        assert_eq!(sent, StrictConfig::DEFAULT_UNCONFIRMED_BUDGET as usize);
        assert_eq!(guard.stats().withheld, 90);
        // Once the peer is confirmed, everything goes to it.
        guard.admit(addr(SIGNALLED), 1, 1);
        assert!((0..100).all(|_| guard.destination() == Some(addr(SIGNALLED))));
        // Nothing at all without an address to send to.
        let mut nowhere = PeerGuard::new(StrictConfig::default(), None);
        assert_eq!(nowhere.destination(), None);
    }

    #[test]
    fn a_phone_that_moves_and_continues_its_stream_is_followed() {
        let mut guard = guard();
        guard.admit(addr(SIGNALLED), 0xABCD, 1000);
        for sequence in 1001..1100 {
            assert_eq!(
                guard.admit(addr(SIGNALLED), 0xABCD, sequence),
                Admission::Accept
            );
        }
        // Some packets lost on the way, then the new address.
        for sequence in 1120..1123 {
            assert_eq!(
                guard.admit(addr(NAT), 0xABCD, sequence),
                Admission::Learning
            );
        }
        assert_eq!(guard.confirmed(), Some(addr(SIGNALLED)));
        assert_eq!(
            guard.admit(addr(NAT), 0xABCD, 1123),
            Admission::Confirmed(addr(NAT))
        );
        assert_eq!(guard.destination(), Some(addr(NAT)));
        assert_eq!(guard.stats().relatches, 1);
        // The old address is not the peer any more: its packets are not
        // used (it could only win the stream back with a run of its own).
        assert!(!guard.admit(addr(SIGNALLED), 0xABCD, 1124).accepted());
        assert_eq!(
            guard.admit(addr(SIGNALLED), 0x9999, 1125),
            Admission::Foreign
        );
    }

    #[test]
    fn a_stranger_cannot_relatch_without_the_stream() {
        let mut guard = guard();
        guard.admit(addr(SIGNALLED), 0xABCD, 1000);
        // Another SSRC, however long the run.
        for sequence in 1001..2000 {
            assert_eq!(
                guard.admit(addr(STRAY), 0x1111, sequence),
                Admission::Foreign
            );
        }
        // The right SSRC guessed, but numbers that do not continue the stream.
        for sequence in 20_000..20_100 {
            assert_eq!(
                guard.admit(addr(STRAY), 0xABCD, sequence),
                Admission::Foreign
            );
        }
        assert_eq!(guard.confirmed(), Some(addr(SIGNALLED)));
        assert_eq!(guard.stats().relatches, 0);
    }

    #[test]
    fn a_new_sdp_address_starts_learning_again_with_a_fresh_budget() {
        let mut guard = guard();
        while guard.destination().is_some() {}
        assert_eq!(guard.stats().withheld, 1);
        guard.admit(addr(SIGNALLED), 1, 1);
        // Same address: nothing changes.
        guard.resignal(Some(addr(SIGNALLED)));
        assert_eq!(guard.confirmed(), Some(addr(SIGNALLED)));
        // A new address: learning, budget back.
        let moved = addr("192.0.2.11:5000");
        guard.resignal(Some(moved));
        assert_eq!(guard.confirmed(), None);
        assert_eq!(guard.destination(), Some(moved));
        assert_eq!(guard.admit(addr(SIGNALLED), 1, 2), Admission::Learning);
        assert_eq!(guard.admit(moved, 9, 1), Admission::Confirmed(moved));
        assert_eq!(guard.stats().withheld, 1, "counters survive");
    }

    #[test]
    fn reordered_packets_do_not_move_the_confirmed_stream_back() {
        let mut guard = guard();
        guard.admit(addr(SIGNALLED), 5, 100);
        guard.admit(addr(SIGNALLED), 5, 102);
        guard.admit(addr(SIGNALLED), 5, 101);
        // 103 continues 102, so a relatch run may start right after it.
        for sequence in 103..106 {
            assert_eq!(guard.admit(addr(NAT), 5, sequence), Admission::Learning);
        }
        assert_eq!(
            guard.admit(addr(NAT), 5, 106),
            Admission::Confirmed(addr(NAT))
        );
    }
}
