//! Container commands that do not attach: ps, stop, restart, kill, rm, logs,
//! inspect, top, stats, pause, unpause, rename, wait, cp, diff, export, commit,
//! port, update, container prune.

use crate::args::Matches;
use crate::client::{filters_json, ApiError};
use crate::cmd::image::{confirm, tar_out};
use crate::cmd::run::finish_multi;
use crate::http::{demux_copy, enc, Body};
use crate::output::{self, ps_header, ps_row};
use crate::units::{bytes_size, human_size_prec, parse_timestamp_arg};
use crate::{fail, CmdResult, Ctx};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::io::{Read, Write};

pub fn ps(ctx: &Ctx, m: &Matches) -> CmdResult {
    let mut q = format!("/containers/json?all={}", m.flag("all") as u8);
    let mut last: i64 = m.value("last").and_then(|v| v.parse().ok()).unwrap_or(-1);
    if m.flag("latest") {
        last = 1;
    }
    if last > 0 {
        q.push_str(&format!("&limit={last}"));
    }
    // docker asks for sizes when the format shows them
    let fmt_wants_size = m
        .value("format")
        .is_some_and(|f| f.contains(".Size") || f.trim() == "json" || f.contains("json ."));
    if m.flag("size") || fmt_wants_size {
        q.push_str("&size=1");
    }
    if let Some(f) = filters_json(&m.values("filter")).map_err(|e| fail(125, e))? {
        q.push_str(&format!("&filters={}", enc(&f)));
    }
    let list = ctx.client.get_json(&q)?;
    let items = list.as_array().cloned().unwrap_or_default();
    let trunc = !m.flag("no-trunc");
    if m.flag("quiet") {
        for c in &items {
            let id = c.get("Id").and_then(Value::as_str).unwrap_or("");
            println!(
                "{}",
                if trunc {
                    output::short_id(id)
                } else {
                    id.to_string()
                }
            );
        }
        return Ok(0);
    }
    let rows: Vec<Value> = items.iter().map(|c| ps_row(c, trunc)).collect();
    let mut def = output::PS_TABLE.to_string();
    if m.flag("size") {
        def.push_str("\t{{.Size}}");
    }
    let fmt = m.value("format");
    // `--format` with -s and a custom template: docker only adds size when asked
    let s = output::render(fmt, &def, &ps_header(), &rows).map_err(|e| fail(1, e))?;
    print!("{s}");
    Ok(0)
}

fn each(ctx: &Ctx, m: &Matches, f: impl Fn(&str) -> Result<(), ApiError>) -> CmdResult {
    let _ = ctx;
    let mut failed = Vec::new();
    for c in &m.args {
        match f(c) {
            Ok(()) => println!("{c}"),
            Err(e) => failed.push(e.to_string()),
        }
    }
    finish_multi(failed)
}

