//! Bindings: expiries, several contacts, refresh, un-REGISTER, expiry
//! timers, CSeq ordering, queries, persistence, configuration.

use super::*;

#[test]
fn an_interval_below_min_expires_gets_423() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    let outcome = carol.register(&mut clinic, &[PHONE], Some(30));
    assert_eq!(outcome.response.status, StatusCode::INTERVAL_TOO_BRIEF);
    assert_eq!(
        header_values(&outcome.response, &HeaderName::MinExpires),
        ["60"]
    );
    assert!(!clinic.registrar.is_registered("1003"));
    let contact_param = carol.send(
        &mut clinic,
        &["<sip:1003@192.0.2.10:5062>;expires=59"],
        None,
    );
    assert_eq!(
        contact_param.response.status,
        StatusCode::INTERVAL_TOO_BRIEF
    );
    let exactly = carol.send(&mut clinic, &[PHONE], Some(60));
    assert_eq!(exactly.response.status, StatusCode::OK);
    assert_eq!(
        contacts(&exactly.response),
        ["<sip:1003@192.0.2.10:5062>;expires=60"]
    );
}

#[test]
fn expiries_are_clamped_and_chosen_contact_first() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    let long = carol.register(&mut clinic, &[PHONE], Some(7200));
    assert_eq!(
        contacts(&long.response),
        ["<sip:1003@192.0.2.10:5062>;expires=3600"]
    );
    // The contact's own expires wins over the Expires header.
    let mixed = carol.send(
        &mut clinic,
        &[
            "<sip:1003@192.0.2.10:5062>;expires=100",
            "<sip:1003@192.0.2.10:5070>",
        ],
        Some(3000),
    );
    assert_eq!(
        contacts(&mixed.response),
        [
            "<sip:1003@192.0.2.10:5062>;expires=100",
            "<sip:1003@192.0.2.10:5070>;expires=3000"
        ]
    );
    // Overlarge values (RFC 4475 §3.1.2.4) saturate, then are clamped.
    let huge = carol.send(
        &mut clinic,
        &["<sip:1003@192.0.2.10:5062>;expires=280297596632815"],
        None,
    );
    assert_eq!(huge.response.status, StatusCode::OK);
    assert_eq!(
        contacts(&huge.response)[0],
        "<sip:1003@192.0.2.10:5062>;expires=3600"
    );
}

#[test]
fn several_contacts_per_agent() {
    let mut clinic = Clinic::standard();
    let mut desk = Agent::local("1005");
    let outcome = desk.register(
        &mut clinic,
        &[
            "\"Desk\" <sip:1005@192.0.2.20:5062>;q=0.5",
            "<sip:1005@192.0.2.21:5062;transport=tcp>",
        ],
        None,
    );
    assert_eq!(outcome.response.status, StatusCode::OK);
    let mut mobile = Agent::new("1005", peer("203.0.113.9:40000"));
    mobile.call_id = "mobile".into();
    clinic.advance(Duration::from_secs(10));
    let second = mobile.register(&mut clinic, &["<sip:1005@203.0.113.9:40000>"], Some(600));
    assert_eq!(second.response.status, StatusCode::OK);
    assert_eq!(
        contacts(&second.response),
        [
            "<sip:1005@203.0.113.9:40000>;expires=600",
            "<sip:1005@192.0.2.21:5062;transport=tcp>;expires=3590",
            "\"Desk\" <sip:1005@192.0.2.20:5062>;q=0.5;expires=3590",
        ]
    );
    let ring: Vec<(String, SocketAddr)> = clinic
        .registrar
        .bindings("1005")
        .iter()
        .map(|b| (b.uri().to_string(), b.source.address))
        .collect();
    assert_eq!(
        ring,
        [
            (
                "sip:1005@203.0.113.9:40000".into(),
                "203.0.113.9:40000".parse().unwrap()
            ),
            (
                "sip:1005@192.0.2.21:5062;transport=tcp".into(),
                "127.0.0.1:5062".parse().unwrap()
            ),
            (
                "sip:1005@192.0.2.20:5062".into(),
                "127.0.0.1:5062".parse().unwrap()
            ),
        ]
    );
    assert_eq!(clinic.registrar.bindings("1005")[2].q, Some(500));
    assert_eq!(
        clinic.take_events(),
        [
            RegistrarEvent::Registered {
                user: "1005".into(),
                first: true
            },
            RegistrarEvent::BindingsChanged {
                user: "1005".into()
            },
            RegistrarEvent::Registered {
                user: "1005".into(),
                first: false
            },
            RegistrarEvent::BindingsChanged {
                user: "1005".into()
            },
        ]
    );
}

