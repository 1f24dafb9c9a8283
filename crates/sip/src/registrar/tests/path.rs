//! Path (RFC 3327): a REGISTER that came through Kamailio.

use super::*;

/// Kamailio on 127.0.0.10 forwarded the phone's REGISTER, with its Path
/// naming itself and the address the phone sent from.
const KAMAILIO: &str = "127.0.0.10:5070";
const KAMAILIO_PATH: &str = "<sip:127.0.0.10:5070;lr;received=sip:192.0.2.10:5062>";

fn through_kamailio(user: &str) -> Agent {
    let mut agent = Agent::new(user, peer(KAMAILIO));
    agent.extra.push(format!("Path: {KAMAILIO_PATH}"));
    agent
}

#[test]
fn path_is_stored_with_the_binding_and_echoed_in_the_200() {
    let mut clinic = Clinic::standard();
    let mut carol = through_kamailio("1003");
    // No `Supported: path` from the phone: Kamailio's lazy mode adds Path
    // anyway, and it is kept all the same.
    assert!(!carol.text(&[PHONE], None).contains("Supported"));
    carol.cseq = 0;
    let outcome = carol.register(&mut clinic, &[PHONE], None);
    assert_eq!(outcome.response.status, StatusCode::OK);
    assert_eq!(
        header_values(&outcome.response, &HeaderName::Path),
        [KAMAILIO_PATH]
    );
    let bindings = clinic.registrar.bindings("1003");
    assert_eq!(bindings.len(), 1);
    let path: Vec<String> = bindings[0].path.iter().map(ToString::to_string).collect();
    assert_eq!(path, [KAMAILIO_PATH]);
    assert_eq!(bindings[0].source, peer(KAMAILIO));
    assert_eq!(bindings[0].uri().to_string(), "sip:1003@192.0.2.10:5062");
}

#[test]
fn several_path_values_keep_their_order_and_a_refresh_replaces_them() {
    let mut clinic = Clinic::standard();
    let mut carol = through_kamailio("1003");
    carol
        .extra
        .push("Path: <sip:edge.example;lr>, <sip:far.example;lr>".into());
    let outcome = carol.register(&mut clinic, &[PHONE], None);
    assert_eq!(outcome.response.status, StatusCode::OK);
    let path: Vec<String> = clinic.registrar.bindings("1003")[0]
        .path
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        path,
        [
            KAMAILIO_PATH,
            "<sip:edge.example;lr>",
            "<sip:far.example;lr>"
        ]
    );
    // Registered again directly: no proxy on the way any more.
    carol.extra.clear();
    carol.source = peer("192.0.2.10:5062");
    let outcome = carol.register(&mut clinic, &[PHONE], None);
    assert_eq!(outcome.response.status, StatusCode::OK);
    assert!(header_values(&outcome.response, &HeaderName::Path).is_empty());
    assert!(clinic.registrar.bindings("1003")[0].path.is_empty());
}

#[test]
fn a_bad_or_endless_path_is_400_and_binds_nothing() {
    let mut clinic = Clinic::standard();
    let mut carol = through_kamailio("1003");
    carol.extra = vec!["Path: <tel:+15550100>".into()];
    let outcome = carol.register(&mut clinic, &[PHONE], None);
    assert_eq!(outcome.response.status, StatusCode::BAD_REQUEST);
    carol.extra = vec!["Path: <sip:unclosed".into()];
    let outcome = carol.register(&mut clinic, &[PHONE], None);
    assert_eq!(outcome.response.status, StatusCode::BAD_REQUEST);
    carol.extra = (0..=MAX_PATH)
        .map(|hop| format!("Path: <sip:hop{hop}.example;lr>"))
        .collect();
    let outcome = carol.register(&mut clinic, &[PHONE], None);
    assert_eq!(outcome.response.status, StatusCode::BAD_REQUEST);
    assert!(!clinic.registrar.is_registered("1003"));
}

