//! The SRTP and SRTCP cryptographic contexts of one direction (RFC 3711
//! §3.2): session keys, rollover counters, replay lists.

use super::keys::{CryptoSuite, MasterKey, Mki, SessionKeys};
use super::replay::{ReplayVerdict, ReplayWindow};
use crate::error::SrtpError;

/// Octets of the fixed RTP header (RFC 3550 §5.1).
const RTP_HEADER_LEN: usize = 12;
/// Octets of the RTCP header plus the sender's SSRC, sent in the clear (RFC 3711 §3.4).
const SRTCP_CLEAR_LEN: usize = 8;
/// Octets of the E flag and SRTCP index.
const SRTCP_INDEX_LEN: usize = 4;
/// The SRTCP index is 31 bits.
const SRTCP_INDEX_MASK: u32 = 0x7FFF_FFFF;
/// RFC 3711 §9.2: at most 2^48 SRTP packets per master key.
const SRTP_KEY_LIFETIME: u64 = 1 << 48;
/// Streams (SSRCs) a context tracks at once: a peer's current stream and
/// the one it replaced, so late packets of the old one still authenticate.
const STREAMS: usize = 2;

/// Counters of one context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SrtpStats {
    /// Packets protected or unprotected.
    pub packets: u64,
    /// Packets whose authentication tag (or MKI) did not match: dropped.
    pub auth_failures: u64,
    /// Packets already received, or older than the replay window: dropped.
    pub replayed: u64,
    /// Packets too short or not RTP/RTCP: dropped.
    pub malformed: u64,
    /// Packets after the key's lifetime: dropped.
    pub key_expired: u64,
}

impl SrtpStats {
    fn count(&mut self, error: SrtpError) -> SrtpError {
        match error {
            SrtpError::AuthenticationFailed | SrtpError::MkiMismatch => self.auth_failures += 1,
            SrtpError::Replayed | SrtpError::TooOld => self.replayed += 1,
            SrtpError::Malformed(_) | SrtpError::BufferTooSmall => self.malformed += 1,
            SrtpError::KeyExpired => self.key_expired += 1,
        }
        error
    }
}

/// The packet index state of one SSRC (RFC 3711 §3.3.1).
#[derive(Clone, Copy, Debug)]
struct StreamState {
    ssrc: u32,
    roc: u32,
    highest_sequence: u16,
    replay: ReplayWindow,
    last_used: u64,
}

/// The index states of the streams a context has seen, in a fixed array.
#[derive(Clone, Copy, Debug, Default)]
struct Streams {
    slots: [Option<StreamState>; STREAMS],
    clock: u64,
}

impl Streams {
    fn find(&self, ssrc: u32) -> Option<&StreamState> {
        self.slots.iter().flatten().find(|state| state.ssrc == ssrc)
    }

    /// The estimated ROC and index of a sequence number (Appendix A); a new
    /// SSRC starts at ROC 0. `None` when the packet would precede ROC 0.
    fn estimate(&self, ssrc: u32, sequence: u16) -> Option<(u32, u64)> {
        let Some(state) = self.find(ssrc) else {
            return Some((0, u64::from(sequence)));
        };
        let (roc, highest) = (state.roc, state.highest_sequence);
        let guessed = if highest < 0x8000 {
            if sequence > highest && sequence - highest > 0x8000 {
                roc.checked_sub(1)?
            } else {
                roc
            }
        } else if sequence < highest - 0x8000 {
            roc.wrapping_add(1)
        } else {
            roc
        };
        Some((guessed, (u64::from(guessed) << 16) | u64::from(sequence)))
    }

    /// Records an authenticated (or sent) packet.
    fn update(&mut self, ssrc: u32, roc: u32, sequence: u16, index: u64) {
        self.clock += 1;
        let clock = self.clock;
        let position = self
            .slots
            .iter()
            .position(|slot| slot.is_some_and(|state| state.ssrc == ssrc));
        let slot = match position {
            Some(position) => &mut self.slots[position],
            None => {
                let oldest = (0..STREAMS)
                    .min_by_key(|&n| self.slots[n].map_or(0, |state| state.last_used))
                    .unwrap_or(0);
                self.slots[oldest] = Some(StreamState {
                    ssrc,
                    roc,
                    highest_sequence: sequence,
                    replay: ReplayWindow::default(),
                    last_used: clock,
                });
                &mut self.slots[oldest]
            }
        };
        if let Some(state) = slot {
            if state.replay.highest().is_none_or(|highest| index > highest) {
                state.roc = roc;
                state.highest_sequence = sequence;
            }
            state.replay.accept(index);
            state.last_used = clock;
        }
    }
}

