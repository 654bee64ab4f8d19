//! berth-api: the Docker Engine API over HTTP (unix sockets, optionally TCP) in front of
//! [`berth_engine::Engine`].
//!
//! Requests are served by hyper on a small tokio runtime; the engine's blocking calls run on
//! the blocking pool. Attach and exec start hijack the connection (`101 Switching Protocols`);
//! long replies (logs, events, stats, pull progress, tars) are streamed.

pub mod auth;
pub mod body;
pub mod build;
pub mod containers;
pub mod error;
pub mod exec;
pub mod frame;
pub mod hijack;
pub mod images;
pub mod listener;
pub mod login;
pub mod networks;
pub mod query;
pub mod router;
pub mod server;
pub mod stream;
pub mod swarm;
pub mod system;
pub mod version;
pub mod volumes;

pub use error::ApiError;
pub use listener::{resolve_group, Host, ListenError};
pub use server::{bind, serve, Bound, ServerConfig, SERVER_NAME};
pub use version::{ApiVersion, MAX_VERSION, MIN_VERSION};
