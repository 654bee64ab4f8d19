//! Bandwidth shaping of a container's veth, on the **host** end (the container cannot lift
//! it), through rtnetlink traffic-control messages (no `tc` binary):
//!
//! - into the container = the host veth's egress: a `tbf` qdisc as its root;
//! - out of the container = the host veth's ingress: an `ingress` qdisc whose match-all `u32`
//!   filter redirects every frame (`mirred egress redirect`) to an `ifb` device, which has a
//!   `tbf` root qdisc. (A `police` action would be fewer objects, but it only drops, it does
//!   not queue: TCP out of the container then runs well below the rate; and the kernels
//!   berth targets may lack `act_police` and `cls_matchall`, which this path does not need.)
//!
//! [`shape`] is idempotent (it is applied at connect, again at a daemon's restart and at
//! `update`); [`unshape_ifb`] removes the ifb, the veth's qdiscs go with the veth.
use netlink_packet_core::{
    DefaultNla, NLM_F_CREATE, NLM_F_DUMP, NLM_F_ECHO, NLM_F_EXCL, NLM_F_REPLACE,
};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::tc::{
    TcAction, TcActionAttribute, TcActionMirrorOption, TcActionOption, TcActionType, TcAttribute,
    TcFilterU32Option, TcHandle, TcMessage, TcMirror, TcMirrorActionType, TcOption, TcU32Key,
    TcU32Selector, TcU32SelectorFlags,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::bandwidth::{Limits, Shape};
use crate::netlink::{Netlink, NetlinkError};

const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
/// `TC_LINKLAYER_ETHERNET`: the rate is for Ethernet frames (no rate table needed).
const LINKLAYER_ETHERNET: u8 = 1;
/// `htons(ETH_P_ALL)`, as the low half of a filter's `tcm_info`.
const PROTO_ALL: u32 = 0x0003u16.to_be() as u32;
/// The ingress qdisc's handle `ffff:`, the parent of its filters.
const INGRESS_HANDLE: TcHandle = TcHandle {
    major: 0xffff,
    minor: 0,
};

#[derive(Debug, thiserror::Error)]
pub enum TcError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("shape {0}: no such device")]
    NoDevice(String),
    #[error("{name} exists and is not an ifb device (it is a {kind:?} device)")]
    NotIfb { name: String, kind: String },
}

/// The ifb device that carries the egress of the container whose host veth is `veth`:
/// `ifb` + the veth name's suffix (`veth1a2b...` -> `ifb1a2b...`: the container ID's digits).
pub fn ifb_name(veth: &str) -> String {
    let suffix = veth.strip_prefix("veth").unwrap_or(veth);
    let mut n = format!("ifb{suffix}");
    n.truncate(15);
    n
}

/// Make the shaping of the host veth `veth` what `limits` say (limits absent: removed).
pub fn shape(nl: &mut Netlink, veth: &str, limits: &Limits) -> Result<(), TcError> {
    let link = nl
        .link(veth)?
        .ok_or_else(|| TcError::NoDevice(veth.to_string()))?;
    let ix = link.index;
    match &limits.ingress {
        Some(s) => nl.replace_tbf(ix, s)?,
        None => {
            if nl.qdisc_kind(ix, TcHandle::ROOT)?.as_deref() == Some("tbf") {
                nl.del_qdisc(ix, TcHandle::ROOT)?;
            }
        }
    }
    let ifb = ifb_name(veth);
    match &limits.egress {
        Some(s) => {
            let ifb_ix = ensure_ifb(nl, &ifb)?;
            nl.replace_tbf(ifb_ix, s)?;
            if !nl.redirects_to(ix, ifb_ix).unwrap_or(false) {
                if nl.qdisc_kind(ix, TcHandle::INGRESS)?.is_some() {
                    nl.del_qdisc(ix, TcHandle::INGRESS)?;
                }
                nl.add_ingress_qdisc(ix)?;
                nl.add_redirect(ix, ifb_ix)?;
            }
        }
        None => {
            if nl.qdisc_kind(ix, TcHandle::INGRESS)?.is_some() {
                nl.del_qdisc(ix, TcHandle::INGRESS)?;
            }
            unshape_ifb(nl, veth)?;
        }
    }
    Ok(())
}

/// Delete the ifb of host veth `veth` (only an ifb device of that name); `Ok(false)` if none.
pub fn unshape_ifb(nl: &mut Netlink, veth: &str) -> Result<bool, TcError> {
    let name = ifb_name(veth);
    match nl.link(&name)? {
        Some(l) if l.kind == "ifb" => Ok(nl.del_link(&name)?),
        _ => Ok(false),
    }
}

