//! A container's bandwidth limits (`HostConfig.Annotations`, the CNI bandwidth plugin's keys
//! `kubernetes.io/ingress-bandwidth` and `kubernetes.io/egress-bandwidth`, and berth's
//! `io.berth.ingress-burst` / `io.berth.egress-burst`), shaped on the host end of each of its
//! veths (`berth_net::tc`): applied when a veth is connected, made again at a daemon's
//! start-up for running containers, changed by `update`; the ifb goes with the veth.
//! Independent of the network the veth is on: it only needs the host veth's name.
use crate::model::HostConfig;
use crate::util::internal;
use crate::{Error, Result};
use berth_net::bandwidth::KEYS;
use berth_net::{Limits, Netlink};

/// The limits `host` asks for; a value that is not a rate is a 400 naming its key, as is a
/// limit on a container with no veth of its own (network mode host, none, container:).
pub(crate) fn limits(host: &HostConfig) -> Result<Limits> {
    let m = host.annotations.map();
    let l = Limits::from_annotations(|k| m.get(k).map(String::as_str))
        .map_err(|(k, e)| Error::BadParameter(format!("invalid annotation {k}: {e}")))?;
    let mode = host.network_mode.str();
    if !l.is_empty() && (matches!(mode, "host" | "none") || mode.starts_with("container:")) {
        return Err(Error::BadParameter(format!(
            "invalid annotation {}: bandwidth limits need a network of the container's own (network mode is {mode})",
            first_set(host)
        )));
    }
    Ok(l)
}

/// At create, once the network mode is filled in: a limit on a container of the default
/// network of a daemon without a bridge (`--bridge none`) is refused as well.
pub(crate) fn check_mode(host: &HostConfig, has_bridge: bool) -> Result<()> {
    let l = limits(host)?;
    if !l.is_empty() && !has_bridge && matches!(host.network_mode.str(), "" | "default") {
        return Err(Error::BadParameter(format!(
            "invalid annotation {}: bandwidth limits need a network of the container's own (berthd runs with --bridge none)",
            first_set(host)
        )));
    }
    Ok(())
}

fn first_set(host: &HostConfig) -> &'static str {
    let m = host.annotations.map();
    KEYS.iter()
        .find(|k| m.get(**k).is_some_and(|v| !v.is_empty()))
        .copied()
        .unwrap_or_default()
}

/// Whether `key` is one of the bandwidth annotations (the ones `update` may change).
pub(crate) fn is_bandwidth_key(key: &str) -> bool {
    KEYS.contains(&key)
}

/// Shape the host veth `veth` as `limits` say (none: what was there is removed).
pub(super) fn apply(container: &str, veth: &str, limits: &Limits) -> Result<()> {
    let mut nl = Netlink::new().map_err(|e| internal("open rtnetlink", e))?;
    berth_net::tc::shape(&mut nl, veth, limits).map_err(|e| {
        internal(
            format!("set the bandwidth limits of container {container} on {veth}"),
            e,
        )
    })
}

/// Remove the ifb of host veth `veth` if it has one (the veth's own qdiscs go with it).
pub(super) fn remove(container: &str, veth: &str) {
    let r = Netlink::new()
        .map_err(berth_net::tc::TcError::from)
        .and_then(|mut nl| berth_net::tc::unshape_ifb(&mut nl, veth));
    if let Err(e) = r {
        tracing::warn!("remove the ifb of {veth} (container {container}): {e}");
    }
}
