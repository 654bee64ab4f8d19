//! The end of the process: its exit code, the exit record, who is told and in which order.
use crate::clients::Client;
use crate::error::{Error, IoContext, Result};
use crate::proto::{ExitRecord, Mode, MonitorConfig};
use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The exit code of a wait status as a shell reports it: the code, 128 + the signal that
/// killed it, 255 for anything else.
pub(crate) fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

pub(crate) fn record(exit_code: i32, pid: i32, oom_killed: bool) -> ExitRecord {
    ExitRecord {
        exit_code,
        finished_at: berth_fsutil::rfc3339_nano_now(),
        oom_killed,
        error: String::new(),
        pid,
    }
}

/// Write the exit record as `exit_file`'s name in `dir` (the directory `exit_file` was in when
/// we started: an AutoRemove renames it away once the watchers know), write-then-rename.
pub(crate) fn write_exit_record(dir: &File, exit_file: &Path, data: &[u8]) -> Result<()> {
    let name = exit_file
        .file_name()
        .ok_or_else(|| Error::Protocol(format!("exit file {} has no name", exit_file.display())))?;
    let nul = |_| Error::Protocol(format!("exit file {} has a NUL byte", exit_file.display()));
    let fin = CString::new(name.as_bytes()).map_err(nul)?;
    let tmp = CString::new([b".", name.as_bytes(), b".tmp"].concat()).map_err(nul)?;
    // SAFETY: openat on a directory fd we own with a NUL-terminated name; the fd is checked
    // and then owned by the File.
    let f = unsafe {
        let fd = libc::openat(
            dir.as_raw_fd(),
            tmp.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        );
        if fd < 0 {
            return Err(Error::last_os(format!(
                "create {}.tmp",
                exit_file.display()
            )));
        }
        File::from_raw_fd(fd)
    };
    (&f).write_all(data)
        .with_ctx(|| format!("write {}.tmp", exit_file.display()))?;
    drop(f);
    // SAFETY: renameat within a directory fd we own, NUL-terminated names.
    if unsafe { libc::renameat(dir.as_raw_fd(), tmp.as_ptr(), dir.as_raw_fd(), fin.as_ptr()) } != 0
    {
        return Err(Error::last_os(format!(
            "rename into {}",
            exit_file.display()
        )));
    }
    Ok(())
}

/// Watchers learn of the exit (the record included), then every client is closed.
pub(crate) fn tell_clients(clients: &[Client], rec: &ExitRecord) -> Result<()> {
    let line = rec
        .watch_line()
        .map_err(|e| Error::Protocol(format!("encode the exit record: {e}")))?;
    for c in clients {
        if c.hello.watch && !c.dead {
            let _ = (&c.sock).write_all(&line);
        }
        let _ = c.sock.shutdown(std::net::Shutdown::Both);
    }
    Ok(())
}

/// Tell everyone of the exit, in the order berthd relies on: an exec's record file before its
/// clients are closed (exec inspect reads it when the output ends); a container's watchers
/// first, then its file (for a berthd that is away).
pub(crate) fn report(
    cfg: &MonitorConfig,
    exit_dir: &File,
    clients: &[Client],
    rec: &ExitRecord,
) -> Result<()> {
    let data = serde_json::to_vec(rec)
        .map_err(|e| Error::Protocol(format!("encode the exit record: {e}")))?;
    let _ = std::fs::remove_file(&cfg.attach_socket);
    if cfg.mode == Mode::Exec {
        write_exit_record(exit_dir, &cfg.exit_file, &data)?;
    }
    tell_clients(clients, rec)?;
    berth_runtime::mark("monitor: watchers told");
    if cfg.mode == Mode::Container {
        write_exit_record(exit_dir, &cfg.exit_file, &data)?;
        berth_runtime::mark("monitor: exit record written");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::AttachHello;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    #[test]
    fn exit_codes_of_wait_statuses() {
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(libc::SIGKILL), 137);
        assert_eq!(exit_code(libc::SIGTERM | 0x80), 143); // core dumped
        assert_eq!(exit_code(0x137f), 255); // stopped
    }

    #[test]
    fn the_record_is_written_by_name_in_the_directory_opened_at_start() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path().join("c");
        std::fs::create_dir(&c).unwrap();
        let dir = File::open(&c).unwrap();
        // An AutoRemove renamed the directory meanwhile: the record follows it.
        let moved = d.path().join("removed-c");
        std::fs::rename(&c, &moved).unwrap();
        let rec = record(2, 77, true);
        let data = serde_json::to_vec(&rec).unwrap();
        write_exit_record(&dir, &c.join("exit.json"), &data).unwrap();
        let back: ExitRecord =
            serde_json::from_slice(&std::fs::read(moved.join("exit.json")).unwrap()).unwrap();
        assert_eq!(back, rec);
        assert!(back.finished_at.ends_with('Z'));
        assert!(!moved.join(".exit.json.tmp").exists());
        assert!(write_exit_record(&dir, Path::new("/"), &data).is_err());
    }

    #[test]
    fn watchers_get_the_record_and_every_client_is_closed() {
        let (w, pw) = UnixStream::pair().unwrap();
        let (a, pa) = UnixStream::pair().unwrap();
        let watch = AttachHello {
            watch: true,
            ..Default::default()
        };
        let attach = AttachHello {
            stdout: true,
            ..Default::default()
        };
        let clients = [Client::new(w, watch), Client::new(a, attach)];
        let rec = record(1, 5, false);
        tell_clients(&clients, &rec).unwrap();
        let mut got = Vec::new();
        (&pw).read_to_end(&mut got).unwrap();
        assert_eq!(ExitRecord::from_watch_data(&got), Some(rec));
        let mut got = Vec::new();
        (&pa).read_to_end(&mut got).unwrap();
        assert!(got.is_empty());
    }
}