#[test]
fn a_refresh_is_not_a_first_registration() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.register(&mut clinic, &[PHONE], Some(600));
    clinic.take_events();
    clinic.advance(Duration::from_secs(500));
    // (The nonce is 500 s old by now: a stale challenge comes first.)
    let refresh = carol.register(&mut clinic, &[PHONE], Some(600));
    assert_eq!(refresh.response.status, StatusCode::OK);
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
    assert_eq!(
        clinic.registrar.poll_timeout(),
        Some(clinic.start + Duration::from_secs(1100)),
        "the deadline moved"
    );
    clinic.advance(Duration::from_secs(200));
    assert!(
        clinic.registrar.is_registered("1003"),
        "not expired at 700 s"
    );
}

#[test]
fn unregister_with_expires_zero() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    let other = "<sip:1003@192.0.2.10:5070>";
    carol.register(&mut clinic, &[PHONE, other], None);
    clinic.take_events();
    let one = carol.send(&mut clinic, &["<sip:1003@192.0.2.10:5062>;expires=0"], None);
    assert_eq!(
        contacts(&one.response),
        ["<sip:1003@192.0.2.10:5070>;expires=3600"]
    );
    assert_eq!(
        clinic.take_events(),
        [RegistrarEvent::BindingsChanged {
            user: "1003".into()
        }]
    );
    let last = carol.send(&mut clinic, &[other], Some(0));
    assert_eq!(last.response.status, StatusCode::OK);
    assert!(contacts(&last.response).is_empty());
    assert_eq!(
        clinic.take_events(),
        [
            RegistrarEvent::Unregistered {
                user: "1003".into(),
                reason: UnregisterReason::Removed
            },
            RegistrarEvent::BindingsChanged {
                user: "1003".into()
            },
        ]
    );
    assert!(!clinic.registrar.is_registered("1003"));
    assert_eq!(clinic.registrar.poll_timeout(), None);
    // Removing what is not there changes nothing.
    let again = carol.send(&mut clinic, &[other], Some(0));
    assert_eq!(again.response.status, StatusCode::OK);
    assert!(clinic.take_events().is_empty());
}

#[test]
fn unregister_with_the_wildcard() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.register(&mut clinic, &[PHONE, "<sip:1003@192.0.2.10:5070>"], None);
    clinic.take_events();
    for (contacts, expires, reason) in [
        (&["*"][..], None, "Contact * needs Expires: 0"),
        (&["*"][..], Some(60), "Contact * needs Expires: 0"),
        (
            &["*", PHONE][..],
            Some(0),
            "Contact * must be the only contact",
        ),
    ] {
        let outcome = carol.send(&mut clinic, contacts, expires);
        assert_eq!(outcome.response.status, StatusCode::BAD_REQUEST);
        assert_eq!(&*outcome.response.reason, reason);
        assert_eq!(outcome.decision, Decision::Rejected);
    }
    assert_eq!(clinic.registrar.bindings("1003").len(), 2);
    let all = carol.send(&mut clinic, &["*"], Some(0));
    assert_eq!(all.response.status, StatusCode::OK);
    assert!(contacts(&all.response).is_empty());
    assert!(!clinic.registrar.is_registered("1003"));
    assert_eq!(
        clinic.take_events(),
        [
            RegistrarEvent::Unregistered {
                user: "1003".into(),
                reason: UnregisterReason::Removed
            },
            RegistrarEvent::BindingsChanged {
                user: "1003".into()
            },
        ]
    );
}

