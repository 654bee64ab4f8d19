//! unified (cgroup v2 files by name): validation. The v1 backend refuses the field; the v2
//! backend writes it (v2/unified.rs).

use std::collections::HashMap;

use super::invalid;
use crate::Result;

/// cgroup core files a spec may set; the others (cgroup.procs, cgroup.subtree_control, ...)
/// are berth's to manage.
const CORE_FILES_ALLOWED: [&str; 3] = ["cgroup.type", "cgroup.max.depth", "cgroup.max.descendants"];

pub(crate) fn validate(unified: Option<&HashMap<String, String>>) -> Result<()> {
    for (k, v) in unified.into_iter().flatten() {
        let f = "linux.resources.unified";
        if k.is_empty()
            || k.contains('/')
            || k.contains("..")
            || k.contains('\0')
            || !k.contains('.')
        {
            return Err(invalid(
                f,
                format!("key {k:?} is not a cgroup file name like \"memory.high\""),
            ));
        }
        if k.starts_with("cgroup.") && !CORE_FILES_ALLOWED.contains(&k.as_str()) {
            return Err(invalid(
                f,
                format!(
                    "key {k:?}: cgroup core files other than cgroup.max.* are managed by berth"
                ),
            ));
        }
        if v.contains('\0') {
            return Err(invalid(f, format!("value for {k:?} contains a NUL byte")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(k: &str, v: &str) -> Result<()> {
        validate(Some(&[(k.to_string(), v.to_string())].into()))
    }

    #[test]
    fn keys_are_plain_file_names() {
        for ok in ["memory.high", "cgroup.max.depth", "cgroup.type", "io.max"] {
            assert!(check(ok, "1").is_ok(), "{ok}");
        }
        for bad in [
            "",
            "memory",
            "../memory.max",
            "a/memory.max",
            "cgroup.procs",
            "x.\0",
        ] {
            assert!(check(bad, "1").is_err(), "{bad:?}");
        }
        assert!(check("memory.high", "1\0").is_err());
        assert!(validate(None).is_ok());
    }
}
