//! Capabilities, security options (no-new-privileges, seccomp), masked and read-only paths,
//! rlimits.
use super::{DEFAULT_CAPS, DEFAULT_SECCOMP};
use crate::model::HostConfig;
use crate::{Error, Result};
use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, LinuxSeccomp, PosixRlimit, PosixRlimitBuilder,
    PosixRlimitType,
};

pub(crate) const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub(super) const MASKED: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];
pub(super) const READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn norm_cap(c: &str) -> String {
    let u = c.trim().to_ascii_uppercase();
    if u == "ALL" || u.starts_with("CAP_") {
        u
    } else {
        format!("CAP_{u}")
    }
}

/// Capabilities in berthd's own bounding set (a container can never get more). Read once:
/// the set only shrinks by the process' own doing, which berthd never does.
pub(crate) fn available_caps() -> Vec<&'static str> {
    static BND: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let bnd = *BND.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("CapBnd:"))
                    .and_then(|l| u64::from_str_radix(l[7..].trim(), 16).ok())
            })
            .unwrap_or(u64::MAX)
    });
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| bnd & (1u64 << i) != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// The effective capability list for the container.
pub(crate) fn capabilities(host: &HostConfig) -> Result<Vec<String>> {
    let avail = available_caps();
    if host.privileged.val() {
        return Ok(avail.iter().map(|s| s.to_string()).collect());
    }
    let add: Vec<String> = host.cap_add.list().iter().map(|c| norm_cap(c)).collect();
    let drop: Vec<String> = host.cap_drop.list().iter().map(|c| norm_cap(c)).collect();
    for c in add.iter().chain(drop.iter()) {
        if c != "ALL" && !ALL_CAPS.contains(&c.as_str()) {
            return Err(Error::BadParameter(format!("unknown capability: {c:?}")));
        }
    }
    let mut caps: Vec<String> = if drop.iter().any(|c| c == "ALL") {
        vec![]
    } else {
        DEFAULT_CAPS
            .iter()
            .filter(|c| !drop.iter().any(|d| d == *c))
            .map(|s| s.to_string())
            .collect()
    };
    if add.iter().any(|c| c == "ALL") {
        caps = avail
            .iter()
            .filter(|c| !drop.iter().any(|d| d == *c))
            .map(|s| s.to_string())
            .collect();
    } else {
        for c in add {
            if !avail.contains(&c.as_str()) {
                return Err(Error::BadParameter(format!(
                    "capability {c} cannot be added: berthd itself does not hold it"
                )));
            }
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
    }
    Ok(caps)
}

/// The OCI capability sets (bounding = effective = permitted) of a capability list.
pub(super) fn oci_capabilities(caps: &[String]) -> Result<LinuxCapabilities> {
    use serde::de::{value::Error as DeError, Deserialize, IntoDeserializer};
    let set = caps
        .iter()
        .map(|c| {
            Capability::deserialize(IntoDeserializer::<DeError>::into_deserializer(c.as_str()))
                .map_err(|e| Error::BadParameter(format!("capability {c}: {e}")))
        })
        .collect::<Result<Capabilities>>()?;
    let mut lc = LinuxCapabilities::default();
    lc.set_bounding(Some(set.clone()))
        .set_effective(Some(set.clone()))
        .set_permitted(Some(set))
        .set_inheritable(None)
        .set_ambient(None);
    Ok(lc)
}

/// The seccomp profile `--security-opt` asks for.
pub(super) enum SeccompMode {
    Default,
    Unconfined,
    Profile(Vec<u8>),
}

/// What `SecurityOpt` says (validated at create: see `validate`).
pub(super) struct SecurityOpts {
    pub no_new_privileges: bool,
    pub seccomp: SeccompMode,
}

pub(super) fn security_opts(host: &HostConfig) -> SecurityOpts {
    let mut o = SecurityOpts {
        no_new_privileges: false,
        seccomp: SeccompMode::Default,
    };
    for so in host.security_opt.list() {
        let (k, v) = so.split_once(['=', ':']).unwrap_or((so.as_str(), ""));
        match k {
            "no-new-privileges" => o.no_new_privileges = v.is_empty() || v == "true",
            "seccomp" if v == "unconfined" => o.seccomp = SeccompMode::Unconfined,
            "seccomp" => o.seccomp = SeccompMode::Profile(v.as_bytes().to_vec()),
            _ => {}
        }
    }
    o
}

fn rlimit_type(name: &str) -> Option<(PosixRlimitType, i32)> {
    use PosixRlimitType as T;
    Some(match name {
        "core" => (T::RlimitCore, libc::RLIMIT_CORE as i32),
        "cpu" => (T::RlimitCpu, libc::RLIMIT_CPU as i32),
        "data" => (T::RlimitData, libc::RLIMIT_DATA as i32),
        "fsize" => (T::RlimitFsize, libc::RLIMIT_FSIZE as i32),
        "locks" => (T::RlimitLocks, libc::RLIMIT_LOCKS as i32),
        "memlock" => (T::RlimitMemlock, libc::RLIMIT_MEMLOCK as i32),
        "msgqueue" => (T::RlimitMsgqueue, libc::RLIMIT_MSGQUEUE as i32),
        "nice" => (T::RlimitNice, libc::RLIMIT_NICE as i32),
        "nofile" => (T::RlimitNofile, libc::RLIMIT_NOFILE as i32),
        "nproc" => (T::RlimitNproc, libc::RLIMIT_NPROC as i32),
        "rss" => (T::RlimitRss, libc::RLIMIT_RSS as i32),
        "rtprio" => (T::RlimitRtprio, libc::RLIMIT_RTPRIO as i32),
        "rttime" => (T::RlimitRttime, libc::RLIMIT_RTTIME as i32),
        "sigpending" => (T::RlimitSigpending, libc::RLIMIT_SIGPENDING as i32),
        "stack" => (T::RlimitStack, libc::RLIMIT_STACK as i32),
        "as" => (T::RlimitAs, libc::RLIMIT_AS as i32),
        _ => return None,
    })
}

pub(super) fn host_hard_limit(res: i32) -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid rlimit struct.
    if unsafe { libc::getrlimit(res as _, &mut r) } != 0 {
        return u64::MAX;
    }
    r.rlim_max
}

