//! RFC 3264 offer/answer for one audio stream of G.711 plus RFC 4733
//! telephone-event.
//!
//! * [`create_answer`] answers a peer's offer: the first usable `m=audio`
//!   is accepted with the offered codecs we speak, in the offer's order
//!   (RFC 3264 §6.1), telephone-event keeps the offer's payload type, the
//!   direction mirrors the offer's, and every other `m=` line is rejected
//!   with port 0 (§6). No common codec is [`SdpError::NoCommonCodec`]
//!   (SIP 488).
//! * [`create_offer`] makes our offer: PCMU, PCMA, telephone-event 101,
//!   for INVITEs without SDP (delayed offer) and for the agent leg.
//! * [`accept_answer`] reads the answer to one of our offers.
//!
//! SRTP with SDES (RFC 4568): when [`LocalMedia::srtp_key`] is set, an
//! `RTP/SAVP` offer is answered `RTP/SAVP` with our own `a=crypto` (same
//! tag and suite as the first offered line we accept, our key); an
//! `RTP/SAVP` offer without a usable line is [`SdpError::NoCryptoSuite`]
//! (488), and without a local key [`SdpError::UnsupportedProfile`] (488).
//! With [`LocalMedia::offer_srtp`], [`create_offer`] offers `RTP/SAVP`
//! with one line per suite. An `RTP/AVP` offer stays plain RTP.
//!
//! Each returns a [`NegotiatedMedia`]: what to send, what to accept, where
//! to send, and whether the peer has put us on hold.

use std::net::{IpAddr, SocketAddr};

use rand::CryptoRng;

use super::crypto::{CryptoAttribute, SrtpParameters};
use super::{
    Attribute, Connection, Direction, MediaDescription, Origin, Protocol, SessionDescription,
};
use crate::codec::Codec;
use crate::error::SdpError;
use crate::srtp::{CryptoSuite, MasterKey};

/// The payload type we offer for telephone-event (a common choice).
pub const TELEPHONE_EVENT_PAYLOAD_TYPE: u8 = 101;
/// The clock rate of the telephone-event we accept (RFC 4733 §7.1.1).
const TELEPHONE_EVENT_NAME: &str = "telephone-event";
/// The events we offer: DTMF 0–9 * # A–D and flash (RFC 4733 §3.2).
const TELEPHONE_EVENTS_OFFERED: &str = "0-16";
/// Username in our `o=` lines.
const ORIGIN_USERNAME: &str = "frontdesk";

/// Our side of a media stream: where we receive and what we speak.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalMedia {
    /// The address put in `c=` and `o=` (the `--advertise` address when listening on 0.0.0.0).
    pub address: IpAddr,
    /// Our RTP port (from a [`crate::driver::PortLease`]).
    pub port: u16,
    /// Codecs we accept, in the order we offer them.
    pub codecs: Vec<Codec>,
    /// The telephone-event payload type of our offers; `None` neither offers nor accepts RFC 4733.
    pub telephone_event: Option<u8>,
    /// What we are willing to do: `SendRecv` normally, `SendOnly` to put the peer on hold.
    pub direction: Direction,
    /// `<sess-id>` of our `o=` line, fixed for the dialog.
    pub session_id: u64,
    /// `<sess-version>`; increment it for each new offer or answer that changes (RFC 3264 §8).
    pub session_version: u64,
    /// Our SRTP master key for this stream (RFC 4568): with one, `RTP/SAVP`
    /// offers are accepted; without, they are refused with 488.
    pub srtp_key: Option<MasterKey>,
    /// Whether [`create_offer`] offers `RTP/SAVP` (needs [`LocalMedia::srtp_key`]).
    pub offer_srtp: bool,
}

impl LocalMedia {
    /// PCMU, PCMA and telephone-event 101, sendrecv, version = id.
    pub fn new(address: IpAddr, port: u16, session_id: u64) -> LocalMedia {
        LocalMedia {
            address,
            port,
            codecs: Codec::ALL.to_vec(),
            telephone_event: Some(TELEPHONE_EVENT_PAYLOAD_TYPE),
            direction: Direction::SendRecv,
            session_id,
            session_version: session_id,
            srtp_key: None,
            offer_srtp: false,
        }
    }

    /// Accepts SRTP offers with a fresh master key from `rng` (a
    /// cryptographic generator; each leg and call gets its own key).
    pub fn with_srtp<R: CryptoRng + ?Sized>(mut self, rng: &mut R) -> LocalMedia {
        self.srtp_key = Some(MasterKey::generate(rng));
        self
    }

