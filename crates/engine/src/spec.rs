//! Docker Config + HostConfig -> OCI runtime spec (config.json), with Docker's defaults.
use crate::util::{internal, read_in_root};
use crate::{Error, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub(crate) const DEFAULT_SECCOMP: &[u8] = include_bytes!("../assets/docker-default-seccomp.json");
pub(crate) const DEFAULT_PATH: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(crate) const DEFAULT_CAPS: [&str; 14] = berth_seccomp::DOCKER_DEFAULT_CAPS;

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

/// The mounts every container gets on its image's tree (the others of the default list land
/// in /dev or /sys): what the image lacks of these comes from a shared mountpoint layer.
pub(crate) const MOUNT_TARGETS: [berth_image::snapshot::MountTarget; 6] = {
    use berth_image::snapshot::MountTarget as T;
    [
        T {
            path: "proc",
            dir: true,
        },
        T {
            path: "dev",
            dir: true,
        },
        T {
            path: "sys",
            dir: true,
        },
        T {
            path: "etc/hostname",
            dir: false,
        },
        T {
            path: "etc/hosts",
            dir: false,
        },
        T {
            path: "etc/resolv.conf",
            dir: false,
        },
    ]
};

const MASKED: [&str; 12] = [
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
const READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(|x| x.as_str()).unwrap_or("")
}
fn i(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(|x| x.as_i64()).unwrap_or(0)
}
fn b(v: &Value, k: &str) -> bool {
    v.get(k).and_then(|x| x.as_bool()).unwrap_or(false)
}
fn strs(v: &Value, k: &str) -> Vec<String> {
    match v.get(k) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => vec![],
    }
}

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
pub(crate) fn capabilities(host: &Value) -> Result<Vec<String>> {
    let avail = available_caps();
    if b(host, "Privileged") {
        return Ok(avail.iter().map(|s| s.to_string()).collect());
    }
    let add: Vec<String> = strs(host, "CapAdd").iter().map(|c| norm_cap(c)).collect();
    let drop: Vec<String> = strs(host, "CapDrop").iter().map(|c| norm_cap(c)).collect();
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

/// Parsed network mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NetMode {
    None,
    Host,
    Container(String),
}

pub(crate) fn net_mode(host: &Value) -> Result<NetMode> {
    let m = s(host, "NetworkMode");
    match m {
        "" | "default" | "none" => Ok(NetMode::None),
        "host" => Ok(NetMode::Host),
        "bridge" => Err(Error::BadParameter(
            "network mode \"bridge\" is not supported yet (networking comes later): use --network none, host or container:<name|id>".into(),
        )),
        o if o.starts_with("container:") => {
            let t = &o["container:".len()..];
            if t.is_empty() {
                return Err(Error::BadParameter("invalid network mode \"container:\": no container named".into()));
            }
            Ok(NetMode::Container(t.to_string()))
        }
        o => Err(Error::BadParameter(format!("network {o} not found (only none, host and container:<id> are supported)"))),
    }
}

fn rlimit_type(name: &str) -> Option<(&'static str, i32)> {
    Some(match name {
        "core" => ("RLIMIT_CORE", libc::RLIMIT_CORE as i32),
        "cpu" => ("RLIMIT_CPU", libc::RLIMIT_CPU as i32),
        "data" => ("RLIMIT_DATA", libc::RLIMIT_DATA as i32),
        "fsize" => ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE as i32),
        "locks" => ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS as i32),
        "memlock" => ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK as i32),
        "msgqueue" => ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE as i32),
        "nice" => ("RLIMIT_NICE", libc::RLIMIT_NICE as i32),
        "nofile" => ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE as i32),
        "nproc" => ("RLIMIT_NPROC", libc::RLIMIT_NPROC as i32),
        "rss" => ("RLIMIT_RSS", libc::RLIMIT_RSS as i32),
        "rtprio" => ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO as i32),
        "rttime" => ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME as i32),
        "sigpending" => ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING as i32),
        "stack" => ("RLIMIT_STACK", libc::RLIMIT_STACK as i32),
        "as" => ("RLIMIT_AS", libc::RLIMIT_AS as i32),
        _ => return None,
    })
}

