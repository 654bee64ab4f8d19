//! The values a typed HostConfig/Config field may take: enums (namespace modes, isolation,
//! runtime, log driver and options, mount consistency) and ranges (OomScoreAdj, CPU and
//! memory limits, swappiness, ShmSize), with dockerd's messages where it has one.
use crate::model::{Config, HostConfig, KNOWN_LOG_DRIVERS, UNHONOURED_LOG_OPTS};
use crate::{Error, Result};

fn bad(msg: impl Into<String>) -> Error {
    Error::BadParameter(msg.into())
}

/// `IpcMode`, `PidMode`, `UTSMode`, `UsernsMode`, `CgroupnsMode`, `Isolation`, `Runtime`.
pub(super) fn modes(h: &HostConfig) -> Result<()> {
    let container = |m: &str| m.strip_prefix("container:").is_some_and(|c| !c.is_empty());
    let ipc = h.ipc_mode.str();
    if !(matches!(ipc, "" | "private" | "shareable" | "host" | "none") || container(ipc)) {
        return Err(bad(format!("invalid IPC mode: {ipc}")));
    }
    let pid = h.pid_mode.str();
    if !(matches!(pid, "" | "host") || container(pid)) {
        return Err(bad(format!("invalid PID mode: {pid}")));
    }
    let uts = h.uts_mode.str();
    if !matches!(uts, "" | "host") {
        return Err(bad(format!("invalid UTS mode: {uts}")));
    }
    let userns = h.userns_mode.str();
    if !matches!(userns, "" | "host" | "private") {
        return Err(bad(format!("invalid USER mode: {userns}")));
    }
    let cgns = h.cgroupns_mode.str();
    if !matches!(cgns, "" | "private" | "host") {
        return Err(bad(format!("invalid cgroup namespace mode: {cgns}")));
    }
    let iso = h.isolation.str();
    if !matches!(iso, "" | "default") {
        return Err(bad(format!(
            "invalid isolation: {iso:?} - linux only supports 'default'"
        )));
    }
    // (berth runs its own runtime; "runc" is what clients copying dockerd's inspect send.)
    let rt = h.runtime.str();
    if !matches!(rt, "" | "berth" | "runc") {
        return Err(bad(format!("unknown or invalid runtime name: {rt}")));
    }
    let cgroup = h.cgroup.str();
    if !(cgroup.is_empty() || container(cgroup)) {
        return Err(bad(format!("invalid cgroup spec: {cgroup}")));
    }
    Ok(())
}

/// `LogConfig`: json-file (max-size, max-file) or none; dockerd's other drivers and options
/// are refused by `model::unsupported` first.
pub(super) fn log_config(h: &HostConfig) -> Result<()> {
    let t = h.log_type();
    if !matches!(t, "" | "json-file" | "none") && !KNOWN_LOG_DRIVERS.contains(&t) {
        return Err(bad(format!(
            "logging driver \"{t}\" is not supported (use json-file)"
        )));
    }
    let Some(lc) = h.log_config.get() else {
        return Ok(());
    };
    let driver = if t.is_empty() { "json-file" } else { t };
    for (k, v) in lc.config.map() {
        let ok = match k.as_str() {
            "max-size" if driver == "json-file" => {
                if crate::prepare::parse_size(v).is_none() {
                    return Err(bad(format!("invalid max-size: {v:?}")));
                }
                true
            }
            "max-file" if driver == "json-file" => {
                if !v.parse::<u32>().is_ok_and(|n| n > 0) {
                    return Err(bad(format!(
                        "invalid value for max-file: {v:?}: should be a positive integer"
                    )));
                }
                true
            }
            k => driver == "json-file" && UNHONOURED_LOG_OPTS.contains(&k),
        };
        if !ok {
            return Err(bad(format!(
                "unknown log opt '{k}' for {driver} log driver"
            )));
        }
    }
    Ok(())
}

fn cpuset(v: &str, what: &str) -> Result<()> {
    let num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ok = v.is_empty()
        || v.split(',').all(|part| match part.split_once('-') {
            Some((a, b)) => num(a) && num(b) && a.parse::<u32>().ok() <= b.parse::<u32>().ok(),
            None => num(part),
        });
    if !ok {
        return Err(bad(format!("Invalid value {v} for cpuset {what}")));
    }
    Ok(())
}

fn cpus() -> i64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as i64)
}

