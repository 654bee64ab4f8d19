//! Address allocation inside one subnet of a network (`--subnet`, `--ip-range`, `--gateway`,
//! `--aux-address`, `--ip`), in memory; [`crate::store`] persists it.
//!
//! Rules, as Docker's default IPAM:
//! * never handed out: the network address (IPv4 except /31 and /32; IPv6 always: the
//!   subnet-router anycast address), the IPv4 broadcast address (except /31 and /32), the
//!   gateway and the auxiliary addresses;
//! * the gateway defaults to the subnet's first host address (`10.1.0.1`, `fd00::1`);
//! * the configuration is checked as dockerd checks it: the ip-range, the gateway and the
//!   auxiliary addresses lie inside the subnet, and none of them is a reserved address;
//! * dynamic allocation takes addresses from the ip-range (the whole subnet without one); the
//!   ip-range's own first and last addresses are ordinary hosts when the subnet is larger;
//! * a requested address (`--ip`) may lie anywhere in the subnet, inside the ip-range or not,
//!   and must be neither reserved nor in use;
//! * order: next fit, like dockerd's serial allocation. A cursor follows the last address
//!   handed out and the search resumes after it, wrapping to the start of the range: a
//!   released address is handed out again only once the rest of the range has been used,
//!   so a restarted container does not get the address a removed one had a moment ago
//!   (stale ARP/neighbour entries and DNS answers would send it the other one's traffic).
//!   Requested addresses do not move the cursor.
//!
//! Allocations are kept as a sorted set of offsets from the network address, so a search costs
//! one step per allocated or reserved address it passes, whatever the subnet size: an IPv6 /64
//! (or /8) allocates at once, without scanning the space.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::subnet::{addr_to_bits, bits_to_addr, Family, Subnet};

/// The configuration of one subnet of a network, Docker's `IPAM.Config[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolConfig {
    /// The subnet (`--subnet`).
    pub subnet: Subnet,
    /// Where dynamic allocations come from (`--ip-range`); the whole subnet if `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Subnet>,
    /// The gateway (`--gateway`); the subnet's first host address if `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Addresses never handed out, by name (`--aux-address name=ip`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, IpAddr>,
}

impl PoolConfig {
    /// A subnet with the default gateway, no ip-range and no auxiliary addresses.
    pub fn new(subnet: Subnet) -> PoolConfig {
        PoolConfig {
            subnet,
            ip_range: None,
            gateway: None,
            aux_addresses: BTreeMap::new(),
        }
    }

    /// With an ip-range.
    pub fn with_ip_range(mut self, ip_range: Subnet) -> PoolConfig {
        self.ip_range = Some(ip_range);
        self
    }

    /// With a gateway.
    pub fn with_gateway(mut self, gateway: IpAddr) -> PoolConfig {
        self.gateway = Some(gateway);
        self
    }

    /// With an auxiliary address.
    pub fn with_aux_address(mut self, name: impl Into<String>, ip: IpAddr) -> PoolConfig {
        self.aux_addresses.insert(name.into(), ip);
        self
    }
}

/// Why an address of the subnet is never handed out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reservation {
    /// The network address (IPv6: the subnet-router anycast address).
    Network,
    /// The IPv4 broadcast address.
    Broadcast,
    /// The gateway.
    Gateway,
    /// An auxiliary address, by name.
    Auxiliary(String),
}

impl fmt::Display for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reservation::Network => f.write_str("the network address"),
            Reservation::Broadcast => f.write_str("the broadcast address"),
            Reservation::Gateway => f.write_str("the gateway"),
            Reservation::Auxiliary(name) => write!(f, "the auxiliary address {name:?}"),
        }
    }
}

