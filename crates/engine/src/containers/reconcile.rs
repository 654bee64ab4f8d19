//! Start-up reconciliation: records on disk against live monitors and runtime state.
use crate::containers::*;
use crate::model::Status;
use crate::ready::*;
use crate::shared::*;
use crate::state::Record;
use crate::util::*;
use crate::*;
use std::sync::Arc;

/// Load records, drop half-created ones, reconnect to live monitors, account for exits that
/// happened while we were away, unmount what is not running, resume restart policies.
pub(crate) fn reconcile(s: &Arc<Shared>) -> Result<()> {
    let dir = s.cfg.root.join("containers");
    let rd = std::fs::read_dir(&dir).map_err(|e| internal(format!("read {}", dir.display()), e))?;
    let mut to_check = Vec::new();
    for ent in rd.flatten() {
        let id = ent.file_name().to_string_lossy().into_owned();
        if let Some(rid) = id.strip_prefix(".rm-") {
            // A removal interrupted by a crash: finish it.
            let _ = s.rt.delete(rid, true);
            sweep_cgroup(rid);
            if let Err(e) = finish_removal(s, rid) {
                tracing::warn!("finish removal of {rid}: {e}");
            }
            continue;
        }
        if id.starts_with(RECORD_POOL_PREFIX) {
            let _ = std::fs::remove_dir_all(ent.path());
            continue;
        }
        if id.starts_with('.') {
            continue;
        }
        let p = ent.path().join("config.v2.json");
        let rec = std::fs::read(&p).ok().and_then(|b| Record::load(&b));
        let Some(rec) = rec else {
            // Half-created (crash between snapshot and record) or corrupt: no ghost.
            tracing::warn!("removing incomplete container dir {}", ent.path().display());
            s.unmount(&id);
            let _ = s.images.remove_snapshot(&id);
            let _ = std::fs::remove_dir_all(ent.path());
            let _ = std::fs::remove_dir_all(s.xdir(&id));
            continue;
        };
        let mut reg = s.containers.lock();
        if reg.names.contains_key(&rec.name) {
            tracing::warn!("duplicate name {} for {}; renaming", rec.name, rec.id);
        }
        reg.names.insert(rec.name.clone(), rec.id.clone());
        to_check.push(rec.id.clone());
        reg.by_id.insert(rec.id.clone(), Entry::new(rec));
    }
    for id in to_check {
        let rec = s.containers.record(&id)?;
        if rec.state.status.is_active() {
            match connect_watch(s, &id) {
                Ok(w) => {
                    let ss = s.clone();
                    spawn_watcher(ss, id.clone(), w);
                    crate::health::resumed(s, &id);
                }
                Err(_) => {
                    // Monitor gone: the exit record (if any) has the truth.
                    let ss = s.clone();
                    let idc = id.clone();
                    std::thread::spawn(move || handle_exit(&ss, &idc));
                }
            }
        } else {
            // Started, but the daemon stopped before it wrote "running" (the start does not
            // wait for that write): adopt it. The record says "created" for a first run and
            // "exited" for a restart of a container that ran before.
            if matches!(rec.state.status, Status::Created | Status::Exited) {
                if let Ok(st) = s.rt.load(&id) {
                    let live = matches!(
                        st.status(&s.rt.root),
                        berth_runtime::state::Status::Running
                            | berth_runtime::state::Status::Paused
                    );
                    if live {
                        if let Ok(w) = connect_watch(s, &id) {
                            let _ = s.containers.update(&id, |en| {
                                en.rec.state.status = Status::Running;
                                en.rec.state.pid = st.pid;
                                en.rec.state.started_at = st.created.clone();
                                en.rec.has_been_started = true;
                            });
                            spawn_watcher(s.clone(), id.clone(), w);
                            crate::health::resumed(s, &id);
                            continue;
                        }
                    }
                }
            }
            // Started and exited meanwhile (its monitor left the exit record): account for it.
            if exited_while_away(s, &rec) {
                let _ = s
                    .containers
                    .update_unsaved(&id, |en| en.rec.state.status = Status::Running);
                let ss = s.clone();
                let idc = id.clone();
                std::thread::spawn(move || handle_exit(&ss, &idc));
                continue;
            }
            // A container prepared by the previous daemon (its monitor ends at the EOF).
            let _ = s.rt.delete(&id, true);
            if rec.state.status == Status::Created {
                sweep_cgroup(&id);
            }
            s.unmount(&id);
            if rec.state.status == Status::Removing {
                let _ = remove_files(s, &id, true);
                let mut reg = s.containers.lock();
                reg.by_id.remove(&id);
                reg.names.remove(&rec.name);
            }
        }
    }
    // Runtime states nobody owns (a crash between runtime create and our record).
    if let Ok(list) = s.rt.list() {
        let reg = s.containers.lock();
        for st in list {
            if !reg.by_id.contains_key(&st.id) {
                let _ = s.rt.delete(&st.id, true);
            }
        }
    }
    Ok(())
}

/// Whether the container ran and exited while no daemon was there to see it: its monitor's
/// exit record is there and is not the one the record already accounts for (a start removes
/// the previous run's exit record; a restarted container's record still says "exited").
fn exited_while_away(s: &Shared, rec: &Record) -> bool {
    let Ok(b) = std::fs::read(s.cdir(&rec.id).join("exit.json")) else {
        return false;
    };
    match rec.state.status {
        Status::Created => true,
        Status::Exited => serde_json::from_slice::<crate::proto::ExitRecord>(&b)
            .is_ok_and(|x| x.finished_at != rec.state.finished_at),
        _ => false,
    }
}
