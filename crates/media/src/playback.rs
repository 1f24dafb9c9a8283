//! Playing prompts: a cursor over a list of prompts ([`Playback`]) and a
//! pacing model that does not drift ([`Pacer`]).
//!
//! The pacer computes each packet's deadline as `start + n × 20 ms`, never
//! as "the previous send plus 20 ms", so timer lateness does not
//! accumulate: a late wake-up sends the due packet at once and the next
//! deadline is still on the original grid.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::{Codec, FRAME_DURATION};
use crate::prompt::Prompt;

/// Names one playback request, so that its completion event can be told
/// apart from an earlier one's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlaybackId(pub u64);

/// What happens at the end of the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaybackMode {
    /// Play the list once (IVR prompts).
    Once,
    /// Start over until stopped (hold music).
    Loop,
}

/// One frame handed out by [`Playback::next_frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaybackFrame<'a> {
    /// 160 bytes of G.711.
    pub payload: &'a [u8],
    /// First frame of a prompt: it starts a talkspurt (marker bit).
    pub starts_prompt: bool,
}

/// A cursor over prompts played back to back.
#[derive(Clone, Debug)]
pub struct Playback {
    id: PlaybackId,
    prompts: Vec<Arc<Prompt>>,
    mode: PlaybackMode,
    prompt: usize,
    frame: usize,
}

impl Playback {
    /// A playback of `prompts` in order.
    pub fn new(id: PlaybackId, prompts: Vec<Arc<Prompt>>, mode: PlaybackMode) -> Playback {
        Playback {
            id,
            prompts,
            mode,
            prompt: 0,
            frame: 0,
        }
    }

    /// The request's id.
    pub fn id(&self) -> PlaybackId {
        self.id
    }

    /// The mode.
    pub fn mode(&self) -> PlaybackMode {
        self.mode
    }

    /// Whether every frame has been handed out (never, when looping a
    /// non-empty list).
    pub fn is_finished(&self) -> bool {
        self.prompt >= self.prompts.len()
    }

    /// The next frame in `codec`, or `None` at the end.
    pub fn next_frame(&mut self, codec: Codec) -> Option<PlaybackFrame<'_>> {
        loop {
            let prompt = self.prompts.get(self.prompt)?;
            if self.frame < prompt.frame_count() {
                let starts_prompt = self.frame == 0;
                let index = self.frame;
                self.frame += 1;
                let payload = self.prompts[self.prompt].frame(codec, index)?;
                return Some(PlaybackFrame {
                    payload,
                    starts_prompt,
                });
            }
            self.frame = 0;
            self.prompt += 1;
            if self.prompt == self.prompts.len() && self.mode == PlaybackMode::Loop {
                self.prompt = 0;
            }
        }
    }
}

/// Deadlines on a fixed 20 ms grid from a start instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacer {
    start: Instant,
    sent: u64,
}

impl Pacer {
    /// How late the pacer may fall before it gives up on the missed slots
    /// and restarts its grid (a stalled runtime must not cause a burst).
    pub const MAX_LATENESS: Duration = Duration::from_millis(100);

    /// A grid whose first slot is `start`.
    pub fn new(start: Instant) -> Pacer {
        Pacer { start, sent: 0 }
    }

    /// The deadline of the next packet: `start + n × 20 ms`.
    pub fn deadline(&self) -> Instant {
        self.start + FRAME_DURATION * self.sent as u32
    }

    /// Packets sent on this grid.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// If the next packet is due at `now`, returns its deadline (the media
    /// time it stands for) and advances the grid. When `now` is more than
    /// [`Pacer::MAX_LATENESS`] past the deadline the grid restarts at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        let deadline = self.deadline();
        if now < deadline {
            return None;
        }
        if now - deadline > Pacer::MAX_LATENESS {
            self.start = now;
            self.sent = 1;
            return Some(now);
        }
        self.sent += 1;
        Some(deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(name: &str, frames: usize) -> Arc<Prompt> {
        let samples: Vec<i16> = (0..frames * 160).map(|n| (n as i16 % 50) * 100).collect();
        Arc::new(Prompt::from_samples(name, &samples).unwrap())
    }

    #[test]
    fn plays_prompts_back_to_back_and_marks_each_start() {
        let mut playback = Playback::new(
            PlaybackId(1),
            vec![prompt("a", 2), prompt("b", 3)],
            PlaybackMode::Once,
        );
        let mut starts = Vec::new();
        while let Some(frame) = playback.next_frame(Codec::Pcmu) {
            assert_eq!(frame.payload.len(), 160);
            starts.push(frame.starts_prompt);
        }
        assert_eq!(starts, [true, false, true, false, false]);
        assert!(playback.is_finished());
        assert!(playback.next_frame(Codec::Pcmu).is_none());
    }

    #[test]
    fn loops_for_hold_music() {
        let mut playback =
            Playback::new(PlaybackId(2), vec![prompt("music", 2)], PlaybackMode::Loop);
        let starts: Vec<bool> = (0..7)
            .map(|_| playback.next_frame(Codec::Pcma).unwrap().starts_prompt)
            .collect();
        assert_eq!(starts, [true, false, true, false, true, false, true]);
        assert!(!playback.is_finished());
    }

    #[test]
    fn an_empty_list_is_finished_at_once_even_looping() {
        let mut playback = Playback::new(PlaybackId(3), Vec::new(), PlaybackMode::Loop);
        assert!(playback.next_frame(Codec::Pcmu).is_none());
        assert!(playback.is_finished());
    }

    #[test]
    fn pacer_deadlines_do_not_drift_with_late_wakeups() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start);
        let mut sent = Vec::new();
        // Every wake-up is 7 ms late; the deadlines stay on the grid.
        for n in 0..50u32 {
            let deadline = pacer.deadline();
            assert_eq!(deadline, start + FRAME_DURATION * n);
            assert_eq!(pacer.poll(deadline - Duration::from_millis(1)), None);
            sent.push(pacer.poll(deadline + Duration::from_millis(7)).unwrap());
        }
        assert_eq!(pacer.deadline(), start + Duration::from_secs(1));
        assert_eq!(sent[49], start + FRAME_DURATION * 49);
    }

    #[test]
    fn pacer_catches_up_small_delays_and_restarts_after_a_stall() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start);
        // 60 ms late: three packets are due now, sent back to back.
        let now = start + Duration::from_millis(40);
        let due: Vec<_> = std::iter::from_fn(|| pacer.poll(now)).collect();
        assert_eq!(
            due,
            [start, start + FRAME_DURATION, start + FRAME_DURATION * 2]
        );
        // A 1 s stall: one packet now, then a fresh grid.
        let late = start + Duration::from_secs(1);
        assert_eq!(pacer.poll(late), Some(late));
        assert_eq!(pacer.poll(late), None);
        assert_eq!(pacer.deadline(), late + FRAME_DURATION);
    }
}