/// Why a configuration is invalid or an address cannot be allocated, requested or released.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// The ip-range is not inside the subnet (other family, larger, or elsewhere).
    #[error("invalid ip-range {ip_range}: it is not inside the subnet {subnet}")]
    RangeOutsideSubnet {
        /// The ip-range.
        ip_range: Subnet,
        /// The subnet.
        subnet: Subnet,
    },
    /// An address (gateway, auxiliary, requested, released) is not in the subnet.
    #[error("invalid {what} {ip}: it is not in the subnet {subnet}")]
    OutsideSubnet {
        /// Which address: "gateway", "auxiliary address \"x\"", "requested address", ...
        what: String,
        /// The address.
        ip: IpAddr,
        /// The subnet.
        subnet: Subnet,
    },
    /// An address (gateway, auxiliary, requested, released) is reserved in the subnet.
    #[error("invalid {what} {ip}: it is {by} of {subnet}")]
    Reserved {
        /// Which address: "gateway", "auxiliary address \"x\"", "requested address", ...
        what: String,
        /// The address.
        ip: IpAddr,
        /// The subnet.
        subnet: Subnet,
        /// What holds it.
        by: Reservation,
    },
    /// The subnet has no host address to default the gateway to (an IPv6 /128).
    #[error("subnet {subnet} has no host address for a gateway")]
    NoGatewayAddress {
        /// The subnet.
        subnet: Subnet,
    },
    /// A requested address is already allocated.
    #[error("address {ip} is already in use in the subnet {subnet}")]
    InUse {
        /// The address.
        ip: IpAddr,
        /// The subnet.
        subnet: Subnet,
    },
    /// No free address is left for dynamic allocation.
    #[error("no free address left in {}", exhausted_where(.subnet, .ip_range))]
    Exhausted {
        /// The subnet.
        subnet: Subnet,
        /// The ip-range searched, if any.
        ip_range: Option<Subnet>,
    },
    /// Two subnets of one network overlap.
    #[error("subnet {subnet} overlaps subnet {other} of the same network")]
    Overlap {
        /// The subnet added.
        subnet: Subnet,
        /// The subnet it overlaps.
        other: Subnet,
    },
    /// A network has no subnet of the family asked for.
    #[error("the network has no {family} subnet")]
    NoSubnetOfFamily {
        /// The family.
        family: Family,
    },
    /// An address is in none of a network's subnets.
    #[error("address {ip} is in none of the network's subnets ({subnets})")]
    NotInNetwork {
        /// The address.
        ip: IpAddr,
        /// The network's subnets, comma-separated.
        subnets: String,
    },
}

fn exhausted_where(subnet: &Subnet, ip_range: &Option<Subnet>) -> String {
    match ip_range {
        Some(r) => format!("the ip-range {r} of the subnet {subnet}"),
        None => format!("the subnet {subnet}"),
    }
}

/// The addresses of one subnet: reserved, allocated, and the next-fit cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressAllocator {
    config: PoolConfig,
    gateway: IpAddr,
    /// Offsets from the network address that are never handed out.
    reserved: BTreeMap<u128, Reservation>,
    /// Offsets handed out.
    allocated: BTreeSet<u128>,
    /// Dynamic allocation range, offsets, inclusive.
    lo: u128,
    hi: u128,
    /// Where the next search starts (an offset; clamped into lo..=hi on use).
    next: u128,
}

impl AddressAllocator {
    /// Checks `config` and reserves the network, broadcast, gateway and auxiliary addresses.
    pub fn new(config: PoolConfig) -> Result<AddressAllocator, IpamError> {
        let subnet = config.subnet;
        let net = subnet.bits();
        let mut reserved = BTreeMap::new();
        let is_v4 = subnet.is_ipv4();
        let small_v4 = is_v4 && subnet.prefix_len() >= 31;
        if !small_v4 {
            reserved.insert(0, Reservation::Network);
        }
        if let Some(b) = subnet.broadcast() {
            reserved.insert(addr_to_bits(IpAddr::V4(b)) - net, Reservation::Broadcast);
        }

        let (lo, hi) = match config.ip_range {
            Some(r) if !subnet.contains_subnet(&r) => {
                return Err(IpamError::RangeOutsideSubnet {
                    ip_range: r,
                    subnet,
                });
            }
            Some(r) => (r.bits() - net, r.last_bits() - net),
            None => (0, subnet.last_bits() - net),
        };

        let mut reserve = |what: String, ip: IpAddr, by: Reservation| -> Result<(), IpamError> {
            if !subnet.contains(ip) {
                return Err(IpamError::OutsideSubnet { what, ip, subnet });
            }
            let off = addr_to_bits(ip) - net;
            if let Some(held) = reserved.get(&off) {
                return Err(IpamError::Reserved {
                    what,
                    ip,
                    subnet,
                    by: held.clone(),
                });
            }
            reserved.insert(off, by);
            Ok(())
        };

        let gateway = match config.gateway {
            Some(gw) => gw,
            None => subnet
                .first_host()
                .ok_or(IpamError::NoGatewayAddress { subnet })?,
        };
        reserve("gateway".to_string(), gateway, Reservation::Gateway)?;
        for (name, &ip) in &config.aux_addresses {
            reserve(
                format!("auxiliary address {name:?}"),
                ip,
                Reservation::Auxiliary(name.clone()),
            )?;
        }

        let config = PoolConfig {
            gateway: Some(gateway),
            ..config
        };
        Ok(AddressAllocator {
            config,
            gateway,
            reserved,
            allocated: BTreeSet::new(),
            lo,
            hi,
            next: lo,
        })
    }

