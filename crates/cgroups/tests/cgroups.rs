//! Root-only tests of berth-cgroups against the host's real cgroup filesystem. They run on
//! cgroup v1/hybrid hosts and, through scripts/qemu-v2.sh, on a real cgroup v2 kernel.
//! Each test makes its own cgroup /berth-test-<pid>-<n> and removes it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_cgroups::{Cgroup, Mode};
use oci_spec::runtime::LinuxResources;

const BUSYBOX: &str = "/bin/busybox";

static N: AtomicU32 = AtomicU32::new(0);

fn unique(tag: &str) -> String {
    format!(
        "/berth-test-{}-{}-{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A created cgroup that is emptied and destroyed when dropped.
struct TestCg {
    cg: Cgroup,
}

impl TestCg {
    fn new(tag: &str) -> TestCg {
        let mut cg = Cgroup::new(Some(&unique(tag)), "unused", false).unwrap();
        cg.create().unwrap();
        TestCg { cg }
    }
}

impl Drop for TestCg {
    fn drop(&mut self) {
        let _ = self.cg.kill_all(libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.cg.pids().map(|p| !p.is_empty()).unwrap_or(false) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.cg.destroy();
    }
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

/// Start `sh -c script` blocked on `read`, move it into the cgroup, then let it go.
fn run_in(cg: &Cgroup, script: &str) -> Child {
    let mut child = Command::new(BUSYBOX)
        .args(["sh", "-c", &format!("read _go; {script}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    cg.add_task(child.id() as i32).unwrap();
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    child
}

fn run_in_to_end(cg: &Cgroup, script: &str) -> std::process::Output {
    run_in(cg, script).wait_with_output().unwrap()
}

/// The file that holds a setting: the v1 controller's file, or the v2 file.
fn ctl(cg: &Cgroup, v1: (&str, &str), v2: &str) -> PathBuf {
    match cg.mode() {
        Mode::V2 => cg.unified_dir().unwrap().join(v2),
        _ => cg.v1_dirs()[v1.0].join(v1.1),
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

fn all_dirs(cg: &Cgroup) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = cg.v1_dirs().values().cloned().collect();
    v.extend(cg.unified_dir().map(Path::to_path_buf));
    v.sort();
    v.dedup();
    v
}

fn is_v2(cg: &Cgroup) -> bool {
    cg.mode() == Mode::V2
}

#[test]
fn detect_reports_a_mode() {
    let m = berth_cgroups::detect().unwrap();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let has_v2 = mi.lines().any(|l| l.contains(" - cgroup2 "));
    let has_v1 = mi.lines().any(|l| l.contains(" - cgroup "));
    let want = match (has_v1, has_v2) {
        (true, true) => Mode::Hybrid,
        (true, false) => Mode::V1,
        _ => Mode::V2,
    };
    assert_eq!(m, want);
}

#[test]
fn create_apply_destroy_leaves_nothing() {
    let parent = unique("nest");
    let path = format!("{parent}/a/b");
    let mut cg = Cgroup::new(Some(&path), "x", false).unwrap();
    cg.create().unwrap();
    let dirs = all_dirs(&cg);
    assert!(!dirs.is_empty());
    for d in &dirs {
        assert!(d.is_dir(), "{} missing", d.display());
        assert!(d.ends_with(path.trim_start_matches('/')));
    }
    cg.apply(&res(r#"{"memory":{"limit":67108864},"pids":{"limit":20}}"#))
        .unwrap();
    let mut child = run_in(&cg, "exec /bin/busybox sleep 30");
    assert_eq!(cg.pids().unwrap(), vec![child.id() as i32]);
    cg.kill_all(libc::SIGKILL).unwrap();
    child.wait().unwrap();
    // Survives a round trip through the runtime's state file.
    let saved = serde_json::to_string(&cg).unwrap();
    let loaded: Cgroup = serde_json::from_str(&saved).unwrap();
    assert_eq!(loaded, cg);
    loaded.destroy().unwrap();
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
        let top = d
            .ancestors()
            .find(|a| a.ends_with(parent.trim_start_matches('/')))
            .unwrap();
        assert!(!top.exists(), "{} left behind", top.display());
    }
}

#[test]
fn destroy_never_touches_dirs_it_did_not_create() {
    let outer_path = unique("outer");
    let mut outer = TestCg {
        cg: Cgroup::new(Some(&outer_path), "x", false).unwrap(),
    };
    outer.cg.create().unwrap();
    let mut inner = Cgroup::new(Some(&format!("{outer_path}/inner")), "x", false).unwrap();
    inner.create().unwrap();
    assert_eq!(inner.created_dirs().len(), all_dirs(&inner).len());
    inner.destroy().unwrap();
    for d in all_dirs(&outer.cg) {
        assert!(d.is_dir(), "{} was removed", d.display());
    }
    for d in all_dirs(&inner) {
        assert!(!d.exists());
    }
}

#[test]
fn default_and_relative_paths_follow_runc() {
    let cg = Cgroup::new(None, "abc123", false).unwrap();
    assert_eq!(cg.path(), "/abc123");
    for d in all_dirs(&cg) {
        assert!(d.ends_with("abc123"));
    }
    let rel = Cgroup::new(Some("berth-rel/x"), "id", false).unwrap();
    assert_eq!(rel.path(), "berth-rel/x");
    // Relative to our own cgroup in each hierarchy.
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    if is_v2(&rel) {
        let p = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
        let want = Path::new("/sys/fs/cgroup")
            .join(p.trim_start_matches('/'))
            .join("berth-rel/x");
        assert_eq!(rel.unified_dir().unwrap(), want);
    } else {
        let mem = own
            .lines()
            .find_map(|l| l.split_once(":memory:").map(|x| x.1))
            .unwrap();
        assert!(rel.v1_dirs()["memory"]
            .to_string_lossy()
            .ends_with(&format!("{}/berth-rel/x", mem.trim_end_matches('/'))));
    }
    assert!(Cgroup::new(Some("/a/../../etc"), "id", false).is_err());
    let e = Cgroup::new(None, "x", true).unwrap_err().to_string();
    assert!(e.contains("systemd"), "{e}");
}

#[test]
fn limits_land_in_the_files() {
    let t = TestCg::new("vals");
    let cg = &t.cg;
    let warnings = cg
        .apply(&res(
            r#"{"memory":{"limit":67108864,"reservation":33554432,"kernel":1048576},
                "cpu":{"shares":512,"quota":50000,"period":100000},
                "pids":{"limit":10}}"#,
        ))
        .unwrap();
    assert!(
        warnings.iter().any(|w| w.contains("memory.kernel")),
        "{warnings:?}"
    );
    assert_eq!(
        read(&ctl(cg, ("memory", "memory.limit_in_bytes"), "memory.max")),
        "67108864"
    );
    assert_eq!(
        read(&ctl(
            cg,
            ("memory", "memory.soft_limit_in_bytes"),
            "memory.low"
        )),
        "33554432"
    );
    assert_eq!(read(&ctl(cg, ("pids", "pids.max"), "pids.max")), "10");
    if is_v2(cg) {
        assert_eq!(read(&ctl(cg, ("", ""), "cpu.max")), "50000 100000");
        // runc: weight = 1 + ((512 - 2) * 9999) / 262142 = 20
        assert_eq!(read(&ctl(cg, ("", ""), "cpu.weight")), "20");
    } else {
        assert_eq!(read(&ctl(cg, ("cpu", "cpu.cfs_quota_us"), "")), "50000");
        assert_eq!(read(&ctl(cg, ("cpu", "cpu.cfs_period_us"), "")), "100000");
        assert_eq!(read(&ctl(cg, ("cpu", "cpu.shares"), "")), "512");
    }
    // Unlimited.
    cg.update(&res(
        r#"{"memory":{"limit":-1},"cpu":{"quota":-1},"pids":{"limit":-1}}"#,
    ))
    .unwrap();
    assert_eq!(read(&ctl(cg, ("pids", "pids.max"), "pids.max")), "max");
    let mem = read(&ctl(cg, ("memory", "memory.limit_in_bytes"), "memory.max"));
    assert!(
        mem == "max" || mem.parse::<u64>().unwrap() > 1 << 60,
        "{mem}"
    );
    if is_v2(cg) {
        assert_eq!(read(&ctl(cg, ("", ""), "cpu.max")), "max 100000");
    } else {
        assert_eq!(read(&ctl(cg, ("cpu", "cpu.cfs_quota_us"), "")), "-1");
    }
}

#[test]
fn blkio_weight_lands_if_the_kernel_has_it() {
    let t = TestCg::new("blkio");
    let cg = &t.cg;
    let (file, want) = if is_v2(cg) {
        let d = cg.unified_dir().unwrap();
        if d.join("io.bfq.weight").exists() {
            ("io.bfq.weight", "500")
        } else if d.join("io.weight").exists() {
            ("io.weight", "4950")
        } else {
            eprintln!("SKIP: no io weight file on this kernel");
            return;
        }
    } else {
        let Some(d) = cg.v1_dirs().get("blkio") else {
            eprintln!("SKIP: blkio not mounted");
            return;
        };
        if d.join("blkio.weight").exists() {
            ("blkio.weight", "500")
        } else if d.join("blkio.bfq.weight").exists() {
            ("blkio.bfq.weight", "500")
        } else {
            // Weight requested but impossible: a clear error naming the field.
            let e = cg
                .apply(&res(r#"{"blockIO":{"weight":500}}"#))
                .unwrap_err()
                .to_string();
            assert!(e.contains("linux.resources.blockIO.weight"), "{e}");
            eprintln!("SKIP: kernel exposes no blkio weight (checked the error instead)");
            return;
        }
    };
    cg.apply(&res(r#"{"blockIO":{"weight":500}}"#)).unwrap();
    let dir = if is_v2(cg) {
        cg.unified_dir().unwrap().to_path_buf()
    } else {
        cg.v1_dirs()["blkio"].clone()
    };
    let got = read(&dir.join(file));
    assert!(got.contains(want), "{file}: {got}");
}

#[test]
fn oom_kills_64m_under_32m_limit_but_8m_survives() {
    let t = TestCg::new("oom");
    let cg = &t.cg;
    cg.apply(&res(r#"{"memory":{"limit":33554432,"swap":33554432}}"#))
        .unwrap();
    let big = run_in_to_end(
        cg,
        "exec /bin/busybox dd if=/dev/zero of=/dev/null bs=64M count=1",
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        big.status.signal(),
        Some(libc::SIGKILL),
        "64M should be OOM-killed: {:?} {}",
        big.status,
        String::from_utf8_lossy(&big.stderr)
    );
    assert!(cg.oom_kill_count().unwrap() >= 1);
    let small = run_in_to_end(
        cg,
        "exec /bin/busybox dd if=/dev/zero of=/dev/null bs=8M count=1",
    );
    assert!(
        small.status.success(),
        "8M should fit: {:?} {}",
        small.status,
        String::from_utf8_lossy(&small.stderr)
    );
}

#[test]
fn true_runs_under_512k() {
    let t = TestCg::new("tiny");
    let cg = &t.cg;
    cg.apply(&res(r#"{"memory":{"limit":524288}}"#)).unwrap();
    assert_eq!(
        read(&ctl(cg, ("memory", "memory.limit_in_bytes"), "memory.max")),
        "524288"
    );
    let out = run_in_to_end(cg, "exec /bin/true");
    assert!(
        out.status.success(),
        "{:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // And it really ran inside the limited cgroup.
    let max = if is_v2(cg) {
        ctl(cg, ("", ""), "memory.peak")
    } else {
        ctl(cg, ("memory", "memory.max_usage_in_bytes"), "")
    };
    if max.exists() {
        let peak: u64 = read(&max).parse().unwrap();
        assert!(peak > 0 && peak <= 524288, "peak {peak}");
    }
}

#[test]
fn forks_fail_beyond_pids_limit() {
    let t = TestCg::new("pids");
    let cg = &t.cg;
    cg.apply(&res(r#"{"pids":{"limit":10}}"#)).unwrap();
    // The shell forks 30 sleepers; with itself that would be 31 processes.
    let out = run_in_to_end(
        cg,
        "i=0; while [ $i -lt 30 ]; do /bin/busybox sleep 30 </dev/null >/dev/null 2>&1 & i=$((i+1)); done; echo spawned",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fork"), "no fork failure reported: {err}");
    // Shell + 9 sleepers reached the limit of 10; every later fork failed.
    let n = cg.pids().unwrap().len();
    assert_eq!(n, 9, "sleepers left running under pids.limit 10");
    let events = read(&ctl(cg, ("pids", "pids.events"), "pids.events"));
    let max: u64 = events.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(max >= 1, "pids.events: {events}");
}

#[test]
fn freeze_stops_a_counter_and_thaw_resumes_it() {
    let t = TestCg::new("freeze");
    let cg = &t.cg;
    let mut child = run_in(
        cg,
        "i=0; while true; do i=$((i+1)); echo $i; /bin/busybox usleep 5000; done",
    );
    let last = Arc::new(AtomicU64::new(0));
    let stdout = child.stdout.take().unwrap();
    let l2 = last.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = line.trim().parse() {
                l2.store(v, Ordering::SeqCst);
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while last.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(last.load(Ordering::SeqCst) >= 3, "counter not running");
    assert!(!cg.frozen().unwrap());
    cg.freeze().unwrap();
    assert!(cg.frozen().unwrap());
    std::thread::sleep(Duration::from_millis(100));
    let a = last.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(500));
    let b = last.load(Ordering::SeqCst);
    assert_eq!(a, b, "counter advanced while frozen");
    cg.thaw().unwrap();
    assert!(!cg.frozen().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    let c = last.load(Ordering::SeqCst);
    assert!(c > b, "counter did not resume after thaw ({b} -> {c})");
    cg.kill_all(libc::SIGKILL).unwrap();
    child.wait().unwrap();
}

#[test]
fn stats_are_non_zero_after_work() {
    let t = TestCg::new("stats");
    let cg = &t.cg;
    cg.apply(&res(
        r#"{"memory":{"limit":134217728},"pids":{"limit":50}}"#,
    ))
    .unwrap();
    let mut child = run_in(
        cg,
        "/bin/busybox dd if=/dev/zero of=/dev/null bs=16M count=20 2>/dev/null; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo ready; read _x",
    );
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let s = cg.stats().unwrap();
    assert!(s.cpu.usage.total > 0, "{s:?}");
    assert!(s.cpu.usage.user + s.cpu.usage.kernel > 0, "{s:?}");
    if !is_v2(cg) {
        assert!(s.cpu.usage.percpu.iter().sum::<u64>() > 0, "{s:?}");
    }
    assert!(s.memory.usage.usage > 0, "{s:?}");
    assert!(
        s.memory.usage.max >= 16 << 20 || s.memory.usage.max == 0,
        "{s:?}"
    );
    assert_eq!(s.memory.usage.limit, 134217728);
    assert_eq!(s.pids.current, 1);
    assert_eq!(s.pids.limit, 50);
    let j = serde_json::to_value(&s).unwrap();
    assert!(j["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
    assert!(j["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    assert_eq!(j["pids"]["current"], 1);
    child.stdin.as_mut().unwrap().write_all(b"done\n").unwrap();
    child.wait().unwrap();
}

#[test]
fn update_changes_a_running_containers_memory_limit() {
    let t = TestCg::new("update");
    let cg = &t.cg;
    cg.apply(&res(r#"{"memory":{"limit":67108864,"swap":67108864}}"#))
        .unwrap();
    let mut child = run_in(cg, "exec /bin/busybox sleep 30");
    let f = ctl(cg, ("memory", "memory.limit_in_bytes"), "memory.max");
    // Lowering then raising (swap ordering must work both ways).
    cg.update(&res(r#"{"memory":{"limit":33554432,"swap":33554432}}"#))
        .unwrap();
    assert_eq!(read(&f), "33554432");
    cg.update(&res(r#"{"memory":{"limit":100663296,"swap":201326592}}"#))
        .unwrap();
    assert_eq!(read(&f), "100663296");
    cg.update(&res(r#"{"memory":{"limit":50331648}}"#)).unwrap();
    assert_eq!(read(&f), "50331648");
    cg.kill_all(libc::SIGKILL).unwrap();
    child.wait().unwrap();
}

const DEVICE_RULES: &str = r#"{"devices":[
    {"allow":false,"access":"rwm"},
    {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
    {"allow":true,"type":"c","major":5,"minor":0,"access":"rw"}
]}"#;

fn check_device_denial(cg: &Cgroup) {
    let dir = tempdir();
    let script = format!(
        "( exec 3</dev/null ) && echo null-ok; \
         ( exec 3</dev/zero ) && echo zero-open-ok; \
         /bin/busybox mknod {d}/null2 c 1 3 && echo mknod-null-ok; \
         /bin/busybox mknod {d}/zero2 c 1 5 && echo mknod-zero-ok; \
         ( exec 3<{d}/null2 ) && echo null2-ok; true",
        d = dir.display()
    );
    let out = run_in_to_end(cg, &script);
    let so = String::from_utf8_lossy(&out.stdout);
    let se = String::from_utf8_lossy(&out.stderr);
    assert!(
        so.contains("null-ok"),
        "allowed /dev/null refused: {so} {se}"
    );
    assert!(
        so.contains("mknod-null-ok"),
        "allowed mknod refused: {so} {se}"
    );
    assert!(so.contains("null2-ok"), "{so} {se}");
    assert!(!so.contains("zero-open-ok"), "/dev/zero opened: {so}");
    assert!(!so.contains("mknod-zero-ok"), "mknod c 1 5 allowed: {so}");
    assert!(
        se.contains("Operation not permitted")
            || se.contains("permission denied")
            || se.contains("Permission denied"),
        "{se}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "berth-cg-dev-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn devices_not_allowed_cannot_be_opened() {
    let t = TestCg::new("dev");
    let cg = &t.cg;
    cg.apply(&res(DEVICE_RULES)).unwrap();
    if !is_v2(cg) {
        let list = read(&cg.v1_dirs()["devices"].join("devices.list"));
        assert!(list.contains("c 1:3 rwm"), "{list}");
        assert!(!list.contains("a *:*"), "{list}");
    }
    check_device_denial(cg);
    // An update replaces the rules (v2: the old program is detached).
    cg.update(&res(
        r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":5,"access":"r"}]}"#,
    ))
    .unwrap();
    let out = run_in_to_end(
        cg,
        "( exec 3</dev/zero ) && echo zero-ok; ( exec 3</dev/null ) && echo null-ok; true",
    );
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(so.contains("zero-ok"), "{so}");
    assert!(!so.contains("null-ok"), "{so}");
}

/// On a hybrid host, prove the eBPF device program in the cgroup2 mount (which has no
/// controllers but does run cgroup BPF programs).
#[test]
fn device_program_works_in_hybrid_unified_mount() {
    if berth_cgroups::detect().unwrap() != Mode::Hybrid {
        eprintln!("SKIP: not a hybrid host (the v2 run covers the program)");
        return;
    }
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mnt = mi
        .lines()
        .find(|l| l.contains(" - cgroup2 "))
        .unwrap()
        .split(' ')
        .nth(4)
        .unwrap()
        .to_string();
    let dir = PathBuf::from(&mnt).join(unique("bpf").trim_start_matches('/'));
    // A v2-mode handle on that directory, built the way the runtime reloads state.
    let json = serde_json::json!({
        "mode": "v2", "path": "/x", "v1": {}, "unified": dir, "created": [dir]
    });
    let cg: Cgroup = serde_json::from_value(json).unwrap();
    std::fs::create_dir(&dir).unwrap();
    struct Rm(Cgroup);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = self.0.kill_all(libc::SIGKILL);
            std::thread::sleep(Duration::from_millis(50));
            let _ = self.0.destroy();
        }
    }
    let guard = Rm(cg);
    guard.0.apply(&res(DEVICE_RULES)).unwrap();
    check_device_denial(&guard.0);
}

#[test]
fn kill_all_empties_the_cgroup() {
    let t = TestCg::new("kill");
    let cg = &t.cg;
    let mut child = run_in(cg, "/bin/busybox sleep 30 & /bin/busybox sleep 30 & wait");
    let deadline = Instant::now() + Duration::from_secs(5);
    while cg.pids().unwrap().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(cg.pids().unwrap().len(), 3);
    cg.kill_all(libc::SIGKILL).unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cg.pids().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(cg.pids().unwrap().is_empty());
}

/// The container's monitor can remove the cgroup while a `kill` of all its processes is under
/// way (the signal ended them): that kill succeeded, it is not an error.
#[test]
fn kill_all_of_a_cgroup_removed_meanwhile_succeeds() {
    let t = TestCg::new("killgone");
    t.cg.destroy().unwrap();
    for sig in [libc::SIGKILL, libc::SIGTERM] {
        t.cg.kill_all(sig).unwrap();
    }
}

#[test]
fn v2_dir_fd_matches_mode() {
    let t = TestCg::new("fd");
    let fd = t.cg.v2_dir_fd().unwrap();
    assert_eq!(fd.is_some(), is_v2(&t.cg));
}

#[test]
fn bad_input_is_a_clear_error_naming_the_field() {
    let t = TestCg::new("bad");
    let cg = &t.cg;
    cg.apply(&res(r#"{"memory":{"limit":67108864},"pids":{"limit":10}}"#))
        .unwrap();
    let cases = [
        (r#"{"memory":{"limit":-5}}"#, "linux.resources.memory.limit"),
        (
            r#"{"memory":{"limit":1048576,"swap":4096}}"#,
            "linux.resources.memory.swap",
        ),
        (
            r#"{"memory":{"swappiness":200}}"#,
            "linux.resources.memory.swappiness",
        ),
        (r#"{"cpu":{"shares":1}}"#, "linux.resources.cpu.shares"),
        (r#"{"cpu":{"quota":-7}}"#, "linux.resources.cpu.quota"),
        (r#"{"cpu":{"period":10}}"#, "linux.resources.cpu.period"),
        (r#"{"cpu":{"cpus":"0;rm"}}"#, "linux.resources.cpu.cpus"),
        (r#"{"pids":{"limit":-3}}"#, "linux.resources.pids.limit"),
        (
            r#"{"blockIO":{"weight":5}}"#,
            "linux.resources.blockIO.weight",
        ),
        (
            r#"{"hugepageLimits":[{"pageSize":"2XB","limit":1}]}"#,
            "linux.resources.hugepageLimits.pageSize",
        ),
        (
            r#"{"unified":{"../memory.max":"1"}}"#,
            "linux.resources.unified",
        ),
        (
            r#"{"unified":{"a/memory.max":"1"}}"#,
            "linux.resources.unified",
        ),
        (
            r#"{"devices":[{"allow":true,"type":"c","major":1,"minor":3,"access":"rwx"}]}"#,
            "linux.resources.devices[0].access",
        ),
        (
            r#"{"devices":[{"allow":true,"type":"c","major":-9,"minor":3,"access":"r"}]}"#,
            "linux.resources.devices[0].major",
        ),
        // Valid but wrong order of magnitude in the same request: nothing written.
        (
            r#"{"pids":{"limit":99},"memory":{"limit":-2}}"#,
            "linux.resources.memory.limit",
        ),
    ];
    for (json, field) in cases {
        let e = cg.apply(&res(json)).unwrap_err().to_string();
        assert!(
            e.contains(field),
            "{json}: error {e:?} does not name {field}"
        );
    }
    // Nothing was half-written by the failed requests.
    assert_eq!(read(&ctl(cg, ("pids", "pids.max"), "pids.max")), "10");
    assert_eq!(
        read(&ctl(cg, ("memory", "memory.limit_in_bytes"), "memory.max")),
        "67108864"
    );
    if !is_v2(cg) {
        let e = cg
            .apply(&res(r#"{"unified":{"memory.high":"1"}}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux.resources.unified"), "{e}");
    } else {
        let e = cg
            .apply(&res(r#"{"unified":{"memory.nonexistent":"1"}}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory.nonexistent"), "{e}");
        cg.apply(&res(r#"{"unified":{"memory.high":"50331648"}}"#))
            .unwrap();
        assert_eq!(read(&ctl(cg, ("", ""), "memory.high")), "50331648");
    }
}

#[test]
fn other_fields_land_or_warn() {
    let t = TestCg::new("more");
    let cg = &t.cg;
    let cpus = read(Path::new(if is_v2(cg) {
        "/sys/fs/cgroup/cpuset.cpus.effective"
    } else {
        "/sys/fs/cgroup/cpuset/cpuset.cpus"
    }));
    let first_cpu = cpus.split([',', '-']).next().unwrap().to_string();
    let json = format!(
        r#"{{"memory":{{"limit":67108864,"swappiness":10,"disableOOMKiller":false,"kernelTCP":1}},
            "cpu":{{"cpus":"{first_cpu}","mems":"0","idle":0}},
            "network":{{"classID":1048577,"priorities":[{{"name":"lo","priority":5}}]}}}}"#
    );
    let warnings = cg.apply(&res(&json)).unwrap();
    assert!(
        warnings.iter().any(|w| w.contains("kernelTCP")),
        "{warnings:?}"
    );
    let cpuset_dir = if is_v2(cg) {
        cg.unified_dir().unwrap().to_path_buf()
    } else {
        cg.v1_dirs()["cpuset"].clone()
    };
    assert_eq!(read(&cpuset_dir.join("cpuset.cpus")), first_cpu);
    assert_eq!(read(&cpuset_dir.join("cpuset.mems")), "0");
    if is_v2(cg) {
        assert!(
            warnings.iter().any(|w| w.contains("swappiness")),
            "{warnings:?}"
        );
        assert!(
            warnings.iter().any(|w| w.contains("network")),
            "{warnings:?}"
        );
        assert_eq!(read(&cg.unified_dir().unwrap().join("cpu.idle")), "0");
        // v1-only realtime scheduling is refused, naming the field.
        let e = cg
            .apply(&res(
                r#"{"cpu":{"realtimeRuntime":1000,"realtimePeriod":100000}}"#,
            ))
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux.resources.cpu.realtime"), "{e}");
        // v2 swap is memory.swap.max = swap - limit.
        if cg.unified_dir().unwrap().join("memory.swap.max").exists() {
            cg.update(&res(r#"{"memory":{"limit":67108864,"swap":100663296}}"#))
                .unwrap();
            assert_eq!(
                read(&cg.unified_dir().unwrap().join("memory.swap.max")),
                "33554432"
            );
        }
    } else {
        let mem = &cg.v1_dirs()["memory"];
        assert_eq!(read(&mem.join("memory.swappiness")), "10");
        assert!(read(&mem.join("memory.oom_control")).contains("oom_kill_disable 0"));
        cg.update(&res(r#"{"memory":{"disableOOMKiller":true}}"#))
            .unwrap();
        assert!(read(&mem.join("memory.oom_control")).contains("oom_kill_disable 1"));
        match cg.v1_dirs().get("net_cls") {
            Some(d) => assert_eq!(read(&d.join("net_cls.classid")), "1048577"),
            None => assert!(
                warnings.iter().any(|w| w.contains("classID")),
                "{warnings:?}"
            ),
        }
        // v1 memory+swap: memsw follows limit in the right order.
        if mem.join("memory.memsw.limit_in_bytes").exists() {
            cg.update(&res(r#"{"memory":{"limit":33554432,"swap":67108864}}"#))
                .unwrap();
            assert_eq!(read(&mem.join("memory.memsw.limit_in_bytes")), "67108864");
            assert_eq!(read(&mem.join("memory.limit_in_bytes")), "33554432");
        }
    }
    // Something still runs under these settings.
    let out = run_in_to_end(cg, "exec /bin/busybox true");
    assert!(out.status.success());
}

#[test]
fn hugepage_limits_land_or_fail_clearly() {
    let t = TestCg::new("huge");
    let cg = &t.cg;
    let dir = if is_v2(cg) {
        Some(cg.unified_dir().unwrap().to_path_buf())
    } else {
        cg.v1_dirs().get("hugetlb").cloned()
    };
    let suffix = if is_v2(cg) { ".max" } else { ".limit_in_bytes" };
    let size = dir.as_ref().and_then(|d| {
        std::fs::read_dir(d).unwrap().flatten().find_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let s = n
                .strip_prefix("hugetlb.")?
                .strip_suffix(suffix)?
                .to_string();
            (!s.contains('.')).then_some(s)
        })
    });
    let Some(size) = size else {
        let e = cg
            .apply(&res(
                r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#,
            ))
            .unwrap_err()
            .to_string();
        assert!(e.contains("hugetlb") || e.contains("hugepageLimits"), "{e}");
        eprintln!("SKIP: no hugetlb controller here (checked the error instead)");
        return;
    };
    // The kernel rounds limits down to whole pages: ask for two pages.
    let (num, unit) = size.split_at(size.len() - 2);
    let shift = match unit {
        "KB" => 10,
        "MB" => 20,
        "GB" => 30,
        u => panic!("unit {u}"),
    };
    let limit = 2 * (num.parse::<u64>().unwrap() << shift);
    cg.apply(&res(&format!(
        r#"{{"hugepageLimits":[{{"pageSize":"{size}","limit":{limit}}}]}}"#
    )))
    .unwrap();
    let f = dir.unwrap().join(format!("hugetlb.{size}{suffix}"));
    assert_eq!(read(&f), limit.to_string());
    let e = cg
        .apply(&res(r#"{"hugepageLimits":[{"pageSize":"3MB","limit":1}]}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("3MB"), "{e}");
}

/// The first whole block device of this machine as "major:minor".
fn some_block_device() -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .iter()
        .find_map(|n| std::fs::read_to_string(format!("/sys/block/{n}/dev")).ok())
        .map(|s| s.trim().to_string())
}

#[test]
fn io_throttle_lands_in_the_files() {
    let Some(dev) = some_block_device() else {
        eprintln!("SKIP: no block device");
        return;
    };
    let (major, minor) = dev.split_once(':').unwrap();
    let t = TestCg::new("io");
    let cg = &t.cg;
    cg.apply(&res(&format!(
        r#"{{"blockIO":{{
            "throttleReadBpsDevice":[{{"major":{major},"minor":{minor},"rate":1048576}}],
            "throttleWriteIOPSDevice":[{{"major":{major},"minor":{minor},"rate":100}}]}}}}"#
    )))
    .unwrap();
    if is_v2(cg) {
        let io = read(&cg.unified_dir().unwrap().join("io.max"));
        assert!(io.contains(&format!("{dev} rbps=1048576")), "{io}");
        assert!(io.contains("wiops=100"), "{io}");
    } else {
        let d = &cg.v1_dirs()["blkio"];
        assert_eq!(
            read(&d.join("blkio.throttle.read_bps_device")),
            format!("{dev} 1048576")
        );
        assert_eq!(
            read(&d.join("blkio.throttle.write_iops_device")),
            format!("{dev} 100")
        );
    }
    // A nonexistent device is an error naming the field.
    let e = cg
        .apply(&res(
            r#"{"blockIO":{"throttleReadBpsDevice":[{"major":4095,"minor":4095,"rate":1}]}}"#,
        ))
        .unwrap_err()
        .to_string();
    assert!(e.contains("throttleReadBpsDevice"), "{e}");
}

/// Docker's default device rules (ARCHITECTURE.md §6): everything denied except mknod of any
/// char/block device and the usual nodes.
#[test]
fn docker_default_device_rules() {
    let t = TestCg::new("dockerdev");
    let cg = &t.cg;
    cg.apply(&res(r#"{"devices":[
        {"allow":false,"access":"rwm"},
        {"allow":true,"type":"c","access":"m"},
        {"allow":true,"type":"b","access":"m"},
        {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
        {"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"},
        {"allow":true,"type":"c","major":1,"minor":7,"access":"rwm"},
        {"allow":true,"type":"c","major":1,"minor":8,"access":"rwm"},
        {"allow":true,"type":"c","major":1,"minor":9,"access":"rwm"},
        {"allow":true,"type":"c","major":5,"minor":0,"access":"rwm"},
        {"allow":true,"type":"c","major":5,"minor":2,"access":"rwm"},
        {"allow":true,"type":"c","major":136,"access":"rwm"},
        {"allow":false,"type":"c","major":10,"minor":229,"access":"rwm"}
    ]}"#))
        .unwrap();
    let dir = tempdir();
    let out = run_in_to_end(
        cg,
        &format!(
            "( exec 3</dev/zero ) && echo zero-ok; \
             ( exec 3</dev/urandom ) && echo urandom-ok; \
             /bin/busybox head -c 4 /dev/urandom | /bin/busybox wc -c; \
             /bin/busybox mknod {d}/kmsg c 1 11 && echo mknod-kmsg-ok; \
             ( exec 3<{d}/kmsg ) && echo kmsg-open-ok; \
             /bin/busybox mknod {d}/blk b 7 0 && echo mknod-blk-ok; \
             ( exec 3<{d}/blk ) && echo blk-open-ok; true",
            d = dir.display()
        ),
    );
    let so = String::from_utf8_lossy(&out.stdout);
    let se = String::from_utf8_lossy(&out.stderr);
    for want in ["zero-ok", "urandom-ok", "mknod-kmsg-ok", "mknod-blk-ok"] {
        assert!(so.contains(want), "{want} missing: {so} / {se}");
    }
    assert!(so.lines().any(|l| l.trim() == "4"), "{so}");
    assert!(
        !so.contains("kmsg-open-ok"),
        "/dev/kmsg (not allowed) opened: {so}"
    );
    assert!(!so.contains("blk-open-ok"), "block device opened: {so}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kill_all_delivers_other_signals_too() {
    let t = TestCg::new("term");
    let cg = &t.cg;
    let child = run_in(
        cg,
        "trap 'echo got-term; exit 7' TERM; while true; do /bin/busybox usleep 10000; done",
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while cg.pids().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    cg.kill_all(libc::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("got-term"));
}

/// create + apply(memory, cpu, pids, devices) + destroy must stay cheap: it is on the path of
/// every `run`.
#[test]
fn lifecycle_is_cheap() {
    let rounds = 20;
    let start = Instant::now();
    for _ in 0..rounds {
        let mut cg = Cgroup::new(Some(&unique("speed")), "x", false).unwrap();
        cg.create().unwrap();
        cg.apply(&res(&format!(
            r#"{{"memory":{{"limit":67108864}},"cpu":{{"shares":512,"quota":50000,"period":100000}},
                "pids":{{"limit":100}},"devices":{}}}"#,
            &DEVICE_RULES[DEVICE_RULES.find('[').unwrap()..DEVICE_RULES.rfind(']').unwrap() + 1]
        )))
        .unwrap();
        cg.destroy().unwrap();
    }
    let per = start.elapsed() / rounds;
    eprintln!("create+apply+destroy: {per:?} per container");
    assert!(per < Duration::from_millis(250), "{per:?} per container");
}
