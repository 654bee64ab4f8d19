//! memory: validation shared by both backends.

use oci_spec::runtime::LinuxMemory;

use super::{check_min, invalid};
use crate::Result;

pub(crate) fn validate(m: &LinuxMemory, warnings: &mut Vec<String>) -> Result<()> {
    check_min("linux.resources.memory.limit", m.limit(), -1)?;
    check_min("linux.resources.memory.reservation", m.reservation(), -1)?;
    check_min("linux.resources.memory.swap", m.swap(), -1)?;
    if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
        if l > 0 && s > 0 && s < l {
            return Err(invalid(
                "linux.resources.memory.swap",
                format!("{s} is below memory.limit {l} (swap is the memory+swap total)"),
            ));
        }
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(invalid(
                "linux.resources.memory.swappiness",
                format!("{s} is not in 0..=100"),
            ));
        }
    }
    if m.kernel().is_some() {
        warnings.push(
            "linux.resources.memory.kernel is deprecated and ignored (the kernel no longer supports kernel memory limits)".into(),
        );
    }
    if m.kernel_tcp().is_some() {
        warnings.push("linux.resources.memory.kernelTCP is ignored".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(json: &str) -> LinuxMemory {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn swap_is_the_memory_plus_swap_total() {
        let mut w = Vec::new();
        assert!(validate(&mem(r#"{"limit":100,"swap":50}"#), &mut w).is_err());
        assert!(validate(&mem(r#"{"limit":100,"swap":100}"#), &mut w).is_ok());
        assert!(validate(&mem(r#"{"limit":100,"swap":-1}"#), &mut w).is_ok());
        assert!(validate(&mem(r#"{"limit":-1,"swap":50}"#), &mut w).is_ok());
        assert!(validate(&mem(r#"{"swappiness":101}"#), &mut w).is_err());
        assert!(w.is_empty());
    }
}
