//! The bridge driver's device work: the bridge with its gateway address, and one veth pair per
//! container (host end a port of the bridge, `eth0` in the container's namespace with its
//! address, MAC and default route). A network with IPv6 (`--ipv6`) gives the bridge its IPv6
//! gateway too, and `eth0` its IPv6 address (`nodad`: usable at once) and IPv6 default route.
//! All through [`Netlink`]; sysctls through `/proc/sys`.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use crate::mac::mac_for;
use crate::netlink::{Netlink, NetlinkError, VethPeer};
use crate::subnet::Subnet;

/// The name of the container's end of its veth pair.
pub const CONTAINER_IFNAME: &str = "eth0";

/// MTU when the host has no default route to take it from.
pub const DEFAULT_MTU: u32 = 1500;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(
        "{name} exists and is not a bridge (it is a {kind:?} device): choose another --bridge"
    )]
    NotABridge { name: String, kind: String },
    #[error("bridge {name} has address {have}, not the gateway {want} of network {subnet}")]
    OtherAddress {
        name: String,
        have: String,
        want: Ipv4Addr,
        subnet: Subnet,
    },
    #[error("bridge {0} vanished while being set up")]
    Vanished(String),
    #[error("{0} is not an IPv4 subnet")]
    NotIpv4(Subnet),
    #[error("{0} is not an IPv6 subnet")]
    NotIpv6(Subnet),
    #[error("write {path}: {source}")]
    Sysctl {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A bridge network's device: its name, subnet and gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub name: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    pub mtu: u32,
    /// The IPv6 subnet and gateway of a network made with `--ipv6`.
    pub ipv6: Option<(Subnet, Ipv6Addr)>,
}

/// What [`Bridge::ensure`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeState {
    pub index: u32,
    /// The bridge was made now (else it was there already, e.g. from a previous daemon).
    pub created: bool,
}

/// A container's end of the bridge: the veth names and the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethConfig {
    /// Host end (a port of the bridge).
    pub host_name: String,
    pub ip: Ipv4Addr,
    /// The IPv6 address on an IPv6 network.
    pub ip6: Option<Ipv6Addr>,
}

impl Bridge {
    /// The IPv4 address of the existing link `name`, if it exists and has one (a bridge a
    /// previous daemon made: its subnet is kept).
    pub fn existing_address(
        nl: &mut Netlink,
        name: &str,
    ) -> Result<Option<(Ipv4Addr, u8)>, BridgeError> {
        let Some(link) = nl.link(name)? else {
            return Ok(None);
        };
        Ok(nl.ipv4_addresses(link.index)?.into_iter().next())
    }

    /// The MTU of the host's uplink (the link of the IPv4 default route), else
    /// [`DEFAULT_MTU`].
    pub fn uplink_mtu(nl: &mut Netlink) -> Result<u32, BridgeError> {
        let Some(index) = nl.default_route_link()? else {
            return Ok(DEFAULT_MTU);
        };
        Ok(nl.link_by_index(index)?.map_or(DEFAULT_MTU, |l| {
            if l.mtu > 0 {
                l.mtu
            } else {
                DEFAULT_MTU
            }
        }))
    }

    /// Make the bridge if it is missing, give it the gateway address, set it up and let it
    /// route 127.0.0.1-sourced packets (published ports on loopback are DNATed to it).
    pub fn ensure(&self, nl: &mut Netlink) -> Result<BridgeState, BridgeError> {
        if !self.subnet.is_ipv4() {
            return Err(BridgeError::NotIpv4(self.subnet));
        }
        let mut created = false;
        let link = match nl.link(&self.name)? {
            Some(l) => l,
            None => {
                nl.add_bridge(&self.name, self.mtu)?;
                created = true;
                nl.link(&self.name)?
                    .ok_or_else(|| BridgeError::Vanished(self.name.clone()))?
            }
        };
        if link.kind != "bridge" {
            return Err(BridgeError::NotABridge {
                name: self.name.clone(),
                kind: link.kind,
            });
        }
        let have = nl.ipv4_addresses(link.index)?;
        let prefix = self.subnet.prefix_len();
        if !have.contains(&(self.gateway, prefix)) {
            if let Some((ip, p)) = have.first() {
                return Err(BridgeError::OtherAddress {
                    name: self.name.clone(),
                    have: format!("{ip}/{p}"),
                    want: self.gateway,
                    subnet: self.subnet,
                });
            }
            nl.add_ipv4_address(link.index, self.gateway, prefix)?;
        }
        if let Some((subnet6, gw6)) = self.ipv6 {
            if !subnet6.is_ipv6() {
                return Err(BridgeError::NotIpv6(subnet6));
            }
            write_sysctl(&conf6_path(&self.name, "disable_ipv6"), "0")?;
            let have6 = nl.ipv6_addresses(link.index)?;
            if !have6.contains(&(gw6, subnet6.prefix_len())) {
                nl.add_ipv6_address(link.index, gw6, subnet6.prefix_len())?;
            }
        }
        nl.set_up(link.index)?;
        write_sysctl(&conf_path(&self.name, "route_localnet"), "1")?;
        Ok(BridgeState {
            index: link.index,
            created,
        })
    }

    /// Delete the bridge (its ports go with it); `Ok(false)` if it was gone.
    pub fn delete(&self, nl: &mut Netlink) -> Result<bool, BridgeError> {
        Ok(nl.del_link(&self.name)?)
    }

