//! devices: validation, and the rules in the normalised form the v2 eBPF program is built
//! from. (v1 writes the rules as text: v1/devices.rs.)

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType as T, LinuxResources};

use super::invalid;
use crate::bpf::{self, DevRule};
use crate::Result;

/// The device rules in normalised form; `p` (FIFO) rules are skipped with a warning (the
/// devices controller only knows block and char devices).
pub(crate) fn rules(r: &LinuxResources, warnings: &mut Vec<String>) -> Result<Vec<DevRule>> {
    let mut out = Vec::new();
    for (i, d) in r.devices().iter().flatten().enumerate() {
        let f = format!("linux.resources.devices[{i}]");
        if let Some(rule) = rule(&f, d, warnings)? {
            out.push(rule);
        }
    }
    Ok(out)
}

/// One rule; `None` for a `p` rule (warned about).
fn rule(f: &str, d: &LinuxDeviceCgroup, warnings: &mut Vec<String>) -> Result<Option<DevRule>> {
    let typ = match d.typ().unwrap_or(T::A) {
        T::A => None,
        T::B => Some(bpf::DEV_BLOCK),
        T::C | T::U => Some(bpf::DEV_CHAR),
        T::P => {
            warnings.push(format!(
                "{f}: type \"p\" is not controlled by the devices cgroup; rule ignored"
            ));
            return Ok(None);
        }
    };
    let major = number(f, "major", d.major())?;
    let minor = number(f, "minor", d.minor())?;
    let access = access_bits(f, d.access().as_deref())?;
    let (major, minor) = if typ.is_none() {
        (None, None)
    } else {
        (major, minor)
    };
    Ok(Some(DevRule {
        allow: d.allow(),
        typ,
        major,
        minor,
        access,
    }))
}

/// A device number: absent or -1 is any (`None`).
fn number(f: &str, what: &str, v: Option<i64>) -> Result<Option<u32>> {
    match v {
        None | Some(-1) => Ok(None),
        Some(x) if x < 0 || x > i64::from(i32::MAX) => Err(invalid(
            &format!("{f}.{what}"),
            format!("{x} is not a device number (use -1 or omit it for all)"),
        )),
        Some(x) => Ok(Some(x as u32)),
    }
}

/// The access string ("rwm" when absent or empty) as ACC_* bits.
fn access_bits(f: &str, access: Option<&str>) -> Result<u32> {
    let acc_str = access.unwrap_or("rwm");
    let acc_str = if acc_str.is_empty() { "rwm" } else { acc_str };
    let mut bits = 0;
    for c in acc_str.chars() {
        bits |= match c {
            'r' => bpf::ACC_READ,
            'w' => bpf::ACC_WRITE,
            'm' => bpf::ACC_MKNOD,
            _ => {
                return Err(invalid(
                    &format!("{f}.access"),
                    format!("{acc_str:?} may only contain r, w and m"),
                ))
            }
        };
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_of(json: &str) -> (Result<Vec<DevRule>>, Vec<String>) {
        let r: LinuxResources = serde_json::from_str(json).unwrap();
        let mut w = Vec::new();
        (rules(&r, &mut w), w)
    }

    #[test]
    fn normalises_rules() {
        let (r, w) = rules_of(
            r#"{"devices":[{"allow":false},{"allow":true,"type":"c","major":1,"minor":-1,"access":"rm"},
                {"allow":true,"type":"p"},{"allow":true,"type":"a","major":5,"access":""}]}"#,
        );
        let r = r.unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("linux.resources.devices[2]"), "{w:?}");
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].allow, r[0].typ, r[0].access), (false, None, 7));
        assert_eq!(
            (r[1].typ, r[1].major, r[1].minor, r[1].access),
            (
                Some(bpf::DEV_CHAR),
                Some(1),
                None,
                bpf::ACC_READ | bpf::ACC_MKNOD
            )
        );
        // 'a' matches every device whatever numbers it names.
        assert_eq!((r[2].major, r[2].minor, r[2].access), (None, None, 7));
    }

    #[test]
    fn bad_rules_name_the_entry() {
        let (r, _) = rules_of(r#"{"devices":[{"allow":true},{"allow":true,"access":"rwx"}]}"#);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("linux.resources.devices[1].access"), "{e}");
        let (r, _) = rules_of(r#"{"devices":[{"allow":true,"type":"b","minor":2147483648}]}"#);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("linux.resources.devices[0].minor"), "{e}");
    }
}
