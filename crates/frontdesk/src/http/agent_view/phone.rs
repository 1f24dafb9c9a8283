//! `GET /agent/phone`: the browser phone's WebSocket (issue 23; the
//! messages are phone-protocol's, see [`crate::browser`]).
//!
//! Browsers cannot set headers on a WebSocket, so the agent's session
//! token comes in the first message, with the page's SDP offer:
//! `{"type":"hello","token":"…","offer":"v=0…"}`. It must come within
//! `--phone-hello-timeout`; a socket that sends nothing else, or a wrong or
//! expired token, is closed with a code the page can show. Frames are
//! capped (the offer is the largest message, a few KB), so an open socket
//! costs kilobytes; the admin listener's connection caps and idle timeout
//! apply to it as to any request.

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use ivr::jiff::Timestamp;
use serde_json::Value;
use tracing::info;

use super::password_of;
use crate::browser::session::{self, close};
use crate::http::AppState;

/// The largest message a page may send (its hello carries the SDP offer).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Upgrades to the phone's WebSocket.
#[utoipa::path(
    get,
    path = "/agent/phone",
    tag = "agent",
    responses(
        (status = 101, description = "The browser phone's WebSocket (its first message carries the agent session)"),
        (status = 400, description = "Not a WebSocket upgrade", body = String)
    )
)]
pub async fn connect(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| serve(state, socket))
}

/// Reads the hello, checks its token, then runs the phone.
async fn serve(state: AppState, mut socket: WebSocket) {
    let wait = state.phone.config().hello_timeout;
    let hello = match tokio::time::timeout(wait, first_text(&mut socket)).await {
        Ok(Some(text)) => text,
        Ok(None) => return,
        Err(_) => {
            session::refuse(&mut socket, close::TOO_SLOW, "no hello in time").await;
            return;
        }
    };
    let Ok(hello) = serde_json::from_str::<Value>(&hello) else {
        session::refuse(
            &mut socket,
            close::BAD_HELLO,
            "the first message is not JSON",
        )
        .await;
        return;
    };
    let (Some("hello"), Some(token), Some(offer)) = (
        hello["type"].as_str(),
        hello["token"].as_str(),
        hello["offer"].as_str(),
    ) else {
        session::refuse(
            &mut socket,
            close::BAD_HELLO,
            "the first message must be {\"type\":\"hello\",\"token\":…,\"offer\":…}",
        )
        .await;
        return;
    };
    let verified = state
        .agent_sessions
        .key
        .verify(token, Timestamp::now(), |id| password_of(&state.app, id));
    let agent = match verified {
        Ok(agent) => agent,
        Err(error) => {
            session::refuse(&mut socket, close::UNAUTHORIZED, &error.to_string()).await;
            return;
        }
    };
    info!(%agent, "browser phone: hello");
    session::run(state.phone.clone(), agent, offer.to_string(), socket).await;
}

/// The first text message (pings and pongs skipped), `None` when the
/// socket closed first.
async fn first_text(socket: &mut WebSocket) -> Option<String> {
    loop {
        match socket.recv().await? {
            Ok(Message::Text(text)) => return Some(text.to_string()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}
