//! Receiving RTP from one peer: parse with rtp-rs, check the payload type
//! against what the SDP negotiated, decode RFC 4733 events into digits.

use rtp_rs::{RtpReader, RtpReaderError};

use crate::codec::Codec;
use crate::dtmf::DtmfDigit;
use crate::error::RtpError;
use crate::rtp::telephone_event::{TelephoneEvent, TelephoneEventReceiver};
use crate::sdp::PayloadMap;

/// What a valid packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtpPayload<'a> {
    /// G.711 audio, one byte per sample.
    Audio {
        /// The codec its payload type stands for.
        codec: Codec,
        /// The encoded samples.
        samples: &'a [u8],
    },
    /// An RFC 4733 telephone-event.
    TelephoneEvent(TelephoneEvent),
}

/// A validated RTP packet (RFC 3550 §5.1 header fields we use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedPacket<'a> {
    /// The payload type number as sent.
    pub payload_type: u8,
    /// The marker bit.
    pub marker: bool,
    /// The sequence number.
    pub sequence: u16,
    /// The timestamp.
    pub timestamp: u32,
    /// The sender's SSRC.
    pub ssrc: u32,
    /// The decoded payload.
    pub payload: RtpPayload<'a>,
}

/// Parses and checks one datagram against a leg's payload map, without
/// state. Version 2 is required (rtp-rs rejects others), padding and
/// header extensions are skipped, and an unknown payload type is refused.
pub fn parse_packet<'a>(
    payloads: &PayloadMap,
    datagram: &'a [u8],
) -> Result<ReceivedPacket<'a>, RtpError> {
    let reader =
        RtpReader::new(datagram).map_err(|error| RtpError::Malformed(reader_error(&error)))?;
    let payload_type = reader.payload_type();
    let payload = if let Some(codec) = payloads.codec(payload_type) {
        RtpPayload::Audio {
            codec,
            samples: reader.payload(),
        }
    } else if payloads.is_telephone_event(payload_type) {
        RtpPayload::TelephoneEvent(TelephoneEvent::parse(reader.payload())?)
    } else {
        return Err(RtpError::UnknownPayloadType(payload_type));
    };
    Ok(ReceivedPacket {
        payload_type,
        marker: reader.mark(),
        sequence: reader.sequence_number().into(),
        timestamp: reader.timestamp(),
        ssrc: reader.ssrc(),
        payload,
    })
}

fn reader_error(error: &RtpReaderError) -> &'static str {
    match error {
        RtpReaderError::BufferTooShort(_) => "shorter than an RTP header",
        RtpReaderError::UnsupportedVersion(_) => "not RTP version 2",
        RtpReaderError::HeadersTruncated { .. } => "header truncated",
        RtpReaderError::PaddingLengthInvalid(_) => "invalid padding length",
    }
}

/// Counters of one inbound stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InboundStats {
    /// Valid packets.
    pub packets: u64,
    /// Datagrams refused (malformed or not negotiated).
    pub rejected: u64,
    /// Telephone-event packets among the valid ones.
    pub telephone_events: u64,
    /// Packets missing from the sequence (gaps of fewer than
    /// [`MAX_COUNTED_GAP`] numbers; a bigger jump is a new stream, not loss).
    pub lost: u64,
}

/// A sequence jump this large or larger is taken as a restart, not loss.
pub const MAX_COUNTED_GAP: u16 = 3000;

/// The receiving side of one leg: validation plus RFC 4733 digit
/// detection (each event once; see [`TelephoneEventReceiver`]).
#[derive(Clone, Debug)]
pub struct InboundStream {
    payloads: PayloadMap,
    events: TelephoneEventReceiver,
    stats: InboundStats,
    /// SSRC and highest sequence number seen, for loss counting.
    last: Option<(u32, u16)>,
}

impl InboundStream {
    /// A stream accepting the payload types of `payloads`.
    pub fn new(payloads: PayloadMap) -> InboundStream {
        InboundStream {
            payloads,
            events: TelephoneEventReceiver::new(),
            stats: InboundStats::default(),
            last: None,
        }
    }

    /// Changes the accepted payload types (after a re-INVITE).
    pub fn set_payloads(&mut self, payloads: PayloadMap) {
        self.payloads = payloads;
    }

