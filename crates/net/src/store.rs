//! Crash-safe persistence of every network's allocations.
//!
//! One file per network, `<dir>/<network-id>.json`, holding the network's subnet
//! configurations, its allocated addresses and the next-fit cursor. Every change is written
//! before the call returns: to `.<network-id>.json.tmp` in the same directory, fsynced, renamed
//! over the file, and the directory fsynced, so after a crash the file holds the state before
//! or after the change, never a mix. If writing fails, the in-memory state stays as it was.
//!
//! [`IpamStore::open`] loads every file. A file that does not parse or does not add up (an
//! address outside its subnet, a reserved or duplicate address, another network's ID) is an
//! error naming the file: treating it as empty could hand out addresses containers hold.
//! Left-over temporary files (a crash between write and rename) are ignored and overwritten.
//!
//! One process owns the directory (berthd); the store is not shared between processes.
//!
//! After a crash the files can still disagree with the containers (a container removed after
//! its address was written, or the reverse): [`IpamStore::reconcile`] takes the addresses the
//! live containers hold and makes every network's allocations exactly those.
//!
//! A caller that reconciles at every start-up (berthd) may let addresses reach the disk later:
//! after [`IpamStore::defer_address_writes`], allocate/request/release change the memory only
//! and mark the network; [`IpamStore::flush`] writes the marked networks (each still temp,
//! fsync, rename, fsync the directory: the file is always a whole state, only not the newest
//! one until the flush). Networks' creation and removal are written at once as before.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::alloc::{IpamError, PoolConfig};
use crate::network::NetworkIpam;
use crate::pool::{pick_subnet, AddressPool, PoolError};
use crate::subnet::{Family, Subnet};

const FORMAT_VERSION: u32 = 1;
const SUFFIX: &str = ".json";
/// Network IDs are file names: keep them well short of NAME_MAX with the temp prefix/suffix.
const MAX_ID_LEN: usize = 200;

