//! Exits: watch connections to monitors, exit records, restart policies, AutoRemove, waits.
use crate::containers::*;
use crate::model::Status;
use crate::proto::*;
use crate::ready::*;
use crate::shared::*;
use crate::state::Record;
use crate::util::*;
use crate::*;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether the container is removed when it exits (AutoRemove; Docker never restarts those).
pub(crate) fn auto_removes(r: &Record) -> bool {
    r.host_config.auto_removes()
}

/// How long the clean-up after an AutoRemove container's exit (runtime delete, cgroup and
/// mount removal) waits: past the moments the client that waited for the exit needs to finish
/// (the docker CLI: ~3 ms), which it otherwise shares the CPU with; short enough to be done
/// before such a client's next run gets going. Measured: -1 ms per `run --rm`, none lost in a
/// loop of them.
pub(crate) const CLIENT_GRACE: Duration = Duration::from_millis(5);

/// [`handle_exit`], reading the exit record from the monitor's file.
pub(crate) fn handle_exit(s: &Arc<Shared>, id: &str) {
    handle_exit_with(s, id, None)
}

/// The container's process has exited (or its monitor vanished): record it, emit "die",
/// apply the restart policy or AutoRemove.
pub(crate) fn handle_exit_with(s: &Arc<Shared>, id: &str, told: Option<ExitRecord>) {
    crate::mark("engine: watcher saw exit");
    let exit_file = s.cdir(id).join("exit.json");
    let mut rec_exit: Option<ExitRecord> = told;
    // Not told (a monitor of an older berth, or berthd was away): its file.
    for _ in 0..20 {
        if rec_exit.is_some() {
            break;
        }
        rec_exit = std::fs::read(&exit_file)
            .ok()
            .and_then(|b| serde_json::from_slice::<ExitRecord>(&b).ok());
        if rec_exit.is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let ex = match rec_exit {
        Some(r) => r,
        None => {
            // The monitor died without an exit record: the container lost its stdio and exit
            // capture; end it (Docker reports such containers as exited with an error).
            let _ = s.rt.delete(id, true);
            sweep_cgroup(id);
            ExitRecord {
                exit_code: 137,
                finished_at: now_rfc3339(),
                oom_killed: false,
                error: "container monitor exited unexpectedly".into(),
                pid: 0,
            }
        }
    };
    crate::mark("engine: exit record read");
    // An AutoRemove container (which Docker never restarts) is cleaned up by its removal,
    // after the waiters for `removed` have their answer: its monitor deletes the runtime
    // container meanwhile, the removal's cleanup waits for that and unmounts.
    let auto_remove = s
        .containers
        .record(id)
        .map(|r| auto_removes(&r))
        .unwrap_or(false);
    if !auto_remove {
        s.delete_runtime(id);
        s.unmount(id);
    }
    crate::health::stopped(s, id);
    // (An AutoRemove container's record is about to go: not written again. A crash before it
    // goes leaves it "running", and the restart's reconcile comes here again.)
    let apply = |e: &mut Entry| {
        e.rec.state.status = Status::Exited;
        e.rec.state.pid = 0;
        e.rec.state.monitor_pid = 0;
        e.rec.state.exit_code = ex.exit_code as i64;
        e.rec.state.finished_at = ex.finished_at.clone();
        e.rec.state.oom_killed = ex.oom_killed;
        e.rec.state.error = ex.error.clone();
        let net_ns = std::mem::take(&mut e.rec.state.net_ns);
        e.exit_gen += 1;
        (e.rec.clone(), e.removing, net_ns)
    };
    // In memory first, then written: what was taken out of the record (its namespace) is
    // released even when the write fails — as it does when a removal, woken by this change,
    // renamed the record's directory away meanwhile (`rm -f` of many running containers).
    let Ok((rec, removing, net_ns)) = s.containers.update_unsaved(id, apply) else {
        return;
    };
    if !auto_remove && !removing {
        if let Err(e) = s.containers.save_now(id) {
            tracing::warn!("save the exit of {id}: {e}");
        }
    }
    // Its endpoint (veth, address, published ports) goes with the run.
    s.networks.disconnect(id);
    if !net_ns.is_empty() {
        // Off this path (the keeper releases it).
        s.netns.release_later(PathBuf::from(net_ns));
        refill_spare_after(s, Duration::from_millis(10));
    }
    if ex.oom_killed {
        s.event(&rec, "oom", &[]);
    }
    s.event(&rec, "die", &[("exitCode", ex.exit_code.to_string())]);
    if removing || s.closed.load(Ordering::SeqCst) {
        return;
    }
    let policy = rec.host_config.restart_policy_name();
    let max = rec
        .host_config
        .restart_policy
        .get()
        .map_or(0, |p| p.maximum_retry_count.val());
    let restart = !rec.manually_stopped
        && match policy {
            "always" | "unless-stopped" => true,
            "on-failure" => ex.exit_code != 0 && (max == 0 || rec.restart_count < max),
            _ => false,
        };
    if restart {
        let delay =
            Duration::from_millis((100u64 << rec.restart_count.clamp(0, 4) as u32).min(1000));
        let _ = s.containers.update(id, |e| {
            e.rec.state.status = Status::Restarting;
        });
        std::thread::sleep(delay);
        let still = s
            .containers
            .record(id)
            .map(|r| r.state.status == Status::Restarting && !r.manually_stopped)
            .unwrap_or(false);
        if still && !s.closed.load(Ordering::SeqCst) {
            let _ = s.containers.update(id, |e| e.rec.restart_count += 1);
            if let Ok((_, op)) = s.containers.find(id) {
                let _g = op.lock();
                if let Err(e) = start_locked(s, id) {
                    tracing::warn!("restart {id}: {e}");
                    let _ = s.containers.update(id, |en| {
                        en.rec.state.status = Status::Exited;
                        en.rec.state.error = e.to_string();
                    });
                }
            }
        }
        return;
    }
    if rec.host_config.auto_remove.val() {
        if let Err(e) = remove_inner_opt(s, id, true, true) {
            tracing::warn!("auto-remove {id}: {e}");
        }
        crate::mark("engine: auto-removed");
    }
    // Soon, not now: the client that waited for this exit is finishing (`docker run --rm`).
    refill_spare_after(s, Duration::from_millis(10));
    trim_heap_later(s);
}

/// Wait until the container's exit_gen passes `gen` or it is gone, up to `timeout`.
pub(crate) fn wait_exit(s: &Shared, id: &str, gen: u64, timeout: Option<Duration>) -> bool {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut reg = s.containers.lock();
    loop {
        match reg.by_id.get(id) {
            None => return true,
            Some(e) if e.exit_gen > gen => return true,
            Some(e) if !e.rec.running() && e.rec.state.status != Status::Restarting => return true,
            _ => {}
        }
        let wait = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return false;
                }
                d - now
            }
            None => Duration::from_secs(1),
        };
        reg = match s
            .containers
            .cond
            .wait_timeout(reg, wait.min(Duration::from_secs(1)))
        {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        };
    }
}

