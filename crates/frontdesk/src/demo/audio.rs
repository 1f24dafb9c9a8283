//! The simulated phones' audio: RTP ports of their own (a [`PortPool`] on
//! loopback, next to the daemon's range), a soft tone each phone plays in
//! a loop at 20 ms (so the daemon's RTP inactivity timer sees a live
//! phone), and RFC 4733 digits, all through the media crate's per-call
//! task.

use std::net::IpAddr;
use std::sync::Arc;

use media::driver::{MediaTask, PortLease, PortPool, PortRange, spawn_media_task};
use media::playback::{PlaybackId, PlaybackMode};
use media::prompt::Prompt;
use media::sdp::{LocalMedia, NegotiatedMedia};
use media::session::{InbandPolicy, Leg, SessionConfig};
use media::{DtmfDigit, PortPoolError};

use crate::daemon::RtpPorts;

/// The only leg a phone's media task has (the media crate names legs
/// from the daemon's point of view; a phone has one stream).
pub const PHONE_LEG: Leg = Leg::Caller;

/// The tone's level: quiet, well below clipping.
const TONE_AMPLITUDE: f64 = 1_800.0;

/// What the phones share for audio.
#[derive(Debug, Clone)]
pub struct PhoneAudio {
    ports: PortPool,
    agent_tone: Arc<Prompt>,
    patient_tone: Arc<Prompt>,
}

/// Whose voice a phone plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voice {
    /// An agent's phone.
    Agent,
    /// A patient's phone.
    Patient,
}

impl PhoneAudio {
    /// Phones' RTP ports in `range` on `ip`.
    pub fn new(ip: IpAddr, range: PortRange) -> PhoneAudio {
        PhoneAudio {
            ports: PortPool::new(ip, range),
            agent_tone: Arc::new(tone("agent-tone", 440.0)),
            patient_tone: Arc::new(tone("patient-tone", 330.0)),
        }
    }

    /// A port for a new call.
    pub fn allocate(&self) -> Result<PortLease, PortPoolError> {
        self.ports.allocate()
    }

    /// Our side of the SDP for `lease`.
    pub fn local_media(&self, lease: &PortLease, session_id: u64) -> LocalMedia {
        LocalMedia::new(self.ports.ip(), lease.port(), session_id)
    }

    /// Starts the call's media: the phone's tone, looped, every 20 ms.
    pub fn start(&self, lease: PortLease, negotiated: NegotiatedMedia, voice: Voice) -> MediaTask {
        let config = SessionConfig {
            // The phone's own timers end its calls; the daemon watches RTP.
            inactivity_timeout: None,
            // Only RFC 4733 events count: an agent's greeting is one.
            inband_dtmf: InbandPolicy::Never,
            // The daemon sends from the port its SDP names: confirmed by
            // its first packet, as a real phone's strict RTP would.
            strict: media::strict::StrictConfig::default(),
        };
        let task = spawn_media_task(config, PHONE_LEG, lease, negotiated);
        let tone = match voice {
            Voice::Agent => Arc::clone(&self.agent_tone),
            Voice::Patient => Arc::clone(&self.patient_tone),
        };
        // The task was just spawned: it cannot have ended yet, and if it
        // has, the call simply has no audio.
        let _ = task.handle.play(
            PHONE_LEG,
            PlaybackId(1),
            vec![tone],
            PlaybackMode::Loop,
            false,
        );
        task
    }
}

/// Presses `key` on the phone (RFC 4733, 100 ms).
pub fn press(task: &MediaTask, key: char) {
    if let Some(digit) = DtmfDigit::from_char(key) {
        // A media task that ended means the call is over; nothing to press.
        let _ = task.handle.send_dtmf(PHONE_LEG, vec![digit]);
    }
}

/// One second of a sine at `frequency` (a whole number of periods, so the
/// loop has no click).
fn tone(name: &str, frequency: f64) -> Prompt {
    let rate = f64::from(media::codec::CLOCK_RATE);
    let samples: Vec<i16> = (0..media::codec::CLOCK_RATE)
        .map(|n| {
            let phase = 2.0 * std::f64::consts::PI * frequency * f64::from(n) / rate;
            (TONE_AMPLITUDE * phase.sin()).round() as i16
        })
        .collect();
    // Local invariant: the sample list is not empty.
    Prompt::from_samples(name, &samples).expect("a one-second tone is a valid prompt")
}

/// Why no port range is left for the phones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no room for {needed} RTP ports of the simulated phones next to --rtp-ports {daemon}: leave some above or below it"
)]
pub struct NoPhonePorts {
    needed: u32,
    daemon: RtpPorts,
}

/// The phones' RTP ports: `pairs` RTP/RTCP pairs right above the daemon's
/// range, or right below it when the top of the port space is too close.
pub fn phone_ports(daemon: RtpPorts, pairs: u16) -> Result<PortRange, NoPhonePorts> {
    let needed = u32::from(pairs) * 2;
    let error = NoPhonePorts { needed, daemon };
    let above = (u32::from(daemon.high()) + 1).next_multiple_of(2);
    if above + needed - 1 <= u32::from(u16::MAX) {
        let low = above as u16;
        let high = (above + needed - 1) as u16;
        return PortRange::new(low, high).map_err(|_| error);
    }
    let low = u32::from(daemon.low())
        .checked_sub(needed)
        .filter(|low| *low >= 1024);
    match low {
        Some(low) => PortRange::new(low as u16, daemon.low() - 1).map_err(|_| error),
        None => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(text: &str) -> RtpPorts {
        text.parse().unwrap()
    }

    #[test]
    fn phone_ports_sit_next_to_the_daemons_range() {
        let above = phone_ports(ports("20000-29999"), 100).unwrap();
        assert_eq!((above.low(), above.high()), (30000, 30199));
        assert_eq!(above.rtp_ports().count(), 100);
        let odd_top = phone_ports(ports("20000-30000"), 2).unwrap();
        assert_eq!((odd_top.low(), odd_top.high()), (30002, 30005));
        let below = phone_ports(ports("60000-65535"), 10).unwrap();
        assert_eq!((below.low(), below.high()), (59980, 59999));
        assert_eq!(below.rtp_ports().count(), 10);
        assert!(phone_ports(ports("1024-65535"), 10).is_err());
    }

    #[test]
    fn the_tone_is_one_second_of_frames() {
        let tone = tone("t", 440.0);
        assert_eq!(tone.frame_count(), 50);
        assert_eq!(tone.sample_count(), 8000);
    }
}
