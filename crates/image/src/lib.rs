//! berth-image (see docs/ARCHITECTURE.md).
