//! The media of one call, sans-IO: up to two legs (the caller and the
//! agent), each with its inbound checks, its strict-RTP guard (which
//! source is the peer, and how much it is sent before that is known: see
//! [`crate::strict`]), DTMF detection and one outbound stream; prompts paced on a 20 ms grid; and, once
//! bridged, a [`RelayPath`] each way.
//!
//! Run loop (the [`crate::driver`] task does exactly this):
//! 1. feed each datagram to [`MediaSession::handle_datagram`]; if it
//!    returns a [`Transmit`], send `out[..len]` from that leg's socket;
//! 2. on a timer, call [`MediaSession::handle_timeout`];
//! 3. drain [`MediaSession::poll_transmit`] and [`MediaSession::poll_event`]
//!    until both return `None`;
//! 4. sleep until [`MediaSession::poll_timeout`].
//!
//! Every method takes `now`; the core never reads a clock.
//!
//! Each leg's outbound stream has one source at a time: idle, a playback,
//! or the relay from the other leg. The stream (SSRC, sequence number,
//! timestamp) moves from one source to the next, so a peer hears one
//! continuous RTP stream for the whole call.
//!
//! A leg whose offer/answer agreed on SRTP ([`NegotiatedMedia::srtp`]) has
//! an [`SrtpReceiver`] with the peer's key and an [`SrtpSender`] with ours:
//! every datagram from it is authenticated and decrypted into the
//! session's own buffer before anything else looks at it (a packet that
//! fails is counted and dropped: it does not reach the guard, refresh activity,
//! carry digits or reach the other leg), and every packet we send to it
//! (relayed, prompt or digit) is encrypted in place in `out`. A plain leg
//! stays plain, so an SRTP caller and a plain agent bridge with one
//! decryption and no encryption per relayed packet each way.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::dtmf::{DtmfDigit, DtmfSource};
use crate::error::SessionError;
use crate::inband::InbandDtmfDetector;
use crate::listen::{Listener, SpeechLimits, Voice};
use crate::playback::{Pacer, Playback, PlaybackId};
use crate::recording::{Recorder, RecordingEnd, RecordingLimits};
use crate::relay::RelayPath;
use crate::rtp::MAX_PACKET_LEN;
use crate::rtp::{
    InboundStats, InboundStream, OutboundStream, RtpPayload, TelephoneEventGenerator,
};
use crate::sdp::{NegotiatedMedia, SrtpParameters};
use crate::srtp::{SrtpReceiver, SrtpSender, SrtpStats};
use crate::strict::{Admission, GuardStats, PeerGuard, StrictConfig};

/// The two legs of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The patient's leg (answered by us).
    Caller,
    /// The agent's leg (our outbound INVITE).
    Agent,
}

impl Leg {
    /// Both legs.
    pub const ALL: [Leg; 2] = [Leg::Caller, Leg::Agent];

    /// The other leg.
    pub const fn other(self) -> Leg {
        match self {
            Leg::Caller => Leg::Agent,
            Leg::Agent => Leg::Caller,
        }
    }

    const fn index(self) -> usize {
        match self {
            Leg::Caller => 0,
            Leg::Agent => 1,
        }
    }
}

/// When the in-band (Goertzel) detector runs on a leg.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InbandPolicy {
    /// Only when the leg negotiated no telephone-event and has sent none,
    /// and not while bridged (phones that send RFC 4733 would otherwise be
    /// heard twice, and the bridge is the hot path).
    #[default]
    Auto,
    /// On every audio packet, bridged or not.
    Always,
    /// Never.
    Never,
}

/// Settings of a media session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Report [`MediaEvent::Inactive`] after this long without a valid
    /// packet on a leg we expect media from; `None` disables it.
    pub inactivity_timeout: Option<Duration>,
    /// In-band DTMF detection.
    pub inband_dtmf: InbandPolicy,
    /// Strict RTP: learning the peer, the budget before it is confirmed.
    pub strict: StrictConfig,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            inactivity_timeout: Some(Duration::from_secs(30)),
            inband_dtmf: InbandPolicy::Auto,
            strict: StrictConfig::default(),
        }
    }
}

