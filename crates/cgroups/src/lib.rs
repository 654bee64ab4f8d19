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

mod bpf;
mod fsutil;
mod mountinfo;
pub mod stats;
mod v1;
mod v2;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

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

    /// Every distinct directory of this cgroup (one per hierarchy).
    fn dirs(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = Vec::new();
        if let Some(u) = &self.unified {
            v.push(u);
        }
        for d in self.v1.values() {
            if !v.contains(&d.as_path()) {
                v.push(d);
            }
        }
        v
    }

    pub(crate) fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1.get(controller).map(PathBuf::as_path)
    }

    /// Create the directories. Remembers exactly which ones it made.
    pub fn create(&mut self) -> Result<()> {
        let mut made: Vec<PathBuf> = Vec::new();
        let res = (|| -> Result<()> {
            match self.mode {
                Mode::V2 => {
                    let dir = self.unified.clone().ok_or(Error::NoCgroups)?;
                    let root = mountinfo::cgroup_mounts()?
                        .into_iter()
                        .find(|m| m.v2)
                        .map(|m| m.mountpoint)
                        .ok_or(Error::NoCgroups)?;
                    v2::create_with_controllers(&root, &dir, &mut made)?;
                }
                Mode::V1 | Mode::Hybrid => {
                    let dirs: Vec<PathBuf> =
                        self.dirs().into_iter().map(Path::to_path_buf).collect();
                    for d in dirs {
                        let c = fsutil::mkdir_all(&d)?;
                        made.extend(c);
                    }
                    if let Some(cpuset) = self.v1_dir("cpuset") {
                        v1::init_cpuset(cpuset, &made)?;
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = res {
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
        validate(r, &mut warnings)?;
        match self.mode {
            Mode::V2 => v2::apply(self, r, &mut warnings)?,
            Mode::V1 | Mode::Hybrid => v1::apply(self, r, &mut warnings)?,
        }
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
        for d in self.dirs() {
            fsutil::write(d, "cgroup.procs", &pid.to_string(), "cgroup.procs")?;
        }
        Ok(())
    }

    /// An `O_PATH|O_DIRECTORY|O_CLOEXEC` fd of the unified directory for
    /// clone3(CLONE_INTO_CGROUP); `None` on v1/hybrid.
    pub fn v2_dir_fd(&self) -> Result<Option<OwnedFd>> {
        match (&self.mode, &self.unified) {
            (Mode::V2, Some(d)) => Ok(Some(open_dir(d)?)),
            _ => Ok(None),
        }
    }

    /// Freeze every process and wait until the kernel reports the cgroup frozen.
    pub fn freeze(&self) -> Result<()> {
        match self.mode {
            Mode::V2 => v2::freeze(self.unified_req()?, true),
            _ => v1::freeze(self.v1_req("freezer", "freeze")?, true),
        }
    }

    pub fn thaw(&self) -> Result<()> {
        match self.mode {
            Mode::V2 => v2::freeze(self.unified_req()?, false),
            _ => v1::freeze(self.v1_req("freezer", "thaw")?, false),
        }
    }

    pub fn frozen(&self) -> Result<bool> {
        match self.mode {
            Mode::V2 => v2::frozen(self.unified_req()?),
            _ => v1::frozen(self.v1_req("freezer", "frozen")?),
        }
    }

    /// Every process in the cgroup, including those in sub-cgroups the container made.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let dir = match self.mode {
            Mode::V2 => self.unified_req()?.to_path_buf(),
            _ => [
                "pids",
                "freezer",
                "devices",
                "memory",
                "cpu",
                "name=systemd",
            ]
            .iter()
            .find_map(|c| self.v1_dir(c))
            .or_else(|| self.dirs().into_iter().next())
            .ok_or(Error::NoCgroups)?
            .to_path_buf(),
        };
        let mut out = Vec::new();
        collect_pids(&dir, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Send `sig` to every process. SIGKILL on v2 uses cgroup.kill when the kernel has it;
    /// otherwise the cgroup is frozen (when possible) while the signals are sent so no process
    /// can fork out of reach, then thawed.
    pub fn kill_all(&self, sig: i32) -> Result<()> {
        if self.mode == Mode::V2 && sig == libc::SIGKILL {
            let dir = self.unified_req()?;
            if fsutil::write_if_exists(dir, "cgroup.kill", "1", "cgroup.kill")? {
                return Ok(());
            }
        }
        let can_freeze = match self.mode {
            Mode::V2 => true,
            _ => self.v1_dir("freezer").is_some(),
        };
        let froze = can_freeze && sig != libc::SIGCONT && self.freeze().is_ok();
        let res = (|| {
            for pid in self.pids()? {
                if pid <= 0 {
                    continue; // never kill(0) / kill(-1), whatever a file says
                }
                // SAFETY: kill(2) with a pid read from cgroup.procs and a signal number; no
                // memory is involved. A process that exited meanwhile gives ESRCH, ignored.
                let r = unsafe { libc::kill(pid, sig) };
                if r != 0 {
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::ESRCH) {
                        return Err(Error::Sys {
                            call: "kill",
                            source: e,
                        });
                    }
                }
            }
            Ok(())
        })();
        // A cgroup removed meanwhile (its processes ended, by this signal or not, and its
        // owner, the container's monitor, removed it) has nothing left to signal or thaw.
        let gone = || {
            let dir = match self.mode {
                Mode::V2 => self.unified_dir(),
                _ => self
                    .v1_dir("freezer")
                    .or_else(|| self.v1.values().next().map(PathBuf::as_path)),
            };
            dir.is_some_and(|d| !d.exists())
        };
        if froze {
            if let Err(e) = self.thaw() {
                if !gone() {
                    return Err(e);
                }
            }
        }
        match res {
            Err(_) if gone() => Ok(()),
            r => r,
        }
    }

    /// Usage figures in runc's `events --stats` shape.
    pub fn stats(&self) -> Result<Stats> {
        match self.mode {
            Mode::V2 => v2::stats(self.unified_req()?),
            _ => v1::stats(self),
        }
    }

    /// How many processes the kernel OOM killer killed in this cgroup.
    pub fn oom_kill_count(&self) -> Result<u64> {
        match self.mode {
            Mode::V2 => {
                let p = self.unified_req()?.join("memory.events");
                let s = fsutil::read(&p)?;
                Ok(fsutil::keyed(&fsutil::flat_keyed(&s), "oom_kill"))
            }
            _ => {
                let p = self
                    .v1_req("memory", "oom_kill_count")?
                    .join("memory.oom_control");
                let s = fsutil::read(&p)?;
                Ok(fsutil::keyed(&fsutil::flat_keyed(&s), "oom_kill"))
            }
        }
    }

    /// Remove the directories [`Cgroup::create`] made, deepest first, after removing any
    /// sub-cgroups the container created inside its own cgroup. EBUSY (processes still
    /// exiting) is retried for up to about a second. Directories it did not create are never
    /// touched; a created parent that now holds someone else's cgroup is left in place.
    pub fn destroy(&self) -> Result<()> {
        // The container's own directories (leaves): remove their descendants first.
        for leaf in self.dirs() {
            if self.created.iter().any(|c| c == leaf) {
                remove_tree(leaf)?;
            }
        }
        for d in self.created.iter().rev() {
            let is_leaf = self.dirs().contains(&d.as_path());
            if is_leaf {
                continue; // handled above
            }
            match std::fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // Another container's cgroup lives below it now: not ours to remove.
                Err(e)
                    if e.raw_os_error() == Some(libc::EBUSY)
                        || e.raw_os_error() == Some(libc::ENOTEMPTY) => {}
                Err(source) => {
                    return Err(Error::Io {
                        op: "rmdir",
                        path: d.clone(),
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    fn unified_req(&self) -> Result<&Path> {
        self.unified.as_deref().ok_or(Error::NoCgroups)
    }

    fn v1_req(&self, controller: &str, what: &str) -> Result<&Path> {
        self.v1_dir(controller)
            .ok_or_else(|| Error::ControllerMissing {
                field: what.to_string(),
                controller: controller.to_string(),
            })
    }
}

fn open_dir(d: &Path) -> Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(d.as_os_str().as_bytes()).map_err(|_| Error::Invalid {
        field: "cgroup path".into(),
        reason: format!("{} contains a NUL byte", d.display()),
    })?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::Io {
            op: "open",
            path: d.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: `fd` was just returned by open(2) and is owned by nobody else.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let p = dir.join("cgroup.procs");
    let s = fsutil::read(&p)?;
    for l in s.lines() {
        let pid = l.trim().parse::<i32>().map_err(|_| Error::Parse {
            path: p.clone(),
            reason: format!("bad pid {l:?}"),
        })?;
        out.push(pid);
    }
    for e in std::fs::read_dir(dir).map_err(|source| Error::Io {
        op: "readdir",
        path: dir.to_path_buf(),
        source,
    })? {
        let e = e.map_err(|source| Error::Io {
            op: "readdir",
            path: dir.to_path_buf(),
            source,
        })?;
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_pids(&e.path(), out)?;
        }
    }
    Ok(())
}

/// rmdir `dir` and every cgroup below it, deepest first, retrying EBUSY briefly.
fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Io {
                op: "readdir",
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for e in entries.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&e.path())?;
        }
    }
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    && start.elapsed() < Duration::from_millis(1500) =>
            {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(source) => {
                return Err(Error::Io {
                    op: "rmdir",
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validation shared by both backends. Nothing is written before all of it passes.

fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn check_min(field: &str, v: Option<i64>, min: i64) -> Result<()> {
    match v {
        Some(x) if x < min => Err(invalid(
            field,
            format!("{x} is negative (use -1 for unlimited)"),
        )),
        _ => Ok(()),
    }
}

fn check_list(field: &str, s: &str) -> Result<()> {
    if !s
        .chars()
        .all(|c| c.is_ascii_digit() || c == ',' || c == '-')
    {
        return Err(invalid(
            field,
            format!("{s:?} is not a list like \"0-2,4\""),
        ));
    }
    Ok(())
}

pub(crate) fn check_hugepage_size(field: &str, s: &str) -> Result<()> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    if digits.is_empty()
        || !digits.chars().all(|c| c.is_ascii_digit())
        || !matches!(unit, "KB" | "MB" | "GB" | "TB" | "PB")
    {
        return Err(invalid(
            field,
            format!("page size {s:?} is not like \"2MB\" or \"1GB\""),
        ));
    }
    Ok(())
}

fn validate(r: &LinuxResources, warnings: &mut Vec<String>) -> Result<()> {
    if let Some(m) = r.memory() {
        check_min("linux.resources.memory.limit", m.limit(), -1)?;
        check_min("linux.resources.memory.reservation", m.reservation(), -1)?;
        check_min("linux.resources.memory.swap", m.swap(), -1)?;
        if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
            if l > 0 && s > 0 && s < l {
                return Err(invalid(
                    "linux.resources.memory.swap",
                    format!("{s} is below memory.limit {l} (swap is the memory+swap total)"),
                ));
            }
        }
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(invalid(
                    "linux.resources.memory.swappiness",
                    format!("{s} is not in 0..=100"),
                ));
            }
        }
        if m.kernel().is_some() {
            warnings.push(
                "linux.resources.memory.kernel is deprecated and ignored (the kernel no longer supports kernel memory limits)".into(),
            );
        }
        if m.kernel_tcp().is_some() {
            warnings.push("linux.resources.memory.kernelTCP is ignored".into());
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares() {
            if s != 0 && !(2..=262144).contains(&s) {
                return Err(invalid(
                    "linux.resources.cpu.shares",
                    format!("{s} is not in 2..=262144"),
                ));
            }
        }
        check_min("linux.resources.cpu.quota", c.quota(), -1)?;
        if let Some(q) = c.quota() {
            if q > 0 && q < 1000 {
                return Err(invalid(
                    "linux.resources.cpu.quota",
                    format!("{q} is below the kernel's minimum of 1000 microseconds"),
                ));
            }
        }
        if let Some(p) = c.period() {
            if p != 0 && !(1000..=1_000_000).contains(&p) {
                return Err(invalid(
                    "linux.resources.cpu.period",
                    format!("{p} is not in 1000..=1000000 microseconds"),
                ));
            }
        }
        check_min(
            "linux.resources.cpu.realtimeRuntime",
            c.realtime_runtime(),
            -1,
        )?;
        if let Some(i) = c.idle() {
            if i != 0 && i != 1 {
                return Err(invalid(
                    "linux.resources.cpu.idle",
                    format!("{i} must be 0 or 1"),
                ));
            }
        }
        if let Some(s) = c.cpus() {
            check_list("linux.resources.cpu.cpus", s)?;
        }
        if let Some(s) = c.mems() {
            check_list("linux.resources.cpu.mems", s)?;
        }
    }
    if let Some(p) = r.pids() {
        if p.limit() < -1 {
            return Err(invalid(
                "linux.resources.pids.limit",
                format!("{} is negative (use -1 or 0 for unlimited)", p.limit()),
            ));
        }
    }
    if let Some(b) = r.block_io() {
        for (f, w) in [
            ("linux.resources.blockIO.weight", b.weight()),
            ("linux.resources.blockIO.leafWeight", b.leaf_weight()),
        ] {
            if let Some(w) = w {
                if w != 0 && !(10..=1000).contains(&w) {
                    return Err(invalid(f, format!("{w} is not in 10..=1000")));
                }
            }
        }
        for wd in b.weight_device().iter().flatten() {
            let f = "linux.resources.blockIO.weightDevice";
            if wd.major() < 0 || wd.minor() < 0 {
                return Err(invalid(
                    f,
                    format!("device {}:{} has a negative number", wd.major(), wd.minor()),
                ));
            }
            for w in [wd.weight(), wd.leaf_weight()].into_iter().flatten() {
                if w != 0 && !(10..=1000).contains(&w) {
                    return Err(invalid(f, format!("weight {w} is not in 10..=1000")));
                }
            }
        }
        for (f, list) in [
            (
                "linux.resources.blockIO.throttleReadBpsDevice",
                b.throttle_read_bps_device(),
            ),
            (
                "linux.resources.blockIO.throttleWriteBpsDevice",
                b.throttle_write_bps_device(),
            ),
            (
                "linux.resources.blockIO.throttleReadIOPSDevice",
                b.throttle_read_iops_device(),
            ),
            (
                "linux.resources.blockIO.throttleWriteIOPSDevice",
                b.throttle_write_iops_device(),
            ),
        ] {
            for t in list.iter().flatten() {
                if t.major() < 0 || t.minor() < 0 {
                    return Err(invalid(
                        f,
                        format!("device {}:{} has a negative number", t.major(), t.minor()),
                    ));
                }
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        check_hugepage_size("linux.resources.hugepageLimits.pageSize", h.page_size())?;
        if h.limit() < -1 {
            return Err(invalid(
                "linux.resources.hugepageLimits.limit",
                format!("{} is negative", h.limit()),
            ));
        }
    }
    if let Some(n) = r.network() {
        for p in n.priorities().iter().flatten() {
            if p.name().is_empty() || p.name().contains(|c: char| c.is_whitespace() || c == '/') {
                return Err(invalid(
                    "linux.resources.network.priorities.name",
                    format!("{:?} is not an interface name", p.name()),
                ));
            }
        }
    }
    for (dev, _) in r.rdma().iter().flatten() {
        if dev.is_empty() || dev.contains(|c: char| c.is_whitespace()) {
            return Err(invalid(
                "linux.resources.rdma",
                format!("{dev:?} is not an RDMA device name"),
            ));
        }
    }
    for (k, v) in r.unified().iter().flatten() {
        let f = "linux.resources.unified";
        if k.is_empty()
            || k.contains('/')
            || k.contains("..")
            || k.contains('\0')
            || !k.contains('.')
        {
            return Err(invalid(
                f,
                format!("key {k:?} is not a cgroup file name like \"memory.high\""),
            ));
        }
        if k.starts_with("cgroup.")
            && k != "cgroup.type"
            && k != "cgroup.max.depth"
            && k != "cgroup.max.descendants"
        {
            return Err(invalid(
                f,
                format!(
                    "key {k:?}: cgroup core files other than cgroup.max.* are managed by berth"
                ),
            ));
        }
        if v.contains('\0') {
            return Err(invalid(f, format!("value for {k:?} contains a NUL byte")));
        }
    }
    device_rules(r, warnings)?;
    Ok(())
}

/// The device rules in normalised form; `p` (FIFO) rules are skipped with a warning (the
/// devices controller only knows block and char devices).
pub(crate) fn device_rules(
    r: &LinuxResources,
    warnings: &mut Vec<String>,
) -> Result<Vec<bpf::DevRule>> {
    use oci_spec::runtime::LinuxDeviceType as T;
    let mut out = Vec::new();
    for (i, d) in r.devices().iter().flatten().enumerate() {
        let f = format!("linux.resources.devices[{i}]");
        let typ = match d.typ().unwrap_or(T::A) {
            T::A => None,
            T::B => Some(bpf::DEV_BLOCK),
            T::C | T::U => Some(bpf::DEV_CHAR),
            T::P => {
                warnings.push(format!(
                    "{f}: type \"p\" is not controlled by the devices cgroup; rule ignored"
                ));
                continue;
            }
        };
        let num = |v: Option<i64>, what: &str| -> Result<Option<u32>> {
            match v {
                None | Some(-1) => Ok(None),
                Some(x) if x < 0 || x > i64::from(i32::MAX) => Err(invalid(
                    &format!("{f}.{what}"),
                    format!("{x} is not a device number (use -1 or omit it for all)"),
                )),
                Some(x) => Ok(Some(x as u32)),
            }
        };
        let major = num(d.major(), "major")?;
        let minor = num(d.minor(), "minor")?;
        let acc_str = d.access().as_deref().unwrap_or("rwm");
        let acc_str = if acc_str.is_empty() { "rwm" } else { acc_str };
        let mut access = 0;
        for c in acc_str.chars() {
            access |= match c {
                'r' => bpf::ACC_READ,
                'w' => bpf::ACC_WRITE,
                'm' => bpf::ACC_MKNOD,
                _ => {
                    return Err(invalid(
                        &format!("{f}.access"),
                        format!("{acc_str:?} may only contain r, w and m"),
                    ))
                }
            };
        }
        let (major, minor) = if typ.is_none() {
            (None, None)
        } else {
            (major, minor)
        };
        out.push(bpf::DevRule {
            allow: d.allow(),
            typ,
            major,
            minor,
            access,
        });
    }
    Ok(out)
}

/// runc's conversion of cgroup v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.saturating_sub(2)) * 9999) / 262142
}

/// runc's conversion of blkio weight (10..1000) to io.weight (1..10000).
pub fn blkio_weight_to_io_weight(w: u64) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (w.saturating_sub(10)) * 9999 / 990
}

/// Poll `check` until it returns true or `limit` passes.
pub(crate) fn wait_until(
    what: &'static str,
    path: &Path,
    limit: Duration,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let start = Instant::now();
    let mut delay = Duration::from_micros(200);
    loop {
        if check()? {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(Error::Timeout {
                what,
                path: path.to_path_buf(),
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
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
    fn systemd_refused() {
        assert!(matches!(
            Cgroup::new(None, "x", true),
            Err(Error::SystemdUnsupported)
        ));
    }
}
