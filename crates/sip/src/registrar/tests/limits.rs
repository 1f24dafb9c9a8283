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
    // The source may sign in again (here to another account) ...
    let mut other = Agent::new("1002", peer("127.0.0.2:5099"));
    other.call_id = "after-ban".into();
    let lifted = other.register(&mut clinic, &["<sip:1002@127.0.0.2:5099>"], None);
    assert_eq!(lifted.response.status, StatusCode::OK);
    assert_eq!(lifted.send_after, None);
    // ... but 1003, which it failed against ten times, stays locked for it
    // until those failures leave the lockout's window.
    attacker.call_id = "after-ban".into();
    assert!(matches!(
        attacker.send(&mut clinic, &[PHONE], None).decision,
        Decision::Locked { .. }
    ));
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
    config.trusted = config
        .trusted
        .clone()
        .with_trunks(vec!["203.0.113.50".parse().unwrap()]);
    let mut clinic = Clinic::new(config);
    let mut trunk = Agent::new("1001", peer("203.0.113.50:5060"));
    trunk.password = "guess".into();
    trunk.send(&mut clinic, &[PHONE], None);
    for _ in 0..15 {
        assert_eq!(trunk.send(&mut clinic, &[PHONE], None).send_after, None);
    }
}

/// Thresholds that lock an account after 3 failures, with the source ban
/// far away so that only the account lock acts.
fn lockout_config() -> RegistrarConfig {
    let mut config = RegistrarConfig::new(REALM);
    config.trusted = TrustedSources::none();
    config.limits.slow_after = 100;
    config.limits.ban_after = 100;
    config.lockout.lock_after = 3;
    config
}

#[test]
fn failures_against_one_account_lock_it_for_strangers_but_not_for_its_own_phone() {
    let mut clinic = Clinic::new(lockout_config());
    // Carol's phone registers from her home address.
    let mut carol = Agent::new("1003", peer("198.51.100.3:5062"));
    assert_eq!(
        carol.register(&mut clinic, &[PHONE], None).response.status,
        StatusCode::OK
    );
    // Guesses from two other addresses.
    for (n, address) in ["192.0.2.1:5060", "192.0.2.2:5060", "192.0.2.1:5060"]
        .into_iter()
        .enumerate()
    {
        let mut guesser = Agent::new("1003", peer(address));
        guesser.password = format!("guess-{n}");
        guesser.call_id = format!("guess-{n}");
        guesser.send(&mut clinic, &[PHONE], None);
        let refused = guesser.send(&mut clinic, &[PHONE], None);
        assert_eq!(refused.response.status, StatusCode::FORBIDDEN);
    }
    // Locked for a stranger, the right password included, and no
    // challenge to try it against.
    let mut stranger = Agent::new("1003", peer("203.0.113.9:5060"));
    let locked = stranger.send(&mut clinic, &[PHONE], None);
    assert_eq!(locked.response.status, StatusCode::FORBIDDEN);
    assert!(
        !locked
            .response
            .headers
            .contains(&HeaderName::WwwAuthenticate)
    );
    assert!(
        matches!(&locked.decision, Decision::Locked { user, .. } if user == "1003"),
        "{:?}",
        locked.decision
    );
    // Her phone refreshes as usual.
    carol.call_id = "refresh".into();
    assert_eq!(
        carol.register(&mut clinic, &[PHONE], None).response.status,
        StatusCode::OK
    );
    // A colleague's success from a guessing address does not open 1003
    // for that address.
    let mut bob = Agent::new("1002", peer("192.0.2.1:5060"));
    assert_eq!(
        bob.register(&mut clinic, &["<sip:1002@192.0.2.1:5060>"], None)
            .response
            .status,
        StatusCode::OK
    );
    let mut again = Agent::new("1003", peer("192.0.2.1:5060"));
    again.call_id = "again".into();
    assert!(matches!(
        again.send(&mut clinic, &[PHONE], None).decision,
        Decision::Locked { .. }
    ));
    // The lock lifts with the window.
    clinic.advance(LockoutLimits::default().window);
    assert_eq!(
        stranger
            .register(&mut clinic, &[PHONE], None)
            .response
            .status,
        StatusCode::OK
    );
}

#[test]
fn a_digest_ban_is_reported_for_the_whole_source() {
    let mut clinic = Clinic::new(flood_config());
    let mut attacker = Agent::new("1003", peer("127.0.0.2:5099"));
    attacker.password = "guess".into();
    attacker.send(&mut clinic, &[PHONE], None);
    let mut last = None;
    for _ in 0..10 {
        last = Some(attacker.send(&mut clinic, &[PHONE], None));
    }
    let until = clinic.start + Duration::from_secs(60);
    assert_eq!(
        last.unwrap().banned_until,
        Some(until),
        "the 10th failure bans"
    );
    let mut carol = Agent::local("1003");
    assert_eq!(
        carol.register(&mut clinic, &[PHONE], None).banned_until,
        None
    );
}
