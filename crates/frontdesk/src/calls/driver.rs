//! The thin driver of one call: a tokio task owns the call's sans-IO core
//! ([`call::Call`]), feeds it what happens (SIP events routed to its
//! Call-IDs, its media task's events, routing's news, its deadlines, the
//! daemon's end) and performs what it asks (send, lease a port, play,
//! bridge, ask routing, journal, publish). It decides nothing: every
//! choice is the core's, tested in virtual time in the `call` crate.
//!
//! What the task holds beside the core are the resources behind the
//! core's tokens: the leased ports not yet in use, the media task, the
//! caller's source slot (`[limits.sip] calls`).

use std::collections::HashMap;
use std::sync::Arc;

use call::{Action, Call, Clock, Environment, MediaAction, PortToken, RouterRequest, RoutingInput};
use ivr::jiff::Timestamp;
use media::driver::{MediaHandle, MediaTaskEvent, PortLease, spawn_media_task};
use media::playback::PlaybackId;
use media::session::Leg;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sip::Peer;
use sip::message::validate::ValidRequest;
use sip::registrar::Binding;
use sip::transaction::{Event, ServerTransactionId};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span, warn};

use super::services::CallServices;
use crate::app::router::RouterMessage;

/// What a call reads as it goes: the dialplan in force, the bindings.
struct Live<'a> {
    services: &'a CallServices,
}

impl Environment for Live<'_> {
    fn plan(&self) -> Arc<ivr::Dialplan> {
        self.services.dialplan.current()
    }

    fn bindings(&self, agent: &str) -> Vec<Binding> {
        self.services.locations.get(agent)
    }
}

/// Starts the task of a patient's call.
pub fn spawn(
    services: Arc<CallServices>,
    transaction: ServerTransactionId,
    invite: Box<ValidRequest>,
    source: Peer,
    source_slot: Option<guard::SourceSlot>,
) {
    let (sip_sender, sip_events) = mpsc::unbounded_channel();
    // Route this Call-ID to the call before anything else can happen (a
    // CANCEL right behind the INVITE reaches the call).
    services
        .endpoint
        .route(invite.call_id.clone(), sip_sender.clone());
    let (router_sender, router_events) = mpsc::unbounded_channel();
    let sequence = services.calls.next_sequence();
    let wall = Timestamp::now();
    let record_id =
        crate::app::node::call_record_id(services.node.as_ref(), wall.as_second(), sequence);
    let now = Instant::now();
    let caller = call::signal::caller_number(&invite);
    // Every log line of the call names it, and its caller by pseudonym
    // (the number in full only with --log-patient-numbers).
    let span = info_span!("call", call = %record_id, caller = %services.journal.show(&caller));
    let core = Call::new(
        services.call_config.clone(),
        sequence,
        record_id,
        invite,
        transaction,
        source,
        Clock::new(now.into_std(), wall),
        now.into_std(),
        // A cryptographic RNG: it makes the SRTP keys too.
        StdRng::from_os_rng(),
    );
    let driver = Driver {
        services: Arc::clone(&services),
        core,
        sequence,
        sip_sender,
        sip_events,
        router_sender,
        router_events,
        ports: HashMap::new(),
        media: None,
        media_events: None,
        listening: None,
        recognitions: mpsc::unbounded_channel(),
        _source_slot: source_slot,
    };
    // Boxed and run by reference, as the media task is: a future of an
    // `async fn` taking `self` by value holds it twice.
    let mut driver = Box::new(driver);
    services
        .tasks
        .spawn(async move { driver.run().await }.instrument(span));
}

/// What the recogniser made of one utterance.
type Heard = Result<speech::Recognition, speech::SpeechError>;

