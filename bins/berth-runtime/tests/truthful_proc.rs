//! Truthful /proc through berth-runtime alone (annotation `run.berth.truthful-proc=true`):
//! the container's /proc/meminfo, cpuinfo, stat, uptime and cpu/online tell its limits; a
//! provider that dies takes only its own container's view; no FUSE means the host's files
//! and a warning, not a failed start. Needs root and /dev/fuse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// FUSE here (the qemu guest's kernel may lack it): else the test says SKIP and returns.
fn fuse() -> bool {
    let ok = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .is_ok();
    if !ok {
        // Straight to stderr (eprintln! is captured for a passing test): the skip shows.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP: /dev/fuse cannot be opened on this kernel"
        );
    }
    ok
}

/// Truthful /proc on; an allow-all seccomp profile stands in for a real one (sysinfo(2) is
/// answered only for containers that have a seccomp filter at all).
fn truthful(c: &mut Value) {
    c["annotations"] = json!({"run.berth.truthful-proc": "true"});
    c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW"});
}

fn add_applets(b: &Bundle, names: &[&str]) {
    for a in names {
        let p = b.path().join("rootfs/bin").join(a);
        if !p.exists() {
            std::os::unix::fs::symlink("busybox", p).unwrap();
        }
    }
}

fn run(script: &str, edit: impl FnOnce(&mut Value)) -> String {
    let b = bundle(&["sh", "-c", script]);
    add_applets(&b, &["nproc", "free", "uptime", "tr", "cut"]);
    b.edit(|c| {
        truthful(c);
        edit(c)
    });
    let o = b.run();
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    b.assert_clean();
    stdout(&o)
}

fn kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

fn host_cpus() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .matches("processor\t:")
        .count()
}

#[test]
fn limits_show_in_proc() {
    if !fuse() {
        return;
    }
    let out = run(
        "head -1 /proc/meminfo; echo cpuinfo $(grep -c ^processor /proc/cpuinfo); \
         echo stat $(grep -c '^cpu[0-9]' /proc/stat); echo online $(cat /sys/devices/system/cpu/online); \
         echo uptime $(cut -d. -f1 /proc/uptime); echo loadavg $(cat /proc/loadavg)",
        |c| {
            c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}, "cpu": {"cpus": "0"}});
        },
    );
    assert!(out.starts_with("MemTotal:          65536 kB\n"), "{out}");
    assert!(out.contains("\ncpuinfo 1\n"), "{out}");
    assert!(out.contains("\nstat 1\n"), "{out}");
    assert!(out.contains("\nonline 0\n"), "{out}");
    let up: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("uptime "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(up < 5, "uptime since the container started: {out}");
    assert!(out.contains("\nloadavg 0.00 0.00 0.00 "), "{out}");
}

#[test]
fn quota_rounds_up_and_narrows() {
    if !fuse() {
        return;
    }
    let q = |quota: i64| {
        run(
            "echo $(grep -c ^processor /proc/cpuinfo) $(cat /sys/devices/system/cpu/online)",
            |c| c["linux"]["resources"] = json!({"cpu": {"quota": quota, "period": 100000}}),
        )
    };
    assert_eq!(q(50000), "1 0\n");
    if host_cpus() >= 2 {
        assert_eq!(q(150000), "2 0-1\n", "--cpus 1.5 -> 2");
    }
}

#[test]
fn unlimited_sees_the_host() {
    if !fuse() {
        return;
    }
    let out = run(
        "head -1 /proc/meminfo; grep -c ^processor /proc/cpuinfo",
        |_| {},
    );
    let host = std::fs::read_to_string("/proc/meminfo").unwrap();
    assert_eq!(kb(&out, "MemTotal"), kb(&host, "MemTotal"), "{out}");
    assert!(out.ends_with(&format!("\n{}\n", host_cpus())), "{out}");
}

#[test]
fn memfree_follows_usage() {
    if !fuse() {
        return;
    }
    let out = run(
        "grep MemFree /proc/meminfo; dd if=/dev/zero of=/dev/shm/x bs=1M count=30 2>/dev/null; \
         grep -E 'MemFree|Shmem:' /proc/meminfo",
        |c| c["linux"]["resources"] = json!({"memory": {"limit": 128 << 20}}),
    );
    let free: Vec<u64> = out
        .lines()
        .filter(|l| l.starts_with("MemFree:"))
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    let drop = free[0] - free[1];
    assert!(
        (29 * 1024..34 * 1024).contains(&drop),
        "MemFree dropped by {drop} kB: {out}"
    );
    assert!(kb(&out, "Shmem") >= 30 * 1024, "{out}");
}

