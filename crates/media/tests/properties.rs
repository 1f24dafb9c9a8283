//! Property tests over peer input: SDP bodies and RTP datagrams never make
//! the parsers panic, and printing what was parsed is stable.

use std::time::Instant;

use media::codec::Codec;
use media::relay::RelayPath;
use media::rtp::{InboundStream, OutboundStream, TelephoneEvent, parse_packet};
use media::sdp::{LocalMedia, NegotiatedMedia, PayloadMap, SessionDescription, create_answer};
use proptest::prelude::*;

/// Lines that look like SDP, in any order, with noise.
fn sdp_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("v=0".to_owned()),
        "o=[a-z-]{1,5} [0-9]{1,12} [0-9]{1,12} IN IP[46] [0-9a-f.:]{1,15}",
        "s=[ -~]{0,10}",
        "c=IN IP[46] [0-9.:a-f/]{1,20}",
        "t=[0-9]{1,3} [0-9]{1,3}",
        "m=(audio|video) [0-9]{1,6}(/[0-9])? RTP/S?AVP( [0-9]{1,3}){0,5}",
        "a=rtpmap:[0-9]{1,3} (PCMU|PCMA|telephone-event|G729)/[0-9]{1,5}(/[0-9])?",
        "a=fmtp:[0-9]{1,3} [0-9-,]{0,8}",
        "a=(sendrecv|sendonly|recvonly|inactive|ptime:[0-9]{0,3})",
        "a=crypto:[ -~]{0,30}",
        "[a-z]=[ -~]{0,20}",
        "[ -~]{0,20}",
    ]
}

fn sdp_body() -> impl Strategy<Value = String> {
    (proptest::collection::vec(sdp_line(), 0..14), any::<bool>()).prop_map(|(lines, crlf)| {
        let mut body = String::from("v=0");
        for line in lines {
            body.push_str(if crlf { "\r\n" } else { "\n" });
            body.push_str(&line);
        }
        body
    })
}

proptest! {
    #[test]
    fn sdp_parsing_never_panics_and_printing_is_stable(body in sdp_body()) {
        if let Ok(parsed) = SessionDescription::parse(body.as_bytes()) {
            let printed = parsed.to_string();
            let reparsed = SessionDescription::parse(printed.as_bytes()).expect("our own output parses");
            prop_assert_eq!(reparsed.to_string(), printed);
            let local = LocalMedia::new("192.0.2.1".parse().unwrap(), 20_000, 1);
            if let Ok(answer) = create_answer(&parsed, &local) {
                prop_assert_eq!(answer.description.media.len(), parsed.media.len());
                let printed = answer.description.to_string();
                prop_assert!(SessionDescription::parse(printed.as_bytes()).is_ok());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_sdp_parser(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = SessionDescription::parse(&bytes);
    }

    #[test]
    fn arbitrary_datagrams_never_panic_receive_or_relay(mut bytes in proptest::collection::vec(any::<u8>(), 0..400), rtp_like in any::<bool>()) {
        if rtp_like && !bytes.is_empty() {
            bytes[0] = 0x80 | (bytes[0] & 0x3F); // version 2, any padding/extension/CSRC bits
        }
        let payloads = PayloadMap::static_g711(Some(101));
        let _ = parse_packet(&payloads, &bytes);
        let _ = InboundStream::new(payloads).receive(&bytes);
        let ingress = NegotiatedMedia::static_g711(Codec::Pcmu, None, Some(101));
        let mut egress = NegotiatedMedia::static_g711(Codec::Pcma, None, Some(96));
        egress.payloads.pcmu = None;
        let mut path = RelayPath::new(&ingress, &egress, OutboundStream::from_parts(1, 2, 3));
        let mut out = [0u8; 1500];
        if let Ok(relayed) = path.relay(Instant::now(), &bytes, &mut out)
            && let Some(len) = relayed.bytes_to_send()
        {
            prop_assert!(parse_packet(&egress.payloads, &out[..len]).is_ok());
        }
    }

    #[test]
    fn telephone_events_round_trip(event in 0u8..=255, end in any::<bool>(), volume in 0u8..64, duration in any::<u16>()) {
        let original = TelephoneEvent { event, end, volume, duration };
        prop_assert_eq!(TelephoneEvent::parse(&original.to_bytes()), Ok(original));
    }
}
