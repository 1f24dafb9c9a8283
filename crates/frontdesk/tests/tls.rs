//! TLS end to end, on the real binary: `frontdesk certs dev`, then
//! `frontdesk run --sips` with the pair it wrote (SIP over TLS, the admin
//! API over HTTPS), a certificate reload on SIGHUP, and a real softphone
//! (baresip) signed in over TLS answering a routed call over its own TLS
//! connection, with SRTP on its leg, while the patient's leg is SIPp over
//! UDP with plain RTP.
//!
//! Our TLS clients here trust only the certificate the test made; every
//! wait is bounded.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use sip::digest::{Challenge, Credentials};
use sip::message::{Frame, Limits, Message, StreamFramer};
use support::baresip::Baresip;
use support::call::{open_clinic, wait_for_call};
use support::people::{STEP_BOUND, agent, patient, press_when_heard, wait_agent_state};
use support::phone::RtpPeer;
use support::{Daemon, Launch};
use tokio_rustls::rustls;

const BOUND: Duration = Duration::from_secs(20);

/// Runs `frontdesk certs dev ARGS` in `dir`.
fn certs_dev(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["certs", "dev"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run frontdesk certs dev")
}

/// A blocking SIP client over TLS that trusts only the PEM file `ca`.
struct TlsSip {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    framer: StreamFramer,
    local: SocketAddr,
}

impl TlsSip {
    fn connect(server: SocketAddr, ca: &Path) -> std::io::Result<TlsSip> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).expect("the certificate file") {
            roots.add(cert.expect("a certificate")).expect("a root");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = TcpStream::connect_timeout(&server, BOUND)?;
        tcp.set_read_timeout(Some(BOUND))?;
        let local = tcp.local_addr()?;
        let connection = rustls::ClientConnection::new(
            Arc::new(config),
            ServerName::IpAddress(server.ip().into()),
        )
        .expect("a client connection");
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        // Drive the handshake now, so that a refused certificate shows here.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(TlsSip {
            stream,
            framer: StreamFramer::new(Limits::default()),
            local,
        })
    }

    fn presented(&self) -> CertificateDer<'static> {
        self.stream.conn.peer_certificates().expect("certificates")[0].clone()
    }

    fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).expect("write");
        self.stream.flush().expect("flush");
    }

    fn next_message(&mut self) -> Message {
        loop {
            if let Some(frame) = self.framer.next_frame().expect("framing") {
                match frame {
                    Frame::Message(message) => return message,
                    Frame::KeepAlive(_) => continue,
                }
            }
            let mut buffer = [0u8; 8192];
            let n = self.stream.read(&mut buffer).expect("read");
            assert!(n > 0, "the server closed the connection");
            self.framer.extend(&buffer[..n]);
        }
    }

    fn status(&mut self) -> u16 {
        match self.next_message() {
            Message::Response(response) => response.status.as_u16(),
            Message::Request(request) => panic!("a response, got {}", request.method),
        }
    }

    fn options(&mut self, id: &str) -> u16 {
        let me = self.local;
        self.send(&format!(
            "OPTIONS sip:frontdesk@127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/TLS {me};branch=z9hG4bK{id};rport\r\n\
             From: <sip:probe@127.0.0.1>;tag={id}\r\n\
             To: <sip:frontdesk@127.0.0.1>\r\n\
             Call-ID: {id}@tls-test\r\n\
             CSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        ));
        self.status()
    }

    /// REGISTER `agent` (password `demo-<agent>`) with digest auth over
    /// this connection; returns the final status.
    fn register(&mut self, agent: &str, server: SocketAddr) -> u16 {
        let me = self.local;
        let uri = format!("sip:{server};transport=tls");
        let request = |cseq: u32, authorization: Option<String>| {
            format!(
                "REGISTER {uri} SIP/2.0\r\n\
                 Via: SIP/2.0/TLS {me};branch=z9hG4bKtls{agent}{cseq};rport\r\n\
                 From: <sip:{agent}@{server}>;tag=tls{agent}\r\n\
                 To: <sip:{agent}@{server}>\r\n\
                 Call-ID: tls-register-{agent}@tls-test\r\n\
                 CSeq: {cseq} REGISTER\r\n\
                 Contact: <sip:{agent}@{me};transport=tls>\r\n\
                 Expires: 300\r\n\
                 Max-Forwards: 70\r\n\
                 {auth}Content-Length: 0\r\n\r\n",
                auth = authorization
                    .map(|a| format!("Authorization: {a}\r\n"))
                    .unwrap_or_default(),
            )
        };
        self.send(&request(1, None));
        let Message::Response(challenge) = self.next_message() else {
            panic!("a response to REGISTER");
        };
        assert_eq!(challenge.status.as_u16(), 401);
        let params = challenge.headers.www_authenticates().expect("a challenge")[0].clone();
        let challenge = Challenge::from_params(&params).expect("digest");
        let credentials = Credentials::answer(
            &challenge,
            agent,
            &format!("demo-{agent}"),
            "REGISTER",
            &uri,
            "c0ffee",
            1,
        );
        self.send(&request(2, Some(credentials.to_params().to_string())));
        self.status()
    }
}

/// A sample's value in Prometheus text; 0 when absent.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn der_of(pem: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(pem).expect("a certificate")
}

