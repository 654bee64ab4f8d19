//! What the monitor makes before the process exists: the exit record's directory, the attach
//! listener, the SIGCHLD signalfd, and the process's stdio (pipes on our fds 0-2, or a console
//! socket that receives the pty master).
use crate::error::{Error, IoContext, Result};
use crate::proto::{sock_path, MonitorConfig};
use crate::sys::{dup2, pipe, sigchld_fd};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

/// The console socket (tty): the runtime connects to it and sends the pty master.
pub(crate) struct Console {
    pub listener: UnixListener,
    /// The path as bound (maybe through `/proc/self/fd/<dir>`: `_dir` keeps that fd open).
    pub path: PathBuf,
    _dir: Option<File>,
}

pub(crate) struct Setup {
    /// The directory of the exit record (see `exit::write_exit_record`).
    pub exit_dir: File,
    pub listener: UnixListener,
    _attach_dir: Option<File>,
    pub sfd: OwnedFd,
    pub devnull: File,
    /// Stdout pipe's read end, or the pty master once received.
    pub out_fd: Option<OwnedFd>,
    pub err_fd: Option<OwnedFd>,
    /// Write end of the stdin pipe (OpenStdin without a tty).
    pub stdin_w: Option<OwnedFd>,
    /// The process's ends of the pipes, on our fds 0-2 until it has them.
    pub child_ends: Vec<OwnedFd>,
    pub console: Option<Console>,
}

impl Setup {
    pub fn new(cfg: &MonitorConfig) -> Result<Setup> {
        let exit_dir = cfg
            .exit_file
            .parent()
            .map(File::open)
            .transpose()
            .with_ctx(|| format!("open the directory of {}", cfg.exit_file.display()))?
            .ok_or_else(|| {
                Error::Protocol(format!(
                    "exit file {} has no directory",
                    cfg.exit_file.display()
                ))
            })?;
        let _ = std::fs::remove_file(&cfg.attach_socket);
        let (attach_dir, attach_short) = sock_path(&cfg.attach_socket)
            .with_ctx(|| format!("open the directory of {}", cfg.attach_socket.display()))?;
        let listener = UnixListener::bind(&attach_short)
            .with_ctx(|| format!("bind {}", cfg.attach_socket.display()))?;
        let sfd = sigchld_fd()?;
        let devnull = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .ctx("open /dev/null")?;
        let mut s = Setup {
            exit_dir,
            listener,
            _attach_dir: attach_dir,
            sfd,
            devnull,
            out_fd: None,
            err_fd: None,
            stdin_w: None,
            child_ends: Vec::new(),
            console: None,
        };
        if cfg.tty {
            s.console = Some(console(cfg)?);
        } else {
            s.pipes(cfg.open_stdin)?;
        }
        Ok(s)
    }

    /// Pipes for stdout and stderr (and stdin with `open_stdin`, else /dev/null), their
    /// process ends on our fds 0-2 for the runtime to hand down.
    fn pipes(&mut self, open_stdin: bool) -> Result<()> {
        let (or, ow) = pipe()?;
        let (er, ew) = pipe()?;
        if open_stdin {
            let (ir, iw) = pipe()?;
            dup2(ir.as_raw_fd(), 0)?;
            self.stdin_w = Some(iw);
            self.child_ends.push(ir);
        } else {
            dup2(self.devnull.as_raw_fd(), 0)?;
        }
        dup2(ow.as_raw_fd(), 1)?;
        dup2(ew.as_raw_fd(), 2)?;
        self.child_ends.push(ow);
        self.child_ends.push(ew);
        self.out_fd = Some(or);
        self.err_fd = Some(er);
        Ok(())
    }

    /// The runtime has made the process: our fds 0-2 back to /dev/null, our pipe ends closed.
    pub fn restore_stdio(&mut self) {
        for fd in 0..3 {
            let _ = dup2(self.devnull.as_raw_fd(), fd);
        }
        self.child_ends.clear();
    }

    /// The console socket's path for the runtime (tty only).
    pub fn console_path(&self) -> Option<PathBuf> {
        self.console.as_ref().map(|c| c.path.clone())
    }

    /// Receive the pty master the runtime sends to the console socket (tty only).
    pub fn receive_pty(&mut self) -> Result<()> {
        if let Some(c) = &self.console {
            let (s, _) = c.listener.accept().ctx("accept console socket")?;
            let m = berth_runtime::sys::recv_fd(s.as_raw_fd())
                .map_err(|e| e.context("receive pty master".into()))?;
            self.out_fd = Some(m);
        }
        Ok(())
    }

    /// The console socket has served its purpose.
    pub fn close_console(&mut self) {
        if let Some(c) = self.console.take() {
            drop(c.listener);
            let _ = std::fs::remove_file(&c.path);
        }
    }
}

fn console(cfg: &MonitorConfig) -> Result<Console> {
    let full = cfg.attach_socket.with_extension("console");
    let (dir, path) =
        sock_path(&full).with_ctx(|| format!("open the directory of {}", full.display()))?;
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).with_ctx(|| format!("bind {}", full.display()))?;
    Ok(Console {
        listener,
        path,
        _dir: dir,
    })
}
