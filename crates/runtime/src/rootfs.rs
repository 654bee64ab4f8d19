//! The container's filesystem view: mounts in spec order (targets resolved inside the rootfs
//! with openat2 RESOLVE_IN_ROOT, never following a symlink out), /dev with the default devices
//! and symlinks, the cgroup mount, pivot_root (or MS_MOVE+chroot), masked and read-only paths.

use crate::error::{Context, Error, Result};
use crate::sys;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

/// Parsed mount options.
#[derive(Debug, Clone)]
pub struct MountOpts {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    pub recursive_ro: bool,
}

impl Default for MountOpts {
    fn default() -> Self {
        MountOpts {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            recursive_ro: false,
        }
    }
}

/// Borrow a raw fd that the caller keeps open for the duration of the borrow.
fn bfd<'a>(fd: RawFd) -> std::os::fd::BorrowedFd<'a> {
    // SAFETY: every caller passes an fd it owns (an OwnedFd alive across the call).
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

impl MountOpts {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

pub fn parse_options(opts: &[String]) -> Result<MountOpts> {
    let mut o = MountOpts::default();
    for opt in opts {
        let (set, clear): (MsFlags, MsFlags) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "nosymfollow" => (MsFlags::from_bits_retain(0x100), MsFlags::empty()),
            "symfollow" => (MsFlags::empty(), MsFlags::from_bits_retain(0x100)),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                o.propagation
                    .push(propagation_flag(opt).unwrap_or(MsFlags::MS_PRIVATE));
                continue;
            }
            "rro" => {
                o.recursive_ro = true;
                continue;
            }
            "rrw" => continue,
            "idmap" | "ridmap" => {
                return Err(Error::Config(format!(
                    "mount option {opt:?}: id-mapped mounts are not supported by berth-runtime"
                )))
            }
            "tmpcopyup" => {
                return Err(Error::Config(
                    "mount option \"tmpcopyup\" is not supported by berth-runtime".into(),
                ))
            }
            "defaults" => continue,
            _ => {
                o.data.push(opt.clone());
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
    }
    Ok(o)
}

pub fn propagation_flag(s: &str) -> Option<MsFlags> {
    Some(match s {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Path of `p` relative to the root ("/a/b" -> "a/b"), rejecting nothing: `..` is resolved by
/// openat2 RESOLVE_IN_ROOT, which clamps it at the root.
fn rel(p: &Path) -> PathBuf {
    let r: PathBuf = p
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect();
    if r.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        r
    }
}

/// Open (creating as needed) `dest` inside the tree rooted at `rootfd`, resolving every
/// symlink and `..` as if `rootfd` were `/`. Returns an O_PATH fd of the target, ready to be
/// used as `/proc/self/fd/N` for mount(2) without any further path walk (no TOCTOU).
pub fn ensure_target(rootfd: RawFd, dest: &Path, is_dir: bool) -> Result<OwnedFd> {
    let resolve = sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS;
    let direct = rel(dest);
    // The target exists (the usual case): RESOLVE_IN_ROOT follows symlinks and `..` exactly
    // as the container will see them, in one call.
    match sys::openat2(rootfd, &direct, libc::O_PATH, resolve) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.errno() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e),
    }
    // Only the last component is missing and it is no (dangling) symlink: make it in its
    // parent, itself resolved from the root.
    if let (Some(parent), Some(name)) = (direct.parent(), direct.file_name()) {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(pfd) = sys::openat2(rootfd, parent, libc::O_PATH | libc::O_DIRECTORY, resolve) {
            if nix::fcntl::readlinkat(pfd.as_fd(), name) == Err(nix::errno::Errno::ENOENT) {
                create_in(&pfd, Path::new(name), !is_dir, dest)?;
                return open_beneath(&pfd, Path::new(name))
                    .with_ctx(|| format!("open new mount target {}", dest.display()));
            }
        }
    }
    // Missing parents or a dangling symlink: resolve the links ourselves (a dangling one
    // points where its target would be, inside the root), then walk from the root creating
    // missing components; every prefix is resolved from the root (so symlinks resolve as
    // they would inside the container), and creation happens in the parent fd that
    // resolution produced.
    let r = secure_join(rootfd, dest)?;
    let mut parent = sys::openat2(
        rootfd,
        Path::new("."),
        libc::O_PATH | libc::O_DIRECTORY,
        resolve,
    )?;
    let comps: Vec<_> = r
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    let mut prefix = PathBuf::new();
    for (i, c) in comps.iter().enumerate() {
        let name = Path::new(c.as_os_str());
        prefix.push(name);
        let last = i + 1 == comps.len();
        match sys::openat2(rootfd, &prefix, libc::O_PATH, resolve) {
            Ok(fd) => {
                parent = fd;
                continue;
            }
            Err(e) if e.errno() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        create_in(&parent, name, last && !is_dir, dest)?;
        parent = sys::openat2(rootfd, &prefix, libc::O_PATH, resolve)
            .with_ctx(|| format!("open new mount target {}", dest.display()))?;
    }
    // Final answer always re-resolved from the root.
    sys::openat2(rootfd, &r, libc::O_PATH, resolve)
}

/// O_PATH fd of the single component `name` right below `dir`, refusing a symlink there.
fn open_beneath(dir: &OwnedFd, name: &Path) -> Result<OwnedFd> {
    sys::openat2(
        dir.as_raw_fd(),
        name,
        libc::O_PATH,
        sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
    )
}

/// Make the directory (or, with `file`, the empty regular file) `name` in `dir`, for the
/// mount target `dest`; one that exists already is fine.
fn create_in(dir: &OwnedFd, name: &Path, file: bool, dest: &Path) -> Result<()> {
    if file {
        let c = sys::cstr(name)?;
        // SAFETY: valid dirfd and NUL-terminated name; O_NOFOLLOW|O_EXCL so we create a
        // fresh regular file and never follow a symlink planted meanwhile.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                c.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd < 0 {
            let e = nix::errno::Errno::last();
            if e != nix::errno::Errno::EEXIST {
                return Err(Error::sys(
                    format!("create mount target {}", dest.display()),
                    e,
                ));
            }
        } else {
            // SAFETY: fd was just returned by openat and is owned by nobody else.
            unsafe { libc::close(fd) };
        }
        return Ok(());
    }
    match nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(Error::sys(
            format!(
                "mkdir {} (for mount target {})",
                name.display(),
                dest.display()
            ),
            e,
        )),
    }
}

fn is_dir_fd(fd: &OwnedFd) -> bool {
    nix::sys::stat::fstat(fd.as_fd())
        .map(|st| SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR)
        .unwrap_or(false)
}

/// Resolve `path` inside the tree at `rootfd` into a symlink-free relative path, following
/// symlinks as the container would see them (absolute targets restart at the root, `..` stops
/// at the root). Dangling links resolve to where their target would be, so it can be created
/// inside the root instead of failing or escaping.
pub fn secure_join(rootfd: RawFd, path: &Path) -> Result<PathBuf> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    let mut todo: VecDeque<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    let mut cur: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let mut cand: PathBuf = cur.iter().collect();
        cand.push(&c);
        match nix::fcntl::readlinkat(bfd(rootfd), &cand) {
            Ok(target) => {
                links += 1;
                if links > 40 {
                    return Err(Error::sys(
                        format!("resolve {} in rootfs", path.display()),
                        nix::errno::Errno::ELOOP,
                    ));
                }
                let t = Path::new(&target);
                if t.is_absolute() {
                    cur.clear();
                }
                for (i, comp) in t
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(n) => Some(n.to_os_string()),
                        Component::ParentDir => Some(OsString::from("..")),
                        _ => None,
                    })
                    .enumerate()
                {
                    todo.insert(i, comp);
                }
            }
            Err(_) => cur.push(c),
        }
    }
    let r: PathBuf = cur.iter().collect();
    Ok(if r.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        r
    })
}