/// What the session reports to the call controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    /// A DTMF digit from a leg.
    Dtmf {
        /// The leg it came from.
        leg: Leg,
        /// The key.
        digit: DtmfDigit,
        /// How it was signalled.
        source: DtmfSource,
    },
    /// A leg's peer was confirmed (by its signalled address or a run of
    /// packets), or moved to a new address (re-latch): we now send there
    /// and accept packets from there only.
    Latched {
        /// The leg.
        leg: Leg,
        /// Where its RTP comes from.
        address: SocketAddr,
    },
    /// Voice started on a leg that is listened to (barge-in for a speech
    /// menu).
    SpeechStarted {
        /// The leg.
        leg: Leg,
    },
    /// An utterance ended on a leg that is listened to; take it with
    /// [`MediaSession::take_utterance`].
    SpeechEnded {
        /// The leg.
        leg: Leg,
    },
    /// A playback ended.
    PlaybackEnded {
        /// The leg it played to.
        leg: Leg,
        /// The request's id.
        id: PlaybackId,
        /// `true` when every frame was sent; `false` when stopped, replaced,
        /// interrupted by a digit (barge-in) or by the bridge.
        completed: bool,
    },
    /// No valid packet from a leg for the configured time (reported once
    /// until packets come again).
    Inactive {
        /// The silent leg.
        leg: Leg,
        /// How long it has been silent.
        silent_for: Duration,
    },
    /// A leg's recording ended by itself (silence, maximum length); its
    /// last samples wait in [`MediaSession::stop_recording`].
    RecordingEnded {
        /// The recorded leg.
        leg: Leg,
        /// Why.
        end: RecordingEnd,
    },
}

/// A packet to send: `out[..len]` from `leg`'s socket to `destination`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The leg whose socket sends it.
    pub leg: Leg,
    /// The peer's address.
    pub destination: SocketAddr,
    /// Bytes written to the output buffer.
    pub len: usize,
}

/// Per-leg counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LegStats {
    /// Inbound validation counters.
    pub inbound: InboundStats,
    /// Packets written on the outbound stream (prompts and relay).
    pub packets_sent: u64,
    /// The confirmed peer, once confirmed.
    pub latched: Option<SocketAddr>,
    /// Strict-RTP counters: packets dropped while learning or as foreign,
    /// packets withheld before confirmation, re-latches.
    pub guard: GuardStats,
    /// SRTP counters, on an SRTP leg.
    pub srtp: Option<LegSrtpStats>,
}

/// SRTP counters of one leg.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LegSrtpStats {
    /// What we protected and sent.
    pub sent: SrtpStats,
    /// What the peer sent: accepted, and refused by cause.
    pub received: SrtpStats,
}

/// The SRTP contexts of one leg: ours to protect, the peer's to check.
#[derive(Debug)]
struct LegSrtp {
    parameters: SrtpParameters,
    sender: SrtpSender,
    receiver: SrtpReceiver,
}

impl LegSrtp {
    fn new(parameters: &SrtpParameters) -> LegSrtp {
        LegSrtp {
            sender: SrtpSender::new(parameters.suite, &parameters.local_key),
            receiver: LegSrtp::receiver(parameters),
            parameters: parameters.clone(),
        }
    }

    fn receiver(parameters: &SrtpParameters) -> SrtpReceiver {
        SrtpReceiver::new(parameters.suite, &parameters.remote_key)
            .with_mki(parameters.remote_mki)
            .with_lifetime(parameters.remote_lifetime)
    }

    /// A re-INVITE's keys. Our sender keeps its packet index while our key
    /// is the same (a new context would reuse keystream); the peer's
    /// receiver starts over only when the peer's key or suite changed.
    fn update(&mut self, parameters: &SrtpParameters) {
        if parameters.local_key != self.parameters.local_key {
            self.sender = SrtpSender::new(parameters.suite, &parameters.local_key);
        } else {
            self.sender.set_suite(parameters.suite);
        }
        let old = &self.parameters;
        if (
            parameters.suite,
            &parameters.remote_key,
            parameters.remote_mki,
        ) != (old.suite, &old.remote_key, old.remote_mki)
            || parameters.remote_lifetime != old.remote_lifetime
        {
            self.receiver = LegSrtp::receiver(parameters);
        }
        self.parameters = parameters.clone();
    }