struct Driver {
    services: Arc<CallServices>,
    core: Call,
    sequence: u64,
    sip_sender: mpsc::UnboundedSender<Event>,
    sip_events: mpsc::UnboundedReceiver<Event>,
    router_sender: mpsc::UnboundedSender<RouterMessage>,
    router_events: mpsc::UnboundedReceiver<RouterMessage>,
    /// Ports leased for the core and not handed to the media yet.
    ports: HashMap<PortToken, PortLease>,
    media: Option<MediaHandle>,
    media_events: Option<mpsc::UnboundedReceiver<MediaTaskEvent>>,
    /// A speech menu listening: its grammar and the utterances the media
    /// task cuts out.
    listening: Option<(Arc<speech::Grammar>, mpsc::UnboundedReceiver<Vec<i16>>)>,
    /// What the recogniser's workers heard, back on this task.
    recognitions: (mpsc::UnboundedSender<Heard>, mpsc::UnboundedReceiver<Heard>),
    /// An untrusted caller's place among its source's calls, held to the end.
    _source_slot: Option<guard::SourceSlot>,
}

impl Driver {
    async fn run(&mut self) {
        let services = Arc::clone(&self.services);
        self.core.start(
            now(),
            &Live {
                services: &services,
            },
        );
        let ending = services.ending.clone();
        let mut ending_seen = false;
        let keeping_places = services.keeping_places.clone();
        let mut keeping_seen = false;
        loop {
            self.perform().await;
            if self.core.is_finished() {
                break;
            }
            let deadline = self.core.poll_timeout();
            let live = Live {
                services: &services,
            };
            tokio::select! {
                () = keeping_places.cancelled(), if !keeping_seen => {
                    // The daemon drains: a caller waiting keeps their place.
                    keeping_seen = true;
                    self.core.handle_drain(now(), &live);
                }
                () = ending.cancelled(), if !ending_seen => {
                    // The daemon stops and its grace for calls is over.
                    ending_seen = true;
                    self.core.handle_shutdown(now());
                }
                event = self.sip_events.recv() => match event {
                    Some(event) => self.core.handle_sip(now(), event, &live),
                    // Every sender is ours: the channel cannot close first.
                    None => break,
                },
                event = recv_some(self.media_events.as_mut()) => match event {
                    Some(MediaTaskEvent::Media(event)) => self.core.handle_media(now(), event, &live),
                    Some(MediaTaskEvent::CommandFailed(error)) => debug!(%error, "media command failed"),
                    None => self.media_events = None,
                },
                utterance = recv_some(self.listening.as_mut().map(|(_, utterances)| utterances)) => match utterance {
                    Some(samples) => self.recognise(samples, &live),
                    None => self.listening = None,
                },
                heard = self.recognitions.1.recv() => {
                    if let Some(heard) = heard {
                        self.core.handle_speech(now(), speech_input(heard), &live);
                    }
                }
                message = self.router_events.recv() => {
                    if let Some(message) = message {
                        self.core.handle_routing(now(), routing_input(message), &live);
                    }
                }
                () = sleep_until(deadline) => self.core.handle_timeout(now(), &live),
            }
        }
        let record = self.core.record();
        metrics::counter!("frontdesk_calls_total", "outcome" => call::Outcome::name(record.outcome))
            .increment(1);
        // Per department (the queue the call was last in), for the
        // abandonment rule in deploy/prometheus/: queue ids come from the
        // dialplan, so the labels are few.
        if let Some(queue) = &record.department {
            metrics::counter!(
                "frontdesk_queue_calls_total",
                "queue" => queue.clone(),
                "outcome" => call::Outcome::name(record.outcome)
            )
            .increment(1);
        }
        self.services.endpoint.unroute(self.core.call_id());
    }

