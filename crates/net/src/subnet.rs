//! IPv4 and IPv6 subnets in CIDR notation.
//!
//! A [`Subnet`] is always canonical: its address is the network address (no host bits set).
//! Parsing `10.1.2.3/16` is an error that names the canonical form (`10.1.0.0/16`), as dockerd
//! does since Engine 25 (`invalid subnet 10.1.2.3/16: it should be 10.1.0.0/16`); callers that
//! want the masking behaviour (an interface address with its prefix length, say) use
//! [`Subnet::containing`].
//!
//! Usable host addresses follow Docker's IPAM: in IPv4 the network and broadcast addresses are
//! not hosts, except in a /31 (RFC 3021 point-to-point) and a /32; in IPv6 the network address
//! (the subnet-router anycast address, RFC 4291 2.6.1) is not a host and there is no broadcast.

use std::cmp::Ordering;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4 (32-bit addresses).
    V4,
    /// IPv6 (128-bit addresses).
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Address width in bits: 32 or 128.
    pub fn width(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// Why a subnet could not be parsed or built. Every variant names the text or value at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    /// No `/` separating address and prefix length.
    #[error("invalid subnet {text:?}: expected CIDR notation ADDRESS/PREFIX (e.g. 10.1.0.0/16)")]
    MissingPrefix {
        /// The text given.
        text: String,
    },
    /// The part before `/` is not an IPv4 or IPv6 address.
    #[error("invalid subnet {text:?}: {addr:?} is not an IPv4 or IPv6 address")]
    BadAddress {
        /// The text given.
        text: String,
        /// Its address part.
        addr: String,
        /// The parser's reason.
        #[source]
        source: std::net::AddrParseError,
    },
    /// The part after `/` is not a decimal number without sign or leading zero.
    #[error("invalid subnet {text:?}: prefix length {prefix:?} is not a number")]
    BadPrefix {
        /// The text given.
        text: String,
        /// Its prefix part.
        prefix: String,
    },
    /// The prefix length is longer than the address.
    #[error("invalid subnet {subnet}: prefix length {prefix} is longer than {max} for {family}")]
    PrefixTooLong {
        /// The subnet as given (text or address/prefix).
        subnet: String,
        /// The prefix length given.
        prefix: u32,
        /// The longest prefix of the family (32 or 128).
        max: u8,
        /// The address family.
        family: Family,
    },
    /// Host bits are set: the address is not the network address (Docker refuses these too).
    #[error("invalid subnet {subnet}: it should be {canonical} (host bits are set)")]
    HostBitsSet {
        /// The subnet as given.
        subnet: String,
        /// The canonical form (the network address with the same prefix length).
        canonical: String,
    },
}

/// A canonical IPv4 or IPv6 subnet (`10.1.0.0/16`, `fd00::/64`).
///
/// Ordered by family, then network address, then prefix length (shorter first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    addr: IpAddr,
    prefix: u8,
}

