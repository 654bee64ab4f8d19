//! Docker's list output: `--format` handling (table/json/template) and the
//! placeholder contexts of `ps` and `images`.

use crate::template::{tabwrite, Template};
use crate::units::{format_go_time, human_duration, human_size_prec, now};
use serde_json::{json, Map, Value};

/// Renders rows with a docker `--format` value. `default_table` is used for
/// an empty format or plain `table`. `header` maps placeholder names to column titles.
pub fn render(
    format: Option<&str>,
    default_table: &str,
    header: &Value,
    rows: &[Value],
) -> Result<String, String> {
    let f = format.unwrap_or("").trim();
    let f = if f.is_empty() || f == "table" {
        default_table
    } else {
        f
    };
    if f == "json" {
        let t = Template::parse("{{json .}}")?;
        let mut out = String::new();
        for r in rows {
            out.push_str(&t.execute(r)?);
            out.push('\n');
        }
        return Ok(out);
    }
    let (is_table, body) = match f.strip_prefix("table") {
        Some(rest) => (true, rest.trim_start_matches(' ').trim_end_matches(' ')),
        None => (false, f),
    };
    let body = body.replace("\\t", "\t").replace("\\n", "\n");
    let t = Template::parse(&body)?;
    let mut out = String::new();
    if is_table {
        out.push_str(&t.execute(header)?);
        out.push('\n');
    }
    for r in rows {
        out.push_str(&t.execute(r)?);
        out.push('\n');
    }
    if is_table {
        // tabwriter aligns everything; keep the trailing newline
        let trimmed = out.strip_suffix('\n').unwrap_or(&out);
        let mut s = tabwrite(trimmed);
        s.push('\n');
        return Ok(s);
    }
    Ok(out)
}

/// docker's Ellipsis: keep `max` chars, ending with "…" when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

fn methods(labels: &Value) -> Value {
    json!({ "Label": labels.clone() })
}

fn labels_string(labels: &Value) -> String {
    match labels.as_object() {
        Some(o) => {
            let mut v: Vec<String> = o
                .iter()
                .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or("")))
                .collect();
            v.sort();
            v.join(",")
        }
        None => String::new(),
    }
}

/// docker's DisplayablePorts: consecutive unpublished (or same-numbered) ports are grouped
/// (`80-81/tcp`), published ones listed after (`0.0.0.0:8080->80/tcp`).
pub fn ports_string(ports: &Value) -> String {
    struct P {
        ip: String,
        private: u64,
        public: u64,
        ty: String,
    }
    let mut list: Vec<P> = ports
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| P {
                    ip: p
                        .get("IP")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    private: p.get("PrivatePort").and_then(Value::as_u64).unwrap_or(0),
                    public: p.get("PublicPort").and_then(Value::as_u64).unwrap_or(0),
                    ty: p
                        .get("Type")
                        .and_then(Value::as_str)
                        .unwrap_or("tcp")
                        .to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    list.sort_by(|a, b| {
        (a.private, &a.ip, a.public, &a.ty).cmp(&(b.private, &b.ip, b.public, &b.ty))
    });
    let form = |key: &str, first: u64, last: u64| -> String {
        let (ip, ty) = match key.rsplit_once('/') {
            Some((ip, ty)) => (ip, ty),
            None => ("", key),
        };
        let mut g = first.to_string();
        if first != last {
            g = format!("{g}-{last}");
        }
        if !ip.is_empty() {
            g = format!("{ip}:{g}->{g}");
        }
        format!("{g}/{ty}")
    };
    let mut groups: Vec<(String, u64, u64)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for p in &list {
        let mut key = p.ty.clone();
        if !p.ip.is_empty() {
            if p.public != p.private {
                let ip = if p.ip.contains(':') {
                    format!("[{}]", p.ip)
                } else {
                    p.ip.clone()
                };
                host_mappings.push(format!("{ip}:{}->{}/{}", p.public, p.private, p.ty));
                continue;
            }
            key = format!("{}/{}", p.ip, p.ty);
        }
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, p.private, p.private)),
            Some(g) if p.private == g.2 + 1 => g.2 = p.private,
            Some(g) => {
                result.push(form(&g.0, g.1, g.2));
                g.1 = p.private;
                g.2 = p.private;
            }
        }
    }
    for g in &groups {
        result.push(form(&g.0, g.1, g.2));
    }
    result.extend(host_mappings);
    result.join(", ")
}

