//! berth-api (see docs/ARCHITECTURE.md).
