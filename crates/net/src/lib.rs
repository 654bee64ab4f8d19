//! berth-net: container networking for berth, with Docker's semantics.
//!
//! The engine (`berth-engine`) calls this crate through its library API; nothing here shells
//! out. Networking lands piece by piece, each behind a small module. This first piece is
//! **IPAM and subnet selection**, which only computes and reads: it never changes the host's
//! interfaces, routes or firewall, and reads nothing but `/proc/net` files. The bridge driver
//! (netlink, nftables) does change them: only devices and the table it made itself.
//!
//! | module | what |
//! |---|---|
//! | [`subnet`] | [`Subnet`]: IPv4/IPv6 CIDR parsing (host bits set is an error, as in dockerd), contains, overlaps, bounds, host count |
//! | [`pool`] | [`AddressPool`]: Docker's default address pools (172.17-31.0.0/16, 192.168.0.0/16 in /20s), `base=..,size=..` specs, a per-host IPv6 ULA pool; [`pick_subnet`] |
//! | [`routes`] | the host's routes and addresses from `/proc/net/{route,ipv6_route,if_inet6}` behind [`RouteSource`]; [`host_reserved`] |
//! | [`alloc`] | [`AddressAllocator`]: one subnet's addresses (`--subnet`, `--ip-range`, `--gateway`, `--aux-address`, `--ip`), next-fit order |
//! | [`network`] | [`NetworkIpam`]: a network's subnets together (dual stack) |
//! | [`store`] | [`IpamStore`]: every network's allocations persisted crash-safely, one file each; reconcile with live containers |
//! | [`mac`] | [`mac_for`]: Docker's `02:42:` + IPv4 MAC address |
//! | [`netlink`] | [`Netlink`]: a small synchronous rtnetlink client (links, addresses, routes) in one network namespace |
//! | [`bridge`] | [`Bridge`]: the bridge device with its gateway address; a veth pair per container (`eth0` inside with address, MAC, default route) |
//! | [`firewall`] | [`Firewall`]: berth's own nftables table per bridge: masquerade, published ports (DNAT, also from 127.0.0.1), hairpin |
//! | [`ports`] | [`PortMapping`]; a host port reserved by a bound socket ([`reserve`]) |
//! | [`bandwidth`] | [`Limits`]: a container's ingress/egress rate and burst from the CNI bandwidth annotations (Kubernetes quantities of bits/s) |
//! | [`tc`] | shaping of a host veth through rtnetlink tc messages: `tbf` on its egress, its ingress redirected to an `ifb` with `tbf` |
//!
//! User-defined networks are more bridges of the same driver (the engine's `networks/`), with
//! IPv6 when made with `--ipv6` (the bridge's v6 gateway, `nodad` container addresses, an `ip6`
//! table); the embedded DNS resolver is the monitor's. Next: published ports on IPv6.
//!
//! # Use (what the engine will do)
//! ```
//! use std::net::IpAddr;
//! use berth_net::{host_reserved, mac_for, AddressPool, Family, HostRoute, IpamStore, PoolConfig, RouteFilter};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! # let dir = tmp.path().join("ipam");
//! let mut ipam = IpamStore::open(dir)?; // e.g. <data root>/network/ipam
//!
//! // The engine reads the host: host_reserved(&berth_net::ProcNet::new(), RouteFilter::All)?
//! let routes: Vec<HostRoute> = Vec::new(); // an empty host, for this example
//! let host = host_reserved(&routes, RouteFilter::All)?;
//! let subnet = ipam.pick_subnet(&AddressPool::docker_defaults(), Family::V4, &host)?;
//! assert_eq!(subnet.to_string(), "172.17.0.0/16");
//!
//! ipam.create_network("3f9a", vec![PoolConfig::new(subnet)])?;
//! let ip = ipam.allocate("3f9a", Family::V4)?;
//! assert_eq!(ip, "172.17.0.2".parse::<IpAddr>()?);
//! if let IpAddr::V4(v4) = ip {
//!     assert_eq!(mac_for(v4).to_string(), "02:42:ac:11:00:02");
//! }
//! ipam.release("3f9a", ip)?;
//! # Ok(())
//! # }
//! ```

pub mod alloc;
pub mod bandwidth;
pub mod bridge;
pub mod firewall;
pub mod mac;
pub mod netlink;
pub mod network;
pub mod pool;
pub mod ports;
pub mod routes;
pub mod store;
pub mod subnet;
pub mod tc;

pub use alloc::{AddressAllocator, IpamError, PoolConfig, Reservation};
pub use bandwidth::{Limits, QuantityError, Shape};
pub use bridge::{Bridge, BridgeError, BridgeState, VethConfig};
pub use firewall::{Firewall, FirewallError};
pub use mac::{mac_for, MacAddr, MacParseError};
pub use netlink::{Link, Netlink, NetlinkError};
pub use network::NetworkIpam;
pub use pool::{pick_subnet, AddressPool, PoolError};
pub use ports::{reserve, PortMapping, PortTaken, Protocol, ReserveError};
pub use routes::{
    host_reserved, parse_if_inet6, parse_ipv4_routes, parse_ipv6_routes, reserved_subnets,
    resolv_conf_nameservers, HostRoute, ProcNet, RouteError, RouteFilter, RouteOrigin, RouteSource,
};
pub use store::{IpamStore, ReconcileReport, Rejected, StoreError};
pub use subnet::{Family, Subnet, SubnetError};
