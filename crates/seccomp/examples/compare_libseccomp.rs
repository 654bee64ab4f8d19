//! Development check: compare berth-seccomp's programs with libseccomp's on many inputs.
//!
//!   cc -O2 -o /tmp/oracle crates/seccomp/tools/libseccomp_oracle.c -lseccomp
//!   cargo run --release -p berth-seccomp --example compare_libseccomp -- /tmp/oracle [profile.json]
//!
//! Without a profile it checks the Docker default profile (14 default caps, amd64) and a set of
//! random profiles. Both programs run in berth-seccomp's BPF interpreter; every differing
//! verdict is printed. Names libseccomp cannot resolve (newer than its table) are dropped from
//! both sides.
#![allow(clippy::unwrap_used, clippy::expect_used)] // an example is a developer tool: a panic reports its failure

use std::io::Write;
use std::process::{Command, Stdio};

use berth_seccomp::{bpf, compile, docker_to_oci, SeccompData, SockFilter};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSyscall};

fn action_ret(a: LinuxSeccompAction, errno: Option<u32>) -> u32 {
    use LinuxSeccompAction as A;
    match a {
        A::ScmpActKill | A::ScmpActKillThread => 0,
        A::ScmpActKillProcess => 0x8000_0000,
        A::ScmpActTrap => 0x0003_0000,
        A::ScmpActErrno => 0x0005_0000 | errno.unwrap_or(1),
        A::ScmpActTrace => 0x7ff0_0000 | errno.unwrap_or(1),
        A::ScmpActNotify => 0x7fc0_0000,
        A::ScmpActLog => 0x7ffc_0000,
        A::ScmpActAllow => 0x7fff_0000,
    }
}