    fn stats(&self) -> LegSrtpStats {
        LegSrtpStats {
            sent: self.sender.stats(),
            received: self.receiver.stats(),
        }
    }
}

/// Encrypts a packet we send to `leg` in place when the leg is SRTP;
/// returns the length to send, `None` to drop it.
fn seal(srtp: &mut Option<LegSrtp>, leg: Leg, out: &mut [u8], len: usize) -> Option<usize> {
    let Some(srtp) = srtp.as_mut() else {
        return Some(len);
    };
    match srtp.sender.protect(out, len) {
        Ok(len) => Some(len),
        Err(error) => {
            tracing::debug!(?leg, %error, "cannot protect an RTP packet");
            None
        }
    }
}

/// The source of a leg's outbound stream.
#[derive(Debug)]
enum Egress {
    Idle(OutboundStream),
    Prompt {
        stream: OutboundStream,
        playback: Playback,
        pacer: Pacer,
        barge_in: bool,
    },
    Relay(RelayPath),
}

impl Egress {
    fn into_stream(self) -> OutboundStream {
        match self {
            Egress::Idle(stream) | Egress::Prompt { stream, .. } => stream,
            Egress::Relay(path) => path.into_stream(),
        }
    }

    fn stream(&self) -> &OutboundStream {
        match self {
            Egress::Idle(stream) | Egress::Prompt { stream, .. } => stream,
            Egress::Relay(path) => path.stream(),
        }
    }
}

/// The next RFC 4733 packet due for a leg, written into `out`.
fn poll_dtmf(state: &mut LegState, now: Instant, out: &mut [u8]) -> Option<usize> {
    let payload_type = state.media.telephone_event()?;
    let sender = &mut state.dtmf;
    if !sender.is_busy() {
        sender.pacer = None;
        return None;
    }
    sender.pacer.get_or_insert_with(|| Pacer::new(now));
    loop {
        let media_time = sender.pacer.as_mut()?.poll(now)?;
        if sender.pause_slots > 0 {
            sender.pause_slots -= 1;
            continue;
        }
        let stream = match &mut state.egress {
            Egress::Idle(stream) | Egress::Prompt { stream, .. } => stream,
            Egress::Relay(path) => path.stream_mut(),
        };
        let event = match &mut sender.active {
            Some(event) => event,
            None => {
                let digit = sender.queue.pop_front()?;
                stream.begin_talkspurt(media_time);
                sender.active.insert(ActiveEvent {
                    generator: TelephoneEventGenerator::new(
                        digit,
                        DTMF_DURATION_SAMPLES,
                        DTMF_VOLUME,
                    ),
                    timestamp: stream.next_timestamp(),
                    start: media_time,
                })
            }
        };
        match event.generator.next() {
            Some(packet) => {
                return stream
                    .write_event(
                        payload_type,
                        event.timestamp,
                        packet.event,
                        packet.marker,
                        out,
                    )
                    .ok();
            }
            None => {
                stream.end_event(event.start, event.generator.duration());
                sender.active = None;
                if let Egress::Relay(path) = &mut state.egress {
                    path.rebase_next();
                }
                if sender.queue.is_empty() {
                    sender.pacer = None;
                    return None;
                }
                sender.pause_slots = DTMF_PAUSE_SLOTS;
            }
        }
    }
}

/// Takes a leg's stream out of its egress, leaving a placeholder.
fn take_stream(egress: &mut Egress) -> OutboundStream {
    std::mem::replace(egress, Egress::Idle(OutboundStream::from_parts(0, 0, 0))).into_stream()
}

#[derive(Debug)]
struct LegState {
    media: NegotiatedMedia,
    srtp: Option<LegSrtp>,
    inbound: InboundStream,
    guard: PeerGuard,
    inband: InbandDtmfDetector,
    saw_telephone_event: bool,
    egress: Egress,
    dtmf: DtmfSender,
    last_activity: Instant,
    inactive_reported: bool,
    /// The leg's audio is being recorded (a voicemail).
    recorder: Option<Recorder>,
    /// Voice activity for a speech menu (boxed: most of a call never listens).
    listener: Option<Box<Listener>>,
}

