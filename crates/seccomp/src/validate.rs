//! Parse OCI `linux.seccomp` JSON with errors that name the offending field (serde's own
//! message for an unknown enum value names neither the field nor the entry).

use oci_spec::runtime::LinuxSeccomp;
use serde_json::Value;

use crate::Error;

pub(crate) const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_LOG",
    "SCMP_ACT_ALLOW",
];
pub(crate) const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];
pub(crate) const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
];

fn one_of<'a>(v: &'a Value, field: &str, allowed: &[&str], what: &str) -> Result<&'a str, Error> {
    let s = v
        .as_str()
        .ok_or_else(|| Error::invalid(field, format!("expected a string, got {v}")))?;
    if s == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" {
        return Err(Error::invalid(
            field,
            format!(
                "{s} is not supported (the OCI types berth uses cannot carry it; known: {})",
                allowed.join(", ")
            ),
        ));
    }
    if allowed.contains(&s) {
        Ok(s)
    } else {
        Err(Error::invalid(
            field,
            format!("unknown {what} {s:?} (known: {})", allowed.join(", ")),
        ))
    }
}

pub(crate) fn check_action(v: &Value, field: &str) -> Result<(), Error> {
    one_of(v, field, ACTIONS, "seccomp action").map(|_| ())
}

pub(crate) fn check_arch(v: &Value, field: &str) -> Result<(), Error> {
    let s = v
        .as_str()
        .ok_or_else(|| Error::invalid(field, format!("expected a string, got {v}")))?;
    let parsed: Result<oci_spec::runtime::Arch, _> = s.parse();
    match parsed {
        Ok(_) => Ok(()), // whether berth can filter it is decided by compile()
        Err(_) => Err(Error::invalid(field, format!("unknown architecture {s:?}"))),
    }
}

fn check_uint(v: &Value, field: &str, max: u64) -> Result<(), Error> {
    match v.as_u64() {
        Some(n) if n <= max => Ok(()),
        _ => Err(Error::invalid(
            field,
            format!("expected an integer in 0..={max}, got {v}"),
        )),
    }
}

pub(crate) fn check_args(v: &Value, field: &str) -> Result<(), Error> {
    if v.is_null() {
        return Ok(());
    }
    let args = v
        .as_array()
        .ok_or_else(|| Error::invalid(field, "expected an array".into()))?;
    for (k, a) in args.iter().enumerate() {
        let f = format!("{field}[{k}]");
        let o = a
            .as_object()
            .ok_or_else(|| Error::invalid(&f, "expected an object".into()))?;
        check_uint(
            o.get("index").unwrap_or(&Value::Null),
            &format!("{f}.index"),
            5,
        )?;
        check_uint(
            o.get("value").unwrap_or(&Value::Null),
            &format!("{f}.value"),
            u64::MAX,
        )?;
        if let Some(v2) = o.get("valueTwo") {
            check_uint(v2, &format!("{f}.valueTwo"), u64::MAX)?;
        }
        one_of(
            o.get("op").unwrap_or(&Value::Null),
            &format!("{f}.op"),
            OPS,
            "seccomp operator",
        )?;
    }
    Ok(())
}

/// Parse a `linux.seccomp` object. Every action, architecture, flag, operator and number is
/// checked first so that an error names its field (`syscalls[3].action: unknown seccomp action
/// "SCMP_ACT_FOO"`). Syscall names are checked by [`crate::compile`].
pub fn parse_oci(json: &[u8]) -> Result<LinuxSeccomp, Error> {
    let v: Value =
        serde_json::from_slice(json).map_err(|e| Error::invalid("(json)", e.to_string()))?;
    let o = v
        .as_object()
        .ok_or_else(|| Error::invalid("(json)", "expected an object".into()))?;
    check_action(
        o.get("defaultAction").unwrap_or(&Value::Null),
        "defaultAction",
    )?;
    if let Some(e) = o.get("defaultErrnoRet") {
        check_uint(e, "defaultErrnoRet", u32::MAX as u64)?;
    }
    for (key, check) in [
        (
            "architectures",
            check_arch as fn(&Value, &str) -> Result<(), Error>,
        ),
        ("flags", |v: &Value, f: &str| {
            one_of(v, f, FLAGS, "seccomp filter flag").map(|_| ())
        }),
    ] {
        match o.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, it) in items.iter().enumerate() {
                    check(it, &format!("{key}[{i}]"))?;
                }
            }
            Some(_) => return Err(Error::invalid(key, "expected an array".into())),
        }
    }
    match o.get("syscalls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(calls)) => {
            for (i, c) in calls.iter().enumerate() {
                let f = format!("syscalls[{i}]");
                let co = c
                    .as_object()
                    .ok_or_else(|| Error::invalid(&f, "expected an object".into()))?;
                match co.get("names") {
                    Some(Value::Array(ns)) => {
                        for (j, n) in ns.iter().enumerate() {
                            if !n.is_string() {
                                return Err(Error::invalid(
                                    &format!("{f}.names[{j}]"),
                                    format!("expected a string, got {n}"),
                                ));
                            }
                        }
                    }
                    _ => {
                        return Err(Error::invalid(
                            &format!("{f}.names"),
                            "expected an array of syscall names".into(),
                        ))
                    }
                }
                check_action(
                    co.get("action").unwrap_or(&Value::Null),
                    &format!("{f}.action"),
                )?;
                if let Some(e) = co.get("errnoRet") {
                    check_uint(e, &format!("{f}.errnoRet"), u32::MAX as u64)?;
                }
                check_args(co.get("args").unwrap_or(&Value::Null), &format!("{f}.args"))?;
            }
        }
        Some(_) => return Err(Error::invalid("syscalls", "expected an array".into())),
    }
    serde_json::from_value(v).map_err(|e| Error::invalid("(json)", e.to_string()))
}
