//! Named volumes, `local` driver: `<root>/volumes/<name>/_data` with a `volume.json` beside
//! it. A volume is made in a `.tmp-*` directory (data dir and fsynced metadata) and renamed
//! into place, and removed by a rename to a `.tmp-*` name first: a crash never leaves a half
//! volume visible (`open` deletes the `.tmp-*` leftovers).
mod copy;
mod driver;
mod store;

pub(crate) use copy::prefill;
pub(crate) use store::Volumes;

use crate::shared::Shared;
use crate::util::{internal, Filters};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The label dockerd (>= 23) puts on anonymous volumes; prune deletes only those by default.
pub(crate) const ANON_LABEL: &str = "com.docker.volume.anonymous";

/// What `volume.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Meta {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    #[serde(rename = "Labels", default)]
    pub labels: BTreeMap<String, String>,
    /// The driver's options (`DriverOpts`, `--opt`), as given.
    #[serde(
        rename = "Options",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub options: BTreeMap<String, String>,
}

/// Docker's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub(crate) fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn check_name(n: &str) -> Result<()> {
    if valid_name(n) {
        return Ok(());
    }
    Err(Error::BadParameter(format!(
        "create {n}: \"{n}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )))
}

/// `POST /volumes/create` body: `Name`, `Driver`, `DriverOpts`, `Labels`.
pub(crate) fn create(s: &Shared, body: &Value) -> Result<Value> {
    let name = body.get("Name").and_then(Value::as_str).unwrap_or("");
    match body.get("Driver").and_then(Value::as_str).unwrap_or("") {
        "" | "local" => {}
        d => {
            return Err(Error::NotFound(format!(
                "error looking up volume plugin {d}: plugin \"{d}\" not found"
            )))
        }
    }
    let mut labels = crate::util::labels_of(body.get("Labels").unwrap_or(&Value::Null));
    let opts = crate::util::labels_of(body.get("DriverOpts").unwrap_or(&Value::Null));
    driver::validate(&opts, s.quota.supported())?;
    let name = if name.is_empty() {
        // (As dockerd: a volume made without a name is anonymous, so prune takes it.)
        labels.insert(ANON_LABEL.to_string(), String::new());
        crate::util::random_id()?
    } else {
        check_name(name)?;
        name.to_string()
    };
    let _g = s.volumes.lock();
    let (meta, _) = s.volumes.ensure(s, &name, labels, opts, false)?;
    Ok(s.volumes.api(&meta))
}

/// `GET /volumes/{name}`.
pub(crate) fn inspect(s: &Shared, name: &str) -> Result<Value> {
    let meta = s.volumes.get(name)?;
    Ok(s.volumes.api(&meta))
}

/// The names of the volumes a container (running or not) mounts, with the containers.
fn in_use(s: &Shared) -> BTreeMap<String, Vec<String>> {
    in_use_but(s, "")
}

/// [`in_use`], the container `except` left out.
fn in_use_but(s: &Shared, except: &str) -> BTreeMap<String, Vec<String>> {
    let reg = s.containers.lock();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for en in reg.by_id.values().filter(|en| en.rec.id != except) {
        for m in en.rec.mounts() {
            if m.kind == crate::model::MountType::Volume {
                out.entry(m.name.clone())
                    .or_default()
                    .push(en.rec.id.clone());
            }
        }
    }
    out
}

/// `GET /system/df`'s `Volumes`: each with `UsageData` (`Size` of its files, `RefCount`: the
/// containers that mount it).
pub(crate) fn df(s: &Shared) -> Result<Vec<Value>> {
    let used = in_use(s);
    Ok(s.volumes
        .all()?
        .into_iter()
        .map(|m| {
            let mut v = s.volumes.api(&m);
            let refs = used.get(&m.name).map_or(0, Vec::len);
            let size = crate::du::disk_usage(&s.volumes.data(&m.name));
            v["UsageData"] = json!({"Size": size, "RefCount": refs});
            v
        })
        .collect())
}

/// `GET /volumes`: filters name (substring), label, dangling, driver.
pub(crate) fn list(s: &Shared, filters: &Value) -> Result<Value> {
    let f = Filters::parse(filters)?;
    f.validate(&["name", "label", "dangling", "driver"])?;
    let dangling = match f.get("dangling") {
        [] => None,
        [v] => Some(parse_bool("dangling", v)?),
        _ => return Err(Error::BadParameter("invalid filter 'dangling'".into())),
    };
    let used = in_use(s);
    let vols: Vec<Value> = s
        .volumes
        .all()?
        .into_iter()
        .filter(|m| {
            let names = f.get("name");
            names.is_empty() || names.iter().any(|n| m.name.contains(n.as_str()))
        })
        .filter(|_| f.get("driver").iter().all(|d| d == "local"))
        .filter(|m| f.match_labels("label", &m.labels))
        .filter(|m| dangling.is_none_or(|d| d != used.contains_key(&m.name)))
        .map(|m| s.volumes.api(&m))
        .collect();
    Ok(json!({"Volumes": vols, "Warnings": []}))
}

fn parse_bool(k: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Error::BadParameter(format!(
            "invalid filter '{k}={v}': expected a boolean"
        ))),
    }
}