    /// Offers `RTP/SAVP` with a fresh key from `rng` (for a phone that
    /// requires SRTP), and accepts SRTP answers and offers.
    pub fn offering_srtp<R: CryptoRng + ?Sized>(self, rng: &mut R) -> LocalMedia {
        let mut local = self.with_srtp(rng);
        local.offer_srtp = true;
        local
    }

    fn origin(&self) -> Origin {
        Origin {
            username: ORIGIN_USERNAME.to_owned(),
            session_id: self.session_id.to_string(),
            session_version: self.session_version.to_string(),
            address: Connection::for_ip(self.address),
        }
    }
}

/// Which RTP payload type numbers mean what on one leg.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PayloadMap {
    /// The payload type of PCMU (0 unless an odd peer mapped a dynamic one).
    pub pcmu: Option<u8>,
    /// The payload type of PCMA.
    pub pcma: Option<u8>,
    /// The payload type of telephone-event/8000.
    pub telephone_event: Option<u8>,
}

impl PayloadMap {
    /// PCMU 0, PCMA 8, and an optional telephone-event payload type.
    pub const fn static_g711(telephone_event: Option<u8>) -> PayloadMap {
        PayloadMap {
            pcmu: Some(0),
            pcma: Some(8),
            telephone_event,
        }
    }

    /// The codec a payload type stands for.
    pub fn codec(&self, payload_type: u8) -> Option<Codec> {
        if self.pcmu == Some(payload_type) {
            Some(Codec::Pcmu)
        } else if self.pcma == Some(payload_type) {
            Some(Codec::Pcma)
        } else {
            None
        }
    }

    /// The payload type of a codec.
    pub fn payload_type(&self, codec: Codec) -> Option<u8> {
        match codec {
            Codec::Pcmu => self.pcmu,
            Codec::Pcma => self.pcma,
        }
    }

    /// Whether a payload type is telephone-event.
    pub fn is_telephone_event(&self, payload_type: u8) -> bool {
        self.telephone_event == Some(payload_type)
    }

    fn set(&mut self, codec: Codec, payload_type: u8) -> bool {
        let slot = match codec {
            Codec::Pcmu => &mut self.pcmu,
            Codec::Pcma => &mut self.pcma,
        };
        let fresh = slot.is_none();
        slot.get_or_insert(payload_type);
        fresh
    }
}

/// The outcome of offer/answer for one leg: everything the media
/// endpoint needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// The codec we send (the first common one in the answer's order).
    pub codec: Codec,
    /// The payload type we send it with.
    pub payload_type: u8,
    /// Payload types accepted on this leg, both ways.
    pub payloads: PayloadMap,
    /// Where the peer wants RTP; `None` when on hold by `c=0.0.0.0` or port
    /// 0, or a host name (symmetric RTP latching then finds the address).
    pub remote: Option<SocketAddr>,
    /// Our direction on this stream.
    pub direction: Direction,
    /// The peer does not want our media (it offered or answered sendonly or
    /// inactive, or `c=0.0.0.0`): the call is on hold from its side.
    pub on_hold: bool,
    /// The peer's `a=ptime`, if given (we send 20 ms regardless).
    pub remote_ptime: Option<u32>,
    /// The peer's profile.
    pub protocol: Protocol,
    /// SRTP keys when the stream is `RTP/SAVP` (RFC 4568); `None` for plain RTP.
    pub srtp: Option<SrtpParameters>,
}

impl NegotiatedMedia {
    /// A plain sendrecv G.711 stream with static payload types, for tests
    /// and tools that skip SDP.
    pub fn static_g711(
        codec: Codec,
        remote: Option<SocketAddr>,
        telephone_event: Option<u8>,
    ) -> NegotiatedMedia {
        NegotiatedMedia {
            codec,
            payload_type: codec.static_payload_type(),
            payloads: PayloadMap::static_g711(telephone_event),
            remote,
            direction: Direction::SendRecv,
            on_hold: false,
            remote_ptime: Some(20),
            protocol: Protocol::RtpAvp,
            srtp: None,
        }
    }

    /// The telephone-event payload type of this leg.
    pub fn telephone_event(&self) -> Option<u8> {
        self.payloads.telephone_event
    }
}

/// Our answer to an offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The SDP to put in the 200 (or in the ACK for a delayed offer).
    pub description: SessionDescription,
    /// What was agreed.
    pub media: NegotiatedMedia,
}

