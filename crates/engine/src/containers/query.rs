//! list and inspect.
use crate::model::Status;
use crate::shared::*;
use crate::state::Record;
use crate::util::*;
use crate::*;
use serde_json::{json, Value};

pub(crate) fn status_string(r: &Record) -> String {
    let now = now_f64();
    let since = |t: &str| human_duration(now - parse_rfc3339(t).unwrap_or(now));
    match r.state.status {
        Status::Running => match &r.state.health {
            Some(h) => format!(
                "Up {} ({})",
                since(&r.state.started_at),
                h.status.ps_suffix()
            ),
            None => format!("Up {}", since(&r.state.started_at)),
        },
        Status::Paused => format!("Up {} (Paused)", since(&r.state.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            since(&r.state.finished_at)
        ),
        Status::Exited if r.has_been_started => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            since(&r.state.finished_at)
        ),
        Status::Exited | Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

/// The status Docker shows: a container that never ran is "created" (berth records an exit
/// for a start that failed).
pub(crate) fn docker_state(r: &Record) -> Status {
    match r.state.status {
        Status::Exited if !r.has_been_started => Status::Created,
        o => o,
    }
}

/// What a list's filters select.
struct Selection<'a> {
    f: &'a Filters,
    /// Stopped ones too.
    all: bool,
    /// The image ids of the `ancestor` filters.
    ancestors: Vec<String>,
    /// `Created` of the `before` and `since` containers.
    before: Option<String>,
    since: Option<String>,
}

impl<'a> Selection<'a> {
    /// The filters that name containers or images, resolved (`recs`: every container).
    fn new(s: &Shared, f: &'a Filters, o: &ListOptions, recs: &[Record]) -> Result<Self> {
        let created_of = |x: &str| -> Result<String> {
            recs.iter()
                .find(|r| {
                    r.id == x
                        || r.name == format!("/{}", x.trim_start_matches('/'))
                        || r.id.starts_with(x)
                })
                .map(|r| r.created.clone())
                .ok_or_else(|| Error::NotFound(format!("No such container: {x}")))
        };
        let before = f.get("before").first().map(|b| created_of(b)).transpose()?;
        let since = f.get("since").first().map(|b| created_of(b)).transpose()?;
        let ancestors = f
            .get("ancestor")
            .iter()
            .map(|a| match s.images.resolve(a) {
                Ok(r) => r.id.to_string(),
                Err(_) => format!("missing:{a}"),
            })
            .collect();
        let all = o.all
            || o.limit.is_some()
            || f.has("status")
            || f.has("exited")
            || before.is_some()
            || since.is_some();
        Ok(Selection {
            f,
            all,
            ancestors,
            before,
            since,
        })
    }

    fn keeps(&self, r: &Record) -> bool {
        let f = self.f;
        let st = docker_state(r);
        let short = r.name.trim_start_matches('/');
        let any = |k: &str, p: &dyn Fn(&String) -> bool| !f.has(k) || f.get(k).iter().any(p);
        (self.all || st.is_active())
            && any("id", &|x| r.id.starts_with(x.as_str()))
            && any("name", &|x| short.contains(x.trim_start_matches('/')))
            && f.match_labels("label", &r.config.labels())
            && any("status", &|x| x == st.as_str())
            && any("health", &|x| {
                x == crate::health::filter_value(r.state.health.as_ref())
            })
            && (!f.has("exited")
                || st == Status::Exited
                    && f.get("exited")
                        .iter()
                        .any(|x| x.parse::<i64>().ok() == Some(r.state.exit_code)))
            && (!f.has("ancestor")
                || f.get("ancestor").iter().any(|a| a == r.config.image.str())
                || self.ancestors.contains(&r.image_id))
            && self.before.as_ref().is_none_or(|b| r.created < *b)
            && self.since.as_ref().is_none_or(|b| r.created > *b)
    }
}

pub(crate) fn list(e: &Engine, o: &ListOptions) -> Result<Vec<Value>> {
    let s = &e.inner.0;
    let f = Filters::parse(&o.filters)?;
    f.validate(&[
        "id",
        "name",
        "label",
        "label!",
        "status",
        "ancestor",
        "exited",
        "before",
        "since",
        "health",
        "isolation",
        "network",
        "publish",
        "expose",
        "volume",
        "is-task",
    ])?;
    for h in f.get("health") {
        if !crate::health::valid_filter(h) {
            return Err(Error::BadParameter(format!(
                "Unrecognised filter value for health: {h}"
            )));
        }
    }
    for st in f.get("status") {
        if st.parse::<Status>().is_err() {
            return Err(Error::BadParameter(format!("invalid filter 'status={st}'")));
        }
    }
    let mut recs: Vec<Record> = s
        .containers
        .lock()
        .by_id
        .values()
        .map(|e| e.rec.clone())
        .collect();
    recs.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
    let sel = Selection::new(s, &f, o, &recs)?;
    let mut out = Vec::new();
    for r in recs {
        if !sel.keeps(&r) {
            continue;
        }
        out.push(summary(s, &r, o.size));
        if let Some(l) = o.limit {
            if l > 0 && out.len() >= l {
                break;
            }
        }
    }
    Ok(out)
}

pub(crate) fn summary(s: &Shared, r: &Record, size: bool) -> Value {
    let mut cmd = vec![r.path.clone()];
    cmd.extend(r.args.iter().cloned());
    let mut v = json!({
        "Id": r.id,
        "Names": [r.name],
        "Image": r.config.image,
        "ImageID": r.image_id,
        "Command": cmd.join(" "),
        "Created": parse_rfc3339(&r.created).unwrap_or(0.0) as i64,
        "Ports": s.networks.endpoint(&r.id).map_or(json!([]), |e| {
            crate::networks::ports::summary_ports(&r.config, &e.ports)
        }),
        "Labels": r.config.labels,
        "State": docker_state(r),
        "Status": status_string(r),
        "HostConfig": {"NetworkMode": r.host_config.network_mode},
        "NetworkSettings": {"Networks": network_entry(s, r)},
        "Mounts": mounts_json(r),
    });
    if size {
        v["SizeRw"] = json!(crate::archive::size_rw(s, &r.id).unwrap_or(0));
        v["SizeRootFs"] = json!(
            s.images.resolve(&r.image_id).map(|i| i.size).unwrap_or(0)
                + v["SizeRw"].as_u64().unwrap_or(0)
        );
    }
    v
}

/// Inspect's and list's `Mounts`.
pub(crate) fn mounts_json(r: &Record) -> Value {
    Value::Array(r.mounts().iter().map(|m| m.api()).collect())
}

/// Inspect's HostConfig: the record's, with Docker's defaults for what the client left out.
fn host_config_json(r: &Record) -> Result<Value> {
    let mut host =
        serde_json::to_value(&r.host_config).map_err(|er| internal("encode HostConfig", er))?;
    for (k, d) in [
        ("Binds", Value::Null),
        ("Privileged", json!(false)),
        ("ReadonlyRootfs", json!(false)),
        ("AutoRemove", json!(false)),
        ("ShmSize", json!(67108864)),
        ("Memory", json!(0)),
        ("MemorySwap", json!(0)),
        ("NanoCpus", json!(0)),
        ("CpuShares", json!(0)),
        ("CpuQuota", json!(0)),
        ("CpuPeriod", json!(0)),
        ("CpusetCpus", json!("")),
        ("PidsLimit", Value::Null),
        ("BlkioWeight", json!(0)),
        ("CapAdd", Value::Null),
        ("CapDrop", Value::Null),
        ("Init", Value::Null),
        ("PortBindings", json!({})),
        ("IpcMode", json!("private")),
        ("PidMode", json!("")),
        ("Ulimits", Value::Null),
        ("Devices", json!([])),
        ("SecurityOpt", Value::Null),
        ("Tmpfs", Value::Null),
        ("Mounts", Value::Null),
        ("OomKillDisable", json!(false)),
        ("Isolation", json!("")),
        ("Runtime", json!("berth")),
        ("MaskedPaths", Value::Null),
        ("ReadonlyPaths", Value::Null),
    ] {
        if host.get(k).is_none() {
            host[k] = d;
        }
    }
    if host["ShmSize"].as_i64() == Some(0) {
        host["ShmSize"] = json!(67108864);
    }
    Ok(host)
}

pub(crate) fn inspect(e: &Engine, x: &str, size: bool) -> Result<Value> {
    let s = &e.inner.0;
    let (id, _) = s.containers.find(x)?;
    let r = s.containers.record(&id)?;
    let host = host_config_json(&r)?;
    let config = serde_json::to_value(&r.config).map_err(|er| internal("encode Config", er))?;
    let mut v = json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.path,
        "Args": r.args,
        "State": state_json(&r),
        "Image": r.image_id,
        "ResolvConfPath": s.etc_dir(&r.id).join("resolv.conf"),
        "HostnamePath": s.etc_dir(&r.id).join("hostname"),
        "HostsPath": s.etc_dir(&r.id).join("hosts"),
        "LogPath": r.log_path,
        "Name": r.name,
        "RestartCount": r.restart_count,
        "Driver": r.driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": exec_ids(s, &r.id),
        "HostConfig": host,
        "GraphDriver": {"Name": r.driver, "Data": {"MergedDir": s.rootfs(&r.id)}},
        "Mounts": mounts_json(&r),
        "Config": config,
        "NetworkSettings": network_settings(s, &r),
    });
    if size {
        let rw = crate::archive::size_rw(s, &r.id).unwrap_or(0);
        v["SizeRw"] = json!(rw);
        v["SizeRootFs"] = json!(s.images.resolve(&r.image_id).map(|i| i.size).unwrap_or(0) + rw);
    }
    Ok(v)
}

