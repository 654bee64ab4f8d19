//! cgroup v2 backend: one directory in the unified hierarchy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use crate::fsutil::{self, flat_keyed, keyed, read_opt, read_u64_or0, write, write_if_exists};
use crate::stats::{self, Stats};
use crate::{bpf, Cgroup, Error, Result};

/// Create `dir` below the hierarchy `root` one level at a time, enabling every available
/// controller in `cgroup.subtree_control` of each ancestor (root down to dir's parent) so `dir`
/// gets the controllers' files. Pushes the directories it creates onto `created`.
pub(crate) fn create_with_controllers(
    root: &Path,
    dir: &Path,
    created: &mut Vec<PathBuf>,
) -> Result<()> {
    let rel = dir.strip_prefix(root).map_err(|_| Error::Invalid {
        field: "linux.cgroupsPath".into(),
        reason: format!("{} is not inside {}", dir.display(), root.display()),
    })?;
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        let avail = fsutil::read(&cur.join("cgroup.controllers"))?;
        let enabled = fsutil::read(&cur.join("cgroup.subtree_control"))?;
        let missing: Vec<&str> = avail
            .split_whitespace()
            .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
            .collect();
        if !missing.is_empty() {
            let all: String = missing.iter().map(|c| format!("+{c} ")).collect();
            if write(
                &cur,
                "cgroup.subtree_control",
                all.trim_end(),
                "cgroup.subtree_control",
            )
            .is_err()
            {
                // One at a time: some can fail (e.g. when the parent has processes of its
                // own); a resource write for a controller that stayed off fails later with
                // an error naming the field.
                for c in missing {
                    let _ = write(
                        &cur,
                        "cgroup.subtree_control",
                        &format!("+{c}"),
                        "cgroup.subtree_control",
                    );
                }
            }
        }
        cur.push(c);
        match std::fs::create_dir(&cur) {
            Ok(()) => created.push(cur.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(Error::Io {
                    op: "mkdir",
                    path: cur,
                    source,
                })
            }
        }
    }
    Ok(())
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

fn not_on_v2(field: &str) -> Error {
    Error::Invalid {
        field: field.to_string(),
        reason: "is a cgroup v1 feature with no cgroup v2 equivalent".into(),
    }
}

