//! The names the resolver answers itself: the DNS files of the container's networks
//! (`<dir>/<network-id>.json`, a JSON array of `{"name","aliases","ipv4","ipv6"?}` written
//! write-then-rename by berthd whenever a network's endpoints change), each re-read when
//! its identity (inode, mtime, size) changes: one `stat` per file and query.
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One container on a network, as berthd writes it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct DnsEntry {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub ipv4: Ipv4Addr,
    /// Its address on an IPv6 network (dual stack).
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
}

/// What identifies one version of a file: a rename gives a new inode.
type Stamp = (u64, i64, i64, u64);

struct NetFile {
    path: PathBuf,
    stamp: Option<Stamp>,
    /// (lowercased name or alias, address).
    names: Vec<(String, IpAddr)>,
    /// (address, container name as written): what a reverse lookup answers.
    owners: Vec<(IpAddr, String)>,
}

/// The networks' files; which networks may change (the optional `networks_file`: a JSON
/// array of network ids, re-read on change like the others).
pub(crate) struct Names {
    dir: PathBuf,
    files: Vec<NetFile>,
    networks_file: Option<(PathBuf, Option<Stamp>)>,
}

fn stamp(p: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec(), m.len()))
}

/// A name as compared: lowercase, without the root's trailing dot.
pub(crate) fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

type Loaded = (Vec<(String, IpAddr)>, Vec<(IpAddr, String)>);

fn load(p: &Path) -> Loaded {
    // (A missing or half-understood file answers nothing: the names are then forwarded.)
    let Ok(b) = std::fs::read(p) else {
        return Default::default();
    };
    let entries: Vec<DnsEntry> = serde_json::from_slice(&b).unwrap_or_default();
    let mut out = Vec::new();
    let mut owners = Vec::new();
    for e in entries {
        let ips = std::iter::once(IpAddr::V4(e.ipv4)).chain(e.ipv6.map(IpAddr::V6));
        for ip in ips {
            if !e.name.is_empty() {
                owners.push((ip, e.name.trim_end_matches('.').to_string()));
            }
            for n in std::iter::once(&e.name).chain(e.aliases.iter()) {
                if !n.is_empty() {
                    out.push((key(n), ip));
                }
            }
        }
    }
    (out, owners)
}

impl Names {
    pub(crate) fn new(dir: &Path, networks: &[String], networks_file: Option<&Path>) -> Names {
        let mut n = Names {
            dir: dir.to_path_buf(),
            files: Vec::new(),
            networks_file: networks_file.map(|p| (p.to_path_buf(), None)),
        };
        n.set_networks(networks);
        n
    }

    fn set_networks(&mut self, networks: &[String]) {
        let paths: Vec<PathBuf> = networks
            .iter()
            .filter(|id| !id.is_empty() && !id.contains('/') && !id.starts_with('.'))
            .map(|id| self.dir.join(format!("{id}.json")))
            .collect();
        self.files.retain(|f| paths.contains(&f.path));
        for p in paths {
            if !self.files.iter().any(|f| f.path == p) {
                self.files.push(NetFile {
                    path: p,
                    stamp: None,
                    names: Vec::new(),
                    owners: Vec::new(),
                });
            }
        }
    }

    /// Bring every file up to date (a stat each; a read of those that changed).
    fn refresh(&mut self) {
        if let Some((p, old)) = &mut self.networks_file {
            let now = stamp(p);
            if now != *old {
                *old = now;
                let ids: Option<Vec<String>> = std::fs::read(&*p)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                if let Some(ids) = ids {
                    self.set_networks(&ids);
                }
            }
        }
        for f in &mut self.files {
            let now = stamp(&f.path);
            if now != f.stamp {
                (f.names, f.owners) = if now.is_some() {
                    load(&f.path)
                } else {
                    Default::default()
                };
                f.stamp = now;
            }
        }
    }

    /// The addresses (both families) of `name` on the container's networks (none: not
    /// ours; forward it).
    pub(crate) fn lookup(&mut self, name: &str) -> Vec<IpAddr> {
        self.refresh();
        let k = key(name);
        let mut out: Vec<IpAddr> = Vec::new();
        for f in &self.files {
            for (n, ip) in &f.names {
                if *n == k && !out.contains(ip) {
                    out.push(*ip);
                }
            }
        }
        out
    }
}

impl Names {
    /// The names of the containers with address `ip` on the container's networks.
    pub(crate) fn reverse(&mut self, ip: IpAddr) -> Vec<String> {
        self.refresh();
        let mut out: Vec<String> = Vec::new();
        for f in &self.files {
            for (a, n) in &f.owners {
                if *a == ip && !out.contains(n) {
                    out.push(n.clone());
                }
            }
        }
        out
    }
}

/// The address of a reverse-lookup name, `4.3.2.1.in-addr.arpa` or the 32 nibbles of an
/// `ip6.arpa` name.
pub(crate) fn arpa(name: &str) -> Option<IpAddr> {
    arpa_v4(name)
        .map(IpAddr::V4)
        .or_else(|| arpa_v6(name).map(IpAddr::V6))
}

