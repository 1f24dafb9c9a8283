//! One page's phone: a task that owns the page's WebSocket, its WebRTC
//! leg and RTP port, and its SIP user agent ([`super::ua::PhoneUa`]), and
//! moves what each says to the others. It decides nothing the user agent
//! or the leg does not.
//!
//! Media: the browser's SRTP comes to the leg's port and leaves it as
//! plain RTP from our RTP port to the call's relay (the address our 200
//! OK's SDP answered); the relay's RTP comes back the same way. Between
//! calls the browser's audio is dropped.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use media::webrtc::{WebRtcConfig, WebRtcEvent, WebRtcLeg};
use serde_json::{Value, json};
use sip::transaction::Event;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::ua::{PageCommand, PhoneUa, UaAction};
use super::{Gateway, PageHandle};

/// The largest datagram we read (a WebRTC or RTP packet is far smaller).
const DATAGRAM: usize = 2048;

/// Close codes of phone-protocol.md.
pub mod close {
    /// The first message was not a usable hello.
    pub const BAD_HELLO: u16 = 4400;
    /// The token was refused.
    pub const UNAUTHORIZED: u16 = 4401;
    /// No hello in time.
    pub const TOO_SLOW: u16 = 4408;
    /// A newer page of the same agent took over.
    pub const REPLACED: u16 = 4409;
    /// No port or no usable offer.
    pub const UNAVAILABLE: u16 = 4503;
}

/// Sends `{"type":"error"}` and closes with `code`.
pub async fn refuse(socket: &mut WebSocket, code: u16, error: &str) {
    let _ = socket
        .send(Message::Text(
            json!({"type": "error", "error": error}).to_string().into(),
        ))
        .await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: error.chars().take(100).collect::<String>().into(),
        })))
        .await;
}

/// A page command from its JSON, or why not.
fn command(message: &Value) -> Result<Option<PageCommand>, &'static str> {
    let kind = message["type"].as_str().ok_or("no type")?;
    let call = || {
        message["call"]
            .as_str()
            .filter(|call| call.len() <= 32)
            .map(str::to_string)
            .ok_or("no call")
    };
    Ok(Some(match kind {
        "ping" => return Ok(None),
        "answer" => PageCommand::Answer(call()?),
        "decline" => PageCommand::Decline(call()?),
        "hangup" => PageCommand::Hangup(call()?),
        "hold" => PageCommand::Hold(call()?, message["on"].as_bool().ok_or("no on")?),
        "transfer" => PageCommand::Transfer(
            call()?,
            message["to"]
                .as_str()
                .filter(|to| to.len() <= 64)
                .ok_or("no to")?
                .to_string(),
        ),
        _ => return Err("unknown type"),
    }))
}

