//! The unpacker: one tar stream's entries made inside the layer root with `openat2`/`*at` calls.
use super::{
    clean_path, remove_all_at, UnpackOptions, WhiteoutMode, OPAQUE_WHITEOUT, WHITEOUT_PREFIX,
};
use crate::error::{Error, IoCtx, Result};
use crate::sys;
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, mkdirat, mknodat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, Gid, Uid};
use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

fn open_root(dest: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        dest,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx("open layer root", dest)
}

fn in_root_how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// Components, fd, and whether the dir is setgid.
type CachedDir = (Vec<String>, std::rc::Rc<OwnedFd>, bool);

pub(super) struct Unpacker<'a> {
    dest: &'a Path,
    root: OwnedFd,
    opts: &'a UnpackOptions,
    dirs: Vec<(String, i64)>,
    created: HashSet<String>,
    /// Last parent dir opened (components, fd). Valid until anything is removed.
    cache: std::cell::RefCell<Option<CachedDir>>,
    /// Process umask (0o777 if unknown) and whether we run as uid 0: lets us skip fchown and
    /// fchmod when the create call already produced the right owner and mode.
    umask: u32,
    root_user: bool,
    pub(super) size: u64,
    pub(super) entries: u64,
}

fn proc_fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

impl<'a> Unpacker<'a> {
    pub(super) fn new(dest: &'a Path, opts: &'a UnpackOptions) -> Result<Self> {
        Ok(Unpacker {
            dest,
            root: open_root(dest)?,
            opts,
            dirs: Vec::new(),
            created: HashSet::new(),
            cache: Default::default(),
            umask: current_umask(),
            root_user: nix::unistd::geteuid().is_root() && nix::unistd::getegid().as_raw() == 0,
            size: 0,
            entries: 0,
        })
    }

    fn unsafe_entry(&self, entry: &str, reason: impl Into<String>) -> Error {
        Error::UnsafeEntry {
            layer: self.opts.name.clone(),
            entry: entry.to_string(),
            reason: reason.into(),
        }
    }

