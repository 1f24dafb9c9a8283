//! Patients' phone numbers in E.164 (ITU-T E.164: `+`, country code,
//! national number), whatever way they were typed into a web form.
//!
//! Why a crate: which digit strings are numbers, how long they are in each
//! country, which national prefixes and international dialling prefixes to
//! strip, change every few months; Google's libphonenumber keeps that
//! metadata, and the `phonenumber` crate is its Rust port, kept in step
//! with it (its version names the metadata release). A hand-written rule
//! would be wrong for the first patient from another country. The crate
//! stays behind [`PhoneNumber`] and [`Country`]: nothing else in frontdesk
//! names it, so that it can be replaced.
//!
//! Input from the network is screened before the crate sees it: at most
//! [`MAX_LENGTH`] characters, only digits and the separators people type
//! (`+ - . ( ) /` and spaces), and the parse itself runs under
//! `catch_unwind`, because the crate has panicked on malformed input in
//! the past (rust-phonenumber issues 32 and 43); a panic there becomes an
//! invalid number, never a dead request. The proptests in this module feed
//! it arbitrary text.

use std::fmt;
use std::str::FromStr;

/// The most characters a typed phone number may have.
pub const MAX_LENGTH: usize = 40;

/// A region for numbers written without a country code: an ISO 3166-1
/// alpha-2 code that libphonenumber knows (`US`, `GB`, `DE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country(phonenumber::country::Id);

/// Not a region libphonenumber knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a country code (ISO 3166-1 alpha-2, such as `US` or `GB`)")]
pub struct UnknownCountry(pub String);

impl FromStr for Country {
    type Err = UnknownCountry;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        let upper = code.trim().to_ascii_uppercase();
        if upper.len() != 2 || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(UnknownCountry(code.to_string()));
        }
        phonenumber::country::Id::from_str(&upper)
            .map(Country)
            .map_err(|_| UnknownCountry(code.to_string()))
    }
}

impl Country {
    /// The two-letter code (`US`).
    pub fn code(&self) -> &str {
        self.0.as_ref()
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a typed number is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing but spaces.
    #[error("is empty")]
    Empty,
    /// Over [`MAX_LENGTH`] characters.
    #[error("is longer than {MAX_LENGTH} characters")]
    TooLong,
    /// A character that no phone number has (letters, `#`, an extension).
    #[error("may hold only digits, spaces, and + - . ( ) /")]
    Character,
    /// No country code, and the clinic names no `country` to assume.
    #[error("needs a country code (+1 …): the clinic has no `country` to assume")]
    NoCountry,
    /// Digits that make no valid number (too short, too long, no such
    /// area or country code).
    #[error("is not a valid phone number")]
    Invalid,
}

/// A valid phone number in E.164 form (`+13125550199`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber {
    e164: String,
    /// The national significant number (`3125550199`).
    national: String,
    /// The country calling code (`1`).
    country_code: u16,
}

