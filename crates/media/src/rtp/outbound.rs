//! The RTP stream we originate towards one peer: SSRC, sequence number and
//! timestamp (RFC 3550 §5.1), kept continuous whatever feeds it (prompts,
//! DTMF we generate, audio relayed from the other leg), so that the peer
//! sees one stream from one source for the whole call.

use std::time::{Duration, Instant};

use rand::RngCore;
use rtp_rs::{RtpPacketBuilder, Seq};

use crate::codec::{CLOCK_RATE, SAMPLES_PER_FRAME};
use crate::error::RtpError;
use crate::rtp::telephone_event::TelephoneEvent;

/// Length of the fixed RTP header we write (no CSRC, no extension).
pub const HEADER_LEN: usize = 12;

/// State of one originated RTP stream.
///
/// Timestamps follow the 8 kHz sampling clock (RFC 3550 §5.1): a packet of
/// N samples advances them by N, and after a pause the next talkspurt's
/// timestamp is advanced by the time that passed (in whole 20 ms frames),
/// while the sequence number just goes on by one. The first packet of each
/// talkspurt carries the marker bit (RFC 3551 §4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundStream {
    ssrc: u32,
    next_sequence: u16,
    next_timestamp: u32,
    marker_pending: bool,
    /// When the samples sent so far run out: the media time of `next_timestamp`.
    media_time: Option<Instant>,
    packets_sent: u64,
}

impl OutboundStream {
    /// A stream with a random SSRC, initial sequence number and timestamp
    /// (RFC 3550 §5.1 asks for random initial values).
    pub fn new<R: RngCore + ?Sized>(rng: &mut R) -> OutboundStream {
        OutboundStream::from_parts(rng.next_u32(), rng.next_u32() as u16, rng.next_u32())
    }