fn ensure_ifb(nl: &mut Netlink, name: &str) -> Result<u32, TcError> {
    let l = match nl.link(name)? {
        Some(l) => l,
        None => {
            nl.add_ifb(name)?;
            nl.link(name)?
                .ok_or_else(|| TcError::NoDevice(name.to_string()))?
        }
    };
    if l.kind != "ifb" {
        return Err(TcError::NotIfb {
            name: name.to_string(),
            kind: l.kind,
        });
    }
    nl.set_up(l.index)?;
    Ok(l.index)
}

/// `struct tc_tbf_qopt` for `s` (native endian, as the kernel reads it).
fn tbf_qopt(s: &Shape) -> Vec<u8> {
    let rate = u32::try_from(s.rate_bytes()).unwrap_or(u32::MAX);
    // The bucket's size as time at the rate, in psched ticks (64 ns); the kernel derives it
    // from TCA_TBF_BURST again.
    let ns = u128::from(s.burst_bytes) * 1_000_000_000 / u128::from(s.rate_bytes().max(1));
    let buffer = u32::try_from(ns >> 6).unwrap_or(u32::MAX);
    let mut b = Vec::with_capacity(36);
    // tc_ratespec rate: cell_log, linklayer, overhead, cell_align, mpu, rate.
    b.extend_from_slice(&[0, LINKLAYER_ETHERNET]);
    b.extend_from_slice(&0u16.to_ne_bytes());
    b.extend_from_slice(&0i16.to_ne_bytes());
    b.extend_from_slice(&0u16.to_ne_bytes());
    b.extend_from_slice(&rate.to_ne_bytes());
    // peakrate: none.
    b.extend_from_slice(&[0u8; 12]);
    b.extend_from_slice(&s.limit_bytes().to_ne_bytes());
    b.extend_from_slice(&buffer.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes()); // mtu (peak rate only)
    b
}

fn tc_message(index: u32, parent: TcHandle, handle: TcHandle) -> TcMessage {
    let mut m = TcMessage::default();
    m.header.index = index as i32;
    m.header.parent = parent;
    m.header.handle = handle;
    m
}

