//! start, stop, restart, kill, pause, unpause.
use crate::attach::Slot;
use crate::containers::*;
use crate::model::Status;
use crate::monitor::*;
use crate::prepare::*;
use crate::proto::*;
use crate::ready::*;
use crate::shared::*;
use crate::util::*;
use crate::*;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) fn start(e: &Engine, x: &str) -> Result<()> {
    let s = &e.inner.0;
    let (id, op) = s.containers.find(x)?;
    // Being prepared right now: the prepare thread starts it the moment it is ready.
    let req = {
        let mut reg = s.containers.lock();
        match reg.by_id.get_mut(&id) {
            Some(en) if en.preparing && en.start_req.is_none() => {
                let r = Arc::new(StartReq::default());
                en.start_req = Some(r.clone());
                Some(r)
            }
            _ => None,
        }
    };
    if let Some(r) = req {
        if let Some(res) = r.wait() {
            return res;
        }
    }
    let _g = op
        .lock()
        .map_err(|_| Error::Internal("container lock poisoned".into()))?;
    start_checked(s, &id)
}

/// `start` under the container's op lock: refused in states Docker refuses it in.
pub(crate) fn start_checked(s: &Arc<Shared>, id: &str) -> Result<()> {
    let rec = s.containers.record(id)?;
    match rec.state.status {
        Status::Running | Status::Restarting => return Err(Error::NotModified),
        Status::Paused => {
            return Err(Error::Conflict(
                "cannot start a paused container, try unpause instead".into(),
            ))
        }
        Status::Removing | Status::Dead => {
            return Err(Error::Conflict(format!(
                "container {id} is marked for removal and cannot be started"
            )))
        }
        _ => {}
    }
    start_locked(s, id)
}

