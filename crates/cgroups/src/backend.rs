//! The backend trait: what a cgroup driver does for [`crate::Cgroup`].
//!
//! [`crate::Cgroup`] keeps the persisted fields and, per call, builds the backend of its mode
//! as a borrowed view of them (`v1::V1`, `v2::V2`: no allocation, no syscall) and calls it
//! through `&dyn Backend`. A new driver (a systemd backend that asks systemd for a scope
//! instead of writing cgroupfs) implements this trait and gets chosen in
//! `Cgroup::backend`; the operations common to every cgroupfs layout (adding a task,
//! listing and signalling processes, removing directories) are provided here.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use crate::{fsutil, Error, Result, Stats};

pub(crate) trait Backend {
    /// Every distinct directory of the cgroup, one per hierarchy.
    fn dirs(&self) -> Vec<&Path>;

    /// Make the directories, pushing each one made onto `made` (parents first). On error
    /// the caller removes what `made` holds.
    fn create(&self, made: &mut Vec<PathBuf>) -> Result<()>;

    /// Write `r`, already validated by `controllers::validate`. What the backend can refuse
    /// without writing (a missing controller, a field it has no file for) is refused before
    /// its first write.
    fn apply(&self, r: &LinuxResources, warnings: &mut Vec<String>) -> Result<()>;

    /// An `O_PATH` fd of the unified directory for clone3(CLONE_INTO_CGROUP); `None` where
    /// there is none (v1).
    fn v2_dir_fd(&self) -> Result<Option<OwnedFd>>;

    /// Freeze every process and wait until the kernel reports the cgroup frozen.
    fn freeze(&self) -> Result<()>;

    fn thaw(&self) -> Result<()>;

    fn frozen(&self) -> Result<bool>;

    /// The directory whose subtree's `cgroup.procs` list every process of the container.
    fn procs_dir(&self) -> Result<&Path>;

    /// Signal every process in one step when the kernel can (v2 `cgroup.kill` for SIGKILL):
    /// `Ok(true)` when done, `Ok(false)` to signal them one by one.
    fn kill_in_kernel(&self, _sig: i32) -> Result<bool> {
        Ok(false)
    }

    /// Whether [`Backend::kill_all`] can freeze the cgroup while it signals.
    fn can_freeze(&self) -> bool;

    /// The directory whose absence means the cgroup was removed meanwhile.
    fn probe_dir(&self) -> Option<&Path>;

    /// Usage figures in runc's `events --stats` shape.
    fn stats(&self) -> Result<Stats>;

    /// How many processes the kernel OOM killer killed in the cgroup.
    fn oom_kill_count(&self) -> Result<u64>;

    /// Move `pid` (>= 0; 0 is the caller) into every directory.
    fn add_task(&self, pid: i32) -> Result<()> {
        let pid = pid.to_string();
        for d in self.dirs() {
            fsutil::write(d, "cgroup.procs", &pid, "cgroup.procs")?;
        }
        Ok(())
    }

    /// Every process, including those in sub-cgroups the container made; sorted, no repeats.
    fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        collect_pids(self.procs_dir()?, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Send `sig` to every process: in the kernel when it can, otherwise with the cgroup
    /// frozen (when possible) while the signals are sent so no process can fork out of
    /// reach, then thawed. A cgroup removed meanwhile is not an error.
    fn kill_all(&self, sig: i32) -> Result<()> {
        if self.kill_in_kernel(sig)? {
            return Ok(());
        }
        let froze = self.can_freeze() && sig != libc::SIGCONT && self.freeze().is_ok();
        let res = self.pids().and_then(|pids| signal(&pids, sig));
        // A cgroup removed meanwhile (its processes ended, by this signal or not, and its
        // owner, the container's monitor, removed it) has nothing left to signal or thaw.
        let gone = || self.probe_dir().is_some_and(|d| !d.exists());
        if froze {
            if let Err(e) = self.thaw() {
                if !gone() {
                    return Err(e);
                }
            }
        }
        match res {
            Err(_) if gone() => Ok(()),
            r => r,
        }
    }

    /// Remove the directories of `created`, deepest first, after removing any sub-cgroups the
    /// container created inside its own. Directories not in `created` are never touched; a
    /// created parent that now holds someone else's cgroup is left in place.
    fn destroy(&self, created: &[PathBuf]) -> Result<()> {
        let leaves = self.dirs();
        // The container's own directories: remove their descendants first.
        for leaf in &leaves {
            if created.iter().any(|c| c == leaf) {
                remove_tree(leaf)?;
            }
        }
        for d in created.iter().rev() {
            if leaves.contains(&d.as_path()) {
                continue; // handled above
            }
            match std::fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // Another container's cgroup lives below it now: not ours to remove.
                Err(e)
                    if e.raw_os_error() == Some(libc::EBUSY)
                        || e.raw_os_error() == Some(libc::ENOTEMPTY) => {}
                Err(source) => {
                    return Err(Error::Io {
                        op: "rmdir",
                        path: d.clone(),
                        source,
                    })
                }
            }
        }
        Ok(())
    }
}

/// kill(2) each pid; pids <= 0 are skipped whatever a file says (never kill(0) or kill(-1)),
/// and a process that exited meanwhile (ESRCH) is no error.
fn signal(pids: &[i32], sig: i32) -> Result<()> {
    for &pid in pids.iter().filter(|p| **p > 0) {
        // SAFETY: kill(2) with a pid read from cgroup.procs and a signal number; no memory is
        // involved.
        let r = unsafe { libc::kill(pid, sig) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(Error::Sys {
                    call: "kill",
                    source: e,
                });
            }
        }
    }
    Ok(())
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let p = dir.join("cgroup.procs");
    let s = fsutil::read(&p)?;
    for l in s.lines() {
        let pid = l.trim().parse::<i32>().map_err(|_| Error::Parse {
            path: p.clone(),
            reason: format!("bad pid {l:?}"),
        })?;
        out.push(pid);
    }
    let readdir_err = |source| Error::Io {
        op: "readdir",
        path: dir.to_path_buf(),
        source,
    };
    for e in std::fs::read_dir(dir).map_err(readdir_err)? {
        let e = e.map_err(readdir_err)?;
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_pids(&e.path(), out)?;
        }
    }
    Ok(())
}

/// rmdir `dir` and every cgroup below it, deepest first, retrying EBUSY briefly.
fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Io {
                op: "readdir",
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for e in entries.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&e.path())?;
        }
    }
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    && start.elapsed() < Duration::from_millis(1500) =>
            {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(source) => {
                return Err(Error::Io {
                    op: "rmdir",
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}