pub(crate) fn apply(cg: &Cgroup, r: &LinuxResources, warnings: &mut Vec<String>) -> Result<()> {
    let d = cg.unified_dir().ok_or(Error::NoCgroups)?;

    if let Some(c) = r.cpu() {
        if c.realtime_runtime().is_some_and(|v| v != 0) {
            return Err(not_on_v2("linux.resources.cpu.realtimeRuntime"));
        }
        if c.realtime_period().is_some_and(|v| v != 0) {
            return Err(not_on_v2("linux.resources.cpu.realtimePeriod"));
        }
    }

    if let Some(m) = r.memory() {
        let limit = m.limit().unwrap_or(0);
        let swap = m.swap().unwrap_or(0);
        // v2 memory.swap.max is swap alone; the spec's swap is memory+swap (runc's conversion).
        let swap_v2: Option<i64> = match (swap, limit) {
            // Unlimited memory with swap unset means both unlimited (as on v1).
            (0, -1) => Some(-1),
            (0, _) => None,
            (-1, _) => Some(-1),
            (_, l) if l <= 0 => {
                return Err(Error::Invalid {
                    field: "linux.resources.memory.swap".into(),
                    reason: "a swap limit needs a memory limit on cgroup v2".into(),
                })
            }
            (s, l) => Some(s - l),
        };
        if let Some(s) = swap_v2 {
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
    }

    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            write(
                d,
                "cpu.weight",
                &crate::shares_to_weight(s).to_string(),
                "linux.resources.cpu.shares",
            )?;
        }
        let quota = c.quota().filter(|q| *q != 0);
        let period = c.period().filter(|p| *p != 0);
        if quota.is_some() || period.is_some() {
            let q = match quota {
                Some(q) if q > 0 => q.to_string(),
                Some(_) => "max".to_string(),
                None => {
                    // Keep the current quota, change the period only.
                    let cur = fsutil::read(&d.join("cpu.max"))?;
                    cur.split_whitespace().next().unwrap_or("max").to_string()
                }
            };
            let p = match period {
                Some(p) => p,
                None => {
                    let cur = read_opt(&d.join("cpu.max"))?.unwrap_or_default();
                    cur.split_whitespace()
                        .nth(1)
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(100_000)
                }
            };
            write(
                d,
                "cpu.max",
                &format!("{q} {p}"),
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
    }

    if let Some(p) = r.pids() {
        let v = if p.limit() <= 0 {
            "max".to_string()
        } else {
            p.limit().to_string()
        };
        write(d, "pids.max", &v, "linux.resources.pids.limit")?;
    }

    if let Some(b) = r.block_io() {
        let bfq = d.join("io.bfq.weight").exists();
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            if bfq {
                write(
                    d,
                    "io.bfq.weight",
                    &w.to_string(),
                    "linux.resources.blockIO.weight",
                )?;
            } else {
                let v = crate::blkio_weight_to_io_weight(u64::from(w));
                write(
                    d,
                    "io.weight",
                    &format!("default {v}"),
                    "linux.resources.blockIO.weight",
                )?;
            }
        }
        if b.leaf_weight().is_some_and(|w| w != 0) {
            warnings.push("linux.resources.blockIO.leafWeight is ignored on cgroup v2".into());
        }
        for wd in b.weight_device().iter().flatten() {
            if let Some(w) = wd.weight().filter(|w| *w != 0) {
                let f = "linux.resources.blockIO.weightDevice";
                if bfq {
                    write(
                        d,
                        "io.bfq.weight",
                        &format!("{}:{} {}", wd.major(), wd.minor(), w),
                        f,
                    )?;
                } else {
                    let v = crate::blkio_weight_to_io_weight(u64::from(w));
                    write(
                        d,
                        "io.weight",
                        &format!("{}:{} {}", wd.major(), wd.minor(), v),
                        f,
                    )?;
                }
            }
            if wd.leaf_weight().is_some_and(|w| w != 0) {
                warnings.push(
                    "linux.resources.blockIO.weightDevice[].leafWeight is ignored on cgroup v2"
                        .into(),
                );
            }
        }
        for (key, field, list) in [
            (
                "rbps",
                "linux.resources.blockIO.throttleReadBpsDevice",
                b.throttle_read_bps_device(),
            ),
            (
                "wbps",
                "linux.resources.blockIO.throttleWriteBpsDevice",
                b.throttle_write_bps_device(),
            ),
            (
                "riops",
                "linux.resources.blockIO.throttleReadIOPSDevice",
                b.throttle_read_iops_device(),
            ),
            (
                "wiops",
                "linux.resources.blockIO.throttleWriteIOPSDevice",
                b.throttle_write_iops_device(),
            ),
        ] {
            for t in list.iter().flatten() {
                // v1 uses 0 to remove a limit; v2 uses "max".
                let v = if t.rate() == 0 {
                    "max".to_string()
                } else {
                    t.rate().to_string()
                };
                write(
                    d,
                    "io.max",
                    &format!("{}:{} {key}={v}", t.major(), t.minor()),
                    field,
                )?;
            }
        }
    }

    for h in r.hugepage_limits().iter().flatten() {
        let file = format!("hugetlb.{}.max", h.page_size());
        if !d.join(&file).exists() {
            return Err(Error::Invalid {
                field: "linux.resources.hugepageLimits.pageSize".into(),
                reason: format!(
                    "huge page size {} is not supported here (no {}; is the hugetlb controller enabled?)",
                    h.page_size(),
                    file
                ),
            });
        }
        write(
            d,
            &file,
            &max_or(h.limit()),
            "linux.resources.hugepageLimits.limit",
        )?;
    }

    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            warnings
                .push("linux.resources.network (net_cls/net_prio) is ignored on cgroup v2".into());
        }
    }

    for (dev, lim) in r.rdma().iter().flatten() {
        let h = lim
            .hca_handles()
            .map_or("max".to_string(), |v| v.to_string());
        let o = lim
            .hca_objects()
            .map_or("max".to_string(), |v| v.to_string());
        write(
            d,
            "rdma.max",
            &format!("{dev} hca_handle={h} hca_object={o}"),
            "linux.resources.rdma",
        )?;
    }

    if let Some(u) = r.unified() {
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort();
        for (k, v) in keys {
            let field = format!("linux.resources.unified[{k:?}]");
            if !d.join(k).exists() {
                return Err(Error::Invalid {
                    field,
                    reason: format!(
                        "{} does not exist (unknown key or controller not enabled)",
                        d.join(k).display()
                    ),
                });
            }
            write(d, k, v, &field)?;
        }
    }

    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        let mut w = Vec::new();
        let rules = crate::device_rules(r, &mut w)?;
        let prog = bpf::build_program(&rules)?;
        let prog_fd = bpf::load(&prog)?;
        let dir_fd = cg.v2_dir_fd()?.ok_or(Error::NoCgroups)?;
        bpf::attach_replacing(&dir_fd, &prog_fd)?;
    }
    Ok(())
}

