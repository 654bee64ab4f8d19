//! `exec.fifo`: how `start` releases a created container's init, and learns whether the
//! user's program was executed.
//!
//! `create` makes the fifo and opens it O_RDWR (close-on-exec) before the clone; the init keeps
//! that descriptor and blocks reading one byte ([`wait`]). [`release`] writes the byte and
//! returns (berthd: the monitor reports what happens next). [`release_and_wait`] (`start`, as
//! runc's) then also waits until the fifo has no writer left, which happens when the init's
//! descriptor closes: at its execve or at its exit. An init that fails after the release
//! writes its error report into the fifo first ([`report`]), so the wait tells the two apart
//! and `start` returns the init's error.

use crate::error::{Context, Error, Result};
use crate::state;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// The byte `start` writes; what is left of them after the init's exit is not an error report.
const GO: u8 = b'0';

/// Make `<root>/<id>/exec.fifo` and open it O_RDWR (so neither side ever blocks in open).
pub fn make(root: &Path, id: &str) -> Result<OwnedFd> {
    let p = state::fifo_path(root, id);
    nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o622))
        .with_ctx(|| format!("mkfifo {}", p.display()))?;
    nix::fcntl::open(&p, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .with_ctx(|| format!("open {}", p.display()))
}

/// Let the init go on to exec the user's program; do not wait for it. An error when the init
/// is gone (nobody holds the fifo).
pub fn release(root: &Path, id: &str) -> Result<()> {
    let p = state::fifo_path(root, id);
    let w = nix::fcntl::open(
        &p,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ENXIO => exited_before_start(id),
        e => Error::sys(format!("open {}", p.display()), e),
    })?;
    nix::unistd::write(&w, &[GO]).with_ctx(|| format!("write {}", p.display()))?;
    drop(w);
    let _ = std::fs::remove_file(&p);
    Ok(())
}

/// [`release`], then wait until the init executed the user's program (Ok) or failed (its
/// error). `init_alive` tells a leftover release byte of a concurrent `start` from an init
/// that died before it read ours.
pub fn release_and_wait(root: &Path, id: &str, init_alive: impl Fn() -> bool) -> Result<()> {
    let p = state::fifo_path(root, id);
    // Our reader first: it keeps the pipe (and what the init writes into it) alive after the
    // init is gone, and having it open before our writer is what lets poll report the hang-up.
    let r = nix::fcntl::open(
        &p,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ENOENT => Error::State {
            id: id.into(),
            status: "running".into(),
            what: "the container was already started".into(),
        },
        e => Error::sys(format!("open {}", p.display()), e),
    })?;
    let w = nix::fcntl::open(
        &p,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("open {} for writing", p.display()))?;
    nix::unistd::write(&w, &[GO]).with_ctx(|| format!("write {}", p.display()))?;
    drop(w);
    let _ = std::fs::remove_file(&p);
    wait_no_writer(&r).with_ctx(|| format!("wait for the init of {id} to exec"))?;
    let data = read_all(&r).with_ctx(|| format!("read {}", p.display()))?;
    outcome(id, &data, init_alive)
}

/// What the fifo held once the init let go of it.
fn outcome(id: &str, data: &[u8], init_alive: impl Fn() -> bool) -> Result<()> {
    let unread = data.iter().take_while(|b| **b == GO).count();
    match &data[unread..] {
        [] if unread > 0 && !init_alive() => Err(exited_before_start(id)),
        [] => Ok(()),
        report => Err(Error::from_child_report(report)),
    }
}

fn exited_before_start(id: &str) -> Error {
    Error::State {
        id: id.into(),
        status: "stopped".into(),
        what: "the container's init exited before start".into(),
    }
}

/// Block until no process holds the fifo open for writing (poll reports POLLHUP; with no
/// events asked for, data in the pipe does not wake us).
fn wait_no_writer(r: &OwnedFd) -> nix::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let mut fds = [PollFd::new(r.as_fd(), PollFlags::empty())];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {
                let rev = fds[0].revents().unwrap_or(PollFlags::empty());
                if rev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
                    return Ok(());
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

fn read_all(r: &OwnedFd) -> nix::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(r, &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EAGAIN) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// The init's side: block until `start` writes its byte.
pub fn wait(fifo: &OwnedFd) -> Result<()> {
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(fifo, &mut b) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(Error::Other("exec fifo closed without a start".into())),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("read exec fifo", e)),
        }
    }
}

/// The init's side, failing after the release: leave its error for a waiting `start`. Best
/// effort (the report is far smaller than a pipe's buffer, so the write does not block).
pub fn report(fifo: &OwnedFd, err: &Error) {
    let _ = nix::unistd::write(fifo, &err.child_report());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_of_what_the_fifo_held() {
        assert!(outcome("c", b"", || true).is_ok());
        assert!(outcome("c", b"", || false).is_ok(), "exec'd, then exited");
        // A concurrent start's byte, the init running its program.
        assert!(outcome("c", b"0", || true).is_ok());
        let e = outcome("c", b"0", || false).unwrap_err();
        assert!(e.to_string().contains("exited before start"), "{e}");
        let report = Error::Config("field process.capabilities: nope".into()).child_report();
        let e = outcome("c", &report, || false).unwrap_err();
        assert_eq!(e.child_failure(), crate::error::ChildFailure::Config);
        assert!(e.to_string().contains("nope"), "{e}");
    }
}
