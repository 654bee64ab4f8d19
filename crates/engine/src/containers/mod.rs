//! Containers: the registry of records, and each step of their lifecycle in a module of its own
//! (create, start/stop/kill/pause, update, exit handling and restart policies, removal,
//! list/inspect, top/stats, start-up reconciliation).
mod create;
mod exit;
mod lifecycle;
mod query;
mod reconcile;
mod registry;
mod remove;
mod stats;
mod update;
mod watch;

pub(crate) use create::*;
pub(crate) use exit::*;
pub(crate) use lifecycle::*;
pub(crate) use query::*;
pub(crate) use reconcile::*;
pub(crate) use registry::*;
pub(crate) use remove::*;
pub(crate) use stats::*;
pub(crate) use update::*;
pub(crate) use watch::*;
