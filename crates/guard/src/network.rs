//! IP networks in CIDR notation (RFC 4632 §3.1 for IPv4, RFC 4291 §2.3
//! for IPv6): `203.0.113.7`, `198.51.100.0/24`, `2001:db8::/32`.
//!
//! A network is kept as its masked address and mask, both as `u128`, so
//! that [`IpNetwork::contains`] is one AND and one comparison. An address
//! with host bits set (`192.0.2.77/24`) names the network it is in
//! (`192.0.2.0/24`); an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is
//! the IPv4 address, written or matched. IPv4 networks never contain IPv6
//! addresses and the other way round: `::/0` is every IPv6 address, not
//! every address.
//!
//! Parsing is strict, because the lists come from a file an operator
//! edits and a typo must be an error, never a network that covers less
//! (or more) than meant: no spaces, a prefix length of decimal digits only
//! (no sign), at most 32 for IPv4 and 128 for IPv6, no zone index.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address or a CIDR network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    /// The network's address, host bits cleared, as `u128` (IPv4 in the
    /// low 32 bits).
    network: u128,
    mask: u128,
    prefix: u8,
    v4: bool,
}

/// Why a network could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkError {
    text: String,
    reason: &'static str,
}

impl fmt::Display for NetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.text, self.reason)
    }
}

impl std::error::Error for NetworkError {}

/// The address as IPv4 when it is IPv4 or IPv4-mapped IPv6.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn mask(prefix: u8, width: u8) -> u128 {
    let all = if width == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    // `checked_shl` is `None` for a shift by the whole width (prefix 0).
    let host_bits = u32::from(width - prefix);
    all.checked_shl(host_bits)
        .map_or(0, |shifted| shifted & all)
}

impl IpNetwork {
    /// The network of `address` with `prefix` bits (the host itself with
    /// 32 or 128). `None` when the prefix is longer than the address.
    pub fn new(address: IpAddr, prefix: u8) -> Option<Self> {
        let (bits, width, v4) = match canonical(address) {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32, true),
            IpAddr::V6(v6) => (u128::from(v6), 128, false),
        };
        if prefix > width {
            return None;
        }
        let mask = mask(prefix, width);
        Some(IpNetwork {
            network: bits & mask,
            mask,
            prefix,
            v4,
        })
    }

    /// The single address `ip`.
    pub fn host(ip: IpAddr) -> Self {
        let prefix = if canonical(ip).is_ipv4() { 32 } else { 128 };
        // A host prefix always fits its own address.
        Self::new(ip, prefix).unwrap_or(IpNetwork {
            network: 0,
            mask: u128::MAX,
            prefix,
            v4: false,
        })
    }

    /// The network's address (host bits cleared).
    pub fn address(&self) -> IpAddr {
        if self.v4 {
            // The low 32 bits hold it.
            IpAddr::V4(Ipv4Addr::from(self.network as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.network))
        }
    }

    /// The prefix length (32 or 128 for a single address).
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True when `ip` is inside this network (IPv4-mapped IPv6 addresses
    /// compared as IPv4).
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(v4) => self.v4 && u128::from(u32::from(v4)) & self.mask == self.network,
            IpAddr::V6(v6) => !self.v4 && u128::from(v6) & self.mask == self.network,
        }
    }

    /// How many addresses the network covers, saturated at `u128::MAX`.
    pub fn size(&self) -> u128 {
        let width = if self.v4 { 32 } else { 128 };
        1u128
            .checked_shl(u32::from(width - self.prefix))
            .unwrap_or(u128::MAX)
    }
}

