//! Small safe wrappers over the system calls the runtime needs that `nix` does not cover
//! (raw clone, clone3, openat2, close_range, capset, mount_setattr, SCM_RIGHTS helpers).

use crate::error::{Context, Error, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::Other(format!("path {p:?} contains a NUL byte")))
}

fn last_errno() -> nix::errno::Errno {
    nix::errno::Errno::last()
}

/// Outcome of a fork-like clone.
pub enum Forked {
    Child,
    Parent(i32),
}

/// fork(2)-like clone with extra namespace flags (CLONE_NEW*, CLONE_PARENT).
///
/// The caller must be single-threaded (the runtime never starts threads), so the child may
/// continue running ordinary Rust code.
pub fn clone_fork(flags: libc::c_int) -> Result<Forked> {
    // SAFETY: the raw clone syscall with a NULL stack behaves like fork(2): the child gets a
    // copy-on-write copy of the parent's single thread and stack. The runtime is single-threaded,
    // so no lock can be held by another thread at this point.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match r {
        -1 => Err(Error::sys(format!("clone(flags={flags:#x})"), last_errno())),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x200000000;

/// clone3(2) placing the child directly into the cgroup v2 directory `cgroup_fd`
/// (CLONE_INTO_CGROUP), so it never runs outside its cgroup. Returns Ok(None) when the kernel
/// lacks clone3 or CLONE_INTO_CGROUP (ENOSYS/E2BIG/EINVAL), so the caller can fall back.
pub fn clone3_into_cgroup(flags: libc::c_int, cgroup_fd: RawFd) -> Result<Option<Forked>> {
    let args = CloneArgs {
        flags: (flags as u32 as u64) | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup_fd as u64,
        ..Default::default()
    };
    // SAFETY: clone3 with stack=0 behaves like fork (see clone_fork); `args` is a valid,
    // correctly sized clone_args structure that lives across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        -1 => {
            let e = last_errno();
            if matches!(
                e,
                nix::errno::Errno::ENOSYS | nix::errno::Errno::E2BIG | nix::errno::Errno::EINVAL
            ) {
                Ok(None)
            } else {
                Err(Error::sys("clone3(CLONE_INTO_CGROUP)", e))
            }
        }
        0 => Ok(Some(Forked::Child)),
        pid => Ok(Some(Forked::Parent(pid as i32))),
    }
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// openat2(2): open `path` relative to `dirfd` with RESOLVE_* restrictions.
pub fn openat2(dirfd: RawFd, path: &Path, flags: libc::c_int, resolve: u64) -> Result<OwnedFd> {
    let c = cstr(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    loop {
        // SAFETY: `c` is a valid NUL-terminated string and `how` a valid open_how structure;
        // both outlive the call. The returned fd is fresh and owned by us.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if r >= 0 {
            // SAFETY: r is a new file descriptor returned by the kernel.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = last_errno();
        if e == nix::errno::Errno::EAGAIN || e == nix::errno::Errno::EINTR {
            continue;
        }
        return Err(Error::sys(format!("openat2 {path:?}"), e));
    }
}

/// Mark every fd >= `first` close-on-exec (close_range with CLOSE_RANGE_CLOEXEC), falling back to
/// walking /proc/self/fd on old kernels.
pub fn cloexec_from(first: RawFd) -> Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes fd flags of this process; no memory is touched.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return Ok(());
    }
    for fd in list_fds()? {
        if fd >= first {
            // SAFETY: setting FD_CLOEXEC on a descriptor we do not otherwise use is harmless;
            // an fd that vanished meanwhile just returns EBADF.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    Ok(())
}

/// Close every fd >= `first` except those in `keep` (close_range over the gaps: works without
/// /proc).
pub fn close_fds_except(first: RawFd, keep: &[RawFd]) -> Result<()> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|k| *k >= first).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut lo = first as libc::c_uint;
    let mut ranges = Vec::new();
    for k in keep {
        let k = k as libc::c_uint;
        if k > lo {
            ranges.push((lo, k - 1));
        }
        lo = k + 1;
    }
    ranges.push((lo, libc::c_uint::MAX));
    for (a, b) in ranges {
        // SAFETY: closes descriptors no Rust object in this (about to exec) process still uses;
        // the caller lists every fd it keeps.
        let r = unsafe { libc::syscall(libc::SYS_close_range, a, b, 0 as libc::c_uint) };
        if r != 0 {
            return Err(Error::sys(format!("close_range({a}, {b})"), last_errno()));
        }
    }
    Ok(())
}

