//! NAT and published ports in berth's own nftables table, one per bridge
//! (`table ip berth-<bridge>`), through the `nftables` crate (JSON to `nft -j`). berth makes
//! and deletes that table only: other tables (dockerd's iptables-nft ones, the host's) are
//! never listed for change, flushed or edited.
//!
//! ```text
//! table ip berth-<bridge> {
//!   chain prerouting  { type nat hook prerouting priority dstnat; fib daddr type local jump ports }
//!   chain output      { type nat hook output priority -100;      fib daddr type local jump ports }
//!   chain ports       { [ip daddr HOST_IP] tcp dport HOST_PORT dnat to CONTAINER_IP:PORT comment ID ... }
//!   chain postrouting { type nat hook postrouting priority srcnat;
//!                       ip saddr SUBNET oifname != <bridge> masquerade          # outbound
//!                       ip saddr 127.0.0.0/8 oifname <bridge> masquerade        # host's loopback -> a port
//!                       iifname <bridge> oifname <bridge> ct status dnat masquerade }  # hairpin
//!   chain forward     { type filter hook forward priority filter;
//!                       oifname <bridge> iifname != <bridge> ct state established,related accept
//!                       oifname <bridge> iifname != <bridge> ct status dnat accept
//!                       oifname <bridge> iifname != <bridge> drop }   # only published ports come in
//! }
//! ```
//!
//! A network with IPv6 (`--ipv6`) has a second table, `table ip6 berth-<bridge>`, with the
//! same masquerade of its IPv6 subnet leaving the bridge and the same forward chain (or, for
//! `--internal`, the same two drops); published ports are IPv4 only (not made on IPv6).
//!
//! Loopback: published ports are DNATed in the output hook as well, so `127.0.0.1:PORT`
//! reaches the container with no userland proxy in the path (the kernel forwards at full
//! speed); this needs `route_localnet` on the bridge (set by [`crate::bridge::Bridge::ensure`])
//! and the loopback masquerade rule above, so that the container answers the gateway.

use std::net::Ipv4Addr;

use nftables::helper::{self, NftablesError};
use nftables::schema::Nftables;
use serde_json::{json, Value};

