//! v2 devices: an eBPF `BPF_PROG_TYPE_CGROUP_DEVICE` program built from the rules, attached
//! to the directory in place of the one a previous apply attached.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::{bpf, controllers, Result};

pub(super) fn apply(d: &Path, r: &LinuxResources) -> Result<()> {
    // Validation already warned about what the rules skip.
    let mut w = Vec::new();
    let rules = controllers::devices::rules(r, &mut w)?;
    let prog = bpf::build_program(&rules)?;
    let prog_fd = bpf::load(&prog)?;
    let dir_fd = super::open_dir(d)?;
    bpf::attach_replacing(&dir_fd, &prog_fd)
}
