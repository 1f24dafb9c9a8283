//! Known answers (RFC 3711 Appendix B, libsrtp's `srtp_validate`), round
//! trips, tampering, replay and the rollover counter.

use super::keys::{KEY_AND_SALT_LEN, derive_for_test, keystream_xor};
use super::*;
use crate::error::SrtpError;
use aes::Aes128;
use aes::cipher::KeyInit;

fn hex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    (0..text.len())
        .step_by(2)
        .map(|n| u8::from_str_radix(&text[n..n + 2], 16).unwrap())
        .collect()
}

/// The master key and salt of RFC 3711 B.3, also libsrtp's `test_key`.
fn rfc_master() -> MasterKey {
    MasterKey::from_key_and_salt(&hex(
        "E1F97A0D3E018BE0D64FA32C06DE4139 0EC675AD498AFEEBB6960B3AABE6",
    ))
    .unwrap()
}

/// A G.711 packet: 12-byte header and 160 bytes of payload.
fn rtp(sequence: u16, ssrc: u32) -> Vec<u8> {
    let mut packet = vec![0x80, 0x00];
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(&(u32::from(sequence) * 160).to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend((0..160).map(|n| (n as u8) ^ (sequence as u8)));
    packet
}

fn protect(sender: &mut SrtpSender, plain: &[u8]) -> Vec<u8> {
    let mut buffer = plain.to_vec();
    buffer.resize(plain.len() + 16, 0);
    let len = sender.protect(&mut buffer, plain.len()).unwrap();
    buffer.truncate(len);
    buffer
}

fn unprotect(receiver: &mut SrtpReceiver, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut out = [0u8; 1500];
    let len = receiver.unprotect(packet, &mut out)?;
    Ok(out[..len].to_vec())
}

#[test]
fn rfc3711_b2_aes_cm_keystream() {
    let cipher = Aes128::new_from_slice(&hex("2B7E151628AED2A6ABF7158809CF4F3C")).unwrap();
    let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
    // The whole segment: 65282 blocks.
    let mut keystream = vec![0u8; 1_044_512];
    keystream_xor(&cipher, iv, &mut keystream);
    let block = |n: usize| &keystream[n * 16..n * 16 + 16];
    assert_eq!(block(0), hex("E03EAD0935C95E80E166B16DD92B4EB4"));
    assert_eq!(block(1), hex("D23513162B02D0F72A43A2FE4A5F97AB"));
    assert_eq!(block(2), hex("41E95B3BB0A2E8DD477901E4FCA894C0"));
    assert_eq!(block(0xFEFF), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
    assert_eq!(block(0xFF00), hex("362B7C3C6773516318A077D7FC5073AE"));
    assert_eq!(block(0xFF01), hex("6A2CC3787889374FBEB4C81B17BA6C44"));
}

#[test]
fn rfc3711_b2_iv_from_session_salt_ssrc_and_index() {
    // The same keystream through the SRTP IV: salt F0..FD, SSRC 0, index 0.
    let master = MasterKey::new([0; 16], [0; 14]);
    let keys = SessionKeys::srtp(&master);
    // The IV layout itself, on libsrtp's nonce example:
    // 30cbbc08863d8c85d49db34a9ae1 ⊕ 00000000cafebabe000000001234 ‖ 0000.
    let rfc_keys = SessionKeys::srtp(&rfc_master());
    assert_eq!(
        rfc_keys.iv(0xCAFE_BABE, 0x1234).to_vec(),
        hex("30CBBC084CC3363BD49DB34A88D50000")
    );
    assert_eq!(keys.iv(0, 0)[14..], [0, 0]);
}

#[test]
fn rfc3711_b3_key_derivation() {
    let master = rfc_master();
    let mut cipher_key = [0u8; 16];
    derive_for_test(&master, 0x00, &mut cipher_key);
    assert_eq!(cipher_key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    let mut cipher_salt = [0u8; 14];
    derive_for_test(&master, 0x02, &mut cipher_salt);
    assert_eq!(cipher_salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    // The RFC lists a 94-octet auth key; HMAC-SHA1 uses the first 20.
    let mut auth_key = [0u8; 94];
    derive_for_test(&master, 0x01, &mut auth_key);
    assert_eq!(
        auth_key[..80].to_vec(),
        hex(
            "CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
             E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
             6D6E919A48B610EF17C2041E47403576"
        )
    );
}

#[test]
fn libsrtp_known_answer_for_srtp() {
    let plain = hex("800f1234decafbadcafebabe abababababababababababababababab");
    let expected =
        hex("800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb");
    let mut sender = SrtpSender::new(CryptoSuite::AesCm128HmacSha1_80, &rfc_master());
    assert_eq!(protect(&mut sender, &plain), expected);
    let mut receiver = SrtpReceiver::new(CryptoSuite::AesCm128HmacSha1_80, &rfc_master());
    assert_eq!(unprotect(&mut receiver, &expected).unwrap(), plain);

    // The 32-bit suite: same ciphertext, the tag cut to 4 octets.
    let mut short = SrtpSender::new(CryptoSuite::AesCm128HmacSha1_32, &rfc_master());
    assert_eq!(protect(&mut short, &plain), expected[..expected.len() - 6]);
}

#[test]
fn libsrtp_known_answer_for_srtcp() {
    let plain = hex("81c8000bcafebabe abababababababababababababababab");
    let expected =
        hex("81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798");
    let mut receiver = SrtcpReceiver::new(CryptoSuite::AesCm128HmacSha1_80, &rfc_master());
    let mut out = [0u8; 64];
    let len = receiver.unprotect(&expected, &mut out).unwrap();
    assert_eq!(out[..len], plain[..]);
    assert_eq!(
        receiver.unprotect(&expected, &mut out),
        Err(SrtpError::Replayed)
    );

    // libsrtp numbered that packet 1; ours start at 0 (RFC 3711 §3.4), so
    // our second packet is the same bytes.
    let mut sender = SrtcpSender::new(CryptoSuite::AesCm128HmacSha1_80, &rfc_master());
    let mut buffer = [0u8; 64];
    for round in 0..2 {
        buffer[..plain.len()].copy_from_slice(&plain);
        let len = sender.protect(&mut buffer, plain.len()).unwrap();
        assert_eq!(len, expected.len());
        if round == 1 {
            assert_eq!(buffer[..len], expected[..]);
        } else {
            assert_eq!(buffer[plain.len()..plain.len() + 4], [0x80, 0, 0, 0]);
        }
    }
}

#[test]
fn round_trip_of_both_suites_with_extension_and_csrc() {
    let key = MasterKey::from_key_and_salt(&[7u8; KEY_AND_SALT_LEN]).unwrap();
    for suite in CryptoSuite::ALL {
        let mut sender = SrtpSender::new(suite, &key);
        let mut receiver = SrtpReceiver::new(suite, &key);
        // One CSRC and a one-word header extension stay in the clear.
        let mut plain = vec![0x91, 0x00, 0x00, 0x05, 0, 0, 0, 160, 0, 0, 0, 9];
        plain.extend_from_slice(&[0xAA; 4]); // CSRC
        plain.extend_from_slice(&[0xBE, 0xDE, 0x00, 0x01, 1, 2, 3, 4]);
        plain.extend_from_slice(&[0x55; 160]);
        let protected = protect(&mut sender, &plain);
        assert_eq!(protected.len(), plain.len() + suite.srtp_tag_len());
        assert_eq!(protected[..24], plain[..24], "header left in the clear");
        assert_ne!(protected[24..184], plain[24..], "payload encrypted");
        assert_eq!(unprotect(&mut receiver, &protected).unwrap(), plain);
        assert_eq!(receiver.stats().packets, 1);
    }
}

#[test]
fn tampering_and_the_wrong_key_are_refused_without_moving_the_context() {
    let key = MasterKey::from_key_and_salt(&[1u8; KEY_AND_SALT_LEN]).unwrap();
    let mut sender = SrtpSender::new(CryptoSuite::AesCm128HmacSha1_80, &key);
    let mut receiver = SrtpReceiver::new(CryptoSuite::AesCm128HmacSha1_80, &key);
    let good = protect(&mut sender, &rtp(10, 5));
    for position in [1, 3, 11, 12, 100, good.len() - 1] {
        let mut bad = good.clone();
        bad[position] ^= 0x01;
        assert_eq!(
            unprotect(&mut receiver, &bad),
            Err(SrtpError::AuthenticationFailed),
            "flipped byte {position}"
        );
    }
    // Plain RTP on an SRTP leg is refused too.
    assert_eq!(
        unprotect(&mut receiver, &rtp(11, 5)),
        Err(SrtpError::AuthenticationFailed)
    );
    let other = MasterKey::from_key_and_salt(&[2u8; KEY_AND_SALT_LEN]).unwrap();
    let mut stranger = SrtpReceiver::new(CryptoSuite::AesCm128HmacSha1_80, &other);
    assert_eq!(
        unprotect(&mut stranger, &good),
        Err(SrtpError::AuthenticationFailed)
    );
    assert_eq!(
        unprotect(&mut receiver, &good[..11]),
        Err(SrtpError::Malformed("shorter than an RTP header"))
    );
    assert_eq!(
        unprotect(&mut receiver, &good[..15]),
        Err(SrtpError::Malformed("shorter than its trailer"))
    );
    // Failures moved nothing: the genuine packet still goes through once.
    assert_eq!(unprotect(&mut receiver, &good).unwrap(), rtp(10, 5));
    let stats = receiver.stats();
    assert_eq!(
        (stats.packets, stats.auth_failures, stats.malformed),
        (1, 7, 2)
    );
}

#[test]
fn replays_and_packets_older_than_the_window_are_dropped() {
    let key = MasterKey::from_key_and_salt(&[3u8; KEY_AND_SALT_LEN]).unwrap();
    let mut sender = SrtpSender::new(CryptoSuite::AesCm128HmacSha1_80, &key);
    let mut receiver = SrtpReceiver::new(CryptoSuite::AesCm128HmacSha1_80, &key);
    let packets: Vec<Vec<u8>> = (0..300).map(|n| protect(&mut sender, &rtp(n, 9))).collect();
    unprotect(&mut receiver, &packets[0]).unwrap();
    assert_eq!(
        unprotect(&mut receiver, &packets[0]),
        Err(SrtpError::Replayed)
    );
    // Reordering inside the window is fine, once.
    unprotect(&mut receiver, &packets[5]).unwrap();
    unprotect(&mut receiver, &packets[3]).unwrap();
    assert_eq!(
        unprotect(&mut receiver, &packets[3]),
        Err(SrtpError::Replayed)
    );
    unprotect(&mut receiver, &packets[299]).unwrap();
    assert_eq!(
        unprotect(&mut receiver, &packets[100]),
        Err(SrtpError::TooOld)
    );
    unprotect(&mut receiver, &packets[200]).unwrap();
    assert_eq!(receiver.stats().replayed, 3);
}

#[test]
fn the_rollover_counter_follows_sequence_wrap_both_ways() {
    let key = MasterKey::from_key_and_salt(&[4u8; KEY_AND_SALT_LEN]).unwrap();
    let suite = CryptoSuite::AesCm128HmacSha1_80;
    let mut sender = SrtpSender::new(suite, &key);
    let mut receiver = SrtpReceiver::new(suite, &key);
    // 65530 … 65535, 0 … 9: ROC 0 then 1; the packet 65535 arrives after 0 and 1.
    let sequences: Vec<u16> = (65_530..=65_535).chain(0..10).collect();
    let protected: Vec<Vec<u8>> = sequences
        .iter()
        .map(|sequence| protect(&mut sender, &rtp(*sequence, 77)))
        .collect();
    let order = [0, 1, 2, 3, 4, 6, 7, 5, 8, 9, 10, 11, 12, 13, 14, 15];
    for n in order {
        assert_eq!(
            unprotect(&mut receiver, &protected[n]).unwrap(),
            rtp(sequences[n], 77),
            "sequence {}",
            sequences[n]
        );
    }
    // After the wrap the keystream is the one of index 2^16 + seq: a
    // receiver that assumed ROC 0 would fail to authenticate.
    let mut fresh = SrtpReceiver::new(suite, &key);
    assert_eq!(
        unprotect(&mut fresh, &protected[8]),
        Err(SrtpError::AuthenticationFailed)
    );

    // Independent check: index 65536 + 2 is encrypted with that index.
    let mut plain = rtp(2, 77);
    SessionKeys::srtp(&key).apply_keystream(77, (1 << 16) + 2, &mut plain[12..]);
    assert_eq!(protected[8][12..172], plain[12..]);
}

#[test]
fn a_new_ssrc_starts_its_own_index_and_the_old_one_still_works() {
    let key = MasterKey::from_key_and_salt(&[5u8; KEY_AND_SALT_LEN]).unwrap();
    let suite = CryptoSuite::AesCm128HmacSha1_32;
    let mut old_phone = SrtpSender::new(suite, &key);
    let mut new_phone = SrtpSender::new(suite, &key);
    let mut receiver = SrtpReceiver::new(suite, &key);
    let late = protect(&mut old_phone, &rtp(40_000, 1));
    unprotect(&mut receiver, &protect(&mut old_phone, &rtp(40_001, 1))).unwrap();
    unprotect(&mut receiver, &protect(&mut new_phone, &rtp(7, 2))).unwrap();
    unprotect(&mut receiver, &late).unwrap();
    unprotect(&mut receiver, &protect(&mut new_phone, &rtp(8, 2))).unwrap();
}

#[test]
fn mki_and_key_lifetime_from_the_crypto_line() {
    let key = MasterKey::from_key_and_salt(&[6u8; KEY_AND_SALT_LEN]).unwrap();
    let suite = CryptoSuite::AesCm128HmacSha1_80;
    let mut sender = SrtpSender::new(suite, &key);
    let mki = Mki { value: 1, len: 2 };
    let mut receiver = SrtpReceiver::new(suite, &key)
        .with_mki(Some(mki))
        .with_lifetime(Some(2));
    let with_mki = |packet: Vec<u8>, value: [u8; 2]| {
        let (body, tag) = packet.split_at(packet.len() - 10);
        [body, &value, tag].concat()
    };
    let first = with_mki(protect(&mut sender, &rtp(1, 3)), [0, 1]);
    assert_eq!(unprotect(&mut receiver, &first).unwrap(), rtp(1, 3));
    let wrong = with_mki(protect(&mut sender, &rtp(2, 3)), [0, 2]);
    assert_eq!(
        unprotect(&mut receiver, &wrong),
        Err(SrtpError::MkiMismatch)
    );
    let second = with_mki(protect(&mut sender, &rtp(3, 3)), [0, 1]);
    unprotect(&mut receiver, &second).unwrap();
    let third = with_mki(protect(&mut sender, &rtp(4, 3)), [0, 1]);
    assert_eq!(unprotect(&mut receiver, &third), Err(SrtpError::KeyExpired));
}

#[test]
fn srtcp_round_trip_tamper_and_replay() {
    let key = MasterKey::from_key_and_salt(&[8u8; KEY_AND_SALT_LEN]).unwrap();
    let suite = CryptoSuite::AesCm128HmacSha1_32;
    let mut sender = SrtcpSender::new(suite, &key);
    let mut receiver = SrtcpReceiver::new(suite, &key);
    // A receiver report with one report block.
    let mut report = vec![0x81, 201, 0, 7, 0, 0, 0, 42];
    report.extend((0..24).map(|n| n as u8));
    let mut buffer = [0u8; 128];
    buffer[..report.len()].copy_from_slice(&report);
    let len = sender.protect(&mut buffer, report.len()).unwrap();
    assert_eq!(len, report.len() + 4 + 10, "SRTCP keeps an 80-bit tag");
    assert_ne!(buffer[8..report.len()], report[8..]);
    let mut out = [0u8; 128];
    let mut bad = buffer[..len].to_vec();
    bad[9] ^= 0x80;
    assert_eq!(
        receiver.unprotect(&bad, &mut out),
        Err(SrtpError::AuthenticationFailed)
    );
    let plain_len = receiver.unprotect(&buffer[..len], &mut out).unwrap();
    assert_eq!(out[..plain_len], report[..]);
    assert_eq!(
        receiver.unprotect(&buffer[..len], &mut out),
        Err(SrtpError::Replayed)
    );
    assert_eq!(receiver.stats().auth_failures, 1);
}

#[test]
fn keys_never_show_in_debug() {
    let key = rfc_master();
    let sender = SrtpSender::new(CryptoSuite::AesCm128HmacSha1_80, &key);
    for text in [format!("{key:?}"), format!("{sender:?}")] {
        assert!(!text.to_lowercase().contains("e1f97a"), "{text}");
        assert!(!text.contains("225"), "{text}"); // 0xE1 as a decimal byte
    }
}

#[test]
fn protect_refuses_a_buffer_without_room_for_the_tag() {
    let key = rfc_master();
    let mut sender = SrtpSender::new(CryptoSuite::AesCm128HmacSha1_80, &key);
    let mut exact = rtp(1, 1);
    let len = exact.len();
    assert_eq!(
        sender.protect(&mut exact, len),
        Err(SrtpError::BufferTooSmall)
    );
    assert_eq!(sender.stats().malformed, 1);
}
