//! Capability sets: bounding (PR_CAPBSET_DROP), effective/permitted/inheritable (capset) and
//! ambient (PR_CAP_AMBIENT). The inheritable set stays empty unless the spec asks for it.

use crate::error::{Error, Result};
use crate::sys;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

pub fn number(c: &Capability) -> u32 {
    use Capability::*;
    match c {
        Chown => 0,
        DacOverride => 1,
        DacReadSearch => 2,
        Fowner => 3,
        Fsetid => 4,
        Kill => 5,
        Setgid => 6,
        Setuid => 7,
        Setpcap => 8,
        LinuxImmutable => 9,
        NetBindService => 10,
        NetBroadcast => 11,
        NetAdmin => 12,
        NetRaw => 13,
        IpcLock => 14,
        IpcOwner => 15,
        SysModule => 16,
        SysRawio => 17,
        SysChroot => 18,
        SysPtrace => 19,
        SysPacct => 20,
        SysAdmin => 21,
        SysBoot => 22,
        SysNice => 23,
        SysResource => 24,
        SysTime => 25,
        SysTtyConfig => 26,
        Mknod => 27,
        Lease => 28,
        AuditWrite => 29,
        AuditControl => 30,
        Setfcap => 31,
        MacOverride => 32,
        MacAdmin => 33,
        Syslog => 34,
        WakeAlarm => 35,
        BlockSuspend => 36,
        AuditRead => 37,
        Perfmon => 38,
        Bpf => 39,
        CheckpointRestore => 40,
    }
}

/// Highest capability number the running kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Bit mask of a set, skipping capabilities the kernel does not know (as runc does).
pub fn mask(set: &Option<Capabilities>, last: u32) -> u64 {
    let mut m = 0u64;
    for c in set.iter().flatten() {
        let n = number(c);
        if n <= last {
            m |= 1 << n;
        }
    }
    m
}

/// Drop from the bounding set everything not in `bounding`. Needs CAP_SETPCAP, so it runs
/// before the user switch.
pub fn drop_bounding(caps: &LinuxCapabilities, last: u32) -> Result<()> {
    let keep = mask(caps.bounding(), last);
    for n in 0..=last {
        if keep & (1 << n) == 0 {
            sys::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0)?;
        }
    }
    Ok(())
}

/// Set effective/permitted/inheritable and raise the ambient set. Runs after the user switch.
pub fn apply(caps: &LinuxCapabilities, last: u32) -> Result<()> {
    let eff = mask(caps.effective(), last);
    let perm = mask(caps.permitted(), last);
    let inh = mask(caps.inheritable(), last);
    sys::capset(eff, perm, inh)?;
    // Clear then raise ambient: a cap can only be ambient if it is permitted and inheritable.
    sys::prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    )?;
    let amb = mask(caps.ambient(), last);
    for n in 0..=last {
        if amb & (1 << n) != 0 && perm & inh & (1 << n) != 0 {
            sys::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                n as libc::c_ulong,
            )?;
        }
    }
    Ok(())
}

/// Refuse at create what capset(2) would refuse in the init after `start`: a capability of
/// `process.capabilities.{effective,permitted,inheritable}` that this process cannot pass on,
/// because it is not in its bounding set (the host's limit) or not in its permitted set. Extra
/// entries in `bounding` and `ambient` are not errors, as with runc and crun: there is nothing
/// to drop, and only what is permitted and inheritable can be ambient. Capabilities the kernel
/// does not know are skipped (as runc does). The caller skips this check when the container
/// gets a user namespace: the init then holds every capability there.
pub fn check_host_allows(caps: &LinuxCapabilities) -> Result<()> {
    // Unreadable: let capset be the judge, as before this check.
    let permitted = sys::cap_permitted().unwrap_or(u64::MAX);
    for (field, set) in [
        ("effective", caps.effective()),
        ("permitted", caps.permitted()),
        ("inheritable", caps.inheritable()),
    ] {
        for c in set.iter().flatten() {
            let n = number(c);
            let lacks = match sys::cap_in_bounding(n) {
                None => continue,
                Some(false) => "capability bounding set (the host's limit)",
                Some(true) if permitted & (1 << n) == 0 => "permitted capability set",
                Some(true) => continue,
            };
            return Err(Error::Config(format!(
                "field process.capabilities.{field}: CAP_{c} is not in berth-runtime's {lacks}, so the container cannot get it"
            )));
        }
    }
    Ok(())
}

/// All capabilities the kernel knows, as names (for `features`).
pub fn all_names() -> Vec<String> {
    let mut v: Vec<(u32, String)> = ALL
        .iter()
        .map(|c| (number(c), format!("CAP_{c}")))
        .filter(|(n, _)| *n <= last_cap())
        .collect();
    v.sort();
    v.into_iter().map(|(_, s)| s).collect()
}

const ALL: [Capability; 41] = {
    use Capability::*;
    [
        Chown,
        DacOverride,
        DacReadSearch,
        Fowner,
        Fsetid,
        Kill,
        Setgid,
        Setuid,
        Setpcap,
        LinuxImmutable,
        NetBindService,
        NetBroadcast,
        NetAdmin,
        NetRaw,
        IpcLock,
        IpcOwner,
        SysModule,
        SysRawio,
        SysChroot,
        SysPtrace,
        SysPacct,
        SysAdmin,
        SysBoot,
        SysNice,
        SysResource,
        SysTime,
        SysTtyConfig,
        Mknod,
        Lease,
        AuditWrite,
        AuditControl,
        Setfcap,
        MacOverride,
        MacAdmin,
        Syslog,
        WakeAlarm,
        BlockSuspend,
        AuditRead,
        Perfmon,
        Bpf,
        CheckpointRestore,
    ]
};
