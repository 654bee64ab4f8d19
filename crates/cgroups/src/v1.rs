//! cgroup v1 backend: one directory per hierarchy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{LinuxDeviceType, LinuxResources};

use crate::fsutil::{self, flat_keyed, keyed, read_opt, read_u64_or0, write, write_if_exists};
use crate::stats::{self, Stats};
use crate::{Cgroup, Error, Result};

fn need<'a>(cg: &'a Cgroup, controller: &str, field: &str) -> Result<&'a Path> {
    cg.v1_dir(controller)
        .ok_or_else(|| Error::ControllerMissing {
            field: field.to_string(),
            controller: controller.to_string(),
        })
}

/// A new v1 cpuset cgroup starts with empty cpus/mems and refuses tasks: copy the parent's
/// values into every directory we created, top-down.
pub(crate) fn init_cpuset(leaf: &Path, created: &[PathBuf]) -> Result<()> {
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

/// One v1 device rule: allow?, type ('a', 'c' or 'b'), major, minor (None = any), access.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DevRule {
    allow: bool,
    typ: char,
    major: Option<i64>,
    minor: Option<i64>,
    access: String,
}

impl DevRule {
    fn line(&self) -> String {
        if self.typ == 'a' {
            return format!("a *:* {}", self.access);
        }
        let n = |v: Option<i64>| v.map_or_else(|| "*".to_string(), |x| x.to_string());
        format!(
            "{} {}:{} {}",
            self.typ,
            n(self.major),
            n(self.minor),
            self.access
        )
    }

    /// Whether the two rules can apply to a common device and access.
    fn overlaps(&self, o: &DevRule) -> bool {
        let num = |a: Option<i64>, b: Option<i64>| a.is_none() || b.is_none() || a == b;
        (self.typ == 'a'
            || o.typ == 'a'
            || self.typ == o.typ && num(self.major, o.major) && num(self.minor, o.minor))
            && self.access.chars().any(|c| o.access.contains(c))
    }
}

/// The rules in order after `devices.deny a`, without those that change nothing: a rule
/// equal to an earlier one with no rule of the other kind touching it in between (runtimes
/// and engines both add the default devices, so the list comes with every entry twice).
fn effective_rules(rules: Vec<DevRule>) -> Vec<DevRule> {
    let deny_all = DevRule {
        allow: false,
        typ: 'a',
        major: None,
        minor: None,
        access: "rwm".into(),
    };
    let mut out: Vec<DevRule> = Vec::new();
    for r in rules {
        let earlier = std::iter::once(&deny_all).chain(out.iter());
        let mut redundant = false;
        for e in earlier {
            if *e == r {
                redundant = true;
            } else if e.allow != r.allow && e.overlaps(&r) {
                redundant = false;
            }
        }
        if !redundant {
            out.push(r);
        }
    }
    out
}

/// `devices.deny a`, then each effective rule in order, through one open file per name.
fn write_device_rules(dir: &Path, rules: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Result<()> {
    let mut parsed = Vec::new();
    for rule in rules {
        let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => 'a',
            LinuxDeviceType::P => continue, // warned about in validation
            LinuxDeviceType::B => 'b',
            _ => 'c',
        };
        parsed.push(DevRule {
            allow: rule.allow(),
            typ,
            major: rule.major().filter(|v| *v != -1),
            minor: rule.minor().filter(|v| *v != -1),
            access: rule
                .access()
                .as_deref()
                .filter(|a| !a.is_empty())
                .unwrap_or("rwm")
                .to_string(),
        });
    }
    let field = "linux.resources.devices";
    let mut deny = fsutil::Writer::open(dir, "devices.deny", field)?;
    deny.write("a")?;
    let mut allow: Option<fsutil::Writer> = None;
    for r in effective_rules(parsed) {
        let line = r.line();
        if r.allow {
            if allow.is_none() {
                allow = Some(fsutil::Writer::open(dir, "devices.allow", field)?);
            }
            if let Some(w) = allow.as_mut() {
                w.write(&line)?;
            }
        } else {
            deny.write(&line)?;
        }
    }
    Ok(())
}

