//! End-to-end tests of berth-runtime as a runc-compatible binary. They need root.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test

mod common;
use common::*;
use serde_json::{json, Value};
use std::process::Command;

#[test]
fn run_exit_code_and_output() {
    let (code, out, err) = sh("echo hello; exit 7", |_| {});
    assert_eq!(code, 7, "stderr: {err}");
    assert_eq!(out, "hello\n");
}

#[test]
fn pid_namespace_makes_us_pid_1() {
    let (code, out, err) = sh("echo $$; ps | wc -l", |_| {});
    assert_eq!(code, 0, "{err}");
    let mut l = out.lines();
    assert_eq!(l.next(), Some("1"));
    // header + sh + ps + wc: nothing of the host is visible
    let n: usize = l.next().unwrap().trim().parse().unwrap();
    assert!(n <= 4, "too many processes visible: {out}");
}

#[test]
fn uts_namespace_hostname_and_domainname() {
    let (code, out, err) = sh("hostname; cat /proc/sys/kernel/domainname", |c| {
        c["hostname"] = json!("box1");
        c["domainname"] = json!("example.test");
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "box1\nexample.test\n");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "box1");
}

#[test]
fn network_namespace_has_only_lo() {
    let (code, out, err) = sh("cat /proc/net/dev | tail -n +3 | cut -d: -f1", |_| {});
    assert_eq!(code, 0, "{err}");
    let ifs: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(ifs, vec!["lo"], "{out}");
}

#[test]
fn ipc_and_mount_namespaces_differ_from_host() {
    let (code, out, err) = sh(
        "for n in ipc mnt cgroup; do readlink /proc/self/ns/$n; done",
        |_| {},
    );
    assert_eq!(code, 0, "{err}");
    let host: Vec<String> = ["ipc", "mnt", "cgroup"]
        .iter()
        .map(|n| {
            std::fs::read_link(format!("/proc/self/ns/{n}"))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for (inside, outside) in out.lines().zip(host.iter()) {
        assert_ne!(inside, outside);
    }
    assert_eq!(out.lines().count(), 3);
}

#[test]
fn user_namespace_maps_ids() {
    let b = bundle(&[
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; touch /tmp/x && stat -c %u /tmp/x",
    ]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        b.path().join("rootfs/tmp"),
        std::fs::Permissions::from_mode(0o1777),
    )
    .unwrap();
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["root"]["readonly"] = json!(false);
    });
    let o = b.run();
    let (code, out, err) = (o.status.code().unwrap(), stdout(&o), stderr(&o));
    assert_eq!(code, 0, "{err}");
    let mut l = out.lines();
    assert_eq!(l.next(), Some("0"));
    let map: Vec<&str> = l.next().unwrap().split_whitespace().collect();
    assert_eq!(map, vec!["0", "100000", "65536"]);
    assert_eq!(l.next(), Some("0"), "root inside");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(b.path().join("rootfs/tmp/x"))
            .unwrap()
            .uid(),
        100000,
        "uid 100000 on the host"
    );
    b.assert_clean();
}

#[test]
fn capabilities_exactly_as_specified() {
    let (code, out, err) = sh(
        "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status",
        |c| {
            let caps = json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
            c["process"]["capabilities"] =
                json!({"bounding": caps, "effective": caps, "permitted": caps});
        },
    );
    assert_eq!(code, 0, "{err}");
    // CHOWN=0 KILL=5 NET_BIND_SERVICE=10 -> 0x421
    for l in out.lines() {
        let (k, v) = l.split_once(':').unwrap();
        let v = v.trim();
        match k {
            "CapInh" | "CapAmb" => assert_eq!(v, "0000000000000000", "{l}"),
            _ => assert_eq!(v, "0000000000000421", "{l}"),
        }
    }
}