#[test]
fn certs_dev_then_run_with_sips_serves_sip_over_tls_and_the_admin_api_over_https() {
    let launch = Launch::new();
    let dir = launch.data_dir().to_path_buf();
    // As from a fresh checkout: the pair goes to certs/, where `run --sips`
    // looks by default.
    let made = certs_dev(&dir, &[]);
    assert!(made.status.success(), "{made:?}");
    let cert = dir.join("certs/frontdesk.crt");
    let key = dir.join("certs/frontdesk.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key is private");
    let again = certs_dev(&dir, &[]);
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force"),
        "{again:?}"
    );
    assert_eq!(der_of(&cert), der_of(&cert), "untouched");

    let mut daemon = launch.args(["--sips", "127.0.0.1:0"]).trust(&cert).start();
    let lines = daemon.stdout_lines().to_vec();
    let names: Vec<&str> = lines
        .iter()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| word.ends_with("-listening"))
        .collect();
    assert_eq!(
        names,
        ["sip-listening", "sips-listening", "http-listening"],
        "{lines:?}"
    );

    // The admin API speaks HTTPS, and only HTTPS.
    let health = daemon.get("/api/health", None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    assert!(
        support::http::try_get(daemon.http(), "/api/health", None).is_err(),
        "no clear-text HTTP on the admin port"
    );

    // SIP over TLS: OPTIONS, and an agent signing in with digest auth.
    let mut client = TlsSip::connect(daemon.sips(), &cert).expect("the handshake");
    assert_eq!(client.presented(), der_of(&cert));
    assert_eq!(client.options("o1"), 200);
    assert_eq!(client.register("1001", daemon.sips()), 200);
    let alice = agent(&daemon, "1001");
    assert_eq!(
        (&alice["registered"], &alice["state"]),
        (&Value::from(true), &Value::from("available"))
    );

    // Plain text on the TLS port: closed, no SIP answer.
    let mut plain = TcpStream::connect(daemon.sips()).unwrap();
    plain.set_read_timeout(Some(BOUND)).unwrap();
    plain
        .write_all(b"OPTIONS sip:frontdesk@127.0.0.1 SIP/2.0\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).contains("SIP/2.0"));
    assert_eq!(client.options("o2"), 200, "others are still served");

    assert!(daemon.terminate().success());
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections_and_keeps_those_up() {
    let launch = Launch::new();
    let dir = launch.data_dir().to_path_buf();
    assert!(certs_dev(&dir, &["--out", "tls"]).status.success());
    let cert = dir.join("tls/frontdesk.crt");
    let key = dir.join("tls/frontdesk.key");
    let first = dir.join("first.crt");
    std::fs::copy(&cert, &first).unwrap();
    let daemon = launch.sips(&cert, &key).start();
    let mut kept = TlsSip::connect(daemon.sips(), &first).expect("the first certificate");
    assert_eq!(kept.options("before"), 200);

    // A new pair in place, then SIGHUP.
    assert!(
        certs_dev(&dir, &["--out", "tls", "--force"])
            .status
            .success()
    );
    assert_ne!(der_of(&cert), der_of(&first));
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for_log(
        |line| line.contains("reloaded: new connections use it"),
        BOUND,
    );

    let fresh = TlsSip::connect(daemon.sips(), &cert).expect("the new certificate");
    assert_eq!(fresh.presented(), der_of(&cert));
    assert!(
        TlsSip::connect(daemon.sips(), &first).is_err(),
        "the old certificate is no longer presented"
    );
    assert_eq!(daemon.get("/api/health", None).status, 200, "HTTPS too");
    assert_eq!(
        kept.options("after"),
        200,
        "the connection made before goes on"
    );

    // A broken pair is refused; the certificate in force stays.
    std::fs::write(&key, "not a key\n").unwrap();
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for_log(
        |line| line.contains("the running tls certificate stays"),
        BOUND,
    );
    let still = TlsSip::connect(daemon.sips(), &cert).expect("still served");
    assert_eq!(still.presented(), der_of(&cert));
}

#[test]
fn a_baresip_agent_signed_in_over_tls_answers_a_routed_call_over_its_connection() {
    let launch = Launch::new();
    let dir = launch.data_dir().to_path_buf();
    assert!(certs_dev(&dir, &[]).status.success());
    let cert: PathBuf = dir.join("certs/frontdesk.crt");
    let plan = open_clinic(&dir, |text| text);
    let daemon: Daemon = launch
        .dialplan(plan)
        .sips(&cert, dir.join("certs/frontdesk.key"))
        .start();
    let sips = daemon.sips().port().to_string();

    // Carol's softphone signs in over TLS (libre 1.1 loads sip_cafile but
    // does not refuse another certificate: the refusal of a wrong one is
    // tested with our own client in crates/sip/tests/tls.rs).
    let mut carol = Baresip::start_with(
        "agent 1003 (tls)",
        "accounts.agent-tls",
        &[
            ("@AGENT@", "1003".to_string()),
            ("@PASSWORD@", "demo-1003".to_string()),
            ("@FRONTDESK_TLS_PORT@", sips),
        ],
        &format!("sip_cafile\t\t{}\nmodule\t\t\tsrtp.so\n", cert.display()),
    );
    wait_agent_state(&daemon, "1003", "available");

    // The patient calls over UDP (SIPp), presses 3; frontdesk rings Carol
    // over her TLS connection (her Contact's port is that connection's
    // own: nothing else reaches her), and she answers.
    let patient_audio = RtpPeer::start(0, false);
    let patient = patient(&daemon, "caller-hungup.xml", "+15550100", &patient_audio, 0);
    press_when_heard(&patient_audio, '3');
    carol.wait_event("CALL_ESTABLISHED");
    let connected = wait_for_call(&daemon, BOUND, |call| call["agent"] == "1003");
    assert_eq!(connected["department"], "pediatrics", "{connected:#}");
    wait_agent_state(&daemon, "1003", "on_call");
    // Carol's audio (SRTP on her leg) reaches the patient, in plain RTP,
    // through the bridge.
    let before = patient_audio.received().len();
    assert!(
        patient_audio.wait_until(STEP_BOUND, |p| p.received().len() >= before + 50),
        "the patient hears the agent"
    );

    // Carol hangs up: her BYE comes over TLS to our Contact, and the
    // patient gets ours.
    carol.command("hangup", "");
    carol.wait_event("CALL_CLOSED");
    patient.join().expect("the patient").assert_all_succeeded(1);
    let ended = wait_for_call(&daemon, BOUND, |call| call["ended_at"].is_string());
    assert_eq!(ended["outcome"], "connected", "{ended:#}");
    assert_eq!(ended["agent"], "1003");

    // The agent's leg was SRTP (baresip's srtp-mand refuses anything else)
    // and every packet from it was authenticated and decrypted.
    let deadline = Instant::now() + BOUND;
    let received = loop {
        let metrics = daemon.get("/metrics", None).body;
        let received = metric(
            &metrics,
            "frontdesk_rtp_packets_received_total{leg=\"agent\"}",
        );
        if received > 0.0 || Instant::now() >= deadline {
            assert_eq!(
                metric(
                    &metrics,
                    "frontdesk_srtp_auth_failures_total{leg=\"agent\"}"
                ),
                0.0,
                "{metrics}"
            );
            break received;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(received >= 50.0, "packets from the agent: {received}");

    // Quitting un-registers over the same connection.
    carol.stop();
    let deadline = Instant::now() + BOUND;
    while agent(&daemon, "1003")["registered"] != false {
        assert!(Instant::now() < deadline, "un-registered");
        std::thread::sleep(Duration::from_millis(25));
    }
}