    /// The configuration, with the gateway filled in.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// The subnet.
    pub fn subnet(&self) -> Subnet {
        self.config.subnet
    }

    /// The ip-range, if any.
    pub fn ip_range(&self) -> Option<Subnet> {
        self.config.ip_range
    }

    /// The gateway.
    pub fn gateway(&self) -> IpAddr {
        self.gateway
    }

    /// Why `ip` is never handed out, if it is reserved.
    pub fn reservation(&self, ip: IpAddr) -> Option<&Reservation> {
        self.offset(ip).and_then(|off| self.reserved.get(&off))
    }

    /// True if `ip` is allocated (reserved addresses are not).
    pub fn is_allocated(&self, ip: IpAddr) -> bool {
        self.offset(ip)
            .is_some_and(|off| self.allocated.contains(&off))
    }

    /// The allocated addresses, in address order.
    pub fn allocated(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let family = self.subnet().family();
        let net = self.subnet().bits();
        self.allocated
            .iter()
            .map(move |&off| bits_to_addr(family, net + off))
    }

    /// How many addresses are allocated.
    pub fn allocated_count(&self) -> usize {
        self.allocated.len()
    }

    /// How many addresses dynamic allocation can still hand out (saturating).
    pub fn available(&self) -> u128 {
        let span = (self.hi - self.lo).saturating_add(1);
        let used = self.reserved.range(self.lo..=self.hi).count()
            + self.allocated.range(self.lo..=self.hi).count();
        span - used as u128
    }

    /// Hands out the next free address of the ip-range (or subnet), next fit.
    pub fn allocate(&mut self) -> Result<IpAddr, IpamError> {
        let start = if (self.lo..=self.hi).contains(&self.next) {
            self.next
        } else {
            self.lo
        };
        let found = match self.next_free(start, self.hi) {
            Some(off) => Some(off),
            None if start > self.lo => self.next_free(self.lo, start - 1),
            None => None,
        };
        let off = found.ok_or(IpamError::Exhausted {
            subnet: self.subnet(),
            ip_range: self.ip_range(),
        })?;
        self.allocated.insert(off);
        // Past the end: the next search clamps back to `lo`.
        self.next = off.wrapping_add(1);
        Ok(self.addr(off))
    }

    /// Checks that `ip` could be requested: in the subnet, not reserved, not in use.
    pub fn check_request(&self, ip: IpAddr) -> Result<(), IpamError> {
        self.free_offset("requested address", ip).map(|_| ())
    }

    /// Allocates the address `ip` (`--ip`), which may lie outside the ip-range.
    pub fn request(&mut self, ip: IpAddr) -> Result<(), IpamError> {
        self.insert("requested address", ip)
    }

    /// Allocates `ip`, naming it `what` in errors.
    pub(crate) fn insert(&mut self, what: &str, ip: IpAddr) -> Result<(), IpamError> {
        let off = self.free_offset(what, ip)?;
        self.allocated.insert(off);
        Ok(())
    }

