//! A browser made of str0m (full ICE, DTLS client, as Chrome is) against a
//! [`WebRtcLeg`], in one thread on a virtual clock that jumps to the next
//! deadline of either side: no sockets, no sleeps.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

use super::*;

const LEG: &str = "127.0.0.1:40000";
const BROWSER: &str = "127.0.0.1:50000";
const SSRC: u32 = 0x5e55_1017;

fn config() -> WebRtcConfig {
    WebRtcConfig {
        handshake_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(8),
    }
}

/// The browser's side.
struct Browser {
    rtc: Rtc,
    addr: SocketAddr,
    mid: Mid,
    deadline: Instant,
    outbox: Vec<(SocketAddr, Vec<u8>)>,
    connected: bool,
    received: Vec<Vec<u8>>,
}

impl Browser {
    fn offer(
        now: Instant,
        codecs: impl FnOnce(RtcConfig) -> RtcConfig,
    ) -> (Browser, String, SdpPendingOffer) {
        let addr: SocketAddr = BROWSER.parse().unwrap();
        let mut rtc = codecs(RtcConfig::new().clear_codecs()).build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let browser = Browser {
            rtc,
            addr,
            mid,
            deadline: now,
            outbox: Vec::new(),
            connected: false,
            received: Vec::new(),
        };
        (browser, offer.to_sdp_string(), pending)
    }

    fn g711() -> impl FnOnce(RtcConfig) -> RtcConfig {
        |c| c.enable_pcmu(true, false).enable_pcma(true, false)
    }

    fn drain(&mut self) {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(at) => {
                    self.deadline = at;
                    return;
                }
                Output::Transmit(t) => self.outbox.push((t.destination, t.contents.into())),
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaData(data)) => self.received.push(data.data.to_vec()),
                Output::Event(_) => {}
            }
        }
    }

    fn receive(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let receive = Receive::new(Protocol::Udp, from, self.addr, bytes).unwrap();
        self.rtc.handle_input(Input::Receive(now, receive)).unwrap();
        self.drain();
    }

    fn send_frame(&mut self, now: Instant, n: u64, payload: &[u8]) {
        let writer = self.rtc.writer(self.mid).unwrap();
        let pt = writer.payload_params().next().unwrap().pt();
        let time = MediaTime::new(n * 160, Frequency::EIGHT_KHZ);
        writer.write(pt, now, time, payload).unwrap();
        self.drain();
    }
}

/// Both sides and the virtual clock.
struct Pair {
    now: Instant,
    browser: Browser,
    leg: WebRtcLeg,
    /// Drop the browser's DTLS (and so its SRTP): it answers ICE only.
    browser_dtls_lost: bool,
    /// Deliver nothing from the browser.
    browser_silent: bool,
    events: Vec<(Instant, WebRtcEvent)>,
}

impl Pair {
    fn new() -> Pair {
        let now = Instant::now();
        let (mut browser, offer, pending) = Browser::offer(now, Browser::g711());
        let (leg, answer) =
            WebRtcLeg::accept_offer(config(), now, LEG.parse().unwrap(), &offer, SSRC).unwrap();
        let answer = SdpAnswer::from_sdp_string(&answer).unwrap();
        browser
            .rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .unwrap();
        browser.drain();
        Pair {
            now,
            browser,
            leg,
            browser_dtls_lost: false,
            browser_silent: false,
            events: Vec::new(),
        }
    }

    /// Moves every queued datagram across, then the clock to the next
    /// deadline of either side.
    fn step(&mut self) {
        for (destination, bytes) in std::mem::take(&mut self.browser.outbox) {
            assert_eq!(destination, self.leg.local());
            let dtls = matches!(bytes.first(), Some(20..=63));
            let srtp = matches!(bytes.first(), Some(128..=191));
            if self.browser_silent || (self.browser_dtls_lost && (dtls || srtp)) {
                continue;
            }
            self.leg
                .handle_datagram(self.now, self.browser.addr, &bytes);
        }
        while let Some(transmit) = self.leg.poll_transmit() {
            assert_eq!(transmit.destination, self.browser.addr);
            let from = self.leg.local();
            self.browser.receive(self.now, from, &transmit.contents);
        }
        while let Some(event) = self.leg.poll_event() {
            self.events.push((self.now, event));
        }
        let next = [Some(self.browser.deadline), self.leg.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
        // The clock never goes back, and moves at least 1 ms so that a
        // deadline of "now" cannot stall the loop.
        self.now = next.max(self.now + Duration::from_millis(1));
        self.leg.handle_timeout(self.now);
        self.browser
            .rtc
            .handle_input(Input::Timeout(self.now))
            .unwrap();
        self.browser.drain();
    }

    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Pair) -> bool) {
        let end = self.now + limit;
        loop {
            while let Some(event) = self.leg.poll_event() {
                self.events.push((self.now, event));
            }
            if done(self) {
                return;
            }
            assert!(
                self.now < end,
                "not done within {limit:?}; events {:?}",
                self.events
            );
            self.step();
        }
    }

    fn connect(&mut self) {
        self.run_until(Duration::from_secs(3), |p| {
            p.leg.is_connected() && p.browser.connected
        });
        assert_eq!(
            self.events.first().map(|e| e.1),
            Some(WebRtcEvent::Connected)
        );
    }
}