fn host_hard_limit(res: i32) -> u64 {
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

pub(crate) fn rlimits(host: &Value) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    if let Some(Value::Array(list)) = host.get("Ulimits") {
        for u in list {
            let name = s(u, "Name");
            let (oci, res) = rlimit_type(name)
                .ok_or_else(|| Error::BadParameter(format!("invalid ulimit type: {name:?}")))?;
            let soft = u.get("Soft").and_then(|x| x.as_i64()).unwrap_or(0);
            let hard = u.get("Hard").and_then(|x| x.as_i64()).unwrap_or(soft);
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
            out.push(json!({"type": oci, "hard": as_u(hard), "soft": as_u(soft)}));
        }
    }
    Ok(out)
}

/// Parse "/host:/ctr[:opts]" binds. Returns (source, destination, options).
pub(crate) fn parse_bind(spec: &str) -> Result<(String, String, Vec<String>)> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.len() {
        2 => (parts[0], parts[1], ""),
        3 => (parts[0], parts[1], parts[2]),
        _ => {
            return Err(Error::BadParameter(format!(
                "invalid volume specification: '{spec}'"
            )))
        }
    };
    if !src.starts_with('/') {
        return Err(Error::BadParameter(format!(
            "invalid volume specification: '{spec}': named volumes are not supported yet (use an absolute host path)"
        )));
    }
    if !dst.starts_with('/') {
        return Err(Error::BadParameter(format!(
            "invalid volume specification: '{spec}': mount path must be absolute"
        )));
    }
    let mut ro = false;
    let mut prop = "rprivate";
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => ro = true,
            "rw" | "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated" => {}
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => prop = o,
            _ => {
                return Err(Error::BadParameter(format!(
                    "invalid mode: {o} in volume specification '{spec}'"
                )))
            }
        }
    }
    let mut opts = vec!["rbind".to_string(), prop.to_string()];
    if ro {
        opts.push("ro".into());
    }
    Ok((src.into(), dst.into(), opts))
}

