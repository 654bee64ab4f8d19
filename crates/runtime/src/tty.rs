//! Terminals: the container side creates a pty from its own /dev/pts instance, makes the slave
//! its controlling terminal and /dev/console, and sends the master over the console socket
//! (SCM_RIGHTS), as runc does. The runtime side proxies a local terminal for `run`.

use crate::error::{Context, Error, Result};
use crate::rootfs;
use crate::sys;
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Process;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// In the container, after pivot_root: build the pty and hand the master to the socket.
pub fn setup_console(sock: RawFd, process: &Process, own_mnt: bool) -> Result<()> {
    let master = nix::fcntl::open(
        "/dev/ptmx",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx("open /dev/ptmx in the container")?;
    let m = master.as_raw_fd();
    let zero: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from a valid pointer.
    if unsafe { libc::ioctl(m, libc::TIOCSPTLCK, &zero) } != 0 {
        return Err(Error::sys(
            "unlockpt (TIOCSPTLCK)",
            nix::errno::Errno::last(),
        ));
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int to a valid pointer.
    if unsafe { libc::ioctl(m, libc::TIOCGPTN, &mut n) } != 0 {
        return Err(Error::sys("ptsname (TIOCGPTN)", nix::errno::Errno::last()));
    }
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd for the slave.
    let s = unsafe { libc::ioctl(m, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY) };
    if s < 0 {
        return Err(Error::sys(
            "open pty slave (TIOCGPTPEER)",
            nix::errno::Errno::last(),
        ));
    }
    // SAFETY: s is a new fd returned by the kernel.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    if let Some(sz) = process.console_size() {
        set_winsize(m, sz.height() as u16, sz.width() as u16)?;
    }
    if own_mnt {
        let pts = format!("/dev/pts/{n}");
        let root = sys::openat2(
            libc::AT_FDCWD,
            Path::new("/"),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )?;
        let target = rootfs::ensure_target(root.as_raw_fd(), Path::new("/dev/console"), false)?;
        mount(
            Some(pts.as_str()),
            format!("/proc/self/fd/{}", target.as_raw_fd()).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_ctx(|| format!("bind mount {pts} on /dev/console"))?;
    }
    sys::send_fd(sock, m, b"/dev/ptmx")?;
    drop(master);
    nix::unistd::setsid().ctx("setsid")?;
    // SAFETY: TIOCSCTTY with arg 0 on our own slave fd.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(Error::sys("TIOCSCTTY", nix::errno::Errno::last()));
    }
    for fd in 0..3 {
        // SAFETY: dup2 onto stdio of this process, which is about to exec.
        if unsafe { libc::dup2(slave.as_raw_fd(), fd) } < 0 {
            return Err(Error::sys(
                format!("dup2 pty slave to {fd}"),
                nix::errno::Errno::last(),
            ));
        }
    }
    Ok(())
}

pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(Error::sys("TIOCSWINSZ", nix::errno::Errno::last()));
    }
    Ok(())
}

pub fn get_winsize(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize to a valid pointer.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } != 0 {
        return None;
    }
    Some((ws.ws_row, ws.ws_col))
}

/// Puts a local terminal in raw mode and restores it when dropped.
pub struct RawMode {
    fd: RawFd,
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    pub fn enter(fd: RawFd) -> Option<RawMode> {
        // SAFETY: borrowing a valid fd for the duration of the calls.
        let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let saved = nix::sys::termios::tcgetattr(b).ok()?;
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        nix::sys::termios::tcsetattr(b, nix::sys::termios::SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: fd stays open for the life of the process (it is our stdin).
        let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.fd) };
        let _ = nix::sys::termios::tcsetattr(b, nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}
