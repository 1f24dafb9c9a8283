//! The body of `POST /api/leads` (DESIGN.md): `{"name","phone","email",
//! "message","postal_code","campaign","consent":{"call":true}}`, and
//! `"source"` when the admin token posts it.
//!
//! Parse, don't validate: the bytes become a [`LeadForm`] whose every
//! field is checked, or a list of what is wrong with each field
//! ([`FieldErrors`], the 400's `fields`). Every field is reported at once,
//! so a form builder's integrator fixes them in one round. An unknown
//! field is an error too: a misspelt `phone_number` would otherwise be a
//! lead without a number. Lengths are bounded per field; the body as a
//! whole is bounded by the listener (`[limits.http] max_lead_body`), and
//! serde_json bounds nesting.

use std::collections::BTreeMap;

use ivr::leads::{Country, PhoneNumber};
use serde_json::{Map, Value};

/// The longest `message`, in characters.
pub const MAX_MESSAGE: usize = 20_000;
/// The longest `name`.
const MAX_NAME: usize = 200;
/// The longest `email` (RFC 5321's path limit).
const MAX_EMAIL: usize = 254;
/// The longest `campaign` and `source`.
const MAX_TAG: usize = 100;
/// The longest `postal_code`.
const MAX_POSTAL: usize = 16;
/// The most consents.
const MAX_CONSENTS: usize = 8;

/// The fields a body may have.
const FIELDS: [&str; 8] = [
    "name",
    "phone",
    "email",
    "message",
    "postal_code",
    "campaign",
    "consent",
    "source",
];

/// Field → what is wrong with it.
pub type FieldErrors = BTreeMap<String, String>;

/// Why a body is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// Not a JSON object at all.
    NotJson(String),
    /// Some fields are wrong.
    Fields(FieldErrors),
}

/// A checked lead body.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadForm {
    /// The patient's name.
    pub name: Option<String>,
    /// Their number, E.164.
    pub phone: PhoneNumber,
    /// Their e-mail.
    pub email: Option<String>,
    /// What they wrote (may be empty).
    pub message: String,
    /// Their postal code.
    pub postal_code: Option<String>,
    /// The form's campaign.
    pub campaign: Option<String>,
    /// Consents given, a JSON object of booleans.
    pub consent: Map<String, Value>,
    /// The source the body names, if it names one.
    pub source: Option<String>,
}

impl LeadForm {
    /// Reads `body`; numbers without a country code are read in
    /// `country`.
    pub fn parse(body: &[u8], country: Option<Country>) -> Result<LeadForm, FormError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|error| FormError::NotJson(format!("the body is not JSON: {error}")))?;
        let Value::Object(mut object) = value else {
            return Err(FormError::NotJson(
                "the body must be a JSON object".to_string(),
            ));
        };
        let mut errors = FieldErrors::new();
        for key in object.keys() {
            if !FIELDS.contains(&key.as_str()) && errors.len() < 16 {
                errors.insert(
                    truncate(key, 64),
                    format!("unknown field (expected {})", FIELDS.join(", ")),
                );
            }
        }
        let name = text(&mut object, "name", MAX_NAME, &mut errors);
        let email = text(&mut object, "email", MAX_EMAIL, &mut errors);
        if let Some(email) = &email
            && !plausible_email(email)
        {
            errors.insert("email".into(), "is not an e-mail address".into());
        }
        let message = text(&mut object, "message", MAX_MESSAGE, &mut errors).unwrap_or_default();
        let postal_code = text(&mut object, "postal_code", MAX_POSTAL, &mut errors);
        if let Some(code) = &postal_code
            && !code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
        {
            errors.insert(
                "postal_code".into(),
                "may hold only letters, digits, spaces and dashes".into(),
            );
        }
        let campaign = tag(&mut object, "campaign", &mut errors);
        let source = tag(&mut object, "source", &mut errors);
        let consent = match object.remove("consent") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(consent))
                if consent.len() <= MAX_CONSENTS
                    && consent
                        .iter()
                        .all(|(key, value)| key.len() <= 32 && value.is_boolean()) =>
            {
                consent
            }
            Some(_) => {
                errors.insert(
                    "consent".into(),
                    format!(
                        "must be an object of at most {MAX_CONSENTS} true/false values, such as {{\"call\": true}}"
                    ),
                );
                Map::new()
            }
        };
        let phone = match object.remove("phone") {
            None | Some(Value::Null) => {
                errors.insert("phone".into(), "is required".into());
                None
            }
            Some(Value::String(typed)) => match PhoneNumber::parse(&typed, country) {
                Ok(phone) => Some(phone),
                Err(error) => {
                    errors.insert("phone".into(), error.to_string());
                    None
                }
            },
            Some(_) => {
                errors.insert("phone".into(), "must be a string".into());
                None
            }
        };
        match (phone, errors.is_empty()) {
            (Some(phone), true) => Ok(LeadForm {
                name,
                phone,
                email,
                message,
                postal_code,
                campaign,
                consent,
                source,
            }),
            _ => Err(FormError::Fields(errors)),
        }
    }
}