/// Duration of each digit we send: 100 ms (RFC 4733 §2.5.1.2 leaves it to
/// the sender; Q.24 needs at least 40 ms).
const DTMF_DURATION_SAMPLES: u16 = 800;
/// Volume of the digits we send, −dBm0.
const DTMF_VOLUME: u8 = 10;
/// 20 ms slots of pause between two digits we send (60 ms).
const DTMF_PAUSE_SLOTS: u8 = 3;

/// RFC 4733 digits queued for a leg. While it is busy, the leg's audio
/// (prompt frames, relayed packets) is not sent: the events replace it.
#[derive(Debug, Default)]
struct DtmfSender {
    queue: VecDeque<DtmfDigit>,
    active: Option<ActiveEvent>,
    pacer: Option<Pacer>,
    pause_slots: u8,
}

#[derive(Debug)]
struct ActiveEvent {
    generator: TelephoneEventGenerator,
    timestamp: u32,
    start: Instant,
}

impl DtmfSender {
    fn is_busy(&self) -> bool {
        self.active.is_some() || !self.queue.is_empty()
    }

    fn deadline(&self) -> Option<Instant> {
        self.pacer
            .filter(|_| self.is_busy())
            .map(|pacer| pacer.deadline())
    }
}

impl LegState {
    /// Replaces the egress, handing the stream over; reports the end of a
    /// playback that was going on.
    fn switch_egress(
        &mut self,
        leg: Leg,
        events: &mut VecDeque<MediaEvent>,
        next: impl FnOnce(OutboundStream) -> Egress,
    ) {
        let placeholder = Egress::Idle(OutboundStream::from_parts(0, 0, 0));
        let previous = std::mem::replace(&mut self.egress, placeholder);
        if let Egress::Prompt { playback, .. } = &previous {
            events.push_back(MediaEvent::PlaybackEnded {
                leg,
                id: playback.id(),
                completed: false,
            });
        }
        self.egress = next(previous.into_stream());
    }

    fn stop_playback(&mut self, leg: Leg, events: &mut VecDeque<MediaEvent>) {
        if matches!(self.egress, Egress::Prompt { .. }) {
            self.switch_egress(leg, events, Egress::Idle);
        }
    }

    fn inband_active(&self, policy: InbandPolicy, bridged: bool) -> bool {
        match policy {
            InbandPolicy::Never => false,
            InbandPolicy::Always => true,
            InbandPolicy::Auto => {
                self.media.telephone_event().is_none() && !self.saw_telephone_event && !bridged
            }
        }
    }

    fn inactivity_deadline(&self, timeout: Option<Duration>) -> Option<Instant> {
        let expects_media = self.media.direction.receives();
        timeout
            .filter(|_| expects_media && !self.inactive_reported)
            .map(|timeout| self.last_activity + timeout)
    }
}

/// The sans-IO media core of one call.
#[derive(Debug)]
pub struct MediaSession {
    config: SessionConfig,
    legs: [Option<LegState>; 2],
    bridged: bool,
    events: VecDeque<MediaEvent>,
    /// Where SRTP datagrams are decrypted (allocated once per call).
    plaintext: Box<[u8]>,
}

impl MediaSession {
    /// A session with no legs yet.
    pub fn new(config: SessionConfig) -> MediaSession {
        MediaSession {
            config,
            legs: [None, None],
            bridged: false,
            events: VecDeque::new(),
            plaintext: vec![0; MAX_PACKET_LEN].into_boxed_slice(),
        }
    }

