//! Host-wide matters of berth's bridge networks: the claims (one daemon per bridge name; one
//! daemon at a time picking a subnet), the default bridge's subnet choice, `ip_forward`.
use crate::util::internal;
use crate::{Error, Result};
use berth_net::{
    host_reserved, AddressPool, Bridge, Family, IpamStore, Netlink, PoolConfig, ProcNet,
    RouteFilter, Subnet,
};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::net::UnixDatagram;
use std::path::Path;

/// Serialises subnet picking between berth daemons on this host (tests run several): one
/// picks and configures its bridge before the next reads the host's routes. An abstract
/// unix socket name (see [`claim`]).
const HOST_LOCK: &str = "berth-net-subnets";

/// Records that berth turned `net.ipv4.ip_forward` on (host-wide, on /run: it lasts as long
/// as the boot). The last berth daemon to remove its bridge turns it off again.
pub(super) const FORWARD_MARKER: &str = "/run/berth-net-ip_forward";

/// Turn `ip_forward` on (outbound NAT and hairpin need it) if it is off, recording it.
pub(super) fn ensure_forward(bridge: &str) -> Result<()> {
    if !berth_net::bridge::ip_forward().map_err(|e| internal("read ip_forward", e))? {
        berth_net::bridge::set_ip_forward(true).map_err(|e| internal("enable ip_forward", e))?;
        let _ = std::fs::write(FORWARD_MARKER, b"set to 1 by berthd\n");
        tracing::info!(
            "net.ipv4.ip_forward was 0: set to 1 for bridge {bridge} (recorded in {FORWARD_MARKER})"
        );
    }
    Ok(())
}

/// Records that berth turned `net.ipv6.conf.all.forwarding` on (as [`FORWARD_MARKER`]).
pub(super) const FORWARD6_MARKER: &str = "/run/berth-net-ipv6_forwarding";

/// Turn IPv6 forwarding on (a `--ipv6` network's outbound NAT needs it) if it is off,
/// recording it, as dockerd does for its IPv6 networks.
pub(super) fn ensure_forward6(bridge: &str) -> Result<()> {
    if !berth_net::bridge::ipv6_forwarding().map_err(|e| internal("read IPv6 forwarding", e))? {
        berth_net::bridge::set_ipv6_forwarding(true)
            .map_err(|e| internal("enable IPv6 forwarding", e))?;
        let _ = std::fs::write(FORWARD6_MARKER, b"set to 1 by berthd\n");
        tracing::info!(
            "net.ipv6.conf.all.forwarding was 0: set to 1 for bridge {bridge} (recorded in {FORWARD6_MARKER})"
        );
    }
    Ok(())
}

/// `ip_forward` (and IPv6 forwarding) back to 0 if berth set it and no berth table is left.
pub(super) fn restore_forward() {
    if Path::new(FORWARD6_MARKER).exists()
        && !berth_net::firewall::any_berth_table().unwrap_or(true)
    {
        match berth_net::bridge::set_ipv6_forwarding(false) {
            Ok(()) => {
                let _ = std::fs::remove_file(FORWARD6_MARKER);
            }
            Err(e) => tracing::warn!("restore IPv6 forwarding: {e}"),
        }
    }
    if Path::new(FORWARD_MARKER).exists() && !berth_net::firewall::any_berth_table().unwrap_or(true)
    {
        match berth_net::bridge::set_ip_forward(false) {
            Ok(()) => {
                let _ = std::fs::remove_file(FORWARD_MARKER);
            }
            Err(e) => tracing::warn!("restore ip_forward: {e}"),
        }
    }
}

/// The subnets of the host's routes and addresses (Docker's `docker0` among them).
pub(super) fn host_subnets() -> Result<Vec<Subnet>> {
    host_reserved(&ProcNet::new(), RouteFilter::All)
        .map_err(|e| internal("read the host's routes", e))
}

/// Subnet and gateway: the address of the bridge a previous daemon left; else the subnet
/// recorded for this network if nothing on the host overlaps it now; else a new one from
/// Docker's default pools overlapping no host route or address and no other network.
pub(super) fn choose_subnet(
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
            let host = host_subnets()?;
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
pub(super) fn host_lock() -> Result<UnixDatagram> {
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
pub(super) fn claim_bridge(name: &str) -> Result<UnixDatagram> {
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