#[test]
fn non_root_user_and_groups_and_umask() {
    let (code, out, err) = sh("id; umask; grep CapEff /proc/self/status", |c| {
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 7], "umask": 23});
    });
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("uid=1000 gid=1001 groups=5,7"), "{out}");
    assert!(out.contains("0027"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
}

#[test]
fn masked_and_readonly_paths() {
    let script = "cat /proc/kcore | wc -c; ls /sys/firmware | wc -l; \
                  echo 1 > /proc/sys/kernel/domainname && echo WROTE; \
                  touch /sys/x 2>/dev/null && echo SYSRW; \
                  grep -E ' /proc/sys | /sys ' /proc/self/mountinfo | grep -c ' ro,'";
    let (code, out, err) = sh(script, |_| {});
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "0", "kcore must read empty: {out}");
    assert_eq!(lines[1].trim(), "0", "/sys/firmware must be empty: {out}");
    assert!(!out.contains("WROTE"), "/proc/sys must be read-only");
    assert!(!out.contains("SYSRW"), "/sys must be read-only");
    assert_eq!(lines.last().unwrap().trim(), "2", "{out}");
}

#[test]
fn default_mounts_and_devices() {
    let script = "grep -E ' /dev/pts | /dev/shm | /dev/mqueue | /proc ' /proc/self/mountinfo | wc -l; \
                  ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty | cut -c1; \
                  for l in fd stdin ptmx; do readlink /dev/$l; done; echo x > /dev/null && echo nullok; \
                  stat -c '%a' /dev/shm";
    let (code, out, err) = sh(script, |_| {});
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0].trim(), "4", "{out}");
    assert_eq!(&l[1..7], &["c"; 6], "{out}");
    assert_eq!(&l[7..10], &["/proc/self/fd", "/proc/self/fd/0", "pts/ptmx"]);
    assert_eq!(l[10], "nullok");
    assert_eq!(l[11], "1777");
}

#[test]
fn bind_mounts_file_and_dir_and_readonly_root() {
    let b = bundle(&["sh", "-c", "cat /data/hello /etc/berth-file; touch /data/new && echo DATARW; touch /root/x 2>/dev/null || echo ROOTRO"]);
    let data = b.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("hello"), "dir-bind\n").unwrap();
    std::fs::write(b.path().join("file"), "file-bind\n").unwrap();
    let (d, f) = (
        data.display().to_string(),
        b.path().join("file").display().to_string(),
    );
    b.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/data", "type": "bind", "source": d, "options": ["rbind", "rw"]}));
        m.push(json!({"destination": "/etc/berth-file", "type": "bind", "source": f, "options": ["bind", "ro"]}));
        c["root"]["readonly"] = json!(true);
    });
    let o = b.run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "dir-bind\nfile-bind\nDATARW\nROOTRO\n");
    assert!(data.join("new").exists());
    b.assert_clean();
}

#[test]
fn mount_target_symlink_cannot_escape_rootfs() {
    // The image plants /evil -> /../../../../tmp/HOST; a mount on /evil/x must land inside rootfs.
    let b = bundle(&["true"]);
    let host_target = b.path().join("HOST");
    std::fs::create_dir(&host_target).unwrap();
    std::os::unix::fs::symlink(
        format!("/../../../../../../..{}", host_target.display()),
        b.path().join("rootfs/evil"),
    )
    .unwrap();
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/evil/x", "type": "tmpfs", "source": "tmpfs"}));
    });
    let o = b.run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        !host_target.join("x").exists(),
        "mount target escaped the rootfs"
    );
    b.assert_clean();
}

#[test]
fn proc_mount_over_symlink_refused() {
    let b = bundle(&["true"]);
    std::fs::remove_dir(b.path().join("rootfs/proc")).unwrap();
    std::os::unix::fs::symlink("/tmp", b.path().join("rootfs/proc")).unwrap();
    let o = b.run();
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("symlink"), "{}", stderr(&o));
    b.assert_clean();
}

