//! Persistent container records (crash-safe JSON files).
use crate::model::{Config, HostConfig, MountPoint, Status};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CState {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    /// Pid of the monitor (for reconciliation diagnostics only).
    #[serde(default)]
    pub monitor_pid: i32,
    /// The bind-mounted network namespace of the current run, as older berthd versions made
    /// them (released at its end); empty since namespaces are held by fd (`netns.rs`).
    #[serde(default)]
    pub net_ns: String,
    /// Docker's `State.Health`: only for a container with a healthcheck that has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::Health>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Record {
    pub id: String,
    /// With the leading "/".
    pub name: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    /// Docker's Config (merged with the image's).
    pub config: Config,
    pub host_config: HostConfig,
    /// "sha256:..."
    pub image_id: String,
    pub state: CState,
    pub restart_count: i64,
    pub has_been_started: bool,
    pub manually_stopped: bool,
    pub log_path: String,
    #[serde(default)]
    pub driver: String,
    /// The mounts, resolved at create (`None` in a record written before they were: resolved
    /// at load, see [`Record::load`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_points: Option<Vec<MountPoint>>,
}

impl Record {
    /// Running, paused or restarting.
    pub(crate) fn running(&self) -> bool {
        self.state.status.is_active()
    }

    pub(crate) fn mounts(&self) -> &[MountPoint] {
        self.mount_points.as_deref().unwrap_or(&[])
    }

    /// A record from its file. A field berth cannot read any more (a record written before
    /// the model was typed keeps what the client sent, wrongly typed values included: those
    /// were ignored then) is dropped with a warning rather than the container; mounts missing
    /// from an older record are resolved from its HostConfig.
    pub(crate) fn load(bytes: &[u8]) -> Option<Record> {
        let mut v: Value = serde_json::from_slice(bytes).ok()?;
        let mut rec = loop {
            match serde_path_to_error::deserialize::<_, Record>(&v) {
                Ok(r) => break r,
                Err(e) => {
                    let path: Vec<String> = e
                        .path()
                        .iter()
                        .map(|s| s.to_string().trim_start_matches('.').to_string())
                        .collect();
                    let id = v["Id"].as_str().unwrap_or("?").to_string();
                    // Only a field of Config or HostConfig is worth keeping the record for.
                    if path.len() < 2 || !matches!(path[0].as_str(), "Config" | "HostConfig") {
                        tracing::warn!("record {id}: {}", e.into_inner());
                        return None;
                    }
                    tracing::warn!(
                        "record {id}: dropping {} ({})",
                        path[..2].join("."),
                        e.into_inner()
                    );
                    v.get_mut(&path[0])?.as_object_mut()?.remove(&path[1])?;
                }
            }
        };
        if rec.mount_points.is_none() {
            rec.mount_points = Some(crate::model::resolve_at_load(&rec.host_config, &rec.id));
        }
        Some(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn old_record() -> Value {
        json!({"Id": "abc", "Name": "/n", "Created": "2025-01-01T00:00:00Z", "Path": "true", "Args": [],
            "Config": {"Cmd": ["true"], "Env": ["PATH=/bin"], "Entrypoint": null, "StopTimeout": "ten",
                "Healthcheck": {"Test": ["NONE"]}, "Labels": {"a": "b"}},
            "HostConfig": {"Binds": ["/a:/b:ro"], "Tmpfs": {"/t": "size=1m"}, "Memory": 0, "Unknown": [1],
                "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "NetworkMode": "none"},
            "ImageId": "sha256:x",
            "State": {"Status": "exited", "Pid": 0, "ExitCode": 3, "Error": "", "StartedAt": "",
                "FinishedAt": "", "OOMKilled": false, "MonitorPid": 0},
            "RestartCount": 0, "HasBeenStarted": true, "ManuallyStopped": false, "LogPath": "/l"})
    }

    #[test]
    fn a_record_written_before_the_typed_model_loads() {
        let v = old_record();
        let rec = Record::load(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(rec.state.status, Status::Exited);
        let dsts: Vec<&str> = rec
            .mounts()
            .iter()
            .map(|m| m.destination.as_str())
            .collect();
        assert_eq!(dsts, ["/b", "/t"]);
        // The same JSON back, less the field that could not be read, plus the mounts.
        let mut back = serde_json::to_value(&rec).unwrap();
        assert!(back
            .as_object_mut()
            .unwrap()
            .remove("MountPoints")
            .is_some());
        let mut want = v;
        want["Config"]
            .as_object_mut()
            .unwrap()
            .remove("StopTimeout");
        want["Driver"] = json!("");
        want["State"]["NetState"] = json!("");
        want["State"]["NetNs"] = json!("");
        want["State"].as_object_mut().unwrap().remove("NetState");
        assert_eq!(back, want);
        // Written anew, it loads as it is.
        let again = Record::load(&serde_json::to_vec(&rec).unwrap()).unwrap();
        assert_eq!(
            serde_json::to_value(&again).unwrap(),
            serde_json::to_value(&rec).unwrap()
        );
    }

    #[test]
    fn a_broken_record_is_not_loaded() {
        let mut v = old_record();
        v["State"]["Status"] = json!("sleeping");
        assert!(Record::load(&serde_json::to_vec(&v).unwrap()).is_none());
        assert!(Record::load(b"{").is_none());
    }
}