    /// The accepted payload types.
    pub fn payloads(&self) -> &PayloadMap {
        &self.payloads
    }

    /// Counters so far.
    pub fn stats(&self) -> InboundStats {
        self.stats
    }

    /// Checks one datagram; returns the packet and the digit it starts, if any.
    pub fn receive<'a>(
        &mut self,
        datagram: &'a [u8],
    ) -> Result<(ReceivedPacket<'a>, Option<DtmfDigit>), RtpError> {
        let packet = self.parse(datagram)?;
        let digit = self.accept(&packet);
        Ok((packet, digit))
    }

    /// Checks one datagram against the negotiated payload types, without
    /// touching the stream's state (a refusal is counted). Strict RTP
    /// decides between this and [`InboundStream::accept`] whether the
    /// packet is the peer's.
    pub fn parse<'a>(&mut self, datagram: &'a [u8]) -> Result<ReceivedPacket<'a>, RtpError> {
        parse_packet(&self.payloads, datagram).inspect_err(|_| self.stats.rejected += 1)
    }

    /// Takes a parsed packet of the peer's into the stream: counters, loss,
    /// and the digit it starts, if any.
    pub fn accept(&mut self, packet: &ReceivedPacket<'_>) -> Option<DtmfDigit> {
        self.stats.packets += 1;
        self.count_loss(packet.ssrc, packet.sequence);
        match packet.payload {
            RtpPayload::TelephoneEvent(event) => {
                self.stats.telephone_events += 1;
                self.events.handle(packet.ssrc, packet.timestamp, event)
            }
            RtpPayload::Audio { .. } => None,
        }
    }
}

