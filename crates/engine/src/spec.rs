//! OCI spec.
