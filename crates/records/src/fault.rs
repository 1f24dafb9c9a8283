//! The fault-injection seam: make the journal's disk fail, slow down or
//! stall on demand, without root and without touching the file system, so
//! that tests (and the daemon's own end-to-end tests, through a switch of
//! its choosing) can check that calls go on and that losses are counted.
//!
//! The writer consults the plan around each batch: it waits while the plan
//! [`hold`](FaultPlan::hold)s, sleeps the [`delay`](FaultPlan::delay_writes)
//! (a slow disk), writes the batch's rows in a transaction, then, if a
//! failure is due, rolls the transaction back and reports an I/O error in
//! place of the commit (a failing disk). Nothing of a failed batch reaches
//! the file. With no fault set, the cost is two atomic loads per batch.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Faults for the writer to suffer. Shared: get it from
/// [`JournalHandle::faults`](crate::JournalHandle::faults).
#[derive(Debug, Default)]
pub struct FaultPlan {
    /// Batches still to fail.
    fail_next: AtomicU64,
    /// Fail every batch until cleared.
    failing: AtomicBool,
    /// Milliseconds to sleep before each batch.
    delay_ms: AtomicU64,
    /// Whether the writer must wait before its next batch.
    held: Mutex<bool>,
    released: Condvar,
}

impl FaultPlan {
    /// Fails the next `batches` batches (added to any already due).
    pub fn fail_next(&self, batches: u64) {
        self.fail_next.fetch_add(batches, Ordering::SeqCst);
    }

    /// Fails every batch while `failing` is true (a disk that stays broken).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Sleeps `delay` before writing each batch (a slow disk); zero clears.
    pub fn delay_writes(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(millis, Ordering::SeqCst);
    }

    /// Stops the writer before its next batch until [`release`]
    /// (a stalled disk). Entries queue up meanwhile, then are dropped once
    /// the channel is full.
    ///
    /// [`release`]: FaultPlan::release
    pub fn hold(&self) {
        *self.held.lock().unwrap_or_else(PoisonError::into_inner) = true;
    }

    /// Lets a held writer go on.
    pub fn release(&self) {
        *self.held.lock().unwrap_or_else(PoisonError::into_inner) = false;
        self.released.notify_all();
    }

    /// Clears every fault.
    pub fn clear(&self) {
        self.fail_next.store(0, Ordering::SeqCst);
        self.set_failing(false);
        self.delay_writes(Duration::ZERO);
        self.release();
    }

    /// The writer, before a batch: waits while held, then sleeps the delay.
    pub(crate) fn before_batch(&self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        while *held {
            held = self
                .released
                .wait(held)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(held);
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
    }

    /// The writer, in place of a commit: the failure due, if any.
    pub(crate) fn take_failure(&self) -> Option<rusqlite::Error> {
        let due = self.failing.load(Ordering::SeqCst)
            || self
                .fail_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        due.then(|| {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
                Some("injected write failure (fault plan)".to_string()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_next_counts_down_and_failing_stays() {
        let plan = FaultPlan::default();
        assert!(plan.take_failure().is_none());
        plan.fail_next(2);
        assert!(plan.take_failure().is_some());
        assert!(plan.take_failure().is_some());
        assert!(plan.take_failure().is_none());
        plan.set_failing(true);
        for _ in 0..3 {
            let error = plan.take_failure().unwrap();
            assert!(error.to_string().contains("injected"), "{error}");
        }
        plan.clear();
        assert!(plan.take_failure().is_none());
    }
}
