//! v1 hugetlb: `hugetlb.<size>.limit_in_bytes`.

use std::path::Path;

use oci_spec::runtime::LinuxHugepageLimit;

use crate::fsutil::write;
use crate::{Error, Result};

pub(super) fn apply(d: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for h in limits {
        let file = format!("hugetlb.{}.limit_in_bytes", h.page_size());
        if !d.join(&file).exists() {
            return Err(Error::Invalid {
                field: "linux.resources.hugepageLimits.pageSize".into(),
                reason: format!(
                    "huge page size {} is not supported by this kernel",
                    h.page_size()
                ),
            });
        }
        write(
            d,
            &file,
            &h.limit().to_string(),
            "linux.resources.hugepageLimits.limit",
        )?;
    }
    Ok(())
}
