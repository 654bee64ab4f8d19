//! OCI `linux.seccomp` -> classic BPF.
//!
//! Program shape:
//! ```text
//!   ld arch ; jeq AUDIT_ARCH_a -> section a ; ... ; ret KILL_THREAD (libseccomp's bad-arch action)
//! section: ld nr ; [AUDIT_ARCH_X86_64: jge 0x40000000 -> x32 tree, or bad arch without x32]
//!   balanced jge tree over syscall-number intervals; leaves are `ret ACTION` or a rule block
//! rule block: rules sorted by action precedence (most restrictive first), each rule an AND of
//!   64-bit comparisons (hi word then lo word) ending in `ret ACTION`; falls to `ret DEFAULT`.
//! ```
//!
//! Semantics follow libseccomp as runc drives it:
//! * a rule whose action equals the default action is skipped (runc);
//! * an unconditional rule for a syscall overrides conditional ones; the first unconditional
//!   rule for a syscall wins, later ones are ignored (libseccomp keeps the existing one);
//! * conditional rules are ORed; when several match, the one whose action the kernel ranks
//!   highest wins (KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > NOTIFY > TRACE > LOG > ALLOW),
//!   ties going to the earlier rule. This is what libseccomp's decision tree yields for
//!   overlapping conditions on the same argument;
//! * two conditional rules with identical conditions but different actions are an error
//!   (libseccomp: EEXIST);
//! * a rule with two conditions on the same argument index is split into one rule per
//!   condition (runc does this because libseccomp refuses it);
//! * names absent on an architecture are skipped for that architecture; names unknown on every
//!   architecture are an error;
//! * on 32-bit architectures only the low 32 bits of an argument are compared (libseccomp);
//! * on x86 an unconditional rule for a socket or SysV IPC call also covers its multiplexed
//!   form through socketcall(2) / ipc(2) (libseccomp; conditional rules are not mirrored, see
//!   `add_multiplexed`);
//! * runc's -ENOSYS stub: unless the default action is ALLOW or LOG, syscall numbers above the
//!   largest one the profile names (per architecture) fail with ENOSYS, so a libc newer than the
//!   profile falls back to older syscalls instead of failing with the default errno.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use crate::arch::{name_index, Arch, X32_SYSCALL_BIT};
use crate::bpf::{Asm, Cond, Label, SockFilter, MAX_INSNS};
use crate::Error;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

pub(crate) const FLAG_TSYNC: u32 = 1;
pub(crate) const FLAG_LOG: u32 = 2;
pub(crate) const FLAG_SPEC_ALLOW: u32 = 4;
pub(crate) const FLAG_NEW_LISTENER: u32 = 8;
pub(crate) const FLAG_TSYNC_ESRCH: u32 = 16;

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
/// Highest errno the kernel passes through (MAX_ERRNO).
const MAX_ERRNO: u32 = 4095;

/// Rank used when several rules match: higher wins (kernel's action precedence).
pub(crate) fn precedence(ret: u32) -> u32 {
    match ret & 0xffff_0000 {
        RET_KILL_PROCESS => 8,
        RET_KILL_THREAD => 7,
        RET_TRAP => 6,
        RET_ERRNO => 5,
        RET_USER_NOTIF => 4,
        RET_TRACE => 3,
        RET_LOG => 2,
        _ => 1,
    }
}

pub(crate) fn action_name(a: LinuxSeccompAction) -> &'static str {
    use LinuxSeccompAction as A;
    match a {
        A::ScmpActKill => "SCMP_ACT_KILL",
        A::ScmpActKillThread => "SCMP_ACT_KILL_THREAD",
        A::ScmpActKillProcess => "SCMP_ACT_KILL_PROCESS",
        A::ScmpActTrap => "SCMP_ACT_TRAP",
        A::ScmpActErrno => "SCMP_ACT_ERRNO",
        A::ScmpActNotify => "SCMP_ACT_NOTIFY",
        A::ScmpActTrace => "SCMP_ACT_TRACE",
        A::ScmpActLog => "SCMP_ACT_LOG",
        A::ScmpActAllow => "SCMP_ACT_ALLOW",
    }
}