pub const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub fn ps_header() -> Value {
    json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Ports": "PORTS", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
        "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS", "State": "STATE",
        "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM",
        "\u{0}methods": {"Label": {}},
    })
}

/// The placeholder context of one `ps` row, from a /containers/json entry.
pub fn ps_row(c: &Value, trunc: bool) -> Value {
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let id = s("Id");
    let mut image = s("Image");
    if trunc && image.starts_with("sha256:") {
        image = short_id(&image);
    }
    let cmd = s("Command");
    let command = if trunc {
        format!("{:?}", ellipsis(&cmd, 20))
    } else {
        format!("{cmd:?}")
    };
    let created = c.get("Created").and_then(Value::as_i64).unwrap_or(0);
    let names: Vec<String> = c
        .get("Names")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|n| n.trim_start_matches('/').to_string())
                .filter(|n| !trunc || !n.contains('/'))
                .collect()
        })
        .unwrap_or_default();
    let labels = c.get("Labels").cloned().unwrap_or(Value::Null);
    let size = {
        let rw = c.get("SizeRw").and_then(Value::as_i64).unwrap_or(0);
        let mut s = human_size_prec(rw as f64, 3);
        let v = c.get("SizeRootFs").and_then(Value::as_i64).unwrap_or(0);
        if v > 0 {
            s.push_str(&format!(" (virtual {})", human_size_prec(v as f64, 3)));
        }
        s
    };
    let mounts: Vec<String> = c
        .get("Mounts")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|m| {
                    let n = m
                        .get("Name")
                        .and_then(Value::as_str)
                        .filter(|x| !x.is_empty());
                    let n = n.map(str::to_string).unwrap_or_else(|| {
                        m.get("Source")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string()
                    });
                    if trunc {
                        ellipsis(&n, 15)
                    } else {
                        n
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let mut networks: Vec<String> = c
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let local_volumes = c
        .get("Mounts")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|m| m.get("Driver").and_then(Value::as_str) == Some("local"))
                .count()
        })
        .unwrap_or(0);
    let mut m = Map::new();
    m.insert(
        "ID".into(),
        Value::String(if trunc { short_id(&id) } else { id }),
    );
    m.insert("Image".into(), Value::String(image));
    m.insert("Command".into(), Value::String(command));
    m.insert("CreatedAt".into(), Value::String(format_go_time(created)));
    m.insert(
        "RunningFor".into(),
        Value::String(format!("{} ago", human_duration(now() - created as f64))),
    );
    m.insert(
        "Ports".into(),
        Value::String(ports_string(c.get("Ports").unwrap_or(&Value::Null))),
    );
    m.insert("Status".into(), Value::String(s("Status")));
    m.insert("State".into(), Value::String(s("State")));
    m.insert("Size".into(), Value::String(size));
    m.insert("Names".into(), Value::String(names.join(",")));
    m.insert("Labels".into(), Value::String(labels_string(&labels)));
    m.insert("Mounts".into(), Value::String(mounts.join(",")));
    m.insert("Networks".into(), Value::String(networks.join(",")));
    m.insert(
        "LocalVolumes".into(),
        Value::String(local_volumes.to_string()),
    );
    m.insert(
        "Platform".into(),
        c.get("ImageManifestDescriptor")
            .and_then(|d| d.get("platform"))
            .cloned()
            .unwrap_or(Value::Null),
    );
    m.insert(
        "\u{0}methods".into(),
        methods(&if labels.is_object() {
            labels
        } else {
            json!({})
        }),
    );
    m.sort_keys();
    Value::Object(m)
}

pub const IMAGES_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
pub const IMAGES_TABLE_DIGESTS: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

pub fn images_header() -> Value {
    json!({
        "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
        "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
        "\u{0}methods": {"Label": {}},
    })
}

