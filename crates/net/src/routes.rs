//! What the host already uses: routes and interface addresses, read from `/proc/net`.
//!
//! A new network's subnet must not overlap anything the host reaches already, or the bridge's
//! route would shadow it. Checked, all read-only:
//!
//! * `/proc/net/route`: the IPv4 main routing table. It also covers the host's own IPv4
//!   addresses, as each one adds a prefix route to its subnet (except `/32` addresses and
//!   addresses added with `noprefixroute`, which only `/proc/net/fib_trie` shows; not read).
//! * `/proc/net/ipv6_route`: every IPv6 routing table, including the local table's `/128`
//!   entries of the host's own addresses.
//! * `/proc/net/if_inet6`: the IPv6 addresses on interfaces with their prefix lengths.
//!
//! The IPv6 files are optional (missing when IPv6 is disabled); `/proc/net/route` is not.
//!
//! Default routes (`0.0.0.0/0`, `::/0`) never count: they overlap everything. Which other routes
//! count is a [`RouteFilter`]: by default all of them (dockerd before Engine 23 did the same),
//! or only on-link routes (no gateway), what dockerd checks since Engine 23 (moby#42598) so
//! that a VPN pushing wide routes via a gateway does not use up every pool. dockerd also
//! keeps clear of the nameservers in `/etc/resolv.conf`: the caller can add those with
//! [`resolv_conf_nameservers`] and [`Subnet::host`] (this module only reads `/proc/net`).
//!
//! The source of routes is a [`RouteSource`], so tests (and callers with their own view of the
//! host) feed fixtures instead of `/proc`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use crate::subnet::Subnet;

/// Where a [`HostRoute`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteOrigin {
    /// A routing table entry.
    Route,
    /// An address configured on an interface (its subnet).
    Address,
}

/// A prefix the host uses: a route or the subnet of an interface address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostRoute {
    /// The destination (for an address: the address's subnet).
    pub dst: Subnet,
    /// The next hop, for a route via a gateway.
    pub gateway: Option<IpAddr>,
    /// The interface name.
    pub iface: String,
    /// Route or address.
    pub origin: RouteOrigin,
}

impl HostRoute {
    /// True for a default route (prefix length 0).
    pub fn is_default(&self) -> bool {
        self.dst.prefix_len() == 0
    }

    /// True if the destination is reached directly on the interface (no gateway).
    pub fn is_on_link(&self) -> bool {
        self.gateway.is_none()
    }
}

/// Which host routes a new network must stay clear of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouteFilter {
    /// Every route and address but the default routes.
    #[default]
    All,
    /// Only on-link routes and addresses (dockerd since Engine 23).
    OnLink,
}

/// Why the host's routes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A line of a file is not in the kernel's format.
    #[error("{path}: line {line}: {reason}: {text:?}")]
    Parse {
        /// The file (or the name given to parsed text).
        path: PathBuf,
        /// The line number (1-based).
        line: usize,
        /// The line's text.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Something that lists the host's routes and addresses.
pub trait RouteSource {
    /// Every route and interface-address prefix of the host, default routes included.
    fn host_routes(&self) -> Result<Vec<HostRoute>, RouteError>;
}

/// A fixed list (tests, or a caller with its own view of the host).
impl RouteSource for [HostRoute] {
    fn host_routes(&self) -> Result<Vec<HostRoute>, RouteError> {
        Ok(self.to_vec())
    }
}

/// A fixed list (tests, or a caller with its own view of the host).
impl RouteSource for Vec<HostRoute> {
    fn host_routes(&self) -> Result<Vec<HostRoute>, RouteError> {
        Ok(self.clone())
    }
}

/// The host's routes from `/proc/net` files (or a directory holding copies of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcNet {
    dir: PathBuf,
}

impl Default for ProcNet {
    fn default() -> Self {
        ProcNet::new()
    }
}

impl ProcNet {
    /// The calling process's network namespace: `/proc/net`.
    pub fn new() -> ProcNet {
        ProcNet {
            dir: PathBuf::from("/proc/net"),
        }
    }

    /// Files named `route`, `ipv6_route`, `if_inet6` in `dir` (`/proc/<pid>/net`, fixtures).
    pub fn at(dir: impl Into<PathBuf>) -> ProcNet {
        ProcNet { dir: dir.into() }
    }

