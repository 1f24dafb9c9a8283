//! The tokio task that drives one call's [`MediaSession`]: it owns the
//! legs' sockets (through their [`PortLease`]s), moves datagrams between
//! them and the core, sleeps until the core's next deadline with
//! `sleep_until`, and carries commands in and events out over channels. It
//! makes no protocol decision of its own.

use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::driver::port_pool::PortLease;
use crate::dtmf::DtmfDigit;
use crate::playback::{Playback, PlaybackId, PlaybackMode};
use crate::prompt::Prompt;
use crate::recording::{RecordingLimits, WavWriter};
use crate::rtp::MAX_PACKET_LEN;
use crate::sdp::NegotiatedMedia;
use crate::session::{Leg, LegStats, MediaEvent, MediaSession, SessionConfig, Transmit};
use crate::webrtc::{WebRtcEvent, WebRtcLeg};

/// Datagrams read per wake-up before checking commands and timers again.
const RECEIVE_BATCH: usize = 32;

/// How often a call adds its RTP counters to the process's metrics while
/// it runs (and once more when it ends), so a spray shows while it lasts.
const REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A command to a media task.
#[derive(Debug)]
///
/// The offer/answer outcomes are boxed: a command is rare (a few per call)
/// but every call's command channel holds a block of 32 of them, so the
/// enum's size is memory per call (256 bytes unboxed: 8 KiB a call).
pub enum MediaCommand {
    /// Adds a leg with its socket (the agent leg once it answered).
    AddLeg {
        /// Which leg.
        leg: Leg,
        /// Its port and socket.
        lease: PortLease,
        /// The offer/answer outcome.
        media: Box<NegotiatedMedia>,
    },
    /// Adds a browser's WebRTC leg ([`crate::webrtc`]) with its socket: the
    /// leg's ICE, DTLS and SRTP are done here, and its audio reaches the
    /// session as a plain leg's would. Its [`WebRtcEvent`]s go to `events`;
    /// once it reports [`WebRtcEvent::Closed`] the task removes the leg and
    /// returns its port.
    AddWebRtcLeg {
        /// Which leg (the agent's, for an agent answering in the browser).
        leg: Leg,
        /// Its port and socket: the address the leg's answer gave.
        lease: PortLease,
        /// The leg and where its events go.
        browser: Box<NewWebRtcLeg>,
    },
    /// A re-INVITE changed a leg's media (hold, unhold, new address).
    UpdateLeg {
        /// Which leg.
        leg: Leg,
        /// The new offer/answer outcome.
        media: Box<NegotiatedMedia>,
    },
    /// A leg ended; its port goes back to the pool.
    RemoveLeg {
        /// Which leg.
        leg: Leg,
    },
    /// Plays prompts to a leg.
    Play {
        /// Which leg.
        leg: Leg,
        /// The prompts, id and mode.
        playback: Playback,
        /// Whether a digit from the leg stops it.
        barge_in: bool,
    },
    /// Stops a leg's playback.
    Stop {
        /// Which leg.
        leg: Leg,
    },
    /// Sends digits to a leg as RFC 4733 telephone-events.
    SendDtmf {
        /// Which leg.
        leg: Leg,
        /// The digits, in order.
        digits: Vec<DtmfDigit>,
    },
    /// Records what `leg` sends into a new WAV file at `path` (created
    /// with mode 0600; it must not exist), until [`MediaCommand::StopRecording`],
    /// a limit, the leg's removal or the task's end.
    Record {
        /// Which leg.
        leg: Leg,
        /// The file to create.
        path: PathBuf,
        /// When the recording ends by itself.
        limits: RecordingLimits,
    },
    /// Ends the recording and completes its file.
    StopRecording,
    /// Listens to `leg` for speech ([`crate::listen`]): each utterance,
    /// once it ends, goes to `utterances` (8 kHz linear PCM), off this task.
    Listen {
        /// Which leg.
        leg: Leg,
        /// When an utterance starts and ends.
        limits: crate::listen::SpeechLimits,
        /// Where utterances go.
        utterances: mpsc::UnboundedSender<Vec<i16>>,
    },
    /// Stops listening.
    StopListening {
        /// Which leg.
        leg: Leg,
    },
    /// Relays the legs to each other.
    Bridge,
    /// Ends the relay.
    Unbridge,
}

