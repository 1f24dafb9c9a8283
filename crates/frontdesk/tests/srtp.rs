//! SRTP with SDES end to end (issue 12): a patient whose phone offers
//! `RTP/SAVP` with `a=crypto` (SIPp for the signalling, an SRTP peer of
//! the test for the media, built on the media crate's SRTP) reaches an
//! agent whose phone is plain RTP (SIPp `agent.xml` with a plain RTP peer
//! of the test). Audio flows both ways; what the patient's side carries is
//! SRTP, what the agent's side carries is plain RTP.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use media::sdp::CryptoAttribute;
use media::srtp::{CryptoSuite, MasterKey, SrtpReceiver, SrtpSender};
use support::call::{open_clinic, wait_for_call};
use support::people::{answering_agent, wait_agent_state};
use support::phone::{FILL, RtpPeer};
use support::sipp::{Sipp, SippRun};
use support::{Daemon, Launch};

const BOUND: Duration = Duration::from_secs(30);
/// The patient phone's master key and salt (RFC 4568 §8.1's example).
const PATIENT_KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
const SUITE: CryptoSuite = CryptoSuite::AesCm128HmacSha1_80;

fn key(base64: &str) -> MasterKey {
    CryptoAttribute::parse(&format!("1 {SUITE} inline:{base64}"))
        .expect("a valid key")
        .key
}

/// What the patient's SRTP phone saw.
#[derive(Debug, Default)]
struct Heard {
    /// Raw datagrams not yet decrypted (our key is not known before the 200).
    pending: Vec<Vec<u8>>,
    /// Datagrams received.
    datagrams: usize,
    /// Datagrams that were exactly an RTP packet of FILL in the clear.
    clear_fill: usize,
    /// Datagrams that authenticated and decrypted.
    decrypted: usize,
    /// Decrypted packets carrying the agent's FILL.
    relayed_fill: usize,
    /// Datagrams that did not authenticate with the answer's key.
    refused: usize,
    /// Each datagram's length minus its plaintext's: the tag.
    overheads: Vec<usize>,
    remote: Option<SocketAddr>,
}

/// The patient's phone audio: SRTP with its own key out, SRTP with the key
/// of frontdesk's answer (read from the file SIPp writes) in.
struct SrtpPhone {
    port: u16,
    heard: Arc<Mutex<Heard>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SrtpPhone {
    fn start(answer_key_file: PathBuf) -> SrtpPhone {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind an RTP port");
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("a read timeout");
        let port = socket.local_addr().expect("its address").port();
        let heard = Arc::new(Mutex::new(Heard::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let heard = Arc::clone(&heard);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || run_phone(&socket, &answer_key_file, &heard, &stop))
        };
        SrtpPhone {
            port,
            heard,
            stop,
            thread: Some(thread),
        }
    }

    fn with<T>(&self, read: impl FnOnce(&Heard) -> T) -> T {
        read(&self.heard.lock().expect("not poisoned"))
    }

    fn wait_until(&self, bound: Duration, condition: impl Fn(&Heard) -> bool) -> bool {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if self.with(&condition) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.with(condition)
    }
}

impl Drop for SrtpPhone {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run_phone(socket: &UdpSocket, answer_key_file: &Path, heard: &Mutex<Heard>, stop: &AtomicBool) {
    let mut sender = SrtpSender::new(SUITE, &key(PATIENT_KEY));
    let mut receiver: Option<SrtpReceiver> = None;
    let (mut sequence, mut timestamp) = (65_000u16, 1_000u32);
    let mut next_send = Instant::now();
    let mut buffer = [0u8; 2048];
    let mut plain = [0u8; 2048];
    // Bounded: the thread ends with the test at the latest.
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let mut heard = heard.lock().expect("not poisoned");
        if let Ok((len, source)) = socket.recv_from(&mut buffer) {
            heard.datagrams += 1;
            heard.remote.get_or_insert(source);
            let datagram = &buffer[..len];
            if len == 12 + 160 && datagram[12..].iter().all(|byte| *byte == FILL) {
                heard.clear_fill += 1;
            }
            heard.pending.push(datagram.to_vec());
        }
        if receiver.is_none()
            && let Ok(text) = std::fs::read_to_string(answer_key_file)
            && text.trim().len() == 40
        {
            receiver = Some(SrtpReceiver::new(SUITE, &key(text.trim())));
        }
        if let Some(receiver) = receiver.as_mut() {
            for datagram in std::mem::take(&mut heard.pending) {
                match receiver.unprotect(&datagram, &mut plain) {
                    Ok(len) => {
                        heard.decrypted += 1;
                        heard.overheads.push(datagram.len() - len);
                        if len == 12 + 160 && plain[12..len].iter().all(|byte| *byte == FILL) {
                            heard.relayed_fill += 1;
                        }
                    }
                    Err(_) => heard.refused += 1,
                }
            }
        }
        let remote = heard.remote;
        drop(heard);
        // Send once frontdesk's prompt showed where to (symmetric RTP).
        let (Some(remote), true) = (remote, Instant::now() >= next_send) else {
            continue;
        };
        next_send += Duration::from_millis(20);
        let mut packet = [0u8; 12 + 160 + 16];
        packet[0] = 0x80;
        packet[2..4].copy_from_slice(&sequence.to_be_bytes());
        packet[4..8].copy_from_slice(&timestamp.to_be_bytes());
        packet[8..12].copy_from_slice(&0x5EC0_0001u32.to_be_bytes());
        packet[12..172].fill(FILL);
        let len = sender.protect(&mut packet, 172).expect("room for the tag");
        let _ = socket.send_to(&packet[..len], remote);
        // The sequence number wraps during the call: ROC 0 then 1.
        sequence = sequence.wrapping_add(1);
        timestamp = timestamp.wrapping_add(160);
    }
}

fn daemon() -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| text);
    let daemon = Launch::new().dialplan(plan).start();
    (dir, daemon)
}

