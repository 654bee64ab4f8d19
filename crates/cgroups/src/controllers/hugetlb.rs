//! hugetlb: validation, and the page sizes a cgroup directory offers (for stats).

use std::path::Path;

use oci_spec::runtime::LinuxHugepageLimit;

use super::invalid;
use crate::{Error, Result};

pub(crate) fn validate(limits: &[LinuxHugepageLimit]) -> Result<()> {
    for h in limits {
        check_page_size("linux.resources.hugepageLimits.pageSize", h.page_size())?;
        if h.limit() < -1 {
            return Err(invalid(
                "linux.resources.hugepageLimits.limit",
                format!("{} is negative", h.limit()),
            ));
        }
    }
    Ok(())
}

/// A page size as the kernel names it in file names: digits then KB, MB, GB, TB or PB.
fn check_page_size(field: &str, s: &str) -> Result<()> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    if digits.is_empty()
        || !digits.chars().all(|c| c.is_ascii_digit())
        || !matches!(unit, "KB" | "MB" | "GB" | "TB" | "PB")
    {
        return Err(invalid(
            field,
            format!("page size {s:?} is not like \"2MB\" or \"1GB\""),
        ));
    }
    Ok(())
}

/// Huge page sizes for which `dir` has "hugetlb.<size><suffix>", sorted.
pub(crate) fn page_sizes(dir: &Path, suffix: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|source| Error::Io {
        op: "readdir",
        path: dir.to_path_buf(),
        source,
    })?;
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if let Some(size) = size_in(&n, suffix) {
            out.push(size.to_string());
        }
    }
    out.sort();
    Ok(out)
}

/// The page size in a file name "hugetlb.<size><suffix>" (the size has no dot).
fn size_in<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
    (!size.contains('.')).then_some(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_names() {
        for ok in ["2MB", "1GB", "64KB"] {
            assert!(check_page_size("f", ok).is_ok(), "{ok}");
        }
        for bad in ["2XB", "MB", "2mb", "2 MB", "-2MB", ""] {
            assert!(check_page_size("f", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_from_file_names() {
        assert_eq!(
            size_in("hugetlb.2MB.limit_in_bytes", ".limit_in_bytes"),
            Some("2MB")
        );
        assert_eq!(size_in("hugetlb.2MB.max", ".max"), Some("2MB"));
        assert_eq!(size_in("hugetlb.2MB.rsvd.max", ".max"), None);
        assert_eq!(size_in("hugetlb.2MB.current", ".max"), None);
        assert_eq!(size_in("memory.max", ".max"), None);
    }
}
