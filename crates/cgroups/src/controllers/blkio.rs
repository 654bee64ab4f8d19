//! blockIO (v1 blkio, v2 io): validation, the throttle lists both backends walk, and the
//! blkio weight -> io.weight conversion.

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use super::invalid;
use crate::Result;

/// One of the four throttle lists: the spec field, the v1 file and the v2 `io.max` key.
pub(crate) struct Throttle<'a> {
    pub field: &'static str,
    pub v1_file: &'static str,
    pub v2_key: &'static str,
    pub devices: &'a [LinuxThrottleDevice],
}

/// The four throttle lists of `b`, in the order they are written (read/write bps, then
/// read/write iops).
pub(crate) fn throttles(b: &LinuxBlockIo) -> [Throttle<'_>; 4] {
    fn t<'a>(
        field: &'static str,
        v1_file: &'static str,
        v2_key: &'static str,
        devices: &'a Option<Vec<LinuxThrottleDevice>>,
    ) -> Throttle<'a> {
        Throttle {
            field,
            v1_file,
            v2_key,
            devices: devices.as_deref().unwrap_or(&[]),
        }
    }
    [
        t(
            "linux.resources.blockIO.throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        t(
            "linux.resources.blockIO.throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        t(
            "linux.resources.blockIO.throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            "riops",
            b.throttle_read_iops_device(),
        ),
        t(
            "linux.resources.blockIO.throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ]
}

fn check_weight(field: &str, w: u16, what: &str) -> Result<()> {
    if w != 0 && !(10..=1000).contains(&w) {
        return Err(invalid(field, format!("{what}{w} is not in 10..=1000")));
    }
    Ok(())
}

fn check_device(field: &str, major: i64, minor: i64) -> Result<()> {
    if major < 0 || minor < 0 {
        return Err(invalid(
            field,
            format!("device {major}:{minor} has a negative number"),
        ));
    }
    Ok(())
}

pub(crate) fn validate(b: &LinuxBlockIo) -> Result<()> {
    for (f, w) in [
        ("linux.resources.blockIO.weight", b.weight()),
        ("linux.resources.blockIO.leafWeight", b.leaf_weight()),
    ] {
        if let Some(w) = w {
            check_weight(f, w, "")?;
        }
    }
    for wd in b.weight_device().iter().flatten() {
        let f = "linux.resources.blockIO.weightDevice";
        check_device(f, wd.major(), wd.minor())?;
        for w in [wd.weight(), wd.leaf_weight()].into_iter().flatten() {
            check_weight(f, w, "weight ")?;
        }
    }
    for t in throttles(b) {
        for d in t.devices {
            check_device(t.field, d.major(), d.minor())?;
        }
    }
    Ok(())
}

/// runc's conversion of blkio weight (10..1000) to io.weight (1..10000).
pub fn blkio_weight_to_io_weight(w: u64) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (w.saturating_sub(10)) * 9999 / 990
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bio(json: &str) -> LinuxBlockIo {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn weights_and_devices_are_checked() {
        assert!(validate(&bio(r#"{"weight":0,"leafWeight":1000}"#)).is_ok());
        let e = validate(&bio(r#"{"leafWeight":9}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("leafWeight: 9 is not in"), "{e}");
        let e = validate(&bio(
            r#"{"weightDevice":[{"major":8,"minor":0,"weight":5}]}"#,
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("weightDevice: weight 5"), "{e}");
        let e = validate(&bio(
            r#"{"throttleWriteIOPSDevice":[{"major":8,"minor":-1,"rate":1}]}"#,
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("throttleWriteIOPSDevice: device 8:-1"), "{e}");
    }

    #[test]
    fn throttle_lists_in_order() {
        let b = bio(r#"{"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1}]}"#);
        let t = throttles(&b);
        let keys: Vec<&str> = t.iter().map(|t| t.v2_key).collect();
        assert_eq!(keys, ["rbps", "wbps", "riops", "wiops"]);
        assert_eq!(t[0].devices.len(), 1);
        assert!(t[3].devices.is_empty());
    }
}
