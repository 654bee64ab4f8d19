//! v2 unified: each key is a file of the cgroup (validated by controllers::unified), written
//! in key order.

use std::collections::HashMap;
use std::path::Path;

use crate::fsutil::write;
use crate::{Error, Result};

pub(super) fn apply(d: &Path, u: &HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<_> = u.iter().collect();
    keys.sort();
    for (k, v) in keys {
        let field = format!("linux.resources.unified[{k:?}]");
        if !d.join(k).exists() {
            return Err(Error::Invalid {
                field,
                reason: format!(
                    "{} does not exist (unknown key or controller not enabled)",
                    d.join(k).display()
                ),
            });
        }
        write(d, k, v, &field)?;
    }
    Ok(())
}
