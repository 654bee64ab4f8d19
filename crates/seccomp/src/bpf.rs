//! Classic BPF: instruction encoding, a small assembler with symbolic labels (long
//! conditional jumps are rewritten through `ja` trampolines, since `jt`/`jf` are 8-bit), a
//! structural checker for programs read back from a cache, and an interpreter used by tests.

// Instruction classes and fields (linux/filter.h, linux/bpf_common.h).
pub(crate) const BPF_LD: u16 = 0x00;
pub(crate) const BPF_ALU: u16 = 0x04;
pub(crate) const BPF_JMP: u16 = 0x05;
pub(crate) const BPF_RET: u16 = 0x06;
pub(crate) const BPF_W: u16 = 0x00;
pub(crate) const BPF_ABS: u16 = 0x20;
pub(crate) const BPF_K: u16 = 0x00;
pub(crate) const BPF_AND: u16 = 0x50;
pub(crate) const BPF_JA: u16 = 0x00;
pub(crate) const BPF_JEQ: u16 = 0x10;
pub(crate) const BPF_JGT: u16 = 0x20;
pub(crate) const BPF_JGE: u16 = 0x30;

/// Kernel limit on the number of instructions in one filter (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;
/// Size of `struct seccomp_data`.
pub(crate) const SECCOMP_DATA_LEN: u32 = 64;

/// One `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Conditional jump kinds used by the compiler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cond {
    Eq,
    Gt,
    Ge,
}

impl Cond {
    fn code(self) -> u16 {
        BPF_JMP
            | BPF_K
            | match self {
                Cond::Eq => BPF_JEQ,
                Cond::Gt => BPF_JGT,
                Cond::Ge => BPF_JGE,
            }
    }
}

pub(crate) type Label = u32;

#[derive(Clone, Debug)]
enum Op {
    Ld(u32),
    And(u32),
    Ret(u32),
    Jmp {
        cond: Cond,
        k: u32,
        t: Label,
        f: Label,
        long: bool,
    },
    Ja(Label),
    Bind(Label),
}

/// Assembler: emit ops with symbolic forward labels, then `finish` resolves them.
#[derive(Default)]
pub(crate) struct Asm {
    ops: Vec<Op>,
    next_label: Label,
}

impl Asm {
    pub(crate) fn label(&mut self) -> Label {
        self.next_label += 1;
        self.next_label
    }
    pub(crate) fn bind(&mut self, l: Label) {
        self.ops.push(Op::Bind(l));
    }
    pub(crate) fn ld(&mut self, off: u32) {
        self.ops.push(Op::Ld(off));
    }
    pub(crate) fn and(&mut self, k: u32) {
        self.ops.push(Op::And(k));
    }
    pub(crate) fn ret(&mut self, k: u32) {
        self.ops.push(Op::Ret(k));
    }
    pub(crate) fn jmp(&mut self, cond: Cond, k: u32, t: Label, f: Label) {
        self.ops.push(Op::Jmp {
            cond,
            k,
            t,
            f,
            long: false,
        });
    }
    #[allow(dead_code)]
    pub(crate) fn ja(&mut self, l: Label) {
        self.ops.push(Op::Ja(l));
    }

    fn layout(&self) -> (Vec<usize>, Vec<usize>, usize) {
        let mut addrs = Vec::with_capacity(self.ops.len());
        let mut labels = vec![usize::MAX; self.next_label as usize + 1];
        let mut pc = 0usize;
        for op in &self.ops {
            addrs.push(pc);
            match op {
                Op::Bind(l) => labels[*l as usize] = pc,
                Op::Jmp { long: true, .. } => pc += 3,
                _ => pc += 1,
            }
        }
        (addrs, labels, pc)
    }

