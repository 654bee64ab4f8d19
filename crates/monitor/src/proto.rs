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
//! berthd connects the attach clients that must not miss output, then, for a container,
//! releases the process itself (the runtime's exec fifo) and writes [`CTL_GO`]`\n` (no
//! answer); for an exec it writes [`CTL_START`]`\n` and the monitor runs the process and
//! answers [`CTL_STARTED`]` <pid>\n`. At any point before, the monitor may answer
//! [`CTL_ERROR`]` <TaskError JSON>\n` instead (see [`TaskError`](crate::TaskError)); anything
//! else from berthd takes a created container down. The monitor accepts those pending clients
//! before it reads any output. Then it copies
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
/// Exec mode: run the process.
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
    /// Container mode: the embedded DNS resolver (a container on a user-defined network).
    #[serde(default)]
    pub dns: Option<DnsConfig>,
}

/// What the embedded resolver answers and where it forwards (see [`crate::dns`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DnsConfig {
    /// The networks' DNS files: `<dir>/<network-id>.json`.
    pub dir: PathBuf,
    /// The container's networks (IDs).
    #[serde(default)]
    pub networks: Vec<String>,
    /// A JSON array of network IDs that replaces `networks` whenever it changes (connect,
    /// disconnect of a running container).
    #[serde(default)]
    pub networks_file: Option<PathBuf>,
    /// Where names that are not the networks' go, in order.
    #[serde(default)]
    pub upstreams: Vec<std::net::SocketAddr>,
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

impl AttachHello {
    /// The hello as a client sends it: one JSON line.
    pub fn line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// A hello line as the monitor receives it (without its newline).
    pub fn parse(line: &[u8]) -> serde_json::Result<AttachHello> {
        serde_json::from_slice(line)
    }
}

impl ExitRecord {
    /// What a watch client receives when the process exited: `exit <record JSON>\n`.
    pub fn watch_line(&self) -> serde_json::Result<Vec<u8>> {
        let mut line = format!("{WATCH_EXIT} ").into_bytes();
        serde_json::to_writer(&mut line, self)?;
        line.push(b'\n');
        Ok(line)
    }

    /// The exit record in a watch connection's data (`exit <json>\n`); None if it is not
    /// there whole (the monitor died first).
    pub fn from_watch_data(data: &[u8]) -> Option<ExitRecord> {
        let rest = data.strip_prefix(format!("{WATCH_EXIT} ").as_bytes())?;
        let end = rest.iter().position(|&c| c == b'\n')?;
        serde_json::from_slice(&rest[..end]).ok()
    }
}

/// A first answer of the control channel: `created <pid>` / `started <pid>` (`what`) gives the
/// pid; `ready` gives 0. None: not that answer (an error line).
pub fn answer_pid(line: &str, what: &str) -> Option<i32> {
    let rest = line.strip_prefix(what)?;
    if rest.is_empty() {
        return Some(0);
    }
    rest.strip_prefix(' ')
        .map(|p| p.trim().parse().unwrap_or(0))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_lines_round_trip_and_default_missing_fields() {
        let h = AttachHello {
            stdin: true,
            stdout: true,
            resize: Some((24, 80)),
            ..Default::default()
        };
        let line = h.line();
        assert_eq!(line.last(), Some(&b'\n'));
        let back = AttachHello::parse(&line[..line.len() - 1]).unwrap();
        assert!(back.stdin && back.stdout && !back.stderr && !back.watch);
        assert_eq!(back.resize, Some((24, 80)));
        let w = AttachHello::parse(br#"{"watch":true}"#).unwrap();
        assert!(w.watch && !w.stdin && !w.stdout && w.resize.is_none());
        assert!(AttachHello::parse(b"{not json").is_err());
    }

    #[test]
    fn watch_line_round_trip_and_partial_data() {
        let rec = ExitRecord {
            exit_code: 3,
            finished_at: "2026-11-25T00:00:00.1Z".into(),
            oom_killed: true,
            error: String::new(),
            pid: 42,
        };
        let line = rec.watch_line().unwrap();
        assert!(line.starts_with(b"exit {"));
        assert_eq!(ExitRecord::from_watch_data(&line), Some(rec));
        assert_eq!(ExitRecord::from_watch_data(&line[..line.len() - 3]), None);
        assert_eq!(ExitRecord::from_watch_data(b"exit {not json}\n"), None);
        assert_eq!(ExitRecord::from_watch_data(b""), None);
        // An older monitor's record (no pid, no oom field) still reads.
        let old = ExitRecord::from_watch_data(b"exit {\"exit_code\":1,\"finished_at\":\"t\"}\n");
        assert_eq!(
            old.map(|r| (r.exit_code, r.pid, r.oom_killed)),
            Some((1, 0, false))
        );
    }

    #[test]
    fn answers_give_their_pid() {
        assert_eq!(answer_pid("created 42", CTL_CREATED), Some(42));
        assert_eq!(answer_pid("started 7", CTL_STARTED), Some(7));
        assert_eq!(answer_pid("ready", CTL_READY), Some(0));
        assert_eq!(answer_pid("error {}", CTL_CREATED), None);
        assert_eq!(answer_pid("createdX", CTL_CREATED), None);
    }

    #[test]
    fn config_defaults() {
        let c: MonitorConfig = serde_json::from_str(
            r#"{"mode":"exec","id":"c","runtime_root":"/r","tty":false,"open_stdin":false,
                "stdin_once":false,"attach_socket":"/s/a.sock","exit_file":"/s/x.exit"}"#,
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Exec);
        assert_eq!((c.log_max_size, c.log_max_file), (0, 1));
        assert!(c.log_path.is_none() && c.process.is_none());
        assert_eq!(
            monitor_lock_path(&c.attach_socket),
            PathBuf::from("/s/a.lock")
        );
    }

    #[test]
    fn long_socket_paths_go_through_the_directory_fd() {
        let d = tempfile::tempdir().unwrap();
        let long = d.path().join("x".repeat(100)).join("a.sock");
        std::fs::create_dir_all(long.parent().unwrap()).unwrap();
        let (guard, short) = sock_path(&long).unwrap();
        assert!(guard.is_some() && short.starts_with("/proc/self/fd/"));
        let l = std::os::unix::net::UnixListener::bind(&short).unwrap();
        let _c = connect(&long).unwrap();
        drop(l);
        let (guard, same) = sock_path(std::path::Path::new("/run/a.sock")).unwrap();
        assert!(guard.is_none() && same == std::path::Path::new("/run/a.sock"));
    }
}