impl PhoneNumber {
    /// Reads a number as a person typed it: with a country code (`+44 20
    /// 7946 0000`, `0044 …` is not accepted: write `+`), or in `country`'s
    /// national form (`(312) 555-0199` for `US`). Only valid numbers pass.
    pub fn parse(text: &str, country: Option<Country>) -> Result<PhoneNumber, PhoneError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(PhoneError::Empty);
        }
        if text.chars().count() > MAX_LENGTH {
            return Err(PhoneError::TooLong);
        }
        if !text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | '(' | ')' | '/' | ' '))
        {
            return Err(PhoneError::Character);
        }
        let international = text.starts_with('+');
        if !international && country.is_none() {
            return Err(PhoneError::NoCountry);
        }
        // Only the first character may be a `+` (the text is ASCII here).
        if text[1..].contains('+') {
            return Err(PhoneError::Invalid);
        }
        let region = if international {
            None
        } else {
            country.map(|c| c.0)
        };
        let owned = text.to_string();
        // The crate has panicked on odd input before (see the module docs):
        // a panic is an invalid number. Nothing is shared across the call,
        // so unwinding out of it leaves no broken state behind.
        let parsed = std::panic::catch_unwind(move || {
            let number = phonenumber::parse(region, &owned).ok()?;
            phonenumber::is_valid(&number).then_some(number)
        });
        let number = parsed.ok().flatten().ok_or(PhoneError::Invalid)?;
        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        let country_code = number.code().value();
        let national = e164
            .strip_prefix('+')
            .and_then(|rest| rest.strip_prefix(country_code.to_string().as_str()))
            .unwrap_or_default()
            .to_string();
        if !is_e164(&e164) || national.is_empty() {
            return Err(PhoneError::Invalid);
        }
        Ok(PhoneNumber {
            e164,
            national,
            country_code,
        })
    }

    /// `+13125550199`.
    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// The national significant number (`3125550199`).
    pub fn national(&self) -> &str {
        &self.national
    }

    /// The country calling code (`1`).
    pub fn country_code(&self) -> u16 {
        self.country_code
    }

    /// The spellings of this number a phone may have sent as its caller
    /// ID (a SIP From user part): E.164, the same without `+`, and the
    /// national significant number. Calls are journaled by caller ID as
    /// it came, so a patient's earlier calls are found under any of these.
    pub fn caller_id_forms(&self) -> Vec<String> {
        let mut forms = vec![
            self.e164.clone(),
            self.e164.trim_start_matches('+').to_string(),
            self.national.clone(),
        ];
        forms.dedup();
        forms
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

/// `+` and 2 to 15 digits, the first not 0 (E.164 §6.2).
pub fn is_e164(text: &str) -> bool {
    let Some(digits) = text.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn us() -> Option<Country> {
        Some("US".parse().unwrap())
    }

    #[test]
    fn national_and_international_forms_become_e164() {
        for typed in [
            "+13125550199",
            "(312) 555-0199",
            "312.555.0199",
            "312 555 0199",
            "1-312-555-0199",
            "+1 312 555 0199",
        ] {
            let number = PhoneNumber::parse(typed, us()).unwrap_or_else(|e| panic!("{typed}: {e}"));
            assert_eq!(number.as_str(), "+13125550199", "{typed}");
            assert_eq!(number.national(), "3125550199");
            assert_eq!(number.country_code(), 1);
        }
        let london = PhoneNumber::parse("+44 20 7946 0018", us()).unwrap();
        assert_eq!(london.as_str(), "+442079460018");
        let gb: Country = "gb".parse().unwrap();
        assert_eq!(
            PhoneNumber::parse("020 7946 0018", Some(gb))
                .unwrap()
                .as_str(),
            "+442079460018"
        );
    }

    #[test]
    fn bad_numbers_say_why() {
        assert_eq!(PhoneNumber::parse("  ", us()), Err(PhoneError::Empty));
        assert_eq!(PhoneNumber::parse("12", us()), Err(PhoneError::Invalid));
        assert_eq!(
            PhoneNumber::parse("call me", us()),
            Err(PhoneError::Character)
        );
        assert_eq!(
            PhoneNumber::parse("312 555 0199 ext 4", us()),
            Err(PhoneError::Character)
        );
        assert_eq!(
            PhoneNumber::parse("3125550199", None),
            Err(PhoneError::NoCountry)
        );
        assert_eq!(
            PhoneNumber::parse(&"1".repeat(41), us()),
            Err(PhoneError::TooLong)
        );
        assert_eq!(PhoneNumber::parse("+1+312", us()), Err(PhoneError::Invalid));
        // No such area code.
        assert_eq!(
            PhoneNumber::parse("(012) 555-0199", us()),
            Err(PhoneError::Invalid)
        );
    }

    #[test]
    fn countries_are_iso_codes_libphonenumber_knows() {
        assert_eq!("us".parse::<Country>().unwrap().code(), "US");
        assert!("USA".parse::<Country>().is_err());
        assert!("ZZ".parse::<Country>().is_err());
        assert!("".parse::<Country>().is_err());
    }

    #[test]
    fn caller_id_forms_cover_what_phones_send() {
        let number = PhoneNumber::parse("+13125550199", None).unwrap();
        assert_eq!(
            number.caller_id_forms(),
            ["+13125550199", "13125550199", "3125550199"]
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_accepts_only_e164(text in "\\PC{0,60}") {
            if let Ok(number) = PhoneNumber::parse(&text, us()) {
                prop_assert!(is_e164(number.as_str()));
            }
        }

        #[test]
        fn never_panics_on_phone_like_text(text in "[0-9+() ./-]{0,45}") {
            if let Ok(number) = PhoneNumber::parse(&text, us()) {
                prop_assert!(is_e164(number.as_str()));
                // Normalising again gives the same number.
                prop_assert_eq!(PhoneNumber::parse(number.as_str(), None), Ok(number));
            }
        }
    }
}