fn list_fds() -> Result<Vec<RawFd>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir("/proc/self/fd").ctx("read /proc/self/fd")?;
    for e in rd.flatten() {
        if let Some(n) = e.file_name().to_str().and_then(|s| s.parse::<RawFd>().ok()) {
            out.push(n);
        }
    }
    Ok(out)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// capset(2) for the calling thread with 64-bit masks.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<()> {
    let hdr = CapHeader {
        version: 0x20080522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: hdr and data are valid for the duration of the call and sized for version 3.
    let r = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) };
    if r != 0 {
        return Err(Error::sys("capset", last_errno()));
    }
    Ok(())
}

/// The calling thread's permitted capability set (capget(2)).
pub fn cap_permitted() -> Result<u64> {
    let hdr = CapHeader {
        version: 0x20080522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: hdr and data are valid for the duration of the call and sized for version 3.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &hdr as *const CapHeader,
            data.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(Error::sys("capget", last_errno()));
    }
    Ok(u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32))
}

/// Is capability `n` in the calling thread's bounding set (PR_CAPBSET_READ)? None when the
/// kernel does not know the capability.
pub fn cap_in_bounding(n: u32) -> Option<bool> {
    // SAFETY: PR_CAPBSET_READ takes integers and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(n), 0, 0, 0) };
    (r >= 0).then_some(r == 1)
}

pub fn prctl(op: libc::c_int, a: libc::c_ulong, b: libc::c_ulong) -> Result<()> {
    // SAFETY: prctl with integer arguments does not touch our memory for the options used here
    // (PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_SET_KEEPCAPS, PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE,
    // PR_SET_PDEATHSIG).
    let r = unsafe { libc::prctl(op, a, b, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    if r < 0 {
        return Err(Error::sys(format!("prctl({op}, {a})"), last_errno()));
    }
    Ok(())
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// mount_setattr(2) with AT_RECURSIVE: make a whole mount tree read-only ("rro").
pub fn mount_setattr_recursive_ro(path: &Path) -> Result<()> {
    mount_setattr_recursive(path, MOUNT_ATTR_RDONLY)
}

/// mount_setattr(2) with AT_RECURSIVE: set `attrs` (MOUNT_ATTR_*) on a whole mount tree in one
/// call instead of one remount per mount.
pub fn mount_setattr_recursive(path: &Path, attrs: u64) -> Result<()> {
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let c = cstr(path)?;
    let attr = MountAttr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: valid path string and mount_attr structure that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(Error::sys(
            format!("mount_setattr({attrs:#x}, AT_RECURSIVE) {path:?}"),
            last_errno(),
        ));
    }
    Ok(())
}

/// Send one fd (and a small payload) over a unix socket with SCM_RIGHTS.
pub fn send_fd(sock: RawFd, fd: RawFd, payload: &[u8]) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let iov = [std::io::IoSlice::new(if payload.is_empty() {
        b"\0"
    } else {
        payload
    })];
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::empty(), None).ctx("sendmsg(SCM_RIGHTS)")?;
    Ok(())
}

/// Receive one fd sent with SCM_RIGHTS.
pub fn recv_fd(sock: RawFd) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .ctx("recvmsg(SCM_RIGHTS)")?;
    for c in msg.cmsgs().ctx("recvmsg control data")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this fd in our table for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::Other(
        "no file descriptor received over the socket".into(),
    ))
}

/// Kernel boot-relative start time of a process (field 22 of /proc/PID/stat), used to tell a
/// live container process from an unrelated process that reused its pid.
pub fn pid_start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    // after ") " fields start at 3 (state); starttime is field 22 -> index 19 here.
    after.split(' ').nth(19)?.parse().ok()
}

/// Process state letter from /proc/PID/stat ('Z' zombie, 'R', 'S', ...).
pub fn pid_state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..].chars().next()
}

pub fn raw<T: AsRawFd>(f: &T) -> RawFd {
    f.as_raw_fd()
}
