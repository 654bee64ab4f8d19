//! berth-runtime: from an OCI bundle to an isolated process (see docs/ARCHITECTURE.md).
