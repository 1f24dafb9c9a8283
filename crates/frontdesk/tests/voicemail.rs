//! Issue 22 end to end, voicemail: a SIPp patient presses the menu key that
//! takes a voicemail, hears the greeting and the beep, speaks (the test's
//! RTP peer sends a known G.711 stream), presses `#` by RFC 4733, and
//! frontdesk hangs up. The stored WAV, decoded, is the sent audio sample
//! for sample; it is a `voicemail` lead of the department, served to the
//! admin token and nobody else; a short retention deletes it and marks its
//! lead.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::call::open_clinic;
use support::people::{STEP_BOUND, patient, press_when_heard};
use support::phone::RtpPeer;
use support::sipp::Sipp;
use support::{Daemon, Launch, TOKEN};

/// Key 8 of the main menu takes a voicemail for pediatrics; the greeting
/// is a short prompt; `retention` as given.
fn daemon(retention: &str) -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = open_clinic(dir.path(), |text| {
        text.replacen(
            "\"9\" = { queue = \"urgent-care\", priority = \"urgent\" }",
            "\"9\" = { queue = \"urgent-care\", priority = \"urgent\" }\n\"8\" = { voicemail = \"pediatrics\" }",
            1,
        )
        .replace(
            "greeting = \"prompts/voicemail-greeting.wav\"",
            "greeting = \"prompts/digit-1.wav\"",
        )
        .replace("retention = \"30d\"", &format!("retention = \"{retention}\""))
    });
    let daemon = Launch::new().dialplan(plan).start();
    (dir, daemon)
}

/// Two seconds of PCMU codes from a fixed xorshift: no 160-sample window
/// repeats, and no packet is silent.
fn known_audio() -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..16_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Avoid the codes of near-silence (µ-law 0x7f/0xff and neighbours).
            (x as u8) & 0xef
        })
        .collect()
}

/// Polls `path` (admin token) until `wanted` holds.
fn poll(daemon: &Daemon, path: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + STEP_BOUND;
    loop {
        let response = daemon.get(path, Some(TOKEN));
        if response.status == 200 {
            let json = response.json();
            if wanted(&json) {
                return json;
            }
        }
        assert!(Instant::now() < deadline, "{path}: last {response:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The one voicemail lead, once its recording is on its history.
fn voicemail_lead(daemon: &Daemon) -> Value {
    let list = poll(daemon, "/api/leads", |json| {
        json["leads"]
            .as_array()
            .is_some_and(|leads| leads.iter().any(|lead| lead["kind"] == "voicemail"))
    });
    let id = list["leads"]
        .as_array()
        .and_then(|leads| leads.iter().find(|lead| lead["kind"] == "voicemail"))
        .and_then(|lead| lead["id"].as_str())
        .expect("a voicemail lead")
        .to_string();
    poll(daemon, &format!("/api/leads/{id}"), |json| {
        recording(&json["lead"]).is_some()
    })["lead"]
        .clone()
}

/// The recording a lead's history names.
fn recording(lead: &Value) -> Option<String> {
    lead["history"].as_array()?.iter().find_map(|step| {
        (step["event"] == "voicemail_recorded")
            .then(|| step["recording"].as_str().map(str::to_string))
            .flatten()
    })
}

/// Waits until `condition` holds, polling.
fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + STEP_BOUND;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The recordings in the daemon's voicemail folder.
fn recordings(data: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data.join("voicemail"))
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|e| e == "wav"))
                .collect()
        })
        .unwrap_or_default()
}

/// The samples of a canonical 8 kHz mono 16-bit PCM WAV, its header checked.
fn wav_samples(bytes: &[u8]) -> Vec<i16> {
    assert!(bytes.len() >= 44, "a WAV header");
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(&bytes[8..16], b"WAVEfmt ");
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(u16_at(20), 1, "PCM");
    assert_eq!(u16_at(22), 1, "mono");
    assert_eq!(u32_at(24), 8000, "8 kHz");
    assert_eq!(u16_at(34), 16, "16-bit");
    assert_eq!(&bytes[36..40], b"data");
    assert_eq!(u32_at(4) as usize, bytes.len() - 8, "RIFF size completed");
    assert_eq!(u32_at(40) as usize, bytes.len() - 44, "data size completed");
    bytes[44..]
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
        .collect()
}

/// `GET path` with the admin token, over a plain connection: the head
/// (lower-cased) and the body's bytes (a WAV is not text).
fn get_bytes(daemon: &Daemon, path: &str) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(daemon.http()).expect("connect");
    stream
        .set_read_timeout(Some(STEP_BOUND))
        .expect("a read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    (head, raw[end + 4..].to_vec())
}

