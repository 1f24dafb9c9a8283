//! DTMF digits as the three signalling paths report them: RFC 4733
//! telephone-events ([`crate::rtp::telephone_event`]), in-band tones
//! ([`crate::inband`]) and SIP INFO bodies (parsed by the daemon, which can
//! use [`DtmfDigit::from_char`]).

use std::fmt;

/// One DTMF key: `0`–`9`, `*`, `#`, `A`–`D`. Internally the RFC 4733 §3.2
/// event code (0–9, `*` = 10, `#` = 11, A–D = 12–15).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DtmfDigit(u8);

/// Where a digit was detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DtmfSource {
    /// An RFC 4733 telephone-event in RTP.
    TelephoneEvent,
    /// A tone in the audio, found by the Goertzel detector.
    InBand,
}

impl DtmfDigit {
    /// All sixteen digits in event-code order.
    pub const ALL: [DtmfDigit; 16] = {
        let mut all = [DtmfDigit(0); 16];
        let mut code = 0;
        while code < 16 {
            all[code as usize] = DtmfDigit(code);
            code += 1;
        }
        all
    };

    /// The digit for an RFC 4733 event code; codes above 15 (flash and
    /// other events) are not digits.
    pub const fn from_event_code(code: u8) -> Option<DtmfDigit> {
        if code < 16 {
            Some(DtmfDigit(code))
        } else {
            None
        }
    }

    /// The RFC 4733 event code.
    pub const fn event_code(self) -> u8 {
        self.0
    }

    /// Parses a key character (`a`–`d` accepted in lower case too).
    pub fn from_char(key: char) -> Option<DtmfDigit> {
        let code = match key.to_ascii_uppercase() {
            digit @ '0'..='9' => digit as u8 - b'0',
            '*' => 10,
            '#' => 11,
            letter @ 'A'..='D' => letter as u8 - b'A' + 12,
            _ => return None,
        };
        Some(DtmfDigit(code))
    }

    /// The key character.
    pub const fn as_char(self) -> char {
        match self.0 {
            code @ 0..=9 => (b'0' + code) as char,
            10 => '*',
            11 => '#',
            code => (b'A' + code - 12) as char,
        }
    }

    /// The row (low group) and column (high group) frequencies in Hz
    /// (ITU-T Q.23).
    pub const fn frequencies(self) -> (f32, f32) {
        let (row, column) = self.keypad_position();
        (ROW_FREQUENCIES[row], COLUMN_FREQUENCIES[column])
    }

    /// The digit at a keypad position (row 0–3, column 0–3).
    pub const fn from_keypad_position(row: usize, column: usize) -> Option<DtmfDigit> {
        if row < 4 && column < 4 {
            Some(KEYPAD[row][column])
        } else {
            None
        }
    }

    const fn keypad_position(self) -> (usize, usize) {
        let mut row = 0;
        while row < 4 {
            let mut column = 0;
            while column < 4 {
                if KEYPAD[row][column].0 == self.0 {
                    return (row, column);
                }
                column += 1;
            }
            row += 1;
        }
        (0, 0) // unreachable: every code 0..16 is on the keypad
    }
}

impl fmt::Display for DtmfDigit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// Low-group frequencies (rows), Hz.
pub const ROW_FREQUENCIES: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// High-group frequencies (columns), Hz.
pub const COLUMN_FREQUENCIES: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// The keypad: `KEYPAD[row][column]`.
const KEYPAD: [[DtmfDigit; 4]; 4] = [
    [DtmfDigit(1), DtmfDigit(2), DtmfDigit(3), DtmfDigit(12)],
    [DtmfDigit(4), DtmfDigit(5), DtmfDigit(6), DtmfDigit(13)],
    [DtmfDigit(7), DtmfDigit(8), DtmfDigit(9), DtmfDigit(14)],
    [DtmfDigit(10), DtmfDigit(0), DtmfDigit(11), DtmfDigit(15)],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_round_trip() {
        let keys: String = DtmfDigit::ALL.iter().map(|digit| digit.as_char()).collect();
        assert_eq!(keys, "0123456789*#ABCD");
        for digit in DtmfDigit::ALL {
            assert_eq!(DtmfDigit::from_char(digit.as_char()), Some(digit));
            assert_eq!(DtmfDigit::from_event_code(digit.event_code()), Some(digit));
        }
        assert_eq!(DtmfDigit::from_char('b'), DtmfDigit::from_char('B'));
        assert_eq!(DtmfDigit::from_char('E'), None);
        assert_eq!(DtmfDigit::from_event_code(16), None);
    }

    #[test]
    fn keypad_frequencies() {
        assert_eq!(
            DtmfDigit::from_char('1').unwrap().frequencies(),
            (697.0, 1209.0)
        );
        assert_eq!(
            DtmfDigit::from_char('0').unwrap().frequencies(),
            (941.0, 1336.0)
        );
        assert_eq!(
            DtmfDigit::from_char('#').unwrap().frequencies(),
            (941.0, 1477.0)
        );
        assert_eq!(
            DtmfDigit::from_char('D').unwrap().frequencies(),
            (941.0, 1633.0)
        );
        assert_eq!(
            DtmfDigit::from_keypad_position(1, 1),
            DtmfDigit::from_char('5')
        );
        assert_eq!(DtmfDigit::from_keypad_position(4, 0), None);
    }
}