impl Subnet {
    /// A subnet from its network address and prefix length; host bits set are an error.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Subnet, SubnetError> {
        let s = Subnet::containing(addr, prefix)?;
        if s.addr != addr {
            return Err(SubnetError::HostBitsSet {
                subnet: format!("{addr}/{prefix}"),
                canonical: s.to_string(),
            });
        }
        Ok(s)
    }

    /// The subnet of that prefix length containing `addr` (host bits are masked off):
    /// `containing(10.1.2.3, 16)` is `10.1.0.0/16`.
    pub fn containing(addr: IpAddr, prefix: u8) -> Result<Subnet, SubnetError> {
        let family = Family::of(addr);
        if prefix > family.width() {
            return Err(SubnetError::PrefixTooLong {
                subnet: format!("{addr}/{prefix}"),
                prefix: u32::from(prefix),
                max: family.width(),
                family,
            });
        }
        let bits = addr_to_bits(addr) & !host_mask(family, prefix);
        Ok(Subnet {
            addr: bits_to_addr(family, bits),
            prefix,
        })
    }

    /// The single-address subnet of `ip` (/32 or /128).
    pub fn host(ip: IpAddr) -> Subnet {
        Subnet {
            addr: ip,
            prefix: Family::of(ip).width(),
        }
    }

    /// The address family.
    pub fn family(&self) -> Family {
        Family::of(self.addr)
    }

    /// True for IPv4.
    pub fn is_ipv4(&self) -> bool {
        self.family() == Family::V4
    }

    /// True for IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.family() == Family::V6
    }

    /// The network address (the first address of the subnet).
    pub fn network(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// The netmask as an address (`255.255.0.0` for a /16).
    pub fn netmask(&self) -> IpAddr {
        let family = self.family();
        bits_to_addr(family, !host_mask(family, self.prefix) & full_mask(family))
    }

    /// The last address of the subnet (all host bits set).
    pub fn last_address(&self) -> IpAddr {
        bits_to_addr(self.family(), self.last_bits())
    }

    /// The IPv4 broadcast address: `None` for IPv6 and for /31 and /32, which have none.
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        match self.last_address() {
            IpAddr::V4(last) if self.prefix <= 30 => Some(last),
            _ => None,
        }
    }

    /// The first usable host address (see the module docs); `None` for an IPv6 /128.
    pub fn first_host(&self) -> Option<IpAddr> {
        let (first, _) = self.host_bits_range()?;
        Some(bits_to_addr(self.family(), first))
    }

    /// The last usable host address (see the module docs); `None` for an IPv6 /128.
    pub fn last_host(&self) -> Option<IpAddr> {
        let (_, last) = self.host_bits_range()?;
        Some(bits_to_addr(self.family(), last))
    }

    /// How many usable host addresses the subnet has (see the module docs); saturates at
    /// `u128::MAX` for an IPv6 /0.
    pub fn host_count(&self) -> u128 {
        match self.host_bits_range() {
            Some((first, last)) => (last - first).saturating_add(1),
            None => 0,
        }
    }

    /// How many addresses the subnet spans, hosts or not (saturates at `u128::MAX` for ::/0).
    pub fn size(&self) -> u128 {
        host_mask(self.family(), self.prefix).saturating_add(1)
    }

    /// True if `ip` is in the subnet (always false for the other family).
    pub fn contains(&self, ip: IpAddr) -> bool {
        Family::of(ip) == self.family()
            && addr_to_bits(ip) & !host_mask(self.family(), self.prefix) == self.bits()
    }

    /// True if every address of `other` is in `self`.
    pub fn contains_subnet(&self, other: &Subnet) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// True if the two subnets share at least one address (never across families). Two CIDR
    /// blocks overlap exactly when one contains the other.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains_subnet(other) || other.contains_subnet(self)
    }

    /// The usable host range as offsets-free bit values (first, last), Docker's rules.
    fn host_bits_range(&self) -> Option<(u128, u128)> {
        let (net, last) = (self.bits(), self.last_bits());
        match self.family() {
            Family::V4 if self.prefix <= 30 => Some((net + 1, last - 1)),
            Family::V4 => Some((net, last)),
            Family::V6 if self.prefix < 128 => Some((net + 1, last)),
            Family::V6 => None,
        }
    }

    /// The network address as an integer (IPv4 in the low 32 bits).
    pub(crate) fn bits(&self) -> u128 {
        addr_to_bits(self.addr)
    }

    /// The last address as an integer.
    pub(crate) fn last_bits(&self) -> u128 {
        self.bits() | host_mask(self.family(), self.prefix)
    }

    /// A subnet from an integer network address already aligned to `prefix`.
    pub(crate) fn from_bits(family: Family, bits: u128, prefix: u8) -> Subnet {
        debug_assert!(prefix <= family.width());
        debug_assert_eq!(bits & host_mask(family, prefix), 0);
        Subnet {
            addr: bits_to_addr(family, bits),
            prefix,
        }
    }
}

impl Ord for Subnet {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.family(), self.bits(), self.prefix).cmp(&(other.family(), other.bits(), other.prefix))
    }
}

impl PartialOrd for Subnet {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = SubnetError;

    /// Parses `ADDRESS/PREFIX`; host bits set are an error naming the canonical form.
    fn from_str(text: &str) -> Result<Subnet, SubnetError> {
        let Some((addr_text, prefix_text)) = text.split_once('/') else {
            return Err(SubnetError::MissingPrefix {
                text: text.to_string(),
            });
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|source| SubnetError::BadAddress {
                text: text.to_string(),
                addr: addr_text.to_string(),
                source,
            })?;
        let bad_prefix = || SubnetError::BadPrefix {
            text: text.to_string(),
            prefix: prefix_text.to_string(),
        };
        let digits_ok = !prefix_text.is_empty()
            && prefix_text.len() <= 3
            && prefix_text.bytes().all(|b| b.is_ascii_digit())
            && (prefix_text == "0" || !prefix_text.starts_with('0'));
        if !digits_ok {
            return Err(bad_prefix());
        }
        let prefix: u32 = prefix_text.parse().map_err(|_| bad_prefix())?;
        let family = Family::of(addr);
        if prefix > u32::from(family.width()) {
            return Err(SubnetError::PrefixTooLong {
                subnet: text.to_string(),
                prefix,
                max: family.width(),
                family,
            });
        }
        // prefix <= 128 here, so the narrowing cannot lose anything.
        let prefix = prefix as u8;
        let s = Subnet::containing(addr, prefix)?;
        if s.addr != addr {
            return Err(SubnetError::HostBitsSet {
                subnet: text.to_string(),
                canonical: s.to_string(),
            });
        }
        Ok(s)
    }
}