/// A browser leg for [`MediaCommand::AddWebRtcLeg`] (boxed there, like
/// the other commands' large parts).
#[derive(Debug)]
pub struct NewWebRtcLeg {
    /// The leg, made by [`WebRtcLeg::accept_offer`] on the lease's address.
    pub webrtc: WebRtcLeg,
    /// Where its events go.
    pub events: mpsc::UnboundedSender<WebRtcEvent>,
}

/// The media task has ended (the call is over); the command was not carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the media task has ended")]
pub struct MediaTaskEnded;

/// The call controller's handle to its media task. Dropping every clone
/// ends the task and returns its ports to the pool.
#[derive(Clone, Debug)]
pub struct MediaHandle {
    commands: mpsc::UnboundedSender<MediaCommand>,
}

impl MediaHandle {
    /// Sends any command.
    pub fn send(&self, command: MediaCommand) -> Result<(), MediaTaskEnded> {
        self.commands.send(command).map_err(|_| MediaTaskEnded)
    }

    /// Plays `prompts` to `leg` (`PlaybackMode::Loop` for hold music).
    pub fn play(
        &self,
        leg: Leg,
        id: PlaybackId,
        prompts: Vec<Arc<Prompt>>,
        mode: PlaybackMode,
        barge_in: bool,
    ) -> Result<(), MediaTaskEnded> {
        self.send(MediaCommand::Play {
            leg,
            playback: Playback::new(id, prompts, mode),
            barge_in,
        })
    }

    /// Stops `leg`'s playback.
    pub fn stop(&self, leg: Leg) -> Result<(), MediaTaskEnded> {
        self.send(MediaCommand::Stop { leg })
    }

    /// Adds the agent leg (or replaces a leg).
    pub fn add_leg(
        &self,
        leg: Leg,
        lease: PortLease,
        media: NegotiatedMedia,
    ) -> Result<(), MediaTaskEnded> {
        self.send(MediaCommand::AddLeg {
            leg,
            lease,
            media: Box::new(media),
        })
    }

    /// Adds a browser's WebRTC leg (see [`MediaCommand::AddWebRtcLeg`]);
    /// returns the receiver of its events.
    pub fn add_webrtc_leg(
        &self,
        leg: Leg,
        lease: PortLease,
        webrtc: WebRtcLeg,
    ) -> Result<mpsc::UnboundedReceiver<WebRtcEvent>, MediaTaskEnded> {
        let (events, receiver) = mpsc::unbounded_channel();
        self.send(MediaCommand::AddWebRtcLeg {
            leg,
            lease,
            browser: Box::new(NewWebRtcLeg { webrtc, events }),
        })?;
        Ok(receiver)
    }

    /// Applies a re-INVITE's offer/answer.
    pub fn update_leg(&self, leg: Leg, media: NegotiatedMedia) -> Result<(), MediaTaskEnded> {
        self.send(MediaCommand::UpdateLeg {
            leg,
            media: Box::new(media),
        })
    }

    /// Removes a leg.
    pub fn remove_leg(&self, leg: Leg) -> Result<(), MediaTaskEnded> {
        self.send(MediaCommand::RemoveLeg { leg })
    }

    /// Sends digits to a leg as RFC 4733 events (100 ms each, 60 ms apart).
    pub fn send_dtmf(&self, leg: Leg, digits: Vec<DtmfDigit>) -> Result<(), MediaTaskEnded> {
        self.send(MediaCommand::SendDtmf { leg, digits })
    }

    /// Bridges caller and agent.
    pub fn bridge(&self) -> Result<(), MediaTaskEnded> {
        self.send(MediaCommand::Bridge)
    }

    /// Ends the bridge.
    pub fn unbridge(&self) -> Result<(), MediaTaskEnded> {
        self.send(MediaCommand::Unbridge)
    }
}

/// Driver-level events: the core's, plus command failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaTaskEvent {
    /// An event of the media core.
    Media(MediaEvent),
    /// A command could not be carried out (e.g. bridging with one leg).
    CommandFailed(crate::error::SessionError),
}

/// A running media task.
#[derive(Debug)]
pub struct MediaTask {
    /// Commands in.
    pub handle: MediaHandle,
    /// Events out (digits, latching, playback ends, inactivity). Unbounded:
    /// a few events per call per second at most, and the media loop must
    /// never wait on the controller.
    pub events: mpsc::UnboundedReceiver<MediaTaskEvent>,
    /// Ends when every handle is dropped.
    pub join: JoinHandle<()>,
}

