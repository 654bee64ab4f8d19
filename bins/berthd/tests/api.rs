//! HTTP-level behaviour of a real berthd process: ping headers, version negotiation, errors,
//! malformed and oversized bodies, filters in both forms, socket handling, shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test

mod common;
use common::*;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn assert_common_headers(r: &Resp) {
    assert_eq!(r.header("Api-Version"), Some("1.47"), "{:?}", r.headers);
    assert!(
        r.header("Server").unwrap_or("").starts_with("berth/"),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("Ostype"), Some("linux"));
}

#[test]
fn ping_get_and_head_versioned_and_not() {
    let d = Daemon::start();
    for path in ["/_ping", "/v1.24/_ping", "/v1.47/_ping"] {
        let r = d.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.text(), "OK");
        assert_common_headers(&r);
        assert_eq!(r.header("Docker-Experimental"), Some("false"));
        assert_eq!(r.header("Builder-Version"), Some("1"));
        assert_eq!(r.header("Pragma"), Some("no-cache"));
        assert!(r.header("Cache-Control").unwrap_or("").contains("no-cache"));
        let h = d.req("HEAD", path, b"");
        assert_eq!(h.status, 200);
        assert!(h.body.is_empty());
        assert_eq!(h.header("Api-Version"), Some("1.47"));
    }
}

#[test]
fn version_negotiation() {
    let d = Daemon::start();
    let r = d.get("/v1.50/version");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.message(),
        "client version 1.50 is too new. Maximum supported API version is 1.47"
    );
    assert_common_headers(&r);
    let r = d.get("/v1.23/info");
    assert_eq!(r.status, 400);
    assert!(r.message().contains("too old"), "{}", r.message());
    for p in [
        "/version",
        "/v1.24/version",
        "/v1.41/version",
        "/v1.47/version",
    ] {
        let r = d.get(p);
        assert_eq!(r.status, 200, "{p}: {}", r.text());
        let v = r.json();
        assert_eq!(v["ApiVersion"], "1.47");
        assert_eq!(v["MinAPIVersion"], "1.24");
        assert_eq!(v["Os"], "linux");
        assert!(v["Version"].as_str().is_some_and(|s| !s.is_empty()));
    }
}

#[test]
fn errors_are_json_with_docker_codes() {
    let d = Daemon::start();
    let r = d.get("/v1.47/nothing/here");
    assert_eq!(r.status, 404);
    assert_eq!(r.message(), "page not found");
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_common_headers(&r);
    let r = d.get("/v1.47/containers/doesnotexist/json");
    assert_eq!(r.status, 404);
    assert!(r.message().contains("doesnotexist"), "{}", r.message());
    let r = d.get("/v1.47/images/no/such/image:tag/json");
    assert_eq!(r.status, 404, "{}", r.text());
    let r = d.get("/v1.47/containers/json?limit=abc");
    assert_eq!(r.status, 400);
    assert!(r.message().contains("limit"), "{}", r.message());
    let r = d.req("POST", "/v1.47/build", b"");
    assert_eq!(r.status, 501);
    assert!(r.message().contains("not implemented"), "{}", r.message());
}

