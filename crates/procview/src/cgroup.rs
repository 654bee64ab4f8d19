//! What the files are computed from: the container's cgroup files, read on each render
//! (v1 and hybrid: one directory per controller; v2: the unified directory). A file that is
//! missing or unreadable counts as "no limit" / zero usage, so a view never fails to render.

use crate::kept::Kept;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the container's cgroup lives.
#[derive(Clone, Debug, Default)]
pub struct CgroupPaths {
    /// v1 (and hybrid): controller name ("memory", "cpu", "cpuacct", "cpuset", "pids",
    /// "blkio") -> the container's directory in that hierarchy.
    pub v1: BTreeMap<String, PathBuf>,
    /// v2: the container's directory in the unified hierarchy (None on v1/hybrid).
    pub unified: Option<PathBuf>,
}

/// One file's text. proc and cgroup files report size 0, so `fs::read_to_string` would start
/// with tiny reads, and each read of a proc file renders all of it in the kernel: read into
/// a buffer that takes a whole meminfo or memory.stat in one call.
pub fn read(p: &Path) -> Option<String> {
    use std::io::Read;
    let mut v = Vec::with_capacity(16384);
    std::fs::File::open(p).ok()?.read_to_end(&mut v).ok()?;
    String::from_utf8(v).ok()
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat), borrowed from the text.
pub fn keyed(text: &str) -> Keyed<'_> {
    Keyed(
        text.lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some((it.next()?, it.next()?.parse().ok()?))
            })
            .collect(),
    )
}

pub struct Keyed<'a>(Vec<(&'a str, u64)>);

impl Keyed<'_> {
    pub fn get(&self, key: &str) -> Option<u64> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

/// Memory figures in bytes; limits are None when unlimited.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Memory {
    pub limit: Option<u64>,
    pub usage: u64,
    /// Swap alone (not memory+swap).
    pub swap_limit: Option<u64>,
    pub swap_usage: u64,
    pub cache: u64,
    pub shmem: u64,
    pub mapped: u64,
    pub anon: u64,
    pub active_anon: u64,
    pub inactive_anon: u64,
    pub active_file: u64,
    pub inactive_file: u64,
    pub unevictable: u64,
    pub slab_reclaimable: u64,
    pub slab_unreclaimable: u64,
}

/// v1 writes "unlimited" as a huge page-aligned number (PAGE_COUNTER_MAX pages).
fn v1_limit(v: Option<u64>) -> Option<u64> {
    v.filter(|&x| x < (1u64 << 62))
}

fn v2_limit(k: &Kept, p: &Path) -> Option<u64> {
    let s = k.read(p)?;
    let s = s.trim();
    if s == "max" {
        None
    } else {
        s.parse().ok()
    }
}

impl CgroupPaths {
    fn v1_dir(&self, ctrl: &str) -> Option<&Path> {
        self.v1.get(ctrl).map(PathBuf::as_path)
    }

    pub fn memory(&self, k: &Kept) -> Memory {
        if let Some(d) = &self.unified {
            let text = k.read(&d.join("memory.stat")).unwrap_or_default();
            let st = keyed(&text);
            let g = |key: &str| st.get(key).unwrap_or(0);
            return Memory {
                limit: v2_limit(k, &d.join("memory.max")),
                usage: k.read_u64(&d.join("memory.current")).unwrap_or(0),
                swap_limit: v2_limit(k, &d.join("memory.swap.max")),
                swap_usage: k.read_u64(&d.join("memory.swap.current")).unwrap_or(0),
                cache: g("file"),
                shmem: g("shmem"),
                mapped: g("file_mapped"),
                anon: g("anon"),
                active_anon: g("active_anon"),
                inactive_anon: g("inactive_anon"),
                active_file: g("active_file"),
                inactive_file: g("inactive_file"),
                unevictable: g("unevictable"),
                slab_reclaimable: g("slab_reclaimable"),
                slab_unreclaimable: g("slab_unreclaimable"),
            };
        }
        let Some(d) = self.v1_dir("memory") else {
            return Memory::default();
        };
        let text = k.read(&d.join("memory.stat")).unwrap_or_default();
        let st = keyed(&text);
        // total_*: the cgroup and its descendants, as usage_in_bytes counts them.
        let g = |key: &str| {
            st.get(&format!("total_{key}"))
                .or_else(|| st.get(key))
                .unwrap_or(0)
        };
        let limit = v1_limit(k.read_u64(&d.join("memory.limit_in_bytes")));
        let usage = k.read_u64(&d.join("memory.usage_in_bytes")).unwrap_or(0);
        let memsw_limit = v1_limit(k.read_u64(&d.join("memory.memsw.limit_in_bytes")));
        let memsw_usage = k.read_u64(&d.join("memory.memsw.usage_in_bytes"));
        Memory {
            limit,
            usage,
            swap_limit: match (memsw_limit, limit) {
                (Some(sw), Some(l)) => Some(sw.saturating_sub(l)),
                // No memsw accounting: the container may swap like the host.
                _ => None,
            },
            swap_usage: memsw_usage.map(|u| u.saturating_sub(usage)).unwrap_or(0),
            cache: g("cache"),
            shmem: g("shmem"),
            mapped: g("mapped_file"),
            anon: g("rss"),
            active_anon: g("active_anon"),
            inactive_anon: g("inactive_anon"),
            active_file: g("active_file"),
            inactive_file: g("inactive_file"),
            unevictable: g("unevictable"),
            slab_reclaimable: 0,
            slab_unreclaimable: 0,
        }
    }

