//! Completed non-INVITE server transactions over UDP (RFC 3261 §17.2.2):
//! what Timer J keeps, and nothing more.
//!
//! Once its final response is sent, such a transaction only has to answer
//! retransmissions of its request with that response until Timer J
//! (64 × T1) fires. So it leaves the live transactions and is kept here as
//! its [`Fingerprint`] (16 bytes, instead of the branch, sent-by, Call-ID
//! and a copy of the request's headers), where the response goes (7 or 19
//! bytes) and the response written against a similar one ([`delta`]: about
//! 120 bytes for a 401, whose random To tag and nonce are most of it; less
//! for a 200).
//!
//! Timer J is the same duration for every entry, so entries expire in the
//! order they came: the deadlines are a queue, not a heap, and each
//! entry's bytes are appended to a queue of 64 KiB chunks whose front is
//! always the oldest entry's. An entry costs its bytes, 28 bytes of index and 24 of
//! deadline; nothing is allocated per entry. At 10,000 REGISTERs a second
//! 640,000 entries are alive at once (BENCHMARKS.md, "Registrar memory").

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::Fingerprint;
use super::delta::{self, Template};

/// A delta no larger than `1 / GOOD_ENOUGH` of the response keeps its
/// template; a larger one makes the response the new template for its
/// status code.
const GOOD_ENOUGH: usize = 2;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct CompletedRequests {
    index: HashMap<Fingerprint, Slot, BuildHasherDefault<FingerprintHasher>>,
    /// Oldest first.
    expiry: VecDeque<Expiry>,
    /// Every entry's destination and delta, oldest first.
    bytes: ByteQueue,
    /// The origin of `Expiry::at_ms`.
    epoch: Option<Instant>,
    templates: Templates,
}

/// Where an entry's bytes are, and its template.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The low 32 bits of the entry's [`ByteQueue`] offset (the bytes kept
    /// at once are far fewer than 4 GiB, so the low bits are enough).
    offset: u32,
    len: u32,
    template: u32,
}

#[derive(Debug)]
struct Expiry {
    /// Milliseconds after `epoch`, rounded up.
    at_ms: u64,
    fingerprint: Fingerprint,
}

impl CompletedRequests {
    /// Keeps `response` (status `status`, sent to `destination`) for the
    /// request named `fingerprint` until `deadline`, which must not be
    /// before the deadline of the entry inserted before (Timer J after a
    /// `now` that does not go back). A fingerprint already kept is left as
    /// it is (the layer looks here before it creates a transaction).
    pub(crate) fn insert(
        &mut self,
        deadline: Instant,
        fingerprint: Fingerprint,
        destination: SocketAddr,
        status: u16,
        response: &[u8],
    ) {
        if self.index.contains_key(&fingerprint) {
            return;
        }
        let mut data = Vec::with_capacity(160);
        put_address(&mut data, destination);
        let start = data.len();
        let template = self.templates.latest(status).filter(|&id| {
            let Some(template) = self.templates.get(id) else {
                return false;
            };
            delta::encode(template, response, &mut data);
            (data.len() - start) * GOOD_ENOUGH <= response.len()
        });
        let template = match template {
            Some(id) => id,
            None => {
                data.truncate(start);
                let template = Template::new(response);
                delta::encode(&template, response, &mut data);
                self.templates.add(status, template)
            }
        };
        self.templates.take(template);
        let epoch = *self.epoch.get_or_insert(deadline);
        let at_ms = deadline
            .saturating_duration_since(epoch)
            .as_micros()
            .div_ceil(1_000);
        self.expiry.push_back(Expiry {
            at_ms: u64::try_from(at_ms).unwrap_or(u64::MAX),
            fingerprint,
        });
        let offset = self.bytes.push(&data);
        self.index.insert(
            fingerprint,
            Slot {
                offset,
                len: u32::try_from(data.len()).unwrap_or(u32::MAX),
                template,
            },
        );
    }

    /// Where the response to `fingerprint` goes, and its bytes, if kept.
    pub(crate) fn get(&self, fingerprint: &Fingerprint) -> Option<(SocketAddr, Bytes)> {
        let slot = self.index.get(fingerprint)?;
        let data = self.bytes.get(slot.offset, slot.len)?;
        let (destination, encoded) = take_address(data)?;
        let response = delta::decode(self.templates.get(slot.template)?, encoded)?;
        Some((destination, Bytes::from(response)))
    }

    /// When the oldest entry expires.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let first = self.expiry.front()?;
        Some(self.epoch? + Duration::from_millis(first.at_ms))
    }

    /// Forgets every entry whose deadline is `now` or earlier.
    pub(crate) fn expire(&mut self, now: Instant) {
        while self.next_deadline().is_some_and(|at| at <= now) {
            let Some(first) = self.expiry.pop_front() else {
                break;
            };
            if let Some(slot) = self.index.remove(&first.fingerprint) {
                // The oldest entry's bytes are the first ones.
                self.bytes.pop_through(slot.offset, slot.len);
                self.templates.release(slot.template);
            }
        }
        if self.expiry.is_empty() {
            // Give the memory of a burst back.
            self.expiry.shrink_to(64);
            self.index.shrink_to(64);
        }
    }

    /// How many entries are kept.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// The bytes kept for the entries (destinations and deltas).
    #[cfg(test)]
    pub(crate) fn retained_bytes(&self) -> usize {
        self.bytes.live()
    }

    /// How many templates are alive.
    #[cfg(test)]
    pub(crate) fn templates_alive(&self) -> usize {
        self.templates
            .slots
            .iter()
            .filter(|s| s.template.is_some())
            .count()
    }
}

