//! The location table: the bindings of each address-of-record (RFC 3261
//! §10.3), their expiry deadlines, and their plain-data form for the
//! daemon's persistence file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytestring::ByteString;

use crate::message::{NameAddr, Uri};
use crate::peer::{Peer, TransportKind};

/// One contact of an agent: where to ring it.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The Contact as the agent sent it (display name, URI and parameters
    /// such as `q` or `+sip.instance`), without its `expires` parameter.
    pub contact: NameAddr,
    /// Where the REGISTER came from. Requests to the agent go there (the
    /// flow it opened through its NAT), with `contact.uri` as Request-URI.
    /// After a [`Registrar::restore`](super::Registrar::restore) the
    /// connection of a stream peer is gone: `connection` is `None`.
    pub source: Peer,
    /// The REGISTER's Path (RFC 3327 §5.3): the proxies between the agent
    /// and us, first the one nearest to us. Requests to the agent carry it
    /// as a pre-loaded route set (§5.4, RFC 3261 §12.2.1.1 without a
    /// dialog): `Route` headers in this order, sent to the first of them,
    /// the Request-URI still [`Binding::uri`]. Empty without a proxy.
    pub path: Vec<NameAddr>,
    /// The phone's own address, when the REGISTER came through a trusted
    /// proxy that named it (`X-Frontdesk-Source`); `None` when it came
    /// straight from the phone (then [`Binding::source`] is the phone).
    pub client: Option<SocketAddr>,
    /// The Call-ID of the REGISTER that last set this binding.
    pub call_id: String,
    /// Its CSeq number.
    pub cseq: u32,
    /// The `q` value in thousandths (`q=0.5` is 500), when given.
    pub q: Option<u16>,
    /// When the binding expires (monotonic).
    pub expires_at: Instant,
    /// When it expires, in Unix seconds (wall clock, for persistence).
    pub expires_at_unix: u64,
    /// When it was last set or refreshed.
    pub updated_at: Instant,
}

impl Binding {
    /// The contact URI: the Request-URI of a request to this agent.
    pub fn uri(&self) -> &Uri {
        &self.contact.uri
    }

    /// Whole seconds left at `now`, rounded up (what `expires=` says).
    pub fn remaining_secs(&self, now: Instant) -> u64 {
        let left = self.expires_at.saturating_duration_since(now);
        left.as_secs() + u64::from(left.subsec_nanos() > 0)
    }
}

/// A binding as plain data, to write to disk and read back after a
/// restart ([`Registrar::export`](super::Registrar::export),
/// [`Registrar::restore`](super::Registrar::restore)).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredBinding {
    /// The agent (the AOR's user part).
    pub user: String,
    /// The Contact as printed (without `expires`), e.g.
    /// `<sip:1003@192.0.2.7:5062;transport=tcp>;q=0.5`.
    pub contact: String,
    /// The transport the REGISTER came over.
    pub transport: StoredTransport,
    /// The address it came from.
    pub source: SocketAddr,
    /// The REGISTER's Path values as printed, nearest proxy first
    /// ([`Binding::path`]); absent in files written before Path was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
    /// [`Binding::client`]; absent in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<SocketAddr>,
    /// Call-ID of the REGISTER that set it.
    pub call_id: String,
    /// CSeq number of that REGISTER.
    pub cseq: u32,
    /// When it expires, in Unix seconds.
    pub expires_at_unix: u64,
}

impl StoredBinding {
    /// `binding` of `user` as plain data (for the file, or for another
    /// node of a cluster); `None` when its time has run out at `now`.
    pub fn from_binding(user: &str, binding: &Binding, now: Instant, wall: u64) -> Option<Self> {
        let remaining = binding.remaining_secs(now);
        (remaining > 0).then(|| StoredBinding {
            user: user.to_string(),
            contact: binding.contact.to_string(),
            transport: binding.source.transport.into(),
            source: binding.source.address,
            path: binding.path.iter().map(ToString::to_string).collect(),
            client: binding.client,
            call_id: binding.call_id.clone(),
            cseq: binding.cseq,
            expires_at_unix: wall.saturating_add(remaining),
        })
    }

