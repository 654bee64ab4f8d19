//! berth-procview: truthful /proc files for one container, computed from its cgroup.
//!
//! A *provider* (one process per container, [`Provider::start`]) serves a small read-only
//! FUSE file system with `meminfo`, `cpuinfo`, `stat`, `uptime`, `loadavg`, `diskstats`,
//! `swaps`, `cpu-online` and `cpu-present`; the runtime binds them over the container's
//! `/proc/...` and `/sys/devices/system/cpu/{online,present}` ([`FILES`]). Every read at
//! offset 0 renders the file from the cgroup's current figures (v1, hybrid and v2):
//!
//! * memory: MemTotal = the limit (the host's file unchanged without one), MemFree =
//!   limit - usage, Cached/Shmem/Active/Inactive/... from memory.stat, swap from the
//!   memory+swap limit (never more than the host has);
//! * CPUs: the cpuset's online CPUs, the first ceil(quota/period) of them under a CFS quota,
//!   renumbered from 0; /proc/stat has the container's own user/system time per CPU
//!   (cpuacct per CPU on v1, spread evenly on v2) and idle = uptime - busy;
//! * uptime: since the init started; loadavg: the container's runnable + uninterruptible
//!   threads, averaged every 5 s with the kernel's fixed-point constants;
//! * diskstats: the devices the cgroup did I/O on (blkio.throttle / io.stat);
//! * sysinfo(2): the same memory, uptime, loads and thread count, through a seccomp
//!   user-notification listener the provider answers ([`sysinfo`]).
//!
//! Failure isolation: a provider serves one container; if it dies, reads of that
//! container's files fail with ENOTCONN, nothing else is affected. No extra daemon: the
//! provider is a detached fork of the runtime and leaves with the container's init.

mod cgroup;
mod cpu;
mod fuse;
mod kept;
mod mem;
mod provider;
pub mod sysinfo;
mod view;

pub use cgroup::{CgroupPaths, Memory};
pub use provider::{unmount, Provider};
pub use view::FILES;

/// The OCI annotation that asks berth-runtime for these files.
pub const ANNOTATION: &str = "run.berth.truthful-proc";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open /dev/fuse (no FUSE on this host?): {0}")]
    NoFuse(#[source] std::io::Error),
    #[error("mount FUSE on {}: {source}", dir.display())]
    Mount {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{call}: {source}")]
    Sys {
        call: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("path {} has a NUL byte", .0.display())]
    Path(std::path::PathBuf),
}
