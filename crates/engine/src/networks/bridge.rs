//! The default bridge network: its subnet (kept from the bridge a previous daemon left, else
//! the one recorded, else picked from Docker's default pools clear of every host route), the
//! device, berth's nftables table, and the containers' endpoints on it.
use super::endpoint::{Endpoint, EndpointDir};
use super::ports::Wanted;
use crate::util::{internal, random_id};
use crate::{EngineConfig, Error, Result};
use berth_net::ports::Reservation;
use berth_net::{
    host_reserved, mac_for, AddressPool, Bridge, Family, Firewall, IpamStore, Netlink, PoolConfig,
    ProcNet, ReserveError, RouteFilter, Subnet, VethConfig,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// Serialises subnet picking between berth daemons on this host (tests run several): one
/// picks and configures its bridge before the next reads the host's routes. An abstract
/// unix socket name (see [`claim`]).
const HOST_LOCK: &str = "berth-net-subnets";

/// Records that berth turned `net.ipv4.ip_forward` on (host-wide, on /run: it lasts as long
/// as the boot). The last berth daemon to remove its bridge turns it off again.
const FORWARD_MARKER: &str = "/run/berth-net-ip_forward";

/// What is kept of the network between daemon runs (`<root>/network/bridge.json`).
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

pub(super) struct BridgeNet {
    id: String,
    dev: Bridge,
    index: u32,
    fw: Firewall,
    nl: Mutex<Netlink>,
    ipam: Mutex<IpamStore>,
    endpoints: EndpointDir,
    live: Mutex<HashMap<String, Live>>,
    /// Present when this host's `ip_forward` was turned on by berth ([`FORWARD_MARKER`]).
    forward_marker: PathBuf,
    /// This daemon's claim on the bridge name (one daemon per bridge), held until shutdown.
    claim: Mutex<Option<UnixDatagram>>,
}

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| Error::internal_msg("network state lock poisoned"))
}

impl BridgeNet {
    pub(super) fn open(cfg: &EngineConfig, name: &str) -> Result<BridgeNet> {
        let dir = cfg.root.join("network");
        let mut ipam = IpamStore::open(dir.join("ipam"))
            .map_err(|e| internal(format!("open the IPAM store in {}", dir.display()), e))?;
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
        let (subnet, gateway) = choose_subnet(&mut nl, &mut ipam, &meta.id, name)?;
        let mtu = Bridge::uplink_mtu(&mut nl).map_err(|e| internal("read the uplink MTU", e))?;
        let dev = Bridge {
            name: name.to_string(),
            subnet,
            gateway,
            mtu,
        };
        let st = dev
            .ensure(&mut nl)
            .map_err(|e| internal(format!("set up bridge {name}"), e))?;
        drop(host_lock);
        let fw = Firewall::new(name, subnet);
        let have_table = fw
            .exists()
            .map_err(|e| internal("read berth's nftables table", e))?;
        if st.created || !have_table {
            fw.install()
                .map_err(|e| internal(format!("install nftables table {}", fw.table()), e))?;
        }
        let forward_marker = PathBuf::from(FORWARD_MARKER);
        if !berth_net::bridge::ip_forward().map_err(|e| internal("read ip_forward", e))? {
            // Needed for outbound NAT and hairpin (container -> host address -> container).
            berth_net::bridge::set_ip_forward(true)
                .map_err(|e| internal("enable ip_forward", e))?;
            let _ = std::fs::write(&forward_marker, b"set to 1 by berthd\n");
            tracing::info!(
                "net.ipv4.ip_forward was 0: set to 1 for bridge {name} (recorded in {})",
                forward_marker.display()
            );
        }
        tracing::info!(
            "default bridge network: {name} {subnet} gateway {gateway} mtu {mtu}{}",
            if st.created { " (created)" } else { "" }
        );
        Ok(BridgeNet {
            id: meta.id,
            dev,
            index: st.index,
            fw,
            nl: Mutex::new(nl),
            ipam: Mutex::new(ipam),
            endpoints: EndpointDir::open(dir.join("endpoints"))?,
            live: Mutex::new(HashMap::new()),
            forward_marker,
            claim: Mutex::new(Some(claim)),
        })
    }

