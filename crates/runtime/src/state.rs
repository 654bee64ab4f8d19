//! The runc-style state directory: `<root>/<id>/state.json` (written crash-safely) and
//! `<root>/<id>/exec.fifo` (present while the container is created but not started).

use crate::error::{Context, Error, Result};
use crate::sys;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
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

    /// Write state.json atomically: temp file in the same dir, fsync, rename, fsync dir.
    pub fn save(&self, root: &Path) -> Result<()> {
        let dir = container_dir(root, &self.id);
        let data = serde_json::to_vec(self)
            .map_err(|e| Error::Other(format!("serialise state of {}: {e}", self.id)))?;
        write_atomic(&dir.join("state.json"), &data)
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

/// Write-then-rename for runtime state (no fsync: see below). berthd uses it too, and makes
/// its records durable with a background fsync.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = atomic_tmp_path(path)?;
    // Runtime state describes processes that cannot survive a power loss, so it need not
    // either: the rename alone makes it atomic against a crash of the runtime, and skipping
    // the fsyncs saves milliseconds per container (runc and crun do not fsync either).
    {
        let mut f = std::fs::File::create(&tmp).with_ctx(|| format!("create {}", tmp.display()))?;
        f.write_all(data)
            .with_ctx(|| format!("write {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path)
        .with_ctx(|| format!("rename {} -> {}", tmp.display(), path.display()))?;
    Ok(())
}

/// The temporary file [`write_atomic`] writes `path` through (this process's own; one that
/// exists already is reused, which saves making an inode).
pub fn atomic_tmp_path(path: &Path) -> Result<std::path::PathBuf> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Other(format!("{} has no parent dir", path.display())))?;
    Ok(dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|s| s.to_str()).unwrap_or("state"),
        std::process::id()
    )))
}

/// RFC 3339 with nanoseconds in UTC, as Go's time.RFC3339Nano prints it.
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // civil_from_days (Howard Hinnant's algorithm)
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    let mut frac = String::new();
    if nanos > 0 {
        frac = format!(".{nanos:09}");
        while frac.ends_with('0') {
            frac.pop();
        }
    }
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn time_format() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_700_000_000, 120_000_000),
            "2023-11-14T22:13:20.12Z"
        );
        assert_eq!(rfc3339(951_782_400, 1), "2000-02-29T00:00:00.000000001Z");
    }
    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_x").is_ok());
        for bad in ["", ".", "..", "../x", "a/b", "-a", "a b"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }
}
