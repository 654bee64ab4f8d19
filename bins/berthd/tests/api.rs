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
    // Below the minimum (dockerd 20.10's, 1.12): refused, as plain text like every error at
    // API 1.23 and older.
    let r = d.get("/v1.11/info");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "client version 1.11 is too old. Minimum supported API version is 1.12, please upgrade your client to a newer version\n"
    );
    assert_common_headers(&r);
    for p in [
        "/version",
        "/v1.12/version",
        "/v1.22/version",
        "/v1.24/version",
        "/v1.41/version",
        "/v1.47/version",
    ] {
        let r = d.get(p);
        assert_eq!(r.status, 200, "{p}: {}", r.text());
        let v = r.json();
        assert_eq!(v["ApiVersion"], "1.47");
        assert_eq!(v["MinAPIVersion"], "1.12");
        assert_eq!(v["Os"], "linux");
        assert!(v["Version"].as_str().is_some_and(|s| !s.is_empty()));
    }
    for p in ["/v1.12/_ping", "/v1.22/_ping"] {
        let r = d.get(p);
        assert_eq!(r.status, 200, "{p}");
        assert_eq!(r.text(), "OK");
    }
}

/// What containers/image's `docker-daemon:` transport (skopeo, podman) does at API 1.22:
/// save an image (`GET /images/get?names=`), load one (`POST /images/load?quiet=1`, a JSON
/// stream it scans for `errorDetail`), and show an error body as it is (plain text below 1.24).
#[test]
fn api_1_22_save_load_and_plain_text_errors() {
    let d = Daemon::start();
    import_busybox(&d, "oldapi/box:1");
    let saved = d.get("/v1.22/images/get?names=oldapi%2Fbox%3A1");
    assert_eq!(saved.status, 200, "{}", saved.text());
    assert_eq!(saved.header("Content-Type"), Some("application/x-tar"));
    let names: Vec<String> = tar::Archive::new(&saved.body[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "manifest.json"), "{names:?}");
    let by_path = d.get("/v1.22/images/oldapi/box:1/get");
    assert_eq!(by_path.status, 200, "{}", by_path.text());

    let r = d.req("DELETE", "/v1.22/images/oldapi/box:1", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = d.get("/v1.22/images/oldapi/box:1/json");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.text(), "No such image: oldapi/box:1\n");

    let r = request(
        &d.sock,
        "POST",
        "/v1.22/images/load?quiet=1",
        &[("Content-Type", "application/x-tar")],
        &saved.body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("errorDetail"), "{}", r.text());
    for line in r.text().lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("load stream line {line:?}: {e}"));
    }
    let r = d.get("/v1.22/images/oldapi/box:1/json");
    assert_eq!(r.status, 200, "{}", r.text());
    // From 1.24 on errors are JSON again.
    let r = d.get("/v1.24/images/nosuch:1/json");
    assert_eq!(r.status, 404);
    assert_eq!(r.message(), "No such image: nosuch:1");
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
    // (An empty build context: a client error naming what is missing, as dockerd's.)
    let r = d.req("POST", "/v1.47/build", b"");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.message().contains("Cannot locate specified Dockerfile"),
        "{}",
        r.message()
    );
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
        .args(["--bridge", "none"]) // tests run many daemons: no shared bridge
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
        .args(["--bridge", "none"]) // tests run many daemons: no shared bridge
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
            .args(["--bridge", "none"]) // tests run many daemons: no shared bridge
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