/// Bytes appended at the back and let go at the front, in chunks of
/// [`ByteQueue::CHUNK`]: a ring buffer would grow to a power of two and,
/// as its head goes round, keep all of it resident; chunks hold what is
/// live, rounded up to one chunk, and go back to the allocator as soon as
/// their last entry expires. An entry never spans two chunks.
#[derive(Debug, Default)]
struct ByteQueue {
    /// Oldest first, each with the offset of its first byte (offsets count
    /// every byte ever appended, from 0).
    chunks: VecDeque<(u64, Vec<u8>)>,
    /// The offset of the first live byte.
    front: u64,
    /// The offset the next byte gets.
    end: u64,
}

impl ByteQueue {
    const CHUNK: usize = 64 * 1024;

    /// Appends `data`; returns the low 32 bits of its offset.
    fn push(&mut self, data: &[u8]) -> u32 {
        let fits = self
            .chunks
            .back()
            .is_some_and(|(_, chunk)| chunk.len() + data.len() <= chunk.capacity());
        if !fits {
            self.chunks
                .push_back((self.end, Vec::with_capacity(Self::CHUNK.max(data.len()))));
        }
        let offset = self.end;
        if let Some((_, chunk)) = self.chunks.back_mut() {
            chunk.extend_from_slice(data);
        }
        self.end += data.len() as u64;
        offset as u32
    }

    /// The full offset whose low 32 bits are `low`, among the live bytes.
    fn offset(&self, low: u32) -> u64 {
        self.front + u64::from(low.wrapping_sub(self.front as u32))
    }

    fn get(&self, low: u32, len: u32) -> Option<&[u8]> {
        let offset = self.offset(low);
        let index = self
            .chunks
            .partition_point(|(start, _)| *start <= offset)
            .checked_sub(1)?;
        let (start, chunk) = self.chunks.get(index)?;
        let at = usize::try_from(offset - start).ok()?;
        chunk.get(at..at.checked_add(len as usize)?)
    }

    /// Lets go of everything up to the end of the entry at `low`, `len`
    /// (the oldest one), and of the chunks that leaves empty.
    fn pop_through(&mut self, low: u32, len: u32) {
        self.front = self.offset(low) + u64::from(len);
        while self.chunks.len() > 1
            && self
                .chunks
                .get(1)
                .is_some_and(|(next_start, _)| *next_start <= self.front)
        {
            self.chunks.pop_front();
        }
        if self.front >= self.end {
            self.chunks.clear();
        }
    }

    /// The bytes appended and not yet let go.
    #[cfg(test)]
    fn live(&self) -> usize {
        (self.end - self.front) as usize
    }
}

/// The templates in use, each counted by its entries; the latest of each
/// status code is kept even when unused, for the next response.
#[derive(Debug, Default)]
struct Templates {
    slots: Vec<TemplateSlot>,
    free: Vec<u32>,
    latest: HashMap<u16, u32>,
}

#[derive(Debug)]
struct TemplateSlot {
    template: Option<Template>,
    users: u64,
    status: u16,
}

impl Templates {
    fn latest(&self, status: u16) -> Option<u32> {
        self.latest.get(&status).copied()
    }

    fn get(&self, id: u32) -> Option<&Template> {
        self.slots.get(id as usize)?.template.as_ref()
    }

    fn add(&mut self, status: u16, template: Template) -> u32 {
        let slot = TemplateSlot {
            template: Some(template),
            users: 0,
            status,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        if let Some(previous) = self.latest.insert(status, id) {
            self.free_if_unused(previous);
        }
        id
    }

    fn take(&mut self, id: u32) {
        if let Some(slot) = self.slots.get_mut(id as usize) {
            slot.users += 1;
        }
    }

    fn release(&mut self, id: u32) {
        if let Some(slot) = self.slots.get_mut(id as usize) {
            slot.users = slot.users.saturating_sub(1);
        }
        self.free_if_unused(id);
    }

    fn free_if_unused(&mut self, id: u32) {
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        if slot.users == 0 && slot.template.is_some() && self.latest.get(&slot.status) != Some(&id)
        {
            slot.template = None;
            self.free.push(id);
        }
    }
}

fn put_address(out: &mut Vec<u8>, address: SocketAddr) {
    match address.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&address.port().to_be_bytes());
}

