//! v1 blkio: proportional weight (CFQ's blkio.weight or BFQ's blkio.bfq.weight), leaf
//! weights, per-device weights and the throttle files.

use std::path::Path;

use oci_spec::runtime::LinuxBlockIo;

use crate::controllers::blkio::throttles;
use crate::fsutil::{write, write_if_exists};
use crate::{Error, Result};

pub(super) fn apply(d: &Path, b: &LinuxBlockIo, warnings: &mut Vec<String>) -> Result<()> {
    // CFQ's blkio.weight, or BFQ's blkio.bfq.weight on newer kernels.
    let (wfile, wdfile) = if d.join("blkio.weight").exists() {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    set_weights(d, b, wfile, warnings)?;
    set_device_weights(d, b, wdfile, warnings)?;
    for t in throttles(b) {
        for dev in t.devices {
            write(
                d,
                t.v1_file,
                &format!("{}:{} {}", dev.major(), dev.minor(), dev.rate()),
                t.field,
            )?;
        }
    }
    Ok(())
}

fn set_weights(d: &Path, b: &LinuxBlockIo, wfile: &str, warnings: &mut Vec<String>) -> Result<()> {
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        if !write_if_exists(d, wfile, &w.to_string(), "linux.resources.blockIO.weight")? {
            return Err(Error::Invalid {
                field: "linux.resources.blockIO.weight".into(),
                reason: "this kernel has no proportional block I/O weight (neither CFQ nor BFQ is in use)".into(),
            });
        }
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        if !write_if_exists(
            d,
            "blkio.leaf_weight",
            &w.to_string(),
            "linux.resources.blockIO.leafWeight",
        )? {
            warnings.push("linux.resources.blockIO.leafWeight is ignored: this kernel has no blkio.leaf_weight".into());
        }
    }
    Ok(())
}

fn set_device_weights(
    d: &Path,
    b: &LinuxBlockIo,
    wdfile: &str,
    warnings: &mut Vec<String>,
) -> Result<()> {
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight().filter(|w| *w != 0) {
            let line = format!("{}:{} {}", wd.major(), wd.minor(), w);
            if !write_if_exists(d, wdfile, &line, "linux.resources.blockIO.weightDevice")? {
                return Err(Error::Invalid {
                    field: "linux.resources.blockIO.weightDevice".into(),
                    reason: "this kernel has no per-device block I/O weight".into(),
                });
            }
        }
        if let Some(w) = wd.leaf_weight().filter(|w| *w != 0) {
            let line = format!("{}:{} {}", wd.major(), wd.minor(), w);
            if !write_if_exists(
                d,
                "blkio.leaf_weight_device",
                &line,
                "linux.resources.blockIO.weightDevice.leafWeight",
            )? {
                warnings.push("linux.resources.blockIO.weightDevice[].leafWeight is ignored: this kernel has no blkio.leaf_weight_device".into());
            }
        }
    }
    Ok(())
}
