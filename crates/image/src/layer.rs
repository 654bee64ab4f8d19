//! Layer tars: unpack (gzip/zstd/plain, detected by magic) with whiteout handling and
//! containment of every path inside the target directory, and the reverse: a directory
//! (an overlay upper dir or a whole rootfs) back to a layer tar.
//!
//! Safety model: every entry's parent directory is opened with
//! `openat2(root, parent, O_PATH|O_DIRECTORY, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)`, so
//! `..`, absolute symlinks and symlink chains resolve inside the root; the final component is
//! then created/changed with `*at` calls that never follow it (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW,
//! fchmod on an fd opened O_NOFOLLOW). Paths containing `..` are refused outright.
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoCtx, Result};
use crate::sys;
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, mkdirat, mknodat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Detect by magic bytes.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Wrap a reader in the right decompressor, chosen by the first bytes of the stream.
pub fn decompress<'a, R: Read + Send + 'a>(r: R) -> Result<Box<dyn Read + Send + 'a>> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    let head = br.fill_buf().ctx("read layer header", "layer")?.to_vec();
    Ok(match Compression::detect(&head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(br)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(br).ctx("zstd init", "layer")?)
        }
        Compression::None => Box::new(br),
    })
}

/// How whiteouts are materialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// Keep them as overlayfs whiteouts (0/0 char devices, `trusted.overlay.opaque=y`):
    /// for a layer dir that will be an overlay lower.
    Overlay,
    /// Apply them: delete the named files (for the copy snapshotter / flattening).
    Apply,
}

#[derive(Debug, Clone)]
pub struct UnpackOptions {
    pub whiteouts: WhiteoutMode,
    /// Name of the layer, for error messages.
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct UnpackStats {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Bytes of file content written.
    pub size: u64,
    pub entries: u64,
    /// Length of the uncompressed tar stream.
    pub tar_size: u64,
    /// The stream's tar-split description (see [`crate::tarsplit`]), or why there is none.
    pub split: std::result::Result<crate::tarsplit::Description, String>,
}

/// A reader over chunks sent through a channel (the consuming end of a 2-thread pipeline).
pub struct ChanReader {
    pub(crate) rx: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    pub(crate) cur: Vec<u8>,
    pub(crate) pos: usize,
}
impl ChanReader {
    /// Read the chunks `rx` delivers, in order; an `Err` chunk is returned to the reader, and a
    /// closed channel is end of file.
    pub fn new(rx: mpsc::Receiver<std::io::Result<Vec<u8>>>) -> ChanReader {
        ChanReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        }
    }
}
impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(v)) => {
                    self.cur = v;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Unpack a (possibly compressed) layer stream into `dest` (which must exist).
/// Decompression and hashing run on a second thread, unpacking on this one.
pub fn unpack_layer<R: Read + Send>(
    input: R,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats> {
    let cancel = AtomicBool::new(false);
    let (tx, rx) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(16);
    std::thread::scope(|s| {
        let producer = s.spawn(|| -> Result<(Digest, u64, SplitResult)> {
            let dec = decompress(input)?;
            let mut h = HashingReader::new(crate::tarsplit::SplitTee {
                inner: dec,
                split: Some(crate::tarsplit::Splitter::new()?),
            });
            let mut sent_ok = true;
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled(opts.name.clone()));
                }
                let mut buf = vec![0u8; 256 * 1024];
                let mut filled = 0;
                while filled < buf.len() {
                    match h.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let msg = e.to_string();
                            let _ = tx.send(Err(e));
                            return Err(Error::invalid(
                                opts.name.clone(),
                                format!("reading layer stream: {msg}"),
                            ));
                        }
                    }
                }
                if filled == 0 {
                    break;
                }
                buf.truncate(filled);
                if sent_ok && tx.send(Ok(buf)).is_err() {
                    // the tar reader is done (end-of-archive); keep hashing the rest
                    sent_ok = false;
                }
            }
            drop(tx);
            let split = finish_split(h.inner.split.take());
            let (d, n) = h.finish();
            Ok((d, n, split))
        });
        let mut u = Unpacker::new(dest, opts)?;
        let res = u.run(ChanReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        });
        if res.is_err() {
            cancel.store(true, Ordering::Relaxed);
        }
        // dropping the receiver happens when `run` consumed it
        let prod = producer
            .join()
            .map_err(|_| Error::invalid(opts.name.clone(), "decompressor thread panicked"))?;
        res?;
        let (diff_id, tar_size, split) = prod?;
        u.finish_dirs();
        Ok(UnpackStats {
            diff_id,
            size: u.size,
            entries: u.entries,
            tar_size,
            split,
        })
    })
}