/// Why the store failed. Every variant names the file, network or address at fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done ("create", "read", "write", "rename", "fsync", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A network file does not parse (torn or corrupt).
    #[error("{path}: cannot parse the network's address allocations (torn or corrupt file); refusing to guess which addresses are in use: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A network file parses but does not add up.
    #[error("{path}: corrupt address allocations: {reason}{}", .source.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What does not add up.
        reason: String,
        /// The allocator's error, if it found the problem.
        #[source]
        source: Option<Box<IpamError>>,
    },
    /// A network's state could not be encoded (not expected to happen).
    #[error("cannot encode the address allocations of network {network}: {source}")]
    Encode {
        /// The network.
        network: String,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// A network ID that cannot be a file name.
    #[error("invalid network ID {id:?}: expected 1-{MAX_ID_LEN} characters [A-Za-z0-9_.-] starting with a letter or digit")]
    InvalidNetworkId {
        /// The ID given.
        id: String,
    },
    /// A network with that ID already has allocations.
    #[error("network {id} already exists in the address allocations")]
    NetworkExists {
        /// The network.
        id: String,
    },
    /// No network with that ID.
    #[error("network {id} has no address allocations")]
    UnknownNetwork {
        /// The network.
        id: String,
    },
    /// A subnet overlaps one of another network (dockerd: "Pool overlaps with other one on
    /// this address space").
    #[error("subnet {subnet} overlaps subnet {other} of network {network}")]
    SubnetTaken {
        /// The subnet asked for.
        subnet: Subnet,
        /// The other network's subnet.
        other: Subnet,
        /// The other network.
        network: String,
    },
    /// The allocator refused (bad configuration, address in use, reserved, exhausted...).
    #[error("network {network}: {source}")]
    Ipam {
        /// The network.
        network: String,
        /// The allocator's error.
        #[source]
        source: Box<IpamError>,
    },
    /// No subnet could be picked from the pools.
    #[error(transparent)]
    Pool(#[from] PoolError),
}

/// What [`IpamStore::reconcile`] changed.
#[derive(Debug, Default)]
pub struct ReconcileReport {
    /// Allocations no live container holds, now released.
    pub released: Vec<(String, IpAddr)>,
    /// Addresses live containers hold that were not recorded, now allocated.
    pub restored: Vec<(String, IpAddr)>,
    /// Addresses live containers claim that cannot be theirs: unknown network, outside the
    /// network's subnets, reserved, or claimed twice. Left to the caller.
    pub rejected: Vec<Rejected>,
}

/// A live container's address that [`IpamStore::reconcile`] could not record.
#[derive(Debug)]
pub struct Rejected {
    /// The network claimed.
    pub network: String,
    /// The address claimed.
    pub ip: IpAddr,
    /// Why it cannot be recorded ([`StoreError::UnknownNetwork`] or [`StoreError::Ipam`]).
    pub error: StoreError,
}

/// On-disk form of one network.
#[derive(Serialize, Deserialize)]
struct NetworkFile {
    version: u32,
    network: String,
    pools: Vec<PoolFile>,
}

#[derive(Serialize, Deserialize)]
struct PoolFile {
    config: PoolConfig,
    next: IpAddr,
    allocated: Vec<IpAddr>,
}

/// Every network's address allocations, persisted in one directory.
#[derive(Debug)]
pub struct IpamStore {
    dir: PathBuf,
    networks: BTreeMap<String, NetworkIpam>,
    /// Address changes stay in memory until [`IpamStore::flush`].
    deferred: bool,
    /// Networks changed in memory and not written yet.
    unwritten: BTreeSet<String>,
}

impl IpamStore {
    /// Opens (creating it, mode 0700, if missing) the directory and loads every network file.
    pub fn open(dir: impl Into<PathBuf>) -> Result<IpamStore, StoreError> {
        let dir = dir.into();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| StoreError::Io {
                op: "create directory",
                path: dir.clone(),
                source,
            })?;
        let entries = fs::read_dir(&dir).map_err(|source| StoreError::Io {
            op: "read directory",
            path: dir.clone(),
            source,
        })?;
        let mut networks = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(|source| StoreError::Io {
                op: "read directory",
                path: dir.clone(),
                source,
            })?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
                continue;
            };
            if id.starts_with('.') {
                continue; // a temporary file left by a crash
            }
            let path = entry.path();
            let network = load(&path, id)?;
            networks.insert(id.to_string(), network);
        }
        Ok(IpamStore {
            dir,
            networks,
            deferred: false,
            unwritten: BTreeSet::new(),
        })
    }

    /// From now on, [`IpamStore::allocate`], [`IpamStore::request`] and
    /// [`IpamStore::release`] change the memory only; [`IpamStore::flush`] writes them. For a
    /// caller that runs [`IpamStore::reconcile`] with the live containers' addresses at every
    /// start-up: a crash before the flush loses nothing the reconciliation does not restore.
    pub fn defer_address_writes(&mut self) {
        self.deferred = true;
    }

    /// Whether some network changed since it was last written.
    pub fn has_unwritten(&self) -> bool {
        !self.unwritten.is_empty()
    }

    /// Write every network changed since it was last written. A network that fails stays
    /// marked (the next flush tries again); the first error is returned.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let mut first = None;
        for id in std::mem::take(&mut self.unwritten) {
            let Some(n) = self.networks.get(&id) else {
                continue;
            };
            if let Err(e) = self.write(&id, n) {
                first.get_or_insert(e);
                self.unwritten.insert(id);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A network's allocations.
    pub fn network(&self, id: &str) -> Option<&NetworkIpam> {
        self.networks.get(id)
    }

    /// Every network, by ID.
    pub fn networks(&self) -> impl Iterator<Item = (&str, &NetworkIpam)> {
        self.networks.iter().map(|(id, n)| (id.as_str(), n))
    }

    /// The subnets of every network.
    pub fn taken_subnets(&self) -> Vec<Subnet> {
        self.networks.values().flat_map(|n| n.subnets()).collect()
    }

    /// The first subnet of `family` from `pools` that overlaps no network's subnet and nothing
    /// in `host_reserved` (see [`crate::routes::host_reserved`]).
    pub fn pick_subnet(
        &self,
        pools: &[AddressPool],
        family: Family,
        host_reserved: &[Subnet],
    ) -> Result<Subnet, StoreError> {
        let mut taken = self.taken_subnets();
        taken.extend_from_slice(host_reserved);
        Ok(pick_subnet(pools, family, &taken)?)
    }

    /// Records a new network with its subnets, which must overlap no other network's.
    pub fn create_network(
        &mut self,
        id: &str,
        configs: Vec<PoolConfig>,
    ) -> Result<&NetworkIpam, StoreError> {
        check_id(id)?;
        if self.networks.contains_key(id) {
            return Err(StoreError::NetworkExists { id: id.to_string() });
        }
        let network = NetworkIpam::new(configs).map_err(|source| ipam_err(id, source))?;
        for subnet in network.subnets() {
            for (other_id, other) in &self.networks {
                if let Some(o) = other.subnets().find(|o| o.overlaps(&subnet)) {
                    return Err(StoreError::SubnetTaken {
                        subnet,
                        other: o,
                        network: other_id.clone(),
                    });
                }
            }
        }
        self.write(id, &network)?;
        Ok(self.networks.entry(id.to_string()).or_insert(network))
    }

    /// Forgets a network and deletes its file.
    pub fn remove_network(&mut self, id: &str) -> Result<(), StoreError> {
        if !self.networks.contains_key(id) {
            return Err(StoreError::UnknownNetwork { id: id.to_string() });
        }
        let path = self.path(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::Io {
                    op: "remove",
                    path,
                    source,
                })
            }
        }
        self.sync_dir()?;
        self.networks.remove(id);
        self.unwritten.remove(id);
        Ok(())
    }

    /// Allocates an address of `family` on the network, next fit (see [`crate::alloc`]).
    pub fn allocate(&mut self, id: &str, family: Family) -> Result<IpAddr, StoreError> {
        self.update(id, |n| n.allocate(family))
    }

    /// Allocates the address `ip` on the network (`--ip`).
    pub fn request(&mut self, id: &str, ip: IpAddr) -> Result<(), StoreError> {
        self.update(id, |n| n.request(ip))
    }

    /// Frees `ip` on the network; `Ok(false)` if it was not allocated.
    pub fn release(&mut self, id: &str, ip: IpAddr) -> Result<bool, StoreError> {
        self.update(id, |n| n.release(ip))
    }

    /// Makes every network's allocations exactly the addresses live containers hold: `live`
    /// lists (network ID, address) for every running or restartable container. Allocations
    /// nobody holds are released; held addresses missing from the files are allocated again;
    /// claims that cannot be recorded are reported in [`ReconcileReport::rejected`].
    pub fn reconcile<I, N>(&mut self, live: I) -> Result<ReconcileReport, StoreError>
    where
        I: IntoIterator<Item = (N, IpAddr)>,
        N: AsRef<str>,
    {
        let mut report = ReconcileReport::default();
        let mut claims: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for (network, ip) in live {
            let network = network.as_ref();
            if self.networks.contains_key(network) {
                claims.entry(network.to_string()).or_default().push(ip);
            } else {
                report.rejected.push(Rejected {
                    network: network.to_string(),
                    ip,
                    error: StoreError::UnknownNetwork {
                        id: network.to_string(),
                    },
                });
            }
        }
        let ids: Vec<String> = self.networks.keys().cloned().collect();
        for id in ids {
            let claimed = claims.remove(&id).unwrap_or_default();
            let Some(current) = self.networks.get(&id) else {
                continue;
            };
            let mut next = current.clone();
            let held: BTreeSet<IpAddr> = claimed.iter().copied().collect();
            let stale: Vec<IpAddr> = next.allocated().filter(|ip| !held.contains(ip)).collect();
            for ip in stale {
                next.release(ip).map_err(|source| ipam_err(&id, source))?;
                report.released.push((id.clone(), ip));
            }
            let mut seen = BTreeSet::new();
            for ip in claimed {
                if !seen.insert(ip) {
                    let error = IpamError::InUse {
                        ip,
                        subnet: subnet_of(&next, ip),
                    };
                    report.rejected.push(Rejected {
                        network: id.clone(),
                        ip,
                        error: ipam_err(&id, error),
                    });
                    continue;
                }
                if next.is_allocated(ip) {
                    continue;
                }
                match next.request(ip) {
                    Ok(()) => report.restored.push((id.clone(), ip)),
                    Err(source) => report.rejected.push(Rejected {
                        network: id.clone(),
                        ip,
                        error: ipam_err(&id, source),
                    }),
                }
            }
            if next != *current || self.unwritten.contains(&id) {
                self.write(&id, &next)?;
                self.unwritten.remove(&id);
                self.networks.insert(id, next);
            }
        }
        Ok(report)
    }

    /// Applies `change` to a copy of the network, writes the copy if it differs, then keeps it.
    fn update<T>(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut NetworkIpam) -> Result<T, IpamError>,
    ) -> Result<T, StoreError> {
        let current = self
            .networks
            .get(id)
            .ok_or_else(|| StoreError::UnknownNetwork { id: id.to_string() })?;
        let mut next = current.clone();
        let out = change(&mut next).map_err(|source| ipam_err(id, source))?;
        if next != *current {
            if self.deferred {
                self.unwritten.insert(id.to_string());
            } else {
                self.write(id, &next)?;
            }
            self.networks.insert(id.to_string(), next);
        }
        Ok(out)
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{SUFFIX}"))
    }

    /// Writes the network's file: temp, fsync, rename, fsync the directory.
    fn write(&self, id: &str, network: &NetworkIpam) -> Result<(), StoreError> {
        let file = NetworkFile {
            version: FORMAT_VERSION,
            network: id.to_string(),
            pools: network
                .pools()
                .iter()
                .map(|p| PoolFile {
                    config: p.config().clone(),
                    next: p.next_addr(),
                    allocated: p.allocated().collect(),
                })
                .collect(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|source| StoreError::Encode {
            network: id.to_string(),
            source,
        })?;
        bytes.push(b'\n');
        let tmp = self.dir.join(format!(".{id}{SUFFIX}.tmp"));
        let path = self.path(id);
        let io_err = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { op, path, source }
        };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        f.write_all(&bytes).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(io_err("rename into place", &path))?;
        self.sync_dir()
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| StoreError::Io {
                op: "fsync directory",
                path: self.dir.clone(),
                source,
            })
    }
}

