//! What the builder needs from the engine, as one small trait. The builder never reaches into
//! engine state: it asks for images, containers (created from a config, run with their output
//! streamed, or only mounted to copy files in) and commits, and keeps its cache through it.

use std::io::Write;
use std::path::PathBuf;

use berth_image::model::{ContainerConfig, ImageConfig};

/// A failure of the engine under a build step, with its source kept.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl BackendError {
    pub fn new(message: impl Into<String>) -> BackendError {
        BackendError {
            message: message.into(),
            source: None,
        }
    }

    /// `message: source`, keeping the source.
    pub fn with(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> BackendError {
        let message = format!("{}: {source}", message.into());
        BackendError {
            message,
            source: Some(Box::new(source)),
        }
    }
}

/// A `RUN --mount`, resolved by the builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    /// A host directory or file (inside the context, or a stage's mounted rootfs).
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// A directory kept between builds, by `id`; made with `mode`/`uid`/`gid` when new.
    Cache {
        id: String,
        target: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
    },
}

/// A stored image: its ID (`sha256:...`) and config.
#[derive(Debug, Clone)]
pub struct BaseImage {
    pub id: String,
    pub config: ImageConfig,
}

/// The engine as the builder drives it.
pub trait BuildBackend {
    /// A local image by name or ID.
    fn resolve_image(&self, name: &str) -> Result<BaseImage, BackendError>;
    /// Creates (does not start) a container of `image` with `config` (Cmd, Entrypoint, Env,
    /// User, WorkingDir as the step wants them; the engine's defaults for the rest, as `run`).
    /// `will_run`: it is started next (else it is only mounted, with [`BuildBackend::rootfs`]).
    /// Returns its ID.
    fn create(
        &self,
        image: &str,
        config: &ContainerConfig,
        will_run: bool,
        mounts: &[RunMount],
    ) -> Result<String, BackendError>;
    /// Starts a created container, streams its stdout and stderr into `output` as they come
    /// and returns its exit code. The container is killed as soon as `stop` says so (the
    /// client went away, or another stage of the build failed).
    fn run(
        &self,
        container: &str,
        output: &mut dyn Write,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<i64, BackendError>;
    /// The container's root filesystem, mounted (for COPY/ADD to write into or read from),
    /// until the container is removed.
    fn rootfs(&self, container: &str) -> Result<PathBuf, BackendError>;
    /// The container's changes as a layer on top of `parent`: a new image with `config`
    /// (whose history gets an entry `created_by`). Returns the image ID.
    fn commit(
        &self,
        container: &str,
        parent: &str,
        config: ImageConfig,
        created_by: &str,
    ) -> Result<String, BackendError>;
    /// An image with `parent`'s layers (none for `None`) and `config` as is (its history
    /// already extended by the caller): a metadata-only step. Returns the image ID.
    fn derive(&self, parent: Option<&str>, config: ImageConfig) -> Result<String, BackendError>;
    /// Removes a container (forcibly, with its anonymous volumes); failures are only logged.
    fn remove(&self, container: &str);
    /// The image a cache key was built as, if that image still exists.
    fn cache_get(&self, key: &str) -> Option<String>;
    /// Records that the step with `key` produced `image`.
    fn cache_put(&self, key: &str, image: &str) -> Result<(), BackendError>;
    /// Tags `image` as `reference` (`name[:tag]`).
    fn tag(&self, image: &str, reference: &str) -> Result<(), BackendError>;
    /// Downloads `url` (an `ADD` source) into a new file of the build's scratch space, named
    /// as the URL's last path segment; returns its path.
    fn fetch(&self, url: &str) -> Result<PathBuf, BackendError>;
    /// A local image by name or ID, without pulling it (`--cache-from` sources: one that is
    /// not here is skipped, as dockerd's classic builder skips it).
    fn local_image(&self, name: &str) -> Option<BaseImage>;
    /// A `--cache-from` step restored: an image with `parent`'s layers (none for `None`),
    /// then layer number `layer` of image `source` if the step made one, and `config` as is
    /// (its history already extended by the caller). Returns the image ID.
    fn restore(
        &self,
        parent: Option<&str>,
        source: &str,
        layer: Option<usize>,
        config: ImageConfig,
    ) -> Result<String, BackendError>;
    /// Records that `child` was built on `parent` (a `--cache-from` source adopted as a
    /// step's image).
    fn set_parent(&self, child: &str, parent: &str) -> Result<(), BackendError>;
    /// The images `image` was built on, nearest first (as recorded by earlier builds).
    fn ancestors(&self, image: &str) -> Vec<String>;
    /// Whether the build is no longer wanted (its client went away): the builder stops
    /// before the next step (and tells [`BuildBackend::run`] to kill a running one).
    fn cancelled(&self) -> bool {
        false
    }
}
