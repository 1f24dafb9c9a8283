//! What a call asks its driver to do ([`Action`]), and the answers the
//! driver brings back ([`RoutingInput`], the tokens of ports and sent
//! requests).

use std::path::PathBuf;
use std::time::Duration;

use bytestring::ByteString;
use media::DtmfDigit;
use media::playback::PlaybackMode;
use media::recording::RecordingLimits;
use media::sdp::NegotiatedMedia;
use media::session::Leg;
use records::{CallEvent, JournalEntry};
use routing::{
    AgentId, CallerContext, DirectOffer, EnqueueError, Enqueued, OfferFailure, Priority, QueueId,
};
use sip::Peer;
use sip::message::{Request, Response};
use sip::transaction::{ClientTransactionId, ServerTransactionId};

/// Names a port the call asked for ([`Action::LeasePort`]) until the
/// driver's answer ([`crate::Call::handle_port`]) and the action that uses
/// or releases it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortToken(pub u64);

/// Names a request whose client transaction the call needs to know (an
/// INVITE to an agent, to CANCEL it), until [`crate::Call::handle_sent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SendToken(pub u64);

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send `response` on a server transaction.
    Respond {
        /// The transaction (the patient's INVITE, or a request in a dialog).
        transaction: ServerTransactionId,
        /// The response.
        response: Response,
    },
    /// Start a client transaction for `request` to `peer`; with a token,
    /// report its id (or its failure) through [`crate::Call::handle_sent`].
    Send {
        /// The request (the endpoint adds Via and Max-Forwards).
        request: Request,
        /// Where.
        peer: Peer,
        /// Report the transaction's id under this token.
        token: Option<SendToken>,
    },
    /// CANCEL a pending INVITE.
    Cancel {
        /// Its transaction.
        transaction: ClientTransactionId,
    },
    /// Send the ACK for a 2xx (again, for a retransmitted 2xx).
    Ack {
        /// The ACK.
        request: Request,
        /// Where.
        peer: Peer,
    },
    /// Route the SIP events of this Call-ID (an agent leg) to the call.
    Route {
        /// The Call-ID.
        call_id: ByteString,
    },
    /// Stop routing this Call-ID to the call.
    Unroute {
        /// The Call-ID.
        call_id: ByteString,
    },
    /// Lease an RTP port; answer with [`crate::Call::handle_port`].
    LeasePort {
        /// The name of the answer.
        token: PortToken,
    },
    /// Give back a leased port that will not be used.
    ReleasePort {
        /// The lease.
        token: PortToken,
    },
    /// Something for the call's media.
    Media(MediaAction),
    /// Something for routing.
    Router(RouterRequest),
    /// Record a step of the call in the journal, at the call's time now.
    Journal(CallEvent),
    /// Record a step with its own time (the first: the INVITE's).
    JournalEntry(JournalEntry),
    /// The call becomes a lead for the front desk to follow up (a caller
    /// who gave up waiting; later a callback or a voicemail): the driver
    /// hands it to the leads service and never waits for it.
    Lead(CallLead),
    /// The call's record changed ([`crate::Call::record`]).
    Publish,
    /// The call is over: nothing more will come from it.
    Finished,
}

/// A call that becomes a lead ([`Action::Lead`]): what the leads service
/// needs to put it on the record and on the lead desk. The number is as
/// the call brought it (the From user part); the service normalises it to
/// E.164 with the clinic's country and drops a lead it cannot call back.
///
/// Built by [`CallLead::new`] from the call's record, so that a kind with
/// more to say (a voicemail's recording) adds a field with its default
/// there and every other maker stays as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct CallLead {
    /// `abandoned_call`, `callback` or `voicemail`.
    pub kind: records::LeadKind,
    /// The queue (department) that owns the lead; its `respond_within` sets
    /// the lead's `respond_by`.
    pub queue: QueueId,
    /// The caller's number as the call brought it.
    pub caller: String,
    /// The call's record id (`c-…`), which the lead's history names.
    pub call: String,
    /// How long the caller waited in queues.
    pub waited: Duration,
    /// The call's priority there.
    pub priority: Priority,
    /// The dialed number's source tag (`main-line`), if it had one.
    pub source: Option<String>,
    /// A voicemail's recording (`None` for other kinds).
    pub recording: Option<Recording>,
}

impl CallLead {
    /// A lead of `kind` from the call `record`, owned by `queue`, after a
    /// wait of `waited`.
    pub fn new(
        kind: records::LeadKind,
        record: &crate::CallRecord,
        queue: QueueId,
        waited: Duration,
    ) -> CallLead {
        CallLead {
            kind,
            queue,
            caller: record.caller.clone(),
            call: record.id.clone(),
            waited,
            priority: record.priority,
            source: record.source.clone(),
            recording: None,
        }
    }
}

/// A voicemail's recording, as its lead refers to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// The file's name in the voicemail folder (`<32 hex digits>.wav`).
    pub name: String,
    /// How long the caller was recorded (from the beep's end).
    pub length: Duration,
}

