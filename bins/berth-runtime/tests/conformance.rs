//! berth-runtime against the OCI runtime spec's text (runtime.md, config.md): the hook failure
//! policies and the state hooks get, what `create` must refuse, and when `start` returns.
//! docs/runtime.md lists where this makes berth-runtime differ from runc. They need root.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

/// A hook (run by the host's /bin/sh) that writes the state it gets on stdin to `file`.
fn dump_hook(file: &Path) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", file.display())]})
}

fn read_state(file: &Path) -> Value {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("hook state {}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn wait_stopped(b: &Bundle) {
    for _ in 0..500 {
        if b.status() == "stopped" {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("container {} did not stop", b.id);
}

#[test]
fn poststart_and_poststop_hooks_all_run_and_each_failure_is_a_warning() {
    let b = bundle(&["true"]);
    let (post1, stop1) = (b.path().join("poststart1"), b.path().join("poststop1"));
    b.edit(|c| {
        c["hooks"] = json!({
            "poststart": [{"path": "/bin/false"}, dump_hook(&post1), {"path": "/bin/false"}],
            "poststop": [{"path": "/bin/false"}, dump_hook(&stop1)],
        })
    });
    let o = b.create();
    assert!(o.status.success(), "create: {}", stderr(&o));
    let o = b.rt(&["start", &b.id]);
    assert!(
        o.status.success(),
        "a poststart failure fails start: {}",
        stderr(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains("warning") && err.contains("poststart[0]") && err.contains("poststart[2]"),
        "each failure is a warning: {err}"
    );
    assert_eq!(read_state(&post1)["status"], "running");
    wait_stopped(&b);
    let o = b.rt(&["delete", &b.id]);
    assert!(
        o.status.success(),
        "a poststop failure fails delete: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("poststop[0]"), "{}", stderr(&o));
    assert_eq!(read_state(&stop1)["status"], "stopped");
    b.assert_clean();
}

#[test]
fn hook_state_is_created_until_the_program_runs_with_the_pid_each_side_sees() {
    let b = bundle(&["true"]);
    let host = |n: &str| b.path().join(n);
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["hooks"] = json!({
            "prestart": [dump_hook(&host("prestart"))],
            "createRuntime": [dump_hook(&host("createRuntime"))],
            // Runs before the pivot: the host's paths are still there.
            "createContainer": [dump_hook(&host("createContainer"))],
            // Runs in the container: its busybox, its root.
            "startContainer": [dump_hook(Path::new("/startContainer"))],
            "poststart": [dump_hook(&host("poststart"))],
            "poststop": [dump_hook(&host("poststop"))],
        })
    });
    let o = b.run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let prestart = read_state(&host("prestart"));
    let host_pid = prestart["pid"].as_i64().unwrap();
    assert!(host_pid > 1, "{prestart}");
    let expect = [
        ("prestart", host("prestart"), "created", Some(host_pid)),
        (
            "createRuntime",
            host("createRuntime"),
            "created",
            Some(host_pid),
        ),
        (
            "createContainer",
            host("createContainer"),
            "created",
            Some(1),
        ),
        (
            "startContainer",
            host("rootfs/startContainer"),
            "created",
            Some(1),
        ),
        ("poststart", host("poststart"), "running", Some(host_pid)),
        ("poststop", host("poststop"), "stopped", None),
    ];
    for (phase, file, status, pid) in expect {
        let st = read_state(&file);
        assert_eq!(st["status"], status, "{phase}: {st}");
        assert_eq!(st["id"], json!(b.id), "{phase}: {st}");
        if let Some(pid) = pid {
            assert_eq!(
                st["pid"], pid,
                "{phase}: the pid as seen where it runs: {st}"
            );
        }
    }
    b.assert_clean();
}

/// `create` with CAP_WAKE_ALARM dropped from berth-runtime's bounding set, as on a host (or in
/// a container) that does not have it.
fn create_without_wake_alarm(b: &Bundle) -> Output {
    use std::os::unix::process::CommandExt;
    let mut c = b.cmd();
    c.args(["create", "--bundle"]).arg(b.path()).arg(&b.id);
    // SAFETY: the closure runs between fork and exec and makes one async-signal-safe system
    // call on the child's own credentials.
    unsafe {
        c.pre_exec(|| {
            if libc::prctl(libc::PR_CAPBSET_DROP, 35 as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    output_via_files(c)
}

#[test]
fn a_capability_the_host_lacks_fails_create_naming_it() {
    for set in ["effective", "permitted", "inheritable"] {
        let b = bundle(&["true"]);
        b.edit(|c| {
            let caps = &mut c["process"]["capabilities"];
            let mut list = caps[set].as_array().cloned().unwrap_or_default();
            list.push(json!("CAP_WAKE_ALARM"));
            caps[set] = json!(list);
        });
        let o = create_without_wake_alarm(&b);
        assert!(!o.status.success(), "{set}: create succeeded");
        let err = stderr(&o);
        assert!(
            err.contains(&format!("process.capabilities.{set}")) && err.contains("CAP_WAKE_ALARM"),
            "{set}: {err}"
        );
        b.assert_clean();
    }
    // More in `bounding` than the host has is nothing to drop: accepted, as runc and crun do.
    let b = bundle(&["true"]);
    b.edit(|c| {
        c["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_WAKE_ALARM"))
    });
    let o = create_without_wake_alarm(&b);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = b.rt(&["start", &b.id]);
    assert!(o.status.success(), "{}", stderr(&o));
    wait_stopped(&b);
    assert!(b.rt(&["delete", &b.id]).status.success());
    b.assert_clean();
}

/// The default spec without its mount namespace, and without what needs one except `keep`.
fn no_mount_namespace(c: &mut Value, keep: &str) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
    if keep != "mounts" {
        c["mounts"] = json!([]);
    }
    if keep != "linux.maskedPaths" {
        c["linux"]["maskedPaths"] = json!([]);
    }
    if keep != "linux.readonlyPaths" {
        c["linux"]["readonlyPaths"] = json!([]);
    }
    if keep != "root.readonly" {
        c["root"]["readonly"] = json!(false);
    }
    if keep == "linux.sysctl" {
        c["linux"]["sysctl"] = json!({"kernel.domainname": "x"});
    }
}

#[test]
fn mounts_without_a_mount_namespace_fail_create() {
    for field in [
        "mounts",
        "linux.maskedPaths",
        "linux.readonlyPaths",
        "root.readonly",
        "linux.sysctl",
    ] {
        let b = bundle(&["true"]);
        b.edit(|c| no_mount_namespace(c, field));
        let o = b.create();
        assert!(!o.status.success(), "{field}: create succeeded");
        let err = stderr(&o);
        assert!(
            err.contains(&format!("field {field}:")) && err.contains("mount namespace"),
            "{field}: {err}"
        );
        b.assert_clean();
    }
    // Nothing that needs one: the container shares the host's mount table and runs.
    let (code, out, err) = sh("echo ok", |c| no_mount_namespace(c, ""));
    assert_eq!((code, out.as_str()), (0, "ok\n"), "{err}");
}

#[test]
fn oci_version_must_be_semver_with_major_1() {
    for (v, says) in [
        ("invalid", "not a SemVer"),
        ("2.0.0", "major version 2"),
        ("1.0", "not a SemVer"),
        ("", "not a SemVer"),
    ] {
        let b = bundle(&["true"]);
        b.edit(|c| c["ociVersion"] = json!(v));
        let o = b.create();
        assert!(!o.status.success(), "{v:?}: create succeeded");
        let err = stderr(&o);
        assert!(
            err.contains("field ociVersion") && err.contains(says),
            "{v:?}: {err}"
        );
        b.assert_clean();
    }
    for v in ["1.0.0", "1.0.2-dev", "1.9.0+build.1"] {
        let (code, _, err) = sh("true", |c| c["ociVersion"] = json!(v));
        assert_eq!(code, 0, "{v}: {err}");
    }
}

#[test]
fn start_returns_once_the_program_was_executed() {
    let b = bundle(&["sleep", "100"]);
    // Runs in the container between the release and the exec.
    b.edit(|c| {
        c["hooks"] = json!({"startContainer": [{"path": "/bin/sleep", "args": ["sleep", "1"]}]})
    });
    let o = b.create();
    assert!(o.status.success(), "{}", stderr(&o));
    let pid = b.state()["pid"].as_i64().unwrap();
    let t = Instant::now();
    let o = b.rt(&["start", &b.id]);
    let took = t.elapsed();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        took >= Duration::from_millis(950),
        "start returned after {took:?}"
    );
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep", "the program runs when start returns");
    assert_eq!(b.status(), "running");
    assert!(b.rt(&["delete", "-f", &b.id]).status.success());
    b.assert_clean();
}

#[test]
fn start_returns_the_error_of_an_init_that_fails_after_the_release() {
    // A startContainer hook that fails: the spec says start generates an error.
    let b = bundle(&["true"]);
    b.edit(|c| c["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]}));
    assert!(b.create().status.success());
    let o = b.rt(&["start", &b.id]);
    assert!(!o.status.success(), "start succeeded");
    assert!(stderr(&o).contains("startContainer[0]"), "{}", stderr(&o));
    assert!(b.rt(&["delete", "-f", &b.id]).status.success());
    b.assert_clean();

    // The program removed between create and start: the exec fails, start says why.
    let b = bundle(&["/bin/prog"]);
    std::fs::copy(busybox(), b.path().join("rootfs/bin/prog")).unwrap();
    assert!(b.create().status.success());
    std::fs::remove_file(b.path().join("rootfs/bin/prog")).unwrap();
    let o = b.rt(&["start", &b.id]);
    assert!(!o.status.success(), "start succeeded");
    let err = stderr(&o);
    assert!(err.contains("exec") && err.contains("/bin/prog"), "{err}");
    assert!(b.rt(&["delete", "-f", &b.id]).status.success());
    b.assert_clean();
}
