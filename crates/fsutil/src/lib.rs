//! Small file-system and time helpers shared by berth's crates (std only).
//!
//! * [`write_atomic`] / [`AtomicFile`]: replace a file crash-safely — the data goes to a fresh
//!   temporary file in the same directory, is fsynced, renamed over the target, and (by
//!   default) the directory is fsynced. Readers see the old or the new file, never a torn one;
//!   after the call returns the new content survives a power loss. [`AtomicFile::write_from`]
//!   streams from a [`Read`](std::io::Read).
//! * [`write_atomic_nosync`]: the same rename without any fsync, for files that need not outlive
//!   a power loss or whose fsyncs the caller batches later (berthd's records).
//! * [`rfc3339_nano`], [`rfc3339_nano_fixed`], [`rfc3339`]: UTC timestamps without a date crate.
//!
//! On any failure the temporary file is removed and the target is left as it was (except a
//! failed directory fsync, which comes after the rename: the new file is in place, but not yet
//! known to be durable).

mod atomic;
mod time;

pub use atomic::{nosync_tmp_path, write_atomic, write_atomic_nosync, AtomicFile, Error};
pub use time::{
    civil_from_days, days_from_civil, parse_rfc3339, rfc3339, rfc3339_nano, rfc3339_nano_fixed,
    rfc3339_nano_fixed_now, rfc3339_nano_now, unix_now,
};
