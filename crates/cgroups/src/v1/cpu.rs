//! v1 cpu: cpu.shares, CFS quota/period/burst, realtime runtime/period, cpu.idle.

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use crate::fsutil::{write, write_if_exists};
use crate::{Error, Result};

/// Whether `c` sets anything of the cpu controller (cpus/mems are cpuset's).
pub(super) fn sets_anything(c: &LinuxCpu) -> bool {
    c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.realtime_runtime().is_some()
        || c.realtime_period().is_some()
        || c.idle().is_some()
        || c.burst().is_some()
}

pub(super) fn apply(d: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares() {
        if s != 0 {
            write(
                d,
                "cpu.shares",
                &s.to_string(),
                "linux.resources.cpu.shares",
            )?;
        }
    }
    set_bandwidth(
        d,
        c.quota().filter(|q| *q != 0),
        c.period().filter(|p| *p != 0),
    )?;
    if let Some(b) = c.burst() {
        write(
            d,
            "cpu.cfs_burst_us",
            &b.to_string(),
            "linux.resources.cpu.burst",
        )?;
    }
    if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
        write(
            d,
            "cpu.rt_period_us",
            &p.to_string(),
            "linux.resources.cpu.realtimePeriod",
        )?;
    }
    if let Some(rt) = c.realtime_runtime().filter(|p| *p != 0) {
        write(
            d,
            "cpu.rt_runtime_us",
            &rt.to_string(),
            "linux.resources.cpu.realtimeRuntime",
        )?;
    }
    if let Some(i) = c.idle() {
        if !write_if_exists(d, "cpu.idle", &i.to_string(), "linux.resources.cpu.idle")? && i != 0 {
            return Err(Error::Invalid {
                field: "linux.resources.cpu.idle".into(),
                reason: "this kernel has no cpu.idle".into(),
            });
        }
    }
    Ok(())
}

/// cpu.cfs_period_us then cpu.cfs_quota_us (0 = leave alone).
fn set_bandwidth(d: &Path, quota: Option<i64>, period: Option<u64>) -> Result<()> {
    let write_quota = |q: i64| {
        write(
            d,
            "cpu.cfs_quota_us",
            &q.to_string(),
            "linux.resources.cpu.quota",
        )
    };
    let write_period = |p: u64| {
        write(
            d,
            "cpu.cfs_period_us",
            &p.to_string(),
            "linux.resources.cpu.period",
        )
    };
    if let Some(p) = period {
        // A shorter period can be refused while the old quota exceeds it; then set the
        // quota first.
        if let Err(e) = write_period(p) {
            match quota {
                Some(q) => {
                    write_quota(q)?;
                    write_period(p)?;
                }
                None => return Err(e),
            }
        }
    }
    if let Some(q) = quota {
        write_quota(q)?;
    }
    Ok(())
}