    /// Frees `ip`; `Ok(false)` if it was not allocated. Reserved or foreign addresses are errors.
    pub fn release(&mut self, ip: IpAddr) -> Result<bool, IpamError> {
        let off = self.checked_offset("released address", ip)?;
        Ok(self.allocated.remove(&off))
    }

    /// The cursor as an address (persisted so the order survives restarts).
    pub(crate) fn next_addr(&self) -> IpAddr {
        let off = if (self.lo..=self.hi).contains(&self.next) {
            self.next
        } else {
            self.lo
        };
        self.addr(off)
    }

    /// Restores the cursor; an address outside the range puts it at the start.
    pub(crate) fn set_next(&mut self, ip: IpAddr) {
        self.next = self
            .offset(ip)
            .filter(|off| (self.lo..=self.hi).contains(off))
            .unwrap_or(self.lo);
    }

    /// The offset of `ip` from the network address, if it is in the subnet.
    fn offset(&self, ip: IpAddr) -> Option<u128> {
        self.subnet()
            .contains(ip)
            .then(|| addr_to_bits(ip) - self.subnet().bits())
    }

    /// The offset of `ip`, which must be in the subnet, not reserved and not allocated.
    fn free_offset(&self, what: &str, ip: IpAddr) -> Result<u128, IpamError> {
        let off = self.checked_offset(what, ip)?;
        if self.allocated.contains(&off) {
            return Err(IpamError::InUse {
                ip,
                subnet: self.subnet(),
            });
        }
        Ok(off)
    }

    /// The offset of `ip`, which must be in the subnet and not reserved.
    fn checked_offset(&self, what: &str, ip: IpAddr) -> Result<u128, IpamError> {
        let subnet = self.subnet();
        let off = self.offset(ip).ok_or_else(|| IpamError::OutsideSubnet {
            what: what.to_string(),
            ip,
            subnet,
        })?;
        if let Some(by) = self.reserved.get(&off) {
            return Err(IpamError::Reserved {
                what: what.to_string(),
                ip,
                subnet,
                by: by.clone(),
            });
        }
        Ok(off)
    }

    fn addr(&self, off: u128) -> IpAddr {
        bits_to_addr(self.subnet().family(), self.subnet().bits() + off)
    }

