//! A queue's waiting line: priority classes, first come first served within
//! a class, and aging.
//!
//! Each class is a `VecDeque` sorted by the time the caller first entered
//! routing (an overflowed caller keeps it, so they take their place among
//! the callers of the new queue by how long they have really waited).
//!
//! The serving order is a merge of the classes by [`OrderKey`]: urgent
//! callers by their enqueue time; a routine caller who has waited the
//! queue's aging time counts as urgent from that moment, behind the urgent
//! callers already waiting; other routine callers after them. Aged routine
//! callers are always a prefix of the routine class, so the merge of two
//! sorted sequences stays sorted and no timer is needed: the order is
//! computed from `now` whenever it is read.

use std::collections::VecDeque;
use std::time::Duration;

use crate::id::{CallId, Priority};
use crate::time::Millis;

/// One waiting caller in a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waiting {
    /// When the caller first entered routing.
    pub(crate) enqueued_at: Millis,
    pub(crate) call: CallId,
}

/// Serving order, comparable across queues: effective class (0 urgent or
/// aged, 1 routine), the time the caller entered that class, their own
/// class, then the call id for determinism.
pub(crate) type OrderKey = (u8, Millis, u8, CallId);

/// A position in the merged order: how many of each class were passed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LineCursor {
    taken: [usize; 2],
}

impl LineCursor {
    pub(crate) fn advance(&mut self, priority: Priority) {
        self.taken[priority.index()] += 1;
    }

    pub(crate) fn index(&self, priority: Priority) -> usize {
        self.taken[priority.index()]
    }
}

#[derive(Debug, Default)]
pub(crate) struct Line {
    classes: [VecDeque<Waiting>; 2],
}

impl Line {
    pub(crate) fn len(&self) -> usize {
        self.classes.iter().map(VecDeque::len).sum()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.classes.iter().all(VecDeque::is_empty)
    }

    pub(crate) fn count(&self, priority: Priority) -> usize {
        self.classes[priority.index()].len()
    }

    /// Puts a caller in their place (by enqueue time, then call id).
    pub(crate) fn insert(&mut self, priority: Priority, waiting: Waiting) {
        let class = &mut self.classes[priority.index()];
        let at = class
            .partition_point(|w| (w.enqueued_at, w.call) < (waiting.enqueued_at, waiting.call));
        class.insert(at, waiting);
    }

    /// Takes a caller out; false if they were not in this class.
    pub(crate) fn remove(&mut self, priority: Priority, call: CallId) -> bool {
        let class = &mut self.classes[priority.index()];
        match class.iter().position(|w| w.call == call) {
            Some(at) => class.remove(at).is_some(),
            None => false,
        }
    }

    /// Takes out the caller at a cursor's position in `priority`'s class.
    pub(crate) fn remove_at(&mut self, priority: Priority, cursor: LineCursor) -> Option<Waiting> {
        self.classes[priority.index()].remove(cursor.index(priority))
    }

    /// The earliest enqueue time of anyone waiting.
    pub(crate) fn oldest(&self) -> Option<Millis> {
        self.classes
            .iter()
            .filter_map(|class| class.front().map(|w| w.enqueued_at))
            .min()
    }

    /// How many in this line are served before `key` (an [`OrderKey`]
    /// from another line of the same queue). Each class is sorted by its
    /// keys (aged routine callers are a prefix), so this is two binary
    /// searches.
    pub(crate) fn count_before(
        &self,
        key: OrderKey,
        now: Millis,
        aging: Option<Duration>,
    ) -> usize {
        Priority::ALL
            .into_iter()
            .map(|priority| {
                self.classes[priority.index()]
                    .partition_point(|w| order_key(priority, *w, now, aging) < key)
            })
            .sum()
    }

    /// The next caller at `cursor` in serving order.
    pub(crate) fn peek(
        &self,
        cursor: LineCursor,
        now: Millis,
        aging: Option<Duration>,
    ) -> Option<(OrderKey, Waiting, Priority)> {
        Priority::ALL
            .into_iter()
            .filter_map(|priority| {
                let waiting = *self.classes[priority.index()].get(cursor.index(priority))?;
                Some((order_key(priority, waiting, now, aging), waiting, priority))
            })
            .min_by_key(|(key, _, _)| *key)
    }