    /// Adds (or replaces) a leg after offer/answer. Its outbound stream
    /// gets a random SSRC, sequence number and timestamp from `rng`.
    pub fn add_leg<R: RngCore + ?Sized>(
        &mut self,
        now: Instant,
        leg: Leg,
        media: NegotiatedMedia,
        rng: &mut R,
    ) {
        self.legs[leg.index()] = Some(LegState {
            inbound: InboundStream::new(media.payloads),
            guard: PeerGuard::new(self.config.strict, media.remote),
            inband: InbandDtmfDetector::new(),
            saw_telephone_event: false,
            egress: Egress::Idle(OutboundStream::new(rng)),
            dtmf: DtmfSender::default(),
            last_activity: now,
            inactive_reported: false,
            recorder: None,
            listener: None,
            srtp: media.srtp.as_ref().map(LegSrtp::new),
            media,
        });
        if self.bridged {
            self.rebuild_relays();
        }
    }

    /// Applies a new offer/answer to a leg (re-INVITE: hold, unhold, new
    /// address or codecs). A new address starts learning again.
    pub fn update_leg(
        &mut self,
        now: Instant,
        leg: Leg,
        media: NegotiatedMedia,
    ) -> Result<(), SessionError> {
        let state = self.legs[leg.index()]
            .as_mut()
            .ok_or(SessionError::MissingLeg(leg))?;
        state.inbound.set_payloads(media.payloads);
        state.guard.resignal(media.remote);
        match (&mut state.srtp, &media.srtp) {
            (_, None) => state.srtp = None,
            (Some(current), Some(parameters)) => current.update(parameters),
            (None, Some(parameters)) => state.srtp = Some(LegSrtp::new(parameters)),
        }
        state.media = media;
        state.last_activity = now;
        state.inactive_reported = false;
        if self.bridged {
            self.rebuild_relays();
        }
        Ok(())
    }

    /// Removes a leg (its call leg ended); a bridge ends with it.
    pub fn remove_leg(&mut self, leg: Leg) {
        if let Some(mut state) = self.legs[leg.index()].take() {
            state.stop_playback(leg, &mut self.events);
        }
        self.unbridge();
    }

    /// Whether a leg is present.
    pub fn has_leg(&self, leg: Leg) -> bool {
        self.legs[leg.index()].is_some()
    }

    /// Whether the legs are bridged.
    pub fn is_bridged(&self) -> bool {
        self.bridged
    }

    /// The negotiated media of a leg.
    pub fn leg_media(&self, leg: Leg) -> Option<&NegotiatedMedia> {
        self.legs[leg.index()].as_ref().map(|state| &state.media)
    }

    /// Counters of a leg.
    pub fn leg_stats(&self, leg: Leg) -> Option<LegStats> {
        self.legs[leg.index()].as_ref().map(|state| LegStats {
            inbound: state.inbound.stats(),
            packets_sent: state.egress.stream().packets_sent(),
            latched: state.guard.confirmed(),
            guard: state.guard.stats(),
            srtp: state.srtp.as_ref().map(LegSrtp::stats),
        })
    }

    /// Starts a playback on a leg, replacing what fed its stream (a
    /// previous playback ends with `completed: false`; while bridged, the
    /// relay into this leg pauses and resumes when the playback ends). The first packet
    /// is due at `now`. With `barge_in`, a digit from the leg stops it.
    pub fn play(
        &mut self,
        now: Instant,
        leg: Leg,
        playback: Playback,
        barge_in: bool,
    ) -> Result<(), SessionError> {
        let state = self.legs[leg.index()]
            .as_mut()
            .ok_or(SessionError::MissingLeg(leg))?;
        state.switch_egress(leg, &mut self.events, |stream| Egress::Prompt {
            stream,
            playback,
            pacer: Pacer::new(now),
            barge_in,
        });
        Ok(())
    }

    /// Starts recording what `leg` sends (decoded to linear PCM), until
    /// [`MediaSession::stop_recording`] or a limit ([`MediaEvent::RecordingEnded`]).
    /// A recording in progress starts over.
    pub fn record(&mut self, leg: Leg, limits: RecordingLimits) {
        if let Some(state) = self.legs[leg.index()].as_mut() {
            state.recorder = Some(Recorder::new(limits));
        }
    }