/// An optional string field, trimmed, empty as absent, at most `max`
/// characters, without control characters other than line breaks and tabs.
fn text(
    object: &mut Map<String, Value>,
    field: &str,
    max: usize,
    errors: &mut FieldErrors,
) -> Option<String> {
    match object.remove(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(value)) => {
            let value = value.trim();
            if value.chars().count() > max {
                errors.insert(field.into(), format!("is longer than {max} characters"));
                None
            } else if value
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            {
                errors.insert(field.into(), "holds control characters".into());
                None
            } else {
                (!value.is_empty()).then(|| value.to_string())
            }
        }
        Some(_) => {
            errors.insert(field.into(), "must be a string".into());
            None
        }
    }
}

/// A tag-like field (`campaign`, `source`): printable ASCII without spaces.
fn tag(object: &mut Map<String, Value>, field: &str, errors: &mut FieldErrors) -> Option<String> {
    let value = text(object, field, MAX_TAG, errors)?;
    if value.bytes().all(|b| b.is_ascii_graphic()) {
        Some(value)
    } else {
        errors.insert(
            field.into(),
            "may hold only visible ASCII characters, no spaces".into(),
        );
        None
    }
}

/// `local@domain.tld`, roughly: the clinic calls, it does not mail merge.
fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn us() -> Option<Country> {
        Some("US".parse().unwrap())
    }

    fn fields(body: &str) -> FieldErrors {
        match LeadForm::parse(body.as_bytes(), us()) {
            Err(FormError::Fields(errors)) => errors,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn design_md_body() {
        let form = LeadForm::parse(
            br#"{"name":"Ana Diaz","phone":"(312) 555-0199","email":null,"message":" my knee hurts ","postal_code":"60605","campaign":"fall-ortho","consent":{"call":true}}"#,
            us(),
        )
        .unwrap();
        assert_eq!(form.phone.as_str(), "+13125550199");
        assert_eq!(form.message, "my knee hurts");
        assert_eq!(form.name.as_deref(), Some("Ana Diaz"));
        assert_eq!(form.email, None);
        assert_eq!(form.consent.get("call"), Some(&Value::Bool(true)));
        assert_eq!(form.source, None);
        let minimal = LeadForm::parse(br#"{"phone":"+13125550199"}"#, None).unwrap();
        assert_eq!(minimal.message, "");
        assert!(minimal.consent.is_empty());
    }

    #[test]
    fn every_field_is_reported_at_once() {
        let errors = fields(
            r#"{"phone":"12","email":"nope","postal_code":"60<6","consent":{"call":"yes"},"campaign":"a b","phone_number":"x","name":7}"#,
        );
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            [
                "campaign",
                "consent",
                "email",
                "name",
                "phone",
                "phone_number",
                "postal_code"
            ]
        );
        assert_eq!(errors["phone"], "is not a valid phone number");
        assert_eq!(fields("{}")["phone"], "is required");
        assert_eq!(fields(r#"{"phone":5550199}"#)["phone"], "must be a string");
    }

    #[test]
    fn not_json_or_not_an_object() {
        for body in ["", "[]", "nope", "{\"phone\":", "\"x\""] {
            assert!(
                matches!(
                    LeadForm::parse(body.as_bytes(), us()),
                    Err(FormError::NotJson(_))
                ),
                "{body}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_bytes_are_safe(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = LeadForm::parse(&body, us());
        }

        #[test]
        fn any_field_values_are_safe(
            phone in "\\PC{0,50}",
            message in "\\PC{0,200}",
            postal in "\\PC{0,20}",
            email in "\\PC{0,40}",
        ) {
            let body = serde_json::json!({
                "phone": phone, "message": message, "postal_code": postal, "email": email,
            });
            match LeadForm::parse(body.to_string().as_bytes(), us()) {
                Ok(form) => prop_assert!(form.phone.as_str().starts_with('+')),
                Err(FormError::Fields(errors)) => prop_assert!(!errors.is_empty()),
                Err(FormError::NotJson(message)) => prop_assert!(false, "{message}"),
            }
        }
    }
}