fn srtp_patient(daemon: &Daemon, phone: &SrtpPhone, key_file: &Path) -> JoinHandle<SippRun> {
    let args: Vec<String> = [
        "-s",
        "+15550111",
        "-set",
        "rtp_port",
        &phone.port.to_string(),
        "-set",
        "srtp_key",
        PATIENT_KEY,
        "-set",
        "key_file",
        &key_file.display().to_string(),
        "-d",
        "9000",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    let target = daemon.sip();
    std::thread::spawn(move || {
        Sipp::new("caller-srtp.xml", target)
            .calls(1)
            .args(args)
            .run()
    })
}

#[test]
fn an_srtp_patient_talks_with_a_plain_rtp_agent() {
    let (dir, daemon) = daemon();
    let agent_audio = RtpPeer::start(0, false);
    let erin = answering_agent(&daemon, "1005", &agent_audio);
    wait_agent_state(&daemon, "1005", "available");
    let key_file = dir.path().join("answer.key");
    let phone = SrtpPhone::start(key_file.clone());
    // The urgent-care campaign: the emergency notice, then Erin rings.
    let patient = srtp_patient(&daemon, &phone, &key_file);

    // The agent hears the patient: SRTP in, decrypted, relayed as plain RTP.
    assert!(
        agent_audio.wait_until(BOUND, |peer| peer.relayed(FILL) >= 50),
        "agent heard {} packets of the patient\n{}",
        agent_audio.relayed(FILL),
        daemon.stderr()
    );
    // The patient hears the agent: plain RTP in, SRTP out with the answer's key.
    assert!(
        phone.wait_until(BOUND, |heard| heard.relayed_fill >= 50),
        "patient heard {:?}",
        phone.with(|heard| (heard.datagrams, heard.decrypted, heard.refused))
    );
    let call = wait_for_call(&daemon, BOUND, |call| call["agent"] == "1005");
    assert_eq!(call["department"], "urgent-care");
    patient
        .join()
        .expect("patient thread")
        .assert_all_succeeded(1);
    erin.join().expect("agent phone").assert_all_succeeded(1);
    wait_for_call(&daemon, BOUND, |call| call["outcome"] == "connected");

    // The patient's side was SRTP from the first prompt packet to the last
    // relayed one: every datagram authenticated with the key of the answer
    // and carried an 80-bit tag; none was the agent's audio in the clear.
    phone.with(|heard| {
        eprintln!(
            "patient: {} datagrams, {} decrypted, {} of the agent's audio, {} refused",
            heard.datagrams, heard.decrypted, heard.relayed_fill, heard.refused
        );
        assert!(heard.datagrams >= 100, "{heard:?}");
        assert_eq!(heard.refused, 0, "every datagram authenticated");
        assert_eq!(heard.decrypted, heard.datagrams);
        assert!(heard.overheads.iter().all(|tag| *tag == 10), "80-bit tags");
        assert_eq!(heard.clear_fill, 0, "the agent's audio never in the clear");
    });
    // The agent's side was plain RTP: 160-byte G.711 payloads, no tag.
    let to_agent: Vec<_> = agent_audio
        .received()
        .into_iter()
        .filter(|(_, first)| *first == FILL)
        .collect();
    assert!(to_agent.len() >= 50);
    assert!(to_agent.iter().all(|(header, _)| header.payload_len == 160));
}

#[test]
fn an_srtp_offer_without_a_usable_crypto_line_is_refused_with_488() {
    let (_dir, daemon) = daemon();
    Sipp::new("caller-srtp-488.xml", daemon.sip())
        .calls(1)
        .args(["-s", "+15550100"])
        .run()
        .assert_all_succeeded(1);
    let call = wait_for_call(&daemon, BOUND, |call| call["outcome"] == "rejected");
    assert_eq!(call["dialed"], "+15550100");
}