/// Spawns the media task of a call with its first leg (usually the caller).
pub fn spawn_media_task(
    config: SessionConfig,
    leg: Leg,
    lease: PortLease,
    media: NegotiatedMedia,
) -> MediaTask {
    let (commands, command_receiver) = mpsc::unbounded_channel();
    let (event_sender, events) = mpsc::unbounded_channel();
    let mut rng = SmallRng::from_rng(&mut rand::rng());
    let mut core = MediaSession::new(config);
    core.add_leg(Instant::now().into_std(), leg, media, &mut rng);
    let mut sockets: [Option<PortLease>; 2] = [None, None];
    sockets[index(leg)] = Some(lease);
    let driver = Driver {
        core,
        sockets,
        rng,
        events: event_sender,
        reported: [LegStats::default(); 2],
        next_report: Instant::now() + REPORT_EVERY,
        recording: None,
        browsers: [None, None],
        utterances: None,
    };
    // Boxed, and run by reference: an `async fn` taking `self` by value
    // keeps the argument and the moved value in separate slots of its
    // future, which made every call's media task 19 KiB (issue 18, memory
    // per bridged call).
    let mut driver = Box::new(driver);
    let join = tokio::spawn(async move { driver.run(command_receiver).await });
    MediaTask {
        handle: MediaHandle { commands },
        events,
        join,
    }
}

fn index(leg: Leg) -> usize {
    match leg {
        Leg::Caller => 0,
        Leg::Agent => 1,
    }
}

struct Driver {
    core: MediaSession,
    sockets: [Option<PortLease>; 2],
    rng: SmallRng,
    events: mpsc::UnboundedSender<MediaTaskEvent>,
    /// What each leg's counters were when last added to the metrics.
    reported: [LegStats; 2],
    next_report: Instant,
    /// The voicemail being written (boxed: most calls never record).
    recording: Option<Box<ActiveRecording>>,
    /// The legs that are a browser's WebRTC leg (boxed: most calls have
    /// none, and a str0m connection is large).
    browsers: [Option<Box<BrowserLeg>>; 2],
    /// Where a listened leg's utterances go (a speech menu).
    utterances: Option<(Leg, mpsc::UnboundedSender<Vec<i16>>)>,
}

/// A WebRTC leg in the task: the sans-IO leg, where its events go, and a
/// buffer for the plain RTP it hands the session.
struct BrowserLeg {
    webrtc: WebRtcLeg,
    events: mpsc::UnboundedSender<WebRtcEvent>,
    rtp: [u8; MAX_PACKET_LEN],
}

/// A recording's file while it is written.
///
/// The samples go to the file as they come, through a `BufWriter` (8 KiB:
/// a write to the page cache about every half second of audio), so a
/// message of any length costs the task a fixed amount of memory. These
/// writes are synchronous in the media task: each is a copy into the page
/// cache, not a wait on the disk, which the task's 20 ms pace tolerates.
struct ActiveRecording {
    leg: Leg,
    path: PathBuf,
    writer: WavWriter<BufWriter<File>>,
    samples: Vec<i16>,
}

/// Creates `path` for writing with owner-only permissions: a voicemail
/// is patient data.
fn create_private(path: &std::path::Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

// One value per loop turn, on the stack and moved once: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Wake {
    Command(Option<MediaCommand>),
    Datagram(Leg, std::io::Result<(usize, SocketAddr)>),
    Timer,
}

impl Driver {
    async fn run(&mut self, mut commands: mpsc::UnboundedReceiver<MediaCommand>) {
        let mut caller_buffer = [0u8; MAX_PACKET_LEN];
        let mut agent_buffer = [0u8; MAX_PACKET_LEN];
        let mut out = [0u8; MAX_PACKET_LEN];
        loop {
            self.flush(&mut out);
            let deadline = self.deadline();
            let wake = tokio::select! {
                command = commands.recv() => Wake::Command(command),
                received = receive(self.sockets[0].as_ref(), &mut caller_buffer) => Wake::Datagram(Leg::Caller, received),
                received = receive(self.sockets[1].as_ref(), &mut agent_buffer) => Wake::Datagram(Leg::Agent, received),
                () = sleep_until(deadline) => Wake::Timer,
            };
            match wake {
                Wake::Command(None) => {
                    self.report();
                    self.stop_recording();
                    break;
                }
                Wake::Command(Some(command)) => self.apply(command),
                Wake::Datagram(leg, received) => {
                    let buffer = match leg {
                        Leg::Caller => &mut caller_buffer,
                        Leg::Agent => &mut agent_buffer,
                    };
                    self.receive_batch(leg, received, buffer, &mut out);
                    self.write_recorded();
                }
                Wake::Timer => {}
            }
        }
    }