fn plain_rtp(payload_type: u8, sequence: u16, timestamp: u32, payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x80, payload_type];
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(&timestamp.to_be_bytes());
    packet.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

#[test]
fn the_answer_is_ice_lite_with_our_candidate_and_the_dtls_server_role() {
    let now = Instant::now();
    let (_, offer, _) = Browser::offer(now, Browser::g711());
    let (leg, answer) =
        WebRtcLeg::accept_offer(config(), now, LEG.parse().unwrap(), &offer, SSRC).unwrap();
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(answer.contains("127.0.0.1 40000 typ host"), "{answer}");
    assert!(answer.contains("a=setup:passive"), "{answer}");
    assert!(answer.contains("a=fingerprint:sha-256"), "{answer}");
    assert_eq!(leg.codec(), Codec::Pcmu);
    assert_eq!(leg.negotiated_media().remote, Some(leg.session_peer()));
}

#[test]
fn a_browser_connects_and_audio_flows_both_ways() {
    let mut pair = Pair::new();
    pair.connect();

    // Browser → leg → the session, as plain RTP with our SSRC.
    for n in 0..5u64 {
        let now = pair.now;
        pair.browser.send_frame(now, n, &[n as u8; 160]);
        pair.step();
    }
    let mut packets = Vec::new();
    pair.run_until(Duration::from_secs(1), |p| {
        let mut out = [0u8; 1500];
        while let Some(len) = p.leg.poll_rtp(&mut out) {
            packets.push(out[..len].to_vec());
        }
        packets.len() >= 5
    });
    assert_eq!(packets.len(), 5);
    for (n, packet) in packets.iter().enumerate() {
        let reader = rtp_rs::RtpReader::new(packet).unwrap();
        assert_eq!(reader.payload_type(), 0);
        assert_eq!(reader.ssrc(), SSRC);
        assert_eq!(u16::from(reader.sequence_number()), n as u16);
        assert_eq!(reader.payload(), &[n as u8; 160][..]);
    }
    let stamps: Vec<u32> = packets
        .iter()
        .map(|p| rtp_rs::RtpReader::new(p).unwrap().timestamp())
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[1].wrapping_sub(w[0]) == 160),
        "{stamps:?}"
    );

    // The session → leg → browser.
    for n in 0..5u16 {
        let packet = plain_rtp(
            0,
            100 + n,
            8_000 + 160 * u32::from(n),
            &[0xa0 + n as u8; 160],
        );
        let now = pair.now;
        pair.leg.send_rtp(now, &packet);
        pair.step();
    }
    pair.run_until(Duration::from_secs(1), |p| p.browser.received.len() >= 5);
    for (n, payload) in pair.browser.received.iter().enumerate() {
        assert_eq!(payload, &vec![0xa0 + n as u8; 160]);
    }
    let stats = pair.leg.stats();
    assert_eq!(
        (stats.frames_in, stats.frames_out, stats.dropped),
        (5, 5, 0)
    );
}

#[test]
fn what_the_session_sends_that_is_not_the_agreed_g711_is_dropped() {
    let mut pair = Pair::new();
    pair.connect();
    let now = pair.now;
    pair.leg
        .send_rtp(now, &plain_rtp(101, 1, 0, &[0, 0, 0, 160])); // telephone-event
    pair.leg.send_rtp(now, &plain_rtp(8, 2, 0, &[0xd5; 160])); // PCMA on a PCMU leg
    pair.leg.send_rtp(now, &[0x80, 0]); // not RTP
    assert_eq!(pair.leg.stats().dropped, 3);
    assert_eq!(pair.leg.stats().frames_out, 0);
}

#[test]
fn nothing_is_sent_to_the_browser_before_the_handshake() {
    let mut pair = Pair::new();
    let now = pair.now;
    pair.leg.send_rtp(now, &plain_rtp(0, 1, 0, &[0xff; 160]));
    assert_eq!(pair.leg.stats().frames_out, 0);
}

#[test]
fn a_browser_that_never_completes_dtls_is_closed_after_the_handshake_timeout() {
    let mut pair = Pair::new();
    pair.browser_dtls_lost = true;
    let began = pair.now;
    pair.run_until(Duration::from_secs(10), |p| p.leg.is_closed());
    let (at, event) = *pair.events.last().unwrap();
    assert_eq!(event, WebRtcEvent::Closed(CloseReason::HandshakeTimeout));
    assert_eq!(at - began, config().handshake_timeout);
    // It did hear the browser's ICE checks: only DTLS was missing.
    assert!(pair.leg.stats().datagrams_in > 0);
    assert!(!pair.events.iter().any(|e| e.1 == WebRtcEvent::Connected));
    assert_eq!(pair.leg.poll_timeout(), None);
}

