//! What berth does not honour yet, in ONE table: a create (or update) that sets one of these
//! fields to anything but its default is a 400 naming the field ("HostConfig.Links is
//! not supported by berth yet"), never accepted and ignored. A feature that lands deletes its
//! line (and makes the spec builder honour the field).
//!
//! The defaults are what clients send when the user asked for nothing: `null`, `0`, `false`,
//! `""`, `[]` and `{}` (docker CLI 28, docker-py 7 and compose 1.29 send many of those).
//!
//! Not here, on purpose: `Config.Healthcheck` (owned by the healthcheck work), and what a
//! client alone uses (`HostConfig.ContainerIDFile`, as dockerd ignores it).
use super::{Config, Field, HostConfig, NetworkingConfig};
use crate::{Error, Result};

/// A create request (its parts), or an update's body as a HostConfig.
pub(crate) struct Request<'a> {
    pub config: &'a Config,
    pub host: &'a HostConfig,
    pub net: Option<&'a NetworkingConfig>,
}

/// One field berth does not honour: its place in the request, whether an update can set it,
/// and what of it is set (`None`: nothing; `Some("")`: the field; `Some(detail)`: which value).
pub(crate) struct Unsupported {
    pub field: &'static str,
    pub update: bool,
    pub set: fn(&Request) -> Option<String>,
}

const fn line(field: &'static str, set: fn(&Request) -> Option<String>) -> Unsupported {
    Unsupported {
        field,
        update: false,
        set,
    }
}

/// A Resources field (the update body has them too).
const fn res(field: &'static str, set: fn(&Request) -> Option<String>) -> Unsupported {
    Unsupported {
        field,
        update: true,
        set,
    }
}

fn yes(b: bool) -> Option<String> {
    b.then(String::new)
}

fn str_set(f: &Field<String>) -> Option<String> {
    yes(!f.str().is_empty())
}

fn int_set<T: Copy + Default + PartialEq>(f: &Field<T>) -> Option<String> {
    yes(f.val() != T::default())
}

fn list_set<T>(f: &Field<Vec<T>>) -> Option<String> {
    yes(!f.items().is_empty())
}

fn quoted(v: &str) -> Option<String> {
    Some(format!("{v:?}"))
}

/// The mode if it names another container (`container:<name|id>`).
fn container_mode(f: &Field<String>) -> Option<String> {
    f.str()
        .starts_with("container:")
        .then(|| format!("{:?}", f.str()))
}

