//! Things a source holds at once (connections, calls), counted per
//! source, each released when its [`SourceSlot`] is dropped.
//!
//! One [`SourceSlots`] table per kind of thing: the SIP transport counts
//! connections (TCP and TLS together, from the moment they are accepted,
//! so TLS handshakes count), the HTTP listener counts its connections, the
//! call dispatcher counts calls. The table holds only sources that hold
//! something, so its size is bounded by what the caps allow.
//!
//! It is shared by the tasks that accept and the tasks that end
//! connections, so it sits behind a plain mutex, held for one map update
//! and never across an `.await` (this crate has none).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::source::SourceKey;

/// Per-source counts of held slots. Cheap to clone; clones share counts.
#[derive(Debug, Clone, Default)]
pub struct SourceSlots {
    held: Arc<Mutex<HashMap<SourceKey, u32>>>,
}

/// One held slot; dropping it gives it back.
#[derive(Debug)]
pub struct SourceSlot {
    table: SourceSlots,
    key: SourceKey,
}

impl SourceSlots {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// A slot for `ip`, unless it already holds `max`.
    pub fn try_take(&self, ip: IpAddr, max: u32) -> Option<SourceSlot> {
        let key = SourceKey::from(ip);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(key).or_insert(0);
        if *count >= max {
            if *count == 0 {
                held.remove(&key);
            }
            return None;
        }
        *count += 1;
        Some(SourceSlot {
            table: self.clone(),
            key,
        })
    }

    /// How many slots `ip`'s source holds.
    pub fn held(&self, ip: IpAddr) -> u32 {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(&SourceKey::from(ip)).copied().unwrap_or(0)
    }

    /// How many sources hold at least one slot.
    pub fn sources(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl SourceSlot {
    /// The source holding it.
    pub fn source(&self) -> SourceKey {
        self.key
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut held = self
            .table
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_source_holds_at_most_max_and_others_are_unaffected() {
        let slots = SourceSlots::new();
        let hog = ip("192.0.2.1");
        let held: Vec<SourceSlot> = (0..3).filter_map(|_| slots.try_take(hog, 3)).collect();
        assert_eq!(held.len(), 3);
        assert!(slots.try_take(hog, 3).is_none());
        assert!(slots.try_take(ip("192.0.2.2"), 3).is_some());
        assert_eq!(slots.held(hog), 3);
        drop(held);
        assert_eq!(slots.held(hog), 0);
        assert_eq!(slots.sources(), 0, "nothing held, nothing kept");
        assert!(slots.try_take(hog, 0).is_none(), "max 0 refuses all");
        assert_eq!(slots.sources(), 0);
    }

    #[test]
    fn ipv6_sources_share_their_64() {
        let slots = SourceSlots::new();
        let _a = slots.try_take(ip("2001:db8::1"), 2).unwrap();
        let _b = slots.try_take(ip("2001:db8::2"), 2).unwrap();
        assert!(slots.try_take(ip("2001:db8::3"), 2).is_none());
        assert!(slots.try_take(ip("2001:db8:0:1::3"), 2).is_some());
    }
}
