//! overlayfs mounts: the new mount API (`fsopen`/`fsconfig lowerdir+`) so lowerdir lists are not
//! limited by the one-page option string, with a legacy `mount(2)` fallback.
use crate::error::{Error, Result};
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

fn cs(s: &str, what: &Path) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(what.display().to_string(), "path contains NUL"))
}

fn fsopen(fstype: &str) -> nix::Result<OwnedFd> {
    let t = CString::new(fstype).map_err(|_| Errno::EINVAL)?;
    // SAFETY: t is NUL-terminated and outlives the call; the return value is checked.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, t.as_ptr(), FSOPEN_CLOEXEC) };
    Errno::result(fd)?;
    // SAFETY: fsopen returned a new fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn fsconfig_string(fd: &OwnedFd, key: &CString, value: &CString) -> nix::Result<()> {
    // SAFETY: fd is a live fs context fd; key/value are NUL-terminated and outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

fn fsconfig_create(fd: &OwnedFd) -> nix::Result<()> {
    // SAFETY: fd is a live fs context fd; CMD_CREATE takes no key/value.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

fn fsmount(fd: &OwnedFd, attrs: libc::c_uint) -> nix::Result<OwnedFd> {
    // SAFETY: fd is a created fs context; the result is checked and then owned.
    let m = unsafe { libc::syscall(libc::SYS_fsmount, fd.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) };
    Errno::result(m)?;
    // SAFETY: fsmount returned a new mount fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(m as i32) })
}

fn move_mount(mfd: &OwnedFd, target: &CString) -> nix::Result<()> {
    let empty = c"";
    // SAFETY: mfd is a detached mount fd; both strings are NUL-terminated.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mfd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}

/// An overlay mount description. `lowers` are top-most first (as in `lowerdir=`).
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayMount {
    pub lowers: Vec<PathBuf>,
    pub upper: Option<PathBuf>,
    pub work: Option<PathBuf>,
}

impl OverlayMount {
    /// Legacy option string (may exceed a page for long chains).
    pub fn options(&self) -> String {
        let mut s = format!(
            "lowerdir={}",
            self.lowers
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        );
        if let (Some(u), Some(w)) = (&self.upper, &self.work) {
            s.push_str(&format!(
                ",upperdir={},workdir={}",
                u.display(),
                w.display()
            ));
        }
        s
    }

    pub fn mount(&self, target: &Path) -> Result<()> {
        match self.mount_new_api(target) {
            Ok(()) => Ok(()),
            Err(Errno::ENOSYS) | Err(Errno::EINVAL) if self.options().len() < 4000 => {
                self.mount_legacy(target)
            }
            Err(e) => Err(Error::sys(
                "mount overlay (fsopen/fsconfig lowerdir+)",
                target,
                e,
            )),
        }
    }

    fn mount_new_api(&self, target: &Path) -> nix::Result<()> {
        let fd = fsopen("overlay")?;
        let key = CString::new("lowerdir+").map_err(|_| Errno::EINVAL)?;
        for l in &self.lowers {
            let v = CString::new(l.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
            fsconfig_string(&fd, &key, &v)?;
        }
        if let (Some(u), Some(w)) = (&self.upper, &self.work) {
            fsconfig_string(
                &fd,
                &CString::new("upperdir").map_err(|_| Errno::EINVAL)?,
                &CString::new(u.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?,
            )?;
            fsconfig_string(
                &fd,
                &CString::new("workdir").map_err(|_| Errno::EINVAL)?,
                &CString::new(w.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?,
            )?;
        }
        fsconfig_create(&fd)?;
        let m = fsmount(&fd, 0)?;
        let t = CString::new(target.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
        move_mount(&m, &t)
    }

    fn mount_legacy(&self, target: &Path) -> Result<()> {
        let opts = self.options();
        let _ = cs(&opts, target)?;
        nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        )
        .map_err(|e| Error::sys("mount overlay", target, e))
    }
}

/// Unmount `target` (lazily if busy is not acceptable: plain unmount, error if busy).
pub fn unmount(target: &Path) -> Result<()> {
    match nix::mount::umount2(target, nix::mount::MntFlags::empty()) {
        Ok(()) | Err(Errno::EINVAL) => Ok(()), // EINVAL: not a mount point (already unmounted)
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::sys("umount", target, e)),
    }
}
