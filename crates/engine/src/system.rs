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

pub(crate) fn df(e: &Engine) -> Result<Value> {
    let s = &e.inner.0;
    let images = crate::images::list(e, true, &Value::Null)?;
    let layers: u64 = images.iter().map(|i| i["Size"].as_u64().unwrap_or(0)).sum();
    let recs: Vec<crate::state::Record> = s
        .containers
        .lock()
        .by_id
        .values()
        .map(|c| c.rec.clone())
        .collect();
    let mut containers = Vec::new();
    for r in recs {
        let mut v = crate::containers::list(
            e,
            &ListOptions {
                all: true,
                limit: None,
                size: false,
                filters: json!({"id": [r.id.clone()]}),
            },
        )
        .map_err(|er| internal("list", er))?
        .into_iter()
        .next()
        .unwrap_or(Value::Null);
        if v.is_null() {
            continue;
        }
        v["SizeRw"] = json!(crate::archive::size_rw(s, &r.id).unwrap_or(0));
        v["SizeRootFs"] = json!(s.images.resolve(&r.image_id).map(|i| i.size).unwrap_or(0));
        containers.push(v);
    }
    let imgs: Vec<Value> = images
        .into_iter()
        .map(|mut i| {
            i["SharedSize"] = json!(0);
            i["VirtualSize"] = i["Size"].clone();
            i
        })
        .collect();
    Ok(
        json!({"LayersSize": layers, "Images": imgs, "Containers": containers, "Volumes": crate::volumes::df(s)?, "BuildCache": []}),
    )
}