    /// Adds what this call's RTP counters gained since the last report to
    /// the process's metrics.
    fn report(&mut self) {
        for leg in [Leg::Caller, Leg::Agent] {
            let Some(stats) = self.core.leg_stats(leg) else {
                continue;
            };
            let before = std::mem::replace(&mut self.reported[index(leg)], stats);
            let label = match leg {
                Leg::Caller => "caller",
                Leg::Agent => "agent",
            };
            let counters = stats;
            let gained = |now: u64, then: u64| now.saturating_sub(then);
            let pairs = [
                (
                    "frontdesk_rtp_packets_received_total",
                    gained(counters.inbound.packets, before.inbound.packets),
                ),
                (
                    "frontdesk_rtp_packets_rejected_total",
                    gained(counters.inbound.rejected, before.inbound.rejected),
                ),
                (
                    "frontdesk_rtp_packets_lost_total",
                    gained(counters.inbound.lost, before.inbound.lost),
                ),
                (
                    "frontdesk_rtp_packets_sent_total",
                    gained(counters.packets_sent, before.packets_sent),
                ),
                (
                    "frontdesk_rtp_packets_foreign_total",
                    gained(counters.guard.foreign, before.guard.foreign),
                ),
                (
                    "frontdesk_rtp_packets_learning_total",
                    gained(counters.guard.learning, before.guard.learning),
                ),
                (
                    "frontdesk_rtp_packets_withheld_total",
                    gained(counters.guard.withheld, before.guard.withheld),
                ),
                (
                    "frontdesk_rtp_relatches_total",
                    gained(
                        u64::from(counters.guard.relatches),
                        u64::from(before.guard.relatches),
                    ),
                ),
            ];
            // Zero too: every series exists from the first call on.
            for (name, value) in pairs {
                metrics::counter!(name, "leg" => label).increment(value);
            }
            if let (Some(now), before) = (counters.srtp, before.srtp.unwrap_or_default()) {
                let refused = gained(now.received.auth_failures, before.received.auth_failures);
                metrics::counter!("frontdesk_srtp_auth_failures_total", "leg" => label)
                    .increment(refused);
                metrics::counter!("frontdesk_srtp_replays_total", "leg" => label)
                    .increment(gained(now.received.replayed, before.received.replayed));
            }
        }
    }

    /// Runs timers, sends due packets, forwards events.
    fn flush(&mut self, out: &mut [u8]) {
        let tokio_now = Instant::now();
        if tokio_now >= self.next_report {
            self.next_report = tokio_now + REPORT_EVERY;
            self.report();
        }
        let now = tokio_now.into_std();
        self.core.handle_timeout(now);
        while let Some(transmit) = self.core.poll_transmit(now, out) {
            self.send(transmit, out);
        }
        for leg in Leg::ALL {
            if let Some(browser) = self.browsers[index(leg)].as_mut()
                && browser.webrtc.poll_timeout().is_some_and(|at| now >= at)
            {
                browser.webrtc.handle_timeout(now);
            }
            self.pump_browser(leg, now, out);
        }
        while let Some(event) = self.core.poll_event() {
            if let MediaEvent::SpeechEnded { leg } = event
                && let Some(utterance) = self.core.take_utterance(leg)
                && let Some((listened, utterances)) = &self.utterances
                && *listened == leg
            {
                let _ = utterances.send(utterance);
            }
            // The controller may be gone already; the task ends with the handles.
            let _ = self.events.send(MediaTaskEvent::Media(event));
        }
    }