fn stop_query(m: &Matches) -> String {
    let mut q = Vec::new();
    if let Some(t) = m.value("time").or(m.value("timeout")) {
        q.push(format!("t={t}"));
    }
    if let Some(s) = m.value("signal") {
        q.push(format!("signal={}", enc(s)));
    }
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

pub fn stop(ctx: &Ctx, m: &Matches) -> CmdResult {
    let q = stop_query(m);
    each(ctx, m, |c| {
        ctx.client
            .post_ok(&format!("/containers/{}/stop{q}", enc(c)), None)
    })
}

pub fn restart(ctx: &Ctx, m: &Matches) -> CmdResult {
    let q = stop_query(m);
    each(ctx, m, |c| {
        ctx.client
            .post_ok(&format!("/containers/{}/restart{q}", enc(c)), None)
    })
}

pub fn kill(ctx: &Ctx, m: &Matches) -> CmdResult {
    let q = m
        .value("signal")
        .map(|s| format!("?signal={}", enc(s)))
        .unwrap_or_default();
    each(ctx, m, |c| {
        ctx.client
            .post_ok(&format!("/containers/{}/kill{q}", enc(c)), None)
    })
}

pub fn rm(ctx: &Ctx, m: &Matches) -> CmdResult {
    let q = format!(
        "?force={}&v={}&link={}",
        m.flag("force") as u8,
        m.flag("volumes") as u8,
        m.flag("link") as u8
    );
    each(ctx, m, |c| {
        ctx.client
            .delete(&format!("/containers/{}{q}", enc(c)))
            .and_then(|r| r.bytes().map(|_| ()).map_err(ApiError::Io))
    })
}

pub fn pause(ctx: &Ctx, m: &Matches) -> CmdResult {
    each(ctx, m, |c| {
        ctx.client
            .post_ok(&format!("/containers/{}/pause", enc(c)), None)
    })
}

pub fn unpause(ctx: &Ctx, m: &Matches) -> CmdResult {
    each(ctx, m, |c| {
        ctx.client
            .post_ok(&format!("/containers/{}/unpause", enc(c)), None)
    })
}

pub fn rename(ctx: &Ctx, m: &Matches) -> CmdResult {
    let new = m.args[1].trim();
    if new.is_empty() {
        return Err(fail(1, "Error: Neither old nor new names may be empty"));
    }
    ctx.client.post_ok(
        &format!("/containers/{}/rename?name={}", enc(&m.args[0]), enc(new)),
        None,
    )?;
    Ok(0)
}

pub fn wait(ctx: &Ctx, m: &Matches) -> CmdResult {
    let mut failed = Vec::new();
    for c in &m.args {
        match ctx
            .client
            .post_json(&format!("/containers/{}/wait", enc(c)), None)
        {
            Ok(v) => println!(
                "{}",
                v.get("StatusCode").and_then(Value::as_i64).unwrap_or(-1)
            ),
            Err(e) => failed.push(e.to_string()),
        }
    }
    finish_multi(failed)
}

pub fn logs(ctx: &Ctx, m: &Matches) -> CmdResult {
    let name = &m.args[0];
    let info = ctx
        .client
        .get_json(&format!("/containers/{}/json", enc(name)))?;
    let tty = info
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut q = format!(
        "/containers/{}/logs?stdout=1&stderr=1&follow={}&timestamps={}&details={}",
        enc(name),
        m.flag("follow") as u8,
        m.flag("timestamps") as u8,
        m.flag("details") as u8
    );
    if let Some(t) = m.value("tail") {
        if t != "all" && t.parse::<i64>().is_err() {
            return Err(fail(
                125,
                format!("invalid value for \"tail\": {t:?} (use a number or \"all\")"),
            ));
        }
        q.push_str(&format!("&tail={}", enc(t)));
    }
    if let Some(s) = m.value("since") {
        q.push_str(&format!(
            "&since={}",
            parse_timestamp_arg(s).map_err(|e| fail(125, e))?
        ));
    }
    if let Some(s) = m.value("until") {
        q.push_str(&format!(
            "&until={}",
            parse_timestamp_arg(s).map_err(|e| fail(125, e))?
        ));
    }
    let mut resp = ctx.client.get(&q)?;
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let res = if tty {
        let mut out = stdout.lock();
        let mut buf = [0u8; 32 * 1024];
        loop {
            let n = resp.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            out.flush()?;
        }
        Ok(())
    } else {
        demux_copy(resp, &mut stdout.lock(), &mut stderr.lock())
    };
    match res {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(anyhow!(e).context("read logs")),
    }
}

fn inspect_one(ctx: &Ctx, name: &str, ty: Option<&str>, size: bool) -> Result<Value, ApiError> {
    let e = enc(name);
    let tries: Vec<(&str, String)> = vec![
        (
            "container",
            format!("/containers/{e}/json{}", if size { "?size=1" } else { "" }),
        ),
        ("image", format!("/images/{e}/json")),
        ("network", format!("/networks/{e}")),
        ("volume", format!("/volumes/{e}")),
    ];
    let mut last = None;
    for (t, path) in tries {
        if ty.is_some_and(|x| x != t) {
            continue;
        }
        match ctx.client.get_json(&path) {
            Ok(v) => return Ok(v),
            Err(err) if err.is_not_found() => last = Some(err),
            Err(err) => return Err(err),
        }
    }
    let _ = last;
    Err(ApiError::Status {
        status: 404,
        message: match ty {
            Some("container") => format!("No such container: {name}"),
            Some("image") => format!("No such image: {name}"),
            Some("network") => format!("network {name} not found"),
            Some("volume") => format!("get {name}: no such volume"),
            _ => format!("No such object: {name}"),
        },
    })
}

pub fn inspect(ctx: &Ctx, m: &Matches) -> CmdResult {
    let ty = m.value("type");
    if let Some(t) = ty {
        if !matches!(t, "container" | "image" | "network" | "volume") {
            return Err(fail(1, format!("\"{t}\" is not a valid value for --type")));
        }
    }
    let tmpl = crate::output::inspect_template(m.value("format"))?;
    let mut objs = Vec::new();
    let mut failed = Vec::new();
    for name in &m.args {
        match inspect_one(ctx, name, ty, m.flag("size")) {
            Ok(v) => objs.push(v),
            Err(e) => failed.push(if e.is_not_found() && ty.is_none() {
                format!("Error: No such object: {name}")
            } else if e.is_not_found() {
                format!("Error: {}", e.message())
            } else {
                e.to_string()
            }),
        }
    }
    crate::output::print_inspect(tmpl.as_ref(), objs)?;
    finish_multi(failed)
}

pub fn top(ctx: &Ctx, m: &Matches) -> CmdResult {
    let mut q = format!("/containers/{}/top", enc(&m.args[0]));
    if m.args.len() > 1 {
        q.push_str(&format!("?ps_args={}", enc(&m.args[1..].join(" "))));
    }
    let v = ctx.client.get_json(&q)?;
    let titles: Vec<String> = v["Titles"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    let mut text = titles.join("\t");
    text.push('\n');
    for p in v["Processes"].as_array().cloned().unwrap_or_default() {
        let cells: Vec<String> = p
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    print!("{}", crate::template::tabwrite_with(&text, 20, 3));
    Ok(0)
}

pub fn port(ctx: &Ctx, m: &Matches) -> CmdResult {
    let info = ctx
        .client
        .get_json(&format!("/containers/{}/json", enc(&m.args[0])))?;
    let ports = info
        .pointer("/NetworkSettings/Ports")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut keys: Vec<&String> = ports.keys().collect();
    keys.sort_by_key(|k| {
        k.split('/')
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(want) = m.args.get(1) {
        let want = if want.contains('/') {
            want.clone()
        } else {
            format!("{want}/tcp")
        };
        match ports.get(&want).and_then(Value::as_array) {
            Some(b) if !b.is_empty() => {
                for x in b {
                    let ip = x["HostIp"].as_str().unwrap_or("");
                    let ip = if ip.contains(':') {
                        format!("[{ip}]")
                    } else {
                        ip.to_string()
                    };
                    println!("{ip}:{}", x["HostPort"].as_str().unwrap_or(""));
                }
                return Ok(0);
            }
            _ => {
                return Err(fail(
                    1,
                    format!("Error: No public port '{want}' published for {}", m.args[0]),
                ))
            }
        }
    }
    for k in keys {
        if let Some(b) = ports[k].as_array() {
            for x in b {
                let ip = x["HostIp"].as_str().unwrap_or("");
                let ip = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                println!("{k} -> {ip}:{}", x["HostPort"].as_str().unwrap_or(""));
            }
        }
    }
    Ok(0)
}

pub fn diff(ctx: &Ctx, m: &Matches) -> CmdResult {
    let v = ctx
        .client
        .get_json(&format!("/containers/{}/changes", enc(&m.args[0])))?;
    for c in v.as_array().cloned().unwrap_or_default() {
        let k = match c["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        println!("{k} {}", c["Path"].as_str().unwrap_or(""));
    }
    Ok(0)
}

pub fn export(ctx: &Ctx, m: &Matches) -> CmdResult {
    let output = m.value("output");
    if output.is_none() && crate::term::is_tty(1) {
        return Err(fail(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let resp = ctx
        .client
        .get(&format!("/containers/{}/export", enc(&m.args[0])))?;
    tar_out(resp, output, "container")
}

pub fn commit(ctx: &Ctx, m: &Matches) -> CmdResult {
    let mut q = format!(
        "/commit?container={}&pause={}",
        enc(&m.args[0]),
        m.flag("pause") as u8
    );
    if let Some(r) = m.args.get(1) {
        let (repo, tag) = output::split_repo_tag(r);
        q.push_str(&format!("&repo={}&tag={}", enc(repo), enc(tag)));
    }
    if let Some(c) = m.value("message") {
        q.push_str(&format!("&comment={}", enc(c)));
    }
    if let Some(a) = m.value("author") {
        q.push_str(&format!("&author={}", enc(a)));
    }
    for c in m.values("change") {
        q.push_str(&format!("&changes={}", enc(&c)));
    }
    let v = ctx.client.post_json(&q, Some(&json!({})))?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

pub fn update(ctx: &Ctx, m: &Matches) -> CmdResult {
    let mut body = serde_json::Map::new();
    let bytes = |k: &str| -> Result<Option<i64>> {
        match m.value(k) {
            Some("-1") => Ok(Some(-1)),
            Some(v) => Ok(Some(crate::units::ram_in_bytes(v).map_err(|e| anyhow!(e))?)),
            None => Ok(None),
        }
    };
    if let Some(v) = bytes("memory")? {
        body.insert("Memory".into(), json!(v));
    }
    if let Some(v) = bytes("memory-reservation")? {
        body.insert("MemoryReservation".into(), json!(v));
    }
    if let Some(v) = bytes("memory-swap")? {
        body.insert("MemorySwap".into(), json!(v));
    }
    if let Some(v) = m.value("cpus") {
        body.insert("NanoCpus".into(), json!((v.parse::<f64>()? * 1e9) as i64));
    }
    if let Some(v) = m.value("cpu-shares") {
        body.insert("CpuShares".into(), json!(v.parse::<i64>()?));
    }
    if let Some(v) = m.value("cpuset-cpus") {
        body.insert("CpusetCpus".into(), json!(v));
    }
    if let Some(v) = m.value("pids-limit") {
        body.insert("PidsLimit".into(), json!(v.parse::<i64>()?));
    }
    if let Some(r) = m.value("restart") {
        let (n, c) = r.split_once(':').unwrap_or((r, "0"));
        body.insert(
            "RestartPolicy".into(),
            json!({"Name": n, "MaximumRetryCount": c.parse::<i64>().unwrap_or(0)}),
        );
    }
    let rates = crate::netrate::annotations(&m.values("network-rate"))?;
    if !rates.is_empty() {
        body.insert("Annotations".into(), Value::Object(rates));
    }
    if body.is_empty() {
        return Err(fail(
            1,
            "you must provide one or more flags when using this command",
        ));
    }
    let body = Value::Object(body);
    let mut failed = Vec::new();
    for c in &m.args {
        match ctx
            .client
            .post_json(&format!("/containers/{}/update", enc(c)), Some(&body))
        {
            Ok(v) => {
                for w in v
                    .get("Warnings")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    if let Some(w) = w.as_str() {
                        eprintln!("WARNING: {w}");
                    }
                }
                println!("{c}");
            }
            Err(e) => failed.push(e.to_string()),
        }
    }
    finish_multi(failed)
}

pub fn container_prune(ctx: &Ctx, m: &Matches) -> CmdResult {
    if !m.flag("force") && !confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let space = prune_containers(ctx, &m.values("filter"))?;
    println!(
        "Total reclaimed space: {}",
        human_size_prec(space as f64, 3)
    );
    Ok(0)
}

pub fn prune_containers(ctx: &Ctx, filters: &[String]) -> Result<i64> {
    let mut q = "/containers/prune".to_string();
    if let Some(f) = filters_json(filters).map_err(|e| fail(125, e))? {
        q.push_str(&format!("?filters={}", enc(&f)));
    }
    let v = ctx.client.post_json(&q, None)?;
    let items = v
        .get("ContainersDeleted")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !items.is_empty() {
        println!("Deleted Containers:");
        for i in items {
            println!("{}", i.as_str().unwrap_or(""));
        }
        println!();
    }
    Ok(v.get("SpaceReclaimed").and_then(Value::as_i64).unwrap_or(0))
}

fn stats_row(name: &str, s: &Value, trunc: bool) -> Value {
    let f = |p: &str| s.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
    let cpu_delta =
        f("/cpu_stats/cpu_usage/total_usage") - f("/precpu_stats/cpu_usage/total_usage");
    let sys_delta = f("/cpu_stats/system_cpu_usage") - f("/precpu_stats/system_cpu_usage");
    let ncpu = s
        .pointer("/cpu_stats/online_cpus")
        .and_then(Value::as_f64)
        .filter(|n| *n > 0.0)
        .unwrap_or_else(|| {
            s.pointer("/cpu_stats/cpu_usage/percpu_usage")
                .and_then(Value::as_array)
                .map(|a| a.len() as f64)
                .unwrap_or(1.0)
        });
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * ncpu * 100.0
    } else {
        0.0
    };
    let usage = f("/memory_stats/usage");
    let cache = s
        .pointer("/memory_stats/stats/total_inactive_file")
        .or(s.pointer("/memory_stats/stats/inactive_file"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let mem = (usage - cache).max(0.0);
    let limit = f("/memory_stats/limit");
    let memp = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(n) = s.get("networks").and_then(Value::as_object) {
        for v in n.values() {
            rx += v["rx_bytes"].as_f64().unwrap_or(0.0);
            tx += v["tx_bytes"].as_f64().unwrap_or(0.0);
        }
    }
    let (mut br, mut bw) = (0.0, 0.0);
    for e in s
        .pointer("/blkio_stats/io_service_bytes_recursive")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        match e["op"].as_str().map(str::to_lowercase).as_deref() {
            Some("read") => br += e["value"].as_f64().unwrap_or(0.0),
            Some("write") => bw += e["value"].as_f64().unwrap_or(0.0),
            _ => {}
        }
    }
    let id = s["id"].as_str().unwrap_or(name);
    json!({
        "ID": if trunc { output::short_id(id) } else { id.to_string() },
        "Container": name,
        "Name": s["name"].as_str().unwrap_or("").trim_start_matches('/'),
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(mem), bytes_size(limit)),
        "MemPerc": format!("{memp:.2}%"),
        "NetIO": format!("{} / {}", human_size_prec(rx, 3), human_size_prec(tx, 3)),
        "BlockIO": format!("{} / {}", human_size_prec(br, 3), human_size_prec(bw, 3)),
        "PIDs": s.pointer("/pids_stats/current").and_then(Value::as_u64).unwrap_or(0).to_string(),
    })
}

pub fn stats(ctx: &Ctx, m: &Matches) -> CmdResult {
    let trunc = !m.flag("no-trunc");
    let header = json!({"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"});
    let def = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
    let stream = !m.flag("no-stream");
    loop {
        let names: Vec<String> = if m.args.is_empty() {
            let list = ctx
                .client
                .get_json(&format!("/containers/json?all={}", m.flag("all") as u8))?;
            list.as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|c| c["Id"].as_str().map(str::to_string))
                .collect()
        } else {
            m.args.clone()
        };
        let mut rows = Vec::new();
        let mut failed = Vec::new();
        for n in &names {
            match ctx
                .client
                .get_json(&format!("/containers/{}/stats?stream=0", enc(n)))
            {
                Ok(s) => rows.push(stats_row(n, &s, trunc)),
                Err(e) => failed.push(e.to_string()),
            }
        }
        if !failed.is_empty() && !m.args.is_empty() {
            return finish_multi(failed);
        }
        let s = output::render(m.value("format"), def, &header, &rows).map_err(|e| fail(1, e))?;
        if stream && crate::term::is_tty(1) {
            print!("\x1b[2J\x1b[H");
        }
        print!("{s}");
        std::io::stdout().flush()?;
        if !stream {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// `berth cp`: container<->host via the archive endpoints.
pub fn cp(ctx: &Ctx, m: &Matches) -> CmdResult {
    let (src, dst) = (&m.args[0], &m.args[1]);
    let split = |s: &str| -> Option<(String, String)> {
        if s.starts_with('/') || s.starts_with('.') {
            return None;
        }
        s.split_once(':')
            .map(|(c, p)| (c.to_string(), p.to_string()))
    };
    match (split(src), split(dst)) {
        (Some(_), Some(_)) => Err(fail(1, "copying between containers is not supported")),
        (None, None) => Err(fail(1, "must specify at least one container source")),
        (Some((c, p)), None) => cp_from(ctx, &c, &p, dst, m.flag("follow-link")),
        (None, Some((c, p))) => cp_to(ctx, src, &c, &p, m.flag("follow-link"), m.flag("archive")),
    }
}

fn cp_from(ctx: &Ctx, container: &str, path: &str, dst: &str, follow: bool) -> CmdResult {
    let mut path = path.to_string();
    if follow {
        // -L: copy what a symlink source points to
        if let Some(st) = path_stat(ctx, container, &path)? {
            if let Some(t) = st["linkTarget"].as_str().filter(|t| !t.is_empty()) {
                path = t.to_string();
            }
        }
    }
    let path = path.as_str();
    let resp = ctx.client.get(&format!(
        "/containers/{}/archive?path={}",
        enc(container),
        enc(path)
    ))?;
    if dst == "-" {
        let mut r = resp;
        std::io::copy(&mut r, &mut std::io::stdout().lock()).context("write archive to stdout")?;
        return Ok(0);
    }
    let dpath = std::path::Path::new(dst);
    let src_base = std::path::Path::new(path.trim_end_matches('/'))
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| ".".into());
    let (target_dir, rename) = if dpath.is_dir() {
        (dpath.to_path_buf(), None)
    } else {
        let parent = dpath
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !parent.is_dir() {
            return Err(fail(
                1,
                format!("destination directory {} does not exist", parent.display()),
            ));
        }
        let name = dpath
            .file_name()
            .ok_or_else(|| anyhow!("invalid destination {dst:?}"))?
            .to_string_lossy()
            .to_string();
        (parent.to_path_buf(), Some(name))
    };
    let mut ar = tar::Archive::new(resp);
    ar.set_preserve_permissions(true);
    for entry in ar.entries().context("read archive from daemon")? {
        let mut e = entry.context("read archive entry")?;
        let p = e.path().context("archive entry path")?.to_path_buf();
        let rel = match &rename {
            Some(n) => {
                let mut comps = p.components();
                let first = comps.next();
                if first.map(|c| c.as_os_str().to_string_lossy().to_string())
                    == Some(src_base.clone())
                {
                    let rest = comps.as_path();
                    if rest.as_os_str().is_empty() {
                        std::path::PathBuf::from(n)
                    } else {
                        std::path::Path::new(n).join(rest)
                    }
                } else {
                    p.clone()
                }
            }
            None => p.clone(),
        };
        // Never let the archive write outside target_dir: no `..`/absolute parts, and
        // no directory on the way may be a symlink (an earlier entry could have planted one).
        if rel.components().any(|c| {
            matches!(
                c,
                std::path::Component::ParentDir | std::path::Component::RootDir
            )
        }) {
            bail!(
                "refusing archive entry {} escaping {}",
                p.display(),
                target_dir.display()
            );
        }
        let full = target_dir.join(&rel);
        let mut cur = target_dir.clone();
        if let Some(parent) = rel.parent() {
            for comp in parent.components() {
                cur.push(comp);
                match std::fs::symlink_metadata(&cur) {
                    Ok(md) if md.file_type().is_symlink() => bail!(
                        "refusing archive entry {}: {} is a symlink",
                        p.display(),
                        cur.display()
                    ),
                    Ok(md) if md.is_dir() => {}
                    Ok(_) => bail!(
                        "refusing archive entry {}: {} is not a directory",
                        p.display(),
                        cur.display()
                    ),
                    Err(_) => std::fs::create_dir(&cur)
                        .with_context(|| format!("create {}", cur.display()))?,
                }
            }
        }
        // replace (not write through) an existing non-directory at the destination
        if let Ok(md) = std::fs::symlink_metadata(&full) {
            if !md.is_dir() {
                std::fs::remove_file(&full)
                    .with_context(|| format!("replace {}", full.display()))?;
            }
        }
        e.unpack(&full)
            .with_context(|| format!("extract {}", full.display()))?;
    }
    Ok(0)
}

/// Stat of a path inside a container (X-Docker-Container-Path-Stat); None when missing.
fn path_stat(ctx: &Ctx, container: &str, path: &str) -> Result<Option<Value>> {
    match ctx.client.send(
        "HEAD",
        &format!("/containers/{}/archive?path={}", enc(container), enc(path)),
        &[],
        Body::None,
    ) {
        Ok(r) => Ok(r
            .header("X-Docker-Container-Path-Stat")
            .and_then(|h| crate::cmd::auth::base64_decode(h).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(anyhow!(e.to_string())),
    }
}

fn cp_to(
    ctx: &Ctx,
    src: &str,
    container: &str,
    path: &str,
    follow: bool,
    archive: bool,
) -> CmdResult {
    let uidgid = if archive { "&copyUIDGID=1" } else { "" };
    if src == "-" {
        let mut input = std::io::stdin();
        let q = format!(
            "/containers/{}/archive?path={}&noOverwriteDirNonDir=1{uidgid}",
            enc(container),
            enc(path)
        );
        ctx.client
            .send(
                "PUT",
                &q,
                &[],
                Body::Stream(&mut input, "application/x-tar"),
            )?
            .bytes()?;
        return Ok(0);
    }
    let spath = std::path::Path::new(src);
    let meta = std::fs::symlink_metadata(spath).with_context(|| format!("stat {src}"))?;
    // is the destination an existing directory in the container?
    let stat = ctx.client.send(
        "HEAD",
        &format!("/containers/{}/archive?path={}", enc(container), enc(path)),
        &[],
        Body::None,
    );
    let dest_is_dir = match &stat {
        Ok(r) => r
            .header("X-Docker-Container-Path-Stat")
            .and_then(|h| crate::cmd::auth::base64_decode(h).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v["mode"].as_u64())
            .is_some_and(|mode| mode & (1 << 31) != 0),
        Err(e) if e.is_not_found() => false,
        Err(e) => return Err(anyhow!(e.to_string())),
    };
    let (dir, name) = if dest_is_dir {
        (
            path.to_string(),
            spath
                .file_name()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| ".".into()),
        )
    } else {
        let p = std::path::Path::new(path);
        let parent = p
            .parent()
            .map(|x| x.to_string_lossy().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/".into());
        (
            parent,
            p.file_name()
                .map(|s| s.to_string_lossy().to_string())
                .ok_or_else(|| anyhow!("invalid destination path {path:?}"))?,
        )
    };
    let mut buf = Vec::new();
    {
        let mut b = tar::Builder::new(&mut buf);
        b.follow_symlinks(follow);
        if meta.is_dir() {
            b.append_dir_all(&name, spath)
                .with_context(|| format!("archive {src}"))?;
        } else {
            b.append_path_with_name(spath, &name)
                .with_context(|| format!("archive {src}"))?;
        }
        b.finish().context("finish archive")?;
    }
    let q = format!(
        "/containers/{}/archive?path={}&noOverwriteDirNonDir=1{uidgid}",
        enc(container),
        enc(&dir)
    );
    ctx.client
        .send("PUT", &q, &[], Body::Bytes(&buf, "application/x-tar"))?
        .bytes()?;
    Ok(0)
}
