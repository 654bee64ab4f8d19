//! The engine's networks owner: the default `bridge` network (berthd's `--bridge NAME`,
//! default `berth0`; absent with `--bridge none`) and user-defined bridge networks
//! (`user.rs`), each a [`BridgeNet`] (`bridge.rs`: its own Linux bridge and nftables table),
//! sharing one IPAM store. Which networks a container is on: `attach.rs`; the names their
//! endpoints answer to, for name resolution: `dns.rs`; the API's views: `api.rs`.
//!
//! The one attach point at start is [`Networks::connect`]: given the container's network
//! namespace (an fd), it makes its endpoints and returns a guard that undoes them unless kept.
mod api;
pub(crate) mod attach;
mod bridge;
mod dns;
mod endpoint;
mod host;
mod ipam;
pub(crate) mod ports;
pub(crate) mod shaping;
mod user;

pub(crate) use api::{
    connect as network_connect, container_networks, create as network_create,
    disconnect as network_disconnect, inspect as network_inspect, list as network_list,
    prune as network_prune, remove as network_remove,
};
pub(crate) use dns::DnsEntry;
pub(crate) use endpoint::Endpoint;

use crate::model::Config;
use crate::model::HostConfig;
use crate::util::internal;
use crate::{EngineConfig, Error, Result};
use attach::{Attach, AttachDir};
use bridge::{lock, BridgeNet, Join, UserDev};
use dns::DnsDir;
use endpoint::EndpointDir;
use ipam::Ipam;
use std::collections::BTreeMap;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex};
use user::{NetRecord, RecordDir};

/// The name of the default network.
pub(crate) const DEFAULT_NETWORK: &str = "bridge";

pub(crate) struct Networks {
    bridge: Option<Arc<BridgeNet>>,
    /// User networks by ID, with their records.
    user: Mutex<BTreeMap<String, (NetRecord, Arc<BridgeNet>)>>,
    ipam: Arc<Ipam>,
    records: RecordDir,
    attach: AttachDir,
    dns: DnsDir,
    /// IDs of the `host` and `none` networks (as listed).
    predefined: api::Predefined,
    /// Serialises network create/remove/connect/disconnect.
    ops: Mutex<()>,
}