    /// A caller's 1-based place in serving order.
    pub(crate) fn position(
        &self,
        call: CallId,
        now: Millis,
        aging: Option<Duration>,
    ) -> Option<usize> {
        let mut cursor = LineCursor::default();
        let mut place = 0;
        while let Some((_, waiting, priority)) = self.peek(cursor, now, aging) {
            place += 1;
            if waiting.call == call {
                return Some(place);
            }
            cursor.advance(priority);
        }
        None
    }
}

/// Where a caller of class `priority` stands at `now`.
pub(crate) fn order_key(
    priority: Priority,
    waiting: Waiting,
    now: Millis,
    aging: Option<Duration>,
) -> OrderKey {
    let own = priority.index() as u8;
    match priority {
        Priority::Urgent => (0, waiting.enqueued_at, own, waiting.call),
        Priority::Routine => {
            let promoted = aging.map(|age| waiting.enqueued_at.saturating_add(age));
            match promoted {
                Some(at) if at <= now => (0, at, own, waiting.call),
                _ => (1, waiting.enqueued_at, own, waiting.call),
            }
        }
    }
}

/// Added to a routine caller's enqueue time in a queue without aging, so
/// that they rank after every urgent caller: about 317 years of
/// milliseconds, and Unix milliseconds plus it stay below 2^53 (exact as
/// a Redis sorted set's double score).
pub const ROUTINE_BEHIND_MS: u64 = 10_000_000_000_000;

