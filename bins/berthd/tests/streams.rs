//! Streaming endpoints of a real berthd: wait headers before start, hijacked attach with
//! multiplexed frames, logs, events.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test

mod common;
use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

fn create(d: &Daemon, name: &str, body: serde_json::Value) -> String {
    let r = d.post_json(&format!("/v1.47/containers/create?name={name}"), &body);
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["Id"].as_str().unwrap().to_string()
}

/// Decodes Docker's multiplexed frames.
fn demux(mut b: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while b.len() >= 8 {
        let len = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        assert!(b.len() >= 8 + len, "truncated frame");
        match b[0] {
            1 => out.extend_from_slice(&b[8..8 + len]),
            2 => err.extend_from_slice(&b[8..8 + len]),
            s => panic!("unexpected stream byte {s}"),
        }
        b = &b[8 + len..];
    }
    assert!(b.is_empty(), "trailing bytes {b:?}");
    (out, err)
}

#[test]
fn wait_headers_before_start_attach_frames_logs_and_exit_code() {
    let d = Daemon::start();
    import_busybox(&d, "streamtest:1");
    let id = create(
        &d,
        "s1",
        serde_json::json!({"Image": "streamtest:1", "Cmd": ["sh", "-c", "echo out; echo err >&2; exit 7"],
            "AttachStdout": true, "AttachStderr": true}),
    );

    // Attach (hijacked) before start.
    let mut att = UnixStream::connect(&d.sock).unwrap();
    att.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    att.write_all(format!("POST /v1.47/containers/{id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n").as_bytes()).unwrap();
    let (head, mut early) = read_head(&mut att);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: tcp"), "{head}");
    assert!(
        head.contains("application/vnd.docker.multiplexed-stream"),
        "{head}"
    );

    // Wait before start: the 200 head must arrive at once.
    let mut w = UnixStream::connect(&d.sock).unwrap();
    w.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    w.write_all(format!("POST /v1.47/containers/{id}/wait?condition=next-exit HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n").as_bytes()).unwrap();
    let t = Instant::now();
    let (whead, mut wrest) = read_head(&mut w);
    assert!(whead.starts_with("HTTP/1.1 200"), "{whead}");
    assert!(t.elapsed() < Duration::from_secs(5));

    let r = d.req("POST", &format!("/v1.47/containers/{id}/start"), b"");
    assert_eq!(r.status, 204, "{}", r.text());

    // Attach output until EOF, multiplexed.
    att.shutdown(std::net::Shutdown::Write).unwrap();
    att.read_to_end(&mut early).unwrap();
    let (out, err) = demux(&early);
    assert_eq!(String::from_utf8_lossy(&out), "out\n");
    assert_eq!(String::from_utf8_lossy(&err), "err\n");

    // Wait body: the exit code.
    w.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut tmp = [0u8; 512];
    while !String::from_utf8_lossy(&dechunk(&wrest)).contains('}') {
        let n = w.read(&mut tmp).unwrap();
        assert!(n > 0);
        wrest.extend_from_slice(&tmp[..n]);
    }
    let body: serde_json::Value = serde_json::from_slice(dechunk(&wrest).trim_ascii()).unwrap();
    assert_eq!(body["StatusCode"], 7);
    assert!(body["Error"].is_null());

    // Logs, multiplexed, with tail.
    let r = d.get(&format!("/v1.47/containers/{id}/logs?stdout=1&stderr=1"));
    assert_eq!(r.status, 200);
    let (o, e) = demux(&r.body);
    assert_eq!((o.as_slice(), e.as_slice()), (&b"out\n"[..], &b"err\n"[..]));
    let r = d.get(&format!("/v1.47/containers/{id}/logs?stdout=1"));
    assert_eq!(demux(&r.body), (b"out\n".to_vec(), Vec::new()));
    let r = d.get(&format!("/v1.47/containers/{id}/logs"));
    assert_eq!(r.status, 400);
    let r = d.get(&format!("/v1.47/containers/{id}/json"));
    assert_eq!(r.json()["State"]["ExitCode"], 7);
    assert_eq!(
        d.req("DELETE", &format!("/v1.47/containers/{id}"), b"")
            .status,
        204
    );
    assert_eq!(d.get(&format!("/v1.47/containers/{id}/json")).status, 404);
}