    /// Starts listening to `leg` for speech ([`crate::listen`]):
    /// [`MediaEvent::SpeechStarted`] when voice starts, then
    /// [`MediaEvent::SpeechEnded`] with the utterance waiting in
    /// [`MediaSession::take_utterance`]. A listener in place starts over.
    pub fn listen(&mut self, leg: Leg, limits: SpeechLimits) {
        if let Some(state) = self.legs[leg.index()].as_mut() {
            state.listener = Some(Box::new(Listener::new(limits)));
        }
    }

    /// Stops listening to `leg`; an utterance not taken is dropped.
    pub fn stop_listening(&mut self, leg: Leg) {
        if let Some(state) = self.legs[leg.index()].as_mut() {
            state.listener = None;
        }
    }

    /// The utterance [`MediaEvent::SpeechEnded`] announced (8 kHz linear
    /// PCM), once.
    pub fn take_utterance(&mut self, leg: Leg) -> Option<Vec<i16>> {
        self.legs[leg.index()]
            .as_mut()?
            .listener
            .as_mut()?
            .take_utterance()
    }

    /// Whether `leg` is being recorded.
    pub fn is_recording(&self, leg: Leg) -> bool {
        self.legs[leg.index()]
            .as_ref()
            .is_some_and(|state| state.recorder.is_some())
    }

    /// Appends the samples recorded from `leg` since the last call to `out`
    /// (call it after each datagram, so that memory stays bounded).
    pub fn drain_recorded(&mut self, leg: Leg, out: &mut Vec<i16>) {
        if let Some(recorder) = self.legs[leg.index()]
            .as_mut()
            .and_then(|state| state.recorder.as_mut())
        {
            recorder.drain_into(out);
        }
    }

    /// Ends `leg`'s recording: appends its last samples to `out` and
    /// returns how many samples it took in all (`None`: none was going).
    pub fn stop_recording(&mut self, leg: Leg, out: &mut Vec<i16>) -> Option<u32> {
        let mut recorder = self.legs[leg.index()].as_mut()?.recorder.take()?;
        recorder.drain_into(out);
        Some(recorder.samples())
    }

    /// Stops the playback on a leg, if any.
    pub fn stop(&mut self, leg: Leg) {
        if let Some(state) = self.legs[leg.index()].as_mut() {
            state.stop_playback(leg, &mut self.events);
        }
        self.restore_relays();
    }

    /// While bridged, a leg whose playback ended (or was stopped) goes
    /// back to hearing the other leg, on the same outbound stream.
    fn restore_relays(&mut self) {
        if !self.bridged {
            return;
        }
        let [caller, agent] = &mut self.legs;
        let (Some(caller), Some(agent)) = (caller.as_mut(), agent.as_mut()) else {
            return;
        };
        if matches!(caller.egress, Egress::Idle(_)) {
            let stream = take_stream(&mut caller.egress);
            caller.egress = Egress::Relay(RelayPath::new(&agent.media, &caller.media, stream));
        }
        if matches!(agent.egress, Egress::Idle(_)) {
            let stream = take_stream(&mut agent.egress);
            agent.egress = Egress::Relay(RelayPath::new(&caller.media, &agent.media, stream));
        }
    }

    /// Queues digits to send to a leg as RFC 4733 telephone-events (e.g.
    /// digits the caller sent by SIP INFO, passed on to the agent): 100 ms
    /// each, 60 ms apart, on the leg's outbound stream. Audio to the leg
    /// pauses while they are sent.
    pub fn send_dtmf(
        &mut self,
        now: Instant,
        leg: Leg,
        digits: &[DtmfDigit],
    ) -> Result<(), SessionError> {
        let state = self.legs[leg.index()]
            .as_mut()
            .ok_or(SessionError::MissingLeg(leg))?;
        if state.media.telephone_event().is_none() {
            return Err(SessionError::NoTelephoneEvent(leg));
        }
        state.dtmf.queue.extend(digits.iter().copied());
        state.dtmf.pacer.get_or_insert_with(|| Pacer::new(now));
        Ok(())
    }

    /// Bridges the legs: each leg's packets are relayed to the other,
    /// continuing the other's outbound stream. Playbacks on both end.
    pub fn bridge(&mut self) -> Result<(), SessionError> {
        for leg in Leg::ALL {
            if !self.has_leg(leg) {
                return Err(SessionError::MissingLeg(leg));
            }
        }
        self.bridged = true;
        self.rebuild_relays();
        Ok(())
    }

