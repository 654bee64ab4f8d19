#![allow(dead_code)]
//! Test fixtures: an engine in a private root, a busybox image imported from the host's
//! /bin/busybox (Debian busybox-static).
use berth_engine::*;
use serde_json::{json, Value};
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

static BUILD: Once = Once::new();

pub fn monitor_bin() -> PathBuf {
    if let Ok(p) = std::env::var("BERTH_TEST_MONITOR") {
        return PathBuf::from(p);
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug");
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = std::process::Command::new(cargo)
            .args(["build", "-q", "-p", "berth-monitor"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build -p berth-monitor");
        assert!(st.success(), "cargo build -p berth-monitor failed");
    });
    target.join("berth-monitor")
}

pub struct Env {
    pub engine: Arc<Engine>,
    pub root: PathBuf,
    pub exec_root: PathBuf,
    /// The default bridge network's device, if the engine has one.
    pub bridge: Option<String>,
    _dir: tempfile::TempDir,
}

pub fn busybox_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let add_dir = |b: &mut tar::Builder<Vec<u8>>, p: &str, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, p, std::io::empty()).unwrap();
    };
    for d in [
        "bin",
        "etc",
        "tmp",
        "root",
        "home",
        "home/user",
        "proc",
        "sys",
        "dev",
        "var",
        "usr",
        "usr/bin",
    ] {
        add_dir(&mut b, d, if d == "tmp" { 0o1777 } else { 0o755 });
    }
    let bb = std::fs::read("/bin/busybox").expect("host /bin/busybox (busybox-static)");
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(bb.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "bin/busybox", &bb[..]).unwrap();
    for tool in [
        "sh", "echo", "cat", "sleep", "env", "id", "pwd", "ls", "true", "false", "ps", "hostname",
        "touch", "mkdir", "rm", "trap", "kill", "head", "seq", "wc", "grep", "yes", "printf",
        "stat", "readlink", "test", "tail", "httpd", "wget", "ping", "ip", "nc",
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_mtime(1_700_000_000);
        b.append_link(&mut h, format!("bin/{tool}"), "busybox")
            .unwrap();
    }
    let files = [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        ("etc/group", "root:x:0:\nuser:x:1000:\nstaff:x:50:user\nnogroup:x:65534:\n"),
    ];
    for (p, c) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(c.len() as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, p, c.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

impl Env {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Env {
        Env::with_bridge(None)
    }

    /// An engine whose default bridge network is the device `bridge` (each test its own).
    pub fn with_bridge(bridge: Option<String>) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("berth-engine-test")
            .tempdir_in("/var/tmp")
            .unwrap();
        let root = dir.path().join("root");
        let exec_root = dir.path().join("run");
        let mb = monitor_bin();
        let engine = Engine::open(EngineConfig {
            root: root.clone(),
            exec_root: exec_root.clone(),
            insecure_registries: vec![],
            monitor_path: Some(mb),
            exec_root_tmpfs: true,
            bridge: bridge.clone(),
            truthful_proc: true,
        })
        .unwrap();
        let tar = busybox_tar();
        let mut r: &[u8] = &tar;
        let changes = vec![
            "CMD [\"sh\"]".to_string(),
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ];
        engine
            .image_import(
                &mut r,
                Some("busybox"),
                Some("latest"),
                &changes,
                None,
                None,
                &|_| {},
            )
            .unwrap();
        Env {
            engine,
            root,
            exec_root,
            bridge,
            _dir: dir,
        }
    }

    pub fn reopen(&mut self) {
        self.engine = Engine::open(EngineConfig {
            root: self.root.clone(),
            exec_root: self.exec_root.clone(),
            insecure_registries: vec![],
            monitor_path: Some(monitor_bin()),
            exec_root_tmpfs: true,
            bridge: self.bridge.clone(),
            truthful_proc: true,
        })
        .unwrap();
    }

    pub fn create(&self, body: Value) -> String {
        let mut b = body;
        if b.get("Image").is_none() {
            b["Image"] = json!("busybox");
        }
        self.engine.container_create(None, &b).unwrap()["Id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// create + start + wait; returns (exit code, stdout+stderr from the log).
    pub fn run(&self, body: Value) -> (i64, String, String) {
        let id = self.create(body);
        let code = self.start_wait(&id);
        let (o, e) = self.logs(&id);
        self.engine.container_remove(&id, true, false).unwrap();
        (code, o, e)
    }

    /// Start a created container and wait for its exit: the exit code.
    pub fn start_wait(&self, id: &str) -> i64 {
        let w = self
            .engine
            .container_wait(id, WaitCondition::NextExit)
            .unwrap();
        self.engine.container_start(id).unwrap();
        w.wait().status_code
    }

    pub fn logs(&self, id: &str) -> (String, String) {
        let (mut o, mut e) = (String::new(), String::new());
        for ent in self
            .engine
            .container_logs(
                id,
                &LogsOptions {
                    stdout: true,
                    stderr: true,
                    ..Default::default()
                },
            )
            .unwrap()
        {
            let ent = ent.unwrap();
            match ent.stream {
                StreamKind::Stdout => o.push_str(&String::from_utf8_lossy(&ent.data)),
                StreamKind::Stderr => e.push_str(&String::from_utf8_lossy(&ent.data)),
            }
        }
        (o, e)
    }

    pub fn status(&self, id: &str) -> String {
        self.engine.container_inspect(id, false).unwrap()["State"]["Status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn wait_for(&self, what: &str, f: impl Fn() -> bool) {
        let t = Instant::now();
        while !f() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(list) = self.engine.container_list(&ListOptions {
            all: true,
            ..Default::default()
        }) {
            for c in list {
                let _ = self
                    .engine
                    .container_remove(c["Id"].as_str().unwrap_or(""), true, false);
            }
        }
        // Lets go of the ready network namespaces (mounts under exec_root) and the spare, and
        // unmounts the exec root's tmpfs if nothing uses it any more.
        self.engine.shutdown();
        // On a loaded machine a monitor's clean-up (idle priority) can outlast the engine's
        // patience: wait for it here, a test leaves no mount behind.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while nix::sys::statfs::statfs(&self.exec_root)
            .map(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
            .unwrap_or(false)
        {
            let flags = if std::time::Instant::now() < deadline {
                nix::mount::MntFlags::empty()
            } else {
                nix::mount::MntFlags::MNT_DETACH
            };
            if nix::mount::umount2(&self.exec_root, flags).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

pub fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = r.read_to_end(&mut v);
    v
}

/// Demultiplex Docker's 8-byte framed stream.
pub fn demux(b: &[u8]) -> (String, String) {
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i + 8 <= b.len() {
        let n = u32::from_be_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as usize;
        let p = &b[i + 8..(i + 8 + n).min(b.len())];
        if b[i] == 2 {
            e.extend_from_slice(p)
        } else {
            o.extend_from_slice(p)
        }
        i += 8 + n;
    }
    (
        String::from_utf8_lossy(&o).into_owned(),
        String::from_utf8_lossy(&e).into_owned(),
    )
}
