//! info, version, events, system df, system prune.

use crate::args::Matches;
use crate::client::{filters_json, CLIENT_API_VERSION};
use crate::cmd::container::prune_containers;
use crate::cmd::image::{confirm, prune_images};
use crate::http::enc;
use crate::template::Template;
use crate::units::{format_rfc3339, human_size_prec, parse_timestamp_arg};
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
    if let Some(f) = m.value("format") {
        // docker's template sees Go structs: `.Server.APIVersion`, `.Client.APIVersion`
        let go = |v: &Value| with_go_names(v, VERSION_GO_NAMES);
        let data = json!({"Client": go(&client), "Server": server.as_ref().ok().map(go)});
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

/// Go field name -> JSON name where the two differ in docker's `types.Version`.
const VERSION_GO_NAMES: &[(&str, &str)] = &[("APIVersion", "ApiVersion")];

/// Go field name -> JSON name in docker's `events.Message` (its JSON tags are lower case).
const EVENT_GO_NAMES: &[(&str, &str)] = &[
    ("Status", "status"),
    ("ID", "id"),
    ("From", "from"),
    ("Scope", "scope"),
    ("Time", "time"),
    ("TimeNano", "timeNano"),
];

/// `v` with each Go field name added beside its JSON name, so that a template written for
/// the docker CLI (which executes on Go structs) finds the same fields.
fn with_go_names(v: &Value, names: &[(&str, &str)]) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for (go, wire) in names {
            if let Some(x) = o.get(*wire).cloned() {
                o.entry(go.to_string()).or_insert(x);
            }
        }
    }
    v
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
    // `{{json .}}` prints the wire form; other templates see Go's field names (`.Status`)
    let go_names = !matches!(m.value("format"), Some("json") | None);
    let resp = ctx.client.get(&path)?;
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(resp).lines() {
        let line = line.context("read events")?;
        if line.trim().is_empty() {
            continue;
        }
        let ev: Value = serde_json::from_str(&line).context("decode event")?;
        match &tmpl {
            Some(t) if go_names => {
                let ev = with_go_names(&ev, EVENT_GO_NAMES);
                writeln!(out, "{}", t.execute(&ev).map_err(|e| fail(1, e))?)?
            }
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
    warn.push_str("  - unused build cache\n");
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
    total += prune_build_cache(ctx, all, &[], None)?;
    println!(
        "Total reclaimed space: {}",
        human_size_prec(total as f64, 3)
    );
    Ok(0)
}

/// `builder prune`: POST /build/prune; prints what went and the total.
pub fn builder_prune(ctx: &Ctx, m: &Matches) -> CmdResult {
    let warn = if m.flag("all") {
        "WARNING! This will remove all build cache."
    } else {
        "WARNING! This will remove all dangling build cache."
    };
    if !m.flag("force") && !confirm(warn) {
        return Ok(0);
    }
    let keep = match m.value("keep-storage") {
        Some(k) => Some(
            crate::units::ram_in_bytes(k)
                .ok()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| fail(125, format!("invalid --keep-storage value: {k:?}")))?,
        ),
        None => None,
    };
    let total = prune_build_cache(ctx, m.flag("all"), &m.values("filter"), keep)?;
    println!(
        "Total reclaimed space: {}",
        human_size_prec(total as f64, 3)
    );
    Ok(0)
}

/// POST /build/prune; prints the deleted entries; returns the bytes reclaimed.
fn prune_build_cache(
    ctx: &Ctx,
    all: bool,
    filters: &[String],
    keep: Option<u64>,
) -> anyhow::Result<i64> {
    let mut q = vec![format!("all={}", all as u8)];
    if let Some(f) = filters_json(filters).map_err(|e| fail(125, e))? {
        q.push(format!("filters={}", enc(&f)));
    }
    if let Some(k) = keep {
        q.push(format!("keep-storage={k}"));
    }
    let v = ctx
        .client
        .post_json(&format!("/build/prune?{}", q.join("&")), None)?;
    let items = v["CachesDeleted"].as_array().cloned().unwrap_or_default();
    if !items.is_empty() {
        println!("Deleted build cache objects:");
        for i in items {
            println!("{}", i.as_str().unwrap_or(""));
        }
        println!();
    }
    Ok(v["SpaceReclaimed"].as_i64().unwrap_or(0))
}
