//! Loading and validating a bundle's config.json (runtime-spec 1.x), and the default spec that
//! `berth-runtime spec` writes.

use crate::error::{Context, Error, Result};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Read `bundle/config.json`; a malformed file is reported with the JSON path of the bad field.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).with_ctx(|| format!("read {}", path.display()))?;
    parse(&data)
}

pub fn parse(data: &[u8]) -> Result<Spec> {
    // The plain parse first (the path tracking costs a good part of the time); only a spec
    // that fails is parsed again, for an error that names the field.
    if let Ok(spec) = serde_json::from_slice::<Spec>(data) {
        return Ok(spec);
    }
    let de = &mut serde_json::Deserializer::from_slice(data);
    let spec: Spec = serde_path_to_error::deserialize(de).map_err(|e| {
        let p = e.path().to_string();
        let inner = e.into_inner();
        if p == "." || p.is_empty() {
            Error::Config(inner.to_string())
        } else {
            Error::Config(format!("field {p}: {inner}"))
        }
    })?;
    Ok(spec)
}

/// Resolve the rootfs (relative to the bundle) and check everything that would otherwise fail
/// half-way through container creation. Errors name the field.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    check_version(spec.version())?;
    check_mount_namespace(spec)?;
    let userns = namespaces(spec).any(|n| n.typ() == LinuxNamespaceType::User);
    if let Some(caps) = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
    {
        if !userns {
            crate::capabilities::check_host_allows(caps)?;
        }
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::Config("field root: missing".into()))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let meta = std::fs::metadata(&rootfs).map_err(|e| {
        Error::Config(format!(
            "field root.path: rootfs {} is not usable: {e}",
            rootfs.display()
        ))
    })?;
    if !meta.is_dir() {
        return Err(Error::Config(format!(
            "field root.path: rootfs {} is not a directory",
            rootfs.display()
        )));
    }
    let rootfs = std::fs::canonicalize(&rootfs)
        .with_ctx(|| format!("canonicalize rootfs {}", rootfs.display()))?;

    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Config("field process: missing".into()))?;
    match process.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => {}
        _ => {
            return Err(Error::Config(
                "field process.args: must not be empty".into(),
            ))
        }
    }
    // Refuse at create time what the host cannot enforce, instead of claiming it silently.
    if process
        .apparmor_profile()
        .as_deref()
        .is_some_and(|p| !p.is_empty())
        && !lsm_enabled("apparmor")
    {
        return Err(Error::Config(
            "field process.apparmorProfile: AppArmor is not enabled on this host".into(),
        ));
    }
    if process
        .selinux_label()
        .as_deref()
        .is_some_and(|p| !p.is_empty())
        && !lsm_enabled("selinux")
    {
        return Err(Error::Config(
            "field process.selinuxLabel: SELinux is not enabled on this host".into(),
        ));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::Config(format!(
            "field process.cwd: {:?} must be an absolute path",
            process.cwd()
        )));
    }
    if let Some(env) = process.env() {
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') {
                return Err(Error::Config(format!(
                    "field process.env[{i}]: {e:?} is not of the form KEY=VALUE"
                )));
            }
        }
    }
    if let Some(linux) = spec.linux() {
        let mut seen = HashSet::new();
        for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
            if !seen.insert(ns.typ()) {
                return Err(Error::Config(format!(
                    "field linux.namespaces[{i}]: namespace {:?} listed twice",
                    ns.typ()
                )));
            }
            if let Some(p) = ns.path() {
                if !p.exists() {
                    return Err(Error::Config(format!(
                        "field linux.namespaces[{i}].path: {} does not exist",
                        p.display()
                    )));
                }
            }
        }
        let has_user = seen.contains(&LinuxNamespaceType::User);
        let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if maps && !has_user {
            return Err(Error::Config(
                "field linux.uidMappings: mappings given without a user namespace".into(),
            ));
        }
        if spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
            && !seen.contains(&LinuxNamespaceType::Uts)
        {
            return Err(Error::Config(
                "field hostname: setting a hostname needs a new uts namespace".into(),
            ));
        }
        if let Some(sysctl) = linux.sysctl() {
            for k in sysctl.keys() {
                if k.contains('/') || k.split('.').any(|c| c == ".." || c.is_empty()) {
                    return Err(Error::Config(format!("field linux.sysctl: bad key {k:?}")));
                }
            }
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(Error::Config(format!(
                "field mounts[{i}].destination: {:?} must be absolute",
                m.destination()
            )));
        }
    }
    for (name, hooks) in hook_lists(spec) {
        for (i, h) in hooks.iter().enumerate() {
            if !h.path().is_absolute() {
                return Err(Error::Config(format!(
                    "field hooks.{name}[{i}].path: {:?} must be absolute",
                    h.path()
                )));
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                return Err(Error::Config(format!(
                    "field hooks.{name}[{i}].timeout: must be positive"
                )));
            }
        }
    }
    Ok(rootfs)
}

