//! Network namespaces: held by the engine by fd (nothing in the file system to unmount from
//! under it), and none outlives its container — also when many running ones are removed at
//! once. Its own test binary: it scans every process's namespaces and descriptors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use common::*;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

/// `net:[<inode>]` of the container's init.
fn netns_of(env: &Env, id: &str) -> String {
    let pid = env.engine.container_inspect(id, false).unwrap()["State"]["Pid"]
        .as_i64()
        .unwrap();
    assert!(pid > 0, "{id} has no pid");
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The references to network namespaces held by this process (threads, descriptors, mounts),
/// by the containers' former inits (`pids`) and by any process naming our roots (monitors).
/// Not the whole host's: namespace inode numbers are reused, and other daemons on the machine
/// make namespaces meanwhile.
fn netns_references(env: &Env, pids: &[i64]) -> HashSet<String> {
    let mut refs = HashSet::new();
    let link = |p: std::path::PathBuf| {
        std::fs::read_link(p)
            .ok()
            .map(|l| l.to_string_lossy().into_owned())
            .filter(|l| l.starts_with("net:["))
    };
    let roots = [env.root.to_str().unwrap(), env.exec_root.to_str().unwrap()];
    let me = std::process::id().to_string();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = p.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<i64>() else {
            continue;
        };
        let p = p.path();
        let cmdline = std::fs::read(p.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        let ours = name == me || pids.contains(&pid) || roots.iter().any(|r| cmdline.contains(r));
        if !ours {
            continue;
        }
        refs.extend(link(p.join("ns/net")));
        for sub in ["task", "fd"] {
            if let Ok(rd) = std::fs::read_dir(p.join(sub)) {
                for e in rd.flatten() {
                    refs.extend(link(if sub == "task" {
                        e.path().join("ns/net")
                    } else {
                        e.path()
                    }));
                }
            }
        }
        // (a process's mount table: a bind-mounted namespace shows as its root field)
        if let Ok(mi) = std::fs::read_to_string(p.join("mountinfo")) {
            for l in mi.lines() {
                if let Some(f) = l.split(' ').nth(3).filter(|f| f.starts_with("net:[")) {
                    refs.insert(f.to_string());
                }
            }
        }
    }
    refs
}

fn sleeper_body() -> serde_json::Value {
    json!({"Cmd": ["sleep", "1000"], "HostConfig": {"NetworkMode": "none"}})
}

#[test]
fn namespaces_are_not_files_a_run_could_lose() {
    let env = Env::new();
    // The keeper has made its ready ones by the end of a first run.
    assert_eq!(env.run(json!({"Cmd": ["true"]})).0, 0);
    // Someone sweeps the exec root (as the issue's `umount` of a pooled namespace did):
    // nothing of ours is there to lose.
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let ours: Vec<&str> = mi
        .lines()
        .filter(|l| l.contains(env.exec_root.to_str().unwrap()) && l.contains("net:["))
        .collect();
    assert!(
        ours.is_empty(),
        "namespaces mounted in the file system: {ours:?}"
    );
    let legacy = env.exec_root.join("netns");
    if let Ok(rd) = std::fs::read_dir(&legacy) {
        for e in rd.flatten() {
            let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(e.path());
        }
    }
    // Create + start still work, in a namespace of its own with loopback up.
    let id = env.create(sleeper_body());
    env.engine.container_start(&id).unwrap();
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(netns_of(&env, &id), host.to_string_lossy());
    let (code, out, _) =
        env.run(json!({"Cmd": ["cat", "/sys/class/net/lo/operstate", "/sys/class/net/lo/flags"]}));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines().nth(1).is_some_and(|f| f.ends_with('9')),
        "lo not up: {out}"
    );
    env.engine.container_remove(&id, true, false).unwrap();
}

#[test]
fn removing_many_running_containers_at_once_frees_their_namespaces() {
    const N: usize = 60;
    let env = Arc::new(Env::new());
    // Started from a few threads (as `docker run -d` in a loop of several clients).
    let ids: Vec<String> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let env = env.clone();
                sc.spawn(move || {
                    (0..N / 4)
                        .map(|_| {
                            let id = env.create(sleeper_body());
                            env.engine.container_start(&id).unwrap();
                            id
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let namespaces: HashSet<String> = ids.iter().map(|id| netns_of(&env, id)).collect();
    let pids: Vec<i64> = ids
        .iter()
        .map(|id| {
            env.engine.container_inspect(id, false).unwrap()["State"]["Pid"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(namespaces.len(), N, "containers sharing a namespace");
    // One `rm -f` of all of them: the removals run concurrently (the API's blocking pool).
    std::thread::scope(|sc| {
        for id in &ids {
            let env = env.clone();
            sc.spawn(move || env.engine.container_remove(id, true, false).unwrap());
        }
    });
    let left: Vec<String> = netns_references(&env, &pids)
        .intersection(&namespaces)
        .cloned()
        .collect();
    assert!(
        left.is_empty(),
        "namespaces of removed containers still held: {left:?}"
    );
    // And none after the daemon's shutdown either: its ready ones go too (this process holds
    // no namespace but its own, by descriptor or mount).
    env.engine.shutdown();
    let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
    let mut held: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with("net:[") && *l != mine)
        .map(|l| l.to_string_lossy().into_owned())
        .collect();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    held.extend(
        mi.lines()
            .filter(|l| l.contains(env.exec_root.to_str().unwrap()) && l.contains("net:["))
            .map(str::to_string),
    );
    assert!(held.is_empty(), "namespaces held after shutdown: {held:?}");
}
