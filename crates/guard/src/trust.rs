//! Which sources are trusted (DESIGN.md, "Trusted sources"): the one type
//! the SIP transport, the registrar, the call dispatcher and the HTTP
//! listener ask.
//!
//! Trusted are loopback (unless the dialplan says `loopback = false`; load
//! generators run there), the trunks' networks (the carrier) and the
//! clinic's own agent networks (staff phones and browsers, often many
//! behind one NAT address, which per-source limits would otherwise treat
//! as one noisy source). A network listed as untrusted is never trusted,
//! whatever else matches: flood tests send from `127.0.0.2` with trust
//! switched off for it.
//!
//! [`TrustedSources::is_trusted`] is the first question on every message,
//! so it is cheap: a loopback test and, per listed network, one AND and
//! one comparison (a few nanoseconds for a short list; `benches/check.rs`).

use std::net::IpAddr;

use crate::network::{IpNetwork, canonical};

/// Which source addresses skip the per-source limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedSources {
    loopback: bool,
    trunks: Vec<IpNetwork>,
    agents: Vec<IpNetwork>,
    untrusted: Vec<IpNetwork>,
    proxies: Vec<IpNetwork>,
}

impl Default for TrustedSources {
    /// Loopback trusted, no trunks, no agent networks, nothing excluded.
    fn default() -> Self {
        TrustedSources::new(true)
    }
}

impl TrustedSources {
    /// Loopback trusted or not, and nothing else yet.
    pub fn new(loopback: bool) -> Self {
        TrustedSources {
            loopback,
            trunks: Vec::new(),
            agents: Vec::new(),
            untrusted: Vec::new(),
            proxies: Vec::new(),
        }
    }

    /// Trusts nobody.
    pub fn none() -> Self {
        TrustedSources::new(false)
    }

    /// With these trunk networks trusted.
    pub fn with_trunks(mut self, trunks: Vec<IpNetwork>) -> Self {
        self.trunks = trunks;
        self
    }

    /// With these agent networks trusted.
    pub fn with_agents(mut self, agents: Vec<IpNetwork>) -> Self {
        self.agents = agents;
        self
    }

    /// With these networks never trusted.
    pub fn with_untrusted(mut self, untrusted: Vec<IpNetwork>) -> Self {
        self.untrusted = untrusted;
        self
    }

    /// With these proxies (Kamailio in front of the nodes): trusted, and
    /// believed when they say where a request came from
    /// ([`crate::ForwardedSource`]).
    pub fn with_proxies(mut self, proxies: Vec<IpNetwork>) -> Self {
        self.proxies = proxies;
        self
    }

    /// True when `ip` is trusted: not inside an untrusted network, and
    /// loopback (when loopback is trusted) or inside a trunk, agent or
    /// proxy network. A proxy is exempt from the per-source limits itself
    /// (else every caller behind it would share one bucket); the requests
    /// it forwards are judged by the source it names.
    #[inline]
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        if self.untrusted.iter().any(|net| net.contains(ip)) {
            return false;
        }
        (self.loopback && canonical(ip).is_loopback())
            || self.trunks.iter().any(|net| net.contains(ip))
            || self.agents.iter().any(|net| net.contains(ip))
            || self.proxies.iter().any(|net| net.contains(ip))
    }

    /// True when `ip` is one of `[trust] proxies` (and not untrusted):
    /// its `X-Frontdesk-Source` header is believed.
    #[inline]
    pub fn is_proxy(&self, ip: IpAddr) -> bool {
        !self.untrusted.iter().any(|net| net.contains(ip))
            && self.proxies.iter().any(|net| net.contains(ip))
    }

    /// The proxies.
    pub fn proxies(&self) -> &[IpNetwork] {
        &self.proxies
    }

    /// Whether loopback addresses are trusted.
    pub fn trusts_loopback(&self) -> bool {
        self.loopback
    }

    /// The trunk networks.
    pub fn trunks(&self) -> &[IpNetwork] {
        &self.trunks
    }

    /// The agent networks.
    pub fn agents(&self) -> &[IpNetwork] {
        &self.agents
    }

    /// The networks never trusted.
    pub fn untrusted(&self) -> &[IpNetwork] {
        &self.untrusted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNetwork> {
        list.iter().map(|text| text.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_wins_over_loopback_trunks_and_agents() {
        let trust = TrustedSources::default()
            .with_trunks(nets(&["203.0.113.0/24"]))
            .with_agents(nets(&["198.51.100.7", "2001:db8:5::/48"]))
            .with_untrusted(nets(&["127.0.0.2", "203.0.113.128/25"]));
        assert!(trust.is_trusted(ip("127.0.0.1")));
        assert!(trust.is_trusted(ip("::1")));
        assert!(trust.is_trusted(ip("::ffff:127.0.0.1")));
        assert!(!trust.is_trusted(ip("127.0.0.2")));
        assert!(!trust.is_trusted(ip("::ffff:127.0.0.2")));
        assert!(trust.is_trusted(ip("203.0.113.9")));
        assert!(!trust.is_trusted(ip("203.0.113.200")), "carved out");
        assert!(trust.is_trusted(ip("198.51.100.7")));
        assert!(!trust.is_trusted(ip("198.51.100.8")));
        assert!(trust.is_trusted(ip("2001:db8:5:9::1")));
        assert!(!trust.is_trusted(ip("192.0.2.1")));
        assert!(!TrustedSources::none().is_trusted(ip("127.0.0.1")));
    }

    #[test]
    fn a_proxy_is_trusted_and_believed_unless_untrusted() {
        let trust = TrustedSources::none()
            .with_proxies(nets(&["192.0.2.10", "198.51.100.0/24"]))
            .with_untrusted(nets(&["198.51.100.66"]));
        assert!(trust.is_proxy(ip("192.0.2.10")));
        assert!(trust.is_trusted(ip("192.0.2.10")));
        assert!(trust.is_proxy(ip("198.51.100.7")));
        assert!(!trust.is_proxy(ip("198.51.100.66")));
        assert!(!trust.is_trusted(ip("198.51.100.66")));
        assert!(!trust.is_proxy(ip("192.0.2.11")));
        // Loopback is trusted by default, but no proxy unless listed.
        assert!(!TrustedSources::default().is_proxy(ip("127.0.0.10")));
    }

    #[test]
    fn an_untrusted_range_covers_its_whole_range() {
        let trust = TrustedSources::default().with_untrusted(nets(&["127.0.0.40/29"]));
        for host in 40..48 {
            assert!(!trust.is_trusted(ip(&format!("127.0.0.{host}"))), "{host}");
        }
        assert!(trust.is_trusted(ip("127.0.0.39")));
        assert!(trust.is_trusted(ip("127.0.0.48")));
    }
}
