//! The `/networks` API: list, inspect, create, remove, prune, connect and disconnect, shaped
//! as dockerd's (swagger `Network`, `NetworkCreateResponse`, `EndpointSettings`).
use super::attach::{is_network_mode, Attach};
use super::bridge::{lock, BridgeNet, Join};
use super::endpoint::{Endpoint, EndpointDir};
use super::user::{self, NetRecord};
use super::{host, user_dev, Networks, DEFAULT_NETWORK};
use crate::model::Status;
use crate::shared::Shared;
use crate::state::Record;
use crate::util::{internal, parse_time_arg, random_id, Filters};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

/// The IDs of the `host` and `none` networks, made once (`<root>/network/predefined.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Predefined {
    host: String,
    none: String,
    /// When the default bridge's record was first made.
    created: String,
}

impl Predefined {
    pub(super) fn open(dir: &Path) -> Result<Predefined> {
        let p = dir.join("predefined.json");
        if let Some(v) = std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            return Ok(v);
        }
        let v = Predefined {
            host: random_id()?,
            none: random_id()?,
            created: crate::util::now_rfc3339(),
        };
        crate::util::write_json_atomic(&p, &v)?;
        Ok(v)
    }
}

/// One network as the API shows it.
struct View {
    id: String,
    name: String,
    driver: &'static str,
    created: String,
    internal: bool,
    attachable: bool,
    ipv6: bool,
    ipam: Vec<Value>,
    options: Value,
    labels: Value,
    net: Option<Arc<BridgeNet>>,
    builtin: bool,
}

impl View {
    fn json(&self) -> Value {
        let mut containers = serde_json::Map::new();
        for ep in self.net.iter().flat_map(|n| n.endpoints()) {
            let v6 = ep
                .ip6
                .map_or(String::new(), |a| format!("{a}/{}", ep.prefix_len6));
            containers.insert(
                ep.container.clone(),
                json!({"Name": ep.name, "EndpointID": ep.endpoint_id, "MacAddress": ep.mac,
                       "IPv4Address": format!("{}/{}", ep.ip, ep.prefix_len), "IPv6Address": v6}),
            );
        }
        json!({
            "Name": self.name, "Id": self.id, "Created": self.created, "Scope": "local",
            "Driver": self.driver, "EnableIPv4": self.driver == "bridge", "EnableIPv6": self.ipv6,
            "IPAM": {"Driver": "default", "Options": null, "Config": self.ipam},
            "Internal": self.internal, "Attachable": self.attachable, "Ingress": false,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": false, "Containers": containers,
            "Options": self.options, "Labels": self.labels,
        })
    }
}

fn views(n: &Networks) -> Result<Vec<View>> {
    let p = &n.predefined;
    let mut v = Vec::new();
    if let Some(b) = &n.bridge {
        let dev = b.endpoints_gateway();
        v.push(View {
            id: b.id().to_string(),
            name: DEFAULT_NETWORK.into(),
            driver: "bridge",
            created: p.created.clone(),
            internal: false,
            attachable: false,
            ipv6: false,
            ipam: vec![json!({"Subnet": dev.0.to_string(), "Gateway": dev.1.to_string()})],
            options: json!({"com.docker.network.bridge.default_bridge": "true",
                "com.docker.network.bridge.enable_ip_masquerade": "true",
                "com.docker.network.bridge.name": dev.2}),
            labels: json!({}),
            net: Some(b.clone()),
            builtin: true,
        });
    }
    for (id, name, driver) in [(&p.host, "host", "host"), (&p.none, "none", "null")] {
        v.push(View {
            id: id.clone(),
            name: name.into(),
            driver,
            created: p.created.clone(),
            internal: false,
            attachable: false,
            ipv6: false,
            ipam: vec![],
            options: json!({}),
            labels: json!({}),
            net: None,
            builtin: true,
        });
    }
    for (r, net) in lock(&n.user)?.values() {
        let mut c = json!({"Subnet": r.subnet.to_string(), "Gateway": r.gateway.to_string()});
        if let Some(ir) = r.ip_range {
            c["IPRange"] = json!(ir.to_string());
        }
        if !r.aux.is_empty() {
            c["AuxiliaryAddresses"] = json!(r.aux);
        }
        let mut ipam = vec![c];
        if let Some(v6) = &r.ipv6 {
            let mut c6 =
                json!({"Subnet": v6.subnet.to_string(), "Gateway": v6.gateway.to_string()});
            if let Some(ir) = v6.ip_range {
                c6["IPRange"] = json!(ir.to_string());
            }
            ipam.push(c6);
        }
        v.push(View {
            id: r.id.clone(),
            name: r.name.clone(),
            driver: "bridge",
            created: r.created.clone(),
            internal: r.internal,
            attachable: r.attachable,
            ipv6: r.ipv6.is_some(),
            ipam,
            options: json!(r.options),
            labels: json!(r.labels),
            net: Some(net.clone()),
            builtin: false,
        });
    }
    Ok(v)
}

