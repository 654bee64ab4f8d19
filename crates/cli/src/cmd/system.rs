//! info, version, events, system df, system prune.

use crate::args::Matches;
use crate::client::{filters_json, CLIENT_API_VERSION};
use crate::cmd::container::prune_containers;
use crate::cmd::image::{confirm, prune_images};
use crate::http::enc;
use crate::output;
use crate::template::Template;
use crate::units::{format_rfc3339, human_size, human_size_prec, parse_timestamp_arg};
use crate::{fail, CmdResult, Ctx};
use anyhow::Context;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}
fn n(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

pub fn info(ctx: &Ctx, m: &Matches) -> CmdResult {
    let v = ctx.client.get_json("/info")?;
    if let Some(f) = m.value("format") {
        let t = Template::parse(f).map_err(|e| fail(1, e))?;
        println!("{}", t.execute(&v).map_err(|e| fail(1, e))?);
        return Ok(0);
    }
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: {}\n",
        env!("CARGO_PKG_VERSION"),
        ctx.debug
    )?;
    writeln!(o, "Server:")?;
    writeln!(o, " Containers: {}", n(&v, "/Containers"))?;
    writeln!(o, "  Running: {}", n(&v, "/ContainersRunning"))?;
    writeln!(o, "  Paused: {}", n(&v, "/ContainersPaused"))?;
    writeln!(o, "  Stopped: {}", n(&v, "/ContainersStopped"))?;
    writeln!(o, " Images: {}", n(&v, "/Images"))?;
    writeln!(o, " Server Version: {}", s(&v, "/ServerVersion"))?;
    writeln!(o, " Storage Driver: {}", s(&v, "/Driver"))?;
    for pair in v["DriverStatus"].as_array().cloned().unwrap_or_default() {
        if let (Some(k), Some(x)) = (
            pair.get(0).and_then(Value::as_str),
            pair.get(1).and_then(Value::as_str),
        ) {
            writeln!(o, "  {k}: {x}")?;
        }
    }
    writeln!(o, " Logging Driver: {}", s(&v, "/LoggingDriver"))?;
    writeln!(o, " Cgroup Driver: {}", s(&v, "/CgroupDriver"))?;
    writeln!(o, " Cgroup Version: {}", s(&v, "/CgroupVersion"))?;
    if let Some(p) = v["Plugins"].as_object() {
        writeln!(o, " Plugins:")?;
        for k in ["Volume", "Network", "Log"] {
            let l: Vec<&str> = p
                .get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            writeln!(o, "  {k}: {}", l.join(" "))?;
        }
    }
    writeln!(
        o,
        " Swarm: {}",
        v.pointer("/Swarm/LocalNodeState")
            .and_then(Value::as_str)
            .unwrap_or("inactive")
    )?;
    if let Some(r) = v["Runtimes"].as_object() {
        let mut names: Vec<&String> = r.keys().collect();
        names.sort();
        let names: Vec<&str> = names.into_iter().map(String::as_str).collect();
        writeln!(o, " Runtimes: {}", names.join(" "))?;
    }
    writeln!(o, " Default Runtime: {}", s(&v, "/DefaultRuntime"))?;
    if !s(&v, "/InitBinary").is_empty() {
        writeln!(o, " Init Binary: {}", s(&v, "/InitBinary"))?;
    }
    if v.get("ContainerdCommit").is_some() {
        writeln!(o, " containerd version: {}", s(&v, "/ContainerdCommit/ID"))?;
        writeln!(o, " runc version: {}", s(&v, "/RuncCommit/ID"))?;
        writeln!(o, " init version: {}", s(&v, "/InitCommit/ID"))?;
    }
    let so: Vec<String> = v["SecurityOptions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if !so.is_empty() {
        writeln!(o, " Security Options:")?;
        for x in so {
            let mut parts = x.split(',');
            writeln!(
                o,
                "  {}",
                parts.next().unwrap_or("").trim_start_matches("name=")
            )?;
            for kv in parts {
                if let Some((k, val)) = kv.split_once('=') {
                    let mut k = k.to_string();
                    if let Some(f) = k.get(0..1) {
                        k = f.to_uppercase() + &k[1..];
                    }
                    writeln!(o, "   {k}: {val}")?;
                }
            }
        }
    }
    writeln!(o, " Kernel Version: {}", s(&v, "/KernelVersion"))?;
    writeln!(o, " Operating System: {}", s(&v, "/OperatingSystem"))?;
    writeln!(o, " OSType: {}", s(&v, "/OSType"))?;
    writeln!(o, " Architecture: {}", s(&v, "/Architecture"))?;
    writeln!(o, " CPUs: {}", n(&v, "/NCPU"))?;
    writeln!(
        o,
        " Total Memory: {}",
        crate::units::bytes_size(n(&v, "/MemTotal") as f64)
    )?;
    writeln!(o, " Name: {}", s(&v, "/Name"))?;
    writeln!(o, " ID: {}", s(&v, "/ID"))?;
    writeln!(o, " Docker Root Dir: {}", s(&v, "/DockerRootDir"))?;
    writeln!(o, " Debug Mode: {}", v["Debug"].as_bool().unwrap_or(false))?;
    writeln!(
        o,
        " Experimental: {}",
        v["ExperimentalBuild"].as_bool().unwrap_or(false)
    )?;
    let insecure: Vec<String> = v
        .pointer("/RegistryConfig/IndexConfigs")
        .and_then(Value::as_object)
        .map(|o| {
            o.values()
                .filter(|c| c["Secure"].as_bool() == Some(false))
                .filter_map(|c| c["Name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let cidrs: Vec<String> = v
        .pointer("/RegistryConfig/InsecureRegistryCIDRs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if !insecure.is_empty() || !cidrs.is_empty() {
        writeln!(o, " Insecure Registries:")?;
        for x in insecure.iter().chain(cidrs.iter()) {
            writeln!(o, "  {x}")?;
        }
    }
    writeln!(
        o,
        " Live Restore Enabled: {}",
        v["LiveRestoreEnabled"].as_bool().unwrap_or(false)
    )?;
    writeln!(o)?;
    for w in v["Warnings"].as_array().cloned().unwrap_or_default() {
        if let Some(w) = w.as_str() {
            eprintln!("{w}");
        }
    }
    Ok(0)
}

pub fn version(ctx: &Ctx, m: &Matches) -> CmdResult {
    let client = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": ctx.client.version().unwrap_or_else(|_| CLIENT_API_VERSION.to_string()),
        "DefaultAPIVersion": CLIENT_API_VERSION,
        "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or("dev"),
        "GoVersion": "n/a (rust)",
        "Os": std::env::consts::OS,
        "Arch": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
        "Context": "default",
    });
    let server = ctx.client.get_json("/version");
    let data = json!({"Client": client, "Server": server.as_ref().ok()});
    if let Some(f) = m.value("format") {
        let t = Template::parse(f).map_err(|e| fail(1, e))?;
        println!("{}", t.execute(&data).map_err(|e| fail(1, e))?);
        return server.map(|_| 0).map_err(Into::into);
    }
    println!("Client:");
    println!(
        " Version:           {}",
        client["Version"].as_str().unwrap_or("")
    );
    let neg = client["ApiVersion"].as_str().unwrap_or("");
    if neg != CLIENT_API_VERSION {
        println!(" API version:       {neg} (downgraded from {CLIENT_API_VERSION})");
    } else {
        println!(" API version:       {neg}");
    }
    println!(
        " Git commit:        {}",
        client["GitCommit"].as_str().unwrap_or("")
    );
    println!(
        " OS/Arch:           {}/{}",
        client["Os"].as_str().unwrap_or(""),
        client["Arch"].as_str().unwrap_or("")
    );
    println!(" Context:           default");
    let sv = server?;
    println!("\nServer:");
    println!(" Engine:");
    println!("  Version:          {}", s(&sv, "/Version"));
    println!(
        "  API version:      {} (minimum version {})",
        s(&sv, "/ApiVersion"),
        s(&sv, "/MinAPIVersion")
    );
    println!("  Git commit:       {}", s(&sv, "/GitCommit"));
    let built = crate::units::parse_rfc3339(s(&sv, "/BuildTime"))
        .map(|t| crate::units::format_ansic(t as i64))
        .unwrap_or_else(|| s(&sv, "/BuildTime").to_string());
    println!("  Built:            {built}");
    println!("  OS/Arch:          {}/{}", s(&sv, "/Os"), s(&sv, "/Arch"));
    println!(
        "  Experimental:     {}",
        sv["Experimental"].as_bool().unwrap_or(false)
    );
    for c in sv["Components"].as_array().cloned().unwrap_or_default() {
        if c["Name"].as_str() == Some("Engine") {
            continue;
        }
        println!(" {}:", c["Name"].as_str().unwrap_or(""));
        println!(
            "  Version:          {}",
            c["Version"].as_str().unwrap_or("")
        );
        if let Some(g) = c.pointer("/Details/GitCommit").and_then(Value::as_str) {
            println!("  GitCommit:        {g}");
        }
    }
    Ok(0)
}

pub fn events(ctx: &Ctx, m: &Matches) -> CmdResult {
    let mut q = Vec::new();
    if let Some(v) = m.value("since") {
        q.push(format!(
            "since={}",
            parse_timestamp_arg(v).map_err(|e| fail(125, e))?
        ));
    }
    if let Some(v) = m.value("until") {
        q.push(format!(
            "until={}",
            parse_timestamp_arg(v).map_err(|e| fail(125, e))?
        ));
    }
    if let Some(f) = filters_json(&m.values("filter")).map_err(|e| fail(125, e))? {
        q.push(format!("filters={}", enc(&f)));
    }
    let path = if q.is_empty() {
        "/events".to_string()
    } else {
        format!("/events?{}", q.join("&"))
    };
    let tmpl = match m.value("format") {
        Some("json") => Some(Template::parse("{{json .}}").map_err(|e| fail(1, e))?),
        Some(f) => Some(Template::parse(f).map_err(|e| fail(1, e))?),
        None => None,
    };
    let resp = ctx.client.get(&path)?;
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(resp).lines() {
        let line = line.context("read events")?;
        if line.trim().is_empty() {
            continue;
        }
        let ev: Value = serde_json::from_str(&line).context("decode event")?;
        match &tmpl {
            Some(t) => writeln!(out, "{}", t.execute(&ev).map_err(|e| fail(1, e))?)?,
            None => {
                let nanos = ev["timeNano"]
                    .as_i64()
                    .unwrap_or(ev["time"].as_i64().unwrap_or(0) * 1_000_000_000);
                let secs = nanos / 1_000_000_000;
                let ts = format_rfc3339(secs);
                let ts = format!("{}.{:09}Z", ts.trim_end_matches('Z'), nanos % 1_000_000_000);
                let mut attrs: Vec<String> = ev
                    .pointer("/Actor/Attributes")
                    .and_then(Value::as_object)
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect()
                    })
                    .unwrap_or_default();
                attrs.sort();
                let attrs = if attrs.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", attrs.join(", "))
                };
                writeln!(
                    out,
                    "{ts} {} {} {}{attrs}",
                    s(&ev, "/Type"),
                    s(&ev, "/Action"),
                    s(&ev, "/Actor/ID")
                )?;
            }
        }
        out.flush()?;
    }
    Ok(0)
}