#[test]
fn expiry_unregisters_at_the_right_virtual_time() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.register(
        &mut clinic,
        &[
            "<sip:1003@192.0.2.10:5062>;expires=120",
            "<sip:1003@192.0.2.10:5070>;expires=300",
        ],
        None,
    );
    clinic.events.clear();
    assert_eq!(
        clinic.registrar.poll_timeout(),
        Some(clinic.start + Duration::from_secs(120))
    );
    clinic.advance(Duration::from_secs(119));
    assert!(clinic.events.is_empty());
    clinic.advance(Duration::from_secs(3600));
    assert_eq!(
        clinic.events,
        [
            (
                Duration::from_secs(120),
                RegistrarEvent::BindingsChanged {
                    user: "1003".into()
                }
            ),
            (
                Duration::from_secs(300),
                RegistrarEvent::Unregistered {
                    user: "1003".into(),
                    reason: UnregisterReason::Expired
                }
            ),
            (
                Duration::from_secs(300),
                RegistrarEvent::BindingsChanged {
                    user: "1003".into()
                }
            ),
        ]
    );
    assert!(!clinic.registrar.is_registered("1003"));
    assert_eq!(clinic.registrar.poll_timeout(), None);
}

#[test]
fn cseq_and_call_id_ordering() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.register(&mut clinic, &[PHONE], Some(600));
    let stored = carol.cseq;
    clinic.take_events();
    for cseq in [stored - 1, stored] {
        carol.cseq = cseq - 1;
        let outcome = carol.send(&mut clinic, &[PHONE], Some(1200));
        assert_eq!(
            outcome.response.status,
            StatusCode::SERVER_INTERNAL_ERROR,
            "CSeq {cseq}"
        );
        assert_eq!(outcome.decision, Decision::Rejected);
    }
    carol.cseq = stored - 1;
    let wildcard = carol.send(&mut clinic, &["*"], Some(0));
    assert_eq!(wildcard.response.status, StatusCode::SERVER_INTERNAL_ERROR);
    assert!(clinic.take_events().is_empty(), "nothing changed");
    assert_eq!(clinic.registrar.bindings("1003")[0].cseq, stored);
    // Another Call-ID (the phone restarted) replaces the binding, whatever
    // its CSeq.
    carol.call_id = "after-reboot".into();
    carol.cseq = 0;
    let rebooted = carol.register(&mut clinic, &[PHONE], Some(900));
    assert_eq!(rebooted.response.status, StatusCode::OK);
    let binding = &clinic.registrar.bindings("1003")[0];
    assert_eq!(
        (binding.call_id.as_str(), binding.cseq),
        ("after-reboot", 1)
    );
    assert_eq!(
        contacts(&rebooted.response),
        ["<sip:1003@192.0.2.10:5062>;expires=900"]
    );
}

#[test]
fn a_register_without_contact_is_a_query() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    let empty = carol.register(&mut clinic, &[], None);
    assert_eq!(empty.response.status, StatusCode::OK);
    assert!(contacts(&empty.response).is_empty());
    carol.send(&mut clinic, &[PHONE], Some(600));
    clinic.take_events();
    clinic.advance(Duration::from_secs(100));
    let query = carol.send(&mut clinic, &[], None);
    assert_eq!(query.response.status, StatusCode::OK);
    assert_eq!(
        query.decision,
        Decision::Accepted {
            user: "1003".into()
        }
    );
    assert_eq!(
        contacts(&query.response),
        ["<sip:1003@192.0.2.10:5062>;expires=500"]
    );
    assert_eq!(
        header_values(&query.response, &HeaderName::Date),
        ["Mon, 02 Mar 2026 09:01:40 GMT"]
    );
    assert!(clinic.take_events().is_empty());
    // A query needs credentials like anything else.
    let stranger = clinic.send(
        &register_text("1003", "1003", "x", 1, &[], None, None),
        peer("127.0.0.1:9"),
    );
    assert_eq!(stranger.response.status, StatusCode::UNAUTHORIZED);
}

