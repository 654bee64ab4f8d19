//! The `local` driver's options, as dockerd's: `type`, `device`, `o` (a filesystem mounted on
//! the volume's `_data` when a container first uses it: `type=tmpfs,device=tmpfs,o=size=64m`,
//! `type=none,device=/host/dir,o=bind`, `type=xfs,device=/dev/sdb1`), and `size` (a project
//! quota on `_data`, `quota.rs`). The mount is made at container create (and again at a start
//! that finds it gone, e.g. after a reboot) and unmounted when the last container using the
//! volume is removed, and at the volume's removal.
use crate::{Error, Result};
use nix::mount::{MntFlags, MsFlags};
use std::collections::BTreeMap;
use std::path::Path;

/// Options the driver takes; each of `device`, `type`, `o` needs the others it names.
const VALID: [&str; 4] = ["type", "o", "device", "size"];
const MANDATORY: [(&str, &str); 3] = [("device", "type"), ("type", "device"), ("o", "device")];

/// dockerd's checks of `DriverOpts` at volume create (`quota`: the root's filesystem can
/// enforce a `size`).
pub(crate) fn validate(opts: &BTreeMap<String, String>, quota: bool) -> Result<()> {
    let bad = |m: String| Err(Error::BadParameter(m));
    if let Some(k) = opts.keys().find(|k| !VALID.contains(&k.as_str())) {
        return bad(format!("invalid option: {k:?}"));
    }
    for (k, need) in MANDATORY {
        if opts.contains_key(k) && !opts.contains_key(need) {
            return bad(format!("missing required option: {need:?}"));
        }
    }
    if let Some(v) = opts.get("size") {
        match crate::prepare::parse_size(v) {
            None => return bad(format!("invalid size: '{v}'")),
            Some(n) if n > 0 && !quota => {
                return bad(
                    "quota size requested but no quota support (the volumes' filesystem has no project quotas)"
                        .into(),
                )
            }
            Some(_) => {}
        }
        if opts.contains_key("device") {
            return bad("size is a quota on the volume's directory: it cannot be given with device (use o=size= for tmpfs)".into());
        }
    }
    Ok(())
}

/// The volume's data is a mount of its own (it has `device`).
pub(crate) fn mounts(opts: &BTreeMap<String, String>) -> bool {
    opts.contains_key("device")
}

/// `mount(8)`'s flag words in `o`; the rest is the filesystem's data.
fn flag(word: &str) -> Option<(MsFlags, bool)> {
    let f = match word {
        "ro" => (MsFlags::MS_RDONLY, true),
        "rw" => (MsFlags::MS_RDONLY, false),
        "suid" => (MsFlags::MS_NOSUID, false),
        "nosuid" => (MsFlags::MS_NOSUID, true),
        "dev" => (MsFlags::MS_NODEV, false),
        "nodev" => (MsFlags::MS_NODEV, true),
        "exec" => (MsFlags::MS_NOEXEC, false),
        "noexec" => (MsFlags::MS_NOEXEC, true),
        "sync" => (MsFlags::MS_SYNCHRONOUS, true),
        "async" => (MsFlags::MS_SYNCHRONOUS, false),
        "dirsync" => (MsFlags::MS_DIRSYNC, true),
        "mand" => (MsFlags::MS_MANDLOCK, true),
        "nomand" => (MsFlags::MS_MANDLOCK, false),
        "atime" => (MsFlags::MS_NOATIME, false),
        "noatime" => (MsFlags::MS_NOATIME, true),
        "diratime" => (MsFlags::MS_NODIRATIME, false),
        "nodiratime" => (MsFlags::MS_NODIRATIME, true),
        "bind" => (MsFlags::MS_BIND, true),
        "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, true),
        "relatime" => (MsFlags::MS_RELATIME, true),
        "norelatime" => (MsFlags::MS_RELATIME, false),
        "strictatime" => (MsFlags::MS_STRICTATIME, true),
        "nostrictatime" => (MsFlags::MS_STRICTATIME, false),
        _ => return None,
    };
    Some(f)
}

/// `o` as mount flags and data.
fn parse_o(o: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for w in o.split(',').filter(|w| !w.is_empty()) {
        match flag(w) {
            Some((f, true)) => flags |= f,
            Some((f, false)) => flags &= !f,
            None => data.push(w),
        }
    }
    (flags, data.join(","))
}

/// Mounts the volume's filesystem on `data` unless it is mounted there already.
pub(crate) fn mount(name: &str, opts: &BTreeMap<String, String>, data: &Path) -> Result<()> {
    if !mounts(opts) || berth_image::sys::is_mount_root(data) {
        return Ok(());
    }
    let device = opts.get("device").map_or("", String::as_str);
    let typ = opts.get("type").map_or("", String::as_str);
    let (flags, fsdata) = parse_o(opts.get("o").map_or("", String::as_str));
    let r = nix::mount::mount(
        Some(device),
        data,
        (!typ.is_empty() && typ != "none").then_some(typ),
        flags,
        (!fsdata.is_empty()).then_some(fsdata.as_str()),
    );
    if let Err(e) = r {
        return Err(Error::BadParameter(format!(
            "error while mounting volume '{name}': failed to mount local volume: mount {device}:{}, flags: {:#x}, data: {fsdata:?}: {e}",
            data.display(),
            flags.bits()
        )));
    }
    if flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY) {
        // (A bind ignores MS_RDONLY: a remount makes it read-only.)
        let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        if let Err(e) = nix::mount::mount(None::<&str>, data, None::<&str>, ro, None::<&str>) {
            let _ = unmount(name, data);
            return Err(crate::util::internal(
                format!("remount {} read-only", data.display()),
                e,
            ));
        }
    }
    Ok(())
}

/// Unmounts the volume's filesystem from `data` (nothing when none is mounted there); an
/// error while it stays mounted (busy).
pub(crate) fn unmount(name: &str, data: &Path) -> Result<()> {
    if !berth_image::sys::is_mount_root(data) {
        return Ok(());
    }
    match nix::mount::umount2(data, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(e) => Err(Error::Conflict(format!(
            "unmount volume {name} at {}: {e}",
            data.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn validate_as_dockerd() {
        assert!(validate(&m(&[]), false).is_ok());
        let t = m(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")]);
        assert!(validate(&t, false).is_ok());
        let e = validate(&m(&[("foo", "1")]), false).unwrap_err();
        assert_eq!(e.to_string(), "invalid option: \"foo\"");
        let e = validate(&m(&[("type", "tmpfs")]), false).unwrap_err();
        assert_eq!(e.to_string(), "missing required option: \"device\"");
        let e = validate(&m(&[("o", "bind")]), false).unwrap_err();
        assert_eq!(e.to_string(), "missing required option: \"device\"");
        let e = validate(&m(&[("size", "10M")]), false).unwrap_err();
        assert!(e.to_string().contains("no quota support"), "{e}");
        assert!(validate(&m(&[("size", "10M")]), true).is_ok());
        assert!(validate(&m(&[("size", "x")]), true).is_err());
    }

    #[test]
    fn o_splits_into_flags_and_data() {
        let (f, d) = parse_o("bind,ro");
        assert_eq!(f, MsFlags::MS_BIND | MsFlags::MS_RDONLY);
        assert_eq!(d, "");
        let (f, d) = parse_o("size=64m,uid=1000,noexec");
        assert_eq!(f, MsFlags::MS_NOEXEC);
        assert_eq!(d, "size=64m,uid=1000");
    }
}
