//! v1 usage figures, one function per controller, in runc's `events --stats` shape.

use std::path::Path;

use super::V1;
use crate::controllers::hugetlb::page_sizes;
use crate::fsutil::{flat_keyed, keyed, read_opt, read_u64_or0};
use crate::stats::{self, Stats};
use crate::Result;

pub(super) fn read(v: &V1<'_>) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(d) = v.dir("cpuacct") {
        cpuacct(d, &mut s)?;
    }
    if let Some(d) = v.dir("cpu") {
        if let Some(t) = read_opt(&d.join("cpu.stat"))? {
            let kv = flat_keyed(&t);
            s.cpu.throttling.periods = keyed(&kv, "nr_periods");
            s.cpu.throttling.throttled_periods = keyed(&kv, "nr_throttled");
            s.cpu.throttling.throttled_time = keyed(&kv, "throttled_time");
        }
    }
    if let Some(d) = v.dir("cpuset") {
        cpuset(d, &mut s.cpuset)?;
    }
    if let Some(d) = v.dir("memory") {
        memory(d, &mut s.memory)?;
    }
    if let Some(d) = v.dir("pids") {
        s.pids.current = read_u64_or0(&d.join("pids.current"))?;
        let lim = read_u64_or0(&d.join("pids.max"))?;
        s.pids.limit = if lim == u64::MAX { 0 } else { lim };
    }
    if let Some(d) = v.dir("blkio") {
        blkio(d, &mut s.blkio)?;
    }
    if let Some(d) = v.dir("hugetlb") {
        hugetlb(d, &mut s)?;
    }
    Ok(s)
}

fn cpuacct(d: &Path, s: &mut Stats) -> Result<()> {
    s.cpu.usage.total = read_u64_or0(&d.join("cpuacct.usage"))?;
    if let Some(t) = read_opt(&d.join("cpuacct.usage_percpu"))? {
        s.cpu.usage.percpu = t
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
    }
    if let Some(t) = read_opt(&d.join("cpuacct.usage_all"))? {
        (s.cpu.usage.percpu_user, s.cpu.usage.percpu_kernel) = usage_all(&t);
    }
    if let Some(t) = read_opt(&d.join("cpuacct.stat"))? {
        // USER_HZ ticks -> ns.
        // SAFETY: sysconf has no memory side effects.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let hz = if hz > 0 { hz as u64 } else { 100 };
        let kv = flat_keyed(&t);
        s.cpu.usage.user = keyed(&kv, "user") * 1_000_000_000 / hz;
        s.cpu.usage.kernel = keyed(&kv, "system") * 1_000_000_000 / hz;
    }
    Ok(())
}

/// cpuacct.usage_all: a "cpu user system" header, then one line per cpu (ns). Returns the
/// per-cpu user and system times.
fn usage_all(t: &str) -> (Vec<u64>, Vec<u64>) {
    let mut user = Vec::new();
    let mut kernel = Vec::new();
    for l in t.lines().skip(1) {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() == 3 {
            user.push(f[1]);
            kernel.push(f[2]);
        }
    }
    (user, kernel)
}

fn cpuset(d: &Path, c: &mut stats::CpuSet) -> Result<()> {
    if let Some(t) = read_opt(&d.join("cpuset.cpus"))? {
        c.cpus = stats::parse_id_list(&t);
    }
    if let Some(t) = read_opt(&d.join("cpuset.mems"))? {
        c.mems = stats::parse_id_list(&t);
    }
    for (f, v) in [
        ("cpuset.cpu_exclusive", &mut c.cpu_exclusive),
        ("cpuset.mem_hardwall", &mut c.mem_hardwall),
        ("cpuset.mem_exclusive", &mut c.mem_exclusive),
        ("cpuset.memory_migrate", &mut c.memory_migrate),
        ("cpuset.memory_spread_page", &mut c.memory_spread_page),
        ("cpuset.memory_spread_slab", &mut c.memory_spread_slab),
        ("cpuset.memory_pressure", &mut c.memory_pressure),
        ("cpuset.sched_load_balance", &mut c.sched_load_balance),
    ] {
        *v = read_u64_or0(&d.join(f))?;
    }
    if let Some(t) = read_opt(&d.join("cpuset.sched_relax_domain_level"))? {
        c.sched_relax_domain_level = t.trim().parse().unwrap_or(-1);
    }
    Ok(())
}

fn memory(d: &Path, m: &mut stats::Memory) -> Result<()> {
    let entry = |prefix: &str| -> Result<stats::MemoryEntry> {
        Ok(stats::MemoryEntry {
            usage: read_u64_or0(&d.join(format!("{prefix}usage_in_bytes")))?,
            max: read_u64_or0(&d.join(format!("{prefix}max_usage_in_bytes")))?,
            limit: read_u64_or0(&d.join(format!("{prefix}limit_in_bytes")))?,
            failcnt: read_u64_or0(&d.join(format!("{prefix}failcnt")))?,
        })
    };
    m.usage = entry("memory.")?;
    m.swap = entry("memory.memsw.")?;
    m.kernel = entry("memory.kmem.")?;
    m.kernel_tcp = entry("memory.kmem.tcp.")?;
    if let Some(t) = read_opt(&d.join("memory.stat"))? {
        m.raw = flat_keyed(&t).into_iter().collect();
        m.cache = m.raw.get("cache").copied().unwrap_or(0);
    }
    Ok(())
}

fn blkio(d: &Path, b: &mut stats::Blkio) -> Result<()> {
    // The first of the files (CFQ, BFQ, throttle) that has entries.
    let pick = |names: &[&str]| -> Result<Vec<stats::BlkioEntry>> {
        for n in names {
            if let Some(t) = read_opt(&d.join(n))? {
                let e = stats::parse_blkio_v1(&t);
                if !e.is_empty() {
                    return Ok(e);
                }
            }
        }
        Ok(Vec::new())
    };
    b.io_service_bytes_recursive = pick(&[
        "blkio.io_service_bytes_recursive",
        "blkio.bfq.io_service_bytes_recursive",
        "blkio.throttle.io_service_bytes_recursive",
    ])?;
    b.io_serviced_recursive = pick(&[
        "blkio.io_serviced_recursive",
        "blkio.bfq.io_serviced_recursive",
        "blkio.throttle.io_serviced_recursive",
    ])?;
    Ok(())
}

fn hugetlb(d: &Path, s: &mut Stats) -> Result<()> {
    for size in page_sizes(d, ".limit_in_bytes")? {
        s.hugetlb.insert(
            size.clone(),
            stats::Hugetlb {
                usage: read_u64_or0(&d.join(format!("hugetlb.{size}.usage_in_bytes")))?,
                max: read_u64_or0(&d.join(format!("hugetlb.{size}.max_usage_in_bytes")))?,
                failcnt: read_u64_or0(&d.join(format!("hugetlb.{size}.failcnt")))?,
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_all_per_cpu() {
        let (u, k) = usage_all("cpu user system\n0 10 20\n1 30 40\nbad line\n");
        assert_eq!(u, [10, 30]);
        assert_eq!(k, [20, 40]);
    }
}
