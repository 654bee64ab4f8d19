//! What both backends share, one module per controller: validation of `linux.resources`
//! (all of it runs before a backend writes anything, so bad input never leaves a
//! half-configured cgroup), value conversions, and the writes that are the same file and
//! format on v1 and v2 (`pids.max`, `rdma.max`). How each backend writes the rest lives in
//! `v1/` and `v2/`.

pub(crate) mod blkio;
pub(crate) mod cpu;
pub(crate) mod devices;
pub(crate) mod hugetlb;
pub(crate) mod memory;
pub(crate) mod network;
pub(crate) mod pids;
pub(crate) mod rdma;
pub(crate) mod unified;

use oci_spec::runtime::LinuxResources;

use crate::{Error, Result};

/// Check every field of `r`; push warnings for fields that will be ignored. Fields are checked
/// in a fixed order (memory, cpu, pids, blockIO, hugepageLimits, network, rdma, unified,
/// devices) and the first bad one is the error.
pub(crate) fn validate(r: &LinuxResources, warnings: &mut Vec<String>) -> Result<()> {
    if let Some(m) = r.memory() {
        memory::validate(m, warnings)?;
    }
    if let Some(c) = r.cpu() {
        cpu::validate(c)?;
    }
    if let Some(p) = r.pids() {
        pids::validate(p)?;
    }
    if let Some(b) = r.block_io() {
        blkio::validate(b)?;
    }
    hugetlb::validate(r.hugepage_limits().as_deref().unwrap_or(&[]))?;
    if let Some(n) = r.network() {
        network::validate(n)?;
    }
    rdma::validate(r.rdma().as_ref())?;
    unified::validate(r.unified().as_ref())?;
    devices::rules(r, warnings)?;
    Ok(())
}

pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// `v`, when present, must be at least `min` (-1 meaning unlimited).
pub(crate) fn check_min(field: &str, v: Option<i64>, min: i64) -> Result<()> {
    match v {
        Some(x) if x < min => Err(invalid(
            field,
            format!("{x} is negative (use -1 for unlimited)"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn field_of(json: &str) -> String {
        match validate(&res(json), &mut Vec::new()) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{json}: {other:?}"),
        }
    }

    #[test]
    fn check_min_allows_minus_one() {
        assert!(check_min("f", Some(-1), -1).is_ok());
        assert!(check_min("f", None, -1).is_ok());
        assert!(check_min("f", Some(-2), -1).is_err());
    }

    #[test]
    fn the_first_bad_field_in_a_fixed_order_is_reported() {
        // pids is checked after memory, whatever the order in the JSON.
        assert_eq!(
            field_of(r#"{"pids":{"limit":-3},"memory":{"limit":-2}}"#),
            "linux.resources.memory.limit"
        );
        assert_eq!(
            field_of(r#"{"rdma":{"mlx 4":{}},"unified":{"a/b":"1"}}"#),
            "linux.resources.rdma"
        );
        assert_eq!(
            field_of(r#"{"unified":{"cgroup.procs":"1"}}"#),
            "linux.resources.unified"
        );
        assert_eq!(
            field_of(r#"{"network":{"priorities":[{"name":"a b","priority":1}]}}"#),
            "linux.resources.network.priorities.name"
        );
    }

    #[test]
    fn valid_input_passes_with_warnings() {
        let mut w = Vec::new();
        validate(
            &res(r#"{"memory":{"limit":-1,"kernel":1,"kernelTCP":1},"cpu":{"shares":0,"quota":-1,"period":100000,"cpus":"0-1,3"},
                "pids":{"limit":0},"blockIO":{"weight":0,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":0}]},
                "hugepageLimits":[{"pageSize":"2MB","limit":-1}],"rdma":{"mlx5_0":{"hcaHandles":3}},
                "unified":{"cgroup.max.depth":"2","memory.high":"max"},
                "devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"p"}]}"#),
            &mut w,
        )
        .unwrap();
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("memory.kernel"));
        assert!(w[1].contains("kernelTCP"));
        assert!(w[2].contains("devices[1]"));
    }
}
