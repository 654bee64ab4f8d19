//! One bridge network (the default `bridge` or a user-defined one): its device, berth's
//! nftables table for it, and the containers' endpoints on it.
use super::endpoint::{Endpoint, EndpointDir};
use super::host::{choose_subnet, claim_bridge, host_lock};
use super::ipam::Ipam;
use super::ports::Wanted;
use crate::util::{internal, random_id};
use crate::{EngineConfig, Error, Result};
use berth_net::ports::Reservation;
use berth_net::{
    mac_for, Bridge, Family, Firewall, IpamError, Netlink, ReserveError, StoreError, Subnet,
    VethConfig,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex, MutexGuard};

/// What is kept of the default network between daemon runs (`<root>/network/bridge.json`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Meta {
    id: String,
    bridge: String,
}

struct Live {
    ep: Endpoint,
    _held: Vec<Reservation>,
}

/// How a container joins a network: the address asked for (`--ip`), its aliases, the name
/// of its interface and whether the network may give it its default route.
#[derive(Debug, Clone, Default)]
pub(crate) struct Join {
    pub ip: Option<Ipv4Addr>,
    /// `--ip6` (on a network with IPv6).
    pub ip6: Option<Ipv6Addr>,
    pub aliases: Vec<String>,
    pub ifname: String,
    pub default_route: bool,
}

pub(super) struct BridgeNet {
    id: String,
    /// The network's name (`bridge` for the default one).
    name: String,
    internal: bool,
    dev: Bridge,
    index: u32,
    fw: Firewall,
    nl: Mutex<Netlink>,
    ipam: Arc<Ipam>,
    endpoints: EndpointDir,
    live: Mutex<HashMap<String, Live>>,
    /// The default network's claim on its bridge name (one daemon per bridge).
    claim: Mutex<Option<UnixDatagram>>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| Error::internal_msg("network state lock poisoned"))
}

/// A user network's device: name, subnet, gateway, whether it is internal.
pub(super) struct UserDev<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub bridge: &'a str,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    pub internal: bool,
    /// IPv6 subnet and gateway (`--ipv6`).
    pub ipv6: Option<(Subnet, Ipv6Addr)>,
}

impl BridgeNet {
    /// The default bridge network (subnet kept from the bridge a previous daemon left, else
    /// the one recorded, else picked from Docker's default pools clear of every host route).
    pub(super) fn open_default(
        cfg: &EngineConfig,
        name: &str,
        ipam: Arc<Ipam>,
    ) -> Result<BridgeNet> {
        let dir = cfg.root.join("network");
        let meta_path = dir.join("bridge.json");
        let meta = match std::fs::read(&meta_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Meta>(&b).ok())
        {
            Some(m) if m.bridge == name => m,
            _ => {
                let m = Meta {
                    id: random_id()?,
                    bridge: name.to_string(),
                };
                crate::util::write_json_atomic(&meta_path, &m)?;
                m
            }
        };
        let claim = claim_bridge(name)?;
        let mut nl = Netlink::new().map_err(|e| internal("open rtnetlink", e))?;
        let host_lock = host_lock()?;
        let (subnet, gateway) = choose_subnet(&mut nl, &mut *ipam.lock()?, &meta.id, name)?;
        let user = UserDev {
            id: &meta.id,
            name: super::DEFAULT_NETWORK,
            bridge: name,
            subnet,
            gateway,
            internal: false,
            ipv6: None,
        };
        let net = Self::open_dev(nl, &user, ipam, EndpointDir::open(dir.join("endpoints"))?)?;
        drop(host_lock);
        *lock(&net.claim)? = Some(claim);
        Ok(net)
    }

