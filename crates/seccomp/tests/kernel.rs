//! Filters compiled by berth-seccomp, loaded into the real kernel: a forked child sets
//! no_new_privs, installs the filter and then makes syscalls directly or execs /bin/busybox.
//! Needs Linux with seccomp (root is not required for filters with no_new_privs).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use berth_seccomp::{compile, compile_cached, docker_to_oci, parse_oci, Filter};

const BUSYBOX: &str = "/bin/busybox";

struct Out {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn exit_code(&self) -> Option<i32> {
        libc::WIFEXITED(self.status).then(|| libc::WEXITSTATUS(self.status))
    }
    fn signal(&self) -> Option<i32> {
        libc::WIFSIGNALED(self.status).then(|| libc::WTERMSIG(self.status))
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid 2-element array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds are fresh and owned by us.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Fork; in the child: stdout/stderr to pipes, no_new_privs, install `filter`, run `body`
/// (which must not allocate: the parent is multi-threaded) and exit with its result.
fn in_child(filter: &Filter, body: impl FnOnce() -> i32) -> Out {
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    // SAFETY: fork in a test process; the child only makes async-signal-safe calls
    // (dup2, prctl, seccomp, the body's raw syscalls/execv) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: child side, see above.
        unsafe {
            libc::dup2(out_w.as_raw_fd(), 1);
            libc::dup2(err_w.as_raw_fd(), 2);
            no_core_dumps();
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(101);
            }
            if filter.install().is_err() {
                libc::_exit(100);
            }
            let code = body();
            libc::_exit(code);
        }
    }
    drop(out_w);
    drop(err_w);
    let mut stdout = String::new();
    let mut stderr = String::new();
    std::fs::File::from(out_r)
        .read_to_string(&mut stdout)
        .unwrap();
    std::fs::File::from(err_r)
        .read_to_string(&mut stderr)
        .unwrap();
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    Out {
        status,
        stdout,
        stderr,
    }
}

/// SIGSYS kills dump core by default; keep test children from leaving core files around.
fn no_core_dumps() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit with a valid struct; lowering a limit needs no privilege.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
}

/// argv prepared before fork, so the child only calls execv.
struct Cmd {
    _args: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    path: CString,
}

fn cmd(args: &[&str]) -> Cmd {
    let args: Vec<CString> = args.iter().map(|a| CString::new(*a).unwrap()).collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    Cmd {
        _args: args,
        argv,
        path: CString::new(BUSYBOX).unwrap(),
    }
}

fn exec(c: &Cmd) -> i32 {
    // SAFETY: path and argv are NUL-terminated and live (owned by `c`).
    unsafe { libc::execv(c.path.as_ptr(), c.argv.as_ptr()) };
    127
}

fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// Run a raw syscall; returns 0 on success, the errno on failure (as an exit code).
fn sys_errno(nr: libc::c_long, a0: u64, a1: u64, a2: u64) -> i32 {
    // SAFETY: the syscalls used by these tests take integer or valid pointer arguments.
    let r = unsafe { libc::syscall(nr, a0, a1, a2, 0u64, 0u64, 0u64) };
    if r < 0 {
        errno()
    } else {
        0
    }
}

fn docker_filter() -> Filter {
    let profile = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/docker-default-seccomp.json"
    ))
    .unwrap();
    let caps: Vec<String> = berth_seccomp::DOCKER_DEFAULT_CAPS
        .iter()
        .map(|s| s.to_string())
        .collect();
    compile(&docker_to_oci(&profile, &caps, "amd64").unwrap()).unwrap()
}