/// The length of an RTP header with its CSRCs and extension (RFC 3550
/// §5.1, §5.3.1): the part SRTP leaves in the clear.
fn rtp_header_len(packet: &[u8]) -> Result<usize, SrtpError> {
    if packet.len() < RTP_HEADER_LEN {
        return Err(SrtpError::Malformed("shorter than an RTP header"));
    }
    if packet[0] >> 6 != 2 {
        return Err(SrtpError::Malformed("not RTP version 2"));
    }
    let mut len = RTP_HEADER_LEN + 4 * usize::from(packet[0] & 0x0F);
    if packet[0] & 0x10 != 0 {
        let extension = packet
            .get(len..len + 4)
            .ok_or(SrtpError::Malformed("header extension truncated"))?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([extension[2], extension[3]]));
    }
    if len > packet.len() {
        return Err(SrtpError::Malformed("header truncated"));
    }
    Ok(len)
}

fn sequence_and_ssrc(packet: &[u8]) -> (u16, u32) {
    (
        u16::from_be_bytes([packet[2], packet[3]]),
        u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
    )
}

/// Protects the RTP packets we send on one leg (RFC 3711 §3.3).
#[derive(Clone, Debug)]
pub struct SrtpSender {
    suite: CryptoSuite,
    keys: SessionKeys,
    streams: Streams,
    stats: SrtpStats,
}

impl SrtpSender {
    /// A sender with our master key.
    pub fn new(suite: CryptoSuite, master: &MasterKey) -> SrtpSender {
        SrtpSender {
            suite,
            keys: SessionKeys::srtp(master),
            streams: Streams::default(),
            stats: SrtpStats::default(),
        }
    }

    /// Changes the tag length (a re-INVITE that picked the other suite
    /// with the same key): the packet index goes on, so no keystream is
    /// used twice.
    pub fn set_suite(&mut self, suite: CryptoSuite) {
        self.suite = suite;
    }

    /// Bytes a protected packet needs beyond the RTP packet.
    pub fn overhead(&self) -> usize {
        self.suite.srtp_tag_len()
    }

    /// Encrypts the RTP packet `buffer[..len]` in place and appends the
    /// authentication tag; returns the SRTP packet's length. The rollover
    /// counter follows the sequence numbers (a reordered packet keeps the
    /// index it had).
    pub fn protect(&mut self, buffer: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let tag_len = self.suite.srtp_tag_len();
        let packet = buffer.get(..len).ok_or(SrtpError::BufferTooSmall)?;
        let header_len = rtp_header_len(packet).map_err(|error| self.stats.count(error))?;
        if buffer.len() < len + tag_len {
            return Err(self.stats.count(SrtpError::BufferTooSmall));
        }
        let (sequence, ssrc) = sequence_and_ssrc(buffer);
        let (roc, index) = self
            .streams
            .estimate(ssrc, sequence)
            .ok_or(SrtpError::TooOld)
            .map_err(|error| self.stats.count(error))?;
        if index >= SRTP_KEY_LIFETIME {
            return Err(self.stats.count(SrtpError::KeyExpired));
        }
        self.keys
            .apply_keystream(ssrc, index, &mut buffer[header_len..len]);
        let tag = self.keys.tag(&[&buffer[..len], &roc.to_be_bytes()]);
        buffer[len..len + tag_len].copy_from_slice(&tag[..tag_len]);
        self.streams.update(ssrc, roc, sequence, index);
        self.stats.packets += 1;
        Ok(len + tag_len)
    }

    /// Counters so far.
    pub fn stats(&self) -> SrtpStats {
        self.stats
    }
}

/// Checks and decrypts the SRTP packets a peer sends (RFC 3711 §3.3):
/// replay list first, then the tag, then decryption; nothing moves until a
/// packet has authenticated.
#[derive(Clone, Debug)]
pub struct SrtpReceiver {
    suite: CryptoSuite,
    keys: SessionKeys,
    mki: Option<Mki>,
    lifetime: u64,
    streams: Streams,
    stats: SrtpStats,
}

impl SrtpReceiver {
    /// A receiver with the peer's master key.
    pub fn new(suite: CryptoSuite, master: &MasterKey) -> SrtpReceiver {
        SrtpReceiver {
            suite,
            keys: SessionKeys::srtp(master),
            mki: None,
            lifetime: SRTP_KEY_LIFETIME,
            streams: Streams::default(),
            stats: SrtpStats::default(),
        }
    }

