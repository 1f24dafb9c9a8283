//! Trusted sources (DESIGN.md "Trusted sources").
//!
//! The SIP front end applies per-source rate limits and auth-failure limits
//! to untrusted addresses only. Loopback is trusted unless the dialplan says
//! `loopback = false`; the dialplan's trunk addresses are trusted; an
//! address listed under `untrusted` is never trusted, whatever else matches
//! (flood tests send from `127.0.0.2` with trust switched off for it).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address or a CIDR network (`203.0.113.7`, `198.51.100.0/24`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    address: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// The network's address (the host itself for a single address).
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// The prefix length (32 or 128 for a single address).
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True when `ip` is inside this network. IPv4-mapped IPv6 addresses
    /// are compared as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl FromStr for IpNetwork {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or CIDR network"))?;
        let address = canonical(address);
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => match prefix.parse::<u8>() {
                Ok(prefix) if prefix <= max => prefix,
                _ => return Err(format!("`{text}`: the prefix length must be 0 to {max}")),
            },
        };
        Ok(Self { address, prefix })
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// Which source addresses skip rate and auth-failure limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedSources {
    loopback: bool,
    trunks: Vec<IpNetwork>,
    untrusted: Vec<IpNetwork>,
}

impl Default for TrustedSources {
    /// Loopback trusted, no trunks, nothing excluded.
    fn default() -> Self {
        Self {
            loopback: true,
            trunks: Vec::new(),
            untrusted: Vec::new(),
        }
    }
}

impl TrustedSources {
    pub(crate) fn new(loopback: bool, trunks: Vec<IpNetwork>, untrusted: Vec<IpNetwork>) -> Self {
        Self {
            loopback,
            trunks,
            untrusted,
        }
    }

    /// True when `ip` is trusted: not listed as untrusted, and loopback (when
    /// loopback is trusted) or inside a trunk network.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        if self.untrusted.iter().any(|net| net.contains(ip)) {
            return false;
        }
        (self.loopback && canonical(ip).is_loopback())
            || self.trunks.iter().any(|net| net.contains(ip))
    }

    /// Whether loopback addresses are trusted.
    pub fn trusts_loopback(&self) -> bool {
        self.loopback
    }

    /// The trunk networks.
    pub fn trunks(&self) -> &[IpNetwork] {
        &self.trunks
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

    #[test]
    fn networks_parse_and_match() {
        let net: IpNetwork = "198.51.100.0/24".parse().unwrap();
        assert!(net.contains(ip("198.51.100.77")));
        assert!(!net.contains(ip("198.51.101.1")));
        assert!(net.contains(ip("::ffff:198.51.100.1")));
        let host: IpNetwork = "2001:db8::1".parse().unwrap();
        assert!(host.contains(ip("2001:db8::1")));
        assert!(!host.contains(ip("2001:db8::2")));
        let all: IpNetwork = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        assert!("10.0.0.0/33".parse::<IpNetwork>().is_err());
        assert!("trunk".parse::<IpNetwork>().is_err());
    }

    #[test]
    fn untrusted_wins_over_loopback_and_trunks() {
        let trust = TrustedSources::new(
            true,
            vec!["203.0.113.0/24".parse().unwrap()],
            vec!["127.0.0.2".parse().unwrap()],
        );
        assert!(trust.is_trusted(ip("127.0.0.1")));
        assert!(trust.is_trusted(ip("::1")));
        assert!(!trust.is_trusted(ip("127.0.0.2")));
        assert!(trust.is_trusted(ip("203.0.113.9")));
        assert!(!trust.is_trusted(ip("192.0.2.1")));
        let no_loopback = TrustedSources::new(false, Vec::new(), Vec::new());
        assert!(!no_loopback.is_trusted(ip("127.0.0.1")));
    }
}
