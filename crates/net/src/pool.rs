//! Address pools: where a network's subnet comes from when the user gives none.
//!
//! An [`AddressPool`] is Docker's `default-address-pools` entry: a `base` block split into
//! subnets of prefix length `size`. [`AddressPool::docker_defaults`] is dockerd's local-scope
//! list, 172.17.0.0/16 .. 172.31.0.0/16 (one /16 each) and then 192.168.0.0/16 in /20s.
//!
//! [`pick_subnet`] returns the first candidate, in pool order and then address order, that
//! overlaps nothing in a `taken` list: the caller puts there the subnets of the other berth
//! networks and what the host already uses ([`crate::routes`]). Pools are tried in the order
//! given (recent dockerd sorts them by address first; with its defaults the two orders agree,
//! and a user who lists pools most likely lists them in the order they want them used).
//! The search jumps over each blocking prefix instead of walking candidates one by one, so a
//! pool like `fd00::/8` split in /64s costs one step per blocking prefix, not 2^56.

use std::fmt;
use std::str::FromStr;

use crate::subnet::{Family, Subnet, SubnetError};

/// A block of addresses split into subnets of one size (`base=172.80.0.0/16,size=24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressPool {
    base: Subnet,
    size: u8,
}

/// Why a pool is invalid, or why no subnet could be picked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The split size is shorter than the base's prefix or longer than the address.
    #[error("invalid address pool {base}: size /{size} must be between /{} and /{max}", .base.prefix_len())]
    BadSize {
        /// The pool's base.
        base: Subnet,
        /// The size asked for.
        size: u8,
        /// The longest prefix of the family.
        max: u8,
    },
    /// The text is not `base=CIDR,size=N`.
    #[error("invalid address pool {text:?}: {reason}")]
    BadSpec {
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The base of a pool spec is not a valid subnet.
    #[error("invalid address pool {text:?}: {source}")]
    BadBase {
        /// The text given.
        text: String,
        /// The subnet parser's reason.
        #[source]
        source: SubnetError,
    },
    /// No pool of the family was given at all.
    #[error("no {family} address pool is configured")]
    NoPool {
        /// The family asked for.
        family: Family,
    },
    /// Every candidate of every pool of the family overlaps something taken.
    #[error(
        "all {family} address pools ({pools}) are used up: every candidate subnet overlaps a host \
         route or address or another network ({taken} prefixes taken); give the network a \
         --subnet or configure other default address pools"
    )]
    Exhausted {
        /// The family asked for.
        family: Family,
        /// The pools searched, as `base (/size), ...`.
        pools: String,
        /// How many taken prefixes of that family there were.
        taken: usize,
    },
}

impl AddressPool {
    /// A pool: `base` split into subnets of prefix length `size` (`size >= base.prefix_len()`).
    pub fn new(base: Subnet, size: u8) -> Result<AddressPool, PoolError> {
        let max = base.family().width();
        if size < base.prefix_len() || size > max {
            return Err(PoolError::BadSize { base, size, max });
        }
        Ok(AddressPool { base, size })
    }

    /// dockerd's local default address pools: 172.17.0.0/16 through 172.31.0.0/16 as /16s,
    /// then 192.168.0.0/16 split into /20s (16 of them): 31 IPv4 subnets in all.
    pub fn docker_defaults() -> Vec<AddressPool> {
        let mut pools: Vec<AddressPool> = (17u8..=31)
            .map(|second| AddressPool {
                base: Subnet::from_bits(
                    Family::V4,
                    u128::from(u32::from_be_bytes([172, second, 0, 0])),
                    16,
                ),
                size: 16,
            })
            .collect();
        pools.push(AddressPool {
            base: Subnet::from_bits(
                Family::V4,
                u128::from(u32::from_be_bytes([192, 168, 0, 0])),
                16,
            ),
            size: 20,
        });
        pools
    }