/// One row per repo:tag of an image (`<none>` when untagged), as docker lists them.
pub fn image_rows(img: &Value, trunc: bool, want_repo: Option<&str>) -> Vec<Value> {
    let id = img.get("Id").and_then(Value::as_str).unwrap_or("");
    let created = img.get("Created").and_then(Value::as_i64).unwrap_or(0);
    let size = img.get("Size").and_then(Value::as_i64).unwrap_or(0);
    let tags: Vec<&str> = img
        .get("RepoTags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "<none>:<none>")
                .collect()
        })
        .unwrap_or_default();
    let digests: Vec<&str> = img
        .get("RepoDigests")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "<none>@<none>")
                .collect()
        })
        .unwrap_or_default();
    let labels = img
        .get("Labels")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let mk = |repo: &str, tag: &str, digest: &str| -> Value {
        let mut m = Map::new();
        m.insert(
            "ID".into(),
            Value::String(if trunc { short_id(id) } else { id.to_string() }),
        );
        m.insert("Repository".into(), Value::String(repo.into()));
        m.insert("Tag".into(), Value::String(tag.into()));
        m.insert("Digest".into(), Value::String(digest.into()));
        m.insert("CreatedSince".into(), Value::String(created_since(created)));
        m.insert("CreatedAt".into(), Value::String(format_go_time(created)));
        m.insert(
            "Size".into(),
            Value::String(human_size_prec(size as f64, 3)),
        );
        m.insert(
            "VirtualSize".into(),
            Value::String(crate::units::human_size(size as f64)),
        );
        m.insert("SharedSize".into(), Value::String("N/A".into()));
        m.insert("UniqueSize".into(), Value::String("N/A".into()));
        m.insert(
            "Containers".into(),
            Value::String(match img.get("Containers").and_then(Value::as_i64) {
                Some(n) if n >= 0 => n.to_string(),
                _ => "N/A".into(),
            }),
        );
        m.insert("\u{0}methods".into(), methods(&labels));
        m.sort_keys();
        Value::Object(m)
    };
    let digest_for = |repo: &str| -> String {
        digests
            .iter()
            .find_map(|d| {
                d.rsplit_once('@')
                    .filter(|(r, _)| *r == repo)
                    .map(|(_, d)| d.to_string())
            })
            .unwrap_or_else(|| "<none>".into())
    };
    let mut rows = Vec::new();
    if tags.is_empty() {
        if let Some((repo, d)) = digests.first().and_then(|d| d.rsplit_once('@')) {
            if want_repo.is_none_or(|w| w == repo) {
                rows.push(mk(repo, "<none>", d));
            }
        } else if want_repo.is_none() {
            rows.push(mk("<none>", "<none>", "<none>"));
        }
    }
    for t in tags {
        let (repo, tag) = split_repo_tag(t);
        if let Some(w) = want_repo {
            let (wr, wt) = split_repo_tag(w);
            if wr != repo || (w.contains(':') && !w.ends_with(':') && wt != tag && split_has_tag(w))
            {
                continue;
            }
        }
        rows.push(mk(repo, tag, &digest_for(repo)));
    }
    rows
}

/// "3 weeks ago", or `N/A` for an image whose config has no creation time (the API's 0).
pub fn created_since(created: i64) -> String {
    if created == 0 {
        return "N/A".into();
    }
    format!("{} ago", human_duration(now() - created as f64))
}

fn split_has_tag(s: &str) -> bool {
    let last = s.rsplit('/').next().unwrap_or(s);
    last.contains(':')
}

/// Splits `host:5000/name:tag` into (`host:5000/name`, `tag`); tag "latest" when absent.
pub fn split_repo_tag(s: &str) -> (&str, &str) {
    let s = s.split('@').next().unwrap_or(s);
    let slash = s.rfind('/').map(|i| i + 1).unwrap_or(0);
    match s[slash..].rfind(':') {
        Some(i) => (&s[..slash + i], &s[slash + i + 1..]),
        None => (s, "latest"),
    }
}

/// An inspect's `--format`: its template, or none for docker's JSON (absent, empty or `json`).
pub fn inspect_template(format: Option<&str>) -> anyhow::Result<Option<crate::template::Template>> {
    match format {
        Some(f) if !f.is_empty() && f != "json" => Ok(Some(
            crate::template::Template::parse(f).map_err(|e| crate::fail(1, e))?,
        )),
        _ => Ok(None),
    }
}

/// What `inspect` prints: each object through the `--format` template, or all of them as
/// docker's indented JSON array.
pub fn print_inspect(
    tmpl: Option<&crate::template::Template>,
    objs: Vec<Value>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match tmpl {
        Some(t) => {
            for o in &objs {
                writeln!(out, "{}", t.execute(o).map_err(|e| crate::fail(1, e))?)?;
            }
        }
        None => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(&Value::Array(objs), &mut ser)?;
            out.write_all(&buf)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}
