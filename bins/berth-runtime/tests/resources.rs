//! End-to-end tests of linux.resources, devices, seccomp, pause/resume, update and events through
//! the berth-runtime binary. They need root and pass on cgroup v1/hybrid hosts and on a pure v2
//! kernel (tests/qemu/runtime-v2.sh runs them there).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

const MIB: i64 = 1 << 20;

/// The container's cgroup as the runtime persisted it (`<root>/<id>/state.json`, "cgroup").
fn cgroup_state(b: &Bundle) -> Value {
    let p = b.root.join(&b.id).join("state.json");
    let st: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    assert!(
        st["cgroup"].is_object(),
        "no cgroup in {}: {st}",
        p.display()
    );
    st["cgroup"].clone()
}

fn is_v2(cg: &Value) -> bool {
    cg["mode"] == "v2"
}

/// Host path of a cgroup file: `v1file` in the v1 controller's directory, or `v2file` in the
/// unified directory.
fn cg_file(b: &Bundle, ctrl: &str, v1file: &str, v2file: &str) -> PathBuf {
    let cg = cgroup_state(b);
    if is_v2(&cg) {
        PathBuf::from(cg["unified"].as_str().unwrap()).join(v2file)
    } else {
        let d = cg["v1"][ctrl]
            .as_str()
            .unwrap_or_else(|| panic!("no v1 {ctrl} directory: {cg}"));
        PathBuf::from(d).join(v1file)
    }
}

fn read_trim(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Every directory of the container's cgroup (one per hierarchy) plus those create made.
fn cgroup_dirs_of(cg: &Value) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = Vec::new();
    if let Some(u) = cg["unified"].as_str() {
        v.push(u.into());
    }
    if let Some(m) = cg["v1"].as_object() {
        for d in m.values() {
            let d = PathBuf::from(d.as_str().unwrap());
            if !v.contains(&d) {
                v.push(d);
            }
        }
    }
    for d in cg["created"].as_array().into_iter().flatten() {
        let d = PathBuf::from(d.as_str().unwrap());
        if !v.contains(&d) {
            v.push(d);
        }
    }
    v
}