fn take_address(data: &[u8]) -> Option<(SocketAddr, &[u8])> {
    let (&family, rest) = data.split_first()?;
    let (ip, rest) = match family {
        4 => {
            let (octets, rest) = rest.split_first_chunk::<4>()?;
            (IpAddr::V4(Ipv4Addr::from(*octets)), rest)
        }
        6 => {
            let (octets, rest) = rest.split_first_chunk::<16>()?;
            (IpAddr::V6(Ipv6Addr::from(*octets)), rest)
        }
        _ => return None,
    };
    let (port, rest) = rest.split_first_chunk::<2>()?;
    Some((SocketAddr::new(ip, u16::from_be_bytes(*port)), rest))
}

/// Fingerprints are keyed hashes already: the maps use them as they are.
#[derive(Debug, Default)]
pub(crate) struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(n: u32) -> Fingerprint {
        Fingerprint([n.wrapping_mul(0x9E37_79B9), n, !n, 7])
    }

    fn response(tag: &str) -> Vec<u8> {
        format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK{tag}\r\n\
             To: <sip:1001@127.0.0.1>;tag={tag}\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn kept_until_the_deadline_then_forgotten_with_its_template() {
        let start = crate::epoch();
        let timer_j = Duration::from_secs(32);
        let v4: SocketAddr = "127.0.0.1:5061".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:5070".parse().unwrap();
        let mut completed = CompletedRequests::default();
        completed.insert(start + timer_j, fingerprint(1), v4, 200, &response("a1"));
        let later = start + Duration::from_secs(1);
        completed.insert(later + timer_j, fingerprint(2), v6, 200, &response("b22"));
        assert_eq!(completed.len(), 2);
        assert_eq!(completed.templates_alive(), 1, "the second is a delta");
        assert_eq!(
            completed.get(&fingerprint(2)),
            Some((v6, Bytes::from(response("b22"))))
        );
        assert_eq!(completed.get(&fingerprint(3)), None);
        assert_eq!(completed.next_deadline(), Some(start + timer_j));

        completed.expire(start + timer_j - Duration::from_millis(1));
        assert_eq!(completed.len(), 2, "not before Timer J");
        completed.expire(start + timer_j);
        assert_eq!(completed.get(&fingerprint(1)), None);
        assert_eq!(
            completed.get(&fingerprint(2)),
            Some((v6, Bytes::from(response("b22"))))
        );
        assert_eq!(completed.next_deadline(), Some(later + timer_j));
        completed.expire(later + timer_j);
        assert_eq!(completed.len(), 0);
        assert_eq!(completed.retained_bytes(), 0);
        assert_eq!(completed.next_deadline(), None);
        assert_eq!(completed.templates_alive(), 1, "the latest template stays");
    }

    #[test]
    fn a_response_unlike_the_template_becomes_the_next_template() {
        let now = crate::epoch();
        let to: SocketAddr = "127.0.0.1:5061".parse().unwrap();
        let mut completed = CompletedRequests::default();
        let other = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        let third = b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\n";
        completed.insert(now, fingerprint(1), to, 200, &response("x"));
        completed.insert(now, fingerprint(2), to, 200, other);
        completed.insert(now, fingerprint(3), to, 200, third);
        completed.insert(now, fingerprint(4), to, 401, &response("y"));
        assert_eq!(completed.templates_alive(), 3);
        assert_eq!(completed.get(&fingerprint(1)).unwrap().1, response("x"));
        assert_eq!(completed.get(&fingerprint(2)).unwrap().1, &other[..]);
        assert_eq!(completed.get(&fingerprint(3)).unwrap().1, &third[..]);
        assert_eq!(completed.get(&fingerprint(4)).unwrap().1, response("y"));
        completed.expire(now);
        assert_eq!(completed.templates_alive(), 2, "the latest per status");
    }

    #[test]
    fn the_byte_queue_frees_its_chunks_as_the_front_moves() {
        let mut queue = ByteQueue::default();
        let entries: Vec<(u32, Vec<u8>)> = (0..3_000u32)
            .map(|n| {
                let data = vec![(n % 251) as u8; 40 + (n as usize % 90)];
                (queue.push(&data), data)
            })
            .collect();
        assert!(queue.chunks.len() >= 3, "{} chunks", queue.chunks.len());
        for (offset, data) in &entries {
            assert_eq!(queue.get(*offset, data.len() as u32), Some(&data[..]));
        }
        let before = queue.chunks.len();
        for (offset, data) in &entries[..1_500] {
            queue.pop_through(*offset, data.len() as u32);
        }
        assert!(queue.chunks.len() < before, "the emptied chunks went");
        for (offset, data) in &entries[1_500..] {
            assert_eq!(queue.get(*offset, data.len() as u32), Some(&data[..]));
        }
        let big = vec![1u8; ByteQueue::CHUNK * 2];
        let offset = queue.push(&big);
        assert_eq!(queue.get(offset, big.len() as u32), Some(&big[..]));
        for (offset, data) in &entries[1_500..] {
            queue.pop_through(*offset, data.len() as u32);
        }
        queue.pop_through(offset, big.len() as u32);
        assert_eq!((queue.live(), queue.chunks.len()), (0, 0));
    }
}
