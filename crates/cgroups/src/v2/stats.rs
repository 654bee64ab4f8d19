//! v2 usage figures, one function per controller, in runc's `events --stats` shape.

use std::path::Path;

use crate::controllers::hugetlb::page_sizes;
use crate::fsutil::{flat_keyed, keyed, read_opt, read_u64_or0};
use crate::stats::{self, Stats};
use crate::Result;

pub(super) fn read(d: &Path) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(t) = read_opt(&d.join("cpu.stat"))? {
        cpu(&t, &mut s.cpu);
    }
    if let Some(t) = read_opt(&d.join("cpuset.cpus.effective"))? {
        s.cpuset.cpus = stats::parse_id_list(&t);
    }
    if let Some(t) = read_opt(&d.join("cpuset.mems.effective"))? {
        s.cpuset.mems = stats::parse_id_list(&t);
    }
    if d.join("memory.current").exists() {
        memory(d, &mut s.memory)?;
    }
    if d.join("pids.current").exists() {
        s.pids.current = read_u64_or0(&d.join("pids.current"))?;
        let lim = read_u64_or0(&d.join("pids.max"))?;
        s.pids.limit = if lim == u64::MAX { 0 } else { lim };
    }
    if let Some(t) = read_opt(&d.join("io.stat"))? {
        let (bytes, ios) = stats::parse_io_stat(&t);
        s.blkio.io_service_bytes_recursive = bytes;
        s.blkio.io_serviced_recursive = ios;
    }
    hugetlb(d, &mut s)?;
    Ok(s)
}

/// cpu.stat (µs) into runc's ns figures.
fn cpu(t: &str, c: &mut stats::Cpu) {
    let kv = flat_keyed(t);
    c.usage.total = keyed(&kv, "usage_usec") * 1000;
    c.usage.user = keyed(&kv, "user_usec") * 1000;
    c.usage.kernel = keyed(&kv, "system_usec") * 1000;
    c.throttling.periods = keyed(&kv, "nr_periods");
    c.throttling.throttled_periods = keyed(&kv, "nr_throttled");
    c.throttling.throttled_time = keyed(&kv, "throttled_usec") * 1000;
}

fn memory(d: &Path, m: &mut stats::Memory) -> Result<()> {
    let usage = read_u64_or0(&d.join("memory.current"))?;
    let limit = read_u64_or0(&d.join("memory.max"))?;
    let events = read_opt(&d.join("memory.events"))?.unwrap_or_default();
    m.usage = stats::MemoryEntry {
        usage,
        limit,
        max: read_u64_or0(&d.join("memory.peak"))?,
        failcnt: keyed(&flat_keyed(&events), "max"),
    };
    if d.join("memory.swap.current").exists() {
        let sw = read_u64_or0(&d.join("memory.swap.current"))?;
        let swmax = read_u64_or0(&d.join("memory.swap.max"))?;
        m.swap = memsw(usage, limit, sw, swmax);
    }
    if let Some(t) = read_opt(&d.join("memory.stat"))? {
        m.raw = flat_keyed(&t).into_iter().collect();
        m.cache = m.raw.get("file").copied().unwrap_or(0);
    }
    Ok(())
}

/// As runc: report memory+swap like v1's memsw ("max" is u64::MAX).
fn memsw(usage: u64, limit: u64, swap: u64, swap_max: u64) -> stats::MemoryEntry {
    stats::MemoryEntry {
        usage: swap.saturating_add(usage),
        limit: if swap_max == u64::MAX || limit == u64::MAX {
            u64::MAX
        } else {
            swap_max + limit
        },
        max: 0,
        failcnt: 0,
    }
}

fn hugetlb(d: &Path, s: &mut Stats) -> Result<()> {
    for size in page_sizes(d, ".max")? {
        let ev = read_opt(&d.join(format!("hugetlb.{size}.events")))?.unwrap_or_default();
        s.hugetlb.insert(
            size.clone(),
            stats::Hugetlb {
                usage: read_u64_or0(&d.join(format!("hugetlb.{size}.current")))?,
                max: 0,
                failcnt: keyed(&flat_keyed(&ev), "max"),
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_stat_in_ns() {
        let mut c = stats::Cpu::default();
        cpu(
            "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 7\nnr_throttled 1\nthrottled_usec 4\n",
            &mut c,
        );
        assert_eq!(
            (c.usage.total, c.usage.user, c.usage.kernel),
            (5000, 3000, 2000)
        );
        assert_eq!(
            (
                c.throttling.periods,
                c.throttling.throttled_periods,
                c.throttling.throttled_time
            ),
            (7, 1, 4000)
        );
    }

    #[test]
    fn memsw_adds_swap_to_memory() {
        let e = memsw(10, 100, 5, 50);
        assert_eq!((e.usage, e.limit), (15, 150));
        assert_eq!(memsw(10, u64::MAX, 5, 50).limit, u64::MAX);
        assert_eq!(memsw(10, 100, 5, u64::MAX).limit, u64::MAX);
    }
}