fn start(b: &Bundle) {
    let o = b.create();
    assert!(o.status.success(), "create: {}", stderr(&o));
    let o = b.rt(&["start", &b.id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
}

fn delete(b: &Bundle) {
    let o = b.rt(&["delete", "-f", &b.id]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
    b.assert_clean();
}

/// A writable /tmp (tmpfs) for the container.
fn with_tmp(c: &mut Value) {
    c["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]
    }));
}

fn add_applets(b: &Bundle, names: &[&str]) {
    for a in names {
        let p = b.path().join("rootfs/bin").join(a);
        if !p.exists() {
            std::os::unix::fs::symlink("busybox", p).unwrap();
        }
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// `berth-runtime ARGS` with `input` on stdin (stdout/stderr through files).
fn rt_stdin(b: &Bundle, args: &[&str], input: &[u8]) -> Output {
    let f = tempfile::tempfile().unwrap();
    use std::io::{Seek, Write};
    let mut w = f.try_clone().unwrap();
    w.write_all(input).unwrap();
    w.seek(std::io::SeekFrom::Start(0)).unwrap();
    let mut c = b.cmd();
    c.args(args);
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let st = c
        .stdin(Stdio::from(f))
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .status()
        .unwrap();
    let read = |mut f: std::fs::File| {
        use std::io::Read;
        let mut v = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    Output {
        status: st,
        stdout: read(out),
        stderr: read(err),
    }
}

fn oom_kills(b: &Bundle) -> u64 {
    // v1: memory.oom_control "oom_kill N" (kernel >= 4.13); v2: memory.events "oom_kill N".
    let p = cg_file(b, "memory", "memory.oom_control", "memory.events");
    read_trim(&p)
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .unwrap_or_else(|| panic!("no oom_kill line in {}", p.display()))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn memory_limit_oom_kills_64m_allocation_but_not_8m() {
    let b = bundle(&["sleep", "1000"]);
    b.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": 32 * MIB}));
    start(&b);
    assert_eq!(
        read_trim(&cg_file(
            &b,
            "memory",
            "memory.limit_in_bytes",
            "memory.max"
        )),
        (32 * MIB).to_string()
    );
    assert_eq!(oom_kills(&b), 0);
    // dd reads 8 MiB from /dev/zero into its buffer: every page is touched.
    let o = b.rt(&[
        "exec",
        &b.id,
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=8M",
        "count=1",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "8 MiB under a 32 MiB limit: {}",
        stderr(&o)
    );
    assert_eq!(oom_kills(&b), 0);
    let o = b.rt(&[
        "exec",
        &b.id,
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    assert_eq!(
        o.status.code(),
        Some(137),
        "64 MiB under a 32 MiB limit must be SIGKILLed: {}",
        stderr(&o)
    );
    assert!(oom_kills(&b) >= 1, "the kill must be the OOM killer's");
    // The container itself lives on.
    assert_eq!(b.status(), "running");
    delete(&b);
}

#[test]
fn memory_oom_of_init_gives_exit_137_with_run() {
    let (code, out, err) = sh(
        "dd if=/dev/zero of=/dev/null bs=64M count=1; echo rc=$?",
        |c| {
            c["linux"]["resources"]["memory"] = json!({"limit": 32 * MIB});
        },
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "rc=137\n", "{err}");
    // And as the container's own process: run exits 128+9.
    let b = bundle(&["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]);
    b.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": 32 * MIB}));
    let o = b.run();
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    b.assert_clean();
}

#[test]
fn pids_limit_caps_forks() {
    // init (1) + the exec'd shell (1) + 8 sleeps fill pids.limit 10; the 9th fork fails and
    // busybox sh gives up with "can't fork".
    let b = bundle(&["sleep", "1000"]);
    b.edit(|c| c["linux"]["resources"]["pids"] = json!({"limit": 10}));
    start(&b);
    assert_eq!(
        read_trim(&cg_file(&b, "pids", "pids.max", "pids.max")),
        "10"
    );
    let events = cg_file(&b, "pids", "pids.events", "pids.events");
    let failed = || -> u64 {
        read_trim(&events)
            .lines()
            .find_map(|l| l.strip_prefix("max "))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(failed(), 0);
    let forks = "i=0; while [ $i -lt 30 ]; do sleep 1000 & i=$((i+1)); echo $i; done";
    let o = b.rt(&["exec", &b.id, "sh", "-c", forks]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "30 forks must not all succeed under pids.limit 10"
    );
    assert!(stderr(&o).contains("can't fork"), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).lines().last(),
        Some("8"),
        "exactly 8 sleeps fit: {}",
        stdout(&o)
    );
    assert!(failed() >= 1, "pids.events must count the refused fork");
    let ps = b.rt(&["ps", "--format", "json", &b.id]);
    let pids: Vec<i32> = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(pids.len(), 9, "init + 8 sleeps: {pids:?}");
    // Raised with update, the same loop gets all 30.
    let o = b.rt(&["update", "--pids-limit", "50", &b.id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        read_trim(&cg_file(&b, "pids", "pids.max", "pids.max")),
        "50"
    );
    let o = b.rt(&["exec", &b.id, "sh", "-c", forks]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().last(), Some("30"));
    delete(&b);
}

#[test]
fn cpu_quota_period_and_shares_land_in_the_cgroup() {
    let b = bundle(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["resources"]["cpu"] = json!({"shares": 512, "quota": 50000, "period": 100000})
    });
    start(&b);
    let cg = cgroup_state(&b);
    // What the container sees in its own (cgroup-namespaced, read-only) /sys/fs/cgroup.
    let inside = |v1: &str, v2: &str| -> String {
        let f = if is_v2(&cg) {
            format!("/sys/fs/cgroup/{v2}")
        } else {
            format!("/sys/fs/cgroup/cpu/{v1}")
        };
        let o = b.rt(&["exec", &b.id, "cat", &f]);
        assert!(o.status.success(), "cat {f}: {}", stderr(&o));
        stdout(&o).trim().to_string()
    };
    if is_v2(&cg) {
        assert_eq!(
            read_trim(&cg_file(&b, "cpu", "", "cpu.max")),
            "50000 100000"
        );
        // runc's conversion: 1 + ((shares - 2) * 9999) / 262142
        assert_eq!(read_trim(&cg_file(&b, "cpu", "", "cpu.weight")), "20");
        assert_eq!(inside("", "cpu.max"), "50000 100000");
        assert_eq!(inside("", "cpu.weight"), "20");
    } else {
        assert_eq!(
            read_trim(&cg_file(&b, "cpu", "cpu.cfs_quota_us", "")),
            "50000"
        );
        assert_eq!(
            read_trim(&cg_file(&b, "cpu", "cpu.cfs_period_us", "")),
            "100000"
        );
        assert_eq!(read_trim(&cg_file(&b, "cpu", "cpu.shares", "")), "512");
        assert_eq!(inside("cpu.cfs_quota_us", ""), "50000");
        assert_eq!(inside("cpu.shares", ""), "512");
    }
    // Read-only inside.
    let f = if is_v2(&cg) {
        "/sys/fs/cgroup/cpu.max"
    } else {
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"
    };
    let o = b.rt(&["exec", &b.id, "sh", "-c", &format!("echo 1000 > {f}")]);
    assert!(
        !o.status.success(),
        "/sys/fs/cgroup must be read-only inside"
    );
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    // update's cpu flags.
    let o = b.rt(&[
        "update",
        "--cpu-quota",
        "20000",
        "--cpu-period",
        "50000",
        "--cpu-shares",
        "1024",
        &b.id,
    ]);
    assert!(o.status.success(), "update cpu: {}", stderr(&o));
    if is_v2(&cg) {
        assert_eq!(read_trim(&cg_file(&b, "cpu", "", "cpu.max")), "20000 50000");
        assert_eq!(read_trim(&cg_file(&b, "cpu", "", "cpu.weight")), "39");
    } else {
        assert_eq!(
            read_trim(&cg_file(&b, "cpu", "cpu.cfs_quota_us", "")),
            "20000"
        );
        assert_eq!(
            read_trim(&cg_file(&b, "cpu", "cpu.cfs_period_us", "")),
            "50000"
        );
        assert_eq!(read_trim(&cg_file(&b, "cpu", "cpu.shares", "")), "1024");
    }
    delete(&b);
}

/// Counter written by a busy loop into the container's /tmp, read from the host.
fn counter(b: &Bundle) -> u64 {
    let p = b.path().join("rootfs/tmp/c");
    for _ in 0..100 {
        if let Ok(s) = std::fs::read_to_string(&p) {
            if let Ok(n) = s.trim().parse() {
                return n;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no counter in {}", p.display());
}

#[test]
fn pause_freezes_and_resume_continues() {
    let b = bundle(&[
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/c; done",
    ]);
    add_applets(&b, &["mv"]);
    b.edit(|c| c["root"]["readonly"] = json!(false));
    start(&b);
    let c0 = counter(&b);
    wait_for("the counter to advance", Duration::from_secs(10), || {
        counter(&b) > c0
    });
    let o = b.rt(&["pause", &b.id]);
    assert!(o.status.success(), "pause: {}", stderr(&o));
    assert_eq!(b.status(), "paused");
    let cg = cgroup_state(&b);
    if is_v2(&cg) {
        assert_eq!(read_trim(&cg_file(&b, "", "", "cgroup.freeze")), "1");
    } else {
        assert_eq!(
            read_trim(&cg_file(&b, "freezer", "freezer.state", "")),
            "FROZEN"
        );
    }
    let p1 = counter(&b);
    std::thread::sleep(Duration::from_millis(400));
    let p2 = counter(&b);
    assert_eq!(p1, p2, "the counter advanced while paused");
    // A paused container cannot be paused again or started; exec/kill are not needed here.
    assert!(!b.rt(&["pause", &b.id]).status.success());
    let o = b.rt(&["resume", &b.id]);
    assert!(o.status.success(), "resume: {}", stderr(&o));
    assert_eq!(b.status(), "running");
    wait_for(
        "the counter to advance after resume",
        Duration::from_secs(10),
        || counter(&b) > p2,
    );
    assert!(
        !b.rt(&["resume", &b.id]).status.success(),
        "resume of a running container must fail"
    );
    // delete --force of a paused container works too.
    assert!(b.rt(&["pause", &b.id]).status.success());
    delete(&b);
}

#[test]
fn events_stats_reports_usage_in_runc_shape() {
    let b = bundle(&["sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; dd if=/dev/zero of=/dev/shm/f bs=1M count=4 2>/dev/null; exec sleep 1000"]);
    b.edit(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 64 * MIB});
        c["linux"]["resources"]["pids"] = json!({"limit": 50});
    });
    start(&b);
    let pid = b.state()["pid"].as_i64().unwrap();
    wait_for("the busy loop to finish", Duration::from_secs(60), || {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .map(|c| c.starts_with("sleep\0"))
            .unwrap_or(false)
    });
    let o = b.rt(&["events", "--stats", &b.id]);
    assert!(o.status.success(), "events: {}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 1, "one JSON object per line: {text}");
    let v: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], json!(b.id));
    let d = &v["data"];
    let total = d["cpu"]["usage"]["total"].as_u64().unwrap_or(0);
    assert!(
        total > 1_000_000,
        "cpu usage total (ns) must be non-zero: {d}"
    );
    let mem = d["memory"]["usage"]["usage"].as_u64().unwrap_or(0);
    assert!(
        mem >= 4 * MIB as u64,
        "memory usage must count the 4 MiB in /dev/shm: {d}"
    );
    assert_eq!(
        d["memory"]["usage"]["limit"].as_u64(),
        Some(64 * MIB as u64),
        "{d}"
    );
    assert!(
        d["memory"]["usage"]["max"].as_u64().unwrap_or(0) >= mem || is_v2(&cgroup_state(&b)),
        "{d}"
    );
    assert!(d["memory"]["raw"].is_object(), "memory.raw: {d}");
    assert_eq!(d["pids"]["current"].as_u64(), Some(1), "{d}");
    assert_eq!(d["pids"]["limit"].as_u64(), Some(50), "{d}");
    assert!(d["blkio"].is_object(), "{d}");
    // --interval: a stream of snapshots until stopped.
    let mut c = b.cmd();
    c.args(["events", "--interval", "100ms", &b.id])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut got = String::new();
    use std::io::Read;
    let mut buf = [0u8; 65536];
    let t = Instant::now();
    while got.matches('\n').count() < 3 && t.elapsed() < Duration::from_secs(10) {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let _ = child.kill();
    let _ = child.wait();
    let lines: Vec<Value> = got
        .lines()
        .take(3)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{got}");
    assert!(lines.iter().all(|l| l["type"] == "stats"));
    delete(&b);
}

#[test]
fn update_changes_a_running_containers_memory_limit() {
    let b = bundle(&["sleep", "1000"]);
    b.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": 128 * MIB}));
    start(&b);
    let limit = cg_file(&b, "memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(read_trim(&limit), (128 * MIB).to_string());
    let dd64 = || {
        b.rt(&[
            "exec",
            &b.id,
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=64M",
            "count=1",
        ])
        .status
        .code()
    };
    assert_eq!(dd64(), Some(0), "64 MiB fits under 128 MiB");
    // --memory
    let o = b.rt(&["update", "--memory", "32M", &b.id]);
    assert!(o.status.success(), "update --memory: {}", stderr(&o));
    assert_eq!(read_trim(&limit), (32 * MIB).to_string());
    assert_eq!(
        dd64(),
        Some(137),
        "64 MiB must be OOM-killed after update to 32 MiB"
    );
    // --resources - (stdin), runc's LinuxResources JSON
    let o = rt_stdin(
        &b,
        &["update", "--resources", "-", &b.id],
        br#"{"memory": {"limit": 100663296}, "pids": {"limit": 42}}"#,
    );
    assert!(o.status.success(), "update --resources -: {}", stderr(&o));
    assert_eq!(read_trim(&limit), "100663296");
    assert_eq!(
        read_trim(&cg_file(&b, "pids", "pids.max", "pids.max")),
        "42"
    );
    assert_eq!(dd64(), Some(0), "64 MiB fits under 96 MiB");
    // --resources FILE
    let f = b.path().join("res.json");
    std::fs::write(&f, br#"{"memory": {"limit": 67108864}}"#).unwrap();
    let o = b.rt(&["update", "--resources", f.to_str().unwrap(), &b.id]);
    assert!(
        o.status.success(),
        "update --resources FILE: {}",
        stderr(&o)
    );
    assert_eq!(read_trim(&limit), (64 * MIB).to_string());
    // The container sees its new limit.
    let f = if is_v2(&cgroup_state(&b)) {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    let o = b.rt(&["exec", &b.id, "cat", f]);
    assert_eq!(stdout(&o).trim(), (64 * MIB).to_string(), "{}", stderr(&o));
    // Bad update input is refused and changes nothing.
    let o = rt_stdin(
        &b,
        &["update", "--resources", "-", &b.id],
        br#"{"memory": {"limit": "lots"}}"#,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("memory.limit"), "{}", stderr(&o));
    assert_eq!(read_trim(&limit), (64 * MIB).to_string());
    delete(&b);
}

#[test]
fn device_cgroup_denies_what_is_not_allowed() {
    // CAP_MKNOD so that mknod itself is allowed: only the device cgroup stands in the way.
    // 10:200 is /dev/net/tun, which anyone may open on the host.
    let script = "mknod /dev/x c 10 200 && echo MKNOD; \
                  (echo > /dev/x) 2>&1; \
                  mknod /dev/n c 1 3 && echo data > /dev/n && echo NULLOK; \
                  head -c 5 /dev/zero | wc -c; head -c 5 /dev/urandom | wc -c; echo > /dev/full || echo FULL";
    let caps = json!(["CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_KILL"]);
    let (code, out, err) = sh(script, |c| {
        c["process"]["capabilities"] =
            json!({"bounding": caps, "effective": caps, "permitted": caps});
    });
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "MKNOD", "{out}{err}");
    assert!(
        l[1].contains("Operation not permitted"),
        "open of a denied device must fail with EPERM: {out}"
    );
    assert_eq!(&l[2..], &["NULLOK", "5", "5", "FULL"], "{out}{err}");
    // Allowed by a rule in config.json, the same open gets past the cgroup (it may still fail
    // for lack of a tun driver, but not with EPERM).
    let (code, out, err) =
        sh(
            "mknod /dev/x c 10 200 && (echo > /dev/x) 2>&1; echo end",
            |c| {
                c["process"]["capabilities"] =
                    json!({"bounding": caps, "effective": caps, "permitted": caps});
                c["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(json!({"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}));
            },
        );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.ends_with("end\n") && !out.contains("Operation not permitted"),
        "{out}"
    );
}

fn seccomp_cfg(c: &mut Value, seccomp: Value) {
    c["linux"]["seccomp"] = seccomp;
    with_tmp(c);
}

#[test]
fn seccomp_rules_deny_with_errno_and_allow_the_rest() {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["chmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}
        ]
    });
    let script = "mkdir /tmp/d 2>&1; chmod 600 /tmp 2>&1; touch /tmp/f && echo TOUCH; ls /tmp; \
                  sleep 100 & p=$!; kill -9 $p 2>&1; kill -15 $p && echo TERM; wait $p; echo rc=$?";
    let (code, out, err) = sh(script, |c| seccomp_cfg(c, profile.clone()));
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    assert!(
        l[0].contains("mkdir") && l[0].contains("Operation not permitted"),
        "mkdir -> EPERM: {out}"
    );
    assert!(
        l[1].contains("chmod") && l[1].contains("Permission denied"),
        "chmod -> EACCES: {out}"
    );
    assert_eq!(l[2], "TOUCH", "{out}");
    assert_eq!(l[3], "f", "{out}");
    assert!(
        l[4].contains("Operation not permitted"),
        "kill -9 -> EPERM (argument condition): {out}"
    );
    assert_eq!(&l[5..], &["TERM", "rc=143"], "{out}");
    // exec gets the same filter.
    let b = bundle(&["sleep", "1000"]);
    b.edit(|c| seccomp_cfg(c, profile.clone()));
    start(&b);
    let o = b.rt(&["exec", &b.id, "mkdir", "/tmp/e"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    let o = b.rt(&["exec", &b.id, "touch", "/tmp/e"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    delete(&b);
    // defaultAction ERRNO with defaultErrnoRet, allow-list.
    let (code, out, err) = sh("echo hi; mkdir /tmp/x 2>&1; echo after", |c| {
        let names: Vec<&str> = SHELL_SYSCALLS.to_vec();
        seccomp_cfg(
            c,
            json!({
                "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
            }),
        );
    });
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("hi\n") && out.ends_with("after\n"), "{out}");
    assert!(
        out.contains("Function not implemented"),
        "default errno 38 (ENOSYS): {out}"
    );
}

/// Enough for busybox sh, echo and a failing mkdir (everything else gets the default action).
const SHELL_SYSCALLS: &[&str] = &[
    "execve",
    "brk",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "mprotect",
    "mmap",
    "munmap",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getpid",
    "getppid",
    "getpgrp",
    "getcwd",
    "uname",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "ioctl",
    "fcntl",
    "dup2",
    "dup3",
    "close",
    "read",
    "write",
    "writev",
    "stat",
    "newfstatat",
    "fstat",
    "statx",
    "lstat",
    "access",
    "faccessat",
    "faccessat2",
    "open",
    "openat",
    "exit",
    "exit_group",
    "wait4",
    "vfork",
    "fork",
    "clone",
    "clone3",
    "getrandom",
    "readlink",
    "readlinkat",
    "sigaltstack",
    "futex",
];

/// A 200-byte static x86_64 ELF: keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
/// exits 0 on success, else with the errno.
fn keyctl_elf() -> Vec<u8> {
    // mov eax,250; xor edi,edi; mov rsi,-3; xor edx,edx; syscall; test rax,rax; jns ok;
    // neg eax; mov edi,eax; jmp out; ok: xor edi,edi; out: mov eax,60; syscall
    let code: &[u8] = &[
        0xb8, 0xfa, 0x00, 0x00, 0x00, 0x31, 0xff, 0x48, 0xc7, 0xc6, 0xfd, 0xff, 0xff, 0xff, 0x31,
        0xd2, 0x0f, 0x05, 0x48, 0x85, 0xc0, 0x79, 0x06, 0xf7, 0xd8, 0x89, 0xc7, 0xeb, 0x02, 0x31,
        0xff, 0xb8, 0x3c, 0x00, 0x00, 0x00, 0x0f, 0x05,
    ];
    let base: u64 = 0x400000;
    let hdr = 64 + 56;
    let total = (hdr + code.len()) as u64;
    let mut e = Vec::new();
    e.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&(base + hdr as u64).to_le_bytes()); // entry
    e.extend_from_slice(&64u64.to_le_bytes()); // phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes());
    e.extend_from_slice(&64u16.to_le_bytes());
    e.extend_from_slice(&56u16.to_le_bytes());
    e.extend_from_slice(&1u16.to_le_bytes());
    e.extend_from_slice(&[0; 6]);
    e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e.extend_from_slice(&5u32.to_le_bytes()); // R|X
    e.extend_from_slice(&0u64.to_le_bytes());
    e.extend_from_slice(&base.to_le_bytes());
    e.extend_from_slice(&base.to_le_bytes());
    e.extend_from_slice(&total.to_le_bytes());
    e.extend_from_slice(&total.to_le_bytes());
    e.extend_from_slice(&0x1000u64.to_le_bytes());
    assert_eq!(e.len(), hdr);
    e.extend_from_slice(code);
    e
}

const DOCKER_CAPS: &[&str] = &berth_seccomp::DOCKER_DEFAULT_CAPS;

#[test]
fn docker_default_profile_blocks_unshare_and_keyctl_but_shell_works() {
    let raw = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crates/seccomp/tests/data/docker-default-seccomp.json"
    ));
    let caps: Vec<String> = DOCKER_CAPS.iter().map(|s| s.to_string()).collect();
    let oci = berth_seccomp::docker_to_oci(raw, &caps, "amd64").unwrap();
    let profile = serde_json::to_value(&oci).unwrap();
    let script = "echo ok; ls /; unshare -U true 2>&1; echo unshare=$?; /keyctl; echo keyctl=$?";
    let run = |seccomp: Option<&Value>| -> String {
        let b = bundle(&["sh", "-c", script]);
        add_applets(&b, &["unshare"]);
        let k = b.path().join("rootfs/keyctl");
        std::fs::write(&k, keyctl_elf()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o755)).unwrap();
        b.edit(|c| {
            let caps = json!(DOCKER_CAPS);
            c["process"]["capabilities"] =
                json!({"bounding": caps, "effective": caps, "permitted": caps});
            if let Some(s) = seccomp {
                c["linux"]["seccomp"] = s.clone();
            }
        });
        let o = b.run();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        b.assert_clean();
        stdout(&o)
    };
    // Without seccomp, with the same capabilities, both calls work: the filter is what blocks them.
    let free = run(None);
    assert!(
        free.contains("unshare=0"),
        "unshare -U must work without seccomp: {free}"
    );
    assert!(
        free.contains("keyctl=0") || free.contains("keyctl=126"),
        "keyctl without seccomp: {free}"
    );
    let out = run(Some(&profile));
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "ok", "{out}");
    assert!(
        l.contains(&"bin") && l.contains(&"proc") && l.contains(&"keyctl"),
        "ls / works: {out}"
    );
    assert!(
        out.contains("Operation not permitted") && out.contains("unshare=1"),
        "unshare must be EPERM: {out}"
    );
    assert!(out.contains("keyctl=1\n"), "keyctl must be EPERM: {out}");
}

#[test]
fn delete_removes_cgroup_dirs_on_every_controller() {
    let b = bundle(&["sleep", "1000"]);
    let parent = format!("berth-test-{}", b.id);
    let cgpath = format!("/{parent}/inner");
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(cgpath);
        c["linux"]["resources"]["memory"] = json!({"limit": 64 * MIB});
        c["linux"]["resources"]["pids"] = json!({"limit": 100});
        c["linux"]["resources"]["cpu"] = json!({"shares": 256});
    });
    start(&b);
    let cg = cgroup_state(&b);
    let dirs = cgroup_dirs_of(&cg);
    let hierarchies = cgroup_dirs();
    if is_v2(&cg) {
        assert_eq!(
            cg["unified"].as_str().unwrap(),
            format!("/sys/fs/cgroup{cgpath}")
        );
    } else {
        // One directory in every v1 hierarchy that has controllers (named ones like
        // name=systemd may be included too).
        for ctrl in [
            "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
        ] {
            let d = cg["v1"][ctrl]
                .as_str()
                .unwrap_or_else(|| panic!("no {ctrl} dir: {cg}"));
            assert!(d.ends_with(&cgpath), "{d}");
        }
    }
    let pid = b.state()["pid"].as_i64().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for d in &dirs {
        assert!(d.is_dir(), "{} missing while running", d.display());
    }
    assert!(
        own.lines()
            .filter(|l| !l.starts_with("0::") || is_v2(&cg))
            .all(|l| l.ends_with(&cgpath) || l.contains("name=")),
        "init's cgroups: {own}"
    );
    delete(&b);
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    for h in hierarchies {
        assert!(
            !h.join(&parent).exists(),
            "parent {} left behind",
            h.join(&parent).display()
        );
    }
}

#[test]
fn true_runs_under_512k_memory_limit() {
    let b = bundle(&["true"]);
    b.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": 512 * 1024}));
    let o = b.run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    b.assert_clean();
}

#[test]
fn bad_resources_and_seccomp_are_named_and_leave_nothing() {
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "linux.resources.memory.limit",
            Box::new(|c: &mut Value| c["linux"]["resources"]["memory"] = json!({"limit": -5})),
        ),
        (
            "linux.resources.memory.swap",
            Box::new(|c: &mut Value| {
                c["linux"]["resources"]["memory"] = json!({"limit": 64 * MIB, "swap": -7})
            }),
        ),
        (
            "linux.resources.memory.reservation",
            Box::new(|c: &mut Value| {
                c["linux"]["resources"]["memory"] = json!({"reservation": -9})
            }),
        ),
        (
            "linux.resources.cpu.shares",
            Box::new(|c: &mut Value| c["linux"]["resources"]["cpu"] = json!({"shares": -2})),
        ),
        (
            "linux.resources.cpu.quota",
            Box::new(|c: &mut Value| {
                c["linux"]["resources"]["cpu"] = json!({"quota": -20, "period": 100000})
            }),
        ),
        (
            "linux.resources.pids.limit",
            Box::new(|c: &mut Value| c["linux"]["resources"]["pids"] = json!({"limit": -3})),
        ),
        (
            "linux.seccomp.defaultAction",
            Box::new(|c: &mut Value| {
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_BOGUS"})
            }),
        ),
        (
            "linux.seccomp.architectures",
            Box::new(|c: &mut Value| {
                c["linux"]["seccomp"] =
                    json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_BOGUS"]})
            }),
        ),
        (
            "syscalls[0].names[0]: unknown syscall \"no_such_syscall\"",
            Box::new(
                |c: &mut Value| c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}]}),
            ),
        ),
        (
            "linux.seccomp.syscalls[0].action",
            Box::new(
                |c: &mut Value| c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOPE"}]}),
            ),
        ),
    ];
    let before: Vec<PathBuf> = cgroup_dirs();
    for (field, f) in cases {
        let b = bundle(&["true"]);
        b.edit(|c| f(c));
        for args in [&["run"][..], &["create"][..]] {
            let mut c = b.cmd();
            c.args(args).arg("--bundle").arg(b.path()).arg(&b.id);
            let o = output_via_files(c);
            assert_eq!(
                o.status.code(),
                Some(1),
                "{field} ({args:?}) must be refused: {}",
                stderr(&o)
            );
            assert!(
                stderr(&o).contains(field),
                "error for {field} does not name it: {}",
                stderr(&o)
            );
            b.assert_clean();
            for h in &before {
                assert!(
                    !h.join(&b.id).exists(),
                    "{} left behind",
                    h.join(&b.id).display()
                );
            }
        }
    }
}

