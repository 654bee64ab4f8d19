//! cpu and cpuset: validation and the cpu.shares -> cpu.weight conversion.

use oci_spec::runtime::LinuxCpu;

use super::{check_min, invalid};
use crate::Result;

pub(crate) fn validate(c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares() {
        if s != 0 && !(2..=262144).contains(&s) {
            return Err(invalid(
                "linux.resources.cpu.shares",
                format!("{s} is not in 2..=262144"),
            ));
        }
    }
    check_min("linux.resources.cpu.quota", c.quota(), -1)?;
    if let Some(q) = c.quota() {
        if q > 0 && q < 1000 {
            return Err(invalid(
                "linux.resources.cpu.quota",
                format!("{q} is below the kernel's minimum of 1000 microseconds"),
            ));
        }
    }
    if let Some(p) = c.period() {
        if p != 0 && !(1000..=1_000_000).contains(&p) {
            return Err(invalid(
                "linux.resources.cpu.period",
                format!("{p} is not in 1000..=1000000 microseconds"),
            ));
        }
    }
    check_min(
        "linux.resources.cpu.realtimeRuntime",
        c.realtime_runtime(),
        -1,
    )?;
    if let Some(i) = c.idle() {
        if i != 0 && i != 1 {
            return Err(invalid(
                "linux.resources.cpu.idle",
                format!("{i} must be 0 or 1"),
            ));
        }
    }
    if let Some(s) = c.cpus() {
        check_list("linux.resources.cpu.cpus", s)?;
    }
    if let Some(s) = c.mems() {
        check_list("linux.resources.cpu.mems", s)?;
    }
    Ok(())
}

/// A cpuset list ("0-2,4"): digits, commas and dashes only.
fn check_list(field: &str, s: &str) -> Result<()> {
    if !s
        .chars()
        .all(|c| c.is_ascii_digit() || c == ',' || c == '-')
    {
        return Err(invalid(
            field,
            format!("{s:?} is not a list like \"0-2,4\""),
        ));
    }
    Ok(())
}

/// runc's conversion of cgroup v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.saturating_sub(2)) * 9999) / 262142
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(json: &str) -> LinuxCpu {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn ranges() {
        for ok in [
            r#"{"shares":0}"#,
            r#"{"shares":2}"#,
            r#"{"quota":-1}"#,
            r#"{"quota":1000}"#,
            r#"{"period":0}"#,
            r#"{"period":1000000}"#,
            r#"{"idle":1}"#,
            r#"{"cpus":"","mems":"0-1,3"}"#,
        ] {
            assert!(validate(&cpu(ok)).is_ok(), "{ok}");
        }
        for bad in [
            r#"{"shares":1}"#,
            r#"{"shares":262145}"#,
            r#"{"quota":999}"#,
            r#"{"quota":-2}"#,
            r#"{"period":999}"#,
            r#"{"realtimeRuntime":-2}"#,
            r#"{"idle":2}"#,
            r#"{"cpus":"0 1"}"#,
            r#"{"mems":"0;1"}"#,
        ] {
            assert!(validate(&cpu(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn shares_to_weight_bounds() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262144), 10000);
    }
}
