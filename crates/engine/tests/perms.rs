//! Host users are kept out of the store (moby CVE-2021-41091's class): nothing below the root
//! or the exec root's state directories is reachable by an unprivileged user, so a setuid
//! binary in an image layer or a container's upper dir cannot be run from the host and the
//! records (Env with secrets) and logs cannot be read.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use common::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

const NOBODY: u32 = 65534;

/// Every path below `dir`, as root sees them (not into mounted rootfs trees: their entries are
/// reached through the same directories as their mount points).
fn walk(dir: &Path, depth: usize, out: &mut Vec<(PathBuf, usize)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        out.push((p.clone(), depth));
        let ft = e.file_type().unwrap();
        if ft.is_dir() && !ft.is_symlink() && depth < 6 {
            walk(&p, depth + 1, out);
        }
    }
}

/// The paths of `paths` an unprivileged user can stat.
fn reachable_by_nobody(paths: &[PathBuf]) -> Vec<String> {
    let mut script = String::from(
        "for p in \"$@\"; do [ -e \"$p\" ] || [ -L \"$p\" ] && echo \"$p\"; done; true",
    );
    script.push('\n');
    let out = std::process::Command::new("/bin/busybox")
        .arg("sh")
        .arg("-c")
        .arg(&script)
        .arg("sh")
        .args(paths)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn unprivileged_users_reach_nothing_below_the_roots() {
    let env = Env::new();
    // The test's own temporary directory must not be what keeps them out.
    let top = env.root.parent().unwrap();
    std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A container that left a setuid file in its upper dir, a secret in its record, a log.
    let exited = env.create(json!({
        "Cmd": ["sh", "-c", "cp /bin/busybox /probe && chmod 4755 /probe && echo logged && echo s > /vol/secret && chmod 644 /vol/secret"],
        "Env": ["SECRET=hunter2"],
        "HostConfig": {"Binds": ["permvol:/vol"]},
    }));
    assert_eq!(env.start_wait(&exited), 0);
    let running = env.create(json!({"Cmd": ["sleep", "30"], "Env": ["SECRET=hunter2"]}));
    env.engine.container_start(&running).unwrap();

    let mut below = Vec::new();
    walk(&env.root, 1, &mut below);
    for sub in ["containers", "runtime", "netns"] {
        walk(&env.exec_root.join(sub), 2, &mut below);
    }
    // Depth 1 of the root (its own directories) may be seen to exist, not entered.
    let deep: Vec<PathBuf> = below
        .iter()
        .filter(|(_, d)| *d >= 2)
        .map(|(p, _)| p.clone())
        .collect();
    assert!(
        deep.iter().any(|p| p.ends_with("config.v2.json")),
        "the walk found no record: {below:?}"
    );
    assert!(deep
        .iter()
        .any(|p| p.to_string_lossy().ends_with("-json.log")));
    assert!(
        deep.iter().any(|p| p.ends_with("probe")),
        "no upper dir with the probe"
    );
    assert!(
        deep.iter().any(|p| p.ends_with("_data/secret")),
        "no volume with the secret"
    );
    let seen = reachable_by_nobody(&deep);
    assert!(
        seen.is_empty(),
        "reachable by an unprivileged user: {seen:?}"
    );
    for (p, d) in &below {
        if *d == 1 && p.is_dir() {
            let r = std::process::Command::new("/bin/busybox")
                .args(["ls", p.to_str().unwrap()])
                .uid(NOBODY)
                .gid(NOBODY)
                .output()
                .unwrap();
            assert!(
                !r.status.success(),
                "{} can be listed by an unprivileged user",
                p.display()
            );
        }
    }
    for id in [running, exited] {
        env.engine.container_remove(&id, true, false).unwrap();
    }
}

#[test]
fn an_existing_root_is_tightened_at_open() {
    let dir = tempfile::Builder::new()
        .prefix("berth-perms")
        .tempdir_in("/var/tmp")
        .unwrap();
    let root = dir.path().join("root");
    for d in ["containers", "image", "bin"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
        std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let engine = berth_engine::Engine::open(berth_engine::EngineConfig {
        root: root.clone(),
        exec_root: dir.path().join("run"),
        insecure_registries: vec![],
        monitor_path: Some(monitor_bin()),
        exec_root_tmpfs: true,
        bridge: None,
        truthful_proc: true,
    })
    .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&root), 0o711);
    for d in ["containers", "image", "bin"] {
        assert_eq!(mode(&root.join(d)), 0o700, "{d}");
    }
    engine.shutdown();
    // The exec root's tmpfs goes once the spare monitor has left it (a test leaves no mount).
    let exec_root = dir.path().join("run");
    for i in 0..600 {
        let flags = if i < 599 {
            nix::mount::MntFlags::empty()
        } else {
            nix::mount::MntFlags::MNT_DETACH
        };
        if nix::mount::umount2(&exec_root, flags).is_ok()
            || !berth_image::sys::is_mount_root(&exec_root)
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
