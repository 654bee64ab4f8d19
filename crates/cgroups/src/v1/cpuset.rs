//! v1 cpuset: cpuset.cpus and cpuset.mems, and the initialisation a new v1 cpuset needs.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxCpu;

use crate::fsutil::{self, read_opt, write};
use crate::Result;

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// Whether `c` sets cpus or mems.
pub(super) fn sets_anything(c: &LinuxCpu) -> bool {
    non_empty(c.cpus()).is_some() || non_empty(c.mems()).is_some()
}

pub(super) fn apply(d: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = non_empty(c.cpus()) {
        write(d, "cpuset.cpus", s, "linux.resources.cpu.cpus")?;
    }
    if let Some(s) = non_empty(c.mems()) {
        write(d, "cpuset.mems", s, "linux.resources.cpu.mems")?;
    }
    Ok(())
}

/// A new v1 cpuset cgroup starts with empty cpus/mems and refuses tasks: copy the parent's
/// values into every directory we created, top-down.
pub(super) fn init(leaf: &Path, created: &[PathBuf]) -> Result<()> {
    for d in created.iter().filter(|d| leaf.starts_with(d)) {
        let Some(parent) = d.parent() else { continue };
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let cur = read_opt(&d.join(f))?.unwrap_or_default();
            if cur.trim().is_empty() {
                let p = fsutil::read(&parent.join(f))?;
                write(d, f, p.trim(), f)?;
            }
        }
    }
    Ok(())
}