/// The kernel return value for an action; ERRNO and TRACE take `errno` (EPERM when absent,
/// as runc does). Any other action with an errno is refused.
fn resolve_action(a: LinuxSeccompAction, errno: Option<u32>, field: &str) -> Result<u32, Error> {
    use LinuxSeccompAction as A;
    if let Some(e) = errno {
        if !matches!(a, A::ScmpActErrno | A::ScmpActTrace) {
            return Err(Error::invalid(
                field,
                format!("errno value {e} given for {} (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one)", action_name(a)),
            ));
        }
        if e > MAX_ERRNO {
            return Err(Error::invalid(
                field,
                format!("errno value {e} out of range (0..={MAX_ERRNO})"),
            ));
        }
    }
    Ok(match a {
        A::ScmpActKill | A::ScmpActKillThread => RET_KILL_THREAD,
        A::ScmpActKillProcess => RET_KILL_PROCESS,
        A::ScmpActTrap => RET_TRAP,
        A::ScmpActErrno => RET_ERRNO | errno.unwrap_or(EPERM),
        A::ScmpActTrace => RET_TRACE | errno.unwrap_or(EPERM),
        A::ScmpActNotify => RET_USER_NOTIF,
        A::ScmpActLog => RET_LOG,
        A::ScmpActAllow => RET_ALLOW,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// One argument comparison: `args[index] OP value` (MASKED_EQ: `args[index] & value == value_two`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ArgCmp {
    pub index: u8,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

impl ArgCmp {
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn matches(&self, arg: u64) -> bool {
        match self.op {
            Op::Ne => arg != self.value,
            Op::Lt => arg < self.value,
            Op::Le => arg <= self.value,
            Op::Eq => arg == self.value,
            Op::Ge => arg >= self.value,
            Op::Gt => arg > self.value,
            Op::MaskedEq => arg & self.value == self.value_two,
        }
    }

    /// The comparison restricted to the low word (32-bit architectures).
    fn narrowed(&self) -> ArgCmp {
        ArgCmp {
            value: self.value & 0xffff_ffff,
            value_two: self.value_two & 0xffff_ffff,
            ..*self
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct CondRule {
    pub cmps: Vec<ArgCmp>, // sorted, deduplicated
    pub ret: u32,
}

/// All rules for one syscall number on one architecture.
#[derive(Clone, Debug, Default)]
pub(crate) struct SysRules {
    /// (first) unconditional action: overrides every conditional rule
    pub uncond: Option<u32>,
    /// conditional rules, most restrictive action first
    pub conds: Vec<CondRule>,
}

/// One architecture's part of the filter.
#[derive(Clone, Debug)]
pub(crate) struct Section {
    pub arch: Arch,
    /// syscall nr -> rules (BTreeMap: sorted by nr)
    pub rules: BTreeMap<u32, SysRules>,
    /// runc's -ENOSYS stub: numbers above the largest syscall the profile names on this
    /// architecture fail with ENOSYS (so a newer libc falls back) instead of the default action.
    pub enosys_above: Option<u32>,
}

/// The validated, architecture-resolved form of a profile.
#[derive(Clone, Debug)]
pub(crate) struct Ir {
    pub default: u32,
    pub flags: u32,
    pub needs_notify: bool,
    pub arches: Vec<Section>,
}

impl Ir {
    /// Expected verdict straight from the rules (reference semantics for tests).
    #[cfg(test)]
    pub(crate) fn eval(&self, d: &crate::bpf::SeccompData) -> u32 {
        let nr = d.nr as u32;
        let mut found = None;
        for sec in &self.arches {
            let a = sec.arch;
            if a.audit_arch() != d.arch {
                continue;
            }
            let is_x32_nr = nr >= X32_SYSCALL_BIT && nr != u32::MAX;
            if a == Arch::X86_64 && is_x32_nr || a == Arch::X32 && !is_x32_nr {
                continue;
            }
            found = Some(sec);
        }
        let Some(sec) = found else {
            return RET_KILL_THREAD;
        };
        let a = sec.arch;
        if sec.enosys_above.is_some_and(|m| nr > m) {
            return RET_ERRNO | ENOSYS;
        }
        let Some(r) = sec.rules.get(&nr) else {
            return self.default;
        };
        if let Some(u) = r.uncond {
            return u;
        }
        for c in &r.conds {
            if c.cmps.iter().all(|cmp| {
                let (cmp, arg) = if a.is_32bit() {
                    (cmp.narrowed(), d.args[cmp.index as usize] & 0xffff_ffff)
                } else {
                    (*cmp, d.args[cmp.index as usize])
                };
                cmp.matches(arg)
            }) {
                return c.ret;
            }
        }
        self.default
    }
}

fn op_from_oci(o: LinuxSeccompOperator) -> Op {
    use LinuxSeccompOperator as O;
    match o {
        O::ScmpCmpNe => Op::Ne,
        O::ScmpCmpLt => Op::Lt,
        O::ScmpCmpLe => Op::Le,
        O::ScmpCmpEq => Op::Eq,
        O::ScmpCmpGe => Op::Ge,
        O::ScmpCmpGt => Op::Gt,
        O::ScmpCmpMaskedEq => Op::MaskedEq,
    }
}

/// Validate the profile and resolve it per architecture.
pub(crate) fn lower(s: &LinuxSeccomp) -> Result<Ir, Error> {
    let default = resolve_action(s.default_action(), s.default_errno_ret(), "defaultErrnoRet")?;
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        // libseccomp refuses it too: every syscall, even the agent hand-off, would block
        return Err(Error::invalid(
            "defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action".to_string(),
        ));
    }
    let mut needs_notify = false;

    let mut flags = 0u32;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
        };
    }

    // Native first (libseccomp's seccomp_init adds it), then the listed ones.
    let mut arch_list = vec![Arch::native()];
    for (i, a) in s.architectures().iter().flatten().enumerate() {
        let Some(ours) = Arch::from_oci(*a) else {
            // No syscall table for it. An architecture this machine cannot execute never shows
            // up in seccomp_data.arch, so its section would be dead code: skip it. One the
            // kernel can run (a compat ABI of the native one) must not be silently dropped.
            if crate::arch::host_can_run(*a) {
                return Err(Error::invalid(
                    &format!("architectures[{i}]"),
                    format!("architecture {a} runs on this machine but berth has no syscall table for it"),
                ));
            }
            continue;
        };
        if !arch_list.contains(&ours) {
            arch_list.push(ours);
        }
    }
    let mut arches: Vec<Section> = arch_list
        .iter()
        .map(|a| Section {
            arch: *a,
            rules: BTreeMap::new(),
            enosys_above: None,
        })
        .collect();
    // largest syscall number the profile names, per architecture (for the ENOSYS stub)
    let mut largest: Vec<Option<u32>> = vec![None; arches.len()];

    for (i, call) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("syscalls[{i}]");
        let ret = resolve_action(
            call.action(),
            call.errno_ret(),
            &format!("{field}.errnoRet"),
        )?;
        if call.action() == LinuxSeccompAction::ScmpActNotify {
            needs_notify = true;
        }
        let mut cmps = Vec::new();
        for (k, arg) in call.args().iter().flatten().enumerate() {
            if arg.index() > 5 {
                return Err(Error::invalid(
                    &format!("{field}.args[{k}].index"),
                    format!("argument index {} out of range (0..=5)", arg.index()),
                ));
            }
            let op = op_from_oci(arg.op());
            if op != Op::MaskedEq && arg.value_two().is_some_and(|v| v != 0) {
                return Err(Error::invalid(
                    &format!("{field}.args[{k}].valueTwo"),
                    "valueTwo is only meaningful with SCMP_CMP_MASKED_EQ".to_string(),
                ));
            }
            cmps.push(ArgCmp {
                index: arg.index() as u8,
                op,
                value: arg.value(),
                value_two: arg.value_two().unwrap_or(0),
            });
        }
        let mut idxs = Vec::with_capacity(call.names().len());
        for (j, name) in call.names().iter().enumerate() {
            if name.is_empty() {
                return Err(Error::invalid(
                    &format!("{field}.names[{j}]"),
                    "empty syscall name".to_string(),
                ));
            }
            let idx = name_index(name).ok_or_else(|| {
                Error::invalid(
                    &format!("{field}.names[{j}]"),
                    format!("unknown syscall {name:?}"),
                )
            })?;
            idxs.push(idx);
        }
        for (sec, max) in arches.iter().zip(largest.iter_mut()) {
            for idx in &idxs {
                if let Some(nr) = sec.arch.nr_at(*idx) {
                    *max = Some(max.map_or(nr, |m| m.max(nr)));
                }
            }
        }
        if ret == default {
            continue; // runc skips rules that repeat the default action
        }
        // runc: several conditions on the same argument become separate (ORed) rules.
        let mut seen = [false; 6];
        let same_arg_twice = cmps
            .iter()
            .any(|c| std::mem::replace(&mut seen[c.index as usize], true));
        let cmps_empty = cmps.is_empty();
        let rule_sets: Vec<Vec<ArgCmp>> = if same_arg_twice {
            cmps.iter().map(|c| vec![*c]).collect()
        } else {
            vec![cmps]
        };

        for sec in arches.iter_mut() {
            for (name, idx) in call.names().iter().zip(&idxs) {
                let Some(nr) = sec.arch.nr_at(*idx) else {
                    continue;
                };
                let entry = sec.rules.entry(nr).or_default();
                for set in &rule_sets {
                    add_rule(entry, set, ret, sec.arch, name, &field)?;
                }
                if sec.arch == Arch::X86 && cmps_empty {
                    add_multiplexed(&mut sec.rules, name, ret);
                }
            }
        }
    }
    // runc adds the ENOSYS stub unless the default action already lets calls through (ALLOW,
    // LOG) or is ERRNO(ENOSYS) itself.
    let stub = !matches!(
        s.default_action(),
        LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
    ) && default != RET_ERRNO | ENOSYS;
    for (sec, max) in arches.iter_mut().zip(largest) {
        // Most restrictive action first; stable, so equal ranks keep profile order.
        for r in sec.rules.values_mut() {
            r.conds
                .sort_by_key(|c| std::cmp::Reverse(precedence(c.ret)));
        }
        if stub {
            sec.enosys_above = max.filter(|m| *m != 0);
        }
    }
    if needs_notify && !matches!(s.listener_path(), Some(p) if !p.as_os_str().is_empty()) {
        return Err(Error::invalid(
            "listenerPath",
            "SCMP_ACT_NOTIFY is used but no listenerPath is set".to_string(),
        ));
    }
    if needs_notify {
        flags |= FLAG_NEW_LISTENER;
        if flags & FLAG_TSYNC != 0 {
            flags |= FLAG_TSYNC_ESRCH;
        }
    }
    Ok(Ir {
        default,
        flags,
        needs_notify,
        arches,
    })
}

/// i386 `socketcall(2)` / `ipc(2)` numbers of the multiplexed calls, and the call numbers
/// (linux/net.h SYS_*, linux/ipc.h).
const I386_SOCKETCALL: u32 = 102;
const I386_IPC: u32 = 117;
const SOCKETCALLS: &[(&str, u64)] = &[
    ("socket", 1),
    ("bind", 2),
    ("connect", 3),
    ("listen", 4),
    ("accept", 5),
    ("getsockname", 6),
    ("getpeername", 7),
    ("socketpair", 8),
    ("send", 9),
    ("recv", 10),
    ("sendto", 11),
    ("recvfrom", 12),
    ("shutdown", 13),
    ("setsockopt", 14),
    ("getsockopt", 15),
    ("sendmsg", 16),
    ("recvmsg", 17),
    ("accept4", 18),
    ("recvmmsg", 19),
    ("sendmmsg", 20),
];
const IPCCALLS: &[(&str, u64)] = &[
    ("semop", 1),
    ("semget", 2),
    ("semctl", 3),
    ("semtimedop", 4),
    ("msgsnd", 11),
    ("msgrcv", 12),
    ("msgget", 13),
    ("msgctl", 14),
    ("shmat", 21),
    ("shmdt", 22),
    ("shmget", 23),
    ("shmctl", 24),
];

/// libseccomp on x86 also applies a rule for a socket or SysV IPC call to the multiplexed
/// form (`socketcall(SYS_x, ...)` / `ipc(x, ...)`). Only unconditional rules are mirrored:
/// the real arguments of a multiplexed call sit in memory where BPF cannot see them, and
/// libseccomp's dropping of the conditions would widen an ALLOW rule. An existing rule for the
/// same call number wins (first rule wins, as for unconditional rules).
fn add_multiplexed(rules: &mut BTreeMap<u32, SysRules>, name: &str, ret: u32) {
    let (mux, call) = match (
        SOCKETCALLS.iter().find(|c| c.0 == name),
        IPCCALLS.iter().find(|c| c.0 == name),
    ) {
        (Some(c), _) => (I386_SOCKETCALL, c.1),
        (None, Some(c)) => (I386_IPC, c.1),
        (None, None) => return,
    };
    let entry = rules.entry(mux).or_default();
    if entry.uncond.is_some() {
        return;
    }
    let cmps = vec![ArgCmp {
        index: 0,
        op: Op::Eq,
        value: call,
        value_two: 0,
    }];
    if entry.conds.iter().any(|c| c.cmps == cmps) {
        return;
    }
    entry.conds.push(CondRule { cmps, ret });
}

fn add_rule(
    entry: &mut SysRules,
    set: &[ArgCmp],
    ret: u32,
    arch: Arch,
    name: &str,
    field: &str,
) -> Result<(), Error> {
    if entry.uncond.is_some() {
        return Ok(()); // an existing unconditional rule supersedes
    }
    if set.is_empty() {
        entry.uncond = Some(ret);
        entry.conds.clear();
        return Ok(());
    }
    let mut cmps: Vec<ArgCmp> = if arch.is_32bit() {
        set.iter().map(ArgCmp::narrowed).collect()
    } else {
        set.to_vec()
    };
    cmps.sort();
    cmps.dedup();
    if let Some(existing) = entry.conds.iter().find(|c| c.cmps == cmps) {
        if existing.ret != ret {
            return Err(Error::invalid(
                field,
                format!("rule for {name:?} on {} has the same conditions as an earlier rule but a different action", arch.scmp_name()),
            ));
        }
        return Ok(());
    }
    entry.conds.push(CondRule { cmps, ret });
    Ok(())
}

/// Byte offsets of the low and high words of `args[i]` in `struct seccomp_data`.
fn arg_offsets(i: u8) -> (u32, u32) {
    let base = 16 + 8 * i as u32;
    if cfg!(target_endian = "little") {
        (base, base + 4)
    } else {
        (base + 4, base)
    }
}

/// Emit one comparison: jump to `pass` if it holds, to `fail` otherwise.
fn emit_cmp(asm: &mut Asm, c: &ArgCmp, low_only: bool, pass: Label, fail: Label) {
    let (lo_off, hi_off) = arg_offsets(c.index);
    let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
    if c.op == Op::MaskedEq {
        let (dh, dl) = ((c.value_two >> 32) as u32, c.value_two as u32);
        if !low_only {
            let next = asm.label();
            asm.ld(hi_off);
            asm.and(vh);
            asm.jmp(Cond::Eq, dh, next, fail);
            asm.bind(next);
        }
        asm.ld(lo_off);
        asm.and(vl);
        asm.jmp(Cond::Eq, dl, pass, fail);
        return;
    }
    // (condition on the low word, swap targets?) for the final comparison, and how the high
    // word decides: for ordering ops, hi > vh decides one way, hi < vh the other.
    let (lo_cond, lo_negate) = match c.op {
        Op::Eq => (Cond::Eq, false),
        Op::Ne => (Cond::Eq, true),
        Op::Gt => (Cond::Gt, false),
        Op::Ge => (Cond::Ge, false),
        Op::Lt => (Cond::Ge, true),
        Op::Le => (Cond::Gt, true),
        Op::MaskedEq => unreachable!("handled above"),
    };
    let (lo_t, lo_f) = if lo_negate {
        (fail, pass)
    } else {
        (pass, fail)
    };
    if !low_only {
        let lo = asm.label();
        asm.ld(hi_off);
        match c.op {
            Op::Eq => asm.jmp(Cond::Eq, vh, lo, fail),
            Op::Ne => asm.jmp(Cond::Eq, vh, lo, pass),
            _ => {
                // hi > vh: Gt/Ge pass, Lt/Le fail; hi < vh: the opposite.
                let (above, below) = if lo_negate {
                    (fail, pass)
                } else {
                    (pass, fail)
                };
                let eq = asm.label();
                asm.jmp(Cond::Gt, vh, above, eq);
                asm.bind(eq);
                asm.jmp(Cond::Eq, vh, lo, below);
            }
        }
        asm.bind(lo);
    }
    asm.ld(lo_off);
    asm.jmp(lo_cond, vl, lo_t, lo_f);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Ret(u32),
    Block(u32), // syscall nr with conditional rules
}

fn emit_block(asm: &mut Asm, r: &SysRules, default: u32, low_only: bool) {
    for rule in &r.conds {
        let next_rule = asm.label();
        for c in &rule.cmps {
            let ok = asm.label();
            emit_cmp(asm, c, low_only, ok, next_rule);
            asm.bind(ok);
        }
        asm.ret(rule.ret);
        asm.bind(next_rule);
    }
    asm.ret(default);
}

/// Emit a dispatch over `[lo, hi]` syscall-number intervals.
fn emit_tree(
    asm: &mut Asm,
    iv: &[(u32, Target)],
    rules: &BTreeMap<u32, SysRules>,
    default: u32,
    low_only: bool,
) {
    if iv.len() == 1 {
        match iv[0].1 {
            Target::Ret(k) => asm.ret(k),
            Target::Block(nr) => emit_block(asm, &rules[&nr], default, low_only),
        }
        return;
    }
    let mid = iv.len() / 2;
    let right = asm.label();
    let left = asm.label();
    asm.jmp(Cond::Ge, iv[mid].0, right, left);
    asm.bind(left);
    emit_tree(asm, &iv[..mid], rules, default, low_only);
    asm.bind(right);
    emit_tree(asm, &iv[mid..], rules, default, low_only);
}

/// Intervals (start, target) covering [base, u32::MAX], adjacent equal returns merged.
fn intervals(sec: &Section, default: u32, base: u32) -> Vec<(u32, Target)> {
    let rules = &sec.rules;
    let mut out: Vec<(u32, Target)> = vec![(base, Target::Ret(default))];
    let push = |start: u32, t: Target, out: &mut Vec<(u32, Target)>| {
        if let Some(last) = out.last_mut() {
            if last.1 == t {
                return;
            }
            if last.0 == start {
                last.1 = t;
                // merging with the one before may now be possible
                if out.len() >= 2 && out[out.len() - 2].1 == t {
                    out.pop();
                }
                return;
            }
        }
        out.push((start, t));
    };
    for (&nr, r) in rules.range(base..) {
        let t = match r.uncond {
            Some(k) => Target::Ret(k),
            None if r.conds.is_empty() => Target::Ret(default),
            None => Target::Block(nr),
        };
        push(nr, t, &mut out);
        if let Some(after) = nr.checked_add(1) {
            push(after, Target::Ret(default), &mut out);
        }
    }
    // every rule number is <= enosys_above (it is the largest number the profile names)
    if let Some(after) = sec
        .enosys_above
        .and_then(|m| m.checked_add(1))
        .filter(|a| *a > base)
    {
        push(after, Target::Ret(RET_ERRNO | ENOSYS), &mut out);
    }
    out
}

pub(crate) fn codegen(ir: &Ir) -> Result<Vec<SockFilter>, Error> {
    let mut asm = Asm::default();
    // Group architectures by audit value (x86_64 and x32 share one).
    let mut groups: Vec<(u32, Vec<&Section>)> = Vec::new();
    for a in &ir.arches {
        match groups.iter_mut().find(|g| g.0 == a.arch.audit_arch()) {
            Some(g) => g.1.push(a),
            None => groups.push((a.arch.audit_arch(), vec![a])),
        }
    }
    let labels: Vec<Label> = groups.iter().map(|_| asm.label()).collect();
    asm.ld(4); // seccomp_data.arch
    for (g, l) in groups.iter().zip(&labels) {
        let next = asm.label();
        asm.jmp(Cond::Eq, g.0, *l, next);
        asm.bind(next);
    }
    asm.ret(RET_KILL_THREAD);
    for (g, l) in groups.iter().zip(&labels) {
        asm.bind(*l);
        asm.ld(0); // seccomp_data.nr
        let find = |want: Arch| g.1.iter().find(|a| a.arch == want).copied();
        if g.0 == Arch::X86_64.audit_arch() {
            let x64 = find(Arch::X86_64);
            let x32 = find(Arch::X32);
            let hi = asm.label();
            let lo = asm.label();
            let high_bits = asm.label();
            asm.jmp(Cond::Ge, X32_SYSCALL_BIT, high_bits, lo);
            // nr -1 (a tracer skipping the call) is not x32: the x86_64 section answers it,
            // as in libseccomp
            asm.bind(high_bits);
            asm.jmp(Cond::Eq, u32::MAX, lo, hi);
            asm.bind(lo);
            match x64 {
                Some(a) => emit_tree(
                    &mut asm,
                    &intervals(a, ir.default, 0),
                    &a.rules,
                    ir.default,
                    a.arch.is_32bit(),
                ),
                None => asm.ret(RET_KILL_THREAD),
            }
            asm.bind(hi);
            match x32 {
                Some(a) => emit_tree(
                    &mut asm,
                    &intervals(a, ir.default, X32_SYSCALL_BIT),
                    &a.rules,
                    ir.default,
                    a.arch.is_32bit(),
                ),
                None => asm.ret(RET_KILL_THREAD),
            }
        } else {
            let a = g.1[0];
            emit_tree(
                &mut asm,
                &intervals(a, ir.default, 0),
                &a.rules,
                ir.default,
                a.arch.is_32bit(),
            );
        }
    }
    let prog = asm
        .finish()
        .map_err(|e| Error::invalid("(program)", format!("internal assembler error: {e}")))?;
    if prog.len() > MAX_INSNS {
        return Err(Error::TooLong(prog.len()));
    }
    Ok(prog)
}
