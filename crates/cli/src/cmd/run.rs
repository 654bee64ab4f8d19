//! run, create, start, attach, exec: the commands that may attach to a container.

use crate::args::Matches;
use crate::client::Client;
use crate::cmd::image::pull_image;
use crate::http::enc;
use crate::stream::{pump, PumpEnd, PumpOpts};
use crate::term::{self, RawGuard};
use crate::units::{parse_go_duration, ram_in_bytes};
use crate::{fail, CmdResult, Ctx};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};
use std::io::{BufRead, Write};

const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// Splits comma-free list values (docker's `list` flags are repeatable, not comma-split).
fn read_kv_file(path: &str, what: &str) -> Result<Vec<String>> {
    let f = std::fs::File::open(path).with_context(|| format!("open {what} file {path}"))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("read {what} file {path}"))?;
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.contains(char::is_whitespace) && !t.contains('=') {
            bail!("{path}:{}: variable '{t}' contains whitespaces", n + 1);
        }
        out.push(t.to_string());
    }
    Ok(out)
}

/// `-e` / `--env-file` values: `K=V` kept, bare `K` taken from our environment (dropped when unset).
pub fn env_list(m: &Matches) -> Result<Vec<String>> {
    let mut raw = Vec::new();
    for f in m.values("env-file") {
        raw.extend(read_kv_file(&f, "env")?);
    }
    raw.extend(m.values("env"));
    let mut out = Vec::new();
    for e in raw {
        if e.starts_with('=') {
            bail!("invalid environment variable: {e}");
        }
        if e.contains('=') {
            out.push(e);
        } else if let Ok(v) = std::env::var(&e) {
            out.push(format!("{e}={v}"));
        }
    }
    Ok(out)
}

type PortBinding = (String, Option<(String, String)>);

/// `a` or `a-b` -> inclusive range.
fn port_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.parse().ok()?, b.parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => s.parse().ok().map(|a| (a, a)),
    }
}