    pub(super) fn id(&self) -> &str {
        &self.id
    }

    pub(super) fn gateway(&self) -> std::net::Ipv4Addr {
        self.dev.gateway
    }

    pub(super) fn endpoint(&self, id: &str) -> Option<Endpoint> {
        lock(&self.live)
            .ok()
            .and_then(|l| l.get(id).map(|l| l.ep.clone()))
    }

    pub(super) fn connect(
        &self,
        id: &str,
        name: &str,
        wanted: &[Wanted],
        netns: BorrowedFd<'_>,
    ) -> Result<()> {
        // A leftover of a previous run (a crash) first.
        self.disconnect(id);
        let endpoint_id = random_id()?;
        let (ports, held) = reserve_all(wanted).map_err(|e| {
            internal(
                format!(
                    "driver failed programming external connectivity on endpoint {} ({endpoint_id})",
                    name.trim_start_matches('/')
                ),
                e,
            )
        })?;
        let ip = match lock(&self.ipam)?.allocate(&self.id, Family::V4) {
            Ok(IpAddr::V4(ip)) => ip,
            Ok(other) => return Err(Error::internal_msg(format!("IPAM gave {other} for IPv4"))),
            Err(e) => return Err(internal("allocate an address on the default bridge", e)),
        };
        let ep = Endpoint {
            container: id.to_string(),
            network_id: self.id.clone(),
            endpoint_id,
            ip,
            prefix_len: self.dev.subnet.prefix_len(),
            gateway: self.dev.gateway,
            mac: mac_for(ip).to_string(),
            veth: veth_name(id),
            ports,
        };
        if let Err(e) = self.endpoints.write(&ep) {
            let _ = lock(&self.ipam).map(|mut i| i.release(&self.id, IpAddr::V4(ip)));
            return Err(e);
        }
        if let Err(e) = self.plumb(&ep, netns) {
            self.cleanup(&ep);
            return Err(e);
        }
        lock(&self.live)?.insert(id.to_string(), Live { ep, _held: held });
        Ok(())
    }

    /// The veth pair and the published ports' rules.
    fn plumb(&self, ep: &Endpoint, netns: BorrowedFd<'_>) -> Result<()> {
        let veth = VethConfig {
            host_name: ep.veth.clone(),
            ip: ep.ip,
        };
        self.dev
            .attach(&mut *lock(&self.nl)?, self.index, &veth, netns)
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

    pub(super) fn disconnect(&self, id: &str) {
        let ep = lock(&self.live)
            .ok()
            .and_then(|mut l| l.remove(id))
            .map(|l| l.ep)
            .or_else(|| self.endpoints.load(id));
        if let Some(ep) = ep {
            self.cleanup(&ep);
        }
    }

    /// Undo an endpoint: rules, veth, address, file. Each step is tried; failures logged.
    fn cleanup(&self, ep: &Endpoint) {
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
        super::shaping::remove(&ep.container, &ep.veth);
        if let Ok(mut ipam) = lock(&self.ipam) {
            if let Err(e) = ipam.release(&self.id, IpAddr::V4(ep.ip)) {
                tracing::warn!("release {} of {}: {e}", ep.ip, ep.container);
            }
        }
        self.endpoints.remove(&ep.container);
    }

    pub(super) fn restore(&self, running: &dyn Fn(&str) -> bool) {
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
        let live: Vec<(String, IpAddr)> = lock(&self.live)
            .map(|l| {
                l.values()
                    .map(|l| (self.id.clone(), IpAddr::V4(l.ep.ip)))
                    .collect()
            })
            .unwrap_or_default();
        if let Ok(mut ipam) = lock(&self.ipam) {
            if let Err(e) = ipam.reconcile(live) {
                tracing::warn!("reconcile the bridge's addresses: {e}");
            }
        }
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

    /// Delete the firewall table and the bridge (no container runs); ip_forward back to 0 if
    /// berth set it and no other berth table is left.
    pub(super) fn teardown(&self) {
        if let Err(e) = self.fw.remove() {
            tracing::warn!("delete nftables table {}: {e}", self.fw.table());
        }
        if let Ok(mut nl) = lock(&self.nl) {
            if let Err(e) = self.dev.delete(&mut nl) {
                tracing::warn!("delete bridge {}: {e}", self.dev.name);
            }
        }
        if self.forward_marker.exists() && !berth_net::firewall::any_berth_table().unwrap_or(true) {
            match berth_net::bridge::set_ip_forward(false) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&self.forward_marker);
                }
                Err(e) => tracing::warn!("restore ip_forward: {e}"),
            }
        }
    }
}