/// Percent-encodes a `filters` JSON value for a query string.
fn enc_query(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `docker images REPO[:TAG]` (a `reference` filter) shows only the matching tags of an image
/// that has others, and no image without a matching tag: `docker images X -q | xargs docker
/// rmi` must not touch other repositories.
#[test]
fn images_reference_filter_keeps_only_matching_tags() {
    let d = Daemon::start();
    import_busybox(&d, "reftest/a:1");
    for (repo, tag) in [
        ("reftest/b", "1"),
        ("reftest/b", "2"),
        ("localhost:5000/reftest/c", "9"),
    ] {
        let r = d.req(
            "POST",
            &format!(
                "/v1.47/images/reftest%2Fa:1/tag?repo={}&tag={tag}",
                enc_query(repo)
            ),
            b"",
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    // Another image, untagged-but-for-its-own-name.
    import_busybox(&d, "other:1");
    let list = |filters: &str| -> Vec<Vec<String>> {
        let r = d.get(&format!(
            "/v1.47/images/json?filters={}",
            enc_query(filters)
        ));
        assert_eq!(r.status, 200, "{filters}: {}", r.text());
        let mut rows: Vec<Vec<String>> = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let mut t: Vec<String> = i["RepoTags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect();
                t.sort();
                t
            })
            .collect();
        rows.sort();
        rows
    };
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // The CLI's positional argument, in both filter forms.
    assert_eq!(
        list(r#"{"reference":{"reftest/a":true}}"#),
        vec![v(&["reftest/a:1"])]
    );
    assert_eq!(
        list(r#"{"reference":["reftest/a"]}"#),
        vec![v(&["reftest/a:1"])]
    );
    // A repository alone matches all its tags; repo:tag only that one.
    assert_eq!(
        list(r#"{"reference":["reftest/b"]}"#),
        vec![v(&["reftest/b:1", "reftest/b:2"])]
    );
    assert_eq!(
        list(r#"{"reference":["reftest/b:2"]}"#),
        vec![v(&["reftest/b:2"])]
    );
    // Wildcards (Go path.Match: '*' stays within a path component).
    assert_eq!(
        list(r#"{"reference":["reftest/*:1"]}"#),
        vec![v(&["reftest/a:1", "reftest/b:1"])]
    );
    assert_eq!(list(r#"{"reference":["*:1"]}"#), vec![v(&["other:1"])]);
    assert_eq!(
        list(r#"{"reference":["localhost:5000/reftest/c"]}"#),
        vec![v(&["localhost:5000/reftest/c:9"])]
    );
    // Several patterns: the union, each image once.
    assert_eq!(
        list(r#"{"reference":["reftest/a","other"]}"#),
        vec![v(&["other:1"]), v(&["reftest/a:1"])]
    );
    // No match: no image at all.
    assert!(list(r#"{"reference":["nomatch"]}"#).is_empty());
    // Without a filter every tag is shown.
    assert_eq!(
        list("{}"),
        vec![
            v(&[
                "localhost:5000/reftest/c:9",
                "reftest/a:1",
                "reftest/b:1",
                "reftest/b:2"
            ]),
            v(&["other:1"])
        ]
    );
    // The pre-1.25 `filter` parameter is a reference pattern too.
    let r = d.get("/v1.24/images/json?filter=reftest%2Fb%3A1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()[0]["RepoTags"], serde_json::json!(["reftest/b:1"]));
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    // A malformed pattern is refused.
    let r = d.get(&format!(
        "/v1.47/images/json?filters={}",
        enc_query(r#"{"reference":["reftest/["]}"#)
    ));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.message().contains("pattern"), "{}", r.message());
}

/// docker-py sends `"email": null` (from `docker login`'s config.json) in X-Registry-Auth and
/// in the /auth body; Go's decoder takes null for "empty", so must berthd.
#[test]
fn registry_auth_with_nulls_is_accepted_and_garbage_refused() {
    let d = Daemon::start();
    // {"username": "e2e", "password": "s3cret", "email": null, "serveraddress": "127.0.0.1:1"}
    let docker_py = "eyJ1c2VybmFtZSI6ICJlMmUiLCAicGFzc3dvcmQiOiAiczNjcmV0IiwgImVtYWlsIjogbnVsbCwgInNlcnZlcmFkZHJlc3MiOiAiMTI3LjAuMC4xOjEifQ==";
    // A pull from a registry nobody listens on: it fails, but not on the header.
    let r = request(
        &d.sock,
        "POST",
        "/v1.47/images/create?fromImage=127.0.0.1%3A1%2Fnone%2Fsuch&tag=1",
        &[("X-Registry-Auth", docker_py)],
        b"",
    );
    assert_ne!(r.status, 400, "{}", r.text());
    assert!(!r.text().contains("X-Registry-Auth"), "{}", r.text());
    let r = request(
        &d.sock,
        "POST",
        "/v1.47/images/nosuch:1/push",
        &[("X-Registry-Auth", docker_py)],
        b"",
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let r = d.req(
        "POST",
        "/v1.47/auth",
        br#"{"username": "e2e", "password": "s3cret", "email": null, "serveraddress": "127.0.0.1:1", "extra": 1}"#,
    );
    assert!(!r.text().contains("invalid"), "{} {}", r.status, r.text());
    // What Go refuses: not base64, not JSON, a credential of the wrong type.
    for bad in ["%%%", "bm90IGpzb24=", "eyJ1c2VybmFtZSI6NX0="] {
        let r = request(
            &d.sock,
            "POST",
            "/v1.47/images/nosuch:1/push",
            &[("X-Registry-Auth", bad)],
            b"",
        );
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(r.message().contains("X-Registry-Auth"), "{}", r.message());
    }
}

/// Sends a request with a body and reads the whole reply; the write must not fail (a client
/// that writes its body before reading sees `broken pipe` otherwise).
fn send_whole_body(
    d: &Daemon,
    method: &str,
    path: &str,
    body: &[u8],
) -> (std::io::Result<()>, Resp) {
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let written = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body));
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let resp =
        parse_response(&raw).unwrap_or_else(|| panic!("{method} {path}: no reply ({written:?})"));
    (written, resp)
}

/// An unknown route, an unimplemented one, a refused version or a request refused before its
/// upload is read: berthd still reads the body, so a client that writes all of it before
/// reading gets the JSON message rather than a broken pipe.
#[test]
fn refused_requests_still_read_the_body() {
    let d = Daemon::start();
    let body = vec![b'x'; 8 << 20];
    for (method, path, status, needle) in [
        ("POST", "/v1.47/no/such/route", 404, "page not found"),
        ("POST", "/v1.47/build?t=x", 400, "build context"),
        ("POST", "/v1.47/swarm/join", 501, "not supported"),
        (
            "PUT",
            "/v1.47/containers/nosuch/archive?path=/",
            404,
            "nosuch",
        ),
        (
            "POST",
            "/v1.47/images/create?fromSrc=http%3A%2F%2Fx",
            400,
            "not supported",
        ),
        ("POST", "/v1.99/build", 400, "too new"),
    ] {
        let (written, r) = send_whole_body(&d, method, path, &body);
        assert!(
            written.is_ok(),
            "{method} {path}: writing the body: {written:?}"
        );
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        assert!(
            r.message().contains(needle),
            "{method} {path}: {}",
            r.message()
        );
    }
    // The connection stays usable: a second request on it after a refused upload.
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let n = 1 << 20;
    s.write_all(
        format!("POST /v1.47/no/such/route HTTP/1.1\r\nHost: d\r\nContent-Length: {n}\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    s.write_all(&vec![b'x'; n]).unwrap();
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    assert!(text.contains("HTTP/1.1 200 OK"), "{text}");
    assert!(text.ends_with("OK"), "{text}");
    // A body announced far past the bound: answered, with the connection to be closed.
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(
        b"POST /v1.47/no/such/route HTTP/1.1\r\nHost: d\r\nContent-Length: 1099511627776\r\n\r\n",
    )
    .unwrap();
    s.write_all(&vec![b'x'; 1 << 20]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let r = parse_response(&raw).unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.message(), "page not found");
    assert_eq!(d.get("/_ping").status, 200);
}

/// `docker system prune` ends with a network prune: a daemon without user networks has nothing to
/// prune, and it says so.
#[test]
fn network_prune_prunes_nothing() {
    let d = Daemon::start();
    let r = d.req("POST", "/v1.47/networks/prune", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), serde_json::json!({"NetworksDeleted": []}));
    let r = d.req(
        "POST",
        &format!(
            "/v1.47/networks/prune?filters={}",
            enc_query(r#"{"until":{"24h":true},"label":{"a=b":true}}"#)
        ),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = d.req(
        "POST",
        &format!(
            "/v1.47/networks/prune?filters={}",
            enc_query(r#"{"foo":["bar"]}"#)
        ),
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.message(), "invalid filter 'foo'");
}