    /// The directory read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl RouteSource for ProcNet {
    fn host_routes(&self) -> Result<Vec<HostRoute>, RouteError> {
        let read = |name: &str, required: bool| -> Result<Option<(PathBuf, String)>, RouteError> {
            let path = self.dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(Some((path, text))),
                Err(e) if !required && e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(RouteError::Read { path, source }),
            }
        };
        let mut routes = Vec::new();
        if let Some((path, text)) = read("route", true)? {
            routes.extend(parse_ipv4_routes(&path, &text)?);
        }
        if let Some((path, text)) = read("ipv6_route", false)? {
            routes.extend(parse_ipv6_routes(&path, &text)?);
        }
        if let Some((path, text)) = read("if_inet6", false)? {
            routes.extend(parse_if_inet6(&path, &text)?);
        }
        Ok(routes)
    }
}

/// The prefixes a new network must not overlap: the non-default routes and addresses of
/// `source` that `filter` keeps, sorted and without duplicates.
pub fn host_reserved(
    source: &(impl RouteSource + ?Sized),
    filter: RouteFilter,
) -> Result<Vec<Subnet>, RouteError> {
    Ok(reserved_subnets(&source.host_routes()?, filter))
}

/// [`host_reserved`] over a list already read.
pub fn reserved_subnets(routes: &[HostRoute], filter: RouteFilter) -> Vec<Subnet> {
    let mut out: Vec<Subnet> = routes
        .iter()
        .filter(|r| !r.is_default())
        .filter(|r| filter == RouteFilter::All || r.is_on_link())
        .map(|r| r.dst)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The `nameserver` addresses of a resolv.conf text (dockerd keeps new networks clear of
/// them). Zone suffixes (`fe80::1%eth0`) are dropped; lines that are not addresses skipped.
pub fn resolv_conf_nameservers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        .filter_map(|addr| addr.split('%').next().and_then(|a| a.parse().ok()))
        .collect()
}

const RTF_GATEWAY: u32 = 0x0002;

/// Parses `/proc/net/route` (the IPv4 main table). `path` only names the text in errors.
///
/// Addresses there are the kernel's big-endian `__be32` printed as a host-order integer, so
/// the bytes of the parsed integer in host order are the address bytes.
pub fn parse_ipv4_routes(path: &Path, text: &str) -> Result<Vec<HostRoute>, RouteError> {
    parse_ipv4_routes_in(path, text, u32::to_ne_bytes)
}

fn parse_ipv4_routes_in(
    path: &Path,
    text: &str,
    bytes: fn(u32) -> [u8; 4],
) -> Result<Vec<HostRoute>, RouteError> {
    let mut routes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() || (i == 0 && fields[0] == "Iface") {
            continue;
        }
        let err = |reason: &str| RouteError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            text: line.to_string(),
            reason: reason.to_string(),
        };
        if fields.len() < 8 {
            return Err(err("expected at least 8 fields"));
        }
        let hex = |s: &str, what: &str| {
            u32::from_str_radix(s, 16)
                .map_err(|_| err(&format!("{what} {s:?} is not a hex number")))
        };
        let dst = Ipv4Addr::from(bytes(hex(fields[1], "destination")?));
        let gateway = Ipv4Addr::from(bytes(hex(fields[2], "gateway")?));
        let flags = hex(fields[3], "flags")?;
        let mask = u32::from(Ipv4Addr::from(bytes(hex(fields[7], "mask")?)));
        if mask.leading_ones() + mask.trailing_zeros() != 32 {
            return Err(err("mask is not a prefix mask"));
        }
        // leading_ones() <= 32, so the narrowing cannot lose anything.
        let prefix = mask.leading_ones() as u8;
        let dst = Subnet::containing(IpAddr::V4(dst), prefix).map_err(|e| err(&e.to_string()))?;
        let gateway =
            (flags & RTF_GATEWAY != 0 || !gateway.is_unspecified()).then_some(IpAddr::V4(gateway));
        routes.push(HostRoute {
            dst,
            gateway,
            iface: fields[0].to_string(),
            origin: RouteOrigin::Route,
        });
    }
    Ok(routes)
}