/// Inspect's State.
fn state_json(r: &Record) -> Value {
    let st = &r.state;
    let zero = "0001-01-01T00:00:00Z";
    let mut v = json!({
        "Status": docker_state(r),
        "Running": st.status.has_process(),
        "Paused": st.status == Status::Paused,
        "Restarting": st.status == Status::Restarting,
        "OOMKilled": st.oom_killed,
        "Dead": st.status == Status::Dead,
        "Pid": if st.status.has_process() { st.pid } else { 0 },
        "ExitCode": st.exit_code,
        "Error": st.error,
        "StartedAt": if st.started_at.is_empty() { zero } else { &st.started_at },
        "FinishedAt": if st.finished_at.is_empty() { zero } else { &st.finished_at },
    });
    if let Some(h) = &st.health {
        v["Health"] = json!(h);
    }
    v
}

/// Inspect's and list's `NetworkSettings.Networks` (one entry per network; `networks/`).
pub(crate) fn network_entry(s: &Shared, r: &Record) -> Value {
    crate::networks::container_networks(s, r)
}

/// Inspect's `NetworkSettings`.
fn network_settings(s: &Shared, r: &Record) -> Value {
    let ep = s.networks.endpoint(&r.id);
    let published = ep.as_ref().map_or(&[][..], |e| e.ports.as_slice());
    let ports = if ep.is_some() {
        crate::networks::ports::settings_ports(&r.config, &r.host_config, published)
    } else {
        json!({})
    };
    let mut v = json!({
        "Bridge": "", "SandboxID": "", "SandboxKey": "", "HairpinMode": false,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": ports,
        "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "",
        "EndpointID": "", "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
        "Networks": network_entry(s, r),
    });
    if let Some(ep) = ep {
        v["Gateway"] = json!(ep.gateway.to_string());
        v["IPAddress"] = json!(ep.ip.to_string());
        v["IPPrefixLen"] = json!(ep.prefix_len);
        v["MacAddress"] = json!(ep.mac);
        v["EndpointID"] = json!(ep.endpoint_id);
        if let (Some(ip6), Some(gw6)) = (ep.ip6, ep.gateway6) {
            v["GlobalIPv6Address"] = json!(ip6.to_string());
            v["GlobalIPv6PrefixLen"] = json!(ep.prefix_len6);
            v["IPv6Gateway"] = json!(gw6.to_string());
        }
    }
    v
}

pub(crate) fn exec_ids(s: &Shared, id: &str) -> Value {
    let ids: Vec<String> = s
        .execs
        .lock()
        .map(|m| {
            m.values()
                .filter(|x| x.container == id)
                .map(|x| x.id.clone())
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        Value::Null
    } else {
        json!(ids)
    }
}

pub(crate) fn running_id(s: &Shared, x: &str) -> Result<Record> {
    let (id, _) = s.containers.find(x)?;
    let r = s.containers.record(&id)?;
    if !r.state.status.has_process() {
        return Err(Error::Conflict(format!("Container {id} is not running")));
    }
    Ok(r)
}
