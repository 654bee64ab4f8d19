//! Docker's seccomp profile format -> OCI `LinuxSeccomp`, resolving `includes`/`excludes`
//! for a capability set, an architecture and the running kernel the way moby's
//! `profiles/seccomp` does.

use oci_spec::runtime::{Arch as OciArch, LinuxSeccomp, LinuxSeccompArg, LinuxSyscall};
use serde::Deserialize;
use serde_json::Value;

use crate::validate::{check_action, check_args, FLAGS};
use crate::Error;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: Option<Value>,
    default_errno_ret: Option<Value>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    flags: Vec<String>,
    listener_path: Option<String>,
    listener_metadata: Option<String>,
    #[serde(default)]
    syscalls: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    min_kernel: Option<String>,
}

/// Accept the kernel's / Debian's spellings too, but decide with Go's GOARCH names, which is
/// what the profile's `includes.arches` / `excludes.arches` use.
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" | "x86" => "386",
        "armhf" | "armel" | "armv7l" => "arm",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// moby's map from Go's GOARCH to libseccomp architecture names.
fn go_to_scmp(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "386" => "SCMP_ARCH_X86",
        "amd64" => "SCMP_ARCH_X86_64",
        "arm" => "SCMP_ARCH_ARM",
        "arm64" => "SCMP_ARCH_AARCH64",
        "mips64" => "SCMP_ARCH_MIPS64",
        "mips64n32" => "SCMP_ARCH_MIPS64N32",
        "mipsel64" | "mips64le" => "SCMP_ARCH_MIPSEL64",
        "mipsel64n32" => "SCMP_ARCH_MIPSEL64N32",
        "ppc" => "SCMP_ARCH_PPC",
        "ppc64" => "SCMP_ARCH_PPC64",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "s390" => "SCMP_ARCH_S390",
        "s390x" => "SCMP_ARCH_S390X",
        "loong64" => "SCMP_ARCH_LOONGARCH64",
        _ => return None,
    })
}

/// `CAP_SYS_ADMIN` and `sys_admin` and `SYS_ADMIN` compare equal.
fn norm_cap(c: &str) -> String {
    let u = c.trim().to_ascii_uppercase();
    if u.starts_with("CAP_") {
        u
    } else {
        format!("CAP_{u}")
    }
}

fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut it = s.trim().splitn(3, ['.', '-']);
    let major = it.next()?.parse().ok()?;
    let minor_str: String = it
        .next()?
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    Some((major, minor_str.parse().ok()?))
}

/// (major, minor) of the running kernel, from uname(2).
pub(crate) fn running_kernel() -> Result<(u32, u32), Error> {
    // SAFETY: utsname is plain old data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a utsname we own.
    if unsafe { libc::uname(&mut u) } != 0 {
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL);
        return Err(Error::Sys {
            syscall: "uname",
            errno,
        });
    }
    // SAFETY: the kernel NUL-terminates `release`.
    let rel = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    parse_kernel(&rel)
        .ok_or_else(|| Error::invalid("(kernel)", format!("cannot parse kernel release {rel:?}")))
}

/// Convert Docker's profile format to the OCI form for a container with capabilities `caps`
/// on `arch` (Go's GOARCH name: "amd64", "arm64", ...), resolving `includes` / `excludes`
/// (caps, arches, minKernel against the running kernel) as moby does.
pub fn docker_to_oci(
    profile_json: &[u8],
    caps: &[String],
    arch: &str,
) -> Result<LinuxSeccomp, Error> {
    docker_to_oci_for_kernel(profile_json, caps, arch, running_kernel()?)
}

