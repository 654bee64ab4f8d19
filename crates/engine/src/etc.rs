//! A container's /etc/hosts and /etc/resolv.conf as dockerd writes them, per network mode:
//! * default bridge, none: the host's resolv.conf (systemd-resolved's real one when the host
//!   file names its 127.0.0.53 stub) without localhost (and IPv6, the networks are IPv4)
//!   nameservers; none left: Google's (written, as Docker's default);
//! * a user-defined network: `nameserver 127.0.0.11` (the embedded resolver in the
//!   container's monitor, `berth_monitor_core::dns`), the host's search and options plus
//!   `ndots:0` unless an ndots is set; the host's nameservers become the resolver's upstreams;
//! * host: the host's file as it is;
//! * `container:<c>`: `c`'s files (and resolver: the namespace is shared).
//!
//! `Dns`, `DnsSearch` (`.`: none) and `DnsOptions` replace what they name; `ExtraHosts`
//! (`name:ip`, `name=ip`, `name:host-gateway`) are added to /etc/hosts before the
//! container's own address and hostname.
use crate::shared::Shared;
use crate::state::Record;
use crate::util::{write_atomic_nosync, write_json_nosync};
use crate::{Error, Result};
use berth_monitor_core::proto::DnsConfig;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Where the embedded resolver listens (and what the container's resolv.conf names).
const EMBEDDED: &str = "127.0.0.11";
/// systemd-resolved's stub, not reachable from another network namespace.
const RESOLVED_STUB: &str = "127.0.0.53";
const RESOLVED_REAL: &str = "/run/systemd/resolve/resolv.conf";
/// Docker's nameservers when the host has none a container can reach.
const FALLBACK: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// The networks' DNS files (`<dir>/<network-id>.json`, written by the networks owner).
pub(crate) fn dns_dir(exec_root: &Path) -> PathBuf {
    exec_root.join("network").join("dns")
}

/// Write the container's /etc files; for a container on a network with the embedded
/// resolver (any but the default bridge, as Docker's), the resolver's config for its monitor
/// (and `dns-networks.json` beside the files: its networks, rewritten when they change).
pub(crate) fn write(s: &Shared, rec: &Record) -> Result<Option<DnsConfig>> {
    let networks = s.networks.dns_networks(&rec.id);
    let upstreams = write_files(s, rec, !networks.is_empty())?;
    if networks.is_empty() {
        return Ok(None);
    }
    let networks_file = s.xdir(&rec.id).join("dns-networks.json");
    write_json_nosync(&networks_file, &networks)?;
    Ok(Some(DnsConfig {
        dir: dns_dir(&s.cfg.exec_root),
        networks,
        networks_file: Some(networks_file),
        upstreams,
    }))
}

/// After a connect or disconnect of a running container: its resolver's networks anew (a
/// container whose monitor runs no resolver has no such file and gets none).
pub(crate) fn refresh_dns_networks(s: &Shared, id: &str) -> Result<()> {
    let networks_file = s.xdir(id).join("dns-networks.json");
    if !networks_file.exists() {
        return Ok(());
    }
    write_json_nosync(&networks_file, &s.networks.dns_networks(id))
}

/// The container's /etc/hostname, /etc/hosts and /etc/resolv.conf, made anew at every start
/// (as Docker's are, see `etc.rs`): they live with the runtime state, not the persistent
/// record. `embedded`: the container's resolv.conf names the embedded resolver, whose
/// upstreams are returned.
fn write_files(s: &Shared, rec: &Record, embedded: bool) -> Result<Vec<SocketAddr>> {
    let d = s.etc_dir(&rec.id);
    let hostname = rec.config.hostname.str();
    let h = &rec.host_config;
    let ep = s.networks.endpoint(&rec.id);
    // (Docker's host-gateway: the bridge's address.)
    let gateway = ep.as_ref().map(|e| e.gateway).or(s.networks.gateway());
    let net = crate::spec::net_mode(h)?;
    if let crate::spec::NetMode::Container(c) = &net {
        if share_files(s, c, &d)? {
            write_atomic_nosync(&d.join("hostname"), format!("{hostname}\n").as_bytes())?;
            return Ok(Vec::new());
        }
    }
    let host_mode = net == crate::spec::NetMode::Host;
    let hosts = if host_mode {
        let mut t = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        t.push_str(&extra_hosts(h.extra_hosts.list(), gateway)?);
        t
    } else {
        // (On the bridge, the hostname is the container's address, as dockerd writes it.)
        let own = ep.map_or_else(|| "127.0.0.1".to_string(), |ep| ep.ip.to_string());
        hosts(&own, hostname, h.extra_hosts.list(), gateway)?
    };
    let mode = if host_mode {
        Mode::Host(std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
    } else if embedded {
        Mode::Embedded(read_host())
    } else {
        Mode::Legacy(read_host())
    };
    let (resolv, upstreams) = resolv_conf(mode, h);
    write_atomic_nosync(&d.join("hostname"), format!("{hostname}\n").as_bytes())?;
    write_atomic_nosync(&d.join("hosts"), hosts.as_bytes())?;
    write_atomic_nosync(&d.join("resolv.conf"), resolv.as_bytes())?;
    Ok(upstreams)
}

/// `--network container:<c>`: the files of `c` (whose network namespace, and resolver, if
/// any, are shared), as Docker does. False if `c` has none.
fn share_files(s: &Shared, c: &str, to: &Path) -> Result<bool> {
    let other = {
        let reg = s.containers.lock();
        s.containers.resolve(&reg, c)?
    };
    let from = s.etc_dir(&other);
    for f in ["hosts", "resolv.conf"] {
        let Ok(b) = std::fs::read(from.join(f)) else {
            return Ok(false);
        };
        write_atomic_nosync(&to.join(f), &b)?;
    }
    Ok(true)
}

/// A resolv.conf's parts (comments and unknown lines kept in `other`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ResolvConf {
    pub nameservers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
    pub other: Vec<String>,
}

impl ResolvConf {
    pub(crate) fn parse(text: &str) -> ResolvConf {
        let mut r = ResolvConf::default();
        for l in text.lines() {
            let mut w = l.split_whitespace();
            match w.next() {
                Some("nameserver") => r.nameservers.extend(w.next().map(String::from)),
                // (The last search/domain line wins, as in the C library.)
                Some("search" | "domain") => r.search = w.map(String::from).collect(),
                Some("options") => r.options.extend(w.map(String::from)),
                _ => r.other.push(l.to_string()),
            }
        }
        r
    }

    fn render(&self) -> String {
        let mut s = String::new();
        for l in &self.other {
            s.push_str(l);
            s.push('\n');
        }
        for n in &self.nameservers {
            s.push_str(&format!("nameserver {n}\n"));
        }
        if !self.search.is_empty() {
            s.push_str(&format!("search {}\n", self.search.join(" ")));
        }
        if !self.options.is_empty() {
            s.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        s
    }

    /// `Dns`, `DnsSearch`, `DnsOptions` in place of what the file had (each when set).
    fn overridden(mut self, h: &crate::model::HostConfig) -> ResolvConf {
        if !h.dns.list().is_empty() {
            self.nameservers = h.dns.list().to_vec();
        }
        if !h.dns_search.list().is_empty() {
            self.search = h
                .dns_search
                .list()
                .iter()
                .filter(|d| d.as_str() != ".")
                .cloned()
                .collect();
        }
        if !h.dns_options.list().is_empty() {
            self.options = h.dns_options.list().to_vec();
        }
        self
    }
}

fn is_localhost(ns: &str) -> bool {
    ns.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host's resolv.conf as containers should see it: systemd-resolved's real file when
/// /etc/resolv.conf names its stub (`etc` and `real` are the two files' texts).
pub(crate) fn host_source(etc: &str, real: impl FnOnce() -> Option<String>) -> ResolvConf {
    let r = ResolvConf::parse(etc);
    if !r.nameservers.iter().any(|n| n == RESOLVED_STUB) {
        return r;
    }
    real().map_or(r, |t| ResolvConf::parse(&t))
}

/// [`host_source`] from the host's files.
pub(crate) fn read_host() -> ResolvConf {
    let etc = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    host_source(&etc, || std::fs::read_to_string(RESOLVED_REAL).ok())
}

/// What a container's resolv.conf says, and (for the embedded resolver) its upstreams.
pub(crate) enum Mode {
    /// Host networking: the host's /etc/resolv.conf text.
    Host(String),
    /// Default bridge, none: from the host's (see [`host_source`]).
    Legacy(ResolvConf),
    /// User-defined networks: the embedded resolver, forwarding to the host's nameservers.
    Embedded(ResolvConf),
}

/// The container's resolv.conf, and the embedded resolver's upstreams (empty unless
/// `Mode::Embedded`).
pub(crate) fn resolv_conf(mode: Mode, h: &crate::model::HostConfig) -> (String, Vec<SocketAddr>) {
    let set = |d: &crate::model::HostConfig| {
        !(d.dns.list().is_empty()
            && d.dns_search.list().is_empty()
            && d.dns_options.list().is_empty())
    };
    match mode {
        Mode::Host(text) if !set(h) => (text, Vec::new()),
        Mode::Host(text) => (ResolvConf::parse(&text).overridden(h).render(), Vec::new()),
        Mode::Legacy(host) => {
            let mut r = host.overridden(h);
            r.nameservers
                .retain(|n| !is_localhost(n) && n.parse::<std::net::Ipv6Addr>().is_err());
            if r.nameservers.is_empty() {
                r.nameservers = FALLBACK.iter().map(|s| s.to_string()).collect();
            }
            (r.render(), Vec::new())
        }
        Mode::Embedded(host) => {
            let mut r = host.overridden(h);
            let mut ups: Vec<SocketAddr> = r
                .nameservers
                .iter()
                .filter(|n| !is_localhost(n))
                .filter_map(|n| n.parse::<IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, 53))
                .collect();
            if ups.is_empty() {
                ups = FALLBACK
                    .iter()
                    .filter_map(|n| n.parse::<IpAddr>().ok())
                    .map(|ip| SocketAddr::new(ip, 53))
                    .collect();
            }
            r.nameservers = vec![EMBEDDED.to_string()];
            if !r.options.iter().any(|o| o.starts_with("ndots:")) {
                r.options.push("ndots:0".into());
            }
            (r.render(), ups)
        }
    }
}

/// The lines Docker starts every container's /etc/hosts with.
const LOCALHOST: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// The container's /etc/hosts (not host mode): localhost lines, `ExtraHosts`
/// (`host-gateway` is `gateway`), then `own` (its address) with its hostname.
pub(crate) fn hosts(
    own: &str,
    hostname: &str,
    extra: &[String],
    gateway: Option<Ipv4Addr>,
) -> Result<String> {
    let mut s = LOCALHOST.to_string();
    s.push_str(&extra_hosts(extra, gateway)?);
    s.push_str(&format!("{own}\t{hostname}\n"));
    Ok(s)
}

/// `ExtraHosts` as /etc/hosts lines.
pub(crate) fn extra_hosts(extra: &[String], gateway: Option<Ipv4Addr>) -> Result<String> {
    let mut s = String::new();
    for h in extra {
        let Some((n, ip)) = h.split_once([':', '=']) else {
            continue;
        };
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        let ip = if ip == "host-gateway" {
            gateway
                .ok_or_else(|| {
                    Error::BadParameter(format!(
                        "add-host {h:?}: no host-gateway address (berthd has no bridge network)"
                    ))
                })?
                .to_string()
        } else {
            ip.to_string()
        };
        s.push_str(&format!("{ip}\t{n}\n"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HostConfig;

    fn host(v: serde_json::Value) -> HostConfig {
        crate::model::decode("HostConfig", &v).unwrap()
    }

    const HOST: &str = "# from DHCP\nnameserver 127.0.0.1\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch corp.example\noptions edns0 timeout:2\n";

    #[test]
    fn bridge_drops_localhost_and_ipv6_nameservers() {
        let (t, ups) = resolv_conf(
            Mode::Legacy(ResolvConf::parse(HOST)),
            &host(serde_json::json!({})),
        );
        assert_eq!(
            t,
            "# from DHCP\nnameserver 192.0.2.53\nsearch corp.example\noptions edns0 timeout:2\n"
        );
        assert!(ups.is_empty());
        let (t, _) = resolv_conf(
            Mode::Legacy(ResolvConf::parse("nameserver 127.0.0.53\n")),
            &host(serde_json::json!({})),
        );
        assert_eq!(t, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }

    #[test]
    fn flags_override_what_they_name() {
        let h = host(serde_json::json!({
            "Dns": ["192.0.2.1", "192.0.2.2"], "DnsSearch": ["a.test", "b.test"],
            "DnsOptions": ["ndots:3"]
        }));
        let (t, _) = resolv_conf(Mode::Legacy(ResolvConf::parse(HOST)), &h);
        assert_eq!(
            t,
            "# from DHCP\nnameserver 192.0.2.1\nnameserver 192.0.2.2\nsearch a.test b.test\noptions ndots:3\n"
        );
        // `--dns-search .`: no search domain.
        let (t, _) = resolv_conf(
            Mode::Legacy(ResolvConf::parse(HOST)),
            &host(serde_json::json!({"DnsSearch": ["."]})),
        );
        assert!(!t.contains("search"), "{t}");
        // Host mode: the host's file as is, unless a flag is set.
        let (t, _) = resolv_conf(Mode::Host(HOST.into()), &host(serde_json::json!({})));
        assert_eq!(t, HOST);
        let (t, _) = resolv_conf(Mode::Host(HOST.into()), &h);
        assert!(
            t.contains("nameserver 192.0.2.1\n") && !t.contains("127.0.0.1"),
            "{t}"
        );
    }

    #[test]
    fn user_networks_name_the_embedded_resolver() {
        let (t, ups) = resolv_conf(
            Mode::Embedded(ResolvConf::parse(HOST)),
            &host(serde_json::json!({})),
        );
        assert_eq!(
            t,
            "# from DHCP\nnameserver 127.0.0.11\nsearch corp.example\noptions edns0 timeout:2 ndots:0\n"
        );
        assert_eq!(
            ups,
            [
                "192.0.2.53:53".parse().unwrap(),
                "[2001:db8::53]:53".parse().unwrap()
            ]
        );
        let h = host(serde_json::json!({"Dns": ["192.0.2.7"], "DnsOptions": ["ndots:2"]}));
        let (t, ups) = resolv_conf(Mode::Embedded(ResolvConf::parse(HOST)), &h);
        assert!(
            t.contains("nameserver 127.0.0.11\n") && t.contains("options ndots:2\n"),
            "{t}"
        );
        assert_eq!(ups, ["192.0.2.7:53".parse().unwrap()]);
    }

    #[test]
    fn systemd_resolved_stub_is_bypassed() {
        let real = "nameserver 192.0.2.10\nsearch lan\n";
        let r = host_source("nameserver 127.0.0.53\noptions edns0 trust-ad\n", || {
            Some(real.into())
        });
        assert_eq!(r.nameservers, ["192.0.2.10"]);
        assert_eq!(r.search, ["lan"]);
        // Not a resolved host: its own file.
        let r = host_source("nameserver 192.0.2.1\n", || Some(real.into()));
        assert_eq!(r.nameservers, ["192.0.2.1"]);
        // resolved's file unreadable: the host's own.
        let r = host_source("nameserver 127.0.0.53\n", || None);
        assert_eq!(r.nameservers, ["127.0.0.53"]);
        let r = host_source("nameserver 192.0.2.1\n", || panic!("not read"));
        assert_eq!(r.nameservers, ["192.0.2.1"]);
    }

    #[test]
    fn hosts_have_extra_hosts_and_the_gateway() {
        let gw = Some(Ipv4Addr::new(10, 88, 0, 1));
        let extra = vec![
            "db:192.0.2.5".to_string(),
            "v6=[2001:db8::1]".to_string(),
            "host.docker.internal:host-gateway".to_string(),
        ];
        let h = hosts("10.88.0.2", "c1", &extra, gw).unwrap();
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(
            h.ends_with(
                "192.0.2.5\tdb\n2001:db8::1\tv6\n10.88.0.1\thost.docker.internal\n10.88.0.2\tc1\n"
            ),
            "{h}"
        );
        let e = hosts("10.88.0.2", "c1", &extra, None).unwrap_err();
        assert!(e.to_string().contains("host-gateway"), "{e}");
    }
}