pub(crate) fn apply(cg: &Cgroup, r: &LinuxResources, warnings: &mut Vec<String>) -> Result<()> {
    // Up-front controller checks so that a missing controller fails before any write.
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(Error::Invalid {
            field: "linux.resources.unified".into(),
            reason: "needs cgroup v2; this host uses cgroup v1".into(),
        });
    }
    if let Some(m) = r.memory() {
        let mut m2 = *m;
        m2.set_kernel(None);
        m2.set_kernel_tcp(None);
        if m2 != Default::default() {
            need(cg, "memory", "linux.resources.memory")?;
        }
    }
    if let Some(c) = r.cpu() {
        if c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.realtime_runtime().is_some()
            || c.realtime_period().is_some()
            || c.idle().is_some()
            || c.burst().is_some()
        {
            need(cg, "cpu", "linux.resources.cpu")?;
        }
        if c.cpus().as_deref().is_some_and(|s| !s.is_empty())
            || c.mems().as_deref().is_some_and(|s| !s.is_empty())
        {
            need(cg, "cpuset", "linux.resources.cpu.cpus/mems")?;
        }
    }
    if r.pids().is_some() {
        need(cg, "pids", "linux.resources.pids")?;
    }
    if r.block_io().is_some() {
        need(cg, "blkio", "linux.resources.blockIO")?;
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        need(cg, "hugetlb", "linux.resources.hugepageLimits")?;
    }
    if r.rdma().as_ref().is_some_and(|h| !h.is_empty()) {
        need(cg, "rdma", "linux.resources.rdma")?;
    }
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        need(cg, "devices", "linux.resources.devices")?;
    }

    if let Some(d) = cg.v1_dir("devices") {
        if let Some(rules) = r.devices().as_ref().filter(|d| !d.is_empty()) {
            write_device_rules(d, rules)?;
        }
    }

    if let Some(m) = r.memory() {
        if let Some(d) = cg.v1_dir("memory") {
            set_memory(d, m)?;
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
        }
    }

    if let Some(c) = r.cpu() {
        if let Some(d) = cg.v1_dir("cpu") {
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
            let period = c.period().filter(|p| *p != 0);
            let quota = c.quota().filter(|q| *q != 0);
            if let Some(p) = period {
                // A shorter period can be refused while the old quota exceeds it; then set the
                // quota first.
                if let Err(e) = write(
                    d,
                    "cpu.cfs_period_us",
                    &p.to_string(),
                    "linux.resources.cpu.period",
                ) {
                    match quota {
                        Some(q) => {
                            write(
                                d,
                                "cpu.cfs_quota_us",
                                &q.to_string(),
                                "linux.resources.cpu.quota",
                            )?;
                            write(
                                d,
                                "cpu.cfs_period_us",
                                &p.to_string(),
                                "linux.resources.cpu.period",
                            )?;
                        }
                        None => return Err(e),
                    }
                }
            }
            if let Some(q) = quota {
                write(
                    d,
                    "cpu.cfs_quota_us",
                    &q.to_string(),
                    "linux.resources.cpu.quota",
                )?;
            }
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
                if !write_if_exists(d, "cpu.idle", &i.to_string(), "linux.resources.cpu.idle")?
                    && i != 0
                {
                    return Err(Error::Invalid {
                        field: "linux.resources.cpu.idle".into(),
                        reason: "this kernel has no cpu.idle".into(),
                    });
                }
            }
        }
        if let Some(d) = cg.v1_dir("cpuset") {
            if let Some(s) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
                write(d, "cpuset.cpus", s, "linux.resources.cpu.cpus")?;
            }
            if let Some(s) = c.mems().as_deref().filter(|s| !s.is_empty()) {
                write(d, "cpuset.mems", s, "linux.resources.cpu.mems")?;
            }
        }
    }

    if let (Some(p), Some(d)) = (r.pids(), cg.v1_dir("pids")) {
        let v = if p.limit() <= 0 {
            "max".to_string()
        } else {
            p.limit().to_string()
        };
        write(d, "pids.max", &v, "linux.resources.pids.limit")?;
    }

    if let (Some(b), Some(d)) = (r.block_io(), cg.v1_dir("blkio")) {
        // CFQ's blkio.weight, or BFQ's blkio.bfq.weight on newer kernels.
        let (wfile, wdfile) = if d.join("blkio.weight").exists() {
            ("blkio.weight", "blkio.weight_device")
        } else {
            ("blkio.bfq.weight", "blkio.bfq.weight_device")
        };
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            if !write_if_exists(d, wfile, &w.to_string(), "linux.resources.blockIO.weight")? {
                return Err(Error::Invalid {
                    field: "linux.resources.blockIO.weight".into(),
                    reason: "this kernel has no proportional block I/O weight (neither CFQ nor BFQ is in use)".into(),
                });
            }
        }
        if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
            if !write_if_exists(
                d,
                "blkio.leaf_weight",
                &w.to_string(),
                "linux.resources.blockIO.leafWeight",
            )? {
                warnings.push("linux.resources.blockIO.leafWeight is ignored: this kernel has no blkio.leaf_weight".into());
            }
        }
        for wd in b.weight_device().iter().flatten() {
            if let Some(w) = wd.weight().filter(|w| *w != 0) {
                let line = format!("{}:{} {}", wd.major(), wd.minor(), w);
                if !write_if_exists(d, wdfile, &line, "linux.resources.blockIO.weightDevice")? {
                    return Err(Error::Invalid {
                        field: "linux.resources.blockIO.weightDevice".into(),
                        reason: "this kernel has no per-device block I/O weight".into(),
                    });
                }
            }
            if let Some(w) = wd.leaf_weight().filter(|w| *w != 0) {
                let line = format!("{}:{} {}", wd.major(), wd.minor(), w);
                if !write_if_exists(
                    d,
                    "blkio.leaf_weight_device",
                    &line,
                    "linux.resources.blockIO.weightDevice.leafWeight",
                )? {
                    warnings.push("linux.resources.blockIO.weightDevice[].leafWeight is ignored: this kernel has no blkio.leaf_weight_device".into());
                }
            }
        }
        for (file, field, list) in [
            (
                "blkio.throttle.read_bps_device",
                "linux.resources.blockIO.throttleReadBpsDevice",
                b.throttle_read_bps_device(),
            ),
            (
                "blkio.throttle.write_bps_device",
                "linux.resources.blockIO.throttleWriteBpsDevice",
                b.throttle_write_bps_device(),
            ),
            (
                "blkio.throttle.read_iops_device",
                "linux.resources.blockIO.throttleReadIOPSDevice",
                b.throttle_read_iops_device(),
            ),
            (
                "blkio.throttle.write_iops_device",
                "linux.resources.blockIO.throttleWriteIOPSDevice",
                b.throttle_write_iops_device(),
            ),
        ] {
            for t in list.iter().flatten() {
                write(
                    d,
                    file,
                    &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                    field,
                )?;
            }
        }
    }

    if let Some(d) = cg.v1_dir("hugetlb") {
        for h in r.hugepage_limits().iter().flatten() {
            let file = format!("hugetlb.{}.limit_in_bytes", h.page_size());
            if !d.join(&file).exists() {
                return Err(Error::Invalid {
                    field: "linux.resources.hugepageLimits.pageSize".into(),
                    reason: format!(
                        "huge page size {} is not supported by this kernel",
                        h.page_size()
                    ),
                });
            }
            write(
                d,
                &file,
                &h.limit().to_string(),
                "linux.resources.hugepageLimits.limit",
            )?;
        }
    }

    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            match cg.v1_dir("net_cls") {
                Some(d) => write(
                    d,
                    "net_cls.classid",
                    &id.to_string(),
                    "linux.resources.network.classID",
                )?,
                None => warnings.push(
                    "linux.resources.network.classID is ignored: net_cls is not mounted".into(),
                ),
            }
        }
        if let Some(prios) = n.priorities().as_ref().filter(|p| !p.is_empty()) {
            match cg.v1_dir("net_prio") {
                Some(d) => {
                    for p in prios {
                        write(
                            d,
                            "net_prio.ifpriomap",
                            &format!("{} {}", p.name(), p.priority()),
                            "linux.resources.network.priorities",
                        )?;
                    }
                }
                None => warnings.push(
                    "linux.resources.network.priorities is ignored: net_prio is not mounted".into(),
                ),
            }
        }
    }

    if let Some(d) = cg.v1_dir("rdma") {
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
    }
    Ok(())
}

