//! Removal (crash-safe, through a tombstone) and prune.
use crate::containers::*;
use crate::model::Status;
use crate::prepare::*;
use crate::ready::*;
use crate::shared::*;
use crate::state::Record;
use crate::util::*;
use crate::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// `DELETE /containers/{id}`; `volumes` (`rm -v`): its anonymous volumes no other container
/// uses go with it.
pub(crate) fn remove(e: &Engine, x: &str, force: bool, volumes: bool) -> Result<()> {
    let s = &e.inner.0;
    let (id, op) = s.containers.find(x)?;
    let _g = op.lock();
    let rec = s.containers.record(&id)?;
    if rec.running() && !force {
        let what = if rec.state.status == Status::Paused {
            "paused"
        } else {
            "running"
        };
        return Err(Error::Conflict(format!(
            "cannot remove container \"{}\": container is {what}: stop the container before removing or force remove",
            rec.name
        )));
    }
    remove_inner_opt(s, &id, false, volumes)
}

pub(crate) fn remove_inner(s: &Arc<Shared>, id: &str, _force: bool) -> Result<()> {
    remove_inner_opt(s, id, false, false)
}

/// `remove_inner`; with `defer_cleanup` the tombstoned files (rootfs snapshot, exec-root dir)
/// are deleted on a background thread after the container is gone from the registry and its
/// waiters are answered (a crash before that leaves a tombstone that `open` finishes).
/// `anon_volumes` (`rm -v`, AutoRemove): its anonymous volumes no other container uses are
/// deleted too, before its waiters are answered (as dockerd).
pub(crate) fn remove_inner_opt(
    s: &Arc<Shared>,
    id: &str,
    defer_cleanup: bool,
    anon_volumes: bool,
) -> Result<()> {
    discard_prepared(s, id);
    let (gen, rec) = {
        let mut reg = s.containers.lock();
        let Some(en) = reg.by_id.get_mut(id) else {
            return Ok(());
        };
        if en.removing {
            return Err(Error::Conflict(format!(
                "removal of container {id} is already in progress"
            )));
        }
        en.removing = true;
        (en.exit_gen, en.rec.clone())
    };
    if rec.running() || rec.state.status == Status::Restarting {
        let _ = s.rt.resume(id);
        let _ = s.rt.kill(id, libc::SIGKILL, true);
        if rec.state.status != Status::Restarting
            && !wait_exit(s, id, gen, Some(Duration::from_secs(30)))
        {
            let _ = s.containers.update(id, |en| en.removing = false);
            return Err(Error::internal_msg(format!(
                "could not kill running container {id}, cannot remove"
            )));
        }
    }
    {
        let mut reg = s.containers.lock();
        if let Some(en) = reg.by_id.get_mut(id) {
            en.rec.state.status = Status::Removing;
        }
    }
    if let Err(e) = remove_files(s, id, !defer_cleanup) {
        let mut reg = s.containers.lock();
        if let Some(en) = reg.by_id.get_mut(id) {
            en.removing = false;
            en.rec.state.status = Status::Dead;
            en.rec.state.error = e.to_string();
        }
        return Err(e);
    }
    crate::volumes::container_removed(s, id, rec.mounts(), anon_volumes);
    {
        let mut reg = s.containers.lock();
        if let Some(en) = reg.by_id.remove(id) {
            reg.names.remove(&en.rec.name);
            reg.removed.insert(id.to_string(), en.rec.state.exit_code);
            if reg.removed.len() > 1000 {
                if let Some(k) = reg.removed.keys().next().cloned() {
                    reg.removed.remove(&k);
                }
            }
            for (_, p) in en.pending {
                p.close();
            }
        }
    }
    s.containers.cond.notify_all();
    if let Ok(mut ex) = s.execs.lock() {
        ex.retain(|_, r| r.container != id);
    }
    s.event(&rec, "destroy", &[]);
    if defer_cleanup {
        let ss = s.clone();
        let id = id.to_string();
        std::thread::spawn(move || {
            berth_runtime::idle_priority(true);
            if let Err(e) = finish_removal(&ss, &id) {
                tracing::warn!("remove the files of {id}: {e} (retried at the next start)");
            }
            trim_heap_later(&ss);
        });
    } else {
        trim_heap_later(s);
    }
    Ok(())
}

/// Remove everything of a container. Crash-safe: the record directory is first renamed to a
/// `.rm-<id>` tombstone (one atomic step: the container is gone), and `open` finishes
/// tombstones left by a crash.
/// With `finish` false only the atomic step is done; the caller runs `finish_removal` later.
/// With `finish` false the rootfs may still be mounted: the directory holding the mount point
/// is renamed (allowed), `finish_removal` unmounts it from the tombstone.
pub(crate) fn remove_files(s: &Shared, id: &str, finish: bool) -> Result<()> {
    if finish {
        s.delete_runtime(id);
        s.unmount_at(&s.rootfs(id), id)?;
    }
    let tomb = s.cfg.root.join("containers").join(format!(".rm-{id}"));
    match std::fs::rename(s.cdir(id), &tomb) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(internal(format!("remove {}", s.cdir(id).display()), e)),
    }
    if !finish {
        return Ok(());
    }
    finish_removal(s, id)
}

pub(crate) fn finish_removal(s: &Shared, id: &str) -> Result<()> {
    s.delete_runtime(id);
    s.networks.forget(id);
    let tomb = s.cfg.root.join("containers").join(format!(".rm-{id}"));
    s.unmount_at(&tomb.join("rootfs"), id)?;
    s.quota.release(&format!("c:{id}"));
    match s.images.remove_snapshot(id) {
        Ok(()) | Err(berth_image::Error::SnapshotNotFound(_)) => {}
        Err(e) => return Err(internal(format!("remove the rootfs of {id}"), e)),
    }
    for d in [s.xdir(id), tomb] {
        match std::fs::remove_dir_all(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(internal(format!("remove {}", d.display()), e)),
        }
    }
    Ok(())
}

pub(crate) fn prune(e: &Engine, filters: &Value) -> Result<Value> {
    let s = &e.inner.0;
    let f = Filters::parse(filters)?;
    f.validate(&["until", "label", "label!"])?;
    let until = match f.get("until").first() {
        Some(u) => Some(parse_time_arg(u)?),
        None => None,
    };
    let cands: Vec<Record> = s
        .containers
        .lock()
        .by_id
        .values()
        .map(|e| e.rec.clone())
        .collect();
    let mut deleted = Vec::new();
    let mut space = 0u64;
    for r in cands {
        if r.running() || r.state.status == Status::Restarting {
            continue;
        }
        let labels = r.config.labels();
        if !f.match_labels("label", &labels) {
            continue;
        }
        if f.has("label!")
            && f.get("label!").iter().any(|l| match l.split_once('=') {
                Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                None => labels.contains_key(l.as_str()),
            })
        {
            continue;
        }
        if let Some(u) = until {
            if parse_rfc3339(&r.created).unwrap_or(0.0) >= u {
                continue;
            }
        }
        space += crate::archive::size_rw(s, &r.id).unwrap_or(0);
        if remove_inner(s, &r.id, true).is_ok() {
            deleted.push(r.id.clone());
        }
    }
    s.events.publish(
        "container",
        "prune",
        "",
        BTreeMap::from([("reclaimed".to_string(), space.to_string())]),
    );
    Ok(json!({"ContainersDeleted": deleted, "SpaceReclaimed": space}))
}
