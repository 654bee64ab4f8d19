//! rename and update (resources, restart policy).
use crate::containers::*;
use crate::model::{decode, Field, HostConfig};
use crate::prepare::*;
use crate::*;
use serde_json::{json, Value};

pub(crate) fn rename(e: &Engine, x: &str, new_name: &str) -> Result<()> {
    let s = &e.inner.0;
    let n = validate_name(new_name)?;
    let (old, rec, v, saved) = {
        let mut reg = s.containers.lock();
        let id = s.containers.resolve(&reg, x)?;
        let old = reg.by_id[&id].rec.name.clone();
        if old == n {
            return Err(Error::Conflict(
                "Renaming a container with the same name as its current name".to_string(),
            ));
        }
        if let Some(other) = reg.names.get(&n) {
            return Err(conflict_msg(&n, other));
        }
        reg.names.remove(&old);
        reg.names.insert(n.clone(), id.clone());
        let en = reg
            .by_id
            .get_mut(&id)
            .ok_or_else(|| Error::NotFound(format!("No such container: {x}")))?;
        en.rec.name = n.clone();
        en.version += 1;
        (old, en.rec.clone(), en.version, en.saved.clone())
    };
    s.containers.save_version(&rec, v, &saved)?;
    s.event(&rec, "rename", &[("oldName", old)]);
    Ok(())
}

pub(crate) fn update(e: &Engine, x: &str, body: &Value) -> Result<Value> {
    let s = &e.inner.0;
    let u = decode_update(body)?;
    let (id, op) = s.containers.find(x)?;
    let _g = op.lock();
    let rec = s.containers.record(&id)?;
    let mut host = rec.host_config.clone();
    // (A PidsLimit of 0 or less lifts the limit: none is kept, as at create.)
    let lift_pids = u.pids_limit.get().is_some_and(|p| *p <= 0);
    merge_update(&mut host, u);
    crate::spec::validate(&host)?;
    let reshape = host.annotations != rec.host_config.annotations;
    // A container prepared at create has its cgroup made with the old values.
    discard_prepared(s, &id);
    let mut warnings = Vec::new();
    if rec.running() {
        // The resources through the same code as the spec's.
        let mut lr = crate::spec::resources(&host)?;
        if lift_pids {
            lr.set_pids(Some(crate::spec::pids_limit(-1)));
        }
        warnings =
            s.rt.update(&id, &lr)
                .map_err(|er| Error::BadParameter(format!("Cannot update container {id}: {er}")))?;
        if reshape {
            s.networks.reshape(&id, &host)?;
        }
    }
    let rec = s.containers.update(&id, |en| {
        en.rec.host_config = host;
        en.rec.clone()
    })?;
    s.event(&rec, "update", &[]);
    Ok(json!({"Warnings": warnings}))
}

/// A ContainerUpdate body onto `host` as update does (decoded, merged, checked), and the
/// resources it would set on a running container. For the fuzz targets.
#[cfg(feature = "fuzzing")]
pub(crate) fn resources_of_update(
    host: &mut HostConfig,
    body: &Value,
) -> Result<oci_spec::runtime::LinuxResources> {
    let u = decode_update(body)?;
    merge_update(host, u);
    crate::spec::validate(host)?;
    crate::spec::resources(host)
}

/// The fields an update changes (Docker's `UpdateConfig`: Resources and RestartPolicy) that
/// berth applies; the other Resources fields are refused by `model::unsupported`.
/// berth's extension: `Annotations` with the bandwidth keys (`networks::shaping`).
const UPDATABLE: [&str; 13] = [
    "CpuShares",
    "Memory",
    "MemorySwap",
    "MemoryReservation",
    "NanoCpus",
    "CpuQuota",
    "CpuPeriod",
    "PidsLimit",
    "BlkioWeight",
    "CpusetCpus",
    "CpusetMems",
    "RestartPolicy",
    "Annotations",
];

/// Docker's ContainerUpdate body, decoded strictly: an object whose fields have their
/// HostConfig types; a field berth does not honour, or one an update cannot change (any
/// field but Resources and RestartPolicy), set to anything but its zero value is a 400.
fn decode_update(body: &Value) -> Result<HostConfig> {
    let Some(m) = body.as_object() else {
        return Err(Error::BadParameter(
            "invalid update body: expected a JSON object".into(),
        ));
    };
    let u: HostConfig = decode("", body)?;
    crate::model::unsupported::check_update(&u)?;
    if let Some(k) = u
        .annotations
        .map()
        .keys()
        .find(|k| !crate::networks::shaping::is_bandwidth_key(k))
    {
        return Err(Error::BadParameter(format!(
            "invalid update body: annotation {k} cannot be updated (only the bandwidth ones can)"
        )));
    }
    for (k, v) in m {
        if !UPDATABLE.contains(&k.as_str()) && !crate::model::unsupported::is_zero(v) {
            return Err(Error::BadParameter(format!(
                "invalid update body: {k} cannot be updated (only resources and RestartPolicy can)"
            )));
        }
    }
    Ok(u)
}

/// An update onto the container's HostConfig: the resources it sets (not null, not zero but
/// for PidsLimit, not empty) and a restart policy with a name.
fn merge_update(host: &mut HostConfig, u: HostConfig) {
    fn int<T: Copy + Default + PartialEq>(to: &mut Field<T>, from: Field<T>, zero_too: bool) {
        if let Field::Set(v) = from {
            if v != T::default() || zero_too {
                *to = Field::Set(v);
            }
        }
    }
    int(&mut host.cpu_shares, u.cpu_shares, false);
    int(&mut host.memory, u.memory, false);
    int(&mut host.memory_swap, u.memory_swap, false);
    int(&mut host.memory_reservation, u.memory_reservation, false);
    int(&mut host.nano_cpus, u.nano_cpus, false);
    int(&mut host.cpu_quota, u.cpu_quota, false);
    int(&mut host.cpu_period, u.cpu_period, false);
    match u.pids_limit {
        Field::Set(p) if p <= 0 => host.pids_limit = Field::Null,
        p => int(&mut host.pids_limit, p, false),
    }
    int(&mut host.blkio_weight, u.blkio_weight, false);
    for (to, from) in [
        (&mut host.cpuset_cpus, u.cpuset_cpus),
        (&mut host.cpuset_mems, u.cpuset_mems),
    ] {
        if let Field::Set(v) = from {
            if !v.is_empty() {
                *to = Field::Set(v);
            }
        }
    }
    // Annotations (bandwidth keys only): merged; an empty value removes the key.
    if !u.annotations.map().is_empty() {
        let mut m = host.annotations.map().clone();
        for (k, v) in u.annotations.map() {
            if v.is_empty() {
                m.remove(k);
            } else {
                m.insert(k.clone(), v.clone());
            }
        }
        host.annotations = Field::Set(crate::model::StrMap(m));
    }
    if let Field::Set(rp) = u.restart_policy {
        if !rp.name.str().is_empty() {
            host.restart_policy = Field::Set(rp);
        }
    }
}