/// Validate the HostConfig at create time (things the user can fix with a 400).
pub(crate) fn validate(host: &Value) -> Result<()> {
    net_mode(host)?;
    capabilities(host)?;
    rlimits(host)?;
    for bnd in strs(host, "Binds") {
        parse_bind(&bnd)?;
    }
    if let Some(Value::Array(ms)) = host.get("Mounts") {
        for m in ms {
            let t = s(m, "Type");
            match t {
                "bind" | "tmpfs" => {}
                "volume" | "npipe" | "cluster" | "image" => {
                    return Err(Error::BadParameter(format!(
                        "mount type {t:?} is not supported yet (use bind or tmpfs)"
                    )))
                }
                o => {
                    return Err(Error::BadParameter(format!(
                        "invalid mount config: unknown mount type {o:?}"
                    )))
                }
            }
            if !s(m, "Target").starts_with('/') {
                return Err(Error::BadParameter(format!(
                    "invalid mount config for type {t:?}: mount path must be absolute"
                )));
            }
            if t == "bind" {
                let src = s(m, "Source");
                if !src.starts_with('/') {
                    return Err(Error::BadParameter(format!("invalid mount config for type \"bind\": invalid mount path: {src:?} mount path must be absolute")));
                }
                if !Path::new(src).exists() {
                    return Err(Error::BadParameter(format!("invalid mount config for type \"bind\": bind source path does not exist: {src}")));
                }
            }
        }
    }
    for so in strs(host, "SecurityOpt") {
        let (k, v) = so.split_once(['=', ':']).unwrap_or((so.as_str(), ""));
        match k {
            "seccomp" => {
                if v != "unconfined" && serde_json::from_str::<Value>(v).is_err() {
                    return Err(Error::BadParameter(format!(
                        "invalid seccomp profile in --security-opt: {}",
                        v.chars().take(60).collect::<String>()
                    )));
                }
            }
            "no-new-privileges" => {}
            "label" | "apparmor" => {}
            _ => {
                return Err(Error::BadParameter(format!(
                    "invalid --security-opt: {so:?}"
                )))
            }
        }
    }
    if let Some(rp) = host.get("RestartPolicy") {
        match s(rp, "Name") {
            "" | "no" | "always" | "unless-stopped" => {
                if i(rp, "MaximumRetryCount") != 0 {
                    return Err(Error::BadParameter("invalid restart policy: maximum retry count can only be used with 'on-failure'".to_string()));
                }
            }
            "on-failure" => {
                if i(rp, "MaximumRetryCount") < 0 {
                    return Err(Error::BadParameter("invalid restart policy: maximum retry count cannot be negative".into()));
                }
            }
            o => return Err(Error::BadParameter(format!("invalid restart policy: unknown policy '{o}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"))),
        }
        if b(host, "AutoRemove") && !matches!(s(rp, "Name"), "" | "no") {
            return Err(Error::BadParameter(
                "conflicting options: cannot specify both --restart and --rm".into(),
            ));
        }
    }
    if let Some(Value::Array(ds)) = host.get("Devices") {
        for d in ds {
            let p = s(d, "PathOnHost");
            if std::fs::metadata(p).is_err() {
                return Err(Error::BadParameter(format!("error gathering device information while adding custom device {p:?}: no such file or directory")));
            }
        }
    }
    let mem = i(host, "Memory");
    if mem != 0 && mem < 6 * 1024 * 1024 {
        return Err(Error::BadParameter(
            "Minimum memory limit allowed is 6MB".into(),
        ));
    }
    let swap = i(host, "MemorySwap");
    if swap > 0 && mem > 0 && swap < mem {
        return Err(Error::BadParameter(
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        ));
    }
    if i(host, "NanoCpus") != 0 && (i(host, "CpuQuota") != 0 || i(host, "CpuPeriod") != 0) {
        return Err(Error::BadParameter(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
        ));
    }
    let w = i(host, "BlkioWeight");
    if w != 0 && !(10..=1000).contains(&w) {
        return Err(Error::BadParameter(
            "Range of blkio weight is from 10 to 1000".into(),
        ));
    }
    Ok(())
}

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional: Vec<u32>,
    pub home: String,
}

