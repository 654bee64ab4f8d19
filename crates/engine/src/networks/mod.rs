//! The engine's networks owner. Today one network: the default `bridge` (berthd's
//! `--bridge NAME`, default `berth0`; absent with `--bridge none`, when containers of the
//! default mode get loopback only). User-defined networks, DNS and IPv6 are for later
//! and land here as more networks of the same kind (`bridge.rs` is one network's driver).
//!
//! The one attach point is [`Networks::connect`]: given the container's network namespace
//! (an fd), it makes the endpoint and returns a guard that undoes it unless kept.
mod bridge;
mod endpoint;
pub(crate) mod ports;
pub(crate) mod shaping;

pub(crate) use endpoint::Endpoint;

use crate::model::Config;
use crate::model::HostConfig;
use crate::{EngineConfig, Result};
use bridge::BridgeNet;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

/// The name of the default network.
pub(crate) const DEFAULT_NETWORK: &str = "bridge";

pub(crate) struct Networks {
    bridge: Option<Arc<BridgeNet>>,
}

impl Networks {
    /// Set the default bridge network up (device, subnet, firewall table) unless disabled.
    pub(crate) fn open(cfg: &EngineConfig) -> Result<Networks> {
        let bridge = match cfg.bridge.as_deref() {
            None | Some("none") | Some("") => None,
            Some(name) => Some(Arc::new(BridgeNet::open(cfg, name)?)),
        };
        Ok(Networks { bridge })
    }

    /// Whether the default bridge network exists.
    pub(crate) fn has_bridge(&self) -> bool {
        self.bridge.is_some()
    }

    /// The default bridge network's ID.
    pub(crate) fn bridge_id(&self) -> Option<&str> {
        self.bridge.as_deref().map(BridgeNet::id)
    }

    /// Connect container `id` (named `name`) to the default bridge in the namespace `netns`:
    /// its address, veth pair and published ports. Undone when the guard drops, unless kept.
    pub(crate) fn connect(
        &self,
        id: &str,
        name: &str,
        config: &Config,
        host: &HostConfig,
        netns: BorrowedFd<'_>,
    ) -> Result<Option<Attached>> {
        let Some(b) = &self.bridge else {
            return Ok(None);
        };
        let wanted = ports::wanted(config, host)?;
        let limits = shaping::limits(host)?;
        b.connect(id, name, &wanted, netns)?;
        let attached = Attached {
            net: b.clone(),
            id: Some(id.to_string()),
        };
        if !limits.is_empty() {
            if let Some(ep) = b.endpoint(id) {
                shaping::apply(id, &ep.veth, &limits)?;
            }
        }
        Ok(Some(attached))
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

    /// Remove container `id`'s endpoint (its run is over); nothing if it has none.
    pub(crate) fn disconnect(&self, id: &str) {
        if let Some(b) = &self.bridge {
            b.disconnect(id);
        }
    }

    /// The default bridge's gateway (Docker's `host-gateway`).
    pub(crate) fn gateway(&self) -> Option<std::net::Ipv4Addr> {
        self.bridge.as_deref().map(BridgeNet::gateway)
    }

    /// The networks of container `id` whose names the embedded resolver answers: every one
    /// it is attached to but the default bridge (which has no DNS, as Docker's).
    pub(crate) fn dns_networks(&self, id: &str) -> Vec<String> {
        self.endpoint(id)
            .into_iter()
            .map(|ep| ep.network_id)
            .filter(|n| Some(n.as_str()) != self.bridge_id())
            .collect()
    }

    /// The endpoint of a running container.
    pub(crate) fn endpoint(&self, id: &str) -> Option<Endpoint> {
        self.bridge.as_ref().and_then(|b| b.endpoint(id))
    }

    /// At start-up, after the containers are reconciled: keep the endpoints of running
    /// containers (ports reserved again, rules back), remove the others.
    pub(crate) fn restore(&self, running: &dyn Fn(&str) -> bool) {
        if let Some(b) = &self.bridge {
            b.restore(running);
        }
    }

    /// At shutdown: with no container running, the bridge and the firewall table go.
    pub(crate) fn shutdown(&self, any_running: bool) {
        if let Some(b) = &self.bridge {
            if !any_running {
                b.teardown();
            }
            b.release_claim();
        }
    }
}

/// A container's endpoint while its start is under way: disconnected when dropped (a start
/// that failed, a prepared container taken down), unless [`Attached::keep`] hands it on to
/// the running container (then the exit disconnects it).
pub(crate) struct Attached {
    net: Arc<BridgeNet>,
    id: Option<String>,
}

impl Attached {
    pub(crate) fn keep(mut self) {
        self.id = None;
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.net.disconnect(&id);
        }
    }
}