impl Netlink {
    /// Create an ifb device `name` (down).
    pub fn add_ifb(&mut self, name: &str) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::empty();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Ifb)]));
        self.request(
            &format!("create ifb device {name}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// The kind of link `index`'s qdisc at `parent` (root or ingress), if it has one.
    pub fn qdisc_kind(
        &mut self,
        index: u32,
        parent: TcHandle,
    ) -> Result<Option<String>, NetlinkError> {
        let what = format!("read the qdisc {parent} of link #{index}");
        let msg = tc_message(index, parent, TcHandle::UNSPEC);
        // (The kernel sends a qdisc GET's answer to the TC group; ECHO sends it to us.)
        match self.request(
            &what,
            RouteNetlinkMessage::GetQueueDiscipline(msg),
            NLM_F_ECHO,
        ) {
            Ok(answers) => Ok(answers.into_iter().find_map(|a| match a {
                RouteNetlinkMessage::NewQueueDiscipline(m) => {
                    m.attributes.into_iter().find_map(|a| match a {
                        TcAttribute::Kind(k) if k != "noqueue" => Some(k),
                        _ => None,
                    })
                }
                _ => None,
            })),
            Err(e) if matches!(e.errno(), Some(libc::ENOENT | libc::EINVAL)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Make (or replace) link `index`'s root qdisc a token bucket of `s`.
    pub fn replace_tbf(&mut self, index: u32, s: &Shape) -> Result<(), NetlinkError> {
        let mut m = tc_message(index, TcHandle::ROOT, TcHandle::UNSPEC);
        m.attributes.push(TcAttribute::Kind("tbf".into()));
        let mut opts = vec![
            TcOption::Other(DefaultNla::new(TCA_TBF_PARMS, tbf_qopt(s))),
            TcOption::Other(DefaultNla::new(
                TCA_TBF_BURST,
                s.burst_bytes.to_ne_bytes().to_vec(),
            )),
        ];
        if s.rate_bytes() >= u64::from(u32::MAX) {
            opts.push(TcOption::Other(DefaultNla::new(
                TCA_TBF_RATE64,
                s.rate_bytes().to_ne_bytes().to_vec(),
            )));
        }
        m.attributes.push(TcAttribute::Options(opts));
        self.request(
            &format!(
                "set a tbf qdisc ({} bit/s, burst {} bytes) on link #{index}",
                s.rate_bits, s.burst_bytes
            ),
            RouteNetlinkMessage::NewQueueDiscipline(m),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(drop)
    }

    /// Delete link `index`'s qdisc at `parent`.
    pub fn del_qdisc(&mut self, index: u32, parent: TcHandle) -> Result<(), NetlinkError> {
        let m = tc_message(index, parent, TcHandle::UNSPEC);
        self.request(
            &format!("delete the qdisc {parent} of link #{index}"),
            RouteNetlinkMessage::DelQueueDiscipline(m),
            0,
        )
        .map(drop)
    }

    /// Add the ingress qdisc (`ffff:`) to link `index`.
    pub fn add_ingress_qdisc(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut m = tc_message(index, TcHandle::INGRESS, INGRESS_HANDLE);
        m.attributes.push(TcAttribute::Kind("ingress".into()));
        self.request(
            &format!("add an ingress qdisc to link #{index}"),
            RouteNetlinkMessage::NewQueueDiscipline(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// A match-all u32 filter on link `index`'s ingress that redirects every frame to the
    /// egress of link `to`.
    pub fn add_redirect(&mut self, index: u32, to: u32) -> Result<(), NetlinkError> {
        let mut m = tc_message(index, INGRESS_HANDLE, TcHandle::UNSPEC);
        m.header.info = (1 << 16) | PROTO_ALL; // prio 1, every protocol
        let mut key = TcU32Key::default();
        key.mask = 0;
        key.val = 0;
        let mut sel = TcU32Selector::default();
        sel.flags = TcU32SelectorFlags::Terminal;
        sel.nkeys = 1;
        sel.keys = vec![key];
        let mut mirror = TcMirror::default();
        mirror.generic.action = TcActionType::Stolen;
        mirror.eaction = TcMirrorActionType::EgressRedir;
        mirror.ifindex = to;
        let mut action = TcAction::default();
        action.attributes = vec![
            TcActionAttribute::Kind("mirred".into()),
            TcActionAttribute::Options(vec![TcActionOption::Mirror(TcActionMirrorOption::Parms(
                mirror,
            ))]),
        ];
        m.attributes.push(TcAttribute::Kind("u32".into()));
        m.attributes.push(TcAttribute::Options(vec![
            TcOption::U32(TcFilterU32Option::Selector(sel)),
            TcOption::U32(TcFilterU32Option::Action(vec![action])),
        ]));
        self.request(
            &format!("redirect the ingress of link #{index} to link #{to}"),
            RouteNetlinkMessage::NewTrafficFilter(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Whether link `index`'s ingress has a filter redirecting to link `to`.
    pub fn redirects_to(&mut self, index: u32, to: u32) -> Result<bool, NetlinkError> {
        let m = tc_message(index, INGRESS_HANDLE, TcHandle::UNSPEC);
        let answers = match self.request(
            &format!("list the ingress filters of link #{index}"),
            RouteNetlinkMessage::GetTrafficFilter(m),
            NLM_F_DUMP,
        ) {
            Ok(a) => a,
            Err(e) if matches!(e.errno(), Some(libc::ENOENT | libc::EINVAL)) => return Ok(false),
            Err(e) => return Err(e),
        };
        Ok(answers.iter().any(|a| match a {
            RouteNetlinkMessage::NewTrafficFilter(f) => f.attributes.iter().any(|a| match a {
                TcAttribute::Options(opts) => opts.iter().any(|o| match o {
                    TcOption::U32(TcFilterU32Option::Action(acts)) => {
                        acts.iter().any(|act| mirrors_to(act, to))
                    }
                    _ => false,
                }),
                _ => false,
            }),
            _ => false,
        }))
    }
}

fn mirrors_to(act: &TcAction, to: u32) -> bool {
    act.attributes.iter().any(|a| match a {
        TcActionAttribute::Options(o) => o.iter().any(|o| {
            matches!(o, TcActionOption::Mirror(TcActionMirrorOption::Parms(p))
                if p.ifindex == to && p.eaction == TcMirrorActionType::EgressRedir)
        }),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifb_names_follow_the_veth() {
        assert_eq!(ifb_name("veth0123456789a"), "ifb0123456789a");
        assert_eq!(ifb_name("vethabc"), "ifbabc");
        assert!(ifb_name("averyveryverylongname").len() <= 15);
    }

    #[test]
    fn tbf_parameters_are_the_kernel_layout() {
        let s = Shape::new(10_000_000, None);
        let b = tbf_qopt(&s);
        assert_eq!(b.len(), 36);
        assert_eq!(b[1], LINKLAYER_ETHERNET);
        assert_eq!(u32::from_ne_bytes(b[8..12].try_into().unwrap()), 1_250_000);
        assert_eq!(
            u32::from_ne_bytes(b[24..28].try_into().unwrap()),
            s.limit_bytes()
        );
    }
}