#[test]
fn a_message_ended_by_hash_is_stored_sample_exact_and_becomes_a_lead() {
    let (_dir, daemon) = daemon("30d");
    let audio = known_audio();
    let peer = RtpPeer::start(0, false);
    peer.speak(audio.clone());
    let target = daemon.sip();
    let args: Vec<String> = [
        "-s",
        "+15550100",
        "-set",
        "rtp_port",
        &peer.port().to_string(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let caller = std::thread::spawn(move || {
        Sipp::new("caller-voicemail.xml", target)
            .calls(1)
            .args(args)
            .run()
    });
    press_when_heard(&peer, '8');
    // The recording starts after the beep: its file appears, then grows.
    let data = daemon.data_dir().to_path_buf();
    wait_for("the recording started", || recordings(&data).len() == 1);
    let file = recordings(&data).remove(0);
    wait_for("1.5 s recorded", || {
        std::fs::metadata(&file).is_ok_and(|m| m.len() >= 44 + 2 * 12_000)
    });
    peer.press('#');
    caller
        .join()
        .expect("caller thread")
        .assert_all_succeeded(1);

    let lead = voicemail_lead(&daemon);
    assert_eq!(lead["department"], "pediatrics");
    assert_eq!(lead["phone"], "+13125550142");
    let name = recording(&lead).expect("the recording on the lead");
    assert_eq!(
        file.file_name().and_then(|n| n.to_str()),
        Some(name.as_str())
    );
    // Owner-only, like everything under --data.
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&data.join("voicemail")), 0o700);

    // Sample-exact after G.711 decoding: the recording is a run of the
    // sent stream from a packet boundary on (its tail may hold what came
    // after the # was pressed).
    let stored = wav_samples(&std::fs::read(&file).expect("the recording"));
    let sent: Vec<i16> = audio.iter().map(|&c| media::g711::ulaw_decode(c)).collect();
    assert!(stored.len() >= 12_000, "{} samples", stored.len());
    let start = (0..sent.len())
        .step_by(160)
        .find(|&at| (0..160).all(|i| stored[i] == sent[(at + i) % sent.len()]))
        .expect("the recording starts on a packet of the sent audio");
    let matching = stored
        .iter()
        .enumerate()
        .take_while(|(i, sample)| **sample == sent[(start + i) % sent.len()])
        .count();
    assert!(
        matching >= 12_000 && stored.len() - matching <= 1120,
        "{matching} of {} samples match",
        stored.len()
    );

    // The admin gets the file; without credentials, nobody does.
    let id = lead["id"].as_str().expect("an id");
    let (head, body) = get_bytes(&daemon, &format!("/api/leads/{id}/voicemail"));
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: audio/wav"), "{head}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    assert_eq!(body, std::fs::read(&file).unwrap(), "the file as stored");
    assert_eq!(
        daemon
            .get(&format!("/api/leads/{id}/voicemail"), None)
            .status,
        401
    );
    assert_eq!(
        daemon
            .get(&format!("/agent/leads/{id}/voicemail"), None)
            .status,
        401
    );
    assert_eq!(
        daemon
            .get("/api/leads/l-0000000000000000/voicemail", Some(TOKEN))
            .status,
        404
    );
}

#[test]
fn retention_deletes_the_recording_and_the_lead_says_so() {
    let (_dir, daemon) = daemon("2s");
    let peer = RtpPeer::start(0, false);
    peer.speak(known_audio());
    // The patient hangs up after the -d pause: that ends the message too.
    let caller = patient(&daemon, "caller.xml", "+15550100", &peer, 4000);
    press_when_heard(&peer, '8');
    caller
        .join()
        .expect("caller thread")
        .assert_all_succeeded(1);
    let lead = voicemail_lead(&daemon);
    let id = lead["id"].as_str().expect("an id").to_string();
    let deleted = poll(&daemon, &format!("/api/leads/{id}"), |json| {
        json["lead"]["history"]
            .as_array()
            .is_some_and(|steps| steps.iter().any(|s| s["event"] == "recording_deleted"))
    });
    assert_eq!(deleted["lead"]["kind"], "voicemail", "the lead stays");
    assert!(recordings(daemon.data_dir()).is_empty());
    assert_eq!(
        daemon
            .get(&format!("/api/leads/{id}/voicemail"), Some(TOKEN))
            .status,
        404
    );
}