pub(crate) struct WaitInner {
    s: Arc<Shared>,
    id: String,
    cond: WaitCondition,
    gen: u64,
}

impl WaitInner {
    pub(crate) fn wait(self, wanted: &dyn Fn() -> bool) -> Option<WaitResult> {
        let s = &self.s;
        let mut reg = s.containers.lock();
        loop {
            if !wanted() {
                return None;
            }
            if s.closed.load(Ordering::SeqCst) {
                return Some(WaitResult {
                    status_code: -1,
                    error: Some("daemon shutting down".into()),
                });
            }
            match reg.by_id.get(&self.id) {
                None => {
                    let code = reg.removed.get(&self.id).copied().unwrap_or(0);
                    return Some(WaitResult {
                        status_code: code,
                        error: None,
                    });
                }
                Some(e) => {
                    let done = match self.cond {
                        WaitCondition::NotRunning => {
                            !e.rec.running() && e.rec.state.status != Status::Restarting
                        }
                        WaitCondition::NextExit => e.exit_gen > self.gen,
                        WaitCondition::Removed => false,
                    };
                    if done {
                        let err = if e.rec.state.error.is_empty() {
                            None
                        } else {
                            Some(e.rec.state.error.clone())
                        };
                        return Some(WaitResult {
                            status_code: e.rec.state.exit_code,
                            error: err,
                        });
                    }
                }
            }
            reg = match s.containers.cond.wait_timeout(reg, Duration::from_secs(1)) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

pub(crate) fn wait(e: &Engine, x: &str, c: WaitCondition) -> Result<WaitHandle> {
    let s = &e.inner.0;
    let reg = s.containers.lock();
    let id = s.containers.resolve(&reg, x)?;
    let gen = reg.by_id[&id].exit_gen;
    Ok(WaitHandle {
        inner: WaitInner {
            s: s.clone(),
            id,
            cond: c,
            gen,
        },
    })
}

#[cfg(test)]
mod exit_line_tests {
    use super::*;

    #[test]
    fn reads_the_record_a_monitor_sends_and_nothing_else() {
        let rec = ExitRecord {
            exit_code: 3,
            finished_at: "2026-11-25T00:00:00.1Z".into(),
            oom_killed: true,
            error: String::new(),
            pid: 42,
        };
        let mut line = format!("{WATCH_EXIT} ").into_bytes();
        line.extend_from_slice(&serde_json::to_vec(&rec).unwrap());
        line.push(b'\n');
        assert_eq!(exit_line(&line), Some(rec));
        // cut short (the monitor died mid-line), other data, nothing: not told
        assert_eq!(exit_line(&line[..line.len() - 3]), None);
        assert_eq!(exit_line(b"exit {not json}\n"), None);
        assert_eq!(exit_line(b""), None);
    }
}
