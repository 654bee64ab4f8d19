//! Network namespaces of `--network none` containers (the default until bridge networking):
//! made by berthd with the loopback interface up (as Docker does: 127.0.0.1 and ::1 work in
//! the container), bind-mounted under `<exec-root>/netns/`, handed to the runtime as a path.
//!
//! A few are made ahead of time by the keeper thread (creating a namespace is ~0.4 ms of kernel
//! work that `docker run` would otherwise wait for). Each is used by one container run only and
//! released (unmounted: the kernel frees it) when that run is over.
use crate::util::internal;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// How many namespaces are kept ready.
const READY: usize = 2;

pub(crate) struct NetnsPool {
    dir: PathBuf,
    ready: Mutex<Vec<PathBuf>>,
    /// Drained for good (daemon shutdown): no more ready ones.
    closed: std::sync::atomic::AtomicBool,
    /// Namespaces of finished runs, released by the keeper thread (an unmount waits for an
    /// RCU grace period: not on the exit path) or at the latest by `drain`.
    to_release: Mutex<Vec<PathBuf>>,
}

impl NetnsPool {
    pub(crate) fn new(dir: PathBuf) -> Result<NetnsPool> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| internal(format!("create {}", dir.display()), e))?;
        Ok(NetnsPool {
            dir,
            ready: Mutex::new(Vec::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
            to_release: Mutex::new(Vec::new()),
        })
    }

    /// Release every namespace file no running container uses (`keep`): leftovers of a crash
    /// or of the previous daemon's ready ones. Called once at start-up.
    pub(crate) fn release_unused(&self, keep: &[PathBuf]) {
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for ent in rd.flatten() {
                let p = ent.path();
                if !keep.contains(&p) {
                    release(&p);
                }
            }
        }
    }

    /// A fresh namespace: a ready one, or one made now. Released when dropped, unless
    /// [`Netns::keep`] hands it on.
    pub(crate) fn take(&self) -> Result<Netns> {
        if let Some(p) = self.ready.lock().ok().and_then(|mut r| r.pop()) {
            return Ok(Netns(Some(p)));
        }
        self.make().map(|p| Netns(Some(p)))
    }

    /// Top the ready list up (keeper thread).
    pub(crate) fn fill(&self) {
        while !self.closed.load(Ordering::SeqCst)
            && self.ready.lock().map(|r| r.len() < READY).unwrap_or(false)
        {
            match self.make() {
                Ok(p) => match self.ready.lock() {
                    // (checked under the lock `drain` takes: nothing is added after it)
                    Ok(mut r) if !self.closed.load(Ordering::SeqCst) => r.push(p),
                    _ => release(&p),
                },
                Err(e) => {
                    tracing::warn!("prepare a network namespace: {e}");
                    return;
                }
            }
        }
    }

    /// Queue the namespace of a finished run for [`NetnsPool::release_queued`].
    pub(crate) fn release_later(&self, p: PathBuf) {
        match self.to_release.lock() {
            Ok(mut q) => q.push(p),
            Err(_) => release(&p),
        }
    }

    /// Release the queued namespaces of finished runs.
    pub(crate) fn release_queued(&self) {
        let q: Vec<PathBuf> = self
            .to_release
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default();
        for p in q {
            release(&p);
        }
    }

    /// Release the ready ones and the queued ones (daemon shutdown).
    pub(crate) fn drain(&self) {
        self.release_queued();
        let v: Vec<PathBuf> = self
            .ready
            .lock()
            .map(|mut r| {
                self.closed.store(true, Ordering::SeqCst);
                r.drain(..).collect()
            })
            .unwrap_or_default();
        for p in v {
            release(&p);
        }
    }

    fn make(&self) -> Result<PathBuf> {
        // Unique in the process, not only in this pool: two engines of one process on the
        // same exec root (tests reopen one while the old one shuts down) must not share names.
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let n = SERIAL.fetch_add(1, Ordering::SeqCst);
        let path = self.dir.join(format!("ns-{}-{n}", std::process::id()));
        std::fs::File::create(&path)
            .map_err(|e| internal(format!("create {}", path.display()), e))?;
        let p = path.clone();
        // unshare(CLONE_NEWNET) moves only the calling thread: a short-lived one of our own.
        let r = std::thread::Builder::new()
            .name("netns".into())
            .spawn(move || -> Result<()> {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| internal("unshare(CLONE_NEWNET)", e))?;
                loopback_up()?;
                nix::mount::mount(
                    Some("/proc/thread-self/ns/net"),
                    &p,
                    None::<&str>,
                    nix::mount::MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| internal(format!("bind the namespace to {}", p.display()), e))
            })
            .map_err(|e| internal("spawn a thread", e))?
            .join()
            .map_err(|_| Error::Internal("network namespace thread panicked".into()))?;
        if let Err(e) = r {
            release(&path);
            return Err(e);
        }
        Ok(path)
    }
}

/// A namespace of one container run; dropping it releases it.
pub(crate) struct Netns(Option<PathBuf>);

impl Netns {
    pub(crate) fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }
    /// Hand the namespace on (to the container's record, released at the run's end).
    pub(crate) fn keep(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            release(&p);
        }
    }
}

/// Unmount and remove a namespace file (the kernel frees the namespace when nothing uses it).
pub(crate) fn release(p: &Path) {
    let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(p);
}

/// `ip link set lo up` in the calling thread's network namespace (the kernel then gives it
/// 127.0.0.1/8 and ::1).
fn loopback_up() -> Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: socket(2) with constant arguments; the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(internal(
            "socket for SIOCSIFFLAGS",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we pass, which outlives the
    // calls; ifru_flags is the union member these requests use.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            return Err(internal("SIOCGIFFLAGS lo", std::io::Error::last_os_error()));
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) < 0 {
            return Err(internal(
                "SIOCSIFFLAGS lo up",
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}
