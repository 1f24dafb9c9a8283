//! Relay primitives for bridging two legs (the B2BUA media path), sans-IO.
//!
//! [`RelayPath`] turns a packet received on one leg into the packet sent on
//! the other: the payload is passed through or converted µ-law ↔ A-law
//! (when the legs agreed on different codecs), the telephone-event payload
//! type is remapped, and the header is our own: the egress leg's SSRC, and
//! sequence numbers and timestamps that continue the stream that leg has
//! already heard from prompts. Each new source on the ingress side (a new
//! SSRC, or a jump that means the peer restarted its stream) is rebased
//! onto our stream: `out = in + offset`, with the offsets chosen so the
//! first relayed packet follows our last one, so loss and reordering on the
//! ingress side stay visible to the far end as they were.
//!
//! The per-packet path writes into a caller-provided buffer and does not
//! allocate.
//!
//! Which source a leg accepts, and where its packets go, is strict RTP's
//! business ([`crate::strict`]).

use std::time::Instant;

use crate::codec::Codec;
use crate::error::RtpError;
use crate::rtp::{OutboundStream, ReceivedPacket, RtpPayload, TelephoneEvent, parse_packet};
use crate::sdp::{NegotiatedMedia, PayloadMap};

/// A sequence-number jump larger than this is treated as a restarted
/// stream and rebased (RFC 3550 Appendix A.1 uses 3000 as MAX_DROPOUT).
const MAX_DROPOUT: u16 = 3000;

/// What became of a relayed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relayed {
    /// Audio written to the output, converted or not.
    Audio {
        /// Bytes written.
        len: usize,
        /// Whether the payload was converted between µ-law and A-law.
        transcoded: bool,
    },
    /// A telephone-event written with the egress leg's payload type.
    TelephoneEvent {
        /// Bytes written.
        len: usize,
    },
    /// A telephone-event the egress leg did not negotiate: not sent (the
    /// digit is still reported by the ingress leg's receiver).
    EventDropped,
}

impl Relayed {
    /// Bytes to send, if any.
    pub fn bytes_to_send(self) -> Option<usize> {
        match self {
            Relayed::Audio { len, .. } | Relayed::TelephoneEvent { len } => Some(len),
            Relayed::EventDropped => None,
        }
    }
}

/// Counters of one relay direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Packets written.
    pub relayed: u64,
    /// Audio packets converted between codecs.
    pub transcoded: u64,
    /// Telephone-events dropped for want of a payload type on egress.
    pub events_dropped: u64,
    /// Times the ingress stream was rebased (new SSRC or restart).
    pub rebases: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rebase {
    ingress_ssrc: u32,
    last_ingress_sequence: u16,
    sequence_offset: u16,
    timestamp_offset: u32,
}

/// One direction of a bridge: packets from the ingress leg, rewritten for
/// the egress leg.
#[derive(Clone, Debug)]
pub struct RelayPath {
    ingress: PayloadMap,
    egress: PayloadMap,
    egress_codec: Codec,
    stream: OutboundStream,
    rebase: Option<Rebase>,
    rebased: bool,
    stats: RelayStats,
}

impl RelayPath {
    /// A path from `ingress` to `egress`, continuing `egress_stream` (the
    /// stream the egress peer has heard so far).
    pub fn new(
        ingress: &NegotiatedMedia,
        egress: &NegotiatedMedia,
        egress_stream: OutboundStream,
    ) -> RelayPath {
        RelayPath {
            ingress: ingress.payloads,
            egress: egress.payloads,
            egress_codec: egress.codec,
            stream: egress_stream,
            rebase: None,
            rebased: false,
            stats: RelayStats::default(),
        }
    }

    /// The egress stream (SSRC, next sequence number and timestamp).
    pub fn stream(&self) -> &OutboundStream {
        &self.stream
    }

    /// The egress stream, to interleave packets we originate (RFC 4733
    /// digits); call [`RelayPath::rebase_next`] afterwards.
    pub fn stream_mut(&mut self) -> &mut OutboundStream {
        &mut self.stream
    }

    /// Rebases on the next ingress packet, so relayed audio continues after
    /// packets written directly on the stream.
    pub fn rebase_next(&mut self) {
        self.rebase = None;
    }

    /// Ends the relay and hands the egress stream back (for prompts or a
    /// new relay), so the far end keeps hearing one stream.
    pub fn into_stream(self) -> OutboundStream {
        self.stream
    }

    /// Counters so far.
    pub fn stats(&self) -> RelayStats {
        self.stats
    }

