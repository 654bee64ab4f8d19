//! Truthful /proc (annotation `run.berth.truthful-proc=true`): a `berth-procview` provider
//! for the container, started by `create` before the clone (its FUSE mount is then in the
//! container's copy of the mount table) and bound over /proc/meminfo, /proc/cpuinfo, ...
//! during the mount phase. A provider that cannot start (no /dev/fuse, no FUSE module) costs
//! a warning, never the container: it keeps the host's files.

use crate::sys;
use berth_procview::{CgroupPaths, Provider, ANNOTATION, FILES};
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Spec;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

/// The provider's mount point: in the container's runtime state directory.
pub fn dir(container_dir: &Path) -> PathBuf {
    container_dir.join("procview")
}

/// `<container dir>/procview.pid`: the provider's pid (host namespace).
pub fn pid_file(container_dir: &Path) -> PathBuf {
    container_dir.join("procview.pid")
}

pub fn wanted(spec: &Spec) -> bool {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Start the provider for `cg`; None (and a warning) when it cannot run here.
pub fn start(container_dir: &Path, cg: &berth_cgroups::Cgroup) -> Option<Provider> {
    let paths = CgroupPaths {
        v1: cg.v1_dirs().clone(),
        unified: if cg.mode() == berth_cgroups::Mode::V2 {
            cg.unified_dir().map(Path::to_path_buf)
        } else {
            None
        },
    };
    let d = dir(container_dir);
    match Provider::start(&d, &pid_file(container_dir), paths) {
        Ok(p) => {
            crate::mark("truthful /proc provider forked");
            Some(p)
        }
        Err(e) => {
            crate::warn(&format!(
                "{ANNOTATION}: the container keeps the host's /proc files: {e}"
            ));
            let _ = std::fs::remove_dir(&d);
            None
        }
    }
}

/// Hand the provider the container's init (cloned): it serves until the init is gone.
pub fn attach(p: Provider, init: i32) {
    if let Err(e) = p.attach(init) {
        crate::warn(&format!("truthful /proc: {e}"));
    }
}

/// The init, in its mount namespace before pivot_root: bind each file over its target in the
/// rootfs (targets resolved inside the root). A target that is not there (no /sys mount, say)
/// is skipped; so is a file whose bind fails — that file stays the host's.
pub fn bind(rootfd: RawFd, provider_dir: &Path) {
    for (name, target) in FILES {
        let rel = Path::new(target.trim_start_matches('/'));
        let Ok(t) = sys::openat2(
            rootfd,
            rel,
            libc::O_PATH | libc::O_NOFOLLOW,
            sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS,
        ) else {
            continue;
        };
        let dest = PathBuf::from(format!("/proc/self/fd/{}", t.as_raw_fd()));
        let _ = mount(
            Some(&provider_dir.join(name)),
            &dest,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        );
    }
    crate::mark("child: truthful /proc bound");
}

/// At delete (and after a failed create): the provider's mount goes, whether or not the
/// provider is still there to take it down. Unconditionally: a stat of the mount of a dead
/// provider fails (ENOTCONN), and umount2 of what is not mounted is a harmless EINVAL.
pub fn remove(container_dir: &Path) {
    berth_procview::unmount(&dir(container_dir));
}
