//! Which networks a container is on, in order (the first gives it `eth0` and its default
//! route): its `HostConfig.NetworkMode` plus the other `NetworkingConfig.EndpointsConfig`
//! entries of its create request and the networks `connect` added. Kept by the networks
//! owner in `<root>/network/containers/<id>.json` (written temp-then-rename) only when it
//! differs from the network mode alone; removed with the container.
use crate::model::{Field, HostConfig};
use crate::util::internal;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// A container's settings on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Attach {
    /// The network as named by the user (name or ID).
    pub network: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    /// `--ip6`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<Ipv6Addr>,
}

impl Attach {
    pub(crate) fn plain(network: &str) -> Attach {
        Attach {
            network: network.to_string(),
            aliases: Vec::new(),
            ip: None,
            ip6: None,
        }
    }

    /// From Docker's `EndpointSettings` (swagger): `IPAMConfig.IPv4Address`,
    /// `IPAMConfig.IPv6Address`, `Aliases`.
    pub(crate) fn from_settings(network: &str, v: &Value) -> Result<Attach> {
        let ip = match v["IPAMConfig"]["IPv4Address"].as_str() {
            None | Some("") => None,
            Some(s) => Some(s.parse().map_err(|_| {
                Error::BadParameter(format!(
                    "invalid IPv4 address {s:?} for network {network} (IPAMConfig.IPv4Address)"
                ))
            })?),
        };
        let ip6 = match v["IPAMConfig"]["IPv6Address"].as_str() {
            None | Some("") => None,
            Some(s) => Some(s.parse().map_err(|_| {
                Error::BadParameter(format!(
                    "invalid IPv6 address {s:?} for network {network} (IPAMConfig.IPv6Address)"
                ))
            })?),
        };
        let aliases = v["Aliases"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Attach {
            network: network.to_string(),
            aliases,
            ip,
            ip6,
        })
    }
}

/// Whether a network mode names a network (not none/host/container:).
pub(crate) fn is_network_mode(mode: &str) -> bool {
    !matches!(mode, "" | "default" | "none" | "host") && !mode.starts_with("container:")
}

/// The networks of a create request, the network mode's first.
pub(crate) fn from_request(host: &HostConfig, net: Option<&Value>) -> Result<Vec<Attach>> {
    let mode = match &host.network_mode {
        Field::Set(m) => m.as_str(),
        _ => "",
    };
    let eps = net
        .and_then(|n| n.get("EndpointsConfig"))
        .and_then(Value::as_object);
    let mut out = Vec::new();
    if is_network_mode(mode) {
        let settings = eps.and_then(|e| e.get(mode)).unwrap_or(&Value::Null);
        out.push(Attach::from_settings(mode, settings)?);
    }
    for (n, v) in eps.into_iter().flatten() {
        if n == mode || matches!(n.as_str(), "none" | "host" | "default") {
            continue;
        }
        if !is_network_mode(mode) {
            return Err(Error::BadParameter(format!(
                "container cannot be connected to network {n} in network mode {mode:?}"
            )));
        }
        out.push(Attach::from_settings(n, v)?);
    }
    Ok(out)
}

/// `<root>/network/containers`.
pub(crate) struct AttachDir(pub PathBuf);

impl AttachDir {
    fn path(&self, id: &str) -> PathBuf {
        self.0.join(format!("{id}.json"))
    }

    /// A container's networks: its file, else its network mode alone.
    pub(crate) fn get(&self, id: &str, mode: &str) -> Vec<Attach> {
        if let Some(v) = std::fs::read(self.path(id))
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<Attach>>(&b).ok())
        {
            return v;
        }
        if is_network_mode(mode) {
            vec![Attach::plain(mode)]
        } else {
            Vec::new()
        }
    }

    /// Record a container's networks (no file when the network mode says it all).
    pub(crate) fn set(&self, id: &str, mode: &str, list: &[Attach]) -> Result<()> {
        if list.len() == 1 && list[0] == Attach::plain(mode)
            || list.is_empty() && !is_network_mode(mode)
        {
            self.forget(id);
            return Ok(());
        }
        std::fs::create_dir_all(&self.0)
            .map_err(|e| internal(format!("create {}", self.0.display()), e))?;
        crate::util::write_json_atomic(&self.path(id), &list)
    }

    pub(crate) fn forget(&self, id: &str) {
        let _ = std::fs::remove_file(self.path(id));
    }
}

/// A connect's `EndpointConfig` beyond what berth honours (`Aliases`,
/// `IPAMConfig.IPv4Address`/`IPv6Address`; create checks the same through `model/unsupported.rs`): a 400,
/// never silently ignored.
pub(crate) fn check_honoured(network: &str, v: &Value) -> Result<()> {
    let mut rest = v.clone();
    if let Some(o) = rest.as_object_mut() {
        o.remove("Aliases");
        if let Some(i) = o.get_mut("IPAMConfig").and_then(Value::as_object_mut) {
            i.remove("IPv4Address");
            i.remove("IPv6Address");
        }
    }
    if crate::model::unsupported::is_zero(&rest) {
        return Ok(());
    }
    Err(Error::BadParameter(format!(
        "EndpointConfig.* of network {network:?} (links, MAC, link-local addresses, driver options) is not supported by berth yet: {rest}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_networks_in_order() {
        let host = HostConfig {
            network_mode: Field::Set("front".into()),
            ..Default::default()
        };
        let net = json!({"EndpointsConfig": {
            "back": {"Aliases": ["db"]},
            "front": {"IPAMConfig": {"IPv4Address": "10.9.0.7", "IPv6Address": "fd12::7"}}}});
        let l = from_request(&host, Some(&net)).unwrap();
        assert_eq!(l[0].network, "front");
        assert_eq!(l[0].ip, Some("10.9.0.7".parse().unwrap()));
        assert_eq!(l[0].ip6, Some("fd12::7".parse().unwrap()));
        assert_eq!(l[1].network, "back");
        assert_eq!(l[1].aliases, vec!["db".to_string()]);
        let bad = json!({"EndpointsConfig": {"front": {"IPAMConfig": {"IPv4Address": "x"}}}});
        assert!(from_request(&host, Some(&bad)).is_err());
    }
}
