//! A browser's WebRTC audio leg, sans-IO: ICE-lite (RFC 8445 §2.5), DTLS
//! (RFC 5763/5764) keying SRTP, RTCP, and G.711 passed straight through.
//!
//! A browser cannot send plain RTP: it insists on ICE connectivity checks,
//! a DTLS handshake whose certificate fingerprint is in the SDP, and SRTP
//! keyed from that handshake (RFC 8827 §6.5). [`WebRtcLeg`] terminates all
//! of it for one browser and hands the call's [`crate::session`] what a
//! plain phone would send: RTP packets with PCMU or PCMA. What the session
//! sends to the leg goes back to the browser the same way. So prompts,
//! digits, the relay and recording work on a browser leg unchanged: the
//! driver ([`crate::driver`]) feeds the leg's socket into a `WebRtcLeg`
//! and its RTP into the session, as if from a phone at
//! [`WebRtcLeg::session_peer`].
//!
//! # Why str0m
//!
//! The protocol work is the `str0m` crate (0.25), chosen over webrtc-rs
//! (`webrtc` 0.21, the owner's first choice) by `bench/webrtc-compare`
//! (BENCHMARKS.md, "Choosing the WebRTC stack"): on a relay leg it took
//! ~19 % less CPU per leg at 200 legs, half the allocations per packet
//! (12 against 25) and a quarter of the memory per leg (~100 against
//! ~400 KiB), and it is sans-IO like this crate: an `Rtc` is a plain value
//! fed datagrams and timeouts with `now`, which opens no socket, spawns no
//! task and reads no clock, so the leg lives in the call's one media task,
//! on a port from [`crate::driver::PortPool`], and tests run on a virtual
//! clock. webrtc-rs set up connections faster (~1.6–1.8× the DTLS handshakes
//! per CPU-second), which a clinic's call rate does not need. Nothing
//! outside this module names a str0m type.
//!
//! # The run loop
//!
//! 1. [`WebRtcLeg::accept_offer`] with the browser's offer and the leased
//!    port's address → the leg and the SDP answer (ICE-lite, one host
//!    candidate, `a=setup:passive`: we are the DTLS server);
//! 2. feed each datagram from the socket to [`WebRtcLeg::handle_datagram`],
//!    and call [`WebRtcLeg::handle_timeout`] at [`WebRtcLeg::poll_timeout`];
//! 3. give each RTP packet the session sends to the leg to
//!    [`WebRtcLeg::send_rtp`];
//! 4. drain [`WebRtcLeg::poll_transmit`] (to the socket),
//!    [`WebRtcLeg::poll_rtp`] (to the session) and
//!    [`WebRtcLeg::poll_event`] until each returns `None`.
//!
//! # Limits
//!
//! A leg that has not completed ICE and DTLS within
//! [`WebRtcConfig::handshake_timeout`] of its answer, or that hears
//! nothing from its browser for [`WebRtcConfig::idle_timeout`] (a browser
//! sends STUN consent checks every ~5 s, RFC 7675 §5.1), is closed with a
//! [`WebRtcEvent::Closed`]; the caller drops it and returns its port.
//! Offers are refused above [`MAX_OFFER_LEN`] bytes before parsing; the
//! queues between the stack and the session hold at most
//! [`MAX_QUEUED`] items each, dropping (and counting) beyond that, so a
//! leg's memory is bounded whatever the browser sends.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::format::Codec as StackCodec;
use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use crate::codec::Codec;
use crate::error::WebRtcError;
use crate::sdp::NegotiatedMedia;

/// The largest offer we parse. A browser's audio-only offer is 2–5 KB.
pub const MAX_OFFER_LEN: usize = 32 * 1024;

/// The most datagrams, frames or events queued in a leg between two
/// drains; in a drained run loop a handful at most.
pub const MAX_QUEUED: usize = 64;

/// The RTP header we build for the session: no CSRC, no extension.
const RTP_HEADER_LEN: usize = 12;

/// Timeouts of a browser leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebRtcConfig {
    /// From the answer to ICE and DTLS done; a browser on the same network
    /// takes well under a second.
    pub handshake_timeout: Duration,
    /// No datagram at all from a connected browser for this long closes
    /// the leg (its page was closed or its network went away).
    pub idle_timeout: Duration,
}