    /// The peer sends this MKI in each packet (RFC 4568 `|MKI:v:len`).
    pub fn with_mki(mut self, mki: Option<Mki>) -> SrtpReceiver {
        self.mki = mki;
        self
    }

    /// The peer's key is good for this many packets (RFC 4568 lifetime).
    pub fn with_lifetime(mut self, packets: Option<u64>) -> SrtpReceiver {
        self.lifetime = packets.unwrap_or(SRTP_KEY_LIFETIME).min(SRTP_KEY_LIFETIME);
        self
    }

    /// Authenticates and decrypts `packet` into `out`; returns the RTP
    /// packet's length. On any error nothing is written that counts and the
    /// context does not move.
    pub fn unprotect(&mut self, packet: &[u8], out: &mut [u8]) -> Result<usize, SrtpError> {
        let result = self.unprotect_inner(packet, out);
        result.map_err(|error| self.stats.count(error))
    }

    fn unprotect_inner(&mut self, packet: &[u8], out: &mut [u8]) -> Result<usize, SrtpError> {
        let (header_len, len, roc, index, sequence, ssrc) = self.check(packet)?;
        let plain = out.get_mut(..len).ok_or(SrtpError::BufferTooSmall)?;
        plain.copy_from_slice(&packet[..len]);
        self.keys
            .apply_keystream(ssrc, index, &mut plain[header_len..]);
        self.streams.update(ssrc, roc, sequence, index);
        self.stats.packets += 1;
        Ok(len)
    }

    /// Counters so far.
    pub fn stats(&self) -> SrtpStats {
        self.stats
    }

    /// Header length, RTP length, ROC, index, sequence number and SSRC of
    /// an authentic, fresh packet.
    #[allow(clippy::type_complexity)]
    fn check(&self, packet: &[u8]) -> Result<(usize, usize, u32, u64, u16, u32), SrtpError> {
        let header_len = rtp_header_len(packet)?;
        let tag_len = self.suite.srtp_tag_len();
        let mki_len = self.mki.map_or(0, |mki| usize::from(mki.len));
        let Some(len) = packet.len().checked_sub(tag_len + mki_len) else {
            return Err(SrtpError::Malformed("shorter than its trailer"));
        };
        if len < header_len {
            return Err(SrtpError::Malformed("shorter than its trailer"));
        }
        let (sequence, ssrc) = sequence_and_ssrc(packet);
        let (roc, index) = self
            .streams
            .estimate(ssrc, sequence)
            .ok_or(SrtpError::TooOld)?;
        if let Some(state) = self.streams.find(ssrc) {
            match state.replay.check(index) {
                ReplayVerdict::Fresh => {}
                ReplayVerdict::Replayed => return Err(SrtpError::Replayed),
                ReplayVerdict::TooOld => return Err(SrtpError::TooOld),
            }
        }
        if let Some(mki) = self.mki
            && !mki.matches(&packet[len..len + mki_len])
        {
            return Err(SrtpError::MkiMismatch);
        }
        let tag = &packet[len + mki_len..];
        if !self.keys.verify(&[&packet[..len], &roc.to_be_bytes()], tag) {
            return Err(SrtpError::AuthenticationFailed);
        }
        if self.stats.packets >= self.lifetime {
            return Err(SrtpError::KeyExpired);
        }
        Ok((header_len, len, roc, index, sequence, ssrc))
    }
}

/// Protects the RTCP packets we send (RFC 3711 §3.4): everything after
/// the first header and SSRC is encrypted, then `E || SRTCP index` and an
/// 80-bit tag are appended.
#[derive(Clone, Debug)]
pub struct SrtcpSender {
    suite: CryptoSuite,
    keys: SessionKeys,
    next_index: u32,
    stats: SrtpStats,
}

impl SrtcpSender {
    /// A sender with our master key; the first SRTCP index is 0 (§3.4).
    pub fn new(suite: CryptoSuite, master: &MasterKey) -> SrtcpSender {
        SrtcpSender {
            suite,
            keys: SessionKeys::srtcp(master),
            next_index: 0,
            stats: SrtpStats::default(),
        }
    }

