//! Typed errors for the image crate. Every variant names the object at fault.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid reference format: {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest { digest: String, reason: String },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} {path}: {errno}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("no such image: {0}")]
    ImageNotFound(String),
    #[error("blob not found: {0}")]
    BlobNotFound(String),
    #[error("snapshot not found: {0}")]
    SnapshotNotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid image data in {what}: {reason}")]
    InvalidImage { what: String, reason: String },
    #[error("unsupported manifest: {0}")]
    Unsupported(String),
    #[error("unsafe layer entry {entry:?} in {layer}: {reason}")]
    UnsafeEntry {
        layer: String,
        entry: String,
        reason: String,
    },
    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },
    #[error("authentication required for {registry}: {message}")]
    Unauthorized { registry: String, message: String },
    #[error("{registry}: manifest unknown: {reference}")]
    ManifestUnknown { registry: String, reference: String },
    #[error("no matching manifest for {platform} in the manifest list entries of {reference}")]
    NoMatchingPlatform { reference: String, platform: String },
    #[error("JSON in {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cancelled: {0}")]
    Cancelled(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
    pub fn sys(op: &'static str, path: impl Into<PathBuf>, errno: nix::errno::Errno) -> Self {
        Error::Sys {
            op,
            path: path.into(),
            errno,
        }
    }
    pub fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            source,
        }
    }
    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidImage {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

impl From<berth_fsutil::Error> for Error {
    fn from(e: berth_fsutil::Error) -> Self {
        let (op, path, source) = e.into_parts();
        Error::Io { op, path, source }
    }
}

/// Extension to attach a path/operation to `std::io::Result`.
pub(crate) trait IoCtx<T> {
    fn ctx(self, op: &'static str, path: impl AsRef<std::path::Path>) -> Result<T>;
}
impl<T> IoCtx<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: impl AsRef<std::path::Path>) -> Result<T> {
        self.map_err(|e| Error::io(op, path.as_ref(), e))
    }
}
impl<T> IoCtx<T> for nix::Result<T> {
    fn ctx(self, op: &'static str, path: impl AsRef<std::path::Path>) -> Result<T> {
        self.map_err(|e| Error::sys(op, path.as_ref(), e))
    }
}
