//! Property tests over SRTP peer input: `a=crypto` values and datagrams on
//! an SRTP leg never panic; whatever the sender protects, the receiver
//! restores exactly; any change to a protected packet is refused.

use media::sdp::{CryptoAttribute, LocalMedia, SessionDescription, create_answer};
use media::srtp::{CryptoSuite, MasterKey, SrtcpReceiver, SrtpReceiver, SrtpSender};
use proptest::prelude::*;
use rand::SeedableRng;

const KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

fn crypto_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,80}",
        "[0-9]{1,10} AES_CM_128_HMAC_SHA1_(80|32) inline:[A-Za-z0-9+/=]{0,44}(\\|[0-9^]{0,6}){0,3}( [A-Z_=0-9-]{0,12}){0,3}",
        Just(format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")).prop_flat_map(|line| {
            ("[|:;0-9^ A-Z=-]{0,16}").prop_map(move |tail| format!("{line}{tail}"))
        }),
    ]
}

fn suite() -> impl Strategy<Value = CryptoSuite> {
    prop_oneof![
        Just(CryptoSuite::AesCm128HmacSha1_80),
        Just(CryptoSuite::AesCm128HmacSha1_32)
    ]
}

proptest! {
    #[test]
    fn crypto_lines_never_panic_and_print_back(value in crypto_value()) {
        if let Ok(line) = CryptoAttribute::parse(&value) {
            prop_assert_eq!(CryptoAttribute::parse(&line.to_string()), Ok(line));
        }
        let offer = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:{value}\r\n"
        );
        let offer = SessionDescription::parse(offer.as_bytes()).unwrap();
        let local = LocalMedia::new("192.0.2.1".parse().unwrap(), 20_000, 1)
            .with_srtp(&mut rand::rngs::StdRng::seed_from_u64(1));
        if let Ok(answer) = create_answer(&offer, &local) {
            let line = answer.description.media[0].crypto().next().unwrap().to_owned();
            prop_assert!(CryptoAttribute::parse(&line).is_ok());
        }
    }

    #[test]
    fn arbitrary_datagrams_never_panic_an_srtp_receiver(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..300),
        rtp_like in any::<bool>(),
        suite in suite(),
    ) {
        if rtp_like && !bytes.is_empty() {
            bytes[0] = 0x80 | (bytes[0] & 0x3F);
        }
        let key = MasterKey::from_key_and_salt(&[3; 30]).unwrap();
        let mut out = [0u8; 1500];
        prop_assert!(SrtpReceiver::new(suite, &key).unprotect(&bytes, &mut out).is_err());
        prop_assert!(SrtcpReceiver::new(suite, &key).unprotect(&bytes, &mut out).is_err());
    }

    #[test]
    fn protect_then_unprotect_restores_and_any_flip_is_refused(
        payload in proptest::collection::vec(any::<u8>(), 0..400),
        sequence in any::<u16>(),
        ssrc in any::<u32>(),
        csrc_count in 0u8..3,
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
        suite in suite(),
    ) {
        let key = MasterKey::from_key_and_salt(&[5; 30]).unwrap();
        let mut packet = vec![0x80 | csrc_count, 0];
        packet.extend_from_slice(&sequence.to_be_bytes());
        packet.extend_from_slice(&[0, 0, 0, 1]);
        packet.extend_from_slice(&ssrc.to_be_bytes());
        packet.extend(std::iter::repeat_n(0xCC, 4 * usize::from(csrc_count)));
        packet.extend_from_slice(&payload);
        let mut buffer = packet.clone();
        buffer.resize(packet.len() + 10, 0);
        let len = SrtpSender::new(suite, &key).protect(&mut buffer, packet.len()).unwrap();
        prop_assert_eq!(len, packet.len() + suite.srtp_tag_len());
        let mut out = [0u8; 1500];
        let mut tampered = buffer[..len].to_vec();
        tampered[flip.index(len)] ^= 1 << bit;
        prop_assert!(SrtpReceiver::new(suite, &key).unprotect(&tampered, &mut out).is_err());
        let restored = SrtpReceiver::new(suite, &key).unprotect(&buffer[..len], &mut out).unwrap();
        prop_assert_eq!(&out[..restored], &packet[..]);
    }
}