fn oracle(bin: &str, p: &LinuxSeccomp) -> Option<(Vec<SockFilter>, Vec<String>)> {
    let mut input = String::new();
    input += &format!(
        "D {}\n",
        action_ret(p.default_action(), p.default_errno_ret())
    );
    for a in p.architectures().iter().flatten() {
        input += &format!("A {}\n", *a as u32);
    }
    for s in p.syscalls().iter().flatten() {
        let ret = action_ret(s.action(), s.errno_ret());
        for n in s.names() {
            let args = s.args().clone().unwrap_or_default();
            input += &format!("R {ret} {n} {}", args.len());
            for a in &args {
                input += &format!(
                    " {} {} {} {}",
                    a.index(),
                    a.op() as u32,
                    a.value(),
                    a.value_two().unwrap_or(0)
                );
            }
            input += "\n";
        }
    }
    let mut child = Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    if !out.status.success() {
        return None;
    }
    let skipped = err
        .lines()
        .filter_map(|l| l.strip_prefix("SKIP "))
        .map(String::from)
        .collect();
    let prog = out
        .stdout
        .chunks_exact(8)
        .map(|c| SockFilter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Some((prog, skipped))
}

fn without(p: &LinuxSeccomp, drop: &[String]) -> LinuxSeccomp {
    let mut p = p.clone();
    let calls: Vec<LinuxSyscall> = p
        .syscalls()
        .iter()
        .flatten()
        .map(|s| {
            let mut s = s.clone();
            s.set_names(
                s.names()
                    .iter()
                    .filter(|n| !drop.contains(n))
                    .cloned()
                    .collect(),
            );
            s
        })
        .collect();
    p.set_syscalls(Some(calls));
    p
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn compare(bin: &str, label: &str, p: &LinuxSeccomp, rng: &mut Rng, interesting: &[u64]) -> usize {
    let Some((theirs, skipped)) = oracle(bin, p) else {
        println!("{label}: libseccomp refused the profile");
        return 1;
    };
    let p = without(p, &skipped);
    let ours = match compile(&p) {
        Ok(f) => f,
        Err(e) => {
            println!("{label}: berth refused: {e}");
            return 1;
        }
    };
    let mut bad = 0;
    let mut n = 0;
    let mut stub = 0;
    let ranges: [(u32, u32, u32); 5] = [
        (0xC000_003E, 0, 520),
        (0xC000_003E, 0x4000_0000, 0x4000_0000 + 560),
        (0xC000_003E, u32::MAX - 1, u32::MAX),
        (0x4000_0003, 0, 470),
        (0x4000_0003, u32::MAX - 1, u32::MAX),
    ];
    for (arch, lo, hi) in ranges {
        for nr in lo..=hi {
            for k in 0..24 {
                let mut args = [0u64; 6];
                if k > 0 {
                    for a in args.iter_mut() {
                        let i = interesting[(rng.next() % interesting.len() as u64) as usize];
                        *a = match rng.next() % 4 {
                            0 => rng.next(),
                            1 => i.wrapping_add(1),
                            2 => i.wrapping_sub(1),
                            _ => i,
                        };
                    }
                }
                let d = SeccompData {
                    nr: nr as i32,
                    arch,
                    instruction_pointer: 0,
                    args,
                };
                let a = ours.evaluate(&d);
                let b = bpf::run(&theirs, &d).unwrap();
                n += 1;
                // runc's ENOSYS stub (berth has it built in; plain libseccomp does not)
                if a == 0x0005_0026 && b == action_ret(p.default_action(), p.default_errno_ret()) {
                    stub += 1;
                    continue;
                }
                if a != b {
                    bad += 1;
                    if bad <= 10 {
                        println!("{label}: arch {arch:#x} nr {nr:#x} args {args:x?}: berth {a:#x} libseccomp {b:#x}");
                    }
                }
            }
        }
    }
    if bad > 0 && std::env::var_os("SHOW_PROFILE").is_some() {
        println!("{}", serde_json::to_string(&p).unwrap());
    }
    println!(
        "{label}: {n} inputs, {bad} differences, {stub} ENOSYS-stub answers (berth {} insns, libseccomp {} insns, {} names skipped)",
        ours.program().len(),
        theirs.len(),
        skipped.len()
    );
    bad
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = args
        .get(1)
        .expect("usage: compare_libseccomp ORACLE [profile.json]");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut bad = 0;
    if let Some(path) = args.get(2) {
        let p = berth_seccomp::parse_oci(&std::fs::read(path).unwrap()).unwrap();
        bad += compare(bin, path, &p, &mut rng, &[0, 1, 2, 0xffff_ffff]);
    } else {
        let json = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/docker-default-seccomp.json"
        ))
        .unwrap();
        let caps: Vec<String> = "CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE"
            .split(' ')
            .map(|c| format!("CAP_{c}"))
            .collect();
        let p = docker_to_oci(&json, &caps, "amd64").unwrap();
        let interesting = [
            0,
            1,
            8,
            38,
            39,
            40,
            41,
            0x20000,
            0x20008,
            0xffff_ffff,
            0x7e02_0000,
            0x1000_0000,
            0x1_0000_0000,
        ];
        bad += compare(bin, "docker-default", &p, &mut rng, &interesting);
        let mut caps_admin = caps.clone();
        caps_admin.push("CAP_SYS_ADMIN".into());
        bad += compare(
            bin,
            "docker-default+SYS_ADMIN",
            &docker_to_oci(&json, &caps_admin, "amd64").unwrap(),
            &mut rng,
            &interesting,
        );

        // random single-argument-per-rule profiles (overlaps across different args are where
        // libseccomp's tree order and our precedence rule can legitimately differ)
        // socket-family calls with conditions differ on x86 by design (libseccomp widens them to
        // socketcall); NOCOND_SOCKET=1 keeps socket-family rules unconditional
        let names = [
            "read",
            "write",
            "personality",
            "mkdir",
            "ioctl",
            "fcntl",
            "chown32",
            "mmap2",
            "getpid",
            "bind",
            "msgget",
        ];
        let interesting = [0u64, 1, 2, 5, 0xffff_ffff, 0x1_0000_0000, u64::MAX];
        for round in 0..std::env::var("ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(40)
        {
            let mut calls = Vec::new();
            let mut used_args: std::collections::HashMap<&str, u64> = Default::default();
            let mut fixed_action: std::collections::HashMap<&str, LinuxSeccompAction> =
                Default::default();
            for _ in 0..(1 + rng.next() % 8) {
                let name = names[(rng.next() % names.len() as u64) as usize];
                let actions = [
                    LinuxSeccompAction::ScmpActAllow,
                    LinuxSeccompAction::ScmpActErrno,
                    LinuxSeccompAction::ScmpActTrap,
                    LinuxSeccompAction::ScmpActLog,
                ];
                // MIXED=1: a syscall's rules may have different actions (overlaps then resolve by
                // berth's precedence rule vs libseccomp's tree order, which legitimately differ)
                let mixed = std::env::var_os("MIXED").is_some();
                let pick = rng.next() % 4;
                let action = if mixed {
                    actions[pick as usize]
                } else {
                    *fixed_action.entry(name).or_insert(actions[pick as usize])
                };
                let mut s = LinuxSyscall::default();
                s.set_names(vec![name.to_string()]);
                s.set_action(action);
                if action == LinuxSeccompAction::ScmpActErrno {
                    s.set_errno_ret(Some(if mixed {
                        1 + (rng.next() % 3) as u32
                    } else {
                        3
                    }));
                }
                // keep each syscall's rules on one argument index
                let idx = *used_args.entry(name).or_insert(rng.next() % 3);
                let mux = ["bind", "msgget"].contains(&name);
                if !rng.next().is_multiple_of(4) && !mux {
                    let op = 1 + rng.next() % 7;
                    let v = interesting[(rng.next() % interesting.len() as u64) as usize];
                    let v2 = if op == 7 {
                        v & interesting[(rng.next() % interesting.len() as u64) as usize]
                    } else {
                        0
                    };
                    let op_name = [
                        "",
                        "SCMP_CMP_NE",
                        "SCMP_CMP_LT",
                        "SCMP_CMP_LE",
                        "SCMP_CMP_EQ",
                        "SCMP_CMP_GE",
                        "SCMP_CMP_GT",
                        "SCMP_CMP_MASKED_EQ",
                    ][op as usize];
                    let a: LinuxSeccompArg = serde_json::from_value(serde_json::json!({
                        "index": idx, "value": v, "valueTwo": v2, "op": op_name
                    }))
                    .unwrap();
                    s.set_args(Some(vec![a]));
                }
                calls.push(s);
            }
            let mut p = LinuxSeccomp::default();
            p.set_default_action(LinuxSeccompAction::ScmpActErrno);
            // ONLY64=1: x86_64 alone (libseccomp 2.5.4 mis-generates some x86_64+x32 programs)
            if std::env::var_os("ONLY64").is_some() {
                p.set_architectures(Some(vec![oci_spec::runtime::Arch::ScmpArchX86_64]));
            } else {
                p.set_architectures(Some(vec![
                    oci_spec::runtime::Arch::ScmpArchX86_64,
                    oci_spec::runtime::Arch::ScmpArchX86,
                    oci_spec::runtime::Arch::ScmpArchX32,
                ]));
            }
            p.set_syscalls(Some(calls));
            // profiles libseccomp rejects (EEXIST) are skipped
            if oracle(bin, &p).is_none() {
                continue;
            }
            if compile(&p).is_err() {
                continue;
            }
            bad += compare(bin, &format!("random-{round}"), &p, &mut rng, &interesting);
        }
    }
    println!("total differences: {bad}");
    std::process::exit(if bad == 0 { 0 } else { 1 });
}