    fn receive_batch(
        &mut self,
        leg: Leg,
        first: std::io::Result<(usize, SocketAddr)>,
        buffer: &mut [u8],
        out: &mut [u8],
    ) {
        let mut received = first;
        for _ in 0..RECEIVE_BATCH {
            match received {
                Ok((len, source)) => {
                    let now = Instant::now().into_std();
                    if let Some(browser) = self.browsers[index(leg)].as_mut() {
                        browser.webrtc.handle_datagram(now, source, &buffer[..len]);
                        self.pump_browser(leg, now, out);
                    } else if let Some(transmit) =
                        self.core
                            .handle_datagram(now, leg, source, &buffer[..len], out)
                    {
                        self.send(transmit, out);
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(error) => {
                    tracing::debug!(?leg, %error, "RTP receive error");
                    return;
                }
            }
            let Some(lease) = self.sockets[index(leg)].as_ref() else {
                return;
            };
            received = lease.try_recv_from(buffer);
        }
    }

    fn send(&mut self, transmit: Transmit, out: &[u8]) {
        if let Some(browser) = self.browsers[index(transmit.leg)].as_mut() {
            // The session's RTP for a browser goes through its WebRTC leg
            // (SRTP), not to the socket as it is.
            let now = Instant::now().into_std();
            browser.webrtc.send_rtp(now, &out[..transmit.len]);
            self.send_browser_datagrams(transmit.leg);
            return;
        }
        let Some(lease) = self.sockets[index(transmit.leg)].as_ref() else {
            return;
        };
        if let Err(error) = lease.try_send_to(&out[..transmit.len], transmit.destination) {
            // RTP tolerates loss; a full socket buffer drops the packet.
            tracing::debug!(leg = ?transmit.leg, %error, "RTP send failed");
        }
    }

    fn apply(&mut self, command: MediaCommand) {
        let now = Instant::now().into_std();
        let result = match command {
            MediaCommand::AddLeg { leg, lease, media } => {
                self.browsers[index(leg)] = None;
                self.core.add_leg(now, leg, *media, &mut self.rng);
                self.sockets[index(leg)] = Some(lease);
                Ok(())
            }
            MediaCommand::AddWebRtcLeg {
                leg,
                lease,
                browser,
            } => {
                let NewWebRtcLeg { webrtc, events } = *browser;
                self.core
                    .add_leg(now, leg, webrtc.negotiated_media(), &mut self.rng);
                self.sockets[index(leg)] = Some(lease);
                self.browsers[index(leg)] = Some(Box::new(BrowserLeg {
                    webrtc,
                    events,
                    rtp: [0; MAX_PACKET_LEN],
                }));
                // What accepting the offer queued (nothing, for ICE-lite).
                self.send_browser_datagrams(leg);
                Ok(())
            }
            MediaCommand::UpdateLeg { leg, media } => self.core.update_leg(now, leg, *media),
            MediaCommand::RemoveLeg { leg } => {
                if self.recording.as_ref().is_some_and(|r| r.leg == leg) {
                    self.stop_recording();
                }
                self.core.remove_leg(leg);
                self.sockets[index(leg)] = None;
                self.browsers[index(leg)] = None;
                Ok(())
            }
            MediaCommand::Play {
                leg,
                playback,
                barge_in,
            } => self.core.play(now, leg, playback, barge_in),
            MediaCommand::Stop { leg } => {
                self.core.stop(leg);
                Ok(())
            }
            MediaCommand::SendDtmf { leg, digits } => self.core.send_dtmf(now, leg, &digits),
            MediaCommand::Record { leg, path, limits } => {
                self.start_recording(leg, path, limits);
                Ok(())
            }
            MediaCommand::StopRecording => {
                self.stop_recording();
                Ok(())
            }
            MediaCommand::Listen {
                leg,
                limits,
                utterances,
            } => {
                self.core.listen(leg, limits);
                self.utterances = Some((leg, utterances));
                Ok(())
            }
            MediaCommand::StopListening { leg } => {
                self.core.stop_listening(leg);
                self.utterances = None;
                Ok(())
            }
            MediaCommand::Bridge => self.core.bridge(),
            MediaCommand::Unbridge => {
                self.core.unbridge();
                Ok(())
            }
        };
        if let Err(error) = result {
            let _ = self.events.send(MediaTaskEvent::CommandFailed(error));
        }
    }
}

impl Driver {
    /// The earliest of the session's and the browser legs' deadlines.
    fn deadline(&self) -> Option<std::time::Instant> {
        self.browsers
            .iter()
            .flatten()
            .filter_map(|browser| browser.webrtc.poll_timeout())
            .chain(self.core.poll_timeout())
            .min()
    }

    /// Moves what a browser leg has for the session, the socket and the
    /// controller; removes the leg once it has closed.
    fn pump_browser(&mut self, leg: Leg, now: std::time::Instant, out: &mut [u8]) {
        let Some(mut browser) = self.browsers[index(leg)].take() else {
            return;
        };
        let peer = browser.webrtc.session_peer();
        while let Some(len) = browser.webrtc.poll_rtp(&mut browser.rtp[..]) {
            let Some(transmit) =
                self.core
                    .handle_datagram(now, leg, peer, &browser.rtp[..len], out)
            else {
                continue;
            };
            if transmit.leg == leg {
                browser.webrtc.send_rtp(now, &out[..transmit.len]);
            } else {
                self.send(transmit, out);
            }
        }
        let mut closed = false;
        while let Some(event) = browser.webrtc.poll_event() {
            closed |= matches!(event, WebRtcEvent::Closed(_));
            // The controller may be gone already; the task ends with the handles.
            let _ = browser.events.send(event);
        }
        self.browsers[index(leg)] = Some(browser);
        self.send_browser_datagrams(leg);
        if closed {
            tracing::debug!(?leg, "WebRTC leg closed; its port goes back to the pool");
            if self.recording.as_ref().is_some_and(|r| r.leg == leg) {
                self.stop_recording();
            }
            self.core.remove_leg(leg);
            self.sockets[index(leg)] = None;
            self.browsers[index(leg)] = None;
        }
    }

    /// Sends what a browser leg queued for its socket.
    fn send_browser_datagrams(&mut self, leg: Leg) {
        let (Some(browser), Some(lease)) = (
            self.browsers[index(leg)].as_mut(),
            self.sockets[index(leg)].as_ref(),
        ) else {
            return;
        };
        while let Some(transmit) = browser.webrtc.poll_transmit() {
            if let Err(error) = lease.try_send_to(&transmit.contents, transmit.destination) {
                // As for RTP: a full socket buffer drops the datagram; ICE
                // and DTLS retransmit.
                tracing::debug!(?leg, %error, "WebRTC send failed");
            }
        }
    }

    fn start_recording(&mut self, leg: Leg, path: PathBuf, limits: RecordingLimits) {
        self.stop_recording();
        let writer = create_private(&path)
            .map(BufWriter::new)
            .and_then(WavWriter::new);
        match writer {
            Ok(writer) => {
                self.core.record(leg, limits);
                self.recording = Some(Box::new(ActiveRecording {
                    leg,
                    path,
                    writer,
                    samples: Vec::with_capacity(2 * RECEIVE_BATCH * 160),
                }));
            }
            Err(error) => {
                // The disk is full or the folder is gone: an operator must act.
                tracing::error!(%error, path = %path.display(), "cannot create a voicemail file");
            }
        }
    }

    /// Moves what the core recorded since the last turn to the file.
    fn write_recorded(&mut self) {
        let Some(recording) = self.recording.as_mut() else {
            return;
        };
        recording.samples.clear();
        self.core
            .drain_recorded(recording.leg, &mut recording.samples);
        if recording.samples.is_empty() {
            return;
        }
        if let Err(error) = recording.writer.write(&recording.samples) {
            tracing::error!(%error, path = %recording.path.display(), "cannot write a voicemail file");
            let path = recording.path.clone();
            self.recording = None;
            let _ = std::fs::remove_file(path);
        }
    }

    /// Completes the file (its last samples, the WAV sizes).
    fn stop_recording(&mut self) {
        let Some(mut recording) = self.recording.take() else {
            return;
        };
        recording.samples.clear();
        self.core
            .stop_recording(recording.leg, &mut recording.samples);
        let path = recording.path;
        let mut writer = recording.writer;
        let result = writer
            .write(&recording.samples)
            .and_then(|()| writer.finish())
            .and_then(|out| out.into_inner().map_err(|e| e.into_error()))
            .and_then(|file| file.sync_all());
        if let Err(error) = result {
            tracing::error!(%error, path = %path.display(), "cannot complete a voicemail file");
            let _ = std::fs::remove_file(&path);
        }
    }
}

async fn receive(
    lease: Option<&PortLease>,
    buffer: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match lease {
        Some(lease) => lease.recv_from(buffer).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(Instant::from_std(deadline)).await,
        None => std::future::pending().await,
    }
}
