//! v2 memory: memory.max, memory.swap.max, memory.low; v1-only knobs are warned about.

use std::path::Path;

use oci_spec::runtime::LinuxMemory;

use super::max_or;
use crate::fsutil::{write, write_if_exists};
use crate::{Error, Result};

/// The value for memory.swap.max (swap alone) from the spec's limit and swap (memory+swap),
/// as runc converts it; `None` leaves swap alone. 0 means unset for both.
fn swap_max(limit: i64, swap: i64) -> Result<Option<i64>> {
    match (swap, limit) {
        // Unlimited memory with swap unset means both unlimited (as on v1).
        (0, -1) => Ok(Some(-1)),
        (0, _) => Ok(None),
        (-1, _) => Ok(Some(-1)),
        (_, l) if l <= 0 => Err(Error::Invalid {
            field: "linux.resources.memory.swap".into(),
            reason: "a swap limit needs a memory limit on cgroup v2".into(),
        }),
        (s, l) => Ok(Some(s - l)),
    }
}

/// What can be refused before anything is written: a swap limit without a memory limit.
pub(super) fn check(m: &LinuxMemory) -> Result<()> {
    swap_max(m.limit().unwrap_or(0), m.swap().unwrap_or(0)).map(drop)
}

pub(super) fn apply(d: &Path, m: &LinuxMemory, warnings: &mut Vec<String>) -> Result<()> {
    let limit = m.limit().unwrap_or(0);
    if let Some(s) = swap_max(limit, m.swap().unwrap_or(0))? {
        let v = max_or(s);
        if !write_if_exists(d, "memory.swap.max", &v, "linux.resources.memory.swap")?
            && v != "max"
            && v != "0"
        {
            return Err(Error::Invalid {
                field: "linux.resources.memory.swap".into(),
                reason: "this kernel has no swap accounting (memory.swap.max)".into(),
            });
        }
    }
    if limit != 0 {
        write(
            d,
            "memory.max",
            &max_or(limit),
            "linux.resources.memory.limit",
        )?;
    }
    if let Some(v) = m.reservation() {
        if v != 0 {
            write(
                d,
                "memory.low",
                &max_or(v),
                "linux.resources.memory.reservation",
            )?;
        }
    }
    if m.swappiness().is_some() {
        warnings.push("linux.resources.memory.swappiness is ignored on cgroup v2".into());
    }
    if m.disable_oom_killer() == Some(true) {
        warnings.push("linux.resources.memory.disableOOMKiller is ignored on cgroup v2".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_max_is_swap_alone() {
        assert_eq!(swap_max(0, 0).unwrap(), None);
        assert_eq!(swap_max(1 << 20, 0).unwrap(), None);
        assert_eq!(swap_max(-1, 0).unwrap(), Some(-1));
        assert_eq!(swap_max(1 << 20, -1).unwrap(), Some(-1));
        assert_eq!(swap_max(1 << 20, 3 << 20).unwrap(), Some(2 << 20));
        assert_eq!(swap_max(1 << 20, 1 << 20).unwrap(), Some(0));
        assert!(swap_max(0, 1 << 20).is_err());
        assert!(swap_max(-1, 1 << 20).is_err());
    }
}