#[test]
fn only_stdio_fds_reach_the_container() {
    // Leak an fd into the runtime: it must not reach the container's process.
    let b = bundle(&["sh", "-c", "ls /proc/self/fd | wc -l"]);
    // Any regular file (the qemu v2 guest has no /etc/hostname).
    let f = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: (test) clear CLOEXEC so the fd is inherited by the runtime process.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    let o = b.run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // 0,1,2 and the directory fd ls itself opens
    assert_eq!(stdout(&o).trim(), "4", "unexpected fds in the container");
    drop(f);
}

#[test]
fn preserve_fds_passes_exactly_n() {
    let b = bundle(&["sh", "-c", "cat <&3"]);
    let (r, w) = nix::unistd::pipe().unwrap();
    nix::unistd::write(&w, b"through-fd-3\n").unwrap();
    drop(w);
    use std::os::fd::AsRawFd;
    let rfd = r.as_raw_fd();
    let mut cmd = b.cmd();
    cmd.args(["run", "--preserve-fds", "1", "--bundle"])
        .arg(b.path())
        .arg(&b.id);
    use std::os::unix::process::CommandExt;
    // SAFETY: (test) dup2 in the pre-exec child only touches the child's fd table.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(rfd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = output_via_files(cmd);
    assert_eq!(stdout(&o), "through-fd-3\n", "{}", stderr(&o));
}

#[test]
fn cwd_through_leaked_fd_is_refused() {
    for cwd in ["/proc/self/fd/3", "/proc/self/fd/4", "/proc/1/cwd"] {
        let b = bundle(&["pwd"]);
        b.edit(|c| c["process"]["cwd"] = json!(cwd));
        let o = b.run();
        assert_ne!(o.status.code(), Some(0), "cwd {cwd} accepted");
        assert!(stderr(&o).contains("process.cwd"), "{}", stderr(&o));
        b.assert_clean();
    }
}

#[test]
fn cwd_is_created_and_used() {
    let (code, out, err) = sh("pwd", |c| c["process"]["cwd"] = json!("/work/dir"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "/work/dir\n");
}

#[test]
fn env_rlimits_and_oom_score() {
    let (code, out, err) = sh("echo $FOO; ulimit -n; cat /proc/self/oom_score_adj", |c| {
        c["process"]["env"] = json!(["PATH=/bin", "FOO=bar"]);
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512}]);
        c["process"]["oomScoreAdj"] = json!(123);
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "bar\n512\n123\n");
}

#[test]
fn rlimit_above_host_hard_limit_names_the_rlimit() {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: (test) valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) };
    if cur.rlim_max == libc::RLIM_INFINITY {
        return;
    }
    let b = bundle(&["true"]);
    let want = cur.rlim_max + 1;
    b.edit(|c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": want, "hard": want}])
    });
    let o = b.run();
    // Root with CAP_SYS_RESOURCE may raise it; without it this must be a clear error.
    if o.status.code() != Some(0) {
        assert!(stderr(&o).contains("RLIMIT_NOFILE"), "{}", stderr(&o));
    }
    b.assert_clean();
}