/// Makes our offer (RFC 3264 §5): one `m=audio` with the codecs of `local`
/// and telephone-event.
pub fn create_offer(local: &LocalMedia) -> SessionDescription {
    let mut formats = Vec::new();
    let mut attributes = Vec::new();
    for codec in &local.codecs {
        formats.push(codec.static_payload_type().to_string());
        attributes.push(rtpmap_attribute(
            codec.static_payload_type(),
            codec.encoding_name(),
        ));
    }
    if let Some(payload_type) = local.telephone_event {
        formats.push(payload_type.to_string());
        attributes.push(rtpmap_attribute(payload_type, TELEPHONE_EVENT_NAME));
        attributes.push(Attribute::new(
            "fmtp",
            format!("{payload_type} {TELEPHONE_EVENTS_OFFERED}"),
        ));
    }
    attributes.push(Attribute::new("ptime", "20"));
    attributes.push(Attribute::flag(local.direction.as_str()));
    let mut protocol = Protocol::RtpAvp;
    if let Some(key) = local.srtp_key.as_ref().filter(|_| local.offer_srtp) {
        protocol = Protocol::RtpSavp;
        for (tag, suite) in (1..).zip(CryptoSuite::ALL) {
            let line = CryptoAttribute::new(tag, suite, key.clone());
            attributes.push(Attribute::new("crypto", line.to_string()));
        }
    }
    our_description(
        local,
        vec![audio_section(local.port, protocol, formats, attributes)],
    )
}

/// Answers `offer` (RFC 3264 §6): accepts the first audio stream we can
/// serve and rejects every other `m=` line with port 0.
pub fn create_answer(offer: &SessionDescription, local: &LocalMedia) -> Result<Answer, SdpError> {
    let mut accepted: Option<(NegotiatedMedia, MediaDescription)> = None;
    let mut failure = SdpError::NoAudio;
    let mut sections = Vec::with_capacity(offer.media.len());
    for offered in &offer.media {
        let usable = offered.media == "audio" && offered.port != 0 && accepted.is_none();
        let outcome = if !usable {
            None
        } else {
            let srtp = match (&offered.protocol, &local.srtp_key) {
                (Protocol::RtpAvp, _) => Ok(None),
                (Protocol::RtpSavp, Some(key)) => choose_crypto(offered, key)
                    .map(Some)
                    .ok_or(SdpError::NoCryptoSuite),
                (protocol, _) => Err(SdpError::UnsupportedProfile(protocol.to_string())),
            };
            match srtp.and_then(|srtp| {
                read_peer_stream(offer, offered, local).map(|(mut media, order)| {
                    media.srtp = srtp;
                    (media, order)
                })
            }) {
                Ok(stream) => Some(stream),
                Err(error) => {
                    failure = error;
                    None
                }
            }
        };
        match outcome {
            Some((media, order)) => {
                let section = answer_section(offered, &media, &order, local);
                sections.push(section.clone());
                accepted = Some((media, section));
            }
            None => sections.push(MediaDescription {
                media: offered.media.clone(),
                port: 0,
                port_count: None,
                protocol: offered.protocol.clone(),
                formats: offered.formats.clone(),
                connection: None,
                attributes: Vec::new(),
                other_lines: Vec::new(),
            }),
        }
    }
    let (media, _) = accepted.ok_or(failure)?;
    Ok(Answer {
        description: our_description(local, sections),
        media,
    })
}

/// Reads the answer to our `offer` (RFC 3264 §7): the first audio stream
/// the answerer accepted.
pub fn accept_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
    local: &LocalMedia,
) -> Result<NegotiatedMedia, SdpError> {
    let index = offer
        .media
        .iter()
        .position(|media| media.media == "audio")
        .ok_or(SdpError::NoAudio)?;
    let answered = answer
        .media
        .get(index)
        .filter(|media| media.media == "audio")
        .or_else(|| answer.media.iter().find(|media| media.media == "audio"))
        .ok_or(SdpError::NoAudio)?;
    if answered.port == 0 {
        return Err(SdpError::NoCommonCodec);
    }
    let ours = &offer.media[index];
    let srtp = match (&ours.protocol, &answered.protocol, &local.srtp_key) {
        (Protocol::RtpAvp, Protocol::RtpAvp, _) => None,
        (Protocol::RtpSavp, Protocol::RtpSavp, Some(key)) => {
            Some(accept_crypto(ours, answered, key).ok_or(SdpError::NoCryptoSuite)?)
        }
        (_, protocol, _) => return Err(SdpError::UnsupportedProfile(protocol.to_string())),
    };
    let (mut media, _) = read_peer_stream(answer, answered, local)?;
    media.srtp = srtp;
    Ok(media)
}

