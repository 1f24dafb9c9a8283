//! Issue 23, the browser phone's WebSocket as a stranger meets it: the
//! real daemon, a plain WebSocket client. A socket that says nothing is
//! closed after `--phone-hello-timeout`; a hello with a forged token, a
//! first message that is not a hello, an offer that is not SDP, and a
//! message over the size cap are each refused with their close code, and
//! none of them makes the agent a browser device.

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Daemon, Launch, TOKEN};
use tungstenite::{Message, WebSocket};

/// Every wait's bound.
const BOUND: Duration = Duration::from_secs(10);

fn daemon() -> Daemon {
    Launch::new()
        .default_dialplan()
        .args(["--phone-hello-timeout", "1"])
        .start()
}

fn open(daemon: &Daemon) -> WebSocket<TcpStream> {
    let http = daemon.http();
    let stream = TcpStream::connect(http).expect("connect");
    stream
        .set_read_timeout(Some(BOUND))
        .expect("a read timeout");
    let (socket, response) = tungstenite::client(format!("ws://{http}/agent/phone"), stream)
        .unwrap_or_else(|error| panic!("the WebSocket handshake: {error}"));
    assert_eq!(response.status(), 101);
    socket
}

/// Reads until the daemon closes: the `error` messages it sent and the
/// close code.
fn until_closed(socket: &mut WebSocket<TcpStream>) -> (Vec<String>, Option<u16>) {
    let deadline = Instant::now() + BOUND;
    let mut errors = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "the daemon did not close");
        match socket.read() {
            Ok(Message::Text(text)) => {
                let message: Value = serde_json::from_str(text.as_str()).expect("JSON");
                if message["type"] == "error" {
                    errors.push(message["error"].as_str().unwrap_or_default().to_string());
                }
            }
            Ok(Message::Close(frame)) => {
                return (errors, frame.map(|frame| u16::from(frame.code)));
            }
            Ok(_) => {}
            // Closed without a close frame (a reset, or a protocol error
            // on our side after the daemon dropped the connection).
            Err(
                tungstenite::Error::ConnectionClosed
                | tungstenite::Error::AlreadyClosed
                | tungstenite::Error::Io(_)
                | tungstenite::Error::Protocol(_),
            ) => return (errors, None),
            Err(error) => panic!("reading the socket: {error}"),
        }
    }
}

fn token(daemon: &Daemon) -> String {
    let response = daemon
        .try_request(
            "POST",
            "/agent/login",
            None,
            Some(&json!({"user": "1003", "password": "demo-1003"}).to_string()),
        )
        .expect("POST /agent/login");
    assert_eq!(response.status, 200, "{response:?}");
    response.json()["token"]
        .as_str()
        .expect("a token")
        .to_string()
}

fn devices(daemon: &Daemon, agent: &str) -> Value {
    let agents = daemon.get("/api/agents", Some(TOKEN)).json();
    agents["agents"]
        .as_array()
        .and_then(|agents| agents.iter().find(|a| a["id"] == agent))
        .map(|a| a["devices"].clone())
        .expect("the agent")
}

#[test]
fn strangers_get_a_close_code_and_no_device() {
    let daemon = daemon();

    // Silence: closed after the hello timeout (1 s).
    let mut silent = open(&daemon);
    let (errors, code) = until_closed(&mut silent);
    assert_eq!(code, Some(4408), "{errors:?}");
    assert_eq!(errors, ["no hello in time"]);

    // A forged token.
    let mut forged = open(&daemon);
    let hello = json!({"type": "hello", "token": "31303033.9999999999.00", "offer": "v=0"});
    forged.send(Message::text(hello.to_string())).expect("send");
    let (errors, code) = until_closed(&mut forged);
    assert_eq!(code, Some(4401), "{errors:?}");

    // Not a hello.
    let mut rude = open(&daemon);
    rude.send(Message::text(r#"{"type":"answer","call":"p1"}"#))
        .expect("send");
    let (_, code) = until_closed(&mut rude);
    assert_eq!(code, Some(4400));

    // A genuine token with an offer that is not SDP.
    let token = token(&daemon);
    let mut garbled = open(&daemon);
    let hello = json!({"type": "hello", "token": token, "offer": "not an offer at all"});
    garbled
        .send(Message::text(hello.to_string()))
        .expect("send");
    let (errors, code) = until_closed(&mut garbled);
    assert_eq!(code, Some(4400), "{errors:?}");
    assert!(errors[0].starts_with("offer"), "{errors:?}");

    // A message over the cap (64 KiB) ends the socket.
    let mut huge = open(&daemon);
    let hello = json!({"type": "hello", "token": token, "offer": "x".repeat(100 * 1024)});
    let _ = huge.send(Message::text(hello.to_string()));
    let (_, code) = until_closed(&mut huge);
    assert_ne!(code, Some(1000), "not a normal close");

    assert_eq!(devices(&daemon, "1003"), json!([]));
    // The daemon serves on.
    assert_eq!(daemon.get("/api/health", None).status, 200);
}
