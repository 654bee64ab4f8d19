//! The provider process: one per container, forked from the runtime (which is
//! single-threaded), detached (setsid, one fork: no daemon; the caller exits or reaps every child). The
//! runtime mounts the FUSE file system itself (so a failure is its to report), the provider
//! answers the kernel's INIT, then serves until the container's init is gone, unmounts and
//! exits.

use crate::cgroup::CgroupPaths;
use crate::fuse::{Server, Step};
use crate::sysinfo::Sysinfo;
use crate::view::View;
use crate::Error;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A started provider, until the runtime hands it the container's init.
pub struct Provider {
    dir: PathBuf,
    /// The init's pid, to the provider.
    init_tx: OwnedFd,
}

fn sys(call: &'static str, r: libc::c_int) -> Result<libc::c_int, Error> {
    if r < 0 {
        Err(Error::Sys {
            call,
            source: std::io::Error::last_os_error(),
        })
    } else {
        Ok(r)
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    let mut p = [0; 2];
    // SAFETY: pipe2 fills the two-element array we own.
    sys("pipe2", unsafe {
        libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC)
    })?;
    // SAFETY: both fds were just made by pipe2 and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) })
}

fn cpath(p: &Path) -> Result<CString, Error> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::Path(p.to_path_buf()))
}

/// Detach-unmount the provider's directory (the runtime's delete does it too, in case the
/// provider is gone). Not mounted is not an error.
pub fn unmount(dir: &Path) {
    if let Ok(c) = cpath(dir) {
        // SAFETY: umount2 on a NUL-terminated path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

impl Provider {
    /// Mount a FUSE file system on `dir` (made if missing) and start its provider for the
    /// cgroup `cg`, without waiting for it (see `fork`). The caller must be single-threaded
    /// (the provider is a fork running Rust code).
    /// The provider writes its pid (host namespace) to `pid_file` once it answered INIT.
    pub fn start(dir: &Path, pid_file: &Path, cg: CgroupPaths) -> Result<Provider, Error> {
        Self::start_with(dir, pid_file, cg, None)
    }

    /// [`Provider::start`], also serving sysinfo(2): `sysinfo` is the provider's end of a
    /// socket that will carry the container's seccomp listener ([`crate::sysinfo`]).
    pub fn start_with(
        dir: &Path,
        pid_file: &Path,
        cg: CgroupPaths,
        sysinfo: Option<OwnedFd>,
    ) -> Result<Provider, Error> {
        match std::fs::create_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Io {
                    what: format!("create {}", dir.display()),
                    source: e,
                })
            }
            _ => {}
        }
        let dev = c"/dev/fuse";
        // SAFETY: open on a NUL-terminated path.
        let fd = unsafe { libc::open(dev.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(Error::NoFuse(std::io::Error::last_os_error()));
        }
        // SAFETY: fd was just opened and is owned by nothing else.
        let fuse = unsafe { OwnedFd::from_raw_fd(fd) };
        let target = cpath(dir)?;
        let opts = CString::new(format!(
            "fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions"
        ))
        .map_err(|_| Error::Path(dir.to_path_buf()))?;
        // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
        let r = unsafe {
            libc::mount(
                c"berth-procview".as_ptr(),
                target.as_ptr(),
                c"fuse".as_ptr(),
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                opts.as_ptr().cast(),
            )
        };
        if r < 0 {
            return Err(Error::Mount {
                dir: dir.to_path_buf(),
                source: std::io::Error::last_os_error(),
            });
        }
        match Self::fork(dir, pid_file, fuse, cg, sysinfo) {
            Ok(p) => Ok(p),
            Err(e) => {
                unmount(dir);
                Err(e)
            }
        }
    }

    fn fork(
        dir: &Path,
        pid_file: &Path,
        fuse: OwnedFd,
        cg: CgroupPaths,
        sysinfo: Option<OwnedFd>,
    ) -> Result<Provider, Error> {
        let (init_rx, init_tx) = pipe()?;
        // SAFETY: the caller is single-threaded (documented): the child may run Rust code.
        let child = sys("fork", unsafe { libc::fork() })?;
        if child == 0 {
            // One fork, no intermediate (each new process is one more wait for a CPU on a
            // busy host before the binds are answered): the provider leaves the caller's
            // session itself; the caller exits (berth-runtime create) or reaps every child
            // (berth-monitor, a subreaper), and so does whoever inherits it.
            // SAFETY: setsid in the (single-threaded) child.
            unsafe { libc::setsid() };
            drop(init_tx);
            let code = match main(dir, pid_file, fuse, init_rx, cg, sysinfo) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: leaving the provider without running the runtime's atexit handlers.
            unsafe { libc::_exit(code) };
        }
        // Nothing waits for the provider here: until it answers the kernel's INIT, requests
        // on the mount (the init's bind mounts) queue in the kernel. If it dies first, the
        // connection is gone, the binds fail and the container keeps the host's files.
        drop(fuse);
        drop(sysinfo);
        drop(init_rx);
        Ok(Provider {
            dir: dir.to_path_buf(),
            init_tx,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Hand the provider the container's init: it serves until that process is gone.
    pub fn attach(self, init: i32) -> Result<(), Error> {
        let b = init.to_ne_bytes();
        // SAFETY: writing a 4-byte buffer we own to our pipe (atomic below PIPE_BUF).
        let n = unsafe { libc::write(self.init_tx.as_raw_fd(), b.as_ptr().cast(), 4) };
        if n != 4 {
            return Err(Error::Sys {
                call: "write the init's pid to the provider",
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }
}

/// Dropping a provider that was not attached (the create failed) closes its pipe: it
/// unmounts and exits on its own.
fn detach_from_caller(keep: &[RawFd]) {
    // stdio -> /dev/null: never hold the container's or the caller's pipes open.
    // SAFETY: open/dup2/close on fds of this process only.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            if null > 2 {
                libc::close(null);
            }
        }
    }
    let mut keep: Vec<RawFd> = keep.to_vec();
    keep.sort();
    let mut from = 3u32;
    for k in keep {
        if k as u32 > from {
            // SAFETY: closing inherited fds the provider does not use.
            unsafe { libc::syscall(libc::SYS_close_range, from, k as u32 - 1, 0) };
        }
        from = k as u32 + 1;
    }
    // SAFETY: as above, everything above the last kept fd.
    unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0) };
    // SAFETY: prctl/sigprocmask/chdir affecting only this process.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"berth-procview".as_ptr(), 0, 0, 0);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGCHLD] {
            libc::signal(s, libc::SIG_DFL);
        }
        libc::chdir(c"/".as_ptr());
    }
}