/// Everything the init process needs to build the filesystem view.
pub struct RootfsPlan<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    /// The container has its own user namespace (no mknod; bind devices instead).
    pub userns: bool,
    /// The container has its own cgroup namespace.
    pub cgroupns: bool,
    /// (hierarchy directory name under /sys/fs/cgroup, host directory of the container's cgroup)
    pub cgroup_dirs: &'a [(String, PathBuf)],
    pub cgroup_v2_dir: Option<&'a Path>,
    /// Called before the cgroup mount: the container's cgroup directories exist afterwards.
    pub cgroup_ready: &'a dyn Fn() -> Result<()>,
    /// Bind a truthful /proc provider's files once /proc and /sys are mounted.
    pub procview: Option<&'a Path>,
}

/// Phase 1, before pivot_root: propagation, the rootfs bind, every spec mount, devices.
pub fn prepare(plan: &RootfsPlan) -> Result<()> {
    let linux = plan.spec.linux().as_ref();
    let prop = linux.and_then(|l| l.rootfs_propagation().clone());
    let initial = match prop.as_deref() {
        Some("private") | Some("rprivate") => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    if let Some(p) = prop.as_deref() {
        if propagation_flag(p).is_none() {
            return Err(Error::Config(format!(
                "field linux.rootfsPropagation: unknown propagation {p:?}"
            )));
        }
    }
    mount(None::<&str>, "/", None::<&str>, initial, None::<&str>)
        .ctx("make / a slave/private mount")?;
    mount(
        Some(plan.rootfs),
        plan.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_ctx(|| format!("bind mount rootfs {} on itself", plan.rootfs.display()))?;

    let rootfd = sys::openat2(
        libc::AT_FDCWD,
        plan.rootfs,
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )?;
    let mut dev_bound_from_host = false;
    let mut have_pts = false;
    for (i, m) in plan.spec.mounts().iter().flatten().enumerate() {
        let dest = m.destination();
        if dest == Path::new("/dev") {
            let o = parse_options(m.options().as_deref().unwrap_or(&[]))?;
            dev_bound_from_host = o.is_bind();
        }
        if dest == Path::new("/dev/pts") {
            have_pts = true;
        }
        do_mount(plan, rootfd.as_raw_fd(), m)
            .map_err(|e| prefix(e, &format!("mounts[{i}] ({})", dest.display())))?;
        crate::mark(&format!("child: mounted {}", dest.display()));
    }
    if !dev_bound_from_host {
        create_devices(plan, rootfd.as_raw_fd(), have_pts)?;
    }
    if let Some(d) = plan.procview {
        crate::truthful_proc::bind(rootfd.as_raw_fd(), d);
    }
    Ok(())
}

fn prefix(e: Error, what: &str) -> Error {
    e.context(what.to_string())
}

fn do_mount(plan: &RootfsPlan, rootfd: RawFd, m: &Mount) -> Result<()> {
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]))?;
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(plan, rootfd, m, &opts);
    }
    if typ == "bind" || opts.is_bind() {
        let src = m
            .source()
            .as_ref()
            .ok_or_else(|| Error::Config("bind mount without a source".into()))?;
        let src = if src.is_absolute() {
            src.clone()
        } else {
            plan.bundle.join(src)
        };
        let meta =
            std::fs::metadata(&src).with_ctx(|| format!("bind mount source {}", src.display()))?;
        let target = ensure_target(rootfd, dest, meta.is_dir())?;
        let tp = fd_path(&target);
        let mut flags = MsFlags::MS_BIND;
        if opts.flags.contains(MsFlags::MS_REC) {
            flags |= MsFlags::MS_REC;
        }
        mount(Some(&src), &tp, None::<&str>, flags, None::<&str>)
            .with_ctx(|| format!("bind mount {} on {}", src.display(), dest.display()))?;
        let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            // Re-open: the fd points at the mountpoint *under* the new bind mount.
            let target = ensure_target(rootfd, dest, meta.is_dir())?;
            remount_bind(&fd_path(&target), extra, dest)?;
        }
        apply_propagation_and_rro(rootfd, dest, &opts, meta.is_dir())?;
        return Ok(());
    }
    if matches!(typ, "proc" | "sysfs") {
        // /proc and /sys must be real directories in the rootfs: never mount them through a
        // symlink the image planted (CVE-2019-19921 class).
        match sys::openat2(
            rootfd,
            &rel(dest),
            libc::O_PATH,
            sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_SYMLINKS,
        ) {
            Ok(fd) if !is_dir_fd(&fd) => {
                return Err(Error::Other(format!(
                    "{} mount target {} is not a directory",
                    typ,
                    dest.display()
                )))
            }
            Err(e) if e.errno() == Some(libc::ELOOP) => {
                return Err(Error::Other(format!(
                    "{} mount target {} is a symlink: refused",
                    typ,
                    dest.display()
                )))
            }
            _ => {}
        }
    }
    let target = ensure_target(rootfd, dest, true)?;
    let tp = fd_path(&target);
    let flags = opts.flags & !MsFlags::MS_REMOUNT;
    let data = opts.data.join(",");
    let data_opt = if data.is_empty() {
        None
    } else {
        Some(data.as_str())
    };
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let r = mount(Some(&source), &tp, Some(typ), flags, data_opt);
    match r {
        Ok(()) => {}
        Err(nix::errno::Errno::EPERM) | Err(nix::errno::Errno::EINVAL) if typ == "sysfs" => {
            // Without a new network namespace (or inside a user namespace) sysfs cannot be
            // mounted: bind the host's /sys instead, as runc does.
            mount(
                Some("/sys"),
                &tp,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .ctx("bind mount /sys (sysfs fallback)")?;
            let t2 = ensure_target(rootfd, dest, true)?;
            remount_bind(&fd_path(&t2), flags, dest)?;
        }
        Err(nix::errno::Errno::EPERM) if typ == "mqueue" => {
            mount(
                Some("/dev/mqueue"),
                &tp,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .ctx("bind mount /dev/mqueue (mqueue fallback)")?;
        }
        Err(e) => {
            return Err(Error::sys(
                format!(
                    "mount {} on {} (type {typ}, options {:?})",
                    source.display(),
                    dest.display(),
                    m.options().as_deref().unwrap_or(&[])
                ),
                e,
            ))
        }
    }
    apply_propagation_and_rro(rootfd, dest, &opts, true)
}

fn apply_propagation_and_rro(
    rootfd: RawFd,
    dest: &Path,
    opts: &MountOpts,
    is_dir: bool,
) -> Result<()> {
    if opts.propagation.is_empty() && !opts.recursive_ro {
        return Ok(());
    }
    let target = ensure_target(rootfd, dest, is_dir)?;
    let tp = fd_path(&target);
    for p in &opts.propagation {
        mount(None::<&str>, &tp, None::<&str>, *p, None::<&str>)
            .with_ctx(|| format!("set propagation {p:?} on {}", dest.display()))?;
    }
    if opts.recursive_ro {
        sys::mount_setattr_recursive_ro(&tp)
            .map_err(|e| prefix(e, &format!("rro on {}", dest.display())))?;
    }
    Ok(())
}

/// MS_REMOUNT|MS_BIND with `flags`, keeping the flags the kernel locks in a user namespace.
fn remount_bind(target: &Path, flags: MsFlags, what: &Path) -> Result<()> {
    let want = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags;
    match mount(None::<&str>, target, None::<&str>, want, None::<&str>) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EPERM) => {
            let locked = locked_flags(target);
            mount(
                None::<&str>,
                target,
                None::<&str>,
                want | locked,
                None::<&str>,
            )
            .with_ctx(|| format!("remount {} with {flags:?}", what.display()))
        }
        Err(e) => Err(Error::sys(
            format!("remount {} with {flags:?}", what.display()),
            e,
        )),
    }
}

