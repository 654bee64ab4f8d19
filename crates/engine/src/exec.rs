//! Exec: processes started in a running container through a `berth-monitor` in exec mode.
use crate::attach::{make_attach, parse_detach_keys, Slot};
use crate::containers::running_id;
use crate::model::Status;
use crate::monitor::{hello_line, monitor_error, read_line, spawn_monitor};
use crate::proto::*;
use crate::util::*;
use crate::*;
use serde_json::{json, Value};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
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
    let id = create_in(&e.inner.0, container, body)?;
    Ok(json!({"Id": id}))
}

/// Register an exec of `body` (Docker's ExecConfig) in `container`: its id.
pub(crate) fn create_in(s: &shared::Shared, container: &str, body: &Value) -> Result<String> {
    let cfg: crate::model::ExecConfig = crate::model::decode("", body)?;
    let r = running_id(s, container)?;
    if r.state.status == Status::Paused {
        return Err(Error::Conflict(format!(
            "Container {} is paused, unpause the container before exec",
            r.id
        )));
    }
    let cmd = checked_cmd(&cfg)?;
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
    Ok(id)
}

/// Drop an exec from the table (the health checks' once done: they are not kept).
pub(crate) fn forget(s: &shared::Shared, id: &str) {
    if let Ok(mut m) = s.execs.lock() {
        m.remove(id);
    }
}

/// The command of an exec create body, its detach keys and console size checked.
fn checked_cmd(cfg: &crate::model::ExecConfig) -> Result<Vec<String>> {
    let cmd = cfg.cmd.list().to_vec();
    if cmd.is_empty() {
        return Err(Error::BadParameter("No exec command specified".into()));
    }
    if !cfg.detach_keys.str().is_empty() {
        parse_detach_keys(cfg.detach_keys.str())?;
    }
    let cs = cfg.console_size.items();
    if !(cs.is_empty() || cs.len() == 2 && cs.iter().all(|n| *n <= u16::MAX as u64)) {
        return Err(Error::BadParameter(
            "invalid ConsoleSize: expected [height, width], each at most 65535".into(),
        ));
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
    let cfg: crate::model::ExecConfig = crate::model::decode("", body)?;
    checked_cmd(&cfg)?;
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
    let cfg = get(s, exec_id)?.config;
    let attach_stdin = cfg["AttachStdin"].as_bool().unwrap_or(false);
    let hello = (!detach).then(|| AttachHello {
        stdin: attach_stdin,
        stdout: cfg["AttachStdout"].as_bool().unwrap_or(true),
        stderr: cfg["AttachStderr"].as_bool().unwrap_or(true),
        ..Default::default()
    });
    let keys = parse_detach_keys(
        cfg["DetachKeys"]
            .as_str()
            .filter(|k| !k.is_empty())
            .unwrap_or("ctrl-p,ctrl-q"),
    )?;
    let l = launch(s, exec_id, tty_req, hello, true)?;
    let tty = l.tty;
    let attach = l.output.map(|conn| {
        make_attach(
            Slot::connected(conn),
            tty,
            attach_stdin,
            if tty { keys } else { Vec::new() },
        )
    });
    // Watch for the exit.
    let ss = s.clone();
    let eid = exec_id.to_string();
    let (watch, exitp, cc) = (l.watch, l.exit_file, l.container);
    std::thread::spawn(move || {
        if let Some(Ok(w)) = watch {
            let mut b = [0u8; 16];
            while matches!(std::io::Read::read(&mut &w, &mut b), Ok(n) if n > 0) {}
        }
        ended(&ss, &eid, &exitp, &cc);
    });
    Ok(attach)
}

/// A started exec process.
pub(crate) struct Launched {
    pub container: state::Record,
    pub tty: bool,
    pub pid: i32,
    pub exit_file: std::path::PathBuf,
    /// Connected with the hello asked for, before the process ran (no output is missed).
    pub output: Option<UnixStream>,
    /// A watch connection, when asked for: it closes when the monitor is done.
    pub watch: Option<std::io::Result<UnixStream>>,
}

/// Run exec `exec_id` through a `berth-monitor` in exec mode: `output` connects an attach
/// client (its stdin flag keeps the process's stdin open), `watch` a watch client.
pub(crate) fn launch(
    s: &Arc<shared::Shared>,
    exec_id: &str,
    tty_req: bool,
    output: Option<AttachHello>,
    watch: bool,
) -> Result<Launched> {
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
        open_stdin: output.as_ref().is_some_and(|h| h.stdin),
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
        dns: None,
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
    let hello_conn = |h: &AttachHello| {
        crate::proto::connect(&sockp).and_then(|w| (&w).write_all(&hello_line(h)).map(|_| w))
    };
    let watch = watch.then(|| {
        hello_conn(&AttachHello {
            watch: true,
            ..Default::default()
        })
    });
    let output = match output {
        Some(h) => Some(hello_conn(&h).map_err(|er| internal("connect to the exec monitor", er))?),
        None => None,
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
    Ok(Launched {
        container: c,
        tty,
        pid,
        exit_file: exitp,
        output,
        watch,
    })
}

/// The exec's process is done (its output or watch connection ended): its exit code
/// recorded, `exec_die` emitted. Returns the exit code (-1: unknown).
pub(crate) fn ended(
    s: &shared::Shared,
    exec_id: &str,
    exitp: &std::path::Path,
    c: &state::Record,
) -> i64 {
    finish(s, exec_id, exitp);
    let code = get(s, exec_id).ok().and_then(|r| r.exit_code).unwrap_or(-1);
    s.event(
        c,
        "exec_die",
        &[
            ("execID", exec_id.to_string()),
            ("exitCode", code.to_string()),
        ],
    );
    code
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