/// Resolve Docker's `User` ("name", "uid", "name:group", "uid:gid") against the rootfs's
/// /etc/passwd and /etc/group, read inside the rootfs.
pub(crate) fn resolve_user(rootfs: &Path, user: &str, group_add: &[String]) -> Result<User> {
    let passwd = read_in_root(rootfs, Path::new("/etc/passwd"))?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let group = read_in_root(rootfs, Path::new("/etc/group"))?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let pw: Vec<Vec<&str>> = passwd
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 7)
        .collect();
    let gr: Vec<Vec<&str>> = group
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 3)
        .collect();
    let mut out = User {
        uid: 0,
        gid: 0,
        additional: vec![],
        home: "/".into(),
    };
    let mut name = String::new();
    if u.is_empty() {
        if let Some(e) = pw.iter().find(|e| e[2] == "0") {
            out.home = e[5].to_string();
            name = e[0].to_string();
        }
    } else if let Ok(n) = u.parse::<u32>() {
        out.uid = n;
        if let Some(e) = pw.iter().find(|e| e[2].parse::<u32>().ok() == Some(n)) {
            out.gid = e[3].parse().unwrap_or(0);
            out.home = e[5].to_string();
            name = e[0].to_string();
        }
    } else {
        let e = pw.iter().find(|e| e[0] == u).ok_or_else(|| {
            Error::BadParameter(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ))
        })?;
        out.uid = e[2]
            .parse()
            .map_err(|_| Error::BadParameter(format!("invalid uid for user {u} in /etc/passwd")))?;
        out.gid = e[3].parse().unwrap_or(0);
        out.home = e[5].to_string();
        name = u.to_string();
    }
    if let Some(g) = g {
        if let Ok(n) = g.parse::<u32>() {
            out.gid = n;
        } else {
            let e = gr.iter().find(|e| e[0] == g).ok_or_else(|| {
                Error::BadParameter(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?;
            out.gid = e[2].parse().unwrap_or(0);
        }
    }
    if !name.is_empty() {
        for e in &gr {
            if e.len() >= 4 && e[3].split(',').any(|m| m == name) {
                if let Ok(n) = e[2].parse::<u32>() {
                    if n != out.gid && !out.additional.contains(&n) {
                        out.additional.push(n);
                    }
                }
            }
        }
    }
    for ga in group_add {
        let n = match ga.parse::<u32>() {
            Ok(n) => n,
            Err(_) => gr
                .iter()
                .find(|e| e[0] == ga)
                .and_then(|e| e[2].parse().ok())
                .ok_or_else(|| {
                    Error::BadParameter(format!(
                        "unable to find group {ga}: no matching entries in group file"
                    ))
                })?,
        };
        if !out.additional.contains(&n) {
            out.additional.push(n);
        }
    }
    Ok(out)
}

/// Docker's Entrypoint/Cmd merge with the image config; returns (entrypoint, cmd) as stored.
pub(crate) fn merge_cmd(
    user_ep: Option<&Value>,
    user_cmd: Option<&Value>,
    img_ep: &[String],
    img_cmd: &[String],
) -> (Vec<String>, Vec<String>) {
    let list = |v: Option<&Value>| -> Option<Vec<String>> {
        match v {
            Some(Value::Array(a)) => Some(
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
            ),
            Some(Value::String(s)) => Some(vec![s.clone()]),
            _ => None,
        }
    };
    let uep = list(user_ep);
    let ucmd = list(user_cmd).unwrap_or_default();
    match uep {
        Some(ep) if !(ep.is_empty() || ep.len() == 1 && ep[0].is_empty()) => (ep, ucmd),
        Some(_) => (
            vec![],
            if ucmd.is_empty() {
                img_cmd.to_vec()
            } else {
                ucmd
            },
        ),
        None => (
            img_ep.to_vec(),
            if ucmd.is_empty() {
                img_cmd.to_vec()
            } else {
                ucmd
            },
        ),
    }
}

/// Env merge: image env, then container env overriding by key; PATH default.
pub(crate) fn merge_env(img: &[String], user: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
    for e in img.iter().chain(user.iter()) {
        let k = key(e);
        if let Some(pos) = out.iter().position(|x| key(x) == k) {
            out[pos] = e.clone();
        } else {
            out.push(e.clone());
        }
    }
    if !out.iter().any(|e| key(e) == "PATH") {
        out.insert(0, DEFAULT_PATH.into());
    }
    out
}

/// Every character/block device of the host's /dev (one level of subdirectories too, not
/// pts/shm/mqueue), as OCI linux.devices: what `--privileged` exposes.
fn host_devices() -> Vec<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
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
            let ty = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else {
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
            let rdev = md.rdev();
            out.push(json!({"path": p, "type": ty, "major": libc::major(rdev), "minor": libc::minor(rdev), "fileMode": md.mode() & 0o777, "uid": md.uid(), "gid": md.gid()}));
        }
        depth = 1;
    }
    out
}

pub(crate) struct SpecInput<'a> {
    pub id: &'a str,
    pub config: &'a Value,
    pub host: &'a Value,
    pub rootfs: &'a Path,
    pub etc_dir: &'a Path,
    pub init_path: Option<PathBuf>,
    /// /proc/<pid>/ns/net of the container whose network we join.
    pub join_net: Option<String>,
    pub hostname: String,
}

fn shm_size(host: &Value) -> i64 {
    let v = i(host, "ShmSize");
    if v > 0 {
        v
    } else {
        64 * 1024 * 1024
    }
}

