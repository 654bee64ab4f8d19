//! A small synchronous rtnetlink client (`netlink-packet-route` messages over a
//! `netlink-sys` socket): the few link, address and route requests the bridge driver makes.
//! Nothing here shells out to `ip`.
//!
//! A [`Netlink`] talks to the network namespace it was opened in: [`Netlink::new`] the
//! calling thread's, [`Netlink::in_netns`] another one (a container's), entered by a
//! short-lived thread of its own so that no thread of the caller changes namespace.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::mac::MacAddr;

/// A failed netlink request, naming what was asked.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("open a netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("enter the network namespace (setns): {0}")]
    Setns(#[source] io::Error),
    #[error("{what}: {source}")]
    Request {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what}: cannot decode the kernel's answer: {detail}")]
    Decode { what: String, detail: String },
}

impl NetlinkError {
    /// The kernel's errno for a refused request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Request { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// One link as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    /// The bridge (or other controller) it is a port of.
    pub master: Option<u32>,
    /// `bridge`, `veth`, ... (empty for a device without link info, e.g. a physical one).
    pub kind: String,
}

/// The peer end of a new veth pair: made directly in another namespace.
pub struct VethPeer<'a> {
    pub name: &'a str,
    pub mac: MacAddr,
    pub mtu: u32,
    pub netns: BorrowedFd<'a>,
}