/// A waiting caller's place as one number, for a line shared between
/// nodes (a Redis sorted set, issue 24): lower is served first.
///
/// An urgent caller ranks by their enqueue time; a routine caller by the
/// moment they count as urgent (enqueue time plus the queue's `aging`),
/// or, without aging, after every urgent caller. Within one queue this
/// is the serving order (`order_key`) at every `now` a caller can be waiting
/// (enqueued at or before `now`): a routine caller not yet aged has
/// `enqueued_at + aging > now`, later than any urgent caller already
/// waiting, and once aged the serving order uses that same moment. So the
/// score never has to change while a caller waits (equal scores: the
/// tie-break differs, by member name in Redis).
pub fn shared_score(priority: Priority, enqueued_at: Millis, aging: Option<Duration>) -> u64 {
    let at = enqueued_at.as_millis();
    match priority {
        Priority::Urgent => at,
        Priority::Routine => match aging {
            Some(age) => at.saturating_add(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
            None => at.saturating_add(ROUTINE_BEHIND_MS),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(call: u64, at: u64) -> Waiting {
        Waiting {
            enqueued_at: Millis::new(at),
            call: CallId(call),
        }
    }

    fn order(line: &Line, now: u64, aging: Option<Duration>) -> Vec<u64> {
        let mut cursor = LineCursor::default();
        let mut calls = Vec::new();
        while let Some((_, w, priority)) = line.peek(cursor, Millis::new(now), aging) {
            calls.push(w.call.0);
            cursor.advance(priority);
        }
        calls
    }

    #[test]
    fn urgent_first_then_first_come_first_served() {
        let mut line = Line::default();
        line.insert(Priority::Routine, waiting(1, 0));
        line.insert(Priority::Urgent, waiting(2, 10));
        line.insert(Priority::Routine, waiting(3, 20));
        line.insert(Priority::Urgent, waiting(4, 30));
        assert_eq!(order(&line, 40, None), [2, 4, 1, 3]);
        assert_eq!(line.position(CallId(1), Millis::new(40), None), Some(3));
        assert_eq!(line.len(), 4);
        assert_eq!(line.count(Priority::Urgent), 2);
        assert_eq!(line.oldest(), Some(Millis::new(0)));
    }

    #[test]
    fn aged_routine_callers_go_before_later_urgent_ones() {
        let mut line = Line::default();
        line.insert(Priority::Routine, waiting(1, 0));
        line.insert(Priority::Urgent, waiting(2, 50));
        line.insert(Priority::Urgent, waiting(3, 150));
        line.insert(Priority::Routine, waiting(4, 60));
        let aging = Some(Duration::from_millis(100));
        // At 90 nobody has aged.
        assert_eq!(order(&line, 90, aging), [2, 3, 1, 4]);
        // At 200 call 1 counts as urgent since 100: after 2 (50), before 3 (150);
        // call 4 counts as urgent since 160: after 3.
        assert_eq!(order(&line, 200, aging), [2, 1, 3, 4]);
    }

    #[test]
    fn insertion_keeps_enqueue_order_and_removal_works() {
        let mut line = Line::default();
        line.insert(Priority::Routine, waiting(1, 100));
        line.insert(Priority::Routine, waiting(2, 50));
        line.insert(Priority::Routine, waiting(3, 75));
        assert_eq!(order(&line, 200, None), [2, 3, 1]);
        assert!(line.remove(Priority::Routine, CallId(3)));
        assert!(!line.remove(Priority::Urgent, CallId(1)));
        assert_eq!(order(&line, 200, None), [2, 1]);
        let mut cursor = LineCursor::default();
        cursor.advance(Priority::Routine);
        assert_eq!(
            line.remove_at(Priority::Routine, cursor),
            Some(waiting(1, 100))
        );
        assert!(!line.is_empty());
        assert_eq!(line.position(CallId(9), Millis::new(0), None), None);
    }

    #[test]
    fn count_before_matches_the_merged_order() {
        let mut line = Line::default();
        line.insert(Priority::Routine, waiting(1, 0));
        line.insert(Priority::Urgent, waiting(2, 50));
        line.insert(Priority::Urgent, waiting(3, 150));
        line.insert(Priority::Routine, waiting(4, 60));
        let aging = Some(Duration::from_millis(100));
        let now = Millis::new(200);
        // Order at 200: 2 (0,50), 1 (0,100), 3 (0,150), 4 (0,160).
        let key = |priority, call, at| order_key(priority, waiting(call, at), now, aging);
        assert_eq!(
            line.count_before(key(Priority::Urgent, 9, 120), now, aging),
            2
        );
        assert_eq!(
            line.count_before(key(Priority::Urgent, 9, 10), now, aging),
            0
        );
        assert_eq!(
            line.count_before(key(Priority::Routine, 9, 190), now, aging),
            4
        );
        // Without aging the routine ones come after every urgent caller.
        assert_eq!(
            line.count_before(key(Priority::Urgent, 9, 1_000), now, None),
            2
        );
    }

    proptest::proptest! {
        /// The shared score orders callers of one queue as `order_key`
        /// does, whenever both are waiting.
        #[test]
        fn shared_score_follows_the_serving_order(
            a in (0u64..2, 0u64..1_000_000, 0u64..1000),
            b in (0u64..2, 0u64..1_000_000, 0u64..1000),
            later in 0u64..2_000_000,
            aging in proptest::option::of(1u64..500_000),
        ) {
            let aging = aging.map(Duration::from_millis);
            let priority = |class| if class == 0 { Priority::Urgent } else { Priority::Routine };
            let (pa, pb) = (priority(a.0), priority(b.0));
            let (wa, wb) = (waiting(a.2, a.1), waiting(b.2 + 1000, b.1));
            let now = Millis::new(a.1.max(b.1) + later);
            let (ka, kb) = (order_key(pa, wa, now, aging), order_key(pb, wb, now, aging));
            let (sa, sb) = (
                shared_score(pa, wa.enqueued_at, aging),
                shared_score(pb, wb.enqueued_at, aging),
            );
            if sa < sb {
                proptest::prop_assert!(ka < kb, "{sa} < {sb} but {ka:?} >= {kb:?}");
            }
            if ka < kb {
                proptest::prop_assert!(sa <= sb, "{ka:?} < {kb:?} but {sa} > {sb}");
            }
        }
    }

    #[test]
    fn shared_scores_of_the_two_classes() {
        let at = Millis::new(1_765_000_000_000);
        assert_eq!(shared_score(Priority::Urgent, at, None), at.as_millis());
        assert_eq!(
            shared_score(Priority::Routine, at, Some(Duration::from_secs(60))),
            at.as_millis() + 60_000
        );
        let routine = shared_score(Priority::Routine, at, None);
        assert_eq!(routine, at.as_millis() + ROUTINE_BEHIND_MS);
        // Exact as a double.
        assert!(routine < 1 << 53);
    }
}
