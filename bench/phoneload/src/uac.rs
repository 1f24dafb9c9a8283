//! A minimal patient over SIP/UDP for INVITE → ringing (RFC 3261 §13 and
//! §15 as a UAC needs them on loopback): INVITE with a PCMU offer, ACK
//! every 2xx (§13.2.2.4), answer 200 to the daemon's requests (its BYE),
//! BYE when told. The time of the INVITE's send is the start of the
//! measurement; the page reports its `ringing`'s arrival on the same clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::time::{sleep_until, timeout};

/// Every wait's bound.
const BOUND: Duration = Duration::from_secs(15);

fn header<'a>(message: &'a str, names: &[&str]) -> Option<&'a str> {
    message.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        names
            .iter()
            .any(|n| name.trim().eq_ignore_ascii_case(n))
            .then(|| value.trim())
    })
}

/// The URI inside `<…>` of a name-addr (or the whole value).
fn uri(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value.split(';').next().unwrap_or(value),
    }
}

/// One call: INVITE sent, then `invited` gets the send time; the call is
/// held until `hang_up` fires (or BOUND passes), then BYE. Ok once the
/// BYE is answered (or the daemon ended the call first).
pub async fn call(
    daemon: SocketAddr,
    number: &str,
    serial: u32,
    invited: oneshot::Sender<Instant>,
    hang_up: oneshot::Receiver<()>,
) -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let media = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    media.set_nonblocking(true).map_err(|e| e.to_string())?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let media_port = media.local_addr().map_err(|e| e.to_string())?.port();
    let pid = std::process::id();
    let call_id = format!("phoneload-{pid}-{serial}@127.0.0.1");
    let tag = format!("pl{pid}x{serial}");
    let sdp = format!(
        "v=0\r\no=patient {serial} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {media_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    );
    let to_uri = format!("sip:{number}@{daemon}");
    let invite = format!(
        "INVITE {to_uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKpl{pid}i{serial};rport\r\n\
         From: \"Bench\" <sip:+13125550199@{local}>;tag={tag}\r\nTo: <{to_uri}>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:patient@{local}>\r\nMax-Forwards: 70\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    let send = |text: String| {
        let socket = &socket;
        async move {
            socket
                .send_to(text.as_bytes(), daemon)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    };
    send(invite.clone()).await?;
    let _ = invited.send(Instant::now());

    let deadline = Instant::now() + BOUND;
    let mut hang_up = hang_up;
    let mut provisional = false;
    // (remote target, To with tag) once a 2xx came
    let mut dialog: Option<(String, String)> = None;
    let mut retransmit = Instant::now() + Duration::from_millis(500);
    let mut buffer = vec![0u8; 65536];
    let mut bye_sent = false;
    loop {
        let wake = if dialog.is_none() && !provisional {
            retransmit.min(deadline)
        } else {
            deadline
        };
        tokio::select! {
            received = socket.recv_from(&mut buffer) => {
                let (length, _) = received.map_err(|e| e.to_string())?;
                let text = String::from_utf8_lossy(&buffer[..length]).to_string();
                let cseq = header(&text, &["CSeq"]).unwrap_or("").to_string();
                if let Some(status) = text.strip_prefix("SIP/2.0 ") {
                    let code: u16 = status.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                    if cseq.ends_with("INVITE") {
                        if code < 200 {
                            provisional = true;
                        } else if code < 300 {
                            let to = header(&text, &["To", "t"]).unwrap_or("").to_string();
                            let target = header(&text, &["Contact", "m"]).map(uri).unwrap_or(&to_uri).to_string();
                            let ack = format!(
                                "ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKpl{pid}a{serial};rport\r\n\
                                 From: \"Bench\" <sip:+13125550199@{local}>;tag={tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
                                 CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                            );
                            send(ack).await?;
                            dialog = Some((target, to));
                        } else {
                            return Err(format!("INVITE answered {code}"));
                        }
                    } else if cseq.ends_with("BYE") && bye_sent {
                        return Ok(());
                    }
                } else {
                    // A request of the daemon's (its BYE): 200 with its Via, From, To, Call-ID, CSeq.
                    let mut ok = String::from("SIP/2.0 200 OK\r\n");
                    for line in text.lines() {
                        let name = line.split(':').next().unwrap_or("").trim();
                        if ["via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"]
                            .iter().any(|n| name.eq_ignore_ascii_case(n))
                        {
                            ok.push_str(line);
                            ok.push_str("\r\n");
                        }
                    }
                    ok.push_str("Content-Length: 0\r\n\r\n");
                    send(ok).await?;
                    if text.starts_with("BYE ") {
                        return Ok(());
                    }
                }
            }
            _ = &mut hang_up, if dialog.is_some() && !bye_sent => {
                let (target, to) = dialog.clone().unwrap_or_default();
                let bye = format!(
                    "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKpl{pid}b{serial};rport\r\n\
                     From: \"Bench\" <sip:+13125550199@{local}>;tag={tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
                     CSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                );
                send(bye).await?;
                bye_sent = true;
            }
            _ = sleep_until(wake.into()) => {
                if Instant::now() >= deadline {
                    return Err(format!("call {serial}: not done in {BOUND:?}"));
                }
                send(invite.clone()).await?;
                retransmit = Instant::now() + Duration::from_millis(500);
            }
        }
        // The prompts and hold music, drained and dropped.
        let mut sink = [0u8; 2048];
        while media.recv_from(&mut sink).is_ok() {}
    }
}

/// Waits for `reply` within BOUND.
pub async fn bounded<T>(
    what: &str,
    future: impl std::future::Future<Output = Option<T>>,
) -> Result<T, String> {
    timeout(BOUND, future)
        .await
        .map_err(|_| format!("{what}: not in {BOUND:?}"))?
        .ok_or_else(|| format!("{what}: gone"))
}
