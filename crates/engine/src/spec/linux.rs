//! The `linux` section: namespaces, cgroup resources (also what `update` applies), device
//! rules and devices.
use super::NetMode;
use crate::model::HostConfig;
use crate::{Error, Result};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory,
    LinuxNamespace, LinuxNamespaceType, LinuxPids, LinuxResources,
};
use std::path::PathBuf;

fn namespace(typ: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
    let mut n = LinuxNamespace::default();
    n.set_typ(typ).set_path(path.map(PathBuf::from));
    n
}

/// pid, ipc, uts, mount and network (joined by path: a namespace made ahead, or another
/// container's), less those `*Mode: host` shares with the host.
pub(super) fn namespaces(
    h: &HostConfig,
    net: &NetMode,
    join_net: Option<&str>,
) -> Result<Vec<LinuxNamespace>> {
    use LinuxNamespaceType as T;
    let mut ns = Vec::with_capacity(5);
    if h.pid_mode.str() != "host" {
        ns.push(namespace(T::Pid, None));
    }
    if h.ipc_mode.str() != "host" {
        ns.push(namespace(T::Ipc, None));
    }
    if h.uts_mode.str() != "host" {
        ns.push(namespace(T::Uts, None));
    }
    ns.push(namespace(T::Mount, None));
    match (net, join_net) {
        (NetMode::None | NetMode::Bridge, p) => ns.push(namespace(T::Network, p)),
        (NetMode::Host, _) => {}
        (NetMode::Container(_), Some(p)) => ns.push(namespace(T::Network, Some(p))),
        (NetMode::Container(c), None) => {
            return Err(Error::Conflict(format!(
                "cannot join network of a non running container: {c}"
            )))
        }
    }
    Ok(ns)
}

/// A cgroup resource out of the range its kernel file takes.
fn range<T: TryFrom<i64>>(field: &str, v: i64) -> Result<T> {
    T::try_from(v).map_err(|_| Error::BadParameter(format!("invalid {field}: {v} is out of range")))
}

/// The cgroup resources of a HostConfig, without device rules: the spec's, and what `update`
/// applies to a running container. Memory swap defaults to twice the memory (Docker's).
pub(crate) fn resources(h: &HostConfig) -> Result<LinuxResources> {
    let mut r = LinuxResources::default();
    r.set_devices(None);
    let mut memory = LinuxMemory::default();
    let mem = h.memory.val();
    if mem > 0 {
        memory.set_limit(Some(mem));
        match h.memory_swap.val() {
            0 => memory.set_swap(Some(mem.saturating_mul(2))),
            s if s > 0 || s == -1 => memory.set_swap(Some(s)),
            _ => &mut memory,
        };
    }
    if h.memory_reservation.val() > 0 {
        memory.set_reservation(Some(h.memory_reservation.val()));
    }
    if memory != LinuxMemory::default() {
        r.set_memory(Some(memory));
    }
    let cpu = cpu(h)?;
    if cpu != LinuxCpu::default() {
        r.set_cpu(Some(cpu));
    }
    if let Some(&p) = h.pids_limit.get() {
        if p != 0 {
            r.set_pids(Some(pids_limit(p)));
        }
    }
    if h.blkio_weight.val() > 0 {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(h.blkio_weight.val()));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

/// A pids limit (less than 0: none).
pub(crate) fn pids_limit(p: i64) -> LinuxPids {
    let mut pids = LinuxPids::default();
    pids.set_limit(if p < 0 { -1 } else { p });
    pids
}

fn cpu(h: &HostConfig) -> Result<LinuxCpu> {
    let mut cpu = LinuxCpu::default();
    if h.cpu_shares.val() > 0 {
        cpu.set_shares(Some(range("CpuShares", h.cpu_shares.val())?));
    }
    let nano = h.nano_cpus.val();
    if nano > 0 {
        cpu.set_period(Some(100_000));
        cpu.set_quota(Some(nano.saturating_mul(100_000) / 1_000_000_000));
    }
    if h.cpu_quota.val() != 0 {
        cpu.set_quota(Some(h.cpu_quota.val()));
    }
    if h.cpu_period.val() != 0 {
        cpu.set_period(Some(range("CpuPeriod", h.cpu_period.val())?));
    }
    if !h.cpuset_cpus.str().is_empty() {
        cpu.set_cpus(Some(h.cpuset_cpus.str().to_string()));
    }
    if !h.cpuset_mems.str().is_empty() {
        cpu.set_mems(Some(h.cpuset_mems.str().to_string()));
    }
    Ok(cpu)
}

fn rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow)
        .set_typ(typ)
        .set_major(major)
        .set_minor(minor)
        .set_access(Some(access.to_string()));
    r
}