fn find_view(n: &Networks, x: &str) -> Result<View> {
    let all = views(n)?;
    let pos = all
        .iter()
        .position(|v| v.id == x)
        .or_else(|| all.iter().position(|v| v.name == x))
        .or_else(|| {
            let m: Vec<usize> = (0..all.len())
                .filter(|i| !x.is_empty() && all[*i].id.starts_with(x))
                .collect();
            (m.len() == 1).then(|| m[0])
        });
    match pos {
        Some(i) => Ok(all
            .into_iter()
            .nth(i)
            .ok_or_else(|| Error::internal_msg("lost view"))?),
        None => Err(Error::NotFound(format!("network {x} not found"))),
    }
}

/// `GET /networks/{id}`.
pub(crate) fn inspect(s: &Shared, x: &str) -> Result<Value> {
    Ok(find_view(&s.networks, x)?.json())
}

/// `GET /networks`: filters name, id, label, driver, type (custom|builtin), dangling.
pub(crate) fn list(s: &Shared, filters: &Value) -> Result<Value> {
    let f = Filters::parse(filters)?;
    f.validate(&["name", "id", "label", "driver", "type", "dangling"])?;
    for t in f.get("type") {
        if !matches!(t.as_str(), "custom" | "builtin") {
            return Err(Error::BadParameter(format!("invalid filter: 'type'='{t}'")));
        }
    }
    let dangling = match f.get("dangling") {
        [] => None,
        [v] if matches!(v.as_str(), "true" | "1") => Some(true),
        [v] if matches!(v.as_str(), "false" | "0") => Some(false),
        _ => return Err(Error::BadParameter("invalid filter 'dangling'".into())),
    };
    let out: Vec<Value> = views(&s.networks)?
        .into_iter()
        .filter(|v| {
            f.get("name").is_empty() || f.get("name").iter().any(|n| v.name.contains(n.as_str()))
        })
        .filter(|v| {
            f.get("id").is_empty() || f.get("id").iter().any(|i| v.id.starts_with(i.as_str()))
        })
        .filter(|v| f.get("driver").is_empty() || f.get("driver").iter().any(|d| d == v.driver))
        .filter(|v| f.get("type").iter().all(|t| (t == "builtin") == v.builtin))
        .filter(|v| {
            let labels = crate::util::labels_of(&v.labels);
            f.match_labels("label", &labels)
        })
        .filter(|v| {
            dangling.is_none_or(|d| {
                let used = v.net.as_ref().is_some_and(|n| !n.endpoints().is_empty());
                d == (!v.builtin && !used)
            })
        })
        .map(|v| v.json())
        .collect();
    Ok(json!(out))
}