    /// An IPv6 unique local (RFC 4193) pool for this host: `fdXX:XXXX:XXXX::/48` split into
    /// /64s, the 40-bit global ID derived from `host_id` (berthd's persistent engine ID), so a
    /// host keeps its prefix across restarts and two hosts are unlikely to collide (dockerd 27,
    /// moby#47853, adds such a pool derived from its engine ID). The ID is a 40-bit FNV-1a
    /// digest: RFC 4193 only asks for a pseudo-random global ID, not a cryptographic one.
    pub fn ula_for_host(host_id: &[u8]) -> AddressPool {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in host_id {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Fold the 64-bit digest into 40 bits so every input bit counts.
        let global_id = u128::from((hash ^ (hash >> 40)) & 0xff_ffff_ffff);
        let bits = (0xfd_u128 << 120) | (global_id << 80);
        AddressPool {
            base: Subnet::from_bits(Family::V6, bits, 48),
            size: 64,
        }
    }

    /// The block the pool splits.
    pub fn base(&self) -> Subnet {
        self.base
    }

    /// The prefix length of the subnets it hands out.
    pub fn size(&self) -> u8 {
        self.size
    }

    /// The pool's family.
    pub fn family(&self) -> Family {
        self.base.family()
    }

    /// How many subnets the pool holds (saturating).
    pub fn subnet_count(&self) -> u128 {
        let n = u32::from(self.size - self.base.prefix_len());
        1u128.checked_shl(n).unwrap_or(u128::MAX)
    }

    /// The first candidate of the pool that overlaps none of `taken`.
    pub fn pick(&self, taken: &[Subnet]) -> Option<Subnet> {
        let family = self.family();
        let pool_last = self.base.last_bits();
        let mut candidate = self.base.bits();
        loop {
            let sub = Subnet::from_bits(family, candidate, self.size);
            // The blocker reaching furthest: jumping past it skips every candidate it covers.
            let Some(end) = taken
                .iter()
                .filter(|t| t.overlaps(&sub))
                .map(|t| t.last_bits())
                .max()
            else {
                return Some(sub);
            };
            // Overlapping prefixes nest, so `end` is either the candidate's last address or a
            // larger blocker's last address: `end + 1` is aligned to the candidate size.
            let end = end.max(sub.last_bits());
            if end >= pool_last {
                return None;
            }
            candidate = end + 1;
        }
    }
}

impl fmt::Display for AddressPool {
    /// `base=172.17.0.0/16,size=16`, the form [`FromStr`] and dockerd's
    /// `--default-address-pool` take.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "base={},size={}", self.base, self.size)
    }
}

impl FromStr for AddressPool {
    type Err = PoolError;

    /// Parses `base=CIDR,size=N` (either order), dockerd's `--default-address-pool` syntax.
    fn from_str(text: &str) -> Result<AddressPool, PoolError> {
        let bad = |reason: &str| PoolError::BadSpec {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let (mut base, mut size) = (None, None);
        for field in text.split(',') {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| bad("expected base=CIDR,size=N"))?;
            match key.trim() {
                "base" if base.is_none() => {
                    let subnet =
                        value
                            .trim()
                            .parse::<Subnet>()
                            .map_err(|source| PoolError::BadBase {
                                text: text.to_string(),
                                source,
                            })?;
                    base = Some(subnet);
                }
                "size" if size.is_none() => {
                    let v = value.trim();
                    let n = if v.is_empty() || v.len() > 3 || !v.bytes().all(|b| b.is_ascii_digit())
                    {
                        None
                    } else {
                        v.parse::<u8>().ok()
                    };
                    size = Some(n.ok_or_else(|| bad("size is not a prefix length"))?);
                }
                "base" | "size" => return Err(bad(&format!("{} given twice", key.trim()))),
                other => return Err(bad(&format!("unknown field {other:?}"))),
            }
        }
        match (base, size) {
            (Some(base), Some(size)) => AddressPool::new(base, size),
            (None, _) => Err(bad("base is missing")),
            (_, None) => Err(bad("size is missing")),
        }
    }
}