pub(crate) fn build(inp: &SpecInput) -> Result<Value> {
    let c = inp.config;
    let h = inp.host;
    let privileged = b(h, "Privileged");
    let tty = b(c, "Tty");
    let mut args: Vec<String> = strs(c, "Entrypoint");
    args.extend(strs(c, "Cmd"));
    if args.is_empty() {
        return Err(Error::BadParameter("no command specified".into()));
    }
    if b(h, "Init") {
        let p = inp
            .init_path
            .as_ref()
            .ok_or_else(|| Error::Internal("--init: the berth init binary was not found".into()))?;
        let _ = p;
        let mut a = vec!["/sbin/docker-init".to_string(), "--".to_string()];
        a.extend(args);
        args = a;
    }
    let mut env = strs(c, "Env");
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={}", inp.hostname));
    }
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.into());
    }
    let group_add = strs(h, "GroupAdd");
    let user = resolve_user(inp.rootfs, s(c, "User"), &group_add)?;
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!(
            "HOME={}",
            if user.home.is_empty() {
                "/"
            } else {
                &user.home
            }
        ));
    }
    let cwd = match s(c, "WorkingDir") {
        "" => "/".to_string(),
        w if w.starts_with('/') => w.to_string(),
        w => {
            return Err(Error::BadParameter(format!(
                "the working directory '{w}' is invalid, it needs to be an absolute path"
            )))
        }
    };
    crate::util::mkdir_all_in_root(inp.rootfs, Path::new(&cwd), 0o755)?;
    let caps = capabilities(h)?;
    let mut nnp = false;
    let mut seccomp_mode: Option<Option<Vec<u8>>> = None; // None = default, Some(None) = unconfined
    for so in strs(h, "SecurityOpt") {
        let (k, v) = so.split_once(['=', ':']).unwrap_or((so.as_str(), ""));
        match k {
            "no-new-privileges" => nnp = v.is_empty() || v == "true",
            "seccomp" if v == "unconfined" => seccomp_mode = Some(None),
            "seccomp" => seccomp_mode = Some(Some(v.as_bytes().to_vec())),
            _ => {}
        }
    }
    let mut rl = rlimits(h)?;
    if !rl.iter().any(|r| r["type"] == "RLIMIT_NOFILE") {
        // Docker/containerd default 1048576, bounded by what we can actually grant.
        let max = host_hard_limit(libc::RLIMIT_NOFILE as i32).min(1_048_576);
        rl.push(json!({"type": "RLIMIT_NOFILE", "hard": max, "soft": max}));
    }
    let mut process = json!({
        "terminal": tty,
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": rl,
        "noNewPrivileges": nnp,
    });
    if user.additional.is_empty() {
        process["user"]
            .as_object_mut()
            .map(|m| m.remove("additionalGids"));
    }
    if let Some(v) = h.get("OomScoreAdj").and_then(|x| x.as_i64()) {
        if v != 0 {
            process["oomScoreAdj"] = json!(v);
        }
    }

    // mounts
    let sys_ro = !privileged;
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": if sys_ro { json!(["nosuid", "noexec", "nodev", "ro"]) } else { json!(["nosuid", "noexec", "nodev"]) }}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={}", shm_size(h))]}),
    ];
    // (MOUNT_TARGETS lists the destinations of these made on the image's tree.)
    for f in ["hostname", "hosts", "resolv.conf"] {
        mounts.push(json!({"destination": format!("/etc/{f}"), "type": "bind", "source": inp.etc_dir.join(f), "options": ["rbind", "rprivate"]}));
    }
    if let (true, Some(p)) = (b(h, "Init"), &inp.init_path) {
        mounts.push(json!({"destination": "/sbin/docker-init", "type": "bind", "source": p, "options": ["bind", "ro", "rprivate"]}));
    }
    for bnd in strs(h, "Binds") {
        let (src, dst, opts) = parse_bind(&bnd)?;
        if !Path::new(&src).exists() {
            std::fs::create_dir_all(&src)
                .map_err(|e| internal(format!("create bind source {src}"), e))?;
        }
        mounts.push(json!({"destination": dst, "type": "bind", "source": src, "options": opts}));
    }
    if let Some(Value::Object(t)) = h.get("Tmpfs") {
        for (dst, o) in t {
            let mut opts = vec!["noexec".to_string(), "nosuid".into(), "nodev".into()];
            for x in o
                .as_str()
                .unwrap_or("")
                .split(',')
                .filter(|x| !x.is_empty())
            {
                match x {
                    "exec" => opts.retain(|y| y != "noexec"),
                    "suid" => opts.retain(|y| y != "nosuid"),
                    "dev" => opts.retain(|y| y != "nodev"),
                    o => opts.push(o.to_string()),
                }
            }
            mounts.push(
                json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": opts}),
            );
        }
    }
    if let Some(Value::Array(ms)) = h.get("Mounts") {
        for m in ms {
            let dst = s(m, "Target");
            match s(m, "Type") {
                "bind" => {
                    let prop = m
                        .get("BindOptions")
                        .map(|bo| s(bo, "Propagation"))
                        .filter(|p| !p.is_empty())
                        .unwrap_or("rprivate");
                    let mut opts = vec!["rbind".to_string(), prop.to_string()];
                    if b(m, "ReadOnly") {
                        opts.push("ro".into());
                    }
                    mounts.push(json!({"destination": dst, "type": "bind", "source": s(m, "Source"), "options": opts}));
                }
                "tmpfs" => {
                    let mut opts = vec!["noexec".to_string(), "nosuid".into(), "nodev".into()];
                    if let Some(to) = m.get("TmpfsOptions") {
                        if i(to, "SizeBytes") > 0 {
                            opts.push(format!("size={}", i(to, "SizeBytes")));
                        }
                        if i(to, "Mode") > 0 {
                            opts.push(format!("mode={:o}", i(to, "Mode")));
                        }
                    }
                    if b(m, "ReadOnly") {
                        opts.push("ro".into());
                    }
                    mounts.push(json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": opts}));
                }
                t => {
                    return Err(Error::BadParameter(format!(
                        "mount type {t:?} is not supported yet"
                    )))
                }
            }
        }
    }

    // namespaces
    let net = net_mode(h)?;
    let mut ns = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match (&net, &inp.join_net) {
        (NetMode::None, Some(p)) => ns.push(json!({"type": "network", "path": p})),
        (NetMode::None, None) => ns.push(json!({"type": "network"})),
        (NetMode::Host, _) => {}
        (NetMode::Container(_), Some(p)) => ns.push(json!({"type": "network", "path": p})),
        (NetMode::Container(c), None) => {
            return Err(Error::Conflict(format!(
                "cannot join network of a non running container: {c}"
            )))
        }
    }
    if s(h, "PidMode") == "host" {
        ns.retain(|n| n["type"] != "pid");
    }
    if s(h, "IpcMode") == "host" {
        ns.retain(|n| n["type"] != "ipc");
    }
    if s(h, "UTSMode") == "host" {
        ns.retain(|n| n["type"] != "uts");
    }

    // resources
    let mut dev_rules = vec![json!({"allow": false, "access": "rwm"})];
    if privileged {
        dev_rules = vec![json!({"allow": true, "access": "rwm"})];
    } else {
        for (t, maj, min) in [
            ("c", 1, 3),
            ("c", 1, 5),
            ("c", 1, 7),
            ("c", 5, 0),
            ("c", 1, 8),
            ("c", 1, 9),
            ("c", 5, 2),
            ("c", 10, 200),
        ] {
            dev_rules.push(
                json!({"allow": true, "type": t, "major": maj, "minor": min, "access": "rwm"}),
            );
        }
        dev_rules.push(json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}));
        dev_rules
            .push(json!({"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"}));
        dev_rules
            .push(json!({"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"}));
    }
    let mut devices = if privileged {
        host_devices()
    } else {
        Vec::new()
    };
    if let Some(Value::Array(ds)) = h.get("Devices") {
        for d in ds {
            let src = s(d, "PathOnHost");
            let dst = match s(d, "PathInContainer") {
                "" => src,
                x => x,
            };
            let perms = match s(d, "CgroupPermissions") {
                "" => "rwm",
                x => x,
            };
            let md = std::fs::metadata(src).map_err(|e| {
                Error::BadParameter(format!(
                    "error gathering device information while adding custom device {src:?}: {e}"
                ))
            })?;
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            let ty = if md.file_type().is_char_device() {
                "c"
            } else if md.file_type().is_block_device() {
                "b"
            } else {
                return Err(Error::BadParameter(format!("{src} is not a device")));
            };
            let rdev = md.rdev();
            let (maj, min) = (libc::major(rdev), libc::minor(rdev));
            devices.push(json!({"path": dst, "type": ty, "major": maj, "minor": min, "fileMode": md.mode() & 0o777, "uid": md.uid(), "gid": md.gid()}));
            dev_rules.push(
                json!({"allow": true, "type": ty, "major": maj, "minor": min, "access": perms}),
            );
        }
    }
    let mut resources = json!({"devices": dev_rules});
    let mem = i(h, "Memory");
    let mut memory = serde_json::Map::new();
    if mem > 0 {
        memory.insert("limit".into(), json!(mem));
        let swap = i(h, "MemorySwap");
        if swap > 0 || swap == -1 {
            memory.insert("swap".into(), json!(swap));
        } else if swap == 0 {
            memory.insert("swap".into(), json!(mem * 2));
        }
    }
    if i(h, "MemoryReservation") > 0 {
        memory.insert("reservation".into(), json!(i(h, "MemoryReservation")));
    }
    if !memory.is_empty() {
        resources["memory"] = Value::Object(memory);
    }
    let mut cpu = serde_json::Map::new();
    if i(h, "CpuShares") > 0 {
        cpu.insert("shares".into(), json!(i(h, "CpuShares")));
    }
    let nano = i(h, "NanoCpus");
    if nano > 0 {
        cpu.insert("period".into(), json!(100_000));
        cpu.insert("quota".into(), json!(nano * 100_000 / 1_000_000_000));
    }
    if i(h, "CpuQuota") != 0 {
        cpu.insert("quota".into(), json!(i(h, "CpuQuota")));
    }
    if i(h, "CpuPeriod") != 0 {
        cpu.insert("period".into(), json!(i(h, "CpuPeriod")));
    }
    if !s(h, "CpusetCpus").is_empty() {
        cpu.insert("cpus".into(), json!(s(h, "CpusetCpus")));
    }
    if !s(h, "CpusetMems").is_empty() {
        cpu.insert("mems".into(), json!(s(h, "CpusetMems")));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = h.get("PidsLimit").and_then(|x| x.as_i64()) {
        if p != 0 {
            resources["pids"] = json!({"limit": if p < 0 { -1 } else { p }});
        }
    }
    if i(h, "BlkioWeight") > 0 {
        resources["blockIO"] = json!({"weight": i(h, "BlkioWeight")});
    }

    let mut linux = json!({
        "namespaces": ns,
        "resources": resources,
        "cgroupsPath": format!("/berth/{}", inp.id),
        "devices": devices,
    });
    if !privileged {
        linux["maskedPaths"] = json!(MASKED);
        linux["readonlyPaths"] = json!(READONLY);
        let profile = match seccomp_mode {
            None => Some(DEFAULT_SECCOMP.to_vec()),
            Some(None) => None,
            Some(Some(p)) => Some(p),
        };
        if let Some(p) = profile {
            linux["seccomp"] = seccomp_oci(&p, &caps)?;
        }
    }
    if let Some(Value::Object(sysctls)) = h.get("Sysctls") {
        linux["sysctl"] = Value::Object(sysctls.clone());
    }
    let hostname = match net {
        NetMode::Host => nix::unistd::gethostname()
            .ok()
            .and_then(|s| s.into_string().ok())
            .unwrap_or_else(|| inp.hostname.clone()),
        _ => inp.hostname.clone(),
    };
    let mut spec = json!({
        "ociVersion": "1.2.0",
        "process": process,
        "root": {"path": inp.rootfs, "readonly": b(h, "ReadonlyRootfs")},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
    });
    if s(h, "UTSMode") == "host" {
        spec.as_object_mut().map(|m| m.remove("hostname"));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn caps() {
        assert_eq!(capabilities(&json!({})).unwrap().len(), 14);
        let c = capabilities(&json!({"CapDrop": ["ALL"], "CapAdd": ["NET_ADMIN"]})).unwrap();
        assert_eq!(c, vec!["CAP_NET_ADMIN"]);
        let c = capabilities(&json!({"CapDrop": ["chown"]})).unwrap();
        assert!(!c.contains(&"CAP_CHOWN".to_string()) && c.len() == 13);
        assert!(capabilities(&json!({"CapAdd": ["BOGUS"]})).is_err());
    }
    #[test]
    fn cmd_merge() {
        let ie = vec!["/ep".to_string()];
        let ic = vec!["a".to_string()];
        assert_eq!(merge_cmd(None, None, &ie, &ic), (ie.clone(), ic.clone()));
        assert_eq!(
            merge_cmd(None, Some(&json!(["b"])), &ie, &ic),
            (ie.clone(), vec!["b".to_string()])
        );
        assert_eq!(
            merge_cmd(Some(&json!(["/x"])), None, &ie, &ic),
            (vec!["/x".to_string()], vec![])
        );
        assert_eq!(
            merge_cmd(Some(&json!([""])), None, &ie, &ic),
            (vec![], ic.clone())
        );
    }
    #[test]
    fn env_merge() {
        let e = merge_env(
            &["A=1".into(), "PATH=/x".into()],
            &["A=2".into(), "B=3".into()],
        );
        assert_eq!(e, vec!["A=2", "PATH=/x", "B=3"]);
        assert!(merge_env(&[], &[])[0].starts_with("PATH="));
    }
    #[test]
    fn binds() {
        assert!(parse_bind("/a:/b:ro")
            .unwrap()
            .2
            .contains(&"ro".to_string()));
        assert!(parse_bind("vol:/b").is_err());
        assert!(parse_bind("/a:b").is_err());
        assert!(parse_bind("/a:/b:bogus").is_err());
    }
    #[test]
    fn network_modes() {
        assert_eq!(
            net_mode(&json!({"NetworkMode": "default"})).unwrap(),
            NetMode::None
        );
        assert!(net_mode(&json!({"NetworkMode": "bridge"}))
            .unwrap_err()
            .to_string()
            .contains("bridge"));
        assert_eq!(
            net_mode(&json!({"NetworkMode": "container:abc"})).unwrap(),
            NetMode::Container("abc".into())
        );
    }
    #[test]
    fn ulimit_above_hard_is_refused() {
        let e = rlimits(&json!({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": i64::MAX}]}))
            .unwrap_err();
        assert!(e.to_string().contains("nofile"), "{e}");
        assert!(rlimits(&json!({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]})).is_err());
    }
}

/// Docker's profile JSON -> the OCI seccomp section for a capability set. The default profile
/// is converted once per capability set (it is the same for every container of a daemon).
fn seccomp_oci(profile: &[u8], caps: &[String]) -> Result<Value> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static DEFAULT: OnceLock<Mutex<HashMap<Vec<String>, Value>>> = OnceLock::new();
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
    let v = serde_json::to_value(&sc).map_err(|e| internal("encode seccomp", e))?;
    if is_default {
        if let Ok(mut m) = DEFAULT.get_or_init(Default::default).lock() {
            if m.len() >= 32 {
                m.clear();
            }
            m.insert(caps.to_vec(), v.clone());
        }
    }
    Ok(v)
}
