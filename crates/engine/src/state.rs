//! Persistent container records (crash-safe JSON files).
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CState {
    /// created | running | paused | restarting | removing | exited | dead
    pub status: String,
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
    /// The network namespace file of the current run (`--network none`), released at its end.
    #[serde(default)]
    pub net_ns: String,
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
    pub config: Value,
    pub host_config: Value,
    /// "sha256:..."
    pub image_id: String,
    pub state: CState,
    pub restart_count: i64,
    pub has_been_started: bool,
    pub manually_stopped: bool,
    pub log_path: String,
    #[serde(default)]
    pub driver: String,
}

impl Record {
    pub(crate) fn running(&self) -> bool {
        matches!(
            self.state.status.as_str(),
            "running" | "paused" | "restarting"
        )
    }
}