    /// The binding back, living what is left of it at `wall` (Unix
    /// seconds) but at most `max_secs`; `None` when its time has run out or
    /// its contact or `q` does not parse. The input may come from another
    /// machine: nothing here panics.
    pub fn to_binding(&self, now: Instant, wall: u64, max_secs: u64) -> Option<Binding> {
        let remaining = self.expires_at_unix.saturating_sub(wall).min(max_secs);
        if remaining == 0 {
            return None;
        }
        let contact = NameAddr::parse(&ByteString::from(self.contact.as_str())).ok()?;
        let q = match contact.params.get("q") {
            None => None,
            Some(value) => Some(parse_q(value)?),
        };
        let path = self
            .path
            .iter()
            .map(|text| NameAddr::parse(&ByteString::from(text.as_str())).ok())
            .collect::<Option<Vec<_>>>()?;
        Some(Binding {
            contact,
            source: Peer {
                transport: self.transport.into(),
                address: self.source,
                connection: None,
            },
            path,
            client: self.client,
            call_id: self.call_id.clone(),
            cseq: self.cseq,
            q,
            expires_at: now + Duration::from_secs(remaining),
            expires_at_unix: wall + remaining,
            updated_at: now,
        })
    }
}

/// [`TransportKind`] as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoredTransport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS.
    Tls,
}

impl From<TransportKind> for StoredTransport {
    fn from(kind: TransportKind) -> Self {
        match kind {
            TransportKind::Udp => StoredTransport::Udp,
            TransportKind::Tcp => StoredTransport::Tcp,
            TransportKind::Tls => StoredTransport::Tls,
        }
    }
}

impl From<StoredTransport> for TransportKind {
    fn from(kind: StoredTransport) -> Self {
        match kind {
            StoredTransport::Udp => TransportKind::Udp,
            StoredTransport::Tcp => TransportKind::Tcp,
            StoredTransport::Tls => TransportKind::Tls,
        }
    }
}

/// What [`Registrar::restore`](super::Registrar::restore) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreSummary {
    /// Bindings restored.
    pub restored: usize,
    /// Bindings whose time had run out.
    pub expired: usize,
    /// Bindings refused: unknown user, a contact that does not parse, or
    /// a contact the user already has a live binding for.
    pub refused: usize,
}

/// A contact a REGISTER asks for, already checked.
#[derive(Debug, Clone)]
pub(crate) struct Requested {
    pub(crate) key: String,
    pub(crate) contact: NameAddr,
    pub(crate) q: Option<u16>,
    /// Granted seconds; 0 removes the binding.
    pub(crate) expires: u32,
}

/// What a REGISTER does to the bindings of its AOR.
#[derive(Debug, Clone)]
pub(crate) enum Update {
    /// Add, refresh or remove these contacts.
    Contacts(Vec<Requested>),
    /// `Contact: *` with `Expires: 0`.
    RemoveAll,
}

/// The REGISTER behind an update.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin<'a> {
    pub(crate) call_id: &'a str,
    pub(crate) path: &'a [NameAddr],
    pub(crate) client: Option<SocketAddr>,
    pub(crate) cseq: u32,
    pub(crate) source: Peer,
    pub(crate) now: Instant,
    pub(crate) wall: u64,
}

/// What an update changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) before: usize,
    pub(crate) after: usize,
    pub(crate) added: bool,
    pub(crate) refreshed: bool,
    pub(crate) removed: bool,
}

impl Change {
    pub(crate) fn any(&self) -> bool {
        self.added || self.refreshed || self.removed
    }
}

/// Same Call-ID and a CSeq not above the stored one (§10.3 step 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutOfOrder;

#[derive(Debug, Clone)]
struct Entry {
    id: u64,
    key: String,
    /// Larger is newer; breaks ties between equal `q`.
    order: u64,
    binding: Binding,
}

/// Every AOR's bindings, and one deadline index over all of them.
#[derive(Debug, Default)]
pub(crate) struct Location {
    aors: HashMap<String, Vec<Entry>>,
    deadlines: BTreeMap<(Instant, u64), String>,
    next_id: u64,
    next_order: u64,
}

