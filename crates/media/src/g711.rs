//! ITU-T G.711 companding: µ-law (PCMU, RTP payload type 0) and A-law
//! (PCMA, payload type 8), per RFC 3551 §4.5.14.
//!
//! Encoding follows the G.711 decision intervals on the 14-bit (µ-law) and
//! 13-bit (A-law) uniform scales that G.191 uses; decoding returns the
//! interval's output value scaled to 16 bits. The direct µ↔A tables follow
//! G.711 Tables 3 and 4 (a bridge converts without a linear step, and a
//! µ→A→µ round trip is transparent in bits 1–7). All tables are computed at
//! compile time, so every function here is a table look-up or a few shifts.

/// Encodes one 16-bit linear sample as G.711 µ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    // 14-bit magnitude; one's complement for negative values as in G.191.
    let scaled = sample >> 2;
    let (sign, magnitude) = if scaled < 0 {
        (0x80u8, !scaled)
    } else {
        (0, scaled)
    };
    // Bias so that segment boundaries fall on powers of two; clip at the top.
    let biased = (magnitude as u32 + 33).min(0x1FFF);
    let segment = (u32::BITS - biased.leading_zeros()).saturating_sub(6);
    let mantissa = (biased >> (segment + 1)) & 0x0F;
    !(sign | ((segment as u8) << 4) | mantissa as u8)
}

/// Decodes one G.711 µ-law byte to a 16-bit linear sample.
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[usize::from(code)]
}

/// Encodes one 16-bit linear sample as G.711 A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    let scaled = sample >> 3; // 13-bit scale
    let (sign, magnitude) = if scaled < 0 {
        (0u8, !scaled)
    } else {
        (0x80, scaled)
    };
    let magnitude = magnitude as u32;
    // Segments 0 and 1 share the step size 2; later segments double it.
    let segment = (u32::BITS - (magnitude | 0x1F).leading_zeros()) - 5;
    let mantissa = (magnitude >> segment.max(1)) & 0x0F;
    (sign | ((segment as u8) << 4) | mantissa as u8) ^ 0x55
}

/// Decodes one G.711 A-law byte to a 16-bit linear sample.
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

/// Converts a µ-law byte to A-law directly (G.711 Table 3).
pub fn ulaw_to_alaw(code: u8) -> u8 {
    ULAW_TO_ALAW[usize::from(code)]
}

/// Converts an A-law byte to µ-law directly (G.711 Table 4).
pub fn alaw_to_ulaw(code: u8) -> u8 {
    ALAW_TO_ULAW[usize::from(code)]
}

/// Converts a whole µ-law payload to A-law into `out` (same length).
pub fn ulaw_to_alaw_slice(input: &[u8], out: &mut [u8]) {
    for (o, i) in out.iter_mut().zip(input) {
        *o = ULAW_TO_ALAW[usize::from(*i)];
    }
}

/// Converts a whole A-law payload to µ-law into `out` (same length).
pub fn alaw_to_ulaw_slice(input: &[u8], out: &mut [u8]) {
    for (o, i) in out.iter_mut().zip(input) {
        *o = ALAW_TO_ULAW[usize::from(*i)];
    }
}

const ULAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        let inverted = !(code as u8);
        let segment = (inverted >> 4) & 0x07;
        let magnitude = ((((inverted & 0x0F) as i32) << 3) + 0x84) << segment;
        table[code] = if inverted & 0x80 != 0 {
            (0x84 - magnitude) as i16
        } else {
            (magnitude - 0x84) as i16
        };
        code += 1;
    }
    table
};

const ALAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        let toggled = (code as u8) ^ 0x55;
        let segment = (toggled >> 4) & 0x07;
        let mut magnitude = ((toggled & 0x0F) as i32) << 4;
        magnitude += if segment == 0 { 8 } else { 0x108 };
        if segment > 1 {
            magnitude <<= segment - 1;
        }
        table[code] = if toggled & 0x80 != 0 {
            magnitude as i16
        } else {
            -magnitude as i16
        };
        code += 1;
    }
    table
};

/// G.711 Table 3: µ-law decoder output number (0..=127) → A-law number (1..=128).
const fn ulaw_number_to_alaw(n: u8) -> u8 {
    match n {
        0..=15 => n / 2 + 1,
        16..=31 => n - 7,
        32..=35 => 2 * n - 39,
        36..=47 => n - 3,
        48 => 46,
        49..=63 => n - 1,
        64..=79 => n,
        _ => n + 1,
    }
}

/// G.711 Table 4: A-law decoder output number (1..=128) → µ-law number (0..=127).
const fn alaw_number_to_ulaw(a: u8) -> u8 {
    match a {
        0..=8 => 2 * a - 1,
        9..=24 => a + 7,
        25..=32 => (a - 25) / 2 + 32,
        33..=44 => a + 3,
        45..=48 => (a - 45) / 2 + 48,
        49..=63 => a + 1,
        64..=79 => a,
        _ => a - 1,
    }
}

const ULAW_TO_ALAW: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut code = 0;
    while code < 256 {
        let inverted = !(code as u8);
        let alaw_number = ulaw_number_to_alaw(inverted & 0x7F);
        table[code] = ((inverted & 0x80) | (alaw_number - 1)) ^ 0xD5;
        code += 1;
    }
    table
};

const ALAW_TO_ULAW: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut code = 0;
    while code < 256 {
        let toggled = (code as u8) ^ 0xD5;
        let ulaw_number = alaw_number_to_ulaw((toggled & 0x7F) + 1);
        table[code] = !((toggled & 0x80) | ulaw_number);
        code += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use audio_codec_algorithms as oracle;

    #[test]
    fn ulaw_encode_matches_oracle_for_every_sample() {
        for sample in i16::MIN..=i16::MAX {
            assert_eq!(
                ulaw_encode(sample),
                oracle::encode_ulaw(sample),
                "sample {sample}"
            );
        }
    }

    #[test]
    fn alaw_encode_matches_oracle_for_every_sample() {
        for sample in i16::MIN..=i16::MAX {
            assert_eq!(
                alaw_encode(sample),
                oracle::encode_alaw(sample),
                "sample {sample}"
            );
        }
    }

    #[test]
    fn decoders_match_oracle_for_every_code() {
        for code in 0..=255u8 {
            assert_eq!(ulaw_decode(code), oracle::decode_ulaw(code), "µ-law {code}");
            assert_eq!(alaw_decode(code), oracle::decode_alaw(code), "A-law {code}");
        }
    }

    #[test]
    fn direct_conversions_match_oracle_for_every_code() {
        for code in 0..=255u8 {
            assert_eq!(
                ulaw_to_alaw(code),
                oracle::convert_ulaw_to_alaw(code),
                "µ→A {code}"
            );
            assert_eq!(
                alaw_to_ulaw(code),
                oracle::convert_alaw_to_ulaw(code),
                "A→µ {code}"
            );
        }
    }

    #[test]
    fn slices_convert_like_single_bytes() {
        let input: Vec<u8> = (0..=255).collect();
        let mut alaw = vec![0; 256];
        let mut back = vec![0; 256];
        ulaw_to_alaw_slice(&input, &mut alaw);
        alaw_to_ulaw_slice(&alaw, &mut back);
        for code in 0..=255u8 {
            assert_eq!(alaw[usize::from(code)], ulaw_to_alaw(code));
            // G.711 §"Note 2" of Table 3: µ→A→µ is transparent in bits 1–7.
            assert_eq!(back[usize::from(code)] | 1, code | 1);
        }
    }

    #[test]
    fn silence_codes() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(alaw_decode(0xD5), 8);
    }
}
