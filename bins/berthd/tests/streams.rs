//! Streaming endpoints of a real berthd: wait headers before start, hijacked attach with
//! multiplexed frames, logs, events.

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
    assert!(head.contains("application/vnd.docker.multiplexed-stream"), "{head}");

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
    assert_eq!(d.req("DELETE", &format!("/v1.47/containers/{id}"), b"").status, 204);
    assert_eq!(d.get(&format!("/v1.47/containers/{id}/json")).status, 404);
}

#[test]
fn events_stream_reports_container_lifecycle() {
    let d = Daemon::start();
    import_busybox(&d, "evtest:1");
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let id = create(&d, "ev1", serde_json::json!({"Image": "evtest:1", "Cmd": ["true"], "Labels": {"k": "v"}}));
    assert_eq!(d.req("POST", &format!("/v1.47/containers/{id}/start"), b"").status, 204);
    let r = d.req("POST", &format!("/v1.47/containers/{id}/wait"), b"");
    assert_eq!(r.status, 200);
    let until = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1;
    let r = d.get(&format!("/v1.47/events?since={since}&until={until}&filters=%7B%22container%22%3A%5B%22ev1%22%5D%7D"));
    assert_eq!(r.status, 200);
    let actions: Vec<String> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| v["Action"].as_str().unwrap_or("").to_string())
        .collect();
    for want in ["create", "start", "die"] {
        assert!(actions.iter().any(|a| a == want), "{want} not in {actions:?}");
    }
    d.req("DELETE", &format!("/v1.47/containers/{id}?force=1"), b"");
}
