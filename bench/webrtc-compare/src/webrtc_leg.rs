//! webrtc-rs 0.21: since 0.20 an async layer (`webrtc`) over a sans-IO
//! core (`rtc`). A `PeerConnection` binds its own sockets
//! (`with_udp_addrs`) and spawns its own driver task on the ambient tokio
//! runtime (here our current-thread one: no reactor pool), which owns
//! them and the clock; the application sees async methods, an event
//! handler, and tracks to read and write.
//!
//! Server: ICE-lite (`SettingEngineBuilder::with_lite`), PCMU only, the
//! default interceptors (RTCP reports, NACK, TWCC: what a browser peer
//! gets), the answerer's DTLS server role. A remote track is read in a
//! task and every packet written back on our own track, as the crate's
//! `reflect` example does. Client: full ICE, DTLS client.

use std::sync::Arc;

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::{oneshot, watch};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription,
    Registry, SettingEngineBuilder, register_default_interceptors,
};

use crate::{ClientShared, FRAME, PAYLOAD_LEN, Signal, stats};

const PCMU: &str = "audio/PCMU";

fn pcmu() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: PCMU.to_owned(),
        clock_rate: 8000,
        channels: 1,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

fn engine() -> Result<(MediaEngine, Registry), String> {
    let mut media_engine = MediaEngine::default();
    media_engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: pcmu(),
                payload_type: 0,
                ..Default::default()
            },
            RtpCodecKind::Audio,
        )
        .map_err(|e| e.to_string())?;
    let registry = register_default_interceptors(Registry::new(), &mut media_engine)
        .map_err(|e| e.to_string())?;
    Ok((media_engine, registry))
}

fn track(ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("stream-{ssrc}"),
        format!("track-{ssrc}"),
        format!("audio-{ssrc}"),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            active: true,
            codec: pcmu(),
            ..Default::default()
        }],
    )))
}

/// One handler for both sides: the states go to watches; what a remote
/// track does depends on the side.
struct Handler {
    gathered: watch::Sender<bool>,
    connected: watch::Sender<bool>,
    side: Side,
}

#[derive(Clone)]
enum Side {
    /// Writes every packet it receives back on this track.
    Server(Arc<TrackLocalStaticRTP>, u32),
    Client(Arc<ClientShared>),
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            match &self.side {
                Side::Server(..) => stats::server_connected(),
                Side::Client(shared) => shared.counters.connected_one(),
            }
            self.connected.send_replace(true);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let side = self.side.clone();
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                let TrackRemoteEvent::OnRtpPacket(mut packet) = event else {
                    continue;
                };
                match &side {
                    Side::Server(output, ssrc) => {
                        stats::server_received();
                        packet.header.ssrc = *ssrc;
                        if output.write_rtp(packet).await.is_ok() {
                            stats::server_sent();
                        }
                    }
                    Side::Client(shared) => shared.counters.received_one(),
                }
            }
        });
    }
}

/// With `CERT=shared` the server makes one DTLS certificate and gives it
/// to every leg; by default each `PeerConnection` makes its own (ECDSA
/// P-256), as a browser's page would.
fn shared_certificate() -> Option<RTCCertificate> {
    static CERT: std::sync::OnceLock<Option<RTCCertificate>> = std::sync::OnceLock::new();
    CERT.get_or_init(|| {
        if std::env::var("CERT").as_deref() != Ok("shared") {
            return None;
        }
        let provider = rtc::crypto::default_provider().expect("crypto provider");
        let params = CertificateParams::new(vec!["frontdesk".to_owned()]).expect("params");
        Some(
            RTCCertificate::generate(
                provider.crypto(),
                rtc::crypto::SignatureScheme::EcdsaP256Sha256,
                params,
            )
            .expect("certificate"),
        )
    })
    .clone()
}

async fn peer_connection(
    lite: bool,
    side: Side,
) -> Result<
    (
        impl PeerConnection,
        watch::Receiver<bool>,
        watch::Receiver<bool>,
    ),
    String,