fn started(script: &str) -> Bundle {
    let b = bundle(&["sh", "-c", script]);
    b.edit(|c| {
        truthful(c);
        c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}});
    });
    let o = b.create();
    assert!(o.status.success(), "create: {}", stderr(&o));
    let o = b.rt(&["start", &b.id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    b
}

fn exec_cat(b: &Bundle, file: &str) -> std::process::Output {
    b.rt(&["exec", &b.id, "cat", file])
}

#[test]
fn a_dead_provider_affects_only_its_container() {
    if !fuse() {
        return;
    }
    let a = started("sleep 100");
    let b = started("sleep 100");
    let pid: i32 = std::fs::read_to_string(a.root.join(&a.id).join("procview.pid"))
        .unwrap()
        .parse()
        .unwrap();
    // SAFETY: SIGKILL to the provider this test's container got.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let t = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}/stat")).exists()
        && t.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = exec_cat(&b, "/proc/meminfo");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(kb(&stdout(&o), "MemTotal"), 65536);
    let o = exec_cat(&a, "/proc/meminfo");
    assert!(!o.status.success(), "a read with its provider gone fails");
    for c in [&a, &b] {
        let o = c.rt(&["delete", "-f", &c.id]);
        assert!(o.status.success(), "delete: {}", stderr(&o));
        c.assert_clean();
    }
}

#[test]
fn the_provider_leaves_with_the_container() {
    if !fuse() {
        return;
    }
    let a = started("sleep 100");
    let pid: i32 = std::fs::read_to_string(a.root.join(&a.id).join("procview.pid"))
        .unwrap()
        .parse()
        .unwrap();
    let o = a.rt(&["kill", &a.id, "KILL"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}/stat")).exists() {
        assert!(t.elapsed() < Duration::from_secs(5), "provider {pid} stays");
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = a.rt(&["delete", &a.id]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
    a.assert_clean();
}

#[test]
fn without_fuse_the_container_starts_with_the_host_files() {
    // /dev/fuse hidden (a private mount namespace with /dev/null over it); a kernel without
    // FUSE (the qemu guest) has no /dev/fuse to hide: the run there is the case itself.
    let b = bundle(&["head", "-1", "/proc/meminfo"]);
    b.edit(|c| {
        truthful(c);
        c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}});
    });
    let script = format!(
        "if [ -e /dev/fuse ]; then mount --bind /dev/null /dev/fuse || exit 1; fi; \
         exec {} --root {} run --bundle {} {}",
        BIN,
        b.root.display(),
        b.path().display(),
        b.id
    );
    let mut c = std::process::Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    let o = output_via_files(c);
    assert!(o.status.success(), "{}", stderr(&o));
    let host = std::fs::read_to_string("/proc/meminfo").unwrap();
    assert_eq!(kb(&stdout(&o), "MemTotal"), kb(&host, "MemTotal"));
    assert!(
        stderr(&o).contains("run.berth.truthful-proc"),
        "a warning names the annotation: {}",
        stderr(&o)
    );
}

/// `free -b`'s total (sysinfo's totalram * mem_unit).
fn free_total(out: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix("Mem:"))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no Mem: line in {out}"))
}

/// A static `si` in the rootfs that prints sysinfo(2)'s answer, or its error (busybox's free
/// and uptime ignore a failed sysinfo). False (and a visible SKIP) without a C compiler.
fn add_si(b: &Bundle) -> bool {
    const SRC: &str = r#"#include <sys/sysinfo.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
int main(void) {
    struct sysinfo s;
    memset(&s, 0xab, sizeof s);
    if (sysinfo(&s) < 0) { printf("sysinfo: %s\n", strerror(errno)); return 1; }
    printf("ram=%llu uptime=%ld procs=%u loads=%lu\n",
           (unsigned long long)s.totalram * s.mem_unit, s.uptime, s.procs, s.loads[0]);
    return 0;
}
"#;
    let src = b.path().join("si.c");
    std::fs::write(&src, SRC).unwrap();
    let ok = std::process::Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(b.path().join("rootfs/bin/si"))
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP: cc -static (gcc, libc6-dev) failed"
        );
    }
    ok
}

/// `key=N` in si's output.
fn si(out: &str, key: &str) -> u64 {
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {out}"))
}

fn host_uptime_min() -> u64 {
    let s = std::fs::read_to_string("/proc/uptime").unwrap();
    s.split('.').next().unwrap().parse::<u64>().unwrap() / 60
}

