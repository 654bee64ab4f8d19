//! `berth network create|ls|inspect|rm|prune|connect|disconnect`.

use crate::args::Matches;
use crate::client::filters_json;
use crate::cmd::image::confirm;
use crate::cmd::run::finish_multi;
use crate::http::enc;
use crate::output;
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

/// `--subnet`, `--gateway`, `--ip-range` as IPAM configs: the i-th gateway and range of a
/// family (IPv4, IPv6) go with the i-th subnet of that family (dockerd's CLI matches them by
/// containment; one subnet per family is the usual case).
fn ipam_configs(m: &Matches) -> Result<Vec<Value>, String> {
    let v6 = |s: &&String| s.contains(':');
    let subnets = m.values("subnet");
    let gateways = m.values("gateway");
    let ranges = m.values("ip-range");
    let mut out = Vec::new();
    for six in [false, true] {
        let fam = |l: &[String]| {
            l.iter()
                .filter(|s| v6(s) == six)
                .cloned()
                .collect::<Vec<_>>()
        };
        let (subnets, gateways, ranges) = (fam(&subnets), fam(&gateways), fam(&ranges));
        if gateways.len() > subnets.len() || ranges.len() > subnets.len() {
            return Err("every ip-range or gateway must have a corresponding subnet".into());
        }
        out.extend(subnets.iter().enumerate().map(|(i, s)| {
            let mut c = json!({"Subnet": s});
            if let Some(g) = gateways.get(i) {
                c["Gateway"] = json!(g);
            }
            if let Some(r) = ranges.get(i) {
                c["IPRange"] = json!(r);
            }
            c
        }));
    }
    Ok(out)
}

pub fn create(ctx: &Ctx, m: &Matches) -> CmdResult {
    let name = m.args.first().cloned().unwrap_or_default();
    let configs = ipam_configs(m).map_err(|e| fail(1, e))?;
    let body = json!({
        "Name": name,
        "Driver": m.value("driver").unwrap_or("bridge"),
        "Internal": m.flag("internal"),
        "Attachable": m.flag("attachable"),
        "EnableIPv6": m.flag("ipv6"),
        "Options": pairs(&m.values("opt")),
        "Labels": pairs(&m.values("label")),
        "IPAM": {"Driver": m.value("ipam-driver").unwrap_or("default"), "Config": configs},
    });
    let v = ctx.client.post_json("/networks/create", Some(&body))?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

pub const NETWORKS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

fn header() -> Value {
    json!({"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
        "IPv6": "IPV6", "IPv4": "IPV4", "Internal": "INTERNAL", "Labels": "LABELS",
        "CreatedAt": "CREATED AT"})
}

/// A list row: Docker's network context.
fn row(v: &Value, trunc: bool) -> Value {
    let id = v["Id"].as_str().unwrap_or("");
    let labels: Vec<String> = v["Labels"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    json!({"ID": if trunc { &id[..id.len().min(12)] } else { id }, "Name": v["Name"],
        "Driver": v["Driver"], "Scope": v["Scope"], "IPv6": v["EnableIPv6"],
        "IPv4": v["EnableIPv4"], "Internal": v["Internal"], "Labels": labels.join(","),
        "CreatedAt": v["Created"]})
}

pub fn ls(ctx: &Ctx, m: &Matches) -> CmdResult {
    let mut q = "/networks".to_string();
    if let Some(f) = filters_json(&m.values("filter")).map_err(|e| fail(125, e))? {
        q.push_str(&format!("?filters={}", enc(&f)));
    }
    let v = ctx.client.get_json(&q)?;
    let mut nets = v.as_array().cloned().unwrap_or_default();
    nets.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    let trunc = !m.flag("no-trunc");
    let rows: Vec<Value> = nets.iter().map(|n| row(n, trunc)).collect();
    if m.flag("quiet") {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let s = output::render(m.value("format"), NETWORKS_TABLE, &header(), &rows)
        .map_err(|e| fail(1, e))?;
    print!("{s}");
    Ok(0)
}

pub fn inspect(ctx: &Ctx, m: &Matches) -> CmdResult {
    super::inspect_each(ctx, m, "/networks")
}

pub fn rm(ctx: &Ctx, m: &Matches) -> CmdResult {
    let mut failed = Vec::new();
    for name in &m.args {
        let r = ctx
            .client
            .delete(&format!("/networks/{}", enc(name)))
            .and_then(|r| r.bytes().map(|_| ()).map_err(crate::client::ApiError::Io));
        match r {
            Ok(()) => println!("{name}"),
            Err(e) if m.flag("force") && e.is_not_found() => {}
            Err(e) => failed.push(e.to_string()),
        }
    }
    finish_multi(failed)
}

pub fn prune(ctx: &Ctx, m: &Matches) -> CmdResult {
    if !m.flag("force")
        && !confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )
    {
        return Ok(0);
    }
    let mut q = "/networks/prune".to_string();
    if let Some(fj) = filters_json(&m.values("filter")).map_err(|e| fail(125, e))? {
        q.push_str(&format!("?filters={}", enc(&fj)));
    }
    let v = ctx.client.post_json(&q, None)?;
    let deleted = v["NetworksDeleted"].as_array().cloned().unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Networks:");
        for d in &deleted {
            println!("{}", d.as_str().unwrap_or(""));
        }
    }
    Ok(0)
}

pub fn connect(ctx: &Ctx, m: &Matches) -> CmdResult {
    let (net, c) = (&m.args[0], &m.args[1]);
    let mut ep = json!({"Aliases": m.values("alias")});
    if let Some(ip) = m.value("ip") {
        ep["IPAMConfig"]["IPv4Address"] = json!(ip);
    }
    if let Some(ip6) = m.value("ip6") {
        ep["IPAMConfig"]["IPv6Address"] = json!(ip6);
    }
    let body = json!({"Container": c, "EndpointConfig": ep});
    ctx.client
        .post_ok(&format!("/networks/{}/connect", enc(net)), Some(&body))?;
    Ok(0)
}

pub fn disconnect(ctx: &Ctx, m: &Matches) -> CmdResult {
    let (net, c) = (&m.args[0], &m.args[1]);
    let body = json!({"Container": c, "Force": m.flag("force")});
    ctx.client
        .post_ok(&format!("/networks/{}/disconnect", enc(net)), Some(&body))?;
    Ok(0)
}