fn main(
    dir: &Path,
    pid_file: &Path,
    fuse: OwnedFd,
    init_rx: OwnedFd,
    cg: CgroupPaths,
    sysinfo: Option<OwnedFd>,
) -> Result<(), Error> {
    let mut keep = vec![fuse.as_raw_fd(), init_rx.as_raw_fd()];
    keep.extend(sysinfo.as_ref().map(|s| s.as_raw_fd()));
    detach_from_caller(&keep);
    let mut view = View::new(cg);
    let mut server = Server::new(fuse);
    let mut sysinfo = Sysinfo::new(sysinfo);
    let r = serve(&mut server, &mut view, pid_file, init_rx, &mut sysinfo);
    unmount(dir);
    r
}

fn serve(
    server: &mut Server,
    view: &mut View,
    pid_file: &Path,
    init_rx: OwnedFd,
    sysinfo: &mut Sysinfo,
) -> Result<(), Error> {
    let io = |e| Error::Sys {
        call: "serve /dev/fuse",
        source: e,
    };
    loop {
        match server.handle_one(view).map_err(io)? {
            Step::Initialised => break,
            Step::Gone => return Ok(()),
            Step::Continue => {}
        }
    }
    // For operators (and tests): which process serves this container. Written before the
    // init's bind mounts are answered, so it exists once the container has started.
    let _ = std::fs::write(pid_file, std::process::id().to_string());
    // Until the runtime names the init, watch its pipe; then the init's pidfd.
    let mut watch = init_rx;
    let mut have_init = false;
    let mut fds = Vec::with_capacity(4);
    let mut trimmed = false;
    loop {
        fds.clear();
        fds.extend([
            libc::pollfd {
                fd: server.raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: watch.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ]);
        sysinfo.pollfds(&mut fds);
        // SAFETY: fds.len() valid pollfds.
        let r = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                view.next_sample_in_ms(),
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(Error::Sys {
                call: "poll",
                source: e,
            });
        }
        if r == 0 {
            if !trimmed {
                // Give back the heap the runtime freed before the fork (the rest stays
                // shared with the runtime until it exits), once idle: not on the start path.
                // SAFETY: malloc_trim only releases free memory of this process.
                unsafe { libc::malloc_trim(0) };
                trimmed = true;
            }
            view.sample();
            continue;
        }
        if fds[0].revents != 0 && server.handle_one(view).map_err(io)? == Step::Gone {
            return Ok(());
        }
        sysinfo.handle(&fds[2..], || view.sysinfo_figures());
        if fds[1].revents == 0 {
            continue;
        }
        if have_init {
            return Ok(()); // the init exited
        }
        let mut b = [0u8; 4];
        // SAFETY: reading into a 4-byte buffer we own.
        let n = unsafe { libc::read(watch.as_raw_fd(), b.as_mut_ptr().cast(), 4) };
        if n != 4 {
            return Ok(()); // the runtime gave up on the container
        }
        let init = i32::from_ne_bytes(b);
        view.set_init(init as u32);
        // SAFETY: pidfd_open has no memory effects.
        let pfd = unsafe { libc::syscall(libc::SYS_pidfd_open, init, 0) };
        if pfd < 0 {
            return Ok(()); // already gone
        }
        // SAFETY: a new pidfd owned by nothing else.
        watch = unsafe { OwnedFd::from_raw_fd(pfd as RawFd) };
        have_init = true;
    }
}