#[test]
fn sysctl_is_applied_in_the_container() {
    let (code, out, err) = sh("cat /proc/sys/net/ipv4/ip_forward", |c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        // /proc/sys is read-only only after sysctls are written
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1\n");
}

#[test]
fn lifecycle_create_start_state_kill_delete() {
    let b = bundle(&["sleep", "1000"]);
    let pidfile = b.path().join("pid");
    let mut c = b.cmd();
    c.args(["create", "--pid-file"])
        .arg(&pidfile)
        .arg("--bundle")
        .arg(b.path())
        .arg(&b.id);
    let o = output_via_files(c);
    assert!(o.status.success(), "{}", stderr(&o));
    let st = b.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], json!(b.id));
    assert_eq!(st["bundle"], json!(b.path().canonicalize().unwrap()));
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    // The user's program has not run yet.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");
    // start twice: the second fails
    assert!(b.rt(&["start", &b.id]).status.success());
    assert_eq!(b.status(), "running");
    assert!(!b.rt(&["start", &b.id]).status.success());
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    // list shows it
    let l = b.rt(&["list", "--format", "json"]);
    let v: Value = serde_json::from_slice(&l.stdout).unwrap();
    assert_eq!(v[0]["id"], json!(b.id));
    // delete without force refuses a running container
    let d = b.rt(&["delete", &b.id]);
    assert!(!d.status.success());
    assert!(stderr(&d).contains("running"), "{}", stderr(&d));
    // PID 1 of a pid namespace ignores signals it has no handler for: TERM does nothing.
    assert!(b.rt(&["kill", &b.id, "TERM"]).status.success());
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(b.status(), "running");
    assert!(b.rt(&["kill", &b.id, "9"]).status.success());
    for _ in 0..200 {
        if b.status() == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let st = b.state();
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["pid"], 0);
    assert!(!b.rt(&["kill", &b.id, "KILL"]).status.success());
    assert!(b.rt(&["delete", &b.id]).status.success());
    b.assert_clean();
    let s = b.rt(&["state", &b.id]);
    assert!(!s.status.success());
    assert!(stderr(&s).contains("does not exist"));
}

#[test]
fn kill_by_number_and_name_and_delete_force() {
    let b = bundle(&["sleep", "1000"]);
    assert!(b.create().status.success());
    assert!(b.rt(&["start", &b.id]).status.success());
    assert!(
        b.rt(&["kill", &b.id, "0"]).status.success(),
        "signal 0 probes"
    );
    assert!(!b.rt(&["kill", &b.id, "SIGNOPE"]).status.success());
    assert!(b.rt(&["delete", "--force", &b.id]).status.success());
    b.assert_clean();
}

#[test]
fn pause_and_resume() {
    let b = bundle(&["sleep", "1000"]);
    assert!(b.create().status.success());
    assert!(b.rt(&["start", &b.id]).status.success());
    assert!(b.rt(&["pause", &b.id]).status.success());
    assert_eq!(b.status(), "paused");
    assert!(b.rt(&["resume", &b.id]).status.success());
    assert_eq!(b.status(), "running");
    assert!(b.rt(&["delete", "-f", &b.id]).status.success());
    b.assert_clean();
}

#[test]
fn delete_of_created_container() {
    let b = bundle(&["sleep", "1000"]);
    assert!(b.create().status.success());
    let pid = b.state()["pid"].as_i64().unwrap();
    assert!(b.rt(&["delete", &b.id]).status.success());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true)
    );
    b.assert_clean();
}