    /// A stream with given initial values (tests, benches).
    pub fn from_parts(ssrc: u32, first_sequence: u16, first_timestamp: u32) -> OutboundStream {
        OutboundStream {
            ssrc,
            next_sequence: first_sequence,
            next_timestamp: first_timestamp,
            marker_pending: true,
            media_time: None,
            packets_sent: 0,
        }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The sequence number of the next packet.
    pub fn next_sequence(&self) -> u16 {
        self.next_sequence
    }

    /// The timestamp of the next packet (before any gap adjustment).
    pub fn next_timestamp(&self) -> u32 {
        self.next_timestamp
    }

    /// Packets written so far.
    pub fn packets_sent(&self) -> u64 {
        self.packets_sent
    }

    /// Starts a talkspurt at media time `at`: the next packet carries the
    /// marker bit, and the timestamp skips the frames of silence since the
    /// last packet's samples ran out.
    pub fn begin_talkspurt(&mut self, at: Instant) {
        self.marker_pending = true;
        if let Some(media_time) = self.media_time {
            let gap = at.saturating_duration_since(media_time);
            let frames = gap.as_nanos() / crate::codec::FRAME_DURATION.as_nanos();
            let samples = (frames as u64).saturating_mul(SAMPLES_PER_FRAME as u64);
            self.next_timestamp = self.next_timestamp.wrapping_add(samples as u32);
            self.media_time = Some(media_time + samples_to_duration(samples));
        }
    }

    /// Writes one audio packet of `payload` (one byte per sample, G.711)
    /// sent at media time `at` into `out`; returns its length.
    pub fn write_audio(
        &mut self,
        at: Instant,
        payload_type: u8,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, RtpError> {
        let marker = self.marker_pending;
        let header = self.header(
            payload_type,
            marker,
            self.next_timestamp,
            out,
            payload.len(),
        )?;
        out[header..header + payload.len()].copy_from_slice(payload);
        self.advance(at, 1, payload.len() as u32);
        Ok(header + payload.len())
    }

    /// Writes one telephone-event packet into `out`. All packets of an
    /// event carry the event's start timestamp `event_timestamp`
    /// (RFC 4733 §2.3.1); call [`OutboundStream::end_event`] after the last.
    pub fn write_event(
        &mut self,
        payload_type: u8,
        event_timestamp: u32,
        event: TelephoneEvent,
        marker: bool,
        out: &mut [u8],
    ) -> Result<usize, RtpError> {
        let header = self.header(
            payload_type,
            marker,
            event_timestamp,
            out,
            TelephoneEvent::LEN,
        )?;
        out[header..header + TelephoneEvent::LEN].copy_from_slice(&event.to_bytes());
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.packets_sent += 1;
        Ok(header + TelephoneEvent::LEN)
    }

    /// Accounts for an event of `duration` samples that started at `start`
    /// (media time of the event's first packet).
    pub fn end_event(&mut self, start: Instant, duration: u16) {
        self.next_timestamp = self.next_timestamp.wrapping_add(u32::from(duration));
        self.media_time = Some(start + samples_to_duration(u64::from(duration)));
        self.marker_pending = true;
    }

    /// Writes the header of a relayed packet with explicit sequence number
    /// and timestamp (the relay's rebased values) and records them as sent;
    /// the caller writes `payload_len` bytes after the header, which stand
    /// for `samples` samples (0 for a telephone-event).
    #[allow(clippy::too_many_arguments)] // the fields of one RTP header
    pub(crate) fn write_relayed_header(
        &mut self,
        at: Instant,
        payload_type: u8,
        marker: bool,
        sequence: u16,
        timestamp: u32,
        payload_len: usize,
        samples: u32,
        out: &mut [u8],
    ) -> Result<usize, RtpError> {
        let saved = self.next_sequence;
        self.next_sequence = sequence;
        let header = self.header(payload_type, marker, timestamp, out, payload_len);
        self.next_sequence = saved;
        let header = header?;
        // Only a newer packet moves the stream on; a reordered one does not.
        if (sequence.wrapping_sub(self.next_sequence) as i16) >= 0 {
            self.next_sequence = sequence.wrapping_add(1);
            let end = timestamp.wrapping_add(samples);
            if (end.wrapping_sub(self.next_timestamp) as i32) > 0 {
                self.next_timestamp = end;
            }
            self.media_time = Some(at + samples_to_duration(u64::from(samples)));
        }
        self.marker_pending = false;
        self.packets_sent += 1;
        Ok(header)
    }

    fn header(
        &mut self,
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        out: &mut [u8],
        payload_len: usize,
    ) -> Result<usize, RtpError> {
        let builder = RtpPacketBuilder::new()
            .payload_type(payload_type)
            .marked(marker)
            .sequence(Seq::from(self.next_sequence))
            .timestamp(timestamp)
            .ssrc(self.ssrc);
        if out.len() < HEADER_LEN + payload_len {
            return Err(RtpError::BufferTooSmall);
        }
        builder
            .build_into(out)
            .map_err(|_| RtpError::BufferTooSmall)
    }

    fn advance(&mut self, at: Instant, packets: u16, samples: u32) {
        self.next_sequence = self.next_sequence.wrapping_add(packets);
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);
        self.media_time = Some(at + samples_to_duration(u64::from(samples)));
        self.marker_pending = false;
        self.packets_sent += 1;
    }
}

fn samples_to_duration(samples: u64) -> Duration {
    Duration::from_nanos(samples.saturating_mul(1_000_000_000) / u64::from(CLOCK_RATE))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;
    use rtp_rs::RtpReader;

    use super::*;
    use crate::codec::FRAME_DURATION;

    #[test]
    fn random_initial_values_come_from_the_injected_rng() {
        let a = OutboundStream::new(&mut SmallRng::seed_from_u64(1));
        let b = OutboundStream::new(&mut SmallRng::seed_from_u64(1));
        let c = OutboundStream::new(&mut SmallRng::seed_from_u64(2));
        assert_eq!(a, b);
        assert_ne!(a.ssrc(), c.ssrc());
    }

    #[test]
    fn consecutive_frames_advance_by_one_and_160() {
        let t0 = Instant::now();
        let mut stream = OutboundStream::from_parts(0xDEAD_BEEF, 65_534, u32::MAX - 159);
        let mut out = [0u8; 200];
        let mut seen = Vec::new();
        for n in 0..3 {
            let len = stream
                .write_audio(t0 + FRAME_DURATION * n, 8, &[0xD5; 160], &mut out)
                .unwrap();
            assert_eq!(len, 172);
            let packet = RtpReader::new(&out[..len]).unwrap();
            assert_eq!(packet.payload_type(), 8);
            assert_eq!(packet.ssrc(), 0xDEAD_BEEF);
            assert_eq!(packet.payload().len(), 160);
            seen.push((
                u16::from(packet.sequence_number()),
                packet.timestamp(),
                packet.mark(),
            ));
        }
        assert_eq!(
            seen,
            [
                (65_534, u32::MAX - 159, true),
                (65_535, 0, false),
                (0, 160, false)
            ]
        );
        assert_eq!(stream.packets_sent(), 3);
    }

    #[test]
    fn a_pause_skips_timestamps_but_not_sequence_numbers() {
        let t0 = Instant::now();
        let mut stream = OutboundStream::from_parts(1, 100, 1000);
        let mut out = [0u8; 200];
        stream.write_audio(t0, 0, &[0xFF; 160], &mut out).unwrap();
        // Next frame would be due at t0 + 20 ms; resume 1 s later.
        stream.begin_talkspurt(t0 + FRAME_DURATION + Duration::from_secs(1));
        let len = stream
            .write_audio(t0 + Duration::from_millis(1020), 0, &[0xFF; 160], &mut out)
            .unwrap();
        let packet = RtpReader::new(&out[..len]).unwrap();
        assert_eq!(u16::from(packet.sequence_number()), 101);
        assert_eq!(packet.timestamp(), 1000 + 160 + 8000);
        assert!(packet.mark());
        // Back to back: no gap, marker only.
        stream.begin_talkspurt(t0 + Duration::from_millis(1040));
        let len = stream
            .write_audio(t0 + Duration::from_millis(1040), 0, &[0xFF; 160], &mut out)
            .unwrap();
        let packet = RtpReader::new(&out[..len]).unwrap();
        assert_eq!(packet.timestamp(), 1000 + 320 + 8000);
        assert!(packet.mark());
    }

    #[test]
    fn events_keep_their_start_timestamp() {
        let t0 = Instant::now();
        let mut stream = OutboundStream::from_parts(1, 10, 5000);
        let mut out = [0u8; 64];
        let start = stream.next_timestamp();
        for (n, duration) in [160u16, 320, 320].into_iter().enumerate() {
            let event = TelephoneEvent {
                event: 1,
                end: n == 2,
                volume: 10,
                duration,
            };
            let len = stream
                .write_event(101, start, event, n == 0, &mut out)
                .unwrap();
            let packet = RtpReader::new(&out[..len]).unwrap();
            assert_eq!(packet.timestamp(), 5000);
            assert_eq!(u16::from(packet.sequence_number()), 10 + n as u16);
            assert_eq!(packet.mark(), n == 0);
            assert_eq!(TelephoneEvent::parse(packet.payload()).unwrap(), event);
        }
        stream.end_event(t0, 320);
        assert_eq!(stream.next_timestamp(), 5320);
        assert_eq!(stream.next_sequence(), 13);
    }

    #[test]
    fn small_buffers_are_an_error_not_a_panic() {
        let mut stream = OutboundStream::from_parts(1, 1, 1);
        let mut out = [0u8; 100];
        assert_eq!(
            stream.write_audio(Instant::now(), 0, &[0; 160], &mut out),
            Err(RtpError::BufferTooSmall)
        );
        assert_eq!(stream.next_sequence(), 1);
    }
}