    /// A network's device and table, made if missing (a user network at creation or at
    /// start-up; the default one).
    pub(super) fn open_dev(
        mut nl: Netlink,
        u: &UserDev<'_>,
        ipam: Arc<Ipam>,
        endpoints: EndpointDir,
    ) -> Result<BridgeNet> {
        let mtu = Bridge::uplink_mtu(&mut nl).map_err(|e| internal("read the uplink MTU", e))?;
        let dev = Bridge {
            name: u.bridge.to_string(),
            subnet: u.subnet,
            gateway: u.gateway,
            mtu,
            ipv6: u.ipv6,
        };
        let st = dev
            .ensure(&mut nl)
            .map_err(|e| internal(format!("set up bridge {}", u.bridge), e))?;
        crate::mark("net: bridge ensured");
        let fw = Firewall::new(u.bridge, u.subnet)
            .internal(u.internal)
            .ipv6(u.ipv6.map(|(s, _)| s));
        // (A bridge made now has no table yet: no need to ask nft.)
        let have_table = !st.created
            && fw
                .exists()
                .map_err(|e| internal("read berth's nftables table", e))?;
        if !have_table {
            fw.install()
                .map_err(|e| internal(format!("install nftables table {}", fw.table()), e))?;
        }
        crate::mark("net: table ensured");
        if !u.internal {
            super::host::ensure_forward(u.bridge)?;
            if u.ipv6.is_some() {
                super::host::ensure_forward6(u.bridge)?;
            }
        }
        tracing::info!(
            "network {}: bridge {} {} gateway {}{} mtu {mtu}{}",
            u.name,
            u.bridge,
            u.subnet,
            u.gateway,
            u.ipv6
                .map_or(String::new(), |(s, g)| format!(", {s} gateway {g}")),
            if st.created { " (created)" } else { "" }
        );
        Ok(BridgeNet {
            id: u.id.to_string(),
            name: u.name.to_string(),
            internal: u.internal,
            dev,
            index: st.index,
            fw,
            nl: Mutex::new(nl),
            ipam,
            endpoints,
            live: Mutex::new(HashMap::new()),
            claim: Mutex::new(None),
        })
    }

    pub(super) fn id(&self) -> &str {
        &self.id
    }

    pub(super) fn gateway(&self) -> std::net::Ipv4Addr {
        self.dev.gateway
    }

