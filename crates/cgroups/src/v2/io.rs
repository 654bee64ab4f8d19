//! v2 io: io.bfq.weight when BFQ is in use, else io.weight (converted from the blkio
//! range); io.max for the throttles. Leaf weights have no v2 equivalent (warning).

use std::path::Path;

use oci_spec::runtime::LinuxBlockIo;

use crate::controllers::blkio::{blkio_weight_to_io_weight, throttles};
use crate::fsutil::write;
use crate::Result;

pub(super) fn apply(d: &Path, b: &LinuxBlockIo, warnings: &mut Vec<String>) -> Result<()> {
    let bfq = d.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        let (file, value) = weight(bfq, None, w);
        write(d, file, &value, "linux.resources.blockIO.weight")?;
    }
    if b.leaf_weight().is_some_and(|w| w != 0) {
        warnings.push("linux.resources.blockIO.leafWeight is ignored on cgroup v2".into());
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight().filter(|w| *w != 0) {
            let (file, value) = weight(bfq, Some((wd.major(), wd.minor())), w);
            write(d, file, &value, "linux.resources.blockIO.weightDevice")?;
        }
        if wd.leaf_weight().is_some_and(|w| w != 0) {
            warnings.push(
                "linux.resources.blockIO.weightDevice[].leafWeight is ignored on cgroup v2".into(),
            );
        }
    }
    for t in throttles(b) {
        for dev in t.devices {
            write(
                d,
                "io.max",
                &throttle_line(dev.major(), dev.minor(), t.v2_key, dev.rate()),
                t.field,
            )?;
        }
    }
    Ok(())
}

/// The file and line for blkio weight `w`, of one device or (`None`) the default: BFQ takes
/// the blkio range as is, io.weight takes it converted.
fn weight(bfq: bool, dev: Option<(i64, i64)>, w: u16) -> (&'static str, String) {
    match (bfq, dev) {
        (true, None) => ("io.bfq.weight", w.to_string()),
        (true, Some((ma, mi))) => ("io.bfq.weight", format!("{ma}:{mi} {w}")),
        (false, None) => (
            "io.weight",
            format!("default {}", blkio_weight_to_io_weight(u64::from(w))),
        ),
        (false, Some((ma, mi))) => (
            "io.weight",
            format!("{ma}:{mi} {}", blkio_weight_to_io_weight(u64::from(w))),
        ),
    }
}

/// One io.max line; v1's rate 0 (no limit) is "max".
fn throttle_line(major: i64, minor: i64, key: &str, rate: u64) -> String {
    if rate == 0 {
        format!("{major}:{minor} {key}=max")
    } else {
        format!("{major}:{minor} {key}={rate}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_per_scheduler() {
        assert_eq!(weight(true, None, 500), ("io.bfq.weight", "500".into()));
        assert_eq!(
            weight(true, Some((8, 0)), 500),
            ("io.bfq.weight", "8:0 500".into())
        );
        assert_eq!(
            weight(false, None, 500),
            ("io.weight", "default 4950".into())
        );
        assert_eq!(
            weight(false, Some((8, 16)), 10),
            ("io.weight", "8:16 1".into())
        );
    }

    #[test]
    fn rate_zero_is_max() {
        assert_eq!(throttle_line(8, 0, "rbps", 0), "8:0 rbps=max");
        assert_eq!(throttle_line(8, 0, "wiops", 120), "8:0 wiops=120");
    }
}
