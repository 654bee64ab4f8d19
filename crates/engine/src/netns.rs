//! Network namespaces of `--network none` containers (the default until bridge networking):
//! made by berthd with the loopback interface up (as Docker does: 127.0.0.1 and ::1 work in
//! the container) and held by an open file descriptor, never by a path in the file system.
//!
//! The runtime is given `/proc/<berthd>/fd/<n>` ([`Netns::path`]): nothing can unmount or
//! remove it from under the daemon, and nothing outlives its holders — the namespace lives
//! while berthd holds the fd or a process of the container is in it, and the kernel frees it
//! after both are gone (no mount to leak, also across a crash of berthd).
//!
//! A few are made ahead of time by the keeper thread (creating a namespace is ~0.4 ms of kernel
//! work that `docker run` would otherwise wait for). Each is used by one container run only:
//! the run's task holds it until the container runs (its init joined it at create), then lets
//! go of it.
//!
//! Older berthd versions bind-mounted them under `<exec-root>/netns/`; such a mount (of a
//! container still running from before an upgrade) is released when that container exits
//! ([`NetnsPool::release_later`]), or at start-up when no container uses it.
use crate::util::internal;
use crate::{Error, Result};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// How many namespaces are kept ready.
const READY: usize = 2;

/// One network namespace, held open. Dropping it lets go of it (the kernel frees the namespace
/// when nothing else holds it).
#[derive(Debug)]
pub(crate) struct Netns {
    fd: OwnedFd,
    dev: u64,
    ino: u64,
}

impl Netns {
    #[allow(dead_code)] // (for bridge networking: links are moved in by fd)
    /// The namespace's descriptor: for `setns(2)`, or `IFLA_NET_NS_FD` to move a link into it.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// A path for other processes (the runtime's `linux.namespaces[].path`):
    /// `/proc/<berthd>/fd/<n>`. Valid while this value lives; opening it needs root (ptrace
    /// read access to berthd), which the runtime has.
    pub(crate) fn path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }

    #[allow(dead_code)] // (for bridge networking and tests)
    /// The namespace's identity (device and inode of its nsfs file): equal to the
    /// `st_dev`/`st_ino` of `/proc/<pid>/ns/net` of every process in it.
    pub(crate) fn id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// The namespace `/proc/thread-self/ns/net` names (the calling thread's).
    fn of_this_thread() -> Result<Netns> {
        let p = "/proc/thread-self/ns/net";
        let f = std::fs::File::open(p).map_err(|e| internal(format!("open {p}"), e))?;
        let m = f.metadata().map_err(|e| internal(format!("stat {p}"), e))?;
        Ok(Netns {
            dev: m.dev(),
            ino: m.ino(),
            fd: OwnedFd::from(f),
        })
    }

    /// A new namespace with its loopback interface up.
    fn make() -> Result<Netns> {
        // unshare(CLONE_NEWNET) moves only the calling thread: a short-lived one of our own.
        std::thread::Builder::new()
            .name("netns".into())
            .spawn(|| -> Result<Netns> {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| internal("unshare(CLONE_NEWNET)", e))?;
                loopback_up()?;
                Netns::of_this_thread()
            })
            .map_err(|e| internal("spawn a thread", e))?
            .join()
            .map_err(|_| Error::Internal("network namespace thread panicked".into()))?
    }
}

/// The ready namespaces and the release of old-style (bind-mounted) ones.
pub(crate) struct NetnsPool {
    /// Where older berthd versions bind-mounted them.
    legacy_dir: PathBuf,
    ready: Mutex<Vec<Netns>>,
    /// Drained for good (daemon shutdown): no more ready ones.
    closed: AtomicBool,
    /// Old-style namespaces of finished runs, released by the keeper thread (an unmount waits
    /// for an RCU grace period: not on the exit path) or at the latest by `drain`.
    to_release: Mutex<Vec<PathBuf>>,
}

impl NetnsPool {
    pub(crate) fn new(legacy_dir: PathBuf) -> NetnsPool {
        NetnsPool {
            legacy_dir,
            ready: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            to_release: Mutex::new(Vec::new()),
        }
    }

    /// Release every old-style namespace file no running container uses (`keep`): leftovers
    /// of a crash or of an older daemon. Called once at start-up.
    pub(crate) fn release_unused(&self, keep: &[PathBuf]) {
        if let Ok(rd) = std::fs::read_dir(&self.legacy_dir) {
            for ent in rd.flatten() {
                let p = ent.path();
                if !keep.contains(&p) {
                    release_mount(&p);
                }
            }
        }
        // Gone once empty (nothing makes files there any more).
        let _ = std::fs::remove_dir(&self.legacy_dir);
    }

    /// A fresh namespace: a ready one, or one made now.
    pub(crate) fn take(&self) -> Result<Netns> {
        if let Some(n) = self.ready.lock().ok().and_then(|mut r| r.pop()) {
            return Ok(n);
        }
        Netns::make()
    }

    /// How many are ready now.
    pub(crate) fn ready_count(&self) -> usize {
        self.ready.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Top the ready list up (keeper thread).
    pub(crate) fn fill(&self) {
        while !self.closed.load(Ordering::SeqCst) && self.ready_count() < READY {
            match Netns::make() {
                Ok(n) => {
                    if let Ok(mut r) = self.ready.lock() {
                        // (checked under the lock `drain` takes: nothing is added after it)
                        if !self.closed.load(Ordering::SeqCst) {
                            r.push(n);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!("prepare a network namespace: {e}");
                    return;
                }
            }
        }
    }

    /// Queue an old-style namespace (bind mount) of a finished run for
    /// [`NetnsPool::release_queued`].
    pub(crate) fn release_later(&self, p: PathBuf) {
        match self.to_release.lock() {
            Ok(mut q) => q.push(p),
            Err(_) => release_mount(&p),
        }
    }

    /// Release the queued old-style namespaces of finished runs.
    pub(crate) fn release_queued(&self) {
        let q: Vec<PathBuf> = self
            .to_release
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default();
        for p in q {
            release_mount(&p);
        }
    }

    /// Let go of the ready ones and release the queued ones (daemon shutdown).
    pub(crate) fn drain(&self) {
        self.release_queued();
        let v: Vec<Netns> = self
            .ready
            .lock()
            .map(|mut r| {
                self.closed.store(true, Ordering::SeqCst);
                r.drain(..).collect()
            })
            .unwrap_or_default();
        drop(v);
    }
}

/// Unmount and remove an old-style namespace file.
fn release_mount(p: &Path) {
    let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(p);
}

/// `ip link set lo up` in the calling thread's network namespace (the kernel then gives it
/// 127.0.0.1/8 and ::1).
fn loopback_up() -> Result<()> {
    use std::os::fd::FromRawFd;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_is_new_and_its_path_names_it() {
        let host = std::fs::metadata("/proc/self/ns/net").unwrap();
        let n = Netns::make().unwrap();
        assert_ne!(n.id(), (host.dev(), host.ino()), "not a new namespace");
        let m = std::fs::metadata(n.path()).unwrap();
        assert_eq!(
            (m.dev(), m.ino()),
            n.id(),
            "{} names another",
            n.path().display()
        );
    }
}