impl Location {
    /// Applies a REGISTER's update to `user`, all or nothing.
    pub(crate) fn apply(
        &mut self,
        user: &str,
        origin: Origin<'_>,
        update: Update,
        max_contacts: usize,
    ) -> Result<Change, OutOfOrder> {
        let current = self.aors.get(user).map(Vec::as_slice).unwrap_or_default();
        let out_of_order = |entry: &Entry| {
            entry.binding.call_id == origin.call_id && origin.cseq <= entry.binding.cseq
        };
        let touched: Vec<&Entry> = match &update {
            Update::RemoveAll => current.iter().collect(),
            Update::Contacts(list) => current
                .iter()
                .filter(|e| list.iter().any(|r| r.key == e.key))
                .collect(),
        };
        if touched.into_iter().any(out_of_order) {
            return Err(OutOfOrder);
        }
        let mut change = Change {
            before: current.len(),
            ..Change::default()
        };
        let mut entries = self.aors.remove(user).unwrap_or_default();
        match update {
            Update::RemoveAll => {
                change.removed = !entries.is_empty();
                for entry in entries.drain(..) {
                    self.deadlines.remove(&(entry.binding.expires_at, entry.id));
                }
            }
            Update::Contacts(list) => {
                // A contact named twice: the last one counts.
                let mut seen: HashSet<&str> = HashSet::with_capacity(list.len());
                for requested in list.iter().rev() {
                    if !seen.insert(&requested.key) {
                        continue;
                    }
                    self.set(&mut entries, user, requested, origin, &mut change);
                }
            }
        }
        while entries.len() > max_contacts.max(1) {
            let oldest = entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.order)
                .map(|(index, _)| index);
            let Some(index) = oldest else { break };
            let entry = entries.swap_remove(index);
            self.deadlines.remove(&(entry.binding.expires_at, entry.id));
            change.removed = true;
        }
        change.after = entries.len();
        if !entries.is_empty() {
            self.aors.insert(user.to_owned(), entries);
        }
        Ok(change)
    }

    fn set(
        &mut self,
        entries: &mut Vec<Entry>,
        user: &str,
        requested: &Requested,
        origin: Origin<'_>,
        change: &mut Change,
    ) {
        let existing = entries.iter().position(|e| e.key == requested.key);
        if requested.expires == 0 {
            if let Some(index) = existing {
                let entry = entries.remove(index);
                self.deadlines.remove(&(entry.binding.expires_at, entry.id));
                change.removed = true;
            }
            return;
        }
        let lifetime = Duration::from_secs(u64::from(requested.expires));
        let binding = Binding {
            contact: requested.contact.clone(),
            source: origin.source,
            path: origin.path.to_vec(),
            client: origin.client,
            call_id: origin.call_id.to_owned(),
            cseq: origin.cseq,
            q: requested.q,
            expires_at: origin.now + lifetime,
            expires_at_unix: origin.wall.saturating_add(u64::from(requested.expires)),
            updated_at: origin.now,
        };
        self.next_order += 1;
        match existing {
            Some(index) => {
                let entry = &mut entries[index];
                self.deadlines.remove(&(entry.binding.expires_at, entry.id));
                entry.binding = binding;
                entry.order = self.next_order;
                self.deadlines
                    .insert((entry.binding.expires_at, entry.id), user.to_owned());
                change.refreshed = true;
            }
            None => {
                self.next_id += 1;
                let entry = Entry {
                    id: self.next_id,
                    key: requested.key.clone(),
                    order: self.next_order,
                    binding,
                };
                self.deadlines
                    .insert((entry.binding.expires_at, entry.id), user.to_owned());
                entries.push(entry);
                change.added = true;
            }
        }
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.keys().next().map(|(at, _)| *at)
    }

    /// Removes every binding due at `now`; returns each user touched and
    /// whether it has bindings left, in order of expiry.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<(String, bool)> {
        let mut touched: Vec<(String, bool)> = Vec::new();
        while let Some(entry) = self.deadlines.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, id), user) = entry.remove_entry();
            let left = match self.aors.get_mut(&user) {
                Some(entries) => {
                    entries.retain(|e| e.id != id);
                    entries.len()
                }
                None => 0,
            };
            if left == 0 {
                self.aors.remove(&user);
            }
            match touched.iter_mut().find(|(u, _)| *u == user) {
                Some(seen) => seen.1 = left > 0,
                None => touched.push((user, left > 0)),
            }
        }
        touched
    }

    /// The bindings of `user`: best `q` first (no `q` counts as 1.0),
    /// then the most recently set first.
    pub(crate) fn bindings(&self, user: &str) -> Vec<Binding> {
        let Some(entries) = self.aors.get(user) else {
            return Vec::new();
        };
        let mut sorted: Vec<&Entry> = entries.iter().collect();
        sorted.sort_by_key(|e| {
            (
                std::cmp::Reverse(e.binding.q.unwrap_or(1000)),
                std::cmp::Reverse(e.order),
            )
        });
        sorted.into_iter().map(|e| e.binding.clone()).collect()
    }

    pub(crate) fn is_registered(&self, user: &str) -> bool {
        self.aors.contains_key(user)
    }

    /// Users with at least one binding, sorted.
    pub(crate) fn users(&self) -> Vec<String> {
        let mut users: Vec<String> = self.aors.keys().cloned().collect();
        users.sort();
        users
    }

    /// Drops every binding of `user`; `true` when it had some.
    pub(crate) fn remove_user(&mut self, user: &str) -> bool {
        let Some(entries) = self.aors.remove(user) else {
            return false;
        };
        for entry in entries {
            self.deadlines.remove(&(entry.binding.expires_at, entry.id));
        }
        true
    }

    /// Every live binding as plain data, users sorted, each user's
    /// bindings in [`Location::bindings`] order.
    pub(crate) fn export(&self, now: Instant, wall: u64) -> Vec<StoredBinding> {
        let mut stored = Vec::new();
        for user in self.users() {
            for binding in self.bindings(&user) {
                stored.extend(StoredBinding::from_binding(&user, &binding, now, wall));
            }
        }
        stored
    }

    /// Puts back one stored binding with its remaining lifetime (at most
    /// `max_expires`). `Ok(true)` when restored, `Ok(false)` when its time
    /// had run out, `Err(())` when refused.
    pub(crate) fn restore_one(
        &mut self,
        stored: StoredBinding,
        now: Instant,
        wall: u64,
        max_expires: u32,
    ) -> Result<bool, ()> {
        if stored.expires_at_unix <= wall {
            return Ok(false);
        }
        let binding = stored
            .to_binding(now, wall, u64::from(max_expires))
            .ok_or(())?;
        let key = contact_key(&binding.contact.uri);
        let entries = self.aors.entry(stored.user.clone()).or_default();
        if entries.iter().any(|e| e.key == key) {
            return Err(());
        }
        self.next_id += 1;
        self.next_order += 1;
        self.deadlines
            .insert((binding.expires_at, self.next_id), stored.user);
        entries.push(Entry {
            id: self.next_id,
            key,
            order: self.next_order,
            binding,
        });
        Ok(true)
    }
}