#[test]
fn exec_joins_namespaces_env_user_cwd() {
    let b = bundle(&["sleep", "1000"]);
    b.edit(|c| c["hostname"] = json!("exec-host"));
    assert!(b.create().status.success());
    assert!(b.rt(&["start", &b.id]).status.success());
    let o = b.rt(&["exec", "-e", "X=y", "--cwd", "/tmp", "-u", "1000:1000", &b.id, "sh", "-c", "hostname; echo $X; pwd; id -u; ps -o comm | grep -c '^sleep'; grep CapInh /proc/self/status"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "exec-host\ny\n/tmp\n1000\n1\nCapInh:\t0000000000000000\n"
    );
    let o = b.rt(&["exec", &b.id, "sh", "-c", "exit 42"]);
    assert_eq!(o.status.code(), Some(42));
    let o = b.rt(&["exec", &b.id, "nonexistent-program"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
    // --process FILE
    let pf = b.path().join("process.json");
    std::fs::write(&pf, serde_json::to_vec(&json!({"args": ["sh", "-c", "echo from-file"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}})).unwrap()).unwrap();
    let o = b.rt(&["exec", "--process", pf.to_str().unwrap(), &b.id]);
    assert_eq!(stdout(&o), "from-file\n", "{}", stderr(&o));
    // detached exec with pid file
    let pidf = b.path().join("exec.pid");
    let o = b.rt(&[
        "exec",
        "-d",
        "--pid-file",
        pidf.to_str().unwrap(),
        &b.id,
        "sleep",
        "100",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(&pidf)
            .unwrap()
            .parse::<i32>()
            .unwrap()
            > 0
    );
    let ps = b.rt(&["ps", "--format", "json", &b.id]);
    let pids: Vec<i32> = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(pids.len(), 2, "init + detached exec: {pids:?}");
    assert!(b.rt(&["delete", "-f", &b.id]).status.success());
    b.assert_clean();
}

#[test]
fn runtime_binary_not_reachable_from_container_while_created() {
    // CVE-2019-5736: while the init still runs runtime code (created state), a process in the
    // container must not be able to open /proc/<init>/exe (the runtime binary).
    let b = bundle(&["sleep", "1000"]);
    assert!(b.create().status.success());
    let o = b.rt(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "cat /proc/1/exe > /dev/null && echo OPENED || echo DENIED",
    ]);
    assert_eq!(stdout(&o).trim(), "DENIED", "{}", stderr(&o));
    assert!(b.rt(&["delete", "-f", &b.id]).status.success());
}

#[test]
fn hooks_run_in_order_with_state() {
    let b = bundle(&["true"]);
    let log = b.path().join("hooks.log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo {name} $(echo $s | grep -o '\"status\":\"[a-z]*\"') >> {}", log.display())]});
    b.edit(|c| {
        c["hooks"] = json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "createContainer": [hook("createContainer")],
            "startContainer": [json!({"path": "/bin/true"})],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        });
    });
    let o = b.run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let l = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        l,
        "prestart \"status\":\"created\"\ncreateRuntime \"status\":\"created\"\ncreateContainer \"status\":\"created\"\npoststart \"status\":\"running\"\npoststop \"status\":\"stopped\"\n"
    );
    b.assert_clean();
}

#[test]
fn hook_timeout_and_failure_abort_create() {
    let b = bundle(&["true"]);
    b.edit(|c| {
        c["hooks"] =
            json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}]})
    });
    let t = std::time::Instant::now();
    let o = b.run();
    assert_ne!(o.status.code(), Some(0));
    assert!(t.elapsed() < std::time::Duration::from_secs(4));
    assert!(
        stderr(&o).contains("createRuntime[0]") && stderr(&o).contains("timed out"),
        "{}",
        stderr(&o)
    );
    b.assert_clean();
}

#[test]
fn bad_input_is_named_and_leaves_nothing() {
    // malformed JSON
    let b = bundle(&["true"]);
    std::fs::write(
        b.path().join("config.json"),
        "{\"ociVersion\": \"1.0.0\", \"process\": {\"args\": [\"true\"], \"cwd\": 5",
    )
    .unwrap();
    let o = b.run();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("config.json"), "{}", stderr(&o));
    b.assert_clean();

    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "process.args",
            Box::new(|c: &mut Value| c["process"]["args"] = json!([])),
        ),
        (
            "root.path",
            Box::new(|c: &mut Value| c["root"]["path"] = json!("no-such-rootfs")),
        ),
        (
            "linux.namespaces",
            Box::new(|c: &mut Value| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "bogus"}))
            }),
        ),
        (
            "process.cwd",
            Box::new(|c: &mut Value| c["process"]["cwd"] = json!("relative")),
        ),
        (
            "process.capabilities",
            Box::new(|c: &mut Value| {
                c["process"]["capabilities"]["bounding"] = json!(["CAP_NOPE"])
            }),
        ),
        (
            "process.env",
            Box::new(|c: &mut Value| c["process"]["env"] = json!(["NOEQUALS"])),
        ),
        (
            "mounts",
            Box::new(|c: &mut Value| {
                c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destination": "relative/dest", "type": "tmpfs"}))
            }),
        ),
    ];
    for (field, f) in cases {
        let b = bundle(&["true"]);
        b.edit(|c| f(c));
        let o = b.run();
        assert_eq!(o.status.code(), Some(1), "{field}");
        assert!(
            stderr(&o).contains(field),
            "error for {field} does not name it: {}",
            stderr(&o)
        );
        b.assert_clean();
    }
    // a missing program is a create-time error
    let b = bundle(&["/no/such/program"]);
    let o = b.create();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no such file"), "{}", stderr(&o));
    b.assert_clean();
    // duplicate id
    let b = bundle(&["sleep", "100"]);
    assert!(b.create().status.success());
    let o = b.create();
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert!(b.rt(&["delete", "-f", &b.id]).status.success());
}