/// `b.a.9.8....0.d.f.ip6.arpa` (32 nibbles, least significant first).
pub(crate) fn arpa_v6(name: &str) -> Option<Ipv6Addr> {
    let k = key(name);
    let rest = k.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u32> = rest
        .split('.')
        .map(|p| match p.len() {
            1 => p.chars().next().and_then(|c| c.to_digit(16)),
            _ => None,
        })
        .collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let bits = nibbles
        .iter()
        .rev()
        .fold(0u128, |acc, n| (acc << 4) | u128::from(*n));
    Some(Ipv6Addr::from(bits))
}

/// The address of an `in-addr.arpa` name.
pub(crate) fn arpa_v4(name: &str) -> Option<Ipv4Addr> {
    let k = key(name);
    let rest = k.strip_suffix(".in-addr.arpa")?;
    let parts: Vec<u8> = rest
        .split('.')
        .map(|p| p.parse::<u8>().ok())
        .collect::<Option<_>>()?;
    match parts[..] {
        [d, c, b, a] => Some(Ipv4Addr::new(a, b, c, d)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn dual_stack_entries() {
        let d = tempfile::tempdir().unwrap();
        write(
            &d.path().join("n6.json"),
            r#"[{"name":"web","aliases":["w"],"ipv4":"10.1.0.2","ipv6":"fd12:3456::2"}]"#,
        );
        let mut n = Names::new(d.path(), &["n6".into()], None);
        let v6: IpAddr = "fd12:3456::2".parse().unwrap();
        assert_eq!(n.lookup("w"), vec![v4(10, 1, 0, 2), v6]);
        assert_eq!(n.reverse(v6), ["web"]);
        let name = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.5.4.3.2.1.d.f.ip6.arpa.";
        assert_eq!(arpa(name), Some(v6));
        assert_eq!(arpa("2.0.ip6.arpa."), None);
        assert_eq!(arpa("2.0.89.10.in-addr.arpa"), Some(v4(10, 89, 0, 2)));
    }

    fn write(p: &Path, s: &str) {
        let tmp = p.with_extension("tmp");
        std::fs::write(&tmp, s).unwrap();
        std::fs::rename(&tmp, p).unwrap();
    }

    #[test]
    fn names_aliases_case_and_scope() {
        let d = tempfile::tempdir().unwrap();
        write(
            &d.path().join("n1.json"),
            r#"[{"name":"web","aliases":["Front"],"ipv4":"10.1.0.2"}]"#,
        );
        write(
            &d.path().join("n2.json"),
            r#"[{"name":"db","aliases":[],"ipv4":"10.2.0.2"}]"#,
        );
        let mut n = Names::new(d.path(), &["n1".into()], None);
        assert_eq!(n.lookup("WEB."), vec![v4(10, 1, 0, 2)]);
        assert_eq!(n.lookup("front"), vec![v4(10, 1, 0, 2)]);
        // Not on the container's networks.
        assert!(n.lookup("db").is_empty());
        // A file that changes is seen at the next query; one that goes answers nothing.
        write(
            &d.path().join("n1.json"),
            r#"[{"name":"web","ipv4":"10.1.0.3"},{"name":"web","ipv4":"10.1.0.4"}]"#,
        );
        let ips = n.lookup("web");
        assert_eq!(ips, vec![v4(10, 1, 0, 3), v4(10, 1, 0, 4)]);
        assert_eq!(n.reverse(v4(10, 1, 0, 4)), ["web"]);
        std::fs::remove_file(d.path().join("n1.json")).unwrap();
        assert!(n.reverse(v4(10, 1, 0, 4)).is_empty());
        assert!(n.lookup("web").is_empty());
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            arpa_v4("2.0.89.10.IN-ADDR.ARPA."),
            Some(Ipv4Addr::new(10, 89, 0, 2))
        );
        for bad in [
            "0.89.10.in-addr.arpa.",
            "x.0.89.10.in-addr.arpa",
            "2.0.89.10.ip6.arpa.",
        ] {
            assert_eq!(arpa_v4(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_networks_file_changes_the_scope() {
        let d = tempfile::tempdir().unwrap();
        write(
            &d.path().join("n2.json"),
            r#"[{"name":"db","ipv4":"10.2.0.2"}]"#,
        );
        let nf = d.path().join("nets");
        let mut n = Names::new(d.path(), &[], Some(&nf));
        assert!(n.lookup("db").is_empty());
        write(&nf, r#"["n2","../etc"]"#);
        assert_eq!(n.lookup("db"), vec![v4(10, 2, 0, 2)]);
        // A broken file is not a scope (the last good one stays).
        write(&nf, "[");
        assert_eq!(n.lookup("db"), vec![v4(10, 2, 0, 2)]);
    }
}
