//! One health check in flight: an exec of the probe's command through the engine's exec
//! machinery (a `berth-monitor` in exec mode, nothing run on the host), its output collected
//! as Docker keeps it, its process killed (through a pidfd) when its timeout passes.
use super::config::go_duration;
use super::state::{Frames, HealthResult, Output};
use crate::model::Status;
use crate::proto::AttachHello;
use crate::shared::Shared;
use crate::state::Record;
use crate::{exec, Error};
use serde_json::json;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a killed check's output may take to end before the check is given up on.
const KILLED_GRACE: Duration = Duration::from_secs(10);

pub(super) struct Check {
    pub id: String,
    pub gen: u64,
    exec_id: String,
    container: Record,
    conn: UnixStream,
    frames: Frames,
    out: Output,
    pidfd: Option<OwnedFd>,
    /// When the check was due (Docker's `Start`), RFC 3339 and Unix seconds.
    pub start: String,
    pub start_unix: f64,
    timeout: Duration,
    /// The timeout; once killed, the end of [`KILLED_GRACE`].
    pub deadline: Instant,
    killed: bool,
    eof: bool,
    exit_file: PathBuf,
}

/// What a due check came to.
pub(super) enum Launch {
    Running(Box<Check>),
    /// It could not run: a result all the same (exit -1, the error), as dockerd records.
    Failed(HealthResult),
    /// The container is not running or has no check (any more).
    Nothing,
}

pub(super) fn now() -> (String, f64) {
    (berth_fsutil::rfc3339_nano_now(), crate::util::now_f64())
}

/// Start container `id`'s check.
pub(super) fn launch(s: &Arc<Shared>, id: &str, gen: u64) -> Launch {
    let Ok(rec) = s.containers.record(id) else {
        return Launch::Nothing;
    };
    let Some(hc) = rec
        .config
        .healthcheck
        .get()
        .filter(|_| rec.state.status == Status::Running)
    else {
        return Launch::Nothing;
    };
    let Some(probe) = hc.probe() else {
        return Launch::Nothing;
    };
    let (start, start_unix) = now();
    let failed = |e: Error| {
        tracing::warn!("health check of {id}: {e}");
        Launch::Failed(HealthResult {
            start: start.clone(),
            end: now().0,
            exit_code: -1,
            output: e.to_string(),
        })
    };
    let body = json!({
        "Cmd": probe.command(rec.config.shell.list()),
        "AttachStdout": true, "AttachStderr": true, "Tty": false, "Privileged": false,
    });
    let exec_id = match exec::create_in(s, id, &body) {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    let hello = AttachHello {
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let started = exec::launch(s, &exec_id, false, Some(hello), false).and_then(|l| {
        let conn = l
            .output
            .ok_or_else(|| Error::internal_msg("the check's output is not connected"))?;
        conn.set_nonblocking(true)
            .map_err(|e| crate::util::internal("make the check's output non-blocking", e))?;
        Ok((conn, l.pid, l.exit_file))
    });
    let (conn, pid, exit_file) = match started {
        Ok(x) => x,
        Err(e) => {
            exec::forget(s, &exec_id);
            return failed(e);
        }
    };
    Launch::Running(Box::new(Check {
        id: id.to_string(),
        gen,
        exec_id,
        pidfd: open_pidfd(pid, rec.state.pid),
        container: rec.clone(),
        conn,
        frames: Frames::default(),
        out: Output::default(),
        start,
        start_unix,
        timeout: hc.timeout(),
        deadline: Instant::now() + hc.timeout(),
        killed: false,
        eof: false,
        exit_file,
    }))
}

/// A pidfd of the check's process `pid`, if it still is one of the container's (same pid
/// namespace as its init `init`): a pid reused since the check exited is not ours to kill.
fn open_pidfd(pid: i32, init: i32) -> Option<OwnedFd> {
    if pid <= 0 || init <= 0 {
        return None;
    }
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` is a descriptor the kernel just gave us, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let ns = |p: i32| {
        std::fs::metadata(format!("/proc/{p}/ns/pid"))
            .ok()
            .map(|m| (m.dev(), m.ino()))
    };
    match (ns(pid), ns(init)) {
        (Some(a), Some(b)) if a == b => Some(fd),
        _ => None,
    }
}

impl Check {
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.conn.as_fd()
    }

    /// Whether the check is over: its output ended, or it was killed and its output did not
    /// end within [`KILLED_GRACE`].
    pub(super) fn done(&self) -> bool {
        self.eof || (self.killed && Instant::now() >= self.deadline)
    }

    /// Read what is there; notes the end of the output.
    pub(super) fn read(&mut self) {
        let mut b = [0u8; 8192];
        loop {
            match (&self.conn).read(&mut b) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                Ok(n) => self.frames.feed(&b[..n], &mut self.out),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.eof = true;
                    return;
                }
            }
        }
    }

    /// The deadline passed: kill the check's process (once).
    pub(super) fn expire(&mut self) {
        if self.killed {
            return;
        }
        self.kill();
        self.killed = true;
        self.deadline = Instant::now() + KILLED_GRACE;
    }

    fn kill(&self) {
        let Some(fd) = &self.pidfd else { return };
        // SAFETY: pidfd_send_signal(2) on a pidfd we own, no siginfo, no flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                tracing::warn!("kill the health check of {}: {e}", self.id);
            }
        }
    }

    /// The result of a check that is [`done`](Check::done).
    pub(super) fn finish(self, s: &Shared) -> HealthResult {
        let code = if self.eof {
            exec::ended(s, &self.exec_id, &self.exit_file, &self.container)
        } else {
            -1
        };
        exec::forget(s, &self.exec_id);
        let out = self.out.text();
        let (exit_code, output) = if self.killed {
            let t = go_duration(self.timeout);
            let msg = if out.is_empty() {
                format!("Health check exceeded timeout ({t})")
            } else {
                format!("Health check exceeded timeout ({t}): {out}")
            };
            (-1, msg)
        } else {
            (code, out)
        };
        HealthResult {
            start: self.start,
            end: now().0,
            exit_code,
            output,
        }
    }

    /// The container stopped (or paused) meanwhile: the check ends without a result.
    pub(super) fn cancel(self, s: &Shared) {
        self.kill();
        exec::forget(s, &self.exec_id);
    }
}