    fn ctx(&self, op: &'static str, rel: &str) -> impl Fn(Errno) -> Error + '_ {
        let p = self.dest.join(rel);
        move |e| Error::sys(op, p.clone(), e)
    }

    /// Like `open_dir(.., true)`, through a one-entry cache (most entries share a parent).
    fn parent_dir(&self, comps: &[String]) -> Result<(std::rc::Rc<OwnedFd>, bool)> {
        if let Some((c, fd, sgid)) = self.cache.borrow().as_ref() {
            if c.as_slice() == comps {
                return Ok((fd.clone(), *sgid));
            }
        }
        let fd = std::rc::Rc::new(self.open_dir(comps, true)?);
        // a setgid parent makes new entries inherit its group (and dirs the bit)
        let sgid = nix::sys::stat::fstat(&*fd)
            .map(|st| st.st_mode & libc::S_ISGID != 0)
            .unwrap_or(true);
        *self.cache.borrow_mut() = Some((comps.to_vec(), fd.clone(), sgid));
        Ok((fd, sgid))
    }

    /// Whether a just-created entry already has `uid:gid` and `mode` (created with `mode`).
    fn create_is_exact(&self, parent_sgid: bool, uid: u32, gid: u32, mode: u32) -> (bool, bool) {
        let owner_ok = self.root_user && uid == 0 && gid == 0 && !parent_sgid;
        let mode_ok = !parent_sgid && mode & 0o7000 == 0 && mode & self.umask == 0;
        (owner_ok, mode_ok)
    }

    fn invalidate(&self) {
        *self.cache.borrow_mut() = None;
    }

    /// Remove whatever is at `parent/last` (not following symlinks).
    fn remove_at(&self, parent: &OwnedFd, last: &str, rel: &str) -> Result<()> {
        self.invalidate();
        remove_all_at(parent, last).map_err(self.ctx("remove", rel))
    }

    /// Run a create op; if the name exists, remove what is there and retry once.
    fn replace<T>(
        &self,
        parent: &OwnedFd,
        last: &str,
        rel: &str,
        op: &'static str,
        f: impl Fn() -> nix::Result<T>,
    ) -> Result<T> {
        match f() {
            Err(Errno::EEXIST) => {
                self.remove_at(parent, last, rel)?;
                f().map_err(self.ctx(op, rel))
            }
            r => r.map_err(self.ctx(op, rel)),
        }
    }

    /// Open (creating if missing) directory `rel` resolved inside the root.
    fn open_dir(&self, comps: &[String], create: bool) -> Result<OwnedFd> {
        if comps.is_empty() {
            return nix::unistd::dup(&self.root).ctx("dup", self.dest);
        }
        let rel = comps.join("/");
        match openat2(
            &self.root,
            rel.as_str(),
            in_root_how(OFlag::O_PATH | OFlag::O_DIRECTORY),
        ) {
            Ok(fd) => Ok(fd),
            Err(Errno::ENOENT) if create => {
                let parent = self.open_dir(&comps[..comps.len() - 1], true)?;
                let last = &comps[comps.len() - 1];
                match mkdirat(parent, last.as_str(), Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(self.ctx("mkdirat", &rel)(e)),
                }
                openat2(
                    &self.root,
                    rel.as_str(),
                    in_root_how(OFlag::O_PATH | OFlag::O_DIRECTORY),
                )
                .map_err(|e| {
                    if e == Errno::ENOENT {
                        self.unsafe_entry(&rel, "parent is a dangling symlink")
                    } else {
                        self.ctx("openat2", &rel)(e)
                    }
                })
            }
            Err(e) => Err(self.ctx("openat2 (in root)", &rel)(e)),
        }
    }

    pub(super) fn run<R: Read>(&mut self, r: R) -> Result<()> {
        let mut ar = tar::Archive::new(r);
        let entries = ar.entries().ctx("read tar", self.dest)?;
        for e in entries {
            let mut e = e.map_err(|err| {
                Error::invalid(self.opts.name.clone(), format!("corrupt tar: {err}"))
            })?;
            self.entry(&mut e)?;
            self.entries += 1;
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = e.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let comps = clean_path(&name).map_err(|r| self.unsafe_entry(&name, r))?;
        if comps.is_empty() {
            return Ok(()); // the root dir entry itself: leave the root's own metadata alone
        }
        let (parent_comps, last) = comps.split_at(comps.len() - 1);
        let last = last[0].clone();
        let rel = comps.join("/");
        let kind = e.header().entry_type();

        // whiteouts
        if let Some(target) = last.strip_prefix(WHITEOUT_PREFIX) {
            let (parent, _) = self.parent_dir(parent_comps)?;
            self.invalidate();
            if last == OPAQUE_WHITEOUT {
                return self.opaque(&parent, parent_comps);
            }
            if target.starts_with(".wh.") {
                return Ok(()); // other AUFS metadata (.wh..wh.plnk etc.): ignore
            }
            if target.is_empty() || target == "." || target == ".." {
                return Err(self.unsafe_entry(&name, "whiteout names a parent or nothing"));
            }
            let trel = if parent_comps.is_empty() {
                target.to_string()
            } else {
                format!("{}/{}", parent_comps.join("/"), target)
            };
            match self.opts.whiteouts {
                WhiteoutMode::Apply => remove_all_at(&parent, target)
                    .map_err(self.ctx("remove whiteout target", &trel))?,
                WhiteoutMode::Overlay => {
                    remove_all_at(&parent, target).map_err(self.ctx("remove", &trel))?;
                    mknodat(&parent, target, SFlag::S_IFCHR, Mode::empty(), 0)
                        .map_err(self.ctx("mknodat whiteout", &trel))?;
                    self.created.insert(trel);
                }
            }
            return Ok(());
        }

        let (parent, parent_sgid) = self.parent_dir(parent_comps)?;
        let parent: &OwnedFd = &parent;
        let xattrs = collect_xattrs(e);
        let hdr = e.header().clone();
        let hdr = &hdr;
        let mode = hdr.mode().unwrap_or(0o644) & 0o7777;
        let uid = hdr.uid().unwrap_or(0) as u32;
        let gid = hdr.gid().unwrap_or(0) as u32;
        let mtime = hdr.mtime().unwrap_or(0) as i64;

        let (owner_ok, mode_ok) = self.create_is_exact(parent_sgid, uid, gid, mode);
        if kind.is_dir() {
            let mut fresh = mode_ok;
            match mkdirat(
                parent,
                last.as_str(),
                Mode::from_bits_truncate(if mode_ok { mode } else { 0o700 }),
            ) {
                Ok(()) => {}
                Err(Errno::EEXIST) => {
                    fresh = false;
                    let st = fstatat(
                        parent,
                        last.as_str(),
                        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(self.ctx("fstatat", &rel))?;
                    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                        self.remove_at(parent, &last, &rel)?;
                        mkdirat(parent, last.as_str(), Mode::from_bits_truncate(0o700))
                            .map_err(self.ctx("mkdirat", &rel))?;
                    }
                }
                Err(e) => return Err(self.ctx("mkdirat", &rel)(e)),
            }
            if !(fresh && owner_ok && xattrs.is_empty()) {
                let fd = openat(
                    parent,
                    last.as_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(self.ctx("open dir", &rel))?;
                if !(fresh && owner_ok) {
                    nix::unistd::fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
                        .map_err(self.ctx("fchown", &rel))?;
                    nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(mode))
                        .map_err(self.ctx("fchmod", &rel))?;
                }
                self.set_xattrs_fd(&fd, &rel, &xattrs)?;
            }
            self.dirs.push((rel.clone(), mtime));
            self.created.insert(rel);
            return Ok(());
        }

        // anything else replaces what is there
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = self.replace(parent, &last, &rel, "create file", || {
                    openat(
                        parent,
                        last.as_str(),
                        OFlag::O_WRONLY
                            | OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(if mode_ok { mode } else { 0o600 }),
                    )
                })?;
                let mut f = File::from(fd);
                let n =
                    crate::store::copy_buf(e, &mut f).ctx("write file", self.dest.join(&rel))?;
                self.size += n;
                let fd = OwnedFd::from(f);
                if !owner_ok {
                    nix::unistd::fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
                        .map_err(self.ctx("fchown", &rel))?;
                }
                if !(owner_ok && mode_ok) {
                    nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(mode))
                        .map_err(self.ctx("fchmod", &rel))?;
                }
                self.set_xattrs_fd(&fd, &rel, &xattrs)?;
                let t = TimeSpec::new(mtime, 0);
                nix::sys::stat::futimens(&fd, &t, &t).map_err(self.ctx("futimens", &rel))?;
            }
            tar::EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| self.unsafe_entry(&name, "symlink without target"))?
                    .into_owned();
                self.replace(parent, &last, &rel, "symlinkat", || {
                    symlinkat(target.as_slice(), parent, last.as_str())
                })?;
                fchownat(
                    parent,
                    last.as_str(),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(self.ctx("lchown", &rel))?;
                let path = format!("{}/{}", proc_fd_path(parent), last);
                for (k, v) in &xattrs {
                    if k.starts_with(b"trusted.") || k.starts_with(b"security.") {
                        ignore_unsupported(sys::lsetxattr(path.as_bytes(), k, v))
                            .map_err(self.ctx("lsetxattr", &rel))?;
                    }
                }
                let t = TimeSpec::new(mtime, 0);
                nix::sys::stat::utimensat(
                    parent,
                    last.as_str(),
                    &t,
                    &t,
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )
                .map_err(self.ctx("utimensat", &rel))?;
            }
            tar::EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| self.unsafe_entry(&name, "hard link without target"))?
                    .into_owned();
                let tname = String::from_utf8_lossy(&target).into_owned();
                let tcomps = clean_path(&tname)
                    .map_err(|r| self.unsafe_entry(&name, format!("hard link target: {r}")))?;
                if tcomps.is_empty() {
                    return Err(self.unsafe_entry(&name, "hard link to the root directory"));
                }
                let (tp, tl) = tcomps.split_at(tcomps.len() - 1);
                let tparent = self.open_dir(tp, false)?;
                // linkat without AT_SYMLINK_FOLLOW links the entry itself, never a symlink's target
                self.replace(parent, &last, &rel, "linkat", || {
                    linkat(
                        &tparent,
                        tl[0].as_str(),
                        parent,
                        last.as_str(),
                        nix::fcntl::AtFlags::empty(),
                    )
                })?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (sflag, dev) = match kind {
                    tar::EntryType::Char => (SFlag::S_IFCHR, dev_of(hdr)),
                    tar::EntryType::Block => (SFlag::S_IFBLK, dev_of(hdr)),
                    _ => (SFlag::S_IFIFO, 0),
                };
                self.replace(parent, &last, &rel, "mknodat", || {
                    mknodat(
                        parent,
                        last.as_str(),
                        sflag,
                        Mode::from_bits_truncate(0o600),
                        dev,
                    )
                })?;
                let fd = openat(
                    parent,
                    last.as_str(),
                    OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(self.ctx("open node", &rel))?;
                let p = proc_fd_path(&fd);
                fchownat(
                    parent,
                    last.as_str(),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(self.ctx("lchown", &rel))?;
                // chmod through the O_PATH fd's magic link: never follows a symlink at `last`
                nix::sys::stat::fchmodat(
                    nix::fcntl::AT_FDCWD,
                    p.as_str(),
                    Mode::from_bits_truncate(mode),
                    nix::sys::stat::FchmodatFlags::FollowSymlink,
                )
                .map_err(self.ctx("chmod node", &rel))?;
                let t = TimeSpec::new(mtime, 0);
                nix::sys::stat::utimensat(
                    parent,
                    last.as_str(),
                    &t,
                    &t,
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )
                .map_err(self.ctx("utimensat", &rel))?;
            }
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => {}
            other => {
                return Err(
                    self.unsafe_entry(&name, format!("unsupported tar entry type {other:?}"))
                )
            }
        }
        self.created.insert(rel);
        Ok(())
    }

    fn opaque(&mut self, parent: &OwnedFd, comps: &[String]) -> Result<()> {
        let rel = comps.join("/");
        match self.opts.whiteouts {
            WhiteoutMode::Overlay => {
                let fd = if comps.is_empty() {
                    nix::fcntl::open(
                        self.dest,
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .ctx("open", self.dest)?
                } else {
                    openat2(
                        &self.root,
                        rel.as_str(),
                        in_root_how(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW),
                    )
                    .map_err(self.ctx("open opaque dir", &rel))?
                };
                sys::fsetxattr(fd.as_fd(), b"trusted.overlay.opaque", b"y")
                    .map_err(self.ctx("setxattr trusted.overlay.opaque", &rel))
            }
            WhiteoutMode::Apply => {
                // remove everything in the dir that this layer did not itself create
                let dfd = openat(
                    parent,
                    ".",
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(self.ctx("open", &rel))?;
                let mut dir = nix::dir::Dir::from_fd(dfd).map_err(self.ctx("opendir", &rel))?;
                let names: Vec<String> = dir
                    .iter()
                    .filter_map(|x| x.ok())
                    .map(|x| String::from_utf8_lossy(x.file_name().to_bytes()).into_owned())
                    .filter(|n| n != "." && n != "..")
                    .collect();
                for n in names {
                    let child = if rel.is_empty() {
                        n.clone()
                    } else {
                        format!("{rel}/{n}")
                    };
                    if !self.created.contains(&child) {
                        remove_all_at(parent, &n).map_err(self.ctx("remove (opaque)", &child))?;
                    }
                }
                Ok(())
            }
        }
    }

    fn set_xattrs_fd(&self, fd: &OwnedFd, rel: &str, xattrs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        for (k, v) in xattrs {
            ignore_unsupported(sys::fsetxattr(fd.as_fd(), k, v))
                .map_err(self.ctx("fsetxattr", rel))?;
        }
        Ok(())
    }

    /// Directory mtimes last (creating entries changed them).
    pub(super) fn finish_dirs(&mut self) {
        for (rel, mtime) in self.dirs.iter().rev() {
            if let Ok(fd) = openat2(
                &self.root,
                rel.as_str(),
                in_root_how(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW),
            ) {
                let t = TimeSpec::new(*mtime, 0);
                let _ = nix::sys::stat::futimens(&fd, &t, &t);
            }
        }
    }
}

/// The process umask from /proc/self/status (0o777 = "unknown": never trust create modes).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Umask:")
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
        })
        .unwrap_or(0o777)
}

fn ignore_unsupported(r: nix::Result<()>) -> nix::Result<()> {
    match r {
        Err(Errno::ENOTSUP) => Ok(()),
        x => x,
    }
}

fn dev_of(h: &tar::Header) -> u64 {
    let major = h.device_major().ok().flatten().unwrap_or(0);
    let minor = h.device_minor().ok().flatten().unwrap_or(0);
    nix::sys::stat::makedev(major as u64, minor as u64)
}

fn collect_xattrs<R: Read>(e: &mut tar::Entry<'_, R>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(Some(exts)) = e.pax_extensions() {
        for ext in exts.flatten() {
            if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                // overlay's own xattrs come only from whiteout conversion, never from an image
                if !name.starts_with(b"trusted.overlay.") {
                    out.push((name.to_vec(), ext.value_bytes().to_vec()));
                }
            }
        }
    }
    out
}
