//! What the embedded name resolution reads: for each user network, the names its
//! endpoints answer to, written atomically to `<exec-root>/network/dns/<network-id>.json`
//! each time an endpoint comes or goes (a JSON array of
//! `{"name": "web", "aliases": ["db", "3c2a1b0e9f8d"], "ipv4": "172.18.0.2"}`, and
//! `"ipv6": "fd..::2"` on a network with IPv6; the aliases
//! are the `--network-alias`es and the short container ID). Removed with the network.
use super::endpoint::Endpoint;
use crate::util::internal;
use crate::Result;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One endpoint's names on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DnsEntry {
    /// The container's name (no leading `/`).
    pub name: String,
    pub aliases: Vec<String>,
    pub ipv4: String,
    /// On a network with IPv6 (AAAA answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
}

impl DnsEntry {
    pub(super) fn of(ep: &Endpoint) -> DnsEntry {
        let mut aliases = ep.aliases.clone();
        let short = &ep.container[..ep.container.len().min(12)];
        if !aliases.iter().any(|a| a == short) {
            aliases.push(short.to_string());
        }
        DnsEntry {
            name: ep.name.clone(),
            aliases,
            ipv4: ep.ip.to_string(),
            ipv6: ep.ip6.map(|a| a.to_string()),
        }
    }
}

/// `<exec-root>/network/dns`.
pub(super) struct DnsDir(pub PathBuf);

impl DnsDir {
    fn path(&self, network_id: &str) -> PathBuf {
        self.0.join(format!("{network_id}.json"))
    }

    /// Write the entries of a network (sorted by name: the file changes only when they do).
    pub(super) fn write(&self, network_id: &str, mut entries: Vec<DnsEntry>) -> Result<()> {
        entries.sort_by(|a, b| a.name.cmp(&b.name).then(a.ipv4.cmp(&b.ipv4)));
        std::fs::create_dir_all(&self.0)
            .map_err(|e| internal(format!("create {}", self.0.display()), e))?;
        let b = serde_json::to_vec(&entries).map_err(|e| internal("encode the DNS entries", e))?;
        crate::util::write_atomic_nosync(&self.path(network_id), &b)
    }

    pub(super) fn remove(&self, network_id: &str) {
        let _ = std::fs::remove_file(self.path(network_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_file_is_the_documented_json() {
        let d = tempfile::tempdir().unwrap();
        let dir = DnsDir(d.path().join("dns"));
        let ep = Endpoint {
            container: "3c2a1b0e9f8d00112233".into(),
            name: "web".into(),
            network_id: "n1".into(),
            endpoint_id: "e".into(),
            ip: "172.18.0.2".parse().unwrap(),
            prefix_len: 16,
            gateway: "172.18.0.1".parse().unwrap(),
            mac: String::new(),
            veth: String::new(),
            ifname: "eth0".into(),
            aliases: vec!["db".into()],
            requested_ip: None,
            ports: Vec::new(),
            ip6: None,
            prefix_len6: 0,
            gateway6: None,
            requested_ip6: None,
        };
        dir.write("n1", vec![DnsEntry::of(&ep)]).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.path().join("dns/n1.json")).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{"name": "web", "aliases": ["db", "3c2a1b0e9f8d"], "ipv4": "172.18.0.2"}])
        );
        dir.remove("n1");
        assert!(!d.path().join("dns/n1.json").exists());
    }
}
