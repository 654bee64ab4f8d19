//! Parsers of run/create flag values: env files, ports, mounts, ulimits, restart, healthcheck.

use crate::args::Matches;
use crate::units::{parse_go_duration, ram_in_bytes};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};
use std::io::BufRead;

/// Splits comma-free list values (docker's `list` flags are repeatable, not comma-split).
pub(super) fn read_kv_file(path: &str, what: &str) -> Result<Vec<String>> {
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

pub(super) fn parse_mount(s: &str) -> Result<Value> {
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

pub(super) fn parse_ulimit(s: &str) -> Result<Value> {
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

pub(super) fn parse_device(s: &str) -> Result<Value> {
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

pub(super) fn parse_restart(s: &str) -> Result<Value> {
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
pub(super) fn health_config(m: &Matches) -> Result<Option<Value>> {
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