#[test]
fn export_and_restore_keep_the_remaining_lifetime() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.register(&mut clinic, &["<sip:1003@192.0.2.10:5062>;q=0.7"], None);
    let mut grace = Agent::new(
        "1007",
        Peer {
            transport: TransportKind::Tcp,
            address: "192.0.2.30:50123".parse().unwrap(),
            connection: Some(crate::peer::ConnectionId(4)),
        },
    );
    grace.register(
        &mut clinic,
        &["<sip:1007@192.0.2.30:5060;transport=tcp>"],
        Some(600),
    );
    clinic.advance(Duration::from_secs(600));
    assert!(
        !clinic.registrar.is_registered("1007"),
        "Grace's binding expired"
    );
    let mut grace = Agent::new(
        "1007",
        Peer {
            transport: TransportKind::Tcp,
            address: "192.0.2.30:50124".parse().unwrap(),
            connection: Some(crate::peer::ConnectionId(5)),
        },
    );
    grace.register(
        &mut clinic,
        &["<sip:1007@192.0.2.30:5060;transport=tcp>"],
        Some(1200),
    );
    let stored = clinic.registrar.export(clinic.now, clinic.wall());
    assert_eq!(
        stored,
        [
            StoredBinding {
                user: "1003".into(),
                contact: "<sip:1003@192.0.2.10:5062>;q=0.7".into(),
                transport: StoredTransport::Udp,
                source: "127.0.0.1:5062".parse().unwrap(),
                path: Vec::new(),
                client: None,
                call_id: "reg-1003".into(),
                cseq: 2,
                expires_at_unix: WALL + 3600,
            },
            StoredBinding {
                user: "1007".into(),
                contact: "<sip:1007@192.0.2.30:5060;transport=tcp>".into(),
                transport: StoredTransport::Tcp,
                source: "192.0.2.30:50124".parse().unwrap(),
                path: Vec::new(),
                client: None,
                call_id: "reg-1007".into(),
                cseq: 2,
                expires_at_unix: WALL + 600 + 1200,
            },
        ]
    );
    // What the daemon writes to disk and reads back.
    let json = serde_json::to_string(&stored).unwrap();
    assert!(json.contains(r#""transport":"udp""#), "{json}");
    let read: Vec<StoredBinding> = serde_json::from_str(&json).unwrap();
    assert_eq!(read, stored);

    // The daemon comes back 1000 s later (wall clock), on a new monotonic
    // clock: Carol had 3000 s left, so 2000 s now; Grace had 1200 s left,
    // so 200 s now. A binding of a user no longer configured and one that
    // ran out are left out.
    let mut extra = read.clone();
    extra.push(StoredBinding {
        user: "2001".into(),
        ..read[0].clone()
    });
    extra.push(StoredBinding {
        expires_at_unix: WALL + 1000,
        contact: "<sip:1003@192.0.2.10:5099>".into(),
        ..read[0].clone()
    });
    let mut restarted = Clinic::standard();
    restarted.wall_base = WALL + 1600;
    let summary = restarted
        .registrar
        .restore(restarted.now, restarted.wall(), extra);
    assert_eq!(
        summary,
        RestoreSummary {
            restored: 2,
            expired: 1,
            refused: 1
        }
    );
    restarted.drain();
    assert_eq!(
        restarted.take_events(),
        [
            RegistrarEvent::Registered {
                user: "1003".into(),
                first: true
            },
            RegistrarEvent::BindingsChanged {
                user: "1003".into()
            },
            RegistrarEvent::Registered {
                user: "1007".into(),
                first: true
            },
            RegistrarEvent::BindingsChanged {
                user: "1007".into()
            },
        ]
    );
    let carol_binding = &restarted.registrar.bindings("1003")[0];
    assert_eq!(
        carol_binding.expires_at,
        restarted.now + Duration::from_secs(2000)
    );
    assert_eq!(carol_binding.q, Some(700));
    assert_eq!(carol_binding.source, peer("127.0.0.1:5062"));
    let grace_binding = &restarted.registrar.bindings("1007")[0];
    assert_eq!(
        grace_binding.expires_at,
        restarted.now + Duration::from_secs(200)
    );
    assert_eq!(grace_binding.source.transport, TransportKind::Tcp);
    assert_eq!(
        grace_binding.source.connection, None,
        "the old connection is gone"
    );
    // The restored Call-ID and CSeq still order requests: CSeq 2 of
    // reg-1003 is not above the stored 2.
    let mut carol = Agent::local("1003");
    let old = carol.register(&mut restarted, &[PHONE], None);
    assert_eq!(old.response.status, StatusCode::SERVER_INTERNAL_ERROR);
    restarted.advance(Duration::from_secs(200));
    assert!(!restarted.registrar.is_registered("1007"));
    restarted.advance(Duration::from_secs(1799));
    assert!(restarted.registrar.is_registered("1003"));
    restarted.advance(Duration::from_secs(1));
    assert!(!restarted.registrar.is_registered("1003"));
    assert_eq!(
        restarted.events.last(),
        Some(&(
            Duration::from_secs(2000),
            RegistrarEvent::BindingsChanged {
                user: "1003".into()
            }
        ))
    );
}

#[test]
fn the_oldest_contact_goes_beyond_the_limit() {
    let mut config = RegistrarConfig::new(REALM);
    config.max_contacts = 2;
    let mut clinic = Clinic::new(config);
    let mut carol = Agent::local("1003");
    for port in [5060, 5061, 5062] {
        clinic.advance(Duration::from_secs(1));
        let contact = format!("<sip:1003@192.0.2.10:{port}>");
        let outcome = carol.register(&mut clinic, &[&contact], None);
        assert_eq!(outcome.response.status, StatusCode::OK);
    }
    let uris: Vec<String> = clinic
        .registrar
        .bindings("1003")
        .iter()
        .map(|b| b.uri().to_string())
        .collect();
    assert_eq!(
        uris,
        ["sip:1003@192.0.2.10:5062", "sip:1003@192.0.2.10:5061"]
    );
    assert_eq!(
        clinic.registrar.poll_timeout(),
        Some(clinic.start + Duration::from_secs(3602)),
        "the evicted binding's deadline went with it"
    );
}

#[test]
fn removing_a_user_from_the_configuration_unregisters_it() {
    let mut clinic = Clinic::standard();
    let mut carol = Agent::local("1003");
    carol.register(&mut clinic, &[PHONE], None);
    let mut alice = Agent::local("1001");
    alice.register(&mut clinic, &["<sip:1001@192.0.2.11>"], None);
    clinic.take_events();
    let remaining: Vec<(String, Secret)> = agents()
        .into_iter()
        .filter(|(user, _)| user != "1003")
        .collect();
    clinic.registrar.set_users(remaining).unwrap();
    clinic.drain();
    assert_eq!(
        clinic.take_events(),
        [
            RegistrarEvent::Unregistered {
                user: "1003".into(),
                reason: UnregisterReason::Deconfigured
            },
            RegistrarEvent::BindingsChanged {
                user: "1003".into()
            },
        ]
    );
    assert_eq!(clinic.registrar.users(), ["1001"]);
    assert!(!clinic.registrar.knows("1003"));
    assert_eq!(
        clinic.registrar.poll_timeout(),
        clinic
            .registrar
            .bindings("1001")
            .first()
            .map(|b| b.expires_at)
    );
}

#[test]
fn bad_configurations_are_refused() {
    let mut rng = StdRng::seed_from_u64(1);
    let now = Instant::now();
    let build = |config: RegistrarConfig, users: Vec<(String, Secret)>, rng: &mut StdRng| {
        Registrar::new(config, users, rng, now).map(|_| ())
    };
    let mut config = RegistrarConfig::new(REALM);
    config.algorithms.clear();
    assert_eq!(
        build(config, agents(), &mut rng),
        Err(RegistrarError::NoAlgorithms)
    );
    let mut config = RegistrarConfig::new(REALM);
    config.min_expires = 4000;
    assert!(matches!(
        build(config, agents(), &mut rng),
        Err(RegistrarError::Expires { .. })
    ));
    assert_eq!(
        build(RegistrarConfig::new(""), agents(), &mut rng),
        Err(RegistrarError::EmptyRealm)
    );
    let bad = Secret::Ha1 {
        md5: Some("abc".into()),
        sha256: None,
    };
    assert_eq!(
        build(
            RegistrarConfig::new(REALM),
            vec![("1001".into(), bad)],
            &mut rng
        ),
        Err(RegistrarError::BadHa1 {
            user: "1001".into(),
            algorithm: Algorithm::Md5
        })
    );
    assert_eq!(
        format!("{:?}", Secret::Password("demo-1001".into())),
        "Secret::Password(..)"
    );
}
