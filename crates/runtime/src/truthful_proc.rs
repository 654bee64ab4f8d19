//! Truthful /proc (annotation `run.berth.truthful-proc=true`): a `berth-procview` provider
//! for the container, started by `create` before the clone (its FUSE mount is then in the
//! container's copy of the mount table) and bound over /proc/meminfo, /proc/cpuinfo, ...
//! during the mount phase. A provider that cannot start (no /dev/fuse, no FUSE module) costs
//! a warning, never the container: it keeps the host's files.
//!
//! sysinfo(2) too: the init (and each exec) loads a one-rule seccomp filter (sysinfo ->
//! USER_NOTIF) before the spec's profile and sends its listener to the provider over a
//! connection to `<state>/<id>/procview.sock` opened before the clone
//! ([`berth_procview::sysinfo`]). A kernel without seccomp user notification
//! (or FLAG_CONTINUE: before 5.5), or a profile with a listener of its own (only one per
//! process), costs a warning: sysinfo then tells the host's figures.

use crate::sys;
use berth_procview::{CgroupPaths, Provider, ANNOTATION, FILES};
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Spec;
use std::os::fd::OwnedFd;
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

/// A started provider and, when it serves sysinfo(2), the init's end of the socket the
/// listener goes over.
pub struct Started {
    pub provider: Provider,
    pub sysinfo: Option<OwnedFd>,
}

/// Why sysinfo(2) cannot be served for a container with this profile, if it cannot.
fn sysinfo_unavailable(seccomp: Option<&berth_seccomp::Filter>) -> Option<String> {
    if seccomp.is_some_and(|f| f.needs_notify()) {
        Some("the seccomp profile has a listener of its own (SCMP_ACT_NOTIFY)".to_string())
    } else {
        berth_procview::sysinfo::supported().err()
    }
}

/// The provider's listening socket for sysinfo listeners; None (and a warning) when the
/// kernel or the profile does not allow it.
fn sysinfo_listen(
    container_dir: &Path,
    seccomp: Option<&berth_seccomp::Filter>,
) -> Option<OwnedFd> {
    // Unconfined (or privileged) containers run with no seccomp filter at all, as with
    // Docker (`Seccomp: 0`): no sysinfo filter either, so sysinfo(2) keeps the host's figures.
    seccomp?;
    let r = match sysinfo_unavailable(seccomp) {
        Some(why) => Err(why),
        None => berth_procview::sysinfo::listen(container_dir).map_err(|e| {
            format!(
                "listen on {}: {e}",
                container_dir
                    .join(berth_procview::sysinfo::SOCK_NAME)
                    .display()
            )
        }),
    };
    r.map_err(|why| {
        crate::warn(&format!(
            "{ANNOTATION}: sysinfo(2) keeps the host's figures: {why}"
        ))
    })
    .ok()
}

/// For an exec into the container: a connection to its provider, when it serves sysinfo.
pub fn exec_sysinfo(
    container_dir: &Path,
    spec: &Spec,
    seccomp: Option<&berth_seccomp::Filter>,
) -> Option<OwnedFd> {
    if !wanted(spec) || seccomp.is_none() || sysinfo_unavailable(seccomp).is_some() {
        return None;
    }
    berth_procview::sysinfo::connect(container_dir).ok()
}

/// Start the provider for `cg`; None (and a warning) when it cannot run here.
pub fn start(
    container_dir: &Path,
    cg: &berth_cgroups::Cgroup,
    seccomp: Option<&berth_seccomp::Filter>,
) -> Option<Started> {
    let paths = CgroupPaths {
        v1: cg.v1_dirs().clone(),
        unified: if cg.mode() == berth_cgroups::Mode::V2 {
            cg.unified_dir().map(Path::to_path_buf)
        } else {
            None
        },
    };
    let d = dir(container_dir);
    let listen = sysinfo_listen(container_dir, seccomp);
    let serves = listen.is_some();
    match Provider::start_with(&d, &pid_file(container_dir), paths, listen) {
        Ok(p) => {
            let ours = serves
                .then(|| berth_procview::sysinfo::connect(container_dir))
                .and_then(|r| {
                    r.map_err(|e| crate::warn(&format!("{ANNOTATION}: sysinfo(2): {e}")))
                        .ok()
                });
            crate::mark("truthful /proc provider forked");
            Some(Started {
                provider: p,
                sysinfo: ours,
            })
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

/// The init, right before its seccomp profile: load the sysinfo filter and send its listener
/// to the provider. Nothing here fails the container: without the filter sysinfo tells the
/// host's figures.
pub fn install_sysinfo(sock: RawFd) {
    if let Ok(listener) = berth_procview::sysinfo::install_filter() {
        // A send that fails leaves a filter without a listener: sysinfo then fails with
        // ENOSYS, as after a provider's death (the provider is gone in both cases).
        let _ = berth_procview::sysinfo::send_fd(sock, listener.as_raw_fd());
    }
    // SAFETY: the socket is ours (inherited from the parent) and nothing else uses it.
    unsafe { libc::close(sock) };
}

/// At delete (and after a failed create): the provider's mount goes, whether or not the
/// provider is still there to take it down. Unconditionally: a stat of the mount of a dead
/// provider fails (ENOTCONN), and umount2 of what is not mounted is a harmless EINVAL.
pub fn remove(container_dir: &Path) {
    berth_procview::unmount(&dir(container_dir));
}