    /// Resolve labels. Conditional jumps whose targets are more than 255 instructions away
    /// become `jxx k,0,1; ja T; ja F`; this only grows distances, so the loop terminates.
    pub(crate) fn finish(mut self) -> Result<Vec<SockFilter>, String> {
        loop {
            let (addrs, labels, _) = self.layout();
            let mut changed = false;
            for (i, op) in self.ops.iter_mut().enumerate() {
                if let Op::Jmp { t, f, long, .. } = op {
                    if *long {
                        continue;
                    }
                    let here = addrs[i] + 1;
                    let (tt, ff) = (labels[*t as usize], labels[*f as usize]);
                    if tt == usize::MAX || ff == usize::MAX {
                        return Err("unbound label".into());
                    }
                    if tt < here || ff < here {
                        return Err("backward jump".into());
                    }
                    if tt - here > 255 || ff - here > 255 {
                        *long = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let (addrs, labels, len) = self.layout();
        let mut out = Vec::with_capacity(len);
        for (i, op) in self.ops.iter().enumerate() {
            let here = addrs[i] + 1;
            let dist = |l: &Label, from: usize| -> Result<usize, String> {
                let to = labels[*l as usize];
                if to == usize::MAX {
                    return Err("unbound label".into());
                }
                to.checked_sub(from)
                    .ok_or_else(|| "backward jump".to_string())
            };
            match op {
                Op::Bind(_) => {}
                Op::Ld(off) => out.push(SockFilter {
                    code: BPF_LD | BPF_W | BPF_ABS,
                    jt: 0,
                    jf: 0,
                    k: *off,
                }),
                Op::And(k) => out.push(SockFilter {
                    code: BPF_ALU | BPF_AND | BPF_K,
                    jt: 0,
                    jf: 0,
                    k: *k,
                }),
                Op::Ret(k) => out.push(SockFilter {
                    code: BPF_RET | BPF_K,
                    jt: 0,
                    jf: 0,
                    k: *k,
                }),
                Op::Ja(l) => {
                    let d = dist(l, here)?;
                    out.push(SockFilter {
                        code: BPF_JMP | BPF_JA,
                        jt: 0,
                        jf: 0,
                        k: d as u32,
                    });
                }
                Op::Jmp {
                    cond,
                    k,
                    t,
                    f,
                    long: false,
                } => {
                    let (dt, df) = (dist(t, here)?, dist(f, here)?);
                    out.push(SockFilter {
                        code: cond.code(),
                        jt: dt as u8,
                        jf: df as u8,
                        k: *k,
                    });
                }
                Op::Jmp {
                    cond,
                    k,
                    t,
                    f,
                    long: true,
                } => {
                    out.push(SockFilter {
                        code: cond.code(),
                        jt: 0,
                        jf: 1,
                        k: *k,
                    });
                    let dt = dist(t, here + 1)?;
                    out.push(SockFilter {
                        code: BPF_JMP | BPF_JA,
                        jt: 0,
                        jf: 0,
                        k: dt as u32,
                    });
                    let df = dist(f, here + 2)?;
                    out.push(SockFilter {
                        code: BPF_JMP | BPF_JA,
                        jt: 0,
                        jf: 0,
                        k: df as u32,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Check that a program only uses the instructions this crate emits, that every jump lands
/// inside the program, that loads stay inside `struct seccomp_data` and that it cannot run off
/// its end. (The kernel checks again; this catches a corrupt cache file early, with a reason.)
pub(crate) fn check(prog: &[SockFilter]) -> Result<(), String> {
    if prog.is_empty() {
        return Err("empty program".into());
    }
    if prog.len() > MAX_INSNS {
        return Err(format!(
            "{} instructions, more than the kernel's {MAX_INSNS}",
            prog.len()
        ));
    }
    let n = prog.len();
    for (pc, ins) in prog.iter().enumerate() {
        let next = pc + 1;
        match ins.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => {
                if ins.k % 4 != 0 || ins.k >= SECCOMP_DATA_LEN {
                    return Err(format!(
                        "instruction {pc}: load offset {} outside seccomp_data",
                        ins.k
                    ));
                }
                if next >= n {
                    return Err(format!("instruction {pc}: falls off the end"));
                }
            }
            c if c == BPF_ALU | BPF_AND | BPF_K => {
                if next >= n {
                    return Err(format!("instruction {pc}: falls off the end"));
                }
            }
            c if c == BPF_RET | BPF_K => {}
            c if c == BPF_JMP | BPF_JA => {
                if next as u64 + ins.k as u64 >= n as u64 {
                    return Err(format!("instruction {pc}: jump past the end"));
                }
            }
            c if c == BPF_JMP | BPF_JEQ | BPF_K
                || c == BPF_JMP | BPF_JGT | BPF_K
                || c == BPF_JMP | BPF_JGE | BPF_K =>
            {
                if next + ins.jt as usize >= n || next + ins.jf as usize >= n {
                    return Err(format!("instruction {pc}: jump past the end"));
                }
            }
            c => return Err(format!("instruction {pc}: unsupported opcode {c:#x}")),
        }
    }
    Ok(())
}

/// Input of a seccomp filter (`struct seccomp_data`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    fn word(&self, off: u32) -> u32 {
        let mut bytes = [0u8; SECCOMP_DATA_LEN as usize];
        bytes[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        bytes[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        bytes[8..16].copy_from_slice(&self.instruction_pointer.to_ne_bytes());
        for (i, a) in self.args.iter().enumerate() {
            bytes[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let o = off as usize;
        u32::from_ne_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]])
    }
}

/// Run a (checked) program on `data` and return the filter's verdict, as the kernel would.
pub fn run(prog: &[SockFilter], data: &SeccompData) -> Result<u32, String> {
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let ins = prog
            .get(pc)
            .ok_or_else(|| format!("pc {pc} out of program"))?;
        pc += 1;
        match ins.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => a = data.word(ins.k),
            c if c == BPF_ALU | BPF_AND | BPF_K => a &= ins.k,
            c if c == BPF_RET | BPF_K => return Ok(ins.k),
            c if c == BPF_JMP | BPF_JA => pc += ins.k as usize,
            c => {
                let taken = match c & 0xf0 {
                    BPF_JEQ => a == ins.k,
                    BPF_JGT => a > ins.k,
                    BPF_JGE => a >= ins.k,
                    _ => return Err(format!("unsupported opcode {c:#x}")),
                };
                pc += if taken { ins.jt } else { ins.jf } as usize;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_jumps_get_trampolines() {
        let mut a = Asm::default();
        let far = a.label();
        let near = a.label();
        a.ld(0);
        a.jmp(Cond::Eq, 7, far, near);
        a.bind(near);
        for i in 0..300 {
            a.ret(i);
        }
        a.bind(far);
        a.ret(0xdead);
        let prog = a.finish().unwrap();
        check(&prog).unwrap();
        let mut d = SeccompData {
            nr: 7,
            ..Default::default()
        };
        assert_eq!(run(&prog, &d).unwrap(), 0xdead);
        d.nr = 8;
        assert_eq!(run(&prog, &d).unwrap(), 0);
    }

    #[test]
    fn check_rejects_bad_programs() {
        assert!(check(&[]).is_err());
        let ld = SockFilter {
            code: BPF_LD | BPF_W | BPF_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        };
        assert!(check(&[ld]).unwrap_err().contains("falls off"));
        let bad_ld = SockFilter { k: 64, ..ld };
        let ret = SockFilter {
            code: BPF_RET | BPF_K,
            jt: 0,
            jf: 0,
            k: 0,
        };
        assert!(check(&[bad_ld, ret]).unwrap_err().contains("outside"));
        let j = SockFilter {
            code: BPF_JMP | BPF_JEQ | BPF_K,
            jt: 5,
            jf: 0,
            k: 0,
        };
        assert!(check(&[j, ret]).unwrap_err().contains("past the end"));
    }
}
