//! The runc-style state directory: `<root>/<id>/state.json` (written crash-safely) and
//! `<root>/<id>/exec.fifo` (present while the container is created but not started).

use crate::error::{Error, Result};
use crate::sys;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What the runtime remembers about a container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// Host pid of the container's init process.
    pub pid: i32,
    /// Start time of `pid` (from /proc/PID/stat), to detect pid reuse.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    #[serde(default)]
    pub owner: String,
    pub cgroup: Option<berth_cgroups::Cgroup>,
    /// Whether the container has its own pid namespace (killing init then kills everything).
    pub own_pid_ns: bool,
    /// Exit status of the init process, when the runtime observed it (foreground `run`).
    #[serde(default)]
    pub exit_status: Option<i32>,
    pub config: Spec,
}

pub fn container_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

pub fn fifo_path(root: &Path, id: &str) -> PathBuf {
    root.join(id).join("exec.fifo")
}

pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::BadId(id.to_string()))
    }
}

impl State {
    pub fn load(root: &Path, id: &str) -> Result<State> {
        validate_id(id)?;
        let p = container_dir(root, id).join("state.json");
        let data = match std::fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(e) => return Err(Error::io(format!("read {}", p.display()), e)),
        };
        serde_json::from_slice(&data)
            .map_err(|e| Error::Other(format!("state file {} is corrupt: {e}", p.display())))
    }

    /// Write state.json atomically: temp file in the same dir, rename. No fsync: runtime state
    /// describes processes that cannot survive a power loss, so it need not either; the rename
    /// alone makes it atomic against a crash of the runtime, and skipping the fsyncs saves
    /// milliseconds per container (runc and crun do not fsync either).
    pub fn save(&self, root: &Path) -> Result<()> {
        let dir = container_dir(root, &self.id);
        let data = serde_json::to_vec(self)
            .map_err(|e| Error::Other(format!("serialise state of {}: {e}", self.id)))?;
        Ok(berth_fsutil::write_atomic_nosync(
            &dir.join("state.json"),
            &data,
        )?)
    }

    /// Is the init process still the one we started (alive and not a zombie)?
    pub fn init_alive(&self) -> bool {
        if self.pid <= 0 {
            return false;
        }
        match sys::pid_start_time(self.pid) {
            Some(t) if t == self.pid_start => !matches!(sys::pid_state(self.pid), Some('Z' | 'X')),
            _ => false,
        }
    }

    pub fn status(&self, root: &Path) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if fifo_path(root, &self.id).exists() {
            return Status::Created;
        }
        if let Some(cg) = &self.cgroup {
            if cg.frozen().unwrap_or(false) {
                return Status::Paused;
            }
        }
        Status::Running
    }

    /// runc-identical `state` JSON.
    pub fn oci_json(&self, root: &Path) -> serde_json::Value {
        let status = self.status(root);
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        let mut v = serde_json::json!({
            "ociVersion": crate::OCI_VERSION,
            "id": self.id,
            "pid": pid,
            "status": status.to_string(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::json!(self.annotations);
        }
        v
    }

    /// The state handed to hooks on stdin (runtime-spec "state" schema).
    pub fn hook_json(&self, status: Status) -> String {
        let mut v = serde_json::json!({
            "ociVersion": crate::OCI_VERSION,
            "id": self.id,
            "status": status.to_string(),
            "pid": self.pid,
            "bundle": self.bundle,
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::json!(self.annotations);
        }
        v.to_string()
    }
}

/// A hook state (see [`State::hook_json`]) with `pid` replaced: what hooks that run in the
/// container's namespaces get (the pid as seen by the container). An empty or unparsable state
/// is passed on as it is.
pub fn with_pid(state_json: &str, pid: i32) -> String {
    if state_json.is_empty() {
        // No hook and no seccomp listener asked for the state (the common case).
        return String::new();
    }
    match serde_json::from_str::<serde_json::Value>(state_json) {
        Ok(mut v) => match v.as_object_mut() {
            Some(o) => {
                o.insert("pid".into(), pid.into());
                v.to_string()
            }
            None => state_json.to_string(),
        },
        Err(_) => state_json.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_x").is_ok());
        for bad in ["", ".", "..", "../x", "a/b", "-a", "a b"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }
}