#[test]
fn named_syscall_denied_with_errno_others_work() {
    let f = compile(
        &parse_oci(
            br#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
                {"names":["rmdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("made");
    let target_c = CString::new(target.to_str().unwrap()).unwrap();
    let tp = target_c.as_ptr() as u64;
    // direct syscalls: mkdir -> EACCES, rmdir -> EPERM (default errno), getpid works
    let out = in_child(&f, || {
        let m = sys_errno(libc::SYS_mkdir, tp, 0o755, 0);
        let r = sys_errno(libc::SYS_rmdir, tp, 0, 0);
        let p = sys_errno(libc::SYS_getpid, 0, 0, 0);
        if m == libc::EACCES && r == libc::EPERM && p == 0 {
            0
        } else {
            1
        }
    });
    assert_eq!(out.exit_code(), Some(0), "status {:#x}", out.status);
    assert!(!target.exists());

    // through busybox: mkdir fails with EACCES, other applets run
    let c = cmd(&[BUSYBOX, "mkdir", target.to_str().unwrap()]);
    let out = in_child(&f, || exec(&c));
    assert_eq!(out.exit_code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    assert!(!target.exists());
    let c = cmd(&[
        BUSYBOX,
        "sh",
        "-c",
        "echo hello; touch $0/file; ls $0",
        dir.path().to_str().unwrap(),
    ]);
    let out = in_child(&f, || exec(&c));
    assert_eq!(out.exit_code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "hello\nfile\n");
}

#[test]
fn argument_conditions() {
    let f = compile(
        &parse_oci(
            br#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":97,
                 "args":[{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]},
                {"names":["personality"],"action":"SCMP_ACT_ERRNO","errnoRet":33,
                 "args":[{"index":0,"value":4294967296,"op":"SCMP_CMP_GE"}]},
                {"names":["personality"],"action":"SCMP_ACT_ERRNO","errnoRet":34,
                 "args":[{"index":0,"value":240,"op":"SCMP_CMP_MASKED_EQ","valueTwo":112}]},
                {"names":["dup3"],"action":"SCMP_ACT_ERRNO","errnoRet":35,
                 "args":[{"index":1,"value":50,"op":"SCMP_CMP_GT"},{"index":2,"value":0,"op":"SCMP_CMP_NE"}]}
            ]}"#,
        )
        .unwrap(),
    )
    .unwrap();
    let out = in_child(&f, || {
        let mut bad = 0;
        // socket(AF_INET) denied, socket(AF_UNIX) allowed
        if sys_errno(
            libc::SYS_socket,
            libc::AF_INET as u64,
            libc::SOCK_STREAM as u64,
            0,
        ) != 97
        {
            bad |= 1;
        }
        if sys_errno(
            libc::SYS_socket,
            libc::AF_UNIX as u64,
            libc::SOCK_STREAM as u64,
            0,
        ) != 0
        {
            bad |= 2;
        }
        // the high word decides: 0x1_0000_0000 >= 2^32 denied, 0xffffffff (query) allowed
        if sys_errno(libc::SYS_personality, 0x1_0000_0000, 0, 0) != 33 {
            bad |= 4;
        }
        if sys_errno(libc::SYS_personality, 0xffff_ffff, 0, 0) != 0 {
            bad |= 8;
        }
        // masked: (arg & 0xf0) == 0x70 -> denied; 0xffffffff above is not
        if sys_errno(libc::SYS_personality, 0x75, 0, 0) != 34 {
            bad |= 16;
        }
        // AND of two arguments: dup3(0, 60, O_CLOEXEC) denied, dup3(0, 60, 0) allowed
        if sys_errno(libc::SYS_dup3, 0, 60, libc::O_CLOEXEC as u64) != 35 {
            bad |= 32;
        }
        if sys_errno(libc::SYS_dup3, 0, 60, 0) != 0 {
            bad |= 64;
        }
        bad
    });
    assert_eq!(
        out.exit_code(),
        Some(0),
        "failed checks bitmask / status {:#x}",
        out.status
    );
}

#[test]
fn docker_default_profile_blocks_namespaces_and_keys_but_shell_works() {
    let f = docker_filter();
    let c = cmd(&[BUSYBOX, "sh", "-c", "echo ok; ls /; cat /proc/self/status"]);
    let out = in_child(&f, || exec(&c));
    assert_eq!(out.exit_code(), Some(0), "stderr: {}", out.stderr);
    assert!(out.stdout.starts_with("ok\n"), "{}", out.stdout);
    assert!(
        out.stdout.lines().any(|l| l == "proc"),
        "ls / output missing: {}",
        out.stdout
    );
    assert!(out.stdout.contains("Seccomp:\t2"), "{}", out.stdout);
    assert!(out.stdout.contains("NoNewPrivs:\t1"), "{}", out.stdout);

    let out = in_child(&f, || {
        let mut bad = 0;
        if sys_errno(libc::SYS_unshare, libc::CLONE_NEWUSER as u64, 0, 0) != libc::EPERM {
            bad |= 1;
        }
        if sys_errno(libc::SYS_unshare, libc::CLONE_NEWNS as u64, 0, 0) != libc::EPERM {
            bad |= 2;
        }
        // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
        if sys_errno(libc::SYS_keyctl, 0, (-3i64) as u64, 0) != libc::EPERM {
            bad |= 4;
        }
        // clone with a namespace flag is denied by the masked-eq rule
        // SAFETY: raw clone; if the filter wrongly allowed it the new child exits at once.
        let r = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (libc::CLONE_NEWUSER | libc::SIGCHLD) as u64,
                0u64,
                0u64,
                0u64,
                0u64,
            )
        };
        if r == 0 {
            // SAFETY: leaving the accidental child.
            unsafe { libc::_exit(0) };
        }
        if r != -1 || errno() != libc::EPERM {
            bad |= 8;
        }
        // clone3 gets ENOSYS so libc falls back to clone
        if sys_errno(libc::SYS_clone3, 0, 0, 0) != libc::ENOSYS {
            bad |= 16;
        }
        if sys_errno(libc::SYS_getpid, 0, 0, 0) != 0 {
            bad |= 32;
        }
        // a number beyond the profile: the ENOSYS stub answers, not the default EPERM
        if sys_errno(1000, 0, 0, 0) != libc::ENOSYS {
            bad |= 64;
        }
        bad
    });
    assert_eq!(
        out.exit_code(),
        Some(0),
        "failed checks bitmask / status {:#x}",
        out.status
    );

    let c = cmd(&[BUSYBOX, "unshare", "-U", "true"]);
    let out = in_child(&f, || exec(&c));
    assert_ne!(out.exit_code(), Some(0));
    assert!(
        out.stderr.contains("Operation not permitted"),
        "{}",
        out.stderr
    );
}

#[test]
fn kill_actions_kill_with_sigsys() {
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
    ] {
        let json = format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["getppid"],"action":"{action}"}}]}}"#
        );
        let f = compile(&parse_oci(json.as_bytes()).unwrap()).unwrap();
        let out = in_child(&f, || {
            sys_errno(libc::SYS_getpid, 0, 0, 0);
            sys_errno(libc::SYS_getppid, 0, 0, 0);
            42
        });
        assert_eq!(
            out.signal(),
            Some(libc::SIGSYS),
            "{action}: status {:#x}",
            out.status
        );
    }
}