/// `POST /networks/create`: `{"Id": ..., "Warning": ""}`.
pub(crate) fn create(s: &Shared, body: &Value) -> Result<Value> {
    let n = &s.networks;
    let req = user::parse_create(body)?;
    let _ops = lock(&n.ops)?;
    if matches!(req.name.as_str(), "bridge" | "host" | "none" | "default") {
        return Err(Error::Forbidden(format!(
            "{} is a pre-defined network and cannot be created",
            req.name
        )));
    }
    if views(n)?.iter().any(|v| v.name == req.name) {
        return Err(Error::Conflict(format!(
            "network with name {} already exists",
            req.name
        )));
    }
    let id = user::new_id()?;
    crate::mark("net: create");
    let claim = host::host_lock()?;
    let host_routes = host::host_subnets()?;
    let rec = user::allocate(&req, &mut *n.ipam.lock()?, &id, &host_routes)?;
    crate::mark("net: subnet allocated");
    let undo_ipam = || {
        let _ = n.ipam.lock().map(|mut i| i.remove_network(&id));
    };
    let mut nl = berth_net::Netlink::new().map_err(|e| internal("open rtnetlink", e))?;
    let taken = nl
        .link(&rec.bridge)
        .map_err(|e| internal(format!("read link {}", rec.bridge), e))?;
    if taken.is_some() {
        undo_ipam();
        return Err(Error::Conflict(format!(
            "a network interface named {} exists already on this host: choose another {}",
            rec.bridge,
            user::OPT_BRIDGE_NAME
        )));
    }
    if let Err(e) = n.records.write(&rec) {
        undo_ipam();
        return Err(e);
    }
    crate::mark("net: record written");
    let made = EndpointDir::open(n.records.net_dir(&id).join("endpoints"))
        .and_then(|eps| BridgeNet::open_dev(nl, &user_dev(&rec), n.ipam.clone(), eps));
    drop(claim);
    let net = match made {
        Ok(net) => net,
        Err(e) => {
            // (Whatever of the device and table was made goes with the record.)
            // (remove() deletes the `ip6` table as well.)
            let fw = berth_net::Firewall::new(&rec.bridge, rec.subnet);
            let _ = fw.remove();
            if let Ok(mut nl) = berth_net::Netlink::new() {
                let _ = nl.del_link(&rec.bridge);
            }
            let _ = n.records.remove(&id);
            undo_ipam();
            return Err(e);
        }
    };
    crate::mark("net: device and table made");
    lock(&n.user)?.insert(id.clone(), (rec, Arc::new(net)));
    n.endpoints_changed(&id);
    crate::mark("net: created");
    Ok(json!({"Id": id, "Warning": ""}))
}

/// `DELETE /networks/{id}`: 403 while a container is connected; built-in networks 403.
pub(crate) fn remove(s: &Shared, x: &str) -> Result<()> {
    let n = &s.networks;
    let _ops = lock(&n.ops)?;
    let v = find_view(n, x)?;
    if v.builtin {
        return Err(Error::Forbidden(format!(
            "{} is a pre-defined network and cannot be removed",
            v.name
        )));
    }
    remove_locked(n, &v.id, &v.name)
}

fn remove_locked(n: &Networks, id: &str, name: &str) -> Result<()> {
    let Some((rec, net)) = lock(&n.user)?.get(id).cloned() else {
        return Err(Error::NotFound(format!("network {id} not found")));
    };
    if !net.endpoints().is_empty() {
        return Err(Error::Forbidden(format!(
            "error while removing network: network {name} id {id} has active endpoints"
        )));
    }
    crate::mark("net: remove");
    n.records.remove(id)?;
    let others = {
        let mut u = lock(&n.user)?;
        u.remove(id);
        !u.is_empty() || n.bridge.is_some()
    };
    crate::mark("net: record removed");
    net.teardown();
    crate::mark("net: torn down");
    n.dns.remove(id);
    if let Ok(mut i) = n.ipam.lock() {
        if let Err(e) = i.remove_network(id) {
            tracing::warn!("remove the addresses of network {}: {e}", rec.name);
        }
    }
    crate::mark("net: addresses removed");
    // (This daemon's other networks keep a berth table: ip_forward stays as it is.)
    if !others {
        host::restore_forward();
    }
    Ok(())
}

/// `POST /networks/prune`: user networks no container is connected to; filters label,
/// label!, until. `{"NetworksDeleted": [names]}`.
pub(crate) fn prune(s: &Shared, filters: &Value) -> Result<Value> {
    let f = Filters::parse(filters)?;
    f.validate(&["label", "label!", "until"])?;
    let until = match f.get("until") {
        [] => None,
        [u] => Some(parse_time_arg(u)?),
        _ => return Err(Error::BadParameter("invalid filter 'until'".into())),
    };
    let n = &s.networks;
    let _ops = lock(&n.ops)?;
    let cands: Vec<NetRecord> = lock(&n.user)?
        .values()
        .filter(|(_, net)| net.endpoints().is_empty())
        .map(|(r, _)| r.clone())
        .collect();
    let mut deleted = Vec::new();
    for r in cands {
        let excluded = f.get("label!").iter().any(|l| match l.split_once('=') {
            Some((k, v)) => r.labels.get(k).is_some_and(|x| x == v),
            None => r.labels.contains_key(l.as_str()),
        });
        if !f.match_labels("label", &r.labels) || excluded {
            continue;
        }
        let created = berth_fsutil::parse_rfc3339(&r.created).unwrap_or(0.0);
        if until.is_some_and(|u| created >= u) {
            continue;
        }
        match remove_locked(n, &r.id, &r.name) {
            Ok(()) => deleted.push(r.name),
            Err(e) => tracing::warn!("prune network {}: {e}", r.name),
        }
    }
    Ok(json!({ "NetworksDeleted": deleted }))
}