/// The first subnet of `family` from `pools` (in order) that overlaps nothing in `taken`.
///
/// `taken` holds every prefix to stay clear of: other networks' subnets and the host's routes
/// and addresses (see [`crate::routes::host_reserved`]); other families in it are ignored.
pub fn pick_subnet(
    pools: &[AddressPool],
    family: Family,
    taken: &[Subnet],
) -> Result<Subnet, PoolError> {
    let taken: Vec<Subnet> = taken
        .iter()
        .copied()
        .filter(|t| t.family() == family)
        .collect();
    let mut searched = Vec::new();
    for pool in pools.iter().filter(|p| p.family() == family) {
        if let Some(subnet) = pool.pick(&taken) {
            return Ok(subnet);
        }
        searched.push(format!("{} (/{})", pool.base, pool.size));
    }
    if searched.is_empty() {
        return Err(PoolError::NoPool { family });
    }
    Err(PoolError::Exhausted {
        family,
        pools: searched.join(", "),
        taken: taken.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Subnet {
        text.parse().unwrap()
    }

    #[test]
    fn docker_default_pools() {
        let pools = AddressPool::docker_defaults();
        assert_eq!(pools.len(), 16);
        assert_eq!(pools[0].to_string(), "base=172.17.0.0/16,size=16");
        assert_eq!(pools[14].to_string(), "base=172.31.0.0/16,size=16");
        assert_eq!(pools[15].to_string(), "base=192.168.0.0/16,size=20");
        let total: u128 = pools.iter().map(|p| p.subnet_count()).sum();
        assert_eq!(total, 15 + 16);
    }

    #[test]
    fn picks_in_order_skipping_taken() {
        let pools = AddressPool::docker_defaults();
        assert_eq!(
            pick_subnet(&pools, Family::V4, &[]).unwrap(),
            s("172.17.0.0/16")
        );
        assert_eq!(
            pick_subnet(&pools, Family::V4, &[s("172.17.0.0/16")]).unwrap(),
            s("172.18.0.0/16")
        );
        // A small route inside a candidate blocks the whole candidate.
        assert_eq!(
            pick_subnet(
                &pools,
                Family::V4,
                &[s("172.17.3.0/24"), s("172.18.0.1/32")]
            )
            .unwrap(),
            s("172.19.0.0/16")
        );
        // A big route covering several pools is jumped over at once.
        assert_eq!(
            pick_subnet(&pools, Family::V4, &[s("172.16.0.0/12")]).unwrap(),
            s("192.168.0.0/20")
        );
        // Inside 192.168.0.0/16: a home LAN 192.168.1.0/24 blocks the first /20 only.
        let taken = [s("172.16.0.0/12"), s("192.168.1.0/24")];
        assert_eq!(
            pick_subnet(&pools, Family::V4, &taken).unwrap(),
            s("192.168.16.0/20")
        );
        // Other families in `taken` are ignored; the default route must not be in `taken`
        // (routes::host_reserved leaves it out), but an IPv6 one is harmless here.
        assert_eq!(
            pick_subnet(&pools, Family::V4, &[s("::/0")]).unwrap(),
            s("172.17.0.0/16")
        );
    }

    #[test]
    fn exhausted_pools_are_a_clear_error() {
        let pools = AddressPool::docker_defaults();
        let err = pick_subnet(
            &pools,
            Family::V4,
            &[s("172.16.0.0/12"), s("192.168.0.0/16")],
        )
        .unwrap_err();
        assert!(matches!(
            err,
            PoolError::Exhausted {
                family: Family::V4,
                taken: 2,
                ..
            }
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("172.17.0.0/16 (/16)") && msg.contains("192.168.0.0/16 (/20)"),
            "{msg}"
        );
        assert!(msg.contains("--subnet"), "{msg}");

        // Every one of the 31 subnets taken one by one.
        let mut taken = Vec::new();
        while let Ok(next) = pick_subnet(&pools, Family::V4, &taken) {
            taken.push(next);
        }
        assert_eq!(taken.len(), 31);
        assert_eq!(taken[30], s("192.168.240.0/20"));

        assert_eq!(
            pick_subnet(&pools, Family::V6, &[]),
            Err(PoolError::NoPool { family: Family::V6 })
        );
    }

    #[test]
    fn partially_blocked_and_overlapping_pools() {
        let pools = [
            AddressPool::new(s("10.10.0.0/16"), 24).unwrap(),
            AddressPool::new(s("10.10.0.0/20"), 24).unwrap(),
        ];
        let taken = [s("10.10.0.0/22"), s("10.10.4.128/25"), s("10.10.6.0/23")];
        assert_eq!(
            pick_subnet(&pools, Family::V4, &taken).unwrap(),
            s("10.10.5.0/24")
        );
        let taken = [s("10.10.0.0/17"), s("10.10.128.0/17")];
        assert!(matches!(
            pick_subnet(&pools, Family::V4, &taken),
            Err(PoolError::Exhausted { .. })
        ));
        // A blocker reaching past the pool's end.
        let pool = AddressPool::new(s("10.10.0.0/24"), 26).unwrap();
        assert_eq!(pool.pick(&[s("10.10.0.0/25")]), Some(s("10.10.0.128/26")));
        assert_eq!(pool.pick(&[s("10.10.0.64/26"), s("10.0.0.0/8")]), None);
        // Size equal to the base: one candidate.
        let whole = AddressPool::new(s("0.0.0.0/0"), 0).unwrap();
        assert_eq!(whole.pick(&[]), Some(s("0.0.0.0/0")));
        assert_eq!(whole.pick(&[s("1.2.3.4/32")]), None);
    }

    #[test]
    fn ipv6_pools_skip_without_walking() {
        let pool = AddressPool::new(s("fd00::/8"), 64).unwrap();
        assert_eq!(pool.subnet_count(), 1u128 << 56);
        assert_eq!(pool.pick(&[]), Some(s("fd00::/64")));
        // A /9 blocker covers 2^55 candidates: one jump.
        assert_eq!(
            pool.pick(&[s("fd00::/9"), s("fd80::/64")]),
            Some(s("fd80:0:0:1::/64"))
        );
        assert_eq!(pool.pick(&[s("fd00::/8")]), None);
        assert_eq!(pool.pick(&[s("::/0")]), None);
        let all = AddressPool::new(s("::/0"), 0).unwrap();
        assert_eq!(all.subnet_count(), 1);
        assert_eq!(all.pick(&[]), Some(s("::/0")));
    }

    #[test]
    fn ula_pool_is_stable_per_host() {
        let a = AddressPool::ula_for_host(b"engine-id-1");
        assert_eq!(a, AddressPool::ula_for_host(b"engine-id-1"));
        assert_ne!(a, AddressPool::ula_for_host(b"engine-id-2"));
        assert_eq!(a.size(), 64);
        assert_eq!(a.base().prefix_len(), 48);
        assert!(s("fd00::/8").contains_subnet(&a.base()));
        let first = pick_subnet(&[a], Family::V6, &[]).unwrap();
        assert_eq!(first.network(), a.base().network());
        assert_eq!(first.prefix_len(), 64);
    }

    #[test]
    fn pool_specs() {
        let p: AddressPool = "base=172.80.0.0/16,size=24".parse().unwrap();
        assert_eq!(p.base(), s("172.80.0.0/16"));
        assert_eq!(p.size(), 24);
        assert_eq!(p.to_string().parse::<AddressPool>().unwrap(), p);
        let p: AddressPool = " size=64 , base=fd00::/56".parse().unwrap();
        assert_eq!(p.family(), Family::V6);

        let err = "base=172.80.0.0/16,size=8"
            .parse::<AddressPool>()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid address pool 172.80.0.0/16: size /8 must be between /16 and /32"
        );
        assert!(matches!(
            AddressPool::new(s("fd00::/8"), 129),
            Err(PoolError::BadSize { max: 128, .. })
        ));
        for bad in [
            "",
            "base=10.0.0.0/8",
            "size=24",
            "base=10.0.0.0/8,size=x",
            "base=10.0.0.0/8,size=24,x=1",
            "base=10.0.0.0/8,base=10.0.0.0/8,size=9",
            "10.0.0.0/8",
        ] {
            let err = bad.parse::<AddressPool>().unwrap_err();
            assert!(matches!(err, PoolError::BadSpec { .. }), "{bad}: {err:?}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        let err = "base=10.0.0.1/8,size=24"
            .parse::<AddressPool>()
            .unwrap_err();
        assert!(matches!(err, PoolError::BadBase { .. }));
        assert!(std::error::Error::source(&err)
            .unwrap()
            .to_string()
            .contains("it should be 10.0.0.0/8"));
    }
}