impl InboundStream {
    /// Counts the numbers skipped since the highest sequence seen; a late
    /// (reordered) packet counts nothing, a new SSRC starts over.
    fn count_loss(&mut self, ssrc: u32, sequence: u16) {
        match self.last {
            Some((last_ssrc, highest)) if last_ssrc == ssrc => {
                let ahead = sequence.wrapping_sub(highest);
                if ahead != 0 && ahead < MAX_COUNTED_GAP {
                    self.stats.lost += u64::from(ahead - 1);
                    self.last = Some((ssrc, sequence));
                } else if (MAX_COUNTED_GAP..=u16::MAX - MAX_COUNTED_GAP).contains(&ahead) {
                    // A jump: the stream restarted.
                    self.last = Some((ssrc, sequence));
                }
            }
            _ => self.last = Some((ssrc, sequence)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use rtp_rs::{RtpPacketBuilder, Seq};

    use super::*;
    use crate::rtp::outbound::OutboundStream;
    use crate::rtp::telephone_event::TelephoneEventGenerator;

    fn payloads() -> PayloadMap {
        PayloadMap::static_g711(Some(101))
    }

    #[test]
    fn gaps_count_as_loss_but_reordering_and_restarts_do_not() {
        let mut stream = InboundStream::new(payloads());
        let mut out = [0u8; 200];
        let mut send = |stream: &mut InboundStream, ssrc: u32, sequence: u16| {
            let mut source = OutboundStream::from_parts(ssrc, sequence, 0);
            let len = source
                .write_audio(Instant::now(), 0, &[0xFF; 160], &mut out)
                .unwrap();
            stream.receive(&out[..len]).unwrap();
        };
        for sequence in [10, 11, 14, 13, 15, 65535, 0] {
            send(&mut stream, 7, sequence);
        }
        // 12 and 13 were missing when 14 came (13 arriving late changes
        // nothing); 65535 and 0 are far behind 15: late, not counted.
        assert_eq!(stream.stats().lost, 2);
        send(&mut stream, 8, 500);
        assert_eq!(stream.stats().lost, 2, "a new SSRC starts over");
        assert_eq!(stream.stats().packets, 8);
    }

    #[test]
    fn audio_packets_are_classified_by_payload_type() {
        let mut stream = OutboundStream::from_parts(9, 1, 2);
        let mut out = [0u8; 200];
        let len = stream
            .write_audio(Instant::now(), 8, &[0xD5; 160], &mut out)
            .unwrap();
        let packet = parse_packet(&payloads(), &out[..len]).unwrap();
        assert_eq!(
            packet.payload,
            RtpPayload::Audio {
                codec: Codec::Pcma,
                samples: &[0xD5; 160]
            }
        );
        assert_eq!(
            (
                packet.sequence,
                packet.timestamp,
                packet.ssrc,
                packet.marker
            ),
            (1, 2, 9, true)
        );
    }

    #[test]
    fn rejects_what_the_sdp_did_not_negotiate() {
        let packet = RtpPacketBuilder::new()
            .payload_type(18)
            .sequence(Seq::from(1))
            .payload(&[0; 20])
            .build()
            .unwrap();
        assert_eq!(
            parse_packet(&payloads(), &packet),
            Err(RtpError::UnknownPayloadType(18))
        );
        let without_events = PayloadMap::static_g711(None);
        let event = RtpPacketBuilder::new()
            .payload_type(101)
            .payload(&[1, 0, 0, 160])
            .build()
            .unwrap();
        assert_eq!(
            parse_packet(&without_events, &event),
            Err(RtpError::UnknownPayloadType(101))
        );
    }

    #[test]
    fn rejects_malformed_datagrams_without_panicking() {
        assert_eq!(
            parse_packet(&payloads(), &[0x80, 0]),
            Err(RtpError::Malformed("shorter than an RTP header"))
        );
        let mut version_one = [0u8; 20];
        version_one[0] = 0x40;
        assert_eq!(
            parse_packet(&payloads(), &version_one),
            Err(RtpError::Malformed("not RTP version 2"))
        );
        // CSRC count 15 with no room for them.
        let mut truncated = [0u8; 20];
        truncated[0] = 0x8F;
        assert_eq!(
            parse_packet(&payloads(), &truncated),
            Err(RtpError::Malformed("header truncated"))
        );
        // Padding flag with a padding length of 0.
        let mut padding = [0u8; 20];
        padding[0] = 0xA0;
        assert_eq!(
            parse_packet(&payloads(), &padding),
            Err(RtpError::Malformed("invalid padding length"))
        );
        let short_event = RtpPacketBuilder::new()
            .payload_type(101)
            .payload(&[1, 0])
            .build()
            .unwrap();
        assert_eq!(
            parse_packet(&payloads(), &short_event),
            Err(RtpError::TruncatedTelephoneEvent)
        );
        // Every prefix of a valid packet and every one-byte corruption is handled.
        let valid = RtpPacketBuilder::new()
            .payload_type(0)
            .payload(&[0x55; 32])
            .build()
            .unwrap();
        for end in 0..valid.len() {
            let _ = parse_packet(&payloads(), &valid[..end]);
        }
        for index in 0..valid.len() {
            for value in [0x00, 0x3F, 0x7F, 0xBF, 0xFF] {
                let mut corrupt = valid.clone();
                corrupt[index] = value;
                let _ = parse_packet(&payloads(), &corrupt);
            }
        }
    }

    #[test]
    fn digits_come_out_once_per_event_and_stats_count() {
        let mut receiving = InboundStream::new(payloads());
        let mut sending = OutboundStream::from_parts(77, 500, 8000);
        let mut out = [0u8; 64];
        let mut digits = Vec::new();
        for key in ['3', '3', '#'] {
            let start = sending.next_timestamp();
            let generator =
                TelephoneEventGenerator::new(DtmfDigit::from_char(key).unwrap(), 800, 10);
            let duration = generator.duration();
            for packet in generator {
                let len = sending
                    .write_event(101, start, packet.event, packet.marker, &mut out)
                    .unwrap();
                let (_, digit) = receiving.receive(&out[..len]).unwrap();
                digits.extend(digit);
            }
            sending.end_event(Instant::now(), duration);
        }
        let keys: String = digits.iter().map(|digit| digit.as_char()).collect();
        assert_eq!(keys, "33#");
        // 800 samples: five packets, the last one sent three times.
        assert_eq!(receiving.stats().telephone_events, 3 * 7);
        assert!(receiving.receive(&[0; 4]).is_err());
        assert_eq!(receiving.stats().rejected, 1);
    }
}