/// An rtnetlink socket in one network namespace.
pub struct Netlink {
    sock: Socket,
    seq: u32,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn new() -> Result<Netlink, NetlinkError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        sock.bind_auto().map_err(NetlinkError::Socket)?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Socket)?;
        Ok(Netlink { sock, seq: 0 })
    }

    /// A socket in the network namespace `netns` (a socket stays in the namespace it was made
    /// in): made by a thread that enters it and then ends.
    pub fn in_netns(netns: BorrowedFd<'_>) -> Result<Netlink, NetlinkError> {
        let fd: RawFd = netns.as_raw_fd();
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    // SAFETY: the fd is borrowed for this scope, which the thread does not
                    // outlive; setns(2) only reads it.
                    let r = unsafe { libc::setns(fd, libc::CLONE_NEWNET) };
                    if r != 0 {
                        return Err(NetlinkError::Setns(io::Error::last_os_error()));
                    }
                    Netlink::new()
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(NetlinkError::Setns(io::Error::other(
                        "the namespace thread panicked",
                    )))
                })
        })
    }

    /// The link named `name`, if there is one.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let what = format!("look up link {name}");
        match self.request(&what, RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(answers) => Ok(answers.into_iter().find_map(|a| match a {
                RouteNetlinkMessage::NewLink(m) => Some(link_of(&m)),
                _ => None,
            })),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The link with index `index`, if there is one.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        let what = format!("look up link #{index}");
        match self.request(&what, RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(answers) => Ok(answers.into_iter().find_map(|a| match a {
                RouteNetlinkMessage::NewLink(m) => Some(link_of(&m)),
                _ => None,
            })),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create the bridge `name` (down).
    pub fn add_bridge(&mut self, name: &str, mtu: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(
            &format!("create bridge {name}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Create the veth pair `host` (up, a port of bridge `master`) and `peer` (down, made in
    /// the peer's namespace with its MAC and MTU).
    pub fn add_veth(
        &mut self,
        host: &str,
        master: u32,
        mtu: u32,
        peer: &VethPeer<'_>,
    ) -> Result<(), NetlinkError> {
        // (Not up yet: a veth end cannot open before its pair is linked, ENOTCONN.)
        let mut p = LinkMessage::default();
        p.attributes
            .push(LinkAttribute::IfName(peer.name.to_string()));
        p.attributes.push(LinkAttribute::Mtu(peer.mtu));
        p.attributes
            .push(LinkAttribute::Address(peer.mac.octets().to_vec()));
        p.attributes
            .push(LinkAttribute::NetNsFd(peer.netns.as_raw_fd()));
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        msg.attributes.push(LinkAttribute::Controller(master));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        self.request(
            &format!("create veth pair {host} / {}", peer.name),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Set link `index` up.
    pub fn set_up(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(
            &format!("set link #{index} up"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        )
        .map(drop)
    }

    /// Delete the link named `name`; `Ok(false)` if there was none.
    pub fn del_link(&mut self, name: &str) -> Result<bool, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(
            &format!("delete link {name}"),
            RouteNetlinkMessage::DelLink(msg),
            0,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The IPv4 addresses (with prefix length) of link `index`.
    pub fn ipv4_addresses(&mut self, index: u32) -> Result<Vec<(Ipv4Addr, u8)>, NetlinkError> {
        self.addresses(index, AddressFamily::Inet, "addresses", |attr| match attr {
            AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
            _ => None,
        })
    }

    /// The addresses (with prefix length) of link `index` in `family`: `pick` selects the
    /// attribute that holds one; `what` names them in the error context.
    fn addresses<T>(
        &mut self,
        index: u32,
        family: AddressFamily,
        what: &str,
        pick: impl Fn(&AddressAttribute) -> Option<T>,
    ) -> Result<Vec<(T, u8)>, NetlinkError> {
        let mut msg = AddressMessage::default();
        msg.header.family = family;
        let answers = self.request(
            &format!("list the {what} of link #{index}"),
            RouteNetlinkMessage::GetAddress(msg),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for a in answers {
            let RouteNetlinkMessage::NewAddress(m) = a else {
                continue;
            };
            if m.header.index != index {
                continue;
            }
            out.extend(
                m.attributes
                    .iter()
                    .filter_map(&pick)
                    .map(|ip| (ip, m.header.prefix_len)),
            );
        }
        Ok(out)
    }

    /// An address message for `index` in `family` with prefix length `prefix`.
    fn address_message(family: AddressFamily, index: u32, prefix: u8) -> AddressMessage {
        let mut msg = AddressMessage::default();
        msg.header.family = family;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg
    }

    /// Send `msg`, a new address `ip/prefix` for link `index`.
    fn add_address(
        &mut self,
        msg: AddressMessage,
        index: u32,
        ip: IpAddr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        self.request(
            &format!("add address {ip}/{prefix} to link #{index}"),
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Add `ip/prefix` (with its broadcast address) to link `index`.
    pub fn add_ipv4_address(
        &mut self,
        index: u32,
        ip: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        let mut msg = Self::address_message(AddressFamily::Inet, index, prefix);
        msg.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V4(ip)));
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        let bcast = Ipv4Addr::from(u32::from(ip) | !mask);
        msg.attributes.push(AddressAttribute::Broadcast(bcast));
        self.add_address(msg, index, IpAddr::V4(ip), prefix)
    }

    /// The IPv6 addresses (with prefix length) of link `index`.
    pub fn ipv6_addresses(&mut self, index: u32) -> Result<Vec<(Ipv6Addr, u8)>, NetlinkError> {
        self.addresses(
            index,
            AddressFamily::Inet6,
            "IPv6 addresses",
            |attr| match attr {
                AddressAttribute::Address(IpAddr::V6(ip)) => Some(*ip),
                _ => None,
            },
        )
    }

    /// Add `ip/prefix` to link `index` with no duplicate address detection (`nodad`): the
    /// address is usable at once, not "tentative" for a second or more. The addresses are
    /// berth's IPAM's, unique on the bridge by construction.
    pub fn add_ipv6_address(
        &mut self,
        index: u32,
        ip: Ipv6Addr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        let mut msg = Self::address_message(AddressFamily::Inet6, index, prefix);
        msg.header.flags = AddressHeaderFlags::Nodad;
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V6(ip)));
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        self.add_address(msg, index, IpAddr::V6(ip), prefix)
    }

    /// Add the IPv6 default route via `gateway` (main table).
    pub fn add_default_route6(&mut self, gateway: Ipv6Addr) -> Result<(), NetlinkError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet6;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet6(gateway)));
        self.request(
            &format!("add the IPv6 default route via {gateway}"),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Whether the namespace has an IPv6 default route (main table).
    pub fn has_default_route6(&mut self) -> Result<bool, NetlinkError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet6;
        let answers = self.request(
            "list the IPv6 routes",
            RouteNetlinkMessage::GetRoute(msg),
            NLM_F_DUMP,
        )?;
        Ok(answers.into_iter().any(|a| {
            matches!(a, RouteNetlinkMessage::NewRoute(m)
                if m.header.destination_prefix_length == 0
                    && m.header.table == RouteHeader::RT_TABLE_MAIN
                    && m.header.kind == RouteType::Unicast)
        }))
    }

    /// Add the default route via `gateway` (main table).
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<(), NetlinkError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(
            &format!("add the default route via {gateway}"),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// The link of the IPv4 default route (the uplink), if there is one.
    pub fn default_route_link(&mut self) -> Result<Option<u32>, NetlinkError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        let answers = self.request(
            "list the routes",
            RouteNetlinkMessage::GetRoute(msg),
            NLM_F_DUMP,
        )?;
        Ok(answers.into_iter().find_map(|a| match a {
            RouteNetlinkMessage::NewRoute(m)
                if m.header.destination_prefix_length == 0
                    && m.header.table == RouteHeader::RT_TABLE_MAIN =>
            {
                m.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Oif(i) => Some(*i),
                    _ => None,
                })
            }
            _ => None,
        }))
    }

    /// Send one request and collect the answers: up to the ACK, or for a dump up to DONE.
    pub(crate) fn request(
        &mut self,
        what: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        req.finalize();
        let mut buf = vec![0u8; req.buffer_len()];
        req.serialize(&mut buf);
        self.sock
            .send(&buf, 0)
            .map_err(|source| NetlinkError::Request {
                what: what.to_string(),
                source,
            })?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self
                .sock
                .recv_from_full()
                .map_err(|source| NetlinkError::Request {
                    what: what.to_string(),
                    source,
                })?;
            let mut off = 0;
            while off < data.len() {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..]).map_err(
                    |e| NetlinkError::Decode {
                        what: what.to_string(),
                        detail: e.to_string(),
                    },
                )?;
                let len = m.header.length as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                if m.header.sequence_number != seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::InnerMessage(inner) => out.push(inner),
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(out),
                        Some(_) => {
                            return Err(NetlinkError::Request {
                                what: what.to_string(),
                                source: e.to_io(),
                            })
                        }
                    },
                    NetlinkPayload::Done(_) => return Ok(out),
                    _ => {}
                }
            }
        }
    }
}

pub(crate) fn link_of(m: &LinkMessage) -> Link {
    let mut l = Link {
        index: m.header.index,
        name: String::new(),
        mtu: 0,
        master: None,
        kind: String::new(),
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::Mtu(v) => l.mtu = *v,
            LinkAttribute::Controller(v) => l.master = Some(*v),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        l.kind = k.to_string();
                    }
                }
            }
            _ => {}
        }
    }
    l
}