impl Networks {
    /// Set the default bridge network up (device, subnet, firewall table) unless disabled,
    /// and every user network recorded.
    pub(crate) fn open(cfg: &EngineConfig) -> Result<Networks> {
        let dir = cfg.root.join("network");
        let ipam = Ipam::open(dir.join("ipam"))?;
        let bridge = match cfg.bridge.as_deref() {
            None | Some("none") | Some("") => None,
            Some(name) => Some(Arc::new(BridgeNet::open_default(cfg, name, ipam.clone())?)),
        };
        let records = RecordDir(dir.join("user"));
        let recs = records.load_all()?;
        let mut user = BTreeMap::new();
        {
            let mut st = ipam.lock()?;
            let known: Vec<String> = st.networks().map(|(id, _)| id.to_string()).collect();
            // (A network whose record is gone or was never written — a crash in the middle
            // of a create or remove — gives its subnet back; the default bridge's is kept
            // while the daemon runs with --bridge none.)
            let default_id = bridge.as_ref().map(|b| b.id().to_string()).or_else(|| {
                std::fs::read(dir.join("bridge.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| v["Id"].as_str().map(String::from))
            });
            for id in known {
                let ours =
                    default_id.as_deref() == Some(id.as_str()) || recs.iter().any(|r| r.id == id);
                if !ours {
                    tracing::info!("network {id}: no record, its addresses are released");
                    let _ = st.remove_network(&id);
                }
            }
        }
        for r in recs {
            let nl = berth_net::Netlink::new().map_err(|e| internal("open rtnetlink", e))?;
            let eps = EndpointDir::open(records.net_dir(&r.id).join("endpoints"))?;
            match BridgeNet::open_dev(nl, &user_dev(&r), ipam.clone(), eps) {
                Ok(n) => {
                    user.insert(r.id.clone(), (r, Arc::new(n)));
                }
                Err(e) => tracing::warn!("network {} ({}): {e}", r.name, r.id),
            }
        }
        Ok(Networks {
            bridge,
            user: Mutex::new(user),
            ipam,
            attach: AttachDir(dir.join("containers")),
            predefined: api::Predefined::open(&dir)?,
            records,
            dns: DnsDir(cfg.exec_root.join("network").join("dns")),
            ops: Mutex::new(()),
        })
    }

    /// Whether the default bridge network exists.
    pub(crate) fn has_bridge(&self) -> bool {
        self.bridge.is_some()
    }

    /// The default bridge network's ID.
    pub(crate) fn bridge_id(&self) -> Option<&str> {
        self.bridge.as_deref().map(BridgeNet::id)
    }

    /// Every network (default first), for lookups.
    fn all(&self) -> Vec<Arc<BridgeNet>> {
        let mut v: Vec<Arc<BridgeNet>> = self.bridge.iter().cloned().collect();
        if let Ok(u) = lock(&self.user) {
            v.extend(u.values().map(|(_, n)| n.clone()));
        }
        v
    }

    /// The network named (name, full ID, or unique ID prefix) `x`, with its record for a user
    /// network. 404 if none.
    fn find(&self, x: &str) -> Result<(Arc<BridgeNet>, Option<NetRecord>)> {
        if let Some(b) = &self.bridge {
            if x == DEFAULT_NETWORK || x == b.id() {
                return Ok((b.clone(), None));
            }
        }
        let u = lock(&self.user)?;
        let hit = u
            .get(x)
            .or_else(|| u.values().find(|(r, _)| r.name == x))
            .or_else(|| {
                let mut m = u.iter().filter(|(id, _)| id.starts_with(x)).map(|(_, v)| v);
                match (m.next(), m.next()) {
                    (Some(one), None) if !x.is_empty() => Some(one),
                    _ => None,
                }
            });
        match hit {
            Some((r, n)) => Ok((n.clone(), Some(r.clone()))),
            None => Err(Error::NotFound(format!("network {x} not found"))),
        }
    }

    /// At create: the networks of the request, checked (each exists, `--ip` inside it).
    pub(crate) fn plan(
        &self,
        host: &HostConfig,
        net: Option<&serde_json::Value>,
    ) -> Result<Vec<Attach>> {
        let list = attach::from_request(host, net)?;
        for a in &list {
            if a.network == DEFAULT_NETWORK && self.bridge.is_none() {
                return Err(Error::NotFound(format!(
                    "network {DEFAULT_NETWORK} not found (berthd runs with --bridge none)"
                )));
            }
            let (_, rec) = self.find(&a.network)?;
            if let Some(ip) = a.ip {
                match &rec {
                    None => {
                        return Err(Error::BadParameter(
                            "user specified IP address is supported on user defined networks only"
                                .into(),
                        ))
                    }
                    Some(r) if !r.subnet.contains(ip.into()) => {
                        return Err(Error::BadParameter(format!(
                            "invalid address {ip}: it is not in the subnet {} of network {}",
                            r.subnet, r.name
                        )))
                    }
                    Some(_) => {}
                }
            }
            if let Some(ip6) = a.ip6 {
                match rec.as_ref().map(|r| (r, r.ipv6.as_ref())) {
                    Some((r, Some(v6))) if !v6.subnet.contains(ip6.into()) => {
                        return Err(Error::BadParameter(format!(
                            "invalid address {ip6}: it is not in the subnet {} of network {}",
                            v6.subnet, r.name
                        )))
                    }
                    Some((_, Some(_))) => {}
                    Some((r, None)) => {
                        return Err(Error::BadParameter(format!(
                            "invalid address {ip6}: network {} has no IPv6 (create it with --ipv6)",
                            r.name
                        )))
                    }
                    None => {
                        return Err(Error::BadParameter(
                            "user specified IP address is supported on user defined networks only"
                                .into(),
                        ))
                    }
                }
            }
            if !a.aliases.is_empty() && rec.is_none() {
                return Err(Error::BadParameter(
                    "network-scoped alias is supported only for containers in user defined networks"
                        .into(),
                ));
            }
        }
        Ok(list)
    }

    /// Record the networks [`Networks::plan`] checked for container `id`.
    pub(crate) fn set_plan(&self, id: &str, host: &HostConfig, list: &[Attach]) -> Result<()> {
        self.attach.set(id, host.network_mode.str(), list)
    }

    /// Forget a removed container's networks.
    pub(crate) fn forget(&self, id: &str) {
        self.attach.forget(id);
    }

    /// Connect container `id` (named `name`) to its networks in the namespace `netns`:
    /// address, veth pair, published ports (on the first network). Undone when the guard
    /// drops, unless kept.
    pub(crate) fn connect(
        &self,
        id: &str,
        name: &str,
        config: &Config,
        host: &HostConfig,
        netns: BorrowedFd<'_>,
    ) -> Result<Option<Attached>> {
        let list = self.attach.get(id, host.network_mode.str());
        if list.is_empty() {
            return Ok(None);
        }
        let wanted = ports::wanted(config, host)?;
        let mut done = Attached {
            nets: Vec::new(),
            id: Some(id.to_string()),
            owner: Some(self.dns_hook()),
        };
        for (i, a) in list.iter().enumerate() {
            let (net, _) = self.find(&a.network).map_err(|_| {
                Error::NotFound(if a.network == DEFAULT_NETWORK {
                    format!("network {DEFAULT_NETWORK} not found (berthd runs with --bridge none)")
                } else {
                    format!("network {} not found", a.network)
                })
            })?;
            let join = Join {
                ip: a.ip,
                ip6: a.ip6,
                aliases: a.aliases.clone(),
                ifname: format!("eth{i}"),
                default_route: true,
            };
            let publish = if i == 0 { &wanted[..] } else { &[] };
            net.connect(id, name, publish, netns, &join)?;
            done.nets.push(net.clone());
            self.endpoints_changed(net.id());
        }
        // Bandwidth limits shape the first network's veth (eth0).
        let limits = shaping::limits(host)?;
        if !limits.is_empty() {
            if let Some(ep) = self.endpoint(id) {
                shaping::apply(id, &ep.veth, &limits)?;
            }
        }
        Ok(Some(done))
    }

    /// Make container `id`'s bandwidth limits on its veth what `host` says (at `update`, and
    /// at start-up for a running container: kept across a daemon's restart). Nothing if it
    /// has no endpoint (not running).
    pub(crate) fn reshape(&self, id: &str, host: &HostConfig) -> Result<()> {
        let limits = shaping::limits(host)?;
        match self.endpoint(id) {
            Some(ep) => shaping::apply(id, &ep.veth, &limits),
            None => Ok(()),
        }
    }

    /// Remove container `id`'s endpoints (its run is over); nothing if it has none.
    pub(crate) fn disconnect(&self, id: &str) {
        for n in self.all() {
            if n.disconnect(id) {
                self.endpoints_changed(n.id());
            }
        }
    }

    /// The default bridge's gateway (Docker's `host-gateway`).
    pub(crate) fn gateway(&self) -> Option<std::net::Ipv4Addr> {
        self.bridge.as_deref().map(BridgeNet::gateway)
    }

    /// The networks of container `id` whose names the embedded resolver answers: every one
    /// it is attached to but the default bridge (which has no DNS, as Docker's).
    pub(crate) fn dns_networks(&self, id: &str) -> Vec<String> {
        self.all()
            .iter()
            .filter(|n| Some(n.id()) != self.bridge_id() && n.endpoint(id).is_some())
            .map(|n| n.id().to_string())
            .collect()
    }

    /// The endpoint of a running container on its first network.
    pub(crate) fn endpoint(&self, id: &str) -> Option<Endpoint> {
        let mut eps: Vec<Endpoint> = self.all().iter().filter_map(|n| n.endpoint(id)).collect();
        eps.sort_by(|a, b| a.ifname().cmp(b.ifname()));
        eps.into_iter().next()
    }

    /// For name resolution: the names and addresses of the endpoints on a network.
    pub(crate) fn dns_entries(&self, network_id: &str) -> Vec<DnsEntry> {
        self.find(network_id)
            .map(|(n, _)| n.endpoints().iter().map(DnsEntry::of).collect())
            .unwrap_or_default()
    }

    /// The one hook for a change of a network's endpoints: its DNS entries written anew
    /// (user networks: the default bridge has no name resolution, as dockerd's).
    pub(crate) fn endpoints_changed(&self, network_id: &str) {
        if self.bridge_id() == Some(network_id) {
            return;
        }
        if let Err(e) = self.dns.write(network_id, self.dns_entries(network_id)) {
            tracing::warn!("write the DNS entries of network {network_id}: {e}");
        }
    }

    fn dns_hook(&self) -> DnsHook {
        DnsHook {
            dir: DnsDir(self.dns.0.clone()),
        }
    }

    /// At start-up, after the containers are reconciled: keep the endpoints of running
    /// containers (ports reserved again, rules back), remove the others; IPAM reconciled.
    pub(crate) fn restore(&self, running: &dyn Fn(&str) -> bool) {
        let mut live = Vec::new();
        for n in self.all() {
            live.extend(n.restore(running));
            self.endpoints_changed(n.id());
        }
        if let Ok(mut ipam) = self.ipam.lock() {
            if let Err(e) = ipam.reconcile(live) {
                tracing::warn!("reconcile the networks' addresses: {e}");
            }
        }
    }

    /// At shutdown: with no container running, the bridges and the firewall tables go
    /// (made again at the next start-up).
    pub(crate) fn shutdown(&self, any_running: bool) {
        for n in self.all() {
            if !any_running {
                n.teardown();
            }
            n.release_claim();
        }
        if !any_running {
            host::restore_forward();
        }
        self.ipam.flush();
    }
}

fn user_dev(r: &NetRecord) -> UserDev<'_> {
    UserDev {
        id: &r.id,
        name: &r.name,
        bridge: &r.bridge,
        subnet: r.subnet,
        gateway: r.gateway,
        internal: r.internal,
        ipv6: r.ipv6.as_ref().map(|v| (v.subnet, v.gateway)),
    }
}

/// Rewrites a network's DNS file when an [`Attached`] guard undoes its endpoints.
struct DnsHook {
    dir: DnsDir,
}

/// A container's endpoints while its start is under way: disconnected when dropped (a
/// start that failed, a prepared container taken down), unless [`Attached::keep`] hands
/// them on to the running container (then the exit disconnects them).
pub(crate) struct Attached {
    nets: Vec<Arc<BridgeNet>>,
    id: Option<String>,
    owner: Option<DnsHook>,
}

impl Attached {
    pub(crate) fn keep(mut self) {
        self.id = None;
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            for n in &self.nets {
                n.disconnect(&id);
                if let Some(h) = &self.owner {
                    if n.name() != DEFAULT_NETWORK {
                        let entries = n.endpoints().iter().map(DnsEntry::of).collect();
                        if let Err(e) = h.dir.write(n.id(), entries) {
                            tracing::warn!("write the DNS entries of network {}: {e}", n.id());
                        }
                    }
                }
            }
        }
    }
}