fn locked_flags(target: &Path) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let mut f = MsFlags::empty();
    if let Ok(s) = statvfs(target) {
        let fl = s.flags();
        for (a, b) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if fl.contains(a) {
                f |= b;
            }
        }
    }
    f
}

/// /sys/fs/cgroup: cgroup2 (v2, own cgroup namespace) or a tmpfs with a bind of the container's
/// own directory per v1 hierarchy, so the container sees exactly its own limits.
fn mount_cgroup(plan: &RootfsPlan, rootfd: RawFd, m: &Mount, opts: &MountOpts) -> Result<()> {
    (plan.cgroup_ready)()?;
    let dest = m.destination();
    let flags = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if let Some(v2) = plan.cgroup_v2_dir {
        let target = ensure_target(rootfd, dest, true)?;
        let tp = fd_path(&target);
        let r = if plan.cgroupns {
            mount(Some("cgroup2"), &tp, Some("cgroup2"), flags, None::<&str>)
        } else {
            Err(nix::errno::Errno::EPERM)
        };
        if r.is_err() {
            mount(
                Some(v2),
                &tp,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .with_ctx(|| format!("bind mount cgroup {} on {}", v2.display(), dest.display()))?;
            let t2 = ensure_target(rootfd, dest, true)?;
            remount_bind(&fd_path(&t2), flags, dest)?;
        }
        return Ok(());
    }
    // cgroup v1: tmpfs + one bind per hierarchy.
    let target = ensure_target(rootfd, dest, true)?;
    let tp = fd_path(&target);
    mount(
        Some("tmpfs"),
        &tp,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .with_ctx(|| format!("mount tmpfs on {}", dest.display()))?;
    // The fresh tmpfs (re-opened: `target` is the directory under it) is ours alone: its
    // subdirectories are made and opened right in it.
    let cgdir = ensure_target(rootfd, dest, true)?;
    for (name, host) in plan.cgroup_dirs {
        let sub = dest.join(name);
        create_in(&cgdir, Path::new(name), false, &sub)?;
        let t = open_beneath(&cgdir, Path::new(name))
            .with_ctx(|| format!("open cgroup mount target {}", sub.display()))?;
        mount(
            Some(host),
            &fd_path(&t),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_ctx(|| format!("bind mount cgroup {} on {}", host.display(), sub.display()))?;
        // Co-mounted hierarchies ("cpu,cpuacct") get a symlink per controller, as on the host.
        if name.contains(',') {
            for part in name.split(',') {
                let _ = nix::unistd::symlinkat(name.as_str(), cgdir.as_fd(), part);
            }
        }
    }
    // One mount_setattr for the tmpfs and every bind below it (instead of a remount each).
    let mut attrs = sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOEXEC;
    if flags.contains(MsFlags::MS_RDONLY) {
        attrs |= sys::MOUNT_ATTR_RDONLY;
    }
    sys::mount_setattr_recursive(&fd_path(&cgdir), attrs)
        .map_err(|e| prefix(e, &format!("cgroup mount {}", dest.display())))?;
    Ok(())
}

const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn create_devices(plan: &RootfsPlan, rootfd: RawFd, have_pts: bool) -> Result<()> {
    let spec_devs: Vec<LinuxDevice> = plan
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    let mut done: Vec<PathBuf> = Vec::new();
    // /dev resolved inside the root once; links and nodes are made relative to it, so an image
    // whose /dev is a symlink cannot redirect them.
    let devdir = ensure_target(rootfd, Path::new("/dev"), true)?;
    // Device modes must be exact: no umask while we make them.
    let old_umask = nix::sys::stat::umask(Mode::empty());
    let r = make_all_devices(
        plan,
        rootfd,
        Some(devdir.try_clone().ctx("dup /dev fd")?),
        &spec_devs,
        &mut done,
    );
    nix::sys::stat::umask(old_umask);
    r?;
    let d = devdir.as_raw_fd();
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink_in(d, target, link)?;
    }
    if have_pts {
        symlink_in(d, "pts/ptmx", "ptmx")?;
    }
    Ok(())
}

fn make_all_devices(
    plan: &RootfsPlan,
    rootfd: RawFd,
    devdir: Option<OwnedFd>,
    spec_devs: &[LinuxDevice],
    done: &mut Vec<PathBuf>,
) -> Result<()> {
    for d in spec_devs {
        if !d.path().is_absolute() || !d.path().starts_with("/dev") {
            return Err(Error::Config(format!(
                "field linux.devices: path {:?} must be absolute and under /dev",
                d.path()
            )));
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::Config(format!(
                    "field linux.devices: device {:?} has type \"a\", which is only valid in cgroup rules",
                    d.path()
                )))
            }
        };
        make_device(
            plan,
            rootfd,
            devdir.as_ref(),
            d.path(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            d.file_mode().unwrap_or(0o666),
            d.uid(),
            d.gid(),
        )?;
        done.push(d.path().clone());
    }
    for (path, maj, min) in DEFAULT_DEVICES {
        let p = Path::new(path);
        if done.iter().any(|d| d == p) {
            continue;
        }
        make_device(
            plan,
            rootfd,
            devdir.as_ref(),
            p,
            SFlag::S_IFCHR,
            maj,
            min,
            0o666,
            Some(0),
            Some(0),
        )?;
    }
    Ok(())
}

/// Make `dirfd/link -> target`, replacing what the image had there.
fn symlink_in(rootfd: RawFd, target: &str, link: &str) -> Result<()> {
    match nix::unistd::symlinkat(target, bfd(rootfd), link) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EEXIST) => {
            let _ =
                nix::unistd::unlinkat(bfd(rootfd), link, nix::unistd::UnlinkatFlags::NoRemoveDir);
            nix::unistd::symlinkat(target, bfd(rootfd), link)
                .with_ctx(|| format!("symlink /dev/{link} -> {target}"))
        }
        Err(e) => Err(Error::sys(format!("symlink /dev/{link} -> {target}"), e)),
    }
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    plan: &RootfsPlan,
    rootfd: RawFd,
    devdir: Option<&OwnedFd>,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("/dev"));
    let name = path
        .file_name()
        .ok_or_else(|| Error::Config(format!("device path {path:?} has no file name")))?;
    if plan.userns {
        // mknod is not permitted in a user namespace: bind the host's node onto an empty file.
        let target = ensure_target(rootfd, path, false)?;
        mount(
            Some(path),
            &fd_path(&target),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_ctx(|| format!("bind mount device {}", path.display()))?;
        return Ok(());
    }
    // The common case is /dev itself on the fresh tmpfs: reuse one fd for it.
    let pfd = match devdir {
        Some(d) if parent == Path::new("/dev") => d.try_clone().ctx("dup /dev fd")?,
        _ => ensure_target(rootfd, parent, true)?,
    };
    let dev = nix::sys::stat::makedev(major, minor);
    let c = sys::cstr(Path::new(name))?;
    let mknod = || {
        // SAFETY: valid dirfd (O_PATH works as a dirfd) and NUL-terminated name.
        unsafe {
            libc::mknodat(
                pfd.as_raw_fd(),
                c.as_ptr(),
                kind.bits() | (mode & 0o7777),
                dev,
            )
        }
    };
    // umask is 0 while devices are made (see create_devices), so the mode is exact.
    if mknod() != 0 {
        let e = nix::errno::Errno::last();
        if e != nix::errno::Errno::EEXIST {
            return Err(Error::sys(
                format!("mknod {} ({major}:{minor})", path.display()),
                e,
            ));
        }
        // Something of the image sits there: replace it (never following a symlink).
        let _ = nix::unistd::unlinkat(pfd.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        if mknod() != 0 {
            return Err(Error::sys(
                format!("mknod {} ({major}:{minor})", path.display()),
                nix::errno::Errno::last(),
            ));
        }
    }
    // We are root (no user namespace here): the node is 0:0 already.
    if uid.unwrap_or(0) != 0 || gid.unwrap_or(0) != 0 {
        nix::unistd::fchownat(
            pfd.as_fd(),
            Path::new(name),
            uid.map(nix::unistd::Uid::from_raw),
            gid.map(nix::unistd::Gid::from_raw),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .with_ctx(|| format!("chown {}", path.display()))?;
    }
    Ok(())
}

/// Phase 2: switch root. With `no_pivot`, MS_MOVE the rootfs onto / and chroot.
pub fn switch_root(rootfs: &Path, no_pivot: bool) -> Result<()> {
    if no_pivot {
        nix::unistd::chdir(rootfs).with_ctx(|| format!("chdir {}", rootfs.display()))?;
        mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .ctx("move rootfs onto / (--no-pivot)")?;
        nix::unistd::chroot(".").ctx("chroot (--no-pivot)")?;
        nix::unistd::chdir("/").ctx("chdir /")?;
        return Ok(());
    }
    let old = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx("open old root /")?;
    let new = nix::fcntl::open(
        rootfs,
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("open rootfs {}", rootfs.display()))?;
    nix::unistd::fchdir(&new).ctx("fchdir rootfs")?;
    nix::unistd::pivot_root(".", ".").with_ctx(|| format!("pivot_root {}", rootfs.display()))?;
    nix::unistd::fchdir(&old).ctx("fchdir old root")?;
    // Make the old root a slave so unmounting it does not propagate to the host.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx("make old root rslave")?;
    umount2(".", MntFlags::MNT_DETACH).ctx("detach old root")?;
    nix::unistd::chdir("/").ctx("chdir /")?;
    Ok(())
}

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Phase 3, inside the new root: sysctls, masked and read-only paths, read-only root,
/// final rootfs propagation.
pub fn finalize(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
        let mut keys: Vec<_> = sysctl.keys().collect();
        keys.sort();
        for k in keys {
            let p = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
            std::fs::write(&p, &sysctl[k]).with_ctx(|| {
                format!(
                    "field linux.sysctl: set {k}={} ({})",
                    sysctl[k],
                    p.display()
                )
            })?;
        }
    }
    let masked = linux
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default();
    if !masked.is_empty() {
        verify_proc()?;
        let null = open_verified_null()?;
        for p in &masked {
            mask_path(Path::new(p), &null)?;
        }
    }
    for p in linux
        .and_then(|l| l.readonly_paths().clone())
        .unwrap_or_default()
    {
        readonly_path(Path::new(&p))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let locked = locked_flags(Path::new("/"));
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked,
            None::<&str>,
        )
        .ctx("remount / read-only (root.readonly)")?;
    }
    if let Some(p) = linux.and_then(|l| l.rootfs_propagation().clone()) {
        if let Some(f) = propagation_flag(&p) {
            if !f.contains(MsFlags::MS_PRIVATE) {
                mount(None::<&str>, "/", None::<&str>, f, None::<&str>)
                    .with_ctx(|| format!("set rootfs propagation {p}"))?;
            }
        }
    }
    Ok(())
}