/// The table. (Keep the networking lines apart: user-defined networks delete them.)
pub(crate) const TABLE: &[Unsupported] = &[
    // Networking: links, MAC addresses and an endpoint's driver options.
    line("HostConfig.Links", |r| list_set(&r.host.links)),
    line("Config.MacAddress", |r| str_set(&r.config.mac_address)),
    line("NetworkingConfig.EndpointsConfig[].*", |r| {
        // (IPAMConfig.IPv4Address/IPv6Address and Aliases are honoured: `networks/attach.rs`.)
        let eps = r.net?.endpoints_config.get()?;
        eps.iter().find_map(|(n, e)| {
            let mut v = serde_json::to_value(e).ok()?;
            if let Some(o) = v.as_object_mut() {
                o.remove("Aliases");
                if let Some(i) = o.get_mut("IPAMConfig").and_then(|i| i.as_object_mut()) {
                    i.remove("IPv4Address");
                    i.remove("IPv6Address");
                }
            }
            (!is_zero(&v)).then(|| format!("of network {n:?} (links, MAC, driver options)"))
        })
    }),
    line("Config.NetworkDisabled", |r| {
        let mode = r.host.network_mode.str();
        yes(r.config.network_disabled.val() && !matches!(mode, "" | "none" | "default"))
    }),
    line("Config.Domainname", |r| str_set(&r.config.domainname)),
    // Volumes.
    line("HostConfig.Mounts", |r| {
        r.host.mounts.items().iter().find_map(|m| {
            let t = m.kind.str();
            matches!(t, "npipe" | "cluster" | "image").then(|| format!("of type {t:?}"))
        })
    }),
    line("HostConfig.Mounts[].VolumeOptions", |r| {
        r.host.mounts.items().iter().find_map(|m| {
            let o = m.volume_options.get()?;
            let driver = o.driver_config.get().map(|d| d.name.str()).unwrap_or("");
            if !matches!(driver, "" | "local") {
                return Some(format!("DriverConfig {driver:?}"));
            }
            if !o.subpath.str().is_empty() {
                return Some("Subpath".into());
            }
            (!o.labels.map().is_empty()).then(|| "Labels".into())
        })
    }),
    line("HostConfig.Mounts[].BindOptions", |r| {
        r.host.mounts.items().iter().find_map(|m| {
            let b = m.bind_options.get()?;
            [
                ("NonRecursive", &b.non_recursive),
                ("ReadOnlyNonRecursive", &b.read_only_non_recursive),
                ("ReadOnlyForceRecursive", &b.read_only_force_recursive),
            ]
            .into_iter()
            .find(|(_, f)| f.val())
            .map(|(n, _)| n.to_string())
        })
    }),
    line("HostConfig.VolumeDriver", |r| {
        str_set(&r.host.volume_driver)
    }),
    // Namespaces and cgroups.
    line("HostConfig.IpcMode", |r| match r.host.ipc_mode.str() {
        "none" => quoted("none"),
        _ => container_mode(&r.host.ipc_mode),
    }),
    line("HostConfig.PidMode", |r| container_mode(&r.host.pid_mode)),
    line("HostConfig.UsernsMode", |r| {
        match r.host.userns_mode.str() {
            "" | "host" => None,
            m => quoted(m),
        }
    }),
    line("HostConfig.CgroupnsMode", |r| {
        (r.host.cgroupns_mode.str() == "host").then(|| "\"host\"".into())
    }),
    line("HostConfig.Cgroup", |r| str_set(&r.host.cgroup)),
    res("HostConfig.CgroupParent", |r| {
        str_set(&r.host.cgroup_parent)
    }),
    // Resources.
    res("HostConfig.BlkioWeightDevice", |r| {
        list_set(&r.host.blkio_weight_device)
    }),
    res("HostConfig.BlkioDeviceReadBps", |r| {
        list_set(&r.host.blkio_device_read_bps)
    }),
    res("HostConfig.BlkioDeviceWriteBps", |r| {
        list_set(&r.host.blkio_device_write_bps)
    }),
    res("HostConfig.BlkioDeviceReadIOps", |r| {
        list_set(&r.host.blkio_device_read_iops)
    }),
    res("HostConfig.BlkioDeviceWriteIOps", |r| {
        list_set(&r.host.blkio_device_write_iops)
    }),
    res("HostConfig.CpuRealtimePeriod", |r| {
        int_set(&r.host.cpu_realtime_period)
    }),
    res("HostConfig.CpuRealtimeRuntime", |r| {
        int_set(&r.host.cpu_realtime_runtime)
    }),
    res("HostConfig.DeviceCgroupRules", |r| {
        list_set(&r.host.device_cgroup_rules)
    }),
    res("HostConfig.DeviceRequests", |r| {
        list_set(&r.host.device_requests)
    }),
    res("HostConfig.MemorySwappiness", |r| {
        // (-1: the default, as the docker CLI sends it.)
        // (Out of 0..=100 is `spec::validate`'s 400.)
        let v = r.host.memory_swappiness.get()?;
        (0..=100).contains(v).then(|| v.to_string())
    }),
    res("HostConfig.OomKillDisable", |r| {
        int_set(&r.host.oom_kill_disable)
    }),
    res("HostConfig.KernelMemory", |r| {
        int_set(&r.host.kernel_memory)
    }),
    res("HostConfig.KernelMemoryTCP", |r| {
        int_set(&r.host.kernel_memory_tcp)
    }),
    // Windows only.
    res("HostConfig.CpuCount", |r| int_set(&r.host.cpu_count)),
    res("HostConfig.CpuPercent", |r| int_set(&r.host.cpu_percent)),
    res("HostConfig.IOMaximumIOps", |r| {
        int_set(&r.host.io_maximum_iops)
    }),
    res("HostConfig.IOMaximumBandwidth", |r| {
        int_set(&r.host.io_maximum_bandwidth)
    }),
    // Logging: json-file (with max-size, max-file) and none only.
    line("HostConfig.LogConfig.Type", |r| {
        let t = r.host.log_type();
        super::KNOWN_LOG_DRIVERS
            .contains(&t)
            .then(|| format!("{t:?}"))
    }),
    line("HostConfig.LogConfig.Config", |r| {
        let opts = r.host.log_config.get()?.config.map();
        opts.keys()
            .find(|k| super::UNHONOURED_LOG_OPTS.contains(&k.as_str()))
            .map(|k| format!("{k:?}"))
    }),
    // Security.
    line("HostConfig.SecurityOpt", |r| {
        r.host.security_opt.list().iter().find_map(|o| {
            let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
            match (k, v) {
                ("apparmor", "unconfined") | ("label", "disable") => None,
                ("apparmor" | "label", _) => quoted(o),
                _ => None,
            }
        })
    }),
];

/// A JSON value as a client sends it for "nothing asked": null, false, 0, "", [], {} (or an
/// object or array of those).
pub(crate) fn is_zero(v: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match v {
        V::Null => true,
        V::Bool(b) => !b,
        V::Number(n) => n.as_f64() == Some(0.0),
        V::String(s) => s.is_empty(),
        V::Array(a) => a.iter().all(is_zero),
        V::Object(m) => m.values().all(is_zero),
    }
}

fn refuse(u: &Unsupported, detail: String) -> Error {
    let what = if detail.is_empty() {
        u.field.to_string()
    } else {
        format!("{} {detail}", u.field)
    };
    Error::BadParameter(format!("{what} is not supported by berth yet"))
}

/// The first field of a create request berth does not honour, as a 400.
pub(crate) fn check_create(r: &Request) -> Result<()> {
    for u in TABLE {
        if let Some(d) = (u.set)(r) {
            return Err(refuse(u, d));
        }
    }
    Ok(())
}

/// The first Resources field of an update body berth does not honour, as a 400.
pub(crate) fn check_update(host: &HostConfig) -> Result<()> {
    let config = Config::default();
    let r = Request {
        config: &config,
        host,
        net: None,
    };
    for u in TABLE.iter().filter(|u| u.update) {
        if let Some(d) = (u.set)(&r) {
            return Err(refuse(u, d));
        }
    }
    Ok(())
}