/// Parses `-p`, expanding ranges (`8000-8001:80-81`) into one binding per port.
pub fn parse_port_spec(p: &str) -> Result<Vec<PortBinding>> {
    // [ip:][hostPort:]containerPort[/proto]
    let (body, proto) = match p.rsplit_once('/') {
        Some((b, pr)) => (b, pr.to_string()),
        None => (p, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        bail!("invalid proto: {proto}");
    }
    let (ip, host, cport) = if let Some(rest) = body.strip_prefix('[') {
        let (ip, r) = rest
            .split_once("]:")
            .ok_or_else(|| anyhow!("invalid IP address in port spec {p:?}"))?;
        let (h, c) = r
            .split_once(':')
            .ok_or_else(|| anyhow!("invalid port spec {p:?}"))?;
        (ip.to_string(), Some(h.to_string()), c.to_string())
    } else {
        let parts: Vec<&str> = body.split(':').collect();
        match parts.len() {
            1 => (String::new(), None, parts[0].to_string()),
            2 => (
                String::new(),
                Some(parts[0].to_string()),
                parts[1].to_string(),
            ),
            3 => (
                parts[0].to_string(),
                Some(parts[1].to_string()),
                parts[2].to_string(),
            ),
            _ => bail!("invalid port format for --publish: {p}"),
        }
    };
    let (c0, c1) = port_range(&cport).ok_or_else(|| anyhow!("invalid containerPort: {cport}"))?;
    let hrange = match &host {
        Some(h) if !h.is_empty() => {
            Some(port_range(h).ok_or_else(|| anyhow!("invalid hostPort: {h}"))?)
        }
        _ => None,
    };
    if let Some((h0, h1)) = hrange {
        if h1 - h0 != c1 - c0 && h0 != h1 {
            bail!("invalid ranges specified for container and host Ports: {cport} and {h0}-{h1}");
        }
    }
    let mut out = Vec::new();
    for (i, c) in (c0..=c1).enumerate() {
        let key = format!("{c}/{proto}");
        let b = match (&host, hrange) {
            // a host range as wide as the container range maps pairwise;
            // a single host port with a single container port maps directly
            (_, Some((h0, h1))) if h0 != h1 || c0 == c1 => {
                Some((ip.clone(), (h0 + i as u16).to_string()))
            }
            (_, Some((h0, _))) => Some((ip.clone(), h0.to_string())),
            (Some(_), None) => Some((ip.clone(), String::new())),
            (None, None) => None,
        };
        out.push((key, b));
    }
    Ok(out)
}

fn parse_mount(s: &str) -> Result<Value> {
    let mut m = Map::new();
    let mut ty = "volume".to_string();
    let mut bind_opts = Map::new();
    let mut vol_opts = Map::new();
    let mut tmpfs_opts = Map::new();
    for part in s.split(',') {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.trim().to_lowercase(), v.trim().to_string()),
            None => (part.trim().to_lowercase(), String::new()),
        };
        match k.as_str() {
            "type" => ty = v,
            "source" | "src" => {
                m.insert("Source".into(), json!(v));
            }
            "target" | "destination" | "dst" => {
                m.insert("Target".into(), json!(v));
            }
            "readonly" | "ro" => {
                let ro = v.is_empty() || matches!(v.as_str(), "1" | "true");
                m.insert("ReadOnly".into(), json!(ro));
            }
            "bind-propagation" => {
                bind_opts.insert("Propagation".into(), json!(v));
            }
            "volume-nocopy" => {
                vol_opts.insert(
                    "NoCopy".into(),
                    json!(v.is_empty() || v == "true" || v == "1"),
                );
            }
            "tmpfs-size" => {
                tmpfs_opts.insert(
                    "SizeBytes".into(),
                    json!(ram_in_bytes(&v).map_err(|e| anyhow!(e))?),
                );
            }
            "tmpfs-mode" => {
                let mode =
                    u32::from_str_radix(&v, 8).map_err(|_| anyhow!("invalid tmpfs-mode {v:?}"))?;
                tmpfs_opts.insert("Mode".into(), json!(mode));
            }
            "consistency" => {}
            "" => {}
            other => bail!("unexpected key '{other}' in '{s}'"),
        }
    }
    if !m.contains_key("Target") {
        bail!("target is required in --mount {s:?}");
    }
    m.insert("Type".into(), json!(ty));
    if !bind_opts.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind_opts));
    }
    if !vol_opts.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(vol_opts));
    }
    if !tmpfs_opts.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs_opts));
    }
    Ok(Value::Object(m))
}

fn parse_ulimit(s: &str) -> Result<Value> {
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid ulimit argument: {s}"))?;
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (a, b),
        None => (vals, vals),
    };
    let p = |x: &str| {
        x.parse::<i64>()
            .map_err(|_| anyhow!("invalid ulimit value {x:?} in {s}"))
    };
    let (soft, hard) = (p(soft)?, p(hard)?);
    if soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

fn parse_device(s: &str) -> Result<Value> {
    let parts: Vec<&str> = s.split(':').collect();
    let (host, ctr, perms) = match parts.len() {
        1 => (parts[0], parts[0], "rwm"),
        2 if parts[1].chars().all(|c| "rwm".contains(c)) && !parts[1].starts_with('/') => {
            (parts[0], parts[0], parts[1])
        }
        2 => (parts[0], parts[1], "rwm"),
        3 => (parts[0], parts[1], parts[2]),
        _ => bail!("invalid device specification: {s}"),
    };
    Ok(json!({"PathOnHost": host, "PathInContainer": ctr, "CgroupPermissions": perms}))
}

fn parse_restart(s: &str) -> Result<Value> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (
            n,
            c.parse::<i64>().map_err(|_| {
                anyhow!("invalid restart policy format: maximum retry count must be an integer")
            })?,
        ),
        None => (s, 0),
    };
    match name {
        "no" | "" => Ok(json!({"Name": "no", "MaximumRetryCount": 0})),
        "always" | "unless-stopped" | "on-failure" => Ok(json!({"Name": name, "MaximumRetryCount": count})),
        _ => bail!("invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"),
    }
}

fn dur_ns(v: &str) -> Result<i64> {
    let (neg, abs) = match v.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let secs = if abs == "0" {
        Some(0.0)
    } else {
        parse_go_duration(abs)
    };
    let ns = secs
        .map(|s| (s * 1e9).round() as i64)
        .ok_or_else(|| anyhow!("invalid duration {v:?}"))?;
    Ok(if neg { -ns } else { ns })
}