impl FromStr for IpNetwork {
    type Err = NetworkError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason| NetworkError {
            text: text.to_string(),
            reason,
        };
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| {
            error("is not an IP address or CIDR network (e.g. 192.0.2.0/24, 2001:db8::/32)")
        })?;
        let width = if canonical(address).is_ipv4() {
            32
        } else {
            128
        };
        let prefix = match prefix {
            None => width,
            Some(digits) => {
                if digits.is_empty()
                    || digits.len() > 3
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(error("has a prefix length that is not a number"));
                }
                match digits.parse::<u8>() {
                    Ok(prefix) if prefix <= width => prefix,
                    _ if width == 32 => return Err(error("has a prefix length over 32 (IPv4)")),
                    _ => return Err(error("has a prefix length over 128 (IPv6)")),
                }
            }
        };
        Self::new(address, prefix).ok_or_else(|| error("has a prefix longer than its address"))
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address(), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn net(text: &str) -> IpNetwork {
        text.parse().unwrap()
    }

    #[test]
    fn a_range_covers_every_address_in_it_and_none_outside() {
        let range = net("127.0.0.40/29");
        for host in 40..48 {
            assert!(range.contains(ip(&format!("127.0.0.{host}"))), "{host}");
        }
        assert!(!range.contains(ip("127.0.0.39")));
        assert!(!range.contains(ip("127.0.0.48")));
        assert_eq!(range.size(), 8);
        assert!(range.contains(ip("::ffff:127.0.0.41")), "mapped as IPv4");
        let v6 = net("2001:db8:1::/48");
        assert!(v6.contains(ip("2001:db8:1:ffff::1")));
        assert!(!v6.contains(ip("2001:db8:2::1")));
    }

    #[test]
    fn host_bits_name_their_network_and_families_stay_apart() {
        assert_eq!(net("192.0.2.77/24"), net("192.0.2.0/24"));
        assert_eq!(net("192.0.2.77/24").to_string(), "192.0.2.0/24");
        assert_eq!(net("::ffff:192.0.2.1"), net("192.0.2.1/32"));
        assert!(net("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(!net("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(net("::/0").contains(ip("2001:db8::1")));
        assert!(!net("::/0").contains(ip("192.0.2.1")));
        assert_eq!(net("::/0").size(), u128::MAX);
        assert_eq!(IpNetwork::host(ip("192.0.2.1")), net("192.0.2.1"));
    }

    #[test]
    fn malformed_entries_are_refused_with_a_reason() {
        for (text, reason) in [
            ("", "is not an IP address"),
            ("trunk", "is not an IP address"),
            (" 10.0.0.0/8", "is not an IP address"),
            ("10.0.0.0/8 ", "not a number"),
            ("10.0.0.0/", "not a number"),
            ("10.0.0.0/+8", "not a number"),
            ("10.0.0.0/0x8", "not a number"),
            ("10.0.0.0/33", "over 32"),
            ("10.0.0.0/0008", "not a number"),
            ("2001:db8::/129", "over 128"),
            ("fe80::1%eth0", "is not an IP address"),
            ("10.0.0/8", "is not an IP address"),
            ("10.0.0.0/8/8", "not a number"),
        ] {
            let error = text.parse::<IpNetwork>().unwrap_err().to_string();
            assert!(error.contains(reason), "{text:?}: {error}");
            assert!(error.starts_with(&format!("`{text}`")), "{error}");
        }
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panicking(text in ".{0,60}") {
            let _ = text.parse::<IpNetwork>();
        }

        #[test]
        fn an_ipv4_network_holds_exactly_the_addresses_that_share_its_prefix(
            address: u32, prefix in 0u8..=32, probe: u32,
        ) {
            let text = format!("{}/{prefix}", Ipv4Addr::from(address));
            let network: IpNetwork = text.parse().unwrap();
            prop_assert!(network.contains(IpAddr::V4(Ipv4Addr::from(address))));
            let shift = 32 - u32::from(prefix);
            let same = u64::from(address) >> shift == u64::from(probe) >> shift;
            prop_assert_eq!(network.contains(IpAddr::V4(Ipv4Addr::from(probe))), same);
            // Printing and reading back gives the same network.
            prop_assert_eq!(network.to_string().parse::<IpNetwork>().unwrap(), network);
        }

        #[test]
        fn an_ipv6_network_holds_exactly_the_addresses_that_share_its_prefix(
            address: u128, prefix in 0u8..=128, probe: u128,
        ) {
            // Mapped IPv4 addresses are IPv4: keep to native IPv6 here.
            prop_assume!(Ipv6Addr::from(address).to_ipv4_mapped().is_none());
            prop_assume!(Ipv6Addr::from(probe).to_ipv4_mapped().is_none());
            let text = format!("{}/{prefix}", Ipv6Addr::from(address));
            let network: IpNetwork = text.parse().unwrap();
            prop_assert!(network.contains(IpAddr::V6(Ipv6Addr::from(address))));
            let same = match 128 - u32::from(prefix) {
                128 => true,
                shift => address >> shift == probe >> shift,
            };
            prop_assert_eq!(network.contains(IpAddr::V6(Ipv6Addr::from(probe))), same);
            prop_assert_eq!(network.to_string().parse::<IpNetwork>().unwrap(), network);
        }
    }
}
