//! cgroup v2 backend: one directory in the unified hierarchy. One module per controller.

mod cpu;
mod devices;
mod freezer;
mod hugetlb;
mod io;
mod memory;
mod stats;
mod unified;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use crate::backend::Backend;
use crate::controllers::{pids, rdma};
use crate::fsutil::{self, flat_keyed, keyed, write, write_if_exists};
use crate::{mountinfo, Error, Result, Stats};

/// The v2 backend: a view of the persisted unified directory.
pub(crate) struct V2<'a> {
    dir: Option<&'a Path>,
}

impl<'a> V2<'a> {
    pub(crate) fn new(dir: Option<&'a Path>) -> V2<'a> {
        V2 { dir }
    }

    fn dir(&self) -> Result<&'a Path> {
        self.dir.ok_or(Error::NoCgroups)
    }
}

impl Backend for V2<'_> {
    fn dirs(&self) -> Vec<&Path> {
        self.dir.into_iter().collect()
    }

    fn create(&self, made: &mut Vec<PathBuf>) -> Result<()> {
        let dir = self.dir()?;
        let root = mountinfo::cgroup_mounts()?
            .into_iter()
            .find(|m| m.v2)
            .map(|m| m.mountpoint)
            .ok_or(Error::NoCgroups)?;
        create_with_controllers(&root, dir, made)
    }

    fn apply(&self, r: &LinuxResources, warnings: &mut Vec<String>) -> Result<()> {
        let d = self.dir()?;
        // What can be refused without a write is refused before the first write.
        if let Some(c) = r.cpu() {
            cpu::check(c)?;
        }
        if let Some(m) = r.memory() {
            memory::check(m)?;
        }
        if let Some(m) = r.memory() {
            memory::apply(d, m, warnings)?;
        }
        if let Some(c) = r.cpu() {
            cpu::apply(d, c)?;
        }
        if let Some(p) = r.pids() {
            pids::write_max(d, p)?;
        }
        if let Some(b) = r.block_io() {
            io::apply(d, b, warnings)?;
        }
        hugetlb::apply(d, r.hugepage_limits().as_deref().unwrap_or(&[]))?;
        if let Some(n) = r.network() {
            if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                warnings.push(
                    "linux.resources.network (net_cls/net_prio) is ignored on cgroup v2".into(),
                );
            }
        }
        rdma::write_max(d, r)?;
        if let Some(u) = r.unified() {
            unified::apply(d, u)?;
        }
        if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
            devices::apply(d, r)?;
        }
        Ok(())
    }

    fn v2_dir_fd(&self) -> Result<Option<OwnedFd>> {
        match self.dir {
            Some(d) => Ok(Some(open_dir(d)?)),
            None => Ok(None),
        }
    }

    fn freeze(&self) -> Result<()> {
        freezer::set(self.dir()?, true)
    }

    fn thaw(&self) -> Result<()> {
        freezer::set(self.dir()?, false)
    }

    fn frozen(&self) -> Result<bool> {
        freezer::frozen(self.dir()?)
    }

    fn procs_dir(&self) -> Result<&Path> {
        self.dir()
    }

    fn kill_in_kernel(&self, sig: i32) -> Result<bool> {
        if sig != libc::SIGKILL {
            return Ok(false);
        }
        write_if_exists(self.dir()?, "cgroup.kill", "1", "cgroup.kill")
    }

    fn can_freeze(&self) -> bool {
        true
    }

    fn probe_dir(&self) -> Option<&Path> {
        self.dir
    }

    fn stats(&self) -> Result<Stats> {
        stats::read(self.dir()?)
    }

    fn oom_kill_count(&self) -> Result<u64> {
        let s = fsutil::read(&self.dir()?.join("memory.events"))?;
        Ok(keyed(&flat_keyed(&s), "oom_kill"))
    }
}

/// Create `dir` below the hierarchy `root` one level at a time, enabling every available
/// controller in `cgroup.subtree_control` of each ancestor (root down to dir's parent) so `dir`
/// gets the controllers' files. Pushes the directories it creates onto `created`.
fn create_with_controllers(root: &Path, dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let rel = dir.strip_prefix(root).map_err(|_| Error::Invalid {
        field: "linux.cgroupsPath".into(),
        reason: format!("{} is not inside {}", dir.display(), root.display()),
    })?;
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        enable_controllers(&cur)?;
        cur.push(c);
        match std::fs::create_dir(&cur) {
            Ok(()) => created.push(cur.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(Error::Io {
                    op: "mkdir",
                    path: cur,
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Enable in `dir`'s `cgroup.subtree_control` every controller of its `cgroup.controllers`
/// that is not enabled yet.
fn enable_controllers(dir: &Path) -> Result<()> {
    let avail = fsutil::read(&dir.join("cgroup.controllers"))?;
    let enabled = fsutil::read(&dir.join("cgroup.subtree_control"))?;
    let missing = missing_controllers(&avail, &enabled);
    if missing.is_empty() {
        return Ok(());
    }
    let all: String = missing.iter().map(|c| format!("+{c} ")).collect();
    if write(
        dir,
        "cgroup.subtree_control",
        all.trim_end(),
        "cgroup.subtree_control",
    )
    .is_err()
    {
        // One at a time: some can fail (e.g. when the parent has processes of its own); a
        // resource write for a controller that stayed off fails later with an error naming
        // the field.
        for c in missing {
            let _ = write(
                dir,
                "cgroup.subtree_control",
                &format!("+{c}"),
                "cgroup.subtree_control",
            );
        }
    }
    Ok(())
}

/// The controllers in `avail` (cgroup.controllers) not in `enabled` (cgroup.subtree_control).
fn missing_controllers<'a>(avail: &'a str, enabled: &str) -> Vec<&'a str> {
    avail
        .split_whitespace()
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .collect()
}

/// A spec value for a v2 file: negative (-1) is "max".
fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// An `O_PATH|O_DIRECTORY|O_CLOEXEC` fd of `d`.
fn open_dir(d: &Path) -> Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(d.as_os_str().as_bytes()).map_err(|_| Error::Invalid {
        field: "cgroup path".into(),
        reason: format!("{} contains a NUL byte", d.display()),
    })?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::Io {
            op: "open",
            path: d.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: `fd` was just returned by open(2) and is owned by nobody else.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_missing_controllers_are_enabled() {
        assert_eq!(
            missing_controllers("cpuset cpu io memory pids\n", "cpu memory\n"),
            ["cpuset", "io", "pids"]
        );
        assert!(missing_controllers("cpu\n", "cpu\n").is_empty());
        assert!(missing_controllers("", "").is_empty());
    }

    #[test]
    fn negative_is_max() {
        assert_eq!(max_or(-1), "max");
        assert_eq!(max_or(0), "0");
        assert_eq!(max_or(4096), "4096");
    }

    #[test]
    fn a_view_without_a_directory_fails_clearly() {
        let b = V2::new(None);
        assert!(b.dirs().is_empty());
        assert!(b.v2_dir_fd().unwrap().is_none());
        assert!(matches!(b.freeze(), Err(Error::NoCgroups)));
        assert!(matches!(b.procs_dir(), Err(Error::NoCgroups)));
        assert!(b.probe_dir().is_none());
    }
}
