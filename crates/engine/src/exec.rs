//! Exec: processes started in a running container through a `berth-monitor` in exec mode.
use crate::attach::{make_attach, parse_detach_keys, Slot};
use crate::containers::running_id;
use crate::model::Status;
use crate::monitor::{hello_line, monitor_error, read_line, spawn_monitor};
use crate::proto::*;
use crate::util::*;
use crate::*;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Debug, Clone)]
pub(crate) struct ExecRecord {
    pub id: String,
    pub container: String,
    pub config: Value,
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i64>,
    pub pid: i32,
    pub can_remove: bool,
}

fn sock(s: &shared::Shared, container: &str, exec_id: &str) -> std::path::PathBuf {
    s.xdir(container)
        .join(format!("exec-{}.sock", &exec_id[..16]))
}

fn exit_file(s: &shared::Shared, container: &str, exec_id: &str) -> std::path::PathBuf {
    s.xdir(container)
        .join(format!("exec-{}.exit", &exec_id[..16]))
}

pub(crate) fn create(e: &Engine, container: &str, body: &Value) -> Result<Value> {
    let s = &e.inner.0;
    let r = running_id(s, container)?;
    if r.state.status == Status::Paused {
        return Err(Error::Conflict(format!(
            "Container {} is paused, unpause the container before exec",
            r.id
        )));
    }
    let cmd = checked_cmd(body)?;
    let id = random_id()?;
    let rec = ExecRecord {
        id: id.clone(),
        container: r.id.clone(),
        config: body.clone(),
        running: false,
        started: false,
        exit_code: None,
        pid: 0,
        can_remove: false,
    };
    s.execs
        .lock()
        .map_err(|_| Error::Internal("exec table poisoned".into()))?
        .insert(id.clone(), rec);
    s.event(
        &r,
        &format!("exec_create: {}", cmd.join(" ")),
        &[("execID", id.clone())],
    );
    Ok(json!({"Id": id}))
}

/// The command of an exec create body, its detach keys checked.
fn checked_cmd(body: &Value) -> Result<Vec<String>> {
    let cmd: Vec<String> = body["Cmd"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if cmd.is_empty() {
        return Err(Error::BadParameter("No exec command specified".into()));
    }
    if let Some(k) = body["DetachKeys"].as_str().filter(|k| !k.is_empty()) {
        parse_detach_keys(k)?;
    }
    Ok(cmd)
}

/// An exec create body checked as create does, then the OCI process start would run for it
/// in a container of OCI spec `spec` whose rootfs is `rootfs`. For the fuzz targets.
#[cfg(feature = "fuzzing")]
pub(crate) fn process_of_request(
    body: &Value,
    spec: &Value,
    rootfs: &std::path::Path,
) -> Result<Value> {
    checked_cmd(body)?;
    let tty = body["Tty"].as_bool().unwrap_or(false);
    process_for(spec, rootfs, body, tty)
}

fn get(s: &shared::Shared, id: &str) -> Result<ExecRecord> {
    let m = s
        .execs
        .lock()
        .map_err(|_| Error::Internal("exec table poisoned".into()))?;
    m.get(id)
        .cloned()
        .ok_or_else(|| Error::NotFound(format!("No such exec instance: {id}")))
}

fn set(s: &shared::Shared, id: &str, f: impl FnOnce(&mut ExecRecord)) {
    if let Ok(mut m) = s.execs.lock() {
        if let Some(r) = m.get_mut(id) {
            f(r);
        }
    }
}

/// The OCI process for an exec: the container's process with the exec's overrides.
fn build_process(s: &shared::Shared, c: &state::Record, cfg: &Value, tty: bool) -> Result<Value> {
    let bundle = s.xdir(&c.id).join("bundle").join("config.json");
    let spec: Value = std::fs::read(&bundle)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| Error::internal_msg(format!("read {}", bundle.display())))?;
    process_for(&spec, &s.rootfs(&c.id), cfg, tty)
}