fn namespaces(spec: &Spec) -> impl Iterator<Item = &LinuxNamespace> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
}

/// `ociVersion` is SemVer 2.0.0 (config.md) and the spec is compatible within a major version:
/// any 1.x.y is ours, anything else (another major, or not a version) is refused.
fn check_version(v: &str) -> Result<()> {
    match semver_major(v) {
        Some(1) => Ok(()),
        Some(m) => Err(Error::Config(format!(
            "field ociVersion: {v:?} is runtime-spec major version {m}; berth-runtime implements {} (major version 1)",
            crate::OCI_VERSION
        ))),
        None => Err(Error::Config(format!(
            "field ociVersion: {v:?} is not a SemVer 2.0.0 version (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])"
        ))),
    }
}

/// The major version of a SemVer 2.0.0 string, None if it is not one.
fn semver_major(v: &str) -> Option<u64> {
    let (rest, build) = match v.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let number = |s: &str| -> Option<u64> {
        let ok = !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'));
        if ok {
            s.parse().ok()
        } else {
            None
        }
    };
    let idents_ok = |s: &str, numeric_no_zero: bool| {
        s.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !(numeric_no_zero
                    && id.bytes().all(|b| b.is_ascii_digit())
                    && id.len() > 1
                    && id.starts_with('0'))
        })
    };
    let mut parts = core.split('.');
    let (major, minor, patch) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || number(minor).is_none() || number(patch).is_none() {
        return None;
    }
    if !pre.is_none_or(|p| idents_ok(p, true)) || !build.is_none_or(|b| idents_ok(b, false)) {
        return None;
    }
    number(major)
}

/// Mounts, masked and read-only paths, a read-only root and sysctls are made in the
/// container's own mount namespace; without a new one they would change the caller's mount
/// table (runc does exactly that with `mounts`), so a spec asking for them is refused.
fn check_mount_namespace(spec: &Spec) -> Result<()> {
    let new_mnt =
        namespaces(spec).any(|n| n.typ() == LinuxNamespaceType::Mount && n.path().is_none());
    if new_mnt {
        return Ok(());
    }
    let linux = spec.linux().as_ref();
    let non_empty = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
    let asked = [
        (
            "mounts",
            spec.mounts().as_ref().is_some_and(|m| !m.is_empty()),
        ),
        (
            "linux.maskedPaths",
            non_empty(linux.and_then(|l| l.masked_paths().as_ref())),
        ),
        (
            "linux.readonlyPaths",
            non_empty(linux.and_then(|l| l.readonly_paths().as_ref())),
        ),
        (
            "linux.sysctl",
            linux
                .and_then(|l| l.sysctl().as_ref())
                .is_some_and(|m| !m.is_empty()),
        ),
        (
            "root.readonly",
            spec.root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
        ),
    ];
    match asked.iter().find(|(_, a)| *a) {
        Some((field, _)) => Err(Error::Config(format!(
            "field {field}: needs a new mount namespace, and linux.namespaces has no \"mount\" entry without a path (it would change the host's mount table)"
        ))),
        None => Ok(()),
    }
}

