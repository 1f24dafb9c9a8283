//! `[trust]` and `[limits]`: real CIDR ranges, every limit read, and
//! `check` refusing malformed entries and values out of range at their
//! position.

use std::net::IpAddr;
use std::time::Duration;

use ivr::Dialplan;
use proptest::prelude::*;

/// The valid fixture with `extra` appended.
fn plan(extra: &str) -> Result<Dialplan, Vec<String>> {
    let base = std::fs::read_to_string("tests/data/valid.toml").expect("the valid fixture");
    Dialplan::from_toml(&format!("{base}\n{extra}"), "limits.toml", "tests/data")
        .map_err(|errors| errors.to_lines())
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn every_list_takes_cidr_ranges_and_an_untrusted_range_covers_all_of_it() {
    let plan = plan(
        r#"
[trust]
trunks = ["203.0.113.0/24", "2001:db8:7::/48"]
agents = ["198.51.100.7"]
untrusted = ["127.0.0.40/29", "203.0.113.128/25"]
"#,
    )
    .expect("valid");
    let trust = plan.trust();
    for host in 40..48 {
        assert!(!trust.is_trusted(ip(&format!("127.0.0.{host}"))), "{host}");
    }
    assert!(trust.is_trusted(ip("127.0.0.39")));
    assert!(trust.is_trusted(ip("127.0.0.48")));
    assert!(trust.is_trusted(ip("203.0.113.5")));
    assert!(!trust.is_trusted(ip("203.0.113.129")));
    assert!(trust.is_trusted(ip("2001:db8:7:1::5")));
    assert!(trust.is_trusted(ip("198.51.100.7")));
    assert!(!trust.is_trusted(ip("198.51.100.8")));
    assert_eq!(trust.agents().len(), 1);
}

#[test]
fn proxies_are_trusted_and_believed_and_checked_like_the_other_lists() {
    let valid = plan(
        r#"
[trust]
loopback = false
proxies = ["127.0.0.10", "192.0.2.0/28"]
"#,
    )
    .expect("valid");
    let trust = valid.trust();
    assert!(trust.is_proxy(ip("127.0.0.10")));
    assert!(trust.is_trusted(ip("127.0.0.10")));
    assert!(trust.is_proxy(ip("192.0.2.15")));
    assert!(!trust.is_proxy(ip("127.0.0.2")));
    assert!(!trust.is_proxy(ip("192.0.2.16")));
    let errors = plan(
        r#"[trust]
proxies = ["kamailio", "0.0.0.0/0"]
"#,
    )
    .unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`proxies`: `kamailio` is not an IP address")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`proxies`: `0.0.0.0/0` trusts every address")),
        "{errors:#?}"
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
}

#[test]
fn malformed_trust_entries_are_refused_where_they_are() {
    let errors = plan(
        r#"[trust]
trunks = ["203.0.113.0/33", "carrier"]
agents = ["0.0.0.0/0"]
untrusted = ["127.0.0.2 ", "::1/129"]
"#,
    )
    .unwrap_err();
    let line = |n: usize| {
        errors
            .iter()
            .filter(move |e| e.starts_with(&format!("limits.toml:{n}:")))
            .count()
    };
    assert!(
        errors
            .iter()
            .any(|e| e.ends_with("`trunks`: `203.0.113.0/33` has a prefix length over 32 (IPv4)")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`trunks`: `carrier` is not an IP address")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`agents`: `0.0.0.0/0` trusts every address")),
        "{errors:#?}"
    );
    assert!(
        errors.iter().any(
            |e| e.contains("`untrusted`: `127.0.0.2 ` has a prefix length")
                || e.contains("`untrusted`: `127.0.0.2 ` is not an IP address")
        ),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`untrusted`: `::1/129` has a prefix length over 128 (IPv6)")),
        "{errors:#?}"
    );
    assert_eq!(errors.len(), 5, "{errors:#?}");
    // Each at the line of its entry (the fixture has 31 lines before).
    let base = std::fs::read_to_string("tests/data/valid.toml")
        .unwrap()
        .lines()
        .count()
        + 1;
    assert_eq!(line(base + 2), 2, "{errors:#?}");
    assert_eq!(line(base + 3), 1, "{errors:#?}");
    assert_eq!(line(base + 4), 2, "{errors:#?}");
}