/// The container's process (of its OCI `spec`) with the exec's overrides.
fn process_for(spec: &Value, rootfs: &std::path::Path, cfg: &Value, tty: bool) -> Result<Value> {
    let mut p = spec["process"].clone();
    let args: Vec<String> = cfg["Cmd"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    p["args"] = json!(args);
    p["terminal"] = json!(tty);
    let mut env: Vec<String> = p["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if let Some(a) = cfg["Env"].as_array() {
        let extra: Vec<String> = a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect();
        env = spec::merge_env(&env, &extra);
    }
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    p["env"] = json!(env);
    if let Some(w) = cfg["WorkingDir"].as_str().filter(|w| !w.is_empty()) {
        p["cwd"] = json!(w);
    }
    if let Some(u) = cfg["User"].as_str().filter(|u| !u.is_empty()) {
        let user = spec::resolve_user(rootfs, u, &[])?;
        p["user"] = json!({"uid": user.uid, "gid": user.gid, "additionalGids": user.additional});
    }
    if cfg["Privileged"].as_bool().unwrap_or(false) {
        let all: Vec<&str> = spec::available_caps();
        p["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
    }
    if let Some(m) = p.as_object_mut() {
        m.remove("consoleSize");
    }
    Ok(p)
}

pub(crate) fn start(
    e: &Engine,
    exec_id: &str,
    detach: bool,
    tty_req: bool,
) -> Result<Option<Attach>> {
    let s = &e.inner.0;
    let ex = get(s, exec_id)?;
    if ex.started {
        return Err(Error::Conflict(format!(
            "Error: Exec command {exec_id} has already run"
        )));
    }
    let c = running_id(s, &ex.container)?;
    if c.state.status == Status::Paused {
        return Err(Error::Conflict(format!(
            "Container {} is paused, unpause the container before exec",
            c.id
        )));
    }
    set(s, exec_id, |r| r.started = true);
    let cfg = &ex.config;
    let tty = cfg["Tty"].as_bool().unwrap_or(false) || tty_req;
    let attach_stdin = cfg["AttachStdin"].as_bool().unwrap_or(false);
    let process = build_process(s, &c, cfg, tty)?;
    let sockp = sock(s, &c.id, exec_id);
    let exitp = exit_file(s, &c.id, exec_id);
    let mcfg = MonitorConfig {
        mode: Mode::Exec,
        id: c.id.clone(),
        runtime_root: s.rt.root.clone(),
        bundle: Default::default(),
        process: Some(process),
        tty,
        open_stdin: attach_stdin && !detach,
        stdin_once: true,
        attach_socket: sockp.clone(),
        log_path: None,
        log_max_size: 0,
        log_max_file: 1,
        exit_file: exitp.clone(),
        initial_size: cfg["ConsoleSize"]
            .as_array()
            .and_then(|a| Some((a.first()?.as_u64()? as u16, a.get(1)?.as_u64()? as u16)))
            .filter(|(h, w)| *h > 0 && *w > 0),
        monitor_log: None,
        cleanup_delay_ms: 0,
    };
    let cfg_path = s.xdir(&c.id).join(format!("exec-{}.json", &exec_id[..16]));
    let (ctl, line) = spawn_monitor(s, &mcfg, &cfg_path)?;
    let _ = std::fs::remove_file(&cfg_path);
    crate::ready::refill_spare(s);
    if !line.starts_with(CTL_READY) {
        set(s, exec_id, |r| r.exit_code = Some(126));
        return Err(monitor_error(&line));
    }
    let watch = crate::proto::connect(&sockp).and_then(|w| {
        (&w).write_all(&hello_line(&AttachHello {
            watch: true,
            ..Default::default()
        }))
        .map(|_| w)
    });
    let attach = if detach {
        None
    } else {
        let hello = AttachHello {
            stdin: attach_stdin,
            stdout: cfg["AttachStdout"].as_bool().unwrap_or(true),
            stderr: cfg["AttachStderr"].as_bool().unwrap_or(true),
            ..Default::default()
        };
        let conn = crate::proto::connect(&sockp)
            .and_then(|w| (&w).write_all(&hello_line(&hello)).map(|_| w))
            .map_err(|er| internal("connect to the exec monitor", er))?;
        let keys = parse_detach_keys(
            cfg["DetachKeys"]
                .as_str()
                .filter(|k| !k.is_empty())
                .unwrap_or("ctrl-p,ctrl-q"),
        )?;
        Some(make_attach(
            Slot::connected(conn),
            tty,
            attach_stdin,
            if tty { keys } else { Vec::new() },
        ))
    };
    (&ctl)
        .write_all(format!("{CTL_START}\n").as_bytes())
        .map_err(|er| internal("talk to berth-monitor", er))?;
    let line = read_line(&ctl)?;
    if !line.starts_with(CTL_STARTED) {
        let e = monitor_error(&line);
        set(s, exec_id, |r| r.exit_code = Some(e.exec_exit_code()));
        // Docker reports exec start failures inside the stream for attached execs; we return
        // the error and the API decides.
        return Err(e);
    }
    let pid: i32 = line[CTL_STARTED.len()..].trim().parse().unwrap_or(0);
    set(s, exec_id, |r| {
        r.running = true;
        r.pid = pid;
    });
    let args = cfg["Cmd"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    s.event(
        &c,
        &format!("exec_start: {args}"),
        &[("execID", exec_id.to_string())],
    );
    // Watch for the exit.
    let ss = s.clone();
    let eid = exec_id.to_string();
    let cc = c.clone();
    std::thread::spawn(move || {
        if let Ok(w) = watch {
            let mut b = [0u8; 16];
            while matches!(std::io::Read::read(&mut &w, &mut b), Ok(n) if n > 0) {}
        }
        finish(&ss, &eid, &exitp);
        let code = get(&ss, &eid).ok().and_then(|r| r.exit_code).unwrap_or(-1);
        ss.event(
            &cc,
            "exec_die",
            &[("execID", eid.clone()), ("exitCode", code.to_string())],
        );
    });
    Ok(attach)
}

/// Read the exec's exit record once the monitor is done.
fn finish(s: &shared::Shared, id: &str, exitp: &std::path::Path) {
    for _ in 0..50 {
        if let Some(r) = std::fs::read(exitp)
            .ok()
            .and_then(|b| serde_json::from_slice::<ExitRecord>(&b).ok())
        {
            // State first, file after: an inspect that finds no file finds the state.
            set(s, id, |x| {
                x.running = false;
                x.exit_code = Some(r.exit_code as i64);
            });
            let _ = std::fs::remove_file(exitp);
            return;
        }
        if get(s, id).map(|x| !x.running).unwrap_or(true) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    set(s, id, |x| {
        x.running = false;
        if x.exit_code.is_none() {
            x.exit_code = Some(-1);
        }
    });
}

pub(crate) fn inspect(e: &Engine, exec_id: &str) -> Result<Value> {
    let s = &e.inner.0;
    let mut ex = get(s, exec_id)?;
    if ex.running {
        // The output may have ended before our watcher saw the exit record.
        let exitp = exit_file(s, &ex.container, exec_id);
        if let Some(r) = std::fs::read(&exitp)
            .ok()
            .and_then(|b| serde_json::from_slice::<ExitRecord>(&b).ok())
        {
            set(s, exec_id, |x| {
                x.running = false;
                x.exit_code = Some(r.exit_code as i64);
            });
        }
        // (No file: the watcher may have taken it meanwhile, having set the state first.)
        ex = get(s, exec_id)?;
    }
    let c = &ex.config;
    let cmd: Vec<Value> = c["Cmd"].as_array().cloned().unwrap_or_default();
    Ok(json!({
        "ID": ex.id,
        "Running": ex.running,
        "ExitCode": ex.exit_code,
        "ProcessConfig": {
            "tty": c["Tty"].as_bool().unwrap_or(false),
            "entrypoint": cmd.first().cloned().unwrap_or(Value::Null),
            "arguments": cmd.iter().skip(1).cloned().collect::<Vec<_>>(),
            "privileged": c["Privileged"].as_bool().unwrap_or(false),
            "user": c["User"].as_str().unwrap_or(""),
        },
        "OpenStdin": c["AttachStdin"].as_bool().unwrap_or(false),
        "OpenStderr": c["AttachStderr"].as_bool().unwrap_or(false),
        "OpenStdout": c["AttachStdout"].as_bool().unwrap_or(false),
        "CanRemove": ex.can_remove,
        "ContainerID": ex.container,
        "DetachKeys": c["DetachKeys"].as_str().unwrap_or(""),
        "Pid": ex.pid,
    }))
}

pub(crate) fn resize(e: &Engine, exec_id: &str, h: u16, w: u16) -> Result<()> {
    let s = &e.inner.0;
    let ex = get(s, exec_id)?;
    if !ex.running {
        return Err(Error::Conflict(format!("exec {exec_id} is not running")));
    }
    crate::attach::resize_sock(&sock(s, &ex.container, exec_id), h, w)
}