    /// Ends the bridge; both streams go idle (ready for prompts).
    pub fn unbridge(&mut self) {
        self.bridged = false;
        for state in self.legs.iter_mut().flatten() {
            if matches!(state.egress, Egress::Relay(_)) {
                let placeholder = Egress::Idle(OutboundStream::from_parts(0, 0, 0));
                let previous = std::mem::replace(&mut state.egress, placeholder);
                state.egress = Egress::Idle(previous.into_stream());
            }
        }
    }

    fn rebuild_relays(&mut self) {
        let [caller, agent] = &mut self.legs;
        let (Some(caller), Some(agent)) = (caller.as_mut(), agent.as_mut()) else {
            return;
        };
        let caller_media = caller.media.clone();
        let agent_media = agent.media.clone();
        caller.switch_egress(Leg::Caller, &mut self.events, |stream| {
            Egress::Relay(RelayPath::new(&agent_media, &caller_media, stream))
        });
        agent.switch_egress(Leg::Agent, &mut self.events, |stream| {
            Egress::Relay(RelayPath::new(&caller_media, &agent_media, stream))
        });
    }

    /// Handles one datagram received on `leg`'s socket from `source`.
    /// When the legs are bridged, the relayed packet is written to `out`
    /// and returned as a [`Transmit`] on the other leg. On an SRTP leg the
    /// datagram must be SRTP from the peer's key; what goes to an SRTP leg
    /// is SRTP with ours.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        leg: Leg,
        source: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Option<Transmit> {
        // A barge-in on a bridged leg (previous packet) resumes the relay.
        self.restore_relays();
        let policy = self.config.inband_dtmf;
        let bridged = self.bridged;
        let [caller, agent] = &mut self.legs;
        let (state, other) = match leg {
            Leg::Caller => (caller.as_mut()?, agent.as_mut()),
            Leg::Agent => (agent.as_mut()?, caller.as_mut()),
        };
        let datagram = match state.srtp.as_mut() {
            None => datagram,
            Some(srtp) => match srtp.receiver.unprotect(datagram, &mut self.plaintext) {
                Ok(len) => &self.plaintext[..len],
                Err(error) => {
                    tracing::trace!(?leg, %source, %error, "dropped SRTP datagram");
                    return None;
                }
            },
        };
        let packet = match state.inbound.parse(datagram) {
            Ok(packet) => packet,
            Err(error) => {
                tracing::trace!(?leg, %source, %error, "dropped datagram");
                return None;
            }
        };
        match state.guard.admit(source, packet.ssrc, packet.sequence) {
            Admission::Accept => {}
            Admission::Confirmed(address) => {
                self.events.push_back(MediaEvent::Latched { leg, address });
            }
            Admission::Learning | Admission::Foreign => return None,
        }
        let digit = state.inbound.accept(&packet);
        state.last_activity = now;
        state.inactive_reported = false;
        let mut detected = digit.map(|digit| (digit, DtmfSource::TelephoneEvent));
        match packet.payload {
            RtpPayload::TelephoneEvent(_) => state.saw_telephone_event = true,
            RtpPayload::Audio { codec, samples } => {
                if let Some(recorder) = state.recorder.as_mut()
                    && let Some(end) = recorder.push(packet.ssrc, packet.timestamp, codec, samples)
                {
                    self.events
                        .push_back(MediaEvent::RecordingEnded { leg, end });
                }
                if let Some(listener) = state.listener.as_mut() {
                    match listener.push(codec, samples) {
                        Some(Voice::Started) => {
                            self.events.push_back(MediaEvent::SpeechStarted { leg });
                        }
                        Some(Voice::Ended) => {
                            self.events.push_back(MediaEvent::SpeechEnded { leg });
                        }
                        None => {}
                    }
                }
                if state.inband_active(policy, bridged)
                    && let Some(digit) = state.inband.process_encoded(codec, samples)
                {
                    detected = detected.or(Some((digit, DtmfSource::InBand)));
                }
            }
        }
        if let Some((digit, source)) = detected {
            self.events
                .push_back(MediaEvent::Dtmf { leg, digit, source });
            if matches!(state.egress, Egress::Prompt { barge_in: true, .. }) {
                state.stop_playback(leg, &mut self.events);
            }
        }
        let other = other?;
        let Egress::Relay(path) = &mut other.egress else {
            return None;
        };
        if !other.media.direction.sends() || other.dtmf.is_busy() {
            return None; // the other peer holds: it does not want our media
        }
        let destination = other.guard.destination()?;
        match path.relay_packet(now, &packet, out) {
            Ok(relayed) => relayed
                .bytes_to_send()
                .and_then(|len| seal(&mut other.srtp, leg.other(), out, len))
                .map(|len| Transmit {
                    leg: leg.other(),
                    destination,
                    len,
                }),
            Err(error) => {
                tracing::debug!(?leg, %error, "relay failed");
                None
            }
        }
    }

