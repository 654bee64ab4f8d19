//! rdma: validation and the `rdma.max` writes, the same file and format on v1 and v2.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{LinuxRdma, LinuxResources};

use super::invalid;
use crate::fsutil::write;
use crate::Result;

pub(crate) fn validate(rdma: Option<&HashMap<String, LinuxRdma>>) -> Result<()> {
    for dev in rdma.into_iter().flat_map(HashMap::keys) {
        if dev.is_empty() || dev.contains(|c: char| c.is_whitespace()) {
            return Err(invalid(
                "linux.resources.rdma",
                format!("{dev:?} is not an RDMA device name"),
            ));
        }
    }
    Ok(())
}

/// The `rdma.max` line for one device; an absent limit is "max".
fn line(dev: &str, lim: &LinuxRdma) -> String {
    let h = lim
        .hca_handles()
        .map_or("max".to_string(), |v| v.to_string());
    let o = lim
        .hca_objects()
        .map_or("max".to_string(), |v| v.to_string());
    format!("{dev} hca_handle={h} hca_object={o}")
}

/// Write one `rdma.max` line per device of `linux.resources.rdma` in `dir`.
pub(crate) fn write_max(dir: &Path, r: &LinuxResources) -> Result<()> {
    for (dev, lim) in r.rdma().iter().flatten() {
        write(dir, "rdma.max", &line(dev, lim), "linux.resources.rdma")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_default_to_max() {
        let lim: LinuxRdma = serde_json::from_str(r#"{"hcaHandles":3}"#).unwrap();
        assert_eq!(line("mlx5_0", &lim), "mlx5_0 hca_handle=3 hca_object=max");
        let lim: LinuxRdma = serde_json::from_str(r#"{"hcaObjects":7}"#).unwrap();
        assert_eq!(line("m", &lim), "m hca_handle=max hca_object=7");
    }

    #[test]
    fn device_names() {
        let ok: HashMap<String, LinuxRdma> = [("mlx5_0".to_string(), LinuxRdma::default())].into();
        assert!(validate(Some(&ok)).is_ok());
        assert!(validate(None).is_ok());
        for bad in ["", "a b"] {
            let m: HashMap<String, LinuxRdma> = [(bad.to_string(), LinuxRdma::default())].into();
            assert!(validate(Some(&m)).is_err(), "{bad:?}");
        }
    }
}
