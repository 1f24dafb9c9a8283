//! Authentication: challenges, credentials, nonces, enumeration, RFC 4475.

use super::*;

#[test]
fn challenge_then_credentials_then_200_for_agent_1003() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    let first = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(first.response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(first.decision, Decision::Challenged { stale: false });
    assert_eq!(first.send_after, None);
    let headers = header_values(&first.response, &HeaderName::WwwAuthenticate);
    assert_eq!(headers.len(), 2);
    assert!(
        headers[0].starts_with(r#"Digest realm="frontdesk", nonce=""#),
        "{}",
        headers[0]
    );
    assert!(
        headers[0].ends_with(r#"algorithm=MD5, qop="auth""#),
        "{}",
        headers[0]
    );
    assert!(
        headers[1].ends_with(r#"algorithm=SHA-256, qop="auth""#),
        "{}",
        headers[1]
    );
    let offered = challenges(&first.response);
    assert_eq!(offered[0].nonce, offered[1].nonce);
    assert!(offered[0].opaque.is_some());
    assert!(
        first.response.headers.to().unwrap().tag().is_some(),
        "responses carry a To tag"
    );
    assert!(clinic.take_events().is_empty());

    let second = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(second.response.status, StatusCode::OK);
    assert_eq!(
        second.decision,
        Decision::Accepted {
            user: "1003".into()
        }
    );
    assert_eq!(
        contacts(&second.response),
        ["<sip:1003@192.0.2.10:5062>;expires=3600"]
    );
    assert_eq!(
        header_values(&second.response, &HeaderName::Date),
        ["Mon, 02 Mar 2026 09:00:00 GMT"]
    );
    assert_eq!(
        clinic.take_events(),
        [
            RegistrarEvent::Registered {
                user: "1003".into(),
                first: true
            },
            RegistrarEvent::BindingsChanged {
                user: "1003".into()
            },
        ]
    );
    assert!(clinic.registrar.is_registered("1003"));
    assert_eq!(clinic.registrar.users(), ["1003"]);
    let bindings = clinic.registrar.bindings("1003");
    assert_eq!(bindings.len(), 1);
    let binding = &bindings[0];
    assert_eq!(binding.uri().to_string(), "sip:1003@192.0.2.10:5062");
    assert_eq!(binding.source, peer("127.0.0.1:5062"));
    assert_eq!(binding.call_id, "reg-1003");
    assert_eq!(binding.cseq, 2);
    assert_eq!(binding.expires_at, clinic.start + Duration::from_secs(3600));
    assert_eq!(binding.expires_at_unix, WALL + 3600);
    assert_eq!(
        clinic.registrar.poll_timeout(),
        Some(clinic.start + Duration::from_secs(3600))
    );
}

/// An Authorization header written the way SIPp writes it (no space after
/// commas, its own parameter order), not through `Credentials::to_params`;
/// `digest::compute_response` itself is pinned by the known-answer
/// vectors in `digest::tests`.
#[test]
fn a_hand_written_authorization_header_is_accepted() {
    let mut clinic = Clinic::standard();
    let first = clinic.send(
        &register_text("1003", "1003", "sipp-1", 1, &[PHONE], Some(600), None),
        peer("127.0.0.1:5062"),
    );
    let challenge = &challenges(&first.response)[0];
    let ha1 = digest::ha1(Algorithm::Md5, "1003", REALM, "demo-1003");
    let response = digest::compute_response(
        Algorithm::Md5,
        &ha1,
        &challenge.nonce,
        Some(&digest::QopAuth::new(1, "6b8b4567")),
        "REGISTER",
        REQUEST_URI,
    );
    let authorization = format!(
        "Digest username=\"1003\",realm=\"frontdesk\",cnonce=\"6b8b4567\",nc=00000001,qop=auth,\
         uri=\"{REQUEST_URI}\",nonce=\"{}\",response=\"{response}\",algorithm=MD5,opaque=\"{}\"",
        challenge.nonce,
        challenge.opaque.as_deref().unwrap()
    );
    let second = clinic.send(
        &register_text(
            "1003",
            "1003",
            "sipp-1",
            2,
            &[PHONE],
            Some(600),
            Some(&authorization),
        ),
        peer("127.0.0.1:5062"),
    );
    assert_eq!(second.response.status, StatusCode::OK);
    assert_eq!(
        contacts(&second.response),
        ["<sip:1003@192.0.2.10:5062>;expires=600"]
    );
}

#[test]
fn wrong_password_is_forbidden() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.password = "demo-1004".into();
    let outcome = carol.register(&mut clinic, &[PHONE], None);
    assert_eq!(outcome.response.status, StatusCode::FORBIDDEN);
    assert!(
        !outcome
            .response
            .headers
            .contains(&HeaderName::WwwAuthenticate)
    );
    assert_eq!(
        outcome.decision,
        Decision::Forbidden {
            username: "1003".into(),
            reason: ForbiddenReason::WrongCredentials
        }
    );
    assert!(!clinic.registrar.is_registered("1003"));
    assert!(clinic.take_events().is_empty());
}

/// Replaces every `nonce="<64 hex>"`, every `;tag=<16 hex>` and `user`.
fn normalize(response: &Response, user: &str) -> String {
    let mut text = String::from_utf8(response.encode().to_vec()).unwrap();
    for (marker, length, placeholder) in [("nonce=\"", 64, "NONCE"), (";tag=", 16, "TAG")] {
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(marker) {
            let start = at + marker.len();
            let end = start + length;
            let value = rest.get(start..end).unwrap_or_default();
            if value.len() == length && value.bytes().all(|b| b.is_ascii_hexdigit()) {
                out.push_str(&rest[..start]);
                out.push_str(placeholder);
                rest = &rest[end..];
            } else {
                out.push_str(&rest[..start]);
                rest = &rest[start..];
            }
        }
        out.push_str(rest);
        text = out;
    }
    text.replace(user, "USER")
}

#[test]
fn an_unknown_user_is_answered_exactly_like_a_wrong_password() {
    let mut config = RegistrarConfig::new(REALM);
    config.trusted = TrustedSources::none();
    let mut clinic = Clinic::new(config);
    let mut carol = Agent::new("1003", peer("192.0.2.10:5062"));
    carol.password = "not-her-password".into();
    let mut nobody = Agent::new("9999", peer("192.0.2.10:5062"));
    carol.call_id = "same-call".into();
    nobody.call_id = "same-call".into();

    let carol_challenge = carol.send(&mut clinic, &[PHONE], None);
    let nobody_challenge = nobody.send(&mut clinic, &["<sip:9999@192.0.2.10:5062>"], None);
    assert_eq!(nobody_challenge.response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        normalize(&carol_challenge.response, "1003"),
        normalize(&nobody_challenge.response, "9999")
    );
    assert_eq!(carol_challenge.send_after, nobody_challenge.send_after);

    let carol_refusal = carol.send(&mut clinic, &[PHONE], None);
    let nobody_refusal = nobody.send(&mut clinic, &["<sip:9999@192.0.2.10:5062>"], None);
    assert_eq!(nobody_refusal.response.status, StatusCode::FORBIDDEN);
    assert_eq!(
        normalize(&carol_refusal.response, "1003"),
        normalize(&nobody_refusal.response, "9999")
    );
    assert_eq!(carol_refusal.send_after, nobody_refusal.send_after);
    assert_eq!(
        nobody_refusal.decision,
        Decision::Forbidden {
            username: "9999".into(),
            reason: ForbiddenReason::UnknownUser
        }
    );
    // Both count as failures against the source: two so far, the fifth
    // of either kind is slowed.
    for _ in 0..2 {
        nobody.send(&mut clinic, &["<sip:9999@192.0.2.10:5062>"], None);
    }
    let slowed = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(slowed.send_after, Some(Duration::from_millis(500)));
}

#[test]
fn an_expired_nonce_gets_a_stale_challenge() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    assert_eq!(
        carol.register(&mut clinic, &[PHONE], None).response.status,
        StatusCode::OK
    );
    clinic.advance(Duration::from_secs(300));
    let refresh = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(refresh.response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refresh.decision, Decision::Challenged { stale: true });
    let offered = challenges(&refresh.response);
    assert_eq!(offered.len(), 2);
    assert!(offered.iter().all(|c| c.stale));
    let header = &header_values(&refresh.response, &HeaderName::WwwAuthenticate)[0];
    assert!(header.ends_with(r#"qop="auth", stale=true"#), "{header}");
    let retry = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(retry.response.status, StatusCode::OK);
    assert_eq!(
        clinic.take_events().last(),
        Some(&RegistrarEvent::BindingsChanged {
            user: "1003".into()
        })
    );

    // An expired nonce with a wrong password is a wrong password.
    clinic.advance(Duration::from_secs(301));
    carol.password = "guess".into();
    let guess = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(guess.response.status, StatusCode::FORBIDDEN);
}

#[test]
fn a_forged_nonce_gets_a_challenge_without_stale() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.send(&mut clinic, &[PHONE], None);
    let challenge = carol.challenge.as_mut().unwrap();
    // A nonce that claims to be younger: the MAC no longer matches.
    challenge.nonce.replace_range(0..16, "0000000000000001");
    let forged = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(forged.response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(forged.decision, Decision::Challenged { stale: false });
    assert!(challenges(&forged.response).iter().all(|c| !c.stale));
    // A nonce from another registrar (another key, as after a restart)
    // is forged too.
    let mut other = Clinic::standard();
    other.registrar = Registrar::new(
        RegistrarConfig::new(REALM),
        agents(),
        &mut StdRng::seed_from_u64(99),
        other.start,
    )
    .unwrap();
    let mut dan = Agent::local("1003");
    dan.send(&mut clinic, &[PHONE], None);
    let foreign = dan.send(&mut other, &[PHONE], None);
    assert_eq!(foreign.decision, Decision::Challenged { stale: false });
    // A client that returns another opaque did not get it from us.
    let mut carol = Agent::local("1003");
    carol.send(&mut clinic, &[PHONE], None);
    carol.challenge.as_mut().unwrap().opaque = Some("ffff".into());
    let outcome = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(outcome.decision, Decision::Challenged { stale: false });
}

#[test]
fn a_replayed_nonce_count_is_refused() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    assert_eq!(
        carol.register(&mut clinic, &[PHONE], None).response.status,
        StatusCode::OK
    );
    let accepted = carol.challenge.clone();
    clinic.take_events();
    // The same bytes again (an attacker who captured them).
    let replay = clinic.send(&carol.last.clone(), carol.source);
    assert_eq!(replay.response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        replay.decision,
        Decision::Replayed {
            user: "1003".into()
        }
    );
    assert!(challenges(&replay.response).iter().all(|c| c.stale));
    // A new CSeq with a count already used.
    carol.nc = 0;
    let reused = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(
        reused.decision,
        Decision::Replayed {
            user: "1003".into()
        }
    );
    // A count above the highest, on the same nonce, is fine.
    carol.challenge = accepted;
    carol.nc = 5;
    let next = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(next.response.status, StatusCode::OK);
    assert_eq!(
        clinic.take_events(),
        [
            RegistrarEvent::Refreshed {
                user: "1003".into()
            },
            RegistrarEvent::BindingsChanged {
                user: "1003".into()
            },
        ]
    );
}

#[test]
fn sha256_credentials_are_accepted_when_offered() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.algorithm = Algorithm::Sha256;
    let outcome = carol.register(&mut clinic, &[PHONE], None);
    assert_eq!(outcome.response.status, StatusCode::OK);
    assert!(carol.last.contains("algorithm=SHA-256"), "{}", carol.last);
    // A user stored as HA1s only: SHA-256 works, MD5 (no HA1) is refused
    // like a wrong password.
    let sha_only = Secret::Ha1 {
        md5: None,
        sha256: Some(digest::ha1(Algorithm::Sha256, "1004", REALM, "demo-1004").to_uppercase()),
    };
    let mut clinic =
        Clinic::with_users(RegistrarConfig::new(REALM), vec![("1004".into(), sha_only)]);
    let mut dan = Agent::local("1004");
    let md5 = dan.register(&mut clinic, &["<sip:1004@192.0.2.40>"], None);
    assert_eq!(md5.response.status, StatusCode::FORBIDDEN);
    dan.algorithm = Algorithm::Sha256;
    dan.challenge = None;
    let sha = dan.register(&mut clinic, &["<sip:1004@192.0.2.40>"], None);
    assert_eq!(sha.response.status, StatusCode::OK);
}

#[test]
fn the_algorithm_order_is_configurable() {
    let mut config = RegistrarConfig::new(REALM);
    config.algorithms = vec![Algorithm::Sha256, Algorithm::Md5];
    let mut clinic = Clinic::new(config);
    let mut carol = Agent::local("1003");
    let first = carol.send(&mut clinic, &[PHONE], None);
    let order: Vec<Algorithm> = challenges(&first.response)
        .iter()
        .map(|c| c.algorithm)
        .collect();
    assert_eq!(order, [Algorithm::Sha256, Algorithm::Md5]);

    // SHA-256 only: MD5 credentials (a forced answer) are challenged again.
    let mut config = RegistrarConfig::new(REALM);
    config.algorithms = vec![Algorithm::Sha256];
    let mut clinic = Clinic::new(config);
    let mut carol = Agent::local("1003");
    let first = carol.send(&mut clinic, &[PHONE], None);
    let offered = challenges(&first.response);
    assert_eq!(offered.len(), 1);
    let mut downgraded = offered[0].clone();
    downgraded.algorithm = Algorithm::Md5;
    carol.challenge = Some(downgraded);
    let outcome = carol.send(&mut clinic, &[PHONE], None);
    assert_eq!(outcome.decision, Decision::Challenged { stale: false });
    // -sess variants can be offered and are checked with the same HA1.
    let mut config = RegistrarConfig::new(REALM);
    config.algorithms = vec![Algorithm::Md5Sess];
    let mut clinic = Clinic::new(config);
    let mut carol = Agent::local("1003");
    carol.algorithm = Algorithm::Md5Sess;
    assert_eq!(
        carol.register(&mut clinic, &[PHONE], None).response.status,
        StatusCode::OK
    );
}

#[test]
fn credentials_for_another_agent_are_forbidden_and_not_counted() {
    let mut clinic = Clinic::new(flood_config());
    let mut carol = Agent::new("1003", peer("127.0.0.2:5062"));
    carol.to_user = "1004".into();
    for _ in 0..12 {
        let outcome = carol.register(&mut clinic, &["<sip:1004@192.0.2.10>"], None);
        assert_eq!(outcome.response.status, StatusCode::FORBIDDEN);
        assert_eq!(
            outcome.decision,
            Decision::Forbidden {
                username: "1003".into(),
                reason: ForbiddenReason::OtherAor
            }
        );
        assert_eq!(outcome.send_after, None);
    }
    assert!(!clinic.registrar.is_registered("1004"));
}

fn torture(name: &str) -> String {
    let path = format!(
        "{}/tests/data/rfc4475/{name}.dat",
        env!("CARGO_MANIFEST_DIR")
    );
    String::from_utf8(std::fs::read(path).unwrap()).unwrap()
}

/// `text` with an Authorization header for `user` inserted after the
/// request line, answering `challenge`.
fn with_credentials(text: &str, user: &str, password: &str, challenge: &Challenge) -> String {
    let credentials = Credentials::answer(
        challenge,
        user,
        password,
        "REGISTER",
        "sip:example.com",
        "c",
        1,
    );
    let line_end = text.find("\r\n").unwrap() + 2;
    format!(
        "{}Authorization: {}\r\n{}",
        &text[..line_end],
        credentials.to_params(),
        &text[line_end..]
    )
}

#[test]
fn rfc4475_register_messages() {
    let mut clinic = Clinic::with_users(
        RegistrarConfig::new(REALM),
        vec![
            ("user".into(), Secret::Password("pw".into())),
            ("watson".into(), Secret::Password("pw".into())),
        ],
    );
    let source = peer("127.0.0.1:5060");
    // §3.3.4: a non-SIP AOR.
    let unksm2 = clinic.send(&torture("unksm2"), source);
    assert_eq!(unksm2.response.status, StatusCode::BAD_REQUEST);
    assert_eq!(&*unksm2.response.reason, "AOR must be a SIP or SIPS URI");
    // §3.3.7: an unknown authorization scheme is challenged.
    let regaut01 = clinic.send(&torture("regaut01"), source);
    assert_eq!(regaut01.response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(regaut01.decision, Decision::Challenged { stale: false });
    let challenge = &challenges(&regaut01.response)[0];
    // §3.3.14: the escaped Route stays part of the contact.
    let regescrt = with_credentials(&torture("regescrt"), "user", "pw", challenge);
    let outcome = clinic.send(&regescrt, source);
    assert_eq!(outcome.response.status, StatusCode::OK);
    assert_eq!(
        contacts(&outcome.response),
        ["<sip:user@example.com?Route=%3Csip:sip.example.com%3E>;expires=3600"]
    );
    // §3.3.12 and §3.3.13: a contact parameter and a URI parameter of
    // the same name make two bindings; the URI parameter is kept.
    let mut challenge = challenge.clone();
    challenge.nonce = clinic.registrar.nonces.issue(clinic.now, REALM);
    let cparam01 = with_credentials(&torture("cparam01"), "watson", "pw", &challenge);
    let outcome = clinic.send(&cparam01, source);
    assert_eq!(
        contacts(&outcome.response),
        ["<sip:+19725552222@gw1.example.net>;unknownparam;expires=3600"]
    );
    // §3.3.13: a URI parameter is kept in the binding.
    challenge.nonce = clinic.registrar.nonces.issue(clinic.now, REALM);
    let cparam02 = with_credentials(&torture("cparam02"), "watson", "pw", &challenge);
    let outcome = clinic.send(&cparam02, source);
    assert_eq!(
        contacts(&outcome.response),
        [
            "<sip:+19725552222@gw1.example.net;unknownparam>;expires=3600",
            "<sip:+19725552222@gw1.example.net>;unknownparam;expires=3600"
        ]
    );
}

#[test]
fn malformed_registers_get_400() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.send(&mut clinic, &[PHONE], None);
    for (contact, reason) in [
        (
            "<sip:1003@192.0.2.10>;expires=soon",
            "Bad expires parameter in Contact",
        ),
        ("<sip:1003@192.0.2.10>;q=2", "Bad q parameter in Contact"),
        ("<tel:+15550100>", "Contact must be a SIP or SIPS URI"),
    ] {
        let outcome = carol.send(&mut clinic, &[contact], None);
        assert_eq!(
            outcome.response.status,
            StatusCode::BAD_REQUEST,
            "{contact}"
        );
        assert_eq!(&*outcome.response.reason, reason);
    }
    let no_user = clinic.send(
        &register_text("1003", "1003", "x", 1, &[PHONE], None, None)
            .replace("To: <sip:1003@127.0.0.1>", "To: <sip:127.0.0.1>"),
        peer("127.0.0.1:9"),
    );
    assert_eq!(&*no_user.response.reason, "AOR has no user part");
    let bad_digest = clinic.send(
        &register_text(
            "1003",
            "1003",
            "x",
            1,
            &[PHONE],
            None,
            Some("Digest realm=\"frontdesk\""),
        ),
        peer("127.0.0.1:9"),
    );
    assert_eq!(bad_digest.response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        &*bad_digest.response.reason,
        "Bad Authorization header: Digest parameter username is missing"
    );
    // Credentials for another realm are ignored: a challenge.
    let elsewhere = clinic.send(
        &register_text(
            "1003",
            "1003",
            "x",
            2,
            &[PHONE],
            None,
            Some("Digest username=\"1003\", realm=\"elsewhere\", nonce=\"n\", uri=\"sip:x\", response=\"0\""),
        ),
        peer("127.0.0.1:9"),
    );
    assert_eq!(elsewhere.decision, Decision::Challenged { stale: false });
    let options = parse(
        &register_text("1003", "1003", "x", 3, &[], None, None).replace("REGISTER", "OPTIONS"),
    );
    let outcome =
        clinic
            .registrar
            .handle_register(clinic.now, clinic.wall(), &options, peer("127.0.0.1:9"));
    assert_eq!(outcome.response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        header_values(&outcome.response, &HeaderName::Allow),
        ["REGISTER"]
    );
}