#[test]
fn path_survives_export_and_restore_and_old_files_read_without_it() {
    let mut clinic = Clinic::standard();
    let mut carol = through_kamailio("1003");
    carol.register(&mut clinic, &[PHONE], Some(3600));
    let stored = clinic.registrar.export(clinic.now, clinic.wall());
    assert_eq!(stored[0].path, [KAMAILIO_PATH]);
    assert_eq!(stored[0].client, None);
    let json = serde_json::to_string(&stored).unwrap();
    let mut restarted = Clinic::standard();
    let read: Vec<StoredBinding> = serde_json::from_str(&json).unwrap();
    let summary = restarted
        .registrar
        .restore(restarted.now, restarted.wall(), read);
    assert_eq!(summary.restored, 1);
    let path: Vec<String> = restarted.registrar.bindings("1003")[0]
        .path
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(path, [KAMAILIO_PATH]);

    // A file written before Path was kept has no `path` field.
    let old = json.replace(
        &format!(r#""path":["{}"],"#, KAMAILIO_PATH.replace('"', r#"\""#)),
        "",
    );
    assert!(!old.contains("path"), "{old}");
    let read: Vec<StoredBinding> = serde_json::from_str(&old).unwrap();
    assert!(read[0].path.is_empty());
}

/// One REGISTER of `agent` forwarded by the proxy from `client`.
fn via_proxy(clinic: &mut Clinic, agent: &mut Agent, client: &str) -> Outcome {
    let text = agent.text(&[PHONE], None);
    let request = parse(&text);
    let outcome = clinic.registrar.handle_proxied_register(
        clinic.now,
        clinic.wall(),
        &request,
        agent.source,
        client.parse().unwrap(),
    );
    clinic.drain();
    if outcome.response.status == StatusCode::UNAUTHORIZED {
        agent.learn(&outcome.response);
    }
    outcome
}

#[test]
fn behind_a_proxy_the_failure_limits_judge_the_phone_not_the_proxy() {
    // The proxy is trusted; the phones behind it are not (127.0.0.2 and
    // 127.0.0.3 listed untrusted, as the flood tests do).
    let mut config = RegistrarConfig::new(REALM);
    config.trusted = TrustedSources::default()
        .with_proxies(vec!["127.0.0.10".parse().unwrap()])
        .with_untrusted(vec![
            "127.0.0.2".parse().unwrap(),
            "127.0.0.3".parse().unwrap(),
        ]);
    let mut clinic = Clinic::new(config);
    let mut attacker = through_kamailio("1003");
    attacker.password = "guess".into();
    via_proxy(&mut clinic, &mut attacker, "127.0.0.2:5099");
    let mut last = None;
    for _ in 0..12 {
        last = Some(via_proxy(&mut clinic, &mut attacker, "127.0.0.2:5099"));
    }
    let banned = last.unwrap();
    assert!(
        matches!(banned.decision, Decision::Banned { .. }),
        "{:?}",
        banned.decision
    );
    // The ban is the phone's: another phone behind the same proxy signs in
    // (to another account: 1003's is locked for sources it never used).
    let mut carol = through_kamailio("1004");
    carol.call_id = "carol".into();
    via_proxy(&mut clinic, &mut carol, "127.0.0.3:5062");
    let outcome = via_proxy(&mut clinic, &mut carol, "127.0.0.3:5062");
    assert_eq!(outcome.response.status, StatusCode::OK);
    assert_eq!(outcome.send_after, None);
    let binding = &clinic.registrar.bindings("1004")[0];
    assert_eq!(binding.source, peer(KAMAILIO));
    assert_eq!(binding.client, Some("127.0.0.3:5062".parse().unwrap()));
    // Without the header believed, the proxy itself is trusted: no limit.
    let mut direct = through_kamailio("1002");
    let outcome = direct.register(&mut clinic, &["<sip:1002@192.0.2.12>"], None);
    assert_eq!(outcome.response.status, StatusCode::OK);
    assert!(clinic.registrar.bindings("1002")[0].client.is_none());
}