/// The veth's host end: `veth` + 11 hex digits of the container ID (15 bytes, IFNAMSIZ-1).
fn veth_name(id: &str) -> String {
    format!("veth{}", &id[..id.len().min(11)])
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

/// Subnet and gateway: the address of the bridge a previous daemon left; else the subnet
/// recorded for this network if nothing on the host overlaps it now; else a new one from
/// Docker's default pools overlapping no host route or address and no other network.
fn choose_subnet(
    nl: &mut Netlink,
    ipam: &mut IpamStore,
    id: &str,
    name: &str,
) -> Result<(Subnet, Ipv4Addr)> {
    let existing = Bridge::existing_address(nl, name)
        .map_err(|e| internal(format!("read bridge {name}"), e))?;
    let recorded = ipam.network(id).and_then(|n| {
        let s = n.subnets().next()?;
        match n.gateway(Family::V4)? {
            IpAddr::V4(g) => Some((s, g)),
            IpAddr::V6(_) => None,
        }
    });
    let chosen = match existing {
        Some((ip, p)) => {
            let s = Subnet::containing(IpAddr::V4(ip), p)
                .map_err(|e| internal(format!("the address of bridge {name}"), e))?;
            (s, ip)
        }
        None => {
            let host = host_reserved(&ProcNet::new(), RouteFilter::All)
                .map_err(|e| internal("read the host's routes", e))?;
            match recorded.filter(|(s, _)| !host.iter().any(|h| h.overlaps(s))) {
                Some(r) => r,
                None => {
                    if recorded.is_some() {
                        let _ = ipam.remove_network(id);
                    }
                    let s = ipam
                        .pick_subnet(&AddressPool::docker_defaults(), Family::V4, &host)
                        .map_err(|e| internal("pick a subnet for the default bridge", e))?;
                    let g = match s.first_host() {
                        Some(IpAddr::V4(g)) => g,
                        _ => return Err(Error::internal_msg(format!("no gateway in {s}"))),
                    };
                    (s, g)
                }
            }
        }
    };
    if recorded != Some(chosen) {
        if recorded.is_some() {
            let _ = ipam.remove_network(id);
        }
        ipam.create_network(
            id,
            vec![PoolConfig::new(chosen.0).with_gateway(IpAddr::V4(chosen.1))],
        )
        .map_err(|e| {
            internal(
                format!("record subnet {} of the default bridge", chosen.0),
                e,
            )
        })?;
    }
    Ok(chosen)
}

/// Held while this daemon picks and configures its subnet (see [`HOST_LOCK`]); waits for
/// another daemon's turn to end.
fn host_lock() -> Result<UnixDatagram> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match claim(HOST_LOCK) {
            Ok(s) => return Ok(s),
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(e) => {
                return Err(internal(
                    format!("take the host-wide claim @{HOST_LOCK}"),
                    e,
                ))
            }
        }
    }
}

/// One daemon per bridge: two sharing a bridge would hand out the same addresses.
fn claim_bridge(name: &str) -> Result<UnixDatagram> {
    if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', '\0']) {
        return Err(Error::BadParameter(format!(
            "invalid bridge name {name:?}: 1 to 15 characters, no '/' or space"
        )));
    }
    let key = format!("berth-bridge-{name}");
    claim(&key).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            Error::Conflict(format!(
                "bridge {name} is in use by another berth daemon (it holds @{key}): start this one with --bridge OTHER or --bridge none"
            ))
        } else {
            internal(format!("claim @{key}"), e)
        }
    })
}

/// A claim on `key` in this network namespace: an abstract unix socket bound to it. It is
/// released when dropped or when the process dies, and leaves no file behind.
fn claim(key: &str) -> std::io::Result<UnixDatagram> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(key.as_bytes())?;
    UnixDatagram::bind_addr(&addr)
}