pub fn df(ctx: &Ctx, m: &Matches) -> CmdResult {
    if m.flag("verbose") {
        return Err(fail(1, "berth system df: --verbose is not implemented yet"));
    }
    let v = ctx.client.get_json("/system/df")?;
    let images = v["Images"].as_array().cloned().unwrap_or_default();
    let containers = v["Containers"].as_array().cloned().unwrap_or_default();
    let volumes = v["Volumes"].as_array().cloned().unwrap_or_default();
    let cache = v["BuildCache"].as_array().cloned().unwrap_or_default();
    let img_size: i64 = images.iter().map(|i| i["Size"].as_i64().unwrap_or(0)).sum();
    let img_active = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .count();
    let img_reclaim: i64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) <= 0)
        .map(|i| i["Size"].as_i64().unwrap_or(0))
        .sum();
    let c_size: i64 = containers
        .iter()
        .map(|c| c["SizeRw"].as_i64().unwrap_or(0))
        .sum();
    let c_active = containers
        .iter()
        .filter(|c| c["State"].as_str() == Some("running"))
        .count();
    let c_reclaim: i64 = containers
        .iter()
        .filter(|c| c["State"].as_str() != Some("running"))
        .map(|c| c["SizeRw"].as_i64().unwrap_or(0))
        .sum();
    let v_size: i64 = volumes
        .iter()
        .map(|x| {
            x.pointer("/UsageData/Size")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .max(0)
        })
        .sum();
    let v_active = volumes
        .iter()
        .filter(|x| {
            x.pointer("/UsageData/RefCount")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                > 0
        })
        .count();
    let b_size: i64 = cache.iter().map(|x| x["Size"].as_i64().unwrap_or(0)).sum();
    let hs = |x: f64, _p: usize| human_size(x);
    let pct = |r: i64, t: i64| {
        if t > 0 {
            format!("{} ({}%)", hs(r as f64, 3), r * 100 / t)
        } else {
            hs(r as f64, 3)
        }
    };
    let rows = vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(), "Active": img_active.to_string(), "Size": hs(img_size as f64, 3), "Reclaimable": pct(img_reclaim, img_size)}),
        json!({"Type": "Containers", "TotalCount": containers.len().to_string(), "Active": c_active.to_string(), "Size": hs(c_size as f64, 3), "Reclaimable": pct(c_reclaim, c_size)}),
        json!({"Type": "Local Volumes", "TotalCount": volumes.len().to_string(), "Active": v_active.to_string(), "Size": hs(v_size as f64, 3), "Reclaimable": pct(v_size, v_size)}),
        json!({"Type": "Build Cache", "TotalCount": cache.len().to_string(), "Active": "0", "Size": hs(b_size as f64, 3), "Reclaimable": hs(b_size as f64, 3)}),
    ];
    let header = json!({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"});
    let s = output::render(
        m.value("format"),
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        &header,
        &rows,
    )
    .map_err(|e| fail(1, e))?;
    print!("{s}");
    Ok(0)
}

pub fn prune(ctx: &Ctx, m: &Matches) -> CmdResult {
    let all = m.flag("all");
    let mut warn = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
    if m.flag("volumes") {
        warn.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    warn.push_str(if all {
        "  - all images without at least one container associated to them\n"
    } else {
        "  - all dangling images\n"
    });
    if !m.flag("force") && !confirm(warn.trim_end()) {
        return Ok(0);
    }
    let filters = m.values("filter");
    let mut total = prune_containers(ctx, &filters)?;
    let fq = filters_json(&filters)
        .map_err(|e| fail(125, e))?
        .map(|f| format!("?filters={}", enc(&f)))
        .unwrap_or_default();
    if let Ok(v) = ctx.client.post_json(&format!("/networks/prune{fq}"), None) {
        let items = v["NetworksDeleted"].as_array().cloned().unwrap_or_default();
        if !items.is_empty() {
            println!("Deleted Networks:");
            for i in items {
                println!("{}", i.as_str().unwrap_or(""));
            }
            println!();
        }
    }
    if m.flag("volumes") {
        let v = ctx.client.post_json(&format!("/volumes/prune{fq}"), None)?;
        let items = v["VolumesDeleted"].as_array().cloned().unwrap_or_default();
        if !items.is_empty() {
            println!("Deleted Volumes:");
            for i in items {
                println!("{}", i.as_str().unwrap_or(""));
            }
            println!();
        }
        total += v["SpaceReclaimed"].as_i64().unwrap_or(0);
    }
    let (_, sp) = prune_images(ctx, all, &filters)?;
    total += sp;
    println!(
        "Total reclaimed space: {}",
        human_size_prec(total as f64, 3)
    );
    Ok(0)
}
