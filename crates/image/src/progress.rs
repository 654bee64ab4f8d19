//! Per-layer progress events for pull, push and load.
use crate::digest::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Resolving the reference / fetching the manifest.
    Resolving { reference: String },
    Waiting { layer: Digest },
    Downloading { layer: Digest, current: u64, total: u64 },
    Verifying { layer: Digest },
    DownloadComplete { layer: Digest },
    Extracting { layer: Digest, current: u64, total: u64 },
    Complete { layer: Digest },
    AlreadyExists { layer: Digest },
    Pushing { layer: Digest, current: u64, total: u64 },
    Pushed { layer: Digest },
    Mounted { layer: Digest, from: String },
    /// Pull/push/load finished; `digest` is the manifest digest when known.
    Done { reference: String, digest: Option<Digest> },
    /// An image was loaded (docker load prints "Loaded image: x").
    Loaded { name: String },
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