    /// Encrypts the compound RTCP packet `buffer[..len]` in place and
    /// appends `E || index` and the tag; returns the SRTCP length.
    pub fn protect(&mut self, buffer: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let tag_len = self.suite.srtcp_tag_len();
        if len < SRTCP_CLEAR_LEN || buffer.get(..len).is_none() {
            return Err(self
                .stats
                .count(SrtpError::Malformed("shorter than an RTCP header")));
        }
        if buffer[0] >> 6 != 2 {
            return Err(self.stats.count(SrtpError::Malformed("not RTCP version 2")));
        }
        if buffer.len() < len + SRTCP_INDEX_LEN + tag_len {
            return Err(self.stats.count(SrtpError::BufferTooSmall));
        }
        let ssrc = u32::from_be_bytes([buffer[4], buffer[5], buffer[6], buffer[7]]);
        let index = self.next_index;
        self.keys
            .apply_keystream(ssrc, u64::from(index), &mut buffer[SRTCP_CLEAR_LEN..len]);
        let e_and_index = (index | !SRTCP_INDEX_MASK).to_be_bytes();
        buffer[len..len + SRTCP_INDEX_LEN].copy_from_slice(&e_and_index);
        let authenticated = len + SRTCP_INDEX_LEN;
        let tag = self.keys.tag(&[&buffer[..authenticated]]);
        buffer[authenticated..authenticated + tag_len].copy_from_slice(&tag[..tag_len]);
        self.next_index = (index + 1) & SRTCP_INDEX_MASK;
        self.stats.packets += 1;
        Ok(authenticated + tag_len)
    }

    /// Counters so far.
    pub fn stats(&self) -> SrtpStats {
        self.stats
    }
}

/// Checks and decrypts the SRTCP packets a peer sends (RFC 3711 §3.4).
#[derive(Clone, Debug)]
pub struct SrtcpReceiver {
    suite: CryptoSuite,
    keys: SessionKeys,
    mki: Option<Mki>,
    ssrc: Option<u32>,
    replay: ReplayWindow,
    stats: SrtpStats,
}

impl SrtcpReceiver {
    /// A receiver with the peer's master key.
    pub fn new(suite: CryptoSuite, master: &MasterKey) -> SrtcpReceiver {
        SrtcpReceiver {
            suite,
            keys: SessionKeys::srtcp(master),
            mki: None,
            ssrc: None,
            replay: ReplayWindow::default(),
            stats: SrtpStats::default(),
        }
    }

    /// The peer sends this MKI in each packet.
    pub fn with_mki(mut self, mki: Option<Mki>) -> SrtcpReceiver {
        self.mki = mki;
        self
    }

    /// Authenticates and (when the E flag says so) decrypts `packet` into
    /// `out`; returns the RTCP packet's length.
    pub fn unprotect(&mut self, packet: &[u8], out: &mut [u8]) -> Result<usize, SrtpError> {
        let result = self.unprotect_inner(packet, out);
        result.map_err(|error| self.stats.count(error))
    }

    fn unprotect_inner(&mut self, packet: &[u8], out: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.srtcp_tag_len();
        let mki_len = self.mki.map_or(0, |mki| usize::from(mki.len));
        let trailer = SRTCP_INDEX_LEN + mki_len + tag_len;
        if packet.len() < SRTCP_CLEAR_LEN + trailer {
            return Err(SrtpError::Malformed("shorter than an SRTCP packet"));
        }
        if packet[0] >> 6 != 2 {
            return Err(SrtpError::Malformed("not RTCP version 2"));
        }
        let len = packet.len() - trailer;
        let authenticated = len + SRTCP_INDEX_LEN;
        let word = &packet[len..authenticated];
        let e_and_index = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        let encrypted = e_and_index & !SRTCP_INDEX_MASK != 0;
        let index = u64::from(e_and_index & SRTCP_INDEX_MASK);
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let same_stream = self.ssrc == Some(ssrc);
        if same_stream {
            match self.replay.check(index) {
                ReplayVerdict::Fresh => {}
                ReplayVerdict::Replayed => return Err(SrtpError::Replayed),
                ReplayVerdict::TooOld => return Err(SrtpError::TooOld),
            }
        }
        if let Some(mki) = self.mki
            && !mki.matches(&packet[authenticated..authenticated + mki_len])
        {
            return Err(SrtpError::MkiMismatch);
        }
        let tag = &packet[authenticated + mki_len..];
        if !self.keys.verify(&[&packet[..authenticated]], tag) {
            return Err(SrtpError::AuthenticationFailed);
        }
        let plain = out.get_mut(..len).ok_or(SrtpError::BufferTooSmall)?;
        plain.copy_from_slice(&packet[..len]);
        if encrypted {
            self.keys
                .apply_keystream(ssrc, index, &mut plain[SRTCP_CLEAR_LEN..]);
        }
        if !same_stream {
            self.ssrc = Some(ssrc);
            self.replay = ReplayWindow::default();
        }
        self.replay.accept(index);
        self.stats.packets += 1;
        Ok(len)
    }

    /// Counters so far.
    pub fn stats(&self) -> SrtpStats {
        self.stats
    }
}