pub(crate) fn docker_to_oci_for_kernel(
    profile_json: &[u8],
    caps: &[String],
    arch: &str,
    kernel: (u32, u32),
) -> Result<LinuxSeccomp, Error> {
    let p: Profile = serde_json::from_slice(profile_json)
        .map_err(|e| Error::invalid("(docker profile json)", e.to_string()))?;
    let arch = go_arch(arch);
    let native = go_to_scmp(arch).ok_or_else(|| {
        Error::invalid(
            "(arch)",
            format!("unknown architecture {arch:?} (expected a Go GOARCH name such as amd64)"),
        )
    })?;
    let caps: Vec<String> = caps.iter().map(|c| norm_cap(c)).collect();

    let default_action = p
        .default_action
        .ok_or_else(|| Error::invalid("defaultAction", "missing".into()))?;
    check_action(&default_action, "defaultAction")?;
    let mut out = LinuxSeccomp::default();
    out.set_default_action(parse_enum(&default_action, "defaultAction")?);
    if let Some(e) = &p.default_errno_ret {
        let n = e
            .as_u64()
            .filter(|n| *n <= u32::MAX as u64)
            .ok_or_else(|| {
                Error::invalid(
                    "defaultErrnoRet",
                    format!("expected a non-negative integer, got {e}"),
                )
            })?;
        out.set_default_errno_ret(Some(n as u32));
    }

    if !p.architectures.is_empty() && p.arch_map.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(Error::invalid(
            "architectures",
            "'architectures' and 'archMap' were both given; use one".into(),
        ));
    }
    let mut arches: Vec<String> = p.architectures.clone();
    for (i, m) in p.arch_map.iter().flatten().enumerate() {
        if m.architecture == native {
            let _ = i;
            arches.push(m.architecture.clone());
            arches.extend(m.sub_architectures.iter().flatten().cloned());
        }
    }
    if !arches.is_empty() {
        let mut parsed = Vec::new();
        for (i, a) in arches.iter().enumerate() {
            let oa: OciArch = a.parse().map_err(|_| {
                Error::invalid(
                    &format!("architectures[{i}]"),
                    format!("unknown architecture {a:?}"),
                )
            })?;
            parsed.push(oa);
        }
        out.set_architectures(Some(parsed));
    }
    if !p.flags.is_empty() {
        let mut flags = Vec::new();
        for (i, f) in p.flags.iter().enumerate() {
            if !FLAGS.contains(&f.as_str()) {
                return Err(Error::invalid(
                    &format!("flags[{i}]"),
                    format!(
                        "unknown seccomp filter flag {f:?} (known: {})",
                        FLAGS.join(", ")
                    ),
                ));
            }
            flags.push(parse_enum(
                &Value::String(f.clone()),
                &format!("flags[{i}]"),
            )?);
        }
        out.set_flags(Some(flags));
    }
    out.set_listener_path(p.listener_path.map(Into::into));
    out.set_listener_metadata(p.listener_metadata);

    let mut syscalls = Vec::new();
    'calls: for (i, c) in p.syscalls.iter().enumerate() {
        let f = format!("syscalls[{i}]");
        let o = c
            .as_object()
            .ok_or_else(|| Error::invalid(&f, "expected an object".into()))?;
        let sub = |key: &str| -> Result<Filter, Error> {
            match o.get(key) {
                None | Some(Value::Null) => Ok(Filter::default()),
                Some(v) => serde_json::from_value(v.clone())
                    .map_err(|e| Error::invalid(&format!("{f}.{key}"), e.to_string())),
            }
        };
        let inc = sub("includes")?;
        let exc = sub("excludes")?;
        let min_kernel = |mk: &Option<String>, key: &str| -> Result<Option<bool>, Error> {
            match mk {
                None => Ok(None),
                Some(s) => {
                    let v = parse_kernel(s).ok_or_else(|| {
                        Error::invalid(
                            &format!("{f}.{key}.minKernel"),
                            format!("invalid kernel version {s:?} (expected e.g. \"4.8\")"),
                        )
                    })?;
                    Ok(Some(kernel >= v))
                }
            }
        };
        // excludes first, then includes (moby's order)
        if exc.arches.iter().any(|a| a == arch) {
            continue 'calls;
        }
        if exc.caps.iter().any(|c| caps.contains(&norm_cap(c))) {
            continue 'calls;
        }
        if min_kernel(&exc.min_kernel, "excludes")? == Some(true) {
            continue 'calls;
        }
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch) {
            continue 'calls;
        }
        if inc.caps.iter().any(|c| !caps.contains(&norm_cap(c))) {
            continue 'calls;
        }
        if min_kernel(&inc.min_kernel, "includes")? == Some(false) {
            continue 'calls;
        }

        let name = o
            .get("name")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty());
        let names: Vec<String> = match o.get("names") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| Error::invalid(&format!("{f}.names"), e.to_string()))?,
        };
        let names = match (name, names.is_empty()) {
            (Some(_), false) => {
                return Err(Error::invalid(
                    &f,
                    "use either 'name' or 'names', not both".into(),
                ))
            }
            (Some(n), true) => vec![n.to_string()],
            (None, _) => names,
        };
        let action = o.get("action").cloned().unwrap_or(Value::Null);
        check_action(&action, &format!("{f}.action"))?;
        let mut sc = LinuxSyscall::default();
        sc.set_names(names);
        sc.set_action(parse_enum(&action, &format!("{f}.action"))?);
        if let Some(e) = o.get("errnoRet").filter(|v| !v.is_null()) {
            let n = e
                .as_u64()
                .filter(|n| *n <= u32::MAX as u64)
                .ok_or_else(|| {
                    Error::invalid(
                        &format!("{f}.errnoRet"),
                        format!("expected a non-negative integer, got {e}"),
                    )
                })?;
            sc.set_errno_ret(Some(n as u32));
        }
        let args_v = o.get("args").cloned().unwrap_or(Value::Null);
        check_args(&args_v, &format!("{f}.args"))?;
        if !args_v.is_null() {
            let args: Vec<LinuxSeccompArg> = serde_json::from_value(args_v)
                .map_err(|e| Error::invalid(&format!("{f}.args"), e.to_string()))?;
            if !args.is_empty() {
                sc.set_args(Some(args));
            }
        }
        syscalls.push(sc);
    }
    out.set_syscalls(Some(syscalls));
    Ok(out)
}

fn parse_enum<T: serde::de::DeserializeOwned>(v: &Value, field: &str) -> Result<T, Error> {
    serde_json::from_value(v.clone()).map_err(|e| Error::invalid(field, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel("6.18.0-1-cloud-amd64"), Some((6, 18)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("5.10rc1"), Some((5, 10)));
        assert_eq!(parse_kernel("x.y"), None);
        assert!(running_kernel().unwrap() >= (3, 0));
    }

    #[test]
    fn cap_names_normalised() {
        assert_eq!(norm_cap("sys_admin"), "CAP_SYS_ADMIN");
        assert_eq!(norm_cap("CAP_KILL"), "CAP_KILL");
    }
}