/// The identity of a contact URI, for matching a REGISTER's contacts to
/// stored bindings (RFC 3261 §10.3 step 6, §19.1.4): scheme, user
/// (unescaped, case-sensitive), host (case-insensitive), port, and every
/// URI parameter by lower-case name and value, in name order, and the
/// headers part. Stricter than §19.1.4 in one way: a parameter present in
/// only one of two URIs makes them different bindings.
pub(crate) fn contact_key(uri: &Uri) -> String {
    match uri {
        Uri::Sip(sip) => {
            let user = sip
                .user_unescaped()
                .map(|u| String::from_utf8_lossy(&u).into_owned())
                .unwrap_or_default();
            let mut params: Vec<String> = sip
                .params
                .iter()
                .map(|p| {
                    let name = crate::message::uri::unescape(&p.name);
                    let name = String::from_utf8_lossy(&name).to_ascii_lowercase();
                    match &p.value {
                        Some(value) => format!("{name}={}", value.to_ascii_lowercase()),
                        None => name,
                    }
                })
                .collect();
            params.sort();
            format!(
                "{}:{user}@{}:{};{}?{}",
                uri.scheme(),
                sip.host.to_string().to_ascii_lowercase(),
                sip.port.map(|p| p.to_string()).unwrap_or_default(),
                params.join(";"),
                sip.headers.as_deref().unwrap_or_default(),
            )
        }
        Uri::Other(other) => format!("{}:{}", other.scheme.to_ascii_lowercase(), other.rest),
    }
}

