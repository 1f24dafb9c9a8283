//! Voice activity on a leg, sans-IO: where a caller's utterance starts
//! (barge-in on a speech menu's prompt) and ends (it goes to the
//! recogniser), for speech menus (issue 25).
//!
//! An energy detector on the decoded G.711 audio: a packet whose mean
//! absolute level is over `speech_level` is voiced. Two voiced packets in a
//! row (40 ms) start an utterance, so a click does not; `end_samples` of
//! unvoiced audio end it, and it is cut at `max_samples` whatever it holds.
//! The utterance keeps a little audio from before its start
//! ([`PRE_ROLL_SAMPLES`]: the quiet onset of a word is under the level) and
//! its trailing silence. Energy is enough here because the decision is
//! made by the recogniser's grammar afterwards, and the prompt being
//! played is our own audio on the other direction, not in this one
//! (a phone's echo canceller keeps it out).
//!
//! Memory is bounded by `max_samples`; timing follows the packets' sizes,
//! not RTP timestamps (a gap is not filled: the recogniser needs only the
//! audio that came).

use std::collections::VecDeque;
use std::time::Duration;

use crate::codec::Codec;
use crate::recording::samples_in;

/// Audio kept from before an utterance's start: 200 ms.
pub const PRE_ROLL_SAMPLES: usize = 1600;

/// Voiced packets in a row that start an utterance.
const ONSET_PACKETS: u32 = 2;

/// When an utterance starts and ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpeechLimits {
    /// A packet whose mean absolute level (0–32767) is over this is voiced.
    pub speech_level: u16,
    /// Unvoiced samples (8 per ms) that end an utterance.
    pub end_samples: u32,
    /// The longest utterance, in samples.
    pub max_samples: u32,
}

impl SpeechLimits {
    /// Limits from durations (the dialplan's `[speech]`).
    pub fn new(speech_level: u16, end_of_speech: Duration, max_utterance: Duration) -> Self {
        SpeechLimits {
            speech_level,
            end_samples: samples_in(end_of_speech),
            max_samples: samples_in(max_utterance),
        }
    }
}

/// What one packet changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Voice {
    /// An utterance started (barge-in).
    Started,
    /// The utterance ended; take it with [`Listener::take_utterance`].
    Ended,
}

/// Listens to one leg.
#[derive(Debug)]
pub struct Listener {
    limits: SpeechLimits,
    /// Recent audio while quiet (the pre-roll).
    before: VecDeque<i16>,
    /// The utterance being heard.
    utterance: Vec<i16>,
    speaking: bool,
    voiced_run: u32,
    unvoiced_run: u32,
    /// An ended utterance not yet taken.
    ready: Option<Vec<i16>>,
}

impl Listener {
    /// A listener that has heard nothing.
    pub fn new(limits: SpeechLimits) -> Listener {
        Listener {
            limits,
            before: VecDeque::with_capacity(PRE_ROLL_SAMPLES),
            utterance: Vec::new(),
            speaking: false,
            voiced_run: 0,
            unvoiced_run: 0,
            ready: None,
        }
    }

