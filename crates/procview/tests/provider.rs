//! A provider over a fake v1 cgroup (plain files in a temp dir): mount, live values, exit
//! with the init. Needs root and /dev/fuse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_procview::{CgroupPaths, Provider};
use std::path::Path;
use std::time::{Duration, Instant};

fn kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// The provider's pid, from the file it writes once it answered INIT (a read went through).
fn provider_pid(pid_file: &Path) -> i32 {
    std::fs::read_to_string(pid_file).unwrap().parse().unwrap()
}

/// The provider (this process's child: the caller reaps it) has exited; reaped here.
fn exited(pid: i32) -> bool {
    let mut status = 0;
    // SAFETY: waitpid with a valid status pointer on our own child.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) == pid }
}

fn mounted(dir: &Path) -> bool {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let d = dir.to_str().unwrap();
    mi.lines().any(|l| l.split(' ').nth(4) == Some(d))
}

#[test]
fn serves_live_values_and_leaves_with_the_init() {
    let tmp = tempfile::tempdir().unwrap();
    let cg = tmp.path().join("cg");
    std::fs::create_dir(&cg).unwrap();
    let w = |f: &str, v: &str| std::fs::write(cg.join(f), v).unwrap();
    w("memory.limit_in_bytes", "67108864\n");
    w("memory.usage_in_bytes", "1048576\n");
    w("memory.stat", "total_cache 0\ntotal_shmem 0\n");
    w("cpuset.cpus", "0\n");
    w("tasks", "");
    let mut paths = CgroupPaths::default();
    for c in ["memory", "cpuset", "cpu", "cpuacct", "pids"] {
        paths.v1.insert(c.into(), cg.clone());
    }
    let dir = tmp.path().join("procview");
    let pid_file = tmp.path().join("procview.pid");
    let p = Provider::start(&dir, &pid_file, paths).unwrap();
    assert!(mounted(&dir));

    let mi = std::fs::read_to_string(dir.join("meminfo")).unwrap();
    let provider = provider_pid(&pid_file);
    assert_eq!(kb(&mi, "MemTotal"), 65536, "{mi}");
    assert_eq!(kb(&mi, "MemFree"), 65536 - 1024);
    // Live: the next read sees the new usage.
    w("memory.usage_in_bytes", "32505856\n");
    let mi = std::fs::read_to_string(dir.join("meminfo")).unwrap();
    assert_eq!(kb(&mi, "MemFree"), 65536 - 31744);
    assert_eq!(
        std::fs::read_to_string(dir.join("cpu-online")).unwrap(),
        "0\n"
    );
    let ci = std::fs::read_to_string(dir.join("cpuinfo")).unwrap();
    assert_eq!(ci.matches("processor").count(), 1, "{ci}");
    let st = std::fs::read_to_string(dir.join("stat")).unwrap();
    assert_eq!(
        st.lines().filter(|l| l.starts_with("cpu")).count(),
        2,
        "{st}"
    );
    assert!(std::fs::write(dir.join("meminfo"), "x").is_err());

    // The "init": once it is gone, the provider unmounts and exits.
    let mut init = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .unwrap();
    p.attach(init.id() as i32).unwrap();
    let up = std::fs::read_to_string(dir.join("uptime")).unwrap();
    let secs: f64 = up.split_whitespace().next().unwrap().parse().unwrap();
    assert!(secs < 5.0, "uptime since the init started: {up}");
    init.kill().unwrap();
    init.wait().unwrap();
    let t = Instant::now();
    while mounted(&dir) || !exited(provider) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "provider {provider} still there"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_dropped_provider_leaves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("procview");
    let pid_file = tmp.path().join("procview.pid");
    let p = Provider::start(&dir, &pid_file, CgroupPaths::default()).unwrap();
    // No cgroup figures: the host's own file.
    let host = std::fs::read_to_string("/proc/meminfo").unwrap();
    let mi = std::fs::read_to_string(dir.join("meminfo")).unwrap();
    let pid = provider_pid(&pid_file);
    assert_eq!(kb(&mi, "MemTotal"), kb(&host, "MemTotal"));
    drop(p);
    let t = Instant::now();
    while mounted(&dir) || !exited(pid) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "provider {pid} still there"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
