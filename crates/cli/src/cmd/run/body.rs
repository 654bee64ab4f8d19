//! The POST /containers/create body built from run/create flags.
use super::flags::{
    env_list, health_config, parse_device, parse_mount, parse_port_spec, parse_restart,
    parse_ulimit, read_kv_file,
};

use crate::args::Matches;
use crate::term::{self};
use crate::units::ram_in_bytes;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};

/// Builds the POST /containers/create body from run/create flags.
pub fn create_body(m: &Matches, image: &str, cmd: &[String]) -> Result<Value> {
    let mut cfg = Map::new();
    let mut hc = Map::new();
    let detach = m.flag("detach");
    let interactive = m.flag("interactive");
    let tty = m.flag("tty");
    let attach: Vec<String> = m
        .values("attach")
        .iter()
        .map(|s| s.to_lowercase())
        .collect();
    for a in &attach {
        if !matches!(a.as_str(), "stdin" | "stdout" | "stderr") {
            bail!("invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR");
        }
    }
    if detach && !attach.is_empty() {
        bail!("conflicting options: cannot specify both --attach and --detach");
    }
    let (a_in, a_out, a_err) = if detach {
        (false, false, false)
    } else if attach.is_empty() {
        (interactive, true, true)
    } else {
        (
            attach.iter().any(|a| a == "stdin"),
            attach.iter().any(|a| a == "stdout"),
            attach.iter().any(|a| a == "stderr"),
        )
    };
    cfg.insert("Hostname".into(), json!(m.value("hostname").unwrap_or("")));
    cfg.insert("User".into(), json!(m.value("user").unwrap_or("")));
    cfg.insert("AttachStdin".into(), json!(a_in));
    cfg.insert("AttachStdout".into(), json!(a_out));
    cfg.insert("AttachStderr".into(), json!(a_err));
    cfg.insert("Tty".into(), json!(tty));
    cfg.insert("OpenStdin".into(), json!(interactive));
    cfg.insert("StdinOnce".into(), json!(interactive && !detach && a_in));
    cfg.insert("Env".into(), json!(env_list(m)?));
    if !cmd.is_empty() {
        cfg.insert("Cmd".into(), json!(cmd));
    }
    cfg.insert("Image".into(), json!(image));
    cfg.insert("WorkingDir".into(), json!(m.value("workdir").unwrap_or("")));
    if m.changed("entrypoint") {
        let ep = m.value("entrypoint").unwrap_or("");
        cfg.insert(
            "Entrypoint".into(),
            if ep.is_empty() {
                json!([""])
            } else {
                json!([ep])
            },
        );
    }
    let mut labels = Map::new();
    for f in m.values("label-file") {
        for l in read_kv_file(&f, "label")? {
            let (k, v) = l.split_once('=').unwrap_or((&l, ""));
            labels.insert(k.to_string(), json!(v));
        }
    }
    for l in m.values("label") {
        let (k, v) = l.split_once('=').unwrap_or((&l, ""));
        labels.insert(k.to_string(), json!(v));
    }
    cfg.insert("Labels".into(), Value::Object(labels));
    if let Some(s) = m.value("stop-signal") {
        cfg.insert("StopSignal".into(), json!(s));
    }
    if let Some(s) = m.value("stop-timeout") {
        cfg.insert("StopTimeout".into(), json!(s.parse::<i64>()?));
    }
    // ports
    let mut exposed = Map::new();
    let mut bindings = Map::new();
    for p in m.values("publish") {
        let specs =
            parse_port_spec(&p).with_context(|| format!("invalid --publish value {p:?}"))?;
        for (key, b) in specs {
            exposed.insert(key.clone(), json!({}));
            let entry = bindings.entry(key).or_insert_with(|| json!([]));
            if let (Some((ip, host)), Some(a)) = (b, entry.as_array_mut()) {
                a.push(json!({"HostIp": ip, "HostPort": host}));
            }
        }
    }
    for e in m.values("expose") {
        let key = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        exposed.insert(key, json!({}));
    }
    if !exposed.is_empty() {
        cfg.insert("ExposedPorts".into(), Value::Object(exposed));
    }
    // volumes
    let mut binds = Vec::new();
    let mut anon = Map::new();
    for v in m.values("volume") {
        let parts: Vec<&str> = v.split(':').collect();
        if parts.len() == 1 {
            if !v.starts_with('/') {
                bail!("invalid volume specification: '{v}': invalid mount config for type \"volume\": invalid mount path: '{v}' mount path must be absolute");
            }
            anon.insert(v.clone(), json!({}));
        } else {
            if parts.len() > 3 || parts[1].is_empty() || !parts[1].starts_with('/') {
                bail!("invalid volume specification: '{v}'");
            }
            binds.push(v.clone());
        }
    }
    if !anon.is_empty() {
        cfg.insert("Volumes".into(), Value::Object(anon));
    }
    if let Some(h) = health_config(m)? {
        cfg.insert("Healthcheck".into(), h);
    }

    hc.insert("Binds".into(), json!(binds));
    hc.insert("PortBindings".into(), Value::Object(bindings));
    hc.insert("PublishAllPorts".into(), json!(m.flag("publish-all")));
    let network = m.value("network").or(m.value("net")).unwrap_or("default");
    hc.insert("NetworkMode".into(), json!(network));
    hc.insert(
        "RestartPolicy".into(),
        parse_restart(m.value("restart").unwrap_or("no"))?,
    );
    hc.insert("AutoRemove".into(), json!(m.flag("rm")));
    if m.flag("rm") && m.value("restart").is_some_and(|r| r != "no") {
        bail!("conflicting options: cannot specify both --restart and --rm");
    }
    hc.insert("Privileged".into(), json!(m.flag("privileged")));
    hc.insert("ReadonlyRootfs".into(), json!(m.flag("read-only")));
    hc.insert("CapAdd".into(), json!(m.values("cap-add")));
    hc.insert("CapDrop".into(), json!(m.values("cap-drop")));
    hc.insert("SecurityOpt".into(), json!(m.values("security-opt")));
    hc.insert("Dns".into(), json!(m.values("dns")));
    hc.insert("DnsOptions".into(), json!(m.values("dns-option")));
    hc.insert("DnsSearch".into(), json!(m.values("dns-search")));
    hc.insert("ExtraHosts".into(), json!(m.values("add-host")));
    hc.insert("GroupAdd".into(), json!(m.values("group-add")));
    hc.insert("VolumesFrom".into(), json!(m.values("volumes-from")));
    if m.flag("init") {
        hc.insert("Init".into(), json!(true));
    }
    for (flag, key) in [
        ("ipc", "IpcMode"),
        ("pid", "PidMode"),
        ("uts", "UTSMode"),
        ("userns", "UsernsMode"),
        ("cgroupns", "CgroupnsMode"),
        ("runtime", "Runtime"),
    ] {
        if let Some(v) = m.value(flag) {
            hc.insert(key.into(), json!(v));
        }
    }
    if let Some(v) = m.value("memory") {
        hc.insert(
            "Memory".into(),
            json!(ram_in_bytes(v).map_err(|e| anyhow!(e))?),
        );
    }
    if let Some(v) = m.value("memory-reservation") {
        hc.insert(
            "MemoryReservation".into(),
            json!(ram_in_bytes(v).map_err(|e| anyhow!(e))?),
        );
    }
    if let Some(v) = m.value("memory-swap") {
        let n = if v == "-1" {
            -1
        } else {
            ram_in_bytes(v).map_err(|e| anyhow!(e))?
        };
        hc.insert("MemorySwap".into(), json!(n));
    }
    if let Some(v) = m.value("shm-size") {
        hc.insert(
            "ShmSize".into(),
            json!(ram_in_bytes(v).map_err(|e| anyhow!(e))?),
        );
    }
    if let Some(v) = m.value("cpus") {
        let f: f64 = v
            .parse()
            .map_err(|_| anyhow!("invalid --cpus value {v:?}"))?;
        hc.insert("NanoCpus".into(), json!((f * 1e9) as i64));
    }
    if let Some(v) = m.value("cpu-shares") {
        hc.insert("CpuShares".into(), json!(v.parse::<i64>()?));
    }
    if let Some(v) = m.value("cpuset-cpus") {
        hc.insert("CpusetCpus".into(), json!(v));
    }
    if let Some(v) = m.value("pids-limit") {
        hc.insert("PidsLimit".into(), json!(v.parse::<i64>()?));
    }
    if m.flag("oom-kill-disable") {
        hc.insert("OomKillDisable".into(), json!(true));
    }
    let mut ulimits = Vec::new();
    for u in m.values("ulimit") {
        ulimits.push(parse_ulimit(&u)?);
    }
    hc.insert("Ulimits".into(), json!(ulimits));
    let mut devices = Vec::new();
    for d in m.values("device") {
        devices.push(parse_device(&d)?);
    }
    hc.insert("Devices".into(), json!(devices));
    let mut mounts = Vec::new();
    for mt in m.values("mount") {
        mounts.push(
            parse_mount(&mt)
                .with_context(|| format!("invalid argument {mt:?} for \"--mount\" flag"))?,
        );
    }
    if !mounts.is_empty() {
        hc.insert("Mounts".into(), json!(mounts));
    }
    let mut tmpfs = Map::new();
    for t in m.values("tmpfs") {
        let (p, o) = t.split_once(':').unwrap_or((&t, ""));
        tmpfs.insert(p.to_string(), json!(o));
    }
    if !tmpfs.is_empty() {
        hc.insert("Tmpfs".into(), Value::Object(tmpfs));
    }
    let mut sysctls = Map::new();
    for s in m.values("sysctl") {
        let (k, v) = s.split_once('=').ok_or_else(|| {
            anyhow!("invalid argument {s:?} for \"--sysctl\" flag: expected key=value")
        })?;
        sysctls.insert(k.into(), json!(v));
    }
    if !sysctls.is_empty() {
        hc.insert("Sysctls".into(), Value::Object(sysctls));
    }
    let mut annotations = Map::new();
    for a in m.values("annotation") {
        let (k, v) = a.split_once('=').ok_or_else(|| {
            anyhow!("invalid argument {a:?} for \"--annotation\" flag: expected key=value")
        })?;
        annotations.insert(k.into(), json!(v));
    }
    annotations.extend(
        crate::netrate::annotations(&m.values("network-rate"))?
            .into_iter()
            .filter(|(_, v)| v != ""),
    );
    if !annotations.is_empty() {
        hc.insert("Annotations".into(), Value::Object(annotations));
    }
    if let Some(d) = m.value("log-driver") {
        let mut opts = Map::new();
        for o in m.values("log-opt") {
            let (k, v) = o.split_once('=').unwrap_or((&o, ""));
            opts.insert(k.into(), json!(v));
        }
        hc.insert("LogConfig".into(), json!({"Type": d, "Config": opts}));
    }
    if let Some((r, c)) = term::size(1).or_else(|| term::size(0)).filter(|_| tty) {
        hc.insert("ConsoleSize".into(), json!([r, c]));
    }
    let mut body = cfg;
    body.insert("HostConfig".into(), Value::Object(hc));
    let mut endpoints = Map::new();
    let aliases = m.values("network-alias");
    if !matches!(network, "default" | "bridge" | "host" | "none")
        && !network.starts_with("container:")
    {
        let mut ep = Map::new();
        if !aliases.is_empty() {
            ep.insert("Aliases".into(), json!(aliases));
        }
        let mut ipam = Map::new();
        if let Some(ip) = m.value("ip") {
            ipam.insert("IPv4Address".into(), json!(ip));
        }
        if let Some(ip6) = m.value("ip6") {
            ipam.insert("IPv6Address".into(), json!(ip6));
        }
        if !ipam.is_empty() {
            ep.insert("IPAMConfig".into(), Value::Object(ipam));
        }
        endpoints.insert(network.into(), Value::Object(ep));
    }
    body.insert(
        "NetworkingConfig".into(),
        json!({"EndpointsConfig": endpoints}),
    );
    Ok(Value::Object(body))
}
