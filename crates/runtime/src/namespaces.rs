//! Namespaces: which to create (clone flags), which to join (setns on a path), and the user
//! namespace id mappings written from the parent.

use crate::error::{Context, Error, Result};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use std::os::fd::AsFd;
use std::path::PathBuf;

pub fn clone_flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// The namespace plan of a container.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    /// Namespaces created fresh with clone(2) (time is unshared later: clone cannot take it).
    pub new: Vec<LinuxNamespaceType>,
    /// Namespaces joined by path, in the order they must be joined (user first, mount last).
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
}

impl Plan {
    pub fn from_spec(spec: &Spec) -> Plan {
        let mut p = Plan::default();
        for ns in spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default()
        {
            match ns.path() {
                Some(path) => p.join.push((ns.typ(), path.clone())),
                None => p.new.push(ns.typ()),
            }
        }
        p.join.sort_by_key(|(t, _)| join_order(*t));
        p
    }

    pub fn has_new(&self, t: LinuxNamespaceType) -> bool {
        self.new.contains(&t)
    }

    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        self.has_new(t) || self.join.iter().any(|(x, _)| *x == t)
    }

    /// Flags for clone(2): every new namespace except time.
    pub fn clone_flags(&self) -> libc::c_int {
        self.new
            .iter()
            .filter(|t| **t != LinuxNamespaceType::Time)
            .fold(0, |acc, t| acc | clone_flag(*t))
    }
}

/// Whether the container's init can join every namespace of `plan.join` itself, right after
/// it was cloned: true for network, IPC and UTS namespaces (setns(2) applies to the caller at
/// once and nothing created by the clone depends on them) when the clone makes no user
/// namespace (whose owner the joined namespaces would then not be). PID, user, mount, cgroup
/// and time joins need the intermediate process that joins before the clone.
pub fn child_can_join(plan: &Plan) -> bool {
    !plan.join.is_empty()
        && !plan.has_new(LinuxNamespaceType::User)
        && plan.join.iter().all(|(t, _)| {
            matches!(
                t,
                LinuxNamespaceType::Network | LinuxNamespaceType::Ipc | LinuxNamespaceType::Uts
            )
        })
}

fn join_order(t: LinuxNamespaceType) -> u8 {
    match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 9,
        _ => 5,
    }
}

/// setns(2) into the namespace at `path`.
pub fn join(t: LinuxNamespaceType, path: &std::path::Path) -> Result<()> {
    let f = std::fs::File::open(path)
        .with_ctx(|| format!("open {} namespace {}", proc_name(t), path.display()))?;
    let flags = nix::sched::CloneFlags::from_bits_truncate(clone_flag(t));
    nix::sched::setns(f.as_fd(), flags)
        .with_ctx(|| format!("setns {} namespace {}", proc_name(t), path.display()))
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Write uid_map / gid_map (and setgroups=deny when an unprivileged mapping requires it) for
/// the process `pid`, from the parent, in the initial user namespace.
pub fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let uids = linux
        .and_then(|l| l.uid_mappings().clone())
        .unwrap_or_default();
    let gids = linux
        .and_then(|l| l.gid_mappings().clone())
        .unwrap_or_default();
    if uids.is_empty() || gids.is_empty() {
        return Err(Error::Config(
            "field linux.uidMappings/gidMappings: a new user namespace needs both mappings".into(),
        ));
    }
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        // An unprivileged writer may only map its own gid after denying setgroups.
        let _ = std::fs::write(format!("/proc/{pid}/setgroups"), "deny");
    }
    std::fs::write(format!("/proc/{pid}/uid_map"), map_text(&uids))
        .with_ctx(|| format!("field linux.uidMappings: write /proc/{pid}/uid_map"))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), map_text(&gids))
        .with_ctx(|| format!("field linux.gidMappings: write /proc/{pid}/gid_map"))?;
    Ok(())
}

/// Time namespace offsets, written by the process that unshared CLONE_NEWTIME before any
/// process enters it.
pub fn write_time_offsets(spec: &Spec) -> Result<()> {
    let offs = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().clone())
        .unwrap_or_default();
    let mut text = String::new();
    for (clock, o) in offs {
        let name = match clock.as_str() {
            "monotonic" => "monotonic",
            "boottime" => "boottime",
            other => {
                return Err(Error::Config(format!(
                    "field linux.timeOffsets: unknown clock {other:?} (monotonic or boottime)"
                )))
            }
        };
        text.push_str(&format!(
            "{name} {} {}\n",
            o.secs().unwrap_or(0),
            o.nanosecs().unwrap_or(0)
        ));
    }
    if !text.is_empty() {
        std::fs::write("/proc/self/timens_offsets", text).ctx("write /proc/self/timens_offsets")?;
    }
    Ok(())
}
