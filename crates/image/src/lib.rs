//! berth-image: content-addressed store, layers, snapshots, archives, registry client.
//!
//! The API is blocking (std threads, no async runtime); the daemon calls it from
//! `tokio::task::spawn_blocking`. Progress is reported through a [`progress::ProgressSink`].
pub mod digest;
pub mod error;
pub mod reference;

pub use digest::Digest;
pub use error::{Error, Result};
pub use reference::Reference;
pub mod progress;
pub mod store;
pub use progress::{Progress, ProgressSink};
pub mod layer;
pub mod sys;
pub mod model;
pub mod snapshot;
pub mod service;
pub(crate) mod util;
pub use service::ImageService;
pub mod archive;
pub mod registry;