/// `POST /networks/{id}/connect`: a running container gets its interface now; a stopped
/// one at its next start.
pub(crate) fn connect(s: &Shared, x: &str, body: &Value) -> Result<()> {
    let n = &s.networks;
    let v = find_view(n, x)?;
    if v.builtin && v.name != DEFAULT_NETWORK {
        return Err(Error::Forbidden(format!(
            "container cannot be connected to the {} network",
            v.name
        )));
    }
    let c = body["Container"].as_str().unwrap_or("");
    let (cid, op) = s.containers.find(c)?;
    let _op = op
        .lock()
        .map_err(|_| Error::internal_msg("container lock poisoned"))?;
    let rec = s.containers.record(&cid)?;
    if !rec.running() {
        // (A run prepared at create has its endpoints made already: the start makes them anew.)
        crate::prepare::discard_prepared(s, &cid);
    }
    let mode = rec.host_config.network_mode.str().to_string();
    if !is_network_mode(&mode) {
        return Err(Error::Forbidden(format!(
            "container {} is in network mode {mode:?}: it cannot be connected to a network",
            rec.name.trim_start_matches('/')
        )));
    }
    super::attach::check_honoured(&v.name, &body["EndpointConfig"])?;
    let mut a = Attach::from_settings(&v.name, &body["EndpointConfig"])?;
    let net_val = json!({"EndpointsConfig": {&v.name: body["EndpointConfig"]}});
    let mut hc = rec.host_config.clone();
    hc.network_mode = crate::model::Field::Set(v.name.clone());
    n.plan(&hc, Some(&net_val))?;
    let _ops = lock(&n.ops)?;
    let mut list = n.attach.get(&cid, &mode);
    let same = |l: &Attach| n.find(&l.network).is_ok_and(|(net, _)| net.id() == v.id);
    if list.iter().any(same) {
        return Err(Error::Forbidden(format!(
            "endpoint with name {} already exists in network {}",
            rec.name.trim_start_matches('/'),
            v.name
        )));
    }
    a.network = v.name.clone();
    if rec.state.status == Status::Running && rec.state.pid > 0 {
        connect_running(s, &rec, &v, &a)?;
    }
    list.push(a);
    n.attach.set(&cid, &mode, &list)
}

fn connect_running(s: &Shared, rec: &Record, v: &View, a: &Attach) -> Result<()> {
    let Some(net) = &v.net else {
        return Err(Error::internal_msg(format!(
            "network {} has no device",
            v.name
        )));
    };
    let path = format!("/proc/{}/ns/net", rec.state.pid);
    let f = std::fs::File::open(&path).map_err(|e| internal(format!("open {path}"), e))?;
    let fd = std::os::fd::AsFd::as_fd(&f);
    let ifname = berth_net::Bridge::free_ifname(fd)
        .map_err(|e| internal(format!("list the interfaces of {}", rec.name), e))?;
    let join = Join {
        ip: a.ip,
        ip6: a.ip6,
        aliases: a.aliases.clone(),
        ifname,
        default_route: true,
    };
    net.connect(&rec.id, &rec.name, &[], fd, &join)?;
    s.networks.endpoints_changed(net.id());
    crate::etc::refresh_dns_networks(s, &rec.id)
}