    /// Carries out every action the core has, feeding back the answers the
    /// core waits for, until it has nothing more to do.
    async fn perform(&mut self) {
        let services = Arc::clone(&self.services);
        let live = Live {
            services: &services,
        };
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Respond {
                    transaction,
                    response,
                } => {
                    let _ = services.endpoint.respond(transaction, response);
                }
                Action::Send {
                    request,
                    peer,
                    token,
                } => {
                    let sent = services.endpoint.send_request(request, peer).await;
                    if let Some(token) = token {
                        let transaction = sent.ok().and_then(Result::ok);
                        self.core.handle_sent(now(), token, transaction);
                    }
                }
                Action::Cancel { transaction } => {
                    let _ = services.endpoint.cancel(transaction);
                }
                Action::Ack { request, peer } => {
                    let _ = services.endpoint.send_ack(request, peer).await;
                }
                Action::Route { call_id } => {
                    services.endpoint.route(call_id, self.sip_sender.clone());
                }
                Action::Unroute { call_id } => services.endpoint.unroute(&call_id),
                Action::LeasePort { token } => {
                    let port = services.lease_port(&mut self.ports, token);
                    self.core.handle_port(now(), token, port, &live);
                }
                Action::ReleasePort { token } => {
                    self.ports.remove(&token);
                }
                Action::Media(media) => self.media(media).await,
                Action::Router(request) => self.route(request, &live).await,
                Action::Journal(event) => {
                    if let records::CallEvent::Connected { agent, .. } = &event {
                        // The caller reached someone: their open call
                        // leads are answered (the leads service decides).
                        services.leads.reached(&self.core.record().caller, agent);
                    }
                    services.journal.record(&self.core.record().id, event);
                }
                Action::JournalEntry(entry) => services.journal.record_entry(entry),
                Action::Lead(lead) => services.leads.send(lead),
                Action::Publish => services.calls.publish(self.sequence, self.core.record()),
                Action::Finished => {
                    self.media = None;
                    self.media_events = None;
                    self.ports.clear();
                }
            }
        }
    }

    async fn media(&mut self, action: MediaAction) {
        let command = match action {
            MediaAction::Start { port, media } => {
                let Some(lease) = self.ports.remove(&port) else {
                    return;
                };
                let task = spawn_media_task(self.services.media, Leg::Caller, lease, media);
                self.media = Some(task.handle);
                self.media_events = Some(task.events);
                return;
            }
            MediaAction::AddLeg { port, media } => {
                let Some(lease) = self.ports.remove(&port) else {
                    return;
                };
                media::driver::MediaCommand::AddLeg {
                    leg: Leg::Agent,
                    lease,
                    media: Box::new(media),
                }
            }
            MediaAction::UpdateLeg { leg, media } => media::driver::MediaCommand::UpdateLeg {
                leg,
                media: Box::new(media),
            },
            MediaAction::RemoveLeg { leg } => media::driver::MediaCommand::RemoveLeg { leg },
            MediaAction::Play {
                leg,
                id,
                prompts,
                mode,
                barge_in,
            } => {
                let mut loaded = Vec::with_capacity(prompts.len());
                for path in &prompts {
                    match self.services.prompts.get(path).await {
                        Ok(prompt) => loaded.push(prompt),
                        Err(error) => warn!("{}: {error}", path.display()),
                    }
                }
                media::driver::MediaCommand::Play {
                    leg,
                    playback: media::playback::Playback::new(PlaybackId(id), loaded, mode),
                    barge_in,
                }
            }
            MediaAction::Stop { leg } => media::driver::MediaCommand::Stop { leg },
            MediaAction::SendDtmf { leg, digits } => {
                media::driver::MediaCommand::SendDtmf { leg, digits }
            }
            MediaAction::Record { leg, name, limits } => {
                let Some(path) = self.services.voicemail.path(&name) else {
                    return;
                };
                media::driver::MediaCommand::Record { leg, path, limits }
            }
            MediaAction::StopRecording => media::driver::MediaCommand::StopRecording,
            MediaAction::Listen {
                leg,
                grammar,
                limits,
            } => {
                let (utterances, receiver) = mpsc::unbounded_channel();
                self.listening = Some((grammar, receiver));
                media::driver::MediaCommand::Listen {
                    leg,
                    limits,
                    utterances,
                }
            }
            MediaAction::StopListening { leg } => {
                self.listening = None;
                media::driver::MediaCommand::StopListening { leg }
            }
            MediaAction::Bridge => media::driver::MediaCommand::Bridge,
            MediaAction::Unbridge => media::driver::MediaCommand::Unbridge,
            MediaAction::End => {
                // Dropping the handle ends the media task; its ports go back.
                self.media = None;
                self.media_events = None;
                return;
            }
        };
        if let Some(media) = &self.media {
            let _ = media.send(command);
        }
    }

    /// Hands an utterance to the recogniser's pool; with no recogniser, or
    /// over its budget, the menu is told at once (it falls back to keys).
    fn recognise(&mut self, samples: Vec<i16>, live: &Live<'_>) {
        let Some((grammar, _)) = &self.listening else {
            return;
        };
        let submitted = match self.services.speech.current() {
            Some(recogniser) => {
                let reply = self.recognitions.0.clone();
                recogniser.try_recognise(Arc::clone(grammar), samples, move |heard| {
                    // The call may have ended meanwhile.
                    let _ = reply.send(heard);
                })
            }
            None => Err(speech::SpeechError::Stopped),
        };
        if let Err(error) = submitted {
            metrics::counter!("frontdesk_speech_recognitions_total", "result" => "unavailable")
                .increment(1);
            debug!(%error, "no recogniser for an utterance");
            self.core
                .handle_speech(now(), ivr::SpeechInput::Unavailable, live);
        }
    }

    async fn route(&mut self, request: RouterRequest, live: &Live<'_>) {
        let router = &self.services.router;
        let call = routing::CallId(self.sequence);
        let input = match request {
            RouterRequest::Enqueue {
                queue,
                priority,
                context,
            } => {
                let record = self.core.record().id.as_str().into();
                let enqueued = router
                    .enqueue(
                        call,
                        record,
                        queue,
                        priority,
                        context,
                        self.router_sender.clone(),
                    )
                    .await;
                RoutingInput::Enqueued(enqueued.ok())
            }
            RouterRequest::Transfer {
                queue,
                direct,
                keep_place,
            } => RoutingInput::Transferred(
                router.transfer(call, queue, direct, keep_place).await.ok(),
            ),
            RouterRequest::Announcement { queue, priority } => {
                let position = router.position(call).await.ok().flatten();
                let estimate = router.estimate(queue, priority).await.ok().flatten();
                RoutingInput::Announcement { position, estimate }
            }
            RouterRequest::HoldPlace { number } => {
                let record = self.core.record().id.clone();
                RoutingInput::PlaceHeld(
                    self.services
                        .callbacks
                        .hold_place(call, &record, number)
                        .await,
                )
            }
            RouterRequest::Cancel => return router.cancel(call),
            RouterRequest::CallEnded => return router.call_ended(call),
            RouterRequest::Answered(agent) => return router.answered(call, agent),
            RouterRequest::OfferFailed(agent, reason) => {
                return router.offer_failed(call, agent, reason);
            }
        };
        self.core.handle_routing(now(), input, live);
    }
}

