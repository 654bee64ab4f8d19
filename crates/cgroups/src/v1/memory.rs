//! v1 memory: memory.limit_in_bytes, memory.memsw.limit_in_bytes, soft limit, swappiness,
//! OOM killer.

use std::path::Path;

use oci_spec::runtime::LinuxMemory;

use crate::fsutil::{read_u64_or0, write};
use crate::{Error, Result};

/// Whether `m` sets anything the memory controller must do (kernel and kernelTCP are only
/// warned about, so they need no controller).
pub(super) fn sets_anything(m: &LinuxMemory) -> bool {
    let mut m2 = *m;
    m2.set_kernel(None);
    m2.set_kernel_tcp(None);
    m2 != LinuxMemory::default()
}

pub(super) fn apply(d: &Path, m: &LinuxMemory) -> Result<()> {
    set_limits(d, m)?;
    if let Some(v) = m.reservation() {
        if v != 0 {
            write(
                d,
                "memory.soft_limit_in_bytes",
                &v.to_string(),
                "linux.resources.memory.reservation",
            )?;
        }
    }
    if let Some(v) = m.swappiness() {
        write(
            d,
            "memory.swappiness",
            &v.to_string(),
            "linux.resources.memory.swappiness",
        )?;
    }
    if let Some(v) = m.disable_oom_killer() {
        write(
            d,
            "memory.oom_control",
            if v { "1" } else { "0" },
            "linux.resources.memory.disableOOMKiller",
        )?;
    }
    Ok(())
}

/// Which of memory.limit_in_bytes and memory.memsw.limit_in_bytes to write first.
#[derive(Debug, PartialEq, Eq)]
enum Order {
    SwapFirst,
    LimitFirst,
}

/// memsw must stay >= limit at every step: raise memsw first when it grows past the current
/// limit (or becomes unlimited), else lower the limit first.
fn order(current_limit: u64, swap: i64) -> Order {
    if swap == -1 || current_limit < swap as u64 {
        Order::SwapFirst
    } else {
        Order::LimitFirst
    }
}

/// memory.limit_in_bytes and memory.memsw.limit_in_bytes in an order the kernel accepts
/// (memsw must stay >= limit at every step), whether raising or lowering.
fn set_limits(d: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    if limit == -1 && swap == 0 {
        swap = -1; // unlimited memory implies unlimited memory+swap
    }
    let has_memsw = d.join("memory.memsw.limit_in_bytes").exists();
    let write_swap = |v: i64| -> Result<()> {
        if !has_memsw {
            if v == -1 {
                return Ok(()); // no swap accounting: nothing to lift
            }
            return Err(Error::Invalid {
                field: "linux.resources.memory.swap".into(),
                reason: "this kernel has no swap accounting (memory.memsw.limit_in_bytes)".into(),
            });
        }
        write(
            d,
            "memory.memsw.limit_in_bytes",
            &v.to_string(),
            "linux.resources.memory.swap",
        )
    };
    let write_limit = |v: i64| {
        write(
            d,
            "memory.limit_in_bytes",
            &v.to_string(),
            "linux.resources.memory.limit",
        )
    };
    if limit != 0 && swap != 0 {
        let cur = read_u64_or0(&d.join("memory.limit_in_bytes"))?;
        match order(cur, swap) {
            Order::SwapFirst => {
                write_swap(swap)?;
                write_limit(limit)?;
            }
            Order::LimitFirst => {
                write_limit(limit)?;
                write_swap(swap)?;
            }
        }
    } else {
        if limit != 0 {
            write_limit(limit)?;
        }
        if swap != 0 {
            write_swap(swap)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memsw_never_drops_below_the_limit() {
        // Raising from 64M to memsw 256M: memsw first.
        assert_eq!(order(64 << 20, 256 << 20), Order::SwapFirst);
        assert_eq!(order(64 << 20, -1), Order::SwapFirst);
        // Lowering from 256M to memsw 64M: the limit first.
        assert_eq!(order(256 << 20, 64 << 20), Order::LimitFirst);
        assert_eq!(order(64 << 20, 64 << 20), Order::LimitFirst);
    }

    #[test]
    fn kernel_fields_alone_need_no_controller() {
        let m: LinuxMemory = serde_json::from_str(r#"{"kernel":1,"kernelTCP":2}"#).unwrap();
        assert!(!sets_anything(&m));
        let m: LinuxMemory = serde_json::from_str(r#"{"swappiness":0}"#).unwrap();
        assert!(sets_anything(&m));
    }
}
