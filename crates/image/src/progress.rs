//! Per-layer progress events for pull, push and load.
use crate::digest::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Resolving the reference / fetching the manifest.
    Resolving {
        reference: String,
    },
    Waiting {
        layer: Digest,
    },
    Downloading {
        layer: Digest,
        current: u64,
        total: u64,
    },
    Verifying {
        layer: Digest,
    },
    DownloadComplete {
        layer: Digest,
    },
    Extracting {
        layer: Digest,
        current: u64,
        total: u64,
    },
    Complete {
        layer: Digest,
    },
    AlreadyExists {
        layer: Digest,
    },
    Pushing {
        layer: Digest,
        current: u64,
        total: u64,
    },
    Pushed {
        layer: Digest,
    },
    Mounted {
        layer: Digest,
        from: String,
    },
    /// Pull/push/load finished; `digest` is the manifest digest when known.
    Done {
        reference: String,
        digest: Option<Digest>,
    },
    /// An image was loaded (docker load prints "Loaded image: x").
    Loaded {
        name: String,
    },
    /// Free-form status line.
    Status(String),
}

/// Receives progress events; must be cheap and thread-safe (called from worker threads).
pub trait ProgressSink: Send + Sync {
    fn event(&self, p: Progress);
}

impl<F: Fn(Progress) + Send + Sync> ProgressSink for F {
    fn event(&self, p: Progress) {
        self(p)
    }
}

/// Discards events.
pub struct NoProgress;
impl ProgressSink for NoProgress {
    fn event(&self, _: Progress) {}
}

impl ProgressSink for std::sync::Mutex<std::sync::mpsc::Sender<Progress>> {
    fn event(&self, p: Progress) {
        if let Ok(tx) = self.lock() {
            let _ = tx.send(p);
        }
    }
}

impl Progress {
    /// The event as one line of Docker's JSON progress stream (`docker pull/push/load`).
    pub fn to_docker_json(&self) -> serde_json::Value {
        use serde_json::json;
        let detail = |c: u64, t: u64| json!({"current": c, "total": t});
        match self {
            Progress::Resolving { reference } => {
                json!({"status": format!("Pulling from {reference}")})
            }
            Progress::Waiting { layer } => {
                json!({"status": "Waiting", "progressDetail": {}, "id": layer.short()})
            }
            Progress::Downloading {
                layer,
                current,
                total,
            } => {
                json!({"status": "Downloading", "progressDetail": detail(*current, *total), "id": layer.short()})
            }
            Progress::Verifying { layer } => {
                json!({"status": "Verifying Checksum", "progressDetail": {}, "id": layer.short()})
            }
            Progress::DownloadComplete { layer } => {
                json!({"status": "Download complete", "progressDetail": {}, "id": layer.short()})
            }
            Progress::Extracting {
                layer,
                current,
                total,
            } => {
                json!({"status": "Extracting", "progressDetail": detail(*current, *total), "id": layer.short()})
            }
            Progress::Complete { layer } => {
                json!({"status": "Pull complete", "progressDetail": {}, "id": layer.short()})
            }
            Progress::AlreadyExists { layer } => {
                json!({"status": "Already exists", "progressDetail": {}, "id": layer.short()})
            }
            Progress::Pushing {
                layer,
                current,
                total,
            } => {
                json!({"status": "Pushing", "progressDetail": detail(*current, *total), "id": layer.short()})
            }
            Progress::Pushed { layer } => {
                json!({"status": "Pushed", "progressDetail": {}, "id": layer.short()})
            }
            Progress::Mounted { layer, from } => {
                json!({"status": format!("Mounted from {from}"), "progressDetail": {}, "id": layer.short()})
            }
            Progress::Done { reference, digest } => match digest {
                Some(d) => {
                    json!({"status": format!("Digest: {d}\nStatus: Downloaded newer image for {reference}")})
                }
                None => {
                    json!({"status": format!("Status: Downloaded newer image for {reference}")})
                }
            },
            Progress::Loaded { name } => {
                json!({"stream": format!("Loaded image{}{name}\n", if name.starts_with("ID: ") { " " } else { ": " })})
            }
            Progress::Status(s) => json!({"status": s}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn docker_json_lines() {
        let d = Digest::of(b"x");
        let j = Progress::Downloading {
            layer: d.clone(),
            current: 5,
            total: 10,
        }
        .to_docker_json();
        assert_eq!(j["status"], "Downloading");
        assert_eq!(j["id"], d.short());
        assert_eq!(j["progressDetail"]["total"], 10);
        assert_eq!(
            Progress::Loaded {
                name: "busybox:latest".into()
            }
            .to_docker_json()["stream"],
            "Loaded image: busybox:latest\n"
        );
        assert_eq!(
            Progress::Loaded {
                name: format!("ID: {d}")
            }
            .to_docker_json()["stream"],
            format!("Loaded image ID: {d}\n")
        );
    }
}