/// Routing's message as the core's input.
/// The recogniser's answer as the IVR's input. The words are patient
/// data: they go to the journal (through the call core), never to the log.
fn speech_input(heard: Heard) -> ivr::SpeechInput {
    match heard {
        Ok(recognition) => {
            metrics::counter!("frontdesk_speech_recognitions_total", "result" => "heard")
                .increment(1);
            metrics::histogram!("frontdesk_speech_decode_seconds")
                .record(recognition.decode_time.as_secs_f64());
            ivr::SpeechInput::Heard {
                text: recognition.text,
                confidence: recognition.confidence,
            }
        }
        Err(error) => {
            metrics::counter!("frontdesk_speech_recognitions_total", "result" => "failed")
                .increment(1);
            warn!(%error, "the recogniser failed on an utterance");
            ivr::SpeechInput::Unavailable
        }
    }
}

fn routing_input(message: RouterMessage) -> RoutingInput {
    match message {
        RouterMessage::Offer(offer) => RoutingInput::Offer {
            agents: offer.agents.iter().cloned().collect(),
            ring_timeout: offer.ring_timeout,
            waited: offer.waited,
        },
        RouterMessage::Overflowed { to, priority } => RoutingInput::Overflowed { to, priority },
        RouterMessage::GiveUp { message } => RoutingInput::GiveUp {
            message: message.as_str().to_string(),
        },
        RouterMessage::Voicemail { queue } => RoutingInput::Voicemail { queue },
    }
}

/// The time for a call core's inputs (also click-to-call's driver).
pub(super) fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// The next item of a receiver that may be gone (then never).
pub(super) async fn recv_some<T>(receiver: Option<&mut mpsc::UnboundedReceiver<T>>) -> Option<T> {
    match receiver {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until a core's next deadline (never, for none).
pub(super) async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(Instant::from_std(deadline)).await,
        None => std::future::pending().await,
    }
}
