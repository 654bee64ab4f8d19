//! `berth volume create|ls|inspect|rm|prune`.

use crate::args::Matches;
use crate::client::filters_json;
use crate::cmd::image::confirm;
use crate::cmd::run::finish_multi;
use crate::http::enc;
use crate::output;
use crate::units::human_size_prec;
use crate::{fail, CmdResult, Ctx};
use serde_json::{json, Map, Value};

/// `key=value` pairs (`--label`, `--opt`) as a JSON object.
fn pairs(list: &[String]) -> Value {
    let mut m = Map::new();
    for kv in list {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        m.insert(k.to_string(), json!(v));
    }
    Value::Object(m)
}

pub fn create(ctx: &Ctx, m: &Matches) -> CmdResult {
    let name = match (m.args.first(), m.value("name")) {
        (Some(a), Some(n)) if a != n => {
            return Err(fail(
                1,
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg",
            ))
        }
        (Some(a), _) => a.clone(),
        (None, n) => n.unwrap_or("").to_string(),
    };
    let body = json!({
        "Name": name,
        "Driver": m.value("driver").unwrap_or("local"),
        "DriverOpts": pairs(&m.values("opt")),
        "Labels": pairs(&m.values("label")),
    });
    let v = ctx.client.post_json("/volumes/create", Some(&body))?;
    println!("{}", v["Name"].as_str().unwrap_or(""));
    Ok(0)
}

pub const VOLUMES_TABLE: &str = "table {{.Driver}}\t{{.Name}}";

fn header() -> Value {
    json!({"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
        "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE"})
}

/// A list row: Docker's volume context (`Labels` as `k=v,...`).
fn row(v: &Value) -> Value {
    let labels: Vec<String> = v["Labels"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    json!({"Name": v["Name"], "Driver": v["Driver"], "Scope": v["Scope"],
        "Mountpoint": v["Mountpoint"], "Labels": labels.join(","), "Links": "N/A", "Size": "N/A"})
}

pub fn ls(ctx: &Ctx, m: &Matches) -> CmdResult {
    let mut q = "/volumes".to_string();
    if let Some(f) = filters_json(&m.values("filter")).map_err(|e| fail(125, e))? {
        q.push_str(&format!("?filters={}", enc(&f)));
    }
    let v = ctx.client.get_json(&q)?;
    let mut vols = v["Volumes"].as_array().cloned().unwrap_or_default();
    vols.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    if m.flag("quiet") {
        for x in &vols {
            println!("{}", x["Name"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let rows: Vec<Value> = vols.iter().map(row).collect();
    let s = output::render(m.value("format"), VOLUMES_TABLE, &header(), &rows)
        .map_err(|e| fail(1, e))?;
    print!("{s}");
    Ok(0)
}

pub fn inspect(ctx: &Ctx, m: &Matches) -> CmdResult {
    super::inspect_each(ctx, m, "/volumes")
}

pub fn rm(ctx: &Ctx, m: &Matches) -> CmdResult {
    let force = m.flag("force") as u8;
    let mut failed = Vec::new();
    for name in &m.args {
        let r = ctx
            .client
            .delete(&format!("/volumes/{}?force={force}", enc(name)))
            .and_then(|r| r.bytes().map(|_| ()).map_err(crate::client::ApiError::Io));
        match r {
            Ok(()) => println!("{name}"),
            Err(e) => failed.push(e.to_string()),
        }
    }
    finish_multi(failed)
}

pub fn prune(ctx: &Ctx, m: &Matches) -> CmdResult {
    let all = m.flag("all");
    let warn = if all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !m.flag("force") && !confirm(warn) {
        return Ok(0);
    }
    let mut f = m.values("filter");
    if all {
        f.push("all=true".into());
    }
    let mut q = "/volumes/prune".to_string();
    if let Some(fj) = filters_json(&f).map_err(|e| fail(125, e))? {
        q.push_str(&format!("?filters={}", enc(&fj)));
    }
    let v = ctx.client.post_json(&q, None)?;
    let deleted = v["VolumesDeleted"].as_array().cloned().unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Volumes:");
        for d in &deleted {
            println!("{}", d.as_str().unwrap_or(""));
        }
        println!();
    }
    let space = v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    println!("Total reclaimed space: {}", human_size_prec(space, 3));
    Ok(0)
}
