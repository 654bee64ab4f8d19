//! berth-cgroups: a container's cgroup on cgroup v1, v2 and hybrid hosts (cgroupfs driver).
//!
//! # API (used by berth-runtime)
//! ```text
//! pub enum Mode { V1, V2, Hybrid }
//! pub fn detect() -> Result<Mode>
//!
//! #[derive(Serialize, Deserialize, Clone, Debug)]
//! pub struct Cgroup { .. }          // persisted in the runtime's state.json
//! impl Cgroup {
//!   pub fn new(cgroups_path: Option<&str>, container_id: &str, systemd: bool) -> Result<Cgroup>;
//!   pub fn create(&mut self) -> Result<()>;
//!   pub fn apply(&self, r: &LinuxResources) -> Result<Vec<String>>;   // warnings
//!   pub fn update(&self, r: &LinuxResources) -> Result<Vec<String>>;  // warnings
//!   pub fn add_task(&self, pid: i32) -> Result<()>;
//!   pub fn v2_dir_fd(&self) -> Result<Option<OwnedFd>>;   // for clone3(CLONE_INTO_CGROUP)
//!   pub fn freeze(&self) -> Result<()>;
//!   pub fn thaw(&self) -> Result<()>;
//!   pub fn frozen(&self) -> Result<bool>;
//!   pub fn pids(&self) -> Result<Vec<i32>>;
//!   pub fn kill_all(&self, sig: i32) -> Result<()>;
//!   pub fn stats(&self) -> Result<Stats>;                  // runc `events --stats` "data" JSON
//!   pub fn oom_kill_count(&self) -> Result<u64>;
//!   pub fn destroy(&self) -> Result<()>;
//!   // accessors: mode(), path(), unified_dir(), v1_dirs(), created_dirs()
//! }
//! ```
//!
//! # Paths (runc's cgroupfs driver)
//! * `cgroups_path` absolute (`/a/b`): `<mountpoint>/a/b` in every hierarchy.
//! * relative (`a/b`): below the calling process's own cgroup in each hierarchy
//!   (from /proc/self/cgroup).
//! * `None` or empty: `/<container_id>`.
//! * `..` components are refused. `systemd = true` returns [`Error::SystemdUnsupported`].
//!
//! # Backends
//! * [`Mode::V1`] and [`Mode::Hybrid`]: one directory per mounted v1 hierarchy (co-mounted
//!   controllers share one). In hybrid mode the cgroup2 mount is left alone.
//! * [`Mode::V2`]: one directory in the unified hierarchy; [`Cgroup::create`] enables every
//!   available controller in the parents' `cgroup.subtree_control`. Device rules become an
//!   eBPF `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the directory.
//!
//! # Layout
//! * `backend.rs`: the crate-internal `Backend` trait, one implementation per driver, and
//!   the operations every cgroupfs driver shares (add_task, pids, kill_all, destroy) as
//!   provided methods. Each [`Cgroup`] method builds the backend of its mode as a borrowed
//!   view of the persisted fields (no allocation, no syscall) and calls it as
//!   `&dyn Backend`.
//! * `v1/`: the v1 backend (`mod.rs`: directories, controller checks, the order of writes)
//!   and one module per controller: memory, cpu, cpuset, blkio, hugetlb, net
//!   (net_cls/net_prio), devices, freezer, stats.
//! * `v2/`: the v2 backend (`mod.rs`: directory creation with subtree_control, the order of
//!   writes) and one module per controller: memory, cpu (with cpuset), io, hugetlb,
//!   unified, devices (eBPF, with `bpf.rs`), freezer, stats.
//! * `controllers/`: per controller, what both backends share: validation of
//!   `linux.resources`, value conversions, and the writes that are the same on v1 and v2
//!   (`pids.max`, `rdma.max`).
//! * A systemd driver would be a third `Backend`, chosen in `Cgroup::backend`; until then
//!   `systemd = true` is refused with [`Error::SystemdUnsupported`].
//!
//! # Persisted form
//! `Cgroup` serialises as `{"mode":"v1|v2|hybrid","path":"/x","v1":{"memory":"/sys/fs/cgroup/memory/x",..},
//! "unified":null|"/sys/fs/cgroup/x","created":[dirs made by create, parents first]}`.
//!
//! # Field mapping (v1 file / v2 file)
//! * memory.limit: memory.limit_in_bytes / memory.max (-1 = unlimited); swap (memory+swap):
//!   memory.memsw.limit_in_bytes, written before or after the limit so the kernel accepts
//!   both raising and lowering / memory.swap.max = swap - limit; reservation:
//!   memory.soft_limit_in_bytes / memory.low; swappiness, disableOOMKiller: v1 only (warning
//!   on v2); kernel, kernelTCP: warning.
//! * cpu.shares: cpu.shares / cpu.weight = [`shares_to_weight`]; quota+period:
//!   cpu.cfs_quota_us+cpu.cfs_period_us / cpu.max; burst: cpu.cfs_burst_us / cpu.max.burst;
//!   realtimeRuntime/Period: cpu.rt_* (error on v2); idle: cpu.idle; cpus/mems: cpuset.*.
//! * pids.limit: pids.max (-1 and 0 = max).
//! * blockIO weight: blkio.weight or blkio.bfq.weight / io.bfq.weight or io.weight
//!   ([`blkio_weight_to_io_weight`]); weightDevice likewise; leafWeight: v1 (warning on v2);
//!   throttle*: blkio.throttle.* / io.max (rate 0 = max).
//! * hugepageLimits: `hugetlb.<size>.limit_in_bytes` / `hugetlb.<size>.max`.
//! * network: net_cls.classid, net_prio.ifpriomap (warning when not mounted, and on v2).
//! * rdma: rdma.max. unified: v2 only, key = a file in the cgroup (no "/", no "..").
//! * devices: v1 `devices.deny a` then devices.allow/deny per rule in order; v2 an eBPF
//!   program where, per access bit, the last matching rule wins and unmatched is denied;
//!   an update replaces the previous program. An empty or absent list leaves devices alone.
//!
//! All `linux.resources` fields are validated before anything is written, so bad input never
//! leaves a half-configured cgroup. Fields the backend cannot honour and that are harmless to
//! skip (kernel memory, v1-only knobs on v2, net_cls/net_prio when not mounted) produce
//! warnings; fields whose absence would weaken isolation produce errors naming the field.

