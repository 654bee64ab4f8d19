//! v2 freezer: cgroup.freeze, and the "frozen" key of cgroup.events.

use std::path::Path;
use std::time::Duration;

use crate::fsutil::{self, flat_keyed, keyed, wait_until, write};
use crate::Result;

/// Freeze (`on`) or thaw, and wait until cgroup.events says so; a freeze that does not
/// complete is undone.
pub(super) fn set(d: &Path, on: bool) -> Result<()> {
    let want = if on { "1" } else { "0" };
    write(d, "cgroup.freeze", want, "cgroup.freeze")?;
    let events = d.join("cgroup.events");
    let res = wait_until(
        "cgroup.events frozen",
        &events,
        Duration::from_secs(10),
        || Ok(frozen(d)? == on),
    );
    if res.is_err() && on {
        let _ = write(d, "cgroup.freeze", "0", "cgroup.freeze");
    }
    res
}

pub(super) fn frozen(d: &Path) -> Result<bool> {
    let s = fsutil::read(&d.join("cgroup.events"))?;
    Ok(keyed(&flat_keyed(&s), "frozen") == 1)
}
