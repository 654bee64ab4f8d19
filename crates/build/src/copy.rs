//! File copies for `COPY`/`ADD`, contained on both sides.
//!
//! A source path is resolved inside its root (the build context, or a `--from` stage's
//! rootfs) with `openat2(RESOLVE_IN_ROOT)`: `..` and symlinks, absolute ones included, cannot
//! leave it (a context symlink to `/etc/passwd` names the context's own `etc/passwd`). A
//! destination directory is resolved (and made) inside the image's rootfs the same way. Below
//! a resolved directory the walk never follows a symlink: it copies it as a symlink. Neither
//! tree is changed by anyone else meanwhile (the context is the daemon's own copy, the
//! containers are not running), so the real paths found stay true.

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};

/// Owner and mode for what a `COPY` writes (`--chown`, `--chmod`); `None` keeps the
/// source's (`--chmod`) or makes it root's (`--chown`, as Docker does for context files).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyMeta {
    pub owner: Option<(u32, u32)>,
    pub mode: Option<u32>,
}

fn in_root(root: &Path, rel: &str, flags: OFlag) -> io::Result<PathBuf> {
    let rootfd = fs::File::open(root)?;
    let how = OpenHow::new()
        .flags(flags | OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let rel = rel.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let fd = openat2(&rootfd, rel, how).map_err(io::Error::from)?;
    let real = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    let root = fs::canonicalize(root)?;
    if !real.starts_with(&root) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{rel} resolves outside {}", root.display()),
        ));
    }
    Ok(real)
}

/// The real path of `rel` inside `root`, symlinks resolved inside it.
pub fn resolve(root: &Path, rel: &str) -> io::Result<PathBuf> {
    in_root(root, rel, OFlag::empty())
}

/// Makes directory `rel` inside `root` with its missing parents (mode 0755, owned by
/// `owner` or root) and returns its real path.
pub fn mkdir_all(root: &Path, rel: &str, owner: Option<(u32, u32)>) -> io::Result<PathBuf> {
    let mut done = String::new();
    let mut real = fs::canonicalize(root)?;
    for comp in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if comp == ".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{rel}: '..' is not allowed"),
            ));
        }
        done.push('/');
        done.push_str(comp);
        match in_root(root, &done, OFlag::O_DIRECTORY) {
            Ok(p) => real = p,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let p = real.join(comp);
                fs::create_dir(&p)?;
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
                let (uid, gid) = owner.unwrap_or((0, 0));
                lchown(&p, Some(uid), Some(gid))?;
                real = p;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(real)
}

/// Copies `src` (a real path: file, directory or symlink) to `dst` (a real path whose parent
/// exists), replacing a non-directory there and merging into a directory.
pub fn copy_entry(src: &Path, dst: &Path, meta: CopyMeta) -> io::Result<u64> {
    let md = fs::symlink_metadata(src)?;
    let ft = md.file_type();
    let existing = fs::symlink_metadata(dst).ok();
    let mut count = 1;
    if ft.is_dir() {
        match existing {
            Some(e) if e.is_dir() => {}
            Some(_) => {
                fs::remove_file(dst)?;
                fs::create_dir(dst)?;
            }
            None => fs::create_dir(dst)?,
        }
        let mut names: Vec<_> = fs::read_dir(src)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for n in names {
            count += copy_entry(&src.join(&n), &dst.join(&n), meta)?;
        }
    } else {
        if let Some(e) = existing {
            if e.is_dir() {
                fs::remove_dir_all(dst)?;
            } else {
                fs::remove_file(dst)?;
            }
        }
        if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(src)?, dst)?;
        } else if ft.is_file() {
            copy_file(src, dst)?;
        } else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{}: not a file, directory or symlink", src.display()),
            ));
        }
    }
    apply_meta(dst, &md, meta)?;
    Ok(count)
}

fn copy_file(src: &Path, dst: &Path) -> io::Result<()> {
    let mut from = fs::File::open(src)?;
    let mut to = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags_nofollow()
        .open(dst)?;
    io::copy(&mut from, &mut to)?;
    Ok(())
}