mod backend;
mod bpf;
mod controllers;
mod fsutil;
mod mountinfo;
pub mod stats;
mod v1;
mod v2;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use backend::Backend;
pub use controllers::blkio::blkio_weight_to_io_weight;
pub use controllers::cpu::shares_to_weight;
pub use stats::Stats;

/// Errors from this crate. Every variant names the path, syscall or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{field}: cannot write {value:?} to {}: {source}", path.display())]
    Write {
        field: String,
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error(
        "{field} needs the cgroup controller {controller:?}, which is not available on this host"
    )]
    ControllerMissing { field: String, controller: String },
    #[error("the systemd cgroup driver is not supported by berth: run without --systemd-cgroup (cgroupfs driver)")]
    SystemdUnsupported,
    #[error("no cgroup hierarchy is mounted (looked in /proc/self/mountinfo)")]
    NoCgroups,
    #[error("cannot parse {}: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    #[error("{call}: {source}")]
    Sys {
        call: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("bpf {op}: {detail}")]
    Bpf { op: &'static str, detail: String },
    #[error("timed out after {waited:?} waiting for {what} ({})", path.display())]
    Timeout {
        what: &'static str,
        path: PathBuf,
        waited: Duration,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Which cgroup layout the host uses.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only v1 hierarchies.
    V1,
    /// Only the unified (v2) hierarchy.
    V2,
    /// v1 controller hierarchies plus a cgroup2 mount (systemd's "hybrid"): v1 is used.
    Hybrid,
}

/// Detect the cgroup layout from /proc/self/mountinfo.
pub fn detect() -> Result<Mode> {
    mode_of(&mountinfo::cgroup_mounts()?)
}

fn mode_of(mounts: &[mountinfo::CgroupMount]) -> Result<Mode> {
    let has_v2 = mounts.iter().any(|m| m.v2);
    let has_v1 = mounts
        .iter()
        .any(|m| !m.v2 && m.controllers.iter().any(|c| !c.starts_with("name=")));
    match (has_v1, has_v2) {
        (true, true) => Ok(Mode::Hybrid),
        (true, false) => Ok(Mode::V1),
        (false, true) => Ok(Mode::V2),
        (false, false) => Err(Error::NoCgroups),
    }
}

/// A container's cgroup. Serialisable so the runtime can persist it and later commands
/// (`update`, `pause`, `events`, `delete`) operate on exactly the same directories.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Cgroup {
    mode: Mode,
    /// The cgroups path as resolved (absolute or relative, normalised).
    path: String,
    /// v1: controller name -> directory (co-mounted controllers share a directory).
    #[serde(default)]
    v1: BTreeMap<String, PathBuf>,
    /// v2: the unified directory.
    #[serde(default)]
    unified: Option<PathBuf>,
    /// Directories [`Cgroup::create`] made, parents before children.
    #[serde(default)]
    created: Vec<PathBuf>,
    /// v1, as resolved by [`Cgroup::new`] (not persisted): the name of each hierarchy's
    /// mountpoint (e.g. "cpu,cpuacct") and the container's directory in it.
    #[serde(skip)]
    hierarchies: Vec<(String, PathBuf)>,
}