/// Start with the op lock held.
pub(crate) fn start_locked(s: &Arc<Shared>, id: &str) -> Result<()> {
    crate::mark("engine: start");
    let rec = s.containers.record(id)?;
    let fail = |e: Error| -> Error {
        // (A monitor that died in the middle of its create leaves an init no runtime state
        // names, in the container's cgroup.)
        s.delete_runtime(id);
        sweep_cgroup(id);
        s.unmount(id);
        let pend: Vec<Arc<Slot>> = s
            .containers
            .lock()
            .by_id
            .get_mut(id)
            .map(|en| {
                en.starting = false;
                en.pending.drain(..).map(|p| p.1).collect()
            })
            .unwrap_or_default();
        for p in pend {
            p.close();
        }
        let msg = e.to_string();
        // Docker: 127 when the command is not found, 126 when it cannot be run.
        let code = e.start_exit_code();
        let _ = s.containers.update(id, |en| {
            en.rec.state.error = msg.clone();
            if en.rec.state.status != Status::Exited && en.rec.state.status != Status::Created {
                en.rec.state.status = Status::Exited;
            }
            en.rec.state.exit_code = code;
            en.rec.state.finished_at = now_rfc3339();
            // Waiters for the next exit learn about the failure.
            en.exit_gen += 1;
        });
        // Docker removes an AutoRemove container whose start failed, so a
        // `wait?condition=removed` (what `docker run --rm` blocks on) answers.
        if rec.host_config.auto_remove.val() {
            if let Err(re) = remove_inner_opt(s, id, false, true) {
                tracing::warn!("auto-remove {id} after failed start: {re}");
            }
        }
        e
    };
    let prepared = s
        .containers
        .lock()
        .by_id
        .get_mut(id)
        .and_then(|en| en.prepared.take());
    // A prepared container whose monitor died meanwhile is made again (dropping the task
    // releases its namespace; `create_task` deletes what the runtime has of it first).
    let task = match prepared.filter(Task::monitor_alive) {
        Some(t) => {
            crate::mark("engine: using the prepared container");
            t
        }
        None => match create_task(s, id, &rec) {
            Ok(t) => t,
            Err(e) => return Err(fail(e)),
        },
    };
    // The namespace is held until the container runs: its init is in it then. A failure
    // before that drops the endpoint (undone) with the task.
    let Task {
        ctl,
        pid,
        netns,
        endpoint,
    } = task;
    // Connect the watcher and the pending attach sessions before the process runs.
    let watch = match connect_watch(s, id) {
        Ok(w) => w,
        Err(e) => {
            drop(ctl);
            return Err(fail(internal("connect to the monitor", e)));
        }
    };
    let pend: Vec<(AttachHello, Arc<Slot>)> = s
        .containers
        .lock()
        .by_id
        .get_mut(id)
        .map(|en| {
            en.starting = true;
            en.pending.drain(..).collect()
        })
        .unwrap_or_default();
    for (h, slot) in pend {
        match crate::proto::connect(&s.attach_sock(id))
            .and_then(|c| (&c).write_all(&hello_line(&h)).map(|_| c))
        {
            Ok(c) => slot.connect(c),
            Err(_) => slot.close(),
        }
    }
    crate::mark("engine: watch+attach connected");
    // Our specs have no poststart hooks: what the runtime's start does is releasing the init
    // through its exec fifo, which we do here, then tell the monitor to carry on (no answer
    // to wait for). If the init is gone, the monitor learns from the closed channel.
    if let Err(e) = s.rt.release(id) {
        drop(ctl);
        drop(watch);
        return Err(fail(runtime_task_error(&e)));
    }
    crate::mark("engine: released");
    if let Err(e) = (&ctl).write_all(format!("{CTL_GO}\n").as_bytes()) {
        // Running already: the monitor, without its go, ends it and reports the exit.
        tracing::warn!("tell berth-monitor of {id} to go on: {e}");
    }
    // In memory only: the next write of the record (stop, exit, update...) carries it, and a
    // daemon that stops before that finds the container running and adopts it (reconcile).
    let rec = s.containers.update_unsaved(id, |en| {
        en.rec.state.status = Status::Running;
        en.starting = false;
        en.rec.state.pid = pid;
        en.rec.state.started_at = now_rfc3339();
        en.rec.state.error = String::new();
        en.rec.state.exit_code = 0;
        en.rec.state.oom_killed = false;
        // (Held by its processes now; only an older berthd's records name one.)
        en.rec.state.net_ns = String::new();
        en.rec.has_been_started = true;
        en.rec.manually_stopped = false;
        en.rec.clone()
    })?;
    drop(netns);
    // The running container's now: its exit disconnects it.
    if let Some(ep) = endpoint {
        ep.keep();
    }
    crate::mark("engine: running state saved");
    s.event(&rec, "start", &[]);
    crate::health::started(s, id);
    spawn_watcher(s.clone(), id.to_string(), watch);
    // Not now: a new monitor starting up would compete for the CPU with the container's first
    // moments (and, for a short-lived one, with its exit handling, which refills at once).
    refill_spare_after(s, Duration::from_millis(50));
    Ok(())
}

pub(crate) fn stop(
    e: &Engine,
    x: &str,
    timeout: Option<i64>,
    signal: Option<&str>,
    _restart: bool,
) -> Result<()> {
    let s = &e.inner.0;
    let (id, op) = s.containers.find(x)?;
    let _g = op
        .lock()
        .map_err(|_| Error::Internal("container lock poisoned".into()))?;
    stop_locked(s, &id, timeout, signal)
}

pub(crate) fn stop_locked(
    s: &Arc<Shared>,
    id: &str,
    timeout: Option<i64>,
    signal: Option<&str>,
) -> Result<()> {
    let rec = s.containers.record(id)?;
    if rec.state.status == Status::Restarting {
        s.containers.update(id, |en| {
            en.rec.manually_stopped = true;
            en.rec.state.status = Status::Exited;
        })?;
        s.event(&rec, "stop", &[]);
        return Ok(());
    }
    if !rec.running() {
        return Err(Error::NotModified);
    }
    let gen = s.containers.update(id, |en| {
        en.rec.manually_stopped = true;
        en.exit_gen
    })?;
    let sig_name = signal
        .map(String::from)
        .or_else(|| {
            Some(rec.config.stop_signal.str())
                .filter(|x| !x.is_empty())
                .map(String::from)
        })
        .unwrap_or_else(|| "SIGTERM".into());
    let sig = parse_signal(&sig_name)?;
    let t = timeout
        .or_else(|| rec.config.stop_timeout.get().copied())
        .unwrap_or(10);
    let paused = rec.state.status == Status::Paused;
    if let Ok(sg) = nix::sys::signal::Signal::try_from(sig) {
        if s.rt.kill(id, sg as i32, false).is_ok() {
            s.event(&rec, "kill", &[("signal", sig.to_string())]);
        }
    }
    if paused {
        let _ = s.rt.resume(id);
    }
    let exited = wait_exit(
        s,
        id,
        gen,
        if t < 0 {
            None
        } else {
            Some(Duration::from_secs(t as u64))
        },
    );
    if !exited {
        let _ = s.rt.kill(id, libc::SIGKILL, true);
        s.event(&rec, "kill", &[("signal", "9".into())]);
        if !wait_exit(s, id, gen, Some(Duration::from_secs(30))) {
            return Err(Error::internal_msg(format!(
                "container {id} did not exit after SIGKILL"
            )));
        }
    }
    s.event(&rec, "stop", &[]);
    Ok(())
}