/// memory.limit_in_bytes and memory.memsw.limit_in_bytes in an order the kernel accepts
/// (memsw must stay >= limit at every step), whether raising or lowering.
fn set_memory(d: &Path, m: &oci_spec::runtime::LinuxMemory) -> Result<()> {
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
        if swap == -1 || cur < swap as u64 {
            write_swap(swap)?;
            write_limit(limit)?;
        } else {
            write_limit(limit)?;
            write_swap(swap)?;
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

fn freezer_state(d: &Path) -> Result<String> {
    Ok(fsutil::read(&d.join("freezer.state"))?.trim().to_string())
}

pub(crate) fn freeze(d: &Path, on: bool) -> Result<()> {
    let want = if on { "FROZEN" } else { "THAWED" };
    let res = crate::wait_until(
        "freezer.state",
        &d.join("freezer.state"),
        Duration::from_secs(10),
        || {
            // Re-writing the state nudges the kernel when a task raced with the freezer.
            write(d, "freezer.state", want, "freezer.state")?;
            Ok(freezer_state(d)? == want)
        },
    );
    if res.is_err() && on {
        let _ = write(d, "freezer.state", "THAWED", "freezer.state");
    }
    res
}

pub(crate) fn frozen(d: &Path) -> Result<bool> {
    Ok(freezer_state(d)? == "FROZEN")
}

pub(crate) fn stats(cg: &Cgroup) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(d) = cg.v1_dir("cpuacct") {
        s.cpu.usage.total = read_u64_or0(&d.join("cpuacct.usage"))?;
        if let Some(t) = read_opt(&d.join("cpuacct.usage_percpu"))? {
            s.cpu.usage.percpu = t
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
        }
        if let Some(t) = read_opt(&d.join("cpuacct.usage_all"))? {
            // "cpu user system" header, then one line per cpu (ns).
            for l in t.lines().skip(1) {
                let f: Vec<u64> = l
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
                if f.len() == 3 {
                    s.cpu.usage.percpu_user.push(f[1]);
                    s.cpu.usage.percpu_kernel.push(f[2]);
                }
            }
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
    }
    if let Some(d) = cg.v1_dir("cpu") {
        if let Some(t) = read_opt(&d.join("cpu.stat"))? {
            let kv = flat_keyed(&t);
            s.cpu.throttling.periods = keyed(&kv, "nr_periods");
            s.cpu.throttling.throttled_periods = keyed(&kv, "nr_throttled");
            s.cpu.throttling.throttled_time = keyed(&kv, "throttled_time");
        }
    }
    if let Some(d) = cg.v1_dir("cpuset") {
        if let Some(t) = read_opt(&d.join("cpuset.cpus"))? {
            s.cpuset.cpus = stats::parse_id_list(&t);
        }
        if let Some(t) = read_opt(&d.join("cpuset.mems"))? {
            s.cpuset.mems = stats::parse_id_list(&t);
        }
        let c = &mut s.cpuset;
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
    }
    if let Some(d) = cg.v1_dir("memory") {
        let entry = |prefix: &str| -> Result<stats::MemoryEntry> {
            Ok(stats::MemoryEntry {
                usage: read_u64_or0(&d.join(format!("{prefix}usage_in_bytes")))?,
                max: read_u64_or0(&d.join(format!("{prefix}max_usage_in_bytes")))?,
                limit: read_u64_or0(&d.join(format!("{prefix}limit_in_bytes")))?,
                failcnt: read_u64_or0(&d.join(format!("{prefix}failcnt")))?,
            })
        };
        s.memory.usage = entry("memory.")?;
        s.memory.swap = entry("memory.memsw.")?;
        s.memory.kernel = entry("memory.kmem.")?;
        s.memory.kernel_tcp = entry("memory.kmem.tcp.")?;
        if let Some(t) = read_opt(&d.join("memory.stat"))? {
            s.memory.raw = flat_keyed(&t).into_iter().collect();
            s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
        }
    }
    if let Some(d) = cg.v1_dir("pids") {
        s.pids.current = read_u64_or0(&d.join("pids.current"))?;
        let lim = read_u64_or0(&d.join("pids.max"))?;
        s.pids.limit = if lim == u64::MAX { 0 } else { lim };
    }
    if let Some(d) = cg.v1_dir("blkio") {
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
        s.blkio.io_service_bytes_recursive = pick(&[
            "blkio.io_service_bytes_recursive",
            "blkio.bfq.io_service_bytes_recursive",
            "blkio.throttle.io_service_bytes_recursive",
        ])?;
        s.blkio.io_serviced_recursive = pick(&[
            "blkio.io_serviced_recursive",
            "blkio.bfq.io_serviced_recursive",
            "blkio.throttle.io_serviced_recursive",
        ])?;
    }
    if let Some(d) = cg.v1_dir("hugetlb") {
        for size in hugepage_sizes(d, ".limit_in_bytes")? {
            s.hugetlb.insert(
                size.clone(),
                stats::Hugetlb {
                    usage: read_u64_or0(&d.join(format!("hugetlb.{size}.usage_in_bytes")))?,
                    max: read_u64_or0(&d.join(format!("hugetlb.{size}.max_usage_in_bytes")))?,
                    failcnt: read_u64_or0(&d.join(format!("hugetlb.{size}.failcnt")))?,
                },
            );
        }
    }
    Ok(s)
}

/// Huge page sizes for which `dir` has "hugetlb.<size><suffix>".
pub(crate) fn hugepage_sizes(dir: &Path, suffix: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|source| Error::Io {
        op: "readdir",
        path: dir.to_path_buf(),
        source,
    })?;
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if let Some(rest) = n.strip_prefix("hugetlb.") {
            if let Some(size) = rest.strip_suffix(suffix) {
                if !size.contains('.') {
                    out.push(size.to_string());
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        typ: char,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DevRule {
        DevRule {
            allow,
            typ,
            major,
            minor,
            access: access.into(),
        }
    }

    fn lines(v: &[DevRule]) -> Vec<String> {
        v.iter()
            .map(|r| format!("{} {}", if r.allow { "allow" } else { "deny" }, r.line()))
            .collect()
    }

    #[test]
    fn repeated_default_devices_are_written_once() {
        // What berthd's spec gives the runtime: deny all, the default devices, Docker's list
        // (which repeats them), a deny in between that touches none of them.
        let null = rule(true, 'c', Some(1), Some(3), "rwm");
        let zero = rule(true, 'c', Some(1), Some(5), "rwm");
        let fuse = rule(false, 'c', Some(10), Some(229), "rwm");
        let any_mknod = rule(true, 'c', None, None, "m");
        let input = vec![
            rule(false, 'a', None, None, "rwm"),
            null.clone(),
            zero.clone(),
            fuse.clone(),
            any_mknod.clone(),
            null.clone(),
            zero.clone(),
        ];
        assert_eq!(
            lines(&effective_rules(input)),
            [
                "allow c 1:3 rwm",
                "allow c 1:5 rwm",
                "deny c 10:229 rwm",
                "allow c *:* m"
            ]
        );
    }

    #[test]
    fn a_repeat_after_an_overlapping_opposite_rule_is_kept() {
        let null = rule(true, 'c', Some(1), Some(3), "rwm");
        let input = vec![
            null.clone(),
            rule(false, 'c', Some(1), None, "w"),
            null.clone(),
            rule(false, 'a', None, None, "rwm"),
            null.clone(),
            rule(false, 'b', Some(1), Some(3), "rwm"),
            null.clone(),
        ];
        // The 'b' deny touches no char device: the last repeat changes nothing.
        assert_eq!(
            lines(&effective_rules(input)),
            [
                "allow c 1:3 rwm",
                "deny c 1:* w",
                "allow c 1:3 rwm",
                "deny a *:* rwm",
                "allow c 1:3 rwm",
                "deny b 1:3 rwm"
            ]
        );
    }
}