/// Run `script` with truthful /proc, a 64 MiB limit and `si`; None when si cannot be built.
fn run_si(script: &str, seccomp: Option<Value>) -> Option<String> {
    let b = bundle(&["sh", "-c", script]);
    add_applets(&b, &["free", "uptime"]);
    if !add_si(&b) {
        return None;
    }
    b.edit(|c| {
        truthful(c);
        c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}});
        if let Some(s) = seccomp {
            c["linux"]["seccomp"] = s;
        }
    });
    let o = b.run();
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    b.assert_clean();
    Some(stdout(&o))
}

#[test]
fn sysinfo_tells_the_container() {
    if !fuse() {
        return;
    }
    // busybox free and uptime ask sysinfo(2), not /proc.
    let Some(out) = run_si("si; free -b; uptime", None) else {
        return;
    };
    assert_eq!(si(&out, "ram"), 64 << 20, "totalram * mem_unit: {out}");
    assert!(si(&out, "uptime") < 5, "since the container started: {out}");
    assert_eq!(si(&out, "loads"), 0, "{out}");
    assert!(
        (1..10).contains(&si(&out, "procs")),
        "the cgroup's tasks: {out}"
    );
    assert_eq!(free_total(&out), 64 << 20, "{out}");
    assert!(
        host_uptime_min() > 0,
        "the host must be up a minute for this test"
    );
    assert!(
        out.contains(" up 0 min,"),
        "uptime since the container: {out}"
    );
    assert!(out.contains("load average: 0.00, 0.00, 0.00"), "{out}");
}

#[test]
fn sysinfo_under_a_seccomp_profile() {
    if !fuse() {
        return;
    }
    let profile = |sysinfo: Value| {
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                sysinfo,
            ]
        })
    };
    // The profile still applies (mkdir denied) and sysinfo, which it allows, is the container's.
    let allow = profile(json!({"names": ["sysinfo"], "action": "SCMP_ACT_ALLOW"}));
    let Some(out) = run_si("mkdir /tmp/d 2>/dev/null && echo mkdir-ok; si", Some(allow)) else {
        return;
    };
    assert!(!out.contains("mkdir-ok"), "{out}");
    assert_eq!(si(&out, "ram"), 64 << 20, "{out}");
    // A profile that denies sysinfo wins over the provider.
    let deny = profile(json!({"names": ["sysinfo"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}));
    let out = run_si("si; true", Some(deny)).unwrap();
    assert_eq!(out, "sysinfo: Permission denied\n");
}

#[test]
fn sysinfo_fails_with_enosys_once_the_provider_is_gone() {
    if !fuse() {
        return;
    }
    let a = bundle(&[
        "sh",
        "-c",
        "until test -e /tmp/go; do sleep 0.05; done; si >/tmp/out 2>&1; \
         echo rc=$? >>/tmp/out; sleep 100",
    ]);
    if !add_si(&a) {
        return;
    }
    a.edit(|c| {
        truthful(c);
        c["root"]["readonly"] = json!(false);
        c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}});
    });
    let o = a.create();
    assert!(o.status.success(), "create: {}", stderr(&o));
    let o = a.rt(&["start", &a.id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    let pid: i32 = std::fs::read_to_string(a.root.join(&a.id).join("procview.pid"))
        .unwrap()
        .parse()
        .unwrap();
    // SAFETY: SIGKILL to the provider this test's container got.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let t = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}/stat")).exists() {
        assert!(t.elapsed() < Duration::from_secs(5), "provider {pid} stays");
        std::thread::sleep(Duration::from_millis(10));
    }
    let rootfs = a.path().join("rootfs");
    std::fs::write(rootfs.join("tmp/go"), "").unwrap();
    let t = Instant::now();
    let out = loop {
        let o = std::fs::read_to_string(rootfs.join("tmp/out")).unwrap_or_default();
        if o.contains("rc=") {
            break o;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "sysinfo hangs: {o}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(out, "sysinfo: Function not implemented\nrc=1\n");
    let o = a.rt(&["delete", "-f", &a.id]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
    a.assert_clean();
}

#[test]
fn sysinfo_in_an_exec() {
    if !fuse() {
        return;
    }
    let a = bundle(&["sleep", "100"]);
    if !add_si(&a) {
        return;
    }
    a.edit(|c| {
        truthful(c);
        c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}});
    });
    let o = a.create();
    assert!(o.status.success(), "create: {}", stderr(&o));
    let o = a.rt(&["start", &a.id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    // Two execs: each has its own filter and listener; the first one's is dropped at its exit.
    for _ in 0..2 {
        let o = a.rt(&["exec", &a.id, "si"]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        assert_eq!(si(&stdout(&o), "ram"), 64 << 20, "{}", stdout(&o));
    }
    let o = a.rt(&["delete", "-f", &a.id]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
    a.assert_clean();
}