#[test]
fn default_kill_and_x32_syscalls_on_x86_64_filter() {
    // default KILL_PROCESS with an allow-list: a call outside it kills
    let f = compile(
        &parse_oci(br#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[{"names":["exit_group","exit","getpid"],"action":"SCMP_ACT_ALLOW"}]}"#)
            .unwrap(),
    )
    .unwrap();
    let out = in_child(&f, || {
        sys_errno(libc::SYS_getpid, 0, 0, 0);
        7
    });
    assert_eq!(out.exit_code(), Some(7), "status {:#x}", out.status);
    let out = in_child(&f, || {
        sys_errno(libc::SYS_getuid, 0, 0, 0);
        7
    });
    assert_eq!(out.signal(), Some(libc::SIGSYS));

    // an x32 syscall number under an x86_64-only filter is the bad-arch case: killed
    let only64 = compile(
        &parse_oci(br#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"]}"#)
            .unwrap(),
    )
    .unwrap();
    let out = in_child(&only64, || {
        sys_errno(0x4000_0000 + libc::SYS_getpid, 0, 0, 0);
        7
    });
    assert_eq!(out.signal(), Some(libc::SIGSYS), "status {:#x}", out.status);
    // with x32 in the filter it reaches the kernel (which runs it or says ENOSYS)
    let with32 = compile(
        &parse_oci(br#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X32"]}"#).unwrap(),
    )
    .unwrap();
    let out = in_child(&with32, || {
        sys_errno(0x4000_0000 + libc::SYS_getpid, 0, 0, 0);
        7
    });
    assert_eq!(out.exit_code(), Some(7), "status {:#x}", out.status);
}

#[test]
fn flags_are_accepted_by_the_kernel() {
    let f = compile(
        &parse_oci(
            br#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                 "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":5},{"names":["getpgrp"],"action":"SCMP_ACT_LOG"}]}"#,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(f.flags(), 1 | 2 | 4);
    let out = in_child(&f, || {
        let a = sys_errno(libc::SYS_getppid, 0, 0, 0);
        let b = sys_errno(libc::SYS_getpgrp, 0, 0, 0);
        if a == 5 && b == 0 {
            0
        } else {
            1
        }
    });
    assert_eq!(out.exit_code(), Some(0), "status {:#x}", out.status);
}

#[test]
fn cached_filter_installs_and_behaves() {
    let dir = tempfile::tempdir().unwrap();
    let p = parse_oci(br#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":9}]}"#).unwrap();
    let first = compile_cached(&p, dir.path()).unwrap();
    let second = compile_cached(&p, dir.path()).unwrap();
    assert_eq!(first, second);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let out = in_child(&second, || sys_errno(libc::SYS_getppid, 0, 0, 0));
    assert_eq!(out.exit_code(), Some(9));
}

#[test]
fn notify_listener_reaches_the_agent() {
    let f = compile(
        &parse_oci(br#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/unused","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_NOTIFY"}]}"#)
            .unwrap(),
    )
    .unwrap();
    assert!(f.needs_notify());
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let target = CString::new(dir.path().join("x").to_str().unwrap()).unwrap();
    let tp = target.as_ptr() as u64;
    let state = br#"{"ociVersion":"1.0.2","fds":["seccompFd"],"pid":1}"#;

    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        // receive the state message and the listener fd
        let mut buf = [0u8; 512];
        let mut cbuf = [0u64; 8];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: zeroed msghdr then fields set to live buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        // SAFETY: msg points at live buffers.
        let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, 0) };
        assert!(n > 0);
        // SAFETY: the control buffer was filled by the kernel.
        let fd = unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            assert!(!c.is_null());
            assert_eq!((*c).cmsg_type, libc::SCM_RIGHTS);
            *(libc::CMSG_DATA(c) as *const i32)
        };
        let text = String::from_utf8_lossy(&buf[..n as usize]).to_string();
        // answer one notification with EROFS
        // SAFETY: zeroed notif structs filled by the kernel / by us.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: ioctl on the listener fd with a properly sized struct.
        let r = unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV as _, &mut req) };
        assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
        let nr = req.data.nr;
        // SAFETY: as above.
        let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
        resp.id = req.id;
        resp.error = -libc::EROFS;
        // SAFETY: as above.
        let r = unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND as _, &mut resp) };
        assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
        // SAFETY: closing the fd we received.
        unsafe { libc::close(fd) };
        (text, nr)
    });

    // the child installs the filter itself and sends the listener fd, as the runtime will
    let sp = sock_path.clone();
    let out = in_child_raw(|| {
        // SAFETY: child side.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return 101;
        }
        let fd = match f.install() {
            Ok(Some(fd)) => fd,
            _ => return 100,
        };
        if berth_seccomp::send_listener_fd(&sp, state, fd).is_err() {
            return 102;
        }
        sys_errno(libc::SYS_mkdir, tp, 0o755, 0)
    });
    assert_eq!(
        out.exit_code(),
        Some(libc::EROFS),
        "status {:#x} {}",
        out.status,
        out.stderr
    );
    let (text, nr) = agent.join().unwrap();
    assert_eq!(text.as_bytes(), state);
    assert_eq!(nr as i64, libc::SYS_mkdir);
}

