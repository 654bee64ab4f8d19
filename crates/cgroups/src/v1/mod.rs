//! cgroup v1 backend (also used on hybrid hosts): one directory per mounted hierarchy,
//! co-mounted controllers sharing one. One module per controller.

mod blkio;
mod cpu;
mod cpuset;
mod devices;
mod freezer;
mod hugetlb;
mod memory;
mod net;
mod stats;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use crate::backend::Backend;
use crate::controllers::{pids, rdma};
use crate::fsutil::{self, flat_keyed, keyed};
use crate::{Error, Result, Stats};

/// The v1 backend: a view of the persisted controller -> directory map.
pub(crate) struct V1<'a> {
    dirs: &'a BTreeMap<String, PathBuf>,
}

impl<'a> V1<'a> {
    pub(crate) fn new(dirs: &'a BTreeMap<String, PathBuf>) -> V1<'a> {
        V1 { dirs }
    }

    /// The directory of `controller`, if its hierarchy is mounted.
    fn dir(&self, controller: &str) -> Option<&'a Path> {
        self.dirs.get(controller).map(PathBuf::as_path)
    }

    /// The directory of `controller`, or an error naming `field` when it is not mounted.
    fn need(&self, controller: &str, field: &str) -> Result<&'a Path> {
        self.dir(controller)
            .ok_or_else(|| Error::ControllerMissing {
                field: field.to_string(),
                controller: controller.to_string(),
            })
    }

    /// Everything that can fail without a write: a v2-only field, or a field whose
    /// controller is not mounted. Runs before any write.
    fn preflight(&self, r: &LinuxResources) -> Result<()> {
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(Error::Invalid {
                field: "linux.resources.unified".into(),
                reason: "needs cgroup v2; this host uses cgroup v1".into(),
            });
        }
        if r.memory().as_ref().is_some_and(memory::sets_anything) {
            self.need("memory", "linux.resources.memory")?;
        }
        if let Some(c) = r.cpu() {
            if cpu::sets_anything(c) {
                self.need("cpu", "linux.resources.cpu")?;
            }
            if cpuset::sets_anything(c) {
                self.need("cpuset", "linux.resources.cpu.cpus/mems")?;
            }
        }
        for (needed, controller, field) in [
            (r.pids().is_some(), "pids", "linux.resources.pids"),
            (r.block_io().is_some(), "blkio", "linux.resources.blockIO"),
            (
                r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()),
                "hugetlb",
                "linux.resources.hugepageLimits",
            ),
            (
                r.rdma().as_ref().is_some_and(|h| !h.is_empty()),
                "rdma",
                "linux.resources.rdma",
            ),
            (
                r.devices().as_ref().is_some_and(|d| !d.is_empty()),
                "devices",
                "linux.resources.devices",
            ),
        ] {
            if needed {
                self.need(controller, field)?;
            }
        }
        Ok(())
    }
}

impl Backend for V1<'_> {
    fn dirs(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = Vec::new();
        for d in self.dirs.values() {
            if !v.contains(&d.as_path()) {
                v.push(d);
            }
        }
        v
    }

    fn create(&self, made: &mut Vec<PathBuf>) -> Result<()> {
        for d in self.dirs() {
            made.extend(fsutil::mkdir_all(d)?);
        }
        if let Some(d) = self.dir("cpuset") {
            cpuset::init(d, made)?;
        }
        Ok(())
    }

    fn apply(&self, r: &LinuxResources, warnings: &mut Vec<String>) -> Result<()> {
        self.preflight(r)?;
        if let Some(d) = self.dir("devices") {
            if let Some(rules) = r.devices().as_ref().filter(|d| !d.is_empty()) {
                devices::write_rules(d, rules)?;
            }
        }
        if let (Some(m), Some(d)) = (r.memory(), self.dir("memory")) {
            memory::apply(d, m)?;
        }
        if let Some(c) = r.cpu() {
            if let Some(d) = self.dir("cpu") {
                cpu::apply(d, c)?;
            }
            if let Some(d) = self.dir("cpuset") {
                cpuset::apply(d, c)?;
            }
        }
        if let (Some(p), Some(d)) = (r.pids(), self.dir("pids")) {
            pids::write_max(d, p)?;
        }
        if let (Some(b), Some(d)) = (r.block_io(), self.dir("blkio")) {
            blkio::apply(d, b, warnings)?;
        }
        if let Some(d) = self.dir("hugetlb") {
            hugetlb::apply(d, r.hugepage_limits().as_deref().unwrap_or(&[]))?;
        }
        if let Some(n) = r.network() {
            net::apply(self.dir("net_cls"), self.dir("net_prio"), n, warnings)?;
        }
        if let Some(d) = self.dir("rdma") {
            rdma::write_max(d, r)?;
        }
        Ok(())
    }

    fn v2_dir_fd(&self) -> Result<Option<OwnedFd>> {
        Ok(None)
    }

    fn freeze(&self) -> Result<()> {
        freezer::set(self.need("freezer", "freeze")?, true)
    }

    fn thaw(&self) -> Result<()> {
        freezer::set(self.need("freezer", "thaw")?, false)
    }

    fn frozen(&self) -> Result<bool> {
        freezer::frozen(self.need("freezer", "frozen")?)
    }

    fn procs_dir(&self) -> Result<&Path> {
        // A hierarchy every container has, so sub-cgroups the container made are found too.
        [
            "pids",
            "freezer",
            "devices",
            "memory",
            "cpu",
            "name=systemd",
        ]
        .iter()
        .find_map(|c| self.dir(c))
        .or_else(|| self.dirs().into_iter().next())
        .ok_or(Error::NoCgroups)
    }

    fn can_freeze(&self) -> bool {
        self.dir("freezer").is_some()
    }

    fn probe_dir(&self) -> Option<&Path> {
        self.dir("freezer")
            .or_else(|| self.dirs.values().next().map(PathBuf::as_path))
    }

    fn stats(&self) -> Result<Stats> {
        stats::read(self)
    }

    fn oom_kill_count(&self) -> Result<u64> {
        let p = self
            .need("memory", "oom_kill_count")?
            .join("memory.oom_control");
        let s = fsutil::read(&p)?;
        Ok(keyed(&flat_keyed(&s), "oom_kill"))
    }
}