/// Unpack an uncompressed tar stream on this thread without hashing it: for callers that
/// hash the very same bytes themselves. The returned `diff_id` is a placeholder the caller
/// must replace with its own digest.
pub(crate) fn unpack_unhashed<R: Read>(
    input: R,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats> {
    let mut counted = HashingCount {
        inner: crate::tarsplit::SplitTee {
            inner: input,
            split: Some(crate::tarsplit::Splitter::new()?),
        },
        count: 0,
    };
    let mut u = Unpacker::new(dest, opts)?;
    u.run(&mut counted)?;
    // drain the end-of-archive padding so the count is the stream length
    std::io::copy(&mut counted, &mut std::io::sink()).ctx("read layer", dest)?;
    u.finish_dirs();
    Ok(UnpackStats {
        diff_id: Digest::of(b""),
        size: u.size,
        entries: u.entries,
        tar_size: counted.count,
        split: finish_split(counted.inner.split.take()),
    })
}

type SplitResult = std::result::Result<crate::tarsplit::Description, String>;

fn finish_split(s: Option<crate::tarsplit::Splitter>) -> SplitResult {
    s.ok_or_else(|| "no splitter".to_string())
        .and_then(|s| s.finish())
}

struct HashingCount<R> {
    inner: R,
    count: u64,
}
impl<R: Read> Read for HashingCount<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

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

/// Clean a tar path: strip leading `/` and `./`, drop `.` components, refuse `..`.
/// Returns the components (empty = the root itself).
pub fn clean_path(name: &str) -> std::result::Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("path contains '..'"),
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

/// Components, fd, and whether the dir is setgid.
type CachedDir = (Vec<String>, std::rc::Rc<OwnedFd>, bool);

struct Unpacker<'a> {
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
    size: u64,
    entries: u64,
}

fn proc_fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

