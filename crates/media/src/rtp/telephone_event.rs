//! RFC 4733 telephone-events: the 4-byte payload (§2.3), a receiver that
//! turns a stream of event packets into digits once each (§2.5.2), and a
//! generator of the packet sequence for one digit (§2.5.1).

use crate::dtmf::DtmfDigit;
use crate::error::RtpError;

/// The payload of one telephone-event packet (RFC 4733 §2.3, Figure 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code (§3.2: 0–9, `*` 10, `#` 11, A–D 12–15, flash 16).
    pub event: u8,
    /// The E bit: this packet reports the end of the event.
    pub end: bool,
    /// Power level in −dBm0, 0–63 (§2.3.4).
    pub volume: u8,
    /// Duration so far in timestamp units (§2.3.5).
    pub duration: u16,
}

impl TelephoneEvent {
    /// Payload length in bytes.
    pub const LEN: usize = 4;

    /// Parses the first event of a payload (a packet may carry redundant
    /// older events after it, §2.6, which we do not need).
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, RtpError> {
        let [event, flags, high, low, ..] = *payload else {
            return Err(RtpError::TruncatedTelephoneEvent);
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([high, low]),
        })
    }

    /// The wire form (the R bit is always 0).
    pub fn to_bytes(self) -> [u8; 4] {
        let flags = (u8::from(self.end) << 7) | (self.volume & 0x3F);
        let [high, low] = self.duration.to_be_bytes();
        [self.event, flags, high, low]
    }

    /// The DTMF digit, if the event is one.
    pub fn digit(self) -> Option<DtmfDigit> {
        DtmfDigit::from_event_code(self.event)
    }
}

/// Turns received telephone-event packets into digits, each event once.
///
/// An event is identified by its RTP timestamp, which stays the same in all
/// its packets (§2.5.1.2), including the three retransmitted end packets
/// (§2.5.1.4). A digit is reported on the first packet of an event seen,
/// so barge-in does not wait for the key to be released; a later event
/// with the same key has a new timestamp and counts again. Segments of a
/// long event (§2.5.1.3) continue it and are not counted again. Packets of
/// an older event arriving late are ignored.
#[derive(Clone, Debug, Default)]
pub struct TelephoneEventReceiver {
    last: Option<LastEvent>,
}

#[derive(Clone, Copy, Debug)]
struct LastEvent {
    ssrc: u32,
    timestamp: u32,
    event: u8,
    ended: bool,
    duration: u16,
}

impl TelephoneEventReceiver {
    /// A receiver that has seen nothing.
    pub fn new() -> TelephoneEventReceiver {
        TelephoneEventReceiver::default()
    }

    /// Feeds one packet's header fields and payload; returns the digit
    /// when this packet starts a new DTMF event.
    pub fn handle(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        event: TelephoneEvent,
    ) -> Option<DtmfDigit> {
        if let Some(last) = self.last.as_mut().filter(|last| last.ssrc == ssrc) {
            if last.timestamp == timestamp {
                last.ended |= event.end;
                last.duration = last.duration.max(event.duration);
                return None;
            }
            if (timestamp.wrapping_sub(last.timestamp) as i32) < 0 {
                return None; // a late packet of an older event
            }
            let continues_long_event = last.event == event.event
                && !last.ended
                && timestamp == last.timestamp.wrapping_add(u32::from(last.duration));
            if continues_long_event {
                *last = LastEvent {
                    ssrc,
                    timestamp,
                    event: event.event,
                    ended: event.end,
                    duration: event.duration,
                };
                return None;
            }
        }
        self.last = Some(LastEvent {
            ssrc,
            timestamp,
            event: event.event,
            ended: event.end,
            duration: event.duration,
        });
        event.digit()
    }
}

/// One packet of a generated event: the payload and whether it carries the
/// RTP marker bit (set on the first packet only, §2.5.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelephoneEventPacket {
    /// The payload.
    pub event: TelephoneEvent,
    /// The RTP marker bit.
    pub marker: bool,
}

/// The packets for one digit (RFC 4733 §2.5.1): one every 20 ms with the
/// duration growing by 160, then the end packet three times (§2.5.1.4).
/// All carry the event's start timestamp; the sender advances the media
/// timestamp by the total duration afterwards.
#[derive(Clone, Debug)]
pub struct TelephoneEventGenerator {
    digit: DtmfDigit,
    volume: u8,
    total: u16,
    emitted: u16,
    end_packets_sent: u8,
}

impl TelephoneEventGenerator {
    /// Packets for `digit` lasting `duration_samples` (at 8 kHz; 800 =
    /// 100 ms), at `volume` −dBm0 (10 is typical).
    pub fn new(digit: DtmfDigit, duration_samples: u16, volume: u8) -> TelephoneEventGenerator {
        TelephoneEventGenerator {
            digit,
            volume: volume.min(63),
            total: duration_samples.max(crate::codec::SAMPLES_PER_FRAME as u16),
            emitted: 0,
            end_packets_sent: 0,
        }
    }

    /// The event's total duration in samples.
    pub fn duration(&self) -> u16 {
        self.total
    }
}

impl Iterator for TelephoneEventGenerator {
    type Item = TelephoneEventPacket;