/// The `--health-*` / `--no-healthcheck` flags as the docker CLI sends them: every field, a
/// `null` Test without `--health-cmd` (the image's stays).
fn health_config(m: &Matches) -> Result<Option<Value>> {
    let dur = |flag: &str| -> Result<i64> {
        let ns = m.value(flag).map(dur_ns).transpose()?.unwrap_or(0);
        if ns < 0 {
            bail!("--{flag} cannot be negative");
        }
        Ok(ns)
    };
    let cmd = m.value("health-cmd").filter(|c| !c.is_empty());
    let (interval, timeout) = (dur("health-interval")?, dur("health-timeout")?);
    let (start_period, start_interval) =
        (dur("health-start-period")?, dur("health-start-interval")?);
    let retries: i64 = match m.value("health-retries") {
        Some(v) => v
            .parse()
            .map_err(|_| anyhow!("invalid argument {v:?} for \"--health-retries\" flag"))?,
        None => 0,
    };
    let any = cmd.is_some()
        || interval != 0
        || timeout != 0
        || start_period != 0
        || start_interval != 0
        || retries != 0;
    if m.flag("no-healthcheck") {
        if any {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(Some(json!({"Test": ["NONE"]})));
    }
    if !any {
        return Ok(None);
    }
    if retries < 0 {
        bail!("--health-retries cannot be negative");
    }
    Ok(Some(json!({
        "Test": cmd.map(|c| json!(["CMD-SHELL", c])),
        "Interval": interval,
        "Timeout": timeout,
        "StartPeriod": start_period,
        "StartInterval": start_interval,
        "Retries": retries,
    })))
}

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

fn normalize_for_pull(image: &str) -> String {
    let (repo, tag) = crate::output::split_repo_tag(image);
    if image.contains('@') {
        image.to_string()
    } else {
        format!("{repo}:{tag}")
    }
}

/// Creates the container, pulling the image when the daemon does not have it.
pub fn create_container(ctx: &Ctx, m: &Matches) -> Result<String> {
    let image = &m.args[0];
    let cmd = &m.args[1..];
    let body = create_body(m, image, cmd)?;
    let mut q = Vec::new();
    if let Some(n) = m.value("name") {
        q.push(format!("name={}", enc(n)));
    }
    if let Some(p) = m.value("platform") {
        q.push(format!("platform={}", enc(p)));
    }
    let path = if q.is_empty() {
        "/containers/create".to_string()
    } else {
        format!("/containers/create?{}", q.join("&"))
    };
    let pull = m.value("pull").unwrap_or("missing");
    if !matches!(pull, "always" | "missing" | "never") {
        bail!("invalid pull option: '{pull}': must be one of \"always\", \"missing\" or \"never\"");
    }
    let quiet = m.flag("quiet");
    if pull == "always" {
        pull_image(ctx, image, m.value("platform"), quiet, true)?;
    }
    let resp = match ctx.client.post_json(&path, Some(&body)) {
        Ok(v) => v,
        Err(e)
            if e.is_not_found() && e.message().contains("No such image") && pull == "missing" =>
        {
            eprintln!(
                "Unable to find image '{}' locally",
                normalize_for_pull(image)
            );
            pull_image(ctx, image, m.value("platform"), quiet, true)?;
            ctx.client.post_json(&path, Some(&body))?
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(ws) = resp.get("Warnings").and_then(Value::as_array) {
        for w in ws.iter().filter_map(Value::as_str) {
            eprintln!("WARNING: {w}");
        }
    }
    let id = resp
        .get("Id")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("daemon's create response has no Id"))?
        .to_string();
    if let Some(f) = m.value("cidfile") {
        write_new_file(f, id.as_bytes()).with_context(|| format!("write container ID file {f}"))?;
    }
    Ok(id)
}

fn write_new_file(path: &str, data: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

pub fn create(ctx: &Ctx, m: &Matches) -> CmdResult {
    let id = create_container(ctx, m)?;
    println!("{id}");
    Ok(0)
}

/// docker's mapping of start errors to 126/127.
fn start_error_code(msg: &str) -> i32 {
    let l = msg.to_lowercase();
    if l.contains("executable file not found")
        || l.contains("no such file or directory")
        || l.contains("system cannot find the file specified")
    {
        127
    } else if l.contains("permission denied")
        || l.contains("cannot execute binary file")
        || l.contains("exec format error")
    {
        126
    } else {
        125
    }
}

fn resize(client: &Client, path_prefix: &str) {
    if let Some((h, w)) = term::size(1).or_else(|| term::size(0)) {
        let _ = client.post_ok(&format!("{path_prefix}/resize?h={h}&w={w}"), None);
    }
}

/// Sets up the signal thread: SIGWINCH -> resize (tty), others -> kill (proxy).
fn signals(
    ctx: &Ctx,
    id: &str,
    tty: bool,
    proxy: bool,
    resize_prefix: Option<String>,
) -> Result<()> {
    let mut sigs = Vec::new();
    if tty && resize_prefix.is_some() {
        sigs.push(libc::SIGWINCH);
    }
    if proxy {
        sigs.extend_from_slice(term::PROXY_SIGNALS);
    } else if tty {
        // not proxied: leave, but never with the terminal still in raw mode
        sigs.extend_from_slice(&[libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT]);
    }
    if sigs.is_empty() {
        return Ok(());
    }
    let client = ctx.client.fork();
    let id = id.to_string();
    term::spawn_signal_thread(&sigs, move |sig| {
        if sig == libc::SIGWINCH {
            if let Some(p) = &resize_prefix {
                resize(&client, p);
            }
        } else if proxy {
            let _ = client.post_ok(
                &format!("/containers/{id}/kill?signal={}", term::signal_name(sig)),
                None,
            );
        } else {
            term::restore();
            std::process::exit(128 + sig);
        }
    })
    .context("start the signal thread")
}

fn detach_keys(m: &Matches) -> Result<(String, Vec<u8>)> {
    let s = m
        .value("detach-keys")
        .map(str::to_string)
        .unwrap_or_else(|| DEFAULT_DETACH_KEYS.to_string());
    let keys =
        term::parse_detach_keys(&s).map_err(|e| anyhow!("invalid detach keys ({s}): {e}"))?;
    Ok((s, keys))
}

pub fn run(ctx: &Ctx, m: &Matches) -> CmdResult {
    let detach = m.flag("detach");
    let tty = m.flag("tty");
    let interactive = m.flag("interactive");
    if detach && m.flag("rm") && !ctx.client.at_least("1.25") {
        bail!("conflicting options: --rm and -d");
    }
    if tty && interactive && !term::is_tty(0) {
        return Err(fail(1, "the input device is not a TTY"));
    }
    let (_, keys) = detach_keys(m)?;
    let id = create_container(ctx, m)?;
    if detach {
        if let Err(e) = ctx.client.post_ok(&format!("/containers/{id}/start"), None) {
            let code = start_error_code(&e.message());
            if m.flag("rm") {
                let _ = ctx
                    .client
                    .delete(&format!("/containers/{id}?force=1&v=1"))
                    .map(|r| r.bytes());
            }
            return Err(fail(
                code,
                format!("berth: {e}\n\nRun 'berth run --help' for more information"),
            ));
        }
        println!("{id}");
        return Ok(0);
    }
    let body = create_body(m, &m.args[0], &m.args[1..])?;
    let a_in = body["AttachStdin"].as_bool().unwrap_or(false);
    let a_out = body["AttachStdout"].as_bool().unwrap_or(true);
    let a_err = body["AttachStderr"].as_bool().unwrap_or(true);
    attach_start_wait(
        ctx,
        &id,
        tty,
        a_in,
        a_out,
        a_err,
        m.flag("sig-proxy"),
        keys,
        m.flag("rm"),
        "run",
    )
}

/// attach (hijack) -> wait -> start -> stream -> exit status, as docker's run/start -a do.
#[allow(clippy::too_many_arguments)]
fn attach_start_wait(
    ctx: &Ctx,
    id: &str,
    tty: bool,
    a_in: bool,
    a_out: bool,
    a_err: bool,
    sig_proxy: bool,
    keys: Vec<u8>,
    auto_remove: bool,
    cmd: &str,
) -> CmdResult {
    let attached = a_in || a_out || a_err;
    let mut conn = None;
    if attached {
        let q = format!(
            "/containers/{id}/attach?stream=1&stdin={}&stdout={}&stderr={}",
            a_in as u8, a_out as u8, a_err as u8
        );
        conn = Some(ctx.client.hijack("POST", &q, None)?);
    }
    let cond = if auto_remove && ctx.client.at_least("1.30") {
        "removed"
    } else {
        "next-exit"
    };
    let wait = ctx
        .client
        .post(&format!("/containers/{id}/wait?condition={cond}"), None)?;
    let raw = if tty && a_in && term::is_tty(0) {
        Some(RawGuard::enter().context("set terminal raw mode")?)
    } else {
        None
    };
    signals(
        ctx,
        id,
        tty,
        sig_proxy && !tty,
        if tty {
            Some(format!("/containers/{id}"))
        } else {
            None
        },
    )?;
    if let Err(e) = ctx.client.post_ok(&format!("/containers/{id}/start"), None) {
        drop(raw);
        let code = start_error_code(&e.message());
        if cmd == "run" {
            if auto_remove {
                let _ = ctx
                    .client
                    .delete(&format!("/containers/{id}?force=1&v=1"))
                    .map(|r| r.bytes());
            }
            return Err(fail(
                code,
                format!("berth: {e}\n\nRun 'berth run --help' for more information"),
            ));
        }
        return Err(e.into());
    }
    if tty {
        resize(&ctx.client, &format!("/containers/{id}"));
    }
    if let Some((r, w)) = conn {
        let end = pump(
            r,
            w,
            PumpOpts {
                tty,
                stdin: a_in,
                detach_keys: keys,
            },
        )
        .context("stream container output")?;
        if end == PumpEnd::Detached {
            drop(raw);
            return Ok(0);
        }
    }
    drop(raw);
    exit_status(wait)
}

fn exit_status(wait: crate::http::Response) -> CmdResult {
    let v = crate::client::read_json(wait)?;
    if let Some(msg) = v
        .pointer("/Error/Message")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return Err(fail(125, format!("berth: {msg}")));
    }
    let code = v
        .get("StatusCode")
        .and_then(Value::as_i64)
        .ok_or_else(|| anyhow!("daemon's wait response has no StatusCode: {v}"))?;
    Ok(code as i32)
}

pub fn start(ctx: &Ctx, m: &Matches) -> CmdResult {
    let attach = m.flag("attach");
    let interactive = m.flag("interactive");
    if attach || interactive {
        if m.args.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let info = ctx
            .client
            .get_json(&format!("/containers/{}/json", enc(&m.args[0])))?;
        let id = info["Id"].as_str().unwrap_or(&m.args[0]).to_string();
        let tty = info
            .pointer("/Config/Tty")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let open_stdin = info
            .pointer("/Config/OpenStdin")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let (_, keys) = detach_keys(m)?;
        let a_in = interactive && open_stdin;
        if tty && a_in && !term::is_tty(0) {
            return Err(fail(1, "the input device is not a TTY"));
        }
        return attach_start_wait(ctx, &id, tty, a_in, true, true, !tty, keys, false, "start");
    }
    let mut failed = Vec::new();
    for c in &m.args {
        match ctx
            .client
            .post_ok(&format!("/containers/{}/start", enc(c)), None)
        {
            Ok(()) => println!("{c}"),
            Err(e) => failed.push(e.to_string()),
        }
    }
    finish_multi(failed)
}

/// After a multi-target command: print collected errors, exit 1 if any.
pub fn finish_multi(failed: Vec<String>) -> CmdResult {
    if failed.is_empty() {
        return Ok(0);
    }
    Err(fail(1, failed.join("\n")))
}

pub fn attach(ctx: &Ctx, m: &Matches) -> CmdResult {
    let name = &m.args[0];
    let info = ctx
        .client
        .get_json(&format!("/containers/{}/json", enc(name)))?;
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    if !info
        .pointer("/State/Running")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Err(fail(
            1,
            "You cannot attach to a stopped container, start it first",
        ));
    }
    if info
        .pointer("/State/Paused")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Err(fail(
            1,
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    let tty = info
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let a_in = !m.flag("no-stdin")
        && info
            .pointer("/Config/OpenStdin")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    if tty && a_in && !term::is_tty(0) {
        return Err(fail(1, "the input device is not a TTY"));
    }
    let (_, keys) = detach_keys(m)?;
    let (r, w) = ctx.client.hijack(
        "POST",
        &format!(
            "/containers/{id}/attach?stream=1&stdin={}&stdout=1&stderr=1",
            a_in as u8
        ),
        None,
    )?;
    let raw = if tty && a_in {
        Some(RawGuard::enter().context("set terminal raw mode")?)
    } else {
        None
    };
    signals(
        ctx,
        &id,
        tty,
        m.flag("sig-proxy") && !tty,
        if tty {
            Some(format!("/containers/{id}"))
        } else {
            None
        },
    )?;
    if tty {
        resize(&ctx.client, &format!("/containers/{id}"));
    }
    let end = pump(
        r,
        w,
        PumpOpts {
            tty,
            stdin: a_in,
            detach_keys: keys,
        },
    )
    .context("stream container output")?;
    drop(raw);
    if end == PumpEnd::Detached {
        return Ok(0);
    }
    let v = ctx
        .client
        .post_json(&format!("/containers/{id}/wait"), None)?;
    Ok(v.get("StatusCode").and_then(Value::as_i64).unwrap_or(0) as i32)
}

pub fn exec(ctx: &Ctx, m: &Matches) -> CmdResult {
    let container = &m.args[0];
    let cmd = &m.args[1..];
    let detach = m.flag("detach");
    let tty = m.flag("tty");
    let interactive = m.flag("interactive");
    if tty && interactive && !detach && !term::is_tty(0) {
        return Err(fail(1, "the input device is not a TTY"));
    }
    let (keys_s, keys) = detach_keys(m)?;
    let mut body = json!({
        "User": m.value("user").unwrap_or(""),
        "Privileged": m.flag("privileged"),
        "Tty": tty,
        "AttachStdin": interactive && !detach,
        "AttachStdout": !detach,
        "AttachStderr": !detach,
        "Detach": detach,
        "DetachKeys": if m.changed("detach-keys") { keys_s } else { String::new() },
        "Env": env_list(m)?,
        "WorkingDir": m.value("workdir").unwrap_or(""),
        "Cmd": cmd,
    });
    if let Some((r, c)) = term::size(1).or_else(|| term::size(0)).filter(|_| tty) {
        body["ConsoleSize"] = json!([r, c]);
    }
    let created = ctx
        .client
        .post_json(&format!("/containers/{}/exec", enc(container)), Some(&body))?;
    let exec_id = created
        .get("Id")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("daemon's exec create response has no Id"))?
        .to_string();
    if detach {
        ctx.client.post_ok(
            &format!("/exec/{exec_id}/start"),
            Some(&json!({"Detach": true, "Tty": tty})),
        )?;
        return Ok(0);
    }
    let (r, w) = ctx.client.hijack(
        "POST",
        &format!("/exec/{exec_id}/start"),
        Some(&json!({"Detach": false, "Tty": tty})),
    )?;
    let a_in = interactive;
    let raw = if tty && a_in && term::is_tty(0) {
        Some(RawGuard::enter().context("set terminal raw mode")?)
    } else {
        None
    };
    if tty {
        signals(ctx, container, tty, false, Some(format!("/exec/{exec_id}")))?;
        resize(&ctx.client, &format!("/exec/{exec_id}"));
    }
    let end = pump(
        r,
        w,
        PumpOpts {
            tty,
            stdin: a_in,
            detach_keys: keys,
        },
    )
    .context("stream exec output")?;
    drop(raw);
    if end == PumpEnd::Detached {
        return Ok(0);
    }
    let info = ctx.client.get_json(&format!("/exec/{exec_id}/json"))?;
    match info.get("ExitCode").and_then(Value::as_i64) {
        Some(c) => Ok(c as i32),
        None => Err(fail(126, "exec did not report an exit code")),
    }
}

/// Helper for tests: the API error mapping of start failures.
pub fn start_error_exit_code(msg: &str) -> i32 {
    start_error_code(msg)
}
