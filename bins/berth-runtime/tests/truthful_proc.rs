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

fn truthful(c: &mut Value) {
    c["annotations"] = json!({"run.berth.truthful-proc": "true"});
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
