//! /info, /version, /system/df.
use crate::model::Status;
use crate::util::internal;
use crate::*;
use serde_json::{json, Value};

fn uname() -> (String, String, String) {
    let u = nix::sys::utsname::uname();
    match u {
        Ok(u) => (
            u.sysname().to_string_lossy().into_owned(),
            u.release().to_string_lossy().into_owned(),
            u.nodename().to_string_lossy().into_owned(),
        ),
        Err(_) => ("Linux".into(), String::new(), String::new()),
    }
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("PRETTY_NAME="))
                .map(|l| l["PRETTY_NAME=".len()..].trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

pub(crate) fn info(e: &Engine) -> Result<Value> {
    let s = &e.inner.0;
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    let total;
    {
        let reg = s.containers.lock();
        total = reg.by_id.len();
        for c in reg.by_id.values() {
            match c.rec.state.status {
                Status::Running | Status::Restarting => running += 1,
                Status::Paused => paused += 1,
                _ => stopped += 1,
            }
        }
    }
    let images = s.images.list().map(|l| l.len()).unwrap_or(0);
    let (_, kernel, host) = uname();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    let cgv = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    let id = std::fs::read_to_string("/etc/machine-id")
        .unwrap_or_default()
        .trim()
        .to_string();
    Ok(json!({
        "ID": id,
        "Containers": total,
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": images,
        "Driver": s.images.snapshotter_kind().to_string(),
        "DriverStatus": [["Backing Filesystem", "extfs"]],
        "Plugins": {"Volume": ["local"], "Network": ["host", "null"], "Authorization": null, "Log": ["json-file"]},
        "MemoryLimit": true,
        "SwapLimit": true,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": false,
        "Debug": false,
        "NFd": std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0),
        "OomKillDisable": false,
        "NGoroutines": 0,
        "SystemTime": crate::util::now_rfc3339(),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgv,
        "NEventsListener": 0,
        "KernelVersion": kernel,
        "OperatingSystem": os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
            "IndexConfigs": {},
            "Mirrors": [],
        },
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": mem,
        "DockerRootDir": s.cfg.root,
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": host,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": {"berth": {"path": "berth-runtime"}},
        "DefaultRuntime": "berth",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "docker-init",
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": ""},
        "InitCommit": {"ID": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": null,
    }))
}

pub(crate) fn version() -> Value {
    let (os, kernel, _) = uname();
    json!({
        "Platform": {"Name": "berth"},
        "Components": [{"Name": "Engine", "Version": env!("CARGO_PKG_VERSION"), "Details": {"Os": "linux", "Arch": "amd64", "KernelVersion": kernel.clone(), "Experimental": "false", "MinAPIVersion": "1.24", "ApiVersion": "1.45", "GitCommit": "", "GoVersion": "n/a (rust)", "BuildTime": ""}}],
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": "1.45",
        "MinAPIVersion": "1.24",
        "GitCommit": "",
        "GoVersion": "n/a (rust)",
        "Os": os.to_lowercase(),
        "Arch": "amd64",
        "KernelVersion": kernel,
        "BuildTime": "",
    })
}

/// `GET /system/df?type=&verbose=`: each kind's usage by real disk use (blocks, hard links
/// once). Docker's legacy fields (`LayersSize`, `Images`, `Containers`, `Volumes`,
/// `BuildCache`: what API <= 1.51 clients read; a kind not asked for by `type` is null) and the
/// v1.52 summaries (`ImageUsage`, `ContainerUsage`, `VolumeUsage`, `BuildCacheUsage`:
/// counts, `TotalSize`, `Reclaimable` — what the kind's prune frees: images no container
/// uses, stopped containers, volumes no container mounts — and `Items` when `verbose`).
pub(crate) fn df(e: &Engine, types: &[String], verbose: bool) -> Result<Value> {
    const KINDS: [&str; 4] = ["container", "image", "volume", "build-cache"];
    if let Some(t) = types.iter().find(|t| !KINDS.contains(&t.as_str())) {
        return Err(Error::BadParameter(format!("unknown object type: {t}")));
    }
    let want = |k: &str| types.is_empty() || types.iter().any(|t| t == k);
    let s = &e.inner.0;
    let mut out = serde_json::Map::new();
    if want("image") {
        let images = crate::images::list(e, true, &Value::Null)?;
        let used: Vec<String> = images
            .iter()
            .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
            .filter_map(|i| i["Id"].as_str().map(String::from))
            .collect();
        let sizes = s.images.layer_sizes();
        let layers = LayerUse::of(&sizes, &used);
        let imgs: Vec<Value> = images
            .into_iter()
            .map(|mut i| {
                i["SharedSize"] = json!(layers.shared(i["Id"].as_str().unwrap_or("")));
                i["VirtualSize"] = i["Size"].clone();
                i
            })
            .collect();
        let (reclaim, layers) = (layers.reclaimable(), layers.total());
        let active = used.len();
        out.insert(
            "ImageUsage".into(),
            usage(active, &imgs, layers, reclaim, verbose),
        );
        out.insert("LayersSize".into(), json!(layers));
        out.insert("Images".into(), json!(imgs));
    }
    if want("container") {
        let cs = containers_df(e)?;
        let total: u64 = cs.iter().map(|c| size_of(c, "SizeRw")).sum();
        let stopped = |c: &&Value| c["State"] != "running" && c["State"] != "paused";
        let reclaim: u64 = cs
            .iter()
            .filter(stopped)
            .map(|c| size_of(c, "SizeRw"))
            .sum();
        let active = cs.len() - cs.iter().filter(stopped).count();
        out.insert(
            "ContainerUsage".into(),
            usage(active, &cs, total, reclaim, verbose),
        );
        out.insert("Containers".into(), json!(cs));
    }
    if want("volume") {
        let vs = crate::volumes::df(s)?;
        let vsize = |v: &Value| v["UsageData"]["Size"].as_u64().unwrap_or(0);
        let unused = |v: &&Value| v["UsageData"]["RefCount"].as_u64().unwrap_or(0) == 0;
        let total: u64 = vs.iter().map(vsize).sum();
        let reclaim: u64 = vs.iter().filter(unused).map(vsize).sum();
        let active = vs.len() - vs.iter().filter(unused).count();
        out.insert(
            "VolumeUsage".into(),
            usage(active, &vs, total, reclaim, verbose),
        );
        out.insert("Volumes".into(), json!(vs));
    }
    if want("build-cache") {
        let (cache, active, total, reclaim) = crate::buildcache::df(e);
        out.insert(
            "BuildCacheUsage".into(),
            usage(active, &cache, total, reclaim, verbose),
        );
        out.insert("BuildCache".into(), json!(cache));
    }
    for k in [
        "LayersSize",
        "Images",
        "Containers",
        "Volumes",
        "BuildCache",
    ] {
        out.entry(k).or_insert(Value::Null);
    }
    Ok(Value::Object(out))
}