/// Parses a `qvalue` (RFC 3261 §25.1) into thousandths.
pub(crate) fn parse_q(value: Option<&str>) -> Option<u16> {
    let value = value?;
    let (whole, fraction) = match value.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (value, ""),
    };
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths = 0u16;
    for (index, digit) in fraction.bytes().enumerate() {
        let scale = [100, 10, 1][index];
        thousandths += u16::from(digit - b'0') * scale;
    }
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stored(contact: &str, expires_at_unix: u64) -> StoredBinding {
        StoredBinding {
            user: "1003".into(),
            contact: contact.into(),
            transport: StoredTransport::Udp,
            source: "127.0.0.9:5062".parse().unwrap(),
            path: Vec::new(),
            client: None,
            call_id: "c".into(),
            cseq: 7,
            expires_at_unix,
        }
    }

    #[test]
    fn a_stored_binding_comes_back_with_what_is_left_of_its_life() {
        let now = Instant::now();
        let binding = stored("<sip:1003@127.0.0.9:5062>;q=0.5", 1_000_060)
            .to_binding(now, 1_000_000, 3600)
            .unwrap();
        assert_eq!(binding.q, Some(500));
        assert_eq!(binding.remaining_secs(now), 60);
        assert_eq!(binding.expires_at_unix, 1_000_060);
        let again = StoredBinding::from_binding("1003", &binding, now, 1_000_000).unwrap();
        assert_eq!(again, stored("<sip:1003@127.0.0.9:5062>;q=0.5", 1_000_060));
        // Capped, expired, unreadable.
        let capped = stored("<sip:1003@h>", 1_000_060).to_binding(now, 1_000_000, 10);
        assert_eq!(capped.unwrap().remaining_secs(now), 10);
        assert!(
            stored("<sip:1003@h>", 999)
                .to_binding(now, 1_000, 10)
                .is_none()
        );
        assert!(
            stored("<sip:1003@h>;q=2", 2000)
                .to_binding(now, 1_000, 10)
                .is_none()
        );
        assert!(
            stored("not a contact", 2000)
                .to_binding(now, 1_000, 10)
                .is_none()
        );
    }

    proptest! {
        #[test]
        fn any_stored_contact_is_a_binding_or_none(contact in ".{0,200}", expires in any::<u64>()) {
            let _ = stored(&contact, expires).to_binding(Instant::now(), 1_000, 3600);
        }
    }

    fn uri(text: &str) -> Uri {
        Uri::parse(text).unwrap()
    }

    #[test]
    fn contact_identity() {
        let key = |text: &str| contact_key(&uri(text));
        assert_eq!(
            key("sip:1003@192.0.2.7:5062;transport=TCP"),
            key("sip:1003@192.0.2.7:5062;Transport=tcp")
        );
        assert_eq!(key("sip:1003@HOST.example"), key("sip:1003@host.example"));
        assert_eq!(key("sip:%31003@h"), key("sip:1003@h"));
        assert_ne!(key("sip:1003@h"), key("sip:1003@h:5060"));
        assert_ne!(key("sip:a@h"), key("sip:A@h"));
        assert_ne!(key("sip:a@h"), key("sips:a@h"));
        assert_ne!(key("sip:%00@h"), key("sip:%00%00@h"));
        assert_ne!(key("sip:a@h;ob"), key("sip:a@h"));
        assert_ne!(
            key("sip:user@example.com?Route=%3Csip:sip.example.com%3E"),
            key("sip:user@example.com")
        );
    }

    #[test]
    fn qvalues() {
        assert_eq!(parse_q(Some("0.5")), Some(500));
        assert_eq!(parse_q(Some("0.125")), Some(125));
        assert_eq!(parse_q(Some("1")), Some(1000));
        assert_eq!(parse_q(Some("1.000")), Some(1000));
        assert_eq!(parse_q(Some("0")), Some(0));
        assert_eq!(parse_q(Some("1.5")), None);
        assert_eq!(parse_q(Some("0.1234")), None);
        assert_eq!(parse_q(Some("high")), None);
        assert_eq!(parse_q(None), None);
    }
}