/// Runs the phone of `agent`'s page: `offer` is the page's SDP offer from
/// its hello. Returns when the page is gone or the daemon stops.
pub async fn run(gateway: Gateway, agent: String, offer: String, mut socket: WebSocket) {
    let ports = gateway.ports();
    let (browser_port, rtp_port) = match (ports.allocate(), ports.allocate()) {
        (Ok(browser), Ok(rtp)) => (browser, rtp),
        _ => {
            warn!(%agent, "no RTP port for a browser phone");
            refuse(&mut socket, close::UNAVAILABLE, "no media port free").await;
            return;
        }
    };
    let config = gateway.config();
    let leg_config = WebRtcConfig {
        handshake_timeout: config.handshake_timeout,
        idle_timeout: config.idle_timeout,
    };
    let accepted = WebRtcLeg::accept_offer(
        leg_config,
        Instant::now(),
        browser_port.local_addr(),
        &offer,
        rand::random(),
    );
    let (mut leg, answer) = match accepted {
        Ok(accepted) => accepted,
        Err(error) => {
            info!(%agent, %error, "a browser phone's offer refused");
            refuse(&mut socket, close::BAD_HELLO, &format!("offer: {error}")).await;
            return;
        }
    };
    let ready = json!({"type": "ready", "agent": agent, "answer": answer});
    if socket
        .send(Message::Text(ready.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let user = format!("b-{:016x}", rand::random::<u64>());
    let local = gateway.local();
    let mut ua = PhoneUa::new(
        format!("<sip:{user}@{local}>"),
        rtp_port.local_addr(),
        leg.codec(),
        rand::random(),
    );
    let (sip_sender, mut sip_events) = mpsc::unbounded_channel();
    let replaced = CancellationToken::new();
    let page = PageHandle {
        user: user.clone(),
        sip: sip_sender.clone(),
        replaced: replaced.clone(),
    };
    let shutdown = gateway.shutdown().clone();
    let endpoint = gateway.endpoint().clone();
    info!(%agent, "browser phone: waiting for the WebRTC connection");
    let mut attached = false;
    let mut remote: Option<SocketAddr> = None;
    let mut datagram = vec![0u8; DATAGRAM];
    let mut packet = vec![0u8; DATAGRAM];
    let mut rtp = vec![0u8; DATAGRAM];
    let mut routed: Vec<bytestring::ByteString> = Vec::new();
    let why = loop {
        let deadline = leg.poll_timeout();
        tokio::select! {
            () = shutdown.cancelled() => break "the daemon stops",
            () = replaced.cancelled() => {
                let _ = socket
                    .send(Message::Text(json!({"type": "replaced"}).to_string().into()))
                    .await;
                refuse(&mut socket, close::REPLACED, "a newer page took the phone").await;
                break "replaced";
            }
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => {
                    match serde_json::from_str::<Value>(text.as_str()).map_err(|_| "not JSON").and_then(|m| command(&m)) {
                        Ok(Some(command)) => ua.page(command),
                        Ok(None) => {
                            let pong = json!({"type": "pong"}).to_string();
                            if socket.send(Message::Text(pong.into())).await.is_err() {
                                break "the page's socket failed";
                            }
                        }
                        Err(error) => {
                            let refused = json!({"type": "error", "error": error}).to_string();
                            let _ = socket.send(Message::Text(refused.into())).await;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None => break "the page closed",
                Some(Ok(_)) => {}
                Some(Err(_)) => break "the page's socket failed",
            },
            event = sip_events.recv() => {
                if let Some(event) = event {
                    let stranger = match &event {
                        Event::Request { source, .. } | Event::Ack { source, .. } => !gateway.is_daemon(source),
                        _ => false,
                    };
                    if stranger {
                        debug!("browser phone: a request from a stranger dropped");
                    } else {
                        ua.sip(event);
                    }
                }
            }
            received = browser_port.recv_from(&mut datagram) => {
                if let Ok((length, source)) = received {
                    leg.handle_datagram(Instant::now(), source, &datagram[..length]);
                }
            }
            received = rtp_port.recv_from(&mut packet) => {
                // Only the relay the call's SDP named is heard.
                if let Ok((length, source)) = received
                    && Some(source) == remote
                {
                    leg.send_rtp(Instant::now(), &packet[..length]);
                }
            }
            () = crate::app::sleep_until(deadline.map(Into::into)) => leg.handle_timeout(Instant::now()),
        }
        // The leg's output.
        while let Some(transmit) = leg.poll_transmit() {
            let _ = browser_port.try_send_to(&transmit.contents, transmit.destination);
        }
        while let Some(length) = leg.poll_rtp(&mut rtp) {
            if let Some(remote) = remote {
                let _ = rtp_port.try_send_to(&rtp[..length], remote);
            }
        }
        let mut closed = None;
        while let Some(event) = leg.poll_event() {
            match event {
                WebRtcEvent::Connected if !attached => {
                    attached = true;
                    info!(%agent, "browser phone on: the agent can take calls here");
                    gateway.attach(&agent, page.clone());
                }
                WebRtcEvent::Connected => {}
                WebRtcEvent::Closed(reason) => closed = Some(reason),
            }
        }
        if let Some(reason) = closed {
            debug!(?reason, "the browser leg closed");
            break "the browser stopped sending";
        }
        // The user agent's output.
        if perform(
            &mut ua,
            &endpoint,
            &sip_sender,
            &mut socket,
            &mut remote,
            &mut routed,
        )
        .await
        .is_err()
        {
            break "the page's socket failed";
        }
    };
    info!(%agent, why, "browser phone off");
    ua.page_gone();
    let _ = perform(
        &mut ua,
        &endpoint,
        &sip_sender,
        &mut socket,
        &mut remote,
        &mut routed,
    )
    .await;
    for call_id in &routed {
        endpoint.unroute(call_id);
    }
    gateway.detach(&agent, &user);
}

/// Carries out the user agent's actions; `Err` when the page's socket
/// failed.
async fn perform(
    ua: &mut PhoneUa,
    endpoint: &sip::endpoint::EndpointHandle,
    sip_sender: &mpsc::UnboundedSender<Event>,
    socket: &mut WebSocket,
    remote: &mut Option<SocketAddr>,
    routed: &mut Vec<bytestring::ByteString>,
) -> Result<(), ()> {
    let mut socket_ok = true;
    while let Some(action) = ua.poll_action() {
        match action {
            UaAction::Respond {
                transaction,
                response,
            } => {
                let _ = endpoint.respond(transaction, response);
            }
            UaAction::Send { request, peer } => {
                let _ = endpoint.send_request(request, peer).await;
            }
            UaAction::Ack { request, peer } => {
                let _ = endpoint.send_ack(request, peer).await;
            }
            UaAction::Route(call_id) => {
                endpoint.route(call_id.clone(), sip_sender.clone());
                routed.push(call_id);
            }
            UaAction::Unroute(call_id) => {
                endpoint.unroute(&call_id);
                routed.retain(|routed| *routed != call_id);
            }
            UaAction::Page(message) => {
                if socket_ok
                    && socket
                        .send(Message::Text(message.to_string().into()))
                        .await
                        .is_err()
                {
                    socket_ok = false;
                }
            }
            UaAction::Media(target) => *remote = target,
        }
    }
    if socket_ok { Ok(()) } else { Err(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_commands_are_read_and_bad_ones_refused() {
        let read = |text: &str| command(&serde_json::from_str(text).unwrap());
        assert_eq!(read(r#"{"type":"ping"}"#), Ok(None));
        assert_eq!(
            read(r#"{"type":"answer","call":"p1"}"#),
            Ok(Some(PageCommand::Answer("p1".into())))
        );
        assert_eq!(
            read(r#"{"type":"hold","call":"p1","on":true}"#),
            Ok(Some(PageCommand::Hold("p1".into(), true)))
        );
        assert_eq!(
            read(r#"{"type":"transfer","call":"p1","to":"cardiology"}"#),
            Ok(Some(PageCommand::Transfer(
                "p1".into(),
                "cardiology".into()
            )))
        );
        assert_eq!(read(r#"{"type":"hold","call":"p1"}"#), Err("no on"));
        assert_eq!(read(r#"{"type":"answer"}"#), Err("no call"));
        assert_eq!(read(r#"{"type":"dance"}"#), Err("unknown type"));
        assert_eq!(read(r#"{"call":"p1"}"#), Err("no type"));
        let long = format!(r#"{{"type":"answer","call":"{}"}}"#, "x".repeat(100));
        assert_eq!(read(&long), Err("no call"));
    }
}