/// The first offered `a=crypto` line we can use (RFC 4568 §7.1.2: the
/// answerer picks one; unusable lines are skipped), with our key.
fn choose_crypto(offered: &MediaDescription, key: &MasterKey) -> Option<SrtpParameters> {
    offered
        .crypto()
        .find_map(|value| match CryptoAttribute::parse(value) {
            Ok(line) => Some(SrtpParameters {
                suite: line.suite,
                tag: line.tag,
                local_key: key.clone(),
                remote_key: line.key,
                remote_lifetime: line.lifetime,
                remote_mki: line.mki,
            }),
            Err(reason) => {
                tracing::debug!(?reason, "declined an a=crypto line");
                None
            }
        })
}

/// The answer's `a=crypto` line, which must echo the tag and suite of one
/// of ours (RFC 4568 §7.1.3).
fn accept_crypto(
    ours: &MediaDescription,
    answered: &MediaDescription,
    key: &MasterKey,
) -> Option<SrtpParameters> {
    let line = answered
        .crypto()
        .find_map(|value| CryptoAttribute::parse(value).ok())?;
    let offered = ours
        .crypto()
        .filter_map(|value| CryptoAttribute::parse(value).ok())
        .any(|offered| offered.tag == line.tag && offered.suite == line.suite);
    offered.then(|| SrtpParameters {
        suite: line.suite,
        tag: line.tag,
        local_key: key.clone(),
        remote_key: line.key,
        remote_lifetime: line.lifetime,
        remote_mki: line.mki,
    })
}

/// Reads a peer's audio section: the payload types we accept in its order,
/// its direction, address and hold state.
fn read_peer_stream(
    description: &SessionDescription,
    media: &MediaDescription,
    local: &LocalMedia,
) -> Result<(NegotiatedMedia, Vec<u8>), SdpError> {
    let mut payloads = PayloadMap::default();
    let mut order = Vec::new();
    let mut first_codec = None;
    for payload_type in media.payload_types() {
        let (name, clock_rate) = match media.rtpmap(payload_type) {
            Some(map) if map.channels.is_none_or(|channels| channels == 1) => {
                (map.encoding_name, map.clock_rate)
            }
            Some(_) => continue,
            None => match Codec::from_static_payload_type(payload_type) {
                Some(codec) => (codec.encoding_name(), crate::codec::CLOCK_RATE),
                None => continue,
            },
        };
        if clock_rate != crate::codec::CLOCK_RATE {
            continue;
        }
        if let Some(codec) =
            Codec::from_encoding_name(name).filter(|codec| local.codecs.contains(codec))
        {
            if payloads.set(codec, payload_type) {
                order.push(payload_type);
                first_codec.get_or_insert((codec, payload_type));
            }
        } else if name.eq_ignore_ascii_case(TELEPHONE_EVENT_NAME)
            && local.telephone_event.is_some()
            && payloads.telephone_event.is_none()
        {
            payloads.telephone_event = Some(payload_type);
            order.push(payload_type);
        }
    }
    let (codec, payload_type) = first_codec.ok_or(SdpError::NoCommonCodec)?;

    let connection = description.effective_connection(media);
    let hold_address = connection.is_some_and(Connection::is_hold_address);
    let mut peer_direction = description.effective_direction(media);
    if hold_address {
        // RFC 3264 §8.4: c=0.0.0.0 means "do not send to me".
        peer_direction = Direction::from_capabilities(peer_direction.sends(), false);
    }
    let remote = match connection.and_then(Connection::ip) {
        Some(ip) if !ip.is_unspecified() && media.port != 0 => {
            Some(SocketAddr::new(ip, media.port))
        }
        _ => None,
    };
    let negotiated = NegotiatedMedia {
        codec,
        payload_type,
        payloads,
        remote,
        direction: peer_direction.reversed().intersect(local.direction),
        on_hold: !peer_direction.receives(),
        remote_ptime: media.ptime(),
        protocol: media.protocol.clone(),
        srtp: None,
    };
    Ok((negotiated, order))
}

