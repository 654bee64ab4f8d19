//! v1 net_cls and net_prio: class id and interface priorities (a warning when the
//! hierarchy is not mounted).

use std::path::Path;

use oci_spec::runtime::LinuxNetwork;

use crate::fsutil::write;
use crate::Result;

pub(super) fn apply(
    net_cls: Option<&Path>,
    net_prio: Option<&Path>,
    n: &LinuxNetwork,
    warnings: &mut Vec<String>,
) -> Result<()> {
    if let Some(id) = n.class_id() {
        match net_cls {
            Some(d) => write(
                d,
                "net_cls.classid",
                &id.to_string(),
                "linux.resources.network.classID",
            )?,
            None => warnings
                .push("linux.resources.network.classID is ignored: net_cls is not mounted".into()),
        }
    }
    if let Some(prios) = n.priorities().as_ref().filter(|p| !p.is_empty()) {
        match net_prio {
            Some(d) => {
                for p in prios {
                    write(
                        d,
                        "net_prio.ifpriomap",
                        &format!("{} {}", p.name(), p.priority()),
                        "linux.resources.network.priorities",
                    )?;
                }
            }
            None => warnings.push(
                "linux.resources.network.priorities is ignored: net_prio is not mounted".into(),
            ),
        }
    }
    Ok(())
}