#[test]
fn events_stream_reports_container_lifecycle() {
    let d = Daemon::start();
    import_busybox(&d, "evtest:1");
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let id = create(
        &d,
        "ev1",
        serde_json::json!({"Image": "evtest:1", "Cmd": ["true"], "Labels": {"k": "v"}}),
    );
    assert_eq!(
        d.req("POST", &format!("/v1.47/containers/{id}/start"), b"")
            .status,
        204
    );
    let r = d.req("POST", &format!("/v1.47/containers/{id}/wait"), b"");
    assert_eq!(r.status, 200);
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let r = d.get(&format!(
        "/v1.47/events?since={since}&until={until}&filters=%7B%22container%22%3A%5B%22ev1%22%5D%7D"
    ));
    assert_eq!(r.status, 200);
    let actions: Vec<String> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| v["Action"].as_str().unwrap_or("").to_string())
        .collect();
    for want in ["create", "start", "die"] {
        assert!(
            actions.iter().any(|a| a == want),
            "{want} not in {actions:?}"
        );
    }
    d.req("DELETE", &format!("/v1.47/containers/{id}?force=1"), b"");
}

fn hijack(d: &Daemon, path: &str, body: &str) -> (String, UnixStream, Vec<u8>) {
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(
        format!("POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
            .as_bytes(),
    )
    .unwrap();
    let (head, rest) = read_head(&mut s);
    (head, s, rest)
}

#[test]
fn attach_stdin_half_close_and_exec_hijack() {
    let d = Daemon::start();
    import_busybox(&d, "stdintest:1");
    // docker run -i: OpenStdin + StdinOnce; the client half-closes after its input.
    let id = create(
        &d,
        "in1",
        serde_json::json!({"Image": "stdintest:1", "Cmd": ["cat"], "OpenStdin": true, "StdinOnce": true,
            "AttachStdin": true, "AttachStdout": true, "AttachStderr": true}),
    );
    let (head, mut s, mut got) = hijack(
        &d,
        &format!("/v1.47/containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1"),
        "",
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(
        d.req("POST", &format!("/v1.47/containers/{id}/start"), b"")
            .status,
        204
    );
    s.write_all(b"line one\nline two\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    s.read_to_end(&mut got).unwrap();
    let (out, _) = demux(&got);
    assert_eq!(String::from_utf8_lossy(&out), "line one\nline two\n");
    let r = d.req("POST", &format!("/v1.47/containers/{id}/wait"), b"");
    assert_eq!(r.json()["StatusCode"], 0);

    // Exec with a hijacked start: stdin in, output out, exit code in exec inspect.
    let long = create(
        &d,
        "in2",
        serde_json::json!({"Image": "stdintest:1", "Cmd": ["sleep", "60"]}),
    );
    assert_eq!(
        d.req("POST", &format!("/v1.47/containers/{long}/start"), b"")
            .status,
        204
    );
    let r = d.post_json(
        &format!("/v1.47/containers/{long}/exec"),
        &serde_json::json!({"Cmd": ["sh", "-c", "read x; echo got:$x; echo e >&2; exit 3"], "AttachStdin": true, "AttachStdout": true, "AttachStderr": true}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let eid = r.json()["Id"].as_str().unwrap().to_string();
    let (head, mut s, mut got) = hijack(
        &d,
        &format!("/v1.47/exec/{eid}/start"),
        r#"{"Detach":false,"Tty":false}"#,
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"abc\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    s.read_to_end(&mut got).unwrap();
    let (out, err) = demux(&got);
    assert_eq!(
        (
            String::from_utf8_lossy(&out).as_ref(),
            String::from_utf8_lossy(&err).as_ref()
        ),
        ("got:abc\n", "e\n")
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = d.get(&format!("/v1.47/exec/{eid}/json")).json();
        if v["Running"] == false {
            assert_eq!(v["ExitCode"], 3, "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "exec still running: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Exec without a command is a 400; exec on an unknown container a 404.
    let r = d.post_json(
        &format!("/v1.47/containers/{long}/exec"),
        &serde_json::json!({"Cmd": []}),
    );
    assert_eq!(r.status, 400);
    let r = d.post_json(
        "/v1.47/containers/nope/exec",
        &serde_json::json!({"Cmd": ["true"]}),
    );
    assert_eq!(r.status, 404);
    for c in [&id, &long] {
        assert_eq!(
            d.req("DELETE", &format!("/v1.47/containers/{c}?force=1"), b"")
                .status,
            204
        );
    }
}

/// docker-py reads the `101` head through a buffered reader and then switches to the raw
/// socket: output that arrives in the same read as the head is lost to it. berthd holds the
/// output until the client has read the head (a fast exec used to race it).
#[test]
fn hijacked_output_waits_until_the_client_has_read_the_101() {
    let d = Daemon::start();
    import_busybox(&d, "headtest:1");
    let id = create(
        &d,
        "head1",
        serde_json::json!({"Image": "headtest:1", "Cmd": ["sleep", "60"]}),
    );
    assert_eq!(
        d.req("POST", &format!("/v1.47/containers/{id}/start"), b"")
            .status,
        204
    );
    let r = d.post_json(
        &format!("/v1.47/containers/{id}/exec"),
        &serde_json::json!({"Cmd": ["echo", "in-exec"], "AttachStdout": true, "AttachStderr": true}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let eid = r.json()["Id"].as_str().unwrap().to_string();
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = r#"{"Detach":false,"Tty":false}"#;
    s.write_all(
        format!("POST /v1.47/exec/{eid}/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
            .as_bytes(),
    )
    .unwrap();
    // A slow client: the exec has long finished when it reads for the first time.
    std::thread::sleep(Duration::from_millis(60));
    let mut first = vec![0u8; 64 << 10];
    let n = s.read(&mut first).unwrap();
    let first = String::from_utf8_lossy(&first[..n]).into_owned();
    assert!(first.starts_with("HTTP/1.1 101"), "{first}");
    assert!(
        first.ends_with("\r\n\r\n"),
        "output came with the head: {first:?}"
    );
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert_eq!(String::from_utf8_lossy(&demux(&rest).0), "in-exec\n");
    d.req("DELETE", &format!("/v1.47/containers/{id}?force=1"), b"");
}

#[test]
fn attach_without_upgrade_streams_in_the_body() {
    let d = Daemon::start();
    import_busybox(&d, "plain:1");
    let id = create(
        &d,
        "p1",
        serde_json::json!({"Image": "plain:1", "Cmd": ["sh", "-c", "sleep 0.3; echo plain-out"]}),
    );
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(format!("POST /v1.47/containers/{id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").as_bytes()).unwrap();
    let (head, mut rest) = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("application/vnd.docker.multiplexed-stream"),
        "{head}"
    );
    assert_eq!(
        d.req("POST", &format!("/v1.47/containers/{id}/start"), b"")
            .status,
        204
    );
    s.read_to_end(&mut rest).unwrap();
    let (out, _) = demux(&dechunk(&rest));
    assert_eq!(String::from_utf8_lossy(&out), "plain-out\n");
    d.req("DELETE", &format!("/v1.47/containers/{id}?force=1"), b"");
}

#[test]
fn tars_stats_and_parameter_errors() {
    let d = Daemon::start();
    import_busybox(&d, "tartest:1");
    // Image save: a tar with manifest.json; unknown image: 404 before any byte.
    let r = d.get("/v1.47/images/get?names=tartest%3A1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Content-Type"), Some("application/x-tar"));
    let mut a = tar::Archive::new(&r.body[..]);
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "manifest.json"), "{names:?}");
    let r = d.get("/v1.47/images/tartest:1/get");
    assert_eq!(r.status, 200);
    let r = d.get("/v1.47/images/get?names=nosuch%3A9");
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.message().contains("nosuch"), "{}", r.message());

    let id = create(
        &d,
        "t1",
        serde_json::json!({"Image": "tartest:1", "Cmd": ["sleep", "60"]}),
    );
    assert_eq!(
        d.req("POST", &format!("/v1.47/containers/{id}/start"), b"")
            .status,
        204
    );
    // Export: the container's filesystem.
    let r = d.get(&format!("/v1.47/containers/{id}/export"));
    assert_eq!(r.status, 200);
    let mut a = tar::Archive::new(&r.body[..]);
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.trim_start_matches("./") == "bin/busybox"),
        "{names:?}"
    );
    // Archive HEAD: the stat header.
    let r = d.req(
        "HEAD",
        &format!("/v1.47/containers/{id}/archive?path=/etc/passwd"),
        b"",
    );
    assert_eq!(r.status, 200);
    assert!(
        r.header("X-Docker-Container-Path-Stat").is_some(),
        "{:?}",
        r.headers
    );
    let r = d.req(
        "HEAD",
        &format!("/v1.47/containers/{id}/archive?path=/no/such"),
        b"",
    );
    assert_eq!(r.status, 404);
    let r = d.req("HEAD", &format!("/v1.47/containers/{id}/archive"), b"");
    assert_eq!(r.status, 400);
    // Stats: one-shot JSON, and a stream of one sample per second.
    let r = d.get(&format!("/v1.47/containers/{id}/stats?stream=false"));
    assert_eq!(r.status, 200);
    assert!(r.json()["memory_stats"].is_object(), "{}", r.text());
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        format!("GET /v1.47/containers/{id}/stats HTTP/1.1\r\nHost: docker\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let (head, mut rest) = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let t = Instant::now();
    let mut tmp = [0u8; 8192];
    while String::from_utf8_lossy(&dechunk(&rest))
        .matches("\"read\"")
        .count()
        < 2
    {
        let n = s.read(&mut tmp).unwrap();
        assert!(n > 0);
        rest.extend_from_slice(&tmp[..n]);
    }
    assert!(t.elapsed() < Duration::from_secs(4));
    drop(s);
    // Parameter errors.
    let r = d.req(
        "POST",
        &format!("/v1.47/containers/{id}/wait?condition=bogus"),
        b"",
    );
    assert_eq!(r.status, 400);
    let r = d.req(
        "POST",
        &format!("/v1.47/containers/{id}/resize?h=x&w=1"),
        b"",
    );
    assert_eq!(r.status, 400);
    let r = d.req("POST", &format!("/v1.47/containers/{id}/rename"), b"");
    assert_eq!(r.status, 400);
    let r = d.get(&format!("/v1.47/containers/{id}/logs?stdout=1&tail=abc"));
    assert_eq!(r.status, 400);
    let r = request(
        &d.sock,
        "POST",
        "/v1.47/images/create?fromImage=127.0.0.1%3A1%2Fx&tag=1",
        &[("X-Registry-Auth", "!!notbase64")],
        b"",
    );
    assert_eq!(r.status, 400);
    assert!(r.message().contains("X-Registry-Auth"), "{}", r.message());
    // Starting a running container: 304 with no body.
    let r = d.req("POST", &format!("/v1.47/containers/{id}/start"), b"");
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(
        d.req("DELETE", &format!("/v1.47/containers/{id}?force=1"), b"")
            .status,
        204
    );
}
