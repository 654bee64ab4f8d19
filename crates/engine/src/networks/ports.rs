//! What a container publishes, from its `HostConfig.PortBindings`, `PublishAllPorts` and
//! `Config.ExposedPorts` (as dockerd reads them), and how inspect and list show it.
use crate::model::{Config, HostConfig};
use crate::{Error, Result};
use berth_net::{PortMapping, Protocol};
use serde_json::{json, Map, Value};
use std::net::Ipv4Addr;

/// One wanted publication: the host port may be 0 (any free one) or a range to pick from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub proto: Protocol,
    pub host_ip: Ipv4Addr,
    /// Inclusive; `(0, 0)`: any free port.
    pub host_ports: (u16, u16),
    pub container_port: u16,
}

impl Wanted {
    /// The mappings to try, in order (one for a single port or "any").
    pub(crate) fn candidates(&self) -> impl Iterator<Item = PortMapping> + '_ {
        (self.host_ports.0..=self.host_ports.1).map(|p| PortMapping {
            proto: self.proto,
            host_ip: self.host_ip,
            host_port: p,
            container_port: self.container_port,
        })
    }
}

/// `80/tcp`, `53/udp`, `80` (tcp) -> (port, protocol).
pub(crate) fn parse_port_key(key: &str) -> Result<(u16, Protocol)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" | "" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        o => {
            return Err(Error::BadParameter(format!(
                "invalid port {key:?}: protocol {o} is not supported (tcp, udp)"
            )))
        }
    };
    let port =
        port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
            Error::BadParameter(format!("invalid port {key:?}: not a port 1-65535"))
        })?;
    Ok((port, proto))
}

fn parse_host_port(key: &str, s: &str) -> Result<(u16, u16)> {
    let bad = || Error::BadParameter(format!("invalid host port {s:?} for {key}"));
    let s = s.trim();
    if s.is_empty() {
        return Ok((0, 0));
    }
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let b: u16 = b.trim().parse().map_err(|_| bad())?;
    if a > b || (a == 0) != (b == 0) {
        return Err(bad());
    }
    Ok((a, b))
}

fn parse_host_ip(key: &str, s: &str) -> Result<Ipv4Addr> {
    if s.is_empty() {
        return Ok(Ipv4Addr::UNSPECIFIED);
    }
    s.parse::<Ipv4Addr>().map_err(|_| {
        Error::BadParameter(format!(
            "invalid host IP {s:?} for {key}: an IPv4 address is needed (IPv6 publishing is not supported yet)"
        ))
    })
}

/// Every publication the container asks for: its `PortBindings`, and with `PublishAllPorts`
/// every exposed port not bound otherwise, on any free host port.
pub(crate) fn wanted(config: &Config, host: &HostConfig) -> Result<Vec<Wanted>> {
    let mut out = Vec::new();
    let mut bound = Vec::new();
    if let Some(pb) = host.port_bindings.get() {
        for (key, v) in pb {
            let (cport, proto) = parse_port_key(key)?;
            bound.push((cport, proto));
            let list = v.items();
            for b in list {
                out.push(Wanted {
                    proto,
                    host_ip: parse_host_ip(key, b.host_ip.str())?,
                    host_ports: parse_host_port(key, b.host_port.str())?,
                    container_port: cport,
                });
            }
        }
    }
    if host.publish_all_ports.val() {
        for (cport, proto) in exposed(config)? {
            if !bound.contains(&(cport, proto)) {
                out.push(Wanted {
                    proto,
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_ports: (0, 0),
                    container_port: cport,
                });
            }
        }
    }
    Ok(out)
}

/// The image's and the container's `ExposedPorts`, parsed.
fn exposed(config: &Config) -> Result<Vec<(u16, Protocol)>> {
    config
        .exposed_ports
        .get()
        .map(|m| m.0.keys().map(|k| parse_port_key(k)).collect())
        .unwrap_or_else(|| Ok(Vec::new()))
}