/// Docker's default device rules: deny all, then the usual character devices (null, zero,
/// full, tty, random, urandom, ptmx, tun, pts), no /dev/console (10:229 denied).
pub(super) fn default_device_rules(privileged: bool) -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::C;
    if privileged {
        return vec![rule(true, None, None, None, "rwm")];
    }
    let mut rules = vec![rule(false, None, None, None, "rwm")];
    for (maj, min) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (5, 0),
        (1, 8),
        (1, 9),
        (5, 2),
        (10, 200),
    ] {
        rules.push(rule(true, Some(C), Some(maj), Some(min), "rwm"));
    }
    rules.push(rule(true, Some(C), Some(136), None, "rwm"));
    rules.push(rule(true, Some(C), Some(5), Some(1), "rwm"));
    rules.push(rule(false, Some(C), Some(10), Some(229), "rwm"));
    rules
}

fn device(path: PathBuf, typ: LinuxDeviceType, md: &std::fs::Metadata) -> LinuxDevice {
    use std::os::unix::fs::MetadataExt;
    let rdev = md.rdev();
    let mut d = LinuxDevice::default();
    d.set_path(path)
        .set_typ(typ)
        .set_major(libc::major(rdev) as i64)
        .set_minor(libc::minor(rdev) as i64)
        .set_file_mode(Some(md.mode() & 0o777))
        .set_uid(Some(md.uid()))
        .set_gid(Some(md.gid()));
    d
}

fn device_type(ft: std::fs::FileType) -> Option<LinuxDeviceType> {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_char_device() {
        Some(LinuxDeviceType::C)
    } else if ft.is_block_device() {
        Some(LinuxDeviceType::B)
    } else {
        None
    }
}

/// `Devices` (`--device`): the devices, and a rule allowing each.
pub(super) fn devices(h: &HostConfig) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    let mut devs = Vec::new();
    let mut rules = Vec::new();
    for d in h.devices.items() {
        let src = d.path_on_host.str();
        let dst = match d.path_in_container.str() {
            "" => src,
            x => x,
        };
        let perms = match d.cgroup_permissions.str() {
            "" => "rwm",
            x => x,
        };
        let md = std::fs::metadata(src).map_err(|e| {
            Error::BadParameter(format!(
                "error gathering device information while adding custom device {src:?}: {e}"
            ))
        })?;
        let typ = device_type(md.file_type())
            .ok_or_else(|| Error::BadParameter(format!("{src} is not a device")))?;
        let dev = device(dst.into(), typ, &md);
        rules.push(rule(
            true,
            Some(typ),
            Some(dev.major()),
            Some(dev.minor()),
            perms,
        ));
        devs.push(dev);
    }
    Ok((devs, rules))
}

/// Every character/block device of the host's /dev (one level of subdirectories too, not
/// pts/shm/mqueue), as OCI linux.devices: what `--privileged` exposes.
pub(super) fn host_devices() -> Vec<LinuxDevice> {
    let mut out = Vec::new();
    let mut dirs = vec![PathBuf::from("/dev")];
    let mut depth = 0;
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = p.symlink_metadata() else {
                continue;
            };
            let ft = md.file_type();
            if ft.is_dir() {
                let n = e.file_name();
                if depth == 0 && !matches!(n.to_str(), Some("pts" | "shm" | "mqueue" | "fd")) {
                    dirs.push(p);
                }
                continue;
            }
            let Some(typ) = device_type(ft) else {
                continue;
            };
            // The runtime makes these itself (console, ptmx belong to the container's pts).
            if matches!(
                p.to_str(),
                Some(
                    "/dev/console"
                        | "/dev/ptmx"
                        | "/dev/tty"
                        | "/dev/null"
                        | "/dev/zero"
                        | "/dev/full"
                        | "/dev/random"
                        | "/dev/urandom"
                )
            ) {
                continue;
            }
            out.push(device(p, typ, &md));
        }
        depth = 1;
    }
    out
}