/// `POST /networks/{id}/disconnect`.
pub(crate) fn disconnect(s: &Shared, x: &str, body: &Value) -> Result<()> {
    let n = &s.networks;
    let v = find_view(n, x)?;
    let c = body["Container"].as_str().unwrap_or("");
    let force = body["Force"].as_bool().unwrap_or(false);
    let (cid, op) = match s.containers.find(c) {
        Ok(x) => x,
        Err(_) if force => {
            // (A container that is gone: its endpoint goes anyway.)
            if let Some(net) = &v.net {
                if let Some(ep) = net.endpoints().into_iter().find(|e| e.name == c) {
                    net.disconnect(&ep.container);
                    n.endpoints_changed(net.id());
                    return Ok(());
                }
            }
            return Err(Error::NotFound(format!("No such container: {c}")));
        }
        Err(e) => return Err(e),
    };
    let _op = op
        .lock()
        .map_err(|_| Error::internal_msg("container lock poisoned"))?;
    let rec = s.containers.record(&cid)?;
    if !rec.running() {
        // (A run prepared at create has its endpoints made already: the start makes them anew.)
        crate::prepare::discard_prepared(s, &cid);
    }
    let mode = rec.host_config.network_mode.str().to_string();
    let _ops = lock(&n.ops)?;
    let mut list = n.attach.get(&cid, &mode);
    let before = list.len();
    list.retain(|l| !n.find(&l.network).is_ok_and(|(net, _)| net.id() == v.id));
    let live = v
        .net
        .as_ref()
        .is_some_and(|net| net.endpoint(&cid).is_some());
    if before == list.len() && !live {
        return Err(Error::Forbidden(format!(
            "container {} is not connected to network {}",
            rec.name.trim_start_matches('/'),
            v.name
        )));
    }
    if let Some(net) = &v.net {
        if net.disconnect(&cid) {
            n.endpoints_changed(net.id());
            crate::etc::refresh_dns_networks(s, &cid)?;
        }
    }
    n.attach.set(&cid, &mode, &list)
}

/// Inspect's and list's `NetworkSettings.Networks` of a container: one entry per network
/// it is on (the endpoint's values while it runs, empty ones otherwise).
pub(crate) fn container_networks(s: &Shared, r: &Record) -> Value {
    let n = &s.networks;
    let mode = r.host_config.network_mode.str();
    let mut out = serde_json::Map::new();
    if !is_network_mode(mode) {
        let name = if matches!(mode, "" | "default") {
            "none"
        } else {
            mode
        };
        if !name.starts_with("container:") {
            out.insert(name.to_string(), entry(&Attach::plain(name), None, ""));
        }
        return Value::Object(out);
    }
    for a in n.attach.get(&r.id, mode) {
        let found = n.find(&a.network).ok();
        let ep = found.as_ref().and_then(|(net, _)| net.endpoint(&r.id));
        let nid = found.as_ref().map_or("", |(net, _)| net.id());
        let mut v = entry(&a, ep.as_ref(), nid);
        if found.as_ref().is_some_and(|(_, rec)| rec.is_some()) {
            let mut names = vec![r.name.trim_start_matches('/').to_string()];
            names.extend(a.aliases.iter().cloned());
            let short = r.id[..r.id.len().min(12)].to_string();
            if !names.contains(&short) {
                names.push(short);
            }
            v["DNSNames"] = json!(names);
        }
        out.insert(a.network.clone(), v);
    }
    Value::Object(out)
}

fn entry(a: &Attach, ep: Option<&Endpoint>, nid: &str) -> Value {
    let ipam_config = match (a.ip, a.ip6) {
        (None, None) => Value::Null,
        (ip, ip6) => {
            let mut c = json!({});
            if let Some(ip) = ip {
                c["IPv4Address"] = json!(ip.to_string());
            }
            if let Some(ip6) = ip6 {
                c["IPv6Address"] = json!(ip6.to_string());
            }
            c
        }
    };
    let mut v = json!({
        "IPAMConfig": ipam_config,
        "Links": null, "Aliases": if a.aliases.is_empty() { Value::Null } else { json!(a.aliases) },
        "MacAddress": "", "DriverOpts": null, "GwPriority": 0, "NetworkID": nid,
        "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null,
    });
    if let Some(ep) = ep {
        v["MacAddress"] = json!(ep.mac);
        v["EndpointID"] = json!(ep.endpoint_id);
        v["Gateway"] = json!(ep.gateway.to_string());
        v["IPAddress"] = json!(ep.ip.to_string());
        v["IPPrefixLen"] = json!(ep.prefix_len);
        if let (Some(ip6), Some(gw6)) = (ep.ip6, ep.gateway6) {
            v["GlobalIPv6Address"] = json!(ip6.to_string());
            v["GlobalIPv6PrefixLen"] = json!(ep.prefix_len6);
            v["IPv6Gateway"] = json!(gw6.to_string());
        }
    }
    v
}
