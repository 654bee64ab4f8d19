//! berthd's side of a berth-monitor: launching one, handing it its config, reading its answers.
use crate::proto::*;
use crate::shared::*;
use crate::util::*;
use crate::*;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Hand the monitor its config (the spare one if there is one, else a fresh one) and read its
/// first answer: "created" (container) / "ready" (exec) or an error.
pub(crate) fn spawn_monitor(
    s: &Arc<Shared>,
    mcfg: &MonitorConfig,
    cfg_path: &Path,
) -> Result<(UnixStream, String)> {
    use std::os::unix::ffi::OsStrExt;
    write_json_nosync(cfg_path, mcfg)?;
    let mut msg = cfg_path.as_os_str().as_bytes().to_vec();
    msg.push(b'\n');
    let spare = if msg.iter().filter(|&&b| b == b'\n').count() == 1 {
        s.ready.spare.lock().ok().and_then(|mut g| g.take())
    } else {
        None
    };
    // A spare that died meanwhile fails the write (EPIPE): start a fresh monitor instead.
    let ours = match spare.filter(|c| (&*c).write_all(&msg).is_ok()) {
        Some(c) => {
            crate::mark("engine: config handed to the spare monitor");
            c
        }
        None => launch_monitor(s, Some(cfg_path))?,
    };
    ours.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| internal("control socket", e))?;
    let line = read_line(&ours)?;
    Ok((ours, line))
}

/// Run berth-monitor with its stdin = one end of a socketpair (the control channel; no other
/// fd plumbing, so std spawns it with posix_spawn = vfork instead of copying berthd's page
/// tables); `cfg_path` None = a spare. Returns once the monitor has detached (its intermediate
/// process is reaped).
pub(crate) fn launch_monitor(s: &Shared, cfg_path: Option<&Path>) -> Result<UnixStream> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| internal("socketpair", e))?;
    let mut cmd = std::process::Command::new(&s.monitor_bin);
    match cfg_path {
        Some(p) => cmd.arg(p),
        None => cmd.arg("--spare"),
    };
    cmd.stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
        theirs,
    )))
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| internal(format!("spawn {}", s.monitor_bin.display()), e))?;
    drop(cmd);
    let _ = child.wait();
    Ok(ours)
}

pub(crate) fn read_line(c: &UnixStream) -> Result<String> {
    let mut r = BufReader::new(c);
    let mut l = String::new();
    // One line at a time; BufReader may over-read but the monitor never sends two lines before
    // we answer.
    r.read_line(&mut l)
        .map_err(|e| internal("read from berth-monitor", e))?;
    if l.is_empty() {
        return Err(Error::Internal(
            "berth-monitor exited without an answer (see its log)".into(),
        ));
    }
    Ok(l.trim_end().to_string())
}

/// The error a monitor's answer reports (`error <TaskError JSON>`; any other unexpected line
/// is all message), typed: its status and exit code come from its kind.
pub(crate) fn monitor_error(line: &str) -> Error {
    Error::Task(TaskError::from_line(line))
}

/// An error of berthd's own runtime call for a task (the release of a created container),
/// typed as a monitor types its own.
pub(crate) fn runtime_task_error(e: &berth_runtime::Error) -> Error {
    Error::Task(TaskError::from_runtime(e))
}

pub(crate) fn hello_line(h: &AttachHello) -> Vec<u8> {
    h.line()
}

/// Wait (up to 10 s) until the container's monitor, if any, has exited: it holds
/// [`monitor_lock_path`] until its runtime cleanup is over.
pub(crate) fn wait_monitor_done(s: &Shared, id: &str) {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::File::open(monitor_lock_path(&s.attach_sock(id))) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: flock on an fd we own; closing the file releases it.
    while unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        if Instant::now() > deadline {
            tracing::warn!("the monitor of {id} is still cleaning up after 10 s");
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
