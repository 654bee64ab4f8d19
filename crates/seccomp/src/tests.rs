//! Unit tests: the generated BPF is run in the userspace interpreter and compared with the
//! rules evaluated directly; profile validation; serialisation; cache; Docker conversion.

use super::*;
use crate::bpf::SeccompData;
use crate::compile::{self as c, RET_ALLOW, RET_ERRNO, RET_KILL_THREAD, RET_TRAP};
use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccompAction as A, LinuxSeccompArgBuilder, LinuxSeccompOperator as O,
    LinuxSyscall,
};

const X86_64: u32 = 0xC000_003E;
const I386: u32 = 0x4000_0003;

pub(crate) fn docker_profile() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/docker-default-seccomp.json"
    ))
    .unwrap()
}

pub(crate) fn docker_caps() -> Vec<String> {
    crate::DOCKER_DEFAULT_CAPS
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn rule(
    names: &[&str],
    action: A,
    errno: Option<u32>,
    args: &[(usize, O, u64, u64)],
) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names.iter().map(|n| n.to_string()).collect());
    s.set_action(action);
    s.set_errno_ret(errno);
    if !args.is_empty() {
        s.set_args(Some(
            args.iter()
                .map(|(i, op, v, v2)| {
                    let mut b = LinuxSeccompArgBuilder::default()
                        .index(*i)
                        .op(*op)
                        .value(*v);
                    if *v2 != 0 {
                        b = b.value_two(*v2);
                    }
                    b.build().unwrap()
                })
                .collect(),
        ));
    }
    s
}

fn profile(default: A, rules: Vec<LinuxSyscall>) -> LinuxSeccomp {
    let mut p = LinuxSeccomp::default();
    p.set_default_action(default);
    p.set_syscalls(Some(rules));
    p
}

fn data(arch: u32, nr: u32, args: [u64; 6]) -> SeccompData {
    SeccompData {
        nr: nr as i32,
        arch,
        instruction_pointer: 0,
        args,
    }
}

fn nr(name: &str) -> u32 {
    Arch::X86_64.syscall_nr(name).unwrap()
}