/// The same cgroup: what is persisted is equal (not what only `new` knows).
impl PartialEq for Cgroup {
    fn eq(&self, o: &Cgroup) -> bool {
        self.mode == o.mode
            && self.path == o.path
            && self.v1 == o.v1
            && self.unified == o.unified
            && self.created == o.created
    }
}

fn normalise_path(p: &str) -> Result<(bool, String)> {
    let abs = p.starts_with('/');
    let mut parts = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(Error::Invalid {
                    field: "linux.cgroupsPath".into(),
                    reason: format!("{p:?} contains \"..\""),
                })
            }
            c if c.contains('\0') || c.contains('\n') => {
                return Err(Error::Invalid {
                    field: "linux.cgroupsPath".into(),
                    reason: format!("{p:?} contains a NUL or newline"),
                })
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(Error::Invalid {
            field: "linux.cgroupsPath".into(),
            reason: format!("{p:?} names the root cgroup; a container needs its own"),
        });
    }
    Ok((abs, parts.join("/")))
}

impl Cgroup {
    /// Resolve the directories of a container's cgroup (nothing is created yet).
    pub fn new(cgroups_path: Option<&str>, container_id: &str, systemd: bool) -> Result<Cgroup> {
        if systemd {
            return Err(Error::SystemdUnsupported);
        }
        let mounts = mountinfo::cgroup_mounts()?;
        let mode = mode_of(&mounts)?;
        let raw = match cgroups_path {
            Some(p) if !p.is_empty() => p.to_string(),
            _ => {
                if container_id.is_empty() || container_id.contains('/') || container_id == ".." {
                    return Err(Error::Invalid {
                        field: "container id".into(),
                        reason: format!("{container_id:?} cannot name a cgroup"),
                    });
                }
                format!("/{container_id}")
            }
        };
        let (abs, rel) = normalise_path(&raw)?;
        let own = if abs {
            Vec::new()
        } else {
            mountinfo::own_cgroups()?
        };
        let dir_in = |m: &mountinfo::CgroupMount| -> Result<PathBuf> {
            let base = if abs {
                m.mountpoint.clone()
            } else {
                mountinfo::own_dir(m, &own)?
            };
            Ok(base.join(&rel))
        };
        let mut cg = Cgroup {
            mode,
            path: if abs { format!("/{rel}") } else { rel.clone() },
            v1: BTreeMap::new(),
            unified: None,
            created: Vec::new(),
            hierarchies: Vec::new(),
        };
        match mode {
            Mode::V2 => {
                let m = mounts.iter().find(|m| m.v2).ok_or(Error::NoCgroups)?;
                cg.unified = Some(dir_in(m)?);
            }
            Mode::V1 | Mode::Hybrid => {
                for m in mounts.iter().filter(|m| !m.v2) {
                    let d = dir_in(m)?;
                    for c in &m.controllers {
                        cg.v1.insert(c.clone(), d.clone());
                    }
                    if let Some(name) = m.mountpoint.file_name() {
                        if !cg.hierarchies.iter().any(|(_, x)| *x == d) {
                            cg.hierarchies
                                .push((name.to_string_lossy().into_owned(), d.clone()));
                        }
                    }
                }
            }
        }
        Ok(cg)
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The resolved cgroups path (absolute "/a/b" or relative "a/b").
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The unified directory (v2 only).
    pub fn unified_dir(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    /// v1: controller -> directory.
    pub fn v1_dirs(&self) -> &BTreeMap<String, PathBuf> {
        &self.v1
    }

    /// v1: (mountpoint name, the container's directory) per hierarchy, as found by
    /// [`Cgroup::new`]: what a container's /sys/fs/cgroup shows. Empty for a loaded state.
    pub fn v1_hierarchies(&self) -> &[(String, PathBuf)] {
        &self.hierarchies
    }

    /// The directories [`Cgroup::create`] made (and [`Cgroup::destroy`] will remove).
    pub fn created_dirs(&self) -> &[PathBuf] {
        &self.created
    }

    /// Run `op` on the backend of this cgroup's mode: a view of the persisted fields built
    /// on the stack (no allocation, no syscall). A systemd backend is to be chosen here (and
    /// in [`Cgroup::new`], which refuses `systemd = true` until then).
    fn backend<R>(&self, op: impl FnOnce(&dyn Backend) -> R) -> R {
        match self.mode {
            Mode::V2 => op(&v2::V2::new(self.unified.as_deref())),
            Mode::V1 | Mode::Hybrid => op(&v1::V1::new(&self.v1)),
        }
    }

    /// Create the directories. Remembers exactly which ones it made; on error removes them.
    pub fn create(&mut self) -> Result<()> {
        let mut made: Vec<PathBuf> = Vec::new();
        if let Err(e) = self.backend(|b| b.create(&mut made)) {
            for d in made.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
            return Err(e);
        }
        for d in made {
            if !self.created.contains(&d) {
                self.created.push(d);
            }
        }
        Ok(())
    }

    /// Apply `linux.resources` to a new cgroup. Returns warnings for fields that were ignored.
    pub fn apply(&self, r: &LinuxResources) -> Result<Vec<String>> {
        self.set(r)
    }

    /// Change the resources of a running container (same validation and semantics as apply;
    /// only the fields present are changed).
    pub fn update(&self, r: &LinuxResources) -> Result<Vec<String>> {
        self.set(r)
    }

    fn set(&self, r: &LinuxResources) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        controllers::validate(r, &mut warnings)?;
        self.backend(|b| b.apply(r, &mut warnings))?;
        Ok(warnings)
    }

    /// Move `pid` into the cgroup (every hierarchy). `0` moves the calling process.
    pub fn add_task(&self, pid: i32) -> Result<()> {
        if pid < 0 {
            return Err(Error::Invalid {
                field: "pid".into(),
                reason: format!("{pid} is not a process id"),
            });
        }
        self.backend(|b| b.add_task(pid))
    }

    /// An `O_PATH|O_DIRECTORY|O_CLOEXEC` fd of the unified directory for
    /// clone3(CLONE_INTO_CGROUP); `None` on v1/hybrid.
    pub fn v2_dir_fd(&self) -> Result<Option<OwnedFd>> {
        self.backend(|b| b.v2_dir_fd())
    }

    /// Freeze every process and wait until the kernel reports the cgroup frozen.
    pub fn freeze(&self) -> Result<()> {
        self.backend(|b| b.freeze())
    }

    pub fn thaw(&self) -> Result<()> {
        self.backend(|b| b.thaw())
    }

    pub fn frozen(&self) -> Result<bool> {
        self.backend(|b| b.frozen())
    }

    /// Every process in the cgroup, including those in sub-cgroups the container made.
    pub fn pids(&self) -> Result<Vec<i32>> {
        self.backend(|b| b.pids())
    }

    /// Send `sig` to every process. SIGKILL on v2 uses cgroup.kill when the kernel has it;
    /// otherwise the cgroup is frozen (when possible) while the signals are sent so no process
    /// can fork out of reach, then thawed.
    pub fn kill_all(&self, sig: i32) -> Result<()> {
        self.backend(|b| b.kill_all(sig))
    }

    /// Usage figures in runc's `events --stats` shape.
    pub fn stats(&self) -> Result<Stats> {
        self.backend(|b| b.stats())
    }

    /// How many processes the kernel OOM killer killed in this cgroup.
    pub fn oom_kill_count(&self) -> Result<u64> {
        self.backend(|b| b.oom_kill_count())
    }

    /// Remove the directories [`Cgroup::create`] made, deepest first, after removing any
    /// sub-cgroups the container created inside its own cgroup. EBUSY (processes still
    /// exiting) is retried for up to about a second. Directories it did not create are never
    /// touched; a created parent that now holds someone else's cgroup is left in place.
    pub fn destroy(&self) -> Result<()> {
        self.backend(|b| b.destroy(&self.created))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10000);
    }