trait NoFollow {
    fn custom_flags_nofollow(&mut self) -> &mut Self;
}
impl NoFollow for fs::OpenOptions {
    fn custom_flags_nofollow(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOFOLLOW)
    }
}

fn apply_meta(dst: &Path, src: &fs::Metadata, meta: CopyMeta) -> io::Result<()> {
    let (uid, gid) = meta.owner.unwrap_or((0, 0));
    lchown(dst, Some(uid), Some(gid))?;
    if src.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.mode.unwrap_or(src.mode() & 0o7777);
    fs::set_permissions(dst, fs::Permissions::from_mode(mode))?;
    let mtime = filetime(src);
    let times = [mtime, mtime];
    let c = std::ffi::CString::new(dst.as_os_str().as_encoded_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path and `times` two initialised timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn filetime(md: &fs::Metadata) -> libc::timespec {
    libc::timespec {
        tv_sec: md.mtime(),
        tv_nsec: md.mtime_nsec(),
    }
}

/// Writes `content` as a new file `dst` (a heredoc source).
pub fn write_file(dst: &Path, content: &[u8], meta: CopyMeta) -> io::Result<()> {
    if let Ok(e) = fs::symlink_metadata(dst) {
        if e.is_dir() {
            fs::remove_dir_all(dst)?;
        } else {
            fs::remove_file(dst)?;
        }
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags_nofollow()
        .open(dst)?;
    io::Write::write_all(&mut f, content)?;
    let (uid, gid) = meta.owner.unwrap_or((0, 0));
    lchown(dst, Some(uid), Some(gid))?;
    fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode.unwrap_or(0o644)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("ctx");
        fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("passwd")).unwrap();
        std::os::unix::fs::symlink("../../../etc", root.join("up")).unwrap();
        // The context has no etc/passwd: the absolute link does not reach the host's.
        assert_eq!(
            resolve(&root, "passwd").unwrap_err().raw_os_error(),
            Some(libc::ENOENT)
        );
        assert!(resolve(&root, "up/passwd").is_err());
        fs::create_dir(root.join("etc")).unwrap();
        fs::write(root.join("etc/passwd"), "mine").unwrap();
        let real = resolve(&root, "passwd").unwrap();
        assert_eq!(fs::read_to_string(real).unwrap(), "mine");
    }

    #[test]
    fn copies_trees_with_owner_mode_and_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let (src, dst) = (t.path().join("src"), t.path().join("dst"));
        fs::create_dir_all(src.join("d/e")).unwrap();
        fs::write(src.join("d/e/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", src.join("d/l")).unwrap();
        fs::create_dir(&dst).unwrap();
        let made = mkdir_all(&dst, "/a/b", Some((5, 6))).unwrap();
        assert_eq!(fs::metadata(dst.join("a")).unwrap().uid(), 5);
        let meta = CopyMeta {
            owner: Some((7, 8)),
            mode: Some(0o600),
        };
        let n = copy_entry(&src.join("d"), &made.join("d"), meta).unwrap();
        assert_eq!(n, 4);
        let f = fs::metadata(made.join("d/e/f")).unwrap();
        assert_eq!((f.uid(), f.gid(), f.mode() & 0o777), (7, 8, 0o600));
        assert_eq!(
            fs::read_link(made.join("d/l")).unwrap(),
            Path::new("/etc/shadow")
        );
        // A file over an existing symlink replaces the link, never writes through it.
        fs::write(src.join("g"), "new").unwrap();
        std::os::unix::fs::symlink(src.join("d/e/f"), made.join("g")).unwrap();
        copy_entry(&src.join("g"), &made.join("g"), CopyMeta::default()).unwrap();
        assert_eq!(fs::read_to_string(src.join("d/e/f")).unwrap(), "x");
        assert_eq!(fs::read_to_string(made.join("g")).unwrap(), "new");
    }
}