#[test]

fn resource_errors_are_reported_once() {
    for (what, f) in [
        (
            "linux.resources.memory.limit",
            json!({"resources": {"memory": {"limit": -5}}}),
        ),
        (
            "no_such_syscall",
            json!({"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}]}}),
        ),
    ] {
        let b = bundle(&["true"]);
        b.edit(|c| {
            for (k, v) in f.as_object().unwrap() {
                c["linux"][k] = v.clone();
            }
        });
        let o = b.run();
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(stderr(&o).matches(what).count(), 1, "{}", stderr(&o));
        b.assert_clean();
    }
}

#[test]
fn memory_swap_reservation_cpuset_and_unified_land_in_their_files() {
    let b = bundle(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["resources"]["memory"] =
            json!({"limit": 64 * MIB, "swap": 128 * MIB, "reservation": 32 * MIB, "swappiness": 10});
        c["linux"]["resources"]["cpu"] = json!({"cpus": "0", "mems": "0"});
    });
    let mut c = b.cmd();
    c.args(["create", "--bundle"]).arg(b.path()).arg(&b.id);
    let o = output_via_files(c);
    assert!(o.status.success(), "create: {}", stderr(&o));
    let cg = cgroup_state(&b);
    let f = |ctrl: &str, v1: &str, v2: &str| read_trim(&cg_file(&b, ctrl, v1, v2));
    assert_eq!(f("cpuset", "cpuset.cpus", "cpuset.cpus"), "0");
    assert_eq!(f("cpuset", "cpuset.mems", "cpuset.mems"), "0");
    if is_v2(&cg) {
        assert_eq!(f("memory", "", "memory.max"), (64 * MIB).to_string());
        // OCI swap is memory+swap; v2's memory.swap.max is the swap alone.
        assert_eq!(f("memory", "", "memory.swap.max"), (64 * MIB).to_string());
        assert_eq!(f("memory", "", "memory.low"), (32 * MIB).to_string());
        assert!(
            stderr(&o).contains("swappiness"),
            "swappiness is v1-only: a warning names it: {}",
            stderr(&o)
        );
    } else {
        assert_eq!(
            f("memory", "memory.limit_in_bytes", ""),
            (64 * MIB).to_string()
        );
        assert_eq!(
            f("memory", "memory.memsw.limit_in_bytes", ""),
            (128 * MIB).to_string()
        );
        assert_eq!(
            f("memory", "memory.soft_limit_in_bytes", ""),
            (32 * MIB).to_string()
        );
        assert_eq!(f("memory", "memory.swappiness", ""), "10");
    }
    delete(&b);

    // linux.resources.unified: v2 key/values; refused on v1 with the field named.
    let b = bundle(&["true"]);
    b.edit(|c| c["linux"]["resources"]["unified"] = json!({"memory.high": "50003968"}));
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let o = b.create();
    if v2 {
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            read_trim(&cg_file(&b, "memory", "", "memory.high")),
            "50003968"
        );
        delete(&b);
    } else {
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("linux.resources.unified"),
            "{}",
            stderr(&o)
        );
        b.assert_clean();
    }
}

