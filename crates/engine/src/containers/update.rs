//! rename and update (resources, restart policy).
use crate::containers::*;
use crate::prepare::*;
use crate::util::*;
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
    let keys = [
        "CpuShares",
        "Memory",
        "MemorySwap",
        "MemoryReservation",
        "NanoCpus",
        "CpuQuota",
        "CpuPeriod",
        "CpusetCpus",
        "CpusetMems",
        "PidsLimit",
        "BlkioWeight",
        "KernelMemory",
    ];
    let obj = body
        .as_object()
        .ok_or_else(|| Error::BadParameter("update body must be a JSON object".into()))?;
    for k in keys {
        if let Some(v) = obj.get(k) {
            if !(v.is_null() || v.as_i64() == Some(0) && k != "PidsLimit" || v.as_str() == Some(""))
            {
                host[k] = v.clone();
            }
        }
    }
    if let Some(rp) = obj.get("RestartPolicy") {
        if !rp.is_null() && !rp["Name"].as_str().unwrap_or("").is_empty() {
            host["RestartPolicy"] = rp.clone();
        }
    }
    crate::spec::validate(&host)?;
    let mut warnings = Vec::new();
    if rec.running() {
        // Build the resources through the same code path as the spec.
        let mut tmp = host.clone();
        tmp["Devices"] = json!([]);
        let res = resources_of(&tmp)?;
        let lr: oci_spec::runtime::LinuxResources =
            serde_json::from_value(res).map_err(|er| internal("resources", er))?;
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

/// The cgroup resources of a HostConfig (without device rules).
pub(crate) fn resources_of(host: &Value) -> Result<Value> {
    let mut r = json!({});
    let i = |k: &str| host[k].as_i64().unwrap_or(0);
    let mem = i("Memory");
    if mem > 0 {
        r["memory"] = json!({"limit": mem});
        let sw = i("MemorySwap");
        if sw != 0 {
            r["memory"]["swap"] = json!(sw);
        }
    }
    let mut cpu = serde_json::Map::new();
    if i("CpuShares") > 0 {
        cpu.insert("shares".into(), json!(i("CpuShares")));
    }
    if i("NanoCpus") > 0 {
        cpu.insert("period".into(), json!(100_000));
        cpu.insert(
            "quota".into(),
            json!(i("NanoCpus") * 100_000 / 1_000_000_000),
        );
    }
    if i("CpuQuota") != 0 {
        cpu.insert("quota".into(), json!(i("CpuQuota")));
    }
    if i("CpuPeriod") != 0 {
        cpu.insert("period".into(), json!(i("CpuPeriod")));
    }
    if let Some(c) = host["CpusetCpus"].as_str().filter(|c| !c.is_empty()) {
        cpu.insert("cpus".into(), json!(c));
    }
    if !cpu.is_empty() {
        r["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = host["PidsLimit"].as_i64() {
        if p != 0 {
            r["pids"] = json!({"limit": if p < 0 { -1 } else { p }});
        }
    }
    if i("BlkioWeight") > 0 {
        r["blockIO"] = json!({"weight": i("BlkioWeight")});
    }
    Ok(r)
}