/// Fork and run `body` without installing anything first.
fn in_child_raw(body: impl FnOnce() -> i32) -> Out {
    let (err_r, err_w) = pipe();
    // SAFETY: see in_child.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: child side.
        unsafe {
            libc::dup2(err_w.as_raw_fd(), 2);
            no_core_dumps();
            libc::_exit(body());
        }
    }
    drop(err_w);
    let mut stderr = String::new();
    std::fs::File::from(err_r)
        .read_to_string(&mut stderr)
        .unwrap();
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    Out {
        status,
        stdout: String::new(),
        stderr,
    }
}

#[test]
fn trace_without_tracer_is_enosys_default_errno_and_log() {
    let f = compile(
        &parse_oci(
            br#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
                {"names":["exit_group","exit","rt_sigreturn","getpid"],"action":"SCMP_ACT_ALLOW"},
                {"names":["getppid"],"action":"SCMP_ACT_TRACE","errnoRet":7},
                {"names":["getuid"],"action":"SCMP_ACT_LOG"}]}"#,
        )
        .unwrap(),
    )
    .unwrap();
    let out = in_child(&f, || {
        let mut bad = 0;
        // no tracer attached: the kernel fails a TRACE'd syscall with ENOSYS
        if sys_errno(libc::SYS_getppid, 0, 0, 0) != libc::ENOSYS {
            bad |= 1;
        }
        if sys_errno(libc::SYS_getuid, 0, 0, 0) != 0 {
            bad |= 2;
        }
        // not listed: defaultErrnoRet
        if sys_errno(libc::SYS_getgid, 0, 0, 0) != 38 {
            bad |= 4;
        }
        if sys_errno(libc::SYS_getpid, 0, 0, 0) != 0 {
            bad |= 8;
        }
        bad
    });
    assert_eq!(
        out.exit_code(),
        Some(0),
        "failed checks bitmask / status {:#x}",
        out.status
    );
}

