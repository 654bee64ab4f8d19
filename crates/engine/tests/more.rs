//! Exec, live-restore, logs, events, resource limits, archive, leaks (root).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use berth_engine::*;
use common::*;
use serde_json::json;
use std::io::Write;
use std::time::Duration;

fn sleeper(env: &Env, extra: serde_json::Value) -> String {
    let mut body = json!({"Cmd": ["sh", "-c", "echo ready; while true; do sleep 0.1; done"]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let id = env.create(body);
    env.engine.container_start(&id).unwrap();
    env.wait_for("ready", || env.logs(&id).0.contains("ready"));
    id
}

#[test]
fn exec_output_exit_code_and_stdin() {
    let env = Env::new();
    let id = sleeper(&env, json!({}));
    let ex = env.engine.exec_create(&id, &json!({"Cmd": ["sh", "-c", "echo in-exec; echo e >&2; exit 5"], "AttachStdout": true, "AttachStderr": true})).unwrap();
    let eid = ex["Id"].as_str().unwrap().to_string();
    let a = env.engine.exec_start(&eid, false, false).unwrap().unwrap();
    let out = read_all(a.output);
    assert_eq!(demux(&out), ("in-exec\n".into(), "e\n".into()));
    let i = env.engine.exec_inspect(&eid).unwrap();
    assert_eq!(i["ExitCode"], 5);
    assert_eq!(i["Running"], false);
    assert_eq!(i["ContainerID"], id.as_str());
    // The exit code is there the moment the output ends (`docker exec` inspects right then).
    for n in 0..20 {
        let ex = env
            .engine
            .exec_create(
                &id,
                &json!({"Cmd": ["sh", "-c", format!("exit {}", n + 1)], "AttachStdout": true}),
            )
            .unwrap();
        let eid = ex["Id"].as_str().unwrap().to_string();
        let a = env.engine.exec_start(&eid, false, false).unwrap().unwrap();
        read_all(a.output);
        let i = env.engine.exec_inspect(&eid).unwrap();
        assert_eq!(
            (i["Running"].clone(), i["ExitCode"].clone()),
            (json!(false), json!(n + 1)),
            "exec {n}"
        );
    }
    // exec with stdin
    let ex = env
        .engine
        .exec_create(
            &id,
            &json!({"Cmd": ["cat"], "AttachStdin": true, "AttachStdout": true}),
        )
        .unwrap();
    let eid = ex["Id"].as_str().unwrap().to_string();
    let a = env.engine.exec_start(&eid, false, false).unwrap().unwrap();
    let (o, i) = a.split();
    let r = std::thread::spawn(move || read_all(o));
    let mut i = i.unwrap();
    i.write_all(b"piped\n").unwrap();
    i.close().unwrap();
    assert_eq!(demux(&r.join().unwrap()).0, "piped\n");
    // exec sees the container's env and user override
    assert_eq!(exec_stdout_as(&env, &id, &["id", "-u"], "user"), "1000\n");
    // detached exec leaves a file behind
    let ex = env
        .engine
        .exec_create(&id, &json!({"Cmd": ["touch", "/detached"]}))
        .unwrap();
    assert!(env
        .engine
        .exec_start(ex["Id"].as_str().unwrap(), true, false)
        .unwrap()
        .is_none());
    env.wait_for("detached exec", || {
        let ex = env
            .engine
            .exec_create(&id, &json!({"Cmd": ["test", "-f", "/detached"]}))
            .unwrap();
        let eid = ex["Id"].as_str().unwrap().to_string();
        let a = env.engine.exec_start(&eid, false, false).unwrap().unwrap();
        read_all(a.output);
        env.engine.exec_inspect(&eid).unwrap()["ExitCode"] == 0
    });
    assert!(
        env.engine.container_inspect(&id, false).unwrap()["ExecIDs"]
            .as_array()
            .unwrap()
            .len()
            >= 4
    );
    // not found command
    let ex = env
        .engine
        .exec_create(&id, &json!({"Cmd": ["/nope"], "AttachStdout": true}))
        .unwrap();
    assert!(env
        .engine
        .exec_start(ex["Id"].as_str().unwrap(), false, false)
        .is_err());
    // exec in a stopped container: 409
    env.engine.container_kill(&id, None).unwrap();
    env.wait_for("exit", || env.status(&id) == "exited");
    assert_eq!(
        env.engine
            .exec_create(&id, &json!({"Cmd": ["true"]}))
            .unwrap_err()
            .status_code(),
        409
    );
}

fn monitor_pid_of(env: &Env, id: &str) -> i32 {
    let pid = env.engine.container_inspect(id, false).unwrap()["State"]["Pid"]
        .as_i64()
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(1).unwrap().parse().unwrap()
}

fn rss_kb(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn live_restore_after_daemon_loss() {
    let mut env = Env::new();
    let id = env.create(
        json!({"Cmd": ["sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done"]}),
    );
    env.engine.container_start(&id).unwrap();
    let mon = monitor_pid_of(&env, &id);
    let cmd = std::fs::read_to_string(format!("/proc/{mon}/cmdline")).unwrap();
    assert!(cmd.contains("berth-monitor"), "{cmd}");
    std::thread::sleep(Duration::from_millis(300));
    // The 2 MB budget is for the release build (what berthd ships with); an unoptimised
    // debug build has ~5x the code and is only checked loosely.
    let rss = rss_kb(mon);
    let release = monitor_bin().to_string_lossy().contains("/release/");
    eprintln!(
        "monitor VmRSS: {rss} kB ({})",
        if release { "release" } else { "debug" }
    );
    assert!(
        rss <= if release { 2048 } else { 6144 },
        "monitor RSS {rss} kB"
    );
    // "kill -9 berthd": drop the engine (its threads stop acting) and open a new one.
    env.reopen();
    std::thread::sleep(Duration::from_millis(300));
    let l = env.engine.container_list(&ListOptions::default()).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["State"], "running");
    assert!(l[0]["Status"].as_str().unwrap().starts_with("Up "));
    // Exec works after the restart.
    assert_eq!(exec_stdout(&env, &id, &["echo", "after"]), "after\n");
    env.engine.container_stop(&id, Some(1), None).unwrap();
    let (out, _) = env.logs(&id);
    let nums: Vec<i64> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert!(nums.len() > 10, "{}", nums.len());
    for (i, n) in nums.iter().enumerate() {
        assert_eq!(*n, i as i64, "log gap at line {i}");
    }
    // A container that exits while the daemon is away reports its real exit code.
    let id2 = env.create(json!({"Cmd": ["sh", "-c", "sleep 0.5; exit 42"]}));
    env.engine.container_start(&id2).unwrap();
    let root = env.root.clone();
    let exec_root = env.exec_root.clone();
    drop(std::mem::replace(
        &mut env.engine,
        Engine::open(EngineConfig {
            root: root.clone(),
            exec_root: exec_root.clone(),
            insecure_registries: vec![],
            monitor_path: Some(monitor_bin()),
            exec_root_tmpfs: true,
            bridge: None,
            truthful_proc: true,
        })
        .unwrap(),
    ));
    // Simulate the daemon being down while it exits: wait, then open again.
    std::thread::sleep(Duration::from_millis(1000));
    env.reopen();
    env.wait_for("exit seen after restart", || env.status(&id2) == "exited");
    assert_eq!(
        env.engine.container_inspect(&id2, false).unwrap()["State"]["ExitCode"],
        42
    );
    // An AutoRemove one that exits while the daemon is away is removed at the restart.
    let id3 = env.create(json!({"Cmd": ["sleep", "0.5"], "HostConfig": {"AutoRemove": true}}));
    env.engine.container_start(&id3).unwrap();
    env.reopen();
    std::thread::sleep(Duration::from_millis(1000));
    env.reopen();
    env.wait_for("auto-removed after restart", || {
        env.engine.container_inspect(&id3, false).is_err()
    });
}

#[test]
fn memory_limit_and_cgroup_and_update() {
    let env = Env::new();
    let id = sleeper(
        &env,
        json!({"HostConfig": {"Memory": 64 * 1024 * 1024, "PidsLimit": 50, "CpuShares": 512}}),
    );
    let base = std::path::Path::new("/sys/fs/cgroup/memory/berth").join(&id);
    let lim = std::fs::read_to_string(base.join("memory.limit_in_bytes")).unwrap();
    assert_eq!(lim.trim(), (64 * 1024 * 1024).to_string());
    let pids = std::fs::read_to_string(
        std::path::Path::new("/sys/fs/cgroup/pids/berth")
            .join(&id)
            .join("pids.max"),
    )
    .unwrap();
    assert_eq!(pids.trim(), "50");
    env.engine
        .container_update(&id, &json!({"Memory": 128 * 1024 * 1024, "MemorySwap": -1}))
        .unwrap();
    let lim = std::fs::read_to_string(base.join("memory.limit_in_bytes")).unwrap();
    assert_eq!(lim.trim(), (128 * 1024 * 1024).to_string());
    assert_eq!(
        env.engine.container_inspect(&id, false).unwrap()["HostConfig"]["Memory"],
        128 * 1024 * 1024
    );
    // top and stats
    let top = env.engine.container_top(&id, None).unwrap();
    assert!(top["Titles"].as_array().unwrap().iter().any(|t| t == "PID"));
    assert!(top["Processes"].as_array().unwrap().len() >= 2, "{top}");
    let st = env.engine.container_stats(&id, None, false).unwrap();
    assert!(
        st["cpu_stats"]["cpu_usage"]["total_usage"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(st["precpu_stats"]["cpu_usage"]["total_usage"]
        .as_u64()
        .is_some());
    assert!(st["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert_eq!(st["memory_stats"]["limit"], 128 * 1024 * 1024);
    assert!(st["pids_stats"]["current"].as_u64().unwrap() >= 1);
    let st2 = env.engine.container_stats(&id, Some(&st), true).unwrap();
    assert_eq!(st2["precpu_stats"], st["cpu_stats"]);
    // pause / unpause
    env.engine.container_pause(&id).unwrap();
    assert_eq!(env.status(&id), "paused");
    assert_eq!(
        std::fs::read_to_string(
            std::path::Path::new("/sys/fs/cgroup/freezer/berth")
                .join(&id)
                .join("freezer.state")
        )
        .unwrap()
        .trim(),
        "FROZEN"
    );
    env.engine.container_unpause(&id).unwrap();
    assert_eq!(env.status(&id), "running");
    env.engine.container_remove(&id, true, false).unwrap();
    assert!(!base.exists(), "cgroup left behind");
}

#[test]
fn logs_tail_follow_rotation() {
    let env = Env::new();
    let id = env.create(json!({"Cmd": ["sh", "-c", "seq 1 400; sleep 0.3; echo last"], "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"max-size": "2k", "max-file": "3"}}}}));
    let w = env
        .engine
        .container_wait(&id, WaitCondition::NextExit)
        .unwrap();
    env.engine.container_start(&id).unwrap();
    let follow = env
        .engine
        .container_logs(
            &id,
            &LogsOptions {
                follow: true,
                stdout: true,
                tail: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
    let f = std::thread::spawn(move || {
        follow
            .map(|e| String::from_utf8(e.unwrap().data).unwrap())
            .collect::<String>()
    });
    w.wait();
    let followed = f.join().unwrap();
    assert!(followed.ends_with("last\n"), "{followed:?}");
    let dir = env.root.join("containers").join(&id);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("-json.log"))
        .collect();
    assert!(files.len() <= 3 && files.len() >= 2, "{}", files.len());
    for f in &files {
        assert!(f.metadata().unwrap().len() <= 2048 + 200);
    }
    let all = env
        .engine
        .container_logs(
            &id,
            &LogsOptions {
                stdout: true,
                ..Default::default()
            },
        )
        .unwrap();
    let lines: Vec<String> = all
        .map(|e| String::from_utf8(e.unwrap().data).unwrap())
        .collect();
    assert_eq!(lines.last().unwrap(), "last\n");
    // Consecutive across the rotated files.
    let nums: Vec<i64> = lines.iter().filter_map(|l| l.trim().parse().ok()).collect();
    for w in nums.windows(2) {
        assert_eq!(w[1], w[0] + 1);
    }
    let tail = env
        .engine
        .container_logs(
            &id,
            &LogsOptions {
                stdout: true,
                tail: Some(2),
                timestamps: true,
                ..Default::default()
            },
        )
        .unwrap();
    let t: Vec<_> = tail.map(|e| e.unwrap()).collect();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].data, b"400\n");
    let framed = t[1].to_bytes(true, false);
    assert_eq!(framed[0], 1);
    assert!(String::from_utf8_lossy(&framed[8..]).ends_with("Z last\n"));
}

#[test]
fn events_list_filters_rename() {
    let env = Env::new();
    let mut ev = env
        .engine
        .events(None, None, &json!({"type": ["container"]}))
        .unwrap();
    let id = env
        .engine
        .container_create(
            Some("evt"),
            &json!({"Image": "busybox", "Cmd": ["sh", "-c", "exit 4"], "Labels": {"app": "x"}}),
        )
        .unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let w = env
        .engine
        .container_wait(&id, WaitCondition::NextExit)
        .unwrap();
    env.engine.container_start(&id).unwrap();
    w.wait();
    let mut actions = Vec::new();
    while let Ok(Some(e)) = ev.next_timeout(Duration::from_millis(500)) {
        if e["Action"] == "die" {
            assert_eq!(e["Actor"]["Attributes"]["exitCode"], "4");
            assert_eq!(e["Actor"]["Attributes"]["name"], "evt");
            assert_eq!(e["Actor"]["Attributes"]["image"], "busybox");
            assert_eq!(e["Actor"]["Attributes"]["app"], "x");
        }
        actions.push(e["Action"].as_str().unwrap().to_string());
    }
    assert_eq!(actions, ["create", "start", "die"]);
    // Replay with since.
    let mut past = env
        .engine
        .events(
            Some(0.0),
            Some(util_now()),
            &json!({"event": {"create": true}}),
        )
        .unwrap();
    assert_eq!(past.next().unwrap()["Action"], "create");
    let other = sleeper(&env, json!({"Labels": {"app": "y"}}));
    let q = |f: serde_json::Value, all: bool| -> Vec<String> {
        env.engine
            .container_list(&ListOptions {
                all,
                filters: f,
                ..Default::default()
            })
            .unwrap()
            .iter()
            .map(|c| c["Id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(q(json!({}), false), vec![other.clone()]);
    assert_eq!(q(json!({"label": {"app=x": true}}), true), vec![id.clone()]);
    assert_eq!(q(json!({"label": ["app=y"]}), true), vec![other.clone()]);
    assert_eq!(q(json!({"status": ["exited"]}), false), vec![id.clone()]);
    assert_eq!(q(json!({"exited": ["4"]}), true), vec![id.clone()]);
    assert_eq!(q(json!({"name": ["evt"]}), true), vec![id.clone()]);
    assert_eq!(q(json!({"ancestor": ["busybox"]}), true).len(), 2);
    assert_eq!(
        q(json!({"before": [other.clone()]}), true),
        vec![id.clone()]
    );
    assert!(env
        .engine
        .container_list(&ListOptions {
            filters: json!({"bogus": ["1"]}),
            ..Default::default()
        })
        .is_err());
    let l = env
        .engine
        .container_list(&ListOptions {
            all: true,
            filters: json!({"id": [id.clone()]}),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(l[0]["Names"], json!(["/evt"]));
    assert!(
        l[0]["Status"].as_str().unwrap().starts_with("Exited (4) "),
        "{}",
        l[0]["Status"]
    );
    env.engine.container_rename(&id, "renamed").unwrap();
    assert_eq!(
        env.engine.container_inspect("renamed", false).unwrap()["Name"],
        "/renamed"
    );
    assert_eq!(
        env.engine
            .container_inspect("evt", false)
            .unwrap_err()
            .status_code(),
        404
    );
    assert_eq!(
        env.engine
            .container_rename(&id, &other[..12])
            .map_err(|e| e.status_code()),
        Ok(())
    );
    let p = env.engine.container_prune(&json!({})).unwrap();
    assert_eq!(p["ContainersDeleted"], json!([id]));
}

fn util_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 1.0
}

#[test]
fn archive_changes_export_contained() {
    let env = Env::new();
    let id = sleeper(&env, json!({}));
    let ex = env.engine.exec_create(&id, &json!({"Cmd": ["sh", "-c", "mkdir /data && echo secret > /data/f && busybox mkfifo -m 640 /data/p && ln -s /../../../../../../etc /evil && rm /bin/yes"]})).unwrap();
    read_all(
        env.engine
            .exec_start(ex["Id"].as_str().unwrap(), false, false)
            .unwrap()
            .unwrap()
            .output,
    );
    let ch = env.engine.container_changes(&id).unwrap();
    let has = |p: &str, k: i64| {
        ch.as_array()
            .unwrap()
            .iter()
            .any(|c| c["Path"] == p && c["Kind"] == k)
    };
    assert!(
        has("/data", 1) && has("/data/f", 1) && has("/bin/yes", 2) && has("/bin", 0),
        "{ch}"
    );
    // stat + get
    let st = env.engine.container_archive_stat(&id, "/data").unwrap();
    assert_eq!(st["name"], "data");
    assert!(st["mode"].as_u64().unwrap() & (1 << 31) != 0);
    let mut tarb = Vec::new();
    env.engine
        .container_archive_get(&id, "/data/f", &mut tarb)
        .unwrap();
    let mut ar = tar::Archive::new(&tarb[..]);
    let mut e = ar.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(e.path().unwrap().to_str().unwrap(), "f");
    assert_eq!(String::from_utf8(read_all(&mut e)).unwrap(), "secret\n");
    // A FIFO is archived as one, as dockerd does (it was a 500).
    let mut tarb = Vec::new();
    env.engine
        .container_archive_get(&id, "/data/p", &mut tarb)
        .unwrap();
    let mut ar = tar::Archive::new(&tarb[..]);
    let e = ar.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(e.path().unwrap().to_str().unwrap(), "p");
    assert_eq!(e.header().entry_type(), tar::EntryType::Fifo);
    assert_eq!(e.header().mode().unwrap() & 0o777, 0o640);
    // CVE-2018-15664: a symlink pointing "outside" resolves inside the container root.
    let mut tarb = Vec::new();
    env.engine
        .container_archive_get(&id, "/evil/passwd", &mut tarb)
        .unwrap();
    let mut ar = tar::Archive::new(&tarb[..]);
    let mut e = ar.entries().unwrap().next().unwrap().unwrap();
    let content = String::from_utf8(read_all(&mut e)).unwrap();
    assert!(
        content.contains("user:x:1000"),
        "read the host's passwd: {content}"
    );
    // put, also through the symlink: lands inside the container
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    b.append_data(&mut h, "put.txt", &b"abc"[..]).unwrap();
    let data = b.into_inner().unwrap();
    env.engine
        .container_archive_put(&id, "/evil", &mut &data[..], false, false)
        .unwrap();
    assert!(!std::path::Path::new("/etc/put.txt").exists());
    let ex = env
        .engine
        .exec_create(
            &id,
            &json!({"Cmd": ["cat", "/etc/put.txt"], "AttachStdout": true}),
        )
        .unwrap();
    assert_eq!(
        demux(&read_all(
            env.engine
                .exec_start(ex["Id"].as_str().unwrap(), false, false)
                .unwrap()
                .unwrap()
                .output
        ))
        .0,
        "abc"
    );
    assert_eq!(
        env.engine
            .container_archive_stat(&id, "/nope")
            .unwrap_err()
            .status_code(),
        404
    );
    // export of a stopped container
    env.engine.container_kill(&id, None).unwrap();
    env.wait_for("exit", || env.status(&id) == "exited");
    let mut out = Vec::new();
    env.engine.container_export(&id, &mut out).unwrap();
    let mut ar = tar::Archive::new(&out[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.trim_end_matches('/') == "data/f"),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n == "bin/busybox"));
}

/// Run `cmd` in the container through exec; its stdout.
fn exec_stdout(env: &Env, id: &str, cmd: &[&str]) -> String {
    exec_stdout_as(env, id, cmd, "")
}

/// [`exec_stdout`] as `user` ("": the container's).
fn exec_stdout_as(env: &Env, id: &str, cmd: &[&str], user: &str) -> String {
    let ex = env
        .engine
        .exec_create(id, &json!({"Cmd": cmd, "User": user, "AttachStdout": true}))
        .unwrap();
    let a = env
        .engine
        .exec_start(ex["Id"].as_str().unwrap(), false, false)
        .unwrap()
        .unwrap();
    demux(&read_all(a.output)).0
}

fn is_tmpfs(p: &std::path::Path) -> bool {
    nix::sys::statfs::statfs(p)
        .map(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
        .unwrap_or(false)
}

#[test]
fn exec_root_tmpfs_stays_while_containers_run_and_goes_after() {
    let mut env = Env::new();
    // (/var/tmp, where the test's exec root is, is not a tmpfs on these hosts)
    assert!(is_tmpfs(&env.exec_root), "the exec root is a tmpfs");
    let id = sleeper(&env, json!({}));
    // The daemon goes away with a container running: its state stays.
    env.engine.shutdown();
    assert!(is_tmpfs(&env.exec_root), "kept while a container runs");
    env.reopen();
    assert_eq!(env.status(&id), "running");
    assert_eq!(
        exec_stdout(&env, &id, &["cat", "/etc/hostname"]).trim(),
        &id[..12],
        "exec after the restart"
    );
    env.engine.container_remove(&id, true, false).unwrap();
    env.engine.shutdown();
    assert!(!is_tmpfs(&env.exec_root), "unmounted once nothing runs");
    env.reopen();
    assert!(is_tmpfs(&env.exec_root), "mounted again");
}

#[test]
fn restart_policy_resumes_after_daemon_restart() {
    let mut env = Env::new();
    let id = env.create(json!({"Cmd": ["sh", "-c", "sleep 0.4; exit 1"], "HostConfig": {"RestartPolicy": {"Name": "always"}}}));
    env.engine.container_start(&id).unwrap();
    // The daemon goes away while the container runs; it exits meanwhile.
    let root = env.root.clone();
    let exec_root = env.exec_root.clone();
    drop(std::mem::replace(
        &mut env.engine,
        Engine::open(EngineConfig {
            root: root.join("unused"),
            exec_root: exec_root.join("unused"),
            insecure_registries: vec![],
            monitor_path: Some(monitor_bin()),
            exec_root_tmpfs: true,
            bridge: None,
            truthful_proc: true,
        })
        .unwrap(),
    ));
    std::thread::sleep(Duration::from_millis(800));
    env.reopen();
    env.wait_for("restarted by the new daemon", || {
        let i = env.engine.container_inspect(&id, false).unwrap();
        i["RestartCount"].as_i64().unwrap() >= 1 && i["State"]["Status"] == "running"
    });
    env.engine.container_stop(&id, Some(1), None).unwrap();
    let i = env.engine.container_inspect(&id, false).unwrap();
    assert_eq!(i["State"]["Status"], "exited");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        env.status(&id),
        "exited",
        "a stopped container is not restarted"
    );
}

#[test]
fn oom_kill_is_reported() {
    let env = Env::new();
    let mut ev = env
        .engine
        .events(None, None, &json!({"event": ["oom", "die"]}))
        .unwrap();
    let (code, _, _) = env.run(json!({"Cmd": ["sh", "-c", "tail /dev/zero"], "HostConfig": {"Memory": 8 * 1024 * 1024, "MemorySwap": 8 * 1024 * 1024}}));
    assert_eq!(code, 137);
    let mut actions = Vec::new();
    while let Ok(Some(e)) = ev.next_timeout(Duration::from_millis(300)) {
        actions.push(e["Action"].as_str().unwrap().to_string());
    }
    assert_eq!(actions, ["oom", "die"]);
}

#[test]
fn log_throughput_and_escaping() {
    let env = Env::new();
    let t = std::time::Instant::now();
    // 1M two-byte lines, plus quotes, backslashes, control and invalid UTF-8 bytes.
    let (code, out, _) = env.run(json!({"Cmd": ["sh", "-c", "yes | head -c 2000000; printf 'q\"b\\\\\\\\t\\tc\\001\\377\\n'"]}));
    let el = t.elapsed();
    assert_eq!(code, 0);
    assert_eq!(
        out.len(),
        2_000_000 + "q\"b\\\\t\tc\u{1}\u{fffd}\n".len(),
        "{:?}",
        &out[out.len().saturating_sub(30)..]
    );
    assert!(
        out.ends_with("y\nq\"b\\\\t\tc\u{1}\u{fffd}\n"),
        "{:?}",
        &out[out.len() - 30..]
    );
    eprintln!("1M log lines in {el:?}");
    assert!(el < Duration::from_secs(20), "{el:?}");
}