#[test]
fn json_log_format_for_containerd() {
    let b = bundle(&["true"]);
    b.edit(|c| c["process"]["args"] = json!([]));
    let log = b.path().join("log.json");
    let mut c = b.cmd();
    c.args(["--log"])
        .arg(&log)
        .args(["--log-format", "json", "run", "--bundle"])
        .arg(b.path())
        .arg(&b.id);
    let o = output_via_files(c);
    assert!(!o.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains("process.args"));
}

#[test]
fn spec_and_features() {
    let d = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args(["spec", "--rootless", "-b"])
        .arg(d.path())
        .output()
        .unwrap();
    assert!(o.status.success());
    let c: Value =
        serde_json::from_slice(&std::fs::read(d.path().join("config.json")).unwrap()).unwrap();
    assert!(c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "user"));
    let again = Command::new(BIN)
        .args(["spec", "-b"])
        .arg(d.path())
        .output()
        .unwrap();
    assert!(!again.status.success(), "spec must not overwrite");
    let f = Command::new(BIN).arg("features").output().unwrap();
    let v: Value = serde_json::from_slice(&f.stdout).unwrap();
    assert!(v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .contains(&json!("time")));
    assert!(v["linux"]["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("CAP_SYS_ADMIN")));
    let ver = Command::new(BIN).arg("--version").output().unwrap();
    assert!(stdout(&ver).starts_with("berth-runtime "));
}

#[test]
fn no_pivot_mode_works() {
    let b = bundle(&["sh", "-c", "ls /bin/busybox"]);
    let mut c = b.cmd();
    c.args(["run", "--no-pivot", "--bundle"])
        .arg(b.path())
        .arg(&b.id);
    let o = output_via_files(c);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    b.assert_clean();
}

#[test]
fn join_existing_namespace_by_path() {
    let a = bundle(&["sleep", "1000"]);
    a.edit(|c| c["hostname"] = json!("shared-uts"));
    assert!(a.create().status.success());
    let pid = a.state()["pid"].as_i64().unwrap();
    let b = bundle(&["hostname"]);
    let p = format!("/proc/{pid}/ns/uts");
    b.edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "uts" {
                ns["path"] = json!(p);
            }
        }
        c.as_object_mut().unwrap().remove("hostname");
    });
    let o = b.run();
    assert_eq!(stdout(&o), "shared-uts\n", "{}", stderr(&o));
    assert!(a.rt(&["delete", "-f", &a.id]).status.success());
}

