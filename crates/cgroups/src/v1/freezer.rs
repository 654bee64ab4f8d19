//! v1 freezer: freezer.state.

use std::path::Path;
use std::time::Duration;

use crate::fsutil::{self, wait_until, write};
use crate::Result;

fn state(d: &Path) -> Result<String> {
    Ok(fsutil::read(&d.join("freezer.state"))?.trim().to_string())
}

/// Freeze (`on`) or thaw, and wait until the kernel reports the state; a freeze that does
/// not complete is undone.
pub(super) fn set(d: &Path, on: bool) -> Result<()> {
    let want = if on { "FROZEN" } else { "THAWED" };
    let res = wait_until(
        "freezer.state",
        &d.join("freezer.state"),
        Duration::from_secs(10),
        || {
            // Re-writing the state nudges the kernel when a task raced with the freezer.
            write(d, "freezer.state", want, "freezer.state")?;
            Ok(state(d)? == want)
        },
    );
    if res.is_err() && on {
        let _ = write(d, "freezer.state", "THAWED", "freezer.state");
    }
    res
}

pub(super) fn frozen(d: &Path) -> Result<bool> {
    Ok(state(d)? == "FROZEN")
}
