//! End-to-end container lifecycle through the engine (root).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use berth_engine::*;
use common::*;
use serde_json::json;
use std::io::Write;
use std::time::{Duration, Instant};

#[test]
fn run_echo_and_exit_codes() {
    let env = Env::new();
    let (code, out, _) = env.run(json!({"Cmd": ["echo", "hi"]}));
    assert_eq!(code, 0);
    assert_eq!(out, "hi\n");
    let (code, _, err) = env.run(json!({"Cmd": ["sh", "-c", "echo oops >&2; exit 3"]}));
    assert_eq!(code, 3);
    assert_eq!(err, "oops\n");
    // Image CMD ("sh") is used when none is given: sh with no stdin exits 0.
    let (code, _, _) = env.run(json!({}));
    assert_eq!(code, 0);
}

#[test]
fn env_workdir_user_hostname() {
    let env = Env::new();
    let (code, out, err) = env.run(json!({
        "Cmd": ["sh", "-c", "echo $FOO $PATH; pwd; id; hostname; cat /etc/hostname"],
        "Env": ["FOO=bar"], "WorkingDir": "/work/deep", "User": "user", "Hostname": "box1"
    }));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "bar /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    assert_eq!(lines[1], "/work/deep");
    assert!(
        lines[2].starts_with("uid=1000(user) gid=1000(user)") && lines[2].contains("50(staff)"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "box1");
    assert_eq!(lines[4], "box1");
    let (_, out, _) = env.run(json!({"Cmd": ["id"], "User": "65534:50"}));
    assert!(out.starts_with("uid=65534(nobody) gid=50(staff)"), "{out}");
    // A command that does not exist: start fails, the exit code is Docker's 127.
    let id = env.create(json!({"Cmd": ["/no/such/cmd"]}));
    let w = env
        .engine
        .container_wait(&id, WaitCondition::NextExit)
        .unwrap();
    let e = env.engine.container_start(&id).unwrap_err();
    assert!(e.to_string().contains("/no/such/cmd"), "{e}");
    let r = w.wait();
    assert_eq!(r.status_code, 127);
    assert!(r.error.is_some());
    // Unknown user: a clear error at start.
    let id = env.create(json!({"Cmd": ["id"], "User": "ghost"}));
    let e = env.engine.container_start(&id).unwrap_err();
    assert!(e.to_string().contains("ghost"), "{e}");
}

#[test]
fn security_defaults_and_options() {
    let env = Env::new();
    let (_, out, _) = env.run(
        json!({"Cmd": ["sh", "-c", "grep -E '^(Seccomp|CapEff|NoNewPrivs):' /proc/self/status"]}),
    );
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    let (_, out, _) = env.run(json!({"Cmd": ["sh", "-c", "grep -E '^(Seccomp|CapEff):' /proc/self/status; ls /dev"], "HostConfig": {"Privileged": true}}));
    assert!(out.contains("Seccomp:\t0"), "{out}");
    // --privileged exposes the host's devices (e.g. the VM's disk).
    let host_disk = std::fs::read_dir("/dev").unwrap().flatten().find(|e| {
        use std::os::unix::fs::FileTypeExt;
        e.file_type().map(|t| t.is_block_device()).unwrap_or(false)
    });
    if let Some(d) = host_disk {
        assert!(
            out.lines().any(|l| l == d.file_name().to_str().unwrap()),
            "{out}"
        );
    }
    let (_, out, _) = env.run(json!({"Cmd": ["sh", "-c", "grep -E '^(CapEff|NoNewPrivs):' /proc/self/status"], "HostConfig": {"CapDrop": ["ALL"], "CapAdd": ["NET_ADMIN"], "SecurityOpt": ["no-new-privileges"]}}));
    assert!(out.contains("CapEff:\t0000000000001000"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    let (code, _, err) =
        env.run(json!({"Cmd": ["touch", "/x"], "HostConfig": {"ReadonlyRootfs": true}}));
    assert_ne!(code, 0);
    assert!(err.contains("Read-only"), "{err}");
    let (_, out, _) = env.run(json!({"Cmd": ["sh", "-c", "cat /proc/kcore | wc -c; ls /proc/sys >/dev/null && touch /proc/sys/x 2>&1; df -k /dev/shm | tail -1"]}));
    assert!(out.starts_with("0\n"), "{out}");
    assert!(out.contains("65536"), "shm 64M: {out}");
}

#[test]
fn errors_are_docker_shaped() {
    let env = Env::new();
    let e = env.engine.container_inspect("nope", false).unwrap_err();
    assert_eq!(
        (e.status_code(), e.to_string()),
        (404, "No such container: nope".to_string())
    );
    let e = env
        .engine
        .container_create(None, &json!({"Image": "ghost"}))
        .unwrap_err();
    assert_eq!(
        (e.status_code(), e.to_string()),
        (404, "No such image: ghost:latest".to_string())
    );
    let id = env
        .engine
        .container_create(Some("web"), &json!({"Image": "busybox", "Cmd": ["true"]}))
        .unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let e = env
        .engine
        .container_create(Some("web"), &json!({"Image": "busybox"}))
        .unwrap_err();
    assert_eq!(e.status_code(), 409);
    assert!(
        e.to_string().contains(&format!(
            "The container name \"/web\" is already in use by container \"{id}\""
        )),
        "{e}"
    );
    let e = env
        .engine
        .container_create(
            None,
            &json!({"Image": "busybox", "HostConfig": {"NetworkMode": "bridge"}}),
        )
        .unwrap_err();
    // (This engine has no bridge network: as dockerd for a network it does not have.)
    assert_eq!(e.status_code(), 404);
    assert!(e.to_string().contains("network bridge not found"), "{e}");
    let e = env.engine.container_create(None, &json!({"Image": "busybox", "HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 1i64 << 40}]}})).unwrap_err();
    assert!(e.to_string().contains("nofile"), "{e}");
    let e = env
        .engine
        .container_create(
            None,
            &json!({"Image": "busybox", "HostConfig": {"Binds": ["./relative:/x"]}}),
        )
        .unwrap_err();
    assert_eq!(e.status_code(), 400);
    let e = env
        .engine
        .container_create(Some("a b"), &json!({"Image": "busybox"}))
        .unwrap_err();
    assert_eq!(e.status_code(), 400);
    // Default network "default" (docker CLI) behaves as none: only lo.
    let (_, out, _) =
        env.run(json!({"Cmd": ["ls", "/sys/class/net"], "HostConfig": {"NetworkMode": "default"}}));
    assert_eq!(out.trim(), "lo");
    assert!(matches!(
        env.engine.container_stop(&id, None, None),
        Err(Error::NotModified)
    ));
}

#[test]
fn attach_before_start_and_stdin() {
    let env = Env::new();
    // docker run: attach, wait, start.
    let id = env.create(json!({"Cmd": ["sh", "-c", "echo out; echo err >&2"], "AttachStdout": true, "AttachStderr": true}));
    let a = env
        .engine
        .container_attach(
            &id,
            &AttachOptions {
                stdout: true,
                stderr: true,
                stream: true,
                ..Default::default()
            },
        )
        .unwrap();
    let w = env
        .engine
        .container_wait(&id, WaitCondition::NextExit)
        .unwrap();
    let reader = std::thread::spawn(move || read_all(a.output));
    env.engine.container_start(&id).unwrap();
    assert_eq!(w.wait().status_code, 0);
    let bytes = reader.join().unwrap();
    assert_eq!(demux(&bytes), ("out\n".to_string(), "err\n".to_string()));
    // stdin (docker run -i): cat echoes, closes at EOF.
    let id = env
        .create(json!({"Cmd": ["cat"], "OpenStdin": true, "StdinOnce": true, "AttachStdin": true}));
    let a = env
        .engine
        .container_attach(
            &id,
            &AttachOptions {
                stdin: true,
                stdout: true,
                stderr: true,
                stream: true,
                ..Default::default()
            },
        )
        .unwrap();
    let w = env
        .engine
        .container_wait(&id, WaitCondition::NextExit)
        .unwrap();
    let (out, input) = a.split();
    let reader = std::thread::spawn(move || read_all(out));
    env.engine.container_start(&id).unwrap();
    let mut input = input.expect("stdin");
    // Without a TTY the detach keys (ctrl-p ctrl-q) pass through as data.
    input.write_all(b"hello\x10\x11\n").unwrap();
    input.close().unwrap();
    assert_eq!(w.wait().status_code, 0);
    assert_eq!(demux(&reader.join().unwrap()).0, "hello\x10\x11\n");
}

#[test]
fn tty_container_raw_output_and_resize() {
    let env = Env::new();
    let id = env.create(json!({"Cmd": ["sh", "-c", "sleep 0.3; stty size; tty"], "Tty": true}));
    let a = env
        .engine
        .container_attach(
            &id,
            &AttachOptions {
                stdout: true,
                stderr: true,
                stream: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(a.tty);
    let reader = std::thread::spawn(move || read_all(a.output));
    let w = env
        .engine
        .container_wait(&id, WaitCondition::NextExit)
        .unwrap();
    env.engine.container_start(&id).unwrap();
    env.engine.container_resize(&id, 33, 101).unwrap();
    assert_eq!(w.wait().status_code, 0);
    let out = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    assert!(out.contains("33 101"), "{out:?}");
    assert!(out.contains("/dev/pts/0"), "{out:?}");
    let (logs, _) = env.logs(&id);
    assert!(
        logs.contains("33 101"),
        "tty output logged raw as stdout: {logs:?}"
    );
}

#[test]
fn init_reaper_is_pid1() {
    let env = Env::new();
    let (code, out, err) = env.run(json!({"Cmd": ["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 7"], "HostConfig": {"Init": true}}));
    assert_eq!(code, 7, "{err}");
    assert!(out.starts_with("/sbin/docker-init -- sh"), "{out:?}");
}

#[test]
fn stop_timeout_kills_and_graceful_stop() {
    let env = Env::new();
    let id = env.create(
        json!({"Cmd": ["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"]}),
    );
    env.engine.container_start(&id).unwrap();
    env.wait_for("ready", || env.logs(&id).0.contains("ready"));
    let t = Instant::now();
    env.engine.container_stop(&id, Some(1), None).unwrap();
    let el = t.elapsed();
    assert!(
        el >= Duration::from_millis(900) && el < Duration::from_secs(8),
        "{el:?}"
    );
    let i = env.engine.container_inspect(&id, false).unwrap();
    assert_eq!(i["State"]["Status"], "exited");
    assert_eq!(i["State"]["ExitCode"], 137);
    // Graceful: the process handles SIGTERM.
    let id = env.create(json!({"Cmd": ["sh", "-c", "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done"]}));
    env.engine.container_start(&id).unwrap();
    env.wait_for("ready", || env.logs(&id).0.contains("ready"));
    let t = Instant::now();
    env.engine.container_stop(&id, Some(10), None).unwrap();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(
        env.engine.container_inspect(&id, false).unwrap()["State"]["ExitCode"],
        0
    );
    // Restart brings it back.
    env.engine.container_restart(&id, Some(1), None).unwrap();
    assert_eq!(env.status(&id), "running");
    env.engine.container_kill(&id, Some("KILL")).unwrap();
    env.wait_for("exit", || env.status(&id) == "exited");
    let e = env.engine.container_kill(&id, None).unwrap_err();
    assert_eq!(e.status_code(), 409);
}

#[test]
fn restart_policy_on_failure() {
    let env = Env::new();
    let id = env.create(json!({"Cmd": ["sh", "-c", "echo run; exit 2"], "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}}));
    env.engine.container_start(&id).unwrap();
    env.wait_for("2 restarts then exited", || {
        let i = env.engine.container_inspect(&id, false).unwrap();
        i["RestartCount"] == 2 && i["State"]["Status"] == "exited"
    });
    std::thread::sleep(Duration::from_millis(600));
    let i = env.engine.container_inspect(&id, false).unwrap();
    assert_eq!(i["RestartCount"], 2);
    assert_eq!(i["State"]["ExitCode"], 2);
    assert_eq!(env.logs(&id).0, "run\nrun\nrun\n");
    // AutoRemove
    let id = env.create(json!({"Cmd": ["true"], "HostConfig": {"AutoRemove": true}}));
    let w = env
        .engine
        .container_wait(&id, WaitCondition::Removed)
        .unwrap();
    env.engine.container_start(&id).unwrap();
    assert_eq!(w.wait().status_code, 0);
    assert_eq!(
        env.engine
            .container_inspect(&id, false)
            .unwrap_err()
            .status_code(),
        404
    );
}

/// `docker run [--rm] IMG nosuchcmd`: the start fails, the waiters get Docker's 127 (126 for a
/// file that cannot be executed), and an AutoRemove container is removed so a
/// `condition=removed` wait answers instead of hanging.
#[test]
fn failed_start_exit_codes_and_auto_remove() {
    let env = Env::new();
    for (cmd, want) in [("no-such-command-xyz", 127), ("/etc/passwd", 126)] {
        // Without AutoRemove: the container stays, inspect shows the exit code.
        let id = env.create(json!({"Cmd": [cmd]}));
        let w = env
            .engine
            .container_wait(&id, WaitCondition::NextExit)
            .unwrap();
        let e = env.engine.container_start(&id).unwrap_err();
        assert!(e.to_string().contains(cmd), "{e}");
        let r = w.wait();
        assert_eq!(r.status_code, want, "{cmd}: {r:?}");
        assert!(r.error.is_some_and(|m| m.contains(cmd)), "{cmd}");
        let j = env.engine.container_inspect(&id, false).unwrap();
        assert_eq!(j["State"]["ExitCode"], json!(want), "{j}");
        assert_ne!(j["State"]["Running"], json!(true));
        env.engine.container_remove(&id, true, false).unwrap();

        // With AutoRemove: the removed-wait answers promptly and the container is gone.
        let id = env.create(json!({"Cmd": [cmd], "HostConfig": {"AutoRemove": true}}));
        let w = env
            .engine
            .container_wait(&id, WaitCondition::Removed)
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(w.wait()).unwrap());
        assert!(env.engine.container_start(&id).is_err());
        let r = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("removed-wait must answer after a failed start");
        assert_eq!(r.status_code, want, "{cmd}: {r:?}");
        let e = env.engine.container_inspect(&id, false).unwrap_err();
        assert_eq!(e.status_code(), 404);
    }
}

/// `docker commit C repo:tag` then `docker run --rm repo:tag cat /file-written-in-C`.
#[test]
fn commit_container_changes_as_image() {
    let env = Env::new();
    let id = env.create(json!({
        "Cmd": ["sh", "-c", "echo committed-data > /made-in-c; rm /bin/true"],
        "Env": ["FOO=bar"]
    }));
    let w = env
        .engine
        .container_wait(&id, WaitCondition::NextExit)
        .unwrap();
    env.engine.container_start(&id).unwrap();
    assert_eq!(w.wait().status_code, 0);
    let r = env
        .engine
        .container_commit(
            &id,
            &CommitOptions {
                repo: Some("snap/shot".into()),
                tag: Some("v1".into()),
                comment: Some("my comment".into()),
                author: Some("me".into()),
                changes: vec!["CMD [\"cat\", \"/made-in-c\"]".into(), "ENV BAZ=1".into()],
                config: json!({}),
            },
        )
        .unwrap();
    let img_id = r["Id"].as_str().unwrap().to_string();
    assert!(img_id.starts_with("sha256:"), "{r}");
    let j = env.engine.image_inspect("snap/shot:v1").unwrap();
    assert_eq!(j["Id"], json!(img_id));
    assert_eq!(j["Comment"], json!("my comment"), "{j}");
    assert_eq!(j["Author"], json!("me"), "{j}");
    let h = env.engine.image_history("snap/shot:v1").unwrap();
    assert_eq!(h[0]["Comment"], json!("my comment"), "{h}");
    let envs = j["Config"]["Env"].to_string();
    assert!(envs.contains("FOO=bar") && envs.contains("BAZ=1"), "{envs}");
    // The image's CMD (from --change) reads the file written in the container.
    let (code, out, err) = env.run(json!({"Image": "snap/shot:v1"}));
    assert_eq!((code, out.as_str()), (0, "committed-data\n"), "{err}");
    // Deletions are committed too.
    let (code, _, _) = env.run(json!({"Image": "snap/shot:v1", "Cmd": ["ls", "/bin/true"]}));
    assert_ne!(code, 0);
    // Bad input names the thing at fault.
    let e = env
        .engine
        .container_commit("no-such-ctr", &CommitOptions::default())
        .unwrap_err();
    assert_eq!(e.status_code(), 404);
    let e = env
        .engine
        .container_commit(
            &id,
            &CommitOptions {
                repo: Some("Bad Repo".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.status_code(), 400, "{e}");
}

/// The rootfs the engine mounts ahead (for the image of the last create) serves only that
/// image: a create of another image gets its own rootfs, and an image removal lets go of it.
#[test]
fn rootfs_mounted_ahead_serves_its_image_only() {
    let env = Env::new();
    let ready_mounts = || -> Vec<String> {
        let root = format!("{}/containers/.tmp-pool-", env.root.display());
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&root))
            .map(|l| l.to_string())
            .collect()
    };
    let wait_ready = |what: &str| {
        let t = Instant::now();
        while ready_mounts().is_empty() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "no rootfs mounted ahead ({what})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(ready_mounts().len(), 1, "{:?}", ready_mounts());
    };
    // busybox: the next busybox create finds its rootfs mounted.
    assert_eq!(env.run(json!({"Cmd": ["true"]})).0, 0);
    wait_ready("busybox");
    // An image of its own (one more layer) while busybox's is ready.
    let id = env.create(json!({"Cmd": ["sh", "-c", "echo other > /marker"]}));
    assert_eq!(env.start_wait(&id), 0);
    env.engine
        .container_commit(
            &id,
            &CommitOptions {
                repo: Some("other".into()),
                tag: Some("v1".into()),
                ..Default::default()
            },
        )
        .unwrap();
    env.engine.container_remove(&id, true, false).unwrap();
    wait_ready("busybox again");
    let (code, out, err) = env.run(json!({"Image": "other:v1", "Cmd": ["cat", "/marker"]}));
    assert_eq!((code, out.as_str()), (0, "other\n"), "{err}");
    wait_ready("other");
    let (code, _, _) = env.run(json!({"Cmd": ["ls", "/marker"]}));
    assert_ne!(code, 0, "busybox's rootfs shows the other image's file");
    // Removing an image lets go of the rootfs mounted ahead (it may stand on its layers).
    assert_eq!(env.run(json!({"Image": "other:v1", "Cmd": ["true"]})).0, 0);
    wait_ready("other again");
    env.engine.image_remove("other:v1", false, false).unwrap();
    assert!(ready_mounts().is_empty(), "{:?}", ready_mounts());
    assert_eq!(env.run(json!({"Cmd": ["true"]})).0, 0);
}