fn answer_section(
    offered: &MediaDescription,
    media: &NegotiatedMedia,
    order: &[u8],
    local: &LocalMedia,
) -> MediaDescription {
    let mut attributes = Vec::new();
    for payload_type in order {
        if let Some(codec) = media.payloads.codec(*payload_type) {
            attributes.push(rtpmap_attribute(*payload_type, codec.encoding_name()));
        } else {
            attributes.push(rtpmap_attribute(*payload_type, TELEPHONE_EVENT_NAME));
            let events = offered.fmtp(*payload_type).unwrap_or("0-15");
            attributes.push(Attribute::new("fmtp", format!("{payload_type} {events}")));
        }
    }
    attributes.push(Attribute::new("ptime", "20"));
    attributes.push(Attribute::flag(media.direction.as_str()));
    let protocol = match &media.srtp {
        Some(srtp) => {
            let line = CryptoAttribute::new(srtp.tag, srtp.suite, srtp.local_key.clone());
            attributes.push(Attribute::new("crypto", line.to_string()));
            Protocol::RtpSavp
        }
        None => Protocol::RtpAvp,
    };
    audio_section(
        local.port,
        protocol,
        order.iter().map(u8::to_string).collect(),
        attributes,
    )
}

fn our_description(local: &LocalMedia, media: Vec<MediaDescription>) -> SessionDescription {
    SessionDescription {
        origin: local.origin(),
        session_name: ORIGIN_USERNAME.to_owned(),
        connection: Some(Connection::for_ip(local.address)),
        attributes: Vec::new(),
        other_lines: vec![super::Line {
            kind: 't',
            value: "0 0".to_owned(),
        }],
        media,
    }
}

fn audio_section(
    port: u16,
    protocol: Protocol,
    formats: Vec<String>,
    attributes: Vec<Attribute>,
) -> MediaDescription {
    MediaDescription {
        media: "audio".to_owned(),
        port,
        port_count: None,
        protocol,
        formats,
        connection: None,
        attributes,
        other_lines: Vec::new(),
    }
}

