//! v1 devices: `devices.deny a`, then the rules as text lines in order.

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::fsutil;
use crate::Result;

/// One v1 device rule: allow?, type ('a', 'c' or 'b'), major, minor (None = any), access.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DevRule {
    allow: bool,
    typ: char,
    major: Option<i64>,
    minor: Option<i64>,
    access: String,
}

impl DevRule {
    fn line(&self) -> String {
        if self.typ == 'a' {
            return format!("a *:* {}", self.access);
        }
        let n = |v: Option<i64>| v.map_or_else(|| "*".to_string(), |x| x.to_string());
        format!(
            "{} {}:{} {}",
            self.typ,
            n(self.major),
            n(self.minor),
            self.access
        )
    }

    /// Whether the two rules can apply to a common device and access.
    fn overlaps(&self, o: &DevRule) -> bool {
        let num = |a: Option<i64>, b: Option<i64>| a.is_none() || b.is_none() || a == b;
        (self.typ == 'a'
            || o.typ == 'a'
            || self.typ == o.typ && num(self.major, o.major) && num(self.minor, o.minor))
            && self.access.chars().any(|c| o.access.contains(c))
    }
}

/// The rules in order after `devices.deny a`, without those that change nothing: a rule
/// equal to an earlier one with no rule of the other kind touching it in between (runtimes
/// and engines both add the default devices, so the list comes with every entry twice).
fn effective_rules(rules: Vec<DevRule>) -> Vec<DevRule> {
    let deny_all = DevRule {
        allow: false,
        typ: 'a',
        major: None,
        minor: None,
        access: "rwm".into(),
    };
    let mut out: Vec<DevRule> = Vec::new();
    for r in rules {
        let earlier = std::iter::once(&deny_all).chain(out.iter());
        let mut redundant = false;
        for e in earlier {
            if *e == r {
                redundant = true;
            } else if e.allow != r.allow && e.overlaps(&r) {
                redundant = false;
            }
        }
        if !redundant {
            out.push(r);
        }
    }
    out
}

/// The v1 form of a spec rule; `None` for a `p` rule (warned about in validation).
fn parse(rule: &LinuxDeviceCgroup) -> Option<DevRule> {
    let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::P => return None,
        LinuxDeviceType::B => 'b',
        _ => 'c',
    };
    Some(DevRule {
        allow: rule.allow(),
        typ,
        major: rule.major().filter(|v| *v != -1),
        minor: rule.minor().filter(|v| *v != -1),
        access: rule
            .access()
            .as_deref()
            .filter(|a| !a.is_empty())
            .unwrap_or("rwm")
            .to_string(),
    })
}

/// `devices.deny a`, then each effective rule in order, through one open file per name.
pub(crate) fn write_rules(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let parsed = rules.iter().filter_map(parse).collect();
    let field = "linux.resources.devices";
    let mut deny = fsutil::Writer::open(dir, "devices.deny", field)?;
    deny.write("a")?;
    let mut allow: Option<fsutil::Writer> = None;
    for r in effective_rules(parsed) {
        let line = r.line();
        if r.allow {
            if allow.is_none() {
                allow = Some(fsutil::Writer::open(dir, "devices.allow", field)?);
            }
            if let Some(w) = allow.as_mut() {
                w.write(&line)?;
            }
        } else {
            deny.write(&line)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        typ: char,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DevRule {
        DevRule {
            allow,
            typ,
            major,
            minor,
            access: access.into(),
        }
    }

    fn lines(v: &[DevRule]) -> Vec<String> {
        v.iter()
            .map(|r| format!("{} {}", if r.allow { "allow" } else { "deny" }, r.line()))
            .collect()
    }

    #[test]
    fn spec_rules_become_lines() {
        let rules: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow":false},{"allow":true,"type":"c","major":1,"minor":-1,"access":"mr"},
                {"allow":true,"type":"p"},{"allow":true,"type":"u","major":4,"access":""},
                {"allow":false,"type":"b","major":8,"minor":0,"access":"w"}]"#,
        )
        .unwrap();
        let parsed: Vec<DevRule> = rules.iter().filter_map(parse).collect();
        assert_eq!(
            lines(&parsed),
            [
                "deny a *:* rwm",
                "allow c 1:* mr",
                "allow c 4:* rwm",
                "deny b 8:0 w"
            ]
        );
    }

    #[test]
    fn repeated_default_devices_are_written_once() {
        // What berthd's spec gives the runtime: deny all, the default devices, Docker's list
        // (which repeats them), a deny in between that touches none of them.
        let null = rule(true, 'c', Some(1), Some(3), "rwm");
        let zero = rule(true, 'c', Some(1), Some(5), "rwm");
        let fuse = rule(false, 'c', Some(10), Some(229), "rwm");
        let any_mknod = rule(true, 'c', None, None, "m");
        let input = vec![
            rule(false, 'a', None, None, "rwm"),
            null.clone(),
            zero.clone(),
            fuse.clone(),
            any_mknod.clone(),
            null.clone(),
            zero.clone(),
        ];
        assert_eq!(
            lines(&effective_rules(input)),
            [
                "allow c 1:3 rwm",
                "allow c 1:5 rwm",
                "deny c 10:229 rwm",
                "allow c *:* m"
            ]
        );
    }

    #[test]
    fn a_repeat_after_an_overlapping_opposite_rule_is_kept() {
        let null = rule(true, 'c', Some(1), Some(3), "rwm");
        let input = vec![
            null.clone(),
            rule(false, 'c', Some(1), None, "w"),
            null.clone(),
            rule(false, 'a', None, None, "rwm"),
            null.clone(),
            rule(false, 'b', Some(1), Some(3), "rwm"),
            null.clone(),
        ];
        // The 'b' deny touches no char device: the last repeat changes nothing.
        assert_eq!(
            lines(&effective_rules(input)),
            [
                "allow c 1:3 rwm",
                "deny c 1:* w",
                "allow c 1:3 rwm",
                "deny a *:* rwm",
                "allow c 1:3 rwm",
                "deny b 1:3 rwm"
            ]
        );
    }
}