    /// Subnet, gateway and device name.
    pub(super) fn endpoints_gateway(&self) -> (Subnet, Ipv4Addr, String) {
        (self.dev.subnet, self.dev.gateway, self.dev.name.clone())
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn endpoint(&self, id: &str) -> Option<Endpoint> {
        lock(&self.live)
            .ok()
            .and_then(|l| l.get(id).map(|l| l.ep.clone()))
    }

    /// The endpoints of the containers on this network.
    pub(super) fn endpoints(&self) -> Vec<Endpoint> {
        lock(&self.live)
            .map(|l| l.values().map(|l| l.ep.clone()).collect())
            .unwrap_or_default()
    }

    pub(super) fn connect(
        &self,
        id: &str,
        name: &str,
        wanted: &[Wanted],
        netns: BorrowedFd<'_>,
        join: &Join,
    ) -> Result<()> {
        crate::mark("net: connect");
        // A leftover of a previous run (a crash) first.
        self.disconnect(id);
        crate::mark("net: leftovers checked");
        let endpoint_id = random_id()?;
        // (An internal network publishes nothing, as dockerd.)
        let wanted = if self.internal { &[][..] } else { wanted };
        let (ports, held) = reserve_all(wanted).map_err(|e| {
            internal(
                format!(
                    "driver failed programming external connectivity on endpoint {} ({endpoint_id})",
                    name.trim_start_matches('/')
                ),
                e,
            )
        })?;
        let ip = self.allocate(join.ip)?;
        crate::mark("net: address allocated");
        let ip6 = match self.allocate6(join.ip6) {
            Ok(v) => v,
            Err(e) => {
                let _ = self
                    .ipam
                    .lock()
                    .map(|mut i| i.release(&self.id, IpAddr::V4(ip)));
                return Err(e);
            }
        };
        let ep = Endpoint {
            container: id.to_string(),
            name: name.trim_start_matches('/').to_string(),
            network_id: self.id.clone(),
            endpoint_id,
            ip,
            prefix_len: self.dev.subnet.prefix_len(),
            gateway: self.dev.gateway,
            mac: mac_for(ip).to_string(),
            veth: self.veth_name(id),
            ifname: join.ifname.clone(),
            aliases: join.aliases.clone(),
            requested_ip: join.ip,
            ports,
            ip6,
            prefix_len6: self.dev.ipv6.map_or(0, |(s, _)| s.prefix_len()),
            gateway6: self.dev.ipv6.map(|(_, g)| g),
            requested_ip6: join.ip6,
        };
        if let Err(e) = self.endpoints.write(&ep) {
            let _ = self.ipam.lock().map(|mut i| {
                for a in ep.addresses() {
                    let _ = i.release(&self.id, a);
                }
            });
            return Err(e);
        }
        crate::mark("net: endpoint written");
        if let Err(e) = self.plumb(&ep, netns, join.default_route && !self.internal) {
            self.cleanup(&ep);
            return Err(e);
        }
        crate::mark("net: plumbed");
        lock(&self.live)?.insert(id.to_string(), Live { ep, _held: held });
        Ok(())
    }

    /// An address: the one asked for (in the subnet, not the gateway, not taken), else the
    /// next free one.
    fn allocate(&self, want: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
        let mut ipam = self.ipam.lock()?;
        let Some(ip) = want else {
            return match ipam.allocate(&self.id, Family::V4) {
                Ok(IpAddr::V4(ip)) => Ok(ip),
                Ok(other) => Err(Error::internal_msg(format!("IPAM gave {other} for IPv4"))),
                Err(e) => Err(internal(
                    format!("allocate an address on network {}", self.name),
                    e,
                )),
            };
        };
        match ipam.request(&self.id, IpAddr::V4(ip)) {
            Ok(()) => Ok(ip),
            Err(StoreError::Ipam { source, .. }) => Err(match *source {
                e @ IpamError::InUse { .. } => Error::Conflict(format!(
                    "Address already in use: {e} (network {})",
                    self.name
                )),
                e => Error::BadParameter(format!(
                    "invalid address {ip} on network {}: {e}",
                    self.name
                )),
            }),
            Err(e) => Err(internal(
                format!("allocate {ip} on network {}", self.name),
                e,
            )),
        }
    }

    /// The IPv6 address on a network with IPv6: the one asked for (`--ip6`), else the next
    /// free one; none on a network without IPv6 (`--ip6` there is a 400).
    fn allocate6(&self, want: Option<Ipv6Addr>) -> Result<Option<Ipv6Addr>> {
        if self.dev.ipv6.is_none() {
            return match want {
                Some(ip) => Err(Error::BadParameter(format!(
                    "invalid address {ip}: network {} has no IPv6 (create it with --ipv6)",
                    self.name
                ))),
                None => Ok(None),
            };
        }
        let mut ipam = self.ipam.lock()?;
        let Some(ip) = want else {
            return match ipam.allocate(&self.id, Family::V6) {
                Ok(IpAddr::V6(ip)) => Ok(Some(ip)),
                Ok(other) => Err(Error::internal_msg(format!("IPAM gave {other} for IPv6"))),
                Err(e) => Err(internal(
                    format!("allocate an IPv6 address on network {}", self.name),
                    e,
                )),
            };
        };
        match ipam.request(&self.id, IpAddr::V6(ip)) {
            Ok(()) => Ok(Some(ip)),
            Err(StoreError::Ipam { source, .. }) => Err(match *source {
                e @ IpamError::InUse { .. } => Error::Conflict(format!(
                    "Address already in use: {e} (network {})",
                    self.name
                )),
                e => Error::BadParameter(format!(
                    "invalid address {ip} on network {}: {e}",
                    self.name
                )),
            }),
            Err(e) => Err(internal(
                format!("allocate {ip} on network {}", self.name),
                e,
            )),
        }
    }

    /// The veth pair and the published ports' rules.
    fn plumb(&self, ep: &Endpoint, netns: BorrowedFd<'_>, default_route: bool) -> Result<()> {
        let veth = VethConfig {
            host_name: ep.veth.clone(),
            ip: ep.ip,
            ip6: ep.ip6,
        };
        self.dev
            .attach_as(
                &mut *lock(&self.nl)?,
                self.index,
                &veth,
                netns,
                ep.ifname(),
                default_route,
            )
            .inspect(|_| crate::mark("net: veth attached"))
            .map_err(|e| {
                internal(
                    format!("connect container {} to {}", ep.container, self.dev.name),
                    e,
                )
            })?;
        self.fw
            .publish(&ep.container, ep.ip, &ep.ports)
            .map_err(|e| internal("publish ports", e))
    }

    /// Take container `id` off the network; whether it was on it.
    pub(super) fn disconnect(&self, id: &str) -> bool {
        let ep = lock(&self.live)
            .ok()
            .and_then(|mut l| l.remove(id))
            .map(|l| l.ep)
            .or_else(|| self.endpoints.load(id));
        match ep {
            Some(ep) => {
                self.cleanup(&ep);
                true
            }
            None => false,
        }
    }

    /// Undo an endpoint: rules, veth, address, file. Each step is tried; failures logged.
    fn cleanup(&self, ep: &Endpoint) {
        crate::mark("net: cleanup");
        if !ep.ports.is_empty() {
            if let Err(e) = self.fw.unpublish(&ep.container) {
                tracing::warn!("remove the published ports of {}: {e}", ep.container);
            }
        }
        if let Ok(mut nl) = lock(&self.nl) {
            if let Err(e) = self.dev.detach(&mut nl, Some(self.index), &ep.veth) {
                tracing::warn!("delete veth {} of {}: {e}", ep.veth, ep.container);
            }
        }
        crate::mark("net: veth deleted");
        super::shaping::remove(&ep.container, &ep.veth);
        crate::mark("net: shaping removed");
        if let Ok(mut ipam) = self.ipam.lock() {
            for a in ep.addresses() {
                if let Err(e) = ipam.release(&self.id, a) {
                    tracing::warn!("release {a} of {}: {e}", ep.container);
                }
            }
        }
        crate::mark("net: address released");
        self.endpoints.remove(&ep.container);
        crate::mark("net: cleaned up");
    }

    /// At start-up: keep the endpoints of running containers (ports reserved again, rules
    /// back), remove the others. Returns the addresses kept, for the IPAM reconciliation.
    pub(super) fn restore(&self, running: &dyn Fn(&str) -> bool) -> Vec<(String, IpAddr)> {
        for ep in self.endpoints.all() {
            if !running(&ep.container) {
                self.cleanup(&ep);
                continue;
            }
            let mut held = Vec::new();
            for m in &ep.ports {
                match berth_net::reserve(m) {
                    Ok((_, h)) => held.push(h),
                    Err(e) => tracing::warn!(
                        "reserve port {} of {} again: {e}",
                        m.host_port,
                        ep.container
                    ),
                }
            }
            match self.fw.rule_handles(&ep.container) {
                Ok(h) if h.is_empty() => {
                    if let Err(e) = self.fw.publish(&ep.container, ep.ip, &ep.ports) {
                        tracing::warn!("publish the ports of {} again: {e}", ep.container);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("read the rules of {}: {e}", ep.container),
            }
            if let Ok(mut l) = lock(&self.live) {
                l.insert(ep.container.clone(), Live { ep, _held: held });
            }
        }
        lock(&self.live)
            .map(|l| {
                l.values()
                    .flat_map(|l| l.ep.addresses())
                    .map(|a| (self.id.clone(), a))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Let go of the bridge name (the engine is shut down: a next one may take it over).
    /// The ports held for running containers are let go as well: the next daemon holds them
    /// again (see [`BridgeNet::restore`]).
    pub(super) fn release_claim(&self) {
        if let Ok(mut l) = self.live.lock() {
            l.clear();
        }
        if let Ok(mut c) = self.claim.lock() {
            c.take();
        }
    }

    /// Delete the firewall table and the bridge.
    pub(super) fn teardown(&self) {
        if let Err(e) = self.fw.remove() {
            tracing::warn!("delete nftables table {}: {e}", self.fw.table());
        }
        crate::mark("net: table deleted");
        if let Ok(mut nl) = lock(&self.nl) {
            if let Err(e) = self.dev.delete(&mut nl) {
                tracing::warn!("delete bridge {}: {e}", self.dev.name);
            }
        }
    }

    /// The host end of a container's veth pair: `veth` + 11 hex digits of the container ID
    /// on the default network; `vb` + 7 of the container's + 6 of the network's on a user
    /// network (a container may be on several). 15 bytes, IFNAMSIZ-1.
    fn veth_name(&self, id: &str) -> String {
        if self.name == super::DEFAULT_NETWORK {
            format!("veth{}", &id[..id.len().min(11)])
        } else {
            format!(
                "vb{}{}",
                &id[..id.len().min(7)],
                &self.id[..self.id.len().min(6)]
            )
        }
    }
}

fn reserve_all(
    wanted: &[Wanted],
) -> std::result::Result<(Vec<berth_net::PortMapping>, Vec<Reservation>), ReserveError> {
    let mut ports = Vec::new();
    let mut held = Vec::new();
    for w in wanted {
        let mut last = None;
        let mut got = None;
        for m in w.candidates() {
            match berth_net::reserve(&m) {
                Ok(r) => {
                    got = Some(r);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        match (got, last) {
            (Some((m, h)), _) => {
                ports.push(m);
                held.push(h);
            }
            (None, Some(e)) => return Err(e),
            (None, None) => {}
        }
    }
    Ok((ports, held))
}