#[test]
fn malformed_json_is_400_and_daemon_keeps_serving() {
    let d = Daemon::start();
    for (body, needle) in [
        (&b"{not json"[..], "invalid JSON"),
        (&b"[1,2,3]"[..], "expected an object"),
        (&b"\"str\""[..], "expected an object"),
        (&b"{\"Image\": 5, \"Cmd\": {\"x\": []}}"[..], ""),
        (&[0xff, 0xfe, 0x00][..], "invalid JSON"),
    ] {
        let r = d.req("POST", "/v1.47/containers/create", body);
        assert!(
            r.status == 400 || r.status == 404,
            "{} for {:?}: {}",
            r.status,
            body,
            r.text()
        );
        if r.status == 400 {
            assert!(r.message().contains(needle), "{:?}: {}", body, r.message());
        }
        assert_eq!(d.get("/_ping").status, 200);
    }
    let r = d.req("POST", "/v1.47/containers/x/exec", b"{\"Cmd\":");
    assert_eq!(r.status, 400, "{}", r.text());
    // A request that is not HTTP at all.
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.write_all(b"\x00\x01garbage\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.read_to_end(&mut buf);
    assert_eq!(d.get("/_ping").status, 200);
}

#[test]
fn oversized_body_is_refused_and_daemon_keeps_serving() {
    let d = Daemon::start();
    let mut big = Vec::with_capacity(65 << 20);
    big.extend_from_slice(b"{\"Image\":\"");
    big.resize((65 << 20) - 2, b'a');
    big.extend_from_slice(b"\"}");
    let r = d.req("POST", "/v1.47/containers/create", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.message().contains("limit"), "{}", r.message());
    assert_eq!(d.get("/_ping").status, 200);
    // Filters that are not JSON.
    let r = d.get("/v1.47/containers/json?filters=%7Bnope");
    assert_eq!(r.status, 400);
    assert!(r.message().contains("filters"), "{}", r.message());
}

#[test]
fn filters_in_map_and_list_form_agree() {
    let d = Daemon::start();
    import_busybox(&d, "filtertest:1");
    let mk = |name: &str, label: &str| {
        let r = d.post_json(
            &format!("/v1.47/containers/create?name={name}"),
            &serde_json::json!({"Image": "filtertest:1", "Cmd": ["true"], "Labels": {"app": label}}),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["Id"].as_str().unwrap().to_string()
    };
    let a = mk("fa", "one");
    let _b = mk("fb", "two");
    let enc = |s: &str| {
        s.replace('{', "%7B")
            .replace('}', "%7D")
            .replace('"', "%22")
            .replace(':', "%3A")
            .replace('[', "%5B")
            .replace(']', "%5D")
            .replace('=', "%3D")
            .replace(',', "%2C")
    };
    let map = enc(r#"{"label":{"app=one":true}}"#);
    let list = enc(r#"{"label":["app=one"]}"#);
    let r1 = d.get(&format!("/v1.47/containers/json?all=1&filters={map}"));
    let r2 = d.get(&format!("/v1.47/containers/json?all=1&filters={list}"));
    assert_eq!(r1.status, 200, "{}", r1.text());
    assert_eq!(r2.status, 200, "{}", r2.text());
    let ids = |r: &Resp| {
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["Id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&r1), vec![a.clone()]);
    assert_eq!(ids(&r2), vec![a]);
    let all = d.get("/v1.47/containers/json?all=1");
    assert_eq!(ids(&all).len(), 2);
    for n in ["fa", "fb"] {
        assert_eq!(
            d.req("DELETE", &format!("/v1.47/containers/{n}?force=1"), b"")
                .status,
            204
        );
    }
}

#[test]
fn socket_mode_stale_socket_pidfile_and_sigterm() {
    // A stale socket file from a dead daemon is replaced.
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(std::fs::metadata(&stale).unwrap().file_type().is_socket());
    let mut d = Daemon::start_with(&["-H", &format!("unix://{}", stale.display())]);
    for s in [&d.sock, &stale] {
        let md = std::fs::metadata(s).unwrap();
        assert_eq!(md.mode() & 0o777, 0o660, "{}", s.display());
        assert_eq!(request(s, "GET", "/_ping", &[], b"").status, 200);
    }
    let pid = std::fs::read_to_string(d.dir.path().join("berthd.pid")).unwrap();
    assert_eq!(pid.trim(), d.child.id().to_string());
    // A second daemon on the same socket refuses to start.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berthd"))
        .args(["-H", &format!("unix://{}", d.sock.display())])
        .arg("--root")
        .arg(d.dir.path().join("root2"))
        .arg("--exec-root")
        .arg(d.dir.path().join("exec2"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already listening"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(d.get("/_ping").status, 200);
    let st = d.terminate();
    assert!(st.success(), "{st}: {}", d.log());
    assert!(!d.sock.exists());
    assert!(!stale.exists());
    assert!(!d.dir.path().join("berthd.pid").exists());
}

#[test]
fn bad_flags_are_reported() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berthd"))
        .args(["-H", "http://x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid host"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berthd"))
        .args(["--group", "no-such-group-xyz"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-group-xyz"));
}

#[test]
fn sigterm_leaves_containers_running_and_restart_finds_them() {
    let mut d = Daemon::start();
    import_busybox(&d, "live:1");
    let r = d.post_json(
        "/v1.47/containers/create?name=live1",
        &serde_json::json!({"Image": "live:1", "Cmd": ["sleep", "60"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_string();
    assert_eq!(
        d.req("POST", &format!("/v1.47/containers/{id}/start"), b"")
            .status,
        204
    );
    let pid = d.get(&format!("/v1.47/containers/{id}/json")).json()["State"]["Pid"]
        .as_i64()
        .unwrap();
    assert!(pid > 0);
    d.restart();
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "container process {pid} died with the daemon"
    );
    let v = d.get(&format!("/v1.47/containers/{id}/json")).json();
    assert_eq!(v["State"]["Running"], true, "{v}");
    assert_eq!(v["State"]["Pid"].as_i64(), Some(pid));
    let listed = d.get("/v1.47/containers/json").json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["Id"] == id.as_str()),
        "{listed}"
    );
    assert_eq!(
        d.req("DELETE", &format!("/v1.47/containers/{id}?force=1"), b"")
            .status,
        204
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true)
    );
}

#[test]
fn hostile_requests_never_take_the_daemon_down() {
    let d = Daemon::start();
    let long = "a".repeat(70_000);
    let paths = [
        "/v1.47/containers/%00/json".to_string(),
        "/v1.47/containers/%ff%fe/json".to_string(),
        "/v1.47/containers/..%2F..%2Fetc/json".to_string(),
        format!("/v1.47/containers/{long}/json"),
        "/v99999999999999999999.1/info".to_string(),
        "/v1./info".to_string(),
        "/v1.47/containers/json?filters=%FF%FE".to_string(),
        "/v1.47/containers/json?filters=%7B%22label%22%3A%7B%22a%22%3A1%7D%7D".to_string(),
        "/v1.47/containers/json?limit=99999999999999999999999".to_string(),
        "/v1.47/containers/json?limit=-5&all=%".to_string(),
        "/v1.47/events?since=abc".to_string(),
        "/v1.47/events?since=1e400".to_string(),
        "/v1.47/images/json?filters=[]".to_string(),
        "/v1.47/images//json".to_string(),
        "/v1.47/images/%2F%2F%2F/json".to_string(),
        "/v1.47/exec/x/resize?h=70000&w=1".to_string(),
        "/v1.47/containers/x/resize?h=-1&w=1".to_string(),
        "/v1.47/containers/x/logs?stdout=1&since=-1".to_string(),
        "//////".to_string(),
    ];
    for p in &paths {
        for m in ["GET", "POST", "HEAD", "DELETE", "PUT"] {
            let r = request(&d.sock, m, p, &[], b"{}");
            assert!(
                r.status >= 200 && r.status != 500 || r.status == 404,
                "{m} {p}: {} {}",
                r.status,
                r.text()
            );
        }
    }
    for auth in ["", "e30", "%%%", "eyJ1c2VybmFtZSI6MX0", &"A".repeat(10_000)] {
        let r = request(
            &d.sock,
            "POST",
            "/v1.47/images/nosuch/push",
            &[("X-Registry-Auth", auth)],
            b"",
        );
        assert!(
            r.status < 500 || r.status == 500 && !r.text().is_empty(),
            "{auth}: {}",
            r.status
        );
    }
    // An absurd header block and a truncated request.
    let mut s = UnixStream::connect(&d.sock).unwrap();
    let _ = s.write_all(
        format!(
            "GET /_ping HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "b".repeat(2 << 20)
        )
        .as_bytes(),
    );
    drop(s);
    let mut s = UnixStream::connect(&d.sock).unwrap();
    let _ =
        s.write_all(b"POST /v1.47/containers/create HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"Ima");
    drop(s);
    let r = d.get("/_ping");
    assert_eq!(r.status, 200, "{}", d.log());
    let r = d.get("/v1.47/version");
    assert_eq!(r.status, 200);
}

#[test]
fn group_option_sets_the_socket_group() {
    let d = Daemon::start_with(&["--group", "adm"]);
    let want = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("adm:x:")
                .and_then(|r| r.split(':').next())
                .and_then(|g| g.parse::<u32>().ok())
        })
        .expect("group adm in /etc/group");
    let md = std::fs::metadata(&d.sock).unwrap();
    assert_eq!(md.gid(), want);
    assert_eq!(md.mode() & 0o777, 0o660);
    let d2 = Daemon::start_with(&["-G", "4"]);
    assert_eq!(std::fs::metadata(&d2.sock).unwrap().gid(), 4);
}

/// f_type of the filesystem at `p` (statfs).
fn fs_type(p: &std::path::Path) -> i64 {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a zeroed statfs is a valid output buffer; c is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers for the duration of the call.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    assert_eq!(rc, 0, "statfs {}", p.display());
    st.f_type as i64
}

#[test]
fn exec_root_is_a_tmpfs_gone_at_a_quick_stop_even_with_the_socket_and_pid_file_inside() {
    // berthd's default layout: /run/berth/berth.sock inside the exec root /run/berth (on a
    // host whose /run is no tmpfs, like /tmp here, berthd mounts one there).
    const TMPFS: i64 = 0x0102_1994;
    let dir = tempfile::Builder::new()
        .prefix("berthd-test")
        .tempdir_in("/tmp")
        .unwrap();
    let exec = dir.path().join("exec");
    let sock = exec.join("berth.sock");
    assert_ne!(
        fs_type(dir.path()),
        TMPFS,
        "the test needs a /tmp that is no tmpfs"
    );
    // (declared first: dropped last, after the daemon is gone)
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            if fs_type(&self.0) == TMPFS {
                let c = std::ffi::CString::new(self.0.as_os_str().as_encoded_bytes()).unwrap();
                // SAFETY: umount2 of our own test mount, NUL-terminated path.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
    let _unmount = Unmount(exec.clone());
    // A failed assertion must not leave the daemon running.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_berthd"))
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--exec-root")
        .arg(&exec)
        .arg("--pidfile")
        .arg(exec.join("berthd.pid"))
        .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
        .spawn()
        .unwrap();
    let mut child = Reap(child);
    let t = std::time::Instant::now();
    while UnixStream::connect(&sock).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "berthd did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fs_type(&exec), TMPFS, "the exec root is a tmpfs");
    // The pid file in it (setup.sh's /run/berth/berthd.pid) is on the tmpfs, not under it.
    assert_eq!(
        std::fs::read_to_string(exec.join("berthd.pid"))
            .unwrap_or_default()
            .trim(),
        child.0.id().to_string()
    );
    assert_eq!(request(&sock, "GET", "/_ping", &[], b"").status, 200);
    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let t = std::time::Instant::now();
    let st = child.0.wait().unwrap();
    assert!(st.success(), "{st}");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "stopping took {:?} (the socket kept the tmpfs busy?)",
        t.elapsed()
    );
    assert_ne!(
        fs_type(&exec),
        TMPFS,
        "nothing runs: the tmpfs is unmounted at the stop"
    );
}

/// A second daemon on the root or the exec root of a running one is refused before it touches
/// anything (its start-up clean-up would remove the first one's ready network namespaces).
#[test]
fn second_daemon_on_the_same_roots_is_refused() {
    let d = Daemon::start();
    let pid = d.child.id().to_string();
    let dir = d.dir.path();
    for (root, exec) in [
        (dir.join("root"), dir.join("other-exec")),
        (dir.join("other-root"), dir.join("exec")),
    ] {
        let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_berthd"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("second.sock").display()))
            .arg("--root")
            .arg(&root)
            .arg("--exec-root")
            .arg(&exec)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Refused at once; a daemon still running after a while was not refused.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while second.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if second.try_wait().unwrap().is_none() {
            // SAFETY: signalling the child this test started, by pid.
            unsafe { libc::kill(second.id() as i32, libc::SIGTERM) };
        }
        let out = second.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "second daemon started: {err}");
        assert!(
            err.contains(&format!("in use by another berthd (pid {pid}")),
            "{err}"
        );
        assert!(!dir.join("second.sock").exists());
    }
    // The first one is unharmed.
    assert_eq!(d.get("/_ping").status, 200);
}