#[test]
fn terminal_via_console_socket() {
    use std::os::unix::net::UnixListener;
    let b = bundle(&["sh", "-c", "tty; echo hi"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let sock = b.path().join("console.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        use std::os::fd::AsRawFd;
        berth_runtime::sys::recv_fd(s.as_raw_fd()).unwrap()
    });
    let mut c = b.cmd();
    c.args(["create", "--console-socket"])
        .arg(&sock)
        .arg("--bundle")
        .arg(b.path())
        .arg(&b.id);
    let o = output_via_files(c);
    assert!(o.status.success(), "{}", stderr(&o));
    let master = t.join().unwrap();
    assert!(b.rt(&["start", &b.id]).status.success());
    let mut out = Vec::new();
    let mut f = std::fs::File::from(master);
    use std::io::Read;
    let mut buf = [0u8; 1024];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&out).contains("hi") {
            break;
        }
    }
    let s = String::from_utf8_lossy(&out);
    assert!(
        s.contains("/dev/pts/0") || s.contains("/dev/console"),
        "{s}"
    );
    assert!(s.contains("hi"), "{s}");
    let _ = b.rt(&["delete", "-f", &b.id]);
}

#[test]
fn a_later_mount_over_the_cgroup_mount_stays_on_top() {
    // Mounts are made in the spec's order: a later one on the same place is on top.
    let (code, out, err) = sh("ls -A /sys/fs/cgroup | wc -l", |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/sys/fs/cgroup", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]
        }));
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "0",
        "the empty tmpfs mounted after the cgroup mount is what shows"
    );
}

#[test]
fn cgroup_namespace_rooted_at_the_container_and_own_limits_visible() {
    let (code, out, err) = sh("cat /proc/self/cgroup; ls /sys/fs/cgroup | wc -l; touch /sys/fs/cgroup/x 2>/dev/null && echo CGRW; true", |c| {
        c["linux"]["resources"]["pids"] = json!({"limit": 77});
    });
    assert_eq!(code, 0, "{err}");
    let mut lines: Vec<&str> = out.lines().collect();
    assert!(!out.contains("CGRW"), "/sys/fs/cgroup must be read-only");
    let n: usize = lines.pop().unwrap().trim().parse().unwrap();
    assert!(n >= 1, "{out}");
    for l in &lines {
        assert!(
            l.ends_with(":/"),
            "cgroup path not rooted at the container: {l}"
        );
    }
    // the container sees its own pids limit
    let (code, out, err) = sh(
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
        |c| {
            c["linux"]["resources"]["pids"] = json!({"limit": 77});
        },
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "77");
}

#[test]
fn own_session_keyring_unless_no_new_keyring() {
    let b = bundle(&[
        "sh",
        "-c",
        "grep -c _ses /proc/keys; grep _ses /proc/keys | grep -o '_ses[^ ]*'",
    ]);
    // /proc/keys is masked by default: unmask it for this check.
    b.edit(|c| {
        let m = c["linux"]["maskedPaths"].as_array_mut().unwrap();
        m.retain(|p| p != "/proc/keys");
    });
    let o = b.run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("_ses.{}", b.id)),
        "{}",
        stdout(&o)
    );
    // Keyrings outlive their last user until garbage-collected: use a fresh id.
    let id2 = format!("{}-nokeyring", b.id);
    let mut c = b.cmd();
    c.args(["run", "--no-new-keyring", "--bundle"])
        .arg(b.path())
        .arg(&id2);
    let o = output_via_files(c);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        !stdout(&o).contains(&format!("_ses.{id2}")),
        "{}",
        stdout(&o)
    );
}

#[test]
fn exec_with_terminal_over_console_socket() {
    use std::os::unix::net::UnixListener;
    let b = bundle(&["sleep", "1000"]);
    assert!(b.create().status.success());
    assert!(b.rt(&["start", &b.id]).status.success());
    let sock = b.path().join("exec-console.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        use std::os::fd::AsRawFd;
        berth_runtime::sys::recv_fd(s.as_raw_fd()).unwrap()
    });
    let o = b.rt(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        sock.to_str().unwrap(),
        &b.id,
        "sh",
        "-c",
        "tty; echo exec-tty-ok; sleep 1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let master = t.join().unwrap();
    let mut f = std::fs::File::from(master);
    use std::io::Read;
    let (mut out, mut buf) = (Vec::new(), [0u8; 512]);
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&out).contains("exec-tty-ok") {
            break;
        }
    }
    let s = String::from_utf8_lossy(&out);
    assert!(s.contains("/dev/pts/"), "{s}");
    assert!(s.contains("exec-tty-ok"), "{s}");
    assert!(b.rt(&["delete", "-f", &b.id]).status.success());
}

