//! pids: validation and the `pids.max` write, the same file and format on v1 and v2.

use std::path::Path;

use oci_spec::runtime::LinuxPids;

use super::invalid;
use crate::fsutil::write;
use crate::Result;

pub(crate) fn validate(p: &LinuxPids) -> Result<()> {
    if p.limit() < -1 {
        return Err(invalid(
            "linux.resources.pids.limit",
            format!("{} is negative (use -1 or 0 for unlimited)", p.limit()),
        ));
    }
    Ok(())
}

/// The `pids.max` value for a spec limit: -1 and 0 mean unlimited.
pub(crate) fn max_value(limit: i64) -> String {
    if limit <= 0 {
        "max".to_string()
    } else {
        limit.to_string()
    }
}

/// Write `pids.max` in `dir`.
pub(crate) fn write_max(dir: &Path, p: &LinuxPids) -> Result<()> {
    write(
        dir,
        "pids.max",
        &max_value(p.limit()),
        "linux.resources.pids.limit",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_minus_one_are_unlimited() {
        assert_eq!(max_value(-1), "max");
        assert_eq!(max_value(0), "max");
        assert_eq!(max_value(20), "20");
    }
}
