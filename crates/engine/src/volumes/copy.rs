//! A new volume is filled with what the image has at its mount path (as dockerd): files,
//! directories and symlinks with their owners, modes, times and extended attributes.
use super::io_err;
use crate::Result;
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Copies the content of `dst` (a path inside the container) in the rootfs `root` into the
/// empty directory `data`. The path is resolved inside the root (symlinks cannot leave it);
/// nothing there (or not a directory) leaves the volume empty.
pub(crate) fn prefill(root: &Path, dst: &str, data: &Path) -> Result<()> {
    let rfd = crate::util::open_root(root)?;
    use std::os::fd::AsRawFd;
    let fd = match crate::util::open_in_root(
        rfd.as_raw_fd(),
        Path::new(dst),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    ) {
        Ok(fd) => fd,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => return Ok(()),
        Err(e) => return Err(io_err("open", &root.join(dst.trim_start_matches('/')), e)),
    };
    let src = std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    let md = std::fs::metadata(&src).map_err(|e| io_err("stat", &src, e))?;
    copy_dir(&src, data)?;
    attrs(&src, data, &md)
}

fn copy_dir(src: &Path, dst: &Path) -> Result<()> {
    let rd = std::fs::read_dir(src).map_err(|e| io_err("read", src, e))?;
    for en in rd {
        let en = en.map_err(|e| io_err("read", src, e))?;
        let (from, to) = (en.path(), dst.join(en.file_name()));
        let md = std::fs::symlink_metadata(&from).map_err(|e| io_err("stat", &from, e))?;
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&to).map_err(|e| io_err("create", &to, e))?;
            copy_dir(&from, &to)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&from).map_err(|e| io_err("readlink", &from, e))?;
            std::os::unix::fs::symlink(&target, &to).map_err(|e| io_err("symlink", &to, e))?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to).map_err(|e| io_err("copy", &from, e))?;
        } else {
            // Devices, fifos, sockets: as dockerd, made as they are.
            mknod(&to, &md)?;
        }
        attrs(&from, &to, &md)?;
    }
    Ok(())
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|e| io_err("encode", p, e.into()))
}

fn mknod(to: &Path, md: &std::fs::Metadata) -> Result<()> {
    let c = cstr(to)?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    let r = unsafe { libc::mknod(c.as_ptr(), md.mode(), md.rdev()) };
    if r != 0 {
        return Err(io_err("mknod", to, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Owner, mode (not of a symlink), extended attributes and times of `from` onto `to`.
fn attrs(from: &Path, to: &Path, md: &std::fs::Metadata) -> Result<()> {
    std::os::unix::fs::lchown(to, Some(md.uid()), Some(md.gid()))
        .map_err(|e| io_err("chown", to, e))?;
    let link = md.file_type().is_symlink();
    if !link {
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(md.mode() & 0o7777))
            .map_err(|e| io_err("chmod", to, e))?;
    }
    xattrs(from, to);
    let c = cstr(to)?;
    let ts = [
        libc::timespec {
            tv_sec: md.atime(),
            tv_nsec: md.atime_nsec(),
        },
        libc::timespec {
            tv_sec: md.mtime(),
            tv_nsec: md.mtime_nsec(),
        },
    ];
    // SAFETY: `c` is NUL-terminated, `ts` two valid timespecs; both outlive the call.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r != 0 {
        return Err(io_err("set times of", to, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Extended attributes, as possible: overlayfs' own (`trusted.overlay.*`) are not the file's,
/// and a file system that refuses one is no reason to fail the container.
fn xattrs(from: &Path, to: &Path) {
    let (Ok(f), Ok(t)) = (cstr(from), cstr(to)) else {
        return;
    };
    let mut names = vec![0u8; 4096];
    // SAFETY: `f` is NUL-terminated; the buffer pointer/length pair is valid.
    let n = unsafe { libc::llistxattr(f.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return;
    }
    names.truncate(n as usize);
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        let Ok(cn) = CString::new(name) else { continue };
        let mut val = vec![0u8; 65536];
        // SAFETY: pointers are NUL-terminated strings and a valid buffer of `val.len()`.
        let len =
            unsafe { libc::lgetxattr(f.as_ptr(), cn.as_ptr(), val.as_mut_ptr().cast(), val.len()) };
        if len < 0 {
            continue;
        }
        // SAFETY: as above; `len` bytes of `val` are initialised.
        let r = unsafe {
            libc::lsetxattr(
                t.as_ptr(),
                cn.as_ptr(),
                val.as_ptr().cast(),
                len as usize,
                0,
            )
        };
        if r != 0 {
            tracing::debug!(
                "xattr {} of {}: {}",
                OsStr::from_bytes(name).to_string_lossy(),
                to.display(),
                std::io::Error::last_os_error()
            );
        }
    }
}