#[allow(deprecated)]
fn hook_lists(spec: &Spec) -> Vec<(&'static str, &Vec<oci_spec::runtime::Hook>)> {
    let mut v = Vec::new();
    if let Some(h) = spec.hooks() {
        let all = [
            ("prestart", h.prestart()),
            ("createRuntime", h.create_runtime()),
            ("createContainer", h.create_container()),
            ("startContainer", h.start_container()),
            ("poststart", h.poststart()),
            ("poststop", h.poststop()),
        ];
        for (n, l) in all {
            if let Some(l) = l {
                v.push((n, l));
            }
        }
    }
    v
}

/// The default config.json, like `runc spec` (with `--rootless`, the rootless variant).
pub fn default_spec(rootless: bool) -> serde_json::Value {
    use serde_json::json;
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut mounts = vec![
        json!({"destination":"/proc","type":"proc","source":"proc"}),
        json!({"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]}),
        json!({"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]}),
        json!({"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["nosuid","noexec","nodev","mode=1777","size=65536k"]}),
        json!({"destination":"/dev/mqueue","type":"mqueue","source":"mqueue","options":["nosuid","noexec","nodev"]}),
        json!({"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]}),
        json!({"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","noexec","nodev","relatime","ro"]}),
    ];
    let mut namespaces = vec![
        json!({"type":"pid"}),
        json!({"type":"network"}),
        json!({"type":"ipc"}),
        json!({"type":"uts"}),
        json!({"type":"mount"}),
        json!({"type":"cgroup"}),
    ];
    let mut linux = json!({
        "resources": {"devices": [{"allow": false, "access": "rwm"}]},
        "namespaces": [],
        "maskedPaths": [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
            "/proc/scsi"
        ],
        "readonlyPaths": [
            "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
        ]
    });
    if rootless {
        // SAFETY: getuid/getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        namespaces.retain(|n| n["type"] != "network");
        namespaces.push(json!({"type":"user"}));
        linux["uidMappings"] = json!([{"containerID":0,"hostID":uid,"size":1}]);
        linux["gidMappings"] = json!([{"containerID":0,"hostID":gid,"size":1}]);
        if let Some(obj) = linux.as_object_mut() {
            obj.remove("resources");
        }
        mounts.retain(|m| m["type"] != "cgroup" && m["type"] != "mqueue");
        for m in mounts.iter_mut() {
            if m["type"] == "sysfs" {
                *m = json!({"destination":"/sys","type":"none","source":"/sys","options":["rbind","nosuid","noexec","nodev","ro"]});
            }
            if m["type"] == "devpts" {
                m["options"] = json!([
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620"
                ]);
            }
        }
    }
    linux["namespaces"] = json!(namespaces);
    json!({
        // What `runc spec` writes; every peer (crun 1.8, runc 1.1) accepts it.
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": mounts,
        "linux": linux
    })
}

/// Is the Linux security module `name` active on this host?
pub fn lsm_enabled(name: &str) -> bool {
    std::fs::read_to_string("/sys/kernel/security/lsm")
        .map(|s| s.split(',').any(|l| l.trim() == name))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_versions() {
        for (v, major) in [
            ("1.0.0", 1),
            ("1.0.2-dev", 1),
            ("1.2.0", 1),
            ("1.3.0-rc.1+build.5", 1),
            ("0.1.0", 0),
            ("2.0.0", 2),
        ] {
            assert_eq!(semver_major(v), Some(major), "{v}");
        }
        for v in [
            "",
            "invalid",
            "1",
            "1.0",
            "1.0.0.0",
            "01.0.0",
            "1.00.0",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0+",
            "1.0.0-a..b",
            "v1.0.0",
            "1.0.0 ",
            "1.x.0",
        ] {
            assert_eq!(semver_major(v), None, "{v:?}");
        }
        assert!(check_version("1.0.2-dev").is_ok());
        let e = check_version("invalid").unwrap_err().to_string();
        assert!(e.contains("ociVersion") && e.contains("invalid"), "{e}");
        let e = check_version("2.0.0").unwrap_err().to_string();
        assert!(e.contains("major version 2"), "{e}");
    }
}
