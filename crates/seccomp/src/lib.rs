//! berth-seccomp (see docs/ARCHITECTURE.md).