/// `DELETE /volumes/{name}`: 409 while a container uses it. `force` (as dockerd) only makes
/// an unknown name not an error.
pub(crate) fn remove(s: &Shared, name: &str, force: bool) -> Result<()> {
    let _g = s.volumes.lock();
    if let Err(e) = s.volumes.get(name) {
        return match e {
            Error::NotFound(_) if force => Ok(()),
            e => Err(e),
        };
    }
    if let Some(ids) = in_use(s).get(name) {
        return Err(Error::Conflict(format!(
            "remove {name}: volume is in use - [{}]",
            ids.join(", ")
        )));
    }
    s.volumes.delete(s, name)?;
    s.events.publish("volume", "destroy", name, driver_attr());
    Ok(())
}

/// `POST /volumes/prune`: unused volumes, by default only anonymous ones (`all=true`: every
/// unused one); filters label, label!, all.
pub(crate) fn prune(s: &Shared, filters: &Value) -> Result<Value> {
    let f = Filters::parse(filters)?;
    f.validate(&["label", "label!", "all"])?;
    let all = match f.get("all") {
        [] => false,
        [v] => parse_bool("all", v)?,
        _ => return Err(Error::BadParameter("invalid filter 'all'".into())),
    };
    let _g = s.volumes.lock();
    let used = in_use(s);
    let mut deleted = Vec::new();
    let mut space = 0u64;
    for m in s.volumes.all()? {
        let excluded = f.get("label!").iter().any(|l| match l.split_once('=') {
            Some((k, v)) => m.labels.get(k).is_some_and(|x| x == v),
            None => m.labels.contains_key(l.as_str()),
        });
        if used.contains_key(&m.name)
            || (!all && !m.labels.contains_key(ANON_LABEL))
            || !f.match_labels("label", &m.labels)
            || excluded
        {
            continue;
        }
        let size = crate::du::disk_usage(&s.volumes.data(&m.name));
        match s.volumes.delete(s, &m.name) {
            Ok(()) => {
                space += size;
                s.events
                    .publish("volume", "destroy", &m.name, driver_attr());
                deleted.push(m.name);
            }
            Err(e) => tracing::warn!("prune volume {}: {e}", m.name),
        }
    }
    Ok(json!({"VolumesDeleted": deleted, "SpaceReclaimed": space}))
}

fn driver_attr() -> BTreeMap<String, String> {
    BTreeMap::from([("driver".to_string(), "local".to_string())])
}

/// At container create: the volume of each `type=volume` mount point is made if missing (an
/// empty name: a new anonymous volume), its source set to the volume's data directory. The
/// names of the volumes made by this call are returned (they are filled from the image).
pub(crate) fn resolve_mounts(
    s: &Shared,
    mounts: &mut [crate::model::MountPoint],
) -> Result<Vec<String>> {
    let mut made = Vec::new();
    for m in mounts
        .iter_mut()
        .filter(|m| m.kind == crate::model::MountType::Volume)
    {
        let mut labels = BTreeMap::new();
        if m.name.is_empty() {
            m.name = crate::util::random_id()?;
            labels.insert(ANON_LABEL.to_string(), String::new());
        }
        check_name(&m.name)?;
        driver::validate(&m.volume_opts, s.quota.supported())?;
        let opts = std::mem::take(&mut m.volume_opts);
        let (meta, new) = s.volumes.ensure(s, &m.name, labels, opts, true)?;
        let data = s.volumes.data(&meta.name);
        if let Err(e) = driver::mount(&meta.name, &meta.options, &data) {
            if new {
                let _ = s.volumes.delete(s, &meta.name);
            }
            return Err(e);
        }
        m.source = data.to_string_lossy().into_owned();
        if new {
            made.push(meta.name);
        }
    }
    Ok(made)
}

/// At a start: the volumes with a filesystem of their own are mounted (again: a reboot took
/// them away).
pub(crate) fn mount_for(s: &Shared, mounts: &[crate::model::MountPoint]) -> Result<()> {
    for m in mounts
        .iter()
        .filter(|m| m.kind == crate::model::MountType::Volume)
    {
        let meta = s.volumes.get(&m.name)?;
        driver::mount(&meta.name, &meta.options, &s.volumes.data(&meta.name))?;
    }
    Ok(())
}

/// At a container's removal (`id`'s files are gone): the volumes no other container uses
/// are unmounted (those with a filesystem of their own), and with `anon` (`rm -v`,
/// AutoRemove) its anonymous ones are deleted (a failure is logged, the container goes).
pub(crate) fn container_removed(
    s: &Shared,
    id: &str,
    mounts: &[crate::model::MountPoint],
    anon: bool,
) {
    let _g = s.volumes.lock();
    let used = in_use_but(s, id);
    for m in mounts
        .iter()
        .filter(|m| m.kind == crate::model::MountType::Volume && !used.contains_key(&m.name))
    {
        let Ok(meta) = s.volumes.get(&m.name) else {
            continue;
        };
        if let Err(e) = driver::unmount(&m.name, &s.volumes.data(&m.name)) {
            tracing::warn!("{e}");
        }
        if !anon || !meta.labels.contains_key(ANON_LABEL) {
            continue;
        }
        match s.volumes.delete(s, &m.name) {
            Ok(()) => s
                .events
                .publish("volume", "destroy", &m.name, driver_attr()),
            Err(e) => tracing::warn!("remove anonymous volume {}: {e}", m.name),
        }
    }
}

pub(crate) fn io_err(what: &str, p: &std::path::Path, e: std::io::Error) -> Error {
    internal(format!("{what} {}", p.display()), e)
}