/// Inspect's `NetworkSettings.Ports`: every exposed or bound port, with its host bindings
/// (`null` when it is not published).
pub(crate) fn settings_ports(
    config: &Config,
    host: &HostConfig,
    published: &[PortMapping],
) -> Value {
    let mut m = Map::new();
    let mut keys: Vec<(u16, Protocol)> = exposed(config).unwrap_or_default();
    if let Some(pb) = host.port_bindings.get() {
        keys.extend(pb.keys().filter_map(|k| parse_port_key(k).ok()));
    }
    keys.extend(published.iter().map(|p| (p.container_port, p.proto)));
    keys.sort();
    keys.dedup();
    for (port, proto) in keys {
        let binds: Vec<Value> = published
            .iter()
            .filter(|p| p.container_port == port && p.proto == proto)
            .map(|p| json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()}))
            .collect();
        let v = if binds.is_empty() {
            Value::Null
        } else {
            Value::Array(binds)
        };
        m.insert(format!("{port}/{proto}"), v);
    }
    Value::Object(m)
}

/// The list's `Ports`: published ones with their host side, exposed ones without.
pub(crate) fn summary_ports(config: &Config, published: &[PortMapping]) -> Value {
    let mut out: Vec<Value> = published
        .iter()
        .map(|p| json!({"IP": p.host_ip.to_string(), "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto.as_str()}))
        .collect();
    for (port, proto) in exposed(config).unwrap_or_default() {
        if !published
            .iter()
            .any(|p| p.container_port == port && p.proto == proto)
        {
            out.push(json!({"PrivatePort": port, "Type": proto.as_str()}));
        }
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(v: Value) -> HostConfig {
        serde_json::from_value(v).unwrap()
    }
    fn config(v: Value) -> Config {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn bindings_and_publish_all() {
        let c = config(json!({"ExposedPorts": {"80/tcp": {}, "53/udp": {}, "443/tcp": {}}}));
        let h = host(json!({
            "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                             "9000": [{"HostIp": "", "HostPort": "9000-9002"}]},
            "PublishAllPorts": true,
        }));
        let w = wanted(&c, &h).unwrap();
        assert_eq!(w.len(), 4);
        assert_eq!(
            w[0],
            Wanted {
                proto: Protocol::Tcp,
                host_ip: Ipv4Addr::LOCALHOST,
                host_ports: (8080, 8080),
                container_port: 80
            }
        );
        assert_eq!(w[1].host_ports, (9000, 9002));
        assert_eq!(w[1].candidates().count(), 3);
        // 80/tcp is bound already: -P adds 443/tcp and 53/udp only.
        let rest: Vec<_> = w[2..]
            .iter()
            .map(|w| (w.container_port, w.proto, w.host_ports))
            .collect();
        assert!(rest.contains(&(443, Protocol::Tcp, (0, 0))));
        assert!(rest.contains(&(53, Protocol::Udp, (0, 0))));
    }

    #[test]
    fn bad_input_names_the_field() {
        let c = config(json!({}));
        for (pb, msg) in [
            (json!({"80/sctp": []}), "protocol sctp"),
            (json!({"0/tcp": []}), "not a port"),
            (
                json!({"80/tcp": [{"HostPort": "x"}]}),
                "invalid host port \"x\" for 80/tcp",
            ),
            (json!({"80/tcp": [{"HostIp": "::1"}]}), "IPv6 publishing"),
        ] {
            let e = wanted(&c, &host(json!({"PortBindings": pb}))).unwrap_err();
            assert!(e.to_string().contains(msg), "{e}");
        }
    }

    #[test]
    fn inspect_and_list_shapes() {
        let c = config(json!({"ExposedPorts": {"80/tcp": {}, "443/tcp": {}}}));
        let h = host(json!({}));
        let p = [PortMapping {
            proto: Protocol::Tcp,
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: 32768,
            container_port: 80,
        }];
        assert_eq!(
            settings_ports(&c, &h, &p),
            json!({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}], "443/tcp": null})
        );
        assert_eq!(
            summary_ports(&c, &p),
            json!([{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 32768, "Type": "tcp"},
                   {"PrivatePort": 443, "Type": "tcp"}])
        );
    }
}