/// i386 syscall through `int 0x80` from this 64-bit process: seccomp sees AUDIT_ARCH_I386 and
/// the i386 numbers. Returns the raw result (negative errno on failure).
#[cfg(target_arch = "x86_64")]
fn int80(nr: u32, a0: u32) -> i32 {
    let ret: i32;
    // SAFETY: `int 0x80` with an integer-only syscall (getpid, unshare); the kernel preserves
    // every register except eax on the compat entry path.
    // rbx is reserved by LLVM, so the argument is swapped in and out around the trap.
    unsafe {
        std::arch::asm!(
            "xchg {a0}, rbx",
            "int 0x80",
            "xchg {a0}, rbx",
            a0 = inout(reg) a0 as u64 => _,
            inlateout("eax") nr as i32 => ret,
            options(nostack)
        )
    };
    ret
}

#[cfg(target_arch = "x86_64")]
#[test]
fn i386_syscalls_use_the_x86_section() {
    // int 0x80 needs IA32 emulation in the kernel; find out in a throw-away child first.
    let probe = in_child_raw(|| if int80(20, 0) > 0 { 0 } else { 1 });
    if probe.exit_code() != Some(0) {
        eprintln!(
            "SKIP: this kernel has no IA32 emulation (int 0x80 probe status {:#x})",
            probe.status
        );
        return;
    }
    let f = docker_filter();
    let out = in_child(&f, || {
        let mut bad = 0;
        if int80(20, 0) <= 0 {
            bad |= 1; // getpid (i386 20) allowed
        }
        if int80(310, libc::CLONE_NEWUSER as u32) != -libc::EPERM {
            bad |= 2; // unshare (i386 310) denied
        }
        if int80(288, 0) != -libc::EPERM {
            bad |= 4; // keyctl (i386 288) denied
        }
        bad
    });
    assert_eq!(
        out.exit_code(),
        Some(0),
        "failed checks bitmask / status {:#x}",
        out.status
    );
    // an x86_64-only filter kills i386 syscalls (bad architecture)
    let only64 = compile(
        &parse_oci(br#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"]}"#)
            .unwrap(),
    )
    .unwrap();
    let out = in_child(&only64, || {
        int80(20, 0);
        7
    });
    assert_eq!(out.signal(), Some(libc::SIGSYS), "status {:#x}", out.status);
}