#[test]
fn foreground_run_with_terminal_proxies_the_pty() {
    // `run` without --console-socket proxies the terminal itself; under script(1) stdin is a tty.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: script(1) not installed");
        return;
    }
    let b = bundle(&["sh", "-c", "tty; stty size; echo term-$TERM"]);
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["env"] = json!(["PATH=/bin", "TERM=xterm"]);
    });
    let cmdline = format!(
        "{BIN} --root {} run --bundle {} {}",
        b.root.display(),
        b.path().display(),
        b.id
    );
    let o = std::process::Command::new("script")
        .args(["-qfec", &cmdline, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let s = stdout(&o);
    assert!(
        s.contains("/dev/pts/0") || s.contains("/dev/console"),
        "{s} {}",
        stderr(&o)
    );
    assert!(s.contains("term-xterm"), "{s}");
    b.assert_clean();
}

#[test]
fn time_namespace_with_boottime_offset() {
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        eprintln!("SKIP: kernel without time namespaces");
        return;
    }
    let (code, out, err) = sh("cut -d. -f1 /proc/uptime", |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
    });
    assert_eq!(code, 0, "{err}");
    let mut l = out.lines();
    let up: u64 = l.next().unwrap().trim().parse().unwrap();
    assert!(
        up >= 864000,
        "uptime {up} does not include the 10-day offset"
    );
    let host_up: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(host_up < 864000.0 || up as f64 >= host_up + 864000.0 - 5.0);
}

#[test]
fn recursive_readonly_bind_and_lsm_requests_are_honest() {
    // rro: a recursive read-only bind (mount_setattr) makes sub-mounts read-only too.
    let b = bundle(&[
        "sh",
        "-c",
        "touch /data/x 2>/dev/null && echo RW || echo RO",
    ]);
    let data = b.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let d = data.display().to_string();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/data", "type": "bind", "source": d, "options": ["rbind", "rro"]}));
    });
    let o = b.run();
    assert_eq!(stdout(&o), "RO\n", "{}", stderr(&o));
    b.assert_clean();
    // An AppArmor profile on a host without AppArmor is an error naming the field, not a
    // silent success.
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    if !lsm.contains("apparmor") {
        let b = bundle(&["true"]);
        b.edit(|c| c["process"]["apparmorProfile"] = json!("docker-default"));
        // Refused at create time, not only when the process is about to exec.
        let o = b.create();
        assert_ne!(o.status.code(), Some(0));
        assert!(stderr(&o).contains("apparmorProfile"), "{}", stderr(&o));
        b.assert_clean();
    }
}

#[test]
fn init_failure_after_start_reaches_the_container_stderr() {
    let b = bundle(&["true"]);
    b.edit(|c| c["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]}));
    let errf = b.path().join("container.stderr");
    let mut c = b.cmd();
    c.args(["create", "--bundle"]).arg(b.path()).arg(&b.id);
    let st = c
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&errf).unwrap())
        .status()
        .unwrap();
    assert!(st.success());
    // `start` waits for the exec and returns the init's error (conformance.rs); the
    // container's stderr hears of it too, for a caller that released it without waiting.
    let o = b.rt(&["start", &b.id]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("startContainer[0]"), "{}", stderr(&o));
    let mut text = String::new();
    for _ in 0..200 {
        text = std::fs::read_to_string(&errf).unwrap();
        if text.contains("startContainer") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(text.contains("startContainer[0]"), "{text:?}");
    assert!(b.rt(&["delete", "-f", &b.id]).status.success());
    b.assert_clean();
}
