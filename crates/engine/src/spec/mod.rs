//! Docker Config + HostConfig -> OCI runtime spec (config.json), with Docker's defaults, built
//! as typed `oci_spec::runtime` values: `process`, `mounts`, `linux` (namespaces, resources,
//! devices) and the security settings (capabilities, seccomp, masked paths) each in their own
//! function.
use crate::model::{Config, HostConfig, MountPoint};
use crate::{Error, Result};
use oci_spec::runtime::{Linux, Root, Spec};
use std::path::{Path, PathBuf};

mod linux;
mod mounts;
mod process;
mod security;
mod user;
mod validate;
mod values;

#[cfg(test)]
mod equiv;
#[cfg(test)]
mod tests;

pub(crate) use linux::{pids_limit, resources};
pub(crate) use security::{available_caps, capabilities};
pub(crate) use user::resolve_user;
pub(crate) use validate::validate;
pub(crate) use values::config as validate_config;

pub(crate) const DEFAULT_SECCOMP: &[u8] =
    include_bytes!("../../assets/docker-default-seccomp.json");
pub(crate) const DEFAULT_PATH: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(crate) const DEFAULT_CAPS: [&str; 14] = berth_seccomp::DOCKER_DEFAULT_CAPS;

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

/// Parsed network mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NetMode {
    /// Loopback only (also `default` when the daemon has no bridge network).
    None,
    /// A bridge network, the default one or a user-defined one (`networks/`): a namespace
    /// made by the engine, like `None`, with a veth pair to each network's bridge.
    Bridge,
    Host,
    Container(String),
}

pub(crate) fn net_mode(host: &HostConfig) -> Result<NetMode> {
    match host.network_mode.str() {
        "" | "default" | "none" => Ok(NetMode::None),
        "host" => Ok(NetMode::Host),
        "bridge" => Ok(NetMode::Bridge),
        o if o.starts_with("container:") => {
            let t = &o["container:".len()..];
            if t.is_empty() {
                return Err(Error::BadParameter(
                    "invalid network mode \"container:\": no container named".into(),
                ));
            }
            Ok(NetMode::Container(t.to_string()))
        }
        // (A user-defined network: checked to exist at create, connected like the default.)
        _ => Ok(NetMode::Bridge),
    }
}

