//! `system df`: the summary table, and with `-v` docker's per-object sections.

use crate::args::Matches;
use crate::output::{self, created_since, ellipsis, short_id, split_repo_tag};
use crate::units::{human_duration, human_size, human_size_prec, now};
use crate::{fail, CmdResult, Ctx};
use serde_json::{json, Value};

pub fn df(ctx: &Ctx, m: &Matches) -> CmdResult {
    let v = ctx.client.get_json("/system/df")?;
    if m.flag("verbose") {
        return verbose(&v, m.value("format"));
    }
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
    let b_busy = |x: &&Value| x["InUse"].as_bool().unwrap_or(false);
    let b_active = cache.iter().filter(b_busy).count();
    let b_reclaim: i64 = b_size
        - cache
            .iter()
            .filter(b_busy)
            .map(|x| x["Size"].as_i64().unwrap_or(0))
            .sum::<i64>();
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
        json!({"Type": "Build Cache", "TotalCount": cache.len().to_string(), "Active": b_active.to_string(), "Size": hs(b_size as f64, 3), "Reclaimable": hs(b_reclaim as f64, 3)}),
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

fn list<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn int(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(0)
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// `system df -v`: images, containers, volumes and build cache, each under its title.
fn verbose(v: &Value, format: Option<&str>) -> CmdResult {
    if format.is_some_and(|f| f != "table") {
        return Err(fail(
            1,
            "berth system df: --format with --verbose takes only \"table\"",
        ));
    }
    let mut out = String::from("Images space usage:\n\n");
    let rows: Vec<Value> = list(v, "Images").iter().map(image_row).collect();
    out += &table(IMAGES, &rows)?;
    out += "\nContainers space usage:\n\n";
    let rows: Vec<Value> = list(v, "Containers").iter().map(container_row).collect();
    out += &table(CONTAINERS, &rows)?;
    out += "\nLocal Volumes space usage:\n\n";
    let rows: Vec<Value> = list(v, "Volumes").iter().map(volume_row).collect();
    out += &table(VOLUMES, &rows)?;
    let cache = list(v, "BuildCache");
    let cache_size: i64 = cache.iter().map(|c| int(c, "Size")).sum();
    out += &format!("\nBuild cache usage: {}\n\n", human_size(cache_size as f64));
    let rows: Vec<Value> = cache.iter().map(cache_row).collect();
    out += &table(CACHE, &rows)?;
    print!("{out}");
    Ok(0)
}

type Columns = &'static [(&'static str, &'static str)];

const IMAGES: Columns = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("Size", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("Containers", "CONTAINERS"),
];
const CONTAINERS: Columns = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Size", "SIZE"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("Names", "NAMES"),
];
const VOLUMES: Columns = &[
    ("Name", "VOLUME NAME"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
];
const CACHE: Columns = &[
    ("ID", "CACHE ID"),
    ("CacheType", "CACHE TYPE"),
    ("Size", "SIZE"),
    ("CreatedSince", "CREATED"),
    ("LastUsedSince", "LAST USED"),
    ("UsageCount", "USAGE"),
    ("Shared", "SHARED"),
];

fn table(cols: Columns, rows: &[Value]) -> anyhow::Result<String> {
    let tmpl: Vec<String> = cols.iter().map(|(k, _)| format!("{{{{.{k}}}}}")).collect();
    let tmpl = format!("table {}", tmpl.join("\t"));
    let header: serde_json::Map<String, Value> = cols
        .iter()
        .map(|(k, h)| (k.to_string(), Value::String(h.to_string())))
        .collect();
    output::render(None, &tmpl, &Value::Object(header), rows).map_err(|e| fail(1, e))
}

/// One row per image, its first tag only (`<none>` when untagged), as docker shows it.
fn image_row(i: &Value) -> Value {
    let tag = i
        .get("RepoTags")
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .and_then(Value::as_str)
        .filter(|t| *t != "<none>:<none>");
    let (repo, tag) = tag.map_or(("<none>", "<none>"), split_repo_tag);
    let (size, shared) = (int(i, "Size"), int(i, "SharedSize"));
    let na = |x: String| if shared < 0 { "N/A".to_string() } else { x };
    json!({
        "Repository": repo, "Tag": tag, "ID": short_id(text(i, "Id")),
        "CreatedSince": created_since(int(i, "Created")),
        "Size": human_size_prec(size as f64, 3),
        "SharedSize": na(human_size_prec(shared as f64, 3)),
        "UniqueSize": na(human_size_prec((size - shared) as f64, 3)),
        "Containers": int(i, "Containers").to_string(),
    })
}

fn container_row(c: &Value) -> Value {
    let volumes = list(c, "Mounts")
        .iter()
        .filter(|m| text(m, "Type") == "volume")
        .count();
    let names: Vec<&str> = list(c, "Names")
        .iter()
        .filter_map(Value::as_str)
        .map(|n| n.trim_start_matches('/'))
        .collect();
    let mut image = text(c, "Image").to_string();
    if image.starts_with("sha256:") {
        image = short_id(&image);
    }
    json!({
        "ID": short_id(text(c, "Id")), "Image": image,
        "Command": format!("{:?}", ellipsis(text(c, "Command"), 20)),
        "LocalVolumes": volumes.to_string(),
        "Size": human_size_prec(int(c, "SizeRw") as f64, 3),
        "RunningFor": format!("{} ago", human_duration(now() - int(c, "Created") as f64)),
        "Status": text(c, "Status"), "Names": names.join(","),
    })
}

fn volume_row(v: &Value) -> Value {
    let usage = v.get("UsageData").cloned().unwrap_or(Value::Null);
    let size = int(&usage, "Size");
    json!({
        "Name": ellipsis(text(v, "Name"), 64),
        "Links": int(&usage, "RefCount").to_string(),
        "Size": if size < 0 { "N/A".to_string() } else { human_size_prec(size as f64, 3) },
    })
}

fn cache_row(c: &Value) -> Value {
    let since = |k: &str| {
        crate::units::parse_rfc3339(text(c, k))
            .map(|t| format!("{} ago", human_duration(now() - t)))
            .unwrap_or_default()
    };
    json!({
        "ID": ellipsis(text(c, "ID"), 12), "CacheType": text(c, "Type"),
        "Size": human_size_prec(int(c, "Size") as f64, 3),
        "CreatedSince": since("CreatedAt"), "LastUsedSince": since("LastUsedAt"),
        "UsageCount": int(c, "UsageCount").to_string(),
        "Shared": c.get("Shared").and_then(Value::as_bool).unwrap_or(false).to_string(),
    })
}