> {
    let (media_engine, registry) = engine()?;
    let mut configuration = RTCConfigurationBuilder::new();
    if lite {
        if let Some(cert) = shared_certificate() {
            configuration = configuration.with_certificates(vec![cert]);
        }
    }
    let (gathered, gathered_rx) = watch::channel(false);
    let (connected, connected_rx) = watch::channel(false);
    let pc = PeerConnectionBuilder::new()
        .with_configuration(configuration.build())
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_setting_engine(SettingEngineBuilder::new().with_lite(lite).build())
        .with_handler(Arc::new(Handler {
            gathered,
            connected,
            side,
        }))
        .with_udp_addrs(vec!["127.0.0.1:0"])
        .build()
        .await
        .map_err(|e| e.to_string())?;
    Ok((pc, gathered_rx, connected_rx))
}

pub async fn server_leg(offer: String, answer: oneshot::Sender<String>) -> Result<(), String> {
    let ssrc = rand_ssrc();
    let output = track(ssrc);
    let (pc, mut gathered, _connected) =
        peer_connection(true, Side::Server(output.clone(), ssrc)).await?;
    pc.add_track(output).await.map_err(|e| e.to_string())?;
    let offer = RTCSessionDescription::offer(offer).map_err(|e| e.to_string())?;
    pc.set_remote_description(offer)
        .await
        .map_err(|e| e.to_string())?;
    let sdp = pc.create_answer(None).await.map_err(|e| e.to_string())?;
    pc.set_local_description(sdp)
        .await
        .map_err(|e| e.to_string())?;
    gathered.wait_for(|g| *g).await.map_err(|e| e.to_string())?;
    let local = pc.local_description().await.ok_or("no local description")?;
    let _ = answer.send(local.sdp);
    // The connection lives as long as this task (the process).
    std::future::pending::<()>().await;
    drop(pc);
    Ok(())
}

pub async fn client_leg(signal: Signal, shared: Arc<ClientShared>) -> Result<(), String> {
    let ssrc = rand_ssrc();
    let output = track(ssrc);
    let (pc, mut gathered, mut connected) =
        peer_connection(false, Side::Client(shared.clone())).await?;
    pc.add_track(output.clone())
        .await
        .map_err(|e| e.to_string())?;
    let offer = pc.create_offer(None).await.map_err(|e| e.to_string())?;
    pc.set_local_description(offer)
        .await
        .map_err(|e| e.to_string())?;
    gathered.wait_for(|g| *g).await.map_err(|e| e.to_string())?;
    let local = pc.local_description().await.ok_or("no local description")?;
    let answer = signal(local.sdp).await.map_err(|e| e.to_string())?;
    let answer = RTCSessionDescription::answer(answer).map_err(|e| e.to_string())?;
    pc.set_remote_description(answer)
        .await
        .map_err(|e| e.to_string())?;
    connected
        .wait_for(|c| *c)
        .await
        .map_err(|e| e.to_string())?;

    let mut start = shared.start.clone();
    start.wait_for(|s| *s).await.map_err(|e| e.to_string())?;
    let mut ticks = tokio::time::interval(FRAME);
    let payload = bytes::Bytes::from_static(&[0x55; PAYLOAD_LEN]);
    for n in 0..shared.frames {
        ticks.tick().await;
        let packet = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                payload_type: 0,
                sequence_number: n as u16,
                timestamp: (n * PAYLOAD_LEN as u64) as u32,
                ssrc,
                ..Default::default()
            },
            payload: payload.clone(),
        };
        output.write_rtp(packet).await.map_err(|e| e.to_string())?;
        shared.counters.sent_one();
    }
    std::future::pending::<()>().await;
    drop(pc);
    Ok(())
}

fn rand_ssrc() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0x1000);
    NEXT.fetch_add(1, Ordering::Relaxed) ^ std::process::id()
}