    /// The host CPUs the cgroup may run on (cpuset), None when unreadable.
    pub fn cpuset(&self, k: &Kept) -> Option<Vec<u32>> {
        let text = match &self.unified {
            Some(d) => k.read(&d.join("cpuset.cpus.effective"))?,
            None => {
                let d = self.v1_dir("cpuset")?;
                k.read(&d.join("cpuset.effective_cpus"))
                    .or_else(|| k.read(&d.join("cpuset.cpus")))?
            }
        };
        let v = parse_cpu_list(text.trim());
        (!v.is_empty()).then_some(v)
    }

    /// The CFS quota as a CPU count rounded up (`--cpus 1.5` -> 2), None when unlimited.
    pub fn quota_cpus(&self, k: &Kept) -> Option<usize> {
        let (quota, period) = match &self.unified {
            Some(d) => {
                let s = k.read(&d.join("cpu.max"))?;
                let mut it = s.split_whitespace();
                let q = it.next()?;
                if q == "max" {
                    return None;
                }
                (q.parse::<i64>().ok()?, it.next()?.parse::<i64>().ok()?)
            }
            None => {
                let d = self.v1_dir("cpu")?;
                (
                    k.read(&d.join("cpu.cfs_quota_us"))?
                        .trim()
                        .parse::<i64>()
                        .ok()?,
                    k.read(&d.join("cpu.cfs_period_us"))?
                        .trim()
                        .parse::<i64>()
                        .ok()?,
                )
            }
        };
        if quota <= 0 || period <= 0 {
            return None;
        }
        Some(((quota + period - 1) / period) as usize)
    }

    /// CPU time in nanoseconds: (user, system, per host CPU total if the cgroup keeps it).
    pub fn cpu_time(&self, k: &Kept) -> (u64, u64, Vec<u64>) {
        if let Some(d) = &self.unified {
            let text = k.read(&d.join("cpu.stat")).unwrap_or_default();
            let st = keyed(&text);
            let g = |key: &str| st.get(key).unwrap_or(0) * 1000;
            return (g("user_usec"), g("system_usec"), Vec::new());
        }
        let Some(d) = self.v1_dir("cpuacct") else {
            return (0, 0, Vec::new());
        };
        let text = k.read(&d.join("cpuacct.stat")).unwrap_or_default();
        let st = keyed(&text);
        let tick = 1_000_000_000 / clock_ticks();
        let user = st.get("user").unwrap_or(0) * tick;
        let system = st.get("system").unwrap_or(0) * tick;
        let percpu = k
            .read(&d.join("cpuacct.usage_percpu"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        (user, system, percpu)
    }

    /// Thread ids of the cgroup (host pid namespace).
    pub fn threads(&self, k: &Kept) -> Vec<u32> {
        let p = match &self.unified {
            Some(d) => d.join("cgroup.threads"),
            None => match self.v1_dir("pids").or_else(|| self.v1_dir("cpu")) {
                Some(d) => d.join("tasks"),
                None => return Vec::new(),
            },
        };
        k.read(&p)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Per device (major, minor): [read bytes, write bytes, read ios, write ios].
    pub fn io(&self, k: &Kept) -> BTreeMap<(u32, u32), [u64; 4]> {
        let mut m: BTreeMap<(u32, u32), [u64; 4]> = BTreeMap::new();
        let dev = |s: &str| {
            let (a, b) = s.split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        };
        if let Some(d) = &self.unified {
            for l in k.read(&d.join("io.stat")).unwrap_or_default().lines() {
                let mut it = l.split_whitespace();
                let Some(k) = it.next().and_then(dev) else {
                    continue;
                };
                let e = m.entry(k).or_default();
                for kv in it {
                    let Some((name, v)) = kv.split_once('=') else {
                        continue;
                    };
                    let v: u64 = v.parse().unwrap_or(0);
                    match name {
                        "rbytes" => e[0] = v,
                        "wbytes" => e[1] = v,
                        "rios" => e[2] = v,
                        "wios" => e[3] = v,
                        _ => {}
                    }
                }
            }
            return m;
        }
        let Some(d) = self.v1_dir("blkio") else {
            return m;
        };
        for (file, base) in [
            ("blkio.throttle.io_service_bytes", 0),
            ("blkio.throttle.io_serviced", 2),
        ] {
            for l in k.read(&d.join(file)).unwrap_or_default().lines() {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (Some(k), Some(op), Some(v)) = (
                    f.first().and_then(|s| dev(s)),
                    f.get(1),
                    f.get(2).and_then(|v| v.parse::<u64>().ok()),
                ) else {
                    continue;
                };
                let e = m.entry(k).or_default();
                match *op {
                    "Read" => e[base] = v,
                    "Write" => e[base + 1] = v,
                    _ => {}
                }
            }
        }
        m
    }
}

/// "0-3,8,10-11" -> [0,1,2,3,8,10,11].
pub fn parse_cpu_list(s: &str) -> Vec<u32> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    v.extend(a..=b.min(a.saturating_add(65536)));
                }
            }
            None => {
                if let Ok(a) = part.parse() {
                    v.push(a);
                }
            }
        }
    }
    v
}

pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}
