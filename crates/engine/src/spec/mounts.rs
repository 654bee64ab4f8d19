//! The `mounts` section: Docker's default mounts, the /etc files, the init, then the
//! container's own (resolved at create, see `model::mounts`).
use super::SpecInput;
use crate::model::{MountPoint, MountType};
use crate::util::internal;
use crate::Result;
use oci_spec::runtime::Mount;
use std::path::{Path, PathBuf};

fn mount(dst: &str, typ: &str, src: impl Into<PathBuf>, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(dst.into())
        .set_typ(Some(typ.to_string()))
        .set_source(Some(src.into()))
        .set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// /dev/shm's size: `ShmSize`, 64 MiB by default.
fn shm_size(inp: &SpecInput) -> i64 {
    match inp.host.shm_size.val() {
        v if v > 0 => v,
        _ => 64 * 1024 * 1024,
    }
}

/// proc, /dev, devpts, sysfs (read-only unless privileged), cgroup, mqueue, /dev/shm.
fn defaults(inp: &SpecInput, privileged: bool) -> Vec<Mount> {
    let sys: &[&str] = if privileged {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["nosuid", "noexec", "nodev", "ro"]
    };
    let shm = format!("size={}", shm_size(inp));
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount("/sys", "sysfs", "sysfs", sys),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm],
        ),
    ]
}

/// The container's own mounts; the missing source of a `-v` bind is made (as Docker does).
fn own(mounts: &[MountPoint]) -> Result<Vec<Mount>> {
    let mut out = Vec::with_capacity(mounts.len());
    for mp in mounts {
        if mp.kind == MountType::Bind && mp.create_source && !Path::new(&mp.source).exists() {
            std::fs::create_dir_all(&mp.source)
                .map_err(|e| internal(format!("create bind source {}", mp.source), e))?;
        }
        out.push(mp.oci());
    }
    Ok(out)
}

pub(super) fn mounts(inp: &SpecInput, privileged: bool) -> Result<Vec<Mount>> {
    let mut out = defaults(inp, privileged);
    // (MOUNT_TARGETS lists the destinations of these made on the image's tree.)
    for f in ["hostname", "hosts", "resolv.conf"] {
        out.push(mount(
            &format!("/etc/{f}"),
            "bind",
            inp.etc_dir.join(f),
            &["rbind", "rprivate"],
        ));
    }
    if let (true, Some(p)) = (inp.host.init.val(), &inp.init_path) {
        out.push(mount(
            "/sbin/docker-init",
            "bind",
            p,
            &["bind", "ro", "rprivate"],
        ));
    }
    out.extend(own(inp.mounts)?);
    Ok(out)
}
