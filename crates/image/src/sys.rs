//! Small safe wrappers over the syscalls nix does not cover (xattrs, new mount API).
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd};

fn cstr(s: &[u8]) -> nix::Result<CString> {
    CString::new(s).map_err(|_| nix::errno::Errno::EINVAL)
}

/// fsetxattr(2) on an open (non-O_PATH) fd.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> nix::Result<()> {
    let n = cstr(name)?;
    // SAFETY: fd is a live borrowed fd, n is NUL-terminated, value ptr/len describe a valid slice.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    nix::errno::Errno::result(r).map(drop)
}

/// lsetxattr(2) on a path (does not follow a final symlink).
pub fn lsetxattr(path: &[u8], name: &[u8], value: &[u8]) -> nix::Result<()> {
    let p = cstr(path)?;
    let n = cstr(name)?;
    // SAFETY: both strings are NUL-terminated and outlive the call; value is a valid slice.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    nix::errno::Errno::result(r).map(drop)
}

/// llistxattr(2): names of the extended attributes of a path (not following symlinks).
pub fn llistxattr(path: &[u8]) -> nix::Result<Vec<Vec<u8>>> {
    let p = cstr(path)?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: p is NUL-terminated; buf is writable for buf.len() bytes.
        let r = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r < 0 {
            let e = nix::errno::Errno::last();
            if e == nix::errno::Errno::ERANGE {
                buf.resize(buf.len() * 4, 0);
                continue;
            }
            if e == nix::errno::Errno::ENOTSUP {
                return Ok(Vec::new());
            }
            return Err(e);
        }
        let r = r as usize;
        return Ok(buf[..r]
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| s.to_vec())
            .collect());
    }
}

/// lgetxattr(2).
pub fn lgetxattr(path: &[u8], name: &[u8]) -> nix::Result<Option<Vec<u8>>> {
    let p = cstr(path)?;
    let n = cstr(name)?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: p and n are NUL-terminated; buf is writable for buf.len() bytes.
        let r =
            unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r < 0 {
            let e = nix::errno::Errno::last();
            match e {
                nix::errno::Errno::ERANGE => {
                    buf.resize(buf.len() * 8, 0);
                    continue;
                }
                nix::errno::Errno::ENODATA | nix::errno::Errno::ENOTSUP => return Ok(None),
                _ => return Err(e),
            }
        }
        buf.truncate(r as usize);
        return Ok(Some(buf));
    }
}

/// `p` is the root of a mount. statx's STATX_ATTR_MOUNT_ROOT (Linux 5.8); on older kernels
/// (attribute not supported) the mount table is consulted.
pub fn is_mount_root(p: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a zeroed statx is a valid output buffer; c is a NUL-terminated path.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers for the duration of the call.
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_TYPE,
            &mut st,
        )
    };
    if r != 0 {
        return false;
    }
    let attr = libc::STATX_ATTR_MOUNT_ROOT as u64;
    if st.stx_attributes_mask & attr != 0 {
        return st.stx_attributes & attr != 0;
    }
    let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = p.to_string_lossy();
    mi.lines().any(|l| l.split(' ').nth(4) == Some(&want))
}
