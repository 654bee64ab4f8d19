//! cgroup v2 device control: a `BPF_PROG_TYPE_CGROUP_DEVICE` program generated from the OCI
//! device rules, loaded with bpf(BPF_PROG_LOAD) and attached to the container's cgroup.
//!
//! Semantics follow the v1 devices controller the rules were written for: rules are applied in
//! order and a later rule overrides an earlier one for the devices and access bits it names.
//! The program therefore decides each requested access bit (mknod, read, write) separately: the
//! last rule that matches the device and names that bit decides it; a bit no rule names is
//! denied. The access is allowed only if every requested bit is allowed.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::{Error, Result};

/// A device rule in normalised form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DevRule {
    pub allow: bool,
    /// None = all types ('a'); Some(BLOCK|CHAR).
    pub typ: Option<u32>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Bitmask of ACC_MKNOD|ACC_READ|ACC_WRITE.
    pub access: u32,
}

pub(crate) const DEV_BLOCK: u32 = 1;
pub(crate) const DEV_CHAR: u32 = 2;
pub(crate) const ACC_MKNOD: u32 = 1;
pub(crate) const ACC_READ: u32 = 2;
pub(crate) const ACC_WRITE: u32 = 4;

// eBPF opcodes (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const MOV64_K: u8 = 0xb7;
const MOV64_X: u8 = 0xbf;
const JMP_JA: u8 = 0x05;
const JMP_JEQ_K: u8 = 0x15;
const JMP_JNE_K: u8 = 0x55;
const JMP_EXIT: u8 = 0x95;

/// One eBPF instruction, laid out as `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    regs: u8, // dst_reg:4 (low), src_reg:4 (high)
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

fn imm32(v: u32) -> i32 {
    // The verifier sign-extends imm to 64 bits; the values compared are loaded with a 32-bit
    // zero-extending load, so only values < 2^31 can match. Callers reject larger ones.
    v as i32
}

/// Registers: r1 = ctx (struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor}),
/// r2 = device type, r3 = requested access bits, r4 = major, r5 = minor, r6 = scratch.
pub(crate) fn build_program(rules: &[DevRule]) -> Result<Vec<Insn>> {
    check_numbers(rules)?;
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU64_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU64_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for bit in [ACC_MKNOD, ACC_READ, ACC_WRITE] {
        let sec = section(rules, bit)?;
        // Skip the section when this bit is not requested.
        p.push(insn(MOV64_X, 6, 3, 0, 0));
        p.push(insn(ALU64_AND_K, 6, 0, 0, bit as i32));
        p.push(insn(JMP_JEQ_K, 6, 0, sec.len() as i16, 0));
        p.extend(sec);
    }
    p.push(insn(MOV64_K, 0, 0, 0, 1));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    Ok(p)
}

