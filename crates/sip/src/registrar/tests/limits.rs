//! Auth-failure limits per source, and trusted sources.

use super::*;

#[test]
fn failures_slow_then_ban_then_the_ban_lifts() {
    let mut clinic = Clinic::new(flood_config());
    let mut attacker = Agent::new("1003", peer("127.0.0.2:5099"));
    attacker.password = "guess".into();
    attacker.send(&mut clinic, &[PHONE], None);
    let mut delays = Vec::new();
    for _ in 0..10 {
        let outcome = attacker.send(&mut clinic, &[PHONE], None);
        assert_eq!(outcome.response.status, StatusCode::FORBIDDEN);
        delays.push(outcome.send_after.map(|d| d.as_millis()));
    }
    assert_eq!(
        delays,
        [
            None,
            None,
            None,
            None,
            Some(500),
            Some(1000),
            Some(2000),
            Some(4000),
            Some(8000),
            Some(8000)
        ]
    );
    // Banned: even the right password gets a bare 403, at once.
    attacker.password = "demo-1003".into();
    let banned = attacker.send(&mut clinic, &[PHONE], None);
    assert_eq!(banned.response.status, StatusCode::FORBIDDEN);
    assert!(
        !banned
            .response
            .headers
            .contains(&HeaderName::WwwAuthenticate)
    );
    assert_eq!(
        banned.decision,
        Decision::Banned {
            until: clinic.start + Duration::from_secs(60)
        }
    );
    assert_eq!(banned.send_after, None);
    let fresh = clinic.send(
        &register_text("1003", "1003", "new", 1, &[PHONE], None, None),
        peer("127.0.0.2:6000"),
    );
    assert!(
        matches!(fresh.decision, Decision::Banned { .. }),
        "per address, any port"
    );
    // Meanwhile 127.0.0.1 registers as usual.
    let mut carol = Agent::local("1003");
    let outcome = carol.register(&mut clinic, &[PHONE], None);
    assert_eq!(outcome.response.status, StatusCode::OK);
    assert_eq!(outcome.send_after, None);
    // An untrusted source elsewhere is not affected either.
    let mut bob = Agent::new("1002", peer("198.51.100.2:5062"));
    let outcome = bob.register(&mut clinic, &["<sip:1002@198.51.100.2:5062>"], None);
    assert_eq!(
        (outcome.response.status, outcome.send_after),
        (StatusCode::OK, None)
    );
    // At 60 s the ban lifts; the points decayed meanwhile.
    clinic.advance(Duration::from_secs(59));
    assert!(matches!(
        attacker.send(&mut clinic, &[PHONE], None).decision,
        Decision::Banned { .. }
    ));
    clinic.advance(Duration::from_secs(1));
    attacker.call_id = "after-ban".into();
    let lifted = attacker.register(&mut clinic, &[PHONE], None);
    assert_eq!(lifted.response.status, StatusCode::OK);
    assert_eq!(lifted.send_after, None);
}

#[test]
fn trusted_sources_are_exempt() {
    let mut clinic = Clinic::new(flood_config());
    let mut local = Agent::local("1003");
    local.password = "guess".into();
    local.send(&mut clinic, &[PHONE], None);
    for _ in 0..30 {
        let outcome = local.send(&mut clinic, &[PHONE], None);
        assert_eq!(outcome.response.status, StatusCode::FORBIDDEN);
        assert_eq!(outcome.send_after, None);
    }
    local.password = "demo-1003".into();
    assert_eq!(
        local.send(&mut clinic, &[PHONE], None).response.status,
        StatusCode::OK
    );
    // The trunk address configured as trusted is exempt too.
    let mut config = flood_config();
    config.trusted.addresses = vec!["203.0.113.50".parse().unwrap()];
    let mut clinic = Clinic::new(config);
    let mut trunk = Agent::new("1001", peer("203.0.113.50:5060"));
    trunk.password = "guess".into();
    trunk.send(&mut clinic, &[PHONE], None);
    for _ in 0..15 {
        assert_eq!(trunk.send(&mut clinic, &[PHONE], None).send_after, None);
    }
}
