//! A patient's SIP client of the test's own over UDP: an INVITE with an
//! SDP naming any address, its ACK and a BYE, for tests that need a call
//! SIPp would not make (a forged SDP, an INVITE whose refusal is read).

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use super::Daemon;

/// A patient's UDP SIP client of the test's own: enough for an INVITE, its
/// ACK and a BYE.
pub struct RawCall {
    socket: UdpSocket,
    daemon: SocketAddr,
    call_id: String,
    from: String,
    to: String,
    /// The daemon's RTP port in its answer.
    pub media_port: u16,
}

impl RawCall {
    /// Sends an INVITE for `number` whose SDP names `media` and returns once
    /// the 200 arrives (panics on any other final answer).
    pub fn invite(daemon: &Daemon, number: &str, media: SocketAddr, n: usize) -> RawCall {
        match RawCall::try_invite(daemon, number, media, n) {
            Ok(call) => call,
            Err(refusal) => panic!("the INVITE was refused: {refusal}"),
        }
    }

    /// Sends an INVITE; the call once answered 200, or the final answer's
    /// text when it is not a 200.
    pub fn try_invite(
        daemon: &Daemon,
        number: &str,
        media: SocketAddr,
        n: usize,
    ) -> Result<RawCall, String> {
        RawCall::try_invite_from(daemon.sip(), "+13125550142", number, media, n)
    }

    /// [`RawCall::invite`] to the daemon's SIP address `daemon`, from the
    /// patient's number `caller` (which then finds the call in
    /// `/api/calls`).
    pub fn invite_from(
        daemon: SocketAddr,
        caller: &str,
        number: &str,
        media: SocketAddr,
        n: usize,
    ) -> RawCall {
        match RawCall::try_invite_from(daemon, caller, number, media, n) {
            Ok(call) => call,
            Err(refusal) => panic!("the INVITE was refused: {refusal}"),
        }
    }

    /// [`RawCall::try_invite`] to the daemon's SIP address `target`, from
    /// the patient's number `caller`.
    pub fn try_invite_from(
        target: SocketAddr,
        caller: &str,
        number: &str,
        media: SocketAddr,
        n: usize,
    ) -> Result<RawCall, String> {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a read timeout");
        let me = socket.local_addr().expect("its address");
        let call_id = format!("strict-{n}-{}@test", me.port());
        let body = format!(
            "v=0\r\no=- {n} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
            ip = media.ip(),
            port = media.port()
        );
        let invite = format!(
            "INVITE sip:{number}@{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bKinv{n}x{port};rport\r\n\
             From: <sip:{caller}@{me}>;tag=from{n}\r\n\
             To: <sip:{number}@{target}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:patient@{me}>\r\n\
             Max-Forwards: 70\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {length}\r\n\r\n{body}",
            port = me.port(),
            length = body.len(),
        );
        socket
            .send_to(invite.as_bytes(), target)
            .expect("send INVITE");
        let mut buffer = [0u8; 8192];
        loop {
            let length = socket.recv(&mut buffer).expect("an answer to the INVITE");
            let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
            if text.starts_with("SIP/2.0 1") {
                continue;
            }
            if !text.starts_with("SIP/2.0 200") {
                return Err(text);
            }
            let to = text
                .lines()
                .find(|line| line.starts_with("To:"))
                .expect("a To header")
                .to_string();
            let media_port = text
                .lines()
                .find_map(|line| line.strip_prefix("m=audio "))
                .and_then(|rest| rest.split(' ').next()?.parse().ok())
                .expect("an audio port in the answer");
            return Ok(RawCall {
                socket,
                daemon: target,
                call_id,
                from: format!("From: <sip:{caller}@{me}>;tag=from{n}"),
                to,
                media_port,
            });
        }
    }

    fn request(&self, method: &str, cseq: u32, branch: &str) -> String {
        let me = self.socket.local_addr().expect("its address");
        format!(
            "{method} sip:{daemon} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bK{branch};rport\r\n\
             {from}\r\n\
             {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n",
            daemon = self.daemon,
            from = self.from,
            to = self.to,
            call_id = self.call_id,
        )
    }

    /// ACK for the 200.
    pub fn ack(&self) {
        let ack = self.request("ACK", 1, &format!("ack{}", self.media_port));
        self.socket
            .send_to(ack.as_bytes(), self.daemon)
            .expect("ACK");
    }

    /// Sends the BYE (the same one each time: a second call is its
    /// retransmission) and returns its final answer, or `None` when none
    /// came within the socket's read timeout.
    pub fn bye(&self) -> Option<String> {
        let bye = self.request("BYE", 2, &format!("bye{}", self.media_port));
        self.socket
            .send_to(bye.as_bytes(), self.daemon)
            .expect("BYE");
        let mut buffer = [0u8; 8192];
        loop {
            let length = self.socket.recv(&mut buffer).ok()?;
            let text = String::from_utf8_lossy(&buffer[..length]);
            if text.contains("CSeq: 2 BYE") && !text.starts_with("SIP/2.0 1") {
                return Some(text.into_owned());
            }
        }
    }

    /// ACK, then BYE; returns once the BYE is answered 200.
    pub fn ack_and_hang_up(self) {
        self.ack();
        let answer = self.bye().expect("an answer to BYE");
        assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    }
}
