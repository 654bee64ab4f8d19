//! berth-engine (see docs/ARCHITECTURE.md).
