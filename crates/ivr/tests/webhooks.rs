//! `[[webhooks]]` in the dialplan: a valid entry with its defaults and
//! settings, and each of `check`'s refusals at its position.

use std::time::Duration;

use ivr::webhooks::Webhook;
use ivr::{Dialplan, ErrorKind, WebhookEvent};

fn plan_with(extra: &str) -> Result<Dialplan, Vec<String>> {
    let base = std::fs::read_to_string("tests/data/valid.toml").expect("valid.toml");
    let text = format!("{base}\n{extra}");
    Dialplan::from_toml(&text, "plan.toml", "tests/data").map_err(|errors| {
        errors
            .iter()
            .map(|e| {
                assert_eq!(e.kind, ErrorKind::InvalidValue, "{e}");
                e.message.clone()
            })
            .collect()
    })
}

#[test]
fn a_webhook_with_its_defaults_and_one_with_every_setting() {
    let plan = plan_with(
        r#"
[[webhooks]]
url = "https://crm.example.com/hooks/frontdesk"
secret = "0123456789abcdef-crm"
events = ["lead.created", "call.ended"]

[[webhooks]]
name = "ehr"
url = "http://127.0.0.1:8099/in"
secret = "0123456789abcdef-ehr"
events = ["lead.offered", "lead.owner_changed", "lead.contacted", "lead.outcome", "lead.escalated"]
timeout = "2s"
retry_initial = "200ms"
retry_max = "30s"
max_pending = 500
concurrency = 8
"#,
    )
    .expect("valid");
    let [crm, ehr] = plan.webhooks() else {
        panic!("two webhooks");
    };
    assert_eq!(crm.name(), "crm.example.com:443");
    assert!(crm.url().tls());
    assert_eq!(crm.url().target(), "/hooks/frontdesk");
    assert_eq!(
        crm.events(),
        [WebhookEvent::LeadCreated, WebhookEvent::CallEnded]
    );
    assert_eq!(crm.timeout(), Webhook::TIMEOUT);
    assert_eq!(crm.retry_initial(), Webhook::RETRY_INITIAL);
    assert_eq!(crm.retry_max(), Webhook::RETRY_MAX);
    assert_eq!(crm.max_pending(), Webhook::MAX_PENDING);
    assert_eq!(crm.concurrency(), Webhook::CONCURRENCY);
    assert_eq!(crm.secret().as_bytes(), b"0123456789abcdef-crm");
    assert_eq!(ehr.name(), "ehr");
    assert!(!ehr.url().tls());
    assert!(ehr.hears(WebhookEvent::LeadEscalated));
    assert!(!ehr.hears(WebhookEvent::CallEnded));
    assert_eq!(ehr.timeout(), Duration::from_secs(2));
    assert_eq!(ehr.retry_initial(), Duration::from_millis(200));
    assert_eq!(ehr.retry_max(), Duration::from_secs(30));
    assert_eq!((ehr.max_pending(), ehr.concurrency()), (500, 8));
}

#[test]
fn check_refuses_each_bad_setting() {
    let errors = plan_with(
        r#"
[[webhooks]]
url = "http://crm.example.com/in"
secret = "short"
events = ["lead.created", "lead.deleted", "lead.created"]
retry_initial = "10s"
retry_max = "1s"
max_pending = 0
concurrency = 300

[[webhooks]]
name = "a b"
url = "https://crm.example.com/in"
secret = "0123456789abcdef"
events = []

[[webhooks]]
url = "https://crm.example.com/other"
secret = "0123456789abcdef"
events = ["call.ended"]
timeout = "0s"
"#,
    )
    .unwrap_err();
    let expected = [
        "`url`: `http://` is allowed only to a loopback or private IP address (or `localhost`); events carry patient data: use `https://` for `crm.example.com`",
        "`secret` must be at least 16 bytes: a short HMAC key can be guessed from one signed delivery",
        "`events`: `lead.deleted` is not an event kind (one of lead.created, lead.offered, lead.owner_changed, lead.contacted, lead.outcome, lead.escalated, call.ended)",
        "`events`: `lead.created` is listed twice",
        "`retry_max` must be at least `retry_initial`",
        "`max_pending` must be from 1 to 10000000, not 0",
        "`concurrency` must be from 1 to 256, not 300",
        "`name` is 1 to 64 of `A-Z`, `a-z`, `0-9`, `-`, `_`, `.`, `:` (it labels the metrics)",
        "`events` cannot be empty: name the kinds this webhook hears",
        "`timeout` must be longer than zero",
    ];
    for message in expected {
        assert!(
            errors.iter().any(|e| e == message),
            "missing {message:?} in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
}

#[test]
fn two_webhooks_with_one_name_are_refused() {
    let errors = plan_with(
        r#"
[[webhooks]]
url = "https://crm.example.com/a"
secret = "0123456789abcdef"
events = ["call.ended"]

[[webhooks]]
url = "https://crm.example.com/b"
secret = "0123456789abcdef"
events = ["call.ended"]
"#,
    )
    .unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .starts_with("webhook `crm.example.com:443` is also the name of the webhook on line "),
        "{errors:?}"
    );
}