/// The subnet of the network holding `ip` (for error messages; `ip` is known to be in one).
fn subnet_of(network: &NetworkIpam, ip: IpAddr) -> Subnet {
    network
        .subnets()
        .find(|s| s.contains(ip))
        .unwrap_or_else(|| Subnet::host(ip))
}

fn ipam_err(network: &str, source: IpamError) -> StoreError {
    StoreError::Ipam {
        network: network.to_string(),
        source: Box::new(source),
    }
}

fn check_id(id: &str) -> Result<(), StoreError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidNetworkId { id: id.to_string() })
    }
}

/// Loads and checks one network file.
fn load(path: &Path, id: &str) -> Result<NetworkIpam, StoreError> {
    let corrupt = |reason: String, source: Option<IpamError>| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
        source: source.map(Box::new),
    };
    let bytes = fs::read(path).map_err(|source| StoreError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let file: NetworkFile = serde_json::from_slice(&bytes).map_err(|source| StoreError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    if file.version != FORMAT_VERSION {
        return Err(corrupt(
            format!(
                "unsupported format version {} (this berth writes {FORMAT_VERSION})",
                file.version
            ),
            None,
        ));
    }
    if file.network != id {
        return Err(corrupt(
            format!("it holds network {:?}, not {id:?}", file.network),
            None,
        ));
    }
    let configs: Vec<PoolConfig> = file.pools.iter().map(|p| p.config.clone()).collect();
    let mut network = NetworkIpam::new(configs)
        .map_err(|e| corrupt("invalid subnet configuration".to_string(), Some(e)))?;
    for (pool, saved) in network.pools_mut().iter_mut().zip(&file.pools) {
        for &ip in &saved.allocated {
            pool.insert("allocated address", ip).map_err(|e| match e {
                IpamError::InUse { .. } => corrupt(format!("address {ip} is recorded twice"), None),
                e => corrupt("a recorded address does not fit".to_string(), Some(e)),
            })?;
        }
        if !pool.subnet().contains(saved.next) {
            return Err(corrupt(
                format!(
                    "next address {} is not in the subnet {}",
                    saved.next,
                    pool.subnet()
                ),
                None,
            ));
        }
        pool.set_next(saved.next);
    }
    Ok(network)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{reserved_subnets, HostRoute, RouteFilter, RouteOrigin};

    fn s(text: &str) -> Subnet {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn store() -> (tempfile::TempDir, IpamStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = IpamStore::open(dir.path().join("ipam")).unwrap();
        (dir, store)
    }

    #[test]
    fn round_trip() {
        let (_tmp, mut st) = store();
        let cfg = PoolConfig::new(s("172.18.0.0/16"))
            .with_ip_range(s("172.18.5.0/24"))
            .with_aux_address("printer", ip("172.18.0.9"));
        st.create_network("net1", vec![cfg, PoolConfig::new(s("fd00:1::/64"))])
            .unwrap();
        st.create_network(
            "net2",
            vec![PoolConfig::new(s("10.5.0.0/24")).with_gateway(ip("10.5.0.254"))],
        )
        .unwrap();
        assert_eq!(st.allocate("net1", Family::V4).unwrap(), ip("172.18.5.0"));
        assert_eq!(st.allocate("net1", Family::V4).unwrap(), ip("172.18.5.1"));
        assert_eq!(st.allocate("net1", Family::V6).unwrap(), ip("fd00:1::2"));
        st.request("net1", ip("172.18.0.50")).unwrap();
        assert_eq!(st.allocate("net2", Family::V4).unwrap(), ip("10.5.0.1"));
        assert!(st.release("net1", ip("172.18.5.0")).unwrap());
        assert!(!st.release("net1", ip("172.18.5.0")).unwrap());

        let again = IpamStore::open(st.dir()).unwrap();
        let n1 = again.network("net1").unwrap();
        assert_eq!(n1, st.network("net1").unwrap());
        assert_eq!(
            n1.allocated().collect::<Vec<_>>(),
            vec![ip("172.18.0.50"), ip("172.18.5.1"), ip("fd00:1::2")]
        );
        assert_eq!(
            n1.configs()[0].aux_addresses.get("printer"),
            Some(&ip("172.18.0.9"))
        );
        assert_eq!(n1.gateway(Family::V4), Some(ip("172.18.0.1")));
        assert_eq!(
            again.network("net2").unwrap().gateway(Family::V4),
            Some(ip("10.5.0.254"))
        );
        assert_eq!(again.networks().count(), 2);

        // The cursor survived: the released .0 is not handed out next.
        let mut again = again;
        assert_eq!(
            again.allocate("net1", Family::V4).unwrap(),
            ip("172.18.5.2")
        );
        let mut taken = again.taken_subnets();
        taken.sort();
        assert_eq!(
            taken,
            vec![s("10.5.0.0/24"), s("172.18.0.0/16"), s("fd00:1::/64")]
        );
    }

    #[test]
    fn file_format_is_readable() {
        let (_tmp, mut st) = store();
        st.create_network("abc", vec![PoolConfig::new(s("10.7.0.0/24"))])
            .unwrap();
        st.allocate("abc", Family::V4).unwrap();
        let text = fs::read_to_string(st.dir().join("abc.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["network"], "abc");
        assert_eq!(v["pools"][0]["config"]["subnet"], "10.7.0.0/24");
        assert_eq!(v["pools"][0]["config"]["gateway"], "10.7.0.1");
        assert_eq!(v["pools"][0]["allocated"], serde_json::json!(["10.7.0.2"]));
        assert_eq!(v["pools"][0]["next"], "10.7.0.3");
        let names: Vec<String> = fs::read_dir(st.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["abc.json"], "no temporary file is left behind");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(st.dir()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            fs::metadata(st.dir().join("abc.json"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }

    #[test]
    fn torn_and_corrupt_files_are_errors_naming_the_file() {
        let (_tmp, mut st) = store();
        st.create_network("n", vec![PoolConfig::new(s("10.7.0.0/24"))])
            .unwrap();
        st.allocate("n", Family::V4).unwrap();
        let path = st.dir().join("n.json");
        let good = fs::read_to_string(&path).unwrap();

        let check = |content: &str, want: &str| {
            fs::write(&path, content).unwrap();
            let err = IpamStore::open(st.dir()).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(path.to_str().unwrap()), "{msg}");
            let full = format!(
                "{msg}: {}",
                std::error::Error::source(&err)
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            );
            assert!(full.contains(want), "{full}");
        };
        // Torn: empty, or cut in the middle.
        check("", "torn or corrupt");
        check(&good[..good.len() / 2], "torn or corrupt");
        check("not json", "torn or corrupt");
        // Parses, but does not add up.
        check(
            &good.replace("\"version\": 1", "\"version\": 7"),
            "unsupported format version 7",
        );
        check(
            &good.replace("\"network\": \"n\"", "\"network\": \"m\""),
            "holds network \"m\"",
        );
        check(
            &good.replace("\"10.7.0.2\"", "\"10.8.0.2\""),
            "invalid allocated address 10.8.0.2: it is not in the subnet 10.7.0.0/24",
        );
        check(
            &good.replace("\"10.7.0.2\"", "\"10.7.0.1\""),
            "it is the gateway",
        );
        check(
            &good.replace("\"10.7.0.2\"", "\"10.7.0.2\", \"10.7.0.2\""),
            "address 10.7.0.2 is recorded twice",
        );
        check(
            &good.replace("\"next\": \"10.7.0.3\"", "\"next\": \"10.9.0.3\""),
            "next address 10.9.0.3",
        );
        check(
            &good.replace("10.7.0.0/24", "10.7.0.1/24"),
            "torn or corrupt",
        );
        check(
            &good.replace("\"gateway\": \"10.7.0.1\"", "\"gateway\": \"10.6.0.1\""),
            "invalid subnet configuration",
        );

        // Restored, it loads again.
        fs::write(&path, &good).unwrap();
        assert!(IpamStore::open(st.dir()).is_ok());
    }

    #[test]
    fn leftover_temp_files_are_ignored() {
        let (_tmp, mut st) = store();
        st.create_network("n", vec![PoolConfig::new(s("10.7.0.0/24"))])
            .unwrap();
        fs::write(st.dir().join(".n.json.tmp"), "{ torn").unwrap();
        fs::write(st.dir().join("README"), "not a network").unwrap();
        let mut again = IpamStore::open(st.dir()).unwrap();
        assert_eq!(again.networks().count(), 1);
        again.allocate("n", Family::V4).unwrap();
        assert!(
            !st.dir().join(".n.json.tmp").exists(),
            "the next write reused and renamed it"
        );
    }

    #[test]
    fn failed_write_leaves_memory_unchanged() {
        let (_tmp, mut st) = store();
        st.create_network("n", vec![PoolConfig::new(s("10.7.0.0/24"))])
            .unwrap();
        // A directory in the temp file's place makes the write fail.
        fs::create_dir(st.dir().join(".n.json.tmp")).unwrap();
        let err = st.allocate("n", Family::V4).unwrap_err();
        assert!(
            matches!(&err, StoreError::Io { op: "create", path, .. } if path.ends_with(".n.json.tmp")),
            "{err}"
        );
        assert_eq!(st.network("n").unwrap().allocated().count(), 0);
        fs::remove_dir(st.dir().join(".n.json.tmp")).unwrap();
        assert_eq!(st.allocate("n", Family::V4).unwrap(), ip("10.7.0.2"));
    }

    #[test]
    fn network_lifecycle_errors() {
        let (_tmp, mut st) = store();
        st.create_network("a", vec![PoolConfig::new(s("172.18.0.0/16"))])
            .unwrap();
        let err = st
            .create_network("a", vec![PoolConfig::new(s("10.0.0.0/24"))])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "network a already exists in the address allocations"
        );
        let err = st
            .create_network("b", vec![PoolConfig::new(s("172.18.3.0/24"))])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "subnet 172.18.3.0/24 overlaps subnet 172.18.0.0/16 of network a"
        );
        let err = st
            .create_network(
                "b",
                vec![PoolConfig::new(s("10.0.0.0/24")).with_gateway(ip("10.1.0.1"))],
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "network b: invalid gateway 10.1.0.1: it is not in the subnet 10.0.0.0/24"
        );
        assert!(std::error::Error::source(&err).is_some());
        for bad in ["", ".hidden", "../x", "a/b", "x y", &"x".repeat(201)] {
            assert!(
                matches!(
                    st.create_network(bad, vec![]),
                    Err(StoreError::InvalidNetworkId { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            st.allocate("zz", Family::V4),
            Err(StoreError::UnknownNetwork { .. })
        ));
        assert!(matches!(
            st.remove_network("zz"),
            Err(StoreError::UnknownNetwork { .. })
        ));

        let err = st.request("a", ip("172.18.0.1")).unwrap_err();
        assert!(
            matches!(&err, StoreError::Ipam { source, .. } if matches!(**source, IpamError::Reserved { .. })),
            "{err}"
        );

        st.remove_network("a").unwrap();
        assert!(!st.dir().join("a.json").exists());
        assert!(st.network("a").is_none());
        st.create_network("b", vec![PoolConfig::new(s("172.18.3.0/24"))])
            .unwrap();
        assert_eq!(
            IpamStore::open(st.dir())
                .unwrap()
                .networks()
                .map(|(id, _)| id.to_string())
                .collect::<Vec<_>>(),
            vec!["b"]
        );
    }

    #[test]
    fn picks_around_networks_and_host_routes() {
        let (_tmp, mut st) = store();
        let routes = vec![
            HostRoute {
                dst: s("0.0.0.0/0"),
                gateway: Some(ip("192.168.1.1")),
                iface: "eth0".into(),
                origin: RouteOrigin::Route,
            },
            HostRoute {
                dst: s("172.17.0.0/16"),
                gateway: None,
                iface: "docker0".into(),
                origin: RouteOrigin::Route,
            },
        ];
        let host = reserved_subnets(&routes, RouteFilter::All);
        let pools = AddressPool::docker_defaults();
        let first = st.pick_subnet(&pools, Family::V4, &host).unwrap();
        assert_eq!(first, s("172.18.0.0/16"));
        st.create_network("one", vec![PoolConfig::new(first)])
            .unwrap();
        let second = st.pick_subnet(&pools, Family::V4, &host).unwrap();
        assert_eq!(second, s("172.19.0.0/16"));
        let err = st.pick_subnet(&pools, Family::V6, &host).unwrap_err();
        assert!(matches!(
            err,
            StoreError::Pool(PoolError::NoPool { family: Family::V6 })
        ));
    }

    #[test]
    fn reconcile_after_a_crash() {
        let (_tmp, mut st) = store();
        st.create_network(
            "a",
            vec![
                PoolConfig::new(s("10.1.0.0/24")),
                PoolConfig::new(s("fd00:a::/64")),
            ],
        )
        .unwrap();
        st.create_network("b", vec![PoolConfig::new(s("10.2.0.0/24"))])
            .unwrap();
        st.create_network("idle", vec![PoolConfig::new(s("10.3.0.0/24"))])
            .unwrap();
        for _ in 0..3 {
            st.allocate("a", Family::V4).unwrap(); // .2 .3 .4
        }
        st.allocate("a", Family::V6).unwrap(); // fd00:a::2
        st.allocate("b", Family::V4).unwrap(); // .2
        st.allocate("idle", Family::V4).unwrap(); // .2
        let idle_before = fs::read(st.dir().join("idle.json")).unwrap();

        let live = vec![
            ("a", ip("10.1.0.3")),    // kept
            ("a", ip("fd00:a::2")),   // kept
            ("a", ip("10.1.0.9")),    // held but never written: restored
            ("b", ip("10.2.0.1")),    // the gateway: rejected
            ("b", ip("10.9.0.1")),    // not in b: rejected
            ("gone", ip("10.5.0.2")), // unknown network: rejected
            ("a", ip("10.1.0.3")),    // claimed twice: rejected
            ("idle", ip("10.3.0.2")), // kept, file untouched
        ];
        let report = st.reconcile(live).unwrap();
        assert_eq!(
            report.released,
            vec![
                ("a".to_string(), ip("10.1.0.2")),
                ("a".to_string(), ip("10.1.0.4")),
                ("b".to_string(), ip("10.2.0.2"))
            ]
        );
        assert_eq!(report.restored, vec![("a".to_string(), ip("10.1.0.9"))]);
        let rejected: Vec<(String, IpAddr)> = report
            .rejected
            .iter()
            .map(|r| (r.network.clone(), r.ip))
            .collect();
        assert_eq!(
            rejected,
            vec![
                ("gone".to_string(), ip("10.5.0.2")),
                ("a".to_string(), ip("10.1.0.3")),
                ("b".to_string(), ip("10.2.0.1")),
                ("b".to_string(), ip("10.9.0.1")),
            ]
        );
        assert!(matches!(
            report.rejected[0].error,
            StoreError::UnknownNetwork { .. }
        ));
        assert!(
            matches!(report.rejected[1].error, StoreError::Ipam { ref source, .. } if matches!(**source, IpamError::InUse { .. }))
        );
        assert!(
            matches!(report.rejected[2].error, StoreError::Ipam { ref source, .. } if matches!(**source, IpamError::Reserved { .. }))
        );
        assert!(
            matches!(report.rejected[3].error, StoreError::Ipam { ref source, .. } if matches!(**source, IpamError::NotInNetwork { .. }))
        );

        // Persisted: a fresh open sees exactly the live set.
        let again = IpamStore::open(st.dir()).unwrap();
        let a: Vec<IpAddr> = again.network("a").unwrap().allocated().collect();
        assert_eq!(a, vec![ip("10.1.0.3"), ip("10.1.0.9"), ip("fd00:a::2")]);
        assert_eq!(again.network("b").unwrap().allocated().count(), 0);
        assert_eq!(
            fs::read(st.dir().join("idle.json")).unwrap(),
            idle_before,
            "unchanged networks are not rewritten"
        );

        // Nothing live: everything released.
        let report = st.reconcile(Vec::<(String, IpAddr)>::new()).unwrap();
        assert_eq!(report.released.len(), 4);
        assert!(st.networks().all(|(_, n)| n.allocated().count() == 0));
    }
}