impl<'a> Unpacker<'a> {
    fn new(dest: &'a Path, opts: &'a UnpackOptions) -> Result<Self> {
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

    fn run<R: Read>(&mut self, r: R) -> Result<()> {
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
    fn finish_dirs(&mut self) {
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

/// Remove `name` in `dir` recursively without following symlinks. Missing is fine.
pub fn remove_all_at<Fd: AsFd>(dir: &Fd, name: &str) -> nix::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) | Err(Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let names: Vec<String> = d
        .iter()
        .filter_map(|x| x.ok())
        .map(|x| String::from_utf8_lossy(x.file_name().to_bytes()).into_owned())
        .filter(|n| n != "." && n != "..")
        .collect();
    let sub = openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    for n in names {
        remove_all_at(&sub, &n)?;
    }
    match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------
// Directory -> tar

/// What to do with overlayfs whiteouts when packing a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackMode {
    /// An overlay upper dir: 0/0 char devices -> `.wh.NAME`, opaque dirs -> `.wh..wh..opq`.
    OverlayDiff,
    /// A plain tree (export): everything as-is.
    Plain,
}

/// Write `dir` as a tar stream (sorted, deterministic, PAX xattrs, hard links preserved).
pub fn pack_dir<W: Write>(dir: &Path, mode: PackMode, out: W) -> Result<W> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    walk(&mut b, dir, "", mode, &mut links)?;
    b.into_inner().ctx("finish tar", dir)
}

fn walk<W: Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    rel: &str,
    mode: PackMode,
    links: &mut HashMap<(u64, u64), String>,
) -> Result<()> {
    let d = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut names: Vec<_> = std::fs::read_dir(&d)
        .ctx("read dir", &d)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .ctx("read dir", &d)?;
    names.sort();
    for n in names {
        let name = n.to_string_lossy().into_owned();
        let crel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let p = root.join(&crel);
        let md = std::fs::symlink_metadata(&p).ctx("lstat", &p)?;
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let ft = md.file_type();
        if mode == PackMode::OverlayDiff && ft.is_char_device() && md.rdev() == 0 {
            let wh = if rel.is_empty() {
                format!("{WHITEOUT_PREFIX}{name}")
            } else {
                format!("{rel}/{WHITEOUT_PREFIX}{name}")
            };
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(0);
            h.set_mode(0o600);
            h.set_mtime(md.mtime().max(0) as u64);
            b.append_data(&mut h, &wh, std::io::empty())
                .ctx("write tar", &p)?;
            continue;
        }
        append_one(b, root, &crel, &md, mode, links, true)?;
    }
    Ok(())
}

/// Append one entry (a dir's own header; its children too when `recurse`).
fn append_one<W: Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    crel: &str,
    md: &std::fs::Metadata,
    mode: PackMode,
    links: &mut HashMap<(u64, u64), String>,
    recurse: bool,
) -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let crel = crel.to_string();
    let p = root.join(&crel);
    let ft = md.file_type();
    let mut xattrs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut opaque = false;
    for k in
        sys::llistxattr(p.as_os_str().as_bytes()).map_err(|e| Error::sys("llistxattr", &p, e))?
    {
        if k.starts_with(b"trusted.overlay.") {
            if k == b"trusted.overlay.opaque" {
                opaque = sys::lgetxattr(p.as_os_str().as_bytes(), &k)
                    .ok()
                    .flatten()
                    .as_deref()
                    == Some(b"y");
            }
            continue;
        }
        if let Some(v) = sys::lgetxattr(p.as_os_str().as_bytes(), &k)
            .map_err(|e| Error::sys("lgetxattr", &p, e))?
        {
            xattrs.push((format!("SCHILY.xattr.{}", String::from_utf8_lossy(&k)), v));
        }
    }
    if !xattrs.is_empty() {
        b.append_pax_extensions(xattrs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .ctx("write tar", &p)?;
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(md.mode() & 0o7777);
    h.set_uid(md.uid() as u64);
    h.set_gid(md.gid() as u64);
    h.set_mtime(md.mtime().max(0) as u64);
    h.set_size(0);
    if ft.is_dir() {
        h.set_entry_type(tar::EntryType::Directory);
        b.append_data(&mut h, format!("{crel}/"), std::io::empty())
            .ctx("write tar", &p)?;
        if opaque && mode == PackMode::OverlayDiff {
            let mut oh = tar::Header::new_gnu();
            oh.set_entry_type(tar::EntryType::Regular);
            oh.set_size(0);
            oh.set_mode(0o600);
            b.append_data(
                &mut oh,
                format!("{crel}/{OPAQUE_WHITEOUT}"),
                std::io::empty(),
            )
            .ctx("write tar", &p)?;
        }
        if recurse {
            walk(b, root, &crel, mode, links)?;
        }
    } else if ft.is_symlink() {
        let target = std::fs::read_link(&p).ctx("readlink", &p)?;
        h.set_entry_type(tar::EntryType::Symlink);
        b.append_link(&mut h, &crel, &target).ctx("write tar", &p)?;
    } else if ft.is_file() {
        if md.nlink() > 1 {
            if let Some(first) = links.get(&(md.dev(), md.ino())) {
                h.set_entry_type(tar::EntryType::Link);
                b.append_link(&mut h, &crel, first).ctx("write tar", &p)?;
                return Ok(());
            }
            links.insert((md.dev(), md.ino()), crel.clone());
        }
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(md.len());
        let f = File::open(&p).ctx("open", &p)?;
        b.append_data(&mut h, &crel, f).ctx("write tar", &p)?;
    } else {
        let (t, dev) = if ft.is_char_device() {
            (tar::EntryType::Char, md.rdev())
        } else if ft.is_block_device() {
            (tar::EntryType::Block, md.rdev())
        } else if ft.is_fifo() {
            (tar::EntryType::Fifo, 0)
        } else {
            return Ok(()); // sockets are not archived
        };
        h.set_entry_type(t);
        h.set_device_major(nix::sys::stat::major(dev) as u32)
            .ctx("tar header", &p)?;
        h.set_device_minor(nix::sys::stat::minor(dev) as u32)
            .ctx("tar header", &p)?;
        b.append_data(&mut h, &crel, std::io::empty())
            .ctx("write tar", &p)?;
    }
    Ok(())
}

/// Write the changes from tree `old` to tree `new` as a layer tar (for the copy snapshotter,
/// whose container dir is a full copy): entries added or changed in `new` (by type, mode,
/// owner, size, mtime, link target, xattrs), and `.wh.NAME` for entries gone from `new`.
pub fn diff_trees<W: Write>(old: &Path, new: &Path, out: W) -> Result<W> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    diff_walk(&mut b, old, new, "", &mut links)?;
    b.into_inner().ctx("finish tar", new)
}