pub(crate) fn freeze(d: &Path, on: bool) -> Result<()> {
    let want = if on { "1" } else { "0" };
    write(d, "cgroup.freeze", want, "cgroup.freeze")?;
    let events = d.join("cgroup.events");
    let res = crate::wait_until(
        "cgroup.events frozen",
        &events,
        Duration::from_secs(10),
        || Ok(frozen(d)? == on),
    );
    if res.is_err() && on {
        let _ = write(d, "cgroup.freeze", "0", "cgroup.freeze");
    }
    res
}

pub(crate) fn frozen(d: &Path) -> Result<bool> {
    let s = fsutil::read(&d.join("cgroup.events"))?;
    Ok(keyed(&flat_keyed(&s), "frozen") == 1)
}

pub(crate) fn stats(d: &Path) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(t) = read_opt(&d.join("cpu.stat"))? {
        let kv = flat_keyed(&t);
        s.cpu.usage.total = keyed(&kv, "usage_usec") * 1000;
        s.cpu.usage.user = keyed(&kv, "user_usec") * 1000;
        s.cpu.usage.kernel = keyed(&kv, "system_usec") * 1000;
        s.cpu.throttling.periods = keyed(&kv, "nr_periods");
        s.cpu.throttling.throttled_periods = keyed(&kv, "nr_throttled");
        s.cpu.throttling.throttled_time = keyed(&kv, "throttled_usec") * 1000;
    }
    if let Some(t) = read_opt(&d.join("cpuset.cpus.effective"))? {
        s.cpuset.cpus = stats::parse_id_list(&t);
    }
    if let Some(t) = read_opt(&d.join("cpuset.mems.effective"))? {
        s.cpuset.mems = stats::parse_id_list(&t);
    }
    if d.join("memory.current").exists() {
        let usage = read_u64_or0(&d.join("memory.current"))?;
        let limit = read_u64_or0(&d.join("memory.max"))?;
        let events = read_opt(&d.join("memory.events"))?.unwrap_or_default();
        s.memory.usage = stats::MemoryEntry {
            usage,
            limit,
            max: read_u64_or0(&d.join("memory.peak"))?,
            failcnt: keyed(&flat_keyed(&events), "max"),
        };
        if d.join("memory.swap.current").exists() {
            // As runc: report memory+swap like v1's memsw.
            let sw = read_u64_or0(&d.join("memory.swap.current"))?;
            let swmax = read_u64_or0(&d.join("memory.swap.max"))?;
            s.memory.swap = stats::MemoryEntry {
                usage: sw.saturating_add(usage),
                limit: if swmax == u64::MAX || limit == u64::MAX {
                    u64::MAX
                } else {
                    swmax + limit
                },
                max: 0,
                failcnt: 0,
            };
        }
        if let Some(t) = read_opt(&d.join("memory.stat"))? {
            s.memory.raw = flat_keyed(&t).into_iter().collect();
            s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
        }
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
    for size in crate::v1::hugepage_sizes(d, ".max")? {
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
    Ok(s)
}