    /// The ingress payload map (to parse datagrams with).
    pub fn ingress_payloads(&self) -> &PayloadMap {
        &self.ingress
    }

    /// Parses `datagram` as an ingress packet and relays it.
    pub fn relay(
        &mut self,
        now: Instant,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Result<Relayed, RtpError> {
        let packet = parse_packet(&self.ingress, datagram)?;
        self.relay_packet(now, &packet, out)
    }

    /// Relays an already validated ingress packet into `out`.
    pub fn relay_packet(
        &mut self,
        now: Instant,
        packet: &ReceivedPacket<'_>,
        out: &mut [u8],
    ) -> Result<Relayed, RtpError> {
        let (payload_type, payload_len, samples, transcode) = match packet.payload {
            RtpPayload::Audio { codec, samples } => match self.egress.payload_type(codec) {
                Some(payload_type) => (payload_type, samples.len(), samples.len(), None),
                None => {
                    let payload_type = self
                        .egress
                        .payload_type(self.egress_codec)
                        .unwrap_or(self.egress_codec.static_payload_type());
                    (
                        payload_type,
                        samples.len(),
                        samples.len(),
                        Some((codec, samples)),
                    )
                }
            },
            RtpPayload::TelephoneEvent(_) => match self.egress.telephone_event {
                Some(payload_type) => (payload_type, TelephoneEvent::LEN, 0, None),
                None => {
                    self.stats.events_dropped += 1;
                    return Ok(Relayed::EventDropped);
                }
            },
        };
        let rebase = self.rebase_for(now, packet);
        let sequence = packet.sequence.wrapping_add(rebase.sequence_offset);
        let timestamp = packet.timestamp.wrapping_add(rebase.timestamp_offset);
        // The first packet on a new base starts a talkspurt for the far end.
        let first_on_new_base = std::mem::take(&mut self.rebased);
        let marker = packet.marker || first_on_new_base;
        let header = self.stream.write_relayed_header(
            now,
            payload_type,
            marker,
            sequence,
            timestamp,
            payload_len,
            samples as u32,
            out,
        )?;
        let body = &mut out[header..header + payload_len];
        let len = header + payload_len;
        self.stats.relayed += 1;
        let relayed = match (packet.payload, transcode) {
            (_, Some((codec, samples))) => {
                codec.transcode_into(self.egress_codec, samples, body);
                self.stats.transcoded += 1;
                Relayed::Audio {
                    len,
                    transcoded: true,
                }
            }
            (RtpPayload::Audio { samples, .. }, None) => {
                body.copy_from_slice(samples);
                Relayed::Audio {
                    len,
                    transcoded: false,
                }
            }
            (RtpPayload::TelephoneEvent(event), None) => {
                body[..4].copy_from_slice(&event.to_bytes());
                Relayed::TelephoneEvent { len }
            }
        };
        if let Some(rebase) = self.rebase.as_mut()
            && (packet.sequence.wrapping_sub(rebase.last_ingress_sequence) as i16) > 0
        {
            rebase.last_ingress_sequence = packet.sequence;
        }
        Ok(relayed)
    }

    /// The offsets for this packet, rebasing on a new source or a restart.
    fn rebase_for(&mut self, now: Instant, packet: &ReceivedPacket<'_>) -> Rebase {
        let current = self.rebase.filter(|rebase| {
            let delta = packet.sequence.wrapping_sub(rebase.last_ingress_sequence) as i16;
            rebase.ingress_ssrc == packet.ssrc && delta.unsigned_abs() <= MAX_DROPOUT
        });
        if let Some(rebase) = current {
            return rebase;
        }
        self.stream.begin_talkspurt(now);
        let rebase = Rebase {
            ingress_ssrc: packet.ssrc,
            // One behind, so that this packet counts as the first of the new base.
            last_ingress_sequence: packet.sequence.wrapping_sub(1),
            sequence_offset: self.stream.next_sequence().wrapping_sub(packet.sequence),
            timestamp_offset: self.stream.next_timestamp().wrapping_sub(packet.timestamp),
        };
        self.rebase = Some(rebase);
        self.rebased = true;
        self.stats.rebases += 1;
        rebase
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

    use super::*;
    use crate::codec::FRAME_DURATION;
    use crate::g711;
    use crate::sdp::PayloadMap;

    fn leg(codec: Codec, telephone_event: Option<u8>) -> NegotiatedMedia {
        NegotiatedMedia::static_g711(
            codec,
            Some("192.0.2.1:4000".parse().unwrap()),
            telephone_event,
        )
    }

    fn packet(
        payload_type: u8,
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
        marker: bool,
        payload: &[u8],
    ) -> Vec<u8> {
        RtpPacketBuilder::new()
            .payload_type(payload_type)
            .sequence(Seq::from(sequence))
            .timestamp(timestamp)
            .ssrc(ssrc)
            .marked(marker)
            .payload(payload)
            .build()
            .unwrap()
    }

    fn header(bytes: &[u8]) -> (u8, u16, u32, u32, bool) {
        let reader = RtpReader::new(bytes).unwrap();
        (
            reader.payload_type(),
            reader.sequence_number().into(),
            reader.timestamp(),
            reader.ssrc(),
            reader.mark(),
        )
    }

    #[test]
    fn continues_the_stream_the_far_end_heard_from_prompts() {
        let t0 = Instant::now();
        let mut stream = OutboundStream::from_parts(0xAAAA, 1000, 50_000);
        let mut out = [0u8; 256];
        // Three prompt packets to the caller.
        for n in 0..3 {
            stream
                .write_audio(t0 + FRAME_DURATION * n, 0, &[0xFF; 160], &mut out)
                .unwrap();
        }
        let mut path = RelayPath::new(
            &leg(Codec::Pcmu, Some(101)),
            &leg(Codec::Pcmu, Some(101)),
            stream,
        );
        // The agent's stream starts right after the prompt, with its own numbering.
        let at = t0 + FRAME_DURATION * 3;
        let mut seen = Vec::new();
        for (n, sequence) in [7u16, 8, 10, 9].into_iter().enumerate() {
            let input = packet(
                0,
                sequence,
                90_000 + 160 * u32::from(sequence - 7),
                0xBBBB,
                n == 0,
                &[0x55; 160],
            );
            let relayed = path
                .relay(at + FRAME_DURATION * n as u32, &input, &mut out)
                .unwrap();
            assert_eq!(
                relayed,
                Relayed::Audio {
                    len: 172,
                    transcoded: false
                }
            );
            assert_eq!(&out[12..172], &[0x55; 160]);
            seen.push(header(&out[..172]));
        }
        assert_eq!(
            seen,
            [
                (0, 1003, 50_480, 0xAAAA, true),
                (0, 1004, 50_640, 0xAAAA, false),
                (0, 1006, 50_960, 0xAAAA, false), // a gap stays a gap
                (0, 1005, 50_800, 0xAAAA, false), // reordering stays reordering
            ]
        );
        // Back to prompts: the stream goes on after the newest relayed packet.
        let stream = path.into_stream();
        assert_eq!(stream.next_sequence(), 1007);
        assert_eq!(stream.next_timestamp(), 51_120);
    }

    #[test]
    fn a_new_ssrc_or_a_restart_is_rebased_onto_our_stream() {
        let t0 = Instant::now();
        let mut path = RelayPath::new(
            &leg(Codec::Pcmu, None),
            &leg(Codec::Pcmu, None),
            OutboundStream::from_parts(1, 100, 1000),
        );
        let mut out = [0u8; 256];
        path.relay(t0, &packet(0, 500, 7000, 9, true, &[0; 160]), &mut out)
            .unwrap();
        assert_eq!(header(&out), (0, 100, 1000, 1, true));
        path.relay(
            t0 + FRAME_DURATION,
            &packet(0, 501, 7160, 9, false, &[0; 160]),
            &mut out,
        )
        .unwrap();
        assert_eq!(header(&out), (0, 101, 1160, 1, false));
        // The agent's phone restarts with a new SSRC 1 s later.
        let later = t0 + FRAME_DURATION * 2 + Duration::from_secs(1);
        path.relay(later, &packet(0, 1, 0, 10, false, &[0; 160]), &mut out)
            .unwrap();
        assert_eq!(header(&out), (0, 102, 1320 + 8000, 1, true));
        // Same SSRC, but a jump beyond MAX_DROPOUT: rebased as well.
        path.relay(
            later + FRAME_DURATION,
            &packet(0, 40_000, 160, 10, false, &[0; 160]),
            &mut out,
        )
        .unwrap();
        assert_eq!(header(&out), (0, 103, 9480, 1, true));
        assert_eq!(path.stats().rebases, 3);
    }

    #[test]
    fn converts_between_ulaw_and_alaw() {
        let t0 = Instant::now();
        let payload: Vec<u8> = (0..160).map(|n| n as u8).collect();
        let mut out = [0u8; 256];
        // PCMA caller, PCMU-only agent.
        let mut agent_only_pcmu = leg(Codec::Pcmu, Some(101));
        agent_only_pcmu.payloads.pcma = None;
        let mut to_agent = RelayPath::new(
            &leg(Codec::Pcma, Some(101)),
            &agent_only_pcmu,
            OutboundStream::from_parts(1, 1, 1),
        );
        let relayed = to_agent
            .relay(t0, &packet(8, 1, 1, 5, false, &payload), &mut out)
            .unwrap();
        assert_eq!(
            relayed,
            Relayed::Audio {
                len: 172,
                transcoded: true
            }
        );
        assert_eq!(header(&out).0, 0);
        let expected: Vec<u8> = payload
            .iter()
            .map(|code| g711::alaw_to_ulaw(*code))
            .collect();
        assert_eq!(&out[12..172], &expected[..]);

        let mut caller_only_pcma = leg(Codec::Pcma, Some(101));
        caller_only_pcma.payloads.pcmu = None;
        let mut to_caller = RelayPath::new(
            &agent_only_pcmu,
            &caller_only_pcma,
            OutboundStream::from_parts(2, 1, 1),
        );
        to_caller
            .relay(t0, &packet(0, 1, 1, 6, false, &payload), &mut out)
            .unwrap();
        assert_eq!(header(&out).0, 8);
        let expected: Vec<u8> = payload
            .iter()
            .map(|code| g711::ulaw_to_alaw(*code))
            .collect();
        assert_eq!(&out[12..172], &expected[..]);
        assert_eq!(to_caller.stats().transcoded, 1);

        // When the egress leg accepts the ingress codec too, no conversion.
        let mut both = RelayPath::new(
            &leg(Codec::Pcma, None),
            &leg(Codec::Pcmu, None),
            OutboundStream::from_parts(3, 1, 1),
        );
        assert_eq!(
            both.relay(t0, &packet(8, 1, 1, 7, false, &payload), &mut out)
                .unwrap(),
            Relayed::Audio {
                len: 172,
                transcoded: false
            }
        );
        assert_eq!(header(&out).0, 8);
    }

    #[test]
    fn telephone_events_are_remapped_or_dropped() {
        let t0 = Instant::now();
        let mut out = [0u8; 64];
        let mut path = RelayPath::new(
            &leg(Codec::Pcmu, Some(101)),
            &leg(Codec::Pcmu, Some(96)),
            OutboundStream::from_parts(1, 10, 100),
        );
        let event = [3, 0x8A, 0x03, 0x20];
        let relayed = path
            .relay(t0, &packet(101, 5, 8000, 9, true, &event), &mut out)
            .unwrap();
        assert_eq!(relayed, Relayed::TelephoneEvent { len: 16 });
        assert_eq!(header(&out[..16]), (96, 10, 100, 1, true));
        assert_eq!(&out[12..16], &event);
        // Retransmitted end packet: same timestamp, next sequence number.
        path.relay(t0, &packet(101, 6, 8000, 9, false, &event), &mut out)
            .unwrap();
        assert_eq!(header(&out[..16]), (96, 11, 100, 1, false));

        let mut no_events = RelayPath::new(
            &leg(Codec::Pcmu, Some(101)),
            &leg(Codec::Pcmu, None),
            OutboundStream::from_parts(1, 1, 1),
        );
        assert_eq!(
            no_events
                .relay(t0, &packet(101, 5, 8000, 9, true, &event), &mut out)
                .unwrap(),
            Relayed::EventDropped
        );
        assert_eq!(no_events.stats().events_dropped, 1);
        assert_eq!(no_events.stream().next_sequence(), 1);
    }

    #[test]
    fn refuses_what_the_ingress_leg_did_not_negotiate() {
        let mut path = RelayPath::new(
            &leg(Codec::Pcmu, None),
            &leg(Codec::Pcmu, None),
            OutboundStream::from_parts(1, 1, 1),
        );
        let mut out = [0u8; 256];
        assert_eq!(
            path.relay(
                Instant::now(),
                &packet(18, 1, 1, 1, false, &[0; 20]),
                &mut out
            ),
            Err(RtpError::UnknownPayloadType(18))
        );
        assert_eq!(
            path.relay(Instant::now(), &[0x80, 0, 0], &mut out),
            Err(RtpError::Malformed("shorter than an RTP header"))
        );
        let mut small = [0u8; 100];
        assert_eq!(
            path.relay(
                Instant::now(),
                &packet(0, 1, 1, 1, false, &[0; 160]),
                &mut small
            ),
            Err(RtpError::BufferTooSmall)
        );
        assert_eq!(*path.ingress_payloads(), PayloadMap::static_g711(None));
    }
}