    /// The first offset in `from..=to` neither allocated nor reserved. Each step passes one
    /// allocated or reserved offset, so the cost is bounded by how many there are.
    fn next_free(&self, from: u128, to: u128) -> Option<u128> {
        let mut candidate = from;
        let mut taken = self.allocated.range(from..=to).peekable();
        loop {
            if candidate > to {
                return None;
            }
            while taken.next_if(|&&off| off < candidate).is_some() {}
            let used = taken.peek() == Some(&&candidate) || self.reserved.contains_key(&candidate);
            if !used {
                return Some(candidate);
            }
            candidate = candidate.checked_add(1)?;
        }
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

    fn alloc(config: PoolConfig) -> AddressAllocator {
        AddressAllocator::new(config).unwrap()
    }

    #[test]
    fn gateway_defaults_to_first_host_and_is_never_allocated() {
        let mut a = alloc(PoolConfig::new(s("10.1.0.0/16")));
        assert_eq!(a.gateway(), ip("10.1.0.1"));
        assert_eq!(a.config().gateway, Some(ip("10.1.0.1")));
        assert_eq!(a.reservation(ip("10.1.0.0")), Some(&Reservation::Network));
        assert_eq!(a.reservation(ip("10.1.0.1")), Some(&Reservation::Gateway));
        assert_eq!(
            a.reservation(ip("10.1.255.255")),
            Some(&Reservation::Broadcast)
        );
        assert_eq!(a.reservation(ip("10.1.0.2")), None);
        assert_eq!(a.allocate().unwrap(), ip("10.1.0.2"));
        assert_eq!(a.allocate().unwrap(), ip("10.1.0.3"));
        assert_eq!(a.available(), 65536 - 3 - 2);
    }

    #[test]
    fn whole_small_subnet_never_hands_out_network_gateway_or_broadcast() {
        let mut a = alloc(PoolConfig::new(s("192.168.7.0/29")));
        let got: Vec<IpAddr> = std::iter::from_fn(|| a.allocate().ok()).collect();
        let want: Vec<IpAddr> = (2..=6).map(|i| ip(&format!("192.168.7.{i}"))).collect();
        assert_eq!(got, want);
        let err = a.allocate().unwrap_err();
        assert_eq!(
            err,
            IpamError::Exhausted {
                subnet: s("192.168.7.0/29"),
                ip_range: None
            }
        );
        assert_eq!(
            err.to_string(),
            "no free address left in the subnet 192.168.7.0/29"
        );
        assert_eq!(a.available(), 0);

        // An explicit gateway elsewhere frees .1.
        let mut a = alloc(PoolConfig::new(s("192.168.7.0/30")).with_gateway(ip("192.168.7.2")));
        assert_eq!(a.allocate().unwrap(), ip("192.168.7.1"));
        assert!(a.allocate().is_err());
    }

    #[test]
    fn point_to_point_and_single_address_subnets() {
        // /31: both addresses are hosts (RFC 3021); the gateway takes the first.
        let mut a = alloc(PoolConfig::new(s("10.0.0.0/31")));
        assert_eq!(a.gateway(), ip("10.0.0.0"));
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.1"));
        assert!(a.allocate().is_err());
        // /32: the gateway is the only address.
        let mut a = alloc(PoolConfig::new(s("10.0.0.9/32")));
        assert_eq!(a.gateway(), ip("10.0.0.9"));
        assert!(matches!(a.allocate(), Err(IpamError::Exhausted { .. })));
        // IPv6 /128 has no host for a gateway; /127 has exactly one.
        assert_eq!(
            AddressAllocator::new(PoolConfig::new(s("fd00::5/128"))).unwrap_err(),
            IpamError::NoGatewayAddress {
                subnet: s("fd00::5/128")
            }
        );
        let mut a = alloc(PoolConfig::new(s("fd00::4/127")));
        assert_eq!(a.gateway(), ip("fd00::5"));
        assert!(a.allocate().is_err());
    }

    #[test]
    fn ip_range_limits_dynamic_allocation() {
        let cfg = PoolConfig::new(s("10.0.0.0/16")).with_ip_range(s("10.0.5.0/30"));
        let mut a = alloc(cfg);
        assert_eq!(a.gateway(), ip("10.0.0.1"));
        // The range's own first and last addresses are ordinary hosts of the /16.
        let got: Vec<IpAddr> = std::iter::from_fn(|| a.allocate().ok()).collect();
        assert_eq!(
            got,
            vec![
                ip("10.0.5.0"),
                ip("10.0.5.1"),
                ip("10.0.5.2"),
                ip("10.0.5.3")
            ]
        );
        let err = a.allocate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "no free address left in the ip-range 10.0.5.0/30 of the subnet 10.0.0.0/16"
        );
        // A requested address outside the range but inside the subnet is fine.
        a.request(ip("10.0.9.9")).unwrap();
        assert!(a.is_allocated(ip("10.0.9.9")));

        // A range starting at the subnet's start skips the network address and gateway.
        let mut a = alloc(PoolConfig::new(s("10.0.0.0/24")).with_ip_range(s("10.0.0.0/30")));
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.2"));
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.3"));
        assert!(a.allocate().is_err());
    }