impl serde::Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Subnet, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An address as an integer (IPv4 in the low 32 bits).
pub(crate) fn addr_to_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// An integer as an address of `family` (IPv4 takes the low 32 bits).
pub(crate) fn bits_to_addr(family: Family, bits: u128) -> IpAddr {
    match family {
        // Truncation to the low 32 bits is the IPv4 representation used throughout.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(bits as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

/// All address bits of the family set.
fn full_mask(family: Family) -> u128 {
    match family {
        Family::V4 => u128::from(u32::MAX),
        Family::V6 => u128::MAX,
    }
}

/// The host bits of a prefix length set (`0xffff` for an IPv4 /16). `prefix <= width`.
pub(crate) fn host_mask(family: Family, prefix: u8) -> u128 {
    let host_bits = u32::from(family.width().saturating_sub(prefix));
    match host_bits {
        0 => 0,
        128 => u128::MAX,
        n => (1u128 << n) - 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Subnet {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parse_and_display_round_trip() {
        for text in [
            "10.1.0.0/16",
            "0.0.0.0/0",
            "10.1.2.3/32",
            "172.17.0.0/16",
            "fd00::/64",
            "::/0",
            "fd00::1/128",
        ] {
            assert_eq!(s(text).to_string(), text);
        }
        assert_eq!(s("FD00:0::/64").to_string(), "fd00::/64");
    }

    #[test]
    fn parse_errors_name_the_text() {
        let err = "10.1.0.0".parse::<Subnet>().unwrap_err();
        assert!(matches!(err, SubnetError::MissingPrefix { .. }));
        assert!(err.to_string().contains("\"10.1.0.0\""), "{err}");

        let err = "10.1.0/16".parse::<Subnet>().unwrap_err();
        assert!(matches!(err, SubnetError::BadAddress { .. }));
        assert!(err.to_string().contains("\"10.1.0/16\""), "{err}");
        assert!(std::error::Error::source(&err).is_some());

        for bad in [
            "10.0.0.0/",
            "10.0.0.0/x",
            "10.0.0.0/+8",
            "10.0.0.0/08",
            "10.0.0.0/-1",
            "10.0.0.0/1000",
            "10.0.0.0/ 8",
        ] {
            let err = bad.parse::<Subnet>().unwrap_err();
            assert!(
                matches!(err, SubnetError::BadPrefix { .. }),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().contains(bad), "{err}");
        }

        let err = "10.0.0.0/33".parse::<Subnet>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid subnet 10.0.0.0/33: prefix length 33 is longer than 32 for IPv4"
        );
        assert!(matches!(
            "fd00::/129".parse::<Subnet>(),
            Err(SubnetError::PrefixTooLong { max: 128, .. })
        ));
        assert!("fe80::1%eth0/64".parse::<Subnet>().is_err());
    }

    #[test]
    fn host_bits_set_is_an_error_naming_the_canonical_form() {
        let err = "10.1.2.3/16".parse::<Subnet>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid subnet 10.1.2.3/16: it should be 10.1.0.0/16 (host bits are set)"
        );
        let err = "fd00::1/64".parse::<Subnet>().unwrap_err();
        assert!(err.to_string().contains("it should be fd00::/64"), "{err}");
        assert!(Subnet::new(ip("10.1.2.3"), 16).is_err());
        assert_eq!(
            Subnet::containing(ip("10.1.2.3"), 16).unwrap(),
            s("10.1.0.0/16")
        );
        assert_eq!(
            Subnet::containing(ip("fd00::1"), 64).unwrap(),
            s("fd00::/64")
        );
        assert!(Subnet::containing(ip("10.1.2.3"), 40).is_err());
    }

    #[test]
    fn ipv4_bounds() {
        let n = s("10.1.0.0/16");
        assert_eq!(n.family(), Family::V4);
        assert_eq!(n.network(), ip("10.1.0.0"));
        assert_eq!(n.netmask(), ip("255.255.0.0"));
        assert_eq!(n.first_host(), Some(ip("10.1.0.1")));
        assert_eq!(n.last_host(), Some(ip("10.1.255.254")));
        assert_eq!(n.last_address(), ip("10.1.255.255"));
        assert_eq!(n.broadcast(), Some("10.1.255.255".parse().unwrap()));
        assert_eq!(n.host_count(), 65534);
        assert_eq!(n.size(), 65536);

        let p2p = s("10.0.0.0/31");
        assert_eq!(p2p.broadcast(), None);
        assert_eq!(p2p.first_host(), Some(ip("10.0.0.0")));
        assert_eq!(p2p.last_host(), Some(ip("10.0.0.1")));
        assert_eq!(p2p.host_count(), 2);

        let one = s("10.0.0.7/32");
        assert_eq!(one.first_host(), Some(ip("10.0.0.7")));
        assert_eq!(one.host_count(), 1);
        assert_eq!(one.netmask(), ip("255.255.255.255"));

        let all = s("0.0.0.0/0");
        assert_eq!(all.host_count(), (1u128 << 32) - 2);
        assert_eq!(all.netmask(), ip("0.0.0.0"));
        assert_eq!(s("192.168.1.0/30").host_count(), 2);
    }

    #[test]
    fn ipv6_bounds() {
        let n = s("fd00::/64");
        assert!(n.is_ipv6());
        assert_eq!(n.first_host(), Some(ip("fd00::1")));
        assert_eq!(n.last_host(), Some(ip("fd00::ffff:ffff:ffff:ffff")));
        assert_eq!(n.broadcast(), None);
        assert_eq!(n.host_count(), (1u128 << 64) - 1);
        assert_eq!(n.netmask(), ip("ffff:ffff:ffff:ffff::"));
        assert_eq!(s("fd00::/128").first_host(), None);
        assert_eq!(s("fd00::/128").host_count(), 0);
        assert_eq!(s("fd00::/127").host_count(), 1);
        assert_eq!(s("::/0").host_count(), u128::MAX);
        assert_eq!(s("::/0").size(), u128::MAX);
        assert_eq!(
            s("::/0").last_address(),
            ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        );
    }

    #[test]
    fn contains() {
        let n = s("172.17.0.0/16");
        assert!(n.contains(ip("172.17.0.0")));
        assert!(n.contains(ip("172.17.255.255")));
        assert!(!n.contains(ip("172.18.0.0")));
        assert!(!n.contains(ip("172.16.255.255")));
        assert!(
            !n.contains(ip("::ffff:172.17.0.2")),
            "an IPv4-mapped IPv6 address is IPv6"
        );
        assert!(s("0.0.0.0/0").contains(ip("255.255.255.255")));
        assert!(!s("0.0.0.0/0").contains(ip("::1")));
        assert!(s("fd00::/8").contains(ip("fdff::1")));
        assert!(!s("fd00::/8").contains(ip("fe00::")));
        assert!(s("10.0.0.5/32").contains(ip("10.0.0.5")));
        assert!(!s("10.0.0.5/32").contains(ip("10.0.0.4")));
    }

    #[test]
    fn overlaps_edge_cases() {
        let a = s("172.17.0.0/16");
        assert!(a.overlaps(&a));
        assert!(a.overlaps(&s("172.17.5.0/24")));
        assert!(s("172.17.5.0/24").overlaps(&a));
        assert!(a.overlaps(&s("172.16.0.0/12")));
        assert!(!a.overlaps(&s("172.18.0.0/16")));
        assert!(
            !a.overlaps(&s("172.16.0.0/16")),
            "adjacent blocks do not overlap"
        );
        assert!(a.overlaps(&s("172.17.255.255/32")));
        assert!(!a.overlaps(&s("172.18.0.0/32")));
        assert!(s("0.0.0.0/0").overlaps(&a));
        assert!(!a.overlaps(&s("::/0")), "families never overlap");
        assert!(!s("::ffff:0:0/96").overlaps(&s("0.0.0.0/0")));
        assert!(s("fd00::/64").overlaps(&s("fd00::/8")));
        assert!(!s("fd00::/64").overlaps(&s("fd00:0:0:1::/64")));
        assert!(s("fd00::/64").contains_subnet(&s("fd00::8/125")));
        assert!(!s("fd00::8/125").contains_subnet(&s("fd00::/64")));
    }

    #[test]
    fn ordering_and_serde() {
        let mut v = vec![
            s("fd00::/64"),
            s("10.0.0.0/24"),
            s("10.0.0.0/8"),
            s("9.0.0.0/8"),
        ];
        v.sort();
        assert_eq!(
            v,
            vec![
                s("9.0.0.0/8"),
                s("10.0.0.0/8"),
                s("10.0.0.0/24"),
                s("fd00::/64")
            ]
        );
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(
            json,
            r#"["9.0.0.0/8","10.0.0.0/8","10.0.0.0/24","fd00::/64"]"#
        );
        let back: Vec<Subnet> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
        let err = serde_json::from_str::<Subnet>(r#""10.0.0.1/8""#).unwrap_err();
        assert!(err.to_string().contains("it should be 10.0.0.0/8"), "{err}");
    }
}
