//! v2 cpu and cpuset: cpu.weight, cpu.max, cpu.max.burst, cpu.idle, cpuset.cpus/mems.
//! Realtime scheduling has no v2 equivalent and is refused.

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use crate::fsutil::{self, read_opt, write};
use crate::{controllers, Error, Result};

fn not_on_v2(field: &str) -> Error {
    Error::Invalid {
        field: field.to_string(),
        reason: "is a cgroup v1 feature with no cgroup v2 equivalent".into(),
    }
}

/// What can be refused before anything is written.
pub(super) fn check(c: &LinuxCpu) -> Result<()> {
    if c.realtime_runtime().is_some_and(|v| v != 0) {
        return Err(not_on_v2("linux.resources.cpu.realtimeRuntime"));
    }
    if c.realtime_period().is_some_and(|v| v != 0) {
        return Err(not_on_v2("linux.resources.cpu.realtimePeriod"));
    }
    Ok(())
}

pub(super) fn apply(d: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        write(
            d,
            "cpu.weight",
            &controllers::cpu::shares_to_weight(s).to_string(),
            "linux.resources.cpu.shares",
        )?;
    }
    let quota = c.quota().filter(|q| *q != 0);
    let period = c.period().filter(|p| *p != 0);
    if quota.is_some() || period.is_some() {
        // What is not given is kept from the current cpu.max.
        let current = if quota.is_none() {
            fsutil::read(&d.join("cpu.max"))?
        } else if period.is_none() {
            read_opt(&d.join("cpu.max"))?.unwrap_or_default()
        } else {
            String::new()
        };
        write(
            d,
            "cpu.max",
            &cpu_max(quota, period, &current),
            "linux.resources.cpu.quota",
        )?;
    }
    if let Some(b) = c.burst() {
        write(
            d,
            "cpu.max.burst",
            &b.to_string(),
            "linux.resources.cpu.burst",
        )?;
    }
    if let Some(i) = c.idle() {
        write(d, "cpu.idle", &i.to_string(), "linux.resources.cpu.idle")?;
    }
    if let Some(s) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write(d, "cpuset.cpus", s, "linux.resources.cpu.cpus")?;
    }
    if let Some(s) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write(d, "cpuset.mems", s, "linux.resources.cpu.mems")?;
    }
    Ok(())
}

/// The cpu.max line "QUOTA PERIOD" (a negative quota is "max"); a part not given comes from
/// `current` (the file's contents), else "max" / 100000 µs.
fn cpu_max(quota: Option<i64>, period: Option<u64>, current: &str) -> String {
    let mut cur = current.split_whitespace();
    let cur_quota = cur.next();
    let q = match quota {
        Some(q) if q > 0 => q.to_string(),
        Some(_) => "max".to_string(),
        None => cur_quota.unwrap_or("max").to_string(),
    };
    let p = match period {
        Some(p) => p,
        None => cur.next().and_then(|p| p.parse().ok()).unwrap_or(100_000),
    };
    format!("{q} {p}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_keeps_what_is_not_given() {
        assert_eq!(cpu_max(Some(50000), Some(100000), ""), "50000 100000");
        assert_eq!(cpu_max(Some(-1), None, "50000 20000\n"), "max 20000");
        assert_eq!(cpu_max(Some(3000), None, ""), "3000 100000");
        assert_eq!(cpu_max(None, Some(10000), "max 100000\n"), "max 10000");
        assert_eq!(cpu_max(None, Some(10000), "25000 100000\n"), "25000 10000");
        assert_eq!(cpu_max(None, Some(10000), ""), "max 10000");
    }

    #[test]
    fn realtime_is_refused() {
        let c: LinuxCpu = serde_json::from_str(r#"{"realtimeRuntime":1000}"#).unwrap();
        assert!(check(&c).is_err());
        let c: LinuxCpu = serde_json::from_str(r#"{"realtimePeriod":0,"shares":2}"#).unwrap();
        assert!(check(&c).is_ok());
    }
}