fn sorted_names(d: &Path) -> Result<Vec<String>> {
    let mut v: Vec<String> = match std::fs::read_dir(d) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()
            .ctx("read dir", d)?,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            Vec::new()
        }
        Err(e) => return Err(Error::io("read dir", d, e)),
    };
    v.sort();
    Ok(v)
}

fn xattrs_of(p: &Path) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let b = p.as_os_str().as_bytes();
    let mut v: Vec<_> = sys::llistxattr(b)
        .unwrap_or_default()
        .into_iter()
        .map(|k| {
            let val = sys::lgetxattr(b, &k).ok().flatten();
            (k, val)
        })
        .collect();
    v.sort();
    v
}

fn same_entry(op: &Path, om: &std::fs::Metadata, np: &Path, nm: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    if om.mode() != nm.mode()
        || om.uid() != nm.uid()
        || om.gid() != nm.gid()
        || om.rdev() != nm.rdev()
    {
        return false;
    }
    if !nm.is_dir()
        && (om.len() != nm.len() || om.mtime() != nm.mtime() || om.mtime_nsec() != nm.mtime_nsec())
    {
        return false;
    }
    if nm.file_type().is_symlink() && std::fs::read_link(op).ok() != std::fs::read_link(np).ok() {
        return false;
    }
    xattrs_of(op) == xattrs_of(np)
}