impl Default for WebRtcConfig {
    fn default() -> WebRtcConfig {
        WebRtcConfig {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// What a leg reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebRtcEvent {
    /// ICE and DTLS are done: SRTP flows both ways.
    Connected,
    /// The leg is over; drop it and return its port.
    Closed(CloseReason),
}

/// Why a leg closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// ICE and DTLS were not done within [`WebRtcConfig::handshake_timeout`].
    HandshakeTimeout,
    /// Nothing from the browser for [`WebRtcConfig::idle_timeout`].
    Idle,
    /// The stack gave up on the connection (ICE disconnected, a DTLS alert,
    /// a fingerprint that does not match the offer).
    Failed,
}

/// A datagram for the leg's socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebRtcTransmit {
    /// The browser's address (the ICE pair's remote side).
    pub destination: SocketAddr,
    /// STUN, DTLS or SRTP/SRTCP bytes.
    pub contents: Vec<u8>,
}

/// A leg's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebRtcStats {
    /// Datagrams from the socket given to the stack.
    pub datagrams_in: u64,
    /// Datagrams the stack refused (not STUN/DTLS/SRTP of this leg, or
    /// failing authentication).
    pub datagrams_refused: u64,
    /// Audio frames from the browser handed to the session.
    pub frames_in: u64,
    /// Frames from the session sent to the browser.
    pub frames_out: u64,
    /// Frames, datagrams or events dropped because a queue was full, and
    /// packets from the session that were not G.711 of this leg.
    pub dropped: u64,
}

/// A frame received from the browser, until the session takes it.
#[derive(Debug)]
struct Frame {
    payload_type: u8,
    /// RTP timestamp in 8 kHz units.
    timestamp: u32,
    data: Arc<[u8]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Connecting { deadline: Instant },
    Connected,
    Closed,
}

/// One browser's audio leg (see the module docs).
pub struct WebRtcLeg {
    rtc: Rtc,
    config: WebRtcConfig,
    local: SocketAddr,
    mid: Mid,
    codec: Codec,
    payload_type: Pt,
    state: State,
    last_heard: Instant,
    /// str0m's next deadline.
    stack_deadline: Instant,
    transmits: VecDeque<WebRtcTransmit>,
    frames: VecDeque<Frame>,
    events: VecDeque<WebRtcEvent>,
    /// The stream the session receives: our SSRC and sequence numbers.
    session_ssrc: u32,
    session_sequence: u16,
    /// The session's RTP timestamps, extended past 32-bit wrap for str0m.
    outbound_timestamp: Option<(u32, u64)>,
    stats: WebRtcStats,
}