    fn next(&mut self) -> Option<TelephoneEventPacket> {
        const STEP: u16 = crate::codec::SAMPLES_PER_FRAME as u16;
        if self.end_packets_sent == 3 {
            return None;
        }
        let marker = self.emitted == 0;
        self.emitted = self.emitted.saturating_add(STEP).min(self.total);
        let end = self.emitted == self.total;
        if end {
            self.end_packets_sent += 1;
        }
        let event = TelephoneEvent {
            event: self.digit.event_code(),
            end,
            volume: self.volume,
            duration: self.emitted,
        };
        Some(TelephoneEventPacket { event, marker })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digit(key: char) -> DtmfDigit {
        DtmfDigit::from_char(key).unwrap()
    }

    #[test]
    fn payload_round_trip() {
        let bytes = [0x03, 0x8A, 0x03, 0x20];
        let event = TelephoneEvent::parse(&bytes).unwrap();
        assert_eq!(
            event,
            TelephoneEvent {
                event: 3,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(event.to_bytes(), bytes);
        assert_eq!(event.digit(), Some(digit('3')));
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(RtpError::TruncatedTelephoneEvent)
        );
        // R bit set by a sloppy sender is ignored.
        assert_eq!(
            TelephoneEvent::parse(&[11, 0x4A, 0, 160]).unwrap().volume,
            10
        );
        assert_eq!(
            TelephoneEvent {
                event: 16,
                end: false,
                volume: 0,
                duration: 0
            }
            .digit(),
            None
        );
    }

    #[test]
    fn one_event_with_three_end_packets_counts_once() {
        let mut receiver = TelephoneEventReceiver::new();
        let mut digits = Vec::new();
        for packet in TelephoneEventGenerator::new(digit('3'), 800, 10) {
            digits.extend(receiver.handle(7, 1000, packet.event));
        }
        assert_eq!(digits, [digit('3')]);
    }

    #[test]
    fn the_same_digit_again_with_a_new_timestamp_counts_again() {
        let mut receiver = TelephoneEventReceiver::new();
        let mut digits = Vec::new();
        for timestamp in [1000, 5000] {
            for packet in TelephoneEventGenerator::new(digit('5'), 480, 10) {
                digits.extend(receiver.handle(7, timestamp, packet.event));
            }
        }
        assert_eq!(digits, [digit('5'), digit('5')]);
    }

    #[test]
    fn only_end_packets_received_still_count_once() {
        let mut receiver = TelephoneEventReceiver::new();
        let end = TelephoneEvent {
            event: 9,
            end: true,
            volume: 10,
            duration: 800,
        };
        let digits: Vec<_> = (0..3)
            .filter_map(|_| receiver.handle(1, 160, end))
            .collect();
        assert_eq!(digits, [digit('9')]);
    }

    #[test]
    fn late_packets_of_an_older_event_are_ignored() {
        let mut receiver = TelephoneEventReceiver::new();
        let start = TelephoneEvent {
            event: 1,
            end: false,
            volume: 10,
            duration: 160,
        };
        assert_eq!(receiver.handle(1, 10_000, start), Some(digit('1')));
        assert_eq!(
            receiver.handle(1, 20_000, TelephoneEvent { event: 2, ..start }),
            Some(digit('2'))
        );
        assert_eq!(
            receiver.handle(1, 10_000, TelephoneEvent { end: true, ..start }),
            None
        );
        // Timestamps wrap around.
        assert_eq!(
            receiver.handle(1, 5, TelephoneEvent { event: 4, ..start }),
            None
        );
        let mut wrapped = TelephoneEventReceiver::new();
        assert_eq!(wrapped.handle(1, u32::MAX - 100, start), Some(digit('1')));
        assert_eq!(wrapped.handle(1, 300, start), Some(digit('1')));
    }

    #[test]
    fn long_event_segments_continue_the_event() {
        let mut receiver = TelephoneEventReceiver::new();
        let long = TelephoneEvent {
            event: 0,
            end: false,
            volume: 10,
            duration: 0xFFFF,
        };
        assert_eq!(receiver.handle(1, 1000, long), Some(digit('0')));
        let next_segment = TelephoneEvent {
            duration: 160,
            ..long
        };
        assert_eq!(receiver.handle(1, 1000 + 0xFFFF, next_segment), None);
    }

    #[test]
    fn a_new_ssrc_starts_afresh() {
        let mut receiver = TelephoneEventReceiver::new();
        let event = TelephoneEvent {
            event: 11,
            end: false,
            volume: 10,
            duration: 160,
        };
        assert_eq!(receiver.handle(1, 1000, event), Some(digit('#')));
        assert_eq!(receiver.handle(2, 1000, event), Some(digit('#')));
    }

    #[test]
    fn generator_follows_rfc4733_2_5_1() {
        let packets: Vec<_> = TelephoneEventGenerator::new(digit('7'), 480, 10).collect();
        let summary: Vec<_> = packets
            .iter()
            .map(|p| (p.marker, p.event.end, p.event.duration))
            .collect();
        assert_eq!(
            summary,
            [
                (true, false, 160),
                (false, false, 320),
                (false, true, 480),
                (false, true, 480),
                (false, true, 480)
            ]
        );
        assert!(
            packets
                .iter()
                .all(|p| p.event.event == 7 && p.event.volume == 10)
        );
        // A very short request still produces one frame's worth.
        assert_eq!(
            TelephoneEventGenerator::new(digit('1'), 10, 99).duration(),
            160
        );
        assert_eq!(
            TelephoneEventGenerator::new(digit('1'), 10, 99)
                .next()
                .unwrap()
                .event
                .volume,
            63
        );
    }
}