fn rtpmap_attribute(payload_type: u8, name: &str) -> Attribute {
    Attribute::new("rtpmap", format!("{payload_type} {name}/8000"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::tests::SIPP_OFFER;

    fn local() -> LocalMedia {
        LocalMedia::new("192.0.2.10".parse().unwrap(), 20000, 42)
    }

    fn parse(text: &str) -> SessionDescription {
        SessionDescription::parse(text.as_bytes()).unwrap()
    }

    fn offer_with(media_lines: &str) -> SessionDescription {
        parse(&format!(
            "v=0\r\no=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com\r\ns=-\r\nc=IN IP4 192.0.2.101\r\nt=0 0\r\n{media_lines}"
        ))
    }

    #[test]
    fn answers_the_sipp_offer() {
        let answer = create_answer(&parse(SIPP_OFFER), &local()).unwrap();
        let media = &answer.media;
        assert_eq!(media.codec, Codec::Pcmu);
        assert_eq!(media.payload_type, 0);
        assert_eq!(media.telephone_event(), Some(101));
        assert_eq!(media.remote, Some("127.0.0.1:6000".parse().unwrap()));
        assert_eq!(media.direction, Direction::SendRecv);
        assert!(!media.on_hold);
        assert_eq!(
            answer.description.to_string(),
            "v=0\r\no=frontdesk 42 42 IN IP4 192.0.2.10\r\ns=frontdesk\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
m=audio 20000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
        );
    }

    #[test]
    fn honours_the_offer_codec_order_and_rejects_video() {
        // RFC 3264 §10.1 / RFC 4317 §2.1.1 style: audio + video, PCMA preferred.
        let offer = offer_with(
            "m=audio 49170 RTP/AVP 8 97 0 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:97 iLBC/8000\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n\
m=video 51372 RTP/AVP 31 32\r\na=rtpmap:31 H261/90000\r\na=rtpmap:32 MPV/90000\r\n",
        );
        let answer = create_answer(&offer, &local()).unwrap();
        assert_eq!(answer.media.codec, Codec::Pcma);
        assert_eq!(
            answer.media.payloads,
            PayloadMap {
                pcmu: Some(0),
                pcma: Some(8),
                telephone_event: Some(96)
            }
        );
        let sections = &answer.description.media;
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].formats, ["8", "0", "96"]);
        assert_eq!(sections[0].fmtp(96), Some("0-15"));
        assert_eq!(sections[1].port, 0);
        assert_eq!(sections[1].media, "video");
        assert_eq!(sections[1].formats, ["31", "32"]);
    }

    #[test]
    fn static_payload_types_without_rtpmap_and_dynamic_pcmu() {
        let offer = offer_with("m=audio 49170 RTP/AVP 18 0\r\n");
        let answer = create_answer(&offer, &local()).unwrap();
        assert_eq!(answer.media.codec, Codec::Pcmu);
        assert_eq!(answer.media.telephone_event(), None);

        let offer = offer_with("m=audio 49170 RTP/AVP 112\r\na=rtpmap:112 pcmu/8000\r\n");
        let answer = create_answer(&offer, &local()).unwrap();
        assert_eq!(answer.media.payload_type, 112);
        assert_eq!(
            answer.description.media[0]
                .rtpmap(112)
                .unwrap()
                .encoding_name,
            "PCMU"
        );

        // PCMU at another clock rate is not PCMU.
        let offer = offer_with("m=audio 49170 RTP/AVP 112\r\na=rtpmap:112 PCMU/16000\r\n");
        assert_eq!(
            create_answer(&offer, &local()).unwrap_err(),
            SdpError::NoCommonCodec
        );
    }

    #[test]
    fn no_common_codec_is_488() {
        let offer = offer_with(
            "m=audio 49170 RTP/AVP 18 9 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
        );
        let error = create_answer(&offer, &local()).unwrap_err();
        assert_eq!(error, SdpError::NoCommonCodec);
        assert_eq!(error.sip_status(), 488);

        let mut pcmu_only = local();
        pcmu_only.codecs = vec![Codec::Pcmu];
        let offer = offer_with("m=audio 49170 RTP/AVP 8\r\n");
        assert_eq!(
            create_answer(&offer, &pcmu_only).unwrap_err(),
            SdpError::NoCommonCodec
        );
    }

    #[test]
    fn srtp_only_and_no_audio_are_refused() {
        let offer = offer_with(
            "m=audio 49170 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n",
        );
        let error = create_answer(&offer, &local()).unwrap_err();
        assert_eq!(error, SdpError::UnsupportedProfile("RTP/SAVP".into()));
        assert_eq!(error.sip_status(), 488);

        let offer = offer_with("m=video 51372 RTP/AVP 31\r\n");
        assert_eq!(
            create_answer(&offer, &local()).unwrap_err(),
            SdpError::NoAudio
        );

        // A rejected audio stream (port 0) does not count either.
        let offer = offer_with("m=audio 0 RTP/AVP 0\r\n");
        assert_eq!(
            create_answer(&offer, &local()).unwrap_err(),
            SdpError::NoAudio
        );
    }

    /// A seeded cryptographic generator: keys in tests are reproducible.
    fn rng() -> rand::rngs::StdRng {
        use rand::SeedableRng;
        rand::rngs::StdRng::seed_from_u64(7)
    }

    const OFFERED_KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

    #[test]
    fn an_srtp_offer_gets_an_srtp_answer_with_our_own_key() {
        let offer = offer_with(&format!(
            "m=audio 49170 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{OFFERED_KEY}{OFFERED_KEY}\r\n\
a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{OFFERED_KEY}|2^20|1:4 KDR=1\r\n\
a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:{OFFERED_KEY}|2^31\r\n\
a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:{OFFERED_KEY}\r\n"
        ));
        let local = local().with_srtp(&mut rng());
        let answer = create_answer(&offer, &local).unwrap();
        // Tag 1: a suite we do not speak; tag 2: KDR≠0; tag 3 is the first usable one.
        let srtp = answer.media.srtp.as_ref().unwrap();
        assert_eq!(
            (srtp.tag, srtp.suite),
            (3, CryptoSuite::AesCm128HmacSha1_32)
        );
        assert_eq!(srtp.remote_lifetime, Some(1 << 31));
        assert_eq!(srtp.remote_mki, None);
        assert_eq!(
            srtp.remote_key,
            CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{OFFERED_KEY}"))
                .unwrap()
                .key
        );
        assert_eq!(Some(&srtp.local_key), local.srtp_key.as_ref());
        assert_ne!(srtp.local_key, srtp.remote_key);
        let section = &answer.description.media[0];
        assert_eq!(section.protocol, Protocol::RtpSavp);
        let lines: Vec<&str> = section.crypto().collect();
        assert_eq!(lines.len(), 1);
        let ours = CryptoAttribute::parse(lines[0]).unwrap();
        assert_eq!(
            (ours.tag, ours.suite),
            (3, CryptoSuite::AesCm128HmacSha1_32)
        );
        assert_eq!(ours.key, srtp.local_key);
        assert!(!lines[0].contains(OFFERED_KEY));
        // Our key is the generator's: another seed, another key.
        let other = local_with_seed(8);
        assert_ne!(other.srtp_key, local.srtp_key);
        // Nothing of either key in Debug output.
        let debug = format!("{answer:?} {local:?}");
        assert!(
            !debug.contains(OFFERED_KEY) && !debug.contains(&lines[0][33..]),
            "{debug}"
        );
    }

    fn local_with_seed(seed: u64) -> LocalMedia {
        use rand::SeedableRng;
        local().with_srtp(&mut rand::rngs::StdRng::seed_from_u64(seed))
    }

    #[test]
    fn srtp_offers_we_cannot_take_are_488() {
        let local = local().with_srtp(&mut rng());
        for lines in [
            // No a=crypto at all (another key management, e.g. MIKEY).
            "a=rtpmap:0 PCMU/8000\r\n".to_owned(),
            format!("a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{OFFERED_KEY}{OFFERED_KEY}\r\n"),
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{OFFERED_KEY} UNENCRYPTED_SRTP\r\n"),
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{OFFERED_KEY} KDR=10\r\n"),
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:short\r\n".to_owned(),
        ] {
            let offer = offer_with(&format!("m=audio 49170 RTP/SAVP 0\r\n{lines}"));
            let error = create_answer(&offer, &local).unwrap_err();
            assert_eq!(error, SdpError::NoCryptoSuite, "{lines}");
            assert_eq!(error.sip_status(), 488);
        }
        // DTLS-SRTP's profile is not SDES.
        let offer = offer_with(&format!(
            "m=audio 49170 UDP/TLS/RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{OFFERED_KEY}\r\n"
        ));
        assert_eq!(
            create_answer(&offer, &local).unwrap_err(),
            SdpError::UnsupportedProfile("UDP/TLS/RTP/SAVP".into())
        );
    }

    #[test]
    fn best_effort_srtp_takes_the_first_stream_it_can() {
        // SAVP with an unusable line, then the same stream as plain AVP.
        let offer = offer_with(&format!(
            "m=audio 49170 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{OFFERED_KEY} UNENCRYPTED_SRTCP\r\n\
m=audio 49172 RTP/AVP 0\r\n"
        ));
        let answer = create_answer(&offer, &local().with_srtp(&mut rng())).unwrap();
        assert_eq!(answer.media.srtp, None);
        assert_eq!(answer.description.media[0].port, 0);
        assert_eq!(answer.description.media[1].protocol, Protocol::RtpAvp);
        assert_eq!(
            answer.media.remote,
            Some("192.0.2.101:49172".parse().unwrap())
        );
    }

    #[test]
    fn plain_offers_stay_plain_even_with_crypto_lines() {
        // a=crypto on RTP/AVP means nothing (RFC 4568 §4): plain RTP.
        let offer = offer_with(&format!(
            "m=audio 49170 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{OFFERED_KEY}\r\n"
        ));
        let answer = create_answer(&offer, &local().with_srtp(&mut rng())).unwrap();
        assert_eq!(answer.media.srtp, None);
        assert_eq!(answer.description.media[0].protocol, Protocol::RtpAvp);
        assert_eq!(answer.description.media[0].crypto().count(), 0);
    }

    #[test]
    fn our_srtp_offer_and_the_answer_to_it() {
        let ours = local().offering_srtp(&mut rng());
        let offer = create_offer(&ours);
        let section = &offer.media[0];
        assert_eq!(section.protocol, Protocol::RtpSavp);
        let lines: Vec<CryptoAttribute> = section
            .crypto()
            .map(|value| CryptoAttribute::parse(value).unwrap())
            .collect();
        assert_eq!(
            lines
                .iter()
                .map(|line| (line.tag, line.suite))
                .collect::<Vec<_>>(),
            [
                (1, CryptoSuite::AesCm128HmacSha1_80),
                (2, CryptoSuite::AesCm128HmacSha1_32)
            ]
        );
        assert!(
            lines
                .iter()
                .all(|line| Some(&line.key) == ours.srtp_key.as_ref())
        );

        // A phone answers with our second line and its own key.
        let phone = local_with_seed(99);
        let answer = create_answer(&offer, &phone).unwrap();
        let read = accept_answer(&offer, &answer.description, &ours).unwrap();
        let srtp = read.srtp.unwrap();
        assert_eq!(srtp.tag, 1);
        assert_eq!(Some(&srtp.local_key), ours.srtp_key.as_ref());
        assert_eq!(Some(&srtp.remote_key), phone.srtp_key.as_ref());
        // Each side's view mirrors the other's.
        let theirs = answer.media.srtp.unwrap();
        assert_eq!(
            (theirs.local_key, theirs.remote_key),
            (srtp.remote_key, srtp.local_key)
        );

        // An answer with a tag we never offered, or plain RTP, is refused.
        let text = answer.description.to_string();
        let wrong_tag = parse(&text.replace("a=crypto:1 ", "a=crypto:9 "));
        assert_eq!(
            accept_answer(&offer, &wrong_tag, &ours).unwrap_err(),
            SdpError::NoCryptoSuite
        );
        let wrong_suite =
            parse(&text.replace("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"));
        assert_eq!(
            accept_answer(&offer, &wrong_suite, &ours).unwrap_err(),
            SdpError::NoCryptoSuite
        );
        let plain = parse(
            "v=0\r\no=agent 7 7 IN IP4 192.0.2.55\r\ns=-\r\nc=IN IP4 192.0.2.55\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
        );
        assert_eq!(
            accept_answer(&offer, &plain, &ours).unwrap_err(),
            SdpError::UnsupportedProfile("RTP/AVP".into())
        );
        // A plain offer (the daemon's agent legs) is never answered with SRTP.
        let plain_offer = create_offer(&local().with_srtp(&mut rng()));
        assert_eq!(plain_offer.media[0].protocol, Protocol::RtpAvp);
        assert_eq!(plain_offer.media[0].crypto().count(), 0);
    }

    #[test]
    fn directions_are_answered_per_rfc3264_6_1() {
        use Direction::*;
        let cases = [
            (SendRecv, SendRecv, false),
            (SendOnly, RecvOnly, true),
            (RecvOnly, SendOnly, false),
            (Inactive, Inactive, true),
        ];
        for (offered, answered, on_hold) in cases {
            let offer = offer_with(&format!("m=audio 49170 RTP/AVP 0\r\na={offered}\r\n"));
            let answer = create_answer(&offer, &local()).unwrap();
            assert_eq!(answer.media.direction, answered, "offered {offered}");
            assert_eq!(answer.media.on_hold, on_hold, "offered {offered}");
            assert_eq!(answer.description.media[0].direction(), Some(answered));
        }
    }

    #[test]
    fn old_style_hold_with_zero_address() {
        // RFC 3264 §8.4: c=0.0.0.0 in a re-INVITE puts us on hold.
        let offer = parse(
            "v=0\r\no=alice 1 2 IN IP4 192.0.2.101\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\n",
        );
        let answer = create_answer(&offer, &local()).unwrap();
        assert!(answer.media.on_hold);
        assert_eq!(answer.media.remote, None);
        assert_eq!(answer.media.direction, Direction::RecvOnly);
    }

    #[test]
    fn our_offer_and_the_answer_to_it() {
        let mut ours = local();
        ours.session_version = 43;
        let offer = create_offer(&ours);
        assert_eq!(
            offer.to_string(),
            "v=0\r\no=frontdesk 42 43 IN IP4 192.0.2.10\r\ns=frontdesk\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
m=audio 20000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
        );
        // A PCMA-only agent phone answers.
        let answer = parse(
            "v=0\r\no=agent 7 7 IN IP4 192.0.2.55\r\ns=-\r\nc=IN IP4 192.0.2.55\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        );
        let media = accept_answer(&offer, &answer, &ours).unwrap();
        assert_eq!(media.codec, Codec::Pcma);
        assert_eq!(media.telephone_event(), Some(101));
        assert_eq!(media.remote, Some("192.0.2.55:4000".parse().unwrap()));

        // Our own answer, read back as an answer to our offer, agrees with itself.
        let our_answer = create_answer(&offer, &local()).unwrap();
        let read_back = accept_answer(&offer, &our_answer.description, &local()).unwrap();
        assert_eq!(read_back.codec, Codec::Pcmu);
        assert_eq!(read_back.remote, Some("192.0.2.10:20000".parse().unwrap()));

        // A rejected stream in the answer.
        let rejected = parse(
            "v=0\r\no=agent 7 8 IN IP4 192.0.2.55\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n",
        );
        assert_eq!(
            accept_answer(&offer, &rejected, &ours).unwrap_err(),
            SdpError::NoCommonCodec
        );
    }

    #[test]
    fn our_hold_offer_is_sendonly() {
        let mut ours = local();
        ours.direction = Direction::SendOnly;
        let offer = create_offer(&ours);
        assert_eq!(offer.media[0].direction(), Some(Direction::SendOnly));
        let answer = parse(
            "v=0\r\no=agent 7 7 IN IP4 192.0.2.55\r\ns=-\r\nc=IN IP4 192.0.2.55\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=recvonly\r\n",
        );
        assert_eq!(
            accept_answer(&offer, &answer, &ours).unwrap().direction,
            Direction::SendOnly
        );
    }
}