#[test]
fn without_limits_the_defaults_hold_and_every_key_is_read() {
    let defaults = plan("").expect("valid");
    assert_eq!(defaults.limits(), &ivr::Limits::default());
    let plan = plan(
        r#"
[limits.sip]
rate = 5
burst = 7
ban = "2s"
sources = 100
calls = 3
connections = 4
scanners = ["evil-scanner"]
scanner_ban = "10m"
handshake_timeout = "1500ms"

[limits.sign_in]
slow_after = 2
ban_after = 3
forget_every = "1m"
first_delay = "100ms"
max_delay = "1s"
ban = "5s"
lock_after = 4
lock_window = "2m"
known_for = "24h"

[limits.http]
connections = 50
connections_per_source = 5
header_timeout = "1s"
body_timeout = "2s"
idle_timeout = "3s"
max_body = 2048
max_login_body = 256
"#,
    )
    .expect("valid");
    let limits = plan.limits();
    assert_eq!(limits.sip.rate.per_second, 5);
    assert_eq!(limits.sip.rate.burst, 7);
    assert_eq!(limits.sip.rate.ban, Duration::from_secs(2));
    assert_eq!(limits.sip.rate.max_sources, 100);
    assert_eq!((limits.sip.calls, limits.sip.connections), (3, 4));
    assert!(limits.sip.scanners.matches(b"Evil-Scanner/2"));
    assert!(
        !limits.sip.scanners.matches(b"friendly-scanner"),
        "the list is replaced"
    );
    assert_eq!(limits.sip.scanner_ban, Duration::from_secs(600));
    assert_eq!(limits.sip.handshake_timeout, Duration::from_millis(1500));
    let source = &limits.sign_in.source;
    assert_eq!((source.slow_after, source.ban_after), (2, 3));
    assert_eq!(source.decay, Duration::from_secs(60));
    assert_eq!(source.first_delay, Duration::from_millis(100));
    assert_eq!(source.max_delay, Duration::from_secs(1));
    assert_eq!(source.ban, Duration::from_secs(5));
    let account = &limits.sign_in.account;
    assert_eq!(account.lock_after, 4);
    assert_eq!(account.window, Duration::from_secs(120));
    assert_eq!(account.known_for, Duration::from_secs(86_400));
    let http = &limits.http;
    assert_eq!((http.connections, http.connections_per_source), (50, 5));
    assert_eq!(http.header_timeout, Duration::from_secs(1));
    assert_eq!(http.body_timeout, Duration::from_secs(2));
    assert_eq!(http.idle_timeout, Duration::from_secs(3));
    assert_eq!((http.max_body, http.max_login_body), (2048, 256));
}

#[test]
fn limits_out_of_range_or_unknown_are_refused() {
    let errors = plan(
        r#"
[limits.sip]
burst = 0
ban = "0s"
rate = -1
scanners = [""]
colour = "red"

[limits.sign_in]
first_delay = "2s"
max_delay = "1s"
ban = "soon"

[limits.http]
max_body = 1
"#,
    )
    .unwrap_err();
    for expected in [
        "`burst` must be from 1 to 1000000, not 0",
        "`ban` must be longer than zero",
        "`rate` must be from 0 to 1000000, not -1",
        "`scanners`: an empty pattern would match every User-Agent",
        "unknown key `colour`",
        "`first_delay` must not be longer than `max_delay`",
        "`ban`: `soon` is not a duration",
        "`max_body` must be from 64 to 16777216, not 1",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "no {expected:?} in {errors:#?}"
        );
    }
}

proptest! {
    /// Whatever is written in a `[trust]` list, check answers with a plan
    /// or with errors, never a panic; and a plan it accepts trusts no
    /// address that an untrusted entry covers.
    #[test]
    fn any_untrusted_list_is_checked_without_panicking(
        entries in proptest::collection::vec(
            prop_oneof![
                "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(/[0-9]{1,3})?",
                "[0-9a-f:]{2,20}(/[0-9]{1,3})?",
                "[ -~]{0,20}",
            ],
            0..5,
        ),
    ) {
        let list = entries
            .iter()
            .map(|entry| format!("{entry:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(plan) = plan(&format!("[trust]\nuntrusted = [{list}]\n")) {
            for entry in &entries {
                let network: ivr::IpNetwork = entry.parse().expect("accepted entries parse");
                prop_assert!(!plan.trust().is_trusted(network.address()));
            }
        }
    }
}