    #[test]
    fn paths_are_normalised_and_checked() {
        assert_eq!(normalise_path("/a//b/").unwrap(), (true, "a/b".to_string()));
        assert_eq!(normalise_path("a/./b").unwrap(), (false, "a/b".to_string()));
        assert!(normalise_path("/a/../b").is_err());
        assert!(normalise_path("/").is_err());
    }

    #[test]
    fn modes() {
        let hybrid = mountinfo::parse_mountinfo(
            "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(mode_of(&hybrid).unwrap(), Mode::Hybrid);
        let v2 =
            mountinfo::parse_mountinfo("41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        assert_eq!(mode_of(&v2).unwrap(), Mode::V2);
        assert!(mode_of(&[]).is_err());
    }

    #[test]
    fn persisted_form_is_unchanged() {
        // A state.json as written before the backends moved behind a trait.
        let saved = serde_json::json!({
            "mode": "hybrid",
            "path": "/x",
            "v1": {"cpu": "/sys/fs/cgroup/cpu/x", "memory": "/sys/fs/cgroup/memory/x"},
            "unified": null,
            "created": ["/sys/fs/cgroup/cpu/x", "/sys/fs/cgroup/memory/x"]
        });
        let cg: Cgroup = serde_json::from_value(saved.clone()).unwrap();
        assert_eq!(cg.mode(), Mode::Hybrid);
        assert_eq!(serde_json::to_value(&cg).unwrap(), saved);
        let v2: Cgroup = serde_json::from_value(serde_json::json!({
            "mode": "v2", "path": "a/b", "unified": "/sys/fs/cgroup/a/b"
        }))
        .unwrap();
        assert_eq!(v2.unified_dir(), Some(Path::new("/sys/fs/cgroup/a/b")));
        assert!(v2.v1_dirs().is_empty() && v2.created_dirs().is_empty());
    }

    #[test]
    fn each_mode_dispatches_to_its_backend() {
        let v1: Cgroup = serde_json::from_value(serde_json::json!({
            "mode": "v1", "path": "/x", "v1": {"memory": "/nonexistent/memory/x"}
        }))
        .unwrap();
        assert!(v1.v2_dir_fd().unwrap().is_none());
        match v1.frozen() {
            Err(Error::ControllerMissing { field, controller }) => {
                assert_eq!((field.as_str(), controller.as_str()), ("frozen", "freezer"))
            }
            other => panic!("{other:?}"),
        }
        let v2: Cgroup =
            serde_json::from_value(serde_json::json!({"mode": "v2", "path": "/x"})).unwrap();
        assert!(matches!(v2.stats(), Err(Error::NoCgroups)));
        assert!(matches!(v2.pids(), Err(Error::NoCgroups)));
        // Nothing was created, so nothing is removed.
        v1.destroy().unwrap();
        v2.destroy().unwrap();
        assert!(v2.add_task(-1).is_err());
    }

    #[test]
    fn systemd_refused() {
        assert!(matches!(
            Cgroup::new(None, "x", true),
            Err(Error::SystemdUnsupported)
        ));
    }
}
