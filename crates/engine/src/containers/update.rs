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
    let (id, op) = s.containers.find(x)?;
    let _g = op.lock();
    // A container prepared at create has its cgroup made with the old values.
    discard_prepared(s, &id);
    let rec = s.containers.record(&id)?;
    let mut host = rec.host_config.clone();
    merge_update(&mut host, body)?;
    crate::spec::validate(&host)?;
    let mut warnings = Vec::new();
    if rec.running() {
        // The resources through the same code as the spec's.
        let lr = crate::spec::resources(&host)?;
        warnings =
            s.rt.update(&id, &lr)
                .map_err(|er| Error::BadParameter(format!("Cannot update container {id}: {er}")))?;
    }
    let rec = s.containers.update(&id, |en| {
        en.rec.host_config = host;
        en.rec.clone()
    })?;
    s.event(&rec, "update", &[]);
    Ok(json!({"Warnings": warnings}))
}

/// A ContainerUpdate body onto `host` as update does (merged, checked), and the resources
/// it would set on a running container. For the fuzz targets.
#[cfg(feature = "fuzzing")]
pub(crate) fn resources_of_update(
    host: &mut HostConfig,
    body: &Value,
) -> Result<oci_spec::runtime::LinuxResources> {
    merge_update(host, body)?;
    crate::spec::validate(host)?;
    crate::spec::resources(host)
}

/// Docker's ContainerUpdate body (a subset of HostConfig: resources and RestartPolicy) onto
/// the container's HostConfig: the resources it sets (not null, not zero but for
/// PidsLimit, not empty) and a restart policy with a name.
fn merge_update(host: &mut HostConfig, body: &Value) -> Result<()> {
    if !body.is_object() {
        return Err(Error::BadParameter(
            "update body must be a JSON object".into(),
        ));
    }
    let u: HostConfig = decode("", body)?;
    fn int(to: &mut Field<i64>, from: Field<i64>, zero_too: bool) {
        if let Field::Set(v) = from {
            if v != 0 || zero_too {
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
    int(&mut host.pids_limit, u.pids_limit, true);
    int(&mut host.blkio_weight, u.blkio_weight, false);
    int(&mut host.kernel_memory, u.kernel_memory, false);
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
    if let Field::Set(rp) = u.restart_policy {
        if !rp.name.str().is_empty() {
            host.restart_policy = Field::Set(rp);
        }
    }
    Ok(())
}