    /// Checks the inactivity deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        let timeout = self.config.inactivity_timeout;
        for leg in Leg::ALL {
            let Some(state) = self.legs[leg.index()].as_mut() else {
                continue;
            };
            if state
                .inactivity_deadline(timeout)
                .is_some_and(|deadline| now >= deadline)
            {
                state.inactive_reported = true;
                let silent_for = now.saturating_duration_since(state.last_activity);
                self.events
                    .push_back(MediaEvent::Inactive { leg, silent_for });
            }
        }
    }

    /// The next prompt packet due at `now`, written into `out`.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<Transmit> {
        let mut restore = false;
        for leg in Leg::ALL {
            let Some(state) = self.legs[leg.index()].as_mut() else {
                continue;
            };
            while let Some(len) = poll_dtmf(state, now, out) {
                if state.media.direction.sends()
                    && let Some(destination) = state.guard.destination()
                    && let Some(len) = seal(&mut state.srtp, leg, out, len)
                {
                    return Some(Transmit {
                        leg,
                        destination,
                        len,
                    });
                }
            }
            while let Egress::Prompt {
                stream,
                playback,
                pacer,
                ..
            } = &mut state.egress
            {
                let Some(media_time) = pacer.poll(now) else {
                    break;
                };
                let Some(frame) = playback.next_frame(state.media.codec) else {
                    let id = playback.id();
                    let placeholder = Egress::Idle(OutboundStream::from_parts(0, 0, 0));
                    let finished = std::mem::replace(&mut state.egress, placeholder);
                    state.egress = Egress::Idle(finished.into_stream());
                    self.events.push_back(MediaEvent::PlaybackEnded {
                        leg,
                        id,
                        completed: true,
                    });
                    restore = true;
                    break;
                };
                if state.dtmf.is_busy() {
                    continue; // digits being sent replace the prompt's audio
                }
                if frame.starts_prompt {
                    stream.begin_talkspurt(media_time);
                }
                let len = match stream.write_audio(
                    media_time,
                    state.media.payload_type,
                    frame.payload,
                    out,
                ) {
                    Ok(len) => len,
                    Err(error) => {
                        tracing::warn!(?leg, %error, "cannot write prompt packet");
                        break;
                    }
                };
                // On hold, or nowhere to send yet: the playback goes on silently.
                if state.media.direction.sends()
                    && let Some(destination) = state.guard.destination()
                    && let Some(len) = seal(&mut state.srtp, leg, out, len)
                {
                    return Some(Transmit {
                        leg,
                        destination,
                        len,
                    });
                }
            }
        }
        if restore {
            self.restore_relays();
        }
        None
    }

    /// The next event for the call controller.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// When to call [`MediaSession::poll_transmit`] / [`MediaSession::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timeout = self.config.inactivity_timeout;
        self.legs
            .iter()
            .flatten()
            .flat_map(|state| {
                let pacing = match &state.egress {
                    Egress::Prompt { pacer, .. } => Some(pacer.deadline()),
                    _ => None,
                };
                [
                    pacing,
                    state.inactivity_deadline(timeout),
                    state.dtmf.deadline(),
                ]
            })
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod srtp_tests;
#[cfg(test)]
mod tests;