    /// Connect the namespace `netns` to the bridge: a veth pair whose `eth0` end has `ip`, the
    /// MAC derived from it and the default route via the gateway. Nothing is left if it fails.
    pub fn attach(
        &self,
        nl: &mut Netlink,
        bridge_index: u32,
        veth: &VethConfig,
        netns: BorrowedFd<'_>,
    ) -> Result<(), BridgeError> {
        self.attach_as(nl, bridge_index, veth, netns, CONTAINER_IFNAME, true)
    }

    /// [`Bridge::attach`] with the container's end named `ifname` (`eth1`... for a second
    /// network); the default route via the gateway only if `default_route` and the namespace
    /// has none yet (a container on several networks routes out through the first).
    pub fn attach_as(
        &self,
        nl: &mut Netlink,
        bridge_index: u32,
        veth: &VethConfig,
        netns: BorrowedFd<'_>,
        ifname: &str,
        default_route: bool,
    ) -> Result<(), BridgeError> {
        let peer = VethPeer {
            name: ifname,
            mac: mac_for(veth.ip),
            mtu: self.mtu,
            netns,
        };
        nl.add_veth(&veth.host_name, bridge_index, self.mtu, &peer)?;
        let inside = || -> Result<(), NetlinkError> {
            let mut cnl = Netlink::in_netns(netns)?;
            let link = cnl.link(ifname)?.ok_or_else(|| NetlinkError::Request {
                what: format!("find {ifname} in the container"),
                source: io::Error::from_raw_os_error(libc::ENODEV),
            })?;
            cnl.add_ipv4_address(link.index, veth.ip, self.subnet.prefix_len())?;
            let v6 = self.ipv6.zip(veth.ip6);
            if let Some(((subnet6, _), ip6)) = v6 {
                cnl.add_ipv6_address(link.index, ip6, subnet6.prefix_len())?;
            }
            cnl.set_up(link.index)?;
            if default_route && cnl.default_route_link()?.is_none() {
                cnl.add_default_route(self.gateway)?;
            }
            if let Some(((_, gw6), _)) = v6 {
                if default_route && !cnl.has_default_route6()? {
                    cnl.add_default_route6(gw6)?;
                }
            }
            Ok(())
        };
        if let Err(e) = inside() {
            let _ = nl.del_link(&veth.host_name);
            return Err(e.into());
        }
        Ok(())
    }

    /// The first `ethN` name not taken in the namespace `netns`.
    pub fn free_ifname(netns: BorrowedFd<'_>) -> Result<String, BridgeError> {
        let mut cnl = Netlink::in_netns(netns)?;
        for n in 0..1024 {
            let name = format!("eth{n}");
            if cnl.link(&name)?.is_none() {
                return Ok(name);
            }
        }
        Err(BridgeError::Netlink(NetlinkError::Request {
            what: "find a free ethN name in the container".into(),
            source: io::Error::from_raw_os_error(libc::ENFILE),
        }))
    }

    /// Remove a container's veth pair (deleting one end deletes both); `Ok(false)` if gone.
    /// Only a port of this bridge is deleted (a name can be reused by anyone after a crash).
    pub fn detach(
        &self,
        nl: &mut Netlink,
        bridge_index: Option<u32>,
        host_name: &str,
    ) -> Result<bool, BridgeError> {
        match nl.link(host_name)? {
            Some(l) if l.kind == "veth" && (bridge_index.is_none() || l.master == bridge_index) => {
                Ok(nl.del_link(host_name)?)
            }
            _ => Ok(false),
        }
    }
}

/// `/proc/sys/net/ipv4/conf/<ifname>/<key>`.
pub fn conf_path(ifname: &str, key: &str) -> PathBuf {
    Path::new("/proc/sys/net/ipv4/conf").join(ifname).join(key)
}

/// `/proc/sys/net/ipv6/conf/<ifname>/<key>`.
pub fn conf6_path(ifname: &str, key: &str) -> PathBuf {
    Path::new("/proc/sys/net/ipv6/conf").join(ifname).join(key)
}

/// The value of `net.ipv6.conf.all.forwarding` in the calling thread's namespace.
pub fn ipv6_forwarding() -> Result<bool, BridgeError> {
    let p = PathBuf::from("/proc/sys/net/ipv6/conf/all/forwarding");
    std::fs::read_to_string(&p)
        .map(|s| s.trim() == "1")
        .map_err(|source| BridgeError::Sysctl { path: p, source })
}

/// Set `net.ipv6.conf.all.forwarding`.
pub fn set_ipv6_forwarding(on: bool) -> Result<(), BridgeError> {
    write_sysctl(
        Path::new("/proc/sys/net/ipv6/conf/all/forwarding"),
        if on { "1" } else { "0" },
    )
}

/// The value of `net.ipv4.ip_forward` in the calling thread's namespace.
pub fn ip_forward() -> Result<bool, BridgeError> {
    let p = PathBuf::from("/proc/sys/net/ipv4/ip_forward");
    std::fs::read_to_string(&p)
        .map(|s| s.trim() == "1")
        .map_err(|source| BridgeError::Sysctl { path: p, source })
}

/// Set `net.ipv4.ip_forward`.
pub fn set_ip_forward(on: bool) -> Result<(), BridgeError> {
    write_sysctl(
        Path::new("/proc/sys/net/ipv4/ip_forward"),
        if on { "1" } else { "0" },
    )
}

fn write_sysctl(path: &Path, value: &str) -> Result<(), BridgeError> {
    std::fs::write(path, value).map_err(|source| BridgeError::Sysctl {
        path: path.to_path_buf(),
        source,
    })
}