/// The CPU fields' ranges.
pub(super) fn cpu(h: &HostConfig) -> Result<()> {
    let shares = h.cpu_shares.val();
    if shares < 0 {
        return Err(bad(format!(
            "invalid CPU shares ({shares}): value must be a positive integer"
        )));
    }
    if shares > 262_144 {
        return Err(bad(format!(
            "invalid CPU shares ({shares}): the maximum is 262144"
        )));
    }
    let nano = h.nano_cpus.val();
    let n = cpus();
    if nano < 0 || nano > n * 1_000_000_000 {
        return Err(bad(format!(
            "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
        )));
    }
    let quota = h.cpu_quota.val();
    if (quota > 0 && quota < 1000) || quota < -1 {
        return Err(bad("CPU cfs quota can not be less than 1ms (i.e. 1000)"));
    }
    let period = h.cpu_period.val();
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return Err(bad(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    let pct = h.cpu_percent.val();
    if !(0..=100).contains(&pct) {
        return Err(bad(format!(
            "invalid CpuPercent ({pct}): the range is from 0 to 100"
        )));
    }
    cpuset(h.cpuset_cpus.str(), "cpus")?;
    cpuset(h.cpuset_mems.str(), "mems")
}

/// The memory fields' ranges (the minimum memory limit is checked in `validate`).
pub(super) fn memory(h: &HostConfig) -> Result<()> {
    const MIN: i64 = 6 * 1024 * 1024;
    let (mem, swap, res) = (
        h.memory.val(),
        h.memory_swap.val(),
        h.memory_reservation.val(),
    );
    if swap < -1 {
        return Err(bad(format!(
            "invalid MemorySwap ({swap}): -1 (unlimited), 0 (twice the memory) or a limit"
        )));
    }
    if mem == 0 && swap > 0 {
        return Err(bad(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if res != 0 && res < MIN {
        return Err(bad("Minimum memory reservation allowed is 6MB"));
    }
    if mem > 0 && res > 0 && mem < res {
        return Err(bad(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    if let Some(&s) = h.memory_swappiness.get() {
        if s != -1 && !(0..=100).contains(&s) {
            return Err(bad(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            )));
        }
    }
    let oom = h.oom_score_adj.val();
    if !(-1000..=1000).contains(&oom) {
        return Err(bad(format!(
            "Invalid value {oom}, range for oom score adj is [-1000, 1000]"
        )));
    }
    if h.shm_size.val() < 0 {
        return Err(bad("SHM size can not be less than 0"));
    }
    Ok(())
}

/// `Dns`, `ExtraHosts`, `ConsoleSize`, devices' permissions, mounts' consistency.
pub(super) fn misc(h: &HostConfig) -> Result<()> {
    for d in h.dns.list() {
        if d.parse::<std::net::IpAddr>().is_err() {
            return Err(bad(format!("{d} is not an ip address")));
        }
    }
    for e in h.extra_hosts.list() {
        let Some((name, ip)) = e.split_once([':', '=']) else {
            return Err(bad(format!("bad format for add-host: {e:?}")));
        };
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        if name.is_empty() || (ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err()) {
            return Err(bad(format!("invalid IP address in add-host: {ip:?}")));
        }
    }
    let cs = h.console_size.items();
    if !(cs.is_empty() || cs.len() == 2 && cs.iter().all(|n| *n <= u16::MAX as u64)) {
        return Err(bad(
            "invalid HostConfig.ConsoleSize: expected [height, width], each at most 65535",
        ));
    }
    for d in h.devices.items() {
        let p = d.cgroup_permissions.str();
        if !p.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(bad(format!("invalid device mode: {p}")));
        }
    }
    for m in h.mounts.items() {
        let c = m.consistency.str();
        if !matches!(c, "" | "default" | "consistent" | "cached" | "delegated") {
            return Err(bad(format!("invalid mount consistency: {c:?}")));
        }
    }
    Ok(())
}

/// The Config's values: `WorkingDir` absolute, `ExposedPorts` as `port[-port][/proto]`.
pub(crate) fn config(c: &Config) -> Result<()> {
    let w = c.working_dir.str();
    if !w.is_empty() && !w.starts_with('/') {
        return Err(bad(format!(
            "the working directory '{w}' is invalid, it needs to be an absolute path"
        )));
    }
    for p in c.exposed_ports.keys() {
        let (ports, proto) = p.split_once('/').unwrap_or((p, "tcp"));
        let port = |s: &str| s.parse::<u16>().is_ok();
        let ok = matches!(proto, "tcp" | "udp" | "sctp")
            && match ports.split_once('-') {
                Some((a, b)) => port(a) && port(b),
                None => port(ports),
            };
        if !ok {
            return Err(bad(format!("invalid port specification: {p:?}")));
        }
    }
    Ok(())
}
