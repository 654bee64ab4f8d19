//! The addresses of one network: one [`AddressAllocator`] per subnet (an IPv4 subnet, an IPv6
//! subnet, or several of either), in memory; [`crate::store`] persists it.

use std::net::IpAddr;

use crate::alloc::{AddressAllocator, IpamError, PoolConfig};
use crate::subnet::{Family, Subnet};

/// The subnets of a network and their allocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkIpam {
    pools: Vec<AddressAllocator>,
}

impl NetworkIpam {
    /// Checks each subnet's configuration and that no two subnets overlap.
    pub fn new(configs: Vec<PoolConfig>) -> Result<NetworkIpam, IpamError> {
        let mut pools: Vec<AddressAllocator> = Vec::with_capacity(configs.len());
        for config in configs {
            if let Some(other) = pools.iter().find(|p| p.subnet().overlaps(&config.subnet)) {
                return Err(IpamError::Overlap {
                    subnet: config.subnet,
                    other: other.subnet(),
                });
            }
            pools.push(AddressAllocator::new(config)?);
        }
        Ok(NetworkIpam { pools })
    }

    /// The allocator of each subnet, in configuration order.
    pub fn pools(&self) -> &[AddressAllocator] {
        &self.pools
    }

    /// The configurations (gateways filled in), in order.
    pub fn configs(&self) -> Vec<PoolConfig> {
        self.pools.iter().map(|p| p.config().clone()).collect()
    }

    /// The subnets, in order.
    pub fn subnets(&self) -> impl Iterator<Item = Subnet> + '_ {
        self.pools.iter().map(|p| p.subnet())
    }

    /// The gateway of the first subnet of `family`.
    pub fn gateway(&self, family: Family) -> Option<IpAddr> {
        self.pools
            .iter()
            .find(|p| p.subnet().family() == family)
            .map(|p| p.gateway())
    }

    /// An address of `family` from the first subnet of that family with one free (dockerd
    /// tries a network's subnets in order the same way).
    pub fn allocate(&mut self, family: Family) -> Result<IpAddr, IpamError> {
        let mut first_err = None;
        for pool in self
            .pools
            .iter_mut()
            .filter(|p| p.subnet().family() == family)
        {
            match pool.allocate() {
                Ok(ip) => return Ok(ip),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or(IpamError::NoSubnetOfFamily { family }))
    }

    /// Checks that `ip` could be requested (in a subnet, not reserved, not in use).
    pub fn check_request(&self, ip: IpAddr) -> Result<(), IpamError> {
        self.pools[self.pool_for(ip)?].check_request(ip)
    }

    /// Allocates the address `ip` (`--ip`, `--ip6`).
    pub fn request(&mut self, ip: IpAddr) -> Result<(), IpamError> {
        let i = self.pool_for(ip)?;
        self.pools[i].request(ip)
    }

    /// Frees `ip`; `Ok(false)` if it was not allocated.
    pub fn release(&mut self, ip: IpAddr) -> Result<bool, IpamError> {
        let i = self.pool_for(ip)?;
        self.pools[i].release(ip)
    }

    /// True if `ip` is allocated in one of the subnets.
    pub fn is_allocated(&self, ip: IpAddr) -> bool {
        self.pools.iter().any(|p| p.is_allocated(ip))
    }

    /// Every allocated address, subnet by subnet.
    pub fn allocated(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.pools.iter().flat_map(|p| p.allocated())
    }

    pub(crate) fn pools_mut(&mut self) -> &mut [AddressAllocator] {
        &mut self.pools
    }

    fn pool_for(&self, ip: IpAddr) -> Result<usize, IpamError> {
        self.pools
            .iter()
            .position(|p| p.subnet().contains(ip))
            .ok_or_else(|| IpamError::NotInNetwork {
                ip,
                subnets: self
                    .subnets()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
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
    fn dual_stack() {
        let mut n = NetworkIpam::new(vec![
            PoolConfig::new(s("172.18.0.0/16")),
            PoolConfig::new(s("fd00:1::/64")),
        ])
        .unwrap();
        assert_eq!(n.gateway(Family::V4), Some(ip("172.18.0.1")));
        assert_eq!(n.gateway(Family::V6), Some(ip("fd00:1::1")));
        assert_eq!(n.allocate(Family::V4).unwrap(), ip("172.18.0.2"));
        assert_eq!(n.allocate(Family::V6).unwrap(), ip("fd00:1::2"));
        n.request(ip("fd00:1::99")).unwrap();
        assert!(n.is_allocated(ip("fd00:1::99")));
        assert_eq!(n.allocated().count(), 3);
        assert_eq!(n.release(ip("172.18.0.2")), Ok(true));
        let e = n.request(ip("10.0.0.1")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "address 10.0.0.1 is in none of the network's subnets (172.18.0.0/16, fd00:1::/64)"
        );
        assert!(n.check_request(ip("172.18.0.1")).is_err());
        assert_eq!(
            n.subnets().collect::<Vec<_>>(),
            vec![s("172.18.0.0/16"), s("fd00:1::/64")]
        );
        assert_eq!(n.configs()[0].gateway, Some(ip("172.18.0.1")));
    }

    #[test]
    fn family_and_overflow_to_next_subnet() {
        let mut n = NetworkIpam::new(vec![
            PoolConfig::new(s("10.0.0.0/30")),
            PoolConfig::new(s("10.0.1.0/30")),
        ])
        .unwrap();
        assert_eq!(n.allocate(Family::V4).unwrap(), ip("10.0.0.2"));
        assert_eq!(n.allocate(Family::V4).unwrap(), ip("10.0.1.2"));
        assert_eq!(
            n.allocate(Family::V4).unwrap_err(),
            IpamError::Exhausted {
                subnet: s("10.0.0.0/30"),
                ip_range: None
            }
        );
        assert_eq!(
            n.allocate(Family::V6).unwrap_err(),
            IpamError::NoSubnetOfFamily { family: Family::V6 }
        );
        assert_eq!(n.pools().len(), 2);
        assert!(NetworkIpam::new(vec![])
            .unwrap()
            .allocate(Family::V4)
            .is_err());
    }

    #[test]
    fn overlapping_subnets_are_refused() {
        let e = NetworkIpam::new(vec![
            PoolConfig::new(s("10.0.0.0/16")),
            PoolConfig::new(s("10.0.3.0/24")),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "subnet 10.0.3.0/24 overlaps subnet 10.0.0.0/16 of the same network"
        );
        let e = NetworkIpam::new(vec![
            PoolConfig::new(s("10.0.0.0/16")).with_gateway(ip("10.1.0.1"))
        ])
        .unwrap_err();
        assert!(matches!(e, IpamError::OutsideSubnet { .. }));
    }
}
