//! Small system-call wrappers of the monitor.
use crate::error::{Error, IoContext, Result};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::last_os("pipe2"));
    }
    // SAFETY: both fds are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub(crate) fn dup2(from: RawFd, to: RawFd) -> Result<()> {
    // SAFETY: dup2 on valid fds; `to` is one of our stdio slots.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(Error::last_os(format!("dup2 {from} -> {to}")));
    }
    Ok(())
}

/// Block SIGCHLD and return a (non-blocking) signalfd that reports it.
pub(crate) fn sigchld_fd() -> Result<OwnedFd> {
    // SAFETY: sigset manipulation on a local set; sigprocmask/signalfd take valid pointers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(Error::last_os("signalfd"));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Read everything pending on the (non-blocking) signalfd.
pub(crate) fn drain_signalfd(sfd: &OwnedFd) {
    let mut si = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
    // SAFETY: reading a signalfd into a buffer of the right size.
    while unsafe { libc::read(sfd.as_raw_fd(), si.as_mut_ptr().cast(), si.len()) } > 0 {}
}

/// One exited child without blocking: Some((pid, wait status)), None when there is none.
pub(crate) fn reap_one() -> Option<(i32, i32)> {
    let mut status = 0;
    // SAFETY: waitpid with a valid status pointer.
    let p = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    (p > 0).then_some((p, status))
}

/// The terminal size of the pty master `fd` (best effort).
pub(crate) fn set_winsize(fd: RawFd, rows: u16, cols: u16) {
    let _ = berth_runtime::tty::set_winsize(fd, rows, cols);
}

/// An exclusive flock on `path` (created if needed), held while the returned file is open.
pub(crate) fn hold_lock(path: &Path) -> Result<File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_ctx(|| format!("open {}", path.display()))?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(Error::last_os(format!("lock {}", path.display())));
    }
    Ok(f)
}

/// Append a line to the monitor's own log file, if it has one (best effort).
pub(crate) fn log_line(path: Option<&Path>, line: &str) {
    use std::io::Write;
    if let Some(p) = path {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_excludes_others_until_dropped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.lock");
        let held = hold_lock(&p).unwrap();
        let other = File::open(&p).unwrap();
        // SAFETY: flock on an fd we own.
        let try_lock = || unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_ne!(try_lock(), 0);
        drop(held);
        assert_eq!(try_lock(), 0);
    }

    #[test]
    fn pipes_carry_bytes() {
        let (r, w) = pipe().unwrap();
        let mut wf = File::from(w);
        std::io::Write::write_all(&mut wf, b"x").unwrap();
        drop(wf);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut File::from(r), &mut s).unwrap();
        assert_eq!(s, "x");
    }
}