impl std::fmt::Debug for WebRtcLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcLeg")
            .field("local", &self.local)
            .field("codec", &self.codec)
            .field("state", &self.state)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl WebRtcLeg {
    /// Takes a browser's SDP offer and answers it for a leg on `local`
    /// (the leased port's address, which becomes our one ICE host
    /// candidate). `session_ssrc` is the SSRC of the RTP the session will
    /// see from this leg (from the caller's RNG).
    pub fn accept_offer(
        config: WebRtcConfig,
        now: Instant,
        local: SocketAddr,
        offer: &str,
        session_ssrc: u32,
    ) -> Result<(WebRtcLeg, String), WebRtcError> {
        if offer.len() > MAX_OFFER_LEN {
            return Err(WebRtcError::OfferTooLarge {
                len: offer.len(),
                max: MAX_OFFER_LEN,
            });
        }
        let offer =
            SdpOffer::from_sdp_string(offer).map_err(|e| WebRtcError::Offer(e.to_string()))?;
        let mut rtc = RtcConfig::new()
            .set_ice_lite(true)
            .clear_codecs()
            .enable_pcmu(true, false)
            .enable_pcma(true, false)
            .build(now);
        let candidate =
            Candidate::host(local, "udp").map_err(|e| WebRtcError::Candidate(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| WebRtcError::Offer(e.to_string()))?;

        let answer = answer.to_sdp_string();
        let mut transmits = VecDeque::new();
        let stack_deadline = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(at)) => break at,
                Ok(Output::Event(_)) => {}
                Ok(Output::Transmit(transmit)) => {
                    if transmits.len() < MAX_QUEUED {
                        transmits.push_back(WebRtcTransmit {
                            destination: transmit.destination,
                            contents: transmit.contents.into(),
                        });
                    }
                }
                Err(e) => return Err(WebRtcError::Offer(e.to_string())),
            }
        };
        // The answer's audio m-line and its first G.711 codec. str0m tells
        // a new m-line's mid by an event only once the connection is up, so
        // it is read from our own answer.
        let mid = audio_mid(&answer)?;
        let writer = rtc.writer(mid).ok_or(WebRtcError::NoAudio)?;
        let (codec, payload_type) = writer
            .payload_params()
            .find_map(|params| {
                let codec = match params.spec().codec {
                    StackCodec::PCMU => Codec::Pcmu,
                    StackCodec::PCMA => Codec::Pcma,
                    _ => return None,
                };
                Some((codec, params.pt()))
            })
            .ok_or(WebRtcError::NoCommonCodec)?;
        let leg = WebRtcLeg {
            rtc,
            config,
            local,
            mid,
            codec,
            payload_type,
            state: State::Connecting {
                deadline: now + config.handshake_timeout,
            },
            last_heard: now,
            stack_deadline,
            transmits,
            frames: VecDeque::new(),
            events: VecDeque::new(),
            session_ssrc,
            session_sequence: 0,
            outbound_timestamp: None,
            stats: WebRtcStats::default(),
        };
        Ok((leg, answer))
    }

    /// The codec the browser and we agreed on (we send it; we accept PCMU
    /// and PCMA both).
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The leg's socket address (our ICE candidate).
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The address the session is told the leg's RTP comes from and goes
    /// to. Never used on the wire: the driver gives the session's packets
    /// for this leg to [`WebRtcLeg::send_rtp`].
    pub fn session_peer(&self) -> SocketAddr {
        self.local
    }

    /// What the session needs to add this leg: G.711 with static payload
    /// types, no telephone-event (browsers send DTMF only as audio here),
    /// from [`WebRtcLeg::session_peer`].
    pub fn negotiated_media(&self) -> NegotiatedMedia {
        NegotiatedMedia::static_g711(self.codec, Some(self.session_peer()), None)
    }

    /// Whether ICE and DTLS are done.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Whether the leg has closed (a [`WebRtcEvent::Closed`] was queued).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The leg's counters.
    pub fn stats(&self) -> WebRtcStats {
        self.stats
    }

    /// A datagram from the leg's socket.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        if self.is_closed() {
            return;
        }
        self.stats.datagrams_in += 1;
        let Ok(receive) = Receive::new(Protocol::Udp, source, self.local, datagram) else {
            self.stats.datagrams_refused += 1;
            return;
        };
        let input = Input::Receive(now, receive);
        if !self.rtc.accepts(&input) {
            self.stats.datagrams_refused += 1;
            return;
        }
        self.last_heard = now;
        if self.rtc.handle_input(input).is_err() {
            self.stats.datagrams_refused += 1;
        }
        self.drain(now);
    }

    /// The deadline from [`WebRtcLeg::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        match self.state {
            State::Connecting { deadline } if now >= deadline => {
                return self.close(CloseReason::HandshakeTimeout);
            }
            State::Connected if now >= self.last_heard + self.config.idle_timeout => {
                return self.close(CloseReason::Idle);
            }
            _ => {}
        }
        if now >= self.stack_deadline {
            if self.rtc.handle_input(Input::Timeout(now)).is_err() {
                return self.close(CloseReason::Failed);
            }
            self.drain(now);
        }
    }

    /// An RTP packet the session sends to this leg (relayed or a prompt):
    /// its G.711 payload goes to the browser in SRTP. Anything else (a
    /// telephone-event, a codec the browser did not agree to) is counted
    /// in [`WebRtcStats::dropped`] and not sent; before the handshake is
    /// done nothing is sent.
    pub fn send_rtp(&mut self, now: Instant, packet: &[u8]) {
        if !self.is_connected() {
            return;
        }
        let Ok(reader) = rtp_rs::RtpReader::new(packet) else {
            self.stats.dropped += 1;
            return;
        };
        let payload_type = reader.payload_type();
        if payload_type != self.codec.static_payload_type() {
            self.stats.dropped += 1;
            return;
        }
        let timestamp = self.extend_timestamp(reader.timestamp());
        let Some(writer) = self.rtc.writer(self.mid) else {
            self.stats.dropped += 1;
            return;
        };
        let time = MediaTime::new(timestamp, Frequency::EIGHT_KHZ);
        match writer.write(self.payload_type, now, time, reader.payload()) {
            Ok(()) => self.stats.frames_out += 1,
            Err(_) => self.stats.dropped += 1,
        }
        self.drain(now);
    }

    /// The next datagram for the socket.
    pub fn poll_transmit(&mut self) -> Option<WebRtcTransmit> {
        self.transmits.pop_front()
    }

    /// The next frame from the browser as a plain RTP packet written to
    /// `out`, for the session; returns its length. A frame too large for
    /// `out` is dropped.
    pub fn poll_rtp(&mut self, out: &mut [u8]) -> Option<usize> {
        loop {
            let frame = self.frames.pop_front()?;
            let len = RTP_HEADER_LEN + frame.data.len();
            if len > out.len() {
                self.stats.dropped += 1;
                continue;
            }
            out[0] = 0x80;
            out[1] = frame.payload_type & 0x7f;
            out[2..4].copy_from_slice(&self.session_sequence.to_be_bytes());
            out[4..8].copy_from_slice(&frame.timestamp.to_be_bytes());
            out[8..12].copy_from_slice(&self.session_ssrc.to_be_bytes());
            out[RTP_HEADER_LEN..len].copy_from_slice(&frame.data);
            self.session_sequence = self.session_sequence.wrapping_add(1);
            return Some(len);
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<WebRtcEvent> {
        self.events.pop_front()
    }

    /// When to call [`WebRtcLeg::handle_timeout`]; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = match self.state {
            State::Closed => return None,
            State::Connecting { deadline } => deadline,
            State::Connected => self.last_heard + self.config.idle_timeout,
        };
        Some(own.min(self.stack_deadline))
    }

    /// Feeds str0m's output into our queues until it asks for a timeout:
    /// str0m requires a full drain after every input (its "single-mutation
    /// invariant").
    fn drain(&mut self, now: Instant) {
        loop {
            let output = match self.rtc.poll_output() {
                Ok(output) => output,
                Err(_) => return self.close(CloseReason::Failed),
            };
            match output {
                Output::Timeout(at) => {
                    self.stack_deadline = at;
                    return;
                }
                Output::Transmit(transmit) => {
                    if self.transmits.len() < MAX_QUEUED {
                        self.transmits.push_back(WebRtcTransmit {
                            destination: transmit.destination,
                            contents: transmit.contents.into(),
                        });
                    } else {
                        self.stats.dropped += 1;
                    }
                }
                Output::Event(event) => self.handle_event(now, event),
            }
        }
    }

    fn handle_event(&mut self, _now: Instant, event: Event) {
        match event {
            Event::Connected => {
                if matches!(self.state, State::Connecting { .. }) {
                    self.state = State::Connected;
                    self.push_event(WebRtcEvent::Connected);
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.close(CloseReason::Failed);
            }
            Event::MediaData(data) => {
                let codec = match data.params.spec().codec {
                    StackCodec::PCMU => Codec::Pcmu,
                    StackCodec::PCMA => Codec::Pcma,
                    _ => {
                        self.stats.dropped += 1;
                        return;
                    }
                };
                if self.frames.len() >= MAX_QUEUED {
                    self.stats.dropped += 1;
                    return;
                }
                self.stats.frames_in += 1;
                self.frames.push_back(Frame {
                    payload_type: codec.static_payload_type(),
                    timestamp: to_8khz(data.time),
                    data: data.data,
                });
            }
            _ => {}
        }
    }

    fn close(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.rtc.disconnect();
        self.transmits.clear();
        self.frames.clear();
        self.push_event(WebRtcEvent::Closed(reason));
    }

    fn push_event(&mut self, event: WebRtcEvent) {
        // Connected and Closed come once each: the queue never fills.
        if self.events.len() < MAX_QUEUED {
            self.events.push_back(event);
        }
    }

    /// Extends the session's 32-bit RTP timestamps past wrap (str0m takes
    /// a 64-bit media time).
    fn extend_timestamp(&mut self, timestamp: u32) -> u64 {
        let extended = match self.outbound_timestamp {
            None => u64::from(timestamp),
            Some((last, last_extended)) => {
                let delta = timestamp.wrapping_sub(last) as i32;
                last_extended.saturating_add_signed(i64::from(delta))
            }
        };
        self.outbound_timestamp = Some((timestamp, extended));
        extended
    }
}