#[test]
fn a_silent_browser_is_closed_after_the_handshake_timeout() {
    let mut pair = Pair::new();
    pair.browser_silent = true;
    pair.run_until(Duration::from_secs(10), |p| p.leg.is_closed());
    assert_eq!(
        pair.events.last().unwrap().1,
        WebRtcEvent::Closed(CloseReason::HandshakeTimeout)
    );
    assert_eq!(pair.leg.stats().datagrams_in, 0);
}

#[test]
fn a_connected_browser_that_goes_quiet_is_closed() {
    let mut pair = Pair::new();
    pair.connect();
    pair.browser_silent = true;
    let quiet_from = pair.now;
    pair.run_until(Duration::from_secs(20), |p| p.leg.is_closed());
    let (at, event) = *pair.events.last().unwrap();
    assert!(
        matches!(
            event,
            WebRtcEvent::Closed(CloseReason::Idle | CloseReason::Failed)
        ),
        "{event:?}"
    );
    assert!(
        at - quiet_from <= config().idle_timeout,
        "{:?}",
        at - quiet_from
    );
}

#[test]
fn offers_that_cannot_be_answered_are_refused() {
    let now = Instant::now();
    let local: SocketAddr = LEG.parse().unwrap();
    let accept =
        |offer: &str| WebRtcLeg::accept_offer(config(), now, local, offer, SSRC).map(|_| ());

    let huge = "v=0\r\n".repeat(MAX_OFFER_LEN);
    assert!(matches!(
        accept(&huge),
        Err(WebRtcError::OfferTooLarge { .. })
    ));
    assert!(matches!(accept("not sdp"), Err(WebRtcError::Offer(_))));

    let (_, opus_only, _) = Browser::offer(now, |c| c.enable_opus(true, false));
    assert_eq!(accept(&opus_only), Err(WebRtcError::NoCommonCodec));

    let mut rtc = RtcConfig::new().build(now);
    rtc.add_local_candidate(Candidate::host(BROWSER.parse().unwrap(), "udp").unwrap());
    let mut change = rtc.sdp_api();
    change.add_channel("chat".into());
    let (data_only, _) = change.apply().unwrap();
    assert_eq!(
        accept(&data_only.to_sdp_string()),
        Err(WebRtcError::NoAudio)
    );
}

#[test]
fn the_timestamps_the_session_sends_are_extended_across_wrap() {
    let mut pair = Pair::new();
    assert_eq!(
        pair.leg.extend_timestamp(u32::MAX - 159),
        u64::from(u32::MAX - 159)
    );
    assert_eq!(pair.leg.extend_timestamp(0), u64::from(u32::MAX) + 1);
    assert_eq!(pair.leg.extend_timestamp(160), u64::from(u32::MAX) + 161);
    // A packet from just before the wrap, late.
    assert_eq!(
        pair.leg.extend_timestamp(u32::MAX - 159),
        u64::from(u32::MAX - 159)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever an attacker sends to the leg's port, before or after the
    /// browser connected, the leg neither panics nor queues without bound.
    #[test]
    fn any_datagram_is_refused_or_handled(
        datagrams in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..1500),
                // STUN-, DTLS- and RTP-looking first bytes.
                (prop_oneof![Just(0u8), Just(1), Just(22), Just(23), Just(0x80), Just(0x81)],
                 proptest::collection::vec(any::<u8>(), 0..400))
                    .prop_map(|(first, mut rest)| { rest.insert(0, first); rest }),
            ],
            1..40,
        ),
        connect_first in any::<bool>(),
        from_browser in any::<bool>(),
    ) {
        let mut pair = Pair::new();
        if connect_first {
            pair.connect();
        }
        let source: SocketAddr = if from_browser { BROWSER.parse().unwrap() } else { "127.0.0.2:9".parse().unwrap() };
        for datagram in &datagrams {
            let now = pair.now;
            pair.leg.handle_datagram(now, source, datagram);
        }
        let mut out = [0u8; 1500];
        let mut frames = 0;
        while pair.leg.poll_rtp(&mut out).is_some() {
            frames += 1;
        }
        let mut transmits = 0;
        while pair.leg.poll_transmit().is_some() {
            transmits += 1;
        }
        prop_assert!(frames <= MAX_QUEUED && transmits <= MAX_QUEUED);
        // Forged SRTP does not get through authentication.
        prop_assert_eq!(frames, 0);
    }

    /// Whatever text comes as an offer, the answer is an SDP or an error.
    #[test]
    fn any_offer_is_answered_or_refused(offer in "(v=0\r\n)?([a-z]=[ -~]{0,60}\r\n){0,30}") {
        let now = Instant::now();
        let result = WebRtcLeg::accept_offer(config(), now, LEG.parse().unwrap(), &offer, SSRC);
        if let Ok((_, answer)) = result {
            prop_assert!(answer.starts_with("v=0"));
        }
    }
}
