//! What berthd and `berth-monitor` exchange.
//!
//! berthd writes a [`MonitorConfig`] JSON file and runs `berth-monitor <config>` with stdin =
//! one end of a socketpair (the control channel). The monitor double-forks (so it is not
//! berthd's child), makes itself a child subreaper, listens on `attach_socket` and then:
//! (A spare, `berth-monitor --spare`, is started ahead of time: it detaches at once and
//! reads the config's path as the first line of the control channel.)
//! * container mode: creates the container through the runtime library (stdio = pipes it owns
//!   or a pty), sends [`CTL_CREATED`]` <pid>\n`;
//! * exec mode: sends [`CTL_READY`]`\n`.
//!
//! berthd connects the attach clients that must not miss output, writes `start\n`; the
//! monitor starts the process, answers [`CTL_STARTED`]` <pid>\n` (or `error <message>\n` at
//! any point) and accepts those pending clients before it reads any output. For a container
//! berthd may instead release the process itself (the runtime's exec fifo) and write
//! [`CTL_GO`]`\n`: the monitor carries on without an answer. Then the monitor copies
//! output to the json-file log (container mode) and to attach clients, waits for the process,
//! sends [`WATCH_EXIT`]` <ExitRecord JSON>\n` to its watch clients and closes every attach
//! client (that is how watchers learn of the exit), writes the [`ExitRecord`] atomically to
//! `exit_file` (for a berthd that was away; relative to the directory it opened at start, which
//! an AutoRemove may have renamed meanwhile; an exec's before its clients are closed: berthd
//! reads it when the exec's output ends), deletes the runtime container and exits. It holds the flock
//! [`monitor_lock_path`] for its whole life: berthd takes it before reusing the runtime id.
//!
//! Attach clients send one [`AttachHello`] JSON line first.
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const CTL_CREATED: &str = "created";
pub const CTL_READY: &str = "ready";
pub const CTL_STARTED: &str = "started";
pub const CTL_ERROR: &str = "error";
pub const CTL_START: &str = "start";
/// Container mode: berthd started the process itself; no answer.
pub const CTL_GO: &str = "go";
/// First word of the line a watch client receives when the process exited.
pub const WATCH_EXIT: &str = "exit";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Container,
    Exec,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorConfig {
    pub mode: Mode,
    /// Container id (runtime id).
    pub id: String,
    /// Runtime state root.
    pub runtime_root: PathBuf,
    /// Container mode: the OCI bundle.
    #[serde(default)]
    pub bundle: PathBuf,
    /// Exec mode: the OCI process (runtime-spec JSON).
    #[serde(default)]
    pub process: Option<serde_json::Value>,
    pub tty: bool,
    /// Keep a stdin pipe (OpenStdin / AttachStdin).
    pub open_stdin: bool,
    /// Close the container's stdin when the first attached client closes its input.
    pub stdin_once: bool,
    pub attach_socket: PathBuf,
    /// Container mode: json-file log; `None` = no log (exec).
    #[serde(default)]
    pub log_path: Option<PathBuf>,
    /// Rotation: bytes (0 = unlimited) and number of files (>= 1).
    #[serde(default)]
    pub log_max_size: u64,
    #[serde(default = "one")]
    pub log_max_file: u32,
    /// Where to write the [`ExitRecord`].
    pub exit_file: PathBuf,
    /// Initial terminal size (rows, cols).
    #[serde(default)]
    pub initial_size: Option<(u16, u16)>,
    /// File for the monitor's own errors (container mode).
    #[serde(default)]
    pub monitor_log: Option<PathBuf>,
    /// Milliseconds to let pass between telling the watchers of the exit and the runtime
    /// cleanup, when nobody waits for that cleanup (an AutoRemove container): the client that
    /// waited for the exit finishes first instead of sharing the CPU with it.
    #[serde(default)]
    pub cleanup_delay_ms: u64,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitRecord {
    pub exit_code: i32,
    /// RFC 3339 nano.
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub error: String,
    /// Pid of the process that exited.
    #[serde(default)]
    pub pid: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct AttachHello {
    #[serde(default)]
    pub stdin: bool,
    #[serde(default)]
    pub stdout: bool,
    #[serde(default)]
    pub stderr: bool,
    /// Watch only: no data, the connection closes when the monitor exits.
    #[serde(default)]
    pub watch: bool,
    /// Control request: resize the terminal to (rows, cols) and close.
    #[serde(default)]
    pub resize: Option<(u16, u16)>,
}

/// A unix-socket path usable with bind/connect even when `p` is longer than sun_path allows:
/// long paths go through `/proc/self/fd/<dirfd>/<name>` (the returned guard keeps the
/// directory fd open; keep it alive while using the path).
pub fn sock_path(p: &std::path::Path) -> std::io::Result<(Option<std::fs::File>, PathBuf)> {
    if p.as_os_str().len() < 100 {
        return Ok((None, p.to_path_buf()));
    }
    let dir = p.parent().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "socket path has no parent",
        )
    })?;
    let name = p.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "socket path has no file name",
        )
    })?;
    let f = std::fs::File::open(dir)?;
    use std::os::fd::AsRawFd;
    let short = PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd())).join(name);
    Ok((Some(f), short))
}

/// `UnixStream::connect` that copes with long paths.
pub fn connect(p: &std::path::Path) -> std::io::Result<std::os::unix::net::UnixStream> {
    let (_g, sp) = sock_path(p)?;
    std::os::unix::net::UnixStream::connect(sp)
}

/// The lock a container-mode monitor holds (flock) from before the runtime create until it
/// exits, i.e. until after its runtime cleanup, which it does after writing the exit record.
pub fn monitor_lock_path(attach_socket: &std::path::Path) -> PathBuf {
    attach_socket.with_extension("lock")
}