/// The `a=mid` of the first accepted `m=audio` section of an answer we
/// wrote. An audio section refused with port 0 means no codec in common
/// (str0m refuses it so when the offer has neither PCMU nor PCMA).
fn audio_mid(answer: &str) -> Result<Mid, WebRtcError> {
    let mut in_audio = false;
    let mut refused_audio = false;
    for line in answer.lines() {
        if let Some(media) = line.strip_prefix("m=") {
            in_audio = media.starts_with("audio ");
            if in_audio && media.starts_with("audio 0 ") {
                refused_audio = true;
                in_audio = false;
            }
        } else if in_audio && let Some(mid) = line.strip_prefix("a=mid:") {
            return Ok(Mid::from(mid.trim()));
        }
    }
    Err(if refused_audio {
        WebRtcError::NoCommonCodec
    } else {
        WebRtcError::NoAudio
    })
}

/// A media time as a 32-bit RTP timestamp at 8 kHz (G.711's clock).
fn to_8khz(time: MediaTime) -> u32 {
    let denom = u64::from(time.denom()).max(1);
    let ticks = if denom == 8_000 {
        time.numer()
    } else {
        (u128::from(time.numer()) * 8_000 / u128::from(denom)) as u64
    };
    ticks as u32
}

#[cfg(test)]
mod tests;