pub(crate) fn restart(
    e: &Engine,
    x: &str,
    timeout: Option<i64>,
    signal: Option<&str>,
) -> Result<()> {
    let s = &e.inner.0;
    let (id, op) = s.containers.find(x)?;
    let _g = op
        .lock()
        .map_err(|_| Error::Internal("container lock poisoned".into()))?;
    match stop_locked(s, &id, timeout, signal) {
        Ok(()) | Err(Error::NotModified) => {}
        Err(e) => return Err(e),
    }
    // Let the watcher finish the exit bookkeeping.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.containers.record(&id)?.running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    start_locked(s, &id)?;
    let rec = s.containers.record(&id)?;
    s.event(&rec, "restart", &[]);
    Ok(())
}

pub(crate) fn kill(e: &Engine, x: &str, signal: Option<&str>) -> Result<()> {
    let s = &e.inner.0;
    let (id, _) = s.containers.find(x)?;
    let rec = s.containers.record(&id)?;
    let sig = parse_signal(signal.filter(|x| !x.is_empty()).unwrap_or("SIGKILL"))?;
    if !rec.state.status.has_process() {
        return Err(Error::Conflict(format!(
            "Cannot kill container: {x}: container {id} is not running"
        )));
    }
    let sg = nix::sys::signal::Signal::try_from(sig)
        .map_err(|_| Error::BadParameter(format!("Invalid signal: {sig}")))?;
    s.rt.kill(&id, sg as i32, sig == 9)
        .map_err(|er| internal(format!("kill {id}"), er))?;
    if rec.state.status == Status::Paused && sig == 9 {
        let _ = s.rt.resume(&id);
    }
    s.event(&rec, "kill", &[("signal", sig.to_string())]);
    Ok(())
}

pub(crate) fn pause(e: &Engine, x: &str) -> Result<()> {
    let s = &e.inner.0;
    let (id, op) = s.containers.find(x)?;
    let _g = op.lock();
    let rec = s.containers.record(&id)?;
    match rec.state.status {
        Status::Running => {}
        Status::Paused => return Err(Error::Conflict(format!("container {id} is already paused"))),
        _ => return Err(Error::Conflict(format!("container {id} is not running"))),
    }
    s.rt.pause(&id)
        .map_err(|er| internal(format!("pause {id}"), er))?;
    crate::health::stopped(s, &id);
    let rec = s.containers.update(&id, |en| {
        en.rec.state.status = Status::Paused;
        en.rec.clone()
    })?;
    s.event(&rec, "pause", &[]);
    Ok(())
}

pub(crate) fn unpause(e: &Engine, x: &str) -> Result<()> {
    let s = &e.inner.0;
    let (id, op) = s.containers.find(x)?;
    let _g = op.lock();
    let rec = s.containers.record(&id)?;
    if rec.state.status != Status::Paused {
        return Err(Error::Conflict(format!("container {id} is not paused")));
    }
    s.rt.resume(&id)
        .map_err(|er| internal(format!("unpause {id}"), er))?;
    let rec = s.containers.update(&id, |en| {
        en.rec.state.status = Status::Running;
        en.rec.clone()
    })?;
    crate::health::resumed(s, &id);
    s.event(&rec, "unpause", &[]);
    Ok(())
}
