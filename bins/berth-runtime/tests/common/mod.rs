//! Test fixtures: busybox bundles built from the host's /bin/busybox, a private state root per
//! test, and helpers to drive the berth-runtime binary.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const BIN: &str = env!("CARGO_BIN_EXE_berth-runtime");

static N: AtomicUsize = AtomicUsize::new(0);

pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub id: String,
}

pub fn busybox() -> &'static str {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return p;
        }
    }
    panic!("busybox-static is required (apt-get install busybox-static)");
}

/// A bundle with a busybox rootfs and the default `spec`, with `process.args` set.
pub fn bundle(args: &[&str]) -> Bundle {
    let dir = tempfile::Builder::new()
        .prefix("berth-rt-test-")
        .tempdir()
        .unwrap();
    let rootfs = dir.path().join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
    for a in [
        "sh", "ls", "cat", "echo", "true", "false", "hostname", "id", "ps", "mount", "sleep", "ip",
        "grep", "touch", "mkdir", "readlink", "stat", "ipcs", "wc", "head", "test", "kill", "env",
        "pwd", "dd", "mknod", "rm", "chmod", "ln",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["spec", "-b"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "spec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = N.fetch_add(1, Ordering::SeqCst);
    let id = format!("t{}-{}", std::process::id(), n);
    let root = dir.path().join("state");
    let b = Bundle { dir, root, id };
    b.edit(|c| {
        c["process"]["terminal"] = Value::Bool(false);
        c["process"]["args"] = serde_json::json!(args);
    });
    b
}

impl Bundle {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn config(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.path().join("config.json")).unwrap()).unwrap()
    }
    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut c = self.config();
        f(&mut c);
        std::fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&c).unwrap(),
        )
        .unwrap();
    }
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(&self.root);
        c
    }
    /// `berth-runtime ARGS...` with the bundle's root; returns the output. stdout/stderr go
    /// through files, not pipes: a created or detached container inherits them and keeps them
    /// open (as runc's do), so waiting for pipe EOF would hang.
    pub fn rt(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        output_via_files(c)
    }
    /// `run --bundle B ID` in the foreground.
    pub fn run(&self) -> Output {
        let mut c = self.cmd();
        c.args(["run", "--bundle"]).arg(self.path()).arg(&self.id);
        output_via_files(c)
    }
    pub fn create(&self) -> Output {
        let mut c = self.cmd();
        c.args(["create", "--bundle"])
            .arg(self.path())
            .arg(&self.id);
        output_via_files(c)
    }
    pub fn state(&self) -> Value {
        let o = self.rt(&["state", &self.id]);
        assert!(
            o.status.success(),
            "state: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }
    pub fn status(&self) -> String {
        self.state()["status"].as_str().unwrap().to_string()
    }
    /// Nothing of the container left: no state dir, no mount under the bundle, no cgroup dir.
    pub fn assert_clean(&self) {
        assert!(!self.root.join(&self.id).exists(), "state dir left behind");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let p = self.path().to_string_lossy().to_string();
        assert!(!mounts.contains(&p), "mount left behind under {p}");
        for ctrl in cgroup_dirs() {
            let d = ctrl.join(&self.id);
            assert!(!d.exists(), "cgroup dir left behind: {}", d.display());
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if self.root.join(&self.id).exists() {
            let _ = Command::new(BIN)
                .arg("--root")
                .arg(&self.root)
                .args(["delete", "--force", &self.id])
                .output();
        }
    }
}

/// Mount points of every cgroup hierarchy with controllers (v1) or the unified one (v2).
pub fn cgroup_dirs() -> Vec<PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut v = Vec::new();
    for l in mi.lines() {
        if let Some((pre, post)) = l.split_once(" - ") {
            let fstype = post.split(' ').next().unwrap_or("");
            if fstype == "cgroup" || fstype == "cgroup2" {
                v.push(PathBuf::from(pre.split(' ').nth(4).unwrap()));
            }
        }
    }
    v
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run a shell script in a fresh container and return (exit code, stdout, stderr).
pub fn sh(script: &str, edit: impl FnOnce(&mut Value)) -> (i32, String, String) {
    let b = bundle(&["sh", "-c", script]);
    b.edit(edit);
    let o = b.run();
    let r = (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o));
    b.assert_clean();
    r
}

/// Run a command with stdin from /dev/null and stdout/stderr captured through temp files.
pub fn output_via_files(mut c: Command) -> Output {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let st = c
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .status()
        .unwrap();
    use std::io::{Read, Seek};
    let read = |mut f: std::fs::File| {
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