fn diff_walk<W: Write>(
    b: &mut tar::Builder<W>,
    old: &Path,
    new: &Path,
    rel: &str,
    links: &mut HashMap<(u64, u64), String>,
) -> Result<()> {
    let join = |n: &str| {
        if rel.is_empty() {
            n.to_string()
        } else {
            format!("{rel}/{n}")
        }
    };
    let od = if rel.is_empty() {
        old.to_path_buf()
    } else {
        old.join(rel)
    };
    let nd = if rel.is_empty() {
        new.to_path_buf()
    } else {
        new.join(rel)
    };
    let on = sorted_names(&od)?;
    let nn = sorted_names(&nd)?;
    let nset: HashSet<&String> = nn.iter().collect();
    for n in &on {
        if !nset.contains(n) {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(0);
            h.set_mode(0o600);
            b.append_data(
                &mut h,
                join(&format!("{WHITEOUT_PREFIX}{n}")),
                std::io::empty(),
            )
            .ctx("write tar", &nd)?;
        }
    }
    let oset: HashSet<&String> = on.iter().collect();
    for n in &nn {
        let crel = join(n);
        let np = new.join(&crel);
        let nm = std::fs::symlink_metadata(&np).ctx("lstat", &np)?;
        let old_md = if oset.contains(n) {
            std::fs::symlink_metadata(old.join(&crel)).ok()
        } else {
            None
        };
        match old_md {
            Some(om) if om.is_dir() && nm.is_dir() => {
                if !same_entry(&old.join(&crel), &om, &np, &nm) {
                    append_one(b, new, &crel, &nm, PackMode::Plain, links, false)?;
                }
                diff_walk(b, old, new, &crel, links)?;
            }
            Some(om)
                if om.file_type() == nm.file_type()
                    && same_entry(&old.join(&crel), &om, &np, &nm) => {}
            _ => append_one(b, new, &crel, &nm, PackMode::Plain, links, true)?,
        }
    }
    Ok(())
}

/// Pack the changes from `old` to `new` into a gzip layer blob in the content store.
pub fn diff_to_store(
    old: &Path,
    new: &Path,
    store: &crate::store::ContentStore,
) -> Result<PackedLayer> {
    diff_into(old, new, store.writer(None, None)?)
}

/// [`diff_to_store`] into a given blob writer (e.g. one of a [`crate::lease::Lease`]).
pub fn diff_into(old: &Path, new: &Path, w: crate::store::BlobWriter) -> Result<PackedLayer> {
    let gz = flate2::write::GzEncoder::new(HashingWriter::new(w), flate2::Compression::fast());
    let tarw = diff_trees(old, new, HashingWriter::new(gz))?;
    let (gz, diff_id, _) = tarw.finish();
    let hw = gz.finish().ctx("finish gzip", new)?;
    let (w, _blob, size) = hw.finish();
    let blob = w.commit()?;
    Ok(PackedLayer {
        diff_id,
        blob,
        size,
        media_type: crate::model::MEDIA_OCI_LAYER_GZIP.to_string(),
    })
}

/// A writer that hashes what passes through.
pub struct HashingWriter<W> {
    pub inner: W,
    pub hasher: sha2::Sha256,
    pub count: u64,
}
impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        use sha2::Digest as _;
        HashingWriter {
            inner,
            hasher: sha2::Sha256::new(),
            count: 0,
        }
    }
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.count)
    }
}
impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Result of turning a directory into a stored layer blob.
#[derive(Debug, Clone)]
pub struct PackedLayer {
    pub diff_id: Digest,
    pub blob: Digest,
    pub size: u64,
    pub media_type: String,
}

/// Pack `dir` into a gzip-compressed layer blob in the content store.
pub fn pack_to_store(
    dir: &Path,
    mode: PackMode,
    store: &crate::store::ContentStore,
) -> Result<PackedLayer> {
    pack_into(dir, mode, store.writer(None, None)?)
}

/// [`pack_to_store`] into a given blob writer (e.g. one of a [`crate::lease::Lease`]).
pub fn pack_into(dir: &Path, mode: PackMode, w: crate::store::BlobWriter) -> Result<PackedLayer> {
    let gz = flate2::write::GzEncoder::new(HashingWriter::new(w), flate2::Compression::fast());
    let tarw = HashingWriter::new(gz);
    let tarw = pack_dir(dir, mode, tarw)?;
    let (gz, diff_id, _) = tarw.finish();
    let hw = gz.finish().ctx("finish gzip", dir)?;
    let (w, _blob, size) = hw.finish();
    let blob = w.commit()?;
    Ok(PackedLayer {
        diff_id,
        blob,
        size,
        media_type: crate::model::MEDIA_OCI_LAYER_GZIP.to_string(),
    })
}