fn size_of(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

/// A v1.52 `*DiskUsage` object.
/// The image store's layers, each counted once however many images share it.
struct LayerUse<'a> {
    /// Per layer (chain ID): its size, how many images have it, whether a used one does.
    layers: std::collections::HashMap<&'a berth_image::Digest, (u64, usize, bool)>,
    images: &'a [(String, Vec<(berth_image::Digest, u64)>)],
}

impl<'a> LayerUse<'a> {
    fn of(images: &'a [(String, Vec<(berth_image::Digest, u64)>)], used: &[String]) -> Self {
        let mut layers = std::collections::HashMap::new();
        for (id, ls) in images {
            let in_use = used.contains(id);
            for (c, n) in ls {
                let e = layers.entry(c).or_insert((*n, 0, false));
                e.1 += 1;
                e.2 |= in_use;
            }
        }
        LayerUse { layers, images }
    }

    /// `LayersSize`: every layer once.
    fn total(&self) -> u64 {
        self.layers.values().map(|l| l.0).sum()
    }

    /// What `image prune -a` frees: the layers no used image has.
    fn reclaimable(&self) -> u64 {
        self.layers.values().filter(|l| !l.2).map(|l| l.0).sum()
    }

    /// An image's `SharedSize`: its layers that other images have too.
    fn shared(&self, id: &str) -> u64 {
        let Some((_, ls)) = self.images.iter().find(|(i, _)| i == id) else {
            return 0;
        };
        ls.iter()
            .filter(|(c, _)| self.layers.get(c).is_some_and(|l| l.1 > 1))
            .map(|(_, n)| n)
            .sum()
    }
}

fn usage(active: usize, items: &[Value], total: u64, reclaim: u64, verbose: bool) -> Value {
    let mut u = json!({"ActiveCount": active, "TotalCount": items.len(),
        "Reclaimable": reclaim, "TotalSize": total});
    if verbose && !items.is_empty() {
        u["Items"] = json!(items);
    }
    u
}

/// Every container as `GET /containers/json?all=1&size=1` lists it (`SizeRw`: its read-write
/// layer's disk use; `SizeRootFs`: that plus its image).
fn containers_df(e: &Engine) -> Result<Vec<Value>> {
    let s = &e.inner.0;
    let ids: Vec<String> = s.containers.lock().by_id.keys().cloned().collect();
    let mut containers = Vec::new();
    for id in ids {
        let mut v = crate::containers::list(
            e,
            &ListOptions {
                all: true,
                limit: None,
                size: false,
                filters: json!({"id": [id.clone()]}),
            },
        )
        .map_err(|er| internal("list", er))?
        .into_iter()
        .next()
        .unwrap_or(Value::Null);
        if v.is_null() {
            continue;
        }
        let rw = crate::archive::size_rw(s, &id).unwrap_or(0);
        let image = v["ImageID"].as_str().unwrap_or("").to_string();
        let img = s.images.resolve(&image).map(|i| i.size).unwrap_or(0);
        v["SizeRw"] = json!(rw);
        v["SizeRootFs"] = json!(rw + img);
        containers.push(v);
    }
    Ok(containers)
}