use crate::ports::PortMapping;
use crate::subnet::Subnet;

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("nft (from the nftables package) is needed for bridge networking: {0}")]
    Nft(#[source] NftablesError),
    #[error("{what}: {source}")]
    Apply {
        what: String,
        #[source]
        source: NftablesError,
    },
    #[error("{what}: the rule set does not fit the nftables schema: {source}")]
    Schema {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

/// berth's table for one bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firewall {
    table: String,
    bridge: String,
    subnet: Subnet,
    internal: bool,
    /// The IPv6 subnet (its own `ip6` table).
    subnet6: Option<Subnet>,
}

impl Firewall {
    pub fn new(bridge: &str, subnet: Subnet) -> Firewall {
        Firewall {
            table: format!("berth-{bridge}"),
            bridge: bridge.to_string(),
            subnet,
            internal: false,
            subnet6: None,
        }
    }

    /// A network with IPv6: its `ip6` table (masquerade of `subnet6`, forward rules).
    pub fn ipv6(mut self, subnet6: Option<Subnet>) -> Firewall {
        self.subnet6 = subnet6;
        self
    }

    /// An `--internal` network's table: no masquerade, and nothing forwarded into or out
    /// of the bridge (only traffic between its own ports).
    pub fn internal(mut self, internal: bool) -> Firewall {
        self.internal = internal;
        self
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Make the table anew (one transaction: a table a previous daemon left is replaced, with
    /// no moment where the host has half of it). Published ports are added back by
    /// [`Firewall::publish`].
    pub fn install(&self) -> Result<(), FirewallError> {
        let t = &self.table;
        let br = &self.bridge;
        let mut cmds = vec![
            json!({"add": {"table": {"family": "ip", "name": t}}}),
            json!({"delete": {"table": {"family": "ip", "name": t}}}),
            json!({"add": {"table": {"family": "ip", "name": t}}}),
        ];
        for (name, ty, hook, prio) in [
            ("prerouting", "nat", "prerouting", -100),
            ("output", "nat", "output", -100),
            ("postrouting", "nat", "postrouting", 100),
            ("forward", "filter", "forward", 0),
        ] {
            cmds.push(
                json!({"add": {"chain": {"family": "ip", "table": t, "name": name,
                "type": ty, "hook": hook, "prio": prio, "policy": "accept"}}}),
            );
        }
        cmds.push(json!({"add": {"chain": {"family": "ip", "table": t, "name": "ports"}}}));
        let local_dst = json!({"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}});
        for chain in ["prerouting", "output"] {
            cmds.push(rule(
                t,
                chain,
                vec![local_dst.clone(), json!({"jump": {"target": "ports"}})],
            ));
        }
        let (net, len) = (self.subnet.network().to_string(), self.subnet.prefix_len());
        let oif = |op: &str| json!({"match": {"op": op, "left": {"meta": {"key": "oifname"}}, "right": br}});
        let iif = |op: &str| json!({"match": {"op": op, "left": {"meta": {"key": "iifname"}}, "right": br}});
        let saddr = |n: &str, l: u8| json!({"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": n, "len": l}}}});
        let dnatted =
            json!({"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}});
        if self.internal {
            // (Docker's internal networks: no route out, nothing in.)
            for chain_rule in [vec![iif("=="), oif("!=")], vec![oif("=="), iif("!=")]] {
                let mut e = chain_rule;
                e.push(json!({"drop": null}));
                cmds.push(rule(t, "forward", e));
            }
            cmds.extend(self.ip6_cmds());
            return self.apply("create nftables table", cmds);
        }
        let masq = json!({"masquerade": null});
        cmds.push(rule(
            t,
            "postrouting",
            vec![saddr(&net, len), oif("!="), masq.clone()],
        ));
        cmds.push(rule(
            t,
            "postrouting",
            vec![saddr("127.0.0.0", 8), oif("=="), masq.clone()],
        ));
        cmds.push(rule(
            t,
            "postrouting",
            vec![iif("=="), oif("=="), dnatted.clone(), masq],
        ));
        let established = json!({"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}});
        for verdict in [
            vec![established, json!({"accept": null})],
            vec![dnatted, json!({"accept": null})],
            vec![json!({"drop": null})],
        ] {
            let mut e = vec![oif("=="), iif("!=")];
            e.extend(verdict);
            cmds.push(rule(t, "forward", e));
        }
        cmds.extend(self.ip6_cmds());
        self.apply("create nftables table", cmds)
    }

    /// The `ip6` table anew (nothing if the network has no IPv6): masquerade of the subnet
    /// leaving the bridge and the forward chain, as the `ip` table's; an internal network's
    /// two drops.
    fn ip6_cmds(&self) -> Vec<Value> {
        let Some(subnet6) = self.subnet6 else {
            return Vec::new();
        };
        let t = &self.table;
        let br = &self.bridge;
        let mut cmds = vec![
            json!({"add": {"table": {"family": "ip6", "name": t}}}),
            json!({"delete": {"table": {"family": "ip6", "name": t}}}),
            json!({"add": {"table": {"family": "ip6", "name": t}}}),
        ];
        for (name, ty, hook, prio) in [
            ("postrouting", "nat", "postrouting", 100),
            ("forward", "filter", "forward", 0),
        ] {
            cmds.push(
                json!({"add": {"chain": {"family": "ip6", "table": t, "name": name,
                "type": ty, "hook": hook, "prio": prio, "policy": "accept"}}}),
            );
        }
        let oif = |op: &str| json!({"match": {"op": op, "left": {"meta": {"key": "oifname"}}, "right": br}});
        let iif = |op: &str| json!({"match": {"op": op, "left": {"meta": {"key": "iifname"}}, "right": br}});
        let rule6 = |chain: &str, expr: Vec<Value>| json!({"add": {"rule": {"family": "ip6", "table": t, "chain": chain, "expr": expr}}});
        if self.internal {
            for mut e in [vec![iif("=="), oif("!=")], vec![oif("=="), iif("!=")]] {
                e.push(json!({"drop": null}));
                cmds.push(rule6("forward", e));
            }
            return cmds;
        }
        let saddr = json!({"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}},
            "right": {"prefix": {"addr": subnet6.network().to_string(), "len": subnet6.prefix_len()}}}});
        cmds.push(rule6(
            "postrouting",
            vec![saddr, oif("!="), json!({"masquerade": null})],
        ));
        let established = json!({"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}});
        let dnatted =
            json!({"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}});
        for verdict in [
            vec![established, json!({"accept": null})],
            vec![dnatted, json!({"accept": null})],
            vec![json!({"drop": null})],
        ] {
            let mut e = vec![oif("=="), iif("!=")];
            e.extend(verdict);
            cmds.push(rule6("forward", e));
        }
        cmds
    }

    /// Delete the table and its `ip6` sibling (and every rule in them); nothing if gone.
    pub fn remove(&self) -> Result<(), FirewallError> {
        let t = &self.table;
        self.apply(
            "delete nftables table",
            vec![
                json!({"add": {"table": {"family": "ip", "name": t}}}),
                json!({"delete": {"table": {"family": "ip", "name": t}}}),
                json!({"add": {"table": {"family": "ip6", "name": t}}}),
                json!({"delete": {"table": {"family": "ip6", "name": t}}}),
            ],
        )
    }

    /// DNAT each of `ports` to `ip`, the rules tagged with `owner` (the container's ID).
    pub fn publish(
        &self,
        owner: &str,
        ip: Ipv4Addr,
        ports: &[PortMapping],
    ) -> Result<(), FirewallError> {
        if ports.is_empty() {
            return Ok(());
        }
        let cmds = ports
            .iter()
            .map(|p| {
                let mut e = Vec::new();
                if !p.host_ip.is_unspecified() {
                    e.push(json!({"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": p.host_ip.to_string()}}));
                }
                e.push(json!({"match": {"op": "==", "left": {"payload": {"protocol": p.proto.as_str(), "field": "dport"}}, "right": p.host_port}}));
                e.push(json!({"dnat": {"addr": ip.to_string(), "port": p.container_port}}));
                let mut r = rule(&self.table, "ports", e);
                r["add"]["rule"]["comment"] = json!(owner);
                r
            })
            .collect();
        self.apply(&format!("publish the ports of {owner}"), cmds)
    }

    /// Delete the rules tagged with `owner`; how many there were.
    pub fn unpublish(&self, owner: &str) -> Result<usize, FirewallError> {
        let handles = self.rule_handles(owner)?;
        if handles.is_empty() {
            return Ok(0);
        }
        let cmds = handles
            .iter()
            .map(|h| json!({"delete": {"rule": {"family": "ip", "table": self.table, "chain": "ports", "handle": h, "expr": []}}}))
            .collect();
        self.apply(&format!("remove the published ports of {owner}"), cmds)?;
        Ok(handles.len())
    }

    /// Whether the table exists (and its `ip6` sibling, for a network with IPv6).
    pub fn exists(&self) -> Result<bool, FirewallError> {
        let ip = self.family_exists("ip")?;
        if !ip || self.subnet6.is_none() {
            return Ok(ip);
        }
        self.family_exists("ip6")
    }

    /// Whether berth's `ip6` table for this bridge exists.
    pub fn exists6(&self) -> Result<bool, FirewallError> {
        self.family_exists("ip6")
    }

    fn family_exists(&self, family: &str) -> Result<bool, FirewallError> {
        match helper::get_current_ruleset_raw(
            helper::DEFAULT_NFT,
            ["list", "table", family, self.table.as_str()],
        ) {
            Ok(_) => Ok(true),
            Err(NftablesError::NftFailed { .. }) => Ok(false),
            Err(e) => Err(FirewallError::Nft(e)),
        }
    }

    /// The handles of the rules tagged `owner` in the `ports` chain.
    pub fn rule_handles(&self, owner: &str) -> Result<Vec<u32>, FirewallError> {
        let set = match helper::get_current_ruleset_with_args(
            helper::DEFAULT_NFT,
            ["-a", "list", "chain", "ip", self.table.as_str(), "ports"],
        ) {
            Ok(s) => s,
            Err(NftablesError::NftFailed { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(FirewallError::Nft(e)),
        };
        Ok(set
            .objects
            .iter()
            .filter_map(|o| match o {
                nftables::schema::NfObject::ListObject(nftables::schema::NfListObject::Rule(r))
                    if r.comment.as_deref() == Some(owner) =>
                {
                    r.handle
                }
                _ => None,
            })
            .collect())
    }

    fn apply(&self, what: &str, cmds: Vec<Value>) -> Result<(), FirewallError> {
        let batch: Nftables =
            serde_json::from_value(json!({ "nftables": cmds })).map_err(|source| {
                FirewallError::Schema {
                    what: what.to_string(),
                    source,
                }
            })?;
        helper::apply_ruleset(&batch).map_err(|source| match source {
            NftablesError::NftExecution { .. } => FirewallError::Nft(source),
            source => FirewallError::Apply {
                what: format!("{what} {}", self.table),
                source,
            },
        })
    }
}

/// Whether any `ip` table named `berth-*` exists (another berth daemon's bridge).
pub fn any_berth_table() -> Result<bool, FirewallError> {
    let set = helper::get_current_ruleset_with_args(helper::DEFAULT_NFT, ["list", "tables", "ip"])
        .map_err(FirewallError::Nft)?;
    Ok(set.objects.iter().any(|o| {
        matches!(o, nftables::schema::NfObject::ListObject(nftables::schema::NfListObject::Table(t))
            if t.name.starts_with("berth-"))
    }))
}

fn rule(table: &str, chain: &str, expr: Vec<Value>) -> Value {
    json!({"add": {"rule": {"family": "ip", "table": table, "chain": chain, "expr": expr}}})
}