fn rlimit(typ: PosixRlimitType, hard: u64, soft: u64) -> Result<PosixRlimit> {
    PosixRlimitBuilder::default()
        .typ(typ)
        .hard(hard)
        .soft(soft)
        .build()
        .map_err(|e| crate::util::internal("rlimit", e))
}

/// `Ulimits` as OCI rlimits (checked against the host's hard limits).
pub(crate) fn rlimits(host: &HostConfig) -> Result<Vec<PosixRlimit>> {
    let mut out = Vec::new();
    for u in host.ulimits.items() {
        let name = u.name.str();
        let (oci, res) = rlimit_type(name)
            .ok_or_else(|| Error::BadParameter(format!("invalid ulimit type: {name:?}")))?;
        let soft = u.soft.val();
        let hard = u.hard.get().copied().unwrap_or(soft);
        let as_u = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
        if as_u(soft) > as_u(hard) {
            return Err(Error::BadParameter(format!(
                "ulimit {name}: soft limit {soft} is greater than the hard limit {hard}"
            )));
        }
        let max = host_hard_limit(res);
        if as_u(hard) > max {
            return Err(Error::BadParameter(format!(
                "ulimit {name}: hard limit {hard} is above the host's hard limit {max} and berthd lacks CAP_SYS_RESOURCE to raise it"
            )));
        }
        out.push(rlimit(oci, as_u(hard), as_u(soft))?);
    }
    Ok(out)
}

/// The process' rlimits: `Ulimits`, and RLIMIT_NOFILE at Docker/containerd's default
/// 1048576 (bounded by what berthd can grant) unless they set it.
pub(super) fn process_rlimits(host: &HostConfig) -> Result<Vec<PosixRlimit>> {
    let mut rl = rlimits(host)?;
    if !rl.iter().any(|r| r.typ() == PosixRlimitType::RlimitNofile) {
        let max = host_hard_limit(libc::RLIMIT_NOFILE as i32).min(1_048_576);
        rl.push(rlimit(PosixRlimitType::RlimitNofile, max, max)?);
    }
    Ok(rl)
}

/// Docker's profile JSON -> the OCI seccomp section for a capability set. The default profile
/// is converted once per capability set (it is the same for every container of a daemon).
pub(super) fn seccomp_oci(profile: &[u8], caps: &[String]) -> Result<LinuxSeccomp> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static DEFAULT: OnceLock<Mutex<HashMap<Vec<String>, LinuxSeccomp>>> = OnceLock::new();
    let is_default = profile == DEFAULT_SECCOMP;
    if is_default {
        if let Some(v) = DEFAULT
            .get_or_init(Default::default)
            .lock()
            .ok()
            .and_then(|m| m.get(caps).cloned())
        {
            return Ok(v);
        }
    }
    let sc = berth_seccomp::docker_to_oci(profile, caps, "amd64")
        .map_err(|e| Error::BadParameter(format!("seccomp profile: {e}")))?;
    if is_default {
        if let Ok(mut m) = DEFAULT.get_or_init(Default::default).lock() {
            if m.len() >= 32 {
                m.clear();
            }
            m.insert(caps.to_vec(), sc.clone());
        }
    }
    Ok(sc)
}
