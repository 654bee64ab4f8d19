//! berth-image: the engine's image store — content-addressed blobs, image metadata, layer
//! unpack/pack with whiteouts, overlay/copy snapshotters, docker-archive and OCI layout
//! exchange, and a registry (distribution) client.
//!
//! The API is **blocking** (std threads, no async runtime); the daemon calls it from
//! `tokio::task::spawn_blocking`. Long operations report per-layer [`Progress`] events to a
//! [`ProgressSink`] (any `Fn(Progress) + Send + Sync`, or a `Mutex<mpsc::Sender<Progress>>`).
//!
//! Entry points (all on [`ImageService`], opened once per daemon root):
//! - `load(reader, sink)`, `save(names, writer)` — docker-archive (`docker load/save`)
//! - `import_oci_dir`, `export_oci_dir`, `export_oci_tar` — OCI image layout
//! - `import(reader, tag, changes, message, platform)` — `docker import`
//! - `pull(ref, platform, opts, sink)`, `push(name, opts, sink)` — registries
//! - `list`, `inspect`, `history`, `tag`, `delete`, `resolve` — image metadata
//! - `prepare_snapshot(key, image)`, `mount(key, target)`, `unmount(target)`,
//!   `remove_snapshot(key)`, `commit(key, parent, config, created_by, tag)` — containers
//! - `export_fs(rootfs, writer)` — `docker export`
//! - `gc(keep_blobs, keep_chains)` — prune unreferenced blobs and snapshots
//!
//! Operations that write blobs (load, import, pull, commit, push) do it under a
//! [`lease::Lease`]: a failed one removes the blobs it brought in that no image references,
//! and none removes a blob another operation in flight holds (see [`lease`]).
//!
//! On-disk layout under the root: `content/sha256/<hex>` (blobs), `images.json` (metadata),
//! `snapshots/<chain-id-hex>/fs` (unpacked layers, with `tarsplit.zst`: the rest of the layer's
//! tar, whose blob then goes; see [`tarsplit`] and [`slim`]), `active/<key>/` (container layers).
pub mod archive;
pub mod digest;
pub mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod layer;
pub mod lease;
pub mod model;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod service;
pub mod slim;
pub mod snapshot;
pub mod store;
pub mod sys;
pub mod tarsplit;
pub(crate) mod util;

pub use digest::Digest;
pub use error::{Error, Result};
pub use progress::{Progress, ProgressSink};
pub use reference::Reference;
pub use service::ImageService;
