//! berth-cgroups (see docs/ARCHITECTURE.md).