    /// Takes one audio packet's G.711 `payload`.
    pub fn push(&mut self, codec: Codec, payload: &[u8]) -> Option<Voice> {
        if payload.is_empty() || self.ready.is_some() {
            // One utterance at a time: the next is heard once this one is taken.
            return None;
        }
        let mut sum: u64 = 0;
        for &code in payload {
            let sample = codec.decode(code);
            sum += u64::from(sample.unsigned_abs());
            if self.speaking {
                self.utterance.push(sample);
            } else {
                if self.before.len() == PRE_ROLL_SAMPLES {
                    self.before.pop_front();
                }
                self.before.push_back(sample);
            }
        }
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let level = sum / u64::from(len.max(1));
        let voiced = level > u64::from(self.limits.speech_level);
        if !self.speaking {
            self.voiced_run = if voiced { self.voiced_run + 1 } else { 0 };
            if self.voiced_run >= ONSET_PACKETS {
                self.speaking = true;
                self.unvoiced_run = 0;
                self.utterance = self.before.drain(..).collect();
                return Some(Voice::Started);
            }
            return None;
        }
        if voiced {
            self.unvoiced_run = 0;
        } else {
            self.unvoiced_run = self.unvoiced_run.saturating_add(len);
        }
        let full =
            self.utterance.len() >= usize::try_from(self.limits.max_samples).unwrap_or(usize::MAX);
        if self.unvoiced_run >= self.limits.end_samples || full {
            let max = usize::try_from(self.limits.max_samples).unwrap_or(usize::MAX);
            self.utterance.truncate(max);
            self.ready = Some(std::mem::take(&mut self.utterance));
            self.speaking = false;
            self.voiced_run = 0;
            self.unvoiced_run = 0;
            return Some(Voice::Ended);
        }
        None
    }

    /// The ended utterance (8 kHz linear PCM), once; listening goes on.
    pub fn take_utterance(&mut self) -> Option<Vec<i16>> {
        self.ready.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711;

    fn packet(level: i16) -> Vec<u8> {
        (0..160)
            .map(|n| g711::ulaw_encode(if n % 2 == 0 { level } else { -level }))
            .collect()
    }

    fn limits() -> SpeechLimits {
        SpeechLimits::new(500, Duration::from_millis(400), Duration::from_secs(2))
    }

    #[test]
    fn two_voiced_packets_start_and_silence_ends_with_the_pre_roll() {
        let mut listener = Listener::new(limits());
        for _ in 0..20 {
            assert_eq!(listener.push(Codec::Pcmu, &packet(10)), None);
        }
        assert_eq!(listener.push(Codec::Pcmu, &packet(5000)), None);
        assert_eq!(
            listener.push(Codec::Pcmu, &packet(5000)),
            Some(Voice::Started)
        );
        for _ in 0..10 {
            assert_eq!(listener.push(Codec::Pcmu, &packet(5000)), None);
        }
        let mut ended = None;
        for i in 0..20 {
            if let Some(voice) = listener.push(Codec::Pcmu, &packet(10)) {
                ended = Some((i, voice));
                break;
            }
        }
        // 400 ms of silence is 20 packets.
        assert_eq!(ended, Some((19, Voice::Ended)));
        let utterance = listener.take_utterance().unwrap();
        // The pre-roll (200 ms, with the 2 onset packets), 10 voiced, 20 quiet.
        assert_eq!(utterance.len(), PRE_ROLL_SAMPLES + 30 * 160);
        assert!(listener.take_utterance().is_none());
    }

    #[test]
    fn a_click_does_not_start_and_a_long_utterance_is_cut() {
        let mut listener = Listener::new(limits());
        assert_eq!(listener.push(Codec::Pcmu, &packet(8000)), None);
        assert_eq!(listener.push(Codec::Pcmu, &packet(10)), None);
        assert_eq!(listener.push(Codec::Pcmu, &packet(8000)), None);
        assert_eq!(
            listener.push(Codec::Pcmu, &packet(8000)),
            Some(Voice::Started)
        );
        let mut ended = false;
        for _ in 0..200 {
            if listener.push(Codec::Pcmu, &packet(8000)) == Some(Voice::Ended) {
                ended = true;
                break;
            }
        }
        assert!(ended);
        assert_eq!(listener.take_utterance().unwrap().len(), 16_000);
    }

    proptest::proptest! {
        #[test]
        fn any_payloads_stay_bounded(payloads in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..400), 0..200)) {
            let mut listener = Listener::new(SpeechLimits::new(100, Duration::from_millis(100), Duration::from_millis(500)));
            for payload in &payloads {
                if listener.push(Codec::Pcma, payload) == Some(Voice::Ended) {
                    let utterance = listener.take_utterance().unwrap();
                    proptest::prop_assert!(utterance.len() <= 4000);
                }
            }
        }
    }
}
