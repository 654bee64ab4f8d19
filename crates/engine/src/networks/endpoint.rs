//! A container's endpoint on a network: what was set up for its current run, persisted
//! (`<root>/network/endpoints/<id>.json` on the default bridge,
//! `<root>/network/user/<net>/endpoints/<id>.json` on a user network) before the devices and rules are made, so
//! a daemon that restarts restores it for a running container (live-restore) and removes it
//! otherwise — after a crash as well.
use crate::util::internal;
use crate::Result;
use berth_net::PortMapping;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Endpoint {
    pub container: String,
    /// The container's name (without the leading `/`), for name resolution.
    #[serde(default)]
    pub name: String,
    pub network_id: String,
    pub endpoint_id: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    /// The host end of the veth pair.
    pub veth: String,
    /// The container's end of the veth pair (`eth0`, `eth1`...; empty in files of older
    /// daemons: `eth0`).
    #[serde(default)]
    pub ifname: String,
    /// `--network-alias`es on this network.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The address asked for (`--ip`), for inspect's `IPAMConfig`.
    #[serde(default)]
    pub requested_ip: Option<Ipv4Addr>,
    pub ports: Vec<PortMapping>,
    /// The IPv6 address on a network made with `--ipv6`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<Ipv6Addr>,
    #[serde(default)]
    pub prefix_len6: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
    /// The IPv6 address asked for (`--ip6`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_ip6: Option<Ipv6Addr>,
}

impl Endpoint {
    /// Its addresses: IPv4, and IPv6 on a network with IPv6.
    pub(crate) fn addresses(&self) -> impl Iterator<Item = IpAddr> {
        std::iter::once(IpAddr::V4(self.ip)).chain(self.ip6.map(IpAddr::V6))
    }

    /// The container's interface name.
    pub(crate) fn ifname(&self) -> &str {
        if self.ifname.is_empty() {
            berth_net::bridge::CONTAINER_IFNAME
        } else {
            &self.ifname
        }
    }
}

/// The endpoint files of one network.
pub(crate) struct EndpointDir(PathBuf);

impl EndpointDir {
    pub(crate) fn open(dir: PathBuf) -> Result<EndpointDir> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| internal(format!("create {}", dir.display()), e))?;
        Ok(EndpointDir(dir))
    }

    fn path(&self, id: &str) -> PathBuf {
        self.0.join(format!("{id}.json"))
    }

    pub(crate) fn write(&self, ep: &Endpoint) -> Result<()> {
        crate::util::write_json_atomic(&self.path(&ep.container), ep)
    }

    pub(crate) fn remove(&self, id: &str) {
        let _ = std::fs::remove_file(self.path(id));
    }

    pub(crate) fn load(&self, id: &str) -> Option<Endpoint> {
        load(&self.path(id))
    }

    /// Every endpoint on disk (unreadable files are removed: nothing of them can be undone).
    pub(crate) fn all(&self) -> Vec<Endpoint> {
        let Ok(rd) = std::fs::read_dir(&self.0) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                match load(&p) {
                    Some(ep) => out.push(ep),
                    None => {
                        tracing::warn!("removing unreadable endpoint file {}", p.display());
                        let _ = std::fs::remove_file(&p);
                    }
                }
            }
        }
        out
    }
}

fn load(p: &Path) -> Option<Endpoint> {
    std::fs::read(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}