/// xorshift64*: deterministic pseudo-random numbers for the property tests.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_profiles_match_reference_semantics() {
    let names: Vec<&str> = crate::syscalls_table::X86_64
        .iter()
        .map(|(n, _)| *n)
        .step_by(3)
        .collect();
    let ops = [
        O::ScmpCmpNe,
        O::ScmpCmpLt,
        O::ScmpCmpLe,
        O::ScmpCmpEq,
        O::ScmpCmpGe,
        O::ScmpCmpGt,
        O::ScmpCmpMaskedEq,
    ];
    let actions = [
        A::ScmpActAllow,
        A::ScmpActErrno,
        A::ScmpActTrap,
        A::ScmpActLog,
        A::ScmpActKillProcess,
        A::ScmpActTrace,
    ];
    let interesting = [
        0u64,
        1,
        2,
        5,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0005,
        u64::MAX,
        0x8000_0000_0000_0000,
        0x7e02_0000,
    ];
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut checked = 0;
    for round in 0..60 {
        let nsys = 1 + rng.below(if round % 10 == 0 { 150 } else { 12 }) as usize;
        let mut rules = Vec::new();
        let mut sys_used = Vec::new();
        for _ in 0..nsys {
            let name = names[rng.below(names.len() as u64) as usize];
            sys_used.push(name);
            for _ in 0..1 + rng.below(3) {
                let action = actions[rng.below(actions.len() as u64) as usize];
                let errno = matches!(action, A::ScmpActErrno | A::ScmpActTrace)
                    .then(|| 1 + rng.below(100) as u32);
                let nargs = rng.below(3) as usize;
                let args: Vec<_> = (0..nargs)
                    .map(|_| {
                        let v = if rng.below(2) == 0 {
                            interesting[rng.below(10) as usize]
                        } else {
                            rng.next()
                        };
                        let v2 = if rng.below(2) == 0 {
                            v & interesting[rng.below(10) as usize]
                        } else {
                            rng.next()
                        };
                        (rng.below(6) as usize, ops[rng.below(7) as usize], v, v2)
                    })
                    .collect();
                let args: Vec<_> = args
                    .into_iter()
                    .map(|(i, op, v, v2)| (i, op, v, if op == O::ScmpCmpMaskedEq { v2 } else { 0 }))
                    .collect();
                rules.push(rule(&[name], action, errno, &args));
            }
        }
        let p = profile(
            if round % 2 == 0 {
                A::ScmpActErrno
            } else {
                A::ScmpActAllow
            },
            rules.clone(),
        );
        let p = {
            let mut p = p;
            p.set_architectures(Some(vec![
                OciArch::ScmpArchX86,
                OciArch::ScmpArchX32,
                OciArch::ScmpArchAarch64,
                OciArch::ScmpArchArm,
            ]));
            p
        };
        let ir = match c::lower(&p) {
            Ok(ir) => ir,
            Err(Error::Invalid { msg, .. }) if msg.contains("same conditions") => continue,
            Err(e) => panic!("{e}"),
        };
        let f = compile(&p).unwrap();
        bpf::check(f.program()).unwrap();
        for _ in 0..400 {
            let (arch, num) = match rng.below(6) {
                0 => (
                    I386,
                    Arch::X86
                        .syscall_nr(sys_used[rng.below(sys_used.len() as u64) as usize])
                        .unwrap_or(5),
                ),
                4 => (
                    Arch::Aarch64.audit_arch(),
                    Arch::Aarch64
                        .syscall_nr(sys_used[rng.below(sys_used.len() as u64) as usize])
                        .unwrap_or(rng.below(500) as u32),
                ),
                5 => (
                    Arch::Arm.audit_arch(),
                    Arch::Arm
                        .syscall_nr(sys_used[rng.below(sys_used.len() as u64) as usize])
                        .unwrap_or(rng.below(500) as u32),
                ),
                1 => match rng.below(8) {
                    0 => (X86_64, u32::MAX),
                    _ => (
                        X86_64,
                        rng.below(600) as u32 | if rng.below(3) == 0 { 0x4000_0000 } else { 0 },
                    ),
                },
                2 => (0xdead, 1),
                _ => (
                    X86_64,
                    nr(sys_used[rng.below(sys_used.len() as u64) as usize]),
                ),
            };
            let mut args = [0u64; 6];
            for a in args.iter_mut() {
                *a = match rng.below(4) {
                    0 => rng.next(),
                    1 => interesting[rng.below(10) as usize],
                    2 => interesting[rng.below(10) as usize].wrapping_add(1),
                    _ => interesting[rng.below(10) as usize].wrapping_sub(1),
                };
            }
            let d = data(arch, num, args);
            assert_eq!(
                f.evaluate(&d),
                ir.eval(&d),
                "round {round}: {d:?}\nrules: {rules:#?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 10_000);
}

#[test]
fn docker_profile_semantics() {
    let p = docker::docker_to_oci_for_kernel(&docker_profile(), &docker_caps(), "amd64", (6, 18))
        .unwrap();
    assert_eq!(
        p.architectures().as_deref(),
        Some(
            &[
                OciArch::ScmpArchX86_64,
                OciArch::ScmpArchX86,
                OciArch::ScmpArchX32
            ][..]
        )
    );
    let f = compile(&p).unwrap();
    let eperm = RET_ERRNO | 1;
    let ev = |name: &str, args: [u64; 6]| f.evaluate(&data(X86_64, nr(name), args));
    assert_eq!(ev("read", [0; 6]), RET_ALLOW);
    assert_eq!(ev("mkdir", [0; 6]), RET_ALLOW);
    assert_eq!(ev("chroot", [0; 6]), RET_ALLOW); // CAP_SYS_CHROOT
    assert_eq!(ev("ptrace", [0; 6]), RET_ALLOW); // minKernel 4.8
    assert_eq!(ev("arch_prctl", [0; 6]), RET_ALLOW); // includes arches amd64
    assert_eq!(ev("unshare", [0; 6]), eperm);
    assert_eq!(ev("keyctl", [0; 6]), eperm);
    assert_eq!(ev("mount", [0; 6]), eperm); // CAP_SYS_ADMIN only
    assert_eq!(ev("reboot", [0; 6]), eperm);
    assert_eq!(ev("open_by_handle_at", [0; 6]), eperm);
    assert_eq!(ev("clone3", [0; 6]), RET_ERRNO | 38); // ENOSYS so libc falls back to clone
    assert_eq!(ev("personality", [0; 6]), RET_ALLOW);
    assert_eq!(ev("personality", [0xffff_ffff, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(ev("personality", [0x1_ffff_ffff, 0, 0, 0, 0, 0]), eperm);
    assert_eq!(ev("personality", [5, 0, 0, 0, 0, 0]), eperm);
    assert_eq!(ev("socket", [2, 1, 0, 0, 0, 0]), RET_ALLOW); // AF_INET
    assert_eq!(ev("socket", [39, 1, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(ev("socket", [40, 1, 0, 0, 0, 0]), eperm); // AF_VSOCK
    assert_eq!(ev("socket", [38, 1, 0, 0, 0, 0]), eperm);
    assert_eq!(ev("socket", [41, 1, 0, 0, 0, 0]), RET_ALLOW);
    let clone_fork = libc::SIGCHLD as u64;
    assert_eq!(ev("clone", [clone_fork, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        ev(
            "clone",
            [clone_fork | libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]
        ),
        eperm
    );
    assert_eq!(
        ev(
            "clone",
            [
                libc::CLONE_THREAD as u64 | libc::CLONE_VM as u64,
                0,
                0,
                0,
                0,
                0
            ]
        ),
        RET_ALLOW
    );
    // i386 and x32 sections
    assert_eq!(
        f.evaluate(&data(
            I386,
            Arch::X86.syscall_nr("chown32").unwrap(),
            [0; 6]
        )),
        RET_ALLOW
    );
    assert_eq!(
        f.evaluate(&data(
            I386,
            Arch::X86.syscall_nr("unshare").unwrap(),
            [0; 6]
        )),
        eperm
    );
    assert_eq!(
        f.evaluate(&data(X86_64, Arch::X32.syscall_nr("read").unwrap(), [0; 6])),
        RET_ALLOW
    );
    assert_eq!(
        f.evaluate(&data(
            X86_64,
            Arch::X32.syscall_nr("keyctl").unwrap(),
            [0; 6]
        )),
        eperm
    );
    // an architecture not in the filter is killed (libseccomp's bad-arch action)
    assert_eq!(f.evaluate(&data(0xC000_00B7, 63, [0; 6])), RET_KILL_THREAD);
    // runc's ENOSYS stub: numbers above the largest syscall the profile names get ENOSYS, so a
    // newer libc falls back; unnamed numbers below it get the default action
    assert_eq!(f.evaluate(&data(X86_64, 1000, [0; 6])), RET_ERRNO | 38);
    assert_eq!(
        f.evaluate(&data(X86_64, 0x3fff_ffff, [0; 6])),
        RET_ERRNO | 38
    );
    assert_eq!(
        f.evaluate(&data(X86_64, 0x4000_0000 + 1000, [0; 6])),
        RET_ERRNO | 38
    );
    assert_eq!(f.evaluate(&data(I386, 1000, [0; 6])), RET_ERRNO | 38);
    assert_eq!(f.evaluate(&data(X86_64, u32::MAX, [0; 6])), RET_ERRNO | 38); // nr -1
    assert_eq!(f.evaluate(&data(X86_64, nr("kexec_load"), [0; 6])), eperm);
    assert!(
        f.program().len() < 1200,
        "program has {} instructions",
        f.program().len()
    );

    // with CAP_SYS_ADMIN the namespace calls are allowed and clone3 is no longer ENOSYS
    let mut caps = docker_caps();
    caps.push("CAP_SYS_ADMIN".into());
    let f = compile(
        &docker::docker_to_oci_for_kernel(&docker_profile(), &caps, "amd64", (6, 18)).unwrap(),
    )
    .unwrap();
    let ev = |name: &str, args: [u64; 6]| f.evaluate(&data(X86_64, nr(name), args));
    assert_eq!(ev("unshare", [0; 6]), RET_ALLOW);
    assert_eq!(ev("mount", [0; 6]), RET_ALLOW);
    assert_eq!(ev("clone3", [0; 6]), RET_ALLOW);
    assert_eq!(
        ev("clone", [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
}

#[test]
fn docker_includes_excludes() {
    // minKernel: on an old kernel ptrace is not allowed
    let old = docker::docker_to_oci_for_kernel(&docker_profile(), &docker_caps(), "amd64", (4, 4))
        .unwrap();
    let f = compile(&old).unwrap();
    assert_eq!(
        f.evaluate(&data(X86_64, nr("ptrace"), [0; 6])),
        RET_ERRNO | 1
    );
    // arch: arm64 gets the aarch64 archMap entry, no arch_prctl rule
    let arm = docker::docker_to_oci_for_kernel(&docker_profile(), &docker_caps(), "arm64", (6, 18))
        .unwrap();
    assert_eq!(
        arm.architectures().as_deref(),
        Some(&[OciArch::ScmpArchAarch64, OciArch::ScmpArchArm][..])
    );
    assert!(!arm
        .syscalls()
        .as_ref()
        .unwrap()
        .iter()
        .any(|s| s.names().contains(&"arch_prctl".to_string())));
    assert!(arm
        .syscalls()
        .as_ref()
        .unwrap()
        .iter()
        .any(|s| s.names().contains(&"cacheflush".to_string())));
    // kernel-style arch names are accepted
    let k = docker::docker_to_oci_for_kernel(&docker_profile(), &docker_caps(), "x86_64", (6, 18))
        .unwrap();
    assert_eq!(
        k,
        docker::docker_to_oci_for_kernel(&docker_profile(), &docker_caps(), "amd64", (6, 18))
            .unwrap()
    );
    // caps given without the CAP_ prefix work the same
    let short: Vec<String> = docker_caps()
        .iter()
        .map(|c| c.trim_start_matches("CAP_").to_lowercase())
        .collect();
    let a = docker::docker_to_oci_for_kernel(&docker_profile(), &short, "amd64", (6, 18)).unwrap();
    let b = docker::docker_to_oci_for_kernel(&docker_profile(), &docker_caps(), "amd64", (6, 18))
        .unwrap();
    assert_eq!(a, b);
    // bad input
    let e = docker_to_oci(&docker_profile(), &[], "vax")
        .unwrap_err()
        .to_string();
    assert!(e.contains("vax"), "{e}");
    let bad = br#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOPE"}]}"#;
    let e = docker_to_oci(bad, &[], "amd64").unwrap_err().to_string();
    assert!(
        e.contains("syscalls[0].action") && e.contains("SCMP_ACT_NOPE"),
        "{e}"
    );
    let bad = br#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"four"}}]}"#;
    let e = docker_to_oci(bad, &[], "amd64").unwrap_err().to_string();
    assert!(e.contains("syscalls[0].includes.minKernel"), "{e}");
    let bad = br#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ALLOW"}]}"#;
    assert!(docker_to_oci(bad, &[], "amd64")
        .unwrap_err()
        .to_string()
        .contains("syscalls[0]"));
    let bad = br#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":2,"op":"SCMP_CMP_ALMOST"}]}]}"#;
    let e = docker_to_oci(bad, &[], "amd64").unwrap_err().to_string();
    assert!(
        e.contains("syscalls[0].args[0].op") && e.contains("SCMP_CMP_ALMOST"),
        "{e}"
    );
    // the old single `name` field
    let old_fmt = br#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#;
    let p = docker_to_oci(old_fmt, &[], "amd64").unwrap();
    assert_eq!(
        compile(&p)
            .unwrap()
            .evaluate(&data(X86_64, nr("mkdir"), [0; 6])),
        RET_ERRNO | 13
    );
}

#[test]
fn docker_old_format_fields() {
    let json = br#"{
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "listenerPath": "/run/agent.sock", "listenerMetadata": "m",
        "syscalls": [
            {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY", "comment": "ask the agent"},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
             "excludes": {"minKernel": "3.0"}}
        ]}"#;
    let p = docker::docker_to_oci_for_kernel(json, &[], "amd64", (6, 1)).unwrap();
    assert_eq!(p.default_errno_ret(), Some(13));
    assert_eq!(
        p.architectures().as_deref(),
        Some(&[OciArch::ScmpArchX86_64, OciArch::ScmpArchX32][..])
    );
    assert_eq!(
        p.listener_path().as_deref(),
        Some(std::path::Path::new("/run/agent.sock"))
    );
    assert_eq!(p.listener_metadata().as_deref(), Some("m"));
    assert_eq!(
        p.syscalls().as_ref().unwrap().len(),
        2,
        "the minKernel-excluded rule is dropped"
    );
    let f = compile(&p).unwrap();
    assert!(f.needs_notify());
    assert_eq!(f.flags(), c::FLAG_LOG | c::FLAG_NEW_LISTENER);
    assert_eq!(
        f.evaluate(&data(X86_64, nr("socket"), [1, 0, 0, 0, 0, 0])),
        RET_ERRNO | 13
    );
    assert_eq!(
        f.evaluate(&data(X86_64, nr("mkdir"), [0; 6])),
        c::RET_USER_NOTIF
    );
    // both architectures and archMap: refused
    let both = br#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],
        "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":null}],"syscalls":[]}"#;
    assert!(docker_to_oci(both, &[], "amd64")
        .unwrap_err()
        .to_string()
        .contains("archMap"));
    let bad_flag =
        br#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_NOPE"],"syscalls":[]}"#;
    assert!(docker_to_oci(bad_flag, &[], "amd64")
        .unwrap_err()
        .to_string()
        .contains("flags[0]"));
    assert!(docker_to_oci(b"{not json", &[], "amd64").is_err());
}

#[test]
fn docker_profile_compiles_fast() {
    let json = docker_profile();
    let p = docker_to_oci(&json, &docker_caps(), "amd64").unwrap();
    compile(&p).unwrap();
    let n = 50;
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(compile(std::hint::black_box(&p)).unwrap());
    }
    let per = t.elapsed() / n;
    eprintln!("docker default profile: compile {per:?} per run (this build profile)");
    // generous bound so unoptimised CI builds pass; release builds are far below 1 ms
    assert!(
        per < std::time::Duration::from_millis(50),
        "compile took {per:?}"
    );
}

#[test]
fn precedence_and_redundancy() {
    let pers = nr("personality");
    // unconditional overrides conditional, in either order
    for rules in [
        vec![
            rule(
                &["personality"],
                A::ScmpActAllow,
                None,
                &[(0, O::ScmpCmpEq, 0, 0)],
            ),
            rule(&["personality"], A::ScmpActErrno, Some(5), &[]),
        ],
        vec![
            rule(&["personality"], A::ScmpActErrno, Some(5), &[]),
            rule(
                &["personality"],
                A::ScmpActAllow,
                None,
                &[(0, O::ScmpCmpEq, 0, 0)],
            ),
        ],
    ] {
        let f = compile(&profile(A::ScmpActErrno, rules)).unwrap();
        assert_eq!(f.evaluate(&data(X86_64, pers, [0; 6])), RET_ERRNO | 5);
    }
    // first unconditional rule wins
    let f = compile(&profile(
        A::ScmpActErrno,
        vec![
            rule(&["personality"], A::ScmpActAllow, None, &[]),
            rule(&["personality"], A::ScmpActErrno, Some(5), &[]),
        ],
    ))
    .unwrap();
    assert_eq!(f.evaluate(&data(X86_64, pers, [0; 6])), RET_ALLOW);
    // overlapping conditions: the most restrictive action wins, whatever the order
    for rules in [
        vec![
            rule(
                &["personality"],
                A::ScmpActTrap,
                None,
                &[(0, O::ScmpCmpLt, 10, 0)],
            ),
            rule(
                &["personality"],
                A::ScmpActAllow,
                None,
                &[(0, O::ScmpCmpGt, 3, 0)],
            ),
        ],
        vec![
            rule(
                &["personality"],
                A::ScmpActAllow,
                None,
                &[(0, O::ScmpCmpGt, 3, 0)],
            ),
            rule(
                &["personality"],
                A::ScmpActTrap,
                None,
                &[(0, O::ScmpCmpLt, 10, 0)],
            ),
        ],
    ] {
        let f = compile(&profile(A::ScmpActErrno, rules)).unwrap();
        let ev = |a0| f.evaluate(&data(X86_64, pers, [a0, 0, 0, 0, 0, 0]));
        assert_eq!(ev(5), RET_TRAP);
        assert_eq!(ev(2), RET_TRAP);
        assert_eq!(ev(11), RET_ALLOW);
    }
    // identical conditions with different actions: refused (libseccomp: EEXIST)
    let e = compile(&profile(
        A::ScmpActErrno,
        vec![
            rule(&["read"], A::ScmpActAllow, None, &[]),
            rule(
                &["personality"],
                A::ScmpActAllow,
                None,
                &[(0, O::ScmpCmpEq, 3, 0)],
            ),
            rule(
                &["personality"],
                A::ScmpActTrap,
                None,
                &[(0, O::ScmpCmpEq, 3, 0)],
            ),
        ],
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("syscalls[2]") && e.contains("personality"),
        "{e}"
    );
    // a rule repeating the default action is skipped (so a later different one still applies)
    let f = compile(&profile(
        A::ScmpActErrno,
        vec![
            rule(&["mkdir"], A::ScmpActErrno, None, &[]),
            rule(&["mkdir"], A::ScmpActErrno, Some(13), &[]),
        ],
    ))
    .unwrap();
    assert_eq!(
        f.evaluate(&data(X86_64, nr("mkdir"), [0; 6])),
        RET_ERRNO | 13
    );
    // two conditions on one argument are ORed (runc splits them into separate rules)
    let f = compile(&profile(
        A::ScmpActAllow,
        vec![rule(
            &["personality"],
            A::ScmpActErrno,
            None,
            &[(0, O::ScmpCmpEq, 5, 0), (0, O::ScmpCmpEq, 6, 0)],
        )],
    ))
    .unwrap();
    let ev = |a0| f.evaluate(&data(X86_64, pers, [a0, 0, 0, 0, 0, 0]));
    assert_eq!(
        (ev(5), ev(6), ev(7)),
        (RET_ERRNO | 1, RET_ERRNO | 1, RET_ALLOW)
    );
    // conditions on different arguments are ANDed
    let f = compile(&profile(
        A::ScmpActAllow,
        vec![rule(
            &["socket"],
            A::ScmpActErrno,
            Some(97),
            &[(0, O::ScmpCmpEq, 2, 0), (1, O::ScmpCmpMaskedEq, 0xf, 2)],
        )],
    ))
    .unwrap();
    let ev = |a0, a1| f.evaluate(&data(X86_64, nr("socket"), [a0, a1, 0, 0, 0, 0]));
    assert_eq!(ev(2, 2), RET_ERRNO | 97);
    assert_eq!(ev(2, 0x80002), RET_ERRNO | 97);
    assert_eq!(ev(2, 1), RET_ALLOW);
    assert_eq!(ev(1, 2), RET_ALLOW);
}

#[test]
fn enosys_stub_follows_runc() {
    let rules = || {
        vec![
            rule(&["read", "mkdir"], A::ScmpActAllow, None, &[]),
            rule(&["getpid"], A::ScmpActErrno, None, &[]),
        ]
    };
    let getpid = nr("getpid");
    let top = [nr("read"), nr("mkdir"), getpid].into_iter().max().unwrap();
    // default ERRNO: above the largest named number -> ENOSYS (the skipped default-action rule
    // for getpid still counts as named, as in runc)
    let f = compile(&profile(A::ScmpActErrno, rules())).unwrap();
    assert_eq!(f.evaluate(&data(X86_64, top + 1, [0; 6])), RET_ERRNO | 38);
    assert_eq!(f.evaluate(&data(X86_64, top - 1, [0; 6])), RET_ERRNO | 1);
    assert_eq!(f.evaluate(&data(X86_64, top, [0; 6])), RET_ALLOW);
    // default KILL: same
    let f = compile(&profile(A::ScmpActKillProcess, rules())).unwrap();
    assert_eq!(f.evaluate(&data(X86_64, top + 1, [0; 6])), RET_ERRNO | 38);
    assert_eq!(
        f.evaluate(&data(X86_64, top - 1, [0; 6])),
        c::RET_KILL_PROCESS
    );
    // default ALLOW or LOG: no stub
    for d in [A::ScmpActAllow, A::ScmpActLog] {
        let f = compile(&profile(
            d,
            vec![rule(&["mkdir"], A::ScmpActErrno, None, &[])],
        ))
        .unwrap();
        assert_ne!(f.evaluate(&data(X86_64, 1000, [0; 6])), RET_ERRNO | 38);
    }
}

#[test]
fn i386_socketcall_and_ipc_multiplexing() {
    let mut p = profile(
        A::ScmpActErrno,
        vec![
            rule(&["bind", "msgget"], A::ScmpActAllow, None, &[]),
            rule(
                &["socket"],
                A::ScmpActAllow,
                None,
                &[(0, O::ScmpCmpEq, 1, 0)],
            ),
            rule(&["connect"], A::ScmpActErrno, Some(13), &[]),
        ],
    );
    p.set_architectures(Some(vec![OciArch::ScmpArchX86]));
    let f = compile(&p).unwrap();
    let ev = |nr: u32, a0: u64| f.evaluate(&data(I386, nr, [a0, 0, 0, 0, 0, 0]));
    assert_eq!(ev(361, 0), RET_ALLOW); // bind
    assert_eq!(ev(102, 2), RET_ALLOW); // socketcall(SYS_BIND)
    assert_eq!(ev(102, 3), RET_ERRNO | 13); // socketcall(SYS_CONNECT)
    assert_eq!(ev(117, 13), RET_ALLOW); // ipc(MSGGET)
    assert_eq!(ev(359, 1), RET_ALLOW); // socket(AF_UNIX)
    assert_eq!(ev(102, 1), RET_ERRNO | 1); // conditional socket rule is not widened to socketcall
    assert_eq!(ev(102, 4), RET_ERRNO | 1);
    // x86_64 has no multiplexer
    assert_eq!(
        f.evaluate(&data(X86_64, nr("socket"), [1, 0, 0, 0, 0, 0])),
        RET_ALLOW
    );
    // an explicit socketcall rule wins over the mirrored ones
    let mut p = profile(
        A::ScmpActErrno,
        vec![
            rule(&["socketcall"], A::ScmpActTrap, None, &[]),
            rule(&["bind"], A::ScmpActAllow, None, &[]),
        ],
    );
    p.set_architectures(Some(vec![OciArch::ScmpArchX86]));
    let f = compile(&p).unwrap();
    assert_eq!(f.evaluate(&data(I386, 102, [2, 0, 0, 0, 0, 0])), RET_TRAP);
}

#[test]
fn x32_without_x32_arch_is_bad_arch() {
    let mut p = profile(
        A::ScmpActAllow,
        vec![rule(&["mkdir"], A::ScmpActErrno, None, &[])],
    );
    p.set_architectures(Some(vec![OciArch::ScmpArchX86_64]));
    let f = compile(&p).unwrap();
    assert_eq!(
        f.evaluate(&data(X86_64, 0x4000_0000, [0; 6])),
        RET_KILL_THREAD
    );
    assert_eq!(f.evaluate(&data(I386, 1, [0; 6])), RET_KILL_THREAD);
    assert_eq!(f.evaluate(&data(X86_64, 0, [0; 6])), RET_ALLOW);
    // nr -1 (tracer-skipped syscall) belongs to x86_64, not to x32 / bad arch
    assert_eq!(f.evaluate(&data(X86_64, u32::MAX, [0; 6])), RET_ALLOW);
    p.set_architectures(Some(vec![OciArch::ScmpArchX86_64, OciArch::ScmpArchX32]));
    let f = compile(&p).unwrap();
    assert_eq!(f.evaluate(&data(X86_64, 0x4000_0000, [0; 6])), RET_ALLOW);
    assert_eq!(
        f.evaluate(&data(
            X86_64,
            Arch::X32.syscall_nr("mkdir").unwrap(),
            [0; 6]
        )),
        RET_ERRNO | 1
    );
}

#[test]
fn bad_profiles_name_the_field() {
    let e = compile(&profile(
        A::ScmpActErrno,
        vec![rule(&["read", "frobnicate"], A::ScmpActAllow, None, &[])],
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("syscalls[0].names[1]") && e.contains("frobnicate"),
        "{e}"
    );
    // a name that exists only on other architectures is fine (skipped on x86_64)
    let f = compile(&profile(
        A::ScmpActErrno,
        vec![rule(
            &["s390_runtime_instr", "read"],
            A::ScmpActAllow,
            None,
            &[],
        )],
    ))
    .unwrap();
    assert_eq!(f.evaluate(&data(X86_64, 0, [0; 6])), RET_ALLOW);
    let e = compile(&profile(
        A::ScmpActErrno,
        vec![rule(
            &["read"],
            A::ScmpActAllow,
            None,
            &[(6, O::ScmpCmpEq, 0, 0)],
        )],
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("syscalls[0].args[0].index"), "{e}");
    let e = compile(&profile(
        A::ScmpActErrno,
        vec![rule(&["read"], A::ScmpActAllow, Some(3), &[])],
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("syscalls[0].errnoRet"), "{e}");
    let e = compile(&profile(
        A::ScmpActErrno,
        vec![rule(&["read"], A::ScmpActErrno, Some(70000), &[])],
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("syscalls[0].errnoRet") && e.contains("70000"),
        "{e}"
    );
    let mut p = profile(A::ScmpActAllow, vec![]);
    p.set_default_errno_ret(Some(5));
    assert!(compile(&p)
        .unwrap_err()
        .to_string()
        .contains("defaultErrnoRet"));
    // an architecture without a table that this machine cannot run is dead code: skipped
    let mut p = profile(
        A::ScmpActAllow,
        vec![rule(&["mkdir"], A::ScmpActErrno, None, &[])],
    );
    p.set_architectures(Some(vec![OciArch::ScmpArchX86_64, OciArch::ScmpArchMips]));
    let f = compile(&p).unwrap();
    assert_eq!(
        f.evaluate(&data(X86_64, nr("mkdir"), [0; 6])),
        RET_ERRNO | 1
    );
    assert_eq!(f.evaluate(&data(0x0000_0008, 39, [0; 6])), RET_KILL_THREAD);
    assert!(crate::arch::host_can_run(OciArch::ScmpArchX86));
    assert!(!crate::arch::host_can_run(OciArch::ScmpArchMips));

    // JSON level: unknown action / arch / op / flag name their field
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#,
            "defaultAction",
            "SCMP_ACT_BOGUS",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_Z80"]}"#,
            "architectures[1]",
            "SCMP_ARCH_Z80",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_MAGIC"]}"#,
            "flags[0]",
            "SECCOMP_FILTER_FLAG_MAGIC",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO"},{"names":["write"],"action":"SCMP_ACT_DENY"}]}"#,
            "syscalls[1].action",
            "SCMP_ACT_DENY",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_XX"}]}]}"#,
            "syscalls[0].args[0].op",
            "SCMP_CMP_XX",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":9,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
            "syscalls[0].args[0].index",
            "9",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":"read","action":"SCMP_ACT_ERRNO"}]}"#,
            "syscalls[0].names",
            "",
        ),
    ];
    for (json, field, value) in cases {
        let e = parse_oci(json.as_bytes()).unwrap_err().to_string();
        assert!(e.contains(field) && e.contains(value), "{json}: {e}");
    }
    let ok = parse_oci(br#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"architectures":["SCMP_ARCH_X86_64"],"flags":["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"valueTwo":1,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#).unwrap();
    let f = compile(&ok).unwrap();
    assert_eq!(f.flags(), c::FLAG_SPEC_ALLOW);
    assert_eq!(f.evaluate(&data(X86_64, 0, [3, 0, 0, 0, 0, 0])), RET_ALLOW);
    assert_eq!(
        f.evaluate(&data(X86_64, 0, [2, 0, 0, 0, 0, 0])),
        RET_ERRNO | 38
    );
}

#[test]
fn notify_sets_new_listener() {
    let mut p = profile(
        A::ScmpActAllow,
        vec![rule(&["mkdir"], A::ScmpActNotify, None, &[])],
    );
    p.set_flags(Some(vec![
        oci_spec::runtime::LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
    ]));
    let e = compile(&p).unwrap_err().to_string();
    assert!(e.contains("listenerPath"), "{e}");
    p.set_listener_path(Some("/run/agent.sock".into()));
    let f = compile(&p).unwrap();
    assert!(f.needs_notify());
    assert_eq!(
        f.flags(),
        c::FLAG_TSYNC | c::FLAG_NEW_LISTENER | c::FLAG_TSYNC_ESRCH
    );
    assert_eq!(
        f.evaluate(&data(X86_64, nr("mkdir"), [0; 6])),
        c::RET_USER_NOTIF
    );
    assert!(!compile(&profile(A::ScmpActAllow, vec![]))
        .unwrap()
        .needs_notify());
    let mut p = profile(
        A::ScmpActNotify,
        vec![rule(&["read"], A::ScmpActAllow, None, &[])],
    );
    p.set_listener_path(Some("/run/agent.sock".into()));
    assert!(compile(&p)
        .unwrap_err()
        .to_string()
        .contains("defaultAction"));
}

#[test]
fn bytes_round_trip_and_corruption() {
    let p = docker::docker_to_oci_for_kernel(&docker_profile(), &docker_caps(), "amd64", (6, 18))
        .unwrap();
    let f = compile(&p).unwrap();
    let b = f.to_bytes();
    assert_eq!(Filter::from_bytes(&b).unwrap(), f);
    assert!(Filter::from_bytes(&b[..b.len() - 1])
        .unwrap_err()
        .to_string()
        .contains("length"));
    assert!(Filter::from_bytes(b"garbage garbage garbage")
        .unwrap_err()
        .to_string()
        .contains("magic"));
    // a jump pointing past the end is caught
    let mut bad = b.clone();
    let last = bad.len() - 8;
    bad[last] = 0x15; // BPF_JMP|BPF_JEQ|BPF_K
    bad[last + 2] = 9;
    assert!(Filter::from_bytes(&bad)
        .unwrap_err()
        .to_string()
        .contains("past the end"));
}

#[test]
fn cache_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("seccomp-cache");
    let p = docker::docker_to_oci_for_kernel(&docker_profile(), &docker_caps(), "amd64", (6, 18))
        .unwrap();
    let f1 = compile_cached(&p, &cache).unwrap();
    let key = hex::encode(cache_key(&p).unwrap());
    let file = cache.join(format!("{key}.bpf"));
    let stored = std::fs::read(&file).unwrap();
    assert_eq!(&stored[..32], &cache_key(&p).unwrap()[..]);
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        1,
        "no temp files left behind"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // concurrent stores of the same profile from several threads all succeed
    let dir2 = dir.path().join("concurrent");
    std::thread::scope(|sc| {
        for _ in 0..8 {
            sc.spawn(|| assert_eq!(compile_cached(&p, &dir2).unwrap(), f1));
        }
    });
    assert_eq!(std::fs::read_dir(&dir2).unwrap().count(), 1);
    // the second call loads the stored program: prove it by planting a different (valid) one
    let other = compile(&profile(A::ScmpActAllow, vec![])).unwrap();
    let mut planted = cache_key(&p).unwrap().to_vec();
    planted.extend(other.to_bytes());
    std::fs::write(&file, &planted).unwrap();
    assert_eq!(compile_cached(&p, &cache).unwrap(), other);
    // a file whose embedded key does not match is ignored and replaced
    let mut wrong = vec![0u8; 32];
    wrong.extend(other.to_bytes());
    std::fs::write(&file, &wrong).unwrap();
    assert_eq!(compile_cached(&p, &cache).unwrap(), f1);
    assert_eq!(std::fs::read(&file).unwrap(), stored);
    // corrupt content is replaced too
    std::fs::write(&file, b"junk").unwrap();
    assert_eq!(compile_cached(&p, &cache).unwrap(), f1);
    // different profile, different key
    let p2 = profile(
        A::ScmpActErrno,
        vec![rule(&["read"], A::ScmpActAllow, None, &[])],
    );
    assert_ne!(cache_key(&p2).unwrap(), cache_key(&p).unwrap());
    // a cache dir that cannot be created is an error naming it
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let e = compile_cached(&p2, &blocker.join("sub"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("file/sub"), "{e}");
}