/// /proc inside the container must be a real procfs before we trust paths under it.
fn verify_proc() -> Result<()> {
    match nix::sys::statfs::statfs("/proc") {
        Ok(s) if s.filesystem_type().0 == PROC_SUPER_MAGIC => Ok(()),
        Ok(_) => Err(Error::Other(
            "/proc in the container is not a procfs: refusing to mask paths under it".into(),
        )),
        Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::sys("statfs /proc", e)),
    }
}

/// /dev/null must be the real 1:3 character device before we bind it over anything.
fn open_verified_null() -> Result<OwnedFd> {
    let fd = sys::openat2(
        libc::AT_FDCWD,
        Path::new("/dev/null"),
        libc::O_PATH,
        sys::RESOLVE_NO_SYMLINKS,
    )
    .ctx("open /dev/null for masking")?;
    let st = nix::sys::stat::fstat(fd.as_fd()).ctx("fstat /dev/null")?;
    let is_chr = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
    if !is_chr || nix::sys::stat::major(st.st_rdev) != 1 || nix::sys::stat::minor(st.st_rdev) != 3 {
        return Err(Error::Other(
            "/dev/null in the container is not the 1:3 character device: refusing to use it for masking".into(),
        ));
    }
    Ok(fd)
}

fn mask_path(p: &Path, null: &OwnedFd) -> Result<()> {
    let fd = match sys::openat2(libc::AT_FDCWD, p, libc::O_PATH, sys::RESOLVE_NO_SYMLINKS) {
        Ok(fd) => fd,
        Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(()),
        Err(e) if e.errno() == Some(libc::ELOOP) => {
            return Err(Error::Other(format!(
                "masked path {} is a symlink: refused",
                p.display()
            )))
        }
        Err(e) => return Err(prefix(e, &format!("masked path {}", p.display()))),
    };
    let tp = fd_path(&fd);
    if is_dir_fd(&fd) {
        mount(
            Some("tmpfs"),
            &tp,
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("size=0,mode=0755"),
        )
        .with_ctx(|| format!("mask directory {}", p.display()))?;
    } else {
        mount(
            Some(&fd_path(null)),
            &tp,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_ctx(|| format!("mask {} with /dev/null", p.display()))?;
    }
    Ok(())
}

fn readonly_path(p: &Path) -> Result<()> {
    let fd = match sys::openat2(libc::AT_FDCWD, p, libc::O_PATH, sys::RESOLVE_NO_SYMLINKS) {
        Ok(fd) => fd,
        Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(prefix(e, &format!("read-only path {}", p.display()))),
    };
    let tp = fd_path(&fd);
    mount(
        Some(&tp),
        &tp,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_ctx(|| format!("bind {} for read-only", p.display()))?;
    let fd2 = sys::openat2(libc::AT_FDCWD, p, libc::O_PATH, sys::RESOLVE_NO_SYMLINKS)?;
    remount_bind(&fd_path(&fd2), MsFlags::MS_RDONLY | locked_flags(p), p)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn options() {
        let o = parse_options(&[
            "rbind".into(),
            "ro".into(),
            "rslave".into(),
            "size=1k".into(),
        ])
        .unwrap();
        assert!(o
            .flags
            .contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(o.data, vec!["size=1k".to_string()]);
        let o = parse_options(&["ro".into(), "rw".into()]).unwrap();
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(parse_options(&["idmap".into()]).is_err());
    }
}
