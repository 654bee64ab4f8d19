//! network (v1 net_cls/net_prio): validation.

use oci_spec::runtime::LinuxNetwork;

use super::invalid;
use crate::Result;

pub(crate) fn validate(n: &LinuxNetwork) -> Result<()> {
    for p in n.priorities().iter().flatten() {
        if p.name().is_empty() || p.name().contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(invalid(
                "linux.resources.network.priorities.name",
                format!("{:?} is not an interface name", p.name()),
            ));
        }
    }
    Ok(())
}