/// Parses `/proc/net/ipv6_route`: destination, prefix length, source, source prefix length,
/// next hop, metric, refcount, use, flags, interface. `path` only names the text in errors.
pub fn parse_ipv6_routes(path: &Path, text: &str) -> Result<Vec<HostRoute>, RouteError> {
    let mut routes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let err = |reason: &str| RouteError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            text: line.to_string(),
            reason: reason.to_string(),
        };
        if fields.len() < 10 {
            return Err(err("expected 10 fields"));
        }
        let dst =
            parse_hex_ipv6(fields[0]).ok_or_else(|| err("destination is not 32 hex digits"))?;
        let prefix = u8::from_str_radix(fields[1], 16)
            .map_err(|_| err("prefix length is not a hex byte"))?;
        let next_hop =
            parse_hex_ipv6(fields[4]).ok_or_else(|| err("next hop is not 32 hex digits"))?;
        let flags =
            u32::from_str_radix(fields[8], 16).map_err(|_| err("flags are not a hex number"))?;
        let dst = Subnet::containing(IpAddr::V6(dst), prefix).map_err(|e| err(&e.to_string()))?;
        let gateway = (flags & RTF_GATEWAY != 0 || !next_hop.is_unspecified())
            .then_some(IpAddr::V6(next_hop));
        routes.push(HostRoute {
            dst,
            gateway,
            iface: fields[9].to_string(),
            origin: RouteOrigin::Route,
        });
    }
    Ok(routes)
}

/// Parses `/proc/net/if_inet6`: address, interface index, prefix length, scope, flags, name;
/// each address becomes the subnet it is configured in. `path` only names the text in errors.
pub fn parse_if_inet6(path: &Path, text: &str) -> Result<Vec<HostRoute>, RouteError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let err = |reason: &str| RouteError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            text: line.to_string(),
            reason: reason.to_string(),
        };
        if fields.len() < 6 {
            return Err(err("expected 6 fields"));
        }
        let addr = parse_hex_ipv6(fields[0]).ok_or_else(|| err("address is not 32 hex digits"))?;
        let prefix = u8::from_str_radix(fields[2], 16)
            .map_err(|_| err("prefix length is not a hex byte"))?;
        let dst = Subnet::containing(IpAddr::V6(addr), prefix).map_err(|e| err(&e.to_string()))?;
        out.push(HostRoute {
            dst,
            gateway: None,
            iface: fields[5].to_string(),
            origin: RouteOrigin::Address,
        });
    }
    Ok(out)
}

