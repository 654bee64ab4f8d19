//! v2 hugetlb: `hugetlb.<size>.max`.

use std::path::Path;

use oci_spec::runtime::LinuxHugepageLimit;

use super::max_or;
use crate::fsutil::write;
use crate::{Error, Result};

pub(super) fn apply(d: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for h in limits {
        let file = format!("hugetlb.{}.max", h.page_size());
        if !d.join(&file).exists() {
            return Err(Error::Invalid {
                field: "linux.resources.hugepageLimits.pageSize".into(),
                reason: format!(
                    "huge page size {} is not supported here (no {}; is the hugetlb controller enabled?)",
                    h.page_size(),
                    file
                ),
            });
        }
        write(
            d,
            &file,
            &max_or(h.limit()),
            "linux.resources.hugepageLimits.limit",
        )?;
    }
    Ok(())
}