/// Docker's Entrypoint/Cmd merge with the image config; returns (entrypoint, cmd) as stored.
/// `None`: the request did not set it (absent or null).
pub(crate) fn merge_cmd(
    user_ep: Option<&[String]>,
    user_cmd: Option<&[String]>,
    img_ep: &[String],
    img_cmd: &[String],
) -> (Vec<String>, Vec<String>) {
    let ucmd = user_cmd.map(<[String]>::to_vec).unwrap_or_default();
    let cmd = |ucmd: Vec<String>| {
        if ucmd.is_empty() {
            img_cmd.to_vec()
        } else {
            ucmd
        }
    };
    match user_ep {
        Some(ep) if !(ep.is_empty() || ep.len() == 1 && ep[0].is_empty()) => (ep.to_vec(), ucmd),
        Some(_) => (vec![], cmd(ucmd)),
        None => (img_ep.to_vec(), cmd(ucmd)),
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

pub(crate) struct SpecInput<'a> {
    pub id: &'a str,
    pub config: &'a Config,
    pub host: &'a HostConfig,
    /// The container's mounts (resolved at create).
    pub mounts: &'a [MountPoint],
    pub rootfs: &'a Path,
    pub etc_dir: &'a Path,
    pub init_path: Option<PathBuf>,
    /// /proc/<pid>/ns/net of the container whose network we join.
    pub join_net: Option<String>,
    pub hostname: String,
    /// Ask the runtime for truthful /proc files (annotation `run.berth.truthful-proc=true`)
    /// unless `HostConfig.Annotations` sets that annotation itself.
    pub truthful_proc: bool,
}

/// The `linux` section.
fn linux(
    inp: &SpecInput,
    net: &NetMode,
    caps: &[String],
    seccomp: security::SeccompMode,
) -> Result<Linux> {
    let h = inp.host;
    let privileged = h.privileged.val();
    let mut rules = linux::default_device_rules(privileged);
    let mut devices = if privileged {
        linux::host_devices()
    } else {
        Vec::new()
    };
    let (devs, dev_rules) = linux::devices(h)?;
    devices.extend(devs);
    rules.extend(dev_rules);
    let mut resources = linux::resources(h)?;
    resources.set_devices(Some(rules));
    let mut l = Linux::default();
    l.set_uid_mappings(None)
        .set_gid_mappings(None)
        .set_namespaces(Some(linux::namespaces(h, net, inp.join_net.as_deref())?))
        .set_resources(Some(resources))
        .set_cgroups_path(Some(format!("/berth/{}", inp.id).into()))
        .set_devices(Some(devices))
        .set_masked_paths(None)
        .set_readonly_paths(None)
        .set_rootfs_propagation(None)
        .set_mount_label(None)
        .set_sysctl(h.sysctls.get().map(|s| s.0.clone().into_iter().collect()));
    if !privileged {
        // (`MaskedPaths`/`ReadonlyPaths` when set, `[]` included: the CLI's
        // `--security-opt systempaths=unconfined`; Docker's lists otherwise.)
        let masked = h.masked_paths.get().cloned();
        let readonly = h.readonly_paths.get().cloned();
        l.set_masked_paths(Some(
            masked.unwrap_or_else(|| security::MASKED.map(String::from).to_vec()),
        ))
        .set_readonly_paths(Some(
            readonly.unwrap_or_else(|| security::READONLY.map(String::from).to_vec()),
        ));
        let profile = match seccomp {
            security::SeccompMode::Default => Some(DEFAULT_SECCOMP),
            security::SeccompMode::Unconfined => None,
            security::SeccompMode::Profile(ref p) => Some(p.as_slice()),
        };
        if let Some(p) = profile {
            l.set_seccomp(Some(security::seccomp_oci(p, caps)?));
        }
    }
    Ok(l)
}

/// The container's hostname: the host's with `--network host`, none with `--uts host`.
fn hostname(inp: &SpecInput, net: &NetMode) -> Option<String> {
    if inp.host.uts_mode.str() == "host" {
        return None;
    }
    Some(match net {
        NetMode::Host => nix::unistd::gethostname()
            .ok()
            .and_then(|s| s.into_string().ok())
            .unwrap_or_else(|| inp.hostname.clone()),
        _ => inp.hostname.clone(),
    })
}

/// `HostConfig.Annotations` go to the runtime as Docker passes them; berthd adds
/// `run.berth.truthful-proc=true` unless the container says otherwise (`=false`: opt-out) or
/// the daemon runs with `--no-truthful-proc`.
fn annotations(inp: &SpecInput) -> Option<std::collections::HashMap<String, String>> {
    let mut a: std::collections::HashMap<String, String> = inp
        .host
        .annotations
        .map()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if inp.truthful_proc {
        a.entry(TRUTHFUL_PROC.to_string())
            .or_insert_with(|| "true".to_string());
    }
    (!a.is_empty()).then_some(a)
}

/// The runtime's annotation for truthful /proc files (berth-procview).
pub(crate) const TRUTHFUL_PROC: &str = "run.berth.truthful-proc";

pub(crate) fn build(inp: &SpecInput) -> Result<Spec> {
    let h = inp.host;
    let privileged = h.privileged.val();
    let caps = capabilities(h)?;
    let opts = security::security_opts(h);
    let process = process::process(inp, &caps, opts.no_new_privileges)?;
    let mounts = mounts::mounts(inp, privileged)?;
    let net = net_mode(h)?;
    let linux = linux(inp, &net, &caps, opts.seccomp)?;
    let mut root = Root::default();
    root.set_path(inp.rootfs.to_path_buf())
        .set_readonly(Some(h.readonly_rootfs.val()));
    let mut spec = Spec::default();
    spec.set_version("1.2.0".into())
        .set_process(Some(process))
        .set_root(Some(root))
        .set_hostname(hostname(inp, &net))
        .set_domainname(None)
        .set_mounts(Some(mounts))
        .set_annotations(annotations(inp))
        .set_hooks(None)
        .set_linux(Some(linux));
    Ok(spec)
}