#[test]
fn seccomp_kill_action_ends_the_process_with_sigsys() {
    let b = bundle(&["sh", "-c", "echo before; sync; echo $?"]);
    add_applets(&b, &["sync"]);
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["sync"], "action": "SCMP_ACT_KILL_PROCESS"}]
        });
        // no core file for the SIGSYS
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]);
    });
    let o = b.run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The shell survives: only sync(1), the caller of sync(2), dies by SIGSYS (128+31).
    assert_eq!(stdout(&o), "before\n159\n", "{}", stderr(&o));
    b.assert_clean();
    let b = bundle(&["sync"]);
    add_applets(&b, &["sync"]);
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["sync"], "action": "SCMP_ACT_KILL_PROCESS"}]
        });
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]);
    });
    let o = b.run();
    assert_eq!(o.status.code(), Some(128 + libc::SIGSYS), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    b.assert_clean();
}

#[test]
fn cgroup_namespace_roots_the_view_at_the_containers_cgroup() {
    let (code, out, err) = sh("cat /proc/self/cgroup", |c| {
        c["linux"]["cgroupsPath"] = json!("/berth-nested-test/deeper");
    });
    assert_eq!(code, 0, "{err}");
    assert!(!out.is_empty());
    for l in out.lines() {
        let path = l.splitn(3, ':').nth(2).unwrap();
        assert!(
            !path.contains("berth-nested-test"),
            "host cgroup path visible inside: {out}"
        );
    }
    // The container's own cgroup is the root of its view.
    assert!(out.lines().any(|l| l.ends_with(":/")), "{out}");
    for h in cgroup_dirs() {
        assert!(
            !h.join("berth-nested-test").exists(),
            "{} left behind",
            h.join("berth-nested-test").display()
        );
    }
}