/// What the call's media must do.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaAction {
    /// Start the call's media with the patient's leg on the leased port.
    Start {
        /// The patient's port.
        port: PortToken,
        /// What offer/answer agreed.
        media: NegotiatedMedia,
    },
    /// Add the agent's leg on its leased port.
    AddLeg {
        /// The agent's port.
        port: PortToken,
        /// What offer/answer agreed.
        media: NegotiatedMedia,
    },
    /// A re-INVITE changed a leg's media.
    UpdateLeg {
        /// Which leg.
        leg: Leg,
        /// The new agreement.
        media: NegotiatedMedia,
    },
    /// A leg is over; its port goes back.
    RemoveLeg {
        /// Which leg.
        leg: Leg,
    },
    /// Play prompt files to a leg, in order or looped.
    Play {
        /// Which leg.
        leg: Leg,
        /// Quoted back in the playback's end.
        id: u64,
        /// The files.
        prompts: Vec<PathBuf>,
        /// Once or looped.
        mode: PlaybackMode,
        /// Whether a digit from the leg stops it.
        barge_in: bool,
    },
    /// Stop a leg's playback.
    Stop {
        /// Which leg.
        leg: Leg,
    },
    /// Send digits to a leg as RFC 4733 events.
    SendDtmf {
        /// Which leg.
        leg: Leg,
        /// The digits.
        digits: Vec<DtmfDigit>,
    },
    /// Record what a leg sends into a new file (a voicemail), until
    /// [`MediaAction::StopRecording`], a limit or the end of the media.
    Record {
        /// Which leg.
        leg: Leg,
        /// The file's name (random hex and `.wav`); the driver puts it in
        /// the voicemail folder under `--data`.
        name: String,
        /// When the recording ends by itself (reported as
        /// `MediaEvent::RecordingEnded`).
        limits: RecordingLimits,
    },
    /// End the recording and complete its file.
    StopRecording,
    /// Listen to a leg for speech (a speech menu, issue 25): voice
    /// activity comes back as `MediaEvent::SpeechStarted`; each utterance
    /// goes to the recogniser with `grammar`, and what it heard comes back
    /// through [`crate::Call::handle_speech`].
    Listen {
        /// Which leg.
        leg: Leg,
        /// The menu's grammar.
        grammar: std::sync::Arc<speech::Grammar>,
        /// When an utterance starts and ends (`[speech]`).
        limits: media::listen::SpeechLimits,
    },
    /// Stop listening to a leg.
    StopListening {
        /// Which leg.
        leg: Leg,
    },
    /// Relay the legs to each other.
    Bridge,
    /// Stop relaying.
    Unbridge,
    /// The call's media is over: its ports go back.
    End,
}

/// What the call tells or asks routing.
#[derive(Debug, Clone, PartialEq)]
pub enum RouterRequest {
    /// Put the caller in a queue; answer [`RoutingInput::Enqueued`].
    Enqueue {
        /// The queue.
        queue: QueueId,
        /// The priority.
        priority: Priority,
        /// Who is calling.
        context: CallerContext,
    },
    /// The bridged agent transferred the call; answer
    /// [`RoutingInput::Transferred`].
    Transfer {
        /// The target queue.
        queue: QueueId,
        /// The agent named, first.
        direct: Option<DirectOffer>,
        /// The agent's device was lost (the REFER carries
        /// [`crate::signal::REQUEUE_HEADER`]): back in the caller's first
        /// place ([`routing::Router::requeue`]), not after the wait they
        /// had before the answer.
        keep_place: bool,
    },
    /// The caller's position and an honest wait estimate, for an
    /// announcement; answer [`RoutingInput::Announcement`].
    Announcement {
        /// The queue.
        queue: QueueId,
        /// The caller's priority there.
        priority: Priority,
    },
    /// The caller, waiting in line, hangs up to be called back at
    /// `number` and keeps their place (virtual hold); answer
    /// [`RoutingInput::PlaceHeld`].
    HoldPlace {
        /// The number to call back, E.164, allowed by the trunk.
        number: String,
    },
    /// The caller left before an agent answered.
    Cancel,
    /// A connected call ended.
    CallEnded,
    /// `agent` answered.
    Answered(AgentId),
    /// The offer to `agent` failed.
    OfferFailed(AgentId, OfferFailure),
}

/// News from routing about the call: offers and moves it decided, and the
/// answers to the call's requests.
#[derive(Debug, Clone, PartialEq)]
pub enum RoutingInput {
    /// Ring these agents.
    Offer {
        /// Whom.
        agents: Vec<AgentId>,
        /// For how long.
        ring_timeout: Duration,
        /// How long the caller has waited (for the agent's display).
        waited: Duration,
    },
    /// The call moved to another queue.
    Overflowed {
        /// The new queue.
        to: QueueId,
        /// The caller's priority there.
        priority: Priority,
    },
    /// Nobody will take the call: play this message and hang up.
    GiveUp {
        /// A prompt id of the dialplan.
        message: String,
    },
    /// Nobody will take the call: take a voicemail for this queue.
    Voicemail {
        /// The queue whose department gets the message.
        queue: QueueId,
    },
    /// The answer to [`RouterRequest::Enqueue`] (`None`: routing has
    /// stopped).
    Enqueued(Option<Result<Enqueued, EnqueueError>>),
    /// The answer to [`RouterRequest::Transfer`].
    Transferred(Option<Result<Enqueued, EnqueueError>>),
    /// The answer to [`RouterRequest::HoldPlace`]: the callback's place in
    /// line, or `None` when routing could not keep it (the caller is being
    /// offered to agents, the queue lost its callbacks in a reload, routing
    /// stopped).
    PlaceHeld(Option<usize>),
    /// The answer to [`RouterRequest::Announcement`].
    Announcement {
        /// 1-based place in line, `None` when not in line (ringing).
        position: Option<usize>,
        /// Most callers' wait, when routing knows it.
        estimate: Option<Duration>,
    },
}