/// 32 hex digits, most significant first, as an IPv6 address.
fn parse_hex_ipv6(s: &str) -> Option<Ipv6Addr> {
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(s, 16).ok().map(Ipv6Addr::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{pick_subnet, AddressPool};
    use crate::subnet::Family;

    /// `/proc/net/route` of an x86_64 laptop running Docker, in the kernel's layout (header,
    /// tabs, little-endian hex; [`kernel_padded`] adds the blanks the kernel pads lines with):
    /// default via 192.168.1.1, docker0's 172.17.0.0/16, the LAN, a compose network's bridge,
    /// and a host route via the gateway.
    const ROUTE_DOCKER_HOST: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wlp2s0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
wlp2s0\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0
br-5c1a8f3e2b7d\t000013AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
wlp2s0\t0A0A0A0A\t0101A8C0\t0007\t0\t0\t0\tFFFFFFFF\t0\t0\t0
";

    /// `/proc/net/ipv6_route` of a host with a ULA LAN, link-local, its own addresses in the
    /// local table, multicast and the kernel's unreachable default in the null table.
    const IPV6_ROUTE: &str = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0
fd420000000000000000000000000000 30 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
fd000000000000000000000000000002 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000003 00000000 80200001     eth0
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000003 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";

    const IF_INET6: &str = "\
00000000000000000000000000000001 01 80 10 80       lo
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
fd000000000000000000000000000002 04 40 00 82     eth0
";

    fn s(text: &str) -> Subnet {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn le(v: u32) -> [u8; 4] {
        v.to_le_bytes()
    }

    /// Each line padded with blanks to 127 characters, as the kernel prints /proc/net/route.
    fn kernel_padded(text: &str) -> String {
        text.lines().map(|l| format!("{l:<127}\n")).collect()
    }

    fn ipv4_fixture() -> Vec<HostRoute> {
        parse_ipv4_routes_in(Path::new("route"), &kernel_padded(ROUTE_DOCKER_HOST), le).unwrap()
    }

    #[test]
    fn parses_proc_net_route() {
        let routes = ipv4_fixture();
        assert_eq!(routes.len(), 5);
        assert_eq!(routes[0].dst, s("0.0.0.0/0"));
        assert_eq!(routes[0].gateway, Some(ip("192.168.1.1")));
        assert!(routes[0].is_default());
        assert_eq!(routes[1].dst, s("172.17.0.0/16"));
        assert_eq!(routes[1].iface, "docker0");
        assert!(routes[1].is_on_link());
        assert_eq!(routes[2].dst, s("192.168.1.0/24"));
        assert_eq!(routes[3].dst, s("172.19.0.0/16"));
        assert_eq!(routes[4].dst, s("10.10.10.10/32"));
        assert_eq!(routes[4].gateway, Some(ip("192.168.1.1")));
        assert_eq!(routes[4].origin, RouteOrigin::Route);
    }

    #[test]
    fn docker0_host_picks_172_18() {
        let routes = ipv4_fixture();
        let reserved = reserved_subnets(&routes, RouteFilter::All);
        assert!(
            !reserved.contains(&s("0.0.0.0/0")),
            "the default route must not count"
        );
        assert_eq!(
            reserved,
            vec![
                s("10.10.10.10/32"),
                s("172.17.0.0/16"),
                s("172.19.0.0/16"),
                s("192.168.1.0/24")
            ]
        );
        let pools = AddressPool::docker_defaults();
        assert_eq!(
            pick_subnet(&pools, Family::V4, &reserved).unwrap(),
            s("172.18.0.0/16")
        );
        // With 172.18.0.0/16 taken by another berth network, the next free one is 172.20.
        let mut taken = reserved.clone();
        taken.push(s("172.18.0.0/16"));
        assert_eq!(
            pick_subnet(&pools, Family::V4, &taken).unwrap(),
            s("172.20.0.0/16")
        );
    }

    #[test]
    fn on_link_filter_ignores_gateway_routes() {
        let mut routes = ipv4_fixture();
        // A VPN's split default route via a gateway would otherwise cover every pool.
        routes.push(HostRoute {
            dst: s("128.0.0.0/1"),
            gateway: Some(ip("10.8.0.1")),
            iface: "tun0".into(),
            origin: RouteOrigin::Route,
        });
        let pools = AddressPool::docker_defaults();
        let all = reserved_subnets(&routes, RouteFilter::All);
        assert!(pick_subnet(&pools, Family::V4, &all).is_err());
        let on_link = reserved_subnets(&routes, RouteFilter::OnLink);
        assert_eq!(
            on_link,
            vec![s("172.17.0.0/16"), s("172.19.0.0/16"), s("192.168.1.0/24")]
        );
        assert_eq!(
            pick_subnet(&pools, Family::V4, &on_link).unwrap(),
            s("172.18.0.0/16")
        );
    }

    #[test]
    fn proc_net_route_parse_errors_name_file_and_line() {
        let bad = "Iface\tDestination\n eth0 0000000G 00000000 0001 0 0 0 00000000 0 0 0\n";
        let err = parse_ipv4_routes(Path::new("/proc/net/route"), bad).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("/proc/net/route: line 2: destination \"0000000G\""),
            "{msg}"
        );
        let short = "eth0 00000000 00000000\n";
        let err = parse_ipv4_routes(Path::new("route"), short).unwrap_err();
        assert!(matches!(err, RouteError::Parse { line: 1, .. }), "{err}");
        let holey = "eth0 00000000 00000000 0001 0 0 0 00FF00FF 0 0 0\n";
        let err = parse_ipv4_routes(Path::new("route"), holey).unwrap_err();
        assert!(err.to_string().contains("not a prefix mask"), "{err}");
        assert!(parse_ipv4_routes(Path::new("route"), "")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn parses_ipv6_routes_and_addresses() {
        let routes = parse_ipv6_routes(Path::new("ipv6_route"), IPV6_ROUTE).unwrap();
        assert_eq!(routes.len(), 8);
        assert_eq!(routes[0].dst, s("fd00::/64"));
        assert!(routes[0].is_on_link());
        assert!(routes[2].is_default());
        assert_eq!(routes[2].gateway, Some(ip("fd00::1")));
        assert_eq!(routes[3].dst, s("fd42::/48"));
        assert_eq!(routes[4].dst, s("::1/128"));
        assert_eq!(routes[4].iface, "lo");
        assert_eq!(routes[6].dst, s("ff00::/8"));
        assert!(routes[7].is_default());

        let addrs = parse_if_inet6(Path::new("if_inet6"), IF_INET6).unwrap();
        assert_eq!(addrs.len(), 3);
        assert_eq!(addrs[1].dst, s("fe80::/64"));
        assert_eq!(addrs[2].dst, s("fd00::/64"));
        assert_eq!(addrs[2].origin, RouteOrigin::Address);
        assert_eq!(addrs[2].iface, "eth0");

        let mut all = routes;
        all.extend(addrs);
        let reserved = reserved_subnets(&all, RouteFilter::All);
        assert!(!reserved.iter().any(|r| r.prefix_len() == 0));
        assert!(reserved.contains(&s("fd42::/48")));
        let on_link = reserved_subnets(&all, RouteFilter::OnLink);
        assert!(!on_link.contains(&s("fd42::/48")));
        assert!(reserved.iter().all(|r| r.family() == Family::V6));

        let pool = AddressPool::new(s("fd00::/8"), 64).unwrap();
        let picked = pick_subnet(&[pool], Family::V6, &reserved).unwrap();
        assert_eq!(picked, s("fd00:0:0:1::/64"));
    }

    #[test]
    fn ipv6_parse_errors() {
        let err =
            parse_ipv6_routes(Path::new("ipv6_route"), "fd00 40 0 0 0 0 0 0 1 eth0\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("line 1: destination is not 32 hex digits"),
            "{err}"
        );
        let err = parse_ipv6_routes(Path::new("ipv6_route"), "fd00\n").unwrap_err();
        assert!(err.to_string().contains("expected 10 fields"), "{err}");
        let line = "fd000000000000000000000000000000 99 00000000000000000000000000000000 00 00000000000000000000000000000000 0 0 0 1 eth0";
        let err = parse_ipv6_routes(Path::new("ipv6_route"), line).unwrap_err();
        assert!(err.to_string().contains("longer than 128"), "{err}");
        let err = parse_if_inet6(Path::new("if_inet6"), "zz 01 80 10 80 lo\n").unwrap_err();
        assert!(err.to_string().contains("if_inet6: line 1"), "{err}");
    }

    #[test]
    fn proc_net_source_reads_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let net = ProcNet::at(dir.path());
        let err = net.host_routes().unwrap_err();
        assert!(
            matches!(&err, RouteError::Read { path, .. } if path.ends_with("route")),
            "{err}"
        );

        // The real kernel format on this host, written as this host's byte order prints it.
        let native: String = ROUTE_DOCKER_HOST
            .lines()
            .enumerate()
            .map(|(i, line)| {
                if i == 0 {
                    return format!("{line}\n");
                }
                let mut f: Vec<String> = line.split_whitespace().map(str::to_string).collect();
                for idx in [1, 2, 7] {
                    let v = u32::from_str_radix(&f[idx], 16).unwrap();
                    f[idx] = format!("{:08X}", u32::from_ne_bytes(v.to_le_bytes()));
                }
                format!("{}\n", f.join("\t"))
            })
            .collect();
        std::fs::write(dir.path().join("route"), native).unwrap();
        let v4_only = net.host_routes().unwrap();
        assert_eq!(v4_only, ipv4_fixture());

        std::fs::write(dir.path().join("ipv6_route"), IPV6_ROUTE).unwrap();
        std::fs::write(dir.path().join("if_inet6"), IF_INET6).unwrap();
        let reserved = host_reserved(&net, RouteFilter::All).unwrap();
        assert!(reserved.contains(&s("172.17.0.0/16")));
        assert!(reserved.contains(&s("fd00::/64")));
        assert!(reserved.contains(&s("fd00::2/128")));
        assert_eq!(net.dir(), dir.path());

        // A fixed list is a source too.
        let fixed: Vec<HostRoute> = ipv4_fixture();
        assert_eq!(host_reserved(&fixed, RouteFilter::OnLink).unwrap().len(), 3);
        assert_eq!(
            host_reserved(fixed.as_slice(), RouteFilter::All)
                .unwrap()
                .len(),
            4
        );
    }

    #[test]
    fn this_hosts_proc_net_parses() {
        // Whatever this host's routes are, the kernel's files must parse.
        if Path::new("/proc/net/route").exists() {
            let routes = ProcNet::new().host_routes().unwrap();
            assert!(routes
                .iter()
                .all(|r| r.dst.prefix_len() <= r.dst.family().width()));
        }
    }

    #[test]
    fn nameservers_from_resolv_conf() {
        let text = "# generated\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nsearch example.com\n\
                    nameserver bogus\n  nameserver   192.168.1.1  # home\noptions ndots:1\nnameserver\n";
        assert_eq!(
            resolv_conf_nameservers(text),
            vec![ip("10.0.0.2"), ip("fe80::1"), ip("192.168.1.1")]
        );
        let taken: Vec<Subnet> = vec![Subnet::host(ip("172.17.0.53"))];
        let picked = pick_subnet(&AddressPool::docker_defaults(), Family::V4, &taken).unwrap();
        assert_eq!(picked, s("172.18.0.0/16"));
    }
}