/// Device numbers must fit the 32-bit signed immediates they are compared with.
fn check_numbers(rules: &[DevRule]) -> Result<()> {
    for r in rules {
        for (what, v) in [("major", r.major), ("minor", r.minor)] {
            if let Some(v) = v {
                if v > i32::MAX as u32 {
                    return Err(Error::Invalid {
                        field: format!("linux.resources.devices[].{what}"),
                        reason: format!("{v} is out of range"),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The instructions deciding one access `bit`: the rules naming it, last first; the first
/// that matches exits with its verdict (an allow jumps past the section to the next bit).
fn section(rules: &[DevRule], bit: u32) -> Result<Vec<Insn>> {
    let mut sec: Vec<Insn> = Vec::new();
    // Indices of "ja <end of section>" to patch once the section length is known.
    let mut to_end: Vec<usize> = Vec::new();
    let mut decided = false;
    for r in rules.iter().rev().filter(|r| r.access & bit != 0) {
        let mut checks: Vec<(u8, i32)> = Vec::new();
        if let Some(t) = r.typ {
            checks.push((2, imm32(t)));
        }
        if let Some(m) = r.major {
            checks.push((4, imm32(m)));
        }
        if let Some(m) = r.minor {
            checks.push((5, imm32(m)));
        }
        let verdict_len = if r.allow { 1 } else { 2 };
        let n = checks.len();
        let unconditional = n == 0;
        for (i, (reg, val)) in checks.into_iter().enumerate() {
            // Skip the rest of this rule's checks and its verdict.
            let skip = (n - i - 1) + verdict_len;
            sec.push(insn(JMP_JNE_K, reg, 0, skip as i16, val));
        }
        if r.allow {
            to_end.push(sec.len());
            sec.push(insn(JMP_JA, 0, 0, 0, 0));
        } else {
            sec.push(insn(MOV64_K, 0, 0, 0, 0));
            sec.push(insn(JMP_EXIT, 0, 0, 0, 0));
        }
        if unconditional {
            // Matches every device: earlier rules are unreachable (and the verifier
            // rejects unreachable instructions).
            decided = true;
            break;
        }
    }
    if !decided {
        // No rule decided this bit: deny.
        sec.push(insn(MOV64_K, 0, 0, 0, 0));
        sec.push(insn(JMP_EXIT, 0, 0, 0, 0));
    }
    let len = sec.len();
    for i in to_end {
        let off = len - i - 1;
        sec[i].off = i16::try_from(off).map_err(|_| Error::Invalid {
            field: "linux.resources.devices".into(),
            reason: "too many rules for one device program".into(),
        })?;
    }
    Ok(sec)
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    // Trailing zeroes so the kernel sees the rest of union bpf_attr as zero.
    _pad: [u64; 8],
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _pad: [u32; 11],
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: [u32; 11],
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
    _pad: [u32; 13],
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T, what: &'static str) -> Result<libc::c_long> {
    // SAFETY: `attr` is a live, properly sized #[repr(C)] struct matching the layout of the
    // union bpf_attr member for `cmd`; the kernel reads (and for QUERY writes) at most
    // size_of::<T>() bytes of it and any pointers inside it point to live buffers owned by the
    // caller for the duration of the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(Error::Sys {
            call: what,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(r)
}

/// Load the program; returns its fd.
pub(crate) fn load(prog: &[Insn]) -> Result<OwnedFd> {
    let license = b"Apache-2.0\0";
    let mut log = vec![0u8; 64 * 1024];
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"berth_device");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        prog_name: name,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr, "bpf(BPF_PROG_LOAD)") {
        Ok(fd) => {
            // SAFETY: the kernel returned a new file descriptor that nothing else owns.
            Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
        }
        Err(Error::Sys { source, .. })
            if source.raw_os_error() == Some(libc::EACCES)
                || source.raw_os_error() == Some(libc::EINVAL) =>
        {
            // Retry with the verifier log to give a useful error.
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let e = bpf(BPF_PROG_LOAD, &mut attr, "bpf(BPF_PROG_LOAD)");
            let text = String::from_utf8_lossy(&log)
                .trim_end_matches('\0')
                .trim()
                .to_string();
            match e {
                Ok(fd) => {
                    // SAFETY: as above, a fresh fd from the kernel.
                    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
                }
                Err(_) => Err(Error::Bpf {
                    op: "BPF_PROG_LOAD (device program rejected)",
                    detail: format!("{source}; verifier: {text}"),
                }),
            }
        }
        Err(e) => Err(e),
    }
}

/// Program ids directly attached to `cgroup` for BPF_CGROUP_DEVICE.
fn query(cgroup: &OwnedFd) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr, "bpf(BPF_PROG_QUERY)")?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// Attach `prog` to `cgroup` and detach the device programs that were attached there before
/// (ours from a previous apply/update), so an update replaces the rules instead of adding to
/// them.
pub(crate) fn attach_replacing(cgroup: &OwnedFd, prog: &OwnedFd) -> Result<()> {
    let old = query(cgroup)?;
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr, "bpf(BPF_PROG_ATTACH)")?;
    for id in old {
        let mut g = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        let fd = bpf(BPF_PROG_GET_FD_BY_ID, &mut g, "bpf(BPF_PROG_GET_FD_BY_ID)")?;
        // SAFETY: fresh fd returned by the kernel, owned by us from here on.
        let old_fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        let mut d = AttachAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_bpf_fd: old_fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        bpf(BPF_PROG_DETACH, &mut d, "bpf(BPF_PROG_DETACH)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Interpret the generated program, to test its logic without the kernel.
    fn run(p: &[Insn], typ: u32, acc: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(acc << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let dst = (i.regs & 0xf) as usize;
            let src = (i.regs >> 4) as usize;
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = ctx[(i.off / 4) as usize] as u64,
                ALU64_AND_K => r[dst] &= i.imm as i64 as u64,
                ALU64_RSH_K => r[dst] >>= i.imm,
                MOV64_K => r[dst] = i.imm as i64 as u64,
                MOV64_X => r[dst] = r[src],
                JMP_JA => pc = (pc as i64 + i.off as i64) as usize,
                JMP_JEQ_K => {
                    if r[dst] == i.imm as i64 as u64 {
                        pc = (pc as i64 + i.off as i64) as usize
                    }
                }
                JMP_JNE_K => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc = (pc as i64 + i.off as i64) as usize
                    }
                }
                JMP_EXIT => return r[0],
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }

    fn rule(
        allow: bool,
        typ: Option<u32>,
        major: Option<u32>,
        minor: Option<u32>,
        access: u32,
    ) -> DevRule {
        DevRule {
            allow,
            typ,
            major,
            minor,
            access,
        }
    }

    const RWM: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

    #[test]
    fn deny_all_then_allow_null() {
        let rules = vec![
            rule(false, None, None, None, RWM),
            rule(true, Some(DEV_CHAR), Some(1), Some(3), RWM),
            rule(true, Some(DEV_CHAR), Some(136), None, ACC_READ | ACC_WRITE),
        ];
        let p = build_program(&rules).unwrap();
        assert_eq!(run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_MKNOD, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 5), 0);
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 1, 3), 0);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 136, 7), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_MKNOD, 136, 7), 0);
    }

    #[test]
    fn later_deny_overrides_allow_per_bit() {
        let rules = vec![
            rule(true, None, None, None, RWM),
            rule(false, Some(DEV_CHAR), Some(1), Some(3), ACC_WRITE),
        ];
        let p = build_program(&rules).unwrap();
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_WRITE, 1, 3), 0);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 0);
        assert_eq!(run(&p, DEV_BLOCK, ACC_WRITE, 8, 0), 1);
    }

    #[test]
    fn split_access_rules_combine() {
        let rules = vec![
            rule(false, None, None, None, RWM),
            rule(true, Some(DEV_CHAR), Some(1), Some(3), ACC_READ),
            rule(true, Some(DEV_CHAR), Some(1), Some(3), ACC_WRITE),
        ];
        let p = build_program(&rules).unwrap();
        assert_eq!(run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_MKNOD, 1, 3), 0);
    }

    #[test]
    fn empty_rules_deny() {
        let p = build_program(&[]).unwrap();
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 3), 0);
        assert_eq!(run(&p, DEV_CHAR, 0, 1, 3), 1, "no access requested");
    }
}