    #[test]
    fn config_checks() {
        let e = AddressAllocator::new(
            PoolConfig::new(s("10.0.0.0/24")).with_ip_range(s("10.0.1.0/28")),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid ip-range 10.0.1.0/28: it is not inside the subnet 10.0.0.0/24"
        );
        let e = AddressAllocator::new(
            PoolConfig::new(s("10.0.0.0/24")).with_ip_range(s("10.0.0.0/16")),
        )
        .unwrap_err();
        assert!(matches!(e, IpamError::RangeOutsideSubnet { .. }));
        let e =
            AddressAllocator::new(PoolConfig::new(s("10.0.0.0/24")).with_ip_range(s("fd00::/120")))
                .unwrap_err();
        assert!(matches!(e, IpamError::RangeOutsideSubnet { .. }));

        let e =
            AddressAllocator::new(PoolConfig::new(s("10.0.0.0/24")).with_gateway(ip("10.0.1.1")))
                .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid gateway 10.0.1.1: it is not in the subnet 10.0.0.0/24"
        );
        let e =
            AddressAllocator::new(PoolConfig::new(s("10.0.0.0/24")).with_gateway(ip("fd00::1")))
                .unwrap_err();
        assert!(matches!(e, IpamError::OutsideSubnet { .. }));
        let e =
            AddressAllocator::new(PoolConfig::new(s("10.0.0.0/24")).with_gateway(ip("10.0.0.0")))
                .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid gateway 10.0.0.0: it is the network address of 10.0.0.0/24"
        );
        let e =
            AddressAllocator::new(PoolConfig::new(s("10.0.0.0/24")).with_gateway(ip("10.0.0.255")))
                .unwrap_err();
        assert!(matches!(
            e,
            IpamError::Reserved {
                by: Reservation::Broadcast,
                ..
            }
        ));
        let e = AddressAllocator::new(PoolConfig::new(s("fd00::/64")).with_gateway(ip("fd00::")))
            .unwrap_err();
        assert!(matches!(
            e,
            IpamError::Reserved {
                by: Reservation::Network,
                ..
            }
        ));

        let e = AddressAllocator::new(
            PoolConfig::new(s("10.0.0.0/24")).with_aux_address("router", ip("10.0.0.1")),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid auxiliary address \"router\" 10.0.0.1: it is the gateway of 10.0.0.0/24"
        );
        let e = AddressAllocator::new(
            PoolConfig::new(s("10.0.0.0/24")).with_aux_address("x", ip("10.9.0.1")),
        )
        .unwrap_err();
        assert!(matches!(e, IpamError::OutsideSubnet { .. }));
        let e = AddressAllocator::new(
            PoolConfig::new(s("10.0.0.0/24"))
                .with_aux_address("a", ip("10.0.0.7"))
                .with_aux_address("b", ip("10.0.0.7")),
        )
        .unwrap_err();
        assert!(
            matches!(e, IpamError::Reserved { by: Reservation::Auxiliary(ref n), .. } if n == "a"),
            "{e}"
        );
    }

    #[test]
    fn aux_addresses_are_skipped() {
        let cfg = PoolConfig::new(s("10.0.0.0/24")).with_aux_address("printer", ip("10.0.0.2"));
        let mut a = alloc(cfg);
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.3"));
        let e = a.request(ip("10.0.0.2")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid requested address 10.0.0.2: it is the auxiliary address \"printer\" of 10.0.0.0/24"
        );
    }

    #[test]
    fn requested_address_checks() {
        let mut a = alloc(PoolConfig::new(s("172.18.0.0/16")));
        a.request(ip("172.18.0.10")).unwrap();
        let e = a.request(ip("172.18.0.10")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "address 172.18.0.10 is already in use in the subnet 172.18.0.0/16"
        );
        let e = a.request(ip("172.19.0.10")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid requested address 172.19.0.10: it is not in the subnet 172.18.0.0/16"
        );
        for (addr, by) in [
            ("172.18.0.0", Reservation::Network),
            ("172.18.0.1", Reservation::Gateway),
            ("172.18.255.255", Reservation::Broadcast),
        ] {
            let e = a.request(ip(addr)).unwrap_err();
            assert!(
                matches!(e, IpamError::Reserved { by: ref b, .. } if *b == by),
                "{addr}: {e}"
            );
        }
        assert!(matches!(
            a.request(ip("fd00::2")),
            Err(IpamError::OutsideSubnet { .. })
        ));
        assert!(a.check_request(ip("172.18.0.11")).is_ok());
        assert!(
            !a.is_allocated(ip("172.18.0.11")),
            "check_request allocates nothing"
        );
        // Dynamic allocation steps around the requested address.
        assert_eq!(a.allocate().unwrap(), ip("172.18.0.2"));
        a.request(ip("172.18.0.3")).unwrap();
        assert_eq!(a.allocate().unwrap(), ip("172.18.0.4"));
        assert_eq!(
            a.allocated().collect::<Vec<_>>(),
            vec![
                ip("172.18.0.2"),
                ip("172.18.0.3"),
                ip("172.18.0.4"),
                ip("172.18.0.10")
            ]
        );
        assert_eq!(a.allocated_count(), 4);
    }

    #[test]
    fn release_and_next_fit_reuse() {
        let mut a = alloc(PoolConfig::new(s("10.0.0.0/29")));
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.2"));
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.3"));
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.4"));
        assert_eq!(a.release(ip("10.0.0.3")), Ok(true));
        assert_eq!(
            a.release(ip("10.0.0.3")),
            Ok(false),
            "a second release is a no-op"
        );
        assert!(!a.is_allocated(ip("10.0.0.3")));
        // The freed .3 is not handed out again while .5 and .6 are free.
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.5"));
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.6"));
        // Then the search wraps around and finds it.
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.3"));
        assert!(a.allocate().is_err());
        // A freed address can be requested back at once.
        a.release(ip("10.0.0.5")).unwrap();
        a.request(ip("10.0.0.5")).unwrap();

        let e = a.release(ip("10.0.0.1")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid released address 10.0.0.1: it is the gateway of 10.0.0.0/29"
        );
        assert!(matches!(
            a.release(ip("10.0.1.1")),
            Err(IpamError::OutsideSubnet { .. })
        ));
    }

    #[test]
    fn ipv6_allocates_without_scanning() {
        let mut a = alloc(PoolConfig::new(s("fd00::/64")));
        assert_eq!(a.gateway(), ip("fd00::1"));
        assert_eq!(a.allocate().unwrap(), ip("fd00::2"));
        assert_eq!(a.allocate().unwrap(), ip("fd00::3"));
        assert_eq!(a.available(), (1u128 << 64) - 4);
        a.request(ip("fd00::ffff:ffff:ffff:ffff")).unwrap();
        assert!(matches!(
            a.request(ip("fd00::")),
            Err(IpamError::Reserved {
                by: Reservation::Network,
                ..
            })
        ));

        // The largest possible spaces still answer at once.
        let mut a = alloc(PoolConfig::new(s("fd00::/8")));
        a.request(ip("fd00::2")).unwrap();
        assert_eq!(a.allocate().unwrap(), ip("fd00::3"));
        let mut a = alloc(PoolConfig::new(s("::/0")));
        assert_eq!(a.allocate().unwrap(), ip("::2"));
        assert_eq!(a.available(), u128::MAX - 3);
        // The cursor at the very last address wraps without overflow.
        a.set_next(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
        assert_eq!(
            a.allocate().unwrap(),
            ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        );
        assert_eq!(a.allocate().unwrap(), ip("::3"));

        // An ip-range inside a ULA /64.
        let mut a = alloc(PoolConfig::new(s("fd00:1::/64")).with_ip_range(s("fd00:1::100/120")));
        assert_eq!(a.allocate().unwrap(), ip("fd00:1::100"));
        assert_eq!(a.available(), 255);
    }

    #[test]
    fn many_allocations_stay_fast_and_distinct() {
        let mut a = alloc(PoolConfig::new(s("10.0.0.0/16")));
        let mut seen = BTreeSet::new();
        for _ in 0..65534 - 1 {
            assert!(seen.insert(a.allocate().unwrap()));
        }
        assert!(a.allocate().is_err());
        for i in (2..200).step_by(3) {
            a.release(ip(&format!("10.0.0.{i}"))).unwrap();
        }
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.2"));
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.5"));
    }

    #[test]
    fn cursor_round_trip() {
        let mut a = alloc(PoolConfig::new(s("10.0.0.0/24")));
        a.allocate().unwrap();
        assert_eq!(a.next_addr(), ip("10.0.0.3"));
        a.set_next(ip("10.0.0.200"));
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.200"));
        a.set_next(ip("10.9.9.9"));
        assert_eq!(a.next_addr(), ip("10.0.0.0"));
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.3"));
        // At the end of the range the search wraps to the start.
        a.set_next(ip("10.0.0.254"));
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.254"));
        assert_eq!(a.next_addr(), ip("10.0.0.255"));
        assert_eq!(a.allocate().unwrap(), ip("10.0.0.4"));
    }
}
